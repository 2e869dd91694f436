"""server.bind changes by reload (the address is in the file only: a
--bind flag would win over it).

- An address added to the file is accepted on right after the reload,
  by both workers (one SO_REUSEPORT socket per worker slot: two listening
  sockets on the new port), and its clients talk to those of the first
  address.
- An address removed from the file stops accepting: a new connection is
  refused and nothing listens on the port any more; a 5.0 and a 3.1.1
  client already connected through it stay connected and served.
- An address that another process holds with SO_REUSEPORT (which a plain
  SO_REUSEPORT bind would silently share) is refused by the probe bind:
  an error names it, the broker never takes a connection meant for that
  process, and the addresses in force keep working.
- A removed address can be added again.
"""

import re
import socket

import pmq
from pmq import check


def addr(port):
    return "127.0.0.1:%d" % port


def set_bind(b, ports):
    b.write_conf({"server.bind": ",".join(addr(p) for p in ports)})
    return b.reload()


def mqtt_client(port, name, version=5):
    c = pmq.Client(port, pmq.unique(name), version)
    try:
        c.connect()
    except OSError as e:
        raise pmq.TestFailure("%s: cannot connect to %s: %s" % (name, addr(port), e))
    c.subscribe(c.client_id + "/inbox", 1)
    return c


def talk(a, z, what):
    """a and z send each other a QoS 1 message."""
    tag = pmq.unique(what)
    a.publish(z.client_id + "/inbox", tag, 1)
    z.publish(a.client_id + "/inbox", tag, 1)
    z.expect(z.client_id + "/inbox", tag, 1, 5)
    a.expect(a.client_id + "/inbox", tag, 1, 5)


def both_slots_accept(b, port):
    """Connections to port reach both workers (within 60 tries)."""
    seen = set()
    for i in range(60):
        r = pmq.RawClient(port, 4, "probe")
        r.connect(pmq.unique("slot-probe"))
        seen.add(b.slot_of(r.client_id, r.local_port))
        r.close()
        if seen == {0, 1}:
            return
    raise pmq.TestFailure("connections to %s reached only worker(s) %s" %
                          (addr(port), sorted(seen)))


def refused(port):
    try:
        pmq.tcp_connect(port).close()
    except ConnectionRefusedError:
        return True
    return False


def test():
    p1, p2 = pmq.free_port(), pmq.free_port()
    b = pmq.PromptMQ(workers=2, name="bindrl", bind=None,
                     conf_values={"server.bind": addr(p1)})
    held = socket.socket()
    held_conns = []
    clients = []
    try:
        b.start()
        check(b.port == p1, "listening on %s, the file says %s" % (b.port, addr(p1)))
        check(pmq.listening_sockets(p1) == 2, "%d sockets listen on %s, expected one "
              "per worker" % (pmq.listening_sockets(p1), addr(p1)))
        old5 = mqtt_client(p1, "old5")
        old4 = pmq.RawClient(p1, 4, "3.1.1 client on the removed address")
        old4.connect(pmq.unique("old4"))
        clients += [old5, old4]

        # added: accepted at once, by both workers
        out = set_bind(b, [p1, p2])
        check(re.search(r"option changed option=server\.bind value=\"%s,%s\"" %
                        (addr(p1), addr(p2)), out) and
              "configuration reloaded changed=1 applied=1" in out,
              "adding %s:\n%s" % (addr(p2), out))
        new5 = mqtt_client(p2, "new5")
        clients.append(new5)
        check(pmq.listening_sockets(p2) == 2, "%d sockets listen on the added %s, "
              "expected one per worker" % (pmq.listening_sockets(p2), addr(p2)))
        both_slots_accept(b, p2)
        talk(old5, new5, "first-to-added")

        # removed: no new connection, the old ones stay
        out = set_bind(b, [p2])
        check("configuration reloaded changed=1 applied=1" in out,
              "removing %s:\n%s" % (addr(p1), out))
        pmq.wait_for(lambda: pmq.listening_sockets(p1) == 0, 2,
                     "the sockets of the removed %s to close" % addr(p1))
        check(refused(p1), "a connection to the removed %s was not refused" % addr(p1))
        talk(old5, new5, "removed-to-added")
        old4.ping()
        both_slots_accept(b, p2)

        # taken by another process's SO_REUSEPORT socket: not shared
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind(("127.0.0.1", 0))
        held.listen(64)
        p3 = held.getsockname()[1]
        mark = b.mark()
        set_bind(b, [p2, p3])
        m = b.wait_log(r"(?:error|warn): [^\n]*%s" % re.escape(addr(p3)), 5, mark)
        print("a port another process holds: %s" % m.group(0))
        check(pmq.listening_sockets(p3) == 1,
              "promptmqd listens on %s, which another process holds" % addr(p3))
        held.settimeout(pmq.patience(2))
        for _ in range(20):
            s = pmq.tcp_connect(p3)
            try:
                held_conns.append(held.accept()[0])
            except socket.timeout:
                raise pmq.TestFailure("a connection to %s went to promptmqd" % addr(p3))
            s.close()
        talk(old5, new5, "after the refused address")
        old4.ping()

        # the removed address comes back
        out = set_bind(b, [p1, p2])
        check("configuration reloaded" in out and "applied=1" in out,
              "adding %s again:\n%s" % (addr(p1), out))
        back = mqtt_client(p1, "back")
        clients.append(back)
        talk(back, old5, "re-added")
        check(pmq.listening_sockets(p1) == 2, "%d sockets listen on the re-added %s" %
              (pmq.listening_sockets(p1), addr(p1)))

        for c in (old5, new5, back):
            check(not c.disconnects, "%s was disconnected: %s" % (c.client_id, c.disconnects))
        old4.ping()
        b.check_alive("after the bind reloads")
        for c in clients:
            c.close()
        clients = []
        check(b.stop() == 0, "promptmqd did not stop cleanly")
    finally:
        for c in clients:
            c.close()
        for s in held_conns:
            s.close()
        held.close()
        b.cleanup()


pmq.run_test(test, promptmqd_only="reloads promptmqd's listening addresses")
