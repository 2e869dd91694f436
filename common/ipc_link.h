/*
 * ipc_link.h - nng links between PromptMQ processes, driven by libevent.
 *
 * Topology: every process that receives data listens on ONE pull socket
 * at a path derived from its role and slot (ipc_endpoint_path()), and
 * sends to each peer through ONE push socket dialed to the peer's path.
 * push/pull has back-pressure (a full pipe refuses the send), unlike
 * pub/sub or bus, which drop silently.  Replies travel the same way in
 * the other direction: the receiver knows the sender from the envelope.
 *
 * Batching: nng costs tens of microseconds per message whatever its size,
 * so records are never sent one per nng message.  ipc_link_record_*()
 * append records to the link's open batch; a libevent event activated
 * by the first record of a turn hands the batch to nng once the events
 * already active in that turn have run.  A batch is also closed
 * early when it grows past IPC_LINK_BATCH_BYTES.
 *
 * Coalescing across turns: at a moderate rate a turn holds one or two
 * records, yet every batch costs its tens of microseconds.  A link may be
 * paced by a link that asks questions (the log link, whose appends a
 * commit answers; it may pace itself): while that link waits for an
 * answer, a batch opened on a paced link stays open, across turns, until
 * the answer comes (ipc_link_release()) or pace_us after the question
 * went out.  What several turns produced then goes in one batch, and the
 * wait costs no wake-up of its own, since the answer wakes the process
 * anyway.  A quiet link sends at the end of the turn as before, and a
 * batch of IPC_LINK_HOLD_RECORDS records goes at once.
 *
 * A send that nng refuses (peer slow, gone or not yet up) stays queued in
 * the link; the send descriptor (NNG_OPT_SENDFD) wakes us to retry.  The
 * queue is bounded by the caller: ipc_link_backlog() says how many bytes
 * wait, and a drain callback fires when it falls under the low mark, so a
 * producer can stop reading its clients while a link is congested.
 *
 * Receiving integrates NNG_OPT_RECVFD into the loop: no busy polling.
 */
#ifndef PMQ_IPC_LINK_H
#define PMQ_IPC_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ipc.h"

struct event_base;
struct ipc_endpoint;
struct ipc_link;

#define IPC_LINK_BATCH_BYTES	(256 * 1024)
#define IPC_LINK_HOLD_RECORDS	16	/* a held batch this full goes at once */
#define IPC_PATH_MAX		107	/* sun_path less its NUL */
/* The endpoints' own directory in the runtime directory: the children's
 * user owns it, not the runtime directory (docs/architecture.md) */
#define IPC_SUBDIR		"ipc"

/*
 * Priorities of every event base.  The flush runs at the I/O priority on
 * purpose: libevent runs the active events of one priority in the order
 * they became active, so a flush activated by the first record of a turn
 * runs after the I/O callbacks already queued in that turn, and it can
 * never starve behind a steady stream of I/O, as a lower priority would.
 */
enum evloop_priority {
	EVLOOP_PRIO_CONTROL = 0,
	EVLOOP_PRIO_IO = 1,
	EVLOOP_PRIO_FLUSH = 1,
	EVLOOP_NPRIORITIES = 2,
};

struct event_base	*evloop_new(void);

/*
 * Called once per received batch that passed the envelope checks
 * (magic, version, lengths, target generation).  The handler walks the
 * records with ipc_batch_next() and checks each record's sender and size.
 */
typedef void	(*ipc_batch_fn)(struct ipc_batch *, void *arg);
typedef void	(*ipc_drain_fn)(struct ipc_link *, void *arg);

int	 ipc_endpoint_path(char *out, size_t outlen, const char *rundir,
	    uint8_t role, uint16_t slot);
struct ipc_endpoint *ipc_endpoint_open(struct event_base *, const char *path,
	    uint64_t own_gen, size_t max_message, ipc_batch_fn, void *arg,
	    char *err, size_t errlen);
void	 ipc_endpoint_pause(struct ipc_endpoint *, int paused);
void	 ipc_endpoint_close(struct ipc_endpoint *);
void	 ipc_endpoint_abandon(struct ipc_endpoint *);
uint64_t ipc_endpoint_rejected(const struct ipc_endpoint *);

struct ipc_link *ipc_link_open(struct event_base *, const char *path,
	    const struct ipc_identity *self, char *err, size_t errlen);
void	 ipc_link_close(struct ipc_link *);
void	 ipc_link_set_target_gen(struct ipc_link *, uint64_t);
uint64_t ipc_link_target_gen(const struct ipc_link *);
void	 ipc_link_set_drain(struct ipc_link *, size_t low_mark, ipc_drain_fn,
	    void *arg);

/* Append one record to the open batch; the body follows directly. */
struct buf *ipc_link_record_begin(struct ipc_link *, uint16_t type,
	    uint64_t seq, uint64_t corr, size_t *start);
int	 ipc_link_record_end(struct ipc_link *, size_t start);
int	 ipc_link_send(struct ipc_link *, uint16_t type, uint64_t seq,
	    uint64_t corr, const void *body, size_t len);

/* Pace `link` by `pacer` (above); pace_us 0 or pacer NULL: every turn. */
void	 ipc_link_set_pacer(struct ipc_link *, struct ipc_link *pacer,
	    uint32_t pace_us);
/* The open batch carries a record that the peer will answer. */
void	 ipc_link_expect_answer(struct ipc_link *);
/* The answer came (on a pacer), or the wait is over: a batch kept open
 * goes at the end of this turn. */
void	 ipc_link_release(struct ipc_link *);
/* A batch kept open goes at the end of this turn; an answer stays due. */
void	 ipc_link_unhold(struct ipc_link *);

/* Hand the open batch to nng now (normally done at the end of the turn). */
void	 ipc_link_flush(struct ipc_link *);
/* Drop queued batches (the peer is a new incarnation: resend instead). */
void	 ipc_link_discard(struct ipc_link *);
/* A new nng socket for a peer that is up but answers nothing. */
int	 ipc_link_reconnect(struct ipc_link *);
size_t	 ipc_link_backlog(const struct ipc_link *);

struct ipc_link_stats {
	uint64_t	records;
	uint64_t	batches;
	uint64_t	held;		/* batches that waited for a later turn */
	uint64_t	bytes;
	uint64_t	send_retries;
	uint64_t	reconnects;
};
void	 ipc_link_stats(const struct ipc_link *, struct ipc_link_stats *);

#endif /* PMQ_IPC_LINK_H */
