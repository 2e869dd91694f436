/*
 * wills.c - the wills of connections, kept and published by walsvc.
 *
 * A worker cannot publish a will on its own: it does not know whether a
 * new connection continues the session (a delayed will must then not be
 * sent), and a worker that dies takes its clients' wills with it.  So a
 * CONNECT's will travels with its claim and walsvc keeps it, in the log
 * like everything it keeps (docs/architecture.md, "Wills"):
 *
 *   set     the claim is decided: the will is kept, named by the LSN of
 *           this record (its id), before the CONNACK
 *   clear   not to be published: DISCONNECT 0x00 (appended by the
 *           worker, before its release), or the session was resumed
 *           before the will was due
 *   end     the connection ended otherwise (released, kicked, its worker
 *           dead, the broker restarted): due at the end time plus the
 *           lower of the Will Delay Interval and the Session Expiry
 *           Interval in force
 *   publish (format 3, naming the will) the will published: matched
 *           against stored sessions, retained, and routed by a worker;
 *           it is the will's last record, so a will is published once
 *           across crashes
 *
 * Applying a record only changes memory and the index; the decisions
 * (end, clear at a reconnection, publish when due) are taken outside
 * the apply path and written first, so a replay takes none again.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "hash.h"
#include "ipc_link.h"
#include "log.h"
#include "walrec.h"
#include "walsvc.h"

#define WILL_BUCKETS	1024
#define ROW_FORMAT	1
#define ROW_HEADER	28

struct will {
	struct will		*next_cid;	/* hash chains */
	struct will		*next_id;
	struct will		*next_ended;	/* the ended list */
	struct will		**prev_ended;
	uint8_t			 held;		/* its connection is on */
	uint8_t			 known;		/* ... and the holder below */
	struct reg_holder	 holder;
	uint64_t		 id;		/* LSN of its set record */
	uint16_t		 node;
	uint8_t			 level;
	uint32_t		 delay;		/* Will Delay Interval, s */
	int64_t			 due;		/* ended: wall ms */
	uint8_t			*packet;
	uint32_t		 len;
	uint16_t		 idlen;
	uint8_t			 client_id[];
};

/* A published will on its way to a worker, once durable. */
struct will_route {
	struct will_route	*next;
	uint64_t		 lsn;
	uint8_t			 level;
	uint32_t		 len;
	uint8_t			 packet[];
};

struct wills {
	struct will		**by_cid, **by_id;
	size_t			  nbuckets, count;
	struct will		 *ended;
	struct will_route	 *routes, **routes_tail;
	struct event		 *timer, *soon;
	uint16_t		  next_worker;
	uint64_t		  published;
};

static unsigned
cid_hash(const struct wills *wl, const uint8_t *id, size_t len)
{
	uint64_t	h = 1469598103934665603ull;

	while (len--)
		h = (h ^ *id++) * 1099511628211ull;
	return (unsigned)(hash_mix64(h) & (wl->nbuckets - 1));
}

static unsigned
id_hash(const struct wills *wl, uint64_t id)
{
	return (unsigned)(hash_mix64(id) & (wl->nbuckets - 1));
}

static struct will *
find_cid(const struct wills *wl, const uint8_t *id, size_t len)
{
	struct will	*w;

	for (w = wl->by_cid[cid_hash(wl, id, len)]; w; w = w->next_cid)
		if (w->idlen == len && memcmp(w->client_id, id, len) == 0)
			return w;
	return NULL;
}

static struct will *
find_id(const struct wills *wl, uint64_t id)
{
	struct will	*w;

	for (w = wl->by_id[id_hash(wl, id)]; w; w = w->next_id)
		if (w->id == id)
			return w;
	return NULL;
}

static void
rehash(struct wills *wl)
{
	struct will	**cid, **byid, *w, *next;
	size_t		  n = wl->nbuckets * 2, i, old = wl->nbuckets;

	if ((cid = calloc(n, sizeof(*cid))) == NULL ||
	    (byid = calloc(n, sizeof(*byid))) == NULL) {
		free(cid);
		return;		/* longer chains, still correct */
	}
	wl->nbuckets = n;
	for (i = 0; i < old; i++) {
		for (w = wl->by_cid[i]; w; w = next) {
			next = w->next_cid;
			w->next_cid = cid[cid_hash(wl, w->client_id, w->idlen)];
			cid[cid_hash(wl, w->client_id, w->idlen)] = w;
		}
		for (w = wl->by_id[i]; w; w = next) {
			next = w->next_id;
			w->next_id = byid[id_hash(wl, w->id)];
			byid[id_hash(wl, w->id)] = w;
		}
	}
	free(wl->by_cid);
	free(wl->by_id);
	wl->by_cid = cid;
	wl->by_id = byid;
}

static void
ended_add(struct wills *wl, struct will *w)
{
	if (w->prev_ended != NULL)
		return;
	w->next_ended = wl->ended;
	if (wl->ended)
		wl->ended->prev_ended = &w->next_ended;
	wl->ended = w;
	w->prev_ended = &wl->ended;
}

static void
ended_remove(struct will *w)
{
	if (w->prev_ended == NULL)
		return;
	*w->prev_ended = w->next_ended;
	if (w->next_ended)
		w->next_ended->prev_ended = w->prev_ended;
	w->prev_ended = NULL;
	w->next_ended = NULL;
}

/*
 * Index rows (wills.db, key: client id):
 *	u8 format (1), u8 level, u8 held, u8 0, u32 delay, u64 id,
 *	u64 due (wall ms, 0 while held), u16 node, u16 0, the packet
 */
static void
row_put(struct walsvc *ws, const struct will *w)
{
	struct buf	b = BUF_INITIALIZER;

	buf_add_u8(&b, ROW_FORMAT);
	buf_add_u8(&b, w->level);
	buf_add_u8(&b, w->held);
	buf_add_u8(&b, 0);
	buf_add_u32(&b, w->delay);
	buf_add_u64(&b, w->id);
	buf_add_u64(&b, (uint64_t)w->due);
	buf_add_u16(&b, w->node);
	buf_add_u16(&b, 0);
	buf_add(&b, w->packet, w->len);
	if (!buf_failed(&b))
		(void)index_will_put(ws->index, w->client_id, w->idlen, b.data,
		    b.len);
	buf_free(&b);
}

static struct will *
will_new(struct wills *wl, const uint8_t *id, size_t idlen,
    const uint8_t *packet, size_t len)
{
	struct will	*w;
	unsigned	 h;

	if (wl->count >= wl->nbuckets)
		rehash(wl);
	if ((w = calloc(1, sizeof(*w) + idlen)) == NULL ||
	    (w->packet = malloc(len)) == NULL) {
		free(w);
		return NULL;
	}
	memcpy(w->packet, packet, len);
	w->len = (uint32_t)len;
	memcpy(w->client_id, id, idlen);
	w->idlen = (uint16_t)idlen;
	h = cid_hash(wl, id, idlen);
	w->next_cid = wl->by_cid[h];
	wl->by_cid[h] = w;
	wl->count++;
	return w;
}

static void
link_id(struct wills *wl, struct will *w)
{
	unsigned	h = id_hash(wl, w->id);

	w->next_id = wl->by_id[h];
	wl->by_id[h] = w;
}

/* Forget a will (its row too). */
static void
will_free(struct walsvc *ws, struct will *w)
{
	struct wills	*wl = ws->wills;
	struct will	**wp;

	for (wp = &wl->by_cid[cid_hash(wl, w->client_id, w->idlen)]; *wp;
	    wp = &(*wp)->next_cid)
		if (*wp == w) {
			*wp = w->next_cid;
			break;
		}
	for (wp = &wl->by_id[id_hash(wl, w->id)]; *wp; wp = &(*wp)->next_id)
		if (*wp == w) {
			*wp = w->next_id;
			break;
		}
	ended_remove(w);
	(void)index_will_del(ws->index, w->client_id, w->idlen);
	wl->count--;
	free(w->packet);
	free(w);
}

static void
run_soon(struct wills *wl)
{
	struct timeval	now = { 0, 0 };

	if (wl->soon)
		event_add(wl->soon, &now);
}

/* ---------------------------------------------------------------------
 * Applying records.
 */

static void
apply_set(struct walsvc *ws, const struct wal_record *rec,
    const struct walrec_will *r)
{
	struct wills	*wl = ws->wills;
	struct will	*w;

	if ((w = find_cid(wl, r->client_id, r->idlen)) != NULL)
		will_free(ws, w);	/* replaced: decided before, logged */
	if ((w = will_new(wl, r->client_id, r->idlen, r->packet,
	    r->len)) == NULL) {
		log_error("out of memory keeping a will; it will not be "
		    "published", "client=%.*s", (int)r->idlen,
		    (const char *)r->client_id);
		return;
	}
	w->id = rec->lsn;
	w->node = r->node;
	w->level = r->level;
	w->delay = r->arg;
	w->held = 1;
	link_id(wl, w);
	row_put(ws, w);
}

static void
apply_end(struct walsvc *ws, struct will *w, const struct walrec_will *r)
{
	uint32_t	wait = w->delay;

	if (!w->held)
		return;
	if (r->arg != WALREC_EXPIRY_NEVER && r->arg < wait)
		wait = r->arg;	/* the session ends first */
	w->held = 0;
	w->known = 0;
	w->due = r->time + (int64_t)wait * 1000;
	ended_add(ws->wills, w);
	row_put(ws, w);
	run_soon(ws->wills);
}

void
wills_apply(struct walsvc *ws, const struct wal_record *rec)
{
	static struct log_ratelimit	 rl;
	struct walrec_will		 r;
	struct will			*w;

	if (walrec_will_decode(rec->payload, rec->length, &r) == -1) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed will record "
		    "ignored", "lsn=%llu", (unsigned long long)rec->lsn);
		return;
	}
	if (r.op == WALREC_WILL_SET) {
		apply_set(ws, rec, &r);
		return;
	}
	/* about a will since replaced or published: nothing to do */
	if ((w = find_cid(ws->wills, r.client_id, r.idlen)) == NULL ||
	    w->id != r.id)
		return;
	if (r.op == WALREC_WILL_CLEAR)
		will_free(ws, w);
	else
		apply_end(ws, w, &r);
}

/* A publish record that is a will: the will is done. */
void
wills_apply_published(struct walsvc *ws, uint64_t id)
{
	struct will	*w;

	if ((w = find_id(ws->wills, id)) != NULL)
		will_free(ws, w);
}

/* ---------------------------------------------------------------------
 * Decisions: records appended, then applied like any other.
 */

static uint64_t
append_will(struct walsvc *ws, const struct walrec_will *r)
{
	struct buf	 b = BUF_INITIALIZER;
	uint64_t	 lsn = 0;

	if (walrec_will_encode(&b, r) == 0)
		lsn = walsvc_append(ws, WAL_TYPE_WILL, b.data, b.len);
	buf_free(&b);
	return lsn;
}

static uint64_t
append_op(struct walsvc *ws, const struct will *w, uint8_t op,
    uint32_t arg, int64_t time)
{
	struct walrec_will	r;

	memset(&r, 0, sizeof(r));
	r.op = op;
	r.node = w->node;
	r.arg = arg;
	r.id = w->id;
	r.time = time;
	r.client_id = w->client_id;
	r.idlen = w->idlen;
	return append_will(ws, &r);
}

/* The connection holding w ended without DISCONNECT 0x00. */
static uint64_t
append_end(struct walsvc *ws, const struct will *w, int64_t when,
    int64_t expiry)
{
	uint32_t	e;

	e = expiry >= 0 ? (uint32_t)expiry :
	    sessions_expiry_of(ws, w->client_id, w->idlen);
	return append_op(ws, w, WALREC_WILL_END, e, when);
}

/*
 * Publish an ended will: its publish record (format 3) applies as any
 * message does (stored sessions, retained) and forgets the will; the
 * workers route it once it is durable.  Returns the record's LSN, 0 if
 * the log refused it.
 */
static uint64_t
publish(struct walsvc *ws, struct will *w)
{
	struct wills		*wl = ws->wills;
	struct walrec_publish	 p;
	struct will_route	*r;
	struct buf		 b = BUF_INITIALIZER;
	uint64_t		 lsn;

	memset(&p, 0, sizeof(p));
	p.format = WALREC_PUBLISH_V3;
	p.level = w->level;
	/* the publisher, for its own no-local subscriptions */
	sessions_id_of(ws, w->client_id, w->idlen, &p.node, &p.sid);
	p.received = clock_wall_ms();
	p.will = w->id;
	p.packet = w->packet;
	p.len = w->len;
	if ((r = malloc(sizeof(*r) + w->len)) == NULL ||
	    walrec_publish_encode(&b, &p) == -1) {
		free(r);
		buf_free(&b);
		return 0;
	}
	r->next = NULL;
	r->level = w->level;
	r->len = w->len;
	memcpy(r->packet, w->packet, w->len);
	log_info("will published", "client=%.*s will=%llu", (int)w->idlen,
	    (const char *)w->client_id, (unsigned long long)w->id);
	/* w is gone once this returns */
	if ((lsn = walsvc_append(ws, WAL_TYPE_PUBLISH, b.data, b.len)) == 0) {
		free(r);
		buf_free(&b);
		return 0;
	}
	buf_free(&b);
	r->lsn = lsn;
	*wl->routes_tail = r;
	wl->routes_tail = &r->next;
	wl->published++;
	wills_durable(ws);
	return lsn;
}

/* Publish what is due; wake up again when the next one is. */
static void
run(struct walsvc *ws)
{
	struct wills	*wl = ws->wills;
	struct will	*w, *next;
	struct timeval	 tv;
	int64_t		 now = clock_wall_ms(), first = INT64_MAX;

	for (w = wl->ended; w; w = next) {
		next = w->next_ended;
		if (w->due > now) {
			if (w->due < first)
				first = w->due;
			continue;
		}
		/* publishing frees w, not the next one */
		if (publish(ws, w) == 0)
			return;		/* the log refused: next second */
	}
	/* the once-a-second timer covers anything further away */
	if (first - now < 1000) {
		tv.tv_sec = 0;
		tv.tv_usec = (suseconds_t)(first - now) * 1000;
		event_add(wl->soon, &tv);
	}
}

static void
run_cb(evutil_socket_t fd, short what, void *arg)
{
	run(arg);
}

/* Send the published wills that are durable now to a worker to route. */
void
wills_durable(struct walsvc *ws)
{
	struct wills		*wl = ws->wills;
	const struct proc_peer	*p;
	struct will_route	*r;
	struct ipc_link		*link;
	struct buf		*b;
	size_t			 i, start, n = ws->proc->npeers;

	if (wl == NULL)
		return;
	while ((r = wl->routes) != NULL && r->lsn <= ws->shippable_lsn) {
		link = NULL;
		/* the next running worker after the last one used */
		for (i = 0; i < n && link == NULL; i++) {
			p = &ws->proc->peers[(wl->next_worker + i) % n];
			if (p->role == IPC_ROLE_WORKER && p->up) {
				link = walsvc_reply_link(ws, IPC_ROLE_WORKER,
				    p->slot, p->gen);
				wl->next_worker = (uint16_t)((wl->next_worker +
				    i + 1) % n);
			}
		}
		if (link != NULL &&
		    (b = ipc_link_record_begin(link, IPC_WILL_PUBLISH, 0, 0,
		    &start)) != NULL) {
			buf_add_u8(b, r->level);
			buf_add_u8(b, 0);
			buf_add(b, r->packet, r->len);
			if (buf_failed(b))
				buf_truncate(b, start);
			else {
				ipc_link_record_end(link, start);
				log_debug("will sent to a worker to route",
				    "lsn=%llu slot=%u", (unsigned long long)
				    r->lsn, p->slot);
			}
		} else
			log_debug("will not routed: no worker running",
			    "lsn=%llu", (unsigned long long)r->lsn);
		/* no worker running: no client online to route it to */
		wl->routes = r->next;
		if (wl->routes == NULL)
			wl->routes_tail = &wl->routes;
		free(r);
	}
}

/*
 * The registry gives client id `id` to connection h (sessions.c, after
 * the session is decided: `resumed` when it continues a stored one).
 * An older will of the id ends if its connection did not say so, is
 * cleared if the session is resumed before it is due, published
 * otherwise; then the claim's own will is kept.  *lsn: the last record
 * written (0: none); *will: the id of h's will (0: none).  Returns 0, -1
 * if the log refused.
 */
int
wills_connect(struct walsvc *ws, const struct reg_holder *h,
    const uint8_t *id, size_t len, const struct claim_params *cp,
    int resumed, uint64_t *lsn, uint64_t *will)
{
	struct wills		*wl = ws->wills;
	struct walrec_will	 r;
	struct will		*w = find_cid(wl, id, len);
	int64_t			 now = clock_wall_ms();

	*lsn = 0;
	*will = 0;
	if (w && w->held && w->known && reg_same(&w->holder, h)) {
		/* a repeat of a claim already decided */
		*lsn = *will = w->id;
		return 0;
	}
	if (w && w->held) {
		/* its connection is gone, and nothing said how */
		if ((*lsn = append_end(ws, w, now, -1)) == 0)
			return -1;
		w = find_cid(wl, id, len);
	}
	if (w && !w->held) {
		if (resumed && w->due > now)
			*lsn = append_op(ws, w, WALREC_WILL_CLEAR,
			    WALREC_CLEAR_RESUMED, 0);
		else
			*lsn = publish(ws, w);
		if (*lsn == 0)
			return -1;
	}
	if (!cp->will)
		return 0;
	memset(&r, 0, sizeof(r));
	r.op = WALREC_WILL_SET;
	r.arg = cp->will_delay;
	r.level = cp->level;
	r.client_id = id;
	r.idlen = (uint16_t)len;
	r.packet = cp->will;
	r.len = cp->will_len;
	if ((*lsn = append_will(ws, &r)) == 0 ||
	    (w = find_id(wl, *lsn)) == NULL)
		return -1;
	w->known = 1;
	w->holder = *h;
	*will = w->id;
	return 0;
}

/* The id of the will connection h keeps for client id `id`, 0: none. */
uint64_t
wills_held_by(struct walsvc *ws, const struct reg_holder *h,
    const uint8_t *id, size_t len)
{
	struct will	*w = find_cid(ws->wills, id, len);

	return w && w->held && w->known && reg_same(&w->holder, h) ? w->id : 0;
}

/*
 * Connection h, which held client id `id`, is gone (registry.c): its
 * release came (after the worker's own records: a DISCONNECT 0x00 has
 * cleared the will by now), its worker died, or it never released.
 * expiry: the Session Expiry Interval in force; -1: the session's own.
 */
void
wills_gone(struct walsvc *ws, const struct reg_holder *h, const uint8_t *id,
    size_t len, int64_t expiry)
{
	struct will	*w = find_cid(ws->wills, id, len);

	if (w == NULL || !w->held || !w->known || !reg_same(&w->holder, h))
		return;
	if (append_end(ws, w, clock_wall_ms(), expiry) == 0)
		log_error("cannot write the end of a connection with a will; "
		    "it is published when its client id is next claimed, or "
		    "after a restart", "client=%.*s", (int)len,
		    (const char *)id);
}

/* After a walsvc restart, a worker names a connection and its will. */
void
wills_resync(struct walsvc *ws, const struct reg_holder *h,
    const uint8_t *id, size_t len, uint64_t will)
{
	struct will	*w = find_cid(ws->wills, id, len);

	if (w && w->held && w->id == will) {
		w->known = 1;
		w->holder = *h;
	}
}

/*
 * The workers have named their connections: a will whose connection no
 * worker named lost it while walsvc was down (its worker died, or the
 * whole broker stopped), no later than `when`.
 */
void
wills_sync_done(struct walsvc *ws, int64_t when)
{
	struct wills	*wl = ws->wills;
	struct will	*w, **lost;
	size_t		 i, n = 0;

	if ((lost = calloc(wl->count ? wl->count : 1, sizeof(*lost))) == NULL)
		return;
	for (i = 0; i < wl->nbuckets; i++)
		for (w = wl->by_cid[i]; w; w = w->next_cid)
			if (w->held && !w->known)
				lost[n++] = w;
	for (i = 0; i < n; i++)
		append_end(ws, lost[i], when, -1);
	if (n > 0)
		log_info("wills of connections lost while walsvc was down are "
		    "due", "wills=%zu since_ms=%lld", n, (long long)when);
	free(lost);
}

/* ---------------------------------------------------------------------
 * Start-up and shut-down.
 */

static int
load_will(void *arg, const uint8_t *id, size_t idlen, const uint8_t *row,
    size_t len)
{
	struct walsvc	*ws = arg;
	struct wills	*wl = ws->wills;
	struct will	*w;

	if (idlen == 0 || idlen > 65535 || len < ROW_HEADER + 2 ||
	    row[0] != ROW_FORMAT) {
		log_warnx("malformed will row in the index ignored",
		    "len=%zu", len);
		return 0;
	}
	if ((w = will_new(wl, id, idlen, row + ROW_HEADER,
	    len - ROW_HEADER)) == NULL)
		return -1;
	w->level = row[1];
	w->held = row[2] != 0;
	w->delay = buf_load_u32(row + 4);
	w->id = buf_load_u64(row + 8);
	w->due = (int64_t)buf_load_u64(row + 16);
	w->node = buf_load_u16(row + 24);
	link_id(wl, w);
	if (!w->held)
		ended_add(wl, w);
	return 0;
}

int
wills_open(struct walsvc *ws)
{
	struct wills	*wl;
	struct timeval	 second = { 1, 0 };

	if ((wl = calloc(1, sizeof(*wl))) == NULL)
		return -1;
	wl->nbuckets = WILL_BUCKETS;
	wl->routes_tail = &wl->routes;
	ws->wills = wl;
	if ((wl->by_cid = calloc(wl->nbuckets, sizeof(*wl->by_cid))) == NULL ||
	    (wl->by_id = calloc(wl->nbuckets, sizeof(*wl->by_id))) == NULL ||
	    (wl->timer = event_new(ws->base, -1, EV_PERSIST, run_cb, ws)) ==
	    NULL || event_add(wl->timer, &second) == -1 ||
	    (wl->soon = event_new(ws->base, -1, 0, run_cb, ws)) == NULL)
		return -1;
	if (index_wills_load(ws->index, load_will, ws) == -1)
		return -1;
	if (wl->count > 0)
		log_info("wills loaded", "wills=%zu", wl->count);
	return 0;
}

size_t
wills_count(const struct walsvc *ws)
{
	return ws->wills ? ws->wills->count : 0;
}

void
wills_close(struct walsvc *ws)
{
	struct wills		*wl = ws->wills;
	struct will		*w, *next;
	struct will_route	*r;
	size_t			 i;

	if (wl == NULL)
		return;
	for (i = 0; i < wl->nbuckets && wl->by_cid; i++)
		for (w = wl->by_cid[i]; w; w = next) {
			next = w->next_cid;
			free(w->packet);
			free(w);
		}
	while ((r = wl->routes) != NULL) {
		wl->routes = r->next;
		free(r);
	}
	if (wl->timer)
		event_free(wl->timer);
	if (wl->soon)
		event_free(wl->soon);
	free(wl->by_cid);
	free(wl->by_id);
	free(wl);
	ws->wills = NULL;
}
