/*
 * hash.h - the one integer mixing function of the project's hash tables
 * (connection ids, subscription nodes, log streams): splitmix64's
 * finaliser, which makes every input bit reach every output bit, so
 * tables can take the low bits of the result.
 */
#ifndef PMQ_HASH_H
#define PMQ_HASH_H

#include <stdint.h>

static inline uint64_t
hash_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

#endif /* PMQ_HASH_H */
