/* For the harnesses whose input is field values separated by NUL bytes:
 * calls fn on each, in a copy of exactly its size (so ASan sees any read
 * past it). */
#ifndef VERBD_FUZZ_FIELDS_H
#define VERBD_FUZZ_FIELDS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline void fuzz_each_field(const uint8_t *data, size_t size,
                                   void (*fn)(const char *p, size_t n, void *arg), void *arg)
{
    size_t at = 0;
    while (at <= size) {
        const uint8_t *nul = size > at ? memchr(data + at, 0, size - at) : NULL;
        size_t n = nul ? (size_t)(nul - (data + at)) : size - at;
        char *field = malloc(n ? n : 1);
        if (!field)
            return;
        memcpy(field, data + at, n);
        fn(field, n, arg);
        free(field);
        at += n + 1;
    }
}

#endif
