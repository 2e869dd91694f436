#!/usr/bin/env python3
"""sessions.py - persistent sessions under load: PromptMQ under each
storage.wal-sync against Mosquitto 2.0 with persistence true.

    python3 tests/bench/sessions.py [--builddir build] [--reps 3]
        [--scenarios fanin_q1,fanin_q2,fanout_q1] [--sync always,interval,none]

Every scenario is ../shared/bench's mqtt-bench with --session-expiry 300
(MQTT 5 clean start 0 and a Session Expiry Interval: every client's
session is stored), 64-byte payloads, on a fresh broker each time, the
brokers interleaved within each repetition:

    fanin_q1   4 publishers -> 1 subscriber, QoS 1, 50,000 each
    fanin_q2   4 publishers -> 1 subscriber, QoS 2, 10,000 each
    fanout_q1  1 publisher -> 16 subscribers, QoS 1, 20,000

PromptMQ runs tests/bench/promptmq-bench.conf (2 workers, queue bounds
lifted) with the wal-sync given; Mosquitto the configuration of
suite.sh's mosq-persist (autosave_interval 1, max_queued_messages
1000000).  Prints one RESULT line per run and a table of medians:
deliveries per second, per broker CPU-second, lost and duplicated, and
the ratio to Mosquitto in the same repetition.
"""

import argparse
import os
import statistics
import subprocess
import sys

import loadgen

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = os.path.join(HERE, "promptmq-bench.conf")

SCENARIOS = {
    "fanin_q1": "-m fanin -P 4 -S 1 -q 1 -n 50000",
    "fanin_q2": "-m fanin -P 4 -S 1 -q 2 -n 10000",
    "fanout_q1": "-m fanout -S 16 -q 1 -n 20000",
}


def fields(line):
    return dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--sync", default="always,interval,none")
    loadgen.add_argument(ap)
    args = ap.parse_args()
    loadgen.ready(args.bench)
    os.environ["PMQ_BUILDDIR"] = os.path.abspath(args.builddir)
    sys.path.insert(0, os.path.join(HERE, "..", "integration"))
    import pmq

    def run(broker, scenario):
        if broker == "mosquitto":
            b = pmq.PersistentMosquitto(name="sess-mosq")
        else:
            b = pmq.PromptMQ(workers=2, name="sess-pmq", conf=CONF,
                             bind="127.0.0.1:%d" % pmq.free_port(), log_level=None,
                             args=["--storage-wal-sync", broker.split("-")[1]])
        b.start()
        try:
            out = subprocess.run([args.bench] + SCENARIOS[scenario].split() +
                                 ["-p", str(b.port), "-V", "5", "--session-expiry", "300",
                                  "--broker-pid", str(b.proc.pid), "--timeout", "150"],
                                 capture_output=True, text=True, timeout=200)
            lines = [l for l in out.stdout.splitlines() if l.startswith("RESULT")]
            return lines[-1] if lines else "RESULT status=no-result"
        finally:
            b.stop()
            b.cleanup()

    brokers = ["mosquitto"] + ["promptmq-" + s for s in args.sync.split(",")]
    results = {}
    for rep in range(1, args.reps + 1):
        for sc in args.scenarios.split(","):
            for br in brokers:
                line = run(br, sc)
                print("broker=%s scenario=%s rep=%d %s" % (br, sc, rep, line), flush=True)
                results.setdefault((sc, br), []).append(fields(line))

    print("\n| scenario | broker | deliveries/s | per broker CPU-second | "
          "lost | dup | ratio to Mosquitto |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for sc in args.scenarios.split(","):
        for br in brokers:
            rs = results[(sc, br)]
            rate = [float(r.get("rate", 0)) for r in rs]
            per_cpu = [float(r.get("rate", 0)) / max(float(r.get("broker_cpu", 1)), 1) * 100
                       for r in rs]
            ratio = ["%.2f" % (float(r.get("rate", 0)) / max(float(m.get("rate", 1)), 1))
                     for r, m in zip(rs, results[(sc, "mosquitto")])]
            print("| %s | %s | %.0f | %.0f | %s | %s | %s |" % (
                sc, br, statistics.median(rate), statistics.median(per_cpu),
                ",".join(r.get("lost", "?") for r in rs),
                ",".join(r.get("dup", "?") for r in rs),
                "—" if br == "mosquitto" else "%.2f× (%s)" % (
                    statistics.median(float(x) for x in ratio), ", ".join(ratio))))


if __name__ == "__main__":
    main()
