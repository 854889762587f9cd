/* An arena: memory that lives exactly as long as one exchange.  Blocks are
 * carved in order and freed together; anything else the owner holds (a
 * descriptor, a module's state) registers a cleanup, run in reverse order
 * of registration when the arena is reset or freed. */
#ifndef VERBD_CORE_ARENA_H
#define VERBD_CORE_ARENA_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

struct arena_block;
struct arena_cleanup;

struct arena {
    char *p, *end;                  /* free room in the current block */
    struct arena_block *first;      /* kept across resets */
    struct arena_block *extra;      /* later blocks, freed on reset */
    struct arena_cleanup *cleanups; /* newest first */
};

/* An arena whose first block holds `first_size` bytes.  Aborts when out of
 * memory, like every allocation the server caps beforehand. */
void arena_init(struct arena *a, size_t first_size);
/* Runs the cleanups, frees every block but the first and rewinds it. */
void arena_reset_slow(struct arena *a);
static inline void arena_reset(struct arena *a);
/* Runs the cleanups and frees everything. */
void arena_free(struct arena *a);

/* n bytes aligned for any object; never NULL. */
static inline void *arena_alloc(struct arena *a, size_t n);
void *arena_alloc_slow(struct arena *a, size_t n);
void *arena_zalloc(struct arena *a, size_t n);
void *arena_dup(struct arena *a, const void *p, size_t n);
/* A NUL-terminated copy of n bytes. */
char *arena_strndup(struct arena *a, const char *s, size_t n);

/* fn(arg) runs when the arena is reset or freed. */
void arena_cleanup(struct arena *a, void (*fn)(void *arg), void *arg);

/* The common cases without a call: room in the current block, and a reset
 * with nothing to clean up. */
struct arena_block {
    struct arena_block *next;
    size_t size;
    alignas(max_align_t) char data[];
};

#define ARENA_ALIGN (alignof(max_align_t))

static inline void *arena_alloc(struct arena *a, size_t n)
{
    size_t pad = (size_t)(-(uintptr_t)a->p & (ARENA_ALIGN - 1));
    size_t room = (size_t)(a->end - a->p);
    if (n <= room && pad <= room - n) {
        char *p = a->p + pad;
        a->p = p + n;
        return p;
    }
    return arena_alloc_slow(a, n);
}

static inline void arena_reset(struct arena *a)
{
    if (a->cleanups || a->extra) {
        arena_reset_slow(a);
        return;
    }
    a->p = a->first->data;
}

#endif
