"""Retained lookups survive the log link starting over, and count once.

A subscription asks walsvc for its retained messages (RET_LOOKUP) and
everything else for that client waits for the answer.  When walsvc has
been silent for three retransmission rounds the worker starts its log
link over, and nng drops what it still held for walsvc: the worker
sends the lookups that wait again.  walsvc may also have read the first
copies before it went silent (here it is stopped, as a stalled disk
would hold it), and then answers each lookup twice; the answers name
the lookup, and the worker takes only the first.

walsvc is stopped with SIGSTOP while a clean session subscribes to
three retained topics and then to live traffic (four lookups out), and
a QoS 1 message waits for the log until the link starts over; then
walsvc runs again:

- the publisher gets its PUBACK;
- the subscriber gets each retained message once, in the order it
  subscribed, and then the live message, and nothing more.
"""

import os
import signal

import pmq
from pmq import check

KEPT = ("a", "b", "c")


def test():
    b = pmq.PromptMQ(workers=1, name="relink").start()
    done = []
    walsvc = None
    try:
        u = pmq.unique("relink")
        pub = pmq.RawClient(b.port, 5, "publisher")
        done.append(pub)
        pub.connect(u + "-pub")
        for k in KEPT:
            pid = pub.pid()
            pub.send(pmq.publish_packet("%s-%s/t" % (u, k), k.encode(), 1,
                                        pid=pid, retain=True, version=5))
            ack = pub.expect(pmq.PUBACK, what="the PUBACK of retained %s" % k)
            # nobody subscribed yet: 0x10, No matching subscribers
            check(ack.pid == pid and ack.reason == 0x10, "retained %s: %r" % (k, ack))
        sub = pmq.RawClient(b.port, 5, "subscriber")
        done.append(sub)
        sub.connect(u + "-sub")

        # 1) lookups out while walsvc is stopped (a clean session's SUBACK
        # needs no record)
        mark = b.mark()
        walsvc = b.walsvc_pid()
        os.kill(walsvc, signal.SIGSTOP)
        for k in KEPT:
            check(sub.subscribe("%s-%s/#" % (u, k), 1) == [1], "SUBACK %s" % k)
        check(sub.subscribe(u + "/#", 1) == [1], "SUBACK of the live filter")

        # 2) an append nobody answers: the worker starts its log link over
        pid = pub.pid()
        pub.send(pmq.publish_packet(u + "/live", b"live", 1, pid=pid, version=5))
        b.wait_log(r"worker/0\[\d+\] notice: walsvc does not hear us; "
                   r"reconnecting the log link why=\"walsvc silent\"", 10, mark)
        os.kill(walsvc, signal.SIGCONT)
        walsvc = None

        # 3) every lookup answered, each once, and the live message after
        ack = pub.expect(pmq.PUBACK, what="the PUBACK once walsvc runs again")
        check(ack.pid == pid and ack.reason == 0, "PUBACK: %r" % ack)
        got = []
        for k in KEPT:
            m = sub.message(what="retained %s" % k)
            got.append(m.payload)
            check(m.retain, "subscriber: %r came before the retained messages" % m)
        m = sub.message(what="the live message")
        got.append(m.payload)
        check(got == [b"a", b"b", b"c", b"live"], "subscriber got %s" % got)
        sub.ping()
        check(not sub.pending, "subscriber: more came: %r" % sub.pending)
        b.check_alive("after walsvc was stopped")
        for c in done:
            c.close()
        check(b.stop() == 0, "promptmqd did not stop cleanly")
        print("four lookups sent again after the log link started over; "
              "each answered once, then the live message")
    finally:
        if walsvc is not None:
            os.kill(walsvc, signal.SIGCONT)
        for c in done:
            c.close()
        b.cleanup()


pmq.run_test(test, promptmqd_only="stops promptmqd's walsvc")
