"""Persistent sessions (MQTT 3.1.1 clean session 0, MQTT 5.0 clean start
0 with a Session Expiry Interval), checked with real clients (paho,
mosquitto_sub and mosquitto_pub) and, where a flag, a packet id or a
reason code must be seen, a raw socket.  Every reconnection of a session
lands, where the target has several workers, on another worker than the
connection before (a connection that lands on the same one is closed
and another one opened), and the messages for a session come from a
publisher on the worker it left:

- session present is 0 for a new session, 1 when it is resumed, 0 after
  a clean start, whose old subscriptions are gone; a clean session
  (3.1.1) or a 5.0 session with expiry 0 ends at the disconnect;
- subscriptions (exact, + and #, 5.0 no-local included) survive the
  disconnect: messages published after the reconnection arrive without
  subscribing again, and a 5.0 client still does not get its own
  messages back on a no-local filter;
- 50 QoS 1 messages published while the subscriber is away arrive
  after the reconnection, all, in order, before a message published
  after it; a QoS 0 message published while it is away is not kept;
- a QoS 1 message delivered but not acknowledged is sent again when
  the session resumes, with DUP set and the same packet id [MQTT-4.4.0-1,
  MQTT-3.3.1-1]; once acknowledged it is not sent again;
- messages in flight when the client unsubscribes are completed
  [MQTT-3.10.4-3]: a PUBACK after the UNSUBACK is taken, a PUBREC gets
  its PUBREL, and a QoS 1 message left unacknowledged comes again (DUP,
  same packet id) at the next connection;
- a 5.0 session that answers PUBACK 0x80 (QoS 1) or PUBREC 0x80 (QoS 2)
  has acknowledged the message: no PUBREL, and it does not come again at
  the next connection [MQTT-4.4.0-2];
- a 5.0 session with Session Expiry Interval 2 is there half a second
  after its disconnect and gone (its queued message and subscription
  with it) once 2 s have passed after the next one; a Session Expiry
  Interval in DISCONNECT changes it (300 to 60 keeps the session, to 1
  ends it a second later); a client that connected with expiry 0 and
  sets one in DISCONNECT gets DISCONNECT 0x82 (Protocol Error, MQTT 5.0
  3.14.2.2.2) and its session ends with the connection;
- a persistent session taken over by a connection on another worker:
  the old connection gets DISCONNECT 0x8E (5.0) or is closed (3.1.1); the
  new one has session present 1 and gets, in order, the message the old
  one had not acknowledged (DUP, same packet id), the ones held back by
  the old connection's Receive Maximum 1 (5.0), and one published after;
- mosquitto_sub -c (-V 311, and -V 5 -x) prints, on its next run, what
  mosquitto_pub -q 1 sent while it was not running (that run subscribes
  to another topic only: the messages come from the kept session);
- promptmqd only: the session and its queue outlive the workers that
  held the clients and walsvc, both killed with SIGKILL, and a stop and
  start of the whole broker on the same data directory.

Mosquitto 2.0.11 passes every check that is not promptmqd's own, with
two allowances the target states: it counts session expiry in whole
seconds and ends a session up to one second after its interval, where
the Server must discard it once the interval has passed [MQTT-4.1.0-2]
(b.expiry_late); and it closes a taken-over 5.0 connection without the
DISCONNECT 0x8E that MQTT 5.0 3.1.4 says the Server sends
(b.says_taken_over)."""

import contextlib
import os
import signal
import struct
import subprocess
import time

import pmq
from pmq import check

NAMES = {4: "3.1.1", 5: "5.0"}
KEEP = 300          # Session Expiry Interval of a session the steps must not lose
QUEUED = 50         # messages queued for an offline session
DUP = 0x08          # the PUBLISH fixed header's DUP flag
TAKEN_OVER = 0x8E
PROTOCOL_ERROR = 0x82
REFUSED = 0x80      # Unspecified error, a 5.0 client's PUBACK / PUBREC
CLI_ROUNDS = 12     # mosquitto_sub runs until one resumed on another worker


def persistent(v):
    return "clean session 0" if v == 4 else "clean start 0"


def connect(b, done, cid, v, avoid=None, clean=False, expiry=KEEP):
    """A paho client with id cid (3.1.1: clean session as clean; 5.0:
    clean start as clean and Session Expiry Interval expiry), connected
    on a worker other than avoid where there are several, closed when
    done closes.  Returns (client, session present, slot)."""
    props = pmq.session_props(expiry) if v == 5 else None
    c, slot = pmq.client_elsewhere(
        b, lambda: done.enter_context(contextlib.closing(
            pmq.Client(b.port, cid, v, clean=clean))), avoid, props)
    return c, bool(c.finish_connect()[0]), slot


def raw(b, done, v, name, avoid=None):
    """A RawClient on a worker other than avoid (before its CONNECT),
    closed when done closes.  Returns (client, slot)."""
    r, slot = pmq.raw_elsewhere(b, v, name, avoid)
    done.callback(r.close)
    return r, slot


def raw_props(v, **props):
    """The CONNECT properties of a raw 5.0 session (none for 3.1.1)."""
    if v != 5:
        return None
    out = {"session-expiry": KEEP}
    out.update(props)
    return out


def acks_sent(c):
    """A QoS 1 round trip after the last message taken from c: paho sends
    a message's PUBACK after handing the message over, so close() right
    after could send its DISCONNECT first and leave the message
    unacknowledged."""
    c.publish(pmq.unique("barrier"), b"", 1)


def only_marker(r, pub, gone, what):
    """RawClient r subscribes to a fresh topic; pub publishes to topic
    gone, then to it: only the marker may arrive.  Returns its topic."""
    marker = pmq.unique("marker")
    r.subscribe(marker, 1)
    pub.publish(gone, b"for a subscription that is gone", 1)
    pub.publish(marker, b"marker", 1)
    m = r.message(what="the marker")
    check((m.topic, m.payload) == (marker, b"marker"),
          "%s: expected only the marker, got %r" % (what, m))
    return marker


def no_session(b, done, pub, cid, v, avoid, gone, what):
    """A connection with id cid and clean session 0 (5.0: clean start 0,
    expiry 0) gets session present 0, and a message to topic gone (a
    subscription of the session that ended) does not arrive.  A raw
    client, placed before its CONNECT: a connection closed for landing on
    the wrong worker would have ended a session wrongly kept, and hidden
    it.  Returns (client, slot)."""
    r, slot = raw(b, done, v, "%s client" % NAMES[v], avoid)
    ack = r.connect(cid, clean=False, props={"session-expiry": 0} if v == 5 else None)
    check(not ack.session_present, "%s: session present 1" % what)
    only_marker(r, pub, gone, "%s: the old subscription" % what)
    return r, slot


def session_present(b, pubs, v):
    """Session present 0 / 1 / 0 after a clean start; clean session and
    5.0 expiry 0 sessions end at the disconnect."""
    u = pmq.unique("present%d" % v)
    what = "%s %s" % (NAMES[v], persistent(v))
    with contextlib.ExitStack() as done:
        c, present, slot = connect(b, done, u, v)
        check(not present, "%s: a new client got session present 1" % what)
        c.subscribe(u + "/old", 1)
        c.close()
        c, present, slot = connect(b, done, u, v, avoid=slot)
        check(present, "%s: reconnecting (on another worker) got session present 0" % what)
        c.close()
        old = slot
        # 3.1.1 clean session 1, 5.0 clean start 1 with expiry 0
        r, slot = raw(b, done, v, "%s clean start" % NAMES[v], avoid=slot)
        ack = r.connect(u, clean=True)
        check(not ack.session_present, "%s: reconnecting with a clean start got session "
              "present 1" % NAMES[v])
        marker = only_marker(r, pubs[old], u + "/old", "%s: after a clean start, the old "
                             "session's subscription" % NAMES[v])
        r.send(pmq.disconnect_packet(v))
        r.expect_closed()
        r, slot = no_session(b, done, pubs[slot], u, v, slot, marker,
                             "%s: after the connection with a clean start%s" %
                             (NAMES[v], "" if v == 4 else " and expiry 0"))
        if v == 5:
            r.subscribe(u + "/zero", 1)
            r.send(pmq.disconnect_packet(v))
            r.expect_closed()
            no_session(b, done, pubs[slot], u, v, slot, u + "/zero",
                       "5.0: after a clean start 0 connection with expiry 0")


def subscriptions_kept(b, pubs, v):
    """Subscriptions, + and # and 5.0 no-local included, survive."""
    from paho.mqtt.subscribeoptions import SubscribeOptions
    u = pmq.unique("subs%d" % v)
    what = "%s %s" % (NAMES[v], persistent(v))
    with contextlib.ExitStack() as done:
        c, _, slot = connect(b, done, u, v)
        filters = [(u + "/a", 1), (u + "/+/b", 1), (u + "/c/#", 1)]
        if v == 5:
            filters.append((u + "/nl", SubscribeOptions(qos=1, noLocal=True)))
        granted = c.subscribe(filters)
        check(granted == [1] * len(filters), "%s: granted %s" % (what, granted))
        c.close()
        old = slot
        c, present, slot = connect(b, done, u, v, avoid=slot)
        check(present, "%s: reconnecting got session present 0" % what)
        cases = [  # topic, matches
            (u + "/a", True), (u + "/x/b", True), (u + "/c", True), (u + "/c/d/e", True),
            (u + "/x/y", False), (u + "/x/b/z", False), (u + "/cc", False), (u + "/a", True)]
        for k, (topic, _) in enumerate(cases):
            pubs[old].publish(topic, "%d" % k, 1)
        want = [(t, "%d" % k) for k, (t, match) in enumerate(cases) if match]
        got = [(m.topic, m.payload.decode()) for m in
               c.collect(len(want), 5, "messages for the kept subscriptions")]
        check(got == want, "%s: the kept subscriptions delivered %s, expected %s" %
              (what, got, want))
        if v == 5:
            c.publish(u + "/nl", b"own message", 1)
            c.publish(u + "/a", b"own marker", 1)
            m = c.get(2, "its own message on a filter without no-local")
            check((m.topic, m.payload) == (u + "/a", b"own marker"),
                  "5.0: no-local lost with the reconnection: expected only the own "
                  "marker, got %r" % m)
            pubs[old].publish(u + "/nl", b"from another client", 1)
            c.expect(u + "/nl", b"from another client", 1)


def offline_queue(b, pubs, v):
    """QoS 1 messages published while away arrive in order, before later
    ones; a QoS 0 message published while away does not."""
    u = pmq.unique("queue%d" % v)
    topic = u + "/q"
    what = "%s %s" % (NAMES[v], persistent(v))
    with contextlib.ExitStack() as done:
        c, _, slot = connect(b, done, u, v)
        c.subscribe(topic, 1)
        c.close()
        pub = pubs[slot]
        mids = [pub.publish(topic, "%03d" % k, 1, wait=False) for k in range(QUEUED)]
        pub.wait(lambda: all(m in pub.acked for m in mids), 10,
                 "PUBACKs for the %d messages" % QUEUED)
        pub.publish(topic, b"QoS 0 while away", 0)
        pub.publish(topic, b"last while away", 1)
        c, present, slot = connect(b, done, u, v, avoid=slot)
        check(present, "%s: reconnecting got session present 0" % what)
        pub.publish(topic, b"after the reconnection", 1)
        want = ["%03d" % k for k in range(QUEUED)] + ["last while away",
                                                      "after the reconnection"]
        got = c.collect(len(want), 10, "the queued messages and the one after")
        payloads = [m.payload.decode() for m in got]
        if payloads != want:
            k = next(k for k in range(len(want)) if payloads[k] != want[k])
            raise pmq.TestFailure("%s: the messages delivered differ from those published "
                                  "from number %d on: got %s, expected %s" %
                                  (what, k, payloads[k:k + 3], want[k:k + 3]))
        check(all(m.qos == 1 for m in got), "%s: QoS %s" % (what, [m.qos for m in got]))


def unacknowledged_resent(b, pubs, v):
    """An unacknowledged QoS 1 message comes again: DUP, same packet id."""
    u = pmq.unique("dup%d" % v)
    topic = u + "/t"
    props = raw_props(v)
    what = "%s %s" % (NAMES[v], persistent(v))
    with contextlib.ExitStack() as done:
        r, slot = raw(b, done, v, "%s subscriber" % NAMES[v])
        r.connect(u, clean=False, props=props)
        r.subscribe(topic, 1)
        pubs[slot].publish(topic, b"not acknowledged", 1)
        first = r.expect(pmq.PUBLISH, what="the message")
        check(first.payload == b"not acknowledged" and first.qos == 1 and
              not first.flags & DUP, "%s: first delivery: %r, flags 0x%x" %
              (what, first, first.flags))
        r.close()       # without PUBACK
        r, slot2 = raw(b, done, v, "%s subscriber back" % NAMES[v], avoid=slot)
        ack = r.connect(u, clean=False, props=props)
        check(ack.session_present, "%s: reconnecting got session present 0" % what)
        again = r.expect(pmq.PUBLISH, what="the unacknowledged message again")
        check(again.payload == first.payload and again.qos == 1,
              "%s: expected the unacknowledged message again, got %r" % (what, again))
        check(again.flags & DUP, "%s: the message sent again without DUP" % what)
        check(again.pid == first.pid, "%s: the message sent again with packet id %d, "
              "first sent with %d" % (what, again.pid, first.pid))
        r.send(pmq.puback_packet(again.pid))
        r.ping()
        r.send(pmq.disconnect_packet(v))
        r.expect_closed()
        r, _ = raw(b, done, v, "%s subscriber once more" % NAMES[v], avoid=slot2)
        ack = r.connect(u, clean=False, props=props)
        check(ack.session_present, "%s: reconnecting again got session present 0" % what)
        pubs[slot2].publish(topic, b"marker", 1)
        m = r.message(what="the marker")
        check(m.payload == b"marker" and not m.flags & DUP,
              "%s: an acknowledged message was sent again: %r" % (what, m))



def refused_not_sent_again(b, pubs, qos):
    """A stored 5.0 session that answers a QoS 1 PUBLISH with PUBACK 0x80,
    or a QoS 2 one with PUBREC 0x80, has acknowledged it: no PUBREL
    follows, and the message does not come again at the next connection
    [MQTT-4.4.0-2]."""
    u = pmq.unique("refused%d" % qos)
    topic = u + "/t"
    props = raw_props(5)
    answer = pmq.PUBACK if qos == 1 else pmq.PUBREC
    what = "5.0 %s, a QoS %d message answered %s 0x%02X" % (
        persistent(5), qos, pmq.PACKET_NAMES[answer], REFUSED)
    with contextlib.ExitStack() as done:
        r, slot = raw(b, done, 5, "QoS %d subscriber" % qos)
        r.connect(u, clean=False, props=props)
        r.subscribe(topic, qos)
        pubs[slot].publish(topic, b"refused", qos)
        p = r.expect(pmq.PUBLISH, what="the message")
        check((p.payload, p.qos) == (b"refused", qos),
              "%s: expected the message at QoS %d, got %r" % (what, qos, p))
        r.send(pmq.packet(answer, 0, struct.pack("!HB", p.pid, REFUSED)))
        r.ping()        # a PUBREL fails here, or at the next connection
        r.send(pmq.disconnect_packet(5))
        r.expect_closed()
        r, slot2 = raw(b, done, 5, "QoS %d subscriber back" % qos, avoid=slot)
        ack = r.connect(u, clean=False, props=props)
        check(ack.session_present, "%s: reconnecting got session present 0" % what)
        pubs[slot2].publish(topic, b"marker", qos)
        m = r.message(what="the marker")     # as would a PUBREL before it
        check(m.payload == b"marker" and not m.flags & DUP,
              "%s: expected only the marker, got %r: the message was sent again" % (what, m))


def unsubscribed_in_flight(b, pubs, v):
    """Messages sent before an UNSUBSCRIBE and not yet acknowledged are
    completed [MQTT-3.10.4-3]: a PUBACK after the UNSUBACK is taken, a
    PUBREC gets its PUBREL, and one left unacknowledged comes again (DUP,
    same packet id) at the stored session's next connection; nothing
    else comes on the filter given up."""
    u = pmq.unique("unsub%d" % v)
    topic, marker = u + "/t", u + "/marker"
    props = raw_props(v)
    what = "%s %s, unsubscribed with messages in flight" % (NAMES[v], persistent(v))
    sent = [("acknowledged", 1), ("completed", 2), ("left", 1)]
    with contextlib.ExitStack() as done:
        r, slot = raw(b, done, v, "%s subscriber" % NAMES[v])
        r.connect(u, clean=False, props=props)
        r.subscribe([(topic, 2), (marker, 1)])
        for payload, qos in sent:
            pubs[slot].publish(topic, payload, qos)
        got = [r.expect(pmq.PUBLISH, what="message %d" % (k + 1)) for k in range(len(sent))]
        check([(p.payload.decode(), p.qos) for p in got] == sent,
              "%s: expected %s, got %s" % (what, sent, got))
        r.send(pmq.unsubscribe_packet(r.pid(), [topic], v))
        r.expect(pmq.UNSUBACK)
        r.send(pmq.puback_packet(got[0].pid))
        r.send(pmq.pubrec_packet(got[1].pid))
        rel = r.expect(pmq.PUBREL, what="the PUBREL after the UNSUBACK")
        check(rel.pid == got[1].pid and rel.reason == 0,
              "%s: PUBREC for packet id %d answered %r" % (what, got[1].pid, rel))
        r.send(pmq.pubcomp_packet(got[1].pid))
        r.ping()
        r.close()       # the last message not acknowledged
        r, slot2 = raw(b, done, v, "%s subscriber back" % NAMES[v], avoid=slot)
        ack = r.connect(u, clean=False, props=props)
        check(ack.session_present, "%s: reconnecting got session present 0" % what)
        again = r.expect(pmq.PUBLISH, what="the unacknowledged message again")
        check(again.payload == b"left" and again.flags & DUP and again.pid == got[2].pid,
              "%s: expected %r again with DUP and packet id %d, got %r" %
              (what, "left", got[2].pid, again))
        r.send(pmq.puback_packet(again.pid))
        pubs[slot].publish(topic, b"after the UNSUBSCRIBE", 1)
        pubs[slot].publish(marker, b"marker", 1)
        m = r.message(what="the marker")
        check((m.topic, m.payload, m.flags & DUP) == (marker, b"marker", 0),
              "%s: expected only the marker, got %r" % (what, m))

def check_ended(b, done, pub, cid, topic, slot, since, interval, what):
    """The 5.0 session cid, away since since with Session Expiry
    Interval interval, is gone once that passed: session present 0, and
    neither its queued message nor its subscription to topic left."""
    # A time condition, not an event: the session must be gone once its
    # interval has passed [MQTT-4.1.0-2] (b.expiry_late: Mosquitto counts
    # whole seconds).  No reconnection can poll for the end: one that
    # finds the session resumes it and starts its interval again.
    time.sleep(max(0.0, since + interval + b.expiry_late + pmq.patience(0.1) -
                   time.monotonic()))
    no_session(b, done, pub, cid, 5, slot, topic, "%s, %.1fs after the disconnect" %
               (what, time.monotonic() - since))


def session_expiry(b, pubs):
    """Session Expiry Interval 2: kept for 0.5 s, gone after 2 s."""
    u = pmq.unique("expiry")
    topic = u + "/t"
    what = "5.0 session with Session Expiry Interval 2"
    with contextlib.ExitStack() as done:
        c, _, slot = connect(b, done, u, 5, expiry=2)
        c.subscribe(topic, 1)
        c.close()
        pubs[slot].publish(topic, b"while away", 1)
        # A time condition: the session is kept while its interval runs;
        # it must still be there half a second into it.
        time.sleep(0.5)
        c, present, slot = connect(b, done, u, 5, avoid=slot, expiry=2)
        check(present, "%s: reconnecting 0.5s after the disconnect got session present 0" %
              what)
        c.expect(topic, b"while away", 1)
        acks_sent(c)
        c.close()
        away = time.monotonic()
        pubs[slot].publish(topic, b"queued before the end", 1)
        check_ended(b, done, pubs[slot], u, topic, slot, away, 2, what)


def expiry_set_at_disconnect(b, pubs):
    """DISCONNECT's Session Expiry Interval: 300 -> 60 keeps, -> 1 ends."""
    u = pmq.unique("disc")
    topic = u + "/t"
    props = raw_props(5)
    with contextlib.ExitStack() as done:
        r, slot = raw(b, done, 5, "5.0 client")
        r.connect(u, clean=False, props=props)
        r.subscribe(topic, 1)
        r.send(pmq.disconnect_packet(5, props={"session-expiry": 60}))
        r.expect_closed()
        r, slot = raw(b, done, 5, "5.0 client back", avoid=slot)
        ack = r.connect(u, clean=False, props=props)
        check(ack.session_present, "5.0: after DISCONNECT with Session Expiry Interval 60 "
              "(connected with %d), session present 0" % KEEP)
        r.send(pmq.disconnect_packet(5, props={"session-expiry": 1}))
        r.expect_closed()
        away = time.monotonic()
        pubs[slot].publish(topic, b"queued before the end", 1)
        check_ended(b, done, pubs[slot], u, topic, slot, away, 1,
                    "5.0 session whose DISCONNECT set Session Expiry Interval 1")


def expiry_from_zero_refused(b, pubs):
    """Expiry 0 at CONNECT, > 0 at DISCONNECT: DISCONNECT 0x82."""
    u = pmq.unique("zero")
    topic = u + "/t"
    with contextlib.ExitStack() as done:
        r, slot = raw(b, done, 5, "5.0 client with Session Expiry Interval 0")
        r.connect(u, clean=False)
        r.subscribe(topic, 1)
        r.send(pmq.disconnect_packet(5, props={"session-expiry": 60}))
        r.expect_closed(disconnect=PROTOCOL_ERROR)
        no_session(b, done, pubs[slot], u, 5, slot, topic, "5.0: after a DISCONNECT "
                   "that set a Session Expiry Interval where the CONNECT had 0")


def takeover(b, pubs, v):
    """A persistent session taken over from another worker keeps going."""
    u = pmq.unique("take%d" % v)
    what = "%s %s taken over" % (NAMES[v], persistent(v))
    with contextlib.ExitStack() as done:
        old, slot = raw(b, done, v, "old connection (%s)" % NAMES[v])
        # 5.0: Receive Maximum 1, so that two messages wait in the session
        old.connect(u, clean=False, props=raw_props(v, **{"receive-maximum": 1}))
        old.subscribe([(u + "/a", 1), (u + "/+/b", 1)])
        pub = pubs[slot]
        sent = [(u + "/a", b"one"), (u + "/x/b", b"two"), (u + "/a", b"three")]
        for topic, payload in sent:
            pub.publish(topic, payload, 1)
        # the first one stays unacknowledged; 3.1.1 has no Receive
        # Maximum: the broker may have sent the others too (left unread)
        first = old.expect(pmq.PUBLISH, what="the first message")
        check((first.topic, first.payload) == sent[0],
              "%s: the old connection got %r first" % (what, first))
        new, _ = raw(b, done, v, "new connection (%s)" % NAMES[v], avoid=slot)
        ack = new.connect(u, clean=False, props=raw_props(v))
        check(ack.session_present, "%s: the new connection got session present 0" % what)
        if v == 5:
            old.expect_closed(disconnect=TAKEN_OVER, optional=not b.says_taken_over)
        else:
            old.expect_closed(allow=(pmq.PUBLISH,))
        pub.publish(u + "/y/b", b"four", 1)
        got = [new.message(what="message %d" % (k + 1)) for k in range(4)]
        want = sent + [(u + "/y/b", b"four")]
        check([(p.topic, p.payload) for p in got] == want,
              "%s: the new connection got %s, expected %s" % (what, got, want))
        check(got[0].flags & DUP and got[0].pid == first.pid,
              "%s: the unacknowledged message came again with flags 0x%x, packet id %d "
              "(first sent with %d): expected DUP and the same id" %
              (what, got[0].flags, got[0].pid, first.pid))


def run_tool(args, what):
    r = subprocess.run(args, capture_output=True, text=True, timeout=pmq.patience(10))
    check(r.returncode == 0, "%s failed (%d): %s" % (what, r.returncode, r.stdout + r.stderr))
    return r.stdout


def command_line_tools(b, v):
    """mosquitto_sub -c gets on its next run what was sent meanwhile."""
    for _ in range(CLI_ROUNDS):
        u = pmq.unique("cli" + v)
        cid, topic = u + "-sub", u + "/t"
        common = ["-h", "127.0.0.1", "-p", str(b.port), "-V", v]
        session = ["-i", cid, "-c", "-q", "1"] + (["-x", str(KEEP)] if v == "5" else [])
        run_tool(["mosquitto_sub"] + common + session + ["-t", topic, "-E"],
                 "-V %s: mosquitto_sub -E (subscribe and exit)" % v)
        msgs = ["one", "two three", "four"]
        for m in msgs:
            run_tool(["mosquitto_pub"] + common + ["-i", u + "-pub", "-t", topic,
                                                   "-q", "1", "-m", m],
                     "-V %s: mosquitto_pub -q 1" % v)
        out = run_tool(["mosquitto_sub"] + common + session + [
            "-t", u + "/other", "-C", str(len(msgs)), "-v",
            "-W", str(int(pmq.patience(4)))],
            "-V %s: mosquitto_sub -c run again (-C %d)" % (v, len(msgs)))
        want = ["%s %s" % (topic, m) for m in msgs]
        check(out.splitlines() == want, "-V %s: mosquitto_sub -c printed %s on its next "
              "run, expected %s" % (v, out.splitlines(), want))
        first, second = b.connection_slots(cid, 2)
        if b.slots == 1 or first != second:
            return
    raise pmq.TestFailure("-V %s: in %d rounds mosquitto_sub never ran again on another "
                          "worker" % (v, CLI_ROUNDS))


def kill_and_wait(b, slots):
    """SIGKILL the workers of slots, then walsvc; wait until all are back."""
    mark = b.mark()
    victims = [(s, b.worker_pid(s)) for s in sorted(slots)]
    for _, pid in victims:
        os.kill(pid, signal.SIGKILL)
    walsvc = b.walsvc_pid()
    check(walsvc, "no walsvc to kill")
    os.kill(walsvc, signal.SIGKILL)
    for s, pid in victims:
        m = b.wait_log(r"child started role=worker slot=%d pid=(\d+)" % s, 10, mark)
        b.wait_log(r"worker/%d\[%s\] info: worker ready" % (s, m.group(1)), 10, mark)
    m = b.wait_log(r"child started role=walsvc slot=\d+ pid=(\d+)", 10, mark)
    b.wait_log(r"walsvc\[%s\] info: walsvc ready" % m.group(1), 10, mark)


def publish_acked(b, done, topics, n, first):
    """n QoS 1 messages to each topic, numbered from first, all PUBACKed,
    from a client closed afterwards."""
    pub = pmq.Client(b.port, pmq.unique("durpub"), 5)
    done.callback(pub.close)
    pub.connect()
    mids = [pub.publish(t, "%03d" % k, 1, wait=False)
            for k in range(first, first + n) for t in topics]
    pub.wait(lambda: all(m in pub.acked for m in mids), 10,
             "PUBACKs for %d messages" % len(mids))
    pub.close()


def expect_numbered(b, done, cid, v, topic, avoid, first, n, what):
    """Reconnect cid: session present 1 and messages first..first+n-1 in
    order, then one published after the reconnection."""
    c, present, slot = connect(b, done, cid, v, avoid=avoid)
    check(present, "%s %s: reconnecting %s got session present 0" %
          (NAMES[v], persistent(v), what))
    pub = pmq.Client(b.port, pmq.unique("durpub"), 5)
    done.callback(pub.close)
    pub.connect()
    pub.publish(topic, b"after", 1)
    want = ["%03d" % k for k in range(first, first + n)] + ["after"]
    got = [m.payload.decode() for m in c.collect(len(want), 10, "the queued messages")]
    check(got == want, "%s %s: %s, the queue delivered %s, expected %s" %
          (NAMES[v], persistent(v), what, got, want))
    acks_sent(c)
    c.close()
    pub.close()
    return slot


def survives_restarts():
    """promptmqd: the session outlives its worker, walsvc, the broker."""
    b = pmq.PromptMQ(workers=2, name="sessdur").start()
    again = None
    try:
        with contextlib.ExitStack() as done:
            cids = {v: pmq.unique("dur%d" % v) for v in (4, 5)}
            topics = {v: cids[v] + "/t" for v in (4, 5)}
            slots = {}
            for v in (4, 5):
                c, _, slots[v] = connect(b, done, cids[v], v)
                c.subscribe(topics[v], 1)
                c.close()
            publish_acked(b, done, topics.values(), 20, 0)
            kill_and_wait(b, set(slots.values()))
            for v in (4, 5):
                slots[v] = expect_numbered(b, done, cids[v], v, topics[v], slots[v], 0, 20,
                                           "after its worker and walsvc were killed")
        again = pmq.restarted(b, "sessdur")
        with contextlib.ExitStack() as done:
            publish_acked(again, done, topics.values(), 10, 20)
            for v in (4, 5):
                expect_numbered(again, done, cids[v], v, topics[v], slots[v], 20, 10,
                                "after the broker was stopped and started again")
        pmq.stop_restarted(again)
    finally:
        pmq.cleanup_restarted(again, b)


def test():
    b = pmq.start_target(workers=2, name="sessions")
    pubs = {}
    try:
        def publisher(i):
            c = pmq.Client(b.port, pmq.unique("pub"), 5)
            c.connect()
            return c
        pubs = pmq.spread(b, publisher, 1)
        pub_at = {s: cs[0] for s, cs in pubs.items()}
        for v in (4, 5):
            session_present(b, pub_at, v)
            subscriptions_kept(b, pub_at, v)
            offline_queue(b, pub_at, v)
            unacknowledged_resent(b, pub_at, v)
            unsubscribed_in_flight(b, pub_at, v)
            takeover(b, pub_at, v)
        for qos in (1, 2):
            refused_not_sent_again(b, pub_at, qos)
        session_expiry(b, pub_at)
        expiry_set_at_disconnect(b, pub_at)
        expiry_from_zero_refused(b, pub_at)
        for v in ("311", "5"):
            command_line_tools(b, v)
        b.check_alive("after the session checks")
    finally:
        pmq.close_all(pubs)
        b.stop()
        b.cleanup()
    if b.kind == "promptmqd":
        survives_restarts()


pmq.run_test(test)
