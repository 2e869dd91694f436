"""promptmqd -d: the daemon and the command that starts it.

- `promptmqd -d` returns 0 only once the broker is ready: the port
  answers MQTT (CONNACK) right after it returns, and the log already has
  the ready line.  It leaves the caller's stdout and stderr (they reach
  end of file: a caller reading them does not hang) and its session.
- The pid file (default RUNTIME-DIR/promptmqd.pid) holds the daemon's
  pid, the supervisor of the broker's processes, and is locked.
- A second `promptmqd -d` with the same pid file (its other directories
  and port its own) is refused with status 1 and a message naming the
  running daemon's pid; the pid file is left as it was, the daemon runs
  on.
- A start that fails is reported by the command: status 1 and the
  message on stderr for a port already in use (found before the daemon
  is ready), a non-zero status and the message on stderr for a log that
  walsvc refuses (found after the daemon was forked); no process and no
  pid file is left behind either time.
- SIGTERM to the daemon stops it and removes its pid file.
"""

import fcntl
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pmq
from pmq import check

RETURNS_WITHIN = 10


def run_daemon(base, args):
    """promptmqd -d with its own directories under base; returns
    (status, stdout, stderr, seconds) once it returned and closed both."""
    cmd = [pmq.PROMPTMQD, "-d", "-c", pmq.DEV_CONF, "--workers", "2",
           "--data-dir", os.path.join(base, "data"),
           "--runtime-dir", os.path.join(base, "run")] + args
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    try:
        p.wait(pmq.patience(RETURNS_WITHIN))
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise pmq.TestFailure("promptmqd -d did not return within %ds" %
                              pmq.patience(RETURNS_WITHIN))
    took = time.monotonic() - t0
    try:
        out, err = p.communicate(timeout=pmq.patience(3))
    except subprocess.TimeoutExpired:
        p.stdout.close()
        p.stderr.close()
        raise pmq.TestFailure("promptmqd -d returned %d but the daemon kept its stdout or "
                              "stderr open" % p.returncode)
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), took


def processes_under(base):
    """Processes whose command line mentions base: our daemons."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if base.encode() in cmdline and pmq.pid_alive(int(entry)):
            out.append(int(entry))
    return out


def locked(path):
    """True if another process holds a lock (flock or fcntl) on path."""
    with open(path, "r+b") as f:
        for lock, unlock in ((fcntl.flock, fcntl.flock), (fcntl.lockf, fcntl.lockf)):
            try:
                lock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            unlock(f, fcntl.LOCK_UN)
    return False


def read_pidfile(path):
    with open(path) as f:
        text = f.read()
    check(re.fullmatch(r"\d+\n?", text), "pid file %s holds %r" % (path, text))
    return int(text)


def no_leftovers(base, pidfile, what):
    pmq.wait_for(lambda: not processes_under(base), 3, "no process left after %s" % what)
    check(not os.path.exists(pidfile), "%s left the pid file %s" % (what, pidfile))


def test():
    tmp = tempfile.mkdtemp(prefix="detach.", dir="/tmp")
    held = socket.socket()
    daemon = None
    try:
        first = os.path.join(tmp, "a")
        logfile = os.path.join(first, "promptmqd.log")
        os.makedirs(first)
        pidfile = os.path.join(first, "run", "promptmqd.pid")

        # ready when it returns
        status, out, err, took = run_daemon(first, ["--bind", "127.0.0.1:0",
                                                    "--log-target", logfile])
        check(status == 0, "promptmqd -d exited %d:\n%s%s" % (status, out, err))
        with open(logfile) as f:
            log = f.read()
        check("notice: ready" in log, "promptmqd -d returned before the ready line:\n%s" % log)
        port = int(re.search(r"listening addr=127\.0\.0\.1:(\d+)", log).group(1))
        r = pmq.RawClient(port, 5, "right after -d")
        r.connect(pmq.unique("detach"))
        r.close()

        check(os.path.exists(pidfile), "no pid file at %s" % pidfile)
        daemon = read_pidfile(pidfile)
        kids = sorted(pmq.children_of(daemon).values())
        check(kids == ["promptmq-walsvc", "promptmq-worker", "promptmq-worker"],
              "the pid file's process %d has children %s" % (daemon, kids))
        check(os.getsid(daemon) != os.getsid(0), "the daemon stayed in the caller's session")
        check(locked(pidfile), "the pid file is not locked")
        print("-d returned in %.2fs; daemon %d ready" % (took, daemon))

        # a second daemon on the same pid file
        second = os.path.join(tmp, "b")
        status, out, err, _ = run_daemon(second, ["--bind", "127.0.0.1:0",
                                                  "--pidfile", pidfile])
        check(status == 1, "a second daemon on the same pid file: status %d" % status)
        check(str(daemon) in err, "the refusal does not name pid %d:\n%s" % (daemon, err))
        check(read_pidfile(pidfile) == daemon and pmq.pid_alive(daemon),
              "the refused start touched the pid file or the daemon")
        pmq.wait_for(lambda: not processes_under(second), 3,
                     "no process left by the refused start")
        print("second daemon refused: %s" % err.strip().splitlines()[-1])

        # the port is taken: refused before the daemon is ready
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        taken = held.getsockname()[1]
        third = os.path.join(tmp, "c")
        status, out, err, _ = run_daemon(third, ["--bind", "127.0.0.1:%d" % taken])
        check(status == 1, "port in use: status %d" % status)
        check("127.0.0.1:%d" % taken in err and "in use" in err, "port in use: stderr "
              "does not name the address and the reason:\n%s" % err)
        no_leftovers(third, os.path.join(third, "run", "promptmqd.pid"), "port in use")

        # walsvc refuses the log: found after the fork
        fourth = os.path.join(tmp, "d")
        waldir = os.path.join(fourth, "data", "wal")
        os.makedirs(waldir)
        with open(os.path.join(waldir, "0000000000000001.wal"), "wb") as f:
            f.write(b"PMQL" + struct.pack("!HHQII", 2, 24, 1, 0, 0))   # format 2
        status, out, err, _ = run_daemon(fourth, ["--bind", "127.0.0.1:0"])
        check(status != 0, "a log walsvc refuses: promptmqd -d exited 0")
        check("format version 2" in err, "a log walsvc refuses: stderr does not say "
              "why:\n%s" % err)
        no_leftovers(fourth, os.path.join(fourth, "run", "promptmqd.pid"), "a refused log")

        # SIGTERM: stops, the pid file goes
        os.kill(daemon, signal.SIGTERM)
        pmq.wait_for(lambda: not pmq.pid_alive(daemon), 10, "the daemon to stop")
        d = daemon
        daemon = None
        check(not os.path.exists(pidfile), "the pid file stayed after the daemon %d "
              "stopped" % d)
        with open(logfile) as f:
            check("notice: stopped status=0" in f.read(), "the daemon did not stop cleanly")
    finally:
        held.close()
        for pid in ([daemon] if daemon else []) + processes_under(tmp):
            for kid in pmq.children_of(pid):
                os.kill(kid, signal.SIGKILL)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if not os.environ.get("PMQ_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


pmq.run_test(test, promptmqd_only="runs promptmqd as a daemon")
