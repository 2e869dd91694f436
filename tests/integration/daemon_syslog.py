"""Logging to syslog: with --log-target syslog --log-syslog-facility
local3, every process (supervisor, walsvc, both workers) sends its lines
to /dev/log, each with facility local3 (PRI = 19 * 8 + severity) and the
severity of its level (notice 5, info 6, debug 7), tagged with its own
pid; nothing goes to stderr.

The test needs to read /dev/log: when it does not exist and the test runs
as root, it binds its own datagram socket there for the duration of the
test and removes it afterwards; otherwise it is skipped (77).
"""

import os
import re
import socket
import stat
import threading

import pmq
from pmq import check

DEVLOG = "/dev/log"
LOCAL3 = 19
SEVERITY = {"error": 3, "warn": 4, "notice": 5, "info": 6, "debug": 7}


class SyslogSink:
    """A datagram socket at /dev/log, drained by a thread (senders block
    when its small queue is full)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(DEVLOG)
        self.ino = os.stat(DEVLOG).st_ino
        os.chmod(DEVLOG, 0o666)
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
        # remove only the socket this test made
        st = os.lstat(DEVLOG)
        if stat.S_ISSOCK(st.st_mode) and st.st_ino == self.ino:
            os.unlink(DEVLOG)


# <PRI>Mmm dd hh:mm:ss TAG[PID]: ROLE: MESSAGE
MESSAGE = re.compile(r"^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d (\S+?)\[(\d+)\]: (\S+): (.*)$",
                     re.S)


def test():
    if os.path.lexists(DEVLOG) or os.geteuid() != 0:
        print("SKIP: daemon_syslog.py: %s" % ("cannot read the system's " + DEVLOG
                                              if os.path.lexists(DEVLOG) else
                                              "needs root to create " + DEVLOG))
        return pmq.SKIP
    try:
        sink = SyslogSink()
    except OSError as e:    # made by someone else meanwhile
        print("SKIP: daemon_syslog.py: cannot bind %s: %s" % (DEVLOG, e))
        return pmq.SKIP
    b = pmq.PromptMQ(workers=2, name="syslog",
                     args=["--log-target", "syslog", "--log-syslog-facility", "local3"])
    try:
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
        sink.close()


pmq.run_test(test, promptmqd_only="checks promptmqd's log lines")
