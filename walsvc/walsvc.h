/*
 * walsvc.h - state of promptmq-walsvc, the process that owns the durable
 * state: the message log (the single commit point) and the Berkeley DB
 * index derived from it.
 */
#ifndef PMQ_WALSVC_H
#define PMQ_WALSVC_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "ipc.h"
#include "proc.h"
#include "wal.h"

struct event;
struct event_base;
struct ipc_endpoint;
struct ipc_link;
struct index;
struct registry;
struct retained;
struct sessions;
struct bodies;
struct wills;
struct shares;
struct mqtt_publish;
struct walrec_publish;

enum wal_sync_mode {
	WAL_SYNC_ALWAYS = 0,	/* acknowledge after fdatasync */
	WAL_SYNC_INTERVAL = 1,	/* acknowledge after write; sync on a timer */
	WAL_SYNC_NONE = 2,	/* as interval; senders do not wait */
};

/* One sender incarnation's append stream: (role, slot, generation). */
struct stream {
	struct stream	*next;		/* hash chain */
	struct stream	*next_touched;
	uint8_t		 role;
	uint16_t	 slot;
	uint64_t	 gen;
	uint64_t	 highest;	/* last sequence in the log (pending too) */
	uint64_t	 durable;	/* last sequence reported durable */
	int		 touched;	/* owes the sender a watermark */
	int		 resend_asked;	/* RESEND sent this turn */
};

/* Where replies go: one link per (role, slot), aimed at its newest gen. */
struct reply_link {
	struct reply_link	*next;
	uint8_t			 role;
	uint16_t		 slot;
	uint64_t		 gen;
	struct ipc_link		*link;
};

#define STREAM_BUCKETS	256

/* A message walsvc still has to send, kept once (bodies.c). */
struct body {
	struct body	*next;		/* hash chain */
	uint64_t	 lsn;		/* its id: where it was published */
	uint64_t	 loc;		/* where it is now (copied forward) */
	uint32_t	 refs;
	uint8_t		 level;		/* MQTT level of the packet */
	uint8_t		 qos;		/* as published */
	uint32_t	 len;
	int64_t		 received;	/* wall ms; 0: unknown */
	uint64_t	 received_us;	/* clock_mono_us() its PUBLISH was
					   read by a worker, for the latency
					   histogram (memory only); 0: not
					   known */
	uint32_t	 expiry;	/* Message Expiry Interval, s, as
					   received; MSG_NO_EXPIRY: none */
	uint8_t		*packet;	/* NULL until read from the log */
};

#define MSG_NO_EXPIRY	0xffffffffu

/*
 * What is left at `now` (wall ms) of a Message Expiry Interval of
 * `expiry` seconds for a message received at `received`: -1 once it is
 * over, else 0 and *left (MSG_NO_EXPIRY for a message without one).
 */
static inline int
msg_expiry_left(uint32_t expiry, int64_t received, int64_t now,
    uint32_t *left)
{
	int64_t	age;

	*left = MSG_NO_EXPIRY;
	if (expiry == MSG_NO_EXPIRY)
		return 0;
	age = received > 0 && now > received ? now - received : 0;
	if (age >= (int64_t)expiry * 1000)
		return -1;
	*left = expiry - (uint32_t)(age / 1000);
	return 0;
}

/* Who holds a client id: one connection of one worker incarnation. */
struct reg_holder {
	uint16_t	slot;
	uint64_t	gen;
	uint64_t	conn;
};

/* What a CONNECT asks of its session (REG_CLAIM). */
struct claim_params {
	uint8_t		clean_start;
	uint8_t		level;
	uint16_t	window;		/* messages the client takes at once */
	uint32_t	expiry;		/* seconds; WALREC_EXPIRY_NEVER */
	uint32_t	will_delay;	/* seconds */
	uint8_t		*will;		/* the will as a PUBLISH, NULL: none;
					   owned by whoever holds the claim */
	uint32_t	will_len;
};

static inline int
reg_same(const struct reg_holder *a, const struct reg_holder *b)
{
	return a->slot == b->slot && a->gen == b->gen && a->conn == b->conn;
}

struct walsvc {
	struct proc		*proc;
	uint64_t		 applying_received;	/* the append being
							   applied: its corr */
	struct event_base	*base;
	struct wal_storage	*storage;
	struct wal		*wal;
	struct index		*index;
	struct registry		*registry;
	struct sessions		*sessions;
	struct retained		*retained;
	struct bodies		*bodies;
	struct wills		*wills;
	struct shares		*shares;	/* once serving */
	struct ipc_endpoint	*endpoint;
	struct reply_link	*links;
	struct stream		*streams[STREAM_BUCKETS];
	struct stream		*touched;
	enum wal_sync_mode	 mode;
	struct event		*commit_ev;
	struct event		*sync_timer;
	struct event		*retry_timer;
	struct event		*compact_timer;
	char			 index_dir[4096];
	int			 disk_full;	/* over storage.max-disk */
	int			 told_full;	/* what the workers heard */
	int			 commit_pending;
	int64_t			 commit_gap;	/* µs after last_commit */
	int64_t			 last_commit;	/* monotonic µs */
	uint32_t		 group_records;	/* appended since */
	uint32_t		 last_group;	/* in the last commit */
	int			 commit_asked;	/* WAL_SYNC: do not wait */
	int			 failing;	/* last write or sync failed */
	int			 paused;	/* endpoint paused: memory bound */
	size_t			 pending_limit;
	uint64_t		 applied_lsn;	/* index is current up to here */
	uint64_t		 shippable_lsn;	/* durable as wal-sync defines */
	uint64_t		 own_seq;	/* walsvc's own append stream */
	uint64_t		 appends;
	uint64_t		 duplicates;
	uint64_t		 commits;
	int64_t			 recovery_ms;	/* log, index and replay */
	struct metrics		*metrics;	/* the counter region, or NULL */
	struct event		*stats_ev;
};

/* A long start-up step, said once a second while it lasts. */
struct progress {
	const char	*step;
	int64_t		 start;		/* monotonic ms */
	int64_t		 next;
};

/* walsvc.c */
void	 progress_start(struct progress *, const char *step);
void	 progress_note(struct progress *, uint64_t done, uint64_t total);
struct ipc_link	*walsvc_reply_link(struct walsvc *, uint8_t role, uint16_t slot,
		    uint64_t gen);
struct ipc_link	*walsvc_next_worker(struct walsvc *, size_t *peer);

/* admin.c */
void	 admin_request(struct walsvc *, const struct ipc_record *);

/* stats.c */
void	 stats_set_region(struct walsvc *, int fd);
void	 stats_start(struct walsvc *);
void	 stats_publish(struct walsvc *);
void	 stats_recovered(struct walsvc *, int64_t ms);
int	 stats_sync(struct walsvc *);

/* registry.c */
int	 registry_start(struct walsvc *);
void	 registry_handle(struct walsvc *, const struct ipc_batch *,
	    const struct ipc_record *);
void	 registry_peers_changed(struct walsvc *);
void	 registry_progress(struct walsvc *);
size_t	 registry_count(const struct walsvc *);
int	 registry_admin_kick(struct walsvc *, const uint8_t *id, size_t len,
	    int end);

/* append.c */
int	 append_start(struct walsvc *);
int	 append_replay(struct walsvc *);
void	 append_reload(struct walsvc *);
void	 append_stop(struct walsvc *);
uint64_t append_stream_applied(struct walsvc *, uint16_t slot, uint64_t gen);
uint64_t walsvc_append(struct walsvc *, uint8_t type, const void *, size_t);
void	 walsvc_dispatch(struct ipc_batch *, void *);

/* compact.c */
int	 compact_start(struct walsvc *);
/* What storage.max-disk counts: the log's segments and the index. */
uint64_t compact_storage_bytes(struct walsvc *);
uint64_t index_disk_bytes(const char *dir);

/* bodies.c */
int	 bodies_open(struct walsvc *);
void	 bodies_close(struct walsvc *);
struct body *body_ref(struct walsvc *, uint64_t lsn);
int	 body_fill(struct walsvc *, struct body *,
	    const struct walrec_publish *);
void	 body_unref(struct walsvc *, struct body *);
int	 bodies_load(struct walsvc *);
int	 bodies_read(struct walsvc *, uint64_t from, uint64_t to);
int	 bodies_load_locations(struct walsvc *);
size_t	 bodies_count(const struct walsvc *);
void	 bodies_apply_copy(struct walsvc *, const struct wal_record *);
uint64_t bodies_oldest(const struct walsvc *, uint64_t below,
	    uint64_t *held);
int	 bodies_copy_below(struct walsvc *, uint64_t below, int max);

/* retained.c */
int	 retained_open(struct walsvc *);
int	 retained_finish_load(struct walsvc *);
void	 retained_close(struct walsvc *);
void	 retained_apply(struct walsvc *, const struct wal_record *,
	    const struct walrec_publish *, const struct mqtt_publish *);
void	 retained_lookup(struct walsvc *, const struct ipc_batch *,
	    const struct ipc_record *);
void	 retained_progress(struct walsvc *);
size_t	 retained_count(const struct walsvc *);

/* sessions.c */
int	 sessions_open(struct walsvc *);
void	 sessions_drop_missing(struct walsvc *);
void	 sessions_close(struct walsvc *);
void	 sessions_apply(struct walsvc *, const struct wal_record *);
void	 sessions_flush(struct walsvc *);
void	 sessions_durable(struct walsvc *);
int	 sessions_connect(struct walsvc *, const struct reg_holder *,
	    const uint8_t *id, size_t len, const struct claim_params *);
void	 sessions_disconnect(struct walsvc *, const struct reg_holder *,
	    const uint8_t *id, size_t len, int64_t expiry, uint64_t sent);
int	 sessions_resync(struct walsvc *, const struct reg_holder *,
	    const uint8_t *id, size_t len, uint64_t sid, uint32_t epoch,
	    uint16_t window);
void	 sessions_sync_done(struct walsvc *);
struct adm_rows;
size_t	 sessions_list(struct walsvc *, const char *pattern,
	    struct adm_rows *, void (*)(struct walsvc *, struct adm_rows *));
int	 sessions_delete(struct walsvc *, const uint8_t *id, size_t len);
size_t	 sessions_count(const struct walsvc *);
struct sessions_gauges {
	uint64_t	 online, offline, queued, queued_bytes;
};
void	 sessions_gauges(const struct walsvc *, struct sessions_gauges *);
void	 sessions_filters(struct walsvc *, void (*)(const uint8_t *filter,
	    size_t len, uint32_t count, void *arg), void *arg);
uint32_t sessions_expiry_of(struct walsvc *, const uint8_t *id, size_t len);
void	 sessions_id_of(struct walsvc *, const uint8_t *id, size_t len,
	    uint16_t *node, uint64_t *sid);

/* shares.c */
int	 shares_start(struct walsvc *);
void	 shares_close(struct walsvc *);
void	 stored_announce(struct walsvc *, const uint8_t *group, size_t len,
	    uint32_t count);
void	 stored_ask(struct walsvc *, const struct ipc_batch *,
	    const struct ipc_record *);
void	 shares_hand_off(struct walsvc *, uint64_t lsn, struct body *,
	    const uint8_t *group, size_t len);
void	 shares_durable(struct walsvc *);

/* wills.c */
int	 wills_open(struct walsvc *);
void	 wills_close(struct walsvc *);
void	 wills_apply(struct walsvc *, const struct wal_record *);
void	 wills_apply_published(struct walsvc *, uint64_t id);
void	 wills_durable(struct walsvc *);
int	 wills_connect(struct walsvc *, const struct reg_holder *,
	    const uint8_t *id, size_t len, const struct claim_params *,
	    int resumed, uint64_t *lsn, uint64_t *will);
uint64_t wills_held_by(struct walsvc *, const struct reg_holder *,
	    const uint8_t *id, size_t len);
void	 wills_gone(struct walsvc *, const struct reg_holder *,
	    const uint8_t *id, size_t len, int64_t expiry);
void	 wills_resync(struct walsvc *, const struct reg_holder *,
	    const uint8_t *id, size_t len, uint64_t will);
void	 wills_sync_done(struct walsvc *, int64_t when);
size_t	 wills_count(const struct walsvc *);

/* index.c */
typedef int	(*index_session_fn)(void *arg, uint16_t node, uint64_t sid,
		    const uint8_t *row, size_t len);
typedef int	(*index_queue_fn)(void *arg, uint16_t node, uint64_t sid,
		    uint64_t seq, uint64_t lsn, uint8_t qos, uint8_t state);
typedef int	(*index_retained_fn)(void *arg, const uint8_t *topic,
		    size_t len, uint64_t lsn);
typedef int	(*index_msg_fn)(void *arg, uint64_t id, uint64_t loc);
typedef int	(*index_will_fn)(void *arg, const uint8_t *id, size_t len,
		    const uint8_t *row, size_t rowlen);

int	 index_open(struct index **, const char *dir, uint64_t cache_bytes,
	    char *err, size_t errlen);
void	 index_close(struct index *);
int	 index_storage_error(int);
int	 index_error(const struct index *);
uint64_t index_applied_lsn(const struct index *);
uint64_t index_worker_generation(const struct index *);
uint64_t index_clock(const struct index *);
int	 index_begin(struct index *);
int	 index_apply(struct index *, const struct wal_record *);
int	 index_commit(struct index *, uint64_t applied_lsn, uint64_t clock);
int	 index_checkpoint(struct index *);
int	 index_usable(const struct index *);
int	 index_clear_derived(struct index *);
int	 index_session_put(struct index *, uint16_t node, uint64_t sid,
	    const void *, size_t);
int	 index_session_del(struct index *, uint16_t node, uint64_t sid);
int	 index_queue_put(struct index *, uint16_t node, uint64_t sid,
	    uint64_t seq, uint64_t lsn, uint8_t qos, uint8_t state);
int	 index_queue_del(struct index *, uint16_t node, uint64_t sid,
	    uint64_t seq);
int	 index_sessions_load(struct index *, index_session_fn, void *);
int	 index_queue_load(struct index *, index_queue_fn, void *);
int	 index_retained_put(struct index *, const uint8_t *topic, size_t,
	    uint64_t lsn);
int	 index_retained_del(struct index *, const uint8_t *topic, size_t);
int	 index_retained_load(struct index *, index_retained_fn, void *);
int	 index_msg_put(struct index *, uint64_t id, uint64_t loc);
int	 index_msg_del(struct index *, uint64_t id);
int	 index_msgs_load(struct index *, index_msg_fn, void *);
int	 index_will_put(struct index *, const uint8_t *id, size_t len,
	    const void *row, size_t rowlen);
int	 index_will_del(struct index *, const uint8_t *id, size_t len);
int	 index_wills_load(struct index *, index_will_fn, void *);
uint64_t index_stream_highest(struct index *, uint8_t role, uint16_t slot,
	    uint64_t gen);
int	 index_sync(struct index *);

#endif /* PMQ_WALSVC_H */
