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
 * server.connect-timeout), for a minute after the last one.  A delay,
 * not a lockout: the right password still gets in, only later; guesses
 * from one address come at most a few a second.  The failures are
 * counted in a table every worker shares (common/failtab.h), so that
 * spreading guesses over the workers gains nothing.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "acl.h"
#include "clock.h"
#include "failtab.h"
#include "hash.h"
#include "jwt.h"
#include "log.h"
#include "passwd.h"
#include "scram.h"
#include "worker.h"

#define AUTH_QUEUE_MAX	1024	/* checks waiting; beyond, 0x89 */
#define AUTH_DELAY_MS	250	/* after the first failure */

struct auth_job {
	struct auth_job		*next;
	uint64_t		 conn_id;
	struct failtab_key	 addr;
	int64_t			 due;		/* deferred: monotonic ms */
	struct passwd_db	*db;		/* a reference; NULL: SCRAM */
	struct scram_exchange	*x;		/* SCRAM: the exchange */
	int			 ok;
	size_t			 ulen, pwlen;	/* SCRAM: 0, its message */
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
	struct failtab		*fails;		/* the worker's */
};

static void	 reauth_done(struct conn *, int);

static uint32_t
now_s(void)
{
	return (uint32_t)(clock_mono_ms() / 1000);
}

/* How long a login from this address waits before it is checked. */
static int64_t
fail_delay(struct auth *a, const struct failtab_key *key, int64_t bound)
{
	uint32_t	 n = failtab_count(a->fails, key, now_s());
	int64_t		 d;

	if (n == 0)
		return 0;
	d = n > 16 ? bound : (int64_t)AUTH_DELAY_MS << (n - 1);
	return d < bound ? d : bound;
}

static void
fail_note(struct worker *w, const struct failtab_key *key)
{
	w->stats.auth_failures++;
	if (key->tag != 0)
		failtab_note(w->auth->fails, key, now_s());
}

static void
job_free(struct auth_job *j)
{
	OPENSSL_cleanse(j->data, j->ulen + j->pwlen);
	scram_end(j->x);
	passwd_free(j->db);
	free(j);
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
	const char	*why;

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

		if (j->x != NULL)
			j->ok = scram_finish(j->x, j->data, j->pwlen, &why);
		else
			j->ok = passwd_check(j->db, (const char *)j->data,
			    j->ulen, j->data + j->ulen, j->pwlen);
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
			fail_note(w, &j->addr);
		c = idmap_get(&w->conns_by_id, j->conn_id);
		if (j->x != NULL && c != NULL && c->rare->auth_step ==
		    AUTH_STEP_CHECK) {
			/* auth_step set: its rare fields are made */
			conn_rare(c)->scram = j->x;
			j->x = NULL;
			conn_rare(c)->auth_step = AUTH_STEP_NONE;
			if (c->state == CONN_AUTH)
				connect_authenticated(c, j->ok);
			else
				reauth_done(c, j->ok);
		} else if (j->x == NULL && c != NULL && c->state == CONN_AUTH)
			connect_authenticated(c, j->ok);
		job_free(j);
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
	if (w->fails == NULL && ((w->fails = calloc(1, failtab_size())) ==
	    NULL || failtab_init(w->fails) == -1)) {
		log_error("cannot make a failed login table", "");
		free(w->fails);
		w->fails = NULL;
		free(a);
		return -1;
	}
	a->fails = w->fails;
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
		job_free(j);
	}
	for (j = a->done; j; j = next) {
		next = j->next;
		job_free(j);
	}
	for (j = a->deferred; j; j = next) {
		next = j->next;
		job_free(j);
	}
	if (w->fails_shared)
		munmap(w->fails, failtab_size());
	else
		free(w->fails);
	w->fails = NULL;
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
drop_changed_users(struct worker *w, const struct passwd_db *pw,
    const struct scram_db *sc)
{
	struct conn	*c, *nextc;
	size_t		 len;

	for (c = w->conns; c; c = nextc) {
		nextc = c->next;
		if (!(c->connack_flags & CONN_BY_PASSWORD) || c->username ==
		    NULL || c->state == CONN_CLOSING)
			continue;
		len = strlen(c->username);
		if (!passwd_same_user(w->passwd, pw, c->username, len) ||
		    ((c->connack_flags & CONN_BY_SCRAM) &&
		    !scram_same_user(w->scram, sc, c->username, len)))
			conn_close(c, MQTT_RC_ADMINISTRATIVE_ACTION, "its user "
			    "was removed or its password changed");
	}
}

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
auth_set_failtab(struct worker *w, int fd)
{
	struct stat	 st;
	void		*mem;

	if (fd == -1)
		return;
	if (w->fails_shared || fstat(fd, &st) == -1 ||
	    (size_t)st.st_size != failtab_size() || (mem = mmap(NULL,
	    failtab_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
	    MAP_FAILED) {
		log_warnx("shared failed login table not taken; failures "
		    "counted by this worker alone", "");
		close(fd);
		return;
	}
	close(fd);
	if (failtab_of(mem, failtab_size()) == NULL) {
		log_warnx("shared failed login table not taken; failures "
		    "counted by this worker alone", "");
		munmap(mem, failtab_size());
		return;
	}
	/* before the loop starts (or after a restart): nobody counts in
	 * a private table yet that would be lost */
	free(w->fails);
	w->fails = mem;
	w->fails_shared = 1;
	if (w->auth != NULL)
		w->auth->fails = mem;
}

/*
 * A file the supervisor sent (IPC_AUTH_PASSWORD_FILE, _SCRAM_FILE,
 * _ACL_FILE or _JWT_KEY; fd: a sealed memory file, -1: none configured
 * any more).  The supervisor checked it; its bad lines were logged
 * there.  A password file and its verifiers apply to the next logins;
 * an ACL file to everything from now on, the connections already in
 * included.
 */
void
auth_set_file(struct worker *w, int kind, int fd, const char *name)
{
	struct passwd_db	*db = NULL;
	struct scram_db		*sdb = NULL;
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
		if (kind == IPC_AUTH_PASSWORD_FILE)
			rv = passwd_read(&db, f, name, NULL, NULL, err,
			    sizeof(err));
		else if (kind == IPC_AUTH_SCRAM_FILE)
			rv = scram_read(&sdb, f, name, NULL, NULL, err,
			    sizeof(err));
		else
			rv = acl_read(&acl, f, name, err, sizeof(err));
		fclose(f);
	}
	if (rv == -1) {
		log_error("file not taken; the previous one stays",
		    "file=%s error=\"%s\"", name, err);
		return;
	}
	if (kind == IPC_AUTH_PASSWORD_FILE) {
		drop_changed_users(w, db, w->scram);
		passwd_free(w->passwd);
		w->passwd = db;
	} else if (kind == IPC_AUTH_SCRAM_FILE) {
		drop_changed_users(w, w->passwd, sdb);
		scram_free(w->scram);
		w->scram = sdb;
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
	struct failtab_key	 key;
	struct conn_rare	*r;
	char			 user[256];
	int64_t			 exp;

	chk.username_claim = config_str(cfg, OPT_auth_jwt_username_claim);
	chk.issuer = config_str(cfg, OPT_auth_jwt_issuer);
	chk.audience = config_str(cfg, OPT_auth_jwt_audience);
	chk.leeway = config_num(cfg, OPT_auth_jwt_leeway) / 1000;
	if (jwt_verify(c->w->jwt, cn->password.data, cn->password.len, &chk,
	    (int64_t)time(NULL), user, sizeof(user), &exp, why) == -1) {
		if (c->w->auth != NULL && failtab_key(&c->peer.sa, &key) == 0)
			fail_note(c->w, &key);
		return AUTH_REFUSED;
	}
	if ((r = conn_rare(c)) == NULL ||
	    (c->username = strdup(user)) == NULL) {
		*why = "out of memory";
		return AUTH_BUSY;
	}
	r->token_exp = exp;
	return AUTH_OK;
}

/*
 * A check goes to the thread, or first waits out its address's delay
 * after recent failures.
 */
static void
enqueue(struct conn *c, struct auth_job *j)
{
	struct worker	*w = c->w;
	struct auth	*a = w->auth;
	struct auth_job	**jp;
	int64_t		 now, delay, bound;

	j->conn_id = c->id;
	(void)failtab_key(&c->peer.sa, &j->addr);
	a->queued++;
	now = clock_mono_ms();
	bound = config_num(&w->proc->cfg, OPT_auth_failed_login_delay);
	if (bound > config_num(&w->proc->cfg, OPT_server_connect_timeout) / 2)
		bound = config_num(&w->proc->cfg,
		    OPT_server_connect_timeout) / 2;
	if ((delay = fail_delay(a, &j->addr, bound)) > 0) {
		j->due = now + delay;
		for (jp = &a->deferred; *jp && (*jp)->due <= j->due;
		    jp = &(*jp)->next)
			;
		j->next = *jp;
		*jp = j;
		arm_deferred(a, now);
	} else
		submit(a, j);
}

int
auth_connect(struct conn *c, const struct mqtt_connect *cn, const char **why)
{
	struct worker	*w = c->w;
	struct auth	*a = w->auth;
	struct auth_job	*j;
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
	memset(j, 0, sizeof(*j));
	j->db = passwd_ref(w->passwd);
	j->ulen = cn->username.len;
	j->pwlen = cn->password.len;
	memcpy(j->data, cn->username.data, j->ulen);
	memcpy(j->data + j->ulen, cn->password.data, j->pwlen);
	enqueue(c, j);
	*why = NULL;
	return AUTH_PENDING;
}

/*
 * MQTT 5 enhanced authentication (4.12): SCRAM-SHA-256 against the
 * verifiers beside auth.password-file (common/scram.h).  The exchange:
 *
 *	CONNECT  method, client-first	AUTH 0x19  method, client-first
 *	AUTH 0x18 server-first		AUTH 0x18  server-first
 *	AUTH 0x18 client-final		AUTH 0x18  client-final
 *	CONNACK  server-final		AUTH 0x00  server-final
 *	(re-authentication, on the right, while traffic flows)
 *
 * The first step costs a few digests and runs on the loop; the proof
 * goes through the authentication thread like a password, so a failed
 * one slows its address down the same way.  A certificate that names the
 * user (tls.use-identity-as-username) is the authentication: no method
 * is taken beside it.
 */
int
auth_method_known(const struct conn *c, const struct mqtt_props *p)
{
	const struct mqtt_view	*m = &p->authentication_method;

	return c->w->scram != NULL && c->w->passwd != NULL &&
	    c->rare->tls_cn == NULL && m->len == sizeof(SCRAM_METHOD) - 1 &&
	    memcmp(m->data, SCRAM_METHOD, m->len) == 0;
}

void
auth_scram_props(const struct conn *c, struct mqtt_props *p)
{
	size_t	 len;

	p->authentication_method.data = (const uint8_t *)SCRAM_METHOD;
	p->authentication_method.len = sizeof(SCRAM_METHOD) - 1;
	mqtt_props_set(p, MQTT_PROP_AUTHENTICATION_METHOD);
	p->authentication_data.data = scram_message(c->rare->scram, &len);
	p->authentication_data.len = len;
	mqtt_props_set(p, MQTT_PROP_AUTHENTICATION_DATA);
}

static void
send_auth(struct conn *c, uint8_t reason)
{
	struct mqtt_packet	 pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_AUTH;
	pkt.auth.reason = reason;
	auth_scram_props(c, &pkt.auth.props);
	conn_send_packet(c, &pkt);
}

int
auth_scram_begin(struct conn *c, const struct mqtt_props *p, const char **why)
{
	struct worker		*w = c->w;
	struct scram_exchange	*x;
	struct conn_rare	*r;
	const struct mqtt_view	*d = &p->authentication_data;
	int			 has = mqtt_props_has(p,
				    MQTT_PROP_AUTHENTICATION_DATA);

	if (w->scram == NULL || w->passwd == NULL) {
		*why = "no SCRAM verifiers (auth.password-file)";
		return -1;
	}
	if ((x = scram_begin(w->scram, w->passwd, has ? d->data : NULL,
	    has ? d->len : 0, NULL, why)) == NULL)
		return -1;
	/* re-authentication proves the same identity again */
	if (c->state == CONN_ACTIVE && (c->username == NULL ||
	    strcmp(scram_user(x), c->username) != 0)) {
		scram_end(x);
		*why = "re-authentication as another user";
		return -1;
	}
	if ((r = conn_rare(c)) == NULL) {
		scram_end(x);
		*why = "out of memory";
		return -1;
	}
	scram_end(r->scram);
	r->scram = x;
	r->auth_step = AUTH_STEP_FINAL;
	send_auth(c, MQTT_RC_CONTINUE_AUTHENTICATION);
	return 0;
}

/* Before CONNACK a CONNACK says it; after, a DISCONNECT. */
static void
auth_refuse(struct conn *c, uint8_t reason, const char *why)
{
	if (c->state == CONN_AUTH)
		connect_refuse(c, reason, why);
	else
		conn_close(c, reason, why);
}

/* The re-authentication's proof was checked. */
static void
reauth_done(struct conn *c, int ok)
{
	char	 addr[64];

	if (ok != 1) {
		conn_close(c, ok == 0 ? MQTT_RC_NOT_AUTHORIZED :
		    MQTT_RC_SERVER_BUSY, "re-authentication failed");
		return;
	}
	send_auth(c, MQTT_RC_SUCCESS);
	auth_scram_done(c);
	log_info("client re-authenticated", "client=%.*s addr=%s user=%s",
	    (int)c->client_id_len, c->client_id, conn_addr(c, addr,
	    sizeof(addr)), c->username);
}

/* The exchange is over (its server-final-message went out). */
void
auth_scram_done(struct conn *c)
{
	if (c->rare->scram == NULL)
		return;
	scram_end(c->rare->scram);
	conn_rare(c)->scram = NULL;	/* it was set: the fields are made */
}

/* The client-final-message: its proof goes to the thread. */
static void
scram_final(struct conn *c, const struct mqtt_props *p)
{
	struct auth		*a = c->w->auth;
	struct auth_job		*j;
	struct conn_rare	*r;
	const struct mqtt_view	*d = &p->authentication_data;
	size_t			 len = mqtt_props_has(p,
				    MQTT_PROP_AUTHENTICATION_DATA) ? d->len : 0;

	if (a == NULL || a->queued >= AUTH_QUEUE_MAX) {
		auth_refuse(c, MQTT_RC_SERVER_BUSY, "too many logins being "
		    "checked");
		return;
	}
	if ((r = conn_rare(c)) == NULL ||
	    (j = malloc(sizeof(*j) + len)) == NULL) {
		auth_refuse(c, MQTT_RC_SERVER_BUSY, "out of memory");
		return;
	}
	memset(j, 0, sizeof(*j));
	j->pwlen = len;
	if (len > 0)
		memcpy(j->data, d->data, len);
	j->x = r->scram;
	r->scram = NULL;
	r->auth_step = AUTH_STEP_CHECK;
	/* before CONNACK nothing else may come: not read meanwhile */
	if (c->state == CONN_AUTH)
		conn_pause(c, PAUSE_CLAIM, 1);
	enqueue(c, j);
}

void
auth_packet(struct conn *c, const struct mqtt_packet *pkt)
{
	const struct mqtt_reason_packet	*ap = &pkt->auth;
	const struct mqtt_view		*m = &ap->props.authentication_method;
	const char			*why;

	/* AUTH only where CONNECT named a method [MQTT-4.12.0-7], and
	 * always that method [MQTT-4.12.0-5], [MQTT-4.12.1-1] */
	if (!(c->connack_flags & CONN_BY_SCRAM) &&
	    c->rare->auth_step == AUTH_STEP_NONE) {
		auth_refuse(c, MQTT_RC_PROTOCOL_ERROR, "AUTH without an "
		    "authentication method in CONNECT");
		return;
	}
	if (m->len != sizeof(SCRAM_METHOD) - 1 || memcmp(m->data,
	    SCRAM_METHOD, m->len) != 0) {
		auth_refuse(c, MQTT_RC_PROTOCOL_ERROR, "AUTH with another "
		    "authentication method than CONNECT's");
		return;
	}
	switch (ap->reason) {
	case MQTT_RC_CONTINUE_AUTHENTICATION:
		if (c->rare->auth_step != AUTH_STEP_FINAL) {
			auth_refuse(c, MQTT_RC_PROTOCOL_ERROR, "AUTH 0x18 "
			    "where no SCRAM step was asked for");
			return;
		}
		scram_final(c, &ap->props);
		return;
	case MQTT_RC_REAUTHENTICATE:
		if (c->state != CONN_ACTIVE || c->rare->auth_step !=
		    AUTH_STEP_NONE) {
			auth_refuse(c, MQTT_RC_PROTOCOL_ERROR, "AUTH 0x19 "
			    "during an authentication");
			return;
		}
		if (auth_scram_begin(c, &ap->props, &why) == -1)
			conn_close(c, MQTT_RC_NOT_AUTHORIZED, why);
		return;
	default:
		auth_refuse(c, MQTT_RC_PROTOCOL_ERROR, "AUTH 0x00 from a "
		    "client");
		return;
	}
}
