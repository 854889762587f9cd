/* Cache-Control (RFC 9111 §5.2, RFC 5861): the directives of a request or
 * a response, parsed from its field lines into numbers and flags.  Pure:
 * no allocation, spans into the caller's bytes. */
#ifndef VERBD_CACHE_CC_H
#define VERBD_CACHE_CC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/parse.h"

/* delta-seconds past what is representable count as 2^31 (RFC 9111
 * §1.2.2). */
#define CC_DELTA_MAX 2147483648u
/* A directive that was absent. */
#define CC_UNSET UINT64_MAX

enum {
    CC_NO_STORE = 1u << 0,
    CC_NO_CACHE = 1u << 1, /* without field names */
    CC_PRIVATE = 1u << 2,  /* without field names */
    CC_PUBLIC = 1u << 3,
    CC_MUST_REVALIDATE = 1u << 4,
    CC_PROXY_REVALIDATE = 1u << 5,
    CC_MUST_UNDERSTAND = 1u << 6,
    CC_NO_TRANSFORM = 1u << 7,
    CC_ONLY_IF_CACHED = 1u << 8,
    CC_IMMUTABLE = 1u << 9,
    CC_INVALID_AGE = 1u << 10,     /* max-age or s-maxage had an invalid value */
    CC_NO_CACHE_FIELDS = 1u << 11, /* no-cache="a, b": see no_cache_fields */
    CC_PRIVATE_FIELDS = 1u << 12,  /* private="a, b": see private_fields */
    CC_MAX_STALE_ANY = 1u << 13,   /* max-stale without a value */
};

struct cache_control {
    unsigned flags;
    /* Seconds, each CC_UNSET when absent; the first occurrence counts. */
    uint64_t max_age, s_maxage, max_stale, min_fresh;
    uint64_t stale_while_revalidate, stale_if_error;
    /* The field names of no-cache="..." and private="..." (quotes off). */
    struct span no_cache_fields, private_fields;
};

void cc_init(struct cache_control *cc);
/* Adds the directives of one Cache-Control field value. */
void cc_parse(struct cache_control *cc, struct span value);
/* Parses every Cache-Control line among fields[0, n). */
void cc_parse_fields(struct cache_control *cc, const struct http_field *fields, size_t n);

/* A targeted field line (RFC 9213 §2.1) is a Structured Field Dictionary
 * (RFC 8941): whether `value` is one, non-empty, whose known directives
 * have the type they take (max-age=60, no-store or no-store=?1,
 * private="Set-Cookie"; not max-age="60" or no-store=1).  An invalid
 * field is ignored whole. */
bool cc_sf_valid(struct span value);
/* Adds the directives of a line cc_sf_valid accepts; unlike
 * Cache-Control's, a directive given again replaces the earlier one
 * (RFC 8941 §4.2.2), and a Boolean false unsets it. */
void cc_parse_sf(struct cache_control *cc, struct span value);

/* Where a shared cache's response directives came from. */
enum cc_source {
    CC_FROM_CACHE_CONTROL, /* Cache-Control, with Expires */
    CC_FROM_CDN,           /* CDN-Cache-Control (RFC 9213) */
    CC_FROM_TARGETED,      /* the operator's own targeted field */
};

/* The response directives verbd's cache obeys (RFC 9213 §2.1): those of
 * the field named `targeted` (NULL: none configured) if it is present
 * and every line of it valid, else CDN-Cache-Control's on the same
 * terms, else Cache-Control's.  Unless the answer is
 * CC_FROM_CACHE_CONTROL, Cache-Control and Expires are to be ignored
 * for storing and freshness. */
enum cc_source cc_parse_targeted(struct cache_control *cc, const struct http_field *fields,
                                 size_t n, const char *targeted);

/* Whether the comma-separated field-name list `names` names `name`. */
bool cc_names_field(struct span names, struct span name);

#endif
