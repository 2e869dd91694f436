/*
 * idmap.h - a map from 64-bit ids to pointers (connections by id, say).
 *
 * Open addressing with linear probing and backward-shift deletion, so
 * there are no tombstones and lookups stay short however many ids come
 * and go.  Id 0 is reserved (an empty slot).
 */
#ifndef PMQ_IDMAP_H
#define PMQ_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap_slot {
	uint64_t	 id;
	void		*value;
};

struct idmap {
	struct idmap_slot	*slots;
	size_t			 mask;	/* capacity - 1 (a power of two) */
	size_t			 count;
};

void	 idmap_init(struct idmap *);
void	 idmap_free(struct idmap *);
int	 idmap_put(struct idmap *, uint64_t id, void *value);
void	*idmap_get(const struct idmap *, uint64_t id);
void	*idmap_remove(struct idmap *, uint64_t id);

#endif /* PMQ_IDMAP_H */
