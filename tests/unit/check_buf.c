/*
 * check_buf.c - unit tests of common/buf.c, the byte buffer every encoder
 * appends to and the bounds-checked reader every decoder walks with.
 *
 * Encoders append many fields and check once, and decoders read many
 * fields and check once, so the tests care as much about the latches
 * (buf->failed, reader->failed) and the exact-end check as about the
 * bytes: every integer is compared with its big-endian bytes, and the
 * MQTT variable byte integer at each boundary of its 1..4-byte forms.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "harness.h"

/* The buffer holds exactly these bytes. */
static void
assert_bytes(const struct buf *b, const void *want, size_t len)
{
	ck_assert_uint_eq(b->len, len);
	if (len > 0)
		ck_assert_mem_eq(b->data, want, len);
}

START_TEST(test_initial_state)
{
	struct buf	 b = BUF_INITIALIZER;

	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(buf_failed(&b), 0);
	/* an empty append allocates nothing */
	ck_assert_int_eq(buf_add(&b, NULL, 0), 0);
	ck_assert_ptr_null(b.data);
	buf_free(&b);
}
END_TEST

START_TEST(test_append_and_growth)
{
	struct buf	 b;
	uint8_t		 want[5000];
	size_t		 i;

	buf_init(&b);
	for (i = 0; i < sizeof(want); i++) {
		want[i] = (uint8_t)(i * 7 + 1);
		ck_assert_int_eq(buf_add_u8(&b, want[i]), 0);
		ck_assert_uint_ge(b.cap, b.len);
	}
	/* reallocation kept everything written before it */
	assert_bytes(&b, want, sizeof(want));
	ck_assert_int_eq(buf_add(&b, want, 100), 0);
	ck_assert_uint_eq(b.len, sizeof(want) + 100);
	ck_assert_mem_eq(b.data + sizeof(want), want, 100);
	ck_assert_int_eq(buf_failed(&b), 0);
	buf_free(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(test_reserve)
{
	struct buf	 b = BUF_INITIALIZER;
	uint8_t		*before;

	ck_assert_int_eq(buf_reserve(&b, 1000), 0);
	ck_assert_uint_ge(b.cap, 1000);
	ck_assert_uint_eq(b.len, 0);
	/* room that is already there costs no reallocation */
	before = b.data;
	ck_assert_int_eq(buf_add_zero(&b, 1000), 0);
	ck_assert_ptr_eq(b.data, before);
	ck_assert_uint_eq(b.len, 1000);
	ck_assert_uint_eq(b.data[0], 0);
	ck_assert_uint_eq(b.data[999], 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_reset_keeps_memory)
{
	struct buf	 b = BUF_INITIALIZER;
	uint8_t		*before;
	size_t		 cap;

	ck_assert_int_eq(buf_add(&b, "abcdef", 6), 0);
	before = b.data;
	cap = b.cap;
	buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_ptr_eq(b.data, before);
	ck_assert_uint_eq(b.cap, cap);
	ck_assert_int_eq(buf_add(&b, "xy", 2), 0);
	assert_bytes(&b, "xy", 2);
	buf_free(&b);
}
END_TEST

START_TEST(test_big_endian_appends)
{
	static const uint8_t	 want[] = {
		0xab,
		0x12, 0x34,
		0xde, 0xad, 0xbe, 0xef,
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
		0xff, 0xff,
		0x00, 0x00, 0x00, 0x00,
	};
	struct buf		 b = BUF_INITIALIZER;

	ck_assert_int_eq(buf_add_u8(&b, 0xab), 0);
	ck_assert_int_eq(buf_add_u16(&b, 0x1234), 0);
	ck_assert_int_eq(buf_add_u32(&b, 0xdeadbeefu), 0);
	ck_assert_int_eq(buf_add_u64(&b, 0x0123456789abcdefull), 0);
	ck_assert_int_eq(buf_add_u16(&b, UINT16_MAX), 0);
	ck_assert_int_eq(buf_add_u32(&b, 0), 0);
	assert_bytes(&b, want, sizeof(want));
	buf_free(&b);
}
END_TEST

START_TEST(test_load_store)
{
	uint8_t	 p[8];

	buf_store_u16(p, 0xbeef);
	ck_assert_uint_eq(p[0], 0xbe);
	ck_assert_uint_eq(p[1], 0xef);
	ck_assert_uint_eq(buf_load_u16(p), 0xbeef);
	buf_store_u32(p, 0x80000001u);
	ck_assert_uint_eq(p[0], 0x80);
	ck_assert_uint_eq(p[3], 0x01);
	ck_assert_uint_eq(buf_load_u32(p), 0x80000001u);
	buf_store_u64(p, 0xfedcba9876543210ull);
	ck_assert_uint_eq(p[0], 0xfe);
	ck_assert_uint_eq(p[7], 0x10);
	ck_assert_uint_eq(buf_load_u64(p), 0xfedcba9876543210ull);
	buf_store_u64(p, UINT64_MAX);
	ck_assert_uint_eq(buf_load_u64(p), UINT64_MAX);
}
END_TEST

/* Each boundary of the 1-, 2-, 3- and 4-byte forms, from both sides. */
static const struct {
	uint32_t	 value;
	size_t		 len;
	uint8_t		 bytes[4];
} vbi_cases[] = {
	{ 0, 1, { 0x00 } },
	{ 127, 1, { 0x7f } },
	{ 128, 2, { 0x80, 0x01 } },
	{ 16383, 2, { 0xff, 0x7f } },
	{ 16384, 3, { 0x80, 0x80, 0x01 } },
	{ 2097151, 3, { 0xff, 0xff, 0x7f } },
	{ 2097152, 4, { 0x80, 0x80, 0x80, 0x01 } },
	{ 268435455, 4, { 0xff, 0xff, 0xff, 0x7f } },
};

START_TEST(test_vbi_boundaries)
{
	struct buf	 b = BUF_INITIALIZER;

	ck_assert_int_eq(buf_add_vbi(&b, vbi_cases[_i].value), 0);
	assert_bytes(&b, vbi_cases[_i].bytes, vbi_cases[_i].len);
	ck_assert_uint_eq(buf_vbi_size(vbi_cases[_i].value), vbi_cases[_i].len);
	buf_free(&b);
}
END_TEST

START_TEST(test_vbi_too_large)
{
	struct buf	 b = BUF_INITIALIZER;

	ck_assert_uint_eq(BUF_VBI_MAX, 268435455u);
	ck_assert_uint_eq(buf_vbi_size(BUF_VBI_MAX + 1), 0);
	ck_assert_uint_eq(buf_vbi_size(UINT32_MAX), 0);
	ck_assert_int_eq(buf_add_u8(&b, 0x30), 0);
	errno = 0;
	ck_assert_int_eq(buf_add_vbi(&b, BUF_VBI_MAX + 1), -1);
	ck_assert_int_eq(errno, ERANGE);
	/* nothing written, and an encoder that checks once sees it */
	assert_bytes(&b, "\x30", 1);
	ck_assert_int_ne(buf_failed(&b), 0);
	buf_reset(&b);
	ck_assert_int_eq(buf_add_vbi(&b, UINT32_MAX), -1);
	ck_assert_int_ne(buf_failed(&b), 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_set_fields)
{
	struct buf	 b = BUF_INITIALIZER;

	/* placeholders for lengths known only at the end */
	ck_assert_int_eq(buf_add_u16(&b, 0), 0);
	ck_assert_int_eq(buf_add_u32(&b, 0), 0);
	ck_assert_int_eq(buf_add(&b, "body", 4), 0);
	buf_set_u16(&b, 0, 0x0102);
	buf_set_u32(&b, 2, 0x03040506u);
	assert_bytes(&b, "\x01\x02\x03\x04\x05\x06" "body", 10);
	/* the last field that fits exactly */
	buf_set_u16(&b, 8, 0x4142);
	buf_set_u32(&b, 6, 0x61626364u);
	assert_bytes(&b, "\x01\x02\x03\x04\x05\x06" "abcd", 10);
	buf_free(&b);
}
END_TEST

START_TEST(test_set_outside_ignored)
{
	struct buf	 b = BUF_INITIALIZER;

	ck_assert_int_eq(buf_add(&b, "0123456789", 10), 0);
	buf_set_u16(&b, 9, 0xffff);
	buf_set_u32(&b, 7, 0xffffffffu);
	buf_set_u16(&b, 10, 0xffff);
	/* an offset so large that adding the width wraps around */
	buf_set_u16(&b, SIZE_MAX - 1, 0xffff);
	buf_set_u32(&b, SIZE_MAX - 2, 0xffffffffu);
	assert_bytes(&b, "0123456789", 10);
	buf_free(&b);
}
END_TEST

START_TEST(test_set_on_failed_ignored)
{
	struct buf	 b = BUF_INITIALIZER;

	ck_assert_int_eq(buf_add(&b, "0123", 4), 0);
	ck_assert_int_eq(buf_reserve(&b, SIZE_MAX), -1);
	/* a failed encoding is thrown away; do not patch it */
	buf_set_u16(&b, 0, 0xffff);
	buf_set_u32(&b, 0, 0xffffffffu);
	assert_bytes(&b, "0123", 4);
	buf_free(&b);
}
END_TEST

START_TEST(test_consume)
{
	struct buf	 b = BUF_INITIALIZER;

	ck_assert_int_eq(buf_add(&b, "abcdefgh", 8), 0);
	buf_consume(&b, 0);
	assert_bytes(&b, "abcdefgh", 8);
	buf_consume(&b, 3);
	assert_bytes(&b, "defgh", 5);
	/* appends continue after what is left */
	ck_assert_int_eq(buf_add(&b, "ij", 2), 0);
	assert_bytes(&b, "defghij", 7);
	buf_consume(&b, 7);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(buf_add(&b, "kl", 2), 0);
	buf_consume(&b, 100);
	ck_assert_uint_eq(b.len, 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_truncate)
{
	struct buf	 b = BUF_INITIALIZER;

	ck_assert_int_eq(buf_add(&b, "abcdefgh", 8), 0);
	buf_truncate(&b, 8);
	assert_bytes(&b, "abcdefgh", 8);
	buf_truncate(&b, 100);	/* never grows */
	assert_bytes(&b, "abcdefgh", 8);
	buf_truncate(&b, 5);
	assert_bytes(&b, "abcde", 5);
	buf_truncate(&b, 0);
	ck_assert_uint_eq(b.len, 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_failed_latch)
{
	struct buf	 b = BUF_INITIALIZER;

	ck_assert_int_eq(buf_add(&b, "ok", 2), 0);
	errno = 0;
	ck_assert_int_eq(buf_reserve(&b, SIZE_MAX), -1);
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_int_ne(buf_failed(&b), 0);
	/* a later append that succeeds does not clear the latch */
	ck_assert_int_eq(buf_add(&b, "more", 4), 0);
	ck_assert_int_ne(buf_failed(&b), 0);
	ck_assert_int_eq(buf_reserve(&b, SIZE_MAX / 2), -1);
	ck_assert_int_ne(buf_failed(&b), 0);
	/* only a reset starts a new encoding */
	buf_reset(&b);
	ck_assert_int_eq(buf_failed(&b), 0);
	ck_assert_int_eq(buf_add(&b, "x", 1), 0);
	ck_assert_int_eq(buf_failed(&b), 0);
	buf_free(&b);
	ck_assert_int_eq(buf_failed(&b), 0);
}
END_TEST

START_TEST(test_read_every_type)
{
	static const uint8_t	 data[] = {
		0x7e,
		0xbe, 0xef,
		0xde, 0xad, 0xbe, 0xef,
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
		'a', 'b', 'c',
		'd', 'e',
		'f', 'g',
	};
	struct buf_reader	 r;
	const uint8_t		*p;
	char			 out[3];

	buf_reader_init(&r, data, sizeof(data));
	ck_assert_uint_eq(buf_read_left(&r), sizeof(data));
	ck_assert_uint_eq(buf_read_u8(&r), 0x7e);
	ck_assert_uint_eq(buf_read_u16(&r), 0xbeef);
	ck_assert_uint_eq(buf_read_u32(&r), 0xdeadbeefu);
	ck_assert_uint_eq(buf_read_u64(&r), 0x0123456789abcdefull);
	ck_assert_int_eq(buf_read(&r, out, 3), 0);
	ck_assert_mem_eq(out, "abc", 3);
	/* a pointer into the reader's bytes, not a copy */
	p = buf_read_ptr(&r, 2);
	ck_assert_ptr_eq(p, data + 18);
	ck_assert_int_eq(buf_read_skip(&r, 1), 0);
	ck_assert_uint_eq(buf_read_left(&r), 1);
	ck_assert_int_eq(buf_read_end(&r), -1);
	ck_assert_uint_eq(buf_read_u8(&r), 'g');
	ck_assert_uint_eq(buf_read_left(&r), 0);
	ck_assert_int_eq(buf_read_end(&r), 0);
	ck_assert_int_eq(r.failed, 0);
}
END_TEST

START_TEST(test_read_zero_length)
{
	struct buf_reader	 r;
	const uint8_t		 data[1] = { 0 };
	char			 out[1];

	/* an empty body is a valid read, even at the very end */
	buf_reader_init(&r, data, 0);
	ck_assert_ptr_nonnull(buf_read_ptr(&r, 0));
	ck_assert_int_eq(buf_read(&r, out, 0), 0);
	ck_assert_int_eq(buf_read_skip(&r, 0), 0);
	ck_assert_int_eq(buf_read_end(&r), 0);
}
END_TEST

/* One read of each kind, each on a reader one byte short of it. */
START_TEST(test_read_past_end)
{
	static const uint8_t	 data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct buf_reader	 r;
	char			 out[9];

	buf_reader_init(&r, data, 0);
	ck_assert_uint_eq(buf_read_u8(&r), 0);
	ck_assert_int_ne(r.failed, 0);

	buf_reader_init(&r, data, 1);
	ck_assert_uint_eq(buf_read_u16(&r), 0);
	ck_assert_int_ne(r.failed, 0);

	buf_reader_init(&r, data, 3);
	ck_assert_uint_eq(buf_read_u32(&r), 0);
	ck_assert_int_ne(r.failed, 0);

	buf_reader_init(&r, data, 7);
	ck_assert_uint_eq(buf_read_u64(&r), 0);
	ck_assert_int_ne(r.failed, 0);

	buf_reader_init(&r, data, 8);
	ck_assert_int_eq(buf_read(&r, out, 9), -1);
	ck_assert_int_ne(r.failed, 0);

	buf_reader_init(&r, data, 8);
	ck_assert_ptr_null(buf_read_ptr(&r, 9));
	ck_assert_int_ne(r.failed, 0);

	buf_reader_init(&r, data, 8);
	ck_assert_int_eq(buf_read_skip(&r, SIZE_MAX), -1);
	ck_assert_int_ne(r.failed, 0);
}
END_TEST

START_TEST(test_read_failed_latch)
{
	static const uint8_t	 data[3] = { 1, 2, 3 };
	struct buf_reader	 r;

	buf_reader_init(&r, data, sizeof(data));
	ck_assert_uint_eq(buf_read_u32(&r), 0);
	/* the bytes that remain are not handed out after a failure */
	ck_assert_uint_eq(buf_read_left(&r), 0);
	ck_assert_uint_eq(buf_read_u8(&r), 0);
	ck_assert_ptr_null(buf_read_ptr(&r, 0));
	ck_assert_int_eq(buf_read_end(&r), -1);
}
END_TEST

START_TEST(test_read_end)
{
	static const uint8_t	 data[4] = { 1, 2, 3, 4 };
	struct buf_reader	 r;

	/* nothing to read and nothing read: exactly consumed */
	buf_reader_init(&r, data, 0);
	ck_assert_int_eq(buf_read_end(&r), 0);
	/* bytes left over */
	buf_reader_init(&r, data, sizeof(data));
	ck_assert_uint_eq(buf_read_u16(&r), 0x0102);
	ck_assert_int_eq(buf_read_end(&r), -1);
	/* exactly */
	ck_assert_uint_eq(buf_read_u16(&r), 0x0304);
	ck_assert_int_eq(buf_read_end(&r), 0);
	/* one too many */
	ck_assert_uint_eq(buf_read_u8(&r), 0);
	ck_assert_int_eq(buf_read_end(&r), -1);
}
END_TEST

static Suite *
buf_suite(void)
{
	Suite	*s = suite_create("buf");
	TCase	*tc;

	tc = harness_tcase(s, "append", NULL, NULL);
	tcase_add_test(tc, test_initial_state);
	tcase_add_test(tc, test_append_and_growth);
	tcase_add_test(tc, test_reserve);
	tcase_add_test(tc, test_reset_keeps_memory);

	tc = harness_tcase(s, "big-endian", NULL, NULL);
	tcase_add_test(tc, test_big_endian_appends);
	tcase_add_test(tc, test_load_store);

	tc = harness_tcase(s, "variable byte integer", NULL, NULL);
	tcase_add_loop_test(tc, test_vbi_boundaries, 0,
	    sizeof(vbi_cases) / sizeof(vbi_cases[0]));
	tcase_add_test(tc, test_vbi_too_large);

	tc = harness_tcase(s, "patch and cut", NULL, NULL);
	tcase_add_test(tc, test_set_fields);
	tcase_add_test(tc, test_set_outside_ignored);
	tcase_add_test(tc, test_set_on_failed_ignored);
	tcase_add_test(tc, test_consume);
	tcase_add_test(tc, test_truncate);
	tcase_add_test(tc, test_failed_latch);

	tc = harness_tcase(s, "reader", NULL, NULL);
	tcase_add_test(tc, test_read_every_type);
	tcase_add_test(tc, test_read_zero_length);
	tcase_add_test(tc, test_read_past_end);
	tcase_add_test(tc, test_read_failed_latch);
	tcase_add_test(tc, test_read_end);
	return s;
}

int
main(void)
{
	return harness_run(buf_suite());
}
