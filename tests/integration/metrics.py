"""metrics.enabled: promptmq-metrics serves the Prometheus exposition,
/health and /ready from the counters every process writes.  Counters
move by exactly the traffic sent; a worker's totals survive its restart;
restarts and reloads are counted; /ready turns 503 while walsvc is down
and 200 again after; the exposition follows the text format (families
together, HELP and TYPE once, and promtool's own check when Debian's
prometheus package is installed); bad HTTP input (garbage, oversized
headers, other methods, slow and idle connections by the thousand) harms
neither the endpoint nor MQTT; a reload moves the endpoint and turns it
off."""

import http.client
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pmq
from pmq import check

PROMTOOL = shutil.which("promtool")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def http_port(b, start=0):
    """(host, port) of the endpoint, as the log says it was bound."""
    m = b.wait_log(r"listening addr=(127\.0\.0\.\d+):(\d+) slots=1 kind=http",
                   start=start)
    return m.group(1), int(m.group(2))


def get(port, path, method="GET"):
    c = http.client.HTTPConnection(port[0], port[1], timeout=pmq.patience(10))
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        c.close()


def scrape(port):
    """{(name, labels): value}, the format checked on the way."""
    status, ctype, text = get(port, "/metrics")
    check(status == 200 and ctype.startswith("text/plain; version=0.0.4"),
          "/metrics: %d %s" % (status, ctype))
    seen, values, current, kind = set(), {}, None, None
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            fam = line.split()[2]
            if line.startswith("# HELP "):
                check(fam not in seen, "family %s announced twice" % fam)
                seen.add(fam)
                current = fam
            else:
                kind = line.split()[3]
                check(fam == current and kind in ("counter", "gauge", "histogram"),
                      "TYPE out of place: %r" % line)
            continue
        m = SAMPLE.match(line)
        check(m, "not a sample line: %r" % line)
        names = ([current + s for s in ("_bucket", "_sum", "_count")]
                 if kind == "histogram" else [current])
        check(m.group(1) in names, "sample %r outside its family %s" % (line, current))
        check((m.group(1), m.group(2) or "") not in values, "series twice: %r" % line)
        values[(m.group(1), m.group(2) or "")] = float(m.group(3))
    check(not any(k[0].endswith("_total") for k in values) or
          "promptmq_messages_received_total" in seen, "families missing:\n%s" % text)
    if PROMTOOL:
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, text=True,
                           capture_output=True, timeout=20)
        check(r.returncode == 0, "promtool check metrics:\n%s%s" % (r.stdout, r.stderr))
    return values


def total(values, name, **labels):
    want = ['%s="%s"' % kv for kv in labels.items()]
    return sum(v for (n, l), v in values.items()
               if n == name and all(w in l for w in want))


def wait_value(port, name, want, what, **labels):
    got = []

    def reached():
        got[:] = [total(scrape(port), name, **labels)]
        return got[0] == want
    try:
        pmq.wait_for(reached, 10, what)
    except pmq.TestFailure:
        raise pmq.TestFailure("%s: %s is %s, expected %s" % (what, name, got, want))


def ready(port):
    status, ctype, body = get(port, "/ready")
    check(ctype == "application/json", "/ready: %s" % ctype)
    return status, body


def counting(b, port):
    """Traffic moves the counters by exactly what was sent."""
    before = scrape(port)
    sub, _ = pmq.raw_elsewhere(b, 5, "subscriber", 1)
    sub.connect(pmq.unique("msub"))
    topic = pmq.unique("metrics")
    sub.subscribe([(topic, 1)])
    pub, _ = pmq.raw_elsewhere(b, 5, "publisher", 0)
    pub.connect(pmq.unique("mpub"))
    for i in range(40):
        pub.publish(topic, b"m%d" % i, 1)
    for i in range(40):
        sub.message()
    base = {n: total(before, n) for n in ("promptmq_messages_received_total",
                                          "promptmq_messages_delivered_total",
                                          "promptmq_messages_forwarded_total",
                                          "promptmq_log_appends_total",
                                          "promptmq_log_fsync_seconds_count")}
    wait_value(port, "promptmq_messages_received_total",
               base["promptmq_messages_received_total"] + 40, "messages received")
    wait_value(port, "promptmq_messages_delivered_total",
               base["promptmq_messages_delivered_total"] + 40, "messages delivered")
    wait_value(port, "promptmq_messages_forwarded_total",
               base["promptmq_messages_forwarded_total"] + 40,
               "messages forwarded to the subscriber's worker")
    wait_value(port, "promptmq_connections", 2, "connections open")
    wait_value(port, "promptmq_connections", 2, "TCP connections", transport="tcp")
    wait_value(port, "promptmq_clients", 2, "5.0 clients", protocol="5.0")
    wait_value(port, "promptmq_subscriptions", 1, "subscriptions")
    now = scrape(port)
    for fam in ("promptmq_packets_received_total", "promptmq_packets_sent_total",
                "promptmq_received_bytes_total", "promptmq_sent_bytes_total"):
        check(total(now, fam) > total(before, fam), "%s did not move" % fam)
    # the 40 messages went to the other worker and to walsvc over IPC
    for link in ("walsvc", "workers"):
        check(total(now, "promptmq_ipc_records_sent_total", link=link) -
              total(before, "promptmq_ipc_records_sent_total", link=link) >= 40,
              "IPC records to %s did not count the messages" % link)
        check(total(now, "promptmq_ipc_batches_sent_total", link=link) >
              total(before, "promptmq_ipc_batches_sent_total", link=link),
              "IPC batches to %s" % link)
    # 40 PUBLISH in and 40 out at least, each of 5+ bytes
    check(total(now, "promptmq_packets_received_total") -
          total(before, "promptmq_packets_received_total") >= 40 + 40,
          "packets received: PUBLISH and PUBACK each way")
    wait_value(port, "promptmq_clients_connected", 2, "clients in the registry")
    # walsvc: every QoS 1 message appended, each acknowledgement after a
    # timed fdatasync (storage.wal-sync always)
    pmq.wait_for(lambda: total(scrape(port), "promptmq_log_appends_total") >=
                 base["promptmq_log_appends_total"] + 40, 10, "40 appends counted")
    after = scrape(port)
    check(total(after, "promptmq_log_fsync_seconds_count") >
          base["promptmq_log_fsync_seconds_count"], "no fdatasync counted")
    check(total(after, "promptmq_log_fsync_seconds_bucket", le="+Inf") ==
          total(after, "promptmq_log_fsync_seconds_count"), "+Inf bucket != count")
    latency(b, port, before, pub)
    pub.send(pmq.publish_packet(topic + "/kept", b"r", 1, pid=900, retain=True, version=5))
    pub.expect(pmq.PUBACK)
    wait_value(port, "promptmq_retained_messages", 1, "the retained message")
    return sub, pub, topic


LATENCY = "promptmq_delivery_latency_seconds"


def latency(b, port, before, pub):
    """The 40 QoS 1 messages above went straight to a clean subscriber on
    the other worker: 40 direct latencies.  Ten more to a stored session
    come through the log: 10 stored ones.  Every histogram is cumulative
    and its +Inf bucket is its count."""
    wait_value(port, LATENCY + "_count", total(before, LATENCY + "_count", path="direct") + 40,
               "direct QoS 1 deliveries timed", path="direct")
    stored = pmq.unique("mstored")
    s = pmq.RawClient(b.port, 5, "stored subscriber")
    s.connect(stored, clean=False, props={"session-expiry": 300})
    topic = pmq.unique("mlat")
    s.subscribe([(topic, 1)])
    base = total(scrape(port), LATENCY + "_count", path="stored")
    for i in range(10):
        pub.publish(topic, b"s%d" % i, 1)
    for i in range(10):
        s.message()
    wait_value(port, LATENCY + "_count", base + 10, "stored QoS 1 deliveries timed",
               path="stored")
    now = scrape(port)
    series = {}
    for (name, labels), v in now.items():
        if name == LATENCY + "_bucket":
            labels = labels.strip("{}")
            key = labels.split(',le=')[0]
            le = labels.split('le="')[1].rstrip('"')
            series.setdefault(key, []).append((float("inf") if le == "+Inf" else float(le), v))
    check(len(series) == 4, "latency series: %r" % sorted(series))
    for key, buckets in series.items():
        counts = [v for le, v in sorted(buckets)]
        check(counts == sorted(counts), "%s: buckets not cumulative: %r" % (key, buckets))
        check(counts[-1] == total(now, LATENCY + "_count", **dict(
            kv.split("=") for kv in key.replace('"', "").split(","))),
            "%s: +Inf is not the count" % key)
    check(total(now, LATENCY + "_sum") > 0, "no latency summed")
    # the stored session: online with what it was sent until acknowledged
    wait_value(port, "promptmq_sessions_stored", 1, "the online stored session",
               state="online")
    s.close()
    wait_value(port, "promptmq_sessions_stored", 1, "the offline stored session",
               state="offline")
    pub.publish(topic, b"kept for later", 1)
    wait_value(port, "promptmq_session_queued_messages", 1, "a message queued offline")
    pmq.wait_for(lambda: total(scrape(port), "promptmq_session_queued_bytes") >=
                 len(b"kept for later"), 10, "the queued message's bytes")
    check(total(scrape(port), "promptmq_index_disk_bytes") > 0, "no index bytes")


def typed_and_dropped(b, port, pub):
    """Packets and bytes by type; messages not sent because they are
    larger than a client's Maximum Packet Size, and publishes the ACL
    refuses, each under their reason."""
    before = scrape(port)
    small = pmq.RawClient(b.port, 5, "small client")
    small.connect(pmq.unique("msmall"), props={"maximum-packet-size": 64})
    topic = pmq.unique("mbig")
    small.subscribe([(topic, 0)])
    pub.publish(topic, b"x" * 200, 1)
    pub.publish(topic, b"fits", 1)
    m = small.message(what="the message that fits")
    check(m.payload == b"fits", "the small client got %r" % m)
    wait_value(port, "promptmq_messages_dropped_total",
               total(before, "promptmq_messages_dropped_total", reason="too_large") + 1,
               "the message too large for the client", reason="too_large")
    pub.send(pmq.publish_packet("forbidden/x", b"no", 1, pid=901, version=5))
    ack = pub.expect(pmq.PUBACK)
    check(ack.reason == 0x87, "publish to forbidden/x: %r" % ack)
    wait_value(port, "promptmq_messages_dropped_total",
               total(before, "promptmq_messages_dropped_total", reason="not_authorized") + 1,
               "the publish the ACL refused", reason="not_authorized")
    now = scrape(port)
    # the publisher's PUBLISH packets, in and by type; PUBACKs out
    for fam, typ, least in (("promptmq_packets_received_total", "publish", 3),
                            ("promptmq_packets_sent_total", "puback", 3),
                            ("promptmq_packets_received_total", "subscribe", 1),
                            ("promptmq_received_bytes_total", "publish", 200),
                            ("promptmq_sent_bytes_total", "suback", 4)):
        moved = total(now, fam, type=typ) - total(before, fam, type=typ)
        check(moved >= least, "%s{type=%s} moved by %s, expected %s or more" %
              (fam, typ, moved, least))
    check(total(now, "promptmq_packets_received_total", type="auth") ==
          total(before, "promptmq_packets_received_total", type="auth"),
          "AUTH packets counted")
    small.close()


def restarts(b, port, sub, pub, topic):
    # a worker killed: its slot's totals go on from where they were
    values = scrape(port)
    slot = b.slot_of_socket(pub.local_port)
    kept = total(values, "promptmq_messages_received_total", worker=str(slot))
    check(kept >= 40, "the publisher's worker counted %s" % kept)
    # CPU and memory of every process, read from /proc by the supervisor
    pmq.wait_for(lambda: total(scrape(port), "promptmq_worker_cpu_seconds_total",
                               worker=str(slot)) > 0, 10, "the worker's CPU time")
    values = scrape(port)
    cpu = total(values, "promptmq_worker_cpu_seconds_total", worker=str(slot))
    for proc in ("supervisor", "walsvc", "metrics"):
        check(total(values, "promptmq_process_resident_memory_bytes", process=proc) > 0,
              "no resident memory for %s" % proc)
    check(total(values, "promptmq_worker_resident_memory_bytes", worker=str(slot)) > 0,
          "no resident memory for worker %d" % slot)
    os.kill(b.worker_pid(slot), signal.SIGKILL)
    wait_value(port, "promptmq_child_restarts_total", 1, "worker restart counted",
               role="worker")
    wait_value(port, "promptmq_workers_up", 2, "the worker back")
    values = scrape(port)
    after = total(values, "promptmq_messages_received_total", worker=str(slot))
    check(after >= kept, "worker %d's total fell from %s to %s" % (slot, kept, after))
    after = total(values, "promptmq_worker_cpu_seconds_total", worker=str(slot))
    check(after >= cpu, "worker %d's CPU time fell from %s to %s" % (slot, cpu, after))
    sub.close()
    pub.close()

    # walsvc killed twice: the second restart waits server.respawn-delay,
    # long enough to see /ready say so
    for n in (1, 2):
        pmq.wait_for(lambda: ready(port)[0] == 200, 20, "ready again")
        os.kill(b.child_pids("promptmq-walsvc")[0], signal.SIGKILL)
        wait_value(port, "promptmq_child_restarts_total", n, "walsvc restart counted",
                   role="walsvc")
    status, body = ready(port)
    check(status == 503 and '"walsvc":"down"' in body,
          "/ready while walsvc waits to restart: %d %s" % (status, body))
    check(get(port, "/health")[0] == 200, "/health while walsvc is down")
    pmq.wait_for(lambda: ready(port)[0] == 200, 20, "ready after walsvc")

    # the metrics child itself
    mpid = b.child_pids("promptmq-metric")[0]
    os.kill(mpid, signal.SIGKILL)
    pmq.wait_for(lambda: [p for p in b.child_pids("promptmq-metric") if p != mpid], 20,
                 "promptmq-metrics back")
    pmq.wait_for(lambda: _answers(port), 20, "the endpoint back")
    wait_value(port, "promptmq_child_restarts_total", 1, "metrics restart counted",
               role="metrics")


def _answers(port):
    try:
        return get(port, "/health")[0] == 200
    except (OSError, http.client.HTTPException):
        return False


def bad_input(b, port):
    mpid = b.child_pids("promptmq-metric")[0]
    check(get(port, "/metrics", "POST")[0] in (405, 501), "POST answered as GET")
    check(get(port, "/nowhere")[0] == 404, "an unknown path")
    for junk in (b"\x00\xff garbage\r\n\r\n", b"GET /metrics HTTP/1.1\r\nX: " +
                 b"a" * 20000 + b"\r\n\r\n", b"GET " + b"/" * 70000 + b" HTTP/1.1\r\n\r\n"):
        s = socket.create_connection(port, timeout=pmq.patience(10))
        try:
            s.sendall(junk)
            data = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        s.close()
        check(not data.startswith(b"HTTP/1.1 200"), "junk answered 200: %r" % data[:60])
    # idle and slow connections by the thousand: the endpoint still answers
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 4096)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    n = max(300, min(2000, want - 300))
    idle = []
    for i in range(n):
        s = socket.create_connection(port, timeout=pmq.patience(10))
        if i % 2:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")   # never finished
        idle.append(s)
    check(get(port, "/health")[0] == 200, "/health with %d idle connections" % n)
    scrape(port)
    # a request never finished is cut off (5 s)
    t0 = time.monotonic()
    idle[1].settimeout(pmq.patience(30))
    try:
        idle[1].recv(100)
    except (ConnectionResetError, socket.timeout):
        pass
    check(time.monotonic() - t0 < pmq.patience(30), "a slow request was never cut off")
    for s in idle:
        s.close()
    check(b.child_pids("promptmq-metric") == [mpid], "promptmq-metrics died of bad input")
    # MQTT unaffected
    r = pmq.RawClient(b.port, 5, "after bad HTTP")
    r.connect(pmq.unique("mq"))
    r.ping()
    r.close()


def reloads(b, port):
    before = total(scrape(port), "promptmq_reloads_total", result="applied")
    # moved: the new address answers, the old one is closed
    mark = b.mark()
    b.write_conf({"metrics.enabled": True, "metrics.bind": "127.0.0.2:0"})
    b.reload()
    newport = http_port(b, start=mark)
    check(newport != port, "the endpoint did not move")
    pmq.wait_for(lambda: _answers(newport), 20, "the endpoint at its new port")
    check(not _answers(port), "the old port still answers")
    check(total(scrape(newport), "promptmq_reloads_total", result="applied") == before + 1,
          "the reload was not counted")
    # off: nothing listens, no child
    b.write_conf({"metrics.enabled": False})
    b.reload()
    pmq.wait_for(lambda: not b.child_pids("promptmq-metric"), 20,
                 "promptmq-metrics gone")
    check(not _answers(newport), "the endpoint answers with metrics.enabled off")
    r = pmq.RawClient(b.port, 5, "after the endpoint went")
    r.connect(pmq.unique("mq"))
    r.close()


def test():
    acl = tempfile.NamedTemporaryFile("w", prefix="metrics-acl.", dir="/tmp",
                                      delete=False)
    acl.write("topic readwrite #\ntopic deny forbidden/#\n")
    acl.close()
    b = pmq.PromptMQ(workers=2, name="metrics", conf_values={
        "metrics.enabled": True, "metrics.bind": "127.0.0.1:0",
        "server.respawn-delay": "3s", "auth.acl-file": acl.name})
    b.start()
    try:
        port = http_port(b)
        status, ctype, body = get(port, "/health")
        check(status == 200 and ctype == "application/json" and "alive" in body,
              "/health: %d %s %s" % (status, ctype, body))
        status, body = ready(port)
        check(status == 200 and '"workers_up":2' in body and '"log":"ok"' in body,
              "/ready: %d %s" % (status, body))
        values = scrape(port)
        check(total(values, "promptmq_workers") == 2, "promptmq_workers")
        check(total(values, "promptmq_build_info") == 1, "build info")
        sub, pub, topic = counting(b, port)
        typed_and_dropped(b, port, pub)
        restarts(b, port, sub, pub, topic)
        bad_input(b, port)
        reloads(b, port)
    finally:
        b.stop()
        b.cleanup()
        os.unlink(acl.name)


pmq.run_test(test)
