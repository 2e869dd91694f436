"""A broker that offers less than MQTT allows: `mqtt.max-qos = 1` and
`mqtt.retain-available = false` (Mosquitto: max_qos 1,
retain_available false), 5.0 clients (MQTT 5.0 3.2.2.3.4, 3.2.2.3.5):

- the CONNACK says Maximum QoS 1 and Retain Available 0;
- a SUBSCRIBE at QoS 2 is granted QoS 1 (MQTT-3.2.2-10);
- a CONNECT whose will is QoS 2 gets CONNACK 0x9B, QoS not supported,
  and the connection closes (MQTT-3.2.2-12); one whose will is retained
  gets CONNACK 0x9A, Retain not supported (MQTT-3.2.2-13);
- a QoS 2 PUBLISH gets DISCONNECT 0x9B (MQTT-3.2.2-11), a retained one
  DISCONNECT 0x9A (MQTT-3.2.2-14), and the connection closes;
- 3.1.1: a QoS 2 subscription is granted QoS 1 too.

Run against Mosquitto too (PMQ_TARGET=mosquitto): the answers are the
same.
"""

import struct

import pmq
from pmq import check

QOS_NOT_SUPPORTED = 0x9B
RETAIN_NOT_SUPPORTED = 0x9A


def will_connect(client_id, will_qos, will_retain):
    """A 5.0 CONNECT with a will, clean start."""
    flags = 0x02 | 0x04 | will_qos << 3 | (0x20 if will_retain else 0)
    body = pmq.mqtt_str("MQTT") + bytes([5, flags]) + struct.pack("!H", 60)
    body += pmq.encode_props(None)
    payload = pmq.mqtt_str(client_id) + pmq.encode_props(None) + \
        pmq.mqtt_str("will/" + client_id) + pmq.mqtt_str("gone")
    return pmq.packet(pmq.CONNECT, 0, body + payload)


def refused_will(b, will_qos, will_retain, want):
    c = pmq.RawClient(b.port, 5, "will QoS %d retain %d" % (will_qos, will_retain))
    try:
        c.send(will_connect(pmq.unique("will"), will_qos, will_retain))
        ack = c.expect(pmq.CONNACK)
        check(ack.reason == want, "%s: CONNACK 0x%02x, expected 0x%02x" %
              (c.name, ack.reason, want))
        c.expect_closed()
    finally:
        c.close()


def refused_publish(b, qos, retain, want):
    c = pmq.RawClient(b.port, 5, "PUBLISH QoS %d retain %d" % (qos, retain))
    try:
        c.connect(pmq.unique("pub"))
        c.send(pmq.publish_packet("limits/t", b"x", qos, c.pid(), retain=retain,
                                  version=5))
        d = c.expect(pmq.DISCONNECT)
        check(d.reason == want, "%s: DISCONNECT 0x%02x, expected 0x%02x" %
              (c.name, d.reason, want))
        c.expect_closed()
    finally:
        c.close()


def granted(b, version):
    c = pmq.RawClient(b.port, version, "%d subscriber" % version)
    try:
        ack = c.connect(pmq.unique("sub"))
        if version == 5:
            check(ack.props.get("maximum-qos") == 1 and
                  ack.props.get("retain-available") == 0,
                  "CONNACK properties %s: Maximum QoS 1 and Retain Available 0 "
                  "expected" % ack.props)
        c.send(pmq.subscribe_packet(c.pid(), [("limits/#", 2)], version=version))
        sub = c.expect(pmq.SUBACK)
        check(sub.codes == [1], "%s: a QoS 2 subscription granted %s, expected [1]" %
              (c.name, sub.codes))
    finally:
        c.close()


def test():
    if pmq.TARGET == "mosquitto":
        pmq.Mosquitto.max_qos = 1
        pmq.Mosquitto.retain_available = False
        b = pmq.start_target(name="limits")
    else:
        b = pmq.PromptMQ(workers=2, name="limits",
                         conf_values={"mqtt.max-qos": 1,
                                      "mqtt.retain-available": False}).start()
    try:
        granted(b, 5)
        granted(b, 4)
        refused_will(b, 2, False, QOS_NOT_SUPPORTED)
        refused_will(b, 1, True, RETAIN_NOT_SUPPORTED)
        refused_publish(b, 2, False, QOS_NOT_SUPPORTED)
        refused_publish(b, 1, True, RETAIN_NOT_SUPPORTED)
    finally:
        b.cleanup()


pmq.run_test(test)
