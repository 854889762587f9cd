/* Server-wide settings: limits, timeouts, logs, workers.  Declared once in
 * a table (settings.c) that the API, the command line and the config file
 * all set through. */
#ifndef VERBD_CORE_SETTINGS_H
#define VERBD_CORE_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/parse.h"

struct settings {
    int workers;                  /* 0 = one per core */
    uint64_t max_connections;     /* per worker */
    uint64_t header_timeout_ms;   /* first byte of a head to its end */
    uint64_t idle_timeout_ms;     /* keep-alive wait for the next request */
    uint64_t body_timeout_ms;     /* between two reads of a body */
    uint64_t send_timeout_ms;     /* between two writes of a response */
    uint64_t shutdown_timeout_ms; /* graceful stop: in-flight bound */
    uint64_t max_target, max_header, max_fields;
    uint64_t max_body;           /* the default for locations without
                                    their own, or BODY_LIMIT_UNSET */
    char *access_log;            /* path, "stdout" or "off" */
    char *error_log;             /* path, "stderr" or "off" */
    int log_level;               /* enum log_level */
    int unknown_method;          /* 501 (RFC 9110) or 405 */
    uint64_t min_rate;           /* bytes per second a body or a response
                                    must move at, averaged over ... */
    uint64_t min_rate_window_ms; /* ... this window; 0: no minimum */
    long refusal_max_age;        /* Cache-Control max-age on 405/501, or -1 */
    char *user;                  /* `user NAME [GROUP]` the workers run as
                                    ("NAME" or "NAME GROUP"), or NULL */
    bool http2;                  /* HTTP/2: h2 by ALPN, h2c by its preface */
};

/* A body limit not set: the module's default applies (1m, or none for a
 * module that streams bodies to disk).  `off`: no limit. */
#define BODY_LIMIT_UNSET UINT64_MAX
#define BODY_UNLIMITED (UINT64_MAX - 1)
/* The bound on a refused request's body that is read and dropped to keep
 * the connection in step; past it the connection closes. */
#define BODY_DISCARD_MAX (UINT64_C(1) << 20)

/* "SIZE" or "off" (BODY_UNLIMITED); -1 if invalid. */
int parse_body_limit(const char *s, uint64_t *bytes);

void settings_defaults(struct settings *s);
void settings_free(struct settings *s);
/* A copy with strings of its own (free with settings_free). */
void settings_copy(struct settings *dst, const struct settings *src);
int settings_set(struct settings *s, const char *name, const char *value, char *err, size_t errlen);
/* True if `name` is a server-wide setting. */
bool settings_known(const char *name);
/* The name of setting i, or NULL past the last (for "did you mean"). */
const char *settings_name(size_t i);
struct http_limits settings_limits(const struct settings *s);

/* "10s", "500ms", "2m", "1h", plain seconds.  -1 if invalid. */
int parse_duration_ms(const char *s, uint64_t *ms);
/* "8k", "1m", "1g", plain bytes.  -1 if invalid. */
int parse_size(const char *s, uint64_t *bytes);

#endif
