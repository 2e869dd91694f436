/*
 * mqtt_encode.c - encoding of all fifteen MQTT control packets at levels
 * 3, 4 and 5 into a struct buf, and the PUBLISH header fast path for
 * fan-out (see mqtt.h).
 *
 * Every packet is measured first and written second, so the Remaining
 * Length is known before the body and the buffer grows once.  Measuring
 * is also where the packet is checked: a field too long for its length
 * prefix, a value the level cannot express or a property the packet may
 * not carry fails with errno set and nothing written.  The encoder
 * refuses what the decoder would refuse for the packet's structure, so
 * a packet built from decoded (hence checked) strings always decodes;
 * it does not scan string contents again for UTF-8, which is the
 * caller's part when the strings come from elsewhere.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "mqtt_private.h"
#include "topic.h"

#define BAD	((size_t)-1)

/* Sizes found while measuring, used again while writing. */
struct plan {
	size_t	 remaining;	/* Remaining Length */
	size_t	 props;		/* records of the packet's property block */
	size_t	 will_props;	/* records of the will's property block */
};

static size_t
fail_size(int e)
{
	errno = e;
	return BAD;
}

/* A length-prefixed string or binary field: 2 + len, or BAD. */
static size_t
view_size(const struct mqtt_view *v)
{
	if (v->len > MQTT_MAX_STRING)
		return fail_size(EMSGSIZE);
	if (v->len > 0 && v->data == NULL)
		return fail_size(EINVAL);
	return 2 + v->len;
}

static int
put_view(struct buf *b, const struct mqtt_view *v)
{
	if (buf_add_u16(b, (uint16_t)v->len) == -1)
		return -1;
	return buf_add(b, v->data, v->len);
}

/* Adds up sizes; once one is BAD the sum stays BAD. */
static size_t
add(size_t sum, size_t n)
{
	if (sum == BAD || n == BAD)
		return BAD;
	if (n > MQTT_MAX_REMAINING || sum > MQTT_MAX_REMAINING - n)
		return fail_size(EMSGSIZE);
	return sum + n;
}

/* A property block at level 5 (length prefix + records), 0 below. */
static size_t
props_block(const struct mqtt_props *p, uint8_t context, uint8_t level,
    const struct mqtt_delivery *edit, size_t *records)
{
	*records = 0;
	if (level < MQTT_LEVEL_5)
		return 0;
	if ((*records = mqtt_props_size(p, context, edit)) == BAD)
		return BAD;
	return buf_vbi_size((uint32_t)*records) + *records;
}

static int
put_props(struct buf *b, const struct mqtt_props *p, uint8_t context,
    uint8_t level, const struct mqtt_delivery *edit, size_t records)
{
	if (level < MQTT_LEVEL_5)
		return 0;
	return mqtt_props_write(b, p, context, edit, records);
}

static size_t
connect_size(const struct mqtt_connect *c, uint8_t level, struct plan *pl)
{
	size_t	 n = level == MQTT_LEVEL_31 ? 2 + 6 : 2 + 4;

	if (c->will_qos > 2 || c->will > 1 || c->will_retain > 1 ||
	    c->clean_start > 1 || c->has_username > 1 || c->has_password > 1)
		return fail_size(EINVAL);
	if (!c->will && (c->will_qos != 0 || c->will_retain))
		return fail_size(EINVAL);
	if (level < MQTT_LEVEL_5 && c->has_password && !c->has_username)
		return fail_size(EINVAL);
	n = add(n, 1 + 1 + 2);
	n = add(n, props_block(&c->props, MQTT_CONNECT, level, NULL,
	    &pl->props));
	n = add(n, view_size(&c->client_id));
	if (c->will) {
		n = add(n, props_block(&c->will_props, MQTT_WILL, level, NULL,
		    &pl->will_props));
		n = add(n, view_size(&c->will_topic));
		n = add(n, view_size(&c->will_payload));
	}
	if (c->has_username)
		n = add(n, view_size(&c->username));
	if (c->has_password)
		n = add(n, view_size(&c->password));
	return n;
}

static int
connect_write(struct buf *b, const struct mqtt_connect *c, uint8_t level,
    const struct plan *pl)
{
	static const struct mqtt_view mqtt = MQTT_VIEW_STR("MQTT");
	static const struct mqtt_view mqisdp = MQTT_VIEW_STR("MQIsdp");
	uint8_t	 flags;

	flags = (uint8_t)(c->clean_start << 1 | c->will << 2 |
	    c->will_qos << 3 | c->will_retain << 5 | c->has_password << 6 |
	    c->has_username << 7);
	if (put_view(b, level == MQTT_LEVEL_31 ? &mqisdp : &mqtt) == -1 ||
	    buf_add_u8(b, level) == -1 || buf_add_u8(b, flags) == -1 ||
	    buf_add_u16(b, c->keep_alive) == -1 ||
	    put_props(b, &c->props, MQTT_CONNECT, level, NULL, pl->props) == -1 ||
	    put_view(b, &c->client_id) == -1)
		return -1;
	if (c->will && (put_props(b, &c->will_props, MQTT_WILL, level, NULL,
	    pl->will_props) == -1 || put_view(b, &c->will_topic) == -1 ||
	    put_view(b, &c->will_payload) == -1))
		return -1;
	if (c->has_username && put_view(b, &c->username) == -1)
		return -1;
	if (c->has_password && put_view(b, &c->password) == -1)
		return -1;
	return 0;
}

static size_t
connack_size(const struct mqtt_connack *c, uint8_t level, struct plan *pl)
{
	if (c->session_present > 1 || (c->session_present && c->reason != 0))
		return fail_size(EINVAL);
	if (level == MQTT_LEVEL_5 ?
	    !mqtt_reason_allowed(MQTT_CONNACK, c->reason) :
	    c->reason > MQTT_V3_NOT_AUTHORIZED)
		return fail_size(EINVAL);
	return add(2, props_block(&c->props, MQTT_CONNACK, level, NULL,
	    &pl->props));
}

/*
 * PUBLISH: the message, and how this receiver gets it.  With d == NULL
 * the packet is encoded as it stands.
 */
static size_t
publish_size(const struct mqtt_publish *m, uint8_t level,
    const struct mqtt_delivery *d, struct plan *pl)
{
	struct mqtt_view	 topic = m->topic;
	uint8_t			 qos = d ? d->qos : m->qos;
	uint8_t			 dup = d ? d->dup : m->dup;
	uint8_t			 retain = d ? d->retain : m->retain;
	uint16_t		 id = d ? d->packet_id : m->packet_id;
	int			 alias;
	size_t			 n;

	alias = d ? d->topic_alias != 0 :
	    mqtt_props_has(&m->props, MQTT_PROP_TOPIC_ALIAS);
	if (d != NULL && d->alias_only) {
		if (!alias)
			return fail_size(EINVAL);
		topic.len = 0;
	}
	if (qos > 2 || dup > 1 || retain > 1 || (qos == 0 && dup) ||
	    (qos > 0 && id == 0))
		return fail_size(EINVAL);
	if (topic.len == 0 && (level < MQTT_LEVEL_5 || !alias))
		return fail_size(EINVAL);
	n = view_size(&topic);
	n = add(n, qos > 0 ? 2 : 0);
	n = add(n, props_block(&m->props, MQTT_PUBLISH, level, d, &pl->props));
	return add(n, m->payload.len);
}

/* Fixed header and variable header; the payload is the caller's. */
static int
publish_write_header(struct buf *b, const struct mqtt_publish *m,
    uint8_t level, const struct mqtt_delivery *d, const struct plan *pl,
    size_t *packet_id_at)
{
	struct mqtt_view	 topic = m->topic;
	uint8_t			 qos = d ? d->qos : m->qos;
	uint8_t			 dup = d ? d->dup : m->dup;
	uint8_t			 retain = d ? d->retain : m->retain;

	if (d != NULL && d->alias_only)
		topic.len = 0;
	if (buf_add_u8(b, (uint8_t)(MQTT_PUBLISH << 4 | dup << 3 | qos << 1 |
	    retain)) == -1 || buf_add_vbi(b, (uint32_t)pl->remaining) == -1 ||
	    put_view(b, &topic) == -1)
		return -1;
	if (packet_id_at != NULL)
		*packet_id_at = qos > 0 ? b->len : SIZE_MAX;
	if (qos > 0 && buf_add_u16(b, d ? d->packet_id : m->packet_id) == -1)
		return -1;
	return put_props(b, &m->props, MQTT_PUBLISH, level, d, pl->props);
}

/*
 * PUBACK..PUBCOMP at 5.0 take the shortest form the specification
 * allows: no reason code and no property length for a plain success,
 * no property length when there are no properties.
 */
static size_t
ack_size(const struct mqtt_packet *pkt, uint8_t level, struct plan *pl)
{
	const struct mqtt_ack	*a = &pkt->ack;
	size_t			 props;

	if (a->packet_id == 0)
		return fail_size(EINVAL);
	if (level < MQTT_LEVEL_5)
		return 2;
	if (!mqtt_reason_allowed(pkt->type, a->reason))
		return fail_size(EINVAL);
	props = props_block(&a->props, pkt->type, level, NULL, &pl->props);
	if (props == BAD)
		return BAD;
	if (pl->props == 0)
		return a->reason == 0 ? 2 : 3;
	return add(3, props);
}

static int
ack_write(struct buf *b, const struct mqtt_packet *pkt, uint8_t level,
    const struct plan *pl)
{
	const struct mqtt_ack	*a = &pkt->ack;

	if (buf_add_u16(b, a->packet_id) == -1)
		return -1;
	if (pl->remaining > 2 && buf_add_u8(b, a->reason) == -1)
		return -1;
	if (pl->remaining > 3)
		return put_props(b, &a->props, pkt->type, level, NULL,
		    pl->props);
	return 0;
}

/* A SUBSCRIBE or UNSUBSCRIBE list must be one the decoder accepts. */
static size_t
filter_list_size(const struct mqtt_packet *pkt, uint8_t level)
{
	const struct mqtt_filter_list	*l = &pkt->subscribe;
	struct buf_reader		 it;
	struct mqtt_subscription	 s;
	struct mqtt_view		 f;
	int				 sub = pkt->type == MQTT_SUBSCRIBE;
	uint8_t				 o, bad;

	if (pkt->type == MQTT_UNSUBSCRIBE)
		l = &pkt->unsubscribe;
	if (l->list.len == 0 || l->packet_id == 0)
		return fail_size(EINVAL);
	mqtt_list_iter(&l->list, &it);
	while (buf_read_left(&it) > 0) {
		if (!sub) {
			if (!mqtt_unsubscribe_next(&it, &f) ||
			    topic_filter_parse(f.data, f.len, &s.parsed) !=
			    TOPIC_OK)
				return fail_size(EINVAL);
			continue;
		}
		if (!mqtt_subscribe_next(&it, &s))
			return fail_size(EINVAL);
		o = it.data[it.off - 1];
		bad = level < MQTT_LEVEL_5 ? (o & 0xfc) || o == 3 :
		    (o & 0xc0) || (o & 3) == 3 || ((o >> 4) & 3) == 3 ||
		    (s.no_local && s.parsed.share != NULL);
		if (bad)
			return fail_size(EINVAL);
	}
	return l->list.len;
}

static size_t
reason_list_size(const struct mqtt_packet *pkt, uint8_t level,
    struct plan *pl)
{
	const struct mqtt_reason_list	*a = pkt->type == MQTT_SUBACK ?
					    &pkt->suback : &pkt->unsuback;
	size_t				 i;

	if (a->packet_id == 0)
		return fail_size(EINVAL);
	if (pkt->type == MQTT_UNSUBACK && level < MQTT_LEVEL_5)
		return 2;
	if (a->reasons.len == 0 || a->reasons.data == NULL)
		return fail_size(EINVAL);
	for (i = 0; i < a->reasons.len; i++) {
		uint8_t	 c = a->reasons.data[i];
		int	 ok = level == MQTT_LEVEL_5 ?
			    mqtt_reason_allowed(pkt->type, c) :
			    c <= 2 || (c == MQTT_V311_SUBACK_FAILURE &&
			    level == MQTT_LEVEL_311);

		if (!ok)
			return fail_size(EINVAL);
	}
	return add(add(2, props_block(&a->props, pkt->type, level, NULL,
	    &pl->props)), a->reasons.len);
}

/* DISCONNECT and AUTH: empty for a plain success without properties. */
static size_t
reason_packet_size(const struct mqtt_packet *pkt, uint8_t level,
    struct plan *pl)
{
	const struct mqtt_reason_packet	*r = pkt->type == MQTT_AUTH ?
					    &pkt->auth : &pkt->disconnect;
	size_t				 props;

	if (level < MQTT_LEVEL_5)
		return 0;
	if (!mqtt_reason_allowed(pkt->type, r->reason))
		return fail_size(EINVAL);
	props = props_block(&r->props, pkt->type, level, NULL, &pl->props);
	if (props == BAD)
		return BAD;
	if (pl->props == 0 && r->reason == 0)
		return 0;
	if (pkt->type == MQTT_AUTH) {
		if (!mqtt_props_has(&r->props, MQTT_PROP_AUTHENTICATION_METHOD))
			return fail_size(EINVAL);
		return add(1, props);
	}
	return pl->props == 0 ? 1 : add(1, props);
}

static uint8_t
fixed_flags(uint8_t type)
{
	return type == MQTT_PUBREL || type == MQTT_SUBSCRIBE ||
	    type == MQTT_UNSUBSCRIBE ? 0x02 : 0x00;
}

/* Measure a packet: its Remaining Length in pl, BAD with errno. */
static size_t
packet_plan(const struct mqtt_packet *pkt, uint8_t level, struct plan *pl)
{
	size_t	 n;

	memset(pl, 0, sizeof(*pl));
	if (level < MQTT_LEVEL_31 || level > MQTT_LEVEL_5 ||
	    pkt->type < MQTT_CONNECT || pkt->type > MQTT_AUTH ||
	    (pkt->type == MQTT_AUTH && level < MQTT_LEVEL_5))
		return fail_size(EINVAL);
	switch (pkt->type) {
	case MQTT_CONNECT:
		n = connect_size(&pkt->connect, level, pl);
		break;
	case MQTT_CONNACK:
		n = connack_size(&pkt->connack, level, pl);
		break;
	case MQTT_PUBLISH:
		n = publish_size(&pkt->publish, level, NULL, pl);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		n = ack_size(pkt, level, pl);
		break;
	case MQTT_SUBSCRIBE:
		n = add(add(2, props_block(&pkt->subscribe.props, pkt->type,
		    level, NULL, &pl->props)), filter_list_size(pkt, level));
		break;
	case MQTT_UNSUBSCRIBE:
		n = add(add(2, props_block(&pkt->unsubscribe.props, pkt->type,
		    level, NULL, &pl->props)), filter_list_size(pkt, level));
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		n = reason_list_size(pkt, level, pl);
		break;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		n = 0;
		break;
	default:
		n = reason_packet_size(pkt, level, pl);
		break;
	}
	pl->remaining = n;
	return n;
}

static int
body_write(struct buf *b, const struct mqtt_packet *pkt, uint8_t level,
    const struct plan *pl)
{
	const struct mqtt_filter_list	*fl;
	const struct mqtt_reason_list	*rl;
	const struct mqtt_reason_packet	*rp;

	switch (pkt->type) {
	case MQTT_CONNECT:
		return connect_write(b, &pkt->connect, level, pl);
	case MQTT_CONNACK:
		if (buf_add_u8(b, pkt->connack.session_present) == -1 ||
		    buf_add_u8(b, pkt->connack.reason) == -1)
			return -1;
		return put_props(b, &pkt->connack.props, MQTT_CONNACK, level,
		    NULL, pl->props);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return ack_write(b, pkt, level, pl);
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		fl = pkt->type == MQTT_SUBSCRIBE ? &pkt->subscribe :
		    &pkt->unsubscribe;
		if (buf_add_u16(b, fl->packet_id) == -1 ||
		    put_props(b, &fl->props, pkt->type, level, NULL,
		    pl->props) == -1)
			return -1;
		return buf_add(b, fl->list.data, fl->list.len);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		rl = pkt->type == MQTT_SUBACK ? &pkt->suback : &pkt->unsuback;
		if (buf_add_u16(b, rl->packet_id) == -1)
			return -1;
		if (pl->remaining == 2)
			return 0;
		if (put_props(b, &rl->props, pkt->type, level, NULL,
		    pl->props) == -1)
			return -1;
		return buf_add(b, rl->reasons.data, rl->reasons.len);
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		return 0;
	default:
		rp = pkt->type == MQTT_AUTH ? &pkt->auth : &pkt->disconnect;
		if (pl->remaining == 0)
			return 0;
		if (buf_add_u8(b, rp->reason) == -1)
			return -1;
		if (pl->remaining == 1)
			return 0;
		return put_props(b, &rp->props, pkt->type, level, NULL,
		    pl->props);
	}
}

size_t
mqtt_encoded_size(const struct mqtt_packet *pkt, uint8_t level)
{
	struct plan	 pl;
	size_t		 rl = packet_plan(pkt, level, &pl);

	return rl == BAD ? 0 : 1 + buf_vbi_size((uint32_t)rl) + rl;
}

int
mqtt_encode(struct buf *b, const struct mqtt_packet *pkt, uint8_t level)
{
	struct plan	 pl;
	size_t		 start = b->len, rl;
	int		 rc;

	if ((rl = packet_plan(pkt, level, &pl)) == BAD)
		return -1;
	if (buf_reserve(b, 1 + buf_vbi_size((uint32_t)rl) + rl) == -1)
		return -1;
	if (pkt->type == MQTT_PUBLISH) {
		rc = publish_write_header(b, &pkt->publish, level, NULL, &pl,
		    NULL);
		if (rc == 0)
			rc = buf_add(b, pkt->publish.payload.data,
			    pkt->publish.payload.len);
	} else {
		rc = buf_add_u8(b, (uint8_t)(pkt->type << 4 |
		    fixed_flags(pkt->type)));
		if (rc == 0)
			rc = buf_add_vbi(b, (uint32_t)rl);
		if (rc == 0)
			rc = body_write(b, pkt, level, &pl);
	}
	if (rc == -1) {
		buf_truncate(b, start);
		return -1;
	}
	return 0;
}

int
mqtt_encode_publish_header(struct buf *b, const struct mqtt_publish *msg,
    uint8_t level, const struct mqtt_delivery *d, size_t *packet_id_at)
{
	struct plan	 pl;
	size_t		 start = b->len;

	memset(&pl, 0, sizeof(pl));
	if (level < MQTT_LEVEL_31 || level > MQTT_LEVEL_5 || d == NULL) {
		errno = EINVAL;
		return -1;
	}
	if ((pl.remaining = publish_size(msg, level, d, &pl)) == BAD)
		return -1;
	if (publish_write_header(b, msg, level, d, &pl, packet_id_at) == -1) {
		buf_truncate(b, start);
		return -1;
	}
	return 0;
}

/* List builders for SUBSCRIBE and UNSUBSCRIBE. */
static int
add_filter(struct buf *b, const void *filter, size_t len)
{
	if (len > MQTT_MAX_STRING) {
		errno = EMSGSIZE;
		return -1;
	}
	return buf_add_u16(b, (uint16_t)len) == -1 ? -1 :
	    buf_add(b, filter, len);
}

int
mqtt_subscribe_add(struct buf *b, const void *filter, size_t len,
    uint8_t options)
{
	size_t	 start = b->len;

	if (add_filter(b, filter, len) == -1 || buf_add_u8(b, options) == -1) {
		buf_truncate(b, start);
		return -1;
	}
	return 0;
}

int
mqtt_unsubscribe_add(struct buf *b, const void *filter, size_t len)
{
	size_t	 start = b->len;

	if (add_filter(b, filter, len) == -1) {
		buf_truncate(b, start);
		return -1;
	}
	return 0;
}
