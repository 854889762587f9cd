/* The body of an answer from the cache, whole or in ranges. */
#include "mod/proxy/cache_body.h"

#include <stdlib.h>
#include <unistd.h>

/* The bytes a response lends from a held entry: the entry is released
 * when the last piece is. */
struct lent {
    struct zone *zone;
    uint32_t index;
    size_t pieces;
};

static void lent_release(void *arg)
{
    struct lent *l = arg;
    if (--l->pieces == 0) {
        store_release(l->zone, l->index);
        free(l);
    }
}

/* The part of a block's piece [at, at + len) that lies in range r, if
 * any: *p and *n cut down to it. */
static bool clip(const struct byte_range *r, uint64_t at, const char **p, size_t *n)
{
    uint64_t end = at + *n; /* exclusive */
    if (end <= r->first || at > r->last)
        return false;
    uint64_t from = r->first > at ? r->first : at;
    uint64_t to = r->last + 1 < end ? r->last + 1 : end;
    *p += from - at;
    *n = (size_t)(to - from);
    return true;
}

/* The pieces of the blocks that range r covers, lent (l) or only
 * counted (l NULL). */
static size_t lend_range(struct zone *z, const struct store_hit *hit, struct verbd_response *res,
                         const struct byte_range *r, struct lent *l)
{
    struct store_walk w = {0};
    const char *p;
    size_t len, pieces = 0;
    uint64_t at = 0;
    while (at <= r->last && store_body_next(z, hit, &w, &p, &len)) {
        uint64_t next = at + len;
        if (clip(r, at, &p, &len)) {
            pieces++;
            if (l)
                verbd_response_body_shared(res, p, len, lent_release, l);
        }
        at = next;
    }
    return pieces;
}

static size_t part_head(const struct cache_parts *parts, size_t k, const struct byte_range *r,
                        uint64_t size, char *out, size_t cap)
{
    return range_part_head(out, cap, parts->boundary, k, parts->type, parts->type_len, r, size);
}

bool cache_body_send(struct zone *z, const struct store_hit *hit, struct verbd_response *res,
                     const struct byte_range *asked, size_t count, uint64_t shift, uint64_t size,
                     const struct cache_parts *parts)
{
    /* The ranges of the body (the part heads say those of the
     * representation). */
    struct byte_range r[RANGE_MAX];
    for (size_t k = 0; k < count && k < RANGE_MAX; k++)
        r[k] = (struct byte_range){asked[k].first - shift, asked[k].last - shift};
    char head[256];
    uint64_t length = 0;
    for (size_t k = 0; k < count; k++)
        length += r[k].last - r[k].first + 1 +
                  (parts ? part_head(parts, k, &asked[k], size, head, sizeof head) : 0);
    if (parts)
        length += range_parts_end(head, sizeof head, parts->boundary);
    if (hit->body_in_file) {
        /* The file stays readable through its descriptor whatever
         * happens to the entry: the entry is released at once. */
        uint64_t offset;
        int fd = store_body_file(z, hit, &offset);
        store_release(z, hit->index);
        if (fd < 0)
            return false;
        verbd_response_length(res, length);
        for (size_t k = 0; k < count; k++) {
            if (parts)
                verbd_response_body(res, head,
                                    part_head(parts, k, &asked[k], size, head, sizeof head));
            verbd_response_file(res, fd, offset + r[k].first, r[k].last - r[k].first + 1);
        }
        if (parts)
            verbd_response_body(res, head, range_parts_end(head, sizeof head, parts->boundary));
        if (!count)
            close(fd);
        return true;
    }
    verbd_response_length(res, length);
    size_t pieces = 0;
    for (size_t k = 0; k < count; k++)
        pieces += lend_range(z, hit, res, &r[k], NULL);
    struct lent *l = NULL;
    if (pieces) {
        l = malloc(sizeof *l);
        if (!l)
            abort();
        *l = (struct lent){z, hit->index, pieces};
    } else {
        store_release(z, hit->index);
    }
    for (size_t k = 0; k < count; k++) {
        if (parts)
            verbd_response_body(res, head, part_head(parts, k, &asked[k], size, head, sizeof head));
        if (l)
            lend_range(z, hit, res, &r[k], l);
    }
    if (parts)
        verbd_response_body(res, head, range_parts_end(head, sizeof head, parts->boundary));
    return true;
}

uint64_t cache_body_lend(struct zone *z, const struct store_hit *hit, struct store_walk *w,
                         struct verbd_response *res, uint64_t most)
{
    struct store_walk ahead = *w;
    const char *p;
    size_t len, pieces = 0;
    uint64_t bytes = 0;
    while (bytes < most && store_body_next(z, hit, &ahead, &p, &len)) {
        pieces++;
        bytes += len;
    }
    if (!pieces)
        return 0;
    store_hold(z, hit->index);
    struct lent *l = malloc(sizeof *l);
    if (!l)
        abort();
    *l = (struct lent){z, hit->index, pieces};
    for (size_t k = 0; k < pieces && store_body_next(z, hit, w, &p, &len); k++)
        verbd_response_body_shared(res, p, len, lent_release, l);
    return bytes;
}

struct cache_file {
    int fd;
    uint64_t offset; /* the body's, in the file */
    size_t holds;
};

struct cache_file *cache_file_open(struct zone *z, const struct store_hit *hit)
{
    uint64_t offset;
    int fd = store_body_file(z, hit, &offset);
    if (fd < 0)
        return NULL;
    struct cache_file *f = malloc(sizeof *f);
    if (!f)
        abort();
    *f = (struct cache_file){fd, offset, 1};
    return f;
}

void cache_file_drop(struct cache_file *f)
{
    if (f && --f->holds == 0) {
        close(f->fd);
        free(f);
    }
}

static void file_release(void *arg)
{
    cache_file_drop(arg);
}

uint64_t cache_file_lend(struct cache_file *f, const struct store_hit *hit, uint64_t *sent,
                         struct verbd_response *res)
{
    if (f->holds > 1 || hit->body_len <= *sent)
        return 0;
    uint64_t n = hit->body_len - *sent;
    f->holds++;
    verbd_response_file_shared(res, f->fd, f->offset + *sent, n, file_release, f);
    *sent += n;
    return n;
}
