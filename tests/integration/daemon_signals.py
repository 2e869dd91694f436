"""The signals an operator sends to promptmqd:

- SIGTERM with clients on both workers: every MQTT 5.0 client receives
  DISCONNECT 0x8B (server shutting down) and nothing else,
  every 3.1.1 client sees its connection closed without a packet, and
  promptmqd exits 0 well within server.stop-timeout.
- A second SIGTERM while the stop waits for a worker that cannot answer
  (stopped with SIGSTOP) ends everything at once: promptmqd and all its
  children are gone within 2 seconds, not after the stop timeout.
- SIGUSR1 after the log file was renamed (log rotation): the supervisor,
  both workers and walsvc write their next lines to a new file at the
  original path, and nothing more goes to the renamed one once they did.
"""

import os
import re
import signal
import subprocess
import time

import pmq
from pmq import check

STOP_TIMEOUT = 5


def raw_maker(b, version):
    def make(i):
        r = pmq.RawClient(b.port, version, "%s-%d" % (version, i))
        r.connect(pmq.unique("sig%d" % version))
        return r
    return make


def sigterm_with_clients():
    b = pmq.PromptMQ(workers=2, name="sigterm",
                     args=["--server-stop-timeout", "%ds" % STOP_TIMEOUT])
    placed = {}
    try:
        b.start()
        v5 = pmq.spread(b, raw_maker(b, 5), per_slot=3)
        v4 = pmq.spread(b, raw_maker(b, 4), per_slot=3)
        placed = {"5": v5, "4": v4}
        t0 = time.monotonic()
        b.proc.send_signal(signal.SIGTERM)
        for cs in v5.values():
            for r in cs:
                r.expect_closed(timeout=STOP_TIMEOUT, disconnect=0x8B)
        for cs in v4.values():
            for r in cs:
                r.expect_closed(timeout=STOP_TIMEOUT)
        try:
            status = b.proc.wait(STOP_TIMEOUT + 2)
        except subprocess.TimeoutExpired:
            raise pmq.TestFailure("promptmqd still runs %ds after SIGTERM" % (STOP_TIMEOUT + 2))
        took = time.monotonic() - t0
        check(status == 0, "exit status %s after SIGTERM" % status)
        check(took < STOP_TIMEOUT - 1, "the stop took %.1fs: children were waited "
              "for until the stop timeout (%ds)" % (took, STOP_TIMEOUT))
        check(not re.search(r"killed|SIGKILL", b.log()),
              "a child was killed during an orderly stop:\n%s" % b.log()[-3000:])
        print("SIGTERM: 6 MQTT 5.0 clients got 0x8B, 6 3.1.1 clients closed, "
              "exit 0 in %.2fs" % took)
    finally:
        for cs in placed.values():
            pmq.close_all(cs)
        b.cleanup()


def second_sigterm():
    b = pmq.PromptMQ(workers=2, name="sigterm2", args=["--server-stop-timeout", "60s"])
    stopped = None
    clients = {}
    try:
        b.start()
        clients = pmq.spread(b, raw_maker(b, 5), per_slot=1)
        stopped = b.worker_pid(0)
        kids = list(b.children())
        os.kill(stopped, signal.SIGSTOP)
        b.proc.send_signal(signal.SIGTERM)
        # the worker that can answer stops; the stopped one holds it all up
        clients[1][0].expect_closed(timeout=5, disconnect=0x8B)
        b.wait_log(r"child stopped role=worker slot=1", 5)
        time.sleep(0.3)
        check(b.proc.poll() is None, "promptmqd exited while a worker had not stopped")
        t0 = time.monotonic()
        b.proc.send_signal(signal.SIGTERM)
        try:
            b.proc.wait(2)
        except subprocess.TimeoutExpired:
            raise pmq.TestFailure("promptmqd still runs 2s after a second SIGTERM")
        for pid in kids:
            pmq.wait_for(lambda: not pmq.pid_alive(pid), max(0.1, 2 - (time.monotonic() - t0)),
                         "child %d to be gone after the second SIGTERM" % pid)
        clients[0][0].expect_closed(timeout=2, optional=True, disconnect=0x8B)
        print("second SIGTERM: everything gone in %.2fs (status %s)" %
              (time.monotonic() - t0, b.proc.returncode))
    finally:
        if stopped and pmq.pid_alive(stopped):
            os.kill(stopped, signal.SIGKILL)
        pmq.close_all(clients)
        b.cleanup()


def sigusr1_reopens_logs():
    b = pmq.PromptMQ(workers=2, name="sigusr1")
    path = os.path.join(b.base, "rotated.log")
    b.args += ["--log-target", "stderr," + path]
    clients = []
    try:
        b.start()
        check("notice: ready" in read(path), "the log file %s has no ready line" % path)
        os.rename(path, path + ".1")
        b.proc.send_signal(signal.SIGUSR1)
        sup = r"supervisor\[%d\] " % b.pid

        def sighup_logged():
            # a reload is one way to make the supervisor log something
            if re.search(sup + r"notice: reloading configuration", read(path)):
                return True
            b.proc.send_signal(signal.SIGHUP)
            return False
        pmq.wait_for(sighup_logged, 5, "a supervisor line in the new %s" % path, 0.2)

        def worker_logged(slot):
            def logged():
                r = pmq.RawClient(b.port, 4, "reopen")
                r.connect(pmq.unique("reopen"))
                clients.append(r)
                return re.search(r"worker/%d\[\d+\] info: client connected client=%s " %
                                 (slot, re.escape(r.client_id)), read(path))
            return logged
        for slot in (0, 1):
            pmq.wait_for(worker_logged(slot), 5, "a line of worker %d in the new %s" %
                         (slot, path), 0.05)
        for r in clients:
            r.close()
        # walsvc's stop comes after its reopen on the control channel
        check(b.stop() == 0, "promptmqd did not stop cleanly")
        new, old = read(path), read(path + ".1")
        for line in (sup + r"notice: stopped status=0",
                     r"walsvc\[\d+\] info: stopping on supervisor request",
                     r"walsvc\[\d+\] info: walsvc stopped",
                     r"worker/0\[\d+\] info: stopping on supervisor request",
                     r"worker/1\[\d+\] info: stopping on supervisor request"):
            check(re.search(line, new), "/%s/ not in the reopened log file" % line)
            check(not re.search(line, old), "/%s/ went to the renamed log file" % line)
        print("SIGUSR1: supervisor, workers and walsvc write to the new file")
    finally:
        for r in clients:
            r.close()
        b.cleanup()


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def test():
    sigterm_with_clients()
    second_sigterm()
    sigusr1_reopens_logs()


pmq.run_test(test, promptmqd_only="signals promptmqd")
