"""Publishes reach subscribers on every worker, with 2 and with 3 workers,
3.1.1 and 5.0 clients placed on known workers (by the "client connected"
log line):

- QoS 0 and 1 between every ordered pair of workers, the same worker
  included, at the QoS sent;
- wildcards across workers: + matches one level, "a/#" matches "a" and
  below, "#" and "+/x" match no topic starting with $ (while an explicit
  "$.../#" filter does);
- a SUBACK means every worker applied the subscription: 50 times, a
  fresh filter is subscribed and a client on ANOTHER worker publishes the
  moment the SUBACK arrives; the message must arrive within 2 s;
- QoS 1 messages from one publisher arrive in the order sent;
- a SUBSCRIBE or UNSUBSCRIBE and a QoS 1 PUBLISH sent in one write are
  answered in that order, though the SUBACK waits for the other workers
  and the PUBACK for the log.

Against Mosquitto (one process, so one "worker") the same checks run on
the single pair, which validates the checks themselves; the cross-worker
part is promptmqd's alone."""

import itertools

import pmq
from pmq import check

NAMES = {4: "3.1.1", 5: "5.0"}
MSG_TIMEOUT = 2


def place(b, version, per_slot, raw=False):
    """per_slot clients of this version on every worker."""
    u = pmq.unique("cw%d" % version)

    def make(i):
        cid = "%s-%d" % (u, i)
        if raw:
            c = pmq.RawClient(b.port, version, "%s client %s" % (NAMES[version], cid))
            c.connect(cid)
        else:
            c = pmq.Client(b.port, cid, version)
            c.connect()
        return c
    return pmq.spread(b, make, per_slot)


def pairs(b):
    return list(itertools.product(range(b.slots), repeat=2))


def every_pair(b, slots, version):
    """QoS 0 and 1 from a client on worker j to a client on worker i."""
    u = pmq.unique("pair")
    for i in range(b.slots):
        slots[i][0].subscribe(["%s/%d/%d" % (u, i, j) for j in range(b.slots)], 1)
    for i, j in pairs(b):
        topic = "%s/%d/%d" % (u, i, j)
        for qos in (1, 0):
            payload = "v%d qos %d from worker %d to worker %d" % (version, qos, j, i)
            slots[j][1].publish(topic, payload, qos)
            slots[i][0].expect(topic, payload, qos, MSG_TIMEOUT)


def wildcards(b, slots, version):
    """Filters with + and #, and topics starting with $, across workers."""
    u = pmq.unique("wild")
    for i in range(b.slots):
        sub, hashsub = slots[i][0], slots[i][2]
        hashsub.subscribe(["#", "+/x"], 1)
        for j in range(b.slots):
            pub = slots[j][1]
            base = "%s/%d%d" % (u, i, j)
            dollar = "$%s-%d%d" % (u, i, j)
            sub.subscribe([base + "/+/c", base + "/a/#", dollar + "/#"], 1)
            cases = [   # topic, for sub, for the "#" subscriber
                (base + "/b/c", True, True),
                (base + "/b/d", False, True),
                (base + "/b/e/c", False, True),
                (base + "/a", True, True),
                (base + "/a/b/c", True, True),
                (dollar + "/x", True, False),
                (dollar + "/y/z", True, False),
                (base + "/a/end", True, True),  # the marker: nothing else came
            ]
            for topic, to_sub, to_hash in cases:
                payload = "%s from %d" % (topic, j)
                pub.publish(topic, payload, 1)
                if to_sub:
                    sub.expect(topic, payload, 1, MSG_TIMEOUT)
                if to_hash:
                    hashsub.expect(topic, payload, 1, MSG_TIMEOUT)
            sub.unsubscribe(base + "/+/c")
            sub.unsubscribe(base + "/a/#")
            sub.unsubscribe(dollar + "/#")
        hashsub.unsubscribe("#")
        hashsub.unsubscribe("+/x")


def publish_after_suback(b, raw):
    """A publish sent from another worker right after the SUBACK arrives."""
    u = pmq.unique("race")
    if b.slots > 1:
        routes = [(i, j) for i, j in pairs(b) if i != j]
    else:
        routes = [(0, 0)]
    combos = list(itertools.product(routes, (5, 4), (0, 1)))
    late = []
    for k in range(50):
        (i, j), version, qos = combos[k % len(combos)]
        sub, pub = raw[version][i][0], raw[version][j][1]
        topic = "%s/%d" % (u, k)
        sub.subscribe(topic, 1)
        pub.publish(topic, b"right after SUBACK", qos)
        try:
            m = sub.message(MSG_TIMEOUT, "the message published right after the SUBACK")
        except pmq.TestFailure as e:
            late.append("round %d (v%d, QoS %d, worker %d to %d): %s" %
                        (k, version, qos, j, i, e))
            continue
        check((m.topic, m.payload) == (topic, b"right after SUBACK"),
              "round %d: expected the message on %s, got %r" % (k, topic, m))
    check(not late, "%d of 50 messages published right after a SUBACK were lost:\n  %s" %
          (len(late), "\n  ".join(late)))


def answers_in_order(b, raw):
    """A SUBSCRIBE (whose SUBACK waits for the other workers) and a QoS 1
    PUBLISH (whose PUBACK waits for the log) sent in one write are
    answered in that order, as Mosquitto answers; then an UNSUBSCRIBE
    and a PUBLISH likewise.  20 times, both versions."""
    u = pmq.unique("inorder")
    for k in range(20):
        version = (5, 4)[k % 2]
        r = raw[version][0][0]
        topic = "%s/%d" % (u, k)
        for name, make, answer in (
                ("SUBSCRIBE", lambda pid: pmq.subscribe_packet(pid, [(topic, 1)], version),
                 pmq.SUBACK),
                ("UNSUBSCRIBE", lambda pid: pmq.unsubscribe_packet(pid, [topic], version),
                 pmq.UNSUBACK)):
            first, pid_pub = r.pid(), r.pid()
            r.send(make(first) + pmq.publish_packet(topic + "/x", b"after", 1, pid_pub,
                                                    version=version))
            got = [r.recv(what="the answers to %s and PUBLISH" % name) for _ in range(2)]
            check([p.type for p in got] == [answer, pmq.PUBACK],
                  "round %d (v%d): answers %r to %s and PUBLISH, expected %s, then "
                  "PUBACK" % (k, version, got, name, pmq.PACKET_NAMES[answer]))


def ordering(b, slots, version, n=200):
    """n QoS 1 messages from one publisher arrive in order."""
    u = pmq.unique("order")
    for i, j in pairs(b):
        topic = "%s/%d%d" % (u, i, j)
        sub, pub = slots[i][0], slots[j][1]
        sub.subscribe(topic, 1)
        mids = [pub.publish(topic, "%06d" % s, 1, wait=False) for s in range(n)]
        got = [m.payload.decode() for m in sub.collect(n, 10, "ordered QoS 1 messages")]
        want = ["%06d" % s for s in range(n)]
        if got != want:
            first = next(k for k in range(n) if got[k] != want[k])
            raise pmq.TestFailure("v%d worker %d to %d: QoS 1 order broken at message %d: "
                                  "expected %s, got %s" %
                                  (version, j, i, first, want[first:first + 5],
                                   got[first:first + 5]))
        pub.wait(lambda: all(mid in pub.acked for mid in mids), 10, "all PUBACKs")
        sub.unsubscribe(topic)


def run(workers):
    b = pmq.start_target(workers=workers, name="cross%d" % workers)
    placed = []
    try:
        raw = {}
        for version in (5, 4):
            # per worker: subscriber, publisher, "#" subscriber
            slots = place(b, version, 3)
            placed.append(slots)
            every_pair(b, slots, version)
            wildcards(b, slots, version)
            ordering(b, slots, version)
            raw[version] = place(b, version, 2, raw=True)
            placed.append(raw[version])
        publish_after_suback(b, raw)
        answers_in_order(b, raw)
        b.check_alive("after the cross-worker tests")
    finally:
        for slots in placed:
            pmq.close_all(slots)
        b.stop()
        b.cleanup()


def test():
    if pmq.TARGET == "promptmqd":
        run(2)
        run(3)
    else:
        run(1)


pmq.run_test(test)
