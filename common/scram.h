/*
 * scram.h - SCRAM-SHA-256 (RFC 5802, RFC 7677) for MQTT 5 enhanced
 * authentication: the verifier file and the server's side of the
 * exchange.
 *
 * The verifier file sits beside the password file (its name with
 * ".scram" added) and is written by promptmq-passwd.  One user a line:
 *
 *	USER:SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY:BINDING
 *
 * The middle is PostgreSQL's verifier format (standard base64 fields);
 * BINDING is the base64 of the first 16 bytes of the SHA-256 of the
 * user's hash field in the password file when the verifier was made.  A
 * verifier counts only while that field is unchanged: a user deleted or
 * given a new password by another tool (mosquitto_passwd) cannot log in
 * with SCRAM until promptmq-passwd sets the password again, and the
 * password file stays the one list of who may log in.
 *
 * The server never learns the password: it keeps StoredKey and ServerKey
 * only, and compares raw digests in constant time.  An unknown user (or
 * one whose verifier does not count) gets a salt and iteration count
 * made up from a secret of the verifier file, the same on every worker
 * and every attempt, and fails at the proof like a wrong password.
 */
#ifndef PMQ_SCRAM_H
#define PMQ_SCRAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "passwd.h"

struct buf;
struct scram_db;
struct scram_exchange;

#define SCRAM_METHOD		"SCRAM-SHA-256"
#define SCRAM_KEY_LEN		32
#define SCRAM_SALT_LEN		16
#define SCRAM_MIN_ITERATIONS	4096	/* RFC 7677 5 */
#define SCRAM_FILE_SUFFIX	".scram"

/*
 * Read a verifier file from f (`name` for messages).  Returns 0 and
 * *out, or -1 with a message in err.  Bad lines go to `bad` and are left
 * out, as in passwd_read().
 */
int	 scram_read(struct scram_db **out, FILE *f, const char *name,
	    passwd_bad_line_fn *bad, void *arg, char *err, size_t errlen);
struct scram_db *scram_ref(struct scram_db *);
void	 scram_free(struct scram_db *);
size_t	 scram_count(const struct scram_db *);

/* 1 when both have the same verifier for `user` (b may be NULL). */
int	 scram_same_user(const struct scram_db *a, const struct scram_db *b,
	    const char *user, size_t userlen);

/* The user name at the start of a verifier line, or -1 with *why. */
int	 scram_parse_line(const char *line, size_t len, size_t *userlen,
	    const char **why);

/*
 * Append the verifier of `password` bound to the password file's hash
 * field `hash` ("$7$..."), without the user name: 0, or -1 without
 * random bytes or memory.  salt: SCRAM_SALT_LEN bytes, or NULL for
 * random ones.
 */
int	 scram_verifier(struct buf *b, uint32_t iterations,
	    const void *password, size_t pwlen, const char *hash,
	    size_t hashlen, const uint8_t *salt);

/*
 * The server's first step: `msg` is the client-first-message from
 * CONNECT or an AUTH packet.  The user is looked up in db and must be in
 * pw with the hash its verifier was bound to.  Returns the exchange, its
 * server-first-message in scram_message(), or NULL with *why when the
 * message is not one we take (malformed, channel binding, an authzid).
 * nonce: the server's nonce (tests), or NULL for a random one.
 */
struct scram_exchange *scram_begin(const struct scram_db *db,
	    const struct passwd_db *pw, const void *msg, size_t len,
	    const char *nonce, const char **why);

/*
 * The second step: the client-final-message.  Returns 1 when its proof
 * is right (scram_message() then holds the server-final-message), 0 when
 * not, with *why.
 */
int	 scram_finish(struct scram_exchange *, const void *msg, size_t len,
	    const char **why);

/* What to send the client now. */
const uint8_t *scram_message(const struct scram_exchange *, size_t *len);
/* The user the client named (NUL-terminated, unescaped). */
const char *scram_user(const struct scram_exchange *);
/* Wiped and freed; NULL is fine. */
void	 scram_end(struct scram_exchange *);

#endif /* PMQ_SCRAM_H */
