"""auth.jwt-key-file: JSON Web Tokens as MQTT passwords, with keys and
tokens the test makes (Python's hmac for HS256, the openssl command for
RS256 and ES256 signatures).

- An HS256 token signed with the configured secret, with the configured
  issuer and audience, gets in (3.1.1 and 5.0) whatever user name
  CONNECT carries, as the user of its "sub" claim: the ACL file's rules
  for that user apply (its topics flow across workers; a subscription
  outside them gets SUBACK 0x87).
- Refused with CONNACK 0x87 (3.1.1: 5), the broker going on: an expired
  token, one not valid yet, one without exp, one signed with another
  secret, one for another audience or from another issuer, one whose
  header says "none" or another algorithm than the key's, one whose
  payload was changed after signing, and garbage shaped like a token.
- A password that is not shaped like a token still goes to the password
  file.
- A client whose token expires while it is connected gets DISCONNECT
  0x87 with the reason string "token expired" (5.0) and is closed; one
  whose Maximum Packet Size is too small for that string gets the
  DISCONNECT without it [MQTT-3.14.2-3].
- A reload to an EC P-256 public key takes ES256 tokens and refuses
  HS256 ones (the algorithm is the key's, never the token's); then an
  RSA 2048 key takes RS256 tokens.
- promptmqd -t refuses an HMAC secret shorter than 32 bytes and an RSA
  key of 1024 bits, naming auth.jwt-key-file.
Skipped (77) without the openssl command.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile
import time

import pmq
from pmq import check

OPENSSL = shutil.which("openssl")
TOOL = os.path.join(pmq.BUILDDIR, "promptmq-passwd")
SECRET = b"a-secret-of-forty-bytes-for-hs256-tokens"
SMALL = 16      # bytes: a client's Maximum Packet Size, above the CONNACK's 11
ACL = "user dev-1\ntopic readwrite dev/dev-1/#\n\nuser alice\ntopic readwrite alice/#\n"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def der_to_raw(der):
    """An ECDSA signature from DER (SEQUENCE of two INTEGERs) to R || S."""
    check(der[0] == 0x30, "not a DER signature")
    i = 2
    out = b""
    for _ in range(2):
        check(der[i] == 0x02, "not a DER INTEGER")
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


def token(claims, alg="HS256", key=SECRET, tamper=None, header=None):
    """A signed token; key: the HMAC secret or a PEM private key file."""
    head = b64url(json.dumps(header or {"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    signing = head + b"." + body
    if alg == "HS256":
        sig = hmac.new(key, signing, hashlib.sha256).digest()
    elif alg in ("RS256", "ES256"):
        sig = subprocess.run([OPENSSL, "dgst", "-sha256", "-sign", key], input=signing,
                             capture_output=True, check=True).stdout
        if alg == "ES256":
            sig = der_to_raw(sig)
    else:
        sig = b""
    if tamper:
        body = b64url(json.dumps(tamper).encode())
    return (head + b"." + body + b"." + b64url(sig)).decode()


def claims(**extra):
    c = {"sub": "dev-1", "iss": "issuer-1", "aud": ["other", "mqtt"],
         "exp": int(time.time()) + 600}
    c.update(extra)
    return c


def login(b, password, version=5, username="anything", expect=0, props=None):
    """A raw client that sends password (and CONNECT properties props);
    its CONNACK code is expect."""
    r = pmq.RawClient(b.port, version, "token login")
    try:
        r.connect(pmq.unique("jwt"), username=username, password=password, props=props,
                  expect_reason=expect if version == 5 else (0 if expect == 0 else 5))
    except BaseException:
        r.close()
        raise
    return r


def refused(b, password, what):
    for v in (5, 4):
        r = login(b, password, v, expect=0x87)
        r.close()
    print("refused: %s" % what)


def accepted_as_dev1(b):
    """Tokens get in as dev-1, 5.0 and 3.1.1, on two workers; dev-1's
    topics flow from one to the other, others are refused."""
    a, s = pmq.raw_elsewhere(b, 5, "token publisher", None)
    z, _ = pmq.raw_elsewhere(b, 4, "token subscriber", s)
    try:
        for r in (a, z):
            r.connect(pmq.unique("tok"), username="ignored", password=token(claims()))
        topic = "dev/dev-1/" + pmq.unique("t")
        check(z.subscribe(topic) == [1], "dev-1 may not subscribe to its own topics")
        a.publish(topic, b"from-a-token", 1)
        p = z.expect(pmq.PUBLISH, what="the message between two token clients")
        check(p.topic == topic and p.payload == b"from-a-token", "got %r" % p)
        check(a.subscribe("alice/x") == [0x87], "a token for dev-1 may subscribe to alice/x")
    finally:
        a.close()
        z.close()


def expires_while_connected(b):
    """DISCONNECT 0x87 "token expired"; to a client whose Maximum Packet
    Size leaves no room for the Reason String (the CONNACK fits, the
    DISCONNECT with it would take 20 bytes), DISCONNECT 0x87 without
    it [MQTT-3.14.2-3]."""
    exp = int(time.time()) + 3
    r = login(b, token(claims(exp=exp)))
    small = None
    try:
        small = login(b, token(claims(exp=exp)), props={"maximum-packet-size": SMALL})
        p = r.expect(pmq.DISCONNECT, timeout=10, what="DISCONNECT when the token expires")
        check(p.reason == 0x87 and p.props.get("reason-string") == "token expired",
              "DISCONNECT %r %r, expected 0x87 'token expired'" % (p.reason, p.props))
        r.expect_closed(5)
        p = small.expect(pmq.DISCONNECT, timeout=10,
                         what="DISCONNECT within %d bytes when the token expires" % SMALL)
        check(p.reason == 0x87 and not p.props and len(p.body) + 2 <= SMALL,
              "Maximum Packet Size %d: DISCONNECT %r %r (%d bytes), expected 0x87 without "
              "a Reason String" % (SMALL, p.reason, p.props, len(p.body) + 2))
        small.expect_closed(5)
    finally:
        r.close()
        if small:
            small.close()


def key_files(tmp):
    """(secret file, short secret file, EC private and public, RSA
    private and public, RSA 1024 public)."""
    def run(*args):
        subprocess.run([OPENSSL] + list(args), cwd=tmp, check=True, capture_output=True,
                       timeout=pmq.patience(30))
    secret = os.path.join(tmp, "secret")
    with open(secret, "wb") as f:
        f.write(SECRET + b"\n")
    short = os.path.join(tmp, "short")
    with open(short, "wb") as f:
        f.write(b"too-short\n")
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.key")
    run("pkey", "-in", "ec.key", "-pubout", "-out", "ec.pub")
    run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.key")
    run("pkey", "-in", "rsa.key", "-pubout", "-out", "rsa.pub")
    run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "rsa1k.key")
    run("pkey", "-in", "rsa1k.key", "-pubout", "-out", "rsa1k.pub")
    return {n: os.path.join(tmp, f) for n, f in (
        ("secret", "secret"), ("short", "short"), ("ec", "ec.key"), ("ec.pub", "ec.pub"),
        ("rsa", "rsa.key"), ("rsa.pub", "rsa.pub"), ("rsa1k.pub", "rsa1k.pub"))}


def dash_t_refuses(tmp, key, what):
    b = pmq.Broker(workers=1, name="jwtbad", conf_values={"auth.jwt-key-file": key})
    try:
        r = subprocess.run(b.command(["-t"]), capture_output=True, text=True,
                           timeout=pmq.patience(10))
        out = r.stdout + r.stderr
        check(r.returncode != 0 and "auth.jwt-key-file" in out,
              "-t accepted %s:\n%s" % (what, out))
        print("-t: %s" % out.strip().splitlines()[0])
    finally:
        b.cleanup()


def test():
    if not OPENSSL:
        print("SKIP: auth_jwt.py: no openssl command to make keys with")
        return pmq.SKIP
    tmp = tempfile.mkdtemp(prefix="jwt.", dir="/tmp")
    try:
        keys = key_files(tmp)
        dash_t_refuses(tmp, keys["short"], "a 10-byte secret")
        dash_t_refuses(tmp, keys["rsa1k.pub"], "an RSA 1024 key")

        acl = os.path.join(tmp, "acl")
        with open(acl, "w") as f:
            f.write(ACL)
        pw = os.path.join(tmp, "passwd")
        subprocess.run([TOOL, "-c", "-b", pw, "alice", "alice-pw"], check=True)
        values = {"mqtt.allow-anonymous": False, "auth.password-file": pw,
                  "auth.acl-file": acl, "auth.jwt-key-file": keys["secret"],
                  "auth.jwt-issuer": "issuer-1", "auth.jwt-audience": "mqtt",
                  "auth.jwt-leeway": "0s"}
        b = pmq.PromptMQ(workers=2, name="jwt", conf_values=values)
        try:
            b.start()
            accepted_as_dev1(b)
            login(b, "alice-pw", username="alice").close()   # the password file
            now = int(time.time())
            refused(b, token(claims(exp=now - 5)), "expired")
            refused(b, token(claims(nbf=now + 600)), "not valid yet")
            no_exp = claims()
            del no_exp["exp"]
            refused(b, token(no_exp), "no exp")
            refused(b, token(claims(), key=b"another-secret-of-forty-bytes-for-hs256"),
                    "another secret")
            refused(b, token(claims(aud="elsewhere")), "another audience")
            refused(b, token(claims(iss="issuer-2")), "another issuer")
            refused(b, token(claims(), alg="none"), "alg none")
            refused(b, token(claims(), header={"alg": "HS384"}), "another algorithm")
            refused(b, token(claims(), tamper=claims(sub="alice")), "a changed payload")
            refused(b, "eyJ.abc.def", "garbage shaped like a token")
            expires_while_connected(b)

            # the algorithm is the key's: an EC key takes ES256 only
            values["auth.jwt-key-file"] = keys["ec.pub"]
            b.write_conf(values)
            b.reload()
            login(b, token(claims(), alg="ES256", key=keys["ec"])).close()
            refused(b, token(claims()), "HS256 under an EC key")
            refused(b, token(claims(), alg="RS256", key=keys["rsa"]), "RS256 under an EC key")
            values["auth.jwt-key-file"] = keys["rsa.pub"]
            b.write_conf(values)
            b.reload()
            login(b, token(claims(), alg="RS256", key=keys["rsa"])).close()
            refused(b, token(claims(), alg="ES256", key=keys["ec"]), "ES256 under an RSA key")
            b.check_alive("after the token logins")
            check(b.stop() == 0, "promptmqd did not stop cleanly")
        finally:
            b.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


pmq.run_test(test, promptmqd_only="promptmqd's auth.jwt-* options")
