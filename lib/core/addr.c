#include "core/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

void addr_text(const struct sockaddr *sa, char *out, size_t len, const char *otherwise)
{
    if (sa && sa->sa_family == AF_INET) {
        /* On every proxied request's path: written out by hand. */
        const unsigned char *a =
            (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr.s_addr;
        char *o = out;
        for (int i = 0; i < 4; i++) {
            if (i)
                *o++ = '.';
            if (a[i] >= 100)
                *o++ = (char)('0' + a[i] / 100);
            if (a[i] >= 10)
                *o++ = (char)('0' + a[i] / 10 % 10);
            *o++ = (char)('0' + a[i] % 10);
        }
        *o = '\0';
        return;
    }
    if (sa && sa->sa_family == AF_INET6 &&
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len))
        return;
    snprintf(out, len, "%s", otherwise);
}

unsigned addr_port(const struct sockaddr *sa)
{
    if (sa && sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa && sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}
