/*
 * check_wal.c - unit tests of the message log (walsvc/wal*.c).
 *
 * Almost everything runs on the memory storage, which keeps what a crash
 * would keep and can fail on demand, so the tests can say "power lost
 * here" or "the disk filled up there" and check what the log does:
 * recovery, torn and corrupt tails, damage in earlier segments,
 * idempotent appends, write/ENOSPC/fsync failures, rollover, LSN
 * continuity, the iterator and the compaction hook.
 *
 * Most tests use one origin stream whose sequence equals the LSN, and
 * payloads computed from the sequence, so a recovered log can be checked
 * byte for byte.  With 64-byte payloads a record takes 112 bytes, and a
 * 4096-byte segment holds 36 of them after its 24-byte header.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
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
