/*
 * conn.c - client connections of a worker: bytes in, packets decoded and
 * dispatched, bytes out, time-outs, and closing.
 *
 * One state machine per connection (worker.h, enum conn_state).  Input
 * is read into the loop's scratch buffer and decoded in place; only an
 * incomplete packet is copied into the connection's own buffer, so an
 * idle connection holds no buffer at all.  Handlers may have to wait for
 * IPC (the registry at CONNECT, the other workers before a SUBACK, the
 * log before a PUBACK): they never block; a connection that must not be
 * read meanwhile has its read event removed and its undecoded bytes kept.
 *
 * Output is appended to the connection's buffer and written once per
 * loop turn for every connection that has some (the flush list), so a
 * turn that delivers many messages to one client costs one write.
 *
 * A closed connection leaves the lists at once but is freed only at the
 * end of the turn: handlers further up the stack may still hold it.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "addr.h"
#include "ipc_link.h"
#include "log.h"
#include "scram.h"
#include "worker.h"

/* Output beyond this is written before more input is taken. */
#define OUT_PAUSE	(1u << 20)
/* An output buffer this small is freed once written (a few packets) */
#define OUT_KEEP_MIN	512
/* sockets a worker accepts beyond mqtt.max-connections (see conn_accept) */
#define ACCEPT_HEADROOM	64

const char *
conn_addr(const struct conn *c, char *out, size_t len)
{
	if (c->peer.sa.sa_family == AF_UNSPEC) {
		snprintf(out, len, "-");
		return out;
	}
	return addr_format(&c->peer.sa, out, len);
}

static void
schedule_flush(struct worker *w)
{
	if (!w->flush_pending) {
		w->flush_pending = 1;
		event_active(w->flush_ev, 0, 0);
	}
}

/* The connection's output buffer; what is added is written this turn. */
struct buf *
conn_out(struct conn *c)
{
	if (!c->dirty && c->state != CONN_CLOSING) {
		c->dirty = 1;
		c->dirty_next = c->w->dirty;
		c->w->dirty = c;
		schedule_flush(c->w);
	}
	return &c->out;
}

const struct conn_rare	conn_rare_none;

/* The connection's rarely used fields, made now if they were not; NULL
 * when there is no memory for them. */
struct conn_rare *
conn_rare(struct conn *c)
{
	struct conn_rare	*r;

	if (c->rare != &conn_rare_none)
		return (struct conn_rare *)c->rare;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	c->rare = r;
	return r;
}

void
conn_send_packet(struct conn *c, const struct mqtt_packet *pkt)
{
	static struct log_ratelimit	 rl;
	struct buf			*out = conn_out(c);
	struct mqtt_packet		 bare;
	size_t				 before = out->len;

	if (mqtt_encode(out, pkt, c->level) == -1) {
		log_limited(&rl, LOG_LEVEL_ERROR, "cannot encode packet",
		    "type=%s client=%.*s", mqtt_type_name(pkt->type),
		    (int)c->client_id_len, c->client_id ? c->client_id : "");
		return;
	}
	/* MQTT 5: never more than the client's Maximum Packet Size
	 * (MQTT-3.1.2-24); a DISCONNECT goes without its Reason String
	 * then (MQTT-3.14.2-3); anything else not at all, and since the
	 * exchange cannot go on without it, the connection ends */
	if (c->max_out_packet && out->len - before > c->max_out_packet) {
		buf_truncate(out, before);
		if (pkt->type == MQTT_DISCONNECT && pkt->disconnect.props.present) {
			bare = *pkt;
			memset(&bare.disconnect.props, 0,
			    sizeof(bare.disconnect.props));
			conn_send_packet(c, &bare);
			return;
		}
		log_limited(&rl, LOG_LEVEL_WARN, "packet not sent: larger than "
		    "the client's maximum packet size", "type=%s client=%.*s "
		    "maximum=%u", mqtt_type_name(pkt->type),
		    (int)c->client_id_len, c->client_id ? c->client_id : "",
		    c->max_out_packet);
		/* no DISCONNECT before the CONNACK: closed as Mosquitto
		 * closes */
		if (pkt->type != MQTT_DISCONNECT)
			conn_close(c, pkt->type == MQTT_CONNACK ? NO_REASON :
			    MQTT_RC_PACKET_TOO_LARGE, "a packet larger than the "
			    "client's maximum packet size");
		return;
	}
	stats_sent(c->w, pkt->type, out->len - before);
}

void
conn_send_disconnect(struct conn *c, uint8_t reason)
{
	struct mqtt_packet	 pkt;

	if (c->level != MQTT_LEVEL_5)
		return;
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_DISCONNECT;
	pkt.disconnect.reason = reason;
	conn_send_packet(c, &pkt);
}

/* Write what the connection has; 0 also when the rest has to wait. */
static int
write_out(struct conn *c)
{
	ssize_t	 n;
	int	 st;

	while (c->out.len > 0) {
		if (c->ssl != NULL) {
			if (c->rare->tls_hs)
				return 0;	/* after the handshake */
			if ((n = tls_write(c, c->out.data, c->out.len, &st)) ==
			    -1) {
				if (st == TLS_WANT_READ)
					conn_rare(c)->tls_write_wr = 1;
				return st == TLS_FAILED ? -1 : 0;
			}
		} else if ((n = send(c->fd, c->out.data, c->out.len,
		    MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		buf_consume(&c->out, (size_t)n);
	}
	c->out_msgs = 0;
	/* a small buffer goes now: an idle connection keeps none, and the
	 * next write takes the same memory back; a large one goes now, or
	 * at the tick once its connection is idle */
	if (c->out.cap <= OUT_KEEP_MIN || c->out.cap > 4 * WORKER_READ_CHUNK)
		buf_free(&c->out);
	return 0;
}

static void conn_writable(evutil_socket_t, short, void *);

/* Wait until the socket takes more output. */
static int
want_write(struct conn *c)
{
	/* TLS that must read before it writes: the read event resumes it */
	if (c->rare->tls_write_wr && !c->rare->tls_read_ww && !c->rare->tls_hs)
		return 0;
	if (c->wev == NULL && (c->wev = event_new(c->w->base, c->fd,
	    EV_WRITE, conn_writable, c)) == NULL)
		return -1;
	c->want_write = 1;
	return event_add(c->wev, NULL);
}

static int tls_handshake_step(struct conn *);

static void
conn_writable(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;

	c->want_write = 0;
	if (c->ssl != NULL) {
		if (c->rare->tls_hs) {
			/* the handshake's reply went out: read what follows */
			if (tls_handshake_step(c))
				event_active(&c->rev, EV_READ, 1);
			return;
		}
		if (c->rare->tls_read_ww) {
			conn_rare(c)->tls_read_ww = 0;
			event_active(&c->rev, EV_READ, 1);
		}
	}
	if (write_out(c) == -1) {
		conn_close(c, NO_REASON, "write failed");
		return;
	}
	if (c->out.len > 0)
		(void)want_write(c);	/* it exists: adding cannot fail */
	else
		conn_pause(c, PAUSE_OUTPUT, 0);
}

static void
free_subs(struct conn_sub *s)
{
	struct conn_sub	*next;

	for (; s; s = next) {
		next = s->next;
		free(s);
	}
}

/* The rare fields and all they hold. */
static void
rare_free(struct conn *c)
{
	struct conn_rare	*r;

	if (c->rare == &conn_rare_none)
		return;
	conn_aliases_free(c);
	retained_free(c);
	r = conn_rare(c);
	scram_end(r->scram);
	buf_free(&r->in);
	free(r->acks);
	free(r->q2in);
	free_subs(r->granted_subs);
	free(r->will);
	free(r);
	c->rare = &conn_rare_none;
}

static void
free_conn(struct conn *c)
{
	deliver_free_queue(c);
	buf_free(&c->out);
	free(c->client_id);
	free(c->username);
	free(c->inflight);
	rare_free(c);
	free(c);
}

/* End of the turn: write what the turn produced, free what was closed. */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct conn	*c, *next;

	w->flush_pending = 0;
	session_acks_flush(w);
	for (c = w->dirty, w->dirty = NULL; c; c = next) {
		next = c->dirty_next;
		c->dirty = 0;
		c->dirty_next = NULL;
		if (c->state == CONN_CLOSING || c->want_write)
			continue;
		if (write_out(c) == -1) {
			conn_close(c, NO_REASON, "write failed");
			continue;
		}
		if (c->out.len > 0) {
			if (want_write(c) == -1) {
				conn_close(c, NO_REASON, "out of memory");
				continue;
			}
			/* a client that does not read stops being read */
			if (c->out.len > OUT_PAUSE)
				conn_pause(c, PAUSE_OUTPUT, 1);
		}
	}
	for (c = w->dead, w->dead = NULL; c; c = next) {
		next = c->dead_next;
		free_conn(c);
	}
}

static void protocol_error(struct conn *, uint8_t reason, const char *what);

static void
dispatch(struct conn *c, const struct mqtt_packet *pkt,
    const struct mqtt_result *res, const uint8_t *raw)
{
	struct mqtt_packet	 resp;

	c->w->stats.traffic[METRICS_PACKETS_IN][pkt->type & 15]++;
	c->w->stats.traffic[METRICS_BYTES_IN][pkt->type & 15] += res->size;
	if (c->state == CONN_NEW && pkt->type != MQTT_CONNECT) {
		conn_close(c, NO_REASON, "first packet is not CONNECT");
		return;
	}
	/* between CONNECT and CONNACK, only the exchange (4.12) */
	if (c->state == CONN_AUTH && pkt->type != MQTT_AUTH &&
	    pkt->type != MQTT_DISCONNECT) {
		protocol_error(c, MQTT_RC_PROTOCOL_ERROR, "a packet before "
		    "the authentication finished");
		return;
	}
	switch (pkt->type) {
	case MQTT_CONNECT:
		if (c->state != CONN_NEW) {
			protocol_error(c, MQTT_RC_PROTOCOL_ERROR,
			    "second CONNECT");
			return;
		}
		connect_handle(c, pkt, res);
		break;
	case MQTT_PUBLISH:
		publish_handle(c, pkt, raw, res->size);
		break;
	case MQTT_PUBACK:
		puback_handle(c, pkt);
		break;
	case MQTT_SUBSCRIBE:
		subscribe_handle(c, pkt);
		break;
	case MQTT_UNSUBSCRIBE:
		unsubscribe_handle(c, pkt);
		break;
	case MQTT_PINGREQ:
		memset(&resp, 0, sizeof(resp));
		resp.type = MQTT_PINGRESP;
		conn_send_packet(c, &resp);
		break;
	case MQTT_DISCONNECT:
		/* a session that was to end with the connection cannot be
		 * made to outlive it now (MQTT-3.14.2-2) */
		if (mqtt_props_has(&pkt->disconnect.props,
		    MQTT_PROP_SESSION_EXPIRY_INTERVAL)) {
			if (c->connect_expiry == 0 &&
			    pkt->disconnect.props.session_expiry_interval != 0) {
				protocol_error(c, MQTT_RC_PROTOCOL_ERROR,
				    "session expiry set in DISCONNECT after "
				    "0 in CONNECT");
				return;
			}
			c->expiry = pkt->disconnect.props.session_expiry_interval;
		}
		/* only 0x00 drops the will (MQTT-3.1.2-8): 0x04 asks for
		 * it, and so does any error a client reports */
		c->normal_close = pkt->disconnect.reason ==
		    MQTT_RC_NORMAL_DISCONNECTION;
		conn_close(c, NO_REASON, "client disconnected");
		break;
	case MQTT_PUBREC:
		pubrec_handle(c, pkt);
		break;
	case MQTT_PUBREL:
		pubrel_handle(c, pkt);
		break;
	case MQTT_PUBCOMP:
		pubcomp_handle(c, pkt);
		break;
	case MQTT_AUTH:
		auth_packet(c, pkt);
		break;
	default:
		protocol_error(c, MQTT_RC_PROTOCOL_ERROR, "unexpected packet");
		break;
	}
}

static void
protocol_error(struct conn *c, uint8_t reason, const char *what)
{
	c->w->stats.protocol_errors++;
	if (c->state == CONN_ACTIVE)
		conn_close(c, reason, what);
	else
		conn_close(c, NO_REASON, what);
}

/*
 * A CONNECT that could not be decoded gets a CONNACK only where
 * Mosquitto 2.0 sends one, as client suites expect; otherwise the
 * connection is closed without a word, which every version allows
 * (3.1.1 4.8, 5.0 4.13.1):
 * - a protocol level that is not its name's (MQTT 3 or 6, MQIsdp 4):
 *   return code 1 in the 3.x form, whatever the level, as an older
 *   server would answer a newer client (5.0 [MQTT-3.1.2-2] allows
 *   either form);
 * - a 3.x client identifier the level refuses: return code 2
 *   (3.1.1 [MQTT-3.1.3-9]).
 * A protocol name that is neither MQTT nor MQIsdp (res->level 0) is not
 * MQTT at all: closed ([MQTT-3.1.2-1] of 3.1.1).
 */
static void
connect_refused(struct conn *c, const struct mqtt_result *res)
{
	struct mqtt_packet	 pkt;
	int			 code;

	if (res->level == 0)
		return;
	if (res->reason != MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION &&
	    (res->level >= MQTT_LEVEL_5 ||
	    res->reason != MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID))
		return;
	if ((code = mqtt_connack_v3_code(res->reason)) < 0)
		return;
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNACK;
	pkt.connack.reason = (uint8_t)code;
	c->level = res->level == MQTT_LEVEL_31 ? MQTT_LEVEL_31 : MQTT_LEVEL_311;
	conn_send_packet(c, &pkt);
}

/* Decode and handle every complete packet; returns the bytes used. */
static size_t
process(struct conn *c, const uint8_t *data, size_t len)
{
	static struct log_ratelimit	 rl;
	struct mqtt_decode_opts		 opts;
	struct mqtt_packet		 pkt;
	struct mqtt_result		 res;
	size_t				 off = 0;
	int				 r;
	char				 addr[64];

	memset(&opts, 0, sizeof(opts));
	opts.direction = MQTT_TO_SERVER;
	opts.max_packet_size = (uint32_t)config_num(&c->w->proc->cfg,
	    OPT_mqtt_max_packet_size);
	opts.max_topic_levels = (uint32_t)config_num(&c->w->proc->cfg,
	    OPT_mqtt_max_topic_levels);
	c->w->rx_mono_us = (uint64_t)clock_mono_us();
	c->w->rx_wall_ms = 0;
	while (off < len && c->state != CONN_CLOSING && !c->paused &&
	    !c->w->ipc_paused) {
		opts.level = c->level;
		r = mqtt_decode(data + off, len - off, &opts, &pkt, &res);
		if (r == MQTT_DECODE_MORE)
			break;
		if (r == MQTT_DECODE_ERROR) {
			log_limited(&rl, LOG_LEVEL_NOTICE, "malformed packet",
			    "addr=%s client=%.*s type=%s reason=0x%02x "
			    "what=\"%s\"", conn_addr(c, addr, sizeof(addr)),
			    (int)c->client_id_len,
			    c->client_id ? c->client_id : "",
			    mqtt_type_name(res.type), res.reason, res.what);
			if (c->state == CONN_NEW && res.type == MQTT_CONNECT)
				connect_refused(c, &res);
			protocol_error(c, res.reason, res.what);
			break;
		}
		c->last_rx = worker_mono_ms(c->w);
		dispatch(c, &pkt, &res, data + off);
		off += res.size;
	}
	c->w->rx_mono_us = 0;
	return off;
}

/* Take the bytes kept in c->rare->in, if the state allows. */
static void
process_kept(struct conn *c)
{
	size_t	 used;

	if (c->rare->in.len == 0 || (c->ws_pre && ws_preamble(c) != 1) ||
	    c->rare->in.len == 0)
		return;
	used = process(c, c->rare->in.data, c->rare->in.len);
	if (c->state != CONN_CLOSING)
		buf_consume(&conn_rare(c)->in, used);	/* made: it held them */
}

/* Reading resumes: first the bytes kept from before. */
static void
read_again(struct conn *c)
{
	/* the client's silence while we did not read is ours */
	c->last_rx = clock_mono_ms();
	event_add(&c->rev, NULL);
	process_kept(c);
	/* bytes decrypted before the pause are not on the socket any more */
	if (tls_has_pending(c) && c->state != CONN_CLOSING && !c->paused)
		event_active(&c->rev, EV_READ, 1);
}

/*
 * Stop or restart reading a connection for one reason; it is read when
 * no reason holds and the IPC path is not congested.  Restarting first
 * takes the bytes kept from before.
 */
void
conn_pause(struct conn *c, uint8_t reason, int on)
{
	uint8_t	 before = c->paused;

	if (c->state == CONN_CLOSING)
		return;
	if (on)
		c->paused |= reason;
	else
		c->paused &= (uint8_t)~reason;
	if (c->w->ipc_paused || (before != 0) == (c->paused != 0))
		return;
	if (c->paused)
		event_del(&c->rev);
	else
		read_again(c);
}

/*
 * One step of a TLS handshake; 1 when it is done (reading may go on),
 * 0 while it waits (its event armed) or when it failed (closed).
 */
static int
tls_handshake_step(struct conn *c)
{
	switch (tls_handshake(c)) {
	case TLS_DONE:
		/* a reply that waited for the handshake */
		if (c->out.len > 0)
			(void)conn_out(c);	/* written at the end of the turn */
		return 1;
	case TLS_WANT_WRITE:
		if (want_write(c) == -1)
			conn_close(c, NO_REASON, "out of memory");
		return 0;
	case TLS_WANT_READ:
		return 0;
	default:
		conn_close(c, NO_REASON, errno == EACCES ?
		    "no user name in the client certificate" :
		    "TLS handshake failed");
		return 0;
	}
}

/* recv() for either kind of connection: -1 with EAGAIN to wait. */
static ssize_t
conn_recv(struct conn *c, void *dst, size_t len)
{
	ssize_t	 n = -1;
	size_t	 got = 0;
	int	 st = TLS_WANT_READ;

	if (c->ssl == NULL)
		return recv(c->fd, dst, len, 0);
	/*
	 * SSL_read gives one record at a time, and a client that writes
	 * each packet on its own sends records of one packet: reading on
	 * until OpenSSL has no more makes one turn of the loop take what
	 * one recv() would have taken, not a packet.  The end or an error
	 * that stops the loop after some bytes is seen again at the next
	 * call; a wait for a write is armed now.
	 */
	while (got < len) {
		if ((n = tls_read(c, (uint8_t *)dst + got, len - got, &st)) <= 0)
			break;
		got += (size_t)n;
	}
	if (n < 0 && st == TLS_WANT_WRITE) {
		/* a key update or ticket to send first */
		conn_rare(c)->tls_read_ww = 1;
		if (want_write(c) == -1 && got == 0)
			return -1;
	}
	if (got > 0)
		return (ssize_t)got;
	if (n >= 0)
		return n;
	if (st != TLS_FAILED)
		errno = EAGAIN;
	return -1;
}

static void read_some(struct conn *, struct worker *);

static void
conn_readable(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*c = arg;
	struct worker	*w = c->w;

	if (c->ssl != NULL) {
		/* a write that waited for the peer's bytes */
		if (c->rare->tls_write_wr && !c->rare->tls_hs) {
			conn_rare(c)->tls_write_wr = 0;
			(void)conn_out(c);	/* written at the end of the turn */
		}
		if (c->rare->tls_hs && !tls_handshake_step(c))
			return;
	}
	/* activated by hand (TLS) while reading stopped: later */
	if (c->paused || w->ipc_paused || c->state == CONN_CLOSING)
		return;
	read_some(c, w);
	/*
	 * OpenSSL may hold more than it handed out (a record is read
	 * whole); no event would announce those bytes.
	 */
	if (tls_has_pending(c) && c->state != CONN_CLOSING && !c->paused &&
	    !w->ipc_paused)
		event_active(&c->rev, EV_READ, 1);
}

static void
read_some(struct conn *c, struct worker *w)
{
	struct conn_rare	*r;
	uint8_t			*dst;
	ssize_t			 n;
	size_t			 used;

	if (c->rare->in.len == 0 && !c->ws_pre) {
		/* the usual case: decode straight from the loop's buffer */
		n = conn_recv(c, w->scratch, WORKER_READ_CHUNK);
		if (n <= 0)
			goto eof;
		used = process(c, w->scratch, (size_t)n);
		if (c->state != CONN_CLOSING && used < (size_t)n &&
		    ((r = conn_rare(c)) == NULL ||
		    buf_add(&r->in, w->scratch + used, (size_t)n - used) == -1))
			conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
		return;
	}
	/* a packet is already under way: append to it */
	if ((r = conn_rare(c)) == NULL ||
	    buf_reserve(&r->in, WORKER_READ_CHUNK) == -1) {
		conn_close(c, MQTT_RC_UNSPECIFIED_ERROR, "out of memory");
		return;
	}
	dst = r->in.data + r->in.len;
	n = conn_recv(c, dst, WORKER_READ_CHUNK);
	if (n <= 0)
		goto eof;
	r->in.len += (size_t)n;
	process_kept(c);
	/* what is left is one incomplete packet: keep it small */
	if (r->in.len == 0 && r->in.cap > 4 * WORKER_READ_CHUNK)
		buf_free(&r->in);
	return;
eof:
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	conn_close(c, NO_REASON, n == 0 ? "connection closed by client" :
	    errno == EPROTO ? "TLS error" : strerror(errno));
}

void
conn_accept(struct worker *w, int fd, uint8_t kind)
{
	struct conn	*c;
	struct sockaddr_storage peer;
	socklen_t	 sl;
	int		 one = 1, sv[2];
	int64_t		 max = config_num(&w->proc->cfg,
			    OPT_mqtt_max_connections);

	/*
	 * The limit counts clients over all workers, and the registry
	 * enforces it at CONNECT, where a client over it gets CONNACK 0x97.
	 * Here it only bounds what one worker holds, with some room above
	 * the limit so that those clients get that answer, not a reset.
	 */
	if (w->nconns >= (uint64_t)max + ACCEPT_HEADROOM) {
		static struct log_ratelimit	 rl;

		log_limited(&rl, LOG_LEVEL_WARN, "connection limit reached; "
		    "refusing", "connections=%llu max=%lld",
		    (unsigned long long)w->nconns, (long long)max);
		close(fd);
		return;
	}
	/* Nagle would hold small packets back for tens of milliseconds */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sl = sizeof(peer);
	if (getpeername(fd, (struct sockaddr *)&peer, &sl) == -1)
		peer.ss_family = AF_UNSPEC;
	if (kind == IPC_LISTEN_WS) {
		/* the WebSocket thread takes the socket; MQTT comes to this
		 * connection over a socketpair (ws.c) */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0, sv) == -1) {
			close(fd);
			return;
		}
		if (ws_hand_off(w, fd, sv[1], config_num(&w->proc->cfg,
		    OPT_websocket_tls) != 0) == -1) {
			close(sv[0]);
			return;
		}
		fd = sv[0];
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->w = w;
	c->fd = fd;
	c->rare = &conn_rare_none;
	memcpy(&c->peer, &peer, sizeof(c->peer));
	c->ws_pre = kind == IPC_LISTEN_WS;
	c->id = ++w->next_conn_id;
	c->created = c->last_rx = clock_mono_ms();
	c->next_packet_id = 1;
	buf_init(&c->out);
	if (kind == IPC_LISTEN_TLS && tls_conn_start(c) == -1) {
		static struct log_ratelimit	 trl;

		log_limited(&trl, LOG_LEVEL_WARN, "TLS connection refused: no "
		    "usable certificate", "fd=%d", fd);
		close(fd);
		rare_free(c);
		free(c);
		return;
	}
	if (event_assign(&c->rev, w->base, fd, EV_READ | EV_PERSIST,
	    conn_readable, c) == -1 ||
	    event_priority_set(&c->rev, EVLOOP_PRIO_IO) == -1 ||
	    idmap_put(&w->conns_by_id, c->id, c) == -1) {
		log_warnx("cannot set up connection", "fd=%d", fd);
		tls_conn_end(c);
		close(fd);
		rare_free(c);
		free(c);
		return;
	}
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	if (!w->ipc_paused)
		event_add(&c->rev, NULL);
}

/*
 * Close a connection: a DISCONNECT with `reason` first when the client
 * speaks 5.0 and has its CONNACK (NO_REASON: none), then the will if it
 * was not a normal disconnection, its subscriptions, its registry entry.
 */
void
conn_close(struct conn *c, uint8_t reason, const char *why)
{
	struct worker	*w = c->w;
	char		 addr[64];

	if (c->state == CONN_CLOSING)
		return;
	if (reason != NO_REASON && c->state == CONN_ACTIVE)
		conn_send_disconnect(c, reason);
	if (c->out.len > 0)
		(void)write_out(c);	/* best effort: the socket closes now */
	if (c->state == CONN_ACTIVE || c->state == CONN_CLAIMING)
		log_info("client disconnected", "client=%.*s addr=%s "
		    "reason=\"%s\" code=0x%02x", (int)c->client_id_len,
		    c->client_id ? c->client_id : "",
		    conn_addr(c, addr, sizeof(addr)), why,
		    reason == NO_REASON ? 0 : reason);
	else
		log_debug("connection closed", "addr=%s reason=\"%s\"",
		    conn_addr(c, addr, sizeof(addr)), why);
	/* its own subscriptions go first: the will is not for itself (a
	 * stored session keeps them in walsvc) */
	subscribe_drop_all(c);
	/* a clean session ends here: its shared messages not delivered go
	 * to the group's other members */
	if (!c->stored)
		deliver_share_again(c);
	/* walsvc publishes the will unless told, before the release, that
	 * the client disconnected normally */
	if (c->rare->will_id != 0 && c->normal_close)
		registry_will_clear(c);
	/* what the client acknowledged is appended before the release */
	if (c->stored && c->rare->nacks > 0)
		session_ack_conn(c);
	if (c->registered || c->state == CONN_CLAIMING)
		registry_release(c);
	c->state = CONN_CLOSING;
	event_del(&c->rev);
	if (c->wev != NULL) {
		event_free(c->wev);
		c->wev = NULL;
	}
	tls_conn_end(c);
	if (!ws_conn_end(c))
		close(c->fd);
	c->fd = -1;
	idmap_remove(&w->conns_by_id, c->id);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	/* freed after the turn: callers up the stack may still hold it */
	c->dead_next = w->dead;
	w->dead = c;
	schedule_flush(w);
}

void
conn_close_all(struct worker *w, uint8_t reason)
{
	while (w->conns)
		conn_close(w->conns, reason, "broker stopping");
}

/* Stop or restart reading every client: the IPC path is congested. */
void
conn_pause_all(struct worker *w, int pause)
{
	struct conn	*c;

	if (w->ipc_paused == pause)
		return;
	w->ipc_paused = pause;
	for (c = w->conns; c; c = c->next) {
		if (c->paused)
			continue;
		if (pause)
			event_del(&c->rev);
		else
			read_again(c);
	}
}

/* 5.0: DISCONNECT 0x87 saying why (a client may log it); then close. */
static void
token_expired(struct conn *c)
{
	struct mqtt_packet	 pkt;

	if (c->level == MQTT_LEVEL_5) {
		memset(&pkt, 0, sizeof(pkt));
		pkt.type = MQTT_DISCONNECT;
		pkt.disconnect.reason = MQTT_RC_NOT_AUTHORIZED;
		pkt.disconnect.props.reason_string =
		    MQTT_VIEW_STR("token expired");
		mqtt_props_set(&pkt.disconnect.props, MQTT_PROP_REASON_STRING);
		conn_send_packet(c, &pkt);
	}
	conn_close(c, NO_REASON, "its token expired");
}

/*
 * Once a second: idle buffers, CONNECT time-outs, registry answers that
 * never came, keep-alive (1.5 times what the client asked for, MQTT 3.1.2.10), and
 * logins whose token expired.
 */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct conn	*c, *next;
	int64_t		 now = clock_mono_ms();
	int64_t		 connect_ms = config_num(&w->proc->cfg,
			    OPT_server_connect_timeout);

	route_check_acks(w);
	publish_check_waiting(w, now);
	stats_publish(w);
	for (c = w->conns; c; c = next) {
		next = c->next;
		/* an idle connection keeps no buffers: a busy one makes
		 * them again, once a second at most */
		if (c->rare->in.len == 0 && c->rare->in.data != NULL)
			buf_free(&conn_rare(c)->in);
		if (c->out.len == 0 && c->out.data != NULL)
			buf_free(&c->out);
		/* rare fields that hold nothing any more (TLS keeps its
		 * own: its writes count on them) */
		if (c->rare != &conn_rare_none && c->ssl == NULL &&
		    memcmp(c->rare, &conn_rare_none, sizeof(*c->rare)) == 0)
			rare_free(c);
		switch (c->state) {
		case CONN_NEW:
			if (now - c->created > connect_ms)
				conn_close(c, NO_REASON, "no CONNECT in time");
			break;
		case CONN_AUTH:
			if (now - c->created <= connect_ms)
				break;
			/* SCRAM: the client owes its next message */
			if (c->rare->auth_step == AUTH_STEP_FINAL)
				conn_close(c, NO_REASON, "authentication not "
				    "finished within server.connect-timeout");
			else
				connect_authenticated(c, -1);
			break;
		case CONN_CLAIMING:
			if (now - c->created > connect_ms)
				registry_timeout(c);
			else
				registry_claim_again(c, now);
			break;
		case CONN_ACTIVE:
			/* a token is good until its exp (auth.jwt-leeway) */
			if (c->rare->token_exp != 0 && (int64_t)time(NULL) >=
			    c->rare->token_exp + config_num(&w->proc->cfg,
			    OPT_auth_jwt_leeway) / 1000) {
				token_expired(c);
				break;
			}
			/* not read by our choice: its pings wait unread */
			if (c->paused || w->ipc_paused)
				break;
			if (c->keep_alive && now - c->last_rx >
			    (int64_t)c->keep_alive * 1500)
				conn_close(c, MQTT_RC_KEEP_ALIVE_TIMEOUT,
				    "keep-alive timeout");
			break;
		case CONN_CLOSING:
			break;
		}
	}
}

void
conn_start(struct worker *w)
{
	struct timeval	 second = { 1, 0 };

	if ((w->scratch = malloc(WORKER_READ_CHUNK)) == NULL)
		fatal("read buffer", "");
	w->flush_ev = event_new(w->base, -1, 0, flush_cb, w);
	w->tick_ev = event_new(w->base, -1, EV_PERSIST, tick_cb, w);
	if (w->flush_ev == NULL || w->tick_ev == NULL ||
	    event_priority_set(w->flush_ev, EVLOOP_PRIO_FLUSH) == -1 ||
	    event_add(w->tick_ev, &second) == -1)
		fatalx("cannot set up connection events", "");
	idmap_init(&w->conns_by_id);
}
