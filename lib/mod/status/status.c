/* The status page: every worker's counters added up, then what each
 * built-in module reports of its own (its metrics callback), as text
 * exposition format 0.0.4.  Series whose counter is still zero are left
 * out: a method nobody sent makes no line. */
#include "mod/status/status.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/exchange.h"
#include "core/stats.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(struct buf *b, const char *name, uint64_t v)
{
    buf_puts(b, name);
    buf_append(b, " ", 1);
    buf_put_u64(b, v);
    buf_append(b, "\n", 1);
}

/* name{server="S",method="M",code="C"} v */
static void server_sample(struct buf *b, const char *name, const char *server, int method,
                          const char *code, uint64_t v)
{
    buf_puts(b, name);
    buf_puts(b, "{server=");
    stats_put_label(b, server, strlen(server));
    buf_puts(b, ",method=\"");
    buf_puts(b, stats_method_label(method));
    buf_puts(b, "\",code=\"");
    buf_puts(b, code);
    buf_puts(b, "\"} ");
    buf_put_u64(b, v);
    buf_append(b, "\n", 1);
}

/* The series of one family for one server's sums. */
static void requests_of(struct buf *b, const char *server, const struct stats_block *sum)
{
    char code[4];
    for (int m = 0; m < STATS_METHODS; m++)
        for (int c = 0; c < STATS_CODES; c++)
            if (sum->requests[m][c])
                server_sample(b, "verbd_requests_total", server, m, stats_code_label(c, code),
                              sum->requests[m][c]);
}

static void refusals_of(struct buf *b, const char *server, const struct stats_block *sum)
{
    for (int m = 0; m < STATS_METHODS; m++)
        for (int r = 0; r < 2; r++)
            if (sum->refusals[m][r])
                server_sample(b, "verbd_refusals_total", server, m, r ? "405" : "501",
                              sum->refusals[m][r]);
}

static void protocols_of(struct buf *b, const char *server, const struct stats_block *sum)
{
    for (int p = 0; p < STATS_PROTOS; p++) {
        if (!sum->protocols[p])
            continue;
        buf_puts(b, "verbd_protocol_requests_total{server=");
        stats_put_label(b, server, strlen(server));
        buf_printf(b, ",protocol=\"%s\"} ", stats_proto_label(p));
        buf_put_u64(b, sum->protocols[p]);
        buf_append(b, "\n", 1);
    }
}

/* One family: its every server's series. */
static void per_server(struct buf *b, struct stats_block *sum,
                       void (*series)(struct buf *, const char *, const struct stats_block *))
{
    unsigned n = stats_servers();
    for (unsigned i = 0; i < n; i++) {
        const char *server = stats_server_name(i);
        if (!server)
            continue;
        memset(sum, 0, sizeof *sum);
        stats_sum_server(i, sum);
        series(b, server, sum);
    }
}

/* The request counters: one family of every server's series, then the
 * next. */
static void requests(struct buf *b, struct stats_block *sum)
{
    family(b, "verbd_requests_total", "counter",
           "Responses sent, by origin server, request method (registered methods by name, any "
           "other as other) and status code.");
    per_server(b, sum, requests_of);
    family(b, "verbd_refusals_total", "counter",
           "Requests refused because of their method, by origin server and method: 501 (nothing "
           "in the server implements it) or 405 (not allowed for the resource).");
    per_server(b, sum, refusals_of);
    family(b, "verbd_protocol_requests_total", "counter",
           "Responses sent, by origin server and protocol (http/1.0, http/1.1, h2; a request "
           "head that did not parse counts as http/1.1).");
    per_server(b, sum, protocols_of);
}

static void connections(struct buf *b)
{
    struct stats_worker w = {0};
    unsigned workers = stats_workers();
    for (unsigned i = 0; i < workers; i++)
        stats_add_worker(i, &w);
    family(b, "verbd_received_bytes_total", "counter",
           "Bytes received from clients (HTTP bytes: after TLS decryption).");
    sample(b, "verbd_received_bytes_total", w.received);
    family(b, "verbd_sent_bytes_total", "counter",
           "Bytes sent to clients (HTTP bytes: before TLS encryption).");
    sample(b, "verbd_sent_bytes_total", w.sent);
    family(b, "verbd_connections_accepted_total", "counter",
           "Client connections accepted, by worker process (0 to workers - 1; a worker that "
           "replaces one that died carries on its counters).");
    for (unsigned i = 0; i < workers; i++) {
        struct stats_worker one = {0};
        stats_add_worker(i, &one);
        buf_printf(b, "verbd_connections_accepted_total{worker=\"%u\"} ", i);
        buf_put_u64(b, one.accepted);
        buf_append(b, "\n", 1);
    }
    family(b, "verbd_protocol_connections_total", "counter",
           "Client connections by protocol, counted once it is settled (by ALPN, or by the "
           "first bytes on a plain address): http/1.1 for the HTTP/1 session (HTTP/1.0 "
           "clients' too), h2 for HTTP/2.");
    for (int p = STATS_PROTO_HTTP11; p < STATS_PROTOS; p++) {
        buf_printf(b, "verbd_protocol_connections_total{protocol=\"%s\"} ", stats_proto_label(p));
        buf_put_u64(b, w.sessions[p]);
        buf_append(b, "\n", 1);
    }
    family(b, "verbd_connections_active", "gauge", "Client connections open now.");
    sample(b, "verbd_connections_active",
           w.conns[STATS_CONN_READING] + w.conns[STATS_CONN_WRITING] + w.conns[STATS_CONN_IDLE]);
    family(b, "verbd_connections", "gauge",
           "Client connections open now, by state: reading a request, writing a response (an "
           "exchange in flight), idle between requests.");
    static const char *const states[STATS_CONN_STATES] = {
        [STATS_CONN_READING] = "reading",
        [STATS_CONN_WRITING] = "writing",
        [STATS_CONN_IDLE] = "idle",
    };
    for (int i = 0; i < STATS_CONN_STATES; i++) {
        buf_printf(b, "verbd_connections{state=\"%s\"} ", states[i]);
        buf_put_u64(b, w.conns[i]);
        buf_append(b, "\n", 1);
    }
    family(b, "verbd_workers", "gauge", "Worker processes.");
    sample(b, "verbd_workers", workers);
    family(b, "verbd_start_time_seconds", "gauge",
           "When the server started, in seconds since the epoch: counters start from zero then.");
    sample(b, "verbd_start_time_seconds", (uint64_t)stats_started());
}

static void *status_create(const struct module_env *env, const char *arg, char *err, size_t errlen)
{
    (void)env, (void)arg, (void)err, (void)errlen;
    /* No state: an instance only has to be distinct from NULL. */
    static char instance;
    return &instance;
}

static void status_destroy(void *inst)
{
    (void)inst;
}

static void status_start(void *inst, struct verbd_exchange *x)
{
    (void)inst;
    struct buf b = {0};
    struct stats_block *sum = malloc(sizeof *sum);
    if (!sum)
        abort();
    requests(&b, sum);
    free(sum);
    connections(&b);
    /* Modules that share state (the gateways' learnt refusals) share the
     * callback too: each callback runs once. */
    for (size_t i = 0; verbd_builtin_modules[i]; i++) {
        void (*metrics)(struct buf *) = verbd_builtin_modules[i]->metrics;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = verbd_builtin_modules[j]->metrics == metrics;
        if (metrics && !seen)
            metrics(&b);
    }
    struct verbd_response *res = verbd_exchange_response(x);
    verbd_response_header(res, "Content-Type", CONTENT_TYPE);
    verbd_response_header(res, "Cache-Control", "no-store");
    verbd_response_body(res, b.p, b.len);
    buf_free(&b);
    verbd_finish(x);
}

const struct verbd_module verbd_module_status = {
    .name = "status",
    .methods = METHOD_BIT(METHOD_GET) | METHOD_BIT(METHOD_HEAD),
    .no_argument = true,
    .create = status_create,
    .destroy = status_destroy,
    .start = status_start,
};
