/* A growable byte buffer.  Allocation failure aborts: the server caps every
 * size a client controls before it reaches a buffer. */
#ifndef VERBD_CORE_BUF_H
#define VERBD_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    char *p;
    size_t len;
    size_t cap;
};

void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends v in decimal. */
void buf_put_u64(struct buf *b, uint64_t v);
/* Writes v in decimal at p (20 bytes are enough); returns the end. */
char *put_decimal(char *p, uint64_t v);
void buf_free(struct buf *b);

static inline void buf_reset(struct buf *b)
{
    b->len = 0;
}

#endif
