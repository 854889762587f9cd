/* The per-exchange arena (lib/core/arena.c): alignment, blocks of their own
 * for large allocations, cleanups in reverse order of registration, and a
 * reset that keeps (and rewinds) the first block.  Run under ASan, it also
 * shows that every byte handed out is usable and nothing leaks. */
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "unit.h"

#define ALIGN alignof(max_align_t)

static bool aligned(const void *p)
{
    return ((uintptr_t)p & (ALIGN - 1)) == 0;
}

/* Many odd sizes: every pointer aligned, every range usable and disjoint
 * from the others (each is filled, then all are checked). */
static void test_alignment_and_disjoint(void)
{
    struct arena a;
    arena_init(&a, 4096);
    enum { N = 2000 };
    static unsigned char *ptr[N];
    static size_t len[N];
    int misaligned = 0;
    for (int i = 0; i < N; i++) {
        len[i] = (size_t)(i * 37 % 301); /* 0..300, crossing many blocks */
        ptr[i] = arena_alloc(&a, len[i]);
        misaligned += !aligned(ptr[i]);
        memset(ptr[i], i & 0xff, len[i]);
    }
    CHECK_INT(misaligned, 0);
    int clobbered = 0;
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < len[i]; j++)
            clobbered += ptr[i][j] != (unsigned char)(i & 0xff);
    CHECK_INT(clobbered, 0);
    CHECK(arena_alloc(&a, 0) != NULL);
    CHECK(aligned(arena_alloc(&a, 0)));
    /* A 1-byte allocation after an odd one is still aligned. */
    arena_alloc(&a, 3);
    CHECK(aligned(arena_alloc(&a, 1)));
    arena_free(&a);
}

static void test_copies(void)
{
    struct arena a;
    arena_init(&a, 64);
    char *s = arena_strndup(&a, "hello, world", 5);
    CHECK_STR(s, "hello");
    char *d = arena_dup(&a, "abc\0def", 7);
    CHECK(memcmp(d, "abc\0def", 7) == 0);
    CHECK(arena_dup(&a, NULL, 0) != NULL);
    unsigned char *z = arena_zalloc(&a, 5000);
    size_t nonzero = 0;
    for (size_t i = 0; i < 5000; i++)
        nonzero += z[i] != 0;
    CHECK_INT(nonzero, 0);
    CHECK(aligned(z));
    CHECK_STR(arena_strndup(&a, "", 0), "");
    arena_free(&a);
}

/* A large allocation gets a block of its own: the current block keeps
 * serving small ones from where it was. */
static void test_large(void)
{
    struct arena a;
    arena_init(&a, 4096);
    char *small1 = arena_alloc(&a, 16);
    char *before = a.p;
    char *big = arena_alloc(&a, 1 << 20);
    CHECK(aligned(big));
    memset(big, 0xab, 1 << 20); /* all of it is ours (ASan) */
    CHECK(a.p == before);       /* the first block was not given up */
    CHECK(a.extra != NULL);
    char *small2 = arena_alloc(&a, 16);
    CHECK(small2 == small1 + 16); /* right after the first: 16 is aligned */
    /* One larger than what is left of a small first block, below the
     * large threshold: a fresh block, and it is served from. */
    struct arena b;
    arena_init(&b, 32);
    char *x = arena_alloc(&b, 24);
    char *y = arena_alloc(&b, 100);
    CHECK(aligned(y));
    CHECK(y < x || y >= x + 32);
    memset(y, 1, 100);
    char *y2 = arena_alloc(&b, 8);
    CHECK(y2 == y + ((100 + ALIGN - 1) & ~(ALIGN - 1))); /* 100, aligned up */
    /* An arena whose first block is empty still allocates. */
    struct arena c;
    arena_init(&c, 0);
    char *q = arena_alloc(&c, 10);
    memcpy(q, "0123456789", 10);
    CHECK(aligned(q));
    /* Exactly what is left of the block: it fits. */
    struct arena e;
    arena_init(&e, 64);
    char *e1 = arena_alloc(&e, 64);
    CHECK(e.p == e.end);
    CHECK(e1 + 64 == e.end);
    arena_free(&a);
    arena_free(&b);
    arena_free(&c);
    arena_free(&e);
    CHECK(a.first == NULL && a.p == NULL);
}

/* Cleanups: newest first, once each, on reset and on free. */
static char order[64];
static int runs;

static void clean(void *arg)
{
    size_t n = strlen(order);
    snprintf(order + n, sizeof order - n, "%s", (const char *)arg);
    runs++;
}

static void test_cleanups(void)
{
    struct arena a;
    arena_init(&a, 128);
    order[0] = '\0';
    arena_cleanup(&a, clean, "1");
    arena_alloc(&a, 5000); /* cleanups registered across blocks */
    arena_cleanup(&a, clean, "2");
    for (int i = 0; i < 50; i++)
        arena_alloc(&a, 100);
    arena_cleanup(&a, clean, "3");
    arena_reset(&a);
    CHECK_STR(order, "321");
    arena_reset(&a); /* nothing left to run */
    CHECK_STR(order, "321");
    CHECK_INT(runs, 3);

    order[0] = '\0';
    arena_cleanup(&a, clean, "a");
    arena_cleanup(&a, clean, "b");
    arena_free(&a);
    CHECK_STR(order, "ba");
    CHECK_INT(runs, 5);
}

/* A reset frees the later blocks and rewinds the first one, which serves
 * the same addresses again. */
static void test_reset_keeps_first(void)
{
    struct arena a;
    arena_init(&a, 1024);
    struct arena_block *first = a.first;
    char *p1 = arena_alloc(&a, 100);
    for (int i = 0; i < 100; i++)
        arena_alloc(&a, 200);
    arena_alloc(&a, 1 << 16);
    CHECK(a.extra != NULL);
    arena_reset(&a);
    CHECK(a.first == first);
    CHECK(a.extra == NULL);
    CHECK_INT(a.end - a.p, 1024);
    CHECK(arena_alloc(&a, 100) == p1);
    /* Many cycles neither grow nor leak (ASan would say). */
    for (int cycle = 0; cycle < 100; cycle++) {
        for (int i = 0; i < 30; i++)
            memset(arena_alloc(&a, (size_t)(i * 97)), 0, (size_t)(i * 97));
        arena_cleanup(&a, clean, "");
        arena_reset(&a);
        if (a.first != first || a.extra != NULL || a.end - a.p != 1024)
            break;
    }
    CHECK(a.first == first);
    CHECK(a.extra == NULL);
    CHECK_INT(a.end - a.p, 1024);
    arena_free(&a);
}

int main(void)
{
    test_alignment_and_disjoint();
    test_copies();
    test_large();
    test_cleanups();
    test_reset_keeps_first();
    return unit_report();
}
