/*
 * walrec.h - the payloads of message log records: one encoder and one
 * decoder per record type and format, shared by the workers that write
 * them, walsvc that applies them and the dump tool that prints them.
 *
 * The log itself treats payloads as opaque bytes (wal.h); the layouts
 * are specified in docs/wal-format.md.  All integers are big-endian.
 * A decoder checks every length and returns -1 for a payload that is not
 * exactly what its format says; the views it fills point into the
 * payload and are valid as long as it is.
 *
 * Sessions are named by (node, session id): the session id is the LSN of
 * the record that created the session, unique on one node; the node id
 * is 0 on a single broker and names the node in a cluster.
 */
#ifndef PMQ_WALREC_H
#define PMQ_WALREC_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "sub.h"

/* publish: a QoS >= 1 message accepted from a client */
#define WALREC_PUBLISH_V1	1	/* u8 1, u8 level, packet */
#define WALREC_PUBLISH_V2	2	/* with the publisher and receive time */
#define WALREC_PUBLISH_V3	3	/* a will: v2 and the will's id */
#define WALREC_PUBLISH_V4	4	/* v2 and shared groups placed in walsvc */

struct walrec_publish {
	uint8_t		 format;
	uint8_t		 level;		/* MQTT protocol level of the packet */
	uint16_t	 node;
	uint64_t	 sid;		/* publisher's stored session, 0: none */
	uint32_t	 epoch;
	uint16_t	 packet_id;	/* as the client sent it */
	uint8_t		 picks_only;	/* v4: for the picks alone, not for
					   plain subscribers, not retained */
	int64_t		 received;	/* wall clock, ms; 0: unknown (v1) */
	uint64_t	 will;		/* v3: the will this message is */
	/* v4: the shared groups whose member is one of walsvc's stored
	 * sessions, each (u32 ticket, u16 length, "$share/GROUP/FILTER");
	 * read them with walrec_pick_next() */
	const uint8_t	*picks;
	size_t		 picks_len;
	uint16_t	 npicks;
	const uint8_t	*packet;	/* the PUBLISH packet as received */
	size_t		 len;
};

int	 walrec_publish_encode(struct buf *, const struct walrec_publish *);
int	 walrec_publish_decode(const uint8_t *, size_t, struct walrec_publish *);
/* Add one pick to a list being built (b), for walrec_publish's picks. */
void	 walrec_pick_add(struct buf *, uint32_t ticket, const uint8_t *filter,
	    size_t len);
/* The next pick of a list: 1, 0 at its end, -1 malformed. */
int	 walrec_pick_next(struct buf_reader *, uint32_t *ticket,
	    const uint8_t **filter, size_t *len);

/* session: a stored session created, resumed, gone offline or ended */
enum walrec_session_op {
	WALREC_SESSION_OPEN = 1,	/* created (sid 0) or resumed */
	WALREC_SESSION_OFFLINE = 3,	/* its connection ended */
	WALREC_SESSION_END = 4,		/* gone with all it held */
};

enum walrec_session_end {
	WALREC_END_CLEAN_START = 1,	/* a clean start over it */
	WALREC_END_EXPIRED = 2,		/* offline past its expiry interval */
	WALREC_END_DISCONNECT = 3,	/* expiry 0 when its connection ended */
	WALREC_END_DELETED = 4,		/* by an operator (promptmqctl) */
};

#define WALREC_EXPIRY_NEVER	0xffffffffu

struct walrec_session {
	uint8_t		 op;		/* enum walrec_session_op */
	uint16_t	 node;
	uint32_t	 epoch;
	uint64_t	 sid;		/* 0 in an OPEN that creates one */
	int64_t		 time;		/* wall clock, ms */
	uint32_t	 expiry;	/* seconds; WALREC_EXPIRY_NEVER */
	uint8_t		 level;		/* OPEN: the client's protocol level */
	uint8_t		 why;		/* END: enum walrec_session_end */
	const uint8_t	*client_id;	/* OPEN: the client id */
	uint16_t	 idlen;
};

int	 walrec_session_encode(struct buf *, const struct walrec_session *);
int	 walrec_session_decode(const uint8_t *, size_t, struct walrec_session *);

/* subscription: a stored session's subscription added or removed */
enum walrec_sub_op {
	WALREC_SUB_ADD = 1,
	WALREC_SUB_REMOVE = 2,
};

struct walrec_subscription {
	uint8_t			 op;
	uint16_t		 node;
	uint32_t		 epoch;
	uint64_t		 sid;
	struct sub_options	 options;	/* ADD */
	const uint8_t		*filter;	/* as the client sent it */
	uint16_t		 len;
};

/* The options' flags byte (1 no-local, 2 retain as published), as the
 * subscription record, the index and SESS_SUB carry it; and back. */
uint8_t	 walrec_sub_flags(const struct sub_options *);
int	 walrec_sub_flags_set(struct sub_options *, uint8_t flags);

int	 walrec_subscription_encode(struct buf *,
	    const struct walrec_subscription *);
int	 walrec_subscription_decode(const uint8_t *, size_t,
	    struct walrec_subscription *);

/* ack: delivery progress of a stored session, by session sequence */
enum walrec_ack_state {
	WALREC_ACK_DONE = 1,		/* PUBACK or PUBCOMP: delivered */
	WALREC_ACK_RECEIVED = 2,	/* PUBREC: the release is due */
	WALREC_ACK_RELEASED = 3,	/* PUBREL of a QoS 2 message the client
					   published: the key is its packet
					   id, free again */
};

struct walrec_ack {
	uint16_t	 node;
	uint32_t	 epoch;
	uint64_t	 sid;
	uint16_t	 count;
	const uint8_t	*entries;	/* count x (u64 key, u8 state): the key
					   is a session sequence, or for
					   RELEASED a packet id */
};

#define WALREC_ACK_ENTRY	9
#define WALREC_ACK_MAX		4096	/* entries in one record */

/* An ack record is built alone in a buffer: begin (which empties it),
 * add 1 .. WALREC_ACK_MAX entries, end (which fills in the count). */
int	 walrec_ack_begin(struct buf *, uint16_t node, uint64_t sid,
	    uint32_t epoch);
int	 walrec_ack_add(struct buf *, uint64_t seq, uint8_t state);
int	 walrec_ack_end(struct buf *);
int	 walrec_ack_decode(const uint8_t *, size_t, struct walrec_ack *);
/* The i-th entry of a decoded ack record. */
void	 walrec_ack_entry(const struct walrec_ack *, uint16_t i,
	    uint64_t *seq, uint8_t *state);

/* will: a connection's will kept, cleared, or due once it ended */
enum walrec_will_op {
	WALREC_WILL_SET = 1,		/* kept with the claim, before CONNACK */
	WALREC_WILL_CLEAR = 2,		/* not to be published */
	WALREC_WILL_END = 3,		/* its connection ended without
					   DISCONNECT 0x00: due at time +
					   min(delay, session expiry) */
};

enum walrec_will_clear {
	WALREC_CLEAR_DISCONNECT = 1,	/* DISCONNECT 0x00 */
	WALREC_CLEAR_RESUMED = 2,	/* the session was resumed in time */
};

struct walrec_will {
	uint8_t		 op;		/* enum walrec_will_op */
	uint16_t	 node;
	uint32_t	 arg;		/* SET: Will Delay Interval; END:
					   Session Expiry Interval in force;
					   CLEAR: enum walrec_will_clear */
	uint64_t	 id;		/* the LSN of its SET (0 in a SET) */
	int64_t		 time;		/* END: wall clock, ms */
	uint8_t		 level;		/* SET: the packet's protocol level */
	const uint8_t	*client_id;
	uint16_t	 idlen;
	const uint8_t	*packet;	/* SET: the will as a PUBLISH */
	size_t		 len;
};

int	 walrec_will_encode(struct buf *, const struct walrec_will *);
int	 walrec_will_decode(const uint8_t *, size_t, struct walrec_will *);

/* copy: a message still needed, copied forward from an old segment */
struct walrec_copy {
	uint64_t	 original;	/* LSN of the publish record */
	const uint8_t	*publish;	/* its payload (a walrec_publish) */
	size_t		 len;
};

#define WALREC_COPY_HEADER	16

int	 walrec_copy_encode(struct buf *, uint64_t original,
	    const struct walrec_publish *);
int	 walrec_copy_decode(const uint8_t *, size_t, struct walrec_copy *);

#endif /* PMQ_WALREC_H */
