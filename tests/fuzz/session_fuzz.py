#!/usr/bin/env python3
"""session_fuzz.py - a black-box fuzzer of whole MQTT sessions against
the real promptmqd.

fuzz_mqtt_decode.c fuzzes one packet through the decoder; this drives
the daemon itself (supervisor, two workers, walsvc) with several
concurrent clients, each running random sessions: a CONNECT at level 3,
4 or 5 with random flags and properties (will, session expiry, receive
maximum, maximum packet size, topic alias maximum, an authentication
method, clean start 0 resuming an earlier client id), then a random
sequence of SUBSCRIBE, UNSUBSCRIBE, PUBLISH at every QoS, right and
wrong acknowledgements, early PUBREL, PINGREQ, AUTH, a second CONNECT,
DISCONNECT with random reasons, or an abrupt close in the middle of a
packet.  Any packet may be mutated (bit flips, truncation, a changed
Remaining Length, a duplicated property, random bytes appended or
inserted) and sent in several pieces with small delays.

Oracles, checked all along and at the end:

1) the supervisor and its children are the processes started (no child
   "exited" or "killed by signal" in the log, the pids unchanged);
2) no AddressSanitizer / UndefinedBehaviorSanitizer / LeakSanitizer
   report and no "internal error" (panic) in the broker's log;
3) every packet the broker sends is a well-formed MQTT packet a server
   may send at the connection's level (check_reply());
4) a fresh, well-behaved client can connect, subscribe, publish at
   QoS 1 and receive its message, every --check-every seconds;
5) the resident memory of the workers and walsvc does not keep growing:
   at the end it is within 2 x + 128 MB of what it was a third of the
   way through;
6) promptmqd stops on SIGTERM with status 0.

One seed reproduces the random choices of the whole run: client i's
session k draws from random.Random("SEED/i/k"); what it does in answer
to the broker's packets (acknowledgements) draws from a second
generator of its own, so timing changes those replies but never the
rest.  The seed is printed.  On a failure, every byte sent in the last
--window seconds (all clients, time-stamped, by connection) is written
to a replay file, and --replay FILE sends it again, with its timing, to
a new broker and checks the same oracles.

Usage:
  PMQ_BUILDDIR=build-asan tests/fuzz/session_fuzz.py --seconds 600 [--seed N]
  PMQ_BUILDDIR=build-asan tests/fuzz/session_fuzz.py --replay FILE
"""

import argparse
import collections
import os
import random
import re
import select
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
import pmq  # noqa: E402
from pmq import (CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP,  # noqa: E402
                 SUBACK, UNSUBACK, PINGRESP, DISCONNECT, AUTH, PROPERTIES,
                 encode_props, mqtt_str, packet, publish_packet, subscribe_packet,
                 unsubscribe_packet, puback_packet, pubrec_packet, pubrel_packet,
                 pubcomp_packet, disconnect_packet, auth_packet, PINGREQ_PACKET)

SANITIZER = re.compile(r"ERROR: (?:Address|Leak|Memory|Thread)Sanitizer|runtime error:|"
                       r"Sanitizer:DEADLYSIGNAL|SUMMARY: \w+Sanitizer|internal error")
CHILD_DIED = re.compile(r"child (?:killed by signal|exited)[^\n]*")


class Violation(Exception):
    pass


# ---------------------------------------------------------------------------
# What a server may send (oracle 3).

# Reason codes (5.0) a server may put in each packet; 3.1 and 3.1.1 use
# CONNACK return codes 0-5 and SUBACK codes 0-2 and 0x80.
REASONS = {
    CONNACK: {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
              0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F},
    PUBACK: {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
    PUBREC: {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
    PUBREL: {0x00, 0x92},
    PUBCOMP: {0x00, 0x92},
    SUBACK: {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2},
    UNSUBACK: {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91},
    DISCONNECT: {0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F,
                 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C,
                 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2},
    AUTH: {0x00, 0x18},
}
# Properties a server may put in each packet (5.0, 2.2.2.2).
ACK_PROPS = {0x1F, 0x26}
SERVER_PROPS = {
    CONNACK: {0x11, 0x12, 0x13, 0x15, 0x16, 0x1A, 0x1C, 0x1F, 0x21, 0x22, 0x24,
              0x25, 0x26, 0x27, 0x28, 0x29, 0x2A},
    PUBLISH: {0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26},
    PUBACK: ACK_PROPS, PUBREC: ACK_PROPS, PUBREL: ACK_PROPS, PUBCOMP: ACK_PROPS,
    SUBACK: ACK_PROPS, UNSUBACK: ACK_PROPS,
    DISCONNECT: {0x1C, 0x1F, 0x26},     # never Session Expiry (MQTT-3.14.2-2)
    AUTH: {0x15, 0x16, 0x1F, 0x26},
}
REPEATABLE = {0x26, 0x0B}
WIDTH = {"byte": 1, "int2": 2, "int4": 4}


def property_ids(data, i, end):
    """The identifiers of the properties in data[i:end], in order; a
    Violation if one overruns end or is unknown."""
    ids = []
    while i < end:
        pid = data[i]
        i += 1
        if pid not in PROPERTIES:
            raise Violation("unknown property 0x%02x" % pid)
        kind = PROPERTIES[pid][1]
        if kind in WIDTH:
            i += WIDTH[kind]
        elif kind == "varint":
            i = pmq.read_varint(data, i)[1]
        else:
            for _ in range(2 if kind == "pair" else 1):
                i += 2 + struct.unpack("!H", data[i:i + 2])[0]
        ids.append(pid)
    if i != end:
        raise Violation("a property overruns the property length")
    return ids


def connect_level(data):
    """The protocol level of a CONNECT's bytes (3, 4, 5), else None."""
    try:
        if data[0] != CONNECT << 4:
            return None
        i = pmq.read_varint(data, 1)[1]
        n = struct.unpack("!H", data[i:i + 2])[0]
        level = data[i + 2 + n]
    except (IndexError, struct.error):
        return None
    return level if level in (3, 4, 5) else None


class ReplyChecker:
    """Oracle 3 for one connection: feed() the bytes the broker sent;
    every whole packet is checked against what a server may send.

    level: the connection's protocol level, read from the first packet
    sent (None: not a CONNECT with a known level; only the fixed header
    is checked then).  limits: what an unmutated CONNECT asked for
    ({clean, max_size, alias_max}), None when it was mutated."""

    def __init__(self):
        self.level = None
        self.limits = None
        self.buf = b""
        self.connack = None     # its reason code once received
        self.ended = False      # a DISCONNECT came
        self.aliases = set()    # topic aliases the server set
        self.received = []      # decoded Packets, in order

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            if len(self.buf) >= 5 and all(b & 0x80 for b in self.buf[1:5]):
                raise Violation("a Remaining Length of more than four bytes")
            got = pmq.split_packet(self.buf)
            if not got:
                return out
            raw, self.buf = got
            try:
                p = self.check(raw)
            except (IndexError, struct.error, UnicodeDecodeError, pmq.TestFailure) as e:
                raise Violation("%r in %s" % (e, raw[:64].hex()))
            except Violation as e:
                raise Violation("%s in %s" % (e, raw[:64].hex()))
            self.received.append(p)
            out.append(p)

    def check(self, raw):
        ptype, flags = raw[0] >> 4, raw[0] & 15
        start = pmq.read_varint(raw, 1)[1]
        if start > 2 and raw[start - 1] == 0:
            raise Violation("a Remaining Length not in its shortest form")
        body = raw[start:]
        level = self.level
        name = pmq.PACKET_NAMES.get(ptype, "type %d" % ptype)
        allowed = {CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK,
                   PINGRESP}
        if level in (5, None):
            allowed |= {DISCONNECT, AUTH}
        if ptype not in allowed:
            raise Violation("%s is not a packet a server sends at level %s" % (name, level))
        if self.ended:
            raise Violation("%s after the broker's DISCONNECT" % name)
        if self.connack is None and ptype not in (CONNACK, AUTH, DISCONNECT):
            raise Violation("%s before the CONNACK" % name)
        if self.connack is not None and ptype == CONNACK:
            raise Violation("a second CONNACK")
        if self.connack not in (None, 0) and ptype != DISCONNECT:
            raise Violation("%s after a refusing CONNACK 0x%02x" % (name, self.connack))
        if ptype == PUBLISH:
            if (flags >> 1) & 3 == 3 or (flags & 8 and not flags & 6):
                raise Violation("PUBLISH flags %x" % flags)
        elif flags != (2 if ptype == PUBREL else 0):
            raise Violation("%s with fixed header flags %x" % (name, flags))
        if self.limits and self.limits["max_size"] and len(raw) > self.limits["max_size"]:
            raise Violation("%s of %d bytes, over the client's Maximum Packet Size %d" %
                            (name, len(raw), self.limits["max_size"]))
        if level is None:
            if ptype == CONNACK:
                self.connack = body[1] if len(body) > 1 else 0xff
            self.ended = ptype == DISCONNECT
            return pmq.Packet(ptype, flags, b"", 4)
        self.check_body(ptype, flags, body, level, name)
        p = pmq.packet_of(raw, level)
        if ptype == CONNACK:
            self.connack = p.reason
        elif ptype == DISCONNECT:
            self.ended = True
        elif ptype == PUBLISH:
            self.check_publish(p, level)
        return p

    def check_body(self, ptype, flags, body, level, name):
        """Lengths, reason codes and properties of a packet's body."""
        i = 0
        if ptype == CONNACK:
            i = 2
            if len(body) < 2 or body[0] > 1:
                raise Violation("CONNACK flags or length")
            codes = REASONS[CONNACK] if level == 5 else range(6)
            if body[1] not in codes:
                raise Violation("CONNACK code 0x%02x" % body[1])
            if body[0] and body[1]:
                raise Violation("session present with a refusing CONNACK")
            if body[0] and self.limits and self.limits["clean"]:
                raise Violation("session present after a clean start")
        elif ptype == PUBLISH:
            n = struct.unpack("!H", body[:2])[0]
            i = 2 + n + (2 if flags & 6 else 0)
            if len(body) < i:
                raise Violation("PUBLISH shorter than its topic and id")
            if flags & 6 and struct.unpack("!H", body[i - 2:i])[0] == 0:
                raise Violation("PUBLISH with packet identifier 0")
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK):
            i = 2
            if len(body) < 2 or struct.unpack("!H", body[:2])[0] == 0:
                raise Violation("%s without a packet identifier" % name)
            if ptype in (SUBACK, UNSUBACK):
                if level != 5 and ptype == UNSUBACK and len(body) != 2:
                    raise Violation("UNSUBACK of %d bytes" % len(body))
            elif level != 5 and len(body) != 2:
                raise Violation("%s of %d bytes at level %d" % (name, len(body), level))
            elif len(body) == 2:
                return
            else:
                if body[2] not in REASONS[ptype]:
                    raise Violation("%s reason 0x%02x" % (name, body[2]))
                i = 3
                if len(body) == 3:
                    return
        elif ptype == PINGRESP:
            if body:
                raise Violation("PINGRESP with a body")
            return
        elif ptype in (DISCONNECT, AUTH):
            if not body:
                return
            if body[0] not in REASONS[ptype]:
                raise Violation("%s reason 0x%02x" % (name, body[0]))
            i = 1
            if len(body) == 1:
                return
        if level == 5:
            n, j = pmq.read_varint(body, i)
            ids = property_ids(body, j, j + n)
            bad = [x for x in ids if x not in SERVER_PROPS[ptype]]
            if bad:
                raise Violation("%s with property 0x%02x" % (name, bad[0]))
            twice = [x for x in ids if ids.count(x) > 1 and x not in REPEATABLE]
            if twice:
                raise Violation("%s with property 0x%02x twice" % (name, twice[0]))
            i = j + n
        if ptype == SUBACK:
            legal = REASONS[SUBACK] if level == 5 else {0, 1, 2, 0x80}
            if len(body) <= i or any(c not in legal for c in body[i:]):
                raise Violation("SUBACK codes %s" % body[i:].hex())
        elif ptype == UNSUBACK and level == 5:
            if len(body) <= i or any(c not in REASONS[UNSUBACK] for c in body[i:]):
                raise Violation("UNSUBACK codes %s" % body[i:].hex())
        elif ptype not in (PUBLISH,) and i != len(body):
            raise Violation("%s with %d bytes after its properties" % (name, len(body) - i))

    def check_publish(self, p, level):
        alias = p.props.get("topic-alias")
        if not p.topic and alias is None:
            raise Violation("PUBLISH with an empty topic and no alias")
        if "+" in p.topic or "#" in p.topic or "\0" in p.topic:
            raise Violation("PUBLISH to a topic with a wildcard: %r" % p.topic)
        if 0 in p.props.get("subscription-id", []):
            raise Violation("PUBLISH with Subscription Identifier 0")
        if alias is not None:
            most = self.limits["alias_max"] if self.limits else 65535
            if not 1 <= alias <= most:
                raise Violation("PUBLISH with topic alias %d (client's maximum %d)" %
                                (alias, most))
            if p.topic:
                self.aliases.add(alias)
            elif alias not in self.aliases:
                raise Violation("PUBLISH with alias %d the server never set" % alias)


# ---------------------------------------------------------------------------
# The record of what was sent, for the replay file.

class Recorder:
    """Every send, open and close of every fuzz connection, time-stamped,
    for the last window seconds."""

    def __init__(self, window):
        self.window = window
        self.t0 = time.monotonic()
        self.events = collections.deque()
        self.lock = threading.Lock()

    def add(self, key, kind, data=b""):
        now = time.monotonic() - self.t0
        with self.lock:
            self.events.append((now, key, kind, data))
            while self.events and self.events[0][0] < now - self.window:
                self.events.popleft()

    def write(self, path, header):
        with self.lock:
            events = list(self.events)
        with open(path, "w") as f:
            f.write("# session_fuzz replay: %s\n" % header)
            for t, key, kind, data in events:
                f.write("%.4f %s %s%s\n" % (t, key, kind, " " + data.hex() if data else ""))
        return len(events)


def read_replay(path):
    events = []
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.split()
            data = bytes.fromhex(fields[3]) if len(fields) > 3 else b""
            events.append((float(fields[0]), fields[1], fields[2], data))
    return events


# ---------------------------------------------------------------------------
# One fuzz connection.

class Conn:
    """A client's TCP connection: what it sends is recorded, what it
    receives is checked (oracle 3)."""

    def __init__(self, fuzz, key):
        self.fuzz, self.key = fuzz, key
        self.sock = pmq.tcp_connect(fuzz.port)
        self.sock.settimeout(pmq.patience(10))
        self.checker = ReplyChecker()
        self.first = True
        self.closed = False
        fuzz.recorder.add(key, "open")

    def send(self, data, pieces=1, rng=None):
        """Send data, in several pieces with short delays if pieces > 1;
        False when the broker has closed the connection."""
        if self.first:
            self.checker.level = connect_level(data)
            self.first = False
        cuts = sorted(rng.sample(range(1, len(data)), min(pieces - 1, len(data) - 1))) \
            if pieces > 1 and len(data) > 1 else []
        chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        for n, chunk in enumerate(chunks):
            if n:
                time.sleep(rng.random() * 0.03)
            self.fuzz.recorder.add(self.key, "send", chunk)
            try:
                self.sock.sendall(chunk)
            except socket.timeout:
                self.fuzz.count("send stalled")
                self.closed = True
            except OSError:
                self.closed = True
            if self.closed:
                return False
            self.fuzz.count("bytes sent", len(chunk))
        return True

    def pump(self, timeout):
        """Read what has come within timeout; returns the packets."""
        got = []
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                break
            reset = False
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data, reset = b"", True
            except socket.timeout:
                break
            if not data:
                self.closed = True
                # a packet cut short by a FIN (not an RST, which may
                # drop what was in flight) is the broker's fault
                if self.checker.buf and not reset:
                    self.fuzz.fail("%s: the broker closed the connection in the middle "
                                   "of a packet: %s" % (self.key, self.checker.buf[:64].hex()))
                self.fuzz.count("closed by the broker")
                break
            try:
                got += self.checker.feed(data)
            except Violation as e:
                self.fuzz.fail("%s (level %s): ill-formed reply: %s" %
                               (self.key, self.checker.level, e))
                self.closed = True
        for p in got:
            self.fuzz.count("received " + pmq.PACKET_NAMES[p.type])
        return got

    def close(self):
        if not self.closed:
            self.pump(0)
        self.fuzz.recorder.add(self.key, "close")
        self.sock.close()
        self.closed = True


# ---------------------------------------------------------------------------
# Random sessions.

TOPICS = ["fz/a", "fz/b", "fz/a/b", "fz/c/d/e", "fz/x", "fz/%d", "fz/sys", "fz/\u00e9",
          "fz//a", "fz/r/1", "fz/r/2"]
FILTERS = ["fz/#", "fz/+", "fz/a", "fz/+/b", "#", "+/+", "fz/a/b", "fz/r/#",
           "$share/g1/fz/#", "$share/g2/fz/a", "$share/g1/fz/+", "$SYS/#", "+/#"]
BAD_TOPICS = ["", "fz/+", "fz/#", "fz/\0x", b"\xff", "$share/g/fz", "a" * 300]
BAD_FILTERS = ["", "fz/#/x", "fz+", "$share/g1", "$share//fz/a", "$share/g+/x", "fz/a#",
               "\0", "$share/g1/"]
PAYLOADS = [b"", b"x", b"hello", b"\xff\xfe", "\u00e9t\u00e9".encode(), b"\0" * 7]


def duplicate_property(data, props, rng):
    """data (a packet built with props) with one of its properties twice."""
    block = encode_props(props)
    one = encode_props({(name := rng.choice(list(props))): props[name]})
    inner = block[pmq.read_varint(block, 0)[1]:] + one[pmq.read_varint(one, 0)[1]:]
    body = pmq.body_of(data)
    at = body.find(block)
    body = body[:at] + pmq.varint(len(inner)) + inner + body[at + len(block):]
    return packet(data[0] >> 4, data[0] & 15, body)


def mutate(data, rng):
    """data changed by one random mutation: its name and the bytes."""
    kind = rng.choice(["flip", "flip", "truncate", "length", "insert", "append", "byte"])
    b = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del b[rng.randrange(len(b)):]
    elif kind == "length":
        end = 1     # past the Remaining Length, or what garbage has of one
        while end < min(len(data) - 1, 4) and data[end] & 0x80:
            end += 1
        end = min(end + 1, len(data))
        n = len(data) - end
        b[1:end] = rng.choice([pmq.varint(rng.randrange(n + 20)), pmq.varint(n) + b"",
                               bytes([0x80 | (n & 0x7F), 0x80, 0x80, n >> 7]),
                               b"\xff\xff\xff\x7f", b"\xff\xff\xff\xff\x01", b"\x80",
                               pmq.varint(max(0, n - 1)), pmq.varint(n + 1)])
    elif kind == "insert":
        at = rng.randrange(len(b) + 1)
        b[at:at] = rng.randbytes(rng.randint(1, 8))
    elif kind == "append":
        b += rng.randbytes(rng.randint(1, 16))
    else:
        b[rng.randrange(len(b))] = rng.choice([0, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    return kind, bytes(b)


class Session:
    """One random session of client slot index: one connection or a few
    (a reconnection after an abrupt close)."""

    def __init__(self, fuzz, index, number):
        self.fuzz, self.index, self.number = fuzz, index, number
        seed = "%d/%d/%d" % (fuzz.seed, index, number)
        self.rng = random.Random(seed)
        self.react = random.Random(seed + "/react")
        rng = self.rng
        self.level = rng.choice([3, 4, 5, 5])
        self.p_mutate = rng.choice([0, 0, 0.02, 0.05, 0.1, 0.3])
        # how often a field takes a value the protocol forbids: most
        # sessions must live long enough to reach the deeper states
        self.p_bad = rng.choice([0, 0.005, 0.02, 0.1])
        self.p_split = rng.choice([0, 0.05, 0.3])
        self.ack_mode = rng.choice(["right", "right", "right", "lazy", "none", "chaos"])
        self.next_pid = rng.randrange(1, 65536)
        self.mine = []          # ids of our QoS 2 PUBLISHes
        self.theirs = []        # ids of the broker's PUBLISHes still unacknowledged
        self.conn = None
        self.connections = 0
        self.aliases = set()    # topic aliases set on this connection

    # -- sending ----------------------------------------------------------

    def emit(self, data, props=None):
        """Send one packet, perhaps mutated, perhaps in pieces."""
        if self.conn is None or self.conn.closed:
            return False
        rng = self.rng
        first = self.conn.first
        mutated = False
        if props and self.level == 5 and rng.random() < self.p_mutate:
            data, mutated = duplicate_property(data, props, rng), True
            self.fuzz.count("mutation: duplicated property")
        if data and rng.random() < self.p_mutate:
            kind, data = mutate(data, rng)
            mutated = True
            self.fuzz.count("mutation: " + kind)
        if first and not mutated:
            self.conn.checker.limits = self.limits
        self.fuzz.count("packets sent")
        if not data:
            return True
        pieces = rng.randint(2, 5) if rng.random() < self.p_split else 1
        return self.conn.send(data, pieces, rng)

    def pick(self, good, bad=()):
        """A value from good, or (with probability p_bad) from bad."""
        if bad and self.rng.random() < self.p_bad:
            return self.rng.choice(bad)
        return self.rng.choice(good)

    def props(self, choices):
        """A random subset of choices {name: [values] or ([good], [bad])}."""
        return {name: self.pick(*v) if isinstance(v, tuple) else self.rng.choice(v)
                for name, v in choices.items() if self.rng.random() < 0.3}

    def pid(self):
        rng = self.rng
        r = rng.random()
        if r < self.p_bad:
            return 0
        if r < 0.1:
            return rng.randrange(1, 65536)
        self.next_pid = self.next_pid % 65535 + 1
        return self.next_pid

    def pump(self, timeout):
        """Read what the broker sent; answer it as ack_mode says."""
        if self.conn is None or self.conn.closed:
            return
        for p in self.conn.pump(timeout):
            self.answer(p)

    def answer(self, p):
        react = self.react
        if p.type == PUBLISH and p.qos:
            self.theirs.append((p.qos, p.pid))
        elif p.type == PUBREL:
            self.theirs.append((3, p.pid))
        elif p.type == PUBREC and self.ack_mode != "none" and react.random() < 0.9:
            self.reply(pubrel_packet(p.pid))
            return
        else:
            return
        mode = self.ack_mode
        if mode == "none" or (mode == "lazy" and react.random() < 0.5):
            return
        while self.theirs:
            qos, pid = self.theirs.pop(react.randrange(len(self.theirs))
                                       if mode == "chaos" else 0)
            make = {1: puback_packet, 2: pubrec_packet, 3: pubcomp_packet}[qos]
            if mode == "chaos":
                pid = react.choice([pid, pid, pid ^ 1, 0, react.randrange(65536)])
                make = react.choice([make, make, puback_packet, pubrec_packet,
                                     pubcomp_packet])
                if react.random() < 0.2:
                    self.reply(make(pid))
            self.reply(make(pid))

    def reply(self, data):
        """An acknowledgement, drawn from the reaction generator: the main
        one must not depend on the broker's timing."""
        if self.conn and not self.conn.closed:
            self.fuzz.count("packets sent")
            self.conn.send(data)

    # -- the packets ------------------------------------------------------

    def topic(self):
        rng = self.rng
        t = self.pick(TOPICS, BAD_TOPICS)
        return t % rng.randrange(20) if t == "fz/%d" else t

    def connect(self):
        """A CONNECT with random flags and properties; its client id comes
        from a small pool, so sessions are resumed and taken over."""
        rng, level = self.rng, self.level
        r = rng.random()
        if r < 0.1:
            cid = ""
        elif r < 0.3:
            cid = "fz-shared-%d" % rng.randrange(3)
        else:
            cid = "fz%d-%d" % (self.index, rng.randrange(4))
        clean = rng.random() < 0.5
        keepalive = rng.choice([0, 1, 2, 5, 60, 60, 65535])
        flags = 0x02 if clean else 0
        props = {}
        self.limits = {"clean": clean, "max_size": None, "alias_max": 0}
        if level == 5:
            props = self.props({
                "session-expiry": [0, 1, 3, 30, 0xFFFFFFFF],
                "receive-maximum": ([1, 2, 5, 20, 65535], [0]),
                "maximum-packet-size": ([16, 40, 100, 1000, 100000], [0]),
                "topic-alias-maximum": [0, 1, 3, 10, 65535],
                "request-response-info": ([0, 1], [2]),
                "request-problem-info": ([0, 1], [2]),
                "user-property": [[("k", "v")], [("k", "v"), ("k", "w")]],
            })
            if rng.random() < self.p_bad:   # refused: no method is configured
                props["auth-method"] = rng.choice(["SCRAM-SHA-256", "x"])
                if rng.random() < 0.5:
                    props["auth-data"] = b"n,,n=u,r=x"
            self.limits["max_size"] = props.get("maximum-packet-size")
            self.limits["alias_max"] = props.get("topic-alias-maximum", 0)
        payload = mqtt_str(cid)
        if rng.random() < 0.3:
            flags |= 0x04 | self.pick([0, 1, 2], [3]) << 3 | rng.choice([0, 0x20])
            if level == 5:
                payload += encode_props(self.props({
                    "will-delay": [0, 1, 5], "message-expiry": [0, 1, 100],
                    "payload-format": ([0, 1], [2]), "content-type": ["text/plain"],
                    "response-topic": (["fz/resp"], ["fz/+"]),
                    "correlation-data": [b"c"], "user-property": [[("a", "b")]]}))
            payload += mqtt_str(self.topic()) + mqtt_str(rng.choice(PAYLOADS))
        if rng.random() < 0.15:
            flags |= 0x80
            payload += mqtt_str("user")
        if rng.random() < 0.1:
            flags |= 0x40
            payload += mqtt_str(b"secret")
        if rng.random() < self.p_bad:
            flags |= 0x01   # reserved
        name = b"MQIsdp" if level == 3 else b"MQTT"
        body = mqtt_str(name) + bytes([level, flags]) + struct.pack("!H", keepalive)
        if level == 5:
            body += encode_props(props)
        return packet(CONNECT, 0, body + payload), props

    def subscribe(self):
        rng, level = self.rng, self.level
        filters = []
        for _ in range(rng.randint(1, 3)):
            f = self.pick(FILTERS, BAD_FILTERS)
            opts = self.pick([0, 1, 2], [3, rng.randrange(256)])
            if level == 5 and rng.random() < 0.5:
                opts |= self.pick([0, 4, 8, 0x10, 0x20], [0x30, 0x40, 0x80])
            filters.append((f, opts))
        props = {}
        if level == 5:
            props = self.props({"subscription-id": ([1, 7, 268435455], [0]),
                                     "user-property": [[("s", "1")]]})
        return subscribe_packet(self.pid(), filters, level, props), props

    def unsubscribe(self):
        rng = self.rng
        filters = [self.pick(FILTERS, BAD_FILTERS) for _ in range(rng.randint(1, 3))]
        props = self.props({"user-property": [[("u", "1")]]}) if self.level == 5 else {}
        return unsubscribe_packet(self.pid(), filters, self.level, props,
                                  self.pick([2], [0, 3])), props

    def publish(self):
        rng, level = self.rng, self.level
        qos = self.pick([0, 1, 2], [3])
        pid = self.pid()
        topic = self.topic()
        props = {}
        if level == 5:
            props = self.props({
                "topic-alias": ([1, 2, 3, 10], [0, 11, 65535]),
                "message-expiry": [0, 1, 60],
                "payload-format": ([0, 1], [2]),
                "content-type": (["text/plain"], [b"\xff"]),
                "response-topic": (["fz/resp"], ["fz/#", ""]),
                "correlation-data": [b"id-1"],
                "user-property": [[("a", "1")], [("a", "1"), ("b", "2")] * 3],
            })
            if rng.random() < self.p_bad:
                props["subscription-id"] = 1    # a client must not send it
            alias = props.get("topic-alias")
            if alias in self.aliases and rng.random() < 0.5 or \
                    alias and rng.random() < self.p_bad:
                topic = ""      # the alias stands for it
            elif alias:
                self.aliases.add(alias)
        r = rng.random()
        payload = rng.choice(PAYLOADS) if r < 0.8 else rng.randbytes(
            rng.choice([100, 1000, 5000]))
        data = publish_packet(topic, payload, qos & 3, pid, rng.random() < 0.2, level,
                              props, dup=qos and rng.random() < 0.1 or
                              rng.random() < self.p_bad)
        if qos == 3:
            data = bytes([data[0] | 6]) + data[1:]
        if qos == 2:
            self.mine.append(pid)
        return data, props

    def disconnect(self):
        rng = self.rng
        if self.level != 5:
            return disconnect_packet(self.level), None
        props = self.props({"session-expiry": [0, 1, 60],
                                 "reason-string": ["bye"],
                                 "server-reference": ["elsewhere"]})
        reason = rng.choice([0, 0, 4, 0x80, 0x81, 0x8E, rng.randrange(256)])
        return disconnect_packet(5, reason, props), props

    def ack(self):
        """An acknowledgement the session chose, right or wrong."""
        rng = self.rng
        make = rng.choice([puback_packet, pubrec_packet, pubrel_packet, pubcomp_packet])
        if self.mine and rng.random() < 0.5:
            pid = self.mine.pop(rng.randrange(len(self.mine)))
            make = pubrel_packet    # early, or in order
        else:
            pid = self.pick([1, self.next_pid, rng.randrange(1, 65536)], [0])
        data = make(pid)
        if self.level == 5 and rng.random() < 0.3:
            data = packet(data[0] >> 4, data[0] & 15, data[2:] + bytes(
                [rng.choice([0, 0x10, 0x80, 0x92, rng.randrange(256)])]) +
                (encode_props({"reason-string": "r"}) if rng.random() < 0.5 else b""))
        return data, None

    # -- the session ------------------------------------------------------

    def open(self):
        self.connections += 1
        self.aliases = set()
        key = "c%d.s%d.%d" % (self.index, self.number, self.connections)
        try:
            self.conn = Conn(self.fuzz, key)
        except OSError as e:
            self.fuzz.count("connect failed")
            self.fuzz.note("%s: connection refused or timed out: %s" % (key, e))
            self.conn = None
            return False
        self.fuzz.count("connections")
        self.emit(*self.connect())
        self.pump(self.rng.choice([0, 0.05, 0.2]))
        return True

    def run(self):
        rng = self.rng
        self.fuzz.count("sessions")
        if not self.open():
            return
        actions = [("publish", 30), ("subscribe", 12), ("unsubscribe", 5), ("ack", 8),
                   ("ping", 4), ("pump", 10), ("sleep", 3), ("auth", 2), ("connect", 1),
                   ("garbage", 1), ("partial", 1), ("disconnect", 1), ("reconnect", 1)]
        names = [a for a, _ in actions]
        weights = [w for _, w in actions]
        for _ in range(rng.randint(1, 60)):
            if self.fuzz.stop.is_set():
                break
            action = rng.choices(names, weights)[0]
            if action in ("publish", "subscribe", "unsubscribe", "ack", "disconnect"):
                self.emit(*getattr(self, action)())
            elif action == "ping":
                self.emit(PINGREQ_PACKET)
            elif action == "pump":
                self.pump(rng.choice([0.01, 0.05, 0.2]))
            elif action == "sleep":
                time.sleep(rng.choice([0.01, 0.1, 0.5, 2.5]))
            elif action == "auth" and (self.level == 5 or rng.random() < self.p_bad):
                props = {"auth-method": rng.choice(["SCRAM-SHA-256", "x"])}
                if rng.random() < 0.5:
                    props["auth-data"] = rng.randbytes(rng.randint(0, 20))
                self.emit(auth_packet(rng.choice([0, 0x18, 0x19, 0x42]), props), props)
            elif action == "connect":
                self.emit(*self.connect())
            elif action == "garbage":
                self.emit(bytes([rng.randrange(256)]) + rng.randbytes(rng.randint(0, 12)))
            elif action == "partial":
                data, _ = self.publish()
                if self.conn and not self.conn.closed:
                    self.conn.send(data[:rng.randrange(1, len(data))])
                break
            elif action == "reconnect":
                self.conn.close()
                self.fuzz.count("abrupt closes")
                if not self.open():
                    return
            if action == "disconnect":
                break
            self.pump(0)
            if self.conn is None or self.conn.closed:
                break
        if self.conn:
            if not self.conn.closed and rng.random() < 0.5:
                self.pump(0.1)
            self.conn.close()


# ---------------------------------------------------------------------------
# The run: clients, the monitor, the oracles.

class Fuzz:
    def __init__(self, args, broker):
        self.args = args
        self.seed = args.seed
        self.broker = broker
        self.port = broker.port
        self.recorder = Recorder(args.window)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.failures = []
        self.notes = []
        self.log_pos = 0
        self.rss = []               # (seconds, {name: kB})
        self.t0 = time.monotonic()

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] += n

    def note(self, text):
        with self.lock:
            self.notes.append(text)

    def fail(self, what):
        with self.lock:
            self.failures.append(what)
        print("FAILURE: %s" % what, flush=True)
        self.stop.set()

    def client(self, index):
        number = 0
        try:
            while not self.stop.is_set() and number < self.args.sessions:
                Session(self, index, number).run()
                number += 1
        except Exception as e:     # a bug of the fuzzer, not of the broker
            import traceback
            traceback.print_exc()
            self.fail("client %d session %d: the fuzzer raised %r" % (index, number, e))

    def scan_log(self):
        """Oracles 1 (the log's part) and 2 on the lines written since
        the last scan; the children's pids (oracle 1)."""
        with open(self.broker.logpath, "rb") as f:
            f.seek(self.log_pos)
            text = f.read()
        # whole lines only: a report may be half written
        cut = text.rfind(b"\n") + 1
        self.log_pos += cut
        text = text[:cut].decode("utf-8", "replace")
        for rx, what in ((SANITIZER, "sanitizer report or panic"),
                         (CHILD_DIED, "a child process died")):
            m = rx.search(text)
            if m:
                at = m.start()
                self.fail("%s in the broker's log: %s" % (
                    what, text[max(0, text.rfind("\n", 0, at) - 2000):at + 3000]))
                return
        b = self.broker
        if b.proc.poll() is not None:
            self.fail("promptmqd exited with status %s" % b.proc.returncode)
        elif b.children() != b.started_children:
            self.fail("children changed from %s to %s" % (b.started_children, b.children()))

    def sample_rss(self):
        sizes = {}
        for pid, comm in self.broker.started_children.items():
            try:
                sizes["%s[%d]" % (comm, pid)] = int(
                    pmq.proc_status(pid)["VmRSS"].split()[0])
            except (OSError, KeyError):
                pass
        self.rss.append((time.monotonic() - self.t0, sizes))

    def control(self, n):
        """Oracle 4: a well-behaved client connects, subscribes, publishes
        at QoS 1 and gets its message."""
        cid = "ctl-%d-%d" % (os.getpid(), n)
        topic = "ctl/%d/%d" % (os.getpid(), n)
        r = None
        try:
            r = pmq.RawClient(self.port, 5, cid)
            r.connect(cid, props={"session-expiry": 0})
            pmq.check(r.subscribe(topic, 1) == [1], "the control client's SUBACK")
            r.publish(topic, b"ping %d" % n, 1)
            p = r.message(what="its own message on %s" % topic)
            pmq.check((p.topic, p.payload) == (topic, b"ping %d" % n),
                      "the control client got %r" % p)
            r.send(disconnect_packet(5))
        except (pmq.TestFailure, OSError) as e:
            self.fail("liveness: the control client %s failed: %s" % (cid, e))
        finally:
            if r:
                r.close()
        self.count("liveness checks")

    def check_memory(self):
        """Oracle 5 over the samples taken."""
        if len(self.rss) < 3:
            return
        end = self.rss[-1][0]
        warm = [s for t, s in self.rss if t >= end / 3] or [self.rss[-1][1]]
        warm = warm[0]
        for name, kb in self.rss[-1][1].items():
            if name in warm and kb > 2 * warm[name] + 128 * 1024:
                self.fail("%s grew from %d kB (a third of the way) to %d kB" %
                          (name, warm[name], kb))

    def monitor(self, deadline):
        n = 0
        next_check = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            if all(not t.is_alive() for t in self.threads):
                break
            if time.monotonic() >= next_check:
                self.scan_log()
                if self.stop.is_set():
                    break
                self.sample_rss()
                self.control(n)
                n += 1
                next_check = time.monotonic() + self.args.check_every
                self.progress()
            time.sleep(0.2)

    def progress(self):
        c = self.counts
        print("[%5.0fs] sessions %d, packets %d, mutated %d, received %d, rss %s" % (
            time.monotonic() - self.t0, c["sessions"], c["packets sent"],
            sum(v for k, v in c.items() if k.startswith("mutation:")),
            sum(v for k, v in c.items() if k.startswith("received ")),
            " ".join("%s=%dM" % (k, v // 1024) for k, v in
                     sorted(self.rss[-1][1].items())) if self.rss else "-"), flush=True)

    def run(self):
        deadline = time.monotonic() + self.args.seconds
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                        for i in range(self.args.clients)]
        for t in self.threads:
            t.start()
        self.monitor(deadline)
        self.stop.set()
        for t in self.threads:
            t.join(pmq.patience(30))
            if t.is_alive():
                self.fail("a fuzz client thread did not stop")
        if not self.failures:
            self.scan_log()
        if not self.failures:
            self.sample_rss()
            self.control(-1)
            self.scan_log()
        self.check_memory()


def stop_broker(fuzz):
    """Oracle 6 and the reports written at exit (LeakSanitizer)."""
    b = fuzz.broker
    status = b.stop()
    if status != 0:
        fuzz.fail("promptmqd stopped with status %s" % status)
    with open(b.logpath, "rb") as f:
        f.seek(fuzz.log_pos)
        text = f.read().decode("utf-8", "replace")
    m = SANITIZER.search(text)
    if m:
        fuzz.fail("sanitizer report at exit: %s" %
                  text[max(0, m.start() - 500):m.start() + 3000])


def start_broker(args):
    env = {}
    # a smaller quarantine keeps AddressSanitizer's resident memory
    # (oracle 5) near what the program uses; 64 MB still finds most
    # uses after free
    env["ASAN_OPTIONS"] = "quarantine_size_mb=64:" + os.environ.get("ASAN_OPTIONS", "")
    extra = ["--storage-memory-buffer", "16MB"]
    b = pmq.PromptMQ(workers=args.workers, max_packet_size=args.max_packet_size,
                     name="sessfuzz", env=env, log_level=args.log_level, args=extra)
    return b.start()


def report(fuzz, args):
    c = fuzz.counts
    print("--- session_fuzz: seed %d, %d clients, %.0f s, broker %s" % (
        fuzz.seed, args.clients, time.monotonic() - fuzz.t0, pmq.BUILDDIR))
    for k in sorted(c):
        print("  %-34s %d" % (k, c[k]))
    if fuzz.rss:
        first, last = fuzz.rss[0][1], fuzz.rss[-1][1]
        most = {k: max(s.get(k, 0) for _, s in fuzz.rss) for k in last}
        for k in sorted(last):
            print("  rss %-30s %d kB first, %d kB most, %d kB last" %
                  (k, first.get(k, 0), most[k], last[k]))
    for n in fuzz.notes[:10]:
        print("  note: %s" % n)


def fuzz_main(args):
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 32)
    print("session_fuzz: seed %d (rerun with --seed %d), %d clients, %d workers, %ds, "
          "build %s" % (args.seed, args.seed, args.clients, args.workers, args.seconds,
                        pmq.BUILDDIR), flush=True)
    b = start_broker(args)
    print("session_fuzz: broker on port %d, log %s" % (b.port, b.logpath), flush=True)
    fuzz = Fuzz(args, b)
    try:
        fuzz.run()
        if fuzz.failures:
            path = os.path.abspath(os.path.join(args.out, "session_fuzz-%d.replay" % args.seed))
            n = fuzz.recorder.write(path, "seed=%d clients=%d failure=%s" % (
                args.seed, args.clients, fuzz.failures[0][:200].replace("\n", " ")))
            print("session_fuzz: %d events of the last %ds written to %s "
                  "(--replay it)" % (n, args.window, path))
        stop_broker(fuzz)
    finally:
        keep = bool(fuzz.failures)
        if keep:
            print("session_fuzz: the broker's directory is kept: %s" % b.base)
        b.cleanup(keep=keep)
    report(fuzz, args)
    return 1 if fuzz.failures else 0


def replay_main(args):
    """Send a replay file's bytes again, with their timing, to a new
    broker, and check the oracles."""
    events = read_replay(args.replay)
    args.seed = args.seed or 0
    b = start_broker(args)
    print("replay: %d events, broker on port %d, log %s" % (len(events), b.port, b.logpath))
    fuzz = Fuzz(args, b)
    conns = {}
    t0 = time.monotonic()
    base = events[0][0] if events else 0
    try:
        for t, key, kind, data in events:
            while True:
                left = t - base - (time.monotonic() - t0)
                if left <= 0:
                    break
                for c in list(conns.values()):
                    c.pump(0)
                time.sleep(min(left, 0.01))
            if kind == "open":
                if key in conns:
                    conns.pop(key).close()
                try:
                    conns[key] = Conn(fuzz, key)
                except OSError as e:
                    print("replay: %s: %s" % (key, e))
            elif key not in conns:
                continue
            elif kind == "send":
                conns[key].send(data)
            elif kind == "close":
                conns.pop(key).close()
            fuzz.count("events")
        time.sleep(1)
        for c in conns.values():
            c.close()
        fuzz.threads = []
        fuzz.scan_log()
        if not fuzz.failures:
            fuzz.control(0)
            fuzz.scan_log()
        stop_broker(fuzz)
    finally:
        b.cleanup(keep=bool(fuzz.failures))
    report(fuzz, args)
    print("replay: %s" % ("FAILED: " + fuzz.failures[0][:2000] if fuzz.failures
                          else "no oracle failed"))
    return 1 if fuzz.failures else 0


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, help="the run's seed (default: a random one)")
    ap.add_argument("--seconds", type=float, default=60, help="how long to fuzz")
    ap.add_argument("--sessions", type=int, default=1 << 30,
                    help="sessions per client at most")
    ap.add_argument("--clients", type=int, default=6, help="concurrent clients")
    ap.add_argument("--workers", type=int, default=2, help="broker worker processes")
    ap.add_argument("--max-packet-size", type=int, help="the broker's, in bytes")
    ap.add_argument("--log-level", default="info", help="the broker's log level")
    ap.add_argument("--check-every", type=float, default=3,
                    help="seconds between liveness and log checks")
    ap.add_argument("--window", type=float, default=60,
                    help="seconds of traffic a replay file keeps")
    ap.add_argument("--out", default=".", help="where replay files go")
    ap.add_argument("--replay", help="replay this file instead of fuzzing")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    return replay_main(args) if args.replay else fuzz_main(args)


if __name__ == "__main__":
    sys.exit(main())
