/*
 * wal_stream.c - the idempotency table of the message log.
 *
 * For every origin stream (role, slot, generation) the log remembers the
 * highest sequence it holds, so an append resent after a walsvc restart
 * or a lost acknowledgement is recognised instead of written twice.  The
 * table is never written anywhere: wal_open() rebuilds it from the
 * records themselves, which is what makes it trustworthy after a crash.
 * It also remembers the highest generation per role, which the supervisor
 * uses to keep worker generations unique across restarts.
 *
 * Entries are never removed: a stream costs 24 bytes and there is one per
 * sender incarnation.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "wal_internal.h"

/* splitmix64's finaliser: cheap and mixes every input bit. */
static uint64_t
wal_stream_hash(const struct wal_origin *o)
{
	uint64_t	 x;

	x = o->generation ^ ((uint64_t)o->role << 56) ^
	    ((uint64_t)o->slot << 40);
	return hash_mix64(x);
}

static int
wal_stream_matches(const struct wal_stream *s, const struct wal_origin *o)
{
	return s->generation == o->generation && s->slot == o->slot &&
	    s->role == o->role;
}

/* The slot of a stream, or the empty slot where it would go. */
static struct wal_stream *
wal_stream_slot(struct wal_stream *table, size_t capacity,
    const struct wal_origin *o)
{
	size_t	 i, mask = capacity - 1;

	for (i = wal_stream_hash(o) & mask;; i = (i + 1) & mask)
		if (table[i].sequence == 0 || wal_stream_matches(&table[i], o))
			return &table[i];
}

void
wal_streams_free(struct wal_streams *ss)
{
	free(ss->table);
	memset(ss, 0, sizeof(*ss));
}

uint64_t
wal_streams_get(const struct wal_streams *ss, const struct wal_origin *o)
{
	const struct wal_stream	*s;

	if (ss->capacity == 0)
		return 0;
	s = wal_stream_slot(ss->table, ss->capacity, o);
	return s->sequence;
}

int
wal_streams_reserve(struct wal_streams *ss)
{
	struct wal_stream	*table, *to;
	struct wal_origin	 o;
	size_t			 capacity, i;

	/* Keep the load under 3/4 so probes stay short and always end. */
	if ((ss->used + 1) * 4 <= ss->capacity * 3)
		return 0;
	capacity = ss->capacity ? ss->capacity * 2 : 64;
	if ((table = calloc(capacity, sizeof(*table))) == NULL)
		return -ENOMEM;
	for (i = 0; i < ss->capacity; i++) {
		if (ss->table[i].sequence == 0)
			continue;
		o.role = ss->table[i].role;
		o.slot = ss->table[i].slot;
		o.generation = ss->table[i].generation;
		to = wal_stream_slot(table, capacity, &o);
		*to = ss->table[i];
	}
	free(ss->table);
	ss->table = table;
	ss->capacity = capacity;
	return 0;
}

int
wal_streams_note(struct wal_streams *ss, const struct wal_origin *o)
{
	struct wal_stream	*s;

	if (o->sequence == 0)	/* would look like an empty slot */
		return -EINVAL;
	if (wal_streams_reserve(ss) != 0)
		return -ENOMEM;
	s = wal_stream_slot(ss->table, ss->capacity, o);
	if (s->sequence == 0) {
		s->role = o->role;
		s->slot = o->slot;
		s->generation = o->generation;
		ss->used++;
	}
	if (o->sequence > s->sequence)
		s->sequence = o->sequence;
	if (o->generation > ss->generation_max[o->role])
		ss->generation_max[o->role] = o->generation;
	return 0;
}
