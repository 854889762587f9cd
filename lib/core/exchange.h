/* One request and its response, as the core, the router and the modules
 * share them.  Modules use only the accessors in verbd.h. */
#ifndef VERBD_CORE_EXCHANGE_H
#define VERBD_CORE_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/parse.h"
#include "verbd.h"

struct route_mapping;

struct verbd_request {
    struct http_request http;
    int method_id;                       /* METHOD_* or an extension id */
    const char *path;                    /* normalised, NUL-terminated */
    const char *subpath;                 /* below the mapping prefix */
    const struct route_mapping *mapping; /* set by the router */
    int refusal;                         /* the router's error status */
    const char *body;                    /* read for modules that want it */
    size_t body_len;
    void *body_state;                    /* a streaming module's */
};

/* A piece of the response body: bytes in `body`, or a range of the file. */
struct body_piece {
    bool is_file;
    uint64_t offset;  /* into body.p, or into the file */
    uint64_t len;
};

/* An open file a response or an output segment holds: closed when done,
 * or handed back with release(ctx) if it is shared (verbd.h). */
struct file_hold {
    int fd;                   /* -1: none */
    void (*release)(void *ctx);
    void *ctx;
};

void file_hold_drop(struct file_hold *h);

struct verbd_response {
    int status;
    struct buf head;          /* "Name: value\r\n" lines from the handler */
    struct buf body;          /* memory parts of the body */
    struct body_piece *pieces;
    size_t npieces, cap_pieces;
    struct file_hold file;    /* the file the file pieces refer to */
    bool close;               /* close the connection after sending */
};

void response_init(struct verbd_response *res);
/* Forgets status, headers and body (closing the file) but keeps memory. */
void response_reset(struct verbd_response *res);
void response_free(struct verbd_response *res);
/* Total body length. */
uint64_t response_body_length(const struct verbd_response *res);

#endif
