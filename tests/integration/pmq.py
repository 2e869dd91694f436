"""pmq.py - shared helpers for the integration tests.

Every test starts the real promptmqd from the build tree on a free port
(--bind 127.0.0.1:0, the port read back from the log), with its own short
runtime directory (IPC socket paths must fit in 107 bytes) and data
directory, and stops it at the end.  Everything waits with a deadline:
a test that hangs is a failure, never a stuck CI run.
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
            self.wait_log(r"supervisor\[\d+\] notice: ready", timeout)
            m = re.search(r"listening addr=127\.0\.0\.1:(\d+)", self.log())
            check(m, "no listening line in the log")
            self.port = int(m.group(1))
        return self

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


def run_test(fn):
    """Run a test function; print PASS/FAIL and exit like automake expects."""
    name = os.path.basename(sys.argv[0])
    try:
        rv = fn()
    except TestFailure as e:
        print("FAIL: %s: %s" % (name, e))
        sys.exit(1)
    if rv == SKIP:
        sys.exit(SKIP)
    print("PASS: %s" % name)
    sys.exit(0)
