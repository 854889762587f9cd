/* The error log (levels, written at once: it is rare) and the access log
 * (combined log format, buffered and written once per loop turn so a slow
 * disk costs one write per batch, not per request). */
#ifndef VERBD_CORE_LOG_H
#define VERBD_CORE_LOG_H

#include <stdint.h>
#include <sys/socket.h>

struct verbd_request;

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

int log_level_parse(const char *name);

/* Opens both logs per the settings' paths; -1 + err on failure. */
int log_open(const char *access, const char *error, int level, char *err, size_t errlen);
/* Re-opens log files (SIGHUP), e.g. after rotation. */
void log_reopen(void);
void log_close(void);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Queues one access-log line. */
void log_access(const struct sockaddr *peer, const struct verbd_request *req, int status,
                uint64_t body_bytes);
/* Writes queued access-log lines. */
void log_flush(void);

#endif
