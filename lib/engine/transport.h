/* A transport: the bytes of one connection, as the session reads and
 * writes them: plain TCP (tcp.c) or TLS (tls_transport.c).  The session
 * never calls recv or send itself.  Each call behaves like its system call:
 * a count, 0 at the end of input, or -1 with errno (EAGAIN: try again once
 * the loop says the descriptor is ready). */
#ifndef VERBD_ENGINE_TRANSPORT_H
#define VERBD_ENGINE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct transport;

struct transport_ops {
    ssize_t (*read)(struct transport *t, void *buf, size_t n);
    /* `more`: further output follows at once (a file body after a head),
     * so the bytes may wait to leave with it. */
    ssize_t (*writev)(struct transport *t, const struct iovec *iov, int iovcnt, bool more);
    /* n bytes of file fd from *off, advancing it.  NULL: the session copies
     * file ranges through memory instead. */
    ssize_t (*sendfile)(struct transport *t, int fd, off_t *off, size_t n);
    void (*shutdown)(struct transport *t); /* no more output */
    void (*close)(struct transport *t);
    /* Closes dropping what is still queued for the peer (a TCP reset): for
     * a client that stopped reading, whose queued bytes would otherwise
     * keep trickling out of the kernel.  NULL: close. */
    void (*abort)(struct transport *t);
};

struct transport {
    const struct transport_ops *ops;
    int fd;     /* what the loop watches; -1 for one without a descriptor */
    void *impl; /* the connection's state behind ops (TLS); NULL for TCP */
    /* The last read stopped because the transport must write first (TLS):
     * a writable edge, not only a readable one, lets reading go on. */
    bool read_wants_write;
};

/* One read for a session's loop: the bytes read (> 0), or 0 when there
 * is nothing more for now, with *drained set once the transport is empty
 * (would block, or a short read while the peer's side is open) and *eof
 * at the end of input; -1 on an error (errno). */
ssize_t transport_read_some(struct transport *t, void *buf, size_t n, bool peer_shut, bool *drained,
                            bool *eof);

/* Plain TCP on a connected, non-blocking socket. */
void tcp_transport_init(struct transport *t, int fd);

#endif
