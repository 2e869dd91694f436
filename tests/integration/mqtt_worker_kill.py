"""A worker killed with SIGKILL costs only its own connections:

- its clients (paho, 3.1.1 and 5.0, reconnecting on their own) lose the
  connection at once, reconnect to whichever worker the kernel picks
  within a bounded time, subscribe again, and messages flow between them
  and the other clients again, across workers both ways;
- the clients of the other worker notice nothing: no disconnect, no new
  CONNACK, and a QoS 1 stream between two of them during the kill arrives
  whole and in order;
- the supervisor starts a new worker for the slot.

Each worker slot is killed once in turn (two workers)."""

import os
import signal
import threading
import time

import pmq
from pmq import check

RECONNECT_WITHIN = 5
MSG_TIMEOUT = 2


def make_client(b, u):
    def make(i):
        c = pmq.Client(b.port, pmq.unique(u), (5, 4)[i % 2], reconnect=True,
                       resubscribe=True)
        c.connect()
        c.subscribe(c.client_id + "/inbox", 1)
        return c
    return make


def ring(clients, what):
    """Every client sends one message to the next one's inbox; all arrive."""
    tag = pmq.unique("ring")
    for k, c in enumerate(clients):
        nxt = clients[(k + 1) % len(clients)]
        c.publish(nxt.client_id + "/inbox", "%s from %s" % (tag, c.client_id), 1)
    for k, c in enumerate(clients):
        prev = clients[k - 1]
        c.expect(c.client_id + "/inbox", "%s from %s" % (tag, prev.client_id), 1,
                 MSG_TIMEOUT)


class Stream:
    """QoS 1 messages from one client to another, every 5 ms, on a thread."""

    def __init__(self, pub, sub):
        self.pub, self.sub = pub, sub
        self.topic = pmq.unique("stream")
        sub.subscribe(self.topic, 1)
        self.mids = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set() and len(self.mids) < 5000:
            self.mids.append(self.pub.publish(self.topic, "%06d" % len(self.mids), 1,
                                              wait=False))
            self.stop.wait(0.005)

    def finish(self):
        self.stop.set()
        self.thread.join(5)
        n = len(self.mids)
        self.pub.wait(lambda: all(m in self.pub.acked for m in self.mids), 10,
                      "PUBACKs for the %d stream messages" % n)
        got = [m.payload.decode() for m in
               self.sub.collect(n, 10, "stream messages sent during the kill")]
        want = ["%06d" % s for s in range(n)]
        check(got == want, "the stream between two clients of the surviving worker lost "
              "or reordered messages: %d sent, %d received, first difference at %s" %
              (n, len(got), next((k for k in range(n) if got[k] != want[k]), None)))
        return n


def kill_round(b, victim, by_slot, u):
    """Kill the worker of slot victim; returns the clients afterwards."""
    survivors = [c for s, cs in by_slot.items() if s != victim for c in cs]
    victims = by_slot[victim]
    everyone = survivors + victims
    ring(everyone, "before the kill")
    # a witness pair on a surviving worker, not in the ring
    spare = pmq.spread(b, make_client(b, u + "-w"), 2)
    for s, cs in spare.items():
        if s == victim:
            for c in cs:
                c.close()
    witness = [c for s, cs in spare.items() if s != victim for c in cs][:2]
    stream = Stream(*witness)
    before = {c.client_id: (len(c.connacks), len(c.subacks), len(c.disconnects))
              for c in everyone + witness}

    pid = b.worker_pid(victim)
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    for c in victims:
        c.wait(lambda: len(c.disconnects) > before[c.client_id][2], 3,
               "the connection loss after its worker was killed")
    for c in victims:
        n_ack, n_sub, _ = before[c.client_id]
        c.wait(lambda: len(c.connacks) > n_ack and len(c.subacks) > n_sub,
               RECONNECT_WITHIN, "reconnecting and subscribing again within %ds" %
               RECONNECT_WITHIN)
    took = time.monotonic() - t0
    b.wait_log(r"child killed by signal role=worker slot=%d pid=%d" % (victim, pid))
    new_pid = pmq.wait_for(lambda: b.worker_pid(victim) != pid and b.worker_pid(victim),
                           5, "a new worker for slot %d" % victim)
    ring(everyone, "after the kill")

    for c in survivors + witness:
        n_ack, _, n_disc = before[c.client_id]
        check(len(c.disconnects) == n_disc and len(c.connacks) == n_ack,
              "%s on the surviving worker noticed the kill: disconnects %s, CONNACKs %d "
              "(before: %d disconnects, %d CONNACKs)" %
              (c.client_id, c.disconnects, len(c.connacks), n_disc, n_ack))
    n = stream.finish()
    for c in witness:
        c.close()
    print("slot %d (pid %d -> %d) killed: %d clients back in %.2fs; %d stream messages "
          "on the other worker intact" % (victim, pid, new_pid, len(victims), took, n))

    by_slot = {s: [] for s in range(b.slots)}
    for c in everyone:
        by_slot[b.slot_of(c.client_id, c.local_port)].append(c)
    return by_slot


def test():
    b = pmq.start_target(workers=2, name="wkill")
    u = "wk"
    by_slot = {}
    try:
        try:
            by_slot = pmq.spread(b, make_client(b, u), 3)
            for victim in (0, 1):
                # top up so the victim has clients to lose and the other keeps some
                by_slot = pmq.spread(b, make_client(b, u), 2, slots=by_slot)
                by_slot = kill_round(b, victim, by_slot, u)
        finally:
            pmq.close_all(by_slot)
        status = b.stop()
        check(status == 0, "exit status %s after the kills" % status)
    finally:
        b.cleanup()


pmq.run_test(test, promptmqd_only="kills a worker process")
