/*
 * subbench.c - speed and memory of the subscription table (common/sub.c).
 *
 *	subbench [SECONDS]
 *
 * 1) sub_match() calls per second against 10,000 filters (exact, '+',
 *    '#' and $share, with three other workers announcing 2,500 filters
 *    each) for random topic names, some matching and some not;
 * 2) the same against 100,000 sibling device filters ("dev/ID/cmd");
 * 3) heap bytes per subscription (glibc's mallinfo2, so malloc's own
 *    overhead is counted): one unique filter per connection, many
 *    subscribers of one filter, members of one shared group, remote
 *    announcements;
 * 4) a disconnect storm: removing 100,000 subscribers of one filter in
 *    random order, and sub_clear_remote() of a slot with 100,000 filters.
 * Not built by default: make tests/tools/subbench.
 */
#include "config.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sub.h"
#include "topic.h"

#define NBIG	100000

static unsigned long	rng_state = 88172645463325252UL;

static unsigned
rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t
heap_in_use(void)
{
	return mallinfo2().uordblks;
}

/* Distinct owners: addresses in this array. */
static char	owners[NBIG];

static struct topic_filter
parse(const char *filter)
{
	struct topic_filter	 tf;

	if (topic_filter_parse((const uint8_t *)filter, strlen(filter), &tf) !=
	    TOPIC_OK)
		fatalx("bad filter", "filter=%s", filter);
	return tf;
}

static void
add(struct sub_table *t, const char *filter, size_t owner)
{
	struct topic_filter	 tf = parse(filter);
	struct sub_options	 o = { 1, 0, 0, 0, 0 };
	uint32_t		 count;

	if (sub_add_local(t, &tf, &owners[owner], &o, &count) == -1)
		fatal("sub_add_local", NULL);
}

static void
add_remote(struct sub_table *t, const char *filter, unsigned slot)
{
	struct topic_filter	 tf = parse(filter);

	if (sub_set_remote(t, &tf, slot, 1) == -1)
		fatal("sub_set_remote", NULL);
}

static const char	*metrics[] = { "temp", "hum", "volt", "rssi" };

/* One of the 10k filters of the mixed table. */
static void
mixed_filter(char *buf, size_t len, unsigned i)
{
	unsigned	 site = rnd(20), dev = rnd(500), m = rnd(4), kind;

	kind = i % 20;
	if (kind < 12)
		snprintf(buf, len, "site/%u/dev/%u/%s", site, dev, metrics[m]);
	else if (kind < 15)
		snprintf(buf, len, "site/%u/dev/+/%s", site, metrics[m]);
	else if (kind < 17)
		snprintf(buf, len, "site/%u/dev/%u/#", site, dev);
	else if (kind < 18)
		snprintf(buf, len, "site/+/dev/%u/+", dev);
	else
		snprintf(buf, len, "$share/g%u/site/%u/dev/+/%s", rnd(4),
		    site, metrics[m]);
}

static void
mixed_topic(char *buf, size_t len)
{
	/* One topic in four is outside the filters' site range. */
	snprintf(buf, len, "site/%u/dev/%u/%s", rnd(25), rnd(500),
	    metrics[rnd(4)]);
}

/* Matches per second over random topics; reports the average result. */
static void
bench_match(struct sub_table *t, const char *what, double seconds,
    void (*topic)(char *, size_t))
{
	static char		 topics[4096][64];
	struct sub_match	 m;
	double			 start, elapsed;
	unsigned long		 n = 0, hits = 0, shares = 0, remote = 0;
	size_t			 i;

	memset(&m, 0, sizeof(m));
	for (i = 0; i < 4096; i++)
		topic(topics[i], sizeof(topics[i]));
	start = now();
	do {
		for (i = 0; i < 4096; i++) {
			if (sub_match(t, (const uint8_t *)topics[i],
			    strlen(topics[i]), &m) == -1)
				fatal("sub_match", NULL);
			hits += m.nhits;
			shares += m.nshares;
			remote += m.workers[0] != 0;
		}
		n += 4096;
		elapsed = now() - start;
	} while (elapsed < seconds);
	printf("%s: %.0f matches/s (%.0f ns each); per match %.2f local hits,"
	    " %.2f groups, %.0f%% with remote workers\n", what,
	    (double)n / elapsed, elapsed * 1e9 / (double)n,
	    (double)hits / (double)n, (double)shares / (double)n,
	    100.0 * (double)remote / (double)n);
	sub_match_free(&m);
}

static void
device_topic(char *buf, size_t len)
{
	snprintf(buf, len, "dev/%u/cmd", rnd(NBIG + NBIG / 4));
}

/* Heap per subscription for n subscriptions made by make(i). */
static void
bench_memory(const char *what, void (*make)(struct sub_table *, size_t))
{
	struct sub_table	*t;
	size_t			 before, i;

	before = heap_in_use();
	if ((t = sub_table_new(8, 0)) == NULL)
		fatal("sub_table_new", NULL);
	for (i = 0; i < NBIG; i++)
		make(t, i);
	printf("memory, %s: %.1f bytes per subscription (%zu nodes)\n", what,
	    (double)(heap_in_use() - before) / NBIG, sub_node_count(t));
	sub_table_free(t);
}

static void
make_unique(struct sub_table *t, size_t i)
{
	char	 f[64];

	snprintf(f, sizeof(f), "dev/%zu/cmd", i);
	add(t, f, i);
}

static void
make_same(struct sub_table *t, size_t i)
{
	add(t, "broadcast/all", i);
}

static void
make_shared(struct sub_table *t, size_t i)
{
	add(t, "$share/workers/jobs/#", i);
}

static void
make_remote(struct sub_table *t, size_t i)
{
	char	 f[64];

	snprintf(f, sizeof(f), "dev/%zu/cmd", i);
	add_remote(t, f, 1);
}

static void
bench_storm(void)
{
	struct sub_table	*t;
	struct topic_filter	 tf;
	static size_t		 order[NBIG];
	size_t			 i, j, tmp;
	uint32_t		 count;
	double			 start;
	char			 f[64];

	if ((t = sub_table_new(8, 0)) == NULL)
		fatal("sub_table_new", NULL);
	for (i = 0; i < NBIG; i++) {
		add(t, "broadcast/all", i);
		order[i] = i;
	}
	for (i = NBIG - 1; i > 0; i--) {
		j = rnd((unsigned)i + 1);
		tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	tf = parse("broadcast/all");
	start = now();
	for (i = 0; i < NBIG; i++)
		if (sub_remove_local(t, &tf, &owners[order[i]], &count) != 0)
			fatalx("remove failed", NULL);
	printf("disconnect storm: %d subscribers of one filter removed in "
	    "%.1f ms (%.0f ns each)\n", NBIG, (now() - start) * 1e3,
	    (now() - start) * 1e9 / NBIG);
	for (i = 0; i < NBIG; i++) {
		snprintf(f, sizeof(f), "dev/%zu/cmd", i);
		add_remote(t, f, 1);
		if (i % 10 == 0)
			add_remote(t, f, 2);
	}
	start = now();
	sub_clear_remote(t, 1);
	printf("worker restart: sub_clear_remote of %d filters in %.1f ms "
	    "(%zu nodes left)\n", NBIG, (now() - start) * 1e3,
	    sub_node_count(t));
	sub_table_free(t);
}

int
main(int argc, char **argv)
{
	struct sub_table	*t;
	double			 seconds = argc > 1 ? atof(argv[1]) : 2.0;
	char			 f[64];
	unsigned		 i, s;

	log_init("subbench", -1);
	if ((t = sub_table_new(4, 0)) == NULL)
		fatal("sub_table_new", NULL);
	for (i = 0; i < 10000; i++) {
		mixed_filter(f, sizeof(f), i);
		add(t, f, i);
	}
	for (s = 1; s < 4; s++)
		for (i = 0; i < 2500; i++) {
			mixed_filter(f, sizeof(f), i * 7 + s);
			add_remote(t, f, s);
		}
	printf("mixed table: %zu local subscriptions, %zu nodes\n",
	    sub_local_count(t), sub_node_count(t));
	bench_match(t, "10k mixed filters", seconds, mixed_topic);
	sub_table_free(t);

	if ((t = sub_table_new(4, 0)) == NULL)
		fatal("sub_table_new", NULL);
	for (i = 0; i < NBIG; i++)
		make_unique(t, i);
	bench_match(t, "100k sibling filters", seconds, device_topic);
	sub_table_free(t);

	bench_memory("one unique filter each (dev/ID/cmd)", make_unique);
	bench_memory("100k subscribers of one filter", make_same);
	bench_memory("100k members of one shared group", make_shared);
	bench_memory("remote interest, unique filters", make_remote);
	bench_storm();
	return 0;
}
