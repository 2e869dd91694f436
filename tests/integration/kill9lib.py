"""kill9lib.py - kill -9 under load: the scenario of the test
mqtt_kill9.py and of the benchmark tests/bench/kill9.py, written once.

A broker (promptmqd with 2 workers, or Mosquitto with persistence for
comparison) on a fixed port, kept for all its incarnations, so that the
clients find it again after a restart.  Four paho publishers with
persistent sessions (3.1.1 clean session 0; 5.0 clean start 0 with a long
Session Expiry Interval) publish numbered messages ("q2v5:000123") at a
paced rate, each on its own topic: QoS 1 3.1.1, QoS 1 5.0, QoS 2 3.1.1,
QoS 2 5.0.  Two persistent subscribers (3.1.1 and 5.0) have QoS 2
subscriptions to the four topics; the 5.0 one is slow (it processes
slow_rate messages a second, so a backlog builds in its session).
Every client reconnects on its own, to whichever worker it lands on.

While they run, SIGKILLs spread in time, in the order of KINDS: a
random worker, walsvc, the supervisor alone (its children then exit on
their own; a new promptmqd is started on the same directories once they
are gone: one that does not exit in time is a failure, and is killed so
that the scenario goes on), a random worker, the whole process group
(promptmqd runs in a group of its own), and so on; against Mosquitto
every kill is a kill -9 of mosquitto and a restart on its persistence
file.  Each kill waits until the broker is back from the one before.
After the last kill (and the broker back) publishing stops and
everything drains: every publisher must have every message
acknowledged, every subscriber every acknowledged one.

What paho 1.6 does, which the scenario relies on or works around
(checked against a scripted server): after a reconnection of the same
Client object (3.1.1 clean session 0, 5.0 clean start 0) it sends again
every message it has no PUBACK / PUBCOMP for: QoS 1 and QoS 2 without
PUBREC as PUBLISH with DUP and the same packet id, QoS 2 with PUBREC as
PUBREL.  It sends them all at once, past its own max_inflight and past
the server's Receive Maximum (5.0), which it ignores: after an outage
longer than the window, a 5.0 server may end the connection (DISCONNECT
0x93, Receive Maximum exceeded), and again on the next one.  It keeps
its out-queue across reconnections of the same Client object (publish()
while disconnected keeps the message and returns MQTT_ERR_NO_CONN).  As
a subscriber (QoS 2) it hands a message over on the PUBREL, once per
packet id (a PUBLISH sent again with DUP before it is not handed over
twice).  So a publisher keeps at most WINDOW messages
unacknowledged itself (fewer than the Receive Maximum of both brokers,
20): it pauses while the broker is away, its resends stay within the
window.  Every reconnection attempt resets the state of the messages
in flight, and a second reset turns "PUBREL owed" into "PUBLISH, DUP
0": after an attempt that fails (a restart of the whole broker refuses
connections for a while) paho sends a QoS 2 message it had released as
a new PUBLISH with the same packet id, which MQTT 4.3.3 forbids ("MUST
NOT re-send the PUBLISH once it has sent the corresponding PUBREL"),
and which a broker that took the PUBREL takes as a new message: a QoS 2
message delivered twice, of the client's making.  keep_pubrel() corrects
that, kill9_client.py checks it against a scripted server, and a
PUBLISH sent after its PUBREL all the same fails the scenario.  paho
ignores the reason code of a 5.0 PUBACK / PUBREC (it reports a refused
message as published): the packets are read before paho handles them,
and a message refused (reason code 0x80 or more) is counted as refused,
not acknowledged.

Each message is recorded: when it was published, acknowledged (and with
which reason codes), delivered to each subscriber (with DUP or not), so
that a loss is explained: which publisher, which number, when it was
acknowledged relative to which kill, whether the message log has it
(promptmqd), what the subscriber got around it, the broker's log lines
of that time about the clients involved."""

import collections
import datetime
import os
import random
import re
import signal
import struct
import threading
import time

import pmq

PUBLISHERS = (("q1v4", 1, 4), ("q1v5", 1, 5), ("q2v4", 2, 4), ("q2v5", 2, 5))
SUBSCRIBERS = (("fast", 4, False), ("slow", 5, True))      # name, version, slow
KINDS = ("worker", "walsvc", "supervisor", "worker", "group")
EXPIRY = 3600       # Session Expiry Interval of the 5.0 sessions
MAX_QUEUED = 100000     # messages a broker may queue for a session
WINDOW = 10         # unacknowledged messages a publisher keeps at most
AFTER_LAST = 1.0    # seconds of publishing at least after the last recovery
RECOVER_WITHIN = 10     # for a killed process to be replaced (stretched)
EXIT_WITHIN = 2         # for the children of a killed supervisor to exit (stretched)
START_WITHIN = 15       # for a restarted broker to be ready (stretched)
ACKS_WITHIN = 20        # after the load, for the last acknowledgements
STALL = 4               # a subscriber that misses messages and gets nothing for
                        # this long (stretched) will not get them

PUBACK, PUBREC, PUBCOMP = 0x40, 0x50, 0x70      # paho's command bytes
QUEUE_SIZE = 15     # paho's MQTT_ERR_QUEUE_SIZE: publish() did not keep the message
PAYLOAD = re.compile(rb"^(q[12]v[45]):(\d{6})$")


class Clock:
    """Times relative to the start of the load, and as the broker's log
    writes them (UTC, milliseconds)."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.wall0 = time.time()

    def rel(self, t):
        return t - self.t0

    def wall(self, t):
        return self.wall0 + (t - self.t0)

    def stamp(self, t):
        return datetime.datetime.fromtimestamp(self.wall(t), datetime.timezone.utc).strftime(
            "%H:%M:%S.%f")[:-3] + "Z"

    def at(self, t):
        return "%.2fs (%s)" % (self.rel(t), self.stamp(t))


# ---------------------------------------------------------------------------
# Targets: how to start, kill and restart a broker on a fixed port.

class PromptMQTarget:
    """promptmqd, in a process group of its own (so that the group can be
    killed without the test), with 2 workers on a fixed port.  A session
    may queue MAX_QUEUED messages, as many as Mosquitto below: what the
    slow subscriber's backlog loses must not be the queue limit's doing
    (at a high rate, the default 1000 would drop messages, logged as
    "message not queued for a session")."""
    name = "promptmqd"

    def __init__(self, workers=2):
        self.port = pmq.free_port()
        self.b = pmq.PromptMQ(workers=workers, name="kill9", bind="127.0.0.1:%d" % self.port,
                              preexec=os.setpgrp,
                              args=["--mqtt-max-queued-messages", str(MAX_QUEUED)])
        self.old = []       # pids of killed incarnations' children, to be gone
        self.problems = []  # what went wrong in a kill or recovery

    def start(self):
        self.b.start(timeout=START_WITHIN)

    def describe(self):
        return "promptmqd %d workers" % self.b.workers

    def kill(self, kind, rng):
        """SIGKILL what kind says; returns (what, pids).  recover() waits
        until the broker is whole again."""
        b = self.b
        self.mark = b.mark()
        if kind == "worker":
            slot = rng.randrange(b.workers)
            pid = b.worker_pid(slot)
            os.kill(pid, signal.SIGKILL)
            self.waiting = lambda: self._respawned("worker", slot)
            return "worker/%d" % slot, [pid]
        if kind == "walsvc":
            pid = b.walsvc_pid()
            pmq.check(pid, "no walsvc to kill")
            os.kill(pid, signal.SIGKILL)
            self.waiting = lambda: self._respawned("walsvc", None)
            return "walsvc", [pid]
        children = sorted(b.children())
        self.old = children
        if kind == "supervisor":
            os.kill(b.pid, signal.SIGKILL)
            what = "supervisor"
        else:
            pmq.check(os.getpgid(b.pid) == b.pid != os.getpgrp(),
                      "promptmqd is not in a process group of its own")
            os.killpg(b.pid, signal.SIGKILL)
            what = "process group"
        self.waiting = self._restart
        return what, [b.pid] + children

    def _respawned(self, role, slot):
        b = self.b
        m = b.wait_log(r"child started role=%s slot=%s pid=(\d+)" %
                       (role, slot if slot is not None else r"\d+"), RECOVER_WITHIN, self.mark)
        b.wait_log(r"%s\[%s\] info: %s ready" % (
            "worker/%d" % slot if role == "worker" else "walsvc", m.group(1), role),
            RECOVER_WITHIN, self.mark)

    def _restart(self):
        """The killed supervisor reaped, its children gone (they exit on
        their own when the supervisor is gone), a new promptmqd on the same
        directories and port."""
        b = self.b
        b.proc.wait(pmq.patience(RECOVER_WITHIN))
        b.stop()        # closes the log file of the dead incarnation
        try:
            pmq.wait_for(lambda: not any(pmq.pid_alive(p) for p in self.old), EXIT_WITHIN,
                         "the children of the killed supervisor (%s) to exit" % self.old)
        except pmq.TestFailure as e:
            # a failure, but the scenario goes on: what it measures
            # still means something, and a new promptmqd cannot bind the
            # port while an old worker holds its listening socket
            left = [p for p in self.old if pmq.pid_alive(p)]
            log = b.log().splitlines()
            self.problems.append("%s; still running: %s (killed with SIGKILL to go on)" % (
                e, "; ".join("%s, its last log lines:\n    %s" % (
                    process_state(p), "\n    ".join([x for x in log if "[%d]" % p in x][-3:]))
                    for p in left)))
            for p in left:
                os.kill(p, signal.SIGKILL)
            pmq.wait_for(lambda: not any(pmq.pid_alive(p) for p in left), RECOVER_WITHIN,
                         "%s to die of SIGKILL" % left)
        b.start(timeout=START_WITHIN)

    def recover(self):
        self.waiting()

    def stop(self):
        return self.b.stop()

    def cleanup(self, keep=False):
        for pid in self.old:
            if pmq.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.b.cleanup(keep=keep)

    def log_lines(self, t_from, t_to, words, clock):
        """Broker log lines stamped between two monotonic times that
        mention one of words."""
        return log_lines(self.b.log(), clock.wall(t_from), clock.wall(t_to), words)

    def in_log(self, tags):
        """How many publish records of the message log hold each payload
        (promptmqd-waldump; after the broker stopped)."""
        records, _ = pmq.waldump(self.b.walldir, "publish")
        found = collections.Counter()
        for _, preview in records:
            m = PAYLOAD.match(preview)
            if m:
                found[(m.group(1).decode(), int(m.group(2)))] += 1
        return {t: found[t] for t in tags}


def process_state(pid):
    """What a process that should have exited is doing: its name, state,
    and each thread's state and kernel wait channel."""
    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return "?"
    threads = []
    for tid in sorted(os.listdir("/proc/%d/task" % pid) if os.path.isdir(
            "/proc/%d/task" % pid) else []):
        stat = read("/proc/%d/task/%s/stat" % (pid, tid))
        threads.append("%s %s %s" % (tid, stat[stat.rfind(")") + 2:][:1],
                                     read("/proc/%d/task/%s/wchan" % (pid, tid))))
    return "pid %d (%s, threads: %s)" % (pid, read("/proc/%d/comm" % pid), ", ".join(threads))


class PersistentMosquitto(pmq.PersistentMosquitto):
    """Mosquitto with persistence on a fixed port (it restarts on the
    same one after every kill), every packet logged."""

    max_queued = MAX_QUEUED

    def __init__(self, port, autosave, on_changes=False):
        pmq.PersistentMosquitto.__init__(self, name="kill9mosq", autosave=autosave,
                                         on_changes=on_changes, log_all=True)
        self.fixed_port = port

    def start(self, wait_ready=True, timeout=START_WITHIN):
        return pmq.Mosquitto.start(self, wait_ready, timeout)


class MosquittoTarget:
    """Mosquitto with persistence: every kill is a kill -9 of the one
    process, then a restart on the same port and persistence file."""
    name = "mosquitto"

    def __init__(self, autosave=1, on_changes=False):
        self.port = pmq.free_port()
        self.b = PersistentMosquitto(self.port, autosave, on_changes)
        self.problems = []

    def start(self):
        self.b.start()

    def describe(self):
        return "mosquitto persistence true autosave_interval %d%s" % (
            self.b.autosave, " autosave_on_changes true" if self.b.on_changes else "")

    def kill(self, kind, rng):
        pid = self.b.pid
        os.kill(pid, signal.SIGKILL)
        return "mosquitto", [pid]

    def recover(self):
        self.b.proc.wait(pmq.patience(RECOVER_WITHIN))
        self.b.stop()
        self.b.start()

    def stop(self):
        return self.b.stop()

    def cleanup(self, keep=False):
        self.b.cleanup(keep=keep)

    def log_lines(self, t_from, t_to, words, clock):
        return log_lines(self.b.log(), clock.wall(t_from), clock.wall(t_to), words,
                         local=True)

    def in_log(self, tags):
        return None


def reason_codes(reasons):
    """{paho command byte: reason code} as text."""
    names = {PUBACK: "PUBACK", PUBREC: "PUBREC", PUBCOMP: "PUBCOMP"}
    return ", ".join("%s 0x%02X" % (names[c], r) for c, r in sorted(reasons.items())) or \
        "no acknowledgement packet seen"


def log_lines(text, w_from, w_to, words, local=False, limit=40):
    """Lines of a log stamped within [w_from, w_to] (epoch seconds) that
    contain one of words.  promptmqd stamps in UTC with milliseconds,
    Mosquitto (log_timestamp_format above) in local time, whole seconds."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z?", line)
        if not m or not any(w in line for w in words):
            continue
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
        if local:
            t = t.timestamp()
        else:
            t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
        t += float(m.group(2) or 0)
        if w_from - (1 if local else 0) <= t <= w_to:
            out.append(line)
    if len(out) > limit:
        out = out[:limit // 2] + ["... %d lines ..." % (len(out) - limit)] + out[-limit // 2:]
    return out


# ---------------------------------------------------------------------------
# Clients.

class Msg:
    """One published message and what became of it."""
    __slots__ = ("pub", "seq", "qos", "v", "t_pub", "mid", "t_ack", "reasons", "refused",
                 "deliveries")

    def __init__(self, pub, seq, qos, v, t_pub):
        self.pub, self.seq, self.qos, self.v, self.t_pub = pub, seq, qos, v, t_pub
        self.mid = None         # paho's packet id
        self.t_ack = None
        self.reasons = {}       # paho command byte -> reason code received
        self.refused = False
        self.deliveries = {}    # subscriber name -> [(time, dup)]

    @property
    def tag(self):
        return (self.pub, self.seq)

    @property
    def acked(self):
        return self.t_ack is not None and not self.refused


def keep_pubrel(client):
    """Make a paho 1.6 Client send PUBREL again, not PUBLISH, for a QoS 2
    message whose PUBREL is owed, however many reconnection attempts
    fail first.

    Each attempt (reconnect()) runs _messages_reconnect_reset_out()
    before it connects: a message waiting for its PUBCOMP becomes "resend
    PUBREL", and one in "resend PUBREL" (the state the attempt before
    left) becomes "publish", DUP 0.  Turning "resend PUBREL" back into
    "waiting for PUBCOMP" first makes every attempt start from what the
    first one saw.  The lock is paho's RLock, which the reset takes
    again."""
    import paho.mqtt.client as mqtt
    reset = client._messages_reconnect_reset_out

    def reset_out():
        with client._out_message_mutex:
            for m in client._out_messages.values():
                if m.state == mqtt.mqtt_ms_resend_pubrel:
                    m.state = mqtt.mqtt_ms_wait_for_pubcomp
            reset()
    client._messages_reconnect_reset_out = reset_out


def persistent_client(port, name, v):
    """A pmq.Client with a persistent session that reconnects on its own,
    keeping the PUBRELs it owes across failed attempts (keep_pubrel); its
    network thread also counts what it sends again, and notes a QoS 2
    PUBLISH sent again after its PUBREL (on_log)."""
    c = pmq.Client(port, pmq.unique("k9" + name), v, clean=False, reconnect=True)
    c.sent = collections.Counter()
    c.after_pubrel = set()  # packet ids sent as PUBLISH after their PUBREL
    owed = set()            # packet ids whose PUBREL waits for its PUBCOMP
    keep_pubrel(c.c)

    def on_log(client, userdata, level, buf):
        m = re.match(r"Sending PUBLISH \(d(\d), q(\d), r\d, m(\d+)\)", buf)
        if m:
            if m.group(1) == "1":
                c.sent["PUBLISH with DUP"] += 1
            if m.group(2) == "2" and int(m.group(3)) in owed:
                c.sent["PUBLISH after its PUBREL"] += 1
                c.after_pubrel.add(int(m.group(3)))
                owed.discard(int(m.group(3)))
            return
        m = re.match(r"(Sending PUBREL|Received PUBCOMP) \(Mid: (\d+)\)", buf)
        if m and m.group(1) == "Sending PUBREL":
            c.sent["PUBREL"] += 1
            owed.add(int(m.group(2)))
        elif m:
            owed.discard(int(m.group(2)))
        elif buf.startswith("Received PUBREC"):
            c.sent["PUBREC received"] += 1
        elif buf.startswith("Connection failed"):
            c.sent["connection attempts failed"] += 1
    c.c.on_log = on_log
    return c


def connect(c):
    c.connect(timeout=10, props=pmq.session_props(EXPIRY) if c.version == 5 else None)


class Publisher:
    """Numbered messages on its own topic at a paced rate, at most WINDOW
    unacknowledged, on a thread."""

    def __init__(self, port, name, qos, v, topic, rate):
        self.name, self.qos, self.v, self.topic, self.rate = name, qos, v, topic, rate
        self.c = persistent_client(port, name, v)
        self.msgs = []
        self.cond = threading.Condition()
        self.published = self.completed = 0
        self.events = collections.deque()   # (mid, time, reasons), from paho's thread
        self.pending = {}                   # mid -> Msg
        self.local_errors = collections.Counter()
        self.reasons = {}                   # mid -> {command: reason}, paho's thread only
        self.c.c.on_publish = self._on_publish
        handle = self.c.c._packet_handle

        def packet_handle():
            # paho 1.6 drops the reason code of a 5.0 PUBACK / PUBREC:
            # read it before paho handles the packet (paho's thread)
            p = self.c.c._in_packet
            cmd = p["command"] & 0xF0
            if cmd in (PUBACK, PUBREC, PUBCOMP) and len(p["packet"]) >= 2:
                mid = struct.unpack("!H", bytes(p["packet"][:2]))[0]
                self.reasons.setdefault(mid, {})[cmd] = p["packet"][2] if len(
                    p["packet"]) > 2 else 0
            return handle()
        self.c.c._packet_handle = packet_handle

    def _on_publish(self, client, userdata, mid):
        # paho's thread, holding paho's locks: record and notify only
        ev = (mid, time.monotonic(), self.reasons.pop(mid, {}))
        with self.cond:
            self.events.append(ev)
            self.completed += 1
            self.cond.notify_all()

    def settle(self):
        """Attach the acknowledgements received to their messages."""
        with self.cond:
            later = []
            while self.events:
                mid, t, reasons = ev = self.events.popleft()
                m = self.pending.pop(mid, None)
                if m is None:       # publish() has not returned its mid yet
                    later.append(ev)
                    continue
                m.t_ack, m.reasons = t, reasons
                m.refused = reasons.get(PUBACK, 0) >= 0x80 or reasons.get(PUBREC, 0) >= 0x80
            self.events.extendleft(reversed(later))

    def outstanding(self):
        with self.cond:
            return self.published - self.completed

    def run(self, stop):
        nxt = time.monotonic()
        seq = 0
        while not stop.is_set():
            with self.cond:
                if not self.cond.wait_for(lambda: self.published - self.completed < WINDOW,
                                          0.2):
                    continue        # the broker is away: look at stop again
            now = time.monotonic()
            m = Msg(self.name, seq, self.qos, self.v, now)
            info = self.c.c.publish(self.topic, b"%s:%06d" % (self.name.encode(), seq),
                                    self.qos)
            if info.rc == QUEUE_SIZE:   # not kept (other codes: kept, sent later)
                self.local_errors[info.rc] += 1
            else:
                m.mid = info.mid
                with self.cond:
                    self.published += 1
                    self.pending[info.mid] = m
                self.msgs.append(m)
                seq += 1
            self.settle()
            # the pace of the load; after a pause it goes on at the same
            # rate, without a burst to catch up
            nxt = max(nxt + 1.0 / self.rate, now)
            stop.wait(max(0.0, nxt - time.monotonic()))


class Subscriber:
    """QoS 2 subscriptions to every publisher's topic; what arrives is
    recorded.  A slow one takes 1/slow_rate s over each message."""

    def __init__(self, port, name, v, slow_rate=None):
        self.name, self.v, self.slow_rate = name, v, slow_rate
        self.c = persistent_client(port, name, v)
        self.got = []       # (pub, seq, time, dup, qos) in order of arrival
        self.other = []     # payloads not from a publisher
        self.c.c.on_message = self._on_message

    def _on_message(self, client, userdata, msg):
        if self.slow_rate:
            time.sleep(1.0 / self.slow_rate)   # the work of a slow consumer, in paho's thread
        m = PAYLOAD.match(msg.payload)
        if m:
            self.got.append((m.group(1).decode(), int(m.group(2)), time.monotonic(),
                             bool(msg.dup), msg.qos))
        else:
            self.other.append(msg.payload)


# ---------------------------------------------------------------------------
# The scenario.

class Kill:
    def __init__(self, k, kind, what, pids, t):
        self.k, self.kind, self.what, self.pids, self.t = k, kind, what, pids, t
        self.t_back = None

    def __str__(self):
        return "kill %d (%s, pid %s)" % (self.k + 1, self.what,
                                         ",".join(str(p) for p in self.pids))


def run(target, duration=20.0, rate=20.0, slow_rate=50.0, kills=5, seed=None, say=print):
    """Run the scenario against target (started and stopped here, not
    cleaned up).  Returns a Result."""
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    base = pmq.unique("kill9")
    topics = {name: "%s/%s" % (base, name) for name, _, _ in PUBLISHERS}
    res = Result(target, duration, rate, slow_rate, seed)
    target.start()
    clients = []
    stop = threading.Event()
    threads = []
    try:
        subs = [Subscriber(target.port, name, v, slow_rate if slow else None)
                for name, v, slow in SUBSCRIBERS]
        for s in subs:
            clients.append(s.c)
            connect(s.c)
            granted = s.c.subscribe([(t, 2) for t in topics.values()], timeout=10)
            pmq.check(granted == [2] * len(topics),
                      "%s: SUBSCRIBE with QoS 2 granted %s" % (s.name, granted))
        pubs = [Publisher(target.port, name, qos, v, topics[name], rate)
                for name, qos, v in PUBLISHERS]
        for p in pubs:
            clients.append(p.c)
            connect(p.c)
        res.pubs, res.subs = pubs, subs
        clock = res.clock = Clock()
        threads = [threading.Thread(target=p.run, args=(stop,), daemon=True) for p in pubs]
        for t in threads:
            t.start()

        spacing = duration / (kills + 1)
        for k in range(kills):
            # spread the kills over the load; one is done only once the
            # broker is back from the one before, and had half the spacing
            # (a second at most) to serve the clients, however late it is
            at = clock.t0 + spacing * (k + 1)
            if res.kills:
                at = max(at, res.kills[-1].t_back + min(AFTER_LAST, spacing / 2))
            time.sleep(max(0.0, at - time.monotonic()))   # the time of the next kill
            kind = KINDS[k % len(KINDS)]
            what, pids = target.kill(kind, rng)
            kill = Kill(k, kind, what, pids, time.monotonic())
            res.kills.append(kill)
            problems = len(target.problems)
            target.recover()
            kill.t_back = time.monotonic()
            say("%s at %s, broker back after %.2fs%s" % (
                kill, clock.at(kill.t), kill.t_back - kill.t,
                "".join("; " + p for p in target.problems[problems:])))
        end = max(clock.t0 + duration, (res.kills[-1].t_back if res.kills else 0) + AFTER_LAST)
        time.sleep(max(0.0, end - time.monotonic()))    # the rest of the load
        stop.set()
        for t in threads:
            t.join(pmq.patience(5))
        pmq.check(not any(t.is_alive() for t in threads), "a publisher thread is stuck")
        res.t_stop = time.monotonic()

        # every message acknowledged (paho sends again what was not)
        deadline = time.monotonic() + pmq.patience(ACKS_WITHIN)
        while any(p.outstanding() for p in pubs) and time.monotonic() < deadline:
            for p in pubs:
                with p.cond:
                    p.cond.wait_for(lambda: p.published == p.completed,
                                    max(0.0, min(0.2, deadline - time.monotonic())))
        for p in pubs:
            p.settle()
        res.t_acked = time.monotonic()

        # every subscriber every acknowledged message, or nothing more for
        # a while (STALL), or the deadline (the slow one's backlog at its pace)
        acked = {m.tag for p in pubs for m in p.msgs if m.acked}
        backlog = max(len(acked) - len({(g[0], g[1]) for g in s.got}) for s in subs)
        deadline = time.monotonic() + pmq.patience(10) + 2.0 * backlog / slow_rate
        for s in subs:
            seen, n, last = set(), 0, time.monotonic()
            while time.monotonic() < deadline:
                got = s.got[n:]
                n += len(got)
                seen.update((g[0], g[1]) for g in got)
                if got:
                    last = time.monotonic()
                if acked <= seen or time.monotonic() - last > pmq.patience(STALL):
                    break
                time.sleep(0.05)    # polls a list paho's thread appends to
        res.t_drained = time.monotonic()
        for c in clients:
            c.close()
        clients = []
        res.status = target.stop()
    finally:
        stop.set()
        for c in clients:
            c.close()
    res.compute()
    return res


class Result:
    def __init__(self, target, duration, rate, slow_rate, seed):
        self.target, self.duration, self.rate, self.slow_rate = target, duration, rate, slow_rate
        self.seed = seed
        self.kills = []
        self.pubs = self.subs = []
        self.status = None

    def compute(self):
        self.msgs = {m.tag: m for p in self.pubs for m in p.msgs}
        for s in self.subs:
            for pub, seq, t, dup, qos in s.got:
                m = self.msgs.get((pub, seq))
                if m:
                    m.deliveries.setdefault(s.name, []).append((t, dup))
        msgs = list(self.msgs.values())
        self.published = len(msgs)
        self.acked = [m for m in msgs if m.acked]
        self.refused = [m for m in msgs if m.refused]
        self.unacked = [m for m in msgs if m.t_ack is None]
        self.delivered = {s.name: sum(1 for m in msgs if s.name in m.deliveries)
                          for s in self.subs}
        self.lost = {s.name: [m for m in self.acked if s.name not in m.deliveries]
                     for s in self.subs}
        self.lost_any = [m for m in self.acked if any(s.name not in m.deliveries
                                                      for s in self.subs)]
        self.dups = {(s.name, q): [m for m in msgs if m.qos == q and
                                   len(m.deliveries.get(s.name, ())) > 1]
                     for s in self.subs for q in (1, 2)}
        self.unacked_delivered = [m for m in self.unacked if m.deliveries]
        self.sent = collections.Counter()
        for c in [p.c for p in self.pubs] + [s.c for s in self.subs]:
            self.sent.update(c.sent)
        self.session_lost = ["%s (connection %d)" % (c.client_id, k + 1)
                             for c in [p.c for p in self.pubs] + [s.c for s in self.subs]
                             for k, ack in enumerate(c.connacks) if k and not ack[0]]
        self.reconnects = {c.client_id: len(c.connacks) - 1
                           for c in [p.c for p in self.pubs] + [s.c for s in self.subs]}
        self.server_disconnects = collections.Counter(
            "0x%02X" % d for c in [p.c for p in self.pubs] + [s.c for s in self.subs]
            for d in c.disconnects if d >= 0x80)
        times = sorted(m.t_ack for m in msgs if m.t_ack is not None)
        self.ack_pause = max((b - a for a, b in zip(times, times[1:])), default=0.0)
        self.local_errors = sum((p.local_errors for p in self.pubs), collections.Counter())
        self.other = sum(len(s.other) for s in self.subs)

    def failures(self):
        """What makes the test fail."""
        out = []
        if any(self.lost.values()):
            out.append("%d acknowledged messages lost: %s" % (
                len(self.lost_any), ", ".join("%s %d" % (s, len(v))
                                              for s, v in self.lost.items())))
        for (s, q), v in self.dups.items():
            if q == 2 and v:
                out.append("%d QoS 2 messages delivered more than once to %s: %s" % (
                    len(v), s, ", ".join("%s:%06d x%d" % (m.pub, m.seq, len(m.deliveries[s]))
                                         for m in v[:10])))
        after = {p.name: p.c.sent["PUBLISH after its PUBREL"] for p in self.pubs
                 if p.c.sent["PUBLISH after its PUBREL"]}
        if after:
            out.append("QoS 2 messages sent again as PUBLISH after their PUBREL, which a "
                       "broker takes as new messages (the client's fault, MQTT 4.3.3; "
                       "keep_pubrel() did not hold): %s" % after)
        out += self.target.problems
        stuck = [p.name for p in self.pubs if p.outstanding()]
        if stuck:
            out.append("publishers %s still have unacknowledged messages %.0fs after the "
                       "load (%s)" % (stuck, self.t_acked - self.t_stop,
                                      ", ".join("%s %d" % (p.name, p.outstanding())
                                                for p in self.pubs)))
        if self.refused:
            out.append("%d messages refused (%s)" % (
                len(self.refused), "; ".join(sorted({reason_codes(m.reasons)
                                                     for m in self.refused})[:5])))
        if self.local_errors:
            out.append("paho refused to queue messages: %s" % dict(self.local_errors))
        if self.session_lost:
            out.append("sessions not present after a reconnection: %s" % self.session_lost)
        if self.other:
            out.append("%d messages with payloads nobody published" % self.other)
        if self.status not in (0, None):
            out.append("%s exit status %s at the end" % (self.target.name, self.status))
        return out

    def summary(self):
        """One line of figures."""
        return ("kill9 target=%s duration=%.0fs rate=%gx%d slow=%g kills=%d[%s] seed=%d "
                "published=%d acknowledged=%d refused=%d unacknowledged=%d "
                "delivered=%s lost=%d(%s) dup_qos1=%s dup_qos2=%s unacked_delivered=%d "
                "resent=dup_publish:%d,pubrel:%d,publish_after_pubrel:%d reconnects=%d "
                "session_lost=%d "
                "longest_ack_pause=%.2fs drain=%.1fs%s result=%s" % (
                    self.target.name, self.clock.rel(self.t_stop), self.rate, len(self.pubs),
                    self.slow_rate, len(self.kills),
                    ",".join(k.what.replace(" ", "-") for k in self.kills),
                    self.seed, self.published, len(self.acked), len(self.refused),
                    len(self.unacked),
                    ",".join("%s:%d" % kv for kv in self.delivered.items()),
                    len(self.lost_any), ",".join("%s:%d" % (s, len(v))
                                                 for s, v in self.lost.items()),
                    ",".join("%s:%d" % (s, len(self.dups[(s, 1)])) for s in self.delivered),
                    ",".join("%s:%d" % (s, len(self.dups[(s, 2)])) for s in self.delivered),
                    len(self.unacked_delivered), self.sent["PUBLISH with DUP"],
                    max(0, self.sent["PUBREL"] - self.sent["PUBREC received"]),
                    self.sent["PUBLISH after its PUBREL"], sum(self.reconnects.values()),
                    len(self.session_lost),
                    self.ack_pause, self.t_drained - self.t_stop,
                    " server_disconnects=%s" % dict(self.server_disconnects)
                    if self.server_disconnects else "",
                    "FAIL" if self.failures() else "ok"))

    def report(self):
        """The figures, per client, several lines."""
        out = ["%s; seed %d" % (self.target.describe(), self.seed)]
        for k in self.kills:
            out.append("  %s at %s, back after %.2fs" % (
                k, self.clock.at(k.t), k.t_back - k.t))
        for p in self.pubs:
            ms = p.msgs
            out.append("  publisher %-5s QoS %d %s: published %d, acknowledged %d, "
                       "refused %d, reconnected %d times (failed attempts: %d); sent again: "
                       "%d PUBLISH with DUP, %d PUBREL, %d PUBLISH after its PUBREL" % (
                           p.name, p.qos, "5.0" if p.v == 5 else "3.1.1", len(ms),
                           sum(m.acked for m in ms), sum(m.refused for m in ms),
                           len(p.c.connacks) - 1, p.c.sent["connection attempts failed"],
                           p.c.sent["PUBLISH with DUP"],
                           max(0, p.c.sent["PUBREL"] - p.c.sent["PUBREC received"]),
                           p.c.sent["PUBLISH after its PUBREL"]))
        for s in self.subs:
            dup_arrivals = sum(1 for g in s.got if g[3])
            out.append("  subscriber %-4s %s%s: %d deliveries of %d messages, lost %d, "
                       "twice: QoS 1 %d, QoS 2 %d; %d arrived with DUP; reconnected %d "
                       "times" % (
                           s.name, "5.0" if s.v == 5 else "3.1.1",
                           " (%g/s)" % s.slow_rate if s.slow_rate else "", len(s.got),
                           self.delivered[s.name], len(self.lost[s.name]),
                           len(self.dups[(s.name, 1)]), len(self.dups[(s.name, 2)]),
                           dup_arrivals, len(s.c.connacks) - 1))
        out.append("  unacknowledged at the end: %d, of which delivered: %d; longest pause "
                   "between acknowledgements %.2fs; drained %.1fs after the load" % (
                       len(self.unacked), len(self.unacked_delivered), self.ack_pause,
                       self.t_drained - self.t_stop))
        return "\n".join(out)

    def kill_context(self, t):
        """Where time t sits among the kills."""
        before = [k for k in self.kills if k.t <= t]
        after = [k for k in self.kills if k.t > t]
        parts = []
        if before:
            k = before[-1]
            parts.append("%.2fs after %s%s" % (
                t - k.t, k, " (broker back %.2fs later)" % (k.t_back - k.t)
                if k.t_back else ""))
        else:
            parts.append("before the first kill")
        if after:
            parts.append("%.2fs before %s" % (after[0].t - t, after[0]))
        return ", ".join(parts)

    def explain(self, limit=5):
        """Why acknowledged messages are missing or came twice: the
        records of the first few, runs of consecutive numbers grouped."""
        out = []
        in_log = None
        problems = self.lost_any + [m for v in self.dups.values() for m in v if m.qos == 2]
        if problems:
            try:
                in_log = self.target.in_log([m.tag for m in problems])
            except pmq.TestFailure as e:
                out.append("(the message log could not be read: %s)" % e)
        runs = []
        for s, lost in self.lost.items():
            for m in sorted(lost, key=lambda m: m.tag):
                if runs and runs[-1][0] == s and runs[-1][-1].pub == m.pub and \
                        runs[-1][-1].seq == m.seq - 1:
                    runs[-1].append(m)
                else:
                    runs.append([s, m])
        for run_ in runs[:limit]:
            s, ms = run_[0], run_[1:]
            m = ms[0]
            sub = next(x for x in self.subs if x.name == s)
            pub = next(p for p in self.pubs if p.name == m.pub)
            # the deliveries of the nearest numbers around the run: the
            # last of the one below, the first of the one above
            same = [g for g in sub.got if g[0] == m.pub]
            below = max((g[1] for g in same if g[1] < m.seq), default=None)
            above = min((g[1] for g in same if g[1] > ms[-1].seq), default=None)
            prev = [g for g in same if g[1] == below]
            nxt = [g for g in same if g[1] == above]
            others = ["%s %s" % (x.name, "got it" if x.name in m.deliveries else "did not")
                      for x in self.subs if x.name != s]
            out.append("%s lost %s:%06d%s (QoS %d, %s): published at %s, %s at %s "
                       "(%s), %s; in the message log: %s; %s; %s got the nearest %s "
                       "before it: %s; after it: %s" % (
                           s, m.pub, m.seq, "..%06d (%d messages)" % (ms[-1].seq, len(ms))
                           if len(ms) > 1 else "", m.qos, "5.0" if m.v == 5 else "3.1.1",
                           self.clock.at(m.t_pub), "PUBACK" if m.qos == 1 else "PUBCOMP",
                           self.clock.at(m.t_ack), reason_codes(m.reasons),
                           self.kill_context(m.t_ack),
                           "n/a" if in_log is None else "%d publish records" % in_log[m.tag],
                           "; ".join(others) or "no other subscriber",
                           s, m.pub, self._g(prev[-1]) if prev else "none",
                           self._g(nxt[0]) if nxt else "none"))
            procs = ["killed", "exited", " ready", "gone", "warn", "Warn", "error", "Error"]
            windows = [("from 0.5s before the publish to 1s after the acknowledgement, about "
                        "%s, %s or the processes" % (pub.c.client_id, sub.c.client_id),
                        m.t_pub - 0.5, m.t_ack + 1.0,
                        [pub.c.client_id, sub.c.client_id] + procs),
                       ("from %s's delivery before to the one after, about %s or the "
                        "processes" % (s, sub.c.client_id),
                        prev[-1][2] if prev else m.t_pub, nxt[0][2] if nxt else self.t_drained,
                        [sub.c.client_id] + procs)]
            for what, t_from, t_to, words in windows:
                lines = self.target.log_lines(t_from, t_to, words, self.clock)
                if lines:
                    out.append("  broker log %s:\n    %s" % (what, "\n    ".join(lines)))
        if len(runs) > limit:
            out.append("... and %d more runs of lost messages" % (len(runs) - limit))
        for (s, q), v in self.dups.items():
            if q != 2:
                continue
            for m in v[:limit]:
                pub = next(p for p in self.pubs if p.name == m.pub)
                out.append("%s got QoS 2 %s:%06d %d times, at %s; published at %s, PUBCOMP "
                           "at %s; in the message log: %s%s" % (
                               s, m.pub, m.seq, len(m.deliveries[s]),
                               ", ".join("%s%s" % (self.clock.at(t), " DUP" if d else "")
                                         for t, d in m.deliveries[s]),
                               self.clock.at(m.t_pub),
                               self.clock.at(m.t_ack) if m.t_ack else "never",
                               "n/a" if in_log is None else "%d publish records" %
                               in_log[m.tag],
                               "; the publisher sent it again as PUBLISH after its PUBREL"
                               if m.mid in pub.c.after_pubrel else ""))
        return "\n".join(out)

    def _g(self, g):
        return "%06d at %s%s" % (g[1], self.clock.at(g[2]), " DUP" if g[3] else "")
