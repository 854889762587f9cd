/* verbd probe: asks any HTTP server which methods it implements, allows
 * or refuses on a resource, and checks that its answers agree (over
 * HTTP/1.1; with --http2 over HTTP/2 as well, and whether the two agree).
 *
 *   probe.c        command line, the list of probes, the run
 *   probe_plan.c   which method may go where: safety, random paths, scratch
 *   probe_net.c    URL, connection, one bounded request/response exchange
 *   probe_h2.c     the same exchange over HTTP/2 (libnghttp2)
 *   probe_tls.c    the TLS layer of an https connection (OpenSSL)
 *   probe_check.c  classification, inconsistencies, verdict
 *   probe_out.c    table and JSON output
 */
#ifndef VERBD_PROBE_H
#define VERBD_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* `verbd probe ...`: argv[0] is "probe".  Returns the exit status: 0
 * consistent, 1 inconsistencies found, 2 bad usage or URL, or the server
 * could not be reached. */
int probe_main(int argc, char **argv);

#define PROBE_MAX_HEAD (64 * 1024)   /* a response head larger than this is an error */
#define PROBE_MAX_BODY (1024 * 1024) /* body bytes read at most; then stop */
#define PROBE_KEEP_BODY (64 * 1024)  /* body bytes kept (to look for an echo) */
#define PROBE_MAX_FIELDS 512
#define PROBE_MAX_HEADERS 32 /* --header */
#define PROBE_MAX_PROBES 64
#define PROBE_MAX_FINDINGS 128
#define PROBE_VALUE 256     /* a copied field value, truncated */
#define PROBE_TARGET 4200   /* a request target: the URL's, or one derived from it */
#define PROBE_MAX_CREATED 4 /* resources the probe may create in one run */

struct addrinfo;

struct probe_url {
    bool tls;       /* https */
    char host[256]; /* for getaddrinfo: no brackets, zone unescaped */
    char port[8];
    char authority[300]; /* for Host: as in the URL, default port dropped */
    const char *scheme;  /* "http" or "https" */
    char target[4096];   /* origin-form: path and query */
    char text[4500];     /* the URL as shown */
};

/* What the TLS handshakes of a run agreed on, from the first one that
 * completed. */
struct probe_tls_info {
    bool done;
    char version[16]; /* "TLSv1.3" */
    char cipher[64];  /* "TLS_AES_256_GCM_SHA384" */
    char alpn[32];    /* the protocol the server selected, or "none" */
};

struct probe_tls_conn;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

struct probe_config {
    struct probe_url url;
    double timeout;                         /* seconds, per exchange */
    const char *headers[PROBE_MAX_HEADERS]; /* --header, validated */
    size_t nheaders;
    bool user_host; /* a --header sets Host */
    bool json;
    bool color;
    char etag[48];            /* the guard: "verbd-probe-<random>" */
    char cookie[48];          /* sent with TRACE, must not come back */
    char nonce[40];           /* random hex for the paths the probe makes up */
    bool unsafe;              /* --unsafe: unsafe methods may go to a scratch resource */
    bool has_scratch;         /* --scratch URL given */
    struct probe_url scratch; /* --scratch URL */
    struct addrinfo *addrs;
    const struct addrinfo *good; /* the address that last connected */
    /* https */
    bool insecure;              /* --insecure: no certificate verification */
    const char *cacert;         /* --cacert FILE: trust this instead of the system store */
    struct ssl_ctx_st *tls_ctx; /* what every connection shares (probe_tls.c) */
    struct probe_tls_info tls;  /* for the report */
    bool http2;                 /* this run speaks HTTP/2 (--http2) */
};

/* One copied response field. */
struct probe_value {
    bool present;
    char v[PROBE_VALUE];
};

enum probe_class {
    CLASS_ALLOWED,         /* implemented and allowed (2xx, the guard's 412, ...) */
    CLASS_CREDENTIALS,     /* 401, 403, 407 */
    CLASS_NOT_ALLOWED,     /* 405 */
    CLASS_NOT_IMPLEMENTED, /* 501 */
    CLASS_OTHER,           /* any other status */
    CLASS_MALFORMED,       /* a response that is not valid HTTP/1.1 */
    CLASS_NO_ANSWER,       /* no response */
    CLASS_NOT_TRIED,       /* not sent: unsafe, and no scratch resource for it */
};

/* Where a probe is sent (probe_plan.c decides). */
enum probe_where {
    AT_RESOURCE, /* the URL's own target (or "*") */
    AT_MISSING,  /* a random path beside it that does not exist */
    AT_SCRATCH,  /* the scratch resource, or one the probe derived from it */
};

struct probe {
    /* what was sent */
    char method[68];
    bool asterisk; /* OPTIONS * */
    bool guarded;  /* the If-Match/If guard: a token no registry holds */
    bool unknown;  /* the probe's own made-up method token */
    bool tried;    /* sent (else see not_tried) */
    enum probe_where where;
    char target[PROBE_TARGET];      /* the request target sent */
    char destination[PROBE_TARGET]; /* COPY, MOVE: the path (sent as an absolute URL) */
    bool content;                   /* carries the scratch content (PUT) */
    bool creates;                   /* the PUT that makes the scratch resource */
    bool if_none_match;             /* If-None-Match: * (create, never replace) */
    char not_tried[300];            /* why it was not sent */
    char known[600];                /* what is known about it without sending it */
    /* what came back */
    bool answered; /* a valid status line and head */
    bool connect_failed;
    char error[320];       /* !answered, or a problem reading the body */
    const char *malformed; /* the parser's reason, if the head was invalid */
    int status;
    char reason[64];
    struct probe_value allow, retry_after, content_length, etag, last_modified, content_type,
        location, server, dav, accept_patch;
    bool te_and_cl;       /* both Transfer-Encoding and Content-Length */
    bool body_incomplete; /* closed before the framed end */
    bool body_error;      /* malformed chunked coding */
    bool truncated;       /* stopped at PROBE_MAX_BODY or the deadline */
    uint64_t body_bytes;
    uint64_t unexpected_body; /* bytes after a head that allows no body */
    bool cookie_echoed;
    /* the verdict on it */
    enum probe_class cls;
    char explain[320];
};

enum finding_kind { FINDING_PROBLEM, FINDING_NOTE };

struct finding {
    enum finding_kind kind;
    char methods[600]; /* "PUT, DELETE": the same finding for several */
    const char *rfc;   /* "RFC 9110 §15.5.6" */
    char text[400];
};

/* The resource the unsafe methods go to (--unsafe), and what the probe
 * created on the server and must delete again. */
struct probe_scratch {
    bool given;                 /* --scratch URL, else created by the probe */
    char dir[PROBE_TARGET];     /* where the probe creates its own resources */
    char path[PROBE_TARGET];    /* the scratch resource */
    char current[PROBE_TARGET]; /* where it is now (after a MOVE) */
    bool attempted;             /* the PUT that makes it was sent */
    bool ready;                 /* the probe wrote it itself: unsafe methods may go there */
    bool exists;                /* current holds the probe's resource */
    char why[300];              /* why not ready */
    char created[PROBE_MAX_CREATED][PROBE_TARGET]; /* derived resources that exist */
    size_t ncreated;
    char left[PROBE_MAX_CREATED + 1][PROBE_TARGET + 64]; /* cleanup failed for these */
    size_t nleft;
};

struct probe_run {
    struct probe probes[PROBE_MAX_PROBES];
    size_t nprobes;
    struct probe_scratch scratch;
    struct finding findings[PROBE_MAX_FINDINGS];
    size_t nfindings;
    size_t problems;
    char verdict[1024];
    char advice[6][1400];
    size_t nadvice;
    /* --http2: where this run's answers differ from HTTP/1.1's */
    bool compared;
    struct finding differs[PROBE_MAX_PROBES];
    size_t ndiffers;
};

/* probe_net.c */
/* Parses http[s]://HOST[:PORT][/PATH][?QUERY]; on error returns -1 with a
 * message in err.  Other schemes are errors too. */
int probe_parse_url(const char *text, struct probe_url *url, char *err, size_t cap);
/* Resolves the URL's host into cfg->addrs; -1 with a message on failure. */
int probe_resolve(struct probe_config *cfg, char *err, size_t cap);
/* Sends one request and reads its response, bounded in size and time:
 * over HTTP/1.1, or HTTP/2 with cfg->http2 (probe_h2.c). */
void probe_exchange(struct probe_config *cfg, struct probe *p);
/* The request's header fields, in the order sent, one call each: Host
 * (unless a --header sets it), the probe's own, the user's. */
void probe_request_fields(const struct probe_config *cfg, const struct probe *p,
                          void (*field)(void *arg, const char *name, const char *value), void *arg);
/* A connection for one exchange, plain or TLS, bounded by a deadline. */
struct probe_reader {
    int fd;
    struct probe_tls_conn *tls; /* https, else NULL */
    double deadline;
    bool eof;
    int err; /* errno of a failed recv, 0 */
};
/* Connects rd (its deadline set) to the server, with the TLS handshake
 * for https; -1 with p->error and p->connect_failed set. */
int probe_open(struct probe_config *cfg, struct probe *p, struct probe_reader *rd);
void probe_close(struct probe_reader *rd);
/* Sends all of buf; -1 with errno on failure or past the deadline. */
int probe_send(struct probe_reader *rd, const char *buf, size_t n);
/* Reads once into buf[0, cap); the count, 0 at EOF (rd->eof), past the
 * deadline or on an error (rd->err). */
size_t probe_read(struct probe_reader *rd, char *buf, size_t cap);
/* Notes a final response head's status and fields in p (answered). */
struct http_response;
void probe_take_head(struct probe *p, const struct http_response *r);
/* Counts body bytes, keeping the first PROBE_KEEP_BODY of them; then,
 * at the end of the body, looks there for the TRACE cookie. */
void probe_take_body(struct probe *p, const char *data, size_t n);
void probe_body_end(const struct probe_config *cfg, struct probe *p);

/* probe_h2.c: probe_exchange over HTTP/2 (libnghttp2's client session):
 * h2c with prior knowledge for http URLs, ALPN h2 for https. */
void probe_h2_exchange(struct probe_config *cfg, struct probe *p);
/* CLOCK_MONOTONIC in seconds: what deadlines are measured in. */
double probe_now(void);

/* probe_tls.c: all the probe knows of OpenSSL.  The plain path connects
 * the socket; an https exchange then runs its handshake, its request and
 * its response through these, each bounded by the exchange's deadline (a
 * CLOCK_MONOTONIC time in seconds). */
/* Sets up what every connection of the run shares (trust store or
 * --cacert, ALPN); -1 with a message on failure. */
int probe_tls_init(struct probe_config *cfg, char *err, size_t cap);
void probe_tls_free(struct probe_config *cfg);
/* TLS over the connected socket fd, with SNI and host name verification
 * for cfg->url.host; notes the result in cfg->tls.  NULL with a message on
 * failure (the caller still owns and closes fd). */
struct probe_tls_conn *probe_tls_connect(struct probe_config *cfg, int fd, double deadline,
                                         char *err, size_t cap);
/* Like send and recv: the count, 0 at the end of the stream (recv), or -1
 * with errno (ETIMEDOUT past the deadline, EPROTO for a TLS error). */
long probe_tls_send(struct probe_tls_conn *c, const char *buf, size_t n, double deadline);
long probe_tls_recv(struct probe_tls_conn *c, char *buf, size_t cap, double deadline);
/* Sends close_notify if it can without waiting, and frees c (not the fd). */
void probe_tls_close(struct probe_tls_conn *c);

/* probe_plan.c */
/* Adds the default probes, or those --method asked for, in the order they
 * are sent. */
void probe_plan(const struct probe_config *cfg, struct probe_run *run, const char *const *methods,
                size_t nmethods);
/* Decides where run->probes[i] goes, given the answers so far: fills its
 * target (and destination), or marks it not tried. */
void probe_place(const struct probe_config *cfg, struct probe_run *run, size_t i);
/* Notes what run->probes[i]'s answer did to the scratch resources. */
void probe_after(const struct probe_config *cfg, struct probe_run *run, size_t i);
/* Deletes whatever the probe created and is still there. */
void probe_cleanup(struct probe_config *cfg, struct probe_run *run);
/* True for a method the probe never sends to an existing resource of the
 * user's: registered and not safe (RFC 9110 §9.2.1). */
bool probe_method_unsafe(const char *method);
/* What the probe writes to its scratch resource. */
const char *probe_scratch_content(void);

/* probe_check.c */
void probe_classify(struct probe *p);
void probe_check(const struct probe_config *cfg, struct probe_run *run);
/* --http2: notes in h2->differs where its answers differ from h1's, the
 * same plan sent over HTTP/1.1, and says so in its verdict. */
void probe_compare(const struct probe_run *h1, struct probe_run *h2);

/* probe_out.c */
void probe_print_table(const struct probe_config *cfg, const struct probe_run *run);
void probe_print_json(const struct probe_config *cfg, const struct probe_run *run);

/* Copies s[0, n) into out[cap] with anything but printable ASCII replaced
 * by '?': server text never reaches the terminal raw. */
void probe_copy_clean(char *out, size_t cap, const char *s, size_t n);

#endif
