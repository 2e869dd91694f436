"""The MQTT 5.0 Message Expiry Interval (MQTT 5.0 3.3.2.3.3), on raw
sockets so that the property of every delivery is seen as sent.  Where
the target has several workers, every subscriber connects to another
worker than the client that publishes to it, and a session reconnects
on another worker than the connection before:

- the offline queue of a persistent session (clean start 0, Session
  Expiry Interval 300), for QoS 1 and for QoS 2: of the messages
  published while the subscriber is away, those with an interval of
  2 s are not delivered once it has passed [MQTT-3.3.2-5]; one with
  100 s arrives with the interval less the time it waited in the
  broker [MQTT-3.3.2-6]; those without one arrive without the
  property; the order they were published in is kept [MQTT-4.6.0-5];
  a message published after the reconnection comes after them;
- a message with an interval of 2 s whose delivery had begun before
  the disconnect (sent, not acknowledged) is sent again with DUP and
  its packet id once the interval has passed: it is not a copy the
  Server "has not managed to start onward delivery" of [MQTT-3.3.2-5],
  and unacknowledged PUBLISH packets must be sent again
  [MQTT-4.4.0-1]; if it carries an interval, at most 2;
- a retained message with an interval of 2 s goes to a subscriber
  right away with at most 2 s left, and not to one that subscribes
  once it has passed [MQTT-3.3.2-5]; one with 100 s goes to that one
  with its interval less the time it waited [MQTT-3.3.2-6];
- a live subscriber whose receive window is full (Receive Maximum 1,
  the first message not acknowledged), without and with a stored
  session: nothing more comes while the window is full
  [MQTT-3.3.4-9]; the messages with an interval of 2 s queued behind
  it are not delivered once it has passed, the one with 100 s is, with
  its interval less the time it waited, and so are a queued message
  without an interval and one published after the acknowledgement;
- a QoS 2 message with an interval of 2 s whose PUBREL comes once it
  has passed still gets PUBCOMP 0x00, from a clean publisher and from a
  stored one [MQTT-4.3.3-13]; its copy for a stored subscriber away
  meanwhile has expired and is not delivered;
- promptmqd only: across a stop and start of the whole broker, a
  queued message with an interval of 3 s (QoS 1 and QoS 2) that passed
  while the broker was down is not delivered; one with 300 s is, its
  interval reduced by at least the time the broker was down.

What the broker sends is bounded by what the test measured: a message
waited in the broker at least from its acknowledgement (PUBACK or
PUBREC) until the moment the test did what let the broker send it
(the reconnection, the PUBACK that freed the window), and at most
from its PUBLISH until it arrived.  Intervals are whole seconds: the
one sent may be up to a second more than the exact rest (rounded up)
and, on a broker that counts the wall clock's whole seconds, a second
less.  That nothing (else) came is shown by a marker published after
the messages to the same topic, at the same QoS, which the Server sends
after them [MQTT-4.6.0-5].

Mosquitto 2.0.11 passes every check that is not promptmqd's own, with
two allowances the target states.  It deletes a message whose interval
passed while its delivery had begun and it was not acknowledged
(b.resends_expired), where the Server must send it again on the
session's next connection [MQTT-4.4.0-1] (MQTT-3.3.2-5 lets it delete
only copies whose delivery has not begun).  And when a full receive
window frees and the message at the head of the queue has expired, it
deletes that one but sends none of those queued behind it, expired or
not, until another message for the client arrives, which then overtakes
them (b.expired_stalls_queue): the queued messages wait without end and
then come out of order [MQTT-4.6.0-5]; what freeing the window lets
through is not checked there.  It counts intervals in whole seconds of
the wall clock, which the bounds above allow for."""

import contextlib
import math
import time

import pmq
from pmq import check

KEEP = 300          # Session Expiry Interval of the persistent sessions
SHORT = 2           # seconds: a message that expires while it waits
LONG = 100          # seconds: one that does not
PAST = 3            # seconds after the acknowledgement of a SHORT message
                    # by which it has expired
DUP = 0x08          # the PUBLISH fixed header's DUP flag
MARK = b"marker"


def raw(b, done, name, avoid=None, cid=None, clean=True, props=None):
    """A connected 5.0 RawClient on a worker other than avoid where the
    target has several, closed when done closes.  Returns (client,
    slot); client.connack is its CONNACK."""
    r, slot = pmq.raw_elsewhere(b, 5, name, avoid)
    done.callback(r.close)
    r.connack = r.connect(cid or pmq.unique("exp"), clean=clean, props=props)
    return r, slot


def publish(r, topic, payload, qos, expiry=None, retain=False):
    """PUBLISH from r with Message Expiry Interval expiry (None: without
    the property), completed with success codes: QoS 1 PUBACK; QoS 2
    PUBREC, PUBREL, PUBCOMP.  Returns (sent, acked): the monotonic times
    between which the broker received it."""
    pid = r.pid()
    props = None if expiry is None else {"message-expiry": expiry}
    sent = time.monotonic()
    r.send(pmq.publish_packet(topic, payload, qos, pid, retain, 5, props))
    ptype = pmq.PUBACK if qos == 1 else pmq.PUBREC
    ack = r.expect(ptype, what="%s for %r to %s" % (pmq.PACKET_NAMES[ptype], payload,
                                                    topic))
    acked = time.monotonic()
    check(ack.pid == pid and ack.reason < 0x80, "%s: %s for packet id %d with a success "
          "code expected, got %r (packet id %d)" % (r.name, pmq.PACKET_NAMES[ptype],
                                                    pid, ack, ack.pid))
    if qos == 2:
        r.send(pmq.pubrel_packet(pid))
        comp = r.expect(pmq.PUBCOMP, what="PUBCOMP for %r" % payload)
        check(comp.pid == pid and comp.reason == 0, "%s: PUBCOMP for packet id %d "
              "expected, got %r" % (r.name, pid, comp))
    return sent, acked


def subscribe(r, topics, qos):
    codes = r.subscribe(topics, qos)
    check(codes == [qos] * len(codes), "%s: SUBACK %s, expected QoS %d granted" %
          (r.name, codes, qos))


def wait_past(acked, seconds):
    """Sleep until seconds after acked (a monotonic time).  A time
    condition, not an event: a message must be gone once its interval
    has passed [MQTT-3.3.2-5], and nothing can poll for that: it is
    there until then."""
    time.sleep(max(0.0, acked + seconds - time.monotonic()))


def check_left(p, interval, times, since, what):
    """The PUBLISH p carries what is left of interval: the message,
    published at times (sent, acked), waited in the broker at least
    from acked until since (before the broker could send it) and at
    most from sent until now.  Returns the interval received."""
    sent, acked = times
    now = time.monotonic()
    left = p.props.get("message-expiry")
    # at least the whole seconds it surely waited, less a tenth for a
    # broker that starts counting when the copy reached the
    # subscriber's worker, a moment after the acknowledgement
    high = interval - int(since - acked - 0.1)
    # at most the seconds it may have waited, rounded up, and one more
    # for a broker that counts the wall clock's whole seconds
    low = max(1, interval - math.ceil(now - sent) - 1)
    check(left is not None, "%s: delivered without a Message Expiry Interval, published "
          "with %d (properties %s)" % (what, interval, p.props))
    check(low <= left <= high, "%s: Message Expiry Interval %d, published with %d "
          "%.1fs to %.1fs before: expected %d to %d" %
          (what, left, interval, since - acked, now - sent, low, high))
    return left


def check_none(p, what):
    check("message-expiry" not in p.props, "%s: published without a Message Expiry "
          "Interval, delivered with %r" % (what, p.props.get("message-expiry")))


def payloads(got):
    return [p.payload.decode() for p in got]


def described(got):
    """What a failure message says of deliveries: payload, DUP and the
    Message Expiry Interval."""
    return ["%s (DUP %d, interval %s)" % (p.payload.decode(), bool(p.flags & DUP),
                                          p.props.get("message-expiry", "none"))
            for p in got]


def offline_queue(b, pub, ps, qos):
    """A persistent session's queue: expired messages are not sent,
    the others are, with their intervals counted down, in order; one
    whose delivery had begun is sent again."""
    u = pmq.unique("offline%d" % qos)
    topic, cid = u + "/t", u + "-sub"
    props = {"session-expiry": KEEP}
    what = "QoS %d, offline queue of a persistent session" % qos
    with contextlib.ExitStack() as done:
        sub, slot = raw(b, done, "QoS %d subscriber" % qos, avoid=ps, cid=cid,
                        clean=False, props=props)
        subscribe(sub, topic, qos)
        # delivery begun: sent, never acknowledged (no PUBACK / PUBREC)
        publish(pub, topic, b"begun", qos, SHORT)
        begun = sub.expect(pmq.PUBLISH, what="the message with interval %d" % SHORT)
        check(begun.payload == b"begun" and begun.qos == qos and not begun.flags & DUP,
              "%s: the first delivery was %r, flags 0x%x" % (what, begun, begun.flags))
        sub.close()
        plan = [("none-1", None), ("short-1", SHORT), ("long", LONG), ("short-2", SHORT),
                ("none-2", None)]
        times = {name: publish(pub, topic, name.encode(), qos, expiry)
                 for name, expiry in plan}
        # the last SHORT one was acknowledged last: all of them expired
        # PAST seconds after that
        wait_past(times["short-2"][1], PAST)
        since = time.monotonic()
        sub, _ = raw(b, done, "QoS %d subscriber back" % qos, avoid=slot, cid=cid,
                     clean=False, props=props)
        check(sub.connack.session_present, "%s: reconnecting got session present 0" % what)
        publish(pub, topic, MARK, qos)
        want = (["begun"] if b.resends_expired else []) + ["none-1", "long", "none-2",
                                                           MARK.decode()]
        got = [sub.message(what="message %d of %d" % (k + 1, len(want)))
               for k in range(len(want))]
        check(payloads(got) == want, "%s: %.1fs after the messages with interval %d were "
              "published, the reconnection got %s, expected %s" %
              (what, since - times["short-2"][1], SHORT, described(got), want))
        check(all(p.qos == qos for p in got), "%s: delivered at QoS %s" %
              (what, [p.qos for p in got]))
        by = {p.payload.decode(): p for p in got}
        if b.resends_expired:
            again = by["begun"]
            check(again.flags & DUP and again.pid == begun.pid,
                  "%s: the message whose delivery had begun came again with flags 0x%x, "
                  "packet id %d (first sent with %d): expected DUP and the same id" %
                  (what, again.flags, again.pid, begun.pid))
            left = again.props.get("message-expiry")
            check(left is None or left <= SHORT, "%s: the message whose delivery had "
                  "begun came again with Message Expiry Interval %d, published with %d" %
                  (what, left, SHORT))
        check_left(by["long"], LONG, times["long"], since,
                   "%s, the message with interval %d" % (what, LONG))
        for name in ("none-1", "none-2"):
            check_none(by[name], "%s, %s" % (what, name))


def retained(b, pub, ps):
    """A retained message with interval 2: sent right away, not after
    it passed; one with 100 counted down."""
    u = pmq.unique("retained")
    short_topic, long_topic = u + "/short", u + "/long"
    what = "retained message with interval %d" % SHORT
    with contextlib.ExitStack() as done:
        long_times = publish(pub, long_topic, b"long-lived", 1, LONG, retain=True)
        sent, acked = publish(pub, short_topic, b"short-lived", 1, SHORT, retain=True)
        early, _ = raw(b, done, "subscriber right away", avoid=ps)
        subscribe(early, short_topic, 1)
        p = early.message(what="the %s" % what)
        check((p.payload, p.retain) == (b"short-lived", True), "%s, right away: got %r "
              "(RETAIN %d)" % (what, p, p.retain))
        left = p.props.get("message-expiry")
        check(left is not None and 0 < left <= SHORT, "%s, %.1fs after its PUBACK: Message "
              "Expiry Interval %r" % (what, time.monotonic() - acked, left))
        wait_past(acked, PAST)
        since = time.monotonic()
        late, _ = raw(b, done, "subscriber after the expiry", avoid=ps)
        subscribe(late, [short_topic, long_topic], 1)
        publish(pub, short_topic, MARK, 1)
        publish(pub, long_topic, MARK, 1)
        got = [late.message(what="message %d of 3" % (k + 1)) for k in range(3)]
        seen = sorted((p.topic, p.payload, p.retain) for p in got)
        want = sorted([(short_topic, MARK, False), (long_topic, b"long-lived", True),
                       (long_topic, MARK, False)])
        check(seen == want, "%s: a subscriber %.1fs after its PUBACK got %s, expected %s" %
              (what, since - acked, seen, want))
        long_one = next(p for p in got if p.payload == b"long-lived")
        check_left(long_one, LONG, long_times, since, "retained message with interval %d"
                   % LONG)


def full_window(b, pub, ps, stored):
    """Receive Maximum 1, the first message unacknowledged: queued
    messages whose interval passes are not sent once it is freed."""
    u = pmq.unique("window%s" % ("s" if stored else ""))
    topic = u + "/t"
    props = {"receive-maximum": 1}
    if stored:
        props["session-expiry"] = KEEP
    what = "live subscriber with Receive Maximum 1%s" % (
        " and a stored session" if stored else "")
    with contextlib.ExitStack() as done:
        sub, _ = raw(b, done, "subscriber with Receive Maximum 1", avoid=ps,
                     cid=u + "-sub", clean=not stored, props=props)
        subscribe(sub, topic, 1)
        publish(pub, topic, b"held", 1)
        held = sub.expect(pmq.PUBLISH, what="the first message")
        check(held.payload == b"held", "%s: got %r first" % (what, held))
        plan = [("short-1", SHORT), ("long", LONG), ("short-2", SHORT), ("none", None),
                ("short-3", SHORT)]
        times = {name: publish(pub, topic, name.encode(), 1, expiry)
                 for name, expiry in plan}
        wait_past(times["short-3"][1], PAST)
        # nothing came meanwhile: the window was full [MQTT-3.3.4-9]
        check(sub.is_open() and not sub.buf and not sub.pending,
              "%s: while the first message was not acknowledged, the broker %s" %
              (what, "closed the connection" if sub.closed else "sent more"))
        if b.expired_stalls_queue:
            print("NOTE: %s: %s stops its queue at an expired message: what freeing "
                  "the window lets through is not checked" % (what, b.kind))
            return
        since = time.monotonic()
        sub.send(pmq.puback_packet(held.pid))
        got = [sub.message(what="message %d of 2 after the PUBACK" % (k + 1))
               for k in range(2)]
        publish(pub, topic, b"after", 1)
        publish(pub, topic, MARK, 1)
        got += [sub.message(what="message %d of 4 after the PUBACK" % (k + 1))
                for k in range(2, 4)]
        want = ["long", "none", "after", MARK.decode()]
        check(payloads(got) == want, "%s: %.1fs after the messages with interval %d were "
              "published, freeing the window let through %s, expected %s" %
              (what, since - times["short-3"][1], SHORT, described(got), want))
        check_left(got[0], LONG, times["long"], since, "%s, the message with interval %d" %
                   (what, LONG))
        check_none(got[1], "%s, the queued message without one" % what)
        check_none(got[2], "%s, the message published after the PUBACK" % what)



def released_after_expiry(b):
    """A QoS 2 message with an interval of SHORT s whose PUBREL comes once
    it has passed: PUBCOMP 0x00 all the same [MQTT-4.3.3-13], to a clean
    publisher and to a stored one, and the copy for a stored subscriber
    away meanwhile has expired: only the marker reaches it."""
    u = pmq.unique("released")
    topic = u + "/t"
    keep = {"session-expiry": KEEP}
    what = "a QoS 2 message released after its interval"
    with contextlib.ExitStack() as done:
        sub, slot = raw(b, done, "subscriber", cid=u + "-sub", clean=False, props=keep)
        subscribe(sub, [topic], 2)
        sub.send(pmq.disconnect_packet(5))
        sub.expect_closed()
        pubs = [raw(b, done, "clean publisher", slot)[0],
                raw(b, done, "stored publisher", slot, cid=u + "-pub", clean=False,
                    props=keep)[0]]
        pids = []
        for r in pubs:
            pids.append(r.pid())
            r.send(pmq.publish_packet(topic, b"expires before its PUBREL", 2, pids[-1],
                                      version=5, props={"message-expiry": SHORT}))
            rec = r.expect(pmq.PUBREC, what="PUBREC")
            check(rec.pid == pids[-1] and rec.reason < 0x80, "%s: PUBREC for packet id %d "
                  "with a success code expected, got %r" % (r.name, pids[-1], rec))
        wait_past(time.monotonic(), PAST)
        for r, pid in zip(pubs, pids):
            r.send(pmq.pubrel_packet(pid))
            comp = r.expect(pmq.PUBCOMP, what="PUBCOMP after the interval")
            check(comp.pid == pid and comp.reason == 0, "%s: %s: PUBCOMP 0x00 for packet "
                  "id %d expected, got %r" % (r.name, what, pid, comp))
        publish(pubs[0], topic, MARK, 2)
        sub, _ = raw(b, done, "subscriber back", slot, cid=u + "-sub", clean=False,
                     props=keep)
        check(sub.connack.session_present, "%s: the subscriber got session present 0" % what)
        m = sub.message(what="the marker")
        check(m.payload == MARK, "%s: the subscriber away got %s, expected only the "
              "marker" % (what, described([m])))

def across_restart():
    """promptmqd: a message whose interval passed while the broker was
    down is not delivered; one with 300 s is, counted down."""
    b = pmq.PromptMQ(workers=2, name="expdur").start()
    again = None
    short, long_ = 3, 300
    try:
        u = pmq.unique("restart")
        cid = u + "-sub"
        topics = {q: "%s/q%d" % (u, q) for q in (1, 2)}
        props = {"session-expiry": KEEP}
        times = {}
        with contextlib.ExitStack() as done:
            pub, ps = raw(b, done, "publisher")
            sub, slot = raw(b, done, "subscriber", avoid=ps, cid=cid, clean=False,
                            props=props)
            for q, t in topics.items():
                subscribe(sub, [t], q)
            sub.send(pmq.disconnect_packet(5))
            sub.expect_closed()
            for q, t in topics.items():
                for name, expiry in (("short", short), ("long", long_), ("none", None)):
                    times[(q, name)] = publish(pub, t, name.encode(), q, expiry)
        status = b.stop()
        check(status == 0, "promptmqd exit status %s before the restart" % status)
        down = time.monotonic()
        # the broker stays down until the short messages have expired
        wait_past(max(times[(q, "short")][1] for q in topics), short)
        again = pmq.restarted(b, "expdur")
        downtime = time.monotonic() - down
        with contextlib.ExitStack() as done:
            since = time.monotonic()
            sub, _ = raw(again, done, "subscriber after the restart", avoid=slot, cid=cid,
                         clean=False, props=props)
            check(sub.connack.session_present, "after the restart, the session was not "
                  "resumed (session present 0)")
            pub, _ = raw(again, done, "publisher of the markers")
            for q, t in topics.items():
                publish(pub, t, MARK, q)
            got = [sub.message(what="message %d of 6 after the restart" % (k + 1))
                   for k in range(6)]
            for q, t in topics.items():
                what = "QoS %d, after the broker was down %.1fs" % (q, downtime)
                mine = [p for p in got if p.topic == t]
                want = ["long", "none", MARK.decode()]
                check(payloads(mine) == want, "%s: the queue delivered %s, expected %s "
                      "(the message with interval %d expired meanwhile)" %
                      (what, described(mine), want, short))
                left = check_left(mine[0], long_, times[(q, "long")], since,
                                  "%s, the message with interval %d" % (what, long_))
                check(left <= long_ - int(downtime), "%s: Message Expiry Interval %d, "
                      "published with %d: not reduced by the time the broker was down" %
                      (what, left, long_))
                check_none(mine[1], "%s, the message without one" % what)
        pmq.stop_restarted(again)
    finally:
        pmq.cleanup_restarted(again, b)


def test():
    b = pmq.start_target(workers=2, name="expiry")
    try:
        with contextlib.ExitStack() as done:
            pub, ps = raw(b, done, "publisher")
            for qos in (1, 2):
                offline_queue(b, pub, ps, qos)
            retained(b, pub, ps)
            for stored in (False, True):
                full_window(b, pub, ps, stored)
            released_after_expiry(b)
        b.check_alive("after the message expiry checks")
    finally:
        b.stop()
        b.cleanup()
    if b.kind == "promptmqd":
        across_restart()


pmq.run_test(test)
