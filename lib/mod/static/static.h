/* The `static` module: files and directories under a root directory, for
 * GET and HEAD, with index files, optional listings, validators,
 * conditional requests and byte ranges. */
#ifndef VERBD_MOD_STATIC_H
#define VERBD_MOD_STATIC_H

#include "route/module.h"

extern const struct verbd_module verbd_module_static;

/* The answer for a GET or HEAD of the instance's file at the request's
 * subpath, built on res (for a module that serves files too). */
void static_serve(void *inst, const struct verbd_request *req, struct verbd_response *res);

#endif
