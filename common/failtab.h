/*
 * failtab.h - failed logins by source address, shared by every worker.
 *
 * SO_REUSEPORT spreads one client's connections over all the workers, so
 * a count per worker would let a guesser that many more tries.  The
 * supervisor makes one table in a memory file at start-up and hands it
 * to every worker it starts (IPC_CTL_FAILURES); each maps it and counts
 * there, with atomic operations, without asking anyone.
 *
 * The table is a count-min sketch: FAILTAB_ROWS rows of cells, each row
 * indexed by its own hash of the address with seeds drawn when the
 * table is made (an outsider cannot aim collisions at someone else's
 * address).  An address's count is the smallest of its cells; a cell
 * counts failures until FAILTAB_WINDOW_S seconds pass without one.
 * Collisions can only make a count too high, never too low.  Addresses
 * are counted by what one client can easily hold: an IPv4 address (an
 * IPv4-mapped IPv6 one included), an IPv6 /64.
 */
#ifndef PMQ_FAILTAB_H
#define PMQ_FAILTAB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define FAILTAB_ROWS		2
#define FAILTAB_WIDTH		65536
#define FAILTAB_WINDOW_S	60

struct failtab;

/* The bytes of a table, for the memory file. */
size_t	 failtab_size(void);
/* A new table in `mem` (failtab_size() bytes, zeroed): its seeds
 * drawn.  -1 without random bytes. */
int	 failtab_init(void *mem);
/* The table in a mapping made by failtab_init(), or NULL when the
 * bytes are not one. */
struct failtab *failtab_of(void *mem, size_t len);

/* What an address is counted by; 0, or -1 for a family without one. */
struct failtab_key {
	uint64_t	 tag;
	uint64_t	 bits;
};
int	 failtab_key(const struct sockaddr *, struct failtab_key *);

/* A failed login from `key` at `now_s` (monotonic seconds). */
void	 failtab_note(struct failtab *, const struct failtab_key *,
	    uint32_t now_s);
/* The failures counted for `key` in the window before `now_s`. */
uint32_t failtab_count(const struct failtab *, const struct failtab_key *,
	    uint32_t now_s);

#endif /* PMQ_FAILTAB_H */
