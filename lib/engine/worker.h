/* One worker process: an event loop over the shared listeners, the signal
 * descriptor and its own HTTP/1 and HTTP/2 sessions. */
#ifndef VERBD_ENGINE_WORKER_H
#define VERBD_ENGINE_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/loop.h"
#include "engine/http1.h"
#include "engine/http2.h"
#include "engine/server.h"

struct listen_watch;

struct worker {
    struct verbd_server *srv;
    struct loop *loop;
    struct http1_host host;
    struct http2_host h2;
    struct loop_watch signal_watch;
    int signal_fd;
    struct listen_watch *listen_watches;
    bool hangup; /* SIGHUP seen: reload or re-open the logs */
    bool reopen; /* SIGUSR1 seen: re-open the logs */
    uint64_t stop_deadline;
};

#endif
