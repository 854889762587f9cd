/* The `static` module: files and directories under a root directory, for
 * GET and HEAD, with index files, optional listings, validators,
 * conditional requests and byte ranges. */
#ifndef VERBD_MOD_STATIC_H
#define VERBD_MOD_STATIC_H

#include "route/module.h"

extern const struct verbd_module verbd_module_static;

#endif
