/*
 * connect.c - CONNECT, CONNACK and the worker's side of the client-id
 * registry.
 *
 * A client id must be connected once across all workers, so CONNECT
 * asks walsvc, which keeps the registry:
 *   1) the worker checks the CONNECT, keeps what it needs, stops reading
 *      the connection and sends REG_CLAIM (correlation: connection id);
 *   2) walsvc grants at once when nobody holds the id; otherwise it sends
 *      REG_KICK to the holder's worker, which closes that connection (5.0
 *      clients get DISCONNECT 0x8E) and answers REG_RELEASE, and only
 *      then grants the claim;
 *   3) walsvc decides the client's session (stored or clean, present or
 *      not), writes that down, and once it is durable sends a stored
 *      session's subscriptions (SESS_SUB) and REG_GRANTED; the worker
 *      installs the subscriptions, sends CONNACK and resumes reading.
 * While walsvc is down, claims wait; after server.connect-timeout the
 * client gets "server unavailable".  The waiting claims are sent again to
 * a new walsvc, which asks every worker for its connected clients
 * (REG_SYNC_ASK) until it has each one's whole list (REG_SYNC).
 *
 * A session is stored when its state must outlive the connection: MQTT
 * 3.x clean session 0 (it never expires), 5.0 with a Session Expiry
 * Interval above 0, or a 5.0 clean start 0 finding a stored session.
 */
#include "config.h"

#include <sys/random.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "acl.h"
#include "ipc_link.h"
#include "log.h"
#include "scram.h"
#include "walc.h"
#include "walrec.h"
#include "worker.h"

/* A claim unanswered this long is sent again. */
#define CLAIM_AGAIN_MS		1000

/* CONNACK details decided at CONNECT and sent at REG_GRANTED. */
#define FLAG_ASSIGNED_ID	0x1
#define FLAG_SERVER_KEEP_ALIVE	0x2
#define FLAG_RESPONSE_INFO	0x4	/* asked for Response Information */

void
connect_refuse(struct conn *c, uint8_t reason, const char *why)
{
	static struct log_ratelimit	 rl;
	struct mqtt_packet		 pkt;
	int				 code;
	char				 addr[64];

	/* clients choose to be refused: a flood of them is summed up */
	log_limited(&rl, LOG_LEVEL_INFO, "client refused", "client=%.*s "
	    "addr=%s proto=%u "
	    "reason=\"%s\" code=0x%02x", (int)c->client_id_len,
	    c->client_id ? c->client_id : "", conn_addr(c, addr, sizeof(addr)),
	    c->level, why, reason);
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNACK;
	if (c->level == MQTT_LEVEL_5)
		pkt.connack.reason = reason;
	else if ((code = mqtt_connack_v3_code(reason)) >= 0)
		pkt.connack.reason = (uint8_t)code;
	else
		pkt.type = 0;
	if (pkt.type)
		conn_send_packet(c, &pkt);
	/* no reason code: a refused CONNACK is not followed by DISCONNECT */
	conn_close(c, 0xff, why);
}

/* The will as a PUBLISH packet at the client's level, for the claim. */
static int
keep_will(struct conn *c, const struct mqtt_connect *cn)
{
	struct mqtt_packet	 pkt;
	struct buf		 b = BUF_INITIALIZER;
	struct conn_rare	*r;
	struct conn_will	*will;

	if ((r = conn_rare(c)) == NULL)
		return -1;
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBLISH;
	pkt.publish.qos = cn->will_qos;
	pkt.publish.retain = cn->will_retain;
	pkt.publish.packet_id = cn->will_qos ? 1 : 0;
	pkt.publish.topic = cn->will_topic;
	pkt.publish.payload = cn->will_payload;
	pkt.publish.props = cn->will_props;
	/* the delay belongs to the will, not to the message */
	pkt.publish.props.present &=
	    ~MQTT_PROP_BIT(MQTT_PROP_WILL_DELAY_INTERVAL);
	if (mqtt_encode(&b, &pkt, c->level) == -1 ||
	    (will = malloc(sizeof(*will) + b.len)) == NULL) {
		buf_free(&b);
		return -1;
	}
	will->len = (uint32_t)b.len;
	will->delay = c->level == MQTT_LEVEL_5 && mqtt_props_has(
	    &cn->will_props, MQTT_PROP_WILL_DELAY_INTERVAL) ?
	    cn->will_props.will_delay_interval : 0;
	memcpy(will->packet, b.data, b.len);
	buf_free(&b);
	r->will = will;
	return 0;
}

static void
send_claim(struct conn *c)
{
	struct buf	*b;
	size_t		 start;

	c->claim_sent = clock_mono_ms();
	if ((b = ipc_link_record_begin(c->w->wal_link, IPC_REG_CLAIM, 0, c->id,
	    &start)) == NULL)
		return;		/* sent again, until the CONNECT time-out */
	buf_add_u8(b, (c->clean_start ? IPC_CLAIM_CLEAN_START : 0) |
	    (c->rare->will ? IPC_CLAIM_WILL : 0));
	buf_add_u8(b, c->level);
	buf_add_u16(b, c->send_max);
	buf_add_u32(b, c->connect_expiry);
	if (c->rare->will) {
		buf_add_u16(b, c->client_id_len);
		buf_add(b, c->client_id, c->client_id_len);
		buf_add_u32(b, c->rare->will->delay);
		buf_add(b, c->rare->will->packet, c->rare->will->len);
	} else
		buf_add(b, c->client_id, c->client_id_len);
	if (buf_failed(b))
		buf_truncate(b, start);
	else
		ipc_link_record_end(c->w->wal_link, start);
}

void
connect_handle(struct conn *c, const struct mqtt_packet *pkt,
    const struct mqtt_result *res)
{
	const struct mqtt_connect	*cn = &pkt->connect;
	const struct config		*cfg = &c->w->proc->cfg;
	int64_t				 max_ka;
	char				 assigned[64];
	uint8_t				 rnd[16];
	const uint8_t			*id = cn->client_id.data;
	size_t				 idlen = cn->client_id.len;
	uint16_t			 inflight;
	const char			*why;
	int				 auth;

	c->level = pkt->level;

	/* 1) who may connect (a password is checked on the side, below);
	 * MQTT 5 enhanced authentication (4.12): SCRAM-SHA-256, whose AUTH
	 * packets come once the rest of CONNECT is found good (6) */
	if (mqtt_props_has(&cn->props, MQTT_PROP_AUTHENTICATION_METHOD)) {
		if (!auth_method_known(c, &cn->props)) {
			connect_refuse(c, MQTT_RC_BAD_AUTHENTICATION_METHOD,
			    "unsupported authentication method");
			return;
		}
		auth = AUTH_EXCHANGE;
	} else if (c->rare->tls_cn != NULL) {
		/* a certificate that names the user
		 * (tls.use-identity-as-username) is the authentication: the
		 * name in CONNECT and any password are not looked at */
		c->username = c->rare->tls_cn;
		conn_rare(c)->tls_cn = NULL;
		auth = AUTH_OK;
	} else
		auth = auth_connect(c, cn, &why);
	switch (auth) {
	case AUTH_REFUSED:
		connect_refuse(c, MQTT_RC_NOT_AUTHORIZED, why);
		return;
	case AUTH_BUSY:
		connect_refuse(c, MQTT_RC_SERVER_BUSY, why);
		return;
	}
	/* the name the ACL file knows it by; SCRAM's comes with its proof */
	if (c->username != NULL || auth == AUTH_EXCHANGE)
		;	/* the certificate's, or SCRAM's to come */
	else if (cn->has_username && (c->username = malloc(cn->username.len +
	    1)) != NULL) {
		memcpy(c->username, cn->username.data, cn->username.len);
		c->username[cn->username.len] = '\0';
	} else if (cn->has_username) {
		connect_refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
		return;
	}

	/* 2) the client id: assigned when empty and allowed */
	if (idlen == 0) {
		if (c->level != MQTT_LEVEL_5 && !cn->clean_start) {
			connect_refuse(c, MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
			    "empty client id needs a clean session");
			return;
		}
		/*
		 * 128 random bits in Mosquitto's form (auto-UUID): an id a
		 * client could guess would let it take over that session.
		 */
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			connect_refuse(c, MQTT_RC_SERVER_UNAVAILABLE,
			    "no random bytes for a client id");
			return;
		}
		idlen = (size_t)snprintf(assigned, sizeof(assigned),
		    "auto-%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
		    "%02X%02X%02X%02X%02X%02X", rnd[0], rnd[1], rnd[2], rnd[3],
		    rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10],
		    rnd[11], rnd[12], rnd[13], rnd[14], rnd[15]);
		id = (const uint8_t *)assigned;
		if (c->level == MQTT_LEVEL_5)
			c->connack_flags |= FLAG_ASSIGNED_ID;
	}
	if ((c->client_id = malloc(idlen + 1)) == NULL) {
		connect_refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
		return;
	}
	memcpy(c->client_id, id, idlen);
	c->client_id[idlen] = '\0';
	c->client_id_len = (uint16_t)idlen;

	/* the session asked for: 3.x keeps an unclean one for ever */
	c->clean_start = cn->clean_start;
	if (c->level == MQTT_LEVEL_5)
		c->connect_expiry = mqtt_props_has(&cn->props,
		    MQTT_PROP_SESSION_EXPIRY_INTERVAL) ?
		    cn->props.session_expiry_interval : 0;
	else
		c->connect_expiry = cn->clean_start ? 0 : WALREC_EXPIRY_NEVER;
	c->expiry = c->connect_expiry;

	/* 3) the will: what this broker cannot honour is refused (5.0) */
	if (cn->will) {
		if (cn->will_qos > config_num(cfg, OPT_mqtt_max_qos) &&
		    c->level == MQTT_LEVEL_5) {
			connect_refuse(c, MQTT_RC_QOS_NOT_SUPPORTED,
			    "will QoS above mqtt.max-qos");
			return;
		}
		if (cn->will_retain && c->level == MQTT_LEVEL_5 &&
		    !config_num(cfg, OPT_mqtt_retain_available)) {
			connect_refuse(c, MQTT_RC_RETAIN_NOT_SUPPORTED,
			    "mqtt.retain-available is off");
			return;
		}
		/* auth.acl-file: a will the client may not publish is not
		 * kept (the connection is, as Mosquitto does) */
		if (!auth_may(c, cn->will_topic.data, cn->will_topic.len,
		    ACL_WRITE))
			log_info("will not kept: its topic is not allowed by "
			    "auth.acl-file", "client=%.*s", (int)idlen, id);
		else if (keep_will(c, cn) == -1) {
			connect_refuse(c, MQTT_RC_SERVER_UNAVAILABLE,
			    "cannot keep the will");
			return;
		}
	}

	/* 4) keep-alive: 5.0 clients are told a smaller limit if need be */
	max_ka = config_num(cfg, OPT_mqtt_max_keep_alive) / 1000;
	c->keep_alive = cn->keep_alive;
	/* keep alive 0 (none) is answered with the limit too, as
	 * Mosquitto does: a 5.0 client then pings within it */
	if (c->level == MQTT_LEVEL_5 && (cn->keep_alive > max_ka ||
	    cn->keep_alive == 0)) {
		c->keep_alive = (uint16_t)max_ka;
		c->connack_flags |= FLAG_SERVER_KEEP_ALIVE;
	}

	/* the base of response topics, if the client asks and we say one */
	if (mqtt_props_has(&cn->props, MQTT_PROP_REQUEST_RESPONSE_INFORMATION) &&
	    cn->props.request_response_information == 1)
		c->connack_flags |= FLAG_RESPONSE_INFO;

	/* 5) flow control the client asked for (5.0) */
	inflight = (uint16_t)config_num(cfg, OPT_mqtt_max_inflight);
	c->send_max = inflight;
	if (mqtt_props_has(&cn->props, MQTT_PROP_RECEIVE_MAXIMUM) &&
	    cn->props.receive_maximum < inflight)
		c->send_max = cn->props.receive_maximum;
	if (mqtt_props_has(&cn->props, MQTT_PROP_MAXIMUM_PACKET_SIZE))
		c->max_out_packet = cn->props.maximum_packet_size;
	/* aliases for the topics it receives, if it takes any (capped: a
	 * lookup walks them) */
	if (mqtt_props_has(&cn->props, MQTT_PROP_TOPIC_ALIAS_MAXIMUM) &&
	    cn->props.topic_alias_maximum > 0) {
		if (conn_aliases(c) == NULL) {
			connect_refuse(c, MQTT_RC_SERVER_UNAVAILABLE,
			    "out of memory");
			return;
		}
		c->rare->aliases->out_max = cn->props.topic_alias_maximum <
		    ALIAS_OUT_MAX ? cn->props.topic_alias_maximum :
		    ALIAS_OUT_MAX;
	}

	/* 6) SCRAM: the exchange, read on until its last step */
	if (auth == AUTH_EXCHANGE) {
		if (auth_scram_begin(c, &cn->props, &why) == -1) {
			connect_refuse(c, MQTT_RC_NOT_AUTHORIZED, why);
			return;
		}
		c->state = CONN_AUTH;
		return;
	}
	/* ask the registry; reading waits for the answer (and first for the
	 * password's) */
	conn_pause(c, PAUSE_CLAIM, 1);
	if (auth == AUTH_PENDING) {
		c->state = CONN_AUTH;
		return;
	}
	c->state = CONN_CLAIMING;
	send_claim(c);
}

void
connect_authenticated(struct conn *c, int ok)
{
	if (ok != 1) {
		connect_refuse(c, ok == 0 ? MQTT_RC_NOT_AUTHORIZED :
		    MQTT_RC_SERVER_BUSY, ok == 0 ? "user name or password "
		    "not accepted" : "password not checked within "
		    "server.connect-timeout");
		return;
	}
	if (c->rare->scram != NULL) {
		if ((c->username = strdup(scram_user(c->rare->scram))) == NULL) {
			connect_refuse(c, MQTT_RC_SERVER_UNAVAILABLE,
			    "out of memory");
			return;
		}
		c->connack_flags |= CONN_BY_SCRAM;
	}
	c->connack_flags |= CONN_BY_PASSWORD;
	c->state = CONN_CLAIMING;
	send_claim(c);
}

/* One subscription of the stored session, before its grant. */
void
registry_session_sub(struct worker *w, uint64_t conn_id, const uint8_t *body,
    size_t len)
{
	struct conn		*c = idmap_get(&w->conns_by_id, conn_id);
	struct conn_sub		*s, **sp;
	struct conn_rare	*r;

	if (c == NULL || c->state != CONN_CLAIMING ||
	    len <= IPC_SESS_SUB_HEADER || len - IPC_SESS_SUB_HEADER > 65535)
		return;
	len -= IPC_SESS_SUB_HEADER;
	/* a grant sent again (the claim was) repeats its subscriptions */
	for (s = c->rare->granted_subs; s; s = s->next)
		if (s->len == len && memcmp(s->filter, body +
		    IPC_SESS_SUB_HEADER, len) == 0)
			return;
	if ((r = conn_rare(c)) == NULL ||
	    (s = calloc(1, sizeof(*s) + len)) == NULL) {
		registry_refused(w, conn_id, MQTT_RC_SERVER_UNAVAILABLE);
		return;
	}
	s->options.qos = body[0];
	walrec_sub_flags_set(&s->options, body[1]);
	s->options.retain_handling = body[2];
	s->options.sub_id = buf_load_u32(body + 4);
	s->len = (uint16_t)len;
	memcpy(s->filter, body + IPC_SESS_SUB_HEADER, len);
	/* kept in the order they came: the client's */
	for (sp = &r->granted_subs; *sp; sp = &(*sp)->next)
		;
	*sp = s;
}

/* The stored session's subscriptions enter the table, as if subscribed. */
static void
install_subscriptions(struct conn *c)
{
	struct topic_filter	 tf;
	struct conn_sub		*s;
	uint32_t		 count;

	while ((s = c->rare->granted_subs) != NULL) {
		conn_rare(c)->granted_subs = s->next;
		if (topic_filter_parse(s->filter, s->len, &tf) != TOPIC_OK ||
		    (tf.share == NULL && sub_add_local(c->w->subs, &tf, c,
		    &s->options, &count) == -1)) {
			log_warnx("stored subscription not installed",
			    "client=%.*s", (int)c->client_id_len, c->client_id);
			free(s);
			continue;
		}
		/* a shared one is walsvc's to hold (share.c) */
		if (tf.share == NULL && count == 1)
			route_announce(c->w, s->filter, s->len, count, 0);
		if (s->options.sub_id != 0)
			c->has_sub_ids = 1;
		s->next = c->subs;
		c->subs = s;
	}
}

void
registry_granted(struct worker *w, uint64_t conn_id, const uint8_t *body)
{
	const struct config	*cfg = &w->proc->cfg;
	struct conn		*c = idmap_get(&w->conns_by_id, conn_id);
	struct mqtt_packet	 pkt;
	struct mqtt_props	*p = &pkt.connack.props;
	struct conn_rare	*r;
	int64_t			 maxqos;
	uint64_t		 sid, will_id;
	const char		*info;
	char			 addr[64];

	if (c == NULL || c->state != CONN_CLAIMING)
		return;		/* closed meanwhile: its release is on its way */
	c->registered = 1;
	c->state = CONN_ACTIVE;
	c->last_rx = clock_mono_ms();
	/* a stored session and a will walsvc keeps from now on are named
	 * in the rare fields */
	sid = buf_load_u64(body + 8);
	will_id = buf_load_u64(body + 16);
	if (sid != 0 || will_id != 0 || c->rare->will != NULL) {
		if ((r = conn_rare(c)) == NULL) {
			conn_close(c, NO_REASON, "out of memory");
			return;
		}
		r->sid = sid;
		r->will_id = will_id;
		free(r->will);
		r->will = NULL;
	}
	if (sid != 0) {
		c->stored = 1;
		c->node = buf_load_u16(body + 2);
		c->epoch = buf_load_u32(body + 4);
		install_subscriptions(c);
	}

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNACK;
	pkt.connack.session_present = body[0] != 0;
	if (c->level == MQTT_LEVEL_5) {
		/* advertise what exists, nothing more */
		maxqos = config_num(cfg, OPT_mqtt_max_qos);
		p->receive_maximum = (uint16_t)config_num(cfg,
		    OPT_mqtt_max_inflight);
		mqtt_props_set(p, MQTT_PROP_RECEIVE_MAXIMUM);
		/* the aliases this connection may set, whatever a reload
		 * does later; absent means none */
		c->alias_max = (uint16_t)config_num(cfg,
		    OPT_mqtt_topic_alias_maximum);
		if (c->alias_max > 0) {
			p->topic_alias_maximum = c->alias_max;
			mqtt_props_set(p, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
		}
		/* absent means 2 */
		if (maxqos < 2) {
			p->maximum_qos = (uint8_t)maxqos;
			mqtt_props_set(p, MQTT_PROP_MAXIMUM_QOS);
		}
		/* absent means available */
		if (!config_num(cfg, OPT_mqtt_retain_available)) {
			p->retain_available = 0;
			mqtt_props_set(p, MQTT_PROP_RETAIN_AVAILABLE);
		}
		/* at or near the protocol's own limit it says nothing (and
		 * some clients refuse values above 268435455) */
		if (config_num(cfg, OPT_mqtt_max_packet_size) < BUF_VBI_MAX) {
			p->maximum_packet_size = (uint32_t)config_num(cfg,
			    OPT_mqtt_max_packet_size);
			mqtt_props_set(p, MQTT_PROP_MAXIMUM_PACKET_SIZE);
		}
		/* absent means available */
		if (!config_num(cfg, OPT_mqtt_wildcard_available)) {
			p->wildcard_subscription_available = 0;
			mqtt_props_set(p,
			    MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE);
		}
		/* absent means available */
		if (!config_num(cfg, OPT_mqtt_subscription_id_available)) {
			p->subscription_identifier_available = 0;
			mqtt_props_set(p,
			    MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE);
		}
		/* absent means available */
		if (!config_num(cfg, OPT_mqtt_shared_sub_available)) {
			p->shared_subscription_available = 0;
			mqtt_props_set(p,
			    MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE);
		}
		if (c->connack_flags & FLAG_ASSIGNED_ID) {
			p->assigned_client_identifier.data =
			    (const uint8_t *)c->client_id;
			p->assigned_client_identifier.len = c->client_id_len;
			mqtt_props_set(p, MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER);
		}
		if (c->connack_flags & FLAG_SERVER_KEEP_ALIVE) {
			p->server_keep_alive = c->keep_alive;
			mqtt_props_set(p, MQTT_PROP_SERVER_KEEP_ALIVE);
		}
		info = config_str(cfg, OPT_mqtt_response_information);
		if ((c->connack_flags & FLAG_RESPONSE_INFO) && *info != '\0') {
			p->response_information.data = (const uint8_t *)info;
			p->response_information.len = strlen(info);
			mqtt_props_set(p, MQTT_PROP_RESPONSE_INFORMATION);
		}
		/* SCRAM's server-final-message proves us to the client */
		if (c->rare->scram != NULL)
			auth_scram_props(c, p);
	}
	conn_send_packet(c, &pkt);
	auth_scram_done(c);
	log_info("client connected", "client=%.*s addr=%s proto=%u "
	    "keepalive=%u clean=%u stored=%u present=%u transport=%s",
	    (int)c->client_id_len, c->client_id,
	    conn_addr(c, addr, sizeof(addr)), c->level, c->keep_alive,
	    c->clean_start, c->stored, body[0] != 0, c->ws == 2 ? "wss" :
	    c->ws == 1 ? "ws" : c->ssl != NULL ? "tls" : "tcp");
	conn_pause(c, PAUSE_CLAIM, 0);
}

/* The registry refused the claim: the broker is full. */
void
registry_refused(struct worker *w, uint64_t conn_id, uint8_t reason)
{
	struct conn	*c = idmap_get(&w->conns_by_id, conn_id);

	if (c == NULL || c->state != CONN_CLAIMING)
		return;
	connect_refuse(c, reason, "connection limit reached");
}

/*
 * REG_RELEASE of connection conn_id; a release lost on the way (the log
 * link started over) is made up by the next REG_SYNC or REG_KICK.
 */
static void
send_release(struct worker *w, uint64_t conn_id, uint8_t flags,
    uint32_t expiry, uint64_t sent, const uint8_t *id, size_t len)
{
	struct buf	*b;
	size_t		 start;

	if (len == 0 || len > 65535 || (b = ipc_link_record_begin(w->wal_link,
	    IPC_REG_RELEASE, 0, conn_id, &start)) == NULL)
		return;
	buf_add_u8(b, flags);
	buf_add_u8(b, 0);
	buf_add_u16(b, 0);
	buf_add_u32(b, expiry);
	buf_add_u64(b, walc_last(w->walc));
	buf_add_u64(b, sent);
	buf_add(b, id, len);
	if (buf_failed(b))
		buf_truncate(b, start);
	else
		ipc_link_record_end(w->wal_link, start);
}

/* walsvc gave our client's id to a newer connection. */
void
registry_kick(struct worker *w, uint64_t conn_id, uint8_t reason,
    const uint8_t *client_id, size_t len)
{
	struct conn	*c = idmap_get(&w->conns_by_id, conn_id);

	/* gone, and walsvc did not hear so (its release was lost when the
	 * log link started over): it hears now, not after its wait */
	if (c == NULL) {
		/* all it was shipped counts as sent; the claim's expiry */
		send_release(w, conn_id, 0, 0, UINT64_MAX, client_id, len);
		return;
	}
	/* the newer connection wins, even one still waiting for CONNACK;
	 * an operator's kick (promptmqctl) the same way */
	c->normal_close = 0;
	if (reason == MQTT_RC_ADMINISTRATIVE_ACTION) {
		log_info("client kicked by an operator", "client=%.*s",
		    (int)c->client_id_len, c->client_id ? c->client_id : "");
		conn_close(c, reason, "kicked by an operator");
	} else
		conn_close(c, MQTT_RC_SESSION_TAKEN_OVER, "session taken over");
}

/* DISCONNECT 0x00: the will is not to be published. */
void
registry_will_clear(struct conn *c)
{
	static struct log_ratelimit	 rl;
	struct walrec_will		 r;
	struct buf			 b = BUF_INITIALIZER;

	memset(&r, 0, sizeof(r));
	r.op = WALREC_WILL_CLEAR;
	r.arg = WALREC_CLEAR_DISCONNECT;
	r.id = c->rare->will_id;
	r.client_id = (const uint8_t *)c->client_id;
	r.idlen = c->client_id_len;
	if (walrec_will_encode(&b, &r) == -1 || walc_append(c->w->walc,
	    WAL_TYPE_WILL, b.data, b.len) == 0)
		log_limited(&rl, LOG_LEVEL_ERROR, "cannot record a normal "
		    "disconnection; its will is published", "client=%.*s",
		    (int)c->client_id_len, c->client_id);
	buf_free(&b);
	conn_rare(c)->will_id = 0;	/* it was set: the fields are made */
}

/*
 * The connection ended.  The release names the expiry in force and the
 * last record appended so far (its acknowledgements, appended just
 * before): walsvc handles it once that record is applied.
 */
void
registry_release(struct conn *c)
{
	if (c->client_id == NULL)
		return;
	c->registered = 0;
	/* what walsvc shipped beyond sent_seq never reached the client */
	send_release(c->w, c->id, IPC_RELEASE_EXPIRY, c->expiry, c->rare->sent_seq,
	    (const uint8_t *)c->client_id, c->client_id_len);
}

/*
 * Once a second for a claim without an answer: send it again.  nng
 * drops what is in flight on a connection that breaks, and the link to
 * a process that just restarted may still hold a connection to its dead
 * predecessor; a claim or its grant can be lost that way.  walsvc takes
 * a repeated claim as the same claim.
 */
void
registry_claim_again(struct conn *c, int64_t now)
{
	if (now - c->claim_sent < CLAIM_AGAIN_MS)
		return;
	send_claim(c);
}

/* The registry did not answer within the CONNECT time-out. */
void
registry_timeout(struct conn *c)
{
	connect_refuse(c, MQTT_RC_SERVER_UNAVAILABLE,
	    "client registry unavailable");
}

/* A new walsvc, or the log link started over: the claims that wait go
 * again (a repeat is the same claim to walsvc). */
void
registry_send_claims_again(struct worker *w)
{
	struct conn	*c;

	for (c = w->conns; c; c = c->next)
		if (c->state == CONN_CLAIMING)
			send_claim(c);
}

static int
list_record_end(struct worker *w, struct buf *b, size_t start)
{
	if (buf_failed(b)) {
		buf_truncate(b, start);
		return -1;
	}
	return ipc_link_record_end(w->wal_link, start);
}

/*
 * A new walsvc knows nobody and asks (REG_SYNC_ASK `ask`): tell it every
 * client we hold, with the stored session each serves, in records small
 * enough for any link, each naming the ask; the last one says the list
 * is complete, how many clients it named (nng may lose a batch of a long
 * list: walsvc then asks again), and how far our append stream went.
 * walsvc grants nothing until it has every worker's whole list.
 */
void
registry_list(struct worker *w, uint64_t ask)
{
	struct conn	*c;
	struct buf	*b = NULL;
	size_t		 start = 0;
	uint32_t	 n = 0;
	uint8_t		 last[IPC_SYNC_LAST_SIZE];

	/*
	 * Asked again by the walsvc we answered: our answer did not reach
	 * it, and nothing else we send may either (a pipe that delivers
	 * nothing was seen once, after two restarts in quick succession).
	 */
	if (w->listed_for == w->walsvc_gen && w->walsvc_gen != 0)
		walc_relink(w->walc, "asked again for our clients");
	w->listed_for = w->walsvc_gen;

	for (c = w->conns; c; c = c->next) {
		if (!c->registered || c->state != CONN_ACTIVE)
			continue;
		if (b && b->len - start > 32768) {
			if (list_record_end(w, b, start) == -1)
				return;		/* walsvc asks again */
			b = NULL;
		}
		if (b == NULL) {
			if ((b = ipc_link_record_begin(w->wal_link,
			    IPC_REG_SYNC, 0, ask, &start)) == NULL)
				return;		/* walsvc asks again */
			buf_add_u8(b, 0);
		}
		buf_add_u64(b, c->id);
		buf_add_u16(b, c->node);
		buf_add_u16(b, c->send_max);
		buf_add_u32(b, c->epoch);
		buf_add_u64(b, c->rare->sid);
		buf_add_u64(b, c->rare->will_id);
		buf_add_u16(b, c->client_id_len);
		buf_add(b, c->client_id, c->client_id_len);
		n++;
	}
	if (b && list_record_end(w, b, start) == -1)
		return;
	/* the list is complete, and so is what it follows in our stream */
	last[0] = IPC_SYNC_LAST;
	buf_store_u64(last + 1, walc_last(w->walc));
	buf_store_u32(last + 9, n);
	ipc_link_send(w->wal_link, IPC_REG_SYNC, 0, ask, last, sizeof(last));
	log_debug("clients listed for walsvc", "clients=%u ask=%llu", n,
	    (unsigned long long)ask);
}
