/*
 * wal_storage.h - the small table of file operations under the message log.
 *
 * The log (wal.c) never calls open(2) or fsync(2) itself: it goes through
 * a struct wal_storage bound to one directory.  Two implementations:
 *
 *   wal_storage_file   the real one: a directory on disk, O_CLOEXEC
 *                      descriptors, fdatasync(2) for files, fsync(2) of the
 *                      directory for names.
 *   wal_storage_mem    an in-memory directory for tests that models what a
 *                      crash keeps and can inject failures: write errors,
 *                      short writes, ENOSPC after N bytes, EIO on fsync,
 *                      and a power loss that discards everything not yet
 *                      synced, optionally leaving a torn partial write.
 *
 * Conventions of every operation:
 *   - success is 0 (or a byte count); failure is a negative errno value
 *     (-ENOSPC, -EIO, ...), never -1 with errno;
 *   - names are plain file names inside the storage's directory: no '/',
 *     not "." or "..";
 *   - nothing is durable until it is synced: file contents and sizes by
 *     datasync() on that file, names (create, rename, remove) by
 *     sync_dir().  The memory implementation holds the log to exactly
 *     this, so a missing sync shows up as lost data in a power-loss test.
 */
#ifndef PMQ_WAL_STORAGE_H
#define PMQ_WAL_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct wal_storage;

/* An open file; implementations extend it (it is their first member). */
struct wal_file {
	struct wal_storage	*storage;
};

enum wal_storage_mode {
	WAL_STORAGE_READ,	/* read only; the file must exist */
	WAL_STORAGE_WRITE,	/* read and write; the file must exist */
	WAL_STORAGE_CREATE,	/* read and write; created, or emptied */
};

/* Called once per directory entry by list(); non-zero stops the walk. */
typedef int (*wal_storage_list_cb)(const char *name, void *arg);

struct wal_storage_ops {
	int	 (*open)(struct wal_storage *, const char *name,
		    enum wal_storage_mode, struct wal_file **);
	/* Calls cb for every entry except "." and ".."; returns cb's non-zero
	 * value if it stopped the walk. */
	int	 (*list)(struct wal_storage *, wal_storage_list_cb, void *arg);
	int	 (*rename)(struct wal_storage *, const char *from,
		    const char *to);
	int	 (*remove)(struct wal_storage *, const char *name);
	/* Makes every create, rename and remove so far durable. */
	int	 (*sync_dir)(struct wal_storage *);
	void	 (*destroy)(struct wal_storage *);

	/* Like pread(2)/pwrite(2): the count may be short; 0 at end of file. */
	ssize_t	 (*read_at)(struct wal_file *, void *, size_t, uint64_t off);
	ssize_t	 (*write_at)(struct wal_file *, const void *, size_t,
		    uint64_t off);
	/* Makes the file's contents and size durable (fdatasync). */
	int	 (*datasync)(struct wal_file *);
	int	 (*truncate)(struct wal_file *, uint64_t size);
	int	 (*size)(struct wal_file *, uint64_t *size);
	/* Never syncs; always releases the handle. */
	void	 (*close)(struct wal_file *);
};

struct wal_storage {
	const struct wal_storage_ops	*ops;
	/* The directory, for messages ("mem:" for the memory one). */
	const char			*path;
	/* Refuses every change with -EROFS. */
	int				 readonly;
};

/*
 * The real directory.  flags: WAL_STORAGE_FILE_READONLY refuses every
 * change (the dump tool uses it); WAL_STORAGE_FILE_MKDIR creates the
 * directory (mode 0700) when it is missing.  Returns 0 or -errno.
 */
#define WAL_STORAGE_FILE_READONLY	0x1
#define WAL_STORAGE_FILE_MKDIR		0x2
int	 wal_storage_file_open(struct wal_storage **, const char *path,
	    int flags);

/* Releases a storage of either kind; NULL is allowed. */
void	 wal_storage_destroy(struct wal_storage *);
/* For implementations: a plain name inside the directory (see above). */
int	 wal_storage_name_ok(const char *name);

/*
 * The memory directory, for tests.  Faults apply to the next operations
 * until they are used up.
 */
struct wal_storage	*wal_storage_mem_new(void);

enum wal_storage_mem_op {
	WAL_STORAGE_MEM_WRITE,		/* write_at: no byte is stored */
	WAL_STORAGE_MEM_DATASYNC,	/* see below */
	WAL_STORAGE_MEM_SYNC_DIR,
	WAL_STORAGE_MEM_TRUNCATE,	/* the size does not change */
};
#define WAL_STORAGE_MEM_OPS	4
/*
 * The next `count` calls of `op` fail with -error (count -1: until
 * cleared with error 0).  A failed datasync behaves like Linux after a
 * writeback error: the data it should have written is forgotten -- the
 * pages count as clean, so a later datasync without new writes
 * "succeeds" and a power loss still loses that data.
 */
void	 wal_storage_mem_fail(struct wal_storage *, enum wal_storage_mem_op op,
	    int error, int count);
/* The next write_at stores at most `bytes` bytes and returns that count. */
void	 wal_storage_mem_short_write(struct wal_storage *, size_t bytes);
/* Files may grow by `bytes` more in total, then writes get -ENOSPC
 * (a write that only partly fits is short, as on a real disk).
 * UINT64_MAX removes the limit. */
void	 wal_storage_mem_space_left(struct wal_storage *, uint64_t bytes);
/*
 * Power loss: every file goes back to its last synced contents and the
 * directory to its last synced names.  With torn > 0, up to `torn` bytes
 * written past a file's synced end survive, as a write cut short by the
 * crash would leave them.  Open handles stay usable (for closing).
 */
void	 wal_storage_mem_power_loss(struct wal_storage *, size_t torn);

struct wal_storage_mem_stats {
	uint64_t	writes;		/* write_at calls */
	uint64_t	bytes_written;
	uint64_t	syncs;		/* datasync calls */
	uint64_t	dir_syncs;	/* sync_dir calls */
};
void	 wal_storage_mem_stats(struct wal_storage *,
	    struct wal_storage_mem_stats *);

#endif /* PMQ_WAL_STORAGE_H */
