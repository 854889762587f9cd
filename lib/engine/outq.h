/* A session's queue of output: bytes in one buffer and ranges of files,
 * in the order they go out, written with writev and sendfile.  The
 * HTTP/1 session queues its responses in one; the HTTP/2 session queues
 * each stream's body in one and moves it, a DATA frame at a time, into
 * the connection's, which it writes the same way. */
#ifndef VERBD_ENGINE_OUTQ_H
#define VERBD_ENGINE_OUTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/exchange.h"
#include "engine/transport.h"

/* A piece of queued output: bytes of `out` (fd < 0, lent NULL), bytes a
 * handler lent (fd < 0: lent + off, given back once sent or dropped), or
 * a file range. */
struct out_seg {
    int fd;
    struct file_hold hold; /* on a file's last segment: dropped once sent */
    uint64_t off, len;
    const char *lent;
    void (*give_back)(void *ctx);
    void *ctx;
};

struct outq {
    struct buf out;
    struct out_seg *segs;
    size_t head, n, cap; /* segs[head, n) are still to go */
    size_t mem;          /* bytes of `out` still to go */
    size_t lent;         /* lent bytes still to go */
};

static inline bool outq_empty(const struct outq *q)
{
    return q->head == q->n;
}

/* Queues a range: of q->out (fd < 0; joined to the last one when they
 * touch) or of a file. */
void outq_push(struct outq *q, int fd, uint64_t off, uint64_t len);
/* Copies bytes into q->out and queues them. */
void outq_bytes(struct outq *q, const void *p, size_t n);
/* Moves a response's body pieces, up to `limit` bytes, into the queue:
 * lent bytes the lender is told of again (a release callback) are queued
 * where they are if the piece is large enough, other memory is copied
 * (lent bytes given back), a file range up to
 * `inline_max` bytes is read into the buffer now, a longer one is queued
 * as a range holding its file.  Returns the bytes queued; fewer than the
 * pieces had (up to the limit) if a file was shorter than its range. */
uint64_t outq_pieces(struct outq *q, struct verbd_response *res, uint64_t limit,
                     uint64_t inline_max);
/* Copies up to `len` queued bytes into dst (reading file ranges), taking
 * them off the queue.  Returns the bytes copied, or -1 if a file was
 * shorter than its range. */
ssize_t outq_copy(struct outq *q, char *dst, size_t len);
/* Moves `n` queued bytes from src's head to dst's tail: bytes copied,
 * file ranges queued as ranges of the same file (with the file's hold
 * once its last byte moves) if `ranges`, else read into dst's buffer.
 * Returns the bytes moved, fewer if a file was shorter than its range. */
size_t outq_move(struct outq *src, struct outq *dst, size_t n, bool ranges);
/* Keeps a file's hold until what is queued before it is written (the
 * owner of the hold went, ranges of its file are still queued). */
void outq_keep_hold(struct outq *q, struct file_hold *hold);
/* Total bytes queued, memory and file ranges. */
uint64_t outq_length(const struct outq *q);
/* Writes from the head: one writev of the memory segments in a row, or
 * one sendfile of a file range; takes what was written off the queue.
 * Returns the bytes written, 0 if a file was shorter than its range, or
 * -1 with errno. */
ssize_t outq_write(struct outq *q, struct transport *t);
/* Takes `n` bytes off the queue's head (they were written). */
void outq_consumed(struct outq *q, size_t n);
/* Forgets what is queued, releasing its files; the memory stays. */
void outq_drop(struct outq *q);
/* Forgets the segment list's memory (the buffer is the owner's). */
void outq_free_segs(struct outq *q);

#endif
