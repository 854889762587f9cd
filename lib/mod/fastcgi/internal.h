/* What the fastcgi module's files share: the instance (one mapping's
 * application and settings). */
#ifndef VERBD_MOD_FASTCGI_INTERNAL_H
#define VERBD_MOD_FASTCGI_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "route/module.h"
#include "route/regex.h"
#include "upstream/upstream.h"
#include "verbd.h"

struct fcgi_inst {
    struct upstream_group *group; /* a named `upstream`, or one of the address */
    uint64_t connect_timeout_ms, send_timeout_ms, read_timeout_ms;
    bool check_script;  /* fastcgi_check_script: 404 before the application for a
                           script that is not a file under the root */
    char *index;        /* `index`: the script of a path ending in '/' */
    struct regex split; /* fastcgi_split_path_info (split.code NULL: none) */
    struct buf params;  /* fastcgi_param: "NAME\0VALUE\0" and a flag byte
                           ('1': if_not_empty), in order */
    uint64_t learn_ms;  /* fastcgi_learn: how long a 501 without freshness counts */
    size_t chunked_max; /* a chunked request body is held up to this to learn
                           its length (CONTENT_LENGTH) */
};

/* The CGI/1.1 request of one exchange (params.c). */
struct fcgi_script {
    const char *name; /* SCRIPT_NAME: the path of the script in the URI space */
    const char *path_info;
    const char *filename; /* SCRIPT_FILENAME: the root and the script below the location */
    const char *rel;      /* the script below the root, as looked up there */
};

/* Finds the script a request names (fastcgi_split_path_info, index):
 * 0, or -1 if the path cannot be split (a match failure, logged). */
int fcgi_find_script(const struct fcgi_inst *in, struct verbd_exchange *x, struct fcgi_script *s);
/* Appends the PARAMS stream's content: the CGI/1.1 variables, the request's
 * header fields as HTTP_*, then fastcgi_param's.  content_length: the
 * body's, or UINT64_MAX for none. */
void fcgi_build_params(const struct fcgi_inst *in, struct verbd_exchange *x,
                       const struct fcgi_script *s, uint64_t content_length, struct buf *out);
/* The variables fastcgi_param may use besides the router's. */
extern const char *const fcgi_var_names[];
extern const size_t fcgi_var_count;

/* Starts the exchange (request.c). */
void fcgi_start(struct fcgi_inst *in, struct verbd_exchange *x);

#endif
