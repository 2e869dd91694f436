"""kill9.py - kill -9 under load, as a benchmark: the scenario of
tests/integration/mqtt_kill9.py (tests/integration/kill9lib.py), with
its parameters, against promptmqd or Mosquitto.

    python3 tests/bench/kill9.py [--builddir BUILD] [--duration 20]
        [--rate 20] [--slow-rate 50] [--kills 5] [--runs 1] [--seed N]
        [--workers 2] [--mosquitto [--autosave 1] [--autosave-on-changes]]

Four persistent publishers (QoS 1 and 2, MQTT 3.1.1 and 5.0) at --rate
messages a second each, two persistent QoS 2 subscribers (one processing
--slow-rate messages a second), --kills SIGKILLs spread over --duration
seconds: a random worker, walsvc, the supervisor alone, a worker, the
whole process group, in turn (promptmqd restarted on the same
directories after the last two).  With --mosquitto the broker is
/usr/sbin/mosquitto (PMQ_MOSQUITTO) with persistence true, its database
in a temporary directory saved every --autosave seconds (or after that
many changes with --autosave-on-changes); every kill is a kill -9 of
mosquitto and a restart on the same port and database.

Prints one summary line per run (published, acknowledged, delivered per
subscriber, lost: acknowledged but never delivered, duplicates split
QoS 1 / QoS 2, what paho sent again, the longest pause between
acknowledgements, how long the backlog took to drain after the load);
-v adds the per-client figures and, for a run with losses or QoS 2
duplicates, the records that explain the first ones.  The exit status
is 1 if a run lost an acknowledged message or repeated a QoS 2 one.
The broker's directory is removed unless PMQ_KEEP=1.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# tests/bench/platform.py (this directory, first on the path) would stand
# for the standard module platform, which paho needs (through uuid)
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--builddir", default=os.path.join(HERE, "..", "..", "build"),
                    help="the build tree with promptmqd (default: ../../build)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    ap.add_argument("--rate", type=float, default=20.0,
                    help="messages a second per publisher")
    ap.add_argument("--slow-rate", type=float, default=50.0,
                    help="messages a second the slow subscriber processes")
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seed", type=int, help="for the choice of workers to kill")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mosquitto", action="store_true",
                    help="against Mosquitto with persistence instead")
    ap.add_argument("--autosave", type=int, default=1,
                    help="Mosquitto's autosave_interval (default 1)")
    ap.add_argument("--autosave-on-changes", action="store_true",
                    help="Mosquitto's autosave_on_changes true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    os.environ["PMQ_BUILDDIR"] = os.path.abspath(args.builddir)
    sys.path.insert(0, os.path.join(HERE, "..", "integration"))
    import kill9lib
    import pmq

    status = 0
    for n in range(args.runs):
        if args.mosquitto:
            target = kill9lib.MosquittoTarget(args.autosave, args.autosave_on_changes)
        else:
            target = kill9lib.PromptMQTarget(workers=args.workers)
        try:
            r = kill9lib.run(target, args.duration, args.rate, args.slow_rate, args.kills,
                             None if args.seed is None else args.seed + n,
                             say=print if args.verbose else (lambda *a: None))
            print(r.summary(), flush=True)
            for f in r.failures():
                print("  " + f, flush=True)
            if args.verbose:
                print(r.report())
            if r.lost_any or any(v for (s, q), v in r.dups.items() if q == 2):
                status = 1
                if args.verbose:
                    print(r.explain())
        except pmq.TestFailure as e:
            print("kill9 target=%s run %d failed: %s" % (target.name, n + 1, e), flush=True)
            status = 1
        finally:
            target.cleanup()
    return status


sys.exit(main())
