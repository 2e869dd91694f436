/*
 * sessions.c - stored MQTT sessions: their subscriptions, their queues
 * of messages, and serving them to the worker that holds the client.
 *
 * Everything here is derived from the message log, in LSN order, by
 * sessions_apply(): the same code runs when a record is appended and
 * when the log is replayed at start-up, so memory after a restart is
 * what it was before the crash.  walsvc's own decisions (a session
 * opened for a connection, gone offline, expired) are records it appends
 * first (walsvc_append) and then applies like any other.
 *
 *   publish       matched against the stored sessions' subscriptions;
 *                 queued for each with an effective QoS >= 1; queued for
 *                 the stored member a shared group picked (format 4),
 *                 at any QoS; a QoS 2 message from a stored session adds
 *                 its packet id to that session's incoming set
 *   session       open (create or resume: epoch + 1), offline, end (its
 *                 shared messages not delivered go to another member)
 *   subscription  added or removed (only with the current epoch)
 *   ack           messages delivered (PUBACK, PUBCOMP) or received
 *                 (PUBREC) by the client (current epoch); incoming QoS 2
 *                 packet ids released (PUBREL, any epoch: a fact about
 *                 the client)
 *
 * The epoch grows with every connection granted the session; a record
 * from an older one (a dead worker's last batch, a connection taken
 * over) is applied as a no-op.
 *
 * Serving (docs/architecture.md, "Persistent sessions"):
 *   1) a grant is sent only once its record is shippable (durable as
 *      storage.wal-sync defines it): the session's subscriptions
 *      (SESS_SUB), its incoming QoS 2 packet ids (SESS_QOS2), then
 *      REG_GRANTED;
 *   2) the queue follows (SESS_MSG), oldest first, at most `credit`
 *      messages beyond what the client acknowledged, and never a message
 *      whose LSN is not shippable yet; a QoS 2 message whose PUBREC was
 *      recorded goes as "release" (PUBREL only);
 *   3) a connection that ends leaves the session offline; expiry is
 *      counted in wall-clock time from the record that says so.
 *
 * Berkeley DB keeps a copy: one row per session (rewritten when it
 * changes, at the next index commit) and one per queued message.  At
 * start-up they are loaded, the log is replayed from the index's
 * position, and the bodies of the queued messages are read back from
 * the log in one pass.
 */
#include "config.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "adm.h"
#include "hash.h"
#include "ipc_link.h"
#include "log.h"
#include "mqtt.h"
#include "sub.h"
#include "topic.h"
#include "walrec.h"
#include "walsvc.h"

#define SESSION_BUCKETS_MIN	1024
#define ID_SPACE		32767	/* packet ids derived from sequences (the
				   worker keeps 32768 .. 65535 for its own) */
#define CREDIT_MIN		8
#define CREDIT_MAX		4096
#define ROW_FORMAT_1		1	/* without incoming QoS 2 ids */
#define ROW_FORMAT_2		2	/* without the highest sequence sent */
#define ROW_FORMAT		3
#define QOS2_IDS_PER_RECORD	16384

enum entry_state {
	ENTRY_QUEUED = 0,	/* to be delivered */
	ENTRY_RECEIVED = 1,	/* QoS 2, PUBREC recorded: PUBREL due */
	ENTRY_DONE = 2,		/* delivered: gone when it reaches the head */
};

struct entry {
	uint64_t	 seq;
	struct body	*body;		/* NULL once DONE */
	uint8_t		 qos;
	uint8_t		 state;		/* enum entry_state */
	uint8_t		 shipped;	/* sent to the current connection */
	uint8_t		 dup;		/* sent before: DUP when sent again */
	uint8_t		 retain;	/* sent with RETAIN (as published) */
	uint8_t		 live;		/* queued while a connection held the
					   session: its first send is a
					   delivery latency */
	uint8_t		 shared;	/* placed by a shared subscription */
};

/* in a queue row's state byte, with enum entry_state */
#define ROW_RETAIN	0x80
#define ROW_SHARED	0x40

static uint8_t
row_state(const struct entry *e)
{
	return e->state | (e->retain ? ROW_RETAIN : 0) |
	    (e->shared ? ROW_SHARED : 0);
}

struct ssub {
	struct ssub		*next;
	struct sub_options	 options;
	uint16_t		 len;
	uint8_t			 filter[];
};

struct session {
	struct session		*next_sid;	/* hash chains */
	struct session		*next_cid;
	struct session		*next_ready;
	struct session		*next_dirty;
	uint8_t			 ready;		/* on the ready list */
	uint8_t			 dirty;		/* row to rewrite */
	uint8_t			 owned;		/* a connection holds it */
	uint8_t			 granted;	/* ... and has its CONNACK */
	uint16_t		 node;
	uint64_t		 sid;
	uint32_t		 epoch;
	uint32_t		 expiry;	/* seconds */
	int64_t			 offline_since;	/* wall ms; 0: online */
	uint8_t			 level;
	uint64_t		 next_seq;
	uint64_t		 sent_seq;	/* highest sequence ever sent (a
						   lower one was sent, or
						   acknowledged): UINT64_MAX
						   unknown; while a connection
						   holds it, what was shipped */
	uint64_t		 sent_before;	/* sent_seq when it was granted */
	struct ssub		*subs;
	/* the queue: a ring of entries with consecutive sequences */
	struct entry		*q;
	size_t			 qhead, qlen, qcap;
	size_t			 qbytes;
	size_t			 ship_next;	/* offset of the next to send */
	uint64_t		 ship_from;	/* nothing is sent before this
						   LSN is shippable: the end of
						   a session that moved messages
						   here (memory only) */
	uint32_t		 sent;		/* shipped, not done */
	/* QoS 2 packet ids the client published and has not released */
	uint16_t		*q2in;
	uint32_t		 nq2in, q2in_cap;
	/* serving */
	struct reg_holder	 owner;
	uint16_t		 window;
	uint64_t		 match_stamp;
	uint8_t			 match_qos;
	uint8_t			 match_rap;
	uint8_t			 match_skip;
	uint16_t		 idlen;
	char			 client_id[];
};

/* A grant waiting for its record to be shippable. */
struct pending_grant {
	struct pending_grant	*next;
	struct reg_holder	 holder;
	uint64_t		 lsn;		/* shippable from here on */
	uint64_t		 sid;		/* 0: nothing stored */
	uint64_t		 will;		/* the connection's, 0: none */
	uint16_t		 node;
	uint32_t		 epoch;
	uint8_t			 present;
};

/* An offline session's expiry, in a min-heap; stale ones are skipped. */
struct expiry {
	int64_t		 at;		/* wall ms */
	uint64_t	 sid;
	uint16_t	 node;
	uint32_t	 epoch;
};

struct sessions {
	struct session		**by_sid, **by_cid;
	size_t			  nbuckets, count;
	struct sub_table	 *table;	/* subscriptions of stored sessions */
	struct sub_match	  match;
	uint64_t		  match_stamp;
	struct session		 *ready, *dirty;
	struct pending_grant	 *grants, *grants_tail;
	struct expiry		 *heap;
	size_t			  nheap, heapcap;
	struct event		 *timer;
	uint64_t		  queued, dropped, expired_sessions;
	uint64_t		  expired_messages;
	struct session		**matched;
	size_t			  matched_cap;
	struct sub_hit		**members;	/* of a shared group, ordered */
	size_t			  members_cap;
	struct progress		  loading;	/* start-up */
	uint64_t		  loaded;
};

static struct session	*find_sid(struct sessions *, uint16_t, uint64_t);

static unsigned
sid_hash(const struct sessions *ss, uint16_t node, uint64_t sid)
{
	return (unsigned)(hash_mix64(sid ^ ((uint64_t)node << 48)) &
	    (ss->nbuckets - 1));
}

static unsigned
cid_hash(const struct sessions *ss, const void *id, size_t len)
{
	const uint8_t	*p = id;
	uint64_t	 h = 1469598103934665603ull;

	while (len--)
		h = (h ^ *p++) * 1099511628211ull;
	return (unsigned)(hash_mix64(h) & (ss->nbuckets - 1));
}

static struct session *
find_sid(struct sessions *ss, uint16_t node, uint64_t sid)
{
	struct session	*s;

	for (s = ss->by_sid[sid_hash(ss, node, sid)]; s; s = s->next_sid)
		if (s->sid == sid && s->node == node)
			return s;
	return NULL;
}

static struct session *
find_cid(struct sessions *ss, const void *id, size_t len)
{
	struct session	*s;

	for (s = ss->by_cid[cid_hash(ss, id, len)]; s; s = s->next_cid)
		if (s->idlen == len && memcmp(s->client_id, id, len) == 0)
			return s;
	return NULL;
}

static void
rehash(struct sessions *ss)
{
	struct session	**sid, **cid, *s, *next;
	size_t		  n = ss->nbuckets * 2, i, old = ss->nbuckets;

	if ((sid = calloc(n, sizeof(*sid))) == NULL ||
	    (cid = calloc(n, sizeof(*cid))) == NULL) {
		free(sid);
		return;		/* longer chains, still correct */
	}
	ss->nbuckets = n;
	for (i = 0; i < old; i++)
		for (s = ss->by_sid[i]; s; s = next) {
			next = s->next_sid;
			s->next_sid = sid[sid_hash(ss, s->node, s->sid)];
			sid[sid_hash(ss, s->node, s->sid)] = s;
		}
	for (i = 0; i < old; i++)
		for (s = ss->by_cid[i]; s; s = next) {
			next = s->next_cid;
			s->next_cid = cid[cid_hash(ss, s->client_id, s->idlen)];
			cid[cid_hash(ss, s->client_id, s->idlen)] = s;
		}
	free(ss->by_sid);
	free(ss->by_cid);
	ss->by_sid = sid;
	ss->by_cid = cid;
}

/* ---------------------------------------------------------------------
 * Session rows in the index.
 *
 *	u8 format (2), u8 level, u16 client id length, u32 epoch,
 *	u32 expiry, u32 0, u64 offline since (wall ms, 0: online),
 *	u64 next sequence, client id,
 *	u16 subscriptions, each: u8 QoS, u8 flags, u8 retain handling,
 *	    u8 0, u32 identifier, u16 length, filter,
 *	u32 incoming QoS 2 packet ids, each u16 (format 1 rows end before),
 *	u64 the highest sequence ever sent (format 2 rows end before)
 */

static void
mark_dirty(struct sessions *ss, struct session *s)
{
	if (s->dirty)
		return;
	s->dirty = 1;
	s->next_dirty = ss->dirty;
	ss->dirty = s;
}

static void
mark_ready(struct sessions *ss, struct session *s)
{
	if (s->ready || !s->owned)
		return;
	s->ready = 1;
	s->next_ready = ss->ready;
	ss->ready = s;
}

static int
row_encode(const struct session *s, struct buf *b)
{
	const struct ssub	*u;
	uint16_t		 n = 0;
	uint32_t		 i;

	buf_add_u8(b, ROW_FORMAT);
	buf_add_u8(b, s->level);
	buf_add_u16(b, s->idlen);
	buf_add_u32(b, s->epoch);
	buf_add_u32(b, s->expiry);
	buf_add_u32(b, 0);
	buf_add_u64(b, (uint64_t)s->offline_since);
	buf_add_u64(b, s->next_seq);
	buf_add(b, s->client_id, s->idlen);
	for (u = s->subs; u; u = u->next)
		n++;
	buf_add_u16(b, n);
	for (u = s->subs; u; u = u->next) {
		buf_add_u8(b, u->options.qos);
		buf_add_u8(b, walrec_sub_flags(&u->options));
		buf_add_u8(b, u->options.retain_handling);
		buf_add_u8(b, 0);
		buf_add_u32(b, u->options.sub_id);
		buf_add_u16(b, u->len);
		buf_add(b, u->filter, u->len);
	}
	buf_add_u32(b, s->nq2in);
	for (i = 0; i < s->nq2in; i++)
		buf_add_u16(b, s->q2in[i]);
	buf_add_u64(b, s->sent_seq);
	return buf_failed(b) ? -1 : 0;
}

/* Write the rows of the sessions that changed into the open transaction. */
void
sessions_flush(struct walsvc *ws)
{
	struct sessions	*ss = ws->sessions;
	struct session	*s;
	struct buf	 b = BUF_INITIALIZER;

	while ((s = ss->dirty) != NULL) {
		ss->dirty = s->next_dirty;
		s->dirty = 0;
		buf_reset(&b);
		if (row_encode(s, &b) == -1 ||
		    index_session_put(ws->index, s->node, s->sid, b.data,
		    b.len) == -1)
			break;
	}
	buf_free(&b);
}

/* ---------------------------------------------------------------------
 * Creating and destroying sessions.
 */

static struct session *
session_new(struct sessions *ss, uint16_t node, uint64_t sid,
    const void *id, size_t idlen)
{
	struct session	*s;
	unsigned	 h;

	if ((s = calloc(1, sizeof(*s) + idlen + 1)) == NULL)
		return NULL;
	s->node = node;
	s->sid = sid;
	s->idlen = (uint16_t)idlen;
	memcpy(s->client_id, id, idlen);
	s->next_seq = 1;
	h = sid_hash(ss, node, sid);
	s->next_sid = ss->by_sid[h];
	ss->by_sid[h] = s;
	h = cid_hash(ss, id, idlen);
	s->next_cid = ss->by_cid[h];
	ss->by_cid[h] = s;
	if (++ss->count > ss->nbuckets)
		rehash(ss);
	return s;
}

static struct entry *
entry_at(const struct session *s, size_t i)
{
	return &s->q[(s->qhead + i) % s->qcap];
}

/*
 * Into the table and the session's list; a shared group's new count of
 * stored members goes to the workers (shares.c).
 */
static int
sub_install(struct walsvc *ws, struct session *s, const uint8_t *filter,
    size_t len, const struct sub_options *opts)
{
	struct sessions		*ss = ws->sessions;
	struct topic_filter	 tf;
	struct ssub		*u, **up;
	uint32_t		 count;

	if (topic_filter_parse(filter, len, &tf) != TOPIC_OK)
		return -1;
	if (sub_add_local(ss->table, &tf, s, opts, &count) == -1)
		return -1;
	for (up = &s->subs; (u = *up) != NULL; up = &u->next)
		if (u->len == len && memcmp(u->filter, filter, len) == 0) {
			u->options = *opts;
			return 0;
		}
	if ((u = malloc(sizeof(*u) + len)) == NULL) {
		sub_remove_local(ss->table, &tf, s, &count);
		return -1;
	}
	u->options = *opts;
	u->len = (uint16_t)len;
	memcpy(u->filter, filter, len);
	u->next = NULL;
	*up = u;	/* at the end: the client's order */
	/* a group's every change counts, a plain filter's first */
	if (tf.share != NULL || count == 1)
		stored_announce(ws, filter, len, count);
	return 0;
}

/* Out of the table (the session keeps the filter in its list). */
static void
table_remove(struct walsvc *ws, struct session *s, const uint8_t *filter,
    size_t len)
{
	struct topic_filter	 tf;
	uint32_t		 count;

	if (topic_filter_parse(filter, len, &tf) == TOPIC_OK &&
	    sub_remove_local(ws->sessions->table, &tf, s, &count) == 0 &&
	    (tf.share != NULL || count == 0))
		stored_announce(ws, filter, len, count);
}

static void
sub_uninstall(struct walsvc *ws, struct session *s, const uint8_t *filter,
    size_t len)
{
	struct ssub	*u, **up;

	table_remove(ws, s, filter, len);
	for (up = &s->subs; (u = *up) != NULL; up = &u->next)
		if (u->len == len && memcmp(u->filter, filter, len) == 0) {
			*up = u->next;
			free(u);
			return;
		}
}

static void
subs_free(struct session *s)
{
	struct ssub	*u;

	while ((u = s->subs) != NULL) {
		s->subs = u->next;
		free(u);
	}
}

static void
unlink_lists(struct sessions *ss, struct session *s)
{
	struct session	**sp;

	for (sp = &ss->by_sid[sid_hash(ss, s->node, s->sid)]; *sp;
	    sp = &(*sp)->next_sid)
		if (*sp == s) {
			*sp = s->next_sid;
			break;
		}
	for (sp = &ss->by_cid[cid_hash(ss, s->client_id, s->idlen)]; *sp;
	    sp = &(*sp)->next_cid)
		if (*sp == s) {
			*sp = s->next_cid;
			break;
		}
	if (s->ready)
		for (sp = &ss->ready; *sp; sp = &(*sp)->next_ready)
			if (*sp == s) {
				*sp = s->next_ready;
				break;
			}
	if (s->dirty)
		for (sp = &ss->dirty; *sp; sp = &(*sp)->next_dirty)
			if (*sp == s) {
				*sp = s->next_dirty;
				break;
			}
}

static void	shares_move(struct walsvc *, struct session *, uint64_t);

/*
 * The session and everything it holds go, in memory and in the index,
 * as the record at lsn says.  It leaves its shared groups first, so that
 * its shared messages not delivered go to one of the other members.
 */
static void
session_destroy(struct walsvc *ws, struct session *s, uint64_t lsn)
{
	struct sessions	*ss = ws->sessions;
	struct ssub	*u;
	struct entry	*e;
	size_t		 i;

	for (u = s->subs; u != NULL; u = u->next)
		table_remove(ws, s, u->filter, u->len);
	shares_move(ws, s, lsn);
	subs_free(s);
	for (i = 0; i < s->qlen; i++) {
		e = entry_at(s, i);
		if (e->state != ENTRY_DONE) {
			index_queue_del(ws->index, s->node, s->sid, e->seq);
			body_unref(ws, e->body);
		}
	}
	index_session_del(ws->index, s->node, s->sid);
	unlink_lists(ss, s);
	ss->count--;
	free(s->q2in);
	free(s->q);
	free(s);
}

/* ---------------------------------------------------------------------
 * Expiry: a min-heap of deadlines of offline sessions.
 */

static void
heap_swap(struct expiry *a, struct expiry *b)
{
	struct expiry	 t = *a;

	*a = *b;
	*b = t;
}

static void
expiry_push(struct sessions *ss, const struct session *s)
{
	struct expiry	*h;
	size_t		 i, cap;

	if (s->expiry == WALREC_EXPIRY_NEVER || s->offline_since == 0)
		return;
	if (ss->nheap == ss->heapcap) {
		cap = ss->heapcap ? ss->heapcap * 2 : 64;
		if ((h = realloc(ss->heap, cap * sizeof(*h))) == NULL) {
			log_error("out of memory arming a session expiry; the "
			    "session expires at the next restart", "");
			return;
		}
		ss->heap = h;
		ss->heapcap = cap;
	}
	i = ss->nheap++;
	ss->heap[i].at = s->offline_since + (int64_t)s->expiry * 1000;
	ss->heap[i].sid = s->sid;
	ss->heap[i].node = s->node;
	ss->heap[i].epoch = s->epoch;
	while (i > 0 && ss->heap[(i - 1) / 2].at > ss->heap[i].at) {
		heap_swap(&ss->heap[(i - 1) / 2], &ss->heap[i]);
		i = (i - 1) / 2;
	}
}

static void
expiry_pop(struct sessions *ss)
{
	size_t	 i = 0, l, r, m;

	ss->heap[0] = ss->heap[--ss->nheap];
	for (;;) {
		l = 2 * i + 1;
		r = l + 1;
		m = i;
		if (l < ss->nheap && ss->heap[l].at < ss->heap[m].at)
			m = l;
		if (r < ss->nheap && ss->heap[r].at < ss->heap[m].at)
			m = r;
		if (m == i)
			break;
		heap_swap(&ss->heap[i], &ss->heap[m]);
		i = m;
	}
}

/* ---------------------------------------------------------------------
 * Applying records.
 */

/* A new connection: everything not delivered is to be sent again. */
static void
entries_reset(struct session *s)
{
	size_t		 i;

	for (i = 0; i < s->qlen; i++)
		entry_at(s, i)->shipped = 0;
	s->sent = 0;
	s->ship_next = 0;
}

static int
q2in_find(const struct session *s, uint16_t id)
{
	uint32_t	 i;

	for (i = 0; i < s->nq2in; i++)
		if (s->q2in[i] == id)
			return (int)i;
	return -1;
}

static int
q2in_add(struct session *s, uint16_t id)
{
	uint16_t	*q;
	uint32_t	 cap;

	if (q2in_find(s, id) >= 0)
		return 0;
	if (s->nq2in == s->q2in_cap) {
		cap = s->q2in_cap ? s->q2in_cap * 2 : 8;
		if ((q = realloc(s->q2in, cap * sizeof(*q))) == NULL)
			return -1;
		s->q2in = q;
		s->q2in_cap = cap;
	}
	s->q2in[s->nq2in++] = id;
	return 0;
}

static void
q2in_remove(struct session *s, uint16_t id)
{
	int	 i = q2in_find(s, id);

	if (i >= 0)
		s->q2in[i] = s->q2in[--s->nq2in];
}

static void
apply_session(struct walsvc *ws, const struct wal_record *rec)
{
	static struct log_ratelimit	 rl;
	struct sessions			*ss = ws->sessions;
	struct walrec_session		 r;
	struct session			*s;

	if (walrec_session_decode(rec->payload, rec->length, &r) == -1) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed session record "
		    "ignored", "lsn=%llu", (unsigned long long)rec->lsn);
		return;
	}
	switch (r.op) {
	case WALREC_SESSION_OPEN:
		if (r.sid == 0) {
			/* a new session, named by this record */
			if ((s = find_cid(ss, r.client_id, r.idlen)) != NULL) {
				log_warnx("session created over a stored one; "
				    "the old one is dropped", "client=%.*s",
				    (int)r.idlen, (const char *)r.client_id);
				session_destroy(ws, s, rec->lsn);
			}
			if ((s = session_new(ss, r.node, rec->lsn, r.client_id,
			    r.idlen)) == NULL) {
				log_error("out of memory creating a session",
				    "client=%.*s", (int)r.idlen,
				    (const char *)r.client_id);
				return;
			}
		} else if ((s = find_sid(ss, r.node, r.sid)) == NULL) {
			log_limited(&rl, LOG_LEVEL_WARN, "resume of an unknown "
			    "session ignored", "sid=%llu lsn=%llu",
			    (unsigned long long)r.sid,
			    (unsigned long long)rec->lsn);
			return;
		}
		s->epoch = r.epoch;
		s->expiry = r.expiry;
		s->level = r.level;
		s->offline_since = 0;
		entries_reset(s);
		mark_dirty(ss, s);
		break;
	case WALREC_SESSION_OFFLINE:
		if ((s = find_sid(ss, r.node, r.sid)) == NULL ||
		    s->epoch != r.epoch)
			return;
		s->offline_since = r.time > 0 ? r.time : 1;
		s->expiry = r.expiry;
		s->owned = 0;
		s->granted = 0;
		entries_reset(s);
		expiry_push(ss, s);
		mark_dirty(ss, s);
		break;
	case WALREC_SESSION_END:
		if ((s = find_sid(ss, r.node, r.sid)) == NULL)
			return;
		log_info("session ended", "client=%.*s sid=%llu why=%s",
		    (int)s->idlen, s->client_id, (unsigned long long)s->sid,
		    r.why == WALREC_END_EXPIRED ? "expired" :
		    r.why == WALREC_END_CLEAN_START ? "clean-start" :
		    r.why == WALREC_END_DELETED ? "deleted" : "disconnect");
		session_destroy(ws, s, rec->lsn);
		break;
	}
}

static void
apply_subscription(struct walsvc *ws, const struct wal_record *rec)
{
	static struct log_ratelimit	 rl;
	struct sessions			*ss = ws->sessions;
	struct walrec_subscription	 r;
	struct session			*s;

	if (walrec_subscription_decode(rec->payload, rec->length, &r) == -1) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed subscription record "
		    "ignored", "lsn=%llu", (unsigned long long)rec->lsn);
		return;
	}
	if ((s = find_sid(ss, r.node, r.sid)) == NULL || s->epoch != r.epoch)
		return;		/* a connection that no longer holds it */
	if (r.op == WALREC_SUB_ADD) {
		if (sub_install(ws, s, r.filter, r.len, &r.options) == -1)
			log_limited(&rl, LOG_LEVEL_ERROR, "cannot keep a "
			    "subscription (out of memory or bad filter)",
			    "client=%.*s", (int)s->idlen, s->client_id);
	} else
		sub_uninstall(ws, s, r.filter, r.len);
	mark_dirty(ss, s);
}

/* Remove acknowledged entries from the head of the queue. */
static void
queue_trim(struct sessions *ss, struct session *s)
{
	struct entry	*e;

	while (s->qlen > 0 && (e = entry_at(s, 0))->state == ENTRY_DONE) {
		s->qhead = (s->qhead + 1) % s->qcap;
		s->qlen--;
		if (s->ship_next > 0)
			s->ship_next--;
	}
	if (s->qlen == 0)
		s->qhead = 0;
}

static void
apply_ack(struct walsvc *ws, const struct wal_record *rec)
{
	static struct log_ratelimit	 rl;
	struct sessions			*ss = ws->sessions;
	struct walrec_ack		 r;
	struct session			*s;
	struct entry			*e;
	uint64_t			 seq, first;
	uint16_t			 i;
	uint8_t				 state;

	if (walrec_ack_decode(rec->payload, rec->length, &r) == -1) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed ack record ignored",
		    "lsn=%llu", (unsigned long long)rec->lsn);
		return;
	}
	if ((s = find_sid(ss, r.node, r.sid)) == NULL)
		return;
	first = s->qlen ? entry_at(s, 0)->seq : 0;
	for (i = 0; i < r.count; i++) {
		walrec_ack_entry(&r, i, &seq, &state);
		if (state == WALREC_ACK_RELEASED) {
			/* the client's PUBREL: true whoever heard it */
			q2in_remove(s, (uint16_t)seq);
			mark_dirty(ss, s);
			continue;
		}
		if (s->epoch != r.epoch || seq < first || s->qlen == 0 ||
		    seq - first >= s->qlen)
			continue;
		e = entry_at(s, (size_t)(seq - first));
		if (e->state == ENTRY_DONE)
			continue;
		if (state == WALREC_ACK_RECEIVED) {
			if (e->qos == 2 && e->state == ENTRY_QUEUED) {
				e->state = ENTRY_RECEIVED;
				index_queue_put(ws->index, s->node, s->sid,
				    e->seq, e->body->lsn, e->qos,
				    row_state(e));
			}
			continue;
		}
		if (state != WALREC_ACK_DONE)
			continue;
		if (e->shipped)
			s->sent--;
		e->state = ENTRY_DONE;
		s->qbytes -= e->body->len;
		index_queue_del(ws->index, s->node, s->sid, e->seq);
		body_unref(ws, e->body);
		e->body = NULL;
	}
	queue_trim(ss, s);
	mark_ready(ss, s);
}

static int
queue_push(struct session *s, uint64_t seq, struct body *b, uint8_t qos)
{
	struct entry	*q;
	size_t		 cap, i;

	if (s->qlen == s->qcap) {
		cap = s->qcap ? s->qcap * 2 : 16;
		if ((q = malloc(cap * sizeof(*q))) == NULL)
			return -1;
		for (i = 0; i < s->qlen; i++)
			q[i] = *entry_at(s, i);
		free(s->q);
		s->q = q;
		s->qcap = cap;
		s->qhead = 0;
	}
	q = entry_at(s, s->qlen);
	memset(q, 0, sizeof(*q));
	q->seq = seq;
	q->body = b;
	q->qos = qos;
	if (b == NULL)
		q->state = ENTRY_DONE;
	s->qlen++;
	if (s->next_seq <= seq)
		s->next_seq = seq + 1;
	return 0;
}

static void
drop_for(struct walsvc *ws, struct session *s, const char *why)
{
	static struct log_ratelimit	 rl;

	ws->sessions->dropped++;
	log_limited(&rl, LOG_LEVEL_WARN, "message not queued for a session",
	    "client=%.*s why=\"%s\" queued=%zu dropped_total=%llu",
	    (int)s->idlen, s->client_id, why, s->qlen,
	    (unsigned long long)ws->sessions->dropped);
}

/* Queue message b (NULL: there was no memory for it) for session s. */
static void
enqueue(struct walsvc *ws, struct session *s, struct body *b, uint8_t qos,
    uint8_t retain, uint8_t shared)
{
	struct sessions		*ss = ws->sessions;
	const struct config	*cfg = &ws->proc->cfg;
	struct entry		*e;
	uint64_t		 seq;

	if (b == NULL) {
		drop_for(ws, s, "out of memory");
		return;
	}
	if ((int64_t)s->qlen >= config_num(cfg, OPT_mqtt_max_queued_messages)) {
		drop_for(ws, s, "mqtt.max-queued-messages reached");
		return;
	}
	if ((int64_t)(s->qbytes + b->len) > config_num(cfg,
	    OPT_mqtt_max_queued_bytes)) {
		drop_for(ws, s, "mqtt.max-queued-bytes reached");
		return;
	}
	seq = s->next_seq;
	if (queue_push(s, seq, body_ref(ws, b->lsn), qos) == -1) {
		body_unref(ws, b);
		drop_for(ws, s, "out of memory");
		return;
	}
	s->qbytes += b->len;
	ss->queued++;
	e = entry_at(s, s->qlen - 1);
	e->retain = retain;
	e->shared = shared;
	e->live = s->owned;
	index_queue_put(ws->index, s->node, s->sid, seq, b->lsn, qos,
	    row_state(e));
	mark_ready(ss, s);
}

/*
 * The message of the publish record being applied, with a reference
 * held in *held, taken once for all the queues it goes to; NULL when
 * there is no memory for it.
 */
static struct body *
record_body(struct walsvc *ws, const struct wal_record *rec,
    const struct walrec_publish *p, struct body **held)
{
	if (*held == NULL && (*held = body_ref(ws, rec->lsn)) != NULL &&
	    body_fill(ws, *held, p) == -1) {
		body_unref(ws, *held);
		*held = NULL;
	}
	return *held;
}

/*
 * A message is queued once per session, at the highest QoS of that
 * session's matching plain subscriptions (capped by the message's),
 * unless that is 0 (the worker delivers those directly to an online
 * client) or every match is a no-local filter of the session that
 * published it.  Shared groups are not matched here (sub_match() keeps
 * them apart): they queue a message only through a pick.
 */
static void
queue_plain(struct walsvc *ws, const struct wal_record *rec,
    const struct walrec_publish *p, const struct mqtt_publish *m,
    struct body **held)
{
	static struct log_ratelimit	 rl;
	struct sessions			*ss = ws->sessions;
	struct session			*s, **grown;
	size_t				 i, n = 0, cap;
	uint64_t			 stamp;
	uint8_t				 qos;
	int				 queue0;

	queue0 = config_num(&ws->proc->cfg, OPT_mqtt_queue_qos0) != 0;
	if (sub_local_count(ss->table) == 0 || (m->qos == 0 && !queue0) ||
	    m->topic.len == 0)
		return;
	if (sub_match(ss->table, m->topic.data, m->topic.len,
	    &ss->match) == -1) {
		log_limited(&rl, LOG_LEVEL_ERROR, "out of memory matching stored "
		    "sessions; message not queued", "lsn=%llu",
		    (unsigned long long)rec->lsn);
		return;
	}
	stamp = ++ss->match_stamp;
	for (i = 0; i < ss->match.nhits; i++) {
		s = ss->match.hits[i].owner;
		if (ss->match.hits[i].options.no_local && p->sid == s->sid &&
		    p->node == s->node)
			continue;
		qos = ss->match.hits[i].options.qos;
		if (s->match_stamp != stamp) {
			s->match_stamp = stamp;
			s->match_qos = qos;
			s->match_rap = 0;
			if (n == ss->matched_cap) {
				cap = n ? n * 2 : 64;
				if ((grown = realloc(ss->matched,
				    cap * sizeof(*grown))) == NULL)
					continue;
				ss->matched = grown;
				ss->matched_cap = cap;
			}
			ss->matched[n++] = s;
		} else if (qos > s->match_qos)
			s->match_qos = qos;
		if (ss->match.hits[i].options.retain_as_published)
			s->match_rap = 1;
	}
	for (i = 0; i < n; i++) {
		s = ss->matched[i];
		qos = s->match_qos < m->qos ? s->match_qos : m->qos;
		/* QoS 0 only for a session away (mqtt.queue-qos0): its
		 * worker delivers it to one that is online */
		if (qos > 0 || (queue0 && s->offline_since != 0))
			enqueue(ws, s, record_body(ws, rec, p, held), qos,
			    s->match_rap && m->retain, 0);
	}
}

static int
member_cmp(const void *a, const void *b)
{
	const struct session	*x = (*(struct sub_hit *const *)a)->owner;
	const struct session	*y = (*(struct sub_hit *const *)b)->owner;

	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return x->sid < y->sid ? -1 : x->sid > y->sid;
}

/*
 * Group g's stored member k mod n (of its n, ordered by node and session
 * id: the order is a function of the log, so a replay chooses the same
 * one) gets message b, at the lower of the message's QoS and its
 * subscription's, QoS 0 included: an online member's worker writes
 * that off once sent.  The record at `decided` chose so: the message
 * waits for it to be shippable.  Returns -1 when the group has no
 * stored member.
 */
static int
place_shared(struct walsvc *ws, const struct sub_group *g, uint64_t k,
    struct body *b, const struct mqtt_publish *m, uint64_t decided)
{
	struct sessions	*ss = ws->sessions;
	struct session	*s;
	struct sub_hit	**grown, *hit;
	size_t		 i, n = g != NULL ? sub_group_local_count(g) : 0;

	if (n == 0)
		return -1;
	if (n > ss->members_cap) {
		if ((grown = reallocarray(ss->members, n,
		    sizeof(*grown))) == NULL) {
			/* no member can be told from another: dropped */
			drop_for(ws, sub_group_local(g, 0)->owner,
			    "out of memory ordering a shared group");
			return 0;
		}
		ss->members = grown;
		ss->members_cap = n;
	}
	for (i = 0; i < n; i++)
		ss->members[i] = sub_group_local(g, i);
	qsort(ss->members, n, sizeof(*ss->members), member_cmp);
	hit = ss->members[k % n];
	s = hit->owner;
	if (decided > s->ship_from)
		s->ship_from = decided;
	enqueue(ws, s, b, hit->options.qos < m->qos ? hit->options.qos :
	    m->qos, hit->options.retain_as_published && m->retain, 1);
	return 0;
}

/*
 * Format 4: each shared group that picked one of walsvc's members names
 * itself and k.  A group left without stored members since the worker
 * picked goes to a worker, to place with a clean member.
 */
static void
queue_picks(struct walsvc *ws, const struct wal_record *rec,
    const struct walrec_publish *p, const struct mqtt_publish *m,
    struct body **held)
{
	static struct log_ratelimit	 rl;
	struct buf_reader		 rd;
	struct topic_filter		 tf;
	struct body			*b;
	const uint8_t			*group;
	size_t				 len;
	uint32_t			 k;

	if ((b = record_body(ws, rec, p, held)) == NULL) {
		ws->sessions->dropped += p->npicks;
		log_limited(&rl, LOG_LEVEL_ERROR, "out of memory placing a "
		    "shared message", "lsn=%llu", (unsigned long long)rec->lsn);
		return;
	}
	/* walrec_publish_decode() checked the list */
	buf_reader_init(&rd, p->picks, p->picks_len);
	while (walrec_pick_next(&rd, &k, &group, &len) == 1) {
		if (topic_filter_parse(group, len, &tf) != TOPIC_OK ||
		    tf.share == NULL) {
			log_limited(&rl, LOG_LEVEL_WARN, "shared pick of a "
			    "filter that is not shared ignored", "lsn=%llu",
			    (unsigned long long)rec->lsn);
			continue;
		}
		if (place_shared(ws, sub_group_find(ws->sessions->table, &tf),
		    k, b, m, rec->lsn) == -1)
			shares_hand_off(ws, rec->lsn, b, group, len);
	}
}

/*
 * A stored session ends (session_destroy(), after it left its groups):
 * each of its shared messages whose delivery is not complete goes to
 * another stored member of the first of its groups, in the client's
 * order, that matches the topic and has one: member (the entry's
 * sequence mod n), as place_shared() orders them, so a replay does the
 * same (MQTT-4.8.2-4, -5).  Complete are those delivered and those the
 * client refused (MQTT-4.8.2-6: its worker logs them delivered); a QoS 2
 * message whose PUBREC was recorded stays, and goes with the session.
 * With no stored member left, a worker places it with a clean one; one
 * that none of the session's groups matches any more (it left the group
 * that placed it) goes with the session.
 */
static void
shares_move(struct walsvc *ws, struct session *s, uint64_t lsn)
{
	struct sessions		*ss = ws->sessions;
	struct topic_filter	 tf;
	struct mqtt_packet	 pkt;
	const struct ssub	*u, *first;
	struct entry		*e;
	uint64_t		 from = UINT64_MAX, to = 0;
	size_t			 i;

	/* replaying, bodies from the index have no bytes yet: the topic
	 * decides, so those are read now */
	for (i = 0; i < s->qlen; i++) {
		e = entry_at(s, i);
		if (e->shared && e->state == ENTRY_QUEUED &&
		    e->body->packet == NULL) {
			from = e->body->loc < from ? e->body->loc : from;
			to = e->body->loc > to ? e->body->loc : to;
		}
	}
	if (from != UINT64_MAX && bodies_read(ws, from, to) == -1)
		log_error("cannot read the shared messages of an ended session "
		    "from the log; they are lost", "client=%.*s",
		    (int)s->idlen, s->client_id);
	for (i = 0; i < s->qlen; i++) {
		e = entry_at(s, i);
		/* a QoS 2 message sent to the member goes to no other
		 * (MQTT-4.8.2-5) */
		if (!e->shared || e->state != ENTRY_QUEUED ||
		    (e->qos == 2 && (e->dup || e->seq <= s->sent_seq)) ||
		    e->body->packet == NULL ||
		    mqtt_decode_stored_publish(e->body->packet, e->body->len,
		    e->body->level, &pkt) == -1)
			continue;
		first = NULL;
		for (u = s->subs; u != NULL; u = u->next) {
			if (topic_filter_parse(u->filter, u->len, &tf) !=
			    TOPIC_OK || tf.share == NULL ||
			    !topic_match(tf.filter, tf.filter_len,
			    pkt.publish.topic.data, pkt.publish.topic.len))
				continue;
			if (first == NULL)
				first = u;
			if (place_shared(ws, sub_group_find(ss->table, &tf),
			    e->seq, e->body, &pkt.publish, lsn) == 0)
				break;
		}
		if (u == NULL && first != NULL)
			shares_hand_off(ws, lsn, e->body, first->filter,
			    first->len);
	}
}

/*
 * Most records concern no stored session: not a will, not retained,
 * not a stored session's QoS 2 message, no shared pick, and nothing to
 * match (or QoS 0 that is not queued).  The fixed header says so without
 * decoding the packet, which under load is much of walsvc's work.
 */
static int
concerns_no_session(struct walsvc *ws, const struct walrec_publish *p)
{
	uint8_t	 qos = (p->packet[0] >> 1) & 3;

	return p->will == 0 && (p->packet[0] & 1) == 0 && (qos != 2 ||
	    p->sid == 0) && p->npicks == 0 &&
	    (sub_local_count(ws->sessions->table) == 0 || (qos == 0 &&
	    !config_num(&ws->proc->cfg, OPT_mqtt_queue_qos0)));
}

static void
apply_publish(struct walsvc *ws, const struct wal_record *rec)
{
	static struct log_ratelimit	 rl;
	struct sessions			*ss = ws->sessions;
	struct walrec_publish		 p;
	struct mqtt_packet		 pkt;
	struct session			*s;
	struct body			*held = NULL;

	if (walrec_publish_decode(rec->payload, rec->length, &p) == -1 ||
	    p.len < 2) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed publish record not "
		    "queued", "lsn=%llu", (unsigned long long)rec->lsn);
		return;
	}
	if (concerns_no_session(ws, &p))
		return;
	if (mqtt_decode_stored_publish(p.packet, p.len, p.level, &pkt) == -1) {
		log_limited(&rl, LOG_LEVEL_WARN, "malformed publish record not "
		    "queued", "lsn=%llu", (unsigned long long)rec->lsn);
		return;
	}
	if (p.will != 0)
		wills_apply_published(ws, p.will);
	/* received from a stored session: its id is taken until released
	 * (a will has none) */
	if (pkt.publish.qos == 2 && p.sid != 0 && p.will == 0 &&
	    (s = find_sid(ss, p.node, p.sid)) != NULL) {
		if (q2in_add(s, p.packet_id) == -1)
			log_limited(&rl, LOG_LEVEL_ERROR, "out of memory keeping "
			    "a QoS 2 packet id", "client=%.*s", (int)s->idlen,
			    s->client_id);
		mark_dirty(ss, s);
	}
	/* a worker's record for its picks alone: the message was retained
	 * and matched, if at all, by its publisher's record */
	if (pkt.publish.retain && pkt.publish.topic.len > 0 && !p.picks_only &&
	    config_num(&ws->proc->cfg, OPT_mqtt_retain_available))
		retained_apply(ws, rec, &p, &pkt.publish);
	if (!p.picks_only)
		queue_plain(ws, rec, &p, &pkt.publish, &held);
	if (p.npicks > 0)
		queue_picks(ws, rec, &p, &pkt.publish, &held);
	if (held != NULL)
		body_unref(ws, held);
}

void
sessions_apply(struct walsvc *ws, const struct wal_record *rec)
{
	switch (rec->type) {
	case WAL_TYPE_PUBLISH:
		apply_publish(ws, rec);
		break;
	case WAL_TYPE_SESSION:
		apply_session(ws, rec);
		break;
	case WAL_TYPE_SUBSCRIPTION:
		apply_subscription(ws, rec);
		break;
	case WAL_TYPE_ACK:
		apply_ack(ws, rec);
		break;
	case WAL_TYPE_COPY:
		bodies_apply_copy(ws, rec);
		break;
	case WAL_TYPE_WILL:
		wills_apply(ws, rec);
		break;
	}
}

/* ---------------------------------------------------------------------
 * Serving: grants and the queue, once shippable.
 */

static struct ipc_link *
owner_link(struct walsvc *ws, const struct reg_holder *h)
{
	return walsvc_reply_link(ws, IPC_ROLE_WORKER, h->slot, h->gen);
}

static uint32_t
credit(const struct session *s)
{
	uint32_t	 c = 2u * s->window;

	return c < CREDIT_MIN ? CREDIT_MIN : c > CREDIT_MAX ? CREDIT_MAX : c;
}

/*
 * Messages whose Message Expiry Interval ran out before they were ever
 * sent are not (MQTT-3.3.2-5): walsvc writes them off as delivered, a
 * decision like any other, in one ack record.
 */
static void
expire(struct walsvc *ws, struct session *s, struct buf *acks, uint32_t n)
{
	static struct log_ratelimit	 rl;

	if (n == 0)
		return;
	if (walrec_ack_end(acks) == 0 &&
	    walsvc_append(ws, WAL_TYPE_ACK, acks->data, acks->len) != 0) {
		ws->sessions->expired_messages += n;
		log_limited(&rl, LOG_LEVEL_INFO, "expired messages not sent",
		    "client=%.*s expired_total=%llu", (int)s->idlen,
		    s->client_id,
		    (unsigned long long)ws->sessions->expired_messages);
	}
}

/* Send what the connection may have of the queue now. */
static void
ship(struct walsvc *ws, struct session *s)
{
	struct ipc_link	*link;
	struct entry	*e;
	struct buf	*b, acks = BUF_INITIALIZER;
	uint64_t	 first;
	uint32_t	 left, nacks = 0;
	size_t		 start;
	int64_t		 now = clock_wall_ms();

	if (!s->owned || !s->granted || s->qlen == 0)
		return;
	if ((link = owner_link(ws, &s->owner)) == NULL)
		return;
	first = entry_at(s, 0)->seq;
	while (s->ship_next < s->qlen && s->sent < credit(s)) {
		e = entry_at(s, s->ship_next);
		if (e->state == ENTRY_DONE || e->shipped) {
			s->ship_next++;
			continue;
		}
		if (e->body->lsn > ws->shippable_lsn ||
		    s->ship_from > ws->shippable_lsn ||
		    e->body->packet == NULL || e->seq - first >= ID_SPACE)
			break;
		if (msg_expiry_left(e->body->expiry, e->body->received, now,
		    &left) == -1) {
			/* one whose delivery began is sent again, with the
			 * least interval there is */
			left = 1;
			if (!e->dup && e->state == ENTRY_QUEUED) {
				if (nacks == WALREC_ACK_MAX)
					break;	/* the rest at the next pass */
				if (nacks++ == 0)
					walrec_ack_begin(&acks, s->node,
					    s->sid, s->epoch);
				walrec_ack_add(&acks, e->seq, WALREC_ACK_DONE);
				s->ship_next++;
				continue;
			}
		}
		if ((b = ipc_link_record_begin(link, IPC_SESS_MSG, e->seq,
		    s->owner.conn, &start)) == NULL)
			break;
		buf_add_u16(b, s->node);
		buf_add_u16(b, 0);
		buf_add_u32(b, s->epoch);
		buf_add_u64(b, s->sid);
		buf_add_u8(b, e->qos);
		buf_add_u8(b, (e->dup ? IPC_SESS_MSG_DUP : 0) |
		    (e->state == ENTRY_RECEIVED ? IPC_SESS_MSG_RELEASE : 0) |
		    (e->retain ? IPC_SESS_MSG_RETAIN : 0) |
		    (e->shared ? IPC_SESS_MSG_SHARED : 0));
		buf_add_u8(b, e->body->level);
		buf_add_u8(b, 0);
		buf_add_u32(b, left);
		buf_add_u64(b, e->live && !e->dup ? e->body->received_us : 0);
		buf_add(b, e->body->packet, e->body->len);
		if (buf_failed(b)) {
			buf_truncate(b, start);
			break;
		}
		ipc_link_record_end(link, start);
		e->shipped = 1;
		e->dup = 1;
		if (s->sent_seq == UINT64_MAX || e->seq > s->sent_seq) {
			s->sent_seq = e->seq;
			mark_dirty(ws->sessions, s);
		}
		s->sent++;
		s->ship_next++;
	}
	expire(ws, s, &acks, nacks);
	buf_free(&acks);
}

static void
send_grant(struct walsvc *ws, const struct reg_holder *h, uint8_t present,
    const struct session *s, uint64_t will)
{
	struct ipc_link		*link;
	const struct ssub	*u;
	struct buf		*b;
	size_t			 start;
	uint32_t		 i, n, k;
	uint8_t			 body[IPC_GRANTED_SIZE];

	if ((link = owner_link(ws, h)) == NULL)
		return;
	for (u = s ? s->subs : NULL; u; u = u->next) {
		if ((b = ipc_link_record_begin(link, IPC_SESS_SUB, 0, h->conn,
		    &start)) == NULL)
			return;
		buf_add_u8(b, u->options.qos);
		buf_add_u8(b, walrec_sub_flags(&u->options));
		buf_add_u8(b, u->options.retain_handling);
		buf_add_u8(b, 0);
		buf_add_u32(b, u->options.sub_id);
		buf_add(b, u->filter, u->len);
		if (buf_failed(b)) {
			buf_truncate(b, start);
			return;
		}
		ipc_link_record_end(link, start);
	}
	for (i = 0; s && i < s->nq2in; i += n) {
		n = s->nq2in - i < QOS2_IDS_PER_RECORD ? s->nq2in - i :
		    QOS2_IDS_PER_RECORD;
		if ((b = ipc_link_record_begin(link, IPC_SESS_QOS2, 0, h->conn,
		    &start)) == NULL)
			return;
		for (k = 0; k < n; k++)
			buf_add_u16(b, s->q2in[i + k]);
		if (buf_failed(b)) {
			buf_truncate(b, start);
			return;
		}
		ipc_link_record_end(link, start);
	}
	memset(body, 0, sizeof(body));
	body[0] = present;
	if (s) {
		buf_store_u16(body + 2, s->node);
		buf_store_u32(body + 4, s->epoch);
		buf_store_u64(body + 8, s->sid);
	}
	buf_store_u64(body + 16, will);
	ipc_link_send(link, IPC_REG_GRANTED, 0, h->conn, body, sizeof(body));
}

static void
grants_run(struct walsvc *ws)
{
	struct sessions		*ss = ws->sessions;
	struct pending_grant	*g;
	struct session		*s;

	while ((g = ss->grants) != NULL && g->lsn <= ws->shippable_lsn) {
		ss->grants = g->next;
		if (ss->grants == NULL)
			ss->grants_tail = NULL;
		if (g->sid == 0)
			send_grant(ws, &g->holder, 0, NULL, g->will);
		else if ((s = find_sid(ss, g->node, g->sid)) != NULL &&
		    s->owned &&
		    reg_same(&s->owner, &g->holder) && s->epoch == g->epoch) {
			send_grant(ws, &g->holder, g->present, s, g->will);
			s->granted = 1;
			s->sent_before = s->sent_seq;
			mark_ready(ss, s);
		}
		free(g);
	}
}

static void
ready_run(struct walsvc *ws)
{
	struct sessions	*ss = ws->sessions;
	struct session	*s, *keep = NULL;

	while ((s = ss->ready) != NULL) {
		ss->ready = s->next_ready;
		ship(ws, s);
		/* still more to send once later records are shippable */
		if (s->owned && s->granted && s->ship_next < s->qlen &&
		    s->sent < credit(s)) {
			s->next_ready = keep;
			keep = s;
		} else
			s->ready = 0;
	}
	ss->ready = keep;
}

/* The log is shippable up to ws->shippable_lsn: grants, queues, wills. */
void
sessions_durable(struct walsvc *ws)
{
	grants_run(ws);
	ready_run(ws);
	wills_durable(ws);
	shares_durable(ws);
}

/* ---------------------------------------------------------------------
 * The registry's side: connections claiming, leaving, coming back.
 */

static int	expired(const struct session *, int64_t);

static int
grant_later(struct walsvc *ws, const struct reg_holder *h, uint64_t lsn,
    const struct session *s, uint8_t present, uint64_t will)
{
	struct sessions		*ss = ws->sessions;
	struct pending_grant	*g;

	if (lsn == 0) {
		/* nothing was written: nothing to wait for */
		send_grant(ws, h, present, s, will);
		return 0;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return -1;
	g->holder = *h;
	g->lsn = lsn;
	g->present = present;
	g->will = will;
	if (s) {
		g->sid = s->sid;
		g->node = s->node;
		g->epoch = s->epoch;
	}
	if (ss->grants_tail)
		ss->grants_tail->next = g;
	else
		ss->grants = g;
	ss->grants_tail = g;
	if (lsn <= ws->shippable_lsn)
		grants_run(ws);
	return 0;
}

static uint64_t
append_session(struct walsvc *ws, const struct walrec_session *r)
{
	struct buf	 b = BUF_INITIALIZER;
	uint64_t	 lsn = 0;

	if (walrec_session_encode(&b, r) == 0)
		lsn = walsvc_append(ws, WAL_TYPE_SESSION, b.data, b.len);
	buf_free(&b);
	return lsn;
}

static uint64_t
append_end(struct walsvc *ws, struct session *s, uint8_t why)
{
	struct walrec_session	 r;

	memset(&r, 0, sizeof(r));
	r.op = WALREC_SESSION_END;
	r.node = s->node;
	r.sid = s->sid;
	r.epoch = s->epoch;
	r.time = clock_wall_ms();
	r.why = why;
	return append_session(ws, &r);
}

static uint64_t
append_offline(struct walsvc *ws, struct session *s, uint32_t expiry,
    int64_t when)
{
	struct walrec_session	 r;

	memset(&r, 0, sizeof(r));
	r.op = WALREC_SESSION_OFFLINE;
	r.node = s->node;
	r.sid = s->sid;
	r.epoch = s->epoch;
	r.time = when;
	r.expiry = expiry;
	return append_session(ws, &r);
}

/*
 * The registry gives client id `id` to connection h: decide what its
 * session is, write that down, and grant once it is durable.  Returns 0,
 * or -1 when nothing could be written (the claim is refused).
 */
int
sessions_connect(struct walsvc *ws, const struct reg_holder *h,
    const uint8_t *id, size_t len, const struct claim_params *cp)
{
	struct sessions		*ss = ws->sessions;
	struct walrec_session	 r;
	struct session		*s = find_cid(ss, id, len);
	uint64_t		 lsn = 0, wlsn, will;
	uint8_t			 present = 0;

	if (s && s->owned && reg_same(&s->owner, h)) {
		/* a repeat of a claim already decided */
		if (s->granted)
			send_grant(ws, h, 1, s, wills_held_by(ws, h, id, len));
		return 0;
	}
	if (s && s->owned) {
		/* the registry let its holder go: dead, or gave up on it */
		if (append_offline(ws, s, s->expiry, clock_wall_ms()) == 0)
			return -1;
	}
	if (s && expired(s, clock_wall_ms())) {
		/* its expiry passed before the timer came round to it */
		ss->expired_sessions++;
		if (append_end(ws, s, WALREC_END_EXPIRED) == 0)
			return -1;
		s = NULL;
	}
	if (s && cp->clean_start) {
		if ((lsn = append_end(ws, s, WALREC_END_CLEAN_START)) == 0)
			return -1;
		s = NULL;
	}
	memset(&r, 0, sizeof(r));
	r.op = WALREC_SESSION_OPEN;
	r.time = clock_wall_ms();
	r.expiry = cp->expiry;
	r.level = cp->level;
	r.client_id = id;
	r.idlen = (uint16_t)len;
	if (s) {
		r.node = s->node;
		r.sid = s->sid;
		r.epoch = s->epoch + 1;
		if ((lsn = append_session(ws, &r)) == 0)
			return -1;
		present = 1;
	} else if (cp->expiry > 0) {
		r.epoch = 1;
		if ((lsn = append_session(ws, &r)) == 0 ||
		    (s = find_sid(ss, 0, lsn)) == NULL)
			return -1;
	}
	if (s) {
		s->owned = 1;
		s->granted = 0;
		s->owner = *h;
		s->window = cp->window;
	}
	/* an older will of the id, then the claim's own */
	if (wills_connect(ws, h, id, len, cp, present, &wlsn, &will) == -1)
		return -1;
	if (wlsn > lsn)
		lsn = wlsn;
	/* nothing written: a clean session without a will, granted at once */
	return grant_later(ws, h, lsn, s, present, will);
}

/* The Session Expiry Interval of the client's stored session, 0: none. */
uint32_t
sessions_expiry_of(struct walsvc *ws, const uint8_t *id, size_t len)
{
	struct session	*s = find_cid(ws->sessions, id, len);

	return s ? s->expiry : 0;
}

/* The client's stored session, *sid 0: none. */
void
sessions_id_of(struct walsvc *ws, const uint8_t *id, size_t len,
    uint16_t *node, uint64_t *sid)
{
	struct session	*s = find_cid(ws->sessions, id, len);

	*node = s ? s->node : 0;
	*sid = s ? s->sid : 0;
}

/*
 * Connection h, which held client id `id`, ended.  expiry: the Session
 * Expiry Interval in force at the end (the worker's, after DISCONNECT);
 * -1: the session's own (the worker died).  sent: the highest sequence
 * the connection wrote to its client (0: none; UINT64_MAX: not known,
 * so everything shipped to it counts as sent).
 */
void
sessions_disconnect(struct walsvc *ws, const struct reg_holder *h,
    const uint8_t *id, size_t len, int64_t expiry, uint64_t sent)
{
	struct session	*s = find_cid(ws->sessions, id, len);
	uint32_t	 e;
	size_t		 i;

	if (s == NULL || !s->owned || !reg_same(&s->owner, h))
		return;
	if (sent != UINT64_MAX && s->sent_seq != UINT64_MAX) {
		/* shipped is not sent: what the worker still held when the
		 * connection ended never began its delivery */
		if (s->sent_before == UINT64_MAX || sent > s->sent_before)
			s->sent_seq = sent;
		else
			s->sent_seq = s->sent_before;
		for (i = 0; i < s->qlen; i++)
			entry_at(s, i)->dup = entry_at(s, i)->seq <=
			    s->sent_seq;
		mark_dirty(ws->sessions, s);
	}
	e = expiry < 0 ? s->expiry : (uint32_t)expiry;
	if (e == 0)
		append_end(ws, s, WALREC_END_DISCONNECT);
	else
		append_offline(ws, s, e, clock_wall_ms());
}

/*
 * After a walsvc restart, a worker names a connection it holds (REG_SYNC).
 * Returns 0 if the connection may keep its session (or has none stored),
 * -1 if it must be closed: the session moved on without it.
 */
int
sessions_resync(struct walsvc *ws, const struct reg_holder *h,
    const uint8_t *id, size_t len, uint64_t sid, uint32_t epoch,
    uint16_t window)
{
	struct session	*s = find_cid(ws->sessions, id, len);

	if (sid == 0)
		return s == NULL || s->offline_since != 0 ? 0 : -1;
	if (s == NULL || s->sid != sid || s->epoch != epoch ||
	    s->offline_since != 0 || (s->owned && !reg_same(&s->owner, h)))
		return -1;
	s->owned = 1;
	s->granted = 1;
	s->owner = *h;
	s->window = window;
	s->sent_before = s->sent_seq;
	/* the worker drops what it already has, by sequence */
	entries_reset(s);
	mark_ready(ws->sessions, s);
	return 0;
}

/*
 * The workers have named their connections: a session still online
 * without a connection lost it while walsvc was down (its worker died,
 * or the whole broker stopped).  It went offline no later than the last
 * time the index recorded.
 */
void
sessions_sync_done(struct walsvc *ws)
{
	struct sessions	*ss = ws->sessions;
	struct session	*s, **all;
	size_t		 i, n = 0;
	int64_t		 when = (int64_t)index_clock(ws->index), now;

	now = clock_wall_ms();
	if (when <= 0 || when > now)
		when = now;
	if ((all = calloc(ss->count ? ss->count : 1, sizeof(*all))) == NULL)
		return;
	for (i = 0; i < ss->nbuckets; i++)
		for (s = ss->by_sid[i]; s; s = s->next_sid)
			if (s->offline_since == 0 && !s->owned)
				all[n++] = s;
	for (i = 0; i < n; i++)
		append_offline(ws, all[i], all[i]->expiry, when);
	if (n > 0)
		log_info("sessions without a connection after the restart "
		    "are offline", "sessions=%zu since_ms=%lld", n,
		    (long long)when);
	free(all);
	wills_sync_done(ws, when);
}

static int
expired(const struct session *s, int64_t now)
{
	return s->offline_since != 0 && s->expiry != WALREC_EXPIRY_NEVER &&
	    s->offline_since + (int64_t)s->expiry * 1000 <= now;
}

/* Once a second: sessions offline past their expiry end. */
static void
expiry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct walsvc	*ws = arg;
	struct sessions	*ss = ws->sessions;
	struct session	*s;
	struct expiry	 x;
	int64_t		 now = clock_wall_ms();

	while (ss->nheap > 0 && ss->heap[0].at <= now) {
		x = ss->heap[0];
		expiry_pop(ss);
		if ((s = find_sid(ss, x.node, x.sid)) == NULL ||
		    s->epoch != x.epoch || s->offline_since == 0 ||
		    s->expiry == WALREC_EXPIRY_NEVER)
			continue;
		if (!expired(s, now)) {
			expiry_push(ss, s);	/* its expiry changed */
			continue;
		}
		ss->expired_sessions++;
		append_end(ws, s, WALREC_END_EXPIRED);
	}
}

/* ---------------------------------------------------------------------
 * Start-up: the index's copy, then the log's bodies.
 */

static int
load_session(void *arg, uint16_t node, uint64_t sid, const uint8_t *row,
    size_t len)
{
	struct walsvc		*ws = arg;
	struct sessions		*ss = ws->sessions;
	struct buf_reader	 rd;
	struct session		*s;
	struct sub_options	 o;
	const uint8_t		*id, *filter;
	uint16_t		 idlen, n, flen, i;
	uint32_t		 nq2, q;
	uint8_t			 format, level, flags;
	uint32_t		 epoch, expiry;
	uint64_t		 offline, next_seq;

	buf_reader_init(&rd, row, len);
	format = buf_read_u8(&rd);
	if (format != ROW_FORMAT && format != ROW_FORMAT_2 &&
	    format != ROW_FORMAT_1)
		goto bad;
	level = buf_read_u8(&rd);
	idlen = buf_read_u16(&rd);
	epoch = buf_read_u32(&rd);
	expiry = buf_read_u32(&rd);
	buf_read_u32(&rd);
	offline = buf_read_u64(&rd);
	next_seq = buf_read_u64(&rd);
	id = buf_read_ptr(&rd, idlen);
	if (rd.failed || idlen == 0 || next_seq == 0)
		goto bad;
	if ((s = session_new(ss, node, sid, id, idlen)) == NULL)
		return -1;
	s->level = level;
	s->epoch = epoch;
	s->expiry = expiry;
	s->offline_since = (int64_t)offline;
	s->next_seq = next_seq;
	n = buf_read_u16(&rd);
	for (i = 0; i < n && !rd.failed; i++) {
		memset(&o, 0, sizeof(o));
		o.qos = buf_read_u8(&rd);
		flags = buf_read_u8(&rd);
		o.retain_handling = buf_read_u8(&rd);
		buf_read_u8(&rd);
		o.sub_id = buf_read_u32(&rd);
		flen = buf_read_u16(&rd);
		if ((filter = buf_read_ptr(&rd, flen)) != NULL &&
		    walrec_sub_flags_set(&o, flags) == 0 &&
		    sub_install(ws, s, filter, flen, &o) == -1)
			log_warnx("stored subscription not restored",
			    "client=%.*s", (int)idlen, (const char *)id);
	}
	if (format != ROW_FORMAT_1) {
		nq2 = buf_read_u32(&rd);
		for (q = 0; q < nq2 && !rd.failed; q++)
			if (q2in_add(s, buf_read_u16(&rd)) == -1)
				return -1;
	}
	s->sent_seq = format == ROW_FORMAT ? buf_read_u64(&rd) : UINT64_MAX;
	if (rd.failed)
		log_warnx("session row cut short; what it lacked is lost",
		    "client=%.*s", (int)idlen, (const char *)id);
	expiry_push(ss, s);
	return 0;
bad:
	log_warnx("malformed session row in the index ignored", "sid=%llu",
	    (unsigned long long)sid);
	return 0;
}

static int
load_entry(void *arg, uint16_t node, uint64_t sid, uint64_t seq, uint64_t lsn,
    uint8_t qos, uint8_t state)
{
	struct walsvc	*ws = arg;
	struct sessions	*ss = ws->sessions;
	struct session	*s;
	struct body	*b;

	progress_note(&ss->loading, ++ss->loaded, 0);
	if ((s = find_sid(ss, node, sid)) == NULL) {
		/* its session row was lost: the entry goes too */
		index_queue_del(ws->index, node, sid, seq);
		return 0;
	}
	/*
	 * Rows come in sequence order; messages acknowledged out of order
	 * left gaps, which stay in the ring as done entries so that
	 * sequences remain consecutive.
	 */
	if (s->qlen > 0) {
		uint64_t last = entry_at(s, s->qlen - 1)->seq;

		if (seq <= last)
			return 0;
		while (++last < seq)
			if (queue_push(s, last, NULL, 0) == -1)
				return -1;
	}
	if ((b = body_ref(ws, lsn)) == NULL || queue_push(s, seq, b, qos) == -1)
		return -1;
	/* sent by an earlier walsvc: DUP when sent again, and never
	 * written off as expired (MQTT-4.4.0-1) */
	entry_at(s, s->qlen - 1)->dup = seq <= s->sent_seq;
	entry_at(s, s->qlen - 1)->retain = (state & ROW_RETAIN) != 0;
	entry_at(s, s->qlen - 1)->shared = (state & ROW_SHARED) != 0;
	if ((state & ~(ROW_RETAIN | ROW_SHARED)) == ENTRY_RECEIVED && qos == 2)
		entry_at(s, s->qlen - 1)->state = ENTRY_RECEIVED;
	return 0;
}

int
sessions_open(struct walsvc *ws)
{
	struct sessions	*ss;
	struct timeval	 second = { 1, 0 };

	if ((ss = calloc(1, sizeof(*ss))) == NULL)
		return -1;
	ws->sessions = ss;
	ss->nbuckets = SESSION_BUCKETS_MIN;
	if ((ss->by_sid = calloc(ss->nbuckets, sizeof(*ss->by_sid))) == NULL ||
	    (ss->by_cid = calloc(ss->nbuckets, sizeof(*ss->by_cid))) == NULL ||
	    /* one slot that is not ours: no remote interest, locals only */
	    (ss->table = sub_table_new(1, 1)) == NULL)
		return -1;
	progress_start(&ss->loading, "loading session queues from the index");
	if (index_sessions_load(ws->index, load_session, ws) == -1 ||
	    index_queue_load(ws->index, load_entry, ws) == -1)
		return -1;
	if ((ss->timer = event_new(ws->base, -1, EV_PERSIST, expiry_cb,
	    ws)) == NULL || event_add(ss->timer, &second) == -1)
		return -1;
	return 0;
}

/*
 * After bodies_load(): an entry whose message the log no longer has is
 * dropped, loudly.  The queue's byte count is known only now: counted
 * afresh, since the replay counted the messages it queued (and uncounted
 * loaded ones it saw acknowledged, whose size it did not know yet).
 */
void
sessions_drop_missing(struct walsvc *ws)
{
	struct sessions	*ss = ws->sessions;
	struct session	*s;
	struct entry	*e;
	uint64_t	 missing = 0;
	size_t		 i, j;

	for (i = 0; i < ss->nbuckets; i++)
		for (s = ss->by_sid[i]; s; s = s->next_sid) {
			s->qbytes = 0;
			for (j = 0; j < s->qlen; j++) {
				e = entry_at(s, j);
				if (e->state == ENTRY_DONE || e->body == NULL)
					continue;
				if (e->body->packet != NULL) {
					s->qbytes += e->body->len;
					continue;
				}
				missing++;
				index_queue_del(ws->index, s->node, s->sid,
				    e->seq);
				body_unref(ws, e->body);
				e->body = NULL;
				e->state = ENTRY_DONE;
			}
			queue_trim(ss, s);
		}
	if (missing > 0)
		log_error("queued messages missing from the log were dropped",
		    "missing=%llu", (unsigned long long)missing);
}

size_t
sessions_count(const struct walsvc *ws)
{
	return ws->sessions ? ws->sessions->count : 0;
}

/* The gauges of the stored sessions, counted over them (once a second). */
void
sessions_gauges(const struct walsvc *ws, struct sessions_gauges *g)
{
	const struct sessions	*ss = ws->sessions;
	const struct session	*s;
	size_t			 i;

	memset(g, 0, sizeof(*g));
	if (ss == NULL)
		return;
	for (i = 0; i < ss->nbuckets; i++)
		for (s = ss->by_sid[i]; s; s = s->next_sid) {
			if (s->offline_since != 0)
				g->offline++;
			else
				g->online++;
			g->queued += s->qlen;
			g->queued_bytes += s->qbytes;
		}
}

/* The filters of the stored sessions, each with its number of them. */
void
sessions_filters(struct walsvc *ws, void (*fn)(const uint8_t *, size_t,
    uint32_t, void *), void *arg)
{
	sub_local_filters(ws->sessions->table, fn, arg);
}

void
sessions_close(struct walsvc *ws)
{
	struct sessions		*ss = ws->sessions;
	struct session		*s, *next;
	struct pending_grant	*g;
	size_t			 i, j;

	if (ss == NULL)
		return;
	for (i = 0; ss->by_sid != NULL && i < ss->nbuckets; i++)
		for (s = ss->by_sid[i]; s; s = next) {
			next = s->next_sid;
			subs_free(s);
			for (j = 0; j < s->qlen; j++)
				if (entry_at(s, j)->body)
					body_unref(ws, entry_at(s, j)->body);
			free(s->q2in);
			free(s->q);
			free(s);
		}
	while ((g = ss->grants) != NULL) {
		ss->grants = g->next;
		free(g);
	}
	if (ss->timer)
		event_free(ss->timer);
	sub_match_free(&ss->match);
	sub_table_free(ss->table);
	free(ss->by_sid);
	free(ss->by_cid);
	free(ss->heap);
	free(ss->matched);
	free(ss->members);
	free(ss);
	ws->sessions = NULL;
}

/* ---------------------------------------------------------------------
 * promptmqctl: sessions, session-delete.
 */

/*
 * One row per stored session whose client id matches `pattern` (a shell
 * pattern; NULL: every one); `flush` sends the rows waiting now and then.
 */
size_t
sessions_list(struct walsvc *ws, const char *pattern, struct adm_rows *out,
    void (*flush)(struct walsvc *, struct adm_rows *))
{
	struct sessions	*ss = ws->sessions;
	struct session	*s;
	struct ssub	*sub;
	int64_t		 now = clock_wall_ms(), left;
	size_t		 i, j, queued, nsubs, n = 0;

	if (ss == NULL)
		return 0;
	for (i = 0; i < ss->nbuckets; i++)
		for (s = ss->by_sid[i]; s; s = s->next_sid) {
			if (pattern && fnmatch(pattern, s->client_id, 0) != 0)
				continue;
			for (j = 0, queued = 0; j < s->qlen; j++)
				queued += entry_at(s, j)->state != ENTRY_DONE;
			for (sub = s->subs, nsubs = 0; sub; sub = sub->next)
				nsubs++;
			adm_row_begin(out, "sessions");
			adm_bytes(out, "client_id", s->client_id, s->idlen);
			adm_str(out, "state", s->offline_since == 0 ?
			    "online" : "offline");
			if (s->owned)
				adm_num(out, "worker", s->owner.slot);
			if (s->offline_since != 0)
				adm_num(out, "offline_since",
				    s->offline_since / 1000);
			if (s->expiry != WALREC_EXPIRY_NEVER) {
				adm_num(out, "expiry_interval", s->expiry);
				if (s->offline_since != 0) {
					left = s->offline_since +
					    (int64_t)s->expiry * 1000 - now;
					adm_num(out, "expires_in", left > 0 ?
					    (left + 999) / 1000 : 0);
				}
			}
			adm_num(out, "queued", (int64_t)queued);
			adm_num(out, "queued_bytes", (int64_t)s->qbytes);
			adm_num(out, "subscriptions", (int64_t)nsubs);
			adm_num(out, "qos2_unreleased", s->nq2in);
			adm_row_end(out);
			n++;
			if (adm_rows_due(out, 0))
				flush(ws, out);
		}
	return n;
}

/*
 * End an offline stored session now, as its expiry would: 0 ended, 1 it
 * is online (the registry ends it when its connection goes), -1 none by
 * that id, -2 the log refused the record.
 */
int
sessions_delete(struct walsvc *ws, const uint8_t *id, size_t len)
{
	struct session	*s = find_cid(ws->sessions, id, len);

	if (s == NULL)
		return -1;
	if (s->offline_since == 0)
		return 1;
	if (append_end(ws, s, WALREC_END_DELETED) == 0)
		return -2;
	return 0;
}
