/* The built-in modules: the one list the rest of the server consults. */
#include "mod/proxy/proxy.h"
#include "mod/static/static.h"
#include "mod/webdav/webdav.h"
#include "route/module.h"

const struct verbd_module *const verbd_builtin_modules[] = {
    &verbd_module_static,
    &verbd_module_webdav,
    &verbd_module_proxy,
    NULL,
};
