/* The proxy directive's URL: which upstream group, and the path the
 * location's prefix becomes there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mod/proxy/internal.h"

static char *dup_n(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (!d)
        abort();
    return d;
}

/* A group of one member, named as written. */
static int single(struct proxy_inst *in, const char *member, char *err, size_t errlen)
{
    in->group = upstream_group_new(member);
    return upstream_group_add(in->group, member, NULL, err, errlen);
}

int proxy_parse_url(struct proxy_inst *in, const struct module_env *env, const char *url, char *err,
                    size_t errlen)
{
    if (strncasecmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "proxy: \"%s\" is not an http:// URL%s", url,
                 strncasecmp(url, "https://", 8) == 0 ? " (https upstreams are not supported)"
                                                      : "");
        return -1;
    }
    const char *auth = url + 7;
    if (strncmp(auth, "unix:", 5) == 0) {
        /* http://unix:/run/app.sock:/PREFIX */
        const char *end = strchr(auth + 5, ':');
        size_t n = end ? (size_t)(end - auth) : strlen(auth);
        char member[300];
        if (n >= sizeof member) {
            snprintf(err, errlen, "proxy: socket path too long in \"%s\"", url);
            return -1;
        }
        snprintf(member, sizeof member, "%.*s", (int)n, auth);
        const char *prefix = end && end[1] ? end + 1 : "/";
        if (prefix[0] != '/') {
            snprintf(err, errlen, "proxy: \"%s\" wants http://unix:/PATH:/PREFIX", url);
            return -1;
        }
        in->authority = dup_n("localhost", 9);
        in->prefix = dup_n(prefix, strlen(prefix));
        return single(in, member, err, errlen);
    }
    const char *slash = strchr(auth, '/');
    size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
    const char *prefix = slash ? slash : "/";
    if (alen == 0 || alen >= 256 || memchr(auth, '@', alen) || strpbrk(prefix, "?#")) {
        snprintf(err, errlen,
                 "proxy: \"%s\" wants http://HOST[:PORT][/PATH] or http://UPSTREAM[/PATH] "
                 "(no user, query or fragment)",
                 url);
        return -1;
    }
    in->authority = dup_n(auth, alen);
    in->prefix = dup_n(prefix, strlen(prefix));
    struct upstream_group *named = upstream_set_find(env ? env->upstreams : NULL, in->authority);
    if (named) {
        upstream_group_hold(named);
        in->group = named;
        return 0;
    }
    return single(in, in->authority, err, errlen);
}
