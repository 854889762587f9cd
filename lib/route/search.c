/* Choosing the mapping for a path (DESIGN.md step 3): exact, then the
 * longest prefix, then regex locations, as nginx chooses its location. */
#include <string.h>

#include "core/log.h"
#include "route/route.h"

/* The exact location matching path, or else the longest matching prefix
 * (exact locations come first in the table, then prefixes longest first). */
static const struct route_mapping *longest_prefix(const struct route_table *t, const char *path,
                                                  const char **subpath)
{
    size_t len = strlen(path);
    /* "/files" under "/files/" (the module redirects it to "/files/"),
     * unless a location of its own matches as long a prefix. */
    const struct route_mapping *unslashed = NULL;
    for (size_t i = 0; i < t->nprefix; i++) {
        const struct route_mapping *m = t->maps[i];
        size_t n = m->prefix_len;
        if (m->exact) {
            /* "= /robots.txt" serves the file of that name in its root. */
            if (len == n && memcmp(path, m->prefix, n) == 0) {
                *subpath = strrchr(path, '/');
                return m;
            }
            continue;
        }
        if (unslashed && n < unslashed->prefix_len - 1)
            break;
        bool dir_prefix = m->prefix[n - 1] == '/';
        if (dir_prefix && len == n - 1 && memcmp(path, m->prefix, n - 1) == 0) {
            if (!unslashed)
                unslashed = m;
            continue;
        }
        if (len < n || memcmp(path, m->prefix, n) != 0)
            continue;
        if (dir_prefix)
            *subpath = path + n - 1;
        else if (path[n] == '\0')
            *subpath = "/";
        else if (path[n] == '/')
            *subpath = path + n;
        else
            continue;
        return m;
    }
    if (unslashed)
        *subpath = "/";
    return unslashed;
}

const struct route_mapping *route_search(const struct route_table *t, const char *path,
                                         const char **subpath, struct captures *cap)
{
    struct captures scratch;
    if (!cap)
        cap = &scratch;
    cap->n = 0;
    const struct route_mapping *m = longest_prefix(t, path, subpath);
    /* No regex location (the common case) costs nothing more. */
    if (t->nprefix == t->n || (m && (m->exact || m->stops_regex)))
        return m;
    for (size_t i = t->nprefix; i < t->n; i++) {
        const struct route_mapping *r = t->maps[i];
        int rc = regex_match(r->regex, path, cap);
        if (rc > 0) {
            *subpath = path; /* root + URI, as nginx's root */
            return r;
        }
        /* Over the match limit: no match, said once (a hostile path may
         * come back any number of times). */
        if (rc < 0 && !r->regex->logged) {
            char msg[120];
            regex_error_text(rc, msg, sizeof msg);
            log_msg(LOG_WARN, "location %s: matching %.200s: %s; taken as no match (logged once)",
                    r->location, path, msg);
            r->regex->logged = true;
        }
    }
    cap->n = 0;
    return m;
}
