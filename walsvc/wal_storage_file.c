/*
 * wal_storage_file.c - the message log's storage on a real directory.
 *
 * The directory is opened once and every name is resolved relative to
 * that descriptor (openat, renameat, unlinkat), so a rename of the
 * directory's parent cannot send writes somewhere else and no path is
 * built at run time.  Every descriptor is O_CLOEXEC: walsvc must not leak
 * log files into anything it might exec.
 *
 * Durability follows the usual Linux rules: fdatasync(2) makes a file's
 * data and size durable; a new, renamed or removed name is durable only
 * after fsync(2) of the directory, which the log asks for (sync_dir).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal_storage.h"

struct file_storage {
	struct wal_storage	 base;
	int			 dirfd;
	char			*path;
};

struct open_file {
	struct wal_file		 base;
	int			 fd;
};

static int
file_dirfd(struct wal_storage *st)
{
	return ((struct file_storage *)st)->dirfd;
}

static int
file_fd(struct wal_file *f)
{
	return ((struct open_file *)f)->fd;
}

static int
file_open(struct wal_storage *st, const char *name, enum wal_storage_mode mode,
    struct wal_file **out)
{
	struct open_file	*h;
	int			 flags, fd;

	if (!wal_storage_name_ok(name))
		return -EINVAL;
	switch (mode) {
	case WAL_STORAGE_READ:
		flags = O_RDONLY;
		break;
	case WAL_STORAGE_WRITE:
		flags = O_RDWR;
		break;
	case WAL_STORAGE_CREATE:
		flags = O_RDWR | O_CREAT | O_TRUNC;
		break;
	default:
		return -EINVAL;
	}
	if (mode != WAL_STORAGE_READ && st->readonly)
		return -EROFS;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return -ENOMEM;
	/* The log's contents are nobody else's business: 0600. */
	fd = openat(file_dirfd(st), name, flags | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd == -1) {
		int error = errno;
		free(h);
		return -error;
	}
	h->base.storage = st;
	h->fd = fd;
	*out = &h->base;
	return 0;
}

static int
file_list(struct wal_storage *st, wal_storage_list_cb cb, void *arg)
{
	struct dirent	*de;
	DIR		*dir;
	int		 fd, rc = 0;

	/* A fresh open description, so concurrent walks do not share an
	 * offset with the directory descriptor. */
	fd = openat(file_dirfd(st), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if ((dir = fdopendir(fd)) == NULL) {
		rc = -errno;
		close(fd);
		return rc;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(dir)) == NULL) {
			rc = errno ? -errno : 0;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((rc = cb(de->d_name, arg)) != 0)
			break;
	}
	closedir(dir);
	return rc;
}

static int
file_rename(struct wal_storage *st, const char *from, const char *to)
{
	if (!wal_storage_name_ok(from) || !wal_storage_name_ok(to))
		return -EINVAL;
	if (st->readonly)
		return -EROFS;
	if (renameat(file_dirfd(st), from, file_dirfd(st), to) == -1)
		return -errno;
	return 0;
}

static int
file_remove(struct wal_storage *st, const char *name)
{
	if (!wal_storage_name_ok(name))
		return -EINVAL;
	if (st->readonly)
		return -EROFS;
	if (unlinkat(file_dirfd(st), name, 0) == -1)
		return -errno;
	return 0;
}

static int
file_sync_dir(struct wal_storage *st)
{
	if (st->readonly)
		return -EROFS;
	if (fsync(file_dirfd(st)) == -1)
		return -errno;
	return 0;
}

static void
file_destroy(struct wal_storage *st)
{
	struct file_storage	*fs = (struct file_storage *)st;

	close(fs->dirfd);
	free(fs->path);
	free(fs);
}

static ssize_t
file_read_at(struct wal_file *f, void *p, size_t n, uint64_t off)
{
	ssize_t	 r;

	if (off > (uint64_t)INT64_MAX)
		return -EINVAL;
	do
		r = pread(file_fd(f), p, n, (off_t)off);
	while (r == -1 && errno == EINTR);
	return r == -1 ? -errno : r;
}

static ssize_t
file_write_at(struct wal_file *f, const void *p, size_t n, uint64_t off)
{
	ssize_t	 r;

	if (off > (uint64_t)INT64_MAX)
		return -EINVAL;
	if (f->storage->readonly)
		return -EROFS;
	do
		r = pwrite(file_fd(f), p, n, (off_t)off);
	while (r == -1 && errno == EINTR);
	return r == -1 ? -errno : r;
}

static int
file_datasync(struct wal_file *f)
{
	if (fdatasync(file_fd(f)) == -1)
		return -errno;
	return 0;
}

static int
file_truncate(struct wal_file *f, uint64_t size)
{
	if (size > (uint64_t)INT64_MAX)
		return -EINVAL;
	if (f->storage->readonly)
		return -EROFS;
	if (ftruncate(file_fd(f), (off_t)size) == -1)
		return -errno;
	return 0;
}

static int
file_size(struct wal_file *f, uint64_t *size)
{
	struct stat	 sb;

	if (fstat(file_fd(f), &sb) == -1)
		return -errno;
	*size = (uint64_t)sb.st_size;
	return 0;
}

static void
file_close(struct wal_file *f)
{
	/* close(2) errors carry nothing the log could act on: every byte
	 * it relies on was checked by datasync already. */
	close(file_fd(f));
	free(f);
}

static const struct wal_storage_ops file_ops = {
	.open = file_open,
	.list = file_list,
	.rename = file_rename,
	.remove = file_remove,
	.sync_dir = file_sync_dir,
	.destroy = file_destroy,
	.read_at = file_read_at,
	.write_at = file_write_at,
	.datasync = file_datasync,
	.truncate = file_truncate,
	.size = file_size,
	.close = file_close,
};

int
wal_storage_file_open(struct wal_storage **out, const char *path, int flags)
{
	struct file_storage	*fs;
	int			 error;

	if ((flags & WAL_STORAGE_FILE_MKDIR) &&
	    !(flags & WAL_STORAGE_FILE_READONLY) && mkdir(path, 0700) == -1 &&
	    errno != EEXIST)
		return -errno;
	if ((fs = calloc(1, sizeof(*fs))) == NULL)
		return -ENOMEM;
	if ((fs->path = strdup(path)) == NULL) {
		free(fs);
		return -ENOMEM;
	}
	fs->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->dirfd == -1) {
		error = errno;
		free(fs->path);
		free(fs);
		return -error;
	}
	fs->base.ops = &file_ops;
	fs->base.path = fs->path;
	fs->base.readonly = (flags & WAL_STORAGE_FILE_READONLY) != 0;
	*out = &fs->base;
	return 0;
}
