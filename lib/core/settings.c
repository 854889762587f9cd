#include "core/settings.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

enum setting_kind {
    KIND_DURATION,
    KIND_SIZE,
    KIND_COUNT,
    KIND_WORKERS,
    KIND_PATH,
    KIND_LEVEL,
    KIND_UNKNOWN_METHOD,
    KIND_MAX_AGE,
    KIND_BODY_LIMIT,
    KIND_RATE,
    KIND_USER,
    KIND_SWITCH,
};

struct setting {
    const char *name;
    enum setting_kind kind;
    size_t offset;
    uint64_t min, max;
};

#define FIELD(f) offsetof(struct settings, f)

static const struct setting table[] = {
    {"workers", KIND_WORKERS, FIELD(workers), 0, 1024},
    {"max_connections", KIND_COUNT, FIELD(max_connections), 1, 1000000},
    {"header_timeout", KIND_DURATION, FIELD(header_timeout_ms), 1, 3600000},
    {"idle_timeout", KIND_DURATION, FIELD(idle_timeout_ms), 1, 86400000},
    {"body_timeout", KIND_DURATION, FIELD(body_timeout_ms), 1, 3600000},
    {"send_timeout", KIND_DURATION, FIELD(send_timeout_ms), 1, 3600000},
    {"shutdown_timeout", KIND_DURATION, FIELD(shutdown_timeout_ms), 0, 3600000},
    {"max_target", KIND_SIZE, FIELD(max_target), 64, 1 << 20},
    {"max_header", KIND_SIZE, FIELD(max_header), 256, 1 << 20},
    {"max_fields", KIND_COUNT, FIELD(max_fields), 1, 1000},
    {"max_body", KIND_BODY_LIMIT, FIELD(max_body), 0, 0},
    {"access_log", KIND_PATH, FIELD(access_log), 0, 0},
    {"error_log", KIND_PATH, FIELD(error_log), 0, 0},
    {"log_level", KIND_LEVEL, FIELD(log_level), 0, 0},
    {"unknown_method", KIND_UNKNOWN_METHOD, FIELD(unknown_method), 0, 0},
    {"refusal_cache", KIND_MAX_AGE, FIELD(refusal_max_age), 0, 0},
    {"min_rate", KIND_RATE, FIELD(min_rate), 0, 0},
    {"user", KIND_USER, FIELD(user), 0, 0},
    {"http2", KIND_SWITCH, FIELD(http2), 0, 0},
};

void settings_defaults(struct settings *s)
{
    *s = (struct settings){
        .workers = 0,
        .max_connections = 10000,
        .header_timeout_ms = 10000,
        .idle_timeout_ms = 60000,
        .body_timeout_ms = 30000,
        .send_timeout_ms = 30000,
        .shutdown_timeout_ms = 10000,
        .max_target = 8192,
        .max_header = 16384,
        .max_fields = 100,
        .max_body = BODY_LIMIT_UNSET,
        .access_log = strdup("stdout"),
        .error_log = strdup("stderr"),
        .log_level = LOG_INFO,
        .unknown_method = 501,
        .refusal_max_age = -1,
        .min_rate = 1024,
        .min_rate_window_ms = 30000,
        .http2 = true,
    };
}

void settings_copy(struct settings *dst, const struct settings *src)
{
    *dst = *src;
    dst->access_log = src->access_log ? strdup(src->access_log) : NULL;
    dst->error_log = src->error_log ? strdup(src->error_log) : NULL;
    dst->user = src->user ? strdup(src->user) : NULL;
    if ((src->access_log && !dst->access_log) || (src->error_log && !dst->error_log) ||
        (src->user && !dst->user))
        abort();
}

void settings_free(struct settings *s)
{
    free(s->access_log);
    free(s->error_log);
    free(s->user);
    s->access_log = s->error_log = s->user = NULL;
}

struct http_limits settings_limits(const struct settings *s)
{
    /* Bodies are limited per location, after the method decision: the
     * parser refuses only a length past 64 bits. */
    return (struct http_limits){s->max_target, s->max_header, s->max_fields, BODY_UNLIMITED};
}

/* Digits followed by a unit from `units`; the value times the unit's factor. */
static int parse_scaled(const char *s, const char *const *units, const uint64_t *factors,
                        uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    for (size_t i = 0; units[i]; i++) {
        if (strcmp(end, units[i]) == 0) {
            if (factors[i] && v > UINT64_MAX / factors[i])
                return -1;
            *out = v * factors[i];
            return 0;
        }
    }
    return -1;
}

int parse_duration_ms(const char *s, uint64_t *ms)
{
    static const char *const units[] = {"", "ms", "s", "m", "h", NULL};
    static const uint64_t factors[] = {1000, 1, 1000, 60000, 3600000};
    return parse_scaled(s, units, factors, ms);
}

int parse_size(const char *s, uint64_t *bytes)
{
    static const char *const units[] = {"", "k", "K", "m", "M", "g", "G", NULL};
    static const uint64_t factors[] = {1, 1024, 1024, 1 << 20, 1 << 20, 1 << 30, 1 << 30};
    return parse_scaled(s, units, factors, bytes);
}

int parse_body_limit(const char *s, uint64_t *bytes)
{
    if (s && strcmp(s, "off") == 0) {
        *bytes = BODY_UNLIMITED;
        return 0;
    }
    return parse_size(s, bytes) < 0 || *bytes > (UINT64_C(1) << 50) ? -1 : 0;
}

static const struct setting *find_setting(const char *name)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

bool settings_known(const char *name)
{
    return find_setting(name) != NULL;
}

const char *settings_name(size_t i)
{
    return i < sizeof table / sizeof table[0] ? table[i].name : NULL;
}

/* "NAME" or "NAME GROUP": both must exist here, so that `verbd -t` finds
 * a user the start would fail on. */
static int set_user(struct settings *s, const char *value, char *err, size_t errlen)
{
    char name[256];
    size_t n = strcspn(value, " ");
    const char *group = value + n + strspn(value + n, " ");
    if (n == 0 || n >= sizeof name || strchr(group, ' ')) {
        snprintf(err, errlen, "user takes a user name and optionally a group, not \"%s\"", value);
        return -1;
    }
    memcpy(name, value, n);
    name[n] = '\0';
    if (!getpwnam(name)) {
        snprintf(err, errlen, "user: no user \"%s\" on this system", name);
        return -1;
    }
    if (*group && !getgrnam(group)) {
        snprintf(err, errlen, "user: no group \"%s\" on this system", group);
        return -1;
    }
    char *v = strdup(value);
    if (!v)
        abort();
    free(s->user);
    s->user = v;
    return 0;
}

int settings_set(struct settings *s, const char *name, const char *value, char *err, size_t errlen)
{
    const struct setting *st = find_setting(name);
    if (!st) {
        snprintf(err, errlen, "unknown setting \"%s\"", name);
        return -1;
    }
    char *field = (char *)s + st->offset;
    uint64_t v = 0;
    int rc = -1;
    switch (st->kind) {
    case KIND_DURATION: rc = parse_duration_ms(value, &v); break;
    case KIND_SIZE: rc = parse_size(value, &v); break;
    case KIND_COUNT:
        rc = parse_scaled(value, (const char *const[]){"", NULL}, (const uint64_t[]){1}, &v);
        break;
    case KIND_WORKERS:
        if (strcmp(value, "auto") == 0) {
            *(int *)field = 0;
            return 0;
        }
        rc = parse_scaled(value, (const char *const[]){"", NULL}, (const uint64_t[]){1}, &v);
        if (rc == 0 && v == 0)
            rc = -1;
        break;
    case KIND_PATH:
        if (!*value)
            break;
        free(*(char **)field);
        *(char **)field = strdup(value);
        return 0;
    case KIND_LEVEL:
        rc = log_level_parse(value);
        if (rc < 0)
            break;
        *(int *)field = rc;
        return 0;
    case KIND_UNKNOWN_METHOD:
        if (strcmp(value, "501") && strcmp(value, "405"))
            break;
        *(int *)field = atoi(value);
        return 0;
    case KIND_BODY_LIMIT:
        if (parse_body_limit(value, &v) < 0)
            break;
        *(uint64_t *)field = v;
        return 0;
    case KIND_RATE: {
        /* "SIZE TIME": SIZE bytes per second averaged over TIME; "off". */
        if (strcmp(value, "off") == 0) {
            s->min_rate = 0;
            s->min_rate_window_ms = 0;
            return 0;
        }
        char size[32];
        const char *sp = strchr(value, ' ');
        uint64_t window;
        if (!sp || (size_t)(sp - value) >= sizeof size)
            break;
        memcpy(size, value, (size_t)(sp - value));
        size[sp - value] = '\0';
        if (parse_size(size, &v) < 0 || v == 0 || v > (UINT64_C(1) << 40) ||
            parse_duration_ms(sp + strspn(sp, " "), &window) < 0 || window < 1000 ||
            window > 3600000)
            break;
        s->min_rate = v;
        s->min_rate_window_ms = window;
        return 0;
    }
    case KIND_USER: return set_user(s, value, err, errlen);
    case KIND_SWITCH:
        if (strcmp(value, "on") && strcmp(value, "off"))
            break;
        *(bool *)field = strcmp(value, "on") == 0;
        return 0;
    case KIND_MAX_AGE:
        if (strcmp(value, "off") == 0) {
            *(long *)field = -1;
            return 0;
        }
        if (strncmp(value, "max-age=", 8) ||
            parse_scaled(value + 8, (const char *const[]){"", NULL}, (const uint64_t[]){1}, &v) <
                0 ||
            v > 315360000)
            break;
        *(long *)field = (long)v;
        return 0;
    }
    if (rc < 0 || v < st->min || (st->max && v > st->max)) {
        snprintf(err, errlen, "invalid value \"%s\" for %s", value, name);
        return -1;
    }
    if (st->kind == KIND_WORKERS)
        *(int *)field = (int)v;
    else
        *(uint64_t *)field = v;
    return 0;
}
