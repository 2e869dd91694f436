"""auth.password-file: clients log in with a user name and password from
a Mosquitto-format password file, on every worker, at MQTT 3.1.1 and
5.0; everything else is refused with CONNACK 0x87 (3.1.1: 5), as
Mosquitto answers, which the same file given to Mosquitto confirms.
The file is read by the supervisor: a missing one stops the start (and
`-t`) with its name; on SIGHUP it is read again, users added and removed
take effect for new connections, a line that cannot be read is logged
with its number and skipped, and a file gone leaves the running one in
force.  Checking passwords that cost many PBKDF2 iterations does not
hold up a worker's other clients."""

import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

import pmq
from pmq import check

TOOL = os.path.join(pmq.BUILDDIR, "promptmq-passwd")
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
REFUSED = {4: 5, 5: 0x87}


def add_user(path, user, password, *opts):
    subprocess.run([TOOL, "-b"] + list(opts) + [path, user, password], check=True,
                   capture_output=True, timeout=pmq.patience(10))


def login(b, version, user, password, slot=None, cid=None):
    """(CONNACK reason, client) of a login on a worker other than the
    given slot's twin (slot None: any)."""
    r, s = pmq.raw_elsewhere(b, version, "%s@%s" % (user, version),
                             None if slot is None else 1 - slot)
    ack = r.connect(cid or pmq.unique("auth"), username=user, password=password,
                    expect_reason=None)
    r.slot = s
    return ack.reason, r


def expect_in(b, version, user, password, slot=None):
    reason, r = login(b, version, user, password, slot)
    check(reason == 0, "%s (MQTT %d) refused with 0x%02x" % (user, version, reason))
    return r


def expect_refused(b, version, user, password, what):
    reason, r = login(b, version, user, password)
    check(reason == REFUSED[version], "%s (MQTT %d): CONNACK 0x%02x, expected 0x%02x" %
          (what, version, reason, REFUSED[version]))
    r.expect_closed()
    r.close()


def answered(r):
    """Whether anything came for r yet (looked at, not read)."""
    if r.buf or r.pending:
        return True
    readable, _, _ = select.select([r.sock], [], [], 0)
    return bool(readable)


def failures(b, who):
    """Every way in that must fail, at both levels."""
    for v in (4, 5):
        expect_refused(b, v, "dev", "wrong", "%s: a wrong password" % who)
        expect_refused(b, v, "nobody", "s3cret", "%s: an unknown user" % who)
        expect_refused(b, v, None, None, "%s: no user name" % who)
        expect_refused(b, v, "dev", None, "%s: no password" % who)
        expect_refused(b, v, "Dev", "s3cret", "%s: the name in another case" % who)


def mosquitto_agrees(path):
    """The same file in Mosquitto: the same answers."""
    m = pmq.GuardedMosquitto(path, name="auth-mosq")
    try:
        m.start()
        for v in (4, 5):
            for user in ("dev", "iot"):
                r = pmq.RawClient(m.port, v, "mosquitto " + user)
                ack = r.connect(pmq.unique("m"), username=user,
                                password={"dev": "s3cret", "iot": "k3y"}[user],
                                expect_reason=None)
                check(ack.reason == 0, "Mosquitto refused %s: 0x%02x" % (user, ack.reason))
                r.close()
        failures(m, "Mosquitto")
    finally:
        m.stop()
        m.cleanup()


def slowdown(path):
    """Failed logins from an address slow its next ones down (250 ms after
    the first failure, doubling), the right password included: a delay,
    not a lockout.  The workers count failures together: guesses that
    alternate between them are slowed down as much.  Only lower bounds are
    checked: a busy machine makes everything later, never earlier."""
    b = pmq.PromptMQ(workers=2, name="authslow", args=[
        "--mqtt-allow-anonymous=false", "--auth-password-file", path]).start()
    try:
        took = []
        for i in range(3):
            t0 = time.monotonic()
            reason, r = login(b, 5, "dev", "guess %d" % i, slot=i % 2)
            check(reason == 0x87 and r.slot == i % 2, "guess %d on worker %d: 0x%02x "
                  "on worker %s" % (i, i % 2, reason, r.slot))
            r.expect_closed()
            r.close()
            took.append(time.monotonic() - t0)
        # waits before the 2nd and 3rd checks: 250 ms, then 500 ms, each
        # after failures on the other worker
        check(took[1] >= 0.25 and took[2] >= 0.5,
              "failed logins not slowed down across workers: %s" %
              ["%.3f" % t for t in took])
        t0 = time.monotonic()
        expect_in(b, 5, "dev", "s3cret", slot=1).close()
        check(time.monotonic() - t0 >= 1.0, "the login after 3 failures was not delayed")
        b.check_alive("after the slowed logins")
    finally:
        b.stop()
        b.cleanup()


def test():
    tmp = tempfile.mkdtemp(prefix="auth.", dir="/tmp")
    os.chmod(tmp, 0o755)
    b = None
    try:
        path = os.path.join(tmp, "passwd")
        subprocess.run([TOOL, "-c", "-b", "-I", "1000", path, "dev", "s3cret"], check=True)
        add_user(path, "iot", "k3y", "-H", "sha512")
        # costly on purpose: 100,000 PBKDF2 iterations a check
        add_user(path, "slow", "slow pw", "-I", "100000")
        if os.access(MOSQUITTO_PASSWD, os.X_OK):
            subprocess.run([MOSQUITTO_PASSWD, "-b", path, "mq", "from mosquitto"], check=True)
        os.chmod(path, 0o600)   # root's alone: the supervisor reads it

        # a file that is not there: no start, its name said
        r = subprocess.run([pmq.PROMPTMQD, "-t", "-c", pmq.DEV_CONF,
                            "--auth-password-file", path + ".missing"],
                           capture_output=True, text=True, timeout=pmq.patience(10))
        check(r.returncode != 0 and path + ".missing" in r.stderr and
              "No such file" in r.stderr, "-t with a missing password file: %d\n%s" %
              (r.returncode, r.stderr))
        r = subprocess.run([pmq.PROMPTMQD, "-t", "-c", pmq.DEV_CONF,
                            "--mqtt-allow-anonymous=false"],
                           capture_output=True, text=True, timeout=pmq.patience(10))
        check(r.returncode == 0 and "every client will be refused" in r.stderr,
              "-t without a way in: no warning\n%s" % r.stderr)

        # (the slowdown of failed logins is checked on its own, below)
        b = pmq.PromptMQ(workers=2, name="auth", args=[
            "--mqtt-allow-anonymous=false", "--auth-password-file", path,
            "--auth-failed-login-delay", "0s",
            # the costly checks below, on a slow machine (valgrind)
            "--server-connect-timeout", "120s"]).start()
        b.wait_log(r"password file read file=%s users=\d" % path)

        # in, on both workers, at both levels; messages flow between them
        subs = {}
        for v in (4, 5):
            for slot in (0, 1):
                c = expect_in(b, v, "dev", "s3cret", slot)
                subs[(v, c.slot)] = c
        check(len({s for (_, s) in subs}) == 2, "the logins did not reach both workers")
        expect_in(b, 5, "iot", "k3y").close()
        if os.access(MOSQUITTO_PASSWD, os.X_OK):
            expect_in(b, 4, "mq", "from mosquitto").close()
        u = pmq.unique("authmsg")
        sub = subs[(5, 0)]
        check(sub.subscribe([(u, 1)]) == [1], "SUBACK")
        pub = subs[(5, 1)]
        pub.publish(u, b"authenticated", 1)
        got = sub.message()
        check(got.payload == b"authenticated", "message between workers: %r" % got.payload)
        failures(b, "promptmqd")
        log = b.log()
        for secret in ("s3cret", "wrong", "k3y"):
            check(secret not in log, "a password is in the log: %r" % secret)

        # slow checks do not hold up the worker's other clients: the
        # connections are made first, their CONNECTs sent at once, and a
        # client of that worker is answered while the checks go on
        pinger = subs[(5, 0)]
        slow = [pmq.raw_elsewhere(b, 5, "slow login %d" % i, 1)[0] for i in range(8)]
        for r in slow:
            r.send(pmq.connect_packet(pmq.unique("slow"), 5, username="slow",
                                      password="not it"))
        pinger.ping()
        check(any(not answered(r) for r in slow),
              "every costly check was done before a ping came back")
        for r in slow:
            ack = r.expect(pmq.CONNACK, timeout=60, what="CONNACK of a costly check")
            check(ack.reason == 0x87, "costly wrong password: 0x%02x" % ack.reason)
            r.close()
        expect_in(b, 5, "slow", "slow pw").close()

        # reload: a user added, one removed, one's password changed, a
        # bad line; the removed and the changed one's clients are
        # disconnected (0x98), the others stay
        add_user(path, "chg", "before")
        mark = len(b.log())
        os.kill(b.proc.pid, signal.SIGHUP)
        b.wait_log(r"configuration reloaded", start=mark)
        gone = [expect_in(b, 5, "iot", "k3y"), expect_in(b, 4, "iot", "k3y"),
                expect_in(b, 5, "chg", "before")]
        add_user(path, "new", "n3w")
        add_user(path, "chg", "after")
        subprocess.run([TOOL, "-D", path, "iot"], check=True)
        with open(path, "a") as f:
            f.write("broken line without a hash\n")
        nlines = len(open(path).read().splitlines())
        mark = len(b.log())
        os.kill(b.proc.pid, signal.SIGHUP)
        b.wait_log(r"configuration reloaded", start=mark)
        b.wait_log(r"password file line ignored file=%s line=%d" % (path, nlines), start=mark)
        expect_in(b, 5, "new", "n3w").close()
        expect_refused(b, 5, "iot", "k3y", "a user removed by the reload")
        expect_in(b, 4, "dev", "s3cret").close()
        for c in subs.values():
            c.ping()
        for c in gone:
            c.expect_closed(disconnect=0x98 if c.version == 5 else None)
        expect_in(b, 5, "chg", "after").close()

        # a file gone at reload: the running one stays
        shutil.move(path, path + ".away")
        mark = len(b.log())
        os.kill(b.proc.pid, signal.SIGHUP)
        b.wait_log(r"reload: file not changed.*auth.password-file.*No such file", start=mark)
        expect_in(b, 5, "new", "n3w").close()
        shutil.move(path + ".away", path)
        for c in subs.values():
            c.close()
        b.check_alive("after the logins")

        b.stop()
        b.cleanup()
        b = None
        slowdown(path)

        os.chmod(path, 0o644)   # Mosquitto reads it as its own user
        if pmq.MOSQUITTO and os.access(pmq.MOSQUITTO, os.X_OK):
            add_user(path, "iot", "k3y")
            mosquitto_agrees(path)
    finally:
        if b is not None:
            b.stop()
            b.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


pmq.run_test(test)
