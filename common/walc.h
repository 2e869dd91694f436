/*
 * walc.h - the sending side of the append stream to walsvc.
 *
 * Workers (and the test and benchmark tools) append records to the
 * message log through walsvc.  The stream is reliable across walsvc
 * crashes because it is idempotent:
 *
 *   1) every append carries the next sequence number of this sender's
 *      stream; the stream is identified by (role, slot, generation);
 *   2) a copy stays here until walsvc reports it durable (WAL_DURABLE
 *      with "durable up to sequence N");
 *   3) walsvc writes a record only if its sequence is exactly the next
 *      one it expects for the stream, answers a repeat with the current
 *      watermark and a gap with WAL_RESEND (first sequence it needs);
 *   4) after a walsvc restart (a new generation in the peers table, or
 *      silence for WALC_RETRANSMIT_MS with appends outstanding) every
 *      unacknowledged record is sent again, in order;
 *   5) after WALC_RECONNECT_AFTER silent rounds the link starts over (a
 *      new nng socket), which drops whatever nng still held for walsvc:
 *      the appends are sent again by 4), and the owner is told
 *      (walc_relinked_fn) so that it sends again the other requests it
 *      put on the link and still waits on.
 *
 * So an acknowledged record is in the log exactly once, whatever dies
 * when.  Under wal-sync "always" the watermark means fsynced; under
 * "interval" written (survives a process crash); under "none" walsvc
 * still reports it, but callers do not wait for it.
 */
#ifndef PMQ_WALC_H
#define PMQ_WALC_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

struct event_base;
struct ipc_link;
struct walc;

#define WALC_RETRANSMIT_MS	500
#define WALC_RECONNECT_AFTER	3	/* silent retransmissions */

/* durable: everything up to and including seq is in the log */
typedef void	(*walc_durable_fn)(void *arg, uint64_t seq);
/* refused: walsvc cannot write (disk full, I/O error); it retries */
typedef void	(*walc_refused_fn)(void *arg, uint64_t seq, int error);
/* relinked: the link started over; what else waits for walsvc's answer
 * was dropped with the old socket and is to be sent again */
typedef void	(*walc_relinked_fn)(void *arg);

struct walc	*walc_new(struct event_base *, struct ipc_link *,
		    walc_durable_fn, walc_refused_fn, void *arg);
void		 walc_set_relinked(struct walc *, walc_relinked_fn);
/* Start the link over now (another sign than silent appends). */
void		 walc_relink(struct walc *, const char *why);
void		 walc_free(struct walc *);
uint64_t	 walc_append(struct walc *, uint8_t kind, const void *payload,
		    size_t len);
/* A publish read from its client at `received` (clock_mono_us()): the
 * first send carries it, for the latency of stored deliveries (a resend
 * does not: 0, not known) */
uint64_t	 walc_append_received(struct walc *, uint8_t kind,
		    const void *payload, size_t len, uint64_t received);
void		 walc_handle(struct walc *, const struct ipc_batch *,
		    const struct ipc_record *);
void		 walc_peer_restarted(struct walc *, uint64_t walsvc_gen);
uint64_t	 walc_durable(const struct walc *);
uint64_t	 walc_last(const struct walc *);
size_t		 walc_unacked_bytes(const struct walc *);
uint64_t	 walc_resent(const struct walc *);

#endif /* PMQ_WALC_H */
