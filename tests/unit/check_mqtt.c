/*
 * check_mqtt.c - Check suites for the MQTT codec, one per packet type:
 * every valid sample round-trips at each level it exists at
 * (decode(encode(x)) == x), a table of invalid packets each fails with
 * its exact reason code and message, and feeding any packet a byte at a
 * time gives the same answer as feeding it whole.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check_mqtt.h"
#include "mqtt_testlib.h"

#define S	MQTT_TO_SERVER
#define C	MQTT_TO_CLIENT

/* An invalid packet: a first byte and a body (the length is added). */
struct bad {
	uint8_t		 level;		/* decode option; 0 for CONNECT */
	uint8_t		 dir;
	int		 first;		/* -1: hex is the whole packet */
	const char	*hex;
	uint8_t		 reason;
	const char	*what;
	uint32_t	 max;		/* maximum packet size, 0: none */
	uint8_t		 flags;
};

#define B(l, d, f, h, r, w)	{ l, d, f, h, r, w, 0, 0 }
#define RAW(l, d, h, r, w)	{ l, d, -1, h, r, w, 0, 0 }

#define MALF	MQTT_RC_MALFORMED_PACKET
#define PROTO	MQTT_RC_PROTOCOL_ERROR
#define CHECKPF	MQTT_DECODE_CHECK_PAYLOAD_FORMAT

/* CONNECT bodies start with these. */
#define V4	"00 04 4d 51 54 54 04 "
#define V5	"00 04 4d 51 54 54 05 "
#define V3	"00 06 4d 51 49 73 64 70 03 "
#define KA	"00 3c "

static const struct bad bad_packets[] = {
	/* CONNECT */
	B(0, S, 0x10, "00 04 4d 51 54 58 04 02" KA "00 01 63",
	    MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION, "unknown protocol name"),
	B(0, S, 0x10, "00 04 4d 51 54 54 03 02" KA "00 01 63",
	    MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
	    "unsupported protocol level"),
	B(0, S, 0x10, "00 04 4d 51 54 54 06 02" KA "00 01 63",
	    MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
	    "unsupported protocol level"),
	B(0, S, 0x10, "00 06 4d 51 49 73 64 70 04 02" KA "00 01 63",
	    MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION,
	    "unsupported protocol level"),
	B(0, S, 0x10, V4 "03" KA "00 01 63", MALF,
	    "reserved connect flag set"),
	B(0, S, 0x10, V4 "1e" KA "00 01 63 00 01 74 00 00", MALF,
	    "will QoS 3"),
	B(0, S, 0x10, V4 "0a" KA "00 01 63", MALF,
	    "will QoS or retain without a will"),
	B(0, S, 0x10, V4 "22" KA "00 01 63", MALF,
	    "will QoS or retain without a will"),
	B(0, S, 0x10, V4 "42" KA "00 01 63 00 01 70", MALF,
	    "password without user name"),
	B(0, S, 0x10, V3 "42" KA "00 01 63 00 01 70", MALF,
	    "password without user name"),
	B(0, S, 0x10, V3 "02" KA "00 00", MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
	    "3.1 client identifier must be 1 to 23 bytes"),
	B(0, S, 0x10, V3 "02" KA "00 18 61 61 61 61 61 61 61 61 61 61 61 61 "
	    "61 61 61 61 61 61 61 61 61 61 61 61",
	    MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
	    "3.1 client identifier must be 1 to 23 bytes"),
	B(0, S, 0x10, V4 "00" KA "00 00", MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
	    "empty client identifier without clean session"),
	B(0, S, 0x10, V4 "02" KA "00 01 ff", MALF,
	    "string is not valid UTF-8"),
	B(0, S, 0x10, V4 "02" KA "00 01 00", MALF,
	    "string is not valid UTF-8"),
	B(0, S, 0x10, V4 "02" KA "00 03 ed a0 80", MALF,
	    "string is not valid UTF-8"),
	B(0, S, 0x10, V4 "02" KA "00 01 63 00", MALF,
	    "packet length does not match its fields"),
	B(0, S, 0x10, V4 "02" KA "00 05 63", MALF,
	    "string runs past the packet"),
	B(0, S, 0x10, V4 "02", MALF, "packet too short"),
	B(0, S, 0x10, V4 "06" KA "00 01 63 00 03 61 2f 23 00 00",
	    PROTO, "wildcard in a topic name"),
	B(0, S, 0x10, V4 "06" KA "00 01 63 00 00 00 00",
	    PROTO, "empty topic"),
	B(0, S, 0x10, V4 "06" KA "00 01 63 00 01 74 00 05", MALF,
	    "binary data runs past the packet"),
	B(0, S, 0x10, V4 "82" KA "00 01 63", MALF,
	    "string runs past the packet"),
	B(0, S, 0x10, V5 "02" KA "03 16 00 00 00 01 63", PROTO,
	    "authentication data without a method"),
	B(0, S, 0x10, V5 "02" KA "0a 11 00 00 00 01 11 00 00 00 02 00 01 63",
	    PROTO, "property included more than once"),
	B(0, S, 0x10, V5 "02" KA "03 23 00 01 00 01 63", MALF,
	    "property not allowed in this packet"),
	B(0, S, 0x10, V5 "02" KA "02 04 00 00 01 63", MALF,
	    "malformed or unknown property"),
	B(0, S, 0x10, V5 "02" KA "03 81 00 00 00 01 63", MALF,
	    "malformed or unknown property"),
	B(0, S, 0x10, V5 "02" KA "03 21 00 00 00 01 63", PROTO,
	    "property value may not be 0"),
	B(0, S, 0x10, V5 "02" KA "05 27 00 00 00 00 00 01 63", PROTO,
	    "property value may not be 0"),
	B(0, S, 0x10, V5 "02" KA "02 17 02 00 01 63", PROTO,
	    "property value is neither 0 nor 1"),
	B(0, S, 0x10, V5 "02" KA "02 19 05 00 01 63", PROTO,
	    "property value is neither 0 nor 1"),
	B(0, S, 0x10, V5 "02" KA "7f 00 01 63", MALF,
	    "properties run past the end of the packet"),
	B(0, S, 0x10, V5 "02" KA "80 80 80 80 01", MALF,
	    "malformed property length"),
	B(0, S, 0x10, V5 "02" KA "02 11 00", MALF,
	    "malformed or unknown property"),
	B(0, S, 0x10, V5 "02" KA "07 26 00 01 ff 00 01 61 00 01 63", MALF,
	    "user property is not valid UTF-8"),
	B(0, S, 0x10, V5 "02" KA "04 15 00 01 c0 00 01 63", MALF,
	    "property string is not valid UTF-8"),
	B(0, S, 0x10, V5 "06" KA "00 00 01 63 0a 18 00 00 00 01 18 00 00 00 02"
	    " 00 01 74 00 00", PROTO, "property included more than once"),
	B(0, S, 0x10, V5 "06" KA "00 00 01 63 05 11 00 00 00 01 00 01 74 00 00",
	    MALF, "property not allowed in this packet"),
	B(0, S, 0x10, V5 "06" KA "00 00 01 63 02 01 02 00 01 74 00 00", PROTO,
	    "property value is neither 0 nor 1"),
	B(0, S, 0x10, V5 "06" KA "00 00 01 63 04 08 00 01 2b 00 01 74 00 00",
	    PROTO, "response topic is not a valid topic name"),

	/* CONNACK */
	B(4, C, 0x20, "00 00 00", MALF, "packet length does not match its "
	    "fields"),
	B(4, C, 0x20, "00", MALF, "packet too short"),
	B(4, C, 0x20, "02 00", MALF, "reserved acknowledge flag set"),
	B(3, C, 0x20, "80 00", MALF, "reserved acknowledge flag set"),
	B(4, C, 0x20, "00 06", PROTO, "unknown CONNACK return code"),
	B(4, C, 0x20, "01 05", PROTO, "session present with a refusal"),
	B(5, C, 0x20, "01 87 00", PROTO, "session present with a refusal"),
	B(5, C, 0x20, "00 04 00", PROTO, "reason code not allowed in CONNACK"),
	B(5, C, 0x20, "00 00", MALF, "malformed property length"),
	B(5, C, 0x20, "00 00 02 24 02", PROTO,
	    "property value is neither 0 nor 1"),
	B(5, C, 0x20, "00 00 02 25 02", PROTO,
	    "property value is neither 0 nor 1"),
	B(5, C, 0x20, "00 00 05 18 00 00 00 01", MALF,
	    "property not allowed in this packet"),
	B(5, C, 0x20, "00 00 06 13 00 01 13 00 02", PROTO,
	    "property included more than once"),

	/* PUBLISH */
	B(4, S, 0x30, "00 03 61 2f 2b", PROTO,
	    "wildcard in a topic name"),
	B(4, S, 0x30, "00 03 61 2f 23 78", PROTO,
	    "wildcard in a topic name"),
	B(3, S, 0x30, "00 00 78", PROTO, "empty topic"),
	B(4, S, 0x30, "00 02 61 ff", MALF, "string is not valid UTF-8"),
	B(4, S, 0x30, "00 02 61 01", MALF, "topic is not acceptable UTF-8"),
	B(4, S, 0x30, "00 03 61 c2 85", MALF, "topic is not acceptable UTF-8"),
	B(4, S, 0x30, "00 04 61 ef bf bf", MALF,
	    "topic is not acceptable UTF-8"),
	B(4, S, 0x30, "00 05 61", MALF, "string runs past the packet"),
	B(4, S, 0x32, "00 01 61 00 00", PROTO, "packet identifier 0"),
	B(4, S, 0x34, "00 01 61 00", MALF, "packet too short"),
	B(5, S, 0x30, "00 00 00", PROTO, "empty topic name without a topic "
	    "alias"),
	B(5, S, 0x30, "00 01 61 03 23 00 00", MQTT_RC_TOPIC_ALIAS_INVALID,
	    "topic alias 0"),
	B(5, S, 0x30, "00 01 61 06 23 00 01 23 00 02", PROTO,
	    "property included more than once"),
	B(5, S, 0x30, "00 01 61 02 0b 01", PROTO,
	    "subscription identifier in a client's PUBLISH"),
	B(5, C, 0x30, "00 01 61 02 0b 00", PROTO,
	    "property value may not be 0"),
	B(5, C, 0x30, "00 01 61 05 0b 80 80 80 80", MALF,
	    "malformed or unknown property"),
	B(5, S, 0x30, "00 01 61 04 08 00 01 23", PROTO,
	    "response topic is not a valid topic name"),
	B(5, S, 0x30, "00 01 61 03 08 00 00", PROTO,
	    "response topic is not a valid topic name"),
	B(5, S, 0x30, "00 01 61 02 01 02", PROTO,
	    "property value is neither 0 nor 1"),
	B(5, S, 0x30, "00 01 61 08 09 00 01 61 09 00 01 62", PROTO,
	    "property included more than once"),
	B(5, S, 0x30, "00 01 61 04 1f 00 01 61", MALF,
	    "property not allowed in this packet"),
	B(5, S, 0x30, "00 01 61 05 11 00 00 00 01", MALF,
	    "property not allowed in this packet"),
	B(5, S, 0x30, "00 01 61", MALF, "malformed property length"),
	B(5, S, 0x30, "00 01 61 03 03 00 02 61", MALF,
	    "malformed or unknown property"),
	{ 5, S, 0x30, "00 01 61 02 01 01 ff fe", MQTT_RC_PAYLOAD_FORMAT_INVALID,
	    "payload is not the UTF-8 its format indicator says", 0,
	    CHECKPF },

	/* PUBACK, PUBREC, PUBREL, PUBCOMP */
	B(4, S, 0x40, "00 01 00", MALF,
	    "packet length does not match its fields"),
	B(4, S, 0x40, "00 00", PROTO, "packet identifier 0"),
	B(4, S, 0x40, "00", MALF, "packet too short"),
	B(3, C, 0x50, "00 01 00 00", MALF,
	    "packet length does not match its fields"),
	B(5, S, 0x40, "00 01 92", PROTO,
	    "reason code not allowed in this acknowledgement"),
	B(5, S, 0x50, "00 01 04", PROTO,
	    "reason code not allowed in this acknowledgement"),
	B(5, S, 0x62, "00 01 10", PROTO,
	    "reason code not allowed in this acknowledgement"),
	B(5, C, 0x70, "00 01 87", PROTO,
	    "reason code not allowed in this acknowledgement"),
	B(5, S, 0x40, "00 01 00 08 1f 00 01 61 1f 00 01 62", PROTO,
	    "property included more than once"),
	B(5, S, 0x62, "00 01 00 03 23 00 01", MALF,
	    "property not allowed in this packet"),
	B(5, C, 0x70, "00 01 00 05 1f 00", MALF,
	    "properties run past the end of the packet"),
	B(5, C, 0x50, "00 00 10", PROTO, "packet identifier 0"),

	/* SUBSCRIBE */
	B(4, S, 0x82, "00 01", PROTO, "SUBSCRIBE without a topic filter"),
	B(5, S, 0x82, "00 01 00", PROTO, "SUBSCRIBE without a topic filter"),
	B(4, S, 0x82, "00 00 00 01 61 00", MALF, "packet identifier 0"),
	B(4, S, 0x82, "00 01 00 05 61 2f 23 2f 62 00", MALF,
	    "wildcard does not fill a whole level"),
	B(4, S, 0x82, "00 01 00 02 61 2b 00", MALF,
	    "wildcard does not fill a whole level"),
	B(4, S, 0x82, "00 01 00 00 00", MALF, "empty topic"),
	B(4, S, 0x82, "00 01 00 08 24 73 68 61 72 65 2f 67 00",
	    MQTT_RC_TOPIC_FILTER_INVALID, "malformed $share filter"),
	B(4, S, 0x82, "00 01 00 09 24 73 68 61 72 65 2f 2f 78 00",
	    MQTT_RC_TOPIC_FILTER_INVALID, "malformed $share filter"),
	B(4, S, 0x82, "00 01 00 0a 24 73 68 61 72 65 2f 67 2b 2f 78 00",
	    MQTT_RC_TOPIC_FILTER_INVALID, "malformed $share filter"),
	B(4, S, 0x82, "00 01 00 09 24 73 68 61 72 65 2f 67 2f 00",
	    MQTT_RC_TOPIC_FILTER_INVALID, "malformed $share filter"),
	B(4, S, 0x82, "00 01 00 01 80 00", MALF, "string is not valid UTF-8"),
	B(4, S, 0x82, "00 01 00 01 7f 00", MALF,
	    "topic is not acceptable UTF-8"),
	B(4, S, 0x82, "00 01 00 01 61", MALF, "topic filter without options"),
	B(4, S, 0x82, "00 01 00 01 61 04", MALF,
	    "reserved subscription option bits set"),
	B(3, S, 0x82, "00 01 00 01 61 03", MALF, "requested QoS 3"),
	B(5, S, 0x82, "00 01 00 00 01 61 03", PROTO, "requested QoS 3"),
	B(5, S, 0x82, "00 01 00 00 01 61 30", PROTO, "retain handling 3"),
	B(5, S, 0x82, "00 01 00 00 01 61 40", MALF,
	    "reserved subscription option bits set"),
	B(5, S, 0x82, "00 01 00 00 0a 24 73 68 61 72 65 2f 67 2f 78 04", PROTO,
	    "no local on a shared subscription"),
	B(5, S, 0x82, "00 01 04 0b 01 0b 02 00 01 61 00", PROTO,
	    "subscription identifier more than once"),
	B(5, S, 0x82, "00 01 02 0b 00 00 01 61 00", PROTO,
	    "property value may not be 0"),
	B(5, S, 0x82, "00 01 04 1f 00 01 61 00 01 61 00", MALF,
	    "property not allowed in this packet"),

	/* SUBACK */
	B(4, C, 0x90, "00 01", PROTO, "acknowledgement without a reason code"),
	B(3, C, 0x90, "00 01 80", PROTO,
	    "reason code not allowed in this acknowledgement"),
	B(4, C, 0x90, "00 01 00 03", PROTO,
	    "reason code not allowed in this acknowledgement"),
	B(5, C, 0x90, "00 01 00 11", PROTO,
	    "reason code not allowed in this acknowledgement"),
	B(5, C, 0x90, "00 01 00", PROTO,
	    "acknowledgement without a reason code"),
	B(4, C, 0x90, "00 00 00", PROTO, "packet identifier 0"),
	B(5, C, 0x90, "00 01 02 0b 01 00", MALF,
	    "property not allowed in this packet"),

	/* UNSUBSCRIBE */
	B(4, S, 0xa2, "00 01", PROTO, "UNSUBSCRIBE without a topic filter"),
	B(5, S, 0xa2, "00 01 00", PROTO, "UNSUBSCRIBE without a topic filter"),
	B(4, S, 0xa2, "00 01 00 02 61 23", MALF,
	    "wildcard does not fill a whole level"),
	B(4, S, 0xa2, "00 01 00 03 61 2f", MALF, "string runs past the packet"),
	B(5, S, 0xa2, "00 01 02 0b 01 00 01 61", MALF,
	    "property not allowed in this packet"),
	B(3, S, 0xa2, "00 00 00 01 61", MALF, "packet identifier 0"),

	/* UNSUBACK */
	B(4, C, 0xb0, "00 01 00", MALF,
	    "packet length does not match its fields"),
	B(5, C, 0xb0, "00 01 00", PROTO,
	    "acknowledgement without a reason code"),
	B(5, C, 0xb0, "00 01 00 01", PROTO,
	    "reason code not allowed in this acknowledgement"),
	B(5, C, 0xb0, "00 01 02 0b 01 00", MALF,
	    "property not allowed in this packet"),

	/* PINGREQ, PINGRESP */
	B(4, S, 0xc0, "00", MALF, "packet length does not match its fields"),
	B(5, C, 0xd0, "00", MALF, "packet length does not match its fields"),

	/* DISCONNECT */
	B(4, S, 0xe0, "00", MALF, "packet length does not match its fields"),
	B(5, S, 0xe0, "10", PROTO, "reason code not allowed in DISCONNECT"),
	B(5, C, 0xe0, "00 05 11 00 00 00 01", PROTO,
	    "session expiry interval in a server's DISCONNECT"),
	B(5, S, 0xe0, "00 03 23 00 01", MALF,
	    "property not allowed in this packet"),
	B(5, S, 0xe0, "00 05 1f 00", MALF,
	    "properties run past the end of the packet"),
	B(5, S, 0xe0, "00 00 00", MALF, "packet length does not match its "
	    "fields"),

	/* AUTH */
	B(5, C, 0xf0, "18", MALF, "AUTH without properties"),
	B(5, C, 0xf0, "00 00", PROTO, "AUTH without an authentication method"),
	B(5, S, 0xf0, "18 04 16 00 01 61", PROTO,
	    "AUTH without an authentication method"),
	B(5, S, 0xf0, "80 00", PROTO, "reason code not allowed in AUTH"),
	B(5, S, 0xf0, "18 08 15 00 01 61 15 00 01 62", PROTO,
	    "property included more than once"),
	B(5, S, 0xf0, "18 05 15 00 01 61 24", MALF,
	    "malformed or unknown property"),
};

/* Fixed-header faults, whatever the type. */
static const struct bad bad_headers[] = {
	RAW(4, S, "00 00", PROTO, "reserved packet type 0"),
	RAW(4, S, "30 80 80 80 80 01", MALF, "malformed remaining length"),
	RAW(4, S, "30 ff ff ff ff 7f", MALF, "malformed remaining length"),
	RAW(4, S, "30 80 00", MALF, "malformed remaining length"),
	RAW(4, S, "c0 80 80 00", MALF, "malformed remaining length"),
	{ 4, S, -1, "30 0b", MQTT_RC_PACKET_TOO_LARGE,
	    "packet larger than the maximum packet size", 12, 0 },
	{ 5, S, -1, "30 ff ff ff 7f", MQTT_RC_PACKET_TOO_LARGE,
	    "packet larger than the maximum packet size", 0x10000, 0 },
	RAW(0, S, "c0 00", PROTO, "first packet is not CONNECT"),
	RAW(0, S, "30 03 00 01 61", PROTO, "first packet is not CONNECT"),
	RAW(4, S, "f0 00", MALF, "AUTH before MQTT 5.0"),
	RAW(3, C, "f0 00", MALF, "AUTH before MQTT 5.0"),
	RAW(4, S, "20 02 00 00", PROTO,
	    "packet type not allowed in this direction"),
	RAW(4, C, "10 00", PROTO, "packet type not allowed in this direction"),
	RAW(4, S, "90 03 00 01 00", PROTO,
	    "packet type not allowed in this direction"),
	RAW(4, S, "d0 00", PROTO, "packet type not allowed in this direction"),
	RAW(4, C, "c0 00", PROTO, "packet type not allowed in this direction"),
	RAW(4, C, "82 00", PROTO, "packet type not allowed in this direction"),
	RAW(4, C, "e0 00", PROTO, "packet type not allowed in this direction"),
	RAW(5, S, "b0 00", PROTO, "packet type not allowed in this direction"),
	RAW(0, S, "11 00", MALF, "invalid fixed header flags"),
	RAW(4, S, "36 00", MALF, "invalid fixed header flags"),
	RAW(4, S, "38 00", MALF, "invalid fixed header flags"),
	RAW(4, S, "42 02 00 01", MALF, "invalid fixed header flags"),
	RAW(4, S, "60 02 00 01", MALF, "invalid fixed header flags"),
	RAW(4, S, "6a 02 00 01", MALF, "invalid fixed header flags"),
	RAW(4, S, "80 00", MALF, "invalid fixed header flags"),
	RAW(3, S, "83 00", MALF, "invalid fixed header flags"),
	RAW(5, S, "a0 00", MALF, "invalid fixed header flags"),
	RAW(4, S, "c1 00", MALF, "invalid fixed header flags"),
	RAW(5, S, "e2 00", MALF, "invalid fixed header flags"),
	RAW(5, S, "f1 00", MALF, "invalid fixed header flags"),
	RAW(4, C, "28 00", MALF, "invalid fixed header flags"),
	RAW(5, C, "b4 00", MALF, "invalid fixed header flags"),
	RAW(4, C, "9f 00", MALF, "invalid fixed header flags"),
	RAW(4, C, "d8 00", MALF, "invalid fixed header flags"),
	RAW(4, S, "71 02 00 01", MALF, "invalid fixed header flags"),
	RAW(4, S, "54 02 00 01", MALF, "invalid fixed header flags"),
};

#define NBAD	(sizeof(bad_packets) / sizeof(bad_packets[0]))
#define NHDR	(sizeof(bad_headers) / sizeof(bad_headers[0]))

/* The packet bytes of a table entry. */
static size_t
bad_bytes(const struct bad *b, uint8_t *out, size_t cap)
{
	uint8_t		 body[512];
	struct buf	 w = BUF_INITIALIZER;
	size_t		 n;

	if (b->first < 0)
		return mqtt_hex(b->hex, out, cap);
	n = mqtt_hex(b->hex, body, sizeof(body));
	buf_add_u8(&w, (uint8_t)b->first);
	buf_add_vbi(&w, (uint32_t)n);
	buf_add(&w, body, n);
	ck_assert(!buf_failed(&w) && w.len <= cap);
	memcpy(out, w.data, w.len);
	n = w.len;
	buf_free(&w);
	return n;
}

int
decode_with(const uint8_t *p, size_t n, uint8_t level, uint8_t direction,
    struct mqtt_packet *pkt, struct mqtt_result *res)
{
	struct mqtt_decode_opts	 o = { level, direction, 0, 0, 0 };

	return mqtt_decode(p, n, &o, pkt, res);
}

/*
 * One invalid packet: whole, it fails with the expected reason and text;
 * every prefix either waits for more bytes or fails the same way.
 */
static void
check_bad(const struct bad *b)
{
	struct mqtt_decode_opts	 o = { b->level, b->dir, b->flags, b->max, 0 };
	struct mqtt_packet	 pkt;
	struct mqtt_result	 res;
	uint8_t			 p[600];
	size_t			 n = bad_bytes(b, p, sizeof(p)), i;
	int			 r;

	r = mqtt_decode(p, n, &o, &pkt, &res);
	ck_assert_msg(r == MQTT_DECODE_ERROR, "'%s' decoded (%d)", b->hex, r);
	ck_assert_msg(res.reason == b->reason,
	    "'%s': reason 0x%02x (%s), expected 0x%02x", b->hex, res.reason,
	    res.what, b->reason);
	ck_assert_str_eq(res.what, b->what);
	for (i = 0; i < n; i++) {
		struct mqtt_result	 part;

		r = mqtt_decode(p, i, &o, &pkt, &part);
		if (r == MQTT_DECODE_MORE)
			continue;
		ck_assert_msg(r == MQTT_DECODE_ERROR &&
		    part.reason == res.reason && part.what == res.what,
		    "'%s': prefix of %zu bytes gives %d", b->hex, i, r);
	}
}

/* Index lists of bad_packets per packet type, built once. */
static size_t	 bad_index[16][64];
static size_t	 bad_count[16];

static void
bad_index_build(void)
{
	size_t	 i;
	int	 t;

	if (bad_count[1] != 0)
		return;
	for (i = 0; i < NBAD; i++) {
		t = bad_packets[i].first >> 4;
		if (bad_count[t] == 64)
			abort();
		bad_index[t][bad_count[t]++] = i;
	}
}

/* Loop tests get only an index; the type travels in a global per run. */
static uint8_t	 running_type;

START_TEST(test_invalid_packet)
{
	ck_assert_uint_lt((size_t)_i, bad_count[running_type]);
	check_bad(&bad_packets[bad_index[running_type][_i]]);
}
END_TEST

START_TEST(test_invalid_header)
{
	check_bad(&bad_headers[_i]);
}
END_TEST

/*
 * Round trip: encode each sample of the type at its level, decode, and
 * find the same packet; the decoded packet encodes to the same bytes;
 * every strict prefix asks for more.
 */
static void
check_sample(const struct mqtt_sample *s)
{
	struct buf		 b = BUF_INITIALIZER, b2 = BUF_INITIALIZER;
	struct mqtt_packet	 pkt;
	struct mqtt_result	 res;
	uint8_t			 level = s->pkt.level;
	size_t			 i;
	int			 r;

	ck_assert_msg(mqtt_encode(&b, &s->pkt, level) == 0,
	    "%s (level %u) does not encode", s->name, level);
	ck_assert_uint_eq(b.len, mqtt_encoded_size(&s->pkt, level));
	r = decode_with(b.data, b.len, s->pkt.type == MQTT_CONNECT ? 0 : level,
	    s->direction, &pkt, &res);
	ck_assert_msg(r == MQTT_DECODE_OK, "%s (level %u): %s", s->name,
	    level, res.what);
	ck_assert_uint_eq(res.size, b.len);
	ck_assert_msg(mqtt_packet_equal(&s->pkt, &pkt),
	    "%s (level %u) differs after the round trip", s->name, level);
	ck_assert_int_eq(mqtt_encode(&b2, &pkt, level), 0);
	ck_assert_uint_eq(b2.len, b.len);
	ck_assert(memcmp(b.data, b2.data, b.len) == 0);
	for (i = 0; i < b.len; i++) {
		r = decode_with(b.data, i, level, s->direction, &pkt, &res);
		ck_assert_msg(r == MQTT_DECODE_MORE,
		    "%s: prefix of %zu bytes gives %d", s->name, i, r);
		ck_assert(res.size == 0 || res.size == b.len);
		if (i >= 2 && b.len < 128)
			ck_assert_uint_eq(res.size, b.len);
	}
	/* Two packets back to back: the first is consumed alone. */
	ck_assert_int_eq(mqtt_encode(&b, &s->pkt, level), 0);
	r = decode_with(b.data, b.len, level, s->direction, &pkt, &res);
	ck_assert_int_eq(r, MQTT_DECODE_OK);
	ck_assert_uint_eq(res.size, b.len / 2);
	buf_free(&b);
	buf_free(&b2);
}

START_TEST(test_round_trip)
{
	const struct mqtt_sample	*s;
	size_t				 n = mqtt_samples(&s), i, seen = 0;
	uint8_t				 levels = 0;

	for (i = 0; i < n; i++) {
		if (s[i].pkt.type != running_type)
			continue;
		check_sample(&s[i]);
		levels |= (uint8_t)(1u << s[i].pkt.level);
		seen++;
	}
	ck_assert_uint_gt(seen, 0);
	/* Every type exists at 3, 4 and 5, but AUTH only at 5. */
	ck_assert_uint_eq(levels, running_type == MQTT_AUTH ? 1u << 5 :
	    (1u << 3 | 1u << 4 | 1u << 5));
}
END_TEST

/* Fixtures set the type of the suite being run (fork mode or not). */
static void	 set_type_connect(void) { running_type = MQTT_CONNECT; }
static void	 set_type_connack(void) { running_type = MQTT_CONNACK; }
static void	 set_type_publish(void) { running_type = MQTT_PUBLISH; }
static void	 set_type_puback(void) { running_type = MQTT_PUBACK; }
static void	 set_type_pubrec(void) { running_type = MQTT_PUBREC; }
static void	 set_type_pubrel(void) { running_type = MQTT_PUBREL; }
static void	 set_type_pubcomp(void) { running_type = MQTT_PUBCOMP; }
static void	 set_type_subscribe(void) { running_type = MQTT_SUBSCRIBE; }
static void	 set_type_suback(void) { running_type = MQTT_SUBACK; }
static void	 set_type_unsubscribe(void) { running_type = MQTT_UNSUBSCRIBE; }
static void	 set_type_unsuback(void) { running_type = MQTT_UNSUBACK; }
static void	 set_type_pingreq(void) { running_type = MQTT_PINGREQ; }
static void	 set_type_pingresp(void) { running_type = MQTT_PINGRESP; }
static void	 set_type_disconnect(void) { running_type = MQTT_DISCONNECT; }
static void	 set_type_auth(void) { running_type = MQTT_AUTH; }

static void (*const set_type[16])(void) = {
	NULL, set_type_connect, set_type_connack, set_type_publish,
	set_type_puback, set_type_pubrec, set_type_pubrel, set_type_pubcomp,
	set_type_subscribe, set_type_suback, set_type_unsubscribe,
	set_type_unsuback, set_type_pingreq, set_type_pingresp,
	set_type_disconnect, set_type_auth,
};

Suite *
mqtt_type_suite(uint8_t type)
{
	Suite	*s = suite_create(mqtt_type_name(type));
	TCase	*tc;

	bad_index_build();
	tc = tcase_create("round trip");
	tcase_add_unchecked_fixture(tc, set_type[type], NULL);
	tcase_add_test(tc, test_round_trip);
	suite_add_tcase(s, tc);
	if (bad_count[type] > 0) {
		tc = tcase_create("invalid");
		tcase_add_unchecked_fixture(tc, set_type[type], NULL);
		tcase_add_loop_test(tc, test_invalid_packet, 0,
		    (int)bad_count[type]);
		suite_add_tcase(s, tc);
	}
	return s;
}

Suite *
mqtt_fixed_header_suite(void)
{
	Suite	*s = suite_create("fixed header");
	TCase	*tc = tcase_create("invalid");

	tcase_add_loop_test(tc, test_invalid_header, 0, (int)NHDR);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(mqtt_fixed_header_suite());
	int	 failed;
	uint8_t	 t;

	for (t = MQTT_CONNECT; t <= MQTT_AUTH; t++)
		srunner_add_suite(sr, mqtt_type_suite(t));
	srunner_add_suite(sr, mqtt_props_suite());
	srunner_add_suite(sr, mqtt_encode_suite());
	srunner_add_suite(sr, mqtt_regress_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	mqtt_samples_free();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
