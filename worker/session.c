/*
 * session.c - the worker's side of a stored session (connect.c says
 * which sessions are stored; walsvc keeps them).
 *
 * Messages: a stored session gets every message whose QoS for it is 1
 * or more from walsvc only (SESS_MSG), in log order, and never through
 * this worker's routing (publish.c skips it), so its order across
 * reconnections and workers is the log's.  Sequences only grow for one
 * connection: one at or below the last received is a resend after a
 * walsvc restart, which this connection already has.
 *
 * Progress: what the client did is appended to the log as one ack
 * record per session and loop turn (session_ack): PUBACK and PUBCOMP
 * (delivered), PUBREC (received: our PUBREL waits for the record), and
 * the PUBREL of a QoS 2 message the client published (released: our
 * PUBCOMP waits for the record, so that the packet id is known free in
 * the log before the client may reuse it).
 *
 * Incoming QoS 2: the packet ids received and not yet released are part
 * of the session; walsvc sends them with the grant (SESS_QOS2) so that a
 * PUBLISH the client sends again with DUP after any crash is answered
 * with PUBREC and not delivered twice.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "log.h"
#include "walc.h"
#include "walrec.h"
#include "worker.h"

struct qos2_in *
qos2_in_find(struct conn *c, uint16_t id)
{
	uint32_t	 i;

	for (i = 0; i < c->rare->nq2in; i++)
		if (c->rare->q2in[i].id == id)
			return &c->rare->q2in[i];
	return NULL;
}

struct qos2_in *
qos2_in_add(struct conn *c, uint16_t id, uint8_t state)
{
	struct conn_rare	*r;
	struct qos2_in		*q;
	uint32_t		 cap;

	if ((r = conn_rare(c)) == NULL)
		return NULL;
	if (r->nq2in == r->q2in_cap) {
		cap = r->q2in_cap ? r->q2in_cap * 2 : 8;
		if ((q = realloc(r->q2in, cap * sizeof(*q))) == NULL)
			return NULL;
		r->q2in = q;
		r->q2in_cap = cap;
	}
	q = &r->q2in[r->nq2in++];
	q->id = id;
	q->state = state;
	return q;
}

void
qos2_in_remove(struct conn *c, uint16_t id)
{
	struct qos2_in		*q = qos2_in_find(c, id);
	struct conn_rare	*r;

	if (q != NULL) {
		r = conn_rare(c);	/* made: it holds q */
		*q = r->q2in[--r->nq2in];
	}
}

/* A message of the stored session from walsvc. */
/* a shared delivery of walsvc's: the subscriptions tell which group */
static const struct mqtt_view	walsvc_group = { (const uint8_t *)"", 0 };

void
session_message(struct worker *w, uint64_t conn_id, uint64_t seq,
    const uint8_t *body, size_t len)
{
	static struct log_ratelimit	 rl;
	struct conn			*c = idmap_get(&w->conns_by_id, conn_id);
	struct mqtt_packet		 pkt;
	const uint8_t			*raw = body + IPC_SESS_MSG_HEADER;
	size_t				 rawlen = len - IPC_SESS_MSG_HEADER;
	uint8_t				 qos, flags, level;
	uint32_t			 expiry;

	if (c == NULL || c->state != CONN_ACTIVE || !c->stored ||
	    buf_load_u64(body + 8) != c->rare->sid ||
	    buf_load_u32(body + 4) != c->epoch || seq <= c->rare->last_seq)
		return;
	qos = body[16];
	flags = body[17];
	level = body[18];
	conn_rare(c)->last_seq = seq;	/* a stored session: made */
	if (flags & IPC_SESS_MSG_RELEASE) {
		deliver_release(c, seq);
		return;
	}
	if (qos > 2 ||
	    mqtt_decode_stored_publish(raw, rawlen, level, &pkt) == -1) {
		log_limited(&rl, LOG_LEVEL_ERROR, "undecodable session message "
		    "dropped", "client=%.*s seq=%llu", (int)c->client_id_len,
		    c->client_id, (unsigned long long)seq);
		session_ack(c, seq, WALREC_ACK_DONE, 0, 0);
		return;
	}
	/* auth.acl-file: what the client may not read is written off */
	if (!auth_may(c, pkt.publish.topic.data, pkt.publish.topic.len,
	    ACL_READ)) {
		session_ack(c, seq, WALREC_ACK_DONE, 0, 0);
		return;
	}
	/* walsvc says what is left of its Message Expiry Interval */
	expiry = buf_load_u32(body + 20);
	if (expiry != NO_EXPIRY && mqtt_props_has(&pkt.publish.props,
	    MQTT_PROP_MESSAGE_EXPIRY_INTERVAL))
		pkt.publish.props.message_expiry_interval = expiry;
	deliver_stored(c, &pkt.publish, level, raw, rawlen, qos, seq,
	    (flags & IPC_SESS_MSG_DUP) != 0, (flags & IPC_SESS_MSG_RETAIN) != 0,
	    expiry, buf_load_u64(body + 24),
	    (flags & IPC_SESS_MSG_SHARED) ? &walsvc_group : NULL);
}

/* The QoS 2 packet ids the session had received and not released. */
void
session_incoming(struct worker *w, uint64_t conn_id, const uint8_t *body,
    size_t len)
{
	struct conn	*c = idmap_get(&w->conns_by_id, conn_id);
	size_t		 i;

	if (c == NULL || c->state != CONN_CLAIMING || len % 2 != 0)
		return;
	for (i = 0; i < len; i += 2)
		if (qos2_in_find(c, buf_load_u16(body + i)) == NULL &&
		    qos2_in_add(c, buf_load_u16(body + i), QOS2_RECEIVED) ==
		    NULL) {
			registry_refused(w, conn_id,
			    MQTT_RC_SERVER_UNAVAILABLE);
			return;
		}
}

/*
 * Record what the client did (key: a session sequence, or a packet id
 * for WALREC_ACK_RELEASED); then: the answer that waits for the record
 * (0: none).  Returns -1 when it cannot even be remembered.
 */
int
session_ack(struct conn *c, uint64_t key, uint8_t state, uint8_t then,
    uint16_t id)
{
	struct conn_rare	*r;
	struct session_ack	*a;
	uint32_t		 cap;

	if ((r = conn_rare(c)) == NULL)
		return -1;
	if (r->nacks == r->acks_cap) {
		cap = r->acks_cap ? r->acks_cap * 2 : 16;
		if ((a = realloc(r->acks, cap * sizeof(*a))) == NULL)
			return -1;
		r->acks = a;
		r->acks_cap = cap;
	}
	a = &r->acks[r->nacks++];
	a->key = key;
	a->state = state;
	a->then = then;
	a->id = id;
	if (!c->ack_dirty) {
		c->ack_dirty = 1;
		c->ack_next = c->w->acks_due;
		c->w->acks_due = c;
		conn_out(c);	/* a flush this turn */
	}
	return 0;
}

/*
 * Append one connection's progress.  A lost "delivered" only costs a
 * resend; an answer that waits for its record gets it once durable, or,
 * if the record cannot be made, the connection is closed: the client
 * sends its PUBREC or PUBREL again on the next one.  Returns -1 then.
 */
int
session_ack_conn(struct conn *c)
{
	struct buf	 b = BUF_INITIALIZER;
	uint32_t	 i = 0, first, n, k;
	uint64_t	 seq;
	int		 failed = 0;

	while (i < c->rare->nacks) {
		first = i;
		walrec_ack_begin(&b, c->node, c->rare->sid, c->epoch);
		for (n = 0; i < c->rare->nacks && n < WALREC_ACK_MAX; n++, i++)
			walrec_ack_add(&b, c->rare->acks[i].key, c->rare->acks[i].state);
		seq = walrec_ack_end(&b) == 0 ? walc_append(c->w->walc,
		    WAL_TYPE_ACK, b.data, b.len) : 0;
		for (k = first; k < i; k++) {
			if (c->rare->acks[k].then == 0)
				continue;
			if (seq == 0 || publish_answer_later(c->w, seq, c,
			    c->rare->acks[k].id, c->rare->acks[k].then) == -1)
				failed = 1;
		}
	}
	buf_free(&b);
	if (c->rare->nacks > 0)
		conn_rare(c)->nacks = 0;
	return failed ? -1 : 0;
}

/* End of the turn: the progress it collected goes to the log. */
void
session_acks_flush(struct worker *w)
{
	struct conn	*c;

	while ((c = w->acks_due) != NULL) {
		w->acks_due = c->ack_next;
		c->ack_dirty = 0;
		c->ack_next = NULL;
		if (!c->stored || c->rare->nacks == 0)
			continue;
		if (session_ack_conn(c) == -1 && c->state != CONN_CLOSING)
			conn_close(c, MQTT_RC_UNSPECIFIED_ERROR,
			    "cannot record the session's progress");
	}
}
