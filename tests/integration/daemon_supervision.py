"""Supervision of children that keep dying, and of a walsvc that cannot.

Throttling (respawn-delay 10ms, respawn-delay-max 100ms, respawn-stable
3s, throttle-after 5, throttle-time 6s).  Slot 0's worker, after serving
for longer than respawn-stable, is killed with SIGKILL, and so is every
replacement as soon as the supervisor logs it, up to twenty times.  This
proves that:

- a worker that died young is restarted after respawn-delay, doubling
  while it keeps dying young, capped at respawn-delay-max (the delays the
  supervisor logs are 10, 20, 40, 80, 100 ms, and no restart came
  sooner than its delay); every restart has a new generation;
- after 5 quick deaths in a row the slot is throttled (logged with its
  number and seconds), so restarts are bounded: no sixth replacement
  appears while the killing goes on; its listening socket is closed
  meanwhile (one socket left on the port, the other slot's);
- the port accepts throughout: MQTT clients connecting all along from
  four threads each get a CONNACK within 4s, sooner than the slot
  reopens (a connection left waiting in the closed slot's queue would
  wait that long); none is refused, and none
  is reset (a connection waiting in the dying slot's queue must not be
  lost when the slot closes) unless a replacement we killed had already
  started accepting, which drops its connections as any worker death.
- after throttle-time the slot reopens (logged), a worker starts again,
  and clients reach it; with new connections packed on the first worker
  with room (the default), its reopened sockets sit at the end of their
  SO_REUSEPORT groups, and the first connection must reach it;
- a worker that ran longer than respawn-stable is restarted after
  respawn-delay again (the backoff was reset) and not throttled.

Bounds that a loaded machine could overrun are not measured by the
clock: the delays are the ones the supervisor logs it chose, and the
clock only shows that no restart came before its delay.

walsvc that cannot come back: its log directory is replaced by a file,
then walsvc is killed.  The broker does not run without durability: a
QoS 1 message sent meanwhile is never acknowledged, and promptmqd stops
with an error naming the log directory and a non-zero exit status,
leaving no child behind.
"""

import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pmq
from pmq import check

THROTTLE_AFTER = 5
THROTTLE_TIME = 6.0
STABLE = 3.0
DELAY, DELAY_MAX = 0.010, 0.100
ARGS = ["--server-respawn-delay", "10ms", "--server-respawn-delay-max", "100ms",
        "--server-respawn-stable", "3s", "--server-throttle-after", str(THROTTLE_AFTER),
        "--server-throttle-time", "6s",
        # packed, as by default: a reopened slot's sockets join their
        # groups at the end, and placement must follow them
        "--server-pack-connections", "1000"]
# A connection that waited in the throttled slot's queue would get its
# CONNACK only when the slot reopens, THROTTLE_TIME after it closed.
CONNACK_WITHIN = 4.0

STARTED = re.compile(r"(\S+) supervisor\[\d+\] info: child started role=worker slot=0 "
                     r"pid=(\d+) gen=(\d+)")


def line_time(text, pattern, what):
    m = re.search(r"^(\S+) [^\n]*%s" % pattern, text, re.M)
    check(m, "no log line for %s" % what)
    return pmq.log_stamp(m.group(1))


class Tail:
    """The broker's log, read as it grows (cheap enough to poll every
    few milliseconds)."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.partial = b""

    def lines(self):
        data = self.partial + self.f.read()
        cut = data.rfind(b"\n") + 1
        self.partial = data[cut:]
        return data[:cut].decode("utf-8", "replace")

    def close(self):
        self.f.close()


class Failure:
    def __init__(self, start, e):
        self.start = start
        self.took = time.monotonic() - start
        self.what = str(e)
        self.reset = isinstance(e, (ConnectionResetError, BrokenPipeError)) or \
            "got the connection closed" in self.what

    def __repr__(self):
        return "%.3fs: %s" % (self.took, self.what)


class Prober:
    """Threads that connect MQTT clients one after the other and record
    every one that did not get its CONNACK in time (started when, how)."""

    def __init__(self, port, threads=4):
        self.port = port
        self.ok = 0
        self.failures = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, i):
        n = 0
        while not self.done.is_set():
            n += 1
            t0 = time.monotonic()
            try:
                r = pmq.RawClient(self.port, 4, "probe")
                try:
                    r.send(pmq.connect_packet("probe-%d-%d" % (i, n)))
                    r.expect(pmq.CONNACK, CONNACK_WITHIN / pmq.SLOWDOWN)
                    r.send(pmq.disconnect_packet())
                finally:
                    r.close()
                with self.lock:
                    self.ok += 1
            except (OSError, pmq.TestFailure) as e:
                with self.lock:
                    self.failures.append(Failure(t0, e))
            self.done.wait(0.01)

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(CONNACK_WITHIN + 3)
        return self.ok, self.failures


def slot0_served(b):
    for i in range(60):
        r = pmq.RawClient(b.port, 4, "slot0")
        r.connect(pmq.unique("slot0"))
        r.close()
        if b.slot_of(r.client_id, r.local_port) == 0:
            return
    raise pmq.TestFailure("60 connections never reached worker 0")


def kill_loop(b, tail):
    """Kill slot 0's worker, then each replacement as soon as it is
    logged, up to 20 times, until the slot has been throttled for most of
    throttle-time.  Returns ([(pid, gen)] killed, the prober, when the
    throttle was seen, whether the slot's socket was closed then)."""
    text = tail.lines()
    victims = []
    pid, gen = b.worker_pid(0), None
    prober = None
    socket_closed = None
    throttled = None
    deadline = time.monotonic() + pmq.patience(THROTTLE_TIME + 2)
    while len(victims) < 20 and time.monotonic() < deadline:
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            victims.append((pid, gen))
            if prober is None:
                # once it is gone no connection can be one the serving
                # worker had accepted: a failure is the port's
                pmq.wait_for(lambda: not pmq.pid_alive(pid), 2,
                             "the killed worker %d to be gone" % pid)
                prober = Prober(b.port)
            pid = None
        time.sleep(0.001)
        text = tail.lines()
        for m in STARTED.finditer(text):
            pid, gen = int(m.group(2)), int(m.group(3))
        if throttled is None and "worker slot throttled slot=0 " in text:
            throttled = time.monotonic()
            socket_closed = pmq.listening_sockets(b.port) == 1
        if throttled and time.monotonic() - throttled > THROTTLE_TIME - 0.5:
            break
    return victims, prober, throttled, socket_closed


def scheduled_delays(log, victims):
    """For each killed worker: the restart delay the supervisor logged it
    chose, in seconds (None: none logged; the slot was throttled)."""
    out = []
    for pid, _ in victims:
        m = re.search(r"child killed by signal role=worker slot=0 pid=%d\b" % pid, log)
        check(m, "no log line for the death of %d" % pid)
        later = re.search(r"child restart scheduled role=worker slot=0 delay_ms=(\d+)|"
                          r"worker slot throttled slot=0 ", log[m.end():])
        check(later, "the supervisor logged no decision after the death of %d" % pid)
        out.append(int(later.group(1)) / 1000.0 if later.group(1) else None)
    return out


def respawn_delays(log, victims):
    """For each killed worker: seconds from its reaping to the next start
    logged after it (by position: a start in the same millisecond as the
    reaping may be the victim's own)."""
    out = []
    for pid, _ in victims:
        m = re.search(r"^(\S+) [^\n]*child killed by signal role=worker slot=0 "
                      r"pid=%d\b" % pid, log, re.M)
        check(m, "no log line for the death of %d" % pid)
        reaped = pmq.log_stamp(m.group(1))
        later = STARTED.search(log, m.end())
        out.append(pmq.log_stamp(later.group(1)) - reaped if later else None)
    return out


def throttling():
    b = pmq.PromptMQ(workers=2, name="throttle", args=ARGS)
    prober = tail = None
    try:
        b.start()
        tail = Tail(b.logpath)
        slot0_served(b)
        first = line_time(b.log(), r"child started role=worker slot=0 ", "slot 0's start")
        time.sleep(max(0.0, first + STABLE + 0.2 - time.time()))

        victims, prober, throttled, socket_closed = kill_loop(b, tail)
        log = b.log()
        check("worker slot throttled slot=0 " in log,
              "slot 0 was never throttled: killed %d times, the last restarts %s" %
              (len(victims), [round(d, 3) for d in respawn_delays(log, victims[-5:]) if d]))
        check(len(victims) == THROTTLE_AFTER + 1,
              "slot 0's worker was killed %d times before the slot was throttled: "
              "expected the serving one and then %d quick deaths" %
              (len(victims), THROTTLE_AFTER))
        check(re.search(r"worker slot throttled slot=0 seconds=6\b", log),
              "throttle line without seconds=6: %s" %
              re.findall(r"worker slot throttled[^\n]*", log))
        check(socket_closed, "slot 0's listening socket stayed open while throttled")
        gens = [g for _, g in victims[1:]]
        check(all(x < y for x, y in zip(gens, gens[1:])),
              "restart generations do not increase: %s" % gens)

        chosen = scheduled_delays(log, victims)
        want = [min(DELAY * 2 ** k, DELAY_MAX) for k in range(THROTTLE_AFTER)] + [None]
        check(chosen == want, "restart delays chosen %s, expected %s (doubling from "
              "respawn-delay, capped, then the throttle)" % (chosen, want))
        delays = respawn_delays(log, victims)
        check(delays[-1] is None, "slot 0 restarted %.3fs after its %dth quick death, "
              "while it should be throttled" % (delays[-1] or 0, THROTTLE_AFTER))
        shown = [round(d, 3) for d in delays[:-1]]
        for k, (d, c) in enumerate(zip(delays[:-1], chosen)):
            check(d >= c - 0.002, "restart delays %s: death %d was followed by a "
                  "restart after %.3fs, sooner than its delay %.3fs" % (shown, k, d, c))

        # the slot reopens after throttle-time, and serves
        m = b.wait_log(r"worker slot reopened slot=0\b", THROTTLE_TIME)
        log = b.log()
        closed_for = (line_time(log, r"worker slot reopened slot=0\b", "reopen") -
                      line_time(log, r"worker slot throttled slot=0 ", "throttle"))
        check(THROTTLE_TIME - 0.05 <= closed_for <= THROTTLE_TIME + pmq.patience(1),
              "the slot stayed closed %.2fs, throttle-time is %.0fs" %
              (closed_for, THROTTLE_TIME))
        newpid = int(b.wait_log(STARTED.pattern, 3, m.end()).group(2))
        b.wait_log(r"worker/0\[%d\] info: worker ready" % newpid, 5)
        pmq.wait_for(lambda: pmq.listening_sockets(b.port) == 2, 2,
                     "slot 0's socket to listen again")
        # packed: once the supervisor has the worker ready, the next
        # connection goes to it, though its socket moved in the group
        b.wait_log(r"supervisor\[\d+\] debug: new connections go to a worker "
                   r"slot=0\b", 5, m.end())
        r = pmq.RawClient(b.port, 4, "slot0")
        r.connect(pmq.unique("slot0"))
        r.close()
        got = b.slot_of(r.client_id, r.local_port)
        check(got == 0, "a connection packed on slot 0 after it reopened reached "
              "slot %d: the steering program names the wrong socket" % got)
        ok, failures = prober.stop()
        prober = None
        hard = [f for f in failures if not f.reset or f.start > throttled + 0.1]
        check(not hard, "%d of %d connections failed while slot 0 was dying and "
              "throttled: %s" % (len(hard), ok + len(failures), hard[:5]))
        raced = [pid for pid, _ in victims[1:] if re.search(
            r"worker/0\[%d\] info: accepting connections" % pid, log)]
        check(not failures or raced, "%d connections made while slot 0 was dying were "
              "reset though no replacement had started accepting: they waited in slot "
              "0's queue and were lost when it closed: %s" % (len(failures), failures[:5]))
        check(ok >= 50, "only %d connections were tried" % ok)

        # stable again: the backoff starts from respawn-delay, no throttle
        log = b.log()
        started = line_time(log, r"child started role=worker slot=0 pid=%d\b" % newpid,
                            "the reopened slot's worker")
        time.sleep(max(0.0, started + STABLE + 0.2 - time.time()))
        mark = b.mark()
        os.kill(newpid, signal.SIGKILL)
        m = b.wait_log(STARTED.pattern, 2, mark)
        b.wait_log(r"worker/0\[%s\] info: worker ready" % m.group(2), 5)
        log = b.log()
        c = scheduled_delays(log, [(newpid, None)])[0]
        check(c == DELAY, "a worker that ran %.0fs was restarted with a delay of %ss, "
              "not respawn-delay: the backoff was not reset after respawn-stable" %
              (STABLE, c))
        d = respawn_delays(log, [(newpid, None)])[0]
        check(d >= DELAY - 0.002, "restart after %.3fs, before respawn-delay" % d)
        check(b.log_count(r"worker slot throttled") == 1,
              "slot 0 throttled again after one death of a stable worker")
        check(b.stop() == 0, "promptmqd did not stop cleanly")
        print("slot 0 throttled after %d quick deaths (delays %s), reopened after "
              "%.2fs; %d connections during it succeeded, %d reset by a killed "
              "replacement" % (THROTTLE_AFTER, shown, closed_for, ok, len(failures)))
    finally:
        if prober:
            prober.stop()
        if tail:
            tail.close()
        b.cleanup()


def walsvc_cannot_come_back():
    b = pmq.PromptMQ(workers=2, name="nowal", args=["--server-respawn-delay", "10ms"])
    r = None
    try:
        b.start()
        kids = list(b.children())
        r = pmq.RawClient(b.port, 4, "publisher")
        r.connect(pmq.unique("nowal"))
        topic = pmq.unique("nowal")
        r.publish(topic, "before", 1)
        shutil.rmtree(b.walldir)
        with open(b.walldir, "w") as f:
            f.write("not a directory\n")
        os.kill(b.walsvc_pid(), signal.SIGKILL)
        r.send(pmq.publish_packet(topic, "after", 1, pid=r.pid()))
        r.expect_closed(timeout=10)     # and no PUBACK before
        try:
            status = b.proc.wait(pmq.patience(10))
        except subprocess.TimeoutExpired:
            raise pmq.TestFailure("promptmqd still runs %ds after walsvc could not "
                                  "come back; log:\n%s" % (pmq.patience(10), b.log()[-3000:]))
        log = b.log()
        check(status != 0, "promptmqd exited with status 0 without its log")
        check(re.search(r"\] error: [^\n]*%s" % re.escape(b.walldir), log),
              "no error line names the log directory %s:\n%s" % (b.walldir, log[-3000:]))
        check(re.search(r"supervisor\[%d\] error: " % b.pid, log),
              "the supervisor logged no error:\n%s" % log[-3000:])
        for pid in kids:
            pmq.wait_for(lambda: not pmq.pid_alive(pid), 5, "child %d to be gone" % pid)
        print("walsvc without its log directory: promptmqd stopped, status %d" % status)
    finally:
        if r:
            r.close()
        b.cleanup()


def test():
    throttling()
    walsvc_cannot_come_back()


pmq.run_test(test, promptmqd_only="supervises promptmqd's children")
