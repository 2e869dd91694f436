"""Subscription Identifiers (MQTT 5.0 3.8.2.1.2, 3.3.4), publisher and
subscriber on different workers:

- the CONNACK does not say they are unavailable;
- a message that matches several of one client's subscriptions comes
  once, at the highest granted QoS, with the identifier of every matching
  subscription that has one (MQTT-3.3.4-3, -5), and none of a
  subscription without one (Mosquitto: one copy per subscription, each
  with its own identifier, which MQTT-3.3.4-4 allows too);
- subscribing again to a filter replaces its identifier; unsubscribing
  takes it away; a message under 40 overlapping subscriptions carries
  all 40 identifiers;
- a stored session keeps the identifiers: a message queued while the
  client was away carries them when it reconnects, on whichever worker;
- a 3.1.1 subscriber gets no properties;
- with `mqtt.subscription-id-available = false` (promptmqd only:
  Mosquitto cannot turn them off) the CONNACK says Subscription
  Identifier Available 0 and a SUBSCRIBE that carries one is a Protocol
  Error, DISCONNECT 0xA1 (MQTT 5.0 3.2.2.3.16); one without is granted.
"""

import pmq
from pmq import check


def ids_of(p):
    return sorted(p.props.get("subscription-id", []))


# Mosquitto 2.0 sends one copy per matching subscription, each with its
# own identifier (the specification allows both, MQTT-3.3.4-4 and -5);
# promptmqd sends one, with all of them, as the protocol issue asks.
ONE_COPY = pmq.TARGET == "promptmqd"


def receive(r, topic, want_ids, what, qos=None, matching=1):
    """The message for topic: one PUBLISH with want_ids (Mosquitto:
    `matching` copies whose identifiers together are want_ids)."""
    got = []
    for _ in range(1 if ONE_COPY else matching):
        p = r.expect(pmq.PUBLISH, what=what)
        check(p.topic == topic, "%s: PUBLISH for %r, expected %r" % (what, p.topic, topic))
        if p.qos == 1:
            r.send(pmq.puback_packet(p.pid))
        got.append(p)
    ids = sorted(i for p in got for i in ids_of(p))
    check(ids == sorted(want_ids), "%s: identifiers %s, expected %s" %
          (what, ids, sorted(want_ids)))
    if qos is not None:
        check(max(p.qos for p in got) == qos, "%s: QoS %d, expected %d" %
              (what, max(p.qos for p in got), qos))


def test():
    b = pmq.start_target(workers=2, name="subids")
    pub = sub = old = None
    try:
        sub, slot = pmq.raw_elsewhere(b, 5, "subscriber", None)
        ack = sub.connect(pmq.unique("subids"))
        check(ack.props.get("subscription-id-available", 1) == 1,
              "the CONNACK says Subscription Identifiers are not available: %s" % ack.props)
        pub, _ = pmq.raw_elsewhere(b, 5, "publisher", slot)
        pub.connect(pmq.unique("pub"))
        base = pmq.unique("sid")
        check(sub.subscribe([(base + "/+", 0)], props={"subscription-id": 1}) == [0],
              "SUBSCRIBE with identifier 1")
        check(sub.subscribe([(base + "/#", 1)], props={"subscription-id": 2}) == [1],
              "SUBSCRIBE with identifier 2")
        check(sub.subscribe([(base + "/b", 1)]) == [1], "SUBSCRIBE without identifier")

        pub.publish(base + "/b", b"three subscriptions", 1)
        receive(sub, base + "/b", [1, 2], "a/b under a/+, a/# and a/b", qos=1, matching=3)
        pub.publish(base, b"only #", 1)
        receive(sub, base, [2], "a under a/# only")
        # one copy each: the next message is the marker, nothing between
        pub.publish(base + "/marker", b"m", 0)
        receive(sub, base + "/marker", [1, 2], "the marker", matching=2)

        check(sub.subscribe([(base + "/+", 1)], props={"subscription-id": 5}) == [1],
              "SUBSCRIBE again with identifier 5")
        pub.publish(base + "/c", b"replaced", 1)
        receive(sub, base + "/c", [2, 5], "after the replacement", matching=2)
        sub.send(pmq.packet(pmq.UNSUBSCRIBE, 2, b"\x7f\x01" + pmq.encode_props(None) +
                            pmq.mqtt_str(base + "/#")))
        sub.expect(pmq.UNSUBACK, what="UNSUBACK")
        pub.publish(base + "/c", b"after unsubscribe", 1)
        receive(sub, base + "/c", [5], "after UNSUBSCRIBE a/#")

        # more overlapping subscriptions than a fixed array would hold
        deep = "/".join("l%d" % i for i in range(40))
        for k in range(40):
            f = "/".join([base, "deep"] + deep.split("/")[:k] + ["#"])
            check(sub.subscribe([(f, 0)], props={"subscription-id": 100 + k}) == [0],
                  "SUBSCRIBE %d of 40" % k)
        pub.publish(base + "/deep/" + deep, b"deep", 0)
        receive(sub, base + "/deep/" + deep, [100 + k for k in range(40)],
                "a message under 40 subscriptions", matching=40)

        # a 3.1.1 subscriber: no properties at all
        old, _ = pmq.raw_elsewhere(b, 4, "3.1.1 subscriber", None)
        old.connect(pmq.unique("old"))
        old.subscribe([(base + "/v3", 1)])
        pub.publish(base + "/v3", b"v3", 1)
        p = old.expect(pmq.PUBLISH, what="the 3.1.1 subscriber's message")
        check(p.props == {}, "a 3.1.1 PUBLISH with properties: %s" % p.props)
        old.close()
        old = None

        # a stored session keeps its identifiers while the client is away
        cid = pmq.unique("stored")
        props = {"session-expiry": 300}
        st, _ = pmq.raw_elsewhere(b, 5, "stored session", None)
        st.connect(cid, clean=False, props=props)
        check(st.subscribe([(base + "/stored/#", 1)], props={"subscription-id": 7}) == [1],
              "SUBSCRIBE of the stored session")
        st.send(pmq.disconnect_packet(5))
        st.close()
        pub.publish(base + "/stored/x", b"while away", 1)
        st, _ = pmq.raw_elsewhere(b, 5, "stored session back", None)
        ack = st.connect(cid, clean=False, props=props)
        check(ack.session_present, "the session was not kept")
        receive(st, base + "/stored/x", [7], "the queued message after the reconnection")
        st.send(pmq.disconnect_packet(5, props={"session-expiry": 0}))
        st.close()
        b.check_alive("after subscription identifiers")
    finally:
        for c in (pub, sub, old):
            if c is not None:
                c.close()
        b.cleanup()


def switched_off():
    b = pmq.PromptMQ(workers=2, name="subids-off",
                     conf_values={"mqtt.subscription-id-available": False}).start()
    c = None
    try:
        c = pmq.RawClient(b.port, 5, "subscriber")
        ack = c.connect(pmq.unique("off"))
        check(ack.props.get("subscription-id-available") == 0,
              "CONNACK %s: Subscription Identifier Available 0 expected" % ack.props)
        check(c.subscribe([("off/plain", 1)]) == [1], "SUBSCRIBE without an identifier")
        c.send(pmq.subscribe_packet(c.pid(), [("off/id", 1)], version=5,
                                    props={"subscription-id": 3}))
        c.expect_closed(disconnect=0xA1)
    finally:
        if c is not None:
            c.close()
        b.cleanup()


def test_all():
    test()
    if pmq.TARGET == "promptmqd":
        switched_off()


pmq.run_test(test_all)
