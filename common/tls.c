/*
 * tls.c - the material of MQTT over TLS (tls.*) and the OpenSSL context
 * made from it.
 *
 * The supervisor reads the certificate, the key and the CAs, as root
 * (the key may be readable by root alone), into one bundle; it builds a
 * context from the bundle to check it, then hands the bundle to every
 * worker (IPC_AUTH_TLS), which builds the same context with the same
 * code to serve with.  What a worker serves is therefore exactly what
 * the supervisor checked.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "buf.h"
#include "log.h"
#include "tls.h"
#include "utf8.h"

/* The reason OpenSSL gave last, for a message. */
static const char *
ssl_reason(char *buf, size_t len)
{
	unsigned long	 e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "not PEM");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* One file, as a length and its bytes, onto the bundle (none: 0). */
static int
add_file(struct buf *out, const char *opt, const char *path, char *err,
    size_t errlen)
{
	struct buf	 bytes = BUF_INITIALIZER;

	if (*path != '\0' && buf_load_file(&bytes, path) == -1) {
		seterr(err, errlen, "%s: cannot read %s: %s", opt, path,
		    strerror(errno));
		buf_free(&bytes);
		return -1;
	}
	buf_add_u32(out, (uint32_t)bytes.len);
	if (bytes.len > 0)
		buf_add(out, bytes.data, bytes.len);
	if (bytes.data != NULL)
		OPENSSL_cleanse(bytes.data, bytes.cap);
	buf_free(&bytes);
	return 0;
}

static int
name_order(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * tls.ca-file, then every regular file of tls.ca-dir (by name; the
 * links of a hashed directory are skipped: they name the same files).
 */
static int
add_cas(struct buf *out, const char *file, const char *dir, char *err,
    size_t errlen)
{
	struct buf	 cas = BUF_INITIALIZER;
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	char		 path[PATH_MAX], **names = NULL;
	size_t		 n = 0, i;
	int		 rv = -1;

	if (*file && buf_load_file(&cas, file) == -1) {
		seterr(err, errlen, "tls.ca-file: cannot read %s: %s", file,
		    strerror(errno));
		goto done;
	}
	if (*dir) {
		if ((d = opendir(dir)) == NULL) {
			seterr(err, errlen, "tls.ca-dir: cannot read %s: %s",
			    dir, strerror(errno));
			goto done;
		}
		while ((de = readdir(d)) != NULL) {
			char	**more;

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			if (lstat(path, &st) == -1 || !S_ISREG(st.st_mode))
				continue;
			if ((more = realloc(names, (n + 1) * sizeof(*names))) ==
			    NULL || (more[n] = strdup(de->d_name)) == NULL) {
				if (more)
					names = more;
				closedir(d);
				seterr(err, errlen, "out of memory");
				goto done;
			}
			names = more;
			n++;
		}
		closedir(d);
		qsort(names, n, sizeof(*names), name_order);
		for (i = 0; i < n; i++) {
			struct buf	 one = BUF_INITIALIZER;

			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			if (buf_load_file(&one, path) == -1) {
				seterr(err, errlen, "tls.ca-dir: cannot read "
				    "%s: %s", path, strerror(errno));
				buf_free(&one);
				goto done;
			}
			buf_add(&cas, one.data, one.len);
			buf_add_u8(&cas, '\n');
			buf_free(&one);
		}
	}
	buf_add_u32(out, (uint32_t)cas.len);
	if (cas.len > 0)
		buf_add(out, cas.data, cas.len);
	rv = 0;
done:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	buf_free(&cas);
	return rv;
}

int
tls_bundle_read(const struct config *cfg, struct buf *out, char *err,
    size_t errlen)
{
	buf_init(out);
	if (add_file(out, "tls.cert-file", config_str(cfg, OPT_tls_cert_file),
	    err, errlen) == -1 ||
	    add_file(out, "tls.key-file", config_str(cfg, OPT_tls_key_file),
	    err, errlen) == -1 ||
	    add_cas(out, config_str(cfg, OPT_tls_ca_file), config_str(cfg,
	    OPT_tls_ca_dir), err, errlen) == -1 ||
	    add_file(out, "tls.psk-file", config_str(cfg, OPT_tls_psk_file),
	    err, errlen) == -1) {
		buf_free(out);
		return -1;
	}
	if (buf_failed(out)) {
		buf_free(out);
		return seterr(err, errlen, "out of memory");
	}
	return 0;
}

/* The parts of a bundle, each a BIO over the bundle's bytes. */
#define BUNDLE_PARTS	5	/* certificates, key, CAs, PSKs, tickets */

static int
bundle_parts(const uint8_t *data, size_t len, BIO *parts[BUNDLE_PARTS],
    size_t lens[BUNDLE_PARTS])
{
	struct buf_reader	 rd;
	const uint8_t		*p;
	uint32_t		 n;
	int			 i;

	buf_reader_init(&rd, data, len);
	for (i = 0; i < BUNDLE_PARTS; i++) {
		/* the ticket keys are the supervisor's addition: optional */
		n = i == BUNDLE_PARTS - 1 && buf_read_left(&rd) == 0 ? 0 :
		    buf_read_u32(&rd);
		if ((p = buf_read_ptr(&rd, n)) == NULL)
			break;
		if ((parts[i] = BIO_new_mem_buf(n ? p : (const uint8_t *)"",
		    (int)n)) == NULL)
			break;
		lens[i] = n;
	}
	if (i == BUNDLE_PARTS && !rd.failed && buf_read_left(&rd) == 0)
		return 0;
	while (i-- > 0)
		BIO_free(parts[i]);
	return -1;
}

static int
use_chain(SSL_CTX *ctx, BIO *bio, const struct config *cfg, char *err,
    size_t errlen)
{
	char	 why[256];
	X509	*x;

	if ((x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) == NULL)
		return seterr(err, errlen, "tls.cert-file: no certificate in "
		    "%s (%s)", config_str(cfg, OPT_tls_cert_file),
		    ssl_reason(why, sizeof(why)));
	if (SSL_CTX_use_certificate(ctx, x) != 1) {
		X509_free(x);
		return seterr(err, errlen, "tls.cert-file: %s: %s",
		    config_str(cfg, OPT_tls_cert_file),
		    ssl_reason(why, sizeof(why)));
	}
	X509_free(x);
	/* the intermediates that follow it */
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			return seterr(err, errlen, "tls.cert-file: %s: %s",
			    config_str(cfg, OPT_tls_cert_file),
			    ssl_reason(why, sizeof(why)));
		}
	ERR_clear_error();	/* the end of the file */
	return 0;
}

static int
use_key(SSL_CTX *ctx, BIO *bio, const struct config *cfg, char *err,
    size_t errlen)
{
	char		 why[256];
	EVP_PKEY	*k;
	int		 ok;

	if ((k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL)
		return seterr(err, errlen, "tls.key-file: no private key in %s "
		    "(%s)", config_str(cfg, OPT_tls_key_file),
		    ssl_reason(why, sizeof(why)));
	ok = SSL_CTX_use_PrivateKey(ctx, k) == 1;
	EVP_PKEY_free(k);
	if (!ok || SSL_CTX_check_private_key(ctx) != 1)
		return seterr(err, errlen, "tls.key-file: %s does not match the "
		    "certificate of tls.cert-file %s", config_str(cfg,
		    OPT_tls_key_file), config_str(cfg, OPT_tls_cert_file));
	return 0;
}

/* The CAs client certificates are verified against, and only those. */
static int
use_cas(SSL_CTX *ctx, BIO *bio, const struct config *cfg, char *err,
    size_t errlen)
{
	X509_STORE	*store = SSL_CTX_get_cert_store(ctx);
	char		 why[256];
	X509		*x;
	int		 n = 0;

	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(store, x) != 1 ||
		    SSL_CTX_add_client_CA(ctx, x) != 1) {
			X509_free(x);
			return seterr(err, errlen, "tls.ca-file/tls.ca-dir: %s",
			    ssl_reason(why, sizeof(why)));
		}
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	if (n == 0 && config_num(cfg, OPT_tls_require_certificate))
		return seterr(err, errlen, "tls.require-certificate: no CA "
		    "certificate in tls.ca-file %s or tls.ca-dir %s",
		    config_str(cfg, OPT_tls_ca_file), config_str(cfg,
		    OPT_tls_ca_dir));
	return 0;
}

/* tls.psk-file: identities and their keys, kept with the context. */
struct psk {
	char		*identity;
	uint8_t		*key;
	size_t		 keylen;
};

struct psk_table {
	struct psk	*v;
	size_t		 n;
};

static int	 psk_index = -1;	/* SSL_CTX: its psk_table */
static int	 psk_id_index = -1;	/* SSL: the identity it used */

static void
psk_table_free(struct psk_table *t)
{
	size_t	 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->v[i].identity);
		OPENSSL_cleanse(t->v[i].key, t->v[i].keylen);
		free(t->v[i].key);
	}
	free(t->v);
	free(t);
}

static void
psk_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	psk_table_free(ptr);
}

static void
psk_id_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	free(ptr);
}

static int
hex_value(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* One line of the file: IDENTITY:HEXKEY onto the table. */
static int
psk_line(struct psk_table *t, const char *line, size_t len, char *why,
    size_t whylen)
{
	const char	*colon = memchr(line, ':', len);
	struct psk	*more, *e;
	size_t		 idlen, hexlen, i;
	int		 hi, lo;

	if (colon == NULL || colon == line)
		return seterr(why, whylen, "not IDENTITY:KEY");
	idlen = (size_t)(colon - line);
	hexlen = len - idlen - 1;
	if (utf8_check((const uint8_t *)line, idlen, UTF8_STRICT) != 0)
		return seterr(why, whylen, "the identity is not valid UTF-8");
	if (hexlen == 0 || hexlen % 2 != 0 || hexlen / 2 > PSK_MAX_PSK_LEN)
		return seterr(why, whylen, "the key must be an even number of "
		    "hexadecimal digits, at most %d bytes", PSK_MAX_PSK_LEN);
	if ((more = realloc(t->v, (t->n + 1) * sizeof(*t->v))) == NULL)
		return seterr(why, whylen, "out of memory");
	t->v = more;
	e = &t->v[t->n];
	if ((e->identity = strndup(line, idlen)) == NULL ||
	    (e->key = malloc(hexlen / 2)) == NULL) {
		free(e->identity);
		return seterr(why, whylen, "out of memory");
	}
	e->keylen = hexlen / 2;
	t->n++;
	for (i = 0; i < e->keylen; i++) {
		hi = hex_value((unsigned char)colon[1 + 2 * i]);
		lo = hex_value((unsigned char)colon[2 + 2 * i]);
		if (hi < 0 || lo < 0)
			return seterr(why, whylen, "the key is not hexadecimal");
		e->key[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static struct psk_table *
psk_parse(BIO *bio, const struct config *cfg, char *err, size_t errlen)
{
	struct psk_table	*t;
	const char		*path = config_str(cfg, OPT_tls_psk_file);
	char			 line[2048], why[128];
	unsigned		 lineno = 0;
	size_t			 n;
	int			 got;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	while ((got = BIO_gets(bio, line, sizeof(line))) > 0) {
		lineno++;
		n = (size_t)got;
		if (line[n - 1] != '\n' && BIO_pending(bio) > 0) {
			seterr(err, errlen, "tls.psk-file: %s:%u: line too long",
			    path, lineno);
			goto fail;
		}
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
		    line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		if (n == 0 || line[0] == '#')
			continue;
		if (psk_line(t, line, n, why, sizeof(why)) == -1) {
			seterr(err, errlen, "tls.psk-file: %s:%u: %s", path,
			    lineno, why);
			goto fail;
		}
	}
	OPENSSL_cleanse(line, sizeof(line));
	if (t->n == 0) {
		seterr(err, errlen, "tls.psk-file: %s: no key in it", path);
		goto fail;
	}
	return t;
fail:
	OPENSSL_cleanse(line, sizeof(line));
	psk_table_free(t);
	return NULL;
}

/* A PSK client named its identity: its key, 0 when it has none. */
static unsigned int
psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
    unsigned int max)
{
	const struct psk_table	*t;
	size_t			 i;

	t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), psk_index);
	if (t == NULL || identity == NULL)
		return 0;
	for (i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].identity, identity) != 0)
			continue;
		if (t->v[i].keylen > max)
			return 0;
		/* kept for tls_peer_cn: OpenSSL does not keep it under 1.3 */
		free(SSL_get_ex_data(ssl, psk_id_index));
		SSL_set_ex_data(ssl, psk_id_index, strdup(identity));
		memcpy(psk, t->v[i].key, t->v[i].keylen);
		return (unsigned int)t->v[i].keylen;
	}
	return 0;
}

/*
 * A session ticket keeps the PSK identity it was issued for (encrypted
 * with the ticket): a client that resumes is still that user, though the
 * key callback does not run again.
 */
static int
ticket_made(SSL *ssl, void *arg)
{
	const char	*id = SSL_get_ex_data(ssl, psk_id_index);
	SSL_SESSION	*ss = SSL_get_session(ssl);

	if (id != NULL && ss != NULL)
		return SSL_SESSION_set1_ticket_appdata(ss, id, strlen(id));
	return 1;
}

static SSL_TICKET_RETURN
ticket_opened(SSL *ssl, SSL_SESSION *ss, const unsigned char *name,
    size_t namelen, SSL_TICKET_STATUS status, void *arg)
{
	void	*data;
	size_t	 len;
	char	*id;

	switch (status) {
	case SSL_TICKET_SUCCESS:
	case SSL_TICKET_SUCCESS_RENEW:
		if (SSL_SESSION_get0_ticket_appdata(ss, &data, &len) == 1 &&
		    len > 0 && (id = strndup(data, len)) != NULL) {
			free(SSL_get_ex_data(ssl, psk_id_index));
			SSL_set_ex_data(ssl, psk_id_index, id);
		}
		return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE :
		    SSL_TICKET_RETURN_USE_RENEW;
	case SSL_TICKET_FATAL_ERR_MALLOC:
	case SSL_TICKET_FATAL_ERR_OTHER:
		return SSL_TICKET_RETURN_ABORT;
	default:
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
}

static int
use_psks(SSL_CTX *ctx, BIO *bio, size_t len, const struct config *cfg,
    char *err, size_t errlen)
{
	struct psk_table	*t;
	const char		*hint = config_str(cfg, OPT_tls_psk_hint);
	char			 why[256];

	if (len == 0)
		return 0;
	if (psk_index == -1 && ((psk_index = SSL_CTX_get_ex_new_index(0, NULL,
	    NULL, NULL, psk_ex_free)) == -1 || (psk_id_index =
	    SSL_get_ex_new_index(0, NULL, NULL, NULL, psk_id_free)) == -1))
		return seterr(err, errlen, "tls.psk-file: %s",
		    ssl_reason(why, sizeof(why)));
	if ((t = psk_parse(bio, cfg, err, errlen)) == NULL)
		return -1;
	if (SSL_CTX_set_ex_data(ctx, psk_index, t) != 1) {
		psk_table_free(t);
		return seterr(err, errlen, "tls.psk-file: %s",
		    ssl_reason(why, sizeof(why)));
	}
	SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
	SSL_CTX_set_session_ticket_cb(ctx, ticket_made, ticket_opened, NULL);
	if (*hint && SSL_CTX_use_psk_identity_hint(ctx, hint) != 1)
		return seterr(err, errlen, "tls.psk-hint: %s",
		    ssl_reason(why, sizeof(why)));
	return 0;
}

SSL_CTX *
tls_ctx_new(const uint8_t *bundle, size_t len, const struct config *cfg,
    char *err, size_t errlen)
{
	SSL_CTX	*ctx;
	char	 why[256];

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		seterr(err, errlen, "cannot create a TLS context: %s",
		    ssl_reason(why, sizeof(why)));
		return NULL;
	}
	if (tls_ctx_setup(ctx, bundle, len, cfg, err, errlen) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int
tls_ctx_setup(SSL_CTX *ctx, const uint8_t *bundle, size_t len,
    const struct config *cfg, char *err, size_t errlen)
{
	static const unsigned char	 sid[] = "promptmq";
	const char			*ciphers, *suites;
	BIO				*parts[BUNDLE_PARTS];
	size_t				 lens[BUNDLE_PARTS];
	char				 why[256];
	int				 rv = -1, i;

	if (bundle_parts(bundle, len, parts, lens) == -1)
		return seterr(err, errlen, "malformed TLS bundle");
	SSL_CTX_set_min_proto_version(ctx, strcmp(config_text(cfg,
	    OPT_tls_min_version), "1.3") == 0 ? TLS1_3_VERSION :
	    TLS1_2_VERSION);
	/*
	 * No renegotiation (a client could make the worker redo handshakes
	 * at will); a peer that closes without close_notify is an end of
	 * stream like any other, as for plain MQTT.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_COMPRESSION);
	/*
	 * The output buffer grows and moves between the tries of one write;
	 * idle connections give their read and write buffers back.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	ciphers = config_str(cfg, OPT_tls_ciphers);
	suites = config_str(cfg, OPT_tls_ciphersuites);
	if (*ciphers && SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		seterr(err, errlen, "tls.ciphers: '%s': %s", ciphers,
		    ssl_reason(why, sizeof(why)));
		goto done;
	}
	if (*suites && SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
		seterr(err, errlen, "tls.ciphersuites: '%s': %s", suites,
		    ssl_reason(why, sizeof(why)));
		goto done;
	}
	/* a certificate, pre-shared keys, or both */
	if ((lens[0] > 0 && (use_chain(ctx, parts[0], cfg, err, errlen) == -1 ||
	    use_key(ctx, parts[1], cfg, err, errlen) == -1)) ||
	    use_cas(ctx, parts[2], cfg, err, errlen) == -1 ||
	    use_psks(ctx, parts[3], lens[3], cfg, err, errlen) == -1)
		goto done;
	/* the supervisor's ticket keys (without them, as from
	 * tls_bundle_read alone, each context makes its own) */
	if (lens[4] == TLS_TICKET_KEYS_LEN &&
	    SSL_CTX_set_tlsext_ticket_keys(ctx, (void *)(bundle + len -
	    TLS_TICKET_KEYS_LEN), TLS_TICKET_KEYS_LEN) != 1) {
		seterr(err, errlen, "cannot set the session ticket keys: %s",
		    ssl_reason(why, sizeof(why)));
		goto done;
	}
	if (lens[0] == 0 && lens[3] == 0) {
		seterr(err, errlen, "tls.cert-file: no certificate and no "
		    "pre-shared key to serve TLS with");
		goto done;
	}
	SSL_CTX_set_verify(ctx, config_num(cfg, OPT_tls_require_certificate) ?
	    SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_NONE,
	    NULL);
	rv = 0;
done:
	for (i = 0; i < BUNDLE_PARTS; i++)
		BIO_free(parts[i]);
	return rv;
}

int
tls_peer_cn(SSL *ssl, char *out, size_t len)
{
	X509_NAME_ENTRY	*e;
	X509_NAME	*subject;
	X509		*peer;
	const char	*psk;
	unsigned char	*utf8 = NULL;
	int		 i, n;

	/* a PSK session: the identity it used (checked at parse time) */
	if (psk_id_index != -1 &&
	    (psk = SSL_get_ex_data(ssl, psk_id_index)) != NULL) {
		if (strlen(psk) >= len)
			return -1;
		snprintf(out, len, "%s", psk);
		return 0;
	}
	if ((peer = SSL_get0_peer_certificate(ssl)) == NULL ||
	    (subject = X509_get_subject_name(peer)) == NULL)
		return -1;
	/* exactly one CN: with two, which one is the user is a guess */
	if ((i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1)) < 0 ||
	    X509_NAME_get_index_by_NID(subject, NID_commonName, i) >= 0)
		return -1;
	e = X509_NAME_get_entry(subject, i);
	if ((n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e))) <= 0)
		return -1;
	if ((size_t)n >= len || memchr(utf8, '\0', (size_t)n) != NULL ||
	    utf8_check(utf8, (size_t)n, UTF8_STRICT) != 0) {
		OPENSSL_free(utf8);
		return -1;
	}
	memcpy(out, utf8, (size_t)n);
	out[n] = '\0';
	OPENSSL_free(utf8);
	return 0;
}
