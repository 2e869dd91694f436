/*
 * jwt.h - JSON Web Tokens as MQTT passwords (jwt.c).
 */
#ifndef PMQ_JWT_H
#define PMQ_JWT_H

#include <stddef.h>
#include <stdint.h>

struct jwt_key;

/* What a token must say besides its signature (auth.jwt-*). */
struct jwt_check {
	const char	*username_claim;	/* "sub" */
	const char	*issuer;		/* "": not checked */
	const char	*audience;		/* "": not checked */
	int64_t		 leeway;		/* seconds of clock skew */
};

/*
 * The key of auth.jwt-key-file: a PEM public key (RSA of 2048 bits or
 * more: RS256; EC P-256: ES256) or else an HMAC secret (HS256, the
 * file's bytes without the final newline, 32 bytes or more).
 */
int		 jwt_key_load(const uint8_t *, size_t, struct jwt_key **,
		    char *err, size_t errlen);
void		 jwt_key_free(struct jwt_key *);
const char	*jwt_key_alg(const struct jwt_key *);

/* Whether a password has the shape of a token (three dotted parts). */
int		 jwt_looks_like(const uint8_t *, size_t);

/*
 * Check a token at `now` (seconds since 1970): its signature under the
 * key with the key's algorithm, exp (required), nbf, iss, aud, and the
 * user name claim.  0 with the user name and the expiry, or -1 with
 * *why (for the log; never for the client).
 */
int		 jwt_verify(const struct jwt_key *, const uint8_t *, size_t,
		    const struct jwt_check *, int64_t now, char *user,
		    size_t userlen, int64_t *exp, const char **why);

#endif /* PMQ_JWT_H */
