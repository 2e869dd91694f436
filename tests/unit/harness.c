/*
 * harness.c - shared helpers of the unit suites (see harness.h).
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <nng/nng.h>

#include "harness.h"
#include "ipc_link.h"

/* How long one turn of harness_run_until() may run before it looks. */
#define SLICE_MS	2

int
harness_run(Suite *s)
{
	SRunner	*sr = srunner_create(s);
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (!harness_forking())
		nng_fini();	/* every test ran here: nng is done too */
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

TCase *
harness_tcase(Suite *s, const char *name, SFun setup, SFun teardown)
{
	TCase	*tc = tcase_create(name);

	if (setup != NULL || teardown != NULL)
		tcase_add_checked_fixture(tc, setup, teardown);
	suite_add_tcase(s, tc);
	return tc;
}

int
harness_forking(void)
{
	const char	*mode = getenv("CK_FORK");

	return mode == NULL || strcmp(mode, "no") != 0;
}

void
harness_nng_done(void)
{
	if (harness_forking())
		nng_fini();
}

void
harness_tempdir(char *out, size_t outlen)
{
	int	 n;

	n = snprintf(out, outlen, "/tmp/pmq-unit-XXXXXX");
	ck_assert(n > 0 && (size_t)n < outlen);
	ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp failed");
}

void
harness_rundir(char *out, size_t outlen)
{
	char	 sub[PATH_MAX];

	harness_tempdir(out, outlen);
	snprintf(sub, sizeof(sub), "%s/" IPC_SUBDIR, out);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
}

void
harness_tempdir_remove(const char *dir)
{
	struct dirent	*de;
	DIR		*d;
	char		 path[PATH_MAX];

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) == -1)
			harness_tempdir_remove(path);	/* a directory */
	}
	closedir(d);
	rmdir(dir);
}

static struct timeval
milliseconds(int ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/*
 * The loop ends by its own loopexit timer: no early break leaves a timer
 * behind that would cut the next wait short.
 */
void
harness_run_for(struct event_base *base, int ms)
{
	struct timeval	 tv = milliseconds(ms);

	ck_assert_int_eq(event_base_loopexit(base, &tv), 0);
	ck_assert_int_ne(event_base_dispatch(base), -1);
}

int64_t
harness_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
harness_run_until(struct event_base *base, int (*done)(void *), void *arg,
    int ms)
{
	int64_t	 deadline = harness_now_ms() + ms;

	while (!done(arg) && harness_now_ms() < deadline)
		harness_run_for(base, SLICE_MS);
	return done(arg);
}
