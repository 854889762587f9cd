/* The exchange: one request, its decision, its response and its arena, as
 * the session, the router and the modules share it.  It knows no protocol:
 * the session that owns it (HTTP/1 or an HTTP/2 stream) is reached through a table of
 * operations.  Modules use only the calls of verbd.h. */
#ifndef VERBD_CORE_EXCHANGE_H
#define VERBD_CORE_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/loop.h"
#include "http/parse.h"
#include "verbd.h"

struct route_mapping;
struct route_state;

struct verbd_request {
    struct http_request http;            /* every span points into the arena */
    int method_id;                       /* METHOD_* or an extension id */
    const char *path;                    /* normalised, NUL-terminated */
    const char *subpath;                 /* below the mapping prefix */
    const struct route_mapping *mapping; /* set by the router */
    int refusal;                         /* the router's error status */
    int access;       /* a guarded location's verdict: 0 not asked yet, 200 let in, 401, 403 */
    const char *user; /* the user a guard let in as (auth_basic), for the access log, or NULL */
    const char *body; /* read for a synchronous handler */
    size_t body_len;
    uint64_t max_body;            /* what the session reads of the body at most */
    const struct sockaddr *peer;  /* the client's address, or NULL */
    const struct sockaddr *local; /* the listening address it came to, or NULL */
    bool tls;                     /* it came over TLS */
    const char *protocol;         /* "HTTP/2.0" for the access log; NULL: HTTP/1.<minor> */
    struct span trailers;         /* a chunked body's trailer section, once read */
    struct route_state *route;    /* the router's per-request state (rewrites,
                                     internal redirects), or NULL */
};

/* An open file a body piece (or an output segment) holds: closed when
 * done, or handed back with release(ctx) if it is shared (verbd.h). */
struct file_hold {
    int fd; /* -1: none */
    void (*release)(void *ctx);
    void *ctx;
};

void file_hold_drop(struct file_hold *h);

/* A piece of the response body: bytes of `body` (fd < 0, ptr NULL), bytes
 * the handler lends (ptr, given back with release(ctx) once copied out or
 * dropped), or a range of a file.  Each file has its own descriptor; the
 * last piece of a file holds it, so it is released once that piece is
 * sent. */
struct body_piece {
    int fd;
    struct file_hold hold;
    uint64_t offset; /* into body.p, or into the file */
    uint64_t len;
    const char *ptr;
    void (*release)(void *ctx);
    void *ctx;
};

/* Gives back what a piece holds (its file, or its lent bytes). */
void body_piece_drop(struct body_piece *p);

#define RESPONSE_NO_LENGTH UINT64_MAX

struct verbd_response {
    int status;
    struct buf head;     /* the handler's fields, "Name: value\r\n" */
    bool has_date;       /* the handler sent its own Date */
    uint64_t length;     /* stated Content-Length, or RESPONSE_NO_LENGTH */
    struct buf trailers; /* trailer fields, "Name: value\r\n" */
    struct buf body;     /* memory parts of the body */
    struct body_piece *pieces;
    size_t npieces, cap_pieces;
    bool close; /* close the connection after sending */
};

void response_init(struct verbd_response *res);
/* Forgets everything (releasing files) but keeps memory. */
void response_reset(struct verbd_response *res);
/* Forgets the body pieces handed over, keeping status and fields. */
void response_clear_body(struct verbd_response *res);
void response_free(struct verbd_response *res);
/* Total length of the pieces not yet handed over. */
uint64_t response_body_length(const struct verbd_response *res);
/* The handler's fields as name/value pairs, in order (for a session that
 * does not send HTTP/1 lines).  0, or -1 past the end. */
int response_field_at(const struct verbd_response *res, size_t *pos, struct span *name,
                      struct span *value);

/* What an exchange asks of the session that owns it. */
struct vx_session_ops {
    /* Takes the response's status, fields (first call) and body pieces;
     * `last`: the response is complete.  Returns true while under the
     * exchange's output bound. */
    bool (*send)(void *sess, struct verbd_exchange *x, bool last);
    void (*abort)(void *sess, struct verbd_exchange *x);
    /* Starts, pauses or resumes delivering the body to x->on_data. */
    void (*read)(void *sess, struct verbd_exchange *x);
    void (*pause)(void *sess, struct verbd_exchange *x, bool paused);
    void (*send_continue)(void *sess, struct verbd_exchange *x);
    /* An informational response (1xx but 100 and 101) before the final
     * one: status and "Name: value\r\n" field lines. */
    void (*send_interim)(void *sess, struct verbd_exchange *x, int status, const char *fields,
                         size_t len);
    /* Sends the 101 head and turns the connection into a tunnel whose
     * input is delivered to x->on_data; false if this request cannot be
     * upgraded (then nothing was sent). */
    bool (*upgrade)(void *sess, struct verbd_exchange *x);
};

struct vx_handle;

/* A body filter: between the module and the session, it may change the
 * head and transform the body pieces (compression, lib/mod/compress/).
 * The core knows none by name; the router attaches one per exchange
 * (route_start).  Both calls run before the session sees what they
 * changed. */
struct vx_filter {
    /* Once, after head_filter, before the head is committed; `last`: the
     * whole body is among the pieces.  May change status and fields;
     * false: the filter steps aside and the body passes untouched. */
    bool (*head)(struct verbd_exchange *x, void *arg, bool last);
    /* Takes the body pieces of x->res and puts in their place what goes
     * out; `last`: the module finished the response.  Returns true while
     * it still holds input it has not transformed: it then has put out
     * some bytes (so the session's output will drain), and is called
     * again once it has, before the module hears it may write. */
    bool (*body)(struct verbd_exchange *x, void *arg, bool last);
};

struct verbd_exchange {
    /* Kept from one use to the next (the pool): memory, not state. */
    struct arena arena;
    struct verbd_response res;
    struct verbd_exchange *next_free;

    /* Everything from here is zeroed for each exchange. */
    struct verbd_request req;
    struct loop *loop;
    const struct vx_session_ops *ops;
    void *sess;
    const struct buf *extra_head; /* the mapping's `header` lines */
    /* Called once with the final status and fields, before the session
     * takes them (the location's `expires`), or NULL. */
    void (*head_filter)(struct verbd_exchange *x);
    /* Called before head_filter while the head is not sent yet (`last`:
     * the response is complete), or NULL: true if it took the exchange
     * over (error_page answers instead), and then nothing is sent for
     * this call. */
    bool (*intercept)(struct verbd_exchange *x, bool last);
    /* The body filter, or NULL: most exchanges have none. */
    const struct vx_filter *filter;
    void *filter_arg;
    struct log_target *log; /* its server's error log, or NULL */

    bool head_sent; /* the session committed status and fields */
    bool finished;  /* the response is complete (or aborted) */
    bool aborted;
    bool filter_busy; /* the filter holds input: it runs again on writable */
    bool closing;     /* the module finished; the filter has not yet */
    bool continued;   /* 100 Continue went out */
    bool reading;     /* the module reads the body */
    bool paused;
    bool body_done;      /* the body was delivered to its end (or failed) */
    uint64_t body_bytes; /* response body bytes handed to the session */

    void (*on_data)(struct verbd_exchange *x, const void *p, size_t n, void *arg);
    void (*on_done)(struct verbd_exchange *x, int status, void *arg);
    void *read_arg;
    void (*on_writable)(struct verbd_exchange *x, void *arg);
    void *writable_arg;
    bool end_on_client_end; /* verbd_end_on_client_end */

    struct vx_handle *handles;     /* timers, watches, deferred calls */
    struct vx_handle *spare_defer; /* deferred calls that ran, for the next ones */
};

/* An exchange for a session, from a small per-process pool: the common
 * request allocates nothing beyond it. */
struct verbd_exchange *vx_new(struct loop *loop, const struct vx_session_ops *ops, void *sess);
/* Ends it: cancels what it registered, runs its cleanups, frees its arena
 * and returns it to the pool.  The session calls this once the response is
 * finished or aborted and the body settled. */
void vx_end(struct verbd_exchange *x);
/* The client went away: the exchange ends without its response. */
void vx_client_gone(struct verbd_exchange *x);
/* Copies a parsed request head (and its field array) into the arena, so
 * nothing points into the session's input buffer. */
void vx_take_request(struct verbd_exchange *x, const struct http_request *h, const char *head);
/* Copies a chunked body's trailer section (field lines and the final
 * CRLF, validated) into the arena, before the body's end is delivered. */
void vx_take_trailers(struct verbd_exchange *x, const char *p, size_t n);
/* The session delivers body bytes and the end of the body. */
void vx_body_data(struct verbd_exchange *x, const void *p, size_t n);
void vx_body_done(struct verbd_exchange *x, int status);
/* The session's output fell under the bound. */
void vx_writable(struct verbd_exchange *x);
/* Whether the session should call vx_writable once its output drained:
 * the module asked to hear it, or a filter has input left. */
static inline bool vx_wants_writable(const struct verbd_exchange *x)
{
    return x->on_writable || x->filter_busy;
}
/* Whether the exchange ends with the client's side of the connection
 * (verbd_end_on_client_end): asked, and nothing more is read from the
 * client for it. */
static inline bool vx_ends_with_client(const struct verbd_exchange *x)
{
    return x->end_on_client_end && !x->finished && (!x->reading || x->body_done);
}
/* Frees the pooled exchanges (at worker exit). */
void vx_pool_free(void);

#endif
