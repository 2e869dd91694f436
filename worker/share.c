/*
 * share.c - shared subscriptions ($share/GROUP/FILTER) in a worker: which
 * member of a group gets a message (architecture.md, Shared
 * subscriptions).
 *
 * A group's members are held by the workers (their clean sessions, in
 * each table as counts per worker slot) and by walsvc (stored sessions,
 * online or away, counted in the slot past the last worker's).  The
 * publishing worker places the message: member k = the group's turn mod
 * the members it knows of, counted holder by holder in slot order, so one
 * publisher's messages go round the members in turn.  A placement is a
 * list of (u16 holder slot, u32 k within that holder, u16 length, group
 * text); what it says is then done by share_dispatch(): our member gets
 * the message, another worker gets a FWD_PUBLISH with its picks, walsvc
 * a publish record naming its picks (the publisher's own record, or one
 * of ours when the message was placed again).
 *
 * A member can leave between the placement and the message's arrival:
 * the holder that finds no member places it once more among the others
 * (IPC_FWD_PLACED_AGAIN), and drops it, counted, the second time.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "ipc_link.h"
#include "log.h"
#include "walc.h"
#include "walrec.h"
#include "worker.h"

#define NO_SKIP		UINT_MAX

unsigned
share_walsvc_slot(const struct worker *w)
{
	return w->npeers;
}

/* The group's members that holder `slot` has. */
static uint32_t
held_by(const struct worker *w, const struct sub_group *g, unsigned slot)
{
	if (slot == w->proc->self.slot)
		return (uint32_t)sub_group_local_count(g);
	if (slot < w->npeers && w->peers[slot].gen == 0)
		return 0;	/* down: its clients are gone */
	return sub_group_remote_count(g, slot);
}

static void
no_member(struct worker *w, const struct mqtt_view *text, const char *why)
{
	static struct log_ratelimit	 rl;

	w->stats.dropped_no_member++;
	log_limited(&rl, LOG_LEVEL_INFO, "shared message dropped", "group=%.*s "
	    "why=\"%s\" dropped_total=%llu", (int)text->len, text->data, why,
	    (unsigned long long)w->stats.dropped_no_member);
}

/*
 * Place one message of group g among its members, holder `skip` left
 * out: one entry added to `out`.  -1 when there is nobody.
 */
static int
place_one(struct worker *w, struct sub_group *g, unsigned skip,
    struct buf *out)
{
	const uint8_t	*text;
	uint64_t	 total = 0;
	uint32_t	 k, n;
	size_t		 len;
	unsigned	 slot;

	for (slot = 0; slot <= w->npeers; slot++)
		if (slot != skip)
			total += held_by(w, g, slot);
	if (total == 0)
		return -1;
	k = (uint32_t)(sub_group_turn(g) % total);
	for (slot = 0; slot <= w->npeers; slot++) {
		if (slot == skip)
			continue;
		if (k < (n = held_by(w, g, slot)))
			break;
		k -= n;
	}
	text = sub_group_text(g, &len);
	buf_add_u16(out, (uint16_t)slot);
	buf_add_u32(out, k);
	buf_add_u16(out, (uint16_t)len);
	buf_add(out, text, len);
	return 0;
}

/* The next entry of a placement: 1, or 0 at its end. */
static int
next_pick(struct buf_reader *rd, unsigned *holder, uint32_t *k,
    struct mqtt_view *text)
{
	if (buf_read_left(rd) == 0)
		return 0;
	*holder = buf_read_u16(rd);
	*k = buf_read_u32(rd);
	text->len = buf_read_u16(rd);
	text->data = buf_read_ptr(rd, text->len);
	return rd->failed ? 0 : 1;
}

void
share_place(struct worker *w, const struct sub_match *sm, struct buf *out)
{
	struct mqtt_view	 text;
	size_t			 i;

	buf_truncate(out, 0);
	for (i = 0; i < sm->nshares; i++)
		if (place_one(w, sm->shares[i].group, NO_SKIP, out) == -1) {
			text.data = sub_group_text(sm->shares[i].group,
			    &text.len);
			no_member(w, &text, "no member");
		}
	if (buf_failed(out)) {
		buf_truncate(out, 0);
		out->failed = 0;
		log_error("out of memory placing a shared message", "");
	}
}

/* A message's placement into w->placed, before it is routed (QoS 2). */
void
share_place_topic(struct worker *w, const struct mqtt_publish *m)
{
	buf_truncate(&w->placed, 0);
	if (sub_match(w->subs, m->topic.data, m->topic.len, &w->match) == 0 &&
	    w->match.nshares > 0)
		share_place(w, &w->match, &w->placed);
}

int
share_walsvc_picks(const struct worker *w, const struct buf *placed,
    struct buf *picks)
{
	struct buf_reader	 rd;
	struct mqtt_view	 text;
	unsigned		 holder;
	uint32_t		 k;
	int			 n = 0;

	buf_truncate(picks, 0);
	buf_reader_init(&rd, placed->data, placed->len);
	while (next_pick(&rd, &holder, &k, &text) == 1)
		if (holder == share_walsvc_slot(w)) {
			walrec_pick_add(picks, k, text.data, text.len);
			n++;
		}
	return n;
}

/* Append the message for walsvc's picks alone (a placement of ours). */
static void
log_picks(struct worker *w, const struct buf *placed, uint8_t level,
    const uint8_t *raw, size_t rawlen)
{
	struct walrec_publish	 lr;
	struct buf		 picks = BUF_INITIALIZER, rec = BUF_INITIALIZER;
	int			 n;

	if ((n = share_walsvc_picks(w, placed, &picks)) == 0)
		return;
	memset(&lr, 0, sizeof(lr));
	lr.format = WALREC_PUBLISH_V4;
	lr.level = level;
	lr.received = worker_wall_ms(w);
	lr.picks_only = 1;
	lr.picks = picks.data;
	lr.picks_len = picks.len;
	lr.npicks = (uint16_t)n;
	lr.packet = raw;
	lr.len = rawlen;
	if (buf_failed(&picks) || walrec_publish_encode(&rec, &lr) == -1 ||
	    walc_append(w->walc, WAL_TYPE_PUBLISH, rec.data, rec.len) == 0)
		log_error("cannot log a shared message for walsvc: out of "
		    "memory", "");
	buf_free(&picks);
	buf_free(&rec);
}

/* Another worker's picks, in one FWD_PUBLISH that names only them. */
static void
forward_picks(struct worker *w, unsigned slot, const struct buf *placed,
    uint8_t flags, uint8_t level, uint64_t origin, uint64_t received,
    const uint8_t *raw, size_t rawlen)
{
	struct buf_reader	 rd;
	struct mqtt_view	 text;
	struct buf		*b;
	size_t			 start;
	unsigned		 holder;
	uint32_t		 k;
	uint16_t		 n = 0;

	buf_reader_init(&rd, placed->data, placed->len);
	while (next_pick(&rd, &holder, &k, &text) == 1)
		n += holder == slot;
	if (n == 0 || (b = publish_forward_begin(w, slot, level,
	    IPC_FWD_PICKS | flags, origin, received, &start)) == NULL)
		return;
	buf_add_u16(b, n);
	buf_reader_init(&rd, placed->data, placed->len);
	while (next_pick(&rd, &holder, &k, &text) == 1)
		if (holder == slot)
			walrec_pick_add(b, k, text.data, text.len);
	publish_forward_end(w, slot, b, start, raw, rawlen);
}

static void	deliver_pick(struct worker *, const struct mqtt_view *,
		    uint32_t, const struct mqtt_publish *, uint8_t,
		    const uint8_t *, size_t, uint64_t, uint8_t);

void
share_dispatch(struct worker *w, const struct buf *placed, uint8_t flags,
    int log, const struct mqtt_publish *m, uint8_t level, const uint8_t *raw,
    size_t rawlen, uint64_t origin, uint64_t received)
{
	struct buf_reader	 rd;
	struct mqtt_view	 text;
	unsigned		 holder, slot;
	uint32_t		 k;

	for (slot = 0; slot < w->npeers; slot++)
		if (slot != w->proc->self.slot)
			forward_picks(w, slot, placed, flags, level, origin,
			    received, raw, rawlen);
	if (log)
		log_picks(w, placed, level, raw, rawlen);
	buf_reader_init(&rd, placed->data, placed->len);
	while (next_pick(&rd, &holder, &k, &text) == 1)
		if (holder == w->proc->self.slot)
			deliver_pick(w, &text, k, m, level, raw, rawlen,
			    received, flags);
}

/*
 * Our member k (mod our count) of the group gets the message.  With none
 * left (it left since the placement), the other holders may have one.
 */
static void
deliver_pick(struct worker *w, const struct mqtt_view *text, uint32_t k,
    const struct mqtt_publish *m, uint8_t level, const uint8_t *raw,
    size_t rawlen, uint64_t received, uint8_t flags)
{
	struct topic_filter	 tf;
	struct sub_group	*g;
	struct sub_hit		*hit;
	struct buf		 again = BUF_INITIALIZER;
	struct conn		*c;
	size_t			 n;
	uint8_t			 qos;

	if (topic_filter_parse(text->data, text->len, &tf) != TOPIC_OK ||
	    tf.share == NULL) {
		no_member(w, text, "not a shared filter");
		return;
	}
	g = sub_group_find(w->subs, &tf);
	if (g == NULL || (n = sub_group_local_count(g)) == 0) {
		if (g == NULL || (flags & IPC_FWD_PLACED_AGAIN) ||
		    place_one(w, g, w->proc->self.slot, &again) == -1)
			no_member(w, text, "its member left");
		else
			share_dispatch(w, &again, IPC_FWD_PLACED_AGAIN, 1, m,
			    level, raw, rawlen, 0, received);
		buf_free(&again);
		return;
	}
	hit = sub_group_local(g, k % n);
	c = hit->owner;
	/* auth.acl-file: only what the subscriber may read */
	if (!auth_may(c, m->topic.data, m->topic.len, ACL_READ))
		return;
	qos = m->qos < hit->options.qos ? m->qos : hit->options.qos;
	deliver(c, m, level, raw, rawlen, qos,
	    m->retain && hit->options.retain_as_published, received, text);
}

/* A message placed with us by the publisher's worker (FWD_PUBLISH). */
void
share_forwarded(struct worker *w, uint8_t flags, const uint8_t *picks,
    size_t len, uint16_t n, const struct mqtt_publish *m, uint8_t level,
    const uint8_t *raw, size_t rawlen, uint64_t received)
{
	struct buf_reader	 rd;
	struct mqtt_view	 text;
	uint32_t		 k;

	buf_reader_init(&rd, picks, len);
	while (n-- > 0 && walrec_pick_next(&rd, &k, &text.data,
	    &text.len) == 1)
		deliver_pick(w, &text, k, m, level, raw, rawlen, received,
		    flags);
}

/* Place a message of this group anew, `skip` left out. */
static void
place_group(struct worker *w, const struct mqtt_view *text, unsigned skip,
    uint8_t level, const uint8_t *raw, size_t rawlen)
{
	static struct log_ratelimit	 rl;
	struct topic_filter		 tf;
	struct mqtt_packet		 pkt;
	struct sub_group		*g;
	struct buf			 placed = BUF_INITIALIZER;

	if (mqtt_decode_stored_publish(raw, rawlen, level, &pkt) == -1) {
		log_limited(&rl, LOG_LEVEL_ERROR, "undecodable shared message "
		    "dropped", "len=%zu", rawlen);
		return;
	}
	if (topic_filter_parse(text->data, text->len, &tf) != TOPIC_OK ||
	    (g = sub_group_find(w->subs, &tf)) == NULL ||
	    place_one(w, g, skip, &placed) == -1)
		no_member(w, text, "no member left");
	else
		share_dispatch(w, &placed, 0, 1, &pkt.publish, level, raw,
		    rawlen, 0, 0);
	buf_free(&placed);
}

void
share_place_again(struct worker *w, uint8_t level, const uint8_t *raw,
    size_t rawlen, const struct mqtt_view *group)
{
	if (group != NULL && group->len > 0)
		place_group(w, group, NO_SKIP, level, raw, rawlen);
}

/*
 * SHARE_PUBLISH: a stored member's session ended before its message was
 * delivered, and walsvc has no other stored member for it: one of the
 * clean members gets it.
 */
void
share_handed(struct worker *w, const uint8_t *body, size_t len)
{
	static struct log_ratelimit	 rl;
	struct mqtt_view		 text;

	if (len < 4 || (text.len = buf_load_u16(body + 2)) == 0 ||
	    len - 4 < text.len + 2) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed shared message "
		    "from walsvc", "len=%zu", len);
		return;
	}
	text.data = body + 4;
	place_group(w, &text, share_walsvc_slot(w), body[0], body + 4 +
	    text.len, len - 4 - text.len);
}

/*
 * STORED_SET: how many stored sessions subscribe to a filter or group
 * now.  A group's count places messages; a plain filter's only says that
 * somebody wants them (PUBACK 0x10 otherwise), walsvc queueing them
 * from the log.
 */
void
stored_count(struct worker *w, const uint8_t *body, size_t len)
{
	static struct log_ratelimit	 rl;
	struct topic_filter		 tf;

	if (len < 5 || topic_filter_parse(body + 4, len - 4, &tf) !=
	    TOPIC_OK) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed stored filter count "
		    "from walsvc", "len=%zu", len);
		return;
	}
	if (sub_set_remote(w->subs, &tf, share_walsvc_slot(w),
	    buf_load_u32(body)) == -1)
		log_limited(&rl, LOG_LEVEL_ERROR, "out of memory applying a "
		    "stored filter count", "");
}

/* walsvc's counts, all of them (when the log link starts). */
void
stored_ask(struct worker *w)
{
	ipc_link_send(w->wal_link, IPC_STORED_ASK, 0, 0, NULL, 0);
}
