/* The proxy's cache: where the rules of lib/cache/ meet an exchange.
 * A GET (or HEAD) in a location with a cache is looked up by its key and
 * variant; a fresh entry (or a stale one the request accepts) answers it
 * here, with Age and Cache-Status; a stale one with validators is
 * validated upstream (its 304 refreshes the entry and answers); anything
 * else is forwarded, and a storable answer is kept as it streams through
 * (up to the entry limit), stored once complete.  Any other method that
 * is not safe, answered 2xx or 3xx, invalidates the target and the
 * same-origin Location and Content-Location (RFC 9111 §4.4). */
#include "mod/proxy/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cache/cc.h"
#include "cache/fresh.h"
#include "cache/policy.h"
#include "cache/store.h"
#include "cache/vary.h"
#include "core/exchange.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/stats.h"
#include "http/date.h"
#include "http/method.h"
#include "http/range.h"
#include "mod/proxy/ask.h"
#include "mod/proxy/cache_body.h"
#include "mod/proxy/internal.h"
#include "route/vars.h"

#define DEFAULT_KEY "$scheme://$host$request_uri"
/* The default entry limit: at most this, and at most half the zone. */
#define DEFAULT_MAX_ENTRY (1024 * 1024)
#define FIELDS_MAX 128
/* Collapsed forwarding: a miss whose key another exchange is fetching
 * looks again this often, for at most this long, before it goes
 * upstream itself; a fetch counts as in flight for at most FLIGHT_MS. */
#define COLLAPSE_POLL_MS 10
#define COLLAPSE_WAIT_MS 5000
#define FLIGHT_MS 30000
/* A waiter following a growing entry lends at most this much of it at a
 * time before it asks whether the client takes more. */
#define FOLLOW_BATCH (64 * 1024)

struct cachex {
    struct proxy_inst *in;
    struct verbd_exchange *x;
    struct zone *zone;
    struct buf key;
    struct cache_control req; /* the request's directives */
    const char *fwd;          /* Cache-Status fwd=, NULL: nothing to say */
    bool invalidate;          /* an unsafe method: a success invalidates */
    bool may_store;
    bool convert_head;
    bool authorized; /* the request has Authorization (§3.5) */
    /* The stale entry being validated (held), and a copy of its head;
     * `conditional`: asked with its validators. */
    bool validating, conditional;
    struct store_hit hit;
    struct buf hit_copy;
    /* Collapsed forwarding: this exchange fetches the key for others
     * (leader), or waits for another's fetch (wait, until wait_until). */
    bool leader;
    bool stale_waiter; /* waits for another's validation of a stale entry */
    struct verbd_timer *wait;
    uint64_t wait_until;
    /* Streamed: the growing entry the leader (in a disk zone, any
     * exchange) stores its answer in as it comes (growing: open, `grown`
     * body bytes so far), or the one a waiter follows (following: held
     * in `hit`, sent up to `walk`, or from `file` up to `sent` in a disk
     * zone; blocked: until the client takes what was lent; its body last
     * grew at grew_ms). */
    bool growing, following, blocked;
    uint32_t grow_index;
    uint64_t grown;
    struct store_walk walk;
    uint64_t follow_end; /* one past the last body byte the waiter sends */
    struct cache_file *file;
    uint64_t sent;
    uint64_t grew_ms;
    /* What is kept of the answer until it is complete. */
    bool capturing;
    struct buf head, body, vary;
    struct store_meta meta;
    uint64_t max;
    time_t request_time;
};

static bool same_vary(const char *vary, size_t len, void *arg)
{
    const struct buf *want = arg;
    return len == want->len && (len == 0 || memcmp(vary, want->p, len) == 0);
}

/* The leader's fetch is over (stored, or not storable): waiters go on. */
static void land(struct cachex *cx)
{
    if (cx->leader)
        store_flight_done(cx->zone, cx->key.p, cx->key.len);
    cx->leader = false;
}

static void cachex_cleanup(void *arg)
{
    struct cachex *cx = arg;
    if (cx->growing)
        store_abandon(cx->zone, cx->grow_index); /* the answer did not end whole */
    land(cx);
    if (cx->validating || cx->following)
        store_release(cx->zone, cx->hit.index);
    cache_file_drop(cx->file);
    buf_free(&cx->key);
    buf_free(&cx->hit_copy);
    buf_free(&cx->head);
    buf_free(&cx->body);
    buf_free(&cx->vary);
}

static void vars_for(const struct verbd_request *req, struct vars *v)
{
    memset(v, 0, sizeof *v);
    v->req = req;
    v->uri = req->path;
    v->args = req->http.query.p;
    v->args_len = req->http.query.n;
}

/* cache_bypass: a value that expands to something other than "" or "0";
 * $http_NAME is the request's field NAME ('_' for '-'). */
static bool bypassed(const struct proxy_inst *in, const struct verbd_request *req)
{
    struct vars v;
    vars_for(req, &v);
    struct buf out = {0};
    bool yes = false;
    for (size_t at = 0; at < in->bypass.len && !yes;) {
        const char *t = in->bypass.p + at;
        at += strlen(t) + 1;
        buf_reset(&out);
        if (strncmp(t, "$http_", 6) == 0) {
            char name[128];
            snprintf(name, sizeof name, "%s", t + 6);
            for (char *c = name; *c; c++)
                if (*c == '_')
                    *c = '-';
            struct span f = http_field_get(&req->http, name);
            if (f.p)
                buf_append(&out, f.p, f.n);
        } else {
            vars_expand(t, &v, VARS_TEXT, &out);
        }
        yes = out.len && !(out.len == 1 && out.p[0] == '0');
    }
    buf_free(&out);
    return yes;
}

static void response_cc(const struct store_meta *m, struct cache_control *cc)
{
    cc_init(cc);
    cc->flags = m->cc_flags;
    if (m->has_s_maxage)
        cc->s_maxage = 1; /* only its presence matters once stored */
}

static uint64_t age_of(const struct store_meta *m, time_t now)
{
    return fresh_current_age(&(struct fresh_times){.date = m->date,
                                                   .age = m->age,
                                                   .request_time = m->request_time,
                                                   .response_time = m->response_time},
                             now);
}

static int64_t ttl_of(const struct store_meta *m, uint64_t age)
{
    return (int64_t)m->lifetime - (int64_t)age;
}

static void cache_status(struct verbd_response *res, const char *fwd, int fwd_status, bool stored,
                         bool ttl_known, int64_t ttl, const char *detail)
{
    char v[256];
    int n = snprintf(v, sizeof v, "verbd");
    if (!fwd)
        n += snprintf(v + n, sizeof v - (size_t)n, "; hit");
    else
        n += snprintf(v + n, sizeof v - (size_t)n, "; fwd=%s", fwd);
    if (fwd && fwd_status)
        n += snprintf(v + n, sizeof v - (size_t)n, "; fwd-status=%d", fwd_status);
    if (stored)
        n += snprintf(v + n, sizeof v - (size_t)n, "; stored");
    if (ttl_known)
        n += snprintf(v + n, sizeof v - (size_t)n, "; ttl=%lld", (long long)ttl);
    if (detail)
        snprintf(v + n, sizeof v - (size_t)n, "; detail=%s", detail);
    verbd_response_header(res, "Cache-Status", v);
}

/* Whether proxy_hide_header names the field. */
static bool hidden(const struct proxy_inst *in, struct span name)
{
    for (size_t at = 0; at < in->hide_headers.len;) {
        const char *h = in->hide_headers.p + at;
        at += strlen(h) + 1;
        if (http_span_is(name, h))
            return true;
    }
    return false;
}

/* Whether a stored field stays out of the answers from the cache: the
 * targeted field, and the hidden ones (kept so that a refresh still
 * obeys the directives they hold, or brought by a 304). */
static bool withheld(const struct proxy_inst *in, struct span name)
{
    return (in->cache_targeted && http_span_is(name, in->cache_targeted)) || hidden(in, name);
}

static bool named(struct span name, const char *const *names)
{
    for (; names && *names; names++)
        if (http_span_is(name, *names))
            return true;
    return false;
}

/* The stored fields an answer gets: those of a 304 only if only_304,
 * and never those `except` names (a NULL-terminated list, or NULL). */
static void add_fields(struct verbd_response *res, const struct http_field *f, size_t n,
                       bool only_304, const char *const *except, const struct proxy_inst *in)
{
    for (size_t i = 0; i < n; i++) {
        char name[256];
        if (f[i].name.n >= sizeof name || (only_304 && !policy_304_field(f[i].name)) ||
            named(f[i].name, except) || withheld(in, f[i].name))
            continue;
        memcpy(name, f[i].name.p, f[i].name.n);
        name[f[i].name.n] = '\0';
        verbd_response_header_n(res, name, f[i].value.p, f[i].value.n);
    }
}

/* What of its representation an entry holds: a 200 the whole of it, a
 * stored part (206) the bytes its Content-Range says.  The body is the
 * representation's bytes from *shift, of *size in all. */
static bool entry_extent(const struct store_hit *hit, const struct http_field *f, size_t n,
                         uint64_t *shift, uint64_t *size)
{
    *shift = 0;
    *size = hit->body_len;
    if (hit->meta.status != 206)
        return true;
    struct byte_range part;
    struct span cr = http_fields_find(f, n, "Content-Range");
    if (!cr.p || !range_content_range_parse(cr.p, cr.n, &part, size) ||
        part.last - part.first + 1 != hit->body_len)
        return false;
    *shift = part.first;
    return true;
}

/* The ranges a request asks of a stored 200 or part (RFC 9110 §14.2),
 * the representation being `size` bytes: none (RANGE_IGNORE) without a
 * valid Range, or with an If-Range that does not match the entry's
 * strong ETag or its Last-Modified date exactly (§13.1.5). */
static enum range_result ranges_asked(const struct http_request *h, const struct store_hit *hit,
                                      const struct http_field *f, size_t n, uint64_t size,
                                      struct byte_range *r, size_t *count)
{
    struct span range = http_field_get(h, "Range");
    if (!range.p || (hit->meta.status != 200 && hit->meta.status != 206))
        return RANGE_IGNORE;
    /* A whole answer whose origin says it takes no ranges is sent whole,
     * as the origin would (RFC 9110 §14.3). */
    struct span accept = http_fields_find(f, n, "Accept-Ranges");
    if (hit->meta.status == 200 && accept.p && accept.n == 4 &&
        strncasecmp(accept.p, "none", 4) == 0)
        return RANGE_IGNORE;
    struct span if_range = http_field_get(h, "If-Range");
    if (if_range.p) {
        struct span etag = http_fields_find(f, n, "ETag");
        struct span lm = http_fields_find(f, n, "Last-Modified");
        time_t mtime = 0;
        bool has_mtime = lm.p && http_date_parse(lm.p, lm.n, &mtime) == 0;
        if (!range_if_range_matches(if_range.p, if_range.n, etag.p, etag.n, has_mtime, mtime))
            return RANGE_IGNORE;
    }
    return range_parse(range.p, range.n, size, r, count);
}

/* Whether a held entry can answer the request: anything but a part
 * can; a part (§3.3) only a Range that lies inside it (or is
 * unsatisfiable: its length is known), and no other condition than
 * If-Range.  A request it cannot answer goes upstream as it is. */
static bool entry_answers(const struct cachex *cx, const struct store_hit *hit)
{
    if (hit->meta.status != 206)
        return true;
    const struct http_request *h = &cx->x->req.http;
    if (http_field_get(h, "If-None-Match").p || http_field_get(h, "If-Modified-Since").p ||
        http_field_get(h, "If-Match").p || http_field_get(h, "If-Unmodified-Since").p)
        return false;
    struct http_field f[FIELDS_MAX];
    size_t n = policy_fields(hit->head, hit->head_len, f, FIELDS_MAX);
    uint64_t shift, size;
    if (!entry_extent(hit, f, n, &shift, &size))
        return false;
    struct byte_range r[RANGE_MAX];
    size_t count;
    enum range_result rr = ranges_asked(h, hit, f, n, size, r, &count);
    if (rr == RANGE_UNSATISFIABLE)
        return true;
    if (rr != RANGE_SATISFIABLE)
        return false;
    for (size_t k = 0; k < count; k++)
        if (r[k].first < shift || r[k].last >= shift + hit->body_len)
            return false;
    return true;
}

/* Answers from a held entry (the reference passes to the response) with
 * head `head` (the entry's, or one a 304 just refreshed). */
static void serve(struct cachex *cx, const struct store_hit *hit, const char *head, size_t head_len,
                  const char *fwd, int fwd_status, bool stored, const char *detail)
{
    struct verbd_exchange *x = cx->x;
    struct verbd_response *res = verbd_exchange_response(x);
    uint64_t age = age_of(&hit->meta, time(NULL));
    struct http_field f[FIELDS_MAX];
    size_t n = policy_fields(head, head_len, f, FIELDS_MAX);
    const struct http_request *h = &x->req.http;
    bool not_modified = hit->meta.status == 200 && policy_not_modified(h->fields, h->nfields, f, n);
    struct byte_range r[RANGE_MAX];
    size_t count = 0;
    uint64_t shift, size;
    bool extent = entry_extent(hit, f, n, &shift, &size);
    enum range_result rr =
        not_modified || !extent ? RANGE_IGNORE : ranges_asked(h, hit, f, n, size, r, &count);
    bool outside = false;
    for (size_t k = 0; hit->meta.status == 206 && rr == RANGE_SATISFIABLE && k < count; k++)
        outside = outside || r[k].first < shift || r[k].last >= shift + hit->body_len;
    if (hit->meta.status == 206 && (rr == RANGE_IGNORE || outside)) {
        /* Never once entry_answers let it through (a 304 leaves the
         * stored Content-Range as it is); but a part that cannot answer
         * sends nothing of itself. */
        store_release(cx->zone, hit->index);
        verbd_response_error(res, 502, "the stored part no longer answers the request");
        cache_status(res, fwd, fwd_status, stored, false, 0, "partial");
        verbd_finish(x);
        return;
    }
    char age_text[24];
    snprintf(age_text, sizeof age_text, "%llu", (unsigned long long)age);
    if (rr == RANGE_UNSATISFIABLE) {
        /* As the static module: Content-Range and no body. */
        char cr[48];
        snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
        verbd_response_status(res, 416);
        verbd_response_header(res, "Content-Range", cr);
        verbd_response_header(res, "Age", age_text);
        cache_status(res, fwd, fwd_status, stored, true, ttl_of(&hit->meta, age), detail);
        store_count(cx->zone, fwd == NULL);
        store_release(cx->zone, hit->index);
        verbd_response_length(res, 0);
        verbd_finish(x);
        return;
    }
    struct cache_parts parts, *multi = NULL;
    if (rr == RANGE_SATISFIABLE && count > 1) {
        multi = &parts;
        struct span type = http_fields_find(f, n, "Content-Type");
        parts.type = type.p;
        parts.type_len = type.n;
        range_boundary(parts.boundary);
    }
    verbd_response_status(res, not_modified              ? 304
                               : rr == RANGE_SATISFIABLE ? 206
                                                         : hit->meta.status);
    static const char *const ranged[] = {"Content-Range", NULL};
    static const char *const multipart[] = {"Content-Range", "Content-Type", NULL};
    add_fields(res, f, n, not_modified,
               multi                     ? multipart
               : rr == RANGE_SATISFIABLE ? ranged
                                         : NULL,
               cx->in);
    if (rr == RANGE_SATISFIABLE) {
        char v[96];
        if (multi)
            snprintf(v, sizeof v, "multipart/byteranges; boundary=%s", parts.boundary);
        else
            snprintf(v, sizeof v, "bytes %llu-%llu/%llu", (unsigned long long)r[0].first,
                     (unsigned long long)r[0].last, (unsigned long long)size);
        verbd_response_header(res, multi ? "Content-Type" : "Content-Range", v);
    }
    verbd_response_header(res, "Age", age_text);
    cache_status(res, fwd, fwd_status, stored, true, ttl_of(&hit->meta, age), detail);
    store_count(cx->zone, fwd == NULL);
    if (not_modified || hit->meta.status == 204) {
        store_release(cx->zone, hit->index);
        verbd_finish(x);
        return;
    }
    if (rr != RANGE_SATISFIABLE) {
        count = hit->body_len ? 1 : 0;
        r[0] = (struct byte_range){0, hit->body_len ? hit->body_len - 1 : 0};
    }
    if (!cache_body_send(cx->zone, hit, res, r, count, shift, size, multi)) {
        /* Its file went (removed by hand): the next request refetches. */
        store_remove(cx->zone, cx->key.p, cx->key.len);
        verbd_response_error(res, 503, "the cached body cannot be read");
    }
    verbd_finish(x);
}

/* only-if-cached without a usable entry (RFC 9111 §5.2.1.7). */
static void gateway_timeout(struct cachex *cx, const char *fwd, const char *why)
{
    struct verbd_response *res = verbd_exchange_response(cx->x);
    verbd_response_error(res, 504, why);
    cache_status(res, fwd, 0, false, false, 0, NULL);
    verbd_finish(cx->x);
}

static bool vary_ok(const char *vary, size_t len, void *arg)
{
    const struct http_request *h = arg;
    return vary_matches(vary, len, h->fields, h->nfields);
}

static void make_key(const struct proxy_inst *in, const struct verbd_request *req, struct buf *out)
{
    struct vars v;
    vars_for(req, &v);
    vars_expand(in->cache_key ? in->cache_key : DEFAULT_KEY, &v, VARS_TEXT, out);
}

/* §3.5: an answer to a request with Authorization serves others only
 * where its directives say a shared cache may. */
static bool shareable(const struct store_meta *m)
{
    return !m->authorized || m->cc_flags & (CC_PUBLIC | CC_MUST_REVALIDATE) || m->has_s_maxage;
}

static bool has_validator(const struct store_hit *hit)
{
    struct http_field f[FIELDS_MAX];
    size_t n = policy_fields(hit->head, hit->head_len, f, FIELDS_MAX);
    return http_fields_find(f, n, "ETag").p || http_fields_find(f, n, "Last-Modified").p;
}

/* A miss: fetches the key for everyone (true), or waits for the fetch
 * another exchange has in flight (false). */
static bool take_off(struct cachex *cx);
static bool while_revalidate(const struct cachex *cx, uint64_t age);
static void revalidate_later(struct cachex *cx);

bool proxy_cache_start(struct proxy_inst *in, struct verbd_exchange *x, struct cachex **out)
{
    struct cachex *cx = verbd_alloc(x, sizeof *cx);
    memset(cx, 0, sizeof *cx);
    cx->in = in;
    cx->x = x;
    cx->zone = in->zone;
    uint64_t limit = in->max_entry ? in->max_entry : DEFAULT_MAX_ENTRY;
    cx->max = limit < zone_max_entry(in->zone) ? limit : zone_max_entry(in->zone);
    cx->request_time = time(NULL);
    verbd_cleanup(x, cachex_cleanup, cx);
    *out = cx;
    const struct verbd_request *req = &x->req;
    const struct http_request *h = &req->http;
    if (req->method_id != METHOD_GET && req->method_id != METHOD_HEAD) {
        cx->invalidate = !method_is_safe(req->method_id);
        cx->fwd = "method";
        if (cx->invalidate)
            make_key(in, req, &cx->key);
        return false;
    }
    make_key(in, req, &cx->key);
    if (cx->key.len > STORE_KEY_MAX) {
        cx->fwd = "bypass";
        return false;
    }
    cc_init(&cx->req);
    cc_parse_fields(&cx->req, h->fields, h->nfields);
    cx->authorized = http_field_get(h, "Authorization").p != NULL;
    cx->convert_head = req->method_id == METHOD_HEAD;
    cx->may_store = !in->min_uses || in->min_uses <= 1 ||
                    store_count_use(cx->zone, cx->key.p, cx->key.len) >= in->min_uses;
    if (bypassed(in, req)) {
        cx->fwd = "bypass";
        return false;
    }
    int rc =
        store_lookup(cx->zone, cx->key.p, cx->key.len, vary_ok, (void *)h, &cx->hit_copy, &cx->hit);
    if (rc == 0) {
        const struct store_meta *m = &cx->hit.meta;
        if (!shareable(m)) {
            store_release(cx->zone, cx->hit.index);
            cx->fwd = "uri-miss";
            return false;
        }
        if (!entry_answers(cx, &cx->hit)) {
            /* A stored part that does not hold what is asked. */
            store_release(cx->zone, cx->hit.index);
            rc = -3;
        }
    }
    if (rc == 0) {
        const struct store_meta *m = &cx->hit.meta;
        struct cache_control rcc;
        response_cc(m, &rcc);
        uint64_t age = age_of(m, time(NULL));
        enum fresh_verdict v = fresh_judge(m->lifetime, age, &rcc, &cx->req);
        if (v != FRESH_VALIDATE) {
            serve(cx, &cx->hit, cx->hit.head, cx->hit.head_len, NULL, 0, false,
                  v == FRESH_USE_STALE ? "stale" : NULL);
            return true;
        }
        if (while_revalidate(cx, age)) {
            revalidate_later(cx);
            serve(cx, &cx->hit, cx->hit.head, cx->hit.head_len, NULL, 0, false,
                  "stale-while-revalidate");
            return true;
        }
        if (cx->req.flags & CC_ONLY_IF_CACHED) {
            store_release(cx->zone, cx->hit.index);
            gateway_timeout(cx, "stale", "only-if-cached: the stored response is stale");
            return true;
        }
        /* Held while the upstream is asked: with validators the answer
         * may be a 304; without, the entry may still serve if the
         * upstream fails. */
        cx->fwd = cx->req.flags & CC_NO_CACHE ? "request" : "stale";
        /* Concurrent validations of one entry: one goes upstream, the
         * others wait for what it brings (a 304's refresh, a new answer)
         * as misses wait for a fetch.  A request with no-cache validates
         * for itself. */
        if (!(cx->req.flags & CC_NO_CACHE) && !take_off(cx)) {
            store_release(cx->zone, cx->hit.index);
            cx->stale_waiter = true;
            return true;
        }
        cx->validating = true;
        cx->conditional = has_validator(&cx->hit);
        return false;
    }
    cx->fwd = rc == -3 ? "partial" : rc == -2 ? "vary-miss" : "uri-miss";
    if (cx->req.flags & CC_ONLY_IF_CACHED) {
        store_count(cx->zone, false);
        gateway_timeout(cx, cx->fwd, "only-if-cached: nothing is stored for it");
        return true;
    }
    return !take_off(cx);
}

void proxy_cache_purge(struct proxy_inst *in, struct verbd_exchange *x)
{
    struct verbd_response *res = verbd_exchange_response(x);
    if (access_rules_match(in->purge, in->npurge, x->req.peer) <= 0) {
        verbd_response_error(res, 403, "PURGE is not allowed from this address.");
        verbd_finish(x);
        return;
    }
    struct buf key = {0};
    make_key(in, &x->req, &key);
    unsigned n = store_remove(in->zone, key.p, key.len);
    buf_free(&key);
    char text[64];
    snprintf(text, sizeof text, "Purged %u entr%s.\n", n, n == 1 ? "y" : "ies");
    verbd_response_status(res, n ? 200 : 404);
    verbd_response_header(res, "Content-Type", "text/plain");
    verbd_response_body(res, text, strlen(text));
    verbd_finish(x);
}

/* Whether the held entry the leader's fetch brought answers a waiter. */
static bool collapsed_answers(struct cachex *cx)
{
    const struct store_meta *m = &cx->hit.meta;
    struct cache_control rcc;
    response_cc(m, &rcc);
    uint64_t age = age_of(m, time(NULL));
    return fresh_judge(m->lifetime, age, &rcc, &cx->req) != FRESH_VALIDATE && shareable(m) &&
           entry_answers(cx, &cx->hit);
}

static void follow(struct cachex *cx);

static void follow_writable(struct verbd_exchange *x, void *arg)
{
    (void)x;
    struct cachex *cx = arg;
    cx->blocked = false;
    follow(cx);
}

/* Sends the waiter what the growing entry it follows has now, while the
 * client takes it; finishes once the entry is complete and all of it is
 * sent.  If the entry fails, or stops growing for longer than its
 * leader's reads may wait, the answer is aborted: truncated, never
 * wrong. */
static void follow(struct cachex *cx)
{
    uint64_t had = cx->hit.body_len;
    enum store_growth g = store_growth(cx->zone, &cx->hit);
    uint64_t now = clock_ms();
    if (cx->hit.body_len > had)
        cx->grew_ms = now;
    if (cx->hit.body_len >= cx->follow_end) {
        cx->hit.body_len = cx->follow_end; /* a range: its end is all it waits for */
        g = STORE_COMPLETE;
    }
    struct verbd_response *res = verbd_exchange_response(cx->x);
    for (;;) {
        bool lent =
            (cx->file ? cache_file_lend(cx->file, &cx->hit, &cx->sent, res)
                      : cache_body_lend(cx->zone, &cx->hit, &cx->walk, res, FOLLOW_BATCH)) > 0;
        if (!lent && cx->x->head_sent)
            break;
        if (!verbd_send(cx->x)) {
            cx->blocked = true;
            verbd_on_writable(cx->x, follow_writable, cx);
            return;
        }
        if (!lent)
            break;
    }
    uint64_t given = cx->file ? cx->sent : cx->walk.at;
    if (g == STORE_COMPLETE && given == cx->hit.body_len) {
        verbd_timer_cancel(cx->wait);
        verbd_finish(cx->x);
    } else if (g == STORE_COMPLETE) {
        /* The file's last range waits for the one queued (the poll). */
    } else if (g == STORE_FAILED ||
               now - cx->grew_ms > cx->in->read_timeout_ms + COLLAPSE_WAIT_MS) {
        verbd_timer_cancel(cx->wait);
        verbd_abort(cx->x);
    }
}

/* Answers a waiter from the growing entry held in cx->hit: its head at
 * once, its body as it comes (the poll's timer and the client's
 * readiness drive follow).  A Range is followed if it is one range from
 * the first byte of a body of stated length (`bytes=0-`, what media
 * players ask first).  False for any other (it waits for the complete
 * entry), or if a disk zone's file cannot be opened: nothing sent. */
static bool serve_growing(struct cachex *cx)
{
    struct verbd_response *res = verbd_exchange_response(cx->x);
    const struct store_meta *m = &cx->hit.meta;
    uint64_t age = age_of(m, time(NULL));
    struct http_field f[FIELDS_MAX];
    size_t n = policy_fields(cx->hit.head, cx->hit.head_len, f, FIELDS_MAX);
    const struct http_request *h = &cx->x->req.http;
    bool not_modified = m->status == 200 && policy_not_modified(h->fields, h->nfields, f, n);
    struct byte_range r[RANGE_MAX];
    size_t count = 0;
    enum range_result rr = RANGE_IGNORE;
    if (!not_modified && http_field_get(h, "Range").p) {
        if (cx->hit.stated == STORE_UNSTATED)
            return false;
        rr = ranges_asked(h, &cx->hit, f, n, cx->hit.stated, r, &count);
        if (rr != RANGE_IGNORE && (rr != RANGE_SATISFIABLE || count != 1 || r[0].first != 0))
            return false;
    }
    if (!not_modified && !cx->convert_head && cx->hit.body_in_file &&
        !(cx->file = cache_file_open(cx->zone, &cx->hit)))
        return false;
    static const char *const ranged[] = {"Content-Range", NULL};
    verbd_response_status(res, not_modified ? 304 : rr == RANGE_SATISFIABLE ? 206 : m->status);
    add_fields(res, f, n, not_modified, rr == RANGE_SATISFIABLE ? ranged : NULL, cx->in);
    cx->follow_end = UINT64_MAX;
    if (rr == RANGE_SATISFIABLE) {
        char cr[64];
        snprintf(cr, sizeof cr, "bytes 0-%llu/%llu", (unsigned long long)r[0].last,
                 (unsigned long long)cx->hit.stated);
        verbd_response_header(res, "Content-Range", cr);
        cx->follow_end = r[0].last + 1;
    }
    char text[32];
    snprintf(text, sizeof text, "%llu", (unsigned long long)age);
    verbd_response_header(res, "Age", text);
    snprintf(text, sizeof text, "%s; collapsed", cx->fwd);
    cache_status(res, text, 0, false, true, ttl_of(m, age), NULL);
    store_count(cx->zone, false);
    if (!not_modified && cx->hit.stated != STORE_UNSTATED)
        verbd_response_length(res,
                              cx->follow_end < cx->hit.stated ? cx->follow_end : cx->hit.stated);
    if (not_modified || cx->convert_head) {
        /* The head is all it needs (a HEAD's mirrors a GET's). */
        store_release(cx->zone, cx->hit.index);
        verbd_finish(cx->x);
        return true;
    }
    cx->following = true;
    cx->hit.body_len = 0; /* none sent yet: follow sees it grow */
    cx->grew_ms = clock_ms();
    follow(cx);
    return true;
}

/* A request that waited for another's validation and goes upstream
 * itself validates the stored entry as it is now (the other brought
 * nothing fresh), so that it too is answered from it if the upstream
 * fails or says 304. */
static void hold_for_validation(struct cachex *cx)
{
    const struct http_request *h = &cx->x->req.http;
    if (store_lookup(cx->zone, cx->key.p, cx->key.len, vary_ok, (void *)h, &cx->hit_copy,
                     &cx->hit) != 0)
        return;
    const struct store_meta *m = &cx->hit.meta;
    if (!shareable(m) || !entry_answers(cx, &cx->hit)) {
        store_release(cx->zone, cx->hit.index);
        return;
    }
    cx->validating = true;
    cx->conditional = has_validator(&cx->hit);
}

static void collapse_poll(struct verbd_exchange *x, void *arg)
{
    struct cachex *cx = arg;
    if (cx->following) {
        if (!cx->blocked)
            follow(cx);
        return;
    }
    const struct http_request *h = &x->req.http;
    if (store_lookup(cx->zone, cx->key.p, cx->key.len, vary_ok, (void *)h, &cx->hit_copy,
                     &cx->hit) == 0) {
        if (collapsed_answers(cx)) {
            verbd_timer_cancel(cx->wait);
            char fwd[32];
            snprintf(fwd, sizeof fwd, "%s; collapsed", cx->fwd);
            serve(cx, &cx->hit, cx->hit.head, cx->hit.head_len, fwd, 0, false, NULL);
            return;
        }
        store_release(cx->zone, cx->hit.index);
    } else if (store_lookup_growing(cx->zone, cx->key.p, cx->key.len, vary_ok, (void *)h,
                                    &cx->hit_copy, &cx->hit)) {
        if (collapsed_answers(cx) && serve_growing(cx))
            return;
        store_release(cx->zone, cx->hit.index);
    }
    uint64_t now = clock_ms();
    if (now < cx->wait_until &&
        !store_flight_claim(cx->zone, cx->key.p, cx->key.len, now, now + FLIGHT_MS))
        return; /* still in flight */
    /* The fetch ended with nothing this request may use (an answer not
     * stored, another variant), or took too long: this one goes upstream
     * itself, as do the others that waited, at once (none leads them
     * again, so they are not queued one behind the other). */
    verbd_timer_cancel(cx->wait);
    if (now < cx->wait_until)
        store_flight_done(cx->zone, cx->key.p, cx->key.len);
    if (cx->stale_waiter)
        hold_for_validation(cx);
    proxy_forward(cx->in, x, cx);
}

static bool take_off(struct cachex *cx)
{
    if (!cx->may_store)
        return true;
    uint64_t now = clock_ms();
    if (store_flight_claim(cx->zone, cx->key.p, cx->key.len, now, now + FLIGHT_MS)) {
        cx->leader = true;
        return true;
    }
    cx->wait_until = now + COLLAPSE_WAIT_MS;
    cx->wait = verbd_timer(cx->x, COLLAPSE_POLL_MS, COLLAPSE_POLL_MS, collapse_poll, cx);
    return false;
}

const char *proxy_cache_method(const struct cachex *cx)
{
    return cx && cx->convert_head ? "GET" : NULL;
}

bool proxy_cache_drops(const struct cachex *cx, struct span name)
{
    return cx && cx->conditional &&
           (http_span_is(name, "If-None-Match") || http_span_is(name, "If-Modified-Since"));
}

/* If-None-Match and If-Modified-Since from a stored head's validators. */
static void put_validators(const char *head, size_t head_len, struct buf *b)
{
    struct http_field f[FIELDS_MAX];
    size_t n = policy_fields(head, head_len, f, FIELDS_MAX);
    struct span etag = http_fields_find(f, n, "ETag");
    struct span lm = http_fields_find(f, n, "Last-Modified");
    if (etag.p) {
        buf_puts(b, "If-None-Match: ");
        buf_append(b, etag.p, etag.n);
        buf_puts(b, "\r\n");
    }
    if (lm.p) {
        buf_puts(b, "If-Modified-Since: ");
        buf_append(b, lm.p, lm.n);
        buf_puts(b, "\r\n");
    }
}

void proxy_cache_fields(const struct cachex *cx, struct buf *b)
{
    if (cx && cx->conditional)
        put_validators(cx->hit.head, cx->hit.head_len, b);
}

/* §4.3.4: a 304's fields update the stored ones of the held entry, which
 * is stored again with them (its merged head in `head`, its new record
 * in *meta). */
static void refresh(struct zone *z, const struct store_hit *hit, const struct http_response *r,
                    const struct proxy_inst *in, time_t request_time, struct buf *head,
                    struct store_meta *meta)
{
    policy_merge_304(hit->head, hit->head_len, r->fields, r->nfields, head);
    struct http_field f[FIELDS_MAX];
    size_t n = policy_fields(head->p, head->len, f, FIELDS_MAX);
    policy_meta(hit->meta.status, f, n, &in->heuristic, in->cache_targeted, request_time,
                time(NULL), meta);
    meta->authorized = hit->meta.authorized;
    meta->has_length = hit->meta.has_length;
    struct buf body = {0};
    if (store_body_copy(z, hit, &body))
        store_insert(z, hit->key, hit->key_len, hit->vary, hit->vary_len, head->p, head->len,
                     body.p, body.len, meta);
    buf_free(&body);
}

/* RFC 5861 §4: the held stale entry may answer for an upstream error
 * while its staleness is within stale-if-error (the response's or the
 * request's), unless it may never be served stale. */
static bool stale_if_error(const struct cachex *cx)
{
    const struct store_meta *m = &cx->hit.meta;
    uint64_t age = age_of(m, time(NULL));
    uint64_t stale = age > m->lifetime ? age - m->lifetime : 0;
    uint64_t window = m->stale_if_error;
    if (cx->req.stale_if_error != CC_UNSET &&
        (window == CC_UNSET || cx->req.stale_if_error > window))
        window = cx->req.stale_if_error;
    return window != CC_UNSET && stale <= window && m->may_serve_stale &&
           !(m->cc_flags & CC_NO_CACHE) && !(cx->req.flags & CC_NO_CACHE);
}

bool proxy_cache_final(struct cachex *cx, const struct http_response *r)
{
    if (!cx || !cx->validating)
        return false;
    if ((r->status == 500 || r->status == 502 || r->status == 503 || r->status == 504) &&
        stale_if_error(cx)) {
        cx->validating = false;
        serve(cx, &cx->hit, cx->hit.head, cx->hit.head_len, "stale", r->status, false,
              "stale-if-error");
        return true;
    }
    if (r->status != 304 || !cx->conditional) {
        /* A new answer replaces the entry as it is stored. */
        store_release(cx->zone, cx->hit.index);
        cx->validating = false;
        return false;
    }
    struct buf head = {0};
    struct store_meta meta;
    refresh(cx->zone, &cx->hit, r, cx->in, cx->request_time, &head, &meta);
    /* Served from the entry held (its body is the same), with the new
     * head and times. */
    cx->validating = false;
    cx->hit.meta = meta;
    serve(cx, &cx->hit, head.p, head.len, cx->fwd, 304, true, NULL);
    buf_free(&head);
    return true;
}

/* The key of a URI in Location or Content-Location that has the
 * request's origin (the default key only): "scheme://host/path". */
static void invalidate_uri(struct cachex *cx, struct span uri)
{
    const struct verbd_request *req = &cx->x->req;
    struct buf origin = {0};
    struct vars v;
    vars_for(req, &v);
    vars_expand("$scheme://$host", &v, VARS_TEXT, &origin);
    struct buf key = {0};
    if (uri.n && uri.p[0] == '/' && !(uri.n > 1 && uri.p[1] == '/')) {
        buf_append(&key, origin.p, origin.len);
        buf_append(&key, uri.p, uri.n);
    } else if (uri.n > origin.len && strncasecmp(uri.p, origin.p, origin.len) == 0 &&
               (uri.p[origin.len] == '/' || uri.p[origin.len] == ':')) {
        /* An explicit port is the same origin only if it is the one the
         * key leaves out: keys have no port. */
        const char *path = memchr(uri.p + origin.len, '/', uri.n - origin.len);
        if (path) {
            buf_append(&key, origin.p, origin.len);
            buf_append(&key, path, (size_t)(uri.p + uri.n - path));
        }
    }
    if (key.len)
        store_remove(cx->zone, key.p, key.len);
    buf_free(&origin);
    buf_free(&key);
}

static void invalidate(struct cachex *cx, struct verbd_response *res)
{
    store_remove(cx->zone, cx->key.p, cx->key.len);
    if (cx->in->cache_key)
        return; /* other URIs' keys are known for the default key only */
    struct http_field f[FIELDS_MAX];
    size_t n = policy_fields(res->head.p, res->head.len, f, FIELDS_MAX);
    for (size_t i = 0; i < n; i++)
        if (http_span_is(f[i].name, "Location") || http_span_is(f[i].name, "Content-Location"))
            invalidate_uri(cx, f[i].value);
}

/* The lines of the targeted fields that the client's head lacks (the
 * operator's field; CDN-Cache-Control if hidden) go into the stored head
 * after it, so that a 304's refresh is judged as the answer was. */
static void keep_targeted(const struct proxy_inst *in, const struct http_response *r,
                          struct buf *head)
{
    for (size_t i = 0; i < r->nfields; i++)
        if ((in->cache_targeted && http_span_is(r->fields[i].name, in->cache_targeted)) ||
            (http_span_is(r->fields[i].name, "CDN-Cache-Control") &&
             hidden(in, r->fields[i].name))) {
            buf_append(head, r->fields[i].name.p, r->fields[i].name.n);
            buf_puts(head, ": ");
            buf_append(head, r->fields[i].value.p, r->fields[i].value.n);
            buf_puts(head, "\r\n");
        }
}

/* The request an answer is judged for: its directives and fields, and
 * what the cache knows of it. */
struct asked {
    const struct cache_control *req;
    const struct http_field *fields;
    size_t nfields;
    bool authorized, head, may_store;
    uint64_t max;
    time_t request_time;
};

/* Whether the upstream's answer r to q, whose relayed field lines are
 * head[0, head_len), may be stored: NULL if so (with its variant's
 * fields in *vary, the lines stored in *stored and its record in *meta),
 * else why not (a Cache-Status detail).  Its body is checked against
 * q->max only as far as its Content-Length says. */
static const char *judge(const struct proxy_inst *in, const struct asked *q,
                         const struct http_response *r, const char *head, size_t head_len,
                         struct buf *vary, struct buf *stored, struct store_meta *meta)
{
    /* RFC 9213: a valid targeted field's directives, not Cache-Control's
     * and Expires, decide. */
    struct cache_control cc;
    enum cc_source source = cc_parse_targeted(&cc, r->fields, r->nfields, in->cache_targeted);
    const char *why = policy_unstorable(r->status, &cc, q->req,
                                        source == CC_FROM_CACHE_CONTROL &&
                                            http_fields_find(r->fields, r->nfields, "Expires").p);
    if (!why && r->status == 206) {
        /* §3.3: a single part with a strong validator, for a GET. */
        struct byte_range part;
        uint64_t size;
        if (q->head || !policy_partial(r->fields, r->nfields, &part, &size))
            why = "status";
    }
    if (!why && !q->may_store)
        why = "min-uses";
    if (!why && r->framing == RESPONSE_LENGTH && r->content_length > q->max)
        why = "too-large";
    if (!why && head_len > STORE_HEAD_MAX)
        why = "head-too-large";
    if (!why && vary_build(vary, r->fields, r->nfields, q->fields, q->nfields) < 0)
        why = "vary-star";
    if (!why && vary->len > STORE_VARY_MAX)
        why = "vary-too-large";
    if (why)
        return why;
    time_t now = time(NULL);
    policy_meta(r->status, r->fields, r->nfields, &in->heuristic, in->cache_targeted,
                q->request_time ? q->request_time : now, now, meta);
    meta->authorized = q->authorized;
    meta->has_length = r->framing == RESPONSE_LENGTH;
    policy_stored_head(head, head_len, &cc, stored);
    keep_targeted(in, r, stored);
    return NULL;
}

void proxy_cache_head(struct cachex *cx, const struct http_response *r, struct verbd_response *res)
{
    if (!cx)
        return;
    if (cx->invalidate) {
        if (r->status >= 200 && r->status < 400)
            invalidate(cx, res);
        cache_status(res, cx->fwd, r->status, false, false, 0, NULL);
        return;
    }
    if (!cx->key.len || cx->key.len > STORE_KEY_MAX) {
        cache_status(res, cx->fwd, r->status, false, false, 0, "key-too-long");
        return;
    }
    store_count(cx->zone, false);
    const struct http_request *h = &cx->x->req.http;
    struct asked q = {&cx->req,         h->fields,     h->nfields, cx->authorized,
                      cx->convert_head, cx->may_store, cx->max,    cx->request_time};
    const char *why =
        judge(cx->in, &q, r, res->head.p, res->head.len, &cx->vary, &cx->head, &cx->meta);
    if (why) {
        land(cx);
        cache_status(res, cx->fwd, r->status, false, false, 0, why);
        return;
    }
    time_t now = time(NULL);
    cx->capturing = true;
    /* Leading a collapsed fetch: stored as it comes, for the waiters.  In
     * a disk zone every answer is (but a part): written to its file as
     * it comes, never held whole in memory. */
    bool disk = store_on_disk(cx->zone);
    if ((cx->leader || disk) && r->status != 206)
        cx->growing = store_open(cx->zone, cx->key.p, cx->key.len, cx->vary.p, cx->vary.len,
                                 cx->head.p, cx->head.len,
                                 r->framing == RESPONSE_LENGTH ? r->content_length : STORE_UNSTATED,
                                 &cx->meta, &cx->grow_index);
    if (disk && r->status != 206 && !cx->growing) {
        cx->capturing = false; /* no room, or no file to be made */
        land(cx);
        cache_status(res, cx->fwd, r->status, false, false, 0, "no-room");
        return;
    }
    uint64_t age = age_of(&cx->meta, now);
    cache_status(res, cx->fwd, r->status, true, true, ttl_of(&cx->meta, age), NULL);
}

void proxy_cache_body(struct cachex *cx, const void *p, size_t n)
{
    if (!cx || !cx->capturing)
        return;
    if (cx->growing) {
        cx->grown += n;
        if (cx->grown <= cx->max && store_append(cx->zone, cx->grow_index, p, n))
            return;
        /* Past the limit, or no room: abandoned (store_append does that
         * itself), its waiters' answers cut short. */
        if (cx->grown > cx->max)
            store_abandon(cx->zone, cx->grow_index);
        cx->growing = cx->capturing = false;
        land(cx);
        return;
    }
    if (cx->body.len + n > cx->max) {
        cx->capturing = false; /* grew past the limit: not stored */
        buf_free(&cx->body);
        land(cx);
        return;
    }
    buf_append(&cx->body, p, n);
}

bool proxy_cache_holds(const struct cachex *cx)
{
    return cx && cx->convert_head && cx->capturing;
}

/* The stored lines of head[0, len) but Content-Range, appended to out
 * (line by line: however many fields it has). */
static void lines_but_range(const char *head, size_t len, struct buf *out)
{
    static const char name[] = "Content-Range:";
    for (size_t at = 0; at < len;) {
        const char *eol = memchr(head + at, '\n', len - at);
        size_t end = eol ? (size_t)(eol - head) + 1 : len;
        if (end - at < sizeof name - 1 || strncasecmp(head + at, name, sizeof name - 1) != 0)
            buf_append(out, head + at, end - at);
        at = end;
    }
}

/* §3.3, §3.4: a complete 206 is stored as the part of its variant.  With
 * a stored part of the same strong validator and complete length that it
 * overlaps or touches, the two are combined into one part; a part that
 * then covers the whole representation is stored as a 200.  A stored 200
 * of the same validator holds it already: nothing changes.  Anything
 * else (another validator: a newer representation) is replaced. */
static void store_part(struct cachex *cx)
{
    struct http_field f[FIELDS_MAX];
    size_t n = policy_fields(cx->head.p, cx->head.len, f, FIELDS_MAX);
    struct byte_range part;
    uint64_t size;
    if (!policy_partial(f, n, &part, &size) || cx->body.len != part.last - part.first + 1)
        return; /* its body is not the part its head says */
    struct buf copy = {0}, joined = {0}, head = {0};
    const char *body = cx->body.p;
    struct store_hit old;
    bool keep_old = false;
    if (store_lookup(cx->zone, cx->key.p, cx->key.len, same_vary, &cx->vary, &copy, &old) == 0) {
        struct http_field g[FIELDS_MAX];
        size_t m = policy_fields(old.head, old.head_len, g, FIELDS_MAX);
        bool same = policy_same_strong_validator(f, n, g, m);
        struct byte_range held;
        uint64_t held_size;
        keep_old = same && old.meta.status == 200;
        if (same && old.meta.status == 206 && policy_partial(g, m, &held, &held_size) &&
            held_size == size && held.last - held.first + 1 == old.body_len &&
            held.first <= part.last + 1 && part.first <= held.last + 1) {
            struct byte_range u = {held.first < part.first ? held.first : part.first,
                                   held.last > part.last ? held.last : part.last};
            if (u.last - u.first + 1 <= cx->max && store_body_copy(cx->zone, &old, &joined) &&
                joined.len == old.body_len) {
                /* The stored part, then the new one over it (the same
                 * bytes where they overlap: the same validator). */
                struct buf all = {0};
                buf_reserve(&all, (size_t)(u.last - u.first + 1));
                all.len = (size_t)(u.last - u.first + 1);
                memcpy(all.p + (held.first - u.first), joined.p, joined.len);
                memcpy(all.p + (part.first - u.first), cx->body.p, cx->body.len);
                buf_free(&joined);
                joined = all;
                body = joined.p;
                part = u;
            }
        }
        store_release(cx->zone, old.index);
    }
    buf_free(&copy);
    uint64_t len = part.last - part.first + 1;
    struct store_meta meta = cx->meta;
    lines_but_range(cx->head.p, cx->head.len, &head);
    if (part.first == 0 && len == size) {
        /* The whole representation: a 200 from now on. */
        struct http_field h[FIELDS_MAX];
        size_t hn = policy_fields(head.p, head.len, h, FIELDS_MAX);
        policy_meta(200, h, hn, &cx->in->heuristic, cx->in->cache_targeted, cx->request_time,
                    time(NULL), &meta);
        meta.authorized = cx->authorized;
        meta.has_length = true;
    } else {
        buf_printf(&head, "Content-Range: bytes %llu-%llu/%llu\r\n", (unsigned long long)part.first,
                   (unsigned long long)part.last, (unsigned long long)size);
    }
    if (!keep_old && !store_insert(cx->zone, cx->key.p, cx->key.len, cx->vary.p, cx->vary.len,
                                   head.p, head.len, body, len, &meta))
        log_msg(LOG_INFO, "cache %s: no room for %.*s", zone_name(cx->zone), (int)cx->key.len,
                cx->key.p);
    buf_free(&joined);
    buf_free(&head);
}

void proxy_cache_complete(struct cachex *cx)
{
    if (!cx || !cx->capturing)
        return;
    cx->capturing = false;
    if (cx->meta.status == 206) {
        store_part(cx);
        land(cx);
        return;
    }
    if (cx->growing) {
        cx->growing = false;
        if (!store_close(cx->zone, cx->grow_index))
            log_msg(LOG_INFO, "cache %s: %.*s not stored: its body is not the length stated",
                    zone_name(cx->zone), (int)cx->key.len, cx->key.p);
        land(cx);
        return;
    }
    if (!store_insert(cx->zone, cx->key.p, cx->key.len, cx->vary.p, cx->vary.len, cx->head.p,
                      cx->head.len, cx->body.p, cx->body.len, &cx->meta))
        log_msg(LOG_INFO, "cache %s: no room for %.*s", zone_name(cx->zone), (int)cx->key.len,
                cx->key.p);
    land(cx);
}

bool proxy_cache_failed(struct cachex *cx, int status)
{
    if (!cx || !cx->validating || (status != 502 && status != 504))
        return false;
    cx->validating = false;
    const struct store_meta *m = &cx->hit.meta;
    /* Disconnected: a stale response may go out unless its directives or
     * the request's forbid it (§4.2.4; stale-if-error need not be
     * there). */
    if (m->may_serve_stale && !(m->cc_flags & CC_NO_CACHE) && !(cx->req.flags & CC_NO_CACHE)) {
        serve(cx, &cx->hit, cx->hit.head, cx->hit.head_len, "stale", 0, false,
              "upstream-unreachable");
        return true;
    }
    store_release(cx->zone, cx->hit.index);
    gateway_timeout(cx, cx->fwd,
                    "the stored response must be validated and the upstream "
                    "cannot be reached");
    return true;
}

void proxy_cache_metrics(struct buf *out)
{
    static const struct {
        const char *name, *type, *help;
    } families[] = {
        {"hits_total", "counter",
         "Answers from the cache (fresh, or stale as the request allowed)"},
        {"misses_total", "counter", "Answers that went upstream (stored or not)"},
        {"stores_total", "counter", "Entries stored (a 304's refresh included)"},
        {"evictions_total", "counter", "Entries evicted to make room"},
        {"invalidations_total", "counter", "Entries removed by unsafe methods or PURGE"},
        {"entries", "gauge", "Entries stored now"},
        {"bytes_used", "gauge", "Bytes of the zone that entries use"},
        {"bytes", "gauge", "Bytes of the zone for entries"},
        {"disk_bytes_used", "gauge", "Bytes of files a disk zone's entries use"},
        {"disk_bytes", "gauge", "Bytes of files a disk zone may use (disk=; 0: a memory zone)"},
        {"repairs_total", "counter",
         "Times the zone was repaired after a process died holding its lock"},
        {"loading", "gauge", "1 while a disk zone's files are being loaded into its index"},
    };
    struct zone_stats st[32];
    size_t n = 0;
    for (struct zone *z; n < 32 && (z = zone_at(n)); n++)
        store_stats(z, &st[n]);
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        buf_printf(out, "# HELP verbd_proxy_cache_%s %s, by cache zone.\n", families[f].name,
                   families[f].help);
        buf_printf(out, "# TYPE verbd_proxy_cache_%s %s\n", families[f].name, families[f].type);
        for (size_t i = 0; i < n; i++) {
            const uint64_t v[] = {st[i].hits,       st[i].misses,        st[i].stores,
                                  st[i].evictions,  st[i].invalidations, st[i].entries,
                                  st[i].bytes_used, st[i].bytes,         st[i].disk_used,
                                  st[i].disk_bytes, st[i].repairs,       st[i].loading};
            const char *name = zone_name(zone_at(i));
            buf_printf(out, "verbd_proxy_cache_%s{zone=", families[f].name);
            stats_put_label(out, name, strlen(name));
            buf_puts(out, "} ");
            buf_put_u64(out, v[f]);
            buf_puts(out, "\n");
        }
    }
}

void proxy_cache_report(void)
{
    struct zone *z;
    for (size_t i = 0; (z = zone_at(i)); i++) {
        struct zone_stats st;
        store_stats(z, &st);
        uint64_t asked = st.hits + st.misses;
        log_msg(LOG_INFO,
                "cache zone %s: memory %llu bytes, %llu entries in %llu bytes (%.1f%% of %llu); "
                "%llu hits, %llu misses (hit ratio %.1f%%), %llu stored, %llu evicted, "
                "%llu invalidated",
                zone_name(z), (unsigned long long)zone_bytes(z), (unsigned long long)st.entries,
                (unsigned long long)st.bytes_used,
                st.bytes ? 100.0 * (double)st.bytes_used / (double)st.bytes : 0.0,
                (unsigned long long)st.bytes, (unsigned long long)st.hits,
                (unsigned long long)st.misses,
                asked ? 100.0 * (double)st.hits / (double)asked : 0.0,
                (unsigned long long)st.stores, (unsigned long long)st.evictions,
                (unsigned long long)st.invalidations);
    }
}

void proxy_cache_describe(const struct proxy_inst *in, FILE *out)
{
    if (!in->zone)
        return;
    uint64_t limit = in->max_entry ? in->max_entry : DEFAULT_MAX_ENTRY;
    uint64_t max = zone_max_entry(in->zone);
    fprintf(out, "    cache %s: memory %llu bytes, entries up to %llu bytes%s\n",
            zone_name(in->zone), (unsigned long long)zone_bytes(in->zone),
            (unsigned long long)(limit < max ? limit : max),
            in->npurge ? ", PURGE from cache_purge's addresses" : "");
    if (zone_path(in->zone))
        fprintf(out, "    cache %s: files under %s, at most %llu bytes\n", zone_name(in->zone),
                zone_path(in->zone), (unsigned long long)zone_disk_bytes(in->zone));
}

/* ---- stale-while-revalidate (RFC 5861 §3) ---- */

/* A revalidation in the background, outliving the exchange that
 * started it: its own request to the upstream, and what of the client's
 * request judges a new answer (its field lines, the entry limit). */
struct revalidation {
    struct proxy_inst *in;
    struct ask *ask;
    struct revalidation *next;
    struct buf key, vary, request;
    uint64_t max;
    time_t request_time;
};

/* Whether the stale entry held answers now while it is revalidated: it
 * is within the response's stale-while-revalidate, may be served stale,
 * and the request asks nothing about freshness. */
static bool while_revalidate(const struct cachex *cx, uint64_t age)
{
    const struct store_meta *m = &cx->hit.meta;
    const struct cache_control *q = &cx->req;
    return m->stale_while_revalidate != CC_UNSET && age > m->lifetime &&
           age - m->lifetime <= m->stale_while_revalidate && m->may_serve_stale &&
           !(m->cc_flags & CC_NO_CACHE) && !(q->flags & CC_NO_CACHE) && q->max_age == CC_UNSET &&
           q->min_fresh == CC_UNSET && cx->in->loop;
}

static void forget(struct revalidation *rv)
{
    struct revalidation **at = &rv->in->revalidations;
    while (*at && *at != rv)
        at = &(*at)->next;
    if (*at)
        *at = rv->next;
    store_flight_done(rv->in->zone, rv->key.p, rv->key.len);
    buf_free(&rv->key);
    buf_free(&rv->vary);
    buf_free(&rv->request);
    free(rv);
}

static bool same_variant(const char *vary, size_t len, void *arg)
{
    const struct revalidation *rv = arg;
    return len == rv->vary.len && (len == 0 || memcmp(vary, rv->vary.p, len) == 0);
}

/* A new answer to the revalidation, its body whole: stored as a miss's
 * would be, with the lines the forward path relays (true); false if it
 * may not be, or has a field that path rewrites for each client
 * (Location, Content-Location, Allow). */
static bool store_new(struct revalidation *rv, const struct http_response *r, const char *body,
                      size_t len)
{
    const struct proxy_inst *in = rv->in;
    struct buf lines = {0}, vary = {0}, stored = {0};
    bool rewritten = false;
    for (size_t i = 0; i < r->nfields; i++) {
        struct span name = r->fields[i].name;
        rewritten = rewritten || http_span_is(name, "Location") ||
                    http_span_is(name, "Content-Location") || http_span_is(name, "Allow");
        if (proxy_field_relayed(in, r, name)) {
            buf_append(&lines, name.p, name.n);
            buf_puts(&lines, ": ");
            buf_append(&lines, r->fields[i].value.p, r->fields[i].value.n);
            buf_puts(&lines, "\r\n");
        }
    }
    struct http_field f[FIELDS_MAX];
    size_t n = policy_fields(rv->request.p, rv->request.len, f, FIELDS_MAX);
    struct cache_control req;
    cc_init(&req);
    cc_parse_fields(&req, f, n);
    struct asked q = {&req,  f,    n,       http_fields_find(f, n, "Authorization").p != NULL,
                      false, true, rv->max, rv->request_time};
    struct store_meta meta;
    bool ok = !rewritten && r->status != 206 &&
              !judge(in, &q, r, lines.p, lines.len, &vary, &stored, &meta);
    /* Another variant now: the stale one goes (the usual insert replaces
     * only its own variant). */
    if (ok && !same_variant(vary.p, vary.len, rv))
        store_remove(in->zone, rv->key.p, rv->key.len);
    if (ok)
        ok = store_insert(in->zone, rv->key.p, rv->key.len, vary.p, vary.len, stored.p, stored.len,
                          body, len, &meta);
    buf_free(&lines);
    buf_free(&vary);
    buf_free(&stored);
    return ok;
}

/* The answer: a 304 refreshes the entry; a new answer that may be stored
 * (its body read whole, within the entry limit) replaces it; any other
 * means it changed (or went), so it is removed and the next request
 * fetches it the usual way; no answer leaves it as it is. */
static void revalidated(void *arg, const struct http_response *r, const char *body, size_t len)
{
    struct revalidation *rv = arg;
    struct zone *z = rv->in->zone;
    if (r && r->status == 304) {
        struct buf copy = {0}, head = {0};
        struct store_hit hit;
        struct store_meta meta;
        if (store_lookup(z, rv->key.p, rv->key.len, same_variant, rv, &copy, &hit) == 0) {
            refresh(z, &hit, r, rv->in, rv->request_time, &head, &meta);
            store_release(z, hit.index);
        }
        buf_free(&copy);
        buf_free(&head);
    } else if (r && !(body && store_new(rv, r, body, len))) {
        store_remove(z, rv->key.p, rv->key.len);
    }
    forget(rv);
}

/* Starts the revalidation of the held entry, unless one of its key is in
 * flight already: the request's path and Host, the fields its variant
 * names, the entry's validators, proxy_set_header's fields. */
static void revalidate_later(struct cachex *cx)
{
    struct proxy_inst *in = cx->in;
    uint64_t now = clock_ms();
    if (!store_flight_claim(cx->zone, cx->key.p, cx->key.len, now, now + FLIGHT_MS))
        return;
    struct revalidation *rv = calloc(1, sizeof *rv);
    if (!rv)
        abort();
    rv->in = in;
    rv->request_time = time(NULL);
    rv->max = cx->max;
    buf_append(&rv->key, cx->key.p, cx->key.len);
    buf_append(&rv->vary, cx->hit.vary, cx->hit.vary_len);
    const struct verbd_request *req = &cx->x->req;
    const struct http_request *h = &req->http;
    for (size_t i = 0; i < h->nfields; i++)
        buf_printf(&rv->request, "%.*s: %.*s\r\n", (int)h->fields[i].name.n, h->fields[i].name.p,
                   (int)h->fields[i].value.n, h->fields[i].value.p);
    struct buf b = {0};
    buf_puts(&b, "GET ");
    proxy_upstream_path(&b, in, req);
    if (h->query.p) {
        buf_puts(&b, "?");
        buf_append(&b, h->query.p, h->query.n);
    }
    buf_puts(&b, " HTTP/1.1\r\n");
    bool host_set = false;
    for (size_t at = 0; at < in->set_headers.len;) {
        const char *n = in->set_headers.p + at, *v = n + strlen(n) + 1;
        at = (size_t)(v + strlen(v) + 1 - in->set_headers.p);
        host_set = host_set || strcasecmp(n, "Host") == 0;
        if (*v)
            buf_printf(&b, "%s: %s\r\n", n, v);
    }
    if (!host_set)
        buf_printf(&b, "Host: %.*s\r\n", h->host.n ? (int)h->host.n : (int)strlen(in->authority),
                   h->host.n ? h->host.p : in->authority);
    for (size_t at = 0; at < cx->hit.vary_len;) {
        const char *name = cx->hit.vary + at;
        size_t n = strlen(name);
        at += n + 1;
        at += strlen(cx->hit.vary + at) + 1;
        for (size_t i = 0; i < h->nfields; i++)
            if (h->fields[i].name.n == n && strncasecmp(h->fields[i].name.p, name, n) == 0)
                buf_printf(&b, "%.*s: %.*s\r\n", (int)n, h->fields[i].name.p,
                           (int)h->fields[i].value.n, h->fields[i].value.p);
    }
    put_validators(cx->hit.head, cx->hit.head_len, &b);
    buf_puts(&b, "Via: 1.1 verbd\r\nConnection: close\r\n\r\n");
    rv->ask =
        ask_whole(in->group, in->loop, b.p, b.len, in->read_timeout_ms, cx->max, revalidated, rv);
    buf_free(&b);
    if (!rv->ask) {
        forget(rv);
        return;
    }
    rv->next = in->revalidations;
    in->revalidations = rv;
}

/* A disk zone's files loaded by this worker: a slice of them per turn of
 * its loop (a deferred call, so that connections are served between
 * slices), while there are some to claim; one loader per zone, however
 * many locations use it. */
#define LOAD_SLICE 32
struct zone_loader {
    struct zone *zone;
    struct loop *loop;
    struct loop_defer next;
};
static struct zone_loader loaders[32];

static void load_some(void *arg)
{
    struct zone_loader *l = arg;
    enum store_load s = store_load_step(l->zone, LOAD_SLICE);
    if (s == STORE_LOAD_FINISHED) {
        uint64_t kept, removed, ms;
        store_load_counts(l->zone, &kept, &removed, &ms);
        log_msg(LOG_INFO,
                "cache zone %s loaded from %s: %llu entries in %llu ms, %llu files removed",
                zone_name(l->zone), zone_path(l->zone), (unsigned long long)kept,
                (unsigned long long)ms, (unsigned long long)removed);
    }
    if (s == STORE_LOAD_MORE)
        loop_defer(l->loop, &l->next, load_some, l);
}

void proxy_cache_worker_init(struct proxy_inst *in, struct loop *loop)
{
    if (!in->zone || !store_on_disk(in->zone) || !store_loading(in->zone))
        return;
    for (size_t i = 0; i < sizeof loaders / sizeof loaders[0]; i++) {
        struct zone_loader *l = &loaders[i];
        if (l->zone == in->zone)
            return;
        if (!l->zone) {
            *l = (struct zone_loader){.zone = in->zone, .loop = loop};
            loop_defer_init(&l->next);
            loop_defer(loop, &l->next, load_some, l);
            return;
        }
    }
}

void proxy_cache_worker_exit(struct proxy_inst *in)
{
    for (size_t i = 0; i < sizeof loaders / sizeof loaders[0]; i++) {
        struct zone_loader *l = &loaders[i];
        if (l->zone && l->zone == in->zone) {
            /* The directory it claimed is read to its end (nobody else
             * will). */
            loop_defer_cancel(l->loop, &l->next);
            store_load_finish(l->zone);
            l->zone = NULL;
        }
    }
    while (in->revalidations) {
        struct revalidation *rv = in->revalidations;
        ask_cancel(rv->ask);
        forget(rv);
    }
}
