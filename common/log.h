/*
 * log.h - the one logging API of every PromptMQ process.
 *
 * A log call takes a constant message and printf-style key=value fields:
 *
 *	log_info("listener ready", "addr=%s port=%d", addr, port);
 *	log_warn("cannot open segment", "path=%s", path);   (adds error=...)
 *
 * Every line carries the time, the process role and slot and the pid, so
 * the lines of all processes can share one file or one terminal:
 *
 *	text:   2026-11-27T20:47:16.123Z worker/1[1234] info: listener ready addr=...
 *	logfmt: ts=2026-11-27T20:47:16.123Z level=info role=worker slot=1 pid=1234 msg="listener ready" addr=...
 *
 * Targets: "stderr", "syslog", a file path, or a comma-separated list of
 * them.  log_warn/fatal append the current errno; the x variants do not.
 * fatal/fatalx are for process-level code only: library code returns
 * errors.  panic() is for broken internal invariants (file and line).
 */
#ifndef PMQ_LOG_H
#define PMQ_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

#define LOG_PRINTF(m, n) __attribute__((format(printf, m, n)))

void	log_init(const char *role, int slot);
void	log_set_slot(int slot);
int	log_configure(const char *level, const char *format, const char *target,
	    const char *facility, char *err, size_t errlen);
int	log_reopen(void);
int	log_chown(uid_t, gid_t);
void	log_set_fatal_hook(void (*)(const char *));
void	log_close(void);
int	log_level_parse(const char *);
int	log_enabled(enum log_level);

/* A problem for a caller's message buffer (err may be NULL): -1. */
int	seterr(char *err, size_t errlen, const char *fmt, ...) LOG_PRINTF(3, 4);

void	log_error(const char *msg, const char *fmt, ...) LOG_PRINTF(2, 3);
void	log_warn(const char *msg, const char *fmt, ...) LOG_PRINTF(2, 3);
void	log_warnx(const char *msg, const char *fmt, ...) LOG_PRINTF(2, 3);
void	log_notice(const char *msg, const char *fmt, ...) LOG_PRINTF(2, 3);
void	log_info(const char *msg, const char *fmt, ...) LOG_PRINTF(2, 3);
void	log_debug(const char *msg, const char *fmt, ...) LOG_PRINTF(2, 3);
void	log_vlog(enum log_level, int with_errno, const char *msg,
	    const char *fmt, va_list) LOG_PRINTF(4, 0);

__attribute__((noreturn)) void fatal(const char *msg, const char *fmt, ...)
    LOG_PRINTF(2, 3);
__attribute__((noreturn)) void fatalx(const char *msg, const char *fmt, ...)
    LOG_PRINTF(2, 3);
__attribute__((noreturn)) void fatal_status(int status, const char *msg,
    const char *fmt, ...) LOG_PRINTF(3, 4);
__attribute__((noreturn)) void log_panic(const char *file, int line,
    const char *fmt, ...) LOG_PRINTF(3, 4);
#define panic(...) log_panic(__FILE__, __LINE__, __VA_ARGS__)

/*
 * Rate limiting for messages a peer can trigger at will (one per bad
 * packet, say): at most LOG_RATELIMIT_BURST lines per limiter in each
 * LOG_RATELIMIT_WINDOW seconds, then one line counting what was dropped.
 * Keep one static limiter per call site.
 */
#define LOG_RATELIMIT_BURST	10
#define LOG_RATELIMIT_WINDOW	10
struct log_ratelimit {
	int64_t		window_start;
	uint32_t	count;
	uint32_t	suppressed;
};
void	log_limited(struct log_ratelimit *, enum log_level, const char *msg,
	    const char *fmt, ...) LOG_PRINTF(4, 5);

#endif /* PMQ_LOG_H */
