/*
 * worker.h - state of a connection worker process (promptmq-worker):
 * its connections, its subscription table, its links to walsvc and to
 * the other workers.
 */
#ifndef PMQ_WORKER_H
#define PMQ_WORKER_H

#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <stdint.h>

#include <event2/event_struct.h>
#include <openssl/types.h>	/* SSL, SSL_CTX: tls.c has the rest */

#include "addr.h"
#include "buf.h"
#include "clock.h"
#include "idmap.h"
#include "metrics.h"
#include "mqtt.h"
#include "proc.h"
#include "sub.h"

struct evconnlistener;
struct ipc_endpoint;
struct ipc_link;
struct walc;
struct ws_gate;

/* Why a connection is not being read (several may hold at once). */
#define PAUSE_CLAIM	0x01	/* CONNECT waits for the registry */
#define PAUSE_INFLIGHT	0x02	/* its QoS 1 and 2 messages wait for the log */
#define PAUSE_OUTPUT	0x04	/* it does not read what we send */
#define PAUSE_SUBACK	0x08	/* its SUBACK or UNSUBACK waits for the
				   other workers or the log: what it sent
				   next waits too, so that its answers keep
				   the order of its packets */

enum conn_state {
	CONN_NEW = 0,		/* waiting for CONNECT */
	CONN_AUTH,		/* CONNECT read; its password is checked */
	CONN_CLAIMING,		/* CONNECT read; the registry decides */
	CONN_ACTIVE,		/* CONNACK sent */
	CONN_CLOSING,		/* being closed; freed at the end of the turn */
};

/* A QoS 1 or 2 message sent to the client and not yet complete. */
struct inflight {
	uint64_t		 seq;		/* session sequence; 0: none */
	struct queued_msg	*keep;		/* a clean session's shared
						   delivery: placed again if
						   the session ends first */
	uint16_t		 id;
	uint8_t			 qos;
	uint8_t			 released;	/* QoS 2: PUBREL sent */
};

/* A QoS 2 message received from the client and not yet completed. */
enum qos2_in_state {
	QOS2_LOGGING = 1,	/* waiting for the log; PUBREC then */
	QOS2_RECEIVED,		/* PUBREC sent; waiting for PUBREL */
	QOS2_RELEASING,		/* PUBREL received; PUBCOMP once logged */
	QOS2_RELEASED_EARLY,	/* PUBREL received while LOGGING: PUBREC,
				   then RELEASING, once logged */
};

struct qos2_in {
	uint16_t		 id;
	uint8_t			 state;		/* enum qos2_in_state */
};

/* A QoS 1 or 2 message waiting for the client's receive window. */
struct queued_msg {
	struct queued_msg	*next;
	uint64_t		 seq;		/* session sequence; 0: none */
	uint8_t			 level;		/* of the packet below */
	uint8_t			 qos;		/* delivery QoS */
	uint8_t			 dup;
	uint8_t			 retain;	/* RETAIN to set */
	uint64_t		 received;	/* clock_mono_us() its publisher's
						   PUBLISH was read; 0: not
						   known */
	int64_t			 expires;	/* monotonic ms its Message
						   Expiry Interval ends; 0:
						   it has none */
	uint32_t		 len;
	uint8_t			 shared;	/* a shared delivery: */
	uint16_t		 group_len;	/* its group's text follows
						   the packet (0: walsvc's) */
	uint8_t			 packet[];	/* the PUBLISH as received */
};

#define NO_EXPIRY	0xffffffffu

/*
 * One subscription of a connection, kept to undo it at close; for a
 * stored session also one of walsvc's, waiting to be installed when the
 * grant comes (options as stored).
 */
struct conn_sub {
	struct conn_sub		*next;
	struct sub_options	 options;
	uint16_t		 len;
	uint8_t			 filter[];	/* as the client sent it */
};

/* The will of a connection: a PUBLISH packet built at CONNECT, sent
 * with the claim; walsvc keeps it from then on. */
struct conn_will {
	uint32_t		 delay;		/* Will Delay Interval, s */
	uint32_t		 len;
	uint8_t			 packet[];
};

struct conn {
	struct worker		*w;
	uint64_t		 id;
	int			 fd;
	enum conn_state		 state;
	uint8_t			 level;
	uint8_t			 paused;	/* PAUSE_* reasons not to read */
	uint8_t			 registered;	/* holds a registry entry */
	uint8_t			 dirty;		/* on the flush list */
	uint8_t			 normal_close;	/* DISCONNECT 0x00: no will */
	uint8_t			 want_write;	/* write event armed */
	uint8_t			 connack_flags;	/* decided at CONNECT; and
						   CONN_BY_PASSWORD */
	uint8_t			 clean_start;
	uint8_t			 stored;	/* its session is walsvc's */
	uint8_t			 ack_dirty;	/* acks to append this turn */
	uint8_t			 match_qos;	/* during one delivery */
	uint8_t			 match_rap;	/* ... retain as published */
	uint32_t		 epoch;
	uint64_t		 match_stamp;
	uint16_t		 keep_alive;	/* seconds, 0: none */
	uint16_t		 next_packet_id;
	uint16_t		 inflight_out;	/* QoS 1/2 sent, not complete */
	uint16_t		 inflight_in;	/* QoS 1 received, PUBACK owed */
	uint16_t		 q2_logging;	/* QoS 2 received, PUBREC owed */
	uint16_t		 send_max;	/* client's receive maximum */
	uint16_t		 node;		/* stored session: its name */
	uint16_t		 client_id_len;
	uint32_t		 expiry;	/* Session Expiry Interval in force */
	uint32_t		 connect_expiry;	/* as CONNECT gave it */
	uint32_t		 max_out_packet; /* client's maximum packet size */
	uint32_t		 out_msgs;	/* PUBLISHes in `out` not yet written */
	int64_t			 last_rx;	/* monotonic ms of the last packet */
	union {				/* the client's address, at accept:
					   it is logged after the socket
					   may have lost it */
		struct sockaddr		 sa;
		struct sockaddr_in	 in4;
		struct sockaddr_in6	 in6;
	}			 peer;
	uint32_t		 queued;
	int64_t			 created;
	int64_t			 claim_sent;	/* monotonic ms of the last claim */
	char			*client_id;
	char			*username;	/* as CONNECT gave it, or NULL */
	struct inflight		*inflight;	/* send_max entries, inflight_out
						   of them in use */
	struct buf		 out;		/* bytes to write */
	struct queued_msg	*qhead, *qtail;
	size_t			 queued_bytes;
	uint16_t		 alias_max;	/* Topic Alias Maximum we gave */
	uint8_t			 has_sub_ids;	/* a subscription has had a
						   Subscription Identifier */
	uint8_t			 ws_pre;	/* WebSocket: the relay's
						   preamble is still to come */
	uint8_t			 ws;		/* 1 WebSocket, 2 over TLS */
	struct conn_sub		*subs;
	struct conn		*prev, *next;	/* all connections */
	struct conn		*dirty_next;	/* flush list */
	struct conn		*ack_next;	/* acks to append */
	struct conn		*dead_next;	/* free list */
	struct event		 rev;
	struct event		*wev;		/* made when first needed: most
						   connections never wait to
						   write */
	SSL			*ssl;		/* MQTT over TLS, else NULL */
	const struct conn_rare	*rare;		/* conn_rare_none until written */
};

/*
 * What few connections need, or need for a while: an incomplete packet,
 * a stored session, retained lookups under way, QoS 2 received, what
 * CONNECT hands to the registry, TLS, SCRAM and token logins, topic
 * aliases.  An idle client needs none of it, and a worker holds as many
 * connections as there are clients, so it is made when first written:
 * until then c->rare points at conn_rare_none, read-only zeros.  Reads go
 * through c->rare; writes through conn_rare(c), which makes it (const
 * makes the compiler check).  The tick frees it again once it holds
 * nothing.
 */
struct conn_rare {
	struct buf		 in;		/* an incomplete packet */
	/* a stored session (always has these fields made) */
	uint64_t		 sid;
	uint64_t		 last_seq;	/* newest session message received */
	uint64_t		 sent_seq;	/* highest session sequence written
						   to the client */
	/* retained messages for a new subscription: sent before the rest,
	 * which waits while a lookup is out (ret_pending) */
	struct queued_msg	*rhead, *rtail;
	uint32_t		 rqueued;
	uint16_t		 ret_pending;	/* lookups out */
	struct ret_lookup	*lookups, *lookups_tail;
	struct session_ack	*acks;		/* progress to append this turn */
	uint32_t		 nacks, acks_cap;
	struct qos2_in		*q2in;		/* QoS 2 received, not complete */
	uint32_t		 nq2in, q2in_cap;
	struct conn_aliases	*aliases;	/* made when first needed */
	struct conn_sub		*granted_subs;	/* stored, before the grant */
	struct conn_will	*will;		/* until the grant */
	uint64_t		 will_id;	/* walsvc's name for it, 0: none */
	int64_t			 token_exp;	/* logged in with a token that
						   expires then (s since 1970);
						   0: no token */
	char			*tls_cn;	/* its certificate's CN, when
						   that is the user name */
	uint8_t			 tls_hs;	/* handshake under way */
	uint8_t			 tls_read_ww;	/* a read waits to write */
	uint8_t			 tls_write_wr;	/* a write waits to read */
	uint8_t			 auth_step;	/* SCRAM: AUTH_STEP_* */
	struct scram_exchange	*scram;		/* SCRAM under way, or its
						   server-final for CONNACK */
};

/* A topic named by an alias (MQTT 5, 3.3.2.3.4). */
struct topic_alias {
	uint8_t			*topic;		/* NULL: not set */
	uint16_t		 len;
	uint64_t		 used;		/* ours: when last sent (LRU) */
};

/*
 * A connection's topic aliases, both ways: the client's (alias_max of
 * them, as our CONNACK allowed) and ours (at most the client's Topic
 * Alias Maximum, capped at ALIAS_OUT_MAX).
 */
struct conn_aliases {
	struct topic_alias	*in;		/* alias_max entries, or NULL */
	struct topic_alias	*out;		/* out_max entries, or NULL */
	uint16_t		 out_max;
	uint64_t		 clock;		/* deliveries through ours */
};

#define ALIAS_OUT_MAX	64

/*
 * A retained lookup sent to walsvc and not yet answered whole.  It may
 * be sent more than once (a new walsvc, a log link that started over)
 * and so be answered more than once: the answers name its number, and
 * only those to the oldest one out count.
 */
struct ret_lookup {
	struct ret_lookup	*next;
	uint64_t		 number;	/* of this worker's lookups */
	struct buf		 filters;	/* (u8 QoS, u8 0, u16 len, filter)* */
};

/*
 * A SUBACK waiting for the other workers to apply its filters and, for
 * a stored session, for the log to hold the change; an UNSUBACK of a
 * stored session waiting for the log.
 */
struct pending_suback {
	struct pending_suback	*next;
	uint64_t		 conn_id;
	uint64_t		 need;		/* route id that must be acked */
	uint64_t		 wal_seq;	/* append that must be durable */
	uint8_t			 unsuback;
	uint16_t		 packet_id;
	uint16_t		 count;
	struct buf		 retained;	/* filters to look up after */
	uint8_t			 reasons[];
};

/*
 * What a stored session's client did, for the log: an acknowledgement
 * (PUBACK, PUBCOMP: the message is delivered; PUBREC: it is received),
 * or the PUBREL of a QoS 2 message it published.  Some answers wait for
 * the record: PUBREL after "received", PUBCOMP after "released".
 */
struct session_ack {
	uint64_t		 key;		/* session sequence; packet id */
	uint8_t			 state;		/* WALREC_ACK_* */
	uint8_t			 then;		/* ANSWER_* once durable, or 0 */
	uint16_t		 id;		/* its packet id */
};

/* What waits for the log, in append order. */
enum answer {
	ANSWER_PUBACK = 1,	/* a QoS 1 message received */
	ANSWER_PUBREC,		/* a QoS 2 message received: routed first */
	ANSWER_PUBCOMP,		/* a QoS 2 release of a stored session */
	ANSWER_PUBREL,		/* a stored session's PUBREC, recorded */
	ANSWER_PUBACK_UNMATCHED, /* a 5.0 client's QoS 1 message nobody
				   subscribed to: PUBACK 0x10 */
};

struct pending_ack {
	uint64_t		 seq;		/* append stream sequence */
	int64_t			 since;		/* monotonic ms */
	uint64_t		 conn_id;
	uint16_t		 packet_id;
	uint8_t			 kind;		/* enum answer */
	uint8_t			 level;		/* ANSWER_PUBREC: the message */
	uint32_t		 len;
	uint32_t		 placed_len;	/* its shared placement, after
						   the packet */
	uint8_t			*packet;
};

struct peer {
	struct ipc_link		*link;
	uint64_t		 gen;		/* 0: down */
	uint64_t		 acked;		/* highest route id acknowledged */
	uint64_t		 sync_id;	/* route id of our SYNCED to it */
	int			 synced_in;	/* its table reached us */
	uint64_t		 appended;	/* its last append, as its last
						   ROUTE_ACK said */
	uint64_t		 waited_id;	/* an id a SUBACK waits for */
	int64_t			 waited_since;	/* ... since (monotonic ms) */
	uint32_t		 resends;	/* tables sent again unanswered */
};

struct worker_stats {
	uint64_t		 accepted;
	uint64_t		 publishes_in;
	uint64_t		 deliveries;
	uint64_t		 forwarded;
	uint64_t		 dropped_qos0;
	uint64_t		 dropped_queue;
	uint64_t		 expired;	/* not sent: expired queued */
	uint64_t		 protocol_errors;
	uint64_t		 auth_failures;
	uint64_t		 dropped_too_large;	/* the client's maximum
							   packet size */
	uint64_t		 dropped_not_authorized; /* auth.acl-file */
	uint64_t		 dropped_no_member; /* shared: nobody left */
	/* packets and bytes in and out, by type (METRICS_PACKETS_IN..) */
	uint64_t		 traffic[METRICS_TRAFFIC][METRICS_TYPES];
	/* QoS 1 publish-to-delivery, by path (metrics.h): buckets, sum */
	uint64_t		 latency[METRICS_PATHS][METRICS_LATENCY_VALUES];
};

struct worker {
	struct proc		*proc;
	struct event_base	*base;
	struct ipc_endpoint	*endpoint;	/* our inbound pull socket */
	struct ipc_link		*wal_link;	/* to walsvc */
	struct walc		*walc;		/* append stream to the log */
	uint64_t		 walsvc_gen;
	uint64_t		 listed_for;	/* walsvc gen our clients were
						   last listed for */
	struct peer		*peers;		/* by slot; ours unused */
	uint32_t		 npeers;
	struct sub_table	*subs;
	struct sub_match	 match;
	uint64_t		 match_stamp;
	struct evconnlistener	*listeners[PROC_MAX_LISTEN];
	char			 listener_names[PROC_MAX_LISTEN][ADDR_TEXT_MAX];
	uint8_t			 listener_kinds[PROC_MAX_LISTEN];
	SSL_CTX			*tls_ctx;	/* NULL: TLS not served yet */
	struct ws_gate		*ws;		/* WebSocket thread, once
						   needed */
	struct buf		 tls_bundle;	/* what it was made from */
	int			 nlisteners;
	int			 accepting;
	int			 reserve_fd;	/* spare descriptor for EMFILE */
	int			 ipc_paused;	/* reading stopped: IPC backlog */
	int			 disk_full;	/* walsvc: storage.max-disk reached */
	struct idmap		 conns_by_id;
	struct conn		*conns;
	uint64_t		 nconns;
	uint64_t		 next_conn_id;
	struct conn		*dirty;		/* output to flush this turn */
	struct conn		*acks_due;	/* stored sessions with acks */
	struct conn		*dead;		/* to free at the end of the turn */
	struct event		*flush_ev;
	int			 flush_pending;
	struct event		*tick_ev;	/* keep-alive and time-outs */
	struct event		*startup_ev;	/* bound on the route sync wait */
	/* routing requests to the other workers */
	uint64_t		 route_issued;
	struct pending_suback	*subacks, *subacks_tail;
	uint64_t		 last_lookup;	/* number of the latest
						   retained lookup */
	/* PUBACKs owed, in append order */
	struct pending_ack	*acks;
	size_t			 acks_head, acks_tail, acks_cap;
	uint8_t			*scratch;	/* read buffer of the loop */
	struct auth		*auth;		/* the password checking thread */
	struct passwd_db	*passwd;	/* auth.password-file, or NULL */
	struct scram_db		*scram;		/* its verifiers, or NULL */
	struct failtab		*fails;		/* failed logins by address:
						   shared by the workers, or
						   (until it comes) our own */
	int			 fails_shared;
	struct acl		*acl;		/* auth.acl-file, or NULL */
	struct jwt_key		*jwt;		/* auth.jwt-key-file, or NULL */
	uint32_t		*sub_ids;	/* deliver.c: one PUBLISH's */
	size_t			 sub_ids_cap;
	struct buf		 record;	/* a log record being encoded */
	struct buf		 placed;	/* a shared message's placement */
	int			 matched;	/* the last message published
						   here matched a subscription */
	struct buf		 picks;		/* ... walsvc's part of it */
	struct buf		 resolved;	/* a PUBLISH with its alias
						   replaced by its topic */
	/* the clocks read once per batch of a client's packets (0: not in
	 * one; worker_mono_us(), _ms() and worker_wall_ms() read them then) */
	uint64_t		 rx_mono_us;
	int64_t			 rx_wall_ms;
	struct conn		**targets;	/* local receivers of one message */
	size_t			 targets_cap;
	struct worker_stats	 stats;
	metric_t		*metrics;	/* our slot's in the region the
						   metrics child reads, or NULL */
	struct metrics		*region;	/* all of it */
	uint64_t		 ipc_base[4];	/* IPC counts: the slot's
						   totals (stats.c) */
	struct sys_state	*sys;		/* $SYS topics (sys.c) */
	uint64_t		 sync_batch;	/* the log link's batch with a
						   WAL_SYNC, counted from 1
						   (peers.c); 0: none */
};

#define WORKER_READ_CHUNK	65536
#define WORKER_IPC_HIGH		(16u << 20)	/* pause reading clients */
#define WORKER_IPC_LOW		(4u << 20)	/* resume */
/* Coalescing across turns (ipc_link.h): while a commit of our appends is
 * due, what goes to walsvc waits for it, and forwards to the other
 * workers too, but each at most this long after the appends went out */
#define LOG_PACE_US		2000
#define PEER_PACE_US		1000

/* The clocks as of the packets being handled, read at most once per
 * batch; outside one, now. */
static inline uint64_t
worker_mono_us(struct worker *w)
{
	return w->rx_mono_us != 0 ? w->rx_mono_us : (uint64_t)clock_mono_us();
}

static inline int64_t
worker_mono_ms(struct worker *w)
{
	return (int64_t)(worker_mono_us(w) / 1000);
}

static inline int64_t
worker_wall_ms(struct worker *w)
{
	if (w->rx_mono_us == 0)
		return clock_wall_ms();
	if (w->rx_wall_ms == 0)
		w->rx_wall_ms = clock_wall_ms();
	return w->rx_wall_ms;
}

/* accept.c */
int	 accept_start(struct worker *);

/* deliver.c: the connection's alias tables, made if need be (NULL:
 * out of memory); and freed */
struct conn_aliases *conn_aliases(struct conn *);
void	 conn_aliases_free(struct conn *);
int	 accept_add(struct worker *, int fd, uint8_t kind);
void	 accept_remove(struct worker *, const char *name);
void	 accept_enable(struct worker *);
void	 accept_stop(struct worker *);

/* conn.c */
void	 conn_accept(struct worker *, int fd, uint8_t kind);
/* conn_close's reason when the peer gets no DISCONNECT */
#define NO_REASON	0xff
void	 conn_close(struct conn *, uint8_t reason, const char *why);
void	 conn_close_all(struct worker *, uint8_t reason);
struct buf *conn_out(struct conn *);
extern const struct conn_rare conn_rare_none;
struct conn_rare *conn_rare(struct conn *);
void	 conn_send_packet(struct conn *, const struct mqtt_packet *);
void	 conn_send_disconnect(struct conn *, uint8_t reason);
void	 conn_pause_all(struct worker *, int);
void	 conn_pause(struct conn *, uint8_t reason, int on);
void	 conn_start(struct worker *);
const char *conn_addr(const struct conn *, char *, size_t);

/* In connack_flags: logged in with a user of auth.password-file, by
 * password or by SCRAM-SHA-256 (MQTT 5 enhanced authentication). */
#define CONN_BY_PASSWORD	0x80
#define CONN_BY_SCRAM		0x40

/* Where a SCRAM exchange is (conn auth_step). */
enum {
	AUTH_STEP_NONE,
	AUTH_STEP_FINAL,	/* server-first sent; the client's next AUTH */
	AUTH_STEP_CHECK,	/* its proof is being checked (the thread) */
};

/* sys.c */
void	 sys_start(struct worker *);
void	 sys_reload(struct worker *);
void	 sys_stop(struct worker *);
/* A subscription was granted: the $SYS values it matches, retained. */
void	 sys_subscribed(struct conn *, const uint8_t *filter, size_t len,
	    uint8_t qos);

/* stats.c */
void	 stats_set_region(struct worker *, uint16_t slot, int fd);
void	 stats_publish(struct worker *);
void	 stats_latency(struct worker *, int path, uint64_t received);

/* A packet of `type`, `len` bytes, queued for a client. */
static inline void
stats_sent(struct worker *w, uint8_t type, size_t len)
{
	w->stats.traffic[METRICS_PACKETS_OUT][type & 15]++;
	w->stats.traffic[METRICS_BYTES_OUT][type & 15] += len;
}

/* auth.c */
enum {
	AUTH_OK,		/* in */
	AUTH_REFUSED,		/* CONNACK 0x87 */
	AUTH_BUSY,		/* CONNACK 0x89 */
	AUTH_PENDING,		/* connect_authenticated() says later */
	AUTH_EXCHANGE,		/* SCRAM: AUTH packets first */
};
/* ws.c */
int	 ws_hand_off(struct worker *, int fd, int relay, int tls);
void	 ws_reload(struct worker *, const enum option_id *, size_t);
void	 ws_tls_changed(struct worker *);
void	 ws_stop(struct worker *);
int	 ws_preamble(struct conn *);
int	 ws_conn_end(struct conn *);

/* tls.c */
void	 tls_set_bundle(struct worker *, int fd, const char *name);
void	 tls_start(struct worker *);
void	 tls_reload(struct worker *, const enum option_id *, size_t);
void	 tls_stop(struct worker *);
int	 tls_conn_start(struct conn *);
void	 tls_conn_end(struct conn *);
#define TLS_DONE	1
#define TLS_WANT_READ	2
#define TLS_WANT_WRITE	3
#define TLS_FAILED	(-1)
int	 tls_handshake(struct conn *);
ssize_t	 tls_read(struct conn *, void *, size_t, int *status);
ssize_t	 tls_write(struct conn *, const void *, size_t, int *status);
int	 tls_has_pending(const struct conn *);

int	 auth_start(struct worker *);
void	 auth_stop(struct worker *);
void	 auth_set_file(struct worker *, int kind, int fd, const char *name);
/* The failed logins every worker counts in (IPC_CTL_FAILURES). */
void	 auth_set_failtab(struct worker *, int fd);
/* With no auth.acl-file, always 1; else what it allows the client
 * (checked on every delivery: the common case costs one test). */
int	 auth_acl_allows(const struct conn *, const void *topic, size_t len,
	    int access);
#define auth_may(c, topic, len, access)					\
	((c)->w->acl == NULL || auth_acl_allows((c), (topic), (len), (access)))
int	 auth_may_subscribe(const struct conn *, const void *filter,
	    size_t len);
int	 auth_connect(struct conn *, const struct mqtt_connect *,
	    const char **why);
/* Whether a CONNECT's Authentication Method is one we take. */
int	 auth_method_known(const struct conn *, const struct mqtt_props *);
/* SCRAM's first step (CONNECT or AUTH 0x19): AUTH 0x18 sent; -1 with
 * *why when the client's message is not taken. */
int	 auth_scram_begin(struct conn *, const struct mqtt_props *,
	    const char **why);
/* The method and the exchange's last message, for CONNACK or AUTH. */
void	 auth_scram_props(const struct conn *, struct mqtt_props *);
/* The exchange's state, once its last message went out. */
void	 auth_scram_done(struct conn *);
/* An AUTH packet from the client. */
void	 auth_packet(struct conn *, const struct mqtt_packet *);

/* connect.c */
void	 connect_handle(struct conn *, const struct mqtt_packet *,
	    const struct mqtt_result *);
/* The password check's answer: 1 in, 0 refused, -1 not in time. */
void	 connect_authenticated(struct conn *, int ok);
/* CONNACK with a reason code >= 0x80, then the close. */
void	 connect_refuse(struct conn *, uint8_t reason, const char *why);
void	 registry_granted(struct worker *, uint64_t conn_id,
	    const uint8_t *body);
void	 registry_session_sub(struct worker *, uint64_t conn_id,
	    const uint8_t *body, size_t len);
void	 registry_kick(struct worker *, uint64_t conn_id, uint8_t reason,
	    const uint8_t *client_id, size_t len);

/* admin.c */
struct proc;
void	 admin_request(struct worker *, struct proc *,
	    const struct ipc_record *);
void	 registry_refused(struct worker *, uint64_t conn_id, uint8_t reason);
void	 registry_release(struct conn *);
void	 registry_will_clear(struct conn *);
void	 registry_send_claims_again(struct worker *);
void	 registry_list(struct worker *, uint64_t ask);
void	 registry_timeout(struct conn *);
void	 registry_claim_again(struct conn *, int64_t now);

/* publish.c: messages from clients */
void	 publish_handle(struct conn *, const struct mqtt_packet *,
	    const uint8_t *raw, size_t rawlen);
void	 pubrel_handle(struct conn *, const struct mqtt_packet *);
struct buf *publish_forward_begin(struct worker *, unsigned slot,
	    uint8_t level, uint8_t flags, uint64_t origin, uint64_t received,
	    size_t *start);
void	 publish_forward_end(struct worker *, unsigned slot, struct buf *,
	    size_t start, const uint8_t *raw, size_t rawlen);
void	 publish_forwarded(struct worker *, uint8_t level, uint8_t flags,
	    const uint8_t *body, size_t len);
/* publish_route() flags */
#define ROUTE_HERE		0x01	/* published here: to the other
					   workers too, and shared groups
					   placed */
#define ROUTE_LOG_PICKS		0x02	/* walsvc's picks need a record of
					   their own (the message has none
					   that names them) */
void	 publish_route(struct worker *, struct conn *origin, int flags,
	    const struct mqtt_publish *, uint8_t level, const uint8_t *raw,
	    size_t rawlen, uint64_t received, const struct buf *placed);
int	 publish_answer_later(struct worker *, uint64_t seq, struct conn *,
	    uint16_t packet_id, uint8_t kind);
void	 publish_durable(struct worker *, uint64_t seq);
void	 publish_check_waiting(struct worker *, int64_t now);
void	 publish_will(struct worker *, const uint8_t *body, size_t len);

/* share.c: shared subscriptions */
unsigned share_walsvc_slot(const struct worker *);
void	 share_place(struct worker *, const struct sub_match *, struct buf *);
void	 share_place_topic(struct worker *, const struct mqtt_publish *);
int	 share_walsvc_picks(const struct worker *, const struct buf *placed,
	    struct buf *picks);
void	 share_dispatch(struct worker *, const struct buf *placed,
	    uint8_t flags, int log, const struct mqtt_publish *, uint8_t level,
	    const uint8_t *raw, size_t rawlen, uint64_t origin,
	    uint64_t received);
void	 share_forwarded(struct worker *, uint8_t flags, const uint8_t *picks,
	    size_t len, uint16_t n, const struct mqtt_publish *, uint8_t level,
	    const uint8_t *raw, size_t rawlen, uint64_t received);
void	 share_place_again(struct worker *, uint8_t level, const uint8_t *raw,
	    size_t rawlen, const struct mqtt_view *group);
void	 share_handed(struct worker *, const uint8_t *body, size_t len);
void	 stored_count(struct worker *, const uint8_t *body, size_t len);
void	 stored_ask(struct worker *);

/* deliver.c: messages to clients */
/*
 * group: NULL for a plain delivery; a shared one names its group
 * ("$share/NAME/FILTER"), or has length 0 for walsvc's (SESS_MSG), whose
 * group the client's subscriptions tell.  A delivery carries the
 * Subscription Identifiers of its kind only.
 */
void	 deliver(struct conn *, const struct mqtt_publish *, uint8_t level,
	    const uint8_t *raw, size_t rawlen, uint8_t qos, uint8_t retain,
	    uint64_t received, const struct mqtt_view *group);
void	 deliver_stored(struct conn *, const struct mqtt_publish *,
	    uint8_t level, const uint8_t *raw, size_t rawlen, uint8_t qos,
	    uint64_t seq, uint8_t dup, uint8_t retain, uint32_t expiry,
	    uint64_t received, const struct mqtt_view *group);
/* A closing clean session's shared deliveries not complete, placed
 * again with the other members of their group (share.c) */
void	 deliver_share_again(struct conn *);
void	 deliver_retained(struct conn *, uint8_t level, const uint8_t *raw,
	    size_t rawlen, uint8_t qos, uint32_t expiry);
void	 deliver_release(struct conn *, uint64_t seq);
void	 deliver_queued(struct conn *);
void	 deliver_free_queue(struct conn *);
void	 deliver_send_pubrel(struct conn *, uint16_t id);
void	 puback_handle(struct conn *, const struct mqtt_packet *);
void	 pubrec_handle(struct conn *, const struct mqtt_packet *);
void	 pubcomp_handle(struct conn *, const struct mqtt_packet *);
void	 deliver_ack(struct conn *, uint8_t type, uint16_t id, uint8_t reason);

/* session.c: a stored session's side of a connection */
void	 session_message(struct worker *, uint64_t conn_id, uint64_t seq,
	    const uint8_t *body, size_t len);
void	 session_incoming(struct worker *, uint64_t conn_id,
	    const uint8_t *body, size_t len);
int	 session_ack(struct conn *, uint64_t key, uint8_t state,
	    uint8_t then, uint16_t id);
void	 session_acks_flush(struct worker *);
int	 session_ack_conn(struct conn *);
struct qos2_in *qos2_in_find(struct conn *, uint16_t id);
struct qos2_in *qos2_in_add(struct conn *, uint16_t id, uint8_t state);
void	 qos2_in_remove(struct conn *, uint16_t id);

/* subscribe.c */
void	 subscribe_handle(struct conn *, const struct mqtt_packet *);
void	 unsubscribe_handle(struct conn *, const struct mqtt_packet *);
void	 subscribe_drop_all(struct conn *);
void	 subscribe_progress(struct worker *);
void	 retained_message(struct worker *, uint64_t conn_id,
	    uint64_t lookup, const uint8_t *body, size_t len);
void	 retained_done(struct worker *, uint64_t conn_id, uint64_t lookup);
void	 retained_send_again(struct worker *);
void	 retained_free(struct conn *);

/* route.c */
uint64_t route_announce(struct worker *, const uint8_t *filter, size_t len,
	    uint32_t count, int want_ack);
uint64_t route_acked(const struct worker *);
void	 route_peers_changed(struct worker *);
void	 worker_dispatch_worker(struct worker *, struct ipc_batch *);
int	 route_ready(const struct worker *);
void	 route_check_acks(struct worker *);

/* peers.c */
int	 peers_start(struct worker *);
void	 peers_update(struct worker *);
void	 peers_flush(struct worker *);
void	 log_waited_on(struct worker *);
void	 peers_check_backlog(struct worker *);

#endif /* PMQ_WORKER_H */
