/*
 * bodies.c - the messages walsvc still has to send: session queues
 * (sessions.c) and retained messages (retained.c) hold references to
 * them by LSN; each is kept once, counted, and freed with its last
 * reference.
 *
 * A reference made while the log is applied comes with the message (it
 * was just appended or replayed).  One loaded from the index at start-up
 * has none yet: bodies_load() reads them all from the log in one pass
 * from the oldest one needed.
 *
 * A message is named by the LSN of its publish record (its id, what the
 * queues and the retained tree refer to) and found at its location, the
 * same LSN until compaction copies it forward (a copy record, applied
 * here); msgs.db keeps id -> location for the copied ones.  The oldest
 * location of a live message is how far the log may be removed.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
#include "mqtt.h"
#include "walrec.h"
#include "walsvc.h"

#define BODY_BUCKETS_MIN	4096

struct bodies {
	struct body	**buckets;
	size_t		  count, nbuckets;
	uint64_t	  bytes;
};

int
bodies_open(struct walsvc *ws)
{
	struct bodies	*bs;

	if ((bs = calloc(1, sizeof(*bs))) == NULL)
		return -1;
	bs->nbuckets = BODY_BUCKETS_MIN;
	if ((bs->buckets = calloc(bs->nbuckets, sizeof(*bs->buckets))) ==
	    NULL) {
		free(bs);
		return -1;
	}
	ws->bodies = bs;
	return 0;
}

void
bodies_close(struct walsvc *ws)
{
	struct bodies	*bs = ws->bodies;
	struct body	*b, *next;
	size_t		 i;

	if (bs == NULL)
		return;
	for (i = 0; i < bs->nbuckets; i++)
		for (b = bs->buckets[i]; b; b = next) {
			next = b->next;
			free(b->packet);
			free(b);
		}
	free(bs->buckets);
	free(bs);
	ws->bodies = NULL;
}

static struct body **
slot(struct bodies *bs, uint64_t lsn)
{
	struct body	**bp;

	for (bp = &bs->buckets[hash_mix64(lsn) & (bs->nbuckets - 1)]; *bp;
	    bp = &(*bp)->next)
		if ((*bp)->lsn == lsn)
			break;
	return bp;
}

static void
grow(struct bodies *bs)
{
	struct body	**nb, *b, *next;
	size_t		  n = bs->nbuckets * 2, i;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < bs->nbuckets; i++)
		for (b = bs->buckets[i]; b; b = next) {
			next = b->next;
			b->next = nb[hash_mix64(b->lsn) & (n - 1)];
			nb[hash_mix64(b->lsn) & (n - 1)] = b;
		}
	free(bs->buckets);
	bs->buckets = nb;
	bs->nbuckets = n;
}

/* The body of the message at lsn, with one more reference. */
struct body *
body_ref(struct walsvc *ws, uint64_t lsn)
{
	struct bodies	*bs = ws->bodies;
	struct body	**bp = slot(bs, lsn), *b;

	if ((b = *bp) != NULL) {
		b->refs++;
		return b;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->lsn = lsn;
	b->loc = lsn;
	b->refs = 1;
	*bp = b;
	if (++bs->count > bs->nbuckets)
		grow(bs);
	return b;
}

/*
 * Keep the message's bytes (from a publish record) if it has none yet,
 * with its QoS and Message Expiry Interval.  -1: out of memory, or not a
 * PUBLISH.
 */
int
body_fill(struct walsvc *ws, struct body *b, const struct walrec_publish *p)
{
	struct mqtt_packet	 pkt;

	if (b->packet != NULL)
		return 0;
	if (mqtt_decode_stored_publish(p->packet, p->len, p->level, &pkt) ==
	    -1)
		return -1;
	b->qos = pkt.publish.qos;
	b->expiry = mqtt_props_has(&pkt.publish.props,
	    MQTT_PROP_MESSAGE_EXPIRY_INTERVAL) ?
	    pkt.publish.props.message_expiry_interval : MSG_NO_EXPIRY;
	if ((b->packet = malloc(p->len ? p->len : 1)) == NULL)
		return -1;
	memcpy(b->packet, p->packet, p->len);
	b->len = (uint32_t)p->len;
	b->level = p->level;
	b->received = p->received;
	b->received_us = ws->applying_received;
	ws->bodies->bytes += p->len;
	return 0;
}

void
body_unref(struct walsvc *ws, struct body *b)
{
	struct bodies	*bs = ws->bodies;
	struct body	**bp;

	if (--b->refs > 0)
		return;
	bp = slot(bs, b->lsn);
	*bp = b->next;
	bs->count--;
	if (b->packet != NULL)
		bs->bytes -= b->len;
	if (b->loc != b->lsn)
		index_msg_del(ws->index, b->lsn);
	free(b->packet);
	free(b);
}

/*
 * Fill the bodies without bytes found at their location in the log from
 * `from` to `to`, in one pass.  Returns how many, or -1 when the log
 * cannot be read.
 */
static int64_t
fill_between(struct walsvc *ws, uint64_t from, uint64_t to,
    struct progress *pg)
{
	struct bodies		*bs = ws->bodies;
	struct wal_iter		*it;
	struct wal_record	 rec;
	struct walrec_publish	 p;
	struct walrec_copy	 c;
	struct body		*b;
	uint64_t		 read = 0;
	int64_t			 loaded = 0;
	int			 rv;

	if ((rv = wal_iter_open(&it, ws->wal, from)) != 0) {
		log_error("cannot read the log for queued and retained "
		    "messages", "error=\"%s\"", strerror(-rv));
		return -1;
	}
	while ((rv = wal_iter_next(it, &rec)) == 1 && rec.lsn <= to) {
		if (pg != NULL)
			progress_note(pg, ++read, wal_written_lsn(ws->wal) -
			    from + 1);
		if (rec.type == WAL_TYPE_PUBLISH) {
			if ((b = *slot(bs, rec.lsn)) == NULL ||
			    b->packet != NULL || b->loc != rec.lsn ||
			    walrec_publish_decode(rec.payload, rec.length,
			    &p) == -1)
				continue;
		} else if (rec.type == WAL_TYPE_COPY) {
			if (walrec_copy_decode(rec.payload, rec.length, &c) ==
			    -1 || (b = *slot(bs, c.original)) == NULL ||
			    b->packet != NULL || b->loc != rec.lsn ||
			    walrec_publish_decode(c.publish, c.len, &p) == -1)
				continue;
		} else
			continue;
		if (body_fill(ws, b, &p) == 0)
			loaded++;
	}
	wal_iter_close(it);
	if (rv < 0) {
		log_error("cannot read the log for queued and retained "
		    "messages", "error=\"%s\"", strerror(-rv));
		return -1;
	}
	return loaded;
}

/*
 * Read the bodies that references from the index lack, in one pass over
 * the log from the oldest one.  Returns 0 (a body the log no longer has
 * stays without bytes: its holders drop it), or -1 when the log cannot
 * be read.
 */
int
bodies_load(struct walsvc *ws)
{
	struct bodies		*bs = ws->bodies;
	struct body		*b;
	struct progress		 pg;
	uint64_t		 from = UINT64_MAX;
	int64_t			 loaded;
	size_t			 i;

	for (i = 0; i < bs->nbuckets; i++)
		for (b = bs->buckets[i]; b; b = b->next)
			if (b->packet == NULL && b->loc < from)
				from = b->loc;
	if (from == UINT64_MAX)
		return 0;
	progress_start(&pg, "reading queued and retained messages");
	if ((loaded = fill_between(ws, from, UINT64_MAX, &pg)) == -1)
		return -1;
	log_info("message bodies loaded from the log", "messages=%lld "
	    "from_lsn=%llu", (long long)loaded, (unsigned long long)from);
	return 0;
}

/*
 * While the log is replayed, before bodies_load(): the bytes of the
 * bodies located from `from` to `to` that have none yet, now (a few, for
 * a decision that depends on them).  -1: the log cannot be read.
 */
int
bodies_read(struct walsvc *ws, uint64_t from, uint64_t to)
{
	return fill_between(ws, from, to, NULL) == -1 ? -1 : 0;
}

size_t
bodies_count(const struct walsvc *ws)
{
	return ws->bodies ? ws->bodies->count : 0;
}

/*
 * A copy record: the message it carries is found here from now on.
 * One whose message nobody holds any more is a no-op.
 */
void
bodies_apply_copy(struct walsvc *ws, const struct wal_record *rec)
{
	static struct log_ratelimit	 rl;
	struct walrec_copy		 c;
	struct walrec_publish		 p;
	struct body			*b;

	if (walrec_copy_decode(rec->payload, rec->length, &c) == -1) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed copy record ignored",
		    "lsn=%llu", (unsigned long long)rec->lsn);
		return;
	}
	if ((b = *slot(ws->bodies, c.original)) == NULL || b->loc >= rec->lsn)
		return;
	b->loc = rec->lsn;
	if (b->packet == NULL && walrec_publish_decode(c.publish, c.len,
	    &p) == 0)
		body_fill(ws, b, &p);
	index_msg_put(ws->index, b->lsn, b->loc);
}

/* At start-up: where the index says copied messages are. */
static int
load_location(void *arg, uint64_t id, uint64_t loc)
{
	struct walsvc	*ws = arg;
	struct body	*b;

	if ((b = *slot(ws->bodies, id)) == NULL) {
		index_msg_del(ws->index, id);	/* nobody holds it now */
		return 0;
	}
	if (loc > b->loc)
		b->loc = loc;
	return 0;
}

int
bodies_load_locations(struct walsvc *ws)
{
	return index_msgs_load(ws->index, load_location, ws);
}

/*
 * The oldest location of a message still held (UINT64_MAX: none), and
 * the bytes of those held below `below`.
 */
uint64_t
bodies_oldest(const struct walsvc *ws, uint64_t below, uint64_t *held)
{
	const struct bodies	*bs = ws->bodies;
	const struct body	*b;
	uint64_t		 min = UINT64_MAX;
	size_t			 i;

	*held = 0;
	for (i = 0; i < bs->nbuckets; i++)
		for (b = bs->buckets[i]; b; b = b->next) {
			if (b->loc < min)
				min = b->loc;
			if (b->loc < below)
				*held += b->len;
		}
	return min;
}

/*
 * Copy forward up to max messages located before `below`: each becomes a
 * copy record at the end of the log.  Returns how many were copied, or
 * -1 when the log refused (out of memory).
 */
int
bodies_copy_below(struct walsvc *ws, uint64_t below, int max)
{
	struct bodies		*bs = ws->bodies;
	struct body		*b, **pick;
	struct walrec_publish	 p;
	struct buf		 rec = BUF_INITIALIZER;
	size_t			 i;
	int			 n = 0, k;

	if ((pick = calloc((size_t)max, sizeof(*pick))) == NULL)
		return -1;
	/* chosen first: appending applies the copy, which moves them */
	for (i = 0; i < bs->nbuckets && n < max; i++)
		for (b = bs->buckets[i]; b && n < max; b = b->next)
			if (b->loc < below && b->packet != NULL)
				pick[n++] = b;
	for (k = 0; k < n; k++) {
		b = pick[k];
		memset(&p, 0, sizeof(p));
		p.format = WALREC_PUBLISH_V2;
		p.level = b->level;
		p.received = b->received;
		p.packet = b->packet;
		p.len = b->len;
		buf_reset(&rec);
		if (walrec_copy_encode(&rec, b->lsn, &p) == -1 ||
		    walsvc_append(ws, WAL_TYPE_COPY, rec.data, rec.len) == 0) {
			n = -1;
			break;
		}
	}
	buf_free(&rec);
	free(pick);
	return n;
}
