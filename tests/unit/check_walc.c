/*
 * check_walc.c - unit tests of common/walc.c, the sending side of the
 * append stream to walsvc.
 *
 * The test process plays both sides over real nng ipc endpoints on one
 * event base: a tool (slot 0) that appends through walc, and a fake
 * walsvc that records every WAL_APPEND it receives and answers, when a
 * test tells it to, with WAL_DURABLE, WAL_RESEND or WAL_REFUSED over a
 * link back, as role walsvc.  "Restarting" the fake walsvc closes its
 * endpoint and opens it again with a new generation, as a real restart
 * does.
 *
 * Checked: sequences increase; a watermark releases records and reports
 * them durable; RESEND(n) sends again from n, in order; a reply from a
 * new walsvc generation, or silence for WALC_RETRANSMIT_MS, sends again
 * everything unacknowledged; after WALC_RECONNECT_AFTER silent rounds
 * the link starts over, the appends go again on the new socket and the
 * relinked callback follows them (its owner sends again what else the
 * old socket took); replies that are impossible (a watermark beyond
 * what was sent), malformed or not from walsvc change nothing; REFUSED
 * reaches the refused callback.
 *
 * walc's retransmission timer lives on the event base given to
 * walc_new().  Most tests give it a base that never runs, so however
 * slow the machine, the timer cannot resend behind a test's back and
 * every count is exact; the retransmission tests give it the running
 * base.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "buf.h"
#include "harness.h"
#include "ipc.h"
#include "ipc_link.h"
#include "walc.h"

#define WAIT_MS		30000
#define TOOL_GEN	21
#define WALSVC_GEN	7
#define KIND		4	/* the log record type the tool appends */
#define MAX_APPENDS	512
#define ENTRY_HEADER	13	/* walc's own copy: u64 seq, u8 kind, u32 len */

/* A WAL_APPEND as the fake walsvc received it. */
struct append {
	uint64_t	 seq;
	uint64_t	 target_gen;
	uint8_t		 kind;
	uint8_t		*payload;
	size_t		 len;
};

static char			 dir[64];
static char			 wal_path[IPC_PATH_MAX + 1];
static char			 tool_path[IPC_PATH_MAX + 1];
static struct event_base	*base;
static struct event_base	*idle_base;	/* never runs */

/* The fake walsvc. */
static struct ipc_identity	 walsvc_id;
static struct ipc_endpoint	*walsvc_ep;
static struct ipc_link		*walsvc_reply;
static struct append		 appends[MAX_APPENDS];
static int			 nappends;
static int			 probes;	/* WAL_SYNC records */

/* The tool. */
static const struct ipc_identity tool_id = { IPC_ROLE_TOOL, 0, TOOL_GEN };
static struct ipc_endpoint	*tool_ep;
static struct ipc_link		*tool_link;
static struct walc		*walc;
static int			 replies;	/* records walc handled */
static int			 durable_calls;
static uint64_t			 durable_seq;
static int			 refused_calls;
static uint64_t			 refused_seq;
static int			 refused_error;
static int			 relinked_calls;
static uint64_t			 relinked_resent;	/* walc_resent() then */

static void
walsvc_dispatch(struct ipc_batch *bt, void *arg)
{
	struct ipc_record	 rec;
	struct append		*a;

	ck_assert_uint_eq(bt->sender.role, IPC_ROLE_TOOL);
	ck_assert_uint_eq(bt->sender.gen, TOOL_GEN);
	while (ipc_batch_next(bt, &rec) == 1) {
		if (rec.type == IPC_WAL_SYNC) {
			probes++;
			continue;
		}
		ck_assert_uint_eq(rec.type, IPC_WAL_APPEND);
		ck_assert_uint_ge(rec.len, 1);
		ck_assert_int_lt(nappends, MAX_APPENDS);
		a = &appends[nappends++];
		a->seq = rec.seq;
		a->target_gen = bt->target_gen;
		a->kind = rec.body[0];
		a->len = rec.len - 1;
		a->payload = malloc(a->len + 1);
		ck_assert_ptr_nonnull(a->payload);
		memcpy(a->payload, rec.body + 1, a->len);
	}
}

static void
tool_dispatch(struct ipc_batch *bt, void *arg)
{
	struct ipc_record	 rec;

	while (ipc_batch_next(bt, &rec) == 1) {
		walc_handle(walc, bt, &rec);
		replies++;
	}
}

static void
on_durable(void *arg, uint64_t seq)
{
	ck_assert_ptr_eq(arg, &durable_calls);
	durable_calls++;
	durable_seq = seq;
}

static void
on_refused(void *arg, uint64_t seq, int error)
{
	ck_assert_ptr_eq(arg, &durable_calls);
	refused_calls++;
	refused_seq = seq;
	refused_error = error;
}

static void
on_relinked(void *arg)
{
	ck_assert_ptr_eq(arg, &durable_calls);
	relinked_calls++;
	relinked_resent = walc_resent(walc);
}

static void
walsvc_start(uint64_t gen)
{
	char	 err[256];

	walsvc_id.role = IPC_ROLE_WALSVC;
	walsvc_id.slot = 0;
	walsvc_id.gen = gen;
	walsvc_ep = ipc_endpoint_open(base, wal_path, gen, 1 << 20,
	    walsvc_dispatch, NULL, err, sizeof(err));
	ck_assert_msg(walsvc_ep != NULL, "walsvc endpoint: %s", err);
	walsvc_reply = ipc_link_open(base, tool_path, &walsvc_id, err,
	    sizeof(err));
	ck_assert_msg(walsvc_reply != NULL, "walsvc reply link: %s", err);
	ipc_link_set_target_gen(walsvc_reply, TOOL_GEN);
}

static void
walsvc_stop(void)
{
	ipc_link_close(walsvc_reply);
	ipc_endpoint_close(walsvc_ep);
	walsvc_reply = NULL;
	walsvc_ep = NULL;
}

/* Both sides up; walc's timer on the running base or the idle one. */
static void
start(int timer_runs)
{
	char	 err[256];

	base = evloop_new();
	idle_base = evloop_new();
	ck_assert_ptr_nonnull(base);
	ck_assert_ptr_nonnull(idle_base);
	harness_rundir(dir, sizeof(dir));
	ck_assert_int_eq(ipc_endpoint_path(wal_path, sizeof(wal_path), dir,
	    IPC_ROLE_WALSVC, 0), 0);
	ck_assert_int_eq(ipc_endpoint_path(tool_path, sizeof(tool_path), dir,
	    IPC_ROLE_TOOL, 0), 0);
	nappends = probes = replies = durable_calls = refused_calls = 0;
	relinked_calls = 0;
	durable_seq = refused_seq = relinked_resent = 0;
	refused_error = 0;
	walsvc_start(WALSVC_GEN);
	tool_ep = ipc_endpoint_open(base, tool_path, TOOL_GEN, 1 << 20,
	    tool_dispatch, NULL, err, sizeof(err));
	ck_assert_msg(tool_ep != NULL, "tool endpoint: %s", err);
	tool_link = ipc_link_open(base, wal_path, &tool_id, err, sizeof(err));
	ck_assert_msg(tool_link != NULL, "tool link: %s", err);
	walc = walc_new(timer_runs ? base : idle_base, tool_link, on_durable,
	    on_refused, &durable_calls);
	ck_assert_ptr_nonnull(walc);
}

static int
tool_link_reaches_walsvc(void *arg)
{
	return probes > 0 || ipc_endpoint_rejected(walsvc_ep) > 0;
}

/*
 * walsvc dies and a new incarnation takes its endpoint.  Until the tool's
 * link has noticed, what it sends may go down the dead connection and be
 * lost (walc's timer covers that in real life), so wait until a probe
 * reaches the new endpoint: taken, or dropped there as addressed to the
 * old incarnation.
 */
static void
walsvc_restart(uint64_t gen)
{
	int64_t	 deadline = harness_now_ms() + WAIT_MS;

	walsvc_stop();
	walsvc_start(gen);
	do {
		ck_assert_msg(harness_now_ms() < deadline,
		    "the tool's link never reached the new walsvc");
		ck_assert_int_eq(ipc_link_send(tool_link, IPC_WAL_SYNC, 0, 0,
		    NULL, 0), 0);
	} while (!harness_run_until(base, tool_link_reaches_walsvc, NULL, 20));
}

static void
setup(void)
{
	start(0);
}

static void
setup_with_timer(void)
{
	start(1);
}

static void
teardown(void)
{
	int	 i;

	/*
	 * Each link before the endpoint it dials: nng 1.5 can lose a
	 * connection it was accepting when the listener closes under it
	 * (LeakSanitizer saw the pipe's objects once on a loaded machine).
	 * walsvc_stop() closes its reply link, then its endpoint.
	 */
	walc_free(walc);
	ipc_link_close(tool_link);
	walsvc_stop();
	ipc_endpoint_close(tool_ep);
	event_base_free(base);
	event_base_free(idle_base);
	for (i = 0; i < nappends; i++)
		free(appends[i].payload);
	harness_tempdir_remove(dir);
	harness_nng_done();
}

/* The payload of sequence seq: its number, and a length that varies. */
static size_t
payload_of(uint64_t seq, char *out, size_t outlen)
{
	int	 n;

	n = snprintf(out, outlen, "record %llu %.*s", (unsigned long long)seq,
	    (int)(seq % 7), "+++++++");
	ck_assert(n > 0 && (size_t)n < outlen);
	return (size_t)n;
}

/* Append the next record; it must get sequence `want`. */
static void
append_next(uint64_t want)
{
	char	 payload[64];
	size_t	 len = payload_of(want, payload, sizeof(payload));

	ck_assert_uint_eq(walc_append(walc, KIND, payload, len), want);
}

/* walc's copies of records first..last, in bytes. */
static size_t
entries_size(uint64_t first, uint64_t last)
{
	char		 payload[64];
	uint64_t	 seq;
	size_t		 n = 0;

	for (seq = first; seq <= last; seq++)
		n += ENTRY_HEADER + payload_of(seq, payload, sizeof(payload));
	return n;
}

static int
have_appends(void *arg)
{
	return nappends >= *(const int *)arg;
}

static void
wait_appends(int n, int ms)
{
	ck_assert_msg(harness_run_until(base, have_appends, &n, ms),
	    "walsvc received %d of %d appends", nappends, n);
}

/* walsvc received sequences first..last, intact, from index `at` on. */
static void
assert_received(int at, uint64_t first, uint64_t last)
{
	char		 payload[64];
	uint64_t	 seq;
	size_t		 len;

	ck_assert_int_ge(nappends, at + (int)(last - first + 1));
	for (seq = first; seq <= last; seq++, at++) {
		len = payload_of(seq, payload, sizeof(payload));
		ck_assert_uint_eq(appends[at].seq, seq);
		ck_assert_uint_eq(appends[at].kind, KIND);
		ck_assert_uint_eq(appends[at].len, len);
		ck_assert_mem_eq(appends[at].payload, payload, len);
	}
}

/* Append first..last and wait until walsvc has them all. */
static void
append_range(uint64_t first, uint64_t last)
{
	uint64_t	 seq;
	int		 before = nappends;

	for (seq = first; seq <= last; seq++)
		append_next(seq);
	wait_appends(before + (int)(last - first + 1), WAIT_MS);
	assert_received(before, first, last);
}

static int
have_replies(void *arg)
{
	return replies >= *(const int *)arg;
}

/* Send one record from `link` to the tool and wait until walc has it. */
static void
reply_through(struct ipc_link *link, uint16_t type, uint64_t seq,
    const void *body, size_t len)
{
	int	 want = replies + 1;

	ck_assert_int_eq(ipc_link_send(link, type, seq, 0, body, len), 0);
	ck_assert_msg(harness_run_until(base, have_replies, &want, WAIT_MS),
	    "the reply never reached walc");
}

/* A reply from the fake walsvc. */
static void
reply(uint16_t type, uint64_t seq, const void *body, size_t len)
{
	reply_through(walsvc_reply, type, seq, body, len);
}

static void
reply_durable(uint64_t seq)
{
	uint8_t	 lsn[8];

	buf_store_u64(lsn, 1000 + seq);
	reply(IPC_WAL_DURABLE, seq, lsn, sizeof(lsn));
}

/*
 * walc reported `calls` watermarks, is durable up to `durable`, and
 * still holds a copy of everything after it.
 */
static void
assert_acknowledged(int calls, uint64_t durable)
{
	ck_assert_int_eq(durable_calls, calls);
	ck_assert_uint_eq(walc_durable(walc), durable);
	if (calls > 0)
		ck_assert_uint_eq(durable_seq, durable);
	ck_assert_uint_eq(walc_unacked_bytes(walc),
	    entries_size(durable + 1, walc_last(walc)));
}

START_TEST(test_sequences)
{
	append_range(1, 3);
	ck_assert_uint_eq(walc_last(walc), 3);
	assert_acknowledged(0, 0);
	ck_assert_uint_eq(walc_unacked_bytes(walc), entries_size(1, 3));
	/* walc has not heard of any walsvc incarnation yet */
	ck_assert_uint_eq(appends[0].target_gen, 0);
	ck_assert_uint_eq(walc_resent(walc), 0);
}
END_TEST

START_TEST(test_durable_releases)
{
	append_range(1, 3);
	reply_durable(2);
	assert_acknowledged(1, 2);
	/* an older watermark, arriving late, changes nothing */
	reply_durable(1);
	assert_acknowledged(1, 2);
	reply_durable(3);
	assert_acknowledged(2, 3);
	ck_assert_uint_eq(walc_unacked_bytes(walc), 0);
	/* appends now name the walsvc incarnation that answered */
	append_range(4, 4);
	ck_assert_uint_eq(appends[3].target_gen, WALSVC_GEN);
	ck_assert_uint_eq(walc_resent(walc), 0);
}
END_TEST

START_TEST(test_resend_from)
{
	append_range(1, 5);
	/* walsvc lost 3 and later (a gap): it asks from there */
	reply(IPC_WAL_RESEND, 3, NULL, 0);
	wait_appends(8, WAIT_MS);
	assert_received(5, 3, 5);
	ck_assert_uint_eq(walc_resent(walc), 3);
	/* a resend request is no acknowledgement */
	assert_acknowledged(0, 0);
}
END_TEST

/* Released records leave the rest of walc's copies intact. */
START_TEST(test_release_keeps_the_rest)
{
	append_range(1, 100);
	reply_durable(60);
	assert_acknowledged(1, 60);
	reply(IPC_WAL_RESEND, 61, NULL, 0);
	wait_appends(140, WAIT_MS);
	assert_received(100, 61, 100);
	append_range(101, 101);
	reply_durable(101);
	assert_acknowledged(2, 101);
}
END_TEST

START_TEST(test_new_generation)
{
	append_range(1, 3);
	reply_durable(1);
	ck_assert_uint_eq(walc_resent(walc), 0);
	/* walsvc dies and comes back: what it had not made durable is lost */
	walsvc_restart(WALSVC_GEN + 1);
	reply_durable(1);
	/* everything unacknowledged goes again, to the new incarnation */
	wait_appends(5, WAIT_MS);
	assert_received(3, 2, 3);
	ck_assert_uint_eq(appends[3].target_gen, WALSVC_GEN + 1);
	ck_assert_uint_eq(appends[4].target_gen, WALSVC_GEN + 1);
	ck_assert_uint_eq(walc_resent(walc), 2);
	/* replies from the same incarnation resend nothing */
	reply_durable(2);
	ck_assert_uint_eq(walc_resent(walc), 2);
}
END_TEST

START_TEST(test_peer_restarted)
{
	append_range(1, 2);
	reply_durable(0);
	/* the peers table names a new walsvc before it says anything */
	walc_peer_restarted(walc, WALSVC_GEN);
	ck_assert_uint_eq(walc_resent(walc), 0);
	walsvc_restart(WALSVC_GEN + 1);
	walc_peer_restarted(walc, WALSVC_GEN + 1);
	ck_assert_uint_eq(ipc_link_target_gen(tool_link), WALSVC_GEN + 1);
	wait_appends(4, WAIT_MS);
	assert_received(2, 1, 2);
	ck_assert_uint_eq(walc_resent(walc), 2);
}
END_TEST

START_TEST(test_retransmit_on_silence)
{
	int64_t	 started = harness_now_ms();

	append_range(1, 2);
	/* a watermark of nothing: walc learns walsvc's generation */
	reply_durable(0);
	ck_assert_uint_eq(ipc_link_target_gen(tool_link), WALSVC_GEN);
	harness_run_for(base, WALC_RETRANSMIT_MS / 3);
	/* not before the interval is over (a slow machine may be past it) */
	if (harness_now_ms() - started < WALC_RETRANSMIT_MS) {
		ck_assert_int_eq(nappends, 2);
		ck_assert_uint_eq(walc_resent(walc), 0);
	}
	wait_appends(4, WAIT_MS);
	assert_received(2, 1, 2);
	ck_assert_uint_ge(walc_resent(walc), 2);
	/* sent to whoever holds the endpoint: walsvc may have restarted */
	ck_assert_uint_eq(appends[2].target_gen, 0);
}
END_TEST

static int
relinked(void *arg)
{
	return relinked_calls > 0;
}

START_TEST(test_relinked_after_silent_rounds)
{
	int	 before;

	walc_set_relinked(walc, on_relinked);
	append_range(1, 1);
	/* walsvc takes the appends and never answers */
	ck_assert_msg(harness_run_until(base, relinked, NULL, WAIT_MS),
	    "the link never started over");
	ck_assert_int_eq(relinked_calls, 1);
	/* one record out, sent again each round, the last one before the
	 * owner hears of it */
	ck_assert_uint_eq(relinked_resent, WALC_RECONNECT_AFTER);
	ck_assert_int_ge(nappends, 1);
	/* the new socket reaches walsvc */
	before = nappends;
	wait_appends(before + 1, WAIT_MS);
	ck_assert_uint_eq(appends[before].seq, 1);
	/* an answer ends the silence: no more starting over */
	reply_durable(1);
	harness_run_for(base, WALC_RETRANSMIT_MS * WALC_RECONNECT_AFTER + 100);
	ck_assert_int_eq(relinked_calls, 1);
}
END_TEST

START_TEST(test_nothing_outstanding_stays_quiet)
{
	append_range(1, 2);
	reply_durable(2);
	/* long enough for the timer to have looked twice */
	harness_run_for(base, WALC_RETRANSMIT_MS * 3 / 2 + 50);
	ck_assert_int_eq(nappends, 2);
	ck_assert_uint_eq(walc_resent(walc), 0);
}
END_TEST

START_TEST(test_durable_beyond_sent)
{
	append_range(1, 2);
	reply_durable(5);
	assert_acknowledged(0, 0);
	reply_durable(2);
	assert_acknowledged(1, 2);
}
END_TEST

START_TEST(test_malformed_replies)
{
	struct ipc_identity	 worker = { IPC_ROLE_WORKER, 1, 99 };
	struct ipc_link		*impostor;
	uint8_t			 body[16];
	char			 err[256];

	memset(body, 0, sizeof(body));
	append_range(1, 2);
	/* each body one size off what its type carries */
	reply(IPC_WAL_DURABLE, 2, body, 7);
	reply(IPC_WAL_DURABLE, 2, body, 9);
	reply(IPC_WAL_RESEND, 1, body, 1);
	reply(IPC_WAL_REFUSED, 1, body, 3);
	reply(IPC_WAL_REFUSED, 1, body, 5);
	reply(IPC_WAL_APPEND, 2, body, 8);
	/* a well-formed watermark, but not from walsvc */
	impostor = ipc_link_open(base, tool_path, &worker, err, sizeof(err));
	ck_assert_msg(impostor != NULL, "%s", err);
	buf_store_u64(body, 1002);
	reply_through(impostor, IPC_WAL_DURABLE, 2, body, 8);
	ipc_link_close(impostor);

	assert_acknowledged(0, 0);
	ck_assert_int_eq(refused_calls, 0);
	ck_assert_uint_eq(walc_resent(walc), 0);
	/* the stream still works */
	reply_durable(2);
	assert_acknowledged(1, 2);
}
END_TEST

START_TEST(test_refused)
{
	uint8_t	 error[4];

	append_range(1, 2);
	buf_store_u32(error, ENOSPC);
	reply(IPC_WAL_REFUSED, 1, error, sizeof(error));
	ck_assert_int_eq(refused_calls, 1);
	ck_assert_uint_eq(refused_seq, 1);
	ck_assert_int_eq(refused_error, ENOSPC);
	/* walsvc retries by itself; the records wait here meanwhile */
	assert_acknowledged(0, 0);
	reply_durable(2);
	assert_acknowledged(1, 2);
}
END_TEST

static Suite *
walc_suite(void)
{
	Suite	*s = suite_create("walc");
	TCase	*tc;

	tc = harness_tcase(s, "appends and watermarks", setup, teardown);
	tcase_add_test(tc, test_sequences);
	tcase_add_test(tc, test_durable_releases);
	tcase_add_test(tc, test_release_keeps_the_rest);
	tcase_add_test(tc, test_durable_beyond_sent);

	tc = harness_tcase(s, "sending again", setup, teardown);
	tcase_add_test(tc, test_resend_from);
	tcase_add_test(tc, test_new_generation);
	tcase_add_test(tc, test_peer_restarted);

	tc = harness_tcase(s, "retransmission timer", setup_with_timer,
	    teardown);
	tcase_add_test(tc, test_retransmit_on_silence);
	tcase_add_test(tc, test_relinked_after_silent_rounds);
	tcase_add_test(tc, test_nothing_outstanding_stays_quiet);

	tc = harness_tcase(s, "other replies", setup, teardown);
	tcase_add_test(tc, test_malformed_replies);
	tcase_add_test(tc, test_refused);
	return s;
}

int
main(void)
{
	return harness_run(walc_suite());
}
