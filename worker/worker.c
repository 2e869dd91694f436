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

#include <limits.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "ctl.h"
#include "ipc_link.h"
#include "acl.h"
#include "jwt.h"
#include "log.h"
#include "passwd.h"
#include "scram.h"
#include "proc.h"
#include "worker.h"

static struct worker	 worker;

/* The other workers' tables did not all arrive in time: serve anyway. */
static void
startup_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;

	if (!w->accepting) {
		log_warnx("not every worker sent its subscriptions in time; "
		    "accepting anyway", "");
		accept_enable(w);
	}
}

static void
worker_start(struct proc *p)
{
	struct timeval	 bound = { 2, 0 };
	uint8_t		 ready[8];

	worker.proc = p;
	worker.base = p->base;
	worker.reserve_fd = -1;
	conn_start(&worker);
	/* the TLS files came before the configuration */
	tls_start(&worker);
	if (auth_start(&worker) == -1)
		fatalx("cannot check passwords", "");
	if (peers_start(&worker) == -1)
		fatal_status(PMQ_EXIT_NORESPAWN, "cannot set up IPC", "");
	if (accept_start(&worker) == -1)
		fatalx("cannot accept connections", "");
	/* the peers table may have come with the configuration */
	peers_update(&worker);
	if (!worker.accepting) {
		worker.startup_ev = evtimer_new(worker.base, startup_timeout,
		    &worker);
		if (worker.startup_ev == NULL ||
		    evtimer_add(worker.startup_ev, &bound) == -1)
			accept_enable(&worker);
	}
	sys_start(&worker);
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

/*
 * Orderly stop: no new connections, 5.0 clients are told the server is
 * shutting down (0x8B), what the loop produced is handed to IPC.
 */
static void
worker_stop(struct proc *p)
{
	accept_stop(&worker);
	conn_close_all(&worker, MQTT_RC_SERVER_SHUTTING_DOWN);
	ws_stop(&worker);
	auth_stop(&worker);
	tls_stop(&worker);
	stats_publish(&worker);
	sys_stop(&worker);
	passwd_free(worker.passwd);
	worker.passwd = NULL;
	scram_free(worker.scram);
	worker.scram = NULL;
	acl_free(worker.acl);
	worker.acl = NULL;
	jwt_key_free(worker.jwt);
	worker.jwt = NULL;
	peers_flush(&worker);
	if (p->orphaned)
		ipc_endpoint_abandon(worker.endpoint);
	else
		ipc_endpoint_close(worker.endpoint);
	log_info("worker stopped", "accepted=%llu publishes=%llu "
	    "deliveries=%llu forwarded=%llu dropped_qos0=%llu "
	    "dropped_queued=%llu",
	    (unsigned long long)worker.stats.accepted,
	    (unsigned long long)worker.stats.publishes_in,
	    (unsigned long long)worker.stats.deliveries,
	    (unsigned long long)worker.stats.forwarded,
	    (unsigned long long)worker.stats.dropped_qos0,
	    (unsigned long long)worker.stats.dropped_queue);
	exit(0);
}

static void
worker_reload(struct proc *p, const enum option_id *ids, size_t n)
{
	tls_reload(&worker, ids, n);
	ws_reload(&worker, ids, n);
	sys_reload(&worker);
}

/*
 * The files of authentication and TLS; listening sockets added or
 * removed by a reload of server.bind or tls.bind; clients adopted.
 */
static void
worker_control(struct proc *p, const struct ipc_record *rec, int fd)
{
	char	 name[PATH_MAX];
	size_t	 skip;

	if (rec->type == IPC_CTL_AUTH) {
		/* body: u8 IPC_AUTH_*, the file's name */
		if (rec->len >= 1 && rec->len < sizeof(name) &&
		    rec->body[0] >= IPC_AUTH_PASSWORD_FILE &&
		    rec->body[0] < IPC_AUTH_KINDS) {
			memcpy(name, rec->body + 1, rec->len - 1);
			name[rec->len - 1] = '\0';
			if (rec->body[0] == IPC_AUTH_TLS)
				tls_set_bundle(&worker, fd, name);
			else
				auth_set_file(&worker, rec->body[0], fd, name);
		} else {
			log_warnx("malformed authentication message",
			    "len=%u", rec->len);
			if (fd != -1)
				close(fd);
		}
		return;
	}
	if (rec->type == IPC_CTL_FAILURES) {
		auth_set_failtab(&worker, fd);
		return;
	}
	if (rec->type == IPC_CTL_METRICS) {
		if (rec->len == 1 && rec->body[0] == IPC_METRICS_REGION)
			stats_set_region(&worker, p->self.slot, fd);
		else if (fd != -1)
			close(fd);
		return;
	}
	if (rec->type == IPC_ADM_REQUEST) {
		if (fd != -1)
			close(fd);
		admin_request(&worker, p, rec);
		return;
	}
	if (rec->type == IPC_CTL_ADOPT) {
		/* a client from a throttled slot's queue; body: its kind */
		if (fd != -1 && rec->len == 1 &&
		    rec->body[0] < IPC_LISTEN_KINDS) {
			worker.stats.accepted++;
			conn_accept(&worker, fd, rec->body[0]);
		} else if (fd != -1)
			close(fd);
		return;
	}
	/* LISTEN_ADD: u8 kind, address; LISTEN_REMOVE: address */
	skip = rec->type == IPC_CTL_LISTEN_ADD;
	if (rec->len <= skip || rec->len - skip >= sizeof(name) ||
	    (skip && rec->body[0] >= IPC_LISTEN_KINDS)) {
		log_warnx("malformed listener message", "type=0x%04x len=%u",
		    rec->type, rec->len);
		if (fd != -1)
			close(fd);
		return;
	}
	memcpy(name, rec->body + skip, rec->len - skip);
	name[rec->len - skip] = '\0';
	switch (rec->type) {
	case IPC_CTL_LISTEN_ADD:
		if (fd == -1) {
			log_warnx("listener message without a socket",
			    "addr=%s", name);
			return;
		}
		accept_add(&worker, fd, rec->body[0]);
		return;
	case IPC_CTL_LISTEN_REMOVE:
		accept_remove(&worker, name);
		break;
	default:
		log_warnx("unexpected control message", "type=0x%04x",
		    rec->type);
		break;
	}
	if (fd != -1)
		close(fd);
}

static const struct proc_ops worker_ops = {
	.name = "worker",
	.start = worker_start,
	.peers = worker_peers,
	.stop = worker_stop,
	.reload = worker_reload,
	.control = worker_control,
};

int
main(int argc, char *argv[])
{
	proc_main(argc, argv, IPC_ROLE_WORKER, &worker_ops);
}
