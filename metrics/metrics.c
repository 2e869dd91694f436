/*
 * metrics.c - promptmq-metrics: the HTTP endpoint of Prometheus metrics
 * and health checks.
 *
 * A child of its own, so that no process that keeps root parses HTTP
 * (the supervisor), and a bug in the HTTP code drops no MQTT client (a
 * worker) and no message (walsvc).  It runs as server.user, speaks no
 * nng, and holds two things the supervisor handed it (IPC_CTL_METRICS):
 * the listening socket of metrics.bind and a read-only mapping of the
 * counter region (common/metrics.h).  Every answer is rendered from the
 * region at the moment of the request; nothing is asked of anyone.
 *
 *	GET metrics.path	the exposition (text format 0.0.4)
 *	GET /health		200 while this process answers (it exits
 *				with the supervisor)
 *	GET /ready		200 when walsvc serves, its log takes
 *				writes (not failing, not over
 *				storage.max-disk) and a worker serves;
 *				503 otherwise; a short JSON body says which
 *
 * HTTP is libevent's evhttp, held short: GET and HEAD only, 8 KiB of
 * headers, no body, 5 s to send a request.
 */
#include "config.h"

#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"
#include "proc.h"

#define HTTP_HEADERS_MAX	8192
#define HTTP_TIMEOUT_S		5

static struct {
	struct proc	*proc;
	struct evhttp	*http;
	struct metrics	*m;
	int		 listen_fd;
} mx = { .listen_fd = -1 };

static void
reply(struct evhttp_request *req, int code, const char *reason,
    const char *type, const void *body, size_t len)
{
	struct evbuffer	*out = evbuffer_new();

	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", type);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Cache-Control", "no-store");
	if (out != NULL && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
		evbuffer_add(out, body, len);
	evhttp_send_reply(req, code, reason, out);
	if (out != NULL)
		evbuffer_free(out);
}

static void
serve_metrics(struct evhttp_request *req)
{
	struct buf	 b = BUF_INITIALIZER;
	char		 line[256];
	int		 n;

	n = snprintf(line, sizeof(line), "# HELP promptmq_build_info The "
	    "version of promptmqd.\n# TYPE promptmq_build_info gauge\n"
	    "promptmq_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	buf_add(&b, line, (size_t)n);
	if (metrics_render(mx.m, &b) == -1) {
		buf_free(&b);
		reply(req, 500, "Internal Server Error", "text/plain",
		    "out of memory\n", 14);
		return;
	}
	reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
	    b.data, b.len);
	buf_free(&b);
}

static void
serve_ready(struct evhttp_request *req)
{
	metric_t	*sup = metrics_sup(mx.m);
	metric_t	*wal = metrics_walsvc(mx.m);
	uint64_t	 walsvc = metric_get(&sup[METRIC_SUP_WALSVC_UP]);
	uint64_t	 up = metric_get(&sup[METRIC_SUP_WORKERS_UP]);
	uint64_t	 slots = metric_get(&sup[METRIC_SUP_WORKERS]);
	const char	*log = metric_get(&wal[METRIC_WAL_FAILING]) ? "failing" :
			    metric_get(&wal[METRIC_WAL_DISK_FULL]) ? "full" :
			    "ok";
	int		 ready = walsvc != 0 && up > 0 && strcmp(log, "ok") == 0;
	char		 body[256];
	int		 n;

	n = snprintf(body, sizeof(body), "{\"status\":\"%s\",\"walsvc\":"
	    "\"%s\",\"log\":\"%s\",\"workers_up\":%llu,\"workers\":%llu}\n",
	    ready ? "ready" : "not ready", walsvc ? "up" : "down", log,
	    (unsigned long long)up, (unsigned long long)slots);
	reply(req, ready ? 200 : 503, ready ? "OK" : "Service Unavailable",
	    "application/json", body, (size_t)n);
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path = uri ? evhttp_uri_get_path(uri) : NULL;
	const struct config	*cfg = &mx.proc->cfg;
	struct bufferevent	*bev;
	int			 one = 1;

	/*
	 * evhttp writes the headers and the body apart: without
	 * TCP_NODELAY a scraper that delays its ACK waits 40 ms for the
	 * body (Nagle).  Set again at every request of a connection: cheap,
	 * and evhttp gives no hook once the socket is known.
	 */
	if ((bev = evhttp_connection_get_bufferevent(
	    evhttp_request_get_connection(req))) != NULL)
		(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP,
		    TCP_NODELAY, &one, sizeof(one));
	if (path == NULL)
		reply(req, 400, "Bad Request", "text/plain", "bad request\n",
		    12);
	else if (strcmp(path, config_str(cfg, OPT_metrics_path)) == 0)
		serve_metrics(req);
	else if (strcmp(path, "/health") == 0)
		reply(req, 200, "OK", "application/json",
		    "{\"status\":\"alive\"}\n", 19);
	else if (strcmp(path, "/ready") == 0)
		serve_ready(req);
	else
		reply(req, 404, "Not Found", "text/plain", "not found\n", 10);
}

static void
metrics_start(struct proc *p)
{
	uint8_t	 ready[8];

	mx.proc = p;
	if (mx.m == NULL || mx.listen_fd == -1)
		fatal_status(PMQ_EXIT_NORESPAWN, "no counter region or no "
		    "socket from the supervisor", "");
	if ((mx.http = evhttp_new(p->base)) == NULL ||
	    evhttp_accept_socket(mx.http, mx.listen_fd) == -1)
		fatalx("cannot serve HTTP", "");
	evhttp_set_allowed_methods(mx.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(mx.http, HTTP_HEADERS_MAX);
	evhttp_set_max_body_size(mx.http, 0);
	evhttp_set_timeout(mx.http, HTTP_TIMEOUT_S);
	evhttp_set_gencb(mx.http, request_cb, NULL);
	memset(ready, 0, sizeof(ready));
	proc_send(p, IPC_CTL_READY, ready, sizeof(ready));
	log_info("metrics ready", "path=%s", config_str(&p->cfg,
	    OPT_metrics_path));
}

static void
metrics_stop(struct proc *p)
{
	if (mx.http != NULL)
		evhttp_free(mx.http);
	mx.http = NULL;
	exit(0);
}

/* The region (read-only) and the socket, before the configuration. */
static void
metrics_control(struct proc *p, const struct ipc_record *rec, int fd)
{
	const char	*why;

	if (rec->type != IPC_CTL_METRICS || rec->len != 1 || fd == -1) {
		log_warnx("unexpected control message", "type=0x%04x",
		    rec->type);
		if (fd != -1)
			close(fd);
		return;
	}
	if (rec->body[0] == IPC_METRICS_LISTEN) {
		if (mx.listen_fd != -1)
			close(mx.listen_fd);
		mx.listen_fd = fd;
		return;
	}
	if (mx.m != NULL) {
		close(fd);
		return;
	}
	if ((mx.m = metrics_map(fd, 0, &why)) == NULL)
		log_warnx("counter region not taken", "error=\"%s\"", why);
}

static const struct proc_ops metrics_ops = {
	.name = "metrics",
	.start = metrics_start,
	.stop = metrics_stop,
	.control = metrics_control,
};

int
main(int argc, char *argv[])
{
	proc_main(argc, argv, IPC_ROLE_METRICS, &metrics_ops);
}
