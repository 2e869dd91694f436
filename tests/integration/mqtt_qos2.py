"""QoS 2, exactly once, in both directions (client to broker, broker to
client), MQTT 3.1.1 and 5.0, checked packet by packet on raw sockets and
with paho.  Publisher and subscriber sit on different workers where the
target has several, and every reconnection of a session lands on
another worker than the connection before:

- the first message a fresh worker takes is a QoS 2 one, on a raw
  socket: PUBREC, PUBREL, PUBCOMP, and every process of the broker
  still runs (under UndefinedBehaviorSanitizer the worker died copying
  the empty shared-subscription placement, whose buffer was still NULL,
  into the PUBREC it keeps until the log has the message: found by
  tests/fuzz/session_fuzz.py);
- the flows: paho publishes and receives QoS 2 both ways; on a raw
  socket a QoS 2 PUBLISH gets PUBREC with its packet id, PUBREL gets
  PUBCOMP, and a QoS 2 subscriber gets PUBLISH QoS 2 (no DUP), answers
  PUBREC, gets PUBREL (flags 0010 [MQTT-3.6.1-1]) with the same id and
  answers PUBCOMP (MQTT 4.3.3); SUBSCRIBE with QoS 2 is granted 2; a QoS 2 message
  arrives at QoS 1 on a QoS 1 subscription and at QoS 0 on a QoS 0 one,
  a QoS 1 message at QoS 1 on a QoS 2 subscription [MQTT-3.8.4-8 /
  3.1.1 MQTT-3.8.4-6];
- exactly once inbound: PUBLISH id 7, PUBREC, the same PUBLISH again
  with DUP before the PUBREL: PUBREC again, and the subscriber gets the
  message once; after PUBREL and PUBCOMP a new PUBLISH with id 7 is a
  new message and is delivered [MQTT-4.3.3-10, MQTT-4.3.3-12 / 3.1.1
  MQTT-4.3.3-2];
- many in flight: a 3.1.1 publisher sends 200 QoS 2 PUBLISHes, ids 1 to
  200, and releases none before all 200 PUBRECs came; then all are
  released and complete; the subscriber gets all 200 once, in order;
- Receive Maximum (5.0): a subscriber that connected with Receive
  Maximum 3 has at most 3 QoS 2 messages of 10 unacknowledged at a time,
  a PUBREC not freeing a place before its PUBCOMP; each PUBCOMP lets the
  next one come, and all 10 arrive in order [MQTT-3.3.4-9, MQTT 5.0
  4.9]; a publisher that sends one QoS 2 PUBLISH more than the CONNACK's
  Receive Maximum, releasing none, gets DISCONNECT 0x93 (Receive Maximum
  exceeded, MQTT 5.0 3.3.4);
- a persistent subscriber (3.1.1 clean session 0, 5.0 clean start 0
  with a Session Expiry Interval) gone after its PUBREC, before its
  PUBCOMP, gets the PUBREL again, same id, and not the PUBLISH; one gone
  before its PUBREC gets the PUBLISH again with DUP and the same id
  [MQTT-4.4.0-1, MQTT-3.3.1-1];
- a persistent publisher gone after the PUBREC, before its PUBREL,
  sends the PUBLISH again with DUP on its new connection: PUBREC, and the
  subscriber gets the message once; one that sends the PUBREL on its
  new connection (as MQTT-4.4.0-1 says it must) gets PUBCOMP, and that
  message arrives once too.

Mosquitto 2.0.11 (one process, so one "worker"; its max_qos set from
promptmqd's) passes every check but three, which the target states:
- it takes 20 QoS 2 messages in flight from one client
  (max_inflight_messages) and answers the next ones with PUBREC 0x97
  (Quota exceeded), which a 3.1.1 client reads as a plain PUBREC: of the
  200 only the first 20 are delivered, the others are acknowledged
  (PUBREC, then PUBCOMP) and lost, where the receiver must take
  ownership of a message it answers with PUBREC [3.1.1 MQTT-4.3.3-2]
  (b.qos2_inflight_limit: the check then wants exactly the first 20);
- a 5.0 publisher past its Receive Maximum (20) gets PUBREC 0x97 and
  keeps its connection, where MQTT 5.0 3.3.4 says the Server sends
  DISCONNECT 0x93 (b.receive_maximum_disconnect false: the check then
  wants the PUBREC 0x97 and the connection open);
- to a 5.0 subscriber with Receive Maximum 3 it sends 3 QoS 2 messages
  and no more, a PUBREC freeing no place, but each PUBCOMP lets up to 3
  more come, whatever is still unacknowledged (7 at once with 10
  messages), where the Server MUST NOT send more than Receive Maximum
  QoS 1 and QoS 2 PUBLISH packets without their PUBACK or PUBCOMP
  [MQTT-3.3.4-9] (b.receive_maximum_refill: the check then wants at most
  3 messages after each PUBCOMP, none after a PUBREC, and all 10 in
  order).

Mosquitto delivers an inbound QoS 2 message on the PUBREL, promptmqd
may on the PUBLISH (Method A or B of MQTT 4.3.3): the checks look at the
subscriber only once the PUBREL is sent."""

import contextlib

import pmq
from pmq import check

NAMES = {4: "3.1.1", 5: "5.0"}
KEEP = 300          # Session Expiry Interval of the 5.0 persistent sessions
DUP = 0x08          # the PUBLISH fixed header's DUP flag
MANY = 200          # QoS 2 messages in flight from one publisher
RECEIVE_MAXIMUM = 3         # the 5.0 subscriber's
RECEIVE_MESSAGES = 10       # messages sent to it
RECEIVE_MAXIMUM_EXCEEDED = 0x93
QUOTA_EXCEEDED = 0x97


def persistent(v):
    return "clean session 0" if v == 4 else "clean start 0"


def session_props(v):
    """The CONNECT properties of a raw persistent session (none for 3.1.1)."""
    return {"session-expiry": KEEP} if v == 5 else None


def raw(b, done, v, name, avoid=None):
    """A RawClient on a worker other than avoid (before its CONNECT),
    closed when done closes.  Returns (client, slot)."""
    r, slot = pmq.raw_elsewhere(b, v, name, avoid)
    done.callback(r.close)
    return r, slot


def raw_on(b, done, v, name, slot, tries=40):
    """A RawClient on worker slot slot (before its CONNECT), closed when
    done closes."""
    for _ in range(tries):
        r = pmq.RawClient(b.port, v, name)
        if b.slot_of_socket(r.local_port) == slot:
            done.callback(r.close)
            return r
        r.close()
    raise pmq.TestFailure("%d connections all landed elsewhere than worker slot %d" %
                          (tries, slot))


def paho(b, done, cid, v, avoid=None, props=None):
    """A connected paho client on a worker other than avoid, closed when
    done closes.  Returns (client, slot)."""
    c, slot = pmq.client_elsewhere(
        b, lambda: done.enter_context(contextlib.closing(pmq.Client(b.port, cid, v))),
        avoid, props)
    c.finish_connect()
    return c, slot


def expect_ack(r, ptype, pid, what, ok=lambda reason: reason < 0x80):
    """The next PUBREC / PUBREL / PUBCOMP (PUBLISH packets on the way are
    kept): packet id pid, a reason code ok() accepts; PUBREL with flags
    0010 [MQTT-3.6.1-1], the others 0000."""
    p = r.expect(ptype, what="%s for packet id %d (%s)" % (pmq.PACKET_NAMES[ptype], pid, what))
    check(p.pid == pid and ok(p.reason),
          "%s: %s: expected %s for packet id %d, got %r" %
          (r.name, what, pmq.PACKET_NAMES[ptype], pid, p))
    flags = 2 if ptype == pmq.PUBREL else 0
    check(p.flags == flags, "%s: %s: %r with fixed header flags %d, expected %d" %
          (r.name, what, p, p.flags, flags))
    return p


def complete(r, p, what):
    """Receive the QoS 2 PUBLISH p to its end: PUBREC, the PUBREL for
    it, PUBCOMP."""
    r.send(pmq.pubrec_packet(p.pid))
    expect_ack(r, pmq.PUBREL, p.pid, what, ok=lambda reason: reason == 0)
    r.send(pmq.pubcomp_packet(p.pid))


def check_messages(what, got, want):
    """got (PUBLISH packets or paho messages) carry the payloads want,
    in order, at the QoS given (payload, qos)."""
    seen = [(m.payload.decode(), m.qos) for m in got]
    check(seen == want, "%s: got %s, expected %s" % (what, seen, want))


def paho_both_ways(b, v):
    """paho clients exchange QoS 2 messages both ways, at QoS 2."""
    u = pmq.unique("paho%d" % v)
    with contextlib.ExitStack() as done:
        a, slot = paho(b, done, u + "-a", v)
        z, _ = paho(b, done, u + "-z", v, avoid=slot)
        for sub, pub, topic in ((a, z, u + "/to-a"), (z, a, u + "/to-z")):
            granted = sub.subscribe(topic, 2)
            check(granted == [2], "%s: SUBSCRIBE with QoS 2 granted %s" % (NAMES[v], granted))
            pub.publish(topic, b"exactly once", 2)      # waits for the PUBCOMP
            sub.expect(topic, b"exactly once", 2)


def first_message_qos2(b):
    """A QoS 2 message the first one a worker takes, checked at once."""
    r = pmq.RawClient(b.port, 4, "first QoS 2 publisher")
    try:
        r.connect(pmq.unique("q2first"))
        r.publish(pmq.unique("q2first/t"), b"first", 2)
    finally:
        r.close()
    b.check_alive("after a fresh worker's first message, at QoS 2")


def raw_flows(b, v):
    """Each packet of both QoS 2 flows; the QoS a subscription grants."""
    u = pmq.unique("flow%d" % v)
    what = "%s QoS 2" % NAMES[v]
    with contextlib.ExitStack() as done:
        sub, slot = raw(b, done, v, "%s subscriber" % NAMES[v])
        sub.connect(u + "-sub")
        pub, _ = raw(b, done, v, "%s publisher" % NAMES[v], avoid=slot)
        pub.connect(u + "-pub")
        granted = sub.subscribe([(u + "/2", 2), (u + "/1", 1), (u + "/0", 0)])
        check(granted == [2, 1, 0], "%s: SUBSCRIBE QoS 2, 1, 0 granted %s" % (what, granted))

        pub.send(pmq.publish_packet(u + "/2", b"flow", 2, 300, version=v))
        expect_ack(pub, pmq.PUBREC, 300, "%s publisher, after PUBLISH" % what)
        pub.send(pmq.pubrel_packet(300))
        expect_ack(pub, pmq.PUBCOMP, 300, "%s publisher, after PUBREL" % what,
                   ok=lambda reason: reason == 0)
        p = sub.expect(pmq.PUBLISH, what="the QoS 2 message")
        check((p.topic, p.payload, p.qos) == (u + "/2", b"flow", 2) and
              not p.flags & DUP and p.pid,
              "%s subscriber: expected PUBLISH QoS 2 without DUP, got %r" % (what, p))
        complete(sub, p, "%s subscriber" % what)

        cases = [  # topic, QoS sent, QoS delivered
            (u + "/1", 2, 1), (u + "/0", 2, 0), (u + "/2", 1, 1), (u + "/2", 0, 0)]
        for topic, qos, want in cases:
            payload = "QoS %d to a QoS %s subscription" % (qos, topic[-1])
            pub.publish(topic, payload, qos)
            m = sub.message(what=payload)
            check((m.topic, m.payload.decode(), m.qos) == (topic, payload, want),
                  "%s: expected %r on %s at QoS %d, got %r" % (what, payload, topic, want, m))
        # nothing else came (the first message again, say): the marker is next
        pub.publish(u + "/2", b"marker", 2)
        m = sub.message(what="the marker")
        check((m.payload, m.qos, m.flags & DUP) == (b"marker", 2, 0),
              "%s: expected the marker at QoS 2, got %r" % (what, m))


def duplicate_inbound(b, v):
    """PUBLISH id 7 twice (DUP) before PUBREL: delivered once; after
    PUBCOMP, id 7 carries a new message."""
    u = pmq.unique("dup%d" % v)
    topic = u + "/t"
    what = "%s publisher" % NAMES[v]
    with contextlib.ExitStack() as done:
        sub, slot = raw(b, done, v, "%s subscriber" % NAMES[v])
        sub.connect(u + "-sub")
        sub.subscribe(topic, 2)
        pub, _ = raw(b, done, v, what, avoid=slot)
        pub.connect(u + "-pub")
        pub.send(pmq.publish_packet(topic, b"first", 2, 7, version=v))
        expect_ack(pub, pmq.PUBREC, 7, "%s, PUBLISH id 7" % what)
        pub.send(pmq.publish_packet(topic, b"first", 2, 7, version=v, dup=True))
        expect_ack(pub, pmq.PUBREC, 7, "%s, the same PUBLISH again with DUP" % what)
        pub.send(pmq.pubrel_packet(7))
        expect_ack(pub, pmq.PUBCOMP, 7, "%s, PUBREL 7" % what, ok=lambda reason: reason == 0)
        pub.send(pmq.publish_packet(topic, b"second", 2, 7, version=v))
        expect_ack(pub, pmq.PUBREC, 7, "%s, a new PUBLISH id 7 after PUBCOMP" % what)
        pub.send(pmq.pubrel_packet(7))
        expect_ack(pub, pmq.PUBCOMP, 7, "%s, PUBREL 7 again" % what,
                   ok=lambda reason: reason == 0)
        pub.publish(topic, b"marker", 2)
        got = [sub.message(what="message %d" % (k + 1)) for k in range(3)]
        check_messages("%s: a QoS 2 message sent twice, then id 7 used again" % NAMES[v],
                       got, [("first", 2), ("second", 2), ("marker", 2)])


def many_in_flight(b):
    """200 QoS 2 messages from a 3.1.1 client, none released before all
    are received: all delivered, once, in order."""
    u = pmq.unique("many")
    topic = u + "/t"
    what = "%d QoS 2 messages in flight from a 3.1.1 client" % MANY
    with contextlib.ExitStack() as done:
        sub, slot = paho(b, done, u + "-sub", 5)
        sub.subscribe(topic, 2)
        pub, _ = raw(b, done, 4, "3.1.1 publisher", avoid=slot)
        pub.connect(u + "-pub")
        ids = list(range(1, MANY + 1))
        pub.send(b"".join(pmq.publish_packet(topic, "%03d" % k, 2, k) for k in ids))
        recs = [pub.expect(pmq.PUBREC, what="PUBREC %d of %d" % (k, MANY)) for k in ids]
        check(sorted(p.pid for p in recs) == ids,
              "%s: PUBRECs for packet ids %s, expected each of 1..%d once" %
              (what, [p.pid for p in recs], MANY))
        pub.send(b"".join(pmq.pubrel_packet(k) for k in ids))
        comps = [pub.expect(pmq.PUBCOMP, what="PUBCOMP %d of %d" % (k, MANY)) for k in ids]
        check(sorted(p.pid for p in comps) == ids,
              "%s: PUBCOMPs for packet ids %s, expected each of 1..%d once" %
              (what, [p.pid for p in comps], MANY))
        kept = ids[:b.qos2_inflight_limit] if b.qos2_inflight_limit else ids
        got = sub.collect(len(kept), 10, "the QoS 2 messages")
        check_messages(what, got, [("%03d" % k, 2) for k in kept])
        # none came twice, and the ones the target loses do not come late
        pub.publish(topic, b"marker", 2)
        sub.expect(topic, b"marker", 2)


class Window:
    """What a 5.0 subscriber with a Receive Maximum has received: every
    QoS 2 PUBLISH, and those without their PUBCOMP yet (the place a
    message takes is given back by the PUBCOMP alone).  refill: the
    target's allowance (b.receive_maximum_refill): after a PUBCOMP up to
    limit messages may come, whatever is still unacknowledged."""

    def __init__(self, r, limit, refill=False):
        self.r, self.limit, self.refill = r, limit, refill
        self.got, self.open = [], []
        self.completed = 0      # PUBCOMPs sent
        self.since = 0          # messages received since the last PUBCOMP

    def take(self, p):
        check(p.type == pmq.PUBLISH and p.qos == 2,
              "%s: expected a QoS 2 PUBLISH, got %r" % (self.r.name, p))
        self.got.append(p)
        self.open.append(p)
        self.since += 1
        if self.refill and self.completed:
            check(self.since <= self.limit,
                  "%s: Receive Maximum %d, but %d QoS 2 messages came after one PUBCOMP" %
                  (self.r.name, self.limit, self.since))
        else:
            check(len(self.open) <= self.limit,
                  "%s: Receive Maximum %d, but %d QoS 2 messages unacknowledged (no "
                  "PUBCOMP): %s" % (self.r.name, self.limit, len(self.open), self.open))

    def next(self):
        self.take(self.r.recv(what="QoS 2 PUBLISH %d" % (len(self.got) + 1)))

    def settle(self):
        """A PINGREQ round trip: what the broker sent before the PINGRESP
        (more messages than the window allows) is taken."""
        self.r.send(pmq.PINGREQ_PACKET)
        while True:
            p = self.r.recv(what="PINGRESP")
            if p.type == pmq.PINGRESP:
                return
            self.take(p)

    def release_oldest(self):
        """PUBREC the oldest, its PUBREL (no new message may come meanwhile),
        then PUBCOMP."""
        p = self.open[0]
        before, full = len(self.got), len(self.open) >= self.limit
        self.r.send(pmq.pubrec_packet(p.pid))
        while True:
            q = self.r.recv(what="PUBREL %d" % p.pid)
            if q.type != pmq.PUBLISH:
                break
            self.take(q)
        check(q.type == pmq.PUBREL and q.pid == p.pid and q.flags == 2,
              "%s: expected PUBREL %d, got %r" % (self.r.name, p.pid, q))
        self.settle()
        check(not full or len(self.got) == before,
              "%s: Receive Maximum %d: the PUBREC for %r let %s come before its PUBCOMP" %
              (self.r.name, self.limit, p, self.got[before:]))
        self.r.send(pmq.pubcomp_packet(p.pid))
        self.open.pop(0)
        self.completed += 1
        self.since = 0


def receive_maximum_outbound(b):
    """Receive Maximum 3: at most 3 QoS 2 messages unacknowledged."""
    u = pmq.unique("rmout")
    topic = u + "/t"
    what = "5.0 subscriber with Receive Maximum %d" % RECEIVE_MAXIMUM
    with contextlib.ExitStack() as done:
        # a witness on the limited subscriber's worker: once it has all
        # the messages, that worker has them
        witness, slot = paho(b, done, u + "-witness", 5)
        witness.subscribe(topic, 2)
        sub = raw_on(b, done, 5, what, slot)
        sub.connect(u + "-sub", props={"receive-maximum": RECEIVE_MAXIMUM})
        sub.subscribe(topic, 2)
        pub, _ = paho(b, done, u + "-pub", 5, avoid=slot)
        mids = [pub.publish(topic, "%d" % k, 2, wait=False) for k in range(RECEIVE_MESSAGES)]
        pub.wait(lambda: all(m in pub.acked for m in mids), 10, "the PUBCOMPs")
        witness.collect(RECEIVE_MESSAGES, 10, "the messages (witness)")
        w = Window(sub, RECEIVE_MAXIMUM, b.receive_maximum_refill)
        while len(w.got) < RECEIVE_MAXIMUM:
            w.next()
        w.settle()
        while w.open:
            w.release_oldest()
            if len(w.got) < RECEIVE_MESSAGES:
                w.next()
                w.settle()
        check_messages(what, w.got, [("%d" % k, 2) for k in range(RECEIVE_MESSAGES)])
        check(not any(p.flags & DUP for p in w.got), "%s: DUP set on %s" %
              (what, [p for p in w.got if p.flags & DUP]))


def receive_maximum_inbound(b):
    """One QoS 2 PUBLISH past the broker's Receive Maximum: DISCONNECT 0x93."""
    u = pmq.unique("rmin")
    what = "5.0 publisher past the broker's Receive Maximum"
    with contextlib.ExitStack() as done:
        pub, _ = raw(b, done, 5, what)
        ack = pub.connect(u + "-pub")
        limit = ack.props.get("receive-maximum")
        check(limit, "the CONNACK has no Receive Maximum (65535): %s" % ack.props)
        ids = list(range(1, limit + 1))
        pub.send(b"".join(pmq.publish_packet(u + "/t", "%d" % k, 2, k, version=5)
                          for k in ids))
        for k in ids:
            expect_ack(pub, pmq.PUBREC, k, "%s: PUBLISH %d of %d" % (what, k, limit))
        pub.send(pmq.publish_packet(u + "/t", "one too many", 2, limit + 1, version=5))
        if b.receive_maximum_disconnect:
            pub.expect_closed(disconnect=RECEIVE_MAXIMUM_EXCEEDED)
        else:   # Mosquitto: a Quota exceeded PUBREC, the connection kept
            expect_ack(pub, pmq.PUBREC, limit + 1, "%s: PUBLISH %d" % (what, limit + 1),
                       ok=lambda reason: reason == QUOTA_EXCEEDED)
            pub.ping()


def persistent_subscriber(b, v):
    """Gone before PUBCOMP: PUBREL again; gone before PUBREC: PUBLISH
    again with DUP; both with the same packet id."""
    u = pmq.unique("psub%d" % v)
    topic = u + "/t"
    what = "%s subscriber, %s" % (NAMES[v], persistent(v))
    with contextlib.ExitStack() as done:
        sub, slot = raw(b, done, v, what)
        sub.connect(u, clean=False, props=session_props(v))
        sub.subscribe(topic, 2)
        pub, _ = raw(b, done, 5, "publisher", avoid=slot)
        pub.connect(u + "-pub")

        pub.publish(topic, b"released", 2)
        p = sub.expect(pmq.PUBLISH, what="the message")
        check((p.payload, p.qos, p.flags & DUP) == (b"released", 2, 0),
              "%s: expected the message at QoS 2 without DUP, got %r" % (what, p))
        sub.send(pmq.pubrec_packet(p.pid))
        expect_ack(sub, pmq.PUBREL, p.pid, what, ok=lambda reason: reason == 0)
        sub.close()     # without PUBCOMP
        sub, slot = raw(b, done, v, what + " back", avoid=slot)
        ack = sub.connect(u, clean=False, props=session_props(v))
        check(ack.session_present, "%s: reconnecting got session present 0" % what)
        q = sub.recv(what="the PUBREL sent again")
        check(q.type == pmq.PUBREL and q.pid == p.pid and q.flags == 2,
              "%s: gone after its PUBREC, before its PUBCOMP: expected PUBREL %d again, "
              "got %r" % (what, p.pid, q))
        sub.send(pmq.pubcomp_packet(p.pid))

        pub.publish(topic, b"not received", 2)
        p = sub.expect(pmq.PUBLISH, what="the second message")
        check((p.payload, p.qos, p.flags & DUP) == (b"not received", 2, 0),
              "%s: expected the second message at QoS 2 without DUP, got %r" % (what, p))
        sub.close()     # without PUBREC
        sub, slot = raw(b, done, v, what + " back again", avoid=slot)
        ack = sub.connect(u, clean=False, props=session_props(v))
        check(ack.session_present, "%s: reconnecting again got session present 0" % what)
        q = sub.recv(what="the PUBLISH sent again")
        check(q.type == pmq.PUBLISH and q.payload == b"not received" and q.qos == 2,
              "%s: gone before its PUBREC: expected the message again, got %r" % (what, q))
        check(q.flags & DUP and q.pid == p.pid,
              "%s: the message sent again with flags 0x%x, packet id %d (first sent with %d): "
              "expected DUP and the same id" % (what, q.flags, q.pid, p.pid))
        complete(sub, q, what)
        pub.publish(topic, b"marker", 2)
        m = sub.message(what="the marker")
        check((m.payload, m.flags & DUP) == (b"marker", 0),
              "%s: expected only the marker after the completed messages, got %r" % (what, m))


def persistent_publisher(b, v):
    """Gone before PUBREL: the PUBLISH again with DUP on the next
    connection gets PUBREC, the message arrives once; a PUBREL on the next
    connection gets PUBCOMP."""
    u = pmq.unique("ppub%d" % v)
    topic = u + "/t"
    what = "%s publisher, %s" % (NAMES[v], persistent(v))
    with contextlib.ExitStack() as done:
        sub, slot = raw(b, done, 5, "subscriber")
        sub.connect(u + "-sub")
        sub.subscribe(topic, 2)
        pub, slot = raw(b, done, v, what, avoid=slot)
        pub.connect(u, clean=False, props=session_props(v))
        pub.send(pmq.publish_packet(topic, b"sent again", 2, 9, version=v))
        expect_ack(pub, pmq.PUBREC, 9, what)
        pub.close()     # without PUBREL
        pub, slot = raw(b, done, v, what + " back", avoid=slot)
        ack = pub.connect(u, clean=False, props=session_props(v))
        check(ack.session_present, "%s: reconnecting got session present 0" % what)
        pub.send(pmq.publish_packet(topic, b"sent again", 2, 9, version=v, dup=True))
        expect_ack(pub, pmq.PUBREC, 9, "%s: the PUBLISH sent again with DUP" % what)
        pub.send(pmq.pubrel_packet(9))
        expect_ack(pub, pmq.PUBCOMP, 9, what, ok=lambda reason: reason == 0)

        pub.send(pmq.publish_packet(topic, b"released later", 2, 10, version=v))
        expect_ack(pub, pmq.PUBREC, 10, what)
        pub.close()     # without PUBREL
        pub, slot = raw(b, done, v, what + " back again", avoid=slot)
        ack = pub.connect(u, clean=False, props=session_props(v))
        check(ack.session_present, "%s: reconnecting again got session present 0" % what)
        pub.send(pmq.pubrel_packet(10))
        expect_ack(pub, pmq.PUBCOMP, 10, "%s: PUBREL on the new connection" % what,
                   ok=lambda reason: reason == 0)
        pub.publish(topic, b"marker", 2)
        got = [sub.message(what="message %d" % (k + 1)) for k in range(3)]
        check_messages(what, got, [("sent again", 2), ("released later", 2), ("marker", 2)])


def test():
    b = pmq.start_target(workers=2, name="qos2")
    try:
        if b.max_qos < 2:
            print("SKIP: the target offers QoS up to %d" % b.max_qos)
            return pmq.SKIP
        first_message_qos2(b)
        for v in (4, 5):
            paho_both_ways(b, v)
            raw_flows(b, v)
            duplicate_inbound(b, v)
            persistent_subscriber(b, v)
            persistent_publisher(b, v)
        many_in_flight(b)
        receive_maximum_outbound(b)
        receive_maximum_inbound(b)
        b.check_alive("after the QoS 2 checks")
    finally:
        b.stop()
        b.cleanup()


pmq.run_test(test)
