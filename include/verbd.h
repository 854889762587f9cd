/* libverbd: an HTTP/1.1 server library that knows exactly which request
 * methods it implements.  This header is the whole public API; the verbd
 * daemon uses nothing else. */
#ifndef VERBD_H
#define VERBD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct verbd_server;
struct verbd_site;
struct verbd_mapping;
struct verbd_request;
struct verbd_response;
struct verbd_exchange;

/* ---- Server ---------------------------------------------------------- */

/* A server with default limits, no listeners and no mappings. */
struct verbd_server *verbd_server_new(void);
void verbd_server_free(struct verbd_server *srv);

/* Adds a listening address: "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80",
 * port 0 for any free port.  Binds at once.  Returns 0, or -1 with a
 * one-line message in err. */
int verbd_server_listen(struct verbd_server *srv, const char *addr, char *err, size_t errlen);

/* The bound address of listener i ("127.0.0.1:41234"), or NULL. */
const char *verbd_server_listener_name(const struct verbd_server *srv, size_t i);
/* Whether listener i speaks TLS. */
int verbd_server_listener_tls(const struct verbd_server *srv, size_t i);

/*
 * Sets a server-wide setting by name; values are strings as in the config
 * file.  Names: workers (N or "auto"), max_connections, header_timeout,
 * idle_timeout, body_timeout, send_timeout, shutdown_timeout (durations:
 * "10s", "500ms", "2m"), max_target, max_header, max_fields (sizes: "8k",
 * "1m"), max_body (a size or "off": the default for mappings without their
 * own; unset, 1m for static and C handlers, none for webdav), access_log
 * (path, "stdout" or "off"), error_log (path, "stderr" or "off"),
 * log_level (error, warn, info, debug),
 * unknown_method (501, the default, or 405: methods nothing implements
 * get 405 with the resource's Allow), refusal_cache ("max-age=N" adds
 * Cache-Control to 405 and 501; "off").
 * Returns 0, or -1 with a message in err.
 */
int verbd_server_set(struct verbd_server *srv, const char *name, const char *value, char *err,
                     size_t errlen);

/*
 * Maps a location to a built-in module ("static") whose argument is `arg`
 * (for static: the root directory).  `location` is a path prefix ("/",
 * "/files/", "/hello": without a trailing slash it matches itself and what
 * lies below it on a segment boundary), "= /path" for that path only,
 * "^~ /static/" for a prefix that, as the longest match, stops the search
 * for a regular expression, or a regular expression (PCRE2) matched
 * against the decoded path: "~ \\.php$" (case-sensitive), "~* \\.(gif|jpg)$"
 * (not).  As in nginx: an exact location wins; else the longest prefix if
 * it is ^~; else the first regular expression that matches, in the order
 * the mappings were added; else the longest prefix.  A regex location's
 * module gets the whole path (verbd_request_subpath), and its captures
 * are $1..$9 in its "return" and "try_files".
 * Returns the mapping, or NULL with a message in err (a duplicate
 * location, an expression that does not compile).
 */
struct verbd_mapping *verbd_server_map(struct verbd_server *srv, const char *location,
                                       const char *module, const char *arg, char *err,
                                       size_t errlen);

/* A handler written in C: answers every request its mapping serves. */
typedef void verbd_handler_fn(void *data, const struct verbd_request *req,
                              struct verbd_response *res);

/* Maps a location to a C handler implementing `methods` (space-separated
 * tokens, registered or not: "GET POST", "BREW"; HEAD comes with GET).
 * The request body, if any, is read before the handler runs (up to
 * max_body) and available through verbd_request_body().  The response is
 * sent when the handler returns.  This is the synchronous convenience
 * built on the exchange calls below. */
struct verbd_mapping *verbd_server_map_handler(struct verbd_server *srv, const char *location,
                                               const char *methods, verbd_handler_fn *fn,
                                               void *data, char *err, size_t errlen);

/* A handler that starts an exchange and answers it now or later, from a
 * timer, a descriptor watch or a body callback (see "Exchange" below). */
typedef void verbd_start_fn(void *data, struct verbd_exchange *x);

/* Maps a location to an asynchronous C handler implementing `methods`.
 * Nothing of the request body is read until the handler asks for it with
 * verbd_read(). */
struct verbd_mapping *verbd_server_map_async(struct verbd_server *srv, const char *location,
                                             const char *methods, verbd_start_fn *fn, void *data,
                                             char *err, size_t errlen);

/*
 * Sets a mapping directive: one of the module's ("listing" "on"; "index"
 * "index.html" "index.htm") or one every mapping has: "methods" M... (narrows
 * the methods the module implements; naming one it does not is an error),
 * "trace" on|off, "header" NAME VALUE (added to every response here),
 * and access control: "allow"/"deny" ADDR|CIDR|all, "auth_basic" REALM|off,
 * "auth_basic_user_file" FILE (read now), "satisfy" any|all.  A mapping
 * with "auth_basic" but no user file refuses every request (401).
 * Redirects and rewrites: "return" CODE [URL|TEXT], "rewrite" REGEX
 * REPLACEMENT [last|break|redirect|permanent], "try_files" FILE... URI|=CODE
 * (needs a root), "error_page" CODE... [=CODE] URI, "root" DIR.
 * Returns 0, -1 with a message in err, or 1 with a warning in err (the
 * directive is taken: a network with host bits set, weak password hashes).
 */
int verbd_mapping_set(struct verbd_mapping *map, const char *name, int argc,
                      const char *const *argv, char *err, size_t errlen);

/* ---- Upstream groups --------------------------------------------------- */

/* A named group of upstream servers for gateway mappings (`proxy
 * http://NAME/`): the config's `upstream NAME { ... }`.  NULL + err if the
 * name is taken. */
struct verbd_upstream;
struct verbd_upstream *verbd_server_upstream(struct verbd_server *srv, const char *name, char *err,
                                             size_t errlen);
/* Adds a member: "HOST:PORT", "[V6]:PORT" or "unix:/PATH" (resolved now);
 * options NULL or space-separated weight=N (1), max_fails=N (1; 0: never
 * marked down), fail_timeout=DURATION (10s: how long a member that failed
 * max_fails times in a row is left out). */
int verbd_upstream_server(struct verbd_upstream *up, const char *addr, const char *options,
                          char *err, size_t errlen);
/* "balance" round_robin (weighted, the default) or least_conn;
 * "keepalive" N idle connections kept per member and worker (16). */
int verbd_upstream_set(struct verbd_upstream *up, const char *name, const char *value, char *err,
                       size_t errlen);

/* ---- Origin servers (virtual hosts) ---------------------------------- */

/*
 * A server without sites is one origin server: the calls above map and
 * set for it.  A site is an origin server of its own, chosen by the
 * request's Host among the sites sharing an address (a `server` block):
 * its own host names, mappings and method decision (a method is 501 only
 * if none of *its* mappings implements it), and settings.  The first site
 * replaces the implicit origin server; NULL + err if mappings were made
 * on the server itself.
 */
struct verbd_site *verbd_server_add_site(struct verbd_server *srv, char *err, size_t errlen);

/* Adds a listening address to the site and binds it, or shares it with
 * sites added to it before.  `flags`: NULL, or space-separated "tls" (the
 * address speaks TLS: every site on it needs verbd_site_tls; the client's
 * SNI picks the certificate) and "default_server" (the address's default:
 * the site for a Host no site names; otherwise the first site listing the
 * address is). */
int verbd_site_listen(struct verbd_site *site, const char *addr, const char *flags, char *err,
                      size_t errlen);

/* The site's certificate (a PEM chain: the leaf, then intermediates) and
 * private key, for its addresses with the "tls" flag; protocols ("TLSv1.2
 * TLSv1.3") and ciphers (an OpenSSL list for TLS 1.2) NULL for modern
 * defaults.  The files are read at once: -1 + err if they cannot be, or
 * do not match. */
int verbd_site_tls(struct verbd_site *site, const char *certificate, const char *key,
                   const char *protocols, const char *ciphers, char *err, size_t errlen);

/* Adds a host name: "example.org", "*.example.org" (any subdomain; the
 * longest such match wins), "www.example.*", ".example.org" (both), or
 * "_" (matches nothing). */
int verbd_site_name(struct verbd_site *site, const char *name, char *err, size_t errlen);

/* A setting of the site's own, overriding the server's: access_log,
 * max_body, unknown_method, refusal_cache, body_timeout, send_timeout,
 * min_rate, and (for the address's default site) header_timeout and
 * idle_timeout. */
int verbd_site_set(struct verbd_site *site, const char *name, const char *value, char *err,
                   size_t errlen);

/* As verbd_server_map, verbd_server_map_handler and verbd_server_map_async,
 * for a site. */
struct verbd_mapping *verbd_site_map(struct verbd_site *site, const char *location,
                                     const char *module, const char *arg, char *err, size_t errlen);
struct verbd_mapping *verbd_site_map_handler(struct verbd_site *site, const char *location,
                                             const char *methods, verbd_handler_fn *fn, void *data,
                                             char *err, size_t errlen);
struct verbd_mapping *verbd_site_map_async(struct verbd_site *site, const char *location,
                                           const char *methods, verbd_start_fn *fn, void *data,
                                           char *err, size_t errlen);

/* Reads a config file (docs/config.md) into the server: listeners,
 * settings, mappings.  Writes each error as "FILE:LINE:COL: message" to
 * `errors` (may be NULL) and returns how many there were.  The server
 * remembers the path: SIGHUP reloads it. */
int verbd_server_load_config(struct verbd_server *srv, const char *path, FILE *errors);

/* As verbd_server_load_config, but `listen` addresses are checked, not
 * bound: for verbd -t, and for a program whose own listeners replace the
 * file's (verbd -c FILE --listen ADDR). */
int verbd_server_check_config(struct verbd_server *srv, const char *path, FILE *errors);

/* What SIGHUP does: load(ctx) returns a new server read from the
 * configuration's source (not bound: the running listeners stay), or NULL
 * after logging why, and the running server takes over its settings and
 * mappings; settings made with verbd_server_set after this call are
 * applied again on top.  free_ctx(ctx) runs when the server is freed.
 * verbd_server_load_config sets this for its file; without it, SIGHUP
 * re-opens the log files. */
void verbd_server_on_reload(struct verbd_server *srv, struct verbd_server *(*load)(void *ctx),
                            void *ctx, void (*free_ctx)(void *ctx));

/* Describes the built-in modules and the methods each implements and, if
 * the server has mappings, which locations enable them with which methods
 * (verbd -M); with sites, each site's. */
void verbd_server_describe(const struct verbd_server *srv, FILE *out);

/* Serves until SIGTERM or SIGINT (graceful stop) or verbd_server_stop().
 * Forks workers when more than one is configured.  Returns 0 after a clean
 * stop, -1 on a fatal error (logged). */
int verbd_server_run(struct verbd_server *srv);

/* Asks a running server to stop gracefully: the process that called
 * verbd_server_run(), and with it every worker.  Callable from any thread
 * (that does not itself take SIGTERM), any worker, or a signal handler
 * (async-signal-safe). */
void verbd_server_stop(struct verbd_server *srv);

/* ---- Request (read-only, valid during the handler call) -------------- */

/* The method token as sent. */
const char *verbd_request_method(const struct verbd_request *req, size_t *len);
/* The decoded, normalised path ("/a/b.txt"), NUL-terminated. */
const char *verbd_request_path(const struct verbd_request *req);
/* The path below the mapping's prefix, always starting with '/'. */
const char *verbd_request_subpath(const struct verbd_request *req);
/* The query without '?', or NULL. */
const char *verbd_request_query(const struct verbd_request *req, size_t *len);
/* The first field named `name` (case-insensitive), or NULL; not
 * NUL-terminated, *len is its length. */
const char *verbd_request_header(const struct verbd_request *req, const char *name, size_t *len);
/* The number of header field lines in the request, and field i of them in
 * the order received: the name with its case as sent, the value without
 * surrounding whitespace (neither NUL-terminated).  Returns 0, or -1 if i
 * is out of range. */
size_t verbd_request_header_count(const struct verbd_request *req);
int verbd_request_header_at(const struct verbd_request *req, size_t i, const char **name,
                            size_t *nlen, const char **value, size_t *vlen);
/* 1 for HEAD (the response body is dropped after framing), else 0. */
int verbd_request_is_head(const struct verbd_request *req);
/* The request body read for a synchronous C handler (NULL and 0 if none). */
const void *verbd_request_body(const struct verbd_request *req, size_t *len);
/* 1 if the request carries a body (a Content-Length above 0, or chunked). */
int verbd_request_has_body(const struct verbd_request *req);
/* A chunked body's trailer section ("Name: value\r\n" lines, then a last
 * "\r\n"), once the body was read to its end; NULL before, or without
 * trailer fields. */
const char *verbd_request_trailers(const struct verbd_request *req, size_t *len);

/* ---- Response --------------------------------------------------------- */

/* Sets the status (default 200). */
void verbd_response_status(struct verbd_response *res, int status);
/* Adds a header field.  Date, Server, Content-Length and Connection are the
 * server's; do not add them. */
void verbd_response_header(struct verbd_response *res, const char *name, const char *value);
void verbd_response_header_n(struct verbd_response *res, const char *name, const char *value,
                             size_t len);
/* Adds header fields already formatted: `len` bytes of "Name: value\r\n"
 * lines (for fields a handler prepares once and sends often). */
void verbd_response_header_lines(struct verbd_response *res, const char *lines, size_t len);
/* Appends bytes to the body (copied). */
void verbd_response_body(struct verbd_response *res, const void *data, size_t len);
/* Appends len bytes at data without copying them: the caller keeps them
 * unchanged until verbd calls release(ctx) (once, when it has sent them,
 * copied them out or dropped them: a large piece may be written to the
 * client from where it is, so this can be long after verbd_send());
 * with release NULL, verbd copies the bytes by the time verbd_send()
 * returns (or the handler returns), and they may change after that. */
void verbd_response_body_shared(struct verbd_response *res, const void *data, size_t len,
                                void (*release)(void *ctx), void *ctx);
/* Appends len bytes of the file fd from offset to the body.  The response
 * owns fd from the first call and closes it once when done; several ranges
 * of the same fd may be appended. */
void verbd_response_file(struct verbd_response *res, int fd, uint64_t offset, uint64_t len);
/* The same for an fd the caller keeps open for other responses (a cache):
 * verbd never closes it.  Each call hands verbd one hold on it, which
 * verbd gives back with release(ctx) once it no longer needs the fd (sent,
 * or the response dropped); several ranges of the same fd may be appended. */
void verbd_response_file_shared(struct verbd_response *res, int fd, uint64_t offset, uint64_t len,
                                void (*release)(void *ctx), void *ctx);
/* A complete error response: status, a short text/plain body naming the
 * status and `detail` (may be NULL).  Clears any header fields and body
 * added before; add fields such as Allow after it. */
void verbd_response_error(struct verbd_response *res, int status, const char *detail);
/* Closes the connection after this response. */
void verbd_response_close(struct verbd_response *res);
/* States the body's length: the server sends it as Content-Length (for
 * HEAD too), passes on exactly that many bytes and closes the connection if
 * the handler writes fewer.  Without it the length is counted when the
 * whole body is known at the first verbd_send(); otherwise the body is
 * chunked (HTTP/1.1) or ends with the connection (HTTP/1.0). */
void verbd_response_length(struct verbd_response *res, uint64_t len);

/* Adds a trailer field, sent after a chunked body (announce it with a
 * Trailer header field); a response sent with a length drops it. */
void verbd_response_trailer(struct verbd_response *res, const char *name, const char *value);

/* ---- Exchange: one request and its response, answered at any pace ------
 *
 * An exchange lives from the handler's start until its response is
 * finished (or aborted) and its request body read or abandoned.  Then its
 * cleanups run (newest first), every timer, watch and deferred call it
 * registered is cancelled, and its memory is freed: no callback of an
 * exchange ever runs after that.  All calls below are made on the worker's
 * thread, from the start handler or from one of the exchange's callbacks.
 */

const struct verbd_request *verbd_exchange_request(struct verbd_exchange *x);
struct verbd_response *verbd_exchange_response(struct verbd_exchange *x);

/* Memory freed with the exchange (never NULL). */
void *verbd_alloc(struct verbd_exchange *x, size_t n);
/* fn(arg) runs when the exchange ends, finished or aborted. */
void verbd_cleanup(struct verbd_exchange *x, void (*fn)(void *arg), void *arg);
/* 1 once the client went away or the response was aborted (for cleanups). */
int verbd_aborted(const struct verbd_exchange *x);

/* Hands the status, header fields and body pieces built so far on the
 * response to the client; the first call sends the head, and header fields
 * added afterwards are ignored.  Returns 1 while the exchange's queued
 * output is under its bound (64 KiB), 0 above it: then produce nothing
 * more until verbd_on_writable's callback.  Body pieces may be added again
 * after each call. */
int verbd_send(struct verbd_exchange *x);
/* Sends what is left and ends the response. */
void verbd_finish(struct verbd_exchange *x);
/* The response cannot be completed: the connection is closed after what
 * was sent, so the client sees a truncated answer rather than a wrong one. */
void verbd_abort(struct verbd_exchange *x);
/* cb(x, arg) runs once, when queued output falls under the bound. */
void verbd_on_writable(struct verbd_exchange *x, void (*cb)(struct verbd_exchange *x, void *arg),
                       void *arg);

/* The exchange ends, as when the client goes away, if the client ends its
 * side of the connection while nothing more is read from it for the
 * exchange (an HTTP/1 FIN; an HTTP/2 client cancels its stream instead,
 * which always ends the exchange): no answer is sent, the connection
 * closes and the cleanups run, so a gateway stops the work nobody waits
 * for (as nginx does).  Without it a client that half-closed still gets
 * its answer. */
void verbd_end_on_client_end(struct verbd_exchange *x);

/* Reads the request body at the handler's pace: data(x, bytes, len, arg)
 * for each piece (de-chunked; the bytes are valid during the call only),
 * then done(x, status, arg): status 0 when the body is complete, or the
 * status the failure calls for (400 malformed chunking, 408 too slow, 413
 * over max_body).  Sends 100 Continue if the client waits for it and
 * nothing sent it yet.  A request without a body gets done(x, 0) at once
 * (from the loop, not from inside this call).  Finishing the response
 * abandons what is left of the body. */
void verbd_read(struct verbd_exchange *x,
                void (*data)(struct verbd_exchange *x, const void *p, size_t len, void *arg),
                void (*done)(struct verbd_exchange *x, int status, void *arg), void *arg);
/* Stops reading the body (and the socket) until verbd_read_resume(). */
void verbd_read_pause(struct verbd_exchange *x);
void verbd_read_resume(struct verbd_exchange *x);
/* Sends 100 Continue now (a gateway relays its upstream's). */
void verbd_continue(struct verbd_exchange *x);
/* Sends an informational response before the final one (102..199, such
 * as 103 Early Hints): `fields` is len bytes of "Name: value\r\n" lines.
 * Dropped for a client that cannot take it (HTTP/1.0) or once the final
 * head went out. */
void verbd_interim(struct verbd_exchange *x, int status, const char *fields, size_t len);
/* Switches the connection to the protocol the client asked for (RFC 9110
 * §7.8): sends the response built so far, whose status must be 101, and
 * makes the connection a tunnel.  The bytes the client sends from then on
 * reach data() as they come, its end reaches done(x, 0); body pieces go to
 * the client as they are, unframed, and verbd_finish() ends the tunnel (the
 * connection closes once they are sent).  Pausing and verbd_send's bound
 * work as for a body.  Only for a request that asked for an upgrade (an
 * Upgrade field, HTTP/1.1) and has no body; returns 0, sending nothing,
 * otherwise. */
int verbd_upgrade(struct verbd_exchange *x,
                  void (*data)(struct verbd_exchange *x, const void *p, size_t len, void *arg),
                  void (*done)(struct verbd_exchange *x, int status, void *arg), void *arg);

struct verbd_timer;
struct verbd_watch;
/* cb(x, arg) after `ms` milliseconds, then every `every_ms` if that is
 * not 0, until cancelled or the exchange ends. */
struct verbd_timer *verbd_timer(struct verbd_exchange *x, uint64_t ms, uint64_t every_ms,
                                void (*cb)(struct verbd_exchange *x, void *arg), void *arg);
void verbd_timer_cancel(struct verbd_timer *t);
/* Arms the timer again, `ms` from now, whether it fired, was cancelled or
 * is still pending: a deadline pushed back on every read costs no memory,
 * where a new timer each time would hold its handle until the exchange
 * ends. */
void verbd_timer_reset(struct verbd_timer *t, uint64_t ms);
/* cb(x, events, arg) while fd is readable (VERBD_READABLE) or writable
 * (VERBD_WRITABLE), as asked in `events`, until cancelled or the exchange
 * ends.  The descriptor stays the caller's. */
#define VERBD_READABLE 1u
#define VERBD_WRITABLE 2u
struct verbd_watch *verbd_watch(struct verbd_exchange *x, int fd, unsigned events,
                                void (*cb)(struct verbd_exchange *x, unsigned events, void *arg),
                                void *arg);
void verbd_watch_cancel(struct verbd_watch *w);
/* cb(x, arg) once, on the loop, after the current call returns. */
void verbd_defer(struct verbd_exchange *x, void (*cb)(struct verbd_exchange *x, void *arg),
                 void *arg);

#ifdef __cplusplus
}
#endif
#endif
