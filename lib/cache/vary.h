/* The secondary key (RFC 9111 §4.1): a stored response's Vary names
 * the request fields that chose it; their values, normalised, are kept
 * with it, and a later request matches only if its values are the same.
 * Pure, unit-tested. */
#ifndef VERBD_CACHE_VARY_H
#define VERBD_CACHE_VARY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "http/parse.h"

/* Appends to out the variant of request fields req[0, nreq) for the Vary
 * lines of a response's fields resp[0, nresp): for each name, lowercased,
 * "name\0" then '-' (absent) or '+' and the normalised value, "\0".
 * Returns 0, or -1 for "Vary: *" (it never matches: not worth storing). */
int vary_build(struct buf *out, const struct http_field *resp, size_t nresp,
               const struct http_field *req, size_t nreq);

/* Whether the request fields req[0, nreq) are the variant `vary`. */
bool vary_matches(const char *vary, size_t len, const struct http_field *req, size_t nreq);

#endif
