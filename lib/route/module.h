/* The module interface.  A module is a const table: its name, the methods
 * it implements, its directives, and callbacks.  The core and the mapping
 * code reach modules only through this table and the list in
 * mod/modules.c. */
#ifndef VERBD_ROUTE_MODULE_H
#define VERBD_ROUTE_MODULE_H

#include <stdbool.h>
#include <stddef.h>

#include "http/method.h"
#include "verbd.h"

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
     * unknown names included, unless `methods` narrows it, and answers
     * OPTIONS with a target itself (forwarding it). */
    bool gateway;

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
     * `allowed` is the Allow the router sends for this resource. */
    void (*options)(void *inst, const struct verbd_request *req, method_set allowed,
                    struct verbd_response *res);
};

/* The built-in modules, NULL-terminated (mod/modules.c). */
extern const struct verbd_module *const verbd_builtin_modules[];

const struct verbd_module *module_find(const char *name);

/* The module's directive called `name`, or NULL. */
const struct verbd_directive *module_directive(const struct verbd_module *m, const char *name);

/* Parses on|off for directive `name`; -1 + err otherwise. */
int directive_on_off(const char *name, const char *value, bool *out, char *err, size_t errlen);

/* Checks a directive's argument count against its declaration; -1 + err. */
int directive_check_arity(const struct verbd_directive *d, int argc, char *err, size_t errlen);

#endif
