/* A client connection: reads request heads, answers them in order, reads
 * (and discards) bodies, writes responses, and closes cleanly. */
#ifndef VERBD_CORE_CONN_H
#define VERBD_CORE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/exchange.h"
#include "http/chunked.h"

struct worker;

/* What an epoll event points at: a listener, the signal fd, or a conn. */
enum source_kind { SOURCE_LISTENER, SOURCE_SIGNAL, SOURCE_CONN };

struct source {
    enum source_kind kind;
    int fd;
};

/* A piece of queued output: bytes of `out` (fd < 0) or a file range. */
struct out_seg {
    int fd;
    struct file_hold hold;  /* on a file's last segment: dropped once sent */
    uint64_t off, len;
};

enum conn_state { CONN_HEAD, CONN_BODY, CONN_LINGER };

/* A request whose module reads the body before answering: the head is kept
 * (the input buffer moves on) and parsed again once the body is in. */
struct pending {
    struct buf head;
    struct buf body;     /* for a module without streaming callbacks */
    const struct route_mapping *mapping;  /* a streaming module's mapping */
    void *state;         /* its state, until handle() takes it */
};

struct conn {
    struct source src;  /* first: epoll data points here */
    uint32_t index;     /* in worker->conns */
    enum conn_state state;
    bool idle;          /* between requests, nothing received yet */
    bool eof;           /* the client will send nothing more */
    bool drained;       /* the socket had no more input at the last read */
    bool peer_shut;     /* the client closed its side: read to the end */
    bool read_failed;   /* the socket reported an error on reading */
    bool close_after;   /* close once the output is flushed */
    bool linger;        /* ... after draining what the client still sends */
    bool body_chunked;
    uint64_t body_left; /* Content-Length bytes still to discard */
    struct chunked chunked;
    struct pending *pending;
    char *in;           /* worker-sized input buffer, or NULL when empty */
    size_t in_start, in_len;
    struct buf out;
    struct out_seg *segs;
    size_t seg_head, nsegs, cap_segs;
    uint64_t read_deadline, write_deadline;
    uint32_t lingered;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
};

/* Takes an accepted, non-blocking socket. */
void conn_open(struct worker *w, int fd, const struct sockaddr *peer, socklen_t peer_len);
/* The first pass over a batch of epoll events: reads what the socket
 * holds (`events`: the epoll mask), so that the requests of the whole batch
 * are in before any is answered and can share one epoch (clock.h). */
void conn_take_input(struct worker *w, struct conn *c, uint32_t events);
/* The second pass, and any other time: answers what is in, writes, reads
 * more if it can, closes. */
void conn_run(struct worker *w, struct conn *c);
/* Applies read and write deadlines. */
void conn_check_timers(struct worker *w, struct conn *c);
/* Closes at once if nothing is in flight (graceful stop). */
void conn_stop_if_idle(struct worker *w, struct conn *c);
void conn_close(struct worker *w, struct conn *c);
/* True while a request body streams into a module instance. */
bool conn_streams_into_module(const struct conn *c);

#endif
