/*
 * log.c - formatting and delivery of log lines (see log.h).
 *
 * A line is formatted once into a stack buffer and handed to each target
 * with a single write(2), so lines from several processes appending to
 * the same file or terminal do not interleave.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX	4096
#define LOG_FILES_MAX	4

enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_LOGFMT };

static char	  last_error[LOG_LINE_MAX];
static void	(*fatal_hook)(const char *);

static const char *const level_names[] = {
	"error", "warn", "notice", "info", "debug"
};

static const int level_syslog[] = {
	LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG
};

static const struct {
	const char	*name;
	int		 facility;
} facilities[] = {
	{ "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

struct log_file {
	char	*path;
	int	 fd;
};

static struct {
	char		 role[32];
	int		 slot;
	enum log_level	 level;
	enum log_format	 format;
	int		 to_stderr;
	int		 to_syslog;
	int		 facility;
	struct log_file	 files[LOG_FILES_MAX];
	int		 nfiles;
} logger = {
	.role = "promptmq",
	.slot = -1,
	.level = LOG_LEVEL_INFO,
	.format = LOG_FORMAT_TEXT,
	.to_stderr = 1,
	.facility = LOG_DAEMON,
};

void
log_init(const char *role, int slot)
{
	snprintf(logger.role, sizeof(logger.role), "%s", role);
	logger.slot = slot;
}

void
log_set_slot(int slot)
{
	logger.slot = slot;
}

int
log_level_parse(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

int
log_enabled(enum log_level level)
{
	return level <= logger.level;
}

static void
close_targets(struct log_file *files, int nfiles)
{
	int	 i;

	for (i = 0; i < nfiles; i++) {
		if (files[i].fd != -1)
			close(files[i].fd);
		free(files[i].path);
	}
}

static int
open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
	    0640);
}

/*
 * Apply a new logging configuration.  Everything is checked and every
 * file opened before anything changes, so a bad reload keeps the old
 * targets.  NULL arguments leave that setting as it is.
 */
int
log_configure(const char *level, const char *format, const char *target,
    const char *facility, char *err, size_t errlen)
{
	struct log_file	 files[LOG_FILES_MAX];
	int		 nfiles = 0, to_stderr = 0, to_syslog = 0;
	int		 new_level = logger.level, new_format = logger.format;
	int		 new_facility = logger.facility;
	char		*copy = NULL, *tok, *save;
	size_t		 i;

	if (level && (new_level = log_level_parse(level)) == -1) {
		snprintf(err, errlen, "unknown log level '%s'", level);
		return -1;
	}
	if (format) {
		if (strcmp(format, "text") == 0)
			new_format = LOG_FORMAT_TEXT;
		else if (strcmp(format, "logfmt") == 0)
			new_format = LOG_FORMAT_LOGFMT;
		else {
			snprintf(err, errlen, "unknown log format '%s'", format);
			return -1;
		}
	}
	if (facility) {
		for (i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
			if (strcmp(facility, facilities[i].name) == 0)
				break;
		if (i == sizeof(facilities) / sizeof(facilities[0])) {
			snprintf(err, errlen, "unknown syslog facility '%s'",
			    facility);
			return -1;
		}
		new_facility = facilities[i].facility;
	}
	if (target) {
		if ((copy = strdup(target)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		for (tok = strtok_r(copy, ",", &save); tok;
		    tok = strtok_r(NULL, ",", &save)) {
			while (*tok == ' ')
				tok++;
			if (strcmp(tok, "stderr") == 0)
				to_stderr = 1;
			else if (strcmp(tok, "syslog") == 0)
				to_syslog = 1;
			else if (tok[0] == '/') {
				if (nfiles == LOG_FILES_MAX) {
					snprintf(err, errlen,
					    "at most %d log files", LOG_FILES_MAX);
					goto fail;
				}
				files[nfiles].path = strdup(tok);
				files[nfiles].fd = open_file(tok);
				if (files[nfiles].fd == -1) {
					snprintf(err, errlen,
					    "cannot open log file %s: %s", tok,
					    strerror(errno));
					free(files[nfiles].path);
					goto fail;
				}
				nfiles++;
			} else {
				snprintf(err, errlen,
				    "log target '%s' is not stderr, syslog or "
				    "an absolute file path", tok);
				goto fail;
			}
		}
		free(copy);
		copy = NULL;
		if (!to_stderr && !to_syslog && nfiles == 0) {
			snprintf(err, errlen, "no log target given");
			goto fail;
		}
	}

	logger.level = new_level;
	logger.format = new_format;
	if (target) {
		close_targets(logger.files, logger.nfiles);
		memcpy(logger.files, files, sizeof(files[0]) * nfiles);
		logger.nfiles = nfiles;
		logger.to_stderr = to_stderr;
		if (logger.to_syslog)
			closelog();
		logger.to_syslog = to_syslog;
	}
	logger.facility = new_facility;
	if (logger.to_syslog)
		openlog(logger.role, LOG_PID | LOG_NDELAY, logger.facility);
	return 0;
fail:
	free(copy);
	close_targets(files, nfiles);
	return -1;
}

/* Reopen log files after rotation; a file that fails keeps its old fd. */
int
log_reopen(void)
{
	int	 i, fd, rc = 0;

	for (i = 0; i < logger.nfiles; i++) {
		if ((fd = open_file(logger.files[i].path)) == -1) {
			log_warn("cannot reopen log file", "path=%s",
			    logger.files[i].path);
			rc = -1;
			continue;
		}
		close(logger.files[i].fd);
		logger.files[i].fd = fd;
	}
	return rc;
}

/* Hand the log files to the user the children run as. */
int
log_chown(uid_t uid, gid_t gid)
{
	int	 i, rc = 0;

	for (i = 0; i < logger.nfiles; i++)
		if (fchown(logger.files[i].fd, uid, gid) == -1) {
			log_warn("cannot hand log file over", "path=%s",
			    logger.files[i].path);
			rc = -1;
		}
	return rc;
}

void
log_close(void)
{
	close_targets(logger.files, logger.nfiles);
	logger.nfiles = 0;
	if (logger.to_syslog)
		closelog();
	logger.to_syslog = 0;
	logger.to_stderr = 1;
}

static void
write_all(int fd, const char *p, size_t n)
{
	ssize_t	 w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Append to line[*off], never past LOG_LINE_MAX - 1 (room for '\n'). */
static void
append(char *line, size_t *off, const char *fmt, ...) LOG_PRINTF(3, 4);

static void
append(char *line, size_t *off, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	if (*off >= LOG_LINE_MAX - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line + *off, LOG_LINE_MAX - 1 - *off, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*off += (size_t)n;
	if (*off > LOG_LINE_MAX - 2)
		*off = LOG_LINE_MAX - 2;
}

/*
 * A value quoted for logfmt when it has spaces, quotes, "=", a newline or
 * is empty; inside quotes, quotes, backslashes and newlines are escaped,
 * so a value never breaks its line in two.
 */
static void
append_quoted(char *line, size_t *off, const char *s)
{
	const char	*p;

	if (*s && strpbrk(s, " \"=\t\n") == NULL) {
		append(line, off, "%s", s);
		return;
	}
	append(line, off, "\"");
	for (p = s; *p; p++) {
		if (*p == '"' || *p == '\\')
			append(line, off, "\\%c", *p);
		else if (*p == '\n')
			append(line, off, "\\n");
		else
			append(line, off, "%c", *p);
	}
	append(line, off, "\"");
}

void
log_vlog(enum log_level level, int with_errno, const char *msg,
    const char *fmt, va_list ap)
{
	char		 line[LOG_LINE_MAX], stamp[64], who[48];
	const char	*errstr = NULL;
	size_t		 off = 0, body;
	struct timespec	 ts;
	struct tm	 tm;
	int		 saved_errno = errno, i;

	if (level > logger.level)
		return;
	if (with_errno)
		errstr = strerror(saved_errno);

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (ts.tv_nsec / 1000000) % 1000);
	if (logger.slot >= 0)
		snprintf(who, sizeof(who), "%s/%d", logger.role, logger.slot);
	else
		snprintf(who, sizeof(who), "%s", logger.role);

	if (logger.format == LOG_FORMAT_LOGFMT) {
		append(line, &off, "ts=%s level=%s role=%s", stamp,
		    level_names[level], logger.role);
		if (logger.slot >= 0)
			append(line, &off, " slot=%d", logger.slot);
		append(line, &off, " pid=%ld msg=", (long)getpid());
		body = off;
		append_quoted(line, &off, msg);
	} else {
		append(line, &off, "%s %s[%ld] %s: ", stamp, who,
		    (long)getpid(), level_names[level]);
		body = off;
		append(line, &off, "%s", msg);
	}
	if (fmt && *fmt && off < LOG_LINE_MAX - 2) {
		line[off++] = ' ';
		line[off] = '\0';
		if (off < LOG_LINE_MAX - 1) {
			int n = vsnprintf(line + off, LOG_LINE_MAX - 1 - off,
			    fmt, ap);
			if (n > 0)
				off += (size_t)n;
			if (off > LOG_LINE_MAX - 2)
				off = LOG_LINE_MAX - 2;
		}
	}
	if (errstr) {
		append(line, &off, " error=");
		append_quoted(line, &off, errstr);
	}
	line[off++] = '\n';
	/* kept for the fatal hook: the reason a process is about to die */
	if (level == LOG_LEVEL_ERROR)
		snprintf(last_error, sizeof(last_error), "%.*s",
		    (int)(off - body - 1), line + body);

	if (logger.to_stderr)
		write_all(STDERR_FILENO, line, off);
	for (i = 0; i < logger.nfiles; i++)
		write_all(logger.files[i].fd, line, off);
	if (logger.to_syslog) {
		/* syslog adds its own time and pid: send from the message on */
		line[off - 1] = '\0';
		syslog(level_syslog[level], "%s: %s", who, line + body);
	}
	errno = saved_errno;
}

#define LOG_FUNCTION(name, level, with_errno)				\
	void								\
	name(const char *msg, const char *fmt, ...)			\
	{								\
		va_list	 ap;						\
		va_start(ap, fmt);					\
		log_vlog(level, with_errno, msg, fmt, ap);		\
		va_end(ap);						\
	}

LOG_FUNCTION(log_error, LOG_LEVEL_ERROR, 0)
LOG_FUNCTION(log_warn, LOG_LEVEL_WARN, 1)
LOG_FUNCTION(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FUNCTION(log_notice, LOG_LEVEL_NOTICE, 0)
LOG_FUNCTION(log_info, LOG_LEVEL_INFO, 0)
LOG_FUNCTION(log_debug, LOG_LEVEL_DEBUG, 0)

/*
 * Called with the last error line just before a fatal exit: a child
 * tells its supervisor why it dies, so the operator reads it even when
 * the child's own log goes nowhere yet.
 */
void
log_set_fatal_hook(void (*hook)(const char *))
{
	fatal_hook = hook;
}

static void __attribute__((noreturn))
die(int status)
{
	if (fatal_hook)
		fatal_hook(last_error);
	exit(status);
}

void
fatal(const char *msg, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_ERROR, 1, msg, fmt, ap);
	va_end(ap);
	die(1);
}

void
fatalx(const char *msg, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_ERROR, 0, msg, fmt, ap);
	va_end(ap);
	die(1);
}

/* A fatal error with a chosen exit status (the do-not-respawn code). */
void
fatal_status(int status, const char *msg, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_ERROR, 0, msg, fmt, ap);
	va_end(ap);
	die(status);
}

void
log_panic(const char *file, int line, const char *fmt, ...)
{
	char	 text[512];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_error("internal error", "file=%s line=%d what=\"%s\"", file, line,
	    text);
	abort();
}

void
log_limited(struct log_ratelimit *rl, enum log_level level, const char *msg,
    const char *fmt, ...)
{
	struct timespec	 ts;
	va_list		 ap;

	if (level > logger.level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec - rl->window_start >= LOG_RATELIMIT_WINDOW) {
		if (rl->suppressed)
			log_warnx("log messages suppressed", "count=%u last=\"%s\"",
			    rl->suppressed, msg);
		rl->window_start = ts.tv_sec;
		rl->count = 0;
		rl->suppressed = 0;
	}
	if (rl->count >= LOG_RATELIMIT_BURST) {
		rl->suppressed++;
		return;
	}
	rl->count++;
	va_start(ap, fmt);
	log_vlog(level, 0, msg, fmt, ap);
	va_end(ap);
}

int
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}
