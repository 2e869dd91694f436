/*
 * crc32c.c - table-driven CRC-32C, slicing by 8 (see crc32c.h).
 *
 * Slicing by 8 folds eight input bytes per step through eight 256-entry
 * tables: about eight times the byte-at-a-time speed, without depending
 * on the SSE4.2 crc32 instruction, so the checksum is the same code on
 * every machine that may read the log.  Input bytes are combined one by
 * one, never loaded as words, so the result does not depend on the
 * host's byte order or on alignment.
 *
 * The tables are computed once, on first use; pthread_once makes that
 * safe in the processes that run threads (nng starts its own).
 */
#include "config.h"

#include <pthread.h>

#include "crc32c.h"

#define CRC32C_POLY	0x82f63b78u	/* 0x1EDC6F41 bit-reversed */

static uint32_t		 crc32c_table[8][256];
static pthread_once_t	 crc32c_once = PTHREAD_ONCE_INIT;

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
crc32c(uint32_t crc, const void *data, size_t len)
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
