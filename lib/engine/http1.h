/* The HTTP/1 session: reads request heads from a transport, turns each
 * into an exchange, frames the exchange's response (Content-Length,
 * chunked, or the end of the connection) and keeps pipelined requests in
 * order: the next one starts when the one before has ended.  A plain
 * connection that opens with the HTTP/2 preface is handed to the HTTP/2
 * session (h2c with prior knowledge). */
#ifndef VERBD_ENGINE_HTTP1_H
#define VERBD_ENGINE_HTTP1_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/exchange.h"
#include "core/loop.h"
#include "core/settings.h"
#include "engine/transport.h"
#include "http/chunked.h"

struct http1;
struct http2_host;
struct listener;

/* What the sessions of one worker share. */
struct http1_host {
    struct loop *loop;
    struct http_limits limits;
    const struct listener *listeners; /* all of them (redirect_to_https) */
    size_t nlisteners;
    struct http_field *fields; /* parser scratch, settings->max_fields */
    size_t buf_size;           /* every input and output buffer */
    char **spare;              /* buffers to reuse */
    size_t nspare;
    struct http1 **conns;
    size_t nconns, cap_conns;
    struct verbd_response scratch; /* answers with no exchange (a bad head) */
    struct http2_host *h2;         /* h2c connections are handed to it, or NULL */
    bool stopping;
};

/* Sets a host up for sessions on `loop`; -1 if out of memory. */
int http1_host_init(struct http1_host *h, struct loop *loop, const struct settings *s);
/* Closes every session and frees the host's memory. */
void http1_host_free(struct http1_host *h);

/* A session over transport t (taken over), for the sites of listener
 * lis; sni: the host name its TLS client named, or NULL (a request whose
 * Host reaches another site is misdirected: 421).  It closes itself when
 * done.  With watch, the loop watches t->fd;
 * without (a test's in-memory transport), the caller calls http1_ready()
 * when bytes can move. */
struct http1 *http1_open(struct http1_host *h, const struct transport *t, bool watch,
                         const struct listener *lis, const char *sni, const struct sockaddr *peer,
                         socklen_t peer_len);
/* The transport may be readable and writable again. */
void http1_ready(struct http1 *c);
/* Closes at once if nothing is in flight (graceful stop). */
void http1_stop_if_idle(struct http1 *c);
void http1_close(struct http1 *c);

#endif
