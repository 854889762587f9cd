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

static const char usage[] =
    "usage: verbd probe [options] http[s]://HOST[:PORT]/PATH\n"
    "\n"
    "Asks an HTTP server which methods it implements, which it allows on\n"
    "this resource, and whether its answers agree with each other and with\n"
    "RFC 9110, over HTTP/1.1 (or HTTP/2 too: --http2).  One fresh connection\n"
    "per request.\n"
    "\n"
    "By default it changes nothing on the server.  It sends only safe methods\n"
    "to the URL: OPTIONS (and OPTIONS *), GET, HEAD and TRACE; PROPFIND and\n"
    "QUERY too where the URL's OPTIONS lists them (PROPFIND: or says DAV:).\n"
    "A made-up method (VERBDPROBE), and PROPFIND or QUERY where they are not\n"
    "listed, go only to a random path that does not exist, with no content\n"
    "(Content-Length: 0).  Unsafe methods (POST, PUT, PATCH, DELETE, MKCOL,\n"
    "COPY, MOVE, LOCK, UNLOCK, PROPPATCH) are not sent: they are reported as\n"
    "\"not tried (unsafe)\", with what the server said about them anyway (the\n"
    "Allow of OPTIONS and of 405s, DAV:, Accept-Patch).\n"
    "\n"
    "  -m, --method M        probe only method M (repeatable; case-sensitive,\n"
    "                        so --method get tests lower-case get, a token no\n"
    "                        registry holds, at the random missing path)\n"
    "  -H, --header 'N: V'   add a header field to every request, e.g. for\n"
    "                        authentication (repeatable)\n"
    "  -t, --timeout SECS    time limit for each exchange (default 5)\n"
    "      --http2           ask over HTTP/2 (h2c with prior knowledge for http://,\n"
    "                        ALPN h2 for https://), then over HTTP/1.1, and say\n"
    "                        where the answers differ; the same requests go\n"
    "                        out both ways (and, with --unsafe, each way to a\n"
    "                        resource of its own)\n"
    "  -k, --insecure        https: do not verify the server's certificate\n"
    "      --cacert FILE     https: trust the CA certificates in FILE (PEM)\n"
    "                        instead of the system's trusted ones\n"
    "      --unsafe          also send the unsafe methods, but only to a resource\n"
    "                        the probe creates itself: PUT to a new random name\n"
    "                        beside the URL, with If-None-Match: * (201 Created\n"
    "                        required; without it nothing unsafe is sent).  COPY,\n"
    "                        MOVE and MKCOL use new random names next to it; the\n"
    "                        probe deletes what it created\n"
    "      --scratch URL     with --unsafe: use URL instead, a resource on the\n"
    "                        same server that may be replaced and deleted (the\n"
    "                        probe PUTs its own content there first, and sends\n"
    "                        nothing else unsafe unless that works); a URL\n"
    "                        ending in / is a collection to create in instead\n"
    "      --json            machine-readable output\n"
    "  -h, --help            this help\n"
    "\n"
    "For https URLs the certificate is verified (its chain against the system's\n"
    "trusted CAs or --cacert, its name against the URL's host); the report says\n"
    "which TLS version, cipher and ALPN protocol the server chose.\n"
    "\n"
    "Output is coloured on a terminal unless NO_COLOR is set.\n"
    "Exit status: 0 consistent, 1 inconsistencies found (or, with --http2,\n"
    "answers that differ between HTTP/1.1 and HTTP/2), 2 bad usage, invalid\n"
    "URL, or the server could not be reached (or its certificate not verified,\n"
    "or, with --http2, it does not speak HTTP/2 there).\n";

enum { OPT_JSON = 256, OPT_UNSAFE, OPT_SCRATCH, OPT_CACERT, OPT_HTTP2 };

static const struct option options[] = {
    {"method", required_argument, NULL, 'm'},
    {"header", required_argument, NULL, 'H'},
    {"timeout", required_argument, NULL, 't'},
    {"json", no_argument, NULL, OPT_JSON},
    {"unsafe", no_argument, NULL, OPT_UNSAFE},
    {"scratch", required_argument, NULL, OPT_SCRATCH},
    {"insecure", no_argument, NULL, 'k'},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"http2", no_argument, NULL, OPT_HTTP2},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
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
    static const char *const owned[] = {"content-length",
                                        "transfer-encoding",
                                        "if-match",
                                        "if-none-match",
                                        "if",
                                        "connection",
                                        "expect",
                                        "upgrade",
                                        "te",
                                        "trailer",
                                        "destination",
                                        "overwrite",
                                        "depth"};
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

static struct probe_run run, run_h1;

/* Sends the probes of r in order, each placed by the answers so far, and
 * checks the answers.  2 if nothing reached the server (said on stderr). */
static int send_probes(struct probe_config *cfg, struct probe_run *r, const char *const *methods,
                       size_t nmethods)
{
    probe_plan(cfg, r, methods, nmethods);
    bool any = false;
    for (size_t i = 0; i < r->nprobes; i++) {
        struct probe *p = &r->probes[i];
        /* Where it may go depends on what the server answered so far. */
        probe_place(cfg, r, i);
        if (!p->tried) {
            probe_classify(p);
            continue;
        }
        probe_exchange(cfg, p);
        if (p->connect_failed && !any) {
            /* Nothing reached the server so far: it is unreachable (or,
             * over HTTP/2, does not speak it). */
            fprintf(stderr, "verbd probe: %s\n", p->error);
            return 2;
        }
        any = true;
        probe_classify(p);
        probe_after(cfg, r, i);
    }
    probe_cleanup(cfg, r);
    probe_check(cfg, r);
    return 0;
}

int probe_main(int argc, char **argv)
{
    static struct probe_config cfg;
    const char *methods[PROBE_MAX_PROBES];
    const char *scratch = NULL;
    size_t nmethods = 0;
    bool http2 = false;
    cfg.timeout = 5;

    optind = 1;
    opterr = 0;
    int opt, rc;
    while ((opt = getopt_long(argc, argv, ":m:H:t:kh", options, NULL)) != -1) {
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
        case OPT_UNSAFE: cfg.unsafe = true; break;
        case OPT_SCRATCH: scratch = optarg; break;
        case 'k': cfg.insecure = true; break;
        case OPT_CACERT: cfg.cacert = optarg; break;
        case OPT_HTTP2: http2 = true; break;
        case 'h': fputs(usage, stdout); return 0;
        case ':': return usage_error("option %s needs a value", argv[optind - 1]);
        default: return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind == argc)
        return usage_error("%s", "no URL given");
    if (argc - optind > 1)
        return usage_error("unexpected argument \"%s\" (one URL)", argv[optind + 1]);

    if (scratch && !cfg.unsafe)
        return usage_error("%s", "--scratch only says where --unsafe may send unsafe methods: "
                                 "give --unsafe too");

    char err[512];
    if (probe_parse_url(argv[optind], &cfg.url, err, sizeof err) < 0) {
        fprintf(stderr, "verbd probe: %s\n", err);
        return 2;
    }
    if (scratch) {
        if (probe_parse_url(scratch, &cfg.scratch, err, sizeof err) < 0) {
            fprintf(stderr, "verbd probe: --scratch: %s\n", err);
            return 2;
        }
        /* The same origin: the scratch resource is on the server probed. */
        if (cfg.scratch.tls != cfg.url.tls || strcasecmp(cfg.scratch.host, cfg.url.host) != 0 ||
            strcmp(cfg.scratch.port, cfg.url.port) != 0)
            return usage_error("--scratch must be on the server probed (%s)", cfg.url.authority);
        cfg.has_scratch = true;
    }
    if (probe_resolve(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "verbd probe: %s\n", err);
        return 2;
    }
    if (cfg.url.tls && probe_tls_init(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "verbd probe: %s\n", err);
        freeaddrinfo(cfg.addrs);
        return 2;
    }
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
    cfg.color = !cfg.json && isatty(STDOUT_FILENO) && !(nc && nc[0]) &&
                !(term && strcmp(term, "dumb") == 0);
    memcpy(cfg.etag, "verbd-probe-", 12);
    random_hex(cfg.etag + 12, 16);
    random_hex(cfg.cookie, 16);
    random_hex(cfg.nonce, 16);

    /* With --http2, HTTP/2 first (a server that does not speak it is told
     * so at once), then the same plan over HTTP/1.1 to compare with, its
     * random names new. */
    cfg.http2 = http2;
    rc = send_probes(&cfg, &run, methods, nmethods);
    if (rc == 0 && http2) {
        struct probe_tls_info tls = cfg.tls;
        cfg.http2 = false;
        cfg.tls.done = false;
        random_hex(cfg.nonce, 16);
        rc = send_probes(&cfg, &run_h1, methods, nmethods);
        cfg.tls = tls;
        cfg.http2 = true;
        if (rc == 0)
            probe_compare(&run_h1, &run);
    }
    if (rc) {
        probe_tls_free(&cfg);
        freeaddrinfo(cfg.addrs);
        return rc;
    }
    if (cfg.json)
        probe_print_json(&cfg, &run);
    else
        probe_print_table(&cfg, &run);
    fflush(stdout);
    probe_tls_free(&cfg);
    freeaddrinfo(cfg.addrs);
    bool answered = false;
    for (size_t i = 0; i < run.nprobes; i++)
        answered |= run.probes[i].answered;
    if (!answered && !run.problems) {
        fprintf(stderr, "verbd probe: %s accepted connections but answered no request\n",
                cfg.url.authority);
        return 2;
    }
    return run.problems || run.ndiffers ? 1 : 0;
}
