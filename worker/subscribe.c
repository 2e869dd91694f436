/*
 * subscribe.c - SUBSCRIBE/SUBACK and UNSUBSCRIBE/UNSUBACK.
 *
 * A subscription lives in this worker's table; the other workers only
 * learn that this worker wants a filter (route.c).  The SUBACK is sent
 * only after every other worker has applied every announcement issued so
 * far, so that a message published anywhere after the SUBACK reaches the
 * new subscriber.  Announcements are acknowledged in order per worker,
 * so "everything up to id N is applied everywhere" is one number
 * (route_acked()), and SUBACKs wait in a FIFO ordered by the id they
 * need.
 *
 * A stored session's SUBSCRIBE and UNSUBSCRIBE are also appended to the
 * log (subscription records), and the SUBACK or UNSUBACK waits until
 * the log holds them: a client told its subscription exists finds it
 * after any crash.
 *
 * Retained messages: once the SUBACK is sent, the filters that want
 * them (MQTT 5 Retain Handling 0, or 1 for a new subscription; always
 * before 5.0) are looked up in walsvc (RET_LOOKUP).  The lookup names
 * every worker's last append as its ROUTE_ACK reported it, and our own:
 * walsvc answers once it has applied them, so a retained message that
 * was published before the subscription reached its publisher's worker
 * is found.  Until the answer is complete (RET_DONE), the client's
 * other deliveries wait (deliver.c).  Lookups not answered when walsvc
 * restarts, or when the log link starts over, are sent again; each is
 * numbered, and only the first answer to it counts.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ipc_link.h"
#include "acl.h"
#include "log.h"
#include "walc.h"
#include "walrec.h"
#include "worker.h"

/*
 * Append a stored session's subscription change; the sequence of the
 * append, or 0 when it could not be made (the filter is then refused).
 */
static uint64_t
log_change(struct conn *c, uint8_t op, const uint8_t *filter, size_t len,
    const struct sub_options *opts)
{
	struct walrec_subscription	 r;
	struct buf			 b = BUF_INITIALIZER;
	uint64_t			 seq = 0;

	memset(&r, 0, sizeof(r));
	r.op = op;
	r.node = c->node;
	r.sid = c->rare->sid;
	r.epoch = c->epoch;
	if (opts)
		r.options = *opts;
	r.filter = filter;
	r.len = (uint16_t)len;
	if (walrec_subscription_encode(&b, &r) == 0)
		seq = walc_append(c->w->walc, WAL_TYPE_SUBSCRIPTION, b.data,
		    b.len);
	buf_free(&b);
	return seq;
}

static int
remember(struct conn *c, const uint8_t *filter, size_t len,
    const struct sub_options *opts)
{
	struct conn_sub	*s;

	if (opts->sub_id != 0)
		c->has_sub_ids = 1;
	for (s = c->subs; s; s = s->next)
		if (s->len == len && memcmp(s->filter, filter, len) == 0) {
			s->options = *opts;	/* a replacement */
			return 0;
		}
	if ((s = calloc(1, sizeof(*s) + len)) == NULL)
		return -1;
	s->options = *opts;
	s->len = (uint16_t)len;
	memcpy(s->filter, filter, len);
	s->next = c->subs;
	c->subs = s;
	return 0;
}

static void
forget(struct conn *c, const uint8_t *filter, size_t len)
{
	struct conn_sub	**sp, *s;

	for (sp = &c->subs; (s = *sp) != NULL; sp = &s->next)
		if (s->len == len && memcmp(s->filter, filter, len) == 0) {
			*sp = s->next;
			free(s);
			return;
		}
}

/* Remove one subscription from the table; withdraw it if it was the last. */
static int
unsubscribe_one(struct conn *c, const uint8_t *filter, size_t len)
{
	struct topic_filter	 tf;
	uint32_t		 count;

	if (topic_filter_parse(filter, len, &tf) != TOPIC_OK)
		return 1;
	if (sub_remove_local(c->w->subs, &tf, c, &count) != 0)
		return 1;
	if (tf.share != NULL || count == 0)
		route_announce(c->w, filter, len, count, 0);
	return 0;
}

static void	answer_later(struct worker *, struct pending_suback *);
static void	lookup_retained(struct conn *, struct buf *);
static void	sys_retained(struct conn *, const struct buf *);

static void
send_suback(struct conn *c, uint16_t packet_id, const uint8_t *reasons,
    uint16_t count)
{
	struct mqtt_packet	 pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_SUBACK;
	pkt.suback.packet_id = packet_id;
	pkt.suback.reasons.data = reasons;
	pkt.suback.reasons.len = count;
	conn_send_packet(c, &pkt);
}

/* The reason code of a refused filter at the client's level. */
static uint8_t
refusal(const struct conn *c, uint8_t reason)
{
	int	 code;

	if (c->level == MQTT_LEVEL_5)
		return reason;
	code = mqtt_suback_v3_code(reason, c->level);
	return code < 0 ? MQTT_V311_SUBACK_FAILURE : (uint8_t)code;
}

void
subscribe_handle(struct conn *c, const struct mqtt_packet *pkt)
{
	const struct mqtt_filter_list	*sl = &pkt->subscribe;
	const struct config		*cfg = &c->w->proc->cfg;
	struct worker			*w = c->w;
	struct buf_reader		 rd;
	struct mqtt_subscription	 s;
	struct sub_options		 opts;
	struct pending_suback		*ps;
	uint32_t			 count, i = 0, sub_id = 0;
	uint64_t			 seq = 0;
	uint8_t				 maxqos;
	int				 added = 0, retain;

	/* 5.0: one Subscription Identifier for every filter of the packet
	 * (the codec refuses 0 and a second one); a protocol error where
	 * the CONNACK said there are none (MQTT 5.0 3.2.2.3.16) */
	if (sl->props.subscription_identifier_count > 0 &&
	    !config_num(cfg, OPT_mqtt_subscription_id_available)) {
		conn_close(c, MQTT_RC_SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
		    "subscription identifiers are off");
		return;
	}
	if (sl->props.subscription_identifier_count > 0) {
		mqtt_props_iter(&sl->props, &rd);
		if (mqtt_subscription_id_next(&rd, &sub_id) != 1)
			sub_id = 0;
	}
	if ((ps = calloc(1, sizeof(*ps) + sl->count)) == NULL) {
		conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
		return;
	}
	ps->conn_id = c->id;
	ps->packet_id = sl->packet_id;
	ps->count = (uint16_t)sl->count;
	buf_init(&ps->retained);
	maxqos = (uint8_t)config_num(cfg, OPT_mqtt_max_qos);
	retain = config_num(cfg, OPT_mqtt_retain_available) != 0;

	mqtt_list_iter(&sl->list, &rd);
	while (mqtt_subscribe_next(&rd, &s) == 1 && i < sl->count) {
		if (s.parsed.share != NULL &&
		    !config_num(cfg, OPT_mqtt_shared_sub_available)) {
			ps->reasons[i++] = refusal(c,
			    MQTT_RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
			continue;
		}
		if (s.parsed.wildcard &&
		    !config_num(cfg, OPT_mqtt_wildcard_available)) {
			ps->reasons[i++] = refusal(c,
			    MQTT_RC_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED);
			continue;
		}
		/* auth.acl-file: a filter that could never deliver */
		if (!auth_may_subscribe(c, s.filter.data, s.filter.len)) {
			ps->reasons[i++] = refusal(c, MQTT_RC_NOT_AUTHORIZED);
			continue;
		}
		memset(&opts, 0, sizeof(opts));
		opts.qos = s.qos < maxqos ? s.qos : maxqos;
		opts.no_local = s.no_local;
		opts.retain_as_published = s.retain_as_published;
		opts.retain_handling = s.retain_handling;
		opts.sub_id = sub_id;
		if (c->stored && (seq = log_change(c, WALREC_SUB_ADD,
		    s.filter.data, s.filter.len, &opts)) == 0) {
			ps->reasons[i++] = refusal(c, MQTT_RC_UNSPECIFIED_ERROR);
			continue;
		}
		if (seq > ps->wal_seq)
			ps->wal_seq = seq;
		if (remember(c, s.filter.data, s.filter.len, &opts) == -1) {
			ps->reasons[i++] = refusal(c, MQTT_RC_UNSPECIFIED_ERROR);
			continue;
		}
		/* a stored session's share is walsvc's to hold (share.c) */
		if (!(c->stored && s.parsed.share != NULL)) {
			if ((added = sub_add_local(w->subs, &s.parsed, c, &opts,
			    &count)) == -1) {
				ps->reasons[i++] = refusal(c,
				    MQTT_RC_UNSPECIFIED_ERROR);
				continue;
			}
			/* a group's every change counts */
			if (count == 1 || s.parsed.share != NULL)
				route_announce(w, s.filter.data, s.filter.len,
				    count, 1);
		}
		ps->reasons[i++] = opts.qos;
		/* 5.0 Retain Handling: 0 always, 1 if new, 2 never; none
		 * for a shared subscription (MQTT 5.0 3.3.1.3) */
		if (retain && s.parsed.share == NULL && (c->level != MQTT_LEVEL_5 ||
		    opts.retain_handling == 0 ||
		    (opts.retain_handling == 1 && added == 0))) {
			buf_add_u8(&ps->retained, opts.qos);
			buf_add_u8(&ps->retained, 0);
			buf_add_u16(&ps->retained, (uint16_t)s.filter.len);
			buf_add(&ps->retained, s.filter.data, s.filter.len);
		}
	}

	/* the SUBACK waits until everything announced so far is applied */
	ps->need = w->route_issued;
	answer_later(w, ps);
}

/* Whether the log holds what a pending answer waits for. */
static int
logged(const struct worker *w, const struct pending_suback *ps)
{
	/* wal-sync=none: best effort, nobody waits for the log */
	return ps->wal_seq == 0 || walc_durable(w->walc) >= ps->wal_seq ||
	    config_num(&w->proc->cfg, OPT_storage_wal_sync) == 2;
}

static void
answer(struct conn *c, struct pending_suback *ps)
{
	struct mqtt_packet	 resp;

	if (!ps->unsuback) {
		send_suback(c, ps->packet_id, ps->reasons, ps->count);
		if (ps->retained.len > 0) {
			sys_retained(c, &ps->retained);
			lookup_retained(c, &ps->retained);
		}
		return;
	}
	memset(&resp, 0, sizeof(resp));
	resp.type = MQTT_UNSUBACK;
	resp.unsuback.packet_id = ps->packet_id;
	if (c->level == MQTT_LEVEL_5) {
		resp.unsuback.reasons.data = ps->reasons;
		resp.unsuback.reasons.len = ps->count;
	}
	conn_send_packet(c, &resp);
}

/*
 * Answer now if nothing is due, else in turn; meanwhile its connection
 * is not read, so that a PUBACK for a message it sent next cannot come
 * first (Mosquitto answers in the order of the packets).
 */
static void
answer_later(struct worker *w, struct pending_suback *ps)
{
	struct conn	*c = idmap_get(&w->conns_by_id, ps->conn_id);

	if (w->subacks == NULL && route_acked(w) >= ps->need &&
	    logged(w, ps)) {
		if (c != NULL)
			answer(c, ps);
		buf_free(&ps->retained);
		free(ps);
		return;
	}
	if (c != NULL)
		conn_pause(c, PAUSE_SUBACK, 1);
	if (w->subacks_tail)
		w->subacks_tail->next = ps;
	else
		w->subacks = ps;
	w->subacks_tail = ps;
}

/* Route acknowledgements or log watermarks came in: answer in turn. */
void
subscribe_progress(struct worker *w)
{
	struct pending_suback	*ps;
	struct conn		*c;
	uint64_t		 acked = route_acked(w);

	while ((ps = w->subacks) != NULL && ps->need <= acked &&
	    logged(w, ps)) {
		w->subacks = ps->next;
		if (w->subacks == NULL)
			w->subacks_tail = NULL;
		c = idmap_get(&w->conns_by_id, ps->conn_id);
		if (c && c->state == CONN_ACTIVE) {
			answer(c, ps);
			conn_pause(c, PAUSE_SUBACK, 0);
		}
		buf_free(&ps->retained);
		free(ps);
	}
}

/* Send one lookup, with the barriers as they are now. */
static void
send_lookup(struct conn *c, const struct ret_lookup *l)
{
	struct worker	*w = c->w;
	struct buf	*b;
	size_t		 start;
	uint16_t	 n = 1;
	unsigned	 slot;

	if ((b = ipc_link_record_begin(w->wal_link, IPC_RET_LOOKUP, l->number,
	    c->id, &start)) == NULL)
		return;		/* sent again when walsvc comes back */
	for (slot = 0; slot < w->npeers; slot++)
		if (slot != w->proc->self.slot && w->peers[slot].gen != 0)
			n++;
	buf_add_u16(b, n);
	buf_add_u16(b, w->proc->self.slot);
	buf_add_u64(b, w->proc->self.gen);
	buf_add_u64(b, walc_last(w->walc));
	for (slot = 0; slot < w->npeers; slot++) {
		if (slot == w->proc->self.slot || w->peers[slot].gen == 0)
			continue;
		buf_add_u16(b, (uint16_t)slot);
		buf_add_u64(b, w->peers[slot].gen);
		buf_add_u64(b, w->peers[slot].appended);
	}
	buf_add(b, l->filters.data, l->filters.len);
	if (buf_failed(b))
		buf_truncate(b, start);
	else
		ipc_link_record_end(w->wal_link, start);
}

/* The SUBACK went out: the $SYS values its filters match (sys.c),
 * from the lookup's entries (u8 qos, u8 0, u16 length, filter). */
static void
sys_retained(struct conn *c, const struct buf *filters)
{
	size_t		 off = 0, len;

	while (off + 4 <= filters->len) {
		len = buf_load_u16(filters->data + off + 2);
		if (off + 4 + len > filters->len)
			break;
		sys_subscribed(c, filters->data + off + 4, len,
		    filters->data[off]);
		off += 4 + len;
	}
}

/* The SUBACK went out: its retained messages are asked for. */
static void
lookup_retained(struct conn *c, struct buf *filters)
{
	struct conn_rare	*r;
	struct ret_lookup	*l;

	if ((r = conn_rare(c)) == NULL || (l = calloc(1, sizeof(*l))) == NULL)
		return;		/* no memory: no retained messages for it */
	l->number = ++c->w->last_lookup;
	l->filters = *filters;		/* taken over */
	buf_init(filters);
	if (r->lookups_tail)
		r->lookups_tail->next = l;
	else
		r->lookups = l;
	r->lookups_tail = l;
	r->ret_pending++;
	send_lookup(c, l);
}

/*
 * A retained message for lookup number `lookup`, which must be the
 * oldest of this connection: an answer to one sent twice comes twice,
 * and only the first counts.
 */
void
retained_message(struct worker *w, uint64_t conn_id, uint64_t lookup,
    const uint8_t *body, size_t len)
{
	struct conn		*c = idmap_get(&w->conns_by_id, conn_id);
	struct mqtt_packet	 pkt;

	if (c == NULL || c->state != CONN_ACTIVE || c->rare->lookups == NULL ||
	    c->rare->lookups->number != lookup)
		return;
	/* auth.acl-file: only what the subscriber may read */
	if (w->acl != NULL && (mqtt_decode_stored_publish(body +
	    IPC_RET_MSG_HEADER, len - IPC_RET_MSG_HEADER, body[1], &pkt) ==
	    -1 || !auth_may(c, pkt.publish.topic.data, pkt.publish.topic.len,
	    ACL_READ)))
		return;
	deliver_retained(c, body[1], body + IPC_RET_MSG_HEADER,
	    len - IPC_RET_MSG_HEADER, body[0], buf_load_u32(body + 4));
}

/* Its oldest lookup is answered, once: what waited may go. */
void
retained_done(struct worker *w, uint64_t conn_id, uint64_t lookup)
{
	struct conn		*c = idmap_get(&w->conns_by_id, conn_id);
	struct conn_rare	*r;
	struct ret_lookup	*l;

	if (c == NULL || (l = c->rare->lookups) == NULL || l->number != lookup)
		return;
	r = conn_rare(c);	/* made: it holds l */
	r->lookups = l->next;
	if (r->lookups == NULL)
		r->lookups_tail = NULL;
	buf_free(&l->filters);
	free(l);
	r->ret_pending--;
	deliver_queued(c);
}

/*
 * Every lookup still out is sent again: a new walsvc knows none, and a
 * log link that started over dropped those nng still held.  walsvc may
 * have one already (it was slow, not gone): the answers name the lookup,
 * so a second one is ignored.
 */
void
retained_send_again(struct worker *w)
{
	struct conn		*c;
	struct ret_lookup	*l;

	for (c = w->conns; c; c = c->next)
		for (l = c->rare->lookups; l; l = l->next)
			send_lookup(c, l);
}

void
retained_free(struct conn *c)
{
	struct conn_rare	*r;
	struct ret_lookup	*l;

	if (c->rare->lookups == NULL)
		return;
	r = conn_rare(c);	/* made: it holds them */
	while ((l = r->lookups) != NULL) {
		r->lookups = l->next;
		buf_free(&l->filters);
		free(l);
	}
	r->lookups_tail = NULL;
	r->ret_pending = 0;
}

/* A shared subscription of a stored session: walsvc's, not in our table. */
static int
stored_share(const struct conn *c, const uint8_t *filter, size_t len)
{
	const struct conn_sub	*s;

	if (!c->stored)
		return 0;
	for (s = c->subs; s; s = s->next)
		if (s->len == len && memcmp(s->filter, filter, len) == 0)
			return topic_is_shared(filter, len);
	return 0;
}

void
unsubscribe_handle(struct conn *c, const struct mqtt_packet *pkt)
{
	const struct mqtt_filter_list	*ul = &pkt->unsubscribe;
	struct pending_suback		*ps;
	struct buf_reader		 rd;
	struct mqtt_view		 filter;
	uint64_t			 seq;
	uint32_t			 i = 0;

	if ((ps = calloc(1, sizeof(*ps) + (ul->count ? ul->count : 1))) ==
	    NULL) {
		conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
		return;
	}
	ps->conn_id = c->id;
	ps->packet_id = ul->packet_id;
	ps->unsuback = 1;
	mqtt_list_iter(&ul->list, &rd);
	while (mqtt_unsubscribe_next(&rd, &filter) == 1 && i < ul->count) {
		if (unsubscribe_one(c, filter.data, filter.len) == 0 ||
		    stored_share(c, filter.data, filter.len)) {
			forget(c, filter.data, filter.len);
			ps->reasons[i++] = MQTT_RC_SUCCESS;
			if (c->stored && (seq = log_change(c,
			    WALREC_SUB_REMOVE, filter.data, filter.len,
			    NULL)) > ps->wal_seq)
				ps->wal_seq = seq;
		} else
			ps->reasons[i++] = MQTT_RC_NO_SUBSCRIPTION_EXISTED;
	}
	ps->count = (uint16_t)i;
	/* no route to wait for: the withdrawal may lag, never the log */
	answer_later(c->w, ps);
}

/* The connection is closing: all its subscriptions go. */
void
subscribe_drop_all(struct conn *c)
{
	struct conn_sub	*s;

	while ((s = c->subs) != NULL) {
		c->subs = s->next;
		unsubscribe_one(c, s->filter, s->len);
		free(s);
	}
}
