/*
 * check_mqtt_props.c - the MQTT 5.0 property rules, for all 27
 * identifiers: the table itself, every property tried in every packet
 * (accepted where the specification allows it, 0x81 elsewhere), a
 * second copy of every single-valued property (0x82), and the repeatable
 * ones kept in order with their duplicates.
 */
#include "config.h"

#include <check.h>
#include <string.h>

#include "check_mqtt.h"
#include "mqtt_testlib.h"

/* The 27 identifiers with the type table 2-4 gives each. */
static const struct {
	uint8_t	 id;
	uint8_t	 type;
} spec_props[] = {
	{ 0x01, MQTT_PROP_TYPE_BYTE }, { 0x02, MQTT_PROP_TYPE_U32 },
	{ 0x03, MQTT_PROP_TYPE_UTF8 }, { 0x08, MQTT_PROP_TYPE_UTF8 },
	{ 0x09, MQTT_PROP_TYPE_BINARY }, { 0x0b, MQTT_PROP_TYPE_VBI },
	{ 0x11, MQTT_PROP_TYPE_U32 }, { 0x12, MQTT_PROP_TYPE_UTF8 },
	{ 0x13, MQTT_PROP_TYPE_U16 }, { 0x15, MQTT_PROP_TYPE_UTF8 },
	{ 0x16, MQTT_PROP_TYPE_BINARY }, { 0x17, MQTT_PROP_TYPE_BYTE },
	{ 0x18, MQTT_PROP_TYPE_U32 }, { 0x19, MQTT_PROP_TYPE_BYTE },
	{ 0x1a, MQTT_PROP_TYPE_UTF8 }, { 0x1c, MQTT_PROP_TYPE_UTF8 },
	{ 0x1f, MQTT_PROP_TYPE_UTF8 }, { 0x21, MQTT_PROP_TYPE_U16 },
	{ 0x22, MQTT_PROP_TYPE_U16 }, { 0x23, MQTT_PROP_TYPE_U16 },
	{ 0x24, MQTT_PROP_TYPE_BYTE }, { 0x25, MQTT_PROP_TYPE_BYTE },
	{ 0x26, MQTT_PROP_TYPE_PAIR }, { 0x27, MQTT_PROP_TYPE_U32 },
	{ 0x28, MQTT_PROP_TYPE_BYTE }, { 0x29, MQTT_PROP_TYPE_BYTE },
	{ 0x2a, MQTT_PROP_TYPE_BYTE },
};
#define NPROPS	(sizeof(spec_props) / sizeof(spec_props[0]))

#define W	(1u << MQTT_WILL)
#define P(t)	(1u << MQTT_##t)

/* Where each may appear, from the same table, written out again. */
static const uint16_t spec_contexts[NPROPS] = {
	P(PUBLISH) | W, P(PUBLISH) | W, P(PUBLISH) | W, P(PUBLISH) | W,
	P(PUBLISH) | W, P(PUBLISH) | P(SUBSCRIBE),
	P(CONNECT) | P(CONNACK) | P(DISCONNECT), P(CONNACK), P(CONNACK),
	P(CONNECT) | P(CONNACK) | P(AUTH), P(CONNECT) | P(CONNACK) | P(AUTH),
	P(CONNECT), W, P(CONNECT), P(CONNACK), P(CONNACK) | P(DISCONNECT),
	P(CONNACK) | P(PUBACK) | P(PUBREC) | P(PUBREL) | P(PUBCOMP) |
	    P(SUBACK) | P(UNSUBACK) | P(DISCONNECT) | P(AUTH),
	P(CONNECT) | P(CONNACK), P(CONNECT) | P(CONNACK), P(PUBLISH),
	P(CONNACK), P(CONNACK),
	P(CONNECT) | P(CONNACK) | P(PUBLISH) | W | P(PUBACK) | P(PUBREC) |
	    P(PUBREL) | P(PUBCOMP) | P(SUBSCRIBE) | P(SUBACK) |
	    P(UNSUBSCRIBE) | P(UNSUBACK) | P(DISCONNECT) | P(AUTH),
	P(CONNECT) | P(CONNACK), P(CONNACK), P(CONNACK), P(CONNACK),
};

START_TEST(test_prop_table)
{
	const struct mqtt_prop_info	*pi;
	uint32_t			 id, known = 0;
	size_t				 i;

	for (i = 0; i < NPROPS; i++) {
		pi = mqtt_prop_info(spec_props[i].id);
		ck_assert_ptr_nonnull(pi);
		ck_assert_uint_eq(pi->id, spec_props[i].id);
		ck_assert_uint_eq(pi->type, spec_props[i].type);
		ck_assert_uint_eq(pi->contexts, spec_contexts[i]);
		ck_assert(pi->name != NULL && pi->name[0] != '\0');
	}
	for (id = 0; id < 300; id++)
		if (mqtt_prop_info(id) != NULL)
			known++;
	ck_assert_uint_eq(known, NPROPS);
}
END_TEST

/* A record of property `id` holding a value its rules accept. */
static void
add_record(struct buf *b, uint8_t id)
{
	buf_add_u8(b, id);
	switch (mqtt_prop_info(id)->type) {
	case MQTT_PROP_TYPE_BYTE:
		buf_add_u8(b, 1);
		break;
	case MQTT_PROP_TYPE_U16:
		buf_add_u16(b, 1);
		break;
	case MQTT_PROP_TYPE_U32:
		buf_add_u32(b, 1);
		break;
	case MQTT_PROP_TYPE_VBI:
		buf_add_vbi(b, 1);
		break;
	case MQTT_PROP_TYPE_PAIR:
		buf_add_u16(b, 1);
		buf_add_u8(b, 'k');
		/* FALLTHROUGH */
	default:
		buf_add_u16(b, 1);
		buf_add_u8(b, 'a');
		break;
	}
}

struct context_packet {
	uint8_t		 first;
	uint8_t		 dir;
	const char	*before;	/* body before the property block */
	const char	*after;		/* body after it */
};

/* A packet of each context with a property block in the middle. */
static const struct context_packet contexts[16] = {
	[MQTT_WILL] = { 0x10, MQTT_TO_SERVER,
	    "00 04 4d 51 54 54 05 06 00 3c 00 00 01 63", "00 01 74 00 00" },
	[MQTT_CONNECT] = { 0x10, MQTT_TO_SERVER,
	    "00 04 4d 51 54 54 05 02 00 3c", "00 01 63" },
	[MQTT_CONNACK] = { 0x20, MQTT_TO_CLIENT, "00 00", "" },
	[MQTT_PUBLISH] = { 0x30, MQTT_TO_CLIENT, "00 01 61", "78" },
	[MQTT_PUBACK] = { 0x40, MQTT_TO_SERVER, "00 01 00", "" },
	[MQTT_PUBREC] = { 0x50, MQTT_TO_SERVER, "00 01 00", "" },
	[MQTT_PUBREL] = { 0x62, MQTT_TO_SERVER, "00 01 00", "" },
	[MQTT_PUBCOMP] = { 0x70, MQTT_TO_SERVER, "00 01 00", "" },
	[MQTT_SUBSCRIBE] = { 0x82, MQTT_TO_SERVER, "00 01", "00 01 61 00" },
	[MQTT_SUBACK] = { 0x90, MQTT_TO_CLIENT, "00 01", "00" },
	[MQTT_UNSUBSCRIBE] = { 0xa2, MQTT_TO_SERVER, "00 01", "00 01 61" },
	[MQTT_UNSUBACK] = { 0xb0, MQTT_TO_CLIENT, "00 01", "00" },
	[MQTT_DISCONNECT] = { 0xe0, MQTT_TO_SERVER, "00", "" },
	[MQTT_AUTH] = { 0xf0, MQTT_TO_CLIENT, "18", "" },
};

static int
context_exists(uint8_t ctx)
{
	return ctx != MQTT_PINGREQ && ctx != MQTT_PINGRESP;
}

/*
 * Decode a packet of context ctx whose property block holds `copies`
 * records of property id (plus an Authentication Method where the
 * packet needs one to be valid).
 */
static int
decode_in_context(uint8_t ctx, uint8_t id, int copies,
    struct mqtt_packet *pkt, struct mqtt_result *res, struct buf *pktbuf)
{
	const struct context_packet	*c = &contexts[ctx];
	struct buf			 props = BUF_INITIALIZER;
	struct buf			 body = BUF_INITIALIZER;
	uint8_t				 tmp[64];
	size_t				 n;
	int				 i, r;

	for (i = 0; i < copies; i++)
		add_record(&props, id);
	if ((ctx == MQTT_AUTH && id != MQTT_PROP_AUTHENTICATION_METHOD) ||
	    (ctx == MQTT_CONNECT && id == MQTT_PROP_AUTHENTICATION_DATA))
		add_record(&props, MQTT_PROP_AUTHENTICATION_METHOD);
	n = mqtt_hex(c->before, tmp, sizeof(tmp));
	buf_add(&body, tmp, n);
	buf_add_vbi(&body, (uint32_t)props.len);
	buf_add(&body, props.data, props.len);
	n = mqtt_hex(c->after, tmp, sizeof(tmp));
	buf_add(&body, tmp, n);
	buf_reset(pktbuf);
	buf_add_u8(pktbuf, c->first);
	buf_add_vbi(pktbuf, (uint32_t)body.len);
	buf_add(pktbuf, body.data, body.len);
	ck_assert(!buf_failed(pktbuf));
	r = decode_with(pktbuf->data, pktbuf->len,
	    ctx == MQTT_CONNECT || ctx == MQTT_WILL ? 0 : MQTT_LEVEL_5, c->dir,
	    pkt, res);
	buf_free(&props);
	buf_free(&body);
	return r;
}

static const struct mqtt_props *
props_of(const struct mqtt_packet *pkt, uint8_t ctx)
{
	switch (ctx) {
	case MQTT_WILL:
		return &pkt->connect.will_props;
	case MQTT_CONNECT:
		return &pkt->connect.props;
	case MQTT_CONNACK:
		return &pkt->connack.props;
	case MQTT_PUBLISH:
		return &pkt->publish.props;
	case MQTT_SUBSCRIBE:
		return &pkt->subscribe.props;
	case MQTT_UNSUBSCRIBE:
		return &pkt->unsubscribe.props;
	case MQTT_SUBACK:
		return &pkt->suback.props;
	case MQTT_UNSUBACK:
		return &pkt->unsuback.props;
	case MQTT_DISCONNECT:
		return &pkt->disconnect.props;
	case MQTT_AUTH:
		return &pkt->auth.props;
	default:
		return &pkt->ack.props;
	}
}

/* Property _i in each of the 14 packets and the will. */
START_TEST(test_prop_in_every_packet)
{
	uint8_t			 id = spec_props[_i].id, ctx;
	struct buf		 b = BUF_INITIALIZER, re = BUF_INITIALIZER;
	struct mqtt_packet	 pkt;
	struct mqtt_result	 res;
	const struct mqtt_props	*p;
	int			 r;

	for (ctx = 0; ctx <= MQTT_AUTH; ctx++) {
		if (!context_exists(ctx))
			continue;
		r = decode_in_context(ctx, id, 1, &pkt, &res, &b);
		if (!(spec_contexts[_i] & (1u << ctx))) {
			ck_assert_msg(r == MQTT_DECODE_ERROR &&
			    res.reason == MQTT_RC_MALFORMED_PACKET,
			    "property 0x%02x accepted in context %u", id, ctx);
			ck_assert_str_eq(res.what,
			    "property not allowed in this packet");
			continue;
		}
		ck_assert_msg(r == MQTT_DECODE_OK,
		    "property 0x%02x refused in context %u: %s", id, ctx,
		    res.what);
		p = props_of(&pkt, ctx);
		if (id == MQTT_PROP_USER_PROPERTY)
			ck_assert_uint_eq(p->user_property_count, 1);
		else if (id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER)
			ck_assert_uint_eq(mqtt_props_subscription_id(p), 1);
		else
			ck_assert(mqtt_props_has(p, id));
		/* And it survives encoding. */
		buf_reset(&re);
		ck_assert_int_eq(mqtt_encode(&re, &pkt, MQTT_LEVEL_5), 0);
		ck_assert_uint_eq(re.len, b.len);
	}
	buf_free(&b);
	buf_free(&re);
}
END_TEST

/* Two copies of property _i where it is allowed. */
START_TEST(test_prop_twice)
{
	uint8_t			 id = spec_props[_i].id, ctx;
	struct buf		 b = BUF_INITIALIZER;
	struct mqtt_packet	 pkt;
	struct mqtt_result	 res;
	int			 r;

	for (ctx = 0; ctx <= MQTT_AUTH; ctx++) {
		if (!(spec_contexts[_i] & (1u << ctx)))
			continue;
		r = decode_in_context(ctx, id, 2, &pkt, &res, &b);
		if (id == MQTT_PROP_USER_PROPERTY ||
		    (id == MQTT_PROP_SUBSCRIPTION_IDENTIFIER &&
		    ctx == MQTT_PUBLISH)) {
			ck_assert_msg(r == MQTT_DECODE_OK, "%s", res.what);
			continue;
		}
		ck_assert_msg(r == MQTT_DECODE_ERROR &&
		    res.reason == MQTT_RC_PROTOCOL_ERROR,
		    "two copies of 0x%02x in context %u: %d", id, ctx, r);
	}
	buf_free(&b);
}
END_TEST

/* Values right at the edges of what each rule allows. */
START_TEST(test_prop_values)
{
	static const struct {
		const char	*hex;	/* PUBLISH to a client, QoS 0, "a" */
		int		 ok;
		uint8_t		 reason;
	} v[] = {
		{ "30 06 00 01 61 02 01 00", 1, 0 },
		{ "30 06 00 01 61 02 01 01", 1, 0 },
		{ "30 06 00 01 61 02 01 ff", 0, MQTT_RC_PROTOCOL_ERROR },
		{ "30 07 00 01 61 03 23 ff ff", 1, 0 },
		{ "30 07 00 01 61 03 23 00 01", 1, 0 },
		{ "30 09 00 01 61 05 0b ff ff ff 7f", 1, 0 },
		{ "30 07 00 01 61 03 0b 80 01", 1, 0 },
		{ "30 07 00 01 61 03 0b 80 00", 0, MQTT_RC_MALFORMED_PACKET },
		{ "30 09 00 01 61 05 02 ff ff ff ff", 1, 0 },
		{ "30 06 00 01 61 03 08 00", 0, MQTT_RC_MALFORMED_PACKET },
		{ "30 08 00 01 61 04 09 00 01 00", 1, 0 },
		{ "30 09 00 01 61 05 03 00 02 c3 a9", 1, 0 },
		{ "30 0a 00 01 61 06 03 00 03 ef bb bf", 1, 0 },
		{ "30 08 00 01 61 04 03 00 01 09", 1, 0 },
		{ "30 08 00 01 61 04 08 00 01 09", 0, MQTT_RC_MALFORMED_PACKET },
		{ "30 09 00 01 61 05 26 00 00 00 00", 1, 0 },
	};
	struct mqtt_packet	 pkt;
	struct mqtt_result	 res;
	uint8_t			 p[64];
	size_t			 i, n;
	int			 r;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = mqtt_hex(v[i].hex, p, sizeof(p));
		r = decode_with(p, n, MQTT_LEVEL_5, MQTT_TO_CLIENT, &pkt, &res);
		if (v[i].ok) {
			ck_assert_msg(r == MQTT_DECODE_OK, "'%s': %s", v[i].hex,
			    res.what);
			continue;
		}
		ck_assert_msg(r == MQTT_DECODE_ERROR &&
		    res.reason == v[i].reason, "'%s': %d 0x%02x", v[i].hex, r,
		    res.reason);
	}
}
END_TEST

/* User properties come back in order, duplicates and all. */
START_TEST(test_user_properties_order)
{
	/* k=v1, a Content Type, k=v2, ""="", Subscription Id 5, z=k */
	static const char	*hex = "30 27 00 01 61 22 "
	    "26 00 01 6b 00 02 76 31 "
	    "03 00 01 74 "
	    "26 00 01 6b 00 02 76 32 "
	    "26 00 00 00 00 "
	    "0b 05 "
	    "26 00 01 7a 00 01 6b 78";
	static const char	*want[][2] = { { "k", "v1" }, { "k", "v2" },
				    { "", "" }, { "z", "k" } };
	struct mqtt_packet	 pkt, again;
	struct mqtt_result	 res;
	struct buf_reader	 it;
	struct mqtt_view	 name, value;
	struct buf		 b = BUF_INITIALIZER;
	uint8_t			 p[64];
	size_t			 n = mqtt_hex(hex, p, sizeof(p)), i = 0;
	uint32_t		 id;

	ck_assert_int_eq(decode_with(p, n, MQTT_LEVEL_5, MQTT_TO_CLIENT, &pkt,
	    &res), MQTT_DECODE_OK);
	ck_assert_uint_eq(pkt.publish.props.user_property_count, 4);
	ck_assert_uint_eq(pkt.publish.props.subscription_identifier_count, 1);
	ck_assert(mqtt_props_has(&pkt.publish.props, MQTT_PROP_CONTENT_TYPE));
	mqtt_props_iter(&pkt.publish.props, &it);
	while (mqtt_user_property_next(&it, &name, &value)) {
		ck_assert_uint_lt(i, 4);
		ck_assert_uint_eq(name.len, strlen(want[i][0]));
		ck_assert(memcmp(name.data, want[i][0], name.len) == 0);
		ck_assert_uint_eq(value.len, strlen(want[i][1]));
		ck_assert(memcmp(value.data, want[i][1], value.len) == 0);
		i++;
	}
	ck_assert_uint_eq(i, 4);
	mqtt_props_iter(&pkt.publish.props, &it);
	ck_assert(mqtt_subscription_id_next(&it, &id));
	ck_assert_uint_eq(id, 5);
	ck_assert(!mqtt_subscription_id_next(&it, &id));
	ck_assert_uint_eq(mqtt_props_subscription_id(&pkt.publish.props), 5);

	/* Forwarded, the order of the user properties stays. */
	ck_assert_int_eq(mqtt_encode(&b, &pkt, MQTT_LEVEL_5), 0);
	ck_assert_int_eq(decode_with(b.data, b.len, MQTT_LEVEL_5,
	    MQTT_TO_CLIENT, &again, &res), MQTT_DECODE_OK);
	ck_assert(mqtt_packet_equal(&pkt, &again));
	buf_free(&b);
}
END_TEST

START_TEST(test_no_properties_is_empty)
{
	struct mqtt_props	 p;
	struct buf_reader	 it;
	struct mqtt_view	 n, v;
	uint32_t		 id;

	memset(&p, 0, sizeof(p));
	mqtt_props_iter(&p, &it);
	ck_assert(!mqtt_user_property_next(&it, &n, &v));
	mqtt_props_iter(&p, &it);
	ck_assert(!mqtt_subscription_id_next(&it, &id));
	ck_assert_uint_eq(mqtt_props_subscription_id(&p), 0);
}
END_TEST

Suite *
mqtt_props_suite(void)
{
	Suite	*s = suite_create("properties");
	TCase	*tc = tcase_create("table");

	tcase_add_test(tc, test_prop_table);
	tcase_add_test(tc, test_no_properties_is_empty);
	suite_add_tcase(s, tc);
	tc = tcase_create("allowed packets");
	tcase_add_loop_test(tc, test_prop_in_every_packet, 0, (int)NPROPS);
	suite_add_tcase(s, tc);
	tc = tcase_create("duplicates");
	tcase_add_loop_test(tc, test_prop_twice, 0, (int)NPROPS);
	suite_add_tcase(s, tc);
	tc = tcase_create("values");
	tcase_add_test(tc, test_prop_values);
	tcase_add_test(tc, test_user_properties_order);
	suite_add_tcase(s, tc);
	return s;
}
