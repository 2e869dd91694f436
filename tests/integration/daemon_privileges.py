"""Privilege drop: promptmqd started as root with --server-user nobody.

- The supervisor stays root (it opens listeners and re-reads files on
  reload).
- Every child, walsvc and both workers, and also the replacements of a
  killed worker and of a killed walsvc, runs with the uid of nobody and
  the gid of its primary group (nogroup on Debian) as real, effective,
  saved and filesystem ids, with no supplementary group and no
  capability left.
- A file with several links in the data directory is left to its owner
  (the hand-over of the directory skips it and says so).
- The broker still works: an MQTT round trip at QoS 1, the message in the
  log (so walsvc could write the data directory, handed to nobody with
  the runtime directory), and a new walsvc reopens that log and
  acknowledges again.

Skipped (77) unless run as root.
"""

import os
import pwd
import signal

import pmq
from pmq import check


def ids(pid):
    st = pmq.proc_status(pid)
    return ([int(x) for x in st["Uid"].split()], [int(x) for x in st["Gid"].split()],
            st.get("Groups", "").split(), int(st["CapEff"], 16), int(st["CapPrm"], 16))


def check_dropped(pid, name, user):
    uid, gid, groups, eff, prm = ids(pid)
    check(uid == [user.pw_uid] * 4, "%s %d: Uid %s, expected %d for all four" %
          (name, pid, uid, user.pw_uid))
    check(gid == [user.pw_gid] * 4, "%s %d: Gid %s, expected %d for all four" %
          (name, pid, gid, user.pw_gid))
    check(groups == [], "%s %d: supplementary groups %s" % (name, pid, groups))
    check(eff == 0 and prm == 0, "%s %d: capabilities left (effective %x, permitted %x)" %
          (name, pid, eff, prm))


def round_trip(b, tag):
    sub = pmq.Client(b.port, pmq.unique("sub"), 5)
    pub = pmq.Client(b.port, pmq.unique("pub"), 4)
    try:
        sub.connect()
        pub.connect()
        topic = pmq.unique("p")     # short: waldump shows 32 bytes
        sub.subscribe(topic, 1)
        pub.publish(topic, tag, 1)
        sub.expect(topic, tag, 1, 5)
    finally:
        sub.close()
        pub.close()


def test():
    if os.geteuid() != 0:
        print("SKIP: daemon_privileges.py: needs root to drop privileges")
        return pmq.SKIP
    nobody = pwd.getpwnam("nobody")
    b = pmq.PromptMQ(workers=2, name="priv", args=["--server-user", "nobody"])
    try:
        os.chmod(b.base, 0o755)     # as /run and /var/lib are
        # a root file linked into the data directory (by its user, where
        # fs.protected_hardlinks is off) is not given away
        secret = os.path.join(b.base, "root-only")
        with open(secret, "w") as f:
            f.write("root's\n")
        os.chmod(secret, 0o600)
        os.makedirs(b.datadir)
        os.link(secret, os.path.join(b.datadir, "planted"))
        b.start()
        st = os.stat(secret)
        check(st.st_uid == 0 and st.st_gid == 0, "a file linked into the data directory was "
              "handed to uid %d gid %d" % (st.st_uid, st.st_gid))
        b.wait_log(r"not handing over a file with several links path=\S*/planted")
        uid, gid, _, _, _ = ids(b.pid)
        check(uid == [0] * 4 and gid == [0] * 4, "the supervisor is not root: Uid %s Gid %s" %
              (uid, gid))
        for pid, comm in sorted(b.children().items()):
            check_dropped(pid, comm, nobody)
        for path in (os.path.join(b.rundir, "ipc"), b.datadir):
            st = os.stat(path)
            check(st.st_uid == nobody.pw_uid, "%s belongs to uid %d, not to nobody" %
                  (path, st.st_uid))
        round_trip(b, "nobody-1")

        # replacements drop privileges too, and walsvc reopens its log
        for victim, role in ((b.worker_pid(0), "worker"), (b.walsvc_pid(), "walsvc")):
            mark = b.mark()
            os.kill(victim, signal.SIGKILL)
            m = b.wait_log(r"child started role=%s slot=0 pid=(\d+)" % role, 5, mark)
            b.wait_log(r"%s(?:/0)?\[%s\] info: (?:worker|walsvc) ready" % (role, m.group(1)),
                       5, mark)
            check_dropped(int(m.group(1)), "the new " + role, nobody)
        round_trip(b, "nobody-2")
        check(b.stop() == 0, "promptmqd did not stop cleanly")

        records, dump = pmq.waldump(b.walldir, "publish")
        for tag in (b"nobody-1", b"nobody-2"):
            check(any(tag in preview for _, preview in records),
                  "%r is not in the log:\n%s" % (tag, dump[-2000:]))
        for name in os.listdir(b.walldir):
            st = os.stat(os.path.join(b.walldir, name))
            check(st.st_uid == nobody.pw_uid, "log file %s belongs to uid %d" %
                  (name, st.st_uid))
        print("children run as %d:%d without groups or capabilities; QoS 1 logged" %
              (nobody.pw_uid, nobody.pw_gid))
    finally:
        b.cleanup()


pmq.run_test(test, promptmqd_only="checks promptmqd's processes")
