"""Shared subscriptions ($share/GROUP/FILTER, MQTT 5.0 4.8.2) with the
members of a group on different workers, as docs/architecture.md
"Shared subscriptions" describes them.  Members are placed by where the
kernel's SO_REUSEPORT choice put them (slot_of, slot_of_socket), more of
them connected until every worker holds one.  Each scenario:

1. balance: a group of a paho 5.0, a paho 3.1.1, a raw 5.0 and a
   mosquitto_sub member (3.1.1 with 2 workers, 5.0 with 3), granted QoS
   2, 1, 0 and 2; one publisher sends 60 messages at QoS 0, then 1, then
   2: each reaches exactly one member, at the lower of its QoS and the
   member's granted QoS [MQTT-4.8.2-3], and each member gets 60/members
   within one (one publisher: the members are taken in turn);
2. two_groups: two groups on the same filter and a plain subscriber:
   each group gets every message once, the plain subscriber every one;
3. plain_and_shared: a client with a plain and a shared subscription
   that both match gets every message through the plain one and, when
   picked, once more through the shared one; each copy carries only its
   own subscription's identifier [MQTT-3.3.4-3, MQTT-3.3.4-5];
4. clean_member_leaves: a clean-session member (5.0, Receive Maximum 5)
   that acknowledges nothing and is then cut off: every message it held,
   sent or queued, reaches the other members, once (4.8.2: the Server
   SHOULD send a QoS 1 message to another member when the session ends;
   QoS 1 only: a QoS 2 message whose delivery began must go to no other
   member [MQTT-4.8.2-5]);
4b. refused_and_begun: a clean member refuses one QoS 1 message (PUBACK
   0x80) and holds two QoS 2 messages without PUBREC, then is cut off:
   the refused one reaches nobody [MQTT-4.8.2-6], the QoS 2 ones nobody
   else [MQTT-4.8.2-5], the QoS 1 ones it did not acknowledge the other
   member;
5. stored_member_away: a member with Session Expiry Interval 300 is away
   while messages come: its share waits for it and comes when it returns
   (clean start 0); together with the online members, each message once;
5b. stored_qos2_completed: a stored member that got a QoS 2 message and
   sent no PUBREC comes back: the message comes again, DUP set, to it
   [MQTT-4.8.2-4];
6. stored_member_ends: a stored member's session ends while its share
   waits, by a clean start over it or by its expiry: its share goes to
   the other members, stored (one away, which gets it on its return) or
   clean, each message once;
7. no_local: No Local on a $share filter is a Protocol Error, DISCONNECT
   0x82 [MQTT-3.8.3-4];
8. unavailable: with mqtt.shared-sub-available = false the CONNACK says
   Shared Subscription Available 0 and a $share filter gets SUBACK 0x9E
   (5.0; 3.1.1: 0x80) while a plain filter beside it is granted and the
   connection stays (3.2.2.3.17, 3.9.3); default_connack: with the
   default the CONNACK carries no 0x2A property (absent means available);
9. no_retained: a new $share subscription gets no retained message (MQTT
   5.0 3.3.1.3 sends them when a new Non-shared Subscription is made),
   5.0 and 3.1.1;
10. restart: the shares of two stored members (5.0 and 3.1.1) that wait
   for them survive a stop and start of the broker and come exactly
   once, beside what a clean member got before the stop.

balance, two_groups and clean_member_leaves run with 2 and with 3
workers; the rest with 2.  A message is "exactly once" when the members
together got it once: after every message has reached some member, a
marker on each member's own plain topic, sent by the same publisher,
must come before the count is taken.

Against Mosquitto (PMQ_TARGET=mosquitto) the scenarios it shares run on
its one process, which checks the checks (2.0.11 takes the members
strictly in turn, an away stored member included, as promptmqd does);
it differs from promptmqd in the others, which are skipped there:
- clean_member_leaves, refused_and_begun, stored_member_ends: it keeps a
  member's messages with it until it comes back, and drops them when its
  session ends;
- no_local: it grants No Local on a $share filter (MQTT-3.8.3-4 makes it
  a Protocol Error);
- unavailable: it cannot turn shared subscriptions off (its default
  CONNACK, checked, carries no 0x2A);
- no_retained: it sends retained messages to a new $share subscription;
- restart: its test configuration keeps nothing across a restart.

Run: PMQ_TARGET=mosquitto for Mosquitto only; scenario names as
arguments run only those (e.g. `mqtt_shared.py balance restart`); with
PMQ_TARGET=mosquitto, a scenario named runs even where Mosquitto differs,
to see how (not unavailable and restart, which start a promptmqd).
Every scenario runs even when an earlier one failed; the failures are
listed together at the end."""

import collections
import contextlib
import struct
import subprocess
import sys

import pmq
from pmq import check

N = 60              # messages per QoS in balance
FEW = 30            # messages per topic elsewhere
MSG_TIMEOUT = 10    # seconds for every message to reach some member
NAMES = {4: "3.1.1", 5: "5.0"}
NOT_SUPPORTED = {0x9E: "0x9E Shared Subscriptions not supported", 0x80: "0x80 failure"}
PROTOCOL_ERROR = 0x82
IS_PROMPTMQ = pmq.TARGET == "promptmqd"
FLUSH = pmq.unique("flush")     # root of the members' own marker topics

Delivery = collections.namedtuple("Delivery", "topic payload qos ids")


class Member:
    """A client as a group member: the worker slot it landed on, the
    QoS its shared subscription was granted, and what it received
    through it, [Delivery] (subscription identifiers where the client
    shows them).  Messages on its marker topic (FLUSH/client id) are counted
    apart.  poll() takes what came, without waiting."""

    granted = None

    def __init__(self, name, slot, client_id):
        self.name, self.slot, self.client_id = name, slot, client_id
        self.flush_topic = "%s/%s" % (FLUSH, client_id)
        self.got = []
        self.flushed = 0

    def _add(self, topic, payload, qos, ids=()):
        if topic == self.flush_topic:
            self.flushed += 1
        else:
            self.got.append(Delivery(topic, payload, qos, tuple(sorted(ids))))

    def __repr__(self):
        return "%s (worker %d)" % (self.name, self.slot)


def granted_check(member, filt, codes, want):
    """The SUBACK for filt must grant want; a refusal is named."""
    what = NOT_SUPPORTED.get(codes[0], "0x%02X" % codes[0])
    check(codes[0] == want, "%s: SUBACK for %s: expected granted QoS %d, got %s" %
          (member.name, filt, want, what))
    member.granted = want


class PahoMember(Member):
    """A paho client (3.1.1 or 5.0), on a worker other than avoid where
    there are several: a connection that lands there is closed unread
    (what a kept session was sent on it comes again)."""

    def __init__(self, b, name, version=5, clean=True, expiry=None, cid=None, avoid=None):
        cid = cid or pmq.unique(name)
        props = pmq.session_props(expiry) if expiry is not None else None
        self.c, slot = pmq.client_elsewhere(
            b, lambda: pmq.Client(b.port, cid, version, clean=clean), avoid, props)
        Member.__init__(self, name, slot, cid)
        self.present = bool(self.c.finish_connect()[0])
        if not self.present:
            check(self.c.subscribe(self.flush_topic, 1) == [1],
                  "%s: SUBACK for its marker topic" % name)

    @property
    def local_port(self):
        return self.c.local_port

    def join(self, filt, qos):
        granted_check(self, filt, self.c.subscribe(filt, qos), qos)

    def poll(self):
        while not self.c.messages.empty():
            m = self.c.messages.get_nowait()
            self._add(m.topic, m.payload, m.qos)

    def close(self):
        self.c.close()


class RawMember(Member):
    """A RawClient: acknowledges what comes (QoS 1 and 2) unless told not
    to, and keeps the subscription identifiers of each message."""

    def __init__(self, b, name, version=5, ack=True, props=None, avoid=None):
        self.r, slot = pmq.raw_elsewhere(b, version, name, avoid)
        Member.__init__(self, name, slot, pmq.unique(name))
        self.r.connect(self.client_id, props=props)
        self.ack = ack
        self.pids = []      # of the messages in got, in order
        check(self.r.subscribe(self.flush_topic, 1) == [1],
              "%s: SUBACK for its marker topic" % name)

    def join(self, filt, qos, props=None):
        granted_check(self, filt, self.r.subscribe([(filt, qos)], props=props), qos)

    def poll(self):
        for p in self.r.available():
            if p.type == pmq.PUBREL:
                self.r.send(pmq.pubcomp_packet(p.pid))
                continue
            check(p.type == pmq.PUBLISH, "%s: expected PUBLISH or PUBREL, got %r" %
                  (self.name, p))
            self._add(p.topic, p.payload, p.qos, p.props.get("subscription-id", ()))
            if p.topic != self.flush_topic:
                self.pids.append(p.pid)
            if self.ack and p.qos == 1:
                self.r.send(pmq.puback_packet(p.pid))
            elif self.ack and p.qos == 2:
                self.r.send(pmq.pubrec_packet(p.pid))

    def close(self):
        self.r.close()


class CliMember(Member):
    """A mosquitto_sub process, subscribed to the group and its marker
    topic (both at qos) from the start."""

    def __init__(self, b, name, version, filt, qos):
        cid = pmq.unique(name)
        Member.__init__(self, name, 0, cid)
        # line-buffered: mosquitto_sub uses stdio and would hold its lines
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(b.port),
             "-V", {4: "mqttv311", 5: "mqttv5"}[version], "-i", cid, "-q", str(qos),
             "-t", filt, "-t", self.flush_topic, "-F", "MSG %q %t %p", "-d"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.out = pmq.Lines(self.proc)
        line = self.out.wait(lambda s: s.startswith("Subscribed (mid:"), 10,
                             "%s: the SUBACK" % name)
        codes = [int(x) for x in line.split(":", 2)[2].split(",")]
        self.slot = b.connection_slots(cid, 1)[0]
        granted_check(self, filt, codes, qos)

    def poll(self):
        while not self.out.q.empty():
            line = self.out.q.get_nowait()
            self.out.all.append(line)
            if line.startswith("MSG "):
                _, qos, topic, payload = line.split(" ", 3)
                self._add(topic, payload.encode(), int(qos))

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)


def cover(b, members, make, tries=40):
    """Add members made by make(i) until every worker slot holds one; one
    that lands where a member already is, is closed.  Returns members."""
    for i in range(tries):
        if len({m.slot for m in members}) == b.slots:
            return members
        m = make(i)
        if m.slot in {x.slot for x in members}:
            m.close()
        else:
            members.append(m)
    raise pmq.TestFailure("%d more members did not cover the %d workers: %s" %
                          (tries, b.slots, members))


def one_per_worker(b, done, name, filt, qos):
    """A clean paho 5.0 member on every worker, joined to filt at qos,
    closed when done closes."""
    def make(i):
        m = PahoMember(b, "%s-%d" % (name, i), 5)
        done.callback(m.close)
        return m
    members = [m for ms in pmq.spread(b, make, 1).values() for m in ms]
    for m in members:
        m.join(filt, qos)
    return members


def publisher(b, done, name="pub"):
    c = pmq.Client(b.port, pmq.unique(name), 5)
    done.callback(c.close)
    c.connect()
    return c


def publish(pub, topic, tag, n, qos):
    """n messages tag-000... to topic, all acknowledged (QoS 0: sent);
    returns their payloads."""
    payloads = ["%s-%03d" % (tag, i) for i in range(n)]
    mids = [pub.publish(topic, p, qos, wait=False) for p in payloads]
    pub.wait(lambda: all(m in pub.acked for m in mids), 10,
             "%d messages on %s acknowledged" % (n, topic))
    return {p.encode() for p in payloads}


def poll_all(members):
    for m in members:
        m.poll()


def counts(members, pick=lambda m, d: True):
    """How many times the members got each payload."""
    return collections.Counter(d.payload for m in members for d in m.got if pick(m, d))


def gather(members, want, what, pick=lambda m, d: True, timeout=MSG_TIMEOUT):
    """Wait until the members together got every payload of want."""
    try:
        pmq.wait_for(lambda: poll_all(members) or set(want) <= set(counts(members, pick)),
                     timeout, what)
    except pmq.TestFailure:
        missing = sorted(set(want) - set(counts(members, pick)))
        raise pmq.TestFailure("%s: %d of %d messages reached no member within %.1fs "
                              "(e.g. %s); the members got %s" %
                              (what, len(missing), len(want), pmq.patience(timeout),
                               [p.decode() for p in missing[:5]], shares(members)))


def shares(members):
    return ", ".join("%s: %d" % (m, len(m.got)) for m in members)


def flush(pub, members, what):
    """A marker to each member's own topic from pub: whatever pub sent
    before it has come by the time the marker does."""
    before = {m: m.flushed for m in members}
    for m in members:
        pub.publish(m.flush_topic, b"marker", 1)
    pmq.wait_for(lambda: poll_all(members) or all(m.flushed > before[m] for m in members),
                 MSG_TIMEOUT, "%s: the members' markers" % what)


def exactly_once(members, want, what, pick=lambda m, d: True, also_at=()):
    """Every payload of want reached exactly one member; also_at: other
    members (one that died) whose copies are allowed."""
    seen = counts(members, pick)
    dups = sorted(p.decode() for p, n in seen.items() if n > 1)
    stray = sorted(p.decode() for p in seen if p not in want)
    missing = sorted(p.decode() for p in set(want) - set(seen))
    check(not dups and not stray and not missing,
          "%s: each of %d messages must reach exactly one member: %d twice or more "
          "(e.g. %s), %d not sent (e.g. %s), %d never (e.g. %s); the members got %s" %
          (what, len(want), len(dups), dups[:5], len(stray), stray[:5], len(missing),
           missing[:5], shares(members)))
    for m in also_at:
        stray = [d.payload.decode() for d in m.got if d.payload not in want]
        check(not stray, "%s: %s got messages not sent: %s" % (what, m, stray[:5]))


def qos_check(members, pub_qos, what):
    """Each delivery at min(its QoS as published, the member's granted)."""
    for m in members:
        for d in m.got:
            want = min(pub_qos[d.topic], m.granted)
            check(d.qos == want, "%s: %s got %s at QoS %d; published at QoS %d, granted %d: "
                  "expected QoS %d [MQTT-4.8.2-3]" % (what, m, d.payload.decode(), d.qos,
                                                      pub_qos[d.topic], m.granted, want))


def balance_check(members, topic, n, what):
    """One publisher: the members are taken in turn, each gets n/members
    within one."""
    per = {m: sum(1 for d in m.got if d.topic == topic) for m in members}
    print("  %s: %s" % (what, ", ".join("%s: %d" % kv for kv in per.items())))
    fair = n / len(members)
    check(all(abs(k - fair) <= 1 for k in per.values()),
          "%s: %d messages among %d members should give each %.1f within one, got %s" %
          (what, n, len(members), fair, ", ".join("%s: %d" % kv for kv in per.items())))


def end_session(b, cid):
    """End a stored session: a clean start with expiry 0, then DISCONNECT."""
    r = pmq.RawClient(b.port, 5, "end " + cid)
    try:
        r.connect(cid, clean=True, props={"session-expiry": 0})
        r.send(pmq.disconnect_packet(5))
    finally:
        r.close()


def acks_sent(member):
    """A QoS 1 round trip: paho acknowledges a message after handing it
    over, so a close right after could leave it unacknowledged."""
    member.c.publish(pmq.unique("barrier"), b"", 1)


# ---------------------------------------------------------------------------
# The scenarios.  Each takes the broker (a shared one, or None for those that
# start their own) and closes what it opened.

def balance(b):
    base = pmq.unique("bal")
    filt = "$share/%s/%s/+" % (pmq.unique("g"), base)
    with contextlib.ExitStack() as done:
        members = []

        def joined(m, qos):
            done.callback(m.close)
            m.join(filt, qos)
            members.append(m)
        joined(PahoMember(b, "paho-5.0", 5), 2)
        joined(PahoMember(b, "paho-3.1.1", 4), 1)
        joined(RawMember(b, "raw-5.0-qos0", 5), 0)
        cli_version = 4 if b.slots < 3 else 5
        cli = CliMember(b, "mosquitto_sub-%s" % NAMES[cli_version], cli_version, filt, 2)
        done.callback(cli.close)
        members.append(cli)

        def extra(i):
            m = PahoMember(b, "paho-5.0-extra%d" % i, 5)
            done.callback(m.close)
            return m
        for m in cover(b, list(members), extra)[len(members):]:
            m.join(filt, 2)
            members.append(m)
        pub = publisher(b, done)
        want, pub_qos = set(), {}
        for qos in (0, 1, 2):
            topic = "%s/q%d" % (base, qos)
            pub_qos[topic] = qos
            sent = publish(pub, topic, "q%d" % qos, N, qos)
            want |= sent
            what = "%d members, QoS %d" % (len(members), qos)
            gather(members, sent, what)
            flush(pub, members, what)
            balance_check(members, topic, N, what)
        exactly_once(members, want, "%d members, QoS 0, 1, 2" % len(members))
        qos_check(members, pub_qos, "%d members" % len(members))


def two_groups(b):
    base = pmq.unique("two")
    groups = [pmq.unique("ga"), pmq.unique("gb")]
    with contextlib.ExitStack() as done:
        members = {}
        per_slot = 1 if b.slots > 1 else 2
        for g in groups:
            def make(i, g=g):
                m = PahoMember(b, "%s-%d" % (g, i), 5)
                done.callback(m.close)
                return m
            members[g] = [m for ms in pmq.spread(b, make, per_slot).values() for m in ms]
            for m in members[g]:
                m.join("$share/%s/%s/#" % (g, base), 1)
        plain = PahoMember(b, "plain", 5)
        done.callback(plain.close)
        plain.join(base + "/#", 1)
        pub = publisher(b, done)
        want = publish(pub, base + "/t", "m", FEW, 1)
        everyone = [m for ms in members.values() for m in ms] + [plain]
        for g in groups:
            gather(members[g], want, "group %s" % g)
        gather([plain], want, "the plain subscriber")
        flush(pub, everyone, "two groups and a plain subscriber")
        for g in groups:
            exactly_once(members[g], want, "group %s" % g)
        exactly_once([plain], want, "the plain subscriber")


def plain_and_shared(b):
    base = pmq.unique("both")
    filt = "$share/%s/%s/#" % (pmq.unique("g"), base)
    with contextlib.ExitStack() as done:
        x = RawMember(b, "plain-and-shared", 5)
        done.callback(x.close)
        y = RawMember(b, "shared-only", 5, avoid=x.slot)
        done.callback(y.close)
        check(x.r.subscribe([(base + "/#", 1)], props={"subscription-id": 1}) == [1],
              "%s: SUBACK for the plain subscription" % x.name)
        x.join(filt, 1, props={"subscription-id": 2})
        y.join(filt, 1, props={"subscription-id": 3})
        pub = publisher(b, done)
        want = publish(pub, base + "/t", "m", FEW, 1)

        def plain(m, d):
            return d.ids == (1,)

        def shared(m, d):
            return not plain(m, d)
        gather([x], want, "the plain subscription", plain)
        gather([x, y], want, "the shared subscription", shared)
        flush(pub, [x, y], "plain and shared")
        ids = {m: sorted(set(d.ids for d in m.got)) for m in (x, y)}
        check(ids[x] in ([(1,)], [(1,), (2,)]) and ids[y] in ([], [(3,)]),
              "the copies' subscription identifiers: %s got %s, expected (1,) for the "
              "plain copy and (2,) for the shared one; %s got %s, expected (3,) "
              "[MQTT-3.3.4-3, MQTT-3.3.4-5]" % (x, ids[x], y, ids[y], ))
        exactly_once([x], want, "the plain subscription", plain)
        exactly_once([x, y], want, "the shared subscription", shared)
        check(any(shared(x, d) for d in x.got),
              "%s got no message through its shared subscription, %s all %d" %
              (x, y, len(y.got)))


def clean_member_leaves(b):
    base = pmq.unique("leave")
    filt = "$share/%s/%s/#" % (pmq.unique("g"), base)
    window = 5
    with contextlib.ExitStack() as done:
        mute = RawMember(b, "mute", 5, ack=False,
                         props={"receive-maximum": window, "session-expiry": 0})
        done.callback(mute.close)
        mute.join(filt, 1)
        others = one_per_worker(b, done, "member", filt, 1)
        pub = publisher(b, done)
        want = publish(pub, base + "/t", "m", FEW, 1)
        pmq.wait_for(lambda: poll_all([mute]) or len(mute.got) >= window, MSG_TIMEOUT,
                     "%s to hold %d unacknowledged messages" % (mute, window))
        check(len(mute.got) == window,
              "%s (Receive Maximum %d) got %d unacknowledged messages [MQTT-3.3.4-9]" %
              (mute, window, len(mute.got)))
        mute.close()    # no DISCONNECT: the connection just ends
        what = "after %s, holding %d sent and more queued, was cut off" % (mute, window)
        gather(others, want, what)
        flush(pub, others, what)
        exactly_once(others, want, what, also_at=[mute])


def stored_member_away(b):
    base = pmq.unique("away")
    filt = "$share/%s/%s/#" % (pmq.unique("g"), base)
    with contextlib.ExitStack() as done:
        away = PahoMember(b, "stored", 5, clean=False, expiry=300)
        done.callback(lambda: end_session(b, away.client_id))
        away.join(filt, 2)
        slot, cid = away.slot, away.client_id
        online = one_per_worker(b, done, "online", filt, 2)
        away.close()
        b.wait_closed(away.c.local_port)
        pub = publisher(b, done)
        want = publish(pub, base + "/q1", "q1", FEW, 1) | publish(pub, base + "/q2", "q2",
                                                                   FEW, 2)
        back = PahoMember(b, "stored", 5, clean=False, expiry=300, cid=cid, avoid=slot)
        done.callback(back.close)
        check(back.present, "%s: session present 0 on its return" % back)
        members = online + [back]
        what = "a stored member away, then back"
        gather(members, want, what)
        flush(pub, members, what)
        exactly_once(members, want, what)
        check(back.got, "%s got nothing on its return: its share did not wait for it "
              "(the others got %s)" % (back, shares(online)))
        acks_sent(back)


def stored_member_ends(b):
    """By a clean start over it (its share goes to another stored member,
    away, or to the clean ones), then by its expiry (to the clean ones)."""
    for how in ("clean start", "expiry"):
        base = pmq.unique("ends")
        filt = "$share/%s/%s/#" % (pmq.unique("g"), base)
        with contextlib.ExitStack() as done:
            expiry = 300 if how == "clean start" else 1
            ending = PahoMember(b, "ending", 5, clean=False, expiry=expiry)
            done.callback(lambda cid=ending.client_id: end_session(b, cid))
            ending.join(filt, 2)
            stored = []
            if how == "clean start":
                keeper = PahoMember(b, "keeper", 5, clean=False, expiry=300)
                done.callback(lambda cid=keeper.client_id: end_session(b, cid))
                keeper.join(filt, 2)
                stored = [keeper]
            online = one_per_worker(b, done, "online", filt, 2)
            for m in [ending] + stored:
                m.close()
                b.wait_closed(m.c.local_port)
            pub = publisher(b, done)
            want = publish(pub, base + "/q1", "q1", FEW, 1) | publish(
                pub, base + "/q2", "q2", FEW, 2)
            what = "a stored member whose session ended by %s" % how
            if how == "clean start":
                again = pmq.RawClient(b.port, 5, "ending, clean start")
                done.callback(again.close)
                ack = again.connect(ending.client_id, clean=True, props={"session-expiry": 0})
                check(not ack.session_present, "%s: session present 1" % what)
                # the keeper comes back for its share and what it was handed
                keeper = PahoMember(b, "keeper", 5, clean=False, expiry=300,
                                    cid=stored[0].client_id)
                done.callback(keeper.close)
                check(keeper.present, "%s: the keeper's session is gone" % what)
                stored = [keeper]
            members = online + stored
            gather(members, want, what,
                   timeout=MSG_TIMEOUT + (expiry if how == "expiry" else 0))
            flush(pub, members, what)
            exactly_once(members, want, what)


def refused_and_begun(b):
    """A clean member that refuses a QoS 1 message (PUBACK 0x80) and holds
    QoS 2 messages without PUBREC, then is cut off: the refused message is
    discarded (MQTT-4.8.2-6), the QoS 2 ones sent to it go to no other
    member (MQTT-4.8.2-5); the QoS 1 ones it did not acknowledge do."""
    base = pmq.unique("begun")
    filt = "$share/%s/%s/#" % (pmq.unique("g"), base)
    with contextlib.ExitStack() as done:
        mute = RawMember(b, "mute", 5, ack=False, props={"session-expiry": 0})
        done.callback(mute.close)
        mute.join(filt, 2)
        other = PahoMember(b, "other", 5, avoid=mute.slot)
        done.callback(other.close)
        other.join(filt, 2)
        pub = publisher(b, done)
        want1 = publish(pub, base + "/q1", "q1", 6, 1)
        pmq.wait_for(lambda: poll_all([mute]) or len(mute.got) >= 3, MSG_TIMEOUT,
                     "%s to get its 3 QoS 1 messages" % mute)
        refused = mute.got[0]
        mute.r.send(pmq.packet(pmq.PUBACK, 0, struct.pack("!HB", mute.pids[0], 0x80) +
                               b"\x00"))
        want2 = publish(pub, base + "/q2", "q2", 4, 2)
        pmq.wait_for(lambda: poll_all([mute]) or len(mute.got) >= 5, MSG_TIMEOUT,
                     "%s to get its 2 QoS 2 messages" % mute)
        begun = {d.payload for d in mute.got if d.qos == 2}
        check(len(begun) == 2, "%s got QoS 2 messages %s, expected 2" % (mute, begun))
        mute.close()
        b.wait_closed(mute.r.local_port)
        moved = {d.payload for d in mute.got if d.qos == 1} - {refused.payload}
        what = "after %s refused one QoS 1 message and held 2 QoS 2 ones" % mute
        expect = (want1 | want2) - {refused.payload} - begun
        gather([other], expect, what)
        flush(pub, [other], what)
        got = counts([other])
        check(refused.payload not in got, "%s: the refused message %s went to %s "
              "[MQTT-4.8.2-6]" % (what, refused.payload.decode(), other))
        check(not begun & set(got), "%s: QoS 2 messages whose delivery had begun went "
              "to %s: %s [MQTT-4.8.2-5]" % (what, other, sorted(begun & set(got))))
        check(moved <= set(got), "%s: unacknowledged QoS 1 messages not moved" % what)
        exactly_once([other], expect, what)


def stored_qos2_completed(b):
    """A stored member holding a QoS 2 message without PUBREC disconnects
    and comes back: the message is sent to it again, DUP set
    (MQTT-4.8.2-4), and to nobody else."""
    base = pmq.unique("q2back")
    filt = "$share/%s/%s/#" % (pmq.unique("g"), base)
    with contextlib.ExitStack() as done:
        cid = pmq.unique("holder")
        r = pmq.RawClient(b.port, 5, "stored holder")
        done.callback(r.close)
        r.connect(cid, clean=True, props={"session-expiry": 300})
        done.callback(lambda: end_session(b, cid))
        check(r.subscribe([(filt, 2)]) == [2], "stored holder: SUBACK")
        pub = publisher(b, done)
        publish(pub, base + "/t", "only", 1, 2)
        first = r.expect(pmq.PUBLISH)
        r.close()
        b.wait_closed(r.local_port)
        again = pmq.RawClient(b.port, 5, "stored holder, back")
        done.callback(again.close)
        ack = again.connect(cid, clean=False, props={"session-expiry": 300})
        check(ack.session_present, "stored holder: session present 0 on its return")
        p = again.expect(pmq.PUBLISH)
        check(p.payload == first.payload and p.qos == 2 and p.flags & 8,
              "stored holder: on its return %r, expected %r again with DUP "
              "[MQTT-4.8.2-4]" % (p, first))
        again.send(pmq.pubrec_packet(p.pid))
        again.expect(pmq.PUBREL)
        again.send(pmq.pubcomp_packet(p.pid))


def no_local(b):
    with contextlib.closing(pmq.RawClient(b.port, 5, "no local")) as r:
        r.connect(pmq.unique("nolocal"))
        r.send(pmq.subscribe_packet(1, [("$share/g/%s" % pmq.unique("nl"), 1 | 4)], 5))
        r.expect_closed(disconnect=PROTOCOL_ERROR)


def default_connack(b):
    with contextlib.closing(pmq.RawClient(b.port, 5, "default")) as r:
        ack = r.connect(pmq.unique("default"))
        check("shared-sub-available" not in ack.props,
              "with the default the CONNACK has Shared Subscription Available (0x2A) = %s; "
              "absent means available" % ack.props.get("shared-sub-available"))


def unavailable(_):
    b = pmq.PromptMQ(workers=2, name="shoff",
                     conf_values={"mqtt.shared-sub-available": False}).start()
    try:
        topic = pmq.unique("off")
        for version, refused in ((5, 0x9E), (4, 0x80)):
            with contextlib.closing(pmq.RawClient(b.port, version, NAMES[version])) as r:
                ack = r.connect(pmq.unique("off%d" % version))
                if version == 5:
                    check(ack.props.get("shared-sub-available") == 0,
                          "shared-sub-available = false: the CONNACK has %s, expected "
                          "Shared Subscription Available (0x2A) = 0" % ack.props)
                codes = r.subscribe([("$share/g/" + topic, 1), (topic, 1)])
                check(codes == [refused, 1], "%s, shared-sub-available = false: SUBACK %s "
                      "for a $share and a plain filter, expected [0x%02X, 0x01]" %
                      (NAMES[version], ["0x%02X" % c for c in codes], refused))
                r.ping()
        b.check_alive("after the refused $share filters")
    finally:
        b.stop()
        b.cleanup()


def no_retained(b):
    base = pmq.unique("ret")
    with contextlib.ExitStack() as done:
        pub = publisher(b, done)
        mid = pub.c.publish(base + "/kept", b"retained", 1, retain=True).mid
        pub.wait(lambda: mid in pub.acked, 5, "PUBACK for the retained message")
        for version in (5, 4):
            r = pmq.RawClient(b.port, version, "%s member" % NAMES[version])
            done.callback(r.close)
            r.connect(pmq.unique("ret%d" % version))
            filt = "$share/%s/%s/#" % (pmq.unique("g"), base)
            codes = r.subscribe([(filt, 1)])
            check(codes == [1], "%s: SUBACK for %s: expected 0x01, got %s" %
                  (r.name, filt, NOT_SUPPORTED.get(codes[0], "0x%02X" % codes[0])))
            pub.publish(base + "/marker", b"marker", 1)
            m = r.message()
            check((m.topic, m.payload) == (base + "/marker", b"marker"),
                  "%s: a new $share subscription got %r before the marker: no retained "
                  "message goes to a shared subscription (MQTT 5.0 3.3.1.3)" % (r.name, m))
        plain = pmq.RawClient(b.port, 5, "plain subscriber")
        done.callback(plain.close)
        plain.connect(pmq.unique("retplain"))
        plain.subscribe([(base + "/#", 1)])
        m = plain.message()
        check((m.topic, m.retain) == (base + "/kept", True),
              "a plain subscription should get the retained message, got %r" % m)


def restart(_):
    b = pmq.PromptMQ(workers=2, name="shrestart").start()
    again = None
    try:
        base = pmq.unique("restart")
        filt = "$share/%s/%s/#" % (pmq.unique("g"), base)
        with contextlib.ExitStack() as done:
            stored = [PahoMember(b, "stored-5.0", 5, clean=False, expiry=300),
                      PahoMember(b, "stored-3.1.1", 4, clean=False)]
            for m in stored:
                done.callback(m.close)
                m.join(filt, 2)
            clean = PahoMember(b, "clean", 5)
            done.callback(clean.close)
            clean.join(filt, 2)
            for m in stored:
                m.close()
                b.wait_closed(m.c.local_port)
            pub = publisher(b, done)
            want = publish(pub, base + "/q1", "q1", FEW, 1) | publish(
                pub, base + "/q2", "q2", FEW, 2)
            flush(pub, [clean], "the clean member before the restart")
            acks_sent(clean)
        again = pmq.restarted(b, "shrestart")
        with contextlib.ExitStack() as done:
            back = []
            for m in stored:
                n = PahoMember(again, m.name, m.c.version, clean=False,
                               expiry=300 if m.c.version == 5 else None, cid=m.client_id)
                done.callback(n.close)
                check(n.present, "%s: session present 0 after the restart" % n)
                back.append(n)
            pub = publisher(again, done)
            what = "two stored members back after a restart, a clean one before"
            gather(back, want - set(counts([clean])), what)
            flush(pub, back, what)
            exactly_once(back + [clean], want, what)
            for n in back:
                check(n.got, "%s got nothing after the restart (%s)" %
                      (n, shares(back + [clean])))
                acks_sent(n)
        for m in stored:
            end_session(again, m.client_id)
        pmq.stop_restarted(again)
    finally:
        pmq.cleanup_restarted(again, b)


# name, function, workers ((): its own broker), why promptmqd only (None: both)
SCENARIOS = [
    ("balance", balance, (2, 3), None),
    ("two_groups", two_groups, (2, 3), None),
    ("plain_and_shared", plain_and_shared, (2,), None),
    ("clean_member_leaves", clean_member_leaves, (2, 3),
     "Mosquitto keeps a member's messages until it returns"),
    ("refused_and_begun", refused_and_begun, (2,),
     "Mosquitto keeps a member's messages until it returns"),
    ("stored_member_away", stored_member_away, (2,), None),
    ("stored_qos2_completed", stored_qos2_completed, (2,), None),
    ("stored_member_ends", stored_member_ends, (2,),
     "Mosquitto drops the share of a member whose session ends"),
    ("no_local", no_local, (2,), "Mosquitto 2.0.11 grants No Local on $share"),
    ("default_connack", default_connack, (2,), None),
    ("unavailable", unavailable, (), "Mosquitto cannot turn shared subscriptions off"),
    ("no_retained", no_retained, (2,),
     "Mosquitto sends retained messages to a new $share subscription"),
    ("restart", restart, (), "the Mosquitto of the tests keeps nothing across a restart"),
]


def test():
    chosen = sys.argv[1:] or [s[0] for s in SCENARIOS]
    unknown = set(chosen) - {s[0] for s in SCENARIOS}
    check(not unknown, "unknown scenarios %s; they are %s" %
          (sorted(unknown), [s[0] for s in SCENARIOS]))
    brokers = {}
    failures = []
    try:
        for name, fn, workers, why in SCENARIOS:
            if name not in chosen:
                continue
            if why and not IS_PROMPTMQ and (not workers or name not in sys.argv[1:]):
                print("skip %s: %s" % (name, why))
                continue
            if not workers:
                runs = [None]       # it starts its own
            else:
                runs = workers if IS_PROMPTMQ else [1]
            for w in runs:
                if w is not None and w not in brokers:
                    brokers[w] = pmq.start_target(workers=w, name="shared%d" % w)
                label = name if w is None or not IS_PROMPTMQ else "%s (%d workers)" % (name, w)
                try:
                    fn(brokers.get(w))
                    print("ok %s" % label)
                except pmq.TestFailure as e:
                    print("FAILED %s: %s" % (label, e))
                    failures.append("%s: %s" % (label, e))
        for b in brokers.values():
            b.check_alive("after the shared subscription scenarios")
        check(not failures, "%d scenario(s) failed:\n  %s" % (len(failures),
                                                               "\n  ".join(failures)))
    finally:
        for b in brokers.values():
            b.stop()
            b.cleanup()


pmq.run_test(test)
