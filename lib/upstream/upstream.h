/* Upstream groups: the servers a gateway module (the proxy, later
 * FastCGI) sends requests to.  A group is named in the config (`upstream
 * NAME { server ADDR ...; }`) or made for one address; it picks a member
 * (weighted round robin or least connections), skips a member that failed
 * max_fails times for fail_timeout (passive health), and keeps idle
 * connections to each member in every worker. */
#ifndef VERBD_UPSTREAM_UPSTREAM_H
#define VERBD_UPSTREAM_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/loop.h"

struct upstream_conn;

struct upstream_member {
    char *name; /* "127.0.0.1:9000", "unix:/run/app.sock" */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int weight, current; /* smooth weighted round robin */
    unsigned max_fails;  /* 0: never marked down */
    uint64_t fail_timeout_ms;
    unsigned fails;             /* in a row */
    uint64_t down_until;        /* clock_ms(); 0: up */
    unsigned active;            /* requests under way (least connections) */
    struct upstream_conn *idle; /* kept connections, newest first */
    size_t nidle;
};

/* A connection to a member.  Its watch stays on the worker's loop from
 * connect to close, edge-triggered for input and output, so a request
 * that reuses it costs no epoll call, and a kept connection the member
 * closes (or writes to unasked) is noticed and closed at once.  While an
 * exchange owns it, events go to on_io(owner, events). */
struct upstream_conn {
    int fd;
    struct upstream_group *group;
    struct upstream_member *member;
    struct loop *loop;
    struct loop_watch watch;
    void (*on_io)(void *owner, uint32_t events);
    void *owner; /* NULL while kept */
    struct upstream_conn *next;
};

struct upstream_group {
    char *name;
    struct upstream_member *members;
    size_t n;
    bool least_conn;
    size_t max_idle; /* idle connections kept per member and worker */
    unsigned refs;
};

/* The groups a configuration defines. */
struct upstream_set {
    struct upstream_group **v;
    size_t n;
};

struct upstream_group *upstream_group_new(const char *name);
void upstream_group_hold(struct upstream_group *g);
/* Drops a reference; the last one closes idle connections and frees g. */
void upstream_group_release(struct upstream_group *g);

/* Adds a member: "HOST:PORT", "[V6]:PORT" or "unix:/PATH", resolved now;
 * options: space-separated weight=N, max_fails=N, fail_timeout=DURATION.
 * -1 + err if malformed or unresolvable. */
int upstream_group_add(struct upstream_group *g, const char *addr, const char *options, char *err,
                       size_t errlen);
/* A group setting: "balance" round_robin|least_conn, "keepalive" N. */
int upstream_group_set(struct upstream_group *g, const char *name, const char *value, char *err,
                       size_t errlen);

/* Adds g to s (which holds a reference); -1 + err if the name is taken. */
int upstream_set_add(struct upstream_set *s, struct upstream_group *g, char *err, size_t errlen);
struct upstream_group *upstream_set_find(const struct upstream_set *s, const char *name);
void upstream_set_free(struct upstream_set *s);

/* The member the next request goes to, other than `not` (a retry): up
 * members first; when every one is down, the one that comes back first.
 * Counts it as under way until upstream_member_done. */
struct upstream_member *upstream_pick(struct upstream_group *g,
                                      const struct upstream_member * not );
/* The request on m ended: ok, or failed for m's fault (no connection, a
 * reset, a timeout), which counts toward marking it down. */
void upstream_member_done(struct upstream_member *m, bool ok);

/* A connection to m for owner: a kept one (*reused), else a new
 * non-blocking one whose connect may be in progress (its first output
 * event says it is done); NULL with errno. */
struct upstream_conn *upstream_conn_open(struct upstream_group *g, struct upstream_member *m,
                                         struct loop *loop, bool *reused,
                                         void (*on_io)(void *owner, uint32_t events), void *owner);
/* Keeps c for the next request to its member (closes it past the cap). */
void upstream_conn_keep(struct upstream_conn *c);
/* Closes c and frees it. */
void upstream_conn_close(struct upstream_conn *c);
/* Closes every idle connection of g's members (a worker ends). */
void upstream_group_drop_idle(struct upstream_group *g);

#endif
