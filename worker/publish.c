/*
 * publish.c - PUBLISH in both directions, and PUBACK.
 *
 * Inbound (a client publishes):
 *   1) checks: QoS and RETAIN within what this broker grants, no topic
 *      alias (none is offered), the receive maximum respected;
 *   2) routing: the subscription table gives the local receivers and the
 *      workers with matching subscriptions; each of those workers gets
 *      the packet once (FWD_PUBLISH, batched per turn); a message for a
 *      receiver on this worker never leaves the process;
 *   3) QoS 1: the packet is appended to the message log through walsvc
 *      (walc.h); the PUBACK waits in a FIFO until the log reports the
 *      append durable under storage.wal-sync (wal-sync=none: at once).
 *      Delivery to online receivers does not wait for it: the brief
 *      allows QoS 1 to be forwarded before it is durable.
 *
 * Outbound (delivery to a receiver): QoS is the lower of the message's
 * and the subscription's.  QoS 1 messages beyond the client's receive
 * window wait in the connection's queue; every queue is bounded by
 * mqtt.max-queued-messages and mqtt.max-queued-bytes, and what a bound
 * drops is counted and logged (rate-limited), never silent.
 *
 * A stored session (connect.c) gets every message whose QoS for it is 1
 * or more from walsvc only (SESS_MSG), in log order, and never through
 * this worker's routing: its packet ids come from the session sequence,
 * so a message sent again after a reconnection keeps its id, and its
 * acknowledgements are appended to the log (ack records, one per session
 * and turn).  QoS 0 reaches it directly like any client.
 *
 * Packets travel between processes as the client sent them, with their
 * protocol level; every receiver decodes them with the one codec and
 * encodes what its client needs.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ipc_link.h"
#include "log.h"
#include "walc.h"
#include "walrec.h"
#include "worker.h"

/* Packet ids of a stored session's messages: from the sequence. */
#define SEQ_ID_SPACE	65535

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

static uint16_t
alloc_packet_id(struct conn *c)
{
	uint16_t	 id;
	unsigned	 i;

	for (;;) {
		id = c->next_packet_id++;
		if (c->next_packet_id == 0)
			c->next_packet_id = 1;
		for (i = 0; i < c->inflight_out; i++)
			if (c->inflight_ids[i] == id)
				break;
		if (i == c->inflight_out)
			return id;
	}
}

/* Encode one PUBLISH for this client; 0, or -1 if it cannot take it. */
static int
encode_to(struct conn *c, const struct mqtt_publish *m, uint8_t qos,
    uint16_t packet_id, uint8_t dup)
{
	struct mqtt_delivery	 d;
	struct buf		*out = conn_out(c);
	size_t			 start = out->len;

	memset(&d, 0, sizeof(d));
	d.qos = qos;
	d.dup = qos > 0 ? dup : 0;
	d.packet_id = packet_id;
	if (mqtt_encode_publish_header(out, m, c->level, &d, NULL) == -1 ||
	    buf_add(out, m->payload.data, m->payload.len) == -1) {
		buf_truncate(out, start);
		return -1;
	}
	if (c->max_out_packet && out->len - start > c->max_out_packet) {
		/* MQTT 5: never send more than the client's maximum */
		buf_truncate(out, start);
		drop(c, qos, "larger than the client's maximum packet size");
		return -1;
	}
	c->out_msgs++;
	c->w->stats.deliveries++;
	return 0;
}

/*
 * Send a QoS 1 message into the client's window.  seq: its session
 * sequence (a stored session's message from walsvc), which gives its
 * packet id; 0 for a message of this worker's routing.
 */
static int
send_qos1(struct conn *c, const struct mqtt_publish *m, uint64_t seq,
    uint8_t dup)
{
	uint16_t	 id;

	if (c->inflight_ids == NULL &&
	    (c->inflight_ids = calloc(c->send_max, sizeof(uint16_t))) == NULL)
		return -1;
	if (seq != 0 && c->inflight_seqs == NULL &&
	    (c->inflight_seqs = calloc(c->send_max, sizeof(uint64_t))) == NULL)
		return -1;
	id = seq != 0 ? (uint16_t)((seq - 1) % SEQ_ID_SPACE + 1) :
	    alloc_packet_id(c);
	if (encode_to(c, m, 1, id, dup) == -1) {
		/* never delivered: acknowledged as if the client had */
		if (seq != 0)
			session_ack(c, seq);
		return -1;
	}
	if (seq != 0)
		c->inflight_seqs[c->inflight_out] = seq;
	c->inflight_ids[c->inflight_out++] = id;
	return 0;
}

static int
queue_copy(struct conn *c, uint8_t level, uint8_t qos, const uint8_t *raw,
    size_t rawlen, uint64_t seq, uint8_t dup)
{
	struct queued_msg	*q;

	if ((q = malloc(sizeof(*q) + rawlen)) == NULL)
		return -1;
	q->next = NULL;
	q->seq = seq;
	q->dup = dup;
	q->level = level;
	q->qos = qos;
	q->len = (uint32_t)rawlen;
	memcpy(q->packet, raw, rawlen);
	if (c->qtail)
		c->qtail->next = q;
	else
		c->qhead = q;
	c->qtail = q;
	c->queued++;
	c->queued_bytes += rawlen;
	return 0;
}

static void
deliver(struct conn *c, const struct mqtt_publish *m, uint8_t level,
    const uint8_t *raw, size_t rawlen, uint8_t qos)
{
	const struct config	*cfg = &c->w->proc->cfg;
	uint64_t		 max_msgs, max_bytes;

	if (c->state != CONN_ACTIVE)
		return;
	max_msgs = (uint64_t)config_num(cfg, OPT_mqtt_max_queued_messages);
	max_bytes = (uint64_t)config_num(cfg, OPT_mqtt_max_queued_bytes);
	if (qos == 0) {
		if (c->out_msgs >= max_msgs || c->out.len >= max_bytes) {
			drop(c, 0, "output queue full");
			return;
		}
		encode_to(c, m, 0, 0, 0);
		return;
	}
	if (c->qhead == NULL && c->inflight_out < c->send_max) {
		send_qos1(c, m, 0, 0);
		return;
	}
	if (c->queued >= max_msgs || c->queued_bytes + rawlen > max_bytes) {
		drop(c, qos, "queue beyond the receive window full");
		return;
	}
	if (queue_copy(c, level, qos, raw, rawlen, 0, 0) == -1)
		drop(c, qos, "out of memory");
}

/* Send queued QoS 1 messages while the client's window has room. */
void
deliver_queued(struct conn *c)
{
	struct queued_msg	*q;
	struct mqtt_packet	 pkt;

	while ((q = c->qhead) != NULL && c->inflight_out < c->send_max &&
	    c->state == CONN_ACTIVE) {
		c->qhead = q->next;
		if (c->qhead == NULL)
			c->qtail = NULL;
		c->queued--;
		c->queued_bytes -= q->len;
		if (mqtt_decode_stored_publish(q->packet, q->len, q->level, &pkt) == 0)
			send_qos1(c, &pkt.publish, q->seq, q->dup);
		else if (q->seq != 0)
			session_ack(c, q->seq);
		free(q);
	}
}

void
deliver_free_queue(struct conn *c)
{
	struct queued_msg	*q;

	while ((q = c->qhead) != NULL) {
		c->qhead = q->next;
		free(q);
	}
	c->qtail = NULL;
	c->queued = 0;
	c->queued_bytes = 0;
}

static int
add_target(struct worker *w, size_t n, struct conn *c)
{
	struct conn	**t;
	size_t		  cap;

	if (n == w->targets_cap) {
		cap = w->targets_cap ? w->targets_cap * 2 : 64;
		if ((t = realloc(w->targets, cap * sizeof(*t))) == NULL)
			return -1;
		w->targets = t;
		w->targets_cap = cap;
	}
	w->targets[n] = c;
	return 0;
}

static void
forward(struct worker *w, unsigned slot, uint8_t level, uint64_t origin,
    const uint8_t *raw, size_t rawlen)
{
	struct buf	*b;
	size_t		 start;

	if (w->peers[slot].gen == 0)
		return;		/* down: its clients are gone */
	if ((b = ipc_link_record_begin(w->peers[slot].link, IPC_FWD_PUBLISH,
	    0, 0, &start)) == NULL)
		return;
	buf_add_u8(b, level);
	buf_add_u8(b, 0);
	buf_add_u64(b, origin);
	buf_add(b, raw, rawlen);
	if (buf_failed(b))
		buf_truncate(b, start);
	else {
		ipc_link_record_end(w->peers[slot].link, start);
		w->stats.forwarded++;
	}
}

/*
 * Deliver a message to the matching local subscribers and, when
 * `origin` is a client of ours, forward it to the other workers with
 * matching subscriptions.  A client with several matching subscriptions
 * gets the message once, at the highest of their QoS.
 */
void
publish_route(struct worker *w, struct conn *origin,
    const struct mqtt_publish *m, uint8_t level, const uint8_t *raw,
    size_t rawlen)
{
	static struct log_ratelimit	 rl;
	struct sub_match		*sm = &w->match;
	struct conn			*c;
	size_t				 i, n = 0;
	unsigned			 slot;
	uint64_t			 stamp;
	uint8_t				 qos;

	if (sub_match(w->subs, m->topic.data, m->topic.len, sm) == -1) {
		log_limited(&rl, LOG_LEVEL_ERROR, "out of memory matching "
		    "subscriptions; message not delivered", "");
		return;
	}
	if (origin) {
		for (slot = 0; slot < w->npeers; slot++)
			if (sub_match_worker(sm, slot))
				forward(w, slot, level, origin->id, raw, rawlen);
	}
	stamp = ++w->match_stamp;
	for (i = 0; i < sm->nhits; i++) {
		c = sm->hits[i].owner;
		if (sm->hits[i].options.no_local && c == origin)
			continue;
		if (c->match_stamp != stamp) {
			c->match_stamp = stamp;
			c->match_qos = sm->hits[i].options.qos;
			if (add_target(w, n, c) == -1)
				continue;
			n++;
		} else if (sm->hits[i].options.qos > c->match_qos)
			c->match_qos = sm->hits[i].options.qos;
	}
	for (i = 0; i < n; i++) {
		c = w->targets[i];
		qos = m->qos < c->match_qos ? m->qos : c->match_qos;
		/* a stored session gets that from walsvc, in log order */
		if (c->stored && qos > 0)
			continue;
		deliver(c, m, level, raw, rawlen, qos);
	}
}

static void
send_puback(struct conn *c, uint16_t packet_id)
{
	struct mqtt_packet	 pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBACK;
	pkt.ack.packet_id = packet_id;
	conn_send_packet(c, &pkt);
}

static int
push_ack(struct worker *w, uint64_t seq, uint64_t conn_id, uint16_t packet_id)
{
	struct pending_ack	*a;
	size_t			 n = w->acks_tail - w->acks_head, cap;

	if (w->acks_tail == w->acks_cap) {
		if (w->acks_head > 0) {
			/* slide the live part to the front */
			memmove(w->acks, w->acks + w->acks_head,
			    n * sizeof(*w->acks));
			w->acks_head = 0;
			w->acks_tail = n;
		} else {
			cap = w->acks_cap ? w->acks_cap * 2 : 256;
			if ((a = realloc(w->acks, cap * sizeof(*a))) == NULL)
				return -1;
			w->acks = a;
			w->acks_cap = cap;
		}
	}
	a = &w->acks[w->acks_tail++];
	a->seq = seq;
	a->conn_id = conn_id;
	a->packet_id = packet_id;
	return 0;
}

/* The log holds everything up to `seq`: the owed PUBACKs go out. */
void
publish_durable(struct worker *w, uint64_t seq)
{
	struct pending_ack	*a;
	struct conn		*c;

	while (w->acks_head < w->acks_tail &&
	    (a = &w->acks[w->acks_head])->seq <= seq) {
		w->acks_head++;
		if ((c = idmap_get(&w->conns_by_id, a->conn_id)) == NULL ||
		    c->state != CONN_ACTIVE)
			continue;
		send_puback(c, a->packet_id);
		c->inflight_in--;
		if (c->paused & PAUSE_INFLIGHT)
			conn_pause(c, PAUSE_INFLIGHT, 0);
	}
	if (w->acks_head == w->acks_tail)
		w->acks_head = w->acks_tail = 0;
	peers_check_backlog(w);
}

void
publish_handle(struct conn *c, const struct mqtt_packet *pkt,
    const uint8_t *raw, size_t rawlen)
{
	static struct log_ratelimit	 rl;
	const struct mqtt_publish	*m = &pkt->publish;
	struct worker			*w = c->w;
	const struct config		*cfg = &w->proc->cfg;
	struct buf			 rec = BUF_INITIALIZER;
	struct walrec_publish		 lr;
	uint64_t			 seq;
	int64_t				 max_qos = config_num(cfg, OPT_mqtt_max_qos);

	/* 1) what this broker grants */
	if (m->qos > 1 || m->qos > max_qos) {
		conn_close(c, MQTT_RC_QOS_NOT_SUPPORTED, "QoS not supported");
		return;
	}
	if (m->retain) {
		if (c->level == MQTT_LEVEL_5) {
			conn_close(c, MQTT_RC_RETAIN_NOT_SUPPORTED,
			    "retained messages are not supported");
			return;
		}
		/* 3.1.1 has no way to say so: deliver, do not keep */
		log_limited(&rl, LOG_LEVEL_NOTICE, "retained messages are not "
		    "supported; delivered without retaining", "client=%.*s",
		    (int)c->client_id_len, c->client_id);
	}
	if (mqtt_props_has(&m->props, MQTT_PROP_TOPIC_ALIAS)) {
		conn_close(c, MQTT_RC_TOPIC_ALIAS_INVALID,
		    "topic alias not offered");
		return;
	}
	if (m->qos == 1 && c->inflight_in >= config_num(cfg,
	    OPT_mqtt_max_inflight)) {
		if (c->level == MQTT_LEVEL_5) {
			conn_close(c, MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED,
			    "receive maximum exceeded");
			return;
		}
	}
	w->stats.publishes_in++;

	/* 2) to whoever subscribed, here and on the other workers */
	publish_route(w, c, m, c->level, raw, rawlen);

	/* 3) QoS 1: into the log; the PUBACK waits for it */
	if (m->qos == 1) {
		memset(&lr, 0, sizeof(lr));
		lr.format = WALREC_PUBLISH_V2;
		lr.level = c->level;
		lr.node = c->node;
		lr.sid = c->sid;
		lr.epoch = c->epoch;
		lr.packet_id = m->packet_id;
		lr.received = clock_wall_ms();
		lr.packet = raw;
		lr.len = rawlen;
		seq = walrec_publish_encode(&rec, &lr) == -1 ? 0 :
		    walc_append(w->walc, WAL_TYPE_PUBLISH, rec.data, rec.len);
		buf_free(&rec);
		if (seq == 0) {
			conn_close(c, MQTT_RC_UNSPECIFIED_ERROR,
			    "cannot log the message: out of memory");
			return;
		}
		c->inflight_in++;
		if (config_num(cfg, OPT_storage_wal_sync) == 2) {
			/* wal-sync=none: best effort, acknowledge now */
			send_puback(c, m->packet_id);
			c->inflight_in--;
		} else if (push_ack(w, seq, c->id, m->packet_id) == -1) {
			conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
			return;
		}
		/* 3.1.1 has no receive maximum: stop reading instead */
		if (c->inflight_in >= config_num(cfg, OPT_mqtt_max_inflight))
			conn_pause(c, PAUSE_INFLIGHT, 1);
	}
	peers_check_backlog(w);
}

/* A message another worker's client published, for our subscribers. */
void
publish_forwarded(struct worker *w, uint8_t level, uint64_t origin,
    const uint8_t *raw, size_t rawlen)
{
	static struct log_ratelimit	 rl;
	struct mqtt_packet		 pkt;

	if (mqtt_decode_stored_publish(raw, rawlen, level, &pkt) == -1) {
		log_limited(&rl, LOG_LEVEL_ERROR, "undecodable forwarded "
		    "message dropped", "level=%u len=%zu", level, rawlen);
		return;
	}
	publish_route(w, NULL, &pkt.publish, level, raw, rawlen);
}

/* The connection ended without DISCONNECT 0x00: its will goes out. */
void
publish_will(struct conn *c)
{
	struct mqtt_packet	 pkt;

	if (mqtt_decode_stored_publish(c->will->packet, c->will->len, c->level, &pkt) == -1)
		return;
	publish_route(c->w, c, &pkt.publish, c->level, c->will->packet,
	    c->will->len);
}

void
puback_handle(struct conn *c, const struct mqtt_packet *pkt)
{
	unsigned	 i;

	for (i = 0; i < c->inflight_out; i++) {
		if (c->inflight_ids[i] != pkt->ack.packet_id)
			continue;
		c->inflight_out--;
		if (c->inflight_seqs) {
			if (c->inflight_seqs[i] != 0)
				session_ack(c, c->inflight_seqs[i]);
			c->inflight_seqs[i] = c->inflight_seqs[c->inflight_out];
		}
		c->inflight_ids[i] = c->inflight_ids[c->inflight_out];
		deliver_queued(c);
		return;
	}
	/* an unknown id: the client acknowledges twice, harmless */
}

/*
 * A stored session's message from walsvc.  Sequences only grow for one
 * connection; one at or below the last received is a resend after a
 * walsvc restart, which this connection already has.
 */
void
session_message(struct worker *w, uint64_t conn_id, uint64_t seq,
    const uint8_t *body, size_t len)
{
	static struct log_ratelimit	 rl;
	struct conn			*c = idmap_get(&w->conns_by_id, conn_id);
	struct mqtt_packet		 pkt;
	const uint8_t			*raw = body + IPC_SESS_MSG_HEADER;
	size_t				 rawlen = len - IPC_SESS_MSG_HEADER;
	uint8_t				 qos, dup, level;

	if (c == NULL || c->state != CONN_ACTIVE || !c->stored ||
	    buf_load_u64(body + 8) != c->sid ||
	    buf_load_u32(body + 4) != c->epoch || seq <= c->last_seq)
		return;
	qos = body[16];
	dup = body[17];
	level = body[18];
	c->last_seq = seq;
	if (qos == 0 || mqtt_decode_stored_publish(raw, rawlen, level, &pkt) == -1) {
		log_limited(&rl, LOG_LEVEL_ERROR, "undecodable session message "
		    "dropped", "client=%.*s seq=%llu", (int)c->client_id_len,
		    c->client_id, (unsigned long long)seq);
		session_ack(c, seq);
		return;
	}
	w->stats.deliveries++;
	/* walsvc's credit bounds what waits here: no bound of our own */
	if (c->qhead == NULL && c->inflight_out < c->send_max)
		send_qos1(c, &pkt.publish, seq, dup);
	else if (queue_copy(c, level, 1, raw, rawlen, seq, dup) == -1) {
		/* it stays unacknowledged: sent again at the next connection */
		log_limited(&rl, LOG_LEVEL_ERROR, "out of memory queueing a "
		    "session message", "client=%.*s", (int)c->client_id_len,
		    c->client_id);
	}
}

/* Client acknowledged seq: appended with the others at the end of the turn. */
void
session_ack(struct conn *c, uint64_t seq)
{
	uint64_t	*a;
	uint32_t	 cap;

	if (c->nacks == c->acks_cap) {
		cap = c->acks_cap ? c->acks_cap * 2 : 16;
		if ((a = realloc(c->acks, cap * sizeof(*a))) == NULL)
			return;	/* sent again at the next connection */
		c->acks = a;
		c->acks_cap = cap;
	}
	c->acks[c->nacks++] = seq;
	if (!c->ack_dirty) {
		c->ack_dirty = 1;
		c->ack_next = c->w->acks_due;
		c->w->acks_due = c;
		conn_out(c);	/* a flush this turn */
	}
}

/* Append one connection's acknowledgements (losing them costs a resend). */
void
session_ack_conn(struct conn *c)
{
	struct buf	 b = BUF_INITIALIZER;
	uint32_t	 i = 0, n;

	while (i < c->nacks) {
		walrec_ack_begin(&b, c->node, c->sid, c->epoch);
		for (n = 0; i < c->nacks && n < WALREC_ACK_MAX; n++)
			walrec_ack_add(&b, c->acks[i++], WALREC_ACK_DONE);
		if (walrec_ack_end(&b) == 0)
			walc_append(c->w->walc, WAL_TYPE_ACK, b.data, b.len);
	}
	buf_free(&b);
	c->nacks = 0;
}

/* End of the turn: the acknowledgements it collected go to the log. */
void
session_acks_flush(struct worker *w)
{
	struct conn	*c;

	while ((c = w->acks_due) != NULL) {
		w->acks_due = c->ack_next;
		c->ack_dirty = 0;
		c->ack_next = NULL;
		if (c->stored && c->nacks > 0)
			session_ack_conn(c);
	}
}
