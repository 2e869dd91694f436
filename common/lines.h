/*
 * lines.h - reading a text file a line at a time, for the files the
 * broker takes from Mosquitto (password and ACL files): line endings
 * (LF or CRLF) and trailing blanks are not part of a line.
 */
#ifndef PMQ_LINES_H
#define PMQ_LINES_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/*
 * The next line of f into *line (grown as getline() does), its length
 * without the trailing newline and blanks in *len; *lineno counts.
 * Returns 1, or 0 at the end or on an error (ferror(f) tells).
 */
static inline int
lines_next(FILE *f, char **line, size_t *cap, size_t *len, unsigned *lineno)
{
	ssize_t	 n;

	if ((n = getline(line, cap, f)) == -1)
		return 0;
	(*lineno)++;
	*len = (size_t)n;
	while (*len > 0 && ((*line)[*len - 1] == '\n' ||
	    (*line)[*len - 1] == '\r' || (*line)[*len - 1] == ' ' ||
	    (*line)[*len - 1] == '\t'))
		(*len)--;
	return 1;
}

/* The length of s up to the next `sep` (or all of it). */
static inline size_t
line_field(const char *s, size_t len, char sep)
{
	const char	*d = memchr(s, sep, len);

	return d ? (size_t)(d - s) : len;
}

/*
 * The entries of a user file (passwd.c, scram.c) start as this does,
 * with the user's name: sorted with qsort(..., line_user_cmp) and found
 * with line_user_find().
 */
struct line_user {
	char	*user;
	size_t	 userlen;
};

#define LINE_USER_CHECK(type)						\
	_Static_assert(offsetof(type, user) ==				\
	    offsetof(struct line_user, user) && offsetof(type, userlen) ==	\
	    offsetof(struct line_user, userlen),				\
	    #type " does not start as struct line_user")

static inline int
line_user_cmp(const void *a, const void *b)
{
	const struct line_user	*x = a, *y = b;
	int			 c = memcmp(x->user, y->user, x->userlen <
				    y->userlen ? x->userlen : y->userlen);

	if (c != 0)
		return c;
	return x->userlen < y->userlen ? -1 : x->userlen > y->userlen;
}

static inline const void *
line_user_find(const void *base, size_t n, size_t size, const char *user,
    size_t len)
{
	struct line_user	 key = { (char *)user, len };

	return n == 0 ? NULL : bsearch(&key, base, n, size, line_user_cmp);
}

#endif /* PMQ_LINES_H */
