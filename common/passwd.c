/*
 * passwd.c - Mosquitto-compatible password files (see passwd.h).
 *
 * The users are kept sorted by name for a binary search; the digests
 * come from OpenSSL (PBKDF2-HMAC-SHA512 and SHA-512), the comparison is
 * CRYPTO_memcmp() over the raw 64-byte digests, never over base64 text.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "buf.h"
#include "lines.h"
#include "passwd.h"

#define SALT_MAX	64

struct passwd_entry {
	char		*user;
	size_t		 userlen;
	uint8_t		 type;
	uint8_t		 saltlen;
	uint32_t	 iterations;
	uint8_t		 salt[SALT_MAX];
	uint8_t		 hash[PASSWD_HASH_LEN];
	uint8_t		 fingerprint[PASSWD_FINGERPRINT_LEN];
	unsigned	 lineno;
};

struct passwd_db {
	struct passwd_entry	*users;
	size_t			 n, cap;
	unsigned		 refs;
	/* what an unknown user costs: the work of a known one */
	struct passwd_entry	 dummy;
};

/*
 * Strict base64 (RFC 4648, standard alphabet, padded): the decoded
 * length, or -1.
 */
int
passwd_b64_decode(const char *s, size_t len, uint8_t *out, size_t outmax)
{
	uint8_t	 tmp[((SALT_MAX > PASSWD_HASH_LEN ? SALT_MAX :
		    PASSWD_HASH_LEN) + 2) / 3 * 3 + 3];
	size_t	 i, pad = 0;
	int	 n;

	if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(tmp))
		return -1;
	while (pad < 2 && s[len - 1 - pad] == '=')
		pad++;
	for (i = 0; i < len - pad; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' &&
		    s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '+' || s[i] == '/'))
			return -1;
	n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
	if (n < 0 || (size_t)n < pad || (size_t)n - pad > outmax)
		return -1;
	n -= (int)pad;
	memcpy(out, tmp, (size_t)n);
	return n;
}

int
passwd_b64_add(struct buf *b, const void *p, size_t len)
{
	char	 tmp[(SALT_MAX > PASSWD_HASH_LEN ? SALT_MAX :
		    PASSWD_HASH_LEN) / 3 * 4 + 8];
	int	 n;

	if (len > SALT_MAX && len > PASSWD_HASH_LEN)
		return -1;
	n = EVP_EncodeBlock((unsigned char *)tmp, p, (int)len);
	return n < 0 ? -1 : buf_add(b, tmp, (size_t)n);
}

/* Read "$7$I$SALT$HASH" or "$6$SALT$HASH" into e. */
static int
parse_hash(const char *s, size_t len, struct passwd_entry *e,
    const char **why)
{
	size_t		 f;
	unsigned long	 it;
	char		 num[16], *end;
	int		 n;

	if (len < 3 || s[0] != '$' || s[2] != '$' || (s[1] != '6' &&
	    s[1] != '7')) {
		*why = "unknown hash type (not $6$ or $7$)";
		return -1;
	}
	e->type = (uint8_t)(s[1] - '0');
	s += 3;
	len -= 3;
	e->iterations = 1;
	if (e->type == PASSWD_SHA512_PBKDF2) {
		f = line_field(s, len, '$');
		if (f == 0 || f >= sizeof(num) || f == len) {
			*why = "no iteration count";
			return -1;
		}
		memcpy(num, s, f);
		num[f] = '\0';
		errno = 0;
		it = strtoul(num, &end, 10);
		if (*end != '\0' || num[0] < '0' || num[0] > '9' ||
		    errno != 0 || it == 0 || it > PASSWD_MAX_ITERATIONS) {
			*why = "bad iteration count";
			return -1;
		}
		e->iterations = (uint32_t)it;
		s += f + 1;
		len -= f + 1;
	}
	f = line_field(s, len, '$');
	if (f == len || (n = passwd_b64_decode(s, f, e->salt, SALT_MAX)) <= 0) {
		*why = "bad salt";
		return -1;
	}
	e->saltlen = (uint8_t)n;
	s += f + 1;
	len -= f + 1;
	if (line_field(s, len, '$') != len || passwd_b64_decode(s, len, e->hash,
	    PASSWD_HASH_LEN) != PASSWD_HASH_LEN) {
		*why = "bad hash";
		return -1;
	}
	return 0;
}

static int
parse_line(const char *line, size_t len, struct passwd_entry *e,
    const char **why)
{
	const char	*colon = memchr(line, ':', len);

	if (colon == NULL) {
		*why = "no ':' between user and hash";
		return -1;
	}
	if (colon == line) {
		*why = "empty user name";
		return -1;
	}
	e->user = (char *)line;
	e->userlen = (size_t)(colon - line);
	if (parse_hash(colon + 1, len - e->userlen - 1, e, why) == -1)
		return -1;
	passwd_fingerprint_of(colon + 1, len - e->userlen - 1, e->fingerprint);
	return 0;
}

int
passwd_parse_line(const char *line, size_t len, size_t *userlen,
    const char **why)
{
	struct passwd_entry	 e;

	if (parse_line(line, len, &e, why) == -1)
		return -1;
	*userlen = e.userlen;
	return 0;
}

/* The digest of password under e's type, iterations and salt. */
static int
digest(const struct passwd_entry *e, const void *pw, size_t pwlen,
    uint8_t out[PASSWD_HASH_LEN])
{
	EVP_MD_CTX	*ctx;
	unsigned	 n = 0;
	int		 ok;

	if (e->type == PASSWD_SHA512_PBKDF2)
		return PKCS5_PBKDF2_HMAC(pwlen ? pw : "", (int)pwlen, e->salt,
		    e->saltlen, (int)e->iterations, EVP_sha512(),
		    PASSWD_HASH_LEN, out) == 1 ? 0 : -1;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, pw, pwlen) == 1 &&
	    EVP_DigestUpdate(ctx, e->salt, e->saltlen) == 1 &&
	    EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == PASSWD_HASH_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

LINE_USER_CHECK(struct passwd_entry);

/* By name, then line: the first line of a name comes first. */
static int
sort_cmp(const void *a, const void *b)
{
	const struct passwd_entry	*x = a, *y = b;
	int				 c = line_user_cmp(a, b);

	return c != 0 ? c : (x->lineno > y->lineno) - (x->lineno < y->lineno);
}

static const struct passwd_entry *
find(const struct passwd_db *db, const char *user, size_t len)
{
	return line_user_find(db->users, db->n, sizeof(*db->users), user,
	    len);
}

/* Keep e (its user name copied); -1 without memory. */
static int
add(struct passwd_db *db, const struct passwd_entry *e)
{
	struct passwd_entry	*grown;
	size_t			 cap;

	if (db->n == db->cap) {
		cap = db->cap ? db->cap * 2 : 16;
		if ((grown = realloc(db->users, cap * sizeof(*grown))) ==
		    NULL)
			return -1;
		db->users = grown;
		db->cap = cap;
	}
	db->users[db->n] = *e;
	if ((db->users[db->n].user = malloc(e->userlen + 1)) == NULL)
		return -1;
	memcpy(db->users[db->n].user, e->user, e->userlen);
	db->users[db->n].user[e->userlen] = '\0';
	db->n++;
	return 0;
}

int
passwd_load(struct passwd_db **out, const char *path, passwd_bad_line_fn *bad,
    void *arg, char *err, size_t errlen)
{
	FILE	*f;
	int	 rv;

	*out = NULL;
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	rv = passwd_read(out, f, path, bad, arg, err, errlen);
	fclose(f);
	return rv;
}

int
passwd_read(struct passwd_db **out, FILE *f, const char *path,
    passwd_bad_line_fn *bad, void *arg, char *err, size_t errlen)
{
	struct passwd_db	*db;
	struct passwd_entry	 e;
	char			*line = NULL, msg[128];
	size_t			 cap = 0, len, i;
	unsigned		 lineno = 0;
	const char		*why;

	*out = NULL;
	if ((db = calloc(1, sizeof(*db))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	db->refs = 1;
	while (lines_next(f, &line, &cap, &len, &lineno)) {
		if (len == 0 || line[0] == '#')
			continue;
		memset(&e, 0, sizeof(e));
		if (parse_line(line, len, &e, &why) == -1) {
			if (bad)
				bad(arg, path, lineno, why);
			continue;
		}
		e.lineno = lineno;
		if (add(db, &e) == -1) {
			snprintf(err, errlen, "out of memory reading %s", path);
			goto fail;
		}
		if (e.type == PASSWD_SHA512_PBKDF2)
			db->dummy = db->users[db->n - 1];
	}
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	free(line);
	line = NULL;
	if (db->n > 1)
		qsort(db->users, db->n, sizeof(*db->users), sort_cmp);
	/* the first of a name holds; a repeat is reported and dropped */
	for (i = 1; i < db->n; ) {
		if (line_user_cmp(&db->users[i], &db->users[i - 1]) != 0) {
			i++;
			continue;
		}
		if (bad) {
			snprintf(msg, sizeof(msg), "user \"%.64s\" defined "
			    "again; the later line is ignored",
			    db->users[i].user);
			bad(arg, path, 0, msg);
		}
		free(db->users[i].user);
		memmove(&db->users[i], &db->users[i + 1],
		    (db->n - i - 1) * sizeof(*db->users));
		db->n--;
	}
	db->dummy.user = NULL;
	if (db->dummy.type == 0) {
		db->dummy.type = PASSWD_SHA512_PBKDF2;
		db->dummy.iterations = PASSWD_DEFAULT_ITERATIONS;
	}
	db->dummy.saltlen = PASSWD_SALT_LEN;
	*out = db;
	return 0;
fail:
	free(line);
	passwd_free(db);
	return -1;
}

struct passwd_db *
passwd_ref(struct passwd_db *db)
{
	db->refs++;
	return db;
}

void
passwd_free(struct passwd_db *db)
{
	size_t	 i;

	if (db == NULL || --db->refs > 0)
		return;
	for (i = 0; i < db->n; i++)
		free(db->users[i].user);
	OPENSSL_cleanse(db->users, db->cap * sizeof(*db->users));
	free(db->users);
	free(db);
}

size_t
passwd_count(const struct passwd_db *db)
{
	return db->n;
}

int
passwd_same_user(const struct passwd_db *a, const struct passwd_db *b,
    const char *user, size_t userlen)
{
	const struct passwd_entry	*x, *y;

	if (a == NULL || b == NULL || (x = find(a, user, userlen)) == NULL ||
	    (y = find(b, user, userlen)) == NULL)
		return 0;
	return x->type == y->type && x->iterations == y->iterations &&
	    x->saltlen == y->saltlen && memcmp(x->salt, y->salt,
	    x->saltlen) == 0 && memcmp(x->hash, y->hash, PASSWD_HASH_LEN) == 0;
}

void
passwd_fingerprint_of(const char *hash, size_t len,
    uint8_t out[PASSWD_FINGERPRINT_LEN])
{
	uint8_t		 md[EVP_MAX_MD_SIZE];
	unsigned	 n = 0;

	if (EVP_Digest(hash, len, md, &n, EVP_sha256(), NULL) != 1 ||
	    n < PASSWD_FINGERPRINT_LEN)
		memset(md, 0, PASSWD_FINGERPRINT_LEN);	/* matches nothing
							   written */
	memcpy(out, md, PASSWD_FINGERPRINT_LEN);
}

int
passwd_fingerprint(const struct passwd_db *db, const char *user,
    size_t userlen, uint8_t out[PASSWD_FINGERPRINT_LEN])
{
	const struct passwd_entry	*e;

	if (db == NULL || (e = find(db, user, userlen)) == NULL)
		return 0;
	memcpy(out, e->fingerprint, PASSWD_FINGERPRINT_LEN);
	return 1;
}

int
passwd_check(const struct passwd_db *db, const char *user, size_t userlen,
    const void *password, size_t pwlen)
{
	const struct passwd_entry	*e = find(db, user, userlen);
	uint8_t				 got[PASSWD_HASH_LEN];
	int				 ok;

	ok = digest(e ? e : &db->dummy, password, pwlen, got) == 0 &&
	    e != NULL && CRYPTO_memcmp(got, e->hash, PASSWD_HASH_LEN) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}

int
passwd_hash(struct buf *b, enum passwd_type type, uint32_t iterations,
    const void *password, size_t pwlen)
{
	struct passwd_entry	 e;
	char			 num[32];
	int			 rv = -1;

	memset(&e, 0, sizeof(e));
	e.type = (uint8_t)type;
	e.iterations = type == PASSWD_SHA512_PBKDF2 ? iterations : 1;
	e.saltlen = PASSWD_SALT_LEN;
	if ((type != PASSWD_SHA512 && type != PASSWD_SHA512_PBKDF2) ||
	    e.iterations == 0 || e.iterations > PASSWD_MAX_ITERATIONS ||
	    RAND_bytes(e.salt, PASSWD_SALT_LEN) != 1 ||
	    digest(&e, password, pwlen, e.hash) == -1)
		goto out;
	if (type == PASSWD_SHA512_PBKDF2)
		snprintf(num, sizeof(num), "$7$%u$", e.iterations);
	else
		snprintf(num, sizeof(num), "$6$");
	if (buf_add(b, num, strlen(num)) == -1 ||
	    passwd_b64_add(b, e.salt, e.saltlen) == -1 ||
	    buf_add_u8(b, '$') == -1 ||
	    passwd_b64_add(b, e.hash, PASSWD_HASH_LEN) == -1)
		goto out;
	rv = 0;
out:
	OPENSSL_cleanse(&e, sizeof(e));
	return rv;
}
