"""Topic levels: a topic or filter of 201 levels (200 '/') works; one of
202 levels is refused as Mosquitto 2.0 refuses it, its limit being
mqtt.max-topic-levels' default: a 5.0 PUBLISH gets DISCONNECT 0x82
(protocol error), a 5.0 SUBSCRIBE DISCONNECT 0x81 (malformed), a 3.1.1
client is closed; a 65,535-byte topic within the limit works, publisher
and subscriber on different workers."""

import pmq
from pmq import check


def levels(n, prefix):
    return prefix + "/x" * (n - 1)


def test():
    b = pmq.start_target(workers=2, name="levels")
    try:
        base = pmq.unique("lv")
        sub, s = pmq.raw_elsewhere(b, 5, "subscriber", None)
        sub.connect(pmq.unique("lvsub"))
        pub, _ = pmq.raw_elsewhere(b, 5, "publisher", s)
        pub.connect(pmq.unique("lvpub"))
        ok = levels(201, base)
        long = base + "/" + "y" * (65535 - len(base) - 1)
        check(sub.subscribe([ok, long]) == [1, 1], "SUBSCRIBE to 201 levels and a 64 KiB topic")
        for topic in (ok, long):
            pub.publish(topic, b"within", 1)
            p = sub.expect(pmq.PUBLISH, what="a message on %d bytes" % len(topic))
            check(p.topic == topic, "got %r..." % p.topic[:40])
            sub.send(pmq.puback_packet(p.pid))

        bad = levels(202, base)
        pub.send(pmq.publish_packet(bad, b"beyond", 1, pid=7, version=5))
        pub.expect_closed(disconnect=0x82)
        sub.send(pmq.subscribe_packet(9, [(bad, 1)], 5))
        sub.expect_closed(disconnect=0x81)
        for what, packet in (("PUBLISH", pmq.publish_packet(bad, b"beyond", 1, pid=7, version=4)),
                             ("SUBSCRIBE", pmq.subscribe_packet(9, [(bad, 1)], 4))):
            old = pmq.RawClient(b.port, 4, "3.1.1 " + what)
            try:
                old.connect(pmq.unique("lv311"))
                old.send(packet)
                old.expect_closed()
            finally:
                old.close()
        b.check_alive("after topics of too many levels")
    finally:
        b.cleanup()


pmq.run_test(test)
