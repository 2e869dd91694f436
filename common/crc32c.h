/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of the message log.
 *
 * CRC-32C (polynomial 0x1EDC6F41, reflected 0x82F63B78) is the checksum
 * of iSCSI, ext4 metadata and many write-ahead logs: it detects all the
 * burst errors a torn or misdirected write produces and is cheap in
 * software.  The value is pre- and post-inverted like zlib's crc32(), so
 * checksums chain:
 *
 *	crc32c(crc32c(0, a, alen), b, blen) == crc32c(0, a || b, alen + blen)
 *
 * Start with 0.  crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef PMQ_CRC32C_H
#define PMQ_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t	 crc32c(uint32_t crc, const void *data, size_t len);
/* The table-driven version crc32c() uses where the CPU has no crc32
 * instruction (tests compare the two). */
uint32_t	 crc32c_portable(uint32_t crc, const void *data, size_t len);

#endif /* PMQ_CRC32C_H */
