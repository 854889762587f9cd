/* hello: the smallest useful program embedding libverbd.
 *   GET /hello      "Hello, world!"
 *   GET /counter    the counter's value
 *   PATCH /counter  a text/plain body "+5" or "-2" adds to it
 * Usage: hello [ADDR:PORT]   (default 127.0.0.1:8080; port 0 picks one) */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "verbd.h"

static void hello(void *data, const struct verbd_request *req, struct verbd_response *res)
{
    (void)data, (void)req;
    verbd_response_header(res, "Content-Type", "text/plain; charset=utf-8");
    verbd_response_body(res, "Hello, world!\n", 14);
}

/* A delta "+N" or "-N" (one trailing newline allowed) that keeps *count in
 * range: 0 and *delta set, else -1. */
static int parse_delta(const char *body, size_t len, int64_t count, long long *delta)
{
    char text[32], *end;
    if (len == 0 || len >= sizeof text || (body[0] != '+' && body[0] != '-'))
        return -1;
    memcpy(text, body, len);
    text[len] = '\0';
    errno = 0;
    *delta = strtoll(text, &end, 10);
    if (*end == '\n')
        end++;
    if (errno || *end || end == text + 1 || (*delta > 0 && count > INT64_MAX - *delta) ||
        (*delta < 0 && count < INT64_MIN - *delta))
        return -1;
    return 0;
}

/* A refused PATCH still says which patch format the resource accepts. */
static void refuse(struct verbd_response *res, int status, const char *why)
{
    verbd_response_error(res, status, why);
    verbd_response_header(res, "Accept-Patch", "text/plain");
}

static void counter(void *data, const struct verbd_request *req, struct verbd_response *res)
{
    int64_t *count = data;
    size_t mlen, tlen, len;
    const char *method = verbd_request_method(req, &mlen);
    if (mlen == 5 && memcmp(method, "PATCH", 5) == 0) {
        const char *type = verbd_request_header(req, "Content-Type", &tlen);
        const char *body = verbd_request_body(req, &len);
        long long delta;
        if (type && !(tlen >= 10 && strncasecmp(type, "text/plain", 10) == 0 &&
                      (tlen == 10 || type[10] == ';' || type[10] == ' '))) {
            refuse(res, 415, "PATCH /counter takes text/plain.");
            return;
        }
        if (parse_delta(body, len, *count, &delta) < 0) {
            refuse(res, 400, "Send a text/plain body such as +5 or -2.");
            return;
        }
        *count += delta;
    }
    char out[32];
    int n = snprintf(out, sizeof out, "%" PRId64 "\n", *count);
    verbd_response_header(res, "Content-Type", "text/plain; charset=utf-8");
    verbd_response_header(res, "Accept-Patch", "text/plain");
    verbd_response_body(res, out, (size_t)n);
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:8080";
    int64_t count = 0;
    char err[256];
    struct verbd_server *srv = verbd_server_new();
    if (!srv)
        return 1;
    /* One process, so the counter is one counter; no access log. */
    if (verbd_server_set(srv, "workers", "1", err, sizeof err) < 0 ||
        verbd_server_set(srv, "access_log", "off", err, sizeof err) < 0 ||
        !verbd_server_map_handler(srv, "= /hello", "GET", hello, NULL, err, sizeof err) ||
        !verbd_server_map_handler(srv, "= /counter", "GET PATCH", counter, &count, err,
                                  sizeof err) ||
        verbd_server_listen(srv, addr, err, sizeof err) < 0) {
        fprintf(stderr, "hello: %s\n", err);
        verbd_server_free(srv);
        return 1;
    }
    /* A stop signal from now on is a graceful stop: verbd_server_run()
     * takes the blocked signals over. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    printf("hello: listening on http://%s/\n", verbd_server_listener_name(srv, 0));
    fflush(stdout);
    int rc = verbd_server_run(srv);
    verbd_server_free(srv);
    return rc == 0 ? 0 : 1;
}
