"""Where new connections go (server.pack-connections): to the first
worker with room, and where the kernel's hash puts them when none has
any.  Two workers:

- with server.pack-connections = 3, three clients that stay connected
  all reach worker 0; once worker 0 has counted them, the next three
  reach worker 1; with both full, new connections are spread by the
  kernel: of 24 more, both workers get some;
- clients of worker 0 leave: it has room again and takes the next
  connection;
- messages go both ways between a client packed on worker 0 and one on
  worker 1 (QoS 1);
- a reload to 0 spreads new connections at once; a reload to 100 packs
  them on worker 0 again;
- worker 0 killed: new connections go to worker 1 while it restarts,
  and to worker 0 again once it is back.

A worker counts its connections once a second, so the supervisor's
choice follows; the test waits for the choice in the supervisor's log
("new connections go to a worker slot=N", debug) rather than for time.
daemon_supervision.py checks that the choice follows a slot whose
sockets were closed and opened again."""

import os
import signal

import pmq
from pmq import check

CHOICE = r"supervisor\[\d+\] debug: new connections go to a worker slot=%s\b"


def connect(b, done, name):
    """A connected 5.0 client, kept open until done; returns (client, its
    worker slot)."""
    r = pmq.RawClient(b.port, 5, name)
    done.append(r)
    r.connect(pmq.unique(name))
    return r, b.slot_of(r.client_id, r.local_port)


def choice(b, slot, mark, what):
    """Wait until the supervisor chose slot (-1: the kernel's hash) after
    the log's offset mark; returns the next mark."""
    try:
        b.wait_log(CHOICE % slot, 10, mark)
    except pmq.TestFailure as e:
        raise pmq.TestFailure("%s: new connections were not sent to slot %d: %s" %
                              (what, slot, e))
    return b.mark()


def all_on(b, done, n, slot, what):
    """n new connections all reach slot."""
    got = [connect(b, done, "place")[1] for _ in range(n)]
    check(got == [slot] * n, "%s: connections reached workers %s, expected all "
          "on %d" % (what, got, slot))


def round_trip(a, b_):
    """A QoS 1 message each way between clients a and b_."""
    for src, dst in ((a, b_), (b_, a)):
        topic = pmq.unique("place/rt")
        dst.subscribe(topic, 1)
        src.publish(topic, b"across", 1)
        m = dst.message(what="the message from %s" % src.name)
        check(m.topic == topic and m.payload == b"across",
              "%s got %r, expected the message to %s" % (dst.name, m, topic))


def test():
    b = pmq.PromptMQ(workers=2, name="place",
                     conf_values={"server.pack-connections": 3})
    done = []
    try:
        b.start()
        mark = choice(b, 0, 0, "worker 0 at start")
        first = [connect(b, done, "place") for _ in range(3)]
        check([s for _, s in first] == [0, 0, 0], "the first three connections "
              "reached workers %s, expected all on 0" % [s for _, s in first])
        mark = choice(b, 1, mark, "worker 0 full")
        second = [connect(b, done, "place") for _ in range(3)]
        check([s for _, s in second] == [1, 1, 1], "with worker 0 full, three "
              "connections reached workers %s, expected all on 1" %
              [s for _, s in second])
        round_trip(first[0][0], second[0][0])
        mark = choice(b, -1, mark, "both full")
        spread = [connect(b, done, "spread")[1] for _ in range(24)]
        check(set(spread) == {0, 1}, "with both workers full, 24 connections "
              "reached workers %s, expected both (the kernel's hash)" % spread)

        # worker 0 has room again once some of its clients leave
        for r in [r for r in done if b.slot_of(r.client_id, r.local_port) == 0]:
            r.close()
        mark = choice(b, 0, mark, "worker 0 emptied")
        all_on(b, done, 2, 0, "worker 0 with room again")

        # reloads: spread at once, then packed again
        b.write_conf({"server.pack-connections": 0})
        b.reload()
        mark = choice(b, -1, mark, "pack-connections 0")
        b.write_conf({"server.pack-connections": 100})
        b.reload()
        mark = choice(b, 0, mark, "pack-connections 100")
        all_on(b, done, 3, 0, "pack-connections 100")

        # a worker that dies gets nothing while it restarts
        pid = b.worker_pid(0)
        os.kill(pid, signal.SIGKILL)
        mark = choice(b, 1, mark, "worker 0 killed")
        all_on(b, done, 3, 1, "worker 0 restarting")
        mark = choice(b, 0, mark, "worker 0 back")
        all_on(b, done, 3, 0, "worker 0 back")
    finally:
        for r in done:
            r.close()
        b.stop()
        b.cleanup()


pmq.run_test(test, promptmqd_only="placement of connections on workers")
