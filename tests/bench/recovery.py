#!/usr/bin/env python3
"""recovery.py - start-up time with a large backlog, and disk use.

    python3 tests/bench/recovery.py [--builddir build] [--count 1000000]
                                    [--reps 3] [--disk-mb 300]

1. Recovery: a persistent session subscribes and goes away; COUNT QoS 1
   messages of 64 bytes are published to it (../shared/bench's
   mqtt-bench, 4 publishers); the broker is stopped and started again on
   the same data, and the time from the start of the process that reads
   the state (promptmqd: walsvc, from its "child started" line to "walsvc
   ready"; Mosquitto with persistence true: from its start to "mosquitto
   version ... running") is measured, then the broker is killed with
   SIGKILL and started again and measured once more (promptmqd only:
   Mosquitto after a SIGKILL starts from its last autosave).  Medians of
   REPS, Mosquitto in the same run.
2. Disk: DISK_MB of QoS 1 traffic (1000-byte payloads, 4 publishers)
   delivered to an online subscriber; the data directory's size right
   after the traffic and 3 s later (promptmqd's log and index).

Loopback and free ports only; every broker is stopped at the end.
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys

import loadgen
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--count", type=int, default=1000000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--disk-mb", type=int, default=300)
    loadgen.add_argument(ap)
    args = ap.parse_args()
    loadgen.ready(args.bench)
    os.environ["PMQ_BUILDDIR"] = os.path.abspath(args.builddir)
    sys.path.insert(0, os.path.join(HERE, "..", "integration"))
    import pmq

    def ms(stamp):
        h, m, s = stamp.split("T")[1].rstrip("Z").split(":")
        return (int(h) * 3600 + int(m) * 60 + float(s)) * 1000

    def walsvc_start_ms(log, mark):
        """From the last walsvc start after mark to its ready line."""
        text = log[mark:]
        started = re.findall(r"^(\S+) supervisor\[\d+\] info: child started "
                             r"role=walsvc", text, re.M)
        ready = re.findall(r"^(\S+) walsvc\[\d+\] info: walsvc ready", text, re.M)
        pmq.check(started and ready, "no walsvc start in the log")
        return ms(ready[-1]) - ms(started[-1])

    class PersistentMosquitto(pmq.PersistentMosquitto):
        max_queued = 5000000    # more than --count

    def publish(port, n, size=64, subs=0, topic="r"):
        out = subprocess.run([args.bench, "-m", "fanin", "-S", str(subs), "-P", "4",
                              "-q", "1", "-s", str(size), "-n", str(n // 4), "-p",
                              str(port), "--topic-prefix", topic, "--timeout", "900"],
                             capture_output=True, text=True)
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        pmq.check("status=ok" in line, "mqtt-bench failed: %s %s" % (line, out.stderr[-500:]))
        return line

    def queue_backlog(b):
        s = pmq.RawClient(b.port, 5, "away")
        s.connect("away", clean=False, props={"session-expiry": 3600})
        s.subscribe("r/#", 1)
        s.send(pmq.disconnect_packet(5))
        s.expect_closed()
        publish(b.port, args.count)

    def promptmq_once():
        b = pmq.PromptMQ(workers=2, name="recovery",
                         args=["--mqtt-max-queued-messages", str(args.count * 2),
                               "--mqtt-max-queued-bytes", "8GB"]).start()
        again = None
        try:
            queue_backlog(b)
            b.stop()
            again = pmq.restarted(b, "recovery2")
            clean = walsvc_start_ms(again.log(), 0)
            mark = len(again.log())
            os.kill(again.walsvc_pid(), signal.SIGKILL)
            pmq.wait_for(lambda: "walsvc ready" in again.log()[mark:], 120,
                         "walsvc to come back")
            killed = walsvc_start_ms(again.log(), mark)
            again.stop()
            return clean, killed
        finally:
            if again:
                again.cleanup()
            b.cleanup()

    def mosquitto_once():
        b = PersistentMosquitto(name="recovery-mosq")
        b.start()
        try:
            queue_backlog(b)
            b.stop()
            t0 = time.monotonic()
            mark = len(b.log())
            b.start(timeout=600)
            pmq.wait_for(lambda: "running" in b.log()[mark:], 600, "mosquitto to start")
            took = (time.monotonic() - t0) * 1000
            b.stop()
            return took
        finally:
            b.cleanup()

    rows = {"promptmq clean stop": [], "promptmq walsvc SIGKILL": [],
            "mosquitto clean stop": []}
    for rep in range(args.reps):
        clean, killed = promptmq_once()
        rows["promptmq clean stop"].append(clean)
        rows["promptmq walsvc SIGKILL"].append(killed)
        rows["mosquitto clean stop"].append(mosquitto_once())
        print("rep %d: promptmq %.0f ms, after SIGKILL %.0f ms; mosquitto %.0f ms" %
              (rep + 1, clean, killed, rows["mosquitto clean stop"][-1]), flush=True)
    for k, v in rows.items():
        print("RECOVERY %s count=%d median_ms=%.0f runs=%s" %
              (k.replace(" ", "_"), args.count, statistics.median(v),
               ",".join("%.0f" % x for x in v)))

    # disk use under steady load
    b = pmq.PromptMQ(workers=2, name="disk").start()
    try:
        line = publish(b.port, args.disk_mb * 1000, size=1000, subs=1, topic="d")

        def du():
            out = subprocess.run(["du", "-sk", os.path.join(b.base, "data")],
                                 capture_output=True, text=True).stdout
            return int(out.split()[0]) // 1024
        after = du()
        time.sleep(3)   # compaction runs once a second: let it pass
        later = du()
        b.stop()
        print("DISK traffic_mb=%d after_mb=%d after_3s_mb=%d %s" %
              (args.disk_mb, after, later, " ".join(
                  f for f in line.split() if f.split("=")[0] in ("rate", "lost", "dup"))))
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
