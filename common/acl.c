/*
 * acl.c - Mosquitto-format access control lists (see acl.h).
 *
 * Rules are kept in file order, each with whom it is for (clients
 * without a user name, one user, everyone), its access and its filter.
 * A check walks them: a few dozen rules cost far less than the delivery
 * they guard, and a broker without an ACL file checks nothing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "lines.h"
#include "topic.h"

#define ACL_DENY	0x4

enum acl_for {
	FOR_ANONYMOUS,		/* topic lines before any user line */
	FOR_USER,		/* topic lines after "user NAME" */
	FOR_ALL,		/* pattern lines */
};

struct acl_rule {
	uint8_t		 who;		/* enum acl_for */
	uint8_t		 access;	/* ACL_READ | ACL_WRITE, or ACL_DENY */
	uint8_t		 substitutes;	/* a pattern with %c or %u */
	uint8_t		 needs_user;	/* ... with %u */
	char		*user;		/* FOR_USER */
	size_t		 userlen;
	char		*filter;
	size_t		 len;
};

struct acl {
	struct acl_rule	*rules;
	size_t		 n, cap;
	unsigned	 refs;
};

/* The level of s at *pos (up to '/' or the end); advances *pos. */
static int
next_level(const char *s, size_t len, size_t *pos, const char **lvl,
    size_t *lvllen)
{
	const char	*slash;

	if (*pos > len)
		return 0;
	*lvl = s + *pos;
	slash = memchr(*lvl, '/', len - *pos);
	*lvllen = slash ? (size_t)(slash - *lvl) : len - *pos;
	*pos += *lvllen + 1;
	return 1;
}

static int
is(const char *lvl, size_t n, const char *word)
{
	return n == strlen(word) && memcmp(lvl, word, n) == 0;
}

/* Does the filter match the topic (MQTT 4.7)?  topic.c's rule. */
static int
filter_matches(const char *f, size_t flen, const char *t, size_t tlen)
{
	return topic_match((const uint8_t *)f, flen, (const uint8_t *)t, tlen);
}

/* Could one topic match both filters? */
static int
filters_overlap(const char *a, size_t alen, const char *b, size_t blen)
{
	const char	*al = NULL, *bl = NULL;
	size_t		 ap = 0, bp = 0, an = 0, bn = 0;
	int		 more_a, more_b;

	if (alen > 0 && blen > 0 && ((a[0] == '$' && (b[0] == '+' ||
	    b[0] == '#')) || (b[0] == '$' && (a[0] == '+' || a[0] == '#'))))
		return 0;
	for (;;) {
		more_a = next_level(a, alen, &ap, &al, &an);
		more_b = next_level(b, blen, &bp, &bl, &bn);
		if (!more_a || !more_b)
			return (!more_a && !more_b) || (more_a && is(al, an,
			    "#")) || (more_b && is(bl, bn, "#"));
		if (is(al, an, "#") || is(bl, bn, "#"))
			return 1;
		if (!is(al, an, "+") && !is(bl, bn, "+") && (an != bn ||
		    memcmp(al, bl, an) != 0))
			return 0;
	}
}

/* Does filter d match every topic filter f matches? */
static int
filter_covers(const char *d, size_t dlen, const char *f, size_t flen)
{
	const char	*dl = NULL, *fl = NULL;
	size_t		 dp = 0, fp = 0, dn = 0, fn = 0;
	int		 more_d, more_f;

	if (flen > 0 && f[0] == '$' && dlen > 0 && (d[0] == '+' ||
	    d[0] == '#'))
		return 0;
	for (;;) {
		more_d = next_level(d, dlen, &dp, &dl, &dn);
		more_f = next_level(f, flen, &fp, &fl, &fn);
		if (more_d && is(dl, dn, "#"))
			return 1;
		if (!more_d || !more_f)
			return !more_d && !more_f;
		if (is(fl, fn, "#"))
			return 0;
		if (is(dl, dn, "+"))
			continue;
		if (is(fl, fn, "+") || dn != fn || memcmp(dl, fl, dn) != 0)
			return 0;
	}
}

/*
 * A pattern's filter for this client into buf: %c and %u levels
 * replaced.  Returns its length, or -1 when the rule is not for it (no
 * user name, a value that is not one level, too long).
 */
static ssize_t
expand(const struct acl_rule *r, const char *user, size_t userlen,
    const char *cid, size_t cidlen, char *buf, size_t bufmax)
{
	const char	*lvl = NULL, *v;
	size_t		 pos = 0, n = 0, vn, out = 0;

	while (next_level(r->filter, r->len, &pos, &lvl, &n)) {
		v = lvl;
		vn = n;
		if (is(lvl, n, "%c")) {
			v = cid;
			vn = cidlen;
		} else if (is(lvl, n, "%u")) {
			if (user == NULL)
				return -1;
			v = user;
			vn = userlen;
		}
		if (v != lvl && (vn == 0 || memchr(v, '/', vn) || memchr(v,
		    '+', vn) || memchr(v, '#', vn)))
			return -1;
		if (out + vn + 1 > bufmax)
			return -1;
		if (out > 0)
			buf[out++] = '/';
		memcpy(buf + out, v, vn);
		out += vn;
	}
	return (ssize_t)out;
}

static int
applies(const struct acl_rule *r, const char *user, size_t userlen)
{
	switch (r->who) {
	case FOR_ANONYMOUS:
		return user == NULL;
	case FOR_USER:
		return user != NULL && userlen == r->userlen &&
		    memcmp(user, r->user, userlen) == 0;
	default:
		return !r->needs_user || user != NULL;
	}
}

/*
 * The one walk of both checks: every rule that applies to the client,
 * with its filter expanded for it; a deny rule that `denies` s refuses at
 * once, a rule with the access that `grants` s is needed.
 */
static int
decide(const struct acl *acl, const char *user, size_t userlen,
    const char *cid, size_t cidlen, const char *s, size_t len, int access,
    int (*grants)(const char *, size_t, const char *, size_t),
    int (*denies)(const char *, size_t, const char *, size_t))
{
	char		 buf[65536];
	const char	*f;
	size_t		 i;
	ssize_t		 n;
	int		 granted = 0;

	for (i = 0; i < acl->n; i++) {
		const struct acl_rule *r = &acl->rules[i];

		if (!applies(r, user, userlen))
			continue;
		/* only a pattern with %c or %u is rewritten per client */
		if (r->substitutes) {
			if ((n = expand(r, user, userlen, cid, cidlen, buf,
			    sizeof(buf))) < 0)
				continue;
			f = buf;
		} else {
			f = r->filter;
			n = (ssize_t)r->len;
		}
		if (r->access == ACL_DENY) {
			if (denies(f, (size_t)n, s, len))
				return 0;
		} else if ((r->access & access) && !granted &&
		    grants(f, (size_t)n, s, len))
			granted = 1;
	}
	return granted;
}

int
acl_check(const struct acl *acl, const char *user, size_t userlen,
    const char *cid, size_t cidlen, const void *topic, size_t len,
    int access)
{
	return decide(acl, user, userlen, cid, cidlen, topic, len, access,
	    filter_matches, filter_matches);
}

int
acl_may_subscribe(const struct acl *acl, const char *user, size_t userlen,
    const char *cid, size_t cidlen, const void *filter, size_t len)
{
	return decide(acl, user, userlen, cid, cidlen, filter, len, ACL_READ,
	    filters_overlap, filter_covers);
}

/* --------------------------------------------------------------------- */

static const char *
skip_space(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

/* The word at s (up to a space), its length. */
static size_t
word(const char *s, const char *end)
{
	const char	*p = s;

	while (p < end && *p != ' ' && *p != '\t')
		p++;
	return (size_t)(p - s);
}

static char *
dup_n(const char *s, size_t n)
{
	char	*d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static int
add_rule(struct acl *acl, const struct acl_rule *r)
{
	struct acl_rule	*grown;
	size_t		 cap;

	if (acl->n == acl->cap) {
		cap = acl->cap ? acl->cap * 2 : 16;
		if ((grown = realloc(acl->rules, cap * sizeof(*grown))) == NULL)
			return -1;
		acl->rules = grown;
		acl->cap = cap;
	}
	acl->rules[acl->n++] = *r;
	return 0;
}

/* One line (no newline): 0, or -1 and *why. */
static int
parse_line(struct acl *acl, const char *line, size_t len, char **user,
    size_t *userlen, const char **why)
{
	const char		*s = line, *end = line + len, *f;
	struct acl_rule		 r;
	struct topic_filter	 tf;
	size_t			 n, flen;

	s = skip_space(s, end);
	if (s == end || *s == '#')
		return 0;
	n = word(s, end);
	if (is(s, n, "user")) {
		s = skip_space(s + n, end);
		if (s == end) {
			*why = "user without a name";
			return -1;
		}
		free(*user);
		if ((*user = dup_n(s, (size_t)(end - s))) == NULL) {
			*why = "out of memory";
			return -1;
		}
		*userlen = (size_t)(end - s);
		return 0;
	}
	memset(&r, 0, sizeof(r));
	if (is(s, n, "topic"))
		r.who = *user ? FOR_USER : FOR_ANONYMOUS;
	else if (is(s, n, "pattern"))
		r.who = FOR_ALL;
	else {
		*why = "not a user, topic or pattern line";
		return -1;
	}
	s = skip_space(s + n, end);
	n = word(s, end);
	r.access = ACL_READ | ACL_WRITE;
	if (is(s, n, "read"))
		r.access = ACL_READ;
	else if (is(s, n, "write"))
		r.access = ACL_WRITE;
	else if (is(s, n, "deny"))
		r.access = ACL_DENY;
	else if (!is(s, n, "readwrite"))
		n = 0;		/* no access word: the filter follows */
	f = skip_space(s + n, end);
	flen = (size_t)(end - f);
	if (flen == 0 || flen > 65535 || topic_filter_parse((const uint8_t *)f,
	    flen, &tf) != 0) {
		*why = flen == 0 ? "no topic filter" : "not a valid topic filter";
		return -1;
	}
	if (r.who == FOR_ALL) {
		const char	*lvl = NULL;
		size_t		 pos = 0, ln = 0;

		while (next_level(f, flen, &pos, &lvl, &ln)) {
			if (is(lvl, ln, "%c"))
				r.substitutes = 1;
			if (is(lvl, ln, "%u"))
				r.substitutes = r.needs_user = 1;
		}
	}
	if ((r.filter = dup_n(f, flen)) == NULL || (r.who == FOR_USER &&
	    (r.user = dup_n(*user, *userlen)) == NULL) ||
	    add_rule(acl, &r) == -1) {
		free(r.filter);
		free(r.user);
		*why = "out of memory";
		return -1;
	}
	r.len = flen;
	acl->rules[acl->n - 1].len = flen;
	acl->rules[acl->n - 1].userlen = r.who == FOR_USER ? *userlen : 0;
	return 0;
}

int
acl_read(struct acl **out, FILE *f, const char *name, char *err,
    size_t errlen)
{
	struct acl	*acl;
	char		*line = NULL, *user = NULL;
	size_t		 cap = 0, len, userlen = 0;
	unsigned	 lineno = 0;
	const char	*why;

	*out = NULL;
	if ((acl = calloc(1, sizeof(*acl))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	acl->refs = 1;
	while (lines_next(f, &line, &cap, &len, &lineno)) {
		if (parse_line(acl, line, len, &user, &userlen, &why) == -1) {
			snprintf(err, errlen, "%s:%u: %s", name, lineno, why);
			goto fail;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read %s", name);
		goto fail;
	}
	free(line);
	free(user);
	*out = acl;
	return 0;
fail:
	free(line);
	free(user);
	acl_free(acl);
	return -1;
}

struct acl *
acl_ref(struct acl *acl)
{
	acl->refs++;
	return acl;
}

void
acl_free(struct acl *acl)
{
	size_t	 i;

	if (acl == NULL || --acl->refs > 0)
		return;
	for (i = 0; i < acl->n; i++) {
		free(acl->rules[i].filter);
		free(acl->rules[i].user);
	}
	free(acl->rules);
	free(acl);
}

size_t
acl_count(const struct acl *acl)
{
	return acl->n;
}
