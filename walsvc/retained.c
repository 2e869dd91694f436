/*
 * retained.c - retained messages: kept by walsvc, derived from the log,
 * sent to a subscription when it is made.
 *
 * Every PUBLISH with RETAIN, at any QoS, is a log record; applying it
 * sets the topic's retained message, or clears it when the payload is
 * empty.  The messages sit in a tree of topic levels (a filter with +
 * and # walks it; a topic starting with '$' is not matched by a filter
 * starting with a wildcard, MQTT 4.7.2); each node holds a reference to
 * the message's body (bodies.c).  Berkeley DB keeps topic -> LSN
 * (retained.db); the bodies are read back from the log at start-up.
 *
 * Lookup (RET_LOOKUP, from the worker that just sent a SUBACK) and its
 * answer (RET_MSG per message, then RET_DONE):
 *   1) the lookup names, for every worker, the last append of that
 *      worker's stream its ROUTE_ACK reported (and its own): a retained
 *      message published before the subscription was routed there is in
 *      one of those appends, so the lookup waits until walsvc has applied
 *      each of them (a worker that died meanwhile does not hold it up);
 *   2) it also waits until the log is shippable up to what was applied
 *      when it came: nothing leaves walsvc that a crash could take back;
 *   3) then every matching message goes out at the lower of its QoS and
 *      the subscription's, with its remaining Message Expiry Interval;
 *      an expired one is not sent.
 * A worker sends a lookup again when walsvc restarts or its log link
 * starts over, so one may come twice: each is answered, in the order
 * they came, naming the worker's number of the lookup (the record's
 * sequence), and the worker takes only the first answer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "ipc_link.h"
#include "log.h"
#include "mqtt.h"
#include "walrec.h"
#include "walsvc.h"

#define NODE_BUCKETS_MIN	1024

struct rnode {
	struct rnode	*parent;
	struct rnode	*next_hash;	/* (parent, name) hash chain */
	struct rnode	*child, *sibling;	/* for + and # */
	struct body	*body;		/* the retained message, or NULL */
	uint16_t	 len;
	uint8_t		 name[];
};

struct lookup {
	struct lookup	*next;
	uint16_t	 slot;		/* the asking worker */
	uint64_t	 gen;
	uint64_t	 id;		/* its correlation id */
	uint64_t	 number;	/* the worker's, echoed in the answer */
	uint64_t	 need_lsn;	/* shippable up to here first */
	uint16_t	 nbarriers;
	uint32_t	 len;
	uint8_t		*data;		/* barriers, then filters */
};

struct retained {
	struct rnode	 root;
	struct rnode	**buckets;
	size_t		  nbuckets, nnodes, count;
	struct lookup	 *lookups, *lookups_tail;
};

static unsigned
node_hash(const struct retained *r, const struct rnode *parent,
    const uint8_t *name, size_t len)
{
	uint64_t	 h = (uint64_t)(uintptr_t)parent;

	while (len--)
		h = (h ^ *name++) * 1099511628211ull;
	return (unsigned)(hash_mix64(h) & (r->nbuckets - 1));
}

static struct rnode *
child_find(struct retained *r, struct rnode *parent, const uint8_t *name,
    size_t len)
{
	struct rnode	*n;

	for (n = r->buckets[node_hash(r, parent, name, len)]; n;
	    n = n->next_hash)
		if (n->parent == parent && n->len == len &&
		    memcmp(n->name, name, len) == 0)
			return n;
	return NULL;
}

static void
grow(struct retained *r)
{
	struct rnode	**nb, *n, *next;
	size_t		  i, old = r->nbuckets;

	if ((nb = calloc(old * 2, sizeof(*nb))) == NULL)
		return;
	r->nbuckets = old * 2;
	for (i = 0; i < old; i++)
		for (n = r->buckets[i]; n; n = next) {
			unsigned h = node_hash(r, n->parent, n->name, n->len);

			next = n->next_hash;
			n->next_hash = nb[h];
			nb[h] = n;
		}
	free(r->buckets);
	r->buckets = nb;
}

static struct rnode *
child_add(struct retained *r, struct rnode *parent, const uint8_t *name,
    size_t len)
{
	struct rnode	*n;
	unsigned	 h;

	if ((n = calloc(1, sizeof(*n) + len)) == NULL)
		return NULL;
	n->parent = parent;
	n->len = (uint16_t)len;
	memcpy(n->name, name, len);
	h = node_hash(r, parent, name, len);
	n->next_hash = r->buckets[h];
	r->buckets[h] = n;
	n->sibling = parent->child;
	parent->child = n;
	if (++r->nnodes > r->nbuckets)
		grow(r);
	return n;
}

/* Remove n if it holds nothing; its parent, or NULL if it stays. */
static struct rnode *
prune_one(struct retained *r, struct rnode *n)
{
	struct rnode	*parent = n->parent, **pp;

	if (n == &r->root || n->body != NULL || n->child != NULL)
		return NULL;
	for (pp = &r->buckets[node_hash(r, parent, n->name, n->len)];
	    *pp != n; pp = &(*pp)->next_hash)
		;
	*pp = n->next_hash;
	for (pp = &parent->child; *pp != n; pp = &(*pp)->sibling)
		;
	*pp = n->sibling;
	free(n);
	r->nnodes--;
	return parent;
}

/* Remove nodes that hold nothing, from n up. */
static void
prune(struct retained *r, struct rnode *n)
{
	while (n != NULL)
		n = prune_one(r, n);
}

/* The node of a topic name, made if make (NULL if absent or no memory). */
static struct rnode *
node_of(struct retained *r, const uint8_t *topic, size_t len, int make)
{
	struct rnode	*n = &r->root, *c;
	size_t		 i = 0, j;

	for (;;) {
		for (j = i; j < len && topic[j] != '/'; j++)
			;
		if ((c = child_find(r, n, topic + i, j - i)) == NULL &&
		    (!make || (c = child_add(r, n, topic + i, j - i)) == NULL))
			return NULL;
		n = c;
		if (j == len)
			return n;
		i = j + 1;
	}
}

static void
node_clear(struct walsvc *ws, struct rnode *n)
{
	if (n->body == NULL)
		return;
	body_unref(ws, n->body);
	n->body = NULL;
	ws->retained->count--;
}

/*
 * Applying a publish record with RETAIN: the topic's retained message
 * becomes this one, or none when its payload is empty.
 */
void
retained_apply(struct walsvc *ws, const struct wal_record *rec,
    const struct walrec_publish *p, const struct mqtt_publish *m)
{
	static struct log_ratelimit	 rl;
	struct retained			*r = ws->retained;
	struct rnode			*n;
	struct body			*b;

	if (m->payload.len == 0) {
		if ((n = node_of(r, m->topic.data, m->topic.len, 0)) != NULL) {
			node_clear(ws, n);
			prune(r, n);
		}
		index_retained_del(ws->index, m->topic.data, m->topic.len);
		return;
	}
	if ((n = node_of(r, m->topic.data, m->topic.len, 1)) == NULL ||
	    (b = body_ref(ws, rec->lsn)) == NULL) {
		log_limited(&rl, LOG_LEVEL_ERROR, "out of memory keeping a "
		    "retained message", "lsn=%llu", (unsigned long long)rec->lsn);
		return;
	}
	if (body_fill(ws, b, p) == -1) {
		body_unref(ws, b);
		return;
	}
	node_clear(ws, n);
	n->body = b;
	r->count++;
	index_retained_put(ws->index, m->topic.data, m->topic.len, rec->lsn);
}

/* ---------------------------------------------------------------------
 * Lookups.
 */

struct reply {
	struct walsvc	*ws;
	struct ipc_link	*link;
	uint64_t	 id;
	uint64_t	 number;
	uint8_t		 qos;		/* the subscription's */
	int64_t		 now;
};

static void
send_one(struct reply *rp, struct rnode *n)
{
	struct buf	*b;
	size_t		 start;
	uint32_t	 left;

	if (n->body == NULL || n->body->packet == NULL ||
	    msg_expiry_left(n->body->expiry, n->body->received, rp->now,
	    &left) == -1)
		return;		/* expired: it is not sent */
	if ((b = ipc_link_record_begin(rp->link, IPC_RET_MSG, rp->number,
	    rp->id, &start)) == NULL)
		return;
	buf_add_u8(b, n->body->qos < rp->qos ? n->body->qos : rp->qos);
	buf_add_u8(b, n->body->level);
	buf_add_u16(b, 0);
	buf_add_u32(b, left);
	buf_add(b, n->body->packet, n->body->len);
	if (buf_failed(b))
		buf_truncate(b, start);
	else
		ipc_link_record_end(rp->link, start);
}

/* Everything under n (n itself too). */
static void
send_all(struct reply *rp, struct rnode *n, int skip_dollar)
{
	struct rnode	*c;

	send_one(rp, n);
	for (c = n->child; c; c = c->sibling)
		if (!(skip_dollar && c->len > 0 && c->name[0] == '$'))
			send_all(rp, c, 0);
}

/* The filter's levels from `f` on, under node n. */
static void
match(struct reply *rp, struct rnode *n, const uint8_t *f, size_t len,
    int root)
{
	struct rnode	*c;
	size_t		 j;

	for (j = 0; j < len && f[j] != '/'; j++)
		;
	if (j == 1 && f[0] == '#') {
		/* the parent level too ("a/#" matches "a"), not the root */
		if (!root)
			send_one(rp, n);
		for (c = n->child; c; c = c->sibling)
			if (!(root && c->len > 0 && c->name[0] == '$'))
				send_all(rp, c, 0);
		return;
	}
	if (j == 1 && f[0] == '+') {
		for (c = n->child; c; c = c->sibling) {
			if (root && c->len > 0 && c->name[0] == '$')
				continue;
			if (j == len)
				send_one(rp, c);
			else
				match(rp, c, f + j + 1, len - j - 1, 0);
		}
		return;
	}
	if ((c = child_find(rp->ws->retained, n, f, j)) == NULL)
		return;
	if (j == len)
		send_one(rp, c);
	else
		match(rp, c, f + j + 1, len - j - 1, 0);
}

/*
 * Body of RET_LOOKUP (docs/architecture.md): u16 barrier count, then
 * (u16 slot, u64 gen, u64 seq)*, then (u8 QoS, u8 0, u16 length,
 * filter)*.
 */
static int
barriers_met(struct walsvc *ws, const struct lookup *l)
{
	const struct proc_peer	*p;
	const uint8_t		*b = l->data;
	uint16_t		 i, slot;
	uint64_t		 gen, seq;

	if (ws->shippable_lsn < l->need_lsn)
		return 0;
	for (i = 0; i < l->nbarriers; i++, b += IPC_RET_BARRIER) {
		slot = buf_load_u16(b);
		gen = buf_load_u64(b + 2);
		seq = buf_load_u64(b + 10);
		p = proc_peer(ws->proc, IPC_ROLE_WORKER, slot);
		/* a worker that died will not append more */
		if (p == NULL || p->gen != gen || !p->up)
			continue;
		if (append_stream_applied(ws, slot, gen) < seq)
			return 0;
	}
	return 1;
}

static void
answer(struct walsvc *ws, struct lookup *l)
{
	struct reply		 rp;
	struct buf_reader	 rd;
	const uint8_t		*f;
	uint16_t		 flen;

	memset(&rp, 0, sizeof(rp));
	rp.ws = ws;
	rp.id = l->id;
	rp.number = l->number;
	rp.now = clock_wall_ms();
	if ((rp.link = walsvc_reply_link(ws, IPC_ROLE_WORKER, l->slot,
	    l->gen)) == NULL)
		return;
	buf_reader_init(&rd, l->data + (size_t)l->nbarriers * IPC_RET_BARRIER,
	    l->len - (size_t)l->nbarriers * IPC_RET_BARRIER);
	while (buf_read_left(&rd) > 0) {
		rp.qos = buf_read_u8(&rd);
		buf_read_u8(&rd);
		flen = buf_read_u16(&rd);
		if ((f = buf_read_ptr(&rd, flen)) == NULL)
			break;
		match(&rp, &ws->retained->root, f, flen, 1);
	}
	ipc_link_send(rp.link, IPC_RET_DONE, l->number, l->id, NULL, 0);
}

/* Lookups whose barriers are met are answered, in the order they came. */
void
retained_progress(struct walsvc *ws)
{
	struct retained	*r = ws->retained;
	struct lookup	*l;

	while ((l = r->lookups) != NULL && barriers_met(ws, l)) {
		r->lookups = l->next;
		if (r->lookups == NULL)
			r->lookups_tail = NULL;
		answer(ws, l);
		free(l->data);
		free(l);
	}
}

void
retained_lookup(struct walsvc *ws, const struct ipc_batch *batch,
    const struct ipc_record *rec)
{
	static struct log_ratelimit	 rl;
	struct retained			*r = ws->retained;
	struct buf_reader		 rd;
	struct lookup			*l;
	uint16_t			 nb, flen;

	buf_reader_init(&rd, rec->body, rec->len);
	nb = buf_read_u16(&rd);
	if (batch->sender.role != IPC_ROLE_WORKER || rec->corr == 0 ||
	    buf_read_skip(&rd, (size_t)nb * IPC_RET_BARRIER) == -1)
		goto bad;
	while (buf_read_left(&rd) > 0) {
		buf_read_u8(&rd);
		buf_read_u8(&rd);
		flen = buf_read_u16(&rd);
		if (flen == 0 || buf_read_skip(&rd, flen) == -1)
			goto bad;
	}
	if (rd.failed || (l = calloc(1, sizeof(*l))) == NULL)
		goto bad;
	if ((l->data = malloc(rec->len - 2 ? rec->len - 2 : 1)) == NULL) {
		free(l);
		goto bad;
	}
	memcpy(l->data, rec->body + 2, rec->len - 2);
	l->len = rec->len - 2;
	l->nbarriers = nb;
	l->slot = batch->sender.slot;
	l->gen = batch->sender.gen;
	l->id = rec->corr;
	l->number = rec->seq;
	l->need_lsn = wal_next_lsn(ws->wal) - 1;
	if (r->lookups_tail)
		r->lookups_tail->next = l;
	else
		r->lookups = l;
	r->lookups_tail = l;
	retained_progress(ws);
	return;
bad:
	log_limited(&rl, LOG_LEVEL_WARN, "malformed retained lookup dropped",
	    "from=%s/%u len=%u", ipc_role_name(batch->sender.role),
	    batch->sender.slot, rec->len);
}

/* ---------------------------------------------------------------------
 * Start-up and the end.
 */

static int
load_one(void *arg, const uint8_t *topic, size_t len, uint64_t lsn)
{
	struct walsvc	*ws = arg;
	struct rnode	*n;

	if ((n = node_of(ws->retained, topic, len, 1)) == NULL)
		return -1;
	node_clear(ws, n);
	if ((n->body = body_ref(ws, lsn)) == NULL)
		return -1;
	ws->retained->count++;
	return 0;
}

int
retained_open(struct walsvc *ws)
{
	struct retained	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	ws->retained = r;
	r->nbuckets = NODE_BUCKETS_MIN;
	if ((r->buckets = calloc(r->nbuckets, sizeof(*r->buckets))) == NULL)
		return -1;
	return index_retained_load(ws->index, load_one, ws);
}

/* The topic of a node, rebuilt from its levels (for the index). */
static size_t
topic_of(const struct rnode *n, uint8_t *out, size_t cap)
{
	size_t	 len;

	if (n->parent == NULL)
		return 0;
	len = topic_of(n->parent, out, cap);
	if (n->parent->parent != NULL && len < cap)
		out[len++] = '/';
	if (len + n->len <= cap) {
		memcpy(out + len, n->name, n->len);
		len += n->len;
	}
	return len;
}

#define TOPIC_MAX	65535

static void
finish(struct walsvc *ws, struct rnode *n, uint8_t *topic, uint64_t *missing)
{
	struct rnode	*c, *next;
	size_t		 len;

	for (c = n->child; c; c = next) {
		next = c->sibling;
		finish(ws, c, topic, missing);
	}
	if (n->body != NULL && n->body->packet == NULL) {
		len = topic_of(n, topic, TOPIC_MAX);
		index_retained_del(ws->index, topic, len);
		node_clear(ws, n);
		(*missing)++;
	}
	prune_one(ws->retained, n);	/* its parent is looked at next */
}

/* After bodies_load(): the messages the log no longer has are dropped. */
int
retained_finish_load(struct walsvc *ws)
{
	uint64_t	 missing = 0;
	uint8_t		*topic;

	if ((topic = malloc(TOPIC_MAX)) == NULL)
		return -1;
	finish(ws, &ws->retained->root, topic, &missing);
	free(topic);
	if (missing > 0)
		log_error("retained messages missing from the log were "
		    "dropped", "missing=%llu", (unsigned long long)missing);
	log_info("retained messages loaded", "messages=%zu",
	    ws->retained->count);
	return 0;
}

size_t
retained_count(const struct walsvc *ws)
{
	return ws->retained ? ws->retained->count : 0;
}

static void
free_nodes(struct walsvc *ws, struct rnode *n)
{
	struct rnode	*c, *next;

	for (c = n->child; c; c = next) {
		next = c->sibling;
		free_nodes(ws, c);
		free(c);
	}
	if (n->body)
		body_unref(ws, n->body);
}

void
retained_close(struct walsvc *ws)
{
	struct retained	*r = ws->retained;
	struct lookup	*l;

	if (r == NULL)
		return;
	free_nodes(ws, &r->root);
	while ((l = r->lookups) != NULL) {
		r->lookups = l->next;
		free(l->data);
		free(l);
	}
	free(r->buckets);
	free(r);
	ws->retained = NULL;
}
