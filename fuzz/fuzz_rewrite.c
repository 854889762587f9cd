/* libFuzzer harness for rewrite replacements: the input is split at its
 * first two NUL bytes into a replacement, a path and args.  The
 * replacement (if the configuration would take it) is expanded against a
 * match of "^/(.*?)/?([^/]*)$" on the normalised path, and run as a
 * rewrite rule with each flag.  Whatever the input:
 *   - a Location never holds a control character or a byte above 0x7e
 *     that the replacement did not hold itself;
 *   - a new path is normalised (starts with '/', no "." or ".." segment,
 *     no empty one): a rewrite never leads out of a root;
 *   - new args hold no control character the replacement did not.
 *
 *   scripts/fuzz.sh 60 rewrite
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/exchange.h"
#include "http/path.h"
#include "route/rewrite.h"
#include "route/vars.h"

static bool plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f;
}

/* Every byte of out is printable, or was in the template. */
static void check_text(const char *tmpl, const struct buf *out)
{
    bool raw = false;
    for (const unsigned char *p = (const unsigned char *)tmpl; *p; p++)
        raw = raw || !plain(*p);
    for (size_t i = 0; i < out->len && !raw; i++)
        if (!plain((unsigned char)out->p[i]))
            abort();
}

static void check_path(const char *p)
{
    if (p[0] != '/')
        abort();
    for (const char *s = p; s; s = strchr(s + 1, '/')) {
        const char *seg = s + 1;
        size_t n = strcspn(seg, "/");
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            abort();
        if (n == 0 && seg[0] == '/')
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 3);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = in[size + 1] = in[size + 2] = '\0';
    const char *replacement = in;
    const char *raw_path = replacement + strlen(replacement) + 1;
    if (raw_path > in + size)
        raw_path = in + size;
    const char *args = raw_path + strlen(raw_path) + 1;
    if (args > in + size + 1)
        args = in + size + 1;
    /* The path and args as a request-target holds them: VCHAR only. */
    for (const char *a = raw_path; a < args || *a; a++)
        if (*a &&
            (!plain((unsigned char)*a) || *a == ' ' || *a == '#' || (a < args && *a == '?'))) {
            free(in);
            return 0;
        }

    char err[256];
    char *path = malloc(strlen(raw_path) + 2);
    long n = path && raw_path[0] == '/' ? path_normalise(raw_path, strlen(raw_path), path) : -1;
    struct rw_list l[4] = {{0}};
    static const char *const flags[] = {"last", "break", "redirect", "permanent"};
    bool taken = true;
    for (int f = 0; f < 4 && taken; f++) {
        const char *argv[] = {"^/(.*?)/?([^/]*)$", replacement, flags[f]};
        taken = rw_add(&l[f], false, -1, 3, argv, err, sizeof err) == 0;
        if (!taken && (!memchr(err, '\0', sizeof err) || !err[0]))
            abort();
    }
    if (n >= 0 && taken) {
        struct verbd_request req = {0};
        req.http.path.p = raw_path;
        req.http.path.n = strlen(raw_path);
        for (int f = 0; f < 4; f++) {
            struct vars v = {
                .req = &req, .uri = path, .args = *args ? args : NULL, .args_len = strlen(args)};
            struct rw_result r = {0};
            rw_run(&l[f], &v, &r);
            switch (r.outcome) {
            case RW_STOP_LAST:
            case RW_STOP_BREAK:
            case RW_CONTINUE:
                if (r.changed) {
                    if (!r.path.p || strlen(r.path.p) + 1 != r.path.len)
                        abort();
                    check_path(r.path.p);
                }
                if (r.has_args)
                    check_text(replacement, &r.args);
                break;
            case RW_ANSWER:
                if (!r.location || (r.status != 301 && r.status != 302))
                    abort();
                check_text(replacement, &r.text);
                break;
            case RW_FAILED:
                if (r.status != 400 && r.status != 404 && r.status != 500)
                    abort();
                break;
            }
            rw_result_free(&r);
        }
    }
    for (int f = 0; f < 4; f++)
        rw_free(&l[f]);
    free(path);
    free(in);
    return 0;
}
