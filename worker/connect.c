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
 *   3) on REG_GRANTED the worker sends CONNACK and resumes reading.
 * While walsvc is down, claims wait; after server.connect-timeout the
 * client gets "server unavailable".  A new walsvc learns every
 * connected client from REG_SYNC and the waiting claims are sent again.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ipc_link.h"
#include "log.h"
#include "worker.h"

/* CONNACK details decided at CONNECT and sent at REG_GRANTED. */
#define FLAG_ASSIGNED_ID	0x1
#define FLAG_SERVER_KEEP_ALIVE	0x2

static void
refuse(struct conn *c, uint8_t reason, const char *why)
{
	struct mqtt_packet	 pkt;
	int			 code;
	char			 addr[64];

	log_info("client refused", "client=%.*s addr=%s proto=%u "
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

/* The will as a PUBLISH packet at the client's level, sent on close. */
static int
keep_will(struct conn *c, const struct mqtt_connect *cn)
{
	struct mqtt_packet	 pkt;
	struct buf		 b = BUF_INITIALIZER;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBLISH;
	pkt.publish.qos = cn->will_qos;
	pkt.publish.packet_id = cn->will_qos ? 1 : 0;
	pkt.publish.topic = cn->will_topic;
	pkt.publish.payload = cn->will_payload;
	pkt.publish.props = cn->will_props;
	/* the delay belongs to the will, not to the message */
	pkt.publish.props.present &=
	    ~MQTT_PROP_BIT(MQTT_PROP_WILL_DELAY_INTERVAL);
	if (mqtt_encode(&b, &pkt, c->level) == -1 ||
	    (c->will = malloc(sizeof(*c->will) + b.len)) == NULL) {
		buf_free(&b);
		return -1;
	}
	c->will->len = (uint32_t)b.len;
	memcpy(c->will->packet, b.data, b.len);
	buf_free(&b);
	return 0;
}

static void
send_claim(struct conn *c)
{
	ipc_link_send(c->w->wal_link, IPC_REG_CLAIM, 0, c->id, c->client_id,
	    c->client_id_len);
}

void
connect_handle(struct conn *c, const struct mqtt_packet *pkt,
    const struct mqtt_result *res)
{
	const struct mqtt_connect	*cn = &pkt->connect;
	const struct config		*cfg = &c->w->proc->cfg;
	int64_t				 max_ka;
	char				 assigned[64];
	const uint8_t			*id = cn->client_id.data;
	size_t				 idlen = cn->client_id.len;
	uint16_t			 inflight;

	c->level = pkt->level;

	/* 1) who may connect: no authentication backend exists yet */
	if (!config_num(cfg, OPT_mqtt_allow_anonymous)) {
		refuse(c, cn->has_username ? MQTT_RC_BAD_USER_NAME_OR_PASSWORD :
		    MQTT_RC_NOT_AUTHORIZED, "anonymous access is off and no "
		    "password file is configured");
		return;
	}

	/* 2) the client id: assigned when empty and allowed */
	if (idlen == 0) {
		if (c->level != MQTT_LEVEL_5 && !cn->clean_start) {
			refuse(c, MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID,
			    "empty client id needs a clean session");
			return;
		}
		/* worker generations never repeat, so neither do these */
		idlen = (size_t)snprintf(assigned, sizeof(assigned),
		    "pmq-%u-%llx-%llx", c->w->proc->self.slot,
		    (unsigned long long)c->w->proc->self.gen,
		    (unsigned long long)++c->w->next_assigned);
		id = (const uint8_t *)assigned;
		if (c->level == MQTT_LEVEL_5)
			c->connack_flags |= FLAG_ASSIGNED_ID;
	}
	if ((c->client_id = malloc(idlen + 1)) == NULL) {
		refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
		return;
	}
	memcpy(c->client_id, id, idlen);
	c->client_id[idlen] = '\0';
	c->client_id_len = (uint16_t)idlen;

	/* 3) the will: what this broker cannot honour is refused (5.0) */
	if (cn->will) {
		if (cn->will_qos > 1 && c->level == MQTT_LEVEL_5) {
			refuse(c, MQTT_RC_QOS_NOT_SUPPORTED,
			    "will QoS 2 is not supported");
			return;
		}
		if (cn->will_retain && c->level == MQTT_LEVEL_5) {
			refuse(c, MQTT_RC_RETAIN_NOT_SUPPORTED,
			    "retained wills are not supported");
			return;
		}
		if (keep_will(c, cn) == -1) {
			refuse(c, MQTT_RC_SERVER_UNAVAILABLE,
			    "cannot keep the will");
			return;
		}
	}

	/* 4) keep-alive: 5.0 clients are told a smaller limit if need be */
	max_ka = config_num(cfg, OPT_mqtt_max_keep_alive) / 1000;
	c->keep_alive = cn->keep_alive;
	if (c->level == MQTT_LEVEL_5 && (cn->keep_alive > max_ka ||
	    (cn->keep_alive == 0 && max_ka < 65535))) {
		c->keep_alive = (uint16_t)max_ka;
		c->connack_flags |= FLAG_SERVER_KEEP_ALIVE;
	}

	/* 5) flow control the client asked for (5.0) */
	inflight = (uint16_t)config_num(cfg, OPT_mqtt_max_inflight);
	c->send_max = inflight;
	if (mqtt_props_has(&cn->props, MQTT_PROP_RECEIVE_MAXIMUM) &&
	    cn->props.receive_maximum < inflight)
		c->send_max = cn->props.receive_maximum;
	if (mqtt_props_has(&cn->props, MQTT_PROP_MAXIMUM_PACKET_SIZE))
		c->max_out_packet = cn->props.maximum_packet_size;

	/* 6) ask the registry; reading waits for the answer */
	c->state = CONN_CLAIMING;
	conn_pause(c, PAUSE_CLAIM, 1);
	send_claim(c);
}

void
registry_granted(struct worker *w, uint64_t conn_id)
{
	const struct config	*cfg = &w->proc->cfg;
	struct conn		*c = idmap_get(&w->conns_by_id, conn_id);
	struct mqtt_packet	 pkt;
	struct mqtt_props	*p = &pkt.connack.props;
	int64_t			 maxqos;
	char			 addr[64];

	if (c == NULL || c->state != CONN_CLAIMING)
		return;		/* closed meanwhile: its release is on its way */
	c->registered = 1;
	c->state = CONN_ACTIVE;
	c->last_rx = clock_mono_ms();

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNACK;
	pkt.connack.session_present = 0;	/* clean sessions only */
	if (c->level == MQTT_LEVEL_5) {
		/* advertise what exists, nothing more */
		maxqos = config_num(cfg, OPT_mqtt_max_qos);
		p->receive_maximum = (uint16_t)config_num(cfg,
		    OPT_mqtt_max_inflight);
		mqtt_props_set(p, MQTT_PROP_RECEIVE_MAXIMUM);
		p->maximum_qos = maxqos > 1 ? 1 : (uint8_t)maxqos;
		mqtt_props_set(p, MQTT_PROP_MAXIMUM_QOS);
		p->retain_available = 0;
		mqtt_props_set(p, MQTT_PROP_RETAIN_AVAILABLE);
		/* at or near the protocol's own limit it says nothing (and
		 * some clients refuse values above 268435455) */
		if (config_num(cfg, OPT_mqtt_max_packet_size) < BUF_VBI_MAX) {
			p->maximum_packet_size = (uint32_t)config_num(cfg,
			    OPT_mqtt_max_packet_size);
			mqtt_props_set(p, MQTT_PROP_MAXIMUM_PACKET_SIZE);
		}
		p->wildcard_subscription_available = config_num(cfg,
		    OPT_mqtt_wildcard_available) ? 1 : 0;
		mqtt_props_set(p, MQTT_PROP_WILDCARD_SUBSCRIPTION_AVAILABLE);
		p->subscription_identifier_available = 0;
		mqtt_props_set(p, MQTT_PROP_SUBSCRIPTION_IDENTIFIER_AVAILABLE);
		p->shared_subscription_available = 0;
		mqtt_props_set(p, MQTT_PROP_SHARED_SUBSCRIPTION_AVAILABLE);
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
	}
	conn_send_packet(c, &pkt);
	log_info("client connected", "client=%.*s addr=%s proto=%u "
	    "keepalive=%u clean=1", (int)c->client_id_len, c->client_id,
	    conn_addr(c, addr, sizeof(addr)), c->level, c->keep_alive);
	conn_pause(c, PAUSE_CLAIM, 0);
}

/* The registry refused the claim: the broker is full. */
void
registry_refused(struct worker *w, uint64_t conn_id, uint8_t reason)
{
	struct conn	*c = idmap_get(&w->conns_by_id, conn_id);

	if (c == NULL || c->state != CONN_CLAIMING)
		return;
	refuse(c, reason, "connection limit reached");
}

/* walsvc gave our client's id to a newer connection. */
void
registry_kick(struct worker *w, uint64_t conn_id)
{
	struct conn	*c = idmap_get(&w->conns_by_id, conn_id);

	if (c == NULL)
		return;
	/* the newer connection wins, even one still waiting for CONNACK */
	c->normal_close = 0;
	conn_close(c, MQTT_RC_SESSION_TAKEN_OVER, "session taken over");
}

void
registry_release(struct conn *c)
{
	if (c->client_id == NULL)
		return;
	ipc_link_send(c->w->wal_link, IPC_REG_RELEASE, 0, c->id, c->client_id,
	    c->client_id_len);
	c->registered = 0;
}

/* The registry did not answer within the CONNECT time-out. */
void
registry_timeout(struct conn *c)
{
	refuse(c, MQTT_RC_SERVER_UNAVAILABLE, "client registry unavailable");
}

/*
 * A new walsvc knows nobody: tell it every client we hold, in records
 * small enough for any link, then send the waiting claims again.
 */
void
registry_walsvc_restarted(struct worker *w)
{
	struct conn	*c;
	struct buf	*b = NULL;
	size_t		 start = 0;

	for (c = w->conns; c; c = c->next) {
		if (!c->registered || c->state != CONN_ACTIVE)
			continue;
		if (b && b->len - start > 32768) {
			ipc_link_record_end(w->wal_link, start);
			b = NULL;
		}
		if (b == NULL && (b = ipc_link_record_begin(w->wal_link,
		    IPC_REG_SYNC, 0, 0, &start)) == NULL)
			return;
		buf_add_u64(b, c->id);
		buf_add_u16(b, c->client_id_len);
		buf_add(b, c->client_id, c->client_id_len);
	}
	if (b)
		ipc_link_record_end(w->wal_link, start);
	for (c = w->conns; c; c = c->next)
		if (c->state == CONN_CLAIMING)
			send_claim(c);
}
