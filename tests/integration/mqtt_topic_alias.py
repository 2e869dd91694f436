"""Topic aliases from an MQTT 5 publisher (3.3.2.3.4), across workers:
CONNACK offers a Topic Alias Maximum of 10 (Mosquitto's default and
ours); an alias set with a topic stands for it in later PUBLISHes with an
empty topic, at every QoS, for subscribers on another worker, for a
stored session's offline queue and for retained messages, and
subscribers get the topic, never the alias; an alias may be set again to
another topic; the table is the connection's and is gone at reconnect.
Bad aliases end the connection: 0 or above the maximum with 0x94, one
never set with 0x82.  Towards a subscriber that takes aliases (Topic
Alias Maximum in its CONNECT), PromptMQ sends its own, least recently
used first to go, and none to one that takes none.  Runs against
Mosquitto with PMQ_TARGET=mosquitto (which sends no aliases)."""

import contextlib

import pmq
from pmq import check

MAXIMUM = 10


def aliased(topic, payload, alias, qos=0, pid=1, retain=False):
    return pmq.publish_packet(topic, payload, qos, pid, retain, 5,
                              props={"topic-alias": alias})


def publisher(b, done, avoid, u):
    """A 5.0 publisher on a worker other than avoid: (client, CONNACK)."""
    r, _ = pmq.raw_elsewhere(b, 5, "aliasing publisher", avoid)
    done.callback(r.close)
    ack = r.connect(u + "-pub")
    return r, ack


def expect_message(sub, topic, payload, qos, what):
    p = sub.message(what=what)
    check(p.topic == topic and p.payload == payload and p.qos == qos,
          "%s: expected %r %r at QoS %d, got %r %r at QoS %d" %
          (what, topic, payload, qos, p.topic, p.payload, p.qos))
    check("topic-alias" not in p.props, "%s: the subscriber got the publisher's "
          "alias: %r" % (what, p.props))
    return p


def acked(r, ptype, pid, what):
    ack = r.expect(ptype, what=what)
    check(ack.pid == pid and ack.reason < 0x80, "%s: %r" % (what, ack))


def towards_subscriber(b, done, u):
    """Our aliases to a subscriber that takes two (Mosquitto sends none):
    a topic goes with a new alias once, then the alias alone; a third
    topic takes the least recently used alias, with its topic; a topic
    whose alias was taken goes with its topic again."""
    sub, slot = pmq.raw_elsewhere(b, 5, "aliased subscriber", None)
    done.callback(sub.close)
    sub.connect(u + "-asub", props={"topic-alias-maximum": 2})
    check(sub.subscribe([(u + "-out/#", 1)]) == [1], "SUBACK")
    plain, _ = pmq.raw_elsewhere(b, 5, "plain subscriber", None)
    done.callback(plain.close)
    plain.connect(u + "-psub")
    check(plain.subscribe([(u + "-out/#", 0)]) == [0], "plain SUBACK")
    pub, _ = pmq.raw_elsewhere(b, 5, "publisher of aliased topics", slot)
    done.callback(pub.close)
    pub.connect(u + "-apub")
    aliases = {}

    def send(leaf, want_topic, what):
        topic = "%s-out/%s" % (u, leaf)
        pub.send(pmq.publish_packet(topic, leaf.encode(), 1, 20, version=5))
        acked(pub, pmq.PUBACK, 20, what + ": PUBACK")
        m = sub.message(what=what)
        alias = m.props.get("topic-alias")
        check(alias in (1, 2), "%s: alias %r (the client takes 1 and 2)" % (what, alias))
        check(m.topic == (topic if want_topic else ""),
              "%s: topic %r, expected %s" % (what, m.topic,
                                             repr(topic) if want_topic else "none"))
        check(m.payload == leaf.encode(), "%s: payload %r" % (what, m.payload))
        p = plain.message(what=what + " (plain subscriber)")
        check(p.topic == topic and "topic-alias" not in p.props,
              "%s: a subscriber that takes no aliases got %r %r" % (what, p.topic, p.props))
        return alias

    aliases["a"] = send("a", True, "a new topic")
    check(send("a", False, "the same topic again") == aliases["a"], "alias of a changed")
    aliases["b"] = send("b", True, "a second topic")
    check(aliases["b"] != aliases["a"], "two topics, one alias")
    check(send("b", False, "the second topic again") == aliases["b"], "alias of b changed")
    check(send("a", False, "the first topic again") == aliases["a"], "alias of a changed")
    # b is now the least recently used: c takes its alias
    check(send("c", True, "a third topic") == aliases["b"], "c did not take b's alias")
    check(send("b", True, "b, its alias taken") == aliases["a"],
          "b did not take the least recently used alias (a's)")
    check(send("c", False, "c by its alias") == aliases["b"], "alias of c changed")


def test():
    b = pmq.start_target(workers=2, name="alias")
    try:
        u = pmq.unique("alias")
        with contextlib.ExitStack() as done:
            sub, sub_slot = pmq.raw_elsewhere(b, 5, "subscriber", None)
            done.callback(sub.close)
            sub.connect(u + "-sub")
            check(sub.subscribe([(u + "/#", 2)]) == [2], "SUBACK")

            pub, ack = publisher(b, done, sub_slot, u)
            got = ack.props.get("topic-alias-maximum")
            check(got == MAXIMUM, "CONNACK Topic Alias Maximum %r, expected %d" %
                  (got, MAXIMUM))

            # set with the topic, then used alone, at each QoS
            pub.send(aliased(u + "/a", b"set", 1))
            expect_message(sub, u + "/a", b"set", 0, "alias 1 set with its topic")
            pub.send(aliased("", b"used q0", 1))
            expect_message(sub, u + "/a", b"used q0", 0, "alias 1 alone, QoS 0")
            pub.send(aliased("", b"used q1", 1, qos=1, pid=7))
            acked(pub, pmq.PUBACK, 7, "PUBACK of an alias-only QoS 1 message")
            expect_message(sub, u + "/a", b"used q1", 1, "alias 1 alone, QoS 1")
            pub.send(aliased("", b"used q2", 1, qos=2, pid=8))
            acked(pub, pmq.PUBREC, 8, "PUBREC of an alias-only QoS 2 message")
            pub.send(pmq.pubrel_packet(8))
            acked(pub, pmq.PUBCOMP, 8, "PUBCOMP")
            expect_message(sub, u + "/a", b"used q2", 2, "alias 1 alone, QoS 2")

            # the highest alias; one set again to another topic
            pub.send(aliased(u + "/top", b"ten", MAXIMUM))
            expect_message(sub, u + "/top", b"ten", 0, "alias %d" % MAXIMUM)
            pub.send(aliased(u + "/b", b"moved", 1))
            expect_message(sub, u + "/b", b"moved", 0, "alias 1 set again")
            pub.send(aliased("", b"where", 1))
            expect_message(sub, u + "/b", b"where", 0, "alias 1 after it moved")
            pub.send(aliased("", b"still", MAXIMUM))
            expect_message(sub, u + "/top", b"still", 0, "alias %d kept" % MAXIMUM)

            # retained through an alias: a later subscriber gets the topic
            pub.send(aliased("", b"kept", MAXIMUM, qos=1, pid=9, retain=True))
            acked(pub, pmq.PUBACK, 9, "PUBACK of a retained alias-only message")
            expect_message(sub, u + "/top", b"kept", 1, "retained, live")
            late, _ = pmq.raw_elsewhere(b, 5, "late subscriber", None)
            done.callback(late.close)
            late.connect(u + "-late")
            check(late.subscribe([(u + "/top", 1)]) == [1], "late SUBACK")
            p = expect_message(late, u + "/top", b"kept", 1, "the retained message")
            check(p.retain, "the retained message came without RETAIN")

            # a stored session away: its queue holds the topic
            away = pmq.RawClient(b.port, 5, "stored session")
            done.callback(away.close)
            away.connect(u + "-away", props={"session-expiry": 300})
            check(away.subscribe([(u + "/q/#", 1)]) == [1], "stored SUBACK")
            away.send(pmq.disconnect_packet(5))
            away.expect_closed()
            pub.send(aliased(u + "/q/x", b"queued", 2, qos=1, pid=10))
            acked(pub, pmq.PUBACK, 10, "PUBACK while the session is away")
            pub.send(aliased("", b"queued too", 2, qos=1, pid=11))
            acked(pub, pmq.PUBACK, 11, "PUBACK of an alias-only message")
            expect_message(sub, u + "/q/x", b"queued", 1, "live, beside the queue")
            expect_message(sub, u + "/q/x", b"queued too", 1, "live, alias-only")
            back = pmq.RawClient(b.port, 5, "stored session back")
            done.callback(back.close)
            ack = back.connect(u + "-away", clean=False, props={"session-expiry": 300})
            check(ack.session_present, "the session was not kept")
            expect_message(back, u + "/q/x", b"queued", 1, "queued with its topic")
            expect_message(back, u + "/q/x", b"queued too", 1,
                           "queued alias-only message with its topic")

            if b.kind == "promptmqd":
                towards_subscriber(b, done, u)

            # a reconnection forgets every alias
            pub.send(pmq.disconnect_packet(5))
            pub.expect_closed()
            pub, _ = publisher(b, done, sub_slot, u)
            pub.send(aliased("", b"forgotten", 1))
            pub.expect_closed(disconnect=0x82)

            # 0 and above the maximum: 0x94 (Mosquitto: 0x81 for 0,
            # docs/mosquitto.md)
            for alias in (0, MAXIMUM + 1):
                bad, _ = publisher(b, done, sub_slot, u)
                bad.send(aliased(u + "/a", b"bad", alias))
                bad.expect_closed(disconnect=0x81 if alias == 0 and
                                  b.kind == "mosquitto" else 0x94)
            sub.ping()
            sub.send(pmq.publish_packet(u + "/end", b"end", 0, version=5))
            expect_message(sub, u + "/end", b"end", 0,
                           "nothing of the refused aliases reached the subscriber")
        b.check_alive("after the topic alias checks")
    finally:
        b.stop()
        b.cleanup()


pmq.run_test(test)
