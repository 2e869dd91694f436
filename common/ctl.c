/*
 * ctl.c - control channel transport (see ctl.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "ctl.h"
#include "ipc_link.h"
#include "log.h"

struct ctl_out {
	struct ctl_out	*next;
	struct buf	 data;
	int		 fd;	/* to pass, or -1 */
};

struct ctl_channel {
	int			 fd;
	struct ipc_identity	 self;
	uint64_t		 target_gen;
	struct event		*rev;
	struct event		*wev;
	ctl_fn			 fn;
	void			*arg;
	struct ctl_out		*head, *tail;
	size_t			 pending;
	uint64_t		 seq;
	uint8_t			*rbuf;
};

/* Read and hand on one datagram; 0 when none was waiting or at EOF. */
static int
ctl_read_one(struct ctl_channel *ch)
{
	struct ipc_batch	 batch;
	struct msghdr		 mh;
	struct iovec		 iov;
	struct cmsghdr		*cm;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}			 cmsgbuf;
	ssize_t			 n;
	int			 passed = -1, rv;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = ch->rbuf;
	iov.iov_len = IPC_CTL_MAX;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cmsgbuf.buf;
	mh.msg_controllen = sizeof(cmsgbuf.buf);
	n = recvmsg(ch->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		if (errno != ECONNRESET)
			log_warn("control channel receive failed", "fd=%d",
			    ch->fd);
		n = 0;
		/* nothing was received: the control buffer is not filled in */
		mh.msg_controllen = 0;
	}
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&passed, CMSG_DATA(cm), sizeof(int));
	if (n == 0) {
		/* end of file, or an empty datagram, which no peer of ours
		 * sends: either way the channel is over */
		if (passed != -1)
			close(passed);
		event_del(ch->rev);
		ch->fn(ch, CTL_EOF, NULL, -1, ch->arg);
		return 0;
	}
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
		rv = IPC_ELONG;
	else
		rv = ipc_batch_open(&batch, ch->rbuf, (size_t)n);
	if (rv != IPC_OK) {
		if (passed != -1)
			close(passed);
		ch->fn(ch, rv, NULL, -1, ch->arg);
		return 1;
	}
	ch->fn(ch, IPC_OK, &batch, passed, ch->arg);
	return 1;
}

static void
ctl_readable(evutil_socket_t fd, short what, void *arg)
{
	ctl_read_one(arg);
}

/*
 * Hand on every datagram still waiting, before the channel is closed:
 * a child's last words (CTL_FATAL) may be there when its SIGCHLD is
 * handled first.
 */
void
ctl_drain(struct ctl_channel *ch)
{
	while (ctl_read_one(ch) == 1)
		;
}

static void
ctl_try_send(struct ctl_channel *ch)
{
	struct ctl_out	*o;
	struct msghdr	 mh;
	struct iovec	 iov;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cmsgbuf;
	struct cmsghdr	*cm;

	while ((o = ch->head) != NULL) {
		memset(&mh, 0, sizeof(mh));
		iov.iov_base = o->data.data;
		iov.iov_len = o->data.len;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		if (o->fd != -1) {
			memset(&cmsgbuf, 0, sizeof(cmsgbuf));
			mh.msg_control = cmsgbuf.buf;
			mh.msg_controllen = sizeof(cmsgbuf.buf);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &o->fd, sizeof(int));
		}
		if (sendmsg(ch->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == -1) {
			if (errno == EAGAIN || errno == EINTR) {
				event_add(ch->wev, NULL);
				return;
			}
			/* the peer is gone: its EOF arrives on the read side */
			log_debug("control channel send failed", "fd=%d", ch->fd);
		}
		ch->head = o->next;
		if (ch->head == NULL)
			ch->tail = NULL;
		ch->pending -= o->data.len;
		if (o->fd != -1)
			close(o->fd);
		buf_free(&o->data);
		free(o);
	}
}

static void
ctl_writable(evutil_socket_t fd, short what, void *arg)
{
	ctl_try_send(arg);
}

struct ctl_channel *
ctl_open(struct event_base *base, int fd, const struct ipc_identity *self,
    ctl_fn fn, void *arg)
{
	struct ctl_channel	*ch;
	int			 flags;

	if ((ch = calloc(1, sizeof(*ch))) == NULL)
		return NULL;
	if ((ch->rbuf = malloc(IPC_CTL_MAX)) == NULL)
		goto fail;
	ch->fd = fd;
	ch->self = *self;
	ch->fn = fn;
	ch->arg = arg;
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		goto fail;
	ch->rev = event_new(base, fd, EV_READ | EV_PERSIST, ctl_readable, ch);
	ch->wev = event_new(base, fd, EV_WRITE, ctl_writable, ch);
	if (ch->rev == NULL || ch->wev == NULL ||
	    event_priority_set(ch->rev, EVLOOP_PRIO_CONTROL) == -1 ||
	    event_add(ch->rev, NULL) == -1)
		goto fail;
	return ch;
fail:
	if (ch->rev)
		event_free(ch->rev);
	if (ch->wev)
		event_free(ch->wev);
	free(ch->rbuf);
	free(ch);
	return NULL;
}

void
ctl_close(struct ctl_channel *ch)
{
	struct ctl_out	*o;

	if (ch == NULL)
		return;
	while ((o = ch->head) != NULL) {
		ch->head = o->next;
		if (o->fd != -1)
			close(o->fd);
		buf_free(&o->data);
		free(o);
	}
	event_free(ch->rev);
	event_free(ch->wev);
	close(ch->fd);
	free(ch->rbuf);
	free(ch);
}

int
ctl_fd(const struct ctl_channel *ch)
{
	return ch->fd;
}

void
ctl_set_target_gen(struct ctl_channel *ch, uint64_t gen)
{
	ch->target_gen = gen;
}

size_t
ctl_pending(const struct ctl_channel *ch)
{
	return ch->pending;
}

/*
 * Queue one record as its own datagram and try to send it now.  A
 * passed descriptor is duplicated, so the caller keeps its own.
 */
int
ctl_send(struct ctl_channel *ch, uint16_t type, uint64_t corr,
    const void *body, size_t len, int pass_fd)
{
	struct ctl_out	*o;

	/* len is compared alone: adding the headers to it could wrap */
	if (len > IPC_CTL_MAX - IPC_BATCH_HEADER_SIZE -
	    IPC_RECORD_HEADER_SIZE) {
		errno = EMSGSIZE;
		return -1;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return -1;
	buf_init(&o->data);
	o->fd = -1;
	if (ipc_batch_begin(&o->data, &ch->self, ch->target_gen) == -1 ||
	    ipc_record_add(&o->data, type, ++ch->seq, corr, body, len) == -1 ||
	    (pass_fd != -1 && (o->fd = fcntl(pass_fd, F_DUPFD_CLOEXEC, 0)) == -1)) {
		buf_free(&o->data);
		free(o);
		return -1;
	}
	if (ch->tail)
		ch->tail->next = o;
	else
		ch->head = o;
	ch->tail = o;
	ch->pending += o->data.len;
	ctl_try_send(ch);
	return 0;
}
