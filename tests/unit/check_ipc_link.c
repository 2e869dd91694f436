/*
 * check_ipc_link.c - unit tests of common/ipc_link.c, the nng push/pull
 * links between processes, over real ipc:// endpoints.
 *
 * One event base in the test process drives both ends: a link (push)
 * sending as worker 2 and an endpoint (pull) listening as worker 1 in a
 * scratch directory.  The tests check what the rest of the system
 * relies on: records arrive in order and intact; what one loop turn
 * produces travels as one nng message, split only past
 * IPC_LINK_BATCH_BYTES; batches for another incarnation are dropped and
 * counted; a link dialed before its peer listens delivers once it
 * does; a paused endpoint takes nothing and catches up on resume; the
 * drain callback fires when a congested link's backlog falls under its
 * low mark; socket paths longer than a Unix socket allows are refused.
 *
 * Every wait is bounded (harness_run_until), so a regression fails a
 * test instead of hanging the suite.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>

#include "harness.h"
#include "ipc.h"
#include "ipc_link.h"

#define WAIT_MS		30000	/* for anything that should happen */
#define QUIET_MS	50	/* to see that nothing happens */
#define OWN_GEN		5	/* the endpoint's generation */
#define MAX_RECORDS	256
#define MAX_BATCHES	64

static const struct ipc_identity	 sender = { IPC_ROLE_WORKER, 2, 9 };

/* A record as the endpoint's handler saw it. */
struct received {
	uint16_t		 type;
	uint64_t		 seq;
	uint64_t		 corr;
	struct ipc_identity	 from;
	uint64_t		 target_gen;
	uint8_t			*body;
	uint32_t		 len;
};

static char			 dir[64];
static char			 path[IPC_PATH_MAX + 1];
static struct event_base	*base;
static struct ipc_endpoint	*ep;
static struct ipc_link		*peer_link;
static struct received		 got[MAX_RECORDS];
static int			 ngot;
static int			 batch_records[MAX_BATCHES];
static int			 nbatches;
static int			 pause_in_handler;
static int			 drains;

static void
on_batch(struct ipc_batch *bt, void *arg)
{
	struct ipc_record	 rec;
	struct received		*r;
	int			 rv;

	ck_assert_int_lt(nbatches, MAX_BATCHES);
	batch_records[nbatches++] = bt->count;
	while ((rv = ipc_batch_next(bt, &rec)) == 1) {
		ck_assert_int_lt(ngot, MAX_RECORDS);
		r = &got[ngot++];
		r->type = rec.type;
		r->seq = rec.seq;
		r->corr = rec.corr;
		r->from = bt->sender;
		r->target_gen = bt->target_gen;
		r->len = rec.len;
		r->body = malloc(rec.len ? rec.len : 1);
		ck_assert_ptr_nonnull(r->body);
		memcpy(r->body, rec.body, rec.len);
	}
	ck_assert_int_eq(rv, 0);
	if (pause_in_handler)
		ipc_endpoint_pause(ep, 1);
}

static void
setup(void)
{
	harness_rundir(dir, sizeof(dir));
	ck_assert_int_eq(ipc_endpoint_path(path, sizeof(path), dir,
	    IPC_ROLE_WORKER, 1), 0);
	base = evloop_new();
	ck_assert_ptr_nonnull(base);
	ep = NULL;
	peer_link = NULL;
	ngot = nbatches = drains = pause_in_handler = 0;
}

static void
teardown(void)
{
	int	 i;

	ipc_link_close(peer_link);
	ipc_endpoint_close(ep);
	event_base_free(base);
	for (i = 0; i < ngot; i++)
		free(got[i].body);
	harness_tempdir_remove(dir);
	harness_nng_done();
}

static void
open_endpoint(uint64_t gen)
{
	char	 err[256];

	ep = ipc_endpoint_open(base, path, gen, 1 << 20, on_batch, NULL, err,
	    sizeof(err));
	ck_assert_msg(ep != NULL, "ipc_endpoint_open: %s", err);
}

static void
open_link(void)
{
	char	 err[256];

	peer_link = ipc_link_open(base, path, &sender, err, sizeof(err));
	ck_assert_msg(peer_link != NULL, "ipc_link_open: %s", err);
}

static int
have_records(void *arg)
{
	return ngot >= *(const int *)arg;
}

static void
wait_records(int n)
{
	ck_assert_msg(harness_run_until(base, have_records, &n, WAIT_MS),
	    "%d of %d records arrived", ngot, n);
}

/* A record whose body is its sequence number in text. */
static void
send_numbered(uint64_t seq)
{
	char	 body[32];
	int	 n;

	n = snprintf(body, sizeof(body), "record %llu",
	    (unsigned long long)seq);
	ck_assert_int_eq(ipc_link_send(peer_link, IPC_WAL_APPEND, seq, 0, body,
	    (size_t)n), 0);
}

/* Records first..last arrived, in this order, from index `at` on. */
static void
assert_numbered(int at, uint64_t first, uint64_t last)
{
	char		 body[32];
	uint64_t	 seq;
	int		 n;

	ck_assert_int_ge(ngot, at + (int)(last - first + 1));
	for (seq = first; seq <= last; seq++, at++) {
		n = snprintf(body, sizeof(body), "record %llu",
		    (unsigned long long)seq);
		ck_assert_uint_eq(got[at].seq, seq);
		ck_assert_uint_eq(got[at].len, (uint32_t)n);
		ck_assert_mem_eq(got[at].body, body, (size_t)n);
	}
}

START_TEST(test_records_in_order)
{
	struct buf	*b;
	size_t		 start;
	int		 i;

	open_endpoint(OWN_GEN);
	open_link();
	ck_assert_int_eq(ipc_link_send(peer_link, IPC_WAL_APPEND, 1, 10, "one",
	    3), 0);
	/* a body written in place */
	b = ipc_link_record_begin(peer_link, IPC_WAL_DURABLE, 2, 20, &start);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(buf_add_u64(b, 0x1122334455667788ull), 0);
	ck_assert_int_eq(ipc_link_record_end(peer_link, start), 0);
	ck_assert_int_eq(ipc_link_send(peer_link, IPC_WAL_SYNC, 3, 30, NULL, 0),
	    0);
	wait_records(3);

	ck_assert_uint_eq(got[0].type, IPC_WAL_APPEND);
	ck_assert_uint_eq(got[0].seq, 1);
	ck_assert_uint_eq(got[0].corr, 10);
	ck_assert_uint_eq(got[0].len, 3);
	ck_assert_mem_eq(got[0].body, "one", 3);
	ck_assert_uint_eq(got[1].type, IPC_WAL_DURABLE);
	ck_assert_uint_eq(got[1].seq, 2);
	ck_assert_uint_eq(got[1].corr, 20);
	ck_assert_uint_eq(got[1].len, 8);
	ck_assert_mem_eq(got[1].body, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	ck_assert_uint_eq(got[2].type, IPC_WAL_SYNC);
	ck_assert_uint_eq(got[2].seq, 3);
	ck_assert_uint_eq(got[2].corr, 30);
	ck_assert_uint_eq(got[2].len, 0);
	for (i = 0; i < 3; i++) {
		ck_assert_uint_eq(got[i].from.role, sender.role);
		ck_assert_uint_eq(got[i].from.slot, sender.slot);
		ck_assert_uint_eq(got[i].from.gen, sender.gen);
		ck_assert_uint_eq(got[i].target_gen, 0);
	}

	/* the next turn's records follow */
	send_numbered(4);
	send_numbered(5);
	wait_records(5);
	assert_numbered(3, 4, 5);
	ck_assert_int_eq(ngot, 5);
}
END_TEST

START_TEST(test_one_turn_one_batch)
{
	struct ipc_link_stats	 st;
	uint64_t		 seq;

	open_endpoint(OWN_GEN);
	open_link();
	for (seq = 1; seq <= 100; seq++)
		send_numbered(seq);
	/* nothing goes to nng before the turn ends */
	ipc_link_stats(peer_link, &st);
	ck_assert_uint_eq(st.batches, 0);
	ck_assert_uint_gt(ipc_link_backlog(peer_link), 0);
	wait_records(100);
	assert_numbered(0, 1, 100);
	ck_assert_int_eq(nbatches, 1);
	ck_assert_int_eq(batch_records[0], 100);
	ipc_link_stats(peer_link, &st);
	ck_assert_uint_eq(st.records, 100);
	ck_assert_uint_eq(st.batches, 1);
	ck_assert_uint_eq(ipc_link_backlog(peer_link), 0);

	send_numbered(101);
	wait_records(101);
	ck_assert_int_eq(nbatches, 2);
	ck_assert_int_eq(batch_records[1], 1);
}
END_TEST

/*
 * Coalescing across turns: a link paced by one that waits for an answer
 * keeps its batch open until the answer, the bound, or a full batch.
 */
#define PACE_LONG_US	(60u * 1000000)	/* never reached in a test */

/* A record the peer will answer (as an append): its batch asks. */
static void
send_asking(uint64_t seq)
{
	send_numbered(seq);
	ipc_link_expect_answer(peer_link);
}

START_TEST(test_paced_waits_for_answer)
{
	struct ipc_link_stats	 st;

	open_endpoint(OWN_GEN);
	open_link();
	ipc_link_set_pacer(peer_link, peer_link, PACE_LONG_US);
	/* nothing is due yet: the first batch goes at the end of the turn */
	send_asking(1);
	wait_records(1);
	/* its answer is due: the next turns' records wait for it */
	send_asking(2);
	harness_run_for(base, QUIET_MS);
	send_asking(3);
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(ngot, 1);
	ipc_link_release(peer_link);
	wait_records(3);
	assert_numbered(0, 1, 3);
	ck_assert_int_eq(nbatches, 2);
	ck_assert_int_eq(batch_records[1], 2);
	ipc_link_stats(peer_link, &st);
	ck_assert_uint_eq(st.held, 1);

	/* once answered, a batch that asks nothing leaves no answer due */
	ipc_link_release(peer_link);
	send_numbered(4);
	wait_records(4);
	send_numbered(5);
	wait_records(5);
	ck_assert_int_eq(nbatches, 4);
}
END_TEST

START_TEST(test_pace_bound)
{
	int64_t		 asked;

	open_endpoint(OWN_GEN);
	open_link();
	ipc_link_set_pacer(peer_link, peer_link, 200 * 1000);
	/* the question goes out after this (1 ms: milliseconds truncated) */
	asked = harness_now_ms();
	send_asking(1);
	wait_records(1);
	/* no answer comes: the batch waits 200 ms from the question on */
	send_numbered(2);
	wait_records(2);
	ck_assert_int_ge(harness_now_ms() - asked, 199);
	assert_numbered(0, 1, 2);
}
END_TEST

START_TEST(test_full_batch_not_held)
{
	uint64_t	 seq;

	open_endpoint(OWN_GEN);
	open_link();
	ipc_link_set_pacer(peer_link, peer_link, PACE_LONG_US);
	send_asking(1);
	wait_records(1);
	for (seq = 2; seq < 1 + IPC_LINK_HOLD_RECORDS; seq++)
		send_numbered(seq);
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(ngot, 1);
	/* the batch is full: it goes without the answer */
	send_numbered(1 + IPC_LINK_HOLD_RECORDS);
	wait_records(1 + IPC_LINK_HOLD_RECORDS);
	assert_numbered(0, 1, 1 + IPC_LINK_HOLD_RECORDS);
	ck_assert_int_eq(batch_records[1], IPC_LINK_HOLD_RECORDS);

	/* the owner lets a batch go; the answer is still due after it */
	send_numbered(2 + IPC_LINK_HOLD_RECORDS);
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(ngot, 1 + IPC_LINK_HOLD_RECORDS);
	ipc_link_unhold(peer_link);
	wait_records(2 + IPC_LINK_HOLD_RECORDS);
	send_numbered(3 + IPC_LINK_HOLD_RECORDS);
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(ngot, 2 + IPC_LINK_HOLD_RECORDS);
	ipc_link_release(peer_link);
	wait_records(3 + IPC_LINK_HOLD_RECORDS);
}
END_TEST

/* The endpoint, the link under test, and a second link that paces it. */
static struct ipc_link *
open_paced(void)
{
	struct ipc_link		*pacer;
	char			 err[256];

	open_endpoint(OWN_GEN);
	open_link();
	pacer = ipc_link_open(base, path, &sender, err, sizeof(err));
	ck_assert_msg(pacer != NULL, "ipc_link_open: %s", err);
	ipc_link_set_pacer(peer_link, pacer, PACE_LONG_US);
	return pacer;
}

START_TEST(test_paced_by_other_link)
{
	struct ipc_link		*pacer = open_paced();

	/* the pacer asks nothing: the paced link sends every turn */
	ck_assert_int_eq(ipc_link_send(pacer, IPC_WAL_SYNC, 100, 0, NULL, 0),
	    0);
	send_numbered(1);
	wait_records(2);
	/* the pacer asks: the paced link waits for the answer */
	ck_assert_int_eq(ipc_link_send(pacer, IPC_WAL_SYNC, 101, 0, NULL, 0),
	    0);
	ipc_link_expect_answer(pacer);
	wait_records(3);
	send_numbered(2);
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(ngot, 3);
	ipc_link_release(pacer);
	ipc_link_release(peer_link);
	wait_records(4);
	ck_assert_uint_eq(got[3].seq, 2);
	/* an explicit flush does not wait */
	ck_assert_int_eq(ipc_link_send(pacer, IPC_WAL_SYNC, 102, 0, NULL, 0),
	    0);
	ipc_link_expect_answer(pacer);
	wait_records(5);
	send_numbered(3);
	ipc_link_flush(peer_link);
	wait_records(6);
	ck_assert_uint_eq(got[5].seq, 3);
	ipc_link_close(pacer);
}
END_TEST

START_TEST(test_large_batch_split)
{
	enum { BODY = 100 * 1000, RECORDS = 5 };
	struct ipc_link_stats	 st;
	uint8_t			*body;
	int			 i;

	body = malloc(BODY);
	ck_assert_ptr_nonnull(body);
	open_endpoint(OWN_GEN);
	open_link();
	for (i = 0; i < RECORDS; i++) {
		memset(body, 'a' + i, BODY);
		ck_assert_int_eq(ipc_link_send(peer_link, IPC_WAL_APPEND,
		    (uint64_t)i + 1, 0, body, BODY), 0);
	}
	/* the third record took the batch past the limit: closed at once */
	ipc_link_stats(peer_link, &st);
	ck_assert_uint_eq(st.batches, 1);
	ck_assert_uint_gt(st.bytes, IPC_LINK_BATCH_BYTES);
	wait_records(RECORDS);
	ck_assert_int_eq(nbatches, 2);
	ck_assert_int_eq(batch_records[0], 3);
	ck_assert_int_eq(batch_records[1], 2);
	for (i = 0; i < RECORDS; i++) {
		memset(body, 'a' + i, BODY);
		ck_assert_uint_eq(got[i].seq, (uint64_t)i + 1);
		ck_assert_uint_eq(got[i].len, BODY);
		ck_assert_mem_eq(got[i].body, body, BODY);
	}
	free(body);
}
END_TEST

START_TEST(test_target_generation)
{
	open_endpoint(OWN_GEN);
	open_link();
	/* for an earlier incarnation of the endpoint's process */
	ipc_link_set_target_gen(peer_link, OWN_GEN - 1);
	ck_assert_uint_eq(ipc_link_target_gen(peer_link), OWN_GEN - 1);
	send_numbered(1);
	ipc_link_flush(peer_link);
	/* for this one */
	ipc_link_set_target_gen(peer_link, OWN_GEN);
	send_numbered(2);
	ipc_link_flush(peer_link);
	/* for whoever holds the endpoint */
	ipc_link_set_target_gen(peer_link, 0);
	send_numbered(3);
	ipc_link_flush(peer_link);
	/* a target set before the flush applies to the open batch */
	ipc_link_set_target_gen(peer_link, OWN_GEN + 1);
	send_numbered(4);
	ipc_link_set_target_gen(peer_link, OWN_GEN);
	wait_records(3);
	ck_assert_int_eq(ngot, 3);
	assert_numbered(0, 2, 4);
	ck_assert_uint_eq(got[0].target_gen, OWN_GEN);
	ck_assert_uint_eq(got[1].target_gen, 0);
	ck_assert_uint_eq(got[2].target_gen, OWN_GEN);
	ck_assert_uint_eq(ipc_endpoint_rejected(ep), 1);
}
END_TEST

static int
endpoint_rejected_one(void *arg)
{
	return ipc_endpoint_rejected(ep) >= 1;
}

START_TEST(test_not_a_batch)
{
	nng_socket	 raw;
	char		 url[IPC_PATH_MAX + 16];

	open_endpoint(OWN_GEN);
	snprintf(url, sizeof(url), "ipc://%s", path);
	ck_assert_int_eq(nng_push0_open(&raw), 0);
	ck_assert_int_eq(nng_dial(raw, url, NULL, 0), 0);
	ck_assert_int_eq(nng_send(raw, "not an envelope", 15, 0), 0);
	ck_assert(harness_run_until(base, endpoint_rejected_one, NULL,
	    WAIT_MS));
	ck_assert_int_eq(nbatches, 0);
	nng_close(raw);
	/* the endpoint goes on taking good batches */
	open_link();
	send_numbered(1);
	wait_records(1);
	ck_assert_uint_eq(ipc_endpoint_rejected(ep), 1);
}
END_TEST

START_TEST(test_dial_before_listen)
{
	open_link();
	send_numbered(1);
	send_numbered(2);
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(ngot, 0);
	/* the peer starts late; the link redials and delivers */
	open_endpoint(OWN_GEN);
	wait_records(2);
	assert_numbered(0, 1, 2);
}
END_TEST

START_TEST(test_pause_resume)
{
	uint64_t	 seq;

	open_endpoint(OWN_GEN);
	open_link();
	ipc_endpoint_pause(ep, 1);
	/* three turns, three batches */
	for (seq = 1; seq <= 3; seq++) {
		send_numbered(seq);
		harness_run_for(base, QUIET_MS / 5);
	}
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(ngot, 0);
	/* pausing twice is pausing */
	ipc_endpoint_pause(ep, 1);
	ipc_endpoint_pause(ep, 0);
	wait_records(3);
	ck_assert_int_eq(nbatches, 3);
	assert_numbered(0, 1, 3);
}
END_TEST

/* A consumer that fills up pauses from its handler: nothing more comes. */
START_TEST(test_pause_in_handler)
{
	uint64_t	 seq;

	open_endpoint(OWN_GEN);
	open_link();
	for (seq = 1; seq <= 3; seq++) {
		send_numbered(seq);
		ipc_link_flush(peer_link);
	}
	pause_in_handler = 1;
	wait_records(1);
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(ngot, 1);
	pause_in_handler = 0;
	ipc_endpoint_pause(ep, 0);
	wait_records(3);
	assert_numbered(0, 1, 3);
}
END_TEST

START_TEST(test_discard)
{
	open_endpoint(OWN_GEN);
	open_link();
	send_numbered(1);
	/* the peer is a new incarnation: what was meant for the old goes */
	ipc_link_discard(peer_link);
	ck_assert_uint_eq(ipc_link_backlog(peer_link), 0);
	send_numbered(2);
	wait_records(1);
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(ngot, 1);
	assert_numbered(0, 2, 2);
}
END_TEST

static void
on_drain(struct ipc_link *l, void *arg)
{
	ck_assert_ptr_eq(l, peer_link);
	ck_assert_ptr_eq(arg, &drains);
	drains++;
}

static int
drained(void *arg)
{
	return drains > 0;
}

START_TEST(test_drain)
{
	enum { LOW_MARK = 4096, BODY = 1000 };
	uint8_t		 body[BODY];
	uint64_t	 seq;

	memset(body, 'x', sizeof(body));
	open_link();
	ipc_link_set_drain(peer_link, LOW_MARK, on_drain, &drains);
	/* nobody listens: nng queues a few batches, then the link does */
	for (seq = 1; seq <= 200 && ipc_link_backlog(peer_link) <= LOW_MARK;
	    seq++) {
		ck_assert_int_eq(ipc_link_send(peer_link, IPC_WAL_APPEND, seq,
		    0, body, sizeof(body)), 0);
		ipc_link_flush(peer_link);
	}
	ck_assert_uint_gt(ipc_link_backlog(peer_link), LOW_MARK);
	ck_assert_int_eq(drains, 0);
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(drains, 0);
	/* the peer comes up and takes everything */
	open_endpoint(OWN_GEN);
	ck_assert(harness_run_until(base, drained, NULL, WAIT_MS));
	ck_assert_uint_le(ipc_link_backlog(peer_link), LOW_MARK);
	wait_records((int)seq - 1);
	ck_assert_uint_eq(ipc_link_backlog(peer_link), 0);
	ck_assert_int_eq(drains, 1);
	ck_assert_uint_eq(got[0].seq, 1);
	ck_assert_uint_eq(got[seq - 2].seq, seq - 1);
}
END_TEST

/* Below its low mark a link never reports a drain it did not need. */
START_TEST(test_no_drain_when_flowing)
{
	uint64_t	 seq;

	open_endpoint(OWN_GEN);
	open_link();
	ipc_link_set_drain(peer_link, 4096, on_drain, &drains);
	for (seq = 1; seq <= 10; seq++) {
		send_numbered(seq);
		harness_run_for(base, 1);
	}
	wait_records(10);
	ck_assert_int_eq(drains, 0);
}
END_TEST

START_TEST(test_endpoint_paths)
{
	char	 out[IPC_PATH_MAX + 1];

	ck_assert_int_eq(ipc_endpoint_path(out, sizeof(out), "/run/pmq",
	    IPC_ROLE_WALSVC, 0), 0);
	ck_assert_str_eq(out, "/run/pmq/ipc/wal.ipc");
	ck_assert_int_eq(ipc_endpoint_path(out, sizeof(out), "/run/pmq",
	    IPC_ROLE_WORKER, 12), 0);
	ck_assert_str_eq(out, "/run/pmq/ipc/w12.ipc");
	ck_assert_int_eq(ipc_endpoint_path(out, sizeof(out), "/run/pmq",
	    IPC_ROLE_TOOL, 65535), 0);
	ck_assert_str_eq(out, "/run/pmq/ipc/t65535.ipc");
	/* the supervisor has no endpoint: it speaks on control channels */
	errno = 0;
	ck_assert_int_eq(ipc_endpoint_path(out, sizeof(out), "/run/pmq",
	    IPC_ROLE_SUPERVISOR, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(ipc_endpoint_path(out, sizeof(out), "/run/pmq",
	    IPC_ROLE_NONE, 0), -1);
	/* a buffer too small for the path */
	errno = 0;
	ck_assert_int_eq(ipc_endpoint_path(out, 8, "/run/pmq",
	    IPC_ROLE_WALSVC, 0), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
}
END_TEST

/* A runtime directory whose walsvc path is `len` bytes long. */
static void
rundir_of_length(char *out, size_t outlen, size_t len)
{
	size_t	 dirlen = len - strlen("/ipc/wal.ipc");

	ck_assert_uint_lt(dirlen, outlen);
	memset(out, 'd', dirlen);
	out[0] = '/';
	out[dirlen] = '\0';
}

START_TEST(test_path_limit)
{
	char	 rundir[200], out[300], err[256];

	/* 107 bytes: the most sun_path holds with its NUL */
	rundir_of_length(rundir, sizeof(rundir), IPC_PATH_MAX);
	ck_assert_int_eq(ipc_endpoint_path(out, sizeof(out), rundir,
	    IPC_ROLE_WALSVC, 0), 0);
	ck_assert_uint_eq(strlen(out), IPC_PATH_MAX);
	/* one more is refused, however large the caller's buffer */
	rundir_of_length(rundir, sizeof(rundir), IPC_PATH_MAX + 1);
	errno = 0;
	ck_assert_int_eq(ipc_endpoint_path(out, sizeof(out), rundir,
	    IPC_ROLE_WALSVC, 0), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	/* and so is opening such a path, with a message that says why */
	snprintf(out, sizeof(out), "%s/ipc/wal.ipc", rundir);
	ck_assert_ptr_null(ipc_endpoint_open(base, out, 1, 1 << 20, on_batch,
	    NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "107"));
	ck_assert_ptr_null(ipc_link_open(base, out, &sender, err,
	    sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "too long"));
}
END_TEST

START_TEST(test_quiet_link_not_held)
{
	struct ipc_link		*pacer = open_paced();

	ck_assert_int_eq(ipc_link_send(pacer, IPC_WAL_SYNC, 100, 0, NULL, 0),
	    0);
	ipc_link_expect_answer(pacer);
	wait_records(1);
	/* an answer is due, but the paced link has sent nothing for longer
	 * than its bound: a lone record would only be delayed */
	send_numbered(1);
	wait_records(2);
	/* now it is busy: the next record waits */
	send_numbered(2);
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(ngot, 2);
	ipc_link_release(peer_link);
	wait_records(3);
	ipc_link_close(pacer);
}
END_TEST

static Suite *
ipc_link_suite(void)
{
	Suite	*s = suite_create("ipc_link");
	TCase	*tc;

	tc = harness_tcase(s, "delivery", setup, teardown);
	tcase_add_test(tc, test_records_in_order);
	tcase_add_test(tc, test_dial_before_listen);
	tcase_add_test(tc, test_discard);

	tc = harness_tcase(s, "batching", setup, teardown);
	tcase_add_test(tc, test_one_turn_one_batch);
	tcase_add_test(tc, test_large_batch_split);

	tc = harness_tcase(s, "pacing", setup, teardown);
	tcase_add_test(tc, test_paced_waits_for_answer);
	tcase_add_test(tc, test_pace_bound);
	tcase_add_test(tc, test_full_batch_not_held);
	tcase_add_test(tc, test_paced_by_other_link);
	tcase_add_test(tc, test_quiet_link_not_held);

	tc = harness_tcase(s, "generations", setup, teardown);
	tcase_add_test(tc, test_target_generation);
	tcase_add_test(tc, test_not_a_batch);

	tc = harness_tcase(s, "flow control", setup, teardown);
	tcase_add_test(tc, test_pause_resume);
	tcase_add_test(tc, test_pause_in_handler);
	tcase_add_test(tc, test_drain);
	tcase_add_test(tc, test_no_drain_when_flowing);

	tc = harness_tcase(s, "paths", setup, teardown);
	tcase_add_test(tc, test_endpoint_paths);
	tcase_add_test(tc, test_path_limit);
	return s;
}

int
main(void)
{
	return harness_run(ipc_link_suite());
}
