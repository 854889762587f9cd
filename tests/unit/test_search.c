/* The location search (route_search, DESIGN.md step 3 as nginx does it):
 * exact, then the longest prefix, `^~` stopping there, then regex
 * locations in the order added, then the longest prefix; the subpath and
 * captures of a regex location; the match limit; and the errors of
 * route_add for locations by regex.  Tables are made of `return`
 * locations: the search does not look at the module. */
#include <stdlib.h>
#include <string.h>

#include "route/route.h"
#include "unit.h"

static char err[256];

static struct route_mapping *add(struct route_table *t, const char *location)
{
    struct route_mapping *m = route_add_return(t, location, err, sizeof err);
    if (!m) {
        printf("route_add_return %s: %s\n", location, err);
        exit(2);
    }
    return m;
}

/* The location chosen for path ("(none)" if none), with its subpath. */
static const char *search(const struct route_table *t, const char *path, const char **subpath,
                          struct captures *cap)
{
    const char *sub = NULL;
    const struct route_mapping *m = route_search(t, path, &sub, cap);
    if (subpath)
        *subpath = sub;
    return m ? m->location : "(none)";
}

/* Capture i of the last match, as text. */
static const char *captured(const struct captures *cap, int i)
{
    static char out[64];
    if (i >= cap->n || cap->at[i][0] < 0)
        return "(unset)";
    snprintf(out, sizeof out, "%.*s", (int)(cap->at[i][1] - cap->at[i][0]),
             cap->subject + cap->at[i][0]);
    return out;
}

static void test_precedence(void)
{
    struct route_table t = {0};
    /* Added in this order: the regexes are tried in it. */
    add(&t, "/");
    add(&t, "= /exact.php");
    add(&t, "~ \\.php$");
    add(&t, "^~ /static/");
    add(&t, "/static/deep/");
    add(&t, "/images/");
    add(&t, "~* \\.(gif|jpg)$");
    add(&t, "~ ^/first");
    add(&t, "~ ^/images/(\\w+)/(\\d+)\\.png$");
    route_finish(&t);
    CHECK_INT(t.nprefix, 5);
    static const struct {
        const char *path, *want;
    } rows[] = {
        {"/exact.php", "= /exact.php"},          /* exact wins over a regex */
        {"/x.php", "~ \\.php$"},                 /* a regex wins over "/" */
        {"/x.PHP", "/"},                         /* ~ is case-sensitive */
        {"/static/x.php", "^~ /static/"},        /* ^~ stops the regex search */
        {"/static/", "^~ /static/"},             /* */
        {"/static/deep/x.php", "~ \\.php$"},     /* ^~ only as the longest prefix */
        {"/static/deep/x.txt", "/static/deep/"}, /* no regex: the longest prefix */
        {"/images/a.jpg", "~* \\.(gif|jpg)$"},   /* a regex wins over a longer prefix */
        {"/images/a.JPG", "~* \\.(gif|jpg)$"},   /* ~* is not */
        {"/images/a.txt", "/images/"},           /* */
        {"/first.php", "~ \\.php$"},             /* the first regex added that matches */
        {"/first", "~ ^/first"},                 /* */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *got = search(&t, rows[i].path, NULL, NULL);
        if (strcmp(got, rows[i].want) == 0) {
            unit_passed++;
        } else {
            unit_failed++;
            printf("FAIL %s:%d: %s: location %s, want %s\n", __FILE__, __LINE__, rows[i].path, got,
                   rows[i].want);
        }
    }

    /* A regex location's module gets the whole path; a prefix's what lies
     * below it. */
    const char *sub;
    struct captures cap;
    CHECK_STR(search(&t, "/a/b.php", &sub, &cap), "~ \\.php$");
    CHECK_STR(sub, "/a/b.php");
    CHECK_INT(cap.n, 1);
    CHECK_STR(captured(&cap, 0), ".php");
    CHECK_STR(search(&t, "/static/a/b", &sub, &cap), "^~ /static/");
    CHECK_STR(sub, "/a/b");
    CHECK_INT(cap.n, 0);
    CHECK_STR(search(&t, "/images/bob/42.png", &sub, &cap), "~ ^/images/(\\w+)/(\\d+)\\.png$");
    CHECK_STR(sub, "/images/bob/42.png");
    CHECK_INT(cap.n, 3);
    CHECK_STR(captured(&cap, 1), "bob");
    CHECK_STR(captured(&cap, 2), "42");
    /* A prefix chosen after the regexes were tried has no captures. */
    CHECK_STR(search(&t, "/images/bob/42.gifx", &sub, &cap), "/images/");
    CHECK_INT(cap.n, 0);
    route_free(&t);
}

/* Without a prefix that matches, only a regex can serve; with no regex
 * location the table's prefixes are all of it. */
static void test_regex_only_and_none(void)
{
    struct route_table t = {0};
    add(&t, "~ ^/api/");
    add(&t, "= /x");
    route_finish(&t);
    CHECK_STR(search(&t, "/api/v1", NULL, NULL), "~ ^/api/");
    CHECK_STR(search(&t, "/x", NULL, NULL), "= /x");
    CHECK_STR(search(&t, "/other", NULL, NULL), "(none)");
    route_free(&t);

    struct route_table u = {0};
    add(&u, "/a/");
    add(&u, "/");
    route_finish(&u);
    CHECK_INT(u.nprefix, u.n);
    CHECK_STR(search(&u, "/a/x.php", NULL, NULL), "/a/");
    route_free(&u);
}

/* An expression that backtracks past the match limit does not match (the
 * search goes on to the next), and says so once. */
static void test_match_limit(void)
{
    struct route_table t = {0};
    add(&t, "/");
    struct route_mapping *slow = add(&t, "~ ^/(a|aa)+$");
    add(&t, "~ b$");
    route_finish(&t);
    char path[128] = "/";
    memset(path + 1, 'a', 60);
    strcpy(path + 61, "b");
    CHECK_STR(search(&t, path, NULL, NULL), "~ b$");
    CHECK(slow->regex->logged);
    path[61] = 'c';
    CHECK_STR(search(&t, path, NULL, NULL), "/");
    CHECK_STR(search(&t, "/aaaa", NULL, NULL), "~ ^/(a|aa)+$");
    route_free(&t);
}

static void test_add_errors(void)
{
    struct route_table t = {0};
    add(&t, "~ x");
    add(&t, "~* x"); /* another case rule: another location */
    add(&t, "^~ /s/");
    CHECK(!route_add_return(&t, "~ x", err, sizeof err));
    CHECK(strstr(err, "duplicate location") != NULL);
    CHECK(!route_add_return(&t, "~  x", err, sizeof err)); /* the same expression */
    CHECK(!route_add_return(&t, "/s/", err, sizeof err));  /* ^~ is a prefix */
    CHECK(strstr(err, "duplicate location") != NULL);
    CHECK(!route_add_return(&t, "~ (a", err, sizeof err));
    CHECK_STR(err, "location \"~ (a\": missing closing parenthesis at offset 2");
    CHECK(!route_add_return(&t, "~ ", err, sizeof err));
    CHECK(strstr(err, "needs a regular expression") != NULL);
    CHECK(!route_add_return(&t, "^~ s/", err, sizeof err));
    CHECK(strstr(err, "must start with '/'") != NULL);
    CHECK_INT(t.n, 3);

    /* $N in a regex location's return and try_files: up to its groups. */
    struct route_mapping *m = add(&t, "~ ^/(a)/(b)$");
    const char *ok[] = {"200", "$1 $2 $0"}, *over[] = {"200", "$3"};
    CHECK_INT(route_set(m, "return", 2, ok, err, sizeof err), 0);
    CHECK_INT(route_set(m, "return", 2, over, err, sizeof err), -1);
    CHECK_STR(err, "$3 but the location's expression has 2 captures");
    struct route_mapping *p = add(&t, "/p/");
    const char *one[] = {"200", "$1"};
    CHECK_INT(route_set(p, "return", 2, one, err, sizeof err), -1);
    CHECK(strstr(err, "captures exist only after") != NULL);
    route_free(&t);
}

int main(void)
{
    test_precedence();
    test_regex_only_and_none();
    test_match_limit();
    test_add_errors();
    return unit_report();
}
