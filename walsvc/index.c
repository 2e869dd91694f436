/*
 * index.c - the Berkeley DB index derived from the message log.
 *
 * The log is the single commit point; Berkeley DB (a transactional
 * environment private to walsvc) holds what is derived from it, so that
 * start-up does not have to read the whole log, and the position up to
 * which it is current.  A transaction holds the effects of every record
 * applied since the last commit and is committed only at a log position
 * that is durable (synced; walsvc decides when), so the index is never
 * ahead of the log.  Commits write Berkeley DB's log without syncing it
 * (DB_TXN_WRITE_NOSYNC): a crash of walsvc keeps them, a power loss may
 * lose the last ones, which the replay of the log from applied-lsn
 * restores.
 *
 * Databases (file, key -> value, all integers big-endian):
 *   meta.db     "applied-lsn" -> u64   last log record applied
 *               "worker-gen"  -> u64   highest worker generation seen
 *               "clock"       -> u64   wall clock (ms) of the last commit
 *   streams.db  u8 role, u16 slot, u64 generation -> u64 highest sequence
 *   sessions.db u16 node, u64 session id -> the stored session (sessions.c)
 *   retained.db topic -> u64 LSN of its retained message (retained.c)
 *   msgs.db     u64 message id (LSN of its publish) -> u64 LSN of the
 *               copy it lives in now, for messages copied forward
 *   wills.db    client id -> the will kept for it (wills.c)
 *   queue.db    u16 node, u64 session id, u64 sequence -> u64 LSN, u8 QoS,
 *               u8 state (0 queued, 1 QoS 2 received; absent in rows
 *               written before QoS 2: 0)
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <db.h>

#include "buf.h"
#include "log.h"
#include "walsvc.h"

#define STREAM_KEY	11
#define SESSION_KEY	10
#define QUEUE_KEY	18
#define QUEUE_VALUE_1	9
#define QUEUE_VALUE	10
#define INDEX_MAX_LOCKS	200000
/* BDB's own log files: small, so the index's disk use stays near its data */
#define INDEX_LOG_FILE	(1u << 20)

struct index {
	DB_ENV		*env;
	DB		*meta;
	DB		*streams;
	DB		*sessions;
	DB		*queue;
	DB		*retained;
	DB		*msgs;
	DB		*wills;
	DB_TXN		*txn;
	uint64_t	 applied_lsn;
	uint64_t	 worker_gen;
	uint64_t	 clock;
	/* the stream of the last record applied, put once it changes */
	uint8_t		 last_key[STREAM_KEY];
	uint64_t	 last_seq;
	int		 have_last;
	int		 failed;	/* an update failed: commit nothing */
	int		 error;		/* the last error met, 0: none */
};

static int	index_failed(struct index *, const char *, int);

static void
bdb_error(const DB_ENV *env, const char *prefix, const char *msg)
{
	static struct log_ratelimit	 rl;

	/* a damaged file makes it say the same thing many times */
	log_limited(&rl, LOG_LEVEL_WARN, "berkeley db", "error=\"%s\"", msg);
}

static int
meta_get(struct index *ix, const char *name, uint64_t *out)
{
	DBT	 key, val;
	uint8_t	 v[8];
	int	 rv;

	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = (void *)name;
	key.size = (u_int32_t)strlen(name);
	val.data = v;
	val.ulen = sizeof(v);
	val.flags = DB_DBT_USERMEM;
	rv = ix->meta->get(ix->meta, NULL, &key, &val, 0);
	if (rv == DB_NOTFOUND) {
		*out = 0;
		return 0;
	}
	if (rv != 0 || val.size != 8)
		return rv ? rv : EINVAL;
	*out = buf_load_u64(v);
	return 0;
}

static int
put_u64(DB *db, DB_TXN *txn, const void *k, size_t klen, uint64_t value)
{
	DBT	 key, val;
	uint8_t	 v[8];

	buf_store_u64(v, value);
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = (void *)k;
	key.size = (u_int32_t)klen;
	val.data = v;
	val.size = sizeof(v);
	return db->put(db, txn, &key, &val, 0);
}

static int
open_db(struct index *ix, DB **db, const char *file)
{
	int	 rv;

	if ((rv = db_create(db, ix->env, 0)) != 0)
		return rv;
	/* a checksum on every page: a damaged page is an error to rebuild
	 * from, not garbage to follow (a file created without one keeps
	 * none until it is rebuilt) */
	if ((rv = (*db)->set_flags(*db, DB_CHKSUM)) != 0)
		return rv;
	return (*db)->open(*db, NULL, file, NULL, DB_BTREE,
	    DB_CREATE | DB_AUTO_COMMIT, 0600);
}

int
index_open(struct index **out, const char *dir, uint64_t cache_bytes,
    char *err, size_t errlen)
{
	struct index	*ix;
	int		 rv;

	if ((ix = calloc(1, sizeof(*ix))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return ENOMEM;
	}
	if ((rv = db_env_create(&ix->env, 0)) != 0)
		goto fail;
	ix->env->set_errcall(ix->env, bdb_error);
	if (cache_bytes < (1u << 20))
		cache_bytes = 1u << 20;
	if ((rv = ix->env->set_cachesize(ix->env,
	    (u_int32_t)(cache_bytes >> 30), (u_int32_t)(cache_bytes &
	    ((1u << 30) - 1)), 1)) != 0 ||
	    /* the message log is the commit point: written, not synced */
	    (rv = ix->env->set_flags(ix->env, DB_TXN_WRITE_NOSYNC, 1)) != 0 ||
	    (rv = ix->env->log_set_config(ix->env, DB_LOG_AUTO_REMOVE, 1)) != 0 ||
	    (rv = ix->env->set_lg_max(ix->env, INDEX_LOG_FILE)) != 0 ||
	    /* one transaction may touch many pages (a sync interval's worth
	     * of queue rows): the default of 1000 locks is far too few */
	    (rv = ix->env->set_lk_max_locks(ix->env, INDEX_MAX_LOCKS)) != 0 ||
	    (rv = ix->env->set_lk_max_objects(ix->env, INDEX_MAX_LOCKS)) != 0)
		goto fail;
	/*
	 * DB_PRIVATE: only walsvc uses the environment, so its regions live
	 * in our heap and a crash leaves no shared state behind; DB_RECOVER
	 * brings the databases back to their last committed transaction.
	 */
	if ((rv = ix->env->open(ix->env, dir, DB_CREATE | DB_INIT_TXN |
	    DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | DB_PRIVATE |
	    DB_RECOVER, 0600)) != 0)
		goto fail;
	if ((rv = open_db(ix, &ix->meta, "meta.db")) != 0 ||
	    (rv = open_db(ix, &ix->streams, "streams.db")) != 0 ||
	    (rv = open_db(ix, &ix->sessions, "sessions.db")) != 0 ||
	    (rv = open_db(ix, &ix->queue, "queue.db")) != 0 ||
	    (rv = open_db(ix, &ix->retained, "retained.db")) != 0 ||
	    (rv = open_db(ix, &ix->msgs, "msgs.db")) != 0 ||
	    (rv = open_db(ix, &ix->wills, "wills.db")) != 0)
		goto fail;
	if ((rv = meta_get(ix, "applied-lsn", &ix->applied_lsn)) != 0 ||
	    (rv = meta_get(ix, "worker-gen", &ix->worker_gen)) != 0 ||
	    (rv = meta_get(ix, "clock", &ix->clock)) != 0)
		goto fail;
	*out = ix;
	return 0;
fail:
	snprintf(err, errlen, "index in %s: %s", dir, db_strerror(rv));
	index_close(ix);
	return rv;
}

/*
 * Whether an error is the storage's (full, failing, read-only, out of
 * memory or descriptors) rather than damage in the index: rebuilding
 * would not help, trying again later may.
 */
int
index_storage_error(int rv)
{
	switch (rv) {
	case ENOSPC:
	case EDQUOT:
	case EIO:
	case EROFS:
	case ENOMEM:
	case EMFILE:
	case ENFILE:
	case EACCES:
	case EPERM:
		return 1;
	default:
		return 0;
	}
}

/* The last error an update or a read met (0: none). */
int
index_error(const struct index *ix)
{
	return ix->error;
}

void
index_close(struct index *ix)
{
	if (ix == NULL)
		return;
	if (ix->txn)
		ix->txn->abort(ix->txn);
	if (ix->wills)
		ix->wills->close(ix->wills, 0);
	if (ix->msgs)
		ix->msgs->close(ix->msgs, 0);
	if (ix->retained)
		ix->retained->close(ix->retained, 0);
	if (ix->queue)
		ix->queue->close(ix->queue, 0);
	if (ix->sessions)
		ix->sessions->close(ix->sessions, 0);
	if (ix->streams)
		ix->streams->close(ix->streams, 0);
	if (ix->meta)
		ix->meta->close(ix->meta, 0);
	if (ix->env) {
		ix->env->txn_checkpoint(ix->env, 0, 0, 0);
		ix->env->close(ix->env, 0);
	}
	free(ix);
}

uint64_t
index_applied_lsn(const struct index *ix)
{
	return ix->applied_lsn;
}

uint64_t
index_worker_generation(const struct index *ix)
{
	return ix->worker_gen;
}

uint64_t
index_clock(const struct index *ix)
{
	return ix->clock;
}

int
index_begin(struct index *ix)
{
	int	 rv;

	if (ix->txn)
		return 0;
	if ((rv = ix->env->txn_begin(ix->env, NULL, &ix->txn, 0)) != 0) {
		ix->txn = NULL;
		return index_failed(ix, "transaction", rv);
	}
	return 0;
}

static int
put_last_stream(struct index *ix)
{
	int	 rv;

	if (!ix->have_last)
		return 0;
	ix->have_last = 0;
	if (ix->failed)
		return -1;
	rv = put_u64(ix->streams, ix->txn, ix->last_key, STREAM_KEY,
	    ix->last_seq);
	return rv ? index_failed(ix, "streams", rv) : 0;
}

/*
 * Apply one log record.  Consecutive records of one stream (the usual
 * case: a batch from one worker) cost one put between them.
 */
int
index_apply(struct index *ix, const struct wal_record *rec)
{
	uint8_t	 key[STREAM_KEY];

	if (ix->txn == NULL && index_begin(ix) == -1)
		return -1;
	key[0] = rec->origin.role;
	buf_store_u16(key + 1, rec->origin.slot);
	buf_store_u64(key + 3, rec->origin.generation);
	if (ix->have_last && memcmp(key, ix->last_key, STREAM_KEY) != 0 &&
	    put_last_stream(ix) == -1)
		return -1;
	memcpy(ix->last_key, key, STREAM_KEY);
	ix->last_seq = rec->origin.sequence;
	ix->have_last = 1;
	if (rec->origin.role == IPC_ROLE_WORKER &&
	    rec->origin.generation > ix->worker_gen)
		ix->worker_gen = rec->origin.generation;
	return 0;
}

int
index_commit(struct index *ix, uint64_t applied_lsn, uint64_t clock)
{
	int	 rv = 0;

	if (ix->failed) {
		if (ix->txn)
			ix->txn->abort(ix->txn);
		ix->txn = NULL;
		return -1;
	}
	if (ix->txn == NULL && index_begin(ix) == -1)
		return -1;
	if (put_last_stream(ix) == -1 ||
	    (rv = put_u64(ix->meta, ix->txn, "applied-lsn", 11,
	    applied_lsn)) != 0 ||
	    (rv = put_u64(ix->meta, ix->txn, "worker-gen", 10,
	    ix->worker_gen)) != 0 ||
	    (rv = put_u64(ix->meta, ix->txn, "clock", 5, clock)) != 0) {
		ix->txn->abort(ix->txn);
		ix->txn = NULL;
		/* the effects of this transaction are lost: a later commit
		 * must not move applied-lsn past them */
		return index_failed(ix, "meta", rv ? rv : EIO);
	}
	rv = ix->txn->commit(ix->txn, 0);
	ix->txn = NULL;
	if (rv != 0)
		return index_failed(ix, "commit", rv);
	ix->applied_lsn = applied_lsn;
	ix->clock = clock;
	return 0;
}

/* Flush the index to disk so recovery replays less of the log. */
int
index_checkpoint(struct index *ix)
{
	int	 rv;

	if ((rv = ix->env->txn_checkpoint(ix->env, 0, 0, 0)) != 0) {
		log_warnx("index checkpoint failed", "error=\"%s\"",
		    db_strerror(rv));
		return -1;
	}
	return 0;
}

/*
 * A put or delete that fails leaves the transaction short of an effect
 * the memory state has: from then on nothing is committed, so the index
 * stays at its last consistent position and the next start replays the
 * log from there.  Logged once.
 */
static int
index_failed(struct index *ix, const char *what, int rv)
{
	if (!ix->failed)
		log_error("index update failed; the index stays where it was "
		    "until walsvc restarts and replays the log", "db=%s "
		    "error=\"%s\"", what, db_strerror(rv));
	ix->failed = 1;
	ix->error = rv;
	return -1;
}

static int
put(struct index *ix, DB *db, const char *what, const void *k, size_t klen,
    const void *v, size_t vlen)
{
	DBT	 key, val;
	int	 rv;

	if (ix->failed || (ix->txn == NULL && index_begin(ix) == -1))
		return -1;
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	key.data = (void *)k;
	key.size = (u_int32_t)klen;
	val.data = (void *)v;
	val.size = (u_int32_t)vlen;
	if ((rv = db->put(db, ix->txn, &key, &val, 0)) != 0)
		return index_failed(ix, what, rv);
	return 0;
}

static int
del(struct index *ix, DB *db, const char *what, const void *k, size_t klen)
{
	DBT	 key;
	int	 rv;

	if (ix->failed || (ix->txn == NULL && index_begin(ix) == -1))
		return -1;
	memset(&key, 0, sizeof(key));
	key.data = (void *)k;
	key.size = (u_int32_t)klen;
	rv = db->del(db, ix->txn, &key, 0);
	if (rv != 0 && rv != DB_NOTFOUND)
		return index_failed(ix, what, rv);
	return 0;
}

static void
session_key(uint8_t *k, uint16_t node, uint64_t sid)
{
	buf_store_u16(k, node);
	buf_store_u64(k + 2, sid);
}

static void
queue_key(uint8_t *k, uint16_t node, uint64_t sid, uint64_t seq)
{
	session_key(k, node, sid);
	buf_store_u64(k + SESSION_KEY, seq);
}

int
index_session_put(struct index *ix, uint16_t node, uint64_t sid,
    const void *data, size_t len)
{
	uint8_t	 k[SESSION_KEY];

	session_key(k, node, sid);
	return put(ix, ix->sessions, "sessions", k, sizeof(k), data, len);
}

int
index_session_del(struct index *ix, uint16_t node, uint64_t sid)
{
	uint8_t	 k[SESSION_KEY];

	session_key(k, node, sid);
	return del(ix, ix->sessions, "sessions", k, sizeof(k));
}

int
index_queue_put(struct index *ix, uint16_t node, uint64_t sid, uint64_t seq,
    uint64_t lsn, uint8_t qos, uint8_t state)
{
	uint8_t	 k[QUEUE_KEY], v[QUEUE_VALUE];

	queue_key(k, node, sid, seq);
	buf_store_u64(v, lsn);
	v[8] = qos;
	v[9] = state;
	return put(ix, ix->queue, "queue", k, sizeof(k), v, sizeof(v));
}

int
index_queue_del(struct index *ix, uint16_t node, uint64_t sid, uint64_t seq)
{
	uint8_t	 k[QUEUE_KEY];

	queue_key(k, node, sid, seq);
	return del(ix, ix->queue, "queue", k, sizeof(k));
}

/*
 * Walk a database in key order; fn gets each key and value and stops
 * the walk by returning non-zero.  Returns 0, or -1 after a database
 * error (logged).
 */
static int
walk(struct index *ix, DB *db, const char *what,
    int (*fn)(void *, const uint8_t *, size_t, const uint8_t *, size_t),
    void *arg)
{
	DBC	*cur;
	DBT	 key, val;
	int	 rv;

	if ((rv = db->cursor(db, NULL, &cur, 0)) != 0) {
		log_error("cannot read the index", "db=%s error=\"%s\"", what,
		    db_strerror(rv));
		ix->error = rv;
		return -1;
	}
	memset(&key, 0, sizeof(key));
	memset(&val, 0, sizeof(val));
	while ((rv = cur->get(cur, &key, &val, DB_NEXT)) == 0)
		if (fn(arg, key.data, key.size, val.data, val.size) != 0)
			break;
	cur->close(cur);
	if (rv != 0 && rv != DB_NOTFOUND) {
		log_error("cannot read the index", "db=%s error=\"%s\"", what,
		    db_strerror(rv));
		ix->error = rv;
		return -1;
	}
	return 0;
}

struct session_walk {
	index_session_fn	 fn;
	void			*arg;
	int			 bad;
};

static int
session_row(void *arg, const uint8_t *k, size_t klen, const uint8_t *v,
    size_t vlen)
{
	struct session_walk	*sw = arg;

	if (klen != SESSION_KEY) {
		sw->bad++;
		return 0;
	}
	return sw->fn(sw->arg, buf_load_u16(k), buf_load_u64(k + 2), v, vlen);
}

int
index_sessions_load(struct index *ix, index_session_fn fn, void *arg)
{
	struct session_walk	 sw = { fn, arg, 0 };

	if (walk(ix, ix->sessions, "sessions", session_row, &sw) == -1)
		return -1;
	if (sw.bad)
		log_warnx("malformed session rows in the index ignored",
		    "rows=%d", sw.bad);
	return 0;
}

struct queue_walk {
	index_queue_fn	 fn;
	void		*arg;
	int		 bad;
};

static int
queue_row(void *arg, const uint8_t *k, size_t klen, const uint8_t *v,
    size_t vlen)
{
	struct queue_walk	*qw = arg;

	if (klen != QUEUE_KEY || (vlen != QUEUE_VALUE && vlen != QUEUE_VALUE_1)) {
		qw->bad++;
		return 0;
	}
	return qw->fn(qw->arg, buf_load_u16(k), buf_load_u64(k + 2),
	    buf_load_u64(k + SESSION_KEY), buf_load_u64(v), v[8],
	    vlen == QUEUE_VALUE ? v[9] : 0);
}

int
index_queue_load(struct index *ix, index_queue_fn fn, void *arg)
{
	struct queue_walk	 qw = { fn, arg, 0 };

	if (walk(ix, ix->queue, "queue", queue_row, &qw) == -1)
		return -1;
	if (qw.bad)
		log_warnx("malformed queue rows in the index ignored",
		    "rows=%d", qw.bad);
	return 0;
}

int
index_usable(const struct index *ix)
{
	return !ix->failed;
}

/*
 * Empty what is derived from records (sessions, queues, retained
 * messages, wills) before the whole log is applied again: the index was
 * ahead of the log.
 */
int
index_clear_derived(struct index *ix)
{
	u_int32_t	 n;
	int		 rv;

	if ((rv = ix->sessions->truncate(ix->sessions, NULL, &n,
	    DB_AUTO_COMMIT)) != 0 ||
	    (rv = ix->queue->truncate(ix->queue, NULL, &n,
	    DB_AUTO_COMMIT)) != 0 ||
	    (rv = ix->retained->truncate(ix->retained, NULL, &n,
	    DB_AUTO_COMMIT)) != 0 ||
	    (rv = ix->msgs->truncate(ix->msgs, NULL, &n,
	    DB_AUTO_COMMIT)) != 0 ||
	    (rv = ix->wills->truncate(ix->wills, NULL, &n,
	    DB_AUTO_COMMIT)) != 0) {
		log_error("cannot empty the index", "error=\"%s\"",
		    db_strerror(rv));
		return -1;
	}
	return 0;
}

int
index_retained_put(struct index *ix, const uint8_t *topic, size_t len,
    uint64_t lsn)
{
	uint8_t	 v[8];

	buf_store_u64(v, lsn);
	return put(ix, ix->retained, "retained", topic, len, v, sizeof(v));
}

int
index_retained_del(struct index *ix, const uint8_t *topic, size_t len)
{
	return del(ix, ix->retained, "retained", topic, len);
}

struct retained_walk {
	index_retained_fn	 fn;
	void			*arg;
	int			 bad;
};

static int
retained_row(void *arg, const uint8_t *k, size_t klen, const uint8_t *v,
    size_t vlen)
{
	struct retained_walk	*rw = arg;

	if (klen == 0 || vlen != 8) {
		rw->bad++;
		return 0;
	}
	return rw->fn(rw->arg, k, klen, buf_load_u64(v));
}

int
index_retained_load(struct index *ix, index_retained_fn fn, void *arg)
{
	struct retained_walk	 rw = { fn, arg, 0 };

	if (walk(ix, ix->retained, "retained", retained_row, &rw) == -1)
		return -1;
	if (rw.bad)
		log_warnx("malformed retained rows in the index ignored",
		    "rows=%d", rw.bad);
	return 0;
}

int
index_msg_put(struct index *ix, uint64_t id, uint64_t loc)
{
	uint8_t	 k[8], v[8];

	buf_store_u64(k, id);
	buf_store_u64(v, loc);
	return put(ix, ix->msgs, "msgs", k, sizeof(k), v, sizeof(v));
}

int
index_msg_del(struct index *ix, uint64_t id)
{
	uint8_t	 k[8];

	buf_store_u64(k, id);
	return del(ix, ix->msgs, "msgs", k, sizeof(k));
}

struct msg_walk {
	index_msg_fn	 fn;
	void		*arg;
	int		 bad;
};

static int
msg_row(void *arg, const uint8_t *k, size_t klen, const uint8_t *v,
    size_t vlen)
{
	struct msg_walk	*mw = arg;

	if (klen != 8 || vlen != 8) {
		mw->bad++;
		return 0;
	}
	return mw->fn(mw->arg, buf_load_u64(k), buf_load_u64(v));
}

int
index_msgs_load(struct index *ix, index_msg_fn fn, void *arg)
{
	struct msg_walk	 mw = { fn, arg, 0 };

	if (walk(ix, ix->msgs, "msgs", msg_row, &mw) == -1)
		return -1;
	if (mw.bad)
		log_warnx("malformed message location rows in the index "
		    "ignored", "rows=%d", mw.bad);
	return 0;
}

int
index_will_put(struct index *ix, const uint8_t *id, size_t len,
    const void *row, size_t rowlen)
{
	return put(ix, ix->wills, "wills", id, len, row, rowlen);
}

int
index_will_del(struct index *ix, const uint8_t *id, size_t len)
{
	return del(ix, ix->wills, "wills", id, len);
}

/* fn checks each row itself (wills.c) */
int
index_wills_load(struct index *ix, index_will_fn fn, void *arg)
{
	return walk(ix, ix->wills, "wills", fn, arg);
}

/*
 * The highest sequence the index knows for a stream, committed or in
 * the open transaction: the log forgets a stream once compaction removed
 * its records, the index does not.
 */
uint64_t
index_stream_highest(struct index *ix, uint8_t role, uint16_t slot,
    uint64_t gen)
{
	uint8_t	 key[STREAM_KEY];
	DBT	 k, v;
	uint8_t	 val[8];

	key[0] = role;
	buf_store_u16(key + 1, slot);
	buf_store_u64(key + 3, gen);
	if (ix->have_last && memcmp(key, ix->last_key, STREAM_KEY) == 0)
		return ix->last_seq;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = key;
	k.size = STREAM_KEY;
	v.data = val;
	v.ulen = sizeof(val);
	v.flags = DB_DBT_USERMEM;
	if (ix->streams->get(ix->streams, ix->txn, &k, &v, 0) != 0 ||
	    v.size != 8)
		return 0;
	return buf_load_u64(val);
}

/*
 * Make the index's committed state durable (its log flushed and a
 * checkpoint taken): before log segments are removed, everything they
 * held must be in the index for good.
 */
int
index_sync(struct index *ix)
{
	int	 rv;

	if ((rv = ix->env->log_flush(ix->env, NULL)) != 0 ||
	    (rv = ix->env->txn_checkpoint(ix->env, 0, 0, DB_FORCE)) != 0) {
		log_warnx("index sync failed", "error=\"%s\"", db_strerror(rv));
		return -1;
	}
	return 0;
}
