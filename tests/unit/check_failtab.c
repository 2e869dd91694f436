/*
 * check_failtab.c - unit tests of common/failtab.c: failed logins by
 * address in a table shared by processes.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "failtab.h"
#include "harness.h"

static struct failtab	*tab;
static void		*mem;

static void
setup(void)
{
	mem = mmap(NULL, failtab_size(), PROT_READ | PROT_WRITE, MAP_SHARED |
	    MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(mem, MAP_FAILED);
	ck_assert_int_eq(failtab_init(mem), 0);
	tab = failtab_of(mem, failtab_size());
	ck_assert_ptr_nonnull(tab);
}

static void
teardown(void)
{
	munmap(mem, failtab_size());
}

static struct failtab_key
key(const char *addr)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*in6 = (struct sockaddr_in6 *)&ss;
	struct failtab_key	 k;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1)
		in4->sin_family = AF_INET;
	else {
		ck_assert_int_eq(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
		in6->sin6_family = AF_INET6;
	}
	ck_assert_int_eq(failtab_key((struct sockaddr *)&ss, &k), 0);
	return k;
}

static void
note(const char *addr, int times, uint32_t now)
{
	struct failtab_key	 k = key(addr);

	while (times-- > 0)
		failtab_note(tab, &k, now);
}

static uint32_t
count(const char *addr, uint32_t now)
{
	struct failtab_key	 k = key(addr);

	return failtab_count(tab, &k, now);
}

START_TEST(test_counts_by_address)
{
	note("192.0.2.1", 3, 1000);
	ck_assert_uint_eq(count("192.0.2.1", 1000), 3);
	ck_assert_uint_eq(count("192.0.2.2", 1000), 0);
	/* an IPv4-mapped IPv6 address is its IPv4 address */
	ck_assert_uint_eq(count("::ffff:192.0.2.1", 1000), 3);
	/* IPv6: one /64 is one client */
	note("2001:db8:1:2::1", 2, 1000);
	ck_assert_uint_eq(count("2001:db8:1:2:ffff::9", 1000), 2);
	ck_assert_uint_eq(count("2001:db8:1:3::1", 1000), 0);
	ck_assert_uint_eq(count("::1", 1000), 0);
}
END_TEST

/* A minute without failures forgets them; another failure starts at 1. */
START_TEST(test_window)
{
	note("198.51.100.7", 5, 2000);
	ck_assert_uint_eq(count("198.51.100.7", 2000 + FAILTAB_WINDOW_S), 5);
	ck_assert_uint_eq(count("198.51.100.7", 2001 + FAILTAB_WINDOW_S), 0);
	note("198.51.100.7", 1, 2001 + FAILTAB_WINDOW_S);
	ck_assert_uint_eq(count("198.51.100.7", 2001 + FAILTAB_WINDOW_S), 1);
}
END_TEST

/* Another process's failures count: the memory is the table. */
START_TEST(test_shared_between_processes)
{
	pid_t	 pid;
	int	 st;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		note("203.0.113.9", 4, 500);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_uint_eq(count("203.0.113.9", 500), 4);
}
END_TEST

/* Many addresses: collisions only ever count too much, never too little. */
START_TEST(test_many_addresses)
{
	char	 a[32];
	int	 i, exact = 0;

	for (i = 0; i < 20000; i++) {
		snprintf(a, sizeof(a), "10.%d.%d.1", i / 256, i % 256);
		note(a, 1, 100);
	}
	for (i = 0; i < 20000; i++) {
		snprintf(a, sizeof(a), "10.%d.%d.1", i / 256, i % 256);
		ck_assert_uint_ge(count(a, 100), 1);
		exact += count(a, 100) == 1;
	}
	/* a botnet's worth of addresses in a minute: nearly all of them
	 * still see their own count (two rows of 65,536 cells, 1 MiB) */
	ck_assert_int_gt(exact, 20000 * 8 / 10);
	ck_assert_ptr_null(failtab_of(mem, failtab_size() - 1));
}
END_TEST

static Suite *
failtab_suite(void)
{
	Suite	*s = suite_create("failtab");
	TCase	*tc;

	tc = harness_tcase(s, "counting", setup, teardown);
	tcase_add_test(tc, test_counts_by_address);
	tcase_add_test(tc, test_window);
	tcase_add_test(tc, test_shared_between_processes);
	tcase_add_test(tc, test_many_addresses);
	return s;
}

int
main(void)
{
	return harness_run(failtab_suite());
}
