"""While walsvc does not answer, QoS 0 flows and QoS 1 waits, bounded.

walsvc is stopped with SIGSTOP (as a stalled disk or a long recovery
would hold it), with storage.ack-timeout 3 s and the clients spread
over two workers:

- QoS 0 between online clients on different workers keeps flowing: it
  never touches the log;
- a QoS 1 message waits for the log; once walsvc runs again within the
  bound, its PUBACK comes (reason 0), the connection stays, and the
  subscriber on the other worker gets the message;
- past storage.ack-timeout the 5.0 publisher gets DISCONNECT 0x89
  (server busy) and its connection is closed, the broker logs why; a
  3.1.1 publisher's connection is closed; when walsvc runs again both
  messages are in the log and delivered, nothing is lost;
- no process of the broker died or was replaced meanwhile.
"""

import os
import signal

import pmq
from pmq import check

ACK_TIMEOUT = 3


def on_other_worker(b, done, name, version, avoid):
    """A raw client connected on a worker other than slot `avoid`."""
    for k in range(50):
        c = pmq.RawClient(b.port, version, name)
        cid = "%s-%d" % (name, k)
        c.connect(cid)
        done.append(c)
        slot = b.connection_slots(cid, 1)[0]
        if slot != avoid:
            return c, slot
        c.close()
    raise pmq.TestFailure("no connection of %s landed off slot %d" %
                          (name, avoid))


def test():
    b = pmq.PromptMQ(workers=2, name="outage",
                     args=["--storage-ack-timeout", "%ds" % ACK_TIMEOUT]).start()
    done = []
    walsvc = None
    try:
        u = pmq.unique("out")
        sub = pmq.RawClient(b.port, 5, "subscriber")
        sub.connect(u + "-sub")
        done.append(sub)
        sub.subscribe(u + "/#", 1)
        slot = b.connection_slots(u + "-sub", 1)[0]
        pub, _ = on_other_worker(b, done, u + "-pub5", 5, slot)
        pub4, _ = on_other_worker(b, done, u + "-pub4", 4, slot)

        walsvc = b.walsvc_pid()
        os.kill(walsvc, signal.SIGSTOP)
        pub.publish(u + "/zero", b"qos 0 while walsvc is stopped", 0)
        m = sub.message(what="the QoS 0 message while walsvc is stopped")
        check(m.payload == b"qos 0 while walsvc is stopped",
              "QoS 0 across workers with walsvc stopped: %r" % m)

        # within the bound: the PUBACK waits, then comes
        pid = pub.pid()
        pub.send(pmq.publish_packet(u + "/one", b"waited", 1, pid=pid, version=5))
        pub.ping()      # the connection is served meanwhile
        os.kill(walsvc, signal.SIGCONT)
        ack = pub.expect(pmq.PUBACK, what="the PUBACK once walsvc runs again")
        check(ack.pid == pid and ack.reason == 0,
              "PUBACK after walsvc ran again: %r" % ack)
        m = sub.message(what="the message that waited for walsvc")
        check(m.payload == b"waited", "after the wait: %r" % m)

        # past the bound: DISCONNECT 0x89; the message is not lost
        os.kill(walsvc, signal.SIGSTOP)
        pub.send(pmq.publish_packet(u + "/two", b"over the bound", 1,
                                    pid=pub.pid(), version=5))
        pub4.send(pmq.publish_packet(u + "/four", b"3.1.1 over the bound", 1,
                                     pid=1))
        took = pub.expect_closed(timeout=ACK_TIMEOUT + 5, disconnect=0x89)
        check(took >= ACK_TIMEOUT - 1.5,
              "disconnected after %.1fs, before storage.ack-timeout (%ds)" %
              (took, ACK_TIMEOUT))
        pub4.expect_closed(timeout=ACK_TIMEOUT + 5)
        b.wait_log(r"storage\.ack-timeout; client disconnected", 5)
        os.kill(walsvc, signal.SIGCONT)
        walsvc = None
        got = sorted(sub.message(what="the messages that outlived their "
                                 "publishers' connections").payload
                     for _ in range(2))
        check(got == [b"3.1.1 over the bound", b"over the bound"],
              "after the bound: %s" % got)
        b.check_alive("after walsvc was stopped twice")
        for c in done:
            c.close()
        check(b.stop() == 0, "promptmqd did not stop cleanly")
        print("QoS 0 flowed with walsvc stopped; QoS 1 waited, then "
              "DISCONNECT 0x89 after %.1fs; nothing lost" % took)
    finally:
        if walsvc is not None:
            os.kill(walsvc, signal.SIGCONT)
        b.cleanup()


pmq.run_test(test, promptmqd_only="stops promptmqd's walsvc")
