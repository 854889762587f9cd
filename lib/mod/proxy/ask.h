/* Asking an upstream what it allows (OPTIONS), off any exchange. */
#ifndef VERBD_MOD_PROXY_ASK_H
#define VERBD_MOD_PROXY_ASK_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "upstream/upstream.h"

struct ask;

/* allow[0, len): the Allow of a 2xx answer, valid during the call; NULL if
 * there was no answer in time, no 2xx, or no Allow.  The ask is gone
 * after the call (do not cancel it). */
typedef void ask_done_fn(void *arg, const char *allow, size_t len);

/* Sends "OPTIONS target" (a path or "*") with Host `host` to a member of
 * the group; done(arg, ...) runs once, later, from the loop.  NULL (and
 * done never runs) if no connection could be opened. */
struct ask *ask_options(struct upstream_group *g, struct loop *loop, const char *target,
                        const char *host, uint64_t timeout_ms, ask_done_fn *done, void *arg);
/* Gives up: done does not run. */
void ask_cancel(struct ask *a);

#endif
