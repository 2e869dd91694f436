/*
 * walbench.c - group commit throughput of the message log on a real disk.
 *
 *	walbench DIR [SECONDS]
 *
 * Three numbers for the directory DIR (created; segments are left there):
 *   1) appends per second with wal_append + wal_write + wal_sync for
 *      every record (batch 1, what wal-sync=always costs without group
 *      commit);
 *   2) the same with 32 records per write and sync (one event-loop turn
 *      of a busy walsvc);
 *   3) the raw rate of pwrite(64 bytes) + fdatasync on a file in the same
 *      directory: the ceiling for (1).
 * Payloads are 64 bytes.  Not built by default: make tests/tools/walbench.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "wal.h"

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
bench_log(struct wal *wal, int batch, double seconds, uint64_t *seq)
{
	struct wal_record	 rec;
	uint8_t			 payload[64];
	uint64_t		 n = 0;
	double			 start = now(), elapsed;
	int			 i;

	memset(payload, 'p', sizeof(payload));
	do {
		for (i = 0; i < batch; i++) {
			memset(&rec, 0, sizeof(rec));
			rec.type = WAL_TYPE_PUBLISH;
			rec.origin.role = IPC_ROLE_TOOL;
			rec.origin.sequence = ++*seq;
			rec.payload = payload;
			rec.length = sizeof(payload);
			if (wal_append(wal, &rec) != WAL_OK)
				fatalx("append failed", NULL);
		}
		if (wal_write(wal) != 0 || wal_sync(wal) != 0)
			fatalx("write or sync failed", NULL);
		n += (uint64_t)batch;
	} while ((elapsed = now() - start) < seconds);
	return (double)n / elapsed;
}

static double
bench_fdatasync(const char *dir, double seconds)
{
	char		 path[4096];
	uint8_t		 payload[64];
	uint64_t	 n = 0;
	double		 start, elapsed;
	int		 fd;

	snprintf(path, sizeof(path), "%s/fdatasync.bench", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		fatal("open", "path=%s", path);
	memset(payload, 'p', sizeof(payload));
	start = now();
	do {
		if (pwrite(fd, payload, sizeof(payload),
		    (off_t)(n * sizeof(payload))) != (ssize_t)sizeof(payload))
			fatal("pwrite", NULL);
		if (fdatasync(fd) == -1)
			fatal("fdatasync", NULL);
		n++;
	} while ((elapsed = now() - start) < seconds);
	close(fd);
	unlink(path);
	return (double)n / elapsed;
}

int
main(int argc, char **argv)
{
	struct wal_storage	*st;
	struct wal		*wal;
	char			 err[512];
	double			 seconds = 5, one, many, raw;
	uint64_t		 seq = 0;
	int			 rc;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: walbench DIR [SECONDS]\n");
		return 2;
	}
	log_init("walbench", -1);
	if (argc == 3)
		seconds = atof(argv[2]);
	if ((rc = wal_storage_file_open(&st, argv[1],
	    WAL_STORAGE_FILE_MKDIR)) != 0) {
		fprintf(stderr, "walbench: %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	if (wal_open(&wal, st, NULL, NULL, err, sizeof(err)) != 0)
		fatalx("cannot open the log", "%s", err);
	/* Go on with the bench's own stream if the log already has it. */
	wal_stream_highest(wal, IPC_ROLE_TOOL, 0, 0, &seq);
	one = bench_log(wal, 1, seconds, &seq);
	many = bench_log(wal, 32, seconds, &seq);
	raw = bench_fdatasync(argv[1], seconds);
	printf("batch=1 appends_per_second=%.0f\n", one);
	printf("batch=32 appends_per_second=%.0f syncs_per_second=%.0f\n",
	    many, many / 32);
	printf("raw pwrite+fdatasync_per_second=%.0f\n", raw);
	wal_close(wal);
	wal_storage_destroy(st);
	return 0;
}
