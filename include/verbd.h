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
struct verbd_mapping;
struct verbd_request;
struct verbd_response;

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

/*
 * Sets a server-wide setting by name; values are strings as in the config
 * file.  Names: workers (N or "auto"), max_connections, header_timeout,
 * idle_timeout, body_timeout, send_timeout, shutdown_timeout (durations:
 * "10s", "500ms", "2m"), max_target, max_header, max_fields, max_body
 * (sizes: "8k", "1m"), access_log (path, "stdout" or "off"), error_log
 * (path, "stderr" or "off"), log_level (error, warn, info, debug),
 * unknown_method (501, the default, or 405: methods nothing implements
 * get 405 with the resource's Allow), refusal_cache ("max-age=N" adds
 * Cache-Control to 405 and 501; "off").
 * Returns 0, or -1 with a message in err.
 */
int verbd_server_set(struct verbd_server *srv, const char *name, const char *value,
                     char *err, size_t errlen);

/*
 * Maps a location to a built-in module ("static") whose argument is `arg`
 * (for static: the root directory).  `location` is a path prefix ("/",
 * "/files/", "/hello": without a trailing slash it matches itself and what
 * lies below it on a segment boundary) or "= /path" for that path only.
 * Returns the mapping, or NULL with a message in err.
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
 * max_body) and available through verbd_request_body(). */
struct verbd_mapping *verbd_server_map_handler(struct verbd_server *srv, const char *location,
                                               const char *methods, verbd_handler_fn *fn,
                                               void *data, char *err, size_t errlen);

/*
 * Sets a mapping directive: one of the module's ("listing" "on"; "index"
 * "index.html" "index.htm") or one every mapping has: "methods" M... (narrows
 * the methods the module implements; naming one it does not is an error),
 * "trace" on|off, "header" NAME VALUE (added to every response here).
 * Returns 0, or -1 with a message in err.
 */
int verbd_mapping_set(struct verbd_mapping *map, const char *name, int argc,
                      const char *const *argv, char *err, size_t errlen);

/* Reads a config file (docs/config.md) into the server: listeners,
 * settings, mappings.  Writes each error as "FILE:LINE:COL: message" to
 * `errors` (may be NULL) and returns how many there were.  The server
 * remembers the path: SIGHUP reloads it. */
int verbd_server_load_config(struct verbd_server *srv, const char *path, FILE *errors);

/* As verbd_server_load_config, but `listen` addresses are checked, not
 * bound: for verbd -t, and for a program whose own listeners replace the
 * file's (verbd -c FILE --listen ADDR). */
int verbd_server_check_config(struct verbd_server *srv, const char *path, FILE *errors);

/* Describes the built-in modules and the methods each implements and, if
 * the server has mappings, which locations enable them with which methods
 * (verbd -M). */
void verbd_server_describe(const struct verbd_server *srv, FILE *out);

/* Serves until SIGTERM or SIGINT (graceful stop) or verbd_server_stop().
 * Forks workers when more than one is configured.  Returns 0 after a clean
 * stop, -1 on a fatal error (logged). */
int verbd_server_run(struct verbd_server *srv);

/* Asks a running server to stop gracefully (async-signal-safe). */
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
/* The request body read for a C handler (NULL and 0 if none). */
const void *verbd_request_body(const struct verbd_request *req, size_t *len);
/* The state a streaming module's body callbacks built (NULL if none). */
void *verbd_request_body_state(const struct verbd_request *req);

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
/* Appends len bytes of the file fd from offset to the body.  The response
 * owns fd from the first call and closes it once when done; several ranges
 * of the same fd may be appended. */
void verbd_response_file(struct verbd_response *res, int fd, uint64_t offset, uint64_t len);
/* The same for an fd the caller keeps open for other responses (a cache):
 * verbd never closes it.  Each call hands verbd one hold on it, which
 * verbd gives back with release(ctx) once it no longer needs the fd (sent,
 * or the response dropped); several ranges of the same fd may be appended. */
void verbd_response_file_shared(struct verbd_response *res, int fd, uint64_t offset,
                                uint64_t len, void (*release)(void *ctx), void *ctx);
/* A complete error response: status, a short text/plain body naming the
 * status and `detail` (may be NULL).  Clears any header fields and body
 * added before; add fields such as Allow after it. */
void verbd_response_error(struct verbd_response *res, int status, const char *detail);
/* Closes the connection after this response. */
void verbd_response_close(struct verbd_response *res);

#ifdef __cplusplus
}
#endif
#endif
