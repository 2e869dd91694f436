"""MQTT over TLS (the tls group), on real TLS connections: paho (5.0 and
3.1.1), mosquitto_pub/mosquitto_sub and Python's ssl module, against
certificates the test makes with the openssl command (EC P-256: a CA, two
server certificates for localhost and 127.0.0.1, a client certificate
CN=tls-user, and a second CA with a CN=tls-user certificate of its own).
Skipped (77) without the openssl command.

- `promptmqd -t` refuses tls.bind without tls.cert-file, require-
  certificate without a CA and use-identity-as-username without
  require-certificate, naming the option, and accepts a whole TLS
  configuration; a certificate file that is not there or a key that does
  not match the certificate stops the start, naming the option and the
  file, before any child starts.
- tls.bind opens one socket per worker (kind=tls in the listening line)
  beside the plain server.bind.  QoS 0 and 1 messages go round over TLS
  at 5.0 and 3.1.1, between TLS clients on both workers, from TLS
  clients to plain ones and back, and through mosquitto_pub and
  mosquitto_sub with --cafile.  TLS 1.2 and 1.3 are both accepted by
  default, MQTT over TLS 1.2 included.
- A client that comes back with its session ticket (TLS 1.3 and 1.2)
  resumes its session on either worker (the workers share the key).
- A client that does not trust the CA fails the handshake; a plain MQTT
  CONNECT sent to the TLS port gets no CONNACK; random bytes, an
  oversized record and a record shorter than its message on the TLS
  port, and a ClientHello on the plain port, are closed; the broker
  and its other clients go on.
- Handshakes that stall (TCP only, a ClientHello only, a handshake done
  and no CONNECT) do not hold up the workers' other clients and are
  closed after server.connect-timeout (2s here), not before half of it.
- SIGHUP reads the certificate and key again, same file names: new
  connections, on both workers, get the certificate written in place of
  the first one (its DER compared with the file's), and TLS clients
  connected before stay and keep talking, through every reload below.
  A key that does not match, or a certificate file that is not there,
  leaves the running certificate in force ("reload: file not changed").
  tls.min-version = "1.3", set by reload, refuses a client limited to
  TLS 1.2; then tls.ciphers and tls.ciphersuites, set by reload, are
  what TLS 1.2 and 1.3 connections negotiate, and a TLS 1.2 client
  offering none of tls.ciphers fails.
- Mutual TLS (require-certificate, ca-dir, use-identity-as-username,
  mqtt.allow-anonymous false, no password file; as root, the children
  run as nobody and the key, certificate and CA are root's alone): an
  anonymous client on the plain port is refused; no client certificate,
  one from the other CA and an expired one get no MQTT session; the
  CN=tls-user one gets in with no user name and password, with the CN as
  its user name,
  whatever user name and password CONNECT carries: the ACL file's `user
  tls-user` rules apply, a publish to tls/... reaches the subscribers and
  a subscription outside is refused (5.0 SUBACK 0x87, 3.1.1 0x80;
  Mosquitto 2.0.11 would grant it and filter the messages).
  mosquitto_pub --cert gets in the same way.
- tls.bind added by a reload serves TLS clients; removed by another, it
  refuses new TLS connections while a client connected before stays.
- Pre-shared keys (tls.psk-file in Mosquitto's format, no certificate,
  use-identity-as-username, an ACL file): mosquitto_pub and
  mosquitto_sub with --psk get in as their identity (3.1.1 and 5.0)
  and its ACL applies; a wrong key or an unknown identity fails; a TLS
  1.2 PSK suite works (openssl s_client); a file with a line that is not
  IDENTITY:HEXKEY stops the start, naming the file and the line.
"""

import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pmq
from pmq import check

from certs import OPENSSL, Certs, openssl

CONNECT_TIMEOUT = 2     # server.connect-timeout of the TLS broker, seconds


# ---------------------------------------------------------------------------
# Certificates

def describe(certs, der):
    """A certificate (DER) as openssl sees it: serial, subject, notAfter."""
    out = openssl(["x509", "-inform", "DER", "-noout", "-serial", "-subject", "-enddate"],
                  certs.dir, stdin=der)
    return " ".join(out.decode().split("\n")).strip()


# ---------------------------------------------------------------------------
# Configuration

def tls_conf(values, tls):
    """The development configuration with values ({"group.leaf": v}) set
    and the tls group holding tls ({leaf: v})."""
    both = dict(values)
    both.update(("tls." + k, v) for k, v in tls.items())
    return pmq.conf_text(both)


def addr(port):
    return "127.0.0.1:%d" % port


def found_listeners(b, tls_port):
    """The TLS listener is announced (kind=tls), with one socket per
    worker; b.port is set to the plain one (the first listening line of
    the log, which start() took, may be either)."""
    log = b.log()[b.start_mark:]
    m = re.search(r"listening addr=127\.0\.0\.1:(\d+) slots=(\d+) kind=mqtt", log)
    check(m, "no listening line of kind=mqtt")
    b.port = int(m.group(1))
    m = re.search(r"listening addr=%s slots=(\d+) kind=tls" % re.escape(addr(tls_port)), log)
    check(m and int(m.group(1)) == b.workers,
          "no listening line addr=%s slots=%d kind=tls" % (addr(tls_port), b.workers))
    n = pmq.listening_sockets(tls_port)
    check(n == b.workers, "%d sockets listen on the TLS port, expected one per worker" % n)


# ---------------------------------------------------------------------------
# TLS clients

def client_ctx(certs, ca="ca", cert=None, min_version=None, max_version=None):
    """A client's context: trusts ca, presents cert (a name of certs)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.pem(ca))
    if cert:
        ctx.load_cert_chain(certs.pem(cert), certs.key(cert))
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def tls_socket(port, ctx, host="localhost"):
    """A TLS connection, its handshake done (bounded by the socket's
    timeout)."""
    s = pmq.tcp_connect(port)
    try:
        return ctx.wrap_socket(s, server_hostname=host)
    except BaseException:
        s.close()
        raise


def mqtt_over(s, what):
    """A clean 3.1.1 CONNECT and its CONNACK over TLS socket s (the
    broker's session tickets come after the handshake: reading the
    CONNACK reads them too)."""
    s.settimeout(pmq.patience(5))
    s.sendall(pmq.connect_packet(pmq.unique("resume"), 4))
    data = b""
    while len(data) < 4:
        chunk = s.recv(4 - len(data))
        check(chunk, "%s: closed before the CONNACK" % what)
        data += chunk
    check(data == b"\x20\x02\x00\x00", "%s: CONNACK %r" % (what, data))


def resumption(b, certs):
    """A client that comes back with its session ticket resumes the TLS
    session, whichever worker takes the new connection: the workers share
    the ticket key.  TLS 1.3 and 1.2."""
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = client_ctx(certs, min_version=version, max_version=version)
        s = tls_socket(b.tls_port, ctx)
        try:
            mqtt_over(s, "the first connection")
            session, first = s.session, b.slot_of_socket(s.getsockname()[1])
        finally:
            s.close()
        check(session is not None, "%s: no session to resume" % version.name)
        seen = set()
        for i in range(40):
            s = pmq.tcp_connect(b.tls_port)
            try:
                s = ctx.wrap_socket(s, server_hostname="localhost", session=session)
                mqtt_over(s, "a resumed connection")
                check(s.session_reused, "%s: reconnection %d (worker %d, the first on %d) "
                      "made a full handshake" % (version.name, i, b.slot_of_socket(
                          s.getsockname()[1]), first))
                seen.add(b.slot_of_socket(s.getsockname()[1]))
            finally:
                s.close()
            if len(seen) == b.slots:
                break
        check(len(seen) == b.slots, "%s: 40 reconnections all landed on workers %s" %
              (version.name, sorted(seen)))


def served_der(port, certs):
    """The certificate (DER) the broker presents to a new connection."""
    s = tls_socket(port, client_ctx(certs))
    try:
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


def handshake_fails(port, ctx, what):
    """The handshake fails on an SSL error; returns it."""
    try:
        s = tls_socket(port, ctx)
    except ssl.SSLError as e:
        return e
    v = s.version()
    s.close()
    raise pmq.TestFailure("%s: the handshake succeeded (%s)" % (what, v))


def no_session(port, ctx, what):
    """No MQTT session on this TLS connection: the handshake fails, or
    the broker's alert or close comes instead of a CONNACK (in TLS 1.3 the
    client is done with the handshake before the broker has checked its
    certificate).  Returns what happened."""
    try:
        s = tls_socket(port, ctx)
    except (ssl.SSLError, ConnectionError) as e:
        return "handshake: %s" % e
    try:
        deadline = time.monotonic() + pmq.patience(5)
        data = b""
        try:
            s.sendall(pmq.connect_packet(pmq.unique("nosession"), 4))
            while True:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = s.recv(4096)
                if not chunk:
                    return "closed after %r" % data
                data += chunk
                check(not data.startswith(b"\x20"), "%s: got a CONNACK: %r" % (what, data))
        except socket.timeout:
            raise pmq.TestFailure("%s: the connection is still open after %.1fs (%r)" %
                                  (what, pmq.patience(5), data))
        except (ssl.SSLError, OSError) as e:
            return "after the handshake: %s" % e
    finally:
        s.close()


def tls_client(b, certs, name, version=5, ctx=None, cert=None, username=None,
               password=None, inbox=True):
    """A connected paho client on the TLS port (tls_set(): the test CA,
    cert as its certificate; or the context ctx), subscribed to its
    inbox (CLIENT_ID/inbox)."""
    c = pmq.Client(b.tls_port, pmq.unique(name), version)
    try:
        if ctx is not None:
            c.c.tls_set_context(ctx)
        else:
            c.c.tls_set(ca_certs=certs.pem("ca"), certfile=cert and certs.pem(cert),
                        keyfile=cert and certs.key(cert))
        if username is not None:
            c.c.username_pw_set(username, password)
        c.connect()
        if inbox:
            check(c.subscribe(inbox_of(c), 1) == [1], "%s: SUBACK for its inbox" % name)
    except BaseException:
        c.close()
        raise
    return c


def plain_client(b, name, version=5):
    return pmq.inbox_client(b.port, name, version)


def inbox_of(c):
    return c.client_id + "/inbox"


def receive(c, want, what):
    """c gets the messages want [(topic, payload, qos)], in any order
    (messages of different QoS may take different paths)."""
    got = sorted((m.topic, m.payload, m.qos) for m in c.collect(len(want), 5, what))
    check(got == sorted(want), "%s: %s got %s, expected %s" % (what, c.client_id, got,
                                                               sorted(want)))


def talk(a, z, what):
    """a and z send each other a QoS 0 and a QoS 1 message."""
    tag = pmq.unique(what).encode()
    for src, dst in ((a, z), (z, a)):
        for qos in (0, 1):
            src.publish(inbox_of(dst), tag + b" q%d" % qos, qos)
    for c in (a, z):
        receive(c, [(inbox_of(c), tag + b" q%d" % q, q) for q in (0, 1)], what)


def round_trip(c, what):
    """c gets back what it publishes to a topic it subscribed to."""
    topic = pmq.unique("tls-rt") + "/x"
    check(c.subscribe(topic, 1) == [1], "%s: SUBACK" % what)
    c.publish(topic, b"zero", 0)
    c.publish(topic, b"one", 1)
    receive(c, [(topic, b"zero", 0), (topic, b"one", 1)], what)
    c.unsubscribe(topic)


def mosquitto_tls(b, certs, v, cert=None):
    """The arguments of mosquitto_pub and mosquitto_sub for the TLS port."""
    args = ["-h", "127.0.0.1", "-p", str(b.tls_port), "-V", v, "--cafile", certs.pem("ca")]
    if cert:
        args += ["--cert", certs.pem(cert), "--key", certs.key(cert)]
    return args


def mosquitto_pub(args, what):
    r = subprocess.run(["mosquitto_pub"] + args, capture_output=True, text=True,
                       timeout=pmq.patience(10))
    check(r.returncode == 0, "%s: mosquitto_pub failed (%d): %s" %
          (what, r.returncode, r.stdout + r.stderr))


def mosquitto_sub(args, topic, n, what):
    """mosquitto_sub subscribed (its SUBACK seen) to topic, to print n
    messages; returns (process, its lines)."""
    sub = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub"] + args + [
        "-t", topic, "-q", "1", "-C", str(n), "-v", "-d",
        "-W", str(int(pmq.patience(10)))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = pmq.Lines(sub)
        out.wait(lambda line: "received SUBACK" in line, 5, "%s: the SUBACK" % what)
    except BaseException:
        sub.kill()
        sub.wait()
        raise
    return sub, out


def end_sub(sub, out, topic, want, what):
    """sub prints want (payloads, any order) and exits with 0."""
    try:
        got = [out.wait(lambda line: line.startswith(topic + " "), 5,
                        "%s: message %d" % (what, i)) for i in range(len(want))]
        check(sorted(got) == sorted("%s %s" % (topic, w) for w in want),
              "%s: mosquitto_sub printed %s, expected %s" % (what, got, want))
        sub.wait(pmq.patience(5))
        check(sub.returncode == 0, "%s: mosquitto_sub exited with %s" % (what, sub.returncode))
    finally:
        if sub.poll() is None:
            sub.kill()
        sub.wait()


# ---------------------------------------------------------------------------
# Checks of a broker with a TLS listener (b.tls_port)

def pubsub(b, certs):
    """Messages over TLS: between TLS clients on every worker, 5.0 and
    3.1.1, and between TLS and plain clients.  Returns the clients kept
    for later checks: {slot: [client]}."""
    slots = pmq.spread(b, lambda i: tls_client(b, certs, "tls-w%d" % i))
    others = []
    try:
        a, z = slots[0][0], slots[b.slots - 1][0]
        talk(a, z, "TLS between workers")
        round_trip(a, "TLS 5.0")
        v4 = tls_client(b, certs, "tls-v4", version=4)
        others.append(v4)
        round_trip(v4, "TLS 3.1.1")
        talk(v4, z, "TLS 3.1.1 and 5.0")
        for v in (5, 4):
            plain = plain_client(b, "plain-v%d" % v, v)
            others.append(plain)
            talk(plain, a, "plain %d and TLS 5.0" % v)
            talk(plain, v4, "plain %d and TLS 3.1.1" % v)
    except BaseException:
        pmq.close_all(slots)
        raise
    finally:
        for c in others:
            c.close()
    return slots


def command_line_tools(b, certs):
    """mosquitto_sub over TLS gets what mosquitto_pub over TLS and a plain
    client send; a plain client gets what mosquitto_pub over TLS sends."""
    plain = plain_client(b, "plain-cli")
    try:
        for v in ("311", "5"):
            what = "mosquitto_sub -V %s over TLS" % v
            topic = pmq.unique("tls-cli" + v) + "/t"
            check(plain.subscribe(topic, 1) == [1], "SUBACK")
            sub, out = mosquitto_sub(mosquitto_tls(b, certs, v) + ["-i", topic + "-sub"],
                                     topic, 3, what)
            for qos, msg in ((1, "one"), (0, "two")):
                mosquitto_pub(mosquitto_tls(b, certs, v) + [
                    "-i", topic + "-pub", "-t", topic, "-q", str(qos), "-m", msg],
                    "-V %s over TLS, QoS %d" % (v, qos))
            plain.publish(topic, b"from plain", 1)
            end_sub(sub, out, topic, ["one", "two", "from plain"], what)
            receive(plain, [(topic, b"one", 1), (topic, b"two", 0), (topic, b"from plain", 1)],
                    "a plain client, from mosquitto_pub -V %s over TLS" % v)
            plain.unsubscribe(topic)
    finally:
        plain.close()


def closed_by_broker(port, data, what):
    """Send data (bytes the broker cannot take) and see the connection
    closed, well before any time-out."""
    s = pmq.tcp_connect(port)
    got = b""
    try:
        try:
            s.sendall(data)
        except ConnectionError:
            return
        s.settimeout(pmq.patience(CONNECT_TIMEOUT + 1))
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionError:
        pass
    except socket.timeout:
        raise pmq.TestFailure("%s: still open after %.1fs" %
                              (what, pmq.patience(CONNECT_TIMEOUT + 1)))
    finally:
        s.close()
    check(not got.startswith(b"\x20"), "%s: a CONNACK came: %r" % (what, got[:20]))
    print("%s: closed (%d bytes back)" % (what, len(got)))


def client_hello(certs):
    """The bytes of a real ClientHello."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    half = client_ctx(certs).wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        half.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def bad_input(b, certs, slots):
    """Garbage, an oversized record, a ClientHello whose record length
    lies, and a ClientHello sent to the plain port are all closed; the
    workers' other clients notice nothing."""
    hello = client_hello(certs)
    closed_by_broker(b.tls_port, os.urandom(65536), "64 KiB of random bytes on the TLS port")
    closed_by_broker(b.tls_port, b"\x16\x03\x03\xff\xff" + os.urandom(65535),
                     "a 64 KiB handshake record (TLS allows 16 KiB)")
    closed_by_broker(b.tls_port, hello[:3] + b"\x00\x08" + hello[5:13] + os.urandom(4096),
                     "a ClientHello record shorter than its message")
    closed_by_broker(b.port, hello, "a ClientHello on the plain port")
    half_record(b, certs)
    talk(slots[0][0], slots[b.slots - 1][0], "after bad TLS input")


def half_record(b, certs):
    """A record's first bytes after the handshake, and the rest never:
    the worker waits for them without spinning (OpenSSL holds the start
    of a record it cannot decrypt yet; re-reading for it would not end)."""
    s = tls_socket(b.tls_port, client_ctx(certs))
    try:
        mqtt_over(s, "before the half record")
        raw = socket.socket(fileno=os.dup(s.fileno()))
        try:
            raw.sendall(b"\x17\x03\x03")
            workers = b.worker_pids()
            before, t0 = pmq.cpu_ticks(workers), time.monotonic()
            time.sleep(2)       # a measured interval, not a wait for a condition
            used = pmq.cpu_ticks(workers) - before
            secs = time.monotonic() - t0
        finally:
            raw.detach()
        hz = os.sysconf("SC_CLK_TCK")
        check(used < hz * secs * 0.25, "the workers used %.0f%% of a core for %.1fs while a "
              "client held half a TLS record" % (100.0 * used / (hz * secs), secs))
        print("half a TLS record: workers used %d ticks in %.1fs" % (used, secs))
    finally:
        s.close()


def refusals(b, certs):
    """A client that does not trust the CA, and plain MQTT on the TLS
    port, get nowhere."""
    e = handshake_fails(b.tls_port, client_ctx(certs, ca="other-ca"),
                        "a client trusting another CA")
    check(isinstance(e, ssl.SSLCertVerificationError),
          "a client trusting another CA: %r, expected a verification error" % e)
    print("a client trusting another CA: %s" % e)

    closed_by_broker(b.tls_port, pmq.connect_packet(pmq.unique("plain-on-tls"), 4),
                     "plain CONNECT to the TLS port")


def versions(b, certs):
    """TLS 1.2 and 1.3 both accepted, and MQTT works over 1.2."""
    for limit, want in ((dict(max_version=ssl.TLSVersion.TLSv1_2), "TLSv1.2"),
                        (dict(min_version=ssl.TLSVersion.TLSv1_3), "TLSv1.3")):
        s = tls_socket(b.tls_port, client_ctx(certs, **limit))
        got = s.version()
        s.close()
        check(got == want, "a client limited to %s negotiated %s" % (want, got))
    c = tls_client(b, certs, "tls12", ctx=client_ctx(
        certs, max_version=ssl.TLSVersion.TLSv1_2))
    try:
        check(c.c.socket().version() == "TLSv1.2", "paho limited to TLS 1.2: %s" %
              c.c.socket().version())
        round_trip(c, "MQTT over TLS 1.2")
    finally:
        c.close()


def close_time(s, deadline, times, i):
    """Read s until the broker closes it; times[i] = when (None: not by
    the deadline)."""
    try:
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            if not s.recv(4096):
                break
    except socket.timeout:
        return
    except OSError:     # a reset, an SSL error or an SSL EOF: closed too
        pass
    times[i] = time.monotonic()


def stuck_handshakes(b, certs, slots):
    """Connections that never finish their TLS handshake, or their MQTT
    one, are closed after server.connect-timeout; meanwhile the workers
    serve their other clients and new TLS connections."""
    socks, kinds = [], []
    try:
        for kind in ("TCP only", "TCP only", "ClientHello only", "handshake, no CONNECT"):
            if kind == "handshake, no CONNECT":
                s = tls_socket(b.tls_port, client_ctx(certs))
            else:
                s = pmq.tcp_connect(b.tls_port)
            if kind == "ClientHello only":
                incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
                half = client_ctx(certs).wrap_bio(incoming, outgoing,
                                                  server_hostname="localhost")
                try:
                    half.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                s.sendall(outgoing.read())
            socks.append((s, time.monotonic()))
            kinds.append(kind)
        deadline = time.monotonic() + pmq.patience(CONNECT_TIMEOUT) + 1
        times = [None] * len(socks)
        readers = [threading.Thread(target=close_time, args=(s, deadline, times, i),
                                    daemon=True) for i, (s, _) in enumerate(socks)]
        for t in readers:
            t.start()
        a, z = slots[0][0], slots[b.slots - 1][0]
        talk(a, z, "while handshakes are stuck")
        c = tls_client(b, certs, "during-stuck")
        try:
            talk(c, a, "a new TLS client while handshakes are stuck")
        finally:
            c.close()
        for t in readers:
            t.join(max(0.0, deadline - time.monotonic()) + 1)
        took = []
        for (s, opened), kind, closed in zip(socks, kinds, times):
            check(closed is not None, "%s: not closed within %.1fs (connect-timeout %ds)" %
                  (kind, deadline - opened, CONNECT_TIMEOUT))
            took.append(closed - opened)
            check(closed - opened >= CONNECT_TIMEOUT / 2,
                  "%s: closed after %.2fs, before connect-timeout (%ds)" %
                  (kind, closed - opened, CONNECT_TIMEOUT))
        print("stuck handshakes closed after %s" %
              ", ".join("%s %.2fs" % kt for kt in zip(kinds, took)))
    finally:
        for s, _ in socks:
            s.close()


def serves(b, certs, name, what):
    """New connections on every worker present certificate name: they
    get it once the workers have it, and then all of them do."""
    want = certs.der(name)
    pmq.wait_for(lambda: served_der(b.tls_port, certs) == want, 5,
                 "a new connection to get %s" % describe(certs, want), interval=0.1)
    slots = pmq.spread(b, lambda i: tls_client(b, certs, "cert-probe%d" % i, inbox=False))
    try:
        for s, cs in sorted(slots.items()):
            got = cs[0].c.socket().getpeercert(binary_form=True)
            check(got == want, "%s: worker %d presents %s, expected %s" %
                  (what, s, describe(certs, got), describe(certs, want)))
    finally:
        pmq.close_all(slots)


def still_there(before, b, certs, what):
    """The clients connected before are connected and talk to a new one."""
    new = tls_client(b, certs, "after")
    try:
        for c in before:
            check(c.connected() and not c.disconnects, "%s: %s was disconnected (%s)" %
                  (what, c.client_id, c.disconnects))
            talk(c, new, what)
    finally:
        new.close()


def copy_in_place(src, dst):
    """dst rewritten with src's bytes (the same inode, as an editor or
    certbot's --reuse-key renewal leaves it)."""
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "r+b") as f:
        f.truncate(0)
        f.write(data)


def reloads(b, certs, conf, cert, key, before):
    """SIGHUP: the certificate renewed in place is served; a key that
    does not match it or a missing file keeps the running one;
    tls.min-version changes."""
    check(served_der(b.tls_port, certs) == certs.der("server1"), "server1 not served")

    copy_in_place(certs.pem("server2"), cert)
    copy_in_place(certs.key("server2"), key)
    mark = b.mark()
    out = b.reload()
    check("reload rejected" not in out, "the renewed certificate: %s" % out)
    m = b.wait_log(r"TLS certificate loaded[^\n]*file=\"?%s\b[^\n]*" % re.escape(cert),
                   5, mark)
    print("renewed in place: %s" % m.group(0))
    serves(b, certs, "server2", "after the renewal")
    still_there(before, b, certs, "after the renewal")

    copy_in_place(certs.key("server1"), key)
    mark = b.mark()
    b.reload()
    m = b.wait_log(r"reload: file not changed[^\n]*", 5, mark)
    print("a key of another certificate: %s" % m.group(0))
    check("TLS certificate loaded" not in b.log()[mark:],
          "a key that does not match was loaded:\n%s" % b.log()[mark:])
    serves(b, certs, "server2", "after a key that does not match")

    copy_in_place(certs.key("server2"), key)
    gone = os.path.join(os.path.dirname(cert), "not-there.pem")
    b.write_conf(text=conf(**{"cert-file": gone}))
    mark = b.mark()
    b.reload()
    m = b.wait_log(r"reload: file not changed[^\n]*%s[^\n]*" % re.escape(gone), 5, mark)
    print("a certificate file not there: %s" % m.group(0))
    serves(b, certs, "server2", "after a certificate file not there")
    still_there(before, b, certs, "after the failed reloads")

    b.write_conf(text=conf(**{"min-version": "1.3"}))
    out = b.reload()
    check(re.search(r"option changed option=tls\.min-version value=\"1\.3\"", out),
          "tls.min-version = \"1.3\" not applied:\n%s" % out)
    ctx12 = client_ctx(certs, max_version=ssl.TLSVersion.TLSv1_2)
    e = pmq.wait_for(lambda: try_handshake(b.tls_port, ctx12), 5,
                     "a client limited to TLS 1.2 to be refused", interval=0.1)
    print("min-version 1.3, a client limited to TLS 1.2: %s" % e)
    for _ in range(TRIES):
        handshake_fails(b.tls_port, ctx12, "min-version 1.3, a client limited to TLS 1.2")
        got = negotiated(b.tls_port, client_ctx(certs))
        check(got[0] == "TLSv1.3", "min-version 1.3: %s" % (got,))
    still_there(before, b, certs, "after min-version 1.3")

    b.write_conf(text=conf(ciphers=CIPHER12, ciphersuites=CIPHER13, **{"min-version": "1.2"}))
    out = b.reload()
    for opt in ("min-version", "ciphers", "ciphersuites"):
        check(re.search(r"option changed option=tls\.%s\b" % opt, out),
              "tls.%s not changed by the reload:\n%s" % (opt, out))
    ciphers(b, certs)
    still_there(before, b, certs, "after the cipher changes")


CIPHER12 = "ECDHE-ECDSA-AES128-GCM-SHA256"
CIPHER13 = "TLS_CHACHA20_POLY1305_SHA256"
# connections in a row that must all see a setting: a worker that did
# not take it would, by the kernel's spread, get one of them (2^-9 odds
# that all go to one worker of two)
TRIES = 10


def negotiated(port, ctx):
    s = tls_socket(port, ctx)
    try:
        return s.version(), s.cipher()[0]
    finally:
        s.close()


def ciphers(b, certs):
    """tls.ciphers = CIPHER12 and tls.ciphersuites = CIPHER13 (min-version
    1.2): those are the ones negotiated, a TLS 1.2 client without CIPHER12
    is refused."""
    pmq.wait_for(lambda: negotiated(b.tls_port, client_ctx(certs)) == ("TLSv1.3", CIPHER13),
                 5, "TLS 1.3 connections to use %s" % CIPHER13, interval=0.1)
    ctx12 = client_ctx(certs, max_version=ssl.TLSVersion.TLSv1_2)
    other12 = client_ctx(certs, max_version=ssl.TLSVersion.TLSv1_2)
    other12.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
    for _ in range(TRIES):
        got = negotiated(b.tls_port, client_ctx(certs))
        check(got == ("TLSv1.3", CIPHER13), "tls.ciphersuites = %s: %s" % (CIPHER13, got))
        got = negotiated(b.tls_port, ctx12)
        check(got == ("TLSv1.2", CIPHER12), "tls.ciphers = %s: %s" % (CIPHER12, got))
        e = handshake_fails(b.tls_port, other12, "a TLS 1.2 client without %s" % CIPHER12)
    print("a TLS 1.2 client without %s: %s" % (CIPHER12, e))


def try_handshake(port, ctx):
    """The SSL error of a handshake, or None if it succeeds."""
    try:
        tls_socket(port, ctx).close()
    except ssl.SSLError as e:
        return e
    return None


def serving(tmp, certs):
    """A broker with plain and TLS listeners, workers=2."""
    served = os.path.join(tmp, "served")
    os.mkdir(served, 0o700)
    cert, key = os.path.join(served, "cert.pem"), os.path.join(served, "key.pem")
    shutil.copy(certs.pem("server1"), cert)
    shutil.copy(certs.key("server1"), key)
    os.chmod(key, 0o600)
    port = pmq.free_port()

    def conf(**tls):
        t = {"bind": addr(port), "cert-file": cert, "key-file": key}
        t.update(tls)
        return tls_conf({"server.connect-timeout": "%ds" % CONNECT_TIMEOUT}, t)

    b = pmq.PromptMQ(workers=2, name="tls", conf_values={})
    b.write_conf(text=conf())
    slots = {}
    before = []
    try:
        b.start()
        b.tls_port = port
        found_listeners(b, port)
        slots = pubsub(b, certs)
        resumption(b, certs)
        command_line_tools(b, certs)
        refusals(b, certs)
        talk(slots[0][0], slots[b.slots - 1][0], "after the refusals")
        bad_input(b, certs, slots)
        versions(b, certs)
        stuck_handshakes(b, certs, slots)
        before = [tls_client(b, certs, "before5"), tls_client(b, certs, "before4", 4)]
        reloads(b, certs, conf, cert, key, before + [slots[0][0], slots[b.slots - 1][0]])
        b.check_alive("after TLS")
        for c in before:
            c.close()
        pmq.close_all(slots)
        before, slots = [], {}
        check(b.stop() == 0, "promptmqd did not stop cleanly")
    finally:
        for c in before:
            c.close()
        pmq.close_all(slots)
        b.cleanup()


# ---------------------------------------------------------------------------
# Mutual TLS

ACL = "user tls-user\ntopic readwrite tls/#\n"


def mutual_checks(b, certs):
    """Client certificates (b requires them, takes the CN as user name,
    lets no anonymous client in, and has ACL's rules)."""
    for ctx, what in ((client_ctx(certs), "no client certificate"),
                      (client_ctx(certs, cert="rogue"), "a certificate of another CA"),
                      (client_ctx(certs, cert="expired"), "an expired certificate")):
        print("%s: %s" % (what, no_session(b.tls_port, ctx, what)))

    u = pmq.unique("mtls")
    mine, outside = "tls/%s/x" % u, "other/%s/x" % u
    c = tls_client(b, certs, "id5", cert="client", inbox=False)
    clients = [c]
    try:
        check(c.subscribe(mine, 1) == [1], "tls-user's subscription to %s refused" % mine)
        c.publish(mine, b"as tls-user", 1)
        c.expect(mine, b"as tls-user", 1)
        check(c.subscribe(outside, 1) == [0x87],
              "a subscription outside tls-user's topics: expected SUBACK 0x87")
        # a user name in CONNECT is not the one used, nor is its password checked
        named = tls_client(b, certs, "id4", version=4, cert="client", inbox=False,
                           username="someone-else", password="wrong")
        clients.append(named)
        check(named.subscribe(mine, 1) == [1],
              "with another user name in CONNECT: the subscription to %s refused" % mine)
        check(named.subscribe(outside, 1) == [0x80],
              "with another user name in CONNECT: SUBACK for %s, expected 0x80" % outside)
        named.publish(mine, b"named", 1)
        for x in (c, named):
            x.expect(mine, b"named", 1)
        mosquitto_pub(mosquitto_tls(b, certs, "5", cert="client") + [
            "-t", mine, "-q", "1", "-m", "from mosquitto_pub"], "mosquitto_pub --cert")
        for x in (c, named):
            x.expect(mine, b"from mosquitto_pub", 1)
    finally:
        for x in clients:
            x.close()
    # last: a failed login slows the next ones from its address down
    r = pmq.RawClient(b.port, 5, "anonymous on the plain port")
    try:
        r.connect(pmq.unique("anon"), expect_reason=0x87)
    finally:
        r.close()


def mutual(tmp, certs):
    """Mutual TLS, run (as root) with the children as nobody and the
    server's key, certificate and CA in a directory only root may enter:
    the supervisor reads them and hands them over."""
    private = os.path.join(tmp, "private")
    os.mkdir(private, 0o700)
    files = {}
    for opt, src in (("cert-file", certs.pem("server1")), ("key-file", certs.key("server1"))):
        files[opt] = os.path.join(private, os.path.basename(src))
        shutil.copy(src, files[opt])
        os.chmod(files[opt], 0o600)
    # the CA through tls.ca-dir, with a hashed directory's link beside it
    cas = os.path.join(private, "cas")
    os.mkdir(cas, 0o700)
    shutil.copy(certs.pem("ca"), os.path.join(cas, "ca.pem"))
    os.chmod(os.path.join(cas, "ca.pem"), 0o600)
    os.symlink("ca.pem", os.path.join(cas, "0badc0de.0"))
    files["ca-dir"] = cas
    acl = os.path.join(tmp, "acl")
    with open(acl, "w") as f:
        f.write(ACL)
    port = pmq.free_port()
    as_nobody = os.geteuid() == 0
    b = pmq.PromptMQ(workers=2, name="mtls", conf_values={},
                     args=["--server-user", "nobody"] if as_nobody else [])
    b.write_conf(text=tls_conf(
        {"mqtt.allow-anonymous": False, "auth.acl-file": acl},
        dict(files, bind=addr(port), **{"require-certificate": True,
                                        "use-identity-as-username": True})))
    try:
        if as_nobody:
            os.chmod(b.base, 0o755)     # as /run and /var/lib are
        b.start()
        b.tls_port = port
        found_listeners(b, port)
        if as_nobody:
            uid = pmq.proc_status(b.worker_pid(0))["Uid"].split()[0]
            check(int(uid) == pwd.getpwnam("nobody").pw_uid,
                  "the worker runs as uid %s, not as nobody" % uid)
        mutual_checks(b, certs)
        b.check_alive("after mutual TLS")
        check(b.stop() == 0, "promptmqd did not stop cleanly")
    finally:
        b.cleanup()


# ---------------------------------------------------------------------------
# tls.bind by reload

def bind_reload(tmp, certs):
    """A broker started without TLS gets its TLS listener by a reload
    (tls.bind and the certificate set together), serves TLS clients on
    both workers, and loses it by another reload: new TLS connections are
    refused, a TLS client connected before stays and keeps talking."""
    port = pmq.free_port()
    b = pmq.PromptMQ(workers=2, name="tlsbind", conf_values={})
    before = None
    try:
        b.write_conf(text=tls_conf({}, {}))
        b.start()
        b.tls_port = port
        check(handshake_refused(port), "a TLS port before tls.bind was set")
        b.write_conf(text=tls_conf({}, {"bind": addr(port), "cert-file": certs.pem("server1"),
                                        "key-file": certs.key("server1")}))
        out = b.reload()
        check("reload rejected" not in out, "the reload adding tls.bind was rejected:\n" + out)
        found_listeners(b, port)
        before = tls_client(b, certs, "bound-by-reload")
        round_trip(before, "a TLS client after tls.bind was added")
        b.write_conf(text=tls_conf({}, {"cert-file": certs.pem("server1"),
                                        "key-file": certs.key("server1")}))
        out = b.reload()
        check("no longer listening addr=127.0.0.1:%d" % port in out,
              "the reload removing tls.bind did not close it:\n" + out)
        pmq.wait_for(lambda: handshake_refused(port), 10, "the TLS port to close")
        round_trip(before, "the TLS client connected before tls.bind was removed")
        b.check_alive("after tls.bind reloads")
    finally:
        if before is not None:
            before.close()
        b.cleanup()


def handshake_refused(port):
    """Nothing listens on port (a connection is refused)."""
    try:
        pmq.tcp_connect(port).close()
    except ConnectionRefusedError:
        return True
    return False


# ---------------------------------------------------------------------------
# Pre-shared keys

PSKS = "# sensors\nsensor-1:00112233445566778899aabbccddeeff\n\nsensor-2:0badc0de0badc0de\n"
PSK_ACL = "user sensor-1\ntopic readwrite psk/#\n"


def mosquitto_psk(b, identity, key, v="5"):
    return ["-h", "127.0.0.1", "-p", str(b.tls_port), "-V", v, "--psk", key,
            "--psk-identity", identity]


def psk(tmp, certs):
    """tls.psk-file only (no certificate), with use-identity-as-username,
    an ACL file and no password file: a client with a listed identity and
    its key gets in as that user; a wrong key or an unknown identity
    fails the handshake; TLS 1.2 PSK suites work (openssl s_client)."""
    keys = os.path.join(tmp, "psk")
    with open(keys, "w") as f:
        f.write(PSKS)
    os.chmod(keys, 0o600)
    acl = os.path.join(tmp, "psk-acl")
    with open(acl, "w") as f:
        f.write(PSK_ACL)
    port = pmq.free_port()
    b = pmq.PromptMQ(workers=2, name="psk", conf_values={})
    b.write_conf(text=tls_conf(
        {"mqtt.allow-anonymous": False, "auth.acl-file": acl},
        {"bind": addr(port), "psk-file": keys, "psk-hint": "promptmq",
         "use-identity-as-username": True}))
    try:
        b.start()
        b.tls_port = port
        found_listeners(b, port)
        good = mosquitto_psk(b, "sensor-1", "00112233445566778899aabbccddeeff")
        for v in ("5", "311"):
            topic = "psk/%s/%s" % (v, pmq.unique("m"))
            sub, out = mosquitto_sub(mosquitto_psk(b, "sensor-1",
                                                   "00112233445566778899aabbccddeeff", v),
                                     topic, 1, "PSK -V %s" % v)
            mosquitto_pub(good + ["-t", topic, "-m", "over-psk", "-q", "1"], "PSK publish")
            end_sub(sub, out, topic, ["over-psk"], "PSK -V %s" % v)
        # the identity is the user: outside its ACL nothing is delivered
        r = subprocess.run(["mosquitto_sub"] + good + ["-t", "other/x", "-C", "1", "-W", "2",
                                                      "-d"],
                           capture_output=True, text=True, timeout=pmq.patience(10))
        check(re.search(r"Subscribed \(mid: \d+\): 135\b", r.stdout + r.stderr),
              "a subscription outside sensor-1's ACL was not refused with 0x87:\n%s" %
              (r.stdout + r.stderr))
        for identity, key, what in (("sensor-1", "0badc0de0badc0de", "a wrong key"),
                                    ("sensor-9", "00112233445566778899aabbccddeeff",
                                     "an unknown identity")):
            r = subprocess.run(["mosquitto_pub"] + mosquitto_psk(b, identity, key) + [
                "-t", "psk/x", "-m", "no"], capture_output=True, text=True,
                timeout=pmq.patience(10))
            check(r.returncode != 0, "%s got in: %s" % (what, r.stdout + r.stderr))
        r = subprocess.run([OPENSSL, "s_client", "-connect", addr(port), "-tls1_2", "-brief",
                            "-psk_identity", "sensor-2", "-psk", "0badc0de0badc0de"],
                           input="", capture_output=True, text=True, timeout=pmq.patience(10))
        check("CONNECTION ESTABLISHED" in r.stdout + r.stderr and
              "PSK" in r.stdout + r.stderr, "TLS 1.2 with a PSK suite failed:\n%s" %
              (r.stdout + r.stderr))
        b.check_alive("after the PSK clients")
        check(b.stop() == 0, "promptmqd did not stop cleanly")
    finally:
        b.cleanup()


# ---------------------------------------------------------------------------
# Configurations refused

def dash_t_refused(tmp, tls, *patterns):
    """promptmqd -t refuses the tls group tls, saying patterns."""
    conf = os.path.join(tmp, "t.conf")
    with open(conf, "w") as f:
        f.write(tls_conf({}, tls))
    r = subprocess.run([pmq.PROMPTMQD, "-t", "-c", conf], capture_output=True, text=True,
                       timeout=pmq.patience(10))
    out = r.stdout + r.stderr
    check(r.returncode != 0, "-t accepted tls %s:\n%s" % (tls, out))
    for p in patterns:
        check(p in out, "-t on tls %s: the message lacks %r:\n%s" % (tls, p, out))


def start_refused(tmp, tls, *alternatives):
    """promptmqd does not start with the tls group tls; its output has
    every pattern of one of alternatives, and no child was started."""
    b = pmq.Broker(workers=1, name="tlsbad", conf_values={})
    try:
        b.write_conf(text=tls_conf({}, tls))
        b.start(wait_ready=False)
        pmq.wait_for(lambda: b.proc.poll() is not None, 10,
                     "promptmqd to refuse tls %s" % tls)
        out = b.log()
        check(b.proc.returncode != 0, "started with tls %s:\n%s" % (tls, out))
        check(any(all(p in out for p in alt) for alt in alternatives),
              "tls %s: the message lacks %s:\n%s" % (
                  tls, " or ".join(repr(a) for a in alternatives), out))
        check("child started" not in out, "a child was started:\n%s" % out)
        print("refused: %s" % "; ".join(line for line in out.splitlines() if "tls." in line))
    finally:
        b.stop()
        b.cleanup()


def configurations(tmp, certs):
    port = pmq.free_port()
    pair = {"bind": addr(port), "cert-file": certs.pem("server1"),
            "key-file": certs.key("server1")}
    dash_t_refused(tmp, {"bind": addr(port)}, "tls.cert-file")
    dash_t_refused(tmp, dict(pair, **{"require-certificate": True}),
                 "tls.require-certificate")
    dash_t_refused(tmp, dict(pair, **{"use-identity-as-username": True}),
                 "tls.use-identity-as-username")
    conf = os.path.join(tmp, "t.conf")
    with open(conf, "w") as f:
        f.write(tls_conf({}, dict(pair, **{"ca-file": certs.pem("ca"),
                                           "require-certificate": True})))
    r = subprocess.run([pmq.PROMPTMQD, "-t", "-c", conf], capture_output=True, text=True,
                       timeout=pmq.patience(10))
    check(r.returncode == 0 and "configuration OK" in r.stdout,
          "-t on a good TLS configuration: %d %s" % (r.returncode, r.stdout + r.stderr))

    bad = os.path.join(tmp, "bad-psk")
    with open(bad, "w") as f:
        f.write("# keys\nsensor-1:0011\nsensor-2:xyz1\n")
    start_refused(tmp, {"bind": addr(port), "psk-file": bad},
                  ("tls.psk-file", bad + ":3", "hexadecimal"))
    missing = os.path.join(tmp, "missing.pem")
    start_refused(tmp, dict(pair, **{"cert-file": missing}), ("tls.cert-file", missing))
    start_refused(tmp, dict(pair, **{"key-file": certs.key("server2")}),
                  ("tls.key-file", certs.key("server2")),
                  ("tls.cert-file", certs.pem("server1")))


def test():
    if not OPENSSL:
        print("SKIP: tls.py: no openssl command to make certificates with")
        return pmq.SKIP
    tmp = tempfile.mkdtemp(prefix="tls.", dir="/tmp")
    os.chmod(tmp, 0o755)
    try:
        certs = Certs(tmp)
        configurations(tmp, certs)
        serving(tmp, certs)
        mutual(tmp, certs)
        psk(tmp, certs)
        bind_reload(tmp, certs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


pmq.run_test(test, promptmqd_only="promptmqd's TLS options, log lines and reloads")
