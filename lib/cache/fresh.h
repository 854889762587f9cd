/* Freshness (RFC 9111 §4.2): a stored response's lifetime, its current
 * age, and whether a request may reuse it as it is.  Pure arithmetic on
 * seconds, unit-tested. */
#ifndef VERBD_CACHE_FRESH_H
#define VERBD_CACHE_FRESH_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cache/cc.h"

/* The lifetimes an operator gave per status (cache_heuristic), in
 * seconds; 0: the default rule. */
#define FRESH_STATUSES 12
struct heuristic {
    uint64_t seconds[FRESH_STATUSES]; /* indexed as fresh_heuristic_statuses */
    bool set[FRESH_STATUSES];
};

/* The heuristically cacheable statuses (RFC 9110 §15.1): 200 203 204 206
 * 300 301 308 404 405 410 414 501. */
extern const int fresh_heuristic_statuses[FRESH_STATUSES];
/* The index of `status` in that list, or -1. */
int fresh_heuristic_index(int status);

/* A response's times, in seconds since the epoch; -1 where absent. */
struct fresh_times {
    time_t date;          /* its Date */
    time_t expires;       /* its Expires; 0 when present but invalid (stale) */
    time_t last_modified; /* its Last-Modified */
    uint64_t age;         /* its Age (0 without one) */
    time_t request_time;  /* when the request went upstream */
    time_t response_time; /* when its head arrived */
};

enum fresh_source { FRESH_NONE, FRESH_EXPLICIT, FRESH_HEURISTIC };

/* The freshness lifetime of a response (shared cache: s-maxage first),
 * and where it came from; FRESH_NONE if it has no explicit freshness and
 * its status has no heuristic one. */
uint64_t fresh_lifetime(int status, const struct cache_control *cc, const struct fresh_times *t,
                        const struct heuristic *h, enum fresh_source *source);

/* Its current age at `now` (§4.2.3). */
uint64_t fresh_current_age(const struct fresh_times *t, time_t now);

/* What the response's own directives allow once it is stale: nothing
 * (must-revalidate, proxy-revalidate, s-maxage: §4.2.4, §5.2.2.10). */
bool fresh_may_serve_stale(const struct cache_control *response);

enum fresh_verdict {
    FRESH_USE,       /* fresh enough for this request */
    FRESH_USE_STALE, /* stale, but the request allows it (max-stale) */
    FRESH_VALIDATE,  /* must be validated with the origin first */
};

/* Whether a request with directives `req` may reuse a stored response of
 * lifetime `lifetime` and current age `age` whose own directives are
 * `response` (§4.2, §5.2.1). */
enum fresh_verdict fresh_judge(uint64_t lifetime, uint64_t age,
                               const struct cache_control *response,
                               const struct cache_control *req);

#endif
