"""SIGHUP reloads the configuration file without dropping a client.

100 clients (paho and raw sockets, MQTT 3.1.1 and 5.0, on both workers)
stay connected through every reload below: no disconnect callback fires,
and after each reload every paho client gets its own QoS 1 message back
and every raw client its PINGRESP.  The reloads prove that:

- a file that did not change changes nothing (changed=0);
- reloadable options change live, in every process, each logged as
  `option changed`: log.level debug makes the workers log debug lines
  (the file said info); mqtt.max-packet-size lowered to 1KB makes a
  larger PUBLISH end a 5.0 client with DISCONNECT 0x95 (a 3.1.1 client is
  closed) and new 5.0 clients are told the limit in CONNACK;
  server.connect-timeout lowered closes a silent connection sooner;
  mqtt.max-connections lowered below the number connected refuses new
  clients (0x97, 3.1.1: 3) and drops none of those connected;
- a file with an invalid value, or with a syntax error, is rejected with
  FILE:LINE, and the running configuration stays in force entirely
  (the valid changes in the same file are not applied either);
- a restart-only option changed in the file is named in a warning and
  not applied, while the reloadable ones in the same file are; options
  given by a flag (--workers, --storage-wal-sync-interval) or in the
  environment (PROMPTMQ_MQTT_MAX_QUEUED_MESSAGES) still win over the file
  on reload.
"""

import re
import socket
import time

import pmq
from pmq import check

PAHO, RAW = 50, 50          # clients of each kind, half 5.0, half 3.1.1
SMALL = 1024                # the lowered mqtt.max-packet-size

# what reload 2 sets, on top of the development configuration
LIVE = {"log.level": "debug", "mqtt.max-packet-size": "1KB",
        "storage.wal-sync": "interval", "server.connect-timeout": "500ms"}


class Fleet:
    """The clients that must survive every reload."""

    def __init__(self, b):
        self.b = b
        self.paho, self.raw = [], []
        for i in range(PAHO):
            c = pmq.Client(b.port, pmq.unique("fleet"), (5, 4)[i % 2])
            c.connect()
            c.subscribe(c.client_id + "/inbox", 1)
            self.paho.append(c)
        for i in range(RAW):
            r = pmq.RawClient(b.port, (5, 4)[i % 2], "raw%d" % i)
            r.connect(pmq.unique("fleet-raw"))
            self.raw.append(r)
        slots = {b.slot_of(c.client_id, c.local_port) for c in self.paho + self.raw}
        check(slots == {0, 1}, "the 100 clients did not reach both workers: %s" % slots)

    def check(self, what):
        """Every client is still connected and served."""
        for c in self.paho:
            check(not c.disconnects and c.connected(),
                  "%s: %s was disconnected (%s)" % (what, c.client_id, c.disconnects))
        tag = pmq.unique("alive")
        mids = [(c, c.publish(c.client_id + "/inbox", tag, 1, wait=False)) for c in self.paho]
        for c, mid in mids:
            c.wait(lambda: mid in c.acked, 5, "%s: PUBACK" % what)
            c.expect(c.client_id + "/inbox", tag, 1, 5)
        for r in self.raw:
            r.send(pmq.PINGREQ_PACKET)
        for r in self.raw:
            r.expect(pmq.PINGRESP, 5, "%s: PINGRESP" % what)

    def close(self):
        for c in self.paho:
            c.close()
        for r in self.raw:
            r.close()


def line_of(text, leaf):
    """The line number of the option leaf in a configuration text."""
    for n, line in enumerate(text.splitlines(), 1):
        if re.match(r"\s*%s\s*=" % re.escape(leaf), line):
            return n
    raise pmq.TestFailure("no %s in the configuration written" % leaf)


def changes(out):
    return re.findall(r"option changed option=(\S+) value=\"([^\"]*)\"", out)


def poke_workers(b, mqtt):
    """Make both workers log: bare TCP connections closed before any
    CONNECT (a debug line each, "connection closed"), then, with mqtt,
    one MQTT client per worker that connects and leaves (info lines, which
    come after).  Returns the log position from before."""
    mark = b.mark()
    for _ in range(16):
        pmq.tcp_connect(b.port).close()
    if mqtt:
        def make(i):
            r = pmq.RawClient(b.port, 4, "poke%d" % i)
            r.connect(pmq.unique("poke"))
            return r
        for slot, (r,) in pmq.spread(b, make, per_slot=1).items():
            r.send(pmq.disconnect_packet())
            r.expect_closed()
            b.wait_log(r"worker/%d\[\d+\] info: client disconnected client=%s " %
                       (slot, re.escape(r.client_id)), 5, mark)
    return mark


def debug_lines(b, mark):
    return sorted(set(re.findall(r"worker/(\d+)\[\d+\] debug: ", b.log()[mark:])))


def wait_debug_from_both(b, mark, what):
    pmq.wait_for(lambda: debug_lines(b, mark) == ["0", "1"], 5,
                 "%s: debug lines from both workers" % what)


def test():
    b = pmq.PromptMQ(workers=2, name="reload", log_level=None,
                     args=["--storage-wal-sync-interval", "100ms"],
                     conf_values={"log.level": "info"},
                     env={"PROMPTMQ_MQTT_MAX_QUEUED_MESSAGES": "500"})
    fleet = None
    try:
        b.start()
        fleet = Fleet(b)
        check(not re.search(r"\] debug: ", b.log()),
              "debug lines logged although the file says log.level info")

        # 1) nothing changed
        out = b.reload()
        check("configuration reloaded changed=0 applied=0" in out,
              "an unchanged file changed something:\n%s" % out)
        fleet.check("unchanged reload")

        # 2) reloadable options, applied live
        big5 = pmq.RawClient(b.port, 5, "5.0 client publishing 2KB")
        big5.connect(pmq.unique("big5"))
        big4 = pmq.RawClient(b.port, 4, "3.1.1 client publishing 2KB")
        big4.connect(pmq.unique("big4"))
        b.write_conf(LIVE)
        out = b.reload()
        got = dict(changes(out))
        check(sorted(got) == sorted(LIVE) and got["log.level"] == "debug" and
              got["storage.wal-sync"] == "interval",
              "option changed lines: %s, expected %s" % (got, sorted(LIVE)))
        check("configuration reloaded changed=4 applied=4" in out,
              "reload summary missing or wrong:\n%s" % out)
        fleet.check("reload of 4 options")
        wait_debug_from_both(b, poke_workers(b, mqtt=False), "log.level debug")
        big5.send(pmq.publish_packet("big", b"x" * 2 * SMALL, version=5))
        big5.expect_closed(disconnect=0x95)
        big4.send(pmq.publish_packet("big", b"x" * 2 * SMALL))
        big4.expect_closed()
        late5 = pmq.RawClient(b.port, 5, "5.0 client connected after the reload")
        ack = late5.connect(pmq.unique("late5"))
        check(ack.props.get("maximum-packet-size") == SMALL,
              "CONNACK after the reload: %r, expected Maximum Packet Size %d" % (ack, SMALL))
        # closed after the new 500ms, long before the default 10s
        silent = pmq.tcp_connect(b.port)
        t0 = time.monotonic()
        silent.settimeout(9)
        try:
            closed = silent.recv(1) == b""
        except socket.timeout:
            closed = False
        took = time.monotonic() - t0
        check(closed and 0.4 <= took < 8, "a connection without CONNECT: %s after %.1fs "
              "with connect-timeout 500ms" % ("closed" if closed else "still open", took))
        silent.close()
        fleet.check("after the live changes")

        # 3) an invalid value: rejected as a whole, the old values stay
        text = b.write_conf(dict(LIVE, **{"log.level": "info", "mqtt.max-inflight": 0}))
        out = b.reload()
        where = "%s:%d: " % (b.conf, line_of(text, "max-inflight"))
        check(re.search(r"reload rejected; the running configuration stays "
                        r"error=\"%s[^\n]*max-inflight" % re.escape(where), out),
              "no rejection naming %s and the option:\n%s" % (where, out))
        check(not changes(out) and "configuration reloaded" not in out,
              "a rejected file changed options:\n%s" % out)
        wait_debug_from_both(b, poke_workers(b, mqtt=False), "rejected reload")
        late5.send(pmq.publish_packet("big", b"x" * 2 * SMALL, version=5))
        late5.expect_closed(disconnect=0x95)
        fleet.check("rejected reload")

        # 4) a syntax error
        text = b.write_conf(LIVE)
        lines = text.splitlines()
        n = line_of(text, "max-inflight")
        lines[n - 1] = "\tmax-inflight = ;"
        b.write_conf(text="\n".join(lines) + "\n")
        out = b.reload()
        check(re.search(r"reload rejected; the running configuration stays "
                        r"error=\"%s:%d: " % (re.escape(b.conf), n), out),
              "syntax error on line %d not reported with FILE:LINE:\n%s" % (n, out))
        check(not changes(out), "a file with a syntax error changed options:\n%s" % out)
        fleet.check("syntax error")

        # 5) fewer connections allowed than there are: new ones are
        # refused, none of those connected is dropped.  (Each worker holds
        # fewer than the limit, so the registry is what refuses them.)
        limit = (PAHO + RAW) * 3 // 4
        b.write_conf(dict(LIVE, **{"mqtt.max-connections": limit}))
        out = b.reload()
        check(changes(out) == [("mqtt.max-connections", str(limit))],
              "max-connections reload: %s" % changes(out))
        r = pmq.RawClient(b.port, 5, "over the limit 5.0")
        r.connect(pmq.unique("over"), expect_reason=0x97)
        r.expect_closed()
        r = pmq.RawClient(b.port, 4, "over the limit 3.1.1")
        r.connect(pmq.unique("over"), expect_reason=3)
        r.expect_closed()
        fleet.check("max-connections lowered")

        # 6) back to the start, with a restart-only option changed, and
        # options the flags and the environment hold changed in the file
        b.write_conf({"log.level": "info", "storage.wal-segment-size": "1MB",
                      "server.workers": 3, "storage.wal-sync-interval": "50ms",
                      "mqtt.max-queued-messages": 900})
        out = b.reload()
        got = dict(changes(out))
        want = sorted(list(LIVE) + ["mqtt.max-connections"])
        check(sorted(got) == want, "restoring: option changed %s, expected %s" %
              (sorted(got), want))
        check(re.search(r"warn: option changed but needs a restart; not applied "
                        r"option=storage\.wal-segment-size\b", out),
              "the restart-only change was not reported:\n%s" % out)
        check("configuration reloaded changed=6 applied=5" in out,
              "reload summary missing or wrong:\n%s" % out)
        for held in ("server.workers", "storage.wal-sync-interval",
                     "mqtt.max-queued-messages"):
            check(held not in out, "%s is set by a flag or the environment, "
                  "yet the file's value was considered:\n%s" % (held, out))
        check(not debug_lines(b, poke_workers(b, mqtt=True)),
              "debug lines after log.level went back to info")
        r = pmq.RawClient(b.port, 5, "2KB after the limit went back")
        r.connect(pmq.unique("big-again"))
        topic = pmq.unique("big-again")
        r.subscribe(topic, 1)
        r.publish(topic, b"y" * 2 * SMALL, 1)
        check(r.message().payload == b"y" * 2 * SMALL, "the 2KB message came back wrong")
        r.close()
        fleet.check("restored")

        b.check_alive("after the reloads")
        fleet.close()
        fleet = None
        check(b.stop() == 0, "promptmqd did not stop cleanly")
        print("100 clients kept through 6 reloads; live changes seen, "
              "bad files rejected, restart-only change reported")
    finally:
        if fleet:
            fleet.close()
        b.cleanup()


pmq.run_test(test, promptmqd_only="reloads promptmqd's configuration")
