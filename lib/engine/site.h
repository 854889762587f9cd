/* Origin servers and the listeners that reach them.  A site is one
 * `server` block (or the one implicit server of a file without any): its
 * host names, its mappings and method decision, and its own settings.
 * A listener is one bound address with the sites that share it; the
 * request's Host picks among them. */
#ifndef VERBD_ENGINE_SITE_H
#define VERBD_ENGINE_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/settings.h"
#include "route/route.h"

struct tls_config;

/* An address a site listens on, as configured. */
struct site_listen {
    struct sockaddr_storage addr;
    char text[64]; /* as written: "127.0.0.1:8080" */
    bool tls;
    bool default_server;
};

struct site {
    struct verbd_server *srv;
    char **names; /* server_name: "example.org", "*.example.org", "www.example.*" */
    size_t nnames;
    struct site_listen *listens;
    size_t nlistens;
    struct route_table routes;
    /* Its settings: the server's (top level), then its own on top. */
    struct settings settings;
    struct buf overrides; /* its own, as "name\0value\0" pairs */
    struct log_sink *access_log;
    struct log_target *error_log; /* its own, or NULL: the server's */
    struct tls_config *tls;       /* its certificate, for TLS addresses, or NULL */
    bool redirect_to_https;       /* plain requests go to the TLS site of the name */
    int stats;                    /* its counters (core/stats.h), or -1 */
    unsigned in_flight;           /* exchanges started on it */
    bool retired;                 /* replaced by a reload: freed when unused */
};

struct listener {
    int fd;
    char name[64]; /* "127.0.0.1:8080", "[::1]:8080" */
    struct sockaddr_storage addr;
    bool tls;
    /* The sites reachable here, the address's default first. */
    struct site **sites;
    size_t nsites;
};

struct site *site_new(struct verbd_server *srv);
void site_free(struct site *s);

/* Adds a host name: exact, "*.suffix" or "prefix.*" (lower-cased); "_"
 * is accepted and matches nothing.  -1 + err if malformed. */
int site_add_name(struct site *s, const char *name, char *err, size_t errlen);
/* A setting of its own (a server-wide one an origin server may have);
 * -1 + err if invalid or server-wide only. */
int site_set(struct site *s, const char *name, const char *value, char *err, size_t errlen);
/* True if `name` is a setting a site may have. */
bool site_setting_allowed(const char *name);

/* Makes the settings (the server's with the site's own on top) and the
 * method sets final; opens its access log.  -1 + err on failure. */
int site_settle(struct site *s, const struct settings *server, char *err, size_t errlen);

/* The site a request for `host` (a Host value or an absolute target's
 * authority, port and all; empty without one) reaches on l: exact name,
 * then the longest "*.suffix", then the longest "prefix.*", else the
 * address's default. */
struct site *site_select(const struct listener *l, const char *host, size_t len);

/* Whether the host name a TLS client sent (SNI) and the request's Host
 * reach different sites on l: then the request is misdirected (421). */
bool site_misdirected(const struct listener *l, const char *sni, const struct site *chosen);

/* redirect_to_https: answers x, a plain request that no location of its
 * site maps, with a redirect to the TLS site of the same name (the first
 * of the listeners ls that has TLS): 301 for GET and HEAD, 308 for other
 * methods that site implements.  False (nothing answered) if there is no
 * such site or it does not implement the method. */
bool site_redirect_to_https(const struct listener *ls, size_t nls, struct verbd_exchange *x);

/* An exchange starts or ends on s; a retired site goes with its last. */
void site_hold(struct site *s);
void site_release(struct site *s);
/* A reload replaced s: it goes (worker_exit, then freed) once the last
 * exchange on it ends, at once if none is in flight.  In_worker: its
 * module instances had worker_init. */
void site_retire(struct site *s, bool in_worker);

#endif
