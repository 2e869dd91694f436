/*
 * proc.h - what every child process of the supervisor does the same way.
 *
 * A child (worker, walsvc) is exec'd by the supervisor with
 *
 *	fd 3		its control channel (ctl.h)
 *	fd 4..4+n-1	its listening sockets (workers only)
 *	argv		-s SLOT -g GENERATION -n N
 *
 * proc_main() then runs the fixed start-up order: check the inherited
 * descriptors, ignore the terminal's signals (the supervisor decides the
 * stop order, so SIGINT/SIGTERM/SIGHUP from a terminal or a service
 * manager must not reach children directly), create the event base,
 * open the control channel, and wait for HELLO and CONFIG.  Only then is
 * the role's start function called; the role answers READY when it
 * serves.  EOF on the control channel (the supervisor is gone) ends the
 * process: nobody would restart or stop it otherwise.
 */
#ifndef PMQ_PROC_H
#define PMQ_PROC_H

#include <stdint.h>

#include "ipc.h"
#include "options.h"

struct event_base;
struct ctl_channel;

#define PROC_CTL_FD		3
#define PROC_LISTEN_FD0		4
#define PROC_MAX_LISTEN		64

struct proc_peer {
	uint8_t		role;
	uint8_t		up;
	uint16_t	slot;
	uint64_t	gen;
};

struct proc {
	struct ipc_identity	 self;
	struct event_base	*base;
	struct ctl_channel	*ctl;
	struct config		 cfg;
	int			 configured;	/* CONFIG applied, role started */
	int			 orphaned;	/* the supervisor is gone */
	uint32_t		 nworkers;
	int			 listen_fds[PROC_MAX_LISTEN];
	uint8_t			 listen_kinds[PROC_MAX_LISTEN]; /* IPC_LISTEN_* */
	int			 nlisten;
	struct proc_peer	*peers;
	size_t			 npeers;
	const struct proc_ops	*ops;
	void			*role;		/* the role's own state */
};

struct proc_ops {
	const char	*name;		/* log role: "worker", "walsvc" */
	/* CONFIG arrived and was applied: set up and answer READY */
	void		(*start)(struct proc *);
	/* the peers table changed */
	void		(*peers)(struct proc *);
	/* reloadable options changed (ids of the changed options) */
	void		(*reload)(struct proc *, const enum option_id *, size_t);
	/* the supervisor asks for an orderly stop */
	void		(*stop)(struct proc *);
	/* a control record the common code does not handle */
	void		(*control)(struct proc *, const struct ipc_record *, int fd);
};

__attribute__((noreturn)) void proc_main(int argc, char *argv[],
    uint8_t role, const struct proc_ops *);
int	 proc_send(struct proc *, uint16_t type, const void *, size_t);
const struct proc_peer *proc_peer(const struct proc *, uint8_t role,
	    uint16_t slot);
int	 proc_endpoint_path(const struct proc *, char *, size_t, uint8_t role,
	    uint16_t slot);

#endif /* PMQ_PROC_H */
