/* Unit tests for the shared counters (lib/core/stats.c): positions of
 * methods and statuses, labels claimed by name, and sums over workers
 * that are separate processes. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/stats.h"
#include "unit.h"

static void test_positions(void)
{
    /* Every code of the table round-trips through its position. */
    bool all = true;
    for (int i = 0; i < HTTP_STATUS_COUNT; i++)
        all = all && http_status_index(http_status_at(i)) == i;
    CHECK(all);
    CHECK_INT(http_status_index(418), -1);
    CHECK_INT(http_status_at(HTTP_STATUS_COUNT), 0);
    char code[4];
    CHECK_STR(stats_code_label(http_status_index(501), code), "501");
    CHECK_STR(stats_code_label(HTTP_STATUS_COUNT + 3, code), "4xx");
    CHECK_STR(stats_method_label(METHOD_PATCH), "PATCH");
    CHECK_STR(stats_method_label(STATS_METHOD_OTHER), "other");
}

static void test_without_region(void)
{
    /* Nothing mapped (a test, `verbd -t`): counting is a no-op. */
    CHECK_INT(stats_server("x"), -1);
    stats_response(0, METHOD_GET, 200, STATS_PROTO_H2);
    stats_received(10);
    stats_conn_move(STATS_CONN_NONE, STATS_CONN_IDLE);
    CHECK_INT(stats_servers(), 0);
    CHECK_INT(stats_workers(), 0);
}

static uint64_t requests(unsigned label, int method, int status)
{
    static struct stats_block sum;
    memset(&sum, 0, sizeof sum);
    stats_sum_server(label, &sum);
    return sum.requests[method][http_status_index(status)];
}

static void test_workers(void)
{
    CHECK_INT(stats_open(2, 3), 0);
    int a = stats_server("a.example"), b = stats_server("b.example");
    CHECK(a >= 0 && b >= 0 && a != b);
    CHECK_INT(stats_server("a.example"), a);
    /* Past the room for labels, the last one is shared. */
    int c = stats_server("c.example");
    CHECK_STR(stats_server_name((unsigned)c), "(other)");
    CHECK_INT(stats_servers(), 3);

    /* Worker 1 is another process writing its own counters. */
    pid_t pid = fork();
    if (pid == 0) {
        stats_enter_worker(1);
        for (int i = 0; i < 5; i++)
            stats_response(a, METHOD_GET, 200, STATS_PROTO_H2);
        stats_response(a, METHOD_UNKNOWN, 501, STATS_PROTO_HTTP10);
        stats_response(a, -1, 400, STATS_PROTO_HTTP11); /* a head that did not parse */
        stats_response(a, METHOD_PUT, 405, STATS_PROTO_HTTP11);
        stats_received(100);
        stats_conn_move(STATS_CONN_NONE, STATS_CONN_READING);
        stats_conn_protocol(STATS_PROTO_H2);
        _exit(0);
    }
    int status;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status));
    stats_enter_worker(0);
    for (int i = 0; i < 3; i++)
        stats_response(a, METHOD_GET, 200, STATS_PROTO_HTTP11);
    stats_response(b, METHOD_PATCH, 501, STATS_PROTO_H2);
    stats_response(a, METHOD_GET, 299, STATS_PROTO_HTTP11); /* not in the table: 2xx */
    stats_received(1);
    stats_conn_move(STATS_CONN_NONE, STATS_CONN_READING);
    stats_conn_protocol(STATS_PROTO_HTTP11);
    stats_conn_move(STATS_CONN_READING, STATS_CONN_IDLE);
    /* Handed to another session: still one connection accepted. */
    stats_conn_move(STATS_CONN_IDLE, STATS_CONN_NONE);
    stats_conn_adopt(STATS_CONN_IDLE);

    CHECK_INT(requests((unsigned)a, METHOD_GET, 200), 8);
    CHECK_INT(requests((unsigned)a, STATS_METHOD_OTHER, 501), 1);
    CHECK_INT(requests((unsigned)a, STATS_METHOD_OTHER, 400), 1);
    CHECK_INT(requests((unsigned)b, METHOD_PATCH, 501), 1);
    CHECK_INT(requests((unsigned)b, METHOD_GET, 200), 0);
    static struct stats_block sum;
    memset(&sum, 0, sizeof sum);
    stats_sum_server((unsigned)a, &sum);
    CHECK_INT(sum.requests[METHOD_GET][HTTP_STATUS_COUNT + 1], 1);
    /* Refusals: methods that were sent, not heads that did not parse. */
    CHECK_INT(sum.refusals[STATS_METHOD_OTHER][0], 1);
    CHECK_INT(sum.refusals[METHOD_PUT][1], 1);
    uint64_t refused = 0;
    for (int m = 0; m < STATS_METHODS; m++)
        refused += sum.refusals[m][0] + sum.refusals[m][1];
    CHECK_INT(refused, 2);
    /* By protocol: every response once. */
    CHECK_INT(sum.protocols[STATS_PROTO_HTTP10], 1);
    CHECK_INT(sum.protocols[STATS_PROTO_HTTP11], 6);
    CHECK_INT(sum.protocols[STATS_PROTO_H2], 5);

    struct stats_worker w = {0};
    CHECK_INT(stats_workers(), 2);
    for (unsigned i = 0; i < 2; i++)
        stats_add_worker(i, &w);
    CHECK_INT(w.received, 101);
    CHECK_INT(w.accepted, 2);
    CHECK_INT(w.conns[STATS_CONN_READING], 1); /* worker 1's, still counted */
    CHECK_INT(w.conns[STATS_CONN_IDLE], 1);
    CHECK_INT(w.sessions[STATS_PROTO_HTTP11], 1);
    CHECK_INT(w.sessions[STATS_PROTO_H2], 1);

    /* A worker that replaces worker 1 keeps its counters, not its
     * connections. */
    pid = fork();
    if (pid == 0) {
        stats_enter_worker(1);
        _exit(0);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    memset(&w, 0, sizeof w);
    stats_add_worker(1, &w);
    CHECK_INT(w.received, 100);
    CHECK_INT(w.conns[STATS_CONN_READING], 0);
    CHECK_INT(requests((unsigned)a, METHOD_GET, 200), 8);
}

int main(void)
{
    test_positions();
    test_without_region();
    test_workers();
    return unit_report();
}
