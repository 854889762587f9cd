/* The proxy module's table: its directives, instances and per-worker
 * state.  The forwarding itself is forward.c. */
#include "mod/proxy/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/exchange.h"
#include "core/settings.h"
#include "http/parse.h"
#include "core/log.h"
#include "mod/proxy/ask.h"
#include "mod/proxy/cache.h"
#include "mod/proxy/internal.h"
#include "route/vars.h"
#include "upstream/learn.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_TIMEOUT_MS 60000

#define DEFAULT_LEARN_MS (10 * 60 * 1000)
#define DEFAULT_OPTIONS_EVERY_MS (60 * 1000)

/* proxy_fix_allow's answers, per worker: a few resources' Allow fields,
 * the oldest given up first. */
#define MEMO_SLOTS 32
#define MEMO_TARGET_MAX 256
#define MEMO_ALLOW_MAX 256

struct allow_memo {
    struct {
        char target[MEMO_TARGET_MAX];
        char allow[MEMO_ALLOW_MAX];
        uint64_t expires_ms;
    } slot[MEMO_SLOTS];
    unsigned next;
};

const char *allow_memo_get(struct proxy_inst *in, const char *target)
{
    if (!in->memo)
        return NULL;
    uint64_t now = clock_ms();
    for (unsigned i = 0; i < MEMO_SLOTS; i++)
        if (in->memo->slot[i].expires_ms > now && strcmp(in->memo->slot[i].target, target) == 0)
            return in->memo->slot[i].allow;
    return NULL;
}

void allow_memo_put(struct proxy_inst *in, const char *target, const char *allow, size_t len)
{
    if (!in->learn_ms || strlen(target) >= MEMO_TARGET_MAX || len >= MEMO_ALLOW_MAX)
        return;
    if (!in->memo && !(in->memo = calloc(1, sizeof *in->memo)))
        return;
    struct allow_memo *m = in->memo;
    unsigned i = m->next++ % MEMO_SLOTS;
    snprintf(m->slot[i].target, MEMO_TARGET_MAX, "%s", target);
    memcpy(m->slot[i].allow, allow, len);
    m->slot[i].allow[len] = '\0';
    m->slot[i].expires_ms = clock_ms() + in->learn_ms;
}

static void proxy_destroy(void *inst);

static void *proxy_create(const struct module_env *env, const char *arg, char *err, size_t errlen)
{
    struct proxy_inst *in = calloc(1, sizeof *in);
    if (!in)
        abort();
    in->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    in->send_timeout_ms = in->read_timeout_ms = DEFAULT_TIMEOUT_MS;
    in->forwarded = true;
    in->learn_ms = DEFAULT_LEARN_MS;
    if (proxy_parse_url(in, env, arg, err, errlen) < 0) {
        proxy_destroy(in);
        return NULL;
    }
    return in;
}

static void proxy_destroy(void *inst)
{
    struct proxy_inst *in = inst;
    upstream_group_release(in->group);
    free(in->prefix);
    free(in->authority);
    buf_free(&in->set_headers);
    buf_free(&in->hide_headers);
    free(in->memo);
    free(in->cache_key);
    free(in->cache_targeted);
    buf_free(&in->bypass);
    free(in->purge);
    free(in);
}

/* proxy_learn_options: one worker at a time asks the upstream's OPTIONS *,
 * and all decide by its Allow while it is fresh (twice the interval, so a
 * missed answer does not drop it). */
static void options_learnt(void *arg, const char *allow, size_t len)
{
    struct proxy_inst *in = arg;
    in->options_ask = NULL;
    if (!allow) {
        log_msg(LOG_INFO, "proxy %s: no Allow in an answer to OPTIONS *", in->group->name);
        return;
    }
    learn_allow(in->group->name, allow, len, 2 * in->options_every_ms);
    log_msg(LOG_INFO, "proxy %s: OPTIONS * allows %.*s", in->group->name, (int)len, allow);
}

static void ask_options_star(void *arg)
{
    struct proxy_inst *in = arg;
    if (!in->options_ask && learn_claim_asking(in->group->name, in->options_every_ms))
        in->options_ask = ask_options(in->group, in->loop, "*", in->authority, in->read_timeout_ms,
                                      options_learnt, in);
    loop_timer_at(in->loop, &in->options_timer, clock_ms() + in->options_every_ms, ask_options_star,
                  in);
}

static void proxy_worker_init(void *inst, struct loop *loop, method_set allowed)
{
    (void)allowed;
    struct proxy_inst *in = inst;
    in->loop = loop;
    proxy_cache_worker_init(in, loop);
    loop_timer_init(&in->options_timer);
    if (in->options_every_ms)
        loop_timer_at(loop, &in->options_timer, clock_ms(), ask_options_star, in);
}

static void proxy_worker_exit(void *inst)
{
    struct proxy_inst *in = inst;
    if (in->loop)
        loop_timer_stop(in->loop, &in->options_timer);
    ask_cancel(in->options_ask);
    in->options_ask = NULL;
    proxy_cache_worker_exit(in);
    upstream_group_drop_idle(in->group);
}

static void proxy_start(void *inst, struct verbd_exchange *x)
{
    struct proxy_inst *in = inst;
    struct cachex *cx = NULL;
    const struct span m = x->req.http.method;
    if (in->zone && in->npurge && m.n == 5 && memcmp(m.p, "PURGE", 5) == 0) {
        proxy_cache_purge(in, x);
        return;
    }
    if (in->zone && proxy_cache_start(in, x, &cx))
        return;
    proxy_forward(in, x, cx);
}

static void proxy_describe(void *inst, FILE *out)
{
    proxy_cache_describe(inst, out);
}

static bool proxy_refuses(void *inst, const char *m, size_t n)
{
    struct proxy_inst *in = inst;
    if (in->options_every_ms && learnt_allow_lists(in->group->name, m, n) == 0)
        return true;
    return in->learn_ms && learnt_refusal(in->group->name, m, n) > 0;
}

/* The mapping's methods but those learnt refused. */
static method_set proxy_allow(void *inst, const struct verbd_request *req, method_set allowed)
{
    (void)req;
    method_set out = allowed;
    for (int id = 0; id < METHOD_REGISTERED_COUNT; id++) {
        if (id == METHOD_OPTIONS || !(allowed & METHOD_BIT(id)))
            continue;
        const char *name = method_name(id);
        if (proxy_refuses(inst, name, strlen(name)))
            out &= ~METHOD_BIT(id);
    }
    return out;
}

static int set_learn(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct proxy_inst *in = inst;
    if (strcmp(argv[0], "off") == 0) {
        in->learn_ms = 0;
        return 0;
    }
    return directive_duration("proxy_learn", argv[0], &in->learn_ms, err, errlen);
}

static int set_connect_timeout(void *inst, int argc, const char *const *argv, char *err,
                               size_t errlen)
{
    (void)argc;
    return directive_duration("proxy_connect_timeout", argv[0],
                              &((struct proxy_inst *)inst)->connect_timeout_ms, err, errlen);
}

static int set_send_timeout(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return directive_duration("proxy_send_timeout", argv[0],
                              &((struct proxy_inst *)inst)->send_timeout_ms, err, errlen);
}

static int set_read_timeout(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return directive_duration("proxy_read_timeout", argv[0],
                              &((struct proxy_inst *)inst)->read_timeout_ms, err, errlen);
}

/* A whole number from min to max for directive `name`; -1 + err. */
static int parse_count(const char *name, const char *value, long min, long max, long *out,
                       char *err, size_t errlen)
{
    char *end;
    *out = strtol(value, &end, 10);
    if (!*value || *end || *out < min || *out > max) {
        snprintf(err, errlen, "%s: \"%s\" is not a count from %ld to %ld", name, value, min, max);
        return -1;
    }
    return 0;
}

static int set_keepalive(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    long n;
    if (parse_count("proxy_keepalive", argv[0], 0, 1024, &n, err, errlen) < 0)
        return -1;
    struct upstream_group *g = ((struct proxy_inst *)inst)->group;
    if (g->refs > 1 || g->n != 1 || strcmp(g->name, g->members[0].name) != 0) {
        snprintf(err, errlen, "proxy_keepalive: set keepalive in the upstream %s block", g->name);
        return -1;
    }
    g->max_idle = (size_t)n;
    return 0;
}

static int set_forwarded(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return directive_on_off("proxy_forwarded", argv[0], &((struct proxy_inst *)inst)->forwarded,
                            err, errlen);
}

static int set_learn_options(void *inst, int argc, const char *const *argv, char *err,
                             size_t errlen)
{
    (void)argc;
    struct proxy_inst *in = inst;
    if (strcmp(argv[0], "off") == 0) {
        in->options_every_ms = 0;
        return 0;
    }
    if (strcmp(argv[0], "on") == 0) {
        in->options_every_ms = DEFAULT_OPTIONS_EVERY_MS;
        return 0;
    }
    return directive_duration("proxy_learn_options", argv[0], &in->options_every_ms, err, errlen);
}

static int set_fix_allow(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return directive_on_off("proxy_fix_allow", argv[0], &((struct proxy_inst *)inst)->fix_allow,
                            err, errlen);
}

static bool valid_value(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

static int set_header(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct proxy_inst *in = inst;
    if (!http_is_token(argv[0], strlen(argv[0])) || !valid_value(argv[1])) {
        snprintf(err, errlen,
                 "proxy_set_header: \"%s\" is not a field name or its value has a "
                 "control character",
                 argv[0]);
        return -1;
    }
    buf_append(&in->set_headers, argv[0], strlen(argv[0]) + 1);
    buf_append(&in->set_headers, argv[1], strlen(argv[1]) + 1);
    return 0;
}

static int hide_header(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct proxy_inst *in = inst;
    if (!http_is_token(argv[0], strlen(argv[0]))) {
        snprintf(err, errlen, "proxy_hide_header: \"%s\" is not a field name", argv[0]);
        return -1;
    }
    buf_append(&in->hide_headers, argv[0], strlen(argv[0]) + 1);
    return 0;
}

/* ---- the cache's directives (docs/cache.md) ---- */

static int set_cache(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct proxy_inst *in = inst;
    if (strcmp(argv[0], "off") == 0) {
        in->zone = NULL;
        return 0;
    }
    in->zone = zone_find(argv[0]);
    if (!in->zone) {
        snprintf(err, errlen,
                 "cache: no cache_zone %s (declare it at the top level: "
                 "cache_zone %s memory=64m;)",
                 argv[0], argv[0]);
        return -1;
    }
    return 0;
}

static int set_cache_key(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct proxy_inst *in = inst;
    if (vars_check(argv[0], -1, err, errlen) < 0)
        return -1;
    free(in->cache_key);
    in->cache_key = strdup(argv[0]);
    if (!in->cache_key)
        abort();
    return 0;
}

static int set_cache_bypass(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    struct proxy_inst *in = inst;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "$http_", 6) != 0 && vars_check(argv[i], -1, err, errlen) < 0)
            return -1;
        if (strncmp(argv[i], "$http_", 6) == 0 &&
            (!argv[i][6] || !http_is_token(argv[i] + 6, strlen(argv[i] + 6)))) {
            snprintf(err, errlen, "cache_bypass: \"%s\" names no field", argv[i]);
            return -1;
        }
        buf_append(&in->bypass, argv[i], strlen(argv[i]) + 1);
    }
    return 0;
}

static int set_cache_min_uses(void *inst, int argc, const char *const *argv, char *err,
                              size_t errlen)
{
    (void)argc;
    long n;
    if (parse_count("cache_min_uses", argv[0], 1, 1000, &n, err, errlen) < 0)
        return -1;
    ((struct proxy_inst *)inst)->min_uses = (unsigned)n;
    return 0;
}

static int set_cache_heuristic(void *inst, int argc, const char *const *argv, char *err,
                               size_t errlen)
{
    struct proxy_inst *in = inst;
    for (int i = 0; i < argc; i++) {
        char *end;
        long status = strtol(argv[i], &end, 10);
        int k = *end == '=' ? fresh_heuristic_index((int)status) : -1;
        if (k < 0) {
            snprintf(err, errlen,
                     "cache_heuristic: \"%s\" is not STATUS=DURATION for a heuristically "
                     "cacheable status (200 203 204 206 300 301 308 404 405 410 414 501)",
                     argv[i]);
            return -1;
        }
        uint64_t ms;
        if (directive_duration("cache_heuristic", end + 1, &ms, err, errlen) < 0)
            return -1;
        in->heuristic.seconds[k] = (ms + 999) / 1000;
        in->heuristic.set[k] = true;
    }
    return 0;
}

static int set_cache_max_entry(void *inst, int argc, const char *const *argv, char *err,
                               size_t errlen)
{
    (void)argc;
    uint64_t n;
    if (parse_size(argv[0], &n) < 0 || n == 0) {
        snprintf(err, errlen, "cache_max_entry: \"%s\" is not a size (64k, 8m)", argv[0]);
        return -1;
    }
    ((struct proxy_inst *)inst)->max_entry = n;
    return 0;
}

/* cache_targeted_field NAME|off: a cache-control field for verbd alone
 * (RFC 9213), above CDN-Cache-Control and Cache-Control, never relayed. */
static int set_cache_targeted(void *inst, int argc, const char *const *argv, char *err,
                              size_t errlen)
{
    (void)argc;
    struct proxy_inst *in = inst;
    free(in->cache_targeted);
    in->cache_targeted = NULL;
    if (strcmp(argv[0], "off") == 0)
        return 0;
    if (!http_is_token(argv[0], strlen(argv[0])) || strcasecmp(argv[0], "Cache-Control") == 0 ||
        strcasecmp(argv[0], "CDN-Cache-Control") == 0) {
        snprintf(err, errlen,
                 "cache_targeted_field: \"%s\" is not a field name of verbd's own "
                 "(Verbd-Cache-Control, say)",
                 argv[0]);
        return -1;
    }
    in->cache_targeted = strdup(argv[0]);
    if (!in->cache_targeted)
        abort();
    return 0;
}

static int set_cache_purge(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    struct proxy_inst *in = inst;
    struct access_rule *r = realloc(in->purge, (in->npurge + (size_t)argc) * sizeof *r);
    if (!r)
        abort();
    in->purge = r;
    int rc = 0;
    for (int i = 0; i < argc; i++) {
        char why[200];
        int one = access_rule_parse(argv[i], true, &r[in->npurge], why, sizeof why);
        if (one < 0) {
            snprintf(err, errlen, "cache_purge: %s", why);
            return -1;
        }
        if (one > 0) {
            snprintf(err, errlen, "cache_purge: %s", why);
            rc = 1;
        }
        in->npurge++;
    }
    return rc;
}

static const struct verbd_directive proxy_directives[] = {
    {"proxy_connect_timeout", 1, 1, set_connect_timeout, false, false},
    {"proxy_send_timeout", 1, 1, set_send_timeout, false, false},
    {"proxy_read_timeout", 1, 1, set_read_timeout, false, false},
    {"proxy_keepalive", 1, 1, set_keepalive, false, false},
    {"proxy_forwarded", 1, 1, set_forwarded, false, false},
    {"proxy_learn", 1, 1, set_learn, false, false},
    {"proxy_fix_allow", 1, 1, set_fix_allow, false, false},
    {"proxy_learn_options", 1, 1, set_learn_options, false, false},
    {"proxy_set_header", 2, 2, set_header, false, false},
    {"proxy_hide_header", 1, 1, hide_header, false, false},
    {"cache", 1, 1, set_cache, false, false},
    {"cache_key", 1, 1, set_cache_key, false, false},
    {"cache_bypass", 1, -1, set_cache_bypass, false, false},
    {"cache_min_uses", 1, 1, set_cache_min_uses, false, false},
    {"cache_heuristic", 1, -1, set_cache_heuristic, false, false},
    {"cache_max_entry", 1, 1, set_cache_max_entry, false, false},
    {"cache_purge", 1, -1, set_cache_purge, false, false},
    {"cache_targeted_field", 1, 1, set_cache_targeted, false, false},
    {NULL, 0, 0, NULL, false, false},
};

const struct verbd_module verbd_module_proxy = {
    .name = "proxy",
    .gateway = true,
    .directives = proxy_directives,
    /* Bodies stream through to the upstream, never held whole. */
    .streams_bodies = true,
    .create = proxy_create,
    .destroy = proxy_destroy,
    .worker_init = proxy_worker_init,
    .worker_exit = proxy_worker_exit,
    .process_init = learn_init,
    /* The learnt refusals' families come with fastcgi's metrics (the same
     * table, shared by both gateways): here, the cache zones'. */
    .metrics = proxy_cache_metrics,
    .report = proxy_cache_report,
    .describe = proxy_describe,
    .refuses = proxy_refuses,
    .allow = proxy_allow,
    .start = proxy_start,
};
