/* The server object behind verbd.h, and what its workers share. */
#ifndef VERBD_ENGINE_SERVER_H
#define VERBD_ENGINE_SERVER_H

#include <netdb.h>
#include <signal.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/settings.h"
#include "route/route.h"

struct listener {
    int fd;
    char name[64]; /* "127.0.0.1:8080", "[::1]:8080" */
};

struct verbd_server {
    struct settings settings;
    pid_t main_pid; /* the process running it (the workers' supervisor) */
    struct listener *listeners;
    size_t nlisteners;
    struct route_table routes;
    /* SIGHUP's source of a new configuration (verbd_server_on_reload). */
    struct verbd_server *(*reload)(void *ctx);
    void *reload_ctx;
    void (*reload_ctx_free)(void *ctx);
    struct buf overrides; /* settings made after on_reload, as
                             "name\0value\0" pairs: a reload keeps them */
};

/* Reloading (SIGHUP), in two steps so that a worker can act in between:
 * prepare asks the reload source for a new server (NULL, with every error
 * logged, if it has errors); apply moves its mappings and settings into
 * the running server (listeners and buffer sizes stay) and frees it.
 * Between two requests, so no request sees a mix. */
struct verbd_server *server_reload_prepare(struct verbd_server *srv);
void server_reload_apply(struct verbd_server *srv, struct verbd_server *next);

/* Checks and resolves a listen address ("ADDR:PORT", "[V6]:PORT"): the
 * result for bind, or NULL with a message in err. */
struct addrinfo *listen_resolve(const char *addr, char *err, size_t errlen);

/* Serves on this process until a stop signal; the body of each worker. */
int worker_run(struct verbd_server *srv);

#endif
