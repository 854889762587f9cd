/* The proxy's cache (docs/cache.md): what forward.c asks of it.  The
 * rules themselves are lib/cache/; this is where they meet an exchange. */
#ifndef VERBD_MOD_PROXY_CACHE_H
#define VERBD_MOD_PROXY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"
#include "http/parse.h"
#include "http/response.h"
#include "verbd.h"

struct loop;
struct proxy_inst;
struct cachex;

/* Before forwarding, in a location with a cache: answers the exchange
 * from the cache (true), or sets *cx to what the forwarding tells the
 * cache about (false). */
bool proxy_cache_start(struct proxy_inst *in, struct verbd_exchange *x, struct cachex **cx);

/* PURGE in a location with cache_purge: removes the target's entries
 * (200, or 404 if none) for a client the rules allow, 403 for others. */
void proxy_cache_purge(struct proxy_inst *in, struct verbd_exchange *x);

/* The zones' counters, as the proxy module's metrics (Prometheus text). */
void proxy_cache_metrics(struct buf *out);
/* One `info` line per zone: its size, what is used, the hit ratio. */
void proxy_cache_report(void);
/* The location's cache for verbd -M. */
void proxy_cache_describe(const struct proxy_inst *in, FILE *out);

/* In each worker: loads a disk zone's files (docs/cache.md, "The disk
 * store"); at its exit, reads the rest of the directory it was loading
 * and gives up the instance's revalidations in the background. */
void proxy_cache_worker_init(struct proxy_inst *in, struct loop *loop);
void proxy_cache_worker_exit(struct proxy_inst *in);

/* The method to send upstream instead of the client's, or NULL (a HEAD
 * miss is fetched as GET, so that it can be stored). */
const char *proxy_cache_method(const struct cachex *cx);
/* Whether a request field stays behind (the client's validators, when
 * the cache sends its own). */
bool proxy_cache_drops(const struct cachex *cx, struct span name);
/* Appends the cache's own request fields (its validators). */
void proxy_cache_fields(const struct cachex *cx, struct buf *b);

/* The upstream's final head, before it is relayed: true if the cache
 * answered instead (a 304 to its validation). */
bool proxy_cache_final(struct cachex *cx, const struct http_response *r);
/* The head as relayed (res holds the fields the client gets). */
void proxy_cache_head(struct cachex *cx, const struct http_response *r, struct verbd_response *res);
/* Body bytes as relayed. */
void proxy_cache_body(struct cachex *cx, const void *p, size_t n);
/* Whether the answer waits for its end before the client hears it: a
 * HEAD fetched as GET that is being stored gets its head once the entry
 * is (so the client's next request finds it). */
bool proxy_cache_holds(const struct cachex *cx);
/* The response ended complete. */
void proxy_cache_complete(struct cachex *cx);
/* The upstream failed before any head went out: true if the cache
 * answered instead (a stale response it may serve, or a 504 where it may
 * not). */
bool proxy_cache_failed(struct cachex *cx, int status);

#endif
