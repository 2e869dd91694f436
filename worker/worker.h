/*
 * worker.h - state of a connection worker process (promptmq-worker).
 */
#ifndef PMQ_WORKER_H
#define PMQ_WORKER_H

#include <sys/socket.h>

#include <stdint.h>

#include "proc.h"

struct evconnlistener;
struct ipc_endpoint;
struct ipc_link;
struct walc;

struct worker {
	struct proc		*proc;
	struct event_base	*base;
	struct ipc_endpoint	*endpoint;	/* our inbound pull socket */
	struct ipc_link		*wal_link;	/* to walsvc */
	struct walc		*walc;		/* append stream to the log */
	struct ipc_link		**peer_links;	/* to other workers, by slot */
	uint64_t		*peer_gens;	/* their generation, 0 = down */
	uint32_t		 npeers;
	struct evconnlistener	*listeners[PROC_MAX_LISTEN];
	int			 nlisteners;
	int			 reserve_fd;	/* spare descriptor for EMFILE */
	uint64_t		 accepted;
	uint64_t		 connections;
};

/* accept.c */
int	 accept_start(struct worker *);
void	 accept_stop(struct worker *);

/* conn.c */
void	 conn_accept(struct worker *, int fd, const struct sockaddr *, int len);
void	 conn_close_all(struct worker *);

/* peers.c */
int	 peers_start(struct worker *);
void	 peers_update(struct worker *);
void	 peers_flush(struct worker *);

#endif /* PMQ_WORKER_H */
