"""Bad configurations and environments are refused before anything
starts: a clear message naming the file, line and option (or the path or
address), a non-zero exit, and no child process.  A second instance is
refused too, on the same runtime directory and on the same port, and a
missing child program is named."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile

import pmq
from pmq import check


def run_promptmqd(args, preexec=None, timeout=10, program=pmq.PROMPTMQD):
    return subprocess.run([program] + args, capture_output=True, text=True,
                          timeout=pmq.patience(timeout), preexec_fn=preexec)


def base_args(tmp, conf):
    return ["-c", conf, "--bind", "127.0.0.1:0", "--workers", "2",
            "--data-dir", os.path.join(tmp, "data"),
            "--runtime-dir", os.path.join(tmp, "run")]


def expect_refused(tmp, conf_text, *patterns, args=None, preexec=None,
                   program=pmq.PROMPTMQD):
    conf = os.path.join(tmp, "bad.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    r = run_promptmqd(args if args is not None else base_args(tmp, conf),
                      preexec=preexec, program=program)
    out = r.stdout + r.stderr
    check(r.returncode != 0, "accepted: %r\n%s" % (conf_text, out))
    for p in patterns:
        check(p in out, "message lacks %r:\n%s" % (p, out))
    check("child started" not in out, "a child was started:\n%s" % out)
    return out


def test():
    tmp = tempfile.mkdtemp(prefix="cfg.", dir="/tmp")
    os.chmod(tmp, 0o755)
    try:
        conf = os.path.join(tmp, "bad.conf")
        expect_refused(tmp, 'server: { workers = 2 }\nstorage: { wal-sync = ; };\n',
                       conf + ":2")
        expect_refused(tmp, 'storage: {\n  wal-snyc = "always";\n};\n',
                       conf + ":2", "storage.wal-snyc")
        expect_refused(tmp, 'mqtt: {\n\n  max-packet-size = "12XB";\n};\n',
                       conf + ":3", "mqtt.max-packet-size")
        expect_refused(tmp, 'storage: { wal-sync = "sometimes"; };\n',
                       conf + ":1", "storage.wal-sync")

        # -t says what it found, with the matching exit status
        good = os.path.join(tmp, "good.conf")
        shutil.copy(pmq.DEV_CONF, good)
        r = run_promptmqd(["-t", "-c", good])
        check(r.returncode == 0 and "configuration OK" in r.stdout,
              "-t on a good file: %s %s" % (r.returncode, r.stdout + r.stderr))
        r = run_promptmqd(["-t", "-c", conf])
        check(r.returncode != 0, "-t on a bad file succeeded")

        # a port someone else holds, with or without SO_REUSEPORT
        for reuseport in (False, True):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuseport:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            args = base_args(tmp, good)
            args[args.index("--bind") + 1] = "127.0.0.1:%d" % port
            out = expect_refused(tmp, "", "127.0.0.1:%d" % port, "in use",
                                 args=args)
            s.close()

        # a data directory we cannot write to (root can write anywhere: the
        # daemon runs as nobody then, from a copy nobody can reach)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            ro = os.path.join(tmp, "ro")
            os.mkdir(ro, 0o755)
            run = os.path.join(tmp, "nobody-run")
            os.mkdir(run, 0o700)
            os.chown(run, nobody.pw_uid, nobody.pw_gid)

            def as_nobody():
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
            args = ["-c", good, "--bind", "127.0.0.1:0", "--workers", "1",
                    "--data-dir", os.path.join(ro, "data"), "--runtime-dir", run]
            expect_refused(tmp, "", "storage.data-dir", os.path.join(ro, "data"),
                           "Permission denied", args=args, preexec=as_nobody,
                           program=pmq.copy_for_others(os.path.join(tmp, "bin")))
        else:
            ro = os.path.join(tmp, "ro")
            os.mkdir(ro, 0o555)
            args = base_args(tmp, good)
            args[args.index("--data-dir") + 1] = os.path.join(ro, "data")
            expect_refused(tmp, "", "storage.data-dir", "Permission denied", args=args)

        # a runtime directory too long for IPC socket paths
        args = base_args(tmp, good)
        args[args.index("--runtime-dir") + 1] = "/tmp/" + "r" * 120
        expect_refused(tmp, "", "server.runtime-dir", "too long", args=args)

        # a child's program missing: named before anything starts
        program = pmq.copy_for_others(os.path.join(tmp, "bin-partial"))
        os.unlink(os.path.join(tmp, "bin-partial", "promptmq-walsvc"))
        expect_refused(tmp, "", os.path.join(tmp, "bin-partial", "promptmq-walsvc"),
                       "No such file", args=base_args(tmp, good), program=program)

        # a second instance: same runtime directory, then same port
        b = pmq.Broker(workers=1, name="first")
        try:
            b.start()
            r = run_promptmqd(["-c", good, "--bind", "127.0.0.1:0", "--workers", "1",
                               "--data-dir", os.path.join(tmp, "d2"),
                               "--runtime-dir", b.rundir])
            check(r.returncode != 0 and "another promptmqd (pid %d)" % b.pid in r.stderr,
                  "second instance on the same runtime dir: %s" % r.stderr)
            r = run_promptmqd(["-c", good, "--bind", "127.0.0.1:%d" % b.port,
                               "--workers", "1", "--data-dir", os.path.join(tmp, "d3"),
                               "--runtime-dir", os.path.join(tmp, "r3")])
            check(r.returncode != 0 and "in use" in r.stderr,
                  "second instance on the same port: %s" % r.stderr)
            check(b.proc.poll() is None, "the first instance died")
            check(b.stop() == 0, "first instance did not stop cleanly")
        finally:
            b.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


pmq.run_test(test)
