/* C handlers (verbd_server_map_handler, verbd_server_map_async) as a
 * module: the router treats them like any other; their methods are per
 * mapping.  A synchronous handler gets its body read into memory first
 * (up to max_body) and its response sent when it returns. */
#include <stdlib.h>

#include "core/buf.h"
#include "core/exchange.h"
#include "route/route.h"

struct handler {
    verbd_handler_fn *fn;
    verbd_start_fn *start;
    void *data;
};

void *route_handler_new(verbd_handler_fn *fn, verbd_start_fn *start, void *data)
{
    struct handler *h = malloc(sizeof *h);
    if (!h)
        abort();
    *h = (struct handler){fn, start, data};
    return h;
}

static void handler_destroy(void *inst)
{
    free(inst);
}

/* The body of a synchronous handler's request, gathered in memory. */
struct gathered {
    struct handler *h;
    struct buf body;
};

static void gathered_free(void *arg)
{
    struct gathered *g = arg;
    buf_free(&g->body);
}

static void call_handler(struct handler *h, struct verbd_exchange *x)
{
    h->fn(h->data, &x->req, &x->res);
    verbd_finish(x);
}

static void body_data(struct verbd_exchange *x, const void *p, size_t n, void *arg)
{
    (void)x;
    struct gathered *g = arg;
    buf_append(&g->body, p, n);
}

static void body_done(struct verbd_exchange *x, int status, void *arg)
{
    struct gathered *g = arg;
    if (status) {
        verbd_response_error(&x->res, status, NULL);
        verbd_finish(x);
        return;
    }
    x->req.body = g->body.p;
    x->req.body_len = g->body.len;
    call_handler(g->h, x);
}

static void handler_start(void *inst, struct verbd_exchange *x)
{
    struct handler *h = inst;
    if (h->start) {
        h->start(h->data, x);
        return;
    }
    if (!verbd_request_has_body(&x->req)) {
        call_handler(h, x);
        return;
    }
    struct gathered *g = verbd_alloc(x, sizeof *g);
    *g = (struct gathered){h, {0}};
    verbd_cleanup(x, gathered_free, g);
    verbd_read(x, body_data, body_done, g);
}

const struct verbd_module route_handler_module = {
    .name = "handler",
    .destroy = handler_destroy,
    .start = handler_start,
};
