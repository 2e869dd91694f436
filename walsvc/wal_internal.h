/*
 * wal_internal.h - what the files of the message log share among themselves.
 *
 * The log is split by concern: wal.c (life cycle, append, write, sync),
 * wal_recover.c (reading the directory back at open), wal_reader.c
 * (sequential reading of one segment, for recovery and the iterator),
 * wal_stream.c (the idempotency table) and wal_format.c (bytes on disk).
 * Nothing here is for other modules: they use wal.h.
 */
#ifndef PMQ_WAL_INTERNAL_H
#define PMQ_WAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "wal.h"
#include "wal_format.h"

/*
 * The idempotency table: per origin stream (role, slot, generation), the
 * highest sequence in the log.  Open addressing with linear probing; a
 * few hundred streams is the usual size (workers times restarts).
 */
struct wal_stream {
	uint64_t	generation;
	uint64_t	sequence;	/* 0: empty slot */
	uint16_t	slot;
	uint8_t		role;
};

struct wal_streams {
	struct wal_stream	*table;
	size_t			 capacity;	/* a power of two, or 0 */
	size_t			 used;
	uint64_t		 generation_max[256];	/* per role */
};

void	 wal_streams_free(struct wal_streams *);
/* Highest sequence of a stream, 0 if unknown. */
uint64_t wal_streams_get(const struct wal_streams *,
	    const struct wal_origin *);
/* Makes sure one more stream can be added without allocating. */
int	 wal_streams_reserve(struct wal_streams *);
/* Raises a stream's highest sequence (never lowers it); after
 * wal_streams_reserve() it cannot fail. */
int	 wal_streams_note(struct wal_streams *, const struct wal_origin *);

/* One segment file of the log. */
struct wal_segment {
	uint64_t	 first_lsn;
	uint64_t	 size;		/* bytes of header and whole records */
	uint16_t	 version;
	struct wal_file	*file;		/* open while written or unsynced */
	unsigned	 dirty:1;	/* written since the last datasync */
	unsigned	 unsynced_name:1;	/* created since the last sync_dir */
	unsigned	 cut_needed:1;	/* bytes past `size` from a failed
					   write could not be cut yet */
};

struct wal {
	struct wal_storage	*storage;
	uint64_t		 segment_size;
	int			 readonly;

	struct wal_segment	*segments;	/* oldest first */
	uint32_t		 nsegments;
	uint32_t		 segments_cap;

	uint64_t		 next_lsn;	/* of the next wal_append */
	uint64_t		 written_lsn;	/* last in a segment file */
	uint64_t		 synced_lsn;	/* last known durable */

	/*
	 * Every record after synced_lsn, encoded: [0, written_off) were
	 * written but are not yet synced, [written_off, len) are pending.
	 * Written bytes are kept until they are synced, so a failed fsync
	 * can write them again (see wal_sync in wal.h).  They lie in the
	 * files from synced_size in the last durable segment on.
	 */
	struct buf		 records;
	size_t			 written_off;

	/* Where the durable log ends: the first synced_segments segments
	 * are durable, the last of them up to synced_size bytes; later
	 * segments were created after the last sync. */
	uint32_t		 synced_segments;
	uint64_t		 synced_size;

	/* A failed sync could not write the unsynced bytes again yet:
	 * wal_write and wal_sync do it before anything else. */
	int			 rewrite_needed;

	struct wal_streams	 streams;
};

/*
 * Sequential reader of one segment, through a window of the file so a
 * scan makes a few large reads instead of two small ones per record.
 */
struct wal_reader {
	struct wal_storage	*storage;
	struct wal_file		*file;
	char			 name[WAL_SEGMENT_NAME_LEN + 1];
	uint64_t		 limit;		/* bytes that may be read */
	uint16_t		 version;
	uint64_t		 first_lsn;
	uint64_t		 offset;	/* of the next record */
	uint64_t		 next_lsn;	/* expected of the next record */
	struct buf		 window;	/* file bytes from window_off */
	uint64_t		 window_off;
};

/*
 * Opens a segment and checks its header.  limit: how many bytes of the
 * file belong to the log (UINT64_MAX: up to its current size).  Returns
 * 0 and *damage (WAL_DAMAGE_NONE if the header is good; the reader is
 * usable only then), or a negative errno for an I/O error.
 */
int	 wal_reader_open(struct wal_reader *, struct wal_storage *,
	    const char *name, uint64_t limit, enum wal_damage *damage);
/*
 * The next record: 1 with *rec (payload valid until the next call), 0 at
 * the end or on damage (*damage says which; r->offset is where it is),
 * or a negative errno for an I/O error.
 */
int	 wal_reader_next(struct wal_reader *, struct wal_record *rec,
	    enum wal_damage *damage);
/* Whether a record with a good checksum starts anywhere after offset. */
int	 wal_reader_find_record(struct wal_reader *, uint64_t after);
void	 wal_reader_close(struct wal_reader *);

/* Recovery (wal_recover.c): fills the segments, LSNs and streams. */
int	 wal_recover(struct wal *, struct wal_recovery *, char *err,
	    size_t errlen);

/* Segment array helpers (wal.c). */
int	 wal_segment_push(struct wal *, uint64_t first_lsn, uint64_t size,
	    uint16_t version);
/* Index of the segment holding `lsn`; the first if lsn is older. */
uint32_t wal_segment_find(const struct wal *, uint64_t lsn);
/* Writes all of p[0..len) at off, through short writes (wal.c). */
int	 wal_write_fully(struct wal_storage *, struct wal_file *,
	    const uint8_t *p, size_t len, uint64_t off);

#endif /* PMQ_WAL_INTERNAL_H */
