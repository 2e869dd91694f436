/*
 * jwt.c - JSON Web Tokens (RFC 7519) as MQTT passwords: the key of
 * auth.jwt-key-file and the check of one token.
 *
 * The algorithm is the key's, never the token's: an HMAC secret verifies
 * HS256 only, an RSA public key of 2048 bits or more RS256 only, an EC
 * P-256 public key ES256 only.  A token whose header names another
 * algorithm ("none" included) is refused, so a public key can never be
 * used as an HMAC secret.  Signatures are OpenSSL's, JSON is jansson's.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "jwt.h"
#include "log.h"
#include "utf8.h"

#define JWT_MAX_TOKEN	8192	/* bytes of a token we look at */
#define HS256_MIN_KEY	32	/* RFC 7518 3.2: at least the hash size */
#define NUMERIC_DATE_MAX	((int64_t)1 << 40)

enum { JWT_HS256 = 1, JWT_RS256, JWT_ES256 };

struct jwt_key {
	int		 alg;
	uint8_t		*secret;	/* HS256 */
	size_t		 secret_len;
	EVP_PKEY	*pkey;		/* RS256, ES256 */
};

static const char *const alg_names[] = { "", "HS256", "RS256", "ES256" };

void
jwt_key_free(struct jwt_key *k)
{
	if (k == NULL)
		return;
	if (k->secret != NULL) {
		OPENSSL_cleanse(k->secret, k->secret_len);
		free(k->secret);
	}
	EVP_PKEY_free(k->pkey);
	free(k);
}

const char *
jwt_key_alg(const struct jwt_key *k)
{
	return alg_names[k->alg];
}

int
jwt_key_load(const uint8_t *data, size_t len, struct jwt_key **out,
    char *err, size_t errlen)
{
	static const char	 pem[] = "-----BEGIN";
	struct jwt_key		*k;
	char			 group[64];
	BIO			*bio = NULL;
	int			 bits;

	*out = NULL;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return seterr(err, errlen, "out of memory");
	if (len >= sizeof(pem) - 1 && memcmp(data, pem, sizeof(pem) - 1) ==
	    0) {
		if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL ||
		    (k->pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) ==
		    NULL) {
			BIO_free(bio);
			jwt_key_free(k);
			return seterr(err, errlen, "not a PEM public key (RSA "
			    "or EC P-256)");
		}
		BIO_free(bio);
		if (EVP_PKEY_is_a(k->pkey, "RSA")) {
			if ((bits = EVP_PKEY_get_bits(k->pkey)) < 2048) {
				jwt_key_free(k);
				return seterr(err, errlen, "an RSA key of %d "
				    "bits: RS256 needs 2048 or more", bits);
			}
			k->alg = JWT_RS256;
		} else if (EVP_PKEY_is_a(k->pkey, "EC") &&
		    EVP_PKEY_get_utf8_string_param(k->pkey,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) ==
		    1 && strcmp(group, "prime256v1") == 0) {
			k->alg = JWT_ES256;
		} else {
			jwt_key_free(k);
			return seterr(err, errlen, "a public key that is neither "
			    "RSA nor EC P-256");
		}
	} else {
		/* a secret: the file's bytes, without the final newline */
		while (len > 0 && (data[len - 1] == '\n' ||
		    data[len - 1] == '\r'))
			len--;
		if (len < HS256_MIN_KEY) {
			jwt_key_free(k);
			return seterr(err, errlen, "an HS256 secret of %zu bytes: "
			    "at least %d are needed", len, HS256_MIN_KEY);
		}
		if ((k->secret = malloc(len)) == NULL) {
			jwt_key_free(k);
			return seterr(err, errlen, "out of memory");
		}
		memcpy(k->secret, data, len);
		k->secret_len = len;
		k->alg = JWT_HS256;
	}
	*out = k;
	return 0;
}

/* Strict base64url without padding (RFC 7515 2); -1 when it is not. */
static int
b64url_decode(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen)
{
	unsigned char	*std, *dec;
	size_t		 i, padded;
	int		 n;

	if (len % 4 == 1)
		return -1;
	padded = (len + 3) / 4 * 4;
	if ((std = malloc(padded + 1)) == NULL ||
	    (dec = malloc(padded / 4 * 3 + 1)) == NULL) {
		free(std);
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char	 ch = in[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9'))
			std[i] = ch;
		else if (ch == '-')
			std[i] = '+';
		else if (ch == '_')
			std[i] = '/';
		else
			goto fail;
	}
	for (; i < padded; i++)
		std[i] = '=';
	if ((n = EVP_DecodeBlock(dec, std, (int)padded)) < 0)
		goto fail;
	free(std);
	*out = dec;
	*outlen = (size_t)n - (padded - len);	/* DecodeBlock counts '=' */
	return 0;
fail:
	free(std);
	free(dec);
	return -1;
}

int
jwt_looks_like(const uint8_t *p, size_t len)
{
	const uint8_t	*dot1, *dot2;

	if (len < 5 || len > JWT_MAX_TOKEN || p[0] != 'e')
		return 0;	/* a header is a JSON object: "ey..." */
	if ((dot1 = memchr(p, '.', len)) == NULL ||
	    (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - p))) ==
	    NULL)
		return 0;
	return memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - p)) == NULL;
}

/* The signature of `signed` (header.payload) under the key: 0 good. */
static int
check_signature(const struct jwt_key *k, const uint8_t *tbs, size_t tbslen,
    const uint8_t *sig, size_t siglen)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE], *der = NULL;
	size_t		 maclen = 0;
	ECDSA_SIG	*es = NULL;
	BIGNUM		*r = NULL, *s = NULL;
	EVP_MD_CTX	*md;
	int		 derlen, ok = 0;

	if (k->alg == JWT_HS256) {
		if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k->secret,
		    k->secret_len, tbs, tbslen, mac, sizeof(mac), &maclen) ==
		    NULL)
			return -1;
		return maclen == siglen && CRYPTO_memcmp(mac, sig, siglen) ==
		    0 ? 0 : -1;
	}
	if (k->alg == JWT_ES256) {
		/* JWS carries R || S; OpenSSL verifies DER */
		if (siglen != 64 || (es = ECDSA_SIG_new()) == NULL ||
		    (r = BN_bin2bn(sig, 32, NULL)) == NULL ||
		    (s = BN_bin2bn(sig + 32, 32, NULL)) == NULL ||
		    ECDSA_SIG_set0(es, r, s) != 1) {
			BN_free(r);
			BN_free(s);
			ECDSA_SIG_free(es);
			return -1;
		}
		if ((derlen = i2d_ECDSA_SIG(es, &der)) <= 0) {
			ECDSA_SIG_free(es);
			return -1;
		}
		ECDSA_SIG_free(es);
		sig = der;
		siglen = (size_t)derlen;
	}
	if ((md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
	    EVP_DigestVerify(md, sig, siglen, tbs, tbslen) == 1)
		ok = 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	return ok ? 0 : -1;
}

/* A NumericDate claim: 1 and *v, 0 when absent, -1 when malformed. */
static int
numeric_date(json_t *claims, const char *name, int64_t *v)
{
	json_t	*j = json_object_get(claims, name);

	if (j == NULL)
		return 0;
	/* seconds since 1970, up to year ~36800: no overflow downstream */
	if (json_is_integer(j) && json_integer_value(j) >= 0 &&
	    json_integer_value(j) < NUMERIC_DATE_MAX) {
		*v = (int64_t)json_integer_value(j);
		return 1;
	}
	if (json_is_real(j) && json_real_value(j) >= 0 &&
	    json_real_value(j) < (double)NUMERIC_DATE_MAX) {
		*v = (int64_t)json_real_value(j);
		return 1;
	}
	return -1;
}

static int
audience_matches(json_t *aud, const char *want)
{
	size_t	 i;
	json_t	*v;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	if (json_is_array(aud))
		json_array_foreach(aud, i, v)
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), want) == 0)
				return 1;
	return 0;
}

int
jwt_verify(const struct jwt_key *k, const uint8_t *tok, size_t len,
    const struct jwt_check *chk, int64_t now, char *user, size_t userlen,
    int64_t *exp, const char **why)
{
	const uint8_t	*dot1, *dot2;
	uint8_t		*hdr = NULL, *body = NULL, *sig = NULL;
	size_t		 hdrlen, bodylen, siglen;
	json_t		*h = NULL, *c = NULL, *j;
	json_error_t	 jerr;
	int64_t		 nbf;
	const char	*name;
	int		 rv = -1, has;

	*why = "not a token";
	if (!jwt_looks_like(tok, len))
		return -1;
	dot1 = memchr(tok, '.', len);
	dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok));
	if (b64url_decode(tok, (size_t)(dot1 - tok), &hdr, &hdrlen) == -1 ||
	    b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &body,
	    &bodylen) == -1 ||
	    b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - tok), &sig,
	    &siglen) == -1) {
		*why = "a token that is not base64url";
		goto done;
	}
	if ((h = json_loadb((const char *)hdr, hdrlen,
	    JSON_REJECT_DUPLICATES, &jerr)) == NULL || !json_is_object(h)) {
		*why = "a token header that is not a JSON object";
		goto done;
	}
	j = json_object_get(h, "alg");
	if (!json_is_string(j) || strcmp(json_string_value(j),
	    alg_names[k->alg]) != 0) {
		*why = "a token signed with another algorithm than the key's";
		goto done;
	}
	if (json_object_get(h, "crit") != NULL) {
		*why = "a token with critical header parameters";
		goto done;
	}
	if (check_signature(k, tok, (size_t)(dot2 - tok), sig, siglen) == -1) {
		*why = "a token whose signature does not verify";
		goto done;
	}
	if ((c = json_loadb((const char *)body, bodylen,
	    JSON_REJECT_DUPLICATES, &jerr)) == NULL || !json_is_object(c)) {
		*why = "token claims that are not a JSON object";
		goto done;
	}
	if ((has = numeric_date(c, "exp", exp)) != 1) {
		*why = has == 0 ? "a token without an expiry (exp)" :
		    "a token with a malformed exp";
		goto done;
	}
	if (now >= *exp + chk->leeway) {
		*why = "an expired token";
		goto done;
	}
	if ((has = numeric_date(c, "nbf", &nbf)) == -1 ||
	    (has == 1 && now + chk->leeway < nbf)) {
		*why = "a token not valid yet (nbf)";
		goto done;
	}
	if (*chk->issuer && (!json_is_string(j = json_object_get(c, "iss")) ||
	    strcmp(json_string_value(j), chk->issuer) != 0)) {
		*why = "a token from another issuer (iss)";
		goto done;
	}
	if (*chk->audience && !audience_matches(json_object_get(c, "aud"),
	    chk->audience)) {
		*why = "a token for another audience (aud)";
		goto done;
	}
	j = json_object_get(c, chk->username_claim);
	if (!json_is_string(j) || (name = json_string_value(j))[0] == '\0' ||
	    strlen(name) >= userlen || utf8_check((const uint8_t *)name,
	    strlen(name), UTF8_STRICT) != 0) {
		*why = "a token without a user name in its claim";
		goto done;
	}
	snprintf(user, userlen, "%s", name);
	*why = NULL;
	rv = 0;
done:
	json_decref(h);
	json_decref(c);
	free(hdr);
	free(body);
	free(sig);
	return rv;
}
