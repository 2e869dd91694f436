/*
 * wal_format.c - encoding and checked decoding of log segments and records.
 *
 * One decoder per format version (STYLE rule 7): wal_record_decode() and
 * wal_segment_header_decode() read the version and hand the bytes to the
 * function for that version, so supporting version 2 later means adding
 * decoders beside these, never changing what version 1 means.  The
 * encoders write the current version only.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "wal_format.h"

void
wal_segment_name(char *name, uint64_t first_lsn)
{
	snprintf(name, WAL_SEGMENT_NAME_LEN + 1, "%016" PRIx64 "%s", first_lsn,
	    WAL_SEGMENT_SUFFIX);
}

int
wal_segment_name_parse(const char *name, uint64_t *first_lsn)
{
	uint64_t	 v = 0;
	int		 i, c;

	if (strlen(name) != WAL_SEGMENT_NAME_LEN ||
	    strcmp(name + 16, WAL_SEGMENT_SUFFIX) != 0)
		return -1;
	/* Exactly what wal_segment_name() writes: lower-case hex digits. */
	for (i = 0; i < 16; i++) {
		c = name[i];
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else
			return -1;
	}
	*first_lsn = v;
	return 0;
}

int
wal_segment_header_encode(struct buf *b, uint64_t first_lsn)
{
	size_t	 start = b->len;

	buf_add_u32(b, WAL_SEGMENT_MAGIC);
	buf_add_u16(b, WAL_FORMAT_VERSION);
	buf_add_u16(b, WAL_SEGMENT_HEADER_SIZE_V1);
	buf_add_u64(b, first_lsn);
	buf_add_u32(b, 0);
	if (buf_failed(b))
		return -1;
	return buf_add_u32(b, crc32c(0, b->data + start, b->len - start));
}

static enum wal_damage
wal_segment_header_decode_v1(const uint8_t *p, size_t len,
    struct wal_segment_header *h)
{
	if (len < WAL_SEGMENT_HEADER_SIZE_V1)
		return WAL_DAMAGE_TORN;
	if (buf_load_u16(p + 6) != WAL_SEGMENT_HEADER_SIZE_V1)
		return WAL_DAMAGE_LENGTH;
	if (crc32c(0, p, 20) != buf_load_u32(p + 20))
		return WAL_DAMAGE_CRC;
	if (buf_load_u32(p + 16) != 0)
		return WAL_DAMAGE_FIELD;
	h->version = 1;
	h->header_size = WAL_SEGMENT_HEADER_SIZE_V1;
	h->first_lsn = buf_load_u64(p + 8);
	if (h->first_lsn == 0)
		return WAL_DAMAGE_LSN;
	return WAL_DAMAGE_NONE;
}

enum wal_damage
wal_segment_header_decode(const uint8_t *p, size_t len,
    struct wal_segment_header *h)
{
	if (len < WAL_SEGMENT_PREFIX_SIZE)
		return WAL_DAMAGE_TORN;
	if (buf_load_u32(p) != WAL_SEGMENT_MAGIC)
		return WAL_DAMAGE_MAGIC;
	switch (buf_load_u16(p + 4)) {
	case 1:
		return wal_segment_header_decode_v1(p, len, h);
	default:
		h->version = buf_load_u16(p + 4);
		h->header_size = buf_load_u16(p + 6);
		return WAL_DAMAGE_VERSION;
	}
}

size_t
wal_record_header_size(uint16_t version)
{
	return version == 1 ? WAL_RECORD_HEADER_SIZE_V1 : 0;
}

size_t
wal_record_size(uint32_t payload_length)
{
	return WAL_RECORD_HEADER_SIZE_V1 + (size_t)payload_length;
}

/* The record CRC: the header with the CRC field taken as zero, then the
 * payload. */
static uint32_t
wal_record_crc_v1(const uint8_t *header, const uint8_t *payload,
    uint32_t length)
{
	static const uint8_t	 zero[4];
	uint32_t		 crc;

	crc = crc32c(0, header, WAL_RECORD_OFF_CRC);
	crc = crc32c(crc, zero, sizeof(zero));
	crc = crc32c(crc, header + WAL_RECORD_OFF_CRC + 4,
	    WAL_RECORD_HEADER_SIZE_V1 - WAL_RECORD_OFF_CRC - 4);
	return crc32c(crc, payload, length);
}

int
wal_record_encode(struct buf *b, const struct wal_record *rec)
{
	size_t	 start = b->len;

	if (buf_reserve(b, wal_record_size(rec->length)) == -1)
		return -1;
	buf_add_u32(b, WAL_RECORD_MAGIC);
	buf_add_u8(b, WAL_FORMAT_VERSION);
	buf_add_u8(b, rec->type);
	buf_add_u16(b, rec->flags);
	buf_add_u32(b, rec->length);
	buf_add_u32(b, 0);	/* CRC, filled in below */
	buf_add_u64(b, rec->lsn);
	buf_add_u8(b, rec->origin.role);
	buf_add_u8(b, 0);
	buf_add_u16(b, rec->origin.slot);
	buf_add_u32(b, 0);
	buf_add_u64(b, rec->origin.generation);
	buf_add_u64(b, rec->origin.sequence);
	buf_add(b, rec->payload, rec->length);
	if (buf_failed(b)) {
		buf_truncate(b, start);
		return -1;
	}
	buf_set_u32(b, start + WAL_RECORD_OFF_CRC,
	    wal_record_crc_v1(b->data + start, rec->payload, rec->length));
	return 0;
}

static enum wal_damage
wal_record_decode_v1(const uint8_t *p, size_t len, struct wal_record *rec,
    size_t *size)
{
	uint32_t	 length;

	*size = WAL_RECORD_HEADER_SIZE_V1;
	if (len < WAL_RECORD_HEADER_SIZE_V1)
		return WAL_DAMAGE_TORN;
	length = buf_load_u32(p + WAL_RECORD_OFF_LENGTH);
	/* Checked before the CRC: a garbage length must not make the
	 * reader fetch (or allocate) gigabytes to find out. */
	if (length > WAL_PAYLOAD_MAX)
		return WAL_DAMAGE_LENGTH;
	*size = wal_record_size(length);
	if (len < *size)
		return WAL_DAMAGE_TORN;
	if (wal_record_crc_v1(p, p + WAL_RECORD_HEADER_SIZE_V1, length) !=
	    buf_load_u32(p + WAL_RECORD_OFF_CRC))
		return WAL_DAMAGE_CRC;
	/* A record with a good CRC but fields no version 1 writer produces
	 * (type 0, reserved bytes set, sequence 0) is not ours to interpret. */
	if (p[5] == 0 || p[25] != 0 || buf_load_u32(p + 28) != 0 ||
	    buf_load_u64(p + 40) == 0)
		return WAL_DAMAGE_FIELD;
	rec->type = p[5];
	rec->flags = buf_load_u16(p + 6);
	rec->length = length;
	rec->lsn = buf_load_u64(p + WAL_RECORD_OFF_LSN);
	rec->origin.role = p[24];
	rec->origin.slot = buf_load_u16(p + 26);
	rec->origin.generation = buf_load_u64(p + 32);
	rec->origin.sequence = buf_load_u64(p + 40);
	rec->payload = p + WAL_RECORD_HEADER_SIZE_V1;
	return WAL_DAMAGE_NONE;
}

enum wal_damage
wal_record_decode(uint16_t version, const uint8_t *p, size_t len,
    struct wal_record *rec, size_t *size)
{
	/* Magic and version sit at the same place in every version. */
	*size = 5;
	if (len < 5)
		return WAL_DAMAGE_TORN;
	if (buf_load_u32(p) != WAL_RECORD_MAGIC)
		return WAL_DAMAGE_MAGIC;
	if (p[4] != version)
		return WAL_DAMAGE_VERSION;
	switch (version) {
	case 1:
		return wal_record_decode_v1(p, len, rec, size);
	default:
		return WAL_DAMAGE_VERSION;
	}
}
