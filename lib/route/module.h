/* The module interface.  A module is a const table: its name, the methods
 * it implements, its directives, and callbacks.  The core and the mapping
 * code reach modules only through this table and the list in
 * mod/modules.c. */
#ifndef VERBD_ROUTE_MODULE_H
#define VERBD_ROUTE_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "http/method.h"
#include "verbd.h"

struct buf;
struct loop;
struct upstream_set;

/* What a module instance may look up while it is created. */
struct module_env {
    const struct upstream_set *upstreams; /* the configuration's `upstream` groups */
};

/* A directive a module accepts inside its location block. */
struct verbd_directive {
    const char *name;
    int min_args, max_args; /* max_args < 0: no upper bound */
    /* 0; -1 + err; or 1 with a warning in err (the value is taken). */
    int (*set)(void *inst, int argc, const char *const *argv, char *err, size_t errlen);
    bool path_args; /* its arguments are file paths: a config file
                       gives them relative to its own directory */
    bool inherit;   /* also allowed at top level: the default of
                       every location whose module has it */
};

struct verbd_module {
    const char *name;
    method_set methods;                       /* what the module implements (HEAD comes with GET,
                                                 OPTIONS is the router's) */
    const struct verbd_directive *directives; /* ends with a NULL name */
    bool streams_bodies;                      /* stores request bodies as they arrive (to disk),
                                                 so it needs no default max_body */
    /* A gateway (DESIGN.md): implements every method but CONNECT and TRACE,
     * unknown names included, unless `methods` narrows it (or, if `methods`
     * above is set, the mapping has not `methods` of its own: then that
     * set), and forwards OPTIONS with a target (with a set of its own,
     * only where `methods` names OPTIONS). */
    bool gateway;
    /* The module directive takes no argument (`status;`): create gets
     * NULL. */
    bool no_argument;
    /* Its argument is the location's root directory (`static DIR`): the
     * same as `root DIR;`, which try_files reads; with `root` given the
     * argument may be left out. */
    bool root_arg;

    /* An instance for one mapping; `arg` is the module directive's argument
     * (static: the root directory).  NULL + err on failure. */
    void *(*create)(const struct module_env *env, const char *arg, char *err, size_t errlen);
    void (*destroy)(void *inst);

    /* Optional: the methods this instance implements, decided at
     * configuration time (replaces `methods` for it). */
    method_set (*instance_methods)(void *inst);

    /* Optional, in each worker process before it serves (and after a
     * reload, for the new instances): `allowed` is the mapping's finished
     * method set; `loop` the worker's, for state that outlives an exchange
     * (connection pools, a database connection) with the loop's own calls.
     * worker_exit undoes it before the instance goes.  Never run by
     * `verbd -t`. */
    void (*worker_init)(void *inst, struct loop *loop, method_set allowed);
    void (*worker_exit)(void *inst);

    /* Optional, once in the process that runs the server, before it forks
     * its workers (and kept across reloads): state every worker shares.
     * -1 (logged) if it cannot be had. */
    int (*process_init)(void);

    /* Optional: appends the module's own metrics, state it shares among
     * all its instances and workers, to a status page in the Prometheus
     * text format (whole families, # HELP and # TYPE lines included, each
     * name starting verbd_<module>_).  Runs in the worker that answers. */
    void (*metrics)(struct buf *out);

    /* Optional: logs, at `info`, the state the module shares among its
     * instances and workers (a line per cache zone, say), once at each
     * reload and once at stop, in the process that runs the server. */
    void (*report)(void);

    /* Optional: more about an instance for `verbd -M`, as lines indented
     * under its location's (a proxy's cache zone). */
    void (*describe)(void *inst, FILE *out);

    /* Optional, for a gateway: whether this instance refuses the method
     * m[0, n) now (its upstream said it implements it nowhere).  The
     * router then decides the request itself: 405 if another mapping
     * implements the method, 501 if none does. */
    bool (*refuses)(void *inst, const char *m, size_t n);

    /* Starts an exchange the router decided this mapping serves.  The
     * method is in the mapping's set; HEAD arrives as HEAD (answer as for
     * GET: the session drops the body).  The module answers through the
     * exchange (verbd.h) at once or later, reads the body if it wants it,
     * and must finish or abort the response eventually. */
    void (*start)(void *inst, struct verbd_exchange *x);

    /* Optional: the subset of `allowed` that this resource allows (e.g. a
     * collection refuses PUT).  The router answers 405 outside it. */
    method_set (*allow)(void *inst, const struct verbd_request *req, method_set allowed);

    /* Optional: header fields to add to an OPTIONS answer (e.g. DAV);
     * `allowed` is the Allow the router sends for this resource.  For a
     * client a guard did not let in, it is the location's configured set:
     * the fields then describe what the module can do, and must not look
     * at the resource. */
    void (*options)(void *inst, const struct verbd_request *req, method_set allowed,
                    struct verbd_response *res);
};

/* The built-in modules, NULL-terminated (mod/modules.c). */
extern const struct verbd_module *const verbd_builtin_modules[];

/* ---- Guards ---------------------------------------------------------------------------------- */

/* What a guard says about one request. */
enum guard_verdict {
    GUARD_PASS,      /* nothing here applies (no rule matched, auth_basic off) */
    GUARD_GRANT,     /* this guard grants access */
    GUARD_FORBID,    /* 403 */
    GUARD_CHALLENGE, /* 401: credentials missing or not accepted */
};

/* A guard: access control on a location, whatever its module.  The router
 * asks a location's guards once the method is allowed there by its
 * configured set (after the 501 and that 405, which reveal configuration
 * only) and before the module sees the request (its refined Allow, its
 * 405, its answer).  `satisfy` combines their verdicts (route.h).  A guard
 * has an instance on a location only if one of its directives is given
 * there or inherited. */
struct verbd_guard {
    const char *name;
    /* Accepted in every location; those with `inherit` also at top level
     * and in `server`, as the default of each location without its own. */
    const struct verbd_directive *directives;
    /* A level (location, server) that gives any of the guard's directives
     * inherits none of them from outside it: its list of rules replaces
     * the outer one (allow/deny). */
    bool inherit_whole;

    void *(*create)(void);
    void (*destroy)(void *inst);
    /* Optional: once the location's directives are all given: -1 + err if
     * they do not fit together (auth_basic without a user file). */
    int (*check_config)(void *inst, char *err, size_t errlen);
    /* The verdict on a request; runs on the event loop, so a guard that
     * hashes bounds what one call costs. */
    enum guard_verdict (*check)(void *inst, const struct verbd_request *req);
    /* Optional: the name a request this guard granted is known by (the
     * user of auth_basic), for the access log: its length, written to out
     * (room for cap bytes), or 0. */
    size_t (*user)(void *inst, const struct verbd_request *req, char *out, size_t cap);
    /* Optional: header fields of a 401 (WWW-Authenticate), also added to
     * an OPTIONS answered without access. */
    void (*challenge)(void *inst, struct verbd_response *res);
};

/* The built-in guards in the order a location asks them (addresses before
 * passwords), NULL-terminated (mod/modules.c); at most ROUTE_GUARDS_MAX. */
#define ROUTE_GUARDS_MAX 4
extern const struct verbd_guard *const verbd_builtin_guards[];

/* ---- Filters ----------------------------------------------------------------------------------
 */

/* A filter: a transformation of the responses of a location, whatever its
 * module (compression).  Like a guard it declares directives accepted in
 * every location (those with `inherit` also at top level and in `server`,
 * each inherited on its own, as nginx merges them) and has an instance on
 * a location only where one of them is given or inherited. */
struct verbd_filter {
    const char *name;
    const struct verbd_directive *directives;
    void *(*create)(void);
    void (*destroy)(void *inst);
    /* Optional: once the location's directives are all given; -1 + err. */
    int (*check_config)(void *inst, char *err, size_t errlen);
    /* Before the module starts an exchange the router decided it serves:
     * the filter may set x->filter (core/exchange.h) for it.  Refusals and
     * the router's own answers never pass through a filter. */
    void (*attach)(void *inst, struct verbd_exchange *x);
};

/* The built-in filters, NULL-terminated (mod/modules.c); at most
 * ROUTE_FILTERS_MAX.  An exchange has one body filter slot, so at most one
 * of them may take a given exchange. */
#define ROUTE_FILTERS_MAX 2
extern const struct verbd_filter *const verbd_builtin_filters[];

const struct verbd_module *module_find(const char *name);

/* The module's directive called `name`, or NULL. */
const struct verbd_directive *module_directive(const struct verbd_module *m, const char *name);

/* Parses on|off for directive `name`; -1 + err otherwise. */
int directive_on_off(const char *name, const char *value, bool *out, char *err, size_t errlen);

/* Parses a duration (5s, 500ms, 1m; not 0) for directive `name`; -1 +
 * err otherwise. */
int directive_duration(const char *name, const char *value, uint64_t *ms, char *err, size_t errlen);

/* Checks a directive's argument count against its declaration; -1 + err. */
int directive_check_arity(const struct verbd_directive *d, int argc, char *err, size_t errlen);

#endif
