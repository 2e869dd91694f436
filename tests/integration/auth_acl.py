"""auth.acl-file: Mosquitto's acl_file, with Mosquitto's meaning, across
workers.  The same password and ACL files are given to Mosquitto 2.0
and to promptmqd, and each client (two users, an anonymous one, an
all-powerful one) must receive the same topics with a subscription to
'#' and be refused the same publishes (MQTT 5: PUBACK 0x87; 3.1.1:
acknowledged and dropped).  Beyond Mosquitto, which grants every
subscription, promptmqd refuses one that could never deliver anything
(SUBACK 0x87; 3.1.1: 0x80).  Retained messages and a stored session's
queue are filtered like live messages; SIGHUP applies a changed file,
and a file with a bad line is refused naming the line (at start, with
-t, and at reload, where the running one stays)."""

import contextlib
import os
import shutil
import signal
import struct
import subprocess
import tempfile

import pmq
from pmq import check

TOOL = os.path.join(pmq.BUILDDIR, "promptmq-passwd")

ACL = """# measured against Mosquitto 2.0.11
topic read public/#
topic readwrite anon/#

user alice
topic readwrite alice/#
topic read shared/#
topic deny shared/secret
topic write in/alice
pattern readwrite clients/%c/#

user root
topic readwrite #

pattern read users/%u/#
"""

USERS = {"alice": "a", "bob": "b", "root": "r"}
TOPICS = ["alice/x", "shared/x", "shared/secret", "public/x", "anon/x",
          "clients/r-alice/x", "clients/r-bob/x", "users/alice/x", "users/bob/x",
          "in/alice", "other/x"]
WRITES = ["alice/x", "public/x", "anon/x", "in/alice", "users/alice/x", "other/x"]


def client(b, who, cid, version=5, avoid=None, clean=True, props=None):
    r, slot = pmq.raw_elsewhere(b, version, cid, avoid)
    user = None if who == "anon" else who
    r.connect(cid, clean=clean, props=props, username=user,
              password=USERS.get(who))
    r.slot = slot
    return r


def drain(r, markers):
    """The topics of what came (acknowledged) until every marker topic
    did: messages of one publisher keep their order, so a publisher's
    marker comes after everything of it that passed."""
    got, left = [], set(markers)
    while left:
        p = r.expect(pmq.PUBLISH, what="messages, then %s" % sorted(left))
        if p.qos == 1:
            r.send(pmq.puback_packet(p.pid))
        if p.topic in left:
            left.discard(p.topic)
        else:
            got.append(p.topic)
    return got


def will_connect(b, cid, topic, avoid):
    """alice, with a QoS 1 will on topic, on a worker other than avoid's."""
    r, slot = pmq.raw_elsewhere(b, 5, cid, avoid)
    vh = pmq.mqtt_str("MQTT") + bytes([5, 0x02 | 0x04 | 0x08 | 0x80 | 0x40]) + \
        struct.pack("!H", 60) + b"\x00"
    pl = pmq.mqtt_str(cid) + b"\x00" + pmq.mqtt_str(topic) + pmq.mqtt_str("gone") + \
        pmq.mqtt_str("alice") + pmq.mqtt_str(USERS["alice"])
    r.send(pmq.packet(pmq.CONNECT, 0, vh + pl))
    check(r.expect(pmq.CONNACK).reason == 0, "%s refused" % cid)
    return r, slot


def wills(b):
    """A will on a topic its client may not write is not published, and
    the client still gets in (as Mosquitto)."""
    u = pmq.unique("wills")
    root = client(b, "root", u + "-root")
    check(root.subscribe([("other/#", 1), ("alice/#", 1)]) == [1, 1], "SUBACK")
    # on one worker, ended in order: a will that went out would come first
    denied, slot = will_connect(b, u + "-denied", "other/w", root.slot)
    allowed, _ = will_connect(b, u + "-allowed", "alice/w", root.slot)
    for r in (denied, allowed):
        r.sock.close()
        b.wait_closed(r.local_port)
    got = root.message(what="the allowed will")
    check(got.topic == "alice/w", "will received: %r (the denied one is other/w)" % got.topic)
    root.close()


def behaviour(b):
    """What each client reads and which of its publishes are refused."""
    out = {}
    with contextlib.ExitStack() as done:
        readers = {}
        for who in ("alice", "bob", "anon", "root"):
            r = client(b, who, "r-" + who)
            done.callback(r.close)
            check(r.subscribe([("#", 1)]) == [1], "%s: SUBACK for #" % who)
            readers[who] = r
        root = client(b, "root", pmq.unique("root-pub"), avoid=readers["alice"].slot)
        done.callback(root.close)
        # each reader may read its own clients/ID/ (pattern clients/%c/#)
        ends = {who: "clients/r-%s/end" % who for who in readers}
        for t in TOPICS + sorted(ends.values()):
            root.send(pmq.publish_packet(t, b"r", 1, 1, version=5))
            check(root.expect(pmq.PUBACK).reason == 0, "root's publish to %s" % t)
        for who, r in readers.items():
            out[("reads", who)] = sorted(drain(r, [ends[who]] if who != "root"
                                               else ends.values()))
        writers_ends = []
        for who in ("alice", "anon"):
            for v in (4, 5):
                cid = "w-%s-%d" % (who, v)
                c = client(b, who, cid, v, avoid=readers["root"].slot)
                codes = {}
                for t in WRITES:
                    c.send(pmq.publish_packet(t, who, 1, 5, version=v))
                    codes[t] = c.expect(pmq.PUBACK).reason
                c.send(pmq.publish_packet("clients/%s/end" % cid, who, 1, 6, version=v))
                check(c.expect(pmq.PUBACK).reason == 0, "%s's marker" % cid)
                writers_ends.append("clients/%s/end" % cid)
                c.close()
                out[("writes", who, v)] = codes
        out[("root saw",)] = sorted(drain(readers["root"], writers_ends))
    return out


def test():
    tmp = tempfile.mkdtemp(prefix="acl.", dir="/tmp")
    os.chmod(tmp, 0o755)
    b = None
    try:
        pw, acl = os.path.join(tmp, "passwd"), os.path.join(tmp, "acl")
        for i, (u, p) in enumerate(USERS.items()):
            subprocess.run([TOOL, "-b"] + (["-c"] if i == 0 else []) + [pw, u, p],
                           check=True)
        with open(acl, "w") as f:
            f.write(ACL)
        for path in (pw, acl):
            os.chmod(path, 0o644)   # Mosquitto reads them as its own user

        # a bad line: refused at start, naming it
        bad = os.path.join(tmp, "bad.acl")
        with open(bad, "w") as f:
            f.write("topic read a/#\ntopik read b/#\n")
        r = subprocess.run([pmq.PROMPTMQD, "-t", "-c", pmq.DEV_CONF, "--auth-acl-file", bad],
                           capture_output=True, text=True, timeout=pmq.patience(10))
        check(r.returncode != 0 and bad + ":2:" in r.stderr,
              "-t with a bad ACL file: %d\n%s" % (r.returncode, r.stderr))

        want = None
        if pmq.MOSQUITTO and os.access(pmq.MOSQUITTO, os.X_OK):
            m = pmq.GuardedMosquitto(pw, name="acl-mosq", acl_file=acl, allow_anonymous=True)
            try:
                m.start()
                want = behaviour(m)
                wills(m)
            finally:
                m.stop()
                m.cleanup()

        b = pmq.PromptMQ(workers=2, name="acl", args=[
            "--mqtt-allow-anonymous=true", "--auth-password-file", pw,
            "--auth-acl-file", acl]).start()
        got = behaviour(b)
        wills(b)
        if want is not None:
            for k in want:
                check(got[k] == want[k], "%s: promptmqd %r, Mosquitto %r" %
                      (" ".join(map(str, k)), got[k], want[k]))
        check(got[("reads", "alice")] == ["alice/x", "clients/r-alice/x", "shared/x",
                                          "users/alice/x"],
              "alice reads %r" % got[("reads", "alice")])
        check(got[("writes", "alice", 5)]["public/x"] == 0x87 and
              got[("writes", "alice", 4)]["public/x"] == 0,
              "alice's refused write: %r" % got[("writes", "alice", 5)])

        # subscriptions that can deliver nothing are refused
        for v, refused in ((5, 0x87), (4, 0x80)):
            a = client(b, "alice", pmq.unique("sub"), v)
            codes = a.subscribe([("other/#", 1), ("shared/#", 1), ("shared/secret", 1),
                                 ("+/x", 0)])
            check(codes == [refused, 1, refused, 0], "MQTT %d SUBACK %r" % (v, codes))
            a.close()

        # retained messages, and a stored session's queue, filtered too
        root = client(b, "root", pmq.unique("root"))
        away = client(b, "alice", "alice-away", props={"session-expiry": 300},
                      avoid=root.slot)
        check(away.subscribe([("shared/#", 1), ("clients/alice-away/#", 1)]) == [1, 1],
              "stored SUBACK")
        away.send(pmq.disconnect_packet(5))
        away.expect_closed()
        for t in ("shared/secret", "shared/x"):
            root.send(pmq.publish_packet(t, b"kept " + t.encode(), 1, 2, retain=True,
                                         version=5))
            # nobody subscribed yet: 0x10 is success too
            check(root.expect(pmq.PUBACK).reason in (0, 0x10), "retained publish")
        back = client(b, "alice", "alice-away", clean=False,
                      props={"session-expiry": 300}, avoid=root.slot)
        root.send(pmq.publish_packet("clients/alice-away/end", b"end", 1, 3, version=5))
        check(root.expect(pmq.PUBACK).reason == 0, "marker")
        queued = drain(back, ["clients/alice-away/end"])
        check(queued == ["shared/x"], "the stored session got %r" % queued)
        back.close()
        late = client(b, "alice", "alice-late", avoid=root.slot)
        check(late.subscribe([("shared/#", 1), ("clients/alice-late/#", 1)]) == [1, 1],
              "late SUBACK")
        root.send(pmq.publish_packet("clients/alice-late/end", b"end", 1, 4, version=5))
        check(root.expect(pmq.PUBACK).reason == 0, "marker")
        got_retained = drain(late, ["clients/alice-late/end"])
        check(got_retained == ["shared/x"], "retained for alice: %r" % got_retained)
        late.close()
        root.close()

        # reload: a rule added applies; a bad file leaves the running one
        with open(acl, "a") as f:
            f.write("user alice\ntopic read other/#\n")
        mark = len(b.log())
        os.kill(b.proc.pid, signal.SIGHUP)
        b.wait_log(r"configuration reloaded", start=mark)
        a = client(b, "alice", pmq.unique("again"))
        check(a.subscribe([("other/#", 1)]) == [1], "a rule added by reload not applied")
        a.close()
        shutil.copy(bad, acl)
        mark = len(b.log())
        os.kill(b.proc.pid, signal.SIGHUP)
        b.wait_log(r"reload: file not changed.*auth.acl-file.*:2: not a user", start=mark)
        a = client(b, "alice", pmq.unique("still"))
        check(a.subscribe([("other/#", 1)]) == [1], "the running ACL was not kept")
        a.close()
        b.check_alive("after the ACL checks")
    finally:
        if b is not None:
            b.stop()
            b.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


pmq.run_test(test)
