/* Asking an upstream, off any exchange: what it allows (OPTIONS), or the
 * whole answer to a request verbd makes itself (the cache's
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
/* r: the final head of the answer, and body[0, len) its whole body
 * (decoded from its framing), valid during the call.  r NULL if there was
 * no answer in time; body NULL if its body could not be read whole (cut
 * short, malformed, framed unsafely, or over body_max).  The ask is gone
 * after the call. */
typedef void ask_whole_fn(void *arg, const struct http_response *r, const char *body, size_t len);

/* Sends request[0, len) (a whole head of a GET, with "Connection: close")
 * to a member of the group, and reads its answer whole, the body up to
 * body_max bytes; done(arg, ...) runs once, later, from the loop.  NULL
 * (and done never runs) if no connection could be opened. */
struct ask *ask_whole(struct upstream_group *g, struct loop *loop, const char *request, size_t len,
                      uint64_t timeout_ms, uint64_t body_max, ask_whole_fn *done, void *arg);

/* Gives up: done does not run. */
void ask_cancel(struct ask *a);

#endif
