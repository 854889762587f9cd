/* The error log (levels, written at once: it is rare) and the access log
 * (combined log format, buffered and written once per loop turn so a slow
 * disk costs one write per batch, not per request). */
#ifndef VERBD_CORE_LOG_H
#define VERBD_CORE_LOG_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

struct verbd_request;

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

int log_level_parse(const char *name);

/* Opens the error log (a path, "stderr" or "off"); -1 + err on failure. */
int log_open(const char *error, int level, char *err, size_t errlen);
/* Re-opens log files, the access logs too (SIGUSR1, SIGHUP), e.g. after
 * rotation; a file that cannot be opened again keeps the one open before. */
void log_reopen(void);
/* Log files created from now on in this process are given this owner
 * (the `user` the workers run as); (uid_t)-1: left as created. */
void log_files_owner(uid_t uid, gid_t gid);
void log_close(void);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An origin server's own error log: a destination and a level, shared by
 * every server that names the same destination. */
struct log_target;

/* The error log at `path` ("stderr", a file; "off": logs nothing) with
 * `level`, opened or shared; -1 + err if it cannot be opened. */
int log_target_open(const char *path, int level, struct log_target **target, char *err,
                    size_t errlen);
/* Drops a reference; the last one closes it.  NULL is fine. */
void log_target_release(struct log_target *target);
/* Messages go to t (NULL: the server's error log) until the next call:
 * the session sets the exchange's before running a module for it.
 * Returns the one in use before. */
struct log_target *log_use(struct log_target *t);

/* An access log: one per destination, shared by every origin server
 * that names it. */
struct log_sink;

/* The access log at `path` ("stdout" or a file; "off": *sink = NULL),
 * opened or shared; -1 + err if it cannot be opened. */
int log_sink_open(const char *path, struct log_sink **sink, char *err, size_t errlen);
/* Drops a reference; the last one flushes and closes it.  NULL is fine. */
void log_sink_release(struct log_sink *sink);

/* Queues one access-log line (nothing if sink is NULL). */
void log_access(struct log_sink *sink, const struct sockaddr *peer, const struct verbd_request *req,
                int status, uint64_t body_bytes);
/* Writes the queued access-log lines of every sink. */
void log_flush(void);

#endif
