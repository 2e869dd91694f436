/*
 * wal_format.h - the on-disk layout of the message log, version by version.
 *
 * docs/wal-format.md is the specification; this header and wal_format.c
 * are its only implementation.  Everything is big-endian.
 *
 * Segment header, version 1 (24 bytes):
 *
 *	 0  u32  magic "PMQL" (0x504D514C)
 *	 4  u16  format version (1)
 *	 6  u16  header size (24)
 *	 8  u64  first LSN of the segment (also its file name, in hex)
 *	16  u32  reserved, 0
 *	20  u32  CRC-32C of bytes 0..19
 *
 * Record, version 1 (48-byte header, then the payload):
 *
 *	 0  u32  magic "PMQR" (0x504D5152)
 *	 4  u8   format version (1)
 *	 5  u8   record type (enum wal_record_type; 0 is never valid)
 *	 6  u16  flags (owned by the record type; opaque to the log)
 *	 8  u32  payload length
 *	12  u32  CRC-32C of the header with this field zeroed, then the payload
 *	16  u64  LSN
 *	24  u8   origin role     25  u8  reserved, 0     26  u16 origin slot
 *	28  u32  reserved, 0
 *	32  u64  origin generation
 *	40  u64  origin sequence
 *	48  ...  payload
 *
 * Version rules: the first 8 bytes of a segment header (magic, version,
 * header size) keep their place in every version; the segment's version
 * decides the layout of the rest of its header and of every record in
 * it, and every record repeats it.  A writer appends only to a segment of
 * its own version and starts a new segment otherwise.  A reader decodes
 * each version with that version's own function and refuses (never
 * truncates) a segment of a version it does not know.
 */
#ifndef PMQ_WAL_FORMAT_H
#define PMQ_WAL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "wal.h"

#define WAL_SEGMENT_MAGIC		0x504d514cu	/* "PMQL" */
#define WAL_RECORD_MAGIC		0x504d5152u	/* "PMQR" */
#define WAL_FORMAT_VERSION		1	/* what this code writes */
#define WAL_SEGMENT_HEADER_SIZE_V1	24
#define WAL_RECORD_HEADER_SIZE_V1	48
/* The part of a segment header every version shares. */
#define WAL_SEGMENT_PREFIX_SIZE		8

/* Byte offsets inside a version 1 record header. */
#define WAL_RECORD_OFF_LENGTH	8
#define WAL_RECORD_OFF_CRC	12
#define WAL_RECORD_OFF_LSN	16

/* "%016" PRIx64 ".wal", and the suffix a damaged segment is set aside with. */
#define WAL_SEGMENT_NAME_LEN	20
#define WAL_SEGMENT_SUFFIX	".wal"
#define WAL_CORRUPT_SUFFIX	".corrupt"

struct wal_segment_header {
	uint16_t	version;
	uint16_t	header_size;
	uint64_t	first_lsn;
};

/* Writes the segment name of `first_lsn` into name[WAL_SEGMENT_NAME_LEN + 1]. */
void	 wal_segment_name(char *name, uint64_t first_lsn);
/* Parses a segment name; returns 0 and the LSN, or -1 for other names. */
int	 wal_segment_name_parse(const char *name, uint64_t *first_lsn);

/* Appends a current-version segment header. */
int	 wal_segment_header_encode(struct buf *, uint64_t first_lsn);
/*
 * Checks and decodes a segment header from the `len` bytes at `p`.
 * Returns WAL_DAMAGE_NONE, WAL_DAMAGE_TORN (too short), or the damage;
 * WAL_DAMAGE_VERSION means a well-formed prefix of a version this code
 * does not read (the caller must refuse it, not repair it).
 */
enum wal_damage	 wal_segment_header_decode(const uint8_t *p, size_t len,
		    struct wal_segment_header *);

/* Header size of the records of a version; 0 for unknown versions. */
size_t	 wal_record_header_size(uint16_t version);
/* Appends a current-version record (rec->lsn must be set). */
int	 wal_record_encode(struct buf *, const struct wal_record *);
/*
 * Decodes the record at p[0..len) written with `version`.  On success
 * fills rec (payload points into p), sets *size to the bytes it takes and
 * returns WAL_DAMAGE_NONE.  WAL_DAMAGE_TORN means len ends inside the
 * record, and *size then says how many bytes it needs to go on: a reader
 * fetches that much and calls again, and only a file that ends first
 * has a torn record.  The LSN is the caller's to check.
 */
enum wal_damage	 wal_record_decode(uint16_t version, const uint8_t *p,
		    size_t len, struct wal_record *rec, size_t *size);
/* The total size of an encoded current-version record with this payload. */
size_t	 wal_record_size(uint32_t payload_length);

#endif /* PMQ_WAL_FORMAT_H */
