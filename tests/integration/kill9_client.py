"""The publishers of the kill -9 scenario (kill9lib.persistent_client: a
paho Client with a persistent session that reconnects on its own) keep
the QoS 2 exchange they were in when the broker went away, however many
reconnection attempts fail before one succeeds, against a scripted
server (no broker; packet by packet):

- MQTT 3.1.1 and 5.0: a QoS 2 PUBLISH gets PUBREC; the client sends
  PUBREL; the server closes the connection without PUBCOMP and stops
  listening, so the client's reconnection attempts are refused (as
  while promptmqd restarts); once two have failed the server listens
  again and answers CONNECT with session present: the first packet
  after CONNECT is the PUBREL again, same packet id [MQTT-4.4.0-1], and
  not the PUBLISH, which the client must not send again once it sent
  the PUBREL (MQTT 4.3.3); PUBCOMP then completes the message.

paho 1.6.1 alone sends the PUBLISH again (DUP 0, same packet id) after
a failed attempt; a broker that took the PUBREL takes it as a new
message, and the scenario saw a QoS 2 message delivered twice.  What
paho does without kill9lib's correction is printed, not checked: a paho
that gets it right makes the correction unneeded, not wrong."""

import socket
import time

import kill9lib
import pmq
from pmq import check

TOPIC = "kill9-client/q2"


class ScriptedServer:
    """One port; a connection at a time, read and answered by the test."""

    def __init__(self, port):
        self.port = port
        self.listener = self.conn = None
        self.buf = b""

    def listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(1)
        self.listener = s

    def accept(self, what):
        self.listener.settimeout(pmq.patience(5))
        try:
            self.conn, _ = self.listener.accept()
        except socket.timeout:
            raise pmq.TestFailure("no connection came for %s" % what)
        self.buf = b""

    def stop_listening(self):
        self.listener.close()
        self.listener = None

    def drop(self):
        """Close the connection, as a broker killed with SIGKILL."""
        self.conn.close()
        self.conn = None

    def send(self, data):
        self.conn.sendall(data)

    def recv(self, version, what):
        """The next packet from the client (pmq.Packet)."""
        deadline = time.monotonic() + pmq.patience(5)
        while True:
            got = pmq.split_packet(self.buf)
            if got:
                raw, self.buf = got
                return pmq.packet_of(raw, version)
            left = deadline - time.monotonic()
            check(left > 0, "expected %s from the client, got nothing" % what)
            self.conn.settimeout(left)
            try:
                data = self.conn.recv(65536)
            except socket.timeout:
                data = None
            check(data != b"", "expected %s, the client closed the connection" % what)
            if data:
                self.buf += data

    def connack(self, version, present):
        body = bytes([int(present), 0]) + (b"\x00" if version == 5 else b"")
        self.send(pmq.packet(pmq.CONNACK, 0, body))

    def expect(self, version, ptype, what):
        p = self.recv(version, what)
        check(p.type == ptype, "expected %s, got %r" % (what, p))
        return p


def released_then_refused(c, srv, version, what):
    """PUBLISH, PUBREC, PUBREL, the connection gone without PUBCOMP, two
    reconnection attempts refused, then a connection with session
    present.  Returns the packet id and the first packet the client sent
    after its CONNECT."""
    srv.listen()
    c.start_connect(pmq.session_props(kill9lib.EXPIRY) if version == 5 else None)
    srv.accept("the first connection")
    srv.expect(version, pmq.CONNECT, "CONNECT")
    srv.connack(version, False)
    c.finish_connect()
    c.c.publish(TOPIC, b"released before the outage", 2)
    p = srv.expect(version, pmq.PUBLISH, "the QoS 2 PUBLISH")
    check(p.qos == 2, "%s: expected QoS 2, got %r" % (what, p))
    srv.send(pmq.pubrec_packet(p.pid))
    rel = srv.expect(version, pmq.PUBREL, "the PUBREL")
    check(rel.pid == p.pid, "%s: PUBREL %d for PUBLISH %d" % (what, rel.pid, p.pid))
    # the broker is gone: no PUBCOMP, and nothing listens for a while
    srv.stop_listening()
    srv.drop()
    pmq.wait_for(lambda: c.sent["connection attempts failed"] >= 2, 10,
                 "%s: two refused reconnection attempts" % what)
    srv.listen()
    srv.accept("the reconnection")
    srv.expect(version, pmq.CONNECT, "CONNECT again")
    srv.connack(version, True)
    return p.pid, srv.recv(version, "what the client sends again")


def plain_client(port, version):
    """A paho Client as kill9lib makes one, without keep_pubrel()."""
    c = pmq.Client(port, pmq.unique("k9plain"), version, clean=False, reconnect=True)
    c.sent = {"connection attempts failed": 0}

    def on_log(client, userdata, level, buf):
        if buf.startswith("Connection failed"):
            c.sent["connection attempts failed"] += 1
    c.c.on_log = on_log
    return c


def test():
    for version in (4, 5):
        name = "5.0" if version == 5 else "3.1.1"
        what = "kill9lib's QoS 2 publisher, %s" % name
        srv = ScriptedServer(pmq.free_port())
        c = kill9lib.persistent_client(srv.port, "q2v%d" % version, version)
        try:
            pid, p = released_then_refused(c, srv, version, what)
            check(p.type == pmq.PUBREL and p.pid == pid and p.flags == 2,
                  "%s: after a reconnection that followed refused attempts, expected "
                  "PUBREL %d again, got %r" % (what, pid, p))
            srv.send(pmq.pubcomp_packet(pid))
            c.wait(lambda: pid in c.acked, 5, "%s: the message completed" % what)
            check(not c.sent["PUBLISH after its PUBREL"],
                  "%s: counted a PUBLISH after its PUBREL" % what)
        finally:
            c.close()
            if srv.conn:
                srv.drop()
            if srv.listener:
                srv.stop_listening()

        srv = ScriptedServer(pmq.free_port())
        c = plain_client(srv.port, version)
        try:
            pid, p = released_then_refused(c, srv, version, "plain paho %s" % name)
            print("paho %s without keep_pubrel(), after refused attempts: %s" % (
                name, "PUBREL again" if p.type == pmq.PUBREL else
                "%r, the PUBLISH again, which kill9lib corrects" % p))
        finally:
            c.close()
            if srv.conn:
                srv.drop()
            if srv.listener:
                srv.stop_listening()


pmq.run_test(test)
