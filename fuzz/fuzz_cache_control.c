/* libFuzzer harness for Cache-Control (lib/cache/cc.c) and the freshness
 * rules fed from it (lib/cache/fresh.c).  The input is one or more field
 * values separated by NUL bytes.  Parsing never reads outside a value, a
 * field-name list lies inside its value, every number is at most 2^31,
 * parsing twice gives the same result, and the verdict on reuse is
 * consistent: a response that may not be served stale is never used
 * stale, and an age within the lifetime with no narrowing request
 * directive is always fresh.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Ilib \
 *         fuzz/fuzz_cache_control.c lib/cache/cc.c lib/cache/fresh.c lib/http/parse.c \
 *         -o fuzz_cc
 *   ./fuzz_cc fuzz/corpus/cache_control
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cc.h"
#include "cache/fresh.h"
#include "fields.h"

static void check_list(struct span list, const char *p, size_t n)
{
    if (list.p && (list.p < p || list.p + list.n > p + n))
        abort();
}

static void check_numbers(const struct cache_control *cc)
{
    const uint64_t v[] = {
        cc->max_age,       cc->s_maxage, cc->max_stale, cc->min_fresh, cc->stale_while_revalidate,
        cc->stale_if_error};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] != CC_UNSET && v[i] > CC_DELTA_MAX)
            abort();
}

/* One value parsed alone (checked) and into the whole. */
static void parse_field(const char *p, size_t n, void *arg)
{
    struct span v = {p, n};
    struct cache_control one, again;
    cc_init(&one);
    cc_parse(&one, v);
    check_list(one.private_fields, p, n);
    check_list(one.no_cache_fields, p, n);
    check_numbers(&one);
    cc_init(&again);
    cc_parse(&again, v);
    if (memcmp(&one, &again, sizeof one) != 0)
        abort();
    cc_parse(arg, v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cache_control a, b;
    cc_init(&a);
    cc_init(&b);
    fuzz_each_field(data, size, parse_field, &a);
    check_numbers(&a);
    /* The same directives judged as a response's and as a request's. */
    struct fresh_times t = {.date = 1000,
                            .expires = -1,
                            .last_modified = 500,
                            .request_time = 1000,
                            .response_time = 1000};
    enum fresh_source src;
    uint64_t life = fresh_lifetime(200, &a, &t, NULL, &src);
    if (life > CC_DELTA_MAX)
        abort();
    uint64_t ages[] = {0, 1, life, life + 1, (uint64_t)CC_DELTA_MAX * 2};
    for (size_t i = 0; i < sizeof ages / sizeof ages[0]; i++) {
        enum fresh_verdict v = fresh_judge(life, ages[i], &a, &a);
        if (v == FRESH_USE_STALE && (!fresh_may_serve_stale(&a) || ages[i] < life))
            abort();
        if (v == FRESH_USE && ages[i] >= life)
            abort();
        if (ages[i] < life && fresh_judge(life, ages[i], &a, &b) != FRESH_USE &&
            !(a.flags & CC_NO_CACHE))
            abort();
    }
    return 0;
}
