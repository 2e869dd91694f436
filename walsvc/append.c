/*
 * append.c - the receiving side of the append streams (walc.h) and the
 * group commit that makes them durable.
 *
 * One loop turn:
 *   1) every batch nng has for us is taken; each WAL_APPEND is checked
 *      against its stream: the next expected sequence is appended to the
 *      log's memory, a repeat is answered with the watermark, a gap with
 *      WAL_RESEND (the sender sends again from the first missing one);
 *   2) the commit event, activated by the first append of the turn, runs
 *      once those batches are handled: one write for everything pending,
 *      and under wal-sync=always one fdatasync;
 *   3) only then does every stream that appended get WAL_DURABLE with its
 *      highest sequence, and what waited for those records to be durable
 *      (grants, queued messages: sessions.c) is sent.
 * Every record is applied to the session state (sessions.c) and the
 * index transaction as it is appended; the index transaction commits
 * only at a synced position (after the sync of each group commit under
 * wal-sync=always, at the sync timer otherwise), so the index is never
 * ahead of the log.
 * A write or sync that fails acknowledges nothing; the records stay in
 * memory and a timer retries, so a full disk stops acknowledgements and
 * recovers by itself.  While the log holds more unwritten bytes than
 * pending_limit, the endpoint is paused: senders feel back-pressure
 * instead of walsvc growing without bound.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "buf.h"
#include "hash.h"
#include "ipc_link.h"
#include "log.h"
#include "walsvc.h"

#define RETRY_MS	500
#define COMMIT_GAP_US	250	/* a large group: after this gap */
#define COMMIT_WAIT_US	1000	/* a small one: waits up to this */
#define COMMIT_GROUP	32	/* records that make a group large */
#define CHECKPOINT_S	30

static unsigned
stream_hash(uint8_t role, uint16_t slot, uint64_t gen)
{
	return (unsigned)(hash_mix64(gen ^ ((uint64_t)role << 56) ^
	    ((uint64_t)slot << 40)) % STREAM_BUCKETS);
}

static struct stream *
stream_get(struct walsvc *ws, const struct ipc_identity *id)
{
	struct stream	**bucket, *s;
	uint64_t	  highest = 0;

	bucket = &ws->streams[stream_hash(id->role, id->slot, id->gen)];
	for (s = *bucket; s; s = s->next)
		if (s->gen == id->gen && s->slot == id->slot &&
		    s->role == id->role)
			return s;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->role = id->role;
	s->slot = id->slot;
	s->gen = id->gen;
	/* everything the log holds at this point is durable; the index
	 * remembers streams whose records compaction removed */
	wal_stream_highest(ws->wal, id->role, id->slot, id->gen, &highest);
	if (index_stream_highest(ws->index, id->role, id->slot, id->gen) >
	    highest)
		highest = index_stream_highest(ws->index, id->role, id->slot,
		    id->gen);
	s->highest = highest;
	s->durable = highest;
	s->next = *bucket;
	*bucket = s;
	return s;
}

static void
reply(struct walsvc *ws, struct stream *s, uint16_t type, uint64_t seq,
    const void *body, size_t len)
{
	struct ipc_link	*link;

	if ((link = walsvc_reply_link(ws, s->role, s->slot, s->gen)) != NULL)
		ipc_link_send(link, type, seq, 0, body, len);
}

static void
touch(struct walsvc *ws, struct stream *s)
{
	if (s->touched)
		return;
	s->touched = 1;
	s->next_touched = ws->touched;
	ws->touched = s;
}

/*
 * Commit at the end of this turn, unless the last commit ended less than
 * a gap ago: then at that mark.  Under light load every append is
 * committed at once.  Under steady load commits come at most every
 * COMMIT_GAP_US; and when the last group held two records or more (the
 * appends come faster than the commits), a group smaller than
 * COMMIT_GROUP waits up to COMMIT_WAIT_US after the last commit for more,
 * unless a worker said that a client waits on it (WAL_SYNC: its window
 * is full, so no more will come from it before this commit).
 * Each wait saves an fdatasync and two nng messages per worker
 * (PostgreSQL's commit_delay, applied only when the log is busy); a
 * group that reaches COMMIT_GROUP goes at once, so that a full log does
 * not wait (docs/architecture.md, "Coalescing across turns").
 */
static void
schedule_commit(struct walsvc *ws)
{
	struct timeval	 tv;
	int64_t		 gap, wait;

	gap = ws->group_records >= COMMIT_GROUP || ws->last_group < 2 ||
	    ws->commit_asked ? COMMIT_GAP_US : COMMIT_WAIT_US;
	if (ws->commit_pending && ws->commit_gap <= gap)
		return;
	ws->commit_pending = 1;
	ws->commit_gap = gap;
	wait = ws->last_commit + gap - (int64_t)clock_mono_us();
	if (wait <= 0) {
		event_del(ws->commit_ev);
		event_active(ws->commit_ev, 0, 0);
		return;
	}
	tv.tv_sec = 0;
	tv.tv_usec = (suseconds_t)wait;
	event_add(ws->commit_ev, &tv);
}

static void
set_paused(struct walsvc *ws, int paused)
{
	if (ws->paused == paused)
		return;
	ws->paused = paused;
	ipc_endpoint_pause(ws->endpoint, paused);
	if (paused)
		log_notice("log write buffer full; pausing intake",
		    "pending_bytes=%zu", wal_pending_bytes(ws->wal));
}

/* Is a worker batch from the slot's current incarnation? */
static int
sender_current(struct walsvc *ws, const struct ipc_identity *id)
{
	const struct proc_peer	*peer;

	if (id->role == IPC_ROLE_TOOL)
		return 1;
	if (id->role != IPC_ROLE_WORKER || id->slot >= ws->proc->nworkers)
		return 0;
	peer = proc_peer(ws->proc, IPC_ROLE_WORKER, id->slot);
	/* a newer generation is a restart the peers table has not shown
	 * us yet; an older one, or the current one once it is down, is a
	 * dead incarnation's leftovers: nobody was told they are durable,
	 * and its sessions were handed on as if they never came */
	return peer == NULL || id->gen > peer->gen ||
	    (id->gen == peer->gen && peer->up);
}

/* The highest sequence of a worker's stream applied so far. */
uint64_t
append_stream_applied(struct walsvc *ws, uint16_t slot, uint64_t gen)
{
	struct ipc_identity	 id = { IPC_ROLE_WORKER, slot, gen };
	struct stream		*s = stream_get(ws, &id);

	return s ? s->highest : 0;
}

/*
 * walsvc's own records (a session opened, offline, ended): appended to
 * the pending group commit and applied at once.  Returns the LSN, or 0
 * when the log refused it (out of memory).
 */
uint64_t
walsvc_append(struct walsvc *ws, uint8_t type, const void *payload,
    size_t len)
{
	struct wal_record	 wr;
	int			 rv;

	memset(&wr, 0, sizeof(wr));
	wr.type = type;
	wr.origin.role = IPC_ROLE_WALSVC;
	wr.origin.slot = 0;
	wr.origin.generation = ws->proc->self.gen;
	wr.origin.sequence = ws->own_seq + 1;
	wr.payload = payload;
	wr.length = (uint32_t)len;
	if ((rv = wal_append(ws->wal, &wr)) != WAL_OK) {
		log_error("cannot append to the log", "type=%s error=\"%s\"",
		    wal_type_name(type), rv < 0 ? strerror(-rv) : "duplicate");
		return 0;
	}
	ws->own_seq++;
	ws->appends++;
	ws->group_records++;
	index_apply(ws->index, &wr);
	sessions_apply(ws, &wr);
	schedule_commit(ws);
	return wr.lsn;
}

static void
handle_append(struct walsvc *ws, const struct ipc_batch *batch,
    const struct ipc_record *rec)
{
	static struct log_ratelimit	 rl;
	struct wal_record		 wr;
	struct stream			*s;
	int				 rv;

	if (rec->len < 1 || rec->seq == 0 || wal_type_name(rec->body[0]) ==
	    NULL) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed append dropped",
		    "from=%s/%u len=%u seq=%llu",
		    ipc_role_name(batch->sender.role), batch->sender.slot,
		    rec->len, (unsigned long long)rec->seq);
		return;
	}
	if ((s = stream_get(ws, &batch->sender)) == NULL) {
		log_limited(&rl, LOG_LEVEL_ERROR, "out of memory", "");
		return;
	}
	if (rec->seq <= s->highest) {
		/* a resend of what we have: the next watermark says how far */
		ws->duplicates++;
		touch(ws, s);
		return;
	}
	if (rec->seq > s->highest + 1) {
		if (!s->resend_asked) {
			s->resend_asked = 1;
			touch(ws, s);
			reply(ws, s, IPC_WAL_RESEND, s->highest + 1, NULL, 0);
		}
		return;
	}
	memset(&wr, 0, sizeof(wr));
	wr.type = rec->body[0];
	wr.origin.role = batch->sender.role;
	wr.origin.slot = batch->sender.slot;
	wr.origin.generation = batch->sender.gen;
	wr.origin.sequence = rec->seq;
	wr.payload = rec->body + 1;
	wr.length = rec->len - 1;
	rv = wal_append(ws->wal, &wr);
	if (rv == WAL_DUPLICATE) {
		ws->duplicates++;
		return;
	}
	if (rv < 0) {
		log_limited(&rl, LOG_LEVEL_WARN, "append refused", "from=%s/%u "
		    "seq=%llu error=\"%s\"", ipc_role_name(wr.origin.role),
		    wr.origin.slot, (unsigned long long)rec->seq, strerror(-rv));
		return;
	}
	s->highest = rec->seq;
	ws->appends++;
	ws->group_records++;
	/* the index transaction commits only once the log is synced */
	index_apply(ws->index, &wr);
	ws->applying_received = rec->corr;
	sessions_apply(ws, &wr);
	ws->applying_received = 0;
	touch(ws, s);
	schedule_commit(ws);
	if (wal_pending_bytes(ws->wal) > ws->pending_limit)
		set_paused(ws, 1);
}

void
walsvc_dispatch(struct ipc_batch *batch, void *arg)
{
	static struct log_ratelimit	 rl;
	struct walsvc			*ws = arg;
	struct ipc_record		 rec;
	int				 rv;

	if (!sender_current(ws, &batch->sender)) {
		log_limited(&rl, LOG_LEVEL_NOTICE, "batch from a stale or "
		    "unknown sender dropped", "role=%s slot=%u gen=%llu",
		    ipc_role_name(batch->sender.role), batch->sender.slot,
		    (unsigned long long)batch->sender.gen);
		return;
	}
	while ((rv = ipc_batch_next(batch, &rec)) == 1) {
		switch (rec.type) {
		case IPC_WAL_APPEND:
			handle_append(ws, batch, &rec);
			break;
		case IPC_REG_CLAIM:
		case IPC_REG_RELEASE:
		case IPC_REG_SYNC:
			registry_handle(ws, batch, &rec);
			break;
		case IPC_RET_LOOKUP:
			retained_lookup(ws, batch, &rec);
			break;
		case IPC_STORED_ASK:
			stored_ask(ws, batch, &rec);
			break;
		case IPC_WAL_SYNC:
			/* a client waits on this commit: no larger group */
			if (rec.len != 0)
				goto bad;
			ws->commit_asked = 1;
			if (ws->commit_pending)
				schedule_commit(ws);
			break;
		default:
		bad:
			log_limited(&rl, LOG_LEVEL_WARN, "unexpected message "
			    "dropped", "from=%s/%u type=0x%04x len=%u",
			    ipc_role_name(batch->sender.role),
			    batch->sender.slot, rec.type, rec.len);
		}
	}
	if (rv < 0)
		log_limited(&rl, LOG_LEVEL_WARN, "malformed batch", "from=%s/%u "
		    "error=\"%s\"", ipc_role_name(batch->sender.role),
		    batch->sender.slot, ipc_strerror(rv));
	/* duplicates owe a watermark even when nothing new was appended */
	if (ws->touched)
		schedule_commit(ws);
	/* releases and lookups waiting for these appends; credit the acks
	 * gave back */
	registry_progress(ws);
	retained_progress(ws);
	sessions_durable(ws);
}

/*
 * Start-up: bring the index up to the end of the log.  Records are
 * applied idempotently, so starting from an older position than needed
 * (the index committed, then a crash lost its last transactions) is
 * harmless.
 */
int
append_replay(struct walsvc *ws)
{
	struct wal_iter		*it;
	struct wal_record	 rec;
	struct progress		 pg;
	uint64_t		 n = 0, last = ws->applied_lsn;
	int			 rv;

	progress_start(&pg, "replaying the log into the index");
	if ((rv = wal_iter_open(&it, ws->wal, ws->applied_lsn + 1)) != 0) {
		log_error("cannot read the log for replay", "error=\"%s\"",
		    strerror(-rv));
		return -1;
	}
	while ((rv = wal_iter_next(it, &rec)) == 1) {
		if (index_apply(ws->index, &rec) == -1) {
			rv = -EIO;
			break;
		}
		sessions_apply(ws, &rec);
		last = rec.lsn;
		progress_note(&pg, ++n, wal_written_lsn(ws->wal) -
		    ws->applied_lsn);
	}
	wal_iter_close(it);
	if (rv < 0) {
		log_error("log replay failed", "error=\"%s\"", strerror(-rv));
		return -1;
	}
	sessions_flush(ws);
	if (n > 0 && index_commit(ws->index, last, (uint64_t)
	    clock_wall_ms()) == -1)
		return -1;
	ws->applied_lsn = last;
	ws->shippable_lsn = wal_written_lsn(ws->wal);
	log_info("index replayed from the log", "records=%llu applied_lsn=%llu",
	    (unsigned long long)n, (unsigned long long)last);
	return 0;
}

static void
report_failure(struct walsvc *ws, const char *what, int err)
{
	struct stream	*s;
	uint8_t		 body[4];

	if (!ws->failing)
		log_error("cannot write the message log; acknowledgements "
		    "stop until it can", "step=%s error=\"%s\" pending_bytes=%zu",
		    what, strerror(err), wal_pending_bytes(ws->wal));
	ws->failing = 1;
	buf_store_u32(body, (uint32_t)err);
	for (s = ws->touched; s; s = s->next_touched)
		if (s->highest > s->durable)
			reply(ws, s, IPC_WAL_REFUSED, s->durable + 1, body, 4);
	if (!evtimer_pending(ws->retry_timer, NULL)) {
		struct timeval tv = { 0, RETRY_MS * 1000 };
		evtimer_add(ws->retry_timer, &tv);
	}
}

/*
 * The index transaction holds the effects of every record applied so
 * far; it commits only when all of them are synced, so that the index is
 * never ahead of what a power loss leaves of the log.
 */
static void
commit_index(struct walsvc *ws)
{
	uint64_t	 synced = wal_synced_lsn(ws->wal);

	/* a failed index waits for compact.c to restart walsvc */
	if (synced == 0 || synced + 1 != wal_next_lsn(ws->wal) ||
	    !index_usable(ws->index))
		return;
	sessions_flush(ws);
	if (index_commit(ws->index, synced, (uint64_t)clock_wall_ms()) ==
	    0)
		ws->applied_lsn = synced;
}

/*
 * Group commit: write (and sync) everything pending, then acknowledge.
 * Returns 0 when every pending record is durable as the mode requires.
 */
static int
commit(struct walsvc *ws)
{
	struct stream	*s, *next;
	uint8_t		 body[8];
	uint64_t	 lsn;
	int		 rv;

	if ((rv = wal_write(ws->wal)) < 0) {
		report_failure(ws, "write", -rv);
		return -1;
	}
	if (ws->mode == WAL_SYNC_ALWAYS && wal_synced_lsn(ws->wal) <
	    wal_written_lsn(ws->wal) && (rv = stats_sync(ws)) < 0) {
		report_failure(ws, "fsync", -rv);
		return -1;
	}
	if (ws->failing)
		log_notice("message log writable again; acknowledging", "");
	ws->failing = 0;
	ws->commits++;
	ws->last_group = ws->group_records;
	ws->group_records = 0;
	ws->commit_asked = 0;
	ws->last_commit = (int64_t)clock_mono_us();
	lsn = ws->mode == WAL_SYNC_ALWAYS ? wal_synced_lsn(ws->wal) :
	    wal_written_lsn(ws->wal);
	buf_store_u64(body, lsn);
	for (s = ws->touched; s; s = next) {
		next = s->next_touched;
		s->touched = 0;
		s->resend_asked = 0;
		s->next_touched = NULL;
		s->durable = s->highest;
		reply(ws, s, IPC_WAL_DURABLE, s->durable, body, sizeof(body));
	}
	ws->touched = NULL;
	set_paused(ws, 0);
	if (lsn > ws->shippable_lsn)
		ws->shippable_lsn = lsn;
	if (ws->mode == WAL_SYNC_ALWAYS)
		commit_index(ws);
	sessions_durable(ws);
	retained_progress(ws);
	return 0;
}

static void
commit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct walsvc	*ws = arg;

	ws->commit_pending = 0;
	if (!ws->failing)
		commit(ws);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct walsvc	*ws = arg;

	commit(ws);
}

/* wal-sync=interval and none: data is written at once, synced here. */
static void
sync_cb(evutil_socket_t fd, short what, void *arg)
{
	static int	 ticks;
	struct walsvc	*ws = arg;
	int		 rv;

	/* what waits for the commit gap is written first, then all synced */
	if (!ws->failing && wal_written_lsn(ws->wal) + 1 < wal_next_lsn(ws->wal))
		commit(ws);
	if (wal_synced_lsn(ws->wal) < wal_written_lsn(ws->wal) &&
	    (rv = stats_sync(ws)) < 0) {
		/* the records went back to pending: write them again */
		report_failure(ws, "fsync", -rv);
	}
	/* under always each group commit commits the index; the clock
	 * stays current when nothing happens */
	if (!ws->failing)
		commit_index(ws);
	if (++ticks * (ws->mode == WAL_SYNC_ALWAYS ? CHECKPOINT_S * 1000 :
	    config_num(&ws->proc->cfg, OPT_storage_wal_sync_interval)) >=
	    CHECKPOINT_S * 1000) {
		ticks = 0;
		index_checkpoint(ws->index);
	}
}

static enum wal_sync_mode
configured_mode(const struct walsvc *ws)
{
	return (enum wal_sync_mode)config_num(&ws->proc->cfg,
	    OPT_storage_wal_sync);
}

static void
arm_sync_timer(struct walsvc *ws)
{
	struct timeval	 tv;
	int64_t		 ms;

	ms = ws->mode == WAL_SYNC_ALWAYS ? CHECKPOINT_S * 1000 :
	    config_num(&ws->proc->cfg, OPT_storage_wal_sync_interval);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	event_del(ws->sync_timer);
	event_add(ws->sync_timer, &tv);
}

int
append_start(struct walsvc *ws)
{
	ws->mode = configured_mode(ws);
	ws->commit_ev = event_new(ws->base, -1, 0, commit_cb, ws);
	ws->retry_timer = evtimer_new(ws->base, retry_cb, ws);
	ws->sync_timer = event_new(ws->base, -1, EV_PERSIST, sync_cb, ws);
	if (ws->commit_ev == NULL || ws->retry_timer == NULL ||
	    ws->sync_timer == NULL ||
	    event_priority_set(ws->commit_ev, EVLOOP_PRIO_FLUSH) == -1)
		return -1;
	arm_sync_timer(ws);
	return 0;
}

void
append_reload(struct walsvc *ws)
{
	enum wal_sync_mode	 mode = configured_mode(ws);

	if (mode != ws->mode)
		log_notice("wal-sync changed", "mode=%s",
		    config_text(&ws->proc->cfg, OPT_storage_wal_sync));
	/* leaving interval/none: make what was only written durable now */
	if (mode == WAL_SYNC_ALWAYS && ws->mode != WAL_SYNC_ALWAYS)
		wal_sync(ws->wal);
	ws->mode = mode;
	arm_sync_timer(ws);
}

/* Orderly stop: whatever is pending is written and synced first. */
void
append_stop(struct walsvc *ws)
{
	int	 rv;

	if ((rv = wal_write(ws->wal)) < 0 || (rv = wal_sync(ws->wal)) < 0)
		log_error("final log write failed; unacknowledged appends "
		    "lost", "error=\"%s\"", strerror(-rv));
	else {
		commit(ws);
		commit_index(ws);
	}
}
