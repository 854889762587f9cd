#include "core/log.h"

#include "core/addr.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/exchange.h"

/* One error log per process (workers are processes); access logs are
 * sinks, each buffered and written once per loop turn. */
static struct {
    char *error_path;
    int error_fd;
    int level;
} lg = {NULL, 2, LOG_INFO};

struct log_sink {
    struct log_sink *next;
    char *path;
    int fd;
    unsigned refs;
    struct buf pending;
};

static struct log_sink *sinks;

struct log_target {
    struct log_target *next;
    char *path;
    int fd; /* -1: off */
    int level;
    unsigned refs;
};

static struct log_target *targets, *current;

#define ACCESS_FLUSH_AT 16384        /* flush early past this many pending bytes */
#define ACCESS_MAX_PENDING (1 << 20) /* drop lines past this: never grow unbounded */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

/* The owner of the log files this process creates (`user`), or -1. */
static uid_t files_uid = (uid_t)-1;
static gid_t files_gid = (gid_t)-1;

void log_files_owner(uid_t uid, gid_t gid)
{
    files_uid = uid;
    files_gid = gid;
}

static int open_one(const char *path, int std_fd, const char *std_name)
{
    if (!path || strcmp(path, "off") == 0)
        return -1;
    if (strcmp(path, std_name) == 0)
        return std_fd;
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    /* A file verbd creates belongs to the user its workers run as, so that
     * they can open it again after a rotation. */
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST)
        return open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0 && files_uid != (uid_t)-1 && fchown(fd, files_uid, files_gid) < 0) {
        int e = errno;
        close(fd);
        unlink(path);
        errno = e;
        return -1;
    }
    return fd;
}

static void close_one(int fd)
{
    if (fd > 2)
        close(fd);
}

int log_open(const char *error, int level, char *err, size_t errlen)
{
    log_close();
    lg.level = level;
    lg.error_path = error ? strdup(error) : NULL;
    lg.error_fd = open_one(error, 2, "stderr");
    if (lg.error_fd < 0 && error && strcmp(error, "off") != 0) {
        snprintf(err, errlen, "error log %s: %s", error, strerror(errno));
        lg.error_fd = 2;
        return -1;
    }
    return 0;
}

int log_sink_open(const char *path, struct log_sink **sink, char *err, size_t errlen)
{
    *sink = NULL;
    if (!path || strcmp(path, "off") == 0)
        return 0;
    for (struct log_sink *s = sinks; s; s = s->next) {
        if (strcmp(s->path, path) == 0) {
            s->refs++;
            *sink = s;
            return 0;
        }
    }
    int fd = open_one(path, 1, "stdout");
    if (fd < 0) {
        snprintf(err, errlen, "access log %s: %s", path, strerror(errno));
        return -1;
    }
    struct log_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path)))
        abort();
    s->fd = fd;
    s->refs = 1;
    s->next = sinks;
    sinks = s;
    *sink = s;
    return 0;
}

static void sink_flush(struct log_sink *s);

void log_sink_release(struct log_sink *sink)
{
    if (!sink || --sink->refs)
        return;
    sink_flush(sink);
    for (struct log_sink **p = &sinks; *p; p = &(*p)->next) {
        if (*p == sink) {
            *p = sink->next;
            break;
        }
    }
    close_one(sink->fd);
    free(sink->path);
    buf_free(&sink->pending);
    free(sink);
}

int log_target_open(const char *path, int level, struct log_target **target, char *err,
                    size_t errlen)
{
    for (struct log_target *t = targets; t; t = t->next) {
        if (strcmp(t->path, path) == 0 && t->level == level) {
            t->refs++;
            *target = t;
            return 0;
        }
    }
    int fd = open_one(path, 2, "stderr");
    if (fd < 0 && strcmp(path, "off") != 0) {
        snprintf(err, errlen, "error log %s: %s", path, strerror(errno));
        return -1;
    }
    struct log_target *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path)))
        abort();
    t->fd = fd;
    t->level = level;
    t->refs = 1;
    t->next = targets;
    targets = t;
    *target = t;
    return 0;
}

void log_target_release(struct log_target *target)
{
    if (!target || --target->refs)
        return;
    if (current == target)
        current = NULL;
    for (struct log_target **p = &targets; *p; p = &(*p)->next) {
        if (*p == target) {
            *p = target->next;
            break;
        }
    }
    close_one(target->fd);
    free(target->path);
    free(target);
}

struct log_target *log_use(struct log_target *t)
{
    struct log_target *before = current;
    current = t;
    return before;
}

/* Re-opens one log file; on failure it keeps the file it had, and says so
 * where it can. */
static int reopen_one(const char *path, int fd, int std_fd, const char *std_name)
{
    int again = open_one(path, std_fd, std_name);
    if (again < 0) {
        if (path && strcmp(path, "off") != 0)
            log_msg(LOG_ERROR, "re-opening the log %s: %s (still writing to the one open before)",
                    path, strerror(errno));
        return fd;
    }
    close_one(fd);
    return again;
}

void log_reopen(void)
{
    log_flush();
    /* The error log first: a failure below is told in the new one. */
    lg.error_fd = reopen_one(lg.error_path, lg.error_fd, 2, "stderr");
    for (struct log_target *t = targets; t; t = t->next)
        t->fd = reopen_one(t->path, t->fd, 2, "stderr");
    for (struct log_sink *s = sinks; s; s = s->next)
        s->fd = reopen_one(s->path, s->fd, 1, "stdout");
}

void log_close(void)
{
    log_flush();
    close_one(lg.error_fd);
    free(lg.error_path);
    lg.error_path = NULL;
    lg.error_fd = 2;
}

void log_msg(int level, const char *fmt, ...)
{
    int fd = current ? current->fd : lg.error_fd;
    if (level > (current ? current->level : lg.level) || fd < 0)
        return;
    char line[1024];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, "[%s] %d: ", level_names[level], getpid());
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    n = (m < 0 || (size_t)(n + m) >= sizeof line - 1) ? (int)sizeof line - 2 : n + m;
    line[n++] = '\n';
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
}

/* Appends bytes with anything that could forge or break a log line (quotes,
 * backslashes, control and non-ASCII bytes) as \xHH. */
static void append_escaped(struct buf *b, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!p || n == 0) {
        buf_append(b, "-", 1);
        return;
    }
    buf_reserve(b, n * 4);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            buf_append(b, e, 4);
        } else {
            b->p[b->len++] = (char)c;
        }
    }
}

static void append_peer(struct buf *b, const struct sockaddr *peer)
{
    char host[ADDR_TEXT_MAX];
    addr_text(peer, host, sizeof host, "-");
    buf_puts(b, host);
}

void log_access(struct log_sink *sink, const struct sockaddr *peer, const struct verbd_request *req,
                int status, uint64_t body_bytes)
{
    if (!sink || sink->pending.len > ACCESS_MAX_PENDING)
        return;
    struct buf *b = &sink->pending;
    static time_t last;
    static char stamp[32];
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%d/%b/%Y:%H:%M:%S +0000", &tm);
        last = now;
    }
    append_peer(b, peer);
    buf_append(b, " - ", 3);
    if (req && req->user)
        append_escaped(b, req->user, strlen(req->user));
    else
        buf_append(b, "-", 1);
    buf_printf(b, " [%s] \"", stamp);
    if (req && req->http.method.p) {
        append_escaped(b, req->http.method.p, req->http.method.n);
        buf_append(b, " ", 1);
        append_escaped(b, req->http.target.p, req->http.target.n);
        if (req->protocol)
            buf_printf(b, " %s", req->protocol);
        else
            buf_printf(b, " HTTP/1.%d", req->http.minor);
    } else {
        buf_append(b, "-", 1);
    }
    buf_printf(b, "\" %d %llu \"", status, (unsigned long long)body_bytes);
    struct span v = {0};
    if (req && req->http.method.p)
        v = http_field_get(&req->http, "Referer");
    append_escaped(b, v.p, v.n);
    buf_append(b, "\" \"", 3);
    v = (struct span){0};
    if (req && req->http.method.p)
        v = http_field_get(&req->http, "User-Agent");
    append_escaped(b, v.p, v.n);
    buf_append(b, "\"\n", 2);
    if (b->len >= ACCESS_FLUSH_AT)
        sink_flush(sink);
}

static void sink_flush(struct log_sink *s)
{
    struct buf *b = &s->pending;
    size_t done = 0;
    while (done < b->len) {
        ssize_t w = write(s->fd, b->p + done, b->len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* EAGAIN on a full pipe: keep the rest for the next turn */
        done += (size_t)w;
    }
    if (done == b->len) {
        buf_reset(b);
    } else if (done) {
        memmove(b->p, b->p + done, b->len - done);
        b->len -= done;
    }
}

void log_flush(void)
{
    for (struct log_sink *s = sinks; s; s = s->next)
        if (s->pending.len)
            sink_flush(s);
}
