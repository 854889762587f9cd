/* Counters for /status, summed over workers without locks.  One shared
 * memory region, mapped by the process that runs the server before it
 * forks its workers, holds a block of counters per worker and origin
 * server; each block is written only by its worker (plain relaxed
 * stores: no locked instruction on the hot path) and read by whichever
 * worker answers a status request, which adds up every worker's.  The
 * region outlives workers and reloads: counters only go up for the
 * lifetime of the process that runs the server. */
#ifndef VERBD_CORE_STATS_H
#define VERBD_CORE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/method.h"
#include "http/status.h"

/* Methods: the registered ones by id, then one `other` for the rest. */
#define STATS_METHOD_OTHER METHOD_REGISTERED_COUNT
#define STATS_METHODS (METHOD_REGISTERED_COUNT + 1)
/* Statuses: the status table's, then one per class (1xx to 5xx) for codes
 * outside it. */
#define STATS_CODES (HTTP_STATUS_COUNT + 5)
/* The longest origin server label kept (longer ones are cut). */
#define STATS_NAME_MAX 256

/* The protocol of a request: HTTP/1.0 and HTTP/1.1 as the request line
 * says, HTTP/2 (h2 over TLS, h2c on a plain address).  A connection's:
 * the session that serves it, STATS_PROTO_HTTP11 for HTTP/1 (the HTTP/1
 * session answers HTTP/1.0 requests too). */
enum stats_proto {
    STATS_PROTO_HTTP10,
    STATS_PROTO_HTTP11,
    STATS_PROTO_H2,
    STATS_PROTOS,
};

/* What the HTTP/1 session can tell of a connection. */
enum stats_conn {
    STATS_CONN_READING, /* a request head (or a body nobody reads) coming in */
    STATS_CONN_WRITING, /* an exchange in flight, or a response finishing */
    STATS_CONN_IDLE,    /* kept alive between requests */
    STATS_CONN_STATES,
    STATS_CONN_NONE = -1,
};

/* One origin server's counters in one worker. */
struct stats_block {
    uint64_t requests[STATS_METHODS][STATS_CODES];
    uint64_t refusals[STATS_METHODS][2]; /* 501, 405 */
    uint64_t protocols[STATS_PROTOS];    /* requests, by protocol */
};

/* One worker's connection counters (a cache line of its own or more). */
struct stats_worker {
    _Alignas(64) uint64_t received, sent; /* bytes */
    uint64_t accepted;                    /* connections */
    uint64_t conns[STATS_CONN_STATES];    /* open now, by state */
    uint64_t sessions[STATS_PROTOS];      /* connections, by protocol once settled */
};

/* Maps the region for `workers` workers and up to `servers` origin
 * server labels, in the process that forks the workers; kept if one is
 * mapped that is big enough.  -1 (nothing is counted then) on failure. */
int stats_open(unsigned workers, unsigned servers);
/* This process is worker `index` (0 with a single worker): its counters
 * are that slot's from now on.  A worker that replaces one that died
 * carries on its counters; connection gauges start from zero. */
void stats_enter_worker(unsigned index);

/* The block index of the origin server labelled `name`, claimed on first
 * use (the same in every worker, and across reloads); -1 without a
 * region.  When every label is taken, the last, "(other)", is shared. */
int stats_server(const char *name);

/* This worker's blocks and connection counters, or NULL (no region: a
 * test, an embedding program's `verbd -t`). */
extern struct stats_block *stats_blocks;
extern struct stats_worker *stats_self;

/* Relaxed atomic adds: a worker normally writes its block alone, but a
 * worker that replaces one still finishing its requests (a reload under
 * `user`) shares that block for a while, so two writers must not lose
 * each other's counts; readers in other processes see each value whole. */
static inline void stats_add(uint64_t *p, uint64_t n)
{
    __atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

static inline void stats_sub(uint64_t *p, uint64_t n)
{
    __atomic_fetch_sub(p, n, __ATOMIC_RELAXED);
}

/* A response went out (as its access-log line is written): `method_id`
 * is METHOD_* (or anything else: `other`; -1 for a request whose head
 * did not parse), `server` stats_server()'s index, `proto` a
 * STATS_PROTO_* (STATS_PROTO_HTTP11 for a head that did not parse). */
void stats_response(int server, int method_id, int status, int proto);

/* Bytes read from and written to a client connection. */
static inline void stats_received(uint64_t n)
{
    if (stats_self)
        stats_add(&stats_self->received, n);
}

static inline void stats_sent(uint64_t n)
{
    if (stats_self)
        stats_add(&stats_self->sent, n);
}

/* A connection moves from one state to another (STATS_CONN_NONE: opened
 * or closed). */
static inline void stats_conn_move(int from, int to)
{
    if (!stats_self || from == to)
        return;
    if (from != STATS_CONN_NONE)
        stats_sub(&stats_self->conns[from], 1);
    if (to != STATS_CONN_NONE)
        stats_add(&stats_self->conns[to], 1);
    if (from == STATS_CONN_NONE)
        stats_add(&stats_self->accepted, 1);
}

/* A connection another session accepted (and counted) goes on in this
 * one, in state `to`: the HTTP/1 session hands an h2c connection to the
 * HTTP/2 session once it has seen the preface. */
static inline void stats_conn_adopt(int to)
{
    if (stats_self && to != STATS_CONN_NONE)
        stats_add(&stats_self->conns[to], 1);
}

/* The protocol of a connection is settled (STATS_PROTO_*): ALPN, or the
 * first bytes on a plain address. */
static inline void stats_conn_protocol(int proto)
{
    if (stats_self)
        stats_add(&stats_self->sessions[proto], 1);
}

/* ---- reading: what the status module shows ---------------------------------- */

/* Labels are read by index below stats_servers() (0 without a region);
 * the name of label i, or NULL if it is free or repeats an earlier one
 * (two processes that claimed a new name at once: its counters are added
 * to the first's). */
unsigned stats_servers(void);
const char *stats_server_name(unsigned i);
/* Adds every worker's counters for label i (and its twins) into *sum. */
void stats_sum_server(unsigned i, struct stats_block *sum);
/* The number of workers; adds worker w's connection counters into *sum. */
unsigned stats_workers(void);
void stats_add_worker(unsigned w, struct stats_worker *sum);
/* When the region was mapped (seconds since the epoch), or 0. */
int64_t stats_started(void);

/* The method and status labels of a counter's position. */
const char *stats_proto_label(int proto);
const char *stats_method_label(int i);
/* "200", or "4xx" for the class positions; into out (4 bytes). */
const char *stats_code_label(int i, char *out);

/* Appends a label value in the text exposition format's quoting. */
void stats_put_label(struct buf *b, const char *s, size_t n);

#endif
