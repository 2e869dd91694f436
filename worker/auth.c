/*
 * auth.c - who a client is.
 *
 * The supervisor reads auth.password-file (it may be readable by root
 * alone) and hands its bytes to every worker as a sealed memory file
 * (IPC_CTL_AUTH), before the configuration and again on every reload;
 * a worker parses them (common/passwd.c) and keeps the result.
 *
 * A CONNECT with a user name is checked against it on a thread of the
 * worker's own: PBKDF2 costs what the file's iteration counts say (an
 * operator may choose 100,000), and the loop keeps serving every other
 * client meanwhile.  The connection waits in CONN_AUTH, not read; the
 * thread's answers come back through an eventfd, in order.  A password
 * lives only in its job, and is wiped when the job is done.
 *
 * Every refusal is CONNACK 0x87 (3.x: 5, not authorized), whether the
 * user is unknown, the password wrong or none was given, as Mosquitto
 * answers: the answer says nothing about which users exist, and the
 * check does the same work for an unknown user.
 *
 * Failed logins slow down their address: after one, the next check of a
 * login from the same address waits 250 ms before it starts, doubling
 * with each failure up to auth.failed-login-delay (and half of
 * server.connect-timeout), for a minute after the last one.  A delay, not a lockout: the right password
 * still gets in, only later; guesses from one address come at most a
 * few a second.  Per worker, in a table of AUTH_FAIL_SLOTS addresses.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "acl.h"
#include "clock.h"
#include "hash.h"
#include "jwt.h"
#include "log.h"
#include "passwd.h"
#include "worker.h"

#define AUTH_QUEUE_MAX	1024	/* checks waiting; beyond, 0x89 */
#define AUTH_FAIL_SLOTS	4096	/* addresses with recent failures */
#define AUTH_FAIL_MS	60000	/* how long a failure counts */
#define AUTH_DELAY_MS	250	/* after the first failure */

/* An address: family, then its bytes (IPv4 in the first 4). */
#define ADDR_KEY	17

struct auth_fail {
	uint8_t			 key[ADDR_KEY];
	uint32_t		 count;
	int64_t			 last;		/* monotonic ms */
};

struct auth_job {
	struct auth_job		*next;
	uint64_t		 conn_id;
	uint8_t			 addr[ADDR_KEY];
	int64_t			 due;		/* deferred: monotonic ms */
	struct passwd_db	*db;		/* a reference */
	int			 ok;
	size_t			 ulen, pwlen;
	uint8_t			 data[];	/* user, then password */
};

struct auth {
	pthread_t		 thread;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct auth_job		*todo, **todo_tail;
	struct auth_job		*done, **done_tail;
	int			 stop;
	int			 started;
	int			 efd;
	struct event		*ev;
	size_t			 queued;	/* loop side: jobs out */
	/* loop side: jobs that wait for their address's delay, by due */
	struct auth_job		*deferred;
	struct event		*defer_ev;
	struct auth_fail	 fails[AUTH_FAIL_SLOTS];
};

static void
addr_key(const struct conn *c, uint8_t key[ADDR_KEY])
{
	memset(key, 0, ADDR_KEY);
	key[0] = (uint8_t)c->peer.sa.sa_family;
	if (c->peer.sa.sa_family == AF_INET)
		memcpy(key + 1, &c->peer.in4.sin_addr, 4);
	else if (c->peer.sa.sa_family == AF_INET6)
		memcpy(key + 1, &c->peer.in6.sin6_addr, 16);
}

static struct auth_fail *
fail_slot(struct auth *a, const uint8_t key[ADDR_KEY])
{
	uint64_t	 h = 0;
	size_t		 i;

	for (i = 0; i < ADDR_KEY; i++)
		h = hash_mix64(h ^ key[i]);
	return &a->fails[h % AUTH_FAIL_SLOTS];
}

/* How long a login from this address waits before it is checked. */
static int64_t
fail_delay(struct auth *a, const uint8_t key[ADDR_KEY], int64_t now,
    int64_t bound)
{
	struct auth_fail	*f = fail_slot(a, key);
	int64_t			 d;

	if (memcmp(f->key, key, ADDR_KEY) != 0 || f->count == 0 ||
	    now - f->last > AUTH_FAIL_MS)
		return 0;
	d = f->count > 16 ? bound : (int64_t)AUTH_DELAY_MS << (f->count - 1);
	return d < bound ? d : bound;
}

static void
fail_note(struct auth *a, const uint8_t key[ADDR_KEY], int64_t now)
{
	struct auth_fail	*f = fail_slot(a, key);

	/* another address in the slot, or an old count: start again */
	if (memcmp(f->key, key, ADDR_KEY) != 0 || now - f->last >
	    AUTH_FAIL_MS) {
		memcpy(f->key, key, ADDR_KEY);
		f->count = 0;
	}
	f->count++;
	f->last = now;
}

static void
submit(struct auth *a, struct auth_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&a->mu);
	*a->todo_tail = j;
	a->todo_tail = &j->next;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static void
arm_deferred(struct auth *a, int64_t now)
{
	struct timeval	 tv;
	int64_t		 wait;

	if (a->deferred == NULL)
		return;
	wait = a->deferred->due > now ? a->deferred->due - now : 0;
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
	evtimer_add(a->defer_ev, &tv);
}

/* Deferred checks whose time came go to the thread. */
static void
deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct auth	*a = arg;
	struct auth_job	*j;
	int64_t		 now = clock_mono_ms();

	while ((j = a->deferred) != NULL && j->due <= now) {
		a->deferred = j->next;
		submit(a, j);
	}
	arm_deferred(a, now);
}

static void *
auth_thread(void *arg)
{
	struct auth	*a = arg;
	struct auth_job	*j;
	uint64_t	 one = 1;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (a->todo == NULL && !a->stop)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->stop)
			break;
		j = a->todo;
		if ((a->todo = j->next) == NULL)
			a->todo_tail = &a->todo;
		pthread_mutex_unlock(&a->mu);

		j->ok = passwd_check(j->db, (const char *)j->data, j->ulen,
		    j->data + j->ulen, j->pwlen);
		OPENSSL_cleanse(j->data + j->ulen, j->pwlen);
		j->next = NULL;

		pthread_mutex_lock(&a->mu);
		*a->done_tail = j;
		a->done_tail = &j->next;
		(void)!write(a->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* Answers from the thread, on the loop. */
static void
auth_answers(evutil_socket_t fd, short what, void *arg)
{
	struct worker	*w = arg;
	struct auth	*a = w->auth;
	struct auth_job	*j, *next;
	struct conn	*c;
	uint64_t	 n;

	(void)!read(a->efd, &n, sizeof(n));
	pthread_mutex_lock(&a->mu);
	j = a->done;
	a->done = NULL;
	a->done_tail = &a->done;
	pthread_mutex_unlock(&a->mu);
	for (; j; j = next) {
		next = j->next;
		a->queued--;
		if (!j->ok)
			fail_note(a, j->addr, clock_mono_ms());
		c = idmap_get(&w->conns_by_id, j->conn_id);
		if (c != NULL && c->state == CONN_AUTH)
			connect_authenticated(c, j->ok);
		passwd_free(j->db);
		free(j);
	}
}

int
auth_start(struct worker *w)
{
	struct auth	*a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -1;
	a->todo_tail = &a->todo;
	a->done_tail = &a->done;
	a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->efd == -1 || pthread_mutex_init(&a->mu, NULL) != 0 ||
	    pthread_cond_init(&a->cv, NULL) != 0 ||
	    (a->ev = event_new(w->base, a->efd, EV_READ | EV_PERSIST,
	    auth_answers, w)) == NULL || event_add(a->ev, NULL) == -1 ||
	    (a->defer_ev = evtimer_new(w->base, deferred_cb, a)) == NULL ||
	    pthread_create(&a->thread, NULL, auth_thread, a) != 0) {
		log_error("cannot start the authentication thread",
		    "error=\"%s\"", strerror(errno));
		return -1;
	}
	a->started = 1;
	w->auth = a;
	return 0;
}

void
auth_stop(struct worker *w)
{
	struct auth	*a = w->auth;
	struct auth_job	*j, *next;

	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = 1;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
	if (a->started)
		pthread_join(a->thread, NULL);
	for (j = a->todo; j; j = next) {
		next = j->next;
		OPENSSL_cleanse(j->data, j->ulen + j->pwlen);
		passwd_free(j->db);
		free(j);
	}
	for (j = a->done; j; j = next) {
		next = j->next;
		passwd_free(j->db);
		free(j);
	}
	for (j = a->deferred; j; j = next) {
		next = j->next;
		OPENSSL_cleanse(j->data, j->ulen + j->pwlen);
		passwd_free(j->db);
		free(j);
	}
	if (a->defer_ev)
		event_free(a->defer_ev);
	if (a->ev)
		event_free(a->ev);
	close(a->efd);
	free(a);
	w->auth = NULL;
}

/*
 * A new password file: a client that logged in as a user it no longer
 * has, or whose password it changed, is disconnected (MQTT 5: 0x98,
 * administrative action).
 */
static void
drop_changed_users(struct worker *w, const struct passwd_db *next)
{
	struct conn	*c, *nextc;

	for (c = w->conns; c; c = nextc) {
		nextc = c->next;
		if (!(c->connack_flags & CONN_BY_PASSWORD) || c->username ==
		    NULL || c->state == CONN_CLOSING)
			continue;
		if (!passwd_same_user(w->passwd, next, c->username,
		    strlen(c->username)))
			conn_close(c, MQTT_RC_ADMINISTRATIVE_ACTION, "its user "
			    "was removed or its password changed");
	}
}

/*
 * A file the supervisor sent (kind IPC_AUTH_PASSWORD_FILE or
 * IPC_AUTH_ACL_FILE; fd: a sealed memory file, -1: none configured any more).  The
 * supervisor checked it; its bad lines were logged there.  A password
 * file applies to the next logins; an ACL file to everything from now
 * on, the connections already in included.
 */
/* The token key (kind IPC_AUTH_JWT_KEY; fd -1: none any more). */
static void
set_jwt_key(struct worker *w, int fd, const char *name)
{
	struct jwt_key	*k = NULL;
	struct buf	 bytes = BUF_INITIALIZER;
	char		 err[512];
	int		 rv;

	if (fd != -1) {
		if ((rv = buf_load_fd(&bytes, fd)) == -1)
			snprintf(err, sizeof(err), "%s", strerror(errno));
		close(fd);
		if (rv == -1 || jwt_key_load(bytes.data, bytes.len, &k, err,
		    sizeof(err)) == -1) {
			log_error("token key not taken; the previous one stays",
			    "file=%s error=\"%s\"", name, err);
			if (bytes.data)
				OPENSSL_cleanse(bytes.data, bytes.cap);
			buf_free(&bytes);
			return;
		}
		OPENSSL_cleanse(bytes.data, bytes.cap);
		buf_free(&bytes);
	}
	jwt_key_free(w->jwt);
	w->jwt = k;
	log_debug("token key taken", "file=%s", name);
}

void
auth_set_file(struct worker *w, int kind, int fd, const char *name)
{
	struct passwd_db	*db = NULL;
	struct acl		*acl = NULL;
	FILE			*f = NULL;
	char			 err[512];
	int			 rv = 0;

	if (kind == IPC_AUTH_JWT_KEY) {
		set_jwt_key(w, fd, name);
		return;
	}

	if (fd != -1 && (f = fdopen(fd, "r")) == NULL) {
		log_error("cannot read a file sent", "file=%s error=\"%s\"",
		    name, strerror(errno));
		close(fd);
		return;
	}
	if (f != NULL) {
		rv = kind == IPC_AUTH_PASSWORD_FILE ? passwd_read(&db, f, name, NULL, NULL, err,
		    sizeof(err)) : acl_read(&acl, f, name, err, sizeof(err));
		fclose(f);
	}
	if (rv == -1) {
		log_error("file not taken; the previous one stays",
		    "file=%s error=\"%s\"", name, err);
		return;
	}
	if (kind == IPC_AUTH_PASSWORD_FILE) {
		drop_changed_users(w, db);
		passwd_free(w->passwd);
		w->passwd = db;
	} else {
		acl_free(w->acl);
		w->acl = acl;
	}
	log_debug("authentication file taken", "kind=%d file=%s", kind,
	    name);
}

int
auth_acl_allows(const struct conn *c, const void *topic, size_t len,
    int access)
{
	const char	*u = c->username;

	return acl_check(c->w->acl, u, u ? strlen(u) : 0, c->client_id,
	    c->client_id_len, topic, len, access);
}

int
auth_may_subscribe(const struct conn *c, const void *filter, size_t len)
{
	const char	*u = c->username;

	return c->w->acl == NULL || acl_may_subscribe(c->w->acl, u, u ?
	    strlen(u) : 0, c->client_id, c->client_id_len, filter, len);
}

/*
 * A token as the password (auth.jwt-key-file): checked here, on the
 * loop (a signature costs tens of microseconds, not a PBKDF2); the user
 * name is the token's.  A refusal is 0x87 like any other and counts as
 * a failed login of its address (password checks from it slow down).
 */
static int
token_login(struct conn *c, const struct mqtt_connect *cn, const char **why)
{
	const struct config	*cfg = &c->w->proc->cfg;
	struct jwt_check	 chk;
	uint8_t			 key[ADDR_KEY];
	char			 user[256];
	int64_t			 exp;

	chk.username_claim = config_str(cfg, OPT_auth_jwt_username_claim);
	chk.issuer = config_str(cfg, OPT_auth_jwt_issuer);
	chk.audience = config_str(cfg, OPT_auth_jwt_audience);
	chk.leeway = config_num(cfg, OPT_auth_jwt_leeway) / 1000;
	if (jwt_verify(c->w->jwt, cn->password.data, cn->password.len, &chk,
	    (int64_t)time(NULL), user, sizeof(user), &exp, why) == -1) {
		if (c->w->auth != NULL) {
			addr_key(c, key);
			fail_note(c->w->auth, key, clock_mono_ms());
		}
		return AUTH_REFUSED;
	}
	if ((c->username = strdup(user)) == NULL) {
		*why = "out of memory";
		return AUTH_BUSY;
	}
	c->token_exp = exp;
	return AUTH_OK;
}

int
auth_connect(struct conn *c, const struct mqtt_connect *cn, const char **why)
{
	struct worker	*w = c->w;
	struct auth	*a = w->auth;
	struct auth_job	*j, **jp;
	int64_t		 now, delay, bound;
	int		 anonymous_ok = config_num(&w->proc->cfg,
			    OPT_mqtt_allow_anonymous) != 0;

	/* a password shaped like a token is one, user name or not */
	if (w->jwt != NULL && cn->has_password &&
	    jwt_looks_like(cn->password.data, cn->password.len))
		return token_login(c, cn, why);
	if (!cn->has_username) {
		*why = "anonymous access is off (mqtt.allow-anonymous)";
		return anonymous_ok ? AUTH_OK : AUTH_REFUSED;
	}
	if (w->passwd == NULL) {
		*why = "a user name, but no auth.password-file";
		return anonymous_ok ? AUTH_OK : AUTH_REFUSED;
	}
	if (!cn->has_password) {
		*why = "a user name without a password";
		return AUTH_REFUSED;
	}
	if (a == NULL || a->queued >= AUTH_QUEUE_MAX) {
		*why = "too many logins being checked";
		return AUTH_BUSY;
	}
	if ((j = malloc(sizeof(*j) + cn->username.len +
	    cn->password.len)) == NULL) {
		*why = "out of memory";
		return AUTH_BUSY;
	}
	j->next = NULL;
	j->conn_id = c->id;
	j->db = passwd_ref(w->passwd);
	j->ok = 0;
	j->ulen = cn->username.len;
	j->pwlen = cn->password.len;
	memcpy(j->data, cn->username.data, j->ulen);
	memcpy(j->data + j->ulen, cn->password.data, j->pwlen);
	addr_key(c, j->addr);
	a->queued++;
	now = clock_mono_ms();
	bound = config_num(&w->proc->cfg, OPT_auth_failed_login_delay);
	if (bound > config_num(&w->proc->cfg, OPT_server_connect_timeout) / 2)
		bound = config_num(&w->proc->cfg,
		    OPT_server_connect_timeout) / 2;
	if ((delay = fail_delay(a, j->addr, now, bound)) > 0) {
		/* after this address's recent failures: later */
		j->due = now + delay;
		for (jp = &a->deferred; *jp && (*jp)->due <= j->due;
		    jp = &(*jp)->next)
			;
		j->next = *jp;
		*jp = j;
		arm_deferred(a, now);
	} else
		submit(a, j);
	*why = NULL;
	return AUTH_PENDING;
}
