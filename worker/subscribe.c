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
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

static int
remember(struct conn *c, const uint8_t *filter, size_t len)
{
	struct conn_sub	*s;

	for (s = c->subs; s; s = s->next)
		if (s->len == len && memcmp(s->filter, filter, len) == 0)
			return 0;	/* a replacement: already there */
	if ((s = malloc(sizeof(*s) + len)) == NULL)
		return -1;
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
	uint32_t			 count, i = 0;
	uint8_t				 maxqos;

	if (mqtt_props_has(&sl->props, MQTT_PROP_SUBSCRIPTION_IDENTIFIER) ||
	    sl->props.subscription_identifier_count > 0) {
		conn_close(c, MQTT_RC_SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
		    "subscription identifiers are not supported");
		return;
	}
	if ((ps = calloc(1, sizeof(*ps) + sl->count)) == NULL) {
		conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
		return;
	}
	ps->conn_id = c->id;
	ps->packet_id = sl->packet_id;
	ps->count = (uint16_t)sl->count;
	/* QoS 2 does not exist here yet: grant at most 1 */
	maxqos = config_num(cfg, OPT_mqtt_max_qos) > 1 ? 1 :
	    (uint8_t)config_num(cfg, OPT_mqtt_max_qos);

	mqtt_list_iter(&sl->list, &rd);
	while (mqtt_subscribe_next(&rd, &s) == 1 && i < sl->count) {
		if (s.parsed.share != NULL) {
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
		memset(&opts, 0, sizeof(opts));
		opts.qos = s.qos < maxqos ? s.qos : maxqos;
		opts.no_local = s.no_local;
		opts.retain_as_published = s.retain_as_published;
		opts.retain_handling = s.retain_handling;
		if (remember(c, s.filter.data, s.filter.len) == -1 ||
		    sub_add_local(w->subs, &s.parsed, c, &opts, &count) == -1) {
			ps->reasons[i++] = refusal(c, MQTT_RC_UNSPECIFIED_ERROR);
			continue;
		}
		if (count == 1)
			route_announce(w, s.filter.data, s.filter.len, 1, 1);
		ps->reasons[i++] = opts.qos;
	}

	/* the SUBACK waits until everything announced so far is applied */
	ps->need = w->route_issued;
	if (w->subacks == NULL && route_acked(w) >= ps->need) {
		send_suback(c, ps->packet_id, ps->reasons, ps->count);
		free(ps);
		return;
	}
	if (w->subacks_tail)
		w->subacks_tail->next = ps;
	else
		w->subacks = ps;
	w->subacks_tail = ps;
}

/* Route acknowledgements came in: send the SUBACKs they complete. */
void
subscribe_progress(struct worker *w)
{
	struct pending_suback	*ps;
	struct conn		*c;
	uint64_t		 acked = route_acked(w);

	while ((ps = w->subacks) != NULL && ps->need <= acked) {
		w->subacks = ps->next;
		if (w->subacks == NULL)
			w->subacks_tail = NULL;
		c = idmap_get(&w->conns_by_id, ps->conn_id);
		if (c && c->state == CONN_ACTIVE)
			send_suback(c, ps->packet_id, ps->reasons, ps->count);
		free(ps);
	}
}

void
unsubscribe_handle(struct conn *c, const struct mqtt_packet *pkt)
{
	const struct mqtt_filter_list	*ul = &pkt->unsubscribe;
	struct mqtt_packet		 resp;
	struct buf_reader		 rd;
	struct mqtt_view		 filter;
	uint8_t				*reasons;
	uint32_t			 i = 0;

	if ((reasons = calloc(ul->count ? ul->count : 1, 1)) == NULL) {
		conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
		return;
	}
	mqtt_list_iter(&ul->list, &rd);
	while (mqtt_unsubscribe_next(&rd, &filter) == 1 && i < ul->count) {
		if (unsubscribe_one(c, filter.data, filter.len) == 0) {
			forget(c, filter.data, filter.len);
			reasons[i++] = MQTT_RC_SUCCESS;
		} else
			reasons[i++] = MQTT_RC_NO_SUBSCRIPTION_EXISTED;
	}
	memset(&resp, 0, sizeof(resp));
	resp.type = MQTT_UNSUBACK;
	resp.unsuback.packet_id = ul->packet_id;
	if (c->level == MQTT_LEVEL_5) {
		resp.unsuback.reasons.data = reasons;
		resp.unsuback.reasons.len = i;
	}
	conn_send_packet(c, &resp);
	free(reasons);
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
