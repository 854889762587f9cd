/* Origin servers: host names, their own settings, and the choice of one
 * by Host. */
#include "engine/site.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/stats.h"
#include "engine/server.h"
#include "engine/tls.h"

/* What an origin server may set for itself; everything else is
 * server-wide (workers, buffer sizes, the error log). */
static const char *const site_settings[] = {
    "error_log",     "log_level",    "access_log",   "max_body", "unknown_method",
    "refusal_cache", "body_timeout", "send_timeout", "min_rate", "header_timeout",
    "idle_timeout",  "http2",        NULL,
};

struct site *site_new(struct verbd_server *srv)
{
    struct site *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->srv = srv;
    s->stats = -1;
    settings_defaults(&s->settings);
    if (srv)
        s->routes.upstreams = &srv->upstreams;
    return s;
}

void site_free(struct site *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nnames; i++)
        free(s->names[i]);
    free(s->names);
    free(s->listens);
    route_free(&s->routes);
    settings_free(&s->settings);
    buf_free(&s->overrides);
    log_sink_release(s->access_log);
    log_target_release(s->error_log);
    tls_config_free(s->tls);
    free(s);
}

static bool name_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

int site_add_name(struct site *s, const char *name, char *err, size_t errlen)
{
    size_t n = strlen(name);
    const char *core = name;
    size_t core_len = n;
    if (n > 2 && strncmp(name, "*.", 2) == 0) {
        core += 2;
        core_len -= 2;
    } else if (n > 2 && strcmp(name + n - 2, ".*") == 0) {
        core_len -= 2;
    } else if (n > 1 && name[0] == '.') {
        core += 1;
        core_len -= 1;
    }
    bool ok = n > 0 && n < 256 && core_len > 0;
    bool literal = ok && name[0] == '[' && name[n - 1] == ']'; /* an IPv6 address */
    for (size_t i = 0; ok && i < core_len; i++)
        ok =
            name_char(core[i]) || (literal && (core[i] == ':' || core[i] == '[' || core[i] == ']'));
    if (!ok) {
        snprintf(err, errlen,
                 "server_name \"%s\" is not a host name (want example.org, *.example.org, "
                 "www.example.* or _)",
                 name);
        return -1;
    }
    char **names = realloc(s->names, (s->nnames + 1) * sizeof *names);
    char *copy = strdup(name);
    if (!names || !copy)
        abort();
    for (char *p = copy; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    s->names = names;
    s->names[s->nnames++] = copy;
    return 0;
}

bool site_setting_allowed(const char *name)
{
    for (size_t i = 0; site_settings[i]; i++)
        if (strcmp(site_settings[i], name) == 0)
            return true;
    return false;
}

int site_set(struct site *s, const char *name, const char *value, char *err, size_t errlen)
{
    if (!site_setting_allowed(name)) {
        snprintf(err, errlen, "%s is server-wide: set it at the top level, not in a server", name);
        return -1;
    }
    if (settings_set(&s->settings, name, value, err, errlen) < 0)
        return -1;
    buf_append(&s->overrides, name, strlen(name) + 1);
    buf_append(&s->overrides, value, strlen(value) + 1);
    return 0;
}

int site_settle(struct site *s, const struct settings *server, char *err, size_t errlen)
{
    settings_free(&s->settings);
    settings_copy(&s->settings, server);
    for (size_t at = 0; at < s->overrides.len;) {
        const char *name = s->overrides.p + at;
        const char *value = name + strlen(name) + 1;
        at = (size_t)(value + strlen(value) + 1 - s->overrides.p);
        settings_set(&s->settings, name, value, err, errlen); /* it took before */
    }
    struct route_table *t = &s->routes;
    t->unknown_405 = s->settings.unknown_method == 405;
    t->refusal_max_age = s->settings.refusal_max_age;
    t->max_body = s->settings.max_body;
    t->has_max_body = s->settings.max_body != BODY_LIMIT_UNSET;
    route_finish(t);
    if (s->tls)
        tls_config_set_http2(s->tls, s->settings.http2);
    /* Its label in /status: its first name, else its first address as
     * written, else "_" (an implicit server listening on --listen). */
    s->stats = stats_server(s->nnames ? s->names[0] : s->nlistens ? s->listens[0].text : "_");
    struct log_sink *old = s->access_log;
    int rc = log_sink_open(s->settings.access_log, &s->access_log, err, errlen);
    log_sink_release(old);
    /* An error log of its own only where it differs from the server's. */
    struct log_target *old_target = s->error_log;
    s->error_log = NULL;
    if (rc == 0 && (strcmp(s->settings.error_log, server->error_log) != 0 ||
                    s->settings.log_level != server->log_level))
        rc = log_target_open(s->settings.error_log, s->settings.log_level, &s->error_log, err,
                             errlen);
    log_target_release(old_target);
    return rc;
}

/* The host part of a Host value: without the port or a final dot. */
static size_t host_part(const char *host, size_t len)
{
    size_t n = len;
    if (n && host[0] == '[') {
        const char *close = memchr(host, ']', n);
        n = close ? (size_t)(close - host) + 1 : n;
    } else {
        const char *colon = memchr(host, ':', n);
        if (colon)
            n = (size_t)(colon - host);
    }
    if (n && host[n - 1] == '.')
        n--;
    return n;
}

/* How well `name` matches: 0 not at all; otherwise exact beats every
 * leading wildcard, which beats every trailing one, and a longer
 * wildcard beats a shorter. */
static size_t match_rank(const char *name, const char *host, size_t n)
{
    enum { EXACT = 3 << 10, LEADING = 2 << 10, TRAILING = 1 << 10 };
    size_t len = strlen(name);
    if (strcmp(name, "_") == 0)
        return 0; /* a catch-all by convention: the default server is */
    if (name[0] == '*' || name[0] == '.') {
        const char *suffix = name[0] == '*' ? name + 1 : name; /* ".example.org" */
        size_t sl = strlen(suffix);
        if (n > sl && strncasecmp(host + n - sl, suffix, sl) == 0)
            return LEADING + sl;
        if (name[0] == '.' && n == sl - 1 && strncasecmp(host, suffix + 1, n) == 0)
            return LEADING + sl; /* ".example.org" also means example.org */
        return 0;
    }
    if (len > 2 && strcmp(name + len - 2, ".*") == 0) {
        size_t pl = len - 1; /* "www.example." */
        return n > pl && strncasecmp(host, name, pl) == 0 ? TRAILING + pl : 0;
    }
    return len == n && strncasecmp(host, name, n) == 0 ? EXACT : 0;
}

struct site *site_select(const struct listener *l, const char *host, size_t len)
{
    if (l->nsites == 1)
        return l->sites[0];
    size_t n = host_part(host, len);
    struct site *best = l->sites[0];
    size_t best_rank = 0;
    for (size_t i = 0; n && i < l->nsites; i++) {
        const struct site *s = l->sites[i];
        for (size_t j = 0; j < s->nnames; j++) {
            size_t r = match_rank(s->names[j], host, n);
            if (r > best_rank) {
                best_rank = r;
                best = l->sites[i];
            }
        }
    }
    return best;
}

bool site_misdirected(const struct listener *l, const char *sni, const struct site *chosen)
{
    return l->nsites > 1 && site_select(l, sni, strlen(sni)) != chosen;
}

/* The port of a listener's address. */
static int listener_port(const struct listener *l)
{
    if (l->addr.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
}

bool site_redirect_to_https(const struct listener *ls, size_t nls, struct verbd_exchange *x)
{
    const struct http_request *h = &x->req.http;
    for (size_t i = 0; i < nls; i++) {
        if (!ls[i].tls || !ls[i].nsites)
            continue;
        const struct site *twin = site_select(&ls[i], h->host.p, h->host.n);
        const struct route_table *t = &twin->routes;
        int id = route_method_id(t, h->method.p, h->method.n);
        if (id == METHOD_UNKNOWN || !(t->implemented & METHOD_BIT(id)))
            return false;
        size_t n = host_part(h->host.p, h->host.n);
        int port = listener_port(&ls[i]);
        struct buf loc = {0};
        buf_printf(&loc, "https://%.*s", (int)n, h->host.p);
        if (port != 443)
            buf_printf(&loc, ":%d", port);
        buf_append(&loc, h->path.p, h->path.n);
        if (h->query.p) {
            buf_append(&loc, "?", 1);
            buf_append(&loc, h->query.p, h->query.n);
        }
        buf_append(&loc, "", 1);
        bool safe = id == METHOD_GET || id == METHOD_HEAD;
        struct verbd_response *res = &x->res;
        verbd_response_error(res, safe ? 301 : 308, "This server is reached over https.");
        verbd_response_header(res, "Location", loc.p);
        buf_free(&loc);
        verbd_finish(x);
        return true;
    }
    return false;
}

static void free_if_unused(struct site *s)
{
    if (!s->retired || s->in_flight)
        return;
    route_worker_exit(&s->routes);
    site_free(s);
}

void site_hold(struct site *s)
{
    s->in_flight++;
}

void site_release(struct site *s)
{
    s->in_flight--;
    free_if_unused(s);
}

void site_retire(struct site *s, bool in_worker)
{
    if (!in_worker) {
        site_free(s); /* no exchanges, no worker state */
        return;
    }
    s->retired = true;
    free_if_unused(s);
}
