/*
 * topic.c - topic name and topic filter validation, $share parsing
 * (see topic.h for the rules).
 */
#include "config.h"

#include <string.h>

#include "topic.h"
#include "utf8.h"

const char *
topic_strerror(int e)
{
	switch (e) {
	case TOPIC_OK:
		return "valid";
	case TOPIC_EMPTY:
		return "empty topic";
	case TOPIC_BAD_UTF8:
		return "topic is not acceptable UTF-8";
	case TOPIC_WILDCARD:
		return "wildcard in a topic name";
	case TOPIC_BAD_WILDCARD:
		return "wildcard does not fill a whole level";
	case TOPIC_BAD_SHARE:
		return "malformed $share filter";
	default:
		return "unknown topic error";
	}
}

int
topic_name_check(const uint8_t *s, size_t len)
{
	if (len == 0)
		return TOPIC_EMPTY;
	if (utf8_check(s, len, UTF8_STRICT) == -1)
		return TOPIC_BAD_UTF8;
	if (memchr(s, '+', len) != NULL || memchr(s, '#', len) != NULL)
		return TOPIC_WILDCARD;
	return TOPIC_OK;
}

/* Wildcard placement in a plain (non-shared) filter; sets *wildcard. */
static int
filter_levels_check(const uint8_t *s, size_t len, int *wildcard)
{
	size_t	 i;

	*wildcard = 0;
	for (i = 0; i < len; i++) {
		if (s[i] != '+' && s[i] != '#')
			continue;
		*wildcard = 1;
		if (i > 0 && s[i - 1] != '/')
			return TOPIC_BAD_WILDCARD;
		if (s[i] == '#' && i + 1 != len)
			return TOPIC_BAD_WILDCARD;
		if (s[i] == '+' && i + 1 < len && s[i + 1] != '/')
			return TOPIC_BAD_WILDCARD;
	}
	return TOPIC_OK;
}

int
topic_filter_parse(const uint8_t *s, size_t len, struct topic_filter *out)
{
	const uint8_t	*f = s, *slash;
	size_t		 flen = len;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return TOPIC_EMPTY;
	if (utf8_check(s, len, UTF8_STRICT) == -1)
		return TOPIC_BAD_UTF8;
	if (len >= TOPIC_SHARE_PREFIX_LEN &&
	    memcmp(s, TOPIC_SHARE_PREFIX, TOPIC_SHARE_PREFIX_LEN) == 0) {
		const uint8_t	*name = s + TOPIC_SHARE_PREFIX_LEN;
		size_t		 rest = len - TOPIC_SHARE_PREFIX_LEN, nlen;

		slash = memchr(name, '/', rest);
		if (slash == NULL)
			return TOPIC_BAD_SHARE;
		nlen = (size_t)(slash - name);
		if (nlen == 0 || memchr(name, '+', nlen) != NULL ||
		    memchr(name, '#', nlen) != NULL)
			return TOPIC_BAD_SHARE;
		f = slash + 1;
		flen = rest - nlen - 1;
		if (flen == 0)
			return TOPIC_BAD_SHARE;
		out->share = name;
		out->share_len = nlen;
	}
	out->filter = f;
	out->filter_len = flen;
	return filter_levels_check(f, flen, &out->wildcard);
}

int
topic_match(const uint8_t *f, size_t flen, const uint8_t *n, size_t nlen)
{
	size_t	 fi = 0, ni = 0;

	if (nlen > 0 && n[0] == '$' && flen > 0 && (f[0] == '+' || f[0] == '#'))
		return 0;
	for (;;) {
		/* at the start of a level in both */
		if (fi < flen && f[fi] == '#')
			return 1;	/* the rest, and the parent level */
		if (fi < flen && f[fi] == '+') {
			while (ni < nlen && n[ni] != '/')
				ni++;
			fi++;
		} else {
			while (fi < flen && ni < nlen && f[fi] != '/' &&
			    n[ni] != '/' && f[fi] == n[ni]) {
				fi++;
				ni++;
			}
			if ((fi < flen && f[fi] != '/') ||
			    (ni < nlen && n[ni] != '/'))
				return 0;
		}
		/* both at a '/' or at their end */
		if (fi == flen && ni == nlen)
			return 1;
		if (fi == flen)
			return 0;
		if (ni == nlen)
			/* "a/#" matches "a": '#' after this '/' */
			return flen - fi == 2 && f[fi + 1] == '#';
		fi++;
		ni++;
	}
}
