/* verbd probe over HTTP/2: one request on a connection of its own, as over
 * HTTP/1.1, through libnghttp2's client session, which does the framing,
 * HPACK, flow control and the response's validation.  The same request
 * fields go out (probe_request_fields), lower-cased, with the
 * pseudo-header fields first; Host becomes :authority.
 *
 * http URLs: h2c with prior knowledge (RFC 9113 §3.3): the client's
 * connection preface goes first.  A server that answers it with anything
 * but HTTP/2 frames (an HTTP/1 error response, a close, silence until the
 * deadline) is said not to speak h2c, and the exchange counts as a
 * connection that failed.  https URLs: ALPN h2 (probe_tls.c refuses a
 * handshake that chose anything else).
 *
 * The socket and deadline are probe_net.c's, so a server that trickles
 * frames cannot stretch an exchange past --timeout. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "http/response.h"
#include "probe.h"

#define MAX_NV (PROBE_MAX_HEADERS + 24)

struct h2x {
    const struct probe_config *cfg;
    struct probe *p;
    int32_t sid;
    bool h2;         /* a frame from the server parsed: it speaks HTTP/2 */
    bool head_done;  /* the final response head arrived */
    bool closed;     /* the stream ended */
    bool cancelled;  /* the probe reset it (the body is past its bound) */
    bool goaway;     /* the server sent GOAWAY */
    bool too_big;    /* the head is over PROBE_MAX_HEAD or PROBE_MAX_FIELDS */
    uint32_t code;   /* how the stream closed */
    int64_t rst_got; /* RST_STREAM from the server: its code, else -1 */
    int status;
    size_t nfields, used;
    const char *content;
    size_t content_left;
};

/* The response head, as the HTTP/1.1 path's parser leaves it. */
static struct http_field fields[PROBE_MAX_FIELDS];
static char store[PROBE_MAX_HEAD];

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
    (void)s, (void)flags;
    struct h2x *h = arg;
    /* After the final head: trailer fields, not kept. */
    if (f->hd.stream_id != h->sid || f->hd.type != NGHTTP2_HEADERS || h->head_done)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        /* A head begins (the library checked its three digits); an
         * interim one's fields are dropped. */
        h->status =
            valuelen == 3 ? (value[0] - '0') * 100 + (value[1] - '0') * 10 + value[2] - '0' : 0;
        h->nfields = h->used = 0;
        return 0;
    }
    if (h->nfields == PROBE_MAX_FIELDS || namelen + valuelen > sizeof store - h->used) {
        h->too_big = true;
        return 0;
    }
    char *at = store + h->used;
    memcpy(at, name, namelen);
    memcpy(at + namelen, value, valuelen);
    fields[h->nfields++] = (struct http_field){{at, namelen}, {at + namelen, valuelen}};
    h->used += namelen + valuelen;
    return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
    (void)s;
    struct h2x *h = arg;
    h->h2 = true;
    if (f->hd.type == NGHTTP2_GOAWAY)
        h->goaway = true;
    if (f->hd.stream_id != h->sid)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && !h->head_done && h->status >= 200)
        h->head_done = true;
    if (f->hd.type == NGHTTP2_RST_STREAM)
        h->rst_got = f->rst_stream.error_code;
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data, size_t n,
                   void *arg)
{
    (void)flags;
    struct h2x *h = arg;
    if (sid != h->sid || h->cancelled)
        return 0;
    probe_take_body(h->p, (const char *)data, n);
    if (h->p->body_bytes >= PROBE_MAX_BODY) {
        h->p->truncated = true;
        snprintf(h->p->error, sizeof h->p->error, "body longer than %d bytes: stopped reading",
                 PROBE_MAX_BODY);
        h->cancelled = true;
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
    }
    return 0;
}

static int on_close(nghttp2_session *s, int32_t sid, uint32_t code, void *arg)
{
    (void)s;
    struct h2x *h = arg;
    if (sid == h->sid) {
        h->closed = true;
        h->code = code;
    }
    return 0;
}

static ssize_t read_content(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    (void)s, (void)sid, (void)src;
    struct h2x *h = arg;
    size_t n = len < h->content_left ? len : h->content_left;
    memcpy(buf, h->content, n);
    h->content += n;
    h->content_left -= n;
    if (!h->content_left)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* The request's fields as name/value pairs, names lower-cased. */
struct nv_list {
    nghttp2_nv v[MAX_NV];
    size_t n;
    char buf[16384];
    size_t used;
    char authority[PROBE_VALUE + 300];
};

static char *keep(struct nv_list *l, const char *s, bool lower)
{
    size_t n = strlen(s);
    if (n + 1 > sizeof l->buf - l->used)
        return NULL;
    char *at = l->buf + l->used;
    for (size_t i = 0; i <= n; i++)
        at[i] = lower && s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
    l->used += n + 1;
    return at;
}

static void add_nv(struct nv_list *l, const char *name, const char *value)
{
    char *n = keep(l, name, true), *v = keep(l, value, false);
    if (!n || !v || l->n == MAX_NV)
        return;
    l->v[l->n++] =
        (nghttp2_nv){(uint8_t *)n, (uint8_t *)v, strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE};
}

static void nv_field(void *arg, const char *name, const char *value)
{
    struct nv_list *l = arg;
    if (strcasecmp(name, "host") == 0) {
        snprintf(l->authority, sizeof l->authority, "%s", value);
        return;
    }
    /* Connection-specific fields have no place in HTTP/2 (RFC 9113
     * §8.2.2); --header refuses the others already. */
    if (strcasecmp(name, "keep-alive") == 0 || strcasecmp(name, "proxy-connection") == 0)
        return;
    add_nv(l, name, value);
}

/* Why the exchange failed before the server showed it speaks HTTP/2. */
static void not_h2(const struct probe_config *cfg, struct probe *p, const struct probe_reader *rd,
                   const char *first, size_t nfirst, const char *lib_error)
{
    const char *who = cfg->url.authority;
    p->connect_failed = true;
    if (nfirst >= 5 && memcmp(first, "HTTP/", 5) == 0) {
        char line[64];
        probe_copy_clean(line, sizeof line, first,
                         strcspn(first, "\r\n") < nfirst ? strcspn(first, "\r\n") : nfirst);
        snprintf(p->error, sizeof p->error,
                 "%.80s answered the HTTP/2 connection preface in HTTP/1 (\"%s\"): it does not "
                 "speak h2c (HTTP/2 with prior knowledge) on this port",
                 who, line);
    } else if (lib_error) {
        snprintf(p->error, sizeof p->error,
                 "%.80s answered the HTTP/2 connection preface with something else than HTTP/2 "
                 "(%.60s): no h2c on this port",
                 who, lib_error);
    } else if (rd->eof) {
        snprintf(p->error, sizeof p->error,
                 "%.80s closed the connection on the HTTP/2 connection preface: no h2c on this "
                 "port",
                 who);
    } else if (rd->err && rd->err != ETIMEDOUT) {
        snprintf(p->error, sizeof p->error,
                 "%.80s broke the connection on the HTTP/2 connection preface (%.40s): no h2c on "
                 "this port",
                 who, strerror(rd->err));
    } else {
        snprintf(p->error, sizeof p->error,
                 "no answer to the HTTP/2 connection preface within %gs (%.40s): %.80s does not "
                 "seem to speak h2c on this port",
                 cfg->timeout, strerror(rd->err ? rd->err : ETIMEDOUT), who);
    }
}

/* Why a server that speaks HTTP/2 gave no complete answer. */
static void no_answer(const struct probe_config *cfg, struct probe *p, const struct h2x *h,
                      const struct probe_reader *rd, const char *lib_error)
{
    if (h->rst_got >= 0)
        snprintf(p->error, sizeof p->error, "stream reset by the server (%s)",
                 nghttp2_http2_strerror((uint32_t)h->rst_got));
    else if (h->closed && h->code)
        snprintf(p->error, sizeof p->error, "stream closed: %s (a malformed response?)",
                 nghttp2_http2_strerror(h->code));
    else if (lib_error)
        snprintf(p->error, sizeof p->error, "HTTP/2 error: %s", lib_error);
    else if (h->goaway)
        snprintf(p->error, sizeof p->error, "the server ended the connection (GOAWAY)");
    else if (rd->eof)
        snprintf(p->error, sizeof p->error, "connection closed without a response");
    else if (rd->err && rd->err != ETIMEDOUT)
        snprintf(p->error, sizeof p->error, "connection failed without a response: %s",
                 strerror(rd->err));
    else
        snprintf(p->error, sizeof p->error, "no complete response within %gs (%s)", cfg->timeout,
                 strerror(rd->err ? rd->err : ETIMEDOUT));
}

/* Writes what the session has to send; -1 on failure: the library's
 * (*msg) or the connection's (rd->err). */
static int flush(nghttp2_session *s, struct probe_reader *rd, const char **msg)
{
    for (;;) {
        const uint8_t *d;
        ssize_t k = nghttp2_session_mem_send(s, &d);
        if (k < 0) {
            *msg = nghttp2_strerror((int)k);
            return -1;
        }
        if (k == 0)
            return 0;
        if (probe_send(rd, (const char *)d, (size_t)k) < 0) {
            rd->err = errno;
            return -1;
        }
    }
}

static struct nv_list nvs;
static char in[16384];

void probe_h2_exchange(struct probe_config *cfg, struct probe *p)
{
    struct probe_reader rd = {.deadline = probe_now() + cfg->timeout};
    struct h2x h = {.cfg = cfg, .p = p, .rst_got = -1};
    nghttp2_session_callbacks *cb;
    nghttp2_session *s = NULL;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        snprintf(p->error, sizeof p->error, "out of memory");
        return;
    }
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    int rc = nghttp2_session_client_new(&s, cb, &h);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) {
        snprintf(p->error, sizeof p->error, "HTTP/2: %s", nghttp2_strerror(rc));
        return;
    }

    memset(&nvs, 0, sizeof nvs);
    probe_request_fields(cfg, p, nv_field, &nvs);
    size_t nfields = nvs.n;
    add_nv(&nvs, ":method", p->method);
    add_nv(&nvs, ":scheme", cfg->url.scheme);
    add_nv(&nvs, ":authority", nvs.authority);
    add_nv(&nvs, ":path", p->target);
    nghttp2_nv nv[MAX_NV];
    size_t n = 0;
    for (size_t i = nfields; i < nvs.n; i++) /* pseudo-header fields first */
        nv[n++] = nvs.v[i];
    for (size_t i = 0; i < nfields; i++)
        nv[n++] = nvs.v[i];
    if (p->content) {
        h.content = probe_scratch_content();
        h.content_left = strlen(h.content);
    }
    nghttp2_data_provider body = {.read_callback = read_content};
    nghttp2_settings_entry no_push = {NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
    if (nvs.n != nfields + 4 || nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, &no_push, 1) != 0 ||
        (h.sid = nghttp2_submit_request(s, NULL, nv, n, p->content ? &body : NULL, NULL)) < 0) {
        snprintf(p->error, sizeof p->error, "request too large");
        nghttp2_session_del(s);
        return;
    }

    if (probe_open(cfg, p, &rd) < 0) {
        nghttp2_session_del(s);
        return;
    }
    const char *lib_error = NULL;
    char first[64];
    size_t nfirst = 0;
    while (!h.closed) {
        if (flush(s, &rd, &lib_error) < 0)
            break;
        if (!nghttp2_session_want_read(s))
            break;
        size_t got = probe_read(&rd, in, sizeof in);
        if (got == 0)
            break;
        if (!h.h2 && nfirst < sizeof first) {
            size_t k = got < sizeof first - nfirst ? got : sizeof first - nfirst;
            memcpy(first + nfirst, in, k);
            nfirst += k;
        }
        ssize_t used = nghttp2_session_mem_recv(s, (const uint8_t *)in, got);
        if (used < 0) {
            lib_error = nghttp2_strerror((int)used);
            break;
        }
    }

    if (!h.h2) {
        not_h2(cfg, p, &rd, first, nfirst, lib_error);
    } else if (!h.head_done) {
        no_answer(cfg, p, &h, &rd, lib_error);
    } else {
        struct http_response r = {.status = h.status, .fields = fields, .nfields = h.nfields};
        probe_take_head(p, &r);
        if (h.too_big)
            snprintf(p->error, sizeof p->error,
                     "response head over %d bytes or %d fields: "
                     "the rest was not kept",
                     PROBE_MAX_HEAD, PROBE_MAX_FIELDS);
        else if (!h.closed && !p->truncated) {
            p->truncated = true;
            snprintf(p->error, sizeof p->error, "body not complete within the timeout (%s)",
                     lib_error ? lib_error : strerror(rd.err ? rd.err : ETIMEDOUT));
        } else if (h.closed && h.code && !h.cancelled) {
            p->body_incomplete = true;
            snprintf(p->error, sizeof p->error,
                     "stream reset after %llu body bytes, before the end of the body (%s)",
                     (unsigned long long)p->body_bytes, nghttp2_http2_strerror(h.code));
        }
        probe_body_end(cfg, p);
    }
    /* A polite end: GOAWAY, if the connection still takes it. */
    if (h.h2 && !rd.eof && nghttp2_session_terminate_session(s, NGHTTP2_NO_ERROR) == 0)
        flush(s, &rd, &lib_error);
    nghttp2_session_del(s);
    probe_close(&rd);
}
