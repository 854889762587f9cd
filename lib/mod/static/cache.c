/* The open-file cache: per worker process and static instance, recently
 * served files stay open with their validators and header values ready,
 * and small ones with their bytes in memory; paths found missing are
 * remembered for the rest of their epoch.  Each use revalidates with
 * one stat of the path: a changed device, inode, size, mtime or ctime is a
 * miss, and the file is opened afresh under the root's rules.  A path
 * swapped to lead elsewhere stats as another inode, so the cache never
 * serves anything the resolution rules would refuse. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "mod/static/internal.h"

#define CACHE_BUCKETS 256
#define CACHE_MAX_ENTRIES 512
#define CACHE_INLINE_MAX (16 * 1024) /* bytes kept in memory per file */

/* A path found missing, remembered for the rest of its epoch only. */
struct missing_path {
    char *rel;
    uint64_t epoch;
};

#define MISSING_SLOTS 64

struct file_cache {
    struct file_entry *buckets[CACHE_BUCKETS];
    size_t count;
    uint64_t clock; /* use counter, for eviction */
    struct missing_path missing[MISSING_SLOTS];
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void entry_free(struct file_entry *e)
{
    if (e->holds) {
        e->dropped = true; /* the last response to let go frees it */
        return;
    }
    close(e->fd);
    free(e->content);
    free(e->fields);
    free(e->rel);
    free(e);
}

/* Unlinks *link's entry from its bucket and frees it (or leaves that to
 * the last response still sending from it). */
static void drop(struct file_cache *c, struct file_entry **link)
{
    struct file_entry *e = *link;
    *link = e->next;
    entry_free(e);
    c->count--;
}

static void evict_least_used(struct file_cache *c)
{
    struct file_entry **victim = NULL;
    for (size_t b = 0; b < CACHE_BUCKETS; b++)
        for (struct file_entry **l = &c->buckets[b]; *l; l = &(*l)->next)
            if (!victim || (*l)->last_used < (*victim)->last_used)
                victim = l;
    if (victim)
        drop(c, victim);
}

struct file_entry *cache_get(const struct static_inst *in, const char *rel)
{
    struct file_cache *c = in->cache;
    struct file_entry **link = &c->buckets[hash(rel) % CACHE_BUCKETS];
    for (; *link; link = &(*link)->next) {
        if (strcmp((*link)->rel, rel) != 0)
            continue;
        /* Requests of one epoch (a pipelined batch of reads) share one
         * check: see clock.h. */
        uint64_t now = clock_epoch();
        struct stat st;
        if ((*link)->checked_epoch == now ||
            (fstatat(in->root_fd, rel, &st, 0) == 0 && same_file(&st, &(*link)->st))) {
            (*link)->checked_epoch = now;
            (*link)->last_used = ++c->clock;
            return *link;
        }
        drop(c, link);
        return NULL;
    }
    return NULL;
}

struct file_entry *cache_put(const struct static_inst *in, const char *rel, int fd,
                             const struct stat *st)
{
    struct file_cache *c = in->cache;
    struct file_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->rel = strdup(rel)))
        abort();
    e->fd = fd;
    e->st = *st;
    static_etag(st, e->etag, sizeof e->etag);
    http_date_format(st->st_mtim.tv_sec, e->last_modified);
    const char *slash = strrchr(rel, '/');
    e->type = mime_content_type(&in->mime, slash ? slash + 1 : rel, in->charset);
    e->checked_epoch = clock_epoch();
    int n = asprintf(&e->fields,
                     "ETag: %s\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n"
                     "Content-Type: %s\r\n",
                     e->etag, e->last_modified, e->type);
    if (n < 0)
        abort();
    e->fields_len = (size_t)n;
    if (st->st_size > 0 && st->st_size <= CACHE_INLINE_MAX) {
        e->content = malloc((size_t)st->st_size);
        if (!e->content || pread(fd, e->content, (size_t)st->st_size, 0) != (ssize_t)st->st_size) {
            free(e->content);
            e->content = NULL; /* served from the fd instead */
        }
    }
    if (c->count >= CACHE_MAX_ENTRIES)
        evict_least_used(c);
    struct file_entry **link = &c->buckets[hash(rel) % CACHE_BUCKETS];
    for (struct file_entry **l = link; *l; l = &(*l)->next) {
        if (strcmp((*l)->rel, rel) == 0) {
            drop(c, l);
            break;
        }
    }
    e->last_used = ++c->clock;
    e->next = *link;
    *link = e;
    c->count++;
    return e;
}

bool cache_known_missing(const struct static_inst *in, const char *rel)
{
    const struct missing_path *m = &in->cache->missing[hash(rel) % MISSING_SLOTS];
    return m->rel && m->epoch == clock_epoch() && strcmp(m->rel, rel) == 0;
}

void cache_note_missing(const struct static_inst *in, const char *rel)
{
    struct missing_path *m = &in->cache->missing[hash(rel) % MISSING_SLOTS];
    if (!m->rel || strcmp(m->rel, rel) != 0) {
        char *copy = strdup(rel);
        if (!copy)
            return;
        free(m->rel);
        m->rel = copy;
    }
    m->epoch = clock_epoch();
}

static void release_hold(void *ctx)
{
    struct file_entry *e = ctx;
    if (--e->holds == 0 && e->dropped)
        entry_free(e);
}

void cache_respond_range(struct verbd_response *res, struct file_entry *e, uint64_t offset,
                         uint64_t len)
{
    e->holds++;
    if (e->content) /* copied once, into the output */
        verbd_response_body_shared(res, e->content + offset, len, release_hold, e);
    else
        verbd_response_file_shared(res, e->fd, offset, len, release_hold, e);
}

struct file_cache *cache_new(void)
{
    struct file_cache *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    return c;
}

void cache_free(struct file_cache *c)
{
    if (!c)
        return;
    for (size_t b = 0; b < CACHE_BUCKETS; b++)
        while (c->buckets[b])
            drop(c, &c->buckets[b]);
    for (size_t i = 0; i < MISSING_SLOTS; i++)
        free(c->missing[i].rel);
    free(c);
}
