/* One request's way to an upstream group, for every gateway module: the
 * member it goes to, the connection (kept or new), fail-over to the next
 * member while nothing was sent, and the connection's I/O.  What is sent
 * and what the answer means are the module's. */
#ifndef VERBD_UPSTREAM_ATTEMPT_H
#define VERBD_UPSTREAM_ATTEMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "upstream/upstream.h"

struct verbd_exchange;
struct verbd_timer;

/* How long an attempt waits for the member: to accept the connection, to
 * take the request (reset by every write), to answer (by every read). */
struct upstream_timeouts {
    uint64_t connect_ms, send_ms, read_ms;
};

/* What the attempt tells the module that owns it. */
struct upstream_owner {
    void (*ready)(void *owner); /* the connection may be written or read: drive it */
    void (*failed)(void *owner, const char *why); /* no connection to any member */
    void (*timed_out)(void *owner); /* the timer ran out (the module says what was late) */
    void *owner;
};

struct upstream_attempt {
    struct upstream_group *group;
    const char *module;             /* "proxy", "fastcgi": names the log lines */
    struct upstream_member *member; /* under way; NULL once done */
    unsigned tries;                 /* members tried */
    struct upstream_conn *conn;     /* owned while the request is under way */
    bool reused;                    /* a kept connection */
    bool connected;
    /* The connection's watch is edge-triggered: `readable` until a read
     * comes up short, `peer_shut` once the member closed its side (then
     * reads go on to the end, as no later edge reports it). */
    bool readable, peer_shut;
    struct verbd_exchange *x; /* the exchange the timer belongs to */
    struct verbd_timer *timer;
    struct upstream_timeouts t;
    struct upstream_owner o;
};

/* Starts an attempt on group g for exchange x; the attempt tells `o` of
 * the connection's readiness, its failure and its timeouts. */
void upstream_attempt_init(struct upstream_attempt *a, struct upstream_group *g, const char *module,
                           struct verbd_exchange *x, const struct upstream_timeouts *t,
                           const struct upstream_owner *o);

/* A connection to the next member: a kept one (ready at once: the owner
 * drives it itself), or a new one whose connect is in progress (ready()
 * once done).  A member whose connection fails counts as failed and the
 * next is tried while nothing was sent.  False, after failed(), when no
 * member is left. */
bool upstream_attempt_connect(struct upstream_attempt *a);

/* Sends out[*at, out->len) until it is all sent or the connection would
 * block: 1 all sent (the answer is due: the read timeout runs), 0 would
 * block, -1 failed (errno). */
int upstream_attempt_send(struct upstream_attempt *a, const struct buf *out, size_t *at);

/* Reads at most room bytes into p: the count; 0 when nothing is there now
 * (the next edge says when); -1 at the end of the connection (errno 0) or
 * on an error (errno). */
ssize_t upstream_attempt_recv(struct upstream_attempt *a, char *p, size_t room);

/* Closes the connection and opens another to the same member, for a
 * request to go again: false (errno) if none can be had. */
bool upstream_attempt_reconnect(struct upstream_attempt *a);

/* The timer: stopped (the request ended, or something else waits on the
 * member for a while), or the read timeout from now. */
void upstream_attempt_stop_timer(struct upstream_attempt *a);
void upstream_attempt_await(struct upstream_attempt *a);

/* Gives the connection back: kept for the member's next request, or
 * closed.  Nothing if there is none. */
void upstream_attempt_release(struct upstream_attempt *a, bool keep);
/* The request on the member ended: ok, or failed for the member's fault
 * (it counts toward marking it down).  Nothing if already done. */
void upstream_attempt_done(struct upstream_attempt *a, bool ok);

#endif
