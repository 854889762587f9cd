/* The memory store of a cache zone (store.h): one anonymous shared
 * mapping per zone, laid out as a header, the hash buckets, the entry
 * records, the block chain links and the blocks.  One spin lock per zone
 * (as learn.c's table) guards all of it; what is done under it is bounded
 * (a copy of at most one entry). */
#include "cache/store.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NONE UINT32_MAX
#define NAME_LEN 64
#define USE_SLOTS 1024

struct entry {
    uint64_t hash;
    uint32_t hnext;              /* next in its bucket */
    uint32_t lru_prev, lru_next; /* toward the newest, toward the oldest */
    uint32_t first, nblocks;
    uint32_t refs;
    bool used;   /* the record holds an entry (linked or doomed) */
    bool linked; /* findable; false: doomed, freed with its last reference */
    uint32_t key_len, vary_len, head_len;
    uint64_t body_len;
    struct store_meta meta;
};

struct use_slot {
    uint64_t hash;
    uint32_t count;
};

/* A key being fetched by some worker, until `until` at the latest. */
#define FLIGHT_SLOTS 256
struct flight {
    uint64_t hash;
    uint64_t until;
};

struct zone {
    atomic_flag lock;
    char name[NAME_LEN];
    uint64_t bytes;
    uint32_t nblocks, nbuckets;
    uint32_t free_block, nfree;
    uint32_t free_entry;
    uint32_t lru_new, lru_old;
    struct zone_stats stats;
    struct use_slot uses[USE_SLOTS];
    struct flight flights[FLIGHT_SLOTS];
    /* Offsets from the zone's start. */
    size_t buckets_at, entries_at, links_at, blocks_at;
};

static uint32_t *buckets(struct zone *z)
{
    return (uint32_t *)((char *)z + z->buckets_at);
}

static struct entry *entries(struct zone *z)
{
    return (struct entry *)((char *)z + z->entries_at);
}

static uint32_t *links(struct zone *z)
{
    return (uint32_t *)((char *)z + z->links_at);
}

static char *block(struct zone *z, uint32_t b)
{
    return (char *)z + z->blocks_at + (size_t)b * STORE_BLOCK;
}

static void lock(struct zone *z)
{
    while (atomic_flag_test_and_set_explicit(&z->lock, memory_order_acquire))
        ;
}

static void unlock(struct zone *z)
{
    atomic_flag_clear_explicit(&z->lock, memory_order_release);
}

static uint64_t hash_key(const char *key, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
    return h;
}

/* ---- the zones declared ------------------------------------------------------ */

#define ZONES_MAX 32
static struct zone *zones[ZONES_MAX];
static size_t nzones;

static size_t align(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* The offsets of a zone of n blocks; returns its whole size. */
static size_t layout(uint32_t n, size_t *buckets_at, size_t *entries_at, size_t *links_at,
                     size_t *blocks_at)
{
    *buckets_at = align(sizeof(struct zone));
    *entries_at = align(*buckets_at + n * sizeof(uint32_t));
    *links_at = align(*entries_at + n * sizeof(struct entry));
    *blocks_at = (*links_at + n * sizeof(uint32_t) + STORE_BLOCK - 1) & ~(size_t)(STORE_BLOCK - 1);
    return *blocks_at + (size_t)n * STORE_BLOCK;
}

static struct zone *zone_make(const char *name, uint64_t bytes)
{
    size_t per_block = STORE_BLOCK + sizeof(struct entry) + 2 * sizeof(uint32_t);
    if (bytes > (UINT64_C(1) << 40))
        return NULL;
    uint32_t n = (uint32_t)(bytes / per_block);
    size_t buckets_at, entries_at, links_at, blocks_at;
    while (n && layout(n, &buckets_at, &entries_at, &links_at, &blocks_at) > bytes)
        n--;
    if (n < 16)
        return NULL;
    size_t total = layout(n, &buckets_at, &entries_at, &links_at, &blocks_at);
    void *p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    struct zone *z = p;
    atomic_flag_clear(&z->lock);
    snprintf(z->name, sizeof z->name, "%s", name);
    z->bytes = bytes;
    z->nblocks = z->nbuckets = n;
    z->buckets_at = buckets_at;
    z->entries_at = entries_at;
    z->links_at = links_at;
    z->blocks_at = blocks_at;
    z->stats.bytes = (uint64_t)n * STORE_BLOCK;
    for (uint32_t i = 0; i < n; i++) {
        buckets(z)[i] = NONE;
        links(z)[i] = i + 1 < n ? i + 1 : NONE;
        entries(z)[i].hnext = i + 1 < n ? i + 1 : NONE; /* the free list */
    }
    z->free_block = 0;
    z->nfree = n;
    z->free_entry = 0;
    z->lru_new = z->lru_old = NONE;
    return z;
}

struct zone *zone_find(const char *name)
{
    for (size_t i = 0; i < nzones; i++)
        if (strcmp(zones[i]->name, name) == 0)
            return zones[i];
    return NULL;
}

struct zone *zone_get(const char *name, uint64_t bytes, char *err, size_t errlen)
{
    if (strlen(name) >= NAME_LEN) {
        snprintf(err, errlen, "cache_zone: the name \"%s\" is too long", name);
        return NULL;
    }
    for (size_t i = 0; i < nzones; i++)
        if (strcmp(zones[i]->name, name) == 0 && zones[i]->bytes == bytes)
            return zones[i];
    if (nzones == ZONES_MAX) {
        snprintf(err, errlen, "cache_zone: at most %d zones", ZONES_MAX);
        return NULL;
    }
    struct zone *z = zone_make(name, bytes);
    if (!z) {
        snprintf(err, errlen, "cache_zone %s: no %llu bytes of memory to be had (at least 128k)",
                 name, (unsigned long long)bytes);
        return NULL;
    }
    /* A zone resized by a reload replaces the old one under its name (the
     * old mapping stays: exchanges may still read it). */
    for (size_t i = 0; i < nzones; i++)
        if (strcmp(zones[i]->name, name) == 0) {
            zones[i] = z;
            return z;
        }
    zones[nzones++] = z;
    return z;
}

struct zone *zone_at(size_t i)
{
    return i < nzones ? zones[i] : NULL;
}

const char *zone_name(const struct zone *z)
{
    return z->name;
}

uint64_t zone_bytes(const struct zone *z)
{
    return z->bytes;
}

uint64_t zone_max_entry(const struct zone *z)
{
    return (uint64_t)z->nblocks * STORE_BLOCK / 2;
}

/* ---- entries, under the lock ------------------------------------------------ */

static void lru_unlink(struct zone *z, uint32_t i)
{
    struct entry *e = &entries(z)[i];
    if (e->lru_prev != NONE)
        entries(z)[e->lru_prev].lru_next = e->lru_next;
    else
        z->lru_new = e->lru_next;
    if (e->lru_next != NONE)
        entries(z)[e->lru_next].lru_prev = e->lru_prev;
    else
        z->lru_old = e->lru_prev;
    e->lru_prev = e->lru_next = NONE;
}

static void lru_push(struct zone *z, uint32_t i)
{
    struct entry *e = &entries(z)[i];
    e->lru_prev = NONE;
    e->lru_next = z->lru_new;
    if (z->lru_new != NONE)
        entries(z)[z->lru_new].lru_prev = i;
    z->lru_new = i;
    if (z->lru_old == NONE)
        z->lru_old = i;
}

static void free_entry(struct zone *z, uint32_t i)
{
    struct entry *e = &entries(z)[i];
    /* Its chain goes back to the free list whole. */
    if (e->nblocks) {
        uint32_t last = e->first;
        while (links(z)[last] != NONE)
            last = links(z)[last];
        links(z)[last] = z->free_block;
        z->free_block = e->first;
        z->nfree += e->nblocks;
        z->stats.bytes_used -= (uint64_t)e->nblocks * STORE_BLOCK;
    }
    memset(e, 0, sizeof *e);
    e->hnext = z->free_entry;
    z->free_entry = i;
}

/* Makes the entry unfindable; frees it now if nobody reads it. */
static void unlink_entry(struct zone *z, uint32_t i)
{
    struct entry *e = &entries(z)[i];
    uint32_t *at = &buckets(z)[e->hash % z->nbuckets];
    while (*at != NONE && *at != i)
        at = &entries(z)[*at].hnext;
    if (*at == i)
        *at = e->hnext;
    lru_unlink(z, i);
    e->linked = false;
    z->stats.entries--;
    if (e->refs == 0)
        free_entry(z, i);
}

/* Copies n bytes from the entry's chain at offset `at` into out. */
static void chain_read(struct zone *z, const struct entry *e, uint64_t at, char *out, size_t n)
{
    uint32_t b = e->first;
    while (at >= STORE_BLOCK) {
        b = links(z)[b];
        at -= STORE_BLOCK;
    }
    while (n) {
        size_t take = STORE_BLOCK - at < n ? STORE_BLOCK - at : n;
        memcpy(out, block(z, b) + at, take);
        out += take;
        n -= take;
        at = 0;
        b = links(z)[b];
    }
}

static bool key_is(struct zone *z, const struct entry *e, const char *key, size_t n)
{
    if (e->key_len != n)
        return false;
    char tmp[STORE_KEY_MAX];
    chain_read(z, e, 0, tmp, n);
    return memcmp(tmp, key, n) == 0;
}

int store_lookup(struct zone *z, const char *key, size_t key_len,
                 bool (*match)(const char *vary, size_t len, void *arg), void *arg,
                 struct buf *copy, struct store_hit *hit)
{
    if (key_len > STORE_KEY_MAX)
        return -1;
    uint64_t h = hash_key(key, key_len);
    int rc = -1;
    char vary[STORE_VARY_MAX + 1];
    lock(z);
    for (uint32_t i = buckets(z)[h % z->nbuckets]; i != NONE; i = entries(z)[i].hnext) {
        struct entry *e = &entries(z)[i];
        if (e->hash != h || !key_is(z, e, key, key_len))
            continue;
        chain_read(z, e, e->key_len, vary, e->vary_len);
        vary[e->vary_len] = '\0';
        rc = -2;
        if (!match(vary, e->vary_len, arg))
            continue;
        e->refs++;
        lru_unlink(z, i);
        lru_push(z, i);
        hit->index = i;
        hit->meta = e->meta;
        hit->key_len = e->key_len;
        hit->vary_len = e->vary_len;
        hit->head_len = e->head_len;
        hit->body_len = e->body_len;
        size_t n = (size_t)e->key_len + e->vary_len + e->head_len;
        buf_reset(copy);
        buf_reserve(copy, n + 3);
        chain_read(z, e, 0, copy->p, n);
        unlock(z);
        /* Each part NUL-terminated, in the order stored. */
        memmove(copy->p + e->key_len + 1 + e->vary_len + 1, copy->p + e->key_len + e->vary_len,
                hit->head_len);
        memmove(copy->p + e->key_len + 1, copy->p + e->key_len, hit->vary_len);
        hit->key = copy->p;
        hit->vary = copy->p + hit->key_len + 1;
        hit->head = hit->vary + hit->vary_len + 1;
        hit->key[hit->key_len] = hit->vary[hit->vary_len] = hit->head[hit->head_len] = '\0';
        copy->len = n + 3;
        return 0;
    }
    unlock(z);
    return rc;
}

bool store_body_piece(struct zone *z, const struct store_hit *hit, size_t n, const char **p,
                      size_t *len)
{
    /* The chain of a held entry does not change: read without the lock. */
    const struct entry *e = &entries(z)[hit->index];
    uint64_t start = (uint64_t)hit->key_len + hit->vary_len + hit->head_len;
    uint64_t end = start + hit->body_len;
    uint64_t first_block = start / STORE_BLOCK;
    uint64_t b_index = first_block + n;
    if (b_index * STORE_BLOCK >= end || hit->body_len == 0)
        return false;
    uint32_t b = e->first;
    for (uint64_t i = 0; i < b_index; i++)
        b = links(z)[b];
    uint64_t from = n == 0 ? start % STORE_BLOCK : 0;
    uint64_t to = end - b_index * STORE_BLOCK;
    if (to > STORE_BLOCK)
        to = STORE_BLOCK;
    *p = block(z, b) + from;
    *len = (size_t)(to - from);
    return true;
}

void store_hold(struct zone *z, uint32_t index)
{
    lock(z);
    entries(z)[index].refs++;
    unlock(z);
}

void store_release(struct zone *z, uint32_t index)
{
    lock(z);
    struct entry *e = &entries(z)[index];
    if (e->refs && --e->refs == 0 && !e->linked)
        free_entry(z, index);
    unlock(z);
}

/* Frees the oldest entry nobody reads; false if none. */
static bool evict_one(struct zone *z)
{
    for (uint32_t i = z->lru_old; i != NONE; i = entries(z)[i].lru_prev)
        if (entries(z)[i].refs == 0) {
            unlink_entry(z, i);
            z->stats.evictions++;
            return true;
        }
    return false;
}

static void chain_write(struct zone *z, uint32_t first, uint64_t *at, const char *p, uint64_t n)
{
    while (n) {
        uint32_t b = first;
        for (uint64_t k = *at / STORE_BLOCK; k; k--)
            b = links(z)[b];
        uint64_t off = *at % STORE_BLOCK;
        uint64_t take = STORE_BLOCK - off < n ? STORE_BLOCK - off : n;
        memcpy(block(z, b) + off, p, take);
        p += take;
        n -= take;
        *at += take;
    }
}

bool store_insert(struct zone *z, const char *key, size_t key_len, const char *vary,
                  size_t vary_len, const char *head, size_t head_len, const char *body,
                  uint64_t body_len, const struct store_meta *meta)
{
    if (key_len > STORE_KEY_MAX || vary_len > STORE_VARY_MAX || head_len > STORE_HEAD_MAX)
        return false;
    uint64_t total = key_len + vary_len + head_len + body_len;
    if (total > zone_max_entry(z))
        return false;
    uint32_t need = (uint32_t)((total + STORE_BLOCK - 1) / STORE_BLOCK);
    if (need == 0)
        need = 1;
    uint64_t h = hash_key(key, key_len);
    char old_vary[STORE_VARY_MAX];
    lock(z);
    /* The same variant goes first. */
    for (uint32_t i = buckets(z)[h % z->nbuckets], next; i != NONE; i = next) {
        struct entry *e = &entries(z)[i];
        next = e->hnext;
        if (e->hash != h || e->vary_len != vary_len || !key_is(z, e, key, key_len))
            continue;
        chain_read(z, e, e->key_len, old_vary, vary_len);
        if (vary_len == 0 || memcmp(old_vary, vary, vary_len) == 0)
            unlink_entry(z, i);
    }
    while ((z->nfree < need || z->free_entry == NONE) && evict_one(z))
        ;
    if (z->nfree < need || z->free_entry == NONE) {
        unlock(z);
        return false;
    }
    uint32_t i = z->free_entry;
    struct entry *e = &entries(z)[i];
    z->free_entry = e->hnext;
    memset(e, 0, sizeof *e);
    /* `need` blocks off the free list, in order. */
    e->first = z->free_block;
    uint32_t last = e->first;
    for (uint32_t k = 1; k < need; k++)
        last = links(z)[last];
    z->free_block = links(z)[last];
    links(z)[last] = NONE;
    z->nfree -= need;
    e->nblocks = need;
    e->hash = h;
    e->used = e->linked = true;
    e->key_len = (uint32_t)key_len;
    e->vary_len = (uint32_t)vary_len;
    e->head_len = (uint32_t)head_len;
    e->body_len = body_len;
    e->meta = *meta;
    uint64_t at = 0;
    chain_write(z, e->first, &at, key, key_len);
    chain_write(z, e->first, &at, vary, vary_len);
    chain_write(z, e->first, &at, head, head_len);
    chain_write(z, e->first, &at, body, body_len);
    uint32_t *bucket = &buckets(z)[h % z->nbuckets];
    e->hnext = *bucket;
    *bucket = i;
    e->lru_prev = e->lru_next = NONE;
    lru_push(z, i);
    z->stats.stores++;
    z->stats.entries++;
    z->stats.bytes_used += (uint64_t)need * STORE_BLOCK;
    unlock(z);
    return true;
}

unsigned store_remove(struct zone *z, const char *key, size_t key_len)
{
    if (key_len > STORE_KEY_MAX)
        return 0;
    uint64_t h = hash_key(key, key_len);
    unsigned n = 0;
    lock(z);
    for (uint32_t i = buckets(z)[h % z->nbuckets], next; i != NONE; i = next) {
        struct entry *e = &entries(z)[i];
        next = e->hnext;
        if (e->hash == h && key_is(z, e, key, key_len)) {
            unlink_entry(z, i);
            n++;
        }
    }
    z->stats.invalidations += n;
    unlock(z);
    return n;
}

unsigned store_count_use(struct zone *z, const char *key, size_t key_len)
{
    uint64_t h = hash_key(key, key_len);
    lock(z);
    struct use_slot *s = &z->uses[h % USE_SLOTS];
    if (s->hash != h) {
        s->hash = h;
        s->count = 0;
    }
    unsigned n = ++s->count;
    unlock(z);
    return n;
}

void store_count(struct zone *z, bool hit)
{
    lock(z);
    if (hit)
        z->stats.hits++;
    else
        z->stats.misses++;
    unlock(z);
}

void store_stats(struct zone *z, struct zone_stats *out)
{
    lock(z);
    *out = z->stats;
    unlock(z);
}

bool store_flight_claim(struct zone *z, const char *key, size_t key_len, uint64_t now,
                        uint64_t until)
{
    uint64_t h = hash_key(key, key_len);
    struct flight *free_slot = NULL;
    bool mine = true;
    lock(z);
    for (unsigned i = 0; i < FLIGHT_SLOTS; i++) {
        struct flight *f = &z->flights[(h + i) % FLIGHT_SLOTS];
        if (f->until <= now) {
            if (!free_slot)
                free_slot = f;
            continue;
        }
        if (f->hash == h) {
            mine = false;
            break;
        }
    }
    /* With every slot taken nobody waits: the fetch goes on unmarked. */
    if (mine && free_slot)
        *free_slot = (struct flight){h, until};
    unlock(z);
    return mine;
}

void store_flight_done(struct zone *z, const char *key, size_t key_len)
{
    uint64_t h = hash_key(key, key_len);
    lock(z);
    for (unsigned i = 0; i < FLIGHT_SLOTS; i++) {
        struct flight *f = &z->flights[(h + i) % FLIGHT_SLOTS];
        if (f->until && f->hash == h) {
            f->until = 0;
            break;
        }
    }
    unlock(z);
}
