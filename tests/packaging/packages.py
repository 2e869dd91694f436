"""The packages, built and used as an operator would.

1. The .deb is built from a clean copy of the tree (dpkg-buildpackage
   -us -uc -b) and lintian finds no error and no warning in it.
2. The .rpm is built from the `make dist` tarball and the configured
   spec (rpmbuild -bb; Debian has none of the RPM build dependencies, so
   they are not checked); its file list, its scriptlets (no macro left
   unexpanded) and rpmlint, where installed, are checked, and every
   library configure needs has a BuildRequires.
3. In a network namespace of its own (port 1883 there is free, whatever
   this machine runs), the .deb is installed with dpkg: the init script
   starts the broker as the package does (this machine has no systemd
   as PID 1; the test's own policy-rc.d lets invoke-rc.d run promptmq's
   script and nothing else); the children run as the system user
   promptmq; a password file is configured and reloaded; mosquitto_pub
   and mosquitto_sub pass messages with a user and anonymous clients are
   refused.
4. Upgrade to a package of a newer version with a new IPC version: after
   dpkg --unpack, a killed worker comes back from the running broker's
   programs (the new one would not speak its IPC version) and serves;
   dpkg --configure restarts the broker on the new version.  A
   persistent QoS 1 subscriber connected throughout loses no message.
5. dpkg -r stops the broker and keeps the configuration and the data;
   dpkg -P removes both and keeps the user.

Whatever happens, the machine is left as it was: the broker is stopped,
the package purged, the policy-rc.d restored, the user deleted if the
test created it.  Skipped (77) unless run as root with the packaging
tools installed (./bootstrap test installs them), or when a promptmq
package or its directories already exist here.
"""

import fcntl
import grp
import importlib.util
import json
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SRCDIR = os.environ.get("PMQ_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))
import pmq  # noqa: E402  (the integration tests' checks, waits and /proc readers)
NAME = "packages.py"
PIDFILE = "/run/promptmqd.pid"
CONF = "/etc/promptmq/promptmq.conf"
LOG = "/var/log/promptmq/promptmq.log"
PASSWD = "/etc/promptmq/passwd"
POLICY = "/usr/sbin/policy-rc.d"
USER, PASSWORD = "pkgtest", "pkgtest-secret"
TOPIC = "pkgtest/upgrade"

# policy-rc.d for the test's run: invoke-rc.d may run promptmq's script
# (any action), nothing else (101, as the machine's own file says).
POLICY_TEXT = """#!/bin/sh
# PromptMQ's packaging test: promptmq's init script only, for its run.
for a; do
	case $a in
	-*) ;;
	promptmq) exit 0 ;;
	*) exit 101 ;;
	esac
done
exit 101
"""


def run(cmd, what, cwd=None, env=None, ok=(0,), timeout=600, log=None):
    """Run cmd (no stdin); its output, or the end of it in the failure."""
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(cmd, cwd=cwd, env=e, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=pmq.patience(timeout))
    out = r.stdout.decode(errors="replace")
    if log:
        with open(log, "w") as f:
            f.write(out)
    if r.returncode not in ok:
        raise pmq.TestFailure("%s failed (exit %d): %s\n%s" % (what, r.returncode, " ".join(cmd),
                                                        out[-4000:]))
    return out


def say(msg):
    print("packages: " + msg, flush=True)


# ---- the packages -------------------------------------------------------

def copy_tree(dest):
    """The tree's files as git knows them (tracked, and new ones not
    ignored), as they are now: no build products."""
    os.makedirs(dest)
    files = subprocess.run(["git", "-C", SRCDIR, "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], stdout=subprocess.PIPE,
                           check=True).stdout.split(b"\0")
    for f in files:
        if not f:
            continue
        src = os.path.join(SRCDIR.encode(), f)
        dst = os.path.join(dest.encode(), f)
        if not os.path.lexists(src):
            continue        # deleted in the working tree
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def edit(path, change):
    """Rewrite a file with change(text)."""
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(change(text))


def substitute(path, pattern, repl):
    """Replace pattern, which must be there once, in the file at path."""
    def change(text):
        text, n = re.subn(pattern, repl, text)
        pmq.check(n == 1, "%s: %r found %d times" % (path, pattern, n))
        return text
    edit(path, change)


def bump(tree, version):
    """Make tree a newer release: version in configure.ac (and so the
    spec and promptmqd -V), a new debian/changelog entry and a new IPC
    version, so that old and new processes cannot talk to each other."""
    substitute(os.path.join(tree, "configure.ac"), r"AC_INIT\(\[promptmq\], \[[^]]*\]",
               "AC_INIT([promptmq], [%s]" % version)
    substitute(os.path.join(tree, "common", "ipc.h"), r"#define\s+IPC_VERSION\s+(\d+)",
               lambda m: "#define IPC_VERSION %d" % (int(m.group(1)) + 1))

    def entry(old):
        sig = re.search(r"^ -- .*$", old, re.M).group(0)
        sig = re.sub(r"  .*$", "  " + time.strftime("%a, %d %b %Y %H:%M:%S +0000",
                                                    time.gmtime()), sig)
        return ("promptmq (%s-1) unstable; urgency=medium\n\n  * Upgrade test build.\n\n"
                "%s\n\n%s" % (version, sig, old))
    edit(os.path.join(tree, "debian", "changelog"), entry)


def build_deb(workdir, tree, version):
    say("building the .deb of %s" % version)
    run(["dpkg-buildpackage", "-us", "-uc", "-b", "-Pnocheck"], "dpkg-buildpackage", cwd=tree,
        env={"DEB_BUILD_OPTIONS": "nocheck parallel=2", "DEB_BUILD_PROFILES": "nocheck"},
        log=os.path.join(workdir, "dpkg-buildpackage-%s.log" % version))
    parent = os.path.dirname(tree)
    debs = [f for f in os.listdir(parent)
            if re.match(r"promptmq_%s-1_[a-z0-9]+\.deb$" % re.escape(version), f)]
    pmq.check(len(debs) == 1, "dpkg-buildpackage made %s" % os.listdir(parent))
    changes = [f for f in os.listdir(parent) if f.endswith(".changes")]
    return os.path.join(parent, debs[0]), os.path.join(parent, changes[0])


def check_deb(deb, changes):
    out = run(["lintian", "--fail-on", "error,warning", "--tag-display-limit", "0", changes],
              "lintian")
    problems = [line for line in out.splitlines() if re.match(r"[EW]: ", line)]
    pmq.check(not problems, "lintian:\n" + "\n".join(problems))
    files = run(["dpkg-deb", "-c", deb], "dpkg-deb -c")
    for want in ("./usr/sbin/promptmqd", "./usr/sbin/promptmqctl",
                 "./usr/share/man/man8/promptmqctl.8.gz",
                 "./usr/libexec/promptmq/promptmq-worker",
                 "./usr/libexec/promptmq/promptmq-walsvc", "./usr/bin/promptmq-passwd",
                 "./usr/libexec/promptmq/promptmq-metrics",
                 "./etc/promptmq/promptmq.conf", "./etc/init.d/promptmq",
                 "./etc/default/promptmq", "./etc/logrotate.d/promptmq",
                 "./lib/systemd/system/promptmq.service",
                 "./usr/share/man/man8/promptmqd.8.gz"):
        pmq.check(re.search(r" %s$" % re.escape(want), files, re.M),
              "%s is not in the .deb:\n%s" % (want, files))
    pmq.check(re.search(r"^-rw-r----- root/root .* \./etc/promptmq/promptmq\.conf$", files, re.M),
          "the configuration is not 0640 root:root in the .deb")
    pmq.check(not re.search(r" \./(var/)?run/", files), "the .deb ships files under /run")


def build_rpm(workdir, tree):
    """From the deb build's configured tree: make dist, then rpmbuild."""
    say("building the .rpm")
    build = os.path.join(tree, "debian", "build")
    run(["make", "-C", build, "dist"], "make dist", log=os.path.join(workdir, "dist.log"))
    tarballs = [f for f in os.listdir(build) if f.endswith(".tar.gz")]
    pmq.check(len(tarballs) == 1, "make dist made %s" % tarballs)
    top = os.path.join(workdir, "rpmbuild")
    spec = os.path.join(build, "rpm", "promptmq.spec")
    run(["rpmbuild", "-bb", "--nodeps", "--nocheck",
         "--define", "_topdir " + top, "--define", "_sourcedir " + build, spec],
        "rpmbuild", env={"HOME": workdir}, log=os.path.join(workdir, "rpmbuild.log"))
    rpms = []
    for d, _, fs in os.walk(os.path.join(top, "RPMS")):
        rpms += [os.path.join(d, f) for f in fs
                 if f.startswith("promptmq-") and "debug" not in f]
    pmq.check(len(rpms) == 1, "rpmbuild made %s" % rpms)
    return rpms[0], spec


def check_rpm(rpm, spec, workdir):
    files = run(["rpm", "-qlp", rpm], "rpm -qlp").split()
    for want in ("/usr/sbin/promptmqd", "/usr/sbin/promptmqctl",
                 "/usr/libexec/promptmq/promptmq-worker",
                 "/usr/libexec/promptmq/promptmq-walsvc", "/usr/bin/promptmq-passwd",
                 "/usr/libexec/promptmq/promptmq-metrics",
                 "/etc/promptmq/promptmq.conf", "/etc/logrotate.d/promptmq",
                 "/usr/lib/systemd/system/promptmq.service",
                 "/usr/lib/sysusers.d/promptmq.conf", "/var/lib/promptmq", "/var/log/promptmq"):
        pmq.check(want in files, "%s is not in the .rpm:\n%s" % (want, "\n".join(files)))
    pmq.check(not any(f.startswith(("/etc/init.d", "/etc/default", "/run", "/var/run"))
                  for f in files), "the .rpm ships a SysV script, /etc/default or /run:\n%s"
          % "\n".join(files))
    scripts = run(["rpm", "-qp", "--scripts", rpm], "rpm --scripts")
    for part in ("preinstall", "postinstall", "preuninstall", "postuninstall"):
        pmq.check(part + " scriptlet" in scripts, "no %s scriptlet:\n%s" % (part, scripts))
    pmq.check("%" not in scripts, "a macro left unexpanded in the scriptlets:\n" + scripts)
    pmq.check("useradd" in scripts and "rm -" not in scripts,
          "the scriptlets do not add the user, or delete something:\n" + scripts)
    listing = run(["rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:"
                   "%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]", rpm], "rpm --qf")
    pmq.check(re.search(r"^-rw-r----- root:root c?n?c?\S* /etc/promptmq/promptmq\.conf$",
                    listing, re.M), "the configuration is not a 0640 root noreplace "
          "config file in the .rpm:\n" + listing)
    for d in ("/var/lib/promptmq", "/var/log/promptmq"):
        pmq.check(re.search(r"^drwxr-x--- promptmq:promptmq \S* %s$" % d, listing, re.M),
              "%s is not 0750 promptmq in the .rpm:\n%s" % (d, listing))
    # every library configure looks for has a BuildRequires
    with open(os.path.join(SRCDIR, "configure.ac")) as f:
        configure = f.read()
    with open(spec) as f:
        spec_text = f.read()
    needs = set()
    for mods in re.findall(r"PKG_CHECK_MODULES\(\[\w+\], \[([^]]*)\]", configure):
        needs |= {"pkgconfig(%s)" % m for m in re.findall(r"[A-Za-z_][\w.-]*", mods)
                  if not m[0].isdigit()}
    needs |= {"libdb-devel", "nng-devel"}      # AC_CHECK_HEADER db.h, nng/nng.h
    have = set(re.findall(r"^BuildRequires:\s*(\S+)", spec_text, re.M))
    pmq.check(needs <= have, "BuildRequires missing for %s" % sorted(needs - have))
    if shutil.which("rpmlint"):
        rc = os.path.join(workdir, "rpmlintrc")
        with open(rc, "w") as f:
            for part in ("rpm/promptmq.rpmlintrc", "tests/packaging/debian-host.rpmlintrc"):
                with open(os.path.join(SRCDIR, part)) as g:
                    f.write(g.read())
        out = run(["rpmlint", "-r", rc, rpm], "rpmlint", env={"HOME": workdir}, ok=(0, 64, 66))
        problems = [line for line in out.splitlines() if re.search(r": [EW]: ", line)]
        pmq.check(not problems, "rpmlint:\n" + out)
    else:
        say("rpmlint is not installed: the .rpm was not linted")


# ---- the installed service ----------------------------------------------

def loopback_up():
    """Bring lo up in this (new) network namespace."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = fcntl.ioctl(s, 0x8913, struct.pack("16sh14x", b"lo", 0))     # SIOCGIFFLAGS
        flags = struct.unpack("16sh14x", ifr)[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sh14x", b"lo", flags | 1))    # IFF_UP
    finally:
        s.close()


def supervisor_pid():
    """The pid in the pid file when it is a running promptmqd, else None."""
    try:
        with open(PIDFILE) as f:
            pid = int(f.read().strip())
        with open("/proc/%d/comm" % pid) as f:
            return pid if f.read().strip() == "promptmqd" else None
    except (OSError, ValueError):
        return None


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return None


def log_text():
    try:
        with open(LOG, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def wait_log(pattern, start, what, seconds=30):
    rx = re.compile(pattern)
    return pmq.wait_for(lambda: rx.search(log_text(), start), seconds, what)


def check_running(version, workers):
    """The broker runs from the package: the supervisor as root, walsvc
    and the workers as promptmq, running the installed programs."""
    pid = pmq.wait_for(supervisor_pid, 30, "a promptmqd in %s" % PIDFILE)
    user = pwd.getpwnam("promptmq")
    kids = pmq.wait_for(lambda: len(pmq.children_of(pid)) == workers + 1 and pmq.children_of(pid), 30,
                    "walsvc and %d workers under promptmqd %d" % (workers, pid))
    pmq.check(uid_of(pid)[0] == 0, "promptmqd %d is not root" % pid)
    for k, comm in kids.items():
        pmq.check(comm in ("promptmq-worker", "promptmq-walsvc"), "child %d is %r" % (k, comm))
        pmq.check(uid_of(k) == [user.pw_uid] * 4, "%s %d runs as %s, not promptmq" %
              (comm, k, uid_of(k)))
        exe = os.readlink("/proc/%d/exe" % k)
        pmq.check(exe == "/usr/libexec/promptmq/" + comm, "%s %d runs %s" % (comm, k, exe))
    pmq.check(os.readlink("/proc/%d/exe" % pid) == "/usr/sbin/promptmqd",
          "promptmqd %d runs %s" % (pid, os.readlink("/proc/%d/exe" % pid)))
    pmq.check(re.search(r"notice: starting version=%s " % re.escape(version), log_text()),
          "the log does not say version %s started" % version)
    return pid, kids


def dpkg(args, what):
    return run(["dpkg", "--force-confold"] + args, what, env={"DEBIAN_FRONTEND": "noninteractive"})


def publish(payload, qos=1, retain=False, user=USER, password=PASSWORD, ok=(0,)):
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", "1883", "-V", "mqttv311", "-q", str(qos),
           "-t", TOPIC, "-m", payload]
    if user:
        cmd += ["-u", user, "-P", password]
    if retain:
        cmd.append("-r")
    return run(cmd, "mosquitto_pub " + payload, ok=ok, timeout=30)


class Subscriber:
    """A persistent-session QoS 1 subscriber (paho, 3.1.1, clean session
    off) that reconnects whenever the broker goes away."""

    def __init__(self):
        import paho.mqtt.client as mqtt
        self.got = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(client_id="pkgtest-sub", clean_session=False,
                             protocol=mqtt.MQTTv311)
        self.c.username_pw_set(USER, PASSWORD)
        self.c.reconnect_delay_set(0.2, 1)
        self.c.on_connect = lambda c, u, f, rc: rc == 0 and c.subscribe(TOPIC, 1)
        self.c.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.c.on_message = self._message
        self.c.connect("127.0.0.1", 1883, 30)
        self.c.loop_start()
        pmq.wait_for(self.subscribed.is_set, 30, "the subscriber's SUBACK")

    def _message(self, c, u, m):
        with self.lock:
            self.got.append(m.payload.decode())

    def has(self, payloads):
        with self.lock:
            return set(payloads) <= set(self.got)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def lifecycle(workdir, deb1, deb2, v1, v2):
    workers = os.cpu_count() or 1
    loopback_up()
    say("installing %s" % os.path.basename(deb1))
    dpkg(["-i", deb1], "dpkg -i")
    pid, _ = check_running(v1, workers)
    for d in ("/var/lib/promptmq", "/var/log/promptmq"):
        st = os.stat(d)
        pmq.check(pwd.getpwuid(st.st_uid).pw_name == "promptmq" and st.st_mode & 0o777 == 0o750,
              "%s is not 0750 promptmq" % d)
    # the production configuration refuses everyone until a password
    # file is configured: anonymous clients are refused now and after
    r = publish("anonymous", user=None, ok=range(0, 256))
    pmq.check("not authori" in r.lower() or "refused" in r.lower(),
          "an anonymous client was not refused: " + r)

    say("configuring a password file and reloading")
    run(["promptmq-passwd", "-c", "-b", PASSWD, USER, PASSWORD], "promptmq-passwd")
    substitute(CONF, r'password-file = "[^"]*";', 'password-file = "%s";' % PASSWD)
    start = len(log_text())
    run(["invoke-rc.d", "promptmq", "reload"], "invoke-rc.d promptmq reload")
    wait_log(r"notice: configuration reloaded", start, "the reload in the log")
    pmq.check(supervisor_pid() == pid, "the reload restarted promptmqd")
    # the operator's tool finds the installed broker by its configuration
    st = json.loads(run(["promptmqctl", "-j", "status"], "promptmqctl status"))
    pmq.check(st["broker"]["pid"] == pid and st["broker"]["workers_up"] == workers,
              "promptmqctl status: %r" % st["broker"])
    out = run(["promptmqctl", "reload"], "promptmqctl reload")
    pmq.check("configuration reloaded" in out, "promptmqctl reload: %r" % out)

    publish("retained-1", retain=True)
    out = run(["mosquitto_sub", "-h", "127.0.0.1", "-p", "1883", "-V", "mqttv5", "-u", USER,
               "-P", PASSWORD, "-t", TOPIC, "-C", "1", "-W", str(int(pmq.patience(30)))],
              "mosquitto_sub of the retained message", timeout=60)
    pmq.check(out.strip() == "retained-1", "mosquitto_sub got %r" % out)
    publish("", retain=True)            # clear it again
    r = publish("anonymous", user=None, ok=range(0, 256))
    pmq.check("not authori" in r.lower() or "refused" in r.lower(),
          "an anonymous client was not refused after the reload: " + r)

    sub = Subscriber()
    sent = []
    try:
        for i in range(5):
            sent.append("before-%d" % i)
            publish(sent[-1])
        pmq.wait_for(lambda: sub.has(sent), 30, "the messages sent before the upgrade")

        say("upgrading to %s: unpack" % v2)
        dpkg(["--unpack", deb2], "dpkg --unpack")
        pmq.check(supervisor_pid() == pid, "dpkg --unpack restarted promptmqd")
        kids = pmq.children_of(pid)
        victim = min(k for k, c in kids.items() if c == "promptmq-worker")
        start = len(log_text())
        os.kill(victim, signal.SIGKILL)
        m = wait_log(r"child started role=worker slot=\d+ pid=(\d+)", start,
                     "a new worker after the kill")
        new = int(m.group(1))
        wait_log(r"worker(?:/\d+)?\[%d\] info: worker ready" % new, start, "the new worker ready")
        pmq.check(supervisor_pid() == pid, "promptmqd stopped after a worker was killed "
              "between unpack and configure:\n" + log_text()[start:][-3000:])
        pmq.check(" cannot run" not in log_text()[start:],
              "a child could not run:\n" + log_text()[start:][-3000:])
        pmq.check(os.readlink("/proc/%d/exe" % new).endswith("(deleted)"),
              "the new worker runs %s, not the programs promptmqd started with" %
              os.readlink("/proc/%d/exe" % new))
        for i in range(10):
            sent.append("unpacked-%d" % i)
            publish(sent[-1])
        pmq.wait_for(lambda: sub.has(sent), 30, "the messages sent between unpack and configure")

        say("upgrading to %s: configure" % v2)
        start = len(log_text())
        dpkg(["--configure", "promptmq"], "dpkg --configure")
        pid2, _ = check_running(v2, workers)
        pmq.check(pid2 != pid, "dpkg --configure did not restart promptmqd")
        for i in range(5):
            sent.append("after-%d" % i)
            publish(sent[-1])
        pmq.wait_for(lambda: sub.has(sent), 30, "every message, after the upgrade")
        with sub.lock:
            lost = set(sent) - set(sub.got)
        pmq.check(not lost, "lost across the upgrade: %s" % sorted(lost))
    finally:
        sub.close()

    say("removing")
    dpkg(["-r", "promptmq"], "dpkg -r")
    pmq.wait_for(lambda: not os.path.exists("/proc/%d" % pid2), 30, "promptmqd to stop on remove")
    pmq.check(os.path.exists(CONF), "dpkg -r removed the configuration")
    pmq.check(os.path.isdir("/var/lib/promptmq") and os.listdir("/var/lib/promptmq"),
          "dpkg -r removed the data")
    pmq.check(not os.path.exists("/usr/sbin/promptmqd"), "dpkg -r left /usr/sbin/promptmqd")

    say("purging")
    dpkg(["-P", "promptmq"], "dpkg -P")
    pmq.check(not os.path.exists(CONF), "dpkg -P left the configuration")
    for d in ("/var/lib/promptmq", "/var/log/promptmq", "/run/promptmq", PIDFILE):
        pmq.check(not os.path.exists(d), "dpkg -P left %s" % d)
    # the operator's own files (promptmq-passwd wrote the password file
    # and its SCRAM verifiers) stay, as dpkg keeps what it did not install
    pmq.check(sorted(os.listdir("/etc/promptmq")) == ["passwd", "passwd.scram"],
          "/etc/promptmq after purge: %s" % os.listdir("/etc/promptmq"))
    pmq.check(pwd.getpwnam("promptmq"), "dpkg -P deleted the user")


# ---- setting up and putting back ------------------------------------------

def installed():
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "promptmq"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return r.returncode == 0 and b"not-installed" not in r.stdout


def why_skip():
    if os.geteuid() != 0:
        return "needs root to install packages"
    for tool in ("dpkg-buildpackage", "dh", "lintian", "rpmbuild", "unshare", "git",
                 "mosquitto_pub", "invoke-rc.d"):
        if not shutil.which(tool):
            return "%s is not installed (./bootstrap test installs it)" % tool
    if subprocess.run(["git", "-C", SRCDIR, "rev-parse"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        return "the source tree is not a git checkout: nothing to copy a clean tree from"
    if installed():
        return "a promptmq package is installed on this machine: not replacing it"
    for p in ("/etc/promptmq", "/var/lib/promptmq", "/var/log/promptmq", "/usr/sbin/promptmqd",
              PIDFILE):
        if os.path.lexists(p):
            return "%s exists: a broker is installed here; not touching it" % p
    if importlib.util.find_spec("paho") is None:
        return "python3-paho-mqtt is not installed"
    return None


def put_back(saved_policy, user_existed, group_existed):
    """Leave the machine as it was, whatever failed."""
    pid = supervisor_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + pmq.patience(30)
        while os.path.exists("/proc/%d" % pid) and time.monotonic() < end:
            time.sleep(0.1)
        if os.path.exists("/proc/%d" % pid):
            for k in pmq.children_of(pid):
                os.kill(k, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["dpkg", "--configure", "-a"], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if installed():
        subprocess.run(["dpkg", "-P", "promptmq"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for p in (PASSWD,):
        if os.path.exists(p):
            os.unlink(p)
    for d in ("/etc/promptmq", "/var/lib/promptmq", "/var/log/promptmq", "/run/promptmq"):
        shutil.rmtree(d, ignore_errors=True)
    if os.path.exists(PIDFILE):
        os.unlink(PIDFILE)
    if saved_policy is None:
        if os.path.exists(POLICY):
            os.unlink(POLICY)
    else:
        with open(POLICY, "wb") as f:
            f.write(saved_policy[0])
        os.chmod(POLICY, saved_policy[1])
        os.utime(POLICY, ns=saved_policy[2])
    if not user_existed:
        subprocess.run(["userdel", "promptmq"], stderr=subprocess.DEVNULL)
    if not group_existed:
        subprocess.run(["groupdel", "promptmq"], stderr=subprocess.DEVNULL)


def exists(db, name):
    try:
        db(name)
        return True
    except KeyError:
        return False


def main():
    why = why_skip()
    if why:
        print("SKIP: %s: %s" % (NAME, why))
        return pmq.SKIP
    if "--in-netns" not in sys.argv:
        # everything in a network namespace of its own: the packaged
        # configuration listens on 127.0.0.1:1883, which this machine may
        # be using
        unshare = shutil.which("unshare")
        os.execv(unshare, [unshare, "--net", sys.executable, os.path.abspath(__file__),
                           "--in-netns"])

    workdir = tempfile.mkdtemp(prefix="pmq-packages.")
    saved_policy = None
    if os.path.exists(POLICY):
        with open(POLICY, "rb") as f:
            st = os.stat(POLICY)
            saved_policy = (f.read(), st.st_mode & 0o7777, (st.st_atime_ns, st.st_mtime_ns))
    user_existed = exists(pwd.getpwnam, "promptmq")
    group_existed = exists(grp.getgrnam, "promptmq")
    t0 = time.monotonic()
    try:
        tree1 = os.path.join(workdir, "v1", "promptmq")
        copy_tree(tree1)
        with open(os.path.join(tree1, "configure.ac")) as f:
            v1 = re.search(r"AC_INIT\(\[promptmq\], \[([^]]*)\]", f.read()).group(1)
        parts = v1.split(".")
        v2 = ".".join(parts[:-1] + [str(int(parts[-1]) + 1)])
        deb1, changes1 = build_deb(workdir, tree1, v1)
        check_deb(deb1, changes1)
        rpm, spec = build_rpm(workdir, tree1)
        check_rpm(rpm, spec, workdir)
        tree2 = os.path.join(workdir, "v2", "promptmq")
        copy_tree(tree2)
        bump(tree2, v2)
        deb2, _ = build_deb(workdir, tree2, v2)

        with open(POLICY, "w") as f:
            f.write(POLICY_TEXT)
        os.chmod(POLICY, 0o755)
        lifecycle(workdir, deb1, deb2, v1, v2)
    except (pmq.TestFailure, subprocess.TimeoutExpired) as e:
        print("FAIL: %s: %s" % (NAME, e))
        tail = log_text()[-3000:]
        if tail:
            print("--- end of %s ---\n%s" % (LOG, tail))
        return 1
    finally:
        put_back(saved_policy, user_existed, group_existed)
        if os.environ.get("PMQ_KEEP"):
            print("kept " + workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("PASS: %s (%.0f s)" % (NAME, time.monotonic() - t0))
    return 0


sys.exit(main())
