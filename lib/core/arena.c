#include "core/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_cleanup {
    struct arena_cleanup *next;
    void (*fn)(void *arg);
    void *arg;
};

#define EXTRA_BLOCK 8192

static struct arena_block *block_new(size_t size)
{
    struct arena_block *b = malloc(sizeof *b + size);
    if (!b)
        abort();
    b->next = NULL;
    b->size = size;
    return b;
}

void arena_init(struct arena *a, size_t first_size)
{
    a->first = block_new(first_size);
    a->extra = NULL;
    a->cleanups = NULL;
    a->p = a->first->data;
    a->end = a->p + first_size;
}

static void run_cleanups(struct arena *a)
{
    /* A cleanup may register no more: the list is taken first. */
    while (a->cleanups) {
        struct arena_cleanup *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->arg);
    }
}

static void free_extra(struct arena *a)
{
    while (a->extra) {
        struct arena_block *b = a->extra;
        a->extra = b->next;
        free(b);
    }
}

void arena_reset_slow(struct arena *a)
{
    run_cleanups(a);
    free_extra(a);
    a->p = a->first->data;
    a->end = a->p + a->first->size;
}

void arena_free(struct arena *a)
{
    run_cleanups(a);
    free_extra(a);
    free(a->first);
    a->first = NULL;
    a->p = a->end = NULL;
}

void *arena_alloc_slow(struct arena *a, size_t n)
{
    /* A large request gets a block of its own; the current block keeps
     * serving small ones. */
    if (n > EXTRA_BLOCK / 2) {
        struct arena_block *b = block_new(n);
        b->next = a->extra;
        a->extra = b;
        return b->data;
    }
    struct arena_block *b = block_new(EXTRA_BLOCK);
    b->next = a->extra;
    a->extra = b;
    a->p = b->data + n;
    a->end = b->data + EXTRA_BLOCK;
    return b->data;
}

void *arena_zalloc(struct arena *a, size_t n)
{
    return memset(arena_alloc(a, n), 0, n);
}

void *arena_dup(struct arena *a, const void *p, size_t n)
{
    return n ? memcpy(arena_alloc(a, n), p, n) : arena_alloc(a, 0);
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void arena_cleanup(struct arena *a, void (*fn)(void *arg), void *arg)
{
    struct arena_cleanup *c = arena_alloc(a, sizeof *c);
    *c = (struct arena_cleanup){a->cleanups, fn, arg};
    a->cleanups = c;
}
