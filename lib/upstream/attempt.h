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
    struct loop *loop;
    void (*on_io)(void *owner, uint32_t events);
    void *owner;
};

/* Starts an attempt on group g for owner, whose on_io gets the
 * connection's events. */
void upstream_attempt_init(struct upstream_attempt *a, struct upstream_group *g, const char *module,
                           struct loop *loop, void (*on_io)(void *owner, uint32_t events),
                           void *owner);

/* A connection to the next member: a kept one, or a new one whose connect
 * may be in progress.  A member whose connection fails at once counts as
 * failed and the next is tried.  False with the reason in why when no
 * member is left. */
bool upstream_attempt_connect(struct upstream_attempt *a, char *why, size_t len);

/* Takes an event of the connection: 1 go on (the connection is usable,
 * or readable); 0 its connect failed and the next member's connection is
 * being made (wait for its event); -1 its connect failed and no member is
 * left: why. */
int upstream_attempt_event(struct upstream_attempt *a, uint32_t events, char *why, size_t len);

/* Sends out[*at, out->len) until it is all sent or the connection would
 * block: 1 all sent, 0 would block, -1 failed (errno).  *progress is set
 * if any byte went. */
int upstream_attempt_send(struct upstream_attempt *a, const struct buf *out, size_t *at,
                          bool *progress);

/* Reads at most room bytes into p: the count; 0 when nothing is there now
 * (the next edge says when); -1 at the end of the connection (errno 0) or
 * on an error (errno). */
ssize_t upstream_attempt_recv(struct upstream_attempt *a, char *p, size_t room);

/* Closes the connection and opens another to the same member, for a
 * request to go again: false (errno) if none can be had. */
bool upstream_attempt_reconnect(struct upstream_attempt *a);

/* Gives the connection back: kept for the member's next request, or
 * closed.  Nothing if there is none. */
void upstream_attempt_release(struct upstream_attempt *a, bool keep);
/* The request on the member ended: ok, or failed for the member's fault
 * (it counts toward marking it down).  Nothing if already done. */
void upstream_attempt_done(struct upstream_attempt *a, bool ok);

#endif
