/* The built-in modules and guards: the one list the rest of the server
 * consults. */
#include "mod/access/access.h"
#include "mod/auth/auth.h"
#include "mod/compress/compress.h"
#include "mod/fastcgi/fastcgi.h"
#include "mod/proxy/proxy.h"
#include "mod/static/static.h"
#include "mod/status/status.h"
#include "mod/webdav/webdav.h"
#include "route/module.h"

const struct verbd_module *const verbd_builtin_modules[] = {
    &verbd_module_static,  &verbd_module_webdav, &verbd_module_proxy,
    &verbd_module_fastcgi, &verbd_module_status, NULL,
};

/* Addresses before passwords: a client refused by address is not asked
 * for one. */
const struct verbd_guard *const verbd_builtin_guards[] = {
    &verbd_guard_access,
    &verbd_guard_auth_basic,
    NULL,
};

_Static_assert(sizeof verbd_builtin_guards / sizeof verbd_builtin_guards[0] - 1 <= ROUTE_GUARDS_MAX,
               "ROUTE_GUARDS_MAX is too small for the built-in guards");

/* Response filters, asked in this order for every served exchange. */
const struct verbd_filter *const verbd_builtin_filters[] = {
    &verbd_filter_compress,
    NULL,
};

_Static_assert(sizeof verbd_builtin_filters / sizeof verbd_builtin_filters[0] - 1 <=
                   ROUTE_FILTERS_MAX,
               "ROUTE_FILTERS_MAX is too small for the built-in filters");
