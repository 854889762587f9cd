/* Handler mappings and the method decision of DESIGN.md.  This is the one
 * place that answers 501, 405, OPTIONS and TRACE. */
#ifndef VERBD_ROUTE_ROUTE_H
#define VERBD_ROUTE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/exchange.h"
#include "http/method.h"
#include "route/module.h"

struct route_mapping {
    char *prefix;            /* "/", "/files/", "/hello" */
    size_t prefix_len;
    const struct verbd_module *module;
    void *inst;
    method_set allowed;      /* module methods, narrowed, + OPTIONS, + HEAD
                                with GET, + TRACE if enabled here */
    method_set narrow;       /* operator's `methods`, or all */
    bool trace;
};

struct route_table {
    struct route_mapping **maps;  /* longest prefix first after route_finish */
    size_t n;
    method_set implemented;  /* server-wide (route_finish) */
    const char *ext_names[64]; /* extension method tokens by id */
};

/* Adds a mapping; NULL + err if the module is unknown or refuses arg. */
struct route_mapping *route_add(struct route_table *t, const char *prefix, const char *module,
                                const char *arg, char *err, size_t errlen);
/* A mapping option: "methods", "trace", or a module directive. */
int route_set(struct route_mapping *m, const char *name, const char *value, char *err,
              size_t errlen);
/* Computes the sets once all mappings are added. */
void route_finish(struct route_table *t);
void route_free(struct route_table *t);

enum verdict {
    VERDICT_SERVE,   /* the module will answer (send 100 Continue if asked) */
    VERDICT_ANSWER,  /* the router answers (OPTIONS, TRACE: a success) */
    VERDICT_REFUSE,  /* the router answers with an error (400, 404, 405, 501) */
};

/* Steps 2-4: method id, path normalisation into path_buf (room for the
 * encoded path + 1 bytes), mapping.  Sets req->method_id, path, subpath,
 * mapping. */
enum verdict route_decide(const struct route_table *t, struct verbd_request *req, char *path_buf);

/* The methods this mapping allows for this resource (mapping set, refined
 * by the module). */
method_set route_allowed(const struct verbd_request *req);

/* Steps 5-6: fills res, calling the module for VERDICT_SERVE. */
void route_respond(const struct route_table *t, enum verdict v, struct verbd_request *req,
                   struct verbd_response *res);

#endif
