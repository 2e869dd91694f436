"""A PUBACK means the message is in the log, even while walsvc is killed.

Four paho publishers (3.1.1 and 5.0) send QoS 1 messages with unique
payloads ("m-000123") at a bounded rate while walsvc is killed with
SIGKILL three times (and restarted by the supervisor each time).  Under
storage.wal-sync = always (the default):

- the PUBACKs pause and resume: every publisher has all its messages
  acknowledged within a bounded time, without losing its connection
  (walsvc down must not cost a client its connection);
- after the broker stopped, promptmq-waldump shows every acknowledged
  message in a publish record exactly once, and no message twice;
- a subscriber connected throughout receives every acknowledged message
  at least once.

paho resends an unacknowledged message only when it reconnects, so what
counts is what was acknowledged; a message never acknowledged may be in
the log or not (at most once).

The publishers go on past COUNT until the last walsvc is up again, so
that every kill has messages after it however slow the machine is."""

import collections
import os
import queue
import re
import signal
import threading
import time

import pmq
from pmq import check

PUBLISHERS = 4
COUNT = 1000        # messages per publisher, at least
RATE = 250          # messages a second per publisher: about 4 s of load
KILLS = 3
FINISH_WITHIN = 30  # seconds after the last publish for every PUBACK


def publish_all(c, p, sent, kills_done):
    """COUNT messages at RATE a second, more until kills_done is set (at
    most ten times as many); sent: mid -> payload."""
    t0 = time.monotonic()
    s = 0
    while (s < COUNT or not kills_done.is_set()) and s < 10 * COUNT:
        payload = "m-%06d" % (p * 100000 + s)
        sent[c.publish("w/%d" % p, payload, 1, wait=False)] = payload
        s += 1
        delay = t0 + s / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)   # the pace of the load, not a wait for an event


def test():
    b = pmq.start_target(workers=2, name="walkill")
    clients = []
    try:
        sub = pmq.Client(b.port, "walkill-sub", 5)
        clients.append(sub)
        sub.connect()
        sub.subscribe("w/#", 1)
        pubs = [pmq.Client(b.port, "walkill-pub%d" % p, (5, 4)[p % 2])
                for p in range(PUBLISHERS)]
        clients += pubs
        for c in pubs:
            c.connect()
        sent = [{} for _ in pubs]
        kills_done = threading.Event()
        threads = [threading.Thread(target=publish_all, args=(c, p, sent[p], kills_done),
                                    daemon=True)
                   for p, c in enumerate(pubs)]
        t0 = time.monotonic()
        for t in threads:
            t.start()

        kill_times = []
        for k in range(KILLS):
            pmq.wait_for(lambda: time.monotonic() - t0 > 0.8 + k, 5, "the next kill time")
            pid = b.walsvc_pid()
            check(pid, "no walsvc to kill")
            os.kill(pid, signal.SIGKILL)
            kill_times.append(time.monotonic())
            pmq.wait_for(lambda: b.walsvc_pid() not in (None, pid), 10,
                         "walsvc to be restarted after kill %d" % (k + 1))
        b.wait_log(r"walsvc\[%d\] info: walsvc ready" % b.walsvc_pid(), 10)
        kills_done.set()
        for t in threads:
            t.join(pmq.patience(COUNT / RATE + 10))
        check(not any(t.is_alive() for t in threads), "a publisher thread is stuck")
        publishing = time.monotonic() - t0

        problems = []
        for p, c in enumerate(pubs):
            try:
                c.wait(lambda: all(mid in c.acked for mid in sent[p]), FINISH_WITHIN,
                       "all %d PUBACKs" % len(sent[p]))
            except pmq.TestFailure:
                problems.append("publisher %d: %d of %d messages acknowledged within %ds "
                                "after the load" % (p, sum(m in c.acked for m in sent[p]),
                                                    len(sent[p]), FINISH_WITHIN))
        acked = {sent[p][mid] for p, c in enumerate(pubs) for mid in list(c.acked)
                 if mid in sent[p]}
        ack_times = sorted(t for c in pubs for t in c.acked.values())
        for k, tk in enumerate(kill_times):
            if not any(t > tk for t in ack_times):
                problems.append("no PUBACK after kill %d" % (k + 1))
        gap = max((b_ - a for a, b_ in zip(ack_times, ack_times[1:])), default=0)

        # the subscriber gets every acknowledged message
        received = collections.Counter()
        deadline = time.monotonic() + pmq.patience(15)
        while not acked <= set(received) and time.monotonic() < deadline:
            try:
                received[sub.messages.get(timeout=0.2).payload.decode()] += 1
            except queue.Empty:
                pass
        not_received = sorted(acked - set(received))
        if not_received:
            problems.append("%d acknowledged messages never reached the subscriber, "
                            "first %s" % (len(not_received), not_received[:5]))
        for c in clients:
            if c.disconnects:
                problems.append("%s lost its connection: %s" % (c.client_id, c.disconnects))
        kills = b.log_count(r"child killed by signal role=walsvc")
        if kills != KILLS:
            problems.append("walsvc was killed %d times, not %d" % (kills, KILLS))

        for c in clients:
            c.close()
        clients = []
        status = b.stop()
        if status != 0:
            problems.append("promptmqd exit status %s" % status)

        records, dump = pmq.waldump(b.walldir, "publish")
        in_log = collections.Counter()
        for _, preview in records:
            for m in re.findall(rb"m-\d{6}", preview):
                in_log[m.decode()] += 1
        missing = sorted(acked - set(in_log))
        twice = sorted(m for m, n in in_log.items() if n > 1)
        if missing:
            problems.append("%d acknowledged messages are not in the log, first %s; "
                            "log sample:\n%s" % (len(missing), missing[:5],
                                                 "\n".join(dump.splitlines()[:5])))
        if twice:
            problems.append("%d messages are in the log more than once, first %s" %
                            (len(twice), [(m, in_log[m]) for m in twice[:5]]))
        check(not problems, "after %d walsvc kills:\n  %s" % (KILLS, "\n  ".join(problems)))
        print("%d messages sent in %.1fs, %d acknowledged, each once in the log (%d "
              "publish records); longest pause between PUBACKs %.2fs" %
              (sum(map(len, sent)), publishing, len(acked), len(records), gap))
    finally:
        for c in clients:
            c.close()
        b.cleanup()


pmq.run_test(test, promptmqd_only="kills walsvc and reads its log")
