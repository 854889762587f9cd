/* One exchange with the application: BEGIN_REQUEST, the PARAMS, the body
 * streamed as STDIN records as it arrives, and the STDOUT stream parsed as
 * a CGI response (RFC 3875 §6) and streamed back, with backpressure both
 * ways and nothing held whole (but a chunked request body, whose length
 * CGI needs: up to fastcgi_chunked_body). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/exchange.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/method.h"
#include "http/parse.h"
#include "mod/fastcgi/internal.h"
#include "mod/fastcgi/record.h"
#include "route/redirect.h"
#include "route/route.h"
#include "upstream/attempt.h"
#include "upstream/learn.h"

#define REQUEST_ID 1
/* Request bytes queued for the application before the client's body is
 * paused; application bytes read at once (a 64 KiB answer in one or two
 * reads). */
#define OUT_HIGH (64 * 1024)
#define IN_CHUNK (128 * 1024)
/* The CGI header section, at most; its fields. */
#define HEAD_MAX (32 * 1024)
#define FIELDS_MAX 100
/* STDERR lines logged per worker and second; the rest are counted. */
#define STDERR_LINES_PER_SECOND 20
#define STDERR_LINE_MAX 2048

struct fcgi {
    struct verbd_exchange *x;
    struct fcgi_inst *in;
    struct upstream_attempt up;
    struct fcgi_script script;

    /* Toward the application. */
    struct buf out;
    size_t out_at;
    bool replayable; /* every byte sent is still in `out`: a kept connection closed
                        before any answer gets the request again on a new one */
    bool body_reading, body_paused, body_complete, flush_due;
    bool hold_body; /* a chunked body, held to learn its length */
    struct buf held;

    /* From the application. */
    struct fcgi_reader reader;
    struct inbuf *inb; /* what was just read, while it is parsed */
    size_t in_len;
    struct buf head; /* the CGI header section until it is whole */
    bool head_done;
    bool answered; /* any byte of an answer came */
    uint64_t left; /* with a Content-Length: body bytes still due */
    bool has_length;
    bool waiting_client;
    bool ended; /* END_REQUEST came */
    bool finished;
    struct buf err_line; /* a STDERR line until its end */
};

static void pump(struct fcgi *f);

/* A buffer an application's answer is read into.  Body bytes are lent
 * from it to the response (no copy), so it lives until the last of them
 * is sent: `refs` counts them, and the reader while it parses.  A worker
 * keeps one free buffer for the next read; another is made only while
 * every buffer is still lent out. */
struct inbuf {
    unsigned refs;
    char data[IN_CHUNK];
};

static struct inbuf *spare_inbuf;

static struct inbuf *inbuf_take(void)
{
    struct inbuf *b = spare_inbuf;
    spare_inbuf = NULL;
    if (!b && !(b = malloc(sizeof *b)))
        abort();
    b->refs = 1;
    return b;
}

static void inbuf_drop(void *arg)
{
    struct inbuf *b = arg;
    if (--b->refs)
        return;
    if (!spare_inbuf)
        spare_inbuf = b;
    else
        free(b);
}

/* ---- STDERR to the error log, rate-limited per worker ------------------------------ */

static void log_stderr_line(struct fcgi *f, const char *p, size_t n)
{
    static uint64_t second;
    static unsigned lines, dropped;
    uint64_t now = clock_ms() / 1000;
    if (now != second) {
        if (dropped)
            log_msg(LOG_WARN, "fastcgi %s: %u more lines of the application's stderr not logged",
                    f->in->group->name, dropped);
        second = now;
        lines = dropped = 0;
    }
    if (++lines > STDERR_LINES_PER_SECOND) {
        dropped++;
        return;
    }
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    log_msg(LOG_ERROR, "fastcgi %s (%s) stderr: %.*s", f->in->group->name,
            f->up.member ? f->up.member->name : "-", (int)n, p);
}

/* A last line without its end, logged while the member is still known. */
static void flush_stderr(struct fcgi *f)
{
    if (f->err_line.len)
        log_stderr_line(f, f->err_line.p, f->err_line.len);
    buf_reset(&f->err_line);
}

static void take_stderr(struct fcgi *f, const char *p, size_t n)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) + 1 : n;
        if (f->err_line.len + k > STDERR_LINE_MAX)
            k = STDERR_LINE_MAX - f->err_line.len; /* a line cut at the bound */
        buf_append(&f->err_line, p, k);
        p += k;
        n -= k;
        if (nl || f->err_line.len == STDERR_LINE_MAX) {
            log_stderr_line(f, f->err_line.p, f->err_line.len);
            buf_reset(&f->err_line);
        }
    }
}

/* ---- timer and ending ---------------------------------------------------------------- */

static void fail(struct fcgi *f, int status, const char *why);

static void timed_out(void *arg)
{
    struct fcgi *f = arg;
    fail(f, 504,
         !f->up.connected         ? "the application did not accept the connection in time"
         : f->out_at < f->out.len ? "the application did not take the request in time"
                                  : "the application did not answer in time");
}

static void release_conn(struct fcgi *f, bool keep)
{
    upstream_attempt_release(&f->up, keep);
}

/* The client went away: the application is told (best effort: the
 * connection is not kept anyway). */
static void abort_app(struct fcgi *f)
{
    if (!f->up.conn || !f->up.connected || f->ended)
        return;
    struct buf b = {0};
    fcgi_abort_request(&b, REQUEST_ID);
    if (send(f->up.conn->fd, b.p, b.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
        log_msg(LOG_DEBUG, "fastcgi %s: abort: %s", f->in->group->name, strerror(errno));
    buf_free(&b);
    release_conn(f, false);
}

static void cleanup(void *arg)
{
    struct fcgi *f = arg;
    abort_app(f);
    flush_stderr(f);
    upstream_attempt_done(&f->up, true); /* the client left first */
    release_conn(f, false);
    buf_free(&f->out);
    buf_free(&f->held);
    buf_free(&f->head);
    buf_free(&f->err_line);
    if (f->inb) {
        inbuf_drop(f->inb);
        f->inb = NULL;
    }
}

/* The application failed: before the head went out the client gets
 * `status` naming the application and why; after it, the response is
 * cut off. */
static void fail(struct fcgi *f, int status, const char *why)
{
    if (f->finished)
        return;
    f->finished = true;
    flush_stderr(f);
    log_msg(LOG_ERROR, "fastcgi %s (%s): %s", f->in->group->name,
            f->up.member ? f->up.member->name : "-", why);
    /* A timeout or an unreachable member counts against it; an invalid
     * answer is the application's, not the member's health. */
    upstream_attempt_done(&f->up, !(status == 504 || !f->up.connected));
    release_conn(f, false);
    upstream_attempt_stop_timer(&f->up);
    if (f->head_done && f->x->head_sent) {
        verbd_abort(f->x);
        return;
    }
    char detail[512];
    snprintf(detail, sizeof detail, "Application %s: %s.", f->in->group->name, why);
    verbd_response_error(verbd_exchange_response(f->x), status, detail);
    verbd_finish(f->x);
}

static void complete(struct fcgi *f)
{
    f->finished = true;
    flush_stderr(f);
    upstream_attempt_stop_timer(&f->up);
    bool keep =
        f->in->group->max_idle && f->body_complete && f->out_at == f->out.len && f->in_len == 0;
    release_conn(f, keep);
    upstream_attempt_done(&f->up, true);
    if (f->has_length && f->left && f->x->req.method_id != METHOD_HEAD) {
        verbd_abort(f->x); /* shorter than its Content-Length */
        return;
    }
    verbd_finish(f->x);
}

/* ---- the request ------------------------------------------------------------------- */

static void flush_body(struct verbd_exchange *x, void *arg)
{
    (void)x;
    struct fcgi *f = arg;
    f->flush_due = false;
    pump(f);
}

static void queue_stdin(struct fcgi *f, const void *p, size_t n)
{
    fcgi_stream(&f->out, FCGI_STDIN, REQUEST_ID, p, n);
}

static void body_data(struct verbd_exchange *x, const void *p, size_t n, void *arg)
{
    (void)x;
    struct fcgi *f = arg;
    if (f->hold_body) {
        if (f->finished)
            return;
        if (f->held.len + n > f->in->chunked_max) {
            f->finished = true;
            verbd_response_error(verbd_exchange_response(f->x), 413,
                                 "A chunked body this large needs a Content-Length here.");
            verbd_finish(f->x);
            return;
        }
        buf_append(&f->held, p, n);
        return;
    }
    if (!n || f->finished)
        return;
    queue_stdin(f, p, n);
    f->replayable = false; /* the body is not kept */
    if (f->out.len - f->out_at > OUT_HIGH && !f->body_paused) {
        f->body_paused = true;
        verbd_read_pause(f->x);
        pump(f);
        return;
    }
    if (!f->flush_due) {
        f->flush_due = true;
        verbd_defer(f->x, flush_body, f);
    }
}

static void send_request(struct fcgi *f, uint64_t content_length);

static void body_done(struct verbd_exchange *x, int status, void *arg)
{
    (void)x;
    struct fcgi *f = arg;
    if (status) {
        /* The client's body failed: the application must not take a
         * truncated one as whole. */
        release_conn(f, false);
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
    if (f->hold_body) {
        f->hold_body = false;
        if (f->finished)
            return;
        send_request(f, f->held.len);
        return;
    }
    queue_stdin(f, NULL, 0);
    f->body_complete = true;
    pump(f);
}

/* The head of the request (BEGIN_REQUEST, PARAMS) and, for a held body,
 * the body; then the connection. */
static void send_request(struct fcgi *f, uint64_t content_length)
{
    fcgi_begin_request(&f->out, REQUEST_ID, f->in->group->max_idle > 0);
    struct buf params = {0};
    fcgi_build_params(f->in, f->x, &f->script, content_length, &params);
    fcgi_stream(&f->out, FCGI_PARAMS, REQUEST_ID, params.p, params.len);
    fcgi_stream(&f->out, FCGI_PARAMS, REQUEST_ID, NULL, 0);
    buf_free(&params);
    if (f->held.len)
        queue_stdin(f, f->held.p, f->held.len);
    bool streaming = f->body_reading && !f->body_complete && content_length && !f->held.len;
    if (!streaming) {
        queue_stdin(f, NULL, 0);
        f->body_complete = true;
    }
    buf_free(&f->held);
    if (!upstream_attempt_connect(&f->up))
        return;
    f->replayable = f->up.reused && f->body_complete;
    pump(f);
}

/* ---- the response ------------------------------------------------------------------ */

/* A location that is a path (RFC 3875 §6.2.2): the server answers as for
 * a GET of it, decided again. */
static void local_redirect(struct fcgi *f, struct span location)
{
    struct verbd_exchange *x = f->x;
    const struct route_table *t = x->req.mapping->table;
    char *uri = verbd_alloc(x, location.n + 1);
    memcpy(uri, location.p, location.n);
    uri[location.n] = '\0';
    f->finished = true;
    upstream_attempt_stop_timer(&f->up);
    release_conn(f, false);
    upstream_attempt_done(&f->up, true);
    response_reset(&x->res);
    if (x->req.method_id != METHOD_HEAD)
        x->req.method_id = METHOD_GET;
    enum verdict v = route_redirect(t, x, uri, location.n);
    if (v == VERDICT_SERVE && !x->req.route->answer) {
        const struct route_mapping *m = x->req.mapping;
        m->module->start(m->inst, x);
        return;
    }
    route_start(t, v, x);
}

/* The end of the CGI header section in p[0, n) (its lines end in CRLF or
 * LF; an empty line ends it): the offset just past it, or 0 while it is
 * incomplete.  *bare_lf: some line ended in LF alone. */
static size_t head_end(const char *p, size_t n, bool *bare_lf)
{
    *bare_lf = false;
    for (const char *nl = memchr(p, '\n', n); nl;
         nl = memchr(nl + 1, '\n', (size_t)(p + n - nl - 1))) {
        size_t at = (size_t)(nl - p);
        bool crlf = at > 0 && p[at - 1] == '\r';
        *bare_lf = *bare_lf || !crlf;
        /* The line that ends here is empty: the line before ended just
         * before it, or this is the first. */
        size_t start = crlf ? at - 1 : at;
        if (start == 0 || p[start - 1] == '\n')
            return at + 1;
    }
    return 0;
}

/* The section with CRLF line ends, for the field parser. */
static void crlf_lines(const char *p, size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            buf_append(out, "\r", 1);
        buf_append(out, p + i, 1);
    }
}

static bool parse_status(struct span v, int *status)
{
    if (v.n < 3 || v.p[0] < '1' || v.p[0] > '5' || v.p[1] < '0' || v.p[1] > '9' || v.p[2] < '0' ||
        v.p[2] > '9' || (v.n > 3 && v.p[3] != ' '))
        return false;
    *status = (v.p[0] - '0') * 100 + (v.p[1] - '0') * 10 + (v.p[2] - '0');
    return *status >= 200;
}

/* The header section is whole in head[0, n): relays it. */
static void relay_head(struct fcgi *f, const char *p, size_t n)
{
    struct buf norm = {0};
    bool bare_lf;
    head_end(p, n, &bare_lf);
    if (bare_lf) {
        crlf_lines(p, n, &norm);
        p = norm.p;
        n = norm.len;
    }
    struct http_field fields[FIELDS_MAX];
    size_t nf = 0;
    const char *why = "";
    long r = n == 2 ? 2 : http_parse_fields(p, 0, n, fields, FIELDS_MAX, &nf, &why);
    if (r <= 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "its CGI header section is invalid (%s)", why);
        buf_free(&norm);
        fail(f, 502, msg);
        return;
    }
    struct verbd_response *res = verbd_exchange_response(f->x);
    struct span status_v = http_fields_find(fields, nf, "Status");
    struct span location = http_fields_find(fields, nf, "Location");
    int status = 200;
    if (status_v.p && !parse_status(status_v, &status)) {
        buf_free(&norm);
        fail(f, 502, "its Status field is not a final status code");
        return;
    }
    if (!status_v.p && location.p && location.n && location.p[0] == '/' &&
        (location.n < 2 || location.p[1] != '/')) {
        local_redirect(f, location);
        buf_free(&norm);
        return;
    }
    if (!status_v.p && location.p)
        status = 302; /* a client redirect (RFC 3875 §6.2.3) */
    verbd_response_status(res, status);
    if (status == 501) {
        const struct http_request *h = &f->x->req.http;
        uint64_t ttl =
            learn_from_501(f->in->group->name, h, f->x->req.method_id,
                           http_fields_find(fields, nf, "Cache-Control"), f->in->learn_ms);
        if (ttl)
            log_msg(LOG_INFO, "fastcgi %s: learnt that %.*s is not implemented there (for %llus)",
                    f->in->group->name, (int)h->method.n, h->method.p,
                    (unsigned long long)(ttl / 1000));
    }
    for (size_t i = 0; i < nf; i++) {
        const struct http_field *fl = &fields[i];
        if (http_span_is(fl->name, "Status") || http_hop_by_hop(fl->name, fields, nf))
            continue;
        if (http_span_is(fl->name, "Allow")) {
            route_relay_allow(f->x->req.mapping, fl->value, res);
            continue;
        }
        char name[256];
        if (fl->name.n >= sizeof name)
            continue;
        memcpy(name, fl->name.p, fl->name.n);
        name[fl->name.n] = '\0';
        verbd_response_header_n(res, name, fl->value.p, fl->value.n);
    }
    struct span cl = http_fields_find(fields, nf, "Content-Length");
    if (cl.p) {
        uint64_t v = 0;
        bool ok = cl.n > 0 && cl.n <= 19;
        for (size_t i = 0; ok && i < cl.n; i++) {
            ok = cl.p[i] >= '0' && cl.p[i] <= '9';
            v = v * 10 + (uint64_t)(cl.p[i] - '0');
        }
        if (!ok) {
            buf_free(&norm);
            fail(f, 502, "its Content-Length is not a length");
            return;
        }
        verbd_response_length(res, v);
        f->has_length = true;
        f->left = v;
    }
    buf_free(&norm);
    f->head_done = true;
    /* Without a length the head goes now, so GET and HEAD are framed
     * alike (chunked) whatever the timing of the body's arrival. */
    if (!f->has_length)
        verbd_send(f->x);
}

/* STDOUT bytes: the header section until it is whole, then the body. */
static void take_stdout(struct fcgi *f, const char *p, size_t n)
{
    if (!f->head_done) {
        /* Usually the whole section is in the first piece: parsed where
         * it lies, else gathered (bounded) until it is whole. */
        bool bare_lf;
        size_t before = f->head.len, end;
        const char *head = p;
        if (before == 0 && (end = head_end(p, n, &bare_lf)) != 0) {
            before = 0;
        } else {
            buf_append(&f->head, p, n);
            head = f->head.p;
            end = head_end(f->head.p, f->head.len, &bare_lf);
        }
        if (!end || end > HEAD_MAX) {
            if (end || f->head.len >= HEAD_MAX)
                fail(f, 502, "its CGI header section is too large");
            return;
        }
        relay_head(f, head, end);
        if (f->finished || !f->head_done)
            return;
        size_t used = end - before;
        p += used;
        n -= used;
    }
    if (f->x->req.method_id == METHOD_HEAD || !n)
        return;
    if (f->has_length) {
        if (n > f->left)
            n = (size_t)f->left; /* past its length: dropped */
        f->left -= n;
    }
    /* Lent, not copied: the buffer stays until these bytes are sent. */
    f->inb->refs++;
    verbd_response_body_shared(verbd_exchange_response(f->x), p, n, inbuf_drop, f->inb);
}

/* Parses what is buffered.  False if the exchange ended. */
static bool take_input(struct fcgi *f)
{
    size_t at = 0;
    while (at < f->in_len && !f->finished) {
        if (f->ended) {
            f->in_len = 0;
            release_conn(f, false); /* bytes after the end: not reused */
            break;
        }
        size_t used = 0;
        struct fcgi_out o;
        enum fcgi_event ev =
            fcgi_read(&f->reader, REQUEST_ID, f->inb->data + at, f->in_len - at, &used, &o);
        at += used;
        if (ev == FCGI_ERROR) {
            char msg[160];
            snprintf(msg, sizeof msg, "it sent %s", o.why);
            fail(f, 502, msg);
            return false;
        }
        if (ev == FCGI_OUTPUT && o.type == FCGI_STDERR)
            take_stderr(f, o.p, o.len);
        else if (ev == FCGI_OUTPUT && o.len)
            take_stdout(f, o.p, o.len);
        else if (ev == FCGI_END)
            f->ended = true;
    }
    if (f->finished)
        return false;
    f->in_len = 0;
    if (f->ended) {
        if (!f->head_done) {
            fail(f, 502, "it ended the request without a complete CGI header section");
            return false;
        }
        complete(f);
        return false;
    }
    if (f->head_done && !verbd_send(f->x))
        f->waiting_client = true;
    return true;
}

static void client_took(struct verbd_exchange *x, void *arg)
{
    (void)x;
    struct fcgi *f = arg;
    f->waiting_client = false;
    pump(f);
}

/* A kept connection closed before any answer: the request goes once more
 * on a new one.  False if the exchange ended. */
static bool retry(struct fcgi *f)
{
    f->replayable = false;
    f->out_at = 0;
    memset(&f->reader, 0, sizeof f->reader);
    if (!upstream_attempt_reconnect(&f->up)) {
        fail(f, 502, strerror(errno));
        return false;
    }
    if (f->up.reused && !f->flush_due) {
        f->flush_due = true;
        verbd_defer(f->x, flush_body, f);
    }
    return true;
}

static bool read_app(struct fcgi *f)
{
    while (!f->waiting_client && !f->finished) {
        f->inb = inbuf_take();
        ssize_t n = upstream_attempt_recv(&f->up, f->inb->data, IN_CHUNK);
        if (n > 0) {
            f->in_len = (size_t)n;
            f->answered = true;
            if (!take_input(f))
                return false; /* ended: its cleanup lets the buffer go */
            inbuf_drop(f->inb);
            f->inb = NULL;
            continue;
        }
        inbuf_drop(f->inb);
        f->inb = NULL;
        if (n == 0)
            return true;
        if (!f->answered && f->replayable)
            return retry(f);
        fail(f, 502,
             errno          ? strerror(errno)
             : f->head_done ? "it closed the connection before the end of the response"
                            : "it closed the connection without an answer");
        return false;
    }
    return !f->finished;
}

static bool write_app(struct fcgi *f)
{
    int r = upstream_attempt_send(&f->up, &f->out, &f->out_at);
    if (r == 0)
        return true;
    if (r < 0) {
        if (!f->answered && f->replayable)
            return retry(f);
        if (!f->answered) {
            fail(f, 502, strerror(errno));
            return false;
        }
        /* It answered without reading the whole body: its answer stands,
         * the rest of the body is dropped. */
    }
    if (!f->replayable)
        f->out_at = f->out.len = 0;
    if (f->body_paused && !f->finished) {
        f->body_paused = false;
        verbd_read_resume(f->x);
    }
    return true;
}

static void pump(struct fcgi *f)
{
    if (f->finished || !f->up.conn)
        return;
    if (f->up.connected && !write_app(f))
        return;
    if (f->up.connected && !read_app(f))
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

void fcgi_start(struct fcgi_inst *in, struct verbd_exchange *x)
{
    struct fcgi *f = verbd_alloc(x, sizeof *f);
    memset(f, 0, sizeof *f);
    f->x = x;
    f->in = in;
    struct upstream_timeouts t = {in->connect_timeout_ms, in->send_timeout_ms, in->read_timeout_ms};
    struct upstream_owner o = {ready, failed, timed_out, f};
    upstream_attempt_init(&f->up, in->group, "fastcgi", x, &t, &o);
    struct verbd_response *res = verbd_exchange_response(x);
    const struct route_mapping *m = x->req.mapping;
    if (fcgi_find_script(in, x, &f->script) < 0) {
        verbd_response_error(res, 500, "The script's path could not be split.");
        verbd_finish(x);
        return;
    }
    /* Nothing reaches the application for a script that is not a file
     * under the root: /uploads/evil.jpg/x.php never runs evil.jpg. */
    if (in->check_script && m->root_fd < 0) {
        log_msg(LOG_ERROR,
                "fastcgi %s: no root to find %s in (root DIR; or fastcgi_check_script "
                "off;)",
                in->group->name, f->script.name);
        verbd_response_error(res, 500, "No root to find scripts in.");
        verbd_finish(x);
        return;
    }
    if (in->check_script &&
        (!*f->script.rel || !route_file_beneath(m->root_fd, f->script.rel, false))) {
        verbd_response_error(res, 404, NULL);
        verbd_finish(x);
        return;
    }
    verbd_cleanup(x, cleanup, f);
    verbd_end_on_client_end(x);
    const struct http_request *h = &x->req.http;
    /* After a local redirect the body was the first script's: none now. */
    bool has_body = verbd_request_has_body(&x->req) && !x->reading && !x->body_done;
    if (!has_body) {
        send_request(f, UINT64_MAX);
        return;
    }
    f->body_reading = true;
    if (h->framing == BODY_CHUNKED) {
        /* CGI needs CONTENT_LENGTH before the body: a chunked one is held
         * (bounded) until its end. */
        f->hold_body = true;
        verbd_read(x, body_data, body_done, f);
        return;
    }
    /* The head goes first into the output; the body follows as it is
     * read (possibly from within verbd_read). */
    send_request(f, h->content_length);
    if (!f->finished)
        verbd_read(x, body_data, body_done, f);
}
