/* verbd probe URL: which methods does a server implement, allow or refuse
 * on a resource, and do its answers agree?  See docs/probe.md. */
#include "probe.h"

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "http/method.h"

/* A token no registry holds: servers should answer it 501. */
#define UNKNOWN_METHOD "VERBDPROBE"

static const char usage[] =
    "usage: verbd probe [options] http://HOST[:PORT]/PATH\n"
    "\n"
    "Asks an HTTP/1.1 server which methods it implements, which it allows on\n"
    "this resource, and whether its answers agree with each other and with\n"
    "RFC 9110.  Sends OPTIONS (on the resource and OPTIONS *), GET, HEAD, a\n"
    "made-up method, and POST, PUT, PATCH, DELETE, PROPFIND, MKCOL, COPY, MOVE,\n"
    "LOCK, TRACE, QUERY; one fresh connection each.\n"
    "\n"
    "It never changes anything on the server: no request carries content\n"
    "(Content-Length: 0), and every unsafe method (all but GET, HEAD, OPTIONS,\n"
    "TRACE, PROPFIND, QUERY, REPORT, SEARCH) also carries a precondition that\n"
    "cannot hold: If-Match with a random entity tag (and the WebDAV If header\n"
    "with the same tag).  A server that would act answers 412 Precondition\n"
    "Failed instead; one that would not answers 405 or 501.  COPY and MOVE\n"
    "carry no Destination; PROPFIND has Depth: 0.  A server that ignores\n"
    "If-Match (RFC 9110 §13.1.1 forbids it) is reported; if you do not trust\n"
    "a server to honour it, choose the methods with --method.\n"
    "\n"
    "  -m, --method M        probe only method M (repeatable; case-sensitive,\n"
    "                        so --method get tests lower-case get)\n"
    "  -H, --header 'N: V'   add a header field to every request, e.g. for\n"
    "                        authentication (repeatable)\n"
    "  -t, --timeout SECS    time limit for each exchange (default 5)\n"
    "      --json            machine-readable output\n"
    "  -h, --help            this help\n"
    "\n"
    "Output is coloured on a terminal unless NO_COLOR is set.\n"
    "Exit status: 0 consistent, 1 inconsistencies found, 2 bad usage, invalid\n"
    "URL, or the server could not be reached.  https is not supported yet.\n";

enum { OPT_JSON = 256 };

static const struct option options[] = {
    {"method", required_argument, NULL, 'm'},  {"header", required_argument, NULL, 'H'},
    {"timeout", required_argument, NULL, 't'}, {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
};

/* The registered methods a client is likely to try, after the basics. */
static const int likely[] = {
    METHOD_POST, METHOD_PUT,  METHOD_PATCH, METHOD_DELETE, METHOD_PROPFIND, METHOD_MKCOL,
    METHOD_COPY, METHOD_MOVE, METHOD_LOCK,  METHOD_TRACE,  METHOD_QUERY,
};

/* Safe methods (RFC 9110 §9.2.1; PROPFIND: RFC 4918 §9.1; REPORT: RFC 3253
 * §3.6; SEARCH: RFC 5323 §2; QUERY). */
static const int safe[] = {
    METHOD_GET,      METHOD_HEAD,   METHOD_OPTIONS, METHOD_TRACE,
    METHOD_PROPFIND, METHOD_REPORT, METHOD_SEARCH,  METHOD_QUERY,
};

static int usage_error(const char *fmt, const char *arg)
{
    fputs("verbd probe: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (see verbd probe --help)\n", stderr);
    return 2;
}

/* Fields the probe owns: the guard, the framing, the connection. */
static bool reserved_field(const char *name, size_t n)
{
    static const char *const owned[] = {
        "content-length", "transfer-encoding", "if-match", "if-none-match", "if", "connection",
        "expect",         "upgrade",           "te",       "trailer"};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        if (strlen(owned[i]) == n && strncasecmp(owned[i], name, n) == 0)
            return true;
    return false;
}

/* "Name: value" with a token name and a value of visible characters,
 * spaces and tabs; the guard and framing fields are refused. */
static int add_header(struct probe_config *cfg, const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || !http_is_token(h, (size_t)(colon - h)))
        return usage_error("--header wants \"Name: value\", not \"%s\"", h);
    for (const char *p = colon + 1; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return usage_error("control character in --header \"%s\"", h);
    if (reserved_field(h, (size_t)(colon - h)))
        return usage_error("--header cannot set %s: the probe's safety guard and framing "
                           "depend on it",
                           h);
    if (cfg->nheaders == PROBE_MAX_HEADERS)
        return usage_error("%s", "too many --header options");
    if (colon - h == 4 && strncasecmp(h, "host", 4) == 0)
        cfg->user_host = true;
    cfg->headers[cfg->nheaders++] = h;
    return 0;
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char b[32];
    if (nbytes > sizeof b)
        nbytes = sizeof b;
    if (getrandom(b, nbytes, 0) != (ssize_t)nbytes) {
        /* No entropy source: still unpredictable enough for a tag that
         * merely must not exist on the server. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long x = (unsigned long long)ts.tv_nsec ^
                               ((unsigned long long)getpid() << 32) ^ (unsigned long long)ts.tv_sec;
        for (size_t i = 0; i < nbytes; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            b[i] = (unsigned char)(x >> 56);
        }
    }
    for (size_t i = 0; i < nbytes; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void add_probe(struct probe_run *run, const char *method, bool asterisk)
{
    if (run->nprobes == PROBE_MAX_PROBES)
        return;
    struct probe *p = &run->probes[run->nprobes++];
    memset(p, 0, sizeof *p);
    snprintf(p->method, sizeof p->method, "%s", method);
    p->asterisk = asterisk;
    /* Safe methods change nothing and go without the guard, so that GET
     * and HEAD show what the resource really answers. */
    p->guarded = true;
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
        if (strcmp(method, method_name(safe[i])) == 0)
            p->guarded = false;
    p->unknown = strcmp(method, UNKNOWN_METHOD) == 0;
}

static struct probe_run run;

int probe_main(int argc, char **argv)
{
    static struct probe_config cfg;
    const char *methods[PROBE_MAX_PROBES];
    size_t nmethods = 0;
    cfg.timeout = 5;

    optind = 1;
    opterr = 0;
    int opt, rc;
    while ((opt = getopt_long(argc, argv, ":m:H:t:h", options, NULL)) != -1) {
        switch (opt) {
        case 'm':
            if (!http_is_token(optarg, strlen(optarg)) || strlen(optarg) > 64)
                return usage_error("--method wants a method token, not \"%s\"", optarg);
            if (nmethods == PROBE_MAX_PROBES)
                return usage_error("%s", "too many --method options");
            methods[nmethods++] = optarg;
            break;
        case 'H':
            if ((rc = add_header(&cfg, optarg)) != 0)
                return rc;
            break;
        case 't': {
            char *end;
            errno = 0;
            double t = strtod(optarg, &end);
            if (end == optarg || (*end && strcmp(end, "s") != 0) || errno || !(t > 0) || t > 3600)
                return usage_error("--timeout wants seconds between 0 and 3600, not \"%s\"",
                                   optarg);
            cfg.timeout = t;
            break;
        }
        case OPT_JSON: cfg.json = true; break;
        case 'h': fputs(usage, stdout); return 0;
        case ':': return usage_error("option %s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind == argc)
        return usage_error("%s", "no URL given");
    if (argc - optind > 1)
        return usage_error("unexpected argument \"%s\" (one URL)", argv[optind + 1]);

    char err[512];
    if (probe_parse_url(argv[optind], &cfg.url, err, sizeof err) < 0 ||
        probe_resolve(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "verbd probe: %s\n", err);
        return 2;
    }
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
    cfg.color = !cfg.json && isatty(STDOUT_FILENO) && !(nc && nc[0]) &&
                !(term && strcmp(term, "dumb") == 0);
    memcpy(cfg.etag, "verbd-probe-", 12);
    random_hex(cfg.etag + 12, 16);
    random_hex(cfg.cookie, 16);

    if (nmethods) {
        for (size_t i = 0; i < nmethods; i++)
            add_probe(&run, methods[i], false);
    } else {
        add_probe(&run, "OPTIONS", false);
        add_probe(&run, "OPTIONS", true);
        add_probe(&run, "GET", false);
        add_probe(&run, "HEAD", false);
        add_probe(&run, UNKNOWN_METHOD, false);
        for (size_t i = 0; i < sizeof likely / sizeof likely[0]; i++)
            add_probe(&run, method_name(likely[i]), false);
    }

    bool any = false;
    for (size_t i = 0; i < run.nprobes; i++) {
        struct probe *p = &run.probes[i];
        probe_exchange(&cfg, p);
        if (p->connect_failed && !any) {
            /* Nothing reached the server so far: it is unreachable. */
            fprintf(stderr, "verbd probe: %s\n", p->error);
            freeaddrinfo(cfg.addrs);
            return 2;
        }
        any = true;
        probe_classify(p);
    }
    probe_check(&cfg, &run);
    if (cfg.json)
        probe_print_json(&cfg, &run);
    else
        probe_print_table(&cfg, &run);
    fflush(stdout);
    freeaddrinfo(cfg.addrs);
    bool answered = false;
    for (size_t i = 0; i < run.nprobes; i++)
        answered |= run.probes[i].answered;
    if (!answered && !run.problems) {
        fprintf(stderr, "verbd probe: %s accepted connections but answered no request\n",
                cfg.url.authority);
        return 2;
    }
    return run.problems ? 1 : 0;
}
