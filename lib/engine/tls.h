/* TLS with OpenSSL: a configuration per origin server (its certificate,
 * protocols and ciphers), ticket keys shared by every worker, the handshake
 * before a session exists, and the transport over an established
 * connection.
 *
 * Order of use: tls_tickets_init() once in the supervisor before workers
 * fork; tls_config_new() per server with a certificate (at start and on
 * reload); per worker a tls_acceptor over the loop, given each accepted
 * descriptor of a TLS listener; its done() callback receives a ready
 * transport for http1_open(). */
#ifndef VERBD_ENGINE_TLS_H
#define VERBD_ENGINE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"
#include "engine/transport.h"

/* ---- configuration (tls_config.c) ---------------------------------------- */

struct tls_config;

/* Reads a certificate chain (PEM: the leaf, then its intermediates) and
 * its private key, and sets up TLS for one origin server.  protocols: a
 * list of "TLSv1.2" and "TLSv1.3" (spaces or commas between); NULL for
 * both.  Older versions are refused as insecure.  ciphers: an OpenSSL
 * cipher list for TLS 1.2; NULL for ECDHE with AEAD only.  NULL on error,
 * with a message in err naming the file (never a key's content). */
struct tls_config *tls_config_new(const char *cert_file, const char *key_file,
                                  const char *protocols, const char *ciphers, char *err,
                                  size_t errlen);
/* Frees c; connections that use it keep what they need until they end. */
void tls_config_free(struct tls_config *c);

/* What the engine attaches to a configuration (its server). */
void tls_config_set_owner(struct tls_config *c, void *owner);
void *tls_config_owner(const struct tls_config *c);
/* Whether ALPN may choose h2 for clients of this configuration (on by
 * default). */
void tls_config_set_http2(struct tls_config *c, bool on);

/* For `verbd -t`: calls warn(ctx, message) when the certificate expires
 * within 30 days, has expired or is not valid yet, and when its chain is
 * incomplete (an issuer neither in the file nor among the system's trusted
 * certificates).  A self-signed certificate is noted as such. */
void tls_config_check(const struct tls_config *c, void (*warn)(void *ctx, const char *msg),
                      void *ctx);

/* The protocols verbd speaks over TLS, in order of preference, as ALPN
 * names ("h2" unless the configuration's server has `http2 off`); a
 * client offering ALPN without any of them is refused with the
 * no_application_protocol alert.  Without ALPN a client gets HTTP/1.1. */
extern const char *const tls_alpn_protocols[];

/* ---- session tickets (tls_tickets.c) -------------------------------------- */

/* Draws the secret that ticket keys are derived from.  Called once in the
 * supervisor before the workers fork, so every worker (and every worker
 * forked later, across reloads) shares it; keys rotate every
 * TLS_TICKET_WINDOW_S and a ticket from the window before still resumes
 * (and is renewed).  Calling it again replaces the secret: tickets issued
 * before no longer resume.  0, or -1 if no random bytes could be had.
 * Without it, the first tls_config_new() draws a secret of its own
 * process. */
int tls_tickets_init(void);
#define TLS_TICKET_WINDOW_S (12 * 3600)

/* ---- the handshake (tls_accept.c) ----------------------------------------- */

struct tls_acceptor;

/* Chooses the configuration for the name a client sent by SNI (NULL: it
 * sent none).  NULL keeps the listener's default. */
typedef struct tls_config *tls_select_fn(void *arg, const char *server_name);

struct tls_acceptor_ops {
    /* The handshake finished: t is a ready TLS transport, now the caller's
     * (for http1_open).  chosen: the configuration SNI selected; alpn: the
     * protocol agreed (a static string), or NULL if the client offered
     * none (HTTP/1.1). */
    void (*done)(void *arg, struct transport *t, const struct tls_config *chosen, const char *alpn,
                 const struct sockaddr *peer, socklen_t peer_len);
    /* The client sent plain HTTP to this TLS port: fd (non-blocking, its
     * input unread) is the caller's, to answer 400 and close.  NULL:
     * tls_refuse_plain_http(fd). */
    void (*plain_http)(void *arg, int fd, const struct sockaddr *peer, socklen_t peer_len);
};

/* Handshakes on `loop` for one listener: default_config for clients that
 * name no known server, select (may be NULL) for SNI, timeout_ms for the
 * whole handshake from accept.  NULL if out of memory. */
struct tls_acceptor *tls_acceptor_new(struct loop *loop, struct tls_config *default_config,
                                      tls_select_fn *select, void *select_arg,
                                      const struct tls_acceptor_ops *ops, void *arg,
                                      uint32_t timeout_ms);
/* Replaces the default configuration and selection (a reload); handshakes
 * in progress finish with what they started with. */
void tls_acceptor_configure(struct tls_acceptor *a, struct tls_config *default_config,
                            tls_select_fn *select, void *select_arg);
/* Takes an accepted, non-blocking descriptor and handshakes on it; the
 * result comes through the ops, or the descriptor is closed (a failed,
 * timed-out or abandoned handshake, logged at debug level). */
void tls_accept(struct tls_acceptor *a, int fd, const struct sockaddr *peer, socklen_t peer_len);
/* Handshakes in progress. */
size_t tls_acceptor_pending(const struct tls_acceptor *a);
/* Closes the handshakes in progress and frees a. */
void tls_acceptor_free(struct tls_acceptor *a);

/* Answers plain HTTP on a TLS port: a 400 saying so, then closes fd. */
void tls_refuse_plain_http(int fd);

/* ---- the transport (tls_transport.c) -------------------------------------- */

/* The configuration a TLS transport's handshake chose (SNI), or NULL for
 * another transport. */
const struct tls_config *tls_transport_config(const struct transport *t);
/* The host name the client sent by SNI, or NULL (none, or not TLS). */
const char *tls_transport_server_name(const struct transport *t);
/* Whether t sends file ranges through kernel TLS (else through a bounded
 * buffer). */
bool tls_transport_ktls(const struct transport *t);
/* Whether this kernel offers kernel TLS at all (the "tls" upper layer
 * protocol), for `verbd -V` and the info log. */
bool tls_ktls_available(void);

#endif
