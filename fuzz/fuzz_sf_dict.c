/* libFuzzer harness for Structured Field Dictionaries (lib/http/sf.c) and
 * the targeted cache fields read from them (lib/cache/cc.c).  The input
 * is one or more field values separated by NUL bytes.  A valid value's
 * members all lie inside it, at most SF_DICT_MEMBERS_MAX of them, each
 * of a known type, and walking them consumes the whole value; an invalid
 * value is never a valid set of directives; numbers read from directives
 * are at most 2^31; parsing twice gives the same result.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Ilib \
 *         fuzz/fuzz_sf_dict.c lib/http/sf.c lib/cache/cc.c lib/http/parse.c -o fuzz_sf
 *   ./fuzz_sf fuzz/corpus/sf_dict
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cc.h"
#include "fields.h"
#include "http/sf.h"

static void inside(struct span s, const char *p, size_t n)
{
    if (s.n && (s.p < p || s.p + s.n > p + n))
        abort();
}

static void check_numbers(const struct cache_control *cc)
{
    const uint64_t v[] = {cc->max_age, cc->s_maxage, cc->stale_while_revalidate,
                          cc->stale_if_error};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] != CC_UNSET && v[i] > CC_DELTA_MAX)
            abort();
}

static void one_field(const char *p, size_t n, void *arg)
{
    (void)arg;
    struct span value = {p, n};
    bool valid = sf_dict_valid(value);
    if (valid) {
        struct span rest = value;
        struct sf_member m;
        size_t count = 0;
        while (sf_dict_next(&rest, &m)) {
            inside(m.key, p, n);
            inside(m.text, p, n);
            if (m.key.n == 0 || m.type > SF_INNER_LIST ||
                (m.type == SF_BOOLEAN && m.number != 0 && m.number != 1))
                abort();
            if (++count > SF_DICT_MEMBERS_MAX)
                abort();
        }
        /* only white space may be left */
        for (size_t i = 0; i < rest.n; i++)
            if (rest.p[i] != ' ' && rest.p[i] != '\t')
                abort();
    }
    if (cc_sf_valid(value)) {
        if (!valid)
            abort();
        struct cache_control a, b;
        cc_init(&a);
        cc_parse_sf(&a, value);
        cc_init(&b);
        cc_parse_sf(&b, value);
        if (memcmp(&a, &b, sizeof a) != 0)
            abort();
        inside(a.private_fields, p, n);
        inside(a.no_cache_fields, p, n);
        check_numbers(&a);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_each_field(data, size, one_field, NULL);
    return 0;
}
