"""PUBACK 0x10, No matching subscribers (MQTT 5.0 3.4.2.1), as Mosquitto
answers: a 5.0 QoS 1 PUBLISH that no subscription anywhere matches gets
PUBACK 0x10; one that something matches gets 0x00.  "Anywhere" is what
the broker holds, whichever worker the publisher is on:

- nobody: 0x10; a subscriber on another worker: 0x00; gone again: 0x10
  (soon: an UNSUBACK does not wait for the other workers);
- the publisher's own No Local subscription counts as a match (it is a
  subscription, though the message is not sent back);
- a shared group whose member is on another worker: 0x00;
- a stored session that is away, which only walsvc holds: 0x00 while
  the session lasts, 0x10 once it has ended;
- 3.1.1 has no reason code: a PUBACK of remaining length 2 either way;
  QoS 2 gets PUBREC 0x00 either way (Mosquitto does the same).

Run against Mosquitto too (PMQ_TARGET=mosquitto): the answers are the
same.
"""

import pmq
from pmq import check

NO_MATCH = 0x10


def puback(pub, topic, version=5):
    """Publish at QoS 1; the PUBACK's reason (None: a 3.1.1 PUBACK)."""
    pid = pub.pid()
    pub.send(pmq.publish_packet(topic, b"x", 1, pid, version=version))
    ack = pub.expect(pmq.PUBACK)
    check(ack.pid == pid, "PUBACK for %d, expected %d" % (ack.pid, pid))
    if version != 5:
        check(len(ack.body) == 2, "3.1.1 PUBACK of remaining length %d" %
              len(ack.body))
        return None
    return ack.reason


def expect_reason(pub, topic, want, what):
    got = puback(pub, topic)
    check(got == want, "%s: PUBACK 0x%02x, expected 0x%02x" % (what, got, want))


def subscribe(c, topic, qos=1, props=None):
    c.send(pmq.subscribe_packet(c.pid(), [(topic, qos)], version=c.version,
                                props=props))
    ack = c.expect(pmq.SUBACK)
    check(ack.codes and ack.codes[-1] < 0x80, "SUBACK refused %s: %r" % (topic, ack))


def unsubscribe(c, topic):
    c.send(pmq.unsubscribe_packet(c.pid(), [topic], version=c.version))
    c.expect(pmq.UNSUBACK)


def test():
    b = pmq.start_target(workers=2, name="nosub")
    opened = []
    try:
        pub, slot = pmq.raw_elsewhere(b, 5, "publisher", None)
        opened.append(pub)
        pub.connect(pmq.unique("pub"))
        base = pmq.unique("nosub")

        expect_reason(pub, base + "/a", NO_MATCH, "nobody subscribed")

        sub, _ = pmq.raw_elsewhere(b, 5, "subscriber", slot)
        opened.append(sub)
        sub.connect(pmq.unique("sub"))
        subscribe(sub, base + "/+")
        expect_reason(pub, base + "/a", 0, "a subscriber on another worker")
        sub.expect(pmq.PUBLISH)
        unsubscribe(sub, base + "/+")
        # the UNSUBACK does not wait for the other workers to forget it
        pmq.wait_for(lambda: puback(pub, base + "/a") == NO_MATCH, 10,
                     "PUBACK 0x10 once the subscriber left")

        # the publisher's own No Local subscription is a match
        subscribe(pub, base + "/self", 1 | 0x04)
        expect_reason(pub, base + "/self", 0, "the publisher's own No Local "
                      "subscription")

        # a shared group: its member is elsewhere
        subscribe(sub, "$share/g/" + base + "/shared")
        expect_reason(pub, base + "/shared", 0, "a shared group's member on "
                      "another worker")
        sub.expect(pmq.PUBLISH)

        # a stored session that is away: only walsvc holds it
        cid = pmq.unique("away")
        away, _ = pmq.raw_elsewhere(b, 5, "stored session", slot)
        opened.append(away)
        away.connect(cid, clean=True, props={"session-expiry": 300})
        subscribe(away, base + "/stored")
        away.send(pmq.disconnect_packet(version=5))
        away.close()
        b.wait_closed(away.local_port)
        expect_reason(pub, base + "/stored", 0, "a stored session away")
        # it comes back with clean start and expiry 0: the session ends
        back = pmq.RawClient(b.port, 5, "session ender")
        opened.append(back)
        back.connect(cid, clean=True)
        back.send(pmq.disconnect_packet(version=5))
        back.close()
        b.wait_closed(back.local_port)
        pmq.wait_for(lambda: puback(pub, base + "/stored") == NO_MATCH, 10,
                     "PUBACK 0x10 once the stored session ended")

        # 3.1.1: no reason code either way
        old = pmq.RawClient(b.port, 4, "3.1.1 publisher")
        opened.append(old)
        old.connect(pmq.unique("old"))
        puback(old, base + "/nobody", version=4)
        puback(old, base + "/self", version=4)

        # QoS 2: PUBREC 0x00 whatever matches
        pid = pub.pid()
        pub.send(pmq.publish_packet(base + "/nobody", b"x", 2, pid, version=5))
        rec = pub.expect(pmq.PUBREC)
        check(rec.pid == pid and rec.reason == 0,
              "QoS 2 to nobody: %r, expected PUBREC 0x00" % rec)
        pub.send(pmq.pubrel_packet(pid))
        pub.expect(pmq.PUBCOMP)
    finally:
        for c in opened:
            c.close()
        b.cleanup()


pmq.run_test(test)
