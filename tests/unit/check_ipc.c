/*
 * check_ipc.c - unit tests of common/ipc.c, the one envelope of every
 * message between PromptMQ processes.
 *
 * A batch written with the encoder must come back record for record,
 * and a receiver must refuse anything that is not exactly a batch
 * before a handler sees a record: another magic or envelope version, a
 * header or record cut short, bytes after the last counted record, a
 * sender role we do not know.  The malformed batches are made by
 * writing a good one and then breaking one field of it, so each test
 * names the one thing that is wrong.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adm.h"
#include "harness.h"
#include "ipc.h"

/* Offsets in the batch header (ipc.h). */
#define OFF_VERSION	4
#define OFF_COUNT	6
#define OFF_ROLE	8

static const struct ipc_identity	 worker = { IPC_ROLE_WORKER, 7,
	0x0102030405060708ull };

/*
 * A good batch of two records with small bodies, from `worker`, in a
 * buffer that may hold an earlier one.
 */
static void
make_batch(struct buf *b)
{
	ck_assert_int_eq(ipc_batch_begin(b, &worker, 42), 0);
	ck_assert_int_eq(ipc_record_add(b, IPC_WAL_APPEND, 1, 0, "abc", 3), 0);
	ck_assert_int_eq(ipc_record_add(b, IPC_WAL_APPEND, 2, 0, "de", 2), 0);
	ck_assert_int_eq(ipc_batch_end(b), 0);
}

static void
assert_record(const struct ipc_record *rec, uint16_t type, uint64_t seq,
    uint64_t corr, const void *body, size_t len)
{
	ck_assert_uint_eq(rec->type, type);
	ck_assert_uint_eq(rec->seq, seq);
	ck_assert_uint_eq(rec->corr, corr);
	ck_assert_uint_eq(rec->len, len);
	ck_assert_ptr_nonnull(rec->body);
	if (len > 0)
		ck_assert_mem_eq(rec->body, body, len);
}

START_TEST(test_round_trip)
{
	static const uint8_t	 hello[8] = { 0, 0, 0, 4, 0, 0, 0, 0 };
	const char		 config[] = "log.level\0debug\0";
	uint8_t			 big[3000];
	struct ipc_identity	 sup = { IPC_ROLE_SUPERVISOR, 0, 0 };
	struct ipc_batch	 bt;
	struct ipc_record	 rec;
	struct buf		 b = BUF_INITIALIZER;

	memset(big, 0x5a, sizeof(big));
	ck_assert_int_eq(ipc_batch_begin(&b, &sup, UINT64_MAX), 0);
	ck_assert_int_eq(ipc_batch_count(&b), 0);
	ck_assert_int_eq(ipc_record_add(&b, IPC_CTL_HELLO, 0, 1, hello,
	    sizeof(hello)), 0);
	ck_assert_int_eq(ipc_batch_count(&b), 1);
	ck_assert_int_eq(ipc_record_add(&b, IPC_CTL_CONFIG, 1, 2, config,
	    sizeof(config) - 1), 0);
	ck_assert_int_eq(ipc_batch_count(&b), 2);
	ck_assert_int_eq(ipc_record_add(&b, IPC_CTL_STOP, UINT64_MAX, 0, NULL,
	    0), 0);
	ck_assert_int_eq(ipc_batch_count(&b), 3);
	ck_assert_int_eq(ipc_record_add(&b, IPC_WAL_APPEND, 1ull << 40,
	    UINT64_MAX, big, sizeof(big)), 0);
	ck_assert_int_eq(ipc_batch_count(&b), 4);
	ck_assert_int_eq(ipc_batch_end(&b), 0);
	ck_assert_uint_eq(b.len, IPC_BATCH_HEADER_SIZE +
	    4 * IPC_RECORD_HEADER_SIZE + sizeof(hello) + sizeof(config) - 1 +
	    sizeof(big));

	ck_assert_int_eq(ipc_batch_open(&bt, b.data, b.len), IPC_OK);
	ck_assert_uint_eq(bt.sender.role, IPC_ROLE_SUPERVISOR);
	ck_assert_uint_eq(bt.sender.slot, 0);
	ck_assert_uint_eq(bt.sender.gen, 0);
	ck_assert_uint_eq(bt.target_gen, UINT64_MAX);
	ck_assert_uint_eq(bt.count, 4);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 1);
	assert_record(&rec, IPC_CTL_HELLO, 0, 1, hello, sizeof(hello));
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 1);
	assert_record(&rec, IPC_CTL_CONFIG, 1, 2, config, sizeof(config) - 1);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 1);
	assert_record(&rec, IPC_CTL_STOP, UINT64_MAX, 0, NULL, 0);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 1);
	assert_record(&rec, IPC_WAL_APPEND, 1ull << 40, UINT64_MAX, big,
	    sizeof(big));
	/* the end stays the end */
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 0);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_sender_identity)
{
	struct ipc_batch	 bt;
	struct buf		 b = BUF_INITIALIZER;

	make_batch(&b);
	ck_assert_int_eq(ipc_batch_open(&bt, b.data, b.len), IPC_OK);
	ck_assert_uint_eq(bt.sender.role, worker.role);
	ck_assert_uint_eq(bt.sender.slot, worker.slot);
	ck_assert_uint_eq(bt.sender.gen, worker.gen);
	ck_assert_uint_eq(bt.target_gen, 42);
	buf_free(&b);
}
END_TEST

START_TEST(test_empty_batch)
{
	struct ipc_batch	 bt;
	struct ipc_record	 rec;
	struct buf		 b = BUF_INITIALIZER;

	ck_assert_int_eq(ipc_batch_begin(&b, &worker, 0), 0);
	ck_assert_int_eq(ipc_batch_end(&b), 0);
	ck_assert_uint_eq(b.len, IPC_BATCH_HEADER_SIZE);
	ck_assert_int_eq(ipc_batch_open(&bt, b.data, b.len), IPC_OK);
	ck_assert_uint_eq(bt.count, 0);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 0);
	buf_free(&b);
}
END_TEST

/* A batch begun on a used buffer starts afresh at offset 0. */
START_TEST(test_begin_resets)
{
	struct ipc_batch	 bt;
	struct buf		 b = BUF_INITIALIZER;

	make_batch(&b);
	ck_assert_int_eq(ipc_batch_begin(&b, &worker, 0), 0);
	ck_assert_int_eq(ipc_batch_count(&b), 0);
	ck_assert_uint_eq(b.len, IPC_BATCH_HEADER_SIZE);
	ck_assert_int_eq(ipc_batch_open(&bt, b.data, b.len), IPC_OK);
	buf_free(&b);
}
END_TEST

START_TEST(test_record_in_place)
{
	struct ipc_batch	 bt;
	struct ipc_record	 rec;
	struct buf		 b = BUF_INITIALIZER;
	size_t			 start;

	ck_assert_int_eq(ipc_batch_begin(&b, &worker, 0), 0);
	/* the body written piece by piece straight into the batch */
	start = ipc_record_begin(&b, IPC_WAL_APPEND, 5, 6);
	ck_assert_uint_eq(start, IPC_BATCH_HEADER_SIZE);
	ck_assert_int_eq(buf_add_u8(&b, 3), 0);
	ck_assert_int_eq(buf_add(&b, "payload", 7), 0);
	/* not counted until it is ended */
	ck_assert_int_eq(ipc_batch_count(&b), 0);
	ck_assert_int_eq(ipc_record_end(&b, start), 0);
	ck_assert_int_eq(ipc_batch_count(&b), 1);
	ck_assert_int_eq(ipc_record_add(&b, IPC_WAL_SYNC, 0, 0, NULL, 0), 0);
	start = ipc_record_begin(&b, IPC_CTL_STOP, 7, 8);
	ck_assert_int_eq(ipc_record_end(&b, start), 0);
	ck_assert_int_eq(ipc_batch_count(&b), 3);

	ck_assert_int_eq(ipc_batch_open(&bt, b.data, b.len), IPC_OK);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 1);
	assert_record(&rec, IPC_WAL_APPEND, 5, 6, "\003payload", 8);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 1);
	assert_record(&rec, IPC_WAL_SYNC, 0, 0, NULL, 0);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 1);
	assert_record(&rec, IPC_CTL_STOP, 7, 8, NULL, 0);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_record_end_misuse)
{
	struct buf	 b = BUF_INITIALIZER;

	/* no batch header */
	ck_assert_int_eq(ipc_record_end(&b, 0), -1);
	ck_assert_int_eq(ipc_batch_end(&b), -1);
	ck_assert_int_eq(ipc_batch_count(&b), 0);
	/* a start that leaves no room for a record header */
	ck_assert_int_eq(ipc_batch_begin(&b, &worker, 0), 0);
	ck_assert_int_eq(ipc_record_end(&b, b.len), -1);
	ck_assert_int_eq(ipc_batch_count(&b), 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_record_limit)
{
	struct ipc_batch	 bt;
	struct ipc_record	 rec;
	struct buf		 b = BUF_INITIALIZER;
	size_t			 len;
	int			 i, n;

	ck_assert_int_eq(ipc_batch_begin(&b, &worker, 0), 0);
	for (i = 0; i < IPC_BATCH_MAX_RECORDS; i++)
		ck_assert_int_eq(ipc_record_add(&b, IPC_WAL_SYNC,
		    (uint64_t)i, 0, NULL, 0), 0);
	ck_assert_int_eq(ipc_batch_count(&b), IPC_BATCH_MAX_RECORDS);
	/* the count is 16 bits: one more is refused and leaves no trace */
	len = b.len;
	errno = 0;
	ck_assert_int_eq(ipc_record_add(&b, IPC_WAL_SYNC, 0, 0, "x", 1), -1);
	ck_assert_int_eq(errno, E2BIG);
	ck_assert_uint_eq(b.len, len);
	ck_assert_int_eq(ipc_batch_count(&b), IPC_BATCH_MAX_RECORDS);
	ck_assert_int_eq(ipc_batch_end(&b), 0);

	ck_assert_int_eq(ipc_batch_open(&bt, b.data, b.len), IPC_OK);
	for (n = 0; ipc_batch_next(&bt, &rec) == 1; n++)
		ck_assert_uint_eq(rec.seq, (uint64_t)n);
	ck_assert_int_eq(n, IPC_BATCH_MAX_RECORDS);
	buf_free(&b);
}
END_TEST

START_TEST(test_failed_buffer)
{
	struct buf	 b = BUF_INITIALIZER;
	size_t		 len;

	ck_assert_int_eq(ipc_batch_begin(&b, &worker, 0), 0);
	ck_assert_int_eq(ipc_record_add(&b, IPC_WAL_SYNC, 1, 0, NULL, 0), 0);
	len = b.len;
	/* a body too large to allocate fails the record, not the caller */
	ck_assert_int_eq(ipc_record_add(&b, IPC_WAL_APPEND, 2, 0, "",
	    SIZE_MAX / 2), -1);
	ck_assert_uint_eq(b.len, len);
	ck_assert_int_eq(ipc_batch_count(&b), 1);
	ck_assert_int_eq(ipc_batch_end(&b), -1);
	buf_free(&b);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(ipc_role_name(IPC_ROLE_SUPERVISOR), "supervisor");
	ck_assert_str_eq(ipc_role_name(IPC_ROLE_WORKER), "worker");
	ck_assert_str_eq(ipc_role_name(IPC_ROLE_WALSVC), "walsvc");
	ck_assert_str_eq(ipc_role_name(IPC_ROLE_TOOL), "tool");
	ck_assert_str_eq(ipc_role_name(IPC_ROLE_NONE), "unknown");
	ck_assert_str_eq(ipc_role_name(IPC_ROLE_MAX + 1), "unknown");
	ck_assert_str_eq(ipc_type_name(IPC_CTL_HELLO), "CTL_HELLO");
	ck_assert_str_eq(ipc_type_name(IPC_WAL_REFUSED), "WAL_REFUSED");
	ck_assert_str_eq(ipc_type_name(0), "unknown");
	ck_assert_str_eq(ipc_strerror(IPC_OK), "ok");
	ck_assert_str_eq(ipc_strerror(IPC_EVERSION),
	    "envelope version mismatch");
	ck_assert_str_eq(ipc_strerror(42), "unknown error");
}
END_TEST

/* Open the batch as a receiver would; the first error, or IPC_OK. */
static int
decode(const struct buf *b)
{
	struct ipc_batch	 bt;
	struct ipc_record	 rec;
	int			 rv;

	if ((rv = ipc_batch_open(&bt, b->data, b->len)) != IPC_OK)
		return rv;
	while ((rv = ipc_batch_next(&bt, &rec)) == 1)
		continue;
	return rv;
}

START_TEST(test_wrong_magic)
{
	struct buf	 b = BUF_INITIALIZER;

	make_batch(&b);
	b.data[0] ^= 0x20;
	ck_assert_int_eq(decode(&b), IPC_EMAGIC);
	/* known as foreign from its first four bytes alone */
	b.len = 4;
	ck_assert_int_eq(decode(&b), IPC_EMAGIC);
	buf_free(&b);
}
END_TEST

START_TEST(test_wrong_version)
{
	struct buf	 b = BUF_INITIALIZER;

	make_batch(&b);
	buf_set_u16(&b, OFF_VERSION, IPC_VERSION + 1);
	ck_assert_int_eq(decode(&b), IPC_EVERSION);
	/* a header of another version may be of another size: still told */
	b.len = 6;
	ck_assert_int_eq(decode(&b), IPC_EVERSION);
	buf_set_u16(&b, OFF_VERSION, 0);
	ck_assert_int_eq(decode(&b), IPC_EVERSION);
	buf_free(&b);
}
END_TEST

START_TEST(test_short_header)
{
	struct buf	 b = BUF_INITIALIZER;
	size_t		 len;

	make_batch(&b);
	for (len = 0; len < IPC_BATCH_HEADER_SIZE; len++) {
		b.len = len;
		ck_assert_int_eq(decode(&b), IPC_ESHORT);
	}
	buf_free(&b);
}
END_TEST

START_TEST(test_record_runs_past)
{
	struct ipc_batch	 bt;
	struct ipc_record	 rec;
	struct buf		 b = BUF_INITIALIZER;

	make_batch(&b);
	/* the last body cut by one byte: the first record is still good */
	b.len--;
	ck_assert_int_eq(ipc_batch_open(&bt, b.data, b.len), IPC_OK);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 1);
	assert_record(&rec, IPC_WAL_APPEND, 1, 0, "abc", 3);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), IPC_ESHORT);
	/* a record header cut short */
	b.len = IPC_BATCH_HEADER_SIZE + IPC_RECORD_HEADER_SIZE - 1;
	ck_assert_int_eq(decode(&b), IPC_ESHORT);
	/* a declared body length beyond the batch */
	make_batch(&b);
	buf_set_u32(&b, IPC_BATCH_HEADER_SIZE + 4, UINT32_MAX);
	ck_assert_int_eq(decode(&b), IPC_ESHORT);
	buf_free(&b);
}
END_TEST

START_TEST(test_count_too_high)
{
	struct buf	 b = BUF_INITIALIZER;

	make_batch(&b);
	buf_set_u16(&b, OFF_COUNT, 3);
	ck_assert_int_eq(decode(&b), IPC_ESHORT);
	buf_free(&b);
}
END_TEST

START_TEST(test_trailing_bytes)
{
	struct ipc_batch	 bt;
	struct ipc_record	 rec;
	struct buf		 b = BUF_INITIALIZER;

	make_batch(&b);
	ck_assert_int_eq(buf_add_u8(&b, 0), 0);
	ck_assert_int_eq(ipc_batch_open(&bt, b.data, b.len), IPC_OK);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 1);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), 1);
	ck_assert_int_eq(ipc_batch_next(&bt, &rec), IPC_ELONG);
	/* a count lower than the records written is the same thing */
	make_batch(&b);
	buf_set_u16(&b, OFF_COUNT, 1);
	ck_assert_int_eq(decode(&b), IPC_ELONG);
	buf_free(&b);
}
END_TEST

START_TEST(test_unknown_role)
{
	struct buf	 b = BUF_INITIALIZER;

	make_batch(&b);
	b.data[OFF_ROLE] = IPC_ROLE_NONE;
	ck_assert_int_eq(decode(&b), IPC_EROLE);
	b.data[OFF_ROLE] = IPC_ROLE_MAX + 1;
	ck_assert_int_eq(decode(&b), IPC_EROLE);
	b.data[OFF_ROLE] = 0xff;
	ck_assert_int_eq(decode(&b), IPC_EROLE);
	buf_free(&b);
}
END_TEST

START_TEST(test_empty_with_trailing_bytes)
{
	struct ipc_batch	 bt;
	struct buf		 b = BUF_INITIALIZER;

	ck_assert_int_eq(ipc_batch_begin(&b, &worker, 0), 0);
	ck_assert_int_eq(buf_add(&b, "junk", 4), 0);
	/* refused at once, before anyone walks the records */
	ck_assert_int_eq(ipc_batch_open(&bt, b.data, b.len), IPC_ELONG);
	buf_free(&b);
}
END_TEST

/* Walk a pairs list; the number of pairs, or -1 where it went wrong. */
static int
count_pairs(const void *list, size_t len)
{
	struct buf_reader	 rd;
	const char		*name, *value;
	int			 rv, n = 0;

	buf_reader_init(&rd, list, len);
	while ((rv = ipc_pairs_next(&rd, &name, &value)) == 1)
		n++;
	return rv == 0 ? n : -1;
}

START_TEST(test_pairs_well_formed)
{
	static const char	 list[] = "log.level\0debug\0"
	    "server.workers\0" "4\0" "empty\0\0";
	struct buf_reader	 rd;
	const char		*name, *value;

	buf_reader_init(&rd, list, sizeof(list) - 1);
	ck_assert_int_eq(ipc_pairs_next(&rd, &name, &value), 1);
	ck_assert_str_eq(name, "log.level");
	ck_assert_str_eq(value, "debug");
	ck_assert_int_eq(ipc_pairs_next(&rd, &name, &value), 1);
	ck_assert_str_eq(name, "server.workers");
	ck_assert_str_eq(value, "4");
	ck_assert_int_eq(ipc_pairs_next(&rd, &name, &value), 1);
	ck_assert_str_eq(name, "empty");
	ck_assert_str_eq(value, "");
	ck_assert_int_eq(ipc_pairs_next(&rd, &name, &value), 0);
	ck_assert_int_eq(buf_read_end(&rd), 0);
	/* an empty list is a list of no pairs */
	ck_assert_int_eq(count_pairs("", 0), 0);
}
END_TEST

START_TEST(test_pairs_malformed)
{
	struct buf_reader	 rd;
	const char		*name, *value;

	ck_assert_int_eq(count_pairs("name", 4), -1);
	ck_assert_int_eq(count_pairs("name\0", 5), -1);
	ck_assert_int_eq(count_pairs("name\0value", 10), -1);
	/* good pairs first do not make a bad tail good */
	ck_assert_int_eq(count_pairs("a\0" "1\0" "b\0" "2", 7), -1);
	/* a reader that already failed */
	buf_reader_init(&rd, "a\0" "1\0", 4);
	ck_assert_uint_eq(buf_read_u64(&rd), 0);
	ck_assert_int_eq(ipc_pairs_next(&rd, &name, &value), -1);
}
END_TEST

/* promptmqctl's rows: written, read back field by field. */
START_TEST(test_adm_rows)
{
	struct adm_rows		 r;
	struct adm_reader	 rd;
	struct adm_field	 f[8];
	const char		*section;
	size_t			 n;
	const uint8_t		 id[] = { 'a', 0, 'b', '\n' };

	adm_rows_init(&r);
	adm_row_begin(&r, "clients");
	adm_bytes(&r, "client_id", id, sizeof(id));
	adm_num(&r, "worker", 1);
	adm_num(&r, "neg", -42);
	adm_milli(&r, "cpu", 1234);
	adm_milli(&r, "small", -5);
	adm_row_end(&r);
	adm_row_begin(&r, "empty");
	adm_row_end(&r);
	ck_assert(!adm_rows_due(&r, 0));
	ck_assert(adm_rows_due(&r, 1));
	adm_reader_init(&rd, r.b.data, r.b.len);
	ck_assert_int_eq(adm_next_row(&rd, &section, f, 8, &n), 1);
	ck_assert_str_eq(section, "clients");
	ck_assert_uint_eq(n, 5);
	/* a NUL or a control character in a value is shown as '?' */
	ck_assert_str_eq(f[0].name, "client_id");
	ck_assert_str_eq(f[0].value, "a?b?");
	ck_assert_int_eq(f[0].type, 's');
	ck_assert_str_eq(f[1].value, "1");
	ck_assert_int_eq(f[1].type, 'n');
	ck_assert_str_eq(f[2].value, "-42");
	ck_assert_str_eq(f[3].value, "1.234");
	ck_assert_str_eq(f[4].value, "-0.005");
	/* fields beyond `max` are skipped, not an error */
	ck_assert_int_eq(adm_next_row(&rd, &section, f, 8, &n), 1);
	ck_assert_str_eq(section, "empty");
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(adm_next_row(&rd, &section, f, 8, &n), 0);
	adm_reader_init(&rd, r.b.data, r.b.len);
	ck_assert_int_eq(adm_next_row(&rd, &section, f, 2, &n), 1);
	ck_assert_uint_eq(n, 2);
	adm_rows_free(&r);
}
END_TEST

START_TEST(test_adm_malformed)
{
	struct adm_reader	 rd;
	struct adm_field	 f[4];
	const char		*section;
	size_t			 n;
	/* length past the end; no section NUL; a bad type; a value cut */
	static const uint8_t	 past[] = { 0, 9, 'a', 0 };
	static const uint8_t	 nonul[] = { 0, 2, 'a', 'b' };
	static const uint8_t	 type[] = { 0, 6, 's', 0, 'x', 0, 'q', 0 };
	static const uint8_t	 cut[] = { 0, 5, 's', 0, 'x', 0, 's' };
	static const uint8_t	 one[] = { 0 };
	const struct { const uint8_t *p; size_t len; } bad[] = {
		{ past, sizeof(past) }, { nonul, sizeof(nonul) },
		{ type, sizeof(type) }, { cut, sizeof(cut) },
		{ one, sizeof(one) },
	};
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		adm_reader_init(&rd, bad[i].p, bad[i].len);
		ck_assert_int_eq(adm_next_row(&rd, &section, f, 4, &n), -1);
	}
}
END_TEST

START_TEST(test_adm_params)
{
	static const uint8_t	 req[] = "cmd\0clients\0id\0s*\0";
	static const uint8_t	 odd[] = "cmd\0clients\0id";

	ck_assert_int_eq(adm_pairs_valid(req, sizeof(req) - 1), 0);
	ck_assert_str_eq(adm_param(req, sizeof(req) - 1, "cmd"), "clients");
	ck_assert_str_eq(adm_param(req, sizeof(req) - 1, "id"), "s*");
	ck_assert_ptr_null(adm_param(req, sizeof(req) - 1, "user"));
	ck_assert_int_eq(adm_pairs_valid(odd, sizeof(odd) - 1), -1);
	ck_assert_ptr_null(adm_param(odd, sizeof(odd) - 1, "cmd"));
	ck_assert_int_eq(adm_pairs_valid(req, 0), 0);
}
END_TEST

static Suite *
ipc_suite(void)
{
	Suite	*s = suite_create("ipc");
	TCase	*tc;

	tc = harness_tcase(s, "encode and decode", NULL, NULL);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_sender_identity);
	tcase_add_test(tc, test_empty_batch);
	tcase_add_test(tc, test_begin_resets);
	tcase_add_test(tc, test_record_in_place);
	tcase_add_test(tc, test_record_end_misuse);
	tcase_add_test(tc, test_record_limit);
	tcase_add_test(tc, test_failed_buffer);
	tcase_add_test(tc, test_names);

	tc = harness_tcase(s, "decoding errors", NULL, NULL);
	tcase_add_test(tc, test_wrong_magic);
	tcase_add_test(tc, test_wrong_version);
	tcase_add_test(tc, test_short_header);
	tcase_add_test(tc, test_record_runs_past);
	tcase_add_test(tc, test_count_too_high);
	tcase_add_test(tc, test_trailing_bytes);
	tcase_add_test(tc, test_unknown_role);
	tcase_add_test(tc, test_empty_with_trailing_bytes);

	tc = harness_tcase(s, "name/value lists", NULL, NULL);
	tcase_add_test(tc, test_pairs_well_formed);
	tcase_add_test(tc, test_pairs_malformed);

	tc = harness_tcase(s, "promptmqctl rows", NULL, NULL);
	tcase_add_test(tc, test_adm_rows);
	tcase_add_test(tc, test_adm_malformed);
	tcase_add_test(tc, test_adm_params);
	return s;
}

int
main(void)
{
	return harness_run(ipc_suite());
}
