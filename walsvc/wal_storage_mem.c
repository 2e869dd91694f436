/*
 * wal_storage_mem.c - an in-memory directory that models crashes, for tests.
 *
 * The model follows what Linux promises, not what it usually does:
 *
 *   - Each file (inode) has the bytes reads see and the bytes that would
 *     survive a power loss.  datasync() copies to the durable side only
 *     what was written since the previous datasync attempt; a failed
 *     attempt forgets that range (Linux marks pages clean after a
 *     writeback error), so retrying fsync without rewriting loses data
 *     here exactly as it can on a real disk.
 *   - The directory has the names reads see and the names that would
 *     survive; sync_dir() copies one to the other.  A created file whose
 *     name was never synced disappears at power loss even if its data was.
 *   - Space is the sum of the sizes of the named files; past the limit a
 *     write stores what fits and the next one gets ENOSPC.
 *
 * Inodes are never freed before the storage itself: a power loss may
 * bring back a name that pointed at a removed file.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "wal_storage.h"

struct mem_inode {
	struct buf		 data;		/* what reads see */
	struct buf		 durable;	/* what a power loss keeps */
	uint64_t		 dirty_lo;	/* written since the last */
	uint64_t		 dirty_hi;	/* datasync attempt */
	struct mem_inode	*next;		/* all inodes, for destroy */
};

struct mem_entry {
	char			*name;
	struct mem_inode	*inode;
};

struct mem_dir {
	struct mem_entry	*v;
	size_t			 n;
};

/* A fault that fires on the next `count` calls (-1: until cleared). */
struct mem_fault {
	int	 error;
	int	 count;
};

struct mem_storage {
	struct wal_storage		 base;
	struct mem_dir			 names;		/* current */
	struct mem_dir			 durable_names;
	struct mem_inode		*inodes;
	struct mem_fault		 faults[WAL_STORAGE_MEM_OPS];
	size_t				 short_write;	/* 0: none */
	int				 short_write_armed;
	uint64_t			 space_limit;	/* total bytes */
	struct wal_storage_mem_stats	 stats;
};

struct mem_handle {
	struct wal_file		 base;
	struct mem_inode	*inode;
	int			 writable;
};

static struct mem_storage *
mem_of(struct wal_storage *st)
{
	return (struct mem_storage *)st;
}

static struct mem_inode *
mem_inode_of(struct wal_file *f)
{
	return ((struct mem_handle *)f)->inode;
}

/* Consumes one firing of a fault; returns the error to report, or 0. */
static int
mem_fault_fire(struct mem_fault *fault)
{
	if (fault->error == 0 || fault->count == 0)
		return 0;
	if (fault->count > 0)
		fault->count--;
	return fault->error;
}

static void
mem_fault_set(struct mem_fault *fault, int error, int count)
{
	fault->error = error;
	fault->count = error ? count : 0;
}

static struct mem_entry *
mem_dir_find(struct mem_dir *dir, const char *name)
{
	size_t	 i;

	for (i = 0; i < dir->n; i++)
		if (strcmp(dir->v[i].name, name) == 0)
			return &dir->v[i];
	return NULL;
}

static int
mem_dir_add(struct mem_dir *dir, const char *name, struct mem_inode *inode)
{
	struct mem_entry	*v;
	char			*copy;

	if ((copy = strdup(name)) == NULL)
		return -ENOMEM;
	if ((v = realloc(dir->v, (dir->n + 1) * sizeof(*v))) == NULL) {
		free(copy);
		return -ENOMEM;
	}
	dir->v = v;
	dir->v[dir->n].name = copy;
	dir->v[dir->n].inode = inode;
	dir->n++;
	return 0;
}

static void
mem_dir_del(struct mem_dir *dir, struct mem_entry *e)
{
	free(e->name);
	*e = dir->v[--dir->n];
}

static void
mem_dir_clear(struct mem_dir *dir)
{
	while (dir->n > 0)
		mem_dir_del(dir, &dir->v[dir->n - 1]);
}

/* Replaces `to` with a copy of `from`. */
static int
mem_dir_copy(struct mem_dir *to, const struct mem_dir *from)
{
	struct mem_dir	 copy = { NULL, 0 };
	size_t		 i;

	for (i = 0; i < from->n; i++)
		if (mem_dir_add(&copy, from->v[i].name, from->v[i].inode) != 0) {
			mem_dir_clear(&copy);
			free(copy.v);
			return -ENOMEM;
		}
	mem_dir_clear(to);
	free(to->v);
	*to = copy;
	return 0;
}

static uint64_t
mem_space_used(const struct mem_storage *ms)
{
	uint64_t	 used = 0;
	size_t		 i;

	for (i = 0; i < ms->names.n; i++)
		used += ms->names.v[i].inode->data.len;
	return used;
}

static int
mem_open(struct wal_storage *st, const char *name, enum wal_storage_mode mode,
    struct wal_file **out)
{
	struct mem_storage	*ms = mem_of(st);
	struct mem_entry	*e;
	struct mem_handle	*h;
	struct mem_inode	*inode;

	if (!wal_storage_name_ok(name))
		return -EINVAL;
	e = mem_dir_find(&ms->names, name);
	if (e == NULL && mode != WAL_STORAGE_CREATE)
		return -ENOENT;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return -ENOMEM;
	if (e != NULL) {
		inode = e->inode;
		if (mode == WAL_STORAGE_CREATE) {
			/* O_TRUNC: the old bytes are gone once this is
			 * synced, like any other size change. */
			inode->data.len = 0;
			inode->dirty_lo = inode->dirty_hi = 0;
		}
	} else {
		if ((inode = calloc(1, sizeof(*inode))) == NULL ||
		    mem_dir_add(&ms->names, name, inode) != 0) {
			free(inode);
			free(h);
			return -ENOMEM;
		}
		inode->next = ms->inodes;
		ms->inodes = inode;
	}
	h->base.storage = st;
	h->inode = inode;
	h->writable = mode != WAL_STORAGE_READ;
	*out = &h->base;
	return 0;
}

static int
mem_list(struct wal_storage *st, wal_storage_list_cb cb, void *arg)
{
	struct mem_storage	*ms = mem_of(st);
	size_t			 i;
	int			 rc;

	for (i = 0; i < ms->names.n; i++)
		if ((rc = cb(ms->names.v[i].name, arg)) != 0)
			return rc;
	return 0;
}

static int
mem_rename(struct wal_storage *st, const char *from, const char *to)
{
	struct mem_storage	*ms = mem_of(st);
	struct mem_entry	*src, *dst;

	if (!wal_storage_name_ok(from) || !wal_storage_name_ok(to))
		return -EINVAL;
	if ((src = mem_dir_find(&ms->names, from)) == NULL)
		return -ENOENT;
	if (strcmp(from, to) == 0)
		return 0;
	if ((dst = mem_dir_find(&ms->names, to)) != NULL) {
		/* rename(2) replaces the target atomically. */
		dst->inode = src->inode;
		mem_dir_del(&ms->names, src);
		return 0;
	}
	if (mem_dir_add(&ms->names, to, src->inode) != 0)
		return -ENOMEM;
	/* mem_dir_add may have moved the array: look the source up again. */
	mem_dir_del(&ms->names, mem_dir_find(&ms->names, from));
	return 0;
}

static int
mem_remove(struct wal_storage *st, const char *name)
{
	struct mem_storage	*ms = mem_of(st);
	struct mem_entry	*e;

	if (!wal_storage_name_ok(name))
		return -EINVAL;
	if ((e = mem_dir_find(&ms->names, name)) == NULL)
		return -ENOENT;
	mem_dir_del(&ms->names, e);
	return 0;
}

static int
mem_sync_dir(struct wal_storage *st)
{
	struct mem_storage	*ms = mem_of(st);
	int			 error;

	ms->stats.dir_syncs++;
	if ((error = mem_fault_fire(&ms->faults[WAL_STORAGE_MEM_SYNC_DIR])) != 0)
		return -error;
	return mem_dir_copy(&ms->durable_names, &ms->names);
}

static void
mem_destroy(struct wal_storage *st)
{
	struct mem_storage	*ms = mem_of(st);
	struct mem_inode	*inode, *next;

	mem_dir_clear(&ms->names);
	free(ms->names.v);
	mem_dir_clear(&ms->durable_names);
	free(ms->durable_names.v);
	for (inode = ms->inodes; inode != NULL; inode = next) {
		next = inode->next;
		buf_free(&inode->data);
		buf_free(&inode->durable);
		free(inode);
	}
	free(ms);
}

static ssize_t
mem_read_at(struct wal_file *f, void *p, size_t n, uint64_t off)
{
	struct mem_inode	*inode = mem_inode_of(f);

	if (off >= inode->data.len)
		return 0;
	if (n > inode->data.len - off)
		n = (size_t)(inode->data.len - off);
	memcpy(p, inode->data.data + off, n);
	return (ssize_t)n;
}

/* Grows a buffer to `len` bytes, zero-filling, like a sparse file. */
static int
mem_grow(struct buf *b, uint64_t len)
{
	if (len <= b->len)
		return 0;
	if (len > SIZE_MAX / 2)
		return -EFBIG;
	return buf_add_zero(b, (size_t)(len - b->len)) == 0 ? 0 : -ENOMEM;
}

static ssize_t
mem_write_at(struct wal_file *f, const void *p, size_t n, uint64_t off)
{
	struct mem_storage	*ms = mem_of(f->storage);
	struct mem_inode	*inode = mem_inode_of(f);
	uint64_t		 end, used, room;
	int			 error;

	if (!((struct mem_handle *)f)->writable)
		return -EBADF;
	ms->stats.writes++;
	if ((error = mem_fault_fire(&ms->faults[WAL_STORAGE_MEM_WRITE])) != 0)
		return -error;
	if (ms->short_write_armed && n > ms->short_write) {
		n = ms->short_write;
		ms->short_write_armed = 0;
	}
	/* ENOSPC: keep what fits, as a filesystem does. */
	end = off + n;
	if (end > inode->data.len) {
		used = mem_space_used(ms);
		room = used < ms->space_limit ? ms->space_limit - used : 0;
		if (end - inode->data.len > room) {
			if (off >= inode->data.len + room)
				return -ENOSPC;
			n = (size_t)(inode->data.len + room - off);
			end = off + n;
		}
	}
	if (n == 0)
		return 0;
	if ((error = mem_grow(&inode->data, end)) != 0)
		return error;
	memcpy(inode->data.data + off, p, n);
	if (inode->dirty_lo == inode->dirty_hi) {
		inode->dirty_lo = off;
		inode->dirty_hi = end;
	} else {
		if (off < inode->dirty_lo)
			inode->dirty_lo = off;
		if (end > inode->dirty_hi)
			inode->dirty_hi = end;
	}
	ms->stats.bytes_written += n;
	return (ssize_t)n;
}

static int
mem_datasync(struct wal_file *f)
{
	struct mem_storage	*ms = mem_of(f->storage);
	struct mem_inode	*inode = mem_inode_of(f);
	uint64_t		 lo, hi;
	int			 error;

	ms->stats.syncs++;
	lo = inode->dirty_lo;
	hi = inode->dirty_hi < inode->data.len ? inode->dirty_hi :
	    inode->data.len;
	inode->dirty_lo = inode->dirty_hi = 0;
	if ((error = mem_fault_fire(&ms->faults[WAL_STORAGE_MEM_DATASYNC])) != 0)
		return -error;	/* and the dirty range is forgotten */
	/* The size is durable now; bytes never written durably read as 0. */
	if (inode->durable.len > inode->data.len)
		inode->durable.len = inode->data.len;
	else if ((error = mem_grow(&inode->durable, inode->data.len)) != 0)
		return error;
	if (lo < hi)
		memcpy(inode->durable.data + lo, inode->data.data + lo,
		    (size_t)(hi - lo));
	return 0;
}

static int
mem_truncate(struct wal_file *f, uint64_t size)
{
	struct mem_storage	*ms = mem_of(f->storage);
	struct mem_inode	*inode = mem_inode_of(f);
	int			 error;

	if (!((struct mem_handle *)f)->writable)
		return -EBADF;
	if ((error = mem_fault_fire(&ms->faults[WAL_STORAGE_MEM_TRUNCATE])) != 0)
		return -error;
	if (size < inode->data.len) {
		inode->data.len = (size_t)size;
		return 0;
	}
	if ((error = mem_grow(&inode->data, size)) != 0)
		return error;
	return 0;
}

static int
mem_size(struct wal_file *f, uint64_t *size)
{
	*size = mem_inode_of(f)->data.len;
	return 0;
}

static void
mem_close(struct wal_file *f)
{
	free(f);
}

static const struct wal_storage_ops mem_ops = {
	.open = mem_open,
	.list = mem_list,
	.rename = mem_rename,
	.remove = mem_remove,
	.sync_dir = mem_sync_dir,
	.destroy = mem_destroy,
	.read_at = mem_read_at,
	.write_at = mem_write_at,
	.datasync = mem_datasync,
	.truncate = mem_truncate,
	.size = mem_size,
	.close = mem_close,
};

struct wal_storage *
wal_storage_mem_new(void)
{
	struct mem_storage	*ms;

	if ((ms = calloc(1, sizeof(*ms))) == NULL)
		return NULL;
	ms->base.ops = &mem_ops;
	ms->base.path = "mem:";
	ms->space_limit = UINT64_MAX;
	return &ms->base;
}

void
wal_storage_mem_fail(struct wal_storage *st, enum wal_storage_mem_op op,
    int error, int count)
{
	if ((unsigned)op < WAL_STORAGE_MEM_OPS)
		mem_fault_set(&mem_of(st)->faults[op], error, count);
}

void
wal_storage_mem_short_write(struct wal_storage *st, size_t bytes)
{
	mem_of(st)->short_write = bytes;
	mem_of(st)->short_write_armed = 1;
}

void
wal_storage_mem_space_left(struct wal_storage *st, uint64_t bytes)
{
	struct mem_storage	*ms = mem_of(st);
	uint64_t		 used = mem_space_used(ms);

	ms->space_limit = bytes > UINT64_MAX - used ? UINT64_MAX : used + bytes;
}

void
wal_storage_mem_power_loss(struct wal_storage *st, size_t torn)
{
	struct mem_storage	*ms = mem_of(st);
	struct mem_inode	*inode;
	size_t			 keep, extra;

	/* 1) Every file back to its durable bytes, plus a torn fragment of
	 *    what was being appended when the power went. */
	for (inode = ms->inodes; inode != NULL; inode = inode->next) {
		keep = inode->durable.len;
		extra = 0;
		if (torn > 0 && inode->data.len > keep)
			extra = inode->data.len - keep < torn ?
			    inode->data.len - keep : torn;
		/* data has always been at least as large as durable (durable
		 * only ever grows to data's size), so it has room for it. */
		if (keep > 0)
			memcpy(inode->data.data, inode->durable.data, keep);
		inode->data.len = keep + extra;
		inode->dirty_lo = inode->dirty_hi = 0;
		/* What survived is on the platter now. */
		buf_reset(&inode->durable);
		buf_add(&inode->durable, inode->data.data, inode->data.len);
	}
	/* 2) The directory back to its durable names. */
	mem_dir_copy(&ms->names, &ms->durable_names);
	/* 3) The faults were the old machine's. */
	memset(ms->faults, 0, sizeof(ms->faults));
	ms->short_write_armed = 0;
	ms->space_limit = UINT64_MAX;
}

void
wal_storage_mem_stats(struct wal_storage *st, struct wal_storage_mem_stats *out)
{
	*out = mem_of(st)->stats;
}
