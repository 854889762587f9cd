/* What the proxy module's files share: the instance (one mapping's
 * upstream and settings) and the upstream connection calls. */
#ifndef VERBD_MOD_PROXY_INTERNAL_H
#define VERBD_MOD_PROXY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "verbd.h"

/* The upstream of a mapping: where it is, and its idle keep-alive
 * connections in this worker. */
struct upstream {
    char *name; /* as configured: "127.0.0.1:9000", "unix:/run/app.sock" */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int *idle; /* connections kept for reuse, newest last */
    size_t nidle, max_idle;
};

struct proxy_inst {
    struct upstream up;
    char *prefix;    /* the upstream path the location's prefix becomes ("/v1/") */
    char *authority; /* host[:port] of the URL, for a Host the operator asks for */
    uint64_t connect_timeout_ms, send_timeout_ms, read_timeout_ms;
    bool forwarded;          /* add Forwarded and X-Forwarded-For/-Proto/-Host */
    uint64_t learn_ms;       /* proxy_learn: how long a 501 without freshness counts; 0: off */
    struct buf set_headers;  /* proxy_set_header: "Name\0value\0" pairs */
    struct buf hide_headers; /* proxy_hide_header: "Name\0" each */
};

/* Parses "http://HOST:PORT[/PREFIX]" or "http://unix:/PATH:[/PREFIX]" and
 * resolves the address.  -1 + err if malformed or unresolvable. */
int upstream_parse(struct proxy_inst *in, const char *url, char *err, size_t errlen);
/* A connection to the upstream: an idle one if a live one is kept (*reused
 * set), else a new non-blocking one whose connect may be in progress.
 * -1 with errno if the socket could not even be started. */
int upstream_connect(struct upstream *u, bool *reused);
/* Keeps fd for the next request (or closes it past the cap). */
void upstream_keep(struct upstream *u, int fd);
/* Closes every idle connection (the worker ends or the mapping goes). */
void upstream_drop_idle(struct upstream *u);

/* Starts forwarding the exchange (forward.c). */
void proxy_forward(struct proxy_inst *in, struct verbd_exchange *x);

#endif
