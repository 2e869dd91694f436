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

void
stats_restarted(struct supervisor *s, const struct child *c)
{
	enum metric_sup	 id = c->role == IPC_ROLE_WALSVC ?
			    METRIC_SUP_RESTARTS_WALSVC : c->role ==
			    IPC_ROLE_METRICS ? METRIC_SUP_RESTARTS_METRICS :
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
