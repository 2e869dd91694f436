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

enum option_origin {
	ORIGIN_DEFAULT = 0,
	ORIGIN_FILE,
	ORIGIN_ENV,
	ORIGIN_FLAG,
	ORIGIN_SUPERVISOR,	/* received over the control channel */
};

/*
 * A value: BOOL, INT, SIZE, DURATION and ENUM (index into choices) in
 * `num`; STRING, PATH and LIST (normalised to "a,b,c") in `str`.
 * `text` is the canonical text form, used to pass the configuration to
 * the children and to compare configurations on reload.
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
	char			*file;		/* the file read, or NULL */
	/* what the command line asked for besides options */
	int			 check_only;	/* -t */
	int			 show_help;	/* -h, --help */
	int			 show_version;	/* -V, --version */
};

/* Collected messages: errors stop loading, warnings do not. */
struct config_messages {
	char	**errors;
	size_t	  nerrors;
	char	**warnings;
	size_t	  nwarnings;
};

void	 config_init(struct config *);	/* every option at its default */
void	 config_free(struct config *);
void	 config_messages_free(struct config_messages *);

/*
 * The whole load for a process started from the command line:
 * argv is parsed for -c FILE first, then the file (default_file when no
 * -c; a missing default file is not an error, a missing -c file is),
 * the environment and finally the flags are applied.  Returns 0, or -1
 * with at least one error in msgs.
 */
int	 config_load(struct config *, int argc, char *const argv[],
	    char *const envp[], const char *default_file,
	    struct config_messages *msgs);

/* One value from text (a flag, a variable, the control channel). */
int	 config_set(struct config *, enum option_id, const char *text,
	    enum option_origin, char *err, size_t errlen);
int	 config_find(const char *name);	/* "group.leaf" -> id, or -1 */

/* Derived values and checks that involve several options. */
int	 config_finish(struct config *, struct config_messages *);

/* Typed accessors. */
int64_t		 config_num(const struct config *, enum option_id);
const char	*config_str(const struct config *, enum option_id);
const char	*config_text(const struct config *, enum option_id);
const char	*config_name(enum option_id, char *buf, size_t len);

/* Options whose text differs between two configurations. */
size_t	 config_diff(const struct config *, const struct config *,
	    enum option_id *out, size_t max);

/* Print usage (the flags, generated from the table). */
void	 config_usage(FILE *, const char *progname);

#endif /* PMQ_OPTIONS_H */
