/* verbd: serve a directory over HTTP/1.1 with exact method semantics. */
#include <getopt.h>
#include <malloc.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verbd.h"

#include "dav_store.h"
#include "probe.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"

static const char usage[] =
    "usage: verbd [DIR] [options]\n"
    "       verbd -c FILE [options]      serve as the config file says\n"
    "       verbd -t -c FILE             check the config file and exit\n"
    "       verbd -M [-c FILE]           list the built-in modules and their methods\n"
    "       verbd probe URL [options]   which methods a server implements, and\n"
    "                                   whether its answers agree; changes nothing\n"
    "                                   there unless --unsafe (verbd probe --help)\n"
    "       verbd dav-store init|migrate -c FILE  create or update the tables of the\n"
    "                                   WebDAV stores FILE names (docs/webdav.md)\n"
    "\n"
    "Serves DIR (default: the current directory) over HTTP/1.1, or what the\n"
    "config file FILE maps (docs/config.md).\n"
    "\n"
    "  -c, --config FILE        read the config file; options below given too\n"
    "                           override it (no DIR with -c)\n"
    "  -t, --test               with -c: check the config (binding nothing), print\n"
    "                           \"FILE: ok\" and exit 0, or every error and exit 1\n"
    "  -M, --modules            the built-in modules and the methods each implements;\n"
    "                           with -c, also the locations that enable them\n"
    "  -l, --listen ADDR:PORT   listen here (repeatable; [::1]:8080 for IPv6;\n"
    "                           default " DEFAULT_LISTEN "; port 0 picks a free one)\n"
    "  -w, --workers N|auto     worker processes (default: one per core)\n"
    "      --trace              enable TRACE (off by default, so it answers 501)\n"
    "      --listing            list directories that have no index.html\n"
    "      --tls-certificate FILE  with --tls-certificate-key: serve over TLS\n"
    "      --tls-certificate-key FILE  on every --listen address (docs/tls.md)\n"
    "      --access-log PATH    combined-format access log: a file, stdout or off\n"
    "                           (default stdout)\n"
    "      --error-log PATH     error log: a file, stderr or off (default stderr)\n"
    "      --log-level LEVEL    error, warn, info or debug (default info)\n"
    "  -s, --set NAME=VALUE     a limit or timeout, e.g. header_timeout=5s,\n"
    "                           max_body=8m (see docs/security.md)\n"
    "  -h, --help               this help\n"
    "  -V, --version            the version\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP re-opens the logs and,\n"
    "with -c, reloads the config file (a broken one leaves the old serving);\n"
    "SIGUSR1 re-opens the logs only (after a rotation).\n";

enum {
    OPT_TRACE = 256,
    OPT_LISTING,
    OPT_ACCESS_LOG,
    OPT_ERROR_LOG,
    OPT_LOG_LEVEL,
    OPT_TLS_CERT,
    OPT_TLS_KEY
};

static const struct option options[] = {
    {"config", required_argument, NULL, 'c'},
    {"test", no_argument, NULL, 't'},
    {"modules", no_argument, NULL, 'M'},
    {"listen", required_argument, NULL, 'l'},
    {"workers", required_argument, NULL, 'w'},
    {"trace", no_argument, NULL, OPT_TRACE},
    {"listing", no_argument, NULL, OPT_LISTING},
    {"tls-certificate", required_argument, NULL, OPT_TLS_CERT},
    {"tls-certificate-key", required_argument, NULL, OPT_TLS_KEY},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"error-log", required_argument, NULL, OPT_ERROR_LOG},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"set", required_argument, NULL, 's'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static struct verbd_server *srv;

static _Noreturn void fail(const char *fmt, const char *arg)
{
    fputs("verbd: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    verbd_server_free(srv);
    exit(2);
}

/* Settings from the command line, kept to be applied again over the
 * config file's: the command line wins. */
static struct {
    const char *name, *value;
} cli_settings[256];
static size_t ncli_settings;

static void set_or_fail(const char *name, const char *value)
{
    char err[256];
    if (verbd_server_set(srv, name, value, err, sizeof err) < 0)
        fail("%s", err);
    if (ncli_settings == sizeof cli_settings / sizeof cli_settings[0])
        fail("%s", "too many settings on the command line");
    cli_settings[ncli_settings].name = name;
    cli_settings[ncli_settings++].value = value;
}

/* Reads the config file; its errors go to stderr.  Binds its listen
 * addresses only if `bind`. */
static int load_config(const char *path, int bind)
{
    int n = bind ? verbd_server_load_config(srv, path, stderr)
                 : verbd_server_check_config(srv, path, stderr);
    if (n)
        fprintf(stderr, "verbd: %s: %d error%s\n", path, n, n == 1 ? "" : "s");
    char err[256];
    for (size_t i = 0; i < ncli_settings; i++)
        if (verbd_server_set(srv, cli_settings[i].name, cli_settings[i].value, err, sizeof err) < 0)
            fail("%s", err);
    return n;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "probe") == 0)
        return probe_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "dav-store") == 0)
        return dav_store_main(argc - 1, argv + 1);
    /* The daemon keeps the memory it frees for reuse: with glibc's
     * defaults the output buffer of every response with a large body in
     * memory (a gateway's 64 KiB answer) would be mapped and unmapped, or
     * the heap trimmed, each time.  Freed memory stays in the worker's
     * heap up to these bounds. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    srv = verbd_server_new();
    if (!srv)
        fail("%s", "out of memory");
    const char *listens[64];
    size_t nlisten = 0;
    int trace = 0, listing = 0, test = 0, modules = 0;
    const char *config = NULL, *tls_cert = NULL, *tls_key = NULL;
    char err[512];

    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":c:tMl:w:s:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (config)
                fail("%s", "-c given twice (one config file; it may include others)");
            config = optarg;
            break;
        case 't': test = 1; break;
        case 'M': modules = 1; break;
        case 'l':
            if (nlisten == sizeof listens / sizeof listens[0])
                fail("%s", "too many --listen addresses");
            listens[nlisten++] = optarg;
            break;
        case 'w': set_or_fail("workers", optarg); break;
        case OPT_TRACE: trace = 1; break;
        case OPT_LISTING: listing = 1; break;
        case OPT_TLS_CERT: tls_cert = optarg; break;
        case OPT_TLS_KEY: tls_key = optarg; break;
        case OPT_ACCESS_LOG: set_or_fail("access_log", optarg); break;
        case OPT_ERROR_LOG: set_or_fail("error_log", optarg); break;
        case OPT_LOG_LEVEL: set_or_fail("log_level", optarg); break;
        case 's': {
            char *eq = strchr(optarg, '=');
            if (!eq)
                fail("--set wants NAME=VALUE, not \"%s\"", optarg);
            *eq = '\0';
            set_or_fail(optarg, eq + 1);
            break;
        }
        case 'h':
            fputs(usage, stdout);
            verbd_server_free(srv);
            return 0;
        case 'V':
            puts("verbd " VERBD_VERSION);
            verbd_server_free(srv);
            return 0;
        case ':': fail("option %s needs a value (see verbd --help)", argv[optind - 1]);
        default: fail("unknown option %s (see verbd --help)", argv[optind - 1]);
        }
    }
    if (argc - optind > 1)
        fail("unexpected argument \"%s\" (one directory at most)", argv[optind + 1]);
    if (config && optind < argc)
        fail("unexpected argument \"%s\" (with -c, the config file's locations say what is "
             "served)",
             argv[optind]);
    if (modules && optind < argc)
        fail("unexpected argument \"%s\" (-M takes no directory; -c FILE shows a config's "
             "locations)",
             argv[optind]);
    if (test && !config)
        fail("%s", "-t checks a config file: verbd -t -c FILE");
    if (config && trace)
        fail("%s", "--trace does not combine with -c: write \"trace on;\" in a location");
    if (config && listing)
        fail("%s", "--listing does not combine with -c: write \"listing on;\" in a location");
    if (config && (tls_cert || tls_key))
        fail("%s", "--tls-certificate does not combine with -c: write \"listen ADDR tls;\" and "
                   "tls_certificate in the file");
    if (!tls_cert != !tls_key)
        fail("%s", "--tls-certificate and --tls-certificate-key go together");

    if (modules) {
        if (config && load_config(config, 0)) {
            verbd_server_free(srv);
            return 1;
        }
        verbd_server_describe(srv, stdout);
        verbd_server_free(srv);
        return 0;
    }

    const char *dir = optind < argc ? argv[optind] : ".";
    if (config) {
        /* --listen on the command line replaces the file's addresses. */
        if (load_config(config, !test && nlisten == 0)) {
            verbd_server_free(srv);
            return 1;
        }
        if (test) {
            printf("%s: ok\n", config);
            verbd_server_free(srv);
            return 0;
        }
    } else {
        /* Over TLS the directory is served by a site of its own: the one
         * way to give addresses a certificate. */
        struct verbd_site *site = tls_cert ? verbd_server_add_site(srv, err, sizeof err) : NULL;
        if (tls_cert &&
            (!site || verbd_site_tls(site, tls_cert, tls_key, NULL, NULL, err, sizeof err) < 0))
            fail("%s", err);
        struct verbd_mapping *root =
            site ? verbd_site_map(site, "/", "static", dir, err, sizeof err)
                 : verbd_server_map(srv, "/", "static", dir, err, sizeof err);
        if (!root)
            fail("%s", err);
        const char *on[] = {"on"};
        if ((trace && verbd_mapping_set(root, "trace", 1, on, err, sizeof err) < 0) ||
            (listing && verbd_mapping_set(root, "listing", 1, on, err, sizeof err) < 0))
            fail("%s", err);
        for (size_t i = 0; site && i < (nlisten ? nlisten : 1); i++)
            if (verbd_site_listen(site, nlisten ? listens[i] : DEFAULT_LISTEN, "tls", err,
                                  sizeof err) < 0)
                fail("%s", err);
        if (site)
            nlisten = 0; /* bound */
    }

    if (nlisten == 0 && !verbd_server_listener_name(srv, 0))
        listens[nlisten++] = DEFAULT_LISTEN;
    for (size_t i = 0; i < nlisten; i++)
        if (verbd_server_listen(srv, listens[i], err, sizeof err) < 0)
            fail("%s", err);

    /* From here a stop signal means a graceful stop: the server takes the
     * blocked signals over once it runs. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    sigaddset(&stop_signals, SIGUSR1);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);

    char real[PATH_MAX];
    if (config)
        printf("verbd: config %s\n", realpath(config, real) ? real : config);
    else
        printf("verbd: serving %s\n", realpath(dir, real) ? real : dir);
    for (size_t i = 0; verbd_server_listener_name(srv, i); i++)
        printf("verbd: listening on %s://%s/\n",
               verbd_server_listener_tls(srv, i) ? "https" : "http",
               verbd_server_listener_name(srv, i));
    fflush(stdout);

    int rc = verbd_server_run(srv);
    verbd_server_free(srv);
    return rc == 0 ? 0 : 1;
}
