/* One worker process: an epoll loop over the shared listeners and its own
 * connections. */
#ifndef VERBD_CORE_WORKER_H
#define VERBD_CORE_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/conn.h"
#include "core/exchange.h"
#include "core/server.h"

struct worker {
    struct verbd_server *srv;
    int epfd;
    struct source signal_src;
    struct source *listen_srcs;
    struct conn **conns;
    size_t nconns, cap_conns;
    char **spare_bufs;       /* input buffers to reuse */
    size_t nspare;
    size_t in_cap;           /* size of every input buffer */
    struct http_limits limits;
    struct http_field *fields;
    char *path_buf;
    struct verbd_request req;  /* the request being answered */
    struct verbd_response res;
    bool stopping;
    bool hangup;             /* SIGHUP seen: reload or re-open the logs */
    uint64_t stop_deadline;
};

char *worker_take_buf(struct worker *w);
void worker_give_buf(struct worker *w, char *buf);
void worker_forget_conn(struct worker *w, struct conn *c);

#endif
