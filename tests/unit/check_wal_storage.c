/*
 * check_wal_storage.c - unit tests of the storage under the message log.
 *
 * The file implementation against a real temporary directory (including
 * the message log on top of it), and the memory implementation's crash
 * model: the log's power-loss tests mean something only if the model
 * loses exactly what a real machine may lose.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "wal.h"
#include "wal_storage.h"

static char			 dir[PATH_MAX];
static struct wal_storage	*st;

static void
remove_tree(const char *path)
{
	char		 p[PATH_MAX * 2];
	struct dirent	*de;
	DIR		*d;

	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (unlink(p) == -1)
			remove_tree(p);
	}
	closedir(d);
	rmdir(path);
}

static void
file_setup(void)
{
	const char	*tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/check_wal_storage.XXXXXX",
	    tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(wal_storage_file_open(&st, dir, 0), 0);
}

static void
file_teardown(void)
{
	wal_storage_destroy(st);
	remove_tree(dir);
}

static void
mem_setup(void)
{
	st = wal_storage_mem_new();
	ck_assert_ptr_nonnull(st);
}

static void
mem_teardown(void)
{
	wal_storage_destroy(st);
}

static struct wal_file *
open_ok(const char *name, enum wal_storage_mode mode)
{
	struct wal_file	*f;

	ck_assert_int_eq(st->ops->open(st, name, mode, &f), 0);
	return f;
}

static void
write_ok(struct wal_file *f, const char *s, uint64_t off)
{
	ck_assert_int_eq(st->ops->write_at(f, s, strlen(s), off),
	    (ssize_t)strlen(s));
}

/* Reads a whole (small) file as a string. */
static const char *
contents(const char *name)
{
	static char	 text[256];
	struct wal_file	*f;
	ssize_t		 n;

	if (st->ops->open(st, name, WAL_STORAGE_READ, &f) != 0)
		return NULL;
	n = st->ops->read_at(f, text, sizeof(text) - 1, 0);
	ck_assert_int_ge(n, 0);
	text[n] = '\0';
	st->ops->close(f);
	return text;
}

/* A new, empty file whose name is durable. */
static struct wal_file *
create_named(const char *name)
{
	struct wal_file	*f = open_ok(name, WAL_STORAGE_CREATE);

	ck_assert_int_eq(st->ops->sync_dir(st), 0);
	return f;
}

/* A file with its contents and its name on the platter. */
static void
write_durably(const char *name, const char *text)
{
	struct wal_file	*f;

	f = open_ok(name, WAL_STORAGE_CREATE);
	write_ok(f, text, 0);
	ck_assert_int_eq(st->ops->datasync(f), 0);
	st->ops->close(f);
	ck_assert_int_eq(st->ops->sync_dir(st), 0);
}

static int
count_entry(const char *name, void *arg)
{
	(void)name;
	(*(int *)arg)++;
	return 0;
}

static int
stop_at_b(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "b") == 0 ? 7 : 0;
}

/* Operations every implementation must get right. */

START_TEST(test_basic_operations)
{
	struct wal_file	*f;
	uint64_t	 size;
	char		 b[16];
	int		 n = 0;

	f = open_ok("a", WAL_STORAGE_CREATE);
	write_ok(f, "hello world", 0);
	write_ok(f, "W", 6);
	ck_assert_int_eq(st->ops->size(f, &size), 0);
	ck_assert_uint_eq(size, 11);
	ck_assert_int_eq(st->ops->read_at(f, b, 5, 6), 5);
	ck_assert_mem_eq(b, "World", 5);
	ck_assert_int_eq(st->ops->read_at(f, b, sizeof(b), 11), 0);
	ck_assert_int_eq(st->ops->truncate(f, 5), 0);
	ck_assert_int_eq(st->ops->datasync(f), 0);
	st->ops->close(f);
	ck_assert_str_eq(contents("a"), "hello");

	f = open_ok("b", WAL_STORAGE_CREATE);
	st->ops->close(f);
	ck_assert_int_eq(st->ops->list(st, count_entry, &n), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(st->ops->list(st, stop_at_b, NULL), 7);

	ck_assert_int_eq(st->ops->rename(st, "a", "c"), 0);
	ck_assert_ptr_null(contents("a"));
	ck_assert_str_eq(contents("c"), "hello");
	/* rename replaces its target */
	ck_assert_int_eq(st->ops->rename(st, "b", "c"), 0);
	ck_assert_str_eq(contents("c"), "");
	ck_assert_int_eq(st->ops->remove(st, "c"), 0);
	ck_assert_int_eq(st->ops->sync_dir(st), 0);
	n = 0;
	ck_assert_int_eq(st->ops->list(st, count_entry, &n), 0);
	ck_assert_int_eq(n, 0);

	/* CREATE empties an existing file; WRITE and READ need one. */
	f = open_ok("d", WAL_STORAGE_CREATE);
	write_ok(f, "old", 0);
	st->ops->close(f);
	st->ops->close(open_ok("d", WAL_STORAGE_CREATE));
	ck_assert_str_eq(contents("d"), "");
	ck_assert_int_eq(st->ops->open(st, "nope", WAL_STORAGE_WRITE, &f),
	    -ENOENT);
	ck_assert_int_eq(st->ops->open(st, "nope", WAL_STORAGE_READ, &f),
	    -ENOENT);
	ck_assert_int_eq(st->ops->remove(st, "nope"), -ENOENT);
}
END_TEST

START_TEST(test_names_stay_in_the_directory)
{
	struct wal_file	*f;

	ck_assert_int_eq(st->ops->open(st, "../x", WAL_STORAGE_CREATE, &f),
	    -EINVAL);
	ck_assert_int_eq(st->ops->open(st, "..", WAL_STORAGE_READ, &f),
	    -EINVAL);
	ck_assert_int_eq(st->ops->open(st, "", WAL_STORAGE_READ, &f), -EINVAL);
	ck_assert_int_eq(st->ops->rename(st, "a", "sub/a"), -EINVAL);
	ck_assert_int_eq(st->ops->remove(st, "/etc/passwd"), -EINVAL);
}
END_TEST

/* The file implementation. */

START_TEST(test_file_descriptors_close_on_exec)
{
	char		 path[PATH_MAX + 64], target[PATH_MAX];
	struct wal_file	*f;
	struct dirent	*de;
	DIR		*d;
	ssize_t		 n;
	int		 fd, seen = 0;

	f = open_ok("segment", WAL_STORAGE_CREATE);
	/* Every descriptor pointing into the log directory is O_CLOEXEC. */
	ck_assert_ptr_nonnull(d = opendir("/proc/self/fd"));
	while ((de = readdir(d)) != NULL) {
		fd = atoi(de->d_name);
		if (de->d_name[0] == '.' || fd == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if ((n = readlink(path, target, sizeof(target) - 1)) < 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, dir, strlen(dir)) != 0)
			continue;
		ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
		seen++;
	}
	closedir(d);
	ck_assert_int_ge(seen, 2);	/* the directory and the file */
	st->ops->close(f);
}
END_TEST

START_TEST(test_file_mode_private)
{
	char		 path[PATH_MAX + 16];
	struct stat	 sb;

	st->ops->close(open_ok("segment", WAL_STORAGE_CREATE));
	snprintf(path, sizeof(path), "%s/segment", dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 077, 0);
}
END_TEST

START_TEST(test_file_readonly)
{
	struct wal_storage	*ro;
	struct wal_file		*f;
	char			 b[4];

	f = open_ok("a", WAL_STORAGE_CREATE);
	write_ok(f, "abc", 0);
	st->ops->close(f);
	ck_assert_int_eq(wal_storage_file_open(&ro, dir,
	    WAL_STORAGE_FILE_READONLY), 0);
	ck_assert_int_eq(ro->ops->open(ro, "a", WAL_STORAGE_WRITE, &f), -EROFS);
	ck_assert_int_eq(ro->ops->open(ro, "b", WAL_STORAGE_CREATE, &f),
	    -EROFS);
	ck_assert_int_eq(ro->ops->rename(ro, "a", "b"), -EROFS);
	ck_assert_int_eq(ro->ops->remove(ro, "a"), -EROFS);
	ck_assert_int_eq(ro->ops->sync_dir(ro), -EROFS);
	ck_assert_int_eq(ro->ops->open(ro, "a", WAL_STORAGE_READ, &f), 0);
	ck_assert_int_eq(ro->ops->read_at(f, b, 3, 0), 3);
	ck_assert_int_eq(ro->ops->write_at(f, "x", 1, 0), -EROFS);
	ck_assert_int_eq(ro->ops->truncate(f, 0), -EROFS);
	ro->ops->close(f);
	wal_storage_destroy(ro);
}
END_TEST

START_TEST(test_file_missing_directory)
{
	struct wal_storage	*other;
	char			 path[PATH_MAX + 16];
	struct stat		 sb;

	snprintf(path, sizeof(path), "%s/wal", dir);
	ck_assert_int_eq(wal_storage_file_open(&other, path, 0), -ENOENT);
	ck_assert_int_eq(wal_storage_file_open(&other, path,
	    WAL_STORAGE_FILE_READONLY | WAL_STORAGE_FILE_MKDIR), -ENOENT);
	ck_assert_int_eq(wal_storage_file_open(&other, path,
	    WAL_STORAGE_FILE_MKDIR), 0);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	ck_assert_str_eq(other->path, path);
	wal_storage_destroy(other);
	/* A file where the directory should be. */
	snprintf(path, sizeof(path), "%s/plain", dir);
	st->ops->close(open_ok("plain", WAL_STORAGE_CREATE));
	ck_assert_int_eq(wal_storage_file_open(&other, path, 0), -ENOTDIR);
}
END_TEST

START_TEST(test_file_log_round_trip)
{
	struct wal_options	 o = { 4096, 0 };
	struct wal_recovery	 rep;
	struct wal_record	 rec;
	struct wal_iter		*it;
	struct wal		*wal;
	char			 err[256], payload[32];
	uint64_t		 i;

	ck_assert_int_eq(wal_open(&wal, st, &o, &rep, err, sizeof(err)), 0);
	for (i = 1; i <= 100; i++) {
		memset(&rec, 0, sizeof(rec));
		snprintf(payload, sizeof(payload), "message %03" PRIu64, i);
		rec.type = WAL_TYPE_PUBLISH;
		rec.origin.role = 2;
		rec.origin.sequence = i;
		rec.payload = (const uint8_t *)payload;
		rec.length = (uint32_t)strlen(payload);
		ck_assert_int_eq(wal_append(wal, &rec), WAL_OK);
		if (i % 16 == 0 || i == 100) {
			ck_assert_int_eq(wal_write(wal), 0);
			ck_assert_int_eq(wal_sync(wal), 0);
		}
	}
	wal_close(wal);
	ck_assert_int_eq(wal_open(&wal, st, &o, &rep, err, sizeof(err)), 0);
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	ck_assert_uint_gt(rep.segments, 1);
	ck_assert_uint_eq(rep.last_lsn, 100);
	ck_assert_int_eq(wal_iter_open(&it, wal, 42), 0);
	ck_assert_int_eq(wal_iter_next(it, &rec), 1);
	ck_assert_uint_eq(rec.lsn, 42);
	ck_assert_uint_eq(rec.length, 11);
	ck_assert_mem_eq(rec.payload, "message 042", 11);
	wal_iter_close(it);
	wal_close(wal);
}
END_TEST

START_TEST(test_file_unreadable_directory)
{
	struct wal_recovery	 rep;
	struct wal		*wal;
	char			 err[512];

	if (geteuid() == 0)
		return;	/* root reads anything: nothing to test */
	ck_assert_int_eq(chmod(dir, 0300), 0);
	ck_assert_int_eq(wal_open(&wal, st, NULL, &rep, err, sizeof(err)),
	    -EACCES);
	ck_assert_ptr_nonnull(strstr(err, dir));
	chmod(dir, 0700);
}
END_TEST

/* The memory implementation's crash model. */

START_TEST(test_mem_power_loss_keeps_synced)
{
	struct wal_file	*f;

	write_durably("a", "durable");
	f = open_ok("a", WAL_STORAGE_WRITE);
	write_ok(f, " and not", 7);
	st->ops->close(f);
	f = open_ok("b", WAL_STORAGE_CREATE);
	write_ok(f, "synced data, unsynced name", 0);
	ck_assert_int_eq(st->ops->datasync(f), 0);
	st->ops->close(f);

	wal_storage_mem_power_loss(st, 0);
	ck_assert_str_eq(contents("a"), "durable");
	ck_assert_ptr_null(contents("b"));
}
END_TEST

START_TEST(test_mem_power_loss_torn)
{
	struct wal_file	*f;

	f = create_named("a");
	write_ok(f, "abc", 0);
	ck_assert_int_eq(st->ops->datasync(f), 0);
	write_ok(f, "defghij", 3);
	st->ops->close(f);
	wal_storage_mem_power_loss(st, 2);
	ck_assert_str_eq(contents("a"), "abcde");
}
END_TEST

START_TEST(test_mem_names_follow_sync_dir)
{
	write_durably("a", "x");
	ck_assert_int_eq(st->ops->rename(st, "a", "b"), 0);
	wal_storage_mem_power_loss(st, 0);
	ck_assert_str_eq(contents("a"), "x");
	ck_assert_ptr_null(contents("b"));
	ck_assert_int_eq(st->ops->remove(st, "a"), 0);
	wal_storage_mem_power_loss(st, 0);
	ck_assert_str_eq(contents("a"), "x");
	ck_assert_int_eq(st->ops->remove(st, "a"), 0);
	ck_assert_int_eq(st->ops->sync_dir(st), 0);
	wal_storage_mem_power_loss(st, 0);
	ck_assert_ptr_null(contents("a"));
}
END_TEST

START_TEST(test_mem_failed_sync_forgets)
{
	struct wal_file	*f;

	f = create_named("a");
	write_ok(f, "precious", 0);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_DATASYNC, EIO, 1);
	ck_assert_int_eq(st->ops->datasync(f), -EIO);
	/* Retrying "works", as it may on Linux, but the data is not on
	 * the disk: exactly why the log never retries an fsync. */
	ck_assert_int_eq(st->ops->datasync(f), 0);
	wal_storage_mem_power_loss(st, 0);
	ck_assert_mem_eq(contents("a"), "\0\0\0\0\0\0\0\0", 8);

	/* Writing the data again, then syncing, is what keeps it. */
	write_ok(f, "precious", 0);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_DATASYNC, EIO, 1);
	ck_assert_int_eq(st->ops->datasync(f), -EIO);
	write_ok(f, "precious", 0);
	ck_assert_int_eq(st->ops->datasync(f), 0);
	st->ops->close(f);
	wal_storage_mem_power_loss(st, 0);
	ck_assert_str_eq(contents("a"), "precious");
}
END_TEST

START_TEST(test_mem_faults)
{
	struct wal_storage_mem_stats	 s;
	struct wal_file			*f;

	f = open_ok("a", WAL_STORAGE_CREATE);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_WRITE, EIO, 2);
	ck_assert_int_eq(st->ops->write_at(f, "abc", 3, 0), -EIO);
	ck_assert_int_eq(st->ops->write_at(f, "abc", 3, 0), -EIO);
	ck_assert_int_eq(st->ops->write_at(f, "abc", 3, 0), 3);
	wal_storage_mem_short_write(st, 2);
	ck_assert_int_eq(st->ops->write_at(f, "defg", 4, 3), 2);
	ck_assert_int_eq(st->ops->write_at(f, "fg", 2, 5), 2);
	ck_assert_str_eq(contents("a"), "abcdefg");
	/* ENOSPC after N bytes: a write that partly fits is short. */
	wal_storage_mem_space_left(st, 3);
	ck_assert_int_eq(st->ops->write_at(f, "hijkl", 5, 7), 3);
	ck_assert_int_eq(st->ops->write_at(f, "kl", 2, 10), -ENOSPC);
	/* Overwriting in place needs no space; truncating frees some. */
	ck_assert_int_eq(st->ops->write_at(f, "A", 1, 0), 1);
	ck_assert_int_eq(st->ops->truncate(f, 8), 0);
	ck_assert_int_eq(st->ops->write_at(f, "ijkl", 4, 8), 2);
	wal_storage_mem_space_left(st, UINT64_MAX);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_DATASYNC, EIO, -1);
	ck_assert_int_eq(st->ops->datasync(f), -EIO);
	ck_assert_int_eq(st->ops->datasync(f), -EIO);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_DATASYNC, 0, 0);
	ck_assert_int_eq(st->ops->datasync(f), 0);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_SYNC_DIR, ENOSPC, 1);
	ck_assert_int_eq(st->ops->sync_dir(st), -ENOSPC);
	ck_assert_int_eq(st->ops->sync_dir(st), 0);
	st->ops->close(f);
	wal_storage_mem_stats(st, &s);
	ck_assert_uint_eq(s.syncs, 3);
	ck_assert_uint_eq(s.dir_syncs, 2);
	ck_assert_uint_eq(s.writes, 9);
}
END_TEST

static Suite *
wal_storage_suite(void)
{
	Suite	*s = suite_create("wal_storage");
	TCase	*tc;

	tc = tcase_create("file");
	tcase_add_checked_fixture(tc, file_setup, file_teardown);
	tcase_add_test(tc, test_basic_operations);
	tcase_add_test(tc, test_names_stay_in_the_directory);
	tcase_add_test(tc, test_file_descriptors_close_on_exec);
	tcase_add_test(tc, test_file_mode_private);
	tcase_add_test(tc, test_file_readonly);
	tcase_add_test(tc, test_file_missing_directory);
	tcase_add_test(tc, test_file_log_round_trip);
	tcase_add_test(tc, test_file_unreadable_directory);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_add_checked_fixture(tc, mem_setup, mem_teardown);
	tcase_add_test(tc, test_basic_operations);
	tcase_add_test(tc, test_names_stay_in_the_directory);
	tcase_add_test(tc, test_mem_power_loss_keeps_synced);
	tcase_add_test(tc, test_mem_power_loss_torn);
	tcase_add_test(tc, test_mem_names_follow_sync_dir);
	tcase_add_test(tc, test_mem_failed_sync_forgets);
	tcase_add_test(tc, test_mem_faults);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(wal_storage_suite());
	int	 failed;

	log_init("check_wal_storage", -1);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
