/* verbd probe: the URL, the connection and one bounded exchange.
 *
 * Plain blocking sockets.  Every exchange has one deadline (--timeout):
 * before each send and recv the socket timeout is set to what is left of
 * it, so a server that trickles bytes cannot stretch an exchange.  The
 * head is bounded by PROBE_MAX_HEAD, the body by PROBE_MAX_BODY; past
 * either the probe stops reading and says so.  For https the connected
 * socket is handed to probe_tls.c, which keeps the same deadline. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http/chunked.h"
#include "http/response.h"
#include "probe.h"

/* How long to wait for stray bytes after a head that allows no body (the
 * request asked for Connection: close, so a correct server closes at once). */
#define NO_BODY_GRACE 0.3
/* Interim (1xx) responses skipped before the final one. */
#define MAX_INTERIM 8

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool url_char(unsigned char c)
{
    /* VCHAR except '#' (the fragment is cut off before) */
    return c > 0x20 && c < 0x7f && c != '#';
}

static bool host_char(char c)
{
    /* RFC 3986 reg-name: unreserved, sub-delims, pct-encoded */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
           strchr("-._~!$&'()*+,;=%", c) != NULL;
}

static int url_error(char *err, size_t cap, const char *msg, const char *text)
{
    snprintf(err, cap, "invalid URL \"%.200s\": %s", text, msg);
    return -1;
}

int probe_parse_url(const char *text, struct probe_url *url, char *err, size_t cap)
{
    memset(url, 0, sizeof *url);
    size_t skip;
    if (strncasecmp(text, "http://", 7) == 0) {
        skip = 7;
    } else if (strncasecmp(text, "https://", 8) == 0) {
        skip = 8;
        url->tls = true;
    } else {
        return url_error(err, cap, "it must start with http:// or https://", text);
    }
    url->scheme = url->tls ? "https" : "http";
    const char *default_port = url->tls ? "443" : "80";
    if (strlen(text) >= sizeof url->text)
        return url_error(err, cap, "too long", text);
    const char *a = text + skip, *end = a + strcspn(a, "#"), *e = a;
    for (const char *p = text; p < end; p++)
        if (!url_char((unsigned char)*p))
            return url_error(err, cap, "a space or control character (percent-encode it)", text);
    while (e < end && *e != '/' && *e != '?')
        e++;
    if (memchr(a, '@', (size_t)(e - a)))
        return url_error(err, cap,
                         "credentials in the URL are not supported "
                         "(use --header \"Authorization: ...\")",
                         text);

    /* host */
    const char *h = a, *hend, *p;
    if (*h == '[') {
        hend = memchr(h, ']', (size_t)(e - h));
        if (!hend || hend == h + 1)
            return url_error(err, cap, "unterminated IPv6 address", text);
        p = hend + 1;
        /* a zone id is percent-encoded in a URL (RFC 6874): %25 -> % */
        size_t n = 0;
        for (const char *q = h + 1; q < hend; q++) {
            if (!(host_char(*q) || *q == ':'))
                return url_error(err, cap, "invalid IPv6 address", text);
            if (n + 1 >= sizeof url->host)
                return url_error(err, cap, "host too long", text);
            url->host[n++] = *q;
            if (q[0] == '%' && hend - q > 2 && q[1] == '2' && q[2] == '5')
                q += 2;
        }
        url->host[n] = '\0';
    } else {
        hend = h;
        while (hend < e && *hend != ':')
            hend++;
        if (hend == h)
            return url_error(err, cap, "no host", text);
        if ((size_t)(hend - h) >= sizeof url->host)
            return url_error(err, cap, "host too long", text);
        for (const char *q = h; q < hend; q++)
            if (!host_char(*q))
                return url_error(err, cap, "invalid character in host", text);
        memcpy(url->host, h, (size_t)(hend - h));
        p = hend;
    }

    /* port */
    strcpy(url->port, default_port);
    const char *auth_end = e;
    if (p < e) {
        if (*p != ':')
            return url_error(err, cap, "invalid host", text);
        const char *d = ++p;
        unsigned long port = 0;
        for (; p < e; p++) {
            if (!is_digit(*p) || p - d >= 5)
                return url_error(err, cap, "invalid port", text);
            port = port * 10 + (unsigned long)(*p - '0');
        }
        if (p == d) {
            auth_end = d - 1; /* "host:" means the default port */
        } else if (port == 0 || port > 65535) {
            return url_error(err, cap, "port out of range", text);
        } else {
            snprintf(url->port, sizeof url->port, "%lu", port);
            if (strcmp(url->port, default_port) == 0)
                auth_end = d - 1;
        }
    }
    snprintf(url->authority, sizeof url->authority, "%.*s", (int)(auth_end - a), a);

    /* path and query */
    if (e == end || *e == '?')
        snprintf(url->target, sizeof url->target, "/%.*s", (int)(end - e), e);
    else if ((size_t)(end - e) < sizeof url->target)
        snprintf(url->target, sizeof url->target, "%.*s", (int)(end - e), e);
    else
        return url_error(err, cap, "path too long", text);
    snprintf(url->text, sizeof url->text, "%s://%s%s", url->scheme, url->authority, url->target);
    return 0;
}

int probe_resolve(struct probe_config *cfg, char *err, size_t cap)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    int rc = getaddrinfo(cfg->url.host, cfg->url.port, &hints, &cfg->addrs);
    if (rc == EAI_NONAME || rc == EAI_ADDRFAMILY || rc == EAI_NODATA) {
        /* AI_ADDRCONFIG hides ::1 on a host with IPv6 loopback only */
        hints.ai_flags = 0;
        rc = getaddrinfo(cfg->url.host, cfg->url.port, &hints, &cfg->addrs);
    }
    if (rc != 0) {
        snprintf(err, cap, "cannot resolve %s: %s", cfg->url.host, gai_strerror(rc));
        return -1;
    }
    cfg->good = cfg->addrs;
    return 0;
}

double probe_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sets both socket timeouts to what is left until the deadline; false if
 * nothing is left. */
static bool arm(int fd, double deadline)
{
    double left = deadline - probe_now();
    if (left <= 0)
        return false;
    struct timeval tv = {.tv_sec = (time_t)left,
                         .tv_usec = (suseconds_t)((left - (double)(time_t)left) * 1e6)};
    if (tv.tv_sec == 0 && tv.tv_usec == 0)
        tv.tv_usec = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return true;
}

static int connect_one(const struct addrinfo *ai, double deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    /* On Linux SO_SNDTIMEO bounds connect() too. */
    if (!arm(fd, deadline)) {
        close(fd);
        errno = ETIMEDOUT;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int e = errno == EINPROGRESS || errno == EAGAIN ? ETIMEDOUT : errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int probe_connect(struct probe_config *cfg, double deadline)
{
    int fd = connect_one(cfg->good, deadline);
    if (fd >= 0)
        return fd;
    int e = errno;
    for (const struct addrinfo *ai = cfg->addrs; ai; ai = ai->ai_next) {
        if (ai == cfg->good)
            continue;
        if ((fd = connect_one(ai, deadline)) >= 0) {
            cfg->good = ai;
            return fd;
        }
        e = errno;
    }
    errno = e;
    return -1;
}

void probe_request_fields(const struct probe_config *cfg, const struct probe *p,
                          void (*field)(void *arg, const char *name, const char *value), void *arg)
{
    char v[PROBE_TARGET + 400];
    if (!cfg->user_host)
        field(arg, "Host", cfg->url.authority);
    field(arg, "User-Agent", "verbd-probe/" VERBD_VERSION);
    if (p->content) {
        /* Only ever to the scratch resource (probe_plan.c). */
        field(arg, "Content-Type", "text/plain");
        snprintf(v, sizeof v, "%zu", strlen(probe_scratch_content()));
        field(arg, "Content-Length", v);
    } else if (strcmp(p->method, "GET") != 0 && strcmp(p->method, "HEAD") != 0 &&
               strcmp(p->method, "OPTIONS") != 0 && strcmp(p->method, "TRACE") != 0) {
        /* No content; said explicitly for methods that may carry some. */
        field(arg, "Content-Length", "0");
    }
    if (p->if_none_match)
        field(arg, "If-None-Match", "*"); /* create, never replace (RFC 9110 §13.1.2) */
    if (p->guarded) {
        /* A method of unknown meaning, sent only to a path that does not
         * exist, also carries preconditions that cannot hold (RFC 9110
         * §13.1.1; the If header is the WebDAV form, RFC 4918 §10.4). */
        snprintf(v, sizeof v, "\"%s\"", cfg->etag);
        field(arg, "If-Match", v);
        snprintf(v, sizeof v, "([\"%s\"])", cfg->etag);
        field(arg, "If", v);
    }
    if (p->destination[0]) {
        snprintf(v, sizeof v, "%s://%s%s", cfg->url.scheme, cfg->url.authority, p->destination);
        field(arg, "Destination", v);
        field(arg, "Overwrite", "F"); /* never replace what is there */
    }
    if (strcmp(p->method, "PROPFIND") == 0)
        field(arg, "Depth", "0");
    if (strcmp(p->method, "TRACE") == 0) {
        snprintf(v, sizeof v, "verbd-probe=%s", cfg->cookie);
        field(arg, "Cookie", v);
    }
    for (size_t i = 0; i < cfg->nheaders; i++) {
        /* "Name: value", validated by the command line */
        const char *h = cfg->headers[i], *colon = strchr(h, ':');
        snprintf(v, sizeof v, "%.*s", (int)(colon - h), h);
        const char *value = colon + 1 + strspn(colon + 1, " \t");
        size_t n = strlen(value);
        while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
            n--;
        size_t l = strlen(v) + 1;
        if (l + n < sizeof v) {
            memcpy(v + l, value, n);
            v[l + n] = '\0';
            field(arg, v, v + l);
        }
    }
}

struct head_text {
    char *out;
    size_t cap, len;
};

static void head_line(void *arg, const char *name, const char *value)
{
    struct head_text *t = arg;
    if (t->len < t->cap) {
        int k = snprintf(t->out + t->len, t->cap - t->len, "%s: %s\r\n", name, value);
        t->len += k > 0 ? (size_t)k : 0;
    }
}

static size_t build_request(const struct probe_config *cfg, const struct probe *p, char *out,
                            size_t cap)
{
    int n = snprintf(out, cap, "%s %s HTTP/1.1\r\n", p->method, p->target);
    struct head_text t = {out, cap, n > 0 ? (size_t)n : 0};
    probe_request_fields(cfg, p, head_line, &t);
    head_line(&t, "Connection", "close");
    if (t.len < t.cap) {
        int k =
            snprintf(out + t.len, cap - t.len, "\r\n%s", p->content ? probe_scratch_content() : "");
        t.len += k > 0 ? (size_t)k : 0;
    }
    return t.len < cap ? t.len : 0;
}

static void copy_value(struct probe_value *dst, const struct http_response *r, const char *name)
{
    struct span v = http_response_field(r, name);
    dst->present = v.p != NULL;
    if (!dst->present)
        return;
    size_t n = v.n < sizeof dst->v - 1 ? v.n : sizeof dst->v - 1;
    memcpy(dst->v, v.p, n);
    dst->v[n] = '\0';
}

/* Allow is a list field: several fields are one list (RFC 9110 §5.3). */
static void copy_allow(struct probe_value *dst, const struct http_response *r)
{
    size_t len = 0;
    dst->present = false;
    dst->v[0] = '\0';
    for (size_t i = 0; i < r->nfields; i++) {
        struct span name = r->fields[i].name, v = r->fields[i].value;
        if (name.n != 5 || strncasecmp(name.p, "allow", 5) != 0)
            continue;
        if (dst->present && v.n && len + 2 < sizeof dst->v) {
            memcpy(dst->v + len, ", ", 2);
            len += 2;
        }
        dst->present = true;
        size_t n = v.n < sizeof dst->v - 1 - len ? v.n : sizeof dst->v - 1 - len;
        memcpy(dst->v + len, v.p, n);
        len += n;
        dst->v[len] = '\0';
    }
}

size_t probe_read(struct probe_reader *rd, char *buf, size_t cap)
{
    if (rd->eof || rd->err || cap == 0)
        return 0;
    if (rd->tls) {
        long n = probe_tls_recv(rd->tls, buf, cap, rd->deadline);
        if (n > 0)
            return (size_t)n;
        if (n == 0)
            rd->eof = true;
        else
            rd->err = errno;
        return 0;
    }
    if (!arm(rd->fd, rd->deadline)) {
        rd->err = ETIMEDOUT;
        return 0;
    }
    for (;;) {
        ssize_t n = recv(rd->fd, buf, cap, 0);
        if (n > 0)
            return (size_t)n;
        if (n == 0) {
            rd->eof = true;
            return 0;
        }
        if (errno == EINTR)
            continue;
        rd->err = errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
        return 0;
    }
}

static char head_buf[PROBE_MAX_HEAD + 1];
static char body_buf[PROBE_KEEP_BODY];
static char io_buf[16384];

void probe_take_body(struct probe *p, const char *data, size_t n)
{
    if (p->body_bytes < PROBE_KEEP_BODY) {
        size_t room = PROBE_KEEP_BODY - (size_t)p->body_bytes;
        memcpy(body_buf + p->body_bytes, data, n < room ? n : room);
    }
    p->body_bytes += n;
}

/* Reads the body that follows the head; `have` bytes of it are already in
 * `pre`. */
static void read_body(struct probe_reader *rd, const struct http_response *r, struct probe *p,
                      const char *pre, size_t have)
{
    struct chunked ch;
    chunked_init(&ch);
    const char *data = pre;
    size_t n = have;

    for (;;) {
        if (r->framing == RESPONSE_LENGTH && p->body_bytes == r->content_length)
            return;
        /* Feed what we have. */
        while (n > 0) {
            if (r->framing == RESPONSE_CHUNKED) {
                size_t used;
                struct span piece;
                const char *why;
                enum chunked_result cr = chunked_decode(&ch, data, n, &used, &piece, &why);
                probe_take_body(p, piece.p, piece.n);
                data += used;
                n -= used;
                if (cr == CHUNKED_DONE)
                    return;
                if (cr == CHUNKED_ERROR) {
                    p->body_error = true;
                    snprintf(p->error, sizeof p->error, "malformed chunked body: %s", why);
                    return;
                }
                if (used == 0)
                    break;
            } else {
                size_t k = n;
                if (r->framing == RESPONSE_LENGTH && k > r->content_length - p->body_bytes)
                    k = (size_t)(r->content_length - p->body_bytes);
                probe_take_body(p, data, k);
                data += k;
                n -= k;
                if (r->framing == RESPONSE_LENGTH && p->body_bytes == r->content_length)
                    return;
            }
        }
        if (p->body_bytes >= PROBE_MAX_BODY) {
            p->truncated = true;
            snprintf(p->error, sizeof p->error, "body longer than %d bytes: stopped reading",
                     PROBE_MAX_BODY);
            return;
        }
        /* Never past the bound: framing bytes only make the body smaller. */
        size_t room = (size_t)(PROBE_MAX_BODY - p->body_bytes);
        n = probe_read(rd, io_buf, room < sizeof io_buf ? room : sizeof io_buf);
        data = io_buf;
        if (n == 0) {
            if (rd->eof && r->framing == RESPONSE_CLOSE)
                return;
            if (rd->eof) {
                p->body_incomplete = true;
                snprintf(p->error, sizeof p->error,
                         "connection closed after %llu body bytes, before the end of the body",
                         (unsigned long long)p->body_bytes);
            } else {
                p->truncated = true;
                snprintf(p->error, sizeof p->error, "body not complete within the timeout (%s)",
                         strerror(rd->err));
            }
            return;
        }
    }
}

int probe_open(struct probe_config *cfg, struct probe *p, struct probe_reader *rd)
{
    int fd = probe_connect(cfg, rd->deadline);
    if (fd < 0) {
        p->connect_failed = true;
        snprintf(p->error, sizeof p->error, "cannot connect to %.120s: %s", cfg->url.authority,
                 strerror(errno));
        return -1;
    }
    rd->fd = fd;
    if (cfg->url.tls) {
        char why[sizeof p->error];
        if (!(rd->tls = probe_tls_connect(cfg, fd, rd->deadline, why, sizeof why))) {
            p->connect_failed = true;
            snprintf(p->error, sizeof p->error, "%s", why);
            close(fd);
            return -1;
        }
    }
    return 0;
}

void probe_close(struct probe_reader *rd)
{
    if (rd->tls)
        probe_tls_close(rd->tls);
    close(rd->fd);
}

int probe_send(struct probe_reader *rd, const char *buf, size_t n)
{
    for (size_t off = 0; off < n;) {
        if (rd->tls) {
            long k = probe_tls_send(rd->tls, buf + off, n - off, rd->deadline);
            if (k < 0)
                return -1;
            off += (size_t)k;
            continue;
        }
        if (!arm(rd->fd, rd->deadline)) {
            errno = ETIMEDOUT;
            return -1;
        }
        ssize_t k = send(rd->fd, buf + off, n - off, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                errno = ETIMEDOUT;
            return -1;
        }
        off += (size_t)k;
    }
    return 0;
}

void probe_take_head(struct probe *p, const struct http_response *r)
{
    p->answered = true;
    p->status = r->status;
    size_t rn = r->reason.n < sizeof p->reason - 1 ? r->reason.n : sizeof p->reason - 1;
    if (rn) /* HTTP/2 has no reason phrase */
        memcpy(p->reason, r->reason.p, rn);
    p->reason[rn] = '\0';
    copy_allow(&p->allow, r);
    copy_value(&p->retry_after, r, "Retry-After");
    copy_value(&p->content_length, r, "Content-Length");
    copy_value(&p->etag, r, "ETag");
    copy_value(&p->last_modified, r, "Last-Modified");
    copy_value(&p->content_type, r, "Content-Type");
    copy_value(&p->location, r, "Location");
    copy_value(&p->server, r, "Server");
    copy_value(&p->dav, r, "DAV");
    copy_value(&p->accept_patch, r, "Accept-Patch");
    p->te_and_cl = r->quirks & RESPONSE_TE_AND_CL;
}

void probe_body_end(const struct probe_config *cfg, struct probe *p)
{
    if (p->body_bytes && cfg->cookie[0]) {
        size_t kept = p->body_bytes < PROBE_KEEP_BODY ? (size_t)p->body_bytes : PROBE_KEEP_BODY;
        p->cookie_echoed = memmem(body_buf, kept, cfg->cookie, strlen(cfg->cookie)) != NULL;
    }
}

void probe_exchange(struct probe_config *cfg, struct probe *p)
{
    if (cfg->http2) {
        probe_h2_exchange(cfg, p);
        return;
    }
    double deadline = probe_now() + cfg->timeout;
    char req[16384];
    size_t reqlen = build_request(cfg, p, req, sizeof req);
    if (reqlen == 0) {
        snprintf(p->error, sizeof p->error, "request too large");
        return;
    }
    struct probe_reader rd = {.deadline = deadline};
    if (probe_open(cfg, p, &rd) < 0)
        return;
    if (probe_send(&rd, req, reqlen) < 0) {
        snprintf(p->error, sizeof p->error, "sending the request failed: %s", strerror(errno));
        goto done;
    }

    static struct http_field fields[PROBE_MAX_FIELDS];
    const struct response_limits lim = {PROBE_MAX_HEAD, PROBE_MAX_FIELDS};
    bool head = strcmp(p->method, "HEAD") == 0;
    struct http_response r;
    size_t len = 0;
    int rc = 0;
    for (int interim = 0;;) {
        const char *why = NULL;
        rc = len ? http_parse_response(head_buf, len, &lim, head, fields, &r, &why) : 0;
        if (rc < 0) {
            p->malformed = why;
            snprintf(p->error, sizeof p->error, "malformed response: %s", why);
            goto done;
        }
        if (rc > 0 && r.status < 200 && r.status != 101 && ++interim <= MAX_INTERIM) {
            /* 1xx: interim, the final response follows. */
            memmove(head_buf, head_buf + rc, len - (size_t)rc);
            len -= (size_t)rc;
            continue;
        }
        if (rc > 0)
            break;
        size_t got = probe_read(&rd, head_buf + len, sizeof head_buf - len);
        if (got == 0) {
            if (rd.eof)
                snprintf(p->error, sizeof p->error,
                         len ? "connection closed in the middle of the response head"
                             : "connection closed without a response");
            else
                snprintf(p->error, sizeof p->error, "no complete response within %gs (%s)",
                         cfg->timeout, strerror(rd.err));
            goto done;
        }
        len += got;
    }

    probe_take_head(p, &r);
    size_t rest = len - (size_t)rc;
    if (r.framing == RESPONSE_NONE) {
        /* Whatever follows belongs to no message: a body sent where none
         * may be.  Wait briefly for it. */
        p->unexpected_body = rest;
        double grace = probe_now() + NO_BODY_GRACE;
        rd.deadline = grace < deadline ? grace : deadline;
        size_t got;
        while ((got = probe_read(&rd, io_buf, sizeof io_buf)) > 0 &&
               p->unexpected_body < PROBE_MAX_BODY)
            p->unexpected_body += got;
    } else {
        read_body(&rd, &r, p, head_buf + rc, rest);
    }
    probe_body_end(cfg, p);
done:
    probe_close(&rd);
}
