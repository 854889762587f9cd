/* The response builder of verbd.h: status, fields and body pieces that the
 * exchange hands to its session with verbd_send(). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/exchange.h"
#include "http/status.h"

void response_init(struct verbd_response *res)
{
    memset(res, 0, sizeof *res);
    res->status = 200;
    res->length = RESPONSE_NO_LENGTH;
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

void body_piece_drop(struct body_piece *p)
{
    if (p->hold.fd >= 0)
        file_hold_drop(&p->hold);
    if (p->release) {
        p->release(p->ctx);
        p->release = NULL;
    }
}

void response_clear_body(struct verbd_response *res)
{
    for (size_t i = 0; i < res->npieces; i++)
        body_piece_drop(&res->pieces[i]);
    res->npieces = 0;
    buf_reset(&res->body);
}

static void clear_head(struct verbd_response *res)
{
    buf_reset(&res->head);
    buf_reset(&res->trailers);
    res->has_date = false;
}

void response_reset(struct verbd_response *res)
{
    response_clear_body(res);
    clear_head(res);
    res->status = 200;
    res->length = RESPONSE_NO_LENGTH;
    res->close = false;
}

void response_free(struct verbd_response *res)
{
    response_clear_body(res);
    buf_free(&res->head);
    buf_free(&res->trailers);
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

int response_field_at(const struct verbd_response *res, size_t *pos, struct span *name,
                      struct span *value)
{
    const char *p = res->head.p + *pos, *end = res->head.p + res->head.len;
    if (p >= end)
        return -1;
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *eol = colon ? memchr(colon, '\r', (size_t)(end - colon)) : NULL;
    if (!eol)
        return -1;
    *name = (struct span){p, (size_t)(colon - p)};
    const char *v = colon + 1;
    while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
    *value = (struct span){v, (size_t)(eol - v)};
    *pos = (size_t)(eol + 2 - res->head.p);
    return 0;
}

static struct body_piece *new_piece(struct verbd_response *res)
{
    if (res->npieces == res->cap_pieces) {
        size_t cap = res->cap_pieces ? res->cap_pieces * 2 : 4;
        struct body_piece *p = realloc(res->pieces, cap * sizeof *p);
        if (!p)
            abort();
        res->pieces = p;
        res->cap_pieces = cap;
    }
    return &res->pieces[res->npieces++];
}

static void add_bytes(struct verbd_response *res, uint64_t offset, uint64_t len)
{
    if (len == 0)
        return;
    struct body_piece *last = res->npieces ? &res->pieces[res->npieces - 1] : NULL;
    if (last && last->fd < 0 && !last->ptr && last->offset + last->len == offset) {
        last->len += len;
        return;
    }
    *new_piece(res) = (struct body_piece){-1, {-1, NULL, NULL}, offset, len, NULL, NULL, NULL};
}

/* A file range.  `hold` is one hold on its fd that the response takes
 * over; the hold sits on the newest piece of that file, and a second hold
 * of the same kind on a file already held is given back at once. */
static void add_file(struct verbd_response *res, struct file_hold hold, uint64_t offset,
                     uint64_t len)
{
    struct body_piece *held = NULL;
    for (size_t i = res->npieces; i-- > 0 && !held;) {
        struct file_hold *h = &res->pieces[i].hold;
        if (h->fd == hold.fd && h->release == hold.release && h->ctx == hold.ctx)
            held = &res->pieces[i];
    }
    if (held && hold.release)
        hold.release(hold.ctx); /* an owned fd is simply held once */
    if (len == 0) {
        if (!held)
            file_hold_drop(&hold);
        return;
    }
    if (held) {
        hold = held->hold;
        held->hold = (struct file_hold){-1, NULL, NULL};
    }
    struct body_piece *last = res->npieces ? &res->pieces[res->npieces - 1] : NULL;
    if (last && last->fd == hold.fd && last->offset + last->len == offset && last->hold.fd < 0) {
        last->len += len;
        last->hold = hold;
        return;
    }
    *new_piece(res) = (struct body_piece){hold.fd, hold, offset, len, NULL, NULL, NULL};
}

void verbd_response_status(struct verbd_response *res, int status)
{
    res->status = status;
}

void verbd_response_header_n(struct verbd_response *res, const char *name, const char *value,
                             size_t len)
{
    size_t n = strlen(name);
    if (n == 4 && strncasecmp(name, "Date", 4) == 0)
        res->has_date = true;
    buf_append(&res->head, name, n);
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
    add_bytes(res, at, len);
}

void verbd_response_body_shared(struct verbd_response *res, const void *data, size_t len,
                                void (*release)(void *ctx), void *ctx)
{
    if (len == 0) {
        if (release)
            release(ctx);
        return;
    }
    *new_piece(res) = (struct body_piece){-1, {-1, NULL, NULL}, 0, len, data, release, ctx};
}

void verbd_response_file(struct verbd_response *res, int fd, uint64_t offset, uint64_t len)
{
    add_file(res, (struct file_hold){fd, NULL, NULL}, offset, len);
}

void verbd_response_file_shared(struct verbd_response *res, int fd, uint64_t offset, uint64_t len,
                                void (*release)(void *ctx), void *ctx)
{
    add_file(res, (struct file_hold){fd, release, ctx}, offset, len);
}

void verbd_response_error(struct verbd_response *res, int status, const char *detail)
{
    response_clear_body(res);
    clear_head(res);
    res->status = status;
    res->length = RESPONSE_NO_LENGTH;
    verbd_response_header(res, "Content-Type", "text/plain; charset=utf-8");
    buf_put_u64(&res->body, (uint64_t)status);
    buf_append(&res->body, " ", 1);
    buf_puts(&res->body, http_status_reason(status));
    buf_append(&res->body, "\n", 1);
    if (detail) {
        buf_puts(&res->body, detail);
        buf_append(&res->body, "\n", 1);
    }
    add_bytes(res, 0, res->body.len);
}

void verbd_response_close(struct verbd_response *res)
{
    res->close = true;
}

void verbd_response_length(struct verbd_response *res, uint64_t len)
{
    res->length = len;
}

void verbd_response_trailer(struct verbd_response *res, const char *name, const char *value)
{
    buf_puts(&res->trailers, name);
    buf_append(&res->trailers, ": ", 2);
    buf_puts(&res->trailers, value);
    buf_append(&res->trailers, "\r\n", 2);
}
