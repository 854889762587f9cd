/* Handler mappings and the method decision of DESIGN.md.  This is the one
 * place that answers 501, 405, OPTIONS and TRACE. */
#ifndef VERBD_ROUTE_ROUTE_H
#define VERBD_ROUTE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/buf.h"
#include "core/exchange.h"
#include "http/method.h"
#include "route/expires.h"
#include "route/module.h"
#include "route/redirect.h"
#include "route/regex.h"
#include "route/rewrite.h"

struct route_mapping {
    struct route_table *table;
    char *location; /* as configured: "/files/", "= /robots.txt", "^~ /s/", "~ \.php$" */
    char *prefix;   /* the path part ("/" by regex: the whole path is the module's) */
    size_t prefix_len;
    bool exact;
    bool stops_regex;    /* `^~`: as the longest prefix, no regex is tried */
    struct regex *regex; /* `~` and `~*`: matched against the path; else NULL */
    bool caseless;       /* `~*` */
    const char *pattern; /* the expression, in location */
    size_t order;        /* the order it was added in */
    const struct verbd_module *module;
    void *inst;
    method_set implements; /* the module's methods (a C handler's own) */
    method_set narrow;     /* the operator's `methods`, or all */
    method_set allowed;    /* implements & narrow, + OPTIONS, + HEAD with
                              GET, + TRACE if enabled here (route_finish) */
    bool trace;
    bool open;          /* a gateway not narrowed: every method, unknown names too */
    uint64_t max_body;  /* `max_body`, or BODY_LIMIT_UNSET */
    struct buf headers; /* `header` lines, "Name: value\r\n" each */
    /* Each built-in guard's instance here (verbd_builtin_guards' order),
     * or NULL where none of its directives is given. */
    void *guards[ROUTE_GUARDS_MAX];
    bool guarded;                /* some guard has an instance */
    bool satisfy_any;            /* `satisfy any`: one guard granting is enough */
    struct expires expires;      /* `expires` */
    struct rw_list rewrites;     /* `rewrite` and `return`, in order */
    struct try_files *try_files; /* `try_files`, or NULL */
    struct error_pages errors;   /* `error_page` */
    char *root;                  /* `root`, or the argument of a module that takes its root */
    int root_fd;                 /* the root opened (O_PATH) for try_files, or -1 */
    bool root_by_module;         /* root came from the module's argument */
    /* Each built-in filter's instance here (verbd_builtin_filters' order),
     * or NULL where none of its directives is given. */
    void *filters[ROUTE_FILTERS_MAX];
    bool filtered;                          /* some filter has an instance */
    char allowed_text[METHOD_SET_TEXT_MAX]; /* `allowed` as an Allow value */
};

struct route_table {
    /* After route_finish: exact locations, then prefixes longest first
     * (maps[0, nprefix)), then those by regex in the order added. */
    struct route_mapping **maps;
    size_t n;
    size_t nprefix;
    method_set implemented; /* server-wide (route_finish) */
    bool open;              /* ... and every unknown name (a gateway) */
    bool learns;            /* a mapping may refuse what it was configured for (a gateway) */
    char implemented_text[METHOD_SET_TEXT_MAX]; /* the same as an Allow value */
    const char *ext_names[METHOD_MAX_ID];       /* extension methods by id */
    int next_ext;                               /* next free extension id */
    bool unknown_405;                           /* unknown_method 405 */
    long refusal_max_age;                       /* refusal_cache max-age, or -1 */
    uint64_t max_body;                          /* the server's default, if has_max_body */
    bool has_max_body;
    struct rw_list rewrites;   /* the server's `rewrite` and `return`, before locations */
    struct error_pages errors; /* the server's `error_page`, for requests no location has */
    /* While mappings are added: the configuration's upstream groups. */
    const struct upstream_set *upstreams;
};

/* Adds a mapping to a built-in module; NULL + err if the location is
 * malformed or taken, the module unknown, or its argument refused. */
struct route_mapping *route_add(struct route_table *t, const char *location, const char *module,
                                const char *arg, char *err, size_t errlen);
/* Adds a mapping to a C handler implementing `methods`: a synchronous
 * one (fn) or one that answers at its own pace (start). */
struct route_mapping *route_add_handler(struct route_table *t, const char *location,
                                        const char *methods, verbd_handler_fn *fn,
                                        verbd_start_fn *start, void *data, char *err,
                                        size_t errlen);
/* Adds a location whose content is its `return` (and rewrites) only: it
 * answers GET and HEAD, and every other method the server implements,
 * narrowed by `methods`. */
struct route_mapping *route_add_return(struct route_table *t, const char *location, char *err,
                                       size_t errlen);
/* A server-level directive (rewrite, return, error_page) for the table;
 * -1 + err. */
int route_table_set(struct route_table *t, const char *name, int argc, const char *const *argv,
                    char *err, size_t errlen);
/* True if `name` is a directive a server block gives to its table. */
bool route_server_directive(const char *name);

/* A mapping directive: the router's (methods, trace, header, expires) or the
 * module's. */
int route_set(struct route_mapping *m, const char *name, int argc, const char *const *argv,
              char *err, size_t errlen);
/* True if `name` is a location directive of the router or of any built-in
 * module. */
bool route_directive_known(const char *name);
/* True if `name` is a directive that may be given at top level (and in
 * `server`) as the default of every location that has it: a module's with
 * `inherit`, a guard's, or the router's `satisfy`. */
bool route_directive_inherited(const char *name);
/* The declaration of a location directive as a location with `module`
 * has it (the router's, a guard's or the module's), or NULL. */
const struct verbd_directive *route_directive_find(const struct verbd_module *module,
                                                   const char *name);
/* Directives inherited together (route_directive_inherited): those of a
 * guard with inherit_whole share its key; any other's key is its own name.
 * A location or server that gives a directive inherits none with the same
 * key from outside. */
const void *route_directive_key(const char *name);
/* Once a mapping's directives are all given: -1 + err if its guards' do
 * not fit together. */
int route_mapping_check(struct route_mapping *m, char *err, size_t errlen);

/* The name of the router's own directive i (every location has them), or
 * NULL past the last. */
const char *route_directive_name(size_t i);
/* Computes the sets once all mappings are added. */
void route_finish(struct route_table *t);
/* Each built-in module's process_init, before the workers fork. */
int route_process_init(void);
/* Each module's report (module.h): at a reload and at stop. */
void route_report(void);

/* Each module instance's worker_init (worker_exit), in a worker process. */
void route_worker_init(struct route_table *t, struct loop *loop);
void route_worker_exit(struct route_table *t);
void route_free(struct route_table *t);

/* Id of a method token: registered, an extension of this table, or
 * METHOD_UNKNOWN. */
int route_method_id(const struct route_table *t, const char *token, size_t len);

/* An upstream's Allow value cut down to what mapping m allows now (its
 * set, less what its gateway learnt refused), added to res as Allow: a
 * gateway never advertises a method verbd would refuse. */
void route_relay_allow(const struct route_mapping *m, struct span value,
                       struct verbd_response *res);

enum verdict {
    VERDICT_SERVE,  /* the module will answer (send 100 Continue if asked) */
    VERDICT_ANSWER, /* the router answers (OPTIONS, TRACE: a success) */
    VERDICT_REFUSE, /* the router answers with an error (400, 401, 403, 404, 405, 413,
                       501) */
};

/* Step 3, nginx's search: an exact location matching wins; else the
 * longest matching prefix if it is `^~`; else the first regex location
 * (in the order added) that matches; else the longest prefix.  *subpath:
 * the part of path below the mapping; a regex location's captures go into
 * cap (may be NULL; cap->n 0 for any other).  NULL if nothing matches. */
const struct route_mapping *route_search(const struct route_table *t, const char *path,
                                         const char **subpath, struct captures *cap);

/* Steps 2-4: method id, path normalisation, the server's rewrites,
 * mapping, the location's rewrites (a `last` maps again), then the
 * location's guards and try_files (whose redirect decides again), at
 * most ROUTE_REDIRECTS_MAX times.  Sets req->method_id, path, subpath,
 * mapping, refusal, access, and req->route when a rule applied or a
 * regex location matched (its captures); what it keeps is in the
 * exchange's arena.  An OPTIONS the guards do not let in is
 * VERDICT_ANSWER with req->access 401 or 403: it is answered with the
 * location's configured set. */
enum verdict route_decide(const struct route_table *t, struct verbd_exchange *x);

/* The decision for an internal redirect to uri[0, len) (encoded, with its
 * query): route_start answers or starts what it decides. */
enum verdict route_redirect(const struct route_table *t, struct verbd_exchange *x, const char *uri,
                            size_t len);

/* The request body limit of a mapping: its own `max_body`, else the
 * server's, else the module's default (1m; none for a module that streams
 * bodies to disk). */
uint64_t route_body_limit(const struct route_table *t, const struct route_mapping *m);

/* The methods this mapping allows for this resource (mapping set, refined
 * by the module). */
method_set route_allowed(const struct verbd_request *req);

/* Steps 5-6: starts the module's exchange for VERDICT_SERVE; otherwise
 * answers (OPTIONS, TRACE, the refusals) and finishes the exchange. */
void route_start(const struct route_table *t, enum verdict v, struct verbd_exchange *x);

/* The content of a `return` location (not a built-in: no name to map). */
extern const struct verbd_module route_return_module;

/* The module behind C handler mappings (not a built-in: no name to map). */
extern const struct verbd_module route_handler_module;
void *route_handler_new(verbd_handler_fn *fn, verbd_start_fn *start, void *data);

/* Writes the modules, their methods and the mappings enabling them. */
void route_describe(const struct route_table *t, FILE *out);

#endif
