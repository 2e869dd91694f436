/*
 * accept.c - accepting connections on the worker's slot sockets.
 *
 * The sockets were opened by the supervisor (one per bind address for
 * this slot) and survive this process.  When the descriptor table is
 * full, accept() fails with EMFILE and the pending connection would make
 * the socket readable forever: a reserved descriptor is released, the
 * connection accepted and closed at once (the client sees a reset rather
 * than a hang), and the reserve taken again.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <event2/listener.h>

#include "addr.h"
#include "ipc_link.h"
#include "log.h"
#include "worker.h"

static void
accepted(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int len, void *arg)
{
	struct worker	*w = arg;
	int		 i;

	w->stats.accepted++;
	for (i = 0; i < w->nlisteners && w->listeners[i] != l; i++)
		;
	conn_accept(w, fd, i < w->nlisteners ? w->listener_kinds[i] :
	    IPC_LISTEN_MQTT);
}

static void
accept_error(struct evconnlistener *l, void *arg)
{
	static struct log_ratelimit	 rl;
	struct worker			*w = arg;
	int				 fd, saved = errno;

	if (saved != EMFILE && saved != ENFILE) {
		log_limited(&rl, LOG_LEVEL_WARN, "accept failed", "error=\"%s\"",
		    strerror(saved));
		return;
	}
	log_limited(&rl, LOG_LEVEL_WARN, "out of file descriptors; "
	    "refusing a connection", "connections=%llu",
	    (unsigned long long)w->nconns);
	if (w->reserve_fd != -1) {
		close(w->reserve_fd);
		fd = accept(evconnlistener_get_fd(l), NULL, NULL);
		if (fd != -1)
			close(fd);
		w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
}

int
accept_start(struct worker *w)
{
	struct proc	*p = w->proc;
	int		 i;

	w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (i = 0; i < p->nlisten; i++) {
		if (accept_add(w, p->listen_fds[i], p->listen_kinds[i]) == -1)
			return -1;
	}
	return 0;
}

/* Watch one listening socket (inherited, or passed on reload). */
int
accept_add(struct worker *w, int fd, uint8_t kind)
{
	struct evconnlistener	*l;
	int			 i = w->nlisteners;

	if (i == PROC_MAX_LISTEN) {
		log_warnx("too many listening sockets; one ignored", "fd=%d",
		    fd);
		close(fd);
		return -1;
	}
	/*
	 * libevent accepts until EAGAIN: a blocking socket would hang the
	 * loop.  backlog 0: the supervisor already called listen().
	 */
	evutil_make_socket_nonblocking(fd);
	l = evconnlistener_new(w->base, accepted, w, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_CLOSE_ON_EXEC | (w->accepting ? 0 : LEV_OPT_DISABLED), 0,
	    fd);
	if (l == NULL) {
		log_warn("cannot watch listening socket", "fd=%d", fd);
		close(fd);
		return -1;
	}
	evconnlistener_set_error_cb(l, accept_error);
	addr_local(fd, w->listener_names[i], sizeof(w->listener_names[i]));
	w->listeners[i] = l;
	w->listener_kinds[i] = kind;
	w->nlisteners++;
	log_info("listening socket added", "addr=%s kind=%s",
	    w->listener_names[i], ipc_listen_name(kind));
	return 0;
}

/* Stop accepting on an address; its clients stay connected. */
void
accept_remove(struct worker *w, const char *name)
{
	int	 i;

	for (i = 0; i < w->nlisteners; i++) {
		if (strcmp(w->listener_names[i], name) != 0)
			continue;
		evconnlistener_free(w->listeners[i]);
		w->nlisteners--;
		w->listeners[i] = w->listeners[w->nlisteners];
		memcpy(w->listener_names[i], w->listener_names[w->nlisteners],
		    sizeof(w->listener_names[i]));
		w->listener_kinds[i] = w->listener_kinds[w->nlisteners];
		log_info("listening socket removed", "addr=%s", name);
		return;
	}
}

/*
 * Start taking connections.  A new worker waits for the other workers'
 * subscription tables first (route.c); meanwhile the kernel keeps new
 * connections in the slot socket's backlog.
 */
void
accept_enable(struct worker *w)
{
	int	 i;

	if (w->accepting)
		return;
	w->accepting = 1;
	for (i = 0; i < w->nlisteners; i++)
		evconnlistener_enable(w->listeners[i]);
	log_info("accepting connections", "listeners=%d", w->nlisteners);
}

void
accept_stop(struct worker *w)
{
	int	 i;

	for (i = 0; i < w->nlisteners; i++)
		evconnlistener_free(w->listeners[i]);
	w->nlisteners = 0;
}
