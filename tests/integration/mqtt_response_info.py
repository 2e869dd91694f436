"""Request/response (MQTT 5, 4.10): Response Information in CONNACK.

By default none is sent, even to a client that asks (Request Response
Information 1), as Mosquitto sends none.  With mqtt.response-information
set, a client that asks gets it in its CONNACK, on every worker, and a
client that does not ask gets nothing.  Response Topic and Correlation
Data travel with a message to subscribers on another worker unchanged.
The default part runs against Mosquitto too (PMQ_TARGET=mosquitto)."""

import pmq
from pmq import check

PREFIX = "replies/broker-a"


def connack_info(b, ask, avoid=None):
    r, slot = pmq.raw_elsewhere(b, 5, "client", avoid)
    try:
        ack = r.connect(pmq.unique("ri"),
                        props={"request-response-info": 1} if ask else None)
        return ack.props.get("response-info"), slot
    finally:
        r.close()


def request_reply(b):
    """A request's Response Topic and Correlation Data reach the
    responder on another worker as the requester sent them."""
    u = pmq.unique("rr")
    responder, slot = pmq.raw_elsewhere(b, 5, "responder", None)
    requester, _ = pmq.raw_elsewhere(b, 5, "requester", slot)
    try:
        responder.connect(u + "-responder")
        check(responder.subscribe([(u + "/req", 1)]) == [1], "responder SUBACK")
        requester.connect(u + "-requester")
        check(requester.subscribe([(u + "/resp", 1)]) == [1], "requester SUBACK")
        props = {"response-topic": u + "/resp", "correlation-data": b"\x00\x01id"}
        requester.send(pmq.publish_packet(u + "/req", b"question", 1, 7, version=5,
                                          props=props))
        requester.expect(pmq.PUBACK)
        req = responder.message(what="the request")
        check(req.props.get("response-topic") == u + "/resp" and
              req.props.get("correlation-data") == b"\x00\x01id",
              "request properties changed: %r" % req.props)
        responder.send(pmq.publish_packet(req.props["response-topic"], b"answer", 1, 8,
                                          version=5, props={"correlation-data":
                                                            req.props["correlation-data"]}))
        responder.expect(pmq.PUBACK)
        resp = requester.message(what="the response")
        check(resp.payload == b"answer" and
              resp.props.get("correlation-data") == b"\x00\x01id",
              "response: %r %r" % (resp.payload, resp.props))
    finally:
        responder.close()
        requester.close()


def test():
    b = pmq.start_target(workers=2, name="respinfo")
    try:
        for ask in (False, True):
            info, _ = connack_info(b, ask)
            check(info is None, "Response Information %r by default (asked: %s)" %
                  (info, ask))
        request_reply(b)
    finally:
        b.stop()
        b.cleanup()
    if b.kind != "promptmqd":
        return
    b = pmq.PromptMQ(workers=2, name="respinfo2",
                     args=["--mqtt-response-information", PREFIX]).start()
    try:
        slots = set()
        for avoid in (0, 1):
            info, slot = connack_info(b, True, avoid)
            check(info == PREFIX, "asked, got %r (worker %d)" % (info, slot))
            slots.add(slot)
        check(len(slots) == 2, "only worker(s) %s answered" % sorted(slots))
        info, _ = connack_info(b, False)
        check(info is None, "not asked, got %r" % info)
    finally:
        b.stop()
        b.cleanup()


pmq.run_test(test)
