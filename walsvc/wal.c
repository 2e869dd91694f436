/*
 * wal.c - the message log: open and close, append, write, sync (see wal.h).
 *
 * The log keeps every record after the last synced one in memory, encoded
 * exactly as it goes to disk (struct wal.records):
 *
 *	| written, not yet synced | pending (appended, not written) |
 *	0                    written_off                        records.len
 *
 * wal_write() moves the boundary right, wal_sync() drops the left part
 * once it is durable.  Keeping the written part is what lets a failed
 * fsync be handled honestly: the records are written again, never
 * assumed to be on disk.
 *
 * Files on disk only ever hold whole records up to each segment's `size`:
 * a failed write cuts the file back to that point, and if even that
 * fails, the segment is cut before anything else is written to it.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "wal_internal.h"

static struct log_ratelimit wal_write_limit, wal_sync_limit;

int
wal_segment_push(struct wal *wal, uint64_t first_lsn, uint64_t size,
    uint16_t version)
{
	struct wal_segment	*v;
	uint32_t		 cap;

	if (wal->nsegments == wal->segments_cap) {
		cap = wal->segments_cap ? wal->segments_cap * 2 : 16;
		if ((v = realloc(wal->segments, cap * sizeof(*v))) == NULL)
			return -ENOMEM;
		wal->segments = v;
		wal->segments_cap = cap;
	}
	v = &wal->segments[wal->nsegments++];
	memset(v, 0, sizeof(*v));
	v->first_lsn = first_lsn;
	v->size = size;
	v->version = version;
	return 0;
}

uint32_t
wal_segment_find(const struct wal *wal, uint64_t lsn)
{
	uint32_t	 lo = 0, hi = wal->nsegments, mid;

	/* The last segment whose first LSN is <= lsn. */
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (wal->segments[mid].first_lsn <= lsn)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static void
wal_segment_close(struct wal *wal, struct wal_segment *seg)
{
	if (seg->file != NULL)
		wal->storage->ops->close(seg->file);
	seg->file = NULL;
}

int
wal_open(struct wal **out, struct wal_storage *storage,
    const struct wal_options *options, struct wal_recovery *report,
    char *err, size_t errlen)
{
	struct wal_recovery	 ignored;
	struct wal		*wal;
	int			 rc;

	if (report == NULL)
		report = &ignored;
	memset(report, 0, sizeof(*report));
	if ((wal = calloc(1, sizeof(*wal))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", storage->path);
		return -ENOMEM;
	}
	wal->storage = storage;
	wal->segment_size = WAL_SEGMENT_SIZE_DEFAULT;
	if (options != NULL && options->segment_size != 0)
		wal->segment_size = options->segment_size;
	wal->readonly = storage->readonly ||
	    (options != NULL && (options->flags & WAL_OPEN_READONLY));
	buf_init(&wal->records);
	if (wal->segment_size < WAL_SEGMENT_SIZE_MIN) {
		snprintf(err, errlen, "%s: segment size %" PRIu64 " is below "
		    "the minimum of %llu bytes", storage->path,
		    wal->segment_size, WAL_SEGMENT_SIZE_MIN);
		wal_close(wal);
		return -EINVAL;
	}
	if ((rc = wal_recover(wal, report, err, errlen)) != 0) {
		wal_close(wal);
		return rc;
	}
	*out = wal;
	return 0;
}

void
wal_close(struct wal *wal)
{
	uint32_t	 i;

	if (wal == NULL)
		return;
	for (i = 0; i < wal->nsegments; i++)
		wal_segment_close(wal, &wal->segments[i]);
	free(wal->segments);
	buf_free(&wal->records);
	wal_streams_free(&wal->streams);
	free(wal);
}

int
wal_append(struct wal *wal, struct wal_record *rec)
{
	rec->lsn = 0;
	if (wal->readonly)
		return -EROFS;
	if (rec->type == 0 || rec->origin.sequence == 0 ||
	    (rec->payload == NULL && rec->length > 0))
		return -EINVAL;
	if (rec->length > WAL_PAYLOAD_MAX)
		return -EMSGSIZE;
	if (rec->origin.sequence <= wal_streams_get(&wal->streams, &rec->origin))
		return WAL_DUPLICATE;
	/* Room in the table first, so nothing can fail after the record is
	 * in the buffer. */
	if (wal_streams_reserve(&wal->streams) != 0)
		return -ENOMEM;
	rec->lsn = wal->next_lsn;
	if (wal_record_encode(&wal->records, rec) != 0) {
		/* The record was taken out again; the buffer is usable. */
		wal->records.failed = 0;
		rec->lsn = 0;
		return -ENOMEM;
	}
	wal_streams_note(&wal->streams, &rec->origin);
	wal->next_lsn++;
	return WAL_OK;
}

/* The segment's file, opened for writing if it was closed. */
static int
wal_segment_file(struct wal *wal, struct wal_segment *seg)
{
	char	 name[WAL_SEGMENT_NAME_LEN + 1];
	int	 rc;

	if (seg->file != NULL)
		return 0;
	wal_segment_name(name, seg->first_lsn);
	rc = wal->storage->ops->open(wal->storage, name, WAL_STORAGE_WRITE,
	    &seg->file);
	if (rc != 0)
		seg->file = NULL;
	return rc;
}

/* Writes all of p[0..len) at off, through short writes. */
int
wal_write_fully(struct wal_storage *st, struct wal_file *f, const uint8_t *p,
    size_t len, uint64_t off)
{
	ssize_t	 n;

	while (len > 0) {
		if ((n = st->ops->write_at(f, p, len, off)) < 0)
			return (int)n;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Writes a segment's header at the start of its file. */
static int
wal_segment_write_header(struct wal *wal, struct wal_segment *seg)
{
	struct buf	 header = BUF_INITIALIZER;
	int		 rc;

	if (wal_segment_header_encode(&header, seg->first_lsn) != 0)
		rc = -ENOMEM;
	else
		rc = wal_write_fully(wal->storage, seg->file, header.data,
		    header.len, 0);
	buf_free(&header);
	return rc;
}

/*
 * Creates the segment that starts with `first_lsn` and writes its header.
 * Its name becomes durable with the next wal_sync (sync_dir).
 */
static int
wal_segment_create(struct wal *wal, uint64_t first_lsn)
{
	struct wal_storage	*st = wal->storage;
	struct wal_segment	*seg;
	char			 name[WAL_SEGMENT_NAME_LEN + 1];
	int			 rc;

	if ((rc = wal_segment_push(wal, first_lsn, 0, WAL_FORMAT_VERSION)) != 0)
		return rc;
	seg = &wal->segments[wal->nsegments - 1];
	wal_segment_name(name, first_lsn);
	if ((rc = st->ops->open(st, name, WAL_STORAGE_CREATE, &seg->file)) != 0) {
		seg->file = NULL;
		wal->nsegments--;
		return rc;
	}
	seg->unsynced_name = 1;
	seg->dirty = 1;
	if ((rc = wal_segment_write_header(wal, seg)) != 0) {
		/* Without a whole header the file is no segment; if it cannot
		 * be removed, recovery removes it as an unborn tail, and the
		 * next attempt empties it (same name: same first record). */
		wal_segment_close(wal, seg);
		(void)st->ops->remove(st, name);
		wal->nsegments--;
		return rc;
	}
	seg->size = WAL_SEGMENT_HEADER_SIZE_V1;
	return 0;
}

static uint64_t
wal_pending_record_size(const uint8_t *p)
{
	return wal_record_size(buf_load_u32(p + WAL_RECORD_OFF_LENGTH));
}

/*
 * Writes the next run of pending records that belongs in one segment.
 *   1) a segment left with bytes past its last whole record by a failed
 *      write is cut first: nothing is ever written after a partial record;
 *   2) choose the segment: the current one, or a new one when there is
 *      none, when it is of another format version, or when it holds
 *      records and the next one would take it past the segment size --
 *      after syncing the current one, so that every segment but the last
 *      is durable before its successor exists: then damage before the
 *      last segment can only be damage to synced data, never a crash in
 *      the middle of a group commit (it costs one fdatasync per segment);
 *   3) take as many whole records as fit (at least one);
 *   4) write them with one call (more only if the kernel writes short);
 *   5) on failure cut the file back to its last whole record, or mark it
 *      to be cut before anything else is written to it.
 */
static int
wal_write_run(struct wal *wal)
{
	struct wal_storage	*st = wal->storage;
	struct wal_segment	*seg;
	const uint8_t		*start;
	size_t			 avail, len, size;
	uint64_t		 first_lsn, last_lsn;
	int			 rc;

	seg = wal->nsegments ? &wal->segments[wal->nsegments - 1] : NULL;
	if (seg != NULL && seg->cut_needed) {
		if ((rc = wal_segment_file(wal, seg)) != 0 ||
		    (rc = st->ops->truncate(seg->file, seg->size)) != 0)
			return rc;
		seg->cut_needed = 0;
	}

	start = wal->records.data + wal->written_off;
	first_lsn = buf_load_u64(start + WAL_RECORD_OFF_LSN);
	size = wal_pending_record_size(start);
	if (seg == NULL || seg->version != WAL_FORMAT_VERSION ||
	    (seg->size > WAL_SEGMENT_HEADER_SIZE_V1 &&
	    seg->size + size > wal->segment_size)) {
		if (seg != NULL && (rc = wal_sync(wal)) != 0)
			return rc;
		if ((rc = wal_segment_create(wal, first_lsn)) != 0) {
			log_limited(&wal_write_limit, LOG_LEVEL_ERROR,
			    "cannot create log segment", "dir=%s lsn=%" PRIu64
			    " error=\"%s\"", st->path, first_lsn,
			    strerror(-rc));
			return rc;
		}
		seg = &wal->segments[wal->nsegments - 1];
	}
	if ((rc = wal_segment_file(wal, seg)) != 0)
		return rc;

	/* The sync above dropped the synced bytes from the buffer. */
	start = wal->records.data + wal->written_off;
	avail = wal->records.len - wal->written_off;
	len = size;
	last_lsn = first_lsn;
	while (len < avail) {
		size = wal_pending_record_size(start + len);
		if (seg->size + len + size > wal->segment_size)
			break;
		last_lsn = buf_load_u64(start + len + WAL_RECORD_OFF_LSN);
		len += size;
	}

	rc = wal_write_fully(st, seg->file, start, len, seg->size);
	if (rc != 0) {
		log_limited(&wal_write_limit, LOG_LEVEL_ERROR,
		    "cannot write to the message log; records stay pending",
		    "dir=%s first_lsn=%" PRIu64 " bytes=%zu error=\"%s\"",
		    st->path, first_lsn, len, strerror(-rc));
		if (st->ops->truncate(seg->file, seg->size) != 0)
			seg->cut_needed = 1;
		return rc;
	}
	seg->size += len;
	seg->dirty = 1;
	wal->written_off += len;
	wal->written_lsn = last_lsn;
	return 0;
}

/*
 * After a failed sync: writes every byte written since the last good sync
 * again, at the same place, from the copy in wal->records.  The pages the
 * failed writeback left "clean" become dirty again, so the next fsync
 * really writes them; retrying the fsync alone would not.  The bytes are
 * the same, so the file never lacks a written record meanwhile (under
 * wal-sync=interval those were acknowledged).
 */
static int
wal_rewrite(struct wal *wal)
{
	struct wal_storage	*st = wal->storage;
	struct wal_segment	*seg;
	uint64_t		 from;
	size_t			 done = 0;
	uint32_t		 i;
	int			 rc;

	wal->rewrite_needed = 1;
	for (i = wal->synced_segments ? wal->synced_segments - 1 : 0;
	    i < wal->nsegments; i++) {
		seg = &wal->segments[i];
		if ((rc = wal_segment_file(wal, seg)) != 0)
			return rc;
		seg->dirty = 1;
		from = wal->synced_size;
		if (i + 1 != wal->synced_segments) {
			/* Created since the last sync: header and all. */
			if ((rc = wal_segment_write_header(wal, seg)) != 0)
				return rc;
			from = WAL_SEGMENT_HEADER_SIZE_V1;
		}
		if (seg->size <= from)
			continue;
		rc = wal_write_fully(st, seg->file, wal->records.data + done,
		    (size_t)(seg->size - from), from);
		if (rc != 0)
			return rc;
		done += (size_t)(seg->size - from);
	}
	if (done != wal->written_off)
		panic("message log rewrite covered %zu bytes of %zu", done,
		    wal->written_off);
	wal->rewrite_needed = 0;
	log_notice("message log rewrote its unsynced records",
	    "dir=%s synced_lsn=%" PRIu64 " written_lsn=%" PRIu64, st->path,
	    wal->synced_lsn, wal->written_lsn);
	return 0;
}

int
wal_write(struct wal *wal)
{
	int	 rc;

	if (wal->readonly)
		return -EROFS;
	if (wal->rewrite_needed && (rc = wal_rewrite(wal)) != 0)
		return rc;
	while (wal->written_off < wal->records.len)
		if ((rc = wal_write_run(wal)) != 0)
			return rc;
	return 0;
}

int
wal_sync(struct wal *wal)
{
	struct wal_storage	*st = wal->storage;
	struct wal_segment	*seg;
	uint32_t		 i, from;
	int			 rc = 0, names = 0;

	if (wal->readonly)
		return -EROFS;
	if (wal->written_lsn == wal->synced_lsn)
		return 0;
	/* 1) After a failed sync, the pages must be dirty again first. */
	if (wal->rewrite_needed && (rc = wal_rewrite(wal)) != 0)
		goto fail;
	/* 2) The data of every segment written since the last sync. */
	from = wal->synced_segments ? wal->synced_segments - 1 : 0;
	for (i = from; i < wal->nsegments; i++) {
		seg = &wal->segments[i];
		if (seg->dirty && (rc = st->ops->datasync(seg->file)) != 0)
			goto fail;
		names |= seg->unsynced_name;
	}
	/* 3) The names of the segments created since. */
	if (names && (rc = st->ops->sync_dir(st)) != 0)
		goto fail;
	/* 4) Durable: forget the written bytes, keep only the newest file
	 *    open. */
	for (i = from; i < wal->nsegments; i++) {
		seg = &wal->segments[i];
		seg->dirty = 0;
		seg->unsynced_name = 0;
		if (i + 1 < wal->nsegments)
			wal_segment_close(wal, seg);
	}
	buf_consume(&wal->records, wal->written_off);
	wal->written_off = 0;
	wal->synced_lsn = wal->written_lsn;
	wal->synced_segments = wal->nsegments;
	wal->synced_size = wal->segments[wal->nsegments - 1].size;
	return 0;
fail:
	log_limited(&wal_sync_limit, LOG_LEVEL_ERROR,
	    "message log sync failed; unsynced records will be written again",
	    "dir=%s synced_lsn=%" PRIu64 " written_lsn=%" PRIu64
	    " error=\"%s\"", st->path, wal->synced_lsn, wal->written_lsn,
	    strerror(-rc));
	/* Never retried as is: see wal_sync in wal.h.  (If the rewrite
	 * itself just failed, it stays due.) */
	if (!wal->rewrite_needed)
		(void)wal_rewrite(wal);
	return rc;
}

uint64_t
wal_next_lsn(const struct wal *wal)
{
	return wal->next_lsn;
}

uint64_t
wal_written_lsn(const struct wal *wal)
{
	return wal->written_lsn;
}

uint64_t
wal_synced_lsn(const struct wal *wal)
{
	return wal->synced_lsn;
}

size_t
wal_pending_bytes(const struct wal *wal)
{
	return wal->records.len;
}

uint32_t
wal_segment_count(const struct wal *wal)
{
	return wal->nsegments;
}

uint64_t
wal_first_lsn(const struct wal *wal)
{
	return wal->nsegments ? wal->segments[0].first_lsn : 0;
}

int
wal_stream_highest(const struct wal *wal, uint8_t role, uint16_t slot,
    uint64_t generation, uint64_t *sequence)
{
	struct wal_origin	 o = { role, slot, generation, 0 };

	*sequence = wal_streams_get(&wal->streams, &o);
	return *sequence != 0;
}

uint64_t
wal_role_generation_max(const struct wal *wal, uint8_t role)
{
	return wal->streams.generation_max[role];
}

uint64_t
wal_segment_start(const struct wal *wal, uint32_t i)
{
	return i < wal->nsegments ? wal->segments[i].first_lsn : 0;
}

uint64_t
wal_disk_bytes(const struct wal *wal)
{
	uint64_t	 n = 0;
	uint32_t	 i;

	for (i = 0; i < wal->nsegments; i++)
		n += wal->segments[i].size;
	return n;
}

int
wal_remove_below(struct wal *wal, uint64_t lsn, uint32_t *removed)
{
	struct wal_storage	*st = wal->storage;
	char			 name[WAL_SEGMENT_NAME_LEN + 1];
	int			 rc;

	*removed = 0;
	if (wal->readonly)
		return -EROFS;
	/* Only what is durable may go: an unsynced record could still have
	 * to be written again into its segment. */
	if (lsn > wal->synced_lsn + 1)
		lsn = wal->synced_lsn + 1;
	/* Segment 0 holds LSNs up to segment 1's first minus one. */
	while (wal->nsegments > 1 && wal->synced_segments > 1 &&
	    wal->segments[1].first_lsn <= lsn) {
		wal_segment_close(wal, &wal->segments[0]);
		wal_segment_name(name, wal->segments[0].first_lsn);
		if ((rc = st->ops->remove(st, name)) != 0 && rc != -ENOENT)
			return rc;
		memmove(&wal->segments[0], &wal->segments[1],
		    (wal->nsegments - 1) * sizeof(wal->segments[0]));
		wal->nsegments--;
		wal->synced_segments--;
		(*removed)++;
	}
	if (*removed > 0) {
		if ((rc = st->ops->sync_dir(st)) != 0)
			return rc;
		log_info("message log segments removed", "dir=%s count=%" PRIu32
		    " first_lsn=%" PRIu64, st->path, *removed,
		    wal->segments[0].first_lsn);
	}
	return 0;
}

static const char *const wal_type_names[] = {
	[WAL_TYPE_PUBLISH] = "publish",
	[WAL_TYPE_SESSION] = "session",
	[WAL_TYPE_SUBSCRIPTION] = "subscription",
	[WAL_TYPE_RETAINED] = "retained",
	[WAL_TYPE_ACK] = "ack",
	[WAL_TYPE_COPY] = "copy",
	[WAL_TYPE_WILL] = "will",
};
#define WAL_TYPE_NAMES	(sizeof(wal_type_names) / sizeof(wal_type_names[0]))

const char *
wal_type_name(uint8_t type)
{
	return type < WAL_TYPE_NAMES ? wal_type_names[type] : NULL;
}

int
wal_type_parse(const char *s)
{
	char		*end;
	unsigned long	 v;
	size_t		 i;

	for (i = 1; i < WAL_TYPE_NAMES; i++)
		if (strcasecmp(s, wal_type_names[i]) == 0)
			return (int)i;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v == 0 || v > 255)
		return -1;
	return (int)v;
}

const char *
wal_damage_name(enum wal_damage damage)
{
	switch (damage) {
	case WAL_DAMAGE_NONE:
		return "none";
	case WAL_DAMAGE_TORN:
		return "torn";
	case WAL_DAMAGE_MAGIC:
		return "bad-magic";
	case WAL_DAMAGE_VERSION:
		return "unknown-version";
	case WAL_DAMAGE_LENGTH:
		return "bad-length";
	case WAL_DAMAGE_CRC:
		return "bad-crc";
	case WAL_DAMAGE_FIELD:
		return "bad-field";
	case WAL_DAMAGE_LSN:
		return "lsn-gap";
	case WAL_DAMAGE_NAME:
		return "name-mismatch";
	}
	return "unknown";
}

const char *
wal_recovery_action_name(enum wal_recovery_action action)
{
	switch (action) {
	case WAL_RECOVERY_CLEAN:
		return "clean";
	case WAL_RECOVERY_TRUNCATED_TAIL:
		return "truncated-tail";
	case WAL_RECOVERY_SET_ASIDE:
		return "set-aside";
	}
	return "unknown";
}
