/*
 * check_sub.c - Check suite for sub.c, the subscription table of a
 * worker.
 *
 * Matching follows MQTT 5.0 section 4.7 (the examples of 4.7.1 are
 * here); the table's bookkeeping (replacing, removing, pruning, remote
 * interest, shared groups, enumeration) has a test case per concern; a
 * randomized run checks sub_match() against a plain reference matcher;
 * and allocation failures are injected through the linker's --wrap of
 * malloc, calloc and realloc to show that ENOMEM leaves the table as it
 * was and that matching allocates nothing once warmed up.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sub.h"
#include "topic.h"

/*
 * Allocation failure injection.  The test is linked with
 * -Wl,--wrap=malloc (and calloc, realloc): every call from sub.c lands
 * here.  fail_countdown > 0 fails the allocation it counts down to.
 */
void	*__real_malloc(size_t);
void	*__real_calloc(size_t, size_t);
void	*__real_realloc(void *, size_t);
void	*__wrap_malloc(size_t);
void	*__wrap_calloc(size_t, size_t);
void	*__wrap_realloc(void *, size_t);

static long	allocations;
static long	fail_countdown;

static int
allocation_fails(void)
{
	allocations++;
	if (fail_countdown > 0 && --fail_countdown == 0) {
		errno = ENOMEM;
		return 1;
	}
	return 0;
}

void *
__wrap_malloc(size_t size)
{
	return allocation_fails() ? NULL : __real_malloc(size);
}

void *
__wrap_calloc(size_t n, size_t size)
{
	return allocation_fails() ? NULL : __real_calloc(n, size);
}

void *
__wrap_realloc(void *p, size_t size)
{
	return allocation_fails() ? NULL : __real_realloc(p, size);
}

#define NWORKERS	4
#define SELF		0

static struct sub_table	*t;
static struct sub_match	 m;

static void
setup(void)
{
	fail_countdown = 0;
	t = sub_table_new(NWORKERS, SELF);
	ck_assert_ptr_nonnull(t);
	memset(&m, 0, sizeof(m));
}

static void
teardown(void)
{
	fail_countdown = 0;
	sub_match_free(&m);
	sub_table_free(t);
	t = NULL;
}

/* Distinct owners: the addresses of this array's elements. */
static char	owners[20000];
#define OWNER(i)	((void *)&owners[i])

static struct topic_filter
parse(const char *s)
{
	struct topic_filter	 tf;

	ck_assert_int_eq(topic_filter_parse((const uint8_t *)s, strlen(s), &tf),
	    TOPIC_OK);
	return tf;
}

static int
add_opts(const char *filter, void *owner, uint8_t qos, uint32_t sub_id,
    uint32_t *count)
{
	struct topic_filter	 tf = parse(filter);
	struct sub_options	 o = { 0 };

	o.qos = qos;
	o.sub_id = sub_id;
	return sub_add_local(t, &tf, owner, &o, count);
}

static int
add(const char *filter, void *owner)
{
	uint32_t	 count;

	return add_opts(filter, owner, 1, 0, &count);
}

static int
rem(const char *filter, void *owner)
{
	struct topic_filter	 tf = parse(filter);
	uint32_t		 count;

	return sub_remove_local(t, &tf, owner, &count);
}

static int
remote(const char *filter, unsigned slot, uint32_t count)
{
	struct topic_filter	 tf = parse(filter);

	return sub_set_remote(t, &tf, slot, count);
}

/* Match and return the number of local hits. */
static size_t
match(const char *topic)
{
	ck_assert_int_eq(
	    sub_match(t, (const uint8_t *)topic, strlen(topic), &m), 0);
	return m.nhits;
}

static int
hit_owner(const void *owner)
{
	size_t	 i;

	for (i = 0; i < m.nhits; i++)
		if (m.hits[i].owner == owner)
			return 1;
	return 0;
}

/* Does filter match topic?  Owner 0 is kept for this. */
static int
matches(const char *filter, const char *topic)
{
	size_t	 n, nodes = sub_node_count(t);

	ck_assert_int_eq(add(filter, OWNER(0)), 0);
	n = match(topic);
	ck_assert_int_eq(rem(filter, OWNER(0)), 0);
	ck_assert_uint_eq(sub_node_count(t), nodes);
	ck_assert_uint_le(n, 1);
	return n == 1;
}

/* A filter, a topic name, and whether they match. */
struct example {
	const char	*filter;
	const char	*topic;
	int		 match;
};

static void
check_examples(const struct example *ex, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		ck_assert_msg(matches(ex[i].filter, ex[i].topic) == ex[i].match,
		    "filter %s, topic %s: expected %d", ex[i].filter,
		    ex[i].topic, ex[i].match);
}

#define CHECK_EXAMPLES(ex)	check_examples(ex, sizeof(ex) / sizeof(ex[0]))

/* Levels longer than one hashing word. */
static const struct example exact_examples[] = {
	{ "a-long-level-name-of-many-bytes/x",
	    "a-long-level-name-of-many-bytes/x", 1 },
	{ "a-long-level-name-of-many-bytes/x",
	    "a-long-level-name-of-many-bytez/x", 0 },
};

/* MQTT 5.0 4.7.1.3. */
static const struct example plus_examples[] = {
	{ "sport/tennis/+", "sport/tennis/player1", 1 },
	{ "sport/tennis/+", "sport/tennis/player2", 1 },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", 0 },
	{ "sport/+", "sport/", 1 },
	{ "sport/+", "sport", 0 },
	{ "+/+", "/finance", 1 },
	{ "/+", "/finance", 1 },
	{ "+", "/finance", 0 },
	{ "+", "finance", 1 },
	{ "+/tennis/#", "sport/tennis", 1 },
	{ "sport/+/player1", "sport/tennis/player1", 1 },
	{ "sport/+/player1", "sport/tennis/player2", 0 },
	{ "+/+/+", "a/b/c", 1 },
	{ "+/+/+", "a/b", 0 },
};

/* MQTT 5.0 4.7.1.2. */
static const struct example pound_examples[] = {
	{ "sport/tennis/player1/#", "sport/tennis/player1", 1 },
	{ "sport/tennis/player1/#", "sport/tennis/player1/ranking", 1 },
	{ "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", 1 },
	{ "sport/#", "sport", 1 },
	{ "sport/tennis/#", "sport", 0 },
	{ "sport/#", "sports", 0 },
	{ "sport/#", "sport/", 1 },
	{ "#", "sport", 1 },
	{ "#", "/", 1 },
	{ "#", "a/b/c/d/e", 1 },
	{ "+/#", "a", 1 },
	{ "+/#", "a/b/c", 1 },
	{ "a/+/#", "a/b", 1 },
	{ "a/+/#", "a", 0 },
};

/* MQTT 5.0 4.7.2; only the first level of a name counts. */
static const struct example dollar_examples[] = {
	{ "#", "$SYS/broker/uptime", 0 },
	{ "#", "$SYS", 0 },
	{ "+/monitor/Clients", "$SYS/monitor/Clients", 0 },
	{ "+", "$SYS", 0 },
	{ "+/#", "$SYS/a", 0 },
	{ "$SYS/#", "$SYS/monitor/Clients", 1 },
	{ "$SYS/#", "$SYS", 1 },
	{ "$SYS/monitor/+", "$SYS/monitor/Clients", 1 },
	{ "$SYS/+/Clients", "$SYS/monitor/Clients", 1 },
	{ "a/+", "a/$x", 1 },
	{ "a/#", "a/$x/y", 1 },
	{ "#", "a$", 1 },
	{ "+", "x$", 1 },
};

/* Empty levels are levels. */
static const struct example empty_level_examples[] = {
	{ "a//b", "a//b", 1 },
	{ "a//b", "a/b", 0 },
	{ "a/+/b", "a//b", 1 },
	{ "/", "/", 1 },
	{ "/", "a/", 0 },
	{ "+/+", "/", 1 },
	{ "+", "/", 0 },
	{ "a/", "a/", 1 },
	{ "a/", "a", 0 },
	{ "a", "a/", 0 },
	{ "//", "//", 1 },
	{ "+//+", "a//b", 1 },
	{ "/#", "/", 1 },
	{ "/#", "/a/b", 1 },
	{ "/#", "a", 0 },
};

START_TEST(test_exact)
{
	uint32_t	 count;

	ck_assert_int_eq(add_opts("sport/tennis", OWNER(1), 2, 7, &count), 0);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(match("sport/tennis"), 1);
	ck_assert_ptr_eq(m.hits[0].owner, OWNER(1));
	ck_assert_uint_eq(m.hits[0].options.qos, 2);
	ck_assert_uint_eq(m.hits[0].options.sub_id, 7);
	ck_assert_uint_eq(m.nshares, 0);
	ck_assert_uint_eq(match("sport"), 0);
	ck_assert_uint_eq(match("sport/tennis/player1"), 0);
	ck_assert_uint_eq(match("sport/tenni"), 0);
	ck_assert_uint_eq(match("sport/tennisx"), 0);
	ck_assert_uint_eq(match("Sport/tennis"), 0);
	ck_assert_uint_eq(match("sport/tennis/"), 0);
	ck_assert_uint_eq(sub_local_count(t), 1);
	ck_assert_uint_eq(sub_node_count(t), 2);
	/* A second owner of the same filter shares its nodes. */
	ck_assert_int_eq(add_opts("sport/tennis", OWNER(2), 0, 0, &count), 0);
	ck_assert_uint_eq(count, 2);
	ck_assert_uint_eq(sub_node_count(t), 2);
	ck_assert_uint_eq(match("sport/tennis"), 2);
	ck_assert(hit_owner(OWNER(1)) && hit_owner(OWNER(2)));
	CHECK_EXAMPLES(exact_examples);
}
END_TEST

START_TEST(test_plus)
{
	CHECK_EXAMPLES(plus_examples);
	/* A literal and a '+' at one level both match, once each. */
	ck_assert_int_eq(add("a/b", OWNER(1)), 0);
	ck_assert_int_eq(add("a/+", OWNER(2)), 0);
	ck_assert_int_eq(add("+/b", OWNER(3)), 0);
	ck_assert_int_eq(add("+/+", OWNER(4)), 0);
	ck_assert_uint_eq(match("a/b"), 4);
	ck_assert_uint_eq(match("a/c"), 2);
	ck_assert(hit_owner(OWNER(2)) && hit_owner(OWNER(4)));
	ck_assert_uint_eq(match("x/b"), 2);
	ck_assert(hit_owner(OWNER(3)) && hit_owner(OWNER(4)));
	/* A topic name never holds '+'; one that does is not a filter. */
	ck_assert_uint_eq(match("a/+"), 2);
}
END_TEST

START_TEST(test_pound)
{
	CHECK_EXAMPLES(pound_examples);
	/* '#' and its parent level are one filter each: two hits. */
	ck_assert_int_eq(add("a", OWNER(1)), 0);
	ck_assert_int_eq(add("a/#", OWNER(2)), 0);
	ck_assert_int_eq(add("#", OWNER(3)), 0);
	ck_assert_uint_eq(match("a"), 3);
	ck_assert_uint_eq(match("a/b"), 2);
	ck_assert(hit_owner(OWNER(2)) && hit_owner(OWNER(3)));
}
END_TEST

START_TEST(test_dollar)
{
	/* MQTT 5.0 4.7.2. */
	CHECK_EXAMPLES(dollar_examples);
	/* Only the first level counts. */
	/* Shared subscriptions follow their filter. */
	ck_assert_int_eq(add("$share/g/#", OWNER(1)), 0);
	match("$SYS/x");
	ck_assert_uint_eq(m.nshares, 0);
	match("x");
	ck_assert_uint_eq(m.nshares, 1);
}
END_TEST

START_TEST(test_empty_levels)
{
	CHECK_EXAMPLES(empty_level_examples);
	/* "a/" and "a" are two filters; "" is a level of its own. */
	ck_assert_int_eq(add("a/", OWNER(1)), 0);
	ck_assert_int_eq(add("a", OWNER(2)), 0);
	ck_assert_uint_eq(sub_node_count(t), 2);
	ck_assert_uint_eq(match("a/"), 1);
	ck_assert(hit_owner(OWNER(1)));
	/* Many empty levels: the walk does not recurse per level. */
	{
		static char	deep[60001];

		memset(deep, '/', sizeof(deep) - 1);
		ck_assert_int_eq(add("#", OWNER(3)), 0);
		ck_assert_int_eq(add("+/+/#", OWNER(4)), 0);
		ck_assert_uint_eq(match(deep), 2);
	}
}
END_TEST

START_TEST(test_replace)
{
	uint32_t	 count, sum = 0;
	size_t		 i;

	ck_assert_int_eq(add_opts("a/+", OWNER(1), 0, 1, &count), 0);
	ck_assert_uint_eq(count, 1);
	ck_assert_int_eq(add_opts("a/+", OWNER(1), 2, 9, &count), 1);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(sub_local_count(t), 1);
	ck_assert_uint_eq(match("a/b"), 1);
	ck_assert_uint_eq(m.hits[0].options.qos, 2);
	ck_assert_uint_eq(m.hits[0].options.sub_id, 9);
	/* The same owner on another filter is another subscription. */
	ck_assert_int_eq(add_opts("a/#", OWNER(1), 1, 3, &count), 0);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(match("a/b"), 2);
	/* ... and in a shared group of that filter too. */
	ck_assert_int_eq(add_opts("$share/g/a/+", OWNER(1), 1, 4, &count), 0);
	ck_assert_int_eq(add_opts("$share/g/a/+", OWNER(1), 0, 5, &count), 1);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(sub_local_count(t), 3);
	match("a/b");
	ck_assert_uint_eq(m.nshares, 1);
	ck_assert_uint_eq(sub_group_local(m.shares[0].group, 0)->options.sub_id,
	    5);
	/* Replacement past the scan limit goes through the owner index. */
	for (i = 2; i < 100; i++)
		ck_assert_int_eq(add_opts("a/+", OWNER(i), 0, 0, &count), 0);
	ck_assert_int_eq(add_opts("a/+", OWNER(50), 1, 50, &count), 1);
	ck_assert_uint_eq(count, 99);
	/* Owners 1-99 on "a/+" (owner 1 with id 9), owner 1 on "a/#" (id 3). */
	ck_assert_uint_eq(match("a/c"), 100);
	for (i = 0; i < m.nhits; i++)
		sum += m.hits[i].options.sub_id;
	ck_assert_uint_eq(sum, 50 + 9 + 3);
}
END_TEST

START_TEST(test_remove_prune)
{
	uint32_t	 count;

	ck_assert_uint_eq(sub_node_count(t), 0);
	ck_assert_int_eq(rem("a/b", OWNER(1)), 1);
	ck_assert_int_eq(add("a/b", OWNER(1)), 0);
	ck_assert_int_eq(add("a/b/c", OWNER(1)), 0);
	ck_assert_int_eq(add("a/+/c", OWNER(2)), 0);
	ck_assert_int_eq(add("a/#", OWNER(3)), 0);
	ck_assert_int_eq(add("$share/g/a/b", OWNER(4)), 0);
	ck_assert_uint_eq(sub_node_count(t), 6);
	/* Not subscribed: 1, and the table is untouched. */
	ck_assert_int_eq(rem("a/b", OWNER(2)), 1);
	ck_assert_int_eq(rem("a/x", OWNER(1)), 1);
	ck_assert_int_eq(rem("a/+", OWNER(1)), 1);
	ck_assert_int_eq(rem("$share/h/a/b", OWNER(4)), 1);
	ck_assert_int_eq(rem("$share/g/a/b", OWNER(1)), 1);
	ck_assert_uint_eq(sub_node_count(t), 6);
	/* "a/b" still leads to "a/b/c", and its group holds it too. */
	{
		struct topic_filter	 tf = parse("a/b");

		ck_assert_int_eq(sub_remove_local(t, &tf, OWNER(1), &count), 0);
		ck_assert_uint_eq(count, 0);
	}
	ck_assert_uint_eq(sub_node_count(t), 6);
	ck_assert_uint_eq(match("a/b"), 1);
	ck_assert_uint_eq(m.nshares, 1);
	ck_assert_int_eq(rem("$share/g/a/b", OWNER(4)), 0);
	match("a/b");
	ck_assert_uint_eq(m.nshares, 0);
	ck_assert_int_eq(rem("a/b/c", OWNER(1)), 0);
	ck_assert_uint_eq(sub_node_count(t), 4);
	ck_assert_int_eq(rem("a/+/c", OWNER(2)), 0);
	ck_assert_uint_eq(sub_node_count(t), 2);
	ck_assert_int_eq(rem("a/#", OWNER(3)), 0);
	ck_assert_uint_eq(sub_node_count(t), 0);
	ck_assert_uint_eq(sub_local_count(t), 0);
	ck_assert_uint_eq(match("a/b"), 0);
	/* Removing the parent first, then the child. */
	ck_assert_int_eq(add("x", OWNER(1)), 0);
	ck_assert_int_eq(add("x/y/z", OWNER(1)), 0);
	ck_assert_uint_eq(sub_node_count(t), 3);
	ck_assert_int_eq(rem("x", OWNER(1)), 0);
	ck_assert_uint_eq(sub_node_count(t), 3);
	ck_assert_int_eq(rem("x/y/z", OWNER(1)), 0);
	ck_assert_uint_eq(sub_node_count(t), 0);
}
END_TEST

/* Owners seen in the hits, each exactly once. */
static void
check_hits_once(size_t first, size_t n, const unsigned char *live)
{
	static unsigned char	 seen[20000];
	size_t			 i, k, expect = 0;

	memset(seen, 0, sizeof(seen));
	for (i = 0; i < m.nhits; i++) {
		k = (size_t)((char *)m.hits[i].owner - owners);
		ck_assert(k >= first && k < first + n);
		ck_assert(live[k - first]);
		ck_assert(!seen[k]);
		seen[k] = 1;
	}
	for (i = 0; i < n; i++)
		expect += live[i];
	ck_assert_uint_eq(m.nhits, expect);
}

START_TEST(test_many_subscribers)
{
	static unsigned char	 live[10000];
	size_t			 i, order[10000], j, tmp;
	uint32_t		 count;
	unsigned		 rng = 12345;

	for (i = 0; i < 10000; i++) {
		ck_assert_int_eq(add_opts("fleet/+/status", OWNER(i), 1, 0,
		    &count), 0);
		ck_assert_uint_eq(count, i + 1);
		live[i] = 1;
		order[i] = i;
	}
	ck_assert_uint_eq(sub_node_count(t), 3);
	ck_assert_uint_eq(match("fleet/7/status"), 10000);
	check_hits_once(0, 10000, live);
	/* A disconnect storm in random order. */
	for (i = 9999; i > 0; i--) {
		rng = rng * 1103515245u + 12345u;
		j = (rng >> 8) % (i + 1);
		tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	for (i = 0; i < 10000; i++) {
		struct topic_filter	 tf = parse("fleet/+/status");

		ck_assert_int_eq(sub_remove_local(t, &tf, OWNER(order[i]),
		    &count), 0);
		ck_assert_uint_eq(count, 10000 - i - 1);
		live[order[i]] = 0;
		ck_assert_int_eq(sub_remove_local(t, &tf, OWNER(order[i]),
		    &count), 1);
		if (i % 997 == 0 || i > 9980) {
			match("fleet/x/status");
			check_hits_once(0, 10000, live);
		}
	}
	ck_assert_uint_eq(sub_node_count(t), 0);
	ck_assert_uint_eq(sub_local_count(t), 0);
}
END_TEST

START_TEST(test_many_siblings)
{
	char	 filter[64], topic[64];
	size_t	 i;

	for (i = 0; i < 10000; i++) {
		snprintf(filter, sizeof(filter), "dev/%zu/cmd", i);
		ck_assert_int_eq(add(filter, OWNER(i)), 0);
	}
	ck_assert_uint_eq(sub_node_count(t), 1 + 2 * 10000);
	for (i = 0; i < 10000; i += 7) {
		snprintf(topic, sizeof(topic), "dev/%zu/cmd", i);
		ck_assert_uint_eq(match(topic), 1);
		ck_assert_ptr_eq(m.hits[0].owner, OWNER(i));
		snprintf(topic, sizeof(topic), "dev/%zu/cmdx", i);
		ck_assert_uint_eq(match(topic), 0);
	}
	ck_assert_uint_eq(match("dev/10000/cmd"), 0);
	for (i = 0; i < 10000; i++) {
		snprintf(filter, sizeof(filter), "dev/%zu/cmd", i);
		ck_assert_int_eq(rem(filter, OWNER(i)), 0);
	}
	ck_assert_uint_eq(sub_node_count(t), 0);
}
END_TEST

START_TEST(test_remote)
{
	struct topic_filter	 tf = parse("a/+");
	unsigned		 s;

	ck_assert_int_eq(remote("a/+", 2, 1), 0);
	ck_assert_uint_eq(match("a/b"), 0);
	ck_assert(sub_match_worker(&m, 2));
	ck_assert(!sub_match_worker(&m, 1) && !sub_match_worker(&m, 3));
	ck_assert(!sub_match_worker(&m, 9999));
	match("b/b");
	ck_assert(!sub_match_worker(&m, 2));
	/* Idempotent; the count of a plain filter is only zero or not. */
	ck_assert_int_eq(remote("a/+", 2, 1), 0);
	ck_assert_int_eq(remote("a/+", 2, 5), 0);
	ck_assert_int_eq(remote("a/+", 3, 1), 0);
	ck_assert_int_eq(remote("a/#", 1, 1), 0);
	match("a/b");
	ck_assert(sub_match_worker(&m, 1) && sub_match_worker(&m, 2) &&
	    sub_match_worker(&m, 3));
	match("a");
	ck_assert(sub_match_worker(&m, 1) && !sub_match_worker(&m, 2));
	/* Remote interest does not make local subscribers. */
	ck_assert_uint_eq(sub_local_count(t), 0);
	ck_assert_int_eq(add("a/+", OWNER(1)), 0);
	ck_assert_uint_eq(match("a/b"), 1);
	ck_assert(sub_match_worker(&m, 2));
	ck_assert_int_eq(remote("a/+", 2, 0), 0);
	ck_assert_int_eq(remote("a/+", 2, 0), 0);
	ck_assert_int_eq(remote("x/y", 2, 0), 0);
	match("a/b");
	ck_assert(!sub_match_worker(&m, 2) && sub_match_worker(&m, 3));
	/* Our own slot and slots past the table are refused. */
	errno = 0;
	ck_assert_int_eq(sub_set_remote(t, &tf, SELF, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(sub_set_remote(t, &tf, NWORKERS, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	sub_clear_remote(t, NWORKERS);
	sub_clear_remote(t, SELF);
	/* A restarted worker is forgotten, and only that one. */
	ck_assert_int_eq(remote("b/c/d", 3, 1), 0);
	ck_assert_int_eq(remote("$share/g/b/#", 3, 2), 0);
	ck_assert_int_eq(remote("$share/g/b/#", 1, 1), 0);
	sub_clear_remote(t, 3);
	match("a/b");
	ck_assert(!sub_match_worker(&m, 3));
	match("b/c/d");
	ck_assert(!sub_match_worker(&m, 3));
	ck_assert_uint_eq(m.nshares, 1);
	ck_assert_uint_eq(sub_group_remote_count(m.shares[0].group, 3), 0);
	ck_assert_uint_eq(sub_group_remote_count(m.shares[0].group, 1), 1);
	match("a");
	ck_assert(sub_match_worker(&m, 1));
	sub_clear_remote(t, 3);
	for (s = 1; s < NWORKERS; s++)
		sub_clear_remote(t, s);
	ck_assert_int_eq(rem("a/+", OWNER(1)), 0);
	ck_assert_uint_eq(sub_node_count(t), 0);
}
END_TEST

START_TEST(test_remote_many_slots)
{
	struct sub_table	*big;
	struct topic_filter	 tf = parse("x/#");
	unsigned		 s;

	/* Slots past 64 live in later words of the bitmap. */
	big = sub_table_new(SUB_MAX_WORKERS, 200);
	ck_assert_ptr_nonnull(big);
	for (s = 0; s < SUB_MAX_WORKERS; s += 3)
		if (s != 200)
			ck_assert_int_eq(sub_set_remote(big, &tf, s, 1), 0);
	ck_assert_int_eq(sub_match(big, (const uint8_t *)"x/y", 3, &m), 0);
	for (s = 0; s < SUB_MAX_WORKERS; s++)
		ck_assert_int_eq(sub_match_worker(&m, s),
		    s % 3 == 0 && s != 200);
	for (s = 0; s < SUB_MAX_WORKERS; s += 3)
		sub_clear_remote(big, s);
	ck_assert_uint_eq(sub_node_count(big), 0);
	sub_table_free(big);
	errno = 0;
	ck_assert_ptr_null(sub_table_new(0, 0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(sub_table_new(SUB_MAX_WORKERS + 1, 0));
	/* A table with no slot of its own (walsvc's view, say). */
	big = sub_table_new(2, 2);
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(sub_set_remote(big, &tf, 0, 1), 0);
	ck_assert_int_eq(sub_set_remote(big, &tf, 1, 1), 0);
	sub_table_free(big);
}
END_TEST

/* The matched group named name, or NULL. */
static const struct sub_group *
share_hit(const char *name)
{
	const uint8_t	*p;
	size_t		 i, len;

	for (i = 0; i < m.nshares; i++) {
		p = sub_group_name(m.shares[i].group, &len);
		if (len == strlen(name) && memcmp(p, name, len) == 0)
			return m.shares[i].group;
	}
	return NULL;
}

START_TEST(test_shared)
{
	const struct sub_group	*g;
	uint32_t		 count;
	size_t			 i;

	ck_assert_int_eq(add_opts("$share/g/a/+", OWNER(1), 1, 0, &count), 0);
	ck_assert_uint_eq(count, 1);
	ck_assert_int_eq(add_opts("$share/g/a/+", OWNER(2), 1, 0, &count), 0);
	ck_assert_uint_eq(count, 2);
	/* Group members are not plain hits. */
	ck_assert_uint_eq(match("a/b"), 0);
	ck_assert_uint_eq(m.nshares, 1);
	ck_assert_ptr_nonnull(g = share_hit("g"));
	ck_assert_uint_eq(sub_group_local_count(g), 2);
	ck_assert(sub_group_local(g, 0)->owner == OWNER(1) ||
	    sub_group_local(g, 1)->owner == OWNER(1));
	ck_assert_ptr_null(sub_group_local(g, 2));
	/* Plain subscriptions of the same filter are independent. */
	ck_assert_int_eq(add_opts("a/+", OWNER(1), 1, 0, &count), 0);
	ck_assert_uint_eq(count, 1);
	ck_assert_uint_eq(match("a/b"), 1);
	ck_assert_uint_eq(sub_group_local_count(share_hit("g")), 2);
	ck_assert_int_eq(rem("a/+", OWNER(1)), 0);
	ck_assert_uint_eq(sub_group_local_count(g), 2);
	/* Another group on the filter, the same group on another filter. */
	ck_assert_int_eq(add_opts("$share/h/a/+", OWNER(3), 1, 0, &count), 0);
	ck_assert_uint_eq(count, 1);
	ck_assert_int_eq(add_opts("$share/g/a/#", OWNER(4), 1, 0, &count), 0);
	ck_assert_uint_eq(count, 1);
	match("a/b");
	ck_assert_uint_eq(m.nshares, 3);
	ck_assert_ptr_nonnull(share_hit("h"));
	match("a");
	ck_assert_uint_eq(m.nshares, 1);
	ck_assert_uint_eq(sub_group_local_count(share_hit("g")), 1);
	/* Remote members: a count per slot, no plain worker bit. */
	ck_assert_int_eq(remote("$share/g/a/+", 1, 3), 0);
	ck_assert_int_eq(remote("$share/g/a/+", 2, 1), 0);
	ck_assert_int_eq(remote("$share/r/a/+", 3, 4), 0);
	match("a/b");
	ck_assert_uint_eq(m.nshares, 4);
	for (i = 0; i < NWORKERS; i++)
		ck_assert(!sub_match_worker(&m, (unsigned)i));
	ck_assert_uint_eq(m.nhits, 0);
	for (i = 0; i < m.nshares; i++) {
		size_t		 len;
		const uint8_t	*name;

		name = sub_group_name(m.shares[i].group, &len);

		if (len == 1 && name[0] == 'g' &&
		    sub_group_local_count(m.shares[i].group) == 2) {
			ck_assert_uint_eq(
			    sub_group_remote_count(m.shares[i].group, 1), 3);
			ck_assert_uint_eq(
			    sub_group_remote_count(m.shares[i].group, 2), 1);
			ck_assert_uint_eq(
			    sub_group_remote_count(m.shares[i].group, 3), 0);
			ck_assert_uint_eq(
			    sub_group_remote_count(m.shares[i].group, 999), 0);
		}
	}
	/* A group with only remote members is still a match. */
	ck_assert_uint_eq(sub_group_local_count(share_hit("r")), 0);
	ck_assert_uint_eq(sub_group_remote_count(share_hit("r"), 3), 4);
	ck_assert_int_eq(remote("$share/r/a/+", 3, 6), 0);
	match("a/b");
	ck_assert_uint_eq(sub_group_remote_count(share_hit("r"), 3), 6);
	/* Local members leave, remote ones keep the group. */
	ck_assert_int_eq(rem("$share/g/a/+", OWNER(1)), 0);
	ck_assert_int_eq(rem("$share/g/a/+", OWNER(2)), 0);
	match("a/b");
	ck_assert_uint_eq(m.nshares, 4);
	ck_assert_int_eq(remote("$share/g/a/+", 1, 0), 0);
	ck_assert_int_eq(remote("$share/g/a/+", 2, 0), 0);
	ck_assert_int_eq(remote("$share/r/a/+", 3, 0), 0);
	ck_assert_int_eq(rem("$share/h/a/+", OWNER(3)), 0);
	match("a/b");
	ck_assert_uint_eq(m.nshares, 1);
	ck_assert_int_eq(rem("$share/g/a/#", OWNER(4)), 0);
	ck_assert_uint_eq(sub_node_count(t), 0);
	ck_assert_uint_eq(sub_local_count(t), 0);
}
END_TEST

/* A group knows its text and counts its turns; it is found by its filter. */
START_TEST(test_group_text_turn_find)
{
	struct topic_filter	 tf;
	struct sub_group	*g;
	const uint8_t		*text;
	size_t			 len;
	uint32_t		 count;

	tf = parse("$share/g/a/+");
	ck_assert_ptr_null(sub_group_find(t, &tf));
	ck_assert_int_eq(add_opts("$share/g/a/+", OWNER(1), 1, 0, &count), 0);
	ck_assert_ptr_nonnull(g = sub_group_find(t, &tf));
	text = sub_group_text(g, &len);
	ck_assert_uint_eq(len, 12);
	ck_assert_int_eq(memcmp(text, "$share/g/a/+", 12), 0);
	ck_assert_uint_eq(sub_group_turn(g), 0);
	ck_assert_uint_eq(sub_group_turn(g), 1);
	match("a/b");
	ck_assert_ptr_eq(m.shares[0].group, g);
	ck_assert_uint_eq(sub_group_turn(m.shares[0].group), 2);
	/* another group of the filter, a plain filter: not this group */
	tf = parse("$share/h/a/+");
	ck_assert_ptr_null(sub_group_find(t, &tf));
	tf = parse("a/+");
	ck_assert_ptr_null(sub_group_find(t, &tf));
	/* a group with remote members only has its text too (a slot past
	 * the workers' is walsvc's in a worker's table) */
	ck_assert_int_eq(remote("$share/long-group-name/x/y/z", NWORKERS - 1,
	    2), 0);
	tf = parse("$share/long-group-name/x/y/z");
	ck_assert_ptr_nonnull(g = sub_group_find(t, &tf));
	text = sub_group_text(g, &len);
	ck_assert_uint_eq(len, 28);
	ck_assert_int_eq(memcmp(text, "$share/long-group-name/x/y/z", 28), 0);
	ck_assert_uint_eq(sub_group_local_count(g), 0);
	ck_assert_uint_eq(sub_group_remote_count(g, NWORKERS - 1), 2);
	ck_assert_int_eq(remote("$share/long-group-name/x/y/z", NWORKERS - 1,
	    0), 0);
	ck_assert_ptr_null(sub_group_find(t, &tf));
	ck_assert_int_eq(rem("$share/g/a/+", OWNER(1)), 0);
	ck_assert_uint_eq(sub_node_count(t), 0);
}
END_TEST

#define MAX_LISTED	16

static struct {
	char		filter[64];
	uint32_t	count;
} listed[MAX_LISTED];
static size_t	nlisted;

static void
list_filter(const uint8_t *filter, size_t len, uint32_t count, void *arg)
{
	ck_assert_ptr_eq(arg, &nlisted);
	ck_assert_uint_lt(nlisted, MAX_LISTED);
	ck_assert_uint_lt(len, sizeof(listed[0].filter));
	memcpy(listed[nlisted].filter, filter, len);
	listed[nlisted].filter[len] = '\0';
	listed[nlisted++].count = count;
}

static uint32_t
listed_count(const char *filter)
{
	size_t	 i;

	for (i = 0; i < nlisted; i++)
		if (strcmp(listed[i].filter, filter) == 0)
			return listed[i].count;
	return 0;
}

static void
list_all(void)
{
	nlisted = 0;
	sub_local_filters(t, list_filter, &nlisted);
}

START_TEST(test_local_filters)
{
	list_all();
	ck_assert_uint_eq(nlisted, 0);
	ck_assert_int_eq(add("a/+", OWNER(1)), 0);
	ck_assert_int_eq(add("a/+", OWNER(2)), 0);
	ck_assert_int_eq(add("a/+/c", OWNER(1)), 0);
	ck_assert_int_eq(add("#", OWNER(1)), 0);
	ck_assert_int_eq(add("/", OWNER(1)), 0);
	ck_assert_int_eq(add("$share/g/a/+", OWNER(3)), 0);
	ck_assert_int_eq(add("$share/g/a/+", OWNER(4)), 0);
	ck_assert_int_eq(add("$share/g/a/+", OWNER(5)), 0);
	ck_assert_int_eq(add("$share/group-two/x", OWNER(3)), 0);
	/* Remote-only filters and groups are not ours to announce. */
	ck_assert_int_eq(remote("remote/only", 1, 1), 0);
	ck_assert_int_eq(remote("$share/rg/a/+", 1, 2), 0);
	ck_assert_int_eq(remote("$share/rg/q", 1, 2), 0);
	ck_assert_int_eq(remote("a/+", 1, 1), 0);
	list_all();
	ck_assert_uint_eq(nlisted, 6);
	ck_assert_uint_eq(listed_count("a/+"), 2);
	ck_assert_uint_eq(listed_count("a/+/c"), 1);
	ck_assert_uint_eq(listed_count("#"), 1);
	ck_assert_uint_eq(listed_count("/"), 1);
	ck_assert_uint_eq(listed_count("$share/g/a/+"), 3);
	ck_assert_uint_eq(listed_count("$share/group-two/x"), 1);
	ck_assert_int_eq(rem("a/+", OWNER(1)), 0);
	ck_assert_int_eq(rem("a/+", OWNER(2)), 0);
	ck_assert_int_eq(rem("$share/group-two/x", OWNER(3)), 0);
	list_all();
	ck_assert_uint_eq(nlisted, 4);
	ck_assert_uint_eq(listed_count("a/+"), 0);
	ck_assert_uint_eq(listed_count("$share/g/a/+"), 3);
}
END_TEST

START_TEST(test_bad_arguments)
{
	struct topic_filter	 tf = parse("a");
	struct sub_options	 o = { 0 };
	uint32_t		 count = 7;

	tf.filter_len = 0;
	errno = 0;
	ck_assert_int_eq(sub_add_local(t, &tf, OWNER(1), &o, &count), -1);
	ck_assert_int_eq(errno, EINVAL);
	tf = parse("$share/g/a");
	tf.share_len = 0;
	ck_assert_int_eq(sub_add_local(t, &tf, OWNER(1), &o, &count), -1);
	ck_assert_int_eq(sub_set_remote(t, &tf, 1, 1), -1);
	tf.share_len = 70000;
	ck_assert_int_eq(sub_remove_local(t, &tf, OWNER(1), &count), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(sub_node_count(t), 0);
}
END_TEST

/* Fingerprint of the table's observable state, for the failure tests. */
struct snapshot {
	size_t		 nodes, local, hits, shares;
	uint64_t	 workers[SUB_MAX_WORKERS / 64];
	size_t		 group_local[8];
	uint32_t	 group_remote[8];
};

static void
snapshot(struct snapshot *s, const char *topic)
{
	size_t	 i;

	memset(s, 0, sizeof(*s));
	s->nodes = sub_node_count(t);
	s->local = sub_local_count(t);
	s->hits = match(topic);
	s->shares = m.nshares;
	memcpy(s->workers, m.workers, sizeof(s->workers));
	for (i = 0; i < m.nshares && i < 8; i++) {
		s->group_local[i] = sub_group_local_count(m.shares[i].group);
		s->group_remote[i] =
		    sub_group_remote_count(m.shares[i].group, 2);
	}
}

/* One change whose allocations are made to fail, one after the other. */
struct failing_op {
	const char	*filter;
	int		 is_remote;
	size_t		 owner;
	unsigned	 slot;
	uint32_t	 count;
	const char	*topic;		/* to match, to see the state */
};

/*
 * Run op with its 1st, 2nd, ... allocation failing until it succeeds
 * without a failure; each failure must report ENOMEM and leave the
 * table as it was.  Only the sub_ call runs armed: Check allocates too.
 */
static void
fail_each_allocation(const struct failing_op *op)
{
	struct topic_filter	 tf = parse(op->filter);
	struct sub_options	 o = { 0 };
	struct snapshot		 before, after;
	uint32_t		 count;
	long			 k, left;
	int			 rc, err;

	for (k = 1;; k++) {
		snapshot(&before, op->topic);
		errno = 0;
		fail_countdown = k;
		if (op->is_remote)
			rc = sub_set_remote(t, &tf, op->slot, op->count);
		else
			rc = sub_add_local(t, &tf, OWNER(op->owner), &o,
			    &count);
		err = errno;
		left = fail_countdown;
		fail_countdown = 0;
		if (left > 0) {
			/* Every allocation went through: done. */
			ck_assert_int_ge(rc, 0);
			return;
		}
		ck_assert_int_eq(rc, -1);
		ck_assert_int_eq(err, ENOMEM);
		snapshot(&after, op->topic);
		ck_assert_mem_eq(&before, &after, sizeof(before));
	}
}

START_TEST(test_out_of_memory)
{
	struct failing_op	 deep = { "n/e/w/+/f/i/l/t/e/r", 0, 1, 0, 0,
	    "n/e/w/x/f/i/l/t/e/r" };
	struct failing_op	 plain = { "a/b", 0, 0, 0, 0, "a/b" };
	struct failing_op	 shared = { "$share/g/a/+/c", 0, 1, 0, 0,
	    "a/b/c" };
	struct failing_op	 rplain = { "r/e/m/o/t/e", 1, 0, 2, 1,
	    "r/e/m/o/t/e" };
	struct failing_op	 rshared = { "$share/rg/n/e/w", 1, 0, 2, 5,
	    "n/e/w" };
	struct sub_match	 fresh;
	size_t			 i;
	int			 rc, err;

	/* First subscriptions of a filter, on an empty table. */
	fail_each_allocation(&deep);
	fail_each_allocation(&shared);
	fail_each_allocation(&rplain);
	fail_each_allocation(&rshared);
	/* The owner index is built at the 17th subscriber and grows after. */
	for (i = 2; i < 80; i++) {
		plain.owner = shared.owner = i;
		fail_each_allocation(&plain);
		fail_each_allocation(&shared);
	}
	/* Growth of the child table and of the slot's set. */
	for (i = 0; i < 300; i++) {
		char	 f[32];

		snprintf(f, sizeof(f), "g/%zu", i);
		ck_assert_int_eq(add(f, OWNER(1)), 0);
		ck_assert_int_eq(remote(f, 2, 1), 0);
	}
	deep.owner = 2;
	fail_each_allocation(&deep);
	rplain.filter = "r/e/m/o/t/e/2";
	rplain.topic = rplain.filter;
	fail_each_allocation(&rplain);
	/* Matching reports ENOMEM when its arrays cannot grow. */
	memset(&fresh, 0, sizeof(fresh));
	errno = 0;
	fail_countdown = 1;
	rc = sub_match(t, (const uint8_t *)"a/b", 3, &fresh);
	err = errno;
	fail_countdown = 0;
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(err, ENOMEM);
	ck_assert_int_eq(sub_match(t, (const uint8_t *)"a/b", 3, &fresh), 0);
	ck_assert_uint_eq(fresh.nhits, 78);
	sub_match_free(&fresh);
}
END_TEST

START_TEST(test_steady_state)
{
	char	 f[32];
	long	 before, grown = 0;
	size_t	 i, wrong = 0;
	int	 rc;

	for (i = 0; i < 2000; i++) {
		snprintf(f, sizeof(f), "s/%zu/+/#", i % 50);
		ck_assert_int_eq(add(f, OWNER(i)), 0);
		snprintf(f, sizeof(f), "$share/g%zu/s/+/x", i % 7);
		ck_assert_int_eq(add(f, OWNER(i)), 0);
	}
	ck_assert_int_eq(remote("s/+/x", 3, 1), 0);
	/* Warm up: the arrays grow to the largest result. */
	match("s/1/x");
	match("s/1/x/y/z");
	/* Only sub_match is counted: Check allocates in its asserts. */
	for (i = 0; i < 100000; i++) {
		snprintf(f, sizeof(f), "s/%zu/x", i % 60);
		before = allocations;
		rc = sub_match(t, (const uint8_t *)f, strlen(f), &m);
		grown += allocations - before;
		if (rc != 0 || m.nhits != (i % 60 < 50 ? 40 : 0) ||
		    m.nshares != 7 || !sub_match_worker(&m, 3))
			wrong++;
	}
	ck_assert_int_eq(grown, 0);
	ck_assert_uint_eq(wrong, 0);
}
END_TEST

/*
 * The randomized cross-check: random filters and topics over a small
 * alphabet of levels, so that they meet often, against a reference
 * matcher that follows the specification word for word.
 */
static unsigned long	rng_state;

static unsigned
rnd(unsigned n)
{
	rng_state = rng_state * 6364136223846793005UL + 1442695040888963407UL;
	return (unsigned)((rng_state >> 33) % n);
}

static const char *
next_level(const char *s, size_t *len)
{
	const char	*slash = strchr(s, '/');

	*len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	return slash != NULL ? slash + 1 : NULL;
}

static int
reference_match(const char *filter, const char *topic)
{
	const char	*f = filter, *n = topic, *fl, *nl;
	size_t		 flen, nlen;

	if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return 0;
	for (;;) {
		fl = f;
		nl = n;
		f = next_level(f, &flen);
		if (flen == 1 && fl[0] == '#')
			return 1;
		if (nl == NULL)
			return 0;
		n = next_level(n, &nlen);
		if (!(flen == 1 && fl[0] == '+') &&
		    (flen != nlen || memcmp(fl, nl, flen) != 0))
			return 0;
		if (f == NULL)
			return n == NULL;
	}
}

static void
random_name(char *buf, int filter)
{
	static const char	*levels[] = { "a", "b", "c", "", "$x", "+",
	    "#" };
	unsigned		 n, i, pick;

	/* Names and filters are never empty: draw again. */
	do {
		buf[0] = '\0';
		n = 1 + rnd(4);
		for (i = 0; i < n; i++) {
			/* '+' only in filters, '#' only last. */
			pick = rnd(filter ? (i + 1 == n ? 7 : 6) : 5);
			if (i > 0)
				strcat(buf, "/");
			strcat(buf, levels[pick]);
		}
	} while (buf[0] == '\0');
}

#define POOL		400
#define NOWNERS		60
#define NSHARES		3	/* share 0 is "not shared" */

static char		 pool[POOL][32];
/* The model: local subscriptions and remote counts. */
static uint32_t		 model_local[POOL][NSHARES][NOWNERS]; /* sub_id */
static uint32_t		 model_remote[POOL][NSHARES][NWORKERS];

static void
model_filter(char *buf, size_t f, unsigned share)
{
	if (share == 0)
		snprintf(buf, 64, "%s", pool[f]);
	else
		snprintf(buf, 64, "$share/s%u/%s", share, pool[f]);
}

static int
hit_cmp(const void *a, const void *b)
{
	const struct sub_hit	*x = a, *y = b;

	if (x->owner != y->owner)
		return x->owner < y->owner ? -1 : 1;
	return x->options.sub_id < y->options.sub_id ? -1 :
	    x->options.sub_id > y->options.sub_id;
}

static int
u64_cmp(const void *a, const void *b)
{
	const uint64_t	*x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

/* Same owners with the same subscription ids (asserting each costs I/O). */
static int
same_hits(const struct sub_hit *a, const struct sub_hit *b, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (a[i].owner != b[i].owner ||
		    a[i].options.sub_id != b[i].options.sub_id)
			return 0;
	return 1;
}

/* One number per matched group: its name, local members and remote counts. */
static uint64_t
group_signature(unsigned share, size_t nlocal, const uint32_t *remote_counts)
{
	uint64_t	 sig = share;
	unsigned	 s;

	sig = sig * 1000 + nlocal;
	for (s = 0; s < NWORKERS; s++)
		sig = sig * 131 + remote_counts[s];
	return sig;
}

/* What the comparisons saw, to be sure they compared something. */
static size_t	cross_hits, cross_shares;

static void
cross_check(const char *topic)
{
	static struct sub_hit	 expect[POOL * NOWNERS];
	static struct sub_hit	 got[POOL * NOWNERS];
	static struct sub_hit	 expect_members[POOL * NOWNERS];
	static struct sub_hit	 got_members[POOL * NOWNERS];
	static uint64_t		 expect_groups[POOL * NSHARES];
	static uint64_t		 got_groups[POOL * NSHARES];
	uint64_t		 workers[SUB_MAX_WORKERS / 64] = { 0 };
	size_t			 ne = 0, nem = 0, neg = 0, ngm = 0;
	size_t			 f, i, j;
	unsigned		 sh, o, s;

	for (f = 0; f < POOL; f++) {
		if (!reference_match(pool[f], topic))
			continue;
		for (o = 0; o < NOWNERS; o++) {
			if (model_local[f][0][o] == 0)
				continue;
			expect[ne].owner = OWNER(o);
			expect[ne++].options.sub_id = model_local[f][0][o];
		}
		for (s = 0; s < NWORKERS; s++)
			if (model_remote[f][0][s] != 0)
				workers[s / 64] |= UINT64_C(1) << (s % 64);
		for (sh = 1; sh < NSHARES; sh++) {
			size_t	 nlocal = 0, nremote = 0;

			for (o = 0; o < NOWNERS; o++) {
				if (model_local[f][sh][o] == 0)
					continue;
				nlocal++;
				expect_members[nem].owner = OWNER(o);
				expect_members[nem++].options.sub_id =
				    model_local[f][sh][o];
			}
			for (s = 0; s < NWORKERS; s++)
				nremote += model_remote[f][sh][s] != 0;
			if (nlocal > 0 || nremote > 0)
				expect_groups[neg++] = group_signature(sh,
				    nlocal, model_remote[f][sh]);
		}
	}
	ck_assert_uint_eq(match(topic), ne);
	cross_hits += ne;
	cross_shares += neg;
	ck_assert_mem_eq(m.workers, workers, sizeof(workers));
	ck_assert_uint_eq(m.nshares, neg);
	memcpy(got, m.hits, ne * sizeof(*got));
	qsort(got, ne, sizeof(*got), hit_cmp);
	qsort(expect, ne, sizeof(*expect), hit_cmp);
	ck_assert_msg(same_hits(got, expect, ne), "hits for %s", topic);
	for (i = 0; i < m.nshares; i++) {
		const struct sub_group	*g = m.shares[i].group;
		uint32_t		 counts[NWORKERS];
		const uint8_t		*name;
		size_t			 len;

		name = sub_group_name(g, &len);
		ck_assert_uint_eq(len, 2);
		for (s = 0; s < NWORKERS; s++)
			counts[s] = sub_group_remote_count(g, s);
		got_groups[i] = group_signature((unsigned)(name[1] - '0'),
		    sub_group_local_count(g), counts);
		for (j = 0; j < sub_group_local_count(g); j++) {
			if (ngm < POOL * NOWNERS)
				got_members[ngm] = *sub_group_local(g, j);
			ngm++;
		}
	}
	ck_assert_uint_eq(ngm, nem);
	qsort(got_groups, neg, sizeof(*got_groups), u64_cmp);
	qsort(expect_groups, neg, sizeof(*expect_groups), u64_cmp);
	ck_assert_mem_eq(got_groups, expect_groups, neg * sizeof(uint64_t));
	qsort(got_members, nem, sizeof(*got_members), hit_cmp);
	qsort(expect_members, nem, sizeof(*expect_members), hit_cmp);
	ck_assert_msg(same_hits(got_members, expect_members, nem),
	    "group members for %s", topic);
}

/* A random change to the table and the model alike. */
static void
random_change(int adding)
{
	char		 buf[64];
	size_t		 f = rnd(POOL);
	unsigned	 sh = rnd(NSHARES), o = rnd(NOWNERS);
	unsigned	 s = 1 + rnd(NWORKERS - 1);
	uint32_t	 id = 1 + rnd(1000), count, c;

	model_filter(buf, f, sh);
	if (rnd(4) == 0) {
		c = adding ? rnd(4) : 0;
		ck_assert_int_eq(remote(buf, s, c), 0);
		model_remote[f][sh][s] = c;
	} else if (adding) {
		ck_assert_int_eq(add_opts(buf, OWNER(o), 0, id, &count),
		    model_local[f][sh][o] != 0);
		model_local[f][sh][o] = id;
	} else {
		ck_assert_int_eq(rem(buf, OWNER(o)),
		    model_local[f][sh][o] == 0);
		model_local[f][sh][o] = 0;
	}
}

START_TEST(test_random_cross_check)
{
	char		 topic[64], buf[64];
	size_t		 i, f, k;
	unsigned	 sh, o, s;

	rng_state = 20240601UL + (unsigned long)_i;
	cross_hits = cross_shares = 0;
	memset(model_local, 0, sizeof(model_local));
	memset(model_remote, 0, sizeof(model_remote));
	/* Distinct filters: the model keys on the pool index. */
	for (i = 0; i < POOL; i++) {
		random_name(pool[i], 1);
		for (f = 0; f < i; f++)
			if (strcmp(pool[f], pool[i]) == 0)
				break;
		if (f < i)
			i--;
	}
	for (i = 0; i < 6000; i++)
		random_change(1);
	for (i = 0; i < 1500; i++) {
		random_name(topic, 0);
		cross_check(topic);
	}
	/* Churn, a worker restart, and checks in between. */
	for (k = 0; k < 4; k++) {
		for (i = 0; i < 2000; i++)
			random_change(rnd(3) == 0);
		s = 1 + rnd(NWORKERS - 1);
		sub_clear_remote(t, s);
		for (f = 0; f < POOL; f++)
			for (sh = 0; sh < NSHARES; sh++)
				model_remote[f][sh][s] = 0;
		for (i = 0; i < 500; i++) {
			random_name(topic, 0);
			cross_check(topic);
		}
	}
	ck_assert_uint_gt(cross_hits, 10000);
	ck_assert_uint_gt(cross_shares, 1000);
	/* Empty it: back to no nodes at all. */
	for (f = 0; f < POOL; f++)
		for (sh = 0; sh < NSHARES; sh++) {
			model_filter(buf, f, sh);
			for (o = 0; o < NOWNERS; o++)
				if (model_local[f][sh][o] != 0) {
					ck_assert_int_eq(rem(buf, OWNER(o)), 0);
					model_local[f][sh][o] = 0;
				}
			for (s = 1; s < NWORKERS; s++)
				if (model_remote[f][sh][s] != 0) {
					ck_assert_int_eq(remote(buf, s, 0), 0);
					model_remote[f][sh][s] = 0;
				}
		}
	ck_assert_uint_eq(sub_local_count(t), 0);
	ck_assert_uint_eq(sub_node_count(t), 0);
}
END_TEST

/* A test case of its own concern, each test on a fresh table. */
static TCase *
table_case(Suite *s, const char *name, int timeout)
{
	TCase	*tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	if (timeout > 0)
		tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *
sub_suite(void)
{
	Suite	*s = suite_create("sub");
	TCase	*tc;

	tcase_add_test(table_case(s, "exact", 0), test_exact);
	tc = table_case(s, "wildcards", 0);
	tcase_add_test(tc, test_plus);
	tcase_add_test(tc, test_pound);
	tcase_add_test(table_case(s, "dollar topics", 0), test_dollar);
	tcase_add_test(table_case(s, "empty levels", 0), test_empty_levels);
	tcase_add_test(table_case(s, "replace", 0), test_replace);
	tc = table_case(s, "remove and prune", 0);
	tcase_add_test(tc, test_remove_prune);
	tcase_add_test(tc, test_bad_arguments);
	/* Generous timeouts: these run under valgrind too. */
	tc = table_case(s, "scale", 120);
	tcase_add_test(tc, test_many_subscribers);
	tcase_add_test(tc, test_many_siblings);
	tc = table_case(s, "remote", 0);
	tcase_add_test(tc, test_remote);
	tcase_add_test(tc, test_remote_many_slots);
	tcase_add_test(table_case(s, "shared", 0), test_shared);
	tcase_add_test(table_case(s, "group text, turn, find", 0),
	    test_group_text_turn_find);
	tcase_add_test(table_case(s, "local filters", 0), test_local_filters);
	tc = table_case(s, "allocation", 120);
	tcase_add_test(tc, test_out_of_memory);
	tcase_add_test(tc, test_steady_state);
	tcase_add_loop_test(table_case(s, "random cross-check", 300),
	    test_random_cross_check, 0, 3);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(sub_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
