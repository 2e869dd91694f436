"""Appends through walsvc survive walsvc being killed with SIGKILL.

For each storage.wal-sync mode: a client appends records through walsvc
the way a worker does (walappend) while walsvc is killed with SIGKILL
and restarted by the supervisor several times.  The client must end with
every record acknowledged; the log, read with promptmq-waldump after the
broker stopped, must hold every acknowledged record exactly once, but for
the first ones of the stream when compaction removed the oldest segments
(the records are nothing the index still needs).

The kills follow the appends, not the clock: walappend may go no
further than a gate the test moves, and walsvc is killed three quarters
of the way to the next gate, with appends in flight and the end of the
run out of reach however slow the machine is."""

import os
import re
import signal
import subprocess
import threading

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


class Output:
    """walappend's standard output, read on a thread: the last durable
    watermark it printed, and every line."""

    def __init__(self, f):
        self.durable = 0
        self.lines = []
        self.thread = threading.Thread(target=self._read, args=(f,), daemon=True)
        self.thread.start()

    def _read(self, f):
        for line in f:
            self.lines.append(line)
            if line.startswith("durable "):
                self.durable = int(line.split()[1])

    def text(self):
        self.thread.join(pmq.patience(10))
        return "".join(line for line in self.lines if not line.startswith("durable "))


def run_mode(mode):
    b = pmq.Broker(workers=2, args=["--storage-wal-sync", mode,
                                    "--storage-wal-segment-size", "1MB"],
                   name="wal-" + mode)
    tool = None
    try:
        b.start()
        errpath = os.path.join(b.base, "walappend.err")
        with open(errpath, "w") as errf:
            tool = subprocess.Popen([pmq.WALAPPEND, "-r", b.rundir, "-s", "7",
                                     "-n", str(COUNT), "-z", "64", "-w", "512",
                                     "-p", str(RATE), "-v", "-g",
                                     "-t", str(int(pmq.patience(60)))],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=errf, text=True)
        output = Output(tool.stdout)
        kills = 0
        reached = 0
        for k in range(KILLS):
            gate = COUNT * (k + 1) // (KILLS + 1)
            tool.stdin.write("%d\n" % gate)
            tool.stdin.flush()
            at = reached + (gate - reached) * 3 // 4
            pmq.wait_for(lambda: output.durable >= at or tool.poll() is not None, 30,
                         "%d appends to be durable" % at)
            check(tool.poll() is None, "%s: walappend ended early" % mode)
            pid = b.walsvc_pid()
            check(pid, "%s: no walsvc to kill" % mode)
            os.kill(pid, signal.SIGKILL)
            kills += 1
            pmq.wait_for(lambda: b.walsvc_pid() not in (None, pid), 10,
                         "walsvc to be restarted")
            reached = gate
        tool.stdin.close()      # the gate opens: on to COUNT
        try:
            tool.wait(pmq.patience(60))
        except subprocess.TimeoutExpired:
            tool.kill()
            raise pmq.TestFailure("%s: walappend did not finish" % mode)
        out = output.text()
        with open(errpath) as f:
            err = f.read()
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
        # compaction may have removed the oldest segments (nothing in them
        # is needed once the index holds them): those records, and only
        # those, are gone, and a stream's records are in the log in its
        # order, so they are the first of the stream
        removed = b.log_count(r"message log segments removed")
        check(not missing or (removed and missing == list(range(1, len(missing) + 1))),
              "%s: %d acknowledged records missing from the log, first %s "
              "(segment removals logged: %d)" % (mode, len(missing), missing[:5],
                                                removed))
        check(not twice, "%s: records in the log more than once: %s" % (mode, twice[:5]))
        check(max(seqs) == COUNT, "%s: records beyond the count" % mode)
        print("%s: %d records, walsvc killed %d times, each record once "
              "(the first %d in segments compaction removed); resends: %s" %
              (mode, COUNT, kills, len(missing),
               re.search(r"resent=(\d+)", out).group(1)))
    finally:
        if tool and tool.poll() is None:
            tool.kill()
            tool.wait()
        b.cleanup()


def test():
    for mode in ("always", "interval", "none"):
        run_mode(mode)


pmq.run_test(test)
