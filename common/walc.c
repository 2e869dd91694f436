/*
 * walc.c - the sending side of the append stream to walsvc (see walc.h).
 *
 * Unacknowledged records are kept in one buffer, oldest first, each as
 * [u64 seq][u8 kind][u32 len][payload]; acknowledged ones are skipped by
 * advancing `head`, and the buffer is compacted when the dead prefix
 * outgrows the live part, so acknowledging is O(1) amortised.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "buf.h"
#include "clock.h"
#include "ipc_link.h"
#include "log.h"
#include "walc.h"

#define ENTRY_HEADER	13

struct walc {
	struct ipc_link		*link;
	struct event		*timer;
	walc_durable_fn		 durable_fn;
	walc_refused_fn		 refused_fn;
	walc_relinked_fn	 relinked_fn;
	void			*arg;
	uint64_t		 next_seq;
	uint64_t		 durable;
	uint64_t		 walsvc_gen;
	struct buf		 q;
	size_t			 head;
	int64_t			 last_progress;
	uint64_t		 resent;
	int			 silent;	/* retransmissions unanswered */
};

static void
send_entry(struct walc *w, uint64_t seq, uint8_t kind, const uint8_t *payload,
    uint32_t len, uint64_t received)
{
	struct buf	*b;
	size_t		 start;

	if ((b = ipc_link_record_begin(w->link, IPC_WAL_APPEND, seq, received,
	    &start)) == NULL)
		return;		/* retransmission will try again */
	buf_add_u8(b, kind);
	buf_add(b, payload, len);
	if (buf_failed(b))
		buf_truncate(b, start);
	else if (ipc_link_record_end(w->link, start) == 0)
		ipc_link_expect_answer(w->link);
}

/* Send again every unacknowledged record from sequence `from` on. */
static void
resend_from(struct walc *w, uint64_t from)
{
	size_t		 off = w->head;
	uint64_t	 seq;
	uint32_t	 len;

	while (off + ENTRY_HEADER <= w->q.len) {
		seq = buf_load_u64(w->q.data + off);
		len = buf_load_u32(w->q.data + off + 9);
		if (seq >= from) {
			send_entry(w, seq, w->q.data[off + 8],
			    w->q.data + off + ENTRY_HEADER, len, 0);
			w->resent++;
		}
		off += ENTRY_HEADER + len;
	}
	w->last_progress = clock_mono_ms();
}

static void
retransmit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct walc	*w = arg;
	int		 relinked = 0;

	if (w->head == w->q.len)
		return;
	if (clock_mono_ms() - w->last_progress >= WALC_RETRANSMIT_MS) {
		log_debug("log appends unacknowledged; sending again",
		    "from=%llu last=%llu link_backlog=%zu",
		    (unsigned long long)w->durable + 1,
		    (unsigned long long)w->next_seq - 1,
		    ipc_link_backlog(w->link));
		/*
		 * Silence may mean a walsvc incarnation we have not heard
		 * of, which drops batches aimed at the old one.  Appends are
		 * idempotent, so address whoever holds the endpoint now; the
		 * first reply names the incarnation again.
		 */
		w->walsvc_gen = 0;
		ipc_link_set_target_gen(w->link, 0);
		/*
		 * Still nothing after a few rounds while walsvc restarts in
		 * well under a second: start the link over rather than trust
		 * whatever state the transport is in.
		 */
		if (++w->silent % WALC_RECONNECT_AFTER == 0) {
			walc_relink(w, "walsvc silent");
			relinked = 1;
		}
		if (!relinked)
			resend_from(w, w->durable + 1);
	}
}

/*
 * Start the link over: the transport may hold a pipe that delivers
 * nothing (nng_close drops what is queued in it), so everything not yet
 * acknowledged goes again on a new socket, and the owner is told to send
 * its own requests again.  `why` names the sign that walsvc does not hear
 * us.
 */
void
walc_relink(struct walc *w, const char *why)
{
	log_notice("walsvc does not hear us; reconnecting the log link",
	    "why=\"%s\" unacked_from=%llu link_backlog=%zu", why,
	    (unsigned long long)w->durable + 1, ipc_link_backlog(w->link));
	ipc_link_reconnect(w->link);
	if (w->head < w->q.len)
		resend_from(w, w->durable + 1);
	/* the old socket took the owner's requests with it too */
	if (w->relinked_fn)
		w->relinked_fn(w->arg);
}

struct walc *
walc_new(struct event_base *base, struct ipc_link *link,
    walc_durable_fn durable_fn, walc_refused_fn refused_fn, void *arg)
{
	struct walc	*w;
	struct timeval	 tv = { 0, WALC_RETRANSMIT_MS * 1000 / 2 };

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->link = link;
	w->durable_fn = durable_fn;
	w->refused_fn = refused_fn;
	w->arg = arg;
	w->next_seq = 1;
	buf_init(&w->q);
	w->timer = event_new(base, -1, EV_PERSIST, retransmit_cb, w);
	if (w->timer == NULL || event_add(w->timer, &tv) == -1) {
		if (w->timer)
			event_free(w->timer);
		free(w);
		return NULL;
	}
	w->last_progress = clock_mono_ms();
	return w;
}

/* Who is told when the link starts over (NULL: nobody). */
void
walc_set_relinked(struct walc *w, walc_relinked_fn fn)
{
	w->relinked_fn = fn;
}

void
walc_free(struct walc *w)
{
	if (w == NULL)
		return;
	event_free(w->timer);
	buf_free(&w->q);
	free(w);
}

/* Queue one record for the log; returns its sequence, 0 on ENOMEM. */
uint64_t
walc_append(struct walc *w, uint8_t kind, const void *payload, size_t len)
{
	return walc_append_received(w, kind, payload, len, 0);
}

uint64_t
walc_append_received(struct walc *w, uint8_t kind, const void *payload,
    size_t len, uint64_t received)
{
	uint64_t	 seq;
	size_t		 start = w->q.len;

	if (len > UINT32_MAX - ENTRY_HEADER)
		return 0;
	seq = w->next_seq;
	buf_add_u64(&w->q, seq);
	buf_add_u8(&w->q, kind);
	buf_add_u32(&w->q, (uint32_t)len);
	buf_add(&w->q, payload, len);
	if (buf_failed(&w->q)) {
		buf_truncate(&w->q, start);
		w->q.failed = 0;
		return 0;
	}
	if (w->head == start)
		w->last_progress = clock_mono_ms();	/* the clock starts now */
	w->next_seq++;
	send_entry(w, seq, kind, payload, (uint32_t)len, received);
	return seq;
}

static void
acknowledge(struct walc *w, uint64_t upto)
{
	uint32_t	 len;

	if (upto <= w->durable)
		return;
	if (upto >= w->next_seq) {
		log_warnx("walsvc acknowledged appends never sent; ignored",
		    "upto=%llu last=%llu", (unsigned long long)upto,
		    (unsigned long long)w->next_seq - 1);
		return;
	}
	w->durable = upto;
	/* a commit ended: what waited for it in the link goes to the next */
	ipc_link_release(w->link);
	while (w->head + ENTRY_HEADER <= w->q.len &&
	    buf_load_u64(w->q.data + w->head) <= upto) {
		len = buf_load_u32(w->q.data + w->head + 9);
		w->head += ENTRY_HEADER + len;
	}
	if (w->head == w->q.len) {
		buf_reset(&w->q);
		w->head = 0;
	} else if (w->head > w->q.len - w->head) {
		buf_consume(&w->q, w->head);
		w->head = 0;
	}
	w->last_progress = clock_mono_ms();
	w->silent = 0;
	if (w->durable_fn)
		w->durable_fn(w->arg, upto);
}

void
walc_handle(struct walc *w, const struct ipc_batch *batch,
    const struct ipc_record *rec)
{
	static struct log_ratelimit	 rl;

	if (batch->sender.role != IPC_ROLE_WALSVC) {
		log_limited(&rl, LOG_LEVEL_WARN, "log reply from a non-walsvc "
		    "sender dropped", "role=%s", ipc_role_name(batch->sender.role));
		return;
	}
	/* generations only grow: an older one is a dead walsvc's leftover */
	if (batch->sender.gen < w->walsvc_gen)
		return;
	if (batch->sender.gen != w->walsvc_gen)
		walc_peer_restarted(w, batch->sender.gen);
	switch (rec->type) {
	case IPC_WAL_DURABLE:
		if (rec->len != 8)
			goto bad;
		acknowledge(w, rec->seq);
		break;
	case IPC_WAL_RESEND:
		if (rec->len != 0)
			goto bad;
		/* walsvc holds everything before rec->seq, maybe not durably
		 * yet: acknowledgement still waits for WAL_DURABLE */
		resend_from(w, rec->seq);
		break;
	case IPC_WAL_REFUSED:
		if (rec->len != 4)
			goto bad;
		if (w->refused_fn)
			w->refused_fn(w->arg, rec->seq,
			    (int)buf_load_u32(rec->body));
		break;
	default:
		goto bad;
	}
	return;
bad:
	log_limited(&rl, LOG_LEVEL_WARN, "malformed log reply dropped",
	    "type=0x%04x len=%u", rec->type, rec->len);
}

/*
 * A new walsvc incarnation: whatever was in flight to the old one may be
 * lost, so everything unacknowledged goes again, addressed to the new one.
 */
void
walc_peer_restarted(struct walc *w, uint64_t gen)
{
	uint64_t	 old = w->walsvc_gen;

	if (gen == old)
		return;
	w->walsvc_gen = gen;
	ipc_link_set_target_gen(w->link, gen);
	/* from "unknown" (0): the first reply; the retransmission
	 * timer covers anything an unseen incarnation lost */
	if (old != 0 && w->head < w->q.len)
		resend_from(w, w->durable + 1);
}

uint64_t
walc_durable(const struct walc *w)
{
	return w->durable;
}

uint64_t
walc_last(const struct walc *w)
{
	return w->next_seq - 1;
}

size_t
walc_unacked_bytes(const struct walc *w)
{
	return w->q.len - w->head;
}

uint64_t
walc_resent(const struct walc *w)
{
	return w->resent;
}
