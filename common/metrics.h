/*
 * metrics.h - the counters every process keeps where the metrics child
 * can read them.
 *
 * The supervisor makes one memory file at start-up, sized for its worker
 * slots, and hands it to the children (IPC_CTL_METRICS): each worker maps
 * it read-write and writes its own slot's counters, the supervisor writes
 * its own, and promptmq-metrics maps it read-only and renders it for
 * Prometheus.  Every value has one writer; readers use relaxed atomic
 * loads, writers relaxed stores, so nobody waits on anyone.  A slot
 * belongs to the slot, not to one incarnation of its worker: a restarted
 * worker goes on from its slot's counters, so totals never fall.
 *
 * The tables below are the exposition: each line is one series (name,
 * labels, type, help).  The lines of one family must follow each other,
 * with the same type and help.
 */
#ifndef PMQ_METRICS_H
#define PMQ_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct metrics;

enum { METRIC_COUNTER, METRIC_GAUGE };

/* X(id, family, labels, type, help): the supervisor's own */
#define METRICS_SUP(X)							\
	X(SUP_START_TIME, "promptmq_start_time_seconds", "",		\
	    METRIC_GAUGE, "When promptmqd started, in seconds since 1970.")\
	X(SUP_WORKERS, "promptmq_workers", "", METRIC_GAUGE,		\
	    "Worker slots.")						\
	X(SUP_WORKERS_UP, "promptmq_workers_up", "", METRIC_GAUGE,	\
	    "Workers serving.")						\
	X(SUP_WALSVC_UP, "promptmq_walsvc_up", "", METRIC_GAUGE,	\
	    "1 while the message log process serves.")			\
	X(SUP_RESTARTS_WORKER, "promptmq_child_restarts_total",		\
	    "role=\"worker\"", METRIC_COUNTER,				\
	    "Children that died and were started again, by role.")	\
	X(SUP_RESTARTS_WALSVC, "promptmq_child_restarts_total",		\
	    "role=\"walsvc\"", METRIC_COUNTER,				\
	    "Children that died and were started again, by role.")	\
	X(SUP_RESTARTS_METRICS, "promptmq_child_restarts_total",		\
	    "role=\"metrics\"", METRIC_COUNTER,				\
	    "Children that died and were started again, by role.")	\
	X(SUP_RELOADS, "promptmq_reloads_total", "result=\"applied\"",	\
	    METRIC_COUNTER, "Configuration reloads (SIGHUP), by result.")\
	X(SUP_RELOADS_REJECTED, "promptmq_reloads_total",		\
	    "result=\"rejected\"", METRIC_COUNTER,			\
	    "Configuration reloads (SIGHUP), by result.")

/* each worker slot's, rendered with worker="SLOT" */
#define METRICS_WORKER(X)						\
	X(W_CONNECTIONS, "promptmq_connections", "", METRIC_GAUGE,	\
	    "Client connections open.")					\
	X(W_ACCEPTED, "promptmq_connections_accepted_total", "",		\
	    METRIC_COUNTER, "Client connections accepted.")		\
	X(W_RECEIVED, "promptmq_messages_received_total", "",		\
	    METRIC_COUNTER, "PUBLISH packets received from clients.")	\
	X(W_DELIVERED, "promptmq_messages_delivered_total", "",		\
	    METRIC_COUNTER, "PUBLISH packets sent to clients.")		\
	X(W_FORWARDED, "promptmq_messages_forwarded_total", "",		\
	    METRIC_COUNTER, "Messages handed to other workers.")	\
	X(W_DROPPED_SLOW, "promptmq_messages_dropped_total",		\
	    "reason=\"slow_client\"", METRIC_COUNTER,			\
	    "Messages not delivered, by reason.")			\
	X(W_DROPPED_QUEUE, "promptmq_messages_dropped_total",		\
	    "reason=\"queue_full\"", METRIC_COUNTER,			\
	    "Messages not delivered, by reason.")			\
	X(W_DROPPED_EXPIRED, "promptmq_messages_dropped_total",		\
	    "reason=\"expired\"", METRIC_COUNTER,			\
	    "Messages not delivered, by reason.")			\
	X(W_PROTOCOL_ERRORS, "promptmq_protocol_errors_total", "",	\
	    METRIC_COUNTER, "Connections closed for a protocol error.")	\
	X(W_AUTH_FAILURES, "promptmq_auth_failures_total", "",		\
	    METRIC_COUNTER, "Failed logins (password, SCRAM proof, token).")

#define METRIC_ID(id, family, labels, type, help)	METRIC_##id,
enum metric_sup { METRICS_SUP(METRIC_ID) METRIC_SUP_N };
enum metric_worker { METRICS_WORKER(METRIC_ID) METRIC_WORKER_N };
#undef METRIC_ID

typedef _Atomic uint64_t metric_t;

/* The bytes of a region for `nworkers` slots. */
size_t	 metrics_size(uint32_t nworkers);
/* A new region in zeroed memory of metrics_size() bytes. */
void	 metrics_init(void *mem, uint32_t nworkers);
/* The region in a mapping, or NULL when the bytes are not one. */
struct metrics *metrics_of(void *mem, size_t len);
uint32_t metrics_nworkers(const struct metrics *);
/* The supervisor's values, and a worker slot's. */
metric_t *metrics_sup(struct metrics *);
metric_t *metrics_worker(struct metrics *, uint32_t slot);

static inline void
metric_set(metric_t *m, uint64_t v)
{
	atomic_store_explicit(m, v, memory_order_relaxed);
}

static inline uint64_t
metric_get(const metric_t *m)
{
	return atomic_load_explicit((metric_t *)m, memory_order_relaxed);
}

/* One writer: a plain add, no locked instruction. */
static inline void
metric_add(metric_t *m, uint64_t n)
{
	metric_set(m, metric_get(m) + n);
}

/*
 * The Prometheus text exposition (format 0.0.4) of the region, appended
 * to out.  Returns 0, -1 without memory.
 */
int	 metrics_render(const struct metrics *, struct buf *out);

#endif /* PMQ_METRICS_H */
