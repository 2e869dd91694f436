"""promptmqctl against a live broker with two workers.

- status: the processes with their pids, the workers' connections and
  clients (the counter region is at most a second old: waited for);
- clients: every connected client with its worker, and the filters
  (--id, --user, --address, --worker), in JSON and as a table;
- kick: a client on either worker gets DISCONNECT 0x98, its will is
  published, its stored session stays; an unknown id is exit status 1;
- sessions and session-delete: an offline session with its queued
  messages exactly, deleted (reconnecting finds nothing); an online one
  is disconnected (0x98) and ends with its connection;
- log-level: debug lines appear at once in the workers; reload takes the
  file's level again; a reload of a broken file fails with the file's
  name and the running configuration stays;
- a worker that does not answer (stopped) is named after 5 s and the
  other worker's rows still come;
- the control socket: 0600 in a 0700 directory without a privilege drop;
  garbage, a request without a command, and a seventeenth connection
  are refused without harm;
- with --server-user nobody: the runtime directory is root's (0750,
  nobody's group), the endpoints' directory nobody's, the socket 0660;
  nobody itself is refused, another member of the group is served; a
  runtime directory left by an older version (nobody's) is taken back.
"""

import grp
import json
import os
import pwd
import re
import signal
import socket
import stat
import struct
import subprocess

import pmq
from pmq import check

CTL = os.path.join(pmq.BUILDDIR, "promptmqctl")
KICKED = 0x98


def ipc_version():
    with open(os.path.join(pmq.SRCDIR, "common", "ipc.h")) as f:
        return int(re.search(r"#define IPC_VERSION\s+(\d+)", f.read()).group(1))


def run_ctl(b, *args, expect=0, as_user=None):
    """promptmqctl -j -r RUNDIR ARGS: the parsed answer; the completed
    process when the output is not JSON."""
    cmd = [CTL, "-r", b.rundir] + list(args)
    pre = None
    if as_user is not None:
        uid, gid = as_user

        def pre():
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
    r = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=pre,
                       timeout=pmq.patience(12))
    check(r.returncode == expect, "promptmqctl %s: exit status %d, expected %d; "
          "stdout %r stderr %r" % (" ".join(args), r.returncode, expect, r.stdout,
                                   r.stderr))
    if "-j" in args:
        return json.loads(r.stdout)
    return r


def status(b):
    return run_ctl(b, "-j", "status")


def clients(b, *filters, expect=0):
    return run_ctl(b, "-j", "clients", *filters, expect=expect)


def sessions(b, cid):
    return run_ctl(b, "-j", "sessions", "--id", cid)["sessions"]


def connect_will(port, cid, topic, payload):
    """A 5.0 connection with a will (QoS 0), on a raw socket."""
    c = pmq.RawClient(port, 5, cid)
    c.client_id = cid
    body = pmq.mqtt_str("MQTT") + bytes([5, 0x02 | 0x04]) + struct.pack("!H", 60) + b"\0"
    body += pmq.mqtt_str(cid) + b"\0" + pmq.mqtt_str(topic) + \
        struct.pack("!H", len(payload)) + payload
    c.send(pmq.packet(pmq.CONNECT, 0, body))
    ack = c.expect(pmq.CONNACK, what="CONNACK")
    check(ack.reason == 0, "%s: CONNACK %r" % (cid, ack))
    return c


def spread(b, prefix, want=2):
    """5.0 clients until each worker holds `want`: {client id: (client,
    slot)}; a client on a worker that has enough already is closed."""
    got, per = {}, {0: 0, 1: 0}
    for i in range(60):
        if min(per.values()) >= want:
            return got
        cid = "%s-%d" % (prefix, i)
        c = pmq.RawClient(b.port, 5, cid)
        c.connect(cid)
        slot = b.slot_of(cid, c.local_port)
        if per[slot] >= want:
            c.close()
            b.wait_closed(c.local_port)
            continue
        per[slot] += 1
        got[cid] = (c, slot)
    raise pmq.TestFailure("could not get %d clients on each worker" % want)


def check_status(b, expected):
    """status names every process by its pid, and the workers' clients
    match `expected` ({slot: clients}) once the region caught up."""
    s = status(b)
    br = s["broker"]
    check(br["workers"] == 2 and br["workers_up"] == 2 and br["walsvc"] == "ready" and
          br["state"] == "running", "status: %r" % br)
    procs = {(p["role"], p["slot"]): p for p in s["processes"]}
    check(procs[("supervisor", 0)]["pid"] == b.proc.pid, "supervisor pid: %r" % procs)
    check(procs[("walsvc", 0)]["pid"] == b.walsvc_pid(), "walsvc pid: %r" % procs)
    for slot in (0, 1):
        check(procs[("worker", slot)]["pid"] == b.worker_pid(slot) and
              procs[("worker", slot)]["state"] == "ready",
              "worker %d: %r" % (slot, procs[("worker", slot)]))

    def caught_up():
        s = status(b)
        per = {p["slot"]: p.get("clients") for p in s["processes"]
               if p["role"] == "worker"}
        return per == expected and s["broker"]["clients"] == sum(expected.values())
    pmq.wait_for(caught_up, pmq.patience(3), "status to count %r clients" % expected)
    text = run_ctl(b, "status").stdout
    check("ROLE" in text and "walsvc" in text and "log_position" in text,
          "status as text: %r" % text)


def test_clients(b, spread_clients, alice):
    answer = clients(b)
    listed = {c["client_id"]: c for c in answer["clients"]}
    for cid, (c, slot) in spread_clients.items():
        check(cid in listed and listed[cid]["worker"] == slot and
              listed[cid]["protocol"] == "5.0" and listed[cid]["state"] == "connected" and
              listed[cid]["transport"] == "tcp" and
              listed[cid]["address"] == "127.0.0.1:%d" % c.local_port,
              "clients: %s on worker %d: %r" % (cid, slot, listed.get(cid)))
    check(listed[alice]["user"] == "alice", "alice: %r" % listed[alice])
    ours = set(spread_clients) | {alice}
    check(set(listed) == ours, "clients: %r, expected %r" % (sorted(listed), sorted(ours)))

    def ids(*filters):
        return sorted(c["client_id"] for c in clients(b, *filters)["clients"])
    one = sorted(cid for cid, (c, slot) in spread_clients.items() if slot == 1)
    check(ids("--worker", "1") == sorted(one + ([alice] if listed[alice]["worker"] == 1
                                                else [])),
          "--worker 1: %r" % ids("--worker", "1"))
    first = sorted(spread_clients)[0]
    check(ids("--id", first) == [first], "--id %s: %r" % (first, ids("--id", first)))
    check(ids("--id", "ctla-*") == sorted(spread_clients), "--id ctla-*")
    check(ids("--user", "alice") == [alice], "--user alice")
    check(ids("--address", "127.0.0.1:") == sorted(ours), "--address 127.0.0.1:")
    check(ids("--address", "10.") == [], "--address 10.")
    r = clients(b, "--worker", "7", expect=2)
    check("no worker 7" in r["message"], "--worker 7: %r" % r)
    text = run_ctl(b, "clients").stdout
    check(text.startswith("CLIENT-ID") and first in text, "clients as text: %r" % text)


def test_kick(b, spread_clients):
    """A client on each worker, one of them with a will."""
    watcher = pmq.RawClient(b.port, 5, "will watcher")
    watcher.connect(pmq.unique("ctlw"))
    topic = pmq.unique("ctl/will")
    watcher.subscribe([(topic, 0)])
    for slot in (0, 1):
        cid = pmq.unique("ctlkick%d" % slot)
        for _ in range(40):
            c = connect_will(b.port, cid, topic, b"gone " + cid.encode())
            if b.slot_of(cid, c.local_port) == slot:
                break
            c.send(pmq.disconnect_packet(5))     # no will
            c.close()
            b.wait_closed(c.local_port)
        else:
            raise pmq.TestFailure("no connection on worker %d" % slot)
        r = run_ctl(b, "kick", cid)
        check("worker %d" % slot in r.stdout, "kick %s: %r" % (cid, r.stdout))
        c.expect_closed(disconnect=KICKED)
        m = watcher.message(what="the kicked client's will")
        check(m.payload == b"gone " + cid.encode(), "will: %r" % m)
    r = run_ctl(b, "kick", "nobody-" + pmq.unique(), expect=1)
    check("no client" in r.stderr, "kick of nobody: %r" % r.stderr)
    r = run_ctl(b, "-j", "kick", "nobody-" + pmq.unique(), expect=1)
    check(r["result"] == "not-found", "kick of nobody, JSON: %r" % r)
    watcher.close()


def test_sessions(b):
    pub = pmq.RawClient(b.port, 5, "publisher")
    pub.connect(pmq.unique("ctlpub"))
    # offline, with three messages queued
    cid = pmq.unique("ctlsess")
    topic = "ctl/" + cid
    c = pmq.RawClient(b.port, 4, cid)
    c.connect(cid, clean=False)
    c.subscribe([(topic, 1)])
    c.close()
    b.wait_closed(c.local_port)
    for i in range(3):
        pub.publish(topic, b"queued %d" % i, 1)
    pmq.wait_for(lambda: [s for s in sessions(b, cid) if s["queued"] == 3],
                 pmq.patience(3), "the offline session with 3 messages queued")
    s = sessions(b, cid)[0]
    check(s["state"] == "offline" and s["subscriptions"] == 1 and "worker" not in s and
          s["offline_since"] > 0, "offline session: %r" % s)
    text = run_ctl(b, "sessions").stdout
    check(text.startswith("CLIENT-ID") and cid in text, "sessions as text: %r" % text)
    r = run_ctl(b, "session-delete", cid)
    check("deleted" in r.stdout, "session-delete: %r" % r.stdout)
    check(sessions(b, cid) == [], "the deleted session is listed")
    c = pmq.RawClient(b.port, 4, cid)
    ack = c.connect(cid, clean=False)
    check(not ack.session_present, "a deleted session was present")
    c.ping()
    c.close()
    b.wait_closed(c.local_port)
    run_ctl(b, "session-delete", cid)
    run_ctl(b, "session-delete", "none-" + pmq.unique(), expect=1)

    # online: disconnected, and gone with its connection
    cid = pmq.unique("ctlonline")
    c = pmq.RawClient(b.port, 5, cid)
    c.connect(cid, clean=False, props={"session-expiry": 0xFFFFFFFF})
    s = sessions(b, cid)
    check(len(s) == 1 and s[0]["state"] == "online" and s[0]["worker"] in (0, 1),
          "online session: %r" % s)
    r = run_ctl(b, "session-delete", cid)
    check("disconnected" in r.stdout, "session-delete online: %r" % r.stdout)
    c.expect_closed(disconnect=KICKED)
    pmq.wait_for(lambda: sessions(b, cid) == [], pmq.patience(3),
                 "the online session to end with its connection")
    c = pmq.RawClient(b.port, 5, cid)
    ack = c.connect(cid, clean=False, props={"session-expiry": 60})
    check(not ack.session_present, "a deleted online session was present")
    c.close()
    pub.close()


def test_log_level(b):
    def tcp_touch():
        s = pmq.tcp_connect(b.port)
        s.close()
    start = b.mark()
    tcp_touch()
    r = run_ctl(b, "log-level", "debug")
    check("debug" in r.stdout, "log-level: %r" % r.stdout)
    check(status(b)["broker"]["log_level"] == "debug", "status after log-level")
    pmq.wait_for(lambda: (tcp_touch(), re.search(
        r"worker/\d\[\d+\] debug: connection closed", b.log()[start:]))[1],
        pmq.patience(3), "a worker's debug line")
    run_ctl(b, "log-level", "loud", expect=2)
    r = run_ctl(b, "reload")
    check("configuration reloaded" in r.stdout, "reload: %r" % r.stdout)
    check(status(b)["broker"]["log_level"] == "info", "log level after reload")
    # a broken file: refused with its name; the running configuration stays
    good = open(b.conf).read()
    with open(b.conf, "a") as f:
        f.write("server: { workers = ; };\n")
    r = run_ctl(b, "reload", expect=2)
    check(b.conf in r.stderr and "rejected" in r.stderr, "bad reload: %r" % r.stderr)
    with open(b.conf, "w") as f:
        f.write(good)
    run_ctl(b, "reload")


def test_unanswered(b, spread_clients):
    """A stopped worker is waited for 5 s, then named; the other's rows
    come."""
    pid = b.worker_pid(1)
    os.kill(pid, signal.SIGSTOP)
    try:
        r = clients(b, expect=2)
    finally:
        os.kill(pid, signal.SIGCONT)
    check("no answer from worker 1" in r["message"], "stopped worker: %r" % r)
    got = {c["client_id"] for c in r["clients"]}
    zero = {cid for cid, (c, slot) in spread_clients.items() if slot == 0}
    check(zero <= got and all(c["worker"] == 0 for c in r["clients"]),
          "rows of worker 0: %r" % r["clients"])
    clients(b)


def raw_request(body, version=None, role=4):
    header = struct.pack(">IHHBBHIQQ", 0x504d5149, version or ipc_version(), 1, role, 0,
                         0, 0, 0, 0)
    return header + struct.pack(">HHIQQ", 0x0501, 0, len(body), 1, 7) + body


def seqpacket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(pmq.patience(5))
    s.connect(path)
    return s


def test_socket(b):
    path = os.path.join(b.rundir, "ctl.sock")
    st = os.stat(path)
    check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600,
          "ctl.sock mode %o" % st.st_mode)
    check(stat.S_IMODE(os.stat(b.rundir).st_mode) == 0o700, "runtime directory mode")
    check(os.path.exists(os.path.join(b.rundir, "ipc", "wal.ipc")),
          "the endpoints are not in RUNDIR/ipc")
    # garbage: closed
    s = seqpacket(path)
    s.send(b"hello, broker")
    check(s.recv(65536) == b"", "garbage was answered")
    s.close()
    # an envelope of another version: closed
    s = seqpacket(path)
    s.send(raw_request(b"cmd\0status\0", version=ipc_version() + 1))
    check(s.recv(65536) == b"", "another version was answered")
    # no command: refused in words
    s = seqpacket(path)
    s.send(raw_request(b"what\0status\0"))
    answer = s.recv(65536)
    check(answer[56:57] == b"\2" and b"malformed" in answer, "no command: %r" % answer)
    s.close()
    # sixteen at once are served, the seventeenth is not
    many = [seqpacket(path) for _ in range(16)]
    extra = seqpacket(path)
    check(extra.recv(65536) == b"", "a seventeenth connection was kept")
    many[0].send(raw_request(b"cmd\0status\0"))
    check(many[0].recv(65536)[32:34] == b"\x05\x81", "no rows for the first connection")
    for s in many + [extra]:
        s.close()
    status(b)


def test_privileges():
    """--server-user nobody: who owns what, who may connect."""
    nobody = pwd.getpwnam("nobody")
    group = grp.getgrgid(nobody.pw_gid)
    b = pmq.PromptMQ(workers=2, name="ctlpriv", args=["--server-user", "nobody"])
    os.chmod(b.base, 0o755)     # the other user must reach the socket
    # a runtime directory as an older version left it: nobody's
    os.makedirs(b.rundir, 0o700)
    os.chown(b.rundir, nobody.pw_uid, nobody.pw_gid)
    open(os.path.join(b.rundir, "wal.ipc"), "w").close()
    b.start()
    try:
        st = os.stat(b.rundir)
        check((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, group.gr_gid, 0o750),
              "runtime directory: uid %d gid %d mode %o" % (st.st_uid, st.st_gid,
                                                         stat.S_IMODE(st.st_mode)))
        st = os.stat(os.path.join(b.rundir, "ipc"))
        check((st.st_uid, stat.S_IMODE(st.st_mode)) == (nobody.pw_uid, 0o700),
              "endpoints' directory: uid %d mode %o" % (st.st_uid, stat.S_IMODE(st.st_mode)))
        st = os.stat(os.path.join(b.rundir, "ctl.sock"))
        check((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, group.gr_gid, 0o660),
              "ctl.sock: uid %d gid %d mode %o" % (st.st_uid, st.st_gid,
                                                stat.S_IMODE(st.st_mode)))
        st = os.stat(os.path.join(b.rundir, "promptmqd.lock"))
        check((st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600), "the lock file")
        r = run_ctl(b, "status", expect=2, as_user=(nobody.pw_uid, nobody.pw_gid))
        check("closed" in r.stderr, "nobody: %r" % r.stderr)
        b.wait_log(r"control connection refused: the broker's own user uid=%d" %
                   nobody.pw_uid)
        # another user of the group is an operator
        other = 54321
        s = run_ctl(b, "-j", "status", as_user=(other, group.gr_gid))
        check(s["broker"]["workers_up"] == 2, "the group's member: %r" % s["broker"])
        # not in the group: the directory is closed to it
        r = run_ctl(b, "status", expect=2, as_user=(other, other))
        check("Permission denied" in r.stderr, "a stranger: %r" % r.stderr)
        c = pmq.RawClient(b.port, 5, "after")
        c.connect(pmq.unique("ctlpriv"))
        c.ping()
        c.close()
    finally:
        b.stop()
        b.cleanup()


def test():
    b = pmq.PromptMQ(workers=2, name="ctl", log_level=None,
                     conf_values={"log.level": "info"})
    b.start()
    try:
        spread_clients = spread(b, "ctla")
        alice = pmq.unique("ctlalice")
        a = pmq.RawClient(b.port, 5, alice)
        a.connect(alice, username="alice")
        a_slot = b.slot_of(alice, a.local_port)
        expected = {0: 0, 1: 0}
        for cid, (c, slot) in spread_clients.items():
            expected[slot] += 1
        expected[a_slot] += 1
        check_status(b, expected)
        test_clients(b, spread_clients, alice)
        test_unanswered(b, spread_clients)
        test_kick(b, spread_clients)
        test_sessions(b)
        test_log_level(b)
        test_socket(b)
        for c, slot in spread_clients.values():
            c.ping()
            c.close()
        a.close()
        b.check_alive("after promptmqctl")
    finally:
        b.stop()
        b.cleanup()
    test_privileges()


pmq.run_test(test)
