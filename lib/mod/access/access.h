/* The access guard: allow and deny by client address. */
#ifndef VERBD_MOD_ACCESS_ACCESS_H
#define VERBD_MOD_ACCESS_ACCESS_H

#include "route/module.h"

extern const struct verbd_guard verbd_guard_access;

#endif
