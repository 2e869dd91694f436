"""kill -9 of any process, or of all of them, loses no acknowledged
message and repeats no QoS 2 delivery (storage.wal-sync = always, the
default), with persistent sessions across every crash.

promptmqd with 2 workers on a fixed port (its incarnations all listen
there); four paho publishers with persistent sessions, QoS 1 and QoS 2,
3.1.1 and 5.0, each sending numbered messages on its own topic at
RATE a second; two persistent subscribers (3.1.1, and 5.0 processing
SLOW messages a second, so a backlog builds in its session) with QoS 2
subscriptions to the four topics; every client reconnects on its own,
to whichever worker it lands on.  During about DURATION seconds, KILLS
SIGKILLs spread in time: a random worker, walsvc, the supervisor alone
(a new promptmqd is started on the same directories once its children
are gone), a worker again, the whole process group (a new promptmqd
again).  Then the load stops and everything drains (kill9lib.py has the
scenario, shared with tests/bench/kill9.py, and what paho does on a
reconnection).  The test fails when:

- an acknowledged message (PUBACK, PUBCOMP: no refusal reason code) never
  reaches a subscriber (QoS 1 may arrive twice; an unacknowledged message
  may arrive or not);
- a QoS 2 message reaches a subscriber twice (acknowledged or not);
- a publisher sends a QoS 2 message again as PUBLISH after its PUBREL,
  which the broker must take as a new message (MQTT 4.3.3 forbids it;
  paho 1.6 does it after a failed reconnection attempt, and kill9lib
  corrects that): the client's fault, named as such;
- a publisher still has unacknowledged messages a bounded time after the
  load (paho sends them again on every reconnection: the broker must take
  them once it is back), a message was refused, a session was not present
  on a reconnection, or the last promptmqd does not stop with status 0;
- a child of a killed supervisor has not exited on its own within a
  bounded time (a new promptmqd cannot bind the port while an old worker
  holds its listening socket): it is killed, so that the scenario goes
  on, and the failure names its threads' wait channels and last log lines.

A failure explains each lost message from the records kept for it: the
publisher, the number, when it was acknowledged relative to which kill,
whether the message log holds it, what the subscriber got around it,
and the broker's log lines of that time about the clients; and each
QoS 2 message delivered twice: when, how many publish records the log
holds, and whether its publisher sent it again after its PUBREL.  PMQ_KEEP=1
keeps the broker's directory."""

import os

import kill9lib
import pmq
from pmq import check

DURATION = 12       # seconds of load
RATE = 20           # messages a second per publisher
SLOW = 50           # messages a second the slow subscriber processes
KILLS = 5


def test():
    target = kill9lib.PromptMQTarget(workers=2)
    try:
        r = kill9lib.run(target, DURATION, RATE, SLOW, KILLS)
        print(r.report())
        print(r.summary())
        problems = r.failures()
        if problems:
            print(r.explain())
            print("broker directory: %s%s" % (target.b.base, "" if os.environ.get(
                "PMQ_KEEP") else " (removed; PMQ_KEEP=1 keeps it)"))
        check(not problems, "after %d kills:\n  %s" % (len(r.kills), "\n  ".join(problems)))
    finally:
        target.cleanup()


pmq.run_test(test, promptmqd_only="kills promptmqd's processes one by one")
