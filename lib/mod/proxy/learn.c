/* What the gateway learnt from its upstreams: methods an upstream answered
 * 501 (DESIGN.md, "Origin servers and gateways"), each until its answer
 * goes stale.  One table in memory shared by every worker (mapped before
 * they fork, kept across reloads), keyed by upstream and method, so a
 * refusal learnt by one worker is decided by all. */
#include "mod/proxy/learn.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "core/clock.h"

#define SLOTS 256
#define KEY_MAX 96 /* "upstream\nMETHOD" */

struct slot {
    char key[KEY_MAX];
    uint64_t expires_ms; /* clock_ms() time; 0: free */
};

struct table {
    atomic_flag lock;
    struct slot slots[SLOTS];
};

static struct table *table;

int learn_init(void)
{
    if (table)
        return 0;
    void *p = mmap(NULL, sizeof *table, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    table = p;
    atomic_flag_clear(&table->lock);
    return 0;
}

static void lock(void)
{
    while (atomic_flag_test_and_set_explicit(&table->lock, memory_order_acquire))
        ;
}

static void unlock(void)
{
    atomic_flag_clear_explicit(&table->lock, memory_order_release);
}

/* The key of (upstream, method); false if it does not fit. */
static bool make_key(char *key, const char *upstream, const char *method, size_t len)
{
    size_t ul = strlen(upstream);
    if (ul + 1 + len + 1 > KEY_MAX)
        return false;
    memcpy(key, upstream, ul);
    key[ul] = '\n';
    memcpy(key + ul + 1, method, len);
    key[ul + 1 + len] = '\0';
    return true;
}

static unsigned hash(const char *key)
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

void learn_refusal(const char *upstream, const char *method, size_t len, uint64_t ttl_ms)
{
    char key[KEY_MAX];
    if (!table || !make_key(key, upstream, method, len))
        return;
    uint64_t now = clock_ms();
    unsigned h = hash(key);
    lock();
    /* Its own slot (a probe ends at a slot never used), else the first
     * stale one along the probe; with every slot live, the one that goes
     * stale first gives way. */
    struct slot *use = NULL, *free_slot = NULL, *soonest = NULL;
    for (unsigned i = 0; i < SLOTS; i++) {
        struct slot *s = &table->slots[(h + i) % SLOTS];
        if (s->key[0] == '\0') {
            if (!free_slot)
                free_slot = s;
            break;
        }
        if (strcmp(s->key, key) == 0) {
            use = s;
            break;
        }
        if (!free_slot && s->expires_ms <= now)
            free_slot = s;
        if (!soonest || s->expires_ms < soonest->expires_ms)
            soonest = s;
    }
    if (!use)
        use = free_slot ? free_slot : soonest;
    memcpy(use->key, key, strlen(key) + 1);
    use->expires_ms = now + ttl_ms;
    unlock();
}

uint64_t learnt_refusal(const char *upstream, const char *method, size_t len)
{
    char key[KEY_MAX];
    if (!table || !make_key(key, upstream, method, len))
        return 0;
    uint64_t now = clock_ms(), left = 0;
    unsigned h = hash(key);
    lock();
    for (unsigned i = 0; i < SLOTS; i++) {
        const struct slot *s = &table->slots[(h + i) % SLOTS];
        if (s->key[0] == '\0')
            break;
        if (strcmp(s->key, key) == 0) {
            left = s->expires_ms > now ? s->expires_ms - now : 0;
            break;
        }
    }
    unlock();
    return left;
}
