"""The SysV init script (contrib/init.d/promptmq), run the way an
operator runs it, against a scratch configuration, pid file, runtime and
data directory on a free port, with the build tree's promptmqd:

  start, status 0, start again (no second broker);
  reload after a change: the log names the option and the CONNACK
  carries the new value;
  reload and restart with a broken configuration: refused (status 6)
  without signalling the broker, which keeps running with the old one;
  restart with a good one: a new broker;
  stop: the broker and its children gone, the pid file removed;
  status 3; status 1 with a stale pid file.

The script gets its settings from a defaults file named by
PROMPTMQ_DEFAULTS, as /etc/default/promptmq gives them in production.
It needs promptmqd -d (detach, and return once the broker is ready): a
start that does not return is reported as that.  Skipped when
start-stop-daemon is not installed."""

import os
import shutil
import signal
import subprocess
import tempfile

import pmq
from pmq import check

SCRIPT = os.path.join(pmq.SRCDIR, "contrib", "init.d", "promptmq")
STOP_TIMEOUT = 20       # the script's SIGTERM-to-SIGKILL delay
RUN_TIMEOUT = STOP_TIMEOUT + 15

CONFIG = """\
server: {{ bind = "127.0.0.1:{port}"; workers = 2;
           runtime-dir = "{base}/run"; stop-timeout = "5s"; }};
mqtt: {{ allow-anonymous = true; max-inflight = {inflight}; }};
storage: {{ data-dir = "{base}/data"; }};
log: {{ level = "info"; target = "{base}/promptmqd.log"; }};
"""


class Scratch:
    """A configuration, a defaults file and the directories they name."""

    def __init__(self):
        # short: the IPC socket paths in the runtime directory must fit
        self.base = tempfile.mkdtemp(prefix="init.", dir="/tmp")
        self.port = pmq.free_port()
        self.conf = os.path.join(self.base, "promptmq.conf")
        self.pidfile = os.path.join(self.base, "run", "promptmqd.pid")
        self.logpath = os.path.join(self.base, "promptmqd.log")
        self.defaults = os.path.join(self.base, "default")
        with open(self.defaults, "w") as f:
            f.write('DAEMON="%s"\nCONFIG="%s"\nPIDFILE="%s"\n'
                    'DAEMON_ARGS="--log-format text"\nSTOP_TIMEOUT=%d\n' %
                    (pmq.PROMPTMQD, self.conf, self.pidfile, STOP_TIMEOUT))
        self.configure(inflight=20)

    def configure(self, inflight=20):
        """inflight: mqtt.max-inflight, a number, or text for a broken file."""
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(base=self.base, port=self.port, inflight=inflight))

    def run(self, action):
        """Run the init script: (exit status, output)."""
        env = dict(os.environ, PROMPTMQ_DEFAULTS=self.defaults)
        # its own session, so that a promptmqd that never detached can
        # be killed with the script
        p = subprocess.Popen(["/bin/sh", SCRIPT, action], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env=env, text=True, start_new_session=True)
        try:
            out, _ = p.communicate(timeout=pmq.patience(RUN_TIMEOUT))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            hint = ""
            if action in ("start", "restart"):
                hint = (": promptmqd -d must return once the broker is ready "
                        "(does this promptmqd detach with -d?)")
            raise pmq.TestFailure("'%s %s' did not return within %ds%s\n"
                                  "output:\n%s\nlog:\n%s" %
                                  (SCRIPT, action, pmq.patience(RUN_TIMEOUT), hint, out, self.log()[-3000:]))
        return p.returncode, out

    def expect(self, action, status, *words):
        rc, out = self.run(action)
        check(rc == status, "'%s' exited %d, expected %d; output:\n%s\nlog:\n%s" %
              (action, rc, status, out, self.log()[-3000:]))
        for w in words:
            check(w in out, "'%s' did not say %r; output:\n%s" % (action, w, out))
        return out

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except OSError:
            return "(no log)"

    def pid(self):
        """The pid in the pid file, or None."""
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def running_broker(self, what):
        pid = self.pid()
        check(pid and pmq.pid_alive(pid), "%s: no live process in the pid file %s (%s)" %
              (what, self.pidfile, pid))
        with open("/proc/%d/comm" % pid) as f:
            comm = f.read().strip()
        check(comm == "promptmqd", "%s: pid %d from the pid file is %s" % (what, pid, comm))
        return pid

    def receive_maximum(self):
        """mqtt.max-inflight as the broker applies it: the Receive Maximum
        of an MQTT 5 CONNACK."""
        c = pmq.RawClient(self.port, version=5, name="probe")
        try:
            ack = c.connect(pmq.unique("init-probe"))
        finally:
            c.close()
        return ack.props.get("receive-maximum")

    def expect_receive_maximum(self, value, what):
        pmq.wait_for(lambda: self.receive_maximum() == value, 5,
                     "%s: CONNACK Receive Maximum %d" % (what, value))

    def cleanup(self):
        """Whatever is left: the broker of the pid file, or one started
        from this directory that never detached."""
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if self.base.encode() in cmd and b"promptmqd" in cmd:
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass
        if not os.environ.get("PMQ_KEEP"):
            shutil.rmtree(self.base, ignore_errors=True)


def test():
    ssd = shutil.which("start-stop-daemon",
                       path="/usr/sbin:/sbin:" + os.environ.get("PATH", ""))
    if ssd is None:
        print("SKIP: init_script.py: start-stop-daemon is not installed")
        return pmq.SKIP
    s = Scratch()
    try:
        # start returns once the broker is ready
        s.expect("start", 0)
        first = s.running_broker("after start")
        check("notice: ready" in s.log(), "start returned before the broker "
              "logged that it is ready; log:\n%s" % s.log()[-3000:])
        children = pmq.children_of(first)
        check(sorted(children.values()) ==
              ["promptmq-walsvc", "promptmq-worker", "promptmq-worker"],
              "children of the broker: %s" % children)
        s.expect("status", 0, "running", str(first))
        s.expect_receive_maximum(20, "after start")
        s.expect("start", 0, "already running")
        check(s.pid() == first, "a second start replaced the broker")

        # reload applies a changed option
        s.configure(inflight=30)
        mark = len(s.log())
        s.expect("reload", 0)
        pmq.wait_for(lambda: 'option changed option=mqtt.max-inflight value="30"'
                     in s.log()[mark:], 5, "the reload in the log")
        s.expect_receive_maximum(30, "after reload")

        # a broken configuration is refused before the broker hears of it
        s.configure(inflight='"many"')
        mark = len(s.log())
        s.expect("reload", 6, "not reloading", s.conf, "mqtt.max-inflight")
        s.expect("force-reload", 6, "not reloading")
        s.expect("restart", 6, "not restarting")
        # a SIGHUP sent before the script returned would be handled no
        # later than a SIGUSR1 sent now, which the supervisor logs
        os.kill(first, signal.SIGUSR1)
        pmq.wait_for(lambda: "log files reopened" in s.log()[mark:], 5,
                     "the broker to log the SIGUSR1 sent after the refusals")
        check("reloading configuration" not in s.log()[mark:],
              "the broker was signalled for a broken configuration; log:\n%s" %
              s.log()[mark:])
        check(s.running_broker("after the refused reload") == first,
              "the broker changed after a refused reload or restart")
        s.expect("status", 0)
        s.expect_receive_maximum(30, "after the refused reload")

        # restart: a new broker with the new configuration
        s.configure(inflight=40)
        s.expect("restart", 0)
        second = s.running_broker("after restart")
        check(second != first and not pmq.pid_alive(first),
              "restart left pid %d, was %d" % (second, first))
        s.expect_receive_maximum(40, "after restart")

        # stop: everything gone
        children = pmq.children_of(second)
        s.expect("stop", 0)
        check(not pmq.pid_alive(second), "the broker runs after stop")
        pmq.wait_for(lambda: not any(pmq.pid_alive(p) for p in children), 5,
                     "the children of the broker to exit")
        check(not os.path.exists(s.pidfile), "the pid file is left after stop")
        check("stopped status=0" in s.log(), "no clean stop in the log:\n%s" %
              s.log()[-2000:])
        s.expect("status", 3, "not running")
        s.expect("stop", 0)
        s.expect("reload", 7, "not running")

        # a pid file left by a broker that was killed
        dead = subprocess.Popen(["true"])
        dead.wait()
        with open(s.pidfile, "w") as f:
            f.write("%d\n" % dead.pid)
        s.expect("status", 1, "pid file")
        s.expect("start", 0)
        s.running_broker("after a start over a stale pid file")
        s.expect("stop", 0)
    finally:
        s.cleanup()


pmq.run_test(test)
