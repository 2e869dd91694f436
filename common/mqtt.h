/*
 * mqtt.h - the MQTT 3.1, 3.1.1 and 5.0 codec that every PromptMQ process
 * links: packet types, reason codes, properties, decoding and encoding.
 *
 * Decoding is zero-copy and never allocates.  Strings, binary data and
 * payloads in a decoded packet are views (pointer and length) into the
 * caller's input bytes, which must stay unchanged while the packet is in
 * use.  Lists (user properties, subscription identifiers, the topic
 * filters of SUBSCRIBE and UNSUBSCRIBE, the reason codes of SUBACK and
 * UNSUBACK) are validated in full by mqtt_decode() and kept as views of
 * their raw bytes; the mqtt_*_next() iterators walk them, using a
 * struct buf_reader as the cursor.
 *
 * A connection's input is decoded like this:
 *
 *	struct mqtt_decode_opts opts = { .level = conn->level,
 *	    .direction = MQTT_TO_SERVER, .max_packet_size = conn->max };
 *	struct mqtt_packet pkt;
 *	struct mqtt_result res;
 *
 *	for (;;) {
 *		int r = mqtt_decode(in->data, in->len, &opts, &pkt, &res);
 *		if (r == MQTT_DECODE_MORE)
 *			break;		(read more; res.size is the whole
 *					 packet's size when already known)
 *		if (r == MQTT_DECODE_ERROR) {
 *			disconnect(conn, res.reason, res.what);
 *			break;
 *		}
 *		if (pkt.type == MQTT_CONNECT)
 *			opts.level = conn->level = pkt.level;
 *		handle(conn, &pkt);	(views point into in->data)
 *		buf_consume(in, res.size);
 *	}
 *
 * An error carries the MQTT 5 reason code the specification names for
 * it (res.reason) and a short static text for the log (res.what); with a
 * 3.1 or 3.1.1 client the broker closes the connection instead, except
 * for CONNECT errors that have a 3.x CONNACK return code
 * (mqtt_connack_v3_code()).  A packet larger than max_packet_size is
 * refused with 0x95 as soon as its fixed header is readable.
 *
 * Encoding appends to a struct buf and checks what it writes: a string
 * or binary field longer than 65535 bytes, a packet longer than the
 * largest Remaining Length, a property in a packet that may not carry
 * it, a QoS of 3... is an error (-1, errno EINVAL or EMSGSIZE) and the
 * buffer is left as it was.  Properties are written only at level 5;
 * at 3 and 4 they are dropped, as a broker must when it forwards a 5.0
 * message to an older client.
 *
 * Fan-out of one PUBLISH to N subscribers: decode it once, then for each
 * group of subscribers that receive the same bytes (same level, QoS,
 * RETAIN, topic alias and subscription identifiers) write the header
 * once with mqtt_encode_publish_header() and send it followed by the
 * shared payload view (an evbuffer reference, writev), patching only
 * the packet identifier per subscriber at the offset it returns:
 *
 *	struct mqtt_delivery d = { .qos = 1, .packet_id = 1 };
 *	size_t id_at;
 *
 *	mqtt_encode_publish_header(&hdr, &pkt.publish, level, &d, &id_at);
 *	for (each subscriber s) {
 *		buf_store_u16(hdr.data + id_at, next_packet_id(s));
 *		send(s, hdr.data, hdr.len, pkt.publish.payload);
 *	}
 */
#ifndef PMQ_MQTT_H
#define PMQ_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "topic.h"

/* Protocol levels, as the CONNECT packet carries them. */
#define MQTT_LEVEL_UNKNOWN	0	/* before CONNECT */
#define MQTT_LEVEL_31		3	/* MQTT 3.1, protocol name "MQIsdp" */
#define MQTT_LEVEL_311		4	/* MQTT 3.1.1, protocol name "MQTT" */
#define MQTT_LEVEL_5		5	/* MQTT 5.0, protocol name "MQTT" */

/* Largest Remaining Length and so largest packet (fixed header + body). */
#define MQTT_MAX_REMAINING	BUF_VBI_MAX
#define MQTT_MAX_PACKET		(1 + 4 + MQTT_MAX_REMAINING)
#define MQTT_MAX_STRING		65535
#define MQTT_MAX_SUB_ID		BUF_VBI_MAX
/* MQTT 3.1 client identifiers are 1 to 23 bytes. */
#define MQTT_V31_MAX_CLIENT_ID	23

enum mqtt_type {
	MQTT_CONNECT = 1,
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_PUBREC = 5,
	MQTT_PUBREL = 6,
	MQTT_PUBCOMP = 7,
	MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9,
	MQTT_UNSUBSCRIBE = 10,
	MQTT_UNSUBACK = 11,
	MQTT_PINGREQ = 12,
	MQTT_PINGRESP = 13,
	MQTT_DISCONNECT = 14,
	MQTT_AUTH = 15,	/* 5.0 only */
};

/*
 * The property sets of the will message are a context of their own; the
 * number 0 is free because packet type 0 does not exist.
 */
#define MQTT_WILL		0
#define MQTT_CONTEXT_BIT(t)	((uint16_t)(1u << (t)))

/* Who sends the packets being decoded. */
enum mqtt_direction {
	MQTT_TO_SERVER = 1,	/* a broker reading a client */
	MQTT_TO_CLIENT = 2,	/* a client (or a test) reading a broker */
};

/*
 * MQTT 5.0 reason codes (specification table 2-6).  Some values have one
 * name per packet type that uses them (0x00 is Success, Normal
 * disconnection and Granted QoS 0).
 */
enum mqtt_reason {
	MQTT_RC_SUCCESS = 0x00,
	MQTT_RC_NORMAL_DISCONNECTION = 0x00,
	MQTT_RC_GRANTED_QOS_0 = 0x00,
	MQTT_RC_GRANTED_QOS_1 = 0x01,
	MQTT_RC_GRANTED_QOS_2 = 0x02,
	MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
	MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
	MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
	MQTT_RC_CONTINUE_AUTHENTICATION = 0x18,
	MQTT_RC_REAUTHENTICATE = 0x19,
	MQTT_RC_UNSPECIFIED_ERROR = 0x80,
	MQTT_RC_MALFORMED_PACKET = 0x81,
	MQTT_RC_PROTOCOL_ERROR = 0x82,
	MQTT_RC_IMPLEMENTATION_SPECIFIC_ERROR = 0x83,
	MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84,
	MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID = 0x85,
	MQTT_RC_BAD_USER_NAME_OR_PASSWORD = 0x86,
	MQTT_RC_NOT_AUTHORIZED = 0x87,
	MQTT_RC_SERVER_UNAVAILABLE = 0x88,
	MQTT_RC_SERVER_BUSY = 0x89,
	MQTT_RC_BANNED = 0x8a,
	MQTT_RC_SERVER_SHUTTING_DOWN = 0x8b,
	MQTT_RC_BAD_AUTHENTICATION_METHOD = 0x8c,
	MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8d,
	MQTT_RC_SESSION_TAKEN_OVER = 0x8e,
	MQTT_RC_TOPIC_FILTER_INVALID = 0x8f,
	MQTT_RC_TOPIC_NAME_INVALID = 0x90,
	MQTT_RC_PACKET_IDENTIFIER_IN_USE = 0x91,
	MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND = 0x92,
	MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93,
	MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
	MQTT_RC_PACKET_TOO_LARGE = 0x95,
	MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
	MQTT_RC_QUOTA_EXCEEDED = 0x97,
	MQTT_RC_ADMINISTRATIVE_ACTION = 0x98,
	MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
	MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9a,
	MQTT_RC_QOS_NOT_SUPPORTED = 0x9b,
	MQTT_RC_USE_ANOTHER_SERVER = 0x9c,
	MQTT_RC_SERVER_MOVED = 0x9d,
	MQTT_RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9e,
	MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9f,
	MQTT_RC_MAXIMUM_CONNECT_TIME = 0xa0,
	MQTT_RC_SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xa1,
	MQTT_RC_WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xa2,
};

/* MQTT 3.1 and 3.1.1 CONNACK return codes. */
enum mqtt_v3_connack {
	MQTT_V3_ACCEPTED = 0,
	MQTT_V3_UNACCEPTABLE_PROTOCOL_VERSION = 1,
	MQTT_V3_IDENTIFIER_REJECTED = 2,
	MQTT_V3_SERVER_UNAVAILABLE = 3,
	MQTT_V3_BAD_USER_NAME_OR_PASSWORD = 4,
	MQTT_V3_NOT_AUTHORIZED = 5,
};
/* The 3.1.1 SUBACK failure return code (3.1 has none). */
#define MQTT_V311_SUBACK_FAILURE	0x80

/* MQTT 5.0 property identifiers (specification table 2-4), all 27. */
enum mqtt_prop_id {
	MQTT_PROP_PAYLOAD_FORMAT_INDICATOR = 0x01,
	MQTT_PROP_MESSAGE_EXPIRY_INTERVAL = 0x02,
	MQTT_PROP_CONTENT_TYPE = 0x03,
	MQTT_PROP_RESPONSE_TOPIC = 0x08,
	MQTT_PROP_CORRELATION_DATA = 0x09,
	MQTT_PROP_SUBSCRIPTION_IDENTIFIER = 0x0b,
	MQTT_PROP_SESSION_EXPIRY_INTERVAL = 0x11,
	MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER = 0x12,
	MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
	MQTT_PROP_AUTHENTICATION_METHOD = 0x15,
	MQTT_PROP_AUTHENTICATION_DATA = 0x16,
	MQTT_PROP_REQUEST_PROBLEM_INFORMATION = 0x17,
	MQTT_PROP_WILL_DELAY_INTERVAL = 0x18,
	MQTT_PROP_REQUEST_RESPONSE_INFORMATION = 0x19,
	MQTT_PROP_RESPONSE_INFORMATION = 0x1a,
	MQTT_PROP_SERVER_REFERENCE = 0x1c,
	MQTT_PROP_REASON_STRING = 0x1f,
	MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
	MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
	MQTT_PROP_TOPIC_ALIAS = 0x23,
	MQTT_PROP_MAXIMUM_QOS = 0x24,
	MQTT_PROP_RETAIN_AVAILABLE = 0x25,
	MQTT_PROP_USER_PROPERTY = 0x26,
	MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
	MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28,
	MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29,
	MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE = 0x2a,
};
#define MQTT_PROP_ID_MAX	0x2a

enum mqtt_prop_type {
	MQTT_PROP_TYPE_BYTE = 1,
	MQTT_PROP_TYPE_U16,	/* Two Byte Integer */
	MQTT_PROP_TYPE_U32,	/* Four Byte Integer */
	MQTT_PROP_TYPE_VBI,	/* Variable Byte Integer */
	MQTT_PROP_TYPE_UTF8,	/* UTF-8 Encoded String */
	MQTT_PROP_TYPE_BINARY,	/* Binary Data */
	MQTT_PROP_TYPE_PAIR,	/* UTF-8 String Pair */
};

struct mqtt_prop_info {
	uint8_t		 id;
	uint8_t		 type;		/* enum mqtt_prop_type */
	uint16_t	 contexts;	/* MQTT_CONTEXT_BIT() of the packets
					   (and MQTT_WILL) that may carry it */
	const char	*name;		/* as the specification spells it */
};

/* NULL for an identifier the specification does not define. */
const struct mqtt_prop_info *mqtt_prop_info(uint32_t id);

/* Bytes someone else owns: strings, binary data, payloads, raw lists. */
struct mqtt_view {
	const uint8_t	*data;
	size_t		 len;
};

#define MQTT_VIEW_STR(s)	((struct mqtt_view){ (const uint8_t *)(s), sizeof(s) - 1 })

/*
 * The properties of one packet (or of a will).  A single-valued property
 * is there when its bit is set in `present` (mqtt_props_has()); its field
 * is meaningful only then.  User Properties and Subscription Identifiers
 * may repeat: `list` holds their property records, in the order they
 * were sent, and the iterators below read them.  A decoded list may also
 * hold the other records of the packet, which the iterators skip; to
 * build a list for encoding use mqtt_user_property_add() and
 * mqtt_subscription_id_add() on a struct buf.  The encoder copies only
 * User Property and Subscription Identifier records from it.
 */
struct mqtt_props {
	uint64_t		 present;
	uint32_t		 message_expiry_interval;
	uint32_t		 session_expiry_interval;
	uint32_t		 will_delay_interval;
	uint32_t		 maximum_packet_size;
	uint16_t		 server_keep_alive;
	uint16_t		 receive_maximum;
	uint16_t		 topic_alias_maximum;
	uint16_t		 topic_alias;
	uint8_t			 payload_format_indicator;
	uint8_t			 request_problem_information;
	uint8_t			 request_response_information;
	uint8_t			 maximum_qos;
	uint8_t			 retain_available;
	uint8_t			 wildcard_subscription_available;
	uint8_t			 subscription_identifier_available;
	uint8_t			 shared_subscription_available;
	struct mqtt_view	 content_type;
	struct mqtt_view	 response_topic;
	struct mqtt_view	 correlation_data;
	struct mqtt_view	 assigned_client_identifier;
	struct mqtt_view	 authentication_method;
	struct mqtt_view	 authentication_data;
	struct mqtt_view	 response_information;
	struct mqtt_view	 server_reference;
	struct mqtt_view	 reason_string;
	struct mqtt_view	 list;
	uint32_t		 user_property_count;
	uint32_t		 subscription_identifier_count;
};

#define MQTT_PROP_BIT(id)	((uint64_t)1 << (id))
#define mqtt_props_has(p, id)	(((p)->present & MQTT_PROP_BIT(id)) != 0)

/* Mark a single-valued property present (its field set by the caller). */
#define mqtt_props_set(p, id)	((p)->present |= MQTT_PROP_BIT(id))

/* Iterating the repeatable properties: 1 and the next one, 0 at the end. */
void	mqtt_props_iter(const struct mqtt_props *, struct buf_reader *);
int	mqtt_user_property_next(struct buf_reader *, struct mqtt_view *name,
	    struct mqtt_view *value);
int	mqtt_subscription_id_next(struct buf_reader *, uint32_t *);
/* The first Subscription Identifier (the only one in SUBSCRIBE), or 0. */
uint32_t mqtt_props_subscription_id(const struct mqtt_props *);

/* Building a list for encoding: append one record to a struct buf. */
int	mqtt_user_property_add(struct buf *, const void *name, size_t,
	    const void *value, size_t);
int	mqtt_subscription_id_add(struct buf *, uint32_t);

/* Same properties, comparing views by their bytes. */
int	mqtt_props_equal(const struct mqtt_props *, const struct mqtt_props *);

/*
 * Packets.  Flags that exist only at some levels are zero at the others
 * (there is no no_local before 5.0, for instance).
 */
struct mqtt_connect {
	uint8_t			 clean_start;	/* Clean Session before 5.0 */
	uint8_t			 will;		/* Will Flag */
	uint8_t			 will_qos;
	uint8_t			 will_retain;
	uint8_t			 has_username;
	uint8_t			 has_password;
	uint16_t		 keep_alive;
	struct mqtt_props	 props;
	struct mqtt_view	 client_id;
	struct mqtt_props	 will_props;
	struct mqtt_view	 will_topic;
	struct mqtt_view	 will_payload;
	struct mqtt_view	 username;
	struct mqtt_view	 password;
};

struct mqtt_connack {
	uint8_t			 session_present;
	uint8_t			 reason;	/* 5.0 reason code, or the
						   3.x return code (0..5) */
	struct mqtt_props	 props;
};

struct mqtt_publish {
	uint8_t			 qos;
	uint8_t			 dup;
	uint8_t			 retain;
	uint16_t		 packet_id;	/* 0 at QoS 0 */
	struct mqtt_view	 topic;		/* may be empty with a Topic Alias */
	struct mqtt_props	 props;
	struct mqtt_view	 payload;
};

/* PUBACK, PUBREC, PUBREL and PUBCOMP. */
struct mqtt_ack {
	uint16_t		 packet_id;
	uint8_t			 reason;	/* 0 before 5.0 */
	struct mqtt_props	 props;
};

/* One entry of a SUBSCRIBE payload, as the iterator returns it. */
struct mqtt_subscription {
	struct mqtt_view	 filter;	/* as sent, "$share/..." included */
	struct topic_filter	 parsed;	/* share name and matched filter */
	uint8_t			 qos;		/* requested maximum QoS */
	uint8_t			 no_local;
	uint8_t			 retain_as_published;
	uint8_t			 retain_handling;
};

#define MQTT_SUB_NO_LOCAL		0x04
#define MQTT_SUB_RETAIN_AS_PUBLISHED	0x08
#define MQTT_SUB_RETAIN_HANDLING(n)	((uint8_t)((n) << 4))

/* SUBSCRIBE and UNSUBSCRIBE. */
struct mqtt_filter_list {
	uint16_t		 packet_id;
	struct mqtt_props	 props;
	struct mqtt_view	 list;		/* raw payload: (filter, options)*
						   or filter* */
	uint32_t		 count;
};

/* SUBACK and UNSUBACK: one reason code byte per filter. */
struct mqtt_reason_list {
	uint16_t		 packet_id;
	struct mqtt_props	 props;
	struct mqtt_view	 reasons;	/* UNSUBACK before 5.0: empty */
};

/* DISCONNECT and AUTH. */
struct mqtt_reason_packet {
	uint8_t			 reason;
	struct mqtt_props	 props;
};

struct mqtt_packet {
	uint8_t		 type;		/* enum mqtt_type */
	uint8_t		 level;		/* level it was decoded at */
	union {
		struct mqtt_connect		 connect;
		struct mqtt_connack		 connack;
		struct mqtt_publish		 publish;
		struct mqtt_ack			 ack;		/* PUBACK..PUBCOMP */
		struct mqtt_filter_list		 subscribe;
		struct mqtt_filter_list		 unsubscribe;
		struct mqtt_reason_list		 suback;
		struct mqtt_reason_list		 unsuback;
		struct mqtt_reason_packet	 disconnect;
		struct mqtt_reason_packet	 auth;
	};
};

/* Building SUBSCRIBE and UNSUBSCRIBE lists for encoding. */
int	mqtt_subscribe_add(struct buf *, const void *filter, size_t,
	    uint8_t options);
int	mqtt_unsubscribe_add(struct buf *, const void *filter, size_t);

/* Iterating decoded lists: 1 and the next entry, 0 at the end. */
void	mqtt_list_iter(const struct mqtt_view *, struct buf_reader *);
int	mqtt_subscribe_next(struct buf_reader *, struct mqtt_subscription *);
int	mqtt_unsubscribe_next(struct buf_reader *, struct mqtt_view *filter);

/* Decoding. */
enum mqtt_decode_status {
	MQTT_DECODE_OK = 0,
	MQTT_DECODE_MORE = 1,	/* a partial packet: read more bytes */
	MQTT_DECODE_ERROR = -1,
};

/* Check that a PUBLISH or will payload that says it is UTF-8 is (0x99). */
#define MQTT_DECODE_CHECK_PAYLOAD_FORMAT	0x01

struct mqtt_decode_opts {
	uint8_t		 level;		/* MQTT_LEVEL_*, 0 before CONNECT */
	uint8_t		 direction;	/* enum mqtt_direction */
	uint8_t		 flags;		/* MQTT_DECODE_* */
	uint32_t	 max_packet_size; /* whole packet; 0: MQTT_MAX_PACKET */
	uint32_t	 max_topic_levels; /* topics and filters; 0: any */
};

struct mqtt_result {
	size_t		 size;		/* OK: bytes of the packet; MORE: the
					   packet's total size, 0 if the fixed
					   header is still incomplete */
	uint8_t		 reason;	/* ERROR: reason code to send */
	uint8_t		 type;		/* packet type, 0 if unknown */
	uint8_t		 level;		/* CONNECT: level it asked for, even on
					   error (0 if not reached, or if the
					   protocol name is neither MQTT nor
					   MQIsdp: no level of ours) */
	const char	*what;		/* ERROR: static text for the log */
};

/*
 * The packet is only meaningful after MQTT_DECODE_OK; after MORE or
 * ERROR its contents are unspecified.  Nothing is kept between calls.
 */
int	mqtt_decode(const uint8_t *data, size_t len,
	    const struct mqtt_decode_opts *, struct mqtt_packet *,
	    struct mqtt_result *);
/* A whole PUBLISH kept as a client sent it at `level`: 0, or -1. */
int	mqtt_decode_stored_publish(const uint8_t *raw, size_t len,
	    uint8_t level, struct mqtt_packet *);

/* Encoding: 0, or -1 with errno and the buffer unchanged. */
int	mqtt_encode(struct buf *, const struct mqtt_packet *, uint8_t level);
/* Bytes mqtt_encode() would write, 0 if it would fail. */
size_t	mqtt_encoded_size(const struct mqtt_packet *, uint8_t level);

/*
 * What changes per receiver when a PUBLISH is forwarded.  The message's
 * own Topic Alias and Subscription Identifiers are replaced by these;
 * every other property is sent as the message has it (set its Message
 * Expiry Interval to the remaining lifetime before encoding).
 */
struct mqtt_delivery {
	uint8_t		 qos;
	uint8_t		 dup;
	uint8_t		 retain;
	uint16_t	 packet_id;	/* placeholder to patch, non-zero at QoS>0 */
	uint16_t	 topic_alias;	/* 0: none */
	uint8_t		 alias_only;	/* the receiver knows the alias: send
					   an empty topic name */
	const uint32_t	*sub_ids;
	size_t		 sub_id_count;
};

/*
 * Everything of a PUBLISH but its payload; the Remaining Length counts
 * msg->payload.len, so the payload bytes must follow on the wire.
 * *packet_id_at (may be NULL) gets the offset in the buffer of the
 * packet identifier, or SIZE_MAX at QoS 0.
 */
int	mqtt_encode_publish_header(struct buf *, const struct mqtt_publish *msg,
	    uint8_t level, const struct mqtt_delivery *, size_t *packet_id_at);

/* Names and tables. */
const char	*mqtt_type_name(uint8_t type);
const char	*mqtt_reason_name(uint8_t reason);
/* Whether a 5.0 packet of this type may carry this reason code. */
int		 mqtt_reason_allowed(uint8_t type, uint8_t reason);
/* 3.x CONNACK return code for a 5.0 reason, -1: close without CONNACK. */
int		 mqtt_connack_v3_code(uint8_t reason);
/* 3.x SUBACK return code for a 5.0 reason, -1: none (3.1 cannot refuse). */
int		 mqtt_suback_v3_code(uint8_t reason, uint8_t level);

#endif /* PMQ_MQTT_H */
