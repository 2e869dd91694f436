"""The session fuzzer (tests/fuzz/session_fuzz.py) for 20 seconds with a
fixed seed, as part of the test suite: four concurrent clients run
random, partly malformed MQTT 3.1/3.1.1/5.0 sessions against promptmqd
with two workers, and the test passes when none of its oracles fails:
the processes started are the ones running, no sanitizer report or
panic in the log, every packet the broker sends is well-formed for the
connection's level, a control client connects, subscribes and gets its
own QoS 1 message every few seconds, the workers' and walsvc's memory
stays bounded, and promptmqd stops with status 0.

Every wait is the fuzzer's, stretched by PMQ_SLOWDOWN; the 20 seconds
bound the fuzzing, not a wait.  A failure leaves a replay file in the
broker's directory (printed): session_fuzz.py --replay FILE sends the
same bytes again.  Longer runs and their figures: docs/fuzzing.md."""

import os
import sys
import tempfile

import pmq
from pmq import check

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz"))
import session_fuzz  # noqa: E402

SEED = 20261205


def test():
    out = tempfile.mkdtemp(prefix="sessfuzz-smoke.", dir="/tmp")
    status = session_fuzz.main(["--seed", str(SEED), "--seconds", "20", "--clients", "4",
                                "--out", out])
    check(status == 0, "the session fuzzer failed (seed %d); replay file in %s" %
          (SEED, out))
    os.rmdir(out)


pmq.run_test(test, promptmqd_only="the oracles watch promptmqd's processes and log")
