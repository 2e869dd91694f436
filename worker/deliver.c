/*
 * deliver.c - messages to clients: PUBLISH out, and the PUBACK, PUBREC
 * and PUBCOMP that complete them.
 *
 * QoS is the lower of the message's and the subscription's.  At QoS 1
 * and 2 at most min(mqtt.max-inflight, the client's Receive Maximum)
 * messages are unacknowledged at once (a QoS 2 one until its PUBCOMP);
 * the rest wait in the connection's queue, bounded by
 * mqtt.max-queued-messages and mqtt.max-queued-bytes, and what a bound
 * drops is counted and logged (rate-limited), never silent.
 *
 * QoS 2 to a client:
 *   1) PUBLISH (QoS 2, a packet id);
 *   2) PUBREC from the client: it has the message; we send PUBREL (a
 *      stored session first records that it was received, so that
 *      after any crash the PUBREL is sent again, never the PUBLISH);
 *   3) PUBCOMP: done, the window has room again.
 *
 * A stored session's messages come from walsvc (session.c), with packet
 * ids derived from their session sequence and no bound of ours (walsvc
 * sends no more than its credit); their acknowledgements go to the log.
 * The id space is split for a stored session: ids from sequences are
 * 1 .. 32767, the worker's own (retained messages) 32768 .. 65535.
 *
 * Retained messages for a new subscription (subscribe.c) are sent
 * before anything routed to the client after its SUBSCRIBE: while a
 * lookup is out, routed messages wait in the queue, and retained ones
 * go to a queue of their own that is sent first.  So the last value a
 * subscriber sees for a topic is never the retained one after a newer
 * live one.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "topic.h"
#include "walrec.h"
#include "worker.h"

/* Packet ids of a stored session's messages: from the sequence. */
#define SEQ_ID_SPACE	32767
#define OWN_ID_FIRST	32768	/* a stored session's worker-made ids */

static void
drop(struct conn *c, int qos, const char *why)
{
	static struct log_ratelimit	 rl;

	if (qos == 0)
		c->w->stats.dropped_qos0++;
	else
		c->w->stats.dropped_queue++;
	log_limited(&rl, LOG_LEVEL_WARN, "message dropped for a slow client",
	    "client=%.*s qos=%d why=\"%s\" dropped_qos0=%llu "
	    "dropped_queued=%llu", (int)c->client_id_len, c->client_id, qos,
	    why, (unsigned long long)c->w->stats.dropped_qos0,
	    (unsigned long long)c->w->stats.dropped_queue);
}

static struct inflight *
find_inflight(struct conn *c, uint16_t id)
{
	unsigned	 i;

	for (i = 0; i < c->inflight_out; i++)
		if (c->inflight[i].id == id)
			return &c->inflight[i];
	return NULL;
}

static uint16_t
alloc_packet_id(struct conn *c)
{
	uint16_t	 id;

	for (;;) {
		id = c->next_packet_id++;
		if (c->next_packet_id == 0)
			c->next_packet_id = c->stored ? OWN_ID_FIRST : 1;
		if (c->stored && id < OWN_ID_FIRST)
			continue;
		if (find_inflight(c, id) == NULL)
			return id;
	}
}

struct conn_aliases *
conn_aliases(struct conn *c)
{
	struct conn_rare	*r;

	if (c->rare->aliases == NULL && (r = conn_rare(c)) != NULL)
		r->aliases = calloc(1, sizeof(*r->aliases));
	return c->rare->aliases;
}

void
conn_aliases_free(struct conn *c)
{
	struct conn_aliases	*ca = c->rare->aliases;
	uint16_t		 i;

	if (ca == NULL)
		return;
	for (i = 0; ca->in && i < c->alias_max; i++)
		free(ca->in[i].topic);
	for (i = 0; ca->out && i < ca->out_max; i++)
		free(ca->out[i].topic);
	free(ca->in);
	free(ca->out);
	free(ca);
	conn_rare(c)->aliases = NULL;
}

/*
 * Our alias for this topic to a client that takes them (its Topic Alias
 * Maximum): the one it knows (*known), else a free one or the least
 * recently used, to be sent with the topic.  0: none (the client takes
 * none, or out of memory).  Nothing is committed: see alias_commit().
 */
static uint16_t
alias_pick(struct conn *c, const struct mqtt_view *topic, int *known)
{
	struct conn_aliases	*ca = c->rare->aliases;
	struct topic_alias	*a;
	uint16_t		 i, pick = 0;

	*known = 0;
	if (ca == NULL || ca->out_max == 0 || topic->len == 0)
		return 0;
	if (ca->out == NULL && (ca->out = calloc(ca->out_max,
	    sizeof(*ca->out))) == NULL)
		return 0;
	for (i = 0; i < ca->out_max; i++) {
		a = &ca->out[i];
		if (a->topic == NULL) {
			/* a free one before any in use */
			if (pick == 0 || ca->out[pick - 1].topic != NULL)
				pick = (uint16_t)(i + 1);
			continue;
		}
		if (a->len == topic->len && memcmp(a->topic, topic->data,
		    topic->len) == 0) {
			*known = 1;
			return (uint16_t)(i + 1);
		}
		if (pick == 0 || (ca->out[pick - 1].topic != NULL &&
		    a->used < ca->out[pick - 1].used))
			pick = (uint16_t)(i + 1);
	}
	return pick;
}

/* The PUBLISH with this alias is in the output: the client knows it. */
static void
alias_commit(struct conn *c, uint16_t alias, int known,
    const struct mqtt_view *topic, uint8_t *copy)
{
	struct topic_alias	*a = &c->rare->aliases->out[alias - 1];

	if (!known) {
		free(a->topic);
		a->topic = copy;
		a->len = (uint16_t)topic->len;
	}
	a->used = ++c->rare->aliases->clock;
}

/*
 * Whether subscription s brought a message of this kind: a plain one
 * (group NULL) by its filter; a shared one by its group, or (length 0:
 * walsvc's) by being shared with a filter that matches.  The client's
 * filters were checked when it subscribed: only walsvc's case needs
 * the filter proper, past "$share/NAME/".
 */
static int
brought(const struct conn_sub *s, const struct mqtt_view *topic,
    const struct mqtt_view *group)
{
	struct topic_filter	 tf;
	int			 shared = topic_is_shared(s->filter, s->len);

	if (group == NULL)
		return !shared && topic_match(s->filter, s->len, topic->data,
		    topic->len);
	if (!shared)
		return 0;
	if (group->len > 0)
		return s->len == group->len &&
		    memcmp(s->filter, group->data, group->len) == 0;
	return topic_filter_parse(s->filter, s->len, &tf) == TOPIC_OK &&
	    topic_match(tf.filter, tf.filter_len, topic->data, topic->len);
}

/*
 * The Subscription Identifiers of the client's subscriptions that
 * brought the message, in the worker's array (grown as needed, kept for
 * the next).
 */
static const uint32_t *
matching_ids(struct conn *c, const struct mqtt_view *topic,
    const struct mqtt_view *group, size_t *n)
{
	struct worker		*w = c->w;
	const struct conn_sub	*s;
	uint32_t		*more;
	size_t			 cap;

	*n = 0;
	for (s = c->subs; s; s = s->next) {
		if (s->options.sub_id == 0 || !brought(s, topic, group))
			continue;
		if (*n == w->sub_ids_cap) {
			cap = w->sub_ids_cap ? w->sub_ids_cap * 2 : 16;
			if ((more = realloc(w->sub_ids, cap * sizeof(*more))) ==
			    NULL)
				break;	/* out of memory: those that fit */
			w->sub_ids = more;
			w->sub_ids_cap = cap;
		}
		w->sub_ids[(*n)++] = s->options.sub_id;
	}
	return w->sub_ids;
}

/* Encode one PUBLISH for this client; 0, or -1 if it cannot take it. */
static int
encode_to(struct conn *c, const struct mqtt_publish *m, uint8_t qos,
    uint16_t packet_id, uint8_t dup, uint8_t retain,
    const struct mqtt_view *group)
{
	static struct log_ratelimit	 rl;
	struct mqtt_delivery		 d;
	struct buf			*out = conn_out(c);
	size_t				 start = out->len, size;
	uint8_t				*copy = NULL;
	int				 known = 0;

	memset(&d, 0, sizeof(d));
	d.qos = qos;
	d.dup = qos > 0 ? dup : 0;
	d.retain = retain;
	d.packet_id = packet_id;
	/* 5.0: the identifiers of every subscription of the client's that
	 * matches, whichever way the message came (MQTT-3.3.4-3) */
	if (c->has_sub_ids && c->level == MQTT_LEVEL_5)
		d.sub_ids = matching_ids(c, &m->topic, group,
		    &d.sub_id_count);
	/* in wire order: an alias is the client's once its PUBLISH is */
	if (c->rare->aliases != NULL && (d.topic_alias = alias_pick(c, &m->topic,
	    &known)) != 0) {
		d.alias_only = (uint8_t)known;
		if (!known && (copy = malloc(m->topic.len)) == NULL)
			d.topic_alias = 0;
		else if (!known)
			memcpy(copy, m->topic.data, m->topic.len);
	}
	if (mqtt_encode_publish_header(out, m, c->level, &d, NULL) == -1 ||
	    buf_add(out, m->payload.data, m->payload.len) == -1) {
		buf_truncate(out, start);
		free(copy);
		return -1;
	}
	if (c->max_out_packet && out->len - start > c->max_out_packet) {
		/* MQTT 5: never send more than the client's maximum (an
		 * alias not sent is not the client's) */
		size = out->len - start;
		buf_truncate(out, start);
		free(copy);
		c->w->stats.dropped_too_large++;
		log_limited(&rl, LOG_LEVEL_INFO, "message not sent: larger "
		    "than the client's maximum packet size", "client=%.*s "
		    "size=%zu maximum=%u", (int)c->client_id_len,
		    c->client_id, size, c->max_out_packet);
		return -1;
	}
	if (d.topic_alias != 0)
		alias_commit(c, d.topic_alias, known, &m->topic, copy);
	c->out_msgs++;
	c->w->stats.deliveries++;
	stats_sent(c->w, MQTT_PUBLISH, out->len - start);
	return 0;
}

/*
 * Send a QoS 1 or 2 message into the client's window.  seq: its session
 * sequence (a stored session's message from walsvc), which gives its
 * packet id; 0 for a message of this worker's routing.  received: when
 * its publisher's PUBLISH was read (clock_mono_us(); 0: not known), for
 * the latency of QoS 1 deliveries.
 */
static int
send_window(struct conn *c, const struct mqtt_publish *m, uint8_t qos,
    uint64_t seq, uint8_t dup, uint8_t retain, uint64_t received,
    const struct mqtt_view *group)
{
	struct inflight	*f;
	uint16_t	 id;

	if (c->inflight == NULL &&
	    (c->inflight = calloc(c->send_max, sizeof(*c->inflight))) == NULL)
		return -1;
	id = seq != 0 ? (uint16_t)((seq - 1) % SEQ_ID_SPACE + 1) :
	    alloc_packet_id(c);
	if (seq > c->rare->sent_seq)
		conn_rare(c)->sent_seq = seq;	/* a stored session: made */
	if (encode_to(c, m, qos, id, dup, retain, group) == -1) {
		/* never delivered: done as far as the session goes */
		if (seq != 0)
			session_ack(c, seq, WALREC_ACK_DONE, 0, 0);
		return -1;
	}
	f = &c->inflight[c->inflight_out++];
	f->seq = seq;
	f->keep = NULL;
	f->id = id;
	f->qos = qos;
	f->released = 0;
	if (qos == 1)
		stats_latency(c->w, seq != 0 ? METRICS_PATH_STORED :
		    METRICS_PATH_DIRECT, received);
	return 0;
}

/* When a message with this remaining Message Expiry Interval expires. */
static int64_t
expires_at(uint32_t interval)
{
	return interval == NO_EXPIRY ? 0 : clock_mono_ms() +
	    (int64_t)interval * 1000;
}

/* A copy of a message, with its group's text if it has one. */
static struct queued_msg *
msg_copy(uint8_t level, const uint8_t *raw, size_t rawlen,
    const struct mqtt_view *group)
{
	struct queued_msg	*q;
	size_t			 glen = group ? group->len : 0;

	if ((q = malloc(sizeof(*q) + rawlen + glen)) == NULL)
		return NULL;
	memset(q, 0, sizeof(*q));
	q->level = level;
	q->len = (uint32_t)rawlen;
	memcpy(q->packet, raw, rawlen);
	q->shared = group != NULL;
	q->group_len = (uint16_t)glen;
	if (glen > 0)
		memcpy(q->packet + rawlen, group->data, glen);
	return q;
}

static struct mqtt_view *
group_of(struct queued_msg *q, struct mqtt_view *v)
{
	if (!q->shared)
		return NULL;
	v->data = q->packet + q->len;
	v->len = q->group_len;
	return v;
}

static struct queued_msg *
queue_copy(struct conn *c, uint8_t level, uint8_t qos, const uint8_t *raw,
    size_t rawlen, uint64_t seq, uint8_t dup, uint8_t retain,
    uint32_t expiry, uint64_t received, const struct mqtt_view *group)
{
	struct queued_msg	*q;

	if ((q = msg_copy(level, raw, rawlen, group)) == NULL)
		return NULL;
	q->seq = seq;
	q->dup = dup;
	q->retain = retain;
	q->expires = expires_at(expiry);
	q->qos = qos;
	q->received = received;
	if (c->qtail)
		c->qtail->next = q;
	else
		c->qhead = q;
	c->qtail = q;
	c->queued++;
	c->queued_bytes += rawlen;
	return q;
}

/*
 * The shared QoS 1 delivery just put in the window stays with it until
 * the client acknowledges it: if the session ends first, it goes to
 * another member (MQTT 5.0 4.8.2).  A QoS 2 one never does: its delivery
 * has begun, and it may go to no other member (MQTT-4.8.2-5).  Out of
 * memory, it is only not placed again.
 */
static void
keep_shared(struct conn *c, uint8_t level, const uint8_t *raw, size_t rawlen,
    const struct mqtt_view *group)
{
	struct inflight	*f = &c->inflight[c->inflight_out - 1];

	if (f->qos == 1)
		f->keep = msg_copy(level, raw, rawlen, group);
}

/* A message of this worker's routing, at its delivery QoS. */
void
deliver(struct conn *c, const struct mqtt_publish *m, uint8_t level,
    const uint8_t *raw, size_t rawlen, uint8_t qos, uint8_t retain,
    uint64_t received, const struct mqtt_view *group)
{
	const struct config	*cfg = &c->w->proc->cfg;
	uint64_t		 max_msgs, max_bytes;

	if (c->state != CONN_ACTIVE)
		return;
	max_msgs = (uint64_t)config_num(cfg, OPT_mqtt_max_queued_messages);
	max_bytes = (uint64_t)config_num(cfg, OPT_mqtt_max_queued_bytes);
	if (qos == 0 && c->rare->ret_pending == 0) {
		if (c->out_msgs >= max_msgs || c->out.len >= max_bytes) {
			drop(c, 0, "output queue full");
			return;
		}
		encode_to(c, m, 0, 0, 0, retain, group);
		return;
	}
	if (c->qhead == NULL && c->rare->ret_pending == 0 &&
	    c->inflight_out < c->send_max) {
		if (send_window(c, m, qos, 0, 0, retain, received, group) == 0 &&
		    group != NULL)
			keep_shared(c, level, raw, rawlen, group);
		return;
	}
	if (c->queued >= max_msgs || c->queued_bytes + rawlen > max_bytes) {
		drop(c, qos, c->rare->ret_pending ? "queue full while retained "
		    "messages come" : "queue beyond the receive window full");
		return;
	}
	if (queue_copy(c, level, qos, raw, rawlen, 0, 0, retain,
	    mqtt_props_has(&m->props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL) ?
	    m->props.message_expiry_interval : NO_EXPIRY, received,
	    group) == NULL)
		drop(c, qos, "out of memory");
}

/*
 * A retained message for a new subscription, at its delivery QoS, with
 * RETAIN set and its remaining expiry.  Bounded like any queue.
 */
void
deliver_retained(struct conn *c, uint8_t level, const uint8_t *raw,
    size_t rawlen, uint8_t qos, uint32_t expiry)
{
	const struct config	*cfg = &c->w->proc->cfg;
	struct queued_msg	*q;
	struct conn_rare	*r;

	if (c->state != CONN_ACTIVE)
		return;
	/* published while the lookup was out: it waits here live too */
	for (q = c->qhead; q; q = q->next)
		if (q->len == rawlen && q->level == level &&
		    memcmp(q->packet, raw, rawlen) == 0)
			return;
	if (c->rare->rqueued >= (uint64_t)config_num(cfg,
	    OPT_mqtt_max_queued_messages)) {
		drop(c, qos, "too many retained messages at once");
		return;
	}
	/* a lookup is out: the rare fields are made */
	if ((r = conn_rare(c)) == NULL ||
	    (q = msg_copy(level, raw, rawlen, NULL)) == NULL) {
		drop(c, qos, "out of memory");
		return;
	}
	q->qos = qos;
	q->retain = 1;
	q->received = 0;	/* retained: not a latency */
	q->expires = expires_at(expiry);
	if (r->rtail)
		r->rtail->next = q;
	else
		r->rhead = q;
	r->rtail = q;
	r->rqueued++;
	deliver_queued(c);
}

/*
 * A stored session's message from walsvc (m carries its remaining
 * expiry, `expiry`): walsvc's credit bounds it.
 */
void
deliver_stored(struct conn *c, const struct mqtt_publish *m, uint8_t level,
    const uint8_t *raw, size_t rawlen, uint8_t qos, uint64_t seq, uint8_t dup,
    uint8_t retain, uint32_t expiry, uint64_t received,
    const struct mqtt_view *group)
{
	static struct log_ratelimit	 rl;

	if (qos == 0 && c->qhead == NULL && c->rare->ret_pending == 0) {
		/* kept while the session was away (mqtt.queue-qos0), or a
		 * shared group's: sent is delivered */
		encode_to(c, m, 0, 0, 0, retain, group);
		session_ack(c, seq, WALREC_ACK_DONE, 0, 0);
	} else if (qos > 0 && c->qhead == NULL && c->rare->ret_pending == 0 &&
	    c->inflight_out < c->send_max)
		send_window(c, m, qos, seq, dup, retain, received, group);
	else if (queue_copy(c, level, qos, raw, rawlen, seq, dup,
	    retain, expiry, received, group) == NULL)
		/* it stays unacknowledged: sent again at the next connection */
		log_limited(&rl, LOG_LEVEL_ERROR, "out of memory queueing a "
		    "session message", "client=%.*s", (int)c->client_id_len,
		    c->client_id);
}

void
deliver_send_pubrel(struct conn *c, uint16_t id)
{
	struct inflight	*f;

	if (c->state != CONN_ACTIVE || (f = find_inflight(c, id)) == NULL ||
	    f->qos != 2)
		return;
	f->released = 1;
	deliver_ack(c, MQTT_PUBREL, id, 0);
}

/*
 * A stored session's QoS 2 message the client had received before this
 * connection (PUBREC recorded): only its PUBREL is sent again.
 */
void
deliver_release(struct conn *c, uint64_t seq)
{
	struct inflight	*f;

	if (c->inflight == NULL &&
	    (c->inflight = calloc(c->send_max, sizeof(*c->inflight))) == NULL)
		return;		/* sent again at the next connection */
	if (c->inflight_out >= c->send_max)
		return;		/* walsvc's credit prevents it */
	f = &c->inflight[c->inflight_out++];
	f->seq = seq;
	f->id = (uint16_t)((seq - 1) % SEQ_ID_SPACE + 1);
	f->qos = 2;
	f->released = 1;
	if (seq > c->rare->sent_seq)
		conn_rare(c)->sent_seq = seq;	/* a stored session: made */
	deliver_ack(c, MQTT_PUBREL, f->id, 0);
}

/*
 * One queued message goes out (QoS 0 at once, else into the window),
 * with what is left of its Message Expiry Interval; not at all once
 * that is over (MQTT-3.3.2-5).
 */
static void
send_queued(struct conn *c, struct queued_msg *q)
{
	static struct log_ratelimit	 rl;
	struct mqtt_packet		 pkt;
	struct mqtt_view		 gv, *group = group_of(q, &gv);
	int64_t				 left = 0;

	if (q->expires != 0)
		left = q->expires - clock_mono_ms();
	if (mqtt_decode_stored_publish(q->packet, q->len, q->level, &pkt) ==
	    -1 || (q->expires != 0 && left <= 0)) {
		if (q->expires != 0 && left <= 0) {
			c->w->stats.expired++;
			log_limited(&rl, LOG_LEVEL_INFO, "expired message not "
			    "sent", "client=%.*s expired_total=%llu",
			    (int)c->client_id_len, c->client_id,
			    (unsigned long long)c->w->stats.expired);
		}
		if (q->seq != 0)
			session_ack(c, q->seq, WALREC_ACK_DONE, 0, 0);
		return;
	}
	if (q->expires != 0 && mqtt_props_has(&pkt.publish.props,
	    MQTT_PROP_MESSAGE_EXPIRY_INTERVAL))
		pkt.publish.props.message_expiry_interval =
		    (uint32_t)((left + 999) / 1000);
	if (q->qos == 0) {
		encode_to(c, &pkt.publish, 0, 0, 0, q->retain, group);
		if (q->seq != 0)
			session_ack(c, q->seq, WALREC_ACK_DONE, 0, 0);
	} else if (send_window(c, &pkt.publish, q->qos, q->seq, q->dup,
	    q->retain, q->received, group) == 0 && group != NULL &&
	    q->seq == 0)
		keep_shared(c, q->level, q->packet, q->len, group);
}

/*
 * Send what waits while the client's window has room: retained messages
 * for a new subscription first, the rest once no lookup is out.
 */
void
deliver_queued(struct conn *c)
{
	struct queued_msg	*q;
	struct conn_rare	*r;

	while ((q = c->rare->rhead) != NULL && c->state == CONN_ACTIVE &&
	    (q->qos == 0 || c->inflight_out < c->send_max)) {
		r = conn_rare(c);	/* made: it holds q */
		r->rhead = q->next;
		if (r->rhead == NULL)
			r->rtail = NULL;
		r->rqueued--;
		send_queued(c, q);
		free(q);
	}
	if (c->rare->rhead != NULL || c->rare->ret_pending > 0)
		return;
	while ((q = c->qhead) != NULL && c->state == CONN_ACTIVE &&
	    (q->qos == 0 || c->inflight_out < c->send_max)) {
		c->qhead = q->next;
		if (c->qhead == NULL)
			c->qtail = NULL;
		c->queued--;
		c->queued_bytes -= q->len;
		send_queued(c, q);
		free(q);
	}
}

/*
 * A clean session ends: its shared deliveries that are not complete go
 * to another member of their group, in the order they came: QoS 1 ones
 * in the window, and whatever is still queued (not sent, so not begun).
 */
void
deliver_share_again(struct conn *c)
{
	struct queued_msg	*q, **qp;
	struct mqtt_view	 gv;
	unsigned		 i;

	for (i = 0; i < c->inflight_out; i++)
		if ((q = c->inflight[i].keep) != NULL) {
			share_place_again(c->w, q->level, q->packet, q->len,
			    group_of(q, &gv));
			free(q);
			c->inflight[i].keep = NULL;
		}
	for (qp = &c->qhead; (q = *qp) != NULL; )
		if (q->shared && q->seq == 0) {
			share_place_again(c->w, q->level, q->packet, q->len,
			    group_of(q, &gv));
			*qp = q->next;
			c->queued--;
			c->queued_bytes -= q->len;
			free(q);
		} else
			qp = &q->next;
	c->qtail = NULL;
	for (q = c->qhead; q; q = q->next)
		c->qtail = q;
}

void
deliver_free_queue(struct conn *c)
{
	struct queued_msg	*q;
	struct conn_rare	*r;
	unsigned		 i;

	for (i = 0; i < c->inflight_out; i++) {
		free(c->inflight[i].keep);
		c->inflight[i].keep = NULL;
	}
	while ((q = c->qhead) != NULL) {
		c->qhead = q->next;
		free(q);
	}
	if (c->rare->rhead != NULL) {
		r = conn_rare(c);	/* made: it holds them */
		while ((q = r->rhead) != NULL) {
			r->rhead = q->next;
			free(q);
		}
		r->rtail = NULL;
		r->rqueued = 0;
	}
	c->qtail = NULL;
	c->queued = 0;
	c->queued_bytes = 0;
}

/* PUBACK, PUBREC, PUBREL or PUBCOMP with a reason (5.0; 0: success). */
void
deliver_ack(struct conn *c, uint8_t type, uint16_t id, uint8_t reason)
{
	struct mqtt_packet	 pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = type;
	pkt.ack.packet_id = id;
	if (c->level == MQTT_LEVEL_5)
		pkt.ack.reason = reason;
	conn_send_packet(c, &pkt);
}

/* The message with this window slot is complete: its slot is free. */
static void
complete(struct conn *c, struct inflight *f)
{
	if (f->seq != 0)
		session_ack(c, f->seq, WALREC_ACK_DONE, 0, 0);
	free(f->keep);
	*f = c->inflight[--c->inflight_out];
	deliver_queued(c);
}

void
puback_handle(struct conn *c, const struct mqtt_packet *pkt)
{
	struct inflight	*f = find_inflight(c, pkt->ack.packet_id);

	/* an unknown id: the client acknowledges twice, harmless */
	if (f != NULL && f->qos == 1)
		complete(c, f);
}

void
pubrec_handle(struct conn *c, const struct mqtt_packet *pkt)
{
	struct inflight	*f = find_inflight(c, pkt->ack.packet_id);

	if (f == NULL || f->qos != 2) {
		/* MQTT 5 says so; a 3.x client gets a plain PUBREL, as
		 * Mosquitto sends, so that it can finish the exchange and
		 * free the id (a session lost by a server without one) */
		deliver_ack(c, MQTT_PUBREL, pkt->ack.packet_id,
		    MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND);
		return;
	}
	/* 5.0: a PUBREC with an error ends the exchange here */
	if (c->level == MQTT_LEVEL_5 && pkt->ack.reason >= 0x80) {
		complete(c, f);
		return;
	}
	if (f->released) {
		deliver_ack(c, MQTT_PUBREL, f->id, 0);	/* a repeat */
		return;
	}
	if (f->seq == 0) {
		f->released = 1;
		deliver_ack(c, MQTT_PUBREL, f->id, 0);
		return;
	}
	/* a stored session: PUBREL once "received" is in the log */
	if (session_ack(c, f->seq, WALREC_ACK_RECEIVED, ANSWER_PUBREL,
	    f->id) == -1)
		conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
}

void
pubcomp_handle(struct conn *c, const struct mqtt_packet *pkt)
{
	struct inflight	*f = find_inflight(c, pkt->ack.packet_id);

	if (f != NULL && f->qos == 2 && f->released)
		complete(c, f);
}
