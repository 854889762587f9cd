/* Cache-Control parsing (RFC 9111 §5.2).  Unknown directives are ignored
 * (§5.2.3); a duplicated one keeps its first value (§4.2.1); max-age or
 * s-maxage with a value that is not delta-seconds marks the response
 * stale rather than fresh for ever. */
#include "cache/cc.h"

#include <string.h>
#include <strings.h>

#include "http/sf.h"

void cc_init(struct cache_control *cc)
{
    memset(cc, 0, sizeof *cc);
    cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh = CC_UNSET;
    cc->stale_while_revalidate = cc->stale_if_error = CC_UNSET;
}

/* delta-seconds (1*DIGIT), capped at CC_DELTA_MAX; -1 if not digits. */
static int64_t delta(struct span v)
{
    if (v.n == 0)
        return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        if (n < CC_DELTA_MAX)
            n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    return (int64_t)(n > CC_DELTA_MAX ? CC_DELTA_MAX : n);
}

static bool is(struct span s, const char *name)
{
    size_t n = strlen(name);
    return s.n == n && strncasecmp(s.p, name, n) == 0;
}

/* One directive's name and argument (quotes removed; a quoted argument
 * with backslashes keeps them: only field-name lists and numbers are
 * read from arguments, and neither contains one). */
static void split(struct span d, struct span *name, struct span *arg, bool *has_arg)
{
    const char *eq = memchr(d.p, '=', d.n);
    *has_arg = eq != NULL;
    *name = (struct span){d.p, eq ? (size_t)(eq - d.p) : d.n};
    while (name->n && (name->p[name->n - 1] == ' ' || name->p[name->n - 1] == '\t'))
        name->n--;
    *arg = (struct span){"", 0};
    if (!eq)
        return;
    const char *a = eq + 1, *end = d.p + d.n;
    while (a < end && (*a == ' ' || *a == '\t'))
        a++;
    if (a < end && *a == '"') {
        a++;
        const char *close = end > a && end[-1] == '"' ? end - 1 : end;
        *arg = (struct span){a, (size_t)(close - a)};
    } else {
        *arg = (struct span){a, (size_t)(end - a)};
    }
}

static void set_seconds(uint64_t *slot, struct span arg, bool has_arg, struct cache_control *cc,
                        bool age)
{
    if (*slot != CC_UNSET)
        return;
    int64_t v = has_arg ? delta(arg) : -1;
    if (v < 0) {
        if (age) {
            cc->flags |= CC_INVALID_AGE;
            *slot = 0; /* §4.2.1: invalid freshness is stale */
        }
        return;
    }
    *slot = (uint64_t)v;
}

/* Splits a list at commas outside quoted strings. */
static bool next_directive(struct span *list, struct span *out)
{
    for (;;) {
        const char *p = list->p, *end = list->p + list->n;
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == end) {
            *list = (struct span){end, 0};
            return false;
        }
        const char *q = p;
        bool quoted = false;
        while (q < end && (quoted || *q != ',')) {
            if (*q == '"')
                quoted = !quoted;
            else if (*q == '\\' && quoted && q + 1 < end)
                q++;
            q++;
        }
        const char *e = q;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *list = (struct span){q, (size_t)(end - q)};
        *out = (struct span){p, (size_t)(e - p)};
        if (out->n)
            return true;
    }
}

/* The directives that are flags only. */
static const struct {
    const char *name;
    unsigned flag;
} flags[] = {
    {"no-store", CC_NO_STORE},
    {"public", CC_PUBLIC},
    {"must-revalidate", CC_MUST_REVALIDATE},
    {"proxy-revalidate", CC_PROXY_REVALIDATE},
    {"must-understand", CC_MUST_UNDERSTAND},
    {"no-transform", CC_NO_TRANSFORM},
    {"only-if-cached", CC_ONLY_IF_CACHED},
    {"immutable", CC_IMMUTABLE},
};

/* no-cache and private: a flag alone, a list of field names with an
 * argument (the first list given is kept). */
static void set_fields(struct cache_control *cc, struct span arg, bool has_arg, unsigned alone,
                       unsigned listed, struct span *names)
{
    if (!has_arg || !arg.n) {
        cc->flags |= alone;
        return;
    }
    cc->flags |= listed;
    if (!names->p)
        *names = arg;
}

void cc_parse(struct cache_control *cc, struct span value)
{
    struct span d;
    while (next_directive(&value, &d)) {
        struct span name, arg;
        bool has_arg;
        split(d, &name, &arg, &has_arg);
        bool known = false;
        for (size_t i = 0; i < sizeof flags / sizeof flags[0] && !known; i++)
            if (is(name, flags[i].name)) {
                cc->flags |= flags[i].flag;
                known = true;
            }
        if (known)
            continue;
        if (is(name, "no-cache"))
            set_fields(cc, arg, has_arg, CC_NO_CACHE, CC_NO_CACHE_FIELDS, &cc->no_cache_fields);
        else if (is(name, "private"))
            set_fields(cc, arg, has_arg, CC_PRIVATE, CC_PRIVATE_FIELDS, &cc->private_fields);
        else if (is(name, "max-age"))
            set_seconds(&cc->max_age, arg, has_arg, cc, true);
        else if (is(name, "s-maxage"))
            set_seconds(&cc->s_maxage, arg, has_arg, cc, true);
        else if (is(name, "max-stale") && !has_arg)
            cc->flags |= CC_MAX_STALE_ANY;
        else if (is(name, "max-stale"))
            set_seconds(&cc->max_stale, arg, has_arg, cc, false);
        else if (is(name, "min-fresh"))
            set_seconds(&cc->min_fresh, arg, has_arg, cc, false);
        else if (is(name, "stale-while-revalidate"))
            set_seconds(&cc->stale_while_revalidate, arg, has_arg, cc, false);
        else if (is(name, "stale-if-error"))
            set_seconds(&cc->stale_if_error, arg, has_arg, cc, false);
    }
}

void cc_parse_fields(struct cache_control *cc, const struct http_field *fields, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (http_span_is(fields[i].name, "Cache-Control"))
            cc_parse(cc, fields[i].value);
}

/* The type a targeted field's directive must have (RFC 9213 §2.1: the
 * field is a Dictionary, a directive without an argument is Boolean
 * true): the number directives an Integer of at least 0, no-cache and
 * private a Boolean or a String (field names), the flags a Boolean.
 * Other directives are ignored whatever their value. */
static bool sf_member_valid(const struct sf_member *m)
{
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (is(m->key, flags[i].name))
            return m->type == SF_BOOLEAN;
    if (is(m->key, "no-cache") || is(m->key, "private"))
        return m->type == SF_BOOLEAN || m->type == SF_STRING;
    if (is(m->key, "max-age") || is(m->key, "s-maxage") || is(m->key, "stale-while-revalidate") ||
        is(m->key, "stale-if-error"))
        return m->type == SF_INTEGER && m->number >= 0;
    return true;
}

bool cc_sf_valid(struct span value)
{
    if (!sf_dict_valid(value))
        return false;
    struct sf_member m;
    bool any = false;
    while (sf_dict_next(&value, &m)) {
        if (!sf_member_valid(&m))
            return false;
        any = true;
    }
    return any;
}

/* no-cache and private from a Dictionary: the last member counts. */
static void sf_fields(struct cache_control *cc, const struct sf_member *m, unsigned alone,
                      unsigned listed, struct span *names)
{
    cc->flags &= ~(alone | listed);
    *names = (struct span){NULL, 0};
    if (m->type == SF_STRING && m->text.n) {
        cc->flags |= listed;
        *names = m->text;
    } else if (m->type == SF_STRING || m->number) {
        cc->flags |= alone;
    }
}

void cc_parse_sf(struct cache_control *cc, struct span value)
{
    struct sf_member m;
    while (sf_dict_next(&value, &m)) {
        if (!sf_member_valid(&m))
            continue;
        uint64_t *seconds = is(m.key, "max-age")                  ? &cc->max_age
                            : is(m.key, "s-maxage")               ? &cc->s_maxage
                            : is(m.key, "stale-while-revalidate") ? &cc->stale_while_revalidate
                            : is(m.key, "stale-if-error")         ? &cc->stale_if_error
                                                                  : NULL;
        if (seconds) {
            *seconds = (uint64_t)m.number > CC_DELTA_MAX ? CC_DELTA_MAX : (uint64_t)m.number;
            continue;
        }
        if (is(m.key, "no-cache")) {
            sf_fields(cc, &m, CC_NO_CACHE, CC_NO_CACHE_FIELDS, &cc->no_cache_fields);
            continue;
        }
        if (is(m.key, "private")) {
            sf_fields(cc, &m, CC_PRIVATE, CC_PRIVATE_FIELDS, &cc->private_fields);
            continue;
        }
        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
            if (is(m.key, flags[i].name)) {
                if (m.number)
                    cc->flags |= flags[i].flag;
                else
                    cc->flags &= ~flags[i].flag;
            }
    }
}

/* Whether fields[0, n) have a targeted field `name`, every line of it a
 * valid, non-empty Dictionary of directives (lines joined by commas are
 * one Dictionary then, RFC 8941 §4.2). */
static bool valid_field(const struct http_field *fields, size_t n, const char *name)
{
    bool seen = false;
    for (size_t i = 0; i < n; i++)
        if (http_span_is(fields[i].name, name)) {
            if (!cc_sf_valid(fields[i].value))
                return false;
            seen = true;
        }
    return seen;
}

static void parse_named(struct cache_control *cc, const struct http_field *fields, size_t n,
                        const char *name, void (*parse)(struct cache_control *, struct span))
{
    for (size_t i = 0; i < n; i++)
        if (http_span_is(fields[i].name, name))
            parse(cc, fields[i].value);
}

enum cc_source cc_parse_targeted(struct cache_control *cc, const struct http_field *fields,
                                 size_t n, const char *targeted)
{
    cc_init(cc);
    if (targeted && valid_field(fields, n, targeted)) {
        parse_named(cc, fields, n, targeted, cc_parse_sf);
        return CC_FROM_TARGETED;
    }
    if (valid_field(fields, n, "CDN-Cache-Control")) {
        parse_named(cc, fields, n, "CDN-Cache-Control", cc_parse_sf);
        return CC_FROM_CDN;
    }
    parse_named(cc, fields, n, "Cache-Control", cc_parse);
    return CC_FROM_CACHE_CONTROL;
}

bool cc_names_field(struct span names, struct span name)
{
    struct span e;
    while (http_list_next(&names, &e))
        if (e.n == name.n && strncasecmp(e.p, name.p, name.n) == 0)
            return true;
    return false;
}
