/*
 * topic.h - validation of MQTT topic names and topic filters, and the
 * parsing of shared subscription filters ($share/{ShareName}/{filter}).
 *
 * Matching a topic name against filters belongs to another module; this
 * one only says whether a string may be used as a name or a filter and
 * where the parts of a shared subscription filter are.
 *
 * Rules (MQTT 5.0 section 4.7 and 4.8.2, the same in 3.1.1 apart from
 * shared subscriptions, which PromptMQ accepts at every level):
 *  - names and filters are at least one byte long and valid UTF-8 under
 *    the strict policy of utf8.h;
 *  - a name contains neither '+' nor '#';
 *  - in a filter '+' fills a whole level, '#' fills the last level;
 *  - empty levels ("a//b", "/a", "a/") are legal in both;
 *  - a filter that starts with "$share/" is a shared subscription: a
 *    ShareName of one or more characters other than '/', '+' and '#',
 *    then '/', then a non-empty filter following the rules above.
 */
#ifndef PMQ_TOPIC_H
#define PMQ_TOPIC_H

#include <stddef.h>
#include <stdint.h>

enum topic_error {
	TOPIC_OK = 0,
	TOPIC_EMPTY,		/* zero length */
	TOPIC_BAD_UTF8,		/* ill-formed, U+0000, control or noncharacter */
	TOPIC_WILDCARD,		/* '+' or '#' in a topic name */
	TOPIC_BAD_WILDCARD,	/* '+' or '#' not filling a level, '#' not last */
	TOPIC_BAD_SHARE,	/* "$share/" without a valid ShareName and filter */
};

struct topic_filter {
	const uint8_t	*share;		/* ShareName, NULL when not shared */
	size_t		 share_len;
	const uint8_t	*filter;	/* what is matched against names */
	size_t		 filter_len;
	int		 wildcard;	/* the filter holds '+' or '#' */
};

#define TOPIC_SHARE_PREFIX	"$share/"
#define TOPIC_SHARE_PREFIX_LEN	7

/* Whether a filter, valid or not, is written as a shared one. */
#define topic_is_shared(f, len)	((len) > TOPIC_SHARE_PREFIX_LEN &&	\
	memcmp((f), TOPIC_SHARE_PREFIX, TOPIC_SHARE_PREFIX_LEN) == 0)

int		 topic_name_check(const uint8_t *, size_t);
int		 topic_filter_parse(const uint8_t *, size_t, struct topic_filter *);
const char	*topic_strerror(int);

/*
 * Whether a topic name matches a filter (both valid, the filter not
 * shared): '+' one level, '#' the rest and the parent level; a filter
 * starting with a wildcard does not match a name starting with '$'.
 */
int		 topic_match(const uint8_t *filter, size_t flen,
		    const uint8_t *name, size_t nlen);

#endif /* PMQ_TOPIC_H */
