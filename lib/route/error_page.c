/* error_page CODE... [=CODE] URI: an error answered in one go (a refusal
 * of the router, a module's error) is answered with the page at URI,
 * fetched by an internal redirect as a GET (HEAD stays HEAD), keeping the
 * original status and the fields that belong to it (Allow, WWW-Authenticate,
 * the refusal's Cache-Control).  A page that cannot be served leaves the
 * original answer as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "route/redirect.h"
#include "route/route.h"

int error_page_parse(struct error_pages *l, int argc, const char *const *argv, char *err,
                     size_t errlen)
{
    struct error_page p = {0};
    const char *uri = argv[argc - 1];
    int ncodes = argc - 1;
    if (ncodes >= 2 && argv[ncodes - 1][0] == '=') {
        const char *a = argv[ncodes - 1] + 1;
        char *end;
        long c = strtol(a, &end, 10);
        if (*end || end == a || c < 200 || c > 599) {
            snprintf(err, errlen, "error_page: \"%s\" is not =CODE (a status, 200-599)",
                     argv[ncodes - 1]);
            return -1;
        }
        p.answer = (int)c;
        ncodes--;
    }
    if (uri[0] != '/') {
        snprintf(err, errlen, "error_page: \"%s\" is not a URI on this server (/...)", uri);
        return -1;
    }
    if (vars_check(uri, -1, err, errlen) < 0)
        return -1;
    if (ncodes < 1) {
        snprintf(err, errlen, "error_page takes CODE... [=CODE] URI");
        return -1;
    }
    p.codes = calloc((size_t)ncodes, sizeof *p.codes);
    if (!p.codes)
        abort();
    for (int i = 0; i < ncodes; i++) {
        char *end;
        long c = strtol(argv[i], &end, 10);
        if (*end || end == argv[i] || c < 300 || c > 599) {
            snprintf(err, errlen, "error_page: \"%s\" is not an error status (300-599)", argv[i]);
            free(p.codes);
            return -1;
        }
        /* 405 and 501 say what the server implements: a page may explain
         * them, never turn them into something else. */
        if (p.answer && (c == 405 || c == 501)) {
            snprintf(err, errlen,
                     "error_page: %ld keeps its status (a page for it may not answer =%d)", c,
                     p.answer);
            free(p.codes);
            return -1;
        }
        p.codes[p.ncodes++] = (int)c;
    }
    p.uri = strdup(uri);
    struct error_page *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v || !p.uri)
        abort();
    l->v = v;
    l->v[l->n++] = p;
    return 0;
}

void error_pages_free(struct error_pages *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].codes);
        free(l->v[i].uri);
    }
    free(l->v);
    *l = (struct error_pages){0};
}

static const struct error_page *find_in(const struct error_pages *l, int status)
{
    /* The last one given for a status wins, as a later line overrides. */
    for (size_t i = l->n; i-- > 0;)
        for (size_t j = 0; j < l->v[i].ncodes; j++)
            if (l->v[i].codes[j] == status)
                return &l->v[i];
    return NULL;
}

const struct error_page *error_page_find(const struct route_table *t, const struct route_mapping *m,
                                         int status)
{
    return m ? find_in(&m->errors, status) : find_in(&t->errors, status);
}

/* Whether a "Name: value\r\n" line is one of `names`. */
static bool line_named(const char *line, size_t len, const char *const *names)
{
    for (; *names; names++) {
        size_t n = strlen(*names);
        if (len > n && line[n] == ':' && strncasecmp(line, *names, n) == 0)
            return true;
    }
    return false;
}

/* Copies the lines of src named (keep) or not named (!keep) in names. */
static void copy_lines(struct buf *dst, const char *src, size_t len, const char *const *names,
                       bool keep)
{
    size_t at = 0;
    while (at < len) {
        const char *line = src + at;
        const char *eol = memchr(line, '\n', len - at);
        size_t n = eol ? (size_t)(eol - line) + 1 : len - at;
        if (line_named(line, n, names) == keep)
            buf_append(dst, line, n);
        at += n;
    }
}

/* The original answer's fields that go with its status. */
static const char *const status_fields[] = {"Allow", "WWW-Authenticate", "Cache-Control", NULL};
/* A page's fields that describe the page file, not the answer. */
static const char *const page_fields[] = {"ETag",    "Last-Modified", "Accept-Ranges",
                                          "Expires", "Cache-Control", NULL};

/* Puts the original answer back (the page failed). */
static void restore(struct verbd_exchange *x, struct route_state *st)
{
    struct verbd_response *res = &x->res;
    response_reset(res);
    res->status = st->orig_status;
    buf_append(&res->head, st->orig_head.p, st->orig_head.len);
    if (st->orig_body.len)
        verbd_response_body(res, st->orig_body.p, st->orig_body.len);
    res->close = st->orig_close;
    x->req.method_id = st->orig_method;
}

static void forget(void *arg)
{
    struct route_state *st = arg;
    buf_free(&st->orig_head);
    buf_free(&st->orig_body);
}

/* The head hook while the page is served. */
static bool page_head(struct verbd_exchange *x, bool last)
{
    struct route_state *st = x->req.route;
    struct verbd_response *res = &x->res;
    x->intercept = NULL;
    if (res->status != 200) {
        if (last) {
            log_msg(LOG_WARN, "error_page for %d: the page answered %d; the built-in one is sent",
                    st->orig_status, res->status);
            restore(x, st);
        } else {
            res->status = st->page_status; /* streaming: too late to replace the body */
        }
        x->req.method_id = st->orig_method;
        return false;
    }
    struct buf head = {0};
    copy_lines(&head, res->head.p, res->head.len, page_fields, false);
    copy_lines(&head, st->orig_head.p, st->orig_head.len, status_fields, true);
    buf_reset(&res->head);
    buf_append(&res->head, head.p, head.len);
    buf_free(&head);
    res->status = st->page_status;
    res->close = res->close || st->orig_close;
    x->req.method_id = st->orig_method;
    return false;
}

/* Request fields that would make the page's module answer something else
 * than the page (304, 206, 412). */
static bool conditional(struct span name)
{
    static const char *const names[] = {"If-None-Match",       "If-Modified-Since", "If-Match",
                                        "If-Unmodified-Since", "If-Range",          "Range"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (name.n == strlen(names[i]) && strncasecmp(name.p, names[i], name.n) == 0)
            return true;
    return false;
}

bool error_page_serve(const struct route_table *t, struct verbd_exchange *x,
                      const struct error_page *page)
{
    struct verbd_response *res = &x->res;
    struct route_state *st = route_state(x);
    if (st->in_page || res->npieces > 1 || (res->npieces && res->pieces[0].fd >= 0) ||
        (res->npieces && res->pieces[0].ptr))
        return false;
    st->in_page = true;
    st->orig_status = res->status;
    st->page_status = page->answer ? page->answer : res->status;
    st->orig_close = res->close;
    st->orig_method = x->req.method_id;
    buf_append(&st->orig_head, res->head.p, res->head.len);
    buf_append(&st->orig_body, res->body.p, res->body.len);
    verbd_cleanup(x, forget, st);
    /* The page as a GET (HEAD stays HEAD) without the client's conditions. */
    struct http_request *h = &x->req.http;
    struct http_field *fields = verbd_alloc(x, (h->nfields ? h->nfields : 1) * sizeof *fields);
    size_t n = 0;
    for (size_t i = 0; i < h->nfields; i++)
        if (!conditional(h->fields[i].name))
            fields[n++] = h->fields[i];
    h->fields = fields;
    h->nfields = n;
    if (x->req.method_id != METHOD_HEAD)
        x->req.method_id = METHOD_GET;
    uint64_t max_body = x->req.max_body;
    enum verdict v = route_redirect(t, x, page->uri, strlen(page->uri));
    x->req.max_body = max_body;
    if (v != VERDICT_SERVE || x->req.route->answer) {
        log_msg(LOG_WARN, "error_page %s for %d: not served there (%d); the built-in page is sent",
                page->uri, st->orig_status, x->req.refusal);
        restore(x, st);
        return false;
    }
    response_reset(res);
    x->intercept = page_head;
    const struct route_mapping *m = x->req.mapping;
    m->module->start(m->inst, x);
    return true;
}

bool error_page_intercept(struct verbd_exchange *x, bool last)
{
    x->intercept = NULL;
    const struct route_mapping *m = x->req.mapping;
    const struct error_page *page;
    if (!last || !m || !(page = error_page_find(m->table, m, x->res.status)))
        return false;
    return error_page_serve(m->table, x, page);
}
