/*
 * check_mqtt_encode.c - what the encoder refuses (too long, not
 * expressible at the level, not allowed in the packet) and leaves the
 * buffer as it was; the shortest forms it writes; the PUBLISH header
 * fast path for fan-out; the reason code tables; and the fuzz corpus and
 * crash regressions replayed through the fuzz invariants.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_mqtt.h"
#include "mqtt_testlib.h"

static struct mqtt_view
sview(const char *s)
{
	struct mqtt_view	 v = { (const uint8_t *)s, strlen(s) };

	return v;
}

/* Encoding pkt fails with errno e and the buffer keeps what it had. */
static void
encode_fails(const struct mqtt_packet *pkt, uint8_t level, int e)
{
	struct buf	 b = BUF_INITIALIZER;

	buf_add(&b, "xyz", 3);
	errno = 0;
	ck_assert_int_eq(mqtt_encode(&b, pkt, level), -1);
	ck_assert_int_eq(errno, e);
	ck_assert_uint_eq(b.len, 3);
	ck_assert(memcmp(b.data, "xyz", 3) == 0);
	ck_assert_uint_eq(mqtt_encoded_size(pkt, level), 0);
	buf_free(&b);
}

static void
encodes_to(const struct mqtt_packet *pkt, uint8_t level, const char *hex)
{
	struct buf	 b = BUF_INITIALIZER;
	uint8_t		 want[256];
	size_t		 n = mqtt_hex(hex, want, sizeof(want));

	ck_assert_int_eq(mqtt_encode(&b, pkt, level), 0);
	ck_assert_uint_eq(b.len, n);
	ck_assert(memcmp(b.data, want, n) == 0);
	buf_free(&b);
}

START_TEST(test_too_long)
{
	static uint8_t		 big[70000];
	struct mqtt_packet	 pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNECT;
	pkt.connect.clean_start = 1;
	pkt.connect.client_id.data = big;
	pkt.connect.client_id.len = 65536;
	encode_fails(&pkt, MQTT_LEVEL_311, EMSGSIZE);
	pkt.connect.client_id.len = 65535;
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, MQTT_LEVEL_311),
	    1 + 3 + 10 + 2 + 65535);

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBLISH;
	pkt.publish.topic.data = big;
	memset(big, 'a', sizeof(big));
	pkt.publish.topic.len = 65536;
	encode_fails(&pkt, MQTT_LEVEL_5, EMSGSIZE);

	/* A payload past the largest Remaining Length is never written. */
	pkt.publish.topic = sview("a");
	pkt.publish.payload.data = big;
	pkt.publish.payload.len = MQTT_MAX_REMAINING;
	encode_fails(&pkt, MQTT_LEVEL_311, EMSGSIZE);
	pkt.publish.payload.len = MQTT_MAX_REMAINING - 3;
	ck_assert_uint_eq(mqtt_encoded_size(&pkt, MQTT_LEVEL_311),
	    MQTT_MAX_PACKET);

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBACK;
	pkt.ack.packet_id = 1;
	pkt.ack.props.reason_string.data = big;
	pkt.ack.props.reason_string.len = 65536;
	mqtt_props_set(&pkt.ack.props, MQTT_PROP_REASON_STRING);
	encode_fails(&pkt, MQTT_LEVEL_5, EMSGSIZE);
}
END_TEST

START_TEST(test_not_expressible)
{
	struct mqtt_packet	 pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBLISH;
	pkt.publish.topic = sview("a");
	pkt.publish.qos = 3;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
	pkt.publish.qos = 1;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);	/* packet id 0 */
	pkt.publish.qos = 0;
	pkt.publish.dup = 1;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
	pkt.publish.dup = 0;
	pkt.publish.topic.len = 0;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);	/* no alias */
	pkt.publish.props.topic_alias = 1;
	mqtt_props_set(&pkt.publish.props, MQTT_PROP_TOPIC_ALIAS);
	encode_fails(&pkt, MQTT_LEVEL_311, EINVAL);	/* no alias there */
	pkt.publish.topic = sview("a");
	/* Session Expiry Interval has no place in PUBLISH. */
	mqtt_props_set(&pkt.publish.props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
	pkt.publish.props.present = MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY);
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
	pkt.publish.props.present = MQTT_PROP_BIT(0x04);
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
	pkt.publish.props.present = MQTT_PROP_BIT(50);
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
	pkt.publish.props.present = 0;
	pkt.publish.props.list = sview("\x26\x00\x05k");	/* truncated */
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_AUTH;
	encode_fails(&pkt, MQTT_LEVEL_311, EINVAL);
	encode_fails(&pkt, 6, EINVAL);
	encode_fails(&pkt, 0, EINVAL);
	pkt.auth.reason = MQTT_RC_CONTINUE_AUTHENTICATION;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);	/* no method */
	pkt.auth.reason = MQTT_RC_NOT_AUTHORIZED;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBACK;
	pkt.ack.packet_id = 1;
	pkt.ack.reason = MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
	pkt.ack.packet_id = 0;
	encode_fails(&pkt, MQTT_LEVEL_311, EINVAL);

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNACK;
	pkt.connack.reason = 6;
	encode_fails(&pkt, MQTT_LEVEL_311, EINVAL);
	pkt.connack.reason = MQTT_RC_NOT_AUTHORIZED;
	pkt.connack.session_present = 1;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNECT;
	pkt.connect.has_password = 1;
	encode_fails(&pkt, MQTT_LEVEL_311, EINVAL);
	pkt.connect.has_password = 0;
	pkt.connect.will_qos = 1;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
	pkt.connect.will = 1;
	pkt.connect.will_qos = 3;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = 0;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
}
END_TEST

START_TEST(test_lists_checked)
{
	struct mqtt_packet	 pkt;
	struct buf		 l = BUF_INITIALIZER;
	static const uint8_t	 v31_fail[] = { 0x80 };

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_SUBSCRIBE;
	pkt.subscribe.packet_id = 1;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);		/* empty */
	mqtt_subscribe_add(&l, "$share/g/a", 10, MQTT_SUB_NO_LOCAL);
	pkt.subscribe.list.data = l.data;
	pkt.subscribe.list.len = l.len;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
	encode_fails(&pkt, MQTT_LEVEL_311, EINVAL);	/* option bits */
	buf_reset(&l);
	mqtt_subscribe_add(&l, "a/#/b", 5, 0);
	pkt.subscribe.list.data = l.data;
	pkt.subscribe.list.len = l.len;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
	buf_reset(&l);
	mqtt_subscribe_add(&l, "a", 1, 3);
	pkt.subscribe.list.data = l.data;
	pkt.subscribe.list.len = l.len;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
	pkt.subscribe.list.len = l.len - 1;		/* options cut off */
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_UNSUBSCRIBE;
	pkt.unsubscribe.packet_id = 1;
	buf_reset(&l);
	mqtt_unsubscribe_add(&l, "", 0);
	pkt.unsubscribe.list.data = l.data;
	pkt.unsubscribe.list.len = l.len;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_SUBACK;
	pkt.suback.packet_id = 1;
	encode_fails(&pkt, MQTT_LEVEL_5, EINVAL);
	pkt.suback.reasons.data = v31_fail;
	pkt.suback.reasons.len = 1;
	encode_fails(&pkt, MQTT_LEVEL_31, EINVAL);
	encodes_to(&pkt, MQTT_LEVEL_311, "90 03 00 01 80");
	buf_free(&l);

	/* Builders refuse what no packet could carry. */
	buf_init(&l);
	buf_add(&l, "q", 1);
	ck_assert_int_eq(mqtt_subscription_id_add(&l, 0), -1);
	ck_assert_int_eq(mqtt_subscription_id_add(&l, MQTT_MAX_SUB_ID + 1), -1);
	ck_assert_int_eq(mqtt_user_property_add(&l, "k", 1, "v", 65536), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_int_eq(mqtt_subscribe_add(&l, "k", 65536, 0), -1);
	ck_assert_int_eq(mqtt_unsubscribe_add(&l, "k", 65536), -1);
	ck_assert_uint_eq(l.len, 1);
	buf_free(&l);
}
END_TEST

/* The shortest forms 5.0 allows, and the fixed layouts of 3.x. */
START_TEST(test_short_forms)
{
	struct mqtt_packet	 pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBACK;
	pkt.ack.packet_id = 1;
	encodes_to(&pkt, MQTT_LEVEL_5, "40 02 00 01");
	pkt.ack.reason = MQTT_RC_NO_MATCHING_SUBSCRIBERS;
	encodes_to(&pkt, MQTT_LEVEL_5, "40 03 00 01 10");
	encodes_to(&pkt, MQTT_LEVEL_311, "40 02 00 01");
	pkt.type = MQTT_PUBREL;
	pkt.ack.reason = 0;
	encodes_to(&pkt, MQTT_LEVEL_31, "62 02 00 01");

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_DISCONNECT;
	encodes_to(&pkt, MQTT_LEVEL_5, "e0 00");
	pkt.disconnect.reason = MQTT_RC_DISCONNECT_WITH_WILL;
	encodes_to(&pkt, MQTT_LEVEL_5, "e0 01 04");
	encodes_to(&pkt, MQTT_LEVEL_311, "e0 00");
	pkt.type = MQTT_AUTH;
	pkt.auth.reason = 0;
	encodes_to(&pkt, MQTT_LEVEL_5, "f0 00");
	pkt.type = MQTT_PINGREQ;
	encodes_to(&pkt, MQTT_LEVEL_31, "c0 00");

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNECT;
	pkt.connect.clean_start = 1;
	pkt.connect.keep_alive = 60;
	pkt.connect.client_id = sview("c");
	encodes_to(&pkt, MQTT_LEVEL_31,
	    "10 0f 00 06 4d 51 49 73 64 70 03 02 00 3c 00 01 63");
	encodes_to(&pkt, MQTT_LEVEL_311,
	    "10 0d 00 04 4d 51 54 54 04 02 00 3c 00 01 63");
	encodes_to(&pkt, MQTT_LEVEL_5,
	    "10 0e 00 04 4d 51 54 54 05 02 00 3c 00 00 01 63");

	/* Properties go only where the level has them. */
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBLISH;
	pkt.publish.topic = sview("a");
	pkt.publish.payload = sview("p");
	pkt.publish.props.message_expiry_interval = 9;
	mqtt_props_set(&pkt.publish.props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL);
	encodes_to(&pkt, MQTT_LEVEL_311, "30 04 00 01 61 70");
	encodes_to(&pkt, MQTT_LEVEL_5, "30 0a 00 01 61 05 02 00 00 00 09 70");
}
END_TEST

/* Header + shared payload decodes as the subscriber's PUBLISH. */
static void
decode_delivery(const struct buf *hdr, const struct mqtt_publish *msg,
    uint8_t level, struct mqtt_packet *out, struct buf *wire)
{
	struct mqtt_result	 res;

	buf_reset(wire);
	buf_add(wire, hdr->data, hdr->len);
	buf_add(wire, msg->payload.data, msg->payload.len);
	ck_assert_int_eq(decode_with(wire->data, wire->len, level,
	    MQTT_TO_CLIENT, out, &res), MQTT_DECODE_OK);
	ck_assert_uint_eq(res.size, wire->len);
}

START_TEST(test_fan_out_header)
{
	static const char	*msg_hex = "30 1e 00 03 61 2f 62 "
	    "11 23 00 07 0b 2a 26 00 01 6b 00 01 76 02 00 00 00 3c "
	    "70 61 79 6c 6f 61 64";
	static const uint32_t	 ids[] = { 5, 268435455 };
	struct mqtt_packet	 src, got;
	struct mqtt_result	 res;
	struct mqtt_delivery	 d;
	struct buf		 hdr = BUF_INITIALIZER, wire = BUF_INITIALIZER;
	struct buf_reader	 it;
	struct mqtt_view	 n, v;
	uint8_t			 p[64];
	uint32_t		 id;
	size_t			 len = mqtt_hex(msg_hex, p, sizeof(p)), at;

	/* The publisher's message: alias 7, subscription id 42 (as a
	 * client would receive it), one user property, expiry 60. */
	ck_assert_int_eq(decode_with(p, len, MQTT_LEVEL_5, MQTT_TO_CLIENT,
	    &src, &res), MQTT_DECODE_OK);

	memset(&d, 0, sizeof(d));
	d.qos = 1;
	d.packet_id = 1;
	d.sub_ids = ids;
	d.sub_id_count = 2;
	ck_assert_int_eq(mqtt_encode_publish_header(&hdr, &src.publish,
	    MQTT_LEVEL_5, &d, &at), 0);
	ck_assert_uint_ne(at, SIZE_MAX);
	decode_delivery(&hdr, &src.publish, MQTT_LEVEL_5, &got, &wire);
	ck_assert_uint_eq(got.publish.qos, 1);
	ck_assert_uint_eq(got.publish.packet_id, 1);
	ck_assert(!mqtt_props_has(&got.publish.props, MQTT_PROP_TOPIC_ALIAS));
	ck_assert_uint_eq(got.publish.props.message_expiry_interval, 60);
	ck_assert_uint_eq(got.publish.props.user_property_count, 1);
	mqtt_props_iter(&got.publish.props, &it);
	ck_assert(mqtt_user_property_next(&it, &n, &v));
	ck_assert(n.len == 1 && n.data[0] == 'k' && v.data[0] == 'v');
	mqtt_props_iter(&got.publish.props, &it);
	ck_assert(mqtt_subscription_id_next(&it, &id) && id == 5);
	ck_assert(mqtt_subscription_id_next(&it, &id) && id == 268435455);
	ck_assert(!mqtt_subscription_id_next(&it, &id));
	ck_assert_uint_eq(got.publish.payload.len, 7);

	/* Patch the packet identifier in place for the next subscriber. */
	buf_store_u16(hdr.data + at, 0xbeef);
	decode_delivery(&hdr, &src.publish, MQTT_LEVEL_5, &got, &wire);
	ck_assert_uint_eq(got.publish.packet_id, 0xbeef);

	/* An alias the subscriber already knows: empty topic. */
	buf_reset(&hdr);
	memset(&d, 0, sizeof(d));
	d.retain = 1;
	d.topic_alias = 9;
	d.alias_only = 1;
	ck_assert_int_eq(mqtt_encode_publish_header(&hdr, &src.publish,
	    MQTT_LEVEL_5, &d, &at), 0);
	ck_assert_uint_eq(at, SIZE_MAX);
	decode_delivery(&hdr, &src.publish, MQTT_LEVEL_5, &got, &wire);
	ck_assert_uint_eq(got.publish.topic.len, 0);
	ck_assert_uint_eq(got.publish.retain, 1);
	ck_assert_uint_eq(got.publish.props.topic_alias, 9);
	ck_assert_uint_eq(got.publish.props.subscription_identifier_count, 0);

	/* A 3.1.1 subscriber gets no properties at all. */
	buf_reset(&hdr);
	memset(&d, 0, sizeof(d));
	d.qos = 2;
	d.packet_id = 3;
	d.dup = 1;
	ck_assert_int_eq(mqtt_encode_publish_header(&hdr, &src.publish,
	    MQTT_LEVEL_311, &d, NULL), 0);
	ck_assert_uint_eq(hdr.len, 2 + 5 + 2);
	decode_delivery(&hdr, &src.publish, MQTT_LEVEL_311, &got, &wire);
	ck_assert_uint_eq(got.publish.dup, 1);
	ck_assert_uint_eq(got.publish.props.present, 0);

	/* What cannot be sent is refused and nothing is written. */
	buf_reset(&hdr);
	memset(&d, 0, sizeof(d));
	d.alias_only = 1;
	ck_assert_int_eq(mqtt_encode_publish_header(&hdr, &src.publish,
	    MQTT_LEVEL_5, &d, NULL), -1);
	d.alias_only = 0;
	d.qos = 1;
	ck_assert_int_eq(mqtt_encode_publish_header(&hdr, &src.publish,
	    MQTT_LEVEL_5, &d, NULL), -1);
	d.qos = 0;
	d.sub_ids = ids;
	d.sub_id_count = 1;
	ck_assert_int_eq(mqtt_encode_publish_header(&hdr, &src.publish,
	    MQTT_LEVEL_31, NULL, NULL), -1);
	id = 0;
	d.sub_ids = &id;
	ck_assert_int_eq(mqtt_encode_publish_header(&hdr, &src.publish,
	    MQTT_LEVEL_5, &d, NULL), -1);
	ck_assert_uint_eq(hdr.len, 0);
	buf_free(&hdr);
	buf_free(&wire);
}
END_TEST

START_TEST(test_reason_tables)
{
	ck_assert_str_eq(mqtt_reason_name(0x81), "Malformed Packet");
	ck_assert_str_eq(mqtt_reason_name(0x82), "Protocol Error");
	ck_assert_str_eq(mqtt_reason_name(0x03), "unknown reason code");
	ck_assert_str_eq(mqtt_type_name(MQTT_UNSUBACK), "UNSUBACK");
	ck_assert_str_eq(mqtt_type_name(0), "reserved");
	ck_assert_str_eq(mqtt_type_name(16), "unknown");
	ck_assert(mqtt_reason_allowed(MQTT_CONNACK, 0x84));
	ck_assert(!mqtt_reason_allowed(MQTT_PUBACK, 0x84));
	ck_assert(mqtt_reason_allowed(MQTT_SUBACK, 0x02));
	ck_assert(!mqtt_reason_allowed(MQTT_UNSUBACK, 0x02));
	ck_assert(mqtt_reason_allowed(MQTT_DISCONNECT, 0x8e));
	ck_assert(!mqtt_reason_allowed(MQTT_DISCONNECT, 0x84));
	ck_assert(mqtt_reason_allowed(MQTT_AUTH, 0x19));
	ck_assert(!mqtt_reason_allowed(MQTT_PINGREQ, 0x00));
	ck_assert(!mqtt_reason_allowed(20, 0x00));

	ck_assert_int_eq(mqtt_connack_v3_code(0x00), 0);
	ck_assert_int_eq(mqtt_connack_v3_code(0x84), 1);
	ck_assert_int_eq(mqtt_connack_v3_code(0x85), 2);
	ck_assert_int_eq(mqtt_connack_v3_code(0x89), 3);
	ck_assert_int_eq(mqtt_connack_v3_code(0x86), 4);
	ck_assert_int_eq(mqtt_connack_v3_code(0x8a), 5);
	ck_assert_int_eq(mqtt_connack_v3_code(0x81), -1);

	ck_assert_int_eq(mqtt_suback_v3_code(0x01, MQTT_LEVEL_311), 1);
	ck_assert_int_eq(mqtt_suback_v3_code(0x8f, MQTT_LEVEL_311), 0x80);
	ck_assert_int_eq(mqtt_suback_v3_code(0x8f, MQTT_LEVEL_31), -1);
}
END_TEST

/*
 * CONNECT errors tell the level the client asked for, so the refusal
 * can be sent in a CONNACK it understands.
 */
START_TEST(test_connect_error_level)
{
	struct mqtt_packet	 pkt;
	struct mqtt_result	 res;
	uint8_t			 p[64];
	size_t			 n;

	n = mqtt_hex("10 0d 00 04 4d 51 54 54 07 02 00 3c 00 01 63", p,
	    sizeof(p));
	ck_assert_int_eq(decode_with(p, n, 0, MQTT_TO_SERVER, &pkt, &res),
	    MQTT_DECODE_ERROR);
	ck_assert_uint_eq(res.level, 7);
	ck_assert_uint_eq(res.type, MQTT_CONNECT);
	n = mqtt_hex("10 0c 00 04 4d 51 54 54 04 00 00 3c 00 00", p,
	    sizeof(p));
	ck_assert_int_eq(decode_with(p, n, 0, MQTT_TO_SERVER, &pkt, &res),
	    MQTT_DECODE_ERROR);
	ck_assert_uint_eq(res.level, 4);
	ck_assert_int_eq(mqtt_connack_v3_code(res.reason), 2);
	/* not MQTT or MQIsdp: no level to answer in */
	n = mqtt_hex("10 0d 00 04 4d 51 54 58 04 02 00 3c 00 01 63", p,
	    sizeof(p));
	ck_assert_int_eq(decode_with(p, n, 0, MQTT_TO_SERVER, &pkt, &res),
	    MQTT_DECODE_ERROR);
	ck_assert_uint_eq(res.reason, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION);
	ck_assert_uint_eq(res.level, 0);
}
END_TEST

/* A 3.1 client retries PUBREL, SUBSCRIBE and UNSUBSCRIBE with DUP set. */
START_TEST(test_v31_dup_retries)
{
	struct mqtt_packet	 pkt;
	struct mqtt_result	 res;
	uint8_t			 p[16];
	size_t			 n = mqtt_hex("6a 02 00 05", p, sizeof(p));

	ck_assert_int_eq(decode_with(p, n, MQTT_LEVEL_31, MQTT_TO_SERVER,
	    &pkt, &res), MQTT_DECODE_OK);
	ck_assert_uint_eq(pkt.ack.packet_id, 5);
	n = mqtt_hex("8a 06 00 05 00 01 61 01", p, sizeof(p));
	ck_assert_int_eq(decode_with(p, n, MQTT_LEVEL_31, MQTT_TO_SERVER,
	    &pkt, &res), MQTT_DECODE_OK);
	ck_assert_uint_eq(pkt.subscribe.count, 1);
}
END_TEST

/* The parts of a $share filter as the SUBSCRIBE iterator gives them. */
START_TEST(test_subscribe_iterator)
{
	struct mqtt_packet		 pkt;
	struct mqtt_result		 res;
	struct mqtt_subscription	 s;
	struct buf_reader		 it;
	uint8_t				 p[64];
	size_t				 n;

	n = mqtt_hex("82 19 00 02 00 00 0d 24 73 68 61 72 65 2f 67 31 2f 61 "
	    "2f 2b 2a 00 03 78 2f 23 1d", p, sizeof(p));
	ck_assert_int_eq(decode_with(p, n, MQTT_LEVEL_5, MQTT_TO_SERVER, &pkt,
	    &res), MQTT_DECODE_OK);
	ck_assert_uint_eq(pkt.subscribe.count, 2);
	mqtt_list_iter(&pkt.subscribe.list, &it);
	ck_assert(mqtt_subscribe_next(&it, &s));
	ck_assert_uint_eq(s.parsed.share_len, 2);
	ck_assert(memcmp(s.parsed.share, "g1", 2) == 0);
	ck_assert_uint_eq(s.parsed.filter_len, 3);
	ck_assert(memcmp(s.parsed.filter, "a/+", 3) == 0);
	ck_assert(s.parsed.wildcard);
	ck_assert_uint_eq(s.qos, 2);
	ck_assert_uint_eq(s.retain_as_published, 1);
	ck_assert_uint_eq(s.retain_handling, 2);
	ck_assert_uint_eq(s.no_local, 0);
	ck_assert(mqtt_subscribe_next(&it, &s));
	ck_assert_ptr_null(s.parsed.share);
	ck_assert_uint_eq(s.qos, 1);
	ck_assert_uint_eq(s.no_local, 1);
	ck_assert_uint_eq(s.retain_as_published, 1);
	ck_assert_uint_eq(s.retain_handling, 1);
	ck_assert(!mqtt_subscribe_next(&it, &s));
}
END_TEST

START_TEST(test_bad_options)
{
	struct mqtt_decode_opts	 o = { 6, MQTT_TO_SERVER, 0, 0, 0 };
	struct mqtt_packet	 pkt;
	struct mqtt_result	 res;
	static const uint8_t	 ping[] = { 0xc0, 0x00 };

	ck_assert_int_eq(mqtt_decode(ping, 2, &o, &pkt, &res),
	    MQTT_DECODE_ERROR);
	ck_assert_uint_eq(res.reason, MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR);
	o.level = MQTT_LEVEL_311;
	o.direction = 0;
	ck_assert_int_eq(mqtt_decode(ping, 2, &o, &pkt, &res),
	    MQTT_DECODE_ERROR);
	o.direction = MQTT_TO_SERVER;
	ck_assert_int_eq(mqtt_decode(ping, 2, &o, &pkt, &res), MQTT_DECODE_OK);
	ck_assert_int_eq(mqtt_decode(ping, 0, &o, &pkt, &res),
	    MQTT_DECODE_MORE);
	ck_assert_uint_eq(res.size, 0);
}
END_TEST

/* A UTF-8 payload is checked only when asked to (it costs a scan). */
START_TEST(test_payload_format_check)
{
	struct mqtt_decode_opts	 o = { MQTT_LEVEL_5, MQTT_TO_SERVER, 0, 0, 0 };
	struct mqtt_packet	 pkt;
	struct mqtt_result	 res;
	uint8_t			 p[32];
	size_t			 n = mqtt_hex("30 08 00 01 61 02 01 01 ff fe", p,
				    sizeof(p));

	ck_assert_int_eq(mqtt_decode(p, n, &o, &pkt, &res), MQTT_DECODE_OK);
	o.flags = MQTT_DECODE_CHECK_PAYLOAD_FORMAT;
	ck_assert_int_eq(mqtt_decode(p, n, &o, &pkt, &res), MQTT_DECODE_ERROR);
	ck_assert_uint_eq(res.reason, MQTT_RC_PAYLOAD_FORMAT_INVALID);
	n = mqtt_hex("30 08 00 01 61 02 01 00 ff fe", p, sizeof(p));
	ck_assert_int_eq(mqtt_decode(p, n, &o, &pkt, &res), MQTT_DECODE_OK);
	ck_assert_uint_eq(pkt.publish.payload.len, 2);
}
END_TEST

/* Every file of a directory through the fuzz invariants. */
static size_t
replay_dir(const char *sub)
{
	const char	*top = getenv("PMQ_SRCDIR");
	char		 path[4096];
	struct dirent	*de;
	DIR		*d;
	size_t		 count = 0;

	snprintf(path, sizeof(path), "%s/tests/fuzz/%s", top ? top : "..", sub);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char		 file[4600];
		uint8_t		 data[65536];
		FILE		*f;
		size_t		 n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		if ((f = fopen(file, "rb")) == NULL)
			continue;
		n = fread(data, 1, sizeof(data), f);
		fclose(f);
		mqtt_fuzz_one(data, n);
		count++;
	}
	closedir(d);
	return count;
}

START_TEST(test_fuzz_corpus_and_regressions)
{
	/* The seed corpus has a packet of every type at every level. */
	ck_assert_uint_ge(replay_dir("corpus"), 100);
	replay_dir("regressions");
}
END_TEST

Suite *
mqtt_encode_suite(void)
{
	Suite	*s = suite_create("encode");
	TCase	*tc = tcase_create("refusals");

	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_not_expressible);
	tcase_add_test(tc, test_lists_checked);
	suite_add_tcase(s, tc);
	tc = tcase_create("forms");
	tcase_add_test(tc, test_short_forms);
	tcase_add_test(tc, test_fan_out_header);
	tcase_add_test(tc, test_reason_tables);
	suite_add_tcase(s, tc);
	tc = tcase_create("decode details");
	tcase_add_test(tc, test_connect_error_level);
	tcase_add_test(tc, test_v31_dup_retries);
	tcase_add_test(tc, test_subscribe_iterator);
	tcase_add_test(tc, test_payload_format_check);
	tcase_add_test(tc, test_bad_options);
	suite_add_tcase(s, tc);
	return s;
}

Suite *
mqtt_regress_suite(void)
{
	Suite	*s = suite_create("fuzz regressions");
	TCase	*tc = tcase_create("replay");

	tcase_add_test(tc, test_fuzz_corpus_and_regressions);
	suite_add_tcase(s, tc);
	return s;
}
