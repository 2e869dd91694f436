"""Storage faults: a damaged index, an index walsvc may not use, a full
file system.  The message log is the commit point; the Berkeley DB index
in DATA-DIR/index is derived from it, so a damaged index is rebuilt from
the log, and only an index the operator made unusable stops the broker.

- A damaged index file, after a clean stop (2 workers, default 16 MB
  segments, so the log still starts at record 1): for each of
  sessions.db, queue.db, retained.db, wills.db and meta.db, its first
  page (the metadata page) and then, on another broker, the page in the
  middle of the file (page count / 2: in the small files, a metadata
  page and a root page, the root) is overwritten with random bytes
  (seeded: PMQ_FAULT_SEED, printed, reproduces a run).  The broker held
  a persistent session (5.0, Session Expiry Interval 300) away with 300
  queued QoS 1 messages (queue.db has several pages), a retained
  message, and a client connected at the stop with a will (Will Delay
  Interval 2 s, Session Expiry Interval 300).  Started again on the same
  data directory, walsvc logs the error "the index is unreadable; it is
  kept aside and rebuilt from the log" with kept_as=DATA-DIR/index.
  corrupt-<time>, which exists and holds the damaged file as it was
  written; it does not log that the log lost its start; and everything
  is back: the session (session present), every queued message in
  order, the retained message, and the will, published once, not
  before its delay counted from the stop.  A damaged page Berkeley DB
  happens never to read is not detected; the test says so and checks
  the state all the same.  walsvc dying (a signal) or spinning (seconds
  of CPU on an index of a few hundred rows) while it loads the damaged
  index is a failure, reported at once; every case runs and the
  failures are listed together.

- A damaged index after compaction (storage.wal-segment-size 64 KB, 1 MB
  of QoS 1 traffic for nobody: "message log segments removed"), meta.db's
  metadata page overwritten: walsvc logs the first error and the second,
  "the log no longer starts at its first record", with removed_lsns=1-N
  where N + 1 is the first record of the oldest segment left, and the
  broker runs (a QoS 1 round trip).  This is the known limit of a
  rebuild: what lived only in the index when compaction removed the
  records it came from (sessions, subscriptions, queued and retained
  messages and wills not written since) is lost; the test does not
  check what survives.

- An index path walsvc cannot use is the operator's problem, not
  damage: DATA-DIR/index a regular file; DATA-DIR/index mode 000; one
  of its files (queue.db) mode 000 (as root, the broker runs as nobody
  with server.user, since root may open anything).  promptmqd exits with
  status 78 and says which directory or file; nothing is set aside or
  renamed, the path is left as it was.

- A full file system (root only: the data directory is a 8 MB tmpfs in
  a mount namespace of its own, made by unshare and held by a process
  of the test, the broker started in it by nsenter; the file system is
  filled through /proc/PID/root by a filler file; skipped with the
  reason where it cannot be made).  A 5.0 publisher sends QoS 1 one
  message at a time (storage.ack-timeout 60 s): once walsvc logs
  "cannot write the message log", PUBACKs stop (walsvc retries and
  still acknowledges nothing), while QoS 0 still reaches the subscriber;
  the filler deleted, walsvc logs "message log writable again" and
  every PUBACK comes.  Then storage.ack-timeout 2 s (reload), the file
  system full again: a 5.0 publisher whose QoS 1 message waits gets
  DISCONNECT 0x89; once the filler is gone, its message is delivered
  all the same.  The online subscriber gets every acknowledged message,
  in order.  Finally the broker is stopped and started again in the
  same namespace: a persistent session that stayed away gets every
  message of the topic, in order, from the index and the log — nothing
  acknowledged is lost across the full disk and the restart.
"""

import errno
import hashlib
import os
import pwd
import random
import re
import shutil
import signal
import stat
import struct
import subprocess
import time

import pmq
from pmq import check, TestFailure

INDEX_FILES = ("sessions.db", "queue.db", "retained.db", "wills.db", "meta.db")
QUEUED = 300        # queued messages: queue.db gets several pages
DURABLE = 300       # Session Expiry Interval of what outlives a restart
WILL_DELAY = 2      # Will Delay Interval of the will of a client at the stop
EARLY = 0.5         # how much sooner than its delay a will may come
SPIN_CPU = 3.0      # CPU seconds walsvc may take to load a small index
NORESPAWN = 78      # promptmqd's status for what a restart cannot fix
SEED = int(os.environ.get("PMQ_FAULT_SEED", "20261204"))
FULL_FS = 8 * 1024 * 1024

SET_ASIDE = re.compile(r"walsvc\[\d+\] error: the index is unreadable; it is kept "
                       r"aside and rebuilt from the log dir=(\S+) kept_as=(\S+) "
                       r"log_first_lsn=(\d+)")
LOG_CUT = re.compile(r"walsvc\[\d+\] error: the log no longer starts at its first "
                     r"record[^\n]* removed_lsns=1-(\d+) kept_as=(\S+)")


# ---------------------------------------------------------------------------
# Damaged index files

def page_size(path):
    """The page size in a Berkeley DB file's metadata page (offset 20,
    in the byte order of the machine that wrote it)."""
    with open(path, "rb") as f:
        head = f.read(24)
    for order in ("<", ">"):
        size = struct.unpack(order + "I", head[20:24])[0]
        if 512 <= size <= 65536 and size & (size - 1) == 0:
            return size
    raise TestFailure("%s: no page size in its metadata page" % path)


def overwrite_page(path, which, rng):
    """Overwrite page 0 (which "first") or the middle page of path with
    random bytes; returns (page number, page count, bytes written)."""
    size = page_size(path)
    pages = os.path.getsize(path) // size
    check(pages >= 2, "%s has %d page(s), expected a metadata page and more" %
          (path, pages))
    page = 0 if which == "first" else pages // 2
    data = rng.randbytes(size)
    with open(path, "r+b") as f:
        f.seek(page * size)
        f.write(data)
    return page, pages, data


def cpu_seconds(pid):
    """CPU time (user + system) of pid, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        stat_line = f.read()
    fields = stat_line[stat_line.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kill_all(b):
    """Kill promptmqd b and its children, listed while it is stopped and
    cannot start another: a child that never reads its control channel
    (a walsvc spinning in Berkeley DB) would outlive a killed supervisor."""
    if b.proc is None or b.proc.poll() is not None:
        return
    os.kill(b.pid, signal.SIGSTOP)
    for pid in b.children():
        os.kill(pid, signal.SIGKILL)
    b.proc.kill()
    b.proc.wait(5)


def start_watched(b, timeout=15):
    """Start broker b and wait until it is ready.  A walsvc that dies or
    exits meanwhile, or spins (SPIN_CPU seconds of CPU without getting
    ready), is a failure said at once, with its log lines."""
    b.start(wait_ready=False)
    mark = b.start_mark
    ready = re.compile(r"supervisor\[\d+\] notice: ready")
    died = re.compile(r"child (?:killed by signal|exited) role=walsvc[^\n]*")
    started = re.compile(r"child started role=walsvc slot=0 pid=(\d+)")

    def walsvc_lines(text):
        return "\n".join(line for line in text.splitlines()
                         if "walsvc" in line and " debug: " not in line)[-3000:]

    def up():
        text = b.log()[mark:]
        if ready.search(text):
            return True
        m = died.search(text)
        if m:
            raise TestFailure("walsvc did not survive loading the damaged index: %s\n%s" %
                              (m.group(0), walsvc_lines(text)))
        if b.proc.poll() is not None:
            raise TestFailure("promptmqd exited (status %s) on the damaged index:\n%s" %
                              (b.proc.returncode, walsvc_lines(text)))
        for pid in started.findall(text)[-1:]:
            try:
                cpu = cpu_seconds(int(pid))
            except OSError:
                continue
            if cpu > SPIN_CPU:
                raise TestFailure("walsvc (pid %s) used %.1fs of CPU loading an index of "
                                  "a few hundred rows without getting ready: it spins\n%s" %
                                  (pid, cpu, walsvc_lines(text)))
        return False
    try:
        pmq.wait_for(up, timeout, "promptmqd to start on the damaged index")
    except TestFailure:
        kill_all(b)
        raise
    b._wait_ready(1)
    return b


def will_connect(client_id, topic, payload):
    """A 5.0 CONNECT, clean start, Session Expiry Interval DURABLE, with a
    QoS 1 will delayed WILL_DELAY seconds."""
    flags = 0x02 | 0x04 | 1 << 3
    header = pmq.mqtt_str(b"MQTT") + bytes([5, flags]) + struct.pack("!H", 60) + \
        pmq.encode_props({"session-expiry": DURABLE})
    body = pmq.mqtt_str(client_id) + pmq.encode_props({"will-delay": WILL_DELAY}) + \
        pmq.mqtt_str(topic) + pmq.mqtt_str(payload)
    return pmq.packet(pmq.CONNECT, 0, header + body)


def publish_all(pub, topic, payloads, retain=False):
    """QoS 1 messages from a 3.1.1 RawClient, all sent, then every PUBACK
    waited for (one group commit for many)."""
    pids = []
    for p in payloads:
        pids.append(pub.pid())
        pub.send(pmq.publish_packet(topic, p, 1, pid=pids[-1], retain=retain))
    got = sorted(pub.expect(pmq.PUBACK, what="PUBACK %d of %d" % (k + 1, len(pids))).pid
                 for k in range(len(pids)))
    check(got == sorted(pids), "%s: PUBACKs for %s, expected %s" % (pub.name, got, pids))


class Kept:
    """What one broker keeps across a stop: a persistent session away
    with QUEUED queued messages, a retained message, and the delayed will
    of a client connected when the broker stops."""

    def __init__(self, tag):
        self.u = u = pmq.unique(tag)
        self.queued = [b"%04d queued for %s" % (k, u.encode()) for k in range(QUEUED)]
        self.retained = b"retained of " + u.encode()
        self.will = b"will of " + u.encode()
        self.will_client = None

    def make(self, b):
        u = self.u
        sub = pmq.RawClient(b.port, 5, "persistent subscriber")
        sub.connect(u + "-sub", clean=False, props={"session-expiry": DURABLE})
        sub.subscribe(u + "/s/#", 1)
        sub.send(pmq.disconnect_packet(5))
        sub.expect_closed()
        pub = pmq.RawClient(b.port, 4, "publisher")
        pub.connect(u + "-pub")
        publish_all(pub, u + "/s/q", self.queued)
        publish_all(pub, u + "/r", [self.retained], retain=True)
        pub.send(pmq.disconnect_packet())
        pub.close()
        w = pmq.RawClient(b.port, 5, "client with a will")
        w.send(will_connect(u + "-will", u + "/s/will", self.will))
        ack = w.expect(pmq.CONNACK)
        check(ack.reason == 0, "the client with a will got %r" % ack)
        self.will_client = w    # connected until the broker stops

    def check(self, b, stopped, what):
        """Everything is back on b, started again after the stop at
        monotonic time stopped."""
        u = self.u
        sub = pmq.RawClient(b.port, 5, "persistent subscriber after the restart")
        try:
            ack = sub.connect(u + "-sub", clean=False, props={"session-expiry": DURABLE})
            check(ack.session_present, "%s: the persistent session was lost (session "
                  "present 0)" % what)
            queued, will_at = [], None
            while len(queued) < QUEUED or will_at is None:
                p = sub.message(timeout=WILL_DELAY + 3,
                                what="queued message %d of %d%s" % (
                                    len(queued) + 1, QUEUED,
                                    "" if will_at else " or the will"))
                if p.topic == u + "/s/q":
                    queued.append(p.payload)
                elif p.topic == u + "/s/will":
                    check(will_at is None, "%s: the will came twice" % what)
                    will_at = time.monotonic()
                    check(p.payload == self.will, "%s: the will came as %r" % (what, p))
                else:
                    raise TestFailure("%s: the persistent subscriber got %r" % (what, p))
            if queued != self.queued:
                first = next(k for k, (a, e) in enumerate(zip(queued, self.queued)) if a != e)
                raise TestFailure("%s: the queue came back wrong from message %d: %r, "
                                  "expected %r" % (what, first, queued[first], self.queued[first]))
            check(will_at - stopped >= WILL_DELAY - EARLY,
                  "%s: the will came %.2fs after the stop, before its delay of %ds" %
                  (what, will_at - stopped, WILL_DELAY))
            pub = pmq.RawClient(b.port, 5, "marker publisher")
            pub.connect(u + "-marker")
            pub.publish(u + "/s/marker", b"marker", 1)
            pub.close()
            p = sub.message(what="the marker")
            check(p.topic == u + "/s/marker", "%s: after the will and the queue, %r came "
                  "before the marker" % (what, p))
        finally:
            sub.close()
        late = pmq.RawClient(b.port, 5, "new subscriber")
        try:
            late.connect(u + "-late")
            late.subscribe(u + "/r", 1)
            p = late.message(what="the retained message")
            check(p.payload == self.retained and p.retain,
                  "%s: the retained message came as %r RETAIN %d" % (what, p, p.retain))
        finally:
            late.close()


def damaged_file(name, which, rng):
    """One damaged index file, on a broker of its own."""
    b = pmq.PromptMQ(workers=2, name="idxbad").start()
    again = None
    try:
        kept = Kept("idx")
        kept.make(b)
        stopped = time.monotonic()
        status = b.stop()
        check(status == 0, "promptmqd exit status %s before the damage" % status)
        kept.will_client.close()
        path = os.path.join(b.datadir, "index", name)
        page, pages, data = overwrite_page(path, which, rng)
        what = "%s: page %d of %d overwritten" % (name, page, pages)
        again = pmq.PromptMQ(workers=2, base=b.base, name="idxbad2")
        start_watched(again)
        text = again.log()[again.start_mark:]
        m = SET_ASIDE.search(text)
        if m:
            check(m.group(1) == os.path.join(b.datadir, "index") and
                  re.match(re.escape(m.group(1)) + r"\.corrupt-\d+$", m.group(2)),
                  "%s: set aside as %s from %s" % (what, m.group(2), m.group(1)))
            check(m.group(3) == "1" and not LOG_CUT.search(text),
                  "%s: the log, which lost nothing, is said not to start at record 1" % what)
            kept_as = m.group(2)
            check(os.path.isdir(kept_as), "%s: %s (kept_as) is not a directory" %
                  (what, kept_as))
            with open(os.path.join(kept_as, name), "rb") as f:
                f.seek(page * len(data))
                check(f.read(len(data)) == data, "%s: the copy kept aside is not the "
                      "damaged file" % what)
            check(os.path.isdir(os.path.join(b.datadir, "index")),
                  "%s: no index directory after the rebuild" % what)
            print("%s: set aside as %s, rebuilt" % (what, os.path.basename(kept_as)))
        else:
            print("note: %s: not detected (Berkeley DB did not read that page); the "
                  "state is checked all the same" % what)
        kept.check(again, stopped, what)
        again.check_alive(what)
        status = again.stop()
        check(status == 0, "%s: promptmqd exit status %s" % (what, status))
    finally:
        if again is not None:
            kill_all(again)
            again.cleanup(keep=True)
        b.cleanup()


def damaged_index():
    rng = random.Random(SEED)
    print("random pages from PMQ_FAULT_SEED=%d" % SEED)
    failed = []
    for which in ("first", "middle"):
        for name in INDEX_FILES:
            # one generator, in a fixed order: a seed reproduces every page
            case_rng = random.Random(rng.getrandbits(64))
            try:
                damaged_file(name, which, case_rng)
            except TestFailure as e:
                print("FAILED: %s, %s page: %s" % (name, which, e))
                failed.append("%s (%s page): %s" % (name, which, str(e).splitlines()[0]))
    check(not failed, "%d of %d damaged index files not handled (PMQ_FAULT_SEED=%d):\n  %s" %
          (len(failed), 2 * len(INDEX_FILES), SEED, "\n  ".join(failed)))


# ---------------------------------------------------------------------------
# Damaged index after compaction

def after_compaction():
    b = pmq.PromptMQ(workers=2, name="idxcut",
                     args=["--storage-wal-segment-size", "64KB"]).start()
    again = None
    try:
        u = pmq.unique("cut")
        pub = pmq.RawClient(b.port, 4, "publisher")
        pub.connect(u + "-pub")
        for k in range(0, 1000, 250):
            publish_all(pub, u + "/nobody", [b"%06d-" % (k + n) + b"x" * 1000
                                             for n in range(250)])
        b.wait_log(r"message log segments removed", 10)
        pub.close()
        check(b.stop() == 0, "promptmqd did not stop cleanly")
        first = min(int(f[:-4], 16) for f in os.listdir(b.walldir) if f.endswith(".wal"))
        check(first > 1, "the oldest segment left starts at record %d" % first)
        rng = random.Random(SEED)
        overwrite_page(os.path.join(b.datadir, "index", "meta.db"), "first", rng)
        again = pmq.PromptMQ(workers=2, base=b.base, name="idxcut2")
        start_watched(again)
        text = again.log()[again.start_mark:]
        m = SET_ASIDE.search(text)
        check(m, "a damaged meta.db after compaction was not set aside")
        check(int(m.group(3)) == first, "log_first_lsn=%s, the oldest segment starts at %d" %
              (m.group(3), first))
        cut = LOG_CUT.search(text)
        check(cut, "the index was rebuilt from a log that lost records 1-%d without "
              "saying so" % (first - 1))
        check(int(cut.group(1)) == first - 1 and cut.group(2) == m.group(2),
              "removed_lsns=1-%s kept_as=%s; expected 1-%d and %s" %
              (cut.group(1), cut.group(2), first - 1, m.group(2)))
        check(os.path.isdir(m.group(2)), "%s (kept_as) is not a directory" % m.group(2))
        sub = pmq.RawClient(again.port, 5, "subscriber after the rebuild")
        sub.connect(u + "-sub")
        sub.subscribe(u + "/t", 1)
        pub = pmq.RawClient(again.port, 5, "publisher after the rebuild")
        pub.connect(u + "-pub2")
        pub.publish(u + "/t", b"after the rebuild", 1)
        check(sub.message().payload == b"after the rebuild", "no round trip after the rebuild")
        sub.close()
        pub.close()
        again.check_alive("after the rebuild of a compacted log")
        check(again.stop() == 0, "promptmqd did not stop cleanly after the rebuild")
        print("after compaction: records 1-%d gone, the index rebuilt from %d, broker runs" %
              (first - 1, first))
    finally:
        if again is not None:
            kill_all(again)
            again.cleanup(keep=True)
        b.cleanup()


# ---------------------------------------------------------------------------
# An index walsvc cannot use

class PromptMQFrom(pmq.PromptMQ):
    """promptmqd run from another copy of the programs."""

    def __init__(self, program, **kw):
        pmq.PromptMQ.__init__(self, **kw)
        self.program = program

    def command(self, extra=()):
        cmd = pmq.PromptMQ.command(self, extra)
        cmd[len(self.wrap)] = self.program
        return cmd


def snapshot(path):
    """{path under it: (mode, sha256 of a regular file)} of path and,
    where it is a directory this process may read, what it holds."""
    out = {}
    for p in [path] + [os.path.join(root, n) for root, dirs, files in os.walk(path)
                       for n in dirs + files]:
        st = os.lstat(p)
        digest = None
        if stat.S_ISREG(st.st_mode) and os.access(p, os.R_OK):
            with open(p, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        out[os.path.relpath(p, path)] = (stat.filemode(st.st_mode), digest)
    return out


def refused(b, what, *texts):
    """b, started, exits with status 78 and says texts; DATA-DIR/index is
    left as it was, nothing is set aside."""
    index = os.path.join(b.datadir, "index")
    before = snapshot(index)
    b.start(wait_ready=False)
    try:
        status = b.proc.wait(pmq.patience(15))
    except subprocess.TimeoutExpired:
        raise TestFailure("%s: promptmqd still runs" % what)
    b.stop()
    out = b.log()[b.start_mark:]
    check(status == NORESPAWN, "%s: exit status %s, expected %d:\n%s" %
          (what, status, NORESPAWN, out[-3000:]))
    for t in texts:
        check(t in out, "%s: the log does not say %r:\n%s" % (what, t, out[-3000:]))
    aside = [n for n in os.listdir(b.datadir) if n != "index" and n.startswith("index")]
    check(not SET_ASIDE.search(out) and not aside, "%s: the index was set aside: %s" %
          (what, aside))
    after = snapshot(index)
    check(after == before, "%s: DATA-DIR/index changed: %s" % (what, sorted(
        set(after.items()) ^ set(before.items()))))
    print("%s: status %d, nothing set aside" % (what, status))


def unusable_index():
    # a regular file where the index directory should be
    b = pmq.PromptMQ(workers=1, name="idxfile")
    try:
        index = os.path.join(b.datadir, "index")
        os.makedirs(b.datadir)
        with open(index, "w") as f:
            f.write("not an index\n")
        refused(b, "DATA-DIR/index a regular file", "cannot access the index directory",
                "dir=" + index)
    finally:
        b.cleanup()

    # no permission on the index directory, then on one of its files
    b = pmq.PromptMQ(workers=1, name="idxperm").start()
    try:
        check(b.stop() == 0, "promptmqd did not stop cleanly")
        args, program, how = [], pmq.PROMPTMQD, "as the user running the test"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("nobody")
            except KeyError:
                print("note: index permissions not checked: no user nobody to run as")
                return
            os.chmod(b.base, 0o755)
            program = pmq.copy_for_others(os.path.join(b.base, "bin"))
            args, how = ["--server-user", "nobody"], "as nobody (server.user)"
        index = os.path.join(b.datadir, "index")
        queue = os.path.join(index, "queue.db")
        for path, text in ((index, "cannot access the index directory"),
                           (queue, "cannot access an index file")):
            mode = stat.S_IMODE(os.stat(path).st_mode)
            os.chmod(path, 0)
            c = PromptMQFrom(program, workers=1, base=b.base, name="idxperm", args=args)
            try:
                refused(c, "%s mode 000, %s" % (os.path.relpath(path, b.datadir), how),
                        text, ("dir=" if path == index else "file=") + path)
            finally:
                c.cleanup(keep=True)
                os.chmod(path, mode)
    finally:
        b.cleanup()


# ---------------------------------------------------------------------------
# A full file system

# Run by unshare in the new mount namespace: a small tmpfs over the data
# directory; then it waits, holding the namespace, until its stdin closes.
HOLD_SMALL_FS = r"""
set -e
mount --make-rprivate /
mount -t tmpfs -o size=$2,mode=0755 pmq-full "$1"
echo mounted
exec cat >/dev/null
"""


class SmallFS:
    """A tmpfs of FULL_FS bytes over a directory, in a mount namespace
    held by a process of the test; wrap runs a command in it."""

    def __init__(self, directory):
        self.directory = directory
        self.holder = None
        self.why = None
        unshare = shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin:/sbin")
        nsenter = shutil.which("nsenter", path="/usr/bin:/bin:/usr/sbin:/sbin")
        if os.geteuid() != 0:
            self.why = "needs root to mount a tmpfs"
            return
        if unshare is None or nsenter is None:
            self.why = "unshare and nsenter (util-linux) are not installed"
            return
        self.holder = subprocess.Popen(
            [unshare, "--mount", "sh", "-c", HOLD_SMALL_FS, "small-fs", directory,
             str(FULL_FS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        line = self.holder.stdout.readline()
        if line != b"mounted\n":
            self.holder.stdin.close()
            self.holder.wait(pmq.patience(5))
            self.why = "cannot mount a tmpfs in a mount namespace: %s" % (
                self.holder.stderr.read().decode(errors="replace").strip() or
                "status %s" % self.holder.returncode)
            self.holder = None
            return
        self.wrap = [nsenter, "--mount=/proc/%d/ns/mnt" % self.holder.pid, "--"]
        self.inside = "/proc/%d/root%s" % (self.holder.pid, directory)
        self.filler = os.path.join(self.inside, "filler")

    def fill(self):
        """Write the filler until the file system is full."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 16, 4096, 512, 1):
                while True:
                    try:
                        os.write(fd, b"\0" * chunk)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)

    def empty(self):
        os.unlink(self.filler)

    def close(self):
        if self.holder is None:
            return
        self.holder.stdin.close()
        try:
            self.holder.wait(pmq.patience(5))
        except subprocess.TimeoutExpired:
            self.holder.kill()
            self.holder.wait(5)
        self.holder.stdout.close()
        self.holder.stderr.close()


def until_refused(b, pub, topic, tag, mark, sent, acked):
    """QoS 1 messages from pub, one at a time, each until its PUBACK or
    walsvc's "cannot write the message log" (after mark).  Payloads go
    to sent, and once PUBACKed to acked.  Returns {packet id: payload}
    of those still waiting."""
    waiting = {}
    failing = re.compile(r"walsvc\[\d+\] error: cannot write the message log")
    for k in range(2000):
        payload = b"%s %04d" % (tag, k)
        pid = pub.pid()
        pub.send(pmq.publish_packet(topic, payload, 1, pid=pid, version=5))
        sent.append(payload)
        waiting[pid] = payload

        def answered():
            take_pubacks(pub, waiting, acked)
            return pid not in waiting or failing.search(b.log(), mark)
        pmq.wait_for(answered, 5, "the PUBACK of %r or walsvc failing to write" % payload)
        if failing.search(b.log(), mark):
            return waiting
    raise TestFailure("2000 messages taken on a full file system")


def take_pubacks(pub, waiting, acked):
    """Read what RawClient pub got so far (a short wait for the socket):
    PUBACKs move their messages from waiting to acked."""
    while True:
        try:
            p = pub._read_packet(time.monotonic() + 0.01)
        except TimeoutError:
            return
        check(p is not None, "%s: the connection was closed" % pub.name)
        check(p.type == pmq.PUBACK and p.pid in waiting and p.reason == 0,
              "%s: expected a PUBACK 0x00 for one of %s, got %r" % (pub.name, sorted(waiting), p))
        acked.append(waiting.pop(p.pid))


def take_messages(sub, got, until, what):
    """Messages of RawClient sub (acknowledged) into got, until they
    hold every payload of until."""
    while not all(any(p == u for _, p in got) for u in until):
        m = sub.message(what=what)
        got.append((m.topic, m.payload))


def check_order(what, got, sent):
    """got holds each message of every publisher in sent ({name:
    [payloads in the order sent]}) once, in its publisher's order."""
    dup = sorted(set(p for p in got if got.count(p) > 1))
    check(not dup, "%s: twice: %s" % (what, dup))
    for name, order in sent.items():
        mine = [p for p in got if p in order]
        missing = [p for p in order if p not in mine]
        check(not missing, "%s: missing %d of the %d messages of the %s (%s): %s" %
              (what, len(missing), len(order), name, "all taken by the log", missing))
        check(mine == order, "%s: the messages of the %s came as %s, sent as %s" %
              (what, name, mine, order))


def writable_again(b, mark):
    """walsvc writes again once the disk has room: it says so or, when
    its index could not be written for long enough (on a busy machine
    the fill outlasts its patience), it restarted to replay the log and
    is ready again, never having failed a write in its new life."""
    b.wait_log(r"walsvc\[\d+\] notice: message log writable again|"
               r"walsvc\[\d+\] info: walsvc ready", 5, mark)


def full_disk():
    b = pmq.PromptMQ(workers=2, name="enospc", conf_values={"storage.ack-timeout": "60s"})
    fs = None
    again = None
    clients = []
    try:
        os.makedirs(b.datadir)
        fs = SmallFS(b.datadir)
        if fs.why:
            print("note: full file system not checked: %s" % fs.why)
            return
        b.wrap = fs.wrap
        b.start()
        u = pmq.unique("full")
        topic = u + "/q"
        sub = pmq.RawClient(b.port, 5, "online subscriber")
        clients.append(sub)
        sub.connect(u + "-sub")
        sub.subscribe([(topic, 1), (u + "/zero", 0)])
        away = pmq.RawClient(b.port, 5, "persistent session away")
        away.connect(u + "-away", clean=False, props={"session-expiry": DURABLE})
        away.subscribe(topic, 1)
        away.send(pmq.disconnect_packet(5))
        away.expect_closed()
        pub = pmq.RawClient(b.port, 5, "5.0 publisher")
        clients.append(pub)
        pub.connect(u + "-pub")
        sent = {"publisher": [], "publisher with a short ack timeout": []}
        acked = []
        for k in range(3):
            pub.publish(topic, b"before %d" % k, 1)
            sent["publisher"].append(b"before %d" % k)
            acked.append(b"before %d" % k)

        # 1) full: PUBACKs stop, QoS 0 flows; emptied: every PUBACK comes
        mark = b.mark()
        fs.fill()
        waiting = until_refused(b, pub, topic, b"full", mark, sent["publisher"], acked)
        for k in range(3):
            pid = pub.pid()
            pub.send(pmq.publish_packet(topic, b"while full %d" % k, 1, pid=pid, version=5))
            sent["publisher"].append(b"while full %d" % k)
            waiting[pid] = b"while full %d" % k
        pub.publish(u + "/zero", b"qos 0 while full", 0)
        got = []
        take_messages(sub, got, [b"qos 0 while full"], "the QoS 0 message while full")
        # walsvc tries again every 500 ms: two more failed writes, and
        # still no PUBACK
        retry = re.compile(r"walsvc\[\d+\] error: cannot write to the message log; "
                           r"records stay pending")
        later = b.mark()
        pmq.wait_for(lambda: len(retry.findall(b.log()[later:])) >= 2, 5,
                     "walsvc to try the write twice more")
        n = len(acked)
        take_pubacks(pub, waiting, acked)
        check(len(acked) == n, "PUBACKs came while the file system was full: %s" % acked[n:])
        print("file system full after %d QoS 1 messages; %d waiting; QoS 0 delivered" %
              (len(acked), len(waiting)))
        fs.empty()
        writable_again(b, mark)
        pmq.wait_for(lambda: take_pubacks(pub, waiting, acked) or not waiting, 5,
                     "the PUBACKs of %s" % sorted(waiting.values()))
        pub.publish(topic, b"end of part 1", 1)
        sent["publisher"].append(b"end of part 1")
        acked.append(b"end of part 1")

        # 2) full again with storage.ack-timeout 2 s: DISCONNECT 0x89
        b.write_conf({"storage.ack-timeout": "2s"})
        out = b.reload()
        check("configuration reloaded" in out, "reload rejected: %s" % out)
        pub2 = pmq.RawClient(b.port, 5, "5.0 publisher, short ack timeout")
        clients.append(pub2)
        pub2.connect(u + "-pub2")
        mark = b.mark()
        fs.fill()
        waiting2 = until_refused(b, pub2, topic, b"again", mark,
                                 sent["publisher with a short ack timeout"], acked)
        pub2.expect_closed(2 + 3, disconnect=0x89)
        fs.empty()
        writable_again(b, mark)
        pub.publish(topic, b"end of part 2", 1)
        sent["publisher"].append(b"end of part 2")
        acked.append(b"end of part 2")
        everything = [p for order in sent.values() for p in order]
        take_messages(sub, got, everything, "the messages acknowledged or taken by the log")
        check_order("the online subscriber", [p for t, p in got if t == topic], sent)
        print("%d messages acknowledged, %d more after DISCONNECT 0x89: all delivered" %
              (len(acked), len(waiting2)))
        for c in clients:
            c.close()
        clients = []

        # 3) what the index kept through the full disk: a restart
        check(b.stop() == 0, "promptmqd did not stop cleanly after the full disk")
        again = pmq.PromptMQ(workers=2, base=b.base, name="enospc2", conf=b.conf,
                             wrap=fs.wrap)
        again.start()
        back = pmq.RawClient(again.port, 5, "persistent session back after the restart")
        clients.append(back)
        ack = back.connect(u + "-away", clean=False, props={"session-expiry": DURABLE})
        check(ack.session_present, "after the full disk and a restart, the persistent "
              "session was lost")
        # a session's messages come in log order: the marker, published
        # now, comes after everything the session kept
        marker = pmq.RawClient(again.port, 5, "marker publisher")
        clients.append(marker)
        marker.connect(u + "-marker")
        marker.publish(topic, b"marker", 1)
        queued = []
        while True:
            p = back.message(what="queued message %d of %d, or the marker" % (
                len(queued) + 1, len(everything)))
            if p.payload == b"marker":
                break
            queued.append(p.payload)
        check_order("the persistent session after the full disk and a restart", queued, sent)
        again.check_alive("after the full disk and a restart")
        check(again.stop() == 0, "promptmqd did not stop cleanly after the restart")
        print("after a restart the persistent session got all %d messages" % len(queued))
    finally:
        for c in clients:
            c.close()
        if again is not None:
            again.cleanup(keep=True)
        b.cleanup()
        if fs is not None:
            fs.close()


def test():
    failed = []
    for part in (unusable_index, damaged_index, after_compaction, full_disk):
        try:
            part()
        except TestFailure as e:
            print("FAILED: %s: %s" % (part.__name__, e))
            failed.append(part.__name__)
    check(not failed, "failed: %s (details above)" % ", ".join(failed))


pmq.run_test(test, promptmqd_only="damages promptmqd's index and log directory")
