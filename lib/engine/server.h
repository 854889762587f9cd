/* The server object behind verbd.h, and what its workers share. */
#ifndef VERBD_ENGINE_SERVER_H
#define VERBD_ENGINE_SERVER_H

#include <netdb.h>
#include <signal.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/settings.h"
#include "engine/site.h"
#include "route/route.h"
#include "upstream/upstream.h"

struct verbd_server {
    struct settings settings; /* server-wide, and the sites' defaults */
    pid_t main_pid;           /* the process running it (the workers' supervisor) */
    struct listener *listeners;
    size_t nlisteners;
    /* The origin servers: one implicit site until the first `server`
     * block (verbd_server_add_site) replaces it. */
    struct site **sites;
    size_t nsites;
    bool explicit_sites;
    struct upstream_set upstreams; /* `upstream` groups, for gateway modules */
    /* SIGHUP's source of a new configuration (verbd_server_on_reload). */
    struct verbd_server *(*reload)(void *ctx);
    void *reload_ctx;
    void (*reload_ctx_free)(void *ctx);
    struct buf overrides; /* settings made after on_reload, as
                             "name\0value\0" pairs: a reload keeps them */
    /* `user`, when the server runs as root: the workers become this user
     * (verbd_server_run decides; the supervisor stays root). */
    bool drop;
    uid_t uid;
    gid_t gid;
    char user_name[256];
};

/* Reloading (SIGHUP), in two steps so that a worker can act in between:
 * prepare asks the reload source for a new server (NULL, with every error
 * logged, if it has errors); apply moves its sites and settings into the
 * running server (listeners and buffer sizes stay) and frees it; the old
 * sites retire (in_worker: once their exchanges end).  Between two
 * requests, so no request sees a mix. */
struct verbd_server *server_reload_prepare(struct verbd_server *srv);
void server_reload_apply(struct verbd_server *srv, struct verbd_server *next, bool in_worker);

/* Adds an address to site s: bound (or shared with a site bound to it
 * before) if `bind`, otherwise only checked.  `flags`: "default_server"
 * (and, later, "tls"), space-separated, or NULL.  -1 + err. */
int server_site_listen(struct site *s, const char *addr, const char *flags, bool bind, char *err,
                       size_t errlen);

/* Checks and resolves a listen address ("ADDR:PORT", "[V6]:PORT"): the
 * result for bind, or NULL with a message in err. */
struct addrinfo *listen_resolve(const char *addr, char *err, size_t errlen);

/* Serves on this process until a stop signal; the body of each worker. */
int worker_run(struct verbd_server *srv);

#endif
