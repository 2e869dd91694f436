"""platform.py - the platform's figures for docs/benchmarks.md.

    python3 tests/bench/platform.py BUILDDIR [REPS]

Measures, in one run on this machine, medians over REPS repetitions:
  1) the IPC envelope between two processes (ipcbench): records per
     second and CPU per record with 1, 32 and 256 records per nng message;
  2) the disk: raw pwrite+fdatasync per second in the data directory, and
     the message log alone with 1 and 32 records per sync (walbench);
  3) walsvc: durable appends per second through a running broker
     (walappend), one outstanding append at a time (every append waits for
     its own commit) and 512 outstanding (group commit), for each
     storage.wal-sync mode.
Prints a Markdown section.  Loopback and the build tree only; every run is
bounded in count and time.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration"))


def run(cmd, timeout=120):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise SystemExit("%s failed: %s %s" % (cmd, r.stdout[-500:], r.stderr[-500:]))
    return r.stdout


def field(out, name):
    return float(re.search(r"\b%s=([0-9.]+)" % name, out).group(1))


def med(values):
    return statistics.median(values)


def main():
    builddir = os.path.abspath(sys.argv[1])
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    os.environ["PMQ_BUILDDIR"] = builddir
    import pmq
    run(["make", "-C", builddir, "tests/tools/ipcbench", "tests/tools/walbench"])
    tmp = tempfile.mkdtemp(prefix="bench.", dir="/tmp")
    print("## Platform (issue: platform)\n")
    print("Measured %s on %s, %d CPUs; medians of %d runs.\n" % (
        subprocess.run(["date", "-u", "+%F"], capture_output=True, text=True).stdout.strip(),
        os.uname().release, os.cpu_count(), reps))

    # 1) IPC envelope
    print("### IPC envelope between two processes (64-byte records)\n")
    print("| records per nng message | records/s | CPU µs per record (both processes) |")
    print("| --- | --- | --- |")
    for per in (1, 32, 256):
        n = 100000 if per == 1 else 1000000
        rates, cpus = [], []
        for _ in range(reps):
            out = run([os.path.join(builddir, "tests/tools/ipcbench"), tmp, str(n),
                       str(per), "64"])
            rates.append(field(out, "records_per_s"))
            cpus.append(field(out, "cpu_us_per_record"))
        print("| %d | %.0f | %.2f |" % (per, med(rates), med(cpus)))
    print()

    # 2) the disk and the log alone
    waldir = os.path.join(tmp, "walbench")
    raw, b1, b32 = [], [], []
    for _ in range(reps):
        shutil.rmtree(waldir, ignore_errors=True)
        out = run([os.path.join(builddir, "tests/tools/walbench"), waldir, "2"])
        m1 = re.search(r"batch=1 appends_per_second=([0-9.]+)", out)
        m32 = re.search(r"batch=32 appends_per_second=([0-9.]+)", out)
        mraw = re.search(r"fdatasync_per_second=([0-9.]+)", out)
        if not (m1 and m32 and mraw):
            raise SystemExit("unexpected walbench output:\n" + out)
        b1.append(float(m1.group(1)))
        b32.append(float(m32.group(1)))
        raw.append(float(mraw.group(1)))
    print("### The disk and the log alone (walbench, 64-byte records)\n")
    print("| what | per second |")
    print("| --- | --- |")
    print("| raw pwrite + fdatasync, same directory (the limit) | %.0f syncs |" % med(raw))
    print("| log: append + write + fdatasync per record | %.0f appends |" % med(b1))
    print("| log: 32 records per write + fdatasync | %.0f appends |" % med(b32))
    print()

    # 3) walsvc through a running broker
    print("### walsvc: durable appends through the broker (walappend, 64-byte records)\n")
    print("| storage.wal-sync | 1 outstanding: appends/s | 512 outstanding: appends/s |")
    print("| --- | --- | --- |")
    for mode in ("always", "interval", "none"):
        r1, r512 = [], []
        for _ in range(reps):
            b = pmq.Broker(workers=1, args=["--storage-wal-sync", mode,
                                            "--log-level", "notice"], name="bench")
            try:
                b.start()
                out = run([pmq.WALAPPEND, "-r", b.rundir, "-s", "1", "-n", "3000",
                           "-w", "1", "-t", "60"])
                r1.append(field(out, "rate"))
                out = run([pmq.WALAPPEND, "-r", b.rundir, "-s", "2", "-n", "200000",
                           "-w", "512", "-t", "60"])
                r512.append(field(out, "rate"))
                b.stop()
            finally:
                b.cleanup()
        print("| %s | %.0f | %.0f |" % (mode, med(r1), med(r512)))
    print()
    shutil.rmtree(tmp, ignore_errors=True)


main()
