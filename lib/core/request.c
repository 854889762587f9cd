/* The request accessors of verbd.h. */
#include "core/exchange.h"
#include "http/method.h"

const char *verbd_request_method(const struct verbd_request *req, size_t *len)
{
    if (len)
        *len = req->http.method.n;
    return req->http.method.p;
}

const char *verbd_request_path(const struct verbd_request *req)
{
    return req->path;
}

const char *verbd_request_subpath(const struct verbd_request *req)
{
    return req->subpath;
}

const char *verbd_request_query(const struct verbd_request *req, size_t *len)
{
    if (len)
        *len = req->http.query.n;
    return req->http.query.p;
}

const char *verbd_request_header(const struct verbd_request *req, const char *name, size_t *len)
{
    struct span v = http_field_get(&req->http, name);
    if (len)
        *len = v.n;
    return v.p;
}

size_t verbd_request_header_count(const struct verbd_request *req)
{
    return req->http.nfields;
}

int verbd_request_header_at(const struct verbd_request *req, size_t i, const char **name,
                            size_t *nlen, const char **value, size_t *vlen)
{
    if (i >= req->http.nfields)
        return -1;
    const struct http_field *f = &req->http.fields[i];
    *name = f->name.p;
    *nlen = f->name.n;
    *value = f->value.p;
    *vlen = f->value.n;
    return 0;
}

int verbd_request_is_head(const struct verbd_request *req)
{
    return req->method_id == METHOD_HEAD;
}

const void *verbd_request_body(const struct verbd_request *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body;
}

const char *verbd_request_trailers(const struct verbd_request *req, size_t *len)
{
    if (len)
        *len = req->trailers.n;
    return req->trailers.p;
}

int verbd_request_has_body(const struct verbd_request *req)
{
    const struct http_request *h = &req->http;
    return h->framing == BODY_CHUNKED || (h->framing == BODY_LENGTH && h->content_length > 0);
}
