/*
 * mqtt_reason.c - names of packet types and reason codes, which 5.0
 * packet may carry which reason code (specification table 2-6 and the
 * per-packet tables of chapter 3), and the mapping of 5.0 reasons onto
 * the return codes of 3.1 and 3.1.1.
 */
#include "config.h"

#include <stddef.h>

#include "mqtt_private.h"

#define T(t)	MQTT_CONTEXT_BIT(MQTT_##t)
#define T_PUB	(T(PUBACK) | T(PUBREC))
#define T_FAIL	(T(CONNACK) | T_PUB | T(SUBACK) | T(UNSUBACK) | T(DISCONNECT))

static const struct reason_def {
	uint8_t		 code;
	uint16_t	 types;
	const char	*name;
} reason_defs[] = {
	{ 0x00, T(CONNACK) | T_PUB | T(PUBREL) | T(PUBCOMP) | T(SUBACK) |
	    T(UNSUBACK) | T(DISCONNECT) | T(AUTH), "Success" },
	{ 0x01, T(SUBACK), "Granted QoS 1" },
	{ 0x02, T(SUBACK), "Granted QoS 2" },
	{ 0x04, T(DISCONNECT), "Disconnect with Will Message" },
	{ 0x10, T_PUB, "No matching subscribers" },
	{ 0x11, T(UNSUBACK), "No subscription existed" },
	{ 0x18, T(AUTH), "Continue authentication" },
	{ 0x19, T(AUTH), "Re-authenticate" },
	{ 0x80, T_FAIL, "Unspecified error" },
	{ 0x81, T(CONNACK) | T(DISCONNECT), "Malformed Packet" },
	{ 0x82, T(CONNACK) | T(DISCONNECT), "Protocol Error" },
	{ 0x83, T_FAIL, "Implementation specific error" },
	{ 0x84, T(CONNACK), "Unsupported Protocol Version" },
	{ 0x85, T(CONNACK), "Client Identifier not valid" },
	{ 0x86, T(CONNACK), "Bad User Name or Password" },
	{ 0x87, T_FAIL, "Not authorized" },
	{ 0x88, T(CONNACK), "Server unavailable" },
	{ 0x89, T(CONNACK) | T(DISCONNECT), "Server busy" },
	{ 0x8a, T(CONNACK), "Banned" },
	{ 0x8b, T(DISCONNECT), "Server shutting down" },
	{ 0x8c, T(CONNACK) | T(DISCONNECT), "Bad authentication method" },
	{ 0x8d, T(DISCONNECT), "Keep Alive timeout" },
	{ 0x8e, T(DISCONNECT), "Session taken over" },
	{ 0x8f, T(SUBACK) | T(UNSUBACK) | T(DISCONNECT),
	    "Topic Filter invalid" },
	{ 0x90, T(CONNACK) | T_PUB | T(DISCONNECT), "Topic Name invalid" },
	{ 0x91, T_PUB | T(SUBACK) | T(UNSUBACK), "Packet Identifier in use" },
	{ 0x92, T(PUBREL) | T(PUBCOMP), "Packet Identifier not found" },
	{ 0x93, T(DISCONNECT), "Receive Maximum exceeded" },
	{ 0x94, T(DISCONNECT), "Topic Alias invalid" },
	{ 0x95, T(CONNACK) | T(DISCONNECT), "Packet too large" },
	{ 0x96, T(DISCONNECT), "Message rate too high" },
	{ 0x97, T(CONNACK) | T_PUB | T(SUBACK) | T(DISCONNECT),
	    "Quota exceeded" },
	{ 0x98, T(DISCONNECT), "Administrative action" },
	{ 0x99, T(CONNACK) | T_PUB | T(DISCONNECT), "Payload format invalid" },
	{ 0x9a, T(CONNACK) | T(DISCONNECT), "Retain not supported" },
	{ 0x9b, T(CONNACK) | T(DISCONNECT), "QoS not supported" },
	{ 0x9c, T(CONNACK) | T(DISCONNECT), "Use another server" },
	{ 0x9d, T(CONNACK) | T(DISCONNECT), "Server moved" },
	{ 0x9e, T(SUBACK) | T(DISCONNECT),
	    "Shared Subscriptions not supported" },
	{ 0x9f, T(CONNACK) | T(DISCONNECT), "Connection rate exceeded" },
	{ 0xa0, T(DISCONNECT), "Maximum connect time" },
	{ 0xa1, T(SUBACK) | T(DISCONNECT),
	    "Subscription Identifiers not supported" },
	{ 0xa2, T(SUBACK) | T(DISCONNECT),
	    "Wildcard Subscriptions not supported" },
};

static const struct reason_def *
reason_def(uint8_t code)
{
	size_t	 i;

	for (i = 0; i < sizeof(reason_defs) / sizeof(reason_defs[0]); i++)
		if (reason_defs[i].code == code)
			return &reason_defs[i];
	return NULL;
}

const char *
mqtt_reason_name(uint8_t code)
{
	const struct reason_def	*r = reason_def(code);

	return r ? r->name : "unknown reason code";
}

int
mqtt_reason_allowed(uint8_t type, uint8_t code)
{
	const struct reason_def	*r = reason_def(code);

	return r != NULL && type <= MQTT_AUTH &&
	    (r->types & MQTT_CONTEXT_BIT(type)) != 0;
}

const char *
mqtt_type_name(uint8_t type)
{
	static const char *const names[] = {
		"reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK",
		"PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK",
		"UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
		"DISCONNECT", "AUTH",
	};

	return type <= MQTT_AUTH ? names[type] : "unknown";
}

/*
 * 3.1 and 3.1.1 have six CONNACK return codes.  A refusal that has none
 * of them gets no CONNACK at all: the connection is closed ([MQTT-3.2.2-6]
 * of 3.1.1).
 */
int
mqtt_connack_v3_code(uint8_t reason)
{
	switch (reason) {
	case MQTT_RC_SUCCESS:
		return MQTT_V3_ACCEPTED;
	case MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
		return MQTT_V3_UNACCEPTABLE_PROTOCOL_VERSION;
	case MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID:
		return MQTT_V3_IDENTIFIER_REJECTED;
	case MQTT_RC_SERVER_UNAVAILABLE:
	case MQTT_RC_SERVER_BUSY:
	case MQTT_RC_USE_ANOTHER_SERVER:
	case MQTT_RC_SERVER_MOVED:
	case MQTT_RC_CONNECTION_RATE_EXCEEDED:
	case MQTT_RC_QUOTA_EXCEEDED:
		return MQTT_V3_SERVER_UNAVAILABLE;
	case MQTT_RC_BAD_USER_NAME_OR_PASSWORD:
		return MQTT_V3_BAD_USER_NAME_OR_PASSWORD;
	case MQTT_RC_NOT_AUTHORIZED:
	case MQTT_RC_BANNED:
	case MQTT_RC_BAD_AUTHENTICATION_METHOD:
		return MQTT_V3_NOT_AUTHORIZED;
	default:
		return -1;
	}
}

/* Granted QoS stays; any failure is 0x80 in 3.1.1 and cannot be said in 3.1. */
int
mqtt_suback_v3_code(uint8_t reason, uint8_t level)
{
	if (reason <= MQTT_RC_GRANTED_QOS_2)
		return reason;
	if (reason >= 0x80 && level == MQTT_LEVEL_311)
		return MQTT_V311_SUBACK_FAILURE;
	return -1;
}

int
mqtt_fail(struct mqtt_result *res, uint8_t reason, const char *what)
{
	res->reason = reason;
	res->what = what;
	return MQTT_DECODE_ERROR;
}
