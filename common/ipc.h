/*
 * ipc.h - the one IPC envelope and message catalogue of PromptMQ.
 *
 * Every message between our processes, on the supervisor's control
 * channels (AF_UNIX SOCK_SEQPACKET) and on the nng links between workers
 * and walsvc (push/pull over ipc://), is a batch:
 *
 *	batch header, 32 bytes, big-endian
 *	  u32 magic "PMQI"   u16 version     u16 record count
 *	  u8  sender role    u8  flags (0)   u16 sender slot
 *	  u32 reserved (0)
 *	  u64 sender generation
 *	  u64 target generation (0: whoever holds the endpoint)
 *	records, each:
 *	  u16 type   u16 flags (0)   u32 body length
 *	  u64 sequence (per-stream, meaning set by the type)
 *	  u64 correlation id (request/reply; 0 otherwise)
 *	  body
 *
 * A batch carries everything one event-loop turn produced for one
 * destination.  A receiver checks magic, version, the exact lengths and
 * the target generation before looking at a record, and every handler
 * checks the sender role and the body size of its record type.
 *
 * IPC_VERSION changes whenever the header, a record type or a body layout
 * changes.  A child that sees another version at its first handshake
 * exits with PMQ_EXIT_NORESPAWN: the binaries were replaced under a
 * running supervisor.
 */
#ifndef PMQ_IPC_H
#define PMQ_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define IPC_MAGIC		0x504d5149u	/* "PMQI" */
#define IPC_VERSION		14
#define IPC_BATCH_HEADER_SIZE	32
#define IPC_RECORD_HEADER_SIZE	24
#define IPC_BATCH_MAX_RECORDS	65535
/* A control-channel datagram; nng links carry larger batches. */
#define IPC_CTL_MAX		65536

/* Exit status of a child that must not be respawned. */
#define PMQ_EXIT_NORESPAWN	78

enum ipc_role {
	IPC_ROLE_NONE = 0,
	IPC_ROLE_SUPERVISOR = 1,
	IPC_ROLE_WORKER = 2,
	IPC_ROLE_WALSVC = 3,
	IPC_ROLE_TOOL = 4,	/* operator and test tools */
	IPC_ROLE_METRICS = 5,	/* promptmq-metrics, the HTTP endpoint */
};
#define IPC_ROLE_MAX IPC_ROLE_METRICS

/*
 * The catalogue.  Grouped by channel and direction; docs/architecture.md
 * describes each body.  Numbers are part of the wire format.
 */
enum ipc_type {
	/* supervisor -> child, control channel */
	IPC_CTL_HELLO = 0x0101,	/* body: u32 nworkers, u32 reserved */
	IPC_CTL_CONFIG = 0x0102,	/* body: (name\0value\0)* */
	IPC_CTL_PEERS = 0x0103,	/* body: (u8 role, u8 0, u16 slot, u64 gen)* */
	IPC_CTL_STOP = 0x0104,	/* body: empty */
	IPC_CTL_RELOAD = 0x0105,	/* body: (name\0value\0)* changed options */
	IPC_CTL_REOPEN_LOGS = 0x0106,	/* body: empty */
	IPC_CTL_LISTEN_ADD = 0x0107,	/* body: u8 IPC_LISTEN_*, address;
					 * fd: the slot's socket */
	IPC_CTL_LISTEN_REMOVE = 0x0108,	/* body: address no longer served */
	IPC_CTL_ADOPT = 0x0109,	/* body: u8 IPC_LISTEN_*; fd: a client
				 * connection */
	IPC_CTL_AUTH = 0x010a,	/* body: u8 IPC_AUTH_*, file name; fd: its
				   bytes */
	IPC_CTL_FAILURES = 0x010b,	/* body: empty; fd: the shared table
					   of failed logins (failtab.h) */
	IPC_CTL_METRICS = 0x010c,	/* body: u8 IPC_METRICS_*; fd: the
					   counter region or the socket */

	/* child -> supervisor, control channel */
	IPC_CTL_READY = 0x0181,	/* body: u64 max worker generation in the log */
	IPC_CTL_STATUS = 0x0182,	/* body: (name\0u64)* counters */
	IPC_CTL_FATAL = 0x0183,	/* body: why the child is exiting (text) */

	/* worker/tool -> walsvc */
	IPC_WAL_APPEND = 0x0201,	/* seq: append stream; corr: a publish's
					   first send: when it was read
					   (monotonic µs), else 0; body: u8
					   kind, payload */
	IPC_WAL_SYNC = 0x0202,	/* seq: 0; a client waits on the next
				   commit: do not wait for a larger group */

	/* walsvc -> worker/tool */
	IPC_WAL_DURABLE = 0x0281,	/* seq: durable up to; body: u64 written up to */
	IPC_WAL_RESEND = 0x0282,	/* seq: first sequence walsvc still needs */
	IPC_WAL_REFUSED = 0x0283,	/* seq: first refused; body: u32 errno */
	IPC_WAL_FULL = 0x0284,	/* body: u8 1 over storage.max-disk (refuse
				   new QoS 1/2 messages), 0 not */

	/* worker -> walsvc: the client-id registry (corr: connection id) */
	IPC_REG_CLAIM = 0x0301,	/* body: IPC_CLAIM_HEADER (u8 flags, u8 level,
				   u16 window, u32 session expiry), client id;
				   with IPC_CLAIM_WILL: u16 id length, client
				   id, u32 Will Delay Interval, the will as a
				   PUBLISH at the claim's level */
	IPC_REG_RELEASE = 0x0302,	/* body: IPC_RELEASE_HEADER (u8 flags, u8 0,
				   u16 0, u32 session expiry, u64 last append
				   sequence, u64 highest session sequence
				   sent to the client), client id */
	IPC_STORED_ASK = 0x0305,	/* body empty: every stored filter's
					   count, please (STORED_RESET,
					   STORED_SET*) */
	IPC_RET_LOOKUP = 0x0304,	/* corr: conn; seq: the worker's number
				   of the lookup (it may be sent twice);
				   the retained messages for a SUBSCRIBE:
				   u16 n, (u16 slot, u64 gen, u64 seq) x n
				   barriers, then (u8 QoS, u8 0, u16
				   length, filter)* */
	IPC_REG_SYNC = 0x0303,	/* corr: the REG_SYNC_ASK answered; body: u8
				   0, then (u64 conn, u16 node, u16 window,
				   u32 epoch, u64 session id, u64 will id, u16
				   len, client id)*; the last one: u8
				   IPC_SYNC_LAST, u64 last append sequence,
				   u32 number of clients the list named */

	/* walsvc -> worker */
	IPC_REG_GRANTED = 0x0381,	/* body: IPC_GRANTED_SIZE: u8 session
					   present, u8 0, u16 node, u32 epoch,
					   u64 session id (0: nothing stored),
					   u64 will id (0: no will) */
	IPC_REG_KICK = 0x0382,	/* body: u8 MQTT 5 reason (0x8E another
				   connection took the id, 0x98 an
				   operator), client id */
	IPC_REG_REFUSED = 0x0383,	/* body: u8 MQTT 5 reason (0x97: the broker
					   holds mqtt.max-connections clients) */
	IPC_SESS_SUB = 0x0384,	/* corr: conn; before REG_GRANTED, one per
				   stored subscription: u8 QoS, u8 flags
				   (1 no-local, 2 retain as published), u8
				   retain handling, u8 0, u32 identifier,
				   filter */
	IPC_SESS_MSG = 0x0385,	/* corr: conn; seq: session sequence; body:
				   IPC_SESS_MSG_HEADER (u16 node, u16 0, u32
				   epoch, u64 session id, u8 QoS, u8 flags
				   (IPC_SESS_MSG_*), u8 level, u8 0, u32 what
				   is left of its Message Expiry Interval,
				   0xffffffff: none, u64 when a worker read
				   it, monotonic µs, 0: not measured), the
				   PUBLISH as received */
	IPC_SESS_QOS2 = 0x0386,	/* corr: conn; before REG_GRANTED: (u16)* the
				   packet ids of QoS 2 messages the client
				   published and has not released */
	IPC_RET_MSG = 0x0387,	/* corr: conn; seq: the lookup's number; a
				   retained message: u8 QoS to send at, u8
				   level, u16 0, u32 remaining Message
				   Expiry Interval (0xffffffff: none), the
				   PUBLISH */
	IPC_RET_DONE = 0x0388,	/* corr: conn; seq: the lookup's number;
				   body empty: that was all */
	IPC_WILL_PUBLISH = 0x0389,	/* body: u8 level, u8 0, a will's
					   PUBLISH, durable: route it as if
					   published here */
	IPC_REG_SYNC_ASK = 0x038A,	/* corr: ask id; body empty: list your
					   clients (REG_SYNC), after a restart
					   of walsvc, again until it has them
					   all */

	IPC_STORED_SET = 0x038B,	/* body: u32 stored sessions subscribed
					   (0: none), the filter or
					   "$share/GROUP/FILTER" */
	IPC_STORED_RESET = 0x038C,	/* body empty: forget walsvc's filters,
					   the whole list follows */
	IPC_SHARE_PUBLISH = 0x038D,	/* body: u8 level, u8 0, u16 length,
					   "$share/GROUP/FILTER", the PUBLISH:
					   place it with a clean member */

	/* worker <-> worker: routing */
	IPC_ROUTE_SET = 0x0401,	/* corr: ack id or 0; body: u32 count, filter */
	IPC_ROUTE_ACK = 0x0402,	/* corr: the acknowledged id; body: u64 the
				   acker's last append sequence */
	IPC_ROUTE_RESET = 0x0403,	/* body: empty; forget the sender's filters */
	IPC_ROUTE_SYNCED = 0x0404,	/* corr: ack id; the full table was sent */
	IPC_FWD_PUBLISH = 0x0405,	/* body: u8 level, u8 flags
					   (IPC_FWD_*), u64 origin conn, u64
					   when it was read (monotonic µs; 0:
					   not measured); with IPC_FWD_PICKS:
					   u16 n, n x (u32 k, u16 length,
					   "$share/GROUP/FILTER"); the PUBLISH
					   packet as received */

	/* promptmqctl -> supervisor -> children, control channels (adm.h) */
	IPC_ADM_REQUEST = 0x0501,	/* corr: request id; body:
					   (name\0value\0)*, "cmd" first */
	IPC_ADM_ROWS = 0x0581,	/* corr: request id; body: rows */
	IPC_ADM_DONE = 0x0582,	/* corr: request id; body: u8 ADM_DONE_*,
				   a message (text) */
};

/* The files IPC_CTL_AUTH hands from the supervisor to a worker. */
#define IPC_AUTH_PASSWORD_FILE	1	/* auth.password-file */
#define IPC_AUTH_ACL_FILE	2	/* auth.acl-file */
/* tls.cert-file, tls.key-file, the CAs of tls.ca-file and tls.ca-dir,
 * tls.psk-file and the session ticket keys (80 bytes) in one memory
 * file, each as u32 length then bytes, in that order (length 0: not
 * configured) */
#define IPC_AUTH_TLS		3
#define IPC_AUTH_JWT_KEY	4	/* auth.jwt-key-file */
#define IPC_AUTH_SCRAM_FILE	5	/* auth.password-file's SCRAM
					   verifiers (its name + ".scram") */
#define IPC_AUTH_KINDS		6

/* What a listening socket speaks (CTL_LISTEN_ADD, CTL_ADOPT, and -k on
 * a worker's command line: one letter of IPC_LISTEN_LETTERS per
 * inherited socket). */
#define IPC_LISTEN_MQTT		0	/* server.bind */
#define IPC_LISTEN_TLS		1	/* tls.bind */
#define IPC_LISTEN_WS		2	/* websocket.bind (TLS or not) */
#define IPC_LISTEN_KINDS	3
#define IPC_LISTEN_LETTERS	"mtw"
/* metrics.bind: the supervisor's own set, served by promptmq-metrics,
 * never by a worker (so not among the kinds above) */
#define IPC_LISTEN_HTTP		3

/* What IPC_CTL_METRICS hands over. */
#define IPC_METRICS_REGION	1	/* the counters (metrics.h): workers
					   read-write, promptmq-metrics
					   read-only */
#define IPC_METRICS_LISTEN	2	/* metrics.bind's socket */

/* The name of a kind in the log. */
static inline const char *
ipc_listen_name(unsigned kind)
{
	switch (kind) {
	case IPC_LISTEN_TLS:
		return "tls";
	case IPC_LISTEN_WS:
		return "websocket";
	case IPC_LISTEN_HTTP:
		return "http";
	default:
		return "mqtt";
	}
}

/*
 * Types of message log records: the u8 that starts a WAL_APPEND body and
 * the type field of the record on disk (docs/wal-format.md).  The
 * payload is opaque to the log; its writers define it per type.
 * Numbers are part of the format; 8..255 are free for new types.
 */
enum wal_record_type {
	WAL_TYPE_PUBLISH = 1,		/* a message accepted from a client
					   (walrec.h: formats 1 and 2) */
	WAL_TYPE_SESSION = 2,		/* a stored session opened, gone
					   offline or ended */
	WAL_TYPE_SUBSCRIPTION = 3,	/* a subscription of a stored session
					   added or removed */
	WAL_TYPE_RETAINED = 4,		/* a retained message set or cleared */
	WAL_TYPE_ACK = 5,		/* delivery progress of a stored
					   session: acknowledged, received */
	WAL_TYPE_COPY = 6,		/* a message still needed, copied
					   forward so that its old segment can
					   go: u8 1, u8 0, u16 0, u32 0, u64 its
					   original LSN, its publish payload */
	WAL_TYPE_WILL = 7,		/* a connection's will kept, cleared
					   or due (walrec.h) */
};

/* Fixed parts of the registry and session bodies above. */
#define IPC_CLAIM_HEADER	8
#define IPC_CLAIM_CLEAN_START	0x01
#define IPC_CLAIM_WILL		0x02
#define IPC_RELEASE_HEADER	24
#define IPC_RELEASE_EXPIRY	0x01	/* the expiry field is set */
#define IPC_SYNC_LAST		0x01	/* the worker's list is complete */
#define IPC_SYNC_ENTRY		34	/* without the client id */
#define IPC_SYNC_LAST_SIZE	13	/* u8 flags, u64 seq, u32 count */
#define IPC_GRANTED_SIZE	24
#define IPC_SESS_SUB_HEADER	8
#define IPC_SESS_MSG_HEADER	32
#define IPC_RET_MSG_HEADER	8
#define IPC_RET_BARRIER		18
#define IPC_SESS_MSG_DUP	0x01	/* sent before: set DUP */
#define IPC_SESS_MSG_RELEASE	0x02	/* PUBREC recorded: send PUBREL only */
#define IPC_SESS_MSG_RETAIN	0x04	/* RETAIN as published */
#define IPC_SESS_MSG_SHARED	0x08	/* placed by a shared subscription */

/* IPC_FWD_PUBLISH flags (its second byte) */
#define IPC_FWD_PICKS		0x01	/* shared picks follow */
#define IPC_FWD_PLACED_AGAIN	0x02	/* not to be placed a third time */

struct ipc_identity {
	uint8_t		role;
	uint16_t	slot;
	uint64_t	gen;
};

struct ipc_record {
	uint16_t	 type;
	uint64_t	 seq;
	uint64_t	 corr;
	const uint8_t	*body;
	uint32_t	 len;
};

/* A decoded batch being walked record by record. */
struct ipc_batch {
	struct ipc_identity	 sender;
	uint64_t		 target_gen;
	uint16_t		 count;
	uint16_t		 next;	/* records returned so far */
	struct buf_reader	 rd;
};

enum ipc_error {
	IPC_OK = 0,
	IPC_ESHORT = -1,	/* shorter than a header or a declared length */
	IPC_EMAGIC = -2,	/* not one of ours */
	IPC_EVERSION = -3,	/* another envelope version */
	IPC_ELONG = -4,		/* bytes left over after the last record */
	IPC_EROLE = -5,		/* unknown sender role */
};

const char	*ipc_role_name(uint8_t);
const char	*ipc_type_name(uint16_t);
const char	*ipc_strerror(int);

/* Writing: begin a batch, add records, end it (fills in the count). */
int	 ipc_batch_begin(struct buf *, const struct ipc_identity *,
	    uint64_t target_gen);
int	 ipc_record_add(struct buf *, uint16_t type, uint64_t seq,
	    uint64_t corr, const void *body, size_t len);
size_t	 ipc_record_begin(struct buf *, uint16_t type, uint64_t seq,
	    uint64_t corr);
int	 ipc_record_end(struct buf *, size_t start);
int	 ipc_batch_count(const struct buf *);
int	 ipc_batch_end(struct buf *);

/* Reading: open checks the header; next returns 1, 0 at the end, <0. */
int	 ipc_batch_open(struct ipc_batch *, const void *, size_t);
int	 ipc_batch_next(struct ipc_batch *, struct ipc_record *);

/* Body helpers for the (name\0value\0)* lists of CONFIG and RELOAD. */
int	 ipc_pairs_next(struct buf_reader *, const char **name,
	    const char **value);

#endif /* PMQ_IPC_H */
