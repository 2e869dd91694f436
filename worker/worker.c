/*
 * worker.c - promptmq-worker: one libevent loop serving the MQTT
 * connections that the kernel hands to this worker's slot socket.
 *
 * The common child start-up (proc.c) runs first; once the supervisor's
 * configuration is applied, worker_start() opens the worker's inbound
 * IPC endpoint, its links to walsvc and to the other workers, starts
 * accepting, and answers READY.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ipc_link.h"
#include "log.h"
#include "proc.h"
#include "worker.h"

static struct worker	 worker;

static void
worker_start(struct proc *p)
{
	uint8_t	 ready[8];

	worker.proc = p;
	worker.base = p->base;
	worker.reserve_fd = -1;
	if (peers_start(&worker) == -1)
		fatal_status(PMQ_EXIT_NORESPAWN, "cannot set up IPC", "");
	if (accept_start(&worker) == -1)
		fatalx("cannot accept connections", "");
	memset(ready, 0, sizeof(ready));
	proc_send(p, IPC_CTL_READY, ready, sizeof(ready));
	log_info("worker ready", "gen=%llu listeners=%d",
	    (unsigned long long)p->self.gen, worker.nlisteners);
}

static void
worker_peers(struct proc *p)
{
	peers_update(&worker);
}

static void
worker_stop(struct proc *p)
{
	accept_stop(&worker);
	conn_close_all(&worker);
	peers_flush(&worker);
	log_info("worker stopped", "accepted=%llu",
	    (unsigned long long)worker.accepted);
	exit(0);
}

static const struct proc_ops worker_ops = {
	.name = "worker",
	.start = worker_start,
	.peers = worker_peers,
	.stop = worker_stop,
};

int
main(int argc, char *argv[])
{
	proc_main(argc, argv, IPC_ROLE_WORKER, &worker_ops);
}
