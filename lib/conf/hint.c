/* Suggestions for unknown directive names.  Candidates are verbd's own
 * names (only those this build has) and nginx's spellings of the same
 * things, since most operators arrive knowing nginx.  An nginx name whose
 * verbd counterpart this build lacks gets an honest note, never a
 * suggestion that would be rejected in turn. */
#include "conf/hint.h"

#include <stdio.h>
#include <string.h>

#include "core/settings.h"
#include "route/module.h"
#include "route/route.h"

enum where { TOP, LOC, ANY };

/* The directives conf.c handles itself (conf_top_directives); the
 * settings (settings.c), the router's own directives (route.c), modules
 * and their directives are found in their tables. */

/* nginx's names.  `verbd` is the counterpart; when this build has it the
 * hint suggests it (with `usage` if set), otherwise it says `missing`. */
static const struct {
    const char *nginx, *verbd, *usage, *missing;
} nginx_names[] = {
    {"alias", "static", "inside a location, static DIR; serves DIR", NULL},
    {"autoindex", "listing", NULL, NULL},
    {"dav_methods", "webdav", "inside a location, webdav DIR; serves DIR read and written", NULL},
    {"limit_except", "methods", NULL, NULL},
    {"client_max_body_size", "max_body", NULL, NULL},
    {"client_header_timeout", "header_timeout", NULL, NULL},
    {"client_body_timeout", "body_timeout", NULL, NULL},
    {"keepalive_timeout", "idle_timeout", NULL, NULL},
    {"large_client_header_buffers", "max_header", NULL, NULL},
    {"worker_processes", "workers", NULL, NULL},
    {"worker_connections", "max_connections", NULL, NULL},
    {"add_header", "header", NULL, NULL},
    {"proxy_pass", "proxy", NULL, NULL},
    {"proxy_cache_path", "cache_zone", NULL, NULL},
    {"proxy_cache", "cache", NULL, NULL},
    {"proxy_cache_key", "cache_key", NULL, NULL},
    {"proxy_cache_bypass", "cache_bypass", NULL, NULL},
    {"proxy_cache_min_uses", "cache_min_uses", NULL, NULL},
    {"gzip_static", "precompressed", NULL, NULL},
    {"ssl_certificate", "tls_certificate", NULL, NULL},
    {"ssl_certificate_key", "tls_certificate_key", NULL, NULL},
    {"ssl_protocols", "tls_protocols", NULL, NULL},
    {"ssl_ciphers", "tls_ciphers", NULL, NULL},
};

unsigned conf_edit_distance(const char *a, const char *b, unsigned limit)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return limit + 1;
    if ((la > lb ? la - lb : lb - la) > limit)
        return limit + 1;
    /* Three rows of the optimal-string-alignment table. */
    unsigned rows[3][65], *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (unsigned)i;
        unsigned best = cur[0];
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = a[i - 1] != b[j - 1];
            unsigned v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (prev[j - 1] + cost < v)
                v = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            cur[j] = v;
            if (v < best)
                best = v;
        }
        if (best > limit)
            return limit + 1;
        unsigned *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb] <= limit ? prev[lb] : limit + 1;
}

static bool in_list(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

/* Where a verbd name is accepted, if this build has it at all. */
static bool verbd_has(const char *name, enum where *where)
{
    bool top = in_list(conf_top_directives, name) || settings_known(name) ||
               route_directive_inherited(name) || route_server_directive(name);
    bool loc = strcmp(name, "include") == 0 || module_find(name) || route_directive_known(name);
    *where = top && loc ? ANY : top ? TOP : LOC;
    return top || loc;
}

/* The best candidate so far: lower distance wins, then one that belongs
 * where the name was written, then the first found. */
struct best {
    unsigned dist;
    bool fits;
    const char *verbd; /* NULL: an nginx name whose counterpart is missing */
    int nginx;         /* index in nginx_names, or -1 */
};

static void consider(struct best *b, unsigned dist, bool fits, const char *verbd, int nginx)
{
    if (dist < b->dist || (dist == b->dist && fits && !b->fits))
        *b = (struct best){dist, fits, verbd, nginx};
}

/* Edits allowed for a name of this length: none for very short names,
 * where any two are close. */
static unsigned edit_limit(size_t len)
{
    return len <= 3 ? 0 : len <= 4 ? 1 : len <= 8 ? 2 : 3;
}

static void each_module_directive(struct best *b, const char *name, unsigned limit,
                                  bool in_location)
{
    for (size_t i = 0; verbd_builtin_modules[i]; i++) {
        const struct verbd_module *m = verbd_builtin_modules[i];
        unsigned d = conf_edit_distance(name, m->name, limit);
        if (d <= limit)
            consider(b, d, in_location, m->name, -1);
        for (const struct verbd_directive *dir = m->directives; dir && dir->name; dir++) {
            d = conf_edit_distance(name, dir->name, limit);
            if (d <= limit)
                consider(b, d, in_location, dir->name, -1);
        }
    }
    for (size_t i = 0; verbd_builtin_guards[i]; i++) {
        const struct verbd_directive *dir = verbd_builtin_guards[i]->directives;
        for (; dir && dir->name; dir++) {
            unsigned d = conf_edit_distance(name, dir->name, limit);
            if (d <= limit)
                consider(b, d, in_location, dir->name, -1);
        }
    }
}

/* A verbd name `v` this build has, as a candidate for `name`. */
static void consider_name(struct best *b, const char *name, const char *v, unsigned limit,
                          bool in_location)
{
    enum where w;
    unsigned d = conf_edit_distance(name, v, limit);
    if (d <= limit && verbd_has(v, &w))
        consider(b, d, w == ANY || (w == LOC) == in_location, v, -1);
}

void conf_hint(const char *name, bool in_location, char *out, size_t len)
{
    out[0] = '\0';
    unsigned limit = edit_limit(strlen(name));
    struct best b = {.dist = limit + 1, .nginx = -1};
    enum where w;
    const char *v;
    for (size_t i = 0; (v = conf_top_directives[i]); i++)
        consider_name(&b, name, v, limit, in_location);
    for (size_t i = 0; (v = settings_name(i)); i++)
        consider_name(&b, name, v, limit, in_location);
    for (size_t i = 0; (v = route_directive_name(i)); i++)
        consider_name(&b, name, v, limit, in_location);
    each_module_directive(&b, name, limit, in_location);
    /* An nginx name matches exactly (distance 0 beats any typo of a verbd
     * name) or, misspelt, only where no verbd name is as close. */
    for (size_t i = 0; i < sizeof nginx_names / sizeof nginx_names[0]; i++) {
        unsigned d = conf_edit_distance(name, nginx_names[i].nginx, limit);
        if (d > limit || d >= b.dist)
            continue;
        const char *v = nginx_names[i].verbd;
        bool has = v && verbd_has(v, &w);
        b = (struct best){d, has && (w == ANY || (w == LOC) == in_location), has ? v : NULL,
                          (int)i};
    }
    if (b.dist > limit)
        return;
    /* Named exactly, an nginx name needs no echo; misspelt, it does. */
    const char *echo = b.nginx >= 0 && b.dist ? nginx_names[b.nginx].nginx : NULL;
    if (!b.verbd && b.nginx >= 0) {
        snprintf(out, len, " (%s%s%s%s)", echo ? "nginx's " : "", echo ? echo : "",
                 echo ? "? " : "", nginx_names[b.nginx].missing);
        return;
    }
    const char *usage = b.nginx >= 0 ? nginx_names[b.nginx].usage : NULL;
    verbd_has(b.verbd, &w);
    const char *place = usage      ? usage
                        : b.fits   ? NULL
                        : w == LOC ? "it belongs inside a location"
                                   : "it belongs at the top level";
    snprintf(out, len, " (%s%s%sdid you mean %s?%s%s)", echo ? "nginx's " : "", echo ? echo : "",
             echo ? "? " : "", b.verbd, place ? " " : "", place ? place : "");
}
