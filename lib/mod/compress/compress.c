/* On-the-fly compression as a body filter (core/exchange.h).
 *
 * At the head: a 2xx with a body, of a compressible type, not already
 * encoded, not shorter than gzip_min_length (when its length is known) is
 * eligible and gets Vary: Accept-Encoding, compressed or not; so do the
 * location's 304s.  It is compressed when the client accepts br or gzip
 * (accept_encoding_choose), the request is HTTP/1.1 and the answer is not
 * a range: Content-Encoding, a weak ETag, no Content-Length and no
 * Accept-Ranges.  A HEAD gets the same head and no work.
 *
 * The body: the pieces the module hands over are queued (memory copied,
 * lent bytes and files kept as they are) and compressed in turn, files
 * read a window at a time, until about one window of output is out; the
 * rest waits until the session's output has drained.  So one response
 * holds at most its queue (what the module sent in one go, under its own
 * backpressure) plus the coder's state, whatever the file's size. */
#include "mod/compress/compress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/exchange.h"
#include "core/log.h"
#include "core/settings.h"
#include "http/coding.h"
#include "http/method.h"
#include "mod/compress/coder.h"

/* Input is read and output put out in windows of this size; a call stops
 * compressing once it has put out OUT_TARGET bytes. */
#define WINDOW (32 * 1024)
#define OUT_TARGET (32 * 1024)

struct compress_conf {
    bool gzip, brotli;
    int gzip_level, brotli_level;
    uint64_t min_length;
    bool any_type;
    char **types; /* besides text/html, which is always compressible */
    size_t ntypes;
};

/* One response being compressed. */
struct compress_state {
    struct verbd_exchange *x;
    struct coder *coder; /* NULL for HEAD */
    struct body_piece *queue;
    size_t qhead, qlen, qcap;
    struct buf mem;  /* the bytes of queued memory pieces */
    bool need_flush; /* the module's last send is not all out yet */
};

/* Per worker: a read window for files and an output window, used only
 * within one call of the filter (the output is copied by the session
 * before the call returns to the module). */
static uint8_t read_window[WINDOW];
static uint8_t out_window[OUT_TARGET + WINDOW];

/* ---- configuration ----------------------------------------------------------------------------
 */

static void *conf_create(void)
{
    struct compress_conf *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->gzip_level = 1;   /* nginx's gzip_comp_level */
    c->brotli_level = 6; /* and its brotli module's */
    c->min_length = 20;
    return c;
}

static void conf_destroy(void *inst)
{
    struct compress_conf *c = inst;
    for (size_t i = 0; i < c->ntypes; i++)
        free(c->types[i]);
    free(c->types);
    free(c);
}

static int set_gzip(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return directive_on_off("gzip", argv[0], &((struct compress_conf *)inst)->gzip, err, errlen);
}

static int set_brotli(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return directive_on_off("brotli", argv[0], &((struct compress_conf *)inst)->brotli, err,
                            errlen);
}

static int set_level(const char *name, const char *v, int min, int max, int *out, char *err,
                     size_t errlen)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || n < min || n > max) {
        snprintf(err, errlen, "%s: expected a level from %d to %d, not \"%s\"", name, min, max, v);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int set_gzip_level(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return set_level("gzip_comp_level", argv[0], 1, 9, &((struct compress_conf *)inst)->gzip_level,
                     err, errlen);
}

static int set_brotli_level(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    return set_level("brotli_comp_level", argv[0], 0, 11,
                     &((struct compress_conf *)inst)->brotli_level, err, errlen);
}

static int set_min_length(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    if (parse_size(argv[0], &((struct compress_conf *)inst)->min_length) == 0)
        return 0;
    snprintf(err, errlen, "gzip_min_length: \"%s\" is not a size (20, 1k, 1m)", argv[0]);
    return -1;
}

/* A media type: "type/subtype", a whole type ("text/" and a star) or "*". */
static bool valid_type(const char *t)
{
    if (strcmp(t, "*") == 0)
        return true;
    const char *slash = strchr(t, '/');
    if (!slash || slash == t || !slash[1] || strchr(slash + 1, '/'))
        return false;
    for (const char *p = t; *p; p++)
        if (*p <= ' ' || *p == ';' || *p == ',' || *p == 0x7f)
            return false;
    return true;
}

static int set_types(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    struct compress_conf *c = inst;
    for (int i = 0; i < argc; i++) {
        if (!valid_type(argv[i])) {
            snprintf(err, errlen, "gzip_types: \"%s\" is not a media type (text/css, text/*, *)",
                     argv[i]);
            return -1;
        }
        if (strcmp(argv[i], "*") == 0) {
            c->any_type = true;
            continue;
        }
        char **t = realloc(c->types, (c->ntypes + 1) * sizeof *t);
        if (!t || !(t[c->ntypes] = strdup(argv[i])))
            abort();
        c->types = t;
        c->ntypes++;
    }
    return 0;
}

static const struct verbd_directive compress_directives[] = {
    {.name = "gzip", .min_args = 1, .max_args = 1, .set = set_gzip, .inherit = true},
    {.name = "brotli", .min_args = 1, .max_args = 1, .set = set_brotli, .inherit = true},
    {.name = "gzip_types", .min_args = 1, .max_args = -1, .set = set_types, .inherit = true},
    {.name = "gzip_min_length",
     .min_args = 1,
     .max_args = 1,
     .set = set_min_length,
     .inherit = true},
    {.name = "gzip_comp_level",
     .min_args = 1,
     .max_args = 1,
     .set = set_gzip_level,
     .inherit = true},
    {.name = "brotli_comp_level",
     .min_args = 1,
     .max_args = 1,
     .set = set_brotli_level,
     .inherit = true},
    {.name = NULL},
};

/* ---- the head ------------------------------------------------------------------------------- */

/* The fields of the module's head that decide. */
struct head_fields {
    struct span type, encoding, etag, vary, cache_control;
};

static bool field_is(const char *line, size_t n, const char *name, size_t name_len)
{
    return n > name_len && line[name_len] == ':' && strncasecmp(line, name, name_len) == 0;
}

static struct span field_value(const char *line, size_t n, size_t name_len)
{
    const char *v = line + name_len + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    return (struct span){v, (size_t)(end - v)};
}

#define FIELD(line, n, lit) field_is(line, n, lit, sizeof lit - 1)
#define VALUE(line, n, lit) field_value(line, n, sizeof lit - 1)

static void scan_head(const struct buf *head, struct head_fields *f)
{
    memset(f, 0, sizeof *f);
    const char *p = head->p, *end = head->p + head->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) + 1 : (size_t)(end - p);
        if (FIELD(p, n, "Content-Type"))
            f->type = VALUE(p, n, "Content-Type");
        else if (FIELD(p, n, "Content-Encoding"))
            f->encoding = VALUE(p, n, "Content-Encoding");
        else if (FIELD(p, n, "ETag"))
            f->etag = VALUE(p, n, "ETag");
        else if (FIELD(p, n, "Vary"))
            f->vary = VALUE(p, n, "Vary");
        else if (FIELD(p, n, "Cache-Control"))
            f->cache_control = VALUE(p, n, "Cache-Control");
        p += n;
    }
}

static bool span_has(struct span s, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= s.n; i++)
        if (strncasecmp(s.p + i, word, n) == 0)
            return true;
    return false;
}

static bool type_matches(const char *pattern, const char *t, size_t n)
{
    size_t pn = strlen(pattern);
    if (pn >= 2 && pattern[pn - 2] == '/' && pattern[pn - 1] == '*')
        return n > pn - 1 && strncasecmp(pattern, t, pn - 1) == 0;
    return n == pn && strncasecmp(pattern, t, n) == 0;
}

static bool compressible(const struct compress_conf *c, struct span type)
{
    if (!type.p)
        return false;
    size_t n = 0;
    while (n < type.n && type.p[n] != ';' && type.p[n] != ' ' && type.p[n] != '\t')
        n++;
    if (c->any_type || type_matches("text/html", type.p, n))
        return true;
    for (size_t i = 0; i < c->ntypes; i++)
        if (type_matches(c->types[i], type.p, n))
            return true;
    return false;
}

static void add_vary(struct verbd_response *res, const struct head_fields *f)
{
    if (!span_has(f->vary, "accept-encoding") && !(f->vary.n == 1 && f->vary.p[0] == '*'))
        verbd_response_header(res, "Vary", "Accept-Encoding");
}

static unsigned offered(const struct compress_conf *c)
{
    return (c->gzip ? 1u << CODING_GZIP : 0) | (c->brotli ? 1u << CODING_BR : 0);
}

static enum http_coding client_choice(const struct compress_conf *c, const struct verbd_request *r)
{
    struct accept_encoding ae;
    accept_encoding_init(&ae);
    for (size_t i = 0; i < r->http.nfields; i++) {
        const struct http_field *fl = &r->http.fields[i];
        if (fl->name.n == 15 && strncasecmp(fl->name.p, "Accept-Encoding", 15) == 0)
            accept_encoding_add(&ae, fl->value.p, fl->value.n);
    }
    return accept_encoding_choose(&ae, offered(c));
}

/* Rewrites the head for the encoded form: no Content-Length (a module
 * may have written one), no Accept-Ranges, a weak ETag, Content-Encoding
 * and Vary. */
static void encode_head(struct verbd_response *res, enum http_coding coding, bool weaken_only)
{
    struct buf *h = &res->head;
    size_t at = 0;
    while (at < h->len) {
        char *line = h->p + at;
        char *eol = memchr(line, '\n', h->len - at);
        size_t n = eol ? (size_t)(eol - line) + 1 : h->len - at;
        if (!weaken_only && (FIELD(line, n, "Content-Length") || FIELD(line, n, "Accept-Ranges"))) {
            memmove(line, line + n, h->len - at - n);
            h->len -= n;
            continue;
        }
        if (FIELD(line, n, "ETag")) {
            struct span v = VALUE(line, n, "ETag");
            if (v.n && v.p[0] == '"') {
                size_t off = (size_t)(v.p - h->p);
                buf_reserve(h, 2);
                memmove(h->p + off + 2, h->p + off, h->len - off);
                memcpy(h->p + off, "W/", 2);
                h->len += 2;
                n += 2;
            }
        }
        at += n;
    }
    if (!weaken_only)
        verbd_response_header(res, "Content-Encoding", http_coding_name(coding));
}

static void state_free(void *arg)
{
    struct compress_state *s = arg;
    for (size_t i = s->qhead; i < s->qlen; i++)
        body_piece_drop(&s->queue[i]);
    free(s->queue);
    buf_free(&s->mem);
    coder_free(s->coder);
}

static bool compress_head(struct verbd_exchange *x, void *arg, bool last)
{
    const struct compress_conf *c = arg;
    struct verbd_response *res = &x->res;
    const struct verbd_request *req = &x->req;
    struct head_fields f;
    int status = res->status;
    if (status == 304) {
        /* Its 200 may have been encoded: the same Vary, and the ETag the
         * client holds (or would hold) for the encoded form. */
        scan_head(&res->head, &f);
        add_vary(res, &f);
        if (f.etag.p && req->http.minor >= 1 && client_choice(c, req) != CODING_IDENTITY)
            encode_head(res, CODING_IDENTITY, true);
        return false;
    }
    if (status < 200 || status >= 300 || status == 204 || status == 205)
        return false;
    scan_head(&res->head, &f);
    if (f.encoding.p || !compressible(c, f.type) || span_has(f.cache_control, "no-transform"))
        return false;
    uint64_t length = res->length != RESPONSE_NO_LENGTH ? res->length
                      : last                            ? response_body_length(res)
                                                        : RESPONSE_NO_LENGTH;
    if (length != RESPONSE_NO_LENGTH && length < c->min_length)
        return false;
    add_vary(res, &f);
    /* A range is a range of the unencoded form; HTTP/1.0 would need the
     * connection closed to end an encoded body of unknown length. */
    if (status == 206 || req->http.minor < 1)
        return false;
    enum http_coding coding = client_choice(c, req);
    if (coding == CODING_IDENTITY)
        return false;
    struct compress_state *s = verbd_alloc(x, sizeof *s);
    memset(s, 0, sizeof *s);
    s->x = x;
    if (req->method_id != METHOD_HEAD) {
        int level = coding == CODING_GZIP ? c->gzip_level : c->brotli_level;
        s->coder = coder_new(coding, level, length == RESPONSE_NO_LENGTH ? 0 : length);
        if (!s->coder)
            return false; /* short of memory: sent as it is */
    }
    verbd_cleanup(x, state_free, s);
    encode_head(res, coding, false);
    res->length = RESPONSE_NO_LENGTH;
    x->filter_arg = s;
    return true;
}

/* ---- the body ------------------------------------------------------------------------------- */

/* Moves the module's pieces into the queue: memory bytes are copied (the
 * response's buffer is reused), lent bytes and files are kept. */
static void take_pieces(struct compress_state *s, struct verbd_response *res)
{
    if (s->qhead == s->qlen) {
        s->qhead = s->qlen = 0;
        buf_reset(&s->mem);
    }
    if (s->qlen + res->npieces > s->qcap) {
        size_t cap = s->qcap ? s->qcap : 4;
        while (cap < s->qlen + res->npieces)
            cap *= 2;
        struct body_piece *q = realloc(s->queue, cap * sizeof *q);
        if (!q)
            abort();
        s->queue = q;
        s->qcap = cap;
    }
    for (size_t i = 0; i < res->npieces; i++) {
        struct body_piece p = res->pieces[i];
        if (p.fd < 0 && !p.ptr) {
            size_t at = s->mem.len;
            buf_append(&s->mem, res->body.p + p.offset, (size_t)p.len);
            p.offset = at;
        }
        s->queue[s->qlen++] = p;
    }
    res->npieces = 0; /* taken over, not dropped */
    buf_reset(&res->body);
}

/* Compresses queued input until OUT_TARGET bytes are out or the queue is
 * empty; then, with it empty, flushes (the module's send is out) or ends
 * the stream.  Returns the bytes put into out_window. */
static size_t pump(struct compress_state *s, bool last, bool *busy)
{
    size_t produced = 0;
    while (produced < OUT_TARGET) {
        size_t room = sizeof out_window - produced;
        if (s->qhead < s->qlen) {
            struct body_piece *p = &s->queue[s->qhead];
            const uint8_t *in;
            size_t n = p->len < WINDOW ? (size_t)p->len : WINDOW;
            if (p->fd >= 0) {
                ssize_t got = pread(p->fd, read_window, n, (off_t)p->offset);
                if (got <= 0) {
                    log_msg(LOG_ERROR, "%s: the file changed while it was compressed",
                            s->x->req.path);
                    p->len = 0;
                }
                n = got > 0 ? (size_t)got : 0;
                in = read_window;
            } else {
                in = (const uint8_t *)(p->ptr ? p->ptr : s->mem.p) + p->offset;
            }
            size_t out_n = room, want = n;
            coder_run(s->coder, CODER_PROCESS, in, &n, out_window + produced, &out_n);
            produced += out_n;
            if (want && !n && !out_n)
                p->len = n; /* the coder failed (logged): the rest is dropped */
            p->offset += n;
            p->len -= n;
            if (p->len == 0) {
                body_piece_drop(p);
                s->qhead++;
                s->need_flush = true;
            }
            continue;
        }
        if (!last && !s->need_flush)
            break;
        size_t n = 0, out_n = room;
        bool done = coder_run(s->coder, last ? CODER_FINISH : CODER_FLUSH, NULL, &n,
                              out_window + produced, &out_n);
        produced += out_n;
        if (!done)
            continue;
        s->need_flush = false;
        *busy = false;
        return produced;
    }
    *busy = s->qhead < s->qlen || s->need_flush || last;
    return produced;
}

static bool compress_body(struct verbd_exchange *x, void *arg, bool last)
{
    struct compress_state *s = arg;
    struct verbd_response *res = &x->res;
    if (!s->coder) { /* HEAD: the head is all there is */
        response_clear_body(res);
        return false;
    }
    if (res->npieces)
        take_pieces(s, res);
    bool busy;
    size_t n = pump(s, last, &busy);
    if (n)
        verbd_response_body_shared(res, out_window, n, NULL, NULL);
    return busy;
}

static const struct vx_filter compress_ops = {
    .head = compress_head,
    .body = compress_body,
};

static void compress_attach(void *inst, struct verbd_exchange *x)
{
    const struct compress_conf *c = inst;
    if (!c->gzip && !c->brotli)
        return;
    x->filter = &compress_ops;
    x->filter_arg = inst;
}

const struct verbd_filter verbd_filter_compress = {
    .name = "compress",
    .directives = compress_directives,
    .create = conf_create,
    .destroy = conf_destroy,
    .attach = compress_attach,
};
