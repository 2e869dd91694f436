"""A client id connecting again takes over, on any worker:

- the old connection gets DISCONNECT 0x8E (Session taken over) if it is
  5.0, or is closed without a word if it is 3.1.1, whichever version the
  new one speaks;
- the new connection is accepted, keeps working (its subscriptions get
  messages from a client elsewhere), and inherits nothing from the old
  one (clean start: the old subscription delivers nothing);
- on promptmqd with two workers this happens both when the two
  connections land on the same worker and when they land on different
  ones (rounds go on until each case was seen three times);
- ten connections with one id in quick succession leave only the last
  one open, every earlier one taken over;
- two CONNECTs with one id sent at the same moment leave exactly one
  connection open.

Against Mosquitto there is one process: every round is a "same worker"
round; and 2.0.11 closes a taken-over 5.0 connection without the
DISCONNECT 0x8E the specification asks for, so its absence is let pass
there."""

import pmq
from pmq import check

TAKEN_OVER = 0x8E
NAMES = {4: "3.1.1", 5: "5.0"}


def expect_taken_over(b, c, allow=()):
    if c.version == 5:
        c.expect_closed(disconnect=TAKEN_OVER, optional=not b.says_taken_over, allow=allow)
    else:
        c.expect_closed(allow=allow)


def takeover_round(b, pub, v_old, v_new):
    """One takeover; returns the slots of the old and the new connection."""
    cid = pmq.unique("to")
    what = "%s taken over by %s" % (NAMES[v_old], NAMES[v_new])
    old = pmq.RawClient(b.port, v_old, "old connection (%s)" % what)
    new = pmq.RawClient(b.port, v_new, "new connection (%s)" % what)
    try:
        old.connect(cid)
        old.subscribe(cid + "/old", 1)
        slots = (b.slot_of(cid, old.local_port),)
        new.connect(cid)
        slots += (b.slot_of(cid, new.local_port),)
        expect_taken_over(b, old)
        new.subscribe(cid + "/new", 1)
        pub.publish(cid + "/old", b"for the old subscription", 1)
        pub.publish(cid + "/new", b"for the new connection", 1)
        m = new.message(what="the message for its subscription")
        check((m.topic, m.payload) == (cid + "/new", b"for the new connection"),
              "%s: the new connection expected only its own subscription's message, "
              "got %r" % (what, m))
        new.ping()
        return slots
    finally:
        old.close()
        new.close()


def rounds(b, pub):
    """Takeovers until same-worker and cross-worker were each seen enough."""
    want = 3
    seen = {True: 0, False: 0}
    needed = [True, False] if b.slots > 1 else [True]
    combos = [(5, 5), (4, 4), (5, 4), (4, 5)]
    for i in range(80):
        if all(seen[k] >= want for k in needed) and i >= len(combos) * 2:
            return seen
        s_old, s_new = takeover_round(b, pub, *combos[i % len(combos)])
        seen[s_old == s_new] += 1
    raise pmq.TestFailure("80 takeovers gave %d on the same worker and %d across "
                          "workers, wanted %d of each" % (seen[True], seen[False], want))


def burst(b, pub):
    """Ten connections with one id, one after the other."""
    cid = pmq.unique("burst")
    conns = []
    try:
        for i in range(10):
            c = pmq.RawClient(b.port, 5 if i % 2 == 0 else 4, "connection %d of 10" % (i + 1))
            conns.append(c)
            c.connect(cid)
        for c in conns[:-1]:
            expect_taken_over(b, c)
        last = conns[-1]
        last.subscribe(cid + "/t", 1)
        pub.publish(cid + "/t", b"to the last one", 1)
        m = last.message()
        check(m.payload == b"to the last one", "the last connection got %r" % m)
    finally:
        for c in conns:
            c.close()


def simultaneous(b):
    """Two CONNECTs with one id at once: exactly one connection survives."""
    for i in range(10):
        cid = pmq.unique("sim")
        a = pmq.RawClient(b.port, 5, "first of two simultaneous connections")
        c = pmq.RawClient(b.port, 5, "second of two simultaneous connections")
        try:
            packet = pmq.connect_packet(cid, 5)
            a.send(packet)
            c.send(packet)
            pmq.wait_for(lambda: not a.is_open() or not c.is_open(), 5,
                         "one of two connections with the id %s to be closed" % cid)
            gone, kept = (a, c) if not a.is_open() else (c, a)
            check(kept.is_open(), "both connections with the id %s were closed" % cid)
            # the loser may have had its CONNACK before being taken over
            expect_taken_over(b, gone, allow=(pmq.CONNACK,))
            ack = kept.expect(pmq.CONNACK)
            check(ack.reason == 0, "the surviving connection got %r" % ack)
            kept.ping()
        finally:
            a.close()
            c.close()


def test():
    b = pmq.start_target(workers=2, name="takeover")
    pub = pmq.RawClient(b.port, 5, "publisher")
    try:
        pub.connect(pmq.unique("pub"))
        seen = rounds(b, pub)
        burst(b, pub)
        simultaneous(b)
        pub.ping()
        b.check_alive("after the takeovers")
        print("takeovers on the same worker: %d, across workers: %d" %
              (seen[True], seen[False]))
    finally:
        pub.close()
        b.stop()
        b.cleanup()


pmq.run_test(test)
