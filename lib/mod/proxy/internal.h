/* What the proxy module's files share: the instance (one mapping's
 * upstream and settings) and the upstream connection calls. */
#ifndef VERBD_MOD_PROXY_INTERNAL_H
#define VERBD_MOD_PROXY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cache/fresh.h"
#include "cache/store.h"
#include "core/buf.h"
#include "core/loop.h"
#include "http/response.h"
#include "mod/access/rules.h"
#include "route/module.h"
#include "upstream/upstream.h"
#include "verbd.h"

struct ask;
struct cachex;
struct revalidation;

struct proxy_inst {
    struct upstream_group *group; /* a named `upstream`, or one of the URL's address */
    char *prefix;                 /* the upstream path the location's prefix becomes ("/v1/") */
    char *authority;              /* host[:port] of the URL, for a Host the operator asks for */
    uint64_t connect_timeout_ms, send_timeout_ms, read_timeout_ms;
    bool forwarded;            /* add Forwarded and X-Forwarded-For/-Proto/-Host */
    uint64_t learn_ms;         /* proxy_learn: how long a 501 without freshness counts; 0: off */
    struct buf set_headers;    /* proxy_set_header: "Name\0value\0" pairs */
    struct buf hide_headers;   /* proxy_hide_header: "Name\0" each */
    bool fix_allow;            /* proxy_fix_allow: ask OPTIONS for a 405 without Allow */
    uint64_t options_every_ms; /* proxy_learn_options: ask OPTIONS * this often; 0: never */
    /* Per worker: the loop, the timer of the next OPTIONS *, the one asked. */
    struct loop *loop;
    struct loop_timer options_timer;
    struct ask *options_ask;
    struct allow_memo *memo; /* the Allow fields so found, per worker */
    /* The cache (docs/cache.md): its zone (NULL: none), key template
     * (NULL: scheme, host and target), cache_bypass values ("tmpl\0"
     * each), cache_min_uses, cache_heuristic, cache_max_entry (0: the
     * default). */
    struct zone *zone;
    char *cache_key;
    struct buf bypass;
    unsigned min_uses;
    struct heuristic heuristic;
    uint64_t max_entry;
    char *cache_targeted;      /* cache_targeted_field: its name, or NULL */
    struct access_rule *purge; /* cache_purge: who may PURGE here */
    size_t npurge;
    struct revalidation *revalidations; /* per worker, in the background */
};

/* The Allow an upstream's OPTIONS gave for target (an upstream path), while
 * fresh; NULL if none is known. */
const char *allow_memo_get(struct proxy_inst *in, const char *target);
void allow_memo_put(struct proxy_inst *in, const char *target, const char *allow, size_t len);

/* Parses "http://NAME[/PREFIX]" (an `upstream` group), "http://HOST[:PORT]
 * [/PREFIX]" or "http://unix:/PATH:[/PREFIX]" into in's group, prefix and
 * authority.  -1 + err if malformed or unresolvable. */
int proxy_parse_url(struct proxy_inst *in, const struct module_env *env, const char *url, char *err,
                    size_t errlen);

/* Appends the path the upstream gets for req: the location's prefix
 * replaced by the URL's (forward.c). */
void proxy_upstream_path(struct buf *b, const struct proxy_inst *in,
                         const struct verbd_request *req);

/* Whether the field `name` of the upstream's answer r goes on to the
 * client (and into what the cache stores): not hop-by-hop, not Server,
 * not hidden by proxy_hide_header, not the cache's targeted field
 * (forward.c).  Location, Content-Location and Allow go on rewritten. */
bool proxy_field_relayed(const struct proxy_inst *in, const struct http_response *r,
                         struct span name);

/* Starts forwarding the exchange (forward.c). */
void proxy_forward(struct proxy_inst *in, struct verbd_exchange *x, struct cachex *cx);

#endif
