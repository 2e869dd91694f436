"""backlog.py - a backlog drained on reconnect, as a benchmark, against
promptmqd and Mosquitto with persistence.

    python3 tests/bench/backlog.py [--builddir BUILD] [--count 100000]
        [--qos 1|2] [--size 64] [--reps 3] [--wal-sync always|interval|none]
        [--brokers promptmq,mosquitto] [--workers 2] [--protocol 5]
        [--window 64] [--max-inflight N] [--pause 1] [--timeout 300] [-v]

For every repetition and broker, interleaved (repetition 1 of every
broker, then repetition 2, ...), on a fresh broker on a free loopback
port: tests/bench/backlog.c (built here with `make backlog`) subscribes
a persistent session at --qos and disconnects, publishes --count
messages of --size bytes at --qos from a second client as fast as the
broker acknowledges them (--window in flight, at most the broker's
Receive Maximum), waits --pause seconds, then reconnects the session and
drains the backlog, checking that every message comes once and in order.

promptmqd runs with tests/bench/promptmq-bench.conf, --workers workers
and --wal-sync; Mosquitto (PMQ_MOSQUITTO, default /usr/sbin/mosquitto)
as in /work/shared/bench/suite.sh's mosq-persist: persistence true,
autosave_interval 1, max_queued_messages 1000000.  Both are meant to
have at most 20 messages unacknowledged to a client (mqtt.max-inflight,
max_inflight_messages; --max-inflight sets both).

Prints one line per run:
  pub_rate      messages acknowledged per second while publishing
  drain_s       CONNECT of the drain to the last new message, and
  drain_rate    messages per second over that time
  complete_s    CONNECT to the moment every flow was complete (QoS 2:
                the last PUBREL came; QoS 1: the same as drain_s)
  lost dup reorder invalid   as the client counted them; id_reused: QoS 2
                messages that came under a packet id still waiting for
                its PUBREL (a receiver cannot deliver them: lost)
  inflight_peak the most messages the broker had unacknowledged at once,
                at least (those that came while all our acknowledgements
                were sent)
  drain_cpu_s   the broker's CPU time from just before the drain to the
                drain client's exit: user + system of the broker's
                process and all its descendants (/proc/PID/stat, reaped
                children included); cpu_us_per_msg the same per message;
                client_cpu_s the drain client's
then the medians per broker over the successful runs, and the ratios to
Mosquitto taken repetition by repetition.  The exit status is 1 if any
run lost, duplicated or reordered a message or failed.
"""

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# tests/bench/platform.py (this directory, first on the path) would stand
# for the standard module platform
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]

BENCH_CONF = os.path.join(HERE, "promptmq-bench.conf")
TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid, children_of):
    """User + system time of pid and its descendants, children they have
    reaped included, in seconds."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%d/stat" % p) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        todo.extend(children_of(p))
    return total / TICK


def result_of(out):
    """The fields of the RESULT line of backlog's output, {} if none."""
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    return {}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builddir", default=os.path.join(HERE, "..", "..", "build"),
                    help="the build tree with promptmqd (default: ../../build)")
    ap.add_argument("--count", type=int, default=100000, help="messages in the backlog")
    ap.add_argument("--qos", type=int, choices=(1, 2), default=1)
    ap.add_argument("--size", type=int, default=64, help="payload bytes (at least 16)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--wal-sync", choices=("always", "interval", "none"), default="always",
                    help="promptmqd's storage.wal-sync (default always)")
    ap.add_argument("--brokers", default="promptmq,mosquitto",
                    help="comma-separated: promptmq, mosquitto")
    ap.add_argument("--workers", type=int, default=2, help="promptmqd's workers")
    ap.add_argument("--protocol", type=int, choices=(4, 5), default=5,
                    help="4: MQTT 3.1.1, 5: MQTT 5.0 (default)")
    ap.add_argument("--window", type=int, default=64,
                    help="publisher's messages in flight, capped by the broker's "
                         "Receive Maximum (MQTT 5) or at 20 (3.1.1)")
    ap.add_argument("--max-inflight", type=int,
                    help="the brokers' outgoing window: promptmqd's mqtt.max-inflight "
                         "and Mosquitto's max_inflight_messages (default: theirs, 20)")
    ap.add_argument("--pause", type=float, default=1.0,
                    help="seconds between the last acknowledgement and the drain")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds each client may take")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    brokers = [b for b in args.brokers.split(",") if b]
    for b in brokers:
        if b not in ("promptmq", "mosquitto"):
            ap.error("unknown broker %s (promptmq, mosquitto)" % b)

    builddir = os.path.abspath(args.builddir)
    os.environ["PMQ_BUILDDIR"] = builddir
    sys.path.insert(0, os.path.join(HERE, "..", "integration"))
    import pmq

    client = os.path.join(builddir, "backlog")
    subprocess.run(["make", "-s", "-C", builddir, "backlog"], check=True)
    if "promptmq" in brokers and not os.access(pmq.PROMPTMQD, os.X_OK):
        sys.exit("%s is not built" % pmq.PROMPTMQD)

    def start_broker(name):
        if name == "mosquitto":
            b = pmq.PersistentMosquitto(
                name="backlog-mosq", extra=["max_inflight_messages %d" % args.max_inflight]
                if args.max_inflight else [])
            try:
                return b.start()
            except pmq.TestFailure:
                b.cleanup()
                raise
        for _ in range(5):
            flags = ["--storage-wal-sync", args.wal_sync]
            if args.max_inflight:
                flags += ["--mqtt-max-inflight", str(args.max_inflight)]
            b = pmq.PromptMQ(workers=args.workers, name="backlog-pmq", conf=BENCH_CONF,
                             bind="127.0.0.1:%d" % pmq.free_port(), log_level=None,
                             args=flags)
            try:
                return b.start()
            except pmq.TestFailure:
                # the port was taken between the pick and the bind
                log = b.log() if os.path.exists(b.logpath) else ""
                b.cleanup()
                if "in use" not in log:
                    raise
        raise pmq.TestFailure("promptmqd did not start")

    def children_of(pid):
        return list(pmq.children_of(pid))

    # a 3.1.1 client learns no Receive Maximum, and Mosquitto drops the
    # QoS 2 messages past its 20th in flight (answering PUBREC 0x97, which
    # 3.1.1 reads as success; pmq.Mosquitto.qos2_inflight_limit)
    window = args.window if args.protocol == 5 else min(args.window, 20)

    def run_client(port, mode, extra, out):
        cmd = [client, mode, "-p", str(port), "-V", str(args.protocol), "-q",
               str(args.qos), "-t", out["topic"], "--timeout", str(args.timeout)] + extra
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout + 30)
            text, err, rc = r.stdout, r.stderr, r.returncode
        except subprocess.TimeoutExpired as e:
            text, err, rc = e.stdout or "", "killed after %gs" % (args.timeout + 30), -1
            text = text.decode() if isinstance(text, bytes) else text
        if args.verbose:
            sys.stdout.write(text)
        res = result_of(text)
        if rc != 0:
            out.setdefault("problem", "%s: exit %d: %s" % (
                mode, rc, "; ".join(err.strip().splitlines()[-3:]) or "no message"))
        return res

    def run_once(name, rep):
        token = random.getrandbits(32)
        out = {"broker": name, "rep": rep, "topic": "backlog/%08x" % token}
        session = ["-i", "backlog-%08x" % token]
        try:
            b = start_broker(name)
        except pmq.TestFailure as e:
            out["problem"] = "start: %s" % str(e).splitlines()[0]
            return out
        try:
            res = run_client(b.port, "subscribe", session, out)
            if res.get("status") != "ok":
                return out
            c0 = tree_cpu_seconds(b.pid, children_of)
            res = run_client(b.port, "publish",
                             ["-n", str(args.count), "-s", str(args.size), "-w", str(window),
                              "--token", str(token)], out)
            out["pub_cpu"] = tree_cpu_seconds(b.pid, children_of) - c0
            out["pub_rate"] = float(res.get("rate", 0))
            if res.get("status") != "ok":
                return out
            time.sleep(args.pause)
            c0 = tree_cpu_seconds(b.pid, children_of)
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            res = run_client(b.port, "drain",
                             session + ["-n", str(args.count), "--token", str(token),
                                        "--idle", "30", "--linger", "0.2"], out)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            out["drain_cpu"] = tree_cpu_seconds(b.pid, children_of) - c0
            out["client_cpu"] = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
            out["drain"] = res
            b.check_alive("after the drain")
        except pmq.TestFailure as e:
            out.setdefault("problem", str(e).splitlines()[0])
        finally:
            try:
                b.stop()
            except pmq.TestFailure as e:
                out.setdefault("problem", str(e))
            b.cleanup()
        return out

    def line(r):
        d = r.get("drain", {})
        s = "broker=%s rep=%d qos=%d count=%d" % (r["broker"], r["rep"], args.qos, args.count)
        if "pub_rate" in r:
            s += " pub_rate=%.0f pub_cpu_s=%.2f" % (r["pub_rate"], r["pub_cpu"])
        if d:
            secs = float(d.get("secs", 0))
            s += (" drain_s=%.3f drain_rate=%s complete_s=%s first_ms=%s lost=%s dup=%s "
                  "reorder=%s invalid=%s id_reused=%s inflight_peak=%s" % (
                      secs, d.get("rate"), d.get("complete_secs"), d.get("first_ms"),
                      d.get("lost"), d.get("dup"),
                      d.get("reorder"), d.get("invalid"), d.get("id_reused"),
                      d.get("max_burst")))
        if "drain_cpu" in r:
            s += " drain_cpu_s=%.2f cpu_us_per_msg=%.1f client_cpu_s=%.2f" % (
                r["drain_cpu"], r["drain_cpu"] * 1e6 / args.count, r["client_cpu"])
        ok = d.get("status") == "ok" and "problem" not in r
        s += " status=%s" % ("ok" if ok else d.get("status") or "failed")
        if "problem" in r:
            s += "  # " + r["problem"]
        r["ok"] = ok
        return s

    print("# backlog: %d messages of %d bytes, QoS %d, MQTT %s, %d reps, max-inflight %s; "
          "promptmqd wal-sync=%s workers=%d; mosquitto persistence autosave_interval 1; "
          "%s, %d CPUs" % (args.count, args.size, args.qos,
                           "5.0" if args.protocol == 5 else "3.1.1", args.reps,
                           args.max_inflight or "default", args.wal_sync, args.workers,
                           os.uname().release, os.cpu_count()), flush=True)
    runs = []
    for rep in range(1, args.reps + 1):
        for name in brokers:
            r = run_once(name, rep)
            print(line(r), flush=True)
            runs.append(r)

    def med(name, key):
        v = [key(r) for r in runs if r["broker"] == name and r["ok"]]
        return statistics.median(v) if v else None

    drain_rate = lambda r: float(r["drain"]["rate"])  # noqa: E731
    drain_s = lambda r: float(r["drain"]["secs"])  # noqa: E731
    complete_s = lambda r: float(r["drain"]["complete_secs"])  # noqa: E731
    print("\nmedians (successful runs only):")
    print("%-10s %5s %10s %9s %12s %11s %12s %11s" % (
        "broker", "runs", "pub msg/s", "drain s", "drain msg/s", "complete s", "drain CPU s",
        "CPU us/msg"))
    for name in brokers:
        n = sum(1 for r in runs if r["broker"] == name and r["ok"])
        if not n:
            print("%-10s %5d" % (name, 0))
            continue
        print("%-10s %5d %10.0f %9.3f %12.0f %11.3f %12.2f %11.1f" % (
            name, n, med(name, lambda r: r["pub_rate"]), med(name, drain_s),
            med(name, drain_rate), med(name, complete_s), med(name, lambda r: r["drain_cpu"]),
            med(name, lambda r: r["drain_cpu"]) * 1e6 / args.count))
    if "mosquitto" in brokers:
        base = {r["rep"]: r for r in runs if r["broker"] == "mosquitto" and r["ok"]}
        for name in brokers:
            if name == "mosquitto":
                continue
            pairs = [(r, base[r["rep"]]) for r in runs
                     if r["broker"] == name and r["ok"] and r["rep"] in base]
            if not pairs:
                continue
            rate = statistics.median(drain_rate(a) / drain_rate(m) for a, m in pairs)
            done = statistics.median(complete_s(a) / complete_s(m) for a, m in pairs)
            cpu = [a["drain_cpu"] / m["drain_cpu"] for a, m in pairs if m["drain_cpu"] > 0]
            pub = statistics.median(a["pub_rate"] / m["pub_rate"] for a, m in pairs)
            print("%s / mosquitto, median of %d per-rep ratios: drain rate %.2fx, "
                  "complete time %.2fx, drain CPU %s, publish rate %.2fx" % (
                      name, len(pairs), rate, done,
                      "%.2fx" % statistics.median(cpu) if cpu else "n/a", pub))
    return 0 if all(r["ok"] for r in runs) else 1


sys.exit(main())
