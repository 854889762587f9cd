/* The `status` module: the server's counters (core/stats.h) and the
 * modules' own metrics, for GET and HEAD, in the Prometheus text
 * exposition format. */
#ifndef VERBD_MOD_STATUS_H
#define VERBD_MOD_STATUS_H

#include "route/module.h"

extern const struct verbd_module verbd_module_status;

#endif
