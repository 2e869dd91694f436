"""The cases of differential.py: packet sequences, valid and invalid, in
MQTT 3.1, 3.1.1 and 5.0, each sent as raw bytes to both brokers.

A case is a list of steps; a step is what one client connection sends
before its reply is collected (see differential.py).  Every case has its
own client identifiers and topics (made by ids() and topic() below), so
that the sessions and retained messages of one case never meet another
case's clients, and both brokers get exactly the same bytes.  A step's
data may be a function of the packets the connection received so far,
for acknowledgements of the broker's own packet identifiers.
"""

import struct

import pmq
from pmq import (connect_packet, encode_props, mqtt_str, packet, publish_packet,
                 subscribe_packet, unsubscribe_packet, puback_packet, pubrec_packet, pubrel_packet,
                 pubcomp_packet, disconnect_packet, PINGREQ_PACKET)

LIMIT = 1024    # both brokers' maximum packet size (bytes)


class Step:
    def __init__(self, client, data, publishes=0):
        self.client, self.data, self.publishes = client, data, publishes


class Case:
    def __init__(self, group, name, steps):
        self.group, self.steps = group, steps
        self.name = "%s: %s" % (group, name)


CASES = []
_n = [0]


def case(group, name, *steps, **kw):
    """A case: steps are Step, or bytes (client "a" sends them)."""
    CASES.append(Case(group, name, [s if isinstance(s, Step) else Step("a", s)
                                    for s in steps], **kw))


def step(client, *packets, **kw):
    data = packets[0] if len(packets) == 1 and callable(packets[0]) else b"".join(packets)
    return Step(client, data, **kw)


def cid(role="c"):
    """A client identifier no other case uses."""
    _n[0] += 1
    return "diff-%s-%d" % (role, _n[0])


def topic(leaf="t"):
    _n[0] += 1
    return "diff/%d/%s" % (_n[0], leaf)


def c3(client_id=None, **kw):
    return connect_packet(cid() if client_id is None else client_id, 3, **kw)


def c4(client_id=None, **kw):
    return connect_packet(cid() if client_id is None else client_id, 4, **kw)


def c5(client_id=None, **kw):
    return connect_packet(cid() if client_id is None else client_id, 5, **kw)


def connect_with(level, flags, payload, props=b"", name=None, fixed=0):
    """A CONNECT built field by field: flags byte, payload bytes as given."""
    name = name or (b"MQIsdp" if level == 3 else b"MQTT")
    body = mqtt_str(name) + bytes([level, flags]) + struct.pack("!H", 60)
    if level == 5:
        body += props or b"\x00"
    return packet(pmq.CONNECT, fixed, body + payload)


def sub(pid, filters, version, props=None):
    """SUBSCRIBE; filters: [(filter, options byte)]"""
    return subscribe_packet(pid, filters, version, props)


def unsub(pid, filters, version, props=None, flags=2):
    return unsubscribe_packet(pid, filters, version, props, flags)


def pub(t, payload, qos=0, pid=1, version=4, **kw):
    return publish_packet(t, payload, qos, pid, version=version, **kw)


def ack_last(make):
    """Acknowledge the last PUBLISH (or PUBREC/PUBREL) the connection got."""
    def build(received):
        for p in reversed(received):
            if p[0] >> 4 in (pmq.PUBLISH, pmq.PUBREC, pmq.PUBREL):
                body = p[2:]    # packets this small have a 1-byte length
                if p[0] >> 4 == pmq.PUBLISH:
                    n = struct.unpack("!H", body[:2])[0]
                    return make(struct.unpack("!H", body[2 + n:4 + n])[0])
                return make(struct.unpack("!H", body[:2])[0])
        return b""
    return build


# ---------------------------------------------------------------------------
# CONNECT

case("CONNECT", "3.1.1 clean session", c4())
case("CONNECT", "5.0 clean start", c5())
case("CONNECT", "3.1 MQIsdp", c3())
case("CONNECT", "3.1.1 empty client id, clean session", c4(""))
case("CONNECT", "3.1.1 empty client id, no clean session", c4("", clean=False))
case("CONNECT", "5.0 empty client id, clean start", c5(""))
case("CONNECT", "5.0 empty client id, no clean start", c5("", clean=False))
case("CONNECT", "3.1 empty client id", c3(""))
case("CONNECT", "3.1 client id of 24 bytes", c3("diff-" + "x" * 19))
case("CONNECT", "unknown protocol name", c4(protocol=(b"MQTX", 4)))
case("CONNECT", "MQTT level 3", c4(protocol=(b"MQTT", 3)))
case("CONNECT", "MQTT level 6", c5(protocol=(b"MQTT", 6)))
# [MQTT-3.1.3-5]: 1 to 23 letters and digits are always a client id
case("CONNECT", "3.1.1 client id of letters and digits",
     c4(client_id="0123456789abcdefghijXYZ"))
# [MQTT-3.1.4-5]: nothing after a refused CONNECT is acted on
t = topic("refused")
case("CONNECT", "3.1.1 a PUBLISH behind a refused CONNECT",
     step("a", c4() + sub(1, [(t, 0)], 4)),
     step("b", c4(protocol=(b"MQTT", 6)) + pub(t, "after the refusal", 0, 0, 4)),
     step("a", b""))
case("CONNECT", "MQIsdp level 4", c4(protocol=(b"MQIsdp", 4)))
case("CONNECT", "3.1.1 reserved flag", connect_with(4, 0x03, mqtt_str(cid())))
case("CONNECT", "5.0 reserved flag", connect_with(5, 0x03, mqtt_str(cid())))
case("CONNECT", "3.1.1 fixed header flags", connect_with(4, 0x02, mqtt_str(cid()), fixed=1))
case("CONNECT", "3.1.1 will", connect_with(4, 0x2E, mqtt_str(cid()) + mqtt_str(topic("will")) +
                                          mqtt_str("gone")))
case("CONNECT", "5.0 will with properties",
     connect_with(5, 0x0E, mqtt_str(cid()) + encode_props({"will-delay": 5, "content-type": "x"}) +
                  mqtt_str(topic("will")) + mqtt_str("gone")))
case("CONNECT", "3.1.1 will QoS 3", connect_with(4, 0x1E, mqtt_str(cid()) + mqtt_str(topic()) +
                                                 mqtt_str("x")))
case("CONNECT", "3.1.1 will retain without will", connect_with(4, 0x22, mqtt_str(cid())))
case("CONNECT", "5.0 will QoS without will", connect_with(5, 0x0A, mqtt_str(cid())))
case("CONNECT", "3.1.1 empty will topic", connect_with(4, 0x06, mqtt_str(cid()) + mqtt_str("") +
                                                       mqtt_str("x")))
case("CONNECT", "5.0 wildcard will topic",
     connect_with(5, 0x06, mqtt_str(cid()) + b"\x00" + mqtt_str("diff/+/w") + mqtt_str("x")))
case("CONNECT", "3.1.1 password without user name",
     connect_with(4, 0x42, mqtt_str(cid()) + mqtt_str("pw")))
case("CONNECT", "3.1.1 ill-formed UTF-8 client id",
     connect_with(4, 0x02, mqtt_str(b"diff-\xc0\xaf")))
case("CONNECT", "3.1.1 trailing bytes", connect_with(4, 0x02, mqtt_str(cid()) + b"\x00"))
case("CONNECT", "5.0 properties",
     c5(props={"session-expiry": 10, "receive-maximum": 5, "topic-alias-maximum": 3,
               "maximum-packet-size": 4096, "request-problem-info": 1,
               "user-property": [("a", "1"), ("b", "2")]}))
case("CONNECT", "5.0 keep alive 0", c5(keepalive=0))
case("CONNECT", "5.0 authentication method", c5(props={"auth-method": "NOPE"}))
case("CONNECT", "5.0 receive maximum 0", c5(props={"receive-maximum": 0}))
case("CONNECT", "5.0 maximum packet size 0", c5(props={"maximum-packet-size": 0}))
# the CONNACK with its Assigned Client Identifier cannot fit (MQTT-3.1.2-24)
case("CONNECT", "5.0 maximum packet size below the CONNACK's",
     c5("", props={"maximum-packet-size": 20}))
case("CONNECT", "5.0 duplicate property",
     connect_with(5, 0x02, mqtt_str(cid()), props=b"\x0a\x11\x00\x00\x00\x01\x11\x00\x00\x00\x02"))
case("CONNECT", "5.0 unknown property",
     connect_with(5, 0x02, mqtt_str(cid()), props=b"\x02\x7e\x00"))
case("CONNECT", "5.0 will property in CONNECT",
     connect_with(5, 0x02, mqtt_str(cid()), props=b"\x05\x18\x00\x00\x00\x01"))
# [MQTT-3.1.2-14]: Will Retain 0, the will goes out with RETAIN 0 (to a
# subscriber that asked for Retain As Published) and is not kept: a later
# subscriber gets only the message retained on the marker topic it
# subscribes to next (promptmqd sends retained messages after the SUBACK,
# one SUBSCRIBE after the other: a PINGRESP alone is no barrier for them)
t, m = topic("will"), topic("marker")
case("CONNECT", "5.0 will with Will Retain 0",
     step("s", c5() + sub(1, [(t, 0x08)], 5) + pub(m, "marker", 0, 0, 5, retain=True)),
     step("a", connect_with(5, 0x06, mqtt_str(cid()) + b"\x00" + mqtt_str(t) + mqtt_str("gone")) +
          disconnect_packet(5, 0x04)),
     step("s", b"", publishes=1),
     step("b", c5() + sub(1, [(t, 0)], 5) + sub(2, [(m, 0)], 5), publishes=1),
     step("s", pub(m, "", 0, 0, 5, retain=True)))
case("CONNECT", "3.1.1 second CONNECT", c4() + c4())
case("CONNECT", "5.0 second CONNECT", c5() + c5())
case("CONNECT", "PUBLISH before CONNECT", pub(topic(), "x", 1))

# ---------------------------------------------------------------------------
# SUBSCRIBE

case("SUBSCRIBE", "3.1.1 QoS 0, 1, 2", c4() + sub(1, [(topic("a"), 0), (topic("b"), 1),
                                                       (topic("c"), 2)], 4))
case("SUBSCRIBE", "5.0 QoS 0, 1, 2", c5() + sub(1, [(topic("a"), 0), (topic("b"), 1),
                                                     (topic("c"), 2)], 5))
case("SUBSCRIBE", "3.1 QoS 0, 1, 2", c3() + sub(1, [(topic("a"), 0), (topic("b"), 1),
                                                     (topic("c"), 2)], 3))
t = topic("w")
case("SUBSCRIBE", "3.1.1 wildcards",
     c4() + sub(1, [(t + "/+/x", 1), (t + "/#", 1), (t + "/+", 0)], 4))
for bad in ("diff/#/x", "diff/a+", ""):
    case("SUBSCRIBE", "3.1.1 invalid filter %r" % bad, c4() + sub(1, [(bad, 1)], 4))
    case("SUBSCRIBE", "5.0 invalid filter %r" % bad, c5() + sub(1, [(bad, 1)], 5))
case("SUBSCRIBE", "3.1.1 QoS 3", c4() + sub(1, [(topic(), 3)], 4))
case("SUBSCRIBE", "5.0 QoS 3", c5() + sub(1, [(topic(), 3)], 5))
case("SUBSCRIBE", "5.0 retain handling 3", c5() + sub(1, [(topic(), 0x31)], 5))
case("SUBSCRIBE", "5.0 reserved option bits", c5() + sub(1, [(topic(), 0x41)], 5))
case("SUBSCRIBE", "3.1.1 packet id 0", c4() + sub(0, [(topic(), 1)], 4))
case("SUBSCRIBE", "5.0 packet id 0", c5() + sub(0, [(topic(), 1)], 5))
case("SUBSCRIBE", "3.1.1 no filter", c4() + sub(1, [], 4))
case("SUBSCRIBE", "5.0 no filter", c5() + sub(1, [], 5))
case("SUBSCRIBE", "3.1.1 fixed header flags 0",
     c4() + packet(pmq.SUBSCRIBE, 0, struct.pack("!H", 1) + mqtt_str(topic()) + b"\x01"))
case("SUBSCRIBE", "5.0 subscription identifier 0",
     c5() + sub(1, [(topic(), 1)], 5, {"subscription-id": 0}))
case("SUBSCRIBE", "5.0 shared subscription", c5() + sub(1, [("$share/g/" + topic(), 1)], 5))
case("SUBSCRIBE", "5.0 no local on a shared subscription",
     c5() + sub(1, [("$share/g/" + topic(), 0x05)], 5))
t = topic("nl")
case("SUBSCRIBE", "5.0 no local: own message not sent back",
     c5() + sub(1, [(t, 0x04 | 1)], 5) + pub(t, "mine", 1, 2, 5) + pub(t, "mine0", 0, 0, 5))
t = topic("rh")
case("SUBSCRIBE", "5.0 retain handling 0, 1, 2",
     c5() + pub(t, "kept", 0, 0, 5, retain=True),
     step("b", c5() + sub(1, [(t, 0x01)], 5), publishes=1),
     step("b", sub(2, [(t, 0x01)], 5), publishes=1),
     step("c", c5() + sub(1, [(t, 0x11)], 5), publishes=1),
     step("c", sub(2, [(t, 0x11)], 5)),
     step("d", c5() + sub(1, [(t, 0x21)], 5)),
     step("a", pub(t, "", 0, 0, 5, retain=True)))

# ---------------------------------------------------------------------------
# UNSUBSCRIBE

t = topic("u")
case("UNSUBSCRIBE", "3.1.1 a filter held", c4() + sub(1, [(t, 1)], 4) + unsub(2, [t], 4))
case("UNSUBSCRIBE", "3.1 a filter held", c3() + sub(1, [(t, 1)], 3) + unsub(2, [t], 3))
case("UNSUBSCRIBE", "3.1.1 a filter not held", c4() + unsub(2, [t], 4))
case("UNSUBSCRIBE", "5.0 held, then not held", c5() + sub(1, [(t, 1)], 5) +
     unsub(2, [t, topic("none")], 5))
case("UNSUBSCRIBE", "5.0 not held, then held", c5() + sub(1, [(t, 1)], 5) +
     unsub(2, [topic("none"), t], 5))
case("UNSUBSCRIBE", "5.0 user property", c5() + unsub(2, [t], 5, {"user-property": [("k", "v")]}))
case("UNSUBSCRIBE", "3.1.1 invalid filter", c4() + unsub(2, ["diff/#/x"], 4))
case("UNSUBSCRIBE", "5.0 invalid filter", c5() + unsub(2, ["diff/#/x"], 5))
case("UNSUBSCRIBE", "5.0 packet id 0", c5() + unsub(0, [t], 5))
case("UNSUBSCRIBE", "3.1.1 no filter", c4() + unsub(2, [], 4))
case("UNSUBSCRIBE", "5.0 no filter", c5() + unsub(2, [], 5))
case("UNSUBSCRIBE", "3.1.1 fixed header flags 0", c4() + unsub(2, [t], 4, flags=0))

# ---------------------------------------------------------------------------
# PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP

for v, conn in ((4, c4), (5, c5), (3, c3)):
    name = {3: "3.1", 4: "3.1.1", 5: "5.0"}[v]
    t = topic("q0")
    case("PUBLISH", "%s QoS 0 to a subscriber" % name,
         step("a", conn() + sub(1, [(t, 0)], v)),
         step("b", conn() + pub(t, "zero", 0, 0, v)),
         step("a", b"", publishes=1))
    t = topic("q1")
    case("PUBLISH", "%s QoS 1 to a QoS 1 subscriber" % name,
         step("a", conn() + sub(1, [(t, 1)], v)),
         step("b", conn() + pub(t, "one", 1, 7, v)),
         step("a", b"", publishes=1),
         step("a", ack_last(puback_packet)))
    t = topic("q2")
    case("PUBLISH", "%s QoS 2 to a QoS 2 subscriber" % name,
         step("a", conn() + sub(1, [(t, 2)], v)),
         step("b", conn() + pub(t, "two", 2, 9, v)),
         step("b", pubrel_packet(9)),
         step("a", b"", publishes=1),
         step("a", ack_last(pubrec_packet)),
         step("a", ack_last(pubcomp_packet)))
    t = topic("down")
    case("PUBLISH", "%s QoS 2 to a QoS 1 subscriber" % name,
         step("a", conn() + sub(1, [(t, 1)], v)),
         step("b", conn() + pub(t, "two", 2, 9, v) + pubrel_packet(9)),
         step("a", b"", publishes=1))
    case("PUBLISH", "%s QoS 1, no subscriber" % name, conn() + pub(topic(), "x", 1, 3, v))
    case("PUBLISH", "%s QoS 2, no subscriber" % name,
         conn() + pub(topic(), "x", 2, 3, v) + pubrel_packet(3))
    # PUBREL sent before the PUBREC came: a stored session releases the
    # id in its log first
    case("PUBLISH", "%s QoS 2, PUBREL at once, stored session" % name,
         conn(clean=False) + pub(topic(), "x", 2, 4, v) + pubrel_packet(4))
    t = topic("ret")
    case("PUBLISH", "%s retained, then a subscriber" % name,
         step("a", conn() + pub(t, "kept", 0, 0, v, retain=True)),
         step("b", conn() + sub(1, [(t, 1)], v), publishes=1),
         step("a", pub(t, "", 0, 0, v, retain=True)))

for v, conn in ((4, c4), (5, c5)):
    name = {4: "3.1.1", 5: "5.0"}[v]
    case("PUBLISH", "%s QoS 3" % name, conn() + packet(pmq.PUBLISH, 6, mqtt_str(topic()) +
                                                      b"\x00\x01" + (b"\x00" if v == 5 else b"")))
    case("PUBLISH", "%s QoS 0 with DUP" % name, conn() + pub(topic(), "x", 0, 0, v, dup=True))
    case("PUBLISH", "%s QoS 1 packet id 0" % name, conn() + pub(topic(), "x", 1, 0, v))
    case("PUBLISH", "%s wildcard topic" % name, conn() + pub("diff/+/x", "x", 0, 0, v))
    case("PUBLISH", "%s empty topic" % name, conn() + pub("", "x", 0, 0, v))
    case("PUBLISH", "%s ill-formed UTF-8 topic" % name,
         conn() + pub(b"diff/\xc0\xaf", "x", 1, 1, v))
    case("PUBLISH", "%s control character in the topic" % name,
         conn() + pub(b"diff/\x01", "x", 1, 1, v))
    case("PUBLISH", "%s over the maximum packet size" % name,
         conn() + pub(topic(), "x" * (2 * LIMIT), 1, 1, v))
    case("PUBLISH", "%s PUBREL for an unknown id" % name, conn() + pubrel_packet(44))
    case("PUBLISH", "%s PUBREC for an unknown id" % name, conn() + pubrec_packet(45))
    case("PUBLISH", "%s PUBACK for an unknown id" % name, conn() + puback_packet(46))
    case("PUBLISH", "%s PUBCOMP for an unknown id" % name, conn() + pubcomp_packet(47))
    case("PUBLISH", "%s PUBREL with flags 0" % name,
         conn() + packet(pmq.PUBREL, 0, struct.pack("!H", 48)))
    case("PUBLISH", "%s PUBACK packet id 0" % name, conn() + puback_packet(0))

case("PUBLISH", "5.0 topic alias 0", c5() + pub(topic(), "x", 0, 0, 5, props={"topic-alias": 0}))
case("PUBLISH", "5.0 topic alias above the maximum",
     c5() + pub(topic(), "x", 0, 0, 5, props={"topic-alias": 11}))
case("PUBLISH", "5.0 unknown topic alias", c5() + pub("", "x", 0, 0, 5, props={"topic-alias": 3}))
t = topic("alias")
case("PUBLISH", "5.0 topic alias set, then used",
     step("a", c5() + sub(1, [(t, 0)], 5)),
     step("b", c5() + pub(t, "first", 0, 0, 5, props={"topic-alias": 2}) +
          pub("", "second", 1, 5, 5, props={"topic-alias": 2})),
     step("a", b"", publishes=2))
case("PUBLISH", "5.0 payload format indicator 2",
     c5() + pub(topic(), "x", 1, 1, 5, props={"payload-format": 2}))
case("PUBLISH", "5.0 subscription identifier from a client",
     c5() + pub(topic(), "x", 1, 1, 5, props={"subscription-id": 4}))
case("PUBLISH", "5.0 duplicate property",
     c5() + packet(pmq.PUBLISH, 0, mqtt_str(topic()) + b"\x04\x01\x00\x01\x00" + b"x"))
case("PUBLISH", "5.0 ill-formed UTF-8 content type",
     c5() + pub(topic(), "x", 1, 1, 5, props={"content-type": b"\xc0\xaf"}))
case("PUBLISH", "5.0 response topic with a wildcard",
     c5() + pub(topic(), "x", 1, 1, 5, props={"response-topic": "diff/+"}))
t = topic("props")
case("PUBLISH", "5.0 properties forwarded",
     step("a", c5() + sub(1, [(t, 1)], 5)),
     step("b", c5() + pub(t, "p", 1, 1, 5, props={
         "payload-format": 1, "content-type": "text/plain", "response-topic": t + "/r",
         "correlation-data": b"\x00\x01", "user-property": [("z", "1"), ("a", "2"), ("z", "3")]})),
     step("a", b"", publishes=1))
t = topic("sid")
case("PUBLISH", "5.0 subscription identifier delivered",
     step("a", c5() + sub(1, [(t, 1)], 5, {"subscription-id": 77})),
     step("b", c5() + pub(t, "s", 0, 0, 5)),
     step("a", b"", publishes=1))
t = topic("rap")
case("PUBLISH", "5.0 retain as published",
     step("a", c5() + sub(1, [(t, 0x08)], 5) + sub(2, [(t + "/x", 0)], 5)),
     step("b", c5() + pub(t, "r", 0, 0, 5, retain=True) +
          pub(t + "/x", "r", 0, 0, 5, retain=True)),
     step("a", b"", publishes=2),
     step("b", pub(t, "", 0, 0, 5, retain=True) + pub(t + "/x", "", 0, 0, 5, retain=True)),
     step("a", b"", publishes=2))
# [MQTT-1.5.3-3]: U+FEFF in a topic is kept, byte for byte
t = topic("\ufeffbom")
case("PUBLISH", "3.1.1 U+FEFF in a topic",
     step("a", c4() + sub(1, [(t, 0)], 4)),
     step("b", c4() + pub(t, "kept", 0, 0, 4)),
     step("a", b"", publishes=1))
# [MQTT-4.7.3-4]: matching neither folds case nor normalises: only the
# topic spelled exactly as the filter (the last of the four) is delivered
t = topic("e\u0301")
case("PUBLISH", "3.1.1 no normalisation when matching",
     step("a", c4() + sub(1, [(t, 0)], 4)),
     step("b", c4() + pub(t.upper(), "upper", 0, 0, 4) +
          pub(t[:-2] + "\u00e9", "composed", 0, 0, 4) + pub(t + "/", "slash", 0, 0, 4) +
          pub(t, "exact", 0, 0, 4)),
     step("a", b"", publishes=1))
# [MQTT-3.3.1-3]: the DUP a publisher sets is not passed on
t = topic("dup")
case("PUBLISH", "3.1.1 DUP is not passed on",
     step("a", c4() + sub(1, [(t, 1)], 4)),
     step("b", c4() + pub(t, "again", 1, 7, 4, dup=True)),
     step("a", b"", publishes=1))
case("PUBLISH", "5.0 QoS 1 to $SYS", c5() + pub("$SYS/diff", "x", 1, 1, 5))
case("PUBLISH", "3.1.1 QoS 1 to $SYS", c4() + pub("$SYS/diff", "x", 1, 1, 4))
case("PUBLISH", "5.0 QoS 2 to $SYS", c5() + pub("$SYS/diff", "x", 2, 1, 5))
case("PUBLISH", "5.0 QoS 1 to a $share topic", c5() + pub("$share/g/diff", "x", 1, 1, 5))
case("PUBLISH", "3.1.1 QoS 1 to a $share topic", c4() + pub("$share/g/diff", "x", 1, 1, 4))
# [MQTT-3.1.2-29]: Request Problem Information 0, no Reason String or
# User Property on the refusals (PUBACK, PUBREC) nor on the UNSUBACK
case("PUBLISH", "5.0 request problem information 0, refused",
     c5(props={"request-problem-info": 0}) + pub("$SYS/diff", "x", 1, 1, 5) +
     pub("$SYS/diff", "x", 2, 2, 5) + unsub(3, [topic("none")], 5))
# [MQTT-4.3.3-9]: after PUBREC 0x87 (a refused QoS 2 message) its packet
# id starts a new message, delivered once released
t = topic("refused")
case("PUBLISH", "5.0 QoS 2 packet id used again after PUBREC 0x87",
     step("a", c5() + sub(1, [(t, 0)], 5)),
     step("b", c5() + pub("$SYS/diff", "refused", 2, 5, 5)),
     step("b", pub(t, "new", 2, 5, 5)),
     step("b", pubrel_packet(5)),
     step("a", b"", publishes=1))
# [MQTT-4.3.2-5]: after the PUBACK, a PUBLISH with the same packet id is a
# new message, with DUP (the same message sent again) or without
for v, conn in ((4, c4), (5, c5)):
    t = topic("again")
    case("PUBLISH", "%s QoS 1 packet id used again after its PUBACK" % {4: "3.1.1", 5: "5.0"}[v],
         step("a", conn() + sub(1, [(t, 1)], v)),
         step("b", conn() + pub(t, "one", 1, 7, v)),
         step("b", pub(t, "one", 1, 7, v, dup=True)),
         step("b", pub(t, "two", 1, 7, v)),
         step("a", b"", publishes=3))
t = "$SYS/broker/connection/%s/state" % topic("bridge").replace("/", "-")
case("PUBLISH", "5.0 QoS 1 to a bridge's state",
     step("a", c5() + sub(1, [(t, 0)], 5)),
     step("b", c5() + pub(t, "1", 1, 1, 5)),
     step("a", b"", publishes=1))
case("PUBLISH", "5.0 QoS 1 to a deeper $SYS/broker/connection topic", c5() + pub(
    "$SYS/broker/connection/diff/state/x", "1", 1, 1, 5))
t = topic("sysdeliv")
case("PUBLISH", "$SYS from a client reaches no subscriber",
     step("a", c5() + sub(1, [("$SYS/" + t, 0)], 5)),
     step("b", c5() + pub("$SYS/" + t, "spoof", 0, 0, 5) + pub("$SYS/" + t, "spoof", 1, 1, 5)),
     step("b", pub(t, "ordinary", 0, 0, 5)),
     step("a", b""))

# ---------------------------------------------------------------------------
# PINGREQ

case("PINGREQ", "3.1.1 PINGREQ", c4() + PINGREQ_PACKET)
case("PINGREQ", "5.0 two PINGREQs", c5() + PINGREQ_PACKET + PINGREQ_PACKET)
case("PINGREQ", "3.1 PINGREQ", c3() + PINGREQ_PACKET)
case("PINGREQ", "3.1.1 PINGREQ with flags", c4() + packet(pmq.PINGREQ, 1, b""))
case("PINGREQ", "5.0 PINGREQ with flags", c5() + packet(pmq.PINGREQ, 1, b""))
case("PINGREQ", "5.0 PINGREQ with a body", c5() + packet(pmq.PINGREQ, 0, b"\x00"))
case("PINGREQ", "3.1.1 PINGRESP from a client", c4() + packet(pmq.PINGRESP, 0, b""))
case("PINGREQ", "PINGREQ before CONNECT", PINGREQ_PACKET)

# ---------------------------------------------------------------------------
# DISCONNECT

case("DISCONNECT", "3.1.1 DISCONNECT", c4() + disconnect_packet(4))
case("DISCONNECT", "3.1 DISCONNECT", c3() + disconnect_packet(4))
case("DISCONNECT", "5.0 DISCONNECT, no reason", c5() + disconnect_packet(5))
case("DISCONNECT", "5.0 DISCONNECT 0x00 written out",
     c5() + packet(pmq.DISCONNECT, 0, b"\x00\x00"))
case("DISCONNECT", "5.0 DISCONNECT 0x04", c5() + disconnect_packet(5, 0x04))
case("DISCONNECT", "5.0 DISCONNECT 0x80 with a reason string",
     c5() + disconnect_packet(5, 0x80, {"reason-string": "bye"}))
case("DISCONNECT", "5.0 DISCONNECT with session expiry after 0",
     c5() + disconnect_packet(5, 0, {"session-expiry": 30}))
case("DISCONNECT", "5.0 DISCONNECT with session expiry after 10",
     c5(props={"session-expiry": 10}) + disconnect_packet(5, 0, {"session-expiry": 0}))
case("DISCONNECT", "5.0 DISCONNECT reason 0x03", c5() + disconnect_packet(5, 0x03))
case("DISCONNECT", "3.1.1 DISCONNECT with flags", c4() + packet(pmq.DISCONNECT, 1, b""))
case("DISCONNECT", "5.0 DISCONNECT with flags", c5() + packet(pmq.DISCONNECT, 1, b""))
case("DISCONNECT", "3.1.1 DISCONNECT with a body", c4() + packet(pmq.DISCONNECT, 0, b"\x00"))

# ---------------------------------------------------------------------------
# Malformed and unexpected packets after CONNECT

for v, conn in ((4, c4), (5, c5)):
    name = {4: "3.1.1", 5: "5.0"}[v]
    case("malformed", "%s Remaining Length of five bytes" % name,
         conn() + packet(pmq.PUBLISH, 0, b"", length=b"\xff\xff\xff\xff\x01"))
    case("malformed", "%s Remaining Length not in its shortest form" % name,
         conn() + packet(pmq.PINGREQ, 0, b"", length=b"\x80\x00"))
    case("malformed", "%s packet type 0" % name, conn() + packet(0, 0, b""))
    case("malformed", "%s packet type 15" % name, conn() + packet(15, 0, b""))
    case("malformed", "%s CONNACK from a client" % name,
         conn() + packet(pmq.CONNACK, 0, b"\x00\x00"))
    case("malformed", "%s SUBACK from a client" % name,
         conn() + packet(pmq.SUBACK, 0, b"\x00\x01\x00"))
    case("malformed", "%s SUBSCRIBE cut short" % name,
         conn() + packet(pmq.SUBSCRIBE, 2, b"\x00\x01" + (b"\x00" if v == 5 else b"") +
                         b"\x00\x09diff/"))
case("malformed", "5.0 AUTH without a method", c5() + packet(pmq.AUTH, 0, b"\x18\x00"))
case("malformed", "5.0 AUTH with a method", c5() + pmq.auth_packet(0x18, {"auth-method": "NOPE"}))
