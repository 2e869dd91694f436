/*
 * ws.c - MQTT over WebSocket in a worker.
 *
 * libwebsockets 4.1 has neither a libevent loop nor an external poll,
 * so it runs on a thread of its own (one per worker, started with the
 * first WebSocket client).  It never listens: the worker accepts on its
 * websocket.bind sockets like on any other, makes a socketpair, keeps
 * one end as an ordinary MQTT connection (conn.c) and hands the client's
 * socket and the other end to the thread.  The thread speaks HTTP, the
 * WebSocket handshake, TLS for wss and the framing, and relays the bytes
 * of binary frames to and from the socketpair.  So sessions, limits,
 * keep-alive and back-pressure are the connection layer's, unchanged.
 *
 * Before any MQTT byte, the thread writes a preamble on the socketpair:
 * 'W', flags (bit 0: TLS), u16 length and the client's TLS identity
 * (certificate CN or PSK identity, for tls.use-identity-as-username).
 * A connection whose relay closes before it is a client that never
 * finished the WebSocket handshake.
 *
 * Threads: the worker puts hand-offs and settings under `mu` and wakes
 * the thread with lws_cancel_service(), the one call libwebsockets
 * allows from another thread.  Everything else of libwebsockets is
 * called on the thread alone.  The thread does not log (the log module
 * belongs to the worker's loop).
 *
 * wss: one TLS vhost per certificate generation.  Its SSL_CTX is set up
 * by common/tls.c from the bundle the supervisor sent (so the key stays
 * out of files the worker cannot read), with the tls.* options; a newer
 * bundle or option makes a new vhost for new clients, and a vhost no
 * client uses any more is destroyed.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <libwebsockets.h>

#include "log.h"
#include "tls.h"
#include "worker.h"

#define WS_QUEUE	512		/* hand-offs waiting for the thread */
#define WS_RX		1024		/* bytes per WebSocket read */
#define WS_HIGH		65536		/* bytes held one way before that
					   side stops being read */
#define WS_TX		4096		/* bytes per WebSocket frame sent */
#define WS_LINGER	10		/* seconds a client has to take the
					   last bytes once the worker closed */
#define WS_STOP_GRACE	2		/* seconds to relay them at a stop */
#define WS_PATH_MAX	256
#define WS_ORIGINS_MAX	2048

/* One client: its WebSocket and our end of its socketpair. */
struct ws_pair {
	struct lws	*ws;
	struct lws	*raw;
	struct ws_vhost	*vh;		/* its TLS vhost; NULL: plain */
	struct buf	 to_raw;	/* from the client, to the worker */
	struct buf	 to_ws;		/* to the client, after LWS_PRE */
	size_t		 ws_sent;	/* of to_ws, already written */
	size_t		 raw_sent;	/* of to_raw, already written */
	uint8_t		 tls;
	uint8_t		 up;		/* handshake done */
	uint8_t		 ws_off;	/* the WebSocket is not read */
	uint8_t		 raw_off;	/* the socketpair is not read */
};

/* A TLS vhost: the context of one certificate generation. */
struct ws_vhost {
	struct lws_vhost	*vh;
	char			 name[32];	/* libwebsockets keeps a
						   pointer to it */
	uint64_t		 users;
	struct ws_vhost		*next;	/* older */
};

struct ws_item {
	int		 fd;		/* the client's socket */
	int		 relay;		/* the thread's end of the pair */
	uint8_t		 tls;
};

struct ws_gate {
	struct lws_context	*ctx;
	struct lws_vhost	*plain;	/* ws:// clients */
	struct ws_vhost		*vhosts; /* newest first */
	struct ws_vhost		*retired; /* destroyed, names still read */
	pthread_t		 thread;
	pthread_mutex_t		 mu;
	/* under mu */
	struct ws_item		 q[WS_QUEUE];
	unsigned		 qhead, qlen;
	int			 stop;	/* 1: relay what is left, 2: now */
	int			 dead;	/* the thread ended on an error */
	char			 path[WS_PATH_MAX];
	char			 origins[WS_ORIGINS_MAX];	/* "a,b"; "" any */
	struct config		 cfg;	/* the tls.* options in force */
	struct buf		 bundle;
	uint64_t		 gen;	/* of cfg and bundle; 0: no wss */
	uint64_t		 tried;	/* the last gen a vhost was made for */
	int			 setup_done;
	/* the thread's */
	char			 my_path[WS_PATH_MAX];
	char			 my_origins[WS_ORIGINS_MAX];
	int			 stopping;
	uint64_t		 npairs;	/* clients it holds */
};

static void
pair_free(struct ws_gate *g, struct ws_pair *p)
{
	buf_free(&p->to_raw);
	buf_free(&p->to_ws);
	free(p);
	g->npairs--;
}

/* Close a wsi from a callback of another one. */
static void
kill_later(struct lws *wsi)
{
	lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
	    LWS_TO_KILL_ASYNC);
}

/* One side of a pair is gone: the other goes too, after its bytes. */
static void
pair_side_gone(struct ws_pair *p, struct lws *wsi)
{
	if (p == NULL)
		return;
	lws_set_opaque_user_data(wsi, NULL);
	if (wsi == p->ws) {
		p->ws = NULL;
		if (p->vh != NULL)
			p->vh->users--;
		/* the client's last bytes (a DISCONNECT) first */
		if (p->raw != NULL && p->to_raw.len > p->raw_sent)
			lws_callback_on_writable(p->raw);
		else if (p->raw != NULL)
			kill_later(p->raw);
	} else if (wsi == p->raw) {
		p->raw = NULL;
		if (p->ws != NULL) {
			if (p->up) {
				/* what the worker sent, then close; a client
				 * that reads nothing more is not waited for */
				lws_callback_on_writable(p->ws);
				lws_set_timeout(p->ws, PENDING_TIMEOUT_USER_OK,
				    WS_LINGER);
			} else
				kill_later(p->ws);
		}
	} else
		return;		/* a failed adoption: not linked yet */
	if (p->ws == NULL && p->raw == NULL)
		pair_free(lws_context_user(lws_get_context(wsi)), p);
}

/* The preamble, once the WebSocket is up. */
static int
send_preamble(struct ws_pair *p, struct lws *wsi)
{
	char	 id[256];
	SSL	*ssl;
	size_t	 n = 0;

	ssl = p->tls ? lws_get_ssl(wsi) : NULL;
	if (ssl != NULL && tls_peer_cn(ssl, id, sizeof(id)) == 0)
		n = strlen(id);
	if (buf_add_u8(&p->to_raw, 'W') == -1 ||
	    buf_add_u8(&p->to_raw, p->tls ? 1 : 0) == -1 ||
	    buf_add_u16(&p->to_raw, (uint16_t)n) == -1 ||
	    buf_add(&p->to_raw, id, n) == -1)
		return -1;
	lws_callback_on_writable(p->raw);
	return 0;
}

/* An adopted client: its socket pair joined on the thread. */
static void
adopt(struct ws_gate *g, const struct ws_item *it, uint64_t gen)
{
	lws_adopt_desc_t	 d;
	struct ws_pair		*p;
	struct ws_vhost		*vh = NULL;

	/* the newest context that could be made (a bundle a reload could
	 * not use leaves the one before in force, as for MQTT over TLS) */
	if (it->tls) {
		vh = g->vhosts;
		if (vh == NULL || gen == 0) {
			/* no usable certificate: refused */
			close(it->fd);
			close(it->relay);
			return;
		}
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		close(it->fd);
		close(it->relay);
		return;
	}
	buf_init(&p->to_raw);
	buf_init(&p->to_ws);
	p->tls = it->tls;
	g->npairs++;
	memset(&d, 0, sizeof(d));
	d.vh = g->plain;
	d.type = LWS_ADOPT_SOCKET;
	d.fd.sockfd = it->relay;
	d.vh_prot_name = "promptmq-relay";
	d.opaque = p;
	if ((p->raw = lws_adopt_descriptor_vhost_via_info(&d)) == NULL) {
		close(it->fd);
		pair_free(g, p);
		return;
	}
	memset(&d, 0, sizeof(d));
	d.vh = vh != NULL ? vh->vh : g->plain;
	d.type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP |
	    (vh != NULL ? LWS_ADOPT_ALLOW_SSL : 0);
	d.fd.sockfd = it->fd;
	d.opaque = p;
	if ((p->ws = lws_adopt_descriptor_vhost_via_info(&d)) == NULL) {
		kill_later(p->raw);	/* its end frees the pair */
		return;
	}
	if (vh != NULL) {
		p->vh = vh;
		vh->users++;
	}
}

static int	 ws_cb(struct lws *, enum lws_callback_reasons, void *, void *,
		    size_t);
static int	 relay_cb(struct lws *, enum lws_callback_reasons, void *,
		    void *, size_t);

/*
 * "mqtt" first: a client that names no subprotocol gets it, and the
 * HTTP part of every connection is its.  "mqttv3.1" as Mosquitto.  The
 * relay is a protocol of the same vhosts (libwebsockets picks a vhost
 * for a request by port, and all of ours have none), and refuses the
 * clients that name it.
 */
static const struct lws_protocols ws_protocols[] = {
	{ "mqtt", ws_cb, 0, WS_RX, 0, NULL, WS_TX + LWS_PRE },
	{ "mqttv3.1", ws_cb, 0, WS_RX, 0, NULL, WS_TX + LWS_PRE },
	{ "promptmq-relay", relay_cb, 0, 0, 0, NULL, WS_TX + LWS_PRE },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static struct lws_vhost *
vhost_new(struct ws_gate *g, const char *name,
    const struct lws_protocols *protocols, uint64_t options)
{
	struct lws_context_creation_info	 vi;

	memset(&vi, 0, sizeof(vi));
	vi.vhost_name = name;
	vi.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	vi.protocols = protocols;
	vi.options = options;
	vi.user = g;
	vi.alpn = "http/1.1";	/* no HTTP/2: one WebSocket per connection */
	return lws_create_vhost(g->ctx, &vi);
}

/*
 * A vhost given up: libwebsockets destroys it later and looks at its
 * name until then, so the record (which holds the name) stays until the
 * context is gone.
 */
static void
retire(struct ws_gate *g, struct ws_vhost *vh)
{
	vh->next = g->retired;
	g->retired = vh;
}

/* A TLS vhost for the newest generation (under mu). */
static void
make_vhost(struct ws_gate *g)
{
	struct ws_vhost	*vh;

	if ((vh = calloc(1, sizeof(*vh))) == NULL)
		return;
	snprintf(vh->name, sizeof(vh->name), "wss-%llu",
	    (unsigned long long)g->gen);
	/* ws_cb sets the context up from the bundle, within this call */
	g->setup_done = 0;
	vh->vh = vhost_new(g, vh->name, ws_protocols,
	    LWS_SERVER_OPTION_CREATE_VHOST_SSL_CTX |
	    LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT);
	if (vh->vh == NULL || !g->setup_done) {
		if (vh->vh != NULL)
			lws_vhost_destroy(vh->vh);
		retire(g, vh);
		return;
	}
	vh->next = g->vhosts;
	g->vhosts = vh;
}

/* Old TLS vhosts no client uses any more. */
static void
sweep_vhosts(struct ws_gate *g)
{
	struct ws_vhost	**pp, *vh;

	if (g->vhosts == NULL)
		return;
	for (pp = &g->vhosts->next; (vh = *pp) != NULL; ) {
		if (vh->users > 0) {
			pp = &vh->next;
			continue;
		}
		*pp = vh->next;
		lws_vhost_destroy(vh->vh);
		retire(g, vh);
	}
}

/* Woken by the worker: settings, hand-offs, stop. */
static void
drain(struct ws_gate *g)
{
	struct ws_item	 items[WS_QUEUE];
	uint64_t	 gen;
	unsigned	 n, i;

	pthread_mutex_lock(&g->mu);
	for (n = 0; n < g->qlen; n++)
		items[n] = g->q[(g->qhead + n) % WS_QUEUE];
	g->qhead = (g->qhead + g->qlen) % WS_QUEUE;
	g->qlen = 0;
	memcpy(g->my_path, g->path, sizeof(g->my_path));
	memcpy(g->my_origins, g->origins, sizeof(g->my_origins));
	g->stopping = g->stop;
	gen = g->gen;
	if (g->gen != 0 && g->gen != g->tried) {
		g->tried = g->gen;
		make_vhost(g);
	}
	pthread_mutex_unlock(&g->mu);
	sweep_vhosts(g);
	for (i = 0; i < n; i++) {
		if (g->stopping) {
			close(items[i].fd);
			close(items[i].relay);
		} else
			adopt(g, &items[i], gen);
	}
}

/*
 * Stop or restart reading one side; *off keeps the state, so only
 * changes reach libwebsockets (the writable callbacks restart reading
 * after every write, most often of a side never stopped).
 */
static void
flow(struct lws *wsi, uint8_t *off, int on)
{
	if (wsi == NULL || *off == !on)
		return;
	*off = !on;
	lws_rx_flow_control(wsi, on);
}

/*
 * Write what b holds after `head` bytes, from *sent on: a piece at a
 * time, and only into a socket with room.  What libwebsockets 4.1 has
 * to keep for later makes it flush before closing, and a peer that is
 * gone meanwhile then has it read that end of stream over and over.
 * -1: failed; 1: more to write (the next writable callback is asked
 * for); 0: all written (b emptied).
 */
static int
write_some(struct lws *wsi, struct buf *b, size_t head, size_t *sent,
    enum lws_write_protocol wp)
{
	size_t	 len;

	if (b->len <= head + *sent)
		return 0;
	if (lws_send_pipe_choked(wsi)) {
		lws_callback_on_writable(wsi);
		return 1;
	}
	len = b->len - head - *sent;
	if (len > WS_TX)
		len = WS_TX;
	if (lws_write(wsi, b->data + head + *sent, len, wp) < (int)len)
		return -1;
	*sent += len;
	if (b->len > head + *sent) {
		lws_callback_on_writable(wsi);
		return 1;
	}
	buf_reset(b);
	*sent = 0;
	return 0;
}

/*
 * Bytes read from side `from`, held in b for the other side; past
 * WS_HIGH held, `from` is read no more until b is written (write_some
 * and flow() in the writable callbacks).
 */
static int
hold(struct buf *b, size_t headroom, const void *in, size_t len,
    struct lws *from, uint8_t *from_off)
{
	if (b->len == 0 && headroom > 0 && buf_add_zero(b, headroom) == -1)
		return -1;
	if (buf_add(b, in, len) == -1)
		return -1;
	if (b->len >= WS_HIGH)
		flow(from, from_off, 0);
	return 0;
}

/* websocket.origins: a request without Origin is no browser's. */
static int
origin_allowed(struct ws_gate *g, struct lws *wsi)
{
	char		 origin[512];
	const char	*p;
	size_t		 len;
	int		 n;

	if (g->my_origins[0] == '\0' ||
	    lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0)
		return 1;
	if ((n = lws_hdr_copy(wsi, origin, sizeof(origin),
	    WSI_TOKEN_ORIGIN)) <= 0)
		return 0;
	for (p = g->my_origins; *p != '\0'; p += len + (p[len] == ',')) {
		len = strcspn(p, ",");
		if (len == (size_t)n && strncasecmp(p, origin, len) == 0)
			return 1;
	}
	return 0;
}

/* The client's WebSocket (and, on protocol 0, its HTTP part). */
static int
ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct ws_gate	*g = lws_context_user(lws_get_context(wsi));
	struct ws_pair	*p = lws_get_opaque_user_data(wsi);
	char		 uri[WS_PATH_MAX + 1], err[256];
	int		 n;

	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* make_vhost(), under mu: `user` is the vhost's SSL_CTX,
		 * `in` the vhost */
		g = lws_get_vhost_user(in);
		if (tls_ctx_setup(user, g->bundle.data, g->bundle.len, &g->cfg,
		    err, sizeof(err)) == -1)
			return 1;
		/* libwebsockets' SNI callback would move a client that names
		 * an older vhost ("wss-1") to that generation's context */
		SSL_CTX_set_tlsext_servername_callback((SSL_CTX *)user, NULL);
		g->setup_done = 1;
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		drain(g);	/* once per protocol: the second finds nothing */
		return 0;
	case LWS_CALLBACK_HTTP:
		/* a plain HTTP request: nothing is served but the WebSocket */
		if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
			return -1;
		return lws_http_transaction_completed(wsi);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* the upgrade is for websocket.path only */
		n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
		if (n <= 0 || strcmp(uri, g->my_path) != 0)
			return 1;
		return !origin_allowed(g, wsi);
	case LWS_CALLBACK_ESTABLISHED:
		if (p == NULL || p->raw == NULL)
			return -1;
		p->up = 1;
		if (send_preamble(p, wsi) == -1)
			return -1;
		if (p->to_ws.len > 0)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (p == NULL || p->raw == NULL)
			return -1;
		if (!lws_frame_is_binary(wsi)) {
			/* MQTT-6.0.0-1: MQTT travels in binary frames */
			lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
			    (unsigned char *)"text frame", 10);
			return -1;
		}
		if (hold(&p->to_raw, 0, in, len, wsi, &p->ws_off) == -1)
			return -1;
		lws_callback_on_writable(p->raw);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (p == NULL || (n = write_some(wsi, &p->to_ws, LWS_PRE,
		    &p->ws_sent, LWS_WRITE_BINARY)) == -1)
			return -1;
		if (n == 1)
			return 0;
		flow(p->raw, &p->raw_off, 1);
		if (p->raw == NULL) {
			/* the worker closed the connection: so do we */
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			return -1;
		}
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		pair_side_gone(p, wsi);
		return 0;
	default:
		return 0;
	}
}

/* Our end of a client's socketpair: MQTT bytes to and from the worker. */
static int
relay_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct ws_gate	*g = lws_context_user(lws_get_context(wsi));
	struct ws_pair	*p = lws_get_opaque_user_data(wsi);
	int		 n;

	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		drain(g);
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return 1;	/* a client that asks for the relay */
	case LWS_CALLBACK_RAW_RX:
		if (p == NULL || p->ws == NULL)
			return -1;
		if (hold(&p->to_ws, LWS_PRE, in, len, wsi, &p->raw_off) == -1)
			return -1;
		if (p->up)
			lws_callback_on_writable(p->ws);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (p == NULL || (n = write_some(wsi, &p->to_raw, 0,
		    &p->raw_sent, LWS_WRITE_RAW)) == -1)
			return -1;
		if (n == 1)
			return 0;
		if (p->ws == NULL)
			return -1;	/* the client left: all it sent is passed on */
		flow(p->ws, &p->ws_off, 1);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		pair_side_gone(p, wsi);
		return 0;
	default:
		return 0;
	}
}

static void *
ws_thread(void *arg)
{
	struct ws_gate	*g = arg;

	/* at a stop, the worker has closed its ends: what they wrote last
	 * (5.0: DISCONNECT 0x8B) is relayed until the clients are gone, or
	 * until the worker says "now" */
	while (g->stopping == 0 || (g->stopping == 1 && g->npairs > 0))
		if (lws_service(g->ctx, 0) < 0) {
			/* the worker refuses WebSocket clients from now on;
			 * the context is destroyed after the join */
			pthread_mutex_lock(&g->mu);
			g->dead = 1;
			pthread_mutex_unlock(&g->mu);
			return NULL;
		}
	lws_context_destroy(g->ctx);
	g->ctx = NULL;
	return NULL;
}

/* Settings from the worker's configuration and TLS bundle. */
static void
configure(struct worker *w, struct ws_gate *g)
{
	const struct config	*cfg = &w->proc->cfg;
	struct config		 copy;
	int			 tls = config_num(cfg, OPT_websocket_tls) != 0;

	pthread_mutex_lock(&g->mu);
	snprintf(g->origins, sizeof(g->origins), "%s",
	    config_str(cfg, OPT_websocket_origins));
	snprintf(g->path, sizeof(g->path), "%s",
	    config_str(cfg, OPT_websocket_path));
	if (tls && w->tls_ctx != NULL && config_copy(&copy, cfg) == 0) {
		config_free(&g->cfg);
		g->cfg = copy;
		buf_reset(&g->bundle);
		if (buf_add(&g->bundle, w->tls_bundle.data,
		    w->tls_bundle.len) == 0)
			g->gen++;
		else
			g->gen = 0;
	} else
		g->gen = 0;
	pthread_mutex_unlock(&g->mu);
	lws_cancel_service(g->ctx);
}

static void
gate_free(struct ws_gate *g)
{
	struct ws_vhost	*vh;

	if (g->ctx != NULL)
		lws_context_destroy(g->ctx);
	while ((vh = g->vhosts) != NULL) {	/* the context had them */
		g->vhosts = vh->next;
		free(vh);
	}
	while ((vh = g->retired) != NULL) {
		g->retired = vh->next;
		free(vh);
	}
	pthread_mutex_destroy(&g->mu);
	config_free(&g->cfg);
	if (g->bundle.data != NULL)
		OPENSSL_cleanse(g->bundle.data, g->bundle.cap);
	buf_free(&g->bundle);
	free(g);
}

/* The context and its thread, with the first WebSocket client. */
static struct ws_gate *
gate_start(struct worker *w)
{
	static struct log_ratelimit		 rl;
	struct lws_context_creation_info	 info;
	struct ws_gate				*g;
	sigset_t				 all, old;
	int					 rv;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	buf_init(&g->bundle);
	if (pthread_mutex_init(&g->mu, NULL) != 0) {
		free(g);
		return NULL;
	}
	(void)config_defaults(&g->cfg);
	lws_set_log_level(0, NULL);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
	    LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.gid = info.uid = -1;
	info.user = g;
	/* HTTP headers of this many clients at once; more wait */
	info.max_http_header_pool = 256;
	info.timeout_secs = (unsigned)(config_num(&w->proc->cfg,
	    OPT_server_connect_timeout) + 999) / 1000;
	if ((g->ctx = lws_create_context(&info)) == NULL ||
	    (g->plain = vhost_new(g, "ws", ws_protocols, 0)) == NULL) {
		log_limited(&rl, LOG_LEVEL_ERROR, "cannot start the WebSocket "
		    "library", "");
		gate_free(g);
		return NULL;
	}
	configure(w, g);
	/* signals stay the loop's */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rv = pthread_create(&g->thread, NULL, ws_thread, g);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rv != 0) {
		log_limited(&rl, LOG_LEVEL_ERROR, "cannot start the WebSocket "
		    "thread", "error=\"%s\"", strerror(rv));
		gate_free(g);
		return NULL;
	}
	log_info("WebSocket thread started", "library=%s",
	    lws_get_library_version());
	return g;
}

int
ws_hand_off(struct worker *w, int fd, int relay, int tls)
{
	static struct log_ratelimit	 rl;
	struct ws_gate			*g;
	int				 full, dead;

	if (w->ws == NULL && (w->ws = gate_start(w)) == NULL)
		goto refuse;
	g = w->ws;
	pthread_mutex_lock(&g->mu);
	dead = g->dead;
	full = g->qlen == WS_QUEUE || dead;
	if (!full) {
		g->q[(g->qhead + g->qlen) % WS_QUEUE] = (struct ws_item){
			fd, relay, (uint8_t)tls };
		g->qlen++;
	}
	pthread_mutex_unlock(&g->mu);
	if (full) {
		log_limited(&rl, LOG_LEVEL_WARN, "WebSocket client refused",
		    "reason=\"%s\"", dead ? "the WebSocket thread failed" :
		    "clients arrive faster than they are taken");
		goto refuse;
	}
	lws_cancel_service(g->ctx);
	return 0;
refuse:
	close(fd);
	close(relay);
	return -1;
}

void
ws_reload(struct worker *w, const enum option_id *ids, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (ids[i] == OPT_websocket_path ||
		    ids[i] == OPT_websocket_origins ||
		    ids[i] == OPT_websocket_tls)
			break;
	if (i == n)
		return;
	/* without a thread yet, it starts with these */
	if (w->ws != NULL)
		configure(w, w->ws);
	log_info("WebSocket settings applied", "path=%s origins=\"%s\" "
	    "tls=%d", config_str(&w->proc->cfg, OPT_websocket_path),
	    config_str(&w->proc->cfg, OPT_websocket_origins),
	    (int)config_num(&w->proc->cfg, OPT_websocket_tls));
}

void
ws_tls_changed(struct worker *w)
{
	if (w->ws != NULL)
		configure(w, w->ws);
}

void
ws_stop(struct worker *w)
{
	struct ws_gate	*g = w->ws;
	struct timespec	 until;

	if (g == NULL)
		return;
	/* under mu: the thread destroys the context only after it saw
	 * `stop`, which it reads under mu */
	pthread_mutex_lock(&g->mu);
	g->stop = 1;
	lws_cancel_service(g->ctx);
	pthread_mutex_unlock(&g->mu);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WS_STOP_GRACE;
	if (pthread_timedjoin_np(g->thread, NULL, &until) != 0) {
		pthread_mutex_lock(&g->mu);
		g->stop = 2;
		lws_cancel_service(g->ctx);
		pthread_mutex_unlock(&g->mu);
		pthread_join(g->thread, NULL);
	}
	gate_free(g);
	w->ws = NULL;
}

/*
 * The thread's preamble at the start of c->rare->in: 1 when it was taken
 * (its tls_cn set when the identity is the user name), 0 while it is
 * incomplete, -1 when the connection was closed.
 */
int
ws_preamble(struct conn *c)
{
	const uint8_t		*d = c->rare->in.data;
	struct conn_rare	*r;
	size_t		 n;

	if (c->rare->in.len < 4)
		return 0;
	n = buf_load_u16(d + 2);
	if (d[0] != 'W' || (d[1] & ~1) != 0 || n > 255) {
		conn_close(c, NO_REASON, "bad WebSocket relay preamble");
		return -1;
	}
	if (c->rare->in.len < 4 + n)
		return 0;
	if ((d[1] & 1) && config_num(&c->w->proc->cfg,
	    OPT_tls_use_identity_as_username)) {
		if (n == 0 || (r = conn_rare(c)) == NULL ||
		    (r->tls_cn = strndup((const char *)d + 4, n)) == NULL) {
			conn_close(c, NO_REASON, "no user name in the client "
			    "certificate");
			return -1;
		}
	}
	c->ws = (d[1] & 1) ? 2 : 1;	/* d is c->rare->in's: before consuming */
	buf_consume(&conn_rare(c)->in, 4 + n);	/* made: it held them */
	c->ws_pre = 0;
	if (c->rare->in.len == 0)
		buf_free(&conn_rare(c)->in);	/* a read's worth, for 4 bytes */
	return 1;
}

/* A relay end the worker is done with, until the thread closes its own. */
static void
linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct event	*ev = arg;
	char		 sink[4096];
	ssize_t		 n;

	if (what & EV_READ) {
		/* the client's last bytes: nobody reads them now */
		while ((n = recv(fd, sink, sizeof(sink), 0)) > 0)
			;
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
	}
	event_free(ev);
	close(fd);
}

/*
 * The end of a WebSocket client's connection: 1 when the descriptor was
 * taken (it must not be closed), 0 for other connections.  Closing it
 * at once would show the thread a hang-up, on which libwebsockets closes
 * a relay whose reading is stopped (back-pressure) without reading what
 * the worker wrote last (a DISCONNECT);
 * a shutdown shows it an end of stream after those bytes instead, and
 * the descriptor is closed when the thread has closed its end (or after
 * WS_LINGER seconds).
 */
int
ws_conn_end(struct conn *c)
{
	struct timeval	 tv = { WS_LINGER, 0 };
	struct event	*ev;

	if (!c->ws && !c->ws_pre)
		return 0;
	if (shutdown(c->fd, SHUT_WR) == -1 || (ev = event_new(c->w->base,
	    c->fd, EV_READ | EV_PERSIST, linger_cb,
	    event_self_cbarg())) == NULL)
		return 0;
	if (event_add(ev, &tv) == -1) {
		event_free(ev);
		return 0;
	}
	return 1;
}
