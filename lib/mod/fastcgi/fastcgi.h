/* The fastcgi module: applications behind handler mappings (PHP-FPM and
 * any FastCGI responder).  A mapping implements GET, HEAD and POST unless
 * `methods` names others; scripts are found under the location's root;
 * bodies stream both ways with backpressure over pooled connections to an
 * address or an `upstream` group. */
#ifndef VERBD_MOD_FASTCGI_FASTCGI_H
#define VERBD_MOD_FASTCGI_FASTCGI_H

#include "route/module.h"

extern const struct verbd_module verbd_module_fastcgi;

#endif
