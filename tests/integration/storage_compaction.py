"""The log gives its disk space back, and storage.max-disk bounds it.

With 64 KB segments (storage.wal-segment-size):

- traffic to online subscribers leaves the log small: 4 MB of QoS 1
  messages, all delivered, leave at most a few segments on disk, and
  the broker logs the removals;
- what is still needed survives compaction and a restart: a retained
  message and the queue of a persistent session that stays away hold
  their segments only until compaction copies them forward; after the
  traffic the log is small all the same, and after a stop and start of
  the whole broker the retained message and every queued message are
  still delivered (waldump shows the copy records);
- storage.max-disk: with a session away holding a backlog, the log and
  index grow to the bound; then a 5.0 publisher's QoS 1 message gets
  PUBACK 0x97 (quota exceeded) and its QoS 2 one PUBREC 0x97, a 3.1.1
  publisher is disconnected, QoS 0 still flows; once the session comes
  back and takes its backlog, compaction brings the log under the bound
  and QoS 1 is taken again.  Every message that got a PUBACK 0x00 is
  delivered: nothing acknowledged is dropped.
"""

import os

import pmq
from pmq import check

SEGMENT = 64 * 1024
PAYLOAD = b"x" * 1000


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def segments(b):
    return sorted(f for f in os.listdir(b.walldir) if f.endswith(".wal"))


def publish_many(pub, topic, n, qos=1):
    """n QoS 1 messages, each acknowledged (the raw client waits)."""
    for k in range(n):
        pub.publish(topic, b"%06d-" % k + PAYLOAD, qos)


def publish_reason(pub, topic, payload):
    """A 5.0 QoS 1 PUBLISH; the PUBACK's reason code."""
    pid = pub.pid()
    pub.send(pmq.publish_packet(topic, payload, 1, pid=pid, version=5))
    ack = pub.expect(pmq.PUBACK)
    check(ack.pid == pid, "PUBACK for %d expected, got %r" % (pid, ack))
    return ack.reason


def drain(sub, n, what):
    got = [sub.message(what=what) for _ in range(n)]
    return [m.payload[:6] for m in got]


def log_shrinks():
    b = pmq.PromptMQ(workers=2, name="compact",
                     args=["--storage-wal-segment-size", "64KB"]).start()
    try:
        u = pmq.unique("shrink")
        sub = pmq.RawClient(b.port, 5, "online subscriber")
        sub.connect(u + "-sub")
        sub.subscribe(u + "/t", 1)
        pub = pmq.RawClient(b.port, 4, "publisher")
        pub.connect(u + "-pub")
        n = 4000
        for k in range(0, n, 500):
            publish_many(pub, u + "/t", 500)
            got = drain(sub, 500, "the online subscriber's messages")
            check(got[0] == b"%06d" % 0 and got[-1] == b"%06d" % 499,
                  "messages out of order: %s ... %s" % (got[0], got[-1]))
        b.wait_log(r"message log segments removed", 10)
        pmq.wait_for(lambda: len(segments(b)) <= 4, 10,
                     "the log to shrink to a few segments (it has %d)" %
                     len(segments(b)))
        size = dir_bytes(b.walldir)
        print("%d KB of QoS 1 traffic left %d segments, %d KB in the log" %
              (n * len(PAYLOAD) // 1024, len(segments(b)), size // 1024))
        sub.close()
        pub.close()
        check(b.stop() == 0, "promptmqd did not stop cleanly")
    finally:
        b.cleanup()


def kept_survives():
    b = pmq.PromptMQ(workers=2, name="compkeep",
                     args=["--storage-wal-segment-size", "64KB"]).start()
    again = None
    try:
        u = pmq.unique("keep")
        pub = pmq.RawClient(b.port, 5, "publisher")
        pub.connect(u + "-pub")
        pub.send(pmq.publish_packet(u + "/retained", b"the retained one", 1,
                                    pid=pub.pid(), retain=True, version=5))
        pub.expect(pmq.PUBACK)
        away = pmq.RawClient(b.port, 4, "session that stays away")
        away.connect(u + "-away", clean=False)
        away.subscribe(u + "/queued", 1)
        away.send(pmq.disconnect_packet())
        away.expect_closed()
        for k in range(5):
            pub.publish(u + "/queued", b"queued %d" % k, 1)
        # traffic for nobody: the log moves on, compaction copies the
        # held messages forward and removes what held them
        publish_many(pub, u + "/nobody", 2000)
        b.wait_log(r"old messages copied forward", 15)
        pmq.wait_for(lambda: len(segments(b)) <= 6, 15,
                     "the log to shrink though old messages are held "
                     "(it has %d segments)" % len(segments(b)))
        pub.close()
        again = pmq.restarted(b, "compkeep2")
        r = pmq.RawClient(again.port, 5, "late subscriber")
        r.connect(u + "-late")
        r.subscribe(u + "/retained", 1)
        m = r.expect(pmq.PUBLISH, what="the retained message")
        check(m.payload == b"the retained one" and m.retain,
              "after compaction and a restart, the retained message is %r" % m)
        r.close()
        back = pmq.RawClient(again.port, 4, "session back")
        ack = back.connect(u + "-away", clean=False)
        check(ack.session_present, "the session that stayed away was lost")
        got = [back.message().payload for _ in range(5)]
        check(got == [b"queued %d" % k for k in range(5)],
              "the queue after compaction and a restart: %s" % got)
        back.close()
        records, _ = pmq.waldump(again.walldir, "copy")
        check(records, "no copy record in the log")
        check(again.stop() == 0, "promptmqd did not stop cleanly")
        print("retained message and 5 queued messages kept through compaction "
              "(%d copies) and a restart" % len(records))
    finally:
        if again is not None:
            again.cleanup(keep=True)
        b.cleanup()


def bounded():
    limit = 4 * 1024 * 1024
    b = pmq.PromptMQ(workers=2, name="maxdisk",
                     args=["--storage-wal-segment-size", "64KB",
                           "--storage-max-disk", "%dB" % limit,
                           "--mqtt-max-queued-messages", "100000"]).start()
    try:
        u = pmq.unique("bound")
        away = pmq.RawClient(b.port, 5, "session away with a backlog")
        away.connect(u + "-away", clean=False, props={"session-expiry": 300})
        away.subscribe(u + "/q", 1)
        away.send(pmq.disconnect_packet(5))
        away.expect_closed()
        pub5 = pmq.RawClient(b.port, 5, "5.0 publisher")
        pub5.connect(u + "-pub5")
        accepted = []
        refused = None
        for k in range(20000):
            payload = b"%06d-" % k + PAYLOAD
            reason = publish_reason(pub5, u + "/q", payload)
            if reason == 0:
                accepted.append(payload[:6])
                continue
            refused = reason
            break
        check(refused == 0x97, "over storage.max-disk, PUBACK %s, expected 0x97 "
              "(after %d accepted)" % (refused, len(accepted)))
        b.wait_log(r"storage\.max-disk reached", 5)
        pid = pub5.pid()
        pub5.send(pmq.publish_packet(u + "/q", b"qos2", 2, pid=pid, version=5))
        rec = pub5.expect(pmq.PUBREC)
        check(rec.reason == 0x97, "a QoS 2 message over the bound got PUBREC %r" % rec)
        pub4 = pmq.RawClient(b.port, 4, "3.1.1 publisher")
        pub4.connect(u + "-pub4")
        pub4.send(pmq.publish_packet(u + "/q", b"3.1.1 over the bound", 1, pid=1))
        pub4.expect_closed()
        # QoS 0 needs no log
        live = pmq.RawClient(b.port, 5, "live subscriber")
        live.connect(u + "-live")
        live.subscribe(u + "/zero", 0)
        pub5.publish(u + "/zero", b"qos0 still flows", 0)
        check(live.message().payload == b"qos0 still flows", "QoS 0 stopped")
        # the session takes its backlog; the log drains under the bound
        back = pmq.RawClient(b.port, 5, "session back")
        back.connect(u + "-away", clean=False, props={"session-expiry": 300})
        got = [back.message(timeout=10).payload[:6] for _ in accepted]
        check(got == accepted, "the backlog after the bound: %d messages, %d "
              "acknowledged" % (len(got), len(accepted)))
        b.wait_log(r"disk use back under storage\.max-disk", 20)
        # the workers hear it on walsvc's next pass: until then, 0x97
        pmq.wait_for(lambda: publish_reason(pub5, u + "/q", b"taken again") == 0,
                     5, "a QoS 1 publish to be taken again")
        m = back.message(what="the message published once under the bound")
        check(m.payload == b"taken again", "after the bound: %r" % m)
        for c in (back, live, pub5):
            c.close()
        check(b.stop() == 0, "promptmqd did not stop cleanly")
        print("max-disk %d KB: %d messages taken, then 0x97 and a 3.1.1 disconnect; "
              "all delivered; taken again after draining" % (limit // 1024,
                                                            len(accepted)))
    finally:
        b.cleanup()


def test():
    log_shrinks()
    kept_survives()
    bounded()


pmq.run_test(test, promptmqd_only="reads promptmqd's log directory")
