#include "engine/outq.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Memory segments written by one writev. */
#define IOV_BATCH 64
/* Lent bytes from this many on are written from where they are (a cached
 * entry's blocks); fewer are cheaper to copy beside the head. */
#define LEND_MIN 4096

static const char *seg_bytes(const struct outq *q, const struct out_seg *g)
{
    return (g->lent ? g->lent : q->out.p) + g->off;
}

/* A segment is written or dropped: what it holds goes back. */
static void seg_done(struct out_seg *g)
{
    file_hold_drop(&g->hold);
    if (g->give_back) {
        g->give_back(g->ctx);
        g->give_back = NULL;
    }
}

static struct out_seg *new_seg(struct outq *q)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 4;
        struct out_seg *p = realloc(q->segs, cap * sizeof *p);
        if (!p)
            abort();
        q->segs = p;
        q->cap = cap;
    }
    return &q->segs[q->n++];
}

void outq_push(struct outq *q, int fd, uint64_t off, uint64_t len)
{
    if (len == 0)
        return;
    if (fd < 0)
        q->mem += (size_t)len;
    if (fd < 0 && q->n > q->head) {
        struct out_seg *last = &q->segs[q->n - 1];
        if (last->fd < 0 && !last->lent && last->off + last->len == off) {
            last->len += len;
            return;
        }
    }
    *new_seg(q) = (struct out_seg){.fd = fd, .hold = {-1, NULL, NULL}, .off = off, .len = len};
}

/* Queues a lent piece where it is, taking over its release. */
static void push_lent(struct outq *q, struct body_piece *bp, uint64_t len)
{
    q->lent += (size_t)len;
    *new_seg(q) = (struct out_seg){.fd = -1,
                                   .hold = {-1, NULL, NULL},
                                   .len = len,
                                   .lent = bp->ptr,
                                   .give_back = bp->release,
                                   .ctx = bp->ctx};
    bp->release = NULL;
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
        if (bp->fd < 0 && bp->ptr && bp->release && len >= LEND_MIN) {
            push_lent(q, bp, len);
        } else if (bp->fd < 0) {
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
            memcpy(dst + n, seg_bytes(q, g), take);
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

size_t outq_move(struct outq *src, struct outq *dst, size_t n, bool ranges)
{
    size_t moved = 0;
    while (moved < n && src->head < src->n) {
        struct out_seg *g = &src->segs[src->head];
        size_t take = n - moved < g->len ? n - moved : (size_t)g->len;
        if (g->fd < 0) {
            outq_bytes(dst, seg_bytes(src, g), take);
        } else if (ranges) {
            outq_push(dst, g->fd, g->off, take);
            if (take == g->len && g->hold.fd >= 0) {
                dst->segs[dst->n - 1].hold = g->hold;
                g->hold = (struct file_hold){-1, NULL, NULL};
            }
        } else {
            struct buf *o = &dst->out;
            buf_reserve(o, take);
            ssize_t got = pread(g->fd, o->p + o->len, take, (off_t)g->off);
            if (got <= 0)
                return moved;
            take = (size_t)got;
            outq_push(dst, -1, o->len, take);
            o->len += take;
        }
        outq_consumed(src, take);
        moved += take;
    }
    return moved;
}

void outq_keep_hold(struct outq *q, struct file_hold *hold)
{
    if (hold->fd < 0)
        return;
    if (outq_empty(q)) {
        file_hold_drop(hold);
        return;
    }
    *new_seg(q) = (struct out_seg){.fd = hold->fd, .hold = *hold};
    *hold = (struct file_hold){-1, NULL, NULL};
}

uint64_t outq_length(const struct outq *q)
{
    uint64_t n = 0;
    for (size_t i = q->head; i < q->n; i++)
        n += q->segs[i].len;
    return n;
}

ssize_t outq_write(struct outq *q, struct transport *t)
{
    struct out_seg *s = &q->segs[q->head];
    ssize_t n;
    if (s->fd < 0) {
        struct iovec iov[IOV_BATCH];
        int cnt = 0;
        size_t i = q->head;
        for (; i < q->n && cnt < IOV_BATCH && q->segs[i].fd < 0; i++)
            iov[cnt++] = (struct iovec){(void *)seg_bytes(q, &q->segs[i]), (size_t)q->segs[i].len};
        /* Bytes followed by a file range (a head before its body, a DATA
         * frame's header before its payload) may wait to leave with it. */
        n = t->ops->writev(t, iov, cnt, i < q->n);
    } else {
        off_t off = (off_t)s->off;
        size_t want = s->len < (1u << 30) ? (size_t)s->len : (1u << 30);
        n = t->ops->sendfile(t, s->fd, &off, want);
    }
    if (n > 0)
        outq_consumed(q, (size_t)n);
    return n;
}

void outq_consumed(struct outq *q, size_t n)
{
    while (n && q->head < q->n) {
        struct out_seg *g = &q->segs[q->head];
        size_t take = n < g->len ? n : (size_t)g->len;
        if (g->lent)
            q->lent -= take;
        else if (g->fd < 0)
            q->mem -= take;
        g->off += take;
        g->len -= take;
        n -= take;
        if (g->len == 0) {
            seg_done(g);
            q->head++;
        }
    }
    /* Holds kept for ranges now written (outq_keep_hold). */
    while (q->head < q->n && q->segs[q->head].len == 0) {
        seg_done(&q->segs[q->head]);
        q->head++;
    }
    if (q->head == q->n) {
        q->head = q->n = 0;
        q->mem = q->lent = 0;
        buf_reset(&q->out);
    }
}

void outq_drop(struct outq *q)
{
    for (size_t i = q->head; i < q->n; i++)
        seg_done(&q->segs[i]);
    q->head = q->n = 0;
    q->mem = q->lent = 0;
    buf_reset(&q->out);
}

void outq_free_segs(struct outq *q)
{
    free(q->segs);
    q->segs = NULL;
    q->head = q->n = q->cap = 0;
}
