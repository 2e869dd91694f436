/*
 * supervisor.h - state shared by the modules of promptmqd, the
 * supervisor process: configuration, listening sockets, the child table.
 */
#ifndef PMQ_SUPERVISOR_H
#define PMQ_SUPERVISOR_H

#include <sys/socket.h>
#include <sys/types.h>

#include <limits.h>
#include <stdint.h>

#include "ipc.h"
#include "options.h"

struct event;
struct event_base;
struct ctl_channel;
struct supervisor;

enum child_state {
	CHILD_DOWN = 0,		/* not running, nothing scheduled */
	CHILD_STARTING,		/* forked, READY not seen yet */
	CHILD_READY,		/* serving */
	CHILD_STOPPING,		/* STOP sent */
	CHILD_WAITING,		/* dead, respawn scheduled */
};

struct child {
	struct supervisor	*sup;
	uint8_t			 role;
	uint16_t		 slot;
	pid_t			 pid;
	uint64_t		 gen;
	enum child_state	 state;
	int64_t			 started_ms;	/* monotonic */
	int64_t			 delay_ms;	/* next respawn delay */
	uint32_t		 deaths;
	struct ctl_channel	*ctl;
	struct event		*respawn_ev;
};

/* One bind address, open once per worker slot (SO_REUSEPORT). */
struct listener {
	char			 name[80];	/* "127.0.0.1:1883" as bound */
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	int			*fds;		/* one per slot */
};

struct listen_set {
	struct listener		*l;
	int			 n;
	int			 nslots;
};

struct supervisor {
	struct event_base	*base;
	struct config		 cfg;
	int			 argc;
	char			**argv;
	char			 exe_dir[PATH_MAX];
	struct child		 walsvc;
	struct child		*workers;
	int			 nworkers;
	struct listen_set	 listeners;
	uint64_t		 next_gen;
	int			 stopping;
	int			 ready_logged;
	int			 lock_fd;
	int			 exit_status;
	struct event		*stop_timer;
};

/* listen.c */
int	 listen_open(struct listen_set *, const char *binds, int nslots,
	    char *err, size_t errlen);
void	 listen_close(struct listen_set *);
int	 listen_slot_fds(const struct listen_set *, int slot, int *fds, int max);

/* rundir.c */
int	 rundir_prepare(const char *dir, int nworkers, char *err, size_t errlen);
int	 rundir_lock(const char *dir, char *err, size_t errlen);
int	 datadir_prepare(const char *data_dir, const char *wal_dir, char *err,
	    size_t errlen);

/* spawn.c */
void	 spawn_init(struct supervisor *, struct child *, uint8_t role,
	    uint16_t slot);
int	 spawn_child(struct child *);
void	 spawn_reap(struct supervisor *);
void	 spawn_broadcast_peers(struct supervisor *);
void	 spawn_send_config(struct child *, uint16_t type,
	    const struct config *, const enum option_id *, size_t);
void	 spawn_schedule(struct child *, int64_t delay_ms);
int	 spawn_alive(const struct child *);

/* supervisor.c */
int64_t	 supervisor_now_ms(void);
void	 supervisor_child_ready(struct child *, const struct ipc_record *);
void	 supervisor_child_exited(struct child *, int status);

#endif /* PMQ_SUPERVISOR_H */
