"""The process tree is what the design says, a worker killed with SIGKILL
is replaced with a new generation, its slot's port keeps accepting
throughout, and SIGTERM stops everything with status 0."""

import os
import re
import signal
import time

import pmq
from pmq import check


def test():
    b = pmq.Broker(workers=2, name="tree")
    try:
        b.start()
        kids = b.children()
        names = sorted(kids.values())
        check(names == ["promptmq-walsvc", "promptmq-worker", "promptmq-worker"],
              "children of the supervisor are %s" % names)
        # children ignore the terminal's signals: only the supervisor acts.
        # An ignored signal is discarded when it is sent, so once kill()
        # returned there is nothing left to wait for.
        for pid in kids:
            ignored = int(pmq.proc_status(pid)["SigIgn"], 16)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
                check(ignored & (1 << (sig - 1)), "%s %d does not ignore %s" %
                      (kids[pid], pid, sig.name))
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGHUP)
        check(sorted(b.children()) == sorted(kids), "a child died of SIGTERM/SIGHUP")

        # kill worker slots one after the other, connecting all the while
        for round in range(3):
            victim = b.worker_pids()[round % 2]
            gens_before = b.log_count(r"child started role=worker")
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + pmq.patience(3)
            while time.monotonic() < deadline:
                s = pmq.tcp_connect(b.port)
                s.close()
                if b.log_count(r"child started role=worker") > gens_before:
                    break
                time.sleep(0.01)
            pmq.wait_for(lambda: len(b.worker_pids()) == 2 and victim not in b.worker_pids(),
                         5, "a replacement worker")
            b.wait_log(r"child killed by signal role=worker slot=\d+ pid=%d" % victim)
        gens = [int(g) for g in re.findall(r"child started role=worker slot=\d+ pid=\d+ gen=(\d+)", b.log())]
        check(len(gens) == 5 and len(set(gens)) == 5, "worker generations not unique: %s" % gens)

        # the port accepts many connections, spread over both workers
        socks = [pmq.tcp_connect(b.port) for _ in range(50)]
        for s in socks:
            s.close()

        # SIGTERM: workers first, then walsvc, exit 0, nothing left behind
        kids = list(b.children())
        status = b.stop()
        check(status == 0, "exit status %s after SIGTERM" % status)
        for pid in kids:
            pmq.wait_for(lambda: not pmq.pid_alive(pid), 5, "child %d to be gone" % pid)
        log = b.log()
        w = max(m.start() for m in re.finditer(r"child stopped role=worker", log))
        s = log.find("child stopped role=walsvc")
        check(s > w, "walsvc stopped before the workers")
    finally:
        b.cleanup()


pmq.run_test(test)
