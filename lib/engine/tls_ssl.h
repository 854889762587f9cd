/* What the TLS files share beyond tls.h: the OpenSSL objects behind a
 * configuration and a transport. */
#ifndef VERBD_ENGINE_TLS_SSL_H
#define VERBD_ENGINE_TLS_SSL_H

#include <openssl/ssl.h>

#include "engine/tls.h"

struct tls_config {
    SSL_CTX *ctx;
    void *owner;
    char *cert_file;
    int min_version, max_version; /* re-applied when SNI switches to c */
    char *ciphers;
    bool no_http2; /* `http2 off`: ALPN never picks h2 */
};

/* The configuration behind ctx (NULL once it is freed). */
struct tls_config *tls_config_of(SSL_CTX *ctx);

/* The client hello callback of every configuration: SNI picks the
 * configuration (and certificate) the handshake goes on with. */
int tls_client_hello(SSL *ssl, int *alert, void *arg);

/* Makes ctx issue and accept the shared session tickets. */
void tls_tickets_attach(SSL_CTX *ctx);

/* Sets t up over ssl, whose handshake on fd is complete; t owns both. */
int tls_transport_init(struct transport *t, int fd, SSL *ssl);

#endif
