/*
 * failtab.c - failed logins by source address, in memory every worker
 * shares (see failtab.h).
 */
#include "config.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>

#include "failtab.h"
#include "hash.h"

#define FAILTAB_MAGIC	0x70666c74u	/* "pflt" */

struct cell {
	_Atomic uint32_t	 count;
	_Atomic uint32_t	 last;		/* monotonic s of the latest */
};

struct failtab {
	uint32_t		 magic;
	uint32_t		 width;
	uint64_t		 seed[FAILTAB_ROWS];
	struct cell		 cells[FAILTAB_ROWS][FAILTAB_WIDTH];
};

size_t
failtab_size(void)
{
	return sizeof(struct failtab);
}

int
failtab_init(void *mem)
{
	struct failtab	*t = mem;

	if (getrandom(t->seed, sizeof(t->seed), 0) != (ssize_t)sizeof(t->seed))
		return -1;
	t->width = FAILTAB_WIDTH;
	t->magic = FAILTAB_MAGIC;
	return 0;
}

struct failtab *
failtab_of(void *mem, size_t len)
{
	struct failtab	*t = mem;

	if (mem == NULL || len < sizeof(*t) || t->magic != FAILTAB_MAGIC ||
	    t->width != FAILTAB_WIDTH)
		return NULL;
	return t;
}

int
failtab_key(const struct sockaddr *sa, struct failtab_key *k)
{
	const struct sockaddr_in	*in4 = (const void *)sa;
	const struct sockaddr_in6	*in6 = (const void *)sa;
	const uint8_t			*b;
	uint32_t			 v4;

	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		memcpy(&v4, &in4->sin_addr, 4);
		k->tag = 4;
		k->bits = v4;
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	b = in6->sin6_addr.s6_addr;
	if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		memcpy(&v4, b + 12, 4);
		k->tag = 4;
		k->bits = v4;
		return 0;
	}
	k->tag = 6;
	memcpy(&k->bits, b, 8);		/* the /64 */
	return 0;
}

static struct cell *
cell(const struct failtab *t, int row, const struct failtab_key *k)
{
	uint64_t	 h = hash_mix64(hash_mix64(t->seed[row] ^ k->tag) ^
			    k->bits);

	return (struct cell *)&t->cells[row][h % FAILTAB_WIDTH];
}

void
failtab_note(struct failtab *t, const struct failtab_key *k, uint32_t now_s)
{
	struct cell	*c;
	int		 r;

	for (r = 0; r < FAILTAB_ROWS; r++) {
		c = cell(t, r, k);
		/* a quiet cell starts again (two racing resets lose at
		 * most a failure or two) */
		if (now_s - atomic_load_explicit(&c->last,
		    memory_order_relaxed) > FAILTAB_WINDOW_S)
			atomic_store_explicit(&c->count, 0,
			    memory_order_relaxed);
		atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
		atomic_store_explicit(&c->last, now_s, memory_order_relaxed);
	}
}

uint32_t
failtab_count(const struct failtab *t, const struct failtab_key *k,
    uint32_t now_s)
{
	struct cell	*c;
	uint32_t	 n, min = UINT32_MAX;
	int		 r;

	for (r = 0; r < FAILTAB_ROWS; r++) {
		c = cell(t, r, k);
		n = now_s - atomic_load_explicit(&c->last,
		    memory_order_relaxed) > FAILTAB_WINDOW_S ? 0 :
		    atomic_load_explicit(&c->count, memory_order_relaxed);
		if (n < min)
			min = n;
	}
	return min;
}
