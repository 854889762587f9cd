/* Asking an upstream on a connection of its own: "OPTIONS target", read
 * up to the answer's head, whose Allow is handed back, or a request the
 * cache makes, whose whole answer (head and decoded body, up to a limit)
 * is.  It runs on the worker's loop, not in an
 * exchange, so that it can serve a request waiting for it
 * (proxy_fix_allow), the periodic OPTIONS * (proxy_learn_options), and a
 * revalidation that outlives the exchange that started it
 * (stale-while-revalidate). */
#include "mod/proxy/ask.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/clock.h"
#include "http/chunked.h"
#include "http/response.h"

#define HEAD_MAX (16 * 1024)
#define FIELDS_MAX 100

struct ask {
    struct loop *loop;
    struct upstream_member *member;
    struct upstream_conn *conn;
    struct loop_timer timer;
    struct loop_defer kick;
    struct buf out;
    size_t out_at;
    char in[HEAD_MAX];
    size_t in_len;
    ask_done_fn *done;        /* OPTIONS: the Allow */
    ask_whole_fn *whole_done; /* or the whole answer */
    void *arg;
    /* The whole answer once its head is in: the head (its fields point
     * into `in`), the body so far, at most body_max bytes. */
    bool in_body;
    struct http_field fields[FIELDS_MAX];
    struct http_response r;
    uint64_t left; /* Content-Length framing: bytes still to come */
    struct chunked chunked;
    struct buf body;
    uint64_t body_max;
};

/* The answer (which points into a->in) is handed over before the ask
 * goes; its owner forgets it in `done` and never cancels it after. */
static void finish(struct ask *a, const char *allow, size_t len)
{
    if (a->whole_done)
        a->whole_done(a->arg, a->in_body ? &a->r : NULL, NULL, 0);
    else
        a->done(a->arg, allow, len);
    ask_cancel(a);
}

/* The whole answer is in: handed over, and the ask goes. */
static bool deliver(struct ask *a)
{
    a->whole_done(a->arg, &a->r, a->body.p ? a->body.p : "", a->body.len);
    ask_cancel(a);
    return true;
}

static bool keep(struct ask *a, struct span data)
{
    if (a->body.len + data.n > a->body_max)
        return false;
    buf_append(&a->body, data.p, data.n);
    return true;
}

/* Body bytes p[0, n) of the whole answer, decoded by its framing: true
 * once the ask is over (its body whole, or not to be: malformed, or past
 * body_max). */
static bool take_body(struct ask *a, const char *p, size_t n)
{
    size_t used = 0;
    for (;;) {
        if (a->r.framing == RESPONSE_NONE || (a->r.framing == RESPONSE_LENGTH && a->left == 0))
            return deliver(a);
        if (used == n)
            return false;
        struct span data = {p + used, n - used};
        enum chunked_result cr = CHUNKED_MORE;
        if (a->r.framing == RESPONSE_CHUNKED) {
            size_t consumed = 0;
            const char *why = NULL;
            cr = chunked_decode(&a->chunked, p + used, n - used, &consumed, &data, &why);
            used += consumed;
            if (cr == CHUNKED_ERROR) {
                finish(a, NULL, 0);
                return true;
            }
            if (cr == CHUNKED_MORE && !consumed)
                return false; /* the decoder waits for more */
        } else {
            if (a->r.framing == RESPONSE_LENGTH && data.n > a->left)
                data.n = (size_t)a->left;
            a->left -= a->r.framing == RESPONSE_LENGTH ? data.n : 0;
            used += data.n;
        }
        if (!keep(a, data)) {
            finish(a, NULL, 0);
            return true;
        }
        if (cr == CHUNKED_DONE)
            return deliver(a);
    }
}

/* The final head of a whole answer: kept, and the bytes read past it
 * (rest[0, n)) are its body's first. */
static bool body_starts(struct ask *a, const struct http_response *r,
                        const struct http_field *fields, const char *rest, size_t n)
{
    a->r = *r;
    memcpy(a->fields, fields, r->nfields * sizeof *fields);
    a->r.fields = a->fields;
    a->in_body = true;
    a->left = r->content_length;
    chunked_init(&a->chunked);
    if ((r->quirks & (RESPONSE_TE_AND_CL | RESPONSE_TE_FAULTY)) ||
        (r->framing == RESPONSE_LENGTH && r->content_length > a->body_max)) {
        finish(a, NULL, 0); /* framed unsafely, or too large to keep */
        return true;
    }
    return take_body(a, rest, n);
}

/* The final head, once it is in: its Allow, or nothing. */
static bool take_head(struct ask *a)
{
    size_t at = 0;
    for (;;) {
        struct http_field fields[FIELDS_MAX];
        struct http_response r;
        struct response_limits lim = {HEAD_MAX, FIELDS_MAX};
        const char *why = NULL;
        int n = http_parse_response(a->in + at, a->in_len - at, &lim, false, fields, &r, &why);
        if (n == 0 && a->in_len < HEAD_MAX)
            return false;
        if (n <= 0) {
            finish(a, NULL, 0);
            return true;
        }
        if (r.status < 200) {
            at += (size_t)n;
            continue;
        }
        if (a->whole_done)
            return body_starts(a, &r, fields, a->in + at + n, a->in_len - at - (size_t)n);
        struct span allow = http_response_field(&r, "Allow");
        if (r.status >= 300 || !allow.p)
            finish(a, NULL, 0);
        else
            finish(a, allow.p, allow.n);
        return true;
    }
}

static void on_io(void *owner, uint32_t events)
{
    struct ask *a = owner;
    (void)events;
    while (a->out_at < a->out.len) {
        ssize_t n = send(a->conn->fd, a->out.p + a->out_at, a->out.len - a->out_at, MSG_NOSIGNAL);
        if (n > 0) {
            a->out_at += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN))
            return; /* the next edge says it is connected, or has room */
        finish(a, NULL, 0);
        return;
    }
    for (;;) {
        char chunk[16 * 1024];
        ssize_t n = a->in_body ? recv(a->conn->fd, chunk, sizeof chunk, 0)
                               : recv(a->conn->fd, a->in + a->in_len, HEAD_MAX - a->in_len, 0);
        if (n > 0 && a->in_body) {
            if (take_body(a, chunk, (size_t)n))
                return;
            continue;
        }
        if (n > 0) {
            a->in_len += (size_t)n;
            if (take_head(a))
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n == 0 && a->in_body && a->r.framing == RESPONSE_CLOSE) {
            deliver(a); /* a body that ends with the connection */
            return;
        }
        finish(a, NULL, 0);
        return;
    }
}

static void on_timeout(void *arg)
{
    finish(arg, NULL, 0);
}

static void start_writing(void *arg)
{
    on_io(arg, 0);
}

/* An ask of the request in a->out, on a connection of its own. */
static struct ask *ask_send(struct ask *a, struct upstream_group *g, struct loop *loop,
                            uint64_t timeout_ms)
{
    a->loop = loop;
    loop_timer_init(&a->timer);
    loop_defer_init(&a->kick);
    a->member = upstream_pick(g, NULL);
    bool reused;
    a->conn = upstream_conn_open(g, a->member, loop, &reused, on_io, a);
    if (!a->conn) {
        upstream_member_done(a->member, true);
        buf_free(&a->out);
        free(a);
        return NULL;
    }
    loop_timer_at(loop, &a->timer, clock_ms() + timeout_ms, on_timeout, a);
    /* A kept connection raises no edge of its own: the first write is
     * tried at once (a new one waits for being connected). */
    if (reused)
        loop_defer(loop, &a->kick, start_writing, a);
    return a;
}

struct ask *ask_options(struct upstream_group *g, struct loop *loop, const char *target,
                        const char *host, uint64_t timeout_ms, ask_done_fn *done, void *arg)
{
    struct ask *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->done = done;
    a->arg = arg;
    buf_printf(&a->out,
               "OPTIONS %s HTTP/1.1\r\nHost: %s\r\nVia: 1.1 verbd\r\nConnection: close\r\n\r\n",
               target, host);
    return ask_send(a, g, loop, timeout_ms);
}

struct ask *ask_whole(struct upstream_group *g, struct loop *loop, const char *request, size_t len,
                      uint64_t timeout_ms, uint64_t body_max, ask_whole_fn *done, void *arg)
{
    struct ask *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->whole_done = done;
    a->body_max = body_max;
    a->arg = arg;
    buf_append(&a->out, request, len);
    return ask_send(a, g, loop, timeout_ms);
}

void ask_cancel(struct ask *a)
{
    if (!a)
        return;
    loop_timer_stop(a->loop, &a->timer);
    loop_defer_cancel(a->loop, &a->kick);
    if (a->conn)
        upstream_conn_close(a->conn);
    upstream_member_done(a->member, true);
    buf_free(&a->out);
    buf_free(&a->body);
    free(a);
}
