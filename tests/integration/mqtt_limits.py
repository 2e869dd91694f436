"""mqtt.max-connections counts clients over all workers: with a limit of
4 and 2 workers, four clients get in wherever the kernel puts them, the
fifth is refused (5.0: CONNACK 0x97; 3.1.1: return code 3), a taken-over
client id does not count twice, and a freed place is usable again."""

import pmq
from pmq import check


def test():
    b = pmq.PromptMQ(workers=2, name="limits",
                     args=["--mqtt-max-connections", "4"]).start()
    try:
        held = []
        for i in range(4):
            c = pmq.RawClient(b.port, version=5, name="c%d" % i)
            c.connect("limit-%d" % i)
            held.append(c)
        slots = {b.slot_of(c.client_id, c.local_port) for c in held}

        extra = pmq.RawClient(b.port, version=5, name="fifth")
        extra.connect("limit-extra", expect_reason=0x97)
        extra.expect_closed()
        old = pmq.RawClient(b.port, version=4, name="fifth-v311")
        old.connect("limit-extra-311", expect_reason=3)
        old.expect_closed()

        # a takeover replaces a client: the count stays at the limit
        again = pmq.RawClient(b.port, version=5, name="takeover")
        again.connect("limit-0")
        held[0].expect_closed(disconnect=0x8E)
        held[0] = again

        # a client leaving makes room for another
        held[1].send(pmq.disconnect_packet(version=5))
        held[1].expect_closed(optional=True)
        pmq.wait_for(lambda: late_connects(b), 5, "a freed place to be usable")
        print("4 clients on workers %s; the fifth refused; a takeover and a "
              "freed place handled" % sorted(slots))
        for c in held:
            c.close()
        check(b.stop() == 0, "promptmqd did not stop cleanly")
    finally:
        b.cleanup()


def late_connects(b):
    """A new client is accepted (the registry saw the release)."""
    c = pmq.RawClient(b.port, version=5, name="late-try")
    ack = c.connect("limit-late", expect_reason=None)
    c.close()
    return ack.reason == 0


pmq.run_test(test, promptmqd_only="the limit is promptmqd's option")
