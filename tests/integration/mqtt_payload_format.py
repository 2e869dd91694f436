"""The Payload Format Indicator (MQTT 5, 3.3.2.3.2), across workers.

By default a message is passed on whatever its payload, with its
indicator, as Mosquitto does (it never looks).  With
mqtt.check-payload-format a payload the indicator calls UTF-8 that is
not is refused: PUBACK or PUBREC 0x99 at QoS 1 and 2 (the message goes
nowhere), DISCONNECT 0x99 at QoS 0; well-formed UTF-8, and anything with
indicator 0 or none, still pass.  The default part runs against
Mosquitto too (PMQ_TARGET=mosquitto)."""

import contextlib

import pmq
from pmq import check

BAD = b"\xff\xfe not UTF-8"
GOOD = "caf\u00e9 \u2713".encode()


def pair(b, done, u):
    sub, slot = pmq.raw_elsewhere(b, 5, "subscriber", None)
    done.callback(sub.close)
    sub.connect(u + "-sub")
    check(sub.subscribe([(u + "/#", 2)]) == [2], "SUBACK")
    pub, _ = pmq.raw_elsewhere(b, 5, "publisher", slot)
    done.callback(pub.close)
    pub.connect(u + "-pub")
    return sub, pub


def send(pub, u, leaf, payload, qos, pid, pfi):
    props = {"payload-format": pfi} if pfi is not None else None
    pub.send(pmq.publish_packet(u + "/" + leaf, payload, qos, pid, version=5, props=props))


def expect_ack(pub, qos, pid, reason, what):
    ack = pub.expect(pmq.PUBACK if qos == 1 else pmq.PUBREC, what=what)
    check(ack.pid == pid and ack.reason == reason, "%s: %r, expected 0x%02x" %
          (what, ack, reason))
    if qos == 2 and reason < 0x80:
        pub.send(pmq.pubrel_packet(pid))
        pub.expect(pmq.PUBCOMP, what=what + ": PUBCOMP")


def expect_message(sub, topic, payload, pfi, what):
    m = sub.message(what=what)
    check(m.topic == topic and m.payload == payload and
          m.props.get("payload-format") == pfi,
          "%s: got %r %r %r" % (what, m.topic, m.payload, m.props))


def passes_everything(b):
    u = pmq.unique("pfi")
    with contextlib.ExitStack() as done:
        sub, pub = pair(b, done, u)
        for qos, pid in ((0, 1), (1, 2), (2, 3)):
            send(pub, u, "bad%d" % qos, BAD, qos, pid, 1)
            if qos:
                expect_ack(pub, qos, pid, 0, "QoS %d, indicator 1, not UTF-8, unchecked" % qos)
            expect_message(sub, "%s/bad%d" % (u, qos), BAD, 1,
                           "QoS %d message passed on unchecked" % qos)


def refuses_bad(b):
    u = pmq.unique("pfichk")
    with contextlib.ExitStack() as done:
        sub, pub = pair(b, done, u)
        for qos, pid in ((1, 1), (2, 2)):
            send(pub, u, "bad", BAD, qos, pid, 1)
            expect_ack(pub, qos, pid, 0x99, "QoS %d, indicator 1, not UTF-8" % qos)
        send(pub, u, "good", GOOD, 1, 3, 1)
        expect_ack(pub, 1, 3, 0, "QoS 1, indicator 1, UTF-8")
        send(pub, u, "binary", BAD, 1, 4, 0)
        expect_ack(pub, 1, 4, 0, "QoS 1, indicator 0, binary")
        send(pub, u, "plain", BAD, 2, 5, None)
        expect_ack(pub, 2, 5, 0, "QoS 2, no indicator, binary")
        # what came is what passed, in order: nothing refused among it
        expect_message(sub, u + "/good", GOOD, 1, "the UTF-8 message")
        expect_message(sub, u + "/binary", BAD, 0, "the binary message, indicator 0")
        expect_message(sub, u + "/plain", BAD, None, "the message without indicator")
        send(pub, u, "bad", BAD, 0, 6, 1)
        pub.expect_closed(disconnect=0x99)


def test():
    b = pmq.start_target(workers=2, name="pfi")
    try:
        passes_everything(b)
        b.check_alive("after unchecked payloads")
    finally:
        b.stop()
        b.cleanup()
    if b.kind != "promptmqd":
        return
    b = pmq.PromptMQ(workers=2, name="pfichk",
                     args=["--mqtt-check-payload-format=true"]).start()
    try:
        refuses_bad(b)
        b.check_alive("after refused payloads")
    finally:
        b.stop()
        b.cleanup()


pmq.run_test(test)
