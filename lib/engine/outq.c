#include "engine/outq.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void outq_push(struct outq *q, int fd, uint64_t off, uint64_t len)
{
    if (len == 0)
        return;
    if (fd < 0)
        q->mem += (size_t)len;
    if (fd < 0 && q->n > q->head) {
        struct out_seg *last = &q->segs[q->n - 1];
        if (last->fd < 0 && last->off + last->len == off) {
            last->len += len;
            return;
        }
    }
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 4;
        struct out_seg *p = realloc(q->segs, cap * sizeof *p);
        if (!p)
            abort();
        q->segs = p;
        q->cap = cap;
    }
    q->segs[q->n++] = (struct out_seg){fd, {-1, NULL, NULL}, off, len};
}

void outq_bytes(struct outq *q, const void *p, size_t n)
{
    size_t at = q->out.len;
    buf_append(&q->out, p, n);
    outq_push(q, -1, at, n);
}

uint64_t outq_pieces(struct outq *q, struct verbd_response *res, uint64_t limit,
                     uint64_t inline_max)
{
    struct buf *o = &q->out;
    uint64_t queued = 0;
    for (size_t i = 0; i < res->npieces && queued < limit; i++) {
        struct body_piece *bp = &res->pieces[i];
        uint64_t len = bp->len < limit - queued ? bp->len : limit - queued;
        if (bp->fd < 0) {
            outq_bytes(q, bp->ptr ? bp->ptr : res->body.p + bp->offset, (size_t)len);
            body_piece_drop(bp); /* lent bytes are given back once copied */
        } else if (len <= inline_max) {
            buf_reserve(o, (size_t)len);
            ssize_t got = pread(bp->fd, o->p + o->len, (size_t)len, (off_t)bp->offset);
            if (got != (ssize_t)len)
                return queued; /* the file changed under us */
            outq_push(q, -1, o->len, (size_t)got);
            o->len += (size_t)got;
        } else {
            outq_push(q, bp->fd, bp->offset, len);
            if (bp->hold.fd >= 0) {
                q->segs[q->n - 1].hold = bp->hold;
                bp->hold = (struct file_hold){-1, NULL, NULL};
            }
        }
        queued += len;
    }
    return queued;
}

ssize_t outq_copy(struct outq *q, char *dst, size_t len)
{
    size_t n = 0;
    while (n < len && q->head < q->n) {
        struct out_seg *g = &q->segs[q->head];
        size_t take = len - n < g->len ? len - n : (size_t)g->len;
        if (g->fd < 0) {
            memcpy(dst + n, q->out.p + g->off, take);
        } else {
            ssize_t got = pread(g->fd, dst + n, take, (off_t)g->off);
            if (got <= 0)
                return -1;
            take = (size_t)got;
        }
        outq_consumed(q, take);
        n += take;
    }
    return (ssize_t)n;
}

void outq_consumed(struct outq *q, size_t n)
{
    while (n && q->head < q->n) {
        struct out_seg *g = &q->segs[q->head];
        size_t take = n < g->len ? n : (size_t)g->len;
        if (g->fd < 0)
            q->mem -= take;
        g->off += take;
        g->len -= take;
        n -= take;
        if (g->len == 0) {
            file_hold_drop(&g->hold);
            q->head++;
        }
    }
    if (q->head == q->n) {
        q->head = q->n = 0;
        q->mem = 0;
        buf_reset(&q->out);
    }
}

void outq_drop(struct outq *q)
{
    for (size_t i = q->head; i < q->n; i++)
        file_hold_drop(&q->segs[i].hold);
    q->head = q->n = 0;
    q->mem = 0;
    buf_reset(&q->out);
}

void outq_free_segs(struct outq *q)
{
    free(q->segs);
    q->segs = NULL;
    q->head = q->n = q->cap = 0;
}
