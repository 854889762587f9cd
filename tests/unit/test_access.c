/* Access control's parsers and checks: allow/deny rules (IPv4, IPv6,
 * IPv4-mapped clients), the Basic credentials parser, apr1 against
 * vectors made with `openssl passwd -apr1 -salt SALT PASSWORD`, htpasswd
 * parsing with its refusals, and verification for each scheme. */
#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "mod/access/rules.h"
#include "mod/auth/apr1.h"
#include "mod/auth/basic.h"
#include "mod/auth/cache.h"
#include "mod/auth/htpasswd.h"
#include "unit.h"

/* ---- rules -------------------------------------------------------------------------------- */

static struct sockaddr_storage v4(const char *a)
{
    struct sockaddr_storage s = {0};
    struct sockaddr_in *in = (struct sockaddr_in *)&s;
    in->sin_family = AF_INET;
    inet_pton(AF_INET, a, &in->sin_addr);
    return s;
}

static struct sockaddr_storage v6(const char *a)
{
    struct sockaddr_storage s = {0};
    struct sockaddr_in6 *in = (struct sockaddr_in6 *)&s;
    in->sin6_family = AF_INET6;
    inet_pton(AF_INET6, a, &in->sin6_addr);
    return s;
}

/* The verdict of one rule on an address. */
static int one(const char *rule, bool allow, struct sockaddr_storage peer)
{
    struct access_rule r;
    char err[256];
    if (access_rule_parse(rule, allow, &r, err, sizeof err) < 0)
        return 99;
    return access_rules_match(&r, 1, (struct sockaddr *)&peer);
}

static void test_rules(void)
{
    CHECK_INT(one("all", true, v4("1.2.3.4")), 1);
    CHECK_INT(one("all", false, v6("::1")), -1);
    CHECK_INT(one("10.0.0.0/8", true, v4("10.200.1.1")), 1);
    CHECK_INT(one("10.0.0.0/8", true, v4("11.0.0.1")), 0);
    CHECK_INT(one("10.1.2.3", true, v4("10.1.2.3")), 1);
    CHECK_INT(one("10.1.2.3", true, v4("10.1.2.4")), 0);
    CHECK_INT(one("0.0.0.0/0", false, v4("8.8.8.8")), -1);
    CHECK_INT(one("192.168.1.128/25", true, v4("192.168.1.200")), 1);
    CHECK_INT(one("192.168.1.128/25", true, v4("192.168.1.100")), 0);
    CHECK_INT(one("::1", true, v6("::1")), 1);
    CHECK_INT(one("::1", true, v4("127.0.0.1")), 0);
    CHECK_INT(one("2001:db8::/32", false, v6("2001:db8:ffff::1")), -1);
    CHECK_INT(one("2001:db8::/32", false, v6("2001:db9::1")), 0);
    CHECK_INT(one("2001:db8::/33", true, v6("2001:db8:8000::1")), 0);
    /* An IPv4-mapped client is the IPv4 client it is. */
    CHECK_INT(one("127.0.0.1", false, v6("::ffff:127.0.0.1")), -1);
    CHECK_INT(one("10.0.0.0/8", true, v6("::ffff:10.9.8.7")), 1);
    CHECK_INT(one("10.0.0.0/8", true, v6("::ffff:11.9.8.7")), 0);
    CHECK_INT(one("::1", true, v6("::ffff:0.0.0.1")), 0);
    /* ... and an IPv4-mapped rule an IPv4 one. */
    CHECK_INT(one("::ffff:10.0.0.0/104", true, v4("10.1.1.1")), 1);
    CHECK_INT(one("::ffff:10.0.0.1", false, v6("::ffff:10.0.0.1")), -1);
    CHECK_INT(one("::ffff:10.0.0.1", false, v4("10.0.0.1")), -1);
    /* No address (a local socket): only `all`. */
    struct access_rule r[2];
    char err[256];
    CHECK_INT(access_rule_parse("127.0.0.1", true, &r[0], err, sizeof err), 0);
    CHECK_INT(access_rule_parse("all", false, &r[1], err, sizeof err), 0);
    CHECK_INT(access_rules_match(r, 2, NULL), -1);
    CHECK_INT(access_rules_match(r, 1, NULL), 0);
    /* First match wins. */
    struct sockaddr_storage lo = v4("127.0.0.1");
    CHECK_INT(access_rules_match(r, 2, (struct sockaddr *)&lo), 1);
    /* Malformed, and host bits set (a warning; the network is meant). */
    const char *bad[] = {"",        "10.0.0.0/33",   "10.0.0.0/",   "10.0.0/8",
                         "::1/129", "example.com",   "10.0.0.0/-1", "1.2.3.4/8x",
                         "/8",      "10.0.0.0/0008", "[::1]",       "all/8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(access_rule_parse(bad[i], true, &r[0], err, sizeof err), -1);
    CHECK_INT(access_rule_parse("10.1.2.3/8", true, &r[0], err, sizeof err), 1);
    CHECK(strstr(err, "10.0.0.0/8") != NULL);
    CHECK_INT(one("10.1.2.3/8", true, v4("10.9.9.9")), 1);
}

/* ---- Basic credentials --------------------------------------------------------------------- */

static int parse(const char *v, struct basic_credentials *c)
{
    return basic_parse(v, strlen(v), c);
}

static void test_basic(void)
{
    struct basic_credentials c;
    CHECK_INT(parse("Basic YWxpY2U6cHc=", &c), 0);
    CHECK_STR(c.user, "alice");
    CHECK_STR(c.pass, "pw");
    CHECK_INT(c.user_len, 5);
    CHECK_INT(c.pass_len, 2);
    CHECK_INT(parse("  bAsIc   YWxpY2U6cHc=  ", &c), 0);
    /* The password may hold colons; the user-id may be empty. */
    CHECK_INT(parse("Basic dTpwOmE6Yg==", &c), 0); /* u:p:a:b */
    CHECK_STR(c.user, "u");
    CHECK_STR(c.pass, "p:a:b");
    CHECK_INT(parse("Basic OnB3", &c), 0); /* ":pw" */
    CHECK_INT(c.user_len, 0);
    const char *bad[] = {
        "",
        "Basic",
        "Basic ",
        "Basic\tYWxpY2U6cHc=",
        "BasicYWxpY2U6cHc=",
        "Bearer YWxpY2U6cHc=",
        "Basic YWxpY2U6cHc",      /* no padding */
        "Basic YWxpY2U6cHc==",    /* too much */
        "Basic YWxpY2U6cH==",     /* bits left over */
        "Basic YWxpY2U6cHc= x",   /* two tokens */
        "Basic YWxp Y2U6cHc=",    /* a space inside */
        "Basic YWxpY2Vwdw==",     /* no colon */
        "Basic YWxpY2U6cAB3",     /* NUL */
        "Basic YWxpY2U6cHcK",     /* LF */
        "Basic YWxpY2V/OnB3",     /* DEL */
        "Basic YWxpY2U6cHc_Pj8-", /* base64url */
        "Basic ====",
        "Basic =",
        "Basic a",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse(bad[i], &c) == 0)
            printf("FAIL: \"%s\" parsed\n", bad[i]);
        CHECK_INT(parse(bad[i], &c), -1);
    }
    /* The bound on decoded length. */
    char big[2000] = "Basic ";
    memset(big + 6, 'A', 1368);
    big[6 + 1368] = '\0';
    CHECK_INT(parse(big, &c), -1); /* 1026 bytes, no colon either way */
}

/* ---- apr1 ----------------------------------------------------------------------------------- */

static void test_apr1(void)
{
    static const struct {
        const char *salt, *pw, *hash;
    } vectors[] = {
        {"abcdefgh", "pw", "$apr1$abcdefgh$5VEbMkemELfbhC5ck.U.z1"},
        {"s", "pass", "$apr1$s$vn5unVmoQ41lSUwdBMiBh1"},
        {"12345678", "password", "$apr1$12345678$9pHAGSBYtlmFtid2xxNog0"},
        {"abcdefgh", "", "$apr1$abcdefgh$L.PT565ESX4Tp2bqNs7Ie."},
        {"Ab/9.z", "p@ss:w0rd-with-a-rather-long-tail-over-sixteen-bytes",
         "$apr1$Ab/9.z$yszx4uTVFDduFf0vUYSJB0"},
    };
    char out[APR1_HASH_MAX];
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char setting[32];
        snprintf(setting, sizeof setting, "$apr1$%s", vectors[i].salt);
        CHECK_INT(apr1_crypt(vectors[i].pw, strlen(vectors[i].pw), setting, out), 0);
        CHECK_STR(out, vectors[i].hash);
        /* The whole hash as the setting: its salt is used. */
        CHECK_INT(apr1_crypt(vectors[i].pw, strlen(vectors[i].pw), vectors[i].hash, out), 0);
        CHECK_STR(out, vectors[i].hash);
    }
    CHECK_INT(apr1_crypt("pw", 2, "$1$abc$", out), -1);
}

/* ---- htpasswd ------------------------------------------------------------------------------- */

static int parse_file(const char *text, struct htpasswd *h, char *err, size_t n)
{
    return htpasswd_parse("users", text, strlen(text), h, err, n);
}

/* Whether text fails to parse with `msg` in its message. */
static bool refused(const char *text, const char *msg)
{
    struct htpasswd h;
    char err[512] = "";
    int rc = parse_file(text, &h, err, sizeof err);
    if (rc == 0)
        htpasswd_free(&h);
    if (rc == 0 || !strstr(err, msg)) {
        printf("    %s -> %d \"%s\"\n", text, rc, err);
        return false;
    }
    return true;
}

static void test_htpasswd(void)
{
    char hash6[128], hash5[128], hashb[128];
    struct crypt_data cd = {0};
    strcpy(hash6, crypt_r("six", "$6$saltsalt", &cd));
    strcpy(hash5, crypt_r("five", "$5$rounds=6000$pepper", &cd));
    strcpy(hashb, crypt_r("blow", "$2b$04$abcdefghijklmnopqrstuu", &cd));
    char text[2048];
    snprintf(text, sizeof text,
             "# a comment\n\n   \n"
             "carol:%s\r\n"
             "bob:$apr1$abcdefgh$5VEbMkemELfbhC5ck.U.z1:the old one\n"
             "alice:%s\n"
             "dave:%s",
             hash6, hash5, hashb);
    struct htpasswd h;
    char err[512] = "";
    CHECK_INT(parse_file(text, &h, err, sizeof err), 0);
    CHECK_INT(h.n, 4);
    CHECK_INT(h.weak, 1);
    const struct htpasswd_entry *e = htpasswd_find(&h, "carol", 5);
    CHECK(e && e->scheme == HT_SHA512);
    CHECK(e && htpasswd_verify(&h, e, "six", 3));
    CHECK(e && !htpasswd_verify(&h, e, "six ", 4));
    e = htpasswd_find(&h, "alice", 5);
    CHECK(e && e->scheme == HT_SHA256 && htpasswd_verify(&h, e, "five", 4));
    CHECK(e && !htpasswd_verify(&h, e, "Five", 4));
    e = htpasswd_find(&h, "bob", 3);
    CHECK(e && e->scheme == HT_APR1 && htpasswd_verify(&h, e, "pw", 2));
    CHECK(e && !htpasswd_verify(&h, e, "pw2", 3));
    e = htpasswd_find(&h, "dave", 4);
    CHECK(e && e->scheme == HT_BCRYPT && htpasswd_verify(&h, e, "blow", 4));
    CHECK(e && !htpasswd_verify(&h, e, "blo", 3));
    CHECK(htpasswd_find(&h, "eve", 3) == NULL);
    CHECK(htpasswd_find(&h, "alic", 4) == NULL);
    CHECK(htpasswd_find(&h, "alicee", 6) == NULL);
    CHECK(htpasswd_find(&h, "bobx", 3) != NULL); /* the length counts, not the NUL */
    htpasswd_free(&h);

    CHECK_INT(parse_file("", &h, err, sizeof err), 0);
    CHECK_INT(h.n, 0);
    htpasswd_free(&h);

    CHECK(refused("a:plain", "users:1: user \"a\": a plain-text password is refused"));
    CHECK(refused("\n\na:abJnggxhB/yWI", "users:3: user \"a\": DES crypt is refused"));
    CHECK(refused("a:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "unsalted SHA-1"));
    CHECK(refused("a:$1$abc$0123456789012345678901", "an unsupported scheme"));
    CHECK(refused("a:$y$j9T$abc$def", "an unsupported scheme"));
    CHECK(refused("a:$2y$13$abcdefghijklmnopqrstuuDZwGx5DM5ifCsyqYzoUMSGhVmJW0Huu",
                  "bcrypt cost 13 is over 12"));
    CHECK(refused("a:$2y$03$abcdefghijklmnopqrstuuDZwGx5DM5ifCsyqYzoUMSGhVmJW0Huu",
                  "cost outside 4 to 31"));
    CHECK(refused("a:$2y$05$short", "a malformed bcrypt hash"));
    CHECK(refused("a:$6$rounds=500001$salt$x", "a malformed SHA-crypt hash"));
    CHECK(refused("a:$5$rounds=x$salt$x", "(rounds)"));
    CHECK(refused("a:$apr1$toolongsalt$5VEbMkemELfbhC5ck.U.z1", "a malformed $apr1$ hash"));
    CHECK(refused("a:$apr1$abcdefgh$5VEbMkemELfbhC5ck.U.z", "a malformed $apr1$ hash"));
    CHECK(refused("nocolon", "users:1: no \":\" between user and password hash"));
    CHECK(refused(":$apr1$abcdefgh$5VEbMkemELfbhC5ck.U.z1", "an empty user name"));
    CHECK(refused("a\tb:$apr1$abcdefgh$5VEbMkemELfbhC5ck.U.z1", "a control character"));
    CHECK(
        refused("a:$apr1$abcdefgh$5VEbMkemELfbhC5ck.U.z1\na:$apr1$abcdefgh$5VEbMkemELfbhC5ck.U.z1",
                "user \"a\" is listed twice"));
    char nul[] = "a:$apr1$abcdefgh$5VEbMkemELfbhC5ck.U.z1\0b";
    CHECK_INT(htpasswd_parse("users", nul, sizeof nul - 1, &h, err, sizeof err), -1);
    /* A round count over the bound, well-formed otherwise. */
    char big[256];
    snprintf(big, sizeof big, "a:$6$rounds=900000$salt$%086d", 0);
    for (char *p = strrchr(big, '$') + 1; *p; p++)
        *p = 'a';
    CHECK(refused(big, "SHA-crypt rounds 900000 are over 500000"));
}

/* ---- the verified cache --------------------------------------------------------------------- */

static void test_cache(void)
{
    static struct auth_cache c;
    auth_cache_init(&c);
    uint8_t k1[32], k2[32], k3[32];
    auth_cache_key(&c, "a", 1, "b:c", 3, k1);
    auth_cache_key(&c, "a:b", 3, "c", 1, k2); /* a user-id has no colon; still apart */
    auth_cache_key(&c, "a", 1, "b:c", 3, k3);
    CHECK(memcmp(k1, k3, 32) == 0);
    CHECK_INT(auth_cache_get(&c, k1, 1000), -1);
    auth_cache_put(&c, k1, true, 1000);
    CHECK_INT(auth_cache_get(&c, k1, 1000), 1);
    CHECK_INT(auth_cache_get(&c, k1, 1000 + AUTH_CACHE_TTL_MS - 1), 1);
    CHECK_INT(auth_cache_get(&c, k1, 1000 + AUTH_CACHE_TTL_MS), -1);
    auth_cache_put(&c, k2, false, 2000);
    CHECK_INT(auth_cache_get(&c, k2, 2000), 0);
    /* Another process's secret: other keys. */
    static struct auth_cache d;
    auth_cache_init(&d);
    uint8_t k4[32];
    auth_cache_key(&d, "a", 1, "b:c", 3, k4);
    CHECK(memcmp(k1, k4, 32) != 0);
    /* Full: the oldest slots are reused, the table never grows. */
    for (int i = 0; i < 3 * AUTH_CACHE_SLOTS; i++) {
        uint8_t k[32];
        auth_cache_key(&c, "u", 1, (const char *)&i, sizeof i, k);
        auth_cache_put(&c, k, true, 3000);
        CHECK_INT(auth_cache_get(&c, k, 3000), 1);
    }
    auth_cache_clear(&c);
    auth_cache_clear(&d);
}

int main(void)
{
    test_rules();
    test_basic();
    test_apr1();
    test_htpasswd();
    test_cache();
    return unit_report();
}
