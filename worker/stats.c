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

#include <unistd.h>

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
	X(auth_failures, METRIC_W_AUTH_FAILURES)

void
stats_set_region(struct worker *w, uint16_t slot, int fd)
{
	struct metrics	*m;
	const char	*why;

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
	/* what the slot's earlier workers counted goes on */
#define ADOPT(field, id)	w->stats.field = metric_get(&w->metrics[id]);
	STATS(ADOPT)
#undef ADOPT
}

void
stats_publish(struct worker *w)
{
	if (w->metrics == NULL)
		return;
#define PUBLISH(field, id)	metric_set(&w->metrics[id], w->stats.field);
	STATS(PUBLISH)
#undef PUBLISH
	metric_set(&w->metrics[METRIC_W_CONNECTIONS], w->nconns);
}
