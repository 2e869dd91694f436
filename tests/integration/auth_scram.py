"""MQTT 5 enhanced authentication with SCRAM-SHA-256 (RFC 7677) against
auth.password-file's verifiers (written beside it by promptmq-passwd),
with a client written here from the RFC: logins on both workers whose
server signature checks out, wrong and unknown users refused alike (an
unknown user gets a made-up salt, the same on every worker), users made by
mosquitto_passwd without a verifier, re-authentication while messages
flow, protocol errors in the exchange, a client that stops half way, a
reload that changes a password, and failed proofs that slow their
address down like failed passwords."""

import base64
import hashlib
import hmac
import os
import shutil
import subprocess
import tempfile
import time

import pmq
from pmq import check

TOOL = os.path.join(pmq.BUILDDIR, "promptmq-passwd")
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
METHOD = "SCRAM-SHA-256"


def b64(b):
    return base64.b64encode(b).decode()


class Scram:
    """The client's side of one exchange (RFC 5802 section 7)."""

    def __init__(self, user, password, gs2="n,,"):
        self.password = password.encode()
        self.gs2 = gs2
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.bare = "n=%s,r=%s" % (name, b64(os.urandom(18)))

    def first(self):
        return (self.gs2 + self.bare).encode()

    def final(self, server_first):
        server_first = server_first.decode()
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        check(attrs["r"].startswith(self.bare.split(",r=")[1]) and
              len(attrs["r"]) > len(self.bare.split(",r=")[1]) + 17,
              "server nonce does not extend ours by 18 bytes: %r" % server_first)
        self.salt, self.iterations = attrs["s"], int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password,
                                     base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored = hashlib.sha256(client_key).digest()
        without = "c=%s,r=%s" % (b64(self.gs2.encode()), attrs["r"])
        auth = ",".join((self.bare, server_first, without)).encode()
        sig = hmac.new(stored, auth, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.expected = ("v=" + b64(hmac.new(server_key, auth, "sha256").digest())).encode()
        return ("%s,p=%s" % (without, b64(proof))).encode()

    def verify(self, server_final):
        check(server_final == self.expected, "server signature %r, expected %r" %
              (server_final, self.expected))


def props(data):
    return {"auth-method": METHOD, "auth-data": data}


def start(b, user, password, avoid=None, cid=None):
    """CONNECT with SCRAM's first message: (client, Scram, server-first)."""
    r, slot = pmq.raw_elsewhere(b, 5, "scram %s" % user, avoid)
    r.slot = slot
    s = Scram(user, password)
    r.client_id = cid or pmq.unique("scram")
    r.send(pmq.connect_packet(r.client_id, 5, props=props(s.first())))
    p = r.expect(pmq.AUTH, what="AUTH with the server-first-message")
    check(p.reason == 0x18 and p.props.get("auth-method") == METHOD,
          "AUTH 0x18 %s expected, got %r" % (METHOD, p))
    return r, s, p.props["auth-data"]


def login(b, user, password, avoid=None):
    """A whole login: the CONNACK, the client."""
    r, s, first = start(b, user, password, avoid)
    r.send(pmq.auth_packet(0x18, props(s.final(first))))
    ack = r.expect(pmq.CONNACK)
    if ack.reason == 0:
        check(ack.props.get("auth-method") == METHOD, "CONNACK without the method: %r" % ack)
        s.verify(ack.props.get("auth-data"))
    return ack, r, s


def expect_in(b, user, password, avoid=None):
    ack, r, _ = login(b, user, password, avoid)
    check(ack.reason == 0, "%s refused: %r" % (user, ack))
    return r


def expect_refused(b, user, password, what, avoid=None):
    ack, r, s = login(b, user, password, avoid)
    check(ack.reason == 0x87, "%s: CONNACK 0x87 expected, got %r" % (what, ack))
    r.expect_closed()
    r.close()
    return s


def refused_at_connect(b, p, code, what):
    r = pmq.RawClient(b.port, 5, what)
    ack = r.connect(pmq.unique("scram"), props=p, expect_reason=None)
    check(ack.reason == code, "%s: CONNACK 0x%02X expected, got %r" % (what, code, ack))
    r.expect_closed()
    r.close()


def reauth(r, user, password, reason=0x00):
    """Re-authentication (AUTH 0x19) of a connected client; PUBLISH
    packets met meanwhile are kept."""
    s = Scram(user, password)
    r.send(pmq.auth_packet(0x19, props(s.first())))
    p = r.expect(pmq.AUTH, what="AUTH 0x18 to the re-authentication")
    check(p.reason == 0x18, "re-authentication: %r" % p)
    r.send(pmq.auth_packet(0x18, props(s.final(p.props["auth-data"]))))
    if reason != 0:
        return s
    p = r.expect(pmq.AUTH, what="AUTH 0x00 ending the re-authentication")
    check(p.reason == 0 and p.props.get("auth-method") == METHOD,
          "re-authentication end: %r" % p)
    s.verify(p.props.get("auth-data"))
    return s


def add_user(path, user, password, *opts):
    subprocess.run([TOOL, "-b"] + list(opts) + [path, user, password], check=True,
                   capture_output=True, timeout=pmq.patience(10))


def exchanges(b, path):
    # in on both workers, the server proved to us; a message between a
    # SCRAM client and a password client on the other worker
    a0 = expect_in(b, "alice", "wonderland", avoid=1)
    a1 = expect_in(b, "alice", "wonderland", avoid=0)
    check({a0.slot, a1.slot} == {0, 1}, "SCRAM logins did not reach both workers")
    u = pmq.unique("scrammsg")
    check(a0.subscribe([(u, 1)]) == [1], "SUBACK")
    pw = pmq.RawClient(b.port, 5, "password client")
    pw.connect(pmq.unique("pw"), username="bob", password="b0b")
    pw.publish(u, b"to a SCRAM client", 1)
    check(a0.message().payload == b"to a SCRAM client", "message to the SCRAM client")
    a1.publish(u, b"from a SCRAM client", 1)
    check(a0.message().payload == b"from a SCRAM client", "message from the SCRAM client")

    # refusals: a wrong password, an unknown user (a made-up salt, the
    # same on both workers), a user mosquitto_passwd made (no verifier)
    expect_refused(b, "alice", "looking-glass", "a wrong password")
    salts = set()
    for avoid in (0, 1, 0, 1):
        s = expect_refused(b, "nobody", "x", "an unknown user", avoid)
        salts.add((s.salt, s.iterations))
    check(len(salts) == 1 and list(salts)[0][1] == 4096,
          "an unknown user's salt differs between tries or workers: %s" % salts)
    known = expect_refused(b, "bob", "not b0b", "a wrong password")
    check(known.salt not in {s for s, _ in salts}, "a known user got the made-up salt")
    if os.access(MOSQUITTO_PASSWD, os.X_OK):
        expect_refused(b, "mq", "from mosquitto", "a user without a verifier")
        r = pmq.RawClient(b.port, 5, "mq by password")
        r.connect(pmq.unique("mq"), username="mq", password="from mosquitto")
        r.close()

    # what the exchange does not take
    refused_at_connect(b, {"auth-method": "PLAIN", "auth-data": b"\0u\0p"}, 0x8C,
                       "another method")
    refused_at_connect(b, props(b"p=tls-unique,,n=alice,r=abcdefgh"), 0x87,
                       "channel binding")
    refused_at_connect(b, props(b"n,a=bob,n=alice,r=abcdefgh"), 0x87,
                       "an authorization identity")
    refused_at_connect(b, {"auth-method": METHOD}, 0x87, "no first message")
    # mid-exchange: another method, a PUBLISH, AUTH 0x19, a broken proof
    r, s, first = start(b, "alice", "wonderland")
    r.send(pmq.auth_packet(0x18, {"auth-method": "PLAIN", "auth-data": s.final(first)}))
    ack = r.expect(pmq.CONNACK)
    check(ack.reason == 0x82, "another method mid-exchange: %r" % ack)
    r.expect_closed()
    r, s, first = start(b, "alice", "wonderland")
    r.send(pmq.publish_packet("t", b"early", 0, version=5))
    r.expect_closed()
    r, s, first = start(b, "alice", "wonderland")
    r.send(pmq.auth_packet(0x19, props(s.first())))
    ack = r.expect(pmq.CONNACK)
    check(ack.reason == 0x82, "AUTH 0x19 before CONNACK: %r" % ack)
    r.expect_closed()
    r, s, first = start(b, "alice", "wonderland")
    r.send(pmq.auth_packet(0x18, props(s.final(first)[:-8])))
    ack = r.expect(pmq.CONNACK)
    check(ack.reason == 0x87, "a cut proof: %r" % ack)
    r.expect_closed()
    # AUTH from a client that logged in with a password
    pw.send(pmq.auth_packet(0x19, props(Scram("bob", "b0b").first())))
    pw.expect_closed(disconnect=0x82)

    # re-authentication while messages flow to the client, on both
    # workers; then the wrong password, another user, a stray AUTH 0x18
    for n in range(3):
        a1.send(pmq.publish_packet(u, b"during %d" % n, 0, version=5))
        reauth(a0, "alice", "wonderland")
    seen = {a0.message().payload for _ in range(3)}
    check(seen == {b"during 0", b"during 1", b"during 2"}, "messages around "
          "re-authentication: %s" % seen)
    a1.publish(u, b"after", 1)
    check(a0.message().payload == b"after", "a message after re-authentication")
    reauth(a1, "alice", "wonderland")
    reauth(a1, "alice", "not it", reason=0x87)
    a1.expect_closed(disconnect=0x87, allow=(pmq.PUBACK,))
    c = expect_in(b, "alice", "wonderland")
    s = Scram("bob", "b0b")
    c.send(pmq.auth_packet(0x19, props(s.first())))
    c.expect_closed(disconnect=0x87)
    c = expect_in(b, "alice", "wonderland")
    c.send(pmq.auth_packet(0x18, props(b"c=biws,r=x,p=AAAA")))
    c.expect_closed(disconnect=0x82)
    return a0, u


def reload_changes(b, path, a0):
    # a password changed by promptmq-passwd: the connected client goes
    # (0x98), the new password gets in, the old one not
    add_user(path, "alice", "rabbit hole")
    log = b.reload()
    check("SCRAM verifiers read" in log, "verifiers not read again:\n%s" % log)
    a0.expect_closed(disconnect=0x98, allow=(pmq.PUBLISH,))
    expect_in(b, "alice", "rabbit hole").close()
    expect_refused(b, "alice", "wonderland", "the old password")
    # changed by mosquitto_passwd: the verifier no longer counts, the
    # password does
    if os.access(MOSQUITTO_PASSWD, os.X_OK):
        subprocess.run([MOSQUITTO_PASSWD, "-b", path, "alice", "mq pw"], check=True)
        b.reload()
        expect_refused(b, "alice", "rabbit hole", "a stale verifier")
        expect_refused(b, "alice", "mq pw", "a password without a verifier")
        r = pmq.RawClient(b.port, 5, "alice by password")
        r.connect(pmq.unique("alice"), username="alice", password="mq pw")
        r.close()


def stalls_and_slowdown(path):
    """A client that stops half way is closed at server.connect-timeout;
    a failed proof slows its address's next check like a failed password
    (a lower bound only: a busy machine is slower, never faster)."""
    b = pmq.PromptMQ(workers=1, name="scramslow", args=[
        "--mqtt-allow-anonymous=false", "--auth-password-file", path,
        "--server-connect-timeout", "2s"]).start()
    try:
        r, _, _ = start(b, "bob", "b0b")
        t0 = time.monotonic()
        r.expect_closed(timeout=10)
        check(time.monotonic() - t0 >= 1.0, "closed before server.connect-timeout")
        b.wait_log(r"authentication not finished within server.connect-timeout")
        expect_refused(b, "bob", "guess", "a guess")
        t0 = time.monotonic()
        expect_in(b, "bob", "b0b").close()
        check(time.monotonic() - t0 >= 0.25, "the login after a failed proof was not "
              "delayed")
        b.check_alive("after the stalled exchange")
    finally:
        b.stop()
        b.cleanup()


def test():
    tmp = tempfile.mkdtemp(prefix="scram.", dir="/tmp")
    b = None
    try:
        path = os.path.join(tmp, "passwd")
        subprocess.run([TOOL, "-c", "-b", path, "alice", "wonderland"], check=True)
        add_user(path, "bob", "b0b")
        if os.access(MOSQUITTO_PASSWD, os.X_OK):
            subprocess.run([MOSQUITTO_PASSWD, "-b", path, "mq", "from mosquitto"],
                           check=True)
        check(os.stat(path + ".scram").st_mode & 0o777 == 0o600,
              "the verifiers are not as private as the password file")
        b = pmq.PromptMQ(workers=2, name="scram", args=[
            "--mqtt-allow-anonymous=false", "--auth-password-file", path,
            "--auth-failed-login-delay", "0s", "--server-connect-timeout", "60s"]).start()
        b.wait_log(r"SCRAM verifiers read file=%s.scram users=2" % path)
        a0, _ = exchanges(b, path)
        reload_changes(b, path, a0)
        log = b.log()
        for secret in ("wonderland", "rabbit hole", "b0b"):
            check(secret not in log, "a password is in the log: %r" % secret)
        b.check_alive("after the SCRAM logins")
        b.stop()
        b.cleanup()
        b = None
        stalls_and_slowdown(path)
    finally:
        if b is not None:
            b.stop()
            b.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


pmq.run_test(test)
