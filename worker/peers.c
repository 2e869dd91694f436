/*
 * peers.c - a worker's IPC: its inbound endpoint, its link to walsvc
 * (carrying the append stream, walc.h) and its links to the other
 * workers, kept in step with the supervisor's peers table.
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

static void
worker_dispatch_walsvc(struct worker *w, struct ipc_batch *batch)
{
	static struct log_ratelimit	 rl;
	struct ipc_record		 rec;
	int				 rv;

	while ((rv = ipc_batch_next(batch, &rec)) == 1) {
		switch (rec.type) {
		case IPC_WAL_DURABLE:
		case IPC_WAL_RESEND:
		case IPC_WAL_REFUSED:
			walc_handle(w->walc, batch, &rec);
			break;
		default:
			log_limited(&rl, LOG_LEVEL_WARN,
			    "unexpected message from walsvc", "type=0x%04x",
			    rec.type);
		}
	}
	if (rv < 0)
		log_limited(&rl, LOG_LEVEL_WARN, "malformed batch from walsvc",
		    "error=\"%s\"", ipc_strerror(rv));
}

static void
worker_dispatch_worker(struct worker *w, struct ipc_batch *batch)
{
	static struct log_ratelimit	 rl;
	struct ipc_record		 rec;
	int				 rv;

	if (batch->sender.slot >= w->npeers ||
	    batch->sender.gen != w->peer_gens[batch->sender.slot]) {
		log_limited(&rl, LOG_LEVEL_NOTICE,
		    "batch from a stale worker dropped", "slot=%u gen=%llu",
		    batch->sender.slot, (unsigned long long)batch->sender.gen);
		return;
	}
	while ((rv = ipc_batch_next(batch, &rec)) == 1)
		log_limited(&rl, LOG_LEVEL_WARN,
		    "unexpected message from worker", "slot=%u type=0x%04x",
		    batch->sender.slot, rec.type);
	if (rv < 0)
		log_limited(&rl, LOG_LEVEL_WARN, "malformed batch from worker",
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
}

static void
refused_cb(void *arg, uint64_t seq, int error)
{
	static struct log_ratelimit	 rl;

	log_limited(&rl, LOG_LEVEL_WARN, "walsvc cannot write the log; "
	    "acknowledgements wait", "seq=%llu errno=%d",
	    (unsigned long long)seq, error);
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
	if ((w->walc = walc_new(w->base, w->wal_link, durable_cb, refused_cb,
	    w)) == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	w->npeers = p->nworkers;
	w->peer_links = calloc(w->npeers ? w->npeers : 1, sizeof(*w->peer_links));
	w->peer_gens = calloc(w->npeers ? w->npeers : 1, sizeof(*w->peer_gens));
	if (w->peer_links == NULL || w->peer_gens == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	for (i = 0; i < w->npeers; i++) {
		if (i == p->self.slot)
			continue;
		if (proc_endpoint_path(p, path, sizeof(path), IPC_ROLE_WORKER,
		    (uint16_t)i) == -1)
			goto toolong;
		if ((w->peer_links[i] = ipc_link_open(w->base, path, &p->self,
		    err, sizeof(err))) == NULL)
			goto fail;
	}
	peers_update(w);
	return 0;
toolong:
	snprintf(err, sizeof(err), "IPC socket path too long in %s",
	    config_str(&p->cfg, OPT_server_runtime_dir));
fail:
	log_error("worker IPC set-up failed", "error=\"%s\"", err);
	return -1;
}

/*
 * The supervisor's peers table changed: follow walsvc's and the other
 * workers' generations.  A worker that restarted is a new peer: what
 * was addressed to its previous incarnation is discarded.
 */
void
peers_update(struct worker *w)
{
	const struct proc_peer	*peer;
	uint32_t		 i;

	if (w->walc == NULL)
		return;
	peer = proc_peer(w->proc, IPC_ROLE_WALSVC, 0);
	if (peer && peer->up)
		walc_peer_restarted(w->walc, peer->gen);
	for (i = 0; i < w->npeers; i++) {
		if (i == w->proc->self.slot)
			continue;
		peer = proc_peer(w->proc, IPC_ROLE_WORKER, (uint16_t)i);
		if (peer == NULL)
			continue;
		if (!peer->up) {
			if (w->peer_gens[i] != 0)
				ipc_link_discard(w->peer_links[i]);
			w->peer_gens[i] = 0;
			continue;
		}
		if (peer->gen != w->peer_gens[i]) {
			ipc_link_discard(w->peer_links[i]);
			w->peer_gens[i] = peer->gen;
			ipc_link_set_target_gen(w->peer_links[i], peer->gen);
		}
	}
}

void
peers_flush(struct worker *w)
{
	uint32_t	 i;

	if (w->wal_link)
		ipc_link_flush(w->wal_link);
	for (i = 0; i < w->npeers; i++)
		if (w->peer_links[i])
			ipc_link_flush(w->peer_links[i]);
}
