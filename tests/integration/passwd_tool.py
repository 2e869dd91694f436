"""promptmq-passwd: users added, changed and deleted in a password file
that Mosquitto 2.0 reads as its own, and the other way round; the
password asked on a terminal without echo; every other line kept; bad
use refused with a clear message.

Each hash is checked independently of the C code (Python's hashlib), and
the file is given to a real Mosquitto, which must let the users in with
their passwords and nobody with a wrong one."""

import base64
import hashlib
import os
import pty
import select
import shutil
import stat
import subprocess
import tempfile

import pmq
from pmq import check

TOOL = os.path.join(pmq.BUILDDIR, "promptmq-passwd")
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"


def run(*args, stdin=None):
    return subprocess.run([TOOL] + list(args), input=stdin, capture_output=True,
                          text=True, timeout=pmq.patience(10))


def users(path):
    """user -> hash field, in file order, of the lines that have one."""
    out = {}
    with open(path) as f:
        for line in f.read().splitlines():
            if line and not line.startswith("#") and ":" in line:
                u, h = line.split(":", 1)
                out[u] = h
    return out


def matches(field, password):
    """Whether a mosquitto_passwd hash field is that of password."""
    parts = field.split("$")
    if field.startswith("$7$"):
        it, salt, want = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
        got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, it)
    elif field.startswith("$6$"):
        salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
        got = hashlib.sha512(password.encode() + salt).digest()
    else:
        return False
    return got == want


def expect_ok(r, what):
    check(r.returncode == 0, "%s: exit %d\n%s%s" % (what, r.returncode, r.stdout, r.stderr))


def expect_refused(r, status, text, what):
    check(r.returncode == status and text in r.stderr,
          "%s: exit %d (wanted %d with %r)\n%s%s" % (what, r.returncode, status, text,
                                                  r.stdout, r.stderr))


def with_terminal(args, answers):
    """Run the tool on a pseudo-terminal, typing each answer after its
    prompt; (exit status, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(TOOL, [TOOL] + list(args))
    shown, pending, answered = b"", list(answers), 0
    deadline = pmq.patience(10)
    while True:
        ready, _, _ = select.select([fd], [], [], deadline)
        check(ready, "the tool said nothing on its terminal:\n%r" % shown)
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        shown += data
        # each answer after its own prompt, none typed ahead
        if pending and shown.lower().count(b"password:") > answered:
            os.write(fd, pending.pop(0).encode() + b"\n")
            answered += 1
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def mosquitto_accepts(path, user, password):
    """Whether a Mosquitto with password_file path lets user in."""
    b = pmq.GuardedMosquitto(path, name="passwd-mosq")
    try:
        b.start()
        r = subprocess.run([MOSQUITTO_PUB, "-p", str(b.port), "-u", user, "-P", password,
                            "-t", "passwd/test", "-m", "x", "-q", "1"],
                           capture_output=True, text=True, timeout=pmq.patience(10))
        return r.returncode == 0
    finally:
        b.stop()
        b.cleanup()


def test():
    tmp = tempfile.mkdtemp(prefix="passwd.", dir="/tmp")
    try:
        path = os.path.join(tmp, "passwd")

        # created (-c) in batch mode: mode 0600, the default $7$ 101
        expect_ok(run("-c", "-b", path, "dev", "s3cret"), "create")
        check(stat.S_IMODE(os.stat(path).st_mode) == 0o600,
              "a new file has mode %o" % stat.S_IMODE(os.stat(path).st_mode))
        u = users(path)
        check(list(u) == ["dev"] and u["dev"].startswith("$7$101$"), "file: %r" % u)
        check(matches(u["dev"], "s3cret"), "the hash is not of the password: %s" % u["dev"])

        # comments and lines of other tools stay as they were
        with open(path, "a") as f:
            f.write("# operators\nlegacy:plain-text-password\n")
        os.chmod(path, 0o640)
        expect_ok(run("-b", "-I", "5000", path, "iot", "k3y"), "add with -I")
        expect_ok(run("-b", "-H", "sha512", path, "old", "legacy pw"), "add $6$")
        expect_ok(run("-b", path, "dev", "n3w"), "change")
        text = open(path).read()
        check("# operators\nlegacy:plain-text-password\n" in text, "lines lost:\n" + text)
        check(stat.S_IMODE(os.stat(path).st_mode) == 0o640, "the mode was not kept")
        u = users(path)
        check(u["iot"].startswith("$7$5000$") and matches(u["iot"], "k3y"), "iot: %r" % u)
        check(u["old"].startswith("$6$") and matches(u["old"], "legacy pw"), "old: %r" % u)
        check(matches(u["dev"], "n3w") and not matches(u["dev"], "s3cret"), "dev: %r" % u)
        check(text.count("dev:") == 1, "dev twice:\n" + text)

        # deleted; a user that is not there is an error
        expect_ok(run("-D", path, "iot"), "delete")
        check("iot" not in users(path), "iot still there")
        expect_refused(run("-D", path, "iot"), 1, 'no user "iot"', "delete again")

        # the password from a pipe (scripts), and from a terminal, unseen
        expect_ok(run(path, "piped", stdin="from a pipe\n"), "password from stdin")
        check(matches(users(path)["piped"], "from a pipe"), "piped password")
        status, shown = with_terminal([path, "tty"], ["typed pw", "typed pw"])
        check(status == 0, "terminal: exit %d\n%s" % (status, shown))
        check("typed pw" not in shown, "the password was echoed:\n%s" % shown)
        check("Reenter password:" in shown, "no second prompt:\n%s" % shown)
        check(matches(users(path)["tty"], "typed pw"), "tty password")
        status, shown = with_terminal([path, "tty"], ["one", "two"])
        check(status == 1 and "do not match" in shown, "mismatch: %d\n%s" % (status, shown))
        check(matches(users(path)["tty"], "typed pw"), "a mismatch changed the password")

        # bad use
        missing = os.path.join(tmp, "missing")
        expect_refused(run("-b", missing, "u", "p"), 1, "-c creates it", "no file")
        check(not os.path.exists(missing), "a file was made without -c")
        expect_refused(run("-b", path, "a:b", "p"), 2, "without ':'", "':' in a name")
        expect_refused(run("-H", "md5", "-b", path, "u", "p"), 2, "unknown hash", "-H md5")
        expect_refused(run("-I", "0", "-b", path, "u", "p"), 2, "-I wants", "-I 0")
        expect_refused(run("-c", "-D", path, "u"), 2, "usage:", "-c with -D")
        expect_refused(run(path), 2, "usage:", "no user")
        check(run("-h").stdout.startswith("NAME\n    promptmq-passwd"), "-h: no manual")

        if not (os.access(MOSQUITTO_PASSWD, os.X_OK) and os.access(MOSQUITTO_PUB, os.X_OK)):
            print("mosquitto_passwd or mosquitto_pub missing: interoperability not checked")
            return
        # Mosquitto's file, changed by us; then read by Mosquitto
        theirs = os.path.join(tmp, "theirs")
        subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", theirs, "m1", "mosq pw"], check=True)
        subprocess.run([MOSQUITTO_PASSWD, "-b", theirs, "m2", "second"], check=True)
        m2_line = [l for l in open(theirs).read().splitlines() if l.startswith("m2:")][0]
        expect_ok(run("-b", theirs, "p1", "ours"), "add to Mosquitto's file")
        expect_ok(run("-b", "-H", "sha512", theirs, "p2", "ours too"), "add $6$")
        check(m2_line in open(theirs).read(), "Mosquitto's line changed")
        check(matches(users(theirs)["m1"], "mosq pw"), "mosquitto_passwd's hash differs")
        os.chmod(tmp, 0o755)
        os.chmod(theirs, 0o644)     # mosquitto runs as user mosquitto
        for user, pw in (("p1", "ours"), ("p2", "ours too"), ("m1", "mosq pw")):
            check(mosquitto_accepts(theirs, user, pw),
                  "Mosquitto refused %s with the right password" % user)
        check(not mosquitto_accepts(theirs, "p1", "wrong"),
              "Mosquitto let p1 in with a wrong password")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


pmq.run_test(test)
