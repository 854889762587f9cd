/* The server object of verbd.h: listeners, settings, mappings, and the
 * supervisor that runs one worker per core. */
#include "engine/server.h"

#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/stats.h"
#include "engine/notify.h"
#include "engine/tls.h"

#include <openssl/crypto.h>

#define LISTEN_BACKLOG 4096
/* Labels in /status for origin servers that reloads add or rename, over
 * those the server starts with and the last, shared, "(other)". */
#define STATS_SPARE_LABELS 64

static void add_site(struct verbd_server *srv, struct site *s)
{
    struct site **v = realloc(srv->sites, (srv->nsites + 1) * sizeof *v);
    if (!v)
        abort();
    srv->sites = v;
    srv->sites[srv->nsites++] = s;
}

struct verbd_server *verbd_server_new(void)
{
    struct verbd_server *srv = calloc(1, sizeof *srv);
    if (srv) {
        settings_defaults(&srv->settings);
        srv->main_pid = getpid();
        add_site(srv, site_new(srv));
    }
    return srv;
}

static void free_sites(struct verbd_server *srv)
{
    for (size_t i = 0; i < srv->nsites; i++)
        site_free(srv->sites[i]);
    free(srv->sites);
    srv->sites = NULL;
    srv->nsites = 0;
}

void verbd_server_free(struct verbd_server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->nlisteners; i++) {
        close(srv->listeners[i].fd);
        free(srv->listeners[i].sites);
    }
    free(srv->listeners);
    free_sites(srv);
    upstream_set_free(&srv->upstreams);
    settings_free(&srv->settings);
    buf_free(&srv->overrides);
    if (srv->reload_ctx_free)
        srv->reload_ctx_free(srv->reload_ctx);
    free(srv);
}

/* Splits "host:port", "[v6]:port" or ":port" (any address). */
static int split_address(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':' || (size_t)(close - addr - 1) >= hostlen)
            return -1;
        memcpy(host, addr + 1, (size_t)(close - addr - 1));
        host[close - addr - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= hostlen ||
            memchr(addr, ':', (size_t)(colon - addr)))
            return -1;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
    }
    const char *p = colon + 1;
    if (!*p || strlen(p) >= portlen || strspn(p, "0123456789") != strlen(p) || atol(p) > 65535)
        return -1;
    strcpy(port, p);
    return 0;
}

static void name_address(const struct sockaddr *sa, char *out, size_t len)
{
    char host[NI_MAXHOST], port[NI_MAXSERV];
    socklen_t salen =
        sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (getnameinfo(sa, salen, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, len, "?");
        return;
    }
    snprintf(out, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

struct addrinfo *listen_resolve(const char *addr, char *err, size_t errlen)
{
    char host[256], port[8];
    if (split_address(addr, host, sizeof host, port, sizeof port) < 0) {
        snprintf(err, errlen, "invalid listen address \"%s\" (want ADDR:PORT or [V6]:PORT)", addr);
        return NULL;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    int rc = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: %s", addr, gai_strerror(rc));
        return NULL;
    }
    return ai;
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

static struct listener *find_listener(struct verbd_server *srv, const struct sockaddr_storage *a)
{
    for (size_t i = 0; i < srv->nlisteners; i++)
        if (same_address(&srv->listeners[i].addr, a))
            return &srv->listeners[i];
    return NULL;
}

/* Binds the resolved address ai as a new listener. */
static struct listener *bind_listener(struct verbd_server *srv, const char *addr,
                                      const struct addrinfo *ai, char *err, size_t errlen)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* Wake a worker only once a connection has data (up to a second):
         * its first read then finds the request. */
        setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one);
        /* Accepted connections inherit it: no setsockopt per connection. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "listen %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct listener *l = realloc(srv->listeners, (srv->nlisteners + 1) * sizeof *l);
    if (!l)
        abort();
    srv->listeners = l;
    l = &srv->listeners[srv->nlisteners++];
    *l = (struct listener){.fd = fd};
    socklen_t blen = sizeof l->addr;
    getsockname(fd, (struct sockaddr *)&l->addr, &blen);
    name_address((struct sockaddr *)&l->addr, l->name, sizeof l->name);
    return l;
}

int verbd_server_listen(struct verbd_server *srv, const char *addr, char *err, size_t errlen)
{
    if (srv->explicit_sites) {
        snprintf(err, errlen,
                 "listen %s: the server has server blocks (sites): each lists its own "
                 "addresses",
                 addr);
        return -1;
    }
    struct addrinfo *ai = listen_resolve(addr, err, errlen);
    if (!ai)
        return -1;
    struct listener *l = bind_listener(srv, addr, ai, err, errlen);
    freeaddrinfo(ai);
    return l ? 0 : -1;
}

int server_site_listen(struct site *s, const char *addr, const char *flags, bool bind, char *err,
                       size_t errlen)
{
    struct site_listen sl = {0};
    for (const char *p = flags ? flags : ""; *p;) {
        size_t n = strcspn(p, " ");
        if (n == 14 && strncmp(p, "default_server", n) == 0) {
            sl.default_server = true;
        } else if (n == 3 && strncmp(p, "tls", n) == 0) {
            sl.tls = true;
        } else if (n) {
            snprintf(err, errlen, "listen: unknown flag \"%.*s\" (want tls, default_server)",
                     (int)n, p);
            return -1;
        }
        p += n + strspn(p + n, " ");
    }
    struct addrinfo *ai = listen_resolve(addr, err, errlen);
    if (!ai)
        return -1;
    memcpy(&sl.addr, ai->ai_addr,
           ai->ai_addrlen < sizeof sl.addr ? ai->ai_addrlen : sizeof sl.addr);
    snprintf(sl.text, sizeof sl.text, "%s", addr);
    for (size_t i = 0; i < s->nlistens; i++) {
        if (same_address(&s->listens[i].addr, &sl.addr)) {
            snprintf(err, errlen, "listen %s twice in one server", addr);
            freeaddrinfo(ai);
            return -1;
        }
    }
    if (bind) {
        struct listener *l = find_listener(s->srv, &sl.addr);
        if (l && l->tls != sl.tls) {
            snprintf(err, errlen, "listen %s: %s here, %s in another server", addr,
                     sl.tls ? "tls" : "plain", l->tls ? "tls" : "plain");
            freeaddrinfo(ai);
            return -1;
        }
        if (!l && !(l = bind_listener(s->srv, addr, ai, err, errlen))) {
            freeaddrinfo(ai);
            return -1;
        }
        l->tls = sl.tls;
        sl.addr = l->addr; /* port 0: the one bound */
    }
    freeaddrinfo(ai);
    struct site_listen *v = realloc(s->listens, (s->nlistens + 1) * sizeof *v);
    if (!v)
        abort();
    s->listens = v;
    s->listens[s->nlistens++] = sl;
    return 0;
}

struct verbd_site *verbd_server_add_site(struct verbd_server *srv, char *err, size_t errlen)
{
    if (!srv->explicit_sites) {
        if (srv->sites[0]->routes.n) {
            snprintf(err, errlen,
                     "the server has mappings of its own: with sites, every mapping is a "
                     "site's");
            return NULL;
        }
        free_sites(srv);
        srv->explicit_sites = true;
    }
    struct site *s = site_new(srv);
    add_site(srv, s);
    return (struct verbd_site *)s;
}

int verbd_site_listen(struct verbd_site *site, const char *addr, const char *flags, char *err,
                      size_t errlen)
{
    return server_site_listen((struct site *)site, addr, flags, true, err, errlen);
}

struct verbd_upstream *verbd_server_upstream(struct verbd_server *srv, const char *name, char *err,
                                             size_t errlen)
{
    struct upstream_group *g = upstream_group_new(name);
    if (upstream_set_add(&srv->upstreams, g, err, errlen) < 0) {
        upstream_group_release(g);
        return NULL;
    }
    return (struct verbd_upstream *)g;
}

int verbd_upstream_server(struct verbd_upstream *up, const char *addr, const char *options,
                          char *err, size_t errlen)
{
    return upstream_group_add((struct upstream_group *)up, addr, options, err, errlen);
}

int verbd_upstream_set(struct verbd_upstream *up, const char *name, const char *value, char *err,
                       size_t errlen)
{
    return upstream_group_set((struct upstream_group *)up, name, value, err, errlen);
}

int verbd_site_tls(struct verbd_site *site, const char *certificate, const char *key,
                   const char *protocols, const char *ciphers, char *err, size_t errlen)
{
    struct site *s = (struct site *)site;
    struct tls_config *c = tls_config_new(certificate, key, protocols, ciphers, err, errlen);
    if (!c)
        return -1;
    tls_config_free(s->tls);
    s->tls = c;
    tls_config_set_owner(c, s);
    return 0;
}

int verbd_site_name(struct verbd_site *site, const char *name, char *err, size_t errlen)
{
    return site_add_name((struct site *)site, name, err, errlen);
}

int verbd_site_set(struct verbd_site *site, const char *name, const char *value, char *err,
                   size_t errlen)
{
    return site_set((struct site *)site, name, value, err, errlen);
}

struct verbd_mapping *verbd_site_map(struct verbd_site *site, const char *location,
                                     const char *module, const char *arg, char *err, size_t errlen)
{
    return (struct verbd_mapping *)route_add(&((struct site *)site)->routes, location, module, arg,
                                             err, errlen);
}

struct verbd_mapping *verbd_site_map_handler(struct verbd_site *site, const char *location,
                                             const char *methods, verbd_handler_fn *fn, void *data,
                                             char *err, size_t errlen)
{
    return (struct verbd_mapping *)route_add_handler(&((struct site *)site)->routes, location,
                                                     methods, fn, NULL, data, err, errlen);
}

struct verbd_mapping *verbd_site_map_async(struct verbd_site *site, const char *location,
                                           const char *methods, verbd_start_fn *fn, void *data,
                                           char *err, size_t errlen)
{
    return (struct verbd_mapping *)route_add_handler(&((struct site *)site)->routes, location,
                                                     methods, NULL, fn, data, err, errlen);
}

/* The server's own mappings: its implicit site's. */
static struct verbd_site *implicit_site(struct verbd_server *srv, char *err, size_t errlen)
{
    if (srv->explicit_sites) {
        snprintf(err, errlen, "the server has sites: map into one of them");
        return NULL;
    }
    return (struct verbd_site *)srv->sites[0];
}

const char *verbd_server_listener_name(const struct verbd_server *srv, size_t i)
{
    return i < srv->nlisteners ? srv->listeners[i].name : NULL;
}

int verbd_server_listener_tls(const struct verbd_server *srv, size_t i)
{
    return i < srv->nlisteners && srv->listeners[i].tls;
}

int verbd_server_set(struct verbd_server *srv, const char *name, const char *value, char *err,
                     size_t errlen)
{
    if (settings_set(&srv->settings, name, value, err, errlen) < 0)
        return -1;
    if (srv->reload) {
        buf_append(&srv->overrides, name, strlen(name) + 1);
        buf_append(&srv->overrides, value, strlen(value) + 1);
    }
    return 0;
}

struct verbd_mapping *verbd_server_map(struct verbd_server *srv, const char *location,
                                       const char *module, const char *arg, char *err,
                                       size_t errlen)
{
    struct verbd_site *s = implicit_site(srv, err, errlen);
    return s ? verbd_site_map(s, location, module, arg, err, errlen) : NULL;
}

struct verbd_mapping *verbd_server_map_handler(struct verbd_server *srv, const char *location,
                                               const char *methods, verbd_handler_fn *fn,
                                               void *data, char *err, size_t errlen)
{
    struct verbd_site *s = implicit_site(srv, err, errlen);
    return s ? verbd_site_map_handler(s, location, methods, fn, data, err, errlen) : NULL;
}

struct verbd_mapping *verbd_server_map_async(struct verbd_server *srv, const char *location,
                                             const char *methods, verbd_start_fn *fn, void *data,
                                             char *err, size_t errlen)
{
    struct verbd_site *s = implicit_site(srv, err, errlen);
    return s ? verbd_site_map_async(s, location, methods, fn, data, err, errlen) : NULL;
}

int verbd_mapping_set(struct verbd_mapping *map, const char *name, int argc,
                      const char *const *argv, char *err, size_t errlen)
{
    return route_set((struct route_mapping *)map, name, argc, argv, err, errlen);
}

/* The sites reachable on listener l: the implicit site everywhere, or
 * those listing its address, the address's default first. */
static void reach_sites(struct verbd_server *srv, struct listener *l)
{
    free(l->sites);
    l->sites = calloc(srv->nsites, sizeof *l->sites);
    if (!l->sites)
        abort();
    l->nsites = 0;
    if (!srv->explicit_sites) {
        l->sites[l->nsites++] = srv->sites[0];
        return;
    }
    for (size_t i = 0; i < srv->nsites; i++) {
        struct site *s = srv->sites[i];
        for (size_t j = 0; j < s->nlistens; j++) {
            if (!same_address(&s->listens[j].addr, &l->addr))
                continue;
            if (s->listens[j].default_server && l->nsites) {
                memmove(l->sites + 1, l->sites, l->nsites * sizeof *l->sites);
                l->sites[0] = s;
            } else {
                l->sites[l->nsites] = s;
            }
            l->nsites++;
        }
    }
}

/* Makes every site's settings and method sets final and tells each
 * listener which sites it reaches.  -1 (logged) if a listener reaches
 * none. */
static int settle_sites(struct verbd_server *srv)
{
    char err[256];
    int rc = 0;
    for (size_t i = 0; i < srv->nsites; i++) {
        if (site_settle(srv->sites[i], &srv->settings, err, sizeof err) < 0) {
            log_msg(LOG_ERROR, "%s", err);
            rc = -1;
        }
    }
    for (size_t i = 0; i < srv->nlisteners; i++) {
        struct listener *l = &srv->listeners[i];
        reach_sites(srv, l);
        if (!l->nsites) {
            log_msg(LOG_ERROR, "no server listens on %s", l->name);
            rc = -1;
        }
        for (size_t j = 0; l->tls && j < l->nsites; j++) {
            if (!l->sites[j]->tls) {
                log_msg(LOG_ERROR, "listen %s tls: a server there has no tls_certificate", l->name);
                rc = -1;
                break;
            }
        }
    }
    return rc;
}

void verbd_server_on_reload(struct verbd_server *srv, struct verbd_server *(*load)(void *ctx),
                            void *ctx, void (*free_ctx)(void *ctx))
{
    if (srv->reload_ctx_free)
        srv->reload_ctx_free(srv->reload_ctx);
    srv->reload = load;
    srv->reload_ctx = ctx;
    srv->reload_ctx_free = free_ctx;
    buf_reset(&srv->overrides);
}

/* Settings that size per-worker buffers keep their values until a restart. */
static const char *const restart_only[] = {"max_target", "max_header", "max_fields", "workers"};

struct verbd_server *server_reload_prepare(struct verbd_server *srv)
{
    struct verbd_server *next = srv->reload ? srv->reload(srv->reload_ctx) : NULL;
    if (!next)
        return NULL;
    char err[256];
    for (size_t at = 0; at < srv->overrides.len;) {
        const char *name = srv->overrides.p + at;
        const char *value = name + strlen(name) + 1;
        at = (size_t)(value + strlen(value) + 1 - srv->overrides.p);
        settings_set(&next->settings, name, value, err, sizeof err); /* it took before */
    }
    return next;
}

void server_reload_apply(struct verbd_server *srv, struct verbd_server *next, bool in_worker)
{
    struct settings *now = &srv->settings, *new = &next->settings;
    if (now->max_target != new->max_target || now->max_header != new->max_header ||
        now->max_fields != new->max_fields || now->workers != new->workers) {
        log_msg(LOG_WARN, "reload: %s, %s, %s and %s take effect only after a restart",
                restart_only[0], restart_only[1], restart_only[2], restart_only[3]);
        new->max_target = now->max_target;
        new->max_header = now->max_header;
        new->max_fields = now->max_fields;
        new->workers = now->workers;
    }
    if ((now->user || new->user) && (!now->user || !new->user || strcmp(now->user, new->user))) {
        log_msg(LOG_WARN, "reload: user takes effect only after a restart");
        char *keep = new->user;
        new->user = now->user;
        now->user = keep;
    }
    struct settings old = *now;
    *now = *new;
    *new = old; /* freed with `next` */

    char err[256];
    if (log_open(now->error_log, now->log_level, err, sizeof err) < 0)
        log_msg(LOG_ERROR, "reload: %s", err);
    for (size_t i = 0; i < srv->nsites; i++)
        site_retire(srv->sites[i], in_worker);
    upstream_set_free(&srv->upstreams); /* instances hold the groups they use */
    srv->upstreams = next->upstreams;
    next->upstreams = (struct upstream_set){0};
    free(srv->sites);
    srv->sites = next->sites;
    srv->nsites = next->nsites;
    srv->explicit_sites = next->explicit_sites;
    next->sites = NULL;
    next->nsites = 0;
    for (size_t i = 0; i < srv->nsites; i++) {
        struct site *s = srv->sites[i];
        s->srv = srv;
        for (size_t j = 0; j < s->nlistens; j++)
            if (!find_listener(srv, &s->listens[j].addr))
                log_msg(LOG_WARN, "reload: listen %s takes effect only after a restart",
                        s->listens[j].text);
    }
    if (settle_sites(srv) < 0) /* a listener no new site names keeps the first */
        for (size_t i = 0; i < srv->nlisteners; i++)
            if (!srv->listeners[i].nsites)
                srv->listeners[i].sites[srv->listeners[i].nsites++] = srv->sites[0];
    verbd_server_free(next);
    log_msg(LOG_INFO, "reloaded the configuration");
}

void verbd_server_describe(const struct verbd_server *srv, FILE *out)
{
    for (size_t i = 0; i < srv->nsites; i++) {
        struct site *s = srv->sites[i];
        if (srv->explicit_sites) {
            fprintf(out, "%sserver", i ? "\n" : "");
            for (size_t j = 0; j < s->nnames; j++)
                fprintf(out, " %s", s->names[j]);
            for (size_t j = 0; j < s->nlistens; j++)
                fprintf(out, "%s%s%s", j ? ", " : " on ", s->listens[j].text,
                        s->listens[j].default_server ? " (default_server)" : "");
            route_finish(&s->routes);
            fprintf(out, ":\nimplements: %s\n", s->routes.implemented_text);
        }
        route_finish(&s->routes);
        route_describe(&s->routes, out);
    }
}

void verbd_server_stop(struct verbd_server *srv)
{
    /* The process that runs the server: with several workers their
     * supervisor, which stops them all. */
    kill(srv->main_pid, SIGTERM);
}

/* In a new worker: the user of `user`, its groups, and no way back to
 * root.  -1 (logged) if any step fails: the worker must not serve. */
static int drop_privileges(const struct verbd_server *srv)
{
    if (setgroups(0, NULL) < 0 || initgroups(srv->user_name, srv->gid) < 0 ||
        setgid(srv->gid) < 0 || setuid(srv->uid) < 0) {
        log_msg(LOG_ERROR, "worker: cannot become user %s: %s", srv->user_name, strerror(errno));
        return -1;
    }
    if (getuid() == 0 || geteuid() == 0 || setuid(0) == 0) {
        log_msg(LOG_ERROR, "worker: still root after becoming user %s", srv->user_name);
        return -1;
    }
    return 0;
}

/* Worker `index` (its counters' slot: a replacement takes over the
 * counters of the worker it replaces, and so does a new worker that
 * takes the place of a retiring one while both run). */
static pid_t spawn_worker(struct verbd_server *srv, int index)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        if (srv->drop && drop_privileges(srv) < 0)
            _exit(1);
        /* A worker whose supervisor died (even by SIGKILL) stops too; after
         * the change of user, which clears this setting. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(0);
        stats_enter_worker((unsigned)index);
        _exit(worker_run(srv) == 0 ? 0 : 1);
    }
    if (pid < 0)
        log_msg(LOG_ERROR, "fork: %s", strerror(errno));
    return pid;
}

/* Workers that run an older configuration until their graceful stop. */
struct retiring {
    pid_t *v;
    size_t n;
};

static void retire(struct retiring *r, pid_t pid)
{
    pid_t *v = realloc(r->v, (r->n + 1) * sizeof *v);
    if (!v)
        abort();
    r->v = v;
    r->v[r->n++] = pid;
    kill(pid, SIGTERM);
}

static bool retired(struct retiring *r, pid_t pid)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i] == pid) {
            r->v[i] = r->v[--r->n];
            return true;
        }
    }
    return false;
}

static void signal_all(pid_t *pids, int n, const struct retiring *r, int sig)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], sig);
    for (size_t i = 0; i < r->n; i++)
        kill(r->v[i], sig);
}

/* SIGHUP in the supervisor.  Workers that reload for themselves are told
 * to; workers that run as `user` could not read what a reload reads (keys,
 * a config only root reads), so the supervisor reloads and replaces them:
 * new ones start on the new configuration while the old ones finish what
 * they have (a graceful stop). */
static void supervisor_reload(struct verbd_server *srv, pid_t *pids, int n, struct retiring *r,
                              int *alive)
{
    notify_reloading();
    route_report();
    struct verbd_server *next = srv->reload ? server_reload_prepare(srv) : NULL;
    if (next)
        server_reload_apply(srv, next, false); /* for workers started from now on */
    else
        log_reopen();
    if (!srv->drop) {
        signal_all(pids, n, r, SIGHUP);
    } else if (!next) {
        signal_all(pids, n, r, SIGUSR1); /* the logs, at least */
    } else {
        for (int i = 0; i < n; i++) {
            if (pids[i] > 0)
                retire(r, pids[i]);
            if ((pids[i] = spawn_worker(srv, i)) > 0)
                ++*alive;
        }
    }
    notify("READY=1");
}

/* The supervisor's list of its workers, named here so that a worker
 * forked while it runs (a replacement) keeps its copy reachable, not
 * lost (memcheck); volatile: only ever written, and kept all the same. */
static pid_t *volatile supervised;

/* The parent of several workers: forwards signals, replaces a worker that
 * dies unexpectedly, and returns once all have stopped. */
static int supervise(struct verbd_server *srv, int n, const sigset_t *signals)
{
    pid_t *pids = supervised = calloc((size_t)n, sizeof *pids);
    if (!pids)
        return -1;
    struct retiring old = {0};
    int alive = 0;
    for (int i = 0; i < n; i++)
        if ((pids[i] = spawn_worker(srv, i)) > 0)
            alive++;
    bool stopping = alive == 0;
    int rc = alive ? 0 : -1;
    if (alive)
        notify("READY=1");
    while (alive) {
        int sig = sigwaitinfo(signals, NULL);
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping)
                notify("STOPPING=1");
            stopping = true;
            signal_all(pids, n, &old, SIGTERM);
        } else if (sig == SIGHUP && !stopping) {
            supervisor_reload(srv, pids, n, &old, &alive);
        } else if (sig == SIGUSR1) {
            /* Here first: a file created here is made the workers' own
             * before they open it. */
            log_reopen();
            signal_all(pids, n, &old, SIGUSR1);
        } else if (sig == SIGCHLD) {
            int status;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                if (retired(&old, pid)) {
                    alive--;
                    continue;
                }
                for (int i = 0; i < n; i++) {
                    if (pids[i] != pid)
                        continue;
                    pids[i] = 0;
                    alive--;
                    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                    if (!clean)
                        rc = stopping ? -1 : rc;
                    if (!stopping) {
                        log_msg(LOG_ERROR, "worker %d ended unexpectedly (status %d); restarting",
                                pid, status);
                        if ((pids[i] = spawn_worker(srv, i)) > 0)
                            alive++;
                    }
                }
            }
        }
    }
    free(old.v);
    free(pids);
    supervised = NULL;
    return rc;
}

static long cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* `user` when running as root: whom the workers become, and the owner of
 * the log files created from here on.  Not root: a notice, and the
 * workers run as whoever started verbd.  -1 (logged) if the user is gone. */
static int resolve_user(struct verbd_server *srv)
{
    const char *value = srv->settings.user;
    srv->drop = false;
    if (!value)
        return 0;
    if (geteuid() != 0)
        return 0; /* said once the error log is open */
    size_t n = strcspn(value, " ");
    if (n >= sizeof srv->user_name) {
        log_msg(LOG_ERROR, "user %s: name too long", value);
        return -1;
    }
    memcpy(srv->user_name, value, n);
    srv->user_name[n] = '\0';
    const char *group = value + n + strspn(value + n, " ");
    struct passwd *pw = getpwnam(srv->user_name);
    struct group *gr = *group ? getgrnam(group) : NULL;
    if (!pw || (*group && !gr)) {
        log_msg(LOG_ERROR, "user %s: no such %s", value, pw ? "group" : "user");
        return -1;
    }
    if (pw->pw_uid == 0) {
        log_msg(LOG_ERROR, "user %s: that is root; workers never run as root", value);
        return -1;
    }
    srv->uid = pw->pw_uid;
    srv->gid = gr ? gr->gr_gid : pw->pw_gid;
    srv->drop = true;
    log_files_owner(srv->uid, srv->gid);
    return 0;
}

int verbd_server_run(struct verbd_server *srv)
{
    char err[256];
    const struct settings *s = &srv->settings;
    notify_init();
    if (resolve_user(srv) < 0)
        return -1;
    if (log_open(s->error_log, s->log_level, err, sizeof err) < 0) {
        fprintf(stderr, "verbd: %s\n", err);
        return -1;
    }
    if (s->user && !srv->drop)
        log_msg(LOG_INFO, "user %s: verbd does not run as root, so it stays the user it is",
                s->user);
    if (srv->nlisteners == 0) {
        log_msg(LOG_ERROR, "no listening address");
        return -1;
    }
    int workers = s->workers ? s->workers : (int)cpu_count();
    /* The counters every worker writes its own of; room for the labels of
     * servers a reload adds (stats.h), in address space only. */
    stats_open((unsigned)workers, (unsigned)srv->nsites + STATS_SPARE_LABELS + 1);
    if (settle_sites(srv) < 0 || route_process_init() < 0)
        return -1;
    /* Before the workers fork: all of them, and those forked later, share
     * the secret session tickets are protected with. */
    if (tls_tickets_init() < 0) {
        log_msg(LOG_ERROR, "TLS: no random bytes for the session ticket keys");
        return -1;
    }
    for (size_t i = 0; i < srv->nlisteners; i++) {
        if (srv->listeners[i].tls) {
            log_msg(LOG_INFO, "TLS with %s; files sent %s", OpenSSL_version(OPENSSL_VERSION),
                    tls_ktls_available() ? "by kernel TLS where a connection allows it"
                                         : "through a 16 KiB buffer (no kernel TLS here)");
            break;
        }
    }
    srv->main_pid = getpid(); /* workers forked from here inherit it */
    signal(SIGPIPE, SIG_IGN);

    sigset_t signals, old;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGUSR1);
    sigaddset(&signals, SIGCHLD);
    sigprocmask(SIG_BLOCK, &signals, &old);
    int rc;
    if (workers == 1 && !srv->drop) {
        /* One process, no supervisor: ready once it is about to serve. */
        notify("READY=1");
        stats_enter_worker(0);
        rc = worker_run(srv);
    } else {
        /* With `user`, even one worker gets a supervisor that stays root. */
        rc = supervise(srv, workers, &signals);
    }
    route_report();
    sigprocmask(SIG_SETMASK, &old, NULL);
    log_files_owner((uid_t)-1, (gid_t)-1);
    log_close();
    return rc;
}
