/* echo: a target for testing HTTP clients, embedding libverbd.
 *   POST /any/path  answers 200 with the request body and its Content-Type
 *   GET /echo       answers the request's header fields as received, one
 *                   "Name: value" line each, in order
 *   GET /other      a line saying what echo does
 * HEAD and OPTIONS come from the router; any other method gets 501 (nothing
 * here implements it).  Usage: echo [ADDR:PORT]  (default 127.0.0.1:8080;
 * port 0 picks a free port).  The access log goes to stdout. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "verbd.h"

static void echo(void *data, const struct verbd_request *req, struct verbd_response *res)
{
    (void)data;
    size_t mlen, len;
    const char *method = verbd_request_method(req, &mlen);
    if (mlen == 4 && memcmp(method, "POST", 4) == 0) {
        const char *type = verbd_request_header(req, "Content-Type", &len);
        if (type)
            verbd_response_header_n(res, "Content-Type", type, len);
        else
            verbd_response_header(res, "Content-Type", "application/octet-stream");
        const void *body = verbd_request_body(req, &len);
        verbd_response_body(res, body, len);
        return;
    }
    /* GET (and HEAD, which the server answers with GET's fields). */
    verbd_response_header(res, "Content-Type", "text/plain");
    if (strcmp(verbd_request_path(req), "/echo") != 0) {
        static const char usage[] = "echo: POST a body to any path and get it back;"
                                    " GET /echo shows your request's header fields.\n";
        verbd_response_body(res, usage, sizeof usage - 1);
        return;
    }
    size_t n = verbd_request_header_count(req);
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        size_t nlen, vlen;
        verbd_request_header_at(req, i, &name, &nlen, &value, &vlen);
        verbd_response_body(res, name, nlen);
        verbd_response_body(res, ": ", 2);
        verbd_response_body(res, value, vlen);
        verbd_response_body(res, "\n", 1);
    }
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:8080";
    char err[256];
    struct verbd_server *srv = verbd_server_new();
    if (!srv)
        return 1;
    if (verbd_server_set(srv, "workers", "1", err, sizeof err) < 0 ||
        !verbd_server_map_handler(srv, "/", "GET POST", echo, NULL, err, sizeof err) ||
        verbd_server_listen(srv, addr, err, sizeof err) < 0) {
        fprintf(stderr, "echo: %s\n", err);
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
    printf("echo: listening on http://%s/\n", verbd_server_listener_name(srv, 0));
    fflush(stdout);
    int rc = verbd_server_run(srv);
    verbd_server_free(srv);
    return rc == 0 ? 0 : 1;
}
