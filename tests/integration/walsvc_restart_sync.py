"""A new walsvc learns every connected client, however its start goes.

After a walsvc restart each worker lists its connected clients, with the
stored session each serves, and walsvc grants no claim until it has every
running worker's list (or the sync window closed).  nng drops what is
queued on a link when the link starts over, and a worker starts its log
link over when walsvc has been silent for a while: a list sent while the
new walsvc was still recovering could be lost that way, and walsvc then
waited out its window, took every online session offline and knew no
client (seen once under load, after the full disk of storage_faults.py).

The test holds the new walsvc before it serves (PMQ_TEST_WALSVC_GATE)
until both workers have seen it in the peers table and have started
their log link over (a QoS 1 message each, unacknowledged, makes them):

- once walsvc serves, its registry is in step because every worker
  listed its clients, not because the window closed, and it holds them
  all;
- both publishers get their PUBACKs, and both stored sessions, still
  connected, get both messages from walsvc's queues.

A subscription asks walsvc for its retained messages (RET_LOOKUP), and
everything else for that client waits for the answer.  A lookup that
waits on the log link is dropped with it when the link starts over, and
used to be sent again only when walsvc restarted: a stored session that
subscribed just before walsvc was killed (its lookup unanswered, seen
under load) never got another message.  Here a clean session subscribes
while walsvc is held, so its lookup is on the link when it starts over;
it must get the retained message, once, and then both messages.
"""

import os
import re
import signal

import pmq
from pmq import check

DURABLE = 300       # Session Expiry Interval of the stored sessions


def stored_client(b, u, i):
    """A RawClient with a stored session subscribed to u/# at QoS 1."""
    c = pmq.RawClient(b.port, 5, "stored session %d" % i)
    try:
        ack = c.connect("%s-%d" % (u, i), clean=False,
                        props={"session-expiry": DURABLE})
        check(not ack.session_present, "%s: a new session was present" % c.name)
        check(c.subscribe(u + "/#", 1) == [1], "%s: SUBACK" % c.name)
    except BaseException:
        c.close()
        raise
    return c


def test():
    b = pmq.PromptMQ(workers=2, name="regsync")
    gate = os.path.join(b.base, "walsvc.gate")
    b.env["PMQ_TEST_WALSVC_GATE"] = gate
    slots = {}
    late = None
    try:
        b.start()
        u = pmq.unique("regsync")
        slots = pmq.spread(b, lambda i: stored_client(b, u, i))
        clients = [slots[s][0] for s in sorted(slots)]
        kept = u + "-kept/t"        # not under u/#: only `late` wants it
        pid = clients[0].pid()
        clients[0].send(pmq.publish_packet(kept, b"kept", 1, pid=pid, retain=True,
                                           version=5))
        ack = clients[0].expect(pmq.PUBACK, what="the PUBACK of the retained message")
        # nobody subscribed: 0x10, No matching subscribers, a success
        check(ack.pid == pid and ack.reason == 0x10, "retained message: PUBACK %r" % ack)
        late = pmq.RawClient(b.port, 5, "clean subscriber")
        late.connect(u + "-clean", clean=True)

        # 1) a new walsvc that every worker knows of, held before it serves
        open(gate, "w").close()
        mark = b.mark()
        old = b.walsvc_pid()
        os.kill(old, signal.SIGKILL)
        held = b.wait_log(r"walsvc\[(\d+)\] notice: held at the test gate", 10, mark)
        walsvc = int(held.group(1))
        check(walsvc != old, "the killed walsvc said it was held")
        for s in sorted(slots):
            b.wait_log(r"worker/%d\[\d+\] info: walsvc restarted" % s, 10, mark)
        # its SUBACK needs no record; its retained lookup waits on the link
        check(late.subscribe([u + "/#", u + "-kept/#"], 1) == [1, 1],
              "clean subscriber: SUBACK")

        # 2) appends nobody answers: each worker starts its log link over
        mark = b.mark()
        pids = []
        for c in clients:
            pid = c.pid()
            c.send(pmq.publish_packet(u + "/" + c.client_id, c.client_id.encode(),
                                      1, pid=pid, version=5))
            pids.append(pid)
        for s in sorted(slots):
            b.wait_log(r"worker/%d\[\d+\] notice: walsvc does not hear us; "
                       r"reconnecting the log link why=\"walsvc silent\"" % s,
                       10, mark)

        # 3) walsvc serves: the workers' lists, not the window, end the sync
        os.unlink(gate)
        m = b.wait_log(r"walsvc\[%d\] info: client registry in step with the "
                       r"workers why=([^\n]*) clients=(\d+) sessions=" % walsvc, 10, mark)
        check(m.group(1) == "every worker listed its clients",
              "the registry sync after the restart ended by %r, not by the workers' "
              "lists" % m.group(1))
        check(int(m.group(2)) == len(clients) + 1,
              "after the restart walsvc knew %s clients, not %d" % (m.group(2),
                                                                     len(clients) + 1))

        # 4) nothing was lost: PUBACKs, and every message in every session
        for c, pid in zip(clients, pids):
            ack = c.expect(pmq.PUBACK, what="the PUBACK of the message sent while "
                           "walsvc was held")
            check(ack.pid == pid and ack.reason == 0, "%s: PUBACK %r for packet %d" %
                  (c.name, ack, pid))
        want = sorted(c.client_id.encode() for c in clients)
        for c in clients:
            got = sorted(c.message(what="a message published while walsvc was held").payload
                         for _ in want)
            check(got == want, "%s got %s, not %s" % (c.name, got, want))
            c.ping()
        # the retained message first, once; the held ones after it
        first = late.message(what="the retained message, asked for while walsvc "
                             "was held")
        check(first.retain and first.payload == b"kept",
              "clean subscriber: %r came before the retained message" % first)
        got = sorted(late.message(what="a message published while walsvc was "
                                  "held").payload for _ in want)
        check(got == want, "clean subscriber got %s, not %s" % (got, want))
        late.ping()
        check(not late.pending, "clean subscriber: more came: %r" % late.pending)
        kicked = re.findall(r"[^\n]*session taken over[^\n]*", b.log()[mark:])
        check(not kicked, "a client lost its connection: %s" % kicked)
        print("walsvc held until both workers reconnected their log links; "
              "the sync ended with %s clients listed" % m.group(2))
        pmq.close_all(slots)
        slots = {}
        late.close()
        late = None
        check(b.stop() == 0, "promptmqd did not stop cleanly")
    finally:
        if os.path.exists(gate):
            os.unlink(gate)
        pmq.close_all(slots)
        if late is not None:
            late.close()
        b.cleanup()


pmq.run_test(test, promptmqd_only="holds walsvc before it serves")
