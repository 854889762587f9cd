/* The cache's pure parts (lib/cache/): Cache-Control parsing, freshness
 * arithmetic, the storing rules, Vary matching, entity-tag comparison,
 * and the shared store's bound, eviction order and references. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/cc.h"
#include "cache/fresh.h"
#include "cache/policy.h"
#include "cache/store.h"
#include "cache/vary.h"
#include "unit.h"

static struct span sp(const char *s)
{
    return (struct span){s, strlen(s)};
}

static struct cache_control cc_of(const char *s)
{
    struct cache_control cc;
    cc_init(&cc);
    cc_parse(&cc, sp(s));
    return cc;
}

static void test_cc(void)
{
    struct cache_control cc = cc_of("max-age=60, s-maxage=\"30\", no-cache, must-revalidate");
    CHECK_INT(cc.max_age, 60);
    CHECK_INT(cc.s_maxage, 30);
    CHECK(cc.flags & CC_NO_CACHE);
    CHECK(cc.flags & CC_MUST_REVALIDATE);
    CHECK(!(cc.flags & CC_NO_STORE));
    /* First occurrence wins; case-insensitive names; unknown ignored. */
    cc = cc_of("MAX-AGE=5, max-age=100, foo=\"a,b\", bar");
    CHECK_INT(cc.max_age, 5);
    /* Invalid values are stale, not fresh for ever. */
    cc = cc_of("max-age=abc");
    CHECK_INT(cc.max_age, 0);
    CHECK(cc.flags & CC_INVALID_AGE);
    cc = cc_of("max-age=");
    CHECK_INT(cc.max_age, 0);
    cc = cc_of("max-age=-1");
    CHECK_INT(cc.max_age, 0);
    /* Past 2^31: 2^31 (RFC 9111 §1.2.2). */
    cc = cc_of("max-age=99999999999999999999999");
    CHECK_INT(cc.max_age, CC_DELTA_MAX);
    /* Field names of private and no-cache; a quoted comma is not a list
     * separator of directives. */
    cc = cc_of("private=\"Set-Cookie, X-A\", no-cache=\"X-B\", max-age=3");
    CHECK(cc.flags & CC_PRIVATE_FIELDS);
    CHECK(!(cc.flags & CC_PRIVATE));
    CHECK(cc.flags & CC_NO_CACHE_FIELDS);
    CHECK(cc_names_field(cc.private_fields, sp("set-cookie")));
    CHECK(cc_names_field(cc.private_fields, sp("X-A")));
    CHECK(!cc_names_field(cc.private_fields, sp("X-B")));
    CHECK(cc_names_field(cc.no_cache_fields, sp("x-b")));
    CHECK_INT(cc.max_age, 3);
    cc = cc_of("max-stale, only-if-cached, min-fresh=7");
    CHECK(cc.flags & CC_MAX_STALE_ANY);
    CHECK(cc.flags & CC_ONLY_IF_CACHED);
    CHECK_INT(cc.min_fresh, 7);
    CHECK_INT(cc.max_stale, CC_UNSET);
    cc = cc_of("max-stale=9, stale-while-revalidate=4, stale-if-error=8, must-understand");
    CHECK_INT(cc.max_stale, 9);
    CHECK_INT(cc.stale_while_revalidate, 4);
    CHECK_INT(cc.stale_if_error, 8);
    CHECK(cc.flags & CC_MUST_UNDERSTAND);
    cc = cc_of(" , ,, ");
    CHECK_INT(cc.flags, 0);
    cc = cc_of("no-store");
    CHECK(cc.flags & CC_NO_STORE);
}

static void test_lifetime(void)
{
    struct fresh_times t = {.date = 1000,
                            .expires = -1,
                            .last_modified = -1,
                            .request_time = 1000,
                            .response_time = 1000};
    enum fresh_source src;
    struct cache_control cc = cc_of("max-age=60, s-maxage=10");
    CHECK_INT(fresh_lifetime(200, &cc, &t, NULL, &src), 10);
    CHECK_INT(src, FRESH_EXPLICIT);
    cc = cc_of("max-age=60");
    t.expires = 5000;
    CHECK_INT(fresh_lifetime(200, &cc, &t, NULL, &src), 60);
    cc = cc_of("");
    CHECK_INT(fresh_lifetime(200, &cc, &t, NULL, &src), 4000); /* Expires - Date */
    t.expires = 0;                                             /* invalid: expired */
    CHECK_INT(fresh_lifetime(200, &cc, &t, NULL, &src), 0);
    CHECK_INT(src, FRESH_EXPLICIT);
    t.expires = -1;
    /* Heuristic: 10% since Last-Modified, at most a day. */
    t.last_modified = 0;
    CHECK_INT(fresh_lifetime(200, &cc, &t, NULL, &src), 100);
    CHECK_INT(src, FRESH_HEURISTIC);
    t.date = 10 * 86400 * 2;
    CHECK_INT(fresh_lifetime(404, &cc, &t, NULL, &src), 86400);
    t.date = 1000;
    t.last_modified = -1;
    CHECK_INT(fresh_lifetime(404, &cc, &t, NULL, &src), 60);
    CHECK_INT(fresh_lifetime(410, &cc, &t, NULL, &src), 60);
    CHECK_INT(fresh_lifetime(405, &cc, &t, NULL, &src), 600);
    CHECK_INT(fresh_lifetime(414, &cc, &t, NULL, &src), 600);
    CHECK_INT(fresh_lifetime(501, &cc, &t, NULL, &src), 600);
    CHECK_INT(fresh_lifetime(200, &cc, &t, NULL, &src), 0);
    CHECK_INT(src, FRESH_NONE);
    CHECK_INT(fresh_lifetime(302, &cc, &t, NULL, &src), 0);
    CHECK_INT(src, FRESH_NONE);
    /* The operator's values win over both rules. */
    struct heuristic h = {0};
    h.set[fresh_heuristic_index(501)] = true;
    h.seconds[fresh_heuristic_index(501)] = 2;
    h.set[fresh_heuristic_index(200)] = true;
    h.seconds[fresh_heuristic_index(200)] = 3600;
    CHECK_INT(fresh_lifetime(501, &cc, &t, &h, &src), 2);
    CHECK_INT(fresh_lifetime(200, &cc, &t, &h, &src), 3600);
    CHECK_INT(src, FRESH_HEURISTIC);
    CHECK_INT(fresh_heuristic_index(302), -1);
    CHECK_INT(fresh_heuristic_index(308), 6);
}

static void test_age(void)
{
    /* RFC 9111 §4.2.3 step by step. */
    struct fresh_times t = {.date = 990, .age = 5, .request_time = 998, .response_time = 1000};
    /* apparent 10; corrected 5 + 2 = 7; initial 10; resident 20. */
    CHECK_INT(fresh_current_age(&t, 1020), 30);
    t.age = 20; /* corrected 22 beats apparent 10 */
    CHECK_INT(fresh_current_age(&t, 1000), 22);
    t.date = 2000; /* a Date in the future: apparent age 0 */
    t.age = 0;
    CHECK_INT(fresh_current_age(&t, 1000), 2);
    t.date = -1;
    CHECK_INT(fresh_current_age(&t, 1010), 12);
}

static void test_judge(void)
{
    static const struct {
        const char *res, *req;
        uint64_t lifetime, age;
        enum fresh_verdict want;
    } cases[] = {
        {"max-age=60", "", 60, 10, FRESH_USE},
        {"max-age=60", "", 60, 60, FRESH_VALIDATE},
        {"max-age=60", "max-age=5", 60, 10, FRESH_VALIDATE},
        {"max-age=60", "min-fresh=55", 60, 10, FRESH_VALIDATE},
        {"max-age=60", "min-fresh=50", 60, 10, FRESH_USE},
        {"max-age=60", "max-stale=30", 60, 80, FRESH_USE_STALE},
        {"max-age=60", "max-stale=30", 60, 100, FRESH_VALIDATE},
        {"max-age=60", "max-stale", 60, 100000, FRESH_USE_STALE},
        {"max-age=60", "no-cache", 60, 0, FRESH_VALIDATE},
        {"max-age=60, must-revalidate", "max-stale", 60, 61, FRESH_VALIDATE},
        {"max-age=60, proxy-revalidate", "max-stale", 60, 61, FRESH_VALIDATE},
        {"s-maxage=60", "max-stale", 60, 61, FRESH_VALIDATE},
        {"no-cache", "max-stale", 60, 1, FRESH_VALIDATE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cache_control res = cc_of(cases[i].res), req = cc_of(cases[i].req);
        CHECK_INT(fresh_judge(cases[i].lifetime, cases[i].age, &res, &req), cases[i].want);
    }
}

static void test_storable(void)
{
    struct cache_control none = cc_of(""), res;
    CHECK(policy_unstorable(200, &none, &none, false) == NULL);
    CHECK(policy_unstorable(501, &none, &none, false) == NULL);
    CHECK_STR(policy_unstorable(302, &none, &none, false), "no-freshness");
    CHECK(policy_unstorable(302, &none, &none, true) == NULL);
    res = cc_of("max-age=5");
    CHECK(policy_unstorable(302, &res, &none, false) == NULL);
    res = cc_of("no-store, max-age=5");
    CHECK_STR(policy_unstorable(200, &res, &none, false), "no-store");
    res = cc_of("private");
    CHECK_STR(policy_unstorable(200, &res, &none, false), "private");
    res = cc_of("private=\"Set-Cookie\"");
    CHECK(policy_unstorable(200, &res, &none, false) == NULL);
    res = cc_of("must-understand, no-store");
    CHECK(policy_unstorable(200, &res, &none, false) == NULL);
    CHECK_STR(policy_unstorable(299, &res, &none, false), "must-understand");
    struct cache_control req = cc_of("no-store");
    CHECK_STR(policy_unstorable(200, &none, &req, false), "request-no-store");
    CHECK(policy_unstorable(206, &none, &none, false) == NULL); /* as a part only */
    CHECK_STR(policy_unstorable(304, &none, &none, false), "status");
}

/* RFC 9213: the targeted field, else CDN-Cache-Control, else
 * Cache-Control; an invalid or empty targeted field counts as absent. */
static void test_targeted(void)
{
    /* A Dictionary (RFC 8941), each known directive of its type. */
    CHECK(cc_sf_valid(sp("max-age=60, no-store")));
    CHECK(cc_sf_valid(sp("private=\"set-cookie, x\", s-maxage=5")));
    CHECK(cc_sf_valid(sp("no-store=?1, max-age=60;a=b, foo=(1 2), bar=:AQ==:, baz=1.5")));
    CHECK(!cc_sf_valid(sp("")));
    CHECK(!cc_sf_valid(sp(" , ")));
    CHECK(!cc_sf_valid(sp("max-age=60 no-store")));
    CHECK(!cc_sf_valid(sp("max-age=\"60")));
    CHECK(!cc_sf_valid(sp("max-age=")));
    CHECK(!cc_sf_valid(sp("@bad")));
    /* Valid for Cache-Control, not as a Dictionary of directives. */
    CHECK(!cc_sf_valid(sp("max-age=\"60\"")));
    CHECK(!cc_sf_valid(sp("s-maxage = 5")));
    CHECK(!cc_sf_valid(sp("Max-Age=5")));
    CHECK(!cc_sf_valid(sp("max-age=-1")));
    CHECK(!cc_sf_valid(sp("max-age=1.5")));
    CHECK(!cc_sf_valid(sp("max-age=(60)")));
    CHECK(!cc_sf_valid(sp("max-age")));
    CHECK(!cc_sf_valid(sp("no-store=1")));
    CHECK(!cc_sf_valid(sp("private=set-cookie")));
    CHECK(!cc_sf_valid(sp("max-age=60,")));

    /* Parsed as a Dictionary: the last of a key counts, ?0 unsets. */
    struct cache_control d;
    cc_init(&d);
    cc_parse_sf(&d, sp("max-age=5, no-store, max-age=60, no-store=?0, x=\"y\""));
    CHECK_INT(d.max_age, 60);
    CHECK(!(d.flags & CC_NO_STORE));
    cc_init(&d);
    cc_parse_sf(&d, sp("private=\"set-cookie\";p=1, s-maxage=99999999999, must-revalidate"));
    CHECK(d.flags & CC_PRIVATE_FIELDS);
    CHECK(!(d.flags & CC_PRIVATE));
    CHECK(d.private_fields.n == 10 && memcmp(d.private_fields.p, "set-cookie", 10) == 0);
    CHECK_INT(d.s_maxage, CC_DELTA_MAX);
    CHECK(d.flags & CC_MUST_REVALIDATE);
    cc_init(&d);
    cc_parse_sf(&d, sp("no-cache=\"a\", no-cache"));
    CHECK(d.flags & CC_NO_CACHE);
    CHECK(!(d.flags & CC_NO_CACHE_FIELDS));

    struct http_field f[] = {
        {sp("Cache-Control"), sp("no-store")},
        {sp("CDN-Cache-Control"), sp("max-age=60")},
        {sp("Verbd-Cache-Control"), sp("max-age=5, must-revalidate")},
    };
    struct cache_control cc;
    /* The targeted field first, when configured. */
    CHECK_INT(cc_parse_targeted(&cc, f, 3, "verbd-cache-control"), CC_FROM_TARGETED);
    CHECK_INT(cc.max_age, 5);
    CHECK(cc.flags & CC_MUST_REVALIDATE);
    CHECK(!(cc.flags & CC_NO_STORE));
    /* Not configured: CDN-Cache-Control, Cache-Control ignored. */
    CHECK_INT(cc_parse_targeted(&cc, f, 3, NULL), CC_FROM_CDN);
    CHECK_INT(cc.max_age, 60);
    CHECK(!(cc.flags & (CC_NO_STORE | CC_MUST_REVALIDATE)));
    /* Configured but absent: CDN-Cache-Control. */
    CHECK_INT(cc_parse_targeted(&cc, f, 2, "Verbd-Cache-Control"), CC_FROM_CDN);
    CHECK_INT(cc.max_age, 60);
    /* Neither: Cache-Control. */
    CHECK_INT(cc_parse_targeted(&cc, f, 1, "Verbd-Cache-Control"), CC_FROM_CACHE_CONTROL);
    CHECK(cc.flags & CC_NO_STORE);
    CHECK_INT(cc.max_age, CC_UNSET);
    /* An invalid targeted field is ignored: the next one decides.  One
     * invalid line spoils the field. */
    struct http_field g[] = {
        {sp("Cache-Control"), sp("max-age=10")},
        {sp("CDN-Cache-Control"), sp("no-store")},
        {sp("Verbd-Cache-Control"), sp("max-age=5")},
        {sp("Verbd-Cache-Control"), sp("max-age=\"7")},
    };
    CHECK_INT(cc_parse_targeted(&cc, g, 4, "Verbd-Cache-Control"), CC_FROM_CDN);
    CHECK(cc.flags & CC_NO_STORE);
    g[1].value = sp("");
    CHECK_INT(cc_parse_targeted(&cc, g, 4, "Verbd-Cache-Control"), CC_FROM_CACHE_CONTROL);
    CHECK_INT(cc.max_age, 10);
    CHECK(!(cc.flags & CC_NO_STORE));
    /* A field valid as Cache-Control but not as a Dictionary of
     * directives is ignored whole. */
    g[1].value = sp("max-age=\"60\"");
    CHECK_INT(cc_parse_targeted(&cc, g, 4, "Verbd-Cache-Control"), CC_FROM_CACHE_CONTROL);
    CHECK_INT(cc.max_age, 10);
    g[1].value = sp("max-age=60, private");
    CHECK_INT(cc_parse_targeted(&cc, g, 4, "Verbd-Cache-Control"), CC_FROM_CDN);
    CHECK_INT(cc.max_age, 60);
    CHECK(cc.flags & CC_PRIVATE);
    /* Its lines are one Dictionary: the last line's value counts. */
    g[1].value = sp("max-age=60");
    g[2].name = sp("CDN-Cache-Control");
    g[2].value = sp("max-age=30");
    CHECK_INT(cc_parse_targeted(&cc, g, 3, NULL), CC_FROM_CDN);
    CHECK_INT(cc.max_age, 30);

    /* Freshness from the targeted field ignores Expires (§2.1). */
    struct http_field e[] = {
        {sp("Date"), sp("Sun, 06 Nov 1994 08:49:37 GMT")},
        {sp("Expires"), sp("Sun, 06 Nov 1994 09:49:37 GMT")},
        {sp("CDN-Cache-Control"), sp("public")},
    };
    struct store_meta m;
    policy_meta(302, e, 3, NULL, NULL, 0, 0, &m);
    CHECK_INT(m.lifetime, 0);
    policy_meta(302, e, 2, NULL, NULL, 0, 0, &m);
    CHECK_INT(m.lifetime, 3600);
}

static void test_head(void)
{
    const char head[] = "Content-Type: text/plain\r\nAge: 5\r\nSet-Cookie: a=b\r\nX-A: 1\r\n"
                        "Cache-Status: up; hit\r\nETag: \"1\"\r\n";
    struct cache_control cc = cc_of("private=\"set-cookie\", no-cache=\"x-a\"");
    struct buf out = {0};
    policy_stored_head(head, sizeof head - 1, &cc, &out);
    buf_append(&out, "", 1);
    CHECK_STR(out.p, "Content-Type: text/plain\r\nETag: \"1\"\r\n");
    /* A 304 replaces fields it has, keeps the framing ones. */
    struct http_field f[3] = {
        {sp("ETag"), sp("\"2\"")}, {sp("Content-Length"), sp("0")}, {sp("X-New"), sp("n")}};
    buf_reset(&out);
    const char *stored = "Content-Type: a\r\nETag: \"1\"\r\nContent-Length: 9\r\n";
    policy_merge_304(stored, strlen(stored), f, 3, &out);
    buf_append(&out, "", 1);
    CHECK_STR(out.p, "Content-Type: a\r\nContent-Length: 9\r\nETag: \"2\"\r\nX-New: n\r\n");
    buf_free(&out);
    struct http_field g[8];
    const char *lines = "A: 1\r\nB:2 \r\nbad\r\nC:\r\n";
    CHECK_INT(policy_fields(lines, strlen(lines), g, 8), 3);
    CHECK(g[1].value.n == 1 && g[1].value.p[0] == '2');
    CHECK_INT(g[2].value.n, 0);
}

/* §3.3, §3.4: a 206 is a storable part with a single Content-Range of
 * known length and a strong validator; parts combine only with the same
 * strong validator. */
static void test_partial(void)
{
    struct byte_range part;
    uint64_t size;
    struct http_field f[] = {{sp("Content-Range"), sp("bytes 10-19/100")},
                             {sp("ETag"), sp("\"a\"")}};
    CHECK(policy_partial(f, 2, &part, &size));
    CHECK(part.first == 10 && part.last == 19 && size == 100);
    f[1].value = sp("W/\"a\"");
    CHECK(!policy_partial(f, 2, &part, &size)); /* weak */
    f[1].value = sp("\"a\"");
    static const char *bad[] = {"bytes 10-19/*",
                                "bytes */100",
                                "bytes 19-10/100",
                                "bytes 0-100/100",
                                "bytes 0-1/2, 3-4/5",
                                "items 0-1/2",
                                "bytes 0-1/99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f[0].value = sp(bad[i]);
        CHECK(!policy_partial(f, 2, &part, &size));
    }
    /* Last-Modified: strong only a second or more before Date. */
    struct http_field lm[] = {{sp("Content-Range"), sp("bytes 0-0/2")},
                              {sp("Last-Modified"), sp("Tue, 14 Nov 2023 22:13:20 GMT")},
                              {sp("Date"), sp("Tue, 14 Nov 2023 22:13:21 GMT")}};
    CHECK(policy_partial(lm, 3, &part, &size));
    lm[2].value = sp("Tue, 14 Nov 2023 22:13:20 GMT");
    CHECK(!policy_partial(lm, 3, &part, &size));
    CHECK(!policy_partial(lm, 2, &part, &size)); /* no Date */
    lm[2].value = sp("Wed, 15 Nov 2023 00:00:00 GMT");
    struct http_field e1[] = {{sp("ETag"), sp("\"a\"")}}, e2[] = {{sp("ETag"), sp("\"b\"")}};
    CHECK(policy_same_strong_validator(e1, 1, e1, 1));
    CHECK(!policy_same_strong_validator(e1, 1, e2, 1));
    CHECK(!policy_same_strong_validator(e1, 1, lm, 3));
    CHECK(policy_same_strong_validator(lm, 3, lm, 3));
    struct http_field w[] = {{sp("ETag"), sp("W/\"a\"")}};
    CHECK(!policy_same_strong_validator(w, 1, w, 1));
}

static void test_etag(void)
{
    CHECK(policy_etag_match(sp("\"a\""), sp("\"a\"")));
    CHECK(policy_etag_match(sp("W/\"a\""), sp("\"a\"")));
    CHECK(policy_etag_match(sp("\"a\""), sp("W/\"a\"")));
    CHECK(policy_etag_match(sp("\"x\", W/\"a\""), sp("\"a\"")));
    CHECK(policy_etag_match(sp("*"), sp("\"a\"")));
    CHECK(!policy_etag_match(sp("\"b\""), sp("\"a\"")));
    CHECK(!policy_etag_match(sp("a"), sp("a")));
    CHECK(!policy_etag_match(sp("\"a\""), sp("bogus")));
    CHECK(!policy_etag_match(sp(""), sp("\"a\"")));
    struct http_field req[1] = {{sp("If-Modified-Since"), sp("Sun, 06 Nov 1994 08:49:37 GMT")}};
    struct http_field older[1] = {{sp("Last-Modified"), sp("Sun, 06 Nov 1994 08:00:00 GMT")}};
    struct http_field newer[1] = {{sp("Last-Modified"), sp("Mon, 07 Nov 1994 08:00:00 GMT")}};
    CHECK(policy_not_modified(req, 1, older, 1));
    CHECK(!policy_not_modified(req, 1, newer, 1));
    struct http_field both[2] = {{sp("If-None-Match"), sp("\"z\"")}, req[0]};
    CHECK(!policy_not_modified(both, 2, older, 1)); /* If-None-Match decides */
}

static void test_vary(void)
{
    struct http_field resp[2] = {{sp("Vary"), sp("Accept-Encoding, X-Mode")},
                                 {sp("Content-Type"), sp("a/b")}};
    struct http_field req[3] = {{sp("Accept-Encoding"), sp("gzip,  br")},
                                {sp("accept-encoding"), sp("zstd")},
                                {sp("Host"), sp("h")}};
    struct buf v = {0};
    CHECK_INT(vary_build(&v, resp, 2, req, 3), 0);
    CHECK_INT(v.len, strlen("accept-encoding") + 1 + strlen("+gzip,br,zstd") + 1 + 7 + 2);
    CHECK(vary_matches(v.p, v.len, req, 3));
    struct http_field same[2] = {{sp("ACCEPT-ENCODING"), sp("GZIP,br, zstd")},
                                 {sp("Host"), sp("")}};
    CHECK(vary_matches(v.p, v.len, same, 2));
    struct http_field other[1] = {{sp("Accept-Encoding"), sp("gzip")}};
    CHECK(!vary_matches(v.p, v.len, other, 1));
    struct http_field mode[2] = {same[0], {sp("X-Mode"), sp("a")}};
    CHECK(!vary_matches(v.p, v.len, mode, 2)); /* present where it was absent */
    /* Other fields compare as sent. */
    buf_reset(&v);
    struct http_field r2[1] = {{sp("Vary"), sp("x-mode")}};
    struct http_field m1[1] = {{sp("X-Mode"), sp("A b")}};
    struct http_field m2[1] = {{sp("X-Mode"), sp("a b")}};
    CHECK_INT(vary_build(&v, r2, 1, m1, 1), 0);
    CHECK(vary_matches(v.p, v.len, m1, 1));
    CHECK(!vary_matches(v.p, v.len, m2, 1));
    /* ... but for the white space next to their commas outside quoted
     * strings; lines combine as one list. */
    struct http_field s1[1] = {{sp("X-Mode"), sp("1, 2 ,3, \"a, b\" x")}};
    struct http_field s2[2] = {{sp("X-Mode"), sp("1,2")}, {sp("x-mode"), sp("3 ,\"a, b\" x")}};
    struct http_field s3[1] = {{sp("X-Mode"), sp("1,2,3,\"a,b\" x")}};
    struct http_field s4[1] = {{sp("X-Mode"), sp("1,2,3,\"a, b\"x")}};
    buf_reset(&v);
    CHECK_INT(vary_build(&v, r2, 1, s1, 1), 0);
    CHECK(vary_matches(v.p, v.len, s2, 2));
    CHECK(!vary_matches(v.p, v.len, s3, 1)); /* inside quotes */
    CHECK(!vary_matches(v.p, v.len, s4, 1)); /* not next to a comma */
    /* A quoted-pair is kept whole: \" and \\ differ, and an escaped
     * quote does not end the string. */
    struct http_field q1[1] = {{sp("X-Mode"), sp("\"a\\\"b, c\"")}};
    struct http_field q2[1] = {{sp("X-Mode"), sp("\"a\\\\b, c\"")}};
    struct http_field q3[1] = {{sp("X-Mode"), sp("\"a\\\"b,c\"")}};
    buf_reset(&v);
    CHECK_INT(vary_build(&v, r2, 1, q1, 1), 0);
    CHECK(vary_matches(v.p, v.len, q1, 1));
    CHECK(!vary_matches(v.p, v.len, q2, 1));
    CHECK(!vary_matches(v.p, v.len, q3, 1));
    buf_reset(&v);
    struct http_field star[1] = {{sp("Vary"), sp("Accept, *")}};
    CHECK_INT(vary_build(&v, star, 1, req, 3), -1);
    /* No Vary: the one variant matches everything. */
    CHECK(vary_matches("", 0, req, 3));
    buf_free(&v);
}

static bool any(const char *vary, size_t len, void *arg)
{
    (void)vary, (void)len, (void)arg;
    return true;
}

static void test_store(void)
{
    char err[256];
    CHECK(zone_get("tiny", 1024, err, sizeof err) == NULL);
    struct zone *z = zone_get("t", 256 * 1024, err, sizeof err);
    CHECK(z != NULL);
    if (!z)
        return;
    CHECK(zone_get("t", 256 * 1024, err, sizeof err) == z); /* a reload keeps it */
    CHECK(zone_find("t") == z);
    struct store_meta meta = {.status = 200};
    char *body = malloc(100000);
    memset(body, 'b', 100000);
    for (int i = 0; i < 100000; i++)
        body[i] = (char)('a' + i % 26);
    CHECK(!store_insert(z, "big", 3, "", 0, "", 0, body, zone_max_entry(z) + 1, &meta));
    CHECK(store_insert(z, "k1", 2, "", 0, "H: 1\r\n", 6, body, 10000, &meta));
    struct buf copy = {0};
    struct store_hit hit;
    CHECK_INT(store_lookup(z, "k1", 2, any, NULL, &copy, &hit), 0);
    CHECK_STR(hit.head, "H: 1\r\n");
    CHECK_INT(hit.body_len, 10000);
    /* The pieces put together are the body. */
    size_t at = 0;
    const char *p;
    size_t len;
    bool same = true;
    struct store_walk w = {0};
    while (store_body_next(z, &hit, &w, &p, &len)) {
        same = same && at + len <= 10000 && memcmp(p, body + at, len) == 0;
        at += len;
    }
    CHECK(same);
    CHECK_INT(at, 10000);
    /* Removed while held: gone for lookups, its bytes still readable. */
    CHECK_INT(store_remove(z, "k1", 2), 1);
    struct store_hit again;
    CHECK_INT(store_lookup(z, "k1", 2, any, NULL, &copy, &again), -1);
    w = (struct store_walk){0};
    CHECK(store_body_next(z, &hit, &w, &p, &len) && memcmp(p, body, len) == 0);
    store_release(z, hit.index);
    /* The zone stays bounded; the least recently used goes first. */
    char key[16];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "e%d", i);
        CHECK(store_insert(z, key, strlen(key), "", 0, "", 0, body, 20000, &meta));
        if (i == 5) {
            /* Touch e0 so that it outlives e1. */
            CHECK_INT(store_lookup(z, "e0", 2, any, NULL, &copy, &hit), 0);
            store_release(z, hit.index);
        }
    }
    struct zone_stats st;
    store_stats(z, &st);
    CHECK(st.bytes_used <= st.bytes);
    CHECK(st.evictions > 0);
    CHECK_INT(store_lookup(z, "e99", 3, any, NULL, &copy, &hit), 0);
    store_release(z, hit.index);
    CHECK_INT(store_lookup(z, "e1", 2, any, NULL, &copy, &hit), -1);
    /* A held entry is never evicted. */
    CHECK_INT(store_lookup(z, "e98", 3, any, NULL, &copy, &hit), 0);
    for (int i = 100; i < 200; i++) {
        snprintf(key, sizeof key, "e%d", i);
        store_insert(z, key, strlen(key), "", 0, "", 0, body, 20000, &meta);
    }
    w = (struct store_walk){0};
    CHECK(store_body_next(z, &hit, &w, &p, &len) && memcmp(p, body, len) == 0);
    store_release(z, hit.index);
    /* One fetch of a key in flight at a time, until done or its time. */
    CHECK(store_flight_claim(z, "f", 1, 1000, 2000));
    CHECK(!store_flight_claim(z, "f", 1, 1500, 2500));
    CHECK(store_flight_claim(z, "g", 1, 1500, 2500));
    CHECK(store_flight_claim(z, "f", 1, 2000, 3000)); /* the first one's time is up */
    store_flight_done(z, "f", 1);
    CHECK(store_flight_claim(z, "f", 1, 2100, 3000));
    /* Counting uses. */
    CHECK_INT(store_count_use(z, "u", 1), 1);
    CHECK_INT(store_count_use(z, "u", 1), 2);
    buf_free(&copy);
    free(body);
}

/* A process killed while it holds a zone's lock (it spends most of its
 * time copying entries in under it) leaves a zone the others can still
 * use: nobody waits forever, and what is found is whole. */
static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL test_dead_holder: the zone's lock stayed taken\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        _exit(2);
    _exit(1);
}

static void test_dead_holder(void)
{
    char err[256];
    struct zone *z = zone_get("dead", 4 * 1024 * 1024, err, sizeof err);
    CHECK(z != NULL);
    if (!z)
        return;
    size_t n = 200000;
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 23);
    struct store_meta meta = {.status = 200};
    signal(SIGALRM, on_alarm);
    struct zone_stats st;
    for (int round = 0; round < 60; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            char key[32];
            for (unsigned i = 0;; i++) {
                snprintf(key, sizeof key, "k%u", i % 40);
                store_insert(z, key, strlen(key), "", 0, "H: 1\r\n", 6, body, n, &meta);
            }
        }
        usleep(2000 + (useconds_t)(round % 7) * 700);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        alarm(10);
        CHECK(store_insert(z, "mine", 4, "", 0, "H: 2\r\n", 6, body, n, &meta));
        alarm(0);
        store_stats(z, &st);
        if (st.repairs >= 3)
            break;
    }
    store_stats(z, &st);
    CHECK(st.repairs >= 1); /* the kill did land inside the lock */
    CHECK(st.bytes_used <= st.bytes);
    /* Every entry found is whole. */
    struct buf copy = {0}, got = {0};
    struct store_hit hit;
    unsigned found = 0;
    char key[32];
    for (unsigned i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%u", i);
        if (store_lookup(z, key, strlen(key), any, NULL, &copy, &hit) != 0)
            continue;
        found++;
        CHECK_STR(hit.head, "H: 1\r\n");
        CHECK(store_body_copy(z, &hit, &got) && got.len == n && memcmp(got.p, body, n) == 0);
        store_release(z, hit.index);
    }
    CHECK(found > 0);
    CHECK_INT(store_lookup(z, "mine", 4, any, NULL, &copy, &hit), 0);
    store_release(z, hit.index);
    /* Nothing half made was left behind: with every entry removed, no
     * block is in use. */
    for (unsigned i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%u", i);
        store_remove(z, key, strlen(key));
    }
    store_remove(z, "mine", 4);
    store_stats(z, &st);
    CHECK_INT(st.entries, 0);
    CHECK_INT(st.bytes_used, 0);
    buf_free(&copy);
    buf_free(&got);
    free(body);
}

/* A disk zone: the body comes from the entry's file, which stays
 * readable while held even once the entry is removed (under another
 * name, gone with the last reference); a second zone on the directory is
 * refused while the first has it. */
static void test_disk_store(void)
{
    char dir[] = "/tmp/verbd-unit-disk-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char err[512];
    struct zone_disk disk = {dir, 4 * 1024 * 1024, false, (uid_t)-1, (gid_t)-1};
    struct zone *z = zone_get_disk("d", 1024 * 1024, &disk, ZONE_START, err, sizeof err);
    CHECK(z != NULL);
    if (!z)
        return;
    CHECK(store_on_disk(z));
    CHECK(zone_get_disk("d2", 1024 * 1024, &disk, ZONE_START, err, sizeof err) == NULL);
    CHECK(strstr(err, "in use") != NULL);
    size_t n = 50000;
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('A' + i % 19);
    struct store_meta meta = {.status = 200, .lifetime = 60};
    CHECK(store_insert(z, "k", 1, "", 0, "H: 1\r\n", 6, body, n, &meta));
    struct buf copy = {0}, got = {0};
    struct store_hit hit;
    CHECK_INT(store_lookup(z, "k", 1, any, NULL, &copy, &hit), 0);
    CHECK_INT(hit.meta.lifetime, 60);
    const char *p;
    size_t len;
    struct store_walk w = {0};
    CHECK(!store_body_next(z, &hit, &w, &p, &len));
    CHECK_INT(store_remove(z, "k", 1), 1);
    uint64_t at = 0;
    int fd = store_body_file(z, &hit, &at);
    CHECK(fd >= 0);
    CHECK_INT(at % 4096, 0); /* a body of a page or more starts on one */
    if (fd >= 0) {
        char *b = malloc(n);
        CHECK(pread(fd, b, n, (off_t)at) == (ssize_t)n && memcmp(b, body, n) == 0);
        free(b);
        close(fd);
    }
    CHECK(store_body_copy(z, &hit, &got) && got.len == n && memcmp(got.p, body, n) == 0);
    store_release(z, hit.index);
    /* A body that fits the index's block is kept there too: no file. */
    CHECK(store_insert(z, "s", 1, "", 0, "H: 1\r\n", 6, body, 1000, &meta));
    CHECK_INT(store_lookup(z, "s", 1, any, NULL, &copy, &hit), 0);
    CHECK(!hit.body_in_file);
    w = (struct store_walk){0};
    CHECK(store_body_next(z, &hit, &w, &p, &len) && len == 1000 && memcmp(p, body, 1000) == 0);
    store_release(z, hit.index);
    CHECK_INT(store_remove(z, "s", 1), 1);
    /* Released: nothing is left under the directory but the lock. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(find %s -type f | grep -v /lock$ | wc -l) -eq 0", dir);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    buf_free(&copy);
    buf_free(&got);
    free(body);
}

/* The load of a disk zone's files by the workers: every entry a previous
 * run left is found once the last directory is done; a worker that dies
 * in a directory leaves it counted as done (its other files wait for the
 * next start), so the load still ends. */
static void test_disk_load(void)
{
    char dir[] = "/tmp/verbd-unit-load-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char err[512];
    struct zone_disk disk = {dir, 16 * 1024 * 1024, false, (uid_t)-1, (gid_t)-1};
    char body[5000];
    memset(body, 'b', sizeof body);
    struct store_meta meta = {.status = 200, .lifetime = 60};
    enum { N = 60 };
    /* A previous run, in a process of its own (it holds the lock). */
    pid_t pid = fork();
    if (pid == 0) {
        struct zone *z = zone_get_disk("old", 2 * 1024 * 1024, &disk, ZONE_START, err, sizeof err);
        for (int i = 0; z && i < N; i++) {
            char key[16];
            snprintf(key, sizeof key, "k%d", i);
            if (!store_insert(z, key, strlen(key), "", 0, "H: 1\r\n", 6, body, sizeof body, &meta))
                _exit(1);
        }
        _exit(z ? 0 : 1);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct zone *z = zone_get_disk("new", 2 * 1024 * 1024, &disk, ZONE_START, err, sizeof err);
    CHECK(z != NULL);
    if (!z)
        return;
    CHECK(store_loading(z));
    /* A worker claims the first directory, reads a name and dies. */
    pid = fork();
    if (pid == 0) {
        store_load_step(z, 1);
        _exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    enum store_load last = STORE_LOAD_MORE, s;
    while ((s = store_load_step(z, 7)) != STORE_LOAD_NONE)
        last = s;
    CHECK_INT(last, STORE_LOAD_FINISHED);
    CHECK(!store_loading(z));
    /* Every entry but those of the dead worker's directory (00). */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/00", dir);
    unsigned in_00 = 0;
    DIR *d = opendir(sub);
    for (struct dirent *de; d && (de = readdir(d));)
        in_00 += de->d_name[0] != '.';
    if (d)
        closedir(d);
    struct zone_stats st;
    store_stats(z, &st);
    CHECK_INT(st.entries, N - in_00);
    struct buf copy = {0};
    struct store_hit hit;
    unsigned found = 0;
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        if (store_lookup(z, key, strlen(key), any, NULL, &copy, &hit) == 0) {
            found++;
            CHECK_INT(hit.body_len, sizeof body);
            store_release(z, hit.index);
        }
    }
    CHECK_INT(found, N - in_00);
    buf_free(&copy);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* A disk zone's growing entry: its file under tmp/ holds the body as it
 * is appended (readers read it there), is renamed into place once
 * closed, and goes with its last reader if abandoned; one of unstated
 * length that ends under a page is kept in the index block too. */
static void test_disk_growing(void)
{
    char dir[] = "/tmp/verbd-unit-dgrow-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char err[512], cmd[600];
    struct zone_disk disk = {dir, 4 * 1024 * 1024, false, (uid_t)-1, (gid_t)-1};
    struct zone *z = zone_get_disk("dg", 1024 * 1024, &disk, ZONE_START, err, sizeof err);
    CHECK(z != NULL);
    if (!z)
        return;
    struct store_meta meta = {.status = 200, .lifetime = 60};
    char body[20000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 29);
    uint32_t g;
    CHECK(store_flight_claim(z, "k", 1, 1, 1000));
    CHECK(store_open(z, "k", 1, "", 0, "H: 1\r\n", 6, sizeof body, &meta, &g));
    CHECK(store_append(z, g, body, 5000));
    struct buf copy = {0}, got = {0};
    struct store_hit hit;
    CHECK_INT(store_lookup(z, "k", 1, any, NULL, &copy, &hit), -1);
    CHECK(store_lookup_growing(z, "k", 1, any, NULL, &copy, &hit));
    CHECK(hit.body_in_file);
    CHECK_INT(hit.body_len, 5000);
    uint64_t at = 0;
    int fd = store_body_file(z, &hit, &at);
    CHECK(fd >= 0);
    CHECK_INT(at % 4096, 0);
    char b[sizeof body];
    CHECK(fd >= 0 && pread(fd, b, 5000, (off_t)at) == 5000 && memcmp(b, body, 5000) == 0);
    CHECK(store_append(z, g, body + 5000, sizeof body - 5000));
    CHECK_INT(store_growth(z, &hit), STORE_GROWING);
    CHECK_INT(hit.body_len, sizeof body);
    CHECK(store_close(z, g));
    CHECK_INT(store_growth(z, &hit), STORE_COMPLETE);
    CHECK(fd >= 0 && pread(fd, b, sizeof body, (off_t)at) == (ssize_t)sizeof body &&
          memcmp(b, body, sizeof body) == 0);
    if (fd >= 0)
        close(fd);
    store_release(z, hit.index);
    CHECK_INT(store_lookup(z, "k", 1, any, NULL, &copy, &hit), 0);
    CHECK(store_body_copy(z, &hit, &got) && got.len == sizeof body &&
          memcmp(got.p, body, sizeof body) == 0);
    store_release(z, hit.index);
    snprintf(cmd, sizeof cmd, "test -z \"$(ls %s/tmp)\"", dir);
    CHECK(system(cmd) == 0);
    /* Unstated and short: in the index block, and its file where the
     * load looks (after the head). */
    CHECK(store_open(z, "s", 1, "", 0, "H: 1\r\n", 6, STORE_UNSTATED, &meta, &g));
    CHECK(store_append(z, g, body, 100));
    CHECK(store_close(z, g));
    CHECK_INT(store_lookup(z, "s", 1, any, NULL, &copy, &hit), 0);
    CHECK(!hit.body_in_file);
    CHECK(store_body_copy(z, &hit, &got) && got.len == 100 && memcmp(got.p, body, 100) == 0);
    store_release(z, hit.index);
    /* Abandoned while read: its tmp file goes with the last reader. */
    CHECK(store_open(z, "a", 1, "", 0, "", 0, STORE_UNSTATED, &meta, &g));
    CHECK(store_append(z, g, body, 9000));
    CHECK(store_flight_claim(z, "a", 1, 1, 1000));
    store_abandon(z, g);
    CHECK_INT(store_lookup(z, "a", 1, any, NULL, &copy, &hit), -1);
    snprintf(cmd, sizeof cmd, "test -z \"$(ls %s/tmp)\"", dir);
    CHECK(system(cmd) == 0);
    CHECK(store_flight_claim(z, "b", 1, 1, 1000));
    CHECK(store_open(z, "b", 1, "", 0, "", 0, STORE_UNSTATED, &meta, &g));
    CHECK(store_append(z, g, body, 9000));
    CHECK(store_lookup_growing(z, "b", 1, any, NULL, &copy, &hit));
    store_abandon(z, g);
    CHECK_INT(store_growth(z, &hit), STORE_FAILED);
    snprintf(cmd, sizeof cmd, "test -n \"$(ls %s/tmp)\"", dir);
    CHECK(system(cmd) == 0);
    store_release(z, hit.index);
    snprintf(cmd, sizeof cmd, "test -z \"$(ls %s/tmp)\"", dir);
    CHECK(system(cmd) == 0);
    /* Past the zone's entry limit: abandoned, its file removed. */
    CHECK(store_open(z, "c", 1, "", 0, "", 0, STORE_UNSTATED, &meta, &g));
    bool fit = true;
    for (uint64_t n = 0; fit && n <= zone_max_entry(z); n += sizeof body)
        fit = store_append(z, g, body, sizeof body);
    CHECK(!fit);
    CHECK(system(cmd) == 0);
    struct zone_stats st;
    store_stats(z, &st);
    CHECK_INT(st.entries, 2);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    buf_free(&copy);
    buf_free(&got);
}

/* A growing entry (collapsed forwarding, streamed): readers follow its
 * body as it is appended; it is found by lookups once closed, never if
 * abandoned; a dead writer's is reclaimed; its blocks are counted. */
static void test_growing(void)
{
    char err[256];
    struct zone *z = zone_get("grow", 256 * 1024, err, sizeof err);
    CHECK(z != NULL);
    if (!z)
        return;
    struct zone_stats before, st;
    store_stats(z, &before);
    struct store_meta meta = {.status = 200};
    char body[10000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 23);
    uint32_t g;
    CHECK(!store_open(z, "k", 1, "", 0, "H: 1\r\n", 6, 100, &meta, &g)); /* not claimed */
    CHECK(store_flight_claim(z, "k", 1, 1, 1000));
    CHECK(store_open(z, "k", 1, "", 0, "H: 1\r\n", 6, sizeof body, &meta, &g));
    CHECK(store_append(z, g, body, 3001));
    struct buf copy = {0};
    struct store_hit hit;
    CHECK_INT(store_lookup(z, "k", 1, any, NULL, &copy, &hit), -1);
    CHECK(store_lookup_growing(z, "k", 1, any, NULL, &copy, &hit));
    CHECK_STR(hit.head, "H: 1\r\n");
    CHECK_INT(hit.body_len, 3001);
    CHECK_INT(hit.stated, sizeof body);
    /* In flight while it grows, whatever the time says. */
    CHECK(!store_flight_claim(z, "k", 1, 5000, 6000));
    struct store_walk w = {0};
    const char *p;
    size_t len, at = 0;
    bool same = true;
    while (store_body_next(z, &hit, &w, &p, &len)) {
        same = same && memcmp(p, body + at, len) == 0;
        at += len;
    }
    CHECK_INT(at, 3001);
    CHECK(store_append(z, g, body + 3001, 5000));
    CHECK_INT(store_growth(z, &hit), STORE_GROWING);
    CHECK(store_append(z, g, body + 8001, sizeof body - 8001));
    CHECK(store_close(z, g));
    CHECK_INT(store_growth(z, &hit), STORE_COMPLETE);
    while (store_body_next(z, &hit, &w, &p, &len)) {
        same = same && memcmp(p, body + at, len) == 0;
        at += len;
    }
    CHECK(same);
    CHECK_INT(at, sizeof body);
    store_flight_done(z, "k", 1);
    struct store_hit found;
    CHECK_INT(store_lookup(z, "k", 1, any, NULL, &copy, &found), 0);
    CHECK_INT(found.body_len, sizeof body);
    store_release(z, found.index);
    store_release(z, hit.index);
    store_stats(z, &st);
    CHECK_INT(st.entries, before.entries + 1);
    CHECK_INT(st.stores, before.stores + 1);
    CHECK_INT(store_remove(z, "k", 1), 1);

    /* Abandoned while read: its reader sees it failed, its blocks go
     * with the reader's reference; never found. */
    CHECK(store_flight_claim(z, "a", 1, 1, 1000));
    CHECK(store_open(z, "a", 1, "", 0, "", 0, STORE_UNSTATED, &meta, &g));
    CHECK(store_append(z, g, body, 9000));
    CHECK(store_lookup_growing(z, "a", 1, any, NULL, &copy, &hit));
    store_abandon(z, g);
    CHECK_INT(store_growth(z, &hit), STORE_FAILED);
    CHECK(!store_lookup_growing(z, "a", 1, any, NULL, &copy, &found));
    store_release(z, hit.index);
    store_flight_done(z, "a", 1);
    CHECK_INT(store_lookup(z, "a", 1, any, NULL, &copy, &found), -1);
    store_stats(z, &st);
    CHECK_INT(st.bytes_used, before.bytes_used);

    /* Not the length stated, or past it: not stored. */
    CHECK(store_flight_claim(z, "s", 1, 1, 1000));
    CHECK(store_open(z, "s", 1, "", 0, "", 0, 100, &meta, &g));
    CHECK(!store_open(z, "s", 1, "", 0, "", 0, 100, &meta, &found.index)); /* one per flight */
    CHECK(store_append(z, g, body, 50));
    CHECK(!store_close(z, g));
    CHECK(store_open(z, "s", 1, "", 0, "", 0, 100, &meta, &g));
    CHECK(!store_append(z, g, body, 101)); /* abandoned */
    store_flight_done(z, "s", 1);
    CHECK_INT(store_lookup(z, "s", 1, any, NULL, &copy, &found), -1);
    /* Larger than an entry may be: not opened. */
    CHECK(store_flight_claim(z, "b", 1, 1, 1000));
    CHECK(!store_open(z, "b", 1, "", 0, "", 0, zone_max_entry(z), &meta, &g));
    store_flight_done(z, "b", 1);
    store_stats(z, &st);
    CHECK_INT(st.bytes_used, before.bytes_used);

    /* A writer that dies: its entry goes when its key is asked for. */
    pid_t pid = fork();
    if (pid == 0) {
        uint32_t mine;
        bool ok = store_flight_claim(z, "d", 1, 1, 1000) &&
                  store_open(z, "d", 1, "", 0, "", 0, STORE_UNSTATED, &meta, &mine) &&
                  store_append(z, mine, body, 5000);
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK_INT(status, 0);
    store_stats(z, &st);
    CHECK(st.bytes_used > before.bytes_used);
    CHECK(store_flight_claim(z, "d", 1, 2000, 3000));
    store_flight_done(z, "d", 1);
    store_stats(z, &st);
    CHECK_INT(st.bytes_used, before.bytes_used);
    buf_free(&copy);
}

/* Writers of growing entries killed at any point (inside the lock too):
 * each entry is either whole once closed or gone, and a dead writer's
 * entry is reclaimed (by the repair, or when its key is claimed again). */
static void test_dead_writer(void)
{
    char err[256];
    struct zone *z = zone_get("deadw", 4 * 1024 * 1024, err, sizeof err);
    CHECK(z != NULL);
    if (!z)
        return;
    size_t n = 200000;
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + i % 23);
    struct store_meta meta = {.status = 200};
    signal(SIGALRM, on_alarm);
    struct zone_stats st, before;
    store_stats(z, &before);
    char key[32];
    for (int round = 0; round < 60; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (unsigned i = 0;; i++) {
                snprintf(key, sizeof key, "g%u", i % 10);
                uint32_t g;
                if (!store_flight_claim(z, key, strlen(key), 1, 1000))
                    continue;
                if (store_open(z, key, strlen(key), "", 0, "H: 1\r\n", 6, n, &meta, &g)) {
                    for (size_t at = 0; at < n; at += n / 10)
                        store_append(z, g, body + at, n / 10);
                    if (i % 3)
                        store_close(z, g);
                    else
                        store_abandon(z, g);
                }
                store_flight_done(z, key, strlen(key));
            }
        }
        usleep(2000 + (useconds_t)(round % 7) * 700);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        alarm(10);
        store_stats(z, &st);
        alarm(0);
        if (st.repairs >= before.repairs + 3)
            break;
    }
    store_stats(z, &st);
    CHECK(st.repairs > before.repairs); /* the kill did land inside the lock */
    /* Every entry found is whole. */
    struct buf copy = {0}, got = {0};
    struct store_hit hit;
    for (unsigned i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "g%u", i);
        if (store_lookup(z, key, strlen(key), any, NULL, &copy, &hit) != 0)
            continue;
        CHECK(store_body_copy(z, &hit, &got) && got.len == n && memcmp(got.p, body, n) == 0);
        store_release(z, hit.index);
    }
    /* Each key can be fetched again; with every entry removed, no block is
     * in use: no dead writer's entry was left. */
    for (unsigned i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "g%u", i);
        CHECK(store_flight_claim(z, key, strlen(key), 2000, 3000));
        store_flight_done(z, key, strlen(key));
        store_remove(z, key, strlen(key));
    }
    store_stats(z, &st);
    CHECK_INT(st.entries, 0);
    CHECK_INT(st.bytes_used, 0);
    buf_free(&copy);
    buf_free(&got);
    free(body);
}

/* Writers of a disk zone's growing entries (some followed through a
 * flight, some not) killed at random: every entry found is whole, and
 * once the zone needs all its room every dead writer's entry is
 * abandoned (its room given back, its file under tmp/ removed). */
static void test_disk_dead_writer(void)
{
    char dir[] = "/tmp/verbd-unit-ddead-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char err[512], cmd[600];
    struct zone_disk disk = {dir, 4 * 1024 * 1024, false, (uid_t)-1, (gid_t)-1};
    struct zone *z = zone_get_disk("ddw", 1024 * 1024, &disk, ZONE_START, err, sizeof err);
    CHECK(z != NULL);
    if (!z)
        return;
    size_t n = 100000;
    char *body = malloc(2 * 1024 * 1024);
    for (size_t i = 0; i < 2 * 1024 * 1024; i++)
        body[i] = (char)('a' + i % 23);
    struct store_meta meta = {.status = 200};
    signal(SIGALRM, on_alarm);
    char key[32];
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (unsigned i = 0;; i++) {
                snprintf(key, sizeof key, "d%u", i % 6);
                bool claimed = i % 2 && store_flight_claim(z, key, strlen(key), 1, 1000);
                uint32_t g;
                if (store_open(z, key, strlen(key), "", 0, "H: 1\r\n", 6,
                               i % 4 < 2 ? n : STORE_UNSTATED, &meta, &g)) {
                    for (size_t at = 0; at < n; at += n / 10)
                        store_append(z, g, body + at, n / 10);
                    if (i % 3)
                        store_close(z, g);
                    else
                        store_abandon(z, g);
                }
                if (claimed)
                    store_flight_done(z, key, strlen(key));
            }
        }
        usleep(1000 + (useconds_t)(round % 7) * 900);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    struct buf copy = {0}, got = {0};
    struct store_hit hit;
    for (unsigned i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "d%u", i);
        alarm(10);
        int rc = store_lookup(z, key, strlen(key), any, NULL, &copy, &hit);
        alarm(0);
        if (rc != 0)
            continue;
        CHECK(store_body_copy(z, &hit, &got) && got.len == n && memcmp(got.p, body, n) == 0);
        store_release(z, hit.index);
    }
    /* With nothing else to evict, two entries that take all of disk=
     * between them (a file of a page, the header and key, then the
     * body).  A writer killed before its entry had a record leaves a
     * file under tmp/ that only the next start removes. */
    for (unsigned i = 0; i < 6; i++) {
        snprintf(key, sizeof key, "d%u", i);
        store_remove(z, key, strlen(key));
    }
    uint64_t big = 2 * 1024 * 1024 - 8192;
    CHECK(store_insert(z, "b1", 2, "", 0, "", 0, body, big, &meta));
    CHECK_INT(store_lookup(z, "b1", 2, any, NULL, &copy, &hit), 0); /* not evicted */
    CHECK(store_insert(z, "b2", 2, "", 0, "", 0, body, big, &meta));
    store_release(z, hit.index);
    struct zone_stats st;
    store_stats(z, &st);
    CHECK_INT(st.entries, 2);
    CHECK_INT(st.disk_used, 2 * (4096 + big));
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    buf_free(&copy);
    buf_free(&got);
    free(body);
}

int main(void)
{
    test_cc();
    test_lifetime();
    test_age();
    test_judge();
    test_storable();
    test_targeted();
    test_head();
    test_partial();
    test_etag();
    test_vary();
    test_store();
    test_dead_holder();
    test_disk_store();
    test_disk_load();
    test_growing();
    test_disk_growing();
    test_dead_writer();
    test_disk_dead_writer();
    return unit_report();
}
