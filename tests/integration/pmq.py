"""pmq.py - shared helpers for the integration tests.

Every test starts the real promptmqd from the build tree on a free port
(--bind 127.0.0.1:0, the port read back from the log), with its own short
runtime directory (IPC socket paths must fit in 107 bytes) and data
directory, and stops it at the end.  Everything waits with a deadline:
a test that hangs is a failure, never a stuck CI run.

The MQTT tests (mqtt_*.py) start their broker with start_target(): the
promptmqd above, or with PMQ_TARGET=mosquitto a Mosquitto on a free
port, so that every check of standard MQTT behaviour can be shown to
hold on a broker known to be right.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def wait_for(pred, timeout, what, interval=0.02):
    """Poll pred() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


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
            out[int(entry)] = comm
    return out


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def tcp_connect(port, host="127.0.0.1", timeout=2.0):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Broker:
    """A promptmqd started from the build tree for one test."""

    def __init__(self, workers=2, args=(), conf=DEV_CONF, env=None, name="pmq",
                 preexec=None, base=None):
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
        self.proc = None
        self.port = None
        self._logf = None

    def command(self, extra=()):
        cmd = [PROMPTMQD]
        if self.conf:
            cmd += ["-c", self.conf]
        cmd += ["--bind", "127.0.0.1:0", "--workers", str(self.workers),
                "--data-dir", self.datadir, "--runtime-dir", self.rundir,
                "--log-level", "debug"]
        return cmd + self.args + list(extra)

    def start(self, wait_ready=True, timeout=15):
        self._logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self._logf,
                                     stderr=subprocess.STDOUT, env=self.env,
                                     preexec_fn=self.preexec)
        if wait_ready:
            self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout):
        self.wait_log(r"supervisor\[\d+\] notice: ready", timeout)
        m = re.search(r"listening addr=127\.0\.0\.1:(\d+)", self.log())
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
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
        finally:
            # children die on control-channel EOF; make sure, then remove
            for pid in list(children_of(self.proc.pid) if self.proc else []):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if not keep and not os.environ.get("PMQ_KEEP"):
                shutil.rmtree(self.base, ignore_errors=True)


# ---------------------------------------------------------------------------
# Targets: the MQTT tests run against promptmqd, or (PMQ_TARGET=mosquitto)
# against Mosquitto, to show that a test checks standard MQTT correctly.

TARGET = os.environ.get("PMQ_TARGET", "promptmqd")
MOSQUITTO = os.environ.get("PMQ_MOSQUITTO", "/usr/sbin/mosquitto")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PromptMQ(Broker):
    """promptmqd as the target of the MQTT tests.

    What this phase of promptmqd offers, for tests whose expectations
    differ between targets: QoS up to 1, no retained messages, no
    $share subscriptions, no session kept after a disconnect."""
    kind = "promptmqd"
    max_qos = 1
    keeps_sessions = False
    shared_subs = False
    subscription_ids = False
    keepalive_grace = 1.0       # seconds past 1.5 x keep alive to drop a client
    says_taken_over = True      # DISCONNECT 0x8E to a 5.0 client taken over

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

    def worker_pid(self, slot):
        """The pid of the worker serving slot now (the last one started)."""
        pids = re.findall(r"child started role=worker slot=%d pid=(\d+)" % slot, self.log())
        check(pids, "no worker was started for slot %d" % slot)
        return int(pids[-1])

    def check_alive(self, what):
        """No process of the broker died or was replaced since start."""
        check(self.proc.poll() is None,
              "%s: promptmqd exited with status %s" % (what, self.proc.returncode))
        died = re.findall(r"child (?:killed by signal|exited) .*", self.log())
        check(not died, "%s: a child process died: %s" % (what, "; ".join(died)))
        now = self.children()
        check(now == self.started_children,
              "%s: children changed from %s to %s" % (what, self.started_children, now))


class Mosquitto(Broker):
    """Mosquitto on a free port, configured like promptmqd in this phase
    where it can be (maximum QoS 1, no retained messages, no topic aliases)."""
    kind = "mosquitto"
    max_qos = 1
    keeps_sessions = True       # clean-session=0 / session expiry are honoured
    shared_subs = True          # $share subscriptions are granted
    subscription_ids = True
    keepalive_grace = 6.0       # 2.0.11 checks keep alive coarsely: a 1s
                                # keep alive is enforced after about 5s
    says_taken_over = False     # 2.0.11 closes a taken-over 5.0 client silently

    def __init__(self, workers=None, max_packet_size=None, name="mosq", **kw):
        Broker.__init__(self, workers=1, conf=None, name=name, **kw)
        self.slots = 1
        self.max_packet_size = max_packet_size
        self.confpath = os.path.join(self.base, "mosquitto.conf")

    def command(self, extra=()):
        return [MOSQUITTO, "-c", self.confpath] + list(extra)

    def start(self, wait_ready=True, timeout=15):
        for attempt in range(5):
            self.port = free_port()
            lines = ["listener %d 127.0.0.1" % self.port,
                     "max_qos 1", "max_topic_alias 0",
                     "allow_anonymous true", "retain_available false",
                     "max_queued_messages 100000", "persistence false",
                     "log_dest stderr", "log_type all"]
            if self.max_packet_size:
                lines.append("max_packet_size %d" % self.max_packet_size)
            with open(self.confpath, "w") as f:
                f.write("\n".join(lines) + "\n")
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

    def check_alive(self, what):
        check(self.proc.poll() is None,
              "%s: mosquitto exited with status %s" % (what, self.proc.returncode))


def start_target(workers=2, max_packet_size=None, name="mqtt"):
    """Start the broker under test (PMQ_TARGET: promptmqd, the default, or
    mosquitto).  max_packet_size is in bytes."""
    cls = {"promptmqd": PromptMQ, "mosquitto": Mosquitto}.get(TARGET)
    check(cls, "PMQ_TARGET=%s: unknown target (promptmqd or mosquitto)" % TARGET)
    return cls(workers=workers, max_packet_size=max_packet_size, name=name).start()


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
