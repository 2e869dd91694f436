"""Logging to syslog: with --log-target syslog --log-syslog-facility
local3, every process (supervisor, walsvc, both workers) sends its lines
to /dev/log, each with facility local3 (PRI = 19 * 8 + severity) and the
severity of its level (notice 5, info 6, debug 7), tagged with its own
pid; nothing goes to stderr.

The broker runs in a mount namespace of its own (unshare), whose /dev
is a copy of the machine's (symbolic links to the real nodes) where
/dev/log is the test's own datagram socket: the machine's syslog, if it
has one, and other test runs on the machine at the same time are never
touched and never heard.  As root the namespace is a plain mount
namespace; otherwise it is made inside a user namespace, and the test is
skipped (77) with the reason where the machine allows neither.
"""

import os
import re
import shutil
import socket
import subprocess
import threading

import pmq
from pmq import check

LOCAL3 = 19
SEVERITY = {"error": 3, "warn": 4, "notice": 5, "info": 6, "debug": 7}


# Run by unshare in the new mount namespace, before promptmqd: a tmpfs
# over /dev holding links to the real nodes (kept reachable by a
# recursive bind mount), and /dev/log a link to the test's socket.
PRIVATE_DEV = r"""
set -e
sock=$1 real=$2
shift 2
mount --make-rprivate /
mount --rbind /dev "$real"
mount -t tmpfs -o mode=0755 pmq-dev /dev
for f in "$real"/* "$real"/.[!.]*; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	ln -s "$f" /dev/
done
ln -sf "$sock" /dev/log
exec "$@"
"""


def namespace_wrapper(base, sock_path):
    """The command that runs promptmqd with a private /dev/log, or None
    with the reason it cannot be made here."""
    unshare = shutil.which("unshare", path="/usr/bin:/bin:" + os.environ.get("PATH", ""))
    if unshare is None:
        return None, "unshare (util-linux) is not installed"
    real = os.path.join(base, "realdev")
    os.mkdir(real)
    if os.geteuid() == 0:
        ns = [unshare, "--mount"]
    else:
        ns = [unshare, "--user", "--map-root-user", "--mount"]
    wrap = ns + ["sh", "-c", PRIVATE_DEV, "private-dev", sock_path, real]
    probe = subprocess.run(wrap + ["test", "-S", "/dev/log"], capture_output=True,
                           text=True, timeout=pmq.patience(10))
    if probe.returncode != 0:
        return None, "cannot make a mount namespace with a private /dev/log: %s" % (
            probe.stderr.strip() or "status %d" % probe.returncode)
    return wrap, None


class SyslogSink:
    """The test's datagram socket, drained by a thread (senders block
    when its small queue is full)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.lock = threading.Lock()
        self.got = []
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.got.append(data.decode("utf-8", "replace"))

    def messages(self):
        with self.lock:
            return list(self.got)

    def wait(self, pattern, timeout=10):
        rx = re.compile(pattern)

        def seen():
            return next((m for m in map(rx.search, self.messages()) if m), None)
        return pmq.wait_for(seen, timeout, "a syslog message /%s/" % pattern)

    def close(self):
        self.done = True
        self.thread.join(2)
        self.sock.close()


# <PRI>Mmm dd hh:mm:ss TAG[PID]: ROLE: MESSAGE
MESSAGE = re.compile(r"^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d (\S+?)\[(\d+)\]: (\S+): (.*)$",
                     re.S)


def test():
    b = pmq.PromptMQ(workers=2, name="syslog",
                     args=["--log-target", "syslog", "--log-syslog-facility", "local3"])
    sink = None
    try:
        sock_path = os.path.join(b.base, "devlog")
        sink = SyslogSink(sock_path)
        b.wrap, why = namespace_wrapper(b.base, sock_path)
        if why:
            print("SKIP: daemon_syslog.py: %s" % why)
            return pmq.SKIP
        b.start(wait_ready=False)
        sink.wait(r"supervisor: ready workers=2 ")
        port = int(sink.wait(r"supervisor: listening addr=127\.0\.0\.1:(\d+)").group(1))
        c = pmq.Client(port, pmq.unique("syslog"), 5)
        c.connect()
        c.close()
        sink.wait(r"worker/\d: client disconnected client=%s " % re.escape(c.client_id))
        check(b.stop() == 0, "promptmqd did not stop cleanly")
        sink.wait(r"supervisor: stopped status=0")

        senders = {}
        for text in sink.messages():
            m = MESSAGE.match(text)
            check(m, "not a syslog message: %r" % text)
            pri, pid, role = int(m.group(1)), int(m.group(3)), m.group(4)
            check(pri >> 3 == LOCAL3, "facility %d, expected local3 (%d): %r" %
                  (pri >> 3, LOCAL3, text))
            senders.setdefault(role, set()).add(pid)
        roles = sorted(senders)
        check(roles == ["supervisor", "walsvc", "worker/0", "worker/1"],
              "messages came from %s" % roles)
        check(senders["supervisor"] == {b.pid}, "supervisor messages from pids %s, "
              "expected %d" % (senders["supervisor"], b.pid))
        for role in ("walsvc", "worker/0", "worker/1"):
            check(len(senders[role]) == 1 and senders[role] != {b.pid},
                  "%s messages from pids %s" % (role, senders[role]))
        for pattern, level in ((r"supervisor: ready workers=2 ", "notice"),
                               (r"walsvc: walsvc ready ", "info"),
                               (r"worker/0: worker ready ", "info"),
                               (r"supervisor: worker ready slot=0 ", "debug")):
            m = sink.wait(pattern, 1)
            pri = int(re.match(r"<(\d+)>", m.string).group(1))
            check(pri == LOCAL3 * 8 + SEVERITY[level],
                  "/%s/ came with PRI %d, expected %d (local3, %s)" %
                  (pattern, pri, LOCAL3 * 8 + SEVERITY[level], level))
        check("ready workers=" not in b.log(), "with log target syslog, lines still "
              "went to stderr:\n%s" % b.log()[-2000:])
        print("%d syslog messages, all local3, from %s" % (len(sink.messages()), roles))
    finally:
        b.cleanup()
        if sink:
            sink.close()


pmq.run_test(test, promptmqd_only="checks promptmqd's log lines")
