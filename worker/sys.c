/*
 * sys.c - the $SYS topics, with Mosquitto's names and meanings, so that
 * dashboards made for Mosquitto work unchanged.
 *
 * Every sys.interval each worker reads the counter region (common/
 * metrics.h: every process's counters, so the totals are the broker's)
 * and publishes the values to its own subscribers, as retained QoS 0
 * messages; a new subscription that matches them gets the current values
 * at once, like retained messages.  They are never logged, never
 * forwarded between workers (each worker publishes the same values to
 * its own) and never stored by walsvc.  "+" and "#" at the start of a
 * filter do not match them (MQTT-4.7.2-1).
 *
 * The load averages are Mosquitto's: per-minute rates decayed over 1, 5
 * and 15 minutes at each publication.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "acl.h"
#include "log.h"
#include "metrics.h"
#include "topic.h"
#include "worker.h"

#define SYS_MAX		64
#define SYS_TOPIC_MAX	80

/* What the load averages follow. */
enum {
	L_MSG_RX, L_MSG_TX, L_PUB_RX, L_PUB_TX, L_PUB_DROP, L_BYTES_RX,
	L_BYTES_TX, L_CONNECTIONS, L_SOCKETS, L_N
};

static const char *const load_names[L_N] = {
	"messages/received", "messages/sent", "publish/received",
	"publish/sent", "publish/dropped", "bytes/received", "bytes/sent",
	"connections", "sockets",
};

struct sys_value {
	char		 topic[SYS_TOPIC_MAX];
	struct buf	 packet;		/* PUBLISH, 3.1.1, retained */
};

struct sys_state {
	struct event	*ev;
	int64_t		 interval;	/* ms */
	struct sys_value v[SYS_MAX];
	size_t		 n;
	uint64_t	 last[L_N];
	double		 load[L_N][3];
	int64_t		 last_ms;
	uint64_t	 max_clients;
};

/* Set (or add) a topic's value. */
static void
put(struct worker *w, const char *topic, const char *value)
{
	struct sys_state	*s = w->sys;
	struct mqtt_packet	 pkt;
	struct sys_value	*v = NULL;
	size_t			 i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i].topic, topic) == 0) {
			v = &s->v[i];
			break;
		}
	if (v == NULL) {
		if (s->n == SYS_MAX)
			return;
		v = &s->v[s->n++];
		snprintf(v->topic, sizeof(v->topic), "%s", topic);
		buf_init(&v->packet);
	}
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBLISH;
	pkt.publish.retain = 1;
	pkt.publish.topic.data = (const uint8_t *)v->topic;
	pkt.publish.topic.len = strlen(v->topic);
	pkt.publish.payload.data = (const uint8_t *)value;
	pkt.publish.payload.len = strlen(value);
	buf_truncate(&v->packet, 0);
	if (mqtt_encode(&v->packet, &pkt, MQTT_LEVEL_311) == -1)
		buf_truncate(&v->packet, 0);
}

static void
put_u64(struct worker *w, const char *topic, uint64_t n)
{
	char	 text[32];

	snprintf(text, sizeof(text), "%" PRIu64, n);
	put(w, topic, text);
}

static uint64_t
sum(const struct metrics *m, enum metric_worker id)
{
	uint64_t	 n = 0;
	uint32_t	 i;

	for (i = 0; i < metrics_nworkers(m); i++)
		n += metric_get(&metrics_worker((struct metrics *)m, i)[id]);
	return n;
}

/* Packets or bytes (METRICS_PACKETS_IN..) of every type and worker. */
static uint64_t
sum_traffic(const struct metrics *m, int which)
{
	const metric_t	*v;
	uint64_t	 n = 0;
	uint32_t	 i;
	int		 t;

	for (i = 0; i < metrics_nworkers(m); i++) {
		v = metrics_traffic((struct metrics *)m, i, which);
		for (t = 0; t < METRICS_TYPES; t++)
			n += metric_get(&v[t]);
	}
	return n;
}

/* Every value from the region, now. */
static void
compute(struct worker *w)
{
	struct sys_state	*s = w->sys;
	struct metrics		*m = w->region;
	metric_t		*sup = metrics_sup(m), *wal = metrics_walsvc(m);
	uint64_t		 now[L_N], clients, stored, sessions, start;
	static const int	 minutes[3] = { 1, 5, 15 };
	static const char	*const spans[3] = { "1min", "5min", "15min" };
	int64_t			 ms = clock_mono_ms();
	double			 secs, decay;
	char			 topic[SYS_TOPIC_MAX], text[64];
	uint32_t		 i;
	int			 k, j;

	snprintf(text, sizeof(text), "PromptMQ version %s", PACKAGE_VERSION);
	put(w, "$SYS/broker/version", text);
	start = metric_get(&sup[METRIC_SUP_START_TIME]);
	snprintf(text, sizeof(text), "%" PRIu64 " seconds", (uint64_t)time(NULL)
	    > start ? (uint64_t)time(NULL) - start : 0);
	put(w, "$SYS/broker/uptime", text);

	clients = sum(m, METRIC_W_CLIENTS_5) + sum(m, METRIC_W_CLIENTS_311) +
	    sum(m, METRIC_W_CLIENTS_31);
	stored = sum(m, METRIC_W_CLIENTS_STORED);
	sessions = metric_get(&wal[METRIC_WAL_SESSIONS]) +
	    metric_get(&wal[METRIC_WAL_SESSIONS_OFFLINE]);
	if (clients > s->max_clients)
		s->max_clients = clients;
	put_u64(w, "$SYS/broker/clients/connected", clients);
	put_u64(w, "$SYS/broker/clients/active", clients);
	put_u64(w, "$SYS/broker/clients/disconnected", sessions > stored ?
	    sessions - stored : 0);
	put_u64(w, "$SYS/broker/clients/inactive", sessions > stored ?
	    sessions - stored : 0);
	put_u64(w, "$SYS/broker/clients/total", clients + (sessions > stored ?
	    sessions - stored : 0));
	put_u64(w, "$SYS/broker/clients/maximum", s->max_clients);

	now[L_MSG_RX] = sum_traffic(m, METRICS_PACKETS_IN);
	now[L_MSG_TX] = sum_traffic(m, METRICS_PACKETS_OUT);
	now[L_PUB_RX] = sum(m, METRIC_W_RECEIVED);
	now[L_PUB_TX] = sum(m, METRIC_W_DELIVERED);
	now[L_BYTES_RX] = sum_traffic(m, METRICS_BYTES_IN);
	now[L_BYTES_TX] = sum_traffic(m, METRICS_BYTES_OUT);
	now[L_PUB_DROP] = sum(m, METRIC_W_DROPPED_SLOW) + sum(m,
	    METRIC_W_DROPPED_QUEUE) + sum(m, METRIC_W_DROPPED_EXPIRED) +
	    sum(m, METRIC_W_DROPPED_TOO_LARGE);
	/* every connection is a CONNECT here and a socket there */
	now[L_CONNECTIONS] = sum(m, METRIC_W_ACCEPTED);
	now[L_SOCKETS] = now[L_CONNECTIONS];
	put_u64(w, "$SYS/broker/messages/received", now[L_MSG_RX]);
	put_u64(w, "$SYS/broker/messages/sent", now[L_MSG_TX]);
	put_u64(w, "$SYS/broker/publish/messages/received", now[L_PUB_RX]);
	put_u64(w, "$SYS/broker/publish/messages/sent", now[L_PUB_TX]);
	put_u64(w, "$SYS/broker/publish/messages/dropped", now[L_PUB_DROP]);
	put_u64(w, "$SYS/broker/bytes/received", now[L_BYTES_RX]);
	put_u64(w, "$SYS/broker/bytes/sent", now[L_BYTES_TX]);
	put_u64(w, "$SYS/broker/subscriptions/count", sum(m,
	    METRIC_W_SUBSCRIPTIONS));
	put_u64(w, "$SYS/broker/retained messages/count", metric_get(
	    &wal[METRIC_WAL_RETAINED]));
	put_u64(w, "$SYS/broker/store/messages/count", metric_get(
	    &wal[METRIC_WAL_RETAINED]));
	put_u64(w, "$SYS/broker/messages/stored", metric_get(
	    &wal[METRIC_WAL_RETAINED]));
	put_u64(w, "$SYS/broker/shared_subscriptions/count", sum(m,
	    METRIC_W_SHARED_SUBSCRIPTIONS));

	/* load: a rate per minute, decayed as Mosquitto decays it */
	secs = s->last_ms ? (double)(ms - s->last_ms) / 1000.0 : 0;
	for (k = 0; k < L_N; k++) {
		for (j = 0; j < 3; j++) {
			if (secs > 0) {
				decay = exp(-secs / (60.0 * minutes[j]));
				s->load[k][j] = s->load[k][j] * decay +
				    (double)(now[k] - s->last[k]) * 60.0 /
				    secs * (1.0 - decay);
			}
			snprintf(topic, sizeof(topic), "$SYS/broker/load/%s/%s",
			    load_names[k], spans[j]);
			snprintf(text, sizeof(text), "%.2f", s->load[k][j]);
			put(w, topic, text);
		}
		s->last[k] = now[k];
	}
	s->last_ms = ms;

	/* what only we have: each worker's share */
	for (i = 0; i < metrics_nworkers(m); i++) {
		metric_t	*v = metrics_worker(m, i);

		snprintf(topic, sizeof(topic), "$SYS/broker/workers/%u/clients/"
		    "connected", i);
		put_u64(w, topic, metric_get(&v[METRIC_W_CLIENTS_5]) +
		    metric_get(&v[METRIC_W_CLIENTS_311]) + metric_get(
		    &v[METRIC_W_CLIENTS_31]));
		snprintf(topic, sizeof(topic), "$SYS/broker/workers/%u/publish/"
		    "messages/received", i);
		put_u64(w, topic, metric_get(&v[METRIC_W_RECEIVED]));
		snprintf(topic, sizeof(topic), "$SYS/broker/workers/%u/publish/"
		    "messages/sent", i);
		put_u64(w, topic, metric_get(&v[METRIC_W_DELIVERED]));
	}
}

/* Each value to this worker's subscribers. */
static void
publish_all(struct worker *w)
{
	struct sys_state	*s = w->sys;
	struct mqtt_packet	 pkt;
	size_t			 i;

	for (i = 0; i < s->n; i++) {
		if (s->v[i].packet.len == 0 || mqtt_decode_stored_publish(
		    s->v[i].packet.data, s->v[i].packet.len, MQTT_LEVEL_311,
		    &pkt) == -1)
			continue;
		publish_route(w, NULL, 0, &pkt.publish, MQTT_LEVEL_311,
		    s->v[i].packet.data, s->v[i].packet.len, 0, NULL);
	}
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	stats_publish(w);	/* our own share, current */
	compute(w);
	publish_all(w);
}

static void
arm(struct worker *w)
{
	struct sys_state	*s = w->sys;
	struct timeval		 tv;

	event_del(s->ev);
	s->interval = config_num(&w->proc->cfg, OPT_sys_interval);
	if (s->interval == 0 || w->region == NULL)
		return;
	tv.tv_sec = s->interval / 1000;
	tv.tv_usec = (suseconds_t)(s->interval % 1000) * 1000;
	event_add(s->ev, &tv);
}

void
sys_start(struct worker *w)
{
	if ((w->sys = calloc(1, sizeof(*w->sys))) == NULL ||
	    (w->sys->ev = event_new(w->base, -1, EV_PERSIST, tick, w)) ==
	    NULL) {
		log_warnx("$SYS topics not published", "error=\"out of "
		    "memory\"");
		free(w->sys);
		w->sys = NULL;
		return;
	}
	arm(w);
}

void
sys_reload(struct worker *w)
{
	if (w->sys != NULL && w->sys->interval != config_num(&w->proc->cfg,
	    OPT_sys_interval))
		arm(w);
}

void
sys_stop(struct worker *w)
{
	size_t	 i;

	if (w->sys == NULL)
		return;
	event_free(w->sys->ev);
	for (i = 0; i < w->sys->n; i++)
		buf_free(&w->sys->v[i].packet);
	free(w->sys);
	w->sys = NULL;
}

void
sys_subscribed(struct conn *c, const uint8_t *filter, size_t len,
    uint8_t qos)
{
	struct sys_state	*s = c->w->sys;
	size_t			 i;

	if (s == NULL || s->interval == 0 || len == 0 || filter[0] != '$')
		return;
	/* none yet: the values of now */
	if (s->n == 0 && c->w->region != NULL)
		compute(c->w);
	for (i = 0; i < s->n; i++)
		if (s->v[i].packet.len > 0 && topic_match(filter, len,
		    (const uint8_t *)s->v[i].topic, strlen(s->v[i].topic)) &&
		    auth_may(c, s->v[i].topic, strlen(s->v[i].topic),
		    ACL_READ))
			deliver_retained(c, MQTT_LEVEL_311, s->v[i].packet.data,
			    s->v[i].packet.len, 0, NO_EXPIRY);
}
