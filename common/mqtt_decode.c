/*
 * mqtt_decode.c - decoding of all fifteen MQTT control packets at levels
 * 3 (3.1), 4 (3.1.1) and 5 (5.0), zero-copy and without allocation.
 *
 * mqtt_decode() works in two steps:
 *  1) the fixed header, checked as soon as its bytes are there: packet
 *     type, the flag bits that type must carry, the direction it may
 *     travel in, the Remaining Length (at most four bytes, shortest form)
 *     and the maximum packet size, so an oversized packet is refused
 *     before anyone buffers it;
 *  2) once the whole packet is in the buffer, its body, through a
 *     struct buf_reader bounded by the Remaining Length, so nothing is
 *     ever read past the packet.
 * Nothing is kept between calls: a partial packet is simply decoded
 * again when more bytes have arrived, and gives the same answer as if
 * it had come in one piece.
 *
 * The reason code of each error is the one the specification names;
 * where it names none, a fault in the encoding of a field is 0x81
 * (Malformed Packet) and a well-formed value the protocol does not allow
 * is 0x82 (Protocol Error), after the definitions of section 1.2.
 */
#include "config.h"

#include <string.h>

#include "mqtt_private.h"
#include "topic.h"
#include "utf8.h"

#define MALFORMED	MQTT_RC_MALFORMED_PACKET
#define PROTOCOL	MQTT_RC_PROTOCOL_ERROR

int
mqtt_read_vbi(struct buf_reader *r, uint32_t *out)
{
	uint32_t	 v = 0;
	uint8_t		 c = 0;
	int		 i;

	for (i = 0; i < 4; i++) {
		c = buf_read_u8(r);
		if (r->failed)
			return -1;
		v |= (uint32_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80))
			break;
	}
	/* A fifth byte, or a final zero byte that a shorter form avoids. */
	if (i == 4 || (i > 0 && c == 0))
		return -1;
	*out = v;
	return 0;
}

int
mqtt_read_view(struct buf_reader *r, struct mqtt_view *v)
{
	uint16_t	 len = buf_read_u16(r);

	v->data = buf_read_ptr(r, len);
	v->len = len;
	return r->failed ? -1 : 0;
}

/* A UTF-8 Encoded String field. */
static int
read_string(struct buf_reader *r, struct mqtt_view *v, struct mqtt_result *res)
{
	if (mqtt_read_view(r, v) == -1)
		return mqtt_fail(res, MALFORMED, "string runs past the packet");
	if (utf8_check(v->data, v->len, 0) == -1)
		return mqtt_fail(res, MALFORMED, "string is not valid UTF-8");
	return 0;
}

static int
read_binary(struct buf_reader *r, struct mqtt_view *v, struct mqtt_result *res)
{
	if (mqtt_read_view(r, v) == -1)
		return mqtt_fail(res, MALFORMED,
		    "binary data runs past the packet");
	return 0;
}

/*
 * A packet identifier, which is never 0 ([MQTT-2.2.1-3], -4, -5, -6).
 * The specification names no reason code for 0: `zero` is the one
 * Mosquitto 2.0 answers with, which client suites expect (0x81 in
 * SUBSCRIBE and UNSUBSCRIBE, 0x82 elsewhere).
 */
static int
read_packet_id(struct buf_reader *r, uint16_t *id, uint8_t zero,
    struct mqtt_result *res)
{
	*id = buf_read_u16(r);
	if (r->failed)
		return mqtt_fail(res, MALFORMED, "packet too short");
	if (*id == 0)
		return mqtt_fail(res, zero, "packet identifier 0");
	return 0;
}

static int
expect_end(const struct buf_reader *r, struct mqtt_result *res)
{
	if (buf_read_end(r) == -1)
		return mqtt_fail(res, MALFORMED,
		    "packet length does not match its fields");
	return 0;
}

/* Whether a topic or filter has more levels than opts allow. */
static int
too_many_levels(const struct mqtt_view *t, const struct mqtt_decode_opts *opts)
{
	uint32_t	 levels = 1;
	size_t		 i;

	if (opts->max_topic_levels == 0)
		return 0;
	for (i = 0; i < t->len; i++)
		if (t->data[i] == '/' && ++levels > opts->max_topic_levels)
			return 1;
	return 0;
}

/*
 * The topic name rules, with the reason codes they lead to: ill-formed
 * UTF-8 is malformed, wildcards or an empty name a protocol error, as
 * Mosquitto answers (0x90 means a name well formed but refused); past
 * the levels limit, a protocol error too (its limit is not a property a
 * client can know).
 */
static int
check_topic_name(const struct mqtt_view *t, const struct mqtt_decode_opts *opts,
    struct mqtt_result *res)
{
	int	 e = topic_name_check(t->data, t->len);

	if (e != TOPIC_OK)
		return mqtt_fail(res, e == TOPIC_BAD_UTF8 ? MALFORMED :
		    PROTOCOL, topic_strerror(e));
	if (too_many_levels(t, opts))
		return mqtt_fail(res, PROTOCOL, "topic name with more levels "
		    "than mqtt.max-topic-levels");
	return 0;
}

static int
check_payload_format(const struct mqtt_props *p, const struct mqtt_view *pl,
    const struct mqtt_decode_opts *opts, struct mqtt_result *res)
{
	if (!(opts->flags & MQTT_DECODE_CHECK_PAYLOAD_FORMAT) ||
	    !mqtt_props_has(p, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR) ||
	    p->payload_format_indicator != 1)
		return 0;
	if (utf8_check(pl->data, pl->len, 0) == -1)
		return mqtt_fail(res, MQTT_RC_PAYLOAD_FORMAT_INVALID,
		    "payload is not the UTF-8 its format indicator says");
	return 0;
}

/*
 * CONNECT declares the protocol level: "MQIsdp" with 3, "MQTT" with 4 or
 * 5.  Anything else is 0x84, which 3.x clients get as CONNACK return code
 * 1 ([MQTT-3.1.2-1], [MQTT-3.1.2-2]; 3.1.1 section 3.1.2.2).
 */
static int
read_protocol(struct buf_reader *r, struct mqtt_packet *pkt,
    struct mqtt_result *res)
{
	struct mqtt_view	 name;
	uint8_t			 level;

	if (mqtt_read_view(r, &name) == -1)
		return mqtt_fail(res, MALFORMED, "packet too short");
	level = buf_read_u8(r);
	if (r->failed)
		return mqtt_fail(res, MALFORMED, "packet too short");
	if (name.len == 4 && memcmp(name.data, "MQTT", 4) == 0) {
		res->level = level;
		if (level != MQTT_LEVEL_311 && level != MQTT_LEVEL_5)
			return mqtt_fail(res,
			    MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
			    "unsupported protocol level");
	} else if (name.len == 6 && memcmp(name.data, "MQIsdp", 6) == 0) {
		res->level = level;
		if (level != MQTT_LEVEL_31)
			return mqtt_fail(res,
			    MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
			    "unsupported protocol level");
	} else {
		return mqtt_fail(res, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
		    "unknown protocol name");
	}
	pkt->level = level;
	return 0;
}

/* Connect Flags (section 3.1.2.3 of 3.1.1 and 5.0). */
static int
read_connect_flags(struct buf_reader *r, uint8_t level, struct mqtt_connect *c,
    struct mqtt_result *res)
{
	uint8_t	 f = buf_read_u8(r);

	c->keep_alive = buf_read_u16(r);
	if (r->failed)
		return mqtt_fail(res, MALFORMED, "packet too short");
	if (f & 0x01)
		return mqtt_fail(res, MALFORMED, "reserved connect flag set");
	c->clean_start = (f >> 1) & 1;
	c->will = (f >> 2) & 1;
	c->will_qos = (f >> 3) & 3;
	c->will_retain = (f >> 5) & 1;
	c->has_password = (f >> 6) & 1;
	c->has_username = (f >> 7) & 1;
	if (c->will_qos == 3)
		return mqtt_fail(res, MALFORMED, "will QoS 3");
	if (!c->will && (c->will_qos != 0 || c->will_retain))
		return mqtt_fail(res, MALFORMED,
		    "will QoS or retain without a will");
	/* [MQTT-3.1.2-22] of 3.1.1; 5.0 allows a password alone. */
	if (level < MQTT_LEVEL_5 && c->has_password && !c->has_username)
		return mqtt_fail(res, MALFORMED, "password without user name");
	return 0;
}

/*
 * Client identifier rules that belong to the level: 3.1 allows 1 to 23
 * bytes; 3.1.1 allows an empty one only with Clean Session
 * ([MQTT-3.1.3-7], -8); 5.0 lets the server assign one.
 */
static int
check_client_id(uint8_t level, const struct mqtt_connect *c,
    struct mqtt_result *res)
{
	if (level == MQTT_LEVEL_31 &&
	    (c->client_id.len == 0 || c->client_id.len > MQTT_V31_MAX_CLIENT_ID))
		return mqtt_fail(res, MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
		    "3.1 client identifier must be 1 to 23 bytes");
	if (level == MQTT_LEVEL_311 && c->client_id.len == 0 &&
	    !c->clean_start)
		return mqtt_fail(res, MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
		    "empty client identifier without clean session");
	return 0;
}

static int
decode_will(struct buf_reader *r, uint8_t level, struct mqtt_connect *c,
    const struct mqtt_decode_opts *opts, struct mqtt_result *res)
{
	if (level == MQTT_LEVEL_5 && mqtt_props_decode(r, MQTT_WILL,
	    opts->direction, &c->will_props, res) == -1)
		return -1;
	if (read_string(r, &c->will_topic, res) == -1 ||
	    check_topic_name(&c->will_topic, opts, res) == -1 ||
	    read_binary(r, &c->will_payload, res) == -1)
		return -1;
	return check_payload_format(&c->will_props, &c->will_payload, opts, res);
}

static int
decode_connect(struct buf_reader *r, struct mqtt_packet *pkt,
    const struct mqtt_decode_opts *opts, struct mqtt_result *res)
{
	struct mqtt_connect	*c = &pkt->connect;

	memset(c, 0, sizeof(*c));
	if (read_protocol(r, pkt, res) == -1 ||
	    read_connect_flags(r, pkt->level, c, res) == -1)
		return -1;
	if (pkt->level == MQTT_LEVEL_5 && mqtt_props_decode(r, MQTT_CONNECT,
	    opts->direction, &c->props, res) == -1)
		return -1;
	if (read_string(r, &c->client_id, res) == -1 ||
	    check_client_id(pkt->level, c, res) == -1)
		return -1;
	if (c->will && decode_will(r, pkt->level, c, opts, res) == -1)
		return -1;
	if (c->has_username && read_string(r, &c->username, res) == -1)
		return -1;
	if (c->has_password && read_binary(r, &c->password, res) == -1)
		return -1;
	return expect_end(r, res);
}

static int
decode_connack(struct buf_reader *r, struct mqtt_packet *pkt,
    const struct mqtt_decode_opts *opts, struct mqtt_result *res)
{
	struct mqtt_connack	*c = &pkt->connack;
	uint8_t			 flags;

	memset(c, 0, sizeof(*c));
	flags = buf_read_u8(r);
	c->reason = buf_read_u8(r);
	if (r->failed)
		return mqtt_fail(res, MALFORMED, "packet too short");
	if (flags & 0xfe)
		return mqtt_fail(res, MALFORMED,
		    "reserved acknowledge flag set");
	c->session_present = flags & 1;
	if (pkt->level == MQTT_LEVEL_5) {
		if (!mqtt_reason_allowed(MQTT_CONNACK, c->reason))
			return mqtt_fail(res, PROTOCOL,
			    "reason code not allowed in CONNACK");
		if (mqtt_props_decode(r, MQTT_CONNACK, opts->direction,
		    &c->props, res) == -1)
			return -1;
	} else if (c->reason > MQTT_V3_NOT_AUTHORIZED) {
		return mqtt_fail(res, PROTOCOL, "unknown CONNACK return code");
	}
	/* [MQTT-3.2.2-4] of 3.1.1, [MQTT-3.2.2-6] of 5.0. */
	if (c->reason != 0 && c->session_present)
		return mqtt_fail(res, PROTOCOL,
		    "session present with a refusal");
	return expect_end(r, res);
}

static int
decode_publish(struct buf_reader *r, struct mqtt_packet *pkt, uint8_t flags,
    const struct mqtt_decode_opts *opts, struct mqtt_result *res)
{
	struct mqtt_publish	*p = &pkt->publish;

	memset(p, 0, sizeof(*p));
	p->dup = (flags >> 3) & 1;
	p->qos = (flags >> 1) & 3;
	p->retain = flags & 1;
	if (read_string(r, &p->topic, res) == -1)
		return -1;
	if (p->qos > 0 && read_packet_id(r, &p->packet_id, PROTOCOL, res) == -1)
		return -1;
	if (pkt->level == MQTT_LEVEL_5 && mqtt_props_decode(r, MQTT_PUBLISH,
	    opts->direction, &p->props, res) == -1)
		return -1;
	/* 5.0 section 3.3.2.1: an empty topic name needs a Topic Alias. */
	if (p->topic.len == 0 && pkt->level == MQTT_LEVEL_5) {
		if (!mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS))
			return mqtt_fail(res, PROTOCOL,
			    "empty topic name without a topic alias");
	} else if (check_topic_name(&p->topic, opts, res) == -1) {
		return -1;
	}
	p->payload.len = buf_read_left(r);
	p->payload.data = buf_read_ptr(r, p->payload.len);
	return check_payload_format(&p->props, &p->payload, opts, res);
}

/*
 * PUBACK, PUBREC, PUBREL, PUBCOMP.  Before 5.0 they are a packet
 * identifier and nothing else.  In 5.0 the reason code and the property
 * length may each be left out when there is nothing after them
 * (sections 3.4.2.1 and 3.4.2.2.1 and their twins).
 */
static int
decode_ack(struct buf_reader *r, struct mqtt_packet *pkt,
    const struct mqtt_decode_opts *opts, struct mqtt_result *res)
{
	struct mqtt_ack	*a = &pkt->ack;

	memset(a, 0, sizeof(*a));
	if (read_packet_id(r, &a->packet_id, PROTOCOL, res) == -1)
		return -1;
	if (pkt->level == MQTT_LEVEL_5 && buf_read_left(r) > 0) {
		a->reason = buf_read_u8(r);
		if (!mqtt_reason_allowed(pkt->type, a->reason))
			return mqtt_fail(res, PROTOCOL,
			    "reason code not allowed in this acknowledgement");
		if (buf_read_left(r) > 0 && mqtt_props_decode(r, pkt->type,
		    opts->direction, &a->props, res) == -1)
			return -1;
	}
	return expect_end(r, res);
}

/* Subscription Options (5.0 section 3.8.3.1, 3.1.1 section 3.8.3). */
static int
check_options(uint8_t level, uint8_t o, const struct topic_filter *tf,
    struct mqtt_result *res)
{
	if (level < MQTT_LEVEL_5) {
		if (o & 0xfc)
			return mqtt_fail(res, MALFORMED,
			    "reserved subscription option bits set");
		if (o == 3)
			return mqtt_fail(res, MALFORMED, "requested QoS 3");
		return 0;
	}
	if (o & 0xc0)
		return mqtt_fail(res, MALFORMED,
		    "reserved subscription option bits set");
	if ((o & 3) == 3)
		return mqtt_fail(res, PROTOCOL, "requested QoS 3");
	if (((o >> 4) & 3) == 3)
		return mqtt_fail(res, PROTOCOL, "retain handling 3");
	if ((o & MQTT_SUB_NO_LOCAL) && tf->share != NULL)
		return mqtt_fail(res, PROTOCOL,
		    "no local on a shared subscription");
	return 0;
}

static int
read_filter(struct buf_reader *r, struct mqtt_view *f, struct topic_filter *tf,
    const struct mqtt_decode_opts *opts, struct mqtt_result *res)
{
	int	 e;

	if (read_string(r, f, res) == -1)
		return -1;
	/* a filter that breaks the wildcard rules or is empty is not well
	 * formed: malformed, as Mosquitto answers (0x8F means well formed
	 * but refused); a bad $share form stays 0x8F */
	if ((e = topic_filter_parse(f->data, f->len, tf)) != TOPIC_OK)
		return mqtt_fail(res, e == TOPIC_BAD_SHARE ?
		    MQTT_RC_TOPIC_FILTER_INVALID : MALFORMED,
		    topic_strerror(e));
	/* past the levels limit: malformed, as Mosquitto answers */
	if (too_many_levels(f, opts))
		return mqtt_fail(res, MALFORMED, "topic filter with more "
		    "levels than mqtt.max-topic-levels");
	return 0;
}

/* SUBSCRIBE and UNSUBSCRIBE share their layout but the options byte. */
static int
decode_filter_list(struct buf_reader *r, struct mqtt_packet *pkt, int sub,
    const struct mqtt_decode_opts *opts, struct mqtt_result *res)
{
	struct mqtt_filter_list	*s = sub ? &pkt->subscribe : &pkt->unsubscribe;
	struct mqtt_view	 f;
	struct topic_filter	 tf;

	memset(s, 0, sizeof(*s));
	if (read_packet_id(r, &s->packet_id, MALFORMED, res) == -1)
		return -1;
	if (pkt->level == MQTT_LEVEL_5 && mqtt_props_decode(r, pkt->type,
	    opts->direction, &s->props, res) == -1)
		return -1;
	s->list.data = r->data + r->off;
	s->list.len = buf_read_left(r);
	if (s->list.len == 0)
		return mqtt_fail(res, PROTOCOL, sub ?
		    "SUBSCRIBE without a topic filter" :
		    "UNSUBSCRIBE without a topic filter");
	while (buf_read_left(r) > 0) {
		if (read_filter(r, &f, &tf, opts, res) == -1)
			return -1;
		if (sub) {
			uint8_t	 o = buf_read_u8(r);

			if (r->failed)
				return mqtt_fail(res, MALFORMED,
				    "topic filter without options");
			if (check_options(pkt->level, o, &tf, res) == -1)
				return -1;
		}
		s->count++;
	}
	return 0;
}

/* A reason code byte in SUBACK or UNSUBACK at this level. */
static int
list_reason_ok(uint8_t type, uint8_t level, uint8_t code)
{
	if (level == MQTT_LEVEL_5)
		return mqtt_reason_allowed(type, code);
	if (code <= MQTT_RC_GRANTED_QOS_2)
		return 1;
	return level == MQTT_LEVEL_311 && code == MQTT_V311_SUBACK_FAILURE;
}

/*
 * SUBACK and UNSUBACK: one reason code per filter.  A 3.x UNSUBACK has
 * only the packet identifier.
 */
static int
decode_reason_list(struct buf_reader *r, struct mqtt_packet *pkt,
    const struct mqtt_decode_opts *opts, struct mqtt_result *res)
{
	struct mqtt_reason_list	*a = pkt->type == MQTT_SUBACK ? &pkt->suback :
				    &pkt->unsuback;
	size_t			 i;

	memset(a, 0, sizeof(*a));
	if (read_packet_id(r, &a->packet_id, PROTOCOL, res) == -1)
		return -1;
	if (pkt->type == MQTT_UNSUBACK && pkt->level < MQTT_LEVEL_5)
		return expect_end(r, res);
	if (pkt->level == MQTT_LEVEL_5 && mqtt_props_decode(r, pkt->type,
	    opts->direction, &a->props, res) == -1)
		return -1;
	a->reasons.len = buf_read_left(r);
	a->reasons.data = buf_read_ptr(r, a->reasons.len);
	if (a->reasons.len == 0)
		return mqtt_fail(res, PROTOCOL, "acknowledgement without a "
		    "reason code");
	for (i = 0; i < a->reasons.len; i++)
		if (!list_reason_ok(pkt->type, pkt->level, a->reasons.data[i]))
			return mqtt_fail(res, PROTOCOL,
			    "reason code not allowed in this acknowledgement");
	return 0;
}

/*
 * DISCONNECT and AUTH of 5.0: an empty body means reason 0; otherwise
 * the reason code, then properties (DISCONNECT may stop after the reason
 * code, section 3.14.2.2.1; AUTH may not, section 3.15.2.2.1).  AUTH must
 * name its method (section 3.15.2.2.2).
 */
static int
decode_reason_packet(struct buf_reader *r, struct mqtt_packet *pkt,
    const struct mqtt_decode_opts *opts, struct mqtt_result *res)
{
	struct mqtt_reason_packet	*d = pkt->type == MQTT_AUTH ?
					    &pkt->auth : &pkt->disconnect;

	memset(d, 0, sizeof(*d));
	if (pkt->level < MQTT_LEVEL_5 || buf_read_left(r) == 0)
		return expect_end(r, res);
	d->reason = buf_read_u8(r);
	if (!mqtt_reason_allowed(pkt->type, d->reason))
		return mqtt_fail(res, PROTOCOL, pkt->type == MQTT_AUTH ?
		    "reason code not allowed in AUTH" :
		    "reason code not allowed in DISCONNECT");
	if (buf_read_left(r) == 0 && pkt->type == MQTT_AUTH)
		return mqtt_fail(res, MALFORMED, "AUTH without properties");
	if (buf_read_left(r) > 0 && mqtt_props_decode(r, pkt->type,
	    opts->direction, &d->props, res) == -1)
		return -1;
	if (pkt->type == MQTT_AUTH &&
	    !mqtt_props_has(&d->props, MQTT_PROP_AUTHENTICATION_METHOD))
		return mqtt_fail(res, PROTOCOL,
		    "AUTH without an authentication method");
	return expect_end(r, res);
}

/* Which way each packet type may travel; DISCONNECT to a 3.x client not. */
static int
direction_ok(uint8_t type, uint8_t level, uint8_t direction)
{
	static const uint16_t to_server = MQTT_CONTEXT_BIT(MQTT_CONNECT) |
	    MQTT_CONTEXT_BIT(MQTT_PUBLISH) | MQTT_CONTEXT_BIT(MQTT_PUBACK) |
	    MQTT_CONTEXT_BIT(MQTT_PUBREC) | MQTT_CONTEXT_BIT(MQTT_PUBREL) |
	    MQTT_CONTEXT_BIT(MQTT_PUBCOMP) | MQTT_CONTEXT_BIT(MQTT_SUBSCRIBE) |
	    MQTT_CONTEXT_BIT(MQTT_UNSUBSCRIBE) |
	    MQTT_CONTEXT_BIT(MQTT_PINGREQ) |
	    MQTT_CONTEXT_BIT(MQTT_DISCONNECT) | MQTT_CONTEXT_BIT(MQTT_AUTH);
	static const uint16_t to_client = MQTT_CONTEXT_BIT(MQTT_CONNACK) |
	    MQTT_CONTEXT_BIT(MQTT_PUBLISH) | MQTT_CONTEXT_BIT(MQTT_PUBACK) |
	    MQTT_CONTEXT_BIT(MQTT_PUBREC) | MQTT_CONTEXT_BIT(MQTT_PUBREL) |
	    MQTT_CONTEXT_BIT(MQTT_PUBCOMP) | MQTT_CONTEXT_BIT(MQTT_SUBACK) |
	    MQTT_CONTEXT_BIT(MQTT_UNSUBACK) |
	    MQTT_CONTEXT_BIT(MQTT_PINGRESP) |
	    MQTT_CONTEXT_BIT(MQTT_DISCONNECT) | MQTT_CONTEXT_BIT(MQTT_AUTH);

	if (direction == MQTT_TO_SERVER)
		return (to_server & MQTT_CONTEXT_BIT(type)) != 0;
	if (type == MQTT_DISCONNECT && level < MQTT_LEVEL_5)
		return 0;
	return direction == MQTT_TO_CLIENT &&
	    (to_client & MQTT_CONTEXT_BIT(type)) != 0;
}

/*
 * The flag bits of byte 1 (table 2-2 of 5.0, 2.2 of 3.1.1): 0010 for
 * PUBREL, SUBSCRIBE and UNSUBSCRIBE, 0000 for every other type but
 * PUBLISH.  3.1 senders set DUP when they retry those three, so it is
 * accepted there.  A PUBLISH may not have QoS 3 ([MQTT-3.3.1-4]) nor DUP
 * at QoS 0 ([MQTT-3.3.1-2]).
 */
static int
flags_ok(uint8_t type, uint8_t level, uint8_t flags)
{
	switch (type) {
	case MQTT_PUBLISH:
		if (((flags >> 1) & 3) == 3)
			return 0;
		return !((flags & 0x08) && ((flags >> 1) & 3) == 0);
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		if (level == MQTT_LEVEL_31)
			flags &= ~0x08;
		return flags == 0x02;
	default:
		return flags == 0;
	}
}

/* Step 1: type, flags, direction; level first known from opts. */
static int
check_first_byte(uint8_t b, const struct mqtt_decode_opts *opts,
    struct mqtt_result *res)
{
	uint8_t	 type = b >> 4;

	res->type = type;
	if (type == 0)
		/* reserved: a protocol error, as Mosquitto answers */
		return mqtt_fail(res, PROTOCOL, "reserved packet type 0");
	if (type != MQTT_CONNECT && opts->level == MQTT_LEVEL_UNKNOWN)
		return mqtt_fail(res, PROTOCOL, "first packet is not CONNECT");
	if (type == MQTT_AUTH && opts->level < MQTT_LEVEL_5)
		return mqtt_fail(res, MALFORMED, "AUTH before MQTT 5.0");
	if (!direction_ok(type, opts->level, opts->direction))
		return mqtt_fail(res, PROTOCOL,
		    "packet type not allowed in this direction");
	if (!flags_ok(type, opts->level, b & 0x0f))
		return mqtt_fail(res, MALFORMED, "invalid fixed header flags");
	return 0;
}

/*
 * The Remaining Length straight from the buffer: 1 with *rl and *hlen
 * (fixed header bytes) set, 0 when more bytes are needed, -1 when it is
 * malformed.
 */
static int
read_remaining_length(const uint8_t *data, size_t len, uint32_t *rl,
    size_t *hlen)
{
	struct buf_reader	 r;
	size_t			 i;

	/* Complete only if a byte without the continuation bit is there. */
	for (i = 1; i < len && i <= 4; i++)
		if (!(data[i] & 0x80))
			break;
	if (i >= len && i <= 4)
		return 0;
	buf_reader_init(&r, data + 1, len - 1);
	if (mqtt_read_vbi(&r, rl) == -1)
		return -1;
	*hlen = 1 + r.off;
	return 1;
}

int
mqtt_decode(const uint8_t *data, size_t len,
    const struct mqtt_decode_opts *opts, struct mqtt_packet *pkt,
    struct mqtt_result *res)
{
	struct buf_reader	 r;
	uint32_t		 rl, max;
	size_t			 hlen, total;
	int			 n, rc;

	memset(res, 0, sizeof(*res));
	/* A caller's mistake, not the peer's: say so rather than guess. */
	if ((opts->level != MQTT_LEVEL_UNKNOWN &&
	    (opts->level < MQTT_LEVEL_31 || opts->level > MQTT_LEVEL_5)) ||
	    (opts->direction != MQTT_TO_SERVER &&
	    opts->direction != MQTT_TO_CLIENT))
		return mqtt_fail(res, MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR,
		    "invalid decode options");
	if (len == 0)
		return MQTT_DECODE_MORE;
	if (check_first_byte(data[0], opts, res) == -1)
		return MQTT_DECODE_ERROR;
	if ((n = read_remaining_length(data, len, &rl, &hlen)) == 0)
		return MQTT_DECODE_MORE;
	if (n == -1)
		return mqtt_fail(res, MALFORMED, "malformed remaining length");
	total = hlen + rl;
	max = opts->max_packet_size ? opts->max_packet_size : MQTT_MAX_PACKET;
	if (total > max)
		return mqtt_fail(res, MQTT_RC_PACKET_TOO_LARGE,
		    "packet larger than the maximum packet size");
	if (len < total) {
		res->size = total;
		return MQTT_DECODE_MORE;
	}

	pkt->type = data[0] >> 4;
	pkt->level = opts->level;
	buf_reader_init(&r, data + hlen, rl);
	switch (pkt->type) {
	case MQTT_CONNECT:
		rc = decode_connect(&r, pkt, opts, res);
		break;
	case MQTT_CONNACK:
		rc = decode_connack(&r, pkt, opts, res);
		break;
	case MQTT_PUBLISH:
		rc = decode_publish(&r, pkt, data[0] & 0x0f, opts, res);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		rc = decode_ack(&r, pkt, opts, res);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		rc = decode_filter_list(&r, pkt, pkt->type == MQTT_SUBSCRIBE,
		    opts, res);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		rc = decode_reason_list(&r, pkt, opts, res);
		break;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		rc = expect_end(&r, res);
		break;
	default:	/* DISCONNECT, AUTH */
		rc = decode_reason_packet(&r, pkt, opts, res);
		break;
	}
	if (rc == -1)
		return MQTT_DECODE_ERROR;
	res->size = total;
	return MQTT_DECODE_OK;
}

void
mqtt_list_iter(const struct mqtt_view *list, struct buf_reader *it)
{
	buf_reader_init(it, list->data, list->len);
}

/* The lists were checked by mqtt_decode(); these only walk them. */
int
mqtt_subscribe_next(struct buf_reader *it, struct mqtt_subscription *s)
{
	uint8_t	 o;

	if (buf_read_left(it) == 0 || mqtt_read_view(it, &s->filter) == -1)
		return 0;
	o = buf_read_u8(it);
	if (it->failed || topic_filter_parse(s->filter.data, s->filter.len,
	    &s->parsed) != TOPIC_OK)
		return 0;
	s->qos = o & 3;
	s->no_local = (o >> 2) & 1;
	s->retain_as_published = (o >> 3) & 1;
	s->retain_handling = (o >> 4) & 3;
	return 1;
}

int
mqtt_unsubscribe_next(struct buf_reader *it, struct mqtt_view *filter)
{
	return buf_read_left(it) > 0 && mqtt_read_view(it, filter) == 0;
}

/*
 * A PUBLISH a broker process kept whole (in the log, in a queue, in a
 * forward from another worker): exactly one packet at `level`, as a
 * client sent it.
 */
int
mqtt_decode_stored_publish(const uint8_t *raw, size_t len, uint8_t level,
    struct mqtt_packet *pkt)
{
	struct mqtt_decode_opts	 opts;
	struct mqtt_result	 res;

	memset(&opts, 0, sizeof(opts));
	opts.level = level;
	opts.direction = MQTT_TO_SERVER;
	if (mqtt_decode(raw, len, &opts, pkt, &res) != MQTT_DECODE_OK ||
	    pkt->type != MQTT_PUBLISH || res.size != len)
		return -1;
	return 0;
}
