/* The auth guard: HTTP Basic authentication against an htpasswd file. */
#ifndef VERBD_MOD_AUTH_AUTH_H
#define VERBD_MOD_AUTH_AUTH_H

#include "route/module.h"

extern const struct verbd_guard verbd_guard_auth_basic;

#endif
