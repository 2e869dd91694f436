"""The MQTT basics with real clients, on one worker (routing between
workers is mqtt_cross_worker's business):

- MQTT 3.1, 3.1.1 and 5.0 clients (paho) connect, subscribe with exact
  filters, + and #, and get granted QoS capped at what the broker offers;
  QoS 0 and 1 messages go both ways with their topics and payloads intact
  (empty, binary, 100 KB), downgraded to the subscription's QoS, and only
  to matching filters;
- UNSUBSCRIBE stops delivery;
- a client that pings (raw socket, and paho on its own) stays connected
  past its keep alive; a silent one is dropped after 1.5 times its keep
  alive, not before the keep alive;
- the 5.0 CONNACK advertises what this phase offers (the target's
  maximum QoS: no Maximum QoS property for QoS 2, no retain where the
  target has none, no $share, no subscription identifiers, wildcards,
  a Topic Alias Maximum of 10);
- the empty client id rules: 5.0 gets an Assigned Client Identifier,
  3.1.1 with clean session gets in, 3.1.1 without clean session gets
  return code 2;
- a 3.1.1 clean-session=0 or 5.0 session-expiry connection is accepted,
  and its session is kept after the disconnect: session present 1 and
  the old subscription delivers (mqtt_sessions.py tests sessions in
  depth);
- mosquitto_pub and mosquitto_sub (-V 311 and -V 5) talk to the broker.

Against Mosquitto (PMQ_TARGET=mosquitto) the same checks run; where
Mosquitto legitimately differs (it supports $share and subscription
identifiers, enforces keep alive late) the target says so."""

import re
import subprocess
import threading
import time

import pmq
from pmq import check


def round_trip(b, version):
    """QoS 0/1 both ways, downgrade, wildcards, payloads; granted QoS."""
    u = pmq.unique("rt%d" % version)
    with pmq.clients(b.port, [u + "-sub", u + "-pub"], version) as (sub, pub):
        granted = sub.subscribe([(u + "/q1", 1), (u + "/q0", 0), (u + "/+/x", 1),
                                 (u + "/w/#", 1), (u + "/q2", 2)])
        want = [1, 0, 1, 1, min(2, b.max_qos)]
        check(granted == want, "v%d: granted QoS expected %s, got %s" % (version, want, granted))
        cases = [  # topic, payload, QoS sent, QoS delivered (None: not delivered)
            (u + "/q1", b"a", 1, 1),
            (u + "/q1", b"b", 0, 0),
            (u + "/q0", b"c", 1, 0),
            (u + "/q0", b"d", 0, 0),
            (u + "/q2", b"e", 1, 1),
            (u + "/y/x", b"plus", 1, 1),
            (u + "/y/z", b"no match", 1, None),
            (u + "/y/x/z", b"too deep for +", 0, None),
            (u + "/w", b"parent of #", 1, 1),
            (u + "/w/a/b", b"under #", 0, 0),
            (u + "/q1", b"", 1, 1),
            (u + "/q1", bytes(range(256)), 1, 1),
            (u + "/q0", bytes(range(256)), 0, 0),
            (u + "/q1", b"L" * 100000, 1, 1),
        ]
        for topic, payload, qos, got_qos in cases:
            pub.publish(topic, payload, qos)
            if got_qos is not None:
                sub.expect(topic, payload, got_qos)
        # nothing else came: the next message is this marker
        pub.publish(u + "/q1", b"end", 1)
        sub.expect_nothing_before(u + "/q1", b"end")

        # the other direction: the subscriber publishes, the publisher receives
        check(pub.subscribe(u + "/back", 1) == [1], "v%d: SUBACK for QoS 1" % version)
        for qos in (0, 1):
            sub.publish(u + "/back", b"back %d" % qos, qos)
            pub.expect(u + "/back", b"back %d" % qos, qos)


def unsubscribe(b, version):
    """After UNSUBACK, messages on the filter are no longer delivered."""
    u = pmq.unique("un%d" % version)
    with pmq.clients(b.port, [u + "-sub", u + "-pub"], version) as (sub, pub):
        sub.subscribe([u + "/a", u + "/+/b", u + "/marker"], 1)
        for t in (u + "/a", u + "/x/b"):
            pub.publish(t, b"before", 1)
            sub.expect(t, b"before")
        sub.unsubscribe(u + "/a")
        sub.unsubscribe(u + "/+/b")
        pub.publish(u + "/a", b"after", 1)
        pub.publish(u + "/x/b", b"after", 0)
        pub.publish(u + "/marker", b"marker", 1)
        sub.expect_nothing_before(u + "/marker", b"marker")


def keep_alive(b):
    """Silent clients are dropped after 1.5 x keep alive; pinging ones stay.
    (Keep alive 2s: a pinging client whose thread a loaded machine holds
    up for a second is still on time.)"""
    KA = 2
    u = pmq.unique("ka")
    silent4 = pmq.RawClient(b.port, 4, "silent 3.1.1 client")
    silent5 = pmq.RawClient(b.port, 5, "silent 5.0 client")
    pinger = pmq.RawClient(b.port, 4, "pinging client")
    quiet = pmq.Client(b.port, u + "-paho", 5, keepalive=KA)
    try:
        silent4.connect(u + "-s4", keepalive=KA)
        silent5.connect(u + "-s5", keepalive=KA)
        pinger.connect(u + "-p", keepalive=KA)
        quiet.connect()
        limit = 1.5 * KA + b.keepalive_grace
        results = {}

        def watch(name, client, **kw):
            def run():
                results[name] = client.expect_closed(limit + 2, **kw)
            t = threading.Thread(target=run, daemon=True)
            t.start()
            return t
        # a 5.0 client may be told why: DISCONNECT 0x8D (Keep Alive timeout)
        watchers = [watch("3.1.1", silent4),
                    watch("5.0", silent5, disconnect=0x8D, optional=True)]
        t0 = time.monotonic()
        while any(t.is_alive() for t in watchers) or time.monotonic() - t0 < 2 * KA:
            pinger.ping(timeout=KA)
            check(time.monotonic() - t0 < pmq.patience(limit + 3), "the silent clients "
                  "were not dropped within %.1fs" % pmq.patience(limit + 3))
            time.sleep(KA / 2)     # the pinging client's period
        for t in watchers:
            t.join(pmq.patience(1))
        # not before the keep alive; the upper bound allows a loaded machine
        for name in ("3.1.1", "5.0"):
            check(name in results, "the silent %s client: no result (see above)" % name)
            check(KA <= results[name] <= pmq.patience(limit),
                  "the silent %s client with keep alive %ds was dropped after %.2fs, "
                  "expected between %d and %.1fs" % (name, KA, results[name], KA,
                                                    pmq.patience(limit)))
        check(pinger.is_open(), "a client pinging every %.1fs with keep alive %ds "
              "was dropped" % (KA / 2, KA))
        check(quiet.connected() and not quiet.disconnects,
              "a paho client with keep alive %ds, idle for %.1fs, was disconnected: %s" %
              (KA, time.monotonic() - t0, quiet.disconnects))
        quiet.subscribe(u + "/self", 1)
        quiet.publish(u + "/self", b"still here", 1)
        quiet.expect(u + "/self", b"still here", 1)
    finally:
        for c in (silent4, silent5, pinger, quiet):
            c.close()


ABSENT = "absent"


def connack_properties(b):
    """What a 5.0 CONNACK advertises."""
    # Maximum QoS may only be 0 or 1; absent means 2 (MQTT 5.0 3.2.2.3.4)
    want = {"maximum-qos": (b.max_qos,) if b.max_qos < 2 else (ABSENT,),
            "retain-available": (0,),
            "wildcard-sub-available": (ABSENT, 1), "topic-alias-maximum": (10,),
            "shared-sub-available": (0,), "subscription-id-available": (0,)}
    # absent means available: Mosquitto offers these and says nothing
    if b.retain_available:
        want["retain-available"] = (ABSENT, 1)
    if b.shared_subs:
        want["shared-sub-available"] = (ABSENT, 1)
    if b.subscription_ids:
        want["subscription-id-available"] = (ABSENT, 1)
    c = pmq.RawClient(b.port, 5, "5.0 client")
    try:
        ack = c.connect(pmq.unique("props"))
        check(not ack.session_present, "CONNACK session present 1 on a clean start")
        wrong = {k: ack.props.get(k, ABSENT) for k, ok in want.items()
                 if ack.props.get(k, ABSENT) not in ok}
        check(not wrong, "CONNACK properties: expected %s, got %s (all: %s)" % (
            {k: want[k] for k in wrong}, wrong, ack.props))
    finally:
        c.close()
    c = pmq.RawClient(b.port, 4, "3.1.1 client")
    try:
        ack = c.connect(pmq.unique("props"))
        check(ack.body == b"\x00\x00", "3.1.1 CONNACK: expected 00 00, got %s" % ack.body.hex())
    finally:
        c.close()


def empty_client_id(b):
    """5.0: assigned, random (auto-UUID, as Mosquitto); 3.1.1 clean:
    accepted; 3.1.1 not clean: code 2."""
    assigned = []
    for _ in range(2):
        c = pmq.RawClient(b.port, 5, "5.0 client with an empty id")
        try:
            ack = c.connect("")
            cid = ack.props.get("assigned-client-id")
            check(cid, "no Assigned Client Identifier in the CONNACK: %s" % ack.props)
            c.ping()
            assigned.append(cid)
        finally:
            c.close()
    check(assigned[0] != assigned[1], "two clients got the same assigned id %r" % assigned[0])
    # Mosquitto's form, and not to be guessed from the one before: a
    # client that could would take that session over
    form = re.compile(r"^auto-[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
    for cid in assigned:
        check(form.match(cid), "assigned id %r is not auto-UUID" % cid)
    differ = sum(x != y for x, y in zip(assigned[0][5:].replace("-", ""),
                                        assigned[1][5:].replace("-", "")))
    check(differ >= 16, "consecutive assigned ids differ in only %d of 32 hex digits: %s" %
          (differ, assigned))

    c = pmq.RawClient(b.port, 4, "3.1.1 clean-session client with an empty id")
    try:
        c.connect("", clean=True)
        c.ping()
    finally:
        c.close()
    c = pmq.RawClient(b.port, 4, "3.1.1 clean-session=0 client with an empty id")
    try:
        c.connect("", clean=False, expect_reason=2)
        c.expect_closed()
    finally:
        c.close()


def session_kept(b):
    """clean-session=0 (3.1.1) and session expiry (5.0) are accepted with
    session present 0, and the session outlives the disconnect."""
    for version, kw in ((4, {"clean": False}),
                        (5, {"clean": False, "props": {"session-expiry": 300}})):
        u = pmq.unique("ns%d" % version)
        pub = pmq.RawClient(b.port, version, "publisher")
        pub.connect(u + "-pub")
        c = pmq.RawClient(b.port, version, "%d client without clean session" % version)
        try:
            ack = c.connect(u, **kw)
            check(not ack.session_present, "v%d: session present 1 for a new client" % version)
            c.subscribe(u + "/kept", 1)
            c.send(pmq.disconnect_packet(version))
            c.expect_closed()
            c.close()

            c = pmq.RawClient(b.port, version, "%d client back" % version)
            ack = c.connect(u, **kw)
            check(ack.session_present == b.keeps_sessions,
                  "v%d: reconnecting without clean session: session present expected %d, "
                  "got %d" % (version, b.keeps_sessions, ack.session_present))
            c.subscribe(u + "/marker", 1)
            pub.publish(u + "/kept", b"to the old session", 1)
            pub.publish(u + "/marker", b"marker", 1)
            if b.keeps_sessions:
                m = c.message()
                check((m.topic, m.payload) == (u + "/kept", b"to the old session"),
                      "v%d: the kept session's subscription: got %r" % (version, m))
            m = c.message()
            check((m.topic, m.payload) == (u + "/marker", b"marker"),
                  "v%d: expected only the marker after reconnecting (the old session's "
                  "subscription gone), got %r" % (version, m))
            if b.keeps_sessions:    # leave no session behind
                c.send(pmq.disconnect_packet(version))
                c.close()
                c = pmq.RawClient(b.port, version, "cleanup")
                c.connect(u, clean=True)
        finally:
            c.close()
            pub.close()


def command_line_tools(b):
    """mosquitto_sub receives what mosquitto_pub sends, 3.1.1 and 5.0."""
    for v in ("311", "5"):
        u = pmq.unique("cli" + v)
        topic = u + "/t"
        common = ["-h", "127.0.0.1", "-p", str(b.port), "-V", v]
        # line-buffered: mosquitto_sub uses stdio and would hold its lines
        sub = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub"] + common + [
            "-i", u + "-sub", "-t", topic, "-q", "1", "-C", "3", "-v", "-d", "-W", "20"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out = pmq.Lines(sub)
            out.wait(lambda line: "received SUBACK" in line, 10, "mosquitto_sub's SUBACK")
            for qos, msg in ((1, "one"), (0, "two"), (1, "three four")):
                r = subprocess.run(["mosquitto_pub"] + common + [
                    "-i", u + "-pub", "-t", topic, "-q", str(qos), "-m", msg],
                    capture_output=True, text=True, timeout=10)
                check(r.returncode == 0, "-V %s: mosquitto_pub -q %d failed (%d): %s" %
                      (v, qos, r.returncode, r.stdout + r.stderr))
            got = [out.wait(lambda line: line.startswith(topic + " "), 10,
                            "message %d at mosquitto_sub" % i) for i in range(3)]
            want = ["%s %s" % (topic, m) for m in ("one", "two", "three four")]
            check(got == want, "-V %s: mosquitto_sub printed %s, expected %s" % (v, got, want))
            sub.wait(10)
            check(sub.returncode == 0, "-V %s: mosquitto_sub exited with %s" % (v, sub.returncode))
        finally:
            if sub.poll() is None:
                sub.kill()
            sub.wait()


def test():
    b = pmq.start_target(workers=1, name="basic")
    try:
        for version in (3, 4, 5):
            round_trip(b, version)
        for version in (4, 5):
            unsubscribe(b, version)
        connack_properties(b)
        empty_client_id(b)
        session_kept(b)
        command_line_tools(b)
        keep_alive(b)
        b.check_alive("after the basic tests")
    finally:
        b.stop()
        b.cleanup()


pmq.run_test(test)
