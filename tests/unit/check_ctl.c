/*
 * check_ctl.c - unit tests of common/ctl.c, the control channel between
 * the supervisor and a child, over an AF_UNIX SOCK_SEQPACKET socketpair
 * in one process.
 *
 * Usually both ends are channels on one event base: the supervisor's
 * and the child's.  Where a test needs to send what no channel would
 * (garbage, an oversized datagram, a descriptor with a bad datagram) or
 * to vanish abruptly, the supervisor's end is the raw socket instead.
 * Checked: a record's round trip; a passed descriptor arrives while the
 * sender keeps its own, and no copy is left behind; end-of-file, also
 * when the peer vanished with data unread; datagrams that are not a
 * valid batch are reported with the IPC error; bodies too large for a
 * datagram are refused; sends the peer does not read yet are queued and
 * delivered in order later.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "ctl.h"
#include "harness.h"
#include "ipc.h"
#include "ipc_link.h"

#define WAIT_MS		30000
#define QUIET_MS	50
#define MAX_EVENTS	256
/* Large enough that the socket buffer fills after a few dozen sends. */
#define QUEUE_BODY	16384
#define CHILD_GEN	12
/* The largest body a control datagram carries. */
#define BODY_MAX	(IPC_CTL_MAX - IPC_BATCH_HEADER_SIZE - \
			    IPC_RECORD_HEADER_SIZE)

static const struct ipc_identity	 sup_id = { IPC_ROLE_SUPERVISOR, 0, 1 };
static const struct ipc_identity	 child_id = { IPC_ROLE_WORKER, 3,
	CHILD_GEN };

/* What a channel's callback was told, one call. */
struct delivery {
	struct ctl_channel	*ch;
	int			 status;
	int			 fd;
	struct ipc_identity	 from;
	uint64_t		 target_gen;
	uint16_t		 type;
	uint64_t		 seq;
	uint64_t		 corr;
	uint8_t			*body;
	uint32_t		 len;
};

static struct event_base	*base;
static int			 sv[2];		/* supervisor's, child's */
static struct ctl_channel	*sup, *child;
static struct delivery		 got[MAX_EVENTS];
static int			 ngot;

static void
on_message(struct ctl_channel *ch, int status, struct ipc_batch *batch,
    int fd, void *arg)
{
	struct delivery		*d;
	struct ipc_record	 rec;

	ck_assert_int_lt(ngot, MAX_EVENTS);
	d = &got[ngot++];
	memset(d, 0, sizeof(*d));
	d->ch = ch;
	d->status = status;
	d->fd = fd;
	if (batch == NULL)
		return;
	d->from = batch->sender;
	d->target_gen = batch->target_gen;
	/* one record per datagram, always */
	ck_assert_int_eq(ipc_batch_next(batch, &rec), 1);
	d->type = rec.type;
	d->seq = rec.seq;
	d->corr = rec.corr;
	d->len = rec.len;
	d->body = malloc(rec.len ? rec.len : 1);
	ck_assert_ptr_nonnull(d->body);
	memcpy(d->body, rec.body, rec.len);
	ck_assert_int_eq(ipc_batch_next(batch, &rec), 0);
}

static void
setup(void)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
	    sv), 0);
	base = evloop_new();
	ck_assert_ptr_nonnull(base);
	child = ctl_open(base, sv[1], &child_id, on_message, NULL);
	ck_assert_ptr_nonnull(child);
	sup = NULL;
	ngot = 0;
}

static void
teardown(void)
{
	int	 i;

	ctl_close(child);
	if (sup != NULL)
		ctl_close(sup);
	else if (sv[0] != -1)
		close(sv[0]);
	event_base_free(base);
	for (i = 0; i < ngot; i++) {
		free(got[i].body);
		if (got[i].fd != -1)
			close(got[i].fd);
	}
}

/* The supervisor's end as a channel too. */
static void
open_sup(void)
{
	sup = ctl_open(base, sv[0], &sup_id, on_message, NULL);
	ck_assert_ptr_nonnull(sup);
}

static int
have_deliveries(void *arg)
{
	return ngot >= *(const int *)arg;
}

static void
wait_deliveries(int n)
{
	ck_assert_msg(harness_run_until(base, have_deliveries, &n, WAIT_MS),
	    "%d of %d deliveries", ngot, n);
}

/* One datagram on the raw supervisor end, with a descriptor if fd >= 0. */
static void
send_raw(const void *data, size_t len, int fd)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cmsgbuf;
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*cm;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = (void *)data;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		mh.msg_control = cmsgbuf.buf;
		mh.msg_controllen = sizeof(cmsgbuf.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	ck_assert_int_eq(sendmsg(sv[0], &mh, MSG_NOSIGNAL), (ssize_t)len);
}

/* A good control datagram, as the supervisor would send it. */
static void
send_raw_record(uint16_t type, uint64_t seq)
{
	struct buf	 b = BUF_INITIALIZER;

	ck_assert_int_eq(ipc_batch_begin(&b, &sup_id, CHILD_GEN), 0);
	ck_assert_int_eq(ipc_record_add(&b, type, seq, 0, NULL, 0), 0);
	send_raw(b.data, b.len, -1);
	buf_free(&b);
}

/*
 * Nobody holds the pipe's write end any more: reading says EOF.  A
 * descriptor left open somewhere makes the read fail with EAGAIN
 * instead of hanging the test.
 */
static void
assert_pipe_closed(int rfd)
{
	char	 c;

	ck_assert_int_eq(fcntl(rfd, F_SETFL, O_NONBLOCK), 0);
	ck_assert_msg(read(rfd, &c, 1) == 0, "a copy of the descriptor is "
	    "still open");
}

/*
 * A datagram that is not a message comes with a descriptor: the callee
 * is told `status` and gets no descriptor, and none is left open.
 */
static void
assert_descriptor_dropped(const void *data, size_t len, int status)
{
	int	 p[2];

	ck_assert_int_eq(pipe(p), 0);
	send_raw(data, len, p[1]);
	close(p[1]);
	wait_deliveries(1);
	ck_assert_int_eq(got[0].status, status);
	ck_assert_int_eq(got[0].fd, -1);
	assert_pipe_closed(p[0]);
	close(p[0]);
}

/* The supervisor vanishes. */
static void
close_sup_end(void)
{
	close(sv[0]);
	sv[0] = -1;
}

START_TEST(test_round_trip)
{
	static const uint8_t	 hello[8] = { 0, 0, 0, 4, 0, 0, 0, 0 };

	open_sup();
	ck_assert_int_eq(ctl_fd(sup), sv[0]);
	ctl_set_target_gen(sup, CHILD_GEN);
	ck_assert_int_eq(ctl_send(sup, IPC_CTL_HELLO, 77, hello, sizeof(hello),
	    -1), 0);
	wait_deliveries(1);
	ck_assert_ptr_eq(got[0].ch, child);
	ck_assert_int_eq(got[0].status, IPC_OK);
	ck_assert_int_eq(got[0].fd, -1);
	ck_assert_uint_eq(got[0].from.role, IPC_ROLE_SUPERVISOR);
	ck_assert_uint_eq(got[0].from.slot, sup_id.slot);
	ck_assert_uint_eq(got[0].from.gen, sup_id.gen);
	ck_assert_uint_eq(got[0].target_gen, CHILD_GEN);
	ck_assert_uint_eq(got[0].type, IPC_CTL_HELLO);
	ck_assert_uint_eq(got[0].seq, 1);
	ck_assert_uint_eq(got[0].corr, 77);
	ck_assert_uint_eq(got[0].len, sizeof(hello));
	ck_assert_mem_eq(got[0].body, hello, sizeof(hello));
	ck_assert_uint_eq(ctl_pending(sup), 0);

	/* the child answers; each side numbers its own datagrams */
	ck_assert_int_eq(ctl_send(child, IPC_CTL_READY, 77, "\0\0\0\0\0\0\0\0",
	    8, -1), 0);
	ck_assert_int_eq(ctl_send(sup, IPC_CTL_STOP, 0, NULL, 0, -1), 0);
	wait_deliveries(3);
	ck_assert_ptr_eq(got[1].ch, sup);
	ck_assert_uint_eq(got[1].type, IPC_CTL_READY);
	ck_assert_uint_eq(got[1].from.role, IPC_ROLE_WORKER);
	ck_assert_uint_eq(got[1].from.gen, CHILD_GEN);
	ck_assert_uint_eq(got[1].seq, 1);
	ck_assert_uint_eq(got[1].corr, 77);
	ck_assert_ptr_eq(got[2].ch, child);
	ck_assert_uint_eq(got[2].type, IPC_CTL_STOP);
	ck_assert_uint_eq(got[2].seq, 2);
	ck_assert_uint_eq(got[2].len, 0);
}
END_TEST

START_TEST(test_pass_descriptor)
{
	int	 p[2], flags;
	char	 c;

	ck_assert_int_eq(pipe(p), 0);
	open_sup();
	ck_assert_int_eq(ctl_send(sup, IPC_CTL_RELOAD, 0, NULL, 0, p[1]), 0);
	wait_deliveries(1);
	ck_assert_int_eq(got[0].status, IPC_OK);
	ck_assert_uint_eq(got[0].type, IPC_CTL_RELOAD);
	ck_assert_int_ge(got[0].fd, 0);
	ck_assert_int_ne(got[0].fd, p[1]);
	/* not inherited by whatever the child executes */
	flags = fcntl(got[0].fd, F_GETFD);
	ck_assert_int_ne(flags & FD_CLOEXEC, 0);
	/* it is the same pipe */
	ck_assert_int_eq(write(got[0].fd, "r", 1), 1);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	ck_assert_int_eq(c, 'r');
	/* and the sender still has its own */
	ck_assert_int_eq(write(p[1], "s", 1), 1);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	ck_assert_int_eq(c, 's');
	/* the channel kept no copy once it was sent */
	close(p[1]);
	close(got[0].fd);
	got[0].fd = -1;
	assert_pipe_closed(p[0]);
	close(p[0]);
}
END_TEST

START_TEST(test_eof)
{
	close_sup_end();
	wait_deliveries(1);
	ck_assert_int_eq(got[0].status, CTL_EOF);
	ck_assert_int_eq(got[0].fd, -1);
	ck_assert_uint_eq(got[0].type, 0);
	/* told once */
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(ngot, 1);
}
END_TEST

/* A peer that dies with our datagrams unread resets the connection. */
START_TEST(test_eof_with_data_unread)
{
	ck_assert_int_eq(ctl_send(child, IPC_CTL_READY, 0, "\0\0\0\0\0\0\0\0",
	    8, -1), 0);
	ck_assert_uint_eq(ctl_pending(child), 0);
	close_sup_end();
	wait_deliveries(1);
	ck_assert_int_eq(got[0].status, CTL_EOF);
	ck_assert_int_eq(got[0].fd, -1);
	harness_run_for(base, QUIET_MS);
	ck_assert_int_eq(ngot, 1);
}
END_TEST

/*
 * recvmsg() returns 0 for an empty datagram as for end-of-file.  No peer
 * of ours sends one, so it ends the channel like EOF; a descriptor that
 * came with it must not stay open.
 */
START_TEST(test_empty_datagram)
{
	assert_descriptor_dropped("", 0, CTL_EOF);
}
END_TEST

START_TEST(test_send_after_peer_gone)
{
	close_sup_end();
	/* dropped, not fatal: no SIGPIPE, and the EOF arrives as usual */
	ck_assert_int_eq(ctl_send(child, IPC_CTL_READY, 0, "\0\0\0\0\0\0\0\0",
	    8, -1), 0);
	ck_assert_uint_eq(ctl_pending(child), 0);
	wait_deliveries(1);
	ck_assert_int_eq(got[0].status, CTL_EOF);
}
END_TEST

START_TEST(test_not_a_batch)
{
	struct buf	 b = BUF_INITIALIZER;
	uint8_t		*big;

	send_raw("garbage", 7, -1);
	/* a batch of another envelope version */
	ck_assert_int_eq(ipc_batch_begin(&b, &sup_id, 0), 0);
	buf_set_u16(&b, 4, IPC_VERSION + 1);
	send_raw(b.data, b.len, -1);
	buf_free(&b);
	/* more than a control datagram may hold: cut by the receive */
	big = calloc(1, IPC_CTL_MAX + 1);
	ck_assert_ptr_nonnull(big);
	send_raw(big, IPC_CTL_MAX + 1, -1);
	free(big);
	/* the channel goes on working */
	send_raw_record(IPC_CTL_STOP, 1);
	wait_deliveries(4);
	ck_assert_int_eq(got[0].status, IPC_EMAGIC);
	ck_assert_int_eq(got[1].status, IPC_EVERSION);
	ck_assert_int_eq(got[2].status, IPC_ELONG);
	ck_assert_int_eq(got[3].status, IPC_OK);
	ck_assert_uint_eq(got[3].type, IPC_CTL_STOP);
}
END_TEST

START_TEST(test_bad_datagram_closes_descriptor)
{
	assert_descriptor_dropped("garbage", 7, IPC_EMAGIC);
}
END_TEST

START_TEST(test_oversized_body)
{
	uint8_t		*body;
	size_t		 i;

	body = malloc(BODY_MAX + 1);
	ck_assert_ptr_nonnull(body);
	for (i = 0; i < BODY_MAX + 1; i++)
		body[i] = (uint8_t)(i % 251);
	open_sup();
	errno = 0;
	ck_assert_int_eq(ctl_send(sup, IPC_CTL_CONFIG, 0, body, BODY_MAX + 1,
	    -1), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	/* a length that wraps around when the headers are added */
	errno = 0;
	ck_assert_int_eq(ctl_send(sup, IPC_CTL_CONFIG, 0, body, SIZE_MAX, -1),
	    -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(ctl_pending(sup), 0);
	/* the largest that fits arrives whole */
	ck_assert_int_eq(ctl_send(sup, IPC_CTL_CONFIG, 0, body, BODY_MAX, -1),
	    0);
	wait_deliveries(1);
	ck_assert_int_eq(got[0].status, IPC_OK);
	ck_assert_uint_eq(got[0].len, BODY_MAX);
	ck_assert_mem_eq(got[0].body, body, BODY_MAX);
	/* the refused ones took no sequence number */
	ck_assert_uint_eq(got[0].seq, 1);
	free(body);
}
END_TEST

/* A body that tells which send it came from. */
static void
fill_body(uint8_t *body, size_t len, int i)
{
	memset(body, 'a' + i % 26, len);
	memcpy(body, &i, sizeof(i));
}

static void
send_filled(int i)
{
	uint8_t	 body[QUEUE_BODY];

	fill_body(body, sizeof(body), i);
	ck_assert_int_eq(ctl_send(sup, IPC_CTL_CONFIG, (uint64_t)i, body,
	    sizeof(body), -1), 0);
}

/*
 * Sends from the supervisor, with the loop not running so the child
 * reads nothing, until the socket is full and the channel has to queue;
 * then `extra` more.  The number of sends.
 */
static int
fill_until_queued(int extra)
{
	int	 i, n;

	for (i = 0; ctl_pending(sup) == 0; i++) {
		ck_assert_msg(i < MAX_EVENTS - 1 - extra,
		    "the socket never filled up");
		send_filled(i);
	}
	for (n = 0; n < extra; n++)
		send_filled(i++);
	return i;
}

START_TEST(test_queued_while_peer_busy)
{
	uint8_t	 body[QUEUE_BODY];
	int	 i, sent;

	open_sup();
	sent = fill_until_queued(5);
	wait_deliveries(sent);
	ck_assert_uint_eq(ctl_pending(sup), 0);
	for (i = 0; i < sent; i++) {
		fill_body(body, sizeof(body), i);
		ck_assert_int_eq(got[i].status, IPC_OK);
		ck_assert_uint_eq(got[i].seq, (uint64_t)i + 1);
		ck_assert_uint_eq(got[i].corr, (uint64_t)i);
		ck_assert_uint_eq(got[i].len, QUEUE_BODY);
		ck_assert_mem_eq(got[i].body, body, QUEUE_BODY);
	}
}
END_TEST

/* A descriptor waiting in the queue is passed when its datagram goes. */
START_TEST(test_queued_descriptor)
{
	int	 p[2], sent;

	ck_assert_int_eq(pipe(p), 0);
	open_sup();
	sent = fill_until_queued(0);
	ck_assert_int_eq(ctl_send(sup, IPC_CTL_RELOAD, 0, NULL, 0, p[1]), 0);
	close(p[1]);
	wait_deliveries(sent + 1);
	ck_assert_uint_eq(got[sent].type, IPC_CTL_RELOAD);
	ck_assert_int_ge(got[sent].fd, 0);
	close(got[sent].fd);
	got[sent].fd = -1;
	assert_pipe_closed(p[0]);
	close(p[0]);
}
END_TEST

static Suite *
ctl_suite(void)
{
	Suite	*s = suite_create("ctl");
	TCase	*tc;

	tc = harness_tcase(s, "messages", setup, teardown);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_pass_descriptor);
	tcase_add_test(tc, test_oversized_body);

	tc = harness_tcase(s, "end of file", setup, teardown);
	tcase_add_test(tc, test_eof);
	tcase_add_test(tc, test_eof_with_data_unread);
	tcase_add_test(tc, test_empty_datagram);
	tcase_add_test(tc, test_send_after_peer_gone);

	tc = harness_tcase(s, "bad datagrams", setup, teardown);
	tcase_add_test(tc, test_not_a_batch);
	tcase_add_test(tc, test_bad_datagram_closes_descriptor);

	tc = harness_tcase(s, "queueing", setup, teardown);
	tcase_add_test(tc, test_queued_while_peer_busy);
	tcase_add_test(tc, test_queued_descriptor);
	return s;
}

int
main(void)
{
	return harness_run(ctl_suite());
}
