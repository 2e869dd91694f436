/*
 * check_topic.c - Check suite for topic.c: topic names, topic filters
 * and the parts of $share filters, with the examples of the MQTT 5.0
 * specification (sections 4.7 and 4.8.2) and their edge cases.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

static int
name(const char *s)
{
	return topic_name_check((const uint8_t *)s, strlen(s));
}

static int
filter(const char *s, struct topic_filter *tf)
{
	return topic_filter_parse((const uint8_t *)s, strlen(s), tf);
}

START_TEST(test_names)
{
	ck_assert_int_eq(name("sport/tennis/player1"), TOPIC_OK);
	ck_assert_int_eq(name("/"), TOPIC_OK);
	ck_assert_int_eq(name("/finance"), TOPIC_OK);
	ck_assert_int_eq(name("a//b/"), TOPIC_OK);
	ck_assert_int_eq(name("Accounts payable"), TOPIC_OK);
	ck_assert_int_eq(name("$SYS/broker/uptime"), TOPIC_OK);
	ck_assert_int_eq(name("$share/g/x"), TOPIC_OK);
	ck_assert_int_eq(name("caf\xc3\xa9"), TOPIC_OK);
	ck_assert_int_eq(name(""), TOPIC_EMPTY);
	ck_assert_int_eq(name("+"), TOPIC_WILDCARD);
	ck_assert_int_eq(name("a/#"), TOPIC_WILDCARD);
	ck_assert_int_eq(name("a+b"), TOPIC_WILDCARD);
	ck_assert_int_eq(name("a\tb"), TOPIC_BAD_UTF8);
	ck_assert_int_eq(name("\xc0\xaf"), TOPIC_BAD_UTF8);
	ck_assert_int_eq(topic_name_check((const uint8_t *)"a\0b", 3),
	    TOPIC_BAD_UTF8);
}
END_TEST

static const struct {
	const char	*f;
	int		 e;
	int		 wildcard;
} filters[] = {
	{ "sport/tennis/player1/#", TOPIC_OK, 1 },
	{ "sport/#", TOPIC_OK, 1 },
	{ "#", TOPIC_OK, 1 },
	{ "+", TOPIC_OK, 1 },
	{ "+/tennis/#", TOPIC_OK, 1 },
	{ "sport/+/player1", TOPIC_OK, 1 },
	{ "/+", TOPIC_OK, 1 },
	{ "+/+", TOPIC_OK, 1 },
	{ "+//+", TOPIC_OK, 1 },
	{ "/", TOPIC_OK, 0 },
	{ "a/b", TOPIC_OK, 0 },
	{ "$SYS/#", TOPIC_OK, 1 },
	{ "$share", TOPIC_OK, 0 },
	{ "$sharex/g/a", TOPIC_OK, 0 },
	{ "$SHARE/g/a", TOPIC_OK, 0 },
	{ "", TOPIC_EMPTY, 0 },
	{ "sport/tennis#", TOPIC_BAD_WILDCARD, 1 },
	{ "sport/tennis/#/ranking", TOPIC_BAD_WILDCARD, 1 },
	{ "sport+", TOPIC_BAD_WILDCARD, 1 },
	{ "+sport", TOPIC_BAD_WILDCARD, 1 },
	{ "a/+b/c", TOPIC_BAD_WILDCARD, 1 },
	{ "##", TOPIC_BAD_WILDCARD, 1 },
	{ "#/", TOPIC_BAD_WILDCARD, 1 },
	{ "++", TOPIC_BAD_WILDCARD, 1 },
	{ "a\x01", TOPIC_BAD_UTF8, 0 },
	{ "\xff", TOPIC_BAD_UTF8, 0 },
	{ "$share/", TOPIC_BAD_SHARE, 0 },
	{ "$share/g", TOPIC_BAD_SHARE, 0 },
	{ "$share/g/", TOPIC_BAD_SHARE, 0 },
	{ "$share//a", TOPIC_BAD_SHARE, 0 },
	{ "$share/+/a", TOPIC_BAD_SHARE, 0 },
	{ "$share/g#/a", TOPIC_BAD_SHARE, 0 },
	{ "$share/g/a#", TOPIC_BAD_WILDCARD, 1 },
};

START_TEST(test_filters)
{
	struct topic_filter	 tf;

	ck_assert_msg(filter(filters[_i].f, &tf) == filters[_i].e,
	    "'%s': %s", filters[_i].f, topic_strerror(filter(filters[_i].f,
	    &tf)));
	if (filters[_i].e == TOPIC_OK) {
		ck_assert_int_eq(tf.wildcard, filters[_i].wildcard);
		ck_assert_ptr_null(tf.share);
		ck_assert_uint_eq(tf.filter_len, strlen(filters[_i].f));
	}
}
END_TEST

START_TEST(test_share)
{
	struct topic_filter	 tf;

	ck_assert_int_eq(filter("$share/consumer1/sport/tennis/+", &tf),
	    TOPIC_OK);
	ck_assert_uint_eq(tf.share_len, 9);
	ck_assert(memcmp(tf.share, "consumer1", 9) == 0);
	ck_assert_uint_eq(tf.filter_len, 14);
	ck_assert(memcmp(tf.filter, "sport/tennis/+", 14) == 0);
	ck_assert_int_eq(tf.wildcard, 1);

	/* "$share/consumer1//finance" matches like "/finance". */
	ck_assert_int_eq(filter("$share/consumer1//finance", &tf), TOPIC_OK);
	ck_assert_uint_eq(tf.filter_len, 8);
	ck_assert(memcmp(tf.filter, "/finance", 8) == 0);
	ck_assert_int_eq(tf.wildcard, 0);

	ck_assert_int_eq(filter("$share/g/#", &tf), TOPIC_OK);
	ck_assert_uint_eq(tf.share_len, 1);
	ck_assert_int_eq(tf.wildcard, 1);

	ck_assert_int_eq(filter("$share/g/$share/h/x", &tf), TOPIC_OK);
	ck_assert_uint_eq(tf.filter_len, 10);

	ck_assert_str_eq(topic_strerror(TOPIC_BAD_SHARE),
	    "malformed $share filter");
	ck_assert_str_eq(topic_strerror(99), "unknown topic error");
}
END_TEST

/* Filter, name, whether it matches (MQTT 5.0 4.7.1 and 4.7.2). */
static const struct {
	const char	*filter, *name;
	int		 match;
} matches[] = {
	{ "sport/tennis/player1/#", "sport/tennis/player1", 1 },
	{ "sport/tennis/player1/#", "sport/tennis/player1/ranking", 1 },
	{ "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", 1 },
	{ "sport/#", "sport", 1 },
	{ "#", "sport/tennis", 1 },
	{ "#", "/", 1 },
	{ "sport/tennis/+", "sport/tennis/player1", 1 },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", 0 },
	{ "sport/+", "sport", 0 },
	{ "sport/+", "sport/", 1 },
	{ "+/+", "/finance", 1 },
	{ "/+", "/finance", 1 },
	{ "+", "/finance", 0 },
	{ "+", "", 1 },
	{ "a//b", "a//b", 1 },
	{ "a/+/b", "a//b", 1 },
	{ "a/b", "a/bc", 0 },
	{ "a/bc", "a/b", 0 },
	{ "a/b/#", "a/b", 1 },
	{ "a/b/#", "a/bx", 0 },
	{ "a/b", "a/b/c", 0 },
	{ "#", "$SYS/broker", 0 },
	{ "+/monitor/Clients", "$SYS/monitor/Clients", 0 },
	{ "$SYS/#", "$SYS/broker", 1 },
	{ "$SYS/monitor/+", "$SYS/monitor/Clients", 1 },
};

START_TEST(test_match)
{
	const char	*f = matches[_i].filter, *n = matches[_i].name;

	ck_assert_msg(topic_match((const uint8_t *)f, strlen(f),
	    (const uint8_t *)n, strlen(n)) == matches[_i].match,
	    "filter '%s' and name '%s': expected %d", f, n, matches[_i].match);
}
END_TEST

static Suite *
topic_suite(void)
{
	Suite	*s = suite_create("topic");
	TCase	*tc = tcase_create("names");

	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	tc = tcase_create("filters");
	tcase_add_loop_test(tc, test_filters, 0,
	    (int)(sizeof(filters) / sizeof(filters[0])));
	tcase_add_test(tc, test_share);
	suite_add_tcase(s, tc);
	tc = tcase_create("match");
	tcase_add_loop_test(tc, test_match, 0,
	    (int)(sizeof(matches) / sizeof(matches[0])));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(topic_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
