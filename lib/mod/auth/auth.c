/* The auth guard: `auth_basic REALM|off` and `auth_basic_user_file FILE`.
 * Credentials come from the Authorization field (basic.c), are looked up
 * in the verified cache (cache.c) and otherwise checked against the user
 * file (htpasswd.c); an unknown user costs a hash of the same scheme and
 * cost as a known one, so the time of a refusal does not tell them
 * apart. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/exchange.h"
#include "core/log.h"
#include "mod/auth/auth.h"
#include "mod/auth/basic.h"
#include "mod/auth/cache.h"
#include "mod/auth/htpasswd.h"

struct auth_inst {
    char *challenge; /* the WWW-Authenticate value; NULL: off (or not given) */
    bool enabled;    /* auth_basic REALM (not off) */
    char *file;      /* auth_basic_user_file, as given */
    struct htpasswd users;
    /* Never matches: the first entry's hash with its digest blanked out,
     * so checking a password against it costs what checking a known
     * user's (of that scheme and cost) does. */
    struct htpasswd_entry dummy;
    char *dummy_hash;
    struct auth_cache cache;
};

static void *auth_create(void)
{
    struct auth_inst *in = calloc(1, sizeof *in);
    if (!in)
        abort();
    auth_cache_init(&in->cache);
    return in;
}

static void forget_users(struct auth_inst *in)
{
    htpasswd_free(&in->users);
    free(in->dummy_hash);
    in->dummy_hash = NULL;
    free(in->file);
    in->file = NULL;
}

static void auth_destroy(void *inst)
{
    struct auth_inst *in = inst;
    forget_users(in);
    free(in->challenge);
    auth_cache_clear(&in->cache);
    free(in);
}

static int set_realm(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct auth_inst *in = inst;
    free(in->challenge);
    in->challenge = NULL;
    in->enabled = strcmp(argv[0], "off") != 0;
    if (!in->enabled)
        return 0;
    const char *realm = argv[0];
    size_t n = strlen(realm);
    if (n > 256) {
        snprintf(err, errlen, "auth_basic: the realm is longer than 256 bytes");
        return -1;
    }
    /* A quoted-string: '"' and '\' escaped, no control characters. */
    char *v = malloc(2 * n + 64);
    if (!v)
        abort();
    size_t k = (size_t)sprintf(v, "Basic realm=\"");
    for (const unsigned char *p = (const unsigned char *)realm; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            free(v);
            snprintf(err, errlen, "auth_basic: the realm has a control character");
            return -1;
        }
        if (*p == '"' || *p == '\\')
            v[k++] = '\\';
        v[k++] = (char)*p;
    }
    strcpy(v + k, "\", charset=\"UTF-8\"");
    in->challenge = v;
    return 0;
}

/* The dummy entry for unknown users (struct auth_inst). */
static void make_dummy(struct auth_inst *in)
{
    if (!in->users.n)
        return;
    const struct htpasswd_entry *first = &in->users.v[0];
    in->dummy_hash = strdup(first->hash);
    if (!in->dummy_hash)
        abort();
    /* The digest: bcrypt's last 31 characters, the others' after the
     * last '$'. */
    size_t len = strlen(in->dummy_hash);
    size_t from = first->scheme == HT_BCRYPT
                      ? 29
                      : (size_t)(strrchr(in->dummy_hash, '$') - in->dummy_hash + 1);
    memset(in->dummy_hash + from, '.', len - from);
    in->dummy = (struct htpasswd_entry){"", in->dummy_hash, first->scheme};
}

static int set_user_file(void *inst, int argc, const char *const *argv, char *err, size_t errlen)
{
    (void)argc;
    struct auth_inst *in = inst;
    forget_users(in);
    if (htpasswd_load(argv[0], &in->users, err, errlen) < 0)
        return -1;
    in->file = strdup(argv[0]);
    if (!in->file)
        abort();
    make_dummy(in);
    if (in->users.weak) {
        snprintf(err, errlen,
                 "auth_basic_user_file: %s: %zu entr%s use%s $apr1$ (MD5), which is weak: "
                 "make %s again with htpasswd -B",
                 argv[0], in->users.weak, in->users.weak == 1 ? "y" : "ies",
                 in->users.weak == 1 ? "s" : "", in->users.weak == 1 ? "it" : "them");
        return 1;
    }
    return 0;
}

static int auth_check_config(void *inst, char *err, size_t errlen)
{
    struct auth_inst *in = inst;
    if (in->enabled && !in->file) {
        snprintf(err, errlen,
                 "auth_basic needs auth_basic_user_file (the users and their password hashes)");
        return -1;
    }
    return 0;
}

/* The one Authorization field's value; p NULL if there is none or more
 * than one. */
static struct span authorization(const struct http_request *h)
{
    struct span v = {NULL, 0};
    int seen = 0;
    for (size_t i = 0; i < h->nfields; i++) {
        struct span name = h->fields[i].name;
        if (name.n == 13 && strncasecmp(name.p, "Authorization", 13) == 0) {
            v = h->fields[i].value;
            seen++;
        }
    }
    return seen == 1 ? v : (struct span){NULL, 0};
}

static bool verify(struct auth_inst *in, const struct basic_credentials *cr)
{
    const struct htpasswd_entry *e = htpasswd_find(&in->users, cr->user, cr->user_len);
    if (e)
        return htpasswd_verify(&in->users, e, cr->pass, cr->pass_len);
    if (in->dummy_hash)
        (void)htpasswd_verify(&in->users, &in->dummy, cr->pass, cr->pass_len);
    return false;
}

static enum guard_verdict auth_check(void *inst, const struct verbd_request *req)
{
    struct auth_inst *in = inst;
    if (!in->enabled)
        return GUARD_PASS;
    struct span v = authorization(&req->http);
    struct basic_credentials cr;
    if (!v.p || basic_parse(v.p, v.n, &cr) < 0)
        return GUARD_CHALLENGE;
    uint8_t key[32];
    auth_cache_key(&in->cache, cr.user, cr.user_len, cr.pass, cr.pass_len, key);
    uint64_t now = clock_ms();
    int ok = auth_cache_get(&in->cache, key, now);
    if (ok < 0) {
        ok = verify(in, &cr);
        auth_cache_put(&in->cache, key, ok, now);
        if (!ok) {
            const struct htpasswd_entry *e = htpasswd_find(&in->users, cr.user, cr.user_len);
            log_msg(LOG_INFO, "401 at %s: %s%s%s", req->path ? req->path : "?",
                    e ? "wrong password for user \"" : "unknown user", e ? e->user : "",
                    e ? "\"" : "");
        }
    }
    OPENSSL_cleanse(&cr, sizeof cr);
    return ok ? GUARD_GRANT : GUARD_CHALLENGE;
}

/* The user of credentials auth_check granted (checked again only for
 * their form: the grant was this request's). */
static size_t auth_user(void *inst, const struct verbd_request *req, char *out, size_t cap)
{
    (void)inst;
    struct span v = authorization(&req->http);
    struct basic_credentials cr;
    size_t n = 0;
    if (v.p && basic_parse(v.p, v.n, &cr) == 0 && cr.user_len < cap) {
        memcpy(out, cr.user, cr.user_len);
        n = cr.user_len;
    }
    OPENSSL_cleanse(&cr, sizeof cr);
    return n;
}

static void auth_challenge(void *inst, struct verbd_response *res)
{
    struct auth_inst *in = inst;
    if (in->challenge)
        verbd_response_header(res, "WWW-Authenticate", in->challenge);
}

static const struct verbd_directive auth_directives[] = {
    {.name = "auth_basic", .min_args = 1, .max_args = 1, .set = set_realm, .inherit = true},
    {.name = "auth_basic_user_file",
     .min_args = 1,
     .max_args = 1,
     .set = set_user_file,
     .path_args = true,
     .inherit = true},
    {.name = NULL},
};

const struct verbd_guard verbd_guard_auth_basic = {
    .name = "auth_basic",
    .directives = auth_directives,
    .create = auth_create,
    .destroy = auth_destroy,
    .check_config = auth_check_config,
    .check = auth_check,
    .user = auth_user,
    .challenge = auth_challenge,
};
