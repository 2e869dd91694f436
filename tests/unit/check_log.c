/*
 * check_log.c - unit tests of common/log.c, the logging of every process.
 *
 * Lines go to a file target in a scratch directory and are read back: in
 * both formats a line carries the time, role/slot, pid, level, message
 * and fields, and logfmt quotes what needs quoting; levels filter; the
 * errno variants add error=; a configuration that fails keeps the one
 * before it whole; the rate limiter lets a burst through, then counts
 * what it suppressed; fatal, fatalx and fatal_status exit with their
 * status after logging, and panic aborts after naming file and line.
 *
 * The exit tests need fork mode; under CK_FORK=no (valgrind) they are
 * left out, and the tests that fork a child of their own still run.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "ipc.h"
#include "log.h"

#define LINE_MAX_BYTES	4096	/* log.c formats a line in this much */

static char	 dir[64];
static char	 path[128];
static char	 text[65536];	/* the file, as last read */

/* Configure or fail the test. */
static void
configure(const char *level, const char *format, const char *target)
{
	char	 err[256];

	ck_assert_msg(log_configure(level, format, target, NULL, err,
	    sizeof(err)) == 0, "log_configure: %s", err);
}

static void
setup(void)
{
	harness_tempdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/test.log", dir);
	log_init("worker", 3);
	configure("info", "text", path);
}

static void
teardown(void)
{
	log_close();
	harness_tempdir_remove(dir);
}

/* The whole of a log file, NUL-terminated, in `text`. */
static const char *
read_file(const char *name)
{
	ssize_t	 n;
	size_t	 len = 0;
	int	 fd;

	fd = open(name, O_RDONLY);
	ck_assert_msg(fd != -1, "cannot open %s", name);
	while ((n = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	text[len] = '\0';
	return text;
}

static const char *
read_log(void)
{
	return read_file(path);
}

static int
occurrences(const char *s, const char *needle)
{
	int	 n = 0;

	for (; (s = strstr(s, needle)) != NULL; s++)
		n++;
	return n;
}

/* The file holds this many lines, and this text somewhere. */
static void
assert_log(int lines, const char *needle)
{
	read_log();
	ck_assert_int_eq(occurrences(text, "\n"), lines);
	if (needle != NULL)
		ck_assert_msg(strstr(text, needle) != NULL,
		    "'%s' not in the log:\n%s", needle, text);
}

/* The file matches this extended regex, made with printf. */
static void
assert_log_matches(const char *fmt, ...) LOG_PRINTF(1, 2);

static void
assert_log_matches(const char *fmt, ...)
{
	char	 pattern[512];
	regex_t	 re;
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(pattern, sizeof(pattern), fmt, ap);
	va_end(ap);
	read_log();
	ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&re, text, 0, NULL, 0) == 0,
	    "log does not match\n  %s\n  %s", pattern, text);
	regfree(&re);
}

/* The time at the start of every line, UTC to the millisecond. */
#define STAMP	"[0-9]{4}-[0-9]{2}-[0-9]{2}" \
		"T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

START_TEST(test_text_line)
{
	log_info("listener ready", "addr=%s port=%d", "127.0.0.1", 1883);
	assert_log_matches("^" STAMP " worker/3\\[%ld\\] info: listener ready "
	    "addr=127\\.0\\.0\\.1 port=1883\n$", (long)getpid());
}
END_TEST

START_TEST(test_text_without_slot)
{
	log_set_slot(-1);
	log_notice("ready", "");
	assert_log_matches("^" STAMP " worker\\[%ld\\] notice: ready\n$",
	    (long)getpid());
}
END_TEST

START_TEST(test_logfmt_line)
{
	configure(NULL, "logfmt", NULL);
	log_info("listener ready", "addr=%s port=%d", "127.0.0.1", 1883);
	assert_log_matches("^ts=" STAMP " level=info role=worker slot=3 "
	    "pid=%ld msg=\"listener ready\" addr=127\\.0\\.0\\.1 "
	    "port=1883\n$", (long)getpid());
}
END_TEST

START_TEST(test_logfmt_quoting)
{
	configure(NULL, "logfmt", NULL);
	log_set_slot(-1);
	log_info("ready", "");
	assert_log(1, " pid=");
	ck_assert_ptr_null(strstr(text, "slot="));
	ck_assert_ptr_nonnull(strstr(text, " msg=ready\n"));
	log_info("say \"hi\"", "");
	assert_log(2, " msg=\"say \\\"hi\\\"\"\n");
	log_info("", "");
	assert_log(3, " msg=\"\"\n");
	log_info("a=b", "");
	assert_log(4, " msg=\"a=b\"\n");
	log_info("two\nlines", "");
	assert_log(5, " msg=\"two\\nlines\"\n");
}
END_TEST

START_TEST(test_long_line_cut)
{
	static char	 field[3 * LINE_MAX_BYTES];
	size_t		 len;

	memset(field, 'x', sizeof(field) - 1);
	log_info("big", "value=%s", field);
	log_info("after", "");
	/* still one line each, the first cut short but ended */
	read_log();
	ck_assert_int_eq(occurrences(text, "\n"), 2);
	len = (size_t)(strchr(text, '\n') - text) + 1;
	ck_assert_uint_le(len, LINE_MAX_BYTES);
	ck_assert_uint_gt(len, LINE_MAX_BYTES - 16);
	ck_assert_int_eq(text[len - 2], 'x');
	ck_assert_ptr_nonnull(strstr(text, " info: after\n"));
}
END_TEST

START_TEST(test_levels)
{
	ck_assert_int_eq(log_level_parse("error"), LOG_LEVEL_ERROR);
	ck_assert_int_eq(log_level_parse("notice"), LOG_LEVEL_NOTICE);
	ck_assert_int_eq(log_level_parse("debug"), LOG_LEVEL_DEBUG);
	ck_assert_int_eq(log_level_parse("verbose"), -1);
	ck_assert_int_eq(log_level_parse("INFO"), -1);

	configure("warn", NULL, NULL);
	ck_assert_int_ne(log_enabled(LOG_LEVEL_WARN), 0);
	ck_assert_int_eq(log_enabled(LOG_LEVEL_NOTICE), 0);
	log_debug("debug line", "");
	log_info("info line", "");
	log_notice("notice line", "");
	log_warnx("warn line", "");
	log_error("error line", "");
	assert_log(2, "warn: warn line");
	assert_log(2, "error: error line");

	configure("debug", NULL, NULL);
	ck_assert_int_ne(log_enabled(LOG_LEVEL_DEBUG), 0);
	log_debug("debug line", "");
	assert_log(3, "debug: debug line");
}
END_TEST

START_TEST(test_warn_adds_errno)
{
	errno = ENOENT;
	log_warn("cannot open", "path=%s", "/x");
	/* the call leaves errno as it found it */
	ck_assert_int_eq(errno, ENOENT);
	assert_log(1, "warn: cannot open path=/x "
	    "error=\"No such file or directory\"\n");
	errno = ENOENT;
	log_warnx("cannot open", "path=%s", "/y");
	assert_log(2, "warn: cannot open path=/y\n");

	configure(NULL, "logfmt", NULL);
	errno = EACCES;
	log_warn("cannot open", "path=%s", "/z");
	assert_log(3, "msg=\"cannot open\" path=/z "
	    "error=\"Permission denied\"\n");
}
END_TEST

/* Configurations that must fail, and what the error says. */
static const struct {
	const char	*level, *format, *target, *facility;
	const char	*error;
} bad_configs[] = {
	{ "loud", NULL, NULL, NULL, "unknown log level 'loud'" },
	{ NULL, "json", NULL, NULL, "unknown log format 'json'" },
	{ NULL, NULL, NULL, "local9", "unknown syslog facility 'local9'" },
	{ NULL, NULL, "relative.log", NULL, "log target 'relative.log' is "
	    "not stderr, syslog or an absolute file path" },
	{ NULL, NULL, "/nonexistent-pmq-dir/x.log", NULL,
	    "cannot open log file /nonexistent-pmq-dir/x.log" },
	{ NULL, NULL, "", NULL, "no log target given" },
	{ NULL, NULL, ",", NULL, "no log target given" },
	/* a good level does not take effect when the target is bad */
	{ "debug", "logfmt", "stderr,bogus", NULL, "log target 'bogus'" },
};

START_TEST(test_configure_error_keeps_previous)
{
	char	 err[256];

	err[0] = '\0';
	ck_assert_int_eq(log_configure(bad_configs[_i].level,
	    bad_configs[_i].format, bad_configs[_i].target,
	    bad_configs[_i].facility, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, bad_configs[_i].error) != NULL,
	    "error '%s', expected '%s'", err, bad_configs[_i].error);
	/* still level info, text format, this file */
	log_debug("hidden", "");
	log_info("still here", "");
	assert_log(1, "] info: still here\n");
}
END_TEST

START_TEST(test_configure_too_many_files)
{
	char	 target[512], err[256];

	snprintf(target, sizeof(target), "%s/a,%s/b,%s/c,%s/d,%s/e", dir, dir,
	    dir, dir, dir);
	ck_assert_int_eq(log_configure(NULL, NULL, target, NULL, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "at most 4 log files");
	log_info("still here", "");
	assert_log(1, "still here");
}
END_TEST

START_TEST(test_configure_new_targets)
{
	char	 other[128], target[300];

	snprintf(other, sizeof(other), "%s/other.log", dir);
	/* a list, with a space after the comma */
	snprintf(target, sizeof(target), "%s, %s", path, other);
	configure(NULL, NULL, target);
	log_info("to both", "");
	assert_log(1, "to both");
	ck_assert_ptr_nonnull(strstr(read_file(other), "to both"));
	configure(NULL, NULL, other);
	log_info("to the other", "");
	assert_log(1, NULL);
	read_file(other);
	ck_assert_int_eq(occurrences(text, "\n"), 2);
	ck_assert_ptr_nonnull(strstr(text, "to the other"));
}
END_TEST

START_TEST(test_reopen)
{
	char	 rotated[160];

	log_info("before rotation", "");
	snprintf(rotated, sizeof(rotated), "%s.1", path);
	ck_assert_int_eq(rename(path, rotated), 0);
	log_info("still the old file", "");
	ck_assert_int_eq(log_reopen(), 0);
	log_info("after rotation", "");
	assert_log(1, "after rotation");
	read_file(rotated);
	ck_assert_int_eq(occurrences(text, "\n"), 2);
	ck_assert_ptr_nonnull(strstr(text, "still the old file"));
}
END_TEST

START_TEST(test_rate_limit)
{
	struct log_ratelimit	 rl;
	char			 want[128];
	int			 i;

	memset(&rl, 0, sizeof(rl));
	for (i = 0; i < LOG_RATELIMIT_BURST + 5; i++)
		log_limited(&rl, LOG_LEVEL_WARN, "bad packet", "n=%d", i);
	assert_log(LOG_RATELIMIT_BURST, "bad packet n=0\n");
	snprintf(want, sizeof(want), "bad packet n=%d\n",
	    LOG_RATELIMIT_BURST - 1);
	assert_log(LOG_RATELIMIT_BURST, want);
	/* the next window reports what the last one suppressed */
	rl.window_start -= LOG_RATELIMIT_WINDOW;
	log_limited(&rl, LOG_LEVEL_WARN, "bad packet", "n=%d", 99);
	assert_log(LOG_RATELIMIT_BURST + 2, "warn: log messages suppressed "
	    "count=5 last=\"bad packet\"\n");
	assert_log(LOG_RATELIMIT_BURST + 2, "bad packet n=99\n");
	/* and starts a new burst with nothing to report */
	rl.window_start -= LOG_RATELIMIT_WINDOW;
	log_limited(&rl, LOG_LEVEL_WARN, "bad packet", "n=%d", 100);
	assert_log(LOG_RATELIMIT_BURST + 3, "bad packet n=100\n");
	ck_assert_int_eq(occurrences(text, "suppressed"), 1);
}
END_TEST

START_TEST(test_rate_limit_below_level)
{
	struct log_ratelimit	 rl;
	int			 i;

	memset(&rl, 0, sizeof(rl));
	configure("error", NULL, NULL);
	/* lines that would not be written do not use up the burst */
	for (i = 0; i < 2 * LOG_RATELIMIT_BURST; i++)
		log_limited(&rl, LOG_LEVEL_WARN, "bad packet", "n=%d", i);
	ck_assert_uint_eq(rl.count, 0);
	ck_assert_uint_eq(rl.suppressed, 0);
	assert_log(0, NULL);
}
END_TEST

/* Run fn in a child of this test; its wait status. */
static int
run_child(void (*fn)(void))
{
	pid_t	 pid;
	int	 status;

	/* what stdio holds now must not be written twice */
	fflush(NULL);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		fn();
		_exit(99);	/* fn should not have returned */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static void
call_fatal(void)
{
	errno = EACCES;
	fatal("cannot bind", "port=%d", 1883);
}

static void
call_fatal_status(void)
{
	fatal_status(PMQ_EXIT_NORESPAWN, "envelope version mismatch",
	    "want=%d", 7);
}

/* An expected abort leaves no core file behind. */
static void
no_core_file(void)
{
	struct rlimit	 rl = { 0, 0 };

	ck_assert_int_eq(setrlimit(RLIMIT_CORE, &rl), 0);
}

static void
call_panic(void)
{
	no_core_file();
	panic("queue length %d below zero", -1);
}

START_TEST(test_fatal_logs_before_exit)
{
	int	 status;

	status = run_child(call_fatal);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 1);
	assert_log(1, "] error: cannot bind port=1883 "
	    "error=\"Permission denied\"\n");
	status = run_child(call_fatal_status);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), PMQ_EXIT_NORESPAWN);
	assert_log(2, "] error: envelope version mismatch want=7\n");
}
END_TEST

START_TEST(test_panic_names_the_place)
{
	int	 status;

	status = run_child(call_panic);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(WTERMSIG(status), SIGABRT);
	assert_log(1, "] error: internal error file=");
	assert_log(1, "check_log.c line=");
	assert_log(1, " what=\"queue length -1 below zero\"\n");
}
END_TEST

/*
 * The exit tests log to /dev/null: a fixture's teardown does not run
 * after an exit, so there is no scratch directory to remove.
 */
static void
log_to_nowhere(void)
{
	configure("info", "text", "/dev/null");
	no_core_file();
}

START_TEST(test_fatal_exits)
{
	call_fatal();
}
END_TEST

START_TEST(test_fatalx_exits)
{
	fatalx("exited event loop", "");
}
END_TEST

START_TEST(test_fatal_status_exits)
{
	call_fatal_status();
}
END_TEST

START_TEST(test_panic_aborts)
{
	panic("broken invariant");
}
END_TEST

static Suite *
log_suite(void)
{
	Suite	*s = suite_create("log");
	TCase	*tc;

	tc = harness_tcase(s, "format", setup, teardown);
	tcase_add_test(tc, test_text_line);
	tcase_add_test(tc, test_text_without_slot);
	tcase_add_test(tc, test_logfmt_line);
	tcase_add_test(tc, test_logfmt_quoting);
	tcase_add_test(tc, test_long_line_cut);

	tc = harness_tcase(s, "levels and errno", setup, teardown);
	tcase_add_test(tc, test_levels);
	tcase_add_test(tc, test_warn_adds_errno);

	tc = harness_tcase(s, "configuration", setup, teardown);
	tcase_add_loop_test(tc, test_configure_error_keeps_previous, 0,
	    sizeof(bad_configs) / sizeof(bad_configs[0]));
	tcase_add_test(tc, test_configure_too_many_files);
	tcase_add_test(tc, test_configure_new_targets);
	tcase_add_test(tc, test_reopen);

	tc = harness_tcase(s, "rate limit", setup, teardown);
	tcase_add_test(tc, test_rate_limit);
	tcase_add_test(tc, test_rate_limit_below_level);

	tc = harness_tcase(s, "fatal", setup, teardown);
	tcase_add_test(tc, test_fatal_logs_before_exit);
	tcase_add_test(tc, test_panic_names_the_place);

	/* exiting ends the whole run without fork mode */
	if (harness_forking()) {
		tc = harness_tcase(s, "exit status", log_to_nowhere, NULL);
		tcase_add_exit_test(tc, test_fatal_exits, 1);
		tcase_add_exit_test(tc, test_fatalx_exits, 1);
		tcase_add_exit_test(tc, test_fatal_status_exits,
		    PMQ_EXIT_NORESPAWN);
		tcase_add_test_raise_signal(tc, test_panic_aborts, SIGABRT);
	}
	return s;
}

int
main(void)
{
	return harness_run(log_suite());
}
