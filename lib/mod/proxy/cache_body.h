/* The body of an answer from the cache: the whole of a held entry's
 * body, or ranges of it (RFC 9110 §14), lent from the zone's blocks or
 * sent from the entry's file, never copied. */
#ifndef VERBD_MOD_PROXY_CACHE_BODY_H
#define VERBD_MOD_PROXY_CACHE_BODY_H

#include <stdbool.h>
#include <stddef.h>

#include "cache/store.h"
#include "http/range.h"
#include "verbd.h"

/* The parts of a multipart/byteranges answer (count > 1). */
struct cache_parts {
    char boundary[RANGE_BOUNDARY_MAX];
    const char *type; /* the entry's Content-Type, or NULL */
    size_t type_len;
};

/* Appends the ranges r[0..count) of the representation (`size` bytes,
 * of which the held entry's body holds those from `shift`: a stored
 * part's first byte, else 0) to res (with the parts' delimiters when
 * `parts`), states the length, and passes
 * the entry's reference to the response.  False if the body cannot be
 * read (a disk zone's file removed by hand): nothing was appended and
 * the entry is released. */
bool cache_body_send(struct zone *z, const struct store_hit *hit, struct verbd_response *res,
                     const struct byte_range *r, size_t count, uint64_t shift, uint64_t size,
                     const struct cache_parts *parts);

/* Lends the pieces of the held entry's body from walk w on, up to
 * hit->body_len and about `most` bytes (whole pieces, at least one),
 * with one reference on the entry for them; returns the bytes lent. */
uint64_t cache_body_lend(struct zone *z, const struct store_hit *hit, struct store_walk *w,
                         struct verbd_response *res, uint64_t most);

/* A disk zone's growing entry followed by a waiter: its file, opened
 * once (NULL if it cannot be) and held by the follower and by each range
 * of it a response still has queued (closed with the last). */
struct cache_file;
struct cache_file *cache_file_open(struct zone *z, const struct store_hit *hit);
/* Appends the body bytes [*sent, hit->body_len) of the file to res,
 * unless a range handed before is still queued (one at a time: a slow
 * client holds one range, not one per growth); returns the bytes
 * appended (*sent moves past them). */
uint64_t cache_file_lend(struct cache_file *f, const struct store_hit *hit, uint64_t *sent,
                         struct verbd_response *res);
void cache_file_drop(struct cache_file *f);

#endif
