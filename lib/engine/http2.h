/* The HTTP/2 session (RFC 9113): the second session over the transport
 * interface.  libnghttp2 does the framing, HPACK, the stream states and
 * flow control; this session feeds it the transport's bytes, writes what
 * it produces, and makes each stream an exchange owned exactly as an
 * HTTP/1 request is: the router and the modules cannot tell which. */
#ifndef VERBD_ENGINE_HTTP2_H
#define VERBD_ENGINE_HTTP2_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "engine/http1.h"
#include "engine/transport.h"

struct http2;
struct h2_stream;
struct listener;

/* The connection preface a client sends first (RFC 9113 §3.4). */
#define HTTP2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define HTTP2_PREFACE_LEN 24

/* The HTTP/2 sessions of one worker; the HTTP/1 host's loop, listeners,
 * field scratch and stop flag serve them too. */
struct http2_host {
    struct http1_host *h1;
    struct http2 **conns;
    size_t nconns, cap_conns;
    struct h2_stream *spare; /* ended streams kept with their buffers */
    size_t nspare;
};

void http2_host_init(struct http2_host *h, struct http1_host *h1);
/* Closes every session and frees the host's memory. */
void http2_host_free(struct http2_host *h);

/* A session over transport t (taken over) for the sites of listener lis;
 * sni as for http1_open.  `pre`: bytes already read from t (an HTTP/1
 * session that saw the preface), given to the session first; not NULL,
 * the connection and those bytes were counted (core/stats.h) by the
 * HTTP/1 session already.  It closes
 * itself when done.  NULL if it could not be set up (t is closed then). */
struct http2 *http2_open(struct http2_host *h, const struct transport *t, bool watch,
                         const struct listener *lis, const char *sni, const struct sockaddr *peer,
                         socklen_t peer_len, const void *pre, size_t pre_len);
/* The transport may be readable and writable again (no watch). */
void http2_ready(struct http2 *c);
/* Graceful stop: GOAWAY (once), streams in flight finish, then it closes. */
void http2_stop(struct http2 *c);
void http2_close(struct http2 *c);

#endif
