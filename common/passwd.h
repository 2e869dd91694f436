/*
 * passwd.h - password files in the format of Mosquitto 2.0's
 * mosquitto_passwd, read and written.
 *
 * One user a line, "USER:HASH":
 *
 *	$7$ITERATIONS$SALT$HASH	PBKDF2-HMAC-SHA512 (mosquitto_passwd's
 *				default since 2.0; 101 iterations unless -I)
 *	$6$SALT$HASH		SHA-512 of the password then the salt
 *				(mosquitto_passwd before 2.0, and -H sha512)
 *
 * SALT and HASH are standard base64 (a 12-byte salt, a 64-byte hash as
 * mosquitto_passwd writes them).  Empty lines and lines starting with '#'
 * are skipped.  A line that cannot be read is reported (file, line, why)
 * and left out; the rest of the file still loads, as Mosquitto does.
 *
 * Checking a password compares fixed-length digests in constant time,
 * and an unknown user costs the same work as a known one, so neither the
 * answer's time nor its content says which users exist.
 */
#ifndef PMQ_PASSWD_H
#define PMQ_PASSWD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct buf;
struct passwd_db;

enum passwd_type {
	PASSWD_SHA512 = 6,		/* $6$ */
	PASSWD_SHA512_PBKDF2 = 7,	/* $7$ */
};

#define PASSWD_DEFAULT_ITERATIONS	101	/* as mosquitto_passwd */
#define PASSWD_SALT_LEN			12
#define PASSWD_HASH_LEN			64
#define PASSWD_MAX_ITERATIONS		100000000u
#define PASSWD_FINGERPRINT_LEN		16

/* A line left out of the file: its number (from 1) and why. */
typedef void	 passwd_bad_line_fn(void *arg, const char *path,
		    unsigned line, const char *why);

/*
 * Read `path`.  Returns 0 and *out (possibly with no users), or -1 with
 * a message in err when the file cannot be read at all.
 */
int	 passwd_load(struct passwd_db **out, const char *path,
	    passwd_bad_line_fn *bad, void *arg, char *err, size_t errlen);
/* The same from an open file; `name` is what messages call it. */
int	 passwd_read(struct passwd_db **out, FILE *f, const char *name,
	    passwd_bad_line_fn *bad, void *arg, char *err, size_t errlen);
/* A database is counted: passwd_free() drops one reference. */
struct passwd_db *passwd_ref(struct passwd_db *);
void	 passwd_free(struct passwd_db *);
size_t	 passwd_count(const struct passwd_db *);

/* 1 when both have `user` (b may be NULL), with the same hash. */
int	 passwd_same_user(const struct passwd_db *a, const struct passwd_db *b,
	    const char *user, size_t userlen);

/* 1 when `user` exists and `password` is its password, else 0. */
int	 passwd_check(const struct passwd_db *, const char *user,
	    size_t userlen, const void *password, size_t pwlen);

/*
 * Read one "USER:HASH" line (without its newline) the way passwd_load()
 * does: 0 when it holds a user of a known hash type, -1 and *why
 * otherwise.  *userlen: the length of the user name at the line's start.
 */
int	 passwd_parse_line(const char *line, size_t len, size_t *userlen,
	    const char **why);

/*
 * Append the hash field of `password` ("$7$..." or "$6$...") with a
 * fresh random salt to b.  Returns 0, -1 when no random bytes or memory
 * were to be had.
 */
int	 passwd_hash(struct buf *b, enum passwd_type, uint32_t iterations,
	    const void *password, size_t pwlen);

/*
 * The fingerprint of a hash field ("$7$..."): the first bytes of its
 * SHA-256, which a SCRAM verifier is bound to (scram.h).
 */
void	 passwd_fingerprint_of(const char *hash, size_t len,
	    uint8_t out[PASSWD_FINGERPRINT_LEN]);
/* `user`'s fingerprint: 1, or 0 when the user is not in the file. */
int	 passwd_fingerprint(const struct passwd_db *, const char *user,
	    size_t userlen, uint8_t out[PASSWD_FINGERPRINT_LEN]);

/*
 * Strict standard base64 (RFC 4648 4, padded), the encoding of these
 * files: the decoded length (at most outmax, and at most 64 bytes), or
 * -1.  passwd_b64_add() appends the encoding of up to 64 bytes.
 */
int	 passwd_b64_decode(const char *s, size_t len, uint8_t *out,
	    size_t outmax);
int	 passwd_b64_add(struct buf *b, const void *p, size_t len);

#endif /* PMQ_PASSWD_H */
