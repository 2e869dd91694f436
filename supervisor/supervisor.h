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

#include "clock.h"
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
	uint32_t		 quick_deaths;	/* in a row, before serving */
	int			 served;	/* READY seen */
	int			 throttled;	/* sockets closed for a while */
	char			 last_error[256]; /* CTL_FATAL: why it died */
	uint64_t		 cpu_dead_us;	/* CPU of earlier incarnations */
	uint64_t		 cpu_us;	/* of this one, last read */
	/* place.c: its CPU at the last look, and whether it was busy */
	pid_t			 place_pid;
	uint64_t		 place_cpu_us;
	int			 busy;
	struct ctl_channel	*ctl;
	struct event		*respawn_ev;
};

#define LISTEN_MAX	32	/* addresses in server.bind */

/* One bind address, open once per worker slot (SO_REUSEPORT). */
struct listener {
	char			 spec[128];	/* as configured: "localhost:1883" */
	char			 name[80];	/* "127.0.0.1:1883" as bound */
	int			 fresh;		/* opened by the last update */
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	int			*fds;		/* one per slot */
	/* the kernel's SO_REUSEPORT group, in its order: the slot of each
	 * socket that listens (place.c steers by this position) */
	int			*order;
	int			 norder;
};

/* The addresses of one option (server.bind, tls.bind). */
struct listen_set {
	struct listener		*l;
	int			 n;
	int			 nslots;
	uint8_t			 kind;		/* IPC_LISTEN_* */
	const char		*option;	/* its name, for messages */
};

/* The user the children run as. */
struct privs {
	int		drop;		/* started as root with server.user */
	uid_t		uid;
	gid_t		gid;
};

struct supervisor {
	struct event_base	*base;
	struct config		 cfg;
	int			 argc;
	char			**argv;
	/* the children's programs, opened once at start-up (spawn.c) */
	struct child_exe {
		char		 path[PATH_MAX + 32];
		int		 fd;
	}			 exe[3];	/* 0 walsvc, 1 worker, 2 metrics */
	struct child		 walsvc;
	/* promptmq-metrics (metrics.enabled), its socket, and the counter
	 * region every process writes (stats.c) */
	struct child		 metrics;
	struct listen_set	 metrics_listen;
	int			 metrics_restart;	/* stopped to take a new
							   socket: at once */
	int			 stats_fd;
	struct metrics		*stats;
	struct event		*stats_ev;	/* CPU and memory, each second */
	/* place.c: the slot new connections go to (-1: the kernel's hash,
	 * -2: not chosen yet), and the timer that looks again */
	int			 place_slot;
	int64_t			 place_at;	/* monotonic us of the last look */
	struct event		*place_ev;
	struct child		*workers;
	int			 nworkers;
	struct listen_set	 listeners[IPC_LISTEN_KINDS];
	uint64_t		 next_gen;
	int			 stopping;
	int64_t			 stop_requested;	/* monotonic ms */
	int			 ready_logged;
	int			 lock_fd;
	int			 exit_status;
	char			 fail_reason[512];
	struct privs		 privs;
	struct event		*stop_timer;
	/* auth.password-file and auth.acl-file as last read (auth.c),
	 * indexed by kind */
	struct auth_file {
		struct buf	 bytes;
		char		 name[PATH_MAX];
	}			 auth[IPC_AUTH_KINDS];	/* by IPC_AUTH_* */
	/* failed logins by address, shared by the workers (failtab.h);
	 * made at start-up, 0: not yet */
	int			 failtab_fd;
	/* the control socket (admin.c) */
	struct admin		*admin;
};

/* stats.c */
int	 shared_memory(const char *name, size_t len, void **mem, char *err,
	    size_t errlen);
int	 stats_open(struct supervisor *, char *err, size_t errlen);
void	 stats_send(struct supervisor *, struct child *);
void	 stats_watch(struct supervisor *);
void	 stats_children(struct supervisor *);
void	 stats_child_gone(struct child *);
void	 stats_restarted(struct supervisor *, const struct child *,
	    int status);
void	 stats_reloaded(struct supervisor *, int applied);
void	 stats_start_child(struct supervisor *);
void	 stats_proc_usage(pid_t, uint64_t *cpu_us, uint64_t *rss);
uint64_t stats_worker_connections(const struct supervisor *, int slot);

/* place.c */
void	 place_start(struct supervisor *);
void	 place_update(struct supervisor *, int regrouped);
int	 stats_reload(struct supervisor *, const struct config *next);

/* auth.c */
int	 auth_load(struct supervisor *, const struct config *, char *err,
	    size_t errlen);
void	 auth_send(struct supervisor *, struct child *);
int	 auth_failtab_open(struct supervisor *, char *err, size_t errlen);
void	 auth_reload(struct supervisor *);

/* listen.c */
int	 listen_open(struct listen_set *, uint8_t kind, const char *option,
	    const char *binds, int nslots, char *err, size_t errlen);
void	 listen_close(struct listen_set *);
int	 listen_update(struct listen_set *, const char *binds,
	    char removed[][80], int *nremoved, char *err, size_t errlen);
void	 listen_close_slot(struct listen_set *, int slot,
	    void (*adopt)(int fd, uint8_t kind, void *), void *arg);
int	 listen_reopen_slot(struct listen_set *, int slot, char *err,
	    size_t errlen);
int	 listen_slot_fds(const struct listen_set *, int slot, int *fds, int max);
int	 listen_steer(struct listen_set *, int slot);

/* rundir.c */
int	 rundir_prepare(const char *dir, int nworkers, const struct privs *,
	    char *ipc_dir, size_t ipc_dirlen, char *err, size_t errlen);
int	 rundir_lock(const char *dir, char *err, size_t errlen);
int	 lockfile_open(const char *path, mode_t, char *holder, size_t);
int	 lockfile_write_pid(int fd);
int	 logdir_prepare(const char *targets, char *err, size_t errlen);
int	 datadir_prepare(const char *data_dir, const char *wal_dir, char *err,
	    size_t errlen);

/* daemon.c */
void	 daemon_notify(const char *state);
int	 daemon_pidfile_lock(const char *path, char *err, size_t errlen);
int	 daemon_pidfile_write(char *err, size_t errlen);
void	 daemon_pidfile_remove(void);
void	 daemon_detach(void);
void	 daemon_ready(void);
void	 daemon_failed(const char *why);

/* privs.c */
int	 privs_resolve(const struct config *, struct privs *, char *err,
	    size_t errlen);
int	 privs_hand_over(const struct privs *, const char *what,
	    const char *dir, char *err, size_t errlen);

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
void	 supervisor_child_ready(struct child *, const struct ipc_record *);
void	 supervisor_child_exited(struct child *, int status);
int	 supervisor_reload(struct supervisor *, char *msg, size_t msglen);
int	 supervisor_log_level(struct supervisor *, const char *level,
	    char *err, size_t errlen);

/* admin.c: the control socket of promptmqctl */
int	 admin_open(struct supervisor *, char *err, size_t errlen);
void	 admin_start(struct supervisor *);
void	 admin_child_record(struct child *, const struct ipc_record *);
void	 admin_child_gone(struct child *);
void	 admin_close(struct supervisor *);

#endif /* PMQ_SUPERVISOR_H */
