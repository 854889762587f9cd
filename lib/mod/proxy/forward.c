/* Forwarding one exchange to the upstream: the request head rewritten for
 * a gateway (RFC 9110 §7.6), the body streamed as it arrives, the
 * response parsed strictly and streamed back with backpressure both ways.
 * Nothing is ever held whole: each direction holds at most a bounded
 * buffer, and a side that falls behind pauses the other. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/addr.h"
#include "core/exchange.h"
#include "core/log.h"
#include "http/chunked.h"
#include "http/method.h"
#include "http/parse.h"
#include "http/response.h"
#include "mod/proxy/ask.h"
#include "mod/proxy/cache.h"
#include "mod/proxy/internal.h"
#include "upstream/attempt.h"
#include "upstream/learn.h"
#include "route/route.h"

/* Request bytes queued for the upstream before the client's body is
 * paused; response bytes read per turn. */
#define OUT_HIGH (64 * 1024)
#define IN_CHUNK (16 * 1024)
/* Request bytes kept after they were sent, so that a request a kept
 * connection lost can go again on a new one. */
#define REPLAY_MAX (64 * 1024)
/* A response head, at most (as a request head's default). */
#define HEAD_MAX (16 * 1024)
#define FIELDS_MAX 100
/* How long a client that expects 100 Continue waits for the upstream's
 * before verbd sends its own and forwards the body. */
#define CONTINUE_WAIT_MS 1000
/* Interim (1xx) responses allowed before the final one. */
#define MAX_INTERIM 8

struct fwd {
    struct verbd_exchange *x;
    struct proxy_inst *in;
    struct cachex *cx;          /* the location's cache, or NULL (cache.h) */
    struct upstream_attempt up; /* the member and the connection; a kept connection's
                                   failure before any answer retries */
    bool retried;
    bool replayable; /* every request byte sent is still in `out`, and the method may be
                      * sent twice: a kept connection's close before any answer retries */

    /* Toward the upstream. */
    struct buf out;
    size_t out_at;
    bool chunked_out;   /* the body goes chunked (the client's was) */
    bool body_reading;  /* verbd_read was called */
    bool body_paused;   /* the upstream is behind */
    bool body_complete; /* the client's body is all queued */
    bool expect;        /* the client waits for 100 Continue */
    bool upgrade;       /* the client asked to switch protocols, and so does verbd */
    bool tunnel;        /* switched: bytes pass as they are until either side closes */
    bool shut_sent;     /* the client's side of the tunnel ended: so did the upstream's */
    struct verbd_timer *continue_timer;

    /* From the upstream. */
    char *in_buf;
    size_t in_len;
    bool head_done; /* the final head was relayed */
    bool head_request;
    enum response_framing framing;
    uint64_t left; /* RESPONSE_LENGTH: body bytes still due */
    struct chunked chunked;
    bool reusable;       /* the response allows keeping the connection */
    bool waiting_client; /* paused until the client takes what is queued */
    bool write_failed;   /* the upstream stopped reading the request */
    unsigned interims;   /* 1xx responses before the final one */
    bool flush_due;      /* body bytes wait for the end of the loop turn */
    struct buf trailers; /* the trailer section as received */
    struct ask *ask;     /* proxy_fix_allow: the OPTIONS that will give a 405 its Allow */
    char *ask_target;
    bool finished;
};

static void fail(struct fwd *f, int status, const char *why);

static bool is_idempotent(int id)
{
    return id == METHOD_GET || id == METHOD_HEAD || id == METHOD_OPTIONS || id == METHOD_PUT ||
           id == METHOD_DELETE || id == METHOD_PROPFIND;
}

/* The fields of a trailer section (validated by the chunked decoder) that
 * a gateway passes on: not those it handles itself.  Returns how many are
 * in `fields`. */
static size_t passable_trailers(const char *p, size_t len, struct http_field *fields)
{
    size_t n = 0, kept = 0;
    const char *why;
    if (len <= 2 || http_parse_fields(p, 0, len, fields, FIELDS_MAX, &n, &why) <= 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!http_hop_by_hop(fields[i].name, fields, n))
            fields[kept++] = fields[i];
    return kept;
}

/* An HTTP/1.1 request without a body that asks to switch protocols
 * (RFC 9110 §7.8): Upgrade, and "upgrade" in Connection. */
static bool asks_upgrade(const struct http_request *h)
{
    if (h->minor == 0 || h->framing == BODY_CHUNKED ||
        (h->framing == BODY_LENGTH && h->content_length) || !http_field_get(h, "Upgrade").p)
        return false;
    for (size_t i = 0; i < h->nfields; i++)
        if (http_span_is(h->fields[i].name, "Connection") &&
            http_list_has(h->fields[i].value, "upgrade"))
            return true;
    return false;
}

/* Whether `name` is in a "Name\0value\0" (pairs) or "Name\0" list. */
static const char *listed(const struct buf *b, struct span name, bool pairs)
{
    for (size_t at = 0; at < b->len;) {
        const char *n = b->p + at;
        const char *v = n + strlen(n) + 1;
        at = (size_t)((pairs ? v + strlen(v) + 1 : v) - b->p);
        if (http_span_is(name, n))
            return pairs ? v : n;
    }
    return NULL;
}

static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The request's path below the location, as the upstream gets it: the
 * bytes the client sent, when they decode to the normalised path (so the
 * upstream sees no different path than verbd decided on); otherwise the
 * normalised path, percent-encoded. */
static void upstream_target(struct buf *b, const struct verbd_request *req)
{
    const struct span raw = req->http.path;
    const char *path = req->path, *sub = req->subpath;
    size_t skip = strlen(path) - strlen(sub); /* decoded bytes of the prefix */
    size_t i = 0, d = 0, raw_at = 0;
    bool same = true;
    for (; i < raw.n && path[d]; d++) {
        if (d == skip)
            raw_at = i;
        int c = (unsigned char)raw.p[i];
        if (c == '%' && i + 2 < raw.n + 0 && hex(raw.p[i + 1]) >= 0 && hex(raw.p[i + 2]) >= 0) {
            c = hex(raw.p[i + 1]) * 16 + hex(raw.p[i + 2]);
            i += 3;
        } else {
            i++;
        }
        if (c != (unsigned char)path[d]) {
            same = false;
            break;
        }
    }
    same = same && i == raw.n && path[d] == '\0';
    if (same && d == skip)
        raw_at = i;
    if (same) {
        buf_append(b, raw.p + raw_at, raw.n - raw_at);
        return;
    }
    static const char digits[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)sub; *p; p++) {
        if (*p > 0x20 && *p < 0x7f && !strchr("%?#\"<>\\^`{|}", *p)) {
            buf_append(b, p, 1);
        } else {
            char e[3] = {'%', digits[*p >> 4], digits[*p & 15]};
            buf_append(b, e, 3);
        }
    }
}

/* The location's prefix becomes the upstream's: "/api/x" under
 * "location /api/ { proxy http://app/v1/; }" is "/v1/x". */
void proxy_upstream_path(struct buf *b, const struct proxy_inst *in,
                         const struct verbd_request *req)
{
    size_t plen = strlen(in->prefix);
    buf_append(b, in->prefix, plen && in->prefix[plen - 1] == '/' ? plen - 1 : plen);
    upstream_target(b, req);
}

/* The path of an absolute URI or of an absolute path, or an empty span. */
static struct span uri_path(struct span v)
{
    const char *p = v.p, *end = v.p + v.n;
    const char *scheme = memchr(p, ':', v.n);
    if (scheme && scheme + 2 < end && scheme[1] == '/' && scheme[2] == '/') {
        const char *slash = memchr(scheme + 3, '/', (size_t)(end - scheme - 3));
        p = slash ? slash : end;
    }
    return (struct span){p, (size_t)(end - p)};
}

/* Prefix `to` joined with `rest`, what followed prefix `from` ("/dav/x"
 * under "/dav/" is "x"; under "/dav", "/x"), the way the request target
 * is joined: "/v1/" or "/v1" with "x" both make "/v1/x". */
static void join_prefix(struct buf *b, const char *to, const char *from, size_t from_len,
                        struct span rest)
{
    size_t tl = strlen(to);
    buf_append(b, to, tl && to[tl - 1] == '/' ? tl - 1 : tl);
    if (from_len && from[from_len - 1] == '/')
        buf_append(b, "/", 1);
    buf_append(b, rest.p, rest.n);
}

/* Destination (COPY, MOVE) names a resource by its public URI: under the
 * location's prefix it becomes the upstream's URI for it, so COPY and MOVE
 * work under another prefix.  Anything else goes unchanged. */
static void rewrite_destination(struct fwd *f, struct buf *b, struct span value)
{
    const struct route_mapping *m = f->x->req.mapping;
    struct span path = uri_path(value);
    buf_append(b, "Destination: ", 13);
    if (!m->exact && path.n >= m->prefix_len && memcmp(path.p, m->prefix, m->prefix_len) == 0) {
        const struct http_request *h = &f->x->req.http;
        buf_printf(b, "http://%.*s", (int)h->host.n, h->host.p);
        join_prefix(b, f->in->prefix, m->prefix, m->prefix_len,
                    (struct span){path.p + m->prefix_len, path.n - m->prefix_len});
    } else {
        buf_append(b, value.p, value.n);
    }
    buf_append(b, "\r\n", 2);
}

/* Location and Content-Location under the upstream's prefix name the
 * public URI: the location's prefix, the client's host and scheme. */
static bool rewrite_location(struct fwd *f, struct verbd_response *res, const char *name,
                             struct span value)
{
    const struct route_mapping *m = f->x->req.mapping;
    const char *up = f->in->prefix;
    size_t ul = strlen(up), cmp = ul && up[ul - 1] == '/' ? ul - 1 : ul;
    struct span path = uri_path(value);
    bool absolute = path.p != value.p;
    if (m->exact || path.n < cmp || memcmp(path.p, up, cmp) != 0 ||
        (path.n > cmp && path.p[cmp] != '/' && path.p[cmp] != '?'))
        return false;
    struct buf out = {0};
    const struct http_request *h = &f->x->req.http;
    if (absolute)
        buf_printf(&out, "%s://%.*s", f->x->req.tls ? "https" : "http", (int)h->host.n, h->host.p);
    struct span rest = {path.p + cmp, path.n - cmp};
    if (rest.n && rest.p[0] == '/' && m->prefix[m->prefix_len - 1] == '/') {
        rest.p++;
        rest.n--;
    }
    size_t pl = m->prefix_len;
    buf_append(&out, m->prefix, pl);
    buf_append(&out, rest.p, rest.n);
    verbd_response_header_n(res, name, out.p, out.len);
    buf_free(&out);
    return true;
}

/* Removes from b, past `from`, the field lines proxy_set_header gives
 * its own value (or removes): the forwarding fields verbd adds itself. */
static void drop_overridden(struct buf *b, size_t from, const struct buf *set)
{
    size_t at = from, to = from;
    while (at < b->len) {
        const char *line = b->p + at;
        const char *end = memchr(line, '\n', b->len - at);
        size_t len = end ? (size_t)(end - line) + 1 : b->len - at;
        const char *colon = memchr(line, ':', len);
        struct span name = {line, colon ? (size_t)(colon - line) : 0};
        if (!name.n || !listed(set, name, true)) {
            memmove(b->p + to, line, len);
            to += len;
        }
        at += len;
    }
    b->len = to;
}

/* The request head for the upstream. */
static void build_head(struct fwd *f)
{
    const struct verbd_request *req = &f->x->req;
    const struct http_request *h = &req->http;
    struct proxy_inst *in = f->in;
    struct buf *b = &f->out;
    const char *method = proxy_cache_method(f->cx);
    if (method)
        buf_puts(b, method);
    else
        buf_append(b, h->method.p, h->method.n);
    buf_append(b, " ", 1);
    proxy_upstream_path(b, in, req);
    if (h->query.p) {
        buf_append(b, "?", 1);
        buf_append(b, h->query.p, h->query.n);
    }
    buf_append(b, " HTTP/1.1\r\n", 11);
    bool has_host = false, has_via = false;
    struct span via = {0}, xff = {0};
    for (size_t i = 0; i < h->nfields; i++) {
        const struct http_field *fl = &h->fields[i];
        if (http_hop_by_hop(fl->name, h->fields, h->nfields) ||
            listed(&in->set_headers, fl->name, true) || proxy_cache_drops(f->cx, fl->name))
            continue;
        if (http_span_is(fl->name, "Via")) {
            via = fl->value;
            has_via = true;
            continue;
        }
        if (in->forwarded && http_span_is(fl->name, "X-Forwarded-For")) {
            xff = fl->value;
            continue;
        }
        if (http_span_is(fl->name, "Expect") && !f->expect)
            continue;
        if (http_span_is(fl->name, "Max-Forwards") && req->method_id == METHOD_OPTIONS) {
            /* RFC 9110 §7.6.2: one hop fewer (0 was answered by verbd). */
            uint64_t n = strtoull(fl->value.p, NULL, 10);
            buf_printf(b, "Max-Forwards: %llu\r\n", (unsigned long long)(n ? n - 1 : 0));
            continue;
        }
        if (http_span_is(fl->name, "Destination")) {
            rewrite_destination(f, b, fl->value);
            continue;
        }
        has_host = has_host || http_span_is(fl->name, "Host");
        buf_append(b, fl->name.p, fl->name.n);
        buf_append(b, ": ", 2);
        buf_append(b, fl->value.p, fl->value.n);
        buf_append(b, "\r\n", 2);
    }
    /* The client's Host goes on (an absolute target's authority when it
     * sent one: RFC 9112 §3.2.2), unless the operator sets one. */
    if (!has_host && !listed(&in->set_headers, (struct span){"Host", 4}, true)) {
        if (h->host.n)
            buf_printf(b, "Host: %.*s\r\n", (int)h->host.n, h->host.p);
        else
            buf_printf(b, "Host: %s\r\n", in->authority);
    }
    /* The fields added to every request are put together without
     * printf: they are on every request's path. */
    buf_puts(b, "Via: ");
    buf_append(b, via.p, via.n);
    buf_puts(b, has_via ? ", " : "");
    /* The protocol the request came in with (RFC 9110 §7.6.3). */
    buf_puts(b, req->protocol ? "2 verbd\r\n" : h->minor ? "1.1 verbd\r\n" : "1.0 verbd\r\n");
    size_t mark = b->len;
    if (in->forwarded) {
        char addr[64];
        addr_text(req->peer, addr, sizeof addr, "unknown");
        const char *proto = req->tls ? "https" : "http";
        buf_puts(b, "X-Forwarded-For: ");
        buf_append(b, xff.p, xff.n);
        buf_puts(b, xff.n ? ", " : "");
        buf_puts(b, addr);
        buf_puts(b, "\r\nX-Forwarded-Proto: ");
        buf_puts(b, proto);
        buf_puts(b, "\r\n");
        if (h->host.n) {
            buf_puts(b, "X-Forwarded-Host: ");
            buf_append(b, h->host.p, h->host.n);
            buf_puts(b, "\r\n");
        }
        bool v6 = strchr(addr, ':') != NULL;
        buf_puts(b, v6 ? "Forwarded: for=\"[" : "Forwarded: for=");
        buf_puts(b, addr);
        buf_puts(b, v6 ? "]\";proto=" : ";proto=");
        buf_puts(b, proto);
        if (h->host.n && strspn(h->host.p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789-.:[]") >= h->host.n) {
            buf_puts(b, ";host=\"");
            buf_append(b, h->host.p, h->host.n);
            buf_puts(b, "\"");
        }
        buf_append(b, "\r\n", 2);
    }
    drop_overridden(b, mark, &in->set_headers);
    for (size_t at = 0; at < in->set_headers.len;) {
        const char *n = in->set_headers.p + at;
        const char *v = n + strlen(n) + 1;
        at = (size_t)(v + strlen(v) + 1 - in->set_headers.p);
        if (*v) /* an empty value removes the field */
            buf_printf(b, "%s: %s\r\n", n, v);
    }
    proxy_cache_fields(f->cx, b);
    if (f->upgrade) {
        struct span up = http_field_get(h, "Upgrade");
        buf_puts(b, "Connection: upgrade\r\nUpgrade: ");
        buf_append(b, up.p, up.n);
        buf_puts(b, "\r\n");
    }
    if (h->framing == BODY_CHUNKED) {
        buf_append(b, "Transfer-Encoding: chunked\r\n", 28);
        f->chunked_out = true;
    } else if (h->framing == BODY_LENGTH) {
        buf_puts(b, "Content-Length: ");
        buf_put_u64(b, h->content_length);
        buf_puts(b, "\r\n");
    }
    buf_append(b, "\r\n", 2);
}

/* ---- the watch and the timer ------------------------------------------------ */

static void timed_out(void *arg)
{
    struct fwd *f = arg;
    fail(f, 504,
         !f->up.connected ? "the upstream did not accept the connection in time"
         : f->tunnel      ? "the upgraded connection was idle longer than proxy_read_timeout"
         : f->out_at < f->out.len ? "the upstream did not take the request in time"
                                  : "the upstream did not answer in time");
}

/* ---- ending ------------------------------------------------------------------- */

static void release_upstream(struct fwd *f, bool keep)
{
    upstream_attempt_release(&f->up, keep);
}

static void cleanup(void *arg)
{
    struct fwd *f = arg;
    upstream_attempt_done(&f->up, true);     /* the client left first */
    upstream_attempt_release(&f->up, false); /* the exchange ended (client gone) */
    ask_cancel(f->ask);
    free(f->ask_target);
    buf_free(&f->out);
    buf_free(&f->trailers);
    free(f->in_buf);
}

/* The upstream failed: before the head went out the client gets `status`
 * naming the upstream and why; after it, the response is cut off. */
static void fail(struct fwd *f, int status, const char *why)
{
    if (f->finished)
        return;
    f->finished = true;
    if (f->up.member) {
        log_msg(LOG_ERROR, "proxy %s (%s): %s", f->in->group->name, f->up.member->name, why);
        /* A timeout or an unreachable member counts against it; an invalid
         * answer is the application's, not the member's health. */
        upstream_attempt_done(&f->up, !(status == 504 || !f->up.connected));
    } else {
        log_msg(LOG_ERROR, "proxy %s: %s", f->in->group->name, why);
    }
    release_upstream(f, false);
    upstream_attempt_stop_timer(&f->up);
    if (!f->head_done && proxy_cache_failed(f->cx, status))
        return; /* answered from the cache, or 504 by its rules */
    /* A head relayed but not yet sent can still become the 502. */
    if (f->head_done && f->x->head_sent) {
        verbd_abort(f->x);
        return;
    }
    char detail[512];
    snprintf(detail, sizeof detail, "Upstream %s: %s.", f->in->group->name, why);
    verbd_response_error(verbd_exchange_response(f->x), status, detail);
    verbd_finish(f->x);
}

/* The upstream's part is over: its connection kept if this exchange
 * used it whole. */
static void settle(struct fwd *f)
{
    f->finished = true;
    upstream_attempt_stop_timer(&f->up);
    /* Kept only if this exchange used it whole: its request went out to the
     * end and the response ended where its framing says. */
    bool keep = f->reusable && f->body_complete && f->out_at == f->out.len && f->in_len == 0;
    release_upstream(f, keep);
    upstream_attempt_done(&f->up, true);
}

static void complete(struct fwd *f)
{
    settle(f);
    proxy_cache_complete(f->cx);
    verbd_finish(f->x);
}

/* ---- the request body ------------------------------------------------------------- */

static void pump(struct fwd *f);

static void flush_body(struct verbd_exchange *x, void *arg)
{
    (void)x;
    struct fwd *f = arg;
    f->flush_due = false;
    pump(f);
}

static void body_data(struct verbd_exchange *x, const void *p, size_t n, void *arg)
{
    (void)x;
    struct fwd *f = arg;
    if (f->write_failed)
        return; /* the upstream answered and stopped reading: dropped */
    if (f->chunked_out)
        buf_printf(&f->out, "%zx\r\n", n);
    buf_append(&f->out, p, n);
    if (f->chunked_out)
        buf_append(&f->out, "\r\n", 2);
    if (f->out.len > REPLAY_MAX)
        f->replayable = false;
    if (f->out.len - f->out_at > OUT_HIGH && !f->body_paused) {
        f->body_paused = true;
        verbd_read_pause(f->x);
        pump(f);
        return;
    }
    /* The pieces the session hands over in one turn leave together. */
    if (!f->flush_due) {
        f->flush_due = true;
        verbd_defer(f->x, flush_body, f);
    }
}

static void body_done(struct verbd_exchange *x, int status, void *arg)
{
    (void)x;
    struct fwd *f = arg;
    if (status) {
        /* The client's body failed (malformed, too slow): the upstream
         * must not take a truncated one as whole. */
        f->body_complete = false;
        release_upstream(f, false);
        if (!f->finished) {
            f->finished = true;
            upstream_attempt_stop_timer(&f->up);
            if (f->head_done) {
                verbd_abort(f->x);
            } else {
                verbd_response_error(verbd_exchange_response(f->x), status, NULL);
                verbd_finish(f->x);
            }
        }
        return;
    }
    if (f->chunked_out) {
        /* The client's trailer fields go on with the last chunk. */
        size_t len;
        const char *section = verbd_request_trailers(&f->x->req, &len);
        struct http_field fields[FIELDS_MAX];
        size_t n = passable_trailers(section, len, fields);
        buf_append(&f->out, "0\r\n", 3);
        for (size_t i = 0; i < n; i++) {
            buf_append(&f->out, fields[i].name.p, fields[i].name.n);
            buf_append(&f->out, ": ", 2);
            buf_append(&f->out, fields[i].value.p, fields[i].value.n);
            buf_append(&f->out, "\r\n", 2);
        }
        buf_append(&f->out, "\r\n", 2);
    }
    f->body_complete = true;
    pump(f);
}

static void start_body(struct fwd *f)
{
    if (f->body_reading)
        return;
    f->body_reading = true;
    verbd_timer_cancel(f->continue_timer);
    f->continue_timer = NULL;
    verbd_read(f->x, body_data, body_done, f);
}

static void continue_anyway(struct verbd_exchange *x, void *arg)
{
    (void)x;
    struct fwd *f = arg;
    f->continue_timer = NULL;
    start_body(f);
}

/* ---- the response ------------------------------------------------------------------- */

/* A 501 about the method teaches the gateway (DESIGN.md). */
static void learn(struct fwd *f, const struct http_response *r)
{
    const struct http_request *h = &f->x->req.http;
    uint64_t ttl = learn_from_501(f->in->group->name, h, f->x->req.method_id,
                                  http_response_field(r, "Cache-Control"), f->in->learn_ms);
    if (ttl)
        log_msg(LOG_INFO, "proxy %s: learnt that %.*s is not implemented there (for %llus)",
                f->in->group->name, (int)h->method.n, h->method.p,
                (unsigned long long)(ttl / 1000));
}

/* A 1xx other than 100 and 101 (103 Early Hints) goes on to the client,
 * without its hop-by-hop fields. */
static void relay_interim(struct fwd *f, const struct http_response *r)
{
    struct buf lines = {0};
    for (size_t i = 0; i < r->nfields; i++) {
        const struct http_field *fl = &r->fields[i];
        if (http_hop_by_hop(fl->name, r->fields, r->nfields))
            continue;
        buf_append(&lines, fl->name.p, fl->name.n);
        buf_append(&lines, ": ", 2);
        buf_append(&lines, fl->value.p, fl->value.n);
        buf_append(&lines, "\r\n", 2);
    }
    verbd_interim(f->x, r->status, lines.p ? lines.p : "", lines.len);
    buf_free(&lines);
}

static void body_data(struct verbd_exchange *x, const void *p, size_t n, void *arg);
static void body_done(struct verbd_exchange *x, int status, void *arg);

/* The upstream switched protocols as asked: the 101 goes to the client with
 * the upstream's Upgrade, and from then on both connections are one tunnel
 * (the client's bytes go as its "body", the upstream's come back as the
 * response's, each side's close passed on). */
static void switch_protocols(struct fwd *f, const struct http_response *r)
{
    struct verbd_response *res = verbd_exchange_response(f->x);
    struct span up = http_response_field(r, "Upgrade");
    if (up.p)
        verbd_response_header_n(res, "Upgrade", up.p, up.n);
    f->framing = RESPONSE_CLOSE;
    f->reusable = false;
    f->head_done = true;
    f->tunnel = true;
    f->body_complete = false;
    if (!up.p || !verbd_upgrade(f->x, body_data, body_done, f)) {
        f->head_done = false;
        fail(f, 502, "it switched protocols without naming one");
    }
}

static void take_response(struct fwd *f);
static void pump(struct fwd *f);

static void allow_found(void *arg, const char *allow, size_t len)
{
    struct fwd *f = arg;
    f->ask = NULL;
    if (allow) {
        allow_memo_put(f->in, f->ask_target, allow, len);
        route_relay_allow(f->x->req.mapping, (struct span){allow, len},
                          verbd_exchange_response(f->x));
    }
    upstream_attempt_await(&f->up);
    take_response(f);
    pump(f);
}

/* proxy_fix_allow: a 405 without Allow gets the one the upstream's OPTIONS
 * gives for that resource (remembered for proxy_learn); the response waits
 * for it, the upstream's body unread meanwhile. */
static void fix_allow(struct fwd *f, struct verbd_response *res)
{
    struct buf target = {0};
    proxy_upstream_path(&target, f->in, &f->x->req);
    buf_append(&target, "", 1);
    const char *known = allow_memo_get(f->in, target.p);
    if (known) {
        route_relay_allow(f->x->req.mapping, (struct span){known, strlen(known)}, res);
        buf_free(&target);
        return;
    }
    const struct http_request *h = &f->x->req.http;
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(h->host.n < 255 ? h->host.n : 0), h->host.p);
    f->ask = ask_options(f->in->group, f->x->loop, target.p, h->host.n ? host : f->in->authority,
                         f->in->read_timeout_ms, allow_found, f);
    if (f->ask) {
        f->ask_target = target.p;            /* freed with f */
        upstream_attempt_stop_timer(&f->up); /* the OPTIONS has its own */
    } else {
        buf_free(&target);
    }
}

bool proxy_field_relayed(const struct proxy_inst *in, const struct http_response *r,
                         struct span name)
{
    return !http_hop_by_hop(name, r->fields, r->nfields) && !http_span_is(name, "Server") &&
           !listed(&in->hide_headers, name, false) &&
           !(in->cache_targeted && http_span_is(name, in->cache_targeted));
}

static void relay_head(struct fwd *f, const struct http_response *r)
{
    struct verbd_response *res = verbd_exchange_response(f->x);
    verbd_response_status(res, r->status);
    if (r->status == 501)
        learn(f, r);
    if (r->status == 405 && !http_response_field(r, "Allow").p) {
        const struct http_request *h = &f->x->req.http;
        log_msg(LOG_WARN, "proxy %s: 405 without Allow (RFC 9110 §15.5.6) for %.*s %.*s",
                f->in->group->name, (int)h->method.n, h->method.p, (int)h->target.n, h->target.p);
        learn_missing_allow(f->in->group->name);
        if (f->in->fix_allow)
            fix_allow(f, res);
    }
    for (size_t i = 0; i < r->nfields; i++) {
        const struct http_field *fl = &r->fields[i];
        if (!proxy_field_relayed(f->in, r, fl->name))
            continue;
        if (http_span_is(fl->name, "Allow")) {
            route_relay_allow(f->x->req.mapping, fl->value, res);
            continue;
        }
        if ((http_span_is(fl->name, "Location") &&
             rewrite_location(f, res, "Location", fl->value)) ||
            (http_span_is(fl->name, "Content-Location") &&
             rewrite_location(f, res, "Content-Location", fl->value)))
            continue;
        char name[256];
        if (fl->name.n >= sizeof name)
            continue;
        memcpy(name, fl->name.p, fl->name.n);
        name[fl->name.n] = '\0';
        verbd_response_header_n(res, name, fl->value.p, fl->value.n);
    }
    if (r->status == 101) {
        switch_protocols(f, r);
        return;
    }
    if (r->framing == RESPONSE_LENGTH)
        verbd_response_length(res, r->content_length);
    else if (r->framing == RESPONSE_NONE && f->head_request && r->content_length)
        verbd_response_length(res, r->content_length);
    if (r->framing == RESPONSE_CLOSE)
        verbd_response_close(res);
    f->framing = r->framing;
    f->left = r->content_length;
    f->reusable = r->keep_alive && !r->quirks && r->framing != RESPONSE_CLOSE;
    if (r->framing == RESPONSE_CHUNKED)
        chunked_init(&f->chunked);
    proxy_cache_head(f->cx, r, res);
    f->head_done = true;
}

/* The upstream's trailer fields go on to the client. */
static void relay_trailers(struct fwd *f, struct verbd_response *res)
{
    struct http_field fields[FIELDS_MAX];
    size_t n = passable_trailers(f->trailers.p, f->trailers.len, fields);
    for (size_t i = 0; i < n; i++) {
        char name[256], value[4096];
        if (fields[i].name.n >= sizeof name || fields[i].value.n >= sizeof value ||
            listed(&f->in->hide_headers, fields[i].name, false) ||
            (f->in->cache_targeted && http_span_is(fields[i].name, f->in->cache_targeted)))
            continue;
        memcpy(name, fields[i].name.p, fields[i].name.n);
        name[fields[i].name.n] = '\0';
        memcpy(value, fields[i].value.p, fields[i].value.n);
        value[fields[i].value.n] = '\0';
        verbd_response_trailer(res, name, value);
    }
}

static void relay_body(struct fwd *f, struct verbd_response *res, const char *p, size_t n)
{
    verbd_response_body(res, p, n);
    proxy_cache_body(f->cx, p, n);
}

/* Parses what is buffered: interim and final heads, then body bytes. */
static void take_response(struct fwd *f)
{
    while (!f->head_done && f->in_len) {
        struct http_field fields[FIELDS_MAX];
        struct http_response r;
        struct response_limits lim = {HEAD_MAX, FIELDS_MAX};
        const char *why = NULL;
        int n = http_parse_response(f->in_buf, f->in_len, &lim, f->head_request, fields, &r, &why);
        if (n == 0) {
            if (f->in_len >= HEAD_MAX)
                fail(f, 502, "its response head is too large");
            return;
        }
        if (n < 0 || (r.quirks & (RESPONSE_TE_AND_CL | RESPONSE_TE_FAULTY))) {
            char msg[160];
            snprintf(msg, sizeof msg, "it sent an invalid response (%s)",
                     n < 0                           ? why
                     : r.quirks & RESPONSE_TE_AND_CL ? "Transfer-Encoding with Content-Length"
                                                     : "faulty Transfer-Encoding");
            fail(f, 502, msg);
            return;
        }
        if (r.status == 101 && !f->upgrade) {
            fail(f, 502, "it switched protocols unasked");
            return;
        }
        if (r.status < 200 && r.status != 101 && ++f->interims > MAX_INTERIM) {
            fail(f, 502, "it sent interim responses without end");
            return;
        }
        if (r.status < 200 && r.status != 101) {
            if (r.status == 100 && f->expect && !f->body_reading) {
                verbd_continue(f->x);
                start_body(f);
            } else if (r.status > 101) {
                relay_interim(f, &r);
            }
        } else if (proxy_cache_final(f->cx, &r)) {
            /* A 304 to the cache's validation, or an error a stale entry
             * answers for (stale-if-error): the cache answered, and the
             * connection is kept only if no body follows. */
            f->reusable = r.keep_alive && !r.quirks && r.framing == RESPONSE_NONE;
            f->in_len -= (size_t)n;
            settle(f);
            return;
        } else {
            relay_head(f, &r);
            if (f->finished)
                return;
        }
        memmove(f->in_buf, f->in_buf + n, f->in_len - (size_t)n);
        f->in_len -= (size_t)n;
        if (f->head_done) {
            /* A final answer before any 100: the client's body is not asked
             * for (the session drops it, or closes). */
            verbd_timer_cancel(f->continue_timer);
            f->continue_timer = NULL;
        }
    }
    if (!f->head_done || f->ask)
        return;
    struct verbd_response *res = verbd_exchange_response(f->x);
    size_t used = 0;
    bool ended = f->framing == RESPONSE_NONE;
    while (used < f->in_len && !ended) {
        const char *p = f->in_buf + used;
        size_t avail = f->in_len - used;
        if (f->framing == RESPONSE_LENGTH) {
            size_t take = avail < f->left ? avail : (size_t)f->left;
            relay_body(f, res, p, take);
            f->left -= take;
            used += take;
            ended = f->left == 0;
        } else if (f->framing == RESPONSE_CHUNKED) {
            size_t consumed = 0;
            struct span data = {0};
            const char *why = NULL;
            size_t trailer_before = f->chunked.trailer;
            enum chunked_result cr = chunked_decode(&f->chunked, p, avail, &consumed, &data, &why);
            if (data.n)
                relay_body(f, res, data.p, data.n);
            /* The trailer section's bytes end what this call consumed. */
            size_t tn = f->chunked.trailer - trailer_before;
            if (tn && cr != CHUNKED_ERROR)
                buf_append(&f->trailers, p + consumed - tn, tn);
            used += consumed;
            if (cr == CHUNKED_ERROR) {
                fail(f, 502, why ? why : "its chunked body is malformed");
                return;
            }
            ended = cr == CHUNKED_DONE;
            if (ended)
                relay_trailers(f, res);
            if (!consumed && cr == CHUNKED_MORE)
                break;
        } else {
            relay_body(f, res, p, avail);
            used += avail;
        }
    }
    if (f->framing == RESPONSE_LENGTH && f->left == 0)
        ended = true;
    memmove(f->in_buf, f->in_buf + used, f->in_len - used);
    f->in_len -= used;
    if (ended) {
        if (f->in_len) {
            /* Bytes past the response's end are no response (RFC 9112
             * §6.3): the message ends where its framing says, the excess is
             * dropped, and the connection is never reused. */
            const struct http_request *h = &f->x->req.http;
            log_msg(LOG_WARN, "proxy %s: %zu bytes past the response's end dropped for %.*s %.*s",
                    f->in->group->name, f->in_len, (int)h->method.n, h->method.p, (int)h->target.n,
                    h->target.p);
            f->reusable = false;
        }
        f->in_len = 0;
        complete(f);
        return;
    }
    if (proxy_cache_holds(f->cx))
        return; /* bounded by cache_max_entry: past it, capturing stops */
    if (!verbd_send(f->x))
        f->waiting_client = true;
}

static void client_took(struct verbd_exchange *x, void *arg)
{
    (void)x;
    struct fwd *f = arg;
    f->waiting_client = false;
    pump(f);
}

/* A kept connection the upstream had closed before any answer: the
 * request goes once more, on a new connection (RFC 9110 §9.2.2; RFC 9112
 * §9.3.1), from the bytes kept.  False if the exchange ended. */
static bool retry(struct fwd *f)
{
    f->retried = true;
    f->replayable = false;
    f->out_at = 0;
    if (!upstream_attempt_reconnect(&f->up)) {
        fail(f, 502, strerror(errno));
        return false;
    }
    /* Another kept connection raises no edge of its own: it is written
     * to from the loop (a new one, once it is connected). */
    if (f->up.reused && !f->flush_due) {
        f->flush_due = true;
        verbd_defer(f->x, flush_body, f);
    }
    return true;
}

/* Reads what the upstream sent.  False if the exchange ended. */
static bool read_upstream(struct fwd *f)
{
    for (;;) {
        if (f->waiting_client || f->finished || f->ask)
            return !f->finished;
        size_t room = (f->head_done ? IN_CHUNK : HEAD_MAX) - f->in_len;
        if (room == 0) {
            take_response(f);
            continue;
        }
        ssize_t n = upstream_attempt_recv(&f->up, f->in_buf + f->in_len, room);
        if (n == 0)
            return true;
        if (n > 0) {
            f->in_len += (size_t)n;
            take_response(f);
            continue;
        }
        /* The end of the connection. */
        if (f->head_done && f->framing == RESPONSE_CLOSE) {
            f->reusable = false;
            complete(f);
            return false;
        }
        if (!f->head_done && f->in_len == 0 && f->replayable)
            return retry(f);
        fail(f, 502,
             errno          ? strerror(errno)
             : f->head_done ? "it closed the connection before the end of the body"
                            : "it closed the connection without an answer");
        return false;
    }
}

static bool write_upstream(struct fwd *f)
{
    int r = upstream_attempt_send(&f->up, &f->out, &f->out_at);
    if (r == 0)
        return true;
    if (r < 0) {
        if (!f->head_done && f->in_len == 0 && f->replayable)
            return retry(f);
        /* The upstream stopped reading: it may have answered already (a
         * refusal before the body), so its answer is read on. */
        if (f->head_done || f->in_len) {
            f->write_failed = true;
            f->reusable = false;
            f->out_at = f->out.len = 0;
            return true;
        }
        fail(f, 502, strerror(errno));
        return false;
    }
    if (!f->replayable)
        f->out_at = f->out.len = 0;
    if (f->tunnel && f->body_complete && !f->shut_sent) {
        f->shut_sent = true; /* the client closed its side: so does verbd */
        shutdown(f->up.conn->fd, SHUT_WR);
    }
    if (f->body_paused && !f->finished) {
        f->body_paused = false;
        verbd_read_resume(f->x);
    }
    return true;
}

static void pump(struct fwd *f)
{
    if (f->finished || !f->up.conn)
        return;
    /* The connection's watch is edge-triggered: each side is driven until
     * it would block, and the next edge resumes it. */
    if (f->up.connected && !write_upstream(f))
        return;
    if (f->up.connected && !read_upstream(f))
        return;
    if (f->waiting_client)
        verbd_on_writable(f->x, client_took, f);
}

static void ready(void *arg)
{
    pump(arg);
}

static void failed(void *arg, const char *why)
{
    fail(arg, 502, why);
}

void proxy_forward(struct proxy_inst *in, struct verbd_exchange *x, struct cachex *cx)
{
    struct fwd *f = verbd_alloc(x, sizeof *f);
    memset(f, 0, sizeof *f);
    f->x = x;
    f->in = in;
    f->cx = cx;
    struct upstream_timeouts t = {in->connect_timeout_ms, in->send_timeout_ms, in->read_timeout_ms};
    struct upstream_owner o = {ready, failed, timed_out, f};
    upstream_attempt_init(&f->up, in->group, "proxy", x, &t, &o);
    const struct verbd_request *req = &x->req;
    f->head_request = req->method_id == METHOD_HEAD && !proxy_cache_method(cx);
    f->expect = req->http.expect_continue;
    f->upgrade = asks_upgrade(&req->http);
    f->in_buf = malloc(HEAD_MAX);
    if (!f->in_buf)
        abort();
    verbd_cleanup(x, cleanup, f);
    /* A client that closes its side gives the request up (the upstream
     * connection closes with the exchange), as nginx does. */
    verbd_end_on_client_end(x);
    build_head(f);
    bool has_body = verbd_request_has_body(req);
    f->body_complete = !has_body;
    if (!upstream_attempt_connect(&f->up))
        return;
    f->replayable = f->up.reused && is_idempotent(req->method_id);
    if (has_body) {
        /* A client waiting for 100 Continue hears it when the upstream
         * sends it (or after a moment, when verbd forwards the body). */
        if (f->expect)
            f->continue_timer = verbd_timer(x, CONTINUE_WAIT_MS, 0, continue_anyway, f);
        else
            start_body(f);
    }
    pump(f);
}
