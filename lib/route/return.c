/* The content of a location that only returns: its answer is given by
 * the rewrite phase (route_decide keeps it pending until the method
 * decision lets the request in); if its rules let a request through (a
 * `break` before the return), nothing is served there. */
#include "core/exchange.h"
#include "route/route.h"

static void return_destroy(void *inst)
{
    (void)inst;
}

static void return_start(void *inst, struct verbd_exchange *x)
{
    (void)inst;
    verbd_response_error(&x->res, 404, "Nothing is served at this path.");
    verbd_finish(x);
}

const struct verbd_module route_return_module = {
    .name = "return",
    .destroy = return_destroy,
    .start = return_start,
};
