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

struct walsvc {
	struct proc		*proc;
	struct event_base	*base;
	struct wal_storage	*storage;
	struct wal		*wal;
	struct index		*index;
	struct registry		*registry;
	struct ipc_endpoint	*endpoint;
	struct reply_link	*links;
	struct stream		*streams[STREAM_BUCKETS];
	struct stream		*touched;
	enum wal_sync_mode	 mode;
	struct event		*commit_ev;
	struct event		*sync_timer;
	struct event		*retry_timer;
	int			 commit_pending;
	int64_t			 last_commit;	/* monotonic µs */
	int			 failing;	/* last write or sync failed */
	int			 paused;	/* endpoint paused: memory bound */
	size_t			 pending_limit;
	uint64_t		 applied_lsn;	/* index is current up to here */
	uint64_t		 appends;
	uint64_t		 duplicates;
	uint64_t		 commits;
};

/* walsvc.c */
struct ipc_link	*walsvc_reply_link(struct walsvc *, uint8_t role, uint16_t slot,
		    uint64_t gen);

/* registry.c */
int	 registry_start(struct walsvc *);
void	 registry_handle(struct walsvc *, const struct ipc_batch *,
	    const struct ipc_record *);
void	 registry_peers_changed(struct walsvc *);
size_t	 registry_count(const struct walsvc *);

/* append.c */
int	 append_start(struct walsvc *);
int	 append_replay(struct walsvc *);
void	 append_reload(struct walsvc *);
void	 append_stop(struct walsvc *);
void	 walsvc_dispatch(struct ipc_batch *, void *);

/* index.c */
int	 index_open(struct index **, const char *dir, uint64_t cache_bytes,
	    char *err, size_t errlen);
void	 index_close(struct index *);
uint64_t index_applied_lsn(const struct index *);
uint64_t index_worker_generation(const struct index *);
int	 index_begin(struct index *);
int	 index_apply(struct index *, const struct wal_record *);
int	 index_commit(struct index *, uint64_t applied_lsn);
int	 index_checkpoint(struct index *);

#endif /* PMQ_WALSVC_H */
