/*
 * stats.c - a worker's counters, where the metrics child reads them.
 *
 * The worker counts in its own struct worker_stats, as it always did;
 * once a second (and when it stops) it copies them into its slot of the
 * counter region the supervisor shares (common/metrics.h).  The hot
 * paths stay plain increments of its own memory.  The slot outlives the
 * worker: a worker that starts takes the slot's counters as its own, so
 * a restart never makes a total fall.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc_link.h"
#include "log.h"
#include "worker.h"

/* Each counter of worker_stats and its place in the slot. */
#define STATS(X)							\
	X(accepted, METRIC_W_ACCEPTED)					\
	X(publishes_in, METRIC_W_RECEIVED)				\
	X(deliveries, METRIC_W_DELIVERED)				\
	X(forwarded, METRIC_W_FORWARDED)				\
	X(dropped_qos0, METRIC_W_DROPPED_SLOW)				\
	X(dropped_queue, METRIC_W_DROPPED_QUEUE)			\
	X(expired, METRIC_W_DROPPED_EXPIRED)				\
	X(protocol_errors, METRIC_W_PROTOCOL_ERRORS)			\
	X(auth_failures, METRIC_W_AUTH_FAILURES)				\
	X(dropped_too_large, METRIC_W_DROPPED_TOO_LARGE)		\
	X(dropped_not_authorized, METRIC_W_DROPPED_NOT_AUTHORIZED)	\
	X(dropped_no_member, METRIC_W_DROPPED_NO_MEMBER)

/*
 * The slot's arrays (latency histograms, traffic by packet type) and the
 * worker's: taken from the slot (`adopt`) or written to it.
 */
static void
arrays(struct worker *w, uint32_t slot, int adopt)
{
	metric_t	*v;
	uint64_t	*mine;
	size_t		 i, n;
	int		 k;

	for (k = 0; k < METRICS_PATHS + METRICS_TRAFFIC; k++) {
		if (k < METRICS_PATHS) {
			v = metrics_latency(w->region, slot, k);
			mine = w->stats.latency[k];
			n = METRICS_LATENCY_VALUES;
		} else {
			v = metrics_traffic(w->region, slot, k - METRICS_PATHS);
			mine = w->stats.traffic[k - METRICS_PATHS];
			n = METRICS_TYPES;
		}
		for (i = 0; i < n; i++)
			if (adopt)
				mine[i] = metric_get(&v[i]);
			else
				metric_set(&v[i], mine[i]);
	}
}

/*
 * The IPC links' counters live in the links, which start from zero with
 * the process and again when a link is made anew (a peer restarted): the
 * slot's totals grow by what each link counted since it was last read.
 */
static const enum metric_worker ipc_ids[4] = {
	METRIC_W_IPC_WAL_BATCHES, METRIC_W_IPC_WAL_RECORDS,
	METRIC_W_IPC_PEER_BATCHES, METRIC_W_IPC_PEER_RECORDS,
};

/* A link's count `now`, last read as *last: what it adds. */
static uint64_t
grown(uint64_t now, uint64_t *last)
{
	uint64_t	 d = now >= *last ? now - *last : now;

	*last = now;
	return d;
}

static void
publish_ipc(struct worker *w)
{
	static uint64_t		*last;	/* per link: batches, records */
	static uint32_t		 nlast;
	struct ipc_link_stats	 st;
	uint64_t		*grow;
	uint32_t		 i, n = w->npeers + 1;

	if (nlast < n) {
		if ((grow = realloc(last, n * 2 * sizeof(*last))) == NULL)
			return;
		memset(grow + nlast * 2, 0, (n - nlast) * 2 * sizeof(*grow));
		last = grow;
		nlast = n;
	}
	if (w->wal_link != NULL) {
		ipc_link_stats(w->wal_link, &st);
		w->ipc_base[0] += grown(st.batches, &last[0]);
		w->ipc_base[1] += grown(st.records, &last[1]);
	}
	for (i = 0; i < w->npeers; i++)
		if (w->peers[i].link != NULL) {
			ipc_link_stats(w->peers[i].link, &st);
			w->ipc_base[2] += grown(st.batches, &last[2 + 2 * i]);
			w->ipc_base[3] += grown(st.records, &last[3 + 2 * i]);
		}
	for (i = 0; i < 4; i++)
		metric_set(&w->metrics[ipc_ids[i]], w->ipc_base[i]);
}

void
stats_set_region(struct worker *w, uint16_t slot, int fd)
{
	struct metrics	*m;
	const char	*why;
	int		 i;

	if (fd == -1)
		return;
	if (w->metrics != NULL) {
		close(fd);
		return;
	}
	if ((m = metrics_map(fd, 1, &why)) == NULL ||
	    (w->metrics = metrics_worker(m, slot)) == NULL) {
		log_warnx("counter region not taken", "error=\"%s\"", m ? "no "
		    "slot of ours in it" : why);
		return;
	}
	w->region = m;
	/* what the slot's earlier workers counted goes on */
	for (i = 0; i < 4; i++)
		w->ipc_base[i] = metric_get(&w->metrics[ipc_ids[i]]);
	arrays(w, slot, 1);
#define ADOPT(field, id)	w->stats.field = metric_get(&w->metrics[id]);
	STATS(ADOPT)
#undef ADOPT
}

void
stats_publish(struct worker *w)
{
	uint64_t	 transport[4] = { 0 }, levels[3] = { 0 }, subs = 0;
	uint64_t	 shared = 0;
	uint64_t	 stored = 0;
	struct conn	*c;
	struct conn_sub	*sub;

	if (w->metrics == NULL)
		return;
#define PUBLISH(field, id)	metric_set(&w->metrics[id], w->stats.field);
	STATS(PUBLISH)
#undef PUBLISH
	arrays(w, w->proc->self.slot, 0);
	/* gauges: counted over the connections, once a second */
	for (c = w->conns; c; c = c->next) {
		transport[c->ws == 2 ? 3 : c->ws == 1 ? 2 : c->ssl != NULL ? 1 :
		    0]++;
		if (c->state != CONN_ACTIVE)
			continue;
		levels[c->level == MQTT_LEVEL_5 ? 0 : c->level ==
		    MQTT_LEVEL_311 ? 1 : 2]++;
		stored += c->stored != 0;
		for (sub = c->subs; sub; sub = sub->next) {
			subs++;
			shared += topic_is_shared(sub->filter, sub->len);
		}
	}
	metric_set(&w->metrics[METRIC_W_CONN_TCP], transport[0]);
	metric_set(&w->metrics[METRIC_W_CONN_TLS], transport[1]);
	metric_set(&w->metrics[METRIC_W_CONN_WS], transport[2]);
	metric_set(&w->metrics[METRIC_W_CONN_WSS], transport[3]);
	metric_set(&w->metrics[METRIC_W_CLIENTS_5], levels[0]);
	metric_set(&w->metrics[METRIC_W_CLIENTS_311], levels[1]);
	metric_set(&w->metrics[METRIC_W_CLIENTS_31], levels[2]);
	metric_set(&w->metrics[METRIC_W_SUBSCRIPTIONS], subs);
	metric_set(&w->metrics[METRIC_W_SHARED_SUBSCRIPTIONS], shared);
	metric_set(&w->metrics[METRIC_W_CLIENTS_STORED], stored);
	publish_ipc(w);
}

/*
 * A QoS 1 message read from its publisher at `received` (CLOCK_MONOTONIC,
 * microseconds; 0: not known) is being written to a subscriber now.
 */
void
stats_latency(struct worker *w, int path, uint64_t received)
{
	uint64_t	*h = w->stats.latency[path];
	uint64_t	 now, us;

	if (received == 0)
		return;
	now = (uint64_t)clock_mono_us();
	us = now > received ? now - received : 0;
	h[metrics_latency_bucket(us)]++;
	h[METRICS_LATENCY_BUCKETS] += us;
}
