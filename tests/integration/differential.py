"""Differential test: the same raw packets to PromptMQ and to Mosquitto,
the replies compared byte for byte.

Both brokers start fresh on free loopback ports: promptmqd with two
workers and Debian's mosquitto 2.0.11 (its dpkg version is printed), both
with a Maximum Packet Size of LIMIT bytes (Mosquitto's temporary
configuration also gets promptmqd's maximum QoS, retain availability and
10 topic aliases: pmq.Mosquitto).  The cases are in
differential_cases.py.  For every case, each broker gets fresh
connections and the same bytes, step by step; after each step the
harness collects that connection's reply:

- a step that starts with a CONNECT sends it and reads its answer
  (as below) before the rest: one line of the transcript all the same;
- it sends PINGREQ (unless the broker closed the connection), then reads
  until the PINGRESP and until every packet of the step that asks for an
  answer (SUBSCRIBE, UNSUBSCRIBE, QoS 1/2 PUBLISH, PUBREL) has one, or
  until the broker closes the connection (FIN or RST), which is recorded
  as "closed".  promptmqd may answer the PINGREQ before a SUBACK that
  waits for the other workers or a PUBACK that waits for the log, so the
  PINGRESP alone is no barrier; the PINGRESP itself is left out;
- a step may say how many PUBLISH packets the connection must have
  received (a subscriber's step after a publisher's);
- every wait is bounded by pmq.patience(): a broker that does not answer
  is recorded as "timeout", never waited for without end.

Normalisation, field by field, and nothing else:

- MQTT 5 properties are compared sorted by identifier, User Properties
  keeping their relative order: the specification leaves the order free
  (2.2.2.2) and Mosquitto writes Topic Alias Maximum before Receive
  Maximum;
- CONNACK Assigned Client Identifier (0x12): both brokers make
  `auto-` + a random upper-case UUID; the form is checked, the value is
  replaced by `auto-<uuid>`;

A case whose replies differ fails, with the hex of both transcripts and
the packets decoded, unless it is in DELIBERATE (a difference the
specification or docs/mosquitto.md justifies, with the exact replies of
both brokers).  A listed case whose replies change, or come to agree,
fails too: the list stays exact.
"""

import re
import socket
import struct
import subprocess
import time

import pmq
from pmq import check

import differential_cases as cases

LIMIT = cases.LIMIT

# ---------------------------------------------------------------------------
# Deliberate differences: the case, why (the clause), and the transcript
# of each broker (one string per step: "client: packets in hex [closed]").


class Listed:
    def __init__(self, why, promptmq, mosquitto):
        self.why, self.promptmq, self.mosquitto = why, promptmq, mosquitto


CONNACK4 = "20020000"
CONNACK5 = "200e00000b21001422000a2700000400"   # Receive Maximum 20, Topic
                                                # Alias Maximum 10, Maximum
                                                # Packet Size LIMIT, sorted


def one_step(why, promptmq, mosquitto, connack=CONNACK5):
    """A case of one step by client a that CONNECTs first: its CONNACK,
    then what each broker answers to the rest."""
    return Listed(why, [("a: %s %s" % (connack, promptmq)).rstrip()],
                  [("a: %s %s" % (connack, mosquitto)).rstrip()])


def says_why(code, clause):
    """MQTT 5.0 after CONNACK: Mosquitto closes without a word where
    PromptMQ sends DISCONNECT with the reason first, as 4.13.1 says it
    SHOULD (docs/mosquitto.md, "Malformed packets")."""
    return one_step("DISCONNECT 0x%02X before the close (5.0 4.13.1), Mosquitto closes "
                    "silently; %s" % (code, clause), "e001%02x closed" % code, "closed")


def spec_code(code, mosquitto_code, clause):
    """MQTT 5.0: the specification names the reason, Mosquitto gives
    another."""
    return one_step("DISCONNECT 0x%02X, the code %s names; Mosquitto 0x%02X" %
                    (code, clause, mosquitto_code),
                    "e001%02x closed" % code, "e001%02x closed" % mosquitto_code)


def strict(promptmq, clause, connack=CONNACK5, mosquitto=""):
    """Input Mosquitto takes (answers mosquitto) and the specification
    forbids with a MUST (docs/mosquitto.md, "Malformed packets")."""
    return one_step("refused as %s says; Mosquitto takes it" % clause, promptmq, mosquitto,
                    connack)


DELIBERATE = {
    "CONNECT: 3.1 client id of 24 bytes": Listed(
        "3.1 allows 1 to 23 characters and answers return code 2 to more (MQTT 3.1 "
        "section 3.1, Client Identifier); Mosquitto takes any length",
        ["a: 20020002 closed"], ["a: 20020000"]),
    "CONNECT: 5.0 second CONNECT": says_why(0x82, "[MQTT-3.1.0-2]"),
    "SUBSCRIBE: 5.0 QoS 3": spec_code(0x82, 0x81, "3.8.3.1 (Maximum QoS 3)"),
    "SUBSCRIBE: 5.0 retain handling 3": spec_code(0x82, 0x81, "3.8.3.1 (Retain Handling 3)"),
    "SUBSCRIBE: 5.0 no filter": spec_code(0x82, 0x81, "[MQTT-3.8.3-2]"),
    "SUBSCRIBE: 5.0 subscription identifier 0": spec_code(0x82, 0x81, "3.8.2.1.2"),
    "SUBSCRIBE: 5.0 no local on a shared subscription": one_step(
        "a protocol error [MQTT-3.8.3-4]; Mosquitto grants it",
        "e00182 closed", "900400010001"),
    "UNSUBSCRIBE: 5.0 no filter": spec_code(0x82, 0x81, "[MQTT-3.10.3-2]"),
    "PUBLISH: 3.1.1 QoS 0 with DUP": strict("closed", "[MQTT-3.3.1-2]", CONNACK4),
    "PUBLISH: 5.0 QoS 0 with DUP": strict("e00181 closed", "[MQTT-3.3.1-2]"),
    "PUBLISH: 5.0 PUBREL for an unknown id": one_step(
        "PUBCOMP 0x92, Packet Identifier not found (5.0 3.7.2.1); Mosquitto 0x00",
        "7003002c92", "7002002c"),
    "PUBLISH: 5.0 PUBREC for an unknown id": one_step(
        "PUBREL 0x92, Packet Identifier not found (5.0 3.6.2.1); Mosquitto 0x00",
        "6203002d92", "6202002d"),
    "PUBLISH: 5.0 PUBREL with flags 0": says_why(0x81, "[MQTT-3.6.1-1]"),
    "PUBLISH: 5.0 PUBACK packet id 0": says_why(0x82, "[MQTT-2.2.1-3]"),
    "PUBLISH: 5.0 topic alias 0": spec_code(0x94, 0x81, "[MQTT-3.3.2-8] (docs/mosquitto.md, "
                                                         "Topic aliases)"),
    "PUBLISH: 5.0 payload format indicator 2": one_step(
        "a protocol error (3.3.2.3.2 defines 0 and 1 only); Mosquitto takes it",
        "e00182 closed", "4003000110"),
    "PUBLISH: 5.0 subscription identifier from a client": one_step(
        "a protocol error [MQTT-3.3.4-6]; Mosquitto takes it", "e00182 closed", "4003000110"),
    "PUBLISH: 5.0 duplicate property": says_why(0x82, "3.3.2.3.2 (a property twice)"),
    "PUBLISH: 5.0 ill-formed UTF-8 content type": says_why(0x81, "[MQTT-1.5.4-1]"),
    "PUBLISH: 5.0 response topic with a wildcard": one_step(
        "a protocol error [MQTT-3.3.2-14]; Mosquitto takes it", "e00182 closed", "4003000110"),
    "PINGREQ: 3.1.1 PINGREQ with flags": strict("closed", "[MQTT-2.2.2-2]", CONNACK4,
                                                mosquitto="d000"),
    "PINGREQ: 5.0 PINGREQ with flags": strict("e00181 closed", "[MQTT-2.1.3-1]",
                                              mosquitto="d000"),
    "PINGREQ: 5.0 PINGREQ with a body": strict("e00181 closed", "3.12 (no body)",
                                               mosquitto="d000"),
    "PINGREQ: 3.1.1 PINGRESP from a client": strict(
        "closed", "3.13 (server to client) and [MQTT-4.8.0-1]", CONNACK4),
    "DISCONNECT: 5.0 DISCONNECT reason 0x03": says_why(0x82, "3.14.2.1 (no such code)"),
    "DISCONNECT: 5.0 DISCONNECT with flags": says_why(0x81, "[MQTT-2.1.3-1]"),
    "malformed: 3.1.1 Remaining Length not in its shortest form": strict(
        "closed", "[MQTT-1.5.5-1]", CONNACK4, mosquitto="d000"),
    "malformed: 5.0 Remaining Length not in its shortest form": strict(
        "e00181 closed", "[MQTT-1.5.5-1]", mosquitto="d000"),
    "malformed: 3.1.1 SUBACK from a client": strict(
        "closed", "3.9 (server to client) and [MQTT-4.8.0-1]", CONNACK4),
    "malformed: 5.0 Remaining Length of five bytes": says_why(0x81, "1.5.5"),
    "malformed: 5.0 packet type 15": says_why(0x82, "4.12 (AUTH with no method given)"),
    "malformed: 5.0 CONNACK from a client": says_why(0x82, "3.2 (server to client)"),
    "malformed: 5.0 SUBACK from a client": says_why(0x82, "3.9 (server to client)"),
    "malformed: 5.0 AUTH without a method": says_why(0x82, "3.15.2.2.2"),
    "malformed: 5.0 AUTH with a method": says_why(0x82, "4.12 (AUTH with no method given "
                                                        "in CONNECT)"),
}
# Where Mosquitto's reply depends on timing: the case, why, and the
# other transcript it may give, taken as the one both brokers agree on.
MOSQUITTO_RACES = {
    "PUBLISH: 5.0 over the maximum packet size": (
        "Mosquitto closes at the header with the rest of the packet unread, and its "
        "DISCONNECT 0x95 is sometimes lost in the reset that follows",
        ["a: %s closed" % CONNACK5]),
}

# ---------------------------------------------------------------------------
# Reading and describing packets.

def props_offset(ptype, flags, body):
    """Where the property block of a 5.0 packet from the server starts,
    or None when it has none."""
    if ptype == pmq.CONNACK:
        return 2 if len(body) > 2 else None
    if ptype == pmq.PUBLISH:
        n = struct.unpack("!H", body[:2])[0]
        return 2 + n + (2 if (flags >> 1) & 3 else 0)
    if ptype in (pmq.PUBACK, pmq.PUBREC, pmq.PUBREL, pmq.PUBCOMP):
        return 3 if len(body) > 3 else None
    if ptype in (pmq.SUBACK, pmq.UNSUBACK):
        return 2
    if ptype in (pmq.DISCONNECT, pmq.AUTH):
        return 1 if len(body) > 1 else None
    return None


def prop_records(block):
    """The records of a property block (without its length), each as
    (identifier, bytes)."""
    out, i = [], 0
    while i < len(block):
        start = i
        pid = block[i]
        kind = pmq.PROPERTIES.get(pid, (None, "bad"))[1]
        i += 1
        if kind == "byte":
            i += 1
        elif kind == "int2":
            i += 2
        elif kind == "int4":
            i += 4
        elif kind == "varint":
            i = pmq.read_varint(block, i)[1]
        elif kind in ("str", "bin"):
            i += 2 + struct.unpack("!H", block[i:i + 2])[0]
        elif kind == "pair":
            for _ in range(2):
                i += 2 + struct.unpack("!H", block[i:i + 2])[0]
        else:
            raise ValueError("unknown property 0x%02x" % pid)
        out.append((pid, block[start:i]))
    return out


ASSIGNED_ID = re.compile(rb"auto-[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\Z")


def normalise(raw, level):
    """A packet from the server, normalised as the module says."""
    ptype, flags, body = raw[0] >> 4, raw[0] & 15, pmq.body_of(raw)
    if level != 5:
        return raw
    try:
        at = props_offset(ptype, flags, body)
        if at is None:
            return raw
        length, start = pmq.read_varint(body, at)
        records = prop_records(body[start:start + length])
    except (ValueError, IndexError, struct.error):
        return raw      # left as it came: the comparison shows it
    fixed = []
    for pid, rec in records:
        if ptype == pmq.CONNACK and pid == 0x12:
            value = rec[3:]
            rec = rec[:1] + pmq.mqtt_str(b"auto-<uuid>" if ASSIGNED_ID.match(value)
                                         else b"BAD-FORM:" + value)
        fixed.append((pid, rec))
    fixed.sort(key=lambda r: r[0])      # stable: User Properties keep their order
    block = b"".join(rec for _, rec in fixed)
    body = body[:at] + pmq.varint(len(block)) + block + body[start + length:]
    return bytes([raw[0]]) + pmq.varint(len(body)) + body


def describe(raw, level):
    """A packet decoded for a reader: name, ids, reason codes, properties."""
    try:
        p = pmq.packet_of(raw, level)
        text = repr(p)
        if p.type == pmq.CONNACK:
            text = "CONNACK(sp=%d rc=0x%02X%s)" % (p.session_present, p.reason,
                                                   " %s" % p.props if p.props else "")
        elif p.type == pmq.SUBACK and p.props:
            text += " %s" % p.props
        return text
    except Exception as e:      # a reply the decoder cannot read: say so
        return "undecodable(%s: %s)" % (raw.hex(), e)


# ---------------------------------------------------------------------------
# Running a case against one broker.

class Connection:
    """One client connection of a case: what was sent, what came back."""

    def __init__(self, port, name):
        self.name = name
        self.sock = pmq.tcp_connect(port)
        self.buf = b""
        self.closed = False
        self.level = 4
        self.received = []      # every packet, normalised, for acks by script

    def send(self, data):
        if self.closed:
            return
        m = re.match(rb"\x10[\x80-\xff]{0,3}[\x00-\x7f]\x00[\x04\x06](?:MQTT|MQIsdp)(.)",
                     data, re.S)
        if m:
            self.level = m.group(1)[0]
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True

    def read(self, deadline):
        """The next packet, None when the broker closed, "timeout"."""
        while True:
            got = pmq.split_packet(self.buf)
            if got:
                raw, self.buf = got
                return raw
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return "timeout"
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            self.buf += data
            if not data:
                self.closed = True

    def close(self):
        self.sock.close()


ANSWERS = {pmq.SUBSCRIBE: pmq.SUBACK, pmq.UNSUBSCRIBE: pmq.UNSUBACK, pmq.PUBREC: pmq.PUBREL,
           pmq.PUBREL: pmq.PUBCOMP, pmq.PINGREQ: pmq.PINGRESP}


def answers_wanted(data):
    """(reply type, packet id) for each packet in data that asks for an
    answer; a malformed tail asks for nothing."""
    want = []
    while True:
        got = pmq.split_packet(data)
        if not got:
            return want
        raw, data = got
        ptype, flags, body = raw[0] >> 4, raw[0] & 15, pmq.body_of(raw)
        try:
            if ptype in ANSWERS:
                want.append((ANSWERS[ptype], body[:2] if ptype != pmq.PINGREQ else b""))
            elif ptype == pmq.PUBLISH and (flags >> 1) & 3 in (1, 2):
                n = struct.unpack("!H", body[:2])[0]
                want.append((pmq.PUBACK if (flags >> 1) & 3 == 1 else pmq.PUBREC,
                             body[2 + n:4 + n]))
        except struct.error:
            pass


def collect(conn, wanted, publishes):
    """What the broker sends until the barrier (see the module's text):
    a list of normalised packets, then "closed" or "timeout" if so."""
    conn.send(pmq.PINGREQ_PACKET)
    deadline = time.monotonic() + pmq.patience(2)
    reply, pong = [], conn.closed
    wanted = list(wanted)
    while not (pong and not wanted and publishes <= 0):
        raw = conn.read(deadline)
        if raw is None:
            reply.append("closed")
            return reply
        if raw == "timeout":
            reply.append("timeout")
            return reply
        ptype, body = raw[0] >> 4, pmq.body_of(raw)
        key = (ptype, body[:2] if ptype != pmq.PINGRESP else b"")
        if key in wanted:
            wanted.remove(key)
        elif ptype == pmq.PINGRESP and not pong:
            # the PINGRESPs come in order: the case's PINGREQs are
            # answered first, then the harness's
            pong = True
            continue
        packet = normalise(raw, conn.level)
        if ptype == pmq.PUBLISH:
            publishes -= 1
        conn.received.append(packet)
        reply.append(packet)
    if conn.closed:
        reply.append("closed")
    return reply


def run_case(port, case):
    """The transcript of case on the broker at port: one line per step."""
    conns = {}
    lines = []
    try:
        for step in case.steps:
            if step.client not in conns:
                conns[step.client] = Connection(port, step.client)
            conn = conns[step.client]
            data = step.data(conn.received) if callable(step.data) else step.data
            reply = []
            # a CONNECT first is answered before the rest goes: Mosquitto
            # drops the CONNACK it has not written yet when what follows
            # in the same read makes it close the connection
            first = pmq.split_packet(data)
            if data[:1] == b"\x10" and first and first[1]:
                conn.send(first[0])
                reply = [r for r in collect(conn, [], 0) if r != "closed"]
                data = first[1]
            conn.send(data)
            reply += collect(conn, answers_wanted(data), step.publishes)
            lines.append((step.client, conn.level, reply))
    finally:
        for conn in conns.values():
            conn.close()
    return lines


def transcript(lines):
    """The comparable text: one string per step."""
    return ["%s: %s" % (client, " ".join(r if isinstance(r, str) else r.hex()
                                        for r in reply) or "-")
            for client, _, reply in lines]


def decoded(lines):
    return ["%s: %s" % (client, ", ".join(r if isinstance(r, str) else describe(r, level)
                                          for r in reply) or "nothing")
            for client, level, reply in lines]


def report(case, ours, theirs):
    out = ["case %r: the replies differ" % case.name]
    for i, step in enumerate(case.steps):
        mark = "  " if transcript(ours)[i] == transcript(theirs)[i] else "! "
        out.append("%sstep %d, %s sends %s" % (mark, i + 1, step.client,
                                               step.data.hex() if not callable(step.data)
                                               else "(built from what it received)"))
        out.append("     promptmqd: %s" % transcript(ours)[i])
        out.append("                %s" % decoded(ours)[i])
        out.append("     mosquitto: %s" % transcript(theirs)[i])
        out.append("                %s" % decoded(theirs)[i])
    return "\n".join(out)


def listed_report(case, entry, ours, theirs):
    return "\n".join([
        "case %r is in DELIBERATE (%s) but its replies are not the ones listed:" %
        (case.name, entry.why),
        "  listed promptmqd: %s" % entry.promptmq,
        "  listed mosquitto: %s" % entry.mosquitto,
        report(case, ours, theirs)])


def mosquitto_version():
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "mosquitto"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown (not from a Debian package)"


def test():
    names = [c.name for c in cases.CASES]
    check(len(names) == len(set(names)), "two cases share a name")
    for table in (DELIBERATE, MOSQUITTO_RACES):
        unknown = set(table) - set(names)
        check(not unknown, "listed cases that do not exist: %s" % sorted(unknown))
    print("mosquitto %s (%s)" % (mosquitto_version(), pmq.MOSQUITTO))
    ours = pmq.PromptMQ(workers=2, max_packet_size=LIMIT, name="diff")
    theirs = pmq.Mosquitto(max_packet_size=LIMIT, name="diff-mosq")
    try:
        ours.start()
        theirs.start()
        failures, by_group = [], {}
        t0 = time.monotonic()
        for case in cases.CASES:
            by_group[case.group] = by_group.get(case.group, 0) + 1
            a, b = run_case(ours.port, case), run_case(theirs.port, case)
            race = MOSQUITTO_RACES.get(case.name)
            if race and transcript(b) == race[1] and transcript(a) != race[1]:
                print("%s: %s; taken as %s" % (case.name, race[0], transcript(a)))
                b = a
            if pmq.os.environ.get("PMQ_DIFF_VERBOSE"):
                print(report(case, a, b).replace("the replies differ", "replies"))
            same = transcript(a) == transcript(b)
            entry = DELIBERATE.get(case.name)
            if entry is None:
                if not same:
                    failures.append(report(case, a, b))
            elif same:
                failures.append("case %r is in DELIBERATE (%s) but both brokers now "
                                "reply the same: take it off the list\n%s" %
                                (case.name, entry.why, "\n".join(decoded(a))))
            elif transcript(a) != entry.promptmq or transcript(b) != entry.mosquitto:
                failures.append(listed_report(case, entry, a, b))
        ours.check_alive("after the cases")
        print("%d cases in %.1fs: %s" % (len(cases.CASES), time.monotonic() - t0,
                                         ", ".join("%s %d" % kv for kv in by_group.items())))
        print("deliberate differences: %d" % len(DELIBERATE))
        for name, entry in DELIBERATE.items():
            print("  %s: %s" % (name, entry.why))
        if failures:
            print("\n\n".join(failures))
            raise pmq.TestFailure("%d of %d cases differ" % (len(failures), len(cases.CASES)))
    finally:
        for b in (ours, theirs):
            b.stop()
            b.cleanup()


pmq.run_test(test)
