/*
 * wal_recover.c - reading the message log back at open, and repairing it.
 *
 * Every segment is read in LSN order and every record checked; the first
 * damage found ends the log.  What happens to the damage depends on where
 * it is:
 *
 *   - In the last segment it is what a crash in the middle of a write
 *     leaves (a torn record, a stale CRC): records after the last synced
 *     one were never acknowledged, so the segment is cut at its last good
 *     record and the log goes on.  If valid records follow the damage it
 *     was not a torn write but damaged data: a copy of the segment is set
 *     aside first, and it is reported as an error.
 *   - Before the last segment, records the log once synced are damaged or
 *     missing.  The log cannot skip the hole (LSNs are continuous and the
 *     index replays in order), so it stops there, and everything from the
 *     damage on is kept as NAME.corrupt for the operator.  Deleting it
 *     would destroy the only copy of acknowledged messages.
 *
 * A read-only open (the dump tool) runs the same checks and reports what
 * a writable open would do, without changing anything.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wal_internal.h"

#define WAL_COPY_CHUNK		(1u << 20)
#define WAL_ASIDE_TRIES		1000

struct wal_listed {
	uint64_t	 first_lsn;
	char		 name[WAL_SEGMENT_NAME_LEN + 1];
};

struct wal_listing {
	struct wal_listed	*v;
	size_t			 n;
	size_t			 cap;
};

/* Where the scan stopped, and why. */
struct wal_stop {
	size_t		 index;		/* in the listing */
	enum wal_damage	 damage;
	uint64_t	 offset;
	uint64_t	 file_size;
	int		 in_header;	/* the segment itself is unusable */
	uint16_t	 version;	/* of the segment */
};

static int
wal_listing_add(const char *name, void *arg)
{
	struct wal_listing	*l = arg;
	struct wal_listed	*v;
	uint64_t		 lsn;

	/* Anything that is not a segment (.corrupt copies, an operator's
	 * notes) is not the log's business. */
	if (wal_segment_name_parse(name, &lsn) != 0)
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		if ((v = realloc(l->v, l->cap * sizeof(*v))) == NULL)
			return -ENOMEM;
		l->v = v;
	}
	l->v[l->n].first_lsn = lsn;
	snprintf(l->v[l->n].name, sizeof(l->v[l->n].name), "%s", name);
	l->n++;
	return 0;
}

static int
wal_listed_cmp(const void *a, const void *b)
{
	const struct wal_listed	*x = a, *y = b;

	return x->first_lsn < y->first_lsn ? -1 : x->first_lsn > y->first_lsn;
}

/* Finds a name for a damaged segment that is not taken yet. */
static int
wal_aside_name(struct wal_storage *st, const char *name, char *out,
    size_t outlen)
{
	struct wal_file	*f;
	int		 i, rc;

	for (i = 0; i < WAL_ASIDE_TRIES; i++) {
		if (i == 0)
			snprintf(out, outlen, "%s%s", name, WAL_CORRUPT_SUFFIX);
		else
			snprintf(out, outlen, "%s%s.%d", name,
			    WAL_CORRUPT_SUFFIX, i);
		rc = st->ops->open(st, out, WAL_STORAGE_READ, &f);
		if (rc == -ENOENT)
			return 0;
		if (rc != 0)
			return rc;
		st->ops->close(f);
	}
	return -EEXIST;
}

static int
wal_rename_aside(struct wal_storage *st, const char *name)
{
	char	 aside[WAL_SEGMENT_NAME_LEN + 32];
	int	 rc;

	if ((rc = wal_aside_name(st, name, aside, sizeof(aside))) != 0)
		return rc;
	if ((rc = st->ops->rename(st, name, aside)) != 0)
		return rc;
	log_error("message log segment set aside", "segment=%s kept_as=%s",
	    name, aside);
	return 0;
}

/*
 * Copies a segment aside, leaving the original in place: the log keeps
 * using its good records.
 *   1) copy into NAME.corrupt.tmp and sync it;
 *   2) rename it to the first free NAME.corrupt[.N] (made durable by the
 *      caller's directory sync).
 * A crash between the two leaves only a .tmp the next attempt overwrites.
 */
static int
wal_copy_aside(struct wal_storage *st, const char *name)
{
	struct wal_file	*from = NULL, *to = NULL;
	char		 aside[WAL_SEGMENT_NAME_LEN + 32];
	char		 tmp[WAL_SEGMENT_NAME_LEN + 32];
	uint8_t		*chunk;
	uint64_t	 off = 0;
	ssize_t		 n;
	int		 rc;

	snprintf(tmp, sizeof(tmp), "%s%s.tmp", name, WAL_CORRUPT_SUFFIX);
	if ((chunk = malloc(WAL_COPY_CHUNK)) == NULL)
		return -ENOMEM;
	if ((rc = st->ops->open(st, name, WAL_STORAGE_READ, &from)) != 0 ||
	    (rc = st->ops->open(st, tmp, WAL_STORAGE_CREATE, &to)) != 0)
		goto done;
	for (;;) {
		if ((n = st->ops->read_at(from, chunk, WAL_COPY_CHUNK, off)) < 0) {
			rc = (int)n;
			goto done;
		}
		if (n == 0)
			break;
		if ((rc = wal_write_fully(st, to, chunk, (size_t)n, off)) != 0)
			goto done;
		off += (uint64_t)n;
	}
	if ((rc = st->ops->datasync(to)) != 0 ||
	    (rc = wal_aside_name(st, name, aside, sizeof(aside))) != 0 ||
	    (rc = st->ops->rename(st, tmp, aside)) != 0)
		goto done;
	log_error("message log segment copied aside", "segment=%s kept_as=%s",
	    name, aside);
done:
	if (from != NULL)
		st->ops->close(from);
	if (to != NULL)
		st->ops->close(to);
	free(chunk);
	return rc;
}

/* Cuts a segment at `size` and makes that durable. */
static int
wal_cut_segment(struct wal_storage *st, const char *name, uint64_t size)
{
	struct wal_file	*f;
	int		 rc;

	if ((rc = st->ops->open(st, name, WAL_STORAGE_WRITE, &f)) != 0)
		return rc;
	if ((rc = st->ops->truncate(f, size)) == 0)
		rc = st->ops->datasync(f);
	st->ops->close(f);
	return rc;
}

/*
 * Reads one segment into the log.  Returns 0 when the whole segment is
 * good, 1 when it stopped at damage (described in *stop), or a negative
 * errno.
 */
static int
wal_scan_segment(struct wal *wal, const struct wal_listed *seg, size_t index,
    struct wal_recovery *rep, struct wal_stop *stop)
{
	struct wal_reader	 r;
	struct wal_record	 rec;
	enum wal_damage		 damage;
	int			 rc, more;

	memset(stop, 0, sizeof(*stop));
	stop->index = index;
	rc = wal_reader_open(&r, wal->storage, seg->name, UINT64_MAX, &damage);
	if (rc != 0)
		return rc;
	stop->file_size = r.limit;
	stop->version = r.version;
	/* The segments must follow each other without a gap or overlap. */
	if (damage == WAL_DAMAGE_NONE && wal->nsegments > 0 &&
	    r.first_lsn != wal->next_lsn)
		damage = WAL_DAMAGE_LSN;
	if (damage != WAL_DAMAGE_NONE) {
		stop->damage = damage;
		stop->in_header = 1;
		rc = 1;
		/* A version this code cannot read is not damage to repair. */
		if (damage == WAL_DAMAGE_VERSION)
			rc = -EPROTONOSUPPORT;
		goto done;
	}
	if (wal->nsegments == 0)
		wal->next_lsn = r.first_lsn;
	if ((rc = wal_segment_push(wal, r.first_lsn, r.offset, r.version)) != 0)
		goto done;
	while ((more = wal_reader_next(&r, &rec, &damage)) == 1) {
		if ((rc = wal_streams_note(&wal->streams, &rec.origin)) != 0)
			goto done;
		rep->records++;
		wal->next_lsn = rec.lsn + 1;
		wal->segments[wal->nsegments - 1].size = r.offset;
	}
	if (more < 0) {
		rc = more;
		goto done;
	}
	rc = 0;
	if (damage != WAL_DAMAGE_NONE) {
		stop->damage = damage;
		stop->offset = r.offset;
		/* Good records after a bad one: data damaged in place, or a
		 * multi-page write torn out of order.  Worth a copy before
		 * anything is cut. */
		if ((rc = wal_reader_find_record(&r, r.offset)) >= 0) {
			rep->records_after_damage = rc;
			rc = 1;
		}
	}
done:
	wal_reader_close(&r);
	return rc;
}

/* A tail segment without even a whole header: a crash while creating it. */
static int
wal_stop_is_unborn(const struct wal_stop *stop)
{
	return stop->in_header && stop->damage == WAL_DAMAGE_TORN &&
	    stop->file_size < WAL_SEGMENT_HEADER_SIZE_V1;
}

/*
 * Repairs the damage the scan stopped at (nothing in a read-only open).
 * The order keeps every step safe to repeat after a crash: the next open
 * finds the same damage, or less of it, and a copy is always made before
 * anything is cut.
 */
static int
wal_repair(struct wal *wal, const struct wal_listing *l,
    const struct wal_stop *stop, struct wal_recovery *rep)
{
	struct wal_storage	*st = wal->storage;
	const char		*name = l->v[stop->index].name;
	int			 tail = stop->index == l->n - 1;
	size_t			 i;
	int			 rc;

	if (tail && wal_stop_is_unborn(stop)) {
		rep->action = WAL_RECOVERY_TRUNCATED_TAIL;
		rep->segments_removed = 1;
		rep->bytes_truncated = stop->file_size;
		if (wal->readonly)
			return 0;
		if ((rc = st->ops->remove(st, name)) != 0)
			return rc;
		return st->ops->sync_dir(st);
	}
	if (tail && !stop->in_header) {
		rep->action = WAL_RECOVERY_TRUNCATED_TAIL;
		rep->bytes_truncated = stop->file_size - stop->offset;
		if (wal->readonly)
			return 0;
		/* 1) Damaged data, not a torn write: keep a copy first. */
		if (rep->records_after_damage) {
			if ((rc = wal_copy_aside(st, name)) != 0 ||
			    (rc = st->ops->sync_dir(st)) != 0)
				return rc;
		}
		/* 2) Cut at the last good record. */
		return wal_cut_segment(st, name, stop->offset);
	}

	rep->action = WAL_RECOVERY_SET_ASIDE;
	rep->segments_set_aside = (uint32_t)(l->n - stop->index);
	if (!stop->in_header)
		rep->bytes_truncated = stop->file_size - stop->offset;
	if (wal->readonly)
		return 0;
	/* 1) The damaged segment: copy it aside when the log keeps its good
	 *    records, rename it aside when there are none. */
	rc = stop->in_header ? wal_rename_aside(st, name) :
	    wal_copy_aside(st, name);
	if (rc != 0)
		return rc;
	/* 2) Every later segment: past the hole, the log cannot use them. */
	for (i = stop->index + 1; i < l->n; i++)
		if ((rc = wal_rename_aside(st, l->v[i].name)) != 0)
			return rc;
	/* 3) Make the renames durable before the cut. */
	if ((rc = st->ops->sync_dir(st)) != 0)
		return rc;
	/* 4) Cut the damaged segment at its last good record. */
	if (!stop->in_header)
		return wal_cut_segment(st, name, stop->offset);
	return 0;
}

static void
wal_report(struct wal *wal, const struct wal_listing *l,
    const struct wal_stop *stop, struct wal_recovery *rep)
{
	const char	*would = wal->readonly ? "would be " : "";
	uint32_t	 i;

	rep->segments = wal->nsegments;
	for (i = 0; i < wal->nsegments; i++)
		rep->bytes += wal->segments[i].size;
	if (wal->nsegments > 0) {
		rep->first_lsn = wal->segments[0].first_lsn;
		rep->last_lsn = wal->next_lsn - 1;
		if (rep->last_lsn < rep->first_lsn)
			rep->first_lsn = rep->last_lsn = 0;
	}
	if (stop == NULL) {
		snprintf(rep->why, sizeof(rep->why), "clean");
		return;
	}
	rep->damage = stop->damage;
	rep->damage_offset = stop->offset;
	snprintf(rep->damage_segment, sizeof(rep->damage_segment), "%s",
	    l->v[stop->index].name);
	switch (rep->action) {
	case WAL_RECOVERY_TRUNCATED_TAIL:
		if (rep->segments_removed)
			snprintf(rep->why, sizeof(rep->why),
			    "segment %s has no whole header (%" PRIu64
			    " bytes): %sremoved", rep->damage_segment,
			    stop->file_size, would);
		else
			snprintf(rep->why, sizeof(rep->why),
			    "%s record at %s offset %" PRIu64 ": %" PRIu64
			    " bytes %struncated%s", wal_damage_name(stop->damage),
			    rep->damage_segment, stop->offset,
			    rep->bytes_truncated, would,
			    rep->records_after_damage ?
			    ", valid records follow (copy kept)" : "");
		break;
	case WAL_RECOVERY_SET_ASIDE:
		snprintf(rep->why, sizeof(rep->why),
		    "%s %s at %s offset %" PRIu64 " before the tail: log stops "
		    "at lsn %" PRIu64 ", %" PRIu32 " segment(s) %sset aside",
		    wal_damage_name(stop->damage),
		    stop->in_header ? "segment header" : "record",
		    rep->damage_segment, stop->offset, wal->next_lsn - 1,
		    rep->segments_set_aside, would);
		break;
	case WAL_RECOVERY_CLEAN:
		break;
	}
}

/*
 * Writes a segment's bytes back where they are, as reads return them.
 * A predecessor whose fdatasync failed may have died before it could
 * write its unsynced records again (wal_sync in wal.h): the kernel then
 * holds them as clean pages it never wrote, and an fdatasync from this
 * process would succeed without writing them.  Writing them makes them
 * dirty again, so the sync below covers them.
 */
static int
wal_rewrite_segment(struct wal_storage *st, struct wal_file *f,
    uint64_t size)
{
	uint8_t		*chunk;
	uint64_t	 off = 0;
	size_t		 want;
	ssize_t		 n;
	int		 rc = 0;

	if ((chunk = malloc(WAL_COPY_CHUNK)) == NULL)
		return -ENOMEM;
	while (off < size) {
		want = size - off < WAL_COPY_CHUNK ? (size_t)(size - off) :
		    WAL_COPY_CHUNK;
		if ((n = st->ops->read_at(f, chunk, want, off)) <= 0) {
			rc = n < 0 ? (int)n : -EIO;
			break;
		}
		if ((rc = wal_write_fully(st, f, chunk, (size_t)n, off)) != 0)
			break;
		off += (uint64_t)n;
	}
	free(chunk);
	return rc;
}

/* The last segment becomes the one appended to; all of it is synced. */
static int
wal_recover_finish(struct wal *wal)
{
	struct wal_segment	*seg;
	char			 name[WAL_SEGMENT_NAME_LEN + 1];
	int			 rc;

	wal->written_lsn = wal->synced_lsn = wal->next_lsn - 1;
	wal->synced_segments = wal->nsegments;
	wal->synced_size = 0;
	if (wal->nsegments == 0)
		return 0;
	seg = &wal->segments[wal->nsegments - 1];
	wal->synced_size = seg->size;
	if (wal->readonly)
		return 0;
	/* Records a crashed predecessor wrote but never synced are in the
	 * page cache only, perhaps as pages a failed writeback marked clean:
	 * write them again and sync them (and every name) before anything
	 * in the log is reported durable.  Only the last segment can hold
	 * them: every other one was synced before its successor existed. */
	wal_segment_name(name, seg->first_lsn);
	rc = wal->storage->ops->open(wal->storage, name, WAL_STORAGE_WRITE,
	    &seg->file);
	if (rc != 0) {
		seg->file = NULL;
		return rc;
	}
	if ((rc = wal_rewrite_segment(wal->storage, seg->file,
	    seg->size)) != 0 ||
	    (rc = wal->storage->ops->datasync(seg->file)) != 0)
		return rc;
	return wal->storage->ops->sync_dir(wal->storage);
}

int
wal_recover(struct wal *wal, struct wal_recovery *rep, char *err,
    size_t errlen)
{
	struct wal_storage	*st = wal->storage;
	struct wal_listing	 l = { NULL, 0, 0 };
	struct wal_stop		 stop;
	const char		*what = "cannot list the log directory";
	size_t			 i = 0;
	int			 rc, damaged = 0;

	memset(&stop, 0, sizeof(stop));
	/* 1) The segments, oldest first. */
	if ((rc = st->ops->list(st, wal_listing_add, &l)) != 0)
		goto fail;
	if (l.n > 0)
		qsort(l.v, l.n, sizeof(l.v[0]), wal_listed_cmp);
	wal->next_lsn = 1;

	/* 2) Every record of every segment, up to the first damage. */
	what = "cannot read segment";
	for (i = 0; i < l.n; i++) {
		rc = wal_scan_segment(wal, &l.v[i], i, rep, &stop);
		if (rc < 0)
			goto fail;
		if (rc == 1) {
			damaged = 1;
			break;
		}
	}
	/* A log whose first segment is unusable resumes where that
	 * segment said it started. */
	if (damaged && wal->nsegments == 0 && stop.in_header &&
	    l.v[stop.index].first_lsn > 0)
		wal->next_lsn = l.v[stop.index].first_lsn;

	/* 3) Repair the damage, 4) sync, 5) tell. */
	what = "cannot repair damaged segment";
	if (damaged && (rc = wal_repair(wal, &l, &stop, rep)) != 0)
		goto fail;
	what = "cannot sync the log";
	if ((rc = wal_recover_finish(wal)) != 0)
		goto fail;
	wal_report(wal, &l, damaged ? &stop : NULL, rep);
	if (!damaged)
		log_info("message log opened", "dir=%s segments=%" PRIu32
		    " records=%" PRIu64 " last_lsn=%" PRIu64, st->path,
		    rep->segments, rep->records, rep->last_lsn);
	else if (rep->action == WAL_RECOVERY_SET_ASIDE ||
	    rep->records_after_damage)
		log_error("message log damaged: acknowledged records may be "
		    "lost; damaged segments kept", "dir=%s %s", st->path,
		    rep->why);
	else
		log_warnx("message log tail torn by a crash", "dir=%s %s",
		    st->path, rep->why);
	free(l.v);
	return 0;
fail:
	if (rc == -EPROTONOSUPPORT)
		snprintf(err, errlen, "%s: segment %s has format version %"
		    PRIu16 "; this build reads version %d: refusing to touch "
		    "it (was the log written by a newer PromptMQ?)", st->path,
		    l.v[i].name, stop.version, WAL_FORMAT_VERSION);
	else if (i < l.n)
		snprintf(err, errlen, "%s: %s %s: %s", st->path, what,
		    l.v[i].name, strerror(-rc));
	else
		snprintf(err, errlen, "%s: %s: %s", st->path, what,
		    strerror(-rc));
	free(l.v);
	return rc;
}
