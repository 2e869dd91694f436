/*
 * scram.c - SCRAM-SHA-256 verifiers and the server's side of the
 * exchange (see scram.h).
 *
 * The messages are those of RFC 5802 section 7, with SHA-256 (RFC 7677):
 *
 *	client-first	gs2-header "n=" user ",r=" c-nonce [",..."]
 *	server-first	"r=" c-nonce s-nonce ",s=" salt ",i=" iterations
 *	client-final	"c=" base64(gs2-header) ",r=" nonce [",..."] ",p=" proof
 *	server-final	"v=" base64(ServerSignature)
 *
 * Only the gs2 headers "n,," and "y,," are taken: no channel binding (MQTT
 * carries no TLS binding data) and no authorization identity.  Names and
 * passwords are compared as the bytes they are (no SASLprep), as
 * mosquitto_passwd hashes them.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "buf.h"
#include "lines.h"
#include "scram.h"

#define SALT_MAX	64
#define NONCE_MAX	256	/* a client nonce's longest */
#define SNONCE_BYTES	18	/* the server's: 24 base64 characters */
#define PREFIX		"SCRAM-SHA-256$"

struct scram_entry {
	char		*user;
	size_t		 userlen;
	uint32_t	 iterations;
	uint8_t		 saltlen;
	uint8_t		 salt[SALT_MAX];
	uint8_t		 stored[SCRAM_KEY_LEN];
	uint8_t		 server[SCRAM_KEY_LEN];
	uint8_t		 binding[PASSWD_FINGERPRINT_LEN];
};

struct scram_db {
	struct scram_entry	*users;
	size_t			 n, cap;
	unsigned		 refs;
	/* made-up salts for unknown users come from it: the digest of the
	 * file, keys included, so nobody outside can compute them */
	uint8_t			 secret[SCRAM_KEY_LEN];
};

struct scram_exchange {
	int		 known;		/* a user with a verifier that counts */
	char		 gs2;		/* 'n' or 'y' */
	char		*user;
	uint8_t		 stored[SCRAM_KEY_LEN];
	uint8_t		 server[SCRAM_KEY_LEN];
	struct buf	 auth;		/* the AuthMessage, as far as known */
	struct buf	 out;		/* the message for the client */
	size_t		 nonce, noncelen;	/* in out: r=... */
	int		 finished;
};

static int
hmac(const uint8_t *key, size_t keylen, const void *data, size_t len,
    uint8_t out[SCRAM_KEY_LEN])
{
	unsigned	 n = 0;

	return HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n) !=
	    NULL && n == SCRAM_KEY_LEN ? 0 : -1;
}

static int
sha256(const void *data, size_t len, uint8_t out[SCRAM_KEY_LEN])
{
	unsigned	 n = 0;

	return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 &&
	    n == SCRAM_KEY_LEN ? 0 : -1;
}

LINE_USER_CHECK(struct scram_entry);

static const struct scram_entry *
find(const struct scram_db *db, const char *user, size_t len)
{
	return line_user_find(db->users, db->n, sizeof(*db->users), user,
	    len);
}

/* A base64 field of exactly `want` bytes (0: 1 to SALT_MAX). */
static int
b64_field(const char *s, size_t len, uint8_t *out, size_t want)
{
	int	 n = passwd_b64_decode(s, len, out, want ? want : SALT_MAX);

	return n > 0 && (want == 0 || (size_t)n == want) ? n : -1;
}

static int
parse_line(const char *line, size_t len, struct scram_entry *e,
    const char **why)
{
	const char	*s;
	char		 num[16], *end;
	unsigned long	 it;
	size_t		 f, left;
	int		 n;

	if ((f = line_field(line, len, ':')) == len || f == 0) {
		*why = f == 0 ? "empty user name" : "no ':' after the user";
		return -1;
	}
	e->user = (char *)line;
	e->userlen = f;
	s = line + f + 1;
	left = len - f - 1;
	if (left < sizeof(PREFIX) - 1 || memcmp(s, PREFIX,
	    sizeof(PREFIX) - 1) != 0) {
		*why = "not a SCRAM-SHA-256 verifier";
		return -1;
	}
	s += sizeof(PREFIX) - 1;
	left -= sizeof(PREFIX) - 1;
	/* ITERATIONS: */
	if ((f = line_field(s, left, ':')) == left || f == 0 ||
	    f >= sizeof(num)) {
		*why = "no iteration count";
		return -1;
	}
	memcpy(num, s, f);
	num[f] = '\0';
	errno = 0;
	it = strtoul(num, &end, 10);
	if (*end != '\0' || num[0] < '0' || num[0] > '9' || errno != 0 ||
	    it == 0 || it > PASSWD_MAX_ITERATIONS) {
		*why = "bad iteration count";
		return -1;
	}
	e->iterations = (uint32_t)it;
	s += f + 1;
	left -= f + 1;
	/* SALT$ */
	if ((f = line_field(s, left, '$')) == left || (n = b64_field(s, f,
	    e->salt, 0)) == -1) {
		*why = "bad salt";
		return -1;
	}
	e->saltlen = (uint8_t)n;
	s += f + 1;
	left -= f + 1;
	/* STOREDKEY:SERVERKEY:BINDING */
	if ((f = line_field(s, left, ':')) == left || b64_field(s, f, e->stored,
	    SCRAM_KEY_LEN) == -1) {
		*why = "bad stored key";
		return -1;
	}
	s += f + 1;
	left -= f + 1;
	if ((f = line_field(s, left, ':')) == left || b64_field(s, f, e->server,
	    SCRAM_KEY_LEN) == -1) {
		*why = "bad server key";
		return -1;
	}
	s += f + 1;
	left -= f + 1;
	if (b64_field(s, left, e->binding, PASSWD_FINGERPRINT_LEN) == -1) {
		*why = "bad binding to the password file";
		return -1;
	}
	return 0;
}

int
scram_parse_line(const char *line, size_t len, size_t *userlen,
    const char **why)
{
	struct scram_entry	 e;

	if (parse_line(line, len, &e, why) == -1)
		return -1;
	*userlen = e.userlen;
	return 0;
}

int
scram_read(struct scram_db **out, FILE *f, const char *name,
    passwd_bad_line_fn *bad, void *arg, char *err, size_t errlen)
{
	struct scram_db		*db;
	struct scram_entry	 e, *grown;
	EVP_MD_CTX		*md = NULL;
	char			*line = NULL, msg[128];
	size_t			 cap = 0, len, i, k, keep, grow;
	unsigned		 lineno = 0, n = 0;
	const char		*why;

	*out = NULL;
	if ((db = calloc(1, sizeof(*db))) == NULL || (md = EVP_MD_CTX_new()) ==
	    NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	db->refs = 1;
	while (lines_next(f, &line, &cap, &len, &lineno)) {
		if (EVP_DigestUpdate(md, line, len) != 1 ||
		    EVP_DigestUpdate(md, "\n", 1) != 1) {
			snprintf(err, errlen, "cannot digest %s", name);
			goto fail;
		}
		if (len == 0 || line[0] == '#')
			continue;
		memset(&e, 0, sizeof(e));
		if (parse_line(line, len, &e, &why) == -1) {
			if (bad)
				bad(arg, name, lineno, why);
			continue;
		}
		if (db->n == db->cap) {
			grow = db->cap ? db->cap * 2 : 16;
			if ((grown = realloc(db->users, grow *
			    sizeof(*grown))) == NULL)
				goto nomem;
			db->users = grown;
			db->cap = grow;
		}
		if ((e.user = strndup(e.user, e.userlen)) == NULL)
			goto nomem;
		db->users[db->n++] = e;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read %s: %s", name,
		    strerror(errno));
		goto fail;
	}
	if (EVP_DigestFinal_ex(md, db->secret, &n) != 1 || n !=
	    SCRAM_KEY_LEN) {
		snprintf(err, errlen, "cannot digest %s", name);
		goto fail;
	}
	EVP_MD_CTX_free(md);
	free(line);
	if (db->n > 1)
		qsort(db->users, db->n, sizeof(*db->users), line_user_cmp);
	/* a name with more than one verifier: which was first is gone with
	 * the sort, so none of them is used */
	for (i = 0, keep = 0; i < db->n; i = k) {
		for (k = i + 1; k < db->n && line_user_cmp(&db->users[k],
		    &db->users[i]) == 0; k++)
			;
		if (k - i == 1) {
			db->users[keep++] = db->users[i];
			continue;
		}
		if (bad) {
			snprintf(msg, sizeof(msg), "user \"%.64s\" has more "
			    "than one verifier; none is used",
			    db->users[i].user);
			bad(arg, name, 0, msg);
		}
		for (; i < k; i++)
			free(db->users[i].user);
	}
	db->n = keep;
	*out = db;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory reading %s", name);
fail:
	EVP_MD_CTX_free(md);
	free(line);
	scram_free(db);
	return -1;
}

struct scram_db *
scram_ref(struct scram_db *db)
{
	db->refs++;
	return db;
}

void
scram_free(struct scram_db *db)
{
	size_t	 i;

	if (db == NULL || --db->refs > 0)
		return;
	for (i = 0; i < db->n; i++)
		free(db->users[i].user);
	if (db->users)
		OPENSSL_cleanse(db->users, db->cap * sizeof(*db->users));
	free(db->users);
	OPENSSL_cleanse(db, sizeof(*db));
	free(db);
}

size_t
scram_count(const struct scram_db *db)
{
	return db->n;
}

int
scram_same_user(const struct scram_db *a, const struct scram_db *b,
    const char *user, size_t userlen)
{
	const struct scram_entry	*x, *y;

	if (a == NULL || b == NULL || (x = find(a, user, userlen)) == NULL ||
	    (y = find(b, user, userlen)) == NULL)
		return 0;
	return x->iterations == y->iterations && x->saltlen == y->saltlen &&
	    memcmp(x->salt, y->salt, x->saltlen) == 0 && memcmp(x->stored,
	    y->stored, SCRAM_KEY_LEN) == 0 && memcmp(x->server, y->server,
	    SCRAM_KEY_LEN) == 0 && memcmp(x->binding, y->binding,
	    PASSWD_FINGERPRINT_LEN) == 0;
}

int
scram_verifier(struct buf *b, uint32_t iterations, const void *password,
    size_t pwlen, const char *hash, size_t hashlen, const uint8_t *salt)
{
	uint8_t		 s[SCRAM_SALT_LEN], salted[SCRAM_KEY_LEN];
	uint8_t		 client[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
	uint8_t		 server[SCRAM_KEY_LEN];
	uint8_t		 fp[PASSWD_FINGERPRINT_LEN];
	char		 num[48];
	int		 rv = -1;

	if (salt != NULL)
		memcpy(s, salt, sizeof(s));
	else if (RAND_bytes(s, sizeof(s)) != 1)
		return -1;
	if (iterations == 0 || PKCS5_PBKDF2_HMAC(pwlen ? password : "",
	    (int)pwlen, s, sizeof(s), (int)iterations, EVP_sha256(),
	    SCRAM_KEY_LEN, salted) != 1 ||
	    hmac(salted, sizeof(salted), "Client Key", 10, client) == -1 ||
	    sha256(client, sizeof(client), stored) == -1 ||
	    hmac(salted, sizeof(salted), "Server Key", 10, server) == -1)
		goto out;
	passwd_fingerprint_of(hash, hashlen, fp);
	snprintf(num, sizeof(num), PREFIX "%u:", iterations);
	if (buf_add(b, num, strlen(num)) == -1 ||
	    passwd_b64_add(b, s, sizeof(s)) == -1 ||
	    buf_add_u8(b, '$') == -1 ||
	    passwd_b64_add(b, stored, sizeof(stored)) == -1 ||
	    buf_add_u8(b, ':') == -1 ||
	    passwd_b64_add(b, server, sizeof(server)) == -1 ||
	    buf_add_u8(b, ':') == -1 ||
	    passwd_b64_add(b, fp, sizeof(fp)) == -1)
		goto out;
	rv = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client, sizeof(client));
	OPENSSL_cleanse(server, sizeof(server));
	return rv;
}

/* A nonce's characters: printable ASCII but ',' (RFC 5802 7). */
static int
nonce_ok(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > NONCE_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return 0;
	return 1;
}

/* "n=" saslname into a new string: "=2C" is ',', "=3D" is '='. */
static char *
user_name(const char *s, size_t len)
{
	char	*u, *p;
	size_t	 i;

	if (len == 0 || (u = p = malloc(len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (s[i] == '\0')
			goto bad;
		if (s[i] != '=') {
			*p++ = s[i];
			continue;
		}
		if (len - i < 3)
			goto bad;
		if (memcmp(s + i, "=2C", 3) == 0)
			*p++ = ',';
		else if (memcmp(s + i, "=3D", 3) == 0)
			*p++ = '=';
		else
			goto bad;
		i += 2;
	}
	*p = '\0';
	return u;
bad:
	free(u);
	return NULL;
}

/* The verifier `user` would have if it had one: from the file's secret. */
static void
made_up(const struct scram_db *db, const char *user, size_t len,
    uint8_t salt[SCRAM_SALT_LEN], uint8_t stored[SCRAM_KEY_LEN])
{
	uint8_t		 d[SCRAM_KEY_LEN];
	struct buf	 b = BUF_INITIALIZER;

	buf_add(&b, "salt:", 5);
	buf_add(&b, user, len);
	if (buf_failed(&b) || hmac(db->secret, sizeof(db->secret), b.data,
	    b.len, d) == -1)
		memset(d, 0, sizeof(d));
	memcpy(salt, d, SCRAM_SALT_LEN);
	/* a key nobody knows: no proof matches it */
	if (RAND_bytes(stored, SCRAM_KEY_LEN) != 1)
		memset(stored, 0xa5, SCRAM_KEY_LEN);
	buf_free(&b);
}

struct scram_exchange *
scram_begin(const struct scram_db *db, const struct passwd_db *pw,
    const void *msg, size_t len, const char *nonce, const char **why)
{
	const char		*s = msg, *bare, *cn;
	const struct scram_entry *e;
	struct scram_exchange	*x;
	uint8_t			 fp[PASSWD_FINGERPRINT_LEN];
	uint8_t			 salt[SCRAM_SALT_LEN], rnd[SNONCE_BYTES];
	const uint8_t		*sp;
	size_t			 f, left, cnlen, saltlen;
	uint32_t		 iterations;
	char			 num[32];

	/* gs2-header: "n,," or "y,," */
	if (len >= 2 && s[0] == 'p' && s[1] == '=') {
		*why = "SCRAM channel binding is not offered";
		return NULL;
	}
	if (len < 3 || (s[0] != 'n' && s[0] != 'y') || s[1] != ',') {
		*why = "SCRAM client-first-message without a gs2 header";
		return NULL;
	}
	if (s[2] != ',') {
		*why = "SCRAM authorization identity is not accepted";
		return NULL;
	}
	bare = s + 3;
	left = len - 3;
	if (left >= 2 && bare[0] == 'm' && bare[1] == '=') {
		*why = "SCRAM mandatory extension not supported";
		return NULL;
	}
	if (left < 2 || memcmp(bare, "n=", 2) != 0) {
		*why = "SCRAM client-first-message without a user name";
		return NULL;
	}
	f = line_field(bare + 2, left - 2, ',');
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	x->gs2 = s[0];
	buf_init(&x->auth);
	buf_init(&x->out);
	if ((x->user = user_name(bare + 2, f)) == NULL) {
		*why = "SCRAM user name empty or badly escaped";
		goto fail;
	}
	cn = bare + 2 + f;
	cnlen = left - 2 - f;
	if (cnlen < 3 || memcmp(cn, ",r=", 3) != 0) {
		*why = "SCRAM client-first-message without a nonce";
		goto fail;
	}
	cn += 3;
	cnlen = line_field(cn, cnlen - 3, ',');
	if (!nonce_ok(cn, cnlen)) {
		*why = "SCRAM client nonce empty, too long or not printable";
		goto fail;
	}

	e = find(db, x->user, strlen(x->user));
	x->known = e != NULL && passwd_fingerprint(pw, x->user,
	    strlen(x->user), fp) && memcmp(fp, e->binding, sizeof(fp)) == 0;
	if (x->known) {
		sp = e->salt;
		saltlen = e->saltlen;
		iterations = e->iterations;
		memcpy(x->stored, e->stored, SCRAM_KEY_LEN);
		memcpy(x->server, e->server, SCRAM_KEY_LEN);
	} else {
		made_up(db, x->user, strlen(x->user), salt, x->stored);
		sp = salt;
		saltlen = sizeof(salt);
		iterations = SCRAM_MIN_ITERATIONS;
	}

	/* server-first: r=CNONCE+SNONCE,s=SALT,i=ITERATIONS */
	buf_add(&x->out, "r=", 2);
	x->nonce = x->out.len;
	buf_add(&x->out, cn, cnlen);
	if (nonce != NULL)
		buf_add(&x->out, nonce, strlen(nonce));
	else if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		*why = "no random bytes for a nonce";
		goto fail;
	} else
		passwd_b64_add(&x->out, rnd, sizeof(rnd));
	x->noncelen = x->out.len - x->nonce;
	buf_add(&x->out, ",s=", 3);
	passwd_b64_add(&x->out, sp, saltlen);
	snprintf(num, sizeof(num), ",i=%u", iterations);
	buf_add(&x->out, num, strlen(num));
	/* AuthMessage: client-first-bare "," server-first "," ... */
	buf_add(&x->auth, bare, left);
	buf_add_u8(&x->auth, ',');
	buf_add(&x->auth, x->out.data, x->out.len);
	buf_add_u8(&x->auth, ',');
	if (buf_failed(&x->out) || buf_failed(&x->auth)) {
		*why = "out of memory";
		goto fail;
	}
	return x;
fail:
	scram_end(x);
	return NULL;
}

int
scram_finish(struct scram_exchange *x, const void *msg, size_t len,
    const char **why)
{
	const char	*s = msg, *want = x->gs2 == 'y' ? "c=eSws," : "c=biws,";
	const char	*p;
	uint8_t		 proof[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN];
	uint8_t		 key[SCRAM_KEY_LEN], h[SCRAM_KEY_LEN];
	size_t		 i, bare;
	int		 ok = 0;

	if (x->finished) {
		*why = "SCRAM exchange already finished";
		return 0;
	}
	x->finished = 1;
	/* c=base64(gs2-header),r=NONCE[,...],p=PROOF */
	if (len < 7 || memcmp(s, want, 7) != 0) {
		*why = "SCRAM channel binding differs from the gs2 header";
		return 0;
	}
	if (len - 7 < 2 + x->noncelen || memcmp(s + 7, "r=", 2) != 0 ||
	    memcmp(s + 9, x->out.data + x->nonce, x->noncelen) != 0 ||
	    (len > 9 + x->noncelen && s[9 + x->noncelen] != ',')) {
		*why = "SCRAM nonce differs";
		return 0;
	}
	/* the proof is the last attribute */
	for (p = NULL, i = len; i >= 3; i--)
		if (memcmp(s + i - 3, ",p=", 3) == 0) {
			p = s + i;
			break;
		}
	if (p == NULL || (size_t)(p - s) < 9 + x->noncelen + 3 ||
	    b64_field(p, len - (size_t)(p - s), proof, SCRAM_KEY_LEN) == -1) {
		*why = "SCRAM proof missing or malformed";
		return 0;
	}
	bare = (size_t)(p - s) - 3;	/* client-final-without-proof */
	if (buf_add(&x->auth, s, bare) == -1 || hmac(x->stored,
	    SCRAM_KEY_LEN, x->auth.data, x->auth.len, sig) == -1) {
		*why = "out of memory";
		return 0;
	}
	for (i = 0; i < SCRAM_KEY_LEN; i++)
		key[i] = proof[i] ^ sig[i];
	ok = sha256(key, sizeof(key), h) == 0 && CRYPTO_memcmp(h, x->stored,
	    SCRAM_KEY_LEN) == 0 && x->known;
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok) {
		*why = "SCRAM proof not accepted";
		return 0;
	}
	/* server-final: v=ServerSignature */
	buf_truncate(&x->out, 0);
	if (hmac(x->server, SCRAM_KEY_LEN, x->auth.data, x->auth.len,
	    sig) == -1 || buf_add(&x->out, "v=", 2) == -1 ||
	    passwd_b64_add(&x->out, sig, sizeof(sig)) == -1) {
		*why = "out of memory";
		return 0;
	}
	return 1;
}

const uint8_t *
scram_message(const struct scram_exchange *x, size_t *len)
{
	*len = x->out.len;
	return x->out.data;
}

const char *
scram_user(const struct scram_exchange *x)
{
	return x->user;
}

void
scram_end(struct scram_exchange *x)
{
	if (x == NULL)
		return;
	free(x->user);
	if (x->auth.data)
		OPENSSL_cleanse(x->auth.data, x->auth.cap);
	buf_free(&x->auth);
	buf_free(&x->out);
	OPENSSL_cleanse(x, sizeof(*x));
	free(x);
}
