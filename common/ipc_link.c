/*
 * ipc_link.c - nng push/pull links integrated into libevent (see
 * ipc_link.h for the model).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "clock.h"
#include "ipc_link.h"
#include "log.h"

/* Messages one receive callback takes before letting other events run. */
#define RECV_BURST	64
/* nng's own queue in front of the pipe, in messages (batches). */
#define NNG_QUEUE	16
#define OFF_TARGET_GEN	24

struct ipc_endpoint {
	nng_socket	 sock;
	struct event	*ev;
	uint64_t	 own_gen;
	ipc_batch_fn	 fn;
	void		*arg;
	int		 paused;
	uint64_t	 rejected;
	char		 path[IPC_PATH_MAX + 1];
};

struct queued {
	struct queued	*next;
	nng_msg		*msg;
};

struct ipc_link {
	struct event_base	*base;
	nng_socket		 sock;
	struct ipc_identity	 self;
	uint64_t		 target_gen;
	struct buf		 open;		/* batch being filled */
	struct queued		*head, *tail;	/* batches nng refused */
	size_t			 queued_bytes;
	struct event		*flush_ev;
	struct event		*send_ev;
	int			 flush_pending;	/* 1: end of turn, 2: held */
	struct ipc_link		*pacer;		/* NULL: every turn */
	uint32_t		 pace_us;
	uint32_t		 open_records;
	int			 open_asks;	/* open batch wants an answer */
	int			 answer_due;	/* a sent one still does */
	uint64_t		 asked_at;	/* clock_mono_us() */
	uint64_t		 last_sent;	/* likewise, if paced or asking;
						   0: never */
	size_t			 low_mark;
	int			 above_low;
	ipc_drain_fn		 drain_fn;
	void			*drain_arg;
	struct ipc_link_stats	 stats;
	char			 path[IPC_PATH_MAX + 1];
};

struct event_base *
evloop_new(void)
{
	struct event_config	*cfg;
	struct event_base	*base;

	/* timers below a millisecond (group commit) need timerfd */
	if ((cfg = event_config_new()) == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (base == NULL)
		return NULL;
	if (event_base_priority_init(base, EVLOOP_NPRIORITIES) == -1) {
		event_base_free(base);
		return NULL;
	}
	return base;
}

/*
 * The endpoint of (role, slot) in the runtime directory (in its
 * IPC_SUBDIR).  Paths are
 * derived, never sent, so a peer needs only the runtime directory and
 * the peers table to reach anyone.
 */
int
ipc_endpoint_path(char *out, size_t outlen, const char *rundir, uint8_t role,
    uint16_t slot)
{
	int	 n;

	switch (role) {
	case IPC_ROLE_WALSVC:
		n = snprintf(out, outlen, "%s/" IPC_SUBDIR "/wal.ipc", rundir);
		break;
	case IPC_ROLE_WORKER:
		n = snprintf(out, outlen, "%s/" IPC_SUBDIR "/w%u.ipc", rundir,
		    slot);
		break;
	case IPC_ROLE_TOOL:
		n = snprintf(out, outlen, "%s/" IPC_SUBDIR "/t%u.ipc", rundir,
		    slot);
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	if (n < 0 || (size_t)n >= outlen || n > IPC_PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static void
endpoint_readable(evutil_socket_t fd, short what, void *arg)
{
	static struct log_ratelimit	 rl;
	struct ipc_endpoint		*ep = arg;
	struct ipc_batch		 batch;
	nng_msg				*msg;
	int				 i, rv;

	for (i = 0; i < RECV_BURST && !ep->paused; i++) {
		if ((rv = nng_recvmsg(ep->sock, &msg, NNG_FLAG_NONBLOCK)) != 0) {
			if (rv != NNG_EAGAIN)
				log_limited(&rl, LOG_LEVEL_WARN, "ipc receive failed",
				    "path=%s error=\"%s\"", ep->path,
				    nng_strerror(rv));
			return;
		}
		rv = ipc_batch_open(&batch, nng_msg_body(msg), nng_msg_len(msg));
		if (rv != IPC_OK) {
			ep->rejected++;
			log_limited(&rl, LOG_LEVEL_WARN, "ipc batch rejected",
			    "path=%s error=\"%s\" size=%zu", ep->path,
			    ipc_strerror(rv), nng_msg_len(msg));
		} else if (batch.target_gen != 0 &&
		    batch.target_gen != ep->own_gen) {
			/* meant for an earlier incarnation of this process */
			ep->rejected++;
			log_debug("ipc batch for another generation dropped",
			    "from=%s/%u target=%llu own=%llu",
			    ipc_role_name(batch.sender.role), batch.sender.slot,
			    (unsigned long long)batch.target_gen,
			    (unsigned long long)ep->own_gen);
		} else
			ep->fn(&batch, ep->arg);
		nng_msg_free(msg);
	}
}

struct ipc_endpoint *
ipc_endpoint_open(struct event_base *base, const char *path, uint64_t own_gen,
    size_t max_message, ipc_batch_fn fn, void *arg, char *err, size_t errlen)
{
	struct ipc_endpoint	*ep;
	nng_listener		 listener;
	char			 url[IPC_PATH_MAX + 16];
	int			 rv, fd;

	if (strlen(path) > IPC_PATH_MAX) {
		snprintf(err, errlen, "IPC socket path %s is %zu bytes, longer "
		    "than the %d a Unix socket allows", path, strlen(path),
		    IPC_PATH_MAX);
		return NULL;
	}
	if ((ep = calloc(1, sizeof(*ep))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(ep->path, sizeof(ep->path), "%s", path);
	snprintf(url, sizeof(url), "ipc://%s", path);
	ep->own_gen = own_gen;
	ep->fn = fn;
	ep->arg = arg;
	if ((rv = nng_pull0_open(&ep->sock)) != 0)
		goto nngfail;
	if ((rv = nng_socket_set_size(ep->sock, NNG_OPT_RECVMAXSZ,
	    max_message)) != 0 ||
	    (rv = nng_socket_set_int(ep->sock, NNG_OPT_RECVBUF, NNG_QUEUE)) != 0)
		goto nngfail;
	/* a previous incarnation's socket file may remain: it is ours */
	unlink(path);
	if ((rv = nng_listener_create(&listener, ep->sock, url)) != 0 ||
	    (rv = nng_listener_set_int(listener, NNG_OPT_IPC_PERMISSIONS,
	    0600)) != 0 || (rv = nng_listener_start(listener, 0)) != 0)
		goto nngfail;
	if ((rv = nng_socket_get_int(ep->sock, NNG_OPT_RECVFD, &fd)) != 0)
		goto nngfail;
	ep->ev = event_new(base, fd, EV_READ | EV_PERSIST, endpoint_readable,
	    ep);
	if (ep->ev == NULL || event_priority_set(ep->ev, EVLOOP_PRIO_IO) == -1 ||
	    event_add(ep->ev, NULL) == -1) {
		snprintf(err, errlen, "cannot watch IPC endpoint %s", path);
		goto fail;
	}
	return ep;
nngfail:
	snprintf(err, errlen, "IPC endpoint %s: %s", path, nng_strerror(rv));
fail:
	if (ep->ev)
		event_free(ep->ev);
	nng_close(ep->sock);
	free(ep);
	return NULL;
}

/* Stop taking batches (the consumer is full); resuming catches up. */
void
ipc_endpoint_pause(struct ipc_endpoint *ep, int paused)
{
	if (ep->paused == paused)
		return;
	ep->paused = paused;
	if (paused)
		event_del(ep->ev);
	else {
		event_add(ep->ev, NULL);
		event_active(ep->ev, EV_READ, 0);
	}
}

void
ipc_endpoint_close(struct ipc_endpoint *ep)
{
	if (ep == NULL)
		return;
	event_free(ep->ev);
	nng_close(ep->sock);
	unlink(ep->path);
	free(ep);
}

/*
 * The process is about to exit without its supervisor: leave the nng
 * socket to the kernel.  nng_close() can wait for ever on a pipe the
 * other side is tearing down at the same moment (nng 1.5), and an
 * orphan nobody will kill must not hang on it.
 */
void
ipc_endpoint_abandon(struct ipc_endpoint *ep)
{
	if (ep == NULL)
		return;
	unlink(ep->path);
}

uint64_t
ipc_endpoint_rejected(const struct ipc_endpoint *ep)
{
	return ep->rejected;
}

static void link_try_send(struct ipc_link *);

static void
link_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_link	*link = arg;

	link->flush_pending = 0;
	ipc_link_flush(link);
}

static void
link_writable_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_link	*link = arg;

	link->stats.send_retries++;
	link_try_send(link);
}

/* Create the push socket and start dialing; events on its send fd. */
static int
link_connect(struct ipc_link *link, char *err, size_t errlen)
{
	char	 url[IPC_PATH_MAX + 16];
	int	 rv, fd;

	snprintf(url, sizeof(url), "ipc://%s", link->path);
	if ((rv = nng_push0_open(&link->sock)) != 0)
		goto nngfail;
	/* a restarted peer is back within milliseconds: redial quickly */
	if ((rv = nng_socket_set_int(link->sock, NNG_OPT_SENDBUF,
	    NNG_QUEUE)) != 0 ||
	    (rv = nng_socket_set_ms(link->sock, NNG_OPT_RECONNMINT, 10)) != 0 ||
	    (rv = nng_socket_set_ms(link->sock, NNG_OPT_RECONNMAXT, 200)) != 0)
		goto nngfail;
	if ((rv = nng_dial(link->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0)
		goto nngfail;
	if ((rv = nng_socket_get_int(link->sock, NNG_OPT_SENDFD, &fd)) != 0)
		goto nngfail;
	link->send_ev = event_new(link->base, fd, EV_READ, link_writable_cb,
	    link);
	if (link->send_ev == NULL ||
	    event_priority_set(link->send_ev, EVLOOP_PRIO_IO) == -1) {
		snprintf(err, errlen, "cannot watch IPC link %s", link->path);
		goto fail;
	}
	return 0;
nngfail:
	snprintf(err, errlen, "IPC link to %s: %s", link->path,
	    nng_strerror(rv));
fail:
	if (link->send_ev)
		event_free(link->send_ev);
	link->send_ev = NULL;
	nng_close(link->sock);
	return -1;
}

struct ipc_link *
ipc_link_open(struct event_base *base, const char *path,
    const struct ipc_identity *self, char *err, size_t errlen)
{
	struct ipc_link	*link;

	if (strlen(path) > IPC_PATH_MAX) {
		snprintf(err, errlen, "IPC socket path %s is too long", path);
		return NULL;
	}
	if ((link = calloc(1, sizeof(*link))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	buf_init(&link->open);
	link->base = base;
	link->self = *self;
	snprintf(link->path, sizeof(link->path), "%s", path);
	link->flush_ev = event_new(base, -1, 0, link_flush_cb, link);
	if (link->flush_ev == NULL ||
	    event_priority_set(link->flush_ev, EVLOOP_PRIO_FLUSH) == -1) {
		snprintf(err, errlen, "cannot watch IPC link %s", path);
		goto fail;
	}
	if (link_connect(link, err, errlen) == -1)
		goto fail;
	return link;
fail:
	if (link->flush_ev)
		event_free(link->flush_ev);
	free(link);
	return NULL;
}

/*
 * Start the link over with a new nng socket.  For a peer that stays
 * silent although it is up: whatever nng still held for it is gone, and
 * the caller sends again what it has not seen acknowledged.  Our own
 * queue of refused batches is kept.
 */
int
ipc_link_reconnect(struct ipc_link *link)
{
	char	 err[256];

	event_free(link->send_ev);
	link->send_ev = NULL;
	nng_close(link->sock);
	if (link_connect(link, err, sizeof(err)) == -1) {
		log_warnx("IPC link reconnect failed", "error=\"%s\"", err);
		return -1;
	}
	link->stats.reconnects++;
	link_try_send(link);
	return 0;
}

void
ipc_link_close(struct ipc_link *link)
{
	if (link == NULL)
		return;
	ipc_link_discard(link);
	if (link->send_ev)
		event_free(link->send_ev);
	event_free(link->flush_ev);
	nng_close(link->sock);
	buf_free(&link->open);
	free(link);
}

void
ipc_link_set_target_gen(struct ipc_link *link, uint64_t gen)
{
	link->target_gen = gen;
	if (link->open.len >= IPC_BATCH_HEADER_SIZE)
		buf_store_u64(link->open.data + OFF_TARGET_GEN, gen);
}

uint64_t
ipc_link_target_gen(const struct ipc_link *link)
{
	return link->target_gen;
}

void
ipc_link_set_drain(struct ipc_link *link, size_t low_mark, ipc_drain_fn fn,
    void *arg)
{
	link->low_mark = low_mark;
	link->drain_fn = fn;
	link->drain_arg = arg;
}

size_t
ipc_link_backlog(const struct ipc_link *link)
{
	return link->queued_bytes + link->open.len;
}

/*
 * Coalescing across turns (ipc_link.h): a batch opened while the pacer
 * waits for an answer stays open until the answer comes or until
 * pace_us after the pacer's question went out, whichever is first; but
 * only on a busy link, whose last batch went less than pace_us ago: on a
 * quiet one the wait would delay a lone record and save nothing.
 */
static void
schedule_flush(struct ipc_link *link)
{
	struct ipc_link	*pacer = link->pacer;
	struct timeval	 tv;
	uint64_t	 now, due;

	if (pacer != NULL && pacer->answer_due) {
		now = clock_mono_us();
		due = pacer->asked_at + link->pace_us;
		if (now < due && link->last_sent != 0 &&
		    now < link->last_sent + link->pace_us) {
			link->flush_pending = 2;
			link->stats.held++;
			tv.tv_sec = (time_t)((due - now) / 1000000);
			tv.tv_usec = (suseconds_t)((due - now) % 1000000);
			event_add(link->flush_ev, &tv);
			return;
		}
	}
	link->flush_pending = 1;
	event_active(link->flush_ev, 0, 0);
}

void
ipc_link_unhold(struct ipc_link *link)
{
	if (link->flush_pending != 2)
		return;
	event_del(link->flush_ev);
	link->flush_pending = 1;
	event_active(link->flush_ev, 0, 0);
}

void
ipc_link_set_pacer(struct ipc_link *link, struct ipc_link *pacer,
    uint32_t pace_us)
{
	link->pacer = pace_us != 0 ? pacer : NULL;
	link->pace_us = pace_us;
	if (link->pacer == NULL)
		ipc_link_unhold(link);
}

void
ipc_link_expect_answer(struct ipc_link *link)
{
	link->open_asks = 1;
}

void
ipc_link_release(struct ipc_link *link)
{
	link->answer_due = 0;
	ipc_link_unhold(link);
}

struct buf *
ipc_link_record_begin(struct ipc_link *link, uint16_t type, uint64_t seq,
    uint64_t corr, size_t *start)
{
	if (link->open.len == 0) {
		if (ipc_batch_begin(&link->open, &link->self,
		    link->target_gen) == -1)
			return NULL;
		if (!link->flush_pending)
			schedule_flush(link);
	}
	*start = ipc_record_begin(&link->open, type, seq, corr);
	return &link->open;
}

/* Move the open batch into the queue of nng messages. */
static int
link_close_batch(struct ipc_link *link)
{
	struct queued	*q;
	nng_msg		*msg;

	if (link->open.len == 0)
		return 0;
	if ((q = malloc(sizeof(*q))) == NULL)
		return -1;
	if (nng_msg_alloc(&msg, 0) != 0 ||
	    nng_msg_append(msg, link->open.data, link->open.len) != 0) {
		free(q);
		return -1;
	}
	q->msg = msg;
	q->next = NULL;
	if (link->tail)
		link->tail->next = q;
	else
		link->head = q;
	link->tail = q;
	link->queued_bytes += link->open.len;
	if (link->pacer != NULL || link->open_asks)
		link->last_sent = clock_mono_us();
	if (link->open_asks) {
		link->open_asks = 0;
		link->answer_due = 1;
		link->asked_at = link->last_sent;
	}
	link->open_records = 0;
	link->stats.batches++;
	link->stats.bytes += link->open.len;
	buf_reset(&link->open);
	return 0;
}

int
ipc_link_record_end(struct ipc_link *link, size_t start)
{
	if (ipc_record_end(&link->open, start) == -1)
		return -1;
	link->stats.records++;
	if (++link->open_records == IPC_LINK_HOLD_RECORDS)
		ipc_link_unhold(link);
	if (link->open.len >= IPC_LINK_BATCH_BYTES) {
		if (link_close_batch(link) == -1)
			return -1;
		link_try_send(link);
	}
	return 0;
}

int
ipc_link_send(struct ipc_link *link, uint16_t type, uint64_t seq,
    uint64_t corr, const void *body, size_t len)
{
	struct buf	*b;
	size_t		 start;

	if ((b = ipc_link_record_begin(link, type, seq, corr, &start)) == NULL)
		return -1;
	if (buf_add(b, body, len) == -1) {
		buf_truncate(b, start);
		return -1;
	}
	return ipc_link_record_end(link, start);
}

static void
link_try_send(struct ipc_link *link)
{
	static struct log_ratelimit	 rl;
	struct queued			*q;
	size_t				 len;
	int				 rv;

	if (ipc_link_backlog(link) > link->low_mark)
		link->above_low = 1;
	while ((q = link->head) != NULL) {
		len = nng_msg_len(q->msg);
		rv = nng_sendmsg(link->sock, q->msg, NNG_FLAG_NONBLOCK);
		if (rv == NNG_EAGAIN) {
			if (link->send_ev)
				event_add(link->send_ev, NULL);
			break;
		}
		if (rv != 0) {
			/* only a closed socket fails otherwise: a bug */
			log_limited(&rl, LOG_LEVEL_ERROR, "ipc send failed",
			    "path=%s error=\"%s\"", link->path,
			    nng_strerror(rv));
			nng_msg_free(q->msg);
		}
		link->head = q->next;
		if (link->head == NULL)
			link->tail = NULL;
		free(q);
		link->queued_bytes -= len;
	}
	if (link->above_low && ipc_link_backlog(link) <= link->low_mark) {
		link->above_low = 0;
		if (link->drain_fn)
			link->drain_fn(link, link->drain_arg);
	}
}

void
ipc_link_flush(struct ipc_link *link)
{
	if (link->flush_pending == 2) {
		event_del(link->flush_ev);
		link->flush_pending = 0;
	}
	if (link_close_batch(link) == -1)
		log_warnx("ipc batch dropped: out of memory", "path=%s",
		    link->path);
	link_try_send(link);
}

void
ipc_link_discard(struct ipc_link *link)
{
	struct queued	*q;

	while ((q = link->head) != NULL) {
		link->head = q->next;
		nng_msg_free(q->msg);
		free(q);
	}
	link->tail = NULL;
	link->queued_bytes = 0;
	link->open_records = 0;
	link->open_asks = 0;
	buf_reset(&link->open);
}

void
ipc_link_stats(const struct ipc_link *link, struct ipc_link_stats *out)
{
	*out = link->stats;
}
