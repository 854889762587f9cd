/* The FastCGI 1.0 wire format: records out (a request's BEGIN_REQUEST,
 * PARAMS and STDIN streams, ABORT_REQUEST) and records in, read as they
 * arrive in any split.  A pure codec over buffers, like the HTTP parser:
 * no I/O, fuzzed (fuzz/fuzz_fastcgi.c). */
#ifndef VERBD_MOD_FASTCGI_RECORD_H
#define VERBD_MOD_FASTCGI_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum fcgi_type {
    FCGI_BEGIN_REQUEST = 1,
    FCGI_ABORT_REQUEST = 2,
    FCGI_END_REQUEST = 3,
    FCGI_PARAMS = 4,
    FCGI_STDIN = 5,
    FCGI_STDOUT = 6,
    FCGI_STDERR = 7,
    FCGI_DATA = 8,
    FCGI_GET_VALUES = 9,
    FCGI_GET_VALUES_RESULT = 10,
    FCGI_UNKNOWN_TYPE = 11,
};

#define FCGI_HEADER_LEN 8
#define FCGI_CONTENT_MAX 65535
#define FCGI_RESPONDER 1
#define FCGI_REQUEST_COMPLETE 0

/* BEGIN_REQUEST for a responder; keep_conn: the application keeps the
 * connection open after the request. */
void fcgi_begin_request(struct buf *out, uint16_t id, bool keep_conn);
void fcgi_abort_request(struct buf *out, uint16_t id);
/* Records of `type` carrying p[0, len), as many as it takes; len 0 is the
 * empty record that ends the stream. */
void fcgi_stream(struct buf *out, enum fcgi_type type, uint16_t id, const void *p, size_t len);
/* A name-value pair of the PARAMS stream's content. */
void fcgi_param(struct buf *content, const char *name, size_t nlen, const char *value, size_t vlen);

/* What the application sends, record by record. */
struct fcgi_reader {
    uint8_t head[FCGI_HEADER_LEN];
    size_t head_have;
    enum fcgi_type type;
    uint16_t id;
    size_t content_left, padding_left;
    uint8_t end[8]; /* END_REQUEST's body */
    size_t end_have;
};

enum fcgi_event {
    FCGI_MORE,   /* everything given was consumed: more input is needed */
    FCGI_OUTPUT, /* bytes of STDOUT (out_type FCGI_STDOUT; len 0: the stream's end) or
                    STDERR (out_type FCGI_STDERR) */
    FCGI_END,    /* END_REQUEST: app_status, protocol_status */
    FCGI_ERROR,  /* not FastCGI, another request id, or a record the responder
                    role has no use for: why */
};

struct fcgi_out {
    enum fcgi_type type;
    const char *p;
    size_t len;
    uint32_t app_status;
    uint8_t protocol_status;
    const char *why;
};

/* Reads from p[0, n) for request `id`: consumes what it can (*used) up to
 * the next event and describes it in *out.  Content is handed out as it
 * arrives, never gathered, so nothing here is bounded by a record's size.
 * FCGI_MORE: all of p was used. */
enum fcgi_event fcgi_read(struct fcgi_reader *r, uint16_t id, const char *p, size_t n, size_t *used,
                          struct fcgi_out *out);

#endif
