/* The rewrite module of the router: `rewrite REGEX REPLACEMENT [FLAG];`
 * and `return CODE [URL|TEXT];`, in `server` (run once per request before
 * a location is chosen) and in `location` (run once the location is
 * chosen), in the order written.  Regular expressions are route/regex.h's:
 * a path over its limits fails the request (500, logged). */
#ifndef VERBD_ROUTE_REWRITE_H
#define VERBD_ROUTE_REWRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "route/regex.h"
#include "route/vars.h"

enum rw_flag {
    RW_NONE,      /* the next rule runs on the new URI */
    RW_LAST,      /* stop; choose the location again for the new URI */
    RW_BREAK,     /* stop; this location serves the new URI */
    RW_REDIRECT,  /* 302 to the replacement */
    RW_PERMANENT, /* 301 to the replacement */
};

struct rw_rule {
    bool is_return;
    struct regex re; /* rewrite's */
    char *value;     /* the replacement, the return's URL or TEXT, or NULL */
    enum rw_flag flag;
    int status; /* return's code */
};

struct rw_list {
    struct rw_rule *v;
    size_t n;
};

/* Adds `rewrite ARGS...` or `return ARGS...` (argv without the name);
 * -1 + err if malformed.  `captures`: how many groups the location's
 * expression has, for a return's $N (-1: the location has none). */
int rw_add(struct rw_list *l, bool is_return, int captures, int argc, const char *const *argv,
           char *err, size_t errlen);
void rw_free(struct rw_list *l);

enum rw_outcome {
    RW_CONTINUE, /* no rule stopped (the URI may have changed: `changed`) */
    RW_STOP_LAST,
    RW_STOP_BREAK,
    RW_ANSWER, /* a redirect or a return: status, and text (Location or body) */
    RW_FAILED, /* status: the new URI is not a valid path (400, 404), or the
                  match failed for a reason other than no match (500) */
};

struct rw_result {
    enum rw_outcome outcome;
    bool changed;    /* the URI or the args changed */
    struct buf path; /* the new path, decoded and normalised, NUL-terminated */
    struct buf args; /* the new args (without '?') */
    bool has_args;
    int status;    /* RW_ANSWER, RW_FAILED */
    bool location; /* RW_ANSWER: text is a Location, not a body */
    struct buf text;
};

/* Runs the rules on the URI and args in v (which it updates to point at
 * r's buffers as rules change them).  r starts zeroed; rw_result_free
 * frees its buffers. */
void rw_run(const struct rw_list *l, struct vars *v, struct rw_result *r);
void rw_result_free(struct rw_result *r);

/* The expansion of one replacement against a match: what the fuzzer
 * drives.  Appends the URI (path and query) to out; *drop_args: it ended
 * with '?' (the request's args are not appended). */
void rw_expand_replacement(const char *replacement, const struct vars *v, struct buf *out,
                           bool *drop_args);

#endif
