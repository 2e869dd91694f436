/*
 * crc32c.c - CRC-32C (see crc32c.h): the SSE4.2 crc32 instruction where
 * the CPU has it, else table-driven, slicing by 8.
 *
 * Both compute the same function, so a log written on one machine reads
 * on any other.  The portable version folds eight input bytes per step
 * through eight 256-entry tables (about eight times the byte-at-a-time
 * speed); its input bytes are combined one by one, never loaded as
 * words, so the result does not depend on the host's byte order or on
 * alignment.  The instruction is several times faster again: every log
 * record is checksummed as walsvc appends it, and it was a tenth of
 * walsvc's CPU under load.
 *
 * The choice and the tables are made once, on first use; pthread_once
 * makes that safe in the processes that run threads (nng starts its
 * own).
 */
#include "config.h"

#include <pthread.h>
#include <string.h>

#include "crc32c.h"

#define CRC32C_POLY	0x82f63b78u	/* 0x1EDC6F41 bit-reversed */

static uint32_t		 crc32c_table[8][256];
static pthread_once_t	 crc32c_once = PTHREAD_ONCE_INIT;
static pthread_once_t	 crc32c_pick_once = PTHREAD_ONCE_INIT;
static uint32_t		(*crc32c_impl)(uint32_t, const void *, size_t);

static void
crc32c_init_tables(void)
{
	uint32_t	 crc;
	int		 i, bit, k;

	/* 1) The classic byte-at-a-time table. */
	for (i = 0; i < 256; i++) {
		crc = (uint32_t)i;
		for (bit = 0; bit < 8; bit++)
			crc = (crc & 1) ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
		crc32c_table[0][i] = crc;
	}
	/* 2) Table k: the CRC of byte i followed by k zero bytes. */
	for (k = 1; k < 8; k++)
		for (i = 0; i < 256; i++) {
			crc = crc32c_table[k - 1][i];
			crc32c_table[k][i] =
			    (crc >> 8) ^ crc32c_table[0][crc & 0xff];
		}
}

uint32_t
crc32c_portable(uint32_t crc, const void *data, size_t len)
{
	const uint8_t	*p = data;
	uint32_t	 lo, hi;

	pthread_once(&crc32c_once, crc32c_init_tables);
	crc = ~crc;
	while (len >= 8) {
		lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
		    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
		    (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
		crc = crc32c_table[7][lo & 0xff] ^
		    crc32c_table[6][(lo >> 8) & 0xff] ^
		    crc32c_table[5][(lo >> 16) & 0xff] ^
		    crc32c_table[4][lo >> 24] ^
		    crc32c_table[3][hi & 0xff] ^
		    crc32c_table[2][(hi >> 8) & 0xff] ^
		    crc32c_table[1][(hi >> 16) & 0xff] ^
		    crc32c_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HAVE_SSE42 1

/* The instruction takes words in the host's (little-endian) order. */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_sse42(uint32_t crc, const void *data, size_t len)
{
	const uint8_t	*p = data;
	uint64_t	 c = ~crc, w;

	while (len >= 8) {
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

static void
crc32c_pick(void)
{
	crc32c_impl = crc32c_portable;
#ifdef CRC32C_HAVE_SSE42
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		crc32c_impl = crc32c_sse42;
#endif
}

uint32_t
crc32c(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc32c_pick_once, crc32c_pick);
	return crc32c_impl(crc, data, len);
}
