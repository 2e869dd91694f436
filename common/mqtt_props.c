/*
 * mqtt_props.c - MQTT 5.0 properties: the table of all 27 identifiers
 * (type, the packets that may carry each, the value rules), decoding and
 * checking a property block, writing one, and the iterators over the
 * repeatable ones.
 *
 * Which reason code a bad property earns follows the specification's own
 * words (section 2.2.2.2 and the sections of each property):
 *  - an unknown identifier, an identifier the packet may not carry, or a
 *    value that is not of the property's type (truncated, ill-formed
 *    UTF-8) is a Malformed Packet, 0x81;
 *  - a second copy of a property that may appear once, or a value the
 *    protocol does not allow (0 or 1 expected, a zero Receive Maximum,
 *    Maximum Packet Size or Subscription Identifier) is a Protocol
 *    Error, 0x82;
 *  - a Topic Alias of 0 is 0x94 (Topic Alias invalid, section 3.3.4).
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "mqtt_private.h"
#include "topic.h"
#include "utf8.h"

#define C(t)	MQTT_CONTEXT_BIT(MQTT_##t)
#define C_WILL	MQTT_CONTEXT_BIT(MQTT_WILL)

/* How a value is checked once it has been read. */
enum prop_check {
	CHECK_NONE = 0,
	CHECK_BOOL,	/* 0 or 1, else Protocol Error */
	CHECK_NONZERO,	/* not 0, else Protocol Error */
	CHECK_ALIAS,	/* not 0, else Topic Alias invalid */
	CHECK_TOPIC,	/* a topic name, else Protocol Error */
};

struct prop_def {
	struct mqtt_prop_info	 info;
	uint8_t			 check;
	uint16_t		 offset;	/* of the field in struct mqtt_props */
};

#define FIELD(f)	offsetof(struct mqtt_props, f)
#define DEF(id, type, ctx, name, check, off)				\
	[MQTT_PROP_##id] = { { MQTT_PROP_##id, MQTT_PROP_TYPE_##type,	\
	    (uint16_t)(ctx), name }, check, (uint16_t)(off) }

#define C_ACKS	(C(PUBACK) | C(PUBREC) | C(PUBREL) | C(PUBCOMP))

static const struct prop_def prop_defs[MQTT_PROP_ID_MAX + 1] = {
	DEF(PAYLOAD_FORMAT_INDICATOR, BYTE, C(PUBLISH) | C_WILL,
	    "Payload Format Indicator", CHECK_BOOL,
	    FIELD(payload_format_indicator)),
	DEF(MESSAGE_EXPIRY_INTERVAL, U32, C(PUBLISH) | C_WILL,
	    "Message Expiry Interval", CHECK_NONE,
	    FIELD(message_expiry_interval)),
	DEF(CONTENT_TYPE, UTF8, C(PUBLISH) | C_WILL, "Content Type",
	    CHECK_NONE, FIELD(content_type)),
	DEF(RESPONSE_TOPIC, UTF8, C(PUBLISH) | C_WILL, "Response Topic",
	    CHECK_TOPIC, FIELD(response_topic)),
	DEF(CORRELATION_DATA, BINARY, C(PUBLISH) | C_WILL,
	    "Correlation Data", CHECK_NONE, FIELD(correlation_data)),
	DEF(SUBSCRIPTION_IDENTIFIER, VBI, C(PUBLISH) | C(SUBSCRIBE),
	    "Subscription Identifier", CHECK_NONZERO, 0),
	DEF(SESSION_EXPIRY_INTERVAL, U32,
	    C(CONNECT) | C(CONNACK) | C(DISCONNECT),
	    "Session Expiry Interval", CHECK_NONE,
	    FIELD(session_expiry_interval)),
	DEF(ASSIGNED_CLIENT_IDENTIFIER, UTF8, C(CONNACK),
	    "Assigned Client Identifier", CHECK_NONE,
	    FIELD(assigned_client_identifier)),
	DEF(SERVER_KEEP_ALIVE, U16, C(CONNACK), "Server Keep Alive",
	    CHECK_NONE, FIELD(server_keep_alive)),
	DEF(AUTHENTICATION_METHOD, UTF8, C(CONNECT) | C(CONNACK) | C(AUTH),
	    "Authentication Method", CHECK_NONE,
	    FIELD(authentication_method)),
	DEF(AUTHENTICATION_DATA, BINARY, C(CONNECT) | C(CONNACK) | C(AUTH),
	    "Authentication Data", CHECK_NONE, FIELD(authentication_data)),
	DEF(REQUEST_PROBLEM_INFORMATION, BYTE, C(CONNECT),
	    "Request Problem Information", CHECK_BOOL,
	    FIELD(request_problem_information)),
	DEF(WILL_DELAY_INTERVAL, U32, C_WILL, "Will Delay Interval",
	    CHECK_NONE, FIELD(will_delay_interval)),
	DEF(REQUEST_RESPONSE_INFORMATION, BYTE, C(CONNECT),
	    "Request Response Information", CHECK_BOOL,
	    FIELD(request_response_information)),
	DEF(RESPONSE_INFORMATION, UTF8, C(CONNACK), "Response Information",
	    CHECK_NONE, FIELD(response_information)),
	DEF(SERVER_REFERENCE, UTF8, C(CONNACK) | C(DISCONNECT),
	    "Server Reference", CHECK_NONE, FIELD(server_reference)),
	DEF(REASON_STRING, UTF8,
	    C(CONNACK) | C_ACKS | C(SUBACK) | C(UNSUBACK) | C(DISCONNECT) |
	    C(AUTH),
	    "Reason String", CHECK_NONE, FIELD(reason_string)),
	DEF(RECEIVE_MAXIMUM, U16, C(CONNECT) | C(CONNACK), "Receive Maximum",
	    CHECK_NONZERO, FIELD(receive_maximum)),
	DEF(TOPIC_ALIAS_MAXIMUM, U16, C(CONNECT) | C(CONNACK),
	    "Topic Alias Maximum", CHECK_NONE, FIELD(topic_alias_maximum)),
	DEF(TOPIC_ALIAS, U16, C(PUBLISH), "Topic Alias", CHECK_ALIAS,
	    FIELD(topic_alias)),
	DEF(MAXIMUM_QOS, BYTE, C(CONNACK), "Maximum QoS", CHECK_BOOL,
	    FIELD(maximum_qos)),
	DEF(RETAIN_AVAILABLE, BYTE, C(CONNACK), "Retain Available",
	    CHECK_BOOL, FIELD(retain_available)),
	DEF(USER_PROPERTY, PAIR,
	    C(CONNECT) | C(CONNACK) | C(PUBLISH) | C_WILL | C_ACKS |
	    C(SUBSCRIBE) | C(SUBACK) | C(UNSUBSCRIBE) | C(UNSUBACK) |
	    C(DISCONNECT) | C(AUTH),
	    "User Property", CHECK_NONE, 0),
	DEF(MAXIMUM_PACKET_SIZE, U32, C(CONNECT) | C(CONNACK),
	    "Maximum Packet Size", CHECK_NONZERO, FIELD(maximum_packet_size)),
	DEF(WILDCARD_SUBSCRIPTION_AVAILABLE, BYTE, C(CONNACK),
	    "Wildcard Subscription Available", CHECK_BOOL,
	    FIELD(wildcard_subscription_available)),
	DEF(SUBSCRIPTION_IDENTIFIER_AVAILABLE, BYTE, C(CONNACK),
	    "Subscription Identifier Available", CHECK_BOOL,
	    FIELD(subscription_identifier_available)),
	DEF(SHARED_SUBSCRIPTION_AVAILABLE, BYTE, C(CONNACK),
	    "Shared Subscription Available", CHECK_BOOL,
	    FIELD(shared_subscription_available)),
};

static const struct prop_def *
prop_def(uint32_t id)
{
	if (id > MQTT_PROP_ID_MAX || prop_defs[id].info.id == 0)
		return NULL;
	return &prop_defs[id];
}

const struct mqtt_prop_info *
mqtt_prop_info(uint32_t id)
{
	const struct prop_def	*d = prop_def(id);

	return d ? &d->info : NULL;
}

/* The repeatable ones live in the list, not in a field. */
static int
prop_repeatable(uint8_t id)
{
	return id == MQTT_PROP_USER_PROPERTY ||
	    id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER;
}

#define FIELD_PTR(p, d, type)	((type *)(void *)((char *)(p) + (d)->offset))
#define FIELD_CPTR(p, d, type)	\
	((const type *)(const void *)((const char *)(p) + (d)->offset))

/* One property record as read from the wire. */
struct prop_value {
	uint32_t		 num;		/* integer types */
	struct mqtt_view	 a;		/* string, binary, pair name */
	struct mqtt_view	 b;		/* pair value */
};

/*
 * Read one record: 1 with its definition and value, 0 at the end of the
 * block, -1 when it is not a well-formed record of a known property.
 */
static int
record_read(struct buf_reader *r, const struct prop_def **def,
    struct prop_value *v)
{
	uint32_t	 id;

	if (buf_read_left(r) == 0)
		return 0;
	if (mqtt_read_vbi(r, &id) == -1 || (*def = prop_def(id)) == NULL)
		return -1;
	memset(v, 0, sizeof(*v));
	switch ((*def)->info.type) {
	case MQTT_PROP_TYPE_BYTE:
		v->num = buf_read_u8(r);
		break;
	case MQTT_PROP_TYPE_U16:
		v->num = buf_read_u16(r);
		break;
	case MQTT_PROP_TYPE_U32:
		v->num = buf_read_u32(r);
		break;
	case MQTT_PROP_TYPE_VBI:
		if (mqtt_read_vbi(r, &v->num) == -1)
			return -1;
		break;
	case MQTT_PROP_TYPE_PAIR:
		if (mqtt_read_view(r, &v->a) == -1 ||
		    mqtt_read_view(r, &v->b) == -1)
			return -1;
		break;
	default:	/* UTF8, BINARY */
		if (mqtt_read_view(r, &v->a) == -1)
			return -1;
		break;
	}
	return r->failed ? -1 : 1;
}

/* Check a value against the rules of its property; 0 or a reason. */
static uint8_t
value_check(const struct prop_def *d, const struct prop_value *v,
    const char **what)
{
	int	 e;

	switch (d->info.type) {
	case MQTT_PROP_TYPE_UTF8:
		if (utf8_check(v->a.data, v->a.len, 0) == -1) {
			*what = "property string is not valid UTF-8";
			return MQTT_RC_MALFORMED_PACKET;
		}
		break;
	case MQTT_PROP_TYPE_PAIR:
		if (utf8_check(v->a.data, v->a.len, 0) == -1 ||
		    utf8_check(v->b.data, v->b.len, 0) == -1) {
			*what = "user property is not valid UTF-8";
			return MQTT_RC_MALFORMED_PACKET;
		}
		break;
	default:
		break;
	}
	switch (d->check) {
	case CHECK_BOOL:
		if (v->num > 1) {
			*what = "property value is neither 0 nor 1";
			return MQTT_RC_PROTOCOL_ERROR;
		}
		break;
	case CHECK_NONZERO:
		if (v->num == 0) {
			*what = "property value may not be 0";
			return MQTT_RC_PROTOCOL_ERROR;
		}
		break;
	case CHECK_ALIAS:
		if (v->num == 0) {
			*what = "topic alias 0";
			return MQTT_RC_TOPIC_ALIAS_INVALID;
		}
		break;
	case CHECK_TOPIC:
		if ((e = topic_name_check(v->a.data, v->a.len)) != TOPIC_OK) {
			*what = "response topic is not a valid topic name";
			return e == TOPIC_BAD_UTF8 ? MQTT_RC_MALFORMED_PACKET :
			    MQTT_RC_PROTOCOL_ERROR;
		}
		break;
	default:
		break;
	}
	return 0;
}

static void
value_store(struct mqtt_props *p, const struct prop_def *d,
    const struct prop_value *v)
{
	switch (d->info.type) {
	case MQTT_PROP_TYPE_BYTE:
		*FIELD_PTR(p, d, uint8_t) = (uint8_t)v->num;
		break;
	case MQTT_PROP_TYPE_U16:
		*FIELD_PTR(p, d, uint16_t) = (uint16_t)v->num;
		break;
	case MQTT_PROP_TYPE_U32:
		*FIELD_PTR(p, d, uint32_t) = v->num;
		break;
	case MQTT_PROP_TYPE_UTF8:
	case MQTT_PROP_TYPE_BINARY:
		*FIELD_PTR(p, d, struct mqtt_view) = v->a;
		break;
	default:
		break;
	}
	p->present |= MQTT_PROP_BIT(d->info.id);
}

/* Rules that tie a property to the packet or the direction. */
static int
context_check(const struct mqtt_props *p, uint8_t context, uint8_t direction,
    struct mqtt_result *res)
{
	/* Section 3.1.2.11.10: no Authentication Data without a method. */
	if (context == MQTT_CONNECT &&
	    mqtt_props_has(p, MQTT_PROP_AUTHENTICATION_DATA) &&
	    !mqtt_props_has(p, MQTT_PROP_AUTHENTICATION_METHOD))
		return mqtt_fail(res, MQTT_RC_PROTOCOL_ERROR,
		    "authentication data without a method");
	/* [MQTT-3.14.2-2]: a server never sends Session Expiry Interval. */
	if (context == MQTT_DISCONNECT && direction == MQTT_TO_CLIENT &&
	    mqtt_props_has(p, MQTT_PROP_SESSION_EXPIRY_INTERVAL))
		return mqtt_fail(res, MQTT_RC_PROTOCOL_ERROR,
		    "session expiry interval in a server's DISCONNECT");
	/* [MQTT-3.3.4-6]: a client never sends Subscription Identifiers. */
	if (context == MQTT_PUBLISH && direction == MQTT_TO_SERVER &&
	    p->subscription_identifier_count > 0)
		return mqtt_fail(res, MQTT_RC_PROTOCOL_ERROR,
		    "subscription identifier in a client's PUBLISH");
	return 0;
}

int
mqtt_props_decode(struct buf_reader *r, uint8_t context, uint8_t direction,
    struct mqtt_props *p, struct mqtt_result *res)
{
	struct buf_reader	 block;
	const struct prop_def	*d;
	struct prop_value	 v;
	const uint8_t		*data, *first = NULL, *last = NULL;
	const char		*what;
	uint32_t		 len;
	uint8_t			 rc;
	int			 n;

	memset(p, 0, sizeof(*p));
	if (mqtt_read_vbi(r, &len) == -1)
		return mqtt_fail(res, MQTT_RC_MALFORMED_PACKET,
		    "malformed property length");
	if (len > buf_read_left(r))
		return mqtt_fail(res, MQTT_RC_MALFORMED_PACKET,
		    "properties run past the end of the packet");
	data = buf_read_ptr(r, len);
	buf_reader_init(&block, data, len);
	for (;;) {
		const uint8_t	*start = data + block.off;

		if ((n = record_read(&block, &d, &v)) == 0)
			break;
		if (n == -1)
			return mqtt_fail(res, MQTT_RC_MALFORMED_PACKET,
			    "malformed or unknown property");
		if (!(d->info.contexts & MQTT_CONTEXT_BIT(context)))
			return mqtt_fail(res, MQTT_RC_MALFORMED_PACKET,
			    "property not allowed in this packet");
		if ((rc = value_check(d, &v, &what)) != 0)
			return mqtt_fail(res, rc, what);
		if (prop_repeatable(d->info.id)) {
			if (d->info.id == MQTT_PROP_USER_PROPERTY)
				p->user_property_count++;
			else if (p->subscription_identifier_count++ > 0 &&
			    context == MQTT_SUBSCRIBE)
				return mqtt_fail(res, MQTT_RC_PROTOCOL_ERROR,
				    "subscription identifier more than once");
			if (first == NULL)
				first = start;
			last = data + block.off;
			continue;
		}
		if (mqtt_props_has(p, d->info.id))
			return mqtt_fail(res, MQTT_RC_PROTOCOL_ERROR,
			    "property included more than once");
		value_store(p, d, &v);
	}
	if (first != NULL) {
		p->list.data = first;
		p->list.len = (size_t)(last - first);
	}
	return context_check(p, context, direction, res);
}

void
mqtt_props_iter(const struct mqtt_props *p, struct buf_reader *it)
{
	buf_reader_init(it, p->list.data, p->list.len);
}

/* The next record of one repeatable property, skipping the others. */
static int
record_next_of(struct buf_reader *it, uint8_t id, struct prop_value *v)
{
	const struct prop_def	*d;

	while (record_read(it, &d, v) == 1)
		if (d->info.id == id)
			return 1;
	return 0;
}

int
mqtt_user_property_next(struct buf_reader *it, struct mqtt_view *name,
    struct mqtt_view *value)
{
	struct prop_value	 v;

	if (!record_next_of(it, MQTT_PROP_USER_PROPERTY, &v))
		return 0;
	*name = v.a;
	*value = v.b;
	return 1;
}

int
mqtt_subscription_id_next(struct buf_reader *it, uint32_t *id)
{
	struct prop_value	 v;

	if (!record_next_of(it, MQTT_PROP_SUBSCRIPTION_IDENTIFIER, &v))
		return 0;
	*id = v.num;
	return 1;
}

uint32_t
mqtt_props_subscription_id(const struct mqtt_props *p)
{
	struct buf_reader	 it;
	uint32_t		 id;

	mqtt_props_iter(p, &it);
	return mqtt_subscription_id_next(&it, &id) ? id : 0;
}

static int
add_view(struct buf *b, const void *p, size_t n)
{
	if (n > MQTT_MAX_STRING) {
		errno = EMSGSIZE;
		return -1;
	}
	if (buf_add_u16(b, (uint16_t)n) == -1 || buf_add(b, p, n) == -1)
		return -1;
	return 0;
}

int
mqtt_user_property_add(struct buf *b, const void *name, size_t nlen,
    const void *value, size_t vlen)
{
	size_t	 start = b->len;

	if (buf_add_u8(b, MQTT_PROP_USER_PROPERTY) == -1 ||
	    add_view(b, name, nlen) == -1 || add_view(b, value, vlen) == -1) {
		buf_truncate(b, start);
		return -1;
	}
	return 0;
}

int
mqtt_subscription_id_add(struct buf *b, uint32_t id)
{
	size_t	 start = b->len;

	if (id == 0 || id > MQTT_MAX_SUB_ID) {
		errno = EINVAL;
		return -1;
	}
	if (buf_add_u8(b, MQTT_PROP_SUBSCRIPTION_IDENTIFIER) == -1 ||
	    buf_add_vbi(b, id) == -1) {
		buf_truncate(b, start);
		return -1;
	}
	return 0;
}

/* Bytes of a single-valued property's value (after its identifier). */
static size_t
value_size(const struct mqtt_props *p, const struct prop_def *d)
{
	switch (d->info.type) {
	case MQTT_PROP_TYPE_BYTE:
		return 1;
	case MQTT_PROP_TYPE_U16:
		return 2;
	case MQTT_PROP_TYPE_U32:
		return 4;
	default:
		return 2 + FIELD_CPTR(p, d, struct mqtt_view)->len;
	}
}

static int
value_write(struct buf *b, const struct mqtt_props *p,
    const struct prop_def *d)
{
	const struct mqtt_view	*v;

	if (buf_add_u8(b, d->info.id) == -1)
		return -1;
	switch (d->info.type) {
	case MQTT_PROP_TYPE_BYTE:
		return buf_add_u8(b, *FIELD_CPTR(p, d, uint8_t));
	case MQTT_PROP_TYPE_U16:
		return buf_add_u16(b, *FIELD_CPTR(p, d, uint16_t));
	case MQTT_PROP_TYPE_U32:
		return buf_add_u32(b, *FIELD_CPTR(p, d, uint32_t));
	default:
		v = FIELD_CPTR(p, d, struct mqtt_view);
		return add_view(b, v->data, v->len);
	}
}

/*
 * The one walk over a property set that both measures (b == NULL) and
 * writes it, so the Property Length written always matches the records.
 * Returns the size of the records, or (size_t)-1 with errno.
 */
static size_t
props_emit(struct buf *b, const struct mqtt_props *p, uint8_t context,
    const struct mqtt_delivery *edit)
{
	const struct prop_def	*d;
	struct prop_value	 v;
	struct buf_reader	 it;
	uint16_t		 ctx = MQTT_CONTEXT_BIT(context);
	size_t			 size = 0, i;
	uint64_t		 bits;
	uint8_t			 id;
	int			 n = 0;

	if (p->present & (1 | ~(MQTT_PROP_BIT(MQTT_PROP_ID_MAX + 1) - 1)))
		goto invalid;
	/* Only the identifiers present, lowest first. */
	for (bits = p->present; bits != 0; bits &= bits - 1) {
		id = (uint8_t)__builtin_ctzll(bits);
		if ((d = prop_def(id)) == NULL || prop_repeatable(id) ||
		    !(d->info.contexts & ctx))
			goto invalid;
		if (id == MQTT_PROP_TOPIC_ALIAS && edit != NULL)
			continue;
		if (d->info.type >= MQTT_PROP_TYPE_UTF8 &&
		    FIELD_CPTR(p, d, struct mqtt_view)->len > MQTT_MAX_STRING)
			goto too_long;
		size += 1 + value_size(p, d);
		if (b != NULL && value_write(b, p, d) == -1)
			return (size_t)-1;
	}
	if (edit != NULL && edit->topic_alias != 0) {
		size += 3;
		if (b != NULL && (buf_add_u8(b, MQTT_PROP_TOPIC_ALIAS) == -1 ||
		    buf_add_u16(b, edit->topic_alias) == -1))
			return (size_t)-1;
	}
	/* User Properties (and Subscription Identifiers) in their order. */
	mqtt_props_iter(p, &it);
	while (p->list.len > 0 && (n = record_read(&it, &d, &v)) == 1) {
		const uint8_t	*rec;
		size_t		 len;

		if (!prop_repeatable(d->info.id))
			continue;
		if (!(d->info.contexts & ctx))
			goto invalid;
		if (d->info.id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER) {
			if (v.num == 0)
				goto invalid;
			if (edit != NULL)
				continue;
		}
		/* Copied as sent; the record ends where the reader is. */
		len = d->info.id == MQTT_PROP_USER_PROPERTY ?
		    1 + 4 + v.a.len + v.b.len : 1 + buf_vbi_size(v.num);
		rec = it.data + it.off - len;
		size += len;
		if (b != NULL && buf_add(b, rec, len) == -1)
			return (size_t)-1;
	}
	if (n == -1)
		goto invalid;
	for (i = 0; edit != NULL && i < edit->sub_id_count; i++) {
		if (!(ctx & C(PUBLISH)) || edit->sub_ids[i] == 0 ||
		    edit->sub_ids[i] > MQTT_MAX_SUB_ID)
			goto invalid;
		size += 1 + buf_vbi_size(edit->sub_ids[i]);
		if (b != NULL && mqtt_subscription_id_add(b,
		    edit->sub_ids[i]) == -1)
			return (size_t)-1;
	}
	return size;
invalid:
	errno = EINVAL;
	return (size_t)-1;
too_long:
	errno = EMSGSIZE;
	return (size_t)-1;
}

size_t
mqtt_props_size(const struct mqtt_props *p, uint8_t context,
    const struct mqtt_delivery *edit)
{
	size_t	 size = props_emit(NULL, p, context, edit);

	if (size != (size_t)-1 && size > MQTT_MAX_REMAINING) {
		errno = EMSGSIZE;
		return (size_t)-1;
	}
	return size;
}

int
mqtt_props_write(struct buf *b, const struct mqtt_props *p, uint8_t context,
    const struct mqtt_delivery *edit, size_t size)
{
	if (buf_add_vbi(b, (uint32_t)size) == -1)
		return -1;
	return props_emit(b, p, context, edit) == (size_t)-1 ? -1 : 0;
}

static int
view_equal(const struct mqtt_view *a, const struct mqtt_view *b)
{
	return a->len == b->len && (a->len == 0 ||
	    memcmp(a->data, b->data, a->len) == 0);
}

static int
lists_equal(const struct mqtt_props *a, const struct mqtt_props *b)
{
	struct buf_reader	 ia, ib;
	struct mqtt_view	 na, va, nb, vb;
	uint32_t		 sa = 0, sb = 0;
	int			 ra, rb;

	mqtt_props_iter(a, &ia);
	mqtt_props_iter(b, &ib);
	do {
		ra = mqtt_user_property_next(&ia, &na, &va);
		rb = mqtt_user_property_next(&ib, &nb, &vb);
		if (ra != rb || (ra && (!view_equal(&na, &nb) ||
		    !view_equal(&va, &vb))))
			return 0;
	} while (ra);
	mqtt_props_iter(a, &ia);
	mqtt_props_iter(b, &ib);
	do {
		ra = mqtt_subscription_id_next(&ia, &sa);
		rb = mqtt_subscription_id_next(&ib, &sb);
		if (ra != rb || (ra && sa != sb))
			return 0;
	} while (ra);
	return 1;
}

int
mqtt_props_equal(const struct mqtt_props *a, const struct mqtt_props *b)
{
	const struct prop_def	*d;
	uint8_t			 id;

	if (a->present != b->present ||
	    a->user_property_count != b->user_property_count ||
	    a->subscription_identifier_count !=
	    b->subscription_identifier_count)
		return 0;
	for (id = 1; id <= MQTT_PROP_ID_MAX; id++) {
		if (!mqtt_props_has(a, id) || (d = prop_def(id)) == NULL ||
		    prop_repeatable(id))
			continue;
		switch (d->info.type) {
		case MQTT_PROP_TYPE_BYTE:
			if (*FIELD_CPTR(a, d, uint8_t) !=
			    *FIELD_CPTR(b, d, uint8_t))
				return 0;
			break;
		case MQTT_PROP_TYPE_U16:
			if (*FIELD_CPTR(a, d, uint16_t) !=
			    *FIELD_CPTR(b, d, uint16_t))
				return 0;
			break;
		case MQTT_PROP_TYPE_U32:
			if (*FIELD_CPTR(a, d, uint32_t) !=
			    *FIELD_CPTR(b, d, uint32_t))
				return 0;
			break;
		default:
			if (!view_equal(FIELD_CPTR(a, d, struct mqtt_view),
			    FIELD_CPTR(b, d, struct mqtt_view)))
				return 0;
			break;
		}
	}
	return lists_equal(a, b);
}
