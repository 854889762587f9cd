/* What the sessions share of reading a transport. */
#include "engine/transport.h"

#include <errno.h>

ssize_t transport_read_some(struct transport *t, void *buf, size_t n, bool peer_shut, bool *drained,
                            bool *eof)
{
    for (;;) {
        ssize_t got = t->ops->read(t, buf, n);
        if (got > 0) {
            /* A short read emptied the socket: anything newer raises a new
             * edge, so there is no need to ask again for EAGAIN (unless the
             * peer shut its side: then it is read to the end). */
            if ((size_t)got < n && !peer_shut)
                *drained = true;
            return got;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            *drained = true;
            return 0;
        }
        if (got < 0)
            return -1;
        *eof = true;
        return 0;
    }
}
