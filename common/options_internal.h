/*
 * options_internal.h - what the option modules share and nobody else
 * needs: message collection, name suggestions, and the file reader.
 *
 * options.c holds the table and the values, options_file.c reads the
 * libconfig file, options_load.c runs the whole load (argv, environment)
 * and prints the usage.
 */
#ifndef PMQ_OPTIONS_INTERNAL_H
#define PMQ_OPTIONS_INTERNAL_H

#include <stddef.h>

#include "log.h"
#include "options.h"

/* Longest "group.leaf", "--group-leaf" or "PROMPTMQ_GROUP_LEAF". */
#define OPTION_NAME_MAX 80

/* Append a message; -1 when memory ran out (the message is lost). */
int	option_error(struct config_messages *, const char *fmt, ...)
	    LOG_PRINTF(2, 3);
int	option_warning(struct config_messages *, const char *fmt, ...)
	    LOG_PRINTF(2, 3);
/* Move every message of src to the end of dst. */
int	option_messages_move(struct config_messages *dst,
	    struct config_messages *src);

/*
 * "Did you mean": feed candidates to option_suggest_try(); the result
 * is the closest one within a few edits of the word, or NULL.
 */
struct option_suggest {
	const char	*word;
	size_t		 wordlen;
	size_t		 best_distance;
	char		 best[OPTION_NAME_MAX];
};

void		 option_suggest_init(struct option_suggest *, const char *word,
		    size_t wordlen);
void		 option_suggest_try(struct option_suggest *, const char *);
const char	*option_suggest_result(const struct option_suggest *);

/* "group.leaf" of n bytes -> id, or -1. */
int	option_find_name(const char *name, size_t n);

/*
 * Apply the libconfig file at path (read as written, or from base_dir
 * when relative and base_dir is set); a missing file is an error only
 * when must_exist.  Returns -1 if anything was wrong.
 */
int	option_file_load(struct config *, const char *path, int must_exist,
	    struct config_messages *);

/* base + "/" + path (path alone when absolute), without "." components,
 * repeated or trailing slashes.  NULL when memory runs out. */
char	*option_path_absolute(const char *base, const char *path);

#endif /* PMQ_OPTIONS_INTERNAL_H */
