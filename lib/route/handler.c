/* C handlers (verbd_server_map_handler) as a module: the router treats
 * them like any other; their methods are per mapping. */
#include <stdlib.h>

#include "route/route.h"

struct handler {
    verbd_handler_fn *fn;
    void *data;
};

void *route_handler_new(verbd_handler_fn *fn, void *data)
{
    struct handler *h = malloc(sizeof *h);
    if (!h)
        abort();
    *h = (struct handler){fn, data};
    return h;
}

static void handler_destroy(void *inst) { free(inst); }

static void handler_handle(void *inst, const struct verbd_request *req,
                           struct verbd_response *res)
{
    struct handler *h = inst;
    h->fn(h->data, req, res);
}

const struct verbd_module route_handler_module = {
    .name = "handler",
    .wants_body = true,
    .destroy = handler_destroy,
    .handle = handler_handle,
};
