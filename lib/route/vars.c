/* Expanding variables: one pass over the template, no allocation beyond
 * the output buffer. */
#include "route/vars.h"

#include "core/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/exchange.h"

enum var {
    VAR_NONE,
    VAR_SCHEME,
    VAR_HOST,
    VAR_REQUEST_URI,
    VAR_URI,
    VAR_ARGS,
    VAR_REMOTE_ADDR,
    VAR_CAPTURE,
    VAR_EXTRA,
};

static const struct {
    const char *name;
    enum var id;
} names[] = {
    {"scheme", VAR_SCHEME}, {"host", VAR_HOST}, {"request_uri", VAR_REQUEST_URI},
    {"uri", VAR_URI},       {"args", VAR_ARGS}, {"remote_addr", VAR_REMOTE_ADDR},
};

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The variable at p (just past '$'): its id, the capture number, and the
 * length of its spelling after '$'.  VAR_NONE with *len the name's length
 * (0 if there is none) for a name verbd does not have. */
static enum var parse_var(const char *p, const char *const *extra, size_t nextra, int *capture,
                          size_t *len)
{
    bool brace = *p == '{';
    const char *name = p + brace;
    size_t n = 0;
    if (name[0] >= '0' && name[0] <= '9') {
        n = 1; /* $1x is $1 followed by x, as in nginx */
    } else {
        while (is_name_char(name[n]))
            n++;
    }
    if (brace && name[n] != '}') {
        *len = 0;
        return VAR_NONE;
    }
    *len = n + (brace ? 2 : 0);
    if (!n)
        return VAR_NONE;
    if (n == 1 && name[0] >= '0' && name[0] <= '9') {
        *capture = name[0] - '0';
        return VAR_CAPTURE;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && memcmp(names[i].name, name, n) == 0)
            return names[i].id;
    for (size_t i = 0; i < nextra; i++)
        if (strlen(extra[i]) == n && memcmp(extra[i], name, n) == 0) {
            *capture = (int)i;
            return VAR_EXTRA;
        }
    return VAR_NONE;
}

/* What a path segment may hold unencoded (RFC 3986 pchar and '/'). */
static bool url_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._~!$&'()*+,;=:@/", c) != NULL;
}

static void put(struct buf *out, const char *p, size_t n, bool encode)
{
    if (!encode) {
        buf_append(out, p, n);
        return;
    }
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c && url_safe(c)) {
            buf_append(out, p + i, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(out, e, 3);
        }
    }
}

/* $host: the Host field's name without its port, lower case. */
static void put_host(struct buf *out, const struct verbd_request *req)
{
    const char *p = req->http.host.p;
    size_t n = req->http.host.n;
    if (!p)
        return;
    size_t end = n;
    if (n && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        end = close ? (size_t)(close - p) + 1 : n;
    } else {
        const char *colon = memchr(p, ':', n);
        if (colon)
            end = (size_t)(colon - p);
    }
    for (size_t i = 0; i < end; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        buf_append(out, &c, 1);
    }
}

static void put_addr(struct buf *out, const struct sockaddr *sa)
{
    char text[ADDR_TEXT_MAX];
    addr_text(sa, text, sizeof text, "");
    buf_puts(out, text);
}

void vars_expand(const char *tmpl, const struct vars *v, enum vars_mode mode, struct buf *out)
{
    bool url = mode == VARS_URL;
    const struct verbd_request *req = v->req;
    for (const char *p = tmpl; *p;) {
        const char *dollar = strchr(p, '$');
        if (!dollar) {
            buf_puts(out, p);
            return;
        }
        buf_append(out, p, (size_t)(dollar - p));
        int capture = 0;
        size_t len;
        enum var id = parse_var(dollar + 1, v->extra_names, v->nextra, &capture, &len);
        if (id == VAR_NONE) {
            buf_append(out, "$", 1); /* checked at configuration: literal */
            p = dollar + 1;
            continue;
        }
        p = dollar + 1 + len;
        switch (id) {
        case VAR_SCHEME: buf_puts(out, req && req->tls ? "https" : "http"); break;
        case VAR_HOST:
            if (req)
                put_host(out, req);
            break;
        case VAR_REQUEST_URI:
            if (req && req->http.path.p) {
                buf_append(out, req->http.path.p, req->http.path.n);
                if (req->http.query.p) {
                    buf_append(out, "?", 1);
                    buf_append(out, req->http.query.p, req->http.query.n);
                }
            }
            break;
        case VAR_URI:
            if (v->uri)
                put(out, v->uri, strlen(v->uri), url);
            break;
        case VAR_ARGS:
            if (v->args)
                buf_append(out, v->args, v->args_len);
            break;
        case VAR_REMOTE_ADDR:
            if (req)
                put_addr(out, req->peer);
            break;
        case VAR_CAPTURE:
            if (capture < v->cap.n && v->cap.subject && v->cap.at[capture][0] >= 0)
                put(out, v->cap.subject + v->cap.at[capture][0],
                    (size_t)(v->cap.at[capture][1] - v->cap.at[capture][0]), url);
            break;
        case VAR_EXTRA:
            if (v->extra_values[capture])
                buf_puts(out, v->extra_values[capture]);
            break;
        case VAR_NONE: break;
        }
    }
}

int vars_check(const char *tmpl, int captures, char *err, size_t errlen)
{
    return vars_check_extra(tmpl, captures, NULL, 0, err, errlen);
}

int vars_check_extra(const char *tmpl, int captures, const char *const *extra_names, size_t nextra,
                     char *err, size_t errlen)
{
    for (const char *p = strchr(tmpl, '$'); p; p = strchr(p + 1, '$')) {
        int capture;
        size_t len;
        enum var id = parse_var(p + 1, extra_names, nextra, &capture, &len);
        if (id == VAR_CAPTURE && captures < 0) {
            snprintf(err, errlen,
                     "$%d: captures exist only after a rewrite's match or in a location by "
                     "regular expression",
                     capture);
            return -1;
        }
        if (id == VAR_CAPTURE && capture > captures) {
            snprintf(err, errlen, "$%d but the location's expression has %d capture%s", capture,
                     captures, captures == 1 ? "" : "s");
            return -1;
        }
        if (id == VAR_NONE && len) {
            snprintf(err, errlen,
                     "unknown variable \"$%.*s\" (verbd has $scheme, $host, $request_uri, $uri, "
                     "$args, $remote_addr and $1..$9%s)",
                     (int)len, p + 1, nextra ? ", and those of this directive's module" : "");
            return -1;
        }
        if (id == VAR_NONE && p[1] == '{') {
            snprintf(err, errlen, "\"${\" without a closing \"}\"");
            return -1;
        }
    }
    return 0;
}
