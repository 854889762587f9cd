/* The CGI/1.1 request (RFC 3875 §4.1) as FastCGI parameters, with PHP-FPM's
 * conventions (SCRIPT_FILENAME, REQUEST_URI, DOCUMENT_URI, REDIRECT_STATUS). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/addr.h"
#include "core/exchange.h"
#include "core/log.h"
#include "mod/fastcgi/internal.h"
#include "mod/fastcgi/record.h"
#include "route/regex.h"
#include "route/route.h"
#include "route/vars.h"

static char *dup_n(struct verbd_exchange *x, const char *p, size_t n)
{
    char *s = verbd_alloc(x, n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

int fcgi_find_script(const struct fcgi_inst *in, struct verbd_exchange *x, struct fcgi_script *s)
{
    const char *path = x->req.path;
    s->name = path;
    s->path_info = "";
    if (in->split.code) {
        struct captures cap;
        int rc = regex_match(&in->split, path, &cap);
        if (rc == 1 && cap.at[1][0] >= 0) {
            s->name = dup_n(x, path + cap.at[1][0], (size_t)(cap.at[1][1] - cap.at[1][0]));
            s->path_info = cap.at[2][0] < 0 ? ""
                                            : dup_n(x, path + cap.at[2][0],
                                                    (size_t)(cap.at[2][1] - cap.at[2][0]));
        }
        if (rc < 0) {
            char msg[128];
            regex_error_text(rc, msg, sizeof msg);
            log_msg(LOG_WARN, "fastcgi_split_path_info: matching %s failed: %s", path, msg);
            return -1;
        }
    }
    size_t nlen = strlen(s->name);
    if (in->index && nlen && s->name[nlen - 1] == '/') {
        size_t ilen = strlen(in->index);
        char *with = verbd_alloc(x, nlen + ilen + 1);
        memcpy(with, s->name, nlen);
        memcpy(with + nlen, in->index, ilen + 1);
        s->name = with;
        nlen += ilen;
    }
    /* Below the location's root as the location maps paths to files: the
     * part after its prefix (for "/" and patterns, the whole path). */
    const struct route_mapping *m = x->req.mapping;
    const char *rel = s->name;
    size_t skip = m->exact ? 0 : m->prefix_len;
    if (skip > 1 && m->prefix[skip - 1] == '/')
        skip--;
    if (skip > 1 && nlen >= skip && memcmp(rel, m->prefix, skip) == 0)
        rel += skip;
    s->rel = rel[0] == '/' ? rel + 1 : rel;
    const char *root = m->root ? m->root : "";
    size_t rlen = strlen(root);
    bool slash = rlen && root[rlen - 1] == '/';
    char *file = verbd_alloc(x, rlen + strlen(s->rel) + 2);
    snprintf(file, rlen + strlen(s->rel) + 2, "%s%s%s", root, slash ? "" : "/", s->rel);
    s->filename = file;
    return 0;
}

static void param(struct buf *out, const char *name, const char *value)
{
    fcgi_param(out, name, strlen(name), value, strlen(value));
}

/* fastcgi_param's variables, in the order of the values built below. */
const char *const fcgi_var_names[] = {
    "document_root", "fastcgi_script_name", "fastcgi_path_info", "request_method",
    "query_string",  "content_type",        "content_length",    "server_name",
    "server_port",   "server_addr",         "remote_port",       "server_protocol",
    "https",         "document_uri",        "request_filename",
};
const size_t fcgi_var_count = sizeof fcgi_var_names / sizeof fcgi_var_names[0];

/* Whether a request field name passes as HTTP_*: not Proxy (httpoxy: a
 * client must not set an application's HTTP_PROXY), and not a name with
 * '_', which would pass for another field's variable (X_Forwarded_For). */
static bool passes(struct span name)
{
    if (http_span_is(name, "Proxy") || http_span_is(name, "Content-Type") ||
        http_span_is(name, "Content-Length"))
        return false;
    return memchr(name.p, '_', name.n) == NULL;
}

static bool same_name(struct span a, struct span b)
{
    return a.n == b.n && strncasecmp(a.p, b.p, a.n) == 0;
}

/* Every request field as HTTP_NAME, fields of one name joined as one
 * (RFC 3875 §4.1.18; Cookie with "; "). */
static void http_vars(struct buf *out, const struct http_request *h)
{
    struct buf name = {0}, value = {0};
    for (size_t i = 0; i < h->nfields; i++) {
        const struct http_field *f = &h->fields[i];
        if (!passes(f->name))
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = same_name(f->name, h->fields[j].name);
        if (seen)
            continue;
        buf_reset(&name);
        buf_reset(&value);
        buf_puts(&name, "HTTP_");
        for (size_t k = 0; k < f->name.n; k++) {
            char c = f->name.p[k];
            c = c == '-' ? '_' : c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
            buf_append(&name, &c, 1);
        }
        const char *sep = http_span_is(f->name, "Cookie") ? "; " : ", ";
        for (size_t j = i; j < h->nfields; j++) {
            if (!same_name(f->name, h->fields[j].name))
                continue;
            if (value.len)
                buf_puts(&value, sep);
            buf_append(&value, h->fields[j].value.p, h->fields[j].value.n);
        }
        fcgi_param(out, name.p, name.len, value.len ? value.p : "", value.len);
    }
    buf_free(&name);
    buf_free(&value);
}

/* SERVER_NAME: the Host without its port, else the listening address. */
static void server_name(const struct verbd_request *req, char *out, size_t len)
{
    struct span host = req->http.host;
    if (host.p && host.n) {
        size_t end = host.n;
        if (host.p[0] == '[') {
            const char *close = memchr(host.p, ']', host.n);
            end = close ? (size_t)(close - host.p) + 1 : host.n;
        } else {
            const char *colon = memchr(host.p, ':', host.n);
            if (colon)
                end = (size_t)(colon - host.p);
        }
        snprintf(out, len, "%.*s", (int)end, host.p);
        return;
    }
    addr_text(req->local, out, len, "");
}

void fcgi_build_params(const struct fcgi_inst *in, struct verbd_exchange *x,
                       const struct fcgi_script *s, uint64_t content_length, struct buf *out)
{
    const struct verbd_request *req = &x->req;
    const struct http_request *h = &req->http;
    const struct route_mapping *m = req->mapping;
    char method[METHOD_NAME_MAX + 1], name[256], port[8], addr[ADDR_TEXT_MAX], peer[ADDR_TEXT_MAX],
        peer_port[8], length[24];
    /* The decided method: a local redirect makes it GET. */
    if (req->method_id >= 0 && req->method_id < METHOD_REGISTERED_COUNT)
        snprintf(method, sizeof method, "%s", method_name(req->method_id));
    else
        snprintf(method, sizeof method, "%.*s", (int)h->method.n, h->method.p);
    server_name(req, name, sizeof name);
    snprintf(port, sizeof port, "%u", addr_port(req->local));
    addr_text(req->local, addr, sizeof addr, "");
    addr_text(req->peer, peer, sizeof peer, "");
    snprintf(peer_port, sizeof peer_port, "%u", addr_port(req->peer));
    length[0] = '\0';
    if (content_length != UINT64_MAX)
        snprintf(length, sizeof length, "%llu", (unsigned long long)content_length);
    const char *query = h->query.p ? dup_n(x, h->query.p, h->query.n) : "";
    struct span ct = http_field_get(h, "Content-Type");
    const char *type = ct.p ? dup_n(x, ct.p, ct.n) : "";
    /* REQUEST_URI: the target as the client sent it, whatever try_files
     * or a rewrite made of it since (the path of an absolute form). */
    struct buf uri = {0};
    struct span target = h->target;
    const char *scheme = target.n && target.p[0] != '/' ? memchr(target.p, ':', target.n) : NULL;
    if (scheme && (size_t)(target.p + target.n - scheme) > 3 && scheme[1] == '/' &&
        scheme[2] == '/') {
        const char *slash = memchr(scheme + 3, '/', (size_t)(target.p + target.n - scheme - 3));
        const char *q = memchr(scheme + 3, '?', (size_t)(target.p + target.n - scheme - 3));
        const char *from = slash && (!q || slash < q) ? slash : q;
        if (!from || from == q)
            buf_append(&uri, "/", 1);
        if (from)
            buf_append(&uri, from, (size_t)(target.p + target.n - from));
    } else {
        buf_append(&uri, target.p, target.n);
    }
    buf_append(&uri, "", 1);
    char protocol[16];
    snprintf(protocol, sizeof protocol, "%s",
             req->protocol ? req->protocol
             : h->minor    ? "HTTP/1.1"
                           : "HTTP/1.0");
    const char *root = m->root ? m->root : "";

    /* In fcgi_var_names' order. */
    const char *values[] = {
        root,
        s->name,
        s->path_info,
        method,
        query,
        type,
        length,
        name,
        port,
        addr,
        peer_port,
        protocol,
        req->tls ? "on" : "",
        req->path,
        s->filename,
    };
    _Static_assert(sizeof values / sizeof values[0] ==
                       sizeof fcgi_var_names / sizeof fcgi_var_names[0],
                   "a value for every fastcgi_param variable");

    param(out, "GATEWAY_INTERFACE", "CGI/1.1");
    param(out, "SERVER_SOFTWARE", "verbd/" VERBD_VERSION);
    param(out, "SERVER_PROTOCOL", protocol);
    param(out, "SERVER_NAME", name);
    param(out, "SERVER_PORT", port);
    param(out, "SERVER_ADDR", addr);
    param(out, "REMOTE_ADDR", peer);
    param(out, "REMOTE_PORT", peer_port);
    param(out, "REQUEST_SCHEME", req->tls ? "https" : "http");
    if (req->tls)
        param(out, "HTTPS", "on");
    param(out, "REQUEST_METHOD", method);
    param(out, "REQUEST_URI", uri.p);
    param(out, "DOCUMENT_URI", req->path);
    param(out, "QUERY_STRING", query);
    param(out, "DOCUMENT_ROOT", root);
    param(out, "SCRIPT_NAME", s->name);
    param(out, "SCRIPT_FILENAME", s->filename);
    if (s->path_info[0]) {
        param(out, "PATH_INFO", s->path_info);
        char *translated = verbd_alloc(x, strlen(root) + strlen(s->path_info) + 1);
        strcpy(translated, root);
        strcat(translated, s->path_info);
        param(out, "PATH_TRANSLATED", translated);
    }
    if (content_length != UINT64_MAX) {
        param(out, "CONTENT_LENGTH", length);
        param(out, "CONTENT_TYPE", type);
    }
    /* PHP built with --enable-force-cgi-redirect runs only with it. */
    param(out, "REDIRECT_STATUS", "200");
    http_vars(out, h);
    buf_free(&uri);

    /* fastcgi_param, last: a later value of a name wins in PHP-FPM. */
    struct vars v = {.req = req,
                     .uri = req->path,
                     .args = h->query.p,
                     .args_len = h->query.n,
                     .extra_names = fcgi_var_names,
                     .extra_values = values,
                     .nextra = fcgi_var_count};
    struct buf value = {0};
    for (size_t at = 0; at < in->params.len;) {
        const char *pname = in->params.p + at;
        const char *tmpl = pname + strlen(pname) + 1;
        bool if_not_empty = tmpl[strlen(tmpl) + 1] == '1';
        at = (size_t)(tmpl + strlen(tmpl) + 2 - in->params.p);
        buf_reset(&value);
        vars_expand(tmpl, &v, VARS_TEXT, &value);
        if (if_not_empty && !value.len)
            continue;
        fcgi_param(out, pname, strlen(pname), value.len ? value.p : "", value.len);
    }
    buf_free(&value);
}
