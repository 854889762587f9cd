/* Variables in the values of return, rewrite, try_files and error_page:
 * $scheme, $host, $request_uri, $uri, $args, $remote_addr, and $1..$9
 * after a rewrite's match or in a location by regular expression.  ${name} is the same as $name; a
 * '$' not followed by a variable's name is itself. */
#ifndef VERBD_ROUTE_VARS_H
#define VERBD_ROUTE_VARS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

struct verbd_request;

#define VARS_CAPTURES 10 /* $0..$9 */

/* The subject of the last match and its captures (offsets, -1 unset). */
struct captures {
    const char *subject;
    long at[VARS_CAPTURES][2];
    int n;
};

struct vars {
    const struct verbd_request *req;
    const char *uri;  /* $uri: the current (decoded, normalised) path */
    const char *args; /* $args: the current query, NULL if none */
    size_t args_len;
    struct captures cap;
    /* Variables a module adds for its own directives (fastcgi_param's
     * $document_root): names[i] is worth values[i] in this expansion. */
    const char *const *extra_names;
    const char *const *extra_values;
    size_t nextra;
};

enum vars_mode {
    VARS_TEXT, /* every value as it is */
    VARS_URL,  /* decoded values ($uri, captures) percent-encoded where a
                  URL needs it; $request_uri and $args are already encoded */
};

/* Appends `tmpl` with its variables replaced to out. */
void vars_expand(const char *tmpl, const struct vars *v, enum vars_mode mode, struct buf *out);

/* At configuration: -1 + err if `tmpl` names a variable verbd does not
 * have ($foo), or a capture past `captures`, the number of capturing
 * groups that may have matched (-1: no expression matches first, not even
 * $0 exists). */
int vars_check(const char *tmpl, int captures, char *err, size_t errlen);
/* The same where a module adds the variables extra_names[0, nextra). */
int vars_check_extra(const char *tmpl, int captures, const char *const *extra_names, size_t nextra,
                     char *err, size_t errlen);

#endif
