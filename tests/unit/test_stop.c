/* verbd_server_stop() called from a handler running in one of two
 * workers stops the whole server (supervisor and workers), which exits
 * cleanly: it is not taken for a worker that died and restarted. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "verbd.h"

static void stop_handler(void *data, const struct verbd_request *req, struct verbd_response *res)
{
    (void)req;
    verbd_server_stop(data);
    verbd_response_body(res, "stopping\n", 9);
}

/* The port of "127.0.0.1:PORT". */
static int port_of(const char *name)
{
    return atoi(strrchr(name, ':') + 1);
}

static int get_stop(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    const char req[] = "GET /stop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ssize_t n = write(fd, req, sizeof req - 1);
    char buf[512];
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 12 && memcmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
}

int main(void)
{
    char err[256];
    struct verbd_server *srv = verbd_server_new();
    CHECK(srv != NULL);
    CHECK_INT(verbd_server_listen(srv, "127.0.0.1:0", err, sizeof err), 0);
    CHECK_INT(verbd_server_set(srv, "workers", "2", err, sizeof err), 0);
    CHECK_INT(verbd_server_set(srv, "access_log", "off", err, sizeof err), 0);
    CHECK(verbd_server_map_handler(srv, "= /stop", "GET", stop_handler, srv, err, sizeof err));
    int port = port_of(verbd_server_listener_name(srv, 0));

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    pid_t child = fork();
    if (child == 0)
        _exit(verbd_server_run(srv) == 0 ? 0 : 1);
    verbd_server_free(srv); /* the parent's copy: closes its listener */

    CHECK_INT(get_stop(port), 0);
    int status = -1;
    pid_t done = 0;
    for (int i = 0; i < 100 && done == 0; i++) {
        done = waitpid(child, &status, WNOHANG);
        if (done == 0)
            nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    CHECK(done == child); /* the server stopped within 5 s */
    if (done != child) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
    } else {
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    return unit_report();
}
