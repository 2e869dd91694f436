/*
 * idmap.c - 64-bit id to pointer map (see idmap.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "idmap.h"

static size_t
hash(uint64_t id)
{
	return (size_t)hash_mix64(id);
}

void
idmap_init(struct idmap *m)
{
	m->slots = NULL;
	m->mask = 0;
	m->count = 0;
}

void
idmap_free(struct idmap *m)
{
	free(m->slots);
	idmap_init(m);
}

static int
grow(struct idmap *m)
{
	struct idmap_slot	*old = m->slots;
	size_t			 oldcap = old ? m->mask + 1 : 0, cap, i, j;

	cap = oldcap ? oldcap * 2 : 16;
	if ((m->slots = calloc(cap, sizeof(*m->slots))) == NULL) {
		m->slots = old;
		errno = ENOMEM;
		return -1;
	}
	m->mask = cap - 1;
	for (i = 0; i < oldcap; i++) {
		if (old[i].id == 0)
			continue;
		for (j = hash(old[i].id) & m->mask; m->slots[j].id;
		    j = (j + 1) & m->mask)
			;
		m->slots[j] = old[i];
	}
	free(old);
	return 0;
}

int
idmap_put(struct idmap *m, uint64_t id, void *value)
{
	size_t	 i;

	if (id == 0) {
		errno = EINVAL;
		return -1;
	}
	/* keep the load under 3/4 */
	if ((m->count + 1) * 4 > (m->slots ? m->mask + 1 : 0) * 3 &&
	    grow(m) == -1)
		return -1;
	for (i = hash(id) & m->mask; m->slots[i].id; i = (i + 1) & m->mask)
		if (m->slots[i].id == id) {
			m->slots[i].value = value;
			return 0;
		}
	m->slots[i].id = id;
	m->slots[i].value = value;
	m->count++;
	return 0;
}

void *
idmap_get(const struct idmap *m, uint64_t id)
{
	size_t	 i;

	if (m->slots == NULL || id == 0)
		return NULL;
	for (i = hash(id) & m->mask; m->slots[i].id; i = (i + 1) & m->mask)
		if (m->slots[i].id == id)
			return m->slots[i].value;
	return NULL;
}

void *
idmap_remove(struct idmap *m, uint64_t id)
{
	size_t	 i, j, home;
	void	*value;

	if (m->slots == NULL || id == 0)
		return NULL;
	for (i = hash(id) & m->mask; m->slots[i].id; i = (i + 1) & m->mask)
		if (m->slots[i].id == id)
			break;
	if (m->slots[i].id == 0)
		return NULL;
	value = m->slots[i].value;
	/*
	 * Backward-shift: move later entries of the probe run into the
	 * hole when their home position allows it, so no tombstone is left.
	 */
	for (j = (i + 1) & m->mask; m->slots[j].id; j = (j + 1) & m->mask) {
		home = hash(m->slots[j].id) & m->mask;
		if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].id = 0;
	m->slots[i].value = NULL;
	m->count--;
	return value;
}
