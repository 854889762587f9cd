/* sd_notify(3) in a few lines: each state is one datagram to the Unix
 * socket named by $NOTIFY_SOCKET. */
#include "engine/notify.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_un addr;
static socklen_t addr_len; /* 0: nobody to tell */
static pid_t owner;

void notify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    size_t n = path ? strlen(path) : 0;
    addr_len = 0;
    if (n < 2 || n >= sizeof addr.sun_path || (path[0] != '/' && path[0] != '@'))
        return;
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, n);
    /* "@name": Linux's abstract namespace, a leading NUL and no terminator. */
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    owner = getpid();
}

void notify(const char *state)
{
    if (!addr_len || getpid() != owner)
        return;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    ssize_t sent =
        sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&addr, addr_len);
    (void)sent; /* nobody listening is no reason to stop serving */
    close(fd);
}

void notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[64];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    notify(msg);
}
