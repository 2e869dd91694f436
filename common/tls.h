/*
 * tls.h - the material of MQTT over TLS and the OpenSSL context made
 * from it (tls.c).
 */
#ifndef PMQ_TLS_H
#define PMQ_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "buf.h"
#include "options.h"

/*
 * Read tls.cert-file, tls.key-file, tls.ca-file and the files of
 * tls.ca-dir, and tls.psk-file, into one bundle (the body of
 * IPC_AUTH_TLS); an option not set is an empty part.  -1 with a
 * message naming the option and the file.
 */
int	 tls_bundle_read(const struct config *, struct buf *out, char *err,
	    size_t errlen);

/* The session ticket keys the supervisor adds to a bundle, last. */
#define TLS_TICKET_KEYS_LEN	80

/*
 * A server context from a bundle and the tls.* options: the chain, the
 * key (checked against the certificate), the CAs client certificates
 * are verified against, versions, ciphers.  NULL with a message.
 */
SSL_CTX	*tls_ctx_new(const uint8_t *bundle, size_t len, const struct config *,
	    char *err, size_t errlen);

/* The same on a context made elsewhere (libwebsockets'): 0, or -1. */
int	 tls_ctx_setup(SSL_CTX *, const uint8_t *bundle, size_t len,
	    const struct config *, char *err, size_t errlen);

/*
 * The client's identity: its PSK identity, or its certificate's common
 * name (there must be exactly one), as a valid UTF-8 string without
 * NUL: 0, or -1 when there is none.
 */
int	 tls_peer_cn(SSL *, char *out, size_t len);

#endif /* PMQ_TLS_H */
