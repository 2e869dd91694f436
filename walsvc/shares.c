/*
 * shares.c - what the workers hear from walsvc about the stored
 * sessions' subscriptions, shared ones ($share/GROUP/FILTER;
 * docs/architecture.md, "Shared subscriptions") above all.  sessions.c
 * keeps the stored members and their queues; this file speaks to the
 * workers:
 *
 *   STORED_SET     a group's number of stored members changed, or a plain
 *                  filter gained its first stored subscriber or lost its
 *                  last: every running worker hears it, so that a
 *                  publisher's worker counts walsvc among the group's
 *                  holders, and knows whether anybody at all wants a
 *                  message (PUBACK 0x10 when nobody does);
 *   STORED_ASK     a worker whose log link started asks for all of them:
 *                  STORED_RESET, then one STORED_SET per filter;
 *   SHARE_PUBLISH  a message walsvc cannot place with a stored member
 *                  (the group has none left) goes to a worker, which
 *                  places it with a clean member; only once the record
 *                  that decided it is shippable, as everything that
 *                  leaves walsvc.
 *
 * Nothing is sent while the log is replayed at start-up: the decisions
 * the replay makes again were acted on by the walsvc that logged them,
 * and every worker asks for the counts when its link to this walsvc
 * starts.  ws->shares exists from serving on; before, this file is
 * silent.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ipc_link.h"
#include "log.h"
#include "topic.h"
#include "walsvc.h"

/* A message for a worker to place, once `lsn` is shippable. */
struct hand_off {
	struct hand_off	*next;
	uint64_t	 lsn;
	struct body	*body;		/* a reference of ours */
	uint16_t	 len;
	uint8_t		 group[];	/* "$share/GROUP/FILTER" */
};

struct shares {
	struct hand_off	 *head, **tail;
	uint64_t	  lost;		/* no worker running, or no memory */
};

int
shares_start(struct walsvc *ws)
{
	struct shares	*sh;

	if ((sh = calloc(1, sizeof(*sh))) == NULL)
		return -1;
	sh->tail = &sh->head;
	ws->shares = sh;
	return 0;
}

void
shares_close(struct walsvc *ws)
{
	struct shares	*sh = ws->shares;
	struct hand_off	*h;

	if (sh == NULL)
		return;
	while ((h = sh->head) != NULL) {
		sh->head = h->next;
		body_unref(ws, h->body);
		free(h);
	}
	free(sh);
	ws->shares = NULL;
}

static int
add_count(struct buf *b, const uint8_t *group, size_t len, uint32_t count)
{
	buf_add_u32(b, count);
	buf_add(b, group, len);
	return buf_failed(b) ? -1 : 0;
}

static void
send_count(struct ipc_link *link, const uint8_t *group, size_t len,
    uint32_t count)
{
	struct buf	*b;
	size_t		 start;

	if ((b = ipc_link_record_begin(link, IPC_STORED_SET, 0, 0, &start)) ==
	    NULL)
		return;
	if (add_count(b, group, len, count) == -1)
		buf_truncate(b, start);
	else
		ipc_link_record_end(link, start);
}

/* The stored subscribers of a filter or group are now `count` (0: none). */
void
stored_announce(struct walsvc *ws, const uint8_t *group, size_t len,
    uint32_t count)
{
	struct ipc_link	*link;
	size_t		 i = 0;

	if (ws->shares == NULL)
		return;
	while ((link = walsvc_next_worker(ws, &i)) != NULL)
		send_count(link, group, len, count);
}

static void
send_filter(const uint8_t *filter, size_t len, uint32_t count, void *arg)
{
	send_count(arg, filter, len, count);
}

/* STORED_ASK: the whole list, to the worker that asked. */
void
stored_ask(struct walsvc *ws, const struct ipc_batch *batch,
    const struct ipc_record *rec)
{
	static struct log_ratelimit	 rl;
	struct ipc_link			*link;

	if (batch->sender.role != IPC_ROLE_WORKER || rec->len != 0) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed share ask dropped",
		    "from=%s/%u len=%u", ipc_role_name(batch->sender.role),
		    batch->sender.slot, rec->len);
		return;
	}
	if ((link = walsvc_reply_link(ws, IPC_ROLE_WORKER, batch->sender.slot,
	    batch->sender.gen)) == NULL)
		return;
	if (ipc_link_send(link, IPC_STORED_RESET, 0, 0, NULL, 0) == -1)
		return;
	sessions_filters(ws, send_filter, link);
}

/*
 * The message of body b is for a clean member of `group`: a worker gets
 * it once `lsn`, the record that decided so, is shippable.
 */
void
shares_hand_off(struct walsvc *ws, uint64_t lsn, struct body *b,
    const uint8_t *group, size_t len)
{
	static struct log_ratelimit	 rl;
	struct shares			*sh = ws->shares;
	struct hand_off			*h;

	if (sh == NULL)
		return;
	if ((h = malloc(sizeof(*h) + len)) == NULL) {
		sh->lost++;
		log_limited(&rl, LOG_LEVEL_ERROR, "out of memory handing a "
		    "shared message to a worker; it is lost", "lsn=%llu "
		    "lost_total=%llu", (unsigned long long)b->lsn,
		    (unsigned long long)sh->lost);
		return;
	}
	h->next = NULL;
	h->lsn = lsn;
	h->body = body_ref(ws, b->lsn);
	h->len = (uint16_t)len;
	memcpy(h->group, group, len);
	*sh->tail = h;
	sh->tail = &h->next;
	if (lsn <= ws->shippable_lsn)
		shares_durable(ws);
}

static int
add_message(struct buf *b, const struct hand_off *h)
{
	buf_add_u8(b, h->body->level);
	buf_add_u8(b, 0);
	buf_add_u16(b, h->len);
	buf_add(b, h->group, h->len);
	buf_add(b, h->body->packet, h->body->len);
	return buf_failed(b) ? -1 : 0;
}

/* The hand-offs whose record is shippable now go, to the first worker. */
void
shares_durable(struct walsvc *ws)
{
	static struct log_ratelimit	 rl;
	struct shares			*sh = ws->shares;
	struct hand_off			*h;
	struct ipc_link			*link;
	struct buf			*b;
	size_t				 i, start;
	const char			*why = NULL;

	if (sh == NULL)
		return;
	while ((h = sh->head) != NULL && h->lsn <= ws->shippable_lsn) {
		i = 0;
		if ((link = walsvc_next_worker(ws, &i)) == NULL)
			why = "no worker runs";	/* nor any clean member */
		else if ((b = ipc_link_record_begin(link, IPC_SHARE_PUBLISH,
		    0, 0, &start)) == NULL || add_message(b, h) == -1) {
			if (b != NULL)
				buf_truncate(b, start);
			why = "out of memory";
		} else if (ipc_link_record_end(link, start) == -1)
			why = "out of memory";
		if (why != NULL) {
			sh->lost++;
			log_limited(&rl, LOG_LEVEL_WARN, "shared message not "
			    "placed: its group has no stored member left",
			    "group=%.*s why=\"%s\" lost_total=%llu",
			    (int)h->len, (const char *)h->group, why,
			    (unsigned long long)sh->lost);
			why = NULL;
		} else
			log_debug("shared message handed to a worker",
			    "group=%.*s lsn=%llu", (int)h->len,
			    (const char *)h->group,
			    (unsigned long long)h->body->lsn);
		if ((sh->head = h->next) == NULL)
			sh->tail = &sh->head;
		body_unref(ws, h->body);
		free(h);
	}
}
