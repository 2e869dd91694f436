/*
 * sub.h - the subscription table of a worker: which subscribers, here
 * and on the other workers, want a topic.
 *
 * Every worker keeps one table.  It holds
 *   - the local subscriptions: (filter, owner) pairs, the owner being a
 *     connection of this worker, with the subscription's options;
 *   - remote interest: for each other worker slot, the filters that
 *     worker has at least one subscriber for (announced over IPC when a
 *     filter gains its first subscriber there, withdrawn when it loses
 *     its last);
 *   - for shared subscriptions ($share/GROUP/FILTER), the member count
 *     of every group on every worker, so a message can go to exactly
 *     one member of a group, balanced across workers.
 *
 * sub_match() turns a topic name into the local subscriptions that
 * match, the set of remote workers with a matching (non-shared)
 * subscription, and the matching shared groups.  Wildcards follow MQTT:
 * '+' matches one level, '#' the rest (including the parent level), and
 * a filter starting with a wildcard does not match a topic name starting
 * with '$'.
 *
 * Filters are given parsed (topic.h): the share name, if any, and the
 * filter proper.  The table copies what it keeps; owners are opaque.
 */
#ifndef PMQ_SUB_H
#define PMQ_SUB_H

#include <stddef.h>
#include <stdint.h>

#include "topic.h"

/* 256 workers, and a slot for walsvc in a worker's table (a multiple
 * of 64: the match's slot bitmap) */
#define SUB_MAX_WORKERS	320

struct sub_table;

/* What a local subscription carries (the SUBSCRIBE options). */
struct sub_options {
	uint8_t		qos;		/* granted maximum QoS */
	uint8_t		no_local;
	uint8_t		retain_as_published;
	uint8_t		retain_handling;
	uint32_t	sub_id;		/* Subscription Identifier, 0: none */
};

struct sub_hit {
	void			*owner;
	struct sub_options	 options;
};

/* A shared group that matched: the caller picks the member. */
struct sub_share_hit {
	struct sub_group	*group;
};

struct sub_match {
	struct sub_hit		*hits;		/* local, non-shared */
	size_t			 nhits;
	size_t			 hits_cap;
	struct sub_share_hit	*shares;
	size_t			 nshares;
	size_t			 shares_cap;
	uint64_t		 workers[SUB_MAX_WORKERS / 64]; /* remote slots */
};

/*
 * A table for slots 0 .. nworkers-1 (at most SUB_MAX_WORKERS).  Remote
 * interest is refused for self_slot; a value >= nworkers means the table
 * has no slot of its own.  NULL with errno EINVAL or ENOMEM.
 */
struct sub_table *sub_table_new(unsigned nworkers, unsigned self_slot);
void	 sub_table_free(struct sub_table *);

/*
 * Local subscriptions.  Adding (filter, owner) again replaces its
 * options (MQTT: a SUBSCRIBE for an existing filter replaces it) and
 * returns 1; a new one returns 0; -1 with errno ENOMEM.  Removing
 * returns 0, or 1 when the owner had no such subscription.  *count is
 * set to the number of local subscribers of that (share, filter) after
 * the change: the caller announces a plain filter to the other workers
 * when its count goes 0 -> 1 and withdraws it at 1 -> 0, and announces
 * every change of a shared group's count (remote members are weighed
 * when a group's message is placed).  A share name or filter that is
 * empty or longer than an MQTT string (65535 bytes) is refused with
 * EINVAL.  On any error the table is as it was.
 */
int	 sub_add_local(struct sub_table *, const struct topic_filter *,
	    void *owner, const struct sub_options *, uint32_t *count);
int	 sub_remove_local(struct sub_table *, const struct topic_filter *,
	    void *owner, uint32_t *count);

/*
 * Remote interest: worker `slot` has `count` subscribers of (share,
 * filter); 0 removes.  For a plain filter only zero or not matters.
 * Idempotent: setting the same count twice changes nothing.  Returns 0,
 * or -1 with errno EINVAL (slot out of range or our own, bad lengths)
 * or ENOMEM.
 */
int	 sub_set_remote(struct sub_table *, const struct topic_filter *,
	    unsigned slot, uint32_t count);
/*
 * Forget everything of a worker slot (it restarted or stopped).  Costs
 * what that slot announced, not the size of the table.
 */
void	 sub_clear_remote(struct sub_table *, unsigned slot);

/*
 * Calls fn once per distinct (share, filter) with local subscribers,
 * with the filter as a subscriber would write it ("$share/g/a/+" or
 * "a/+") and its local count, for announcing the local filters to a
 * new worker.  The order is unspecified; the string is valid only during
 * the call, and fn must not change the table.
 */
void	 sub_local_filters(struct sub_table *,
	    void (*fn)(const uint8_t *filter, size_t len, uint32_t count,
	    void *arg), void *arg);

/*
 * Matching.  The sub_match starts zeroed and is reused across calls (its
 * arrays grow as needed; free it with sub_match_free); once they have
 * grown, matching allocates nothing.  The hits are copies; the group
 * pointers are valid until the table next changes.  The same owner can
 * appear in several hits when several of its filters match; merging them
 * is the caller's decision.  Returns 0, or -1 with ENOMEM.
 */
int	 sub_match(struct sub_table *, const uint8_t *topic, size_t len,
	    struct sub_match *);
void	 sub_match_free(struct sub_match *);
int	 sub_match_worker(const struct sub_match *, unsigned slot);
/* Whether anything matched: a local subscriber, a slot, a group. */
int	 sub_match_anywhere(const struct sub_match *);

/* Shared groups: their name, and their members here and elsewhere. */
const uint8_t	*sub_group_name(const struct sub_group *, size_t *len);
size_t	 sub_group_local_count(const struct sub_group *);
struct sub_hit	*sub_group_local(const struct sub_group *, size_t i);
uint32_t sub_group_remote_count(const struct sub_group *, unsigned slot);
/* "$share/NAME/FILTER", as a subscriber writes it. */
const uint8_t	*sub_group_text(const struct sub_group *, size_t *len);
/* The group's turn counter, moved on by one (who gets the next message). */
uint32_t sub_group_turn(struct sub_group *);
/* The group of a parsed "$share/..." filter, NULL if it has no members. */
struct sub_group *sub_group_find(struct sub_table *, const struct topic_filter *);

/* Counters for tests and metrics. */
size_t	 sub_local_count(const struct sub_table *);
size_t	 sub_node_count(const struct sub_table *);

#endif /* PMQ_SUB_H */
