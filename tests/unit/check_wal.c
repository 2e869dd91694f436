/*
 * check_wal.c - unit tests of the message log (walsvc/wal*.c).
 *
 * Almost everything runs on the memory storage, which keeps what a crash
 * would keep and can fail on demand, so the tests can say "power lost
 * here" or "the disk filled up there" and check what the log does:
 * recovery, torn and corrupt tails, damage in earlier segments,
 * idempotent appends, write/ENOSPC/fsync failures, rollover, LSN
 * continuity, the iterator and the compaction hook.  The last test case
 * lets a seeded generator choose where the power goes, and stops the
 * machine in every storage call of a rollover in turn.
 *
 * Most tests use one origin stream whose sequence equals the LSN, and
 * payloads computed from the sequence, so a recovered log can be checked
 * byte for byte.  With 64-byte payloads a record takes 112 bytes, and a
 * 4096-byte segment holds 36 of them after its 24-byte header.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "log.h"
#include "wal.h"
#include "wal_format.h"

#define PAYLOAD		64
#define RECORD		(WAL_RECORD_HEADER_SIZE_V1 + PAYLOAD)	/* 112 */
#define HEADER		WAL_SEGMENT_HEADER_SIZE_V1		/* 24 */
#define SMALL_SEGMENT	4096
#define PER_SEGMENT	36	/* records of RECORD bytes in SMALL_SEGMENT */
#define SLOT		3
#define GEN		7

static struct wal_storage	*st;
static struct wal		*wal;
static struct wal_recovery	 rep;

static void
setup(void)
{
	st = wal_storage_mem_new();
	ck_assert_ptr_nonnull(st);
	wal = NULL;
}

static void
teardown(void)
{
	wal_close(wal);
	wal_storage_destroy(st);
}

static int
try_open(uint64_t segment_size, int flags, char *err, size_t errlen)
{
	struct wal_options	 o = { segment_size, flags };

	wal_close(wal);
	wal = NULL;
	return wal_open(&wal, st, &o, &rep, err, errlen);
}

/* (Re)opens the log, as walsvc does at start-up. */
static void
reopen_flags(uint64_t segment_size, int flags)
{
	char	 err[256];
	int	 rc;

	rc = try_open(segment_size, flags, err, sizeof(err));
	ck_assert_msg(rc == 0, "wal_open: %s", err);
}

static void
reopen(void)
{
	reopen_flags(SMALL_SEGMENT, 0);
}

static void
fill_payload(uint8_t *p, size_t len, uint64_t seq)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(seq * 31 + i * 7);
}

static int
append_full(uint8_t role, uint16_t slot, uint64_t gen, uint64_t seq,
    size_t len, uint64_t *lsn)
{
	struct wal_record	 rec;
	uint8_t			*payload = malloc(len ? len : 1);
	int			 rc;

	ck_assert_ptr_nonnull(payload);
	fill_payload(payload, len, seq);
	memset(&rec, 0, sizeof(rec));
	rec.type = WAL_TYPE_PUBLISH;
	rec.origin.role = role;
	rec.origin.slot = slot;
	rec.origin.generation = gen;
	rec.origin.sequence = seq;
	rec.payload = payload;
	rec.length = (uint32_t)len;
	rc = wal_append(wal, &rec);
	if (lsn != NULL)
		*lsn = rec.lsn;
	free(payload);
	return rc;
}

/* Appends sequences first..last of the test stream, each at LSN == seq. */
static void
append_range(uint64_t first, uint64_t last, size_t len)
{
	uint64_t	 seq, lsn;

	for (seq = first; seq <= last; seq++) {
		ck_assert_int_eq(append_full(IPC_ROLE_WORKER, SLOT, GEN, seq,
		    len, &lsn), WAL_OK);
		ck_assert_uint_eq(lsn, seq);
	}
}

static void
commit(void)
{
	ck_assert_int_eq(wal_write(wal), 0);
	ck_assert_int_eq(wal_sync(wal), 0);
	ck_assert_uint_eq(wal_synced_lsn(wal), wal_written_lsn(wal));
}

/* A fresh log with records 1..n in small segments, committed in tens. */
static void
make_log(uint64_t n)
{
	uint64_t	 seq;

	reopen();
	for (seq = 1; seq <= n; seq += 10) {
		append_range(seq, seq + 9 < n ? seq + 9 : n, PAYLOAD);
		commit();
	}
}

/* The log holds exactly records first..last, payloads intact. */
static void
check_log(uint64_t first, uint64_t last)
{
	struct wal_record	 rec;
	struct wal_iter		*it;
	uint8_t			 want[PAYLOAD];
	uint64_t		 expect = first;
	int			 rc;

	ck_assert_int_eq(wal_iter_open(&it, wal, 1), 0);
	while ((rc = wal_iter_next(it, &rec)) == 1) {
		ck_assert_uint_eq(rec.lsn, expect);
		ck_assert_uint_eq(rec.origin.sequence, expect);
		ck_assert_uint_eq(rec.type, WAL_TYPE_PUBLISH);
		ck_assert_uint_eq(rec.length, PAYLOAD);
		fill_payload(want, PAYLOAD, expect);
		ck_assert_mem_eq(rec.payload, want, PAYLOAD);
		expect++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(expect, last + 1);
	wal_iter_close(it);
}

static const char *
seg(uint64_t first_lsn)
{
	static char	 names[4][WAL_SEGMENT_NAME_LEN + 1];
	static int	 next;
	char		*name = names[next++ % 4];

	wal_segment_name(name, first_lsn);
	return name;
}

static int
file_exists(const char *name)
{
	struct wal_file	*f;

	if (st->ops->open(st, name, WAL_STORAGE_READ, &f) != 0)
		return 0;
	st->ops->close(f);
	return 1;
}

static uint64_t
file_size(const char *name)
{
	struct wal_file	*f;
	uint64_t	 size;

	ck_assert_int_eq(st->ops->open(st, name, WAL_STORAGE_READ, &f), 0);
	ck_assert_int_eq(st->ops->size(f, &size), 0);
	st->ops->close(f);
	return size;
}

/* Writes bytes into a file behind the log's back, durably. */
static void
write_raw(const char *name, enum wal_storage_mode mode, uint64_t off,
    const void *p, size_t n)
{
	struct wal_file	*f;

	ck_assert_int_eq(st->ops->open(st, name, mode, &f), 0);
	ck_assert_int_eq(st->ops->write_at(f, p, n, off), (ssize_t)n);
	ck_assert_int_eq(st->ops->datasync(f), 0);
	st->ops->close(f);
	ck_assert_int_eq(st->ops->sync_dir(st), 0);
}

/* Flips bits of one byte, as a bad sector or a stray write would. */
static void
poke(const char *name, uint64_t off)
{
	struct wal_file	*f;
	uint8_t		 b;

	ck_assert_int_eq(st->ops->open(st, name, WAL_STORAGE_WRITE, &f), 0);
	ck_assert_int_eq(st->ops->read_at(f, &b, 1, off), 1);
	b ^= 0x5a;
	ck_assert_int_eq(st->ops->write_at(f, &b, 1, off), 1);
	ck_assert_int_eq(st->ops->datasync(f), 0);
	st->ops->close(f);
}

/* Offset of record `lsn` in its small segment. */
static uint64_t
record_offset(uint64_t lsn)
{
	return HEADER + ((lsn - 1) % PER_SEGMENT) * RECORD;
}

/* format: the bytes on disk. */

START_TEST(test_record_round_trip)
{
	struct wal_record	 in, out;
	struct buf		 b = BUF_INITIALIZER;
	const char		*payload = "hello, log";
	size_t			 size;

	memset(&in, 0, sizeof(in));
	in.lsn = 0x0102030405060708ull;
	in.type = WAL_TYPE_RETAINED;
	in.flags = 0xbeef;
	in.origin.role = IPC_ROLE_TOOL;
	in.origin.slot = 0xfffe;
	in.origin.generation = 0x1112131415161718ull;
	in.origin.sequence = 42;
	in.payload = (const uint8_t *)payload;
	in.length = (uint32_t)strlen(payload);
	ck_assert_int_eq(wal_record_encode(&b, &in), 0);
	ck_assert_uint_eq(b.len, wal_record_size(in.length));
	ck_assert_uint_eq(buf_load_u32(b.data), WAL_RECORD_MAGIC);
	ck_assert_uint_eq(buf_load_u64(b.data + 16), in.lsn);

	ck_assert_int_eq(wal_record_decode(1, b.data, b.len, &out, &size),
	    WAL_DAMAGE_NONE);
	ck_assert_uint_eq(size, b.len);
	ck_assert_uint_eq(out.lsn, in.lsn);
	ck_assert_uint_eq(out.type, in.type);
	ck_assert_uint_eq(out.flags, in.flags);
	ck_assert_uint_eq(out.origin.role, in.origin.role);
	ck_assert_uint_eq(out.origin.slot, in.origin.slot);
	ck_assert_uint_eq(out.origin.generation, in.origin.generation);
	ck_assert_uint_eq(out.origin.sequence, in.origin.sequence);
	ck_assert_uint_eq(out.length, in.length);
	ck_assert_mem_eq(out.payload, payload, in.length);
	buf_free(&b);
}
END_TEST

START_TEST(test_record_damage_detected)
{
	struct wal_record	 in, out;
	struct buf		 b = BUF_INITIALIZER;
	uint8_t			 payload[20] = { 1, 2, 3 };
	size_t			 i, size;

	memset(&in, 0, sizeof(in));
	in.lsn = 9;
	in.type = WAL_TYPE_ACK;
	in.origin.sequence = 1;
	in.payload = payload;
	in.length = sizeof(payload);
	ck_assert_int_eq(wal_record_encode(&b, &in), 0);

	/* Every single flipped byte is caught. */
	for (i = 0; i < b.len; i++) {
		b.data[i] ^= 0x01;
		ck_assert_int_ne(wal_record_decode(1, b.data, b.len, &out,
		    &size), WAL_DAMAGE_NONE);
		b.data[i] ^= 0x01;
	}
	/* Every cut is torn, and says how much it needs to go on. */
	for (i = 0; i < b.len; i++) {
		ck_assert_int_eq(wal_record_decode(1, b.data, i, &out, &size),
		    WAL_DAMAGE_TORN);
		ck_assert_uint_gt(size, i);
	}
	/* Specific checks name themselves. */
	b.data[0] ^= 0xff;
	ck_assert_int_eq(wal_record_decode(1, b.data, b.len, &out, &size),
	    WAL_DAMAGE_MAGIC);
	b.data[0] ^= 0xff;
	ck_assert_int_eq(wal_record_decode(2, b.data, b.len, &out, &size),
	    WAL_DAMAGE_VERSION);
	b.data[60] ^= 0xff;
	ck_assert_int_eq(wal_record_decode(1, b.data, b.len, &out, &size),
	    WAL_DAMAGE_CRC);
	b.data[60] ^= 0xff;
	buf_store_u32(b.data + WAL_RECORD_OFF_LENGTH, WAL_PAYLOAD_MAX + 1);
	ck_assert_int_eq(wal_record_decode(1, b.data, b.len, &out, &size),
	    WAL_DAMAGE_LENGTH);
	buf_free(&b);
}
END_TEST

START_TEST(test_segment_header)
{
	struct wal_segment_header	 h;
	struct buf			 b = BUF_INITIALIZER;

	ck_assert_int_eq(wal_segment_header_encode(&b, 0x25), 0);
	ck_assert_uint_eq(b.len, HEADER);
	ck_assert_int_eq(wal_segment_header_decode(b.data, b.len, &h),
	    WAL_DAMAGE_NONE);
	ck_assert_uint_eq(h.version, 1);
	ck_assert_uint_eq(h.header_size, HEADER);
	ck_assert_uint_eq(h.first_lsn, 0x25);
	ck_assert_int_eq(wal_segment_header_decode(b.data, HEADER - 1, &h),
	    WAL_DAMAGE_TORN);
	b.data[9] ^= 1;
	ck_assert_int_eq(wal_segment_header_decode(b.data, b.len, &h),
	    WAL_DAMAGE_CRC);
	b.data[9] ^= 1;
	b.data[5] = 2;
	ck_assert_int_eq(wal_segment_header_decode(b.data, b.len, &h),
	    WAL_DAMAGE_VERSION);
	ck_assert_uint_eq(h.version, 2);
	b.data[0] = 'X';
	ck_assert_int_eq(wal_segment_header_decode(b.data, b.len, &h),
	    WAL_DAMAGE_MAGIC);
	buf_free(&b);
}
END_TEST

START_TEST(test_segment_names)
{
	char		 name[WAL_SEGMENT_NAME_LEN + 1];
	uint64_t	 lsn;

	wal_segment_name(name, 1);
	ck_assert_str_eq(name, "0000000000000001.wal");
	wal_segment_name(name, UINT64_MAX);
	ck_assert_str_eq(name, "ffffffffffffffff.wal");
	ck_assert_int_eq(wal_segment_name_parse(name, &lsn), 0);
	ck_assert_uint_eq(lsn, UINT64_MAX);
	ck_assert_int_eq(wal_segment_name_parse("0000000000000025.wal", &lsn),
	    0);
	ck_assert_uint_eq(lsn, 37);
	ck_assert_int_eq(wal_segment_name_parse("000000000000002A.wal", &lsn),
	    -1);
	ck_assert_int_eq(wal_segment_name_parse("0000000000000025.wal.corrupt",
	    &lsn), -1);
	ck_assert_int_eq(wal_segment_name_parse("25.wal", &lsn), -1);
}
END_TEST

START_TEST(test_type_names)
{
	ck_assert_str_eq(wal_type_name(WAL_TYPE_PUBLISH), "publish");
	ck_assert_str_eq(wal_type_name(WAL_TYPE_ACK), "ack");
	ck_assert_ptr_null(wal_type_name(0));
	ck_assert_ptr_null(wal_type_name(200));
	ck_assert_int_eq(wal_type_parse("session"), WAL_TYPE_SESSION);
	ck_assert_int_eq(wal_type_parse("RETAINED"), WAL_TYPE_RETAINED);
	ck_assert_int_eq(wal_type_parse("200"), 200);
	ck_assert_int_eq(wal_type_parse("0"), -1);
	ck_assert_int_eq(wal_type_parse("256"), -1);
	ck_assert_int_eq(wal_type_parse("bogus"), -1);
}
END_TEST

/* recovery: reading the log back. */

START_TEST(test_empty_directory)
{
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	ck_assert_uint_eq(rep.segments, 0);
	ck_assert_uint_eq(wal_next_lsn(wal), 1);
	ck_assert_uint_eq(wal_synced_lsn(wal), 0);
	/* Nothing is created until there is something to write. */
	ck_assert_int_eq(wal_write(wal), 0);
	ck_assert_int_eq(wal_sync(wal), 0);
	ck_assert_uint_eq(wal_segment_count(wal), 0);
	append_range(1, 1, PAYLOAD);
	commit();
	ck_assert(file_exists("0000000000000001.wal"));
}
END_TEST

START_TEST(test_clean_recovery_several_segments)
{
	make_log(100);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	ck_assert_uint_eq(rep.segments, 3);
	ck_assert_uint_eq(rep.records, 100);
	ck_assert_uint_eq(rep.first_lsn, 1);
	ck_assert_uint_eq(rep.last_lsn, 100);
	ck_assert_uint_eq(rep.bytes, 3 * HEADER + 100 * RECORD);
	ck_assert_uint_eq(wal_next_lsn(wal), 101);
	ck_assert_uint_eq(wal_synced_lsn(wal), 100);
	ck_assert(file_exists(seg(1)));
	ck_assert(file_exists(seg(37)));
	ck_assert(file_exists(seg(73)));
	check_log(1, 100);
	/* And it goes on where it stopped. */
	append_range(101, 120, PAYLOAD);
	commit();
	reopen();
	ck_assert_uint_eq(rep.last_lsn, 120);
	check_log(1, 120);
}
END_TEST

START_TEST(test_torn_tail_partial_header)
{
	struct wal_record	 rec;
	struct buf		 b = BUF_INITIALIZER;
	uint8_t			 payload[PAYLOAD];

	make_log(10);
	/* The first 20 bytes of record 11 reached the disk. */
	fill_payload(payload, PAYLOAD, 11);
	memset(&rec, 0, sizeof(rec));
	rec.lsn = 11;
	rec.type = WAL_TYPE_PUBLISH;
	rec.origin.sequence = 11;
	rec.payload = payload;
	rec.length = PAYLOAD;
	ck_assert_int_eq(wal_record_encode(&b, &rec), 0);
	write_raw(seg(1), WAL_STORAGE_WRITE, HEADER + 10 * RECORD, b.data, 20);
	buf_free(&b);

	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_TRUNCATED_TAIL);
	ck_assert_int_eq(rep.damage, WAL_DAMAGE_TORN);
	ck_assert_uint_eq(rep.damage_offset, HEADER + 10 * RECORD);
	ck_assert_uint_eq(rep.bytes_truncated, 20);
	ck_assert_uint_eq(rep.last_lsn, 10);
	ck_assert_int_eq(rep.records_after_damage, 0);
	ck_assert_uint_eq(file_size(seg(1)), HEADER + 10 * RECORD);
	ck_assert_str_eq(rep.damage_segment, "0000000000000001.wal");
	ck_assert_ptr_nonnull(strstr(rep.why, "truncated"));
	append_range(11, 11, PAYLOAD);
	commit();
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	check_log(1, 11);
}
END_TEST

START_TEST(test_torn_tail_partial_payload)
{
	make_log(10);
	/* Five more written, not synced; the power fails mid-write with
	 * the header and ten payload bytes of the first on the disk. */
	append_range(11, 15, PAYLOAD);
	ck_assert_int_eq(wal_write(wal), 0);
	wal_storage_mem_power_loss(st, WAL_RECORD_HEADER_SIZE_V1 + 10);

	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_TRUNCATED_TAIL);
	ck_assert_int_eq(rep.damage, WAL_DAMAGE_TORN);
	ck_assert_uint_eq(rep.bytes_truncated, WAL_RECORD_HEADER_SIZE_V1 + 10);
	ck_assert_uint_eq(rep.last_lsn, 10);
	ck_assert_uint_eq(file_size(seg(1)), HEADER + 10 * RECORD);
	check_log(1, 10);
}
END_TEST

START_TEST(test_bad_crc_tail)
{
	make_log(10);
	poke(seg(1), record_offset(10) + WAL_RECORD_HEADER_SIZE_V1 + 5);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_TRUNCATED_TAIL);
	ck_assert_int_eq(rep.damage, WAL_DAMAGE_CRC);
	ck_assert_uint_eq(rep.bytes_truncated, RECORD);
	ck_assert_uint_eq(rep.last_lsn, 9);
	ck_assert_int_eq(rep.records_after_damage, 0);
	/* A torn write needs no copy. */
	ck_assert(!file_exists("0000000000000001.wal.corrupt"));
	check_log(1, 9);
	/* The stream's highest sequence is what survived. */
	append_range(10, 10, PAYLOAD);
	commit();
	reopen();
	check_log(1, 10);
}
END_TEST

START_TEST(test_lsn_mismatch_in_tail)
{
	struct wal_record	 rec;
	struct buf		 b = BUF_INITIALIZER;
	uint8_t			 payload[PAYLOAD];

	make_log(10);
	/* A whole, valid record -- but LSN 12 where 11 belongs. */
	fill_payload(payload, PAYLOAD, 12);
	memset(&rec, 0, sizeof(rec));
	rec.lsn = 12;
	rec.type = WAL_TYPE_PUBLISH;
	rec.origin.sequence = 12;
	rec.payload = payload;
	rec.length = PAYLOAD;
	ck_assert_int_eq(wal_record_encode(&b, &rec), 0);
	write_raw(seg(1), WAL_STORAGE_WRITE, HEADER + 10 * RECORD, b.data,
	    b.len);
	buf_free(&b);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_TRUNCATED_TAIL);
	ck_assert_int_eq(rep.damage, WAL_DAMAGE_LSN);
	ck_assert_uint_eq(rep.bytes_truncated, RECORD);
	check_log(1, 10);
}
END_TEST

START_TEST(test_damaged_data_in_tail_kept)
{
	make_log(10);
	poke(seg(1), record_offset(5) + 50);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_TRUNCATED_TAIL);
	ck_assert_int_eq(rep.damage, WAL_DAMAGE_CRC);
	ck_assert_uint_eq(rep.bytes_truncated, 6 * RECORD);
	ck_assert_int_eq(rep.records_after_damage, 1);
	ck_assert_uint_eq(rep.last_lsn, 4);
	/* Good records followed the damage: the whole segment was kept. */
	ck_assert(file_exists("0000000000000001.wal.corrupt"));
	ck_assert_uint_eq(file_size("0000000000000001.wal.corrupt"),
	    HEADER + 10 * RECORD);
	ck_assert(!file_exists("0000000000000001.wal.corrupt.tmp"));
	check_log(1, 4);
}
END_TEST

START_TEST(test_corruption_in_earlier_segment)
{
	make_log(100);
	/* Record 40 is the fourth of the second segment (first LSN 37). */
	poke(seg(37), record_offset(40) + 60);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_SET_ASIDE);
	ck_assert_int_eq(rep.damage, WAL_DAMAGE_CRC);
	ck_assert_str_eq(rep.damage_segment, "0000000000000025.wal");
	ck_assert_uint_eq(rep.damage_offset, record_offset(40));
	ck_assert_uint_eq(rep.last_lsn, 39);
	ck_assert_uint_eq(rep.segments, 2);
	ck_assert_uint_eq(rep.segments_set_aside, 2);
	/* The damaged segment was copied whole and cut; the later one
	 * renamed; nothing deleted. */
	ck_assert_uint_eq(file_size("0000000000000025.wal.corrupt"),
	    HEADER + PER_SEGMENT * RECORD);
	ck_assert_uint_eq(file_size(seg(37)), record_offset(40));
	ck_assert(!file_exists(seg(73)));
	ck_assert_uint_eq(file_size("0000000000000049.wal.corrupt"),
	    HEADER + 28 * RECORD);
	check_log(1, 39);

	/* The log goes on from there, and the next open is clean. */
	append_range(40, 45, PAYLOAD);
	commit();
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	check_log(1, 45);
}
END_TEST

START_TEST(test_damaged_segment_header_earlier)
{
	make_log(100);
	poke(seg(37), 10);	/* inside the first LSN field */
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_SET_ASIDE);
	ck_assert_int_eq(rep.damage, WAL_DAMAGE_CRC);
	ck_assert_uint_eq(rep.last_lsn, 36);
	ck_assert_uint_eq(rep.segments, 1);
	ck_assert_uint_eq(rep.segments_set_aside, 2);
	ck_assert(file_exists("0000000000000025.wal.corrupt"));
	ck_assert(file_exists("0000000000000049.wal.corrupt"));
	ck_assert(!file_exists(seg(37)));
	append_range(37, 40, PAYLOAD);
	commit();
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	check_log(1, 40);
}
END_TEST

START_TEST(test_missing_segment_is_a_gap)
{
	make_log(100);
	ck_assert_int_eq(st->ops->remove(st, seg(37)), 0);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_SET_ASIDE);
	ck_assert_int_eq(rep.damage, WAL_DAMAGE_LSN);
	ck_assert_str_eq(rep.damage_segment, "0000000000000049.wal");
	ck_assert_uint_eq(rep.last_lsn, 36);
	ck_assert(file_exists("0000000000000049.wal.corrupt"));
	check_log(1, 36);
}
END_TEST

START_TEST(test_set_aside_names_are_unique)
{
	make_log(100);
	write_raw("0000000000000049.wal.corrupt", WAL_STORAGE_CREATE, 0, "x", 1);
	poke(seg(37), record_offset(40) + 60);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_SET_ASIDE);
	/* The earlier copy is left alone. */
	ck_assert_uint_eq(file_size("0000000000000049.wal.corrupt"), 1);
	ck_assert_uint_eq(file_size("0000000000000049.wal.corrupt.1"),
	    HEADER + 28 * RECORD);
}
END_TEST

START_TEST(test_unborn_tail_segment_removed)
{
	make_log(36);
	/* A crash right after creating segment 37: 10 bytes of header. */
	write_raw(seg(37), WAL_STORAGE_CREATE, 0, "PMQL\0\1\0\30\0\0", 10);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_TRUNCATED_TAIL);
	ck_assert_uint_eq(rep.segments_removed, 1);
	ck_assert_uint_eq(rep.bytes_truncated, 10);
	ck_assert(!file_exists(seg(37)));
	ck_assert_uint_eq(rep.last_lsn, 36);
	append_range(37, 37, PAYLOAD);
	commit();
	reopen();
	check_log(1, 37);
}
END_TEST

START_TEST(test_newer_version_refused)
{
	struct buf	 b = BUF_INITIALIZER;
	char		 err[256];

	make_log(10);
	ck_assert_int_eq(wal_segment_header_encode(&b, 11), 0);
	b.data[5] = 2;	/* version 2: not ours to truncate */
	write_raw(seg(11), WAL_STORAGE_CREATE, 0, b.data, b.len);
	buf_free(&b);
	ck_assert_int_eq(try_open(SMALL_SEGMENT, 0, err, sizeof(err)),
	    -EPROTONOSUPPORT);
	ck_assert_ptr_null(wal);
	ck_assert_ptr_nonnull(strstr(err, "format version 2"));
	ck_assert_ptr_nonnull(strstr(err, "mem:"));
	ck_assert_uint_eq(file_size(seg(11)), HEADER);
}
END_TEST

START_TEST(test_readonly_changes_nothing)
{
	struct wal_storage_mem_stats	 before, after;
	uint64_t			 lsn;

	make_log(10);
	poke(seg(1), record_offset(10) + 60);
	wal_storage_mem_stats(st, &before);
	reopen_flags(SMALL_SEGMENT, WAL_OPEN_READONLY);
	wal_storage_mem_stats(st, &after);
	ck_assert_int_eq(rep.action, WAL_RECOVERY_TRUNCATED_TAIL);
	ck_assert_ptr_nonnull(strstr(rep.why, "would be truncated"));
	ck_assert_uint_eq(file_size(seg(1)), HEADER + 10 * RECORD);
	ck_assert_uint_eq(after.writes, before.writes);
	ck_assert_uint_eq(after.syncs, before.syncs);
	ck_assert_uint_eq(after.dir_syncs, before.dir_syncs);
	check_log(1, 9);
	ck_assert_int_eq(append_full(IPC_ROLE_WORKER, SLOT, GEN, 10, PAYLOAD,
	    &lsn), -EROFS);
	ck_assert_int_eq(wal_write(wal), -EROFS);
	ck_assert_int_eq(wal_sync(wal), -EROFS);
}
END_TEST

/* append: idempotency. */

START_TEST(test_duplicate_detected)
{
	uint64_t	 lsn, seq;

	reopen();
	append_range(1, 3, PAYLOAD);
	ck_assert_int_eq(append_full(IPC_ROLE_WORKER, SLOT, GEN, 2, PAYLOAD,
	    &lsn), WAL_DUPLICATE);
	ck_assert_uint_eq(lsn, 0);
	ck_assert_int_eq(append_full(IPC_ROLE_WORKER, SLOT, GEN, 3, PAYLOAD,
	    &lsn), WAL_DUPLICATE);
	ck_assert_uint_eq(wal_next_lsn(wal), 4);
	/* Gaps are the sender's business; going forward is accepted. */
	ck_assert_int_eq(append_full(IPC_ROLE_WORKER, SLOT, GEN, 10, PAYLOAD,
	    &lsn), WAL_OK);
	ck_assert_uint_eq(lsn, 4);
	ck_assert_int_eq(wal_stream_highest(wal, IPC_ROLE_WORKER, SLOT, GEN,
	    &seq), 1);
	ck_assert_uint_eq(seq, 10);
	/* Another generation, slot or role is another stream. */
	ck_assert_int_eq(append_full(IPC_ROLE_WORKER, SLOT, GEN + 1, 1,
	    PAYLOAD, &lsn), WAL_OK);
	ck_assert_int_eq(append_full(IPC_ROLE_WORKER, SLOT + 1, GEN, 1,
	    PAYLOAD, &lsn), WAL_OK);
	ck_assert_int_eq(append_full(IPC_ROLE_TOOL, SLOT, GEN, 1, PAYLOAD,
	    &lsn), WAL_OK);
	ck_assert_int_eq(wal_stream_highest(wal, IPC_ROLE_WORKER, 99, GEN,
	    &seq), 0);
	ck_assert_uint_eq(seq, 0);
	/* Duplicates are not written. */
	commit();
	ck_assert_uint_eq(wal_written_lsn(wal), 7);
}
END_TEST

START_TEST(test_duplicate_after_reopen)
{
	uint64_t	 lsn, seq;

	make_log(20);
	reopen();
	ck_assert_int_eq(wal_stream_highest(wal, IPC_ROLE_WORKER, SLOT, GEN,
	    &seq), 1);
	ck_assert_uint_eq(seq, 20);
	/* A worker resending its last ten after a walsvc restart. */
	for (seq = 11; seq <= 20; seq++)
		ck_assert_int_eq(append_full(IPC_ROLE_WORKER, SLOT, GEN, seq,
		    PAYLOAD, &lsn), WAL_DUPLICATE);
	append_range(21, 22, PAYLOAD);
	commit();
	reopen();
	check_log(1, 22);
}
END_TEST

START_TEST(test_duplicate_while_pending)
{
	uint64_t	 lsn;

	reopen();
	append_range(1, 5, PAYLOAD);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_WRITE, EIO, 1);
	ck_assert_int_eq(wal_write(wal), -EIO);
	/* Still pending, still in the log's keeping: a resend is a dup. */
	ck_assert_int_eq(append_full(IPC_ROLE_WORKER, SLOT, GEN, 5, PAYLOAD,
	    &lsn), WAL_DUPLICATE);
	commit();
	check_log(1, 5);
}
END_TEST

START_TEST(test_generation_max)
{
	uint64_t	 lsn;

	reopen();
	ck_assert_uint_eq(wal_role_generation_max(wal, IPC_ROLE_WORKER), 0);
	ck_assert_int_eq(append_full(IPC_ROLE_WORKER, 0, 3, 1, 8, &lsn),
	    WAL_OK);
	ck_assert_int_eq(append_full(IPC_ROLE_WORKER, 1, 5, 1, 8, &lsn),
	    WAL_OK);
	ck_assert_int_eq(append_full(IPC_ROLE_WORKER, 0, 4, 1, 8, &lsn),
	    WAL_OK);
	ck_assert_int_eq(append_full(IPC_ROLE_TOOL, 0, 9, 1, 8, &lsn), WAL_OK);
	ck_assert_uint_eq(wal_role_generation_max(wal, IPC_ROLE_WORKER), 5);
	ck_assert_uint_eq(wal_role_generation_max(wal, IPC_ROLE_TOOL), 9);
	commit();
	reopen();
	ck_assert_uint_eq(wal_role_generation_max(wal, IPC_ROLE_WORKER), 5);
	ck_assert_uint_eq(wal_role_generation_max(wal, IPC_ROLE_TOOL), 9);
	ck_assert_uint_eq(wal_role_generation_max(wal, IPC_ROLE_WALSVC), 0);
}
END_TEST

START_TEST(test_many_streams)
{
	uint64_t	 lsn, seq;
	uint16_t	 slot;

	/* Enough streams to make the table grow several times. */
	reopen();
	for (slot = 0; slot < 1000; slot++)
		ck_assert_int_eq(append_full(IPC_ROLE_WORKER, slot, GEN, 5, 1,
		    &lsn), WAL_OK);
	commit();
	reopen();
	for (slot = 0; slot < 1000; slot++) {
		ck_assert_int_eq(wal_stream_highest(wal, IPC_ROLE_WORKER, slot,
		    GEN, &seq), 1);
		ck_assert_uint_eq(seq, 5);
		ck_assert_int_eq(append_full(IPC_ROLE_WORKER, slot, GEN, 5, 1,
		    &lsn), WAL_DUPLICATE);
	}
}
END_TEST

START_TEST(test_invalid_appends)
{
	struct wal_record	 rec;

	reopen();
	memset(&rec, 0, sizeof(rec));
	rec.type = 0;
	rec.origin.sequence = 1;
	ck_assert_int_eq(wal_append(wal, &rec), -EINVAL);
	rec.type = WAL_TYPE_PUBLISH;
	rec.origin.sequence = 0;
	ck_assert_int_eq(wal_append(wal, &rec), -EINVAL);
	rec.origin.sequence = 1;
	rec.length = 5;
	ck_assert_int_eq(wal_append(wal, &rec), -EINVAL);
	rec.payload = (const uint8_t *)"x";
	rec.length = WAL_PAYLOAD_MAX + 1;
	ck_assert_int_eq(wal_append(wal, &rec), -EMSGSIZE);
	/* An empty payload is fine. */
	rec.payload = NULL;
	rec.length = 0;
	ck_assert_int_eq(wal_append(wal, &rec), WAL_OK);
	ck_assert_uint_eq(rec.lsn, 1);
	commit();
}
END_TEST

/* write: group commit, and failures while writing. */

START_TEST(test_group_commit_calls)
{
	struct wal_storage_mem_stats	 s0, s1, s2;

	reopen_flags(0, 0);	/* the default 64 MB segments */
	wal_storage_mem_stats(st, &s0);
	append_range(1, 32, PAYLOAD);
	commit();
	wal_storage_mem_stats(st, &s1);
	/* The new segment's header, then one write for 32 records; one
	 * fdatasync, and the directory for the new name. */
	ck_assert_uint_eq(s1.writes - s0.writes, 2);
	ck_assert_uint_eq(s1.syncs - s0.syncs, 1);
	ck_assert_uint_eq(s1.dir_syncs - s0.dir_syncs, 1);
	append_range(33, 64, PAYLOAD);
	commit();
	wal_storage_mem_stats(st, &s2);
	ck_assert_uint_eq(s2.writes - s1.writes, 1);
	ck_assert_uint_eq(s2.syncs - s1.syncs, 1);
	ck_assert_uint_eq(s2.dir_syncs - s1.dir_syncs, 0);
	/* Nothing new: no system call at all. */
	commit();
	wal_storage_mem_stats(st, &s1);
	ck_assert_uint_eq(s1.writes, s2.writes);
	ck_assert_uint_eq(s1.syncs, s2.syncs);
}
END_TEST

START_TEST(test_write_error_keeps_pending)
{
	make_log(5);
	append_range(6, 8, PAYLOAD);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_WRITE, EIO, 1);
	ck_assert_int_eq(wal_write(wal), -EIO);
	ck_assert_uint_eq(wal_written_lsn(wal), 5);
	ck_assert_uint_eq(wal_synced_lsn(wal), 5);
	ck_assert_uint_eq(wal_pending_bytes(wal), 3 * RECORD);
	ck_assert_uint_eq(file_size(seg(1)), HEADER + 5 * RECORD);
	/* Nothing new was written, so nothing new is durable. */
	ck_assert_int_eq(wal_sync(wal), 0);
	ck_assert_uint_eq(wal_synced_lsn(wal), 5);
	commit();
	ck_assert_uint_eq(wal_synced_lsn(wal), 8);
	ck_assert_uint_eq(wal_pending_bytes(wal), 0);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	check_log(1, 8);
}
END_TEST

START_TEST(test_short_write_completes)
{
	struct wal_storage_mem_stats	 s0, s1;

	make_log(5);
	append_range(6, 8, PAYLOAD);
	wal_storage_mem_short_write(st, 50);
	wal_storage_mem_stats(st, &s0);
	commit();
	wal_storage_mem_stats(st, &s1);
	ck_assert_uint_eq(s1.writes - s0.writes, 2);
	reopen();
	check_log(1, 8);
}
END_TEST

START_TEST(test_short_write_then_enospc)
{
	make_log(5);
	append_range(6, 8, PAYLOAD);
	/* Room for 50 bytes: a short write, then ENOSPC. */
	wal_storage_mem_space_left(st, 50);
	ck_assert_int_eq(wal_write(wal), -ENOSPC);
	/* No partial record is left behind to corrupt later appends. */
	ck_assert_uint_eq(file_size(seg(1)), HEADER + 5 * RECORD);
	ck_assert_uint_eq(wal_written_lsn(wal), 5);
	ck_assert_uint_eq(wal_pending_bytes(wal), 3 * RECORD);
	/* Still full: still refused, still pending. */
	ck_assert_int_eq(wal_write(wal), -ENOSPC);
	/* Space returns: it goes on by itself. */
	wal_storage_mem_space_left(st, UINT64_MAX);
	append_range(9, 9, PAYLOAD);
	commit();
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	check_log(1, 9);
}
END_TEST

START_TEST(test_enospc_creating_segment)
{
	make_log(30);
	/* 20 more: 6 fit in the first segment, 14 need a second one, and
	 * there is room only for the 6 and part of the new header. */
	append_range(31, 50, PAYLOAD);
	wal_storage_mem_space_left(st, 6 * RECORD + 10);
	ck_assert_int_eq(wal_write(wal), -ENOSPC);
	ck_assert(!file_exists(seg(37)));
	/* The full segment was synced before its successor was made. */
	ck_assert_uint_eq(wal_written_lsn(wal), 36);
	ck_assert_uint_eq(wal_synced_lsn(wal), 36);
	ck_assert_uint_eq(wal_pending_bytes(wal), 14 * RECORD);
	/* Room for the header and half a record this time. */
	wal_storage_mem_space_left(st, HEADER + RECORD / 2);
	ck_assert_int_eq(wal_write(wal), -ENOSPC);
	ck_assert_uint_eq(file_size(seg(37)), HEADER);
	wal_storage_mem_space_left(st, UINT64_MAX);
	commit();
	wal_storage_mem_power_loss(st, 0);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	ck_assert_uint_eq(rep.segments, 2);
	check_log(1, 50);
}
END_TEST

/* sync: failed fsyncs and power loss. */

START_TEST(test_sync_failure_not_durable)
{
	struct wal_storage_mem_stats	 s0, s1;

	make_log(5);
	append_range(6, 8, PAYLOAD);
	ck_assert_int_eq(wal_write(wal), 0);
	ck_assert_uint_eq(wal_written_lsn(wal), 8);
	wal_storage_mem_stats(st, &s0);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_DATASYNC, EIO, 1);
	ck_assert_int_eq(wal_sync(wal), -EIO);
	wal_storage_mem_stats(st, &s1);
	/* Not durable; still written (the bytes are in the file). */
	ck_assert_uint_eq(wal_synced_lsn(wal), 5);
	ck_assert_uint_eq(wal_written_lsn(wal), 8);
	ck_assert_uint_eq(wal_pending_bytes(wal), 3 * RECORD);
	ck_assert_uint_eq(file_size(seg(1)), HEADER + 8 * RECORD);
	/* The unsynced bytes were written again, in one call. */
	ck_assert_uint_eq(s1.writes - s0.writes, 1);
	ck_assert_uint_eq(s1.bytes_written - s0.bytes_written, 3 * RECORD);
	/* The storage forgot the failed pages: a plain second fsync would
	 * "succeed" and lose them.  This one covers the rewritten pages. */
	ck_assert_int_eq(wal_sync(wal), 0);
	ck_assert_uint_eq(wal_synced_lsn(wal), 8);
	wal_storage_mem_power_loss(st, 0);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	check_log(1, 8);
}
END_TEST

START_TEST(test_sync_failure_after_rollover)
{
	make_log(30);
	append_range(31, 50, PAYLOAD);
	ck_assert_int_eq(wal_write(wal), 0);
	ck_assert(file_exists(seg(37)));
	/* Rolling over synced the first segment. */
	ck_assert_uint_eq(wal_synced_lsn(wal), 36);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_DATASYNC, EIO, 1);
	ck_assert_int_eq(wal_sync(wal), -EIO);
	ck_assert_uint_eq(wal_synced_lsn(wal), 36);
	ck_assert_uint_eq(wal_written_lsn(wal), 50);
	/* The new segment, header and records, is written again. */
	ck_assert_int_eq(wal_sync(wal), 0);
	wal_storage_mem_power_loss(st, 0);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	ck_assert_uint_eq(rep.segments, 2);
	check_log(1, 50);
}
END_TEST

START_TEST(test_sync_failure_at_rollover)
{
	make_log(30);
	append_range(31, 50, PAYLOAD);
	/* The sync before the new segment fails: no new segment yet. */
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_DATASYNC, EIO, 1);
	ck_assert_int_eq(wal_write(wal), -EIO);
	ck_assert(!file_exists(seg(37)));
	ck_assert_uint_eq(wal_synced_lsn(wal), 30);
	ck_assert_uint_eq(wal_written_lsn(wal), 36);
	ck_assert_uint_eq(wal_pending_bytes(wal), 20 * RECORD);
	commit();
	wal_storage_mem_power_loss(st, 0);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	ck_assert_uint_eq(rep.segments, 2);
	check_log(1, 50);
}
END_TEST

START_TEST(test_dir_sync_failure)
{
	make_log(36);
	append_range(37, 40, PAYLOAD);
	ck_assert_int_eq(wal_write(wal), 0);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_SYNC_DIR, EIO, 1);
	ck_assert_int_eq(wal_sync(wal), -EIO);
	ck_assert_uint_eq(wal_synced_lsn(wal), 36);
	commit();
	wal_storage_mem_power_loss(st, 0);
	reopen();
	check_log(1, 40);
}
END_TEST

START_TEST(test_failed_rewrite_retried)
{
	make_log(5);
	append_range(6, 8, PAYLOAD);
	ck_assert_int_eq(wal_write(wal), 0);
	/* The sync fails, and so does writing the records again. */
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_DATASYNC, EIO, 1);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_WRITE, EIO, 1);
	ck_assert_int_eq(wal_sync(wal), -EIO);
	ck_assert_uint_eq(wal_synced_lsn(wal), 5);
	/* A sync now would "succeed" on clean pages: the log rewrites
	 * first, and only then syncs. */
	ck_assert_int_eq(wal_sync(wal), 0);
	ck_assert_uint_eq(wal_synced_lsn(wal), 8);
	wal_storage_mem_power_loss(st, 0);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	check_log(1, 8);
}
END_TEST

START_TEST(test_failed_cut_retried)
{
	make_log(5);
	append_range(6, 8, PAYLOAD);
	/* 50 bytes land, then ENOSPC, and the cut back fails too. */
	wal_storage_mem_space_left(st, 50);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_TRUNCATE, EIO, 2);
	ck_assert_int_eq(wal_write(wal), -ENOSPC);
	ck_assert_uint_eq(file_size(seg(1)), HEADER + 5 * RECORD + 50);
	/* Nothing is written after the partial record until it is cut. */
	wal_storage_mem_space_left(st, UINT64_MAX);
	ck_assert_int_eq(wal_write(wal), -EIO);
	ck_assert_uint_eq(file_size(seg(1)), HEADER + 5 * RECORD + 50);
	ck_assert_uint_eq(wal_written_lsn(wal), 5);
	commit();
	ck_assert_uint_eq(file_size(seg(1)), HEADER + 8 * RECORD);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	check_log(1, 8);
}
END_TEST

START_TEST(test_power_loss_loses_only_unsynced)
{
	make_log(10);
	append_range(11, 15, PAYLOAD);
	ck_assert_int_eq(wal_write(wal), 0);
	wal_storage_mem_power_loss(st, 0);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	ck_assert_uint_eq(rep.last_lsn, 10);
	check_log(1, 10);
	/* The unsynced records were never acknowledged: the sender sends
	 * them again, and they are not duplicates. */
	append_range(11, 15, PAYLOAD);
	commit();
	wal_storage_mem_power_loss(st, 0);
	reopen();
	check_log(1, 15);
}
END_TEST

START_TEST(test_power_loss_new_segment_name)
{
	make_log(36);
	append_range(37, 37, PAYLOAD);
	ck_assert_int_eq(wal_write(wal), 0);
	/* Written into a new segment whose name was never synced. */
	wal_storage_mem_power_loss(st, 0);
	ck_assert(!file_exists(seg(37)));
	reopen();
	ck_assert_uint_eq(rep.last_lsn, 36);
	append_range(37, 37, PAYLOAD);
	commit();
	wal_storage_mem_power_loss(st, 0);
	reopen();
	ck_assert(file_exists(seg(37)));
	check_log(1, 37);
}
END_TEST

START_TEST(test_open_syncs_what_it_found)
{
	struct wal_storage_mem_stats	 s;

	make_log(10);
	/* A crashed walsvc wrote 5 more but never synced them. */
	append_range(11, 15, PAYLOAD);
	ck_assert_int_eq(wal_write(wal), 0);
	reopen();
	ck_assert_uint_eq(wal_synced_lsn(wal), 15);
	/* They are durable now, so reporting them durable is true. */
	wal_storage_mem_power_loss(st, 0);
	reopen();
	check_log(1, 15);
	wal_storage_mem_stats(st, &s);
	ck_assert_uint_gt(s.syncs, 0);
}
END_TEST

START_TEST(test_restart_after_failed_rewrite)
{
	make_log(5);
	append_range(6, 8, PAYLOAD);
	ck_assert_int_eq(wal_write(wal), 0);
	/* The sync fails, and so does writing the records again; then
	 * walsvc stops (or dies) before a later call could redo it.  The
	 * kernel holds records 6..8 as clean pages it never wrote. */
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_DATASYNC, EIO, 1);
	wal_storage_mem_fail(st, WAL_STORAGE_MEM_WRITE, EIO, 1);
	ck_assert_int_eq(wal_sync(wal), -EIO);
	ck_assert_uint_eq(wal_synced_lsn(wal), 5);
	/* The next walsvc finds them and reports them durable... */
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	ck_assert_uint_eq(wal_synced_lsn(wal), 8);
	/* ...so they must survive a power loss. */
	wal_storage_mem_power_loss(st, 0);
	reopen();
	ck_assert_uint_eq(rep.last_lsn, 8);
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	check_log(1, 8);
}
END_TEST

/* segments: rollover, LSNs, compaction. */

START_TEST(test_rollover)
{
	uint64_t	 lsn, size;
	uint64_t	 first;

	make_log(100);
	for (first = 1; first <= 73; first += PER_SEGMENT) {
		size = file_size(seg(first));
		ck_assert_uint_le(size, SMALL_SEGMENT);
	}
	ck_assert_uint_eq(file_size(seg(1)), HEADER + PER_SEGMENT * RECORD);
	/* A record larger than a segment gets one of its own. */
	ck_assert_int_eq(append_full(IPC_ROLE_WORKER, SLOT, GEN, 101, 5000,
	    &lsn), WAL_OK);
	append_range(102, 102, PAYLOAD);
	commit();
	ck_assert_uint_eq(file_size(seg(101)), HEADER +
	    WAL_RECORD_HEADER_SIZE_V1 + 5000);
	ck_assert_uint_eq(file_size(seg(102)), HEADER + RECORD);
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	ck_assert_uint_eq(rep.segments, 5);
	ck_assert_uint_eq(rep.last_lsn, 102);
}
END_TEST

START_TEST(test_lsn_continuity)
{
	struct wal_record	 rec;
	struct wal_iter		*it;
	uint64_t		 lsn, expect = 1;
	int			 rc;

	reopen();
	/* Interleaved streams, several batches, a reopen in between. */
	for (lsn = 1; lsn <= 60; lsn++) {
		uint64_t got;

		ck_assert_int_eq(append_full(IPC_ROLE_WORKER,
		    (uint16_t)(lsn % 4), GEN, lsn, 16, &got), WAL_OK);
		ck_assert_uint_eq(got, lsn);
		if (lsn % 7 == 0)
			commit();
		if (lsn == 30) {
			commit();
			reopen();
			ck_assert_uint_eq(wal_next_lsn(wal), 31);
		}
	}
	commit();
	reopen();
	ck_assert_int_eq(wal_iter_open(&it, wal, 0), 0);
	while ((rc = wal_iter_next(it, &rec)) == 1)
		ck_assert_uint_eq(rec.lsn, expect++);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(expect, 61);
	wal_iter_close(it);
}
END_TEST

START_TEST(test_remove_below)
{
	struct wal_record	 rec;
	struct wal_iter		*it;
	uint32_t		 removed;
	uint64_t		 seq;

	make_log(100);
	ck_assert_int_eq(wal_remove_below(wal, 50, &removed), 0);
	ck_assert_uint_eq(removed, 1);	/* 37..72 still holds 50 */
	ck_assert_uint_eq(wal_first_lsn(wal), 37);
	ck_assert(!file_exists(seg(1)));
	reopen();
	ck_assert_int_eq(rep.action, WAL_RECOVERY_CLEAN);
	ck_assert_uint_eq(rep.first_lsn, 37);
	ck_assert_uint_eq(rep.last_lsn, 100);
	/* Iterating from before the log starts at its first record. */
	ck_assert_int_eq(wal_iter_open(&it, wal, 1), 0);
	ck_assert_int_eq(wal_iter_next(it, &rec), 1);
	ck_assert_uint_eq(rec.lsn, 37);
	wal_iter_close(it);
	/* Never the last segment, never anything unsynced. */
	append_range(101, 101, PAYLOAD);
	ck_assert_int_eq(wal_remove_below(wal, 1000, &removed), 0);
	ck_assert_uint_eq(removed, 1);
	ck_assert_uint_eq(wal_segment_count(wal), 1);
	commit();
	ck_assert_int_eq(wal_stream_highest(wal, IPC_ROLE_WORKER, SLOT, GEN,
	    &seq), 1);
	ck_assert_uint_eq(seq, 101);
}
END_TEST

/* iterator. */

START_TEST(test_iter_from_lsn)
{
	static const uint64_t	 starts[] = { 0, 1, 2, 36, 37, 50, 72, 73,
	    100 };
	struct wal_record	 rec;
	struct wal_iter		*it;
	uint64_t		 expect;
	size_t			 i;
	int			 rc;

	make_log(100);
	reopen();
	for (i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		ck_assert_int_eq(wal_iter_open(&it, wal, starts[i]), 0);
		expect = starts[i] ? starts[i] : 1;
		while ((rc = wal_iter_next(it, &rec)) == 1)
			ck_assert_uint_eq(rec.lsn, expect++);
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_eq(expect, 101);
		wal_iter_close(it);
	}
	ck_assert_int_eq(wal_iter_open(&it, wal, 101), 0);
	ck_assert_int_eq(wal_iter_next(it, &rec), 0);
	wal_iter_close(it);
}
END_TEST

START_TEST(test_iter_follows_writes)
{
	struct wal_record	 rec;
	struct wal_iter		*it;
	uint64_t		 expect = 1;

	reopen();
	ck_assert_int_eq(wal_iter_open(&it, wal, 1), 0);
	ck_assert_int_eq(wal_iter_next(it, &rec), 0);
	append_range(1, 30, PAYLOAD);
	/* Appended is not written: nothing to read yet. */
	ck_assert_int_eq(wal_iter_next(it, &rec), 0);
	ck_assert_int_eq(wal_write(wal), 0);
	while (wal_iter_next(it, &rec) == 1)
		ck_assert_uint_eq(rec.lsn, expect++);
	ck_assert_uint_eq(expect, 31);
	/* On into the next segment. */
	append_range(31, 80, PAYLOAD);
	commit();
	while (wal_iter_next(it, &rec) == 1)
		ck_assert_uint_eq(rec.lsn, expect++);
	ck_assert_uint_eq(expect, 81);
	wal_iter_close(it);
}
END_TEST

START_TEST(test_bad_segment_size)
{
	char	 err[256];

	ck_assert_int_eq(try_open(100, 0, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "segment size"));
}
END_TEST

/*
 * power loss, randomized.
 *
 * The tests above lose power where their author thought of it.  Here a
 * seeded generator decides: each run appends records of random sizes and
 * types from a few origin streams, writes and syncs at random points,
 * injects what a failing disk does (ENOSPC, EIO on write, fdatasync and
 * the directory fsync, short writes, failed cuts), and then stops the
 * machine -- between two calls of the log, or inside one of its storage
 * calls, for example while a segment is being created -- keeping a
 * random torn fragment of what was not synced.  Then the log is
 * recovered and held to what it promised:
 *
 *   1) every record reported synced (or, if only the process died,
 *      written) is there, unchanged, once, in LSN order;
 *   2) nothing is there that was never appended;
 *   3) LSNs are consecutive from 1, and segments start on record
 *      boundaries;
 *   4) each stream's highest sequence is that of its last record in the
 *      log, so at least that of its last synced one;
 *   5) the report is what a crash explains: a torn tail cut, never
 *      damage before the tail or valid records after the damage, and
 *      "clean" when nothing torn can have reached the disk;
 *   6) the log goes on: the sender resends what was not confirmed
 *      (duplicates must be recognised), and the next round ends with
 *      another loss, sometimes during recovery itself.
 *
 * A second test stops the machine in every storage call of one group
 * commit that crosses three segment boundaries, instead of at random.
 *
 * A failing run prints its seed and the operations it made; the seed
 * replays it alone with PMQ_WAL_SEED=N (logs on stderr), and
 * PMQ_WAL_SEEDS=N runs more seeds than the RANDOM_SEEDS checked in.
 */

#define RANDOM_SEEDS		200
#define RANDOM_PAYLOAD_MAX	6000	/* more than a small segment */
#define RANDOM_STREAMS_MAX	32
#define RANDOM_ROUNDS_MAX	4
#define RANDOM_STEPS_MAX	60
#define TRACE_SIZE		(48 * 1024)

/*
 * The machine the log runs on: the memory storage behind a table of
 * operations that counts every call that changes something (opening for
 * writing, rename, remove, write, fdatasync, truncate, directory fsync)
 * and can make call number `crash_at` the last one: the process dies
 * there, and with `power` the power goes too.  The dying call may take
 * effect first -- a write only in part -- as a real one may have when
 * the lights went out.  From then on every call fails with EIO, so the
 * log cannot tidy up after itself, until the test "reboots" it.
 */
struct crash_storage {
	struct wal_storage	 base;
	struct wal_storage	*mem;
	uint64_t		 calls;	/* changing calls so far */
	uint64_t		 crash_at;	/* the last call; 0: none */
	int			 power;
	size_t			 torn;	/* as in ..._power_loss */
	int			 effect;	/* the last call happens */
	uint64_t		 partial;	/* how much of a write lands */
	int			 crashed;	/* down until revived */
	/* For the trace: the last call, and for a write the bytes it was
	 * given and the bytes that landed. */
	const char		*crashed_in;
	size_t			 crashed_bytes;
	size_t			 crashed_landed;
};

struct crash_file {
	struct wal_file		 base;
	struct wal_file		*inner;
};

static struct crash_storage *
crash_of(struct wal_storage *storage)
{
	return (struct crash_storage *)storage;
}

static struct wal_file *
crash_inner(struct wal_file *f)
{
	return ((struct crash_file *)f)->inner;
}

/* Counts a changing call; whether the machine dies in it. */
static int
crash_point(struct crash_storage *cs, const char *what)
{
	cs->calls++;
	if (cs->crash_at == 0 || cs->calls != cs->crash_at)
		return 0;
	cs->crashed_in = what;
	cs->crashed_bytes = cs->crashed_landed = 0;
	return 1;
}

static void
crash_now(struct crash_storage *cs)
{
	if (cs->power)
		wal_storage_mem_power_loss(cs->mem, cs->torn);
	cs->crashed = 1;
	cs->crash_at = 0;
}

static int
crash_open(struct wal_storage *storage, const char *name,
    enum wal_storage_mode mode, struct wal_file **out)
{
	struct crash_storage	*cs = crash_of(storage);
	struct crash_file	*cf;
	struct wal_file		*inner;
	int			 rc;

	if (cs->crashed)
		return -EIO;
	if (mode != WAL_STORAGE_READ && crash_point(cs, "open")) {
		/* Created (or emptied) just before the end. */
		if (cs->effect &&
		    cs->mem->ops->open(cs->mem, name, mode, &inner) == 0)
			cs->mem->ops->close(inner);
		crash_now(cs);
		return -EIO;
	}
	if ((cf = calloc(1, sizeof(*cf))) == NULL)
		return -ENOMEM;
	if ((rc = cs->mem->ops->open(cs->mem, name, mode, &cf->inner)) != 0) {
		free(cf);
		return rc;
	}
	cf->base.storage = storage;
	*out = &cf->base;
	return 0;
}

static int
crash_list(struct wal_storage *storage, wal_storage_list_cb cb, void *arg)
{
	struct crash_storage	*cs = crash_of(storage);

	if (cs->crashed)
		return -EIO;
	return cs->mem->ops->list(cs->mem, cb, arg);
}

static int
crash_rename(struct wal_storage *storage, const char *from, const char *to)
{
	struct crash_storage	*cs = crash_of(storage);

	if (cs->crashed)
		return -EIO;
	if (crash_point(cs, "rename")) {
		if (cs->effect)
			(void)cs->mem->ops->rename(cs->mem, from, to);
		crash_now(cs);
		return -EIO;
	}
	return cs->mem->ops->rename(cs->mem, from, to);
}

static int
crash_remove(struct wal_storage *storage, const char *name)
{
	struct crash_storage	*cs = crash_of(storage);

	if (cs->crashed)
		return -EIO;
	if (crash_point(cs, "remove")) {
		if (cs->effect)
			(void)cs->mem->ops->remove(cs->mem, name);
		crash_now(cs);
		return -EIO;
	}
	return cs->mem->ops->remove(cs->mem, name);
}

static int
crash_sync_dir(struct wal_storage *storage)
{
	struct crash_storage	*cs = crash_of(storage);

	if (cs->crashed)
		return -EIO;
	if (crash_point(cs, "sync_dir")) {
		if (cs->effect)
			(void)cs->mem->ops->sync_dir(cs->mem);
		crash_now(cs);
		return -EIO;
	}
	return cs->mem->ops->sync_dir(cs->mem);
}

static void
crash_destroy(struct wal_storage *storage)
{
	struct crash_storage	*cs = crash_of(storage);

	wal_storage_destroy(cs->mem);
	free(cs);
}

static ssize_t
crash_read_at(struct wal_file *f, void *p, size_t n, uint64_t off)
{
	struct crash_storage	*cs = crash_of(f->storage);

	if (cs->crashed)
		return -EIO;
	return cs->mem->ops->read_at(crash_inner(f), p, n, off);
}

static ssize_t
crash_write_at(struct wal_file *f, const void *p, size_t n, uint64_t off)
{
	struct crash_storage	*cs = crash_of(f->storage);
	ssize_t			 landed = 0;

	if (cs->crashed)
		return -EIO;
	if (crash_point(cs, "write_at")) {
		/* Some leading part of the write reached the page cache. */
		if (cs->effect && n > 0)
			landed = cs->mem->ops->write_at(crash_inner(f), p,
			    1 + (size_t)(cs->partial % n), off);
		cs->crashed_bytes = n;
		cs->crashed_landed = landed > 0 ? (size_t)landed : 0;
		crash_now(cs);
		return -EIO;
	}
	return cs->mem->ops->write_at(crash_inner(f), p, n, off);
}

static int
crash_datasync(struct wal_file *f)
{
	struct crash_storage	*cs = crash_of(f->storage);

	if (cs->crashed)
		return -EIO;
	if (crash_point(cs, "datasync")) {
		if (cs->effect)
			(void)cs->mem->ops->datasync(crash_inner(f));
		crash_now(cs);
		return -EIO;
	}
	return cs->mem->ops->datasync(crash_inner(f));
}

static int
crash_truncate(struct wal_file *f, uint64_t size)
{
	struct crash_storage	*cs = crash_of(f->storage);

	if (cs->crashed)
		return -EIO;
	if (crash_point(cs, "truncate")) {
		if (cs->effect)
			(void)cs->mem->ops->truncate(crash_inner(f), size);
		crash_now(cs);
		return -EIO;
	}
	return cs->mem->ops->truncate(crash_inner(f), size);
}

static int
crash_size(struct wal_file *f, uint64_t *size)
{
	struct crash_storage	*cs = crash_of(f->storage);

	if (cs->crashed)
		return -EIO;
	return cs->mem->ops->size(crash_inner(f), size);
}

static void
crash_close(struct wal_file *f)
{
	struct crash_storage	*cs = crash_of(f->storage);

	cs->mem->ops->close(crash_inner(f));
	free(f);
}

static const struct wal_storage_ops crash_ops = {
	.open = crash_open,
	.list = crash_list,
	.rename = crash_rename,
	.remove = crash_remove,
	.sync_dir = crash_sync_dir,
	.destroy = crash_destroy,
	.read_at = crash_read_at,
	.write_at = crash_write_at,
	.datasync = crash_datasync,
	.truncate = crash_truncate,
	.size = crash_size,
	.close = crash_close,
};

static struct crash_storage *
crash_storage_new(void)
{
	struct crash_storage	*cs;

	cs = calloc(1, sizeof(*cs));
	ck_assert_ptr_nonnull(cs);
	cs->mem = wal_storage_mem_new();
	ck_assert_ptr_nonnull(cs->mem);
	cs->base.ops = &crash_ops;
	cs->base.path = "mem:";
	return cs;
}

/* The disk is well again: no fault armed, space to spare. */
static void
crash_storage_heal(struct crash_storage *cs)
{
	int	 op;

	for (op = 0; op < WAL_STORAGE_MEM_OPS; op++)
		wal_storage_mem_fail(cs->mem, (enum wal_storage_mem_op)op, 0,
		    0);
	/* An armed short write cannot be cleared; one this large never
	 * fires. */
	wal_storage_mem_short_write(cs->mem, SIZE_MAX);
	wal_storage_mem_space_left(cs->mem, UINT64_MAX);
}

/* The machine comes back up, the disk as the crash left it. */
static void
crash_storage_revive(struct crash_storage *cs)
{
	cs->crashed = 0;
	cs->crash_at = 0;
	cs->crashed_in = NULL;
	crash_storage_heal(cs);
}

/* What the log is expected to hold: record LSN is records[LSN - 1]. */
struct model_record {
	uint32_t	 stream;	/* index in run.streams */
	uint64_t	 sequence;
	uint8_t		 type;
	uint16_t	 flags;
	uint32_t	 length;
	uint64_t	 key;		/* its payload: see payload_fill */
};

struct model_stream {
	uint8_t		 role;
	uint16_t	 slot;
	uint64_t	 generation;
	uint64_t	 next_sequence;
	int		 retired;	/* a newer generation replaced it */
};

struct run {
	char			 name[96];	/* for messages */
	int			 replayable;	/* by PMQ_WAL_SEED=seed */
	uint32_t		 seed;
	uint64_t		 rng;
	int			 round;
	struct crash_storage	*cs;
	struct wal		*wal;
	uint64_t		 segment_size;

	struct model_record	*records;
	size_t			 nrecords;	/* wal_next_lsn - 1 */
	size_t			 records_cap;
	struct model_stream	 streams[RANDOM_STREAMS_MAX];
	uint32_t		 nstreams;

	/* What the log claimed before the machine went down. */
	uint64_t		 synced_lsn;
	uint64_t		 written_lsn;
	/*
	 * Since the last successful open: the power was lost (else only
	 * processes died); part of a record or header can be on disk;
	 * whole records past written_lsn can be (a failed cut).
	 */
	int			 power_lost;
	int			 torn_possible;
	int			 cut_failed;
	int			 faults;	/* a fault may be armed */
	int			 space_limited;

	char			 trace[TRACE_SIZE];
	size_t			 trace_len;
	int			 verbose;
};

static uint8_t	 random_payload[RANDOM_PAYLOAD_MAX];
static uint8_t	 random_expect[RANDOM_PAYLOAD_MAX];

static void	 run_trace(struct run *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	 run_fail(struct run *, int line, const char *cond,
		    const char *, ...) __attribute__((format(printf, 4, 5)));

/* Every check names the seed and dumps what the run did before it. */
#define RUN_CHECK(r, cond, ...) do {					\
	if (!(cond))							\
		run_fail((r), __LINE__, #cond, __VA_ARGS__);		\
} while (0)

static void
run_trace(struct run *r, const char *fmt, ...)
{
	va_list	 ap;
	char	 line[256];
	size_t	 len;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (r->verbose)
		fprintf(stderr, "%s: %s\n", r->name, line);
	len = strlen(line);
	/* Keep the newest part: the end of a run explains its failure. */
	if (r->trace_len + len + 2 > sizeof(r->trace)) {
		memmove(r->trace, r->trace + r->trace_len / 2,
		    r->trace_len - r->trace_len / 2);
		r->trace_len -= r->trace_len / 2;
	}
	memcpy(r->trace + r->trace_len, line, len);
	r->trace_len += len;
	r->trace[r->trace_len++] = '\n';
	r->trace[r->trace_len] = '\0';
}

static void
run_fail(struct run *r, int line, const char *cond, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "---- %s, round %d: what the run did ----\n%s",
	    r->name, r->round, r->trace);
	if (r->replayable)
		fprintf(stderr, "---- replay: PMQ_WAL_SEED=%u ----\n", r->seed);
	ck_abort_msg("%s round %d, check_wal.c:%d: %s: %s", r->name,
	    r->round, line, cond, msg);
}

/* splitmix64: small, good enough, the same everywhere. */
static uint64_t
rand_next(struct run *r)
{
	uint64_t	 z = (r->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t
rand_below(struct run *r, uint64_t n)
{
	return n == 0 ? 0 : rand_next(r) % n;
}

static int
rand_chance(struct run *r, unsigned percent)
{
	return rand_below(r, 100) < percent;
}

static void
payload_fill(uint8_t *p, size_t len, uint64_t key)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		key = key * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(key >> 56);
	}
}

/* The run in progress, freed by the teardown if a check ends it. */
static struct run	*current_run;

static struct run *
run_new(uint32_t seed, int verbose)
{
	struct run	*r;

	r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	current_run = r;
	snprintf(r->name, sizeof(r->name), "seed %u", seed);
	r->seed = seed;
	r->rng = seed;
	r->verbose = verbose;
	r->cs = crash_storage_new();
	r->segment_size = rand_chance(r, 80) ? SMALL_SEGMENT :
	    2 * SMALL_SEGMENT;
	return r;
}

static void
run_free(struct run *r)
{
	wal_close(r->wal);
	wal_storage_destroy(&r->cs->base);
	free(r->records);
	free(r);
	current_run = NULL;
}

static void
run_add_stream(struct run *r, uint8_t role, uint16_t slot,
    uint64_t generation)
{
	struct model_stream	*s;

	ck_assert_uint_lt(r->nstreams, RANDOM_STREAMS_MAX);
	s = &r->streams[r->nstreams++];
	s->role = role;
	s->slot = slot;
	s->generation = generation;
	s->next_sequence = 1;
	s->retired = 0;
}

static void
run_push(struct run *r, const struct model_record *m)
{
	struct model_record	*v;
	size_t			 cap;

	if (r->nrecords == r->records_cap) {
		cap = r->records_cap ? r->records_cap * 2 : 256;
		v = realloc(r->records, cap * sizeof(*v));
		ck_assert_ptr_nonnull(v);
		r->records = v;
		r->records_cap = cap;
	}
	r->records[r->nrecords++] = *m;
}

static int
run_append_model(struct run *r, const struct model_record *m, uint64_t *lsn)
{
	const struct model_stream	*s = &r->streams[m->stream];
	struct wal_record		 rec;
	int				 rc;

	payload_fill(random_payload, m->length, m->key);
	memset(&rec, 0, sizeof(rec));
	rec.type = m->type;
	rec.flags = m->flags;
	rec.origin.role = s->role;
	rec.origin.slot = s->slot;
	rec.origin.generation = s->generation;
	rec.origin.sequence = m->sequence;
	rec.payload = random_payload;
	rec.length = m->length;
	rc = wal_append(r->wal, &rec);
	*lsn = rec.lsn;
	return rc;
}

/* Sizes mostly small, some across pages, a few larger than a segment. */
static uint32_t
run_pick_length(struct run *r)
{
	uint64_t	 dice = rand_below(r, 100);

	if (dice < 60)
		return (uint32_t)rand_below(r, 121);
	if (dice < 90)
		return (uint32_t)(121 + rand_below(r, 580));
	if (dice < 97)
		return (uint32_t)(701 + rand_below(r, 1800));
	return (uint32_t)(3000 + rand_below(r, RANDOM_PAYLOAD_MAX - 3000 + 1));
}

/* Appends a new record of `stream`. */
static void
run_append_new(struct run *r, uint32_t stream, uint8_t type, uint32_t length)
{
	struct model_stream	*s = &r->streams[stream];
	struct model_record	 m;
	uint64_t		 lsn;
	int			 rc;

	memset(&m, 0, sizeof(m));
	m.stream = stream;
	/* Senders may skip sequences; they never go back. */
	m.sequence = s->next_sequence + rand_below(r, 3);
	s->next_sequence = m.sequence + 1;
	m.type = type;
	m.flags = (uint16_t)rand_next(r);
	m.length = length;
	m.key = rand_next(r);
	rc = run_append_model(r, &m, &lsn);
	run_trace(r, "append lsn=%" PRIu64 " stream=%u seq=%" PRIu64
	    " type=%u len=%u: %d", lsn, stream, m.sequence, m.type, m.length,
	    rc);
	RUN_CHECK(r, rc == WAL_OK, "append returned %d", rc);
	RUN_CHECK(r, lsn == r->nrecords + 1, "append got lsn %" PRIu64
	    ", expected %zu", lsn, r->nrecords + 1);
	run_push(r, &m);
}

static void
run_append(struct run *r)
{
	static const uint8_t	 types[] = { WAL_TYPE_PUBLISH,
	    WAL_TYPE_SESSION, WAL_TYPE_SUBSCRIPTION, WAL_TYPE_RETAINED,
	    WAL_TYPE_ACK, WAL_TYPE_COPY, WAL_TYPE_WILL, 200 };
	uint32_t		 i;
	uint8_t			 type;

	do
		i = (uint32_t)rand_below(r, r->nstreams);
	while (r->streams[i].retired);
	type = types[rand_below(r, sizeof(types))];
	run_append_new(r, i, type, run_pick_length(r));
}

/* A resend of something the log holds, pending or not: no new record. */
static void
run_append_duplicate(struct run *r)
{
	struct model_record	 m;
	uint64_t		 lsn, next = wal_next_lsn(r->wal);
	size_t			 i;
	int			 rc;

	if (r->nrecords == 0)
		return;
	i = (size_t)rand_below(r, r->nrecords);
	m = r->records[i];
	if (r->streams[m.stream].retired)
		return;
	rc = run_append_model(r, &m, &lsn);
	run_trace(r, "resend lsn=%zu stream=%u seq=%" PRIu64 ": %d", i + 1,
	    m.stream, m.sequence, rc);
	RUN_CHECK(r, rc == WAL_DUPLICATE && lsn == 0,
	    "resending lsn %zu returned %d lsn %" PRIu64, i + 1, rc, lsn);
	RUN_CHECK(r, wal_next_lsn(r->wal) == next, "a duplicate took an LSN");
}

/* The counters only move forward and keep their order. */
static void
run_check_counters(struct run *r, uint64_t written0, uint64_t synced0)
{
	uint64_t	 written = wal_written_lsn(r->wal);
	uint64_t	 synced = wal_synced_lsn(r->wal);

	RUN_CHECK(r, written >= written0 && synced >= synced0,
	    "went back: written %" PRIu64 " -> %" PRIu64 ", synced %"
	    PRIu64 " -> %" PRIu64, written0, written, synced0, synced);
	RUN_CHECK(r, synced <= written && written <= r->nrecords,
	    "synced %" PRIu64 " written %" PRIu64 " appended %zu", synced,
	    written, r->nrecords);
	RUN_CHECK(r, wal_next_lsn(r->wal) == r->nrecords + 1,
	    "next lsn %" PRIu64 ", appended %zu", wal_next_lsn(r->wal),
	    r->nrecords);
	/* Claims made before the machine died are what recovery owes. */
	r->written_lsn = written;
	r->synced_lsn = synced;
}

/* An error is only acceptable from a fault the test injected. */
static void
run_check_error(struct run *r, const char *what, int rc)
{
	if (rc == 0)
		return;
	RUN_CHECK(r, rc == -EIO || rc == -ENOSPC, "%s returned %d", what, rc);
	RUN_CHECK(r, r->faults || r->cs->crashed,
	    "%s failed (%d) with no fault injected", what, rc);
}

static int
run_write(struct run *r)
{
	uint64_t	 written0 = wal_written_lsn(r->wal);
	uint64_t	 synced0 = wal_synced_lsn(r->wal);
	int		 rc;

	rc = wal_write(r->wal);
	run_trace(r, "write: %d written=%" PRIu64 " synced=%" PRIu64, rc,
	    wal_written_lsn(r->wal), wal_synced_lsn(r->wal));
	run_check_error(r, "wal_write", rc);
	run_check_counters(r, written0, synced0);
	if (rc == 0)
		RUN_CHECK(r, wal_written_lsn(r->wal) == r->nrecords,
		    "wal_write succeeded with records pending");
	return rc;
}

static int
run_sync(struct run *r)
{
	uint64_t	 written0 = wal_written_lsn(r->wal);
	uint64_t	 synced0 = wal_synced_lsn(r->wal);
	int		 rc;

	rc = wal_sync(r->wal);
	run_trace(r, "sync: %d written=%" PRIu64 " synced=%" PRIu64, rc,
	    wal_written_lsn(r->wal), wal_synced_lsn(r->wal));
	run_check_error(r, "wal_sync", rc);
	run_check_counters(r, written0, synced0);
	if (rc == 0)
		RUN_CHECK(r, wal_synced_lsn(r->wal) == wal_written_lsn(r->wal),
		    "wal_sync succeeded short of what was written");
	else
		RUN_CHECK(r, wal_synced_lsn(r->wal) == synced0,
		    "a failed wal_sync made records durable");
	return rc;
}

/* The disk is well again: no fault armed, space to spare. */
static void
run_heal(struct run *r)
{
	crash_storage_heal(r->cs);
	r->faults = 0;
	r->space_limited = 0;
	run_trace(r, "disk healed");
}

/*
 * The disk is well again: the log must go on by itself, the records the
 * faults held back included (wal.h: a later call retries).
 */
static void
run_commit_clean(struct run *r)
{
	int	 rc;

	run_heal(r);
	rc = run_write(r);
	if (r->cs->crashed)
		return;
	RUN_CHECK(r, rc == 0, "wal_write still fails (%d) on a healed disk",
	    rc);
	rc = run_sync(r);
	if (r->cs->crashed)
		return;
	RUN_CHECK(r, rc == 0, "wal_sync still fails (%d) on a healed disk", rc);
	RUN_CHECK(r, wal_synced_lsn(r->wal) == r->nrecords,
	    "synced %" PRIu64 " of %zu after a good commit",
	    wal_synced_lsn(r->wal), r->nrecords);
}

/* Arms one of the failures a disk gives; the next calls meet it. */
static void
run_fault(struct run *r)
{
	struct wal_storage	*mem = r->cs->mem;
	uint64_t		 n;

	r->faults = 1;
	switch (rand_below(r, 9)) {
	case 0:
	case 1:
		/* Full: writes get what fits, then ENOSPC, until space
		 * returns. */
		n = rand_below(r, 800);
		wal_storage_mem_space_left(mem, n);
		r->space_limited = 1;
		run_trace(r, "fault: %" PRIu64 " bytes of space left", n);
		break;
	case 2:
		wal_storage_mem_fail(mem, WAL_STORAGE_MEM_WRITE, EIO, 1);
		run_trace(r, "fault: next write EIO");
		break;
	case 3:
		wal_storage_mem_fail(mem, WAL_STORAGE_MEM_WRITE, ENOSPC, 1);
		run_trace(r, "fault: next write ENOSPC");
		break;
	case 4:
		wal_storage_mem_fail(mem, WAL_STORAGE_MEM_DATASYNC, EIO, 1);
		run_trace(r, "fault: next datasync EIO");
		break;
	case 5:
		wal_storage_mem_fail(mem, WAL_STORAGE_MEM_SYNC_DIR, EIO, 1);
		run_trace(r, "fault: next sync_dir EIO");
		break;
	case 6:
		n = 1 + rand_below(r, 300);
		wal_storage_mem_short_write(mem, (size_t)n);
		run_trace(r, "fault: next write short, %" PRIu64 " bytes", n);
		break;
	case 7:
		/* A failed sync whose rewrite fails as well. */
		wal_storage_mem_fail(mem, WAL_STORAGE_MEM_DATASYNC, EIO, 1);
		wal_storage_mem_fail(mem, WAL_STORAGE_MEM_WRITE, EIO, 1);
		run_trace(r, "fault: next datasync EIO, next write EIO");
		break;
	case 8:
		/* A failed write that cannot even be cut back: bytes past the
		 * last whole record stay in the file for a while. */
		n = 1 + rand_below(r, 2);
		wal_storage_mem_short_write(mem, 1 + rand_below(r, 300));
		wal_storage_mem_fail(mem, WAL_STORAGE_MEM_WRITE, EIO, 1);
		wal_storage_mem_fail(mem, WAL_STORAGE_MEM_TRUNCATE, EIO,
		    (int)n);
		r->cut_failed = 1;
		run_trace(r, "fault: next write short then EIO, %" PRIu64
		    " truncates EIO", n);
		break;
	}
}

static void
run_step(struct run *r)
{
	uint64_t	 dice, n;

	if (r->space_limited && rand_chance(r, 25)) {
		wal_storage_mem_space_left(r->cs->mem, UINT64_MAX);
		r->space_limited = 0;
		run_trace(r, "space returns");
	}
	dice = rand_below(r, 100);
	if (dice < 40) {
		for (n = 1 + rand_below(r, 6); n > 0; n--)
			run_append(r);
	} else if (dice < 55)
		(void)run_write(r);
	else if (dice < 67)
		(void)run_sync(r);
	else if (dice < 80) {
		/* A group commit: what walsvc does every loop turn. */
		(void)run_write(r);
		if (!r->cs->crashed)
			(void)run_sync(r);
	} else if (dice < 90)
		run_fault(r);
	else if (dice < 94)
		run_append_duplicate(r);
	else
		run_commit_clean(r);
}

/* How much of what was not synced a power loss leaves behind. */
static size_t
run_pick_torn(struct run *r)
{
	uint64_t	 dice = rand_below(r, 10);

	if (dice < 3)
		return 0;
	if (dice < 7)
		return (size_t)(1 + rand_below(r, 200));
	return (size_t)(1 + rand_below(r, 2 * SMALL_SEGMENT));
}

/* The machine dies in one of the next `within` changing calls. */
static void
run_arm(struct run *r, int power, size_t torn, uint64_t within)
{
	struct crash_storage	*cs = r->cs;

	cs->crash_at = cs->calls + within;
	cs->power = power;
	cs->torn = torn;
	cs->effect = rand_chance(r, 50);
	cs->partial = rand_next(r);
	run_trace(r, "armed: call %" PRIu64 " is the last (%s, torn %zu%s)",
	    cs->crash_at, power ? "power" : "process", torn,
	    cs->effect ? ", it takes effect" : "");
}

/*
 * The end of a round: the machine is down already (it died in a storage
 * call), or goes down now, between two calls of the log.  Either way the
 * log is closed without another word, as a dead process says nothing.
 */
static void
run_go_down(struct run *r, int power, size_t torn)
{
	struct crash_storage	*cs = r->cs;

	if (cs->crashed) {
		run_trace(r, "down in call %" PRIu64 " (%s, %s, torn %zu%s): "
		    "%zu of %zu bytes landed", cs->calls, cs->crashed_in,
		    cs->power ? "power" : "process", cs->torn,
		    cs->effect ? ", took effect" : "", cs->crashed_landed,
		    cs->crashed_bytes);
		r->power_lost |= cs->power;
		/* A process that dies inside a call leaves whatever part of
		 * the call happened, a partial record or header included. */
		r->torn_possible |= cs->power ? cs->torn > 0 : 1;
	} else {
		cs->crash_at = 0;
		if (power)
			wal_storage_mem_power_loss(cs->mem, torn);
		run_trace(r, "down between calls (%s, torn %zu)",
		    power ? "power" : "process", power ? torn : 0);
		r->power_lost |= power;
		r->torn_possible |= power && torn > 0;
	}
	wal_close(r->wal);
	r->wal = NULL;
}

struct listing {
	uint32_t	 segments;
	char		 other[64];	/* a name not of a segment */
};

static int
listing_add(const char *name, void *arg)
{
	struct listing	*l = arg;
	uint64_t	 lsn;

	if (wal_segment_name_parse(name, &lsn) == 0)
		l->segments++;
	else if (l->other[0] == '\0')
		snprintf(l->other, sizeof(l->other), "%s", name);
	return 0;
}

/*
 * Holds the recovered log to what was promised before the crash: every
 * record up to `floor` (reported synced, or written if only processes
 * died), nothing past `upper`, nothing never appended.  Returns the last
 * LSN.
 */
static uint64_t
run_check_recovered(struct run *r, const struct wal_recovery *report,
    uint64_t floor, uint64_t upper)
{
	uint64_t		 highest[RANDOM_STREAMS_MAX];
	uint64_t		 synced_seq[RANDOM_STREAMS_MAX];
	uint64_t		 generation_max[IPC_ROLE_MAX + 1];
	const struct model_record *m;
	const struct model_stream *s;
	struct wal_record	 rec;
	struct wal_iter		*it;
	struct listing		 l;
	uint64_t		 expect = 1, last, seq, start, prev, dlsn;
	uint32_t		 i, n;
	int			 rc;

	memset(highest, 0, sizeof(highest));
	memset(synced_seq, 0, sizeof(synced_seq));
	memset(generation_max, 0, sizeof(generation_max));

	/* 1), 2), 3): the records, in order, as appended. */
	RUN_CHECK(r, wal_iter_open(&it, r->wal, 0) == 0, "iterator");
	while ((rc = wal_iter_next(it, &rec)) == 1) {
		RUN_CHECK(r, rec.lsn == expect, "lsn %" PRIu64 " where %"
		    PRIu64 " belongs", rec.lsn, expect);
		RUN_CHECK(r, expect <= r->nrecords, "record %" PRIu64
		    " was never appended (%zu were)", expect, r->nrecords);
		m = &r->records[expect - 1];
		s = &r->streams[m->stream];
		RUN_CHECK(r, rec.type == m->type && rec.flags == m->flags &&
		    rec.origin.role == s->role && rec.origin.slot == s->slot &&
		    rec.origin.generation == s->generation &&
		    rec.origin.sequence == m->sequence &&
		    rec.length == m->length, "record %" PRIu64 " is not the "
		    "one appended (type %u len %u seq %" PRIu64 ")", expect,
		    rec.type, rec.length, rec.origin.sequence);
		payload_fill(random_expect, m->length, m->key);
		RUN_CHECK(r, m->length == 0 ||
		    memcmp(rec.payload, random_expect, m->length) == 0,
		    "record %" PRIu64 ": payload changed", expect);
		if (m->sequence > highest[m->stream])
			highest[m->stream] = m->sequence;
		if (expect <= floor)
			synced_seq[m->stream] = m->sequence;
		if (s->generation > generation_max[s->role])
			generation_max[s->role] = s->generation;
		expect++;
	}
	RUN_CHECK(r, rc == 0, "iterator failed: %d", rc);
	wal_iter_close(it);
	last = expect - 1;
	run_trace(r, "recovered %" PRIu64 " of %zu appended (owed %" PRIu64
	    ", at most %" PRIu64 "): %s", last, r->nrecords, floor, upper,
	    report->why);
	RUN_CHECK(r, last >= floor, "records %" PRIu64 "..%" PRIu64
	    " were reported %s and are gone: %s", last + 1, floor,
	    r->power_lost ? "synced" : "written", report->why);
	RUN_CHECK(r, last <= upper, "recovered %" PRIu64 " records, but only "
	    "%" PRIu64 " were written", last, upper);

	/* What the log says about itself agrees; all of it is durable. */
	RUN_CHECK(r, wal_next_lsn(r->wal) == last + 1 &&
	    wal_written_lsn(r->wal) == last && wal_synced_lsn(r->wal) == last &&
	    wal_pending_bytes(r->wal) == 0, "counters after open: next %"
	    PRIu64 " written %" PRIu64 " synced %" PRIu64,
	    wal_next_lsn(r->wal), wal_written_lsn(r->wal),
	    wal_synced_lsn(r->wal));

	/* 5) The report: what a crash explains, and nothing else. */
	RUN_CHECK(r, report->last_lsn == last && report->records == last &&
	    report->first_lsn == (last > 0 ? 1 : 0), "report: first %" PRIu64
	    " last %" PRIu64 " records %" PRIu64, report->first_lsn,
	    report->last_lsn, report->records);
	RUN_CHECK(r, report->segments == wal_segment_count(r->wal) &&
	    report->bytes == wal_disk_bytes(r->wal), "report: %" PRIu32
	    " segments %" PRIu64 " bytes", report->segments, report->bytes);
	RUN_CHECK(r, report->action != WAL_RECOVERY_SET_ASIDE &&
	    report->segments_set_aside == 0 && !report->records_after_damage,
	    "a crash reported as damage to written data: %s", report->why);
	if (report->action == WAL_RECOVERY_CLEAN)
		RUN_CHECK(r, report->damage == WAL_DAMAGE_NONE &&
		    report->bytes_truncated == 0 &&
		    report->segments_removed == 0, "clean, yet: %s",
		    report->why);
	else {
		RUN_CHECK(r, report->damage == WAL_DAMAGE_TORN,
		    "a torn tail reported as %s: %s",
		    wal_damage_name(report->damage), report->why);
		n = wal_segment_count(r->wal);
		RUN_CHECK(r, wal_segment_name_parse(report->damage_segment,
		    &dlsn) == 0 && (n == 0 ||
		    dlsn >= wal_segment_start(r->wal, n - 1)),
		    "damage in %s, before the last segment",
		    report->damage_segment);
	}
	RUN_CHECK(r, r->torn_possible || r->cut_failed ||
	    report->action == WAL_RECOVERY_CLEAN, "nothing torn can have "
	    "reached the disk, yet: %s", report->why);

	/* 3) Segments start at 1 and on record boundaries, each holds a
	 *    record but the last; nothing else lies in the directory. */
	n = wal_segment_count(r->wal);
	for (i = 0, prev = 0; i < n; i++) {
		start = wal_segment_start(r->wal, i);
		RUN_CHECK(r, i > 0 || start == 1, "first segment at %" PRIu64,
		    start);
		RUN_CHECK(r, i == 0 || start > prev, "segment %" PRIu64
		    " after %" PRIu64, start, prev);
		RUN_CHECK(r, start <= last + 1, "segment %" PRIu64 " after the "
		    "last record %" PRIu64, start, last);
		prev = start;
	}
	memset(&l, 0, sizeof(l));
	RUN_CHECK(r, r->cs->mem->ops->list(r->cs->mem, listing_add, &l) == 0,
	    "list");
	RUN_CHECK(r, l.segments == n && l.other[0] == '\0',
	    "%" PRIu32 " segment files for %" PRIu32 " segments; other: '%s'",
	    l.segments, n, l.other);

	/* 4) The idempotency table, rebuilt from what is there. */
	for (i = 0; i < r->nstreams; i++) {
		s = &r->streams[i];
		rc = wal_stream_highest(r->wal, s->role, s->slot,
		    s->generation, &seq);
		RUN_CHECK(r, rc == (highest[i] != 0) && seq == highest[i],
		    "stream %" PRIu32 ": highest %" PRIu64 " (%d), its last "
		    "record has %" PRIu64, i, seq, rc, highest[i]);
		RUN_CHECK(r, seq >= synced_seq[i], "stream %" PRIu32
		    ": highest %" PRIu64 " below its last synced %" PRIu64, i,
		    seq, synced_seq[i]);
	}
	for (i = IPC_ROLE_WORKER; i <= IPC_ROLE_MAX; i++)
		RUN_CHECK(r, wal_role_generation_max(r->wal, (uint8_t)i) ==
		    generation_max[i], "role %" PRIu32 ": generation %" PRIu64
		    ", expected %" PRIu64, i,
		    wal_role_generation_max(r->wal, (uint8_t)i),
		    generation_max[i]);
	return last;
}

static int
run_try_open(struct run *r, struct wal_recovery *report, char *err,
    size_t errlen)
{
	struct wal_options	 o = { r->segment_size, 0 };

	return wal_open(&r->wal, &r->cs->base, &o, report, err, errlen);
}

/* A fresh, empty log. */
static void
run_open_new(struct run *r)
{
	struct wal_recovery	 report;
	char			 err[256];
	int			 rc;

	rc = run_try_open(r, &report, err, sizeof(err));
	RUN_CHECK(r, rc == 0, "wal_open: %s", err);
	RUN_CHECK(r, report.action == WAL_RECOVERY_CLEAN &&
	    report.last_lsn == 0, "new log: %s", report.why);
}

/*
 * The machine comes back and walsvc starts: recovery, sometimes cut
 * short by another crash (every repair step must be safe to repeat),
 * then the checks.  Returns the last LSN.
 */
static uint64_t
run_recover(struct run *r, uint64_t upper)
{
	struct wal_recovery	 report;
	char			 err[256];
	uint64_t		 floor, last;
	size_t			 torn;
	int			 rc, power;

	crash_storage_revive(r->cs);
	while (rand_chance(r, 20)) {
		power = rand_chance(r, 75);
		torn = run_pick_torn(r);
		run_arm(r, power, torn, 1 + rand_below(r, 6));
		rc = run_try_open(r, &report, err, sizeof(err));
		if (!r->cs->crashed) {
			r->cs->crash_at = 0;
			RUN_CHECK(r, rc == 0, "wal_open: %s", err);
			break;
		}
		run_trace(r, "recovery: down in call %" PRIu64 " (%s): %d",
		    r->cs->calls, r->cs->crashed_in, rc);
		if (rc == 0) {
			wal_close(r->wal);
			r->wal = NULL;
		}
		RUN_CHECK(r, rc != 0,
		    "wal_open succeeded on a storage that died under it");
		r->power_lost |= power;
		r->torn_possible |= power && torn > 0;
		crash_storage_revive(r->cs);
	}
	if (r->wal == NULL) {
		rc = run_try_open(r, &report, err, sizeof(err));
		RUN_CHECK(r, rc == 0, "wal_open: %s", err);
	}
	floor = r->power_lost ? r->synced_lsn : r->written_lsn;
	last = run_check_recovered(r, &report, floor, upper);
	r->power_lost = 0;
	r->torn_possible = 0;
	r->cut_failed = 0;
	r->faults = 0;
	r->space_limited = 0;
	return last;
}

/*
 * What a sender does after walsvc comes back: it resends, in order,
 * every record it had no confirmation for (under wal-sync=always: not
 * synced), and the log answers WAL_DUPLICATE for the ones it kept.  The
 * model then forgets the records that were lost: their LSNs are reused.
 */
static void
run_resend(struct run *r, uint64_t last, uint64_t acked)
{
	struct model_record	*lost = NULL, m;
	size_t			 nlost = r->nrecords - last;
	uint64_t		 lsn, old_n = r->nrecords, got;
	int			 rc;

	if (nlost > 0) {
		lost = malloc(nlost * sizeof(*lost));
		ck_assert_ptr_nonnull(lost);
		memcpy(lost, r->records + last, nlost * sizeof(*lost));
	}
	r->nrecords = last;
	for (lsn = acked + 1; lsn <= old_n; lsn++) {
		m = lsn <= last ? r->records[lsn - 1] : lost[lsn - last - 1];
		if (r->streams[m.stream].retired || !rand_chance(r, 75))
			continue;
		rc = run_append_model(r, &m, &got);
		run_trace(r, "resend old lsn=%" PRIu64 " stream=%u seq=%"
		    PRIu64 ": %d, lsn %" PRIu64, lsn, m.stream, m.sequence,
		    rc, got);
		if (lsn <= last) {
			RUN_CHECK(r, rc == WAL_DUPLICATE, "resent record %"
			    PRIu64 ", which the log kept, was appended again "
			    "(%d)", lsn, rc);
			continue;
		}
		RUN_CHECK(r, rc == WAL_OK && got == r->nrecords + 1,
		    "resent record %" PRIu64 ", which the log lost, got %d "
		    "lsn %" PRIu64, lsn, rc, got);
		run_push(r, &m);
	}
	free(lost);
}

/* Some senders restart too: a new generation, sequences from 1. */
static void
run_restart_streams(struct run *r)
{
	struct model_stream	*s;
	uint32_t		 i, n = r->nstreams;

	for (i = 0; i < n; i++) {
		s = &r->streams[i];
		if (s->retired || r->nstreams == RANDOM_STREAMS_MAX ||
		    !rand_chance(r, 10))
			continue;
		s->retired = 1;
		run_add_stream(r, s->role, s->slot,
		    s->generation + 1 + rand_below(r, 3));
		run_trace(r, "stream %u restarts as %u", i, r->nstreams - 1);
	}
}

/* After a recovery: the senders catch up, and the log goes on. */
static void
run_after_recovery(struct run *r, uint64_t last)
{
	run_resend(r, last, r->synced_lsn < last ? r->synced_lsn : last);
	run_restart_streams(r);
	r->synced_lsn = r->written_lsn = last;
}

/* One round: random work, then the machine goes down somewhere. */
static void
run_round(struct run *r)
{
	uint64_t	 steps, step, inside, upper;
	size_t		 torn;
	int		 power;

	r->round++;
	steps = 1 + rand_below(r, RANDOM_STEPS_MAX);
	inside = rand_chance(r, 50) ? rand_below(r, steps) : UINT64_MAX;
	power = rand_chance(r, 80);
	torn = run_pick_torn(r);
	run_trace(r, "round %d: %" PRIu64 " steps", r->round, steps);
	for (step = 0; step < steps && !r->cs->crashed; step++) {
		if (step == inside)
			run_arm(r, power, torn, 1 + rand_below(r, 16));
		run_step(r);
	}
	/* Often the power goes with a group commit in flight: written, not
	 * yet synced, what a torn tail is made of. */
	if (!r->cs->crashed && rand_chance(r, 70)) {
		if (rand_chance(r, 50))
			run_heal(r);
		for (step = 1 + rand_below(r, 8); step > 0; step--)
			run_append(r);
		(void)run_write(r);
	}
	/* Whole records past written_lsn reach the disk only in part of a
	 * call the process died in, or from a cut that failed. */
	upper = r->cs->crashed || r->cut_failed ? r->nrecords : r->written_lsn;
	run_go_down(r, power, torn);
	run_after_recovery(r, run_recover(r, upper));
}

static void
run_seed(uint32_t seed, int verbose)
{
	struct run	*r;
	uint32_t	 i, n;
	uint8_t		 role;
	int		 rounds;

	r = run_new(seed, verbose);
	r->replayable = 1;
	/* Workers mostly; walsvc and a tool append too (wills, tests). */
	n = 1 + (uint32_t)rand_below(r, 4);
	for (i = 0; i < n; i++) {
		role = IPC_ROLE_WORKER;
		if (i == 3)
			role = IPC_ROLE_WALSVC;
		else if (i == 2 && rand_chance(r, 50))
			role = IPC_ROLE_TOOL;
		run_add_stream(r, role, (uint16_t)i, 1 + rand_below(r, 1000));
	}
	run_trace(r, "segments of %" PRIu64 " bytes, %u streams",
	    r->segment_size, n);
	run_open_new(r);
	for (rounds = 2 + (int)rand_below(r, RANDOM_ROUNDS_MAX - 1);
	    rounds > 0; rounds--)
		run_round(r);

	/* 6) Appending after recovery works, and survives the next loss. */
	r->round++;
	run_trace(r, "last round");
	for (n = 1 + (uint32_t)rand_below(r, 5); n > 0; n--)
		run_append(r);
	run_commit_clean(r);
	run_go_down(r, 1, run_pick_torn(r));
	RUN_CHECK(r, run_recover(r, r->nrecords) == r->nrecords,
	    "synced records lost after the last loss");
	run_free(r);
}

static uint32_t
env_number(const char *name, uint32_t otherwise)
{
	const char	*s = getenv(name);
	char		*end;
	unsigned long	 v;

	if (s == NULL || *s == '\0')
		return otherwise;
	v = strtoul(s, &end, 10);
	ck_assert_msg(*end == '\0' && v <= UINT32_MAX, "%s=%s", name, s);
	return (uint32_t)v;
}

/* The log reports every torn tail; hundreds of them say nothing here. */
static void
random_setup(void)
{
	char	 err[128];

	if (getenv("PMQ_WAL_SEED") == NULL)
		ck_assert_int_eq(log_configure(NULL, NULL, "/dev/null", NULL,
		    err, sizeof(err)), 0);
}

/* Frees the run a failed check ended, so CK_FORK=no valgrind stays
 * quiet about it. */
static void
random_teardown(void)
{
	char	 err[128];

	if (current_run != NULL)
		run_free(current_run);
	ck_assert_int_eq(log_configure(NULL, NULL, "stderr", NULL, err,
	    sizeof(err)), 0);
}

START_TEST(test_power_loss_random)
{
	uint32_t	 seed, seeds;

	if (getenv("PMQ_WAL_SEED") != NULL) {
		run_seed(env_number("PMQ_WAL_SEED", 0), 1);
		return;
	}
	seeds = env_number("PMQ_WAL_SEEDS", RANDOM_SEEDS);
	for (seed = 1; seed <= seeds; seed++)
		run_seed(seed, 0);
}
END_TEST

/*
 * One group commit that crosses three segment boundaries (one record
 * larger than a segment among them), with the machine stopped in each of
 * its storage calls in turn: syncing the full segment, creating the next,
 * writing its header, its records, syncing it, syncing the directory.
 */
static void
rollover_crash(uint64_t call, int power, size_t torn, int effect,
    uint64_t *calls)
{
	struct run	*r;
	uint64_t	 before, upper;
	int		 i;

	/* The seed only picks how much of a dying write lands and whether
	 * recovery is cut short too. */
	r = run_new((uint32_t)(call << 16 | (uint32_t)power << 15 |
	    (uint32_t)effect << 14 | (uint32_t)torn), 0);
	snprintf(r->name, sizeof(r->name), "rollover, crash in call %" PRIu64
	    " (%s, torn %zu%s)", call, power ? "power" : "process", torn,
	    effect ? ", takes effect" : "");
	r->segment_size = SMALL_SEGMENT;
	run_add_stream(r, IPC_ROLE_WORKER, SLOT, GEN);
	run_open_new(r);
	for (i = 0; i < PER_SEGMENT - 2; i++)
		run_append_new(r, 0, WAL_TYPE_PUBLISH, PAYLOAD);
	run_commit_clean(r);

	/* Two fit, the third starts a segment, the large one takes one of
	 * its own, the last two start another. */
	for (i = 0; i < 3; i++)
		run_append_new(r, 0, WAL_TYPE_PUBLISH, PAYLOAD);
	run_append_new(r, 0, WAL_TYPE_RETAINED, 5000);
	for (i = 0; i < 2; i++)
		run_append_new(r, 0, WAL_TYPE_ACK, PAYLOAD);
	before = r->cs->calls;
	r->round = 1;
	if (call > 0) {
		r->cs->crash_at = before + call;
		r->cs->power = power;
		r->cs->torn = torn;
		r->cs->effect = effect;
		r->cs->partial = rand_next(r);
	}
	if (run_write(r) == 0)
		(void)run_sync(r);
	*calls = r->cs->calls - before;
	if (call == 0) {
		RUN_CHECK(r, wal_segment_count(r->wal) == 4,
		    "%" PRIu32 " segments", wal_segment_count(r->wal));
		RUN_CHECK(r, wal_synced_lsn(r->wal) == r->nrecords, "synced");
	}
	upper = r->cs->crashed ? r->nrecords : r->written_lsn;
	run_go_down(r, power, torn);
	run_after_recovery(r, run_recover(r, upper));

	/* The log goes on from there, and keeps it through another loss. */
	r->round++;
	for (i = 0; i < 3; i++)
		run_append_new(r, 0, WAL_TYPE_PUBLISH, PAYLOAD);
	run_commit_clean(r);
	run_go_down(r, 1, torn);
	RUN_CHECK(r, run_recover(r, r->nrecords) == r->nrecords,
	    "synced records lost after the second loss");
	run_free(r);
}

START_TEST(test_power_loss_in_rollover)
{
	static const size_t	 torns[] = { 0, 3, HEADER, 50, RECORD,
	    4096 };
	uint64_t		 call, calls, n;
	size_t			 t;
	int			 effect;

	rollover_crash(0, 1, 0, 0, &calls);
	ck_assert_uint_ge(calls, 15);
	for (call = 1; call <= calls; call++)
		for (effect = 0; effect <= 1; effect++) {
			rollover_crash(call, 0, 0, effect, &n);
			for (t = 0; t < sizeof(torns) / sizeof(torns[0]); t++)
				rollover_crash(call, 1, torns[t], effect, &n);
		}
}
END_TEST

static Suite *
wal_suite(void)
{
	Suite	*s = suite_create("wal");
	TCase	*tc;

	tc = tcase_create("format");
	tcase_add_test(tc, test_record_round_trip);
	tcase_add_test(tc, test_record_damage_detected);
	tcase_add_test(tc, test_segment_header);
	tcase_add_test(tc, test_segment_names);
	tcase_add_test(tc, test_type_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("recovery");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_empty_directory);
	tcase_add_test(tc, test_clean_recovery_several_segments);
	tcase_add_test(tc, test_torn_tail_partial_header);
	tcase_add_test(tc, test_torn_tail_partial_payload);
	tcase_add_test(tc, test_bad_crc_tail);
	tcase_add_test(tc, test_lsn_mismatch_in_tail);
	tcase_add_test(tc, test_damaged_data_in_tail_kept);
	tcase_add_test(tc, test_corruption_in_earlier_segment);
	tcase_add_test(tc, test_damaged_segment_header_earlier);
	tcase_add_test(tc, test_missing_segment_is_a_gap);
	tcase_add_test(tc, test_set_aside_names_are_unique);
	tcase_add_test(tc, test_unborn_tail_segment_removed);
	tcase_add_test(tc, test_newer_version_refused);
	tcase_add_test(tc, test_readonly_changes_nothing);
	tcase_add_test(tc, test_bad_segment_size);
	suite_add_tcase(s, tc);

	tc = tcase_create("idempotency");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_duplicate_detected);
	tcase_add_test(tc, test_duplicate_after_reopen);
	tcase_add_test(tc, test_duplicate_while_pending);
	tcase_add_test(tc, test_generation_max);
	tcase_add_test(tc, test_many_streams);
	tcase_add_test(tc, test_invalid_appends);
	suite_add_tcase(s, tc);

	tc = tcase_create("write");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_group_commit_calls);
	tcase_add_test(tc, test_write_error_keeps_pending);
	tcase_add_test(tc, test_short_write_completes);
	tcase_add_test(tc, test_short_write_then_enospc);
	tcase_add_test(tc, test_enospc_creating_segment);
	suite_add_tcase(s, tc);

	tc = tcase_create("sync");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_sync_failure_not_durable);
	tcase_add_test(tc, test_sync_failure_after_rollover);
	tcase_add_test(tc, test_sync_failure_at_rollover);
	tcase_add_test(tc, test_dir_sync_failure);
	tcase_add_test(tc, test_failed_rewrite_retried);
	tcase_add_test(tc, test_failed_cut_retried);
	tcase_add_test(tc, test_power_loss_loses_only_unsynced);
	tcase_add_test(tc, test_power_loss_new_segment_name);
	tcase_add_test(tc, test_open_syncs_what_it_found);
	tcase_add_test(tc, test_restart_after_failed_rewrite);
	suite_add_tcase(s, tc);

	tc = tcase_create("segments");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_rollover);
	tcase_add_test(tc, test_lsn_continuity);
	tcase_add_test(tc, test_remove_below);
	suite_add_tcase(s, tc);

	tc = tcase_create("iterator");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_iter_from_lsn);
	tcase_add_test(tc, test_iter_follows_writes);
	suite_add_tcase(s, tc);

	tc = tcase_create("power loss, randomized");
	tcase_add_checked_fixture(tc, random_setup, random_teardown);
	/* Well under a second; sanitizers and valgrind take longer. */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_power_loss_random);
	tcase_add_test(tc, test_power_loss_in_rollover);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(wal_suite());
	int	 failed;

	/* The log reports damage on stderr; the tests cause plenty. */
	log_init("check_wal", -1);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
