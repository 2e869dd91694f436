/*
 * ctl.h - the control channel between the supervisor and one child.
 *
 * An AF_UNIX SOCK_SEQPACKET socketpair created by the supervisor before
 * it forks the child: message boundaries are kept, descriptors travel
 * with SCM_RIGHTS (a listener added on reload), and end-of-file tells
 * the child that the supervisor is gone even after a privilege drop has
 * cleared PR_SET_PDEATHSIG.  Every datagram is one IPC batch (ipc.h) of
 * one record; control traffic is small and rare, so it is not batched.
 */
#ifndef PMQ_CTL_H
#define PMQ_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

struct event_base;
struct ctl_channel;

#define CTL_EOF	1	/* status: the other end closed */

/*
 * status is IPC_OK with a batch (and fd, the descriptor that came with
 * it, or -1; the callee owns it), an IPC_E* error for a datagram that is
 * not a valid batch (batch NULL), or CTL_EOF.
 */
typedef void	(*ctl_fn)(struct ctl_channel *, int status,
		    struct ipc_batch *, int fd, void *arg);

struct ctl_channel *ctl_open(struct event_base *, int fd,
	    const struct ipc_identity *self, ctl_fn, void *arg);
void	 ctl_close(struct ctl_channel *);
int	 ctl_fd(const struct ctl_channel *);
void	 ctl_set_target_gen(struct ctl_channel *, uint64_t);
int	 ctl_send(struct ctl_channel *, uint16_t type, uint64_t corr,
	    const void *body, size_t len, int pass_fd);
size_t	 ctl_pending(const struct ctl_channel *);
void	 ctl_drain(struct ctl_channel *);

#endif /* PMQ_CTL_H */
