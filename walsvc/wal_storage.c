/*
 * wal_storage.c - what every storage implementation shares (wal_storage.h).
 */
#include "config.h"

#include <string.h>

#include "wal_storage.h"

void
wal_storage_destroy(struct wal_storage *st)
{
	if (st != NULL)
		st->ops->destroy(st);
}

/*
 * Names come from the log itself, never from a peer, but a name with a
 * '/' or a dot-dot would still let a bug write outside the log
 * directory: refused in one place for every implementation.
 */
int
wal_storage_name_ok(const char *name)
{
	return name[0] != '\0' && strchr(name, '/') == NULL &&
	    strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}
