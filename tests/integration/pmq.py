"""pmq.py - shared helpers for the integration tests.

Every test starts the real promptmqd from the build tree on a free port
(--bind 127.0.0.1:0, the port read back from the log), with its own short
runtime directory (IPC socket paths must fit in 107 bytes) and data
directory, and stops it at the end.  Everything waits with a deadline:
a test that hangs is a failure, never a stuck CI run.

The MQTT tests (mqtt_*.py) start their broker with start_target(): the
promptmqd above, or with PMQ_TARGET=mosquitto a Mosquitto on a free
port, so that every check of standard MQTT behaviour can be shown to
hold on a broker known to be right.  They talk MQTT through paho
(Client: a network thread, queues and deadlines) and through RawClient,
which sends any bytes, malformed ones included, and reads the answers
packet by packet.
"""

import contextlib
import datetime
import os
import pwd
import queue
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

BUILDDIR = os.environ.get("PMQ_BUILDDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SRCDIR = os.environ.get("PMQ_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
PROMPTMQD = os.path.join(BUILDDIR, "promptmqd")
WALDUMP = os.path.join(BUILDDIR, "promptmq-waldump")
WALAPPEND = os.path.join(BUILDDIR, "walappend")
DEV_CONF = os.path.join(SRCDIR, "etc", "promptmq.conf")

SKIP = 77

# Every timeout a test gives is what the wait takes on an idle machine,
# with room to spare; a loaded machine (two test runs on two cores, a
# sanitizer build beside them) may be several times slower.  The waiting
# helpers below stretch each timeout by SLOWDOWN, and a test that checks
# how late something happened allows patience(its bound).  A deadline
# only bounds a failure: a passing test never waits it out.
SLOWDOWN = float(os.environ.get("PMQ_SLOWDOWN", "5"))


def patience(seconds):
    """How long to wait for what takes at most seconds on an idle machine."""
    return seconds * SLOWDOWN


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def wait_for(pred, timeout, what, interval=0.02):
    """Poll pred() until it returns a true value or the deadline passes
    (timeout stretched by SLOWDOWN)."""
    timeout = patience(timeout)
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def log_stamp(text):
    """A log line's time stamp (2026-12-04T13:42:53.123Z) in seconds."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def wait_log_time(b, pattern, timeout=10, start=0):
    """Wait for a log line of broker b and return its time stamp."""
    m = b.wait_log(r"(?m)^(\S+) [^\n]*" + pattern, timeout, start)
    return log_stamp(m.group(1))


def children_of(pid):
    """Direct children of pid, from /proc: {pid: comm}."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: split at the last ')'
        rparen = stat.rfind(")")
        comm = stat[stat.find("(") + 1:rparen]
        fields = stat[rparen + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out[int(entry)] = program_of(int(entry), comm)
    return out


def program_of(pid, comm):
    """comm, or under valgrind (whose tool names the process) the first
    15 characters of the program it runs, as the kernel would name it."""
    if not comm.startswith(("memcheck", "valgrind")):
        return comm
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return comm
    for a in args:
        name = os.path.basename(a.decode(errors="replace"))
        if name.startswith("promptmq"):
            return name[:15]
    return comm


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def tcp_connect(port, host="127.0.0.1", timeout=2.0):
    s = socket.create_connection((host, port), timeout=patience(timeout))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def proc_status(pid):
    """/proc/PID/status as {field: value}, e.g. "Uid": "0\t0\t0\t0"."""
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def listening_sockets(port):
    """How many TCP sockets listen on this port (IPv4 and IPv6): one per
    worker slot and bind address for promptmqd's SO_REUSEPORT sockets."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                n += 1
    return n


def conf_value(v):
    """A Python value written as libconfig: bool, int, or a quoted string."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return '"%s"' % str(v).replace("\\", "\\\\").replace('"', '\\"')


# What every test broker runs with unless its test says otherwise: new
# connections spread over the workers by the kernel's hash, as the tests
# of what crosses between workers need (packing them on one worker while
# it has room is the default; placement.py tests it).
TEST_DEFAULTS = {"server.pack-connections": 0}


def conf_text(values, base=DEV_CONF):
    """The text of the configuration file base with some options set:
    values is {"group.leaf": value}, over TEST_DEFAULTS.  An option's line
    is replaced where the file has it, else added at the end of its group
    (a group the file lacks is added)."""
    with open(base) as f:
        lines = f.read().splitlines()
    todo = dict(TEST_DEFAULTS)
    todo.update(values)
    group = None
    out = []
    for line in lines:
        m = re.match(r"^([\w-]+)\s*:\s*\{", line)
        if m:
            group = m.group(1)
        elif group and re.match(r"^\s*\}\s*;", line):
            for name in [n for n in todo if n.split(".", 1)[0] == group]:
                out.append("\t%s = %s;" % (name.split(".", 1)[1], conf_value(todo.pop(name))))
            group = None
        elif group:
            m = re.match(r"^\s*([\w-]+)\s*=", line)
            name = m and "%s.%s" % (group, m.group(1))
            if name in todo:
                line = "\t%s = %s;" % (m.group(1), conf_value(todo.pop(name)))
        out.append(line)
    groups = {}
    for name, v in todo.items():
        g, leaf = name.split(".", 1)
        groups.setdefault(g, []).append("\t%s = %s;" % (leaf, conf_value(v)))
    for g, settings in groups.items():
        out.append("%s: {\n%s\n};" % (g, "\n".join(settings)))
    return "\n".join(out) + "\n"


class Broker:
    """A promptmqd started from the build tree for one test.

    bind and log_level are passed as flags unless None: a flag wins over
    the file, so a test that changes them by reload gives them in its own
    configuration file instead (conf_values: the development configuration
    with these options set, written to BASE/promptmq.conf; write_conf()
    rewrites it before a reload()).  wrap: a command that runs promptmqd
    (its arguments follow), e.g. one that sets up a namespace first and
    then execs it, so that the process started is promptmqd itself.
    program: a copy of promptmqd to run instead of the build tree's."""

    def __init__(self, workers=2, args=(), conf=DEV_CONF, env=None, name="pmq",
                 preexec=None, base=None, bind="127.0.0.1:0", log_level="debug",
                 conf_values=None, wrap=(), program=None):
        self.base = base or tempfile.mkdtemp(prefix=name + ".", dir="/tmp")
        self.rundir = os.path.join(self.base, "run")
        self.datadir = os.path.join(self.base, "data")
        self.walldir = os.path.join(self.datadir, "wal")
        self.logpath = os.path.join(self.base, "promptmqd.log")
        self.workers = workers
        self.conf = conf
        self.args = list(args)
        self.env = dict(os.environ)
        if env:
            self.env.update(env)
        self.preexec = preexec
        self.wrap = list(wrap)
        self.program = program or PROMPTMQD
        self.bind, self.log_level = bind, log_level
        self.proc = None
        self.port = None
        self._logf = None
        if conf_values is None and conf == DEV_CONF:
            conf_values = {}    # TEST_DEFAULTS
        if conf_values is not None:
            self.conf = os.path.join(self.base, "promptmq.conf")
            self.write_conf(conf_values)

    def write_conf(self, values=None, text=None):
        """Write this broker's configuration file: the development one
        with values set, or text as it is.  Returns the text."""
        if text is None:
            text = conf_text(values or {})
        with open(self.conf, "w") as f:
            f.write(text)
        return text

    def command(self, extra=()):
        cmd = self.wrap + [self.program]
        if self.conf:
            cmd += ["-c", self.conf]
        if self.bind:
            cmd += ["--bind", self.bind]
        cmd += ["--workers", str(self.workers),
                "--data-dir", self.datadir, "--runtime-dir", self.rundir]
        if self.log_level:
            cmd += ["--log-level", self.log_level]
        return cmd + self.args + list(extra)

    def start(self, wait_ready=True, timeout=15):
        self._logf = open(self.logpath, "ab")
        # a broker started again on the same base (base=) appends to the
        # log of the earlier run: its ready line is looked for after this
        self.start_mark = self.mark()
        self.proc = subprocess.Popen(self.command(), stdout=self._logf,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     preexec_fn=self.preexec)
        if wait_ready:
            self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout):
        start = getattr(self, "start_mark", 0)
        self.wait_log(r"supervisor\[\d+\] notice: ready", timeout, start)
        m = re.compile(r"listening addr=127\.0\.0\.1:(\d+) slots=\d+ kind=mqtt").search(
            self.log(), start)
        check(m, "no listening line in the log")
        self.port = int(m.group(1))
        self.started_children = self.children()

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=10, start=0):
        rx = re.compile(pattern)

        def seen():
            if self.proc and self.proc.poll() is not None:
                raise TestFailure("promptmqd exited (status %s) while waiting "
                                  "for /%s/; log:\n%s" %
                                  (self.proc.returncode, pattern, self.log()[-4000:]))
            return rx.search(self.log(), start)
        return wait_for(seen, timeout, "log line /%s/" % pattern)

    def log_count(self, pattern):
        return len(re.findall(pattern, self.log()))

    def mark(self):
        """A position in the log, for wait_log(start=) and log()[mark:]."""
        return len(self.log())

    def reload(self, timeout=10):
        """SIGHUP, then wait for the outcome (reloaded or rejected).
        Returns what the log got from the signal on."""
        mark = self.mark()
        os.kill(self.pid, signal.SIGHUP)
        self.wait_log(r"configuration reloaded changed=\d+ applied=\d+\n|"
                      r"reload rejected[^\n]*\n", timeout, mark)
        return self.log()[mark:]

    @property
    def pid(self):
        return self.proc.pid

    def children(self):
        return children_of(self.proc.pid)

    def child_pids(self, comm_prefix):
        return sorted(p for p, c in self.children().items() if c.startswith(comm_prefix))

    def walsvc_pid(self):
        pids = self.child_pids("promptmq-walsv")
        return pids[0] if pids else None

    def worker_pids(self):
        return self.child_pids("promptmq-worke")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stop and return the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            timeout = patience(timeout)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise TestFailure("promptmqd did not stop within %ss" % timeout)
        if self._logf:
            self._logf.close()
            self._logf = None
        return self.proc.returncode

    def cleanup(self, keep=False):
        """Kill what is left and remove the directory.  Called while a
        test failure is on its way out (from a finally clause), it first
        prints the end of the broker's log, which the test's .log keeps."""
        if sys.exc_info()[0] is not None and os.path.exists(self.logpath):
            tail = self.log().splitlines()[-80:]
            print("--- last %d lines of %s ---\n%s\n--- end of log ---" %
                  (len(tail), self.logpath, "\n".join(tail)))
        # listed first: once the supervisor is gone they belong to init
        orphans = list(children_of(self.proc.pid) if self.proc else [])
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
        finally:
            # children die on control-channel EOF; make sure, then remove
            for pid in orphans:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if not keep and not os.environ.get("PMQ_KEEP"):
                shutil.rmtree(self.base, ignore_errors=True)


def copy_for_others(directory):
    """Copies of promptmqd and its children in directory (made, mode
    0755), for a test that runs them as another user (nobody): the build
    tree may sit where only its owner can enter (a clone under /root or
    in a mode 0700 directory).  Returns the path of the promptmqd copy."""
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    for name in ("promptmqd", "promptmq-worker", "promptmq-walsvc", "promptmq-metrics"):
        shutil.copy2(os.path.join(BUILDDIR, name), os.path.join(directory, name))
    return os.path.join(directory, "promptmqd")


WALDUMP_LINE = re.compile(r'^(lsn=\d+ .*?) payload=("(?:[^"\\]|\\.)*"|[0-9a-f]*)(\.\.\.)?$')


def waldump(waldir, rtype=None):
    """The records of a message log as promptmq-waldump prints them:
    ([(fields, preview)], output), fields the key=value pairs before the
    payload, preview the payload's first bytes, decoded."""
    out = subprocess.run([WALDUMP] + (["--type", rtype] if rtype else []) + [waldir],
                         capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "promptmq-waldump failed (%d): %s" %
          (out.returncode, out.stderr[-2000:]))
    records = []
    for line in out.stdout.splitlines():
        if line.startswith("summary"):
            continue
        m = WALDUMP_LINE.match(line)
        check(m, "promptmq-waldump printed an unexpected line: %r" % line)
        fields = dict(re.findall(r"(\w+)=(\S+)", m.group(1)))
        p = m.group(2)
        if p.startswith('"'):
            preview = re.sub(r"\\(.)", r"\1", p[1:-1]).encode("ascii")
        else:
            preview = bytes.fromhex(p)
        records.append((fields, preview))
    return records, out.stdout


# ---------------------------------------------------------------------------
# Targets: the MQTT tests run against promptmqd, or (PMQ_TARGET=mosquitto)
# against Mosquitto, to show that a test checks standard MQTT correctly.

TARGET = os.environ.get("PMQ_TARGET", "promptmqd")
MOSQUITTO = os.environ.get("PMQ_MOSQUITTO", "/usr/sbin/mosquitto")


def _ephemeral_ports():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return low, high


def free_port():
    """A port nothing listens on, for a test that must name its port
    before the broker binds it.  It is chosen below the kernel's
    ephemeral range: no outgoing connection (of this run or of another
    one on the machine) and no bind to port 0 can take it between the
    pick and its use, or while a test has it removed and adds it back."""
    low, _ = _ephemeral_ports()
    first = max(1024, low - 20000)
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(first, low)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        if listening_sockets(port) == 0:
            return port
    raise TestFailure("no free port between %d and %d" % (first, low))


class PromptMQ(Broker):
    """promptmqd as the target of the MQTT tests.

    What this phase of promptmqd offers, for tests whose expectations
    differ between targets: QoS up to 2, retained messages, $share
    subscriptions; sessions are kept as MQTT says."""
    kind = "promptmqd"
    max_qos = 2
    keeps_sessions = True       # clean-session=0 / session expiry are honoured
    shared_subs = True
    subscription_ids = True
    retain_available = True     # retained messages are kept and sent
    keepalive_grace = 1.0       # seconds past 1.5 x keep alive to drop a client
    says_taken_over = True      # DISCONNECT 0x8E to a 5.0 client taken over
    expiry_late = 0.0           # seconds past its Session Expiry Interval a
                                # session may still be found
    qos2_inflight_limit = None  # QoS 2 messages a client may have in flight
                                # inbound before the broker loses the next
                                # ones (None: it loses none)
    receive_maximum_disconnect = True   # DISCONNECT 0x93 to a 5.0 client that
                                        # exceeds the CONNACK's Receive Maximum
    receive_maximum_refill = False      # a PUBCOMP from a 5.0 client with a
                                        # Receive Maximum lets only one more
                                        # QoS 2 message come
    resends_expired = True      # a message whose delivery began is sent again
                                # at the next connection, its Message Expiry
                                # Interval passed or not
    expired_stalls_queue = False        # a queued message that expired before
                                        # the client's window had room stops
                                        # the ones queued behind it

    def __init__(self, workers=2, max_packet_size=None, name="mqtt", **kw):
        args = list(kw.pop("args", ()))
        if max_packet_size is not None:
            args += ["--mqtt-max-packet-size", "%dB" % max_packet_size]
        Broker.__init__(self, workers=workers, args=args, name=name, **kw)
        self.slots = workers

    def slot_of(self, client_id, local_port, timeout=5):
        """The worker slot that logged the connection of client_id from
        127.0.0.1:local_port."""
        m = self.wait_log(r"worker/(\d+)\[\d+\] info: client connected "
                          r"client=%s addr=127\.0\.0\.1:%d\b" %
                          (re.escape(client_id), local_port), timeout)
        return int(m.group(1))

    def slot_of_socket(self, local_port, timeout=5):
        """The worker slot that accepted the TCP connection from
        127.0.0.1:local_port, found by its socket among the workers' open
        files: known before the client sent anything, so a test can close
        a connection that landed on the wrong worker before its CONNECT
        has any effect (reading /proc/PID/fd needs the workers' user or
        root)."""
        logged = re.compile(r"worker/(\d+)\[\d+\] [^\n]*addr=127\.0\.0\.1:%d\b" %
                            local_port)

        def find():
            inode = _accepted_inode(self.port, local_port)
            if not inode:
                # gone already (a client id taken over on a slow
                # machine), or not accepted yet: the log may know
                m = logged.search(self.log())
                return (int(m.group(1)),) if m else None
            link = "socket:[%d]" % inode
            for slot in range(self.slots):
                fds = "/proc/%d/fd" % self.worker_pid(slot)
                try:
                    names = os.listdir(fds)
                except OSError:
                    continue
                for fd in names:
                    try:
                        if os.readlink(os.path.join(fds, fd)) == link:
                            return (slot,)
                    except OSError:
                        pass
            return None
        return wait_for(find, timeout, "a worker to accept the connection from port %d" %
                        local_port)[0]

    def wait_closed(self, local_port, timeout=5):
        """Wait until a worker logged the end of the connection from
        127.0.0.1:local_port: a test that closes a connection and opens
        another with the same client id must not have the first one's
        CONNECT overtake the second's on a slow machine."""
        self.wait_log(r"addr=127\.0\.0\.1:%d\b[^\n]*reason=" % local_port, timeout)

    def connection_slots(self, client_id, n, timeout=5):
        """The worker slots that logged the first n connections of
        client_id, in order (for clients whose local port the test does
        not know, such as mosquitto_sub)."""
        rx = re.compile(r"worker/(\d+)\[\d+\] info: client connected client=%s addr=" %
                        re.escape(client_id))
        found = wait_for(lambda: len(rx.findall(self.log())) >= n and rx.findall(self.log()),
                         timeout, "%d connections of %s in the log" % (n, client_id))
        return [int(s) for s in found[:n]]

    def worker_pid(self, slot):
        """The pid of the worker serving slot now (the last one started)."""
        pids = re.findall(r"child started role=worker slot=%d pid=(\d+)" % slot, self.log())
        check(pids, "no worker was started for slot %d" % slot)
        return int(pids[-1])

    def check_alive(self, what):
        """No process of the broker died or was replaced since start."""
        check(self.proc.poll() is None,
              "%s: promptmqd exited with status %s" % (what, self.proc.returncode))
        died = re.findall(r"child (?:killed by signal|exited) .*",
                          self.log()[getattr(self, "start_mark", 0):])
        check(not died, "%s: a child process died: %s" % (what, "; ".join(died)))
        now = self.children()
        check(now == self.started_children,
              "%s: children changed from %s to %s" % (what, self.started_children, now))


def restarted(b, name):
    """Stop promptmqd b (status 0) and start a new one on its data and
    runtime directories: what a restart of the whole broker keeps.  The
    caller cleans the new one up with keep=True (the directory is b's)."""
    status = b.stop()
    check(status == 0, "promptmqd exit status %s before the restart" % status)
    again = PromptMQ(workers=b.workers, base=b.base, name=name)
    again.start()
    return again


def stop_restarted(again):
    """The end of a test of a broker restarted(): still up, and it stops
    cleanly."""
    again.check_alive("after the restart")
    status = again.stop()
    check(status == 0, "promptmqd (started again) exit status %s" % status)


def cleanup_restarted(again, b):
    """Remove b, and a broker restarted() from it (None: never started)."""
    if again is not None:
        again.cleanup(keep=True)    # the base is b's
    b.cleanup()


class Mosquitto(Broker):
    """Mosquitto on a free port, configured like promptmqd where it can
    be (promptmqd's maximum QoS and retain availability; both offer 10
    topic aliases)."""
    kind = "mosquitto"
    max_qos = PromptMQ.max_qos
    keeps_sessions = True       # clean-session=0 / session expiry are honoured
    shared_subs = True          # $share subscriptions are granted
    subscription_ids = True
    retain_available = PromptMQ.retain_available   # configured like promptmqd
    keepalive_grace = 6.0       # 2.0.11 checks keep alive coarsely: a 1s
                                # keep alive is enforced after about 5s
    says_taken_over = False     # 2.0.11 closes a taken-over 5.0 client silently
    expiry_late = 1.0           # 2.0.11 counts session expiry in whole seconds:
                                # a session ends up to 1s after its interval
    qos2_inflight_limit = 20    # 2.0.11 takes 20 QoS 2 messages in flight from
                                # a client (max_inflight_messages); it answers
                                # the next ones with PUBREC 0x97, which a 3.1.1
                                # client reads as a plain PUBREC, and drops them
    receive_maximum_disconnect = False  # 2.0.11 answers a QoS 2 PUBLISH past its
                                        # Receive Maximum with PUBREC 0x97 and
                                        # keeps the connection
    receive_maximum_refill = True       # 2.0.11 sends up to the client's Receive
                                        # Maximum more QoS 2 messages after each
                                        # PUBCOMP, whatever is still in flight
    resends_expired = False     # 2.0.11 deletes an unacknowledged message whose
                                # Message Expiry Interval passed instead of
                                # sending it again at the next connection
    expired_stalls_queue = True         # 2.0.11, deleting an expired message when
                                        # the client's window frees, sends none of
                                        # those queued behind it until another
                                        # message for the client comes, and that
                                        # one overtakes them

    max_queued = 100000
    queue_qos0 = False

    def __init__(self, workers=None, max_packet_size=None, name="mosq", **kw):
        Broker.__init__(self, workers=1, conf=None, name=name, **kw)
        self.slots = 1
        self.max_packet_size = max_packet_size
        self.confpath = os.path.join(self.base, "mosquitto.conf")

    def command(self, extra=()):
        return [MOSQUITTO, "-c", self.confpath] + list(extra)

    fixed_port = None   # a port to start on every time (None: a free one)

    def config_lines(self):
        """mosquitto.conf for self.port; a subclass (a benchmark's
        persistent Mosquitto) gives its own."""
        lines = ["listener %d 127.0.0.1" % self.port,
                 "max_qos %d" % self.max_qos, "max_topic_alias 10",
                 "allow_anonymous true",
                 "retain_available %s" % str(self.retain_available).lower(),
                 "max_queued_messages %d" % self.max_queued,
                 "persistence false",
                 # the default, stated: QoS 0 messages are not queued
                 # for an offline session (mqtt_sessions checks it)
                 "queue_qos0_messages %s" % str(self.queue_qos0).lower(),
                 "log_dest stderr", "log_type all"]
        if self.max_packet_size:
            lines.append("max_packet_size %d" % self.max_packet_size)
        return lines

    def start(self, wait_ready=True, timeout=15):
        for attempt in range(5):
            self.port = self.fixed_port or free_port()
            with open(self.confpath, "w") as f:
                f.write("\n".join(self.config_lines()) + "\n")
            mark = len(self.log()) if os.path.exists(self.logpath) else 0
            Broker.start(self, wait_ready=False)
            if not wait_ready:
                return self
            rx = re.compile(r"mosquitto version \S+ running|Address already in use")
            m = wait_for(lambda: rx.search(self.log(), mark) or self.proc.poll() is not None,
                         timeout, "mosquitto to start")
            if m is not True and m.group(0).startswith("mosquitto version"):
                return self
            self.stop()
        raise TestFailure("mosquitto did not start; log:\n%s" % self.log()[-2000:])

    def slot_of(self, client_id, local_port, timeout=5):
        return 0

    def slot_of_socket(self, local_port, timeout=5):
        return 0

    def wait_closed(self, local_port, timeout=5):
        pass

    def connection_slots(self, client_id, n, timeout=5):
        return [0] * n

    def check_alive(self, what):
        check(self.proc.poll() is None,
              "%s: mosquitto exited with status %s" % (what, self.proc.returncode))


class GuardedMosquitto(Mosquitto):
    """Mosquitto that lets in the users of a password file (anonymous
    clients too with allow_anonymous), with an ACL file if given; it
    reads them as its own user: the files and their directory must let
    it."""

    def __init__(self, password_file, name="mosq-auth", acl_file=None,
                 allow_anonymous=False, **kw):
        Mosquitto.__init__(self, name=name, **kw)
        self.password_file, self.acl_file = password_file, acl_file
        self.allow_anonymous = allow_anonymous

    def config_lines(self):
        lines = ["listener %d 127.0.0.1" % self.port,
                 "allow_anonymous %s" % str(self.allow_anonymous).lower(),
                 "password_file %s" % self.password_file, "log_dest stderr",
                 "log_type all"]
        if self.acl_file:
            lines.append("acl_file %s" % self.acl_file)
        return lines


class PersistentMosquitto(Mosquitto):
    """Mosquitto with persistence true, the comparison of the durability
    tests and benchmarks (../shared/bench/suite.sh's mosq-persist): its
    database in its directory, saved every autosave seconds (or after
    that many changes with on_changes), max_queued_messages max_queued,
    extra lines appended.  It runs as the current user, who can write
    there.  log_all logs every packet (tests read them); otherwise starts,
    connections and failures only (a log of every packet would weigh on
    a benchmark's figures)."""

    max_queued = 1000000

    def __init__(self, name="mosq-persist", autosave=1, on_changes=False,
                 log_all=False, extra=(), **kw):
        Mosquitto.__init__(self, name=name, **kw)
        self.autosave, self.on_changes = autosave, on_changes
        self.log_all, self.extra = log_all, list(extra)

    def config_lines(self):
        lines = ["listener %d 127.0.0.1" % self.port, "allow_anonymous true",
                 "max_qos 2", "max_queued_messages %d" % self.max_queued,
                 "persistence true", "persistence_location %s/" % self.base,
                 "persistence_file mosquitto.db",
                 "autosave_interval %d" % self.autosave,
                 "autosave_on_changes %s" % str(self.on_changes).lower(),
                 # as root it would run as user mosquitto, who cannot
                 # write in this directory
                 "user %s" % pwd.getpwuid(os.geteuid()).pw_name,
                 "log_dest stderr"]
        if self.log_all:
            lines += ["log_type all", "log_timestamp_format %Y-%m-%dT%H:%M:%S"]
        else:
            lines += ["log_type error", "log_type warning", "log_type notice",
                      "log_type information"]
        return lines + self.extra


def _accepted_inode(port, peer_port):
    """The inode of the server's socket of the loopback TCP connection
    between port (the broker's) and peer_port, from /proc/net/tcp; 0
    while the connection waits in the listen queue (an earlier connection
    with the same ports, in TIME_WAIT, has none either)."""
    with open("/proc/net/tcp") as f:
        rows = f.read().splitlines()[1:]
    for row in rows:
        fields = row.split()
        local, remote = fields[1].split(":"), fields[2].split(":")
        if (local[0] == remote[0] == "0100007F" and int(local[1], 16) == port and
                int(remote[1], 16) == peer_port and int(fields[9])):
            return int(fields[9])
    return 0


def start_target(workers=2, max_packet_size=None, name="mqtt"):
    """Start the broker under test (PMQ_TARGET: promptmqd, the default, or
    mosquitto).  max_packet_size is in bytes."""
    cls = {"promptmqd": PromptMQ, "mosquitto": Mosquitto}.get(TARGET)
    check(cls, "PMQ_TARGET=%s: unknown target (promptmqd or mosquitto)" % TARGET)
    return cls(workers=workers, max_packet_size=max_packet_size, name=name).start()


# ---------------------------------------------------------------------------
# MQTT on a raw socket: build any packet, well-formed or not, and read what
# the broker answers, packet by packet.

PACKET_NAMES = dict(enumerate(
    "CONNECT CONNACK PUBLISH PUBACK PUBREC PUBREL PUBCOMP SUBSCRIBE SUBACK "
    "UNSUBSCRIBE UNSUBACK PINGREQ PINGRESP DISCONNECT AUTH".split(), 1))
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, \
    SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(1, 16)

# MQTT 5 properties: identifier -> (name, encoding)
PROPERTIES = {
    0x01: ("payload-format", "byte"), 0x02: ("message-expiry", "int4"),
    0x03: ("content-type", "str"), 0x08: ("response-topic", "str"),
    0x09: ("correlation-data", "bin"), 0x0B: ("subscription-id", "varint"),
    0x11: ("session-expiry", "int4"), 0x12: ("assigned-client-id", "str"),
    0x13: ("server-keep-alive", "int2"), 0x15: ("auth-method", "str"),
    0x16: ("auth-data", "bin"), 0x17: ("request-problem-info", "byte"),
    0x18: ("will-delay", "int4"), 0x19: ("request-response-info", "byte"),
    0x1A: ("response-info", "str"), 0x1C: ("server-reference", "str"),
    0x1F: ("reason-string", "str"), 0x21: ("receive-maximum", "int2"),
    0x22: ("topic-alias-maximum", "int2"), 0x23: ("topic-alias", "int2"),
    0x24: ("maximum-qos", "byte"), 0x25: ("retain-available", "byte"),
    0x26: ("user-property", "pair"), 0x27: ("maximum-packet-size", "int4"),
    0x28: ("wildcard-sub-available", "byte"),
    0x29: ("subscription-id-available", "byte"),
    0x2A: ("shared-sub-available", "byte"),
}
PROPERTY_IDS = {name: pid for pid, (name, _) in PROPERTIES.items()}

PROTOCOLS = {3: (b"MQIsdp", 3), 4: (b"MQTT", 4), 5: (b"MQTT", 5)}


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s):
    """A length-prefixed string; bytes go as they are (ill-formed UTF-8 too)."""
    if isinstance(s, str):
        s = s.encode("utf-8")
    return struct.pack("!H", len(s)) + s


def encode_props(props):
    """props: {name: value} (user-property: a list of pairs) -> bytes with
    the length in front."""
    out = bytearray()
    for name, value in (props or {}).items():
        pid = PROPERTY_IDS[name]
        kind = PROPERTIES[pid][1]
        for v in (value if kind == "pair" else [value]):
            out.append(pid)
            if kind == "byte":
                out.append(v)
            elif kind == "int2":
                out += struct.pack("!H", v)
            elif kind == "int4":
                out += struct.pack("!I", v)
            elif kind == "varint":
                out += varint(v)
            elif kind == "pair":
                out += mqtt_str(v[0]) + mqtt_str(v[1])
            else:
                out += mqtt_str(v)
    return varint(len(out)) + bytes(out)


def packet(ptype, flags, body, length=None):
    """A control packet; length overrides the Remaining Length bytes."""
    return bytes([ptype << 4 | flags]) + (length if length is not None
                                          else varint(len(body))) + body


def connect_packet(client_id, version=4, clean=True, keepalive=60, props=None,
                   protocol=None, username=None, password=None):
    """CONNECT; protocol=(name, level) overrides what version implies;
    username and password (str or bytes) are sent when not None."""
    name, level = protocol or PROTOCOLS[version]
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0) | \
        (0x40 if password is not None else 0)
    body = mqtt_str(name) + bytes([level, flags]) + struct.pack("!H", keepalive)
    if version == 5:
        body += encode_props(props)
    payload = mqtt_str(client_id)
    for field in (username, password):
        if field is not None:
            payload += mqtt_str(field)
    return packet(CONNECT, 0, body + payload)


def publish_packet(topic, payload, qos=0, pid=1, retain=False, version=4, props=None,
                   dup=False):
    if isinstance(payload, str):
        payload = payload.encode()
    body = mqtt_str(topic) + (struct.pack("!H", pid) if qos else b"")
    if version == 5:
        body += encode_props(props)
    return packet(PUBLISH, int(dup) << 3 | qos << 1 | int(retain), body + payload)


def subscribe_packet(pid, topics, version=4, props=None):
    """topics: [(filter, qos)]"""
    body = struct.pack("!H", pid) + (encode_props(props) if version == 5 else b"")
    for t, q in topics:
        body += mqtt_str(t) + bytes([q])
    return packet(SUBSCRIBE, 2, body)


def unsubscribe_packet(pid, filters, version=4, props=None, flags=2):
    body = struct.pack("!H", pid) + (encode_props(props) if version == 5 else b"")
    for f in filters:
        body += mqtt_str(f)
    return packet(UNSUBSCRIBE, flags, body)


def puback_packet(pid):
    return packet(PUBACK, 0, struct.pack("!H", pid))


def pubrec_packet(pid):
    return packet(PUBREC, 0, struct.pack("!H", pid))


def pubrel_packet(pid):
    """PUBREL: its fixed header flags are 0010 [MQTT-3.6.1-1]."""
    return packet(PUBREL, 2, struct.pack("!H", pid))


def pubcomp_packet(pid):
    return packet(PUBCOMP, 0, struct.pack("!H", pid))


PINGREQ_PACKET = packet(PINGREQ, 0, b"")


def disconnect_packet(version=4, reason=0, props=None):
    """DISCONNECT; props ({name: value}, 5.0), e.g. {"session-expiry": 1}."""
    if version == 5 and props:
        return packet(DISCONNECT, 0, bytes([reason]) + encode_props(props))
    return packet(DISCONNECT, 0, bytes([reason, 0]) if version == 5 and reason else b"")


def auth_packet(reason, props):
    """AUTH (5.0); props must name the method ("auth-method")."""
    return packet(AUTH, 0, bytes([reason]) + encode_props(props))


class Packet:
    """A packet read from the broker, with the fields the tests look at."""

    def __init__(self, ptype, flags, body, version):
        self.type, self.flags, self.body = ptype, flags, body
        self.props = {}
        self.reason = None
        if ptype == CONNACK:
            self.session_present = bool(body[0] & 1) if body else None
            self.reason = body[1] if len(body) > 1 else None
            if version == 5 and len(body) > 2:
                self.props = decode_props(body[2:])[0]
        elif ptype == PUBLISH:
            self.qos, self.retain = (flags >> 1) & 3, bool(flags & 1)
            n = struct.unpack("!H", body[:2])[0]
            self.topic = body[2:2 + n].decode("utf-8", "replace")
            rest = body[2 + n:]
            self.pid = None
            if self.qos:
                self.pid, rest = struct.unpack("!H", rest[:2])[0], rest[2:]
            if version == 5:
                self.props, used = decode_props(rest)
                rest = rest[used:]
            self.payload = rest
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK):
            self.pid = struct.unpack("!H", body[:2])[0]
            rest = body[2:]
            if version == 5 and ptype in (SUBACK, UNSUBACK):
                self.props, used = decode_props(rest)
                rest = rest[used:]
            elif ptype not in (SUBACK, UNSUBACK):
                self.reason = rest[0] if rest else 0
                rest = b""
            self.codes = list(rest)
        elif ptype in (DISCONNECT, AUTH):
            self.reason = body[0] if body else 0
            if len(body) > 1:
                self.props = decode_props(body[1:])[0]

    def __repr__(self):
        name = PACKET_NAMES.get(self.type, "type-%d" % self.type)
        if self.type == PUBLISH:
            return "PUBLISH(topic=%r payload=%r qos=%d%s%s)" % (
                self.topic, self.payload[:40], self.qos,
                "" if self.pid is None else " id=%d" % self.pid,
                " dup" if self.flags & 8 else "")
        if self.type in (SUBACK, UNSUBACK):
            return "%s(codes=%s)" % (name, ["0x%02X" % c for c in self.codes])
        if self.type in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            return "%s(id=%d 0x%02X%s)" % (name, self.pid, self.reason,
                                           " %s" % self.props if self.props else "")
        if self.reason is not None:
            return "%s(0x%02X%s)" % (name, self.reason,
                                     " %s" % self.props if self.props else "")
        return name


def read_varint(data, i):
    """The Variable Byte Integer at data[i] -> (value, index after it)."""
    v = shift = 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def split_packet(buf):
    """(packet bytes, rest) when buf starts with a whole packet, else None.
    A Remaining Length longer than four bytes is taken as it comes: the
    broker's own packets are checked by whoever reads them, not here."""
    n = shift = 0
    for i in range(1, min(len(buf), 5)):
        b = buf[i]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            end = i + 1 + n
            return (buf[:end], buf[end:]) if len(buf) >= end else None
    return None


def body_of(raw):
    """A whole packet's bytes after its fixed header."""
    return raw[read_varint(raw, 1)[1]:]


def packet_of(raw, version):
    """A whole packet's bytes as a Packet."""
    return Packet(raw[0] >> 4, raw[0] & 15, body_of(raw), version)


def decode_props(data):
    """bytes starting with the property length -> ({name: value}, bytes used)."""
    n, i = read_varint(data, 0)
    end, props = i + n, {}
    while i < end:
        pid = data[i]
        i += 1
        name, kind = PROPERTIES.get(pid, ("0x%02x" % pid, "bad"))
        check(kind != "bad", "unknown MQTT 5 property 0x%02x in %r" % (pid, data))
        if kind == "byte":
            v, i = data[i], i + 1
        elif kind == "int2":
            v, i = struct.unpack("!H", data[i:i + 2])[0], i + 2
        elif kind == "int4":
            v, i = struct.unpack("!I", data[i:i + 4])[0], i + 4
        elif kind == "varint":
            v, i = read_varint(data, i)
        else:
            ln = struct.unpack("!H", data[i:i + 2])[0]
            v, i = data[i + 2:i + 2 + ln], i + 2 + ln
            if kind == "pair":
                ln2 = struct.unpack("!H", data[i:i + 2])[0]
                v, i = (v.decode(), data[i + 2:i + 2 + ln2].decode()), i + 2 + ln2
            elif kind == "str":
                v = v.decode("utf-8", "replace")
        if kind == "pair" or name == "subscription-id":
            props.setdefault(name, []).append(v)      # they may repeat
        else:
            props[name] = v
    return props, end


class RawClient:
    """One MQTT connection on a plain socket, for the cases a real client
    library will not produce and for exact reason codes."""

    def __init__(self, port, version=4, name="raw"):
        self.version = version
        self.name = name
        self.client_id = None
        self.sock = tcp_connect(port)
        self.local_port = self.sock.getsockname()[1]
        self.buf = b""
        self.pending = []   # packets read while waiting for something else
        self.closed = False
        self.next_pid = 1

    def send(self, data):
        self.sock.sendall(data)

    def _read_packet(self, deadline):
        """The next packet from the socket, or None when the broker closed."""
        while True:
            got = split_packet(self.buf)
            if got:
                raw, self.buf = got
                return packet_of(raw, self.version)
            if self.closed:
                check(not self.buf, "%s: the broker closed the connection in the "
                      "middle of a packet: %r" % (self.name, self.buf))
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError()
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                self.closed = True
            self.buf += data

    def recv(self, timeout=5, what="a packet"):
        """The next packet; a failure if the connection closes or nothing
        comes in time (timeout stretched by SLOWDOWN)."""
        return self._recv_by(time.monotonic() + patience(timeout), what)

    def _recv_by(self, deadline, what):
        if self.pending:
            return self.pending.pop(0)
        start = time.monotonic()
        try:
            p = self._read_packet(deadline)
        except TimeoutError:
            raise TestFailure("%s: expected %s, got nothing within %.1fs" %
                              (self.name, what, deadline - start))
        check(p is not None, "%s: expected %s, got the connection closed" %
              (self.name, what))
        return p

    def expect(self, ptype, timeout=5, what=None):
        """Wait for a packet of type ptype; PUBLISH packets met on the way
        are kept for later, anything else is a failure."""
        what = what or PACKET_NAMES[ptype]
        deadline = time.monotonic() + patience(timeout)
        kept = []
        try:
            while True:
                if self.pending and self.pending[0].type == ptype:
                    return self.pending.pop(0)
                p = self._recv_by(deadline, what)
                if p.type == ptype:
                    return p
                check(p.type == PUBLISH, "%s: expected %s, got %r" % (self.name, what, p))
                kept.append(p)
        finally:
            self.pending = kept + self.pending

    def connect(self, client_id, clean=True, keepalive=60, props=None, expect_reason=0,
                username=None, password=None):
        """Send CONNECT and return the CONNACK, checking its return/reason code."""
        self.client_id = client_id
        self.send(connect_packet(client_id, self.version, clean, keepalive, props,
                                 username=username, password=password))
        ack = self.expect(CONNACK, what="CONNACK")
        if expect_reason is not None:
            check(ack.reason == expect_reason,
                  "%s: CONNACK code expected 0x%02X, got %r" % (self.name, expect_reason, ack))
        return ack

    def pid(self):
        self.next_pid = self.next_pid % 65535 + 1
        return self.next_pid

    def subscribe(self, topics, qos=1, props=None):
        """topics: a filter or a list of filters or (filter, qos); returns
        the SUBACK's codes."""
        if isinstance(topics, str):
            topics = [topics]
        topics = [t if isinstance(t, tuple) else (t, qos) for t in topics]
        pid = self.pid()
        self.send(subscribe_packet(pid, topics, self.version, props))
        ack = self.expect(SUBACK)
        check(ack.pid == pid and len(ack.codes) == len(topics),
              "%s: SUBACK for packet id %d and %d filters expected, got %r (pid %d)" %
              (self.name, pid, len(topics), ack, ack.pid))
        return ack.codes

    def publish(self, topic, payload, qos=0):
        """PUBLISH; at QoS 1, wait for the PUBACK; at QoS 2, for the
        PUBREC, then PUBREL and wait for the PUBCOMP."""
        pid = self.pid()
        self.send(publish_packet(topic, payload, qos, pid, version=self.version))
        if qos == 1:
            ack = self.expect(PUBACK)
            # 0x10 (no matching subscribers) is a success too
            check(ack.pid == pid and ack.reason < 0x80, "%s: PUBACK for %d expected, "
                  "got %r for %d" % (self.name, pid, ack, ack.pid))
        elif qos == 2:
            ack = self.expect(PUBREC)
            check(ack.pid == pid and ack.reason < 0x80, "%s: PUBREC for %d expected, "
                  "got %r" % (self.name, pid, ack))
            self.send(pubrel_packet(pid))
            ack = self.expect(PUBCOMP)
            check(ack.pid == pid and ack.reason == 0, "%s: PUBCOMP for %d expected, "
                  "got %r" % (self.name, pid, ack))

    def message(self, timeout=5, what="a PUBLISH"):
        """The next PUBLISH from the broker, acknowledged: QoS 1 with
        PUBACK; QoS 2 with PUBREC, then the PUBREL waited for and
        answered with PUBCOMP."""
        p = self.expect(PUBLISH, timeout, what)
        if p.qos == 1:
            self.send(puback_packet(p.pid))
        elif p.qos == 2:
            self.send(pubrec_packet(p.pid))
            rel = self.expect(PUBREL, timeout, "PUBREL for %r" % p)
            check(rel.pid == p.pid and rel.flags == 2 and rel.reason == 0,
                  "%s: PUBREL (flags 0010) for %d expected after PUBREC, got %r "
                  "(flags %d)" % (self.name, p.pid, rel, rel.flags))
            self.send(pubcomp_packet(p.pid))
        return p

    def ping(self, timeout=5):
        self.send(PINGREQ_PACKET)
        self.expect(PINGRESP, timeout, "PINGRESP")

    def expect_closed(self, timeout=5, disconnect=None, optional=False, allow=()):
        """Wait for the broker to close the connection.

        disconnect: None (nothing may come before the close), or the
        reason code (or a tuple of acceptable codes) of the DISCONNECT that
        must come last; optional: the DISCONNECT may be missing.  allow:
        packet types that may come before.  Returns the seconds the close
        took."""
        t0 = time.monotonic()
        timeout = patience(timeout)
        deadline = t0 + timeout
        got = list(self.pending)
        self.pending = []
        try:
            while True:
                p = self._read_packet(deadline)
                if p is None:
                    break
                got.append(p)
        except TimeoutError:
            raise TestFailure("%s: expected the broker to close the connection%s "
                              "within %.1fs; it is still open, got %s" %
                              (self.name, "" if disconnect is None else
                               " after DISCONNECT %s" % _codes(disconnect), timeout, got))
        finally:
            self.sock.settimeout(None)
        elapsed = time.monotonic() - t0
        unexpected = [p for p in got if p.type not in allow]
        if disconnect is None:
            check(not unexpected, "%s: expected the connection closed without a packet, "
                  "got %s then the close" % (self.name, unexpected))
        else:
            codes = disconnect if isinstance(disconnect, tuple) else (disconnect,)
            ok = (len(unexpected) == 1 and unexpected[0].type == DISCONNECT and
                  unexpected[0].reason in codes) or (optional and not unexpected)
            check(ok, "%s: expected %sDISCONNECT %s then the close, got %s then the close" %
                  (self.name, "(optionally) " if optional else "", _codes(disconnect),
                   unexpected or "nothing"))
        return elapsed

    def _read_now(self):
        """Add to buf what the socket holds now, without waiting."""
        if self.closed:
            return
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self.closed = True
                    return
                self.buf += data
        except BlockingIOError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            self.closed = True
        finally:
            self.sock.setblocking(True)

    def is_open(self):
        """True while the broker has not closed the connection (nothing may
        be waiting to be read)."""
        self._read_now()
        return not self.closed

    def available(self):
        """The packets that have come so far, without waiting: those kept
        for later first, then the whole ones the socket holds (for a test
        that watches several connections at once)."""
        self._read_now()
        out, self.pending = self.pending, []
        while True:
            got = split_packet(self.buf)
            if not got:
                return out
            raw, self.buf = got
            out.append(packet_of(raw, self.version))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _codes(c):
    return "/".join("0x%02X" % x for x in (c if isinstance(c, tuple) else (c,)))


# ---------------------------------------------------------------------------
# MQTT with a real client library (paho), one network thread per client.

class Message:
    def __init__(self, m):
        self.topic, self.payload, self.qos, self.retain = m.topic, m.payload, m.qos, m.retain
        self.time = time.monotonic()

    def __repr__(self):
        return "(topic=%r payload=%r qos=%d)" % (self.topic, self.payload[:40], self.qos)


class Client:
    """A paho client: connect() waits for the CONNACK; what arrives is
    queued (messages), recorded (acknowledged publishes, disconnects) and
    waited for with deadlines.  version: 3 (3.1), 4 (3.1.1) or 5.
    resubscribe: on every (re)connection, subscribe again to what
    subscribe() was given, as a client that keeps no session does.
    transport: "tcp", or "websockets" (MQTT over WebSocket)."""

    def __init__(self, port, client_id, version=5, clean=True, keepalive=60,
                 reconnect=False, resubscribe=False, transport="tcp"):
        import paho.mqtt.client as mqtt
        self.port, self.client_id, self.version = port, client_id, version
        self.clean, self.keepalive = clean, keepalive
        self.resubscribe = resubscribe
        proto = {3: mqtt.MQTTv31, 4: mqtt.MQTTv311, 5: mqtt.MQTTv5}[version]
        if version == 5:
            self.c = mqtt.Client(client_id=client_id, protocol=proto,
                                 reconnect_on_failure=reconnect, transport=transport)
        else:
            self.c = mqtt.Client(client_id=client_id, clean_session=clean,
                                 protocol=proto, reconnect_on_failure=reconnect,
                                 transport=transport)
        self.c.reconnect_delay_set(0.05, 0.5)
        self.lock = threading.Condition()
        self.messages = queue.Queue()
        self.connacks = []      # (session present, code, properties)
        self.disconnects = []   # reason codes, in order
        self.subacks = {}       # mid -> codes
        self.unsubacks = set()
        self.acked = {}         # mid -> time of the PUBACK (QoS 0: of the send)
        self.subscriptions = []
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = lambda c, u, m: self.messages.put(Message(m))
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish

    def tcp_socket(self):
        """The connection's socket (under WebSocket, inside paho's
        wrapper)."""
        sock = self.c.socket()
        return getattr(sock, "_socket", sock)

    def _event(self, fn):
        with self.lock:
            fn()
            self.lock.notify_all()

    def _on_connect(self, c, u, flags, rc, props=None):
        code = rc.value if hasattr(rc, "value") else rc
        self.local_port = self.tcp_socket().getsockname()[1]
        self._event(lambda: self.connacks.append(
            (flags.get("session present", 0), code, props)))
        if code == 0 and self.resubscribe and self.subscriptions:
            c.subscribe(self.subscriptions)

    def _on_disconnect(self, c, u, rc, props=None):
        code = rc.value if hasattr(rc, "value") else rc
        self._event(lambda: self.disconnects.append(code))

    def _on_subscribe(self, c, u, mid, codes, props=None):
        codes = [x.value if hasattr(x, "value") else x for x in codes]
        self._event(lambda: self.subacks.__setitem__(mid, codes))

    def _on_unsubscribe(self, c, u, mid, *rest):
        self._event(lambda: self.unsubacks.add(mid))

    def _on_publish(self, c, u, mid):
        now = time.monotonic()
        self._event(lambda: self.acked.__setitem__(mid, now))

    def wait(self, pred, timeout, what):
        """Wait, under the client's lock, until pred() is true (timeout
        stretched by SLOWDOWN)."""
        timeout = patience(timeout)
        with self.lock:
            if not self.lock.wait_for(pred, timeout):
                raise TestFailure("%s: timed out after %.1fs waiting for %s" %
                                  (self.client_id, timeout, what))

    def connect(self, timeout=5, expect_code=0, props=None):
        """Connect and start the network thread; returns the CONNACK as
        (session present, code, properties)."""
        self.start_connect(props)
        return self.finish_connect(timeout, expect_code)

    def start_connect(self, props=None):
        """Open the connection and send CONNECT, without the network
        thread: nothing the broker sends is read (nor acknowledged) until
        finish_connect(), and close() drops the connection unread.
        props: paho Properties for the CONNECT (5.0; see session_props)."""
        self._connacks_before = len(self.connacks)
        kw = {}
        if self.version == 5:
            kw["clean_start"] = self.clean
            if props is not None:
                kw["properties"] = props
        self.c.connect("127.0.0.1", self.port, self.keepalive, **kw)
        self.local_port = self.tcp_socket().getsockname()[1]

    def finish_connect(self, timeout=5, expect_code=0):
        """Start the network thread and wait for the CONNACK; returns it as
        (session present, code, properties)."""
        n = self._connacks_before
        self.c.loop_start()
        self.wait(lambda: len(self.connacks) > n, timeout, "CONNACK")
        ack = self.connacks[n]
        check(expect_code is None or ack[1] == expect_code,
              "%s: CONNACK code expected %s, got %s" % (self.client_id, expect_code, ack[1]))
        return ack

    def subscribe(self, topics, qos=1, timeout=5):
        """Subscribe to a filter or a list of them (or of (filter, qos));
        returns the SUBACK's codes (granted QoS or reason codes)."""
        if isinstance(topics, str):
            topics = [topics]
        topics = [t if isinstance(t, tuple) else (t, qos) for t in topics]
        self.subscriptions += topics
        rc, mid = self.c.subscribe(topics)
        check(rc == 0, "%s: subscribe failed locally (rc %d)" % (self.client_id, rc))
        self.wait(lambda: mid in self.subacks, timeout, "SUBACK for %s" % topics)
        return self.subacks[mid]

    def unsubscribe(self, topic, timeout=5):
        self.subscriptions = [s for s in self.subscriptions if s[0] != topic]
        rc, mid = self.c.unsubscribe(topic)
        check(rc == 0, "%s: unsubscribe failed locally (rc %d)" % (self.client_id, rc))
        self.wait(lambda: mid in self.unsubacks, timeout, "UNSUBACK for %s" % topic)

    def publish(self, topic, payload, qos=0, wait=True, timeout=5):
        """Publish; with wait, until paho reports it sent (QoS 0) or
        acknowledged (QoS 1: PUBACK; QoS 2: PUBCOMP).  Returns the
        message id."""
        info = self.c.publish(topic, payload, qos)
        check(info.rc == 0, "%s: publish to %s failed locally (rc %d)" %
              (self.client_id, topic, info.rc))
        if wait:
            self.wait(lambda: info.mid in self.acked, timeout,
                      "%s for message %d on %s" % ("PUBCOMP" if qos == 2 else "PUBACK",
                                                   info.mid, topic))
        return info.mid

    def get(self, timeout=2, what="a message"):
        timeout = patience(timeout)
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise TestFailure("%s: expected %s, got nothing within %.1fs" %
                              (self.client_id, what, timeout))

    def expect(self, topic, payload, qos=None, timeout=2):
        """The next message must be this one."""
        if isinstance(payload, str):
            payload = payload.encode()
        m = self.get(timeout, "%r on %s" % (payload[:40], topic))
        check((m.topic, m.payload) == (topic, payload) and qos in (None, m.qos),
              "%s: expected %r on %s%s, got %r" % (
                  self.client_id, payload[:40], topic,
                  "" if qos is None else " at QoS %d" % qos, m))
        return m

    def collect(self, n, timeout=5, what="messages"):
        """n messages, within timeout overall (stretched by SLOWDOWN)."""
        timeout = patience(timeout)
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < n:
            try:
                got.append(self.messages.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise TestFailure("%s: expected %d %s within %.1fs, got %d: last %s" %
                                  (self.client_id, n, what, timeout, len(got), got[-3:]))
        return got

    def expect_nothing_before(self, topic, payload, timeout=2):
        """The next message must be this marker: whatever the test sent
        before it to this client was not delivered."""
        self.expect(topic, payload, None, timeout)

    def connected(self):
        return self.c.is_connected()

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


def session_props(expiry=None, receive_maximum=None):
    """paho CONNECT properties (5.0): Session Expiry Interval (seconds),
    Receive Maximum; None leaves one out."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    p = Properties(PacketTypes.CONNECT)
    if expiry is not None:
        p.SessionExpiryInterval = expiry
    if receive_maximum is not None:
        p.ReceiveMaximum = receive_maximum
    return p


def client_elsewhere(b, make, avoid, props=None, tries=40):
    """A paho client made by make() (not connected), its CONNECT sent on a
    connection a worker slot other than avoid accepted, where the target
    has several (avoid None: any slot).  A connection that lands on avoid
    is closed unread (what the broker sent it stays unacknowledged, to be
    sent again) and another client made.  Returns (client, slot); the
    caller completes the connection with finish_connect()."""
    for _ in range(tries):
        c = make()
        c.start_connect(props)
        s = b.slot_of_socket(c.local_port)
        if b.slots == 1 or avoid is None or s != avoid:
            return c, s
        c.close()
        b.wait_closed(c.local_port)
    raise TestFailure("%d connections all landed on worker slot %d" % (tries, avoid))


def raw_elsewhere(b, version, name, avoid, tries=40):
    """A RawClient whose TCP connection a worker slot other than avoid
    accepted, where the target has several (avoid None: any slot);
    nothing is sent on a connection that lands on avoid: it is closed and
    another one opened.  Returns (client, slot); the caller connects."""
    for _ in range(tries):
        r = RawClient(b.port, version, name)
        s = b.slot_of_socket(r.local_port)
        if b.slots == 1 or avoid is None or s != avoid:
            return r, s
        r.close()
        b.wait_closed(r.local_port)
    raise TestFailure("%d connections all landed on worker slot %d" % (tries, avoid))


@contextlib.contextmanager
def clients(port, ids, version=5, **kw):
    """Connected paho clients with these ids, closed at the end."""
    made = []
    try:
        for cid in ids:
            made.append(Client(port, cid, version, **kw))
            made[-1].connect()
        yield made
    finally:
        for c in made:
            c.close()


def inbox_client(port, name, version=5, transport="tcp", setup=None):
    """A connected Client (a unique id from name) subscribed at QoS 1 to
    its inbox, CLIENT_ID/inbox; setup(client) runs before the connection
    (TLS settings, a user name)."""
    c = Client(port, unique(name), version, transport=transport)
    try:
        if setup:
            setup(c)
        c.connect()
        check(c.subscribe(c.client_id + "/inbox", 1) == [1], "%s: SUBACK for its inbox" %
              name)
    except BaseException:
        c.close()
        raise
    return c


def cpu_ticks(pids):
    """User and system clock ticks the processes pids have used."""
    t = 0
    for p in pids:
        with open("/proc/%d/stat" % p) as f:
            st = f.read()
        fields = st[st.rfind(")") + 2:].split()
        t += int(fields[11]) + int(fields[12])
    return t


def close_all(slots):
    """Close the clients of spread()'s {slot: [clients]}."""
    for cs in slots.values():
        for c in cs:
            c.close()


def spread(b, make, per_slot=1, tries=200, slots=None):
    """Connect clients made by make(i) until every worker slot of the
    target holds per_slot of them (where each lands is the kernel's
    SO_REUSEPORT choice); the extra ones are closed.  Returns
    {slot: [clients]}; a target without workers has one slot, 0.
    slots: clients already placed, to top up."""
    slots = slots or {s: [] for s in range(b.slots)}
    extra = []
    try:
        for i in range(tries):
            if all(len(v) >= per_slot for v in slots.values()):
                return slots
            c = make(i)
            s = b.slot_of(c.client_id, c.local_port)
            (slots[s] if len(slots[s]) < per_slot else extra).append(c)
        raise TestFailure("%d connections did not give every worker %d clients: %s" %
                          (tries, per_slot, {s: len(v) for s, v in slots.items()}))
    finally:
        for c in extra:
            c.close()


class Lines:
    """The output lines of a process, read on a thread; wait() for one
    (timeout stretched by SLOWDOWN)."""

    def __init__(self, proc):
        self.q = queue.Queue()
        self.all = []
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, f):
        for line in f:
            self.q.put(line.rstrip("\n"))

    def wait(self, pred, timeout, what):
        timeout = patience(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TestFailure("timed out after %.1fs waiting for %s; output: %s" %
                                      (timeout, what, self.all[-10:]))
            self.all.append(line)
            if pred(line):
                return line


def unique(prefix="t"):
    """A name no other test run shares (topics, client ids)."""
    unique.n += 1
    return "%s-%d-%d" % (prefix, os.getpid(), unique.n)


unique.n = 0


def run_test(fn, promptmqd_only=None):
    """Run a test function; print PASS/FAIL and exit like automake expects.

    promptmqd_only: why the test means nothing for another target (several
    workers, walsvc, log lines); with PMQ_TARGET set to another broker the
    test is skipped with that reason."""
    name = os.path.basename(sys.argv[0])
    if promptmqd_only and TARGET != "promptmqd":
        print("SKIP: %s: needs promptmqd (%s), target is %s" %
              (name, promptmqd_only, TARGET))
        sys.exit(SKIP)
    try:
        rv = fn()
    except TestFailure as e:
        print("FAIL: %s: %s" % (name, e))
        sys.exit(1)
    if rv == SKIP:
        sys.exit(SKIP)
    print("PASS: %s" % name)
    sys.exit(0)
