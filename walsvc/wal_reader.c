/*
 * wal_reader.c - reading the message log: one segment at a time, and the
 * iterator over the whole log built on it.
 *
 * Recovery, the iterator and the dump tool all read records the same
 * way, so the checks (magic, version, lengths, CRC, LSN continuity) live
 * in one place.  A segment is read through a window of at least
 * WAL_READ_CHUNK bytes: replaying a 64 MB segment costs 64 reads, not two
 * per record.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal_internal.h"

#define WAL_READ_CHUNK	(1u << 20)

struct wal_iter {
	struct wal		*wal;
	struct wal_reader	 reader;
	int			 reading;	/* reader is open */
	uint64_t		 next_lsn;	/* nothing below is returned */
};

/*
 * Makes the bytes [off, off + n) available and points *p at them; *avail
 * is how many there are, fewer than n only where the readable part of
 * the file ends.
 */
static int
wal_reader_fetch(struct wal_reader *r, uint64_t off, size_t n,
    const uint8_t **p, size_t *avail)
{
	size_t	 want, got;
	ssize_t	 rc;

	*avail = 0;
	*p = NULL;
	if (off >= r->limit)
		return 0;
	if (n > r->limit - off)
		n = (size_t)(r->limit - off);
	if (off < r->window_off || off + n > r->window_off + r->window.len) {
		/* 1) Refill from `off`, reading ahead up to a chunk. */
		want = n > WAL_READ_CHUNK ? n : WAL_READ_CHUNK;
		if (want > r->limit - off)
			want = (size_t)(r->limit - off);
		buf_reset(&r->window);
		if (buf_reserve(&r->window, want) == -1)
			return -ENOMEM;
		r->window_off = off;
		/* 2) Short reads are normal; 0 means the file is shorter
		 *    than the limit said (someone cut it). */
		for (got = 0; got < want; got += (size_t)rc) {
			rc = r->storage->ops->read_at(r->file,
			    r->window.data + got, want - got, off + got);
			if (rc < 0)
				return (int)rc;
			if (rc == 0)
				break;
		}
		r->window.len = got;
	}
	*p = r->window.data + (off - r->window_off);
	*avail = r->window_off + r->window.len - off;
	if (*avail > n)
		*avail = n;
	return 0;
}

/*
 * Decodes the record at `off`: fetches its header, then, once the header
 * says how long it is, the whole record.  Returns 0 with *damage, or a
 * negative errno.
 */
static int
wal_reader_decode_at(struct wal_reader *r, uint64_t off, struct wal_record *rec,
    size_t *size, enum wal_damage *damage)
{
	const uint8_t	*p;
	size_t		 need, avail;
	int		 rc;

	need = wal_record_header_size(r->version);
	for (;;) {
		if ((rc = wal_reader_fetch(r, off, need, &p, &avail)) != 0)
			return rc;
		*damage = wal_record_decode(r->version, p, avail, rec, size);
		/* Ask for more only while the file had all we asked for. */
		if (*damage != WAL_DAMAGE_TORN || *size <= avail || avail < need)
			return 0;
		need = *size;
	}
}

int
wal_reader_open(struct wal_reader *r, struct wal_storage *st, const char *name,
    uint64_t limit, enum wal_damage *damage)
{
	struct wal_segment_header	 h;
	const uint8_t			*p;
	uint64_t			 size, name_lsn;
	size_t				 avail;
	int				 rc;

	memset(r, 0, sizeof(*r));
	buf_init(&r->window);
	r->storage = st;
	snprintf(r->name, sizeof(r->name), "%s", name);
	if ((rc = st->ops->open(st, name, WAL_STORAGE_READ, &r->file)) != 0) {
		r->file = NULL;
		return rc;
	}
	if ((rc = st->ops->size(r->file, &size)) != 0) {
		wal_reader_close(r);
		return rc;
	}
	r->limit = size < limit ? size : limit;
	rc = wal_reader_fetch(r, 0, WAL_SEGMENT_HEADER_SIZE_V1, &p, &avail);
	if (rc != 0) {
		wal_reader_close(r);
		return rc;
	}
	memset(&h, 0, sizeof(h));
	*damage = wal_segment_header_decode(p, avail, &h);
	r->version = h.version;
	if (*damage != WAL_DAMAGE_NONE)
		return 0;
	if (wal_segment_name_parse(name, &name_lsn) != 0 ||
	    name_lsn != h.first_lsn) {
		*damage = WAL_DAMAGE_NAME;
		return 0;
	}
	r->first_lsn = h.first_lsn;
	r->next_lsn = h.first_lsn;
	r->offset = h.header_size;
	return 0;
}

int
wal_reader_next(struct wal_reader *r, struct wal_record *rec,
    enum wal_damage *damage)
{
	size_t	 size;
	int	 rc;

	*damage = WAL_DAMAGE_NONE;
	if (r->offset >= r->limit)
		return 0;
	if ((rc = wal_reader_decode_at(r, r->offset, rec, &size, damage)) != 0)
		return rc;
	if (*damage != WAL_DAMAGE_NONE)
		return 0;
	if (rec->lsn != r->next_lsn) {
		*damage = WAL_DAMAGE_LSN;
		return 0;
	}
	r->offset += size;
	r->next_lsn++;
	return 1;
}

int
wal_reader_find_record(struct wal_reader *r, uint64_t after)
{
	static const uint8_t	 magic[4] = { 0x50, 0x4d, 0x51, 0x52 };
	struct wal_record	 rec;
	enum wal_damage		 damage;
	const uint8_t		*p, *hit;
	uint64_t		 off;
	size_t			 avail, size;
	int			 rc;

	for (off = after + 1; off < r->limit;) {
		if ((rc = wal_reader_fetch(r, off, WAL_READ_CHUNK, &p,
		    &avail)) != 0)
			return rc;
		if (avail < sizeof(magic))
			return 0;
		if ((hit = memmem(p, avail, magic, sizeof(magic))) == NULL) {
			/* A magic may straddle the end of the window. */
			off += avail - (sizeof(magic) - 1);
			continue;
		}
		off += (uint64_t)(hit - p);
		rc = wal_reader_decode_at(r, off, &rec, &size, &damage);
		if (rc != 0)
			return rc;
		if (damage == WAL_DAMAGE_NONE)
			return 1;
		off++;
	}
	return 0;
}

void
wal_reader_close(struct wal_reader *r)
{
	if (r->file != NULL)
		r->storage->ops->close(r->file);
	r->file = NULL;
	buf_free(&r->window);
}

int
wal_iter_open(struct wal_iter **out, struct wal *wal, uint64_t from_lsn)
{
	struct wal_iter	*it;

	if ((it = calloc(1, sizeof(*it))) == NULL)
		return -ENOMEM;
	it->wal = wal;
	it->next_lsn = from_lsn;
	*out = it;
	return 0;
}

/* Opens the reader on the segment holding it->next_lsn. */
static int
wal_iter_enter_segment(struct wal_iter *it)
{
	const struct wal_segment	*seg;
	char				 name[WAL_SEGMENT_NAME_LEN + 1];
	enum wal_damage			 damage;
	int				 rc;

	seg = &it->wal->segments[wal_segment_find(it->wal, it->next_lsn)];
	if (it->next_lsn < seg->first_lsn)
		it->next_lsn = seg->first_lsn;	/* older than the log */
	wal_segment_name(name, seg->first_lsn);
	rc = wal_reader_open(&it->reader, it->wal->storage, name, seg->size,
	    &damage);
	if (rc != 0)
		return rc;
	it->reading = 1;
	if (damage != WAL_DAMAGE_NONE)
		return -EBADMSG;
	return 0;
}

int
wal_iter_next(struct wal_iter *it, struct wal_record *rec)
{
	const struct wal_segment	*seg;
	enum wal_damage			 damage;
	int				 rc;

	for (;;) {
		if (it->wal->nsegments == 0 ||
		    it->next_lsn > it->wal->written_lsn)
			return 0;
		if (!it->reading && (rc = wal_iter_enter_segment(it)) != 0)
			return rc;
		/* The segment may have grown since the last call. */
		seg = &it->wal->segments[wal_segment_find(it->wal,
		    it->reader.first_lsn)];
		if (seg->first_lsn == it->reader.first_lsn)
			it->reader.limit = seg->size;
		rc = wal_reader_next(&it->reader, rec, &damage);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			if (rec->lsn < it->next_lsn)
				continue;
			it->next_lsn = rec->lsn + 1;
			return 1;
		}
		if (damage != WAL_DAMAGE_NONE)
			return -EBADMSG;
		if (it->reader.next_lsn > it->next_lsn)
			it->next_lsn = it->reader.next_lsn;
		/* The end of what is written: keep the place for later. */
		if (it->next_lsn > it->wal->written_lsn)
			return 0;
		/* The end of this segment: the next record is in the next. */
		wal_reader_close(&it->reader);
		it->reading = 0;
	}
}

void
wal_iter_close(struct wal_iter *it)
{
	if (it == NULL)
		return;
	if (it->reading)
		wal_reader_close(&it->reader);
	free(it);
}
