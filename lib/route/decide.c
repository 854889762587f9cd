/* The method decision of DESIGN.md, in its order: implemented at all (501),
 * mapped (path normalised once), allowed here (405), OPTIONS and TRACE,
 * then the module. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/path.h"
#include "route/route.h"

static const struct route_mapping *find_mapping(const struct route_table *t, const char *path,
                                                const char **subpath)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < t->n; i++) {
        const struct route_mapping *m = t->maps[i];
        size_t n = m->prefix_len;
        bool dir_prefix = m->prefix[n - 1] == '/';
        if (dir_prefix && len == n - 1 && memcmp(path, m->prefix, n - 1) == 0) {
            *subpath = "/";  /* "/files" under "/files/": the module redirects */
            return m;
        }
        if (len < n || memcmp(path, m->prefix, n) != 0)
            continue;
        if (dir_prefix)
            *subpath = path + n - 1;
        else if (path[n] == '\0')
            *subpath = "/";
        else if (path[n] == '/')
            *subpath = path + n;
        else
            continue;
        return m;
    }
    return NULL;
}

enum verdict route_decide(const struct route_table *t, struct verbd_request *req, char *path_buf)
{
    const struct http_request *h = &req->http;
    req->mapping = NULL;
    req->path = req->subpath = NULL;
    req->refusal = 0;
    req->method_id = method_lookup(h->method.p, h->method.n);
    int id = req->method_id;
    if (id == METHOD_UNKNOWN || !(t->implemented & METHOD_BIT(id))) {
        req->refusal = 501;
        return VERDICT_REFUSE;
    }
    if (h->form == TARGET_ASTERISK)
        return VERDICT_ANSWER;  /* OPTIONS *: the parser allows nothing else */
    if (h->form == TARGET_AUTHORITY) {
        req->refusal = 400;     /* CONNECT, were a module to implement it */
        return VERDICT_REFUSE;
    }
    long n = path_normalise(h->path.p, h->path.n, path_buf);
    if (n < 0) {
        req->refusal = (int)-n;
        return VERDICT_REFUSE;
    }
    req->path = path_buf;
    req->mapping = find_mapping(t, path_buf, &req->subpath);
    if (!req->mapping) {
        req->refusal = 404;
        return VERDICT_REFUSE;
    }
    if (!(route_allowed(req) & METHOD_BIT(id))) {
        req->refusal = 405;
        return VERDICT_REFUSE;
    }
    return id == METHOD_OPTIONS || id == METHOD_TRACE ? VERDICT_ANSWER : VERDICT_SERVE;
}

method_set route_allowed(const struct verbd_request *req)
{
    const struct route_mapping *m = req->mapping;
    method_set allowed = m->allowed;
    if (m->module->allow)
        allowed = (m->module->allow(m->inst, req, allowed) & allowed) | METHOD_BIT(METHOD_OPTIONS);
    return allowed;
}

static bool is_credential(struct span name)
{
    static const char *const hidden[] = {"Cookie", "Authorization", "Proxy-Authorization"};
    for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++)
        if (name.n == strlen(hidden[i]) && strncasecmp(name.p, hidden[i], name.n) == 0)
            return true;
    return false;
}

/* TRACE: the request head as received, minus credentials. */
static void answer_trace(const struct verbd_request *req, struct verbd_response *res)
{
    const struct http_request *h = &req->http;
    verbd_response_header(res, "Content-Type", "message/http");
    verbd_response_body(res, h->method.p, h->method.n);
    verbd_response_body(res, " ", 1);
    verbd_response_body(res, h->target.p, h->target.n);
    verbd_response_body(res, h->minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n", 11);
    for (size_t i = 0; i < h->nfields; i++) {
        if (is_credential(h->fields[i].name))
            continue;
        verbd_response_body(res, h->fields[i].name.p, h->fields[i].name.n);
        verbd_response_body(res, ": ", 2);
        verbd_response_body(res, h->fields[i].value.p, h->fields[i].value.n);
        verbd_response_body(res, "\r\n", 2);
    }
    verbd_response_body(res, "\r\n", 2);
}

static void answer_options(const struct route_table *t, const struct verbd_request *req,
                           struct verbd_response *res)
{
    char allow[512];
    bool whole_server = req->http.form == TARGET_ASTERISK;
    method_set_format(whole_server ? t->implemented : route_allowed(req), t->ext_names, allow,
                      sizeof allow);
    verbd_response_status(res, 204);
    verbd_response_header(res, "Allow", allow);
    const struct route_mapping *m = req->mapping;
    if (!whole_server && m->module->options)
        m->module->options(m->inst, req, res);
}

static void refuse(const struct route_table *t, const struct verbd_request *req,
                   struct verbd_response *res)
{
    char detail[768], allow[512];
    const struct span *method = &req->http.method;
    switch (req->refusal) {
    case 501:
        method_set_format(t->implemented, t->ext_names, allow, sizeof allow);
        snprintf(detail, sizeof detail,
                 "The method %.*s is not implemented by this server.\n"
                 "Methods implemented here: %s.",
                 (int)method->n, method->p, allow);
        verbd_response_error(res, 501, detail);
        break;
    case 405:
        method_set_format(route_allowed(req), t->ext_names, allow, sizeof allow);
        snprintf(detail, sizeof detail,
                 "The method %.*s is not allowed for this resource.\n"
                 "Allowed here: %s.",
                 (int)method->n, method->p, allow);
        verbd_response_error(res, 405, detail);
        verbd_response_header(res, "Allow", allow);
        break;
    case 404:
        verbd_response_error(res, 404, "Nothing is served at this path.");
        break;
    default:
        verbd_response_error(res, req->refusal, "The request target is not a valid path.");
        break;
    }
}

void route_respond(const struct route_table *t, enum verdict v, struct verbd_request *req,
                   struct verbd_response *res)
{
    switch (v) {
    case VERDICT_SERVE:
        req->mapping->module->handle(req->mapping->inst, req, res);
        break;
    case VERDICT_ANSWER:
        if (req->method_id == METHOD_TRACE)
            answer_trace(req, res);
        else
            answer_options(t, req, res);
        break;
    case VERDICT_REFUSE:
        refuse(t, req, res);
        break;
    }
}
