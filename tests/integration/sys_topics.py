"""The $SYS topics (sys.interval): Mosquitto's names, checked against
Mosquitto itself when it is installed; values that follow the traffic
across workers; the current values retained for a new subscriber; "#"
never matching them; sys.interval 0 turning them off by reload."""

import os
import shutil
import subprocess
import tempfile
import time

import pmq
from pmq import check

MOSQUITTO_ONLY = {
    # its memory allocator's counters, expired sessions and payload
    # bytes: not kept by PromptMQ (docs/operations.md)
    "$SYS/broker/heap/current", "$SYS/broker/heap/maximum",
    "$SYS/broker/clients/expired", "$SYS/broker/publish/bytes/received",
    "$SYS/broker/publish/bytes/sent", "$SYS/broker/store/messages/bytes",
}


def collect(port, seconds, name):
    """{topic: (first payload, whether a retained copy came)} of $SYS/#
    for that long (a live publication may come before the retained
    copy: the subscription is in place before its SUBACK)."""
    r = pmq.RawClient(port, 4, name)
    r.connect(pmq.unique("sys"))
    r.subscribe([("$SYS/#", 0)])
    got = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            p = r._read_packet(min(end, time.monotonic() + 0.5))
        except TimeoutError:
            continue
        if p is None:
            break
        if p.type == pmq.PUBLISH:
            first, retained = got.get(p.topic, (p.payload, False))
            got[p.topic] = (first, retained or p.retain)
    r.close()
    return got


def mosquitto_names():
    if not (pmq.MOSQUITTO and os.access(pmq.MOSQUITTO, os.X_OK)):
        return None
    tmp = tempfile.mkdtemp(prefix="sysmosq.", dir="/tmp")
    try:
        port = pmq.free_port()
        conf = os.path.join(tmp, "m.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\nsys_interval 1\n" % port)
        m = subprocess.Popen([pmq.MOSQUITTO, "-c", conf], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            pmq.wait_for(lambda: _listening(port), 10, "mosquitto to listen")
            return set(collect(port, pmq.patience(3), "mosquitto $SYS"))
        finally:
            m.terminate()
            m.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _listening(port):
    try:
        pmq.tcp_connect(port).close()
        return True
    except OSError:
        return False


def value(port, topic):
    """The value a new subscriber gets at once: the retained copy, or a
    publication of the same moment that came before it."""
    r = pmq.RawClient(port, 5, "one $SYS value")
    r.connect(pmq.unique("sysv"))
    r.subscribe([(topic, 0)])
    p = r.expect(pmq.PUBLISH, what=topic)
    r.close()
    check(p.topic == topic, "%s: got %r" % (topic, p))
    return p.payload.decode()


def test():
    b = pmq.PromptMQ(workers=2, name="sys", conf_values={"sys.interval": "1s"})
    b.start()
    try:
        # Mosquitto's names, but what it alone keeps
        ours = collect(b.port, pmq.patience(3), "promptmq $SYS")
        theirs = mosquitto_names()
        if theirs is not None:
            missing = sorted(theirs - set(ours) - MOSQUITTO_ONLY)
            check(not missing, "$SYS topics Mosquitto has and PromptMQ not: %s" % missing)
        check(ours["$SYS/broker/version"][0].startswith(b"PromptMQ version "),
              "version: %r" % (ours["$SYS/broker/version"],))
        check(ours["$SYS/broker/uptime"][0].endswith(b" seconds"), "uptime")
        check(all(retain for _, retain in ours.values()),
              "a new subscriber gets the values retained")
        check("$SYS/broker/workers/1/clients/connected" in ours, "per-worker topics")

        # traffic between workers, then the totals a new subscriber sees
        sub, _ = pmq.raw_elsewhere(b, 5, "subscriber", 1)
        sub.connect(pmq.unique("ssub"))
        topic = pmq.unique("systraffic")
        sub.subscribe([(topic, 1)])
        pub, _ = pmq.raw_elsewhere(b, 5, "publisher", 0)
        pub.connect(pmq.unique("spub"))
        before = int(value(b.port, "$SYS/broker/publish/messages/received"))
        for i in range(30):
            pub.publish(topic, b"x%d" % i, 1)
        for i in range(30):
            sub.message()
        pmq.wait_for(lambda: int(value(b.port, "$SYS/broker/publish/messages/received")) >=
                     before + 30, 10, "publish/messages/received to count 30 more")
        pmq.wait_for(lambda: int(value(b.port, "$SYS/broker/clients/connected")) == 2, 10,
                     "clients/connected to be 2")

        # "#" gets no $SYS, even over several publications
        wild = pmq.RawClient(b.port, 5, "wildcard")
        wild.connect(pmq.unique("swild"))
        wild.subscribe([("#", 0)])
        time.sleep(0.1)
        pub.publish(topic, b"seen by #", 0)
        p = wild.expect(pmq.PUBLISH, what="the ordinary message")
        check(p.topic == topic, "# got %r" % p)
        deadline = time.monotonic() + pmq.patience(2.5)
        while time.monotonic() < deadline:
            try:
                p = wild._read_packet(min(deadline, time.monotonic() + 0.5))
            except TimeoutError:
                continue
            check(p is None or not p.topic.startswith("$"), "# matched %r" % p)

        # off by reload: no values, live or retained
        b.write_conf({"sys.interval": "0s"})
        b.reload()
        quiet = collect(b.port, pmq.patience(2.5), "after sys.interval 0")
        check(not quiet, "$SYS published with sys.interval 0: %s" % sorted(quiet)[:5])
        for c in (sub, pub, wild):
            c.close()
        b.check_alive("after the $SYS topics")
    finally:
        b.stop()
        b.cleanup()


pmq.run_test(test)
