/* The proxy module: a gateway to one upstream HTTP/1.1 server (TCP or a
 * Unix socket).  Every method but CONNECT and TRACE is forwarded, unknown
 * names included, unless `methods` narrows the mapping; request and
 * response bodies stream both ways with backpressure; the upstream's
 * response is parsed as strictly as a request. */
#ifndef VERBD_MOD_PROXY_PROXY_H
#define VERBD_MOD_PROXY_PROXY_H

#include "route/module.h"

extern const struct verbd_module verbd_module_proxy;

#endif
