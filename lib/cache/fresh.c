/* Freshness arithmetic (RFC 9111 §4.2) and the request directives that
 * narrow reuse (§5.2.1). */
#include "cache/fresh.h"

const int fresh_heuristic_statuses[FRESH_STATUSES] = {200, 203, 204, 206, 300, 301,
                                                      308, 404, 405, 410, 414, 501};

/* 10% of the time since Last-Modified, at most a day (§4.2.2). */
#define LM_FRACTION 10
#define LM_CAP (24 * 3600)
/* Refusals without Last-Modified (DECISIONS "Cache (15)"). */
#define GONE_DEFAULT 60
#define REFUSAL_DEFAULT 600

int fresh_heuristic_index(int status)
{
    for (int i = 0; i < FRESH_STATUSES; i++)
        if (fresh_heuristic_statuses[i] == status)
            return i;
    return -1;
}

uint64_t fresh_lifetime(int status, const struct cache_control *cc, const struct fresh_times *t,
                        const struct heuristic *h, enum fresh_source *source)
{
    *source = FRESH_EXPLICIT;
    if (cc->s_maxage != CC_UNSET)
        return cc->s_maxage;
    if (cc->max_age != CC_UNSET)
        return cc->max_age;
    if (t->expires >= 0) {
        if (t->expires == 0)
            return 0;
        time_t date = t->date >= 0 ? t->date : t->response_time;
        return t->expires > date ? (uint64_t)(t->expires - date) : 0;
    }
    /* §4.2.2: heuristics for the heuristically cacheable statuses, and
     * for any other that `public` marks explicitly cacheable. */
    int i = fresh_heuristic_index(status);
    if (i < 0 && !(cc->flags & CC_PUBLIC && t->last_modified >= 0)) {
        *source = FRESH_NONE;
        return 0;
    }
    *source = FRESH_HEURISTIC;
    if (i >= 0 && h && h->set[i])
        return h->seconds[i];
    if (t->last_modified >= 0) {
        time_t date = t->date >= 0 ? t->date : t->response_time;
        uint64_t since = date > t->last_modified ? (uint64_t)(date - t->last_modified) : 0;
        uint64_t life = since / LM_FRACTION;
        return life > LM_CAP ? LM_CAP : life;
    }
    switch (status) {
    case 404:
    case 410: return GONE_DEFAULT;
    case 405:
    case 414:
    case 501: return REFUSAL_DEFAULT;
    default: *source = FRESH_NONE; return 0;
    }
}

uint64_t fresh_current_age(const struct fresh_times *t, time_t now)
{
    uint64_t apparent =
        t->date >= 0 && t->response_time > t->date ? (uint64_t)(t->response_time - t->date) : 0;
    uint64_t delay =
        t->response_time > t->request_time ? (uint64_t)(t->response_time - t->request_time) : 0;
    uint64_t age = t->age > CC_DELTA_MAX ? CC_DELTA_MAX : t->age;
    uint64_t corrected = age + delay;
    uint64_t initial = apparent > corrected ? apparent : corrected;
    uint64_t resident = now > t->response_time ? (uint64_t)(now - t->response_time) : 0;
    return initial + resident;
}

bool fresh_may_serve_stale(const struct cache_control *response)
{
    return !(response->flags & (CC_MUST_REVALIDATE | CC_PROXY_REVALIDATE)) &&
           response->s_maxage == CC_UNSET;
}

enum fresh_verdict fresh_judge(uint64_t lifetime, uint64_t age,
                               const struct cache_control *response,
                               const struct cache_control *req)
{
    if (response->flags & CC_NO_CACHE || req->flags & CC_NO_CACHE)
        return FRESH_VALIDATE;
    if (req->max_age != CC_UNSET && age > req->max_age)
        return FRESH_VALIDATE;
    bool fresh = lifetime > age;
    if (fresh) {
        if (req->min_fresh != CC_UNSET && lifetime - age < req->min_fresh)
            return FRESH_VALIDATE;
        return FRESH_USE;
    }
    if (!fresh_may_serve_stale(response))
        return FRESH_VALIDATE;
    if (req->flags & CC_MAX_STALE_ANY)
        return FRESH_USE_STALE;
    if (req->max_stale != CC_UNSET && age - lifetime <= req->max_stale)
        return FRESH_USE_STALE;
    return FRESH_VALIDATE;
}
