/* Asking an upstream, off any exchange: what it allows (OPTIONS), or the
 * head of its answer to a request verbd makes itself (the cache's
 * revalidations in the background). */
#ifndef VERBD_MOD_PROXY_ASK_H
#define VERBD_MOD_PROXY_ASK_H

#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"
#include "http/response.h"
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
/* r: the final head of the answer, valid during the call; NULL if there
 * was none in time.  The ask is gone after the call. */
typedef void ask_head_fn(void *arg, const struct http_response *r);

/* Sends request[0, len) (a whole head, with "Connection: close") to a
 * member of the group; done(arg, ...) runs once, later, from the loop.
 * NULL (and done never runs) if no connection could be opened. */
struct ask *ask_head(struct upstream_group *g, struct loop *loop, const char *request, size_t len,
                     uint64_t timeout_ms, ask_head_fn *done, void *arg);

/* Gives up: done does not run. */
void ask_cancel(struct ask *a);

#endif
