"""Programs replaced on disk under a running broker, as a package upgrade
replaces them (new files renamed over the old, long before the service
is restarted):

- a worker and walsvc killed after the replacement are started again from
  the programs promptmqd started with, not from whatever now sits at
  their paths (here a program that exits 78, "cannot run", which would
  stop the whole broker), and the broker serves clients on both workers;
- the replacements carry their own names (promptmq-worker,
  promptmq-walsvc), though they are started from a descriptor;
- a reload says which programs were replaced and that a restart runs
  them; the broker stops with status 0.
"""

import os
import shutil
import signal
import tempfile

import pmq
from pmq import check

NEW_PROGRAM = "#!/bin/sh\necho 'a program of another version' >&2\nexit 78\n"


def replace(path):
    """Rename a new file over path, as dpkg and rpm install files."""
    tmp = path + ".dpkg-new"
    with open(tmp, "w") as f:
        f.write(NEW_PROGRAM)
    os.chmod(tmp, 0o755)
    os.rename(tmp, path)


def round_trip(b, tag):
    """A QoS 1 message from a client on each worker slot to one on the
    other."""
    def make(i):
        c = pmq.Client(b.port, pmq.unique("up"), 5)
        c.connect()
        return c
    slots = pmq.spread(b, make)
    try:
        topic = pmq.unique(tag)
        subs = [slots[s][0] for s in sorted(slots)]
        for c in subs:
            c.subscribe(topic + "/" + c.client_id, 1)
        for k, c in enumerate(subs):
            to = subs[(k + 1) % len(subs)]
            c.publish(topic + "/" + to.client_id, tag, 1)
        for c in subs:
            c.expect(topic + "/" + c.client_id, tag, 1, 5)
    finally:
        pmq.close_all(slots)


def test():
    tmp = tempfile.mkdtemp(prefix="upgrade.", dir="/tmp")
    program = pmq.copy_for_others(os.path.join(tmp, "bin"))
    b = pmq.PromptMQ(workers=2, name="upgrade", program=program)
    try:
        b.start()
        round_trip(b, "before")
        for name in ("promptmq-worker", "promptmq-walsvc"):
            replace(os.path.join(tmp, "bin", name))

        for victim, role in ((b.worker_pid(0), "worker"), (b.walsvc_pid(), "walsvc")):
            mark = b.mark()
            os.kill(victim, signal.SIGKILL)
            pid = int(b.wait_log(r"child started role=%s slot=0 pid=(\d+)" % role,
                                 start=mark).group(1))
            b.wait_log(r"%s(?:/0)?\[%d\] info: %s ready" % (role, pid, role), start=mark)
            check(b.children()[pid] == "promptmq-" + role,
                  "the new %s %d is named %r" % (role, pid, b.children()[pid]))
            exe = os.readlink("/proc/%d/exe" % pid)
            check(exe.endswith("(deleted)"),
                  "the new %s runs %s, not the program promptmqd started with" % (role, exe))
            check(b.proc.poll() is None, "promptmqd exited (status %s) after the %s was "
                  "killed" % (b.proc.returncode, role))
            round_trip(b, "after-" + role)

        mark = b.mark()
        b.reload()
        for name in ("promptmq-worker", "promptmq-walsvc"):
            b.wait_log(r"program replaced on disk.*program=\S*/%s" % name, start=mark)
        round_trip(b, "after-reload")
        status = b.stop()
        check(status == 0, "promptmqd exit status %s" % status)
    finally:
        b.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


pmq.run_test(test, promptmqd_only="its child processes")
