"""Without auth.password-file no MQTT 5 enhanced authentication (4.12)
is offered, SCRAM-SHA-256 included (auth_scram.py has it with one): a
CONNECT that names an Authentication Method gets CONNACK 0x8C (bad
authentication method) and the connection is closed, on every worker,
as Mosquitto answers without an authentication plugin.  Runs against
Mosquitto with PMQ_TARGET=mosquitto."""

import pmq
from pmq import check


def test():
    b = pmq.start_target(workers=2, name="authmethod")
    try:
        slots = set()
        for avoid in (0, 1, None):
            r, slot = pmq.raw_elsewhere(b, 5, "client with a method", avoid)
            ack = r.connect(pmq.unique("am"), expect_reason=None,
                            props={"auth-method": "SCRAM-SHA-256", "auth-data": b"n,,n=u,r=x"})
            check(ack.reason == 0x8C, "CONNACK 0x%02x, expected 0x8C" % ack.reason)
            r.expect_closed()
            r.close()
            slots.add(slot)
        check(len(slots) == b.slots, "not every worker answered: %s" % sorted(slots))
        # without a method, the same client id gets in
        r = pmq.RawClient(b.port, 5, "client without a method")
        r.connect(pmq.unique("am"))
        r.close()
        b.check_alive("after the authentication methods")
    finally:
        b.stop()
        b.cleanup()


pmq.run_test(test)
