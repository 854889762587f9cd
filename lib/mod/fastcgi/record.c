#include "mod/fastcgi/record.h"

#include <string.h>

#define FCGI_VERSION_1 1
#define FCGI_KEEP_CONN 1

static void header(struct buf *out, enum fcgi_type type, uint16_t id, size_t len, size_t padding)
{
    uint8_t h[FCGI_HEADER_LEN] = {
        FCGI_VERSION_1,      (uint8_t)type, (uint8_t)(id >> 8), (uint8_t)id,
        (uint8_t)(len >> 8), (uint8_t)len,  (uint8_t)padding,   0};
    buf_append(out, h, sizeof h);
}

void fcgi_begin_request(struct buf *out, uint16_t id, bool keep_conn)
{
    header(out, FCGI_BEGIN_REQUEST, id, 8, 0);
    uint8_t body[8] = {0, FCGI_RESPONDER, keep_conn ? FCGI_KEEP_CONN : 0, 0, 0, 0, 0, 0};
    buf_append(out, body, sizeof body);
}

void fcgi_abort_request(struct buf *out, uint16_t id)
{
    header(out, FCGI_ABORT_REQUEST, id, 0, 0);
}

void fcgi_stream(struct buf *out, enum fcgi_type type, uint16_t id, const void *p, size_t len)
{
    static const char zeros[8];
    size_t at = 0;
    do {
        size_t n = len - at < FCGI_CONTENT_MAX ? len - at : FCGI_CONTENT_MAX;
        /* Content padded to a multiple of 8, as the specification
         * recommends for the receiver's alignment. */
        size_t padding = (8 - n % 8) % 8;
        header(out, type, id, n, padding);
        if (n)
            buf_append(out, (const char *)p + at, n);
        buf_append(out, zeros, padding);
        at += n;
    } while (at < len);
}

static void put_length(struct buf *b, size_t n)
{
    if (n < 128) {
        uint8_t c = (uint8_t)n;
        buf_append(b, &c, 1);
        return;
    }
    uint8_t c[4] = {(uint8_t)((n >> 24) | 0x80), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    buf_append(b, c, 4);
}

void fcgi_param(struct buf *content, const char *name, size_t nlen, const char *value, size_t vlen)
{
    put_length(content, nlen);
    put_length(content, vlen);
    buf_append(content, name, nlen);
    buf_append(content, value, vlen);
}

enum fcgi_event fcgi_read(struct fcgi_reader *r, uint16_t id, const char *p, size_t n, size_t *used,
                          struct fcgi_out *out)
{
    size_t at = 0;
    memset(out, 0, sizeof *out);
    for (;;) {
        if (r->content_left == 0 && r->padding_left) {
            size_t k = n - at < r->padding_left ? n - at : r->padding_left;
            r->padding_left -= k;
            at += k;
        }
        if (r->content_left == 0 && r->padding_left == 0 && r->head_have == FCGI_HEADER_LEN) {
            r->head_have = 0; /* that record is done, its padding too */
            if (r->type == FCGI_END_REQUEST) {
                *used = at;
                out->app_status = (uint32_t)r->end[0] << 24 | (uint32_t)r->end[1] << 16 |
                                  (uint32_t)r->end[2] << 8 | r->end[3];
                out->protocol_status = r->end[4];
                return FCGI_END;
            }
        }
        if (at == n) {
            *used = at;
            return FCGI_MORE;
        }
        if (r->head_have < FCGI_HEADER_LEN) {
            size_t k = FCGI_HEADER_LEN - r->head_have;
            if (k > n - at)
                k = n - at;
            memcpy(r->head + r->head_have, p + at, k);
            r->head_have += k;
            at += k;
            if (r->head_have < FCGI_HEADER_LEN)
                continue;
            r->type = r->head[1];
            r->id = (uint16_t)(r->head[2] << 8 | r->head[3]);
            r->content_left = (size_t)r->head[4] << 8 | r->head[5];
            r->padding_left = r->head[6];
            r->end_have = 0;
            *used = at;
            if (r->head[0] != FCGI_VERSION_1) {
                out->why = "a record of another FastCGI version";
                return FCGI_ERROR;
            }
            if (r->id != id) {
                out->why = r->id == 0 ? "a management record it was not asked for"
                                      : "a record of another request";
                return FCGI_ERROR;
            }
            if (r->type == FCGI_END_REQUEST ? r->content_left != 8
                                            : r->type != FCGI_STDOUT && r->type != FCGI_STDERR) {
                out->why = "a record a responder does not send";
                return FCGI_ERROR;
            }
            if (r->type == FCGI_STDOUT && r->content_left == 0) {
                r->head_have = r->padding_left ? FCGI_HEADER_LEN : 0;
                out->type = FCGI_STDOUT;
                return FCGI_OUTPUT;
            }
            continue;
        }
        if (r->type == FCGI_END_REQUEST) {
            size_t k = 8 - r->end_have;
            if (k > n - at)
                k = n - at;
            memcpy(r->end + r->end_have, p + at, k);
            r->end_have += k;
            r->content_left -= k;
            at += k;
            /* Once whole, with its padding (consumed above), it is the
             * end: what follows is the connection's next request's. */
            continue;
        }
        if (r->content_left == 0)
            continue;
        size_t k = n - at < r->content_left ? n - at : r->content_left;
        out->type = r->type;
        out->p = p + at;
        out->len = k;
        r->content_left -= k;
        *used = at + k;
        return FCGI_OUTPUT;
    }
}
