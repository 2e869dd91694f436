/*
 * conn.c - client connections of a worker.
 *
 * The connection layer is transport-agnostic: it is handed a connected
 * descriptor and reads bytes.  Until the MQTT state machine exists a
 * connection is only held: it is read and discarded, and closed when
 * server.connect-timeout passes without a CONNECT (which is every time).
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc_link.h"
#include "log.h"
#include "worker.h"

struct conn {
	struct worker	*w;
	int		 fd;
	struct event	*rev;
	struct event	*timeout;
	struct conn	*next, *prev;
};

static struct conn	*conns;

static void
conn_free(struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->w->connections--;
	event_free(c->rev);
	event_free(c->timeout);
	close(c->fd);
	free(c);
}

static void
conn_readable(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	char		 scratch[4096];
	ssize_t		 n;

	if (what & EV_TIMEOUT) {
		conn_free(c);
		return;
	}
	n = read(fd, scratch, sizeof(scratch));
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		conn_free(c);
}

void
conn_accept(struct worker *w, int fd, const struct sockaddr *sa, int len)
{
	struct conn	*c;
	struct timeval	 tv;
	int64_t		 ms;
	int		 one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->w = w;
	c->fd = fd;
	c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, conn_readable, c);
	c->timeout = evtimer_new(w->base, (event_callback_fn)conn_readable, c);
	ms = config_num(&w->proc->cfg, OPT_server_connect_timeout);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (c->rev == NULL || c->timeout == NULL ||
	    event_priority_set(c->rev, EVLOOP_PRIO_IO) == -1 ||
	    event_add(c->rev, NULL) == -1 || evtimer_add(c->timeout, &tv) == -1) {
		log_warnx("cannot watch connection", "fd=%d", fd);
		if (c->rev)
			event_free(c->rev);
		if (c->timeout)
			event_free(c->timeout);
		close(fd);
		free(c);
		return;
	}
	c->next = conns;
	if (conns)
		conns->prev = c;
	conns = c;
	w->connections++;
}

void
conn_close_all(struct worker *w)
{
	while (conns)
		conn_free(conns);
}
