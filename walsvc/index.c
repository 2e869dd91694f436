/*
 * index.c - the Berkeley DB index derived from the message log.
 *
 * The log is the single commit point; Berkeley DB (a transactional
 * environment private to walsvc) holds what is derived from it, so that
 * start-up does not have to read the whole log, and the position up to
 * which it is current.  Index transactions commit without syncing: after
 * a crash, recovery replays the log from the last applied position, and
 * applying a record twice leaves the same state (every entry is a "set
 * to", never an "add").
 *
 * Databases (file, key -> value, all integers big-endian):
 *   meta.db     "applied-lsn" -> u64   last log record applied
 *               "worker-gen"  -> u64   highest worker generation seen
 *   streams.db  u8 role, u16 slot, u64 generation -> u64 highest sequence
 *
 * Sessions, subscriptions, queues and retained messages join here as
 * their record types are put to use.
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

struct index {
	DB_ENV		*env;
	DB		*meta;
	DB		*streams;
	DB_TXN		*txn;
	uint64_t	 applied_lsn;
	uint64_t	 worker_gen;
	/* the stream of the last record applied, put once it changes */
	uint8_t		 last_key[STREAM_KEY];
	uint64_t	 last_seq;
	int		 have_last;
};

static void
bdb_error(const DB_ENV *env, const char *prefix, const char *msg)
{
	log_warnx("berkeley db", "error=\"%s\"", msg);
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
		return -1;
	}
	if ((rv = db_env_create(&ix->env, 0)) != 0)
		goto fail;
	ix->env->set_errcall(ix->env, bdb_error);
	if (cache_bytes < (1u << 20))
		cache_bytes = 1u << 20;
	if ((rv = ix->env->set_cachesize(ix->env,
	    (u_int32_t)(cache_bytes >> 30), (u_int32_t)(cache_bytes &
	    ((1u << 30) - 1)), 1)) != 0 ||
	    /* the message log is the commit point: no sync per commit */
	    (rv = ix->env->set_flags(ix->env, DB_TXN_NOSYNC, 1)) != 0 ||
	    (rv = ix->env->log_set_config(ix->env, DB_LOG_AUTO_REMOVE, 1)) != 0)
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
	    (rv = open_db(ix, &ix->streams, "streams.db")) != 0)
		goto fail;
	if ((rv = meta_get(ix, "applied-lsn", &ix->applied_lsn)) != 0 ||
	    (rv = meta_get(ix, "worker-gen", &ix->worker_gen)) != 0)
		goto fail;
	*out = ix;
	return 0;
fail:
	snprintf(err, errlen, "index in %s: %s", dir, db_strerror(rv));
	index_close(ix);
	return -1;
}

void
index_close(struct index *ix)
{
	if (ix == NULL)
		return;
	if (ix->txn)
		ix->txn->abort(ix->txn);
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

int
index_begin(struct index *ix)
{
	int	 rv;

	if (ix->txn)
		return 0;
	if ((rv = ix->env->txn_begin(ix->env, NULL, &ix->txn, 0)) != 0) {
		log_warnx("index transaction failed", "error=\"%s\"",
		    db_strerror(rv));
		ix->txn = NULL;
		return -1;
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
	rv = put_u64(ix->streams, ix->txn, ix->last_key, STREAM_KEY,
	    ix->last_seq);
	if (rv != 0)
		log_warnx("index update failed", "db=streams error=\"%s\"",
		    db_strerror(rv));
	return rv ? -1 : 0;
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
index_commit(struct index *ix, uint64_t applied_lsn)
{
	int	 rv = 0;

	if (ix->txn == NULL && index_begin(ix) == -1)
		return -1;
	if (put_last_stream(ix) == -1 ||
	    (rv = put_u64(ix->meta, ix->txn, "applied-lsn", 11,
	    applied_lsn)) != 0 ||
	    (rv = put_u64(ix->meta, ix->txn, "worker-gen", 10,
	    ix->worker_gen)) != 0) {
		if (rv)
			log_warnx("index update failed", "db=meta error=\"%s\"",
			    db_strerror(rv));
		ix->txn->abort(ix->txn);
		ix->txn = NULL;
		return -1;
	}
	rv = ix->txn->commit(ix->txn, 0);
	ix->txn = NULL;
	if (rv != 0) {
		log_warnx("index commit failed", "error=\"%s\"", db_strerror(rv));
		return -1;
	}
	ix->applied_lsn = applied_lsn;
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
