"""Appends through walsvc survive walsvc being killed with SIGKILL.

For each storage.wal-sync mode: a client appends records through walsvc
the way a worker does (walappend) while walsvc is killed with SIGKILL
and restarted by the supervisor several times.  The client must end with
every record acknowledged; the log, read with promptmq-waldump after the
broker stopped, must hold every acknowledged record exactly once."""

import os
import re
import signal
import subprocess
import time

import pmq
from pmq import check

COUNT = 30000
RATE = 10000   # appends a second: the run spans the kills
KILLS = 4


def dump_sequences(waldir, gen):
    records, dump = pmq.waldump(waldir)
    seqs = {}
    for fields, _ in records:
        if (fields.get("role"), fields.get("slot"), fields.get("gen")) == ("tool", "7", str(gen)):
            s = int(fields["seq"])
            seqs[s] = seqs.get(s, 0) + 1
    return seqs, dump


def run_mode(mode):
    b = pmq.Broker(workers=2, args=["--storage-wal-sync", mode,
                                    "--storage-wal-segment-size", "1MB"],
                   name="wal-" + mode)
    try:
        b.start()
        tool = subprocess.Popen([pmq.WALAPPEND, "-r", b.rundir, "-s", "7",
                                 "-n", str(COUNT), "-z", "64", "-w", "512",
                                 "-p", str(RATE),
                                 "-t", "90"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        kills = 0
        while kills < KILLS and tool.poll() is None:
            time.sleep(0.5)
            pid = b.walsvc_pid()
            if pid is None:
                continue
            os.kill(pid, signal.SIGKILL)
            kills += 1
            pmq.wait_for(lambda: b.walsvc_pid() not in (None, pid), 10,
                         "walsvc to be restarted")
        out, err = tool.communicate(timeout=120)
        check(tool.returncode == 0, "%s: walappend failed (%s): %s %s" %
              (mode, tool.returncode, out[-500:], err[-2000:]))
        m = re.search(r"RESULT appended=(\d+) durable=(\d+) gen=(\d+)", out)
        check(m and int(m.group(2)) == COUNT, "%s: not all durable: %s" % (mode, out))
        gen = int(m.group(3))
        check(b.log_count(r"child killed by signal role=walsvc") == KILLS,
              "%s: walsvc was killed %d times, not %d" %
              (mode, b.log_count(r"child killed by signal role=walsvc"), KILLS))
        status = b.stop()
        check(status == 0, "%s: exit status %s" % (mode, status))

        seqs, dump = dump_sequences(b.walldir, gen)
        missing = [s for s in range(1, COUNT + 1) if s not in seqs]
        twice = [s for s, n in seqs.items() if n != 1]
        check(not missing, "%s: %d acknowledged records missing from the log, "
              "first %s" % (mode, len(missing), missing[:5]))
        check(not twice, "%s: records in the log more than once: %s" % (mode, twice[:5]))
        check(max(seqs) == COUNT, "%s: records beyond the count" % mode)
        print("%s: %d records, walsvc killed %d times, each record once; "
              "resends: %s" % (mode, COUNT, kills,
                               re.search(r"resent=(\d+)", out).group(1)))
    finally:
        b.cleanup()


def test():
    for mode in ("always", "interval", "none"):
        run_mode(mode)


pmq.run_test(test)
