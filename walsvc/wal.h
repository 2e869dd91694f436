/*
 * wal.h - the message log: walsvc's single commit point.
 *
 * The log is a directory of segment files holding records with a magic,
 * a version, a length, a CRC-32C and a log sequence number (LSN) that
 * grows by exactly one per record across segments (docs/wal-format.md).
 * It is driven by one single-threaded event loop and built for group
 * commit: every record received in a loop turn is appended to memory,
 * then one write and one fdatasync cover them all.
 *
 *	wal_append(wal, &rec)	 encode into the pending buffer, assign the
 *				 LSN; nothing touches the disk (repeat)
 *	wal_write(wal)		 write everything pending, as few write
 *				 calls as possible -> wal_written_lsn()
 *	wal_sync(wal)		 fdatasync -> wal_synced_lsn()
 *
 * Under wal-sync=always a record is acknowledged once wal_synced_lsn()
 * reaches it; under interval once wal_written_lsn() does.
 *
 * Failures are negative errno values (-ENOSPC, -EIO, -ENOMEM, ...).  A
 * failed write or sync never loses a record that is still in memory: the
 * log forgets only what it has reported synced.  See wal_write() and
 * wal_sync() for what happens on disk.
 *
 * Appends are idempotent per origin stream: (role, slot, generation)
 * names one incarnation of a sender and `sequence` counts its appends,
 * so a record resent after a walsvc restart is recognised and answered
 * with WAL_DUPLICATE instead of being written twice.
 */
#ifndef PMQ_WAL_H
#define PMQ_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "wal_storage.h"

#define WAL_SEGMENT_SIZE_DEFAULT	(16ull << 20)	/* storage.wal-segment-size */
#define WAL_SEGMENT_SIZE_MIN		4096ull
/* Largest payload: an MQTT packet of the largest allowed size and room
 * for what walsvc adds around it. */
#define WAL_PAYLOAD_MAX			(512u << 20)

/* Results of wal_append() besides negative errors. */
#define WAL_OK		0
#define WAL_DUPLICATE	1	/* already in the log; nothing was appended */

/* Record types: enum wal_record_type in ipc.h (WAL_APPEND carries them). */

/* Who appended a record: the idempotency key. */
struct wal_origin {
	uint8_t		role;		/* enum ipc_role of the sender */
	uint16_t	slot;
	uint64_t	generation;	/* the sender's incarnation */
	uint64_t	sequence;	/* >= 1, increasing in that incarnation */
};

struct wal_record {
	uint64_t		 lsn;	/* set by wal_append and the iterator */
	uint8_t			 type;	/* enum wal_record_type, never 0 */
	uint16_t		 flags;	/* meaning set by the type; opaque here */
	struct wal_origin	 origin;
	const uint8_t		*payload;
	uint32_t		 length;
};

/* What recovery found wrong, in the order the checks run. */
enum wal_damage {
	WAL_DAMAGE_NONE = 0,
	WAL_DAMAGE_TORN,	/* the file ends inside a header or payload */
	WAL_DAMAGE_MAGIC,	/* no record (or segment) magic */
	WAL_DAMAGE_VERSION,	/* a version this code does not read */
	WAL_DAMAGE_LENGTH,	/* impossible header or payload length */
	WAL_DAMAGE_CRC,		/* checksum mismatch */
	WAL_DAMAGE_FIELD,	/* a reserved field or the type is invalid */
	WAL_DAMAGE_LSN,		/* LSN not the previous one plus one */
	WAL_DAMAGE_NAME,	/* segment name and header disagree */
};

/*
 * What wal_open() found and did.  `action` is what was done about damage
 * (in a read-only open: what a writable open would do).
 */
enum wal_recovery_action {
	WAL_RECOVERY_CLEAN = 0,		/* nothing damaged */
	WAL_RECOVERY_TRUNCATED_TAIL,	/* last segment cut at its last good
					   record (or removed, if it had not
					   even a whole header) */
	WAL_RECOVERY_SET_ASIDE,		/* damage before the last segment: the
					   log stops there; damaged and later
					   segments were kept as *.corrupt */
};

struct wal_recovery {
	uint32_t		 segments;	/* in the log after recovery */
	uint64_t		 records;	/* valid records in it */
	uint64_t		 first_lsn;	/* 0 when the log is empty */
	uint64_t		 last_lsn;	/* 0 when the log is empty */
	uint64_t		 bytes;		/* valid bytes in segment files */
	enum wal_recovery_action action;
	enum wal_damage		 damage;
	char			 damage_segment[32];	/* file name */
	uint64_t		 damage_offset;	/* where the first bad byte is */
	uint64_t		 bytes_truncated;	/* cut from the tail */
	uint32_t		 segments_set_aside;	/* renamed *.corrupt */
	uint32_t		 segments_removed;	/* header-less tails */
	/* Valid records were found after the damage: not a torn write but
	 * corruption of written data.  A copy was kept before truncating. */
	int			 records_after_damage;
	char			 why[192];	/* one line for operators */
};

struct wal_options {
	uint64_t	 segment_size;	/* 0: WAL_SEGMENT_SIZE_DEFAULT */
	int		 flags;
};
/* Inspect only: never truncates, renames, writes or syncs (the dump tool). */
#define WAL_OPEN_READONLY	0x1

struct wal;
struct wal_iter;

/*
 * Opens the log in `storage` (which stays the caller's and must outlive
 * the log) and recovers it:
 *   1) every segment is read in LSN order and every record checked
 *      (magic, version, lengths, CRC, LSN continuity);
 *   2) a torn or corrupt tail is truncated at the last good record and
 *      reported (warning); never a reason to fail;
 *   3) damage before the last segment stops the log there: the damaged
 *      segment is copied aside and cut at its last good record, the
 *      segments after it are renamed aside (NAME.corrupt), all reported
 *      at error level -- kept for the operator, never deleted;
 *   4) the sequence table of every origin stream is rebuilt;
 *   5) the last segment and the directory are synced, so everything the
 *      log holds after wal_open() counts as durable.
 * An empty directory is a new log whose first LSN is 1.  Fails only for
 * what cannot be repaired (I/O errors, an unreadable directory, a newer
 * format version, no memory): a negative errno and a message naming the
 * path in err.  `report` may be NULL.
 */
int	 wal_open(struct wal **, struct wal_storage *,
	    const struct wal_options *, struct wal_recovery *report,
	    char *err, size_t errlen);
/* Closes without writing or syncing: pending records are dropped. */
void	 wal_close(struct wal *);

/*
 * Appends a record to the pending buffer and sets rec->lsn.  Returns
 * WAL_OK; WAL_DUPLICATE (rec->lsn = 0, nothing appended) when the log
 * already holds this or a later sequence of the origin stream; -EINVAL
 * for type 0, sequence 0 or a NULL payload with a length; -EMSGSIZE for
 * a payload over WAL_PAYLOAD_MAX; -ENOMEM; -EROFS when read-only.
 */
int	 wal_append(struct wal *, struct wal_record *rec);

/*
 * Writes every pending record.  Records go to the current segment until
 * it would pass the segment size; then the current segment is synced and
 * a new one named by the next record's LSN is started (a record larger
 * than a segment gets one of its own).  Each segment written gets one
 * write call.
 * On failure (-ENOSPC, -EIO, a short write) the records that did not
 * reach the file stay pending, the file is cut back to its last whole
 * record (a new segment without a whole header is removed), and the
 * error is returned; calling again later retries, so a log that ran out
 * of space continues by itself once space returns.  Records already
 * written by the same call stay written.
 */
int	 wal_write(struct wal *);

/*
 * Makes everything written durable: fdatasync of every segment written
 * since the last sync, then fsync of the directory if a segment was
 * created.  On success wal_synced_lsn() == wal_written_lsn().
 *
 * On failure nothing new counts as durable, and the fsync is not simply
 * retried: after a writeback error Linux may have marked the dirty pages
 * clean without writing them, and a second fsync would report success
 * for data that is not on the disk (PostgreSQL's "fsyncgate").  Instead:
 *   1) the layer keeps the bytes of every record written since the last
 *      good sync, and writes them all again, at the same offsets (new
 *      segments with their headers), which makes the pages dirty again;
 *   2) the segments stay marked unsynced, so the next wal_sync() syncs
 *      them (and the directory) again, and only its success counts;
 *   3) if the rewrite fails too, wal_write() and wal_sync() redo it
 *      before anything else.
 * The bytes rewritten are the ones already there, so the records stay
 * written (wal_written_lsn() does not move back) and survive a crash of
 * the process meanwhile: what wal-sync=interval promises.
 */
int	 wal_sync(struct wal *);

uint64_t wal_next_lsn(const struct wal *);	/* the next wal_append's */
uint64_t wal_written_lsn(const struct wal *);	/* 0: none */
uint64_t wal_synced_lsn(const struct wal *);	/* 0: none */
/* Bytes appended but not yet synced (the memory the log holds). */
size_t	 wal_pending_bytes(const struct wal *);
/* Segments in the log and the first LSN of the oldest one (0: empty). */
uint32_t wal_segment_count(const struct wal *);
uint64_t wal_first_lsn(const struct wal *);
/* The first LSN of segment i, oldest first (0: no such segment). */
uint64_t wal_segment_start(const struct wal *, uint32_t i);
/* Bytes of the segment files. */
uint64_t wal_disk_bytes(const struct wal *);

/*
 * The highest sequence the log holds (pending included) for a stream;
 * returns 1, or 0 with *sequence = 0 for a stream it has never seen.
 */
int	 wal_stream_highest(const struct wal *, uint8_t role, uint16_t slot,
	    uint64_t generation, uint64_t *sequence);
/* The highest generation of any record of `role` (0: none). */
uint64_t wal_role_generation_max(const struct wal *, uint8_t role);

/*
 * Iterates over the written records, starting with the first whose LSN
 * is >= from_lsn (the oldest one if from_lsn is older than the log).
 * wal_iter_next() returns 1 with a record (payload valid until the next
 * call), 0 at the end of what is written so far (a later call sees
 * records written since), or a negative errno (-EBADMSG if a segment
 * changed under the log).
 */
int	 wal_iter_open(struct wal_iter **, struct wal *, uint64_t from_lsn);
int	 wal_iter_next(struct wal_iter *, struct wal_record *);
void	 wal_iter_close(struct wal_iter *);

/*
 * Compaction hook: removes the segments whose records all have an LSN
 * below `lsn` (never the last segment), oldest first, then syncs the
 * directory.  Deciding what is no longer needed is walsvc's business.
 * Sets *removed; returns 0 or a negative errno.
 */
int	 wal_remove_below(struct wal *, uint64_t lsn, uint32_t *removed);

const char	*wal_type_name(uint8_t type);	/* "publish", ...; NULL if
						   unknown */
int		 wal_type_parse(const char *);	/* name or number; -1 */
const char	*wal_damage_name(enum wal_damage);
const char	*wal_recovery_action_name(enum wal_recovery_action);

#endif /* PMQ_WAL_H */
