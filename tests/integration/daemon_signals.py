"""The signals an operator sends to promptmqd:

- SIGTERM with clients on both workers: every MQTT 5.0 client receives
  DISCONNECT 0x8B (server shutting down) and nothing else,
  every 3.1.1 client sees its connection closed without a packet, and
  promptmqd exits 0 well within server.stop-timeout (30s: in less than
  half of it; the children are not waited for until the timeout).
- A second SIGTERM while the stop waits for a worker that cannot answer
  (stopped with SIGSTOP) ends everything at once: promptmqd and all its
  children are gone within seconds, not after the stop timeout (60s).
- SIGUSR1 after the log file was renamed (log rotation): the supervisor
  logs "log files reopened" first in the new file; it, both workers and
  walsvc write their next lines to a new file at the original path, and
  nothing more goes to the renamed one once they did.
"""

import os
import re
import signal
import subprocess
import time

import pmq
from pmq import check

STOP_TIMEOUT = 30


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
                r.expect_closed(timeout=STOP_TIMEOUT / pmq.SLOWDOWN, disconnect=0x8B)
        for cs in v4.values():
            for r in cs:
                r.expect_closed(timeout=STOP_TIMEOUT / pmq.SLOWDOWN)
        try:
            status = b.proc.wait(STOP_TIMEOUT + 10)
        except subprocess.TimeoutExpired:
            raise pmq.TestFailure("promptmqd still runs %ds after SIGTERM" % (STOP_TIMEOUT + 10))
        took = time.monotonic() - t0
        check(status == 0, "exit status %s after SIGTERM" % status)
        check(took < STOP_TIMEOUT / 2, "the stop took %.1fs: children were waited "
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
        mark = b.wait_log(r"child stopped role=worker slot=1", 5).end()
        # the supervisor handles a later event (and logs it): by then it
        # has had every chance to exit early
        b.proc.send_signal(signal.SIGUSR1)
        b.wait_log(r"supervisor\[\d+\] info: log files reopened", 5, mark)
        check(b.proc.poll() is None, "promptmqd exited while a worker had not stopped")
        # a stop signal within 200 ms of the first is the same request
        # (sent to the process and its group): wait until the supervisor's
        # clock is past that, as its log line's time stamp shows
        first = pmq.wait_log_time(b, r"supervisor\[\d+\] notice: stop requested")
        time.sleep(max(0.0, first + 0.3 - time.time()))
        t0 = time.monotonic()
        b.proc.send_signal(signal.SIGTERM)
        within = pmq.patience(2)    # far below the stop timeout of 60s
        try:
            b.proc.wait(within)
        except subprocess.TimeoutExpired:
            raise pmq.TestFailure("promptmqd still runs %ds after a second SIGTERM" % within)
        for pid in kids:
            pmq.wait_for(lambda: not pmq.pid_alive(pid),
                         max(0.1, within - (time.monotonic() - t0)) / pmq.SLOWDOWN,
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
        pmq.wait_for(lambda: re.match(r"\S+ " + sup + r"info: log files reopened\n",
                                      read(path)),
                     5, "the supervisor's first line in the new %s" % path)

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
