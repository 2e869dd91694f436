/*
 * check_crc32c.c - unit tests of common/crc32c.c.
 *
 * Known answers from RFC 3720 (iSCSI) appendix B.4 and the usual check
 * value, and the slicing-by-8 path against a bit-at-a-time reference for
 * every length and alignment around the 8-byte steps.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

/* The definition, one bit at a time: slow and obviously right. */
static uint32_t
reference_crc32c(const uint8_t *p, size_t len)
{
	uint32_t	 crc = 0xffffffffu;
	int		 bit;

	while (len-- > 0) {
		crc ^= *p++;
		for (bit = 0; bit < 8; bit++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

START_TEST(test_check_value)
{
	ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xe3069283u);
}
END_TEST

START_TEST(test_empty)
{
	ck_assert_uint_eq(crc32c(0, "", 0), 0);
	ck_assert_uint_eq(crc32c(0x12345678u, NULL, 0), 0x12345678u);
}
END_TEST

START_TEST(test_rfc3720_vectors)
{
	uint8_t	 buf[32];
	int	 i;

	memset(buf, 0, sizeof(buf));
	ck_assert_uint_eq(crc32c(0, buf, sizeof(buf)), 0x8a9136aau);
	memset(buf, 0xff, sizeof(buf));
	ck_assert_uint_eq(crc32c(0, buf, sizeof(buf)), 0x62a8ab43u);
	for (i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	ck_assert_uint_eq(crc32c(0, buf, sizeof(buf)), 0x46dd794eu);
	for (i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	ck_assert_uint_eq(crc32c(0, buf, sizeof(buf)), 0x113fdb5cu);
}
END_TEST

START_TEST(test_matches_reference)
{
	uint8_t	 buf[300];
	size_t	 len, start;

	for (len = 0; len < sizeof(buf); len++)
		buf[len] = (uint8_t)(len * 131 + 7);
	/* Every alignment, every tail length of the 8-byte loop. */
	for (start = 0; start < 9; start++)
		for (len = 0; len + start <= sizeof(buf); len++) {
			ck_assert_uint_eq(crc32c(0, buf + start, len),
			    reference_crc32c(buf + start, len));
			ck_assert_uint_eq(crc32c_portable(0, buf + start, len),
			    reference_crc32c(buf + start, len));
		}
}
END_TEST

START_TEST(test_chaining)
{
	const char	*s = "The quick brown fox jumps over the lazy dog";
	size_t		 len = strlen(s), cut;
	uint32_t	 whole = crc32c(0, s, len);

	for (cut = 0; cut <= len; cut++) {
		ck_assert_uint_eq(crc32c(crc32c(0, s, cut), s + cut, len - cut),
		    whole);
		ck_assert_uint_eq(crc32c_portable(crc32c(0, s, cut), s + cut,
		    len - cut), whole);
	}
}
END_TEST

static Suite *
crc32c_suite(void)
{
	Suite	*s = suite_create("crc32c");
	TCase	*tc;

	tc = tcase_create("known answers");
	tcase_add_test(tc, test_check_value);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_rfc3720_vectors);
	suite_add_tcase(s, tc);

	tc = tcase_create("implementation");
	tcase_add_test(tc, test_matches_reference);
	tcase_add_test(tc, test_chaining);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(crc32c_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
