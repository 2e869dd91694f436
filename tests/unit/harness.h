/*
 * harness.h - what the unit suites of common/ share: running a suite,
 * scratch directories, and bounded waits on an event loop.
 *
 * Tests of code driven by libevent run the loop in the test process and
 * wait for a condition; every wait has a limit, so a broken module fails
 * its test instead of hanging the suite.
 */
#ifndef PMQ_TEST_HARNESS_H
#define PMQ_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include <check.h>

struct event_base;

/* Run every test of the suite; the process exit status. */
int	 harness_run(Suite *);
/* A test case added to the suite, with a checked fixture if setup. */
TCase	*harness_tcase(Suite *, const char *name, SFun setup, SFun teardown);
/* Tests run in forked children (CK_FORK is not "no"). */
int	 harness_forking(void);
/*
 * Called last by the teardown of a test that used nng.  A forked test
 * ends with its process: nng_fini() first waits until nng's threads have
 * freed what the closed sockets held, which LeakSanitizer would otherwise
 * report at exit whenever a busy machine leaves those threads behind.
 */
void	 harness_nng_done(void);

/* A fresh directory under /tmp, short enough for socket paths. */
void	 harness_tempdir(char *out, size_t outlen);
/* A temporary runtime directory with its endpoints' subdirectory. */
void	 harness_rundir(char *out, size_t outlen);
/* Remove the directory and the files in it. */
void	 harness_tempdir_remove(const char *dir);

/* The monotonic clock, in milliseconds. */
int64_t	 harness_now_ms(void);
/* Run the loop for ms milliseconds. */
void	 harness_run_for(struct event_base *, int ms);
/* Run the loop until done(arg) is true or ms pass; returns done(arg). */
int	 harness_run_until(struct event_base *, int (*done)(void *),
	    void *arg, int ms);

#endif /* PMQ_TEST_HARNESS_H */
