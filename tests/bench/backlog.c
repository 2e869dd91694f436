/*
 * backlog.c - a backlog drained on reconnect: one MQTT 3.1.1 / 5.0
 * client, libc only, driven by tests/bench/backlog.py.
 *
 *	backlog subscribe [-i ID] [-f FILTER] [-q QOS] [-e EXPIRY]
 *	backlog publish   [-t TOPIC] [-q QOS] [-n COUNT] [-s BYTES] [-w WINDOW]
 *	backlog drain     [-i ID] [-t TOPIC] [-q QOS] [-n COUNT]
 *
 * subscribe	connects a persistent session (MQTT 5: Clean Start 0 with a
 *		Session Expiry Interval; 3.1.1: Clean Session 0), subscribes
 *		to FILTER and disconnects normally: the session is left to
 *		collect what is published while it is away.
 * publish	sends COUNT messages of BYTES bytes to TOPIC from a clean
 *		session, as fast as the broker acknowledges them, WINDOW of
 *		them in flight (never more than the broker's Receive
 *		Maximum), and reports the rate.
 * drain	resumes the session, receives and acknowledges (PUBACK, or
 *		PUBREC and PUBCOMP after the PUBREL) COUNT messages, checks
 *		that each came once and in order, and reports the time from
 *		CONNECT to the last of them (and to the last PUBREL, when
 *		every flow is complete).  A QoS 2 PUBLISH whose packet id
 *		still waits for its PUBREL is not delivered again, as a
 *		receiver must not; if it carries a message not seen yet the
 *		broker reused an id in use (id_reused), and that message is
 *		lost.  It also reports how many messages the broker had in
 *		flight to it at once, at least (max_burst: those that came
 *		between two moments when all our acknowledgements were
 *		sent); with -w (MQTT 5) it sends that Receive Maximum and
 *		fails if the broker exceeds it.
 *
 * Every payload begins with 16 bytes: "BKLG", a run token (--token, the
 * same for publish and drain) and the message's sequence number, so the
 * drain knows each message and its place.  One connection, a
 * non-blocking socket, poll(2); every wait ends at --timeout, and the
 * drain gives up after --idle seconds without a message.  The last line
 * on stdout is "RESULT key=value ..."; the exit status is 0 only when it
 * says status=ok, 1 otherwise (lost, duplicated, reordered, invalid or
 * refused messages, a failed connection, a timeout), 2 for bad usage.
 *
 * Built by `make backlog` (tests/bench/local.mk), not by make all.
 */
#define _GNU_SOURCE /* getopt_long */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEADER_LEN	16		/* payload: magic, token, sequence */
#define HEADER_MAGIC	0x424b4c47u	/* "BKLG" */
#define READ_CHUNK	65536
#define OUTPUT_HIGH	65536		/* no more PUBLISHes above this unsent */
#define MAX_PACKET	268435455u	/* the largest remaining length */
#define MAX_WINDOW	65000		/* leaves packet ids free to find */
#define MAX_COUNT	1000000000ull
#define CLOSE_WAIT_NS	5000000000ull	/* for the EOF after our DISCONNECT */
#define TICK_MS		100

#define NS(seconds)	((uint64_t)((seconds) * 1e9))

/* MQTT control packet types, the high nibble of the first byte */
enum packet_type {
	CONNECT = 1,
	CONNACK,
	PUBLISH,
	PUBACK,
	PUBREC,
	PUBREL,
	PUBCOMP,
	SUBSCRIBE,
	SUBACK,
	PINGREQ = 12,
	PINGRESP,
	DISCONNECT
};

enum mode { MODE_SUBSCRIBE, MODE_PUBLISH, MODE_DRAIN };
static const char *const mode_names[] = {"subscribe", "publish", "drain"};

enum state {
	WAIT_CONNACK,
	WAIT_SUBACK,
	RUNNING,
	LINGERING, /* drain: everything came; anything more is a duplicate */
	CLOSING,   /* DISCONNECT queued; waiting for the broker to close */
	FINISHED
};

static struct options {
	const char *host;
	int port;
	enum mode mode;
	int version; /* 4: MQTT 3.1.1, 5: MQTT 5.0 */
	int qos;
	const char *client_id;
	const char *topic;
	const char *filter;
	uint64_t count;
	size_t size;
	unsigned window;
	int window_given;
	uint32_t session_expiry;
	uint32_t token;
	unsigned keepalive;
	double timeout, idle, linger;
} opt = {
	.host = "127.0.0.1",
	.port = 1883,
	.version = 5,
	.qos = 1,
	.topic = "backlog/t",
	.count = 100000,
	.size = 64,
	.window = 64,
	.session_expiry = 3600,
	.keepalive = 60,
	.timeout = 120,
	.idle = 10,
	.linger = 0.5,
};

struct buffer {
	uint8_t *data;
	size_t start, end, size;
};

struct client {
	int fd;
	enum state state;
	struct buffer in, out;
	const char *status; /* set when the run ended early */
	char why[200];	    /* why it ended early */
	char fault[200];    /* the first check that failed */
	uint64_t deadline, closing_deadline, linger_until;
	uint64_t last_send, last_receive;
	uint64_t connect_sent, connack_received;
	uint32_t receive_maximum; /* the broker's */
	int session_present, granted_qos;
	uint64_t protocol_errors;

	/* publish */
	uint8_t *id_state; /* 0 free, 1 PUBACK/PUBREC awaited, 2 PUBCOMP */
	uint16_t next_id;
	unsigned window, inflight;
	uint8_t *payload;
	uint64_t sent, acked, refused, first_publish, last_ack;
	int first_refusal;

	/* drain (and any PUBLISH that comes in another mode) */
	uint8_t *seen;	    /* one bit per sequence number */
	uint8_t *releasing; /* per packet id: PUBREC sent, PUBREL awaited */
	unsigned pending_release;
	uint64_t received, unique, duplicates, reordered, invalid;
	uint64_t dup_flagged, resent_unreleased, id_reused, next_sequence;
	unsigned burst, max_burst; /* QoS 1/2 PUBLISHes between our flushes */
	uint64_t first_message, last_message;
	uint64_t completed; /* every message in, and every PUBREL */
};

static volatile sig_atomic_t interrupted;

/* ------------------------------------------------------------------ */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: backlog subscribe|publish|drain [-h HOST] [-p PORT] "
	    "[-V 4|5] [-i CLIENT_ID]\n"
	    "\t[-t TOPIC] [-f FILTER] [-q QOS] [-n COUNT] [-s BYTES] "
	    "[-w WINDOW] [-e SESSION_EXPIRY]\n"
	    "\t[-k KEEPALIVE] [--token N] [--timeout S] [--idle S] "
	    "[--linger S]\n");
	exit(2);
}

static void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("backlog: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

static unsigned long long
parse_unsigned(const char *arg, const char *what, unsigned long long min,
    unsigned long long max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max)
		die("%s: %s is not a number from %llu to %llu", what, arg, min,
		    max);
	return v;
}

static double
parse_seconds(const char *arg, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= 0) || v > 86400)
		die("%s: %s is not a number of seconds", what, arg);
	return v;
}

static void
put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t
get16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t
get32(const uint8_t *p)
{
	return get16(p) << 16 | get16(p + 2);
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static size_t
varint_len(uint32_t v)
{
	return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

static size_t
put_varint(uint8_t *p, uint32_t v)
{
	size_t n = 0;

	do {
		uint8_t digit = v & 0x7f;

		v >>= 7;
		p[n++] = digit | (v ? 0x80 : 0);
	} while (v);
	return n;
}

/* A Variable Byte Integer: its length, 0 if incomplete, -1 if malformed. */
static int
get_varint(const uint8_t *p, size_t avail, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		if ((size_t)i >= avail)
			return 0;
		v |= (uint32_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*out = v;
			return i + 1;
		}
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* buffers                                                            */

static size_t
buffer_pending(const struct buffer *b)
{
	return b->end - b->start;
}

/* Room for extra more bytes at the end, compacting first. */
static void
buffer_reserve(struct buffer *b, size_t extra)
{
	size_t size;
	uint8_t *data;

	if (b->start == b->end)
		b->start = b->end = 0;
	if (b->end + extra <= b->size)
		return;
	if (b->start) {
		memmove(b->data, b->data + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
		if (b->end + extra <= b->size)
			return;
	}
	for (size = b->size ? b->size : 4096; size < b->end + extra; size *= 2)
		;
	if ((data = realloc(b->data, size)) == NULL)
		die("out of memory");
	b->data = data;
	b->size = size;
}

static uint8_t *
buffer_append(struct buffer *b, size_t n)
{
	uint8_t *p;

	buffer_reserve(b, n);
	p = b->data + b->end;
	b->end += n;
	return p;
}

/* ------------------------------------------------------------------ */
/* the run's outcome                                                  */

/* End the run now (no DISCONNECT): a broken connection, a timeout. */
static void
client_stop(struct client *c, const char *status, const char *fmt, ...)
{
	va_list ap;

	if (c->status == NULL) {
		c->status = status;
		va_start(ap, fmt);
		vsnprintf(c->why, sizeof(c->why), fmt, ap);
		va_end(ap);
	}
	c->state = FINISHED;
}

/* Note a failed check without ending the run. */
static void
client_fault(struct client *c, const char *fmt, ...)
{
	va_list ap;

	if (c->fault[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(c->fault, sizeof(c->fault), fmt, ap);
		va_end(ap);
	}
}

static void
protocol_error(struct client *c, const char *what)
{
	c->protocol_errors++;
	client_stop(c, "error", "protocol error: %s", what);
}

/* ------------------------------------------------------------------ */
/* packets out                                                        */

static void
send_connect(struct client *c, int clean)
{
	uint8_t props[16], *p;
	size_t props_len = 0, id_len = strlen(opt.client_id);
	uint32_t remaining;

	if (opt.version == 5 && !clean && opt.session_expiry) {
		props[props_len++] = 0x11; /* Session Expiry Interval */
		put32(props + props_len, opt.session_expiry);
		props_len += 4;
	}
	if (opt.version == 5 && opt.mode == MODE_DRAIN && opt.window_given) {
		props[props_len++] = 0x21; /* Receive Maximum */
		put16(props + props_len, opt.window);
		props_len += 2;
	}
	remaining = (uint32_t)(10 + 2 + id_len);
	if (opt.version == 5)
		remaining += (uint32_t)(varint_len((uint32_t)props_len) +
		    props_len);
	p = buffer_append(&c->out, 1 + varint_len(remaining) + remaining);
	*p++ = CONNECT << 4;
	p += put_varint(p, remaining);
	put16(p, 4);
	memcpy(p + 2, "MQTT", 4);
	p += 6;
	*p++ = (uint8_t)opt.version;
	*p++ = clean ? 0x02 : 0x00;
	put16(p, opt.keepalive);
	p += 2;
	if (opt.version == 5) {
		p += put_varint(p, (uint32_t)props_len);
		memcpy(p, props, props_len);
		p += props_len;
	}
	put16(p, (uint32_t)id_len);
	memcpy(p + 2, opt.client_id, id_len);
}

static void
send_subscribe(struct client *c)
{
	size_t len = strlen(opt.filter);
	uint32_t remaining = (uint32_t)(2 + (opt.version == 5) + 2 + len + 1);
	uint8_t *p = buffer_append(&c->out, 1 + varint_len(remaining) +
	    remaining);

	*p++ = SUBSCRIBE << 4 | 0x02;
	p += put_varint(p, remaining);
	put16(p, 1); /* packet identifier */
	p += 2;
	if (opt.version == 5)
		*p++ = 0; /* no properties */
	put16(p, (uint32_t)len);
	memcpy(p + 2, opt.filter, len);
	p[2 + len] = (uint8_t)opt.qos; /* maximum QoS, no other option */
}

/* PUBACK, PUBREC, PUBREL (flags 0x02) or PUBCOMP, reason 0x00 */
static void
send_ack(struct client *c, enum packet_type type, uint32_t id)
{
	uint8_t *p = buffer_append(&c->out, 4);

	p[0] = (uint8_t)(type << 4 | (type == PUBREL ? 0x02 : 0));
	p[1] = 2;
	put16(p + 2, id);
}

static void
send_empty(struct client *c, enum packet_type type)
{
	uint8_t *p = buffer_append(&c->out, 2);

	p[0] = (uint8_t)(type << 4);
	p[1] = 0; /* DISCONNECT: reason 0x00, the Session Expiry unchanged */
}

static void
send_publish(struct client *c)
{
	size_t topic_len = strlen(opt.topic);
	uint32_t remaining = (uint32_t)(2 + topic_len + (opt.qos ? 2 : 0) +
	    (opt.version == 5) + opt.size);
	uint8_t *p = buffer_append(&c->out, 1 + varint_len(remaining) +
	    remaining);
	uint32_t id;

	*p++ = (uint8_t)(PUBLISH << 4 | opt.qos << 1);
	p += put_varint(p, remaining);
	put16(p, (uint32_t)topic_len);
	memcpy(p + 2, opt.topic, topic_len);
	p += 2 + topic_len;
	if (opt.qos) {
		/* the next identifier not in flight; the window leaves some */
		do {
			id = c->next_id++;
			if (c->next_id == 0)
				c->next_id = 1;
		} while (id == 0 || c->id_state[id]);
		c->id_state[id] = 1;
		c->inflight++;
		put16(p, id);
		p += 2;
	}
	if (opt.version == 5)
		*p++ = 0; /* no properties */
	memcpy(p, c->payload, opt.size);
	put32(p, HEADER_MAGIC);
	put32(p + 4, opt.token);
	put64(p + 8, c->sent);
	c->sent++;
}

/* Queue DISCONNECT; the run ends when the broker closes (or soon after). */
static void
client_disconnect(struct client *c, uint64_t now)
{
	send_empty(c, DISCONNECT);
	c->state = CLOSING;
	c->closing_deadline = now + CLOSE_WAIT_NS;
}

/* ------------------------------------------------------------------ */
/* packets in                                                         */

/* Walk MQTT 5 properties; the Receive Maximum, if any, into *rm. */
static int
walk_properties(const uint8_t *p, size_t len, uint32_t *rm)
{
	size_t pos = 0, need;
	uint32_t v;
	int n;

	while (pos < len) {
		uint8_t id = p[pos++];

		switch (id) {
		case 0x01: case 0x17: case 0x19: case 0x24: case 0x25:
		case 0x28: case 0x29: case 0x2a:
			need = 1;
			break;
		case 0x13: case 0x21: case 0x22: case 0x23:
			need = 2;
			if (id == 0x21 && pos + 2 <= len)
				*rm = get16(p + pos);
			break;
		case 0x02: case 0x11: case 0x18: case 0x27:
			need = 4;
			break;
		case 0x0b:
			if ((n = get_varint(p + pos, len - pos, &v)) <= 0)
				return -1;
			need = (size_t)n;
			break;
		case 0x03: case 0x08: case 0x09: case 0x12: case 0x15:
		case 0x16: case 0x1a: case 0x1c: case 0x1f:
			if (pos + 2 > len)
				return -1;
			need = 2 + get16(p + pos);
			break;
		case 0x26: /* a string pair */
			if (pos + 2 > len || pos + 4 + get16(p + pos) > len)
				return -1;
			need = 4 + get16(p + pos) +
			    get16(p + pos + 2 + get16(p + pos));
			break;
		default:
			return -1;
		}
		if (pos + need > len)
			return -1;
		pos += need;
	}
	return 0;
}

static void
on_connack(struct client *c, const uint8_t *p, uint32_t len, uint64_t now)
{
	uint32_t props_len;
	int n;

	if (c->state != WAIT_CONNACK || len < 2) {
		protocol_error(c, "unexpected CONNACK");
		return;
	}
	if (p[1] != 0) {
		client_stop(c, "error", "CONNACK refused, code 0x%02x", p[1]);
		return;
	}
	c->connack_received = now;
	c->session_present = p[0] & 1;
	c->receive_maximum = 65535;
	if (opt.version == 5 && len > 2) {
		n = get_varint(p + 2, len - 2, &props_len);
		if (n <= 0 || 2 + (size_t)n + props_len > len ||
		    walk_properties(p + 2 + n, props_len,
			&c->receive_maximum) < 0) {
			protocol_error(c, "bad CONNACK properties");
			return;
		}
	}
	switch (opt.mode) {
	case MODE_SUBSCRIBE:
		send_subscribe(c);
		c->state = WAIT_SUBACK;
		break;
	case MODE_PUBLISH:
		c->window = opt.window;
		if (c->window > c->receive_maximum)
			c->window = c->receive_maximum;
		if (c->window > MAX_WINDOW)
			c->window = MAX_WINDOW;
		c->state = RUNNING;
		break;
	case MODE_DRAIN:
		if (!c->session_present) {
			client_stop(c, "errors", "the session was not present: "
						 "the broker lost it");
			return;
		}
		c->state = RUNNING;
		break;
	}
}

static void
on_suback(struct client *c, const uint8_t *p, uint32_t len, uint64_t now)
{
	uint32_t pos = 2, props_len;
	int n;

	if (c->state != WAIT_SUBACK || len < 3 || get16(p) != 1) {
		protocol_error(c, "unexpected SUBACK");
		return;
	}
	if (opt.version == 5) {
		n = get_varint(p + 2, len - 2, &props_len);
		if (n <= 0) {
			protocol_error(c, "bad SUBACK properties");
			return;
		}
		pos += (uint32_t)n + props_len;
	}
	if (pos >= len) {
		protocol_error(c, "SUBACK without a reason code");
		return;
	}
	if (p[pos] >= 0x80) {
		client_stop(c, "error", "subscription refused, code 0x%02x",
		    p[pos]);
		return;
	}
	c->granted_qos = p[pos];
	if (c->granted_qos < opt.qos)
		client_fault(c, "granted QoS %d, asked for %d", c->granted_qos,
		    opt.qos);
	client_disconnect(c, now);
}

/* The sequence number of a message of this run, or UINT64_MAX. */
static uint64_t
message_sequence(const uint8_t *topic, size_t topic_len, int qos,
    const uint8_t *payload, size_t len)
{
	uint64_t seq;

	if (opt.mode != MODE_DRAIN || topic_len != strlen(opt.topic) ||
	    memcmp(topic, opt.topic, topic_len) != 0 || qos != opt.qos ||
	    len < HEADER_LEN || get32(payload) != HEADER_MAGIC ||
	    get32(payload + 4) != opt.token ||
	    (seq = get64(payload + 8)) >= opt.count)
		return UINT64_MAX;
	return seq;
}

static int
message_seen(const struct client *c, uint64_t seq)
{
	return (c->seen[seq >> 3] & (1u << (seq & 7))) != 0;
}

/* Check a message's payload and count it; returns 0 if it is not ours. */
static int
check_message(struct client *c, const uint8_t *topic, size_t topic_len,
    int qos, const uint8_t *payload, size_t len, uint64_t now)
{
	uint64_t seq = message_sequence(topic, topic_len, qos, payload, len);

	if (seq == UINT64_MAX)
		return 0;
	if (message_seen(c, seq)) {
		if (c->duplicates++ == 0)
			client_fault(c, "message %" PRIu64 " came twice", seq);
		return 1;
	}
	c->seen[seq >> 3] |= (uint8_t)(1u << (seq & 7));
	c->unique++;
	if (seq < c->next_sequence) {
		if (c->reordered++ == 0)
			client_fault(c,
			    "message %" PRIu64 " came after %" PRIu64, seq,
			    c->next_sequence - 1);
	} else {
		c->next_sequence = seq + 1;
	}
	if (c->first_message == 0)
		c->first_message = now;
	c->last_message = now;
	return 1;
}

static void
on_publish(struct client *c, uint8_t flags, const uint8_t *p, uint32_t len,
    uint64_t now)
{
	int qos = (flags >> 1) & 3;
	uint32_t pos, id = 0, props_len;
	uint64_t seq;
	int n;

	if (c->state != RUNNING && c->state != LINGERING &&
	    c->state != CLOSING) {
		protocol_error(c, "PUBLISH before the session was ready");
		return;
	}
	if (qos == 3 || len < 2 || (pos = 2 + get16(p)) > len) {
		protocol_error(c, "malformed PUBLISH");
		return;
	}
	if (qos) {
		if (pos + 2 > len || (id = get16(p + pos)) == 0) {
			protocol_error(c, "PUBLISH without a packet identifier");
			return;
		}
		pos += 2;
	}
	if (opt.version == 5) {
		n = get_varint(p + pos, len - pos, &props_len);
		if (n <= 0 || pos + (uint32_t)n + props_len > len) {
			protocol_error(c, "bad PUBLISH properties");
			return;
		}
		pos += (uint32_t)n + props_len;
	}
	c->received++;
	c->last_receive = now;
	if (qos && ++c->burst > c->max_burst)
		c->max_burst = c->burst;
	if (flags & 0x08)
		c->dup_flagged++;
	if (qos == 1) {
		send_ack(c, PUBACK, id);
	} else if (qos == 2) {
		send_ack(c, PUBREC, id);
		if (c->releasing[id]) {
			/*
			 * A packet id not yet released: a QoS 2 receiver
			 * takes this for the same message sent again and does
			 * not deliver it [MQTT-4.3.3-10].  If the payload is
			 * a message not seen yet, the broker reused an id
			 * still in use [MQTT-2.2.1-4] and that message is
			 * lost to the application.
			 */
			seq = message_sequence(p + 2, get16(p), qos, p + pos,
			    len - pos);
			if (seq == UINT64_MAX || message_seen(c, seq)) {
				c->resent_unreleased++;
			} else if (c->id_reused++ == 0) {
				client_fault(c, "message %" PRIu64 " came with "
				    "packet id %u, still waiting for its PUBREL",
				    seq, id);
			}
			return;
		}
		c->releasing[id] = 1;
		c->pending_release++;
	}
	if (!check_message(c, p + 2, get16(p), qos, p + pos, len - pos, now)) {
		if (c->invalid++ == 0)
			client_fault(c, "a message not from this run (topic "
					"%.*s, QoS %d, %u bytes)",
			    (int)get16(p), (const char *)p + 2, qos,
			    len - pos);
	}
}

static void
on_pubrel(struct client *c, const uint8_t *p, uint32_t len)
{
	uint32_t id;

	if (len < 2) {
		protocol_error(c, "malformed PUBREL");
		return;
	}
	id = get16(p);
	if (c->releasing[id]) {
		c->releasing[id] = 0;
		c->pending_release--;
	}
	send_ack(c, PUBCOMP, id);
}

/* PUBACK, PUBREC or PUBCOMP for one of our PUBLISHes */
static void
on_publish_ack(struct client *c, enum packet_type type, const uint8_t *p,
    uint32_t len, uint64_t now)
{
	uint32_t id;
	uint8_t reason, want = type == PUBCOMP ? 2 : 1;

	if (opt.mode != MODE_PUBLISH || len < 2 ||
	    (type == PUBACK) != (opt.qos == 1) || opt.qos == 0) {
		protocol_error(c, "unexpected acknowledgement");
		return;
	}
	id = get16(p);
	reason = len > 2 ? p[2] : 0;
	if (id == 0 || c->id_state[id] != want) {
		protocol_error(c, "acknowledgement of a packet id not in flight");
		return;
	}
	if (type == PUBREC && reason < 0x80) {
		c->id_state[id] = 2;
		send_ack(c, PUBREL, id);
		return;
	}
	if (reason >= 0x80 && c->refused++ == 0)
		c->first_refusal = reason;
	c->id_state[id] = 0;
	c->inflight--;
	c->acked++;
	c->last_ack = now;
}

static void
on_packet(struct client *c, uint8_t header, const uint8_t *p, uint32_t len,
    uint64_t now)
{
	switch (header >> 4) {
	case CONNACK:
		on_connack(c, p, len, now);
		break;
	case PUBLISH:
		on_publish(c, header & 0x0f, p, len, now);
		break;
	case PUBACK:
	case PUBREC:
	case PUBCOMP:
		on_publish_ack(c, header >> 4, p, len, now);
		break;
	case PUBREL:
		on_pubrel(c, p, len);
		break;
	case SUBACK:
		on_suback(c, p, len, now);
		break;
	case PINGRESP:
		break;
	case DISCONNECT:
		client_stop(c, "error", "DISCONNECT from the broker, reason 0x%02x",
		    len ? p[0] : 0);
		break;
	default:
		protocol_error(c, "unexpected packet type");
	}
}

/* ------------------------------------------------------------------ */
/* the connection                                                     */

static void
client_read(struct client *c)
{
	uint64_t now;
	ssize_t r;
	size_t avail, room;
	uint32_t len;
	int n;

	for (int turn = 0; turn < 8 && c->state != FINISHED; turn++) {
		buffer_reserve(&c->in, READ_CHUNK);
		room = c->in.size - c->in.end;
		r = read(c->fd, c->in.data + c->in.end, room);
		if (r == 0) {
			if (c->state == CLOSING)
				c->state = FINISHED;
			else
				client_stop(c, "error",
				    "connection closed by the broker");
			return;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				client_stop(c, "error", "read: %s",
				    strerror(errno));
			return;
		}
		c->in.end += (size_t)r;
		now = now_ns();
		while (c->state != FINISHED &&
		    (avail = buffer_pending(&c->in)) >= 2) {
			const uint8_t *p = c->in.data + c->in.start;

			n = get_varint(p + 1, avail - 1, &len);
			if (n < 0 || len > MAX_PACKET) {
				protocol_error(c, "bad remaining length");
				return;
			}
			if (n == 0 || avail < 1 + (size_t)n + len) {
				if (n)
					buffer_reserve(&c->in,
					    1 + (size_t)n + len - avail);
				break;
			}
			c->in.start += 1 + (size_t)n + len;
			on_packet(c, p[0], p + 1 + n, len, now);
		}
		if ((size_t)r < room)
			return; /* the socket is empty */
	}
}

static void
client_flush(struct client *c)
{
	ssize_t w;

	while (c->state != FINISHED && buffer_pending(&c->out)) {
		w = send(c->fd, c->out.data + c->out.start,
		    buffer_pending(&c->out), MSG_NOSIGNAL);
		if (w > 0) {
			c->out.start += (size_t)w;
			c->last_send = now_ns();
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		} else {
			client_stop(c, "error", "send: %s",
			    w < 0 ? strerror(errno) : "nothing written");
		}
	}
	/*
	 * Every acknowledgement is out: the broker cannot have counted any
	 * PUBLISH received since as acknowledged, so max_burst is a lower
	 * bound of the messages it had in flight to us at once.
	 */
	if (!buffer_pending(&c->out))
		c->burst = 0;
}

static void
client_open(struct client *c)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct timeval tv = {.tv_sec = 5};
	int one = 1;

	sa.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1)
		die("-h %s: not an IPv4 address", opt.host);
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die("socket: %s", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		client_stop(c, "error", "connect to %s:%d: %s", opt.host,
		    opt.port, strerror(errno));
		return;
	}
	if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0)
		die("fcntl: %s", strerror(errno));
	c->state = WAIT_CONNACK;
	send_connect(c, opt.mode == MODE_PUBLISH);
	c->connect_sent = now_ns();
	client_flush(c);
}

/* What the mode does between packets: publish, notice the end. */
static void
client_progress(struct client *c, uint64_t now)
{
	uint64_t quiet_since;

	if (opt.keepalive && c->state != CLOSING && now > c->last_send &&
	    now - c->last_send > (uint64_t)opt.keepalive * 500000000ull)
		send_empty(c, PINGREQ);
	switch (c->state) {
	case RUNNING:
		if (opt.mode == MODE_PUBLISH) {
			while (c->sent < opt.count &&
			    buffer_pending(&c->out) < OUTPUT_HIGH &&
			    (opt.qos == 0 || c->inflight < c->window)) {
				if (c->sent == 0)
					c->first_publish = now;
				send_publish(c);
			}
			if (opt.qos == 0 && c->sent == opt.count)
				c->last_ack = now;
			if (opt.qos == 0 ? c->sent == opt.count :
					   c->acked == opt.count)
				client_disconnect(c, now);
		} else if (opt.mode == MODE_DRAIN) {
			if (c->unique >= opt.count && !c->pending_release) {
				c->completed = now;
				c->state = LINGERING;
				c->linger_until = now + NS(opt.linger);
				break;
			}
			quiet_since = c->last_receive > c->connack_received ?
			    c->last_receive : c->connack_received;
			if (now > quiet_since &&
			    now - quiet_since >= NS(opt.idle)) {
				client_fault(c,
				    "no message for %.1f s after %" PRIu64
				    " of %" PRIu64,
				    opt.idle, c->unique, opt.count);
				client_disconnect(c, now);
			}
		}
		break;
	case LINGERING:
		if (now >= c->linger_until && !c->pending_release)
			client_disconnect(c, now);
		break;
	case CLOSING:
		if (!buffer_pending(&c->out) && now >= c->closing_deadline)
			c->state = FINISHED; /* the broker did not close */
		break;
	default:
		break;
	}
}

static void
client_run(struct client *c)
{
	struct pollfd pfd;
	uint64_t now;
	int n, wait_ms;

	c->deadline = now_ns() + NS(opt.timeout);
	client_open(c);
	while (c->state != FINISHED) {
		now = now_ns();
		if (interrupted) {
			client_stop(c, "interrupted", "interrupted");
			break;
		}
		if (now >= c->deadline) {
			client_stop(c, "timeout", "no end within --timeout %g s",
			    opt.timeout);
			break;
		}
		client_progress(c, now);
		client_flush(c);
		if (c->state == FINISHED)
			break;
		wait_ms = TICK_MS;
		if (c->deadline - now < (uint64_t)TICK_MS * 1000000)
			wait_ms = (int)((c->deadline - now) / 1000000) + 1;
		pfd.fd = c->fd;
		pfd.events = POLLIN | (buffer_pending(&c->out) ? POLLOUT : 0);
		pfd.revents = 0;
		n = poll(&pfd, 1, wait_ms);
		if (n < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (n <= 0)
			continue;
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
			client_read(c);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* ------------------------------------------------------------------ */
/* report                                                             */

static double
seconds_between(uint64_t from, uint64_t to)
{
	return from && to > from ? (double)(to - from) / 1e9 : 0;
}

static double
ms_after(uint64_t from, uint64_t to)
{
	return from && to >= from ? (double)(to - from) / 1e6 : -1;
}

/* Prints the result; returns the exit status. */
static int
report(struct client *c)
{
	const char *status = c->status;
	double secs, rate;
	uint64_t lost;
	int over;

	switch (opt.mode) {
	case MODE_SUBSCRIBE:
		if (status == NULL)
			status = c->granted_qos < opt.qos || c->invalid ?
			    "errors" :
			    "ok";
		printf("subscribe: %s to %s at QoS %d, granted %d, session "
		       "present %d\n",
		    opt.client_id, opt.filter, opt.qos, c->granted_qos,
		    c->session_present);
		printf("RESULT mode=subscribe proto=%d qos=%d granted=%d "
		       "session_present=%d status=%s\n",
		    opt.version, opt.qos, c->granted_qos, c->session_present,
		    status);
		break;
	case MODE_PUBLISH:
		if (status == NULL)
			status = c->acked < opt.count || c->refused ||
				c->invalid ?
			    "errors" :
			    "ok";
		secs = seconds_between(c->first_publish, c->last_ack);
		rate = secs > 0 ? (double)c->acked / secs : 0;
		printf("publish: %" PRIu64 " messages of %zu bytes at QoS %d "
		       "to %s, window %u (broker's Receive Maximum %u)\n",
		    opt.count, opt.size, opt.qos, opt.topic, c->window,
		    c->receive_maximum);
		printf("sent %" PRIu64 ", acknowledged %" PRIu64
		       ", refused %" PRIu64 " (first reason 0x%02x) in %.3f s: "
		       "%.0f msg/s\n",
		    c->sent, c->acked, c->refused, c->first_refusal, secs,
		    rate);
		printf("RESULT mode=publish proto=%d qos=%d count=%" PRIu64
		       " size=%zu window=%u sent=%" PRIu64 " acked=%" PRIu64
		       " refused=%" PRIu64 " secs=%.3f rate=%.0f status=%s\n",
		    opt.version, opt.qos, opt.count, opt.size, c->window,
		    c->sent, c->acked, c->refused, secs, rate, status);
		break;
	case MODE_DRAIN:
		lost = opt.count - c->unique;
		over = opt.version == 5 && opt.window_given &&
		    c->max_burst > opt.window;
		if (over)
			client_fault(c, "%u messages in flight at once, our "
			    "Receive Maximum is %u", c->max_burst, opt.window);
		if (status == NULL)
			status = lost || c->duplicates || c->reordered ||
				c->invalid || over ?
			    "errors" :
			    "ok";
		secs = seconds_between(c->connect_sent, c->last_message);
		rate = secs > 0 ? (double)c->unique / secs : 0;
		printf("drain: %s, session present %d, %" PRIu64 " of %" PRIu64
		       " messages at QoS %d in %.3f s from CONNECT: %.0f "
		       "msg/s\n",
		    opt.client_id, c->session_present, c->unique, opt.count,
		    opt.qos, secs, rate);
		printf("CONNACK after %.1f ms, first message after %.1f ms, "
		       "every flow complete after %.1f ms\n",
		    ms_after(c->connect_sent, c->connack_received),
		    ms_after(c->connect_sent, c->first_message),
		    ms_after(c->connect_sent, c->completed));
		printf("in flight from the broker: at least %u at once%s\n",
		    c->max_burst, over ? ", more than our Receive Maximum" : "");
		printf("checks: lost=%" PRIu64 " dup=%" PRIu64
		       " reorder=%" PRIu64 " invalid=%" PRIu64
		       " (received %" PRIu64 ", DUP flag on %" PRIu64
		       "; before the PUBREL of their packet id: sent again %" PRIu64
		       ", other messages %" PRIu64 ")\n",
		    lost, c->duplicates, c->reordered, c->invalid, c->received,
		    c->dup_flagged, c->resent_unreleased, c->id_reused);
		printf("RESULT mode=drain proto=%d qos=%d count=%" PRIu64
		       " session_present=%d received=%" PRIu64
		       " unique=%" PRIu64 " lost=%" PRIu64 " dup=%" PRIu64
		       " reorder=%" PRIu64 " invalid=%" PRIu64
		       " dup_flag=%" PRIu64 " resent=%" PRIu64
		       " id_reused=%" PRIu64 " max_burst=%u"
		       " connack_ms=%.1f first_ms=%.1f secs=%.3f rate=%.0f "
		       "complete_secs=%.3f status=%s\n",
		    opt.version, opt.qos, opt.count, c->session_present,
		    c->received, c->unique, lost, c->duplicates, c->reordered,
		    c->invalid, c->dup_flagged, c->resent_unreleased, c->id_reused,
		    c->max_burst,
		    ms_after(c->connect_sent, c->connack_received),
		    ms_after(c->connect_sent, c->first_message), secs, rate,
		    seconds_between(c->connect_sent, c->completed), status);
		break;
	}
	if (strcmp(status, "ok") != 0) {
		if (c->why[0])
			fprintf(stderr, "backlog: %s: %s\n",
			    mode_names[opt.mode], c->why);
		if (c->fault[0])
			fprintf(stderr, "backlog: %s: first failed check: %s\n",
			    mode_names[opt.mode], c->fault);
		if (!c->why[0] && !c->fault[0])
			fprintf(stderr, "backlog: %s: %s\n",
			    mode_names[opt.mode], status);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void
parse_options(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"token", required_argument, NULL, 'T'},
		{"timeout", required_argument, NULL, 'O'},
		{"idle", required_argument, NULL, 'I'},
		{"linger", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'H'},
		{NULL, 0, NULL, 0},
	};
	static char default_id[64];
	const char *mode;
	int ch;

	while ((ch = getopt_long(argc, argv, "h:p:V:i:t:f:q:n:s:w:e:k:",
		    longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			opt.host = optarg;
			break;
		case 'p':
			opt.port = (int)parse_unsigned(optarg, "-p", 1, 65535);
			break;
		case 'V':
			opt.version = (int)parse_unsigned(optarg, "-V", 4, 5);
			break;
		case 'i':
			opt.client_id = optarg;
			break;
		case 't':
			opt.topic = optarg;
			break;
		case 'f':
			opt.filter = optarg;
			break;
		case 'q':
			opt.qos = (int)parse_unsigned(optarg, "-q", 0, 2);
			break;
		case 'n':
			opt.count = parse_unsigned(optarg, "-n", 1, MAX_COUNT);
			break;
		case 's':
			opt.size = parse_unsigned(optarg, "-s", HEADER_LEN,
			    16 * 1024 * 1024);
			break;
		case 'w':
			opt.window = (unsigned)parse_unsigned(optarg, "-w", 1,
			    65535);
			opt.window_given = 1;
			break;
		case 'e':
			opt.session_expiry = (uint32_t)parse_unsigned(optarg,
			    "-e", 0, UINT32_MAX);
			break;
		case 'k':
			opt.keepalive = (unsigned)parse_unsigned(optarg, "-k",
			    0, 65535);
			break;
		case 'T':
			opt.token = (uint32_t)parse_unsigned(optarg, "--token",
			    0, UINT32_MAX);
			break;
		case 'O':
			opt.timeout = parse_seconds(optarg, "--timeout");
			break;
		case 'I':
			opt.idle = parse_seconds(optarg, "--idle");
			break;
		case 'L':
			opt.linger = parse_seconds(optarg, "--linger");
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	mode = argv[optind];
	if (strcmp(mode, "subscribe") == 0)
		opt.mode = MODE_SUBSCRIBE;
	else if (strcmp(mode, "publish") == 0)
		opt.mode = MODE_PUBLISH;
	else if (strcmp(mode, "drain") == 0)
		opt.mode = MODE_DRAIN;
	else
		usage();
	if (opt.mode != MODE_PUBLISH && opt.qos == 0)
		die("-q 0: a session keeps no QoS 0 backlog; use 1 or 2");
	if (opt.client_id == NULL) {
		if (opt.mode == MODE_PUBLISH)
			snprintf(default_id, sizeof(default_id),
			    "backlog-pub-%ld", (long)getpid());
		else
			snprintf(default_id, sizeof(default_id), "backlog-sub");
		opt.client_id = default_id;
	}
	if (opt.filter == NULL)
		opt.filter = opt.topic;
	if (strlen(opt.topic) > 65535 || strlen(opt.filter) > 65535 ||
	    strlen(opt.client_id) > 65535)
		die("topic, filter or client id longer than 65535 bytes");
	if (opt.size + strlen(opt.topic) + 16 > MAX_PACKET)
		die("-s %zu: too large for one packet", opt.size);
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct client c;
	int status;

	parse_options(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	c.next_id = 1;
	if (opt.mode == MODE_PUBLISH) {
		c.id_state = xcalloc(65536, 1);
		c.payload = xcalloc(1, opt.size);
		memset(c.payload, 'x', opt.size);
	}
	c.releasing = xcalloc(65536, 1);
	if (opt.mode == MODE_DRAIN)
		c.seen = xcalloc((size_t)((opt.count + 7) / 8), 1);
	client_run(&c);
	status = report(&c);
	free(c.in.data);
	free(c.out.data);
	free(c.id_state);
	free(c.payload);
	free(c.releasing);
	free(c.seen);
	return status;
}
