/*
 * route.c - what the workers tell each other: which filters each has
 * subscribers for, and the messages those subscribers want.
 *
 * Every worker announces a plain filter when it gains its first local
 * subscriber (ROUTE_SET count 1) and withdraws it when it loses the last
 * (count 0); shared groups announce every change of their member count.
 * Announcements that a SUBACK depends on carry an id, and the receiver
 * answers ROUTE_ACK with it after applying them.  Links are FIFO, so a
 * worker that acknowledged id N applied everything before it too.  The
 * acknowledgement names the acker's last append to the log: a retained
 * message it took before it knew the new subscription is in the log by
 * then, which the retained lookup after the SUBACK waits for.
 *
 * A worker incarnation that appears (the peers table, or a batch with a
 * newer generation, whichever comes first) gets our whole table:
 * ROUTE_RESET, a ROUTE_SET per filter, then ROUTE_SYNCED with an id.  A
 * new worker starts accepting clients only once every running worker's
 * table has reached it (or after a bounded wait), so a client of the new
 * worker never publishes into a half-known world.  A worker that goes
 * away is forgotten: its filters leave our table, its acknowledgements
 * are no longer waited for.
 *
 * nng drops what was in flight on a connection that breaks, and a
 * worker that restarts breaks them: an announcement, its table or an
 * acknowledgement can be lost then.  A SUBACK that waits more than
 * ROUTE_RESYNC_MS for a worker's acknowledgement makes us send that
 * worker our whole table again, ending with a new id (the tables are
 * "set to", so sending one twice changes nothing).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ipc_link.h"
#include "log.h"
#include "walc.h"
#include "worker.h"

#define ROUTE_RESYNC_MS	1000
#define ROUTE_RECONNECT_AFTER	2	/* unanswered resends, then a new link */

static void
send_set(struct worker *w, unsigned slot, const uint8_t *filter, size_t len,
    uint32_t count, uint64_t corr)
{
	struct buf	*b;
	size_t		 start;

	if ((b = ipc_link_record_begin(w->peers[slot].link, IPC_ROUTE_SET, 0,
	    corr, &start)) == NULL)
		return;
	buf_add_u32(b, count);
	buf_add(b, filter, len);
	if (buf_failed(b))
		buf_truncate(b, start);
	else
		ipc_link_record_end(w->peers[slot].link, start);
}

/* Tell every running worker; returns the id a SUBACK can wait for. */
uint64_t
route_announce(struct worker *w, const uint8_t *filter, size_t len,
    uint32_t count, int want_ack)
{
	uint64_t	 id = want_ack ? ++w->route_issued : 0;
	unsigned	 slot;

	for (slot = 0; slot < w->npeers; slot++)
		if (slot != w->proc->self.slot && w->peers[slot].gen != 0)
			send_set(w, slot, filter, len, count, id);
	return id;
}

/* Every announcement up to this id is applied by every running worker. */
uint64_t
route_acked(const struct worker *w)
{
	uint64_t	 acked = w->route_issued;
	unsigned	 slot;

	for (slot = 0; slot < w->npeers; slot++)
		if (slot != w->proc->self.slot && w->peers[slot].gen != 0 &&
		    w->peers[slot].acked < acked)
			acked = w->peers[slot].acked;
	return acked;
}

int
route_ready(const struct worker *w)
{
	unsigned	 slot;

	for (slot = 0; slot < w->npeers; slot++)
		if (slot != w->proc->self.slot && w->peers[slot].gen != 0 &&
		    !w->peers[slot].synced_in)
			return 0;
	return 1;
}

struct sync_ctx {
	struct worker	*w;
	unsigned	 slot;
};

static void
sync_one(const uint8_t *filter, size_t len, uint32_t count, void *arg)
{
	struct sync_ctx	*sc = arg;

	send_set(sc->w, sc->slot, filter, len, count, 0);
}

/* Our whole table to worker `slot`, ending with a SYNCED it acknowledges. */
static void
send_table(struct worker *w, unsigned slot)
{
	struct peer	*p = &w->peers[slot];
	struct sync_ctx	 sc = { w, slot };

	ipc_link_send(p->link, IPC_ROUTE_RESET, 0, 0, NULL, 0);
	sub_local_filters(w->subs, sync_one, &sc);
	p->sync_id = ++w->route_issued;
	ipc_link_send(p->link, IPC_ROUTE_SYNCED, 0, p->sync_id, NULL, 0);
}

/* A new incarnation of worker `slot`: forget the old, send it our table. */
static void
peer_arrived(struct worker *w, unsigned slot, uint64_t gen)
{
	struct peer	*p = &w->peers[slot];

	if (p->gen != 0)
		sub_clear_remote(w->subs, slot);
	ipc_link_discard(p->link);
	ipc_link_set_target_gen(p->link, gen);
	p->gen = gen;
	p->acked = 0;
	p->appended = 0;
	p->synced_in = 0;
	p->waited_id = 0;
	send_table(w, slot);
	log_debug("worker peer arrived; table sent", "slot=%u gen=%llu",
	    slot, (unsigned long long)gen);
}

/*
 * Called every second: a worker that has not acknowledged what the
 * oldest waiting SUBACK needs for ROUTE_RESYNC_MS gets our table again.
 */
void
route_check_acks(struct worker *w)
{
	struct peer	*p;
	uint64_t	 need = w->subacks ? w->subacks->need : 0;
	int64_t		 now = clock_mono_ms();
	unsigned	 slot;

	for (slot = 0; slot < w->npeers; slot++) {
		p = &w->peers[slot];
		if (slot == w->proc->self.slot || p->gen == 0 ||
		    p->acked >= need) {
			p->waited_id = 0;
			p->resends = 0;
			continue;
		}
		if (p->waited_id != need) {
			p->waited_id = need;
			p->waited_since = now;
			continue;
		}
		if (now - p->waited_since < ROUTE_RESYNC_MS)
			continue;
		log_notice("worker did not acknowledge our routes; sending "
		    "them again", "slot=%u acked=%llu needed=%llu", slot,
		    (unsigned long long)p->acked, (unsigned long long)need);
		/*
		 * Silent twice over: start the link over rather than trust
		 * the transport (seen once, under load, after the peer's
		 * worker had restarted: nothing sent on the link arrived).
		 */
		if (++p->resends % ROUTE_RECONNECT_AFTER == 0) {
			log_notice("worker link silent; reconnecting it",
			    "slot=%u", slot);
			ipc_link_reconnect(p->link);
		}
		send_table(w, slot);
		p->waited_since = now;
	}
}

static void
peer_gone(struct worker *w, unsigned slot)
{
	struct peer	*p = &w->peers[slot];

	if (p->gen == 0)
		return;
	sub_clear_remote(w->subs, slot);
	ipc_link_discard(p->link);
	p->gen = 0;
	p->synced_in = 0;
	log_debug("worker peer gone", "slot=%u", slot);
}

void
route_peers_changed(struct worker *w)
{
	const struct proc_peer	*pp;
	unsigned		 slot;

	for (slot = 0; slot < w->npeers; slot++) {
		if (slot == w->proc->self.slot)
			continue;
		pp = proc_peer(w->proc, IPC_ROLE_WORKER, (uint16_t)slot);
		if (pp == NULL || !pp->up)
			peer_gone(w, slot);
		else if (pp->gen > w->peers[slot].gen)
			peer_arrived(w, slot, pp->gen);
	}
	/* a worker that went away no longer holds SUBACKs back */
	subscribe_progress(w);
	if (!w->accepting && route_ready(w))
		accept_enable(w);
}

static void
send_ack(struct worker *w, unsigned slot, uint64_t id)
{
	uint8_t	 last[8];

	buf_store_u64(last, walc_last(w->walc));
	ipc_link_send(w->peers[slot].link, IPC_ROUTE_ACK, 0, id, last,
	    sizeof(last));
}

static void
handle_set(struct worker *w, unsigned slot, const struct ipc_record *rec)
{
	static struct log_ratelimit	 rl;
	struct topic_filter		 tf;
	uint32_t			 count;

	if (rec->len < 5 || topic_filter_parse(rec->body + 4, rec->len - 4,
	    &tf) != TOPIC_OK) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed route from worker",
		    "slot=%u len=%u", slot, rec->len);
		return;
	}
	count = buf_load_u32(rec->body);
	if (sub_set_remote(w->subs, &tf, slot, count) == -1)
		log_limited(&rl, LOG_LEVEL_ERROR, "out of memory applying a "
		    "route", "slot=%u", slot);
	if (rec->corr)
		send_ack(w, slot, rec->corr);
}

void
worker_dispatch_worker(struct worker *w, struct ipc_batch *batch)
{
	static struct log_ratelimit	 rl;
	struct ipc_record		 rec;
	unsigned			 slot = batch->sender.slot;
	struct peer			*p;
	int				 rv;

	if (slot >= w->npeers || slot == w->proc->self.slot) {
		log_limited(&rl, LOG_LEVEL_WARN, "batch from an unknown worker "
		    "slot dropped", "slot=%u", slot);
		return;
	}
	p = &w->peers[slot];
	/* generations only grow: a newer one is a restart we have not been
	 * told of yet, an older one a dead incarnation's leftovers */
	if (batch->sender.gen > p->gen)
		peer_arrived(w, slot, batch->sender.gen);
	else if (batch->sender.gen < p->gen) {
		log_limited(&rl, LOG_LEVEL_DEBUG, "batch from a stale worker "
		    "dropped", "slot=%u gen=%llu", slot,
		    (unsigned long long)batch->sender.gen);
		return;
	}
	while ((rv = ipc_batch_next(batch, &rec)) == 1) {
		switch (rec.type) {
		case IPC_FWD_PUBLISH:
			if (rec.len < 18)
				goto bad;
			publish_forwarded(w, rec.body[0], rec.body[1],
			    rec.body + 2, rec.len - 2);
			break;
		case IPC_ROUTE_SET:
			handle_set(w, slot, &rec);
			break;
		case IPC_ROUTE_ACK:
			if (rec.len != 8)
				goto bad;
			if (rec.corr > p->acked && rec.corr <= w->route_issued)
				p->acked = rec.corr;
			if (buf_load_u64(rec.body) > p->appended)
				p->appended = buf_load_u64(rec.body);
			subscribe_progress(w);
			break;
		case IPC_ROUTE_RESET:
			if (rec.len != 0)
				goto bad;
			sub_clear_remote(w->subs, slot);
			break;
		case IPC_ROUTE_SYNCED:
			if (rec.len != 0)
				goto bad;
			p->synced_in = 1;
			send_ack(w, slot, rec.corr);
			if (!w->accepting && route_ready(w))
				accept_enable(w);
			break;
		default:
			goto bad;
		}
		continue;
bad:
		log_limited(&rl, LOG_LEVEL_WARN, "malformed message from "
		    "worker dropped", "slot=%u type=0x%04x len=%u", slot,
		    rec.type, rec.len);
	}
	if (rv < 0)
		log_limited(&rl, LOG_LEVEL_WARN, "malformed batch from worker",
		    "slot=%u error=\"%s\"", slot, ipc_strerror(rv));
}
