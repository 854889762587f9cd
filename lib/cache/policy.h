/* Whether a response may be stored (RFC 9111 §3), what of it is stored
 * (§3.1, §5.2.2.4, §5.2.2.7), what a 304 changes in it (§3.2, §4.3.4),
 * and the validators and client conditionals (§4.3, RFC 9110 §13).
 * Pure functions over parsed fields, unit-tested. */
#ifndef VERBD_CACHE_POLICY_H
#define VERBD_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "cache/cc.h"
#include "cache/fresh.h"
#include "cache/store.h"
#include "core/buf.h"
#include "http/parse.h"
#include "http/range.h"

/* NULL if a response of `status` with directives `res` to a GET with
 * directives `req` may be stored by a shared cache, else why not (a
 * Cache-Status detail: "no-store", "private", "status", ...).  A 206
 * only as a part (policy_partial says which). */
const char *policy_unstorable(int status, const struct cache_control *res,
                              const struct cache_control *req, bool explicit_expires);

/* §3.3, §3.4: whether a 206 with fields f[0, n) may be stored as a part
 * of its representation: a single part with a known complete length
 * (*part and *size from its Content-Range) and a strong validator. */
bool policy_partial(const struct http_field *f, size_t n, struct byte_range *part, uint64_t *size);
/* §3.4: whether two responses (fields a and b) have the same strong
 * validator, so that their parts may be combined: the same strong ETag,
 * or, without ETags, the same Last-Modified that is strong in both (at
 * least a second before their Date, RFC 9110 §8.8.2.2). */
bool policy_same_strong_validator(const struct http_field *a, size_t na, const struct http_field *b,
                                  size_t nb);

/* The record kept beside a stored response with fields f[0, n): its
 * times and freshness lifetime (request_time and response_time given).
 * Its directives are cc_parse_targeted's (`targeted`: the operator's
 * field, or NULL); when they come from a targeted field, Expires counts
 * for nothing (RFC 9213 §2.1). */
void policy_meta(int status, const struct http_field *f, size_t n, const struct heuristic *h,
                 const char *targeted, time_t request_time, time_t response_time,
                 struct store_meta *meta);

/* The field lines of head[0, len) ("Name: value\r\n" each) that are
 * stored: all but Age, Cache-Status and those private="..." or
 * no-cache="..." name (res).  Appended to out. */
void policy_stored_head(const char *head, size_t len, const struct cache_control *res,
                        struct buf *out);

/* Parses "Name: value\r\n" lines (as stored) into fields (at most max);
 * returns how many. */
size_t policy_fields(const char *head, size_t len, struct http_field *fields, size_t max);

/* The stored lines `head` updated by a 304's fields f[0, n) (§3.2): each
 * field the 304 has replaces the stored ones of that name, except the
 * framing fields and Age.  Appended to out. */
void policy_merge_304(const char *head, size_t len, const struct http_field *f, size_t n,
                      struct buf *out);

/* Whether entity-tag `tag` is in the If-None-Match list `list` ("*" or
 * 1#entity-tag), by weak comparison (RFC 9110 §8.8.3.2). */
bool policy_etag_match(struct span list, struct span tag);

/* Whether a request with fields r[0, nr) is answered 304 from a stored
 * 200 with fields s[0, ns): If-None-Match against its ETag, else
 * If-Modified-Since against its Last-Modified, or its Date without one
 * (RFC 9110 §13.2.2, RFC 9111 §4.3.2). */
bool policy_not_modified(const struct http_field *r, size_t nr, const struct http_field *s,
                         size_t ns);

/* The fields a 304 carries from a stored response (RFC 9110 §15.4.5). */
bool policy_304_field(struct span name);

#endif
