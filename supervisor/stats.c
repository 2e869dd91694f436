/*
 * stats.c - the counter region (common/metrics.h) and the child that
 * serves it over HTTP, promptmq-metrics.
 *
 * The region is one memory file for the life of the broker, sized for
 * the worker slots: workers get it read-write (each writes its slot),
 * promptmq-metrics read-only, and the supervisor writes its own values
 * (children up, restarts, reloads) here as they change.
 *
 * metrics.bind is opened here, as root, like every listening socket,
 * and handed to promptmq-metrics, which runs as server.user: no process
 * that keeps root parses HTTP.  A reload that turns metrics.enabled or
 * changes metrics.bind opens the new socket first, then stops the child
 * so that it comes back with it at once (or not at all, when disabled).
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "ctl.h"
#include "log.h"
#include "metrics.h"
#include "supervisor.h"

static metric_t *
sup_values(struct supervisor *s)
{
	return metrics_sup(s->stats);
}

/*
 * A memory file of len zeroed bytes the children will share, mapped
 * here too: its descriptor (never 0, which the supervisor's structure
 * means as none), or -1 with err.
 */
int
shared_memory(const char *name, size_t len, void **mem, char *err,
    size_t errlen)
{
	int	 fd, high;

	if ((fd = memfd_create(name, MFD_CLOEXEC)) == -1 ||
	    ftruncate(fd, (off_t)len) == -1 || (*mem = mmap(NULL, len,
	    PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		snprintf(err, errlen, "%s: cannot make shared memory: %s",
		    name, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (fd == 0) {
		if ((high = fcntl(fd, F_DUPFD_CLOEXEC, 3)) == -1) {
			snprintf(err, errlen, "%s: %s", name, strerror(errno));
			munmap(*mem, len);
			close(fd);
			return -1;
		}
		close(fd);
		fd = high;
	}
	return fd;
}

/* CPU time (µs) and resident bytes of a process; 0 when it is gone. */
void
stats_proc_usage(pid_t pid, uint64_t *cpu_us, uint64_t *rss)
{
	static long	 hz, page;
	char		 path[64], text[1024], *p;
	unsigned long	 ut = 0, st = 0, pages = 0;
	FILE		*f;
	size_t		 n;

	if (hz == 0) {
		hz = sysconf(_SC_CLK_TCK);
		page = sysconf(_SC_PAGESIZE);
	}
	*cpu_us = *rss = 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	/* after the command name, which may hold anything: field 3 on */
	if ((p = strrchr(text, ')')) == NULL || sscanf(p + 2, "%*c %*d %*d "
	    "%*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return;
	*cpu_us = (uint64_t)(ut + st) * 1000000 / (uint64_t)hz;
	snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%*u %lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	*rss = (uint64_t)pages * (uint64_t)page;
}

/* A worker slot's connections, as its worker last counted them (once a
 * second); 0 without the counter region. */
uint64_t
stats_worker_connections(const struct supervisor *s, int slot)
{
	const metric_t	*w;

	if (s->stats == NULL)
		return 0;
	w = metrics_worker(s->stats, (uint32_t)slot);
	return metric_get(&w[METRIC_W_CONN_TCP]) +
	    metric_get(&w[METRIC_W_CONN_TLS]) +
	    metric_get(&w[METRIC_W_CONN_WS]) +
	    metric_get(&w[METRIC_W_CONN_WSS]);
}

/* A child's CPU: what its dead incarnations used, and this one. */
static void
child_usage(struct child *c, metric_t *cpu, metric_t *rss)
{
	uint64_t	 us = 0, bytes = 0;

	if (spawn_alive(c)) {
		stats_proc_usage(c->pid, &us, &bytes);
		if (us > c->cpu_us)
			c->cpu_us = us;
	}
	metric_set(cpu, c->cpu_dead_us + c->cpu_us);
	metric_set(rss, bytes);
}

void
stats_child_gone(struct child *c)
{
	c->cpu_dead_us += c->cpu_us;
	c->cpu_us = 0;
}

static void
usage_tick(evutil_socket_t fd, short what, void *arg)
{
	struct supervisor	*s = arg;
	metric_t		*v = sup_values(s);
	struct rusage		 ru;
	uint64_t		 us, rss;
	int			 i;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		metric_set(&v[METRIC_SUP_CPU_SUPERVISOR], (uint64_t)(
		    ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
		    (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec));
	stats_proc_usage(getpid(), &us, &rss);
	metric_set(&v[METRIC_SUP_RSS_SUPERVISOR], rss);
	child_usage(&s->walsvc, &v[METRIC_SUP_CPU_WALSVC],
	    &v[METRIC_SUP_RSS_WALSVC]);
	child_usage(&s->metrics, &v[METRIC_SUP_CPU_METRICS],
	    &v[METRIC_SUP_RSS_METRICS]);
	for (i = 0; i < s->nworkers; i++)
		child_usage(&s->workers[i], &metrics_worker(s->stats,
		    (uint32_t)i)[METRIC_W_CPU], &metrics_worker(s->stats,
		    (uint32_t)i)[METRIC_W_RSS]);
}

/* Once the event loop exists: CPU and memory every second. */
void
stats_watch(struct supervisor *s)
{
	struct timeval	 second = { 1, 0 };

	if (s->stats == NULL)
		return;
	if ((s->stats_ev = event_new(s->base, -1, EV_PERSIST, usage_tick,
	    s)) == NULL || event_add(s->stats_ev, &second) == -1)
		log_warnx("process CPU and memory not measured", "");
}

int
stats_open(struct supervisor *s, char *err, size_t errlen)
{
	size_t	 len = metrics_size((uint32_t)s->nworkers);
	void	*mem;
	int	 fd;

	if ((fd = shared_memory("promptmq-metrics", len, &mem, err,
	    errlen)) == -1)
		return -1;
	metrics_init(mem, (uint32_t)s->nworkers);
	s->stats = metrics_of(mem, len);
	s->stats_fd = fd;
	metric_set(&sup_values(s)[METRIC_SUP_START_TIME],
	    (uint64_t)time(NULL));
	metric_set(&sup_values(s)[METRIC_SUP_WORKERS], (uint64_t)s->nworkers);
	if (config_num(&s->cfg, OPT_metrics_enabled) &&
	    listen_open(&s->metrics_listen, IPC_LISTEN_HTTP, "metrics.bind",
	    config_str(&s->cfg, OPT_metrics_bind), 1, err, errlen) == -1)
		return -1;
	return 0;
}

/* A worker and walsvc get the region to write; promptmq-metrics to
 * read, and its socket. */
void
stats_send(struct supervisor *s, struct child *c)
{
	uint8_t	 what = IPC_METRICS_REGION;
	char	 path[64];
	int	 fd, sock;

	if (s->stats == NULL)
		return;
	if (c->role == IPC_ROLE_WORKER || c->role == IPC_ROLE_WALSVC) {
		if (ctl_send(c->ctl, IPC_CTL_METRICS, 0, &what, 1,
		    s->stats_fd) == -1)
			log_warn("cannot hand the counter region to a child",
			    "role=%s slot=%u", ipc_role_name(c->role),
			    c->slot);
		return;
	}
	if (c->role != IPC_ROLE_METRICS)
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s->stats_fd);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    ctl_send(c->ctl, IPC_CTL_METRICS, 0, &what, 1, fd) == -1)
		log_warn("cannot hand the counter region to promptmq-metrics",
		    "");
	if (fd != -1)
		close(fd);
	what = IPC_METRICS_LISTEN;
	sock = s->metrics_listen.n > 0 ? s->metrics_listen.l[0].fds[0] : -1;
	if (sock == -1 || ctl_send(c->ctl, IPC_CTL_METRICS, 0, &what, 1,
	    sock) == -1)
		log_warn("cannot hand metrics.bind to promptmq-metrics", "");
}

/* Who serves, after a child came up or went down. */
void
stats_children(struct supervisor *s)
{
	int	 i, up = 0;

	if (s->stats == NULL)
		return;
	for (i = 0; i < s->nworkers; i++)
		up += s->workers[i].state == CHILD_READY;
	metric_set(&sup_values(s)[METRIC_SUP_WORKERS_UP], (uint64_t)up);
	metric_set(&sup_values(s)[METRIC_SUP_WALSVC_UP],
	    s->walsvc.state == CHILD_READY);
}

/* Child c died (wait status `status`) and is to start again. */
void
stats_restarted(struct supervisor *s, const struct child *c, int status)
{
	int		 sig = WIFSIGNALED(status);
	enum metric_sup	 id;

	if (c->role == IPC_ROLE_WALSVC)
		id = sig ? METRIC_SUP_RESTARTS_WALSVC_SIGNAL :
		    METRIC_SUP_RESTARTS_WALSVC;
	else if (c->role == IPC_ROLE_METRICS)
		id = sig ? METRIC_SUP_RESTARTS_METRICS_SIGNAL :
		    METRIC_SUP_RESTARTS_METRICS;
	else
		id = sig ? METRIC_SUP_RESTARTS_WORKER_SIGNAL :
		    METRIC_SUP_RESTARTS_WORKER;
	if (s->stats != NULL)
		metric_add(&sup_values(s)[id], 1);
}

void
stats_reloaded(struct supervisor *s, int applied)
{
	if (s->stats != NULL)
		metric_add(&sup_values(s)[applied ? METRIC_SUP_RELOADS :
		    METRIC_SUP_RELOADS_REJECTED], 1);
}

/* promptmq-metrics, when it is wanted and not running. */
void
stats_start_child(struct supervisor *s)
{
	if (s->stopping || s->metrics_listen.n == 0 ||
	    s->metrics.state != CHILD_DOWN)
		return;
	if (spawn_child(&s->metrics) == -1)
		spawn_schedule(&s->metrics, 1000);
}

/*
 * metrics.enabled or metrics.bind changed (next is the new
 * configuration): the new socket first; a running child is stopped and
 * comes back with it.  A socket that cannot be opened keeps the old one
 * (-1: the options are then not applied either).
 */
int
stats_reload(struct supervisor *s, const struct config *next)
{
	struct listen_set	 set;
	int			 on = config_num(next, OPT_metrics_enabled) != 0;
	char			 err[512];

	if (on == (config_num(&s->cfg, OPT_metrics_enabled) != 0) && (!on ||
	    strcmp(config_str(next, OPT_metrics_bind), config_str(&s->cfg,
	    OPT_metrics_bind)) == 0))
		return 0;
	memset(&set, 0, sizeof(set));
	if (on && listen_open(&set, IPC_LISTEN_HTTP, "metrics.bind",
	    config_str(next, OPT_metrics_bind), 1, err, sizeof(err)) == -1) {
		log_error("reload: metrics endpoint not changed",
		    "error=\"%s\"", err);
		return -1;
	}
	listen_close(&s->metrics_listen);
	s->metrics_listen = set;
	if (spawn_alive(&s->metrics)) {
		s->metrics_restart = on;
		s->metrics.state = CHILD_STOPPING;
		ctl_send(s->metrics.ctl, IPC_CTL_STOP, 0, NULL, 0, -1);
	} else if (s->metrics.state == CHILD_WAITING && !on) {
		evtimer_del(s->metrics.respawn_ev);
		s->metrics.state = CHILD_DOWN;
	}
	/* a child not running yet starts once the option is in place */
	return 0;
}
