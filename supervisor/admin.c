/*
 * admin.c - the control socket promptmqctl talks to (docs/architecture.md,
 * "Control socket and promptmqctl").
 *
 * RUNDIR/ctl.sock, AF_UNIX SOCK_SEQPACKET, spoken with the control
 * channel's transport and the one IPC envelope.  A request is answered
 * here (status, reload, log-level) or handed to the children that hold
 * the answer (clients: the workers; kick, sessions, session-delete:
 * walsvc) under a correlation id of ours; their rows are relayed as they
 * come, and ADM_DONE goes to the tool once every child asked has
 * answered, died, or let ADMIN_DEADLINE_MS pass.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "adm.h"
#include "ctl.h"
#include "log.h"
#include "metrics.h"
#include "supervisor.h"

#define ADMIN_CLIENTS_MAX	16
#define ADMIN_DEADLINE_MS	5000
#define ADMIN_PENDING_MAX	(16u << 20)	/* bytes waiting for a tool */
#define ADMIN_SOCKET		"ctl.sock"

struct admin_req;

/* One connection of promptmqctl. */
struct admin_client {
	struct admin_client	*next;
	struct admin		*ad;
	struct ctl_channel	*ctl;
	struct admin_req	*req;		/* in flight, or NULL */
	uid_t			 uid;
	pid_t			 pid;
};

enum { WAITING = 0, ANSWERED, GONE };

/* A request handed to children. */
struct admin_req {
	struct admin_req	*next;
	struct admin		*ad;
	struct admin_client	*cl;		/* NULL: the tool went away */
	uint64_t		 id;		/* ours, towards the children */
	uint64_t		 tool_corr;	/* the tool's */
	uint8_t			 result;
	char			 msg[512];
	struct event		*timer;
	int			 nasked;
	struct asked {
		struct child	*child;
		uint8_t		 state;		/* WAITING, ANSWERED, GONE */
	}			 asked[];
};

struct admin {
	struct supervisor	*sup;
	int			 fd;
	struct event		*ev;
	struct admin_client	*clients;
	int			 nclients;
	struct admin_req	*reqs;
	uint64_t		 next_id;
	char			 path[PATH_MAX];
};

static void	req_finish(struct admin_req *);

static const struct ipc_identity admin_self = { IPC_ROLE_SUPERVISOR, 0, 0 };

/*
 * Open RUNDIR/ctl.sock, before the privileges are handed over: root's,
 * with server.group able to connect when the children run as another
 * user (0660), else only ours (0600).
 */
int
admin_open(struct supervisor *s, char *err, size_t errlen)
{
	struct sockaddr_un	 sun;
	struct admin		*ad;
	const char		*dir = config_str(&s->cfg,
				    OPT_server_runtime_dir);

	if ((ad = calloc(1, sizeof(*ad))) == NULL) {
		snprintf(err, errlen, "control socket: out of memory");
		return -1;
	}
	ad->sup = s;
	ad->fd = -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(ad->path, sizeof(ad->path), "%s/%s", dir,
	    ADMIN_SOCKET) >= (int)sizeof(sun.sun_path)) {
		snprintf(err, errlen, "server.runtime-dir %s: too long for the "
		    "control socket's path", dir);
		goto fail;
	}
	memcpy(sun.sun_path, ad->path, strlen(ad->path) + 1);
	/* a socket left by a broker that died; the lock says none runs */
	if (unlink(ad->path) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "%s: cannot remove the old control "
		    "socket: %s", ad->path, strerror(errno));
		goto fail;
	}
	if ((ad->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1 ||
	    bind(ad->fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(ad->path, s->privs.drop ? 0660 : 0600) == -1 ||
	    (s->privs.drop && chown(ad->path, geteuid(), s->privs.gid) ==
	    -1) || listen(ad->fd, ADMIN_CLIENTS_MAX) == -1) {
		snprintf(err, errlen, "%s: cannot open the control socket: %s",
		    ad->path, strerror(errno));
		goto fail;
	}
	s->admin = ad;
	return 0;
fail:
	if (ad->fd != -1)
		close(ad->fd);
	free(ad);
	return -1;
}

/* ---------------------------------------------------------------------
 * Answers.
 */

static void
send_done(struct admin_client *cl, uint64_t corr, uint8_t result,
    const char *msg)
{
	adm_send_done(cl->ctl, corr, result, "%s", msg);
}

static void
send_rows(struct admin_client *cl, uint64_t corr, struct adm_rows *rows)
{
	adm_send_rows(cl->ctl, corr, rows);
}

static const char *
state_name(const struct child *c)
{
	switch (c->state) {
	case CHILD_STARTING:
		return "starting";
	case CHILD_READY:
		return "ready";
	case CHILD_STOPPING:
		return "stopping";
	case CHILD_WAITING:
		return "restarting";
	default:
		return "down";
	}
}

/* A worker slot's clients (CONNECT accepted). */
static uint64_t
slot_clients(const metric_t *w)
{
	return metric_get(&w[METRIC_W_CLIENTS_5]) +
	    metric_get(&w[METRIC_W_CLIENTS_311]) +
	    metric_get(&w[METRIC_W_CLIENTS_31]);
}

static void
process_row(struct supervisor *s, struct adm_rows *rows,
    const struct child *c, int64_t now)
{
	metric_t	*v, *w;
	uint64_t	 rss = 0;

	adm_row_begin(rows, "processes");
	adm_str(rows, "role", ipc_role_name(c->role));
	adm_num(rows, "slot", c->slot);
	adm_str(rows, "state", state_name(c));
	if (c->pid > 0) {
		adm_num(rows, "pid", c->pid);
		adm_num(rows, "generation", (int64_t)c->gen);
		adm_num(rows, "uptime", (now - c->started_ms) / 1000);
	}
	adm_num(rows, "restarts", c->deaths);
	adm_milli(rows, "cpu_seconds", (int64_t)((c->cpu_dead_us +
	    c->cpu_us) / 1000));
	if (s->stats != NULL) {
		v = metrics_sup(s->stats);
		if (c->role == IPC_ROLE_WORKER) {
			w = metrics_worker(s->stats, c->slot);
			rss = metric_get(&w[METRIC_W_RSS]);
			adm_num(rows, "connections",
			    (int64_t)stats_worker_connections(s, c->slot));
			adm_num(rows, "clients", (int64_t)slot_clients(w));
		} else if (c->role == IPC_ROLE_WALSVC)
			rss = metric_get(&v[METRIC_SUP_RSS_WALSVC]);
		else
			rss = metric_get(&v[METRIC_SUP_RSS_METRICS]);
		if (c->pid > 0)
			adm_num(rows, "rss_bytes", (int64_t)rss);
	}
	adm_row_end(rows);
}

/* What status says of walsvc's gauges. */
static const struct {
	const char		*name;
	enum metric_walsvc	 id;
} walsvc_fields[] = {
	{ "sessions_online", METRIC_WAL_SESSIONS },
	{ "sessions_offline", METRIC_WAL_SESSIONS_OFFLINE },
	{ "session_queued", METRIC_WAL_QUEUED },
	{ "retained", METRIC_WAL_RETAINED },
	{ "log_position", METRIC_WAL_POSITION },
	{ "log_segments", METRIC_WAL_SEGMENTS },
	{ "log_disk_bytes", METRIC_WAL_DISK_BYTES },
	{ "storage_used_bytes", METRIC_WAL_STORAGE_BYTES },
	{ "storage_limit_bytes", METRIC_WAL_STORAGE_LIMIT },
};

/* The broker as a whole, then one row per process. */
static void
status(struct admin_client *cl, uint64_t corr)
{
	struct supervisor	*s = cl->ad->sup;
	struct adm_rows		 rows;
	metric_t		*v, *wal, *w;
	uint64_t		 clients = 0, conns = 0, subs = 0, started;
	int64_t			 now = clock_mono_ms();
	int			 i, up = 0;

	adm_rows_init(&rows);
	for (i = 0; i < s->nworkers; i++)
		up += s->workers[i].state == CHILD_READY;
	adm_row_begin(&rows, "broker");
	adm_str(&rows, "version", PACKAGE_VERSION);
	adm_num(&rows, "pid", getpid());
	adm_str(&rows, "state", s->stopping ? "stopping" :
	    s->ready_logged ? "running" : "starting");
	if (s->cfg.file)
		adm_str(&rows, "config", s->cfg.file);
	adm_str(&rows, "log_level", config_text(&s->cfg, OPT_log_level));
	adm_num(&rows, "workers", s->nworkers);
	adm_num(&rows, "workers_up", up);
	adm_str(&rows, "walsvc", state_name(&s->walsvc));
	if (s->stats != NULL) {
		v = metrics_sup(s->stats);
		wal = metrics_walsvc(s->stats);
		started = metric_get(&v[METRIC_SUP_START_TIME]);
		adm_num(&rows, "started", (int64_t)started);
		adm_num(&rows, "uptime", (int64_t)time(NULL) - (int64_t)started);
		for (i = 0; i < s->nworkers; i++) {
			w = metrics_worker(s->stats, (uint32_t)i);
			clients += slot_clients(w);
			conns += stats_worker_connections(s, i);
			subs += metric_get(&w[METRIC_W_SUBSCRIPTIONS]);
		}
		adm_num(&rows, "connections", (int64_t)conns);
		adm_num(&rows, "clients", (int64_t)clients);
		adm_num(&rows, "subscriptions", (int64_t)subs);
		for (i = 0; i < (int)(sizeof(walsvc_fields) /
		    sizeof(walsvc_fields[0])); i++)
			adm_num(&rows, walsvc_fields[i].name, (int64_t)
			    metric_get(&wal[walsvc_fields[i].id]));
		adm_str(&rows, "log", metric_get(&wal[METRIC_WAL_FAILING]) ?
		    "failing" : metric_get(&wal[METRIC_WAL_DISK_FULL]) ?
		    "full" : "ok");
	}
	adm_row_end(&rows);

	adm_row_begin(&rows, "processes");
	adm_str(&rows, "role", "supervisor");
	adm_num(&rows, "slot", 0);
	adm_str(&rows, "state", s->stopping ? "stopping" : "ready");
	adm_num(&rows, "pid", getpid());
	if (s->stats != NULL) {
		v = metrics_sup(s->stats);
		adm_milli(&rows, "cpu_seconds", (int64_t)(metric_get(
		    &v[METRIC_SUP_CPU_SUPERVISOR]) / 1000));
		adm_num(&rows, "rss_bytes", (int64_t)metric_get(
		    &v[METRIC_SUP_RSS_SUPERVISOR]));
	}
	adm_row_end(&rows);
	process_row(s, &rows, &s->walsvc, now);
	for (i = 0; i < s->nworkers; i++) {
		process_row(s, &rows, &s->workers[i], now);
		if (adm_rows_due(&rows, 0))	/* 256 workers: several */
			send_rows(cl, corr, &rows);
	}
	if (config_num(&s->cfg, OPT_metrics_enabled) || s->metrics.pid > 0)
		process_row(s, &rows, &s->metrics, now);
	send_rows(cl, corr, &rows);
	adm_rows_free(&rows);
	send_done(cl, corr, ADM_DONE_OK, "");
}

/* ---------------------------------------------------------------------
 * Requests handed to children.
 */

static struct admin_req *
req_find(struct admin *ad, uint64_t id)
{
	struct admin_req	*r;

	for (r = ad->reqs; r; r = r->next)
		if (r->id == id)
			return r;
	return NULL;
}

static void
req_timeout(evutil_socket_t fd, short what, void *arg)
{
	req_finish(arg);
}

/* Send the request to the children in `to`; 0, or -1 when none runs. */
static int
req_start(struct admin_client *cl, uint64_t corr, const struct ipc_record *rec,
    struct child **to, int n)
{
	struct admin		*ad = cl->ad;
	struct admin_req	*r;
	struct timeval		 tv = { ADMIN_DEADLINE_MS / 1000, 0 };
	int			 i;

	if ((r = calloc(1, sizeof(*r) + (size_t)n * sizeof(r->asked[0]))) ==
	    NULL) {
		send_done(cl, corr, ADM_DONE_FAILED, "out of memory");
		return 0;
	}
	r->ad = ad;
	r->cl = cl;
	r->id = ++ad->next_id;
	r->tool_corr = corr;
	for (i = 0; i < n; i++) {
		if (!spawn_alive(to[i]) || to[i]->state != CHILD_READY)
			continue;
		if (ctl_send(to[i]->ctl, IPC_ADM_REQUEST, r->id, rec->body,
		    rec->len, -1) == -1)
			continue;
		r->asked[r->nasked++].child = to[i];
	}
	if (r->nasked == 0) {
		free(r);
		return -1;
	}
	if ((r->timer = evtimer_new(ad->sup->base, req_timeout, r)) != NULL)
		evtimer_add(r->timer, &tv);
	r->next = ad->reqs;
	ad->reqs = r;
	cl->req = r;
	return 0;
}

/* Everyone answered, died, or the deadline passed: tell the tool. */
static void
req_finish(struct admin_req *r)
{
	struct admin_req	**rp;
	const struct child	*c;
	char			 missing[256];
	size_t			 len = 0;
	int			 i, n;

	missing[0] = '\0';
	for (i = 0; i < r->nasked; i++) {
		if (r->asked[i].state == ANSWERED)
			continue;
		c = r->asked[i].child;
		if (c->role == IPC_ROLE_WORKER)
			n = snprintf(missing + len, sizeof(missing) - len,
			    "%sworker %u", len ? ", " : "", c->slot);
		else
			n = snprintf(missing + len, sizeof(missing) - len,
			    "%s%s", len ? ", " : "", ipc_role_name(c->role));
		if (n < 0 || (size_t)n >= sizeof(missing) - len)
			break;
		len += (size_t)n;
	}
	if (len > 0) {
		r->result = ADM_DONE_FAILED;
		snprintf(r->msg, sizeof(r->msg), "no answer from %s; what "
		    "came is incomplete", missing);
	}
	if (r->cl != NULL) {
		send_done(r->cl, r->tool_corr, r->result, r->msg);
		r->cl->req = NULL;
	}
	for (rp = &r->ad->reqs; *rp; rp = &(*rp)->next)
		if (*rp == r) {
			*rp = r->next;
			break;
		}
	if (r->timer)
		event_free(r->timer);
	free(r);
}

/* The child at i answered or died: finished once nobody is waited for. */
static void
req_mark(struct admin_req *r, int i, uint8_t state)
{
	int	 j;

	r->asked[i].state = state;
	for (j = 0; j < r->nasked; j++)
		if (r->asked[j].state == WAITING)
			return;
	req_finish(r);
}

static void	client_free(struct admin_client *);

static int
asked_index(const struct admin_req *r, const struct child *c)
{
	int	 i;

	for (i = 0; i < r->nasked; i++)
		if (r->asked[i].child == c && r->asked[i].state == WAITING)
			return i;
	return -1;
}

/* ADM_ROWS or ADM_DONE from child c. */
void
admin_child_record(struct child *c, const struct ipc_record *rec)
{
	static struct log_ratelimit	 rl;
	struct admin_req		*r;
	int				 i;

	if (c->sup->admin == NULL ||
	    (r = req_find(c->sup->admin, rec->corr)) == NULL)
		return;		/* answered late: the tool has its answer */
	if ((i = asked_index(r, c)) == -1) {
		log_limited(&rl, LOG_LEVEL_WARN, "answer from a child not "
		    "asked", "role=%s slot=%u", ipc_role_name(c->role),
		    c->slot);
		return;
	}
	if (rec->type == IPC_ADM_ROWS) {
		if (r->cl == NULL)
			return;
		ctl_send(r->cl->ctl, IPC_ADM_ROWS, r->tool_corr, rec->body,
		    rec->len, -1);
		if (ctl_pending(r->cl->ctl) > ADMIN_PENDING_MAX) {
			log_warnx("promptmqctl does not read its answer; "
			    "dropped", "pid=%ld", (long)r->cl->pid);
			client_free(r->cl);
		}
		return;
	}
	/*
	 * ADM_DONE: u8 result, message.  The worst result and its message
	 * win; a list's workers say how many rows they sent, which is not
	 * a message for the operator.
	 */
	if (rec->len >= 1 && (rec->body[0] > r->result ||
	    (r->nasked == 1 && r->msg[0] == '\0'))) {
		r->result = rec->body[0];
		snprintf(r->msg, sizeof(r->msg), "%.*s", (int)rec->len - 1,
		    (const char *)rec->body + 1);
	}
	req_mark(r, i, ANSWERED);
}

/* Child c died: no request waits for it any longer. */
void
admin_child_gone(struct child *c)
{
	struct admin_req	*r, *next;
	int			 i;

	if (c->sup->admin == NULL)
		return;
	for (r = c->sup->admin->reqs; r; r = next) {
		next = r->next;
		if ((i = asked_index(r, c)) != -1)
			req_mark(r, i, GONE);
	}
}

/* ---------------------------------------------------------------------
 * Connections.
 */

static void
client_free(struct admin_client *cl)
{
	struct admin		*ad = cl->ad;
	struct admin_client	**cp;

	if (cl->req)
		cl->req->cl = NULL;	/* its children's answers are dropped */
	for (cp = &ad->clients; *cp; cp = &(*cp)->next)
		if (*cp == cl) {
			*cp = cl->next;
			break;
		}
	ad->nclients--;
	ctl_close(cl->ctl);
	free(cl);
}

static void
request(struct admin_client *cl, const struct ipc_record *rec)
{
	struct supervisor	*s = cl->ad->sup;
	struct child		*to[256];
	const char		*cmd, *arg;
	char			 msg[512], *end;
	long			 slot;
	int			 i, n = 0;

	if (adm_pairs_valid(rec->body, rec->len) == -1 ||
	    (cmd = adm_param(rec->body, rec->len, "cmd")) == NULL) {
		send_done(cl, rec->corr, ADM_DONE_FAILED, "malformed request");
		return;
	}
	log_info("control request", "cmd=%s uid=%u pid=%ld", cmd,
	    (unsigned)cl->uid, (long)cl->pid);
	if (strcmp(cmd, "status") == 0) {
		status(cl, rec->corr);
	} else if (strcmp(cmd, "reload") == 0) {
		if (s->stopping) {
			send_done(cl, rec->corr, ADM_DONE_FAILED,
			    "the broker is stopping");
			return;
		}
		i = supervisor_reload(s, msg, sizeof(msg));
		send_done(cl, rec->corr, i == 0 ? ADM_DONE_OK :
		    ADM_DONE_FAILED, msg);
	} else if (strcmp(cmd, "log-level") == 0) {
		arg = adm_param(rec->body, rec->len, "level");
		if (arg == NULL || supervisor_log_level(s, arg, msg,
		    sizeof(msg)) == -1) {
			send_done(cl, rec->corr, ADM_DONE_FAILED, arg ? msg :
			    "log-level needs a level");
			return;
		}
		snprintf(msg, sizeof(msg), "log level %s until the next reload",
		    config_text(&s->cfg, OPT_log_level));
		send_done(cl, rec->corr, ADM_DONE_OK, msg);
	} else if (strcmp(cmd, "clients") == 0) {
		arg = adm_param(rec->body, rec->len, "worker");
		slot = -1;
		if (arg && *arg) {
			errno = 0;
			slot = strtol(arg, &end, 10);
			if (errno || *end || slot < 0 || slot >= s->nworkers) {
				snprintf(msg, sizeof(msg), "no worker %s (the "
				    "broker has %d: 0 to %d)", arg,
				    s->nworkers, s->nworkers - 1);
				send_done(cl, rec->corr, ADM_DONE_FAILED, msg);
				return;
			}
		}
		for (i = 0; i < s->nworkers && n < 256; i++)
			if (slot == -1 || slot == i)
				to[n++] = &s->workers[i];
		if (req_start(cl, rec->corr, rec, to, n) == -1)
			send_done(cl, rec->corr, ADM_DONE_FAILED, slot == -1 ?
			    "no worker is running" : "that worker is not "
			    "running");
	} else if (strcmp(cmd, "kick") == 0 || strcmp(cmd, "sessions") == 0 ||
	    strcmp(cmd, "session-delete") == 0) {
		to[0] = &s->walsvc;
		if (req_start(cl, rec->corr, rec, to, 1) == -1)
			send_done(cl, rec->corr, ADM_DONE_FAILED, "walsvc is "
			    "not running (it holds the registry and the "
			    "sessions); try again when it is");
	} else {
		snprintf(msg, sizeof(msg), "unknown command '%.64s'", cmd);
		send_done(cl, rec->corr, ADM_DONE_FAILED, msg);
	}
}

static void
client_cb(struct ctl_channel *ch, int status, struct ipc_batch *batch,
    int fd, void *arg)
{
	struct admin_client	*cl = arg;
	struct ipc_record	 rec;

	if (fd != -1)
		close(fd);	/* tools pass us nothing */
	if (status != IPC_OK || batch->sender.role != IPC_ROLE_TOOL) {
		if (status != CTL_EOF)
			log_warnx("bad message on the control socket; "
			    "closed", "pid=%ld error=\"%s\"", (long)cl->pid,
			    status == IPC_OK ? "not a tool" :
			    ipc_strerror(status));
		client_free(cl);
		return;
	}
	while (ipc_batch_next(batch, &rec) == 1) {
		if (rec.type != IPC_ADM_REQUEST)
			send_done(cl, rec.corr, ADM_DONE_FAILED,
			    "expected a request");
		else if (cl->req != NULL)
			send_done(cl, rec.corr, ADM_DONE_FAILED,
			    "one request at a time");
		else
			request(cl, &rec);
	}
	/* a tool that asks and never reads is not kept on our memory */
	if (ctl_pending(cl->ctl) > ADMIN_PENDING_MAX) {
		log_warnx("promptmqctl does not read its answers; dropped",
		    "pid=%ld", (long)cl->pid);
		client_free(cl);
	}
}

/*
 * The socket's mode lets root and server.group in; the children's own
 * user is refused, so a child taken over gains nothing here.
 */
static int
peer_allowed(const struct supervisor *s, const struct ucred *cr)
{
	if (cr->uid == 0 || cr->uid == geteuid())
		return 1;
	return !(s->privs.drop && cr->uid == s->privs.uid);
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct admin		*ad = arg;
	struct admin_client	*cl;
	struct ucred		 cr;
	socklen_t		 crlen = sizeof(cr);
	int			 fd;

	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) ==
	    -1)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == -1 ||
	    !peer_allowed(ad->sup, &cr)) {
		log_warnx("control connection refused: the broker's own user",
		    "uid=%u pid=%ld", (unsigned)cr.uid, (long)cr.pid);
		close(fd);
		return;
	}
	if (ad->nclients >= ADMIN_CLIENTS_MAX ||
	    (cl = calloc(1, sizeof(*cl))) == NULL) {
		log_warnx("control connection refused: too many at once",
		    "max=%d", ADMIN_CLIENTS_MAX);
		close(fd);
		return;
	}
	cl->ad = ad;
	cl->uid = cr.uid;
	cl->pid = cr.pid;
	if ((cl->ctl = ctl_open(ad->sup->base, fd, &admin_self, client_cb,
	    cl)) == NULL) {
		close(fd);
		free(cl);
		return;
	}
	cl->next = ad->clients;
	ad->clients = cl;
	ad->nclients++;
}

void
admin_start(struct supervisor *s)
{
	struct admin	*ad = s->admin;

	if (ad == NULL)
		return;
	if ((ad->ev = event_new(s->base, ad->fd, EV_READ | EV_PERSIST,
	    accept_cb, ad)) == NULL || event_add(ad->ev, NULL) == -1)
		fatalx("cannot watch the control socket", "");
}

/* At exit: the socket file goes with the broker. */
void
admin_close(struct supervisor *s)
{
	struct admin	*ad = s->admin;

	if (ad == NULL)
		return;
	unlink(ad->path);
}
