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
 * with the same type and help.  The workers' CPU time and memory are
 * the supervisor's to write (it reads them from /proc), the rest of a
 * slot its worker's.
 */
#ifndef PMQ_METRICS_H
#define PMQ_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct metrics;

/*
 * METRIC_SECONDS: a counter kept in microseconds, shown in seconds.  The
 * help of a family is its first line's; the lines after it leave it
 * empty.
 */
enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_SECONDS };

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
	    "role=\"worker\",cause=\"exit\"", METRIC_COUNTER,		\
	    "Children that died and were started again, by role and by "	\
	    "cause: exit (an exit status) or signal (killed).")		\
	X(SUP_RESTARTS_WORKER_SIGNAL, "promptmq_child_restarts_total",	\
	    "role=\"worker\",cause=\"signal\"", METRIC_COUNTER, "")	\
	X(SUP_RESTARTS_WALSVC, "promptmq_child_restarts_total",		\
	    "role=\"walsvc\",cause=\"exit\"", METRIC_COUNTER, "")		\
	X(SUP_RESTARTS_WALSVC_SIGNAL, "promptmq_child_restarts_total",	\
	    "role=\"walsvc\",cause=\"signal\"", METRIC_COUNTER, "")	\
	X(SUP_RESTARTS_METRICS, "promptmq_child_restarts_total",		\
	    "role=\"metrics\",cause=\"exit\"", METRIC_COUNTER, "")	\
	X(SUP_RESTARTS_METRICS_SIGNAL, "promptmq_child_restarts_total",	\
	    "role=\"metrics\",cause=\"signal\"", METRIC_COUNTER, "")	\
	X(SUP_CPU_SUPERVISOR, "promptmq_process_cpu_seconds_total",	\
	    "process=\"supervisor\"", METRIC_SECONDS,			\
	    "CPU time of the broker's processes but the workers, "	\
	    "every incarnation together.")				\
	X(SUP_CPU_WALSVC, "promptmq_process_cpu_seconds_total",		\
	    "process=\"walsvc\"", METRIC_SECONDS, "")			\
	X(SUP_CPU_METRICS, "promptmq_process_cpu_seconds_total",		\
	    "process=\"metrics\"", METRIC_SECONDS, "")			\
	X(SUP_RSS_SUPERVISOR, "promptmq_process_resident_memory_bytes",	\
	    "process=\"supervisor\"", METRIC_GAUGE,			\
	    "Resident memory of the broker's processes but the workers.")\
	X(SUP_RSS_WALSVC, "promptmq_process_resident_memory_bytes",	\
	    "process=\"walsvc\"", METRIC_GAUGE, "")			\
	X(SUP_RSS_METRICS, "promptmq_process_resident_memory_bytes",	\
	    "process=\"metrics\"", METRIC_GAUGE, "")			\
	X(SUP_RELOADS, "promptmq_reloads_total", "result=\"applied\"",	\
	    METRIC_COUNTER, "Configuration reloads (SIGHUP), by result.")\
	X(SUP_RELOADS_REJECTED, "promptmq_reloads_total",		\
	    "result=\"rejected\"", METRIC_COUNTER, "")

/* walsvc's */
#define METRICS_WALSVC(X)						\
	X(WAL_APPENDS, "promptmq_log_appends_total", "", METRIC_COUNTER,	\
	    "Records appended to the message log.")			\
	X(WAL_DUPLICATES, "promptmq_log_duplicate_appends_total", "",	\
	    METRIC_COUNTER, "Appends sent again and recognised, not "	\
	    "written twice.")						\
	X(WAL_COMMITS, "promptmq_log_commits_total", "", METRIC_COUNTER,	\
	    "Group commits of the message log.")				\
	X(WAL_POSITION, "promptmq_log_position", "", METRIC_GAUGE,	\
	    "Log sequence number of the newest record written.")	\
	X(WAL_DISK_BYTES, "promptmq_log_disk_bytes", "", METRIC_GAUGE,	\
	    "Bytes of the message log's segments on disk.")		\
	X(WAL_INDEX_BYTES, "promptmq_index_disk_bytes", "", METRIC_GAUGE,	\
	    "Bytes of the Berkeley DB index on disk.")			\
	X(WAL_SEGMENTS, "promptmq_log_segments", "", METRIC_GAUGE,	\
	    "Segments of the message log.")				\
	X(WAL_STORAGE_BYTES, "promptmq_storage_used_bytes", "",		\
	    METRIC_GAUGE, "Bytes of the log and the index on disk, as "	\
	    "storage.max-disk counts them.")				\
	X(WAL_STORAGE_LIMIT, "promptmq_storage_limit_bytes", "",		\
	    METRIC_GAUGE, "storage.max-disk (0: no bound).")		\
	X(WAL_DISK_FULL, "promptmq_log_disk_full", "", METRIC_GAUGE,	\
	    "1 while the log is over storage.max-disk: QoS 1 and 2 "	\
	    "publishes are refused.")					\
	X(WAL_FAILING, "promptmq_log_write_failing", "", METRIC_GAUGE,	\
	    "1 while the last write or sync of the log failed.")	\
	X(WAL_RECOVERY, "promptmq_log_recovery_seconds", "",		\
	    METRIC_GAUGE, "How long walsvc took to recover the log and "	\
	    "index at its last start.")					\
	X(WAL_CLIENTS, "promptmq_clients_connected", "", METRIC_GAUGE,	\
	    "Clients connected, by the client id registry.")		\
	X(WAL_SESSIONS, "promptmq_sessions_stored", "state=\"online\"",	\
	    METRIC_GAUGE, "Stored (persistent) sessions, by state: online "\
	    "(a connection holds it) or offline.")			\
	X(WAL_SESSIONS_OFFLINE, "promptmq_sessions_stored",		\
	    "state=\"offline\"", METRIC_GAUGE, "")			\
	X(WAL_QUEUED, "promptmq_session_queued_messages", "",		\
	    METRIC_GAUGE, "Messages in the queues of stored sessions, "	\
	    "sent or not, until acknowledged.")				\
	X(WAL_QUEUED_BYTES, "promptmq_session_queued_bytes", "",		\
	    METRIC_GAUGE, "Bytes of the messages in the queues of stored "	\
	    "sessions.")						\
	X(WAL_RETAINED, "promptmq_retained_messages", "", METRIC_GAUGE,	\
	    "Retained messages.")					\
	X(WAL_WILLS, "promptmq_wills_pending", "", METRIC_GAUGE,		\
	    "Wills held for connected clients or waiting for their "	\
	    "delay.")

/* fdatasync of the log, in microseconds: upper bounds of the buckets */
#define METRICS_FSYNC_BOUNDS_US						\
	{ 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,	\
	    250000, 500000, 1000000 }
#define METRICS_FSYNC_BUCKETS	14	/* the bounds and +Inf */

/*
 * From a QoS 1 message's PUBLISH read from its publisher to its PUBLISH
 * written to a subscriber, in microseconds: the buckets' upper bounds.
 * Each worker slot keeps one histogram per path, rendered with
 * worker="SLOT" and path: direct (routed by the workers, to clean
 * sessions) or stored (through the log, to stored sessions).
 */
#define METRICS_LATENCY_BOUNDS_US					\
	{ 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,	\
	    100000, 250000, 1000000, 5000000 }
#define METRICS_LATENCY_BUCKETS	15	/* the bounds and +Inf */
enum { METRICS_PATH_DIRECT, METRICS_PATH_STORED, METRICS_PATHS };
/* A histogram's values: its buckets (not cumulative), then the sum */
#define METRICS_LATENCY_VALUES	(METRICS_LATENCY_BUCKETS + 1)

/* each worker slot's, rendered with worker="SLOT" */
#define METRICS_WORKER(X)						\
	X(W_CPU, "promptmq_worker_cpu_seconds_total", "", METRIC_SECONDS,	\
	    "CPU time of the worker slot, every incarnation together.")	\
	X(W_RSS, "promptmq_worker_resident_memory_bytes", "",		\
	    METRIC_GAUGE, "Resident memory of the worker.")		\
	X(W_CONN_TCP, "promptmq_connections", "transport=\"tcp\"",	\
	    METRIC_GAUGE, "Client connections open, by transport.")	\
	X(W_CONN_TLS, "promptmq_connections", "transport=\"tls\"",	\
	    METRIC_GAUGE, "")						\
	X(W_CONN_WS, "promptmq_connections", "transport=\"ws\"",	\
	    METRIC_GAUGE, "")						\
	X(W_CONN_WSS, "promptmq_connections", "transport=\"wss\"",	\
	    METRIC_GAUGE, "")						\
	X(W_CLIENTS_5, "promptmq_clients", "protocol=\"5.0\"",		\
	    METRIC_GAUGE, "Clients connected (CONNECT accepted), by "	\
	    "protocol version.")					\
	X(W_CLIENTS_311, "promptmq_clients", "protocol=\"3.1.1\"",	\
	    METRIC_GAUGE, "")						\
	X(W_CLIENTS_31, "promptmq_clients", "protocol=\"3.1\"",		\
	    METRIC_GAUGE, "")						\
	X(W_SUBSCRIPTIONS, "promptmq_subscriptions", "", METRIC_GAUGE,	\
	    "Subscriptions of the clients connected.")			\
	X(W_SHARED_SUBSCRIPTIONS, "promptmq_shared_subscriptions", "",	\
	    METRIC_GAUGE, "Shared subscriptions ($share) of the clients "	\
	    "connected.")						\
	X(W_CLIENTS_STORED, "promptmq_clients_with_stored_session", "",	\
	    METRIC_GAUGE, "Clients connected to a stored (persistent) "	\
	    "session.")							\
	X(W_IPC_WAL_BATCHES, "promptmq_ipc_batches_sent_total",		\
	    "link=\"walsvc\"", METRIC_COUNTER, "IPC batches (nng "	\
	    "messages) a worker sent, by where to.")			\
	X(W_IPC_PEER_BATCHES, "promptmq_ipc_batches_sent_total",		\
	    "link=\"workers\"", METRIC_COUNTER, "")			\
	X(W_IPC_WAL_RECORDS, "promptmq_ipc_records_sent_total",		\
	    "link=\"walsvc\"", METRIC_COUNTER, "IPC records a worker "	\
	    "sent, by where to; records per batch is the coalescing.")	\
	X(W_IPC_PEER_RECORDS, "promptmq_ipc_records_sent_total",		\
	    "link=\"workers\"", METRIC_COUNTER, "")			\
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
	    "reason=\"queue_full\"", METRIC_COUNTER, "")		\
	X(W_DROPPED_EXPIRED, "promptmq_messages_dropped_total",		\
	    "reason=\"expired\"", METRIC_COUNTER, "")			\
	X(W_DROPPED_TOO_LARGE, "promptmq_messages_dropped_total",	\
	    "reason=\"too_large\"", METRIC_COUNTER, "")			\
	X(W_DROPPED_NOT_AUTHORIZED, "promptmq_messages_dropped_total",	\
	    "reason=\"not_authorized\"", METRIC_COUNTER, "")		\
	X(W_DROPPED_NO_MEMBER, "promptmq_messages_dropped_total",	\
	    "reason=\"no_member\"", METRIC_COUNTER, "")			\
	X(W_PROTOCOL_ERRORS, "promptmq_protocol_errors_total", "",	\
	    METRIC_COUNTER, "Connections closed for a protocol error.")	\
	X(W_AUTH_FAILURES, "promptmq_auth_failures_total", "",		\
	    METRIC_COUNTER, "Failed logins (password, SCRAM proof, token).")

#define METRIC_ID(id, family, labels, type, help)	METRIC_##id,
enum metric_sup { METRICS_SUP(METRIC_ID) METRIC_SUP_N };
enum metric_worker { METRICS_WORKER(METRIC_ID) METRIC_WORKER_N };
enum metric_walsvc { METRICS_WALSVC(METRIC_ID) METRIC_WALSVC_N };
#undef METRIC_ID

typedef _Atomic uint64_t metric_t;

/* The bytes of a region for `nworkers` slots. */
size_t	 metrics_size(uint32_t nworkers);
/* A new region in zeroed memory of metrics_size() bytes. */
void	 metrics_init(void *mem, uint32_t nworkers);
/* The region in a mapping, or NULL when the bytes are not one. */
struct metrics *metrics_of(void *mem, size_t len);
/*
 * Map the region the supervisor handed over (fd, closed here), for
 * writing or only reading: the region, or NULL with *why.
 */
struct metrics *metrics_map(int fd, int writable, const char **why);
uint32_t metrics_nworkers(const struct metrics *);
/* The supervisor's values, and a worker slot's. */
metric_t *metrics_sup(struct metrics *);
metric_t *metrics_worker(struct metrics *, uint32_t slot);
metric_t *metrics_walsvc(struct metrics *);
/* One fdatasync of the log that took `us` microseconds (walsvc). */
void	 metrics_fsync(struct metrics *, uint64_t us);
/*
 * Each worker slot's MQTT traffic by packet type (index: the type, 1 to
 * 15), rendered with worker="SLOT" and type="publish" and so on: packets
 * and bytes (whole packets, after TLS and WebSocket framing are taken
 * off), received and sent.
 */
enum { METRICS_PACKETS_IN, METRICS_PACKETS_OUT, METRICS_BYTES_IN,
	METRICS_BYTES_OUT, METRICS_TRAFFIC };
#define METRICS_TYPES		16
metric_t *metrics_traffic(struct metrics *, uint32_t slot, int which);
/* A worker slot's latency histogram of a path: METRICS_LATENCY_VALUES. */
metric_t *metrics_latency(struct metrics *, uint32_t slot, int path);
/* The bucket of a latency of `us` microseconds. */
size_t	 metrics_latency_bucket(uint64_t us);

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
