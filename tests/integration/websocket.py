"""MQTT over WebSocket (the websocket group): paho's websockets transport
(5.0 and 3.1.1), plain and over TLS, with MQTT clients on the other
worker, and a hand-made WebSocket client for what paho will not send.
Skipped (77) without the openssl command (the wss part needs
certificates).

- `promptmqd -t` refuses websocket.tls without tls.cert-file and a
  websocket.path that is not a path, naming the option.
- websocket.bind opens one socket per worker (kind=websocket).  QoS 0
  and 1 messages go both ways between WebSocket clients and plain MQTT
  clients, each on the other worker; 300 KB messages cross in both
  directions.  MQTT.js (Debian's node-mqtt, the library of browser
  clients), 5.0 and 3.1.1, exchanges messages with a plain client over
  ws:// and wss://.
- The upgrade: no subprotocol, "mqtt" and "mqttv3.1" are accepted (the
  answer names the one taken); another subprotocol, another path and a
  plain HTTP request get no WebSocket (404 for the request).  With
  websocket.origins set by reload, a listed Origin (any case) and a
  request without Origin are upgraded, another Origin is not.  MQTT
  packets split over several frames, and several packets in one frame,
  are read as one stream.  A DISCONNECT sent with the close frame in one
  write, the socket closed at once, still reaches the worker (no will).
- Bad input: a text frame closes the connection (MQTT-6.0.0-1); random
  bytes, 64 KiB of HTTP headers, a frame announcing 2^62 bytes of
  garbage and a TLS ClientHello are closed; connections that stall (TCP
  only, half a request, an upgrade and no CONNECT) are closed after
  server.connect-timeout; the other clients notice nothing.
- A WebSocket subscriber that stops reading while 16 MB are published
  to it: the worker does not spin (it uses under a quarter of a core),
  its other clients are served, and the subscriber gets the start of the
  stream intact when it reads again; after it closed in the middle of
  the stream, new WebSocket clients are served on every worker.
- websocket.bind removed by reload refuses new WebSocket connections
  while one connected before stays; added back, it serves again.
- SIGTERM: the 5.0 WebSocket clients on both workers get DISCONNECT
  0x8B (server shutting down), as plain clients do.
- Secure WebSocket (websocket.tls): paho with the test CA gets in and
  talks to a plain client on the other worker; the served certificate
  is tls.cert-file's, and after the file is replaced and SIGHUP'd, new
  connections get the new one while the old client keeps talking; with
  tls.require-certificate and use-identity-as-username, a client
  certificate's CN is the user name (its ACL applies) and a client
  without a certificate gets no session.
"""

import base64
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time

import pmq
from pmq import check

from certs import OPENSSL, Certs

CONNECT_TIMEOUT = 2     # server.connect-timeout here, seconds
PATH = "/mqtt"
NODE = shutil.which("node") or shutil.which("nodejs")
MQTTJS = os.path.join(pmq.SRCDIR, "tests", "integration", "mqttjs_client.js")
# Debian's node-mqtt, for a nodejs from elsewhere too
NODE_PATH = "/usr/share/nodejs:/usr/lib/nodejs"


def ws_port(b):
    """The WebSocket listener's port, from the log, after it was checked
    to have one socket per worker."""
    m = re.search(r"listening addr=127\.0\.0\.1:(\d+) slots=(\d+) kind=websocket",
                  b.log()[b.start_mark:])
    check(m and int(m.group(2)) == b.workers, "no listening line kind=websocket with "
          "one slot per worker")
    port = int(m.group(1))
    n = pmq.listening_sockets(port)
    check(n == b.workers, "%d sockets listen on the WebSocket port, expected %d" %
          (n, b.workers))
    return port


# ---------------------------------------------------------------------------
# A WebSocket client by hand

class Ws:
    """A WebSocket connection made by hand: handshake() sends the upgrade
    request and returns the status and headers; frame() sends one masked
    frame; read() returns the payload of the binary frames that come."""

    def __init__(self, port, ctx=None):
        self.s = pmq.tcp_connect(port)
        if ctx is not None:
            self.s = ctx.wrap_socket(self.s, server_hostname="localhost")
        self.s.settimeout(pmq.patience(5))
        self.buf = b""          # bytes received, not yet taken
        self.mqtt = b""         # MQTT bytes of frames, not yet read

    def close(self):
        self.s.close()

    def handshake(self, path=PATH, protocols=("mqtt",), extra=b""):
        key = base64.b64encode(os.urandom(16))
        req = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
               b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n")
        if protocols:
            req += b"Sec-WebSocket-Protocol: " + ", ".join(protocols).encode() + b"\r\n"
        self.s.sendall(req + extra + b"\r\n")
        return self.response()

    def response(self):
        """(status, {header: value}) of the HTTP answer; status 0 when the
        connection closed first."""
        while b"\r\n\r\n" not in self.buf:
            try:
                chunk = self.s.recv(4096)
            except (ConnectionError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return 0, {}
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    @staticmethod
    def encode(payload, opcode=2, fin=True):
        """One masked frame, as a client sends it."""
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    def frame(self, payload, opcode=2, fin=True):
        self.s.sendall(self.encode(payload, opcode, fin))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        """(opcode, payload) of the next frame from the broker."""
        b0, b1 = self._need(2)
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack(">H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._need(8))[0]
        return b0 & 0x0f, self._need(n)

    def read(self, n):
        """n bytes of MQTT from binary frames (the rest of the last frame
        is kept for the next read)."""
        while len(self.mqtt) < n:
            op, payload = self.read_frame()
            check(op in (0, 2), "a frame of opcode %d instead of binary data" % op)
            self.mqtt += payload
        data, self.mqtt = self.mqtt[:n], self.mqtt[n:]
        return data

    def closed(self, what):
        """The broker closes the connection well before any time-out;
        returns what came last (an HTTP answer, a close frame)."""
        deadline = time.monotonic() + pmq.patience(CONNECT_TIMEOUT + 1)
        data = self.buf
        try:
            while True:
                self.s.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = self.s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            raise pmq.TestFailure("%s: still open after %.1fs" %
                                  (what, pmq.patience(CONNECT_TIMEOUT + 1)))
        except (ConnectionError, ssl.SSLError, OSError) as e:
            self.last = data
            return "closed (%s) after %d bytes" % (e, len(data))
        self.last = data
        if data.startswith(b"HTTP/"):
            return "closed after %r" % data.split(b"\r\n")[0]
        i = data.rfind(b"\x88\x02")
        if i != -1:
            return "closed after a close frame %d" % struct.unpack(">H", data[i + 2:i + 4])[0]
        return "closed after %d bytes" % len(data)


def upgraded(port, what, path=PATH, protocols=("mqtt",), ctx=None):
    ws = Ws(port, ctx)
    status, headers = ws.handshake(path, protocols)
    check(status == 101, "%s: HTTP %s instead of 101" % (what, status))
    return ws, headers


def connack_over(ws, what):
    """A 3.1.1 CONNECT in two frames, then a PINGREQ and a DISCONNECT in
    one: the CONNACK and the PINGRESP come."""
    pkt = pmq.connect_packet(pmq.unique("ws-raw"), 4)
    ws.frame(pkt[:5])
    ws.frame(pkt[5:])
    check(ws.read(4) == b"\x20\x02\x00\x00", "%s: no CONNACK" % what)
    ws.frame(b"\xc0\x00")
    check(ws.read(2) == b"\xd0\x00", "%s: no PINGRESP" % what)


# ---------------------------------------------------------------------------
# Plain WebSocket

def ws_client(port, name, version=5, tls_ca=None):
    setup = tls_ca and (lambda c: c.c.tls_set(ca_certs=tls_ca))
    return pmq.inbox_client(port, name, version, "websockets", setup)


def tcp_client(b, name, version=5):
    return pmq.inbox_client(b.port, name, version)


def talk(a, z, what, payload=b""):
    tag = pmq.unique(what).encode() + payload
    for src, dst in ((a, z), (z, a)):
        for qos in (0, 1):
            src.publish(dst.client_id + "/inbox", tag + b" q%d" % qos, qos)
    for c in (a, z):
        got = sorted((m.topic, m.payload, m.qos) for m in c.collect(2, 10, what))
        want = [(c.client_id + "/inbox", tag + b" q%d" % q, q) for q in (0, 1)]
        check(got == want, "%s: %s got %s" % (what, c.client_id,
                                              [(t, len(p), q) for t, p, q in got]))


def logged_as(b, c, transport):
    """The log names the client's transport."""
    b.wait_log(r"client connected client=%s addr=[^\n]* transport=%s\n" %
               (re.escape(c.client_id), transport))


def pubsub(b, port):
    """WebSocket clients on each worker talk to plain clients on the other
    one, small and large messages, 5.0 and 3.1.1."""
    wss = pmq.spread(b, lambda i: ws_client(port, "ws%d" % i))
    tcps = pmq.spread(b, lambda i: tcp_client(b, "tcp%d" % i))
    logged_as(b, wss[0][0], "ws")
    logged_as(b, tcps[0][0], "tcp")
    for s in range(b.slots):
        other = (s + 1) % b.slots
        talk(wss[s][0], tcps[other][0], "ws on worker %d, tcp on worker %d" % (s, other))
        talk(wss[s][0], tcps[other][0], "300 KB messages", os.urandom(300000))
    v4 = ws_client(port, "ws-v4", 4)
    try:
        talk(v4, tcps[0][0], "a 3.1.1 WebSocket client")
    finally:
        v4.close()
    return wss, tcps


def mqttjs(b, url, what, ca=None):
    """MQTT.js (node-mqtt, the library of browser clients) over url, 5.0
    and 3.1.1, exchanges a QoS 1 message each way with a plain client."""
    env = dict(os.environ, NODE_PATH=NODE_PATH)
    for version in (5, 4):
        cid = pmq.unique("mqttjs")
        inbox, outbox = cid + "/in", cid + "/out"
        tcp = pmq.inbox_client(b.port, "js-peer")
        node = subprocess.Popen([NODE, MQTTJS, url, str(version), cid, inbox, outbox] +
                                ([ca] if ca else []), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        try:
            lines = pmq.Lines(node)
            lines.wait(lambda l: l == "ready", 20, "%s: MQTT.js %d ready" % (what, version))
            check(tcp.subscribe(outbox, 1) == [1], "SUBACK for %s" % outbox)
            tcp.publish(inbox, b"from tcp", 1)
            lines.wait(lambda l: l == "got %s from tcp" % inbox, 10,
                       "%s: MQTT.js %d to get the message" % (what, version))
            tcp.expect(outbox, b"echo from tcp", 1, timeout=10)
            check(node.wait(pmq.patience(10)) == 0, "%s: MQTT.js %d exited with %s: %s" %
                  (what, version, node.returncode, lines.all[-5:]))
            print("%s: MQTT.js %d exchanged messages" % (what, version))
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()
            tcp.close()


def origins(b, port, conf):
    """websocket.origins: a listed Origin (any case) and none at all get
    the WebSocket, another Origin does not."""
    def refused():
        ws = Ws(port)
        try:
            return ws.handshake(extra=b"Origin: https://evil.example\r\n")[0] != 101
        finally:
            ws.close()
    applied = r"worker/%d\[\d+\] info: WebSocket settings applied [^\n]*origins=\"%s\""
    mark = b.mark()
    b.write_conf(text=conf(origins="https://app.example.org,http://localhost:8080"))
    b.reload()
    for s in range(b.slots):
        b.wait_log(applied % (s, re.escape("https://app.example.org,http://localhost:8080")),
                   10, mark)
    check(refused(), "an Origin not listed got the WebSocket")
    for origin, want in ((b"https://APP.example.org", 101), (None, 101),
                         (b"http://localhost:8080", 101), (b"https://evil.example", 0),
                         (b"https://app.example.org.evil", 0)):
        ws = Ws(port)
        try:
            status, _ = ws.handshake(extra=b"Origin: " + origin + b"\r\n" if origin else b"")
            check((status == 101) == (want == 101), "Origin %r: HTTP %s" % (origin, status))
            if status == 101:
                connack_over(ws, "Origin %r" % origin)
        finally:
            ws.close()
    mark = b.mark()
    b.write_conf(text=conf())
    b.reload()
    for s in range(b.slots):
        b.wait_log(applied % (s, ""), 10, mark)


def upgrades(port):
    for protocols, want in (((), None), (("mqtt",), "mqtt"), (("mqttv3.1",), "mqttv3.1")):
        ws, headers = upgraded(port, "subprotocols %s" % (protocols,), protocols=protocols)
        try:
            check(headers.get("sec-websocket-protocol") == want,
                  "subprotocols %s: the answer names %r" %
                  (protocols, headers.get("sec-websocket-protocol")))
            connack_over(ws, "subprotocols %s" % (protocols,))
        finally:
            ws.close()
    for path, protocols, what in ((PATH, ("foo",), "subprotocol foo"),
                                  (PATH, ("promptmq-relay",), "the relay's own protocol"),
                                  ("/other", ("mqtt",), "another path")):
        ws = Ws(port)
        try:
            status, _ = ws.handshake(path, protocols)
            check(status != 101, "%s: upgraded" % what)
            print("%s: HTTP %s" % (what, status))
        finally:
            ws.close()
    s = pmq.tcp_connect(port)
    try:
        s.settimeout(pmq.patience(5))
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        line = s.recv(4096).split(b"\r\n")[0]
        check(line.startswith(b"HTTP/1.1 404"), "a plain GET: %r, expected 404" % line)
    finally:
        s.close()


def bad_input(b, port, wss, tcps):
    ws, _ = upgraded(port, "text frame")
    try:
        ws.frame(pmq.connect_packet(pmq.unique("text"), 4), opcode=1)
        print("a text frame: %s" % ws.closed("a text frame"))
        check(ws.last[:1] == b"\x88" and ws.last[2:4] == struct.pack(">H", 1003),
              "a text frame: no close frame 1003 (unsupported data): %r" % ws.last[:16])
    finally:
        ws.close()
    ws, _ = upgraded(port, "huge frame")
    try:
        mask = os.urandom(4)
        ws.s.sendall(b"\x82\xff" + struct.pack(">Q", 1 << 62) + mask + os.urandom(65536))
        print("a frame of 2^62 bytes: %s" % ws.closed("a frame of 2^62 bytes"))
    finally:
        ws.close()
    hello_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    half = hello_ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        half.do_handshake()
    except ssl.SSLWantReadError:
        pass
    for data, what in ((os.urandom(65536), "64 KiB of random bytes"),
                       (b"GET /mqtt HTTP/1.1\r\nX: " + b"a" * 65536 + b"\r\n\r\n",
                        "64 KiB of HTTP headers"),
                       (outgoing.read(), "a TLS ClientHello")):
        ws = Ws(port)
        try:
            try:
                ws.s.sendall(data)
            except ConnectionError:
                pass
            print("%s: %s" % (what, ws.closed(what)))
        finally:
            ws.close()
    talk(wss[0][0], tcps[b.slots - 1][0], "after bad WebSocket input")


def stuck(b, port, wss, tcps):
    """Connections that stall are closed after server.connect-timeout."""
    socks = []
    try:
        for what in ("TCP only", "half a request", "an upgrade and no CONNECT"):
            ws = Ws(port)
            if what == "half a request":
                ws.s.sendall(b"GET /mqtt HTTP/1.1\r\nHost: loc")
            elif what == "an upgrade and no CONNECT":
                status, _ = ws.handshake()
                check(status == 101, "upgrade: HTTP %s" % status)
            socks.append((ws, what, time.monotonic()))
        talk(wss[0][0], tcps[b.slots - 1][0], "while WebSocket connections stall")
        for ws, what, opened in socks:
            how = ws.closed(what)
            took = time.monotonic() - opened
            check(took >= CONNECT_TIMEOUT / 2, "%s: closed after %.2fs, before "
                  "connect-timeout (%ds)" % (what, took, CONNECT_TIMEOUT))
            print("%s: %s after %.2fs" % (what, how, took))
    finally:
        for ws, _, _ in socks:
            ws.close()


def goodbye(b, port):
    """A DISCONNECT and the close frame in one write, the socket closed
    at once (as MQTT.js's end() does): the DISCONNECT still reaches the
    worker, so the client's will is not published."""
    topic = pmq.unique("ws-will") + "/x"
    watcher = pmq.inbox_client(b.port, "will-watch")
    try:
        check(watcher.subscribe(topic, 0) == [0], "SUBACK for the will's topic")
        cid = pmq.unique("goodbye")
        ws, _ = upgraded(port, "goodbye")
        try:
            body = pmq.mqtt_str("MQTT") + bytes([4, 0x06]) + struct.pack("!H", 60)
            ws.frame(pmq.packet(pmq.CONNECT, 0, body + pmq.mqtt_str(cid) +
                                pmq.mqtt_str(topic) + pmq.mqtt_str(b"will")))
            check(ws.read(4) == b"\x20\x02\x00\x00", "goodbye: no CONNACK")
            ws.s.sendall(Ws.encode(b"\xe0\x00") + Ws.encode(struct.pack(">H", 1000), 8))
        finally:
            ws.close()
        b.wait_log(r"client disconnected client=%s addr=[^\n]* reason=\"client "
                   r"disconnected\"" % re.escape(cid))
        watcher.publish(topic, b"marker", 0)
        m = watcher.collect(1, 5, "the marker")[0]
        check(m.payload == b"marker", "the will of a client that sent DISCONNECT was "
              "published: %r" % m.payload)
    finally:
        watcher.close()


def slow_reader(b, port, wss, tcps):
    """A subscriber that stops reading: the broker holds what it can,
    does not spin, and serves the others; the subscriber's stream is
    intact from the start."""
    topic = pmq.unique("slow") + "/x"
    ws, _ = upgraded(port, "slow reader")
    try:
        ws.frame(pmq.connect_packet(pmq.unique("slow"), 4))
        check(ws.read(4) == b"\x20\x02\x00\x00", "slow reader: no CONNACK")
        ws.frame(pmq.subscribe_packet(1, [(topic, 0)], 4))
        check(ws.read(5)[:1] == b"\x90", "slow reader: no SUBACK")
        ws.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        pub = tcps[0][0]
        chunk = os.urandom(8192)
        for i in range(2000):
            pub.publish(topic, struct.pack(">I", i) + chunk, 0, wait=False)
        talk(wss[0][0], tcps[b.slots - 1][0], "while a WebSocket reader is stuck")
        workers = b.worker_pids()
        before, t0 = pmq.cpu_ticks(workers), time.monotonic()
        time.sleep(2)       # a measured interval, not a wait for a condition
        used = pmq.cpu_ticks(workers) - before
        secs = time.monotonic() - t0
        hz = os.sysconf("SC_CLK_TCK")
        check(used < hz * secs * 0.25, "the workers used %.0f%% of a core for %.1fs while "
              "a WebSocket reader was stuck" % (100.0 * used / (hz * secs), secs))
        print("stuck WebSocket reader: workers used %d ticks in %.1fs" % (used, secs))
        # what comes first is the first message, whole: 0x30, a two-byte
        # remaining length, the topic, the payload
        head = ws.read(5 + len(topic) + 4 + len(chunk))
        check(head[:1] == b"\x30" and head[5 + len(topic):] == struct.pack(">I", 0) + chunk,
              "the stuck reader's first message is not the first one published, whole")
    finally:
        ws.close()
    # it went away in the middle of a stream: every worker's WebSocket
    # side still answers (libwebsockets 4.1 could spin on such a client)
    pmq.close_all(pmq.spread(b, lambda i: ws_client(port, "after-slow%d" % i)))


def stop_told(b, port):
    """SIGTERM: 5.0 WebSocket clients on every worker get DISCONNECT 0x8B
    before the close, as plain clients do."""
    raws, slots = [], set()
    try:
        for i in range(40):
            if len(slots) == b.slots:
                break
            ws, _ = upgraded(port, "before the stop")
            raws.append(ws)
            cid = pmq.unique("stop")
            ws.frame(pmq.connect_packet(cid, 5))
            head = ws.read(2)
            check(head[:1] == b"\x20", "before the stop: no CONNACK")
            ws.read(head[1])
            slots.update(b.connection_slots(cid, 1))
        check(len(slots) == b.slots, "WebSocket clients did not reach every worker")
        for ws in raws:
            ws.s.settimeout(pmq.patience(5))
        check(b.stop() == 0, "promptmqd did not stop cleanly")
        for ws in raws:
            got = ws.mqtt
            try:
                while True:
                    op, payload = ws.read_frame()
                    if op == 8:
                        break
                    got += payload
            except (ConnectionError, socket.timeout, OSError):
                pass
            check(got[:1] == b"\xe0" and got[2:3] == b"\x8b",
                  "a WebSocket client got %r at the stop, expected DISCONNECT 0x8B" % got)
        print("stop: %d WebSocket clients on %d workers got 0x8B" % (len(raws), len(slots)))
    finally:
        for ws in raws:
            ws.close()


def bind_reload(b, port, conf):
    keep, _ = upgraded(port, "before the reload")
    try:
        connack_over(keep, "before the reload")
        mark = b.mark()
        b.write_conf(text=conf(bind=""))
        b.reload()
        b.wait_log(r"worker/\d+\[\d+\] info: listening socket removed addr=127\.0\.0\.1:%d"
                   % port, 10, mark)
        pmq.wait_for(lambda: pmq.listening_sockets(port) == 0, 10,
                     "the WebSocket port to close")
        try:
            refused = Ws(port)
        except ConnectionError:
            refused = None
        check(refused is None, "a WebSocket connection after websocket.bind was removed")
        keep.frame(b"\xc0\x00")
        check(keep.read(2) == b"\xd0\x00", "the client connected before the reload: "
              "no PINGRESP")
        mark = b.mark()
        b.write_conf(text=conf())
        b.reload()
        pmq.wait_for(lambda: pmq.listening_sockets(port) == b.workers, 10,
                     "the WebSocket port to open again")
        ws, _ = upgraded(port, "after websocket.bind came back")
        try:
            connack_over(ws, "after websocket.bind came back")
        finally:
            ws.close()
    finally:
        keep.close()


def plain(tmp):
    port = pmq.free_port()

    def conf(bind="127.0.0.1:%d" % port, origins=""):
        return pmq.conf_text({"server.connect-timeout": "%ds" % CONNECT_TIMEOUT,
                              "websocket.bind": bind, "websocket.origins": origins})

    b = pmq.PromptMQ(workers=2, name="ws", conf_values={})
    b.write_conf(text=conf())
    wss, tcps = {}, {}
    try:
        b.start()
        check(ws_port(b) == port, "the WebSocket port is not websocket.bind's")
        wss, tcps = pubsub(b, port)
        mqttjs(b, "ws://127.0.0.1:%d%s" % (port, PATH), "ws")
        upgrades(port)
        origins(b, port, conf)
        goodbye(b, port)
        bad_input(b, port, wss, tcps)
        stuck(b, port, wss, tcps)
        slow_reader(b, port, wss, tcps)
        bind_reload(b, port, conf)
        talk(wss[0][0], tcps[b.slots - 1][0], "at the end")
        b.check_alive("after the WebSocket tests")
        pmq.close_all(wss)
        pmq.close_all(tcps)
        wss, tcps = {}, {}
        stop_told(b, port)
    finally:
        pmq.close_all(wss)
        pmq.close_all(tcps)
        b.cleanup()


# ---------------------------------------------------------------------------
# Secure WebSocket

def served_der(port, certs):
    s = pmq.tcp_connect(port)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.pem("ca"))
    try:
        t = ctx.wrap_socket(s, server_hostname="localhost")
        return t.getpeercert(binary_form=True)
    finally:
        s.close()


def secure(tmp, certs):
    port = pmq.free_port()
    cert, key = os.path.join(tmp, "ws-cert.pem"), os.path.join(tmp, "ws-key.pem")
    shutil.copy(certs.pem("server1"), cert)
    shutil.copy(certs.key("server1"), key)
    acl = os.path.join(tmp, "ws-acl")
    with open(acl, "w") as f:
        f.write("user tls-user\ntopic readwrite tls/#\n")
    b = pmq.PromptMQ(workers=2, name="wss", conf_values={
        "server.connect-timeout": "%ds" % CONNECT_TIMEOUT, "websocket.bind": "127.0.0.1:%d" % port,
        "websocket.tls": True, "tls.cert-file": cert, "tls.key-file": key})
    clients = []
    try:
        b.start()
        check(ws_port(b) == port, "the WebSocket port is not websocket.bind's")
        check(served_der(port, certs) == certs.der("server1"), "wss: not tls.cert-file's "
              "certificate")
        a = ws_client(port, "wss", tls_ca=certs.pem("ca"))
        clients.append(a)
        logged_as(b, a, "wss")
        tcps = pmq.spread(b, lambda i: tcp_client(b, "tcp%d" % i))
        clients += [c for cs in tcps.values() for c in cs]
        for s in range(b.slots):
            talk(a, tcps[s][0], "wss and tcp on worker %d" % s)
        talk(a, tcps[0][0], "300 KB over wss", os.urandom(300000))
        mqttjs(b, "wss://localhost:%d%s" % (port, PATH), "wss", ca=certs.pem("ca"))
        # a new certificate, by reload: new connections get it
        shutil.copy(certs.pem("server2"), cert)
        shutil.copy(certs.key("server2"), key)
        b.reload()
        pmq.wait_for(lambda: served_der(port, certs) == certs.der("server2"), 10,
                     "wss to serve the new certificate", interval=0.1)
        for i in range(4):      # both workers, most likely
            check(served_der(port, certs) == certs.der("server2"),
                  "a new wss connection got the old certificate")
        check(a.connected() and not a.disconnects, "the wss client connected before the "
              "reload was disconnected")
        talk(a, tcps[b.slots - 1][0], "wss after the certificate changed")
        n = ws_client(port, "wss-new", tls_ca=certs.pem("ca"))
        clients.append(n)
        talk(n, a, "two wss clients across the reload")
        # client certificates: the CN is the user name
        b.write_conf(text=pmq.conf_text({
            "server.connect-timeout": "%ds" % CONNECT_TIMEOUT,
            "websocket.bind": "127.0.0.1:%d" % port, "websocket.tls": True,
            "tls.cert-file": cert, "tls.key-file": key, "tls.ca-file": certs.pem("ca"),
            "tls.require-certificate": True, "tls.use-identity-as-username": True,
            "auth.acl-file": acl}))
        b.reload()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(certs.pem("ca"))

        def refused():
            # TLS 1.3: the client may be done before the broker has
            # looked for its certificate; the refusal comes on the read
            try:
                ws = Ws(port, ctx)
            except (ssl.SSLError, ConnectionError):
                return True
            try:
                status, _ = ws.handshake()
                return status != 101
            except (ssl.SSLError, ConnectionError):
                return True
            finally:
                ws.close()
        pmq.wait_for(refused, 10, "wss without a client certificate to be refused",
                     interval=0.1)
        u = pmq.unique("wss-id")
        idc = pmq.Client(port, u, 5, transport="websockets")
        idc.c.tls_set(ca_certs=certs.pem("ca"), certfile=certs.pem("client"),
                      keyfile=certs.key("client"))
        clients.append(idc)
        idc.connect()
        check(idc.subscribe("tls/%s" % u, 1) == [1], "tls-user's subscription refused")
        check(idc.subscribe("other/%s" % u, 1) == [0x87],
              "a subscription outside tls-user's topics: expected SUBACK 0x87")
        idc.publish("tls/%s" % u, b"as tls-user", 1)
        idc.expect("tls/%s" % u, b"as tls-user", 1)
        b.check_alive("after secure WebSocket")
        for c in clients:
            c.close()
        clients = []
        check(b.stop() == 0, "promptmqd did not stop cleanly")
    finally:
        for c in clients:
            c.close()
        b.cleanup()


def configurations(tmp):
    for values, words in (({"websocket.bind": "127.0.0.1:0", "websocket.tls": True},
                           ("tls.cert-file", "websocket.tls")),
                          ({"websocket.path": "mqtt"}, ("websocket.path", "mqtt"))):
        conf = os.path.join(tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write(pmq.conf_text(values))
        r = subprocess.run([pmq.PROMPTMQD, "-t", "-c", conf], capture_output=True,
                           text=True, timeout=pmq.patience(10))
        check(r.returncode != 0, "promptmqd -t accepted %s" % values)
        for w in words:
            check(w in r.stderr, "promptmqd -t on %s: %r does not name %s" %
                  (values, r.stderr, w))


def test():
    if not OPENSSL:
        print("SKIP: websocket.py: no openssl command to make certificates with")
        return pmq.SKIP
    r = subprocess.run([NODE or "node", "-e", "require('mqtt')"], capture_output=True,
                       env=dict(os.environ, NODE_PATH=NODE_PATH)) if NODE else None
    check(r is not None and r.returncode == 0, "no nodejs with MQTT.js (Debian: nodejs, "
          "node-mqtt; ./bootstrap installs them)")
    tmp = tempfile.mkdtemp(prefix="ws.", dir="/tmp")
    try:
        configurations(tmp)
        plain(tmp)
        secure(tmp, Certs(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


pmq.run_test(test, promptmqd_only="promptmqd's WebSocket options, log lines and reloads")
