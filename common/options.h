/*
 * options.h - the option table and the configuration loader built on it.
 *
 * The table is options.def.  A struct config holds one typed value per
 * option plus where it came from (default, file, environment, flag), so
 * errors and `promptmqd -t` can say which source set what.
 *
 * Loading runs defaults -> file -> environment -> flags; later sources
 * win (flag > environment > file > default).  Every error names its
 * source: "FILE:LINE: GROUP.LEAF: problem", "PROMPTMQ_X: problem" or
 * "--flag: problem".
 *
 * The library never exits and prints only where asked (config_usage):
 * every function returns its errors.
 * A broken table (a default that does not parse) is a programming error
 * and panics.
 */
#ifndef PMQ_OPTIONS_H
#define PMQ_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum option_type {
	OPTION_BOOL,
	OPTION_INT,
	OPTION_SIZE,
	OPTION_DURATION,
	OPTION_STRING,
	OPTION_PATH,
	OPTION_ENUM,
	OPTION_LIST,
};

enum option_reload {
	OPTION_RESTART = 0,
	OPTION_RELOAD = 1,
};

enum option_id {
#define OPTION(id, group, leaf, type, def, min, max, choices, reload, help) \
	OPT_##id,
#include "options.def"
#undef OPTION
	OPT__COUNT
};

struct option_def {
	enum option_id		 id;
	const char		*group;
	const char		*leaf;
	enum option_type	 type;
	const char		*def;
	int64_t			 min;
	int64_t			 max;
	const char		*choices;	/* "a|b|c" for ENUM */
	enum option_reload	 reload;
	const char		*help;
};

extern const struct option_def option_table[OPT__COUNT];

/*
 * Short forms of common options (the OPTION_ALIAS lines of options.def):
 * "--bind" for --server-bind, "-d" for --server-daemon=true.
 */
struct option_alias {
	enum option_id	 id;
	const char	*flag;		/* long form without "--", or NULL */
	char		 letter;	/* short form, or 0 */
	const char	*value;		/* fixed value (-d), NULL: takes one */
};

extern const struct option_alias option_aliases[];
extern const size_t option_alias_count;

/* Names derived from the table, written into buf. */
const char	*option_type_name(enum option_type);
const char	*option_flag_name(enum option_id, char *buf, size_t len);
const char	*option_env_name(enum option_id, char *buf, size_t len);
/* Canonical text of a number of a type: "10s", "256MB", "42", "true". */
const char	*option_format_num(enum option_type, int64_t, char *buf,
		    size_t len);

enum option_origin {
	ORIGIN_DEFAULT = 0,
	ORIGIN_FILE,
	ORIGIN_ENV,
	ORIGIN_FLAG,
	ORIGIN_SUPERVISOR,	/* received over the control channel */
};

/*
 * A value: BOOL, INT, SIZE, DURATION and ENUM (index into choices) in
 * `num`; STRING, PATH, LIST (normalised to "a,b,c") and ENUM (the
 * choice) in `str`, which then points at `text`.  `text` is the
 * canonical text form, used to pass the configuration to the children
 * and to compare configurations on reload: config_set() of a text gives
 * back the same text.
 */
struct option_value {
	int64_t			 num;
	char			*str;
	char			*text;
	enum option_origin	 origin;
	int			 line;	/* file line when origin is FILE */
};

struct config {
	struct option_value	 v[OPT__COUNT];
	char			*file;	/* the file read (absolute), or NULL */
	/*
	 * The directory relative paths (in the file, the environment, the
	 * flags and -c itself) are taken from.  Loading records the current
	 * directory here; a reload after daemonizing (cwd is then /) sets
	 * it first with config_set_base_dir() from the running config.
	 */
	char			*base_dir;
	/* what the command line asked for besides options */
	int			 check_only;	/* -t */
	int			 show_help;	/* -h, --help */
	int			 show_version;	/* -V, --version */
};

/*
 * Collected messages: errors stop loading, warnings do not.  Start from
 * a zeroed struct; messages are appended.
 */
struct config_messages {
	char	**errors;
	size_t	  nerrors;
	char	**warnings;
	size_t	  nwarnings;
};

/*
 * Every option at its default.  Not config_init(): libconfig exports
 * that name, and ours would replace it at link time.  Returns -1 only
 * when memory runs out.
 */
int	 config_defaults(struct config *);
void	 config_free(struct config *);
int	 config_copy(struct config *dst, const struct config *src);
void	 config_messages_free(struct config_messages *);
int	 config_set_base_dir(struct config *, const char *dir);

/*
 * The whole load for a process started from the command line, onto a
 * config from config_defaults(): argv is parsed first (-c FILE, -t,
 * -h, -V and the option flags), then the file (-c FILE, else
 * $PROMPTMQ_CONFIG, else default_file, which may be NULL; a missing
 * default file is not an error, a missing named file is), the
 * environment (envp, or environ when NULL) and finally the flags are
 * applied, and config_finish() runs.  -h and -V stop after argv.
 * Returns 0, or -1 with the errors in msgs (every one found, not only
 * the first).
 */
int	 config_load(struct config *, int argc, char *const argv[],
	    char *const envp[], const char *default_file,
	    struct config_messages *msgs);

/*
 * One value from text (a flag, a variable, the control channel).  err
 * receives the problem without a source prefix.
 */
int	 config_set(struct config *, enum option_id, const char *text,
	    enum option_origin, char *err, size_t errlen);
int	 config_find(const char *name);	/* "group.leaf" -> id, or -1 */

/*
 * Derived values and checks that involve several options: PATH options
 * and log file targets made absolute from base_dir, storage.wal-dir
 * from storage.data-dir, the pidfile of a daemon, listen addresses.
 * Idempotent, so a child may run it on what the supervisor sent.
 */
int	 config_finish(struct config *, struct config_messages *);

/* Typed accessors. */
int64_t		 config_num(const struct config *, enum option_id);
const char	*config_str(const struct config *, enum option_id);
const char	*config_text(const struct config *, enum option_id);
const char	*config_name(enum option_id, char *buf, size_t len);
/* Where a value came from: "FILE:LINE", "PROMPTMQ_X", "--flag", ... */
const char	*config_source(const struct config *, enum option_id,
		    char *buf, size_t len);

/* Options whose text differs; returns how many, fills up to max. */
size_t	 config_diff(const struct config *, const struct config *,
	    enum option_id *out, size_t max);

/* log.level, log.format, log.target, log.syslog-facility -> log.h */
int	 config_apply_logging(const struct config *, char *err, size_t);

/* Print usage (the flags, generated from the table). */
void	 config_usage(FILE *, const char *progname);

#endif /* PMQ_OPTIONS_H */
