/*
 * check_utf8.c - Check suite for utf8.c: well-formedness as RFC 3629
 * defines it, the MQTT exclusions (U+0000, surrogates) and the strict
 * policy for topics (control characters, noncharacters).
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

struct utf8_case {
	const char	*s;
	size_t		 len;		/* 0: strlen */
	int		 plain;		/* 0 valid, -1 invalid */
	int		 strict;
};

#define OK(s)		{ s, 0, 0, 0 }
#define BAD(s)		{ s, 0, -1, -1 }
#define LAX(s)		{ s, 0, 0, -1 }	/* fine, but not in a topic */

static const struct utf8_case cases[] = {
	OK(""), OK("a"), OK("sensors/room 1/t"),
	OK("\xc2\xa0"),			/* U+00A0, first after the C1 block */
	OK("\xc3\xa9t\xc3\xa9"),
	OK("\xe0\xa0\x80"),		/* U+0800, shortest 3-byte */
	OK("\xed\x9f\xbf"),		/* U+D7FF, just below surrogates */
	OK("\xee\x80\x80"),		/* U+E000, just above them */
	OK("\xef\xbb\xbf"),		/* U+FEFF stays, never stripped */
	OK("\xef\xbf\xbd"),		/* U+FFFD */
	OK("\xf0\x90\x80\x80"),		/* U+10000 */
	OK("\xf0\xaa\x9b\x94"),		/* U+2A6D4, the specification's example */
	OK("\xf4\x8f\xbf\xbd"),		/* U+10FFFD */
	{ "a\0b", 3, -1, -1 },		/* U+0000 */
	BAD("\xc0\x80"),		/* overlong U+0000 */
	BAD("\xc1\xbf"),		/* overlong */
	BAD("\xe0\x9f\xbf"),		/* overlong */
	BAD("\xf0\x8f\xbf\xbf"),	/* overlong */
	BAD("\xed\xa0\x80"),		/* U+D800 */
	BAD("\xed\xbf\xbf"),		/* U+DFFF */
	BAD("\xf4\x90\x80\x80"),	/* U+110000 */
	BAD("\xf5\x80\x80\x80"),
	BAD("\xff"), BAD("\x80"), BAD("a\xbf"),
	BAD("\xc3"), BAD("\xe2\x82"), BAD("\xf0\x9f\x98"),	/* cut short */
	BAD("\xc3\x28"), BAD("\xe2\x28\xa1"), BAD("\xf0\x28\x8c\xbc"),
	LAX("\x01"), LAX("\x09"), LAX("a\x1f"), LAX("\x7f"),
	LAX("\xc2\x80"), LAX("\xc2\x9f"),	/* C1 controls */
	LAX("\xef\xb7\x90"), LAX("\xef\xb7\xaf"),	/* U+FDD0, U+FDEF */
	LAX("\xef\xbf\xbe"), LAX("\xef\xbf\xbf"),	/* U+FFFE, U+FFFF */
	LAX("\xf0\x9f\xbf\xbe"), LAX("\xf4\x8f\xbf\xbf"), /* U+1FFFE, U+10FFFF */
	OK("\xef\xb7\x8f"), OK("\xef\xb7\xb0"),	/* U+FDCF, U+FDF0 */
};

START_TEST(test_cases)
{
	const struct utf8_case	*c = &cases[_i];
	size_t			 len = c->len ? c->len : strlen(c->s);

	ck_assert_int_eq(utf8_check((const uint8_t *)c->s, len, 0), c->plain);
	ck_assert_int_eq(utf8_check((const uint8_t *)c->s, len, UTF8_STRICT),
	    c->strict);
}
END_TEST

/*
 * Plain ASCII goes eight bytes at a time: a bad byte at any position of
 * a long string, and at any alignment, must still be found.
 */
START_TEST(test_ascii_runs)
{
	static const uint8_t	 bad[] = { 0x00, 0x01, 0x1f, 0x7f, 0x80, 0xff };
	uint8_t			 s[80];
	size_t			 pos, k, start;

	for (start = 0; start < 8; start++) {
		memset(s, 'x', sizeof(s));
		ck_assert_int_eq(utf8_check(s + start, 64, UTF8_STRICT), 0);
		for (pos = 0; pos < 64; pos++) {
			for (k = 0; k < sizeof(bad); k++) {
				int	 plain = bad[k] >= 0x01 &&
					    bad[k] <= 0x7f ? 0 : -1;

				s[start + pos] = bad[k];
				ck_assert_int_eq(utf8_check(s + start, 64, 0),
				    plain);
				ck_assert_int_eq(utf8_check(s + start, 64,
				    UTF8_STRICT), -1);
			}
			s[start + pos] = ' ';
			ck_assert_int_eq(utf8_check(s + start, 64,
			    UTF8_STRICT), 0);
			s[start + pos] = 'x';
		}
	}
}
END_TEST

/* Every code point: valid exactly when it is a scalar value. */
/*
 * Each code point once, encoded in its shortest form: only the
 * surrogates are refused.  A million ck_assert calls would cost seconds
 * under the sanitizers (Check records every call); the loop counts and
 * asserts once.
 */
START_TEST(test_every_code_point)
{
	uint32_t	 cp, wrong = 0, first_wrong = 0;
	uint8_t		 s[4];
	size_t		 n;
	int		 want;

	for (cp = 1; cp <= 0x10ffff; cp++) {
		if (cp < 0x80) {
			s[0] = (uint8_t)cp;
			n = 1;
		} else if (cp < 0x800) {
			s[0] = (uint8_t)(0xc0 | cp >> 6);
			s[1] = (uint8_t)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			s[0] = (uint8_t)(0xe0 | cp >> 12);
			s[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
			s[2] = (uint8_t)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			s[0] = (uint8_t)(0xf0 | cp >> 18);
			s[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
			s[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
			s[3] = (uint8_t)(0x80 | (cp & 0x3f));
			n = 4;
		}
		want = cp >= 0xd800 && cp <= 0xdfff ? -1 : 0;
		if (utf8_check(s, n, 0) != want && wrong++ == 0)
			first_wrong = cp;
	}
	ck_assert_msg(wrong == 0, "%u code points judged wrongly, the first "
	    "U+%04X", wrong, first_wrong);
}
END_TEST

static Suite *
utf8_suite(void)
{
	Suite	*s = suite_create("utf8");
	TCase	*tc = tcase_create("validation");

	tcase_add_loop_test(tc, test_cases, 0,
	    (int)(sizeof(cases) / sizeof(cases[0])));
	tcase_add_test(tc, test_ascii_runs);
	tcase_add_test(tc, test_every_code_point);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(utf8_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
