/*
 * place.c - which worker new connections go to.
 *
 * A message that crosses from one worker to another costs more CPU than
 * the work on it (nng wakes five threads for it), and the kernel's
 * SO_REUSEPORT hash puts a fan-in's publishers and its subscriber on
 * different workers.  So new connections are packed: they go to the
 * lowest worker slot with room, and the kernel's hash spreads them only
 * when no worker has any (architecture.md, "Where a new connection
 * goes").  A worker has room while it serves, its slot is not throttled,
 * it holds fewer than server.pack-connections connections and it is not
 * busy: busy from 60 % of a core over the last look, idle again below
 * 40 %.  Connections already made never move.
 *
 * The choice is made again every PLACE_TICK_MS, when a worker becomes
 * ready or dies, when a slot's sockets close or reopen, and on reload;
 * listen_steer() puts it into the sockets.
 */
#include "config.h"

#include <event2/event.h>

#include "log.h"
#include "supervisor.h"

#define PLACE_TICK_MS		250
#define PLACE_BUSY_PERMILLE	600	/* of one core: busy from here */
#define PLACE_IDLE_PERMILLE	400	/* ... until below this */

/* Whether the worker in `slot` can take the next connections. */
static int
has_room(const struct supervisor *s, int slot, int64_t pack)
{
	const struct child	*c = &s->workers[slot];

	return c->state == CHILD_READY && !c->throttled && !c->busy &&
	    stats_worker_connections(s, slot) < (uint64_t)pack;
}

/*
 * Choose, and tell the kernel when the choice changed or when a group
 * of sockets changed (regrouped: a slot's sockets closed or reopened,
 * addresses added by a reload), since the program names a position in
 * the group.
 */
void
place_update(struct supervisor *s, int regrouped)
{
	int64_t	 pack = config_num(&s->cfg, OPT_server_pack_connections);
	int	 slot = -1, i, k;

	if (s->stopping)
		return;
	for (i = 0; pack > 0 && i < s->nworkers; i++)
		if (has_room(s, i, pack)) {
			slot = i;
			break;
		}
	if (slot == s->place_slot && !regrouped)
		return;
	for (k = 0; k < IPC_LISTEN_KINDS; k++)
		(void)listen_steer(&s->listeners[k], slot);
	if (slot != s->place_slot)
		log_debug("new connections go to a worker", "slot=%d%s", slot,
		    slot < 0 ? " (all workers)" : "");
	s->place_slot = slot;
}

/* How busy each worker was since the last look. */
static void
place_tick(evutil_socket_t fd, short what, void *arg)
{
	struct supervisor	*s = arg;
	struct child		*c;
	uint64_t		 us, rss, used, permille;
	int64_t			 now = clock_mono_us();
	int64_t			 span = now - s->place_at;
	int			 i;

	for (i = 0; i < s->nworkers; i++) {
		c = &s->workers[i];
		if (!spawn_alive(c)) {
			c->place_pid = 0;
			c->busy = 0;
			continue;
		}
		stats_proc_usage(c->pid, &us, &rss);
		if (c->place_pid == c->pid && us >= c->place_cpu_us &&
		    span > 0) {
			used = us - c->place_cpu_us;
			permille = used * 1000 / (uint64_t)span;
			if (permille >= PLACE_BUSY_PERMILLE)
				c->busy = 1;
			else if (permille < PLACE_IDLE_PERMILLE)
				c->busy = 0;
		} else
			c->busy = 0;	/* a new process: looked at next time */
		c->place_pid = c->pid;
		c->place_cpu_us = us;
	}
	s->place_at = now;
	place_update(s, 0);
}

void
place_start(struct supervisor *s)
{
	struct timeval	 tick = { 0, PLACE_TICK_MS * 1000 };

	s->place_slot = -2;
	s->place_at = clock_mono_us();
	if ((s->place_ev = event_new(s->base, -1, EV_PERSIST, place_tick,
	    s)) == NULL || event_add(s->place_ev, &tick) == -1)
		log_warnx("new connections are spread by the kernel alone: "
		    "no timer to choose a worker", "");
}
