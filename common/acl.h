/*
 * acl.h - access control lists in the format of Mosquitto 2.0's
 * acl_file, with its meaning as measured against Mosquitto 2.0.11:
 *
 *	topic [read|write|readwrite|deny] FILTER
 *		before any "user" line: for clients without a user name;
 *		after "user NAME": for that user
 *	user NAME
 *	pattern [read|write|readwrite|deny] FILTER
 *		for every client, wherever it stands in the file; a level
 *		that is exactly %c or %u stands for the client id or the
 *		user name (a rule with %u is for clients with a user name)
 *
 * The access is readwrite when left out; '#' starts a comment.  A client
 * may read (receive) or write (publish) a topic when a rule of its own or
 * a pattern grants that access to a filter matching the topic and no
 * deny rule of its own or pattern matches it; with an ACL file, what no
 * rule grants is refused.  A filter starting with a wildcard does not
 * match a topic starting with '$'.
 *
 * Subscribing (Mosquitto 2.0.11 grants every subscription and filters
 * what it delivers; PromptMQ refuses the ones that can never deliver
 * anything): a filter is refused when no readable filter overlaps it,
 * or a deny rule covers all of it.  Every delivery is still checked.
 */
#ifndef PMQ_ACL_H
#define PMQ_ACL_H

#include <stddef.h>
#include <stdio.h>

struct acl;

#define ACL_READ	0x1
#define ACL_WRITE	0x2

/*
 * Read an ACL file (f; `name` for messages).  A line that cannot be read
 * makes the whole file refused: -1 with err naming the line.  Returns 0
 * and *out otherwise.
 */
int	 acl_read(struct acl **out, FILE *f, const char *name, char *err,
	    size_t errlen);
struct acl *acl_ref(struct acl *);
void	 acl_free(struct acl *);
size_t	 acl_count(const struct acl *);

/* Whether the client (user NULL: none) has access to the topic. */
int	 acl_check(const struct acl *, const char *user, size_t userlen,
	    const char *client_id, size_t idlen, const void *topic,
	    size_t topiclen, int access);

/* Whether the client may subscribe to the filter (above). */
int	 acl_may_subscribe(const struct acl *, const char *user,
	    size_t userlen, const char *client_id, size_t idlen,
	    const void *filter, size_t filterlen);

#endif /* PMQ_ACL_H */
