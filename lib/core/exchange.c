/* The request accessors and response builders of verbd.h. */
#include "core/exchange.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/method.h"
#include "http/status.h"

const char *verbd_request_method(const struct verbd_request *req, size_t *len)
{
    if (len)
        *len = req->http.method.n;
    return req->http.method.p;
}

const char *verbd_request_path(const struct verbd_request *req) { return req->path; }

const char *verbd_request_subpath(const struct verbd_request *req) { return req->subpath; }

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

size_t verbd_request_header_count(const struct verbd_request *req) { return req->http.nfields; }

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

void *verbd_request_body_state(const struct verbd_request *req) { return req->body_state; }

void response_init(struct verbd_response *res)
{
    memset(res, 0, sizeof *res);
    res->status = 200;
    res->file.fd = -1;
}

void file_hold_drop(struct file_hold *h)
{
    if (h->fd < 0)
        return;
    if (h->release)
        h->release(h->ctx);
    else
        close(h->fd);
    *h = (struct file_hold){-1, NULL, NULL};
}

static void drop_body(struct verbd_response *res)
{
    buf_reset(&res->body);
    res->npieces = 0;
    file_hold_drop(&res->file);
}

void response_reset(struct verbd_response *res)
{
    drop_body(res);
    buf_reset(&res->head);
    res->status = 200;
    res->close = false;
}

void response_free(struct verbd_response *res)
{
    drop_body(res);
    buf_free(&res->head);
    buf_free(&res->body);
    free(res->pieces);
    res->pieces = NULL;
    res->cap_pieces = 0;
}

uint64_t response_body_length(const struct verbd_response *res)
{
    uint64_t total = 0;
    for (size_t i = 0; i < res->npieces; i++)
        total += res->pieces[i].len;
    return total;
}

static void add_piece(struct verbd_response *res, bool is_file, uint64_t offset, uint64_t len)
{
    if (len == 0)
        return;
    struct body_piece *last = res->npieces ? &res->pieces[res->npieces - 1] : NULL;
    if (last && last->is_file == is_file && last->offset + last->len == offset) {
        last->len += len;
        return;
    }
    if (res->npieces == res->cap_pieces) {
        size_t cap = res->cap_pieces ? res->cap_pieces * 2 : 4;
        struct body_piece *p = realloc(res->pieces, cap * sizeof *p);
        if (!p)
            abort();
        res->pieces = p;
        res->cap_pieces = cap;
    }
    res->pieces[res->npieces++] = (struct body_piece){is_file, offset, len};
}

void verbd_response_status(struct verbd_response *res, int status) { res->status = status; }

void verbd_response_header_n(struct verbd_response *res, const char *name, const char *value,
                             size_t len)
{
    buf_puts(&res->head, name);
    buf_append(&res->head, ": ", 2);
    buf_append(&res->head, value, len);
    buf_append(&res->head, "\r\n", 2);
}

void verbd_response_header_lines(struct verbd_response *res, const char *lines, size_t len)
{
    buf_append(&res->head, lines, len);
}

void verbd_response_header(struct verbd_response *res, const char *name, const char *value)
{
    verbd_response_header_n(res, name, value, strlen(value));
}

void verbd_response_body(struct verbd_response *res, const void *data, size_t len)
{
    size_t at = res->body.len;
    buf_append(&res->body, data, len);
    add_piece(res, false, at, len);
}

static void attach_file(struct verbd_response *res, int fd, void (*release)(void *), void *ctx)
{
    if (res->file.fd == fd && res->file.release == release && res->file.ctx == ctx) {
        if (release)
            release(ctx);  /* the response holds the file already */
        return;
    }
    file_hold_drop(&res->file);
    res->file = (struct file_hold){fd, release, ctx};
}

void verbd_response_file(struct verbd_response *res, int fd, uint64_t offset, uint64_t len)
{
    attach_file(res, fd, NULL, NULL);
    add_piece(res, true, offset, len);
}

void verbd_response_file_shared(struct verbd_response *res, int fd, uint64_t offset,
                                uint64_t len, void (*release)(void *ctx), void *ctx)
{
    attach_file(res, fd, release, ctx);
    add_piece(res, true, offset, len);
}

void verbd_response_error(struct verbd_response *res, int status, const char *detail)
{
    drop_body(res);
    buf_reset(&res->head);
    res->status = status;
    verbd_response_header(res, "Content-Type", "text/plain; charset=utf-8");
    buf_put_u64(&res->body, (uint64_t)status);
    buf_append(&res->body, " ", 1);
    buf_puts(&res->body, http_status_reason(status));
    buf_append(&res->body, "\n", 1);
    if (detail) {
        buf_puts(&res->body, detail);
        buf_append(&res->body, "\n", 1);
    }
    add_piece(res, false, 0, res->body.len);
}

void verbd_response_close(struct verbd_response *res) { res->close = true; }
