/* The store of a cache zone (store.h): one anonymous shared mapping per
 * zone, laid out as a header, the hash buckets, the entry records, the
 * block chain links and the blocks.  A memory zone keeps whole entries in
 * its blocks; a disk zone keeps there only the key, the variant and the
 * head of each entry (its index), and each entry whole in a file
 * (disk.c).  One process-shared robust mutex per zone guards all of it;
 * what is done under it is bounded (a copy of at most one entry's
 * blocks, a rename or an unlink).  A process that dies holding it leaves
 * the zone to the next one that takes it, which rebuilds the lists from
 * the entry records first (repair). */
#include "cache/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cache/disk.h"

#define NONE UINT32_MAX
#define NAME_LEN 64
#define USE_SLOTS 1024

struct entry {
    uint64_t hash;
    uint32_t hnext;              /* next in its bucket */
    uint32_t lru_prev, lru_next; /* toward the newest, toward the oldest */
    uint32_t first, nblocks;
    uint32_t refs;
    bool used;           /* the record holds an entry (linked or doomed) */
    bool body_in_blocks; /* a disk zone's small body, kept in its index block too */
    bool linked;         /* findable; false: doomed, freed with its last reference */
    /* A growing entry (store_open): its body (body_len bytes so far)
     * still appended by `writer`, its chain ending at block `last`;
     * failed: abandoned, its readers stop. */
    bool growing, failed;
    pid_t writer;
    uint32_t last;
    uint64_t stated;
    uint32_t key_len, vary_len, head_len;
    uint64_t body_len;
    struct store_meta meta;
    /* A disk zone's: the file's name, its size and what it counts for
     * (for a growing entry: the room reserved so far). */
    uint64_t name_hash, serial, file_size, file_bytes;
    /* A disk zone's growing entry: its file is DIR/tmp/WRITER.TMP_ID
     * until renamed (in_tmp), its body at body_off; fd and body_sum (the
     * body's checksum so far) are its writer's, meaningful in that
     * process only. */
    bool in_tmp;
    unsigned tmp_id;
    int fd;
    uint64_t body_off, body_sum;
};

struct use_slot {
    uint64_t hash;
    uint32_t count;
};

/* A key being fetched by some worker, until `until` at the latest, or
 * while the entry `growing` (NONE: none) its fetch opened grows. */
#define FLIGHT_SLOTS 256
struct flight {
    uint64_t hash;
    uint64_t until;
    uint32_t growing;
};

struct zone {
    pthread_mutex_t lock;
    char name[NAME_LEN];
    uint64_t bytes;
    /* A disk zone: its directory, its size, whether files are flushed. */
    bool disk, sync;
    char path[DISK_NAME_MAX];
    /* disk_reserved: room taken by stores writing their files, which a
     * repair cannot count again. */
    uint64_t disk_bytes, disk_used, disk_reserved;
    _Atomic uint64_t next_serial;
    /* The load of a disk zone's files by the workers: the next directory
     * to claim, how many are done, the highest serial found at the start
     * (newer files are this run's), and what it found. */
    struct {
        uint32_t next, done;
        uint64_t floor, started_ms;
        struct disk_read_counts counts;
        pid_t owner[DISK_DIRS]; /* the worker reading each claimed directory */
        bool finished[DISK_DIRS];
    } load;
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

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void repair(struct zone *z);
static bool flight_busy(struct zone *z, struct flight *f, uint64_t now);
static bool reclaim_one(struct zone *z);
static struct flight *flight_of(struct zone *z, uint32_t i);
static struct flight *stop_growing(struct zone *z, uint32_t i, bool failed);

static void lock(struct zone *z)
{
    int rc = pthread_mutex_lock(&z->lock);
    if (rc == EOWNERDEAD) {
        repair(z);
        pthread_mutex_consistent(&z->lock);
    } else if (rc != 0) {
        abort(); /* ENOTRECOVERABLE: a repair itself died; nothing to trust */
    }
}

static void unlock(struct zone *z)
{
    pthread_mutex_unlock(&z->lock);
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
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&z->lock, &attr);
    pthread_mutexattr_destroy(&attr);
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
    for (unsigned i = 0; i < FLIGHT_SLOTS; i++)
        z->flights[i].growing = NONE;
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

static bool adopt(const struct disk_entry *e, const char *key, const char *vary, const char *head,
                  void *arg);

static bool same_disk(const struct zone *z, const struct zone_disk *disk)
{
    if (!disk)
        return !z->disk;
    return z->disk && strcmp(z->path, disk->path) == 0 && z->disk_bytes == disk->bytes &&
           z->sync == disk->sync;
}

/* A disk zone's directory made ready and, unless another verbd has it
 * (then only checked: verbd -t beside a running server), its files
 * loaded into the index. */
static bool open_disk(struct zone *z, const struct zone_disk *disk, enum zone_when when, char *err,
                      size_t errlen)
{
    char why[DISK_NAME_MAX + 128];
    bool moved[DISK_DIRS];
    z->load.next = z->load.done = DISK_DIRS; /* nothing to load, unless below */
    if (disk_prepare(disk->path, disk->uid, disk->gid, moved, why, sizeof why) < 0) {
        snprintf(err, errlen, "cache_zone %s: %s", z->name, why);
        return false;
    }
    z->disk = true;
    z->sync = disk->sync;
    snprintf(z->path, sizeof z->path, "%s", disk->path);
    z->disk_bytes = disk->bytes;
    z->next_serial = 1;
    if (disk_lock(disk->path, why, sizeof why) < 0) {
        if (when == ZONE_CHECK)
            return true;
        snprintf(err, errlen, "cache_zone %s: %s", z->name, why);
        return false;
    }
    /* The lock's descriptor stays open for the life of this process and
     * its workers.  Only names are read now; the workers load the files
     * (store_load_step). */
    if (when == ZONE_CHECK)
        return true;
    uint64_t max_serial;
    unsigned removed = disk_scan(z->path, moved, disk->uid, disk->gid, &max_serial);
    if (removed)
        fprintf(stderr, "verbd: cache_zone %s: %u file%s of %s removed (unfinished or misnamed)\n",
                z->name, removed, removed == 1 ? "" : "s", z->path);
    z->next_serial = max_serial + 1;
    z->load.floor = max_serial;
    z->load.next = z->load.done = 0;
    z->load.started_ms = now_ms();
    return true;
}

struct zone *zone_get_disk(const char *name, uint64_t bytes, const struct zone_disk *disk,
                           enum zone_when when, char *err, size_t errlen)
{
    if (strlen(name) >= NAME_LEN) {
        snprintf(err, errlen, "cache_zone: the name \"%s\" is too long", name);
        return NULL;
    }
    for (size_t i = 0; i < nzones; i++)
        if (strcmp(zones[i]->name, name) == 0 && zones[i]->bytes == bytes &&
            same_disk(zones[i], disk))
            return zones[i];
    for (size_t i = 0; i < nzones; i++)
        if (strcmp(zones[i]->name, name) == 0 && (disk || zones[i]->disk)) {
            snprintf(err, errlen,
                     "cache_zone %s: a disk zone keeps its memory, path, disk and fsync until "
                     "verbd restarts",
                     name);
            return NULL;
        }
    if (disk && when == ZONE_RELOAD) {
        snprintf(err, errlen, "cache_zone %s: a disk zone is added only when verbd starts", name);
        return NULL;
    }
    if (nzones == ZONES_MAX) {
        snprintf(err, errlen, "cache_zone: at most %d zones", ZONES_MAX);
        return NULL;
    }
    if (disk && disk->bytes < 1024 * 1024) {
        snprintf(err, errlen, "cache_zone %s: disk= is at least 1m", name);
        return NULL;
    }
    struct zone *z = zone_make(name, bytes);
    if (!z) {
        snprintf(err, errlen, "cache_zone %s: no %llu bytes of memory to be had (at least 128k)",
                 name, (unsigned long long)bytes);
        return NULL;
    }
    if (disk && !open_disk(z, disk, when, err, errlen)) {
        munmap(z, z->blocks_at + (size_t)z->nblocks * STORE_BLOCK);
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

struct zone *zone_get(const char *name, uint64_t bytes, char *err, size_t errlen)
{
    return zone_get_disk(name, bytes, NULL, ZONE_START, err, errlen);
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
    return z->disk ? z->disk_bytes / 2 : (uint64_t)z->nblocks * STORE_BLOCK / 2;
}

const char *zone_path(const struct zone *z)
{
    return z->disk ? z->path : NULL;
}

uint64_t zone_disk_bytes(const struct zone *z)
{
    return z->disk ? z->disk_bytes : 0;
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

static void entry_path(const struct zone *z, const struct entry *e, bool doomed, char *out,
                       size_t outlen)
{
    if (e->in_tmp)
        disk_tmp_path(out, outlen, z->path, e->writer, e->tmp_id);
    else
        disk_path(out, outlen, z->path, e->name_hash, e->serial, doomed);
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
    if (z->disk) {
        char path[DISK_NAME_MAX];
        entry_path(z, e, !e->linked, path, sizeof path);
        unlink(path);
        z->disk_used -= e->file_bytes;
    }
    memset(e, 0, sizeof *e);
    e->hnext = z->free_entry;
    z->free_entry = i;
}

/* Makes the entry unfindable; frees it now if nobody reads it.  A disk
 * entry still being read keeps its file under a name no load takes
 * (its readers have it open, or open it by that name). */
static void unlink_entry(struct zone *z, uint32_t i)
{
    struct entry *e = &entries(z)[i];
    uint32_t *at = &buckets(z)[e->hash % z->nbuckets];
    while (*at != NONE && *at != i)
        at = &entries(z)[*at].hnext;
    if (*at == i)
        *at = e->hnext;
    lru_unlink(z, i);
    z->stats.entries--;
    if (e->refs == 0) {
        free_entry(z, i);
        return;
    }
    if (z->disk) {
        char live[DISK_NAME_MAX], doomed[DISK_NAME_MAX];
        entry_path(z, e, false, live, sizeof live);
        entry_path(z, e, true, doomed, sizeof doomed);
        rename(live, doomed);
    }
    e->linked = false;
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

/* Takes a reference on entry i for a hit and copies its key, variant and
 * head into `copy` (under the lock; split_hit then, without it). */
static void hold_hit(struct zone *z, uint32_t i, struct buf *copy, struct store_hit *hit)
{
    struct entry *e = &entries(z)[i];
    e->refs++;
    hit->index = i;
    hit->meta = e->meta;
    hit->key_len = e->key_len;
    hit->vary_len = e->vary_len;
    hit->head_len = e->head_len;
    hit->body_len = e->body_len;
    hit->body_in_file = z->disk && !e->body_in_blocks;
    hit->stated = e->growing ? e->stated : e->body_len;
    size_t n = (size_t)e->key_len + e->vary_len + e->head_len;
    buf_reset(copy);
    buf_reserve(copy, n + 3);
    chain_read(z, e, 0, copy->p, n);
    copy->len = n + 3;
}

/* Each part of a hit's copy NUL-terminated, in the order stored. */
static void split_hit(struct buf *copy, struct store_hit *hit)
{
    memmove(copy->p + hit->key_len + 1 + hit->vary_len + 1, copy->p + hit->key_len + hit->vary_len,
            hit->head_len);
    memmove(copy->p + hit->key_len + 1, copy->p + hit->key_len, hit->vary_len);
    hit->key = copy->p;
    hit->vary = copy->p + hit->key_len + 1;
    hit->head = hit->vary + hit->vary_len + 1;
    hit->key[hit->key_len] = hit->vary[hit->vary_len] = hit->head[hit->head_len] = '\0';
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
        lru_unlink(z, i);
        lru_push(z, i);
        hold_hit(z, i, copy, hit);
        unlock(z);
        split_hit(copy, hit);
        return 0;
    }
    unlock(z);
    return rc;
}

bool store_body_next(struct zone *z, const struct store_hit *hit, struct store_walk *w,
                     const char **p, size_t *len)
{
    if (hit->body_in_file || w->at >= hit->body_len)
        return false;
    /* The chain of a held entry does not change up to hit->body_len (a
     * growing one only grows past it): read without the lock. */
    const struct entry *e = &entries(z)[hit->index];
    uint64_t at = (uint64_t)hit->key_len + hit->vary_len + hit->head_len + w->at;
    uint64_t off = at % STORE_BLOCK;
    uint32_t b = w->block;
    if (w->at == 0) {
        b = e->first;
        for (uint64_t i = at / STORE_BLOCK; i; i--)
            b = links(z)[b];
    } else if (off == 0) {
        b = links(z)[b];
    }
    uint64_t take = STORE_BLOCK - off;
    if (take > hit->body_len - w->at)
        take = hit->body_len - w->at;
    *p = block(z, b) + off;
    *len = (size_t)take;
    w->block = b;
    w->at += take;
    return true;
}

bool store_on_disk(const struct zone *z)
{
    return z->disk;
}

int store_body_file(struct zone *z, const struct store_hit *hit, uint64_t *offset)
{
    if (!z->disk)
        return -1;
    /* Opened under the lock: a held entry's file is under one of its two
     * names, and only the lock's holder moves it. */
    char path[DISK_NAME_MAX];
    lock(z);
    const struct entry *e = &entries(z)[hit->index];
    entry_path(z, e, !e->linked, path, sizeof path);
    *offset = e->in_tmp ? e->body_off : e->file_size - e->body_len;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unlock(z);
    return fd;
}

bool store_body_copy(struct zone *z, const struct store_hit *hit, struct buf *out)
{
    buf_reset(out);
    if (!hit->body_in_file) {
        const char *p;
        size_t len;
        struct store_walk w = {0};
        while (store_body_next(z, hit, &w, &p, &len))
            buf_append(out, p, len);
        return true;
    }
    uint64_t at;
    int fd = store_body_file(z, hit, &at);
    if (fd < 0)
        return false;
    buf_reserve(out, (size_t)hit->body_len + 1);
    bool ok = true;
    while (ok && out->len < hit->body_len) {
        ssize_t r = pread(fd, out->p + out->len, (size_t)(hit->body_len - out->len),
                          (off_t)(at + out->len));
        ok = r > 0 || (r < 0 && errno == EINTR);
        if (r > 0)
            out->len += (size_t)r;
    }
    close(fd);
    return ok;
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
    return reclaim_one(z);
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

/* Unlinks the entries of the key's same variant (under the lock);
 * `serial`: keeps them instead, returning false, if one is newer (a
 * load meeting two files of a variant). */
static bool drop_variant(struct zone *z, uint64_t h, const char *key, size_t key_len,
                         const char *vary, size_t vary_len, uint64_t serial)
{
    char old_vary[STORE_VARY_MAX];
    for (uint32_t i = buckets(z)[h % z->nbuckets], next; i != NONE; i = next) {
        struct entry *e = &entries(z)[i];
        next = e->hnext;
        if (e->hash != h || e->vary_len != vary_len || !key_is(z, e, key, key_len))
            continue;
        chain_read(z, e, e->key_len, old_vary, vary_len);
        if (vary_len == 0 || memcmp(old_vary, vary, vary_len) == 0) {
            if (serial && e->serial > serial)
                return false;
            unlink_entry(z, i);
        }
    }
    return true;
}

static uint64_t disk_units(uint64_t file_size)
{
    return (file_size + STORE_BLOCK - 1) & ~(uint64_t)(STORE_BLOCK - 1);
}

/* Takes an entry record and the blocks for `chain` bytes, evicting to
 * make room (under the lock); the record, unlinked and not yet used, or
 * NONE. */
static uint32_t take_entry(struct zone *z, uint64_t chain)
{
    uint32_t need = (uint32_t)((chain + STORE_BLOCK - 1) / STORE_BLOCK);
    if (need == 0)
        need = 1;
    while ((z->nfree < need || z->free_entry == NONE) && evict_one(z))
        ;
    if (z->nfree < need || z->free_entry == NONE)
        return NONE;
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
    e->used = true;
    e->lru_prev = e->lru_next = NONE;
    z->stats.bytes_used += (uint64_t)need * STORE_BLOCK;
    return i;
}

/* Makes a record filled in findable (under the lock): the last step, so
 * that a repair finds only whole entries linked. */
static void link_entry(struct zone *z, uint32_t i)
{
    struct entry *e = &entries(z)[i];
    uint32_t *bucket = &buckets(z)[e->hash % z->nbuckets];
    e->hnext = *bucket;
    *bucket = i;
    lru_push(z, i);
    e->linked = true;
    z->stats.entries++;
}

static void fill(struct zone *z, struct entry *e, uint64_t h, const char *key, size_t key_len,
                 const char *vary, size_t vary_len, const char *head, size_t head_len,
                 uint64_t body_len, const struct store_meta *meta)
{
    e->hash = h;
    e->key_len = (uint32_t)key_len;
    e->vary_len = (uint32_t)vary_len;
    e->head_len = (uint32_t)head_len;
    e->body_len = body_len;
    e->meta = *meta;
    uint64_t at = 0;
    chain_write(z, e->first, &at, key, key_len);
    chain_write(z, e->first, &at, vary, vary_len);
    chain_write(z, e->first, &at, head, head_len);
}

/* A file found by the load at start. */
static bool adopt(const struct disk_entry *d, const char *key, const char *vary, const char *head,
                  void *arg)
{
    struct zone *z = arg;
    uint64_t h = hash_key(key, d->key_len);
    uint64_t units = disk_units(d->file_size);
    if (units > z->disk_bytes / 2)
        return false;
    bool kept = false;
    lock(z);
    if (d->serial >= z->next_serial)
        z->next_serial = d->serial + 1;
    if (!drop_variant(z, h, key, d->key_len, vary, d->vary_len, d->serial))
        goto out;
    while (z->disk_used + units > z->disk_bytes && evict_one(z))
        ;
    if (z->disk_used + units > z->disk_bytes)
        goto out;
    uint32_t i = take_entry(z, (uint64_t)d->key_len + d->vary_len + d->head_len);
    if (i == NONE)
        goto out;
    struct entry *e = &entries(z)[i];
    fill(z, e, h, key, d->key_len, vary, d->vary_len, head, d->head_len, d->body_len, &d->meta);
    e->name_hash = d->name_hash;
    e->serial = d->serial;
    e->file_size = d->file_size;
    e->file_bytes = units;
    z->disk_used += units;
    link_entry(z, i);
    kept = true;
out:
    unlock(z);
    return kept;
}

/* Directory `sub` loaded; true if it was the last (under the lock). */
static bool finish_dir(struct zone *z, uint32_t sub)
{
    z->load.finished[sub] = true;
    return ++z->load.done == DISK_DIRS;
}

static bool dir_done(struct zone *z, uint32_t sub)
{
    lock(z);
    bool last = finish_dir(z, sub);
    unlock(z);
    return last;
}

/* The directories claimed by a worker that died before it finished them
 * count as done (their other files wait for the next start); true if
 * that ends the load (under the lock). */
static bool orphans_done(struct zone *z)
{
    bool last = false;
    for (uint32_t d = 0; d < DISK_DIRS; d++)
        if (z->load.owner[d] && !z->load.finished[d] && kill(z->load.owner[d], 0) < 0 &&
            errno == ESRCH)
            last = finish_dir(z, d) || last;
    return last;
}

/* This process's reader of the directory it claimed, per zone. */
static struct disk_reader readers[ZONES_MAX];

static struct disk_reader *reader_of(const struct zone *z)
{
    for (size_t i = 0; i < nzones; i++)
        if (zones[i] == z)
            return &readers[i];
    return NULL;
}

enum store_load store_load_step(struct zone *z, unsigned budget)
{
    struct disk_reader *r = reader_of(z);
    if (!z->disk || !r)
        return STORE_LOAD_NONE;
    while (!r->d) {
        lock(z);
        uint32_t sub = z->load.next < DISK_DIRS ? z->load.next++ : DISK_DIRS;
        bool last = false;
        if (sub < DISK_DIRS)
            z->load.owner[sub] = getpid();
        else
            last = z->load.done < DISK_DIRS && orphans_done(z);
        unlock(z);
        if (sub == DISK_DIRS)
            return last ? STORE_LOAD_FINISHED : STORE_LOAD_NONE;
        if (!disk_reader_open(r, z->path, sub) && dir_done(z, sub))
            return STORE_LOAD_FINISHED;
    }
    struct disk_read_counts counts = {0};
    uint32_t sub = r->sub;
    bool more = disk_reader_next(r, z->load.floor, budget, adopt, z, &counts);
    lock(z);
    z->load.counts.kept += counts.kept;
    z->load.counts.removed += counts.removed;
    unlock(z);
    return !more && dir_done(z, sub) ? STORE_LOAD_FINISHED : STORE_LOAD_MORE;
}

void store_load_finish(struct zone *z)
{
    struct disk_reader *r = reader_of(z);
    while (r && r->d)
        store_load_step(z, 1024);
}

bool store_loading(struct zone *z)
{
    struct zone_stats st;
    store_stats(z, &st);
    return st.loading;
}

void store_load_counts(struct zone *z, uint64_t *kept, uint64_t *removed, uint64_t *ms)
{
    lock(z);
    *kept = z->load.counts.kept;
    *removed = z->load.counts.removed;
    *ms = now_ms() - z->load.started_ms;
    unlock(z);
}

/* A disk zone's insert: room on the disk is reserved first, the file is
 * written (and flushed) without the lock, then renamed into place and
 * indexed under it. */
static bool insert_disk(struct zone *z, const char *key, size_t key_len, const char *vary,
                        size_t vary_len, const char *head, size_t head_len, const char *body,
                        uint64_t body_len, const struct store_meta *meta)
{
    uint64_t reserved = disk_units(key_len + vary_len + head_len + body_len + 1024);
    if (reserved > z->disk_bytes / 2)
        return false;
    lock(z);
    while (z->disk_used + z->disk_reserved + reserved > z->disk_bytes && evict_one(z))
        ;
    bool room = z->disk_used + z->disk_reserved + reserved <= z->disk_bytes;
    if (room)
        z->disk_reserved += reserved;
    unlock(z);
    if (!room)
        return false;
    struct disk_entry d = {.key_len = (uint32_t)key_len,
                           .vary_len = (uint32_t)vary_len,
                           .head_len = (uint32_t)head_len,
                           .body_len = body_len,
                           .serial = atomic_fetch_add(&z->next_serial, 1),
                           .name_hash = disk_hash(key, key_len, vary, vary_len),
                           .meta = *meta};
    char tmp[DISK_NAME_MAX], path[DISK_NAME_MAX];
    d.file_size = disk_write(z->path, &d, key, vary, head, body, z->sync, tmp, sizeof tmp);
    uint64_t h = hash_key(key, key_len);
    bool stored = false;
    lock(z);
    z->disk_reserved -= reserved < z->disk_reserved ? reserved : z->disk_reserved;
    if (!d.file_size)
        goto out;
    drop_variant(z, h, key, key_len, vary, vary_len, 0);
    /* A body that fits the index's block beside the key, variant and head
     * is kept there too: its hits need no file. */
    uint64_t front = key_len + vary_len + head_len;
    bool in_blocks = front + body_len <= STORE_BLOCK;
    uint32_t i = take_entry(z, front + (in_blocks ? body_len : 0));
    if (i == NONE)
        goto out;
    struct entry *e = &entries(z)[i];
    fill(z, e, h, key, key_len, vary, vary_len, head, head_len, body_len, meta);
    if (in_blocks)
        chain_write(z, e->first, &front, body, body_len);
    e->body_in_blocks = in_blocks;
    e->name_hash = d.name_hash;
    e->serial = d.serial;
    e->file_size = d.file_size;
    e->file_bytes = disk_units(d.file_size);
    z->disk_used += e->file_bytes;
    entry_path(z, e, false, path, sizeof path);
    if (rename(tmp, path) < 0) {
        e->linked = true; /* free_entry: no file to remove under the doomed name */
        free_entry(z, i);
        goto out;
    }
    link_entry(z, i);
    z->stats.stores++;
    stored = true;
out:
    unlock(z);
    if (!stored && d.file_size)
        unlink(tmp);
    if (stored && z->sync)
        disk_sync_dir(path);
    return stored;
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
    if (z->disk)
        return insert_disk(z, key, key_len, vary, vary_len, head, head_len, body, body_len, meta);
    uint64_t h = hash_key(key, key_len);
    lock(z);
    drop_variant(z, h, key, key_len, vary, vary_len, 0);
    uint32_t i = take_entry(z, total);
    if (i == NONE) {
        unlock(z);
        return false;
    }
    struct entry *e = &entries(z)[i];
    fill(z, e, h, key, key_len, vary, vary_len, head, head_len, body_len, meta);
    uint64_t at = (uint64_t)key_len + vary_len + head_len;
    chain_write(z, e->first, &at, body, body_len);
    link_entry(z, i);
    z->stats.stores++;
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
    out->disk_used = z->disk_used + z->disk_reserved;
    out->disk_bytes = z->disk_bytes;
    out->loading = z->load.done < DISK_DIRS;
    unlock(z);
}

/* ---- growing entries: collapsed forwarding, streamed ---------------------- */

static bool writer_gone(const struct entry *e)
{
    return e->growing && kill(e->writer, 0) < 0 && errno == ESRCH;
}

/* The flight whose growing entry is i, or NULL (under the lock). */
static struct flight *flight_of(struct zone *z, uint32_t i)
{
    for (unsigned k = 0; k < FLIGHT_SLOTS; k++) {
        struct flight *f = &z->flights[(entries(z)[i].hash + k) % FLIGHT_SLOTS];
        if (f->growing == i)
            return f;
    }
    return NULL;
}

/* Ends a growing entry, complete (linked already) or failed, and gives
 * its writer's reference back (under the lock); returns its flight. */
static struct flight *stop_growing(struct zone *z, uint32_t i, bool failed)
{
    struct entry *e = &entries(z)[i];
    struct flight *f = flight_of(z, i);
    if (f)
        f->growing = NONE;
    e->growing = false;
    e->failed = failed;
    if (e->refs && --e->refs == 0 && !e->linked)
        free_entry(z, i);
    return f;
}

/* The growing entry of a writer that died is abandoned, and its fetch is
 * no longer in flight (under the lock). */
static void abandon_dead(struct zone *z, uint32_t i)
{
    struct flight *f = stop_growing(z, i, true);
    if (f)
        f->until = 0;
}

/* Whether a flight slot is taken (under the lock): until its time, and
 * while its growing entry grows; that of a writer that died is abandoned
 * here. */
static bool flight_busy(struct zone *z, struct flight *f, uint64_t now)
{
    if (f->growing != NONE && writer_gone(&entries(z)[f->growing]))
        abandon_dead(z, f->growing);
    return f->until > now || f->growing != NONE;
}

/* Abandons the growing entry of a writer that died (under the lock);
 * false if there is none.  Those a flight names are found at once; a
 * disk zone's growing entries no flight names (nobody follows them) by a
 * walk over the records, only once there is nothing else to evict. */
static bool reclaim_one(struct zone *z)
{
    for (unsigned k = 0; k < FLIGHT_SLOTS; k++) {
        struct flight *f = &z->flights[k];
        if (f->growing != NONE && writer_gone(&entries(z)[f->growing])) {
            abandon_dead(z, f->growing);
            return true;
        }
    }
    for (uint32_t i = 0; z->disk && i < z->nblocks; i++)
        if (entries(z)[i].growing && writer_gone(&entries(z)[i])) {
            abandon_dead(z, i);
            return true;
        }
    return false;
}

/* Room under disk= for a growing entry's file with a body of `body`
 * bytes (and, its length not stated, some more, so that it is not asked
 * for at every append), evicting to make it (under the lock). */
#define RESERVE_STEP (256 * 1024)
static bool reserve_disk(struct zone *z, struct entry *e, uint64_t body)
{
    uint64_t want = disk_units(e->body_off + body);
    if (e->stated == STORE_UNSTATED && want + RESERVE_STEP <= z->disk_bytes / 2)
        want += RESERVE_STEP;
    if (want <= e->file_bytes)
        return true;
    uint64_t more = want - e->file_bytes;
    while (z->disk_used + z->disk_reserved + more > z->disk_bytes && evict_one(z))
        ;
    if (z->disk_used + z->disk_reserved + more > z->disk_bytes)
        return false;
    z->disk_used += more;
    e->file_bytes = want;
    return true;
}

static bool close_disk(struct zone *z, uint32_t i);

bool store_open(struct zone *z, const char *key, size_t key_len, const char *vary, size_t vary_len,
                const char *head, size_t head_len, uint64_t stated, const struct store_meta *meta,
                uint32_t *index)
{
    if (key_len > STORE_KEY_MAX || vary_len > STORE_VARY_MAX || head_len > STORE_HEAD_MAX)
        return false;
    uint64_t front = (uint64_t)key_len + vary_len + head_len;
    if (front > zone_max_entry(z) ||
        (stated != STORE_UNSTATED && stated > zone_max_entry(z) - front))
        return false;
    uint64_t h = hash_key(key, key_len);
    /* A disk zone's file is made first, with the key, variant and head
     * in place. */
    struct disk_entry d = {.key_len = (uint32_t)key_len,
                           .vary_len = (uint32_t)vary_len,
                           .head_len = (uint32_t)head_len};
    unsigned tmp_id = 0;
    int fd = -1;
    if (z->disk) {
        d.serial = atomic_fetch_add(&z->next_serial, 1);
        d.name_hash = disk_hash(key, key_len, vary, vary_len);
        fd = disk_begin(z->path, &d, key, vary, head, &tmp_id);
        if (fd < 0)
            return false;
    }
    lock(z);
    /* The caller's flight: marked, with no growing entry yet (a disk
     * zone's answer streams to its file without one: nobody follows it). */
    struct flight *f = NULL;
    for (unsigned k = 0; k < FLIGHT_SLOTS && !f; k++) {
        struct flight *s = &z->flights[(h + k) % FLIGHT_SLOTS];
        if (s->hash == h && s->until && s->growing == NONE)
            f = s;
    }
    uint32_t i = f || z->disk ? take_entry(z, front) : NONE;
    if (i != NONE) {
        struct entry *e = &entries(z)[i];
        fill(z, e, h, key, key_len, vary, vary_len, head, head_len, 0, meta);
        e->growing = true;
        e->writer = getpid();
        e->stated = stated;
        e->refs = 1;
        e->last = e->first;
        for (uint32_t k = 1; k < e->nblocks; k++)
            e->last = links(z)[e->last];
        if (z->disk) {
            e->in_tmp = true;
            e->tmp_id = tmp_id;
            e->fd = fd;
            e->name_hash = d.name_hash;
            e->serial = d.serial;
            e->body_off = disk_body_at(&d, stated);
            e->body_sum = DISK_SUM_START;
            if (!reserve_disk(z, e, stated == STORE_UNSTATED ? 0 : stated)) {
                free_entry(z, i); /* removes the file */
                i = NONE;
            }
        }
        if (i != NONE && f)
            f->growing = i;
    }
    unlock(z);
    if (i == NONE && fd >= 0) {
        char tmp[DISK_NAME_MAX];
        disk_tmp_path(tmp, sizeof tmp, z->path, getpid(), tmp_id);
        unlink(tmp);
    }
    if (i == NONE && fd >= 0)
        close(fd);
    *index = i;
    return i != NONE;
}

/* The writer's descriptor of its growing disk entry, closed (the
 * writer's own calls only). */
static void writer_close(struct zone *z, struct entry *e)
{
    if (z->disk && e->fd >= 0 && e->writer == getpid()) {
        close(e->fd);
        e->fd = -1;
    }
}

/* A disk zone's append: the bytes are written at their place in the file
 * without the lock (room reserved under it first, as the body grows),
 * then counted, so readers only ever see bytes written. */
static bool append_disk(struct zone *z, uint32_t i, const char *p, size_t n)
{
    struct entry *e = &entries(z)[i];
    /* Only the writer changes its growing entry's length. */
    uint64_t front = (uint64_t)e->key_len + e->vary_len + e->head_len;
    bool ok = e->growing && front + e->body_len + n <= zone_max_entry(z) &&
              (e->stated == STORE_UNSTATED || e->body_len + n <= e->stated);
    if (ok && e->body_off + e->body_len + n > e->file_bytes) {
        lock(z);
        ok = reserve_disk(z, e, e->body_len + n);
        unlock(z);
    }
    ok = ok && disk_put(e->fd, e->body_off + e->body_len, p, n);
    if (ok)
        e->body_sum = disk_sum(e->body_sum, p, n);
    lock(z);
    if (ok) {
        e->body_len += n;
    } else if (e->growing) {
        writer_close(z, e);
        stop_growing(z, i, true);
    }
    unlock(z);
    return ok;
}

/* One more block at the end of a growing entry's chain (under the lock). */
static bool grow(struct zone *z, uint32_t i)
{
    while (z->nfree == 0 && evict_one(z))
        ;
    if (z->nfree == 0)
        return false;
    struct entry *e = &entries(z)[i];
    uint32_t b = z->free_block;
    z->free_block = links(z)[b];
    z->nfree--;
    links(z)[b] = NONE;
    links(z)[e->last] = b;
    e->last = b;
    e->nblocks++;
    z->stats.bytes_used += STORE_BLOCK;
    return true;
}

bool store_append(struct zone *z, uint32_t i, const char *p, size_t n)
{
    if (z->disk)
        return append_disk(z, i, p, n);
    lock(z);
    struct entry *e = &entries(z)[i];
    uint64_t at = (uint64_t)e->key_len + e->vary_len + e->head_len + e->body_len;
    bool ok = e->growing && at + n <= zone_max_entry(z) &&
              (e->stated == STORE_UNSTATED || e->body_len + n <= e->stated);
    /* Past what readers were told of (body_len): they never see a byte
     * move or change. */
    while (ok && n) {
        if (at == (uint64_t)e->nblocks * STORE_BLOCK && !(ok = grow(z, i)))
            break;
        uint64_t off = at - (uint64_t)(e->nblocks - 1) * STORE_BLOCK;
        size_t take = STORE_BLOCK - off < n ? (size_t)(STORE_BLOCK - off) : n;
        memcpy(block(z, e->last) + off, p, take);
        p += take;
        n -= take;
        at += take;
        e->body_len += take;
    }
    if (!ok && e->growing)
        stop_growing(z, i, true);
    unlock(z);
    return ok;
}

bool store_close(struct zone *z, uint32_t i)
{
    if (z->disk)
        return close_disk(z, i);
    lock(z);
    struct entry *e = &entries(z)[i];
    bool whole = e->growing && (e->stated == STORE_UNSTATED || e->body_len == e->stated);
    if (whole) {
        char key[STORE_KEY_MAX], vary[STORE_VARY_MAX];
        chain_read(z, e, 0, key, e->key_len);
        chain_read(z, e, e->key_len, vary, e->vary_len);
        drop_variant(z, e->hash, key, e->key_len, vary, e->vary_len, 0);
        link_entry(z, i);
        z->stats.stores++;
    }
    if (e->growing)
        stop_growing(z, i, !whole);
    unlock(z);
    return whole;
}

void store_abandon(struct zone *z, uint32_t i)
{
    lock(z);
    writer_close(z, &entries(z)[i]);
    if (entries(z)[i].growing)
        stop_growing(z, i, true);
    unlock(z);
}

/* Completes a disk zone's growing entry: its header is written last
 * (flushed with fsync=on), then under the lock the file is renamed to
 * its name and the entry indexed.  A body whose length was not stated
 * and came out shorter than a page was put on a page boundary, where the
 * load does not look for it: it is written again, to a new file (readers
 * of the first keep theirs). */
static bool close_disk(struct zone *z, uint32_t i)
{
    struct entry *e = &entries(z)[i];
    bool whole = e->growing && (e->stated == STORE_UNSTATED || e->body_len == e->stated);
    char key[STORE_KEY_MAX], vary[STORE_VARY_MAX], head[STORE_HEAD_MAX];
    chain_read(z, e, 0, key, e->key_len);
    chain_read(z, e, e->key_len, vary, e->vary_len);
    chain_read(z, e, (uint64_t)e->key_len + e->vary_len, head, e->head_len);
    struct disk_entry d = {.key_len = e->key_len,
                           .vary_len = e->vary_len,
                           .head_len = e->head_len,
                           .body_len = e->body_len,
                           .serial = e->serial,
                           .name_hash = e->name_hash,
                           .meta = e->meta};
    char fresh[DISK_NAME_MAX] = "", from[DISK_NAME_MAX], path[DISK_NAME_MAX];
    uint64_t size = disk_body_at(&d, d.body_len) + d.body_len;
    uint64_t front = (uint64_t)d.key_len + d.vary_len + d.head_len;
    /* A body that fits the index's block beside the key, variant and
     * head is kept there too, as insert_disk does. */
    bool in_blocks = front + d.body_len <= STORE_BLOCK;
    bool again = e->body_off != disk_body_at(&d, d.body_len); /* then under a page */
    char small[STORE_BLOCK];
    bool ok = whole && (!(in_blocks || again) || pread(e->fd, small, (size_t)d.body_len,
                                                       (off_t)e->body_off) == (ssize_t)d.body_len);
    if (ok && again) {
        ok = disk_write(z->path, &d, key, vary, head, small, z->sync, fresh, sizeof fresh) == size;
    } else if (ok) {
        ok = disk_end(e->fd, &d, key, vary, head, e->body_sum, z->sync);
    }
    lock(z);
    writer_close(z, e);
    bool stored = ok && e->growing;
    if (stored) {
        drop_variant(z, e->hash, key, e->key_len, vary, e->vary_len, 0);
        /* Under its tmp name until renamed: a process killed in the
         * rename leaves an entry whose file its abandonment removes. */
        entry_path(z, e, false, from, sizeof from);
        disk_path(path, sizeof path, z->path, e->name_hash, e->serial, false);
        uint64_t units = disk_units(size);
        z->disk_used = z->disk_used - e->file_bytes + units;
        e->file_bytes = units;
        e->file_size = size;
        if (rename(fresh[0] ? fresh : from, path) < 0) {
            stored = false;
        } else {
            e->in_tmp = false;
            if (fresh[0])
                unlink(from);
            if (in_blocks)
                chain_write(z, e->first, &front, small, d.body_len);
            e->body_in_blocks = in_blocks;
            link_entry(z, i);
            z->stats.stores++;
        }
    }
    if (e->growing)
        stop_growing(z, i, !stored);
    unlock(z);
    if (!stored && fresh[0])
        unlink(fresh);
    if (stored && z->sync)
        disk_sync_dir(path);
    return stored;
}

bool store_lookup_growing(struct zone *z, const char *key, size_t key_len,
                          bool (*match)(const char *vary, size_t len, void *arg), void *arg,
                          struct buf *copy, struct store_hit *hit)
{
    if (key_len > STORE_KEY_MAX)
        return false;
    uint64_t h = hash_key(key, key_len);
    char vary[STORE_VARY_MAX + 1];
    bool found = false;
    lock(z);
    for (unsigned k = 0; k < FLIGHT_SLOTS && !found; k++) {
        struct flight *f = &z->flights[(h + k) % FLIGHT_SLOTS];
        if (f->hash != h || f->growing == NONE)
            continue;
        struct entry *e = &entries(z)[f->growing];
        if (!key_is(z, e, key, key_len))
            continue;
        chain_read(z, e, e->key_len, vary, e->vary_len);
        vary[e->vary_len] = '\0';
        if (match(vary, e->vary_len, arg)) {
            hold_hit(z, f->growing, copy, hit);
            found = true;
        }
    }
    unlock(z);
    if (found)
        split_hit(copy, hit);
    return found;
}

enum store_growth store_growth(struct zone *z, struct store_hit *hit)
{
    lock(z);
    struct entry *e = &entries(z)[hit->index];
    if (writer_gone(e))
        abandon_dead(z, hit->index);
    hit->body_len = e->body_len;
    enum store_growth g = e->failed ? STORE_FAILED : e->growing ? STORE_GROWING : STORE_COMPLETE;
    unlock(z);
    return g;
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
        if (!flight_busy(z, f, now)) {
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
        *free_slot = (struct flight){h, until, NONE};
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

/* ---- a process died holding the lock -------------------------------------- */

/* Whether an entry's chain is whole: `nblocks` blocks, none claimed by
 * another entry (marked in `seen`), ending where it should. */
static bool chain_whole(struct zone *z, const struct entry *e, unsigned char *seen)
{
    if (e->nblocks == 0 || e->nblocks > z->nblocks)
        return false;
    uint64_t bytes = (uint64_t)e->key_len + e->vary_len + e->head_len + (z->disk ? 0 : e->body_len);
    if (bytes > (uint64_t)e->nblocks * STORE_BLOCK)
        return false;
    uint32_t b = e->first;
    for (uint32_t k = 0; k < e->nblocks; k++) {
        if (b >= z->nblocks || (seen[b / 8] & (1u << (b % 8))))
            return false;
        if (k + 1 < e->nblocks)
            b = links(z)[b];
    }
    if (links(z)[b] != NONE)
        return false;
    b = e->first;
    for (uint32_t k = 0; k < e->nblocks; k++, b = links(z)[b])
        seen[b / 8] |= (unsigned char)(1u << (b % 8));
    return true;
}

/* The lists are rebuilt from the entry records: the whole linked entries
 * stay findable (in no particular order of use), entries being read that
 * were removed stay until released, everything else (an entry half made,
 * half freed) goes; the free lists and the counters are counted again.
 * References the dead process held are never given back: those entries
 * stay until a restart (but a growing entry it wrote, which is
 * abandoned). */
static void repair(struct zone *z)
{
    unsigned char *seen = calloc(z->nblocks / 8 + 1, 1);
    if (!seen)
        abort();
    for (uint32_t i = 0; i < z->nbuckets; i++)
        buckets(z)[i] = NONE;
    z->lru_new = z->lru_old = NONE;
    z->free_entry = NONE;
    z->stats.entries = 0;
    z->stats.bytes_used = 0;
    z->disk_used = 0;
    z->stats.repairs++;
    for (uint32_t i = z->nblocks; i-- > 0;) {
        struct entry *e = &entries(z)[i];
        bool keep = e->used && (e->linked || e->refs) && chain_whole(z, e, seen);
        if (!keep) {
            if (e->used && z->disk) {
                char path[DISK_NAME_MAX];
                entry_path(z, e, false, path, sizeof path);
                unlink(path);
                entry_path(z, e, true, path, sizeof path);
                unlink(path);
            }
            memset(e, 0, sizeof *e);
            e->hnext = z->free_entry;
            z->free_entry = i;
            continue;
        }
        z->stats.bytes_used += (uint64_t)e->nblocks * STORE_BLOCK;
        z->disk_used += e->file_bytes;
        e->lru_prev = e->lru_next = NONE;
        if (e->linked) {
            e->linked = false;
            link_entry(z, i);
        }
    }
    z->free_block = NONE;
    z->nfree = 0;
    for (uint32_t b = z->nblocks; b-- > 0;)
        if (!(seen[b / 8] & (1u << (b % 8)))) {
            links(z)[b] = z->free_block;
            z->free_block = b;
            z->nfree++;
        }
    free(seen);
    /* A flight's growing entry that went is forgotten; a growing entry no
     * flight names (the dead process was opening it) and a dead writer's
     * are abandoned. */
    for (unsigned k = 0; k < FLIGHT_SLOTS; k++) {
        struct flight *f = &z->flights[k];
        if (f->growing != NONE && !entries(z)[f->growing].growing)
            f->growing = NONE;
    }
    for (uint32_t i = 0; i < z->nblocks; i++)
        if (entries(z)[i].growing && !flight_of(z, i) && (!z->disk || writer_gone(&entries(z)[i])))
            stop_growing(z, i, true);
    while (reclaim_one(z))
        ;
}
