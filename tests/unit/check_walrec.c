/*
 * check_walrec.c - the log record payloads (common/walrec.c): every
 * format round-trips, and every payload that is not exactly what its
 * format says is refused, whatever byte is cut, added or changed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "walrec.h"

static const uint8_t	 packet[] = {
	0x32, 0x0b, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x07, 'h', 'e', 'l',
	'l', 'o'
};

static void
encode_publish(struct buf *b, uint8_t format)
{
	struct walrec_publish	 p;

	memset(&p, 0, sizeof(p));
	p.format = format;
	p.level = 4;
	p.node = 3;
	p.sid = 0x0102030405060708ull;
	p.epoch = 9;
	p.packet_id = 7;
	p.received = 1764859373123;
	p.will = format == WALREC_PUBLISH_V3 ? 0x1122334455667788ull : 0;
	p.packet = packet;
	p.len = sizeof(packet);
	ck_assert_int_eq(walrec_publish_encode(b, &p), 0);
}

START_TEST(test_publish_round_trip)
{
	struct buf		 b = BUF_INITIALIZER;
	struct walrec_publish	 p;

	encode_publish(&b, WALREC_PUBLISH_V2);
	ck_assert_uint_eq(b.len, 32 + sizeof(packet));
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), 0);
	ck_assert_uint_eq(p.format, 2);
	ck_assert_uint_eq(p.level, 4);
	ck_assert_uint_eq(p.node, 3);
	ck_assert_uint_eq(p.sid, 0x0102030405060708ull);
	ck_assert_uint_eq(p.epoch, 9);
	ck_assert_uint_eq(p.packet_id, 7);
	ck_assert_int_eq(p.received, 1764859373123);
	ck_assert_uint_eq(p.len, sizeof(packet));
	ck_assert_mem_eq(p.packet, packet, sizeof(packet));
	buf_free(&b);
}
END_TEST

/* A will: format 2 and the will's id. */
START_TEST(test_publish_will)
{
	struct buf		 b = BUF_INITIALIZER;
	struct walrec_publish	 p;

	encode_publish(&b, WALREC_PUBLISH_V3);
	ck_assert_uint_eq(b.len, 40 + sizeof(packet));
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), 0);
	ck_assert_uint_eq(p.format, 3);
	ck_assert_uint_eq(p.sid, 0x0102030405060708ull);
	ck_assert_uint_eq(p.will, 0x1122334455667788ull);
	ck_assert_uint_eq(p.len, sizeof(packet));
	ck_assert_mem_eq(p.packet, packet, sizeof(packet));
	/* a will without an id is not one */
	memset(b.data + 32, 0, 8);
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), -1);
	p.will = 0;
	buf_reset(&b);
	ck_assert_int_eq(walrec_publish_encode(&b, &p), -1);
	buf_free(&b);
}
END_TEST

/* Logs written before format 2 are read as they are. */
START_TEST(test_publish_format_1)
{
	struct buf		 b = BUF_INITIALIZER;
	struct walrec_publish	 p;

	encode_publish(&b, WALREC_PUBLISH_V1);
	ck_assert_uint_eq(b.len, 2 + sizeof(packet));
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), 0);
	ck_assert_uint_eq(p.format, 1);
	ck_assert_uint_eq(p.level, 4);
	ck_assert_uint_eq(p.sid, 0);
	ck_assert_int_eq(p.received, 0);
	ck_assert_mem_eq(p.packet, packet, sizeof(packet));
	buf_free(&b);
}
END_TEST

START_TEST(test_publish_refused)
{
	struct buf		 b = BUF_INITIALIZER;
	struct walrec_publish	 p;
	size_t			 cut;

	encode_publish(&b, WALREC_PUBLISH_V2);
	/* shorter than its header and two packet bytes */
	for (cut = 0; cut < 34; cut++)
		ck_assert_msg(walrec_publish_decode(b.data, cut, &p) == -1,
		    "accepted %zu bytes", cut);
	/* reserved bytes, and unknown formats */
	b.data[2] = 1;
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), -1);
	b.data[2] = 0;
	b.data[0] = 5;
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), -1);
	b.data[0] = 0;
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), -1);
	p.format = 7;
	ck_assert_int_eq(walrec_publish_encode(&b, &p), -1);
	buf_free(&b);
}
END_TEST

/* Format 4: two picks, "$share/g/a/+" (k 5) and "$share/h/#" (k 0). */
static void
encode_picks(struct buf *b)
{
	struct walrec_publish	 p;
	struct buf		 picks = BUF_INITIALIZER;

	walrec_pick_add(&picks, 5, (const uint8_t *)"$share/g/a/+", 12);
	walrec_pick_add(&picks, 0, (const uint8_t *)"$share/h/#", 10);
	ck_assert(!buf_failed(&picks));
	memset(&p, 0, sizeof(p));
	p.format = WALREC_PUBLISH_V4;
	p.level = 5;
	p.sid = 42;
	p.epoch = 1;
	p.received = 1764859373123;
	p.picks = picks.data;
	p.picks_len = picks.len;
	p.npicks = 2;
	p.packet = packet;
	p.len = sizeof(packet);
	ck_assert_int_eq(walrec_publish_encode(b, &p), 0);
	buf_free(&picks);
}

START_TEST(test_publish_picks)
{
	struct buf		 b = BUF_INITIALIZER;
	struct buf_reader	 rd;
	struct walrec_publish	 p;
	const uint8_t		*f;
	size_t			 flen;
	uint32_t		 k;

	encode_picks(&b);
	/* 32, u16 n, 2 x (u32 k, u16 length) and the filters, the packet */
	ck_assert_uint_eq(b.len, 32 + 2 + 12 + 12 + 10 + sizeof(packet));
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), 0);
	ck_assert_uint_eq(p.format, 4);
	ck_assert_uint_eq(p.sid, 42);
	ck_assert_int_eq(p.received, 1764859373123);
	ck_assert_uint_eq(p.npicks, 2);
	ck_assert_uint_eq(p.picks_len, 12 + 12 + 10);
	ck_assert_uint_eq(p.len, sizeof(packet));
	ck_assert_mem_eq(p.packet, packet, sizeof(packet));
	buf_reader_init(&rd, p.picks, p.picks_len);
	ck_assert_int_eq(walrec_pick_next(&rd, &k, &f, &flen), 1);
	ck_assert_uint_eq(k, 5);
	ck_assert_uint_eq(flen, 12);
	ck_assert_mem_eq(f, "$share/g/a/+", 12);
	ck_assert_int_eq(walrec_pick_next(&rd, &k, &f, &flen), 1);
	ck_assert_uint_eq(k, 0);
	ck_assert_uint_eq(flen, 10);
	ck_assert_mem_eq(f, "$share/h/#", 10);
	ck_assert_int_eq(walrec_pick_next(&rd, &k, &f, &flen), 0);
	ck_assert_uint_eq(p.picks_only, 0);
	/* for its picks alone: flag 1 at offset 22 */
	b.data[23] = 1;
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), 0);
	ck_assert_uint_eq(p.picks_only, 1);
	ck_assert_uint_eq(p.npicks, 2);
	/* an unknown flag is refused */
	b.data[23] = 2;
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), -1);
	b.data[23] = 0;
	/* other formats carry none */
	buf_reset(&b);
	encode_publish(&b, WALREC_PUBLISH_V2);
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), 0);
	ck_assert_uint_eq(p.npicks, 0);
	ck_assert_ptr_null(p.picks);
	/* ... nor flags */
	b.data[23] = 1;
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), -1);
	buf_free(&b);
}
END_TEST

START_TEST(test_publish_picks_refused)
{
	struct buf		 b = BUF_INITIALIZER;
	struct walrec_publish	 p;
	size_t			 cut, list = 2 + 12 + 12 + 10;

	encode_picks(&b);
	/* cut anywhere before the packet's first two bytes */
	for (cut = 0; cut < 32 + list + 2; cut++)
		ck_assert_msg(walrec_publish_decode(b.data, cut, &p) == -1,
		    "accepted %zu bytes", cut);
	/* no picks: a format 2 record, not a format 4 one */
	b.data[32] = 0;
	b.data[33] = 0;
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), -1);
	/* more picks than there are: the packet read as one */
	b.data[33] = 3;
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), -1);
	/* an empty filter */
	b.data[33] = 2;
	b.data[32 + 2 + 4] = 0;
	b.data[32 + 2 + 5] = 0;
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), -1);
	/* a filter running past the record */
	b.data[32 + 2 + 4] = 0xff;
	ck_assert_int_eq(walrec_publish_decode(b.data, b.len, &p), -1);
	/* and nothing to encode */
	memset(&p, 0, sizeof(p));
	p.format = WALREC_PUBLISH_V4;
	p.packet = packet;
	p.len = sizeof(packet);
	buf_reset(&b);
	ck_assert_int_eq(walrec_publish_encode(&b, &p), -1);
	buf_free(&b);
}
END_TEST

static void
encode_session(struct buf *b, uint8_t op, uint64_t sid, const char *id)
{
	struct walrec_session	 s;

	memset(&s, 0, sizeof(s));
	s.op = op;
	s.node = 1;
	s.epoch = 4;
	s.sid = sid;
	s.time = 1764859373000;
	s.expiry = WALREC_EXPIRY_NEVER;
	s.level = 5;
	s.why = WALREC_END_EXPIRED;
	s.client_id = (const uint8_t *)id;
	s.idlen = (uint16_t)strlen(id);
	ck_assert_int_eq(walrec_session_encode(b, &s), 0);
}

START_TEST(test_session_round_trip)
{
	struct buf		 b = BUF_INITIALIZER;
	struct walrec_session	 s;

	encode_session(&b, WALREC_SESSION_OPEN, 0, "sensor-17");
	ck_assert_uint_eq(b.len, 32 + 9);
	ck_assert_int_eq(walrec_session_decode(b.data, b.len, &s), 0);
	ck_assert_uint_eq(s.op, WALREC_SESSION_OPEN);
	ck_assert_uint_eq(s.node, 1);
	ck_assert_uint_eq(s.epoch, 4);
	ck_assert_uint_eq(s.sid, 0);
	ck_assert_int_eq(s.time, 1764859373000);
	ck_assert_uint_eq(s.expiry, WALREC_EXPIRY_NEVER);
	ck_assert_uint_eq(s.level, 5);
	ck_assert_uint_eq(s.idlen, 9);
	ck_assert_mem_eq(s.client_id, "sensor-17", 9);

	buf_reset(&b);
	encode_session(&b, WALREC_SESSION_END, 77, "");
	ck_assert_int_eq(walrec_session_decode(b.data, b.len, &s), 0);
	ck_assert_uint_eq(s.sid, 77);
	ck_assert_uint_eq(s.why, WALREC_END_EXPIRED);
	buf_free(&b);
}
END_TEST

START_TEST(test_session_refused)
{
	struct buf		 b = BUF_INITIALIZER;
	struct walrec_session	 s;
	size_t			 cut;

	encode_session(&b, WALREC_SESSION_OPEN, 0, "c");
	for (cut = 0; cut < b.len; cut++)
		ck_assert_int_eq(walrec_session_decode(b.data, cut, &s), -1);
	buf_add_u8(&b, 0);	/* a byte too many */
	ck_assert_int_eq(walrec_session_decode(b.data, b.len, &s), -1);
	buf_reset(&b);
	/* an open without a client id; offline and end without a session */
	encode_session(&b, WALREC_SESSION_OPEN, 0, "");
	ck_assert_int_eq(walrec_session_decode(b.data, b.len, &s), -1);
	buf_reset(&b);
	encode_session(&b, WALREC_SESSION_OFFLINE, 0, "");
	ck_assert_int_eq(walrec_session_decode(b.data, b.len, &s), -1);
	buf_reset(&b);
	encode_session(&b, 2, 5, "");	/* no such op */
	ck_assert_int_eq(walrec_session_decode(b.data, b.len, &s), -1);
	b.data[0] = 2;			/* no such format */
	b.data[1] = WALREC_SESSION_END;
	ck_assert_int_eq(walrec_session_decode(b.data, b.len, &s), -1);
	buf_free(&b);
}
END_TEST

static void
encode_sub(struct buf *b, uint8_t op, const char *filter)
{
	struct walrec_subscription	 s;

	memset(&s, 0, sizeof(s));
	s.op = op;
	s.node = 2;
	s.epoch = 3;
	s.sid = 99;
	s.options.qos = 1;
	s.options.no_local = 1;
	s.options.retain_as_published = 1;
	s.options.retain_handling = 2;
	s.options.sub_id = 268435455;
	s.filter = (const uint8_t *)filter;
	s.len = (uint16_t)strlen(filter);
	ck_assert_int_eq(walrec_subscription_encode(b, &s), 0);
}

START_TEST(test_subscription_round_trip)
{
	struct buf			 b = BUF_INITIALIZER;
	struct walrec_subscription	 s;

	encode_sub(&b, WALREC_SUB_ADD, "a/+/#");
	ck_assert_int_eq(walrec_subscription_decode(b.data, b.len, &s), 0);
	ck_assert_uint_eq(s.op, WALREC_SUB_ADD);
	ck_assert_uint_eq(s.node, 2);
	ck_assert_uint_eq(s.epoch, 3);
	ck_assert_uint_eq(s.sid, 99);
	ck_assert_uint_eq(s.options.qos, 1);
	ck_assert_uint_eq(s.options.no_local, 1);
	ck_assert_uint_eq(s.options.retain_as_published, 1);
	ck_assert_uint_eq(s.options.retain_handling, 2);
	ck_assert_uint_eq(s.options.sub_id, 268435455);
	ck_assert_uint_eq(s.len, 5);
	ck_assert_mem_eq(s.filter, "a/+/#", 5);
	buf_free(&b);
}
END_TEST

START_TEST(test_subscription_refused)
{
	struct buf			 b = BUF_INITIALIZER;
	struct walrec_subscription	 s;
	size_t				 cut;

	encode_sub(&b, WALREC_SUB_REMOVE, "x");
	for (cut = 0; cut < b.len; cut++)
		ck_assert_int_eq(walrec_subscription_decode(b.data, cut, &s),
		    -1);
	b.data[16] = 3;		/* QoS 3 */
	ck_assert_int_eq(walrec_subscription_decode(b.data, b.len, &s), -1);
	b.data[16] = 1;
	b.data[17] = 4;		/* an unknown flag */
	ck_assert_int_eq(walrec_subscription_decode(b.data, b.len, &s), -1);
	b.data[17] = 0;
	b.data[18] = 3;		/* retain handling 3 */
	ck_assert_int_eq(walrec_subscription_decode(b.data, b.len, &s), -1);
	b.data[18] = 0;
	b.data[1] = 9;		/* no such op */
	ck_assert_int_eq(walrec_subscription_decode(b.data, b.len, &s), -1);
	buf_reset(&b);
	encode_sub(&b, WALREC_SUB_ADD, "");	/* no filter */
	ck_assert_int_eq(walrec_subscription_decode(b.data, b.len, &s), -1);
	buf_free(&b);
}
END_TEST

START_TEST(test_ack_round_trip)
{
	struct buf		 b = BUF_INITIALIZER;
	struct walrec_ack	 a;
	uint64_t		 seq;
	uint8_t			 state;
	uint16_t		 i;

	ck_assert_int_eq(walrec_ack_begin(&b, 1, 42, 6), 0);
	for (i = 0; i < 300; i++)
		ck_assert_int_eq(walrec_ack_add(&b, 1000 + i,
		    i % 2 ? WALREC_ACK_RECEIVED : WALREC_ACK_DONE), 0);
	ck_assert_int_eq(walrec_ack_end(&b), 0);
	ck_assert_int_eq(walrec_ack_decode(b.data, b.len, &a), 0);
	ck_assert_uint_eq(a.node, 1);
	ck_assert_uint_eq(a.sid, 42);
	ck_assert_uint_eq(a.epoch, 6);
	ck_assert_uint_eq(a.count, 300);
	for (i = 0; i < 300; i++) {
		walrec_ack_entry(&a, i, &seq, &state);
		ck_assert_uint_eq(seq, 1000 + i);
		ck_assert_uint_eq(state, i % 2 ? WALREC_ACK_RECEIVED :
		    WALREC_ACK_DONE);
	}
	/* begin starts a new record in the same buffer */
	ck_assert_int_eq(walrec_ack_begin(&b, 0, 1, 1), 0);
	ck_assert_int_eq(walrec_ack_add(&b, 5, WALREC_ACK_DONE), 0);
	ck_assert_int_eq(walrec_ack_end(&b), 0);
	ck_assert_int_eq(walrec_ack_decode(b.data, b.len, &a), 0);
	ck_assert_uint_eq(a.count, 1);
	buf_free(&b);
}
END_TEST

START_TEST(test_ack_refused)
{
	struct buf		 b = BUF_INITIALIZER;
	struct walrec_ack	 a;
	size_t			 cut;
	int			 i;

	/* an ack of nothing is not a record */
	ck_assert_int_eq(walrec_ack_begin(&b, 0, 1, 1), 0);
	ck_assert_int_eq(walrec_ack_end(&b), -1);
	/* nor one of more than WALREC_ACK_MAX */
	for (i = 0; i <= WALREC_ACK_MAX; i++)
		walrec_ack_add(&b, (uint64_t)i + 1, WALREC_ACK_DONE);
	ck_assert_int_eq(walrec_ack_end(&b), -1);

	ck_assert_int_eq(walrec_ack_begin(&b, 0, 1, 1), 0);
	walrec_ack_add(&b, 1, WALREC_ACK_DONE);
	walrec_ack_add(&b, 2, WALREC_ACK_DONE);
	ck_assert_int_eq(walrec_ack_end(&b), 0);
	for (cut = 0; cut < b.len; cut++)
		ck_assert_int_eq(walrec_ack_decode(b.data, cut, &a), -1);
	buf_add_u8(&b, 0);
	ck_assert_int_eq(walrec_ack_decode(b.data, b.len, &a), -1);
	buf_free(&b);
}
END_TEST

static void
encode_will(struct buf *b, uint8_t op, uint64_t id, const char *client,
    const uint8_t *pkt, size_t len)
{
	struct walrec_will	 w;

	memset(&w, 0, sizeof(w));
	w.op = op;
	w.node = 2;
	w.arg = 30;
	w.id = id;
	w.time = 1764859373000;
	w.level = 5;
	w.client_id = (const uint8_t *)client;
	w.idlen = (uint16_t)strlen(client);
	w.packet = pkt;
	w.len = len;
	ck_assert_int_eq(walrec_will_encode(b, &w), 0);
}

START_TEST(test_will_round_trip)
{
	struct buf		 b = BUF_INITIALIZER;
	struct walrec_will	 w;

	encode_will(&b, WALREC_WILL_SET, 0, "dev-1", packet, sizeof(packet));
	ck_assert_uint_eq(b.len, 28 + 5 + sizeof(packet));
	ck_assert_int_eq(walrec_will_decode(b.data, b.len, &w), 0);
	ck_assert_uint_eq(w.op, WALREC_WILL_SET);
	ck_assert_uint_eq(w.node, 2);
	ck_assert_uint_eq(w.arg, 30);
	ck_assert_uint_eq(w.id, 0);
	ck_assert_int_eq(w.time, 1764859373000);
	ck_assert_uint_eq(w.level, 5);
	ck_assert_uint_eq(w.idlen, 5);
	ck_assert_mem_eq(w.client_id, "dev-1", 5);
	ck_assert_uint_eq(w.len, sizeof(packet));
	ck_assert_mem_eq(w.packet, packet, sizeof(packet));

	buf_reset(&b);
	encode_will(&b, WALREC_WILL_END, 12345, "dev-1", NULL, 0);
	ck_assert_int_eq(walrec_will_decode(b.data, b.len, &w), 0);
	ck_assert_uint_eq(w.op, WALREC_WILL_END);
	ck_assert_uint_eq(w.id, 12345);
	ck_assert_uint_eq(w.len, 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_will_refused)
{
	struct buf		 b = BUF_INITIALIZER;
	struct walrec_will	 w;
	size_t			 cut;

	encode_will(&b, WALREC_WILL_CLEAR, 9, "c", NULL, 0);
	for (cut = 0; cut < b.len; cut++)
		ck_assert_int_eq(walrec_will_decode(b.data, cut, &w), -1);
	buf_add_u8(&b, 0);	/* a byte too many for a clear */
	ck_assert_int_eq(walrec_will_decode(b.data, b.len, &w), -1);
	/* no such op, no such format, a reserved byte */
	buf_reset(&b);
	encode_will(&b, WALREC_WILL_CLEAR, 9, "c", NULL, 0);
	b.data[1] = 4;
	ck_assert_int_eq(walrec_will_decode(b.data, b.len, &w), -1);
	b.data[1] = WALREC_WILL_CLEAR;
	b.data[0] = 2;
	ck_assert_int_eq(walrec_will_decode(b.data, b.len, &w), -1);
	b.data[0] = 1;
	b.data[25] = 1;
	ck_assert_int_eq(walrec_will_decode(b.data, b.len, &w), -1);
	/* a set names no will and carries a packet; the others the reverse */
	memset(&w, 0, sizeof(w));
	w.op = WALREC_WILL_SET;
	w.id = 3;
	w.client_id = (const uint8_t *)"c";
	w.idlen = 1;
	w.packet = packet;
	w.len = sizeof(packet);
	ck_assert_int_eq(walrec_will_encode(&b, &w), -1);
	w.id = 0;
	w.len = 0;
	ck_assert_int_eq(walrec_will_encode(&b, &w), -1);
	w.op = WALREC_WILL_END;
	w.id = 3;
	w.len = sizeof(packet);
	ck_assert_int_eq(walrec_will_encode(&b, &w), -1);
	w.len = 0;
	w.idlen = 0;	/* no client id */
	ck_assert_int_eq(walrec_will_encode(&b, &w), -1);
	buf_free(&b);
}
END_TEST

static Suite *
walrec_suite(void)
{
	Suite	*s = suite_create("walrec");
	TCase	*tc;

	tc = tcase_create("publish");
	tcase_add_test(tc, test_publish_round_trip);
	tcase_add_test(tc, test_publish_format_1);
	tcase_add_test(tc, test_publish_will);
	tcase_add_test(tc, test_publish_refused);
	tcase_add_test(tc, test_publish_picks);
	tcase_add_test(tc, test_publish_picks_refused);
	suite_add_tcase(s, tc);
	tc = tcase_create("session");
	tcase_add_test(tc, test_session_round_trip);
	tcase_add_test(tc, test_session_refused);
	suite_add_tcase(s, tc);
	tc = tcase_create("subscription");
	tcase_add_test(tc, test_subscription_round_trip);
	tcase_add_test(tc, test_subscription_refused);
	suite_add_tcase(s, tc);
	tc = tcase_create("ack");
	tcase_add_test(tc, test_ack_round_trip);
	tcase_add_test(tc, test_ack_refused);
	suite_add_tcase(s, tc);
	tc = tcase_create("will");
	tcase_add_test(tc, test_will_round_trip);
	tcase_add_test(tc, test_will_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(walrec_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
