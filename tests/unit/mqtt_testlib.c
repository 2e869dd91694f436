/*
 * mqtt_testlib.c - sample packets, packet comparison, hex input and the
 * decode invariants shared by the codec tests, fuzz target and benchmark
 * (see mqtt_testlib.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_testlib.h"

#define NSAMPLES	160
#define NLISTS		128

static struct mqtt_sample	 samples[NSAMPLES];
static size_t			 nsamples;
static struct buf		 lists[NLISTS];
static size_t			 nlists;

static uint8_t payload64[64];

static struct mqtt_view
view(const char *s)
{
	struct mqtt_view	 v = { (const uint8_t *)s, strlen(s) };

	return v;
}

static struct buf *
new_list(void)
{
	if (nlists == NLISTS)
		abort();
	buf_init(&lists[nlists]);
	return &lists[nlists++];
}

static struct mqtt_view
list_view(const struct buf *b)
{
	struct mqtt_view	 v = { b->data, b->len };

	if (buf_failed(b))
		abort();
	return v;
}

static struct mqtt_packet *
add(const char *name, uint8_t type, uint8_t level, uint8_t direction)
{
	struct mqtt_sample	*s;

	if (nsamples == NSAMPLES)
		abort();
	s = &samples[nsamples++];
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->direction = direction;
	s->pkt.type = type;
	s->pkt.level = level;
	return &s->pkt;
}

/* Two user properties, the same name twice: order and duplicates kept. */
static void
user_props(struct mqtt_props *p)
{
	struct buf	*b = new_list();

	mqtt_user_property_add(b, "k", 1, "v1", 2);
	mqtt_user_property_add(b, "k", 1, "v2", 2);
	mqtt_user_property_add(b, "region", 6, "eu-west", 7);
	p->list = list_view(b);
	p->user_property_count = 3;
}

static void
reason_string(struct mqtt_props *p, const char *s)
{
	p->reason_string = view(s);
	mqtt_props_set(p, MQTT_PROP_REASON_STRING);
}

static void
samples_connect(uint8_t l)
{
	struct mqtt_connect	*c;
	struct mqtt_props	*p;

	c = &add("CONNECT minimal", MQTT_CONNECT, l, MQTT_TO_SERVER)->connect;
	c->clean_start = 1;
	c->keep_alive = 60;
	c->client_id = view("client-1");

	c = &add("CONNECT will, user, password", MQTT_CONNECT, l,
	    MQTT_TO_SERVER)->connect;
	c->keep_alive = 65535;
	c->client_id = view("sensor-42");
	c->will = 1;
	c->will_qos = 1;
	c->will_retain = 1;
	c->will_topic = view("status/sensor-42");
	c->will_payload = view("offline");
	c->has_username = c->has_password = 1;
	c->username = view("alice");
	c->password.data = (const uint8_t *)"\0\1\2secret";
	c->password.len = 9;
	if (l < MQTT_LEVEL_5) {
		if (l == MQTT_LEVEL_311) {
			c = &add("CONNECT empty client id", MQTT_CONNECT, l,
			    MQTT_TO_SERVER)->connect;
			c->clean_start = 1;
		}
		return;
	}
	p = &c->props;
	p->session_expiry_interval = 3600;
	p->receive_maximum = 20;
	p->maximum_packet_size = 1048576;
	p->topic_alias_maximum = 10;
	p->request_response_information = 1;
	p->request_problem_information = 0;
	p->authentication_method = view("SCRAM-SHA-1");
	p->authentication_data = view("client-first");
	p->present = MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY_INTERVAL) |
	    MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM) |
	    MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_PACKET_SIZE) |
	    MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAXIMUM) |
	    MQTT_PROP_BIT(MQTT_PROP_REQUEST_RESPONSE_INFORMATION) |
	    MQTT_PROP_BIT(MQTT_PROP_REQUEST_PROBLEM_INFORMATION) |
	    MQTT_PROP_BIT(MQTT_PROP_AUTHENTICATION_METHOD) |
	    MQTT_PROP_BIT(MQTT_PROP_AUTHENTICATION_DATA);
	user_props(p);
	p = &c->will_props;
	p->will_delay_interval = 30;
	p->payload_format_indicator = 1;
	p->message_expiry_interval = 600;
	p->content_type = view("text/plain");
	p->response_topic = view("replies/sensor-42");
	p->correlation_data = view("\x01\x02");
	p->present = MQTT_PROP_BIT(MQTT_PROP_WILL_DELAY_INTERVAL) |
	    MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR) |
	    MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL) |
	    MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE) |
	    MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC) |
	    MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA);
	user_props(p);

	c = &add("CONNECT empty client id, no clean start, password only",
	    MQTT_CONNECT, l, MQTT_TO_SERVER)->connect;
	c->has_password = 1;
	c->password = view("token");
}

static void
samples_connack(uint8_t l)
{
	struct mqtt_connack	*c;
	struct mqtt_props	*p;

	c = &add("CONNACK session present", MQTT_CONNACK, l,
	    MQTT_TO_CLIENT)->connack;
	c->session_present = 1;
	if (l < MQTT_LEVEL_5) {
		c = &add("CONNACK refused", MQTT_CONNACK, l,
		    MQTT_TO_CLIENT)->connack;
		c->reason = MQTT_V3_NOT_AUTHORIZED;
		return;
	}
	c = &add("CONNACK refused with reason", MQTT_CONNACK, l,
	    MQTT_TO_CLIENT)->connack;
	c->reason = MQTT_RC_NOT_AUTHORIZED;
	reason_string(&c->props, "no");

	c = &add("CONNACK every property", MQTT_CONNACK, l,
	    MQTT_TO_CLIENT)->connack;
	p = &c->props;
	p->session_expiry_interval = 0xffffffff;
	p->receive_maximum = 100;
	p->maximum_qos = 1;
	p->retain_available = 0;
	p->maximum_packet_size = 268435460;
	p->assigned_client_identifier = view("auto-7f3a");
	p->topic_alias_maximum = 65535;
	p->wildcard_subscription_available = 1;
	p->subscription_identifier_available = 0;
	p->shared_subscription_available = 1;
	p->server_keep_alive = 30;
	p->response_information = view("resp/auto-7f3a");
	p->server_reference = view("other.example:1883");
	p->authentication_method = view("SCRAM-SHA-1");
	p->authentication_data = view("server-final");
	p->present = MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY_INTERVAL) |
	    MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM) |
	    MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_QOS) |
	    MQTT_PROP_BIT(MQTT_PROP_RETAIN_AVAILABLE) |
	    MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_PACKET_SIZE) |
	    MQTT_PROP_BIT(MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER) |
	    MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAXIMUM) |
	    MQTT_PROP_BIT(MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE) |
	    MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE) |
	    MQTT_PROP_BIT(MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE) |
	    MQTT_PROP_BIT(MQTT_PROP_SERVER_KEEP_ALIVE) |
	    MQTT_PROP_BIT(MQTT_PROP_RESPONSE_INFORMATION) |
	    MQTT_PROP_BIT(MQTT_PROP_SERVER_REFERENCE) |
	    MQTT_PROP_BIT(MQTT_PROP_AUTHENTICATION_METHOD) |
	    MQTT_PROP_BIT(MQTT_PROP_AUTHENTICATION_DATA);
	reason_string(p, "welcome");
	user_props(p);
}

static void
samples_publish(uint8_t l, uint8_t dir)
{
	struct mqtt_publish	*p;
	struct mqtt_props	*pr;
	struct buf		*b;

	p = &add("PUBLISH QoS 0, 64 bytes", MQTT_PUBLISH, l, dir)->publish;
	p->topic = view("sensors/room1/temperature");
	p->payload.data = payload64;
	p->payload.len = sizeof(payload64);

	p = &add("PUBLISH QoS 1 dup retain", MQTT_PUBLISH, l, dir)->publish;
	p->qos = 1;
	p->dup = 1;
	p->retain = 1;
	p->packet_id = 7;
	p->topic = view("a/b");
	p->payload = view("hello");

	p = &add("PUBLISH QoS 2 empty payload", MQTT_PUBLISH, l, dir)->publish;
	p->qos = 2;
	p->packet_id = 65535;
	p->topic = view("/");

	if (l < MQTT_LEVEL_5)
		return;
	p = &add("PUBLISH every property", MQTT_PUBLISH, l, dir)->publish;
	p->qos = 1;
	p->packet_id = 1;
	p->topic = view("req/x");
	p->payload = view("{\"on\":true}");
	pr = &p->props;
	pr->payload_format_indicator = 1;
	pr->message_expiry_interval = 120;
	pr->topic_alias = 3;
	pr->response_topic = view("resp/x");
	pr->correlation_data = view("corr");
	pr->content_type = view("application/json");
	pr->present = MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT_INDICATOR) |
	    MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY_INTERVAL) |
	    MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS) |
	    MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC) |
	    MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA) |
	    MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE);
	user_props(pr);

	p = &add("PUBLISH alias only", MQTT_PUBLISH, l, dir)->publish;
	p->payload = view("x");
	p->props.topic_alias = 3;
	mqtt_props_set(&p->props, MQTT_PROP_TOPIC_ALIAS);

	if (dir != MQTT_TO_CLIENT)
		return;
	p = &add("PUBLISH subscription identifiers", MQTT_PUBLISH, l,
	    dir)->publish;
	p->topic = view("a/b");
	b = new_list();
	mqtt_subscription_id_add(b, 1);
	mqtt_user_property_add(b, "k", 1, "v", 1);
	mqtt_subscription_id_add(b, 268435455);
	mqtt_subscription_id_add(b, 1);
	p->props.list = list_view(b);
	p->props.subscription_identifier_count = 3;
	p->props.user_property_count = 1;
}

static void
samples_ack(uint8_t l, uint8_t type, uint8_t dir)
{
	struct mqtt_ack	*a;

	a = &add("ack", type, l, dir)->ack;
	a->packet_id = 1;
	if (l < MQTT_LEVEL_5)
		return;
	a = &add("ack with reason", type, l, dir)->ack;
	a->packet_id = 2;
	a->reason = type == MQTT_PUBREL || type == MQTT_PUBCOMP ?
	    MQTT_RC_PACKET_IDENTIFIER_NOT_FOUND :
	    MQTT_RC_NO_MATCHING_SUBSCRIBERS;
	a = &add("ack with properties", type, l, dir)->ack;
	a->packet_id = 3;
	reason_string(&a->props, "why");
	user_props(&a->props);
	a = &add("ack success with properties", type, l, dir)->ack;
	a->packet_id = 4;
	user_props(&a->props);
}

static void
samples_subscribe(uint8_t l)
{
	struct mqtt_filter_list	*s;
	struct buf		*b;

	s = &add("SUBSCRIBE", MQTT_SUBSCRIBE, l, MQTT_TO_SERVER)->subscribe;
	s->packet_id = 10;
	b = new_list();
	mqtt_subscribe_add(b, "a/+", 3, 1);
	mqtt_subscribe_add(b, "$share/g/x/#", 12, 2);
	mqtt_subscribe_add(b, "#", 1, 0);
	s->list = list_view(b);
	s->count = 3;
	if (l < MQTT_LEVEL_5)
		return;
	s = &add("SUBSCRIBE options and identifier", MQTT_SUBSCRIBE, l,
	    MQTT_TO_SERVER)->subscribe;
	s->packet_id = 11;
	b = new_list();
	mqtt_subscribe_add(b, "a/b", 3, 1 | MQTT_SUB_NO_LOCAL |
	    MQTT_SUB_RETAIN_AS_PUBLISHED | MQTT_SUB_RETAIN_HANDLING(2));
	mqtt_subscribe_add(b, "$share/grp/+/t", 14, MQTT_SUB_RETAIN_HANDLING(1));
	s->list = list_view(b);
	s->count = 2;
	b = new_list();
	mqtt_user_property_add(b, "k", 1, "v", 1);
	mqtt_subscription_id_add(b, 99);
	s->props.list = list_view(b);
	s->props.user_property_count = 1;
	s->props.subscription_identifier_count = 1;
}

static void
samples_suback(uint8_t l)
{
	static const uint8_t	 v31[] = { 0, 1, 2 };
	static const uint8_t	 v311[] = { 0, 1, 2, 0x80 };
	static const uint8_t	 v5[] = { 0, 1, 2, 0x80, 0x83, 0x87, 0x8f,
				    0x91, 0x97, 0x9e, 0xa1, 0xa2 };
	struct mqtt_reason_list	*a;

	a = &add("SUBACK", MQTT_SUBACK, l, MQTT_TO_CLIENT)->suback;
	a->packet_id = 10;
	a->reasons.data = l == MQTT_LEVEL_31 ? v31 :
	    l == MQTT_LEVEL_311 ? v311 : v5;
	a->reasons.len = l == MQTT_LEVEL_31 ? sizeof(v31) :
	    l == MQTT_LEVEL_311 ? sizeof(v311) : sizeof(v5);
	if (l == MQTT_LEVEL_5) {
		reason_string(&a->props, "partly");
		user_props(&a->props);
	}
}

static void
samples_unsubscribe(uint8_t l)
{
	struct mqtt_filter_list	*s;
	struct buf		*b;

	s = &add("UNSUBSCRIBE", MQTT_UNSUBSCRIBE, l,
	    MQTT_TO_SERVER)->unsubscribe;
	s->packet_id = 12;
	b = new_list();
	mqtt_unsubscribe_add(b, "a/+", 3);
	mqtt_unsubscribe_add(b, "$share/g/x/#", 12);
	s->list = list_view(b);
	s->count = 2;
	if (l == MQTT_LEVEL_5)
		user_props(&s->props);
}

static void
samples_unsuback(uint8_t l)
{
	static const uint8_t	 v5[] = { 0x00, 0x11, 0x80, 0x83, 0x87,
				    0x8f, 0x91 };
	struct mqtt_reason_list	*a;

	a = &add("UNSUBACK", MQTT_UNSUBACK, l, MQTT_TO_CLIENT)->unsuback;
	a->packet_id = 12;
	if (l < MQTT_LEVEL_5)
		return;
	a->reasons.data = v5;
	a->reasons.len = sizeof(v5);
	reason_string(&a->props, "done");
}

static void
samples_disconnect_auth(uint8_t l)
{
	struct mqtt_reason_packet	*d;

	add("DISCONNECT", MQTT_DISCONNECT, l, MQTT_TO_SERVER);
	if (l < MQTT_LEVEL_5)
		return;
	d = &add("DISCONNECT with will", MQTT_DISCONNECT, l,
	    MQTT_TO_SERVER)->disconnect;
	d->reason = MQTT_RC_DISCONNECT_WITH_WILL;
	d = &add("DISCONNECT client properties", MQTT_DISCONNECT, l,
	    MQTT_TO_SERVER)->disconnect;
	d->reason = MQTT_RC_UNSPECIFIED_ERROR;
	d->props.session_expiry_interval = 0;
	mqtt_props_set(&d->props, MQTT_PROP_SESSION_EXPIRY_INTERVAL);
	reason_string(&d->props, "bye");
	user_props(&d->props);
	d = &add("DISCONNECT from the server", MQTT_DISCONNECT, l,
	    MQTT_TO_CLIENT)->disconnect;
	d->reason = MQTT_RC_USE_ANOTHER_SERVER;
	d->props.server_reference = view("[::1]:1884");
	mqtt_props_set(&d->props, MQTT_PROP_SERVER_REFERENCE);

	add("AUTH empty", MQTT_AUTH, l, MQTT_TO_CLIENT);
	d = &add("AUTH continue", MQTT_AUTH, l, MQTT_TO_CLIENT)->auth;
	d->reason = MQTT_RC_CONTINUE_AUTHENTICATION;
	d->props.authentication_method = view("SCRAM-SHA-1");
	d->props.authentication_data = view("server-first");
	d->props.present = MQTT_PROP_BIT(MQTT_PROP_AUTHENTICATION_METHOD) |
	    MQTT_PROP_BIT(MQTT_PROP_AUTHENTICATION_DATA);
	d = &add("AUTH re-authenticate", MQTT_AUTH, l, MQTT_TO_SERVER)->auth;
	d->reason = MQTT_RC_REAUTHENTICATE;
	d->props.authentication_method = view("SCRAM-SHA-1");
	mqtt_props_set(&d->props, MQTT_PROP_AUTHENTICATION_METHOD);
	reason_string(&d->props, "again");
	user_props(&d->props);
}

static void
samples_build(void)
{
	uint8_t	 l, t, dir;
	size_t	 i;

	for (i = 0; i < sizeof(payload64); i++)
		payload64[i] = (uint8_t)i;
	for (l = MQTT_LEVEL_31; l <= MQTT_LEVEL_5; l++) {
		samples_connect(l);
		samples_connack(l);
		for (dir = MQTT_TO_SERVER; dir <= MQTT_TO_CLIENT; dir++) {
			samples_publish(l, dir);
			for (t = MQTT_PUBACK; t <= MQTT_PUBCOMP; t++)
				samples_ack(l, t, dir);
		}
		samples_subscribe(l);
		samples_suback(l);
		samples_unsubscribe(l);
		samples_unsuback(l);
		add("PINGREQ", MQTT_PINGREQ, l, MQTT_TO_SERVER);
		add("PINGRESP", MQTT_PINGRESP, l, MQTT_TO_CLIENT);
		samples_disconnect_auth(l);
	}
}

size_t
mqtt_samples(const struct mqtt_sample **out)
{
	if (nsamples == 0)
		samples_build();
	*out = samples;
	return nsamples;
}

void
mqtt_samples_free(void)
{
	size_t	 i;

	for (i = 0; i < nlists; i++)
		buf_free(&lists[i]);
	nlists = 0;
	nsamples = 0;
}

static int
view_eq(const struct mqtt_view *a, const struct mqtt_view *b)
{
	return a->len == b->len &&
	    (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static int
connect_equal(const struct mqtt_connect *a, const struct mqtt_connect *b)
{
	if (a->clean_start != b->clean_start || a->will != b->will ||
	    a->will_qos != b->will_qos || a->will_retain != b->will_retain ||
	    a->has_username != b->has_username ||
	    a->has_password != b->has_password ||
	    a->keep_alive != b->keep_alive ||
	    !mqtt_props_equal(&a->props, &b->props) ||
	    !view_eq(&a->client_id, &b->client_id))
		return 0;
	if (a->will && (!mqtt_props_equal(&a->will_props, &b->will_props) ||
	    !view_eq(&a->will_topic, &b->will_topic) ||
	    !view_eq(&a->will_payload, &b->will_payload)))
		return 0;
	if (a->has_username && !view_eq(&a->username, &b->username))
		return 0;
	return !a->has_password || view_eq(&a->password, &b->password);
}

int
mqtt_packet_equal(const struct mqtt_packet *a, const struct mqtt_packet *b)
{
	const struct mqtt_publish	*pa = &a->publish, *pb = &b->publish;

	if (a->type != b->type || a->level != b->level)
		return 0;
	switch (a->type) {
	case MQTT_CONNECT:
		return connect_equal(&a->connect, &b->connect);
	case MQTT_CONNACK:
		return a->connack.session_present ==
		    b->connack.session_present &&
		    a->connack.reason == b->connack.reason &&
		    mqtt_props_equal(&a->connack.props, &b->connack.props);
	case MQTT_PUBLISH:
		return pa->qos == pb->qos && pa->dup == pb->dup &&
		    pa->retain == pb->retain &&
		    pa->packet_id == pb->packet_id &&
		    view_eq(&pa->topic, &pb->topic) &&
		    view_eq(&pa->payload, &pb->payload) &&
		    mqtt_props_equal(&pa->props, &pb->props);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return a->ack.packet_id == b->ack.packet_id &&
		    a->ack.reason == b->ack.reason &&
		    mqtt_props_equal(&a->ack.props, &b->ack.props);
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return a->subscribe.packet_id == b->subscribe.packet_id &&
		    a->subscribe.count == b->subscribe.count &&
		    view_eq(&a->subscribe.list, &b->subscribe.list) &&
		    mqtt_props_equal(&a->subscribe.props, &b->subscribe.props);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return a->suback.packet_id == b->suback.packet_id &&
		    view_eq(&a->suback.reasons, &b->suback.reasons) &&
		    mqtt_props_equal(&a->suback.props, &b->suback.props);
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		return 1;
	default:
		return a->disconnect.reason == b->disconnect.reason &&
		    mqtt_props_equal(&a->disconnect.props,
		    &b->disconnect.props);
	}
}

size_t
mqtt_hex(const char *s, uint8_t *out, size_t cap)
{
	size_t	 n = 0;
	int	 hi = -1;

	for (; *s; s++) {
		int	 v;

		if (*s == ' ')
			continue;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else
			abort();
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == cap)
			abort();
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0)
		abort();
	return n;
}

uint8_t
mqtt_fuzz_selector(uint8_t level, uint8_t direction)
{
	return (uint8_t)(level | (direction == MQTT_TO_CLIENT ? 0x08 : 0));
}

static void
must(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "mqtt invariant broken: %s\n", what);
		abort();
	}
}

/* Walk every list of a decoded packet; they were checked, so they end. */
static void
walk_lists(const struct mqtt_packet *pkt)
{
	const struct mqtt_props		*p = NULL;
	struct buf_reader		 it;
	struct mqtt_subscription	 s;
	struct mqtt_view		 n, v;
	uint32_t			 id, count = 0;

	switch (pkt->type) {
	case MQTT_SUBSCRIBE:
		mqtt_list_iter(&pkt->subscribe.list, &it);
		while (mqtt_subscribe_next(&it, &s))
			count++;
		must(count == pkt->subscribe.count, "subscribe count");
		p = &pkt->subscribe.props;
		break;
	case MQTT_UNSUBSCRIBE:
		mqtt_list_iter(&pkt->unsubscribe.list, &it);
		while (mqtt_unsubscribe_next(&it, &n))
			count++;
		must(count == pkt->unsubscribe.count, "unsubscribe count");
		p = &pkt->unsubscribe.props;
		break;
	case MQTT_PUBLISH:
		p = &pkt->publish.props;
		break;
	case MQTT_CONNECT:
		p = &pkt->connect.props;
		break;
	default:
		return;
	}
	mqtt_props_iter(p, &it);
	for (count = 0; mqtt_user_property_next(&it, &n, &v); count++)
		;
	must(count == p->user_property_count, "user property count");
	mqtt_props_iter(p, &it);
	for (count = 0; mqtt_subscription_id_next(&it, &id); count++)
		must(id > 0, "subscription identifier 0");
	must(count == p->subscription_identifier_count,
	    "subscription identifier count");
}

void
mqtt_fuzz_one(const uint8_t *data, size_t len)
{
	struct mqtt_decode_opts	 opts;
	struct mqtt_packet	 pkt, again;
	struct mqtt_result	 res, res2;
	struct buf		 b = BUF_INITIALIZER;
	uint8_t			 sel, level;
	size_t			 i;
	int			 r;

	if (len == 0)
		return;
	sel = data[0];
	memset(&opts, 0, sizeof(opts));
	opts.level = sel & 0x07;
	if (opts.level != 0 && (opts.level < 3 || opts.level > 5))
		opts.level = MQTT_LEVEL_5;
	opts.direction = sel & 0x08 ? MQTT_TO_CLIENT : MQTT_TO_SERVER;
	opts.flags = sel & 0x10 ? MQTT_DECODE_CHECK_PAYLOAD_FORMAT : 0;
	opts.max_packet_size = sel & 0x20 ? 64 : 0;
	data++;
	len--;

	r = mqtt_decode(data, len, &opts, &pkt, &res);
	must(r == MQTT_DECODE_OK || r == MQTT_DECODE_MORE ||
	    r == MQTT_DECODE_ERROR, "decode status");
	if (r == MQTT_DECODE_ERROR) {
		must(res.reason >= 0x80 && res.what != NULL, "error reason");
		return;
	}
	if (r == MQTT_DECODE_MORE) {
		must(res.size == 0 || res.size > len, "more size");
		return;
	}
	must(res.size >= 2 && res.size <= len, "consumed size");
	/* A shorter prefix of a packet is never a packet. */
	for (i = 0; i < res.size; i += 1 + res.size / 16) {
		r = mqtt_decode(data, i, &opts, &again, &res2);
		must(r == MQTT_DECODE_MORE, "prefix decoded");
	}
	walk_lists(&pkt);
	level = pkt.level;
	must(mqtt_encode(&b, &pkt, level) == 0, "re-encode failed");
	must(b.len == mqtt_encoded_size(&pkt, level), "encoded size");
	opts.level = level;
	opts.flags = 0;
	opts.max_packet_size = 0;
	r = mqtt_decode(b.data, b.len, &opts, &again, &res2);
	must(r == MQTT_DECODE_OK && res2.size == b.len, "re-decode failed");
	must(mqtt_packet_equal(&pkt, &again), "round trip differs");
	buf_free(&b);
}
