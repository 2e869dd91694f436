/*
 * tls.c - MQTT over TLS in a worker.
 *
 * The supervisor reads the certificate, key and CAs and sends them as
 * one bundle (IPC_AUTH_TLS) before the configuration and again whenever
 * a reload finds them changed; the worker makes its context from it
 * (common/tls.c) and makes it again when a tls.* option changes.  A
 * connection holds a reference to the context it started with, so a new
 * certificate applies to new connections and the others carry on.
 *
 * OpenSSL runs on the connection's own descriptor, driven by the same
 * read and write events as plain MQTT (conn.c): no second buffer, no
 * thread.  The handshake happens in CONN_NEW, so server.connect-timeout
 * cuts a client that never finishes it.  The functions below say what
 * OpenSSL waits for; conn.c arms the event.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "tls.h"
#include "worker.h"

/* Make the context anew from the bundle and the options in force. */
static void
rebuild(struct worker *w, const char *name)
{
	SSL_CTX	*ctx;
	char	 err[512];

	if (w->tls_bundle.len == 0) {
		SSL_CTX_free(w->tls_ctx);
		w->tls_ctx = NULL;
		ws_tls_changed(w);
		return;
	}
	if ((ctx = tls_ctx_new(w->tls_bundle.data, w->tls_bundle.len,
	    &w->proc->cfg, err, sizeof(err))) == NULL) {
		log_error("TLS context not changed", "file=%s error=\"%s\"",
		    name, err);
		return;
	}
	SSL_CTX_free(w->tls_ctx);	/* live connections keep their own */
	w->tls_ctx = ctx;
	log_debug("TLS context made", "file=%s", name);
	ws_tls_changed(w);
}

void
tls_set_bundle(struct worker *w, int fd, const char *name)
{
	/* the old bundle holds a private key */
	if (w->tls_bundle.data != NULL)
		OPENSSL_cleanse(w->tls_bundle.data, w->tls_bundle.cap);
	buf_free(&w->tls_bundle);
	if (fd != -1) {
		if (buf_load_fd(&w->tls_bundle, fd) == -1) {
			log_error("cannot read the TLS files sent", "file=%s "
			    "error=\"%s\"", name, strerror(errno));
			buf_free(&w->tls_bundle);
		}
		close(fd);
	}
	/* before the configuration: made in tls_start */
	if (w->proc != NULL)
		rebuild(w, name);
}

void
tls_start(struct worker *w)
{
	rebuild(w, config_str(&w->proc->cfg, OPT_tls_cert_file));
}

void
tls_reload(struct worker *w, const enum option_id *ids, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (ids[i] == OPT_tls_min_version ||
		    ids[i] == OPT_tls_ciphers ||
		    ids[i] == OPT_tls_ciphersuites ||
		    ids[i] == OPT_tls_require_certificate) {
			rebuild(w, config_str(&w->proc->cfg,
			    OPT_tls_cert_file));
			return;
		}
}

void
tls_stop(struct worker *w)
{
	SSL_CTX_free(w->tls_ctx);
	w->tls_ctx = NULL;
	if (w->tls_bundle.data != NULL)
		OPENSSL_cleanse(w->tls_bundle.data, w->tls_bundle.cap);
	buf_free(&w->tls_bundle);
}

int
tls_conn_start(struct conn *c)
{
	struct conn_rare	*r;

	/* a TLS connection always has its rare fields */
	if ((r = conn_rare(c)) == NULL || c->w->tls_ctx == NULL ||
	    (c->ssl = SSL_new(c->w->tls_ctx)) == NULL)
		return -1;
	if (SSL_set_fd(c->ssl, c->fd) != 1) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		return -1;
	}
	SSL_set_accept_state(c->ssl);
	r->tls_hs = 1;
	return 0;
}

/* The end of a connection: close_notify if the session is sound. */
void
tls_conn_end(struct conn *c)
{
	/* a WebSocket client's identity came without c->ssl */
	if (c->rare->tls_cn != NULL) {
		free(c->rare->tls_cn);
		conn_rare(c)->tls_cn = NULL;
	}
	if (c->ssl == NULL)
		return;
	if (!c->rare->tls_hs && !(SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN)) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl);
	}
	ERR_clear_error();
	SSL_free(c->ssl);
	c->ssl = NULL;
}

/* What an SSL_* result means for the loop. */
static int
status_of(struct conn *c, int ret)
{
	static struct log_ratelimit	 rl;
	char				 why[256], addr[64];
	unsigned long			 e;

	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		/* no further SSL_shutdown on this one */
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN);
		/* never a "try again": the connection is over */
		if (errno == 0 || errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR)
			errno = ECONNRESET;
		return TLS_FAILED;
	default:
		SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN);
		e = ERR_peek_last_error();
		ERR_error_string_n(e, why, sizeof(why));
		ERR_clear_error();
		log_limited(&rl, LOG_LEVEL_INFO, "TLS error", "addr=%s "
		    "handshake=%d error=\"%s\"", conn_addr(c, addr,
		    sizeof(addr)), c->rare->tls_hs, why);
		errno = EPROTO;
		return TLS_FAILED;
	}
}

int
tls_handshake(struct conn *c)
{
	static struct log_ratelimit	 rl;
	char				 cn[256], addr[64];
	int				 ret;

	ERR_clear_error();
	errno = 0;
	if ((ret = SSL_do_handshake(c->ssl)) != 1)
		return status_of(c, ret);
	conn_rare(c)->tls_hs = 0;
	if (config_num(&c->w->proc->cfg, OPT_tls_use_identity_as_username)) {
		if (tls_peer_cn(c->ssl, cn, sizeof(cn)) == -1 ||
		    (conn_rare(c)->tls_cn = strdup(cn)) == NULL) {
			log_limited(&rl, LOG_LEVEL_NOTICE, "client certificate "
			    "without one valid common name; refused", "addr=%s",
			    conn_addr(c, addr, sizeof(addr)));
			errno = EACCES;
			return TLS_FAILED;
		}
	}
	log_debug("TLS handshake done", "addr=%s version=%s cipher=%s",
	    conn_addr(c, addr, sizeof(addr)), SSL_get_version(c->ssl),
	    SSL_get_cipher_name(c->ssl));
	return TLS_DONE;
}

ssize_t
tls_read(struct conn *c, void *buf, size_t len, int *status)
{
	size_t	 n = 0;
	int	 ret;

	ERR_clear_error();
	errno = 0;
	if ((ret = SSL_read_ex(c->ssl, buf, len, &n)) == 1)
		return (ssize_t)n;
	*status = status_of(c, ret);
	return *status == 0 ? 0 : -1;
}

ssize_t
tls_write(struct conn *c, const void *buf, size_t len, int *status)
{
	size_t	 n = 0;
	int	 ret;

	ERR_clear_error();
	errno = 0;
	if ((ret = SSL_write_ex(c->ssl, buf, len, &n)) == 1)
		return (ssize_t)n;
	*status = status_of(c, ret);
	if (*status == 0) {
		*status = TLS_FAILED;	/* the peer closed: nothing to write to */
		errno = EPIPE;
	}
	return -1;
}

/*
 * Bytes OpenSSL decrypted and holds, which no read event announces.
 * Not SSL_has_pending(): that also counts the start of a record still
 * arriving, and re-reading for it would spin until the rest came.
 */
int
tls_has_pending(const struct conn *c)
{
	return c->ssl != NULL && !c->rare->tls_hs && SSL_pending(c->ssl) > 0;
}
