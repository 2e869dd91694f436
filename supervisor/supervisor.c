/*
 * supervisor.c - promptmqd: configuration, start-up order, signals and
 * the stop sequence.
 *
 * Start-up:
 *   1) load and validate the configuration (flags > environment > file >
 *      defaults); `-t` stops here;
 *   2) prepare the runtime directory (0700), take its lock, check the
 *      data directories, open the listening sockets: every error so far
 *      is a message and exit status 1 before any child exists;
 *   3) start walsvc and wait for its READY, which carries the highest
 *      worker generation in the log, so new generations stay unique
 *      across restarts of the whole daemon;
 *   4) start the workers; when all are READY the broker is ready.
 *
 * Stop (SIGTERM, SIGINT): workers first, then walsvc, so that nothing a
 * worker still hands to the log is refused; a child that does not stop
 * within server.stop-timeout is killed.  A second signal kills at once.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "ctl.h"
#include "ipc_link.h"
#include "log.h"
#include "proc.h"
#include "supervisor.h"

extern char **environ;

#define DEFAULT_CONFIG	SYSCONFDIR "/promptmq/promptmq.conf"
/* a second stop signal sooner than this is the same request */
#define STOP_AGAIN_MS	200

static struct supervisor	 sup;

static void	supervisor_stop(struct supervisor *, int);
static void	check_stopped(struct supervisor *);

/*
 * Children are found beside promptmqd when they are there (the build
 * tree, a relocated install), else in the package's libexec directory.
 * Each program is opened once, here, and every spawn executes what was
 * opened (spawn.c): a package upgrade that renames new binaries over
 * these while the broker runs cannot give a respawned child a program
 * of another version.  The new ones run after a restart.
 */
static int
open_children(struct supervisor *s, char *err, size_t errlen)
{
	char	 self[PATH_MAX], dir[PATH_MAX], *here;
	ssize_t	 n;
	int	 i;

	snprintf(dir, sizeof(dir), "%s", PKGLIBEXECDIR);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		here = dirname(self);
		snprintf(s->exe[1].path, sizeof(s->exe[1].path),
		    "%s/promptmq-worker", here);
		if (access(s->exe[1].path, X_OK) == 0)
			snprintf(dir, sizeof(dir), "%s", here);
	}
	for (i = 0; i < 3; i++) {
		snprintf(s->exe[i].path, sizeof(s->exe[i].path), "%s/%s", dir,
		    i == 0 ? "promptmq-walsvc" : i == 1 ? "promptmq-worker" :
		    "promptmq-metrics");
		if (access(s->exe[i].path, X_OK) == -1 ||
		    (s->exe[i].fd = open(s->exe[i].path, O_PATH |
		    O_CLOEXEC)) == -1) {
			snprintf(err, errlen, "%.300s: %s", s->exe[i].path,
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/*
 * A reload is when an operator who upgraded in place may expect new
 * programs: say that the running ones stay until a restart.
 */
static void
check_children_replaced(struct supervisor *s)
{
	struct stat	 st;
	int		 i;

	for (i = 0; i < 3; i++)
		if (fstat(s->exe[i].fd, &st) == 0 && st.st_nlink == 0)
			log_warnx("program replaced on disk; children keep "
			    "running the one promptmqd started with: restart "
			    "promptmqd to run the new one", "program=%s",
			    s->exe[i].path);
}

/*
 * Every connection is a descriptor: raise the soft limit as far as the
 * hard one allows towards mqtt.max-connections (plus room for the
 * listeners, IPC and log files), and say so when the limit will stop
 * the broker before mqtt.max-connections does.  Children inherit it.
 */
static void
raise_nofile(const struct config *cfg)
{
	struct rlimit	 rl;
	rlim_t		 want;

	want = (rlim_t)config_num(cfg, OPT_mqtt_max_connections) + 256;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ?
		    want : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("cannot raise the file descriptor limit", "");
	}
	if (rl.rlim_cur < want)
		log_warnx("the file descriptor limit is below "
		    "mqtt.max-connections; connections will be refused before "
		    "that", "limit=%llu max_connections=%lld",
		    (unsigned long long)rl.rlim_cur, (long long)config_num(cfg,
		    OPT_mqtt_max_connections));
}

static void
print_messages(const struct config_messages *msgs)
{
	size_t	 i;

	for (i = 0; i < msgs->nwarnings; i++)
		fprintf(stderr, "promptmqd: warning: %s\n", msgs->warnings[i]);
	for (i = 0; i < msgs->nerrors; i++)
		fprintf(stderr, "promptmqd: %s\n", msgs->errors[i]);
}

static void
start_workers(struct supervisor *s)
{
	int	 i;

	for (i = 0; i < s->nworkers; i++)
		if (s->workers[i].state == CHILD_DOWN &&
		    spawn_child(&s->workers[i]) == -1)
			spawn_schedule(&s->workers[i], 1000);
}

void
supervisor_child_ready(struct child *c, const struct ipc_record *rec)
{
	struct supervisor	*s = c->sup;
	uint64_t		 maxgen;
	int			 i;

	if (c->state != CHILD_STARTING)
		return;
	c->state = CHILD_READY;
	c->served = 1;
	stats_children(s);
	if (c->role == IPC_ROLE_METRICS) {
		log_info("metrics endpoint ready", "gen=%llu",
		    (unsigned long long)c->gen);
		return;
	}
	if (c->role == IPC_ROLE_WALSVC) {
		if (rec->len != 8) {
			log_warnx("bad READY from walsvc", "len=%u", rec->len);
			return;
		}
		maxgen = buf_load_u64(rec->body);
		if (maxgen >= s->next_gen)
			s->next_gen = maxgen + 1;
		log_info("walsvc ready", "gen=%llu next_gen=%llu",
		    (unsigned long long)c->gen,
		    (unsigned long long)s->next_gen);
		if (!s->stopping) {
			start_workers(s);
			stats_start_child(s);
		}
		return;
	}
	log_debug("worker ready", "slot=%u gen=%llu", c->slot,
	    (unsigned long long)c->gen);
	place_update(s, 0);
	for (i = 0; i < s->nworkers; i++)
		if (s->workers[i].state != CHILD_READY)
			return;
	if (!s->ready_logged) {
		s->ready_logged = 1;
		log_notice("ready", "workers=%d pid=%ld", s->nworkers,
		    (long)getpid());
		daemon_ready();
	}
}

/*
 * A connection left in a throttled slot's queue goes to a running
 * worker, round robin; with none running it is closed.
 */
static void
adopt_elsewhere(int fd, uint8_t kind, void *arg)
{
	static int		 next;
	struct supervisor	*s = arg;
	int			 i, w;

	for (i = 0; i < s->nworkers; i++) {
		w = (next + i) % s->nworkers;
		if (s->workers[w].state == CHILD_READY) {
			next = w + 1;
			ctl_send(s->workers[w].ctl, IPC_CTL_ADOPT, 0, &kind, 1,
			    fd);
			break;
		}
	}
	close(fd);	/* ctl_send passed a duplicate */
}

void
supervisor_child_exited(struct child *c, int status)
{
	struct supervisor	*s = c->sup;
	const struct config	*cfg = &s->cfg;
	int64_t			 uptime, base, max;
	int			 stop_status, k;

	spawn_broadcast_peers(s);
	stats_children(s);
	stats_child_gone(c);
	admin_child_gone(c);
	/* no connection waits for a worker that is restarting */
	if (c->role == IPC_ROLE_WORKER)
		place_update(s, 0);
	if (s->stopping) {
		check_stopped(s);
		return;
	}
	/* promptmq-metrics stopped by a reload to take a new socket, or
	 * no longer wanted */
	if (c->role == IPC_ROLE_METRICS && (s->metrics_restart ||
	    s->metrics_listen.n == 0)) {
		s->metrics_restart = 0;
		stats_start_child(s);
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == PMQ_EXIT_NORESPAWN) {
		log_error("child cannot run (configuration, storage or binaries);"
		    " stopping promptmqd", "role=%s slot=%u why=\"%s\"",
		    ipc_role_name(c->role), c->slot, c->last_error);
		stop_status = PMQ_EXIT_NORESPAWN;
		if (c->last_error[0])
			snprintf(s->fail_reason, sizeof(s->fail_reason),
			    "%s could not start: %s", ipc_role_name(c->role),
			    c->last_error);
		else
			snprintf(s->fail_reason, sizeof(s->fail_reason), "%s "
			    "could not start (configuration, storage or "
			    "binaries); see the log", ipc_role_name(c->role));
		supervisor_stop(s, stop_status);
		return;
	}

	/*
	 * Restart with a delay that doubles while the child keeps dying
	 * young and starts over once it ran for respawn-stable.  walsvc is
	 * restarted at once the first time: workers wait for it.  A worker
	 * slot that keeps dying before it serves is throttled instead of
	 * respawned in a loop (Postfix's master does the same).
	 */
	uptime = clock_mono_ms() - c->started_ms;
	base = config_num(cfg, OPT_server_respawn_delay);
	max = config_num(cfg, OPT_server_respawn_delay_max);
	c->deaths++;
	if (!c->served || uptime < config_num(cfg, OPT_server_respawn_stable))
		c->quick_deaths++;
	else {
		c->quick_deaths = 0;
		c->delay_ms = 0;
	}
	if (c->delay_ms == 0)
		c->delay_ms = c->role == IPC_ROLE_WALSVC && c->deaths == 1 ? 0 :
		    base;
	else
		c->delay_ms = c->delay_ms * 2 > max ? max : c->delay_ms * 2;
	if (c->role == IPC_ROLE_WORKER &&
	    c->quick_deaths >= (uint32_t)config_num(cfg,
	    OPT_server_throttle_after)) {
		c->quick_deaths = 0;
		c->throttled = 1;
		c->delay_ms = base;
		/* the kernel then gives this slot's connections to the others */
		for (k = 0; k < IPC_LISTEN_KINDS; k++)
			listen_close_slot(&s->listeners[k], c->slot,
			    adopt_elsewhere, s);
		place_update(s, 1);
		log_warnx("worker slot throttled", "slot=%u seconds=%lld "
		    "reason=\"died %lld times in a row before serving\"",
		    c->slot, (long long)config_num(cfg,
		    OPT_server_throttle_time) / 1000, (long long)config_num(cfg,
		    OPT_server_throttle_after));
		spawn_schedule(c, config_num(cfg, OPT_server_throttle_time));
		stats_restarted(s, c, status);
		return;
	}
	stats_restarted(s, c, status);
	log_info("child restart scheduled", "role=%s slot=%u delay_ms=%lld",
	    ipc_role_name(c->role), c->slot, (long long)c->delay_ms);
	spawn_schedule(c, c->delay_ms);
}

static void
kill_all(struct supervisor *s, int workers_only)
{
	int	 i;

	for (i = 0; i < s->nworkers; i++)
		if (spawn_alive(&s->workers[i]))
			kill(s->workers[i].pid, SIGKILL);
	if (spawn_alive(&s->metrics))
		kill(s->metrics.pid, SIGKILL);
	if (!workers_only && spawn_alive(&s->walsvc))
		kill(s->walsvc.pid, SIGKILL);
}

static void
stop_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct supervisor	*s = arg;
	int			 i, workers = 0;

	for (i = 0; i < s->nworkers; i++)
		workers += spawn_alive(&s->workers[i]);
	workers += spawn_alive(&s->metrics);
	log_warnx("children did not stop in time; killing them",
	    "workers=%d walsvc=%d", workers, spawn_alive(&s->walsvc));
	kill_all(s, workers > 0);
}

static void
arm_stop_timer(struct supervisor *s)
{
	struct timeval	 tv;
	int64_t		 ms = config_num(&s->cfg, OPT_server_stop_timeout);

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(s->stop_timer, &tv);
}

/* Workers first; walsvc when no worker is left; exit when all are gone. */
static void
check_stopped(struct supervisor *s)
{
	int	 i, k;

	for (i = 0; i < s->nworkers; i++)
		if (spawn_alive(&s->workers[i]))
			return;
	if (spawn_alive(&s->metrics))
		return;
	if (spawn_alive(&s->walsvc)) {
		if (s->walsvc.state != CHILD_STOPPING) {
			s->walsvc.state = CHILD_STOPPING;
			ctl_send(s->walsvc.ctl, IPC_CTL_STOP, 0, NULL, 0, -1);
			arm_stop_timer(s);
		}
		return;
	}
	for (k = 0; k < IPC_LISTEN_KINDS; k++)
		listen_close(&s->listeners[k]);
	listen_close(&s->metrics_listen);
	if (!s->ready_logged)
		daemon_failed(s->fail_reason[0] ? s->fail_reason :
		    "stopped before it was ready; see the log");
	daemon_pidfile_remove();
	admin_close(s);
	log_notice("stopped", "status=%d", s->exit_status);
	exit(s->exit_status);
}

static void
supervisor_stop(struct supervisor *s, int status)
{
	int	 i;

	if (s->stopping)
		return;
	s->stopping = 1;
	s->exit_status = status;
	daemon_notify("STOPPING=1");
	evtimer_del(s->walsvc.respawn_ev);
	evtimer_del(s->metrics.respawn_ev);
	if (spawn_alive(&s->metrics)) {
		s->metrics.state = CHILD_STOPPING;
		ctl_send(s->metrics.ctl, IPC_CTL_STOP, 0, NULL, 0, -1);
	}
	for (i = 0; i < s->nworkers; i++) {
		evtimer_del(s->workers[i].respawn_ev);
		if (spawn_alive(&s->workers[i])) {
			s->workers[i].state = CHILD_STOPPING;
			ctl_send(s->workers[i].ctl, IPC_CTL_STOP, 0, NULL, 0, -1);
		}
	}
	arm_stop_timer(s);
	check_stopped(s);
}

/* Hand a listener opened on reload to every running worker. */
static void
send_listener(struct supervisor *s, uint8_t kind, const struct listener *l)
{
	uint8_t	 body[1 + sizeof(l->name)];
	size_t	 len = strlen(l->name);
	int	 w;

	body[0] = kind;
	memcpy(body + 1, l->name, len);
	for (w = 0; w < s->nworkers; w++)
		if (spawn_alive(&s->workers[w]) && l->fds[w] != -1)
			ctl_send(s->workers[w].ctl, IPC_CTL_LISTEN_ADD, 0,
			    body, 1 + len, l->fds[w]);
}

/* The listener kind an option's addresses open, or -1. */
static int
bind_kind(enum option_id id)
{
	return id == OPT_server_bind ? IPC_LISTEN_MQTT : id == OPT_tls_bind ?
	    IPC_LISTEN_TLS : id == OPT_websocket_bind ? IPC_LISTEN_WS : -1;
}

/*
 * server.bind, tls.bind or websocket.bind changed: open what is new (all of it or
 * nothing) and close what is gone, in the supervisor and in every
 * worker.  Clients already connected through a removed address stay
 * connected.
 */
static int
reload_bind(struct supervisor *s, uint8_t kind, const char *binds)
{
	struct listen_set	*set = &s->listeners[kind];
	char			 removed[LISTEN_MAX][80], err[512];
	int			 nremoved, i, w;

	if (listen_update(set, binds, removed, &nremoved, err,
	    sizeof(err)) == -1) {
		log_error("reload: bind addresses not changed", "error=\"%s\"",
		    err);
		return -1;
	}
	for (i = 0; i < set->n; i++)
		if (set->l[i].fresh)
			send_listener(s, kind, &set->l[i]);
	for (i = 0; i < nremoved; i++)
		for (w = 0; w < s->nworkers; w++)
			if (spawn_alive(&s->workers[w]))
				ctl_send(s->workers[w].ctl,
				    IPC_CTL_LISTEN_REMOVE, 0, removed[i],
				    strlen(removed[i]), -1);
	return 0;
}

static void
apply_logging(struct supervisor *s)
{
	char	 err[256];

	if (config_apply_logging(&s->cfg, err, sizeof(err)) == -1)
		log_error("logging not changed", "error=\"%s\"", err);
	if (s->privs.drop)
		log_chown(s->privs.uid, s->privs.gid);
}

/*
 * SIGHUP and promptmqctl reload: build the new configuration completely
 * first; on any error keep the running one.  Options that can change
 * live go to every child; the others are named as needing a restart.
 * -1 when rejected; `msg` says what happened, for promptmqctl.
 */
int
supervisor_reload(struct supervisor *s, char *msg, size_t msglen)
{
	struct config		 next;
	struct config_messages	 msgs;
	enum option_id		 changed[OPT__COUNT], live[OPT__COUNT];
	size_t			 n, nlive = 0, nrestart = 0, i;
	char			 name[128], err[256];
	int			 c, k, metrics_kept, rv = -1;

	daemon_notify("RELOADING=1");
	log_notice("reloading configuration", "file=%s",
	    s->cfg.file ? s->cfg.file : "(none)");
	memset(&msgs, 0, sizeof(msgs));
	/* relative paths keep meaning what they meant at start-up */
	if (config_defaults(&next) == -1 ||
	    config_set_base_dir(&next, s->cfg.base_dir) == -1 ||
	    config_load(&next, s->argc, s->argv, environ, DEFAULT_CONFIG,
	    &msgs) == -1) {
		for (i = 0; i < msgs.nerrors; i++)
			log_error("reload rejected; the running configuration "
			    "stays", "error=\"%s\"", msgs.errors[i]);
		snprintf(msg, msglen, "reload rejected; the running "
		    "configuration stays: %s", msgs.nerrors ? msgs.errors[0] :
		    "cannot read the configuration");
		goto done;
	}
	for (i = 0; i < msgs.nwarnings; i++)
		log_warnx("configuration warning", "warning=\"%s\"",
		    msgs.warnings[i]);
	n = config_diff(&s->cfg, &next, changed, OPT__COUNT);
	metrics_kept = stats_reload(s, &next) == -1;
	for (i = 0; i < n; i++) {
		config_name(changed[i], name, sizeof(name));
		if (metrics_kept && (changed[i] == OPT_metrics_enabled ||
		    changed[i] == OPT_metrics_bind))
			continue;
		if (option_table[changed[i]].reload != OPTION_RELOAD) {
			log_warnx("option changed but needs a restart; not "
			    "applied", "option=%s running=\"%s\" file=\"%s\"",
			    name, config_text(&s->cfg, changed[i]),
			    config_text(&next, changed[i]));
			nrestart++;
			continue;
		}
		if ((k = bind_kind(changed[i])) != -1 && reload_bind(s, k,
		    config_text(&next, changed[i])) == -1)
			continue;
		if (config_set(&s->cfg, changed[i], config_text(&next,
		    changed[i]), next.v[changed[i]].origin, err,
		    sizeof(err)) == -1) {
			log_error("reload: option not applied", "option=%s "
			    "error=\"%s\"", name, err);
			continue;
		}
		log_info("option changed", "option=%s value=\"%s\"", name,
		    config_text(&s->cfg, changed[i]));
		live[nlive++] = changed[i];
	}
	apply_logging(s);
	auth_reload(s);
	check_children_replaced(s);
	place_update(s, 1);	/* server.pack-connections, addresses */
	if (nlive) {
		if (spawn_alive(&s->walsvc))
			spawn_send_config(&s->walsvc, IPC_CTL_RELOAD, &s->cfg,
			    live, nlive);
		for (c = 0; c < s->nworkers; c++)
			if (spawn_alive(&s->workers[c]))
				spawn_send_config(&s->workers[c],
				    IPC_CTL_RELOAD, &s->cfg, live, nlive);
	}
	if (spawn_alive(&s->metrics) && s->metrics.state != CHILD_STOPPING &&
	    nlive)
		spawn_send_config(&s->metrics, IPC_CTL_RELOAD, &s->cfg, live,
		    nlive);
	stats_start_child(s);
	stats_reloaded(s, 1);
	log_notice("configuration reloaded", "changed=%zu applied=%zu", n,
	    nlive);
	snprintf(msg, msglen, "configuration reloaded: %zu option%s changed, "
	    "%zu applied%s", n, n == 1 ? "" : "s", nlive, nrestart ?
	    "; some need a restart (see the broker's log)" : "");
	rv = 0;
	goto out;
done:
	stats_reloaded(s, 0);
out:
	config_messages_free(&msgs);
	config_free(&next);
	daemon_notify("READY=1");
	return rv;
}

/*
 * promptmqctl log-level: every process logs at `level` until the next
 * reload, which takes the file's level again (it differs from this one,
 * so the reload sends it).
 */
int
supervisor_log_level(struct supervisor *s, const char *level, char *err,
    size_t errlen)
{
	enum option_id	 id = OPT_log_level;
	int		 c;

	if (config_set(&s->cfg, id, level, ORIGIN_SUPERVISOR, err, errlen) ==
	    -1)
		return -1;
	apply_logging(s);
	log_notice("log level changed by an operator", "level=%s",
	    config_text(&s->cfg, id));
	if (spawn_alive(&s->walsvc))
		spawn_send_config(&s->walsvc, IPC_CTL_RELOAD, &s->cfg, &id, 1);
	for (c = 0; c < s->nworkers; c++)
		if (spawn_alive(&s->workers[c]))
			spawn_send_config(&s->workers[c], IPC_CTL_RELOAD,
			    &s->cfg, &id, 1);
	if (spawn_alive(&s->metrics) && s->metrics.state != CHILD_STOPPING)
		spawn_send_config(&s->metrics, IPC_CTL_RELOAD, &s->cfg, &id, 1);
	return 0;
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct supervisor	*s = arg;
	char			 msg[512];
	int			 i;

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		/*
		 * One request often arrives twice at once: sent to the
		 * process and to its group (timeout(1), some service
		 * managers).  Only a second request some time later means
		 * "stop now".
		 */
		if (s->stopping && clock_mono_ms() - s->stop_requested <
		    STOP_AGAIN_MS) {
			log_debug("stop signal repeated; already stopping",
			    "signal=%d", (int)sig);
			break;
		}
		if (s->stopping) {
			log_warnx("second stop signal: killing children now",
			    "signal=%d", (int)sig);
			kill_all(s, 0);
			exit(s->exit_status ? s->exit_status : 1);
		}
		log_notice("stop requested", "signal=%s",
		    sig == SIGTERM ? "TERM" : "INT");
		s->stop_requested = clock_mono_ms();
		supervisor_stop(s, 0);
		break;
	case SIGHUP:
		if (!s->stopping)
			supervisor_reload(s, msg, sizeof(msg));
		break;
	case SIGUSR1:
		/* reopened (created) as root and handed over before the
		 * children, who may no longer create files there, reopen */
		log_reopen();
		if (s->privs.drop)
			log_chown(s->privs.uid, s->privs.gid);
		/* the first line in the new files: rotation can be checked */
		log_info("log files reopened", "");
		if (spawn_alive(&s->walsvc))
			ctl_send(s->walsvc.ctl, IPC_CTL_REOPEN_LOGS, 0, NULL, 0,
			    -1);
		if (spawn_alive(&s->metrics))
			ctl_send(s->metrics.ctl, IPC_CTL_REOPEN_LOGS, 0, NULL,
			    0, -1);
		for (i = 0; i < s->nworkers; i++)
			if (spawn_alive(&s->workers[i]))
				ctl_send(s->workers[i].ctl, IPC_CTL_REOPEN_LOGS,
				    0, NULL, 0, -1);
		break;
	case SIGCHLD:
		spawn_reap(s);
		break;
	}
}

int
main(int argc, char *argv[])
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1,
				    SIGCHLD };
	struct config_messages	 msgs;
	struct event		*ev;
	char			 err[512], defpid[PATH_MAX], ipc_dir[PATH_MAX];
	const char		*pidfile;
	long			 ncpu;
	int			 daemonize;
	size_t			 i;
	int			 w;

	log_init("supervisor", -1);
	signal(SIGPIPE, SIG_IGN);

	/* 1) configuration */
	memset(&msgs, 0, sizeof(msgs));
	sup.argc = argc;
	sup.argv = argv;
	if (config_defaults(&sup.cfg) == -1)
		fatalx("out of memory", "");
	if (config_load(&sup.cfg, argc, argv, environ, DEFAULT_CONFIG,
	    &msgs) == -1) {
		print_messages(&msgs);
		if (sup.cfg.check_only)
			fprintf(stderr, "promptmqd: configuration has errors\n");
		return 1;
	}
	if (sup.cfg.show_help) {
		config_usage(stdout, "promptmqd");
		return 0;
	}
	if (sup.cfg.show_version) {
		printf("promptmqd %s (IPC version %d)\n", PACKAGE_VERSION,
		    IPC_VERSION);
		return 0;
	}
	print_messages(&msgs);
	config_messages_free(&msgs);
	if (!config_num(&sup.cfg, OPT_mqtt_allow_anonymous) &&
	    *config_str(&sup.cfg, OPT_auth_password_file) == '\0' &&
	    *config_str(&sup.cfg, OPT_auth_jwt_key_file) == '\0' &&
	    !((*config_str(&sup.cfg, OPT_tls_bind) != '\0' ||
	    (*config_str(&sup.cfg, OPT_websocket_bind) != '\0' &&
	    config_num(&sup.cfg, OPT_websocket_tls))) &&
	    config_num(&sup.cfg, OPT_tls_use_identity_as_username)))
		log_warnx("mqtt.allow-anonymous is off and neither "
		    "auth.password-file nor auth.jwt-key-file is set: every "
		    "client will be refused", "");
	if (sup.cfg.check_only) {
		if (auth_load(&sup, &sup.cfg, err, sizeof(err)) == -1) {
			fprintf(stderr, "promptmqd: %s\n", err);
			fprintf(stderr, "promptmqd: configuration has errors\n");
			return 1;
		}
		if (privs_resolve(&sup.cfg, &sup.privs, err, sizeof(err)) == -1) {
			fprintf(stderr, "promptmqd: %s\n", err);
			fprintf(stderr, "promptmqd: configuration has errors\n");
			return 1;
		}
		printf("configuration OK\n");
		return 0;
	}
	if (logdir_prepare(config_text(&sup.cfg, OPT_log_target), err,
	    sizeof(err)) == -1 ||
	    config_apply_logging(&sup.cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "promptmqd: log: %s\n", err);
		return 1;
	}

	/*
	 * 2) everything that can fail for reasons the operator can fix:
	 * the user, the directories, the lock, the listeners, the pid file.
	 * In the foreground still, so the message reaches the terminal.
	 */
	sup.nworkers = (int)config_num(&sup.cfg, OPT_server_workers);
	if (sup.nworkers == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		sup.nworkers = ncpu > 0 ? (int)ncpu : 1;
	}
	raise_nofile(&sup.cfg);
	daemonize = config_num(&sup.cfg, OPT_server_daemon) != 0;
	pidfile = config_str(&sup.cfg, OPT_server_pidfile);
	if (*pidfile == '\0' && daemonize) {
		snprintf(defpid, sizeof(defpid), "%s/promptmqd.pid",
		    config_str(&sup.cfg, OPT_server_runtime_dir));
		pidfile = defpid;
	}
	if (open_children(&sup, err, sizeof(err)) == -1 ||
	    privs_resolve(&sup.cfg, &sup.privs, err, sizeof(err)) == -1 ||
	    auth_load(&sup, &sup.cfg, err, sizeof(err)) == -1 ||
	    auth_failtab_open(&sup, err, sizeof(err)) == -1 ||
	    stats_open(&sup, err, sizeof(err)) == -1 ||
	    rundir_prepare(config_str(&sup.cfg, OPT_server_runtime_dir),
	    sup.nworkers, &sup.privs, ipc_dir, sizeof(ipc_dir), err,
	    sizeof(err)) == -1 ||
	    (sup.lock_fd = rundir_lock(config_str(&sup.cfg,
	    OPT_server_runtime_dir), err, sizeof(err))) == -1 ||
	    admin_open(&sup, err, sizeof(err)) == -1 ||
	    datadir_prepare(config_str(&sup.cfg, OPT_storage_data_dir),
	    config_str(&sup.cfg, OPT_storage_wal_dir), err, sizeof(err)) == -1 ||
	    privs_hand_over(&sup.privs, "server.runtime-dir", ipc_dir, err,
	    sizeof(err)) == -1 ||
	    privs_hand_over(&sup.privs, "storage.data-dir", config_str(&sup.cfg,
	    OPT_storage_data_dir), err, sizeof(err)) == -1 ||
	    privs_hand_over(&sup.privs, "storage.wal-dir", config_str(&sup.cfg,
	    OPT_storage_wal_dir), err, sizeof(err)) == -1 ||
	    (*pidfile && daemon_pidfile_lock(pidfile, err, sizeof(err)) == -1) ||
	    listen_open(&sup.listeners[IPC_LISTEN_MQTT], IPC_LISTEN_MQTT,
	    "server.bind", config_str(&sup.cfg, OPT_server_bind), sup.nworkers,
	    err, sizeof(err)) == -1 ||
	    listen_open(&sup.listeners[IPC_LISTEN_TLS], IPC_LISTEN_TLS,
	    "tls.bind", config_str(&sup.cfg, OPT_tls_bind), sup.nworkers, err,
	    sizeof(err)) == -1 ||
	    listen_open(&sup.listeners[IPC_LISTEN_WS], IPC_LISTEN_WS,
	    "websocket.bind", config_str(&sup.cfg, OPT_websocket_bind),
	    sup.nworkers, err, sizeof(err)) == -1) {
		log_error("cannot start", "error=\"%s\"", err);
		daemon_pidfile_remove();
		return 1;
	}
	if (sup.privs.drop) {
		/* the lock stays root's; the children never touch it */
		fchown(sup.lock_fd, 0, 0);
		log_chown(sup.privs.uid, sup.privs.gid);
	}
	if (daemonize) {
		if (strstr(config_text(&sup.cfg, OPT_log_target), "stderr") &&
		    strchr(config_text(&sup.cfg, OPT_log_target), '/') == NULL &&
		    strstr(config_text(&sup.cfg, OPT_log_target), "syslog") ==
		    NULL)
			fprintf(stderr, "promptmqd: warning: log.target is "
			    "stderr, which a daemon does not have: its log "
			    "is lost; set log.target to a file or syslog\n");
		daemon_detach();
		/* the lock file names the daemon, not its parent */
		lockfile_write_pid(sup.lock_fd);
	}
	if (daemon_pidfile_write(err, sizeof(err)) == -1) {
		log_error("cannot start", "error=\"%s\"", err);
		daemon_failed(err);
		return 1;
	}

	/* 3) event loop, signals, children: walsvc first */
	if ((sup.base = evloop_new()) == NULL)
		fatalx("cannot create event base", "");
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		ev = evsignal_new(sup.base, sigs[i], signal_cb, &sup);
		if (ev == NULL || event_priority_set(ev, EVLOOP_PRIO_CONTROL) ==
		    -1 || event_add(ev, NULL) == -1)
			fatalx("cannot watch signals", "");
	}
	sup.stop_timer = evtimer_new(sup.base, stop_timeout_cb, &sup);
	admin_start(&sup);
	if ((sup.workers = calloc((size_t)sup.nworkers,
	    sizeof(*sup.workers))) == NULL)
		fatal("child table", "");
	spawn_init(&sup, &sup.walsvc, IPC_ROLE_WALSVC, 0);
	spawn_init(&sup, &sup.metrics, IPC_ROLE_METRICS, 0);
	stats_watch(&sup);
	place_start(&sup);
	for (w = 0; w < sup.nworkers; w++)
		spawn_init(&sup, &sup.workers[w], IPC_ROLE_WORKER, (uint16_t)w);
	/*
	 * Generations must not repeat across restarts of the daemon either
	 * (they name incarnations in every batch, and worker generations
	 * key the log's idempotency): start from the clock, 2^20 spawns a
	 * second of uptime apart, and above whatever walsvc finds in the
	 * log (READY).
	 */
	sup.next_gen = (uint64_t)time(NULL) << 20;
	log_notice("starting", "version=%s workers=%d pid=%ld",
	    PACKAGE_VERSION, sup.nworkers, (long)getpid());
	if (spawn_child(&sup.walsvc) == -1)
		fatalx("cannot start walsvc", "");

	event_base_dispatch(sup.base);
	fatalx("exited event loop", "");
}
