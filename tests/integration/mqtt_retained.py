"""Retained messages (MQTT 3.1.1 and 5.0), on raw sockets so that the
RETAIN flag, the QoS and the properties of every delivery are seen as
sent.  Where the target has several workers, every subscriber that is
to get a retained message connects to another worker than the client
that published it:

- set, replace, delete: a retained QoS 1 message, once PUBACKed, goes
  to a client that subscribes afterwards, with RETAIN 1 [MQTT-3.3.1-5;
  3.1.1: MQTT-3.3.1-6, MQTT-3.3.1-8]; a second one replaces it; one with
  an empty payload deletes it [MQTT-3.3.1-6, MQTT-3.3.1-7; 3.1.1:
  MQTT-3.3.1-10, MQTT-3.3.1-11]; a retained QoS 0 message is kept too
  (3.1.1 says SHOULD, MQTT-3.3.1-7) and a message without RETAIN
  published after it does not replace it [MQTT-3.3.1-8; 3.1.1:
  MQTT-3.3.1-12];
- wildcards: "+" and "#" filters get every retained message below, each
  once; "#", "+/x" and "+/#" do not get one whose topic starts with $,
  which an exact filter gets [MQTT-4.7.2-1] (checked only where the
  target accepts a PUBLISH to a $ topic);
- the RETAIN flag of a delivery: 0 on a message forwarded to an
  existing subscription [3.1.1: MQTT-3.3.1-9; 5.0: MQTT-3.3.1-12],
  unless the 5.0 subscription has Retain As Published, which keeps it
  as published [MQTT-3.3.1-13], the deletion (empty payload) included;
  1 on a retained message sent because a subscription was made;
- Retain Handling (5.0): 0 sends the retained messages at every
  SUBSCRIBE, the same filter again included [MQTT-3.3.1-9,
  MQTT-3.8.4-4]; 1 only where the subscription did not exist
  [MQTT-3.3.1-10], a subscription of a session resumed on another worker
  counting as existing; 2 never [MQTT-3.3.1-11].  A 3.1.1 SUBSCRIBE
  sends them every time [3.1.1: MQTT-3.8.4-3];
- 5.0 properties: Payload Format Indicator, Content Type and User
  Properties (order kept) come with the retained message
  [MQTT-3.3.2-4, MQTT-3.3.2-20, MQTT-3.3.2-17, MQTT-3.3.2-18], and its
  Message Expiry Interval less the time it waited [MQTT-3.3.2-6]; a
  retained message whose 2 s interval has passed is no longer sent
  [MQTT-3.3.2-5], one subscribed to before that is, with at most 2 s
  left;
- the QoS of a retained delivery is the minimum of the message's and
  the subscription's [MQTT-3.8.4-8; 3.1.1: MQTT-3.8.4-6];
- a retained message PUBACKed on one worker is sent to a client that
  subscribes on another worker the moment the PUBACK arrives: 20
  replacements, each seen (and no older one) by the next SUBSCRIBE,
  3.1.1 to 5.0 and 5.0 to 3.1.1;
- a retained lookup and a PUBLISH that arrives in two parts, a second
  apart, three times over one connection each (a worker makes the state
  for them when needed and drops it when idle);
- promptmqd only: retained messages, their properties and deletions
  outlive a SIGKILL of walsvc and a stop and start of the whole broker
  on the same data directory.

That nothing (else) came is shown by a marker: a message without
RETAIN that the publisher of the retained message sends to the same
topic, at the QoS the retained message is delivered at, after the
SUBACK.  The Server sends the messages one client published to a topic
in the order it received them, for each QoS [MQTT-4.6.0-5; 3.1.1:
MQTT-4.6.0-6], so a retained message that is going to be sent comes
before it.

Mosquitto 2.0.11 (with "retain_available true") passes every check
that is not promptmqd's own, with no allowance.  It counts Message
Expiry Intervals in whole seconds of the wall clock: a message expires
up to a second early, never late, and the interval it sends counts the
clock's whole seconds (2 until the clock's next second begins)."""

import contextlib
import os
import signal
import struct
import time

import pmq
from pmq import check

NAMES = {4: "3.1.1", 5: "5.0"}
MARK = b"marker"
KEEP = 300          # Session Expiry Interval of the Retain Handling 1 session
ROUNDS = 20         # publish-then-subscribe rounds across workers
TICK = 1.2          # s: longer than a worker's tick (once a second)


def options(qos, rap=False, rh=0):
    """A 5.0 subscription options byte (3.1.1: the QoS alone)."""
    return qos | (0x08 if rap else 0) | rh << 4


def raw(b, done, v, name, avoid=None, cid=None, clean=True, props=None):
    """A connected RawClient on a worker other than avoid where the target
    has several, closed when done closes.  Returns (client, slot)."""
    r, slot = pmq.raw_elsewhere(b, v, "%s %s" % (NAMES[v], name), avoid)
    done.callback(r.close)
    ack = r.connect(cid or pmq.unique("ret%d" % v), clean=clean, props=props)
    r.connack = ack
    return r, slot


def publish(r, topic, payload, qos=1, retain=True, props=None):
    """PUBLISH from r; at QoS 1, wait for its PUBACK (a success code).
    Returns the PUBACK's reason code (None at QoS 0)."""
    pid = r.pid()
    r.send(pmq.publish_packet(topic, payload, qos, pid, retain, r.version, props))
    if not qos:
        return None
    ack = r.expect(pmq.PUBACK, what="PUBACK for the message to %s" % topic)
    check(ack.pid == pid, "%s: PUBACK for packet id %d expected, got %d" %
          (r.name, pid, ack.pid))
    return ack.reason


def publish_ok(r, topic, payload, qos=1, retain=True, props=None):
    """publish(); a QoS 1 message must be accepted.  A QoS 0 one is
    followed by a QoS 1 message without RETAIN to the same topic, whose
    PUBACK shows the broker handled it: it must not replace the retained
    message [MQTT-3.3.1-8]."""
    reason = publish(r, topic, payload, qos, retain, props)
    check(reason is None or reason < 0x80, "%s: PUBACK 0x%02X for the %smessage to %s" %
          (r.name, reason or 0, "retained " if retain else "", topic))
    if not qos:
        publish_ok(r, topic, b"not retained, after QoS 0", 1, retain=False)


def marker(pub, topic, qos=1):
    """The marker (see the module's docstring); returns what it is
    delivered as, for receive()."""
    reason = publish(pub, topic, MARK, qos, retain=False)
    check(reason is None or reason < 0x80, "%s: PUBACK 0x%02X for the marker to %s" %
          (pub.name, reason or 0, topic))
    return (topic, MARK, False, qos)


def receive(r, want, what):
    """r's next len(want) PUBLISH packets are those of want, [(topic,
    payload, retain, qos)], in its order for each topic (topics may
    interleave).  QoS 1 ones are acknowledged.  Returns them in want's
    order, keyed by (topic, payload)."""
    got = [r.message(what="message %d of %d (%s)" % (k + 1, len(want), what))
           for k in range(len(want))]
    seen = [(p.topic, p.payload, p.retain, p.qos) for p in got]
    for topic in set(t for t, _, _, _ in want + seen):
        w = [x for x in want if x[0] == topic]
        g = [x for x in seen if x[0] == topic]
        check(g == w, "%s: %s: on %s, got (payload, RETAIN, QoS) %s, expected %s" % (
            r.name, what, topic, [x[1:] for x in g], [x[1:] for x in w]))
    return {(p.topic, p.payload): p for p in got}


def subscribe(r, filters, qos=1):
    """SUBSCRIBE; every filter must be granted its QoS (the options'
    low bits)."""
    if isinstance(filters, str):
        filters = [(filters, qos)]
    codes = r.subscribe(filters)
    want = [o & 3 for _, o in filters]
    check(codes == want, "%s: SUBACK %s for %s, expected %s" % (r.name, codes, filters, want))


def unsubscribe(r, topic):
    """UNSUBSCRIBE, and wait for the UNSUBACK."""
    pid = r.pid()
    body = struct.pack("!H", pid) + (b"\x00" if r.version == 5 else b"") + \
        pmq.mqtt_str(topic)
    r.send(pmq.packet(pmq.UNSUBSCRIBE, 2, body))
    ack = r.expect(pmq.UNSUBACK)
    check(ack.pid == pid, "%s: UNSUBACK for packet id %d expected, got %d" %
          (r.name, pid, ack.pid))


def set_replace_delete(b, v):
    """Set, replace, delete; a QoS 0 retained message is kept too."""
    u = pmq.unique("srd%d" % v)
    topic = u + "/t"
    what = "%s retained message" % NAMES[v]
    with contextlib.ExitStack() as done:
        pub, ps = raw(b, done, v, "publisher")

        def later(step, want):
            """A new subscriber gets want (a retained message or nothing)."""
            sub, _ = raw(b, done, v, "subscriber %s" % step, avoid=ps)
            subscribe(sub, topic)
            qos = want[0][3] if want else 1     # the marker's: the retained one's
            receive(sub, want + [marker(pub, topic, qos)], "%s, %s" % (what, step))
            sub.close()

        publish_ok(pub, topic, b"first", 1)
        later("after the first", [(topic, b"first", True, 1)])
        publish_ok(pub, topic, b"second", 1)
        later("after the second (replacing)", [(topic, b"second", True, 1)])
        publish_ok(pub, topic, b"", 1)
        later("after the empty one (deleting)", [])
        publish_ok(pub, topic, b"at QoS 0", 0)
        later("after a QoS 0 one and a QoS 1 one without RETAIN",
              [(topic, b"at QoS 0", True, 0)])


def wildcards(b, v):
    """"+" and "#" filters get every retained message below, once."""
    u = pmq.unique("wild%d" % v)
    topics = [u, u + "/a", u + "/b", u + "/c/d"]
    cases = [(u + "/+", topics[1:3]), (u + "/#", topics), (u + "/+/d", topics[3:]),
             (u + "/c/#", topics[3:])]
    with contextlib.ExitStack() as done:
        pub, ps = raw(b, done, v, "publisher")
        for t in topics:
            publish_ok(pub, t, "retained on " + t, 1)
        for f, matched in cases:
            sub, _ = raw(b, done, v, "subscriber to %s" % f, avoid=ps)
            subscribe(sub, f)
            want = [(t, ("retained on " + t).encode(), True, 1) for t in matched]
            want += [marker(pub, t) for t in matched]
            receive(sub, want, "%s filter %s" % (NAMES[v], f))
            sub.close()


def dollar_topics(b):
    """No filter starting with a wildcard gets a retained message on a
    topic starting with $ [MQTT-4.7.2-1].  Runs first, on a target
    holding no other retained message: "#" gets every one there is."""
    u = pmq.unique("dollar")
    plain, dollar = u + "/x", "$" + u + "/x"
    with contextlib.ExitStack() as done:
        pub, ps = raw(b, done, 5, "publisher")
        publish_ok(pub, plain, b"plain", 1)
        reason = publish(pub, dollar, b"dollar", 1)
        if reason >= 0x80:
            print("NOTE: %s refuses a PUBLISH to %s (PUBACK 0x%02X): MQTT-4.7.2-1 for "
                  "retained messages is not checked" % (b.kind, dollar, reason))
            return
        for v in (4, 5):
            for f in ("#", "+/x", "+/#"):
                what = "%s filter %s" % (NAMES[v], f)
                sub, _ = raw(b, done, v, "subscriber to %s" % f, avoid=ps)
                subscribe(sub, dollar)
                receive(sub, [(dollar, b"dollar", True, 1)],
                        "%s: the retained message on %s, to an exact filter first" %
                        (what, dollar))
                subscribe(sub, f)
                receive(sub, [(plain, b"plain", True, 1), marker(pub, plain),
                              marker(pub, dollar)], what)
                sub.close()


def retain_flag(b, v):
    """RETAIN 0 on forwarded messages unless Retain As Published (5.0);
    RETAIN 1 on those sent because of a new subscription."""
    u = pmq.unique("flag%d" % v)
    topic = u + "/t"
    with contextlib.ExitStack() as done:
        pub, ps = raw(b, done, v, "publisher")
        subs = {}
        for rap in ((False, True) if v == 5 else (False,)):
            name = "subscriber%s" % (" with Retain As Published" if rap else "")
            subs[rap], _ = raw(b, done, v, name, avoid=ps)
            subscribe(subs[rap], [(topic, options(1, rap=rap))])
        publish_ok(pub, topic, b"retained", 1)
        publish_ok(pub, topic, b"live", 1, retain=False)
        for rap, sub in subs.items():
            receive(sub, [(topic, b"retained", rap, 1), (topic, b"live", False, 1)],
                    "%s existing subscription%s" % (NAMES[v], " with Retain As Published"
                                                    if rap else ""))
        new, _ = raw(b, done, v, "new subscriber", avoid=ps)
        subscribe(new, topic)
        receive(new, [(topic, b"retained", True, 1), marker(pub, topic)],
                "%s new subscription" % NAMES[v])
        for sub in subs.values():
            receive(sub, [(topic, MARK, False, 1)], "%s marker" % NAMES[v])
        publish_ok(pub, topic, b"", 1)
        for rap, sub in list(subs.items()) + [(False, new)]:
            receive(sub, [(topic, b"", rap, 1)], "%s deletion forwarded%s" % (
                NAMES[v], " with Retain As Published" if rap else ""))


def retain_handling(b):
    """5.0 Retain Handling 0, 1 and 2; 3.1.1 SUBSCRIBE again."""
    u = pmq.unique("rh")
    topic = u + "/t"
    retained = (topic, b"retained", True, 1)
    with contextlib.ExitStack() as done:
        pub, ps = raw(b, done, 5, "publisher")
        publish_ok(pub, topic, b"retained", 1)

        def step(sub, rh, sends, what):
            subscribe(sub, [(topic, options(1, rh=rh))])
            receive(sub, ([retained] if sends else []) + [marker(pub, topic)],
                    "Retain Handling %d, %s" % (rh, what))

        sub, _ = raw(b, done, 5, "subscriber", avoid=ps)
        step(sub, 0, True, "new subscription")
        step(sub, 0, True, "the same filter again")
        step(sub, 1, False, "the subscription exists")
        unsubscribe(sub, topic)
        step(sub, 1, True, "new subscription")
        step(sub, 2, False, "the subscription exists")
        unsubscribe(sub, topic)
        step(sub, 2, False, "new subscription")
        sub.close()

        # a subscription kept in a session resumed on another worker exists
        cid = pmq.unique("rhsession")
        props = {"session-expiry": KEEP}
        sub, slot = raw(b, done, 5, "session", avoid=ps, cid=cid, clean=False, props=props)
        step(sub, 1, True, "new subscription of a persistent session")
        sub.send(pmq.disconnect_packet(5))
        sub.expect_closed()
        sub, _ = raw(b, done, 5, "session resumed", avoid=slot, cid=cid, clean=False,
                     props=props)
        check(sub.connack.session_present, "5.0: the session was not resumed "
              "(session present 0)")
        step(sub, 1, False, "the subscription exists in the resumed session")
        sub.send(pmq.disconnect_packet(5, props={"session-expiry": 0}))
        sub.expect_closed()

        sub, _ = raw(b, done, 4, "subscriber", avoid=ps)
        for what in ("new subscription", "the same filter again"):
            subscribe(sub, topic)
            receive(sub, [retained, marker(pub, topic)], "3.1.1 SUBSCRIBE, %s" % what)


def properties(b):
    """5.0 properties kept; Message Expiry Interval counted down, and a
    retained message whose interval has passed no longer sent."""
    u = pmq.unique("props")
    long_topic, short_topic = u + "/long", u + "/short"
    payload = "h\u00e9llo".encode()
    props = {"payload-format": 1, "content-type": "text/plain; charset=utf-8",
             "user-property": [("k", "v1"), ("other", "x"), ("k", "v2")],
             "message-expiry": 60}
    short = {"content-type": "text/short", "message-expiry": 2}
    with contextlib.ExitStack() as done:
        pub, ps = raw(b, done, 5, "publisher")
        publish_ok(pub, long_topic, payload, 1, props=props)
        sub, _ = raw(b, done, 5, "subscriber", avoid=ps)
        subscribe(sub, long_topic)
        p = receive(sub, [(long_topic, payload, True, 1), marker(pub, long_topic)],
                    "retained message with properties")[(long_topic, payload)]
        for name in ("payload-format", "content-type", "user-property"):
            check(p.props.get(name) == props[name], "5.0 retained message: %s %r, "
                  "published with %r (all: %s)" % (name, p.props.get(name), props[name],
                                                   p.props))
        check(0 < p.props.get("message-expiry", 0) <= 60, "5.0 retained message: Message "
              "Expiry Interval %r, published with 60" % p.props.get("message-expiry"))

        early, _ = raw(b, done, 5, "subscriber before the expiry", avoid=ps)
        publish_ok(pub, short_topic, b"short-lived", 1, props=short)
        acked = time.monotonic()
        subscribe(early, short_topic)
        p = receive(early, [(short_topic, b"short-lived", True, 1),
                            marker(pub, short_topic)],
                    "retained message with Message Expiry Interval 2, right after its "
                    "PUBACK")[(short_topic, b"short-lived")]
        check(p.props.get("content-type") == "text/short" and
              0 < p.props.get("message-expiry", 0) <= 2,
              "5.0 retained message with Message Expiry Interval 2, %.1fs after its PUBACK: "
              "properties %s" % (time.monotonic() - acked, p.props))

        # A time condition, not an event: once its interval has passed the
        # retained message must be gone [MQTT-3.3.2-5].  Nothing can poll
        # for it: the message is there until then.
        time.sleep(max(0.0, acked + 2 + pmq.patience(0.1) - time.monotonic()))
        late, _ = raw(b, done, 5, "subscriber after the expiry", avoid=ps)
        subscribe(late, [(short_topic, 1), (long_topic, 1)])
        waited = time.monotonic() - acked
        got = receive(late, [(long_topic, payload, True, 1), marker(pub, long_topic),
                             marker(pub, short_topic)],
                      "%.1fs after the PUBACK of the message with Message Expiry Interval 2"
                      % waited)
        left = got[(long_topic, payload)].props.get("message-expiry")
        check(left is not None and 0 < left <= 58, "5.0 retained message with Message "
              "Expiry Interval 60, %.1fs after its PUBACK: %r left, expected at most 58" %
              (waited, left))


def qos_of_delivery(b, v):
    """A retained delivery's QoS is min(message, subscription)."""
    u = pmq.unique("qos%d" % v)
    t1, t0 = u + "/q1", u + "/q0"
    with contextlib.ExitStack() as done:
        pub, ps = raw(b, done, v, "publisher")
        publish_ok(pub, t1, b"QoS 1", 1)
        publish_ok(pub, t0, b"QoS 0", 0)
        for sub_qos in (1, 0):
            sub, _ = raw(b, done, v, "QoS %d subscriber" % sub_qos, avoid=ps)
            subscribe(sub, [(t1, sub_qos), (t0, sub_qos)])
            q1 = min(1, sub_qos)
            receive(sub, [(t1, b"QoS 1", True, q1), (t0, b"QoS 0", True, 0),
                          marker(pub, t1, q1), marker(pub, t0, 0)],
                    "%s subscription at QoS %d" % (NAMES[v], sub_qos))
            sub.close()


def across_workers(b, v_pub, v_sub):
    """PUBACK on one worker, then at once SUBSCRIBE on another: the
    message just retained is sent, not the one it replaced.  Each round
    has a new subscriber, connected before the PUBLISH."""
    u = pmq.unique("race%d%d" % (v_pub, v_sub))
    topic = u + "/t"
    with contextlib.ExitStack() as done:
        pub, ps = raw(b, done, v_pub, "publisher")
        for k in range(ROUNDS):
            sub, _ = raw(b, done, v_sub, "subscriber of round %d" % k, avoid=ps)
            payload = ("round %d" % k).encode()
            publish_ok(pub, topic, payload, 1)
            subscribe(sub, topic)
            receive(sub, [(topic, payload, True, 1), marker(pub, topic)],
                    "%s publisher, %s subscriber, round %d" %
                    (NAMES[v_pub], NAMES[v_sub], k))
            sub.close()


def made_again(b):
    """A worker keeps a connection's retained lookups and an incomplete
    packet in state it makes when first needed and drops at its
    once-a-second tick when that holds nothing: three rounds of a
    SUBSCRIBE answered with the retained message, then a PUBLISH sent in
    two parts with a tick between them, each round after a tick."""
    u = pmq.unique("again")
    topic = u + "/t"
    with contextlib.ExitStack() as done:
        pub, ps = raw(b, done, 5, "publisher")
        sub, _ = raw(b, done, 5, "subscriber", avoid=ps)
        publish_ok(pub, topic, b"kept", 1)
        for k in range(3):
            # the stimulus is time itself: the tick must run in between;
            # a slow machine only makes the gap longer
            time.sleep(TICK)
            subscribe(sub, topic)
            receive(sub, [(topic, b"kept", True, 1), marker(pub, topic)],
                    "round %d, the retained message" % k)
            payload = b"in two parts %d" % k
            pid = pub.pid()
            data = pmq.publish_packet(topic, payload, 1, pid, False, 5)
            pub.send(data[:7])
            time.sleep(TICK)
            pub.send(data[7:])
            ack = pub.expect(pmq.PUBACK, what="PUBACK of the PUBLISH in two parts")
            check(ack.pid == pid and ack.reason < 0x80, "%s: PUBACK for %d expected, "
                  "got %r" % (pub.name, pid, ack))
            receive(sub, [(topic, payload, False, 1)], "round %d, the message sent "
                    "in two parts" % k)


def kill_walsvc(b):
    """SIGKILL walsvc; wait until its successor is ready."""
    mark = b.mark()
    walsvc = b.walsvc_pid()
    check(walsvc, "no walsvc to kill")
    os.kill(walsvc, signal.SIGKILL)
    m = b.wait_log(r"child started role=walsvc slot=\d+ pid=(\d+)", 10, mark)
    b.wait_log(r"walsvc\[%s\] info: walsvc ready" % m.group(1), 10, mark)


DURABLE_PROPS = {"content-type": "text/plain", "user-property": [("k", "v")]}


def expect_retained(b, want, gone, what):
    """3.1.1 and 5.0 subscribers, each on another worker than a new
    publisher of the markers, get want ({topic: (payload, qos)}) and
    nothing on the topics of gone; 5.0 ones with DURABLE_PROPS.  (The
    markers' publisher connects after the retained messages were stored,
    and stands for the one that published them, gone.)"""
    with contextlib.ExitStack() as done:
        pub, ps = raw(b, done, 5, "publisher of the markers")
        for v in (4, 5):
            sub, _ = raw(b, done, v, "subscriber", avoid=ps)
            subscribe(sub, [(t, 1) for t in sorted(want) + sorted(gone)])
            expected = [(t, p, True, q) for t, (p, q) in sorted(want.items())]
            expected += [marker(pub, t, q) for t, (_, q) in sorted(want.items())]
            expected += [marker(pub, t) for t in sorted(gone)]
            got = receive(sub, expected, "%s retained messages %s" % (NAMES[v], what))
            for t, (p, _) in want.items() if v == 5 else ():
                props = {k: got[(t, p)].props.get(k) for k in DURABLE_PROPS}
                check(props == DURABLE_PROPS, "5.0 retained message on %s %s: properties "
                      "%s, published with %s" % (t, what, props, DURABLE_PROPS))


def survives_restarts():
    """promptmqd: retained messages and deletions outlive walsvc and the
    broker."""
    b = pmq.PromptMQ(workers=2, name="retdur").start()
    again = None
    try:
        u = pmq.unique("dur")
        kept, zero, gone = u + "/kept", u + "/qos0", u + "/gone"
        with contextlib.ExitStack() as done:
            pub, _ = raw(b, done, 5, "publisher")
            publish_ok(pub, kept, b"kept", 1, props=DURABLE_PROPS)
            publish_ok(pub, zero, b"kept at QoS 0", 0, props=DURABLE_PROPS)
            publish_ok(pub, gone, b"deleted", 1)
            publish_ok(pub, gone, b"", 1)
        kill_walsvc(b)
        expect_retained(b, {kept: (b"kept", 1), zero: (b"kept at QoS 0", 0)}, [gone],
                        "after walsvc was killed")
        with contextlib.ExitStack() as done:
            pub, _ = raw(b, done, 5, "publisher")
            publish_ok(pub, kept, b"replaced", 1, props=DURABLE_PROPS)
            publish_ok(pub, zero, b"", 0)
        again = pmq.restarted(b, "retdur")
        expect_retained(again, {kept: (b"replaced", 1)}, [zero, gone],
                        "after the broker was stopped and started again")
        pmq.stop_restarted(again)
    finally:
        pmq.cleanup_restarted(again, b)


def test():
    b = pmq.start_target(workers=2, name="retained")
    try:
        if not b.retain_available:
            print("SKIP: %s has no retained messages" % b.kind)
            return pmq.SKIP
        dollar_topics(b)
        for v in (4, 5):
            set_replace_delete(b, v)
            wildcards(b, v)
            retain_flag(b, v)
            qos_of_delivery(b, v)
        retain_handling(b)
        properties(b)
        across_workers(b, 4, 5)
        across_workers(b, 5, 4)
        made_again(b)
        b.check_alive("after the retained message checks")
    finally:
        b.stop()
        b.cleanup()
    if b.kind == "promptmqd":
        survives_restarts()


pmq.run_test(test)
