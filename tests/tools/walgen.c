/*
 * walgen.c - writes a message log with known contents, for the tests of
 * promptmq-waldump (tests/unit/waldump.test).
 *
 *	walgen DIR COUNT [SEGMENT_SIZE]
 *
 * Record n (LSN n) has type 1 + (n - 1) % 5 (publish, session,
 * subscription, retained, ack), origin role tool, slot 3, generation 7,
 * sequence n, and payload "message n" -- except every 10th record, whose
 * payload is 40 binary bytes, so both previews are exercised.  Records
 * are committed in batches of 8 through the real file storage.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "log.h"
#include "wal.h"

int
main(int argc, char **argv)
{
	struct wal_options	 o = { 0, 0 };
	struct wal_storage	*st;
	struct wal_record	 rec;
	struct wal		*wal;
	char			 err[512];
	uint8_t			 payload[64];
	uint64_t		 n, count;
	int			 rc, i;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: walgen DIR COUNT [SEGMENT_SIZE]\n");
		return 2;
	}
	log_init("walgen", -1);
	count = strtoull(argv[2], NULL, 10);
	if (argc == 4)
		o.segment_size = strtoull(argv[3], NULL, 10);
	if ((rc = wal_storage_file_open(&st, argv[1],
	    WAL_STORAGE_FILE_MKDIR)) != 0) {
		fprintf(stderr, "walgen: %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	if (wal_open(&wal, st, &o, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "walgen: %s\n", err);
		return 1;
	}
	for (n = wal_next_lsn(wal); count > 0; n++, count--) {
		memset(&rec, 0, sizeof(rec));
		rec.type = (uint8_t)(1 + (n - 1) % 5);
		rec.origin.role = IPC_ROLE_TOOL;
		rec.origin.slot = 3;
		rec.origin.generation = 7;
		rec.origin.sequence = n;
		if (n % 10 == 0) {
			for (i = 0; i < 40; i++)
				payload[i] = (uint8_t)(n + (uint64_t)i);
			rec.length = 40;
		} else
			rec.length = (uint32_t)snprintf((char *)payload,
			    sizeof(payload), "message %" PRIu64, n);
		rec.payload = payload;
		if ((rc = wal_append(wal, &rec)) != WAL_OK ||
		    (n % 8 == 0 && ((rc = wal_write(wal)) != 0 ||
		    (rc = wal_sync(wal)) != 0))) {
			fprintf(stderr, "walgen: lsn %" PRIu64 ": %d\n", n, rc);
			return 1;
		}
	}
	if ((rc = wal_write(wal)) != 0 || (rc = wal_sync(wal)) != 0) {
		fprintf(stderr, "walgen: %s\n", strerror(-rc));
		return 1;
	}
	wal_close(wal);
	wal_storage_destroy(st);
	return 0;
}
