/*
 * registry.c - the client-id registry: which connection, on which
 * worker incarnation, holds each client id.
 *
 * MQTT allows one connection per client id; with connections spread
 * over workers, walsvc decides (protocol in worker/connect.c):
 *   - REG_CLAIM from (slot, gen, conn) for id X: granted at once when X
 *     is free, held by the same connection (a repeat), or held by a dead
 *     worker incarnation; otherwise the holder's worker gets REG_KICK,
 *     and the claim is granted when that worker answers REG_RELEASE (or
 *     after REGISTRY_KICK_MS, if it never does).  A claim that arrives
 *     while another one waits for the same id replaces it: the newest
 *     connection wins, the one it displaced is kicked too.
 *     When the registry already holds mqtt.max-connections clients, a
 *     claim for a new id is answered REG_REFUSED (0x97, quota exceeded).
 *   - REG_RELEASE: the connection closed; the id is free or passes to
 *     the claim waiting for it.
 *   - REG_SYNC: after a walsvc restart each worker lists its connected
 *     clients; an id listed that is already held by a live connection
 *     (granted meanwhile to a newer claim) gets the listed one kicked.
 * The registry lives in memory: it describes connections, which do not
 * survive the processes, and is rebuilt from the workers' lists.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ipc_link.h"
#include "log.h"
#include "walsvc.h"

#define REGISTRY_KICK_MS	3000

struct reg_holder {
	uint16_t	slot;
	uint64_t	gen;
	uint64_t	conn;
};

struct reg_entry {
	struct reg_entry	*next;
	struct reg_holder	 holder;
	struct reg_holder	 waiting;	/* conn 0: nobody waits */
	int64_t			 waiting_since;
	uint16_t		 len;
	char			 id[];
};

struct registry {
	struct reg_entry	**buckets;
	size_t			  nbuckets;
	size_t			  count;
	struct event		 *timer;
};

static uint32_t
hash_id(const void *p, size_t len)
{
	const uint8_t	*s = p;
	uint32_t	 h = 2166136261u;

	while (len--)
		h = (h ^ *s++) * 16777619u;
	return h;
}

static struct reg_entry **
find(struct registry *r, const void *id, size_t len)
{
	struct reg_entry	**ep;

	for (ep = &r->buckets[hash_id(id, len) & (r->nbuckets - 1)]; *ep;
	    ep = &(*ep)->next)
		if ((*ep)->len == len && memcmp((*ep)->id, id, len) == 0)
			break;
	return ep;
}

static void
grow(struct registry *r)
{
	struct reg_entry	**nb, *e, *next;
	size_t			  n = r->nbuckets * 2, i, h;

	if ((nb = calloc(n, sizeof(*nb))) == NULL)
		return;		/* longer chains, still correct */
	for (i = 0; i < r->nbuckets; i++)
		for (e = r->buckets[i]; e; e = next) {
			next = e->next;
			h = hash_id(e->id, e->len) & (n - 1);
			e->next = nb[h];
			nb[h] = e;
		}
	free(r->buckets);
	r->buckets = nb;
	r->nbuckets = n;
}

static int
holder_live(struct walsvc *ws, const struct reg_holder *h)
{
	const struct proc_peer	*p;

	p = proc_peer(ws->proc, IPC_ROLE_WORKER, h->slot);
	/* newer than the peers table knows: started, not yet announced */
	return p == NULL || h->gen > p->gen || (p->up && p->gen == h->gen);
}

static void
send_to(struct walsvc *ws, const struct reg_holder *h, uint16_t type,
    const void *body, size_t len)
{
	struct ipc_link	*link;

	if ((link = walsvc_reply_link(ws, IPC_ROLE_WORKER, h->slot,
	    h->gen)) != NULL)
		ipc_link_send(link, type, 0, h->conn, body, len);
}

static void
grant(struct walsvc *ws, const struct reg_holder *h)
{
	uint8_t	 session_present = 0;	/* clean sessions only, for now */

	send_to(ws, h, IPC_REG_GRANTED, &session_present, 1);
}

static void
kick(struct walsvc *ws, const struct reg_entry *e, const struct reg_holder *h)
{
	send_to(ws, h, IPC_REG_KICK, e->id, e->len);
}

static int
same(const struct reg_holder *a, const struct reg_holder *b)
{
	return a->slot == b->slot && a->gen == b->gen && a->conn == b->conn;
}

static void
remove_entry(struct registry *r, struct reg_entry **ep)
{
	struct reg_entry	*e = *ep;

	*ep = e->next;
	free(e);
	r->count--;
}

static struct reg_entry *
add_entry(struct registry *r, const void *id, size_t len,
    const struct reg_holder *h)
{
	struct reg_entry	*e, **ep;

	if (r->count >= r->nbuckets)
		grow(r);
	if ((e = calloc(1, sizeof(*e) + len + 1)) == NULL)
		return NULL;
	e->holder = *h;
	e->len = (uint16_t)len;
	memcpy(e->id, id, len);
	ep = &r->buckets[hash_id(id, len) & (r->nbuckets - 1)];
	e->next = *ep;
	*ep = e;
	r->count++;
	return e;
}

static void
claim(struct walsvc *ws, const struct reg_holder *h, const void *id,
    size_t len)
{
	static struct log_ratelimit	 refused_rl;
	struct registry		*r = ws->registry;
	struct reg_entry	**ep = find(r, id, len), *e = *ep;

	if (e == NULL) {
		/* mqtt.max-connections counts clients over all workers, and
		 * only the registry sees them all */
		if (r->count >= (size_t)config_num(&ws->proc->cfg,
		    OPT_mqtt_max_connections)) {
			uint8_t	 reason = 0x97;	/* quota exceeded */

			send_to(ws, h, IPC_REG_REFUSED, &reason, 1);
			log_limited(&refused_rl, LOG_LEVEL_WARN, "connection "
			    "limit reached; client refused", "clients=%zu "
			    "max=%lld", r->count, (long long)config_num(
			    &ws->proc->cfg, OPT_mqtt_max_connections));
			return;
		}
		if (add_entry(r, id, len, h) == NULL) {
			log_error("registry out of memory; claim dropped", "");
			return;
		}
		grant(ws, h);
		return;
	}
	if (same(&e->holder, h) || !holder_live(ws, &e->holder)) {
		e->holder = *h;
		grant(ws, h);
		return;
	}
	if (same(&e->waiting, h))
		return;		/* a repeat while it waits */
	if (e->waiting.conn != 0)
		kick(ws, e, &e->waiting);	/* the newer claim displaces it */
	e->waiting = *h;
	e->waiting_since = clock_mono_ms();
	kick(ws, e, &e->holder);
	log_info("client id taken over", "client=%.*s from=%u/%llu to=%u",
	    (int)len, (const char *)id, e->holder.slot,
	    (unsigned long long)e->holder.conn, h->slot);
}

/* The holder is gone: the waiting claim, if any, gets the id. */
static void
pass_on(struct walsvc *ws, struct reg_entry **ep)
{
	struct reg_entry	*e = *ep;

	if (e->waiting.conn != 0 && holder_live(ws, &e->waiting)) {
		e->holder = e->waiting;
		memset(&e->waiting, 0, sizeof(e->waiting));
		grant(ws, &e->holder);
	} else
		remove_entry(ws->registry, ep);
}

static void
release(struct walsvc *ws, const struct reg_holder *h, const void *id,
    size_t len)
{
	struct reg_entry	**ep = find(ws->registry, id, len), *e = *ep;

	if (e == NULL)
		return;
	if (same(&e->holder, h))
		pass_on(ws, ep);
	else if (same(&e->waiting, h))
		memset(&e->waiting, 0, sizeof(e->waiting));
}

static void
sync_list(struct walsvc *ws, const struct ipc_batch *batch,
    const struct ipc_record *rec)
{
	struct buf_reader	 rd;
	struct reg_holder	 h;
	struct reg_entry	**ep, *e;
	const uint8_t		*id;
	uint16_t		 len;

	h.slot = batch->sender.slot;
	h.gen = batch->sender.gen;
	buf_reader_init(&rd, rec->body, rec->len);
	while (buf_read_left(&rd) > 0) {
		h.conn = buf_read_u64(&rd);
		len = buf_read_u16(&rd);
		if ((id = buf_read_ptr(&rd, len)) == NULL || h.conn == 0) {
			log_warnx("malformed registry list from worker",
			    "slot=%u", h.slot);
			return;
		}
		ep = find(ws->registry, id, len);
		if ((e = *ep) == NULL)
			add_entry(ws->registry, id, len, &h);
		else if (!same(&e->holder, &h) && holder_live(ws, &e->holder))
			kick(ws, e, &h);	/* a newer claim got it first */
		else
			e->holder = h;
	}
}

void
registry_handle(struct walsvc *ws, const struct ipc_batch *batch,
    const struct ipc_record *rec)
{
	static struct log_ratelimit	 rl;
	struct reg_holder		 h;

	if (batch->sender.role != IPC_ROLE_WORKER) {
		log_limited(&rl, LOG_LEVEL_WARN, "registry message from a "
		    "non-worker dropped", "role=%s",
		    ipc_role_name(batch->sender.role));
		return;
	}
	h.slot = batch->sender.slot;
	h.gen = batch->sender.gen;
	h.conn = rec->corr;
	switch (rec->type) {
	case IPC_REG_CLAIM:
	case IPC_REG_RELEASE:
		if (rec->len == 0 || rec->len > 65535 || h.conn == 0) {
			log_limited(&rl, LOG_LEVEL_WARN, "malformed registry "
			    "message dropped", "type=0x%04x len=%u", rec->type,
			    rec->len);
			return;
		}
		if (rec->type == IPC_REG_CLAIM)
			claim(ws, &h, rec->body, rec->len);
		else
			release(ws, &h, rec->body, rec->len);
		break;
	case IPC_REG_SYNC:
		sync_list(ws, batch, rec);
		break;
	}
}

/* Entries of dead worker incarnations are released. */
void
registry_peers_changed(struct walsvc *ws)
{
	struct registry		*r = ws->registry;
	struct reg_entry	**ep;
	size_t			  i;

	for (i = 0; i < r->nbuckets; i++) {
		ep = &r->buckets[i];
		while (*ep) {
			struct reg_entry *e = *ep;

			if (e->waiting.conn && !holder_live(ws, &e->waiting))
				memset(&e->waiting, 0, sizeof(e->waiting));
			if (!holder_live(ws, &e->holder)) {
				pass_on(ws, ep);
				if (*ep != e)
					continue;	/* removed */
			}
			ep = &e->next;
		}
	}
}

/* A holder that never released: the waiting claim gets the id anyway. */
static void
tick(evutil_socket_t fd, short what, void *arg)
{
	struct walsvc		*ws = arg;
	struct registry		*r = ws->registry;
	struct reg_entry	**ep;
	int64_t			  now = clock_mono_ms();
	size_t			  i;

	for (i = 0; i < r->nbuckets; i++) {
		ep = &r->buckets[i];
		while (*ep) {
			struct reg_entry *e = *ep;

			if (e->waiting.conn &&
			    now - e->waiting_since > REGISTRY_KICK_MS) {
				log_warnx("client id holder did not release; "
				    "taking over anyway", "client=%.*s slot=%u",
				    (int)e->len, e->id, e->holder.slot);
				e->holder = e->waiting;
				memset(&e->waiting, 0, sizeof(e->waiting));
				grant(ws, &e->holder);
			}
			ep = &e->next;
		}
	}
}

int
registry_start(struct walsvc *ws)
{
	struct registry	*r;
	struct timeval	 second = { 1, 0 };

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	r->nbuckets = 1024;
	if ((r->buckets = calloc(r->nbuckets, sizeof(*r->buckets))) == NULL ||
	    (r->timer = event_new(ws->base, -1, EV_PERSIST, tick, ws)) ==
	    NULL || event_add(r->timer, &second) == -1) {
		free(r->buckets);
		free(r);
		return -1;
	}
	ws->registry = r;
	return 0;
}

size_t
registry_count(const struct walsvc *ws)
{
	return ws->registry ? ws->registry->count : 0;
}
