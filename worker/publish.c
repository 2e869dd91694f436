/*
 * publish.c - messages from clients: PUBLISH in, PUBREL, and routing.
 *
 * A client publishes:
 *   1) checks: QoS and RETAIN within what this broker grants, no topic
 *      alias (none is offered), the receive maximum respected (MQTT 5:
 *      DISCONNECT 0x93 past it, counted, never by not reading);
 *   2) QoS 0 and 1: routed at once (the brief allows QoS 1 to reach
 *      online subscribers before it is durable); QoS 1 is appended to the
 *      log through walsvc (walc.h) and its PUBACK waits, in a FIFO, until
 *      the log reports the append durable under storage.wal-sync;
 *   3) QoS 2: appended to the log, and routed and answered with PUBREC
 *      only once durable, so that nobody gets a message the log could
 *      still lose; its packet id stays "received" until the client's
 *      PUBREL, and a PUBLISH with that id meanwhile (a resend with DUP)
 *      gets PUBREC again without being delivered twice.  A stored
 *      session records the release before answering PUBCOMP
 *      (session.c); a clean one answers at once.
 * Reading stops while the messages waiting for the log reach
 * mqtt.max-inflight (3.x clients have no Receive Maximum); a QoS 2
 * message waiting for its PUBREL never stops reading.
 *
 * Routing: the subscription table gives the local receivers and the
 * workers with matching subscriptions; each of those workers gets the
 * packet once (FWD_PUBLISH, batched per turn); a message for a receiver
 * on this worker never leaves the process.  Stored sessions get their
 * QoS >= 1 messages from walsvc instead (session.c).
 *
 * Packets travel between processes as the client sent them, with their
 * protocol level; every receiver decodes them with the one codec and
 * encodes what its client needs.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ipc_link.h"
#include "acl.h"
#include "log.h"
#include "utf8.h"
#include "walc.h"
#include "walrec.h"
#include "worker.h"

#define SYNC_NONE	2	/* storage.wal-sync = none */

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

/*
 * A FWD_PUBLISH to worker `slot`, its header written: the caller adds
 * what its flags say follows, then publish_forward_end().  NULL when the
 * worker is down (its clients are gone) or the link cannot take it.
 */
struct buf *
publish_forward_begin(struct worker *w, unsigned slot, uint8_t level,
    uint8_t flags, uint64_t origin, uint64_t received, size_t *start)
{
	struct buf	*b;

	if (w->peers[slot].gen == 0 || (b = ipc_link_record_begin(
	    w->peers[slot].link, IPC_FWD_PUBLISH, 0, 0, start)) == NULL)
		return NULL;
	buf_add_u8(b, level);
	buf_add_u8(b, flags);
	buf_add_u64(b, origin);
	buf_add_u64(b, received);
	return b;
}

/* The packet, and the record goes (or nothing, out of memory). */
void
publish_forward_end(struct worker *w, unsigned slot, struct buf *b,
    size_t start, const uint8_t *raw, size_t rawlen)
{
	buf_add(b, raw, rawlen);
	if (buf_failed(b))
		buf_truncate(b, start);
	else {
		ipc_link_record_end(w->peers[slot].link, start);
		w->stats.forwarded++;
	}
}

static void
forward(struct worker *w, unsigned slot, uint8_t level, uint64_t origin,
    uint64_t received, const uint8_t *raw, size_t rawlen)
{
	struct buf	*b;
	size_t		 start;

	if ((b = publish_forward_begin(w, slot, level, 0, origin, received,
	    &start)) != NULL)
		publish_forward_end(w, slot, b, start, raw, rawlen);
}

/*
 * Deliver a message to the matching local subscribers and, when it was
 * published here (ROUTE_HERE), forward it to the other workers with
 * matching subscriptions and place it with one member of each matching
 * shared group (share.c): `placed` when it was placed before (QoS 2, at
 * logging), else now, into w->placed, where the caller finds walsvc's
 * picks for its record (ROUTE_LOG_PICKS: there is none, append one).
 * origin: the publishing connection, if it is still open (no-local).  A
 * client with several matching subscriptions gets the message once, at
 * the highest of their QoS.  received: when the publisher's PUBLISH was
 * read (clock_mono_us(), the same clock in every process; 0: not
 * measured).
 */
void
publish_route(struct worker *w, struct conn *origin, int flags,
    const struct mqtt_publish *m, uint8_t level, const uint8_t *raw,
    size_t rawlen, uint64_t received, const struct buf *placed)
{
	static struct log_ratelimit	 rl;
	struct sub_match		*sm = &w->match;
	struct conn			*c;
	size_t				 i, n = 0;
	unsigned			 slot;
	uint64_t			 stamp;
	uint8_t				 qos;

	if (placed != &w->placed)
		buf_truncate(&w->placed, 0);
	w->matched = 1;		/* unless the match says otherwise */
	if (sub_match(w->subs, m->topic.data, m->topic.len, sm) == -1) {
		log_limited(&rl, LOG_LEVEL_ERROR, "out of memory matching "
		    "subscriptions; message not delivered", "");
		return;
	}
	if (flags & ROUTE_HERE) {
		/* anywhere: here, another worker, walsvc's stored sessions */
		w->matched = sub_match_anywhere(sm);
		for (slot = 0; slot < w->npeers; slot++)
			if (sub_match_worker(sm, slot))
				forward(w, slot, level, origin ? origin->id : 0,
				    received, raw, rawlen);
		if (placed == NULL && sm->nshares > 0) {
			share_place(w, sm, &w->placed);
			placed = &w->placed;
		}
		if (placed != NULL && placed->len > 0)
			share_dispatch(w, placed, 0, flags & ROUTE_LOG_PICKS, m,
			    level, raw, rawlen, origin ? origin->id : 0,
			    received);
	}
	stamp = ++w->match_stamp;
	for (i = 0; i < sm->nhits; i++) {
		c = sm->hits[i].owner;
		if (sm->hits[i].options.no_local && c == origin)
			continue;
		if (c->match_stamp != stamp) {
			c->match_stamp = stamp;
			c->match_qos = sm->hits[i].options.qos;
			c->match_rap = 0;
			if (add_target(w, n, c) == -1)
				continue;
			n++;
		} else if (sm->hits[i].options.qos > c->match_qos)
			c->match_qos = sm->hits[i].options.qos;
		if (sm->hits[i].options.retain_as_published)
			c->match_rap = 1;
	}
	for (i = 0; i < n; i++) {
		c = w->targets[i];
		/* auth.acl-file: only what the subscriber may read */
		if (!auth_may(c, m->topic.data, m->topic.len, ACL_READ))
			continue;
		qos = m->qos < c->match_qos ? m->qos : c->match_qos;
		/* a stored session gets that from walsvc, in log order */
		if (c->stored && qos > 0)
			continue;
		/* RETAIN goes on only to a Retain As Published subscription
		 * (MQTT-3.3.1-12, -13) */
		deliver(c, m, level, raw, rawlen, qos, m->retain && c->match_rap,
		    received, NULL);
	}
}

/*
 * An answer (and for QoS 2, the routing) that waits until the log holds
 * append `seq`.  Appends are in sequence order, so the FIFO is too.  A
 * QoS 2 message (ANSWER_PUBREC) is kept here until then.
 */
static int
push_pending(struct worker *w, uint64_t seq, struct conn *c,
    uint16_t packet_id, uint8_t kind, const uint8_t *raw, size_t rawlen,
    const struct buf *placed)
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
	a = &w->acks[w->acks_tail];
	memset(a, 0, sizeof(*a));
	a->seq = seq;
	a->since = worker_mono_ms(w);
	a->conn_id = c->id;
	a->packet_id = packet_id;
	a->kind = kind;
	if (raw != NULL) {
		if ((a->packet = malloc(rawlen + placed->len)) == NULL)
			return -1;
		memcpy(a->packet, raw, rawlen);
		/* no placement: placed->data may be NULL, which memcpy
		 * may not be given even for 0 bytes */
		if (placed->len > 0)
			memcpy(a->packet + rawlen, placed->data, placed->len);
		a->len = (uint32_t)rawlen;
		a->placed_len = (uint32_t)placed->len;
		a->level = c->level;
	}
	w->acks_tail++;
	return 0;
}

int
publish_answer_later(struct worker *w, uint64_t seq, struct conn *c,
    uint16_t packet_id, uint8_t kind)
{
	return push_pending(w, seq, c, packet_id, kind, NULL, 0, NULL);
}

/*
 * Reading resumes once fewer messages than the limit wait for the log.
 * A client that reaches the limit can send nothing more before this
 * commit: walsvc is told not to wait for a larger group, and our held
 * appends go now (architecture.md, "Coalescing across turns").
 */
static void
waiting_changed(struct conn *c)
{
	int64_t	 max = config_num(&c->w->proc->cfg, OPT_mqtt_max_inflight);
	int	 full = c->inflight_in + c->q2_logging >= max;

	if (full && !(c->paused & PAUSE_INFLIGHT))
		log_waited_on(c->w);
	conn_pause(c, PAUSE_INFLIGHT, full);
}

/* A QoS 2 message is in the log: it goes out, the client hears PUBREC. */
static void qos2_release(struct conn *, uint16_t);

static void
qos2_logged(struct worker *w, struct conn *c, struct pending_ack *a)
{
	static struct log_ratelimit	 rl;
	struct mqtt_packet		 pkt;
	struct qos2_in			*q;
	struct buf			 placed;
	int				 early;

	/* its placement, made when it was logged, follows it */
	buf_init(&placed);
	placed.data = a->packet + a->len;
	placed.len = a->placed_len;
	if (mqtt_decode_stored_publish(a->packet, a->len, a->level, &pkt) ==
	    0)
		publish_route(w, c, ROUTE_HERE, &pkt.publish, a->level,
		    a->packet, a->len, 0, &placed);
	else
		log_limited(&rl, LOG_LEVEL_ERROR, "undecodable QoS 2 message "
		    "dropped", "len=%u", a->len);
	if (c == NULL)
		return;
	q = qos2_in_find(c, a->packet_id);
	early = q != NULL && q->state == QOS2_RELEASED_EARLY;
	if (q != NULL && (q->state == QOS2_LOGGING || early))
		q->state = QOS2_RECEIVED;
	deliver_ack(c, MQTT_PUBREC, a->packet_id, 0);
	c->q2_logging--;
	waiting_changed(c);
	/* the PUBREL that came before this PUBREC, answered in order */
	if (early)
		qos2_release(c, a->packet_id);
}

/* The log holds everything up to `seq`: what waited for it goes out. */
void
publish_durable(struct worker *w, uint64_t seq)
{
	struct pending_ack	*a;
	struct conn		*c;

	while (w->acks_head < w->acks_tail &&
	    (a = &w->acks[w->acks_head])->seq <= seq) {
		w->acks_head++;
		c = idmap_get(&w->conns_by_id, a->conn_id);
		if (c != NULL && c->state != CONN_ACTIVE)
			c = NULL;
		switch (a->kind) {
		case ANSWER_PUBREC:
			/* routed even when its publisher has gone: it is in
			 * the log, and its resend will not be delivered */
			qos2_logged(w, c, a);
			free(a->packet);
			break;
		case ANSWER_PUBACK:
		case ANSWER_PUBACK_UNMATCHED:
			if (c == NULL)
				break;
			deliver_ack(c, MQTT_PUBACK, a->packet_id,
			    a->kind == ANSWER_PUBACK ? 0 :
			    MQTT_RC_NO_MATCHING_SUBSCRIBERS);
			c->inflight_in--;
			waiting_changed(c);
			break;
		case ANSWER_PUBCOMP:
			if (c == NULL)
				break;
			qos2_in_remove(c, a->packet_id);
			deliver_ack(c, MQTT_PUBCOMP, a->packet_id, 0);
			break;
		case ANSWER_PUBREL:
			if (c != NULL)
				deliver_send_pubrel(c, a->packet_id);
			break;
		}
	}
	if (w->acks_head == w->acks_tail)
		w->acks_head = w->acks_tail = 0;
	peers_check_backlog(w);
}

/*
 * Once a second: a client whose message has waited for the log longer
 * than storage.ack-timeout (walsvc restarting, a stalled disk) is told
 * the server is busy and disconnected; it may reconnect and send again.
 * What it sent is still logged and delivered once the log takes it.
 */
void
publish_check_waiting(struct worker *w, int64_t now)
{
	static struct log_ratelimit	 rl;
	int64_t				 bound = config_num(&w->proc->cfg,
					    OPT_storage_ack_timeout);
	struct pending_ack		*a;
	struct conn			*c;
	size_t				 i;

	for (i = w->acks_head; i < w->acks_tail; i++) {
		a = &w->acks[i];
		if (now - a->since < bound)
			break;		/* FIFO: the rest are younger */
		if ((c = idmap_get(&w->conns_by_id, a->conn_id)) == NULL ||
		    c->state != CONN_ACTIVE)
			continue;
		log_limited(&rl, LOG_LEVEL_WARN, "the log did not take a "
		    "client's message within storage.ack-timeout; client "
		    "disconnected", "client=%.*s waited_ms=%lld",
		    (int)c->client_id_len, c->client_id,
		    (long long)(now - a->since));
		conn_close(c, MQTT_RC_SERVER_BUSY, "message not logged within "
		    "storage.ack-timeout");
	}
}

/*
 * The broker's own topics, which no client may publish to, as Mosquitto
 * has it: $SYS/... (but $SYS/broker/connection/CLIENT/state, which
 * Mosquitto's bridges publish) and $share... (a shared subscription's
 * form, never a topic).
 */
static int
reserved_topic(const uint8_t *t, size_t len)
{
	static const char	 sys[] = "$SYS/", conn[] = "broker/connection/",
				 state[] = "/state", share[] = "$share";
	const uint8_t		*rest, *slash;
	size_t			 n;

	if (len >= sizeof(share) - 1 && memcmp(t, share, sizeof(share) - 1) ==
	    0)
		return 1;
	if (len < sizeof(sys) - 1 || memcmp(t, sys, sizeof(sys) - 1) != 0)
		return 0;
	rest = t + sizeof(sys) - 1;
	n = len - (sizeof(sys) - 1);
	if (n <= sizeof(conn) - 1 || memcmp(rest, conn, sizeof(conn) - 1) != 0)
		return 1;
	rest += sizeof(conn) - 1;
	n -= sizeof(conn) - 1;
	/* one level, then /state and nothing more */
	if ((slash = memchr(rest, '/', n)) == NULL || slash == rest)
		return 1;
	n -= (size_t)(slash - rest);
	return !(n == sizeof(state) - 1 && memcmp(slash, state, n) == 0);
}

/*
 * Append the message, with walsvc's picks of its placement (w->placed);
 * the sequence of the append, 0 if it failed.
 */
static uint64_t
log_message(struct conn *c, const struct mqtt_publish *m, const uint8_t *raw,
    size_t rawlen, uint64_t received)
{
	struct walrec_publish	 lr;
	struct worker		*w = c->w;
	struct buf		*rec = &w->record;
	uint64_t		 seq;
	int			 npicks;

	memset(&lr, 0, sizeof(lr));
	lr.format = WALREC_PUBLISH_V2;
	if ((npicks = share_walsvc_picks(w, &w->placed, &w->picks)) > 0) {
		lr.format = WALREC_PUBLISH_V4;
		lr.picks = w->picks.data;
		lr.picks_len = w->picks.len;
		lr.npicks = (uint16_t)npicks;
	}
	lr.level = c->level;
	lr.node = c->node;
	lr.sid = c->rare->sid;
	lr.epoch = c->epoch;
	lr.packet_id = m->packet_id;
	lr.received = worker_wall_ms(c->w);
	lr.packet = raw;
	lr.len = rawlen;
	buf_truncate(rec, 0);
	seq = buf_failed(&w->picks) || walrec_publish_encode(rec, &lr) == -1 ?
	    0 : walc_append_received(w->walc, WAL_TYPE_PUBLISH, rec->data,
	    rec->len, received);
	rec->failed = 0;
	w->picks.failed = 0;
	return seq;
}

static void
publish_qos2(struct conn *c, const struct mqtt_publish *m, const uint8_t *raw,
    size_t rawlen)
{
	struct worker	*w = c->w;
	struct qos2_in	*q;
	uint64_t	 seq;

	/* received before (a resend with DUP, or before a reconnection) */
	if ((q = qos2_in_find(c, m->packet_id)) != NULL) {
		if (q->state == QOS2_RECEIVED)
			deliver_ack(c, MQTT_PUBREC, m->packet_id, 0);
		/* LOGGING: its PUBREC is on its way */
		return;
	}
	w->stats.publishes_in++;
	/* placed now, so that walsvc's picks are in its record */
	share_place_topic(w, m);
	if ((q = qos2_in_add(c, m->packet_id, QOS2_LOGGING)) == NULL ||
	    (seq = log_message(c, m, raw, rawlen, 0)) == 0) {
		if (q)
			qos2_in_remove(c, m->packet_id);
		conn_close(c, MQTT_RC_UNSPECIFIED_ERROR,
		    "cannot log the message: out of memory");
		return;
	}
	if (config_num(&w->proc->cfg, OPT_storage_wal_sync) == SYNC_NONE) {
		/* best effort: on its way now */
		q->state = QOS2_RECEIVED;
		publish_route(w, c, ROUTE_HERE, m, c->level, raw, rawlen, 0,
		    &w->placed);
		deliver_ack(c, MQTT_PUBREC, m->packet_id, 0);
		return;
	}
	if (push_pending(w, seq, c, m->packet_id, ANSWER_PUBREC, raw,
	    rawlen, &w->placed) == -1) {
		conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
		return;
	}
	c->q2_logging++;
	waiting_changed(c);
}

/*
 * A PUBLISH with a Topic Alias (MQTT 5): set the alias when it names a
 * topic, else take the topic the alias stands for.  Everything after
 * this (routing, forwards, the log, queues) sees the message with its
 * topic and without the alias, as if it had come so: *out and the packet
 * in w->resolved.  Returns 0, or -1 with the connection closed (0x94
 * beyond our maximum; 0x82 an alias never set).
 */
static int
resolve_alias(struct conn *c, const struct mqtt_publish *m,
    struct mqtt_publish *out)
{
	struct buf		*b = &c->w->resolved;
	struct conn_aliases	*ca;
	struct topic_alias	*a;
	struct mqtt_delivery	 d;
	uint16_t		 alias = m->props.topic_alias;

	if (alias == 0 || alias > c->alias_max) {
		conn_close(c, MQTT_RC_TOPIC_ALIAS_INVALID, alias == 0 ?
		    "topic alias 0" : "topic alias above our maximum");
		return -1;
	}
	if ((ca = conn_aliases(c)) == NULL || (ca->in == NULL &&
	    (ca->in = calloc(c->alias_max, sizeof(*ca->in))) == NULL)) {
		conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
		return -1;
	}
	a = &ca->in[alias - 1];
	if (m->topic.len > 0) {
		free(a->topic);
		if ((a->topic = malloc(m->topic.len)) == NULL) {
			a->len = 0;
			conn_close(c, MQTT_RC_UNSPECIFIED_ERROR,
			    "out of memory");
			return -1;
		}
		memcpy(a->topic, m->topic.data, m->topic.len);
		a->len = (uint16_t)m->topic.len;
	} else if (a->topic == NULL) {
		conn_close(c, MQTT_RC_PROTOCOL_ERROR, "topic alias not set");
		return -1;
	}
	*out = *m;
	out->topic.data = a->topic;
	out->topic.len = a->len;
	out->props.present &= ~MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
	out->props.topic_alias = 0;
	memset(&d, 0, sizeof(d));
	d.qos = m->qos;
	d.dup = m->dup;
	d.retain = m->retain;
	d.packet_id = m->packet_id;
	buf_truncate(b, 0);
	if (mqtt_encode_publish_header(b, out, MQTT_LEVEL_5, &d, NULL) ==
	    -1 || buf_add(b, m->payload.data, m->payload.len) == -1) {
		b->failed = 0;
		conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
		return -1;
	}
	return 0;
}

void
publish_handle(struct conn *c, const struct mqtt_packet *pkt,
    const uint8_t *raw, size_t rawlen)
{
	static struct log_ratelimit	 rl;
	const struct mqtt_publish	*m = &pkt->publish;
	struct mqtt_publish		 resolved;
	struct worker			*w = c->w;
	const struct config		*cfg = &w->proc->cfg;
	uint64_t			 seq, received;
	uint8_t				 kind;
	int64_t				 max_qos = config_num(cfg, OPT_mqtt_max_qos);
	int64_t				 max_in = config_num(cfg,
					    OPT_mqtt_max_inflight);

	/* 1) what this broker grants */
	if (m->qos > max_qos) {
		conn_close(c, MQTT_RC_QOS_NOT_SUPPORTED, "QoS not supported");
		return;
	}
	/* MQTT 5: a payload its format indicator calls UTF-8 that is not
	 * (3.3.2.3.2), if we look (Mosquitto does not): refused */
	if (config_num(cfg, OPT_mqtt_check_payload_format) &&
	    mqtt_props_has(&m->props, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR) &&
	    m->props.payload_format_indicator == 1 &&
	    utf8_check(m->payload.data, m->payload.len, 0) == -1) {
		log_limited(&rl, LOG_LEVEL_INFO, "message refused: payload "
		    "not the UTF-8 its format indicator says", "client=%.*s",
		    (int)c->client_id_len, c->client_id);
		if (m->qos == 0)
			conn_close(c, MQTT_RC_PAYLOAD_FORMAT_INVALID,
			    "payload not UTF-8");
		else
			deliver_ack(c, m->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC,
			    m->packet_id, MQTT_RC_PAYLOAD_FORMAT_INVALID);
		return;
	}
	if (m->retain && !config_num(cfg, OPT_mqtt_retain_available)) {
		if (c->level == MQTT_LEVEL_5) {
			conn_close(c, MQTT_RC_RETAIN_NOT_SUPPORTED,
			    "mqtt.retain-available is off");
			return;
		}
		/* 3.1.1 has no way to say so: deliver, do not keep (walsvc
		 * keeps no retained message either) */
		log_limited(&rl, LOG_LEVEL_NOTICE, "retained messages are off; "
		    "delivered without retaining", "client=%.*s",
		    (int)c->client_id_len, c->client_id);
	}
	if (mqtt_props_has(&m->props, MQTT_PROP_TOPIC_ALIAS)) {
		if (resolve_alias(c, m, &resolved) == -1)
			return;
		m = &resolved;
		raw = w->resolved.data;
		rawlen = w->resolved.len;
	}
	/* auth.acl-file, and the broker's own topics: a topic the client
	 * may not write goes nowhere; an MQTT 5 client is told at QoS 1 and
	 * 2, as Mosquitto does (a 3.x client cannot be) */
	if (reserved_topic(m->topic.data, m->topic.len) ||
	    !auth_may(c, m->topic.data, m->topic.len, ACL_WRITE)) {
		w->stats.dropped_not_authorized++;
		log_limited(&rl, LOG_LEVEL_INFO, "publish not allowed by "
		    "auth.acl-file or to a broker topic", "client=%.*s "
		    "topic=%.*s", (int)c->client_id_len, c->client_id,
		    (int)m->topic.len, m->topic.data);
		if (m->qos > 0)
			deliver_ack(c, m->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC,
			    m->packet_id, c->level == MQTT_LEVEL_5 ?
			    MQTT_RC_NOT_AUTHORIZED : 0);
		return;
	}
	/* MQTT 5: our Receive Maximum counts QoS 1 until PUBACK, QoS 2
	 * until PUBCOMP; a resend of a QoS 2 message already counted */
	if (c->level == MQTT_LEVEL_5 && m->qos > 0 &&
	    c->inflight_in + c->rare->nq2in >= max_in &&
	    !(m->qos == 2 && qos2_in_find(c, m->packet_id) != NULL)) {
		conn_close(c, MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED,
		    "receive maximum exceeded");
		return;
	}
	/* storage.max-disk: what would have to be kept is refused */
	if (m->qos > 0 && w->disk_full &&
	    !(m->qos == 2 && qos2_in_find(c, m->packet_id) != NULL)) {
		if (c->level != MQTT_LEVEL_5) {
			conn_close(c, MQTT_RC_QUOTA_EXCEEDED, "the log is full "
			    "(storage.max-disk)");
			return;
		}
		deliver_ack(c, m->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC,
		    m->packet_id, MQTT_RC_QUOTA_EXCEEDED);
		return;
	}
	if (m->qos == 2) {
		publish_qos2(c, m, raw, rawlen);
		peers_check_backlog(w);
		return;
	}
	w->stats.publishes_in++;

	/* 2) to whoever subscribed, here and on the other workers */
	received = m->qos == 1 ? worker_mono_us(w) : 0;
	publish_route(w, c, ROUTE_HERE, m, c->level, raw, rawlen, received,
	    NULL);

	/* a retained QoS 0 message is kept too, any with mqtt.queue-qos0
	 * (for offline sessions), and one placed with a stored session of
	 * a shared group: into the log, unanswered */
	if (m->qos == 0 && (m->retain || (config_num(cfg,
	    OPT_mqtt_queue_qos0) && !w->disk_full) ||
	    share_walsvc_picks(w, &w->placed, &w->picks) > 0) &&
	    log_message(c, m, raw, rawlen, 0) == 0)
		log_limited(&rl, LOG_LEVEL_ERROR, "cannot log a QoS 0 "
		    "message: out of memory", "client=%.*s",
		    (int)c->client_id_len, c->client_id);

	/* 3) QoS 1: into the log; the PUBACK waits for it */
	if (m->qos == 1) {
		if ((seq = log_message(c, m, raw, rawlen, received)) == 0) {
			conn_close(c, MQTT_RC_UNSPECIFIED_ERROR,
			    "cannot log the message: out of memory");
			return;
		}
		/* 5.0: nobody subscribed, 0x10 (as Mosquitto says) */
		kind = w->matched ? ANSWER_PUBACK : ANSWER_PUBACK_UNMATCHED;
		if (config_num(cfg, OPT_storage_wal_sync) == SYNC_NONE)
			/* best effort: acknowledge now */
			deliver_ack(c, MQTT_PUBACK, m->packet_id, w->matched ?
			    0 : MQTT_RC_NO_MATCHING_SUBSCRIBERS);
		else if (publish_answer_later(w, seq, c, m->packet_id,
		    kind) == -1) {
			conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
			return;
		} else {
			c->inflight_in++;
			waiting_changed(c);
		}
	}
	peers_check_backlog(w);
}

/*
 * PUBREL of a QoS 2 message the client published.  An id we do not hold
 * (released already, its PUBCOMP lost) is answered all the same (MQTT 5
 * with 0x92, Packet Identifier not found).
 */
void
pubrel_handle(struct conn *c, const struct mqtt_packet *pkt)
{
	uint16_t	 id = pkt->ack.packet_id;
	struct qos2_in	*q = qos2_in_find(c, id);

	if (q == NULL) {
		deliver_ack(c, MQTT_PUBCOMP, id,
		    MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND);
		return;
	}
	/* before our PUBREC (a client that does not wait for it, which
	 * Mosquitto answers): PUBREC, then PUBCOMP, once the message is in
	 * the log; the client must not be left waiting for its PUBCOMP */
	if (q->state == QOS2_LOGGING) {
		q->state = QOS2_RELEASED_EARLY;
		return;
	}
	if (q->state != QOS2_RECEIVED)
		return;		/* a repeat: its PUBCOMP is on its way */
	qos2_release(c, id);
}

/* PUBREL for a message whose PUBREC went out: PUBCOMP, once the log
 * knows the id free if the session is stored. */
static void
qos2_release(struct conn *c, uint16_t id)
{
	struct qos2_in	*q = qos2_in_find(c, id);

	if (q == NULL)
		return;
	if (!c->stored ||
	    config_num(&c->w->proc->cfg, OPT_storage_wal_sync) == SYNC_NONE) {
		if (c->stored)
			session_ack(c, id, WALREC_ACK_RELEASED, 0, 0);
		qos2_in_remove(c, id);
		deliver_ack(c, MQTT_PUBCOMP, id, 0);
		return;
	}
	/* the session's log knows the id free before the client may reuse it */
	q->state = QOS2_RELEASING;
	if (session_ack(c, id, WALREC_ACK_RELEASED, ANSWER_PUBCOMP, id) == -1)
		conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
}

/*
 * A message another worker's client published (FWD_PUBLISH, past its
 * level and flags): for our subscribers, or with IPC_FWD_PICKS for the
 * members of shared groups it was placed with here.
 */
void
publish_forwarded(struct worker *w, uint8_t level, uint8_t flags,
    const uint8_t *body, size_t len)
{
	static struct log_ratelimit	 rl;
	struct mqtt_packet		 pkt;
	struct buf_reader		 rd;
	const uint8_t			*picks = NULL, *f;
	size_t				 flen;
	uint64_t			 received;
	uint32_t			 k;
	uint16_t			 n = 0, i = 0;

	buf_reader_init(&rd, body, len);
	(void)buf_read_u64(&rd);	/* the publisher: no-local is for
					   its own worker */
	received = buf_read_u64(&rd);
	if (flags & IPC_FWD_PICKS) {
		n = buf_read_u16(&rd);
		picks = body + rd.off;
		while (i < n && walrec_pick_next(&rd, &k, &f, &flen) == 1)
			i++;
	}
	if (rd.failed || i < n || mqtt_decode_stored_publish(body + rd.off,
	    len - rd.off, level, &pkt) == -1) {
		log_limited(&rl, LOG_LEVEL_ERROR, "undecodable forwarded "
		    "message dropped", "level=%u len=%zu", level, len);
		return;
	}
	if (flags & IPC_FWD_PICKS)
		share_forwarded(w, flags, picks, (size_t)(body + rd.off - picks),
		    n, &pkt.publish,
		    level, body + rd.off, len - rd.off, received);
	else
		publish_route(w, NULL, 0, &pkt.publish, level, body + rd.off,
		    len - rd.off, received, NULL);
}

/*
 * A will walsvc published (WILL_PUBLISH: u8 level, u8 0, the PUBLISH),
 * durable by now: routed from here to every worker, as if a client of
 * ours had published it.  walsvc already queued it for stored sessions
 * and kept it if retained.
 */
void
publish_will(struct worker *w, const uint8_t *body, size_t len)
{
	static struct log_ratelimit	 rl;
	struct mqtt_packet		 pkt;

	if (len < 4 || mqtt_decode_stored_publish(body + 2, len - 2, body[0],
	    &pkt) == -1) {
		log_limited(&rl, LOG_LEVEL_ERROR, "undecodable will dropped",
		    "len=%zu", len);
		return;
	}
	publish_route(w, NULL, ROUTE_HERE | ROUTE_LOG_PICKS, &pkt.publish,
	    body[0], body + 2, len - 2, 0, NULL);
}
