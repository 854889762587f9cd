/* The `webdav` module: RFC 4918 classes 1 and 2 over a directory, with
 * dead properties and locks kept in a store (store.h: SQLite). */
#ifndef VERBD_MOD_WEBDAV_H
#define VERBD_MOD_WEBDAV_H

#include "route/module.h"

extern const struct verbd_module verbd_module_webdav;

#endif
