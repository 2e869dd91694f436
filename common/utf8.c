/*
 * utf8.c - UTF-8 validation for MQTT strings (see utf8.h).
 *
 * Topic names are checked on every PUBLISH, so plain ASCII is checked
 * eight bytes at a time; the multi-byte path follows the table of
 * well-formed byte sequences in the Unicode standard (chapter 3, table
 * 3-7), which rules out overlong forms, surrogates and values above
 * U+10FFFF by the ranges allowed for the second byte.
 */
#include "config.h"

#include <string.h>

#include "utf8.h"

#define ONES	0x0101010101010101ull
#define HIGHS	0x8080808080808080ull

/* Some byte of w is below n (valid when no byte has its high bit set). */
#define HAS_LESS(w, n)	(((w) - ONES * (n)) & ~(w) & HIGHS)

/* Eight ASCII bytes none of which the flags refuse. */
static int
ascii_word_ok(uint64_t w, unsigned flags)
{
	if (w & HIGHS)
		return 0;
	if (flags & UTF8_STRICT)
		return !HAS_LESS(w, 0x20) && !HAS_LESS(w ^ (ONES * 0x7f), 1);
	return !HAS_LESS(w, 1);
}

static int
ascii_byte_ok(uint8_t c, unsigned flags)
{
	if (c == 0)
		return 0;
	if (flags & UTF8_STRICT)
		return c >= 0x20 && c != 0x7f;
	return 1;
}

/* Code points the strict policy refuses above U+007F. */
static int
strict_refuses(uint32_t cp)
{
	if (cp >= 0x80 && cp <= 0x9f)
		return 1;
	if (cp >= 0xfdd0 && cp <= 0xfdef)
		return 1;
	return (cp & 0xfffe) == 0xfffe;
}

int
utf8_check(const uint8_t *s, size_t len, unsigned flags)
{
	size_t	 i = 0;

	while (i < len) {
		uint8_t		 c = s[i];
		uint32_t	 cp;
		uint8_t		 lo = 0x80, hi = 0xbf;
		size_t		 n, k;

		if (c < 0x80) {
			uint64_t	 w;

			if (i + 8 <= len) {
				memcpy(&w, s + i, 8);
				if (ascii_word_ok(w, flags)) {
					i += 8;
					continue;
				}
			}
			if (!ascii_byte_ok(c, flags))
				return -1;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
			if (c == 0xe0)
				lo = 0xa0;	/* overlong below U+0800 */
			else if (c == 0xed)
				hi = 0x9f;	/* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
			if (c == 0xf0)
				lo = 0x90;	/* overlong below U+10000 */
			else if (c == 0xf4)
				hi = 0x8f;	/* above U+10FFFF */
		} else {
			return -1;	/* C0, C1, F5..FF, or a lone continuation */
		}
		if (n > len - i - 1)
			return -1;
		for (k = 1; k <= n; k++) {
			uint8_t	 t = s[i + k];

			if (t < lo || t > hi)
				return -1;
			lo = 0x80;
			hi = 0xbf;
			cp = cp << 6 | (t & 0x3f);
		}
		if ((flags & UTF8_STRICT) && strict_refuses(cp))
			return -1;
		i += n + 1;
	}
	return 0;
}
