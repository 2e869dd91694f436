/*
 * spawn.c - starting, watching and restarting the children.
 *
 * Children are fork+exec'd, never only forked: between fork and exec the
 * child makes async-signal-safe calls only (fcntl, dup2, sigprocmask,
 * execve), because the supervisor's libraries may hold locks in other
 * threads at the moment of the fork.  Everything exec needs (argv, the
 * descriptor list) is prepared before fork.
 *
 * Each incarnation gets a new generation number.  Messages from or for
 * an earlier incarnation carry the old number and are recognised and
 * dropped by everyone, and the log's idempotency keys stay unique.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "ctl.h"
#include "ipc_link.h"
#include "log.h"
#include "proc.h"
#include "supervisor.h"

extern char **environ;

static void dispatch_child(struct ctl_channel *, int, struct ipc_batch *, int,
    void *);

static void
respawn_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child	*c = arg;
	char		 err[256];
	int		 k;

	if (c->sup->stopping || c->state != CHILD_WAITING)
		return;
	if (c->throttled) {
		for (k = 0; k < IPC_LISTEN_KINDS; k++)
			if (listen_reopen_slot(&c->sup->listeners[k], c->slot,
			    err, sizeof(err)) == -1)
				break;
		if (k < IPC_LISTEN_KINDS) {
			log_error("cannot reopen a throttled worker slot; "
			    "trying again later", "slot=%u error=\"%s\"",
			    c->slot, err);
			spawn_schedule(c, config_num(&c->sup->cfg,
			    OPT_server_throttle_time));
			return;
		}
		c->throttled = 0;
		log_notice("worker slot reopened", "slot=%u", c->slot);
		place_update(c->sup, 1);	/* its sockets joined at the end */
	}
	if (spawn_child(c) == -1)
		spawn_schedule(c, c->delay_ms ? c->delay_ms : 1000);
}

void
spawn_init(struct supervisor *sup, struct child *c, uint8_t role, uint16_t slot)
{
	memset(c, 0, sizeof(*c));
	c->sup = sup;
	c->role = role;
	c->slot = slot;
	c->pid = -1;
	c->respawn_ev = evtimer_new(sup->base, respawn_cb, c);
	if (c->respawn_ev == NULL)
		fatalx("cannot create respawn timer", "");
}

int
spawn_alive(const struct child *c)
{
	return c->pid > 0;
}

void
spawn_schedule(struct child *c, int64_t delay_ms)
{
	struct timeval	 tv;

	c->state = CHILD_WAITING;
	tv.tv_sec = delay_ms / 1000;
	tv.tv_usec = (delay_ms % 1000) * 1000;
	evtimer_add(c->respawn_ev, &tv);
}

/* Send options as (name\0text\0)* pairs: all of them, or those listed. */
void
spawn_send_config(struct child *c, uint16_t type, const struct config *cfg,
    const enum option_id *ids, size_t nids)
{
	struct buf	 b = BUF_INITIALIZER;
	char		 name[128];
	size_t		 i, n = ids ? nids : OPT__COUNT;
	enum option_id	 id;

	for (i = 0; i < n; i++) {
		id = ids ? ids[i] : (enum option_id)i;
		config_name(id, name, sizeof(name));
		buf_add(&b, name, strlen(name) + 1);
		buf_add(&b, config_text(cfg, id), strlen(config_text(cfg, id)) + 1);
	}
	if (buf_failed(&b) || ctl_send(c->ctl, type, 0, b.data, b.len, -1) == -1)
		log_warn("cannot send configuration", "role=%s slot=%u",
		    ipc_role_name(c->role), c->slot);
	buf_free(&b);
}

/*
 * The peers table: every child slot with its current generation and
 * whether it runs.  Sent to every child whenever it changes; workers use
 * it to find each other and walsvc, walsvc to refuse stale generations.
 */
void
spawn_broadcast_peers(struct supervisor *sup)
{
	struct buf	 b = BUF_INITIALIZER;
	struct child	*c;
	int		 i;

	for (i = -1; i < sup->nworkers; i++) {
		c = i < 0 ? &sup->walsvc : &sup->workers[i];
		buf_add_u8(&b, c->role);
		buf_add_u8(&b, spawn_alive(c) ? 1 : 0);
		buf_add_u16(&b, c->slot);
		buf_add_u64(&b, c->gen);
	}
	for (i = -1; i < sup->nworkers; i++) {
		c = i < 0 ? &sup->walsvc : &sup->workers[i];
		if (c->ctl && c->state != CHILD_STOPPING)
			ctl_send(c->ctl, IPC_CTL_PEERS, 0, b.data, b.len, -1);
	}
	buf_free(&b);
}

int
spawn_child(struct child *c)
{
	struct supervisor	*sup = c->sup;
	struct ipc_identity	 self = { IPC_ROLE_SUPERVISOR, 0, 0 };
	const struct child_exe	*exe;
	char			 slot[16], gen[32], nl[16];
	char			 execfail[PATH_MAX + 64];
	char			*argv[10], kinds[PROC_MAX_LISTEN + 1];
	int			 sv[2], fds[PROC_MAX_LISTEN], nfds = 0, i, k, n;
	int			 xfd;
	int			 high[PROC_MAX_LISTEN + 1];
	uint8_t			 hello[8];
	sigset_t		 none;
	pid_t			 pid;

	exe = &sup->exe[c->role == IPC_ROLE_WALSVC ? 0 : c->role ==
	    IPC_ROLE_METRICS ? 2 : 1];
	/* each socket's kind, by letter: m plain MQTT, t TLS */
	if (c->role == IPC_ROLE_WORKER) {
		for (k = 0; k < IPC_LISTEN_KINDS; k++) {
			n = listen_slot_fds(&sup->listeners[k], c->slot,
			    fds + nfds, PROC_MAX_LISTEN - nfds);
			memset(kinds + nfds, IPC_LISTEN_LETTERS[k], (size_t)n);
			nfds += n;
		}
	}
	kinds[nfds] = '\0';
	c->gen = sup->next_gen++;
	snprintf(slot, sizeof(slot), "%u", c->slot);
	snprintf(gen, sizeof(gen), "%llu", (unsigned long long)c->gen);
	snprintf(nl, sizeof(nl), "%d", nfds);
	argv[0] = (char *)exe->path;
	argv[1] = "-s";
	argv[2] = slot;
	argv[3] = "-g";
	argv[4] = gen;
	argv[5] = "-n";
	argv[6] = nl;
	argv[7] = "-k";
	argv[8] = kinds;
	argv[9] = NULL;
	snprintf(execfail, sizeof(execfail), "promptmqd: cannot execute %.*s\n",
	    PATH_MAX, exe->path);
	sigemptyset(&none);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair for child failed", "role=%s slot=%u",
		    ipc_role_name(c->role), c->slot);
		return -1;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork failed", "role=%s slot=%u",
		    ipc_role_name(c->role), c->slot);
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		/*
		 * Async-signal-safe calls only from here to execve.  First
		 * move every descriptor above the target range, so that a
		 * source that happens to sit on a target is not clobbered.
		 */
		xfd = fcntl(exe->fd, F_DUPFD_CLOEXEC, 100);
		high[0] = fcntl(sv[1], F_DUPFD_CLOEXEC, 100);
		for (i = 0; i < nfds; i++)
			high[i + 1] = fcntl(fds[i], F_DUPFD_CLOEXEC, 100);
		if (dup2(high[0], PROC_CTL_FD) == -1)
			_exit(PMQ_EXIT_NORESPAWN);
		for (i = 0; i < nfds; i++)
			if (dup2(high[i + 1], PROC_LISTEN_FD0 + i) == -1)
				_exit(PMQ_EXIT_NORESPAWN);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* the program opened at start-up, whatever is at its path
		 * now; the child names itself (the kernel would call it by
		 * the descriptor's number) */
		execveat(xfd, "", argv, environ, AT_EMPTY_PATH);
		/* a missing or broken binary: respawning cannot help */
		(void)!write(STDERR_FILENO, execfail, strlen(execfail));
		_exit(PMQ_EXIT_NORESPAWN);
	}
	close(sv[1]);

	self.gen = 0;
	if ((c->ctl = ctl_open(sup->base, sv[0], &self, dispatch_child, c)) ==
	    NULL)
		fatal("cannot open control channel", "");
	ctl_set_target_gen(c->ctl, c->gen);
	c->pid = pid;
	c->state = CHILD_STARTING;
	c->last_error[0] = '\0';
	c->started_ms = clock_mono_ms();
	log_info("child started", "role=%s slot=%u pid=%ld gen=%llu",
	    ipc_role_name(c->role), c->slot, (long)pid,
	    (unsigned long long)c->gen);

	/* HELLO, a worker's password file, then the whole configuration:
	 * the child starts on it */
	buf_store_u32(hello, (uint32_t)sup->nworkers);
	buf_store_u32(hello + 4, 0);
	ctl_send(c->ctl, IPC_CTL_HELLO, 0, hello, sizeof(hello), -1);
	if (c->role == IPC_ROLE_WORKER)
		auth_send(sup, c);
	stats_send(sup, c);
	spawn_send_config(c, IPC_CTL_CONFIG, &sup->cfg, NULL, 0);
	spawn_broadcast_peers(sup);
	return 0;
}

static struct child *
find_child(struct supervisor *sup, pid_t pid)
{
	int	 i;

	if (sup->walsvc.pid == pid)
		return &sup->walsvc;
	if (sup->metrics.pid == pid)
		return &sup->metrics;
	for (i = 0; i < sup->nworkers; i++)
		if (sup->workers[i].pid == pid)
			return &sup->workers[i];
	return NULL;
}

/* Collect every dead child (SIGCHLD may stand for several). */
void
spawn_reap(struct supervisor *sup)
{
	struct child	*c;
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if ((c = find_child(sup, pid)) == NULL)
			continue;
		if (WIFSIGNALED(status))
			log_warnx("child killed by signal",
			    "role=%s slot=%u pid=%ld gen=%llu signal=%d%s",
			    ipc_role_name(c->role), c->slot, (long)pid,
			    (unsigned long long)c->gen, WTERMSIG(status),
			    WCOREDUMP(status) ? " core=dumped" : "");
		else if (WEXITSTATUS(status) != 0 || !sup->stopping)
			log_notice("child exited",
			    "role=%s slot=%u pid=%ld gen=%llu status=%d",
			    ipc_role_name(c->role), c->slot, (long)pid,
			    (unsigned long long)c->gen, WEXITSTATUS(status));
		else
			log_info("child stopped", "role=%s slot=%u pid=%ld",
			    ipc_role_name(c->role), c->slot, (long)pid);
		ctl_drain(c->ctl);
		ctl_close(c->ctl);
		c->ctl = NULL;
		c->pid = -1;
		c->state = CHILD_DOWN;
		supervisor_child_exited(c, status);
	}
}

static void
dispatch_child(struct ctl_channel *ch, int status, struct ipc_batch *batch,
    int fd, void *arg)
{
	static struct log_ratelimit	 rl;
	struct child			*c = arg;
	struct ipc_record		 rec;
	int				 rv;

	if (fd != -1)
		close(fd);	/* children pass us nothing */
	if (status == CTL_EOF)
		return;		/* the exit status arrives through SIGCHLD */
	if (status != IPC_OK) {
		log_limited(&rl, LOG_LEVEL_WARN, "bad control message from child",
		    "role=%s slot=%u error=\"%s\"", ipc_role_name(c->role),
		    c->slot, ipc_strerror(status));
		return;
	}
	if (batch->sender.role != c->role || batch->sender.slot != c->slot ||
	    batch->sender.gen != c->gen) {
		log_limited(&rl, LOG_LEVEL_WARN, "control message with wrong "
		    "identity", "expected=%s/%u/%llu got=%s/%u/%llu",
		    ipc_role_name(c->role), c->slot, (unsigned long long)c->gen,
		    ipc_role_name(batch->sender.role), batch->sender.slot,
		    (unsigned long long)batch->sender.gen);
		return;
	}
	while ((rv = ipc_batch_next(batch, &rec)) == 1) {
		switch (rec.type) {
		case IPC_CTL_READY:
			supervisor_child_ready(c, &rec);
			break;
		case IPC_CTL_STATUS:
			break;	/* counters: aggregated by the metrics work */
		case IPC_CTL_FATAL:
			snprintf(c->last_error, sizeof(c->last_error), "%.*s",
			    (int)rec.len, (const char *)rec.body);
			break;
		case IPC_ADM_ROWS:
		case IPC_ADM_DONE:
			admin_child_record(c, &rec);
			break;
		default:
			log_limited(&rl, LOG_LEVEL_WARN,
			    "unexpected control message from child",
			    "role=%s slot=%u type=0x%04x",
			    ipc_role_name(c->role), c->slot, rec.type);
		}
	}
}
