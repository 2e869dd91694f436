/*
 * registry.c - the client-id registry: which connection, on which
 * worker incarnation, holds each client id.
 *
 * MQTT allows one connection per client id; with connections spread
 * over workers, walsvc decides (protocol in worker/connect.c):
 *   - REG_CLAIM from (slot, gen, conn) for id X: decided at once when X
 *     is free, held by the same connection (a repeat), or held by a dead
 *     worker incarnation; otherwise the holder's worker gets REG_KICK,
 *     and the claim is decided when that worker answers REG_RELEASE (or
 *     after REGISTRY_KICK_MS, if it never does).  A claim that arrives
 *     while another one waits for the same id replaces it: the newest
 *     connection wins, the one it displaced is kicked too.  Deciding
 *     means asking sessions.c what the connection's session is; it
 *     writes that down and sends REG_GRANTED once it is durable.
 *     When the registry already holds mqtt.max-connections clients, a
 *     claim for a new id is answered REG_REFUSED (0x97, quota exceeded).
 *   - REG_RELEASE: the connection closed.  It names the last record the
 *     worker appended for it (acknowledgements of its client); the
 *     release is handled once walsvc has applied that record, so the
 *     session's next holder starts from everything its last one did.
 *     Then the session goes offline (or ends) and the id is free or
 *     passes to the claim waiting for it.
 *   - REG_SYNC: after a walsvc restart each worker lists its connected
 *     clients, with the stored session and epoch each holds; a listed
 *     connection whose session moved on meanwhile is kicked.  Until
 *     every running worker has sent its whole list (the last record says
 *     so and how many clients it named), or REGISTRY_SYNC_MS passed,
 *     claims wait: a session must not be granted to a new connection
 *     while an old one may still hold it.  walsvc asks for the lists
 *     (REG_SYNC_ASK), and asks again every REGISTRY_ASK_MS a worker
 *     whose whole list has not come: nng drops what is queued on a link
 *     that starts over, and a worker starts its log link over when the
 *     log has been silent, as it is while walsvc restarts.
 * The registry lives in memory: it describes connections, which do not
 * survive the processes, and is rebuilt from the workers' lists.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ipc_link.h"
#include "log.h"
#include "walrec.h"
#include "walsvc.h"

#define REGISTRY_KICK_MS	3000
#define REGISTRY_SYNC_MS	2000
#define REGISTRY_ASK_MS		500

/* A claim waiting for the holder to go (a takeover). */
struct reg_wait {
	struct reg_holder	 holder;
	struct claim_params	 params;
	int64_t			 since;		/* monotonic ms */
};

/* One per connected client id: kept small, there are as many. */
struct reg_entry {
	struct reg_entry	*next;
	struct reg_holder	 holder;
	struct reg_wait		*waiting;	/* NULL: nobody waits */
	uint8_t			 ending;	/* the session ends with the
						   holder (session-delete) */
	uint16_t		 len;
	char			 id[];
};

/* A claim waiting for the sync window, or a release for its appends. */
struct parked {
	struct parked		*next;
	struct reg_holder	 holder;
	struct claim_params	 params;	/* a claim */
	int64_t			 expiry;	/* a release: -1 none */
	uint64_t		 last_seq;	/* a release */
	uint64_t		 sent;		/* a release: the highest sequence
					   its client was sent */
	uint16_t		 len;
	uint8_t			 id[];
};

struct parked_list {
	struct parked		*head, *tail;
};

/* One worker slot's list of clients, after a restart (REG_SYNC). */
struct reg_list {
	uint64_t		 gen;		/* whose whole list came (0:
						   none) */
	uint64_t		 last_seq;	/* its last append then */
	uint64_t		 asked_gen;	/* whom we asked last */
	int64_t			 asked_at;	/* when (monotonic ms) */
	unsigned		 asks;
	uint64_t		 receiving;	/* the ask being answered */
	uint64_t		 receiving_gen;
	uint32_t		 received;	/* clients of it so far */
};

struct registry {
	struct reg_entry	**buckets;
	size_t			  nbuckets;
	size_t			  count;
	struct event		 *timer;
	/* after a restart: the workers' lists */
	int			  syncing;
	int			  peers_seen;
	int64_t			  sync_deadline;
	struct reg_list		 *lists;	/* by slot */
	uint64_t		  last_ask;	/* id of the latest ask */
	struct event		 *ask_timer;
	struct parked_list	  claims;	/* wait for the lists */
	struct parked_list	  releases;	/* wait for their appends */
};

static void	claim(struct walsvc *, const struct reg_holder *,
		    const uint8_t *, size_t, struct claim_params *);
static void	sync_check(struct walsvc *);

/* A claim's will is its own copy, freed with the claim. */
static void
params_free(struct claim_params *cp)
{
	free(cp->will);
	cp->will = NULL;
}

static void
waiting_clear(struct reg_entry *e)
{
	if (e->waiting == NULL)
		return;
	params_free(&e->waiting->params);
	free(e->waiting);
	e->waiting = NULL;
}

static int
waiting_is(const struct reg_entry *e, const struct reg_holder *h)
{
	return e->waiting != NULL && reg_same(&e->waiting->holder, h);
}

static uint32_t
hash_id(const void *p, size_t len)
{
	const uint8_t	*s = p;
	uint32_t	 h = 2166136261u;

	while (len--)
		h = (h ^ *s++) * 16777619u;
	return h;
}

static struct reg_entry **
find(struct registry *r, const void *id, size_t len)
{
	struct reg_entry	**ep;

	for (ep = &r->buckets[hash_id(id, len) & (r->nbuckets - 1)]; *ep;
	    ep = &(*ep)->next)
		if ((*ep)->len == len && memcmp((*ep)->id, id, len) == 0)
			break;
	return ep;
}

static void
grow(struct registry *r)
{
	struct reg_entry	**nb, *e, *next;
	size_t			  n = r->nbuckets * 2, i, h;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < r->nbuckets; i++)
		for (e = r->buckets[i]; e; e = next) {
			next = e->next;
			h = hash_id(e->id, e->len) & (n - 1);
			e->next = nb[h];
			nb[h] = e;
		}
	free(r->buckets);
	r->buckets = nb;
	r->nbuckets = n;
}

static int
holder_live(struct walsvc *ws, const struct reg_holder *h)
{
	const struct proc_peer	*p;

	p = proc_peer(ws->proc, IPC_ROLE_WORKER, h->slot);
	/* newer than the peers table knows: started, not yet announced */
	return p == NULL || h->gen > p->gen || (p->up && p->gen == h->gen);
}

static void
send_to(struct walsvc *ws, const struct reg_holder *h, uint16_t type,
    const void *body, size_t len)
{
	struct ipc_link	*link;

	if ((link = walsvc_reply_link(ws, IPC_ROLE_WORKER, h->slot,
	    h->gen)) != NULL)
		ipc_link_send(link, type, 0, h->conn, body, len);
}

static void
refuse(struct walsvc *ws, const struct reg_holder *h, uint8_t reason)
{
	send_to(ws, h, IPC_REG_REFUSED, &reason, 1);
}

/* The id is h's now: its session decides the rest. */
static void
decide(struct walsvc *ws, const struct reg_holder *h, const void *id,
    size_t len, const struct claim_params *cp)
{
	if (sessions_connect(ws, h, id, len, cp) == -1) {
		log_error("cannot write the session of a connecting client; "
		    "refused", "client=%.*s", (int)len, (const char *)id);
		refuse(ws, h, 0x88);	/* server unavailable */
	}
}

/* Connection h is to close: reason 0x8E (taken over) or 0x98. */
static void
kick_id(struct walsvc *ws, const struct reg_holder *h, const void *id,
    size_t len, uint8_t reason)
{
	struct buf	 b = BUF_INITIALIZER;

	buf_add_u8(&b, reason);
	buf_add(&b, id, len);
	if (!buf_failed(&b))
		send_to(ws, h, IPC_REG_KICK, b.data, b.len);
	buf_free(&b);
}

static void
kick(struct walsvc *ws, const struct reg_entry *e, const struct reg_holder *h)
{
	kick_id(ws, h, e->id, e->len, 0x8e);	/* session taken over */
}

static void
remove_entry(struct registry *r, struct reg_entry **ep)
{
	struct reg_entry	*e = *ep;

	*ep = e->next;
	waiting_clear(e);
	free(e);
	r->count--;
}

static struct reg_entry *
add_entry(struct registry *r, const void *id, size_t len,
    const struct reg_holder *h)
{
	struct reg_entry	*e, **ep;

	if (r->count >= r->nbuckets)
		grow(r);
	if ((e = calloc(1, sizeof(*e) + len + 1)) == NULL)
		return NULL;
	e->holder = *h;
	e->len = (uint16_t)len;
	memcpy(e->id, id, len);
	ep = &r->buckets[hash_id(id, len) & (r->nbuckets - 1)];
	e->next = *ep;
	*ep = e;
	r->count++;
	return e;
}

static struct parked *
park(struct parked_list *l, const struct reg_holder *h, const void *id,
    size_t len)
{
	struct parked	*p;

	if ((p = calloc(1, sizeof(*p) + len)) == NULL)
		return NULL;
	p->holder = *h;
	p->len = (uint16_t)len;
	memcpy(p->id, id, len);
	if (l->tail)
		l->tail->next = p;
	else
		l->head = p;
	l->tail = p;
	return p;
}

/* Decided, refused or kept: the claim (and its will) is taken over. */
static void
claim(struct walsvc *ws, const struct reg_holder *h, const uint8_t *id,
    size_t len, struct claim_params *cp)
{
	static struct log_ratelimit	 refused_rl;
	struct registry		*r = ws->registry;
	struct reg_entry	**ep, *e;
	struct parked		*p;

	if (r->syncing) {
		if ((p = park(&r->claims, h, id, len)) == NULL) {
			refuse(ws, h, 0x88);
			params_free(cp);
		} else
			p->params = *cp;
		return;
	}
	ep = find(r, id, len);
	if ((e = *ep) == NULL) {
		/* mqtt.max-connections counts clients over all workers, and
		 * only the registry sees them all */
		if (r->count >= (size_t)config_num(&ws->proc->cfg,
		    OPT_mqtt_max_connections)) {
			refuse(ws, h, 0x97);	/* quota exceeded */
			log_limited(&refused_rl, LOG_LEVEL_WARN, "connection "
			    "limit reached; client refused", "clients=%zu "
			    "max=%lld", r->count, (long long)config_num(
			    &ws->proc->cfg, OPT_mqtt_max_connections));
		} else if (add_entry(r, id, len, h) == NULL) {
			log_error("registry out of memory; claim refused", "");
			refuse(ws, h, 0x88);
		} else
			decide(ws, h, id, len, cp);
		params_free(cp);
		return;
	}
	if (reg_same(&e->holder, h) || !holder_live(ws, &e->holder)) {
		/* a dead holder's session and will are ended by the decision */
		e->holder = *h;
		decide(ws, h, id, len, cp);
		params_free(cp);
		return;
	}
	if (waiting_is(e, h)) {
		params_free(cp);
		return;		/* a repeat while it waits */
	}
	if (e->waiting != NULL) {
		/* the newer claim displaces it */
		kick(ws, e, &e->waiting->holder);
		waiting_clear(e);
	}
	if ((e->waiting = calloc(1, sizeof(*e->waiting))) == NULL) {
		log_warnx("out of memory: claim not taken", "client=%.*s",
		    (int)len, (const char *)id);
		params_free(cp);
		return;		/* the worker asks again */
	}
	e->waiting->holder = *h;
	e->waiting->params = *cp;
	e->waiting->since = clock_mono_ms();
	kick(ws, e, &e->holder);
	log_info("client id taken over", "client=%.*s from=%u/%llu to=%u",
	    (int)len, (const char *)id, e->holder.slot,
	    (unsigned long long)e->holder.conn, h->slot);
}

/* The holder is gone: the waiting claim, if any, gets the id. */
static void
pass_on(struct walsvc *ws, struct reg_entry **ep)
{
	struct reg_entry	*e = *ep;
	struct reg_wait		*wt = e->waiting;

	e->ending = 0;
	if (wt != NULL && holder_live(ws, &wt->holder)) {
		e->waiting = NULL;
		e->holder = wt->holder;
		decide(ws, &e->holder, e->id, e->len, &wt->params);
		params_free(&wt->params);
		free(wt);
	} else
		remove_entry(ws->registry, ep);
}

/*
 * Connection h is gone (released, or its worker died: expiry -1 and
 * sent UINT64_MAX, not known).
 */
static void
holder_gone(struct walsvc *ws, struct reg_entry **ep, int64_t expiry,
    uint64_t sent)
{
	struct reg_entry	*e = *ep;

	if (e->ending)
		expiry = 0;	/* deleted by an operator: it ends now */
	wills_gone(ws, &e->holder, (const uint8_t *)e->id, e->len, expiry);
	sessions_disconnect(ws, &e->holder, (const uint8_t *)e->id, e->len,
	    expiry, sent);
	pass_on(ws, ep);
}

static void
release(struct walsvc *ws, const struct reg_holder *h, const void *id,
    size_t len, int64_t expiry, uint64_t sent)
{
	struct reg_entry	**ep = find(ws->registry, id, len), *e = *ep;

	if (e == NULL)
		return;
	if (reg_same(&e->holder, h))
		holder_gone(ws, ep, expiry, sent);
	else if (waiting_is(e, h))
		waiting_clear(e);
}

/*
 * Releases wait, in order, until their worker's appends are applied up
 * to the one each names; a dead worker's never will be (peers_changed
 * drops them: the death is handled there).
 */
void
registry_progress(struct walsvc *ws)
{
	struct registry	*r = ws->registry;
	struct parked	*p;

	while ((p = r->releases.head) != NULL) {
		if (append_stream_applied(ws, p->holder.slot, p->holder.gen) <
		    p->last_seq)
			break;
		r->releases.head = p->next;
		if (r->releases.head == NULL)
			r->releases.tail = NULL;
		release(ws, &p->holder, p->id, p->len, p->expiry, p->sent);
		free(p);
	}
	sync_check(ws);
}

static void
handle_release(struct walsvc *ws, const struct reg_holder *h,
    const struct ipc_record *rec)
{
	static struct log_ratelimit	 rl;
	struct registry			*r = ws->registry;
	struct buf_reader		 rd;
	struct parked			*p;
	uint8_t				 flags;
	uint32_t			 expiry;
	uint64_t			 last, sent;
	size_t				 len;

	buf_reader_init(&rd, rec->body, rec->len);
	flags = buf_read_u8(&rd);
	buf_read_skip(&rd, 3);
	expiry = buf_read_u32(&rd);
	last = buf_read_u64(&rd);
	sent = buf_read_u64(&rd);
	len = buf_read_left(&rd);
	if (rd.failed || len == 0 || len > 65535) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed release dropped",
		    "slot=%u len=%u", h->slot, rec->len);
		return;
	}
	if ((p = park(&r->releases, h, rec->body + IPC_RELEASE_HEADER,
	    len)) == NULL) {
		log_error("registry out of memory; release handled early", "");
		release(ws, h, rec->body + IPC_RELEASE_HEADER, len,
		    flags & IPC_RELEASE_EXPIRY ? (int64_t)expiry : -1, sent);
		return;
	}
	p->expiry = flags & IPC_RELEASE_EXPIRY ? (int64_t)expiry : -1;
	p->last_seq = last;
	p->sent = sent;
	registry_progress(ws);
}

static void
handle_claim(struct walsvc *ws, const struct reg_holder *h,
    const struct ipc_record *rec)
{
	static struct log_ratelimit	 rl;
	struct claim_params		 cp;
	struct buf_reader		 rd;
	const uint8_t			*id;
	uint16_t			 len;

	if (rec->len <= IPC_CLAIM_HEADER || (!(rec->body[0] &
	    IPC_CLAIM_WILL) && rec->len > IPC_CLAIM_HEADER + 65535)) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed claim dropped",
		    "slot=%u len=%u", h->slot, rec->len);
		return;
	}
	memset(&cp, 0, sizeof(cp));
	cp.clean_start = (rec->body[0] & IPC_CLAIM_CLEAN_START) != 0;
	cp.level = rec->body[1];
	cp.window = buf_load_u16(rec->body + 2);
	cp.expiry = buf_load_u32(rec->body + 4);
	if (!(rec->body[0] & IPC_CLAIM_WILL)) {
		claim(ws, h, rec->body + IPC_CLAIM_HEADER, rec->len -
		    IPC_CLAIM_HEADER, &cp);
		return;
	}
	/* with a will: u16 id length, id, u32 delay, the will */
	buf_reader_init(&rd, rec->body + IPC_CLAIM_HEADER, rec->len -
	    IPC_CLAIM_HEADER);
	len = buf_read_u16(&rd);
	id = buf_read_ptr(&rd, len);
	cp.will_delay = buf_read_u32(&rd);
	if (rd.failed || len == 0 || buf_read_left(&rd) < 2) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed claim dropped",
		    "slot=%u len=%u", h->slot, rec->len);
		return;
	}
	cp.will_len = (uint32_t)buf_read_left(&rd);
	if ((cp.will = malloc(cp.will_len)) == NULL) {
		log_error("registry out of memory; claim refused", "");
		refuse(ws, h, 0x88);
		return;
	}
	memcpy(cp.will, buf_read_ptr(&rd, cp.will_len), cp.will_len);
	claim(ws, h, id, len, &cp);
}

/* The sync window is over: sessions nobody named go offline, claims go on. */
static void
sync_finish(struct walsvc *ws, const char *why)
{
	struct registry	*r = ws->registry;
	struct parked	*p;

	if (!r->syncing)
		return;
	r->syncing = 0;
	event_del(r->ask_timer);
	log_info("client registry in step with the workers", "why=%s "
	    "clients=%zu sessions=%zu", why, r->count, sessions_count(ws));
	sessions_sync_done(ws);
	while ((p = r->claims.head) != NULL) {
		r->claims.head = p->next;
		claim(ws, &p->holder, p->id, p->len, &p->params);
		free(p);
	}
	r->claims.tail = NULL;
}

/* Every running worker has sent its whole list? */
static void
sync_check(struct walsvc *ws)
{
	struct registry		*r = ws->registry;
	const struct proc_peer	*p;
	size_t			 i;

	if (!r->syncing || !r->peers_seen)
		return;
	for (i = 0; i < ws->proc->npeers; i++) {
		p = &ws->proc->peers[i];
		/* its list, and the appends it made before (a DISCONNECT's
		 * will clear is one) */
		if (p->role == IPC_ROLE_WORKER && p->up &&
		    (p->slot >= ws->proc->nworkers ||
		    r->lists[p->slot].gen != p->gen ||
		    append_stream_applied(ws, p->slot, p->gen) <
		    r->lists[p->slot].last_seq))
			return;
	}
	sync_finish(ws, "every worker listed its clients");
}

/*
 * Ask every running worker whose whole list has not come for it; again
 * after REGISTRY_ASK_MS: an ask or its answer may be lost, as may a
 * batch of a long answer (its count then does not match).
 */
static void
ask_lists(struct walsvc *ws)
{
	struct registry		*r = ws->registry;
	const struct proc_peer	*p;
	struct reg_holder	 h;
	struct reg_list		*l;
	int64_t			 now = clock_mono_ms();
	size_t			 i;

	if (!r->syncing || !r->peers_seen)
		return;
	for (i = 0; i < ws->proc->npeers; i++) {
		p = &ws->proc->peers[i];
		if (p->role != IPC_ROLE_WORKER || !p->up ||
		    p->slot >= ws->proc->nworkers)
			continue;
		l = &r->lists[p->slot];
		if (l->gen == p->gen)
			continue;
		if (l->asked_gen == p->gen) {
			if (now - l->asked_at < REGISTRY_ASK_MS)
				continue;
			log_notice("a worker's list of clients has not come "
			    "whole; asking again", "slot=%u gen=%llu asks=%u",
			    p->slot, (unsigned long long)p->gen, l->asks);
		} else
			l->asks = 0;
		l->asked_gen = p->gen;
		l->asked_at = now;
		l->asks++;
		h.slot = p->slot;
		h.gen = p->gen;
		h.conn = ++r->last_ask;
		send_to(ws, &h, IPC_REG_SYNC_ASK, NULL, 0);
	}
}

static void
ask_again(evutil_socket_t fd, short what, void *arg)
{
	ask_lists(arg);
}

/*
 * One record of a worker's list (corr: the ask it answers).  Its
 * clients are taken as they come; the list counts once its last record
 * came and the number of clients it names is the number taken for that
 * ask.  A list that came whole once for a worker incarnation is not
 * taken again (we asked twice, both answers came).
 */
static void
sync_list(struct walsvc *ws, const struct reg_holder *from,
    const struct ipc_record *rec)
{
	static struct log_ratelimit	 rl;
	struct registry			*r = ws->registry;
	struct buf_reader		 rd;
	struct reg_holder		 h = *from;
	struct reg_entry		**ep, *e;
	struct reg_list			*l;
	const uint8_t			*id;
	uint64_t			 sid, will, last;
	uint32_t			 epoch, count;
	uint16_t			 len, window;
	uint8_t				 flags;

	if (from->slot >= ws->proc->nworkers) {
		log_limited(&rl, LOG_LEVEL_WARN, "registry list from an "
		    "unknown worker slot", "slot=%u", from->slot);
		return;
	}
	l = &r->lists[from->slot];
	if (l->gen == from->gen)
		return;
	if (l->receiving != rec->corr || l->receiving_gen != from->gen) {
		l->receiving = rec->corr;
		l->receiving_gen = from->gen;
		l->received = 0;
	}
	buf_reader_init(&rd, rec->body, rec->len);
	flags = buf_read_u8(&rd);
	if (flags & IPC_SYNC_LAST) {
		/* the list is complete: u64 the worker's last append, u32
		 * the clients it named */
		last = buf_read_u64(&rd);
		count = buf_read_u32(&rd);
		if (rd.failed || buf_read_left(&rd) != 0) {
			log_limited(&rl, LOG_LEVEL_WARN, "malformed registry "
			    "list from worker", "slot=%u", h.slot);
			return;
		}
		if (count != l->received) {
			log_warnx("a worker's list of clients came incomplete; "
			    "asking again", "slot=%u gen=%llu named=%u "
			    "received=%u", from->slot,
			    (unsigned long long)from->gen, count, l->received);
			l->receiving = 0;
			l->asked_at = 0;
			ask_lists(ws);
			return;
		}
		l->gen = from->gen;
		l->last_seq = last;
		log_debug("worker listed its clients", "slot=%u gen=%llu "
		    "clients=%u asks=%u", from->slot,
		    (unsigned long long)from->gen, count, l->asks);
		sync_check(ws);
		return;
	}
	while (buf_read_left(&rd) > 0) {
		h.conn = buf_read_u64(&rd);
		buf_read_u16(&rd);	/* node: one node for now */
		window = buf_read_u16(&rd);
		epoch = buf_read_u32(&rd);
		sid = buf_read_u64(&rd);
		will = buf_read_u64(&rd);
		len = buf_read_u16(&rd);
		if ((id = buf_read_ptr(&rd, len)) == NULL || h.conn == 0 ||
		    len == 0) {
			log_limited(&rl, LOG_LEVEL_WARN, "malformed registry "
			    "list from worker", "slot=%u", h.slot);
			return;
		}
		l->received++;
		ep = find(r, id, len);
		if ((e = *ep) != NULL && !reg_same(&e->holder, &h) &&
		    holder_live(ws, &e->holder)) {
			kick(ws, e, &h);	/* a newer claim got it first */
			continue;
		}
		if (sessions_resync(ws, &h, id, len, sid, epoch, window) ==
		    -1) {
			/* its session moved on while walsvc was down */
			kick_id(ws, &h, id, len, 0x8e);
			continue;
		}
		wills_resync(ws, &h, id, len, will);
		if (e == NULL)
			add_entry(r, id, len, &h);
		else
			e->holder = h;
	}
}

void
registry_handle(struct walsvc *ws, const struct ipc_batch *batch,
    const struct ipc_record *rec)
{
	static struct log_ratelimit	 rl;
	struct reg_holder		 h;

	if (batch->sender.role != IPC_ROLE_WORKER) {
		log_limited(&rl, LOG_LEVEL_WARN, "registry message from a "
		    "non-worker dropped", "role=%s",
		    ipc_role_name(batch->sender.role));
		return;
	}
	h.slot = batch->sender.slot;
	h.gen = batch->sender.gen;
	h.conn = rec->corr;
	if (h.conn == 0 && rec->type != IPC_REG_SYNC) {
		log_limited(&rl, LOG_LEVEL_WARN, "registry message without a "
		    "connection dropped", "type=0x%04x", rec->type);
		return;
	}
	switch (rec->type) {
	case IPC_REG_CLAIM:
		handle_claim(ws, &h, rec);
		break;
	case IPC_REG_RELEASE:
		handle_release(ws, &h, rec);
		break;
	case IPC_REG_SYNC:
		if (rec->len < 1) {
			log_limited(&rl, LOG_LEVEL_WARN, "malformed registry "
			    "list dropped", "slot=%u", h.slot);
			return;
		}
		sync_list(ws, &h, rec);
		break;
	}
}

/* Entries of dead worker incarnations are released. */
void
registry_peers_changed(struct walsvc *ws)
{
	struct registry		*r = ws->registry;
	struct reg_entry	**ep;
	struct parked		**pp, *p;
	size_t			  i;

	/* the releases of a dead worker are handled as its death */
	for (pp = &r->releases.head, r->releases.tail = NULL; (p = *pp); ) {
		if (!holder_live(ws, &p->holder)) {
			*pp = p->next;
			free(p);
			continue;
		}
		r->releases.tail = p;
		pp = &p->next;
	}
	for (i = 0; i < r->nbuckets; i++) {
		ep = &r->buckets[i];
		while (*ep) {
			struct reg_entry *e = *ep;

			if (e->waiting != NULL &&
			    !holder_live(ws, &e->waiting->holder))
				waiting_clear(e);
			if (!holder_live(ws, &e->holder)) {
				holder_gone(ws, ep, -1, UINT64_MAX);
				if (*ep != e)
					continue;	/* removed */
			}
			ep = &e->next;
		}
	}
	r->peers_seen = 1;
	sync_check(ws);
	ask_lists(ws);
	registry_progress(ws);
}

/*
 * Once a second: a holder that never released gives way to the waiting
 * claim anyway; the sync window closes at its deadline.
 */
static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct walsvc		*ws = arg;
	struct registry		*r = ws->registry;
	struct reg_entry	**ep;
	int64_t			  now = clock_mono_ms();
	size_t			  i;

	if (r->syncing && now >= r->sync_deadline)
		sync_finish(ws, "time-out");
	for (i = 0; i < r->nbuckets; i++) {
		ep = &r->buckets[i];
		while (*ep) {
			struct reg_entry *e = *ep;

			if (e->waiting != NULL &&
			    now - e->waiting->since > REGISTRY_KICK_MS) {
				log_warnx("client id holder did not release; "
				    "taking over anyway", "client=%.*s slot=%u",
				    (int)e->len, e->id, e->holder.slot);
				holder_gone(ws, ep, -1, UINT64_MAX);
				if (*ep != e)
					continue;
			}
			ep = &e->next;
		}
	}
}

int
registry_start(struct walsvc *ws)
{
	struct registry	*r;
	struct timeval	 second = { 1, 0 };
	struct timeval	 ask = { 0, REGISTRY_ASK_MS * 1000 };

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	r->nbuckets = 1024;
	r->syncing = 1;
	r->sync_deadline = clock_mono_ms() + REGISTRY_SYNC_MS;
	if ((r->buckets = calloc(r->nbuckets, sizeof(*r->buckets))) == NULL ||
	    (r->lists = calloc(ws->proc->nworkers ? ws->proc->nworkers : 1,
	    sizeof(*r->lists))) == NULL ||
	    (r->timer = event_new(ws->base, -1, EV_PERSIST, tick, ws)) ==
	    NULL || event_add(r->timer, &second) == -1 ||
	    (r->ask_timer = event_new(ws->base, -1, EV_PERSIST, ask_again,
	    ws)) == NULL || event_add(r->ask_timer, &ask) == -1) {
		if (r->timer)
			event_free(r->timer);
		if (r->ask_timer)
			event_free(r->ask_timer);
		free(r->buckets);
		free(r->lists);
		free(r);
		return -1;
	}
	ws->registry = r;
	return 0;
}

size_t
registry_count(const struct walsvc *ws)
{
	return ws->registry ? ws->registry->count : 0;
}

/*
 * promptmqctl kick, and session-delete of a connected client: the
 * connection holding the id closes with 0x98 (administrative action);
 * with `end`, its session ends when the connection is gone, as with a
 * Session Expiry Interval of 0.  The worker's slot, -1 when no
 * connection holds the id, -2 while the workers' lists are awaited
 * after a restart.
 */
int
registry_admin_kick(struct walsvc *ws, const uint8_t *id, size_t len,
    int end)
{
	struct registry		*r = ws->registry;
	struct reg_entry	*e;

	if (r == NULL || r->syncing)
		return -2;
	if ((e = *find(r, id, len)) == NULL || !holder_live(ws, &e->holder))
		return -1;
	if (end)
		e->ending = 1;
	kick_id(ws, &e->holder, e->id, e->len, 0x98);
	return e->holder.slot;
}
