/*
 * peers.c - a worker's IPC: its inbound endpoint, its link to walsvc
 * (the append stream of walc.h and the client-id registry) and its links
 * to the other workers, kept in step with the supervisor's peers table.
 *
 * Back-pressure: when a link's queue or the log's unacknowledged appends
 * grow past a high mark, the worker stops reading its clients until they
 * are back under a low mark.  Nothing is dropped; publishers wait.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ipc_link.h"
#include "log.h"
#include "walc.h"
#include "worker.h"

/* A batch may exceed the soft batch limit by one record. */
static size_t
max_batch(const struct worker *w)
{
	return (size_t)config_num(&w->proc->cfg, OPT_mqtt_max_packet_size) +
	    2 * IPC_LINK_BATCH_BYTES;
}

/*
 * A walsvc incarnation we have not served: seen in the peers table or in
 * a batch of its own, whichever comes first.  A new one after another
 * gets our unacknowledged appends, the claims and the retained lookups
 * that wait; it asks for our clients itself (REG_SYNC_ASK).  Every one
 * is asked for its shared groups' stored members (share.c).
 */
static void
walsvc_arrived(struct worker *w, uint64_t gen)
{
	int	 restarted = w->walsvc_gen != 0;

	w->walsvc_gen = gen;
	walc_peer_restarted(w->walc, gen);
	if (restarted) {
		log_info("walsvc restarted", "gen=%llu",
		    (unsigned long long)gen);
		registry_send_claims_again(w);
		retained_send_again(w);
	}
	stored_ask(w);
}

static void
worker_dispatch_walsvc(struct worker *w, struct ipc_batch *batch)
{
	static struct log_ratelimit	 rl;
	struct ipc_record		 rec;
	int				 rv;

	/* generations only grow: an older one is a dead walsvc's */
	if (batch->sender.gen < w->walsvc_gen) {
		log_limited(&rl, LOG_LEVEL_DEBUG, "batch from a stale walsvc "
		    "dropped", "gen=%llu", (unsigned long long)batch->sender.gen);
		return;
	}
	/* before the peers table says so: its ask needs our link aimed
	 * at it */
	if (batch->sender.gen > w->walsvc_gen)
		walsvc_arrived(w, batch->sender.gen);
	while ((rv = ipc_batch_next(batch, &rec)) == 1) {
		switch (rec.type) {
		case IPC_REG_SYNC_ASK:
			if (rec.len != 0)
				goto bad;
			registry_list(w, rec.corr);
			break;
		case IPC_WAL_DURABLE:
		case IPC_WAL_RESEND:
		case IPC_WAL_REFUSED:
			walc_handle(w->walc, batch, &rec);
			break;
		case IPC_WAL_FULL:
			if (rec.len != 1)
				goto bad;
			if (w->disk_full != (rec.body[0] != 0))
				log_notice(rec.body[0] ? "the log is full; new "
				    "QoS 1 and 2 messages are refused" :
				    "the log has room again", "");
			w->disk_full = rec.body[0] != 0;
			break;
		case IPC_REG_GRANTED:
			if (rec.len != IPC_GRANTED_SIZE)
				goto bad;
			registry_granted(w, rec.corr, rec.body);
			break;
		case IPC_SESS_SUB:
			if (rec.len <= IPC_SESS_SUB_HEADER)
				goto bad;
			registry_session_sub(w, rec.corr, rec.body, rec.len);
			break;
		case IPC_RET_MSG:
			if (rec.len <= IPC_RET_MSG_HEADER)
				goto bad;
			retained_message(w, rec.corr, rec.seq, rec.body,
			    rec.len);
			break;
		case IPC_RET_DONE:
			if (rec.len != 0)
				goto bad;
			retained_done(w, rec.corr, rec.seq);
			break;
		case IPC_WILL_PUBLISH:
			if (rec.len < 4)
				goto bad;
			publish_will(w, rec.body, rec.len);
			break;
		case IPC_STORED_SET:
			stored_count(w, rec.body, rec.len);
			break;
		case IPC_STORED_RESET:
			if (rec.len != 0)
				goto bad;
			sub_clear_remote(w->subs, share_walsvc_slot(w));
			break;
		case IPC_SHARE_PUBLISH:
			share_handed(w, rec.body, rec.len);
			break;
		case IPC_SESS_QOS2:
			session_incoming(w, rec.corr, rec.body, rec.len);
			break;
		case IPC_SESS_MSG:
			if (rec.len <= IPC_SESS_MSG_HEADER || rec.seq == 0)
				goto bad;
			session_message(w, rec.corr, rec.seq, rec.body, rec.len);
			break;
		case IPC_REG_KICK:
			if (rec.len < 1)
				goto bad;
			registry_kick(w, rec.corr, rec.body[0], rec.body + 1,
			    rec.len - 1);
			break;
		case IPC_REG_REFUSED:
			if (rec.len != 1)
				goto bad;
			registry_refused(w, rec.corr, rec.body[0]);
			break;
		default:
			goto bad;
		}
		continue;
bad:
		log_limited(&rl, LOG_LEVEL_WARN, "malformed message from walsvc",
		    "type=0x%04x len=%u", rec.type, rec.len);
	}
	if (rv < 0)
		log_limited(&rl, LOG_LEVEL_WARN, "malformed batch from walsvc",
		    "error=\"%s\"", ipc_strerror(rv));
}

static void
dispatch(struct ipc_batch *batch, void *arg)
{
	static struct log_ratelimit	 rl;
	struct worker			*w = arg;

	switch (batch->sender.role) {
	case IPC_ROLE_WALSVC:
		worker_dispatch_walsvc(w, batch);
		break;
	case IPC_ROLE_WORKER:
		worker_dispatch_worker(w, batch);
		break;
	default:
		log_limited(&rl, LOG_LEVEL_WARN, "batch from unexpected role",
		    "role=%s", ipc_role_name(batch->sender.role));
	}
}

static void
durable_cb(void *arg, uint64_t seq)
{
	struct worker	*w = arg;
	uint32_t	 i;

	/* a commit ended: forwards that waited for it go (PEER_PACE_US) */
	for (i = 0; i < w->npeers; i++)
		if (w->peers[i].link != NULL)
			ipc_link_release(w->peers[i].link);
	publish_durable(arg, seq);
	subscribe_progress(arg);
}

/*
 * A client waits on the appends of this batch (its window is full): the
 * batch goes at the end of the turn, with one WAL_SYNC that asks walsvc
 * to commit it without waiting for a larger group.
 */
void
log_waited_on(struct worker *w)
{
	struct ipc_link_stats	 st;

	if (w->wal_link == NULL)
		return;
	/* the open batch is the one after the st.batches already closed */
	ipc_link_stats(w->wal_link, &st);
	if (w->sync_batch == st.batches + 1)
		return;		/* it asks already */
	if (ipc_link_send(w->wal_link, IPC_WAL_SYNC, 0, 0, NULL, 0) == -1)
		return;
	w->sync_batch = st.batches + 1;
	ipc_link_unhold(w->wal_link);
}

static void
refused_cb(void *arg, uint64_t seq, int error)
{
	static struct log_ratelimit	 rl;

	log_limited(&rl, LOG_LEVEL_WARN, "walsvc cannot write the log; "
	    "acknowledgements wait", "seq=%llu error=\"%s\"",
	    (unsigned long long)seq, strerror(error));
}

/*
 * The log link started over, and nng dropped what it held: the appends
 * go again (walc.c), claims within a second (registry_claim_again),
 * walsvc asks again for a list it lacks, and the retained lookups that
 * wait are sent again here: nobody else would, and the client's
 * messages wait behind them.  walsvc's shared group counts are asked for
 * again, in case they were lost too.
 */
static void
relinked_cb(void *arg)
{
	registry_send_claims_again(arg);
	retained_send_again(arg);
	stored_ask(arg);
}

static void
drained_cb(struct ipc_link *link, void *arg)
{
	peers_check_backlog(arg);
}

int
peers_start(struct worker *w)
{
	struct proc	*p = w->proc;
	char		 path[IPC_PATH_MAX + 1], err[256];
	uint32_t	 i;

	if (proc_endpoint_path(p, path, sizeof(path), IPC_ROLE_WORKER,
	    p->self.slot) == -1)
		goto toolong;
	if ((w->endpoint = ipc_endpoint_open(w->base, path, p->self.gen,
	    max_batch(w), dispatch, w, err, sizeof(err))) == NULL)
		goto fail;
	if (proc_endpoint_path(p, path, sizeof(path), IPC_ROLE_WALSVC, 0) == -1)
		goto toolong;
	if ((w->wal_link = ipc_link_open(w->base, path, &p->self, err,
	    sizeof(err))) == NULL)
		goto fail;
	ipc_link_set_drain(w->wal_link, WORKER_IPC_LOW, drained_cb, w);
	ipc_link_set_pacer(w->wal_link, w->wal_link, LOG_PACE_US);
	if ((w->walc = walc_new(w->base, w->wal_link, durable_cb, refused_cb,
	    w)) == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	walc_set_relinked(w->walc, relinked_cb);
	w->npeers = p->nworkers;
	if ((w->peers = calloc(w->npeers ? w->npeers : 1,
	    sizeof(*w->peers))) == NULL ||
	    (w->subs = sub_table_new(w->npeers + 1, p->self.slot)) == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	for (i = 0; i < w->npeers; i++) {
		if (i == p->self.slot)
			continue;
		if (proc_endpoint_path(p, path, sizeof(path), IPC_ROLE_WORKER,
		    (uint16_t)i) == -1)
			goto toolong;
		if ((w->peers[i].link = ipc_link_open(w->base, path, &p->self,
		    err, sizeof(err))) == NULL)
			goto fail;
		ipc_link_set_drain(w->peers[i].link, WORKER_IPC_LOW,
		    drained_cb, w);
		ipc_link_set_pacer(w->peers[i].link, w->wal_link,
		    PEER_PACE_US);
	}
	return 0;
toolong:
	snprintf(err, sizeof(err), "IPC socket path too long in %s",
	    config_str(&p->cfg, OPT_server_runtime_dir));
fail:
	log_error("worker IPC set-up failed", "error=\"%s\"", err);
	return -1;
}

/*
 * The supervisor's peers table changed: follow walsvc's generation
 * (walsvc_arrived) and the other workers' (route.c).
 */
void
peers_update(struct worker *w)
{
	const struct proc_peer	*peer;

	if (w->walc == NULL)
		return;
	peer = proc_peer(w->proc, IPC_ROLE_WALSVC, 0);
	if (peer && peer->up && peer->gen > w->walsvc_gen)
		walsvc_arrived(w, peer->gen);
	route_peers_changed(w);
}

/* Pause reading clients while any IPC path is congested. */
void
peers_check_backlog(struct worker *w)
{
	size_t		 worst = ipc_link_backlog(w->wal_link);
	uint32_t	 i;

	if (walc_unacked_bytes(w->walc) > worst)
		worst = walc_unacked_bytes(w->walc);
	for (i = 0; i < w->npeers; i++)
		if (w->peers[i].link &&
		    ipc_link_backlog(w->peers[i].link) > worst)
			worst = ipc_link_backlog(w->peers[i].link);
	if (!w->ipc_paused && worst > WORKER_IPC_HIGH) {
		log_notice("IPC congested; pausing client reads",
		    "backlog_bytes=%zu", worst);
		conn_pause_all(w, 1);
	} else if (w->ipc_paused && worst <= WORKER_IPC_LOW) {
		log_notice("IPC drained; resuming client reads",
		    "backlog_bytes=%zu", worst);
		conn_pause_all(w, 0);
	}
}

void
peers_flush(struct worker *w)
{
	uint32_t	 i;

	if (w->wal_link)
		ipc_link_flush(w->wal_link);
	for (i = 0; i < w->npeers; i++)
		if (w->peers[i].link)
			ipc_link_flush(w->peers[i].link);
}
