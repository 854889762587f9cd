/* path_normalise: decoding, dot segments, slashes and the -400/-404 rules. */
#include <stdlib.h>
#include <string.h>

#include "http/path.h"
#include "unit.h"

/* The normalised path, or "-400"/"-404". */
static const char *norm(const char *in)
{
    static char out[512];
    size_t n = strlen(in);
    char *buf = malloc(n + 1); /* exactly the room the contract promises */
    long r = path_normalise(in, n, buf);
    if (r < 0)
        snprintf(out, sizeof out, "%ld", r);
    else if ((size_t)r != strlen(buf))
        snprintf(out, sizeof out, "bad length %ld", r);
    else
        snprintf(out, sizeof out, "%s", buf);
    free(buf);
    return out;
}

int main(void)
{
    /* plain paths */
    CHECK_STR(norm("/"), "/");
    CHECK_STR(norm("/a"), "/a");
    CHECK_STR(norm("/a/b.txt"), "/a/b.txt");
    CHECK_STR(norm("/a/b/"), "/a/b/");

    /* slash runs collapse */
    CHECK_STR(norm("//"), "/");
    CHECK_STR(norm("//a///b"), "/a/b");
    CHECK_STR(norm("/a//"), "/a/");

    /* dot segments */
    CHECK_STR(norm("/."), "/");
    CHECK_STR(norm("/./a"), "/a");
    CHECK_STR(norm("/a/."), "/a/");
    CHECK_STR(norm("/a/./b"), "/a/b");
    CHECK_STR(norm("/a/.."), "/");
    CHECK_STR(norm("/a/../"), "/");
    CHECK_STR(norm("/a/b/../c"), "/a/c");
    CHECK_STR(norm("/a/b/.."), "/a/");
    CHECK_STR(norm("/a/b/../../c/"), "/c/");
    CHECK_STR(norm("/a//..//b"), "/b");
    CHECK_STR(norm("/..."), "/...");
    CHECK_STR(norm("/.a/..b/a.."), "/.a/..b/a..");

    /* climbing above the root */
    CHECK_STR(norm("/.."), "-400");
    CHECK_STR(norm("/../a"), "-400");
    CHECK_STR(norm("/a/../.."), "-400");
    CHECK_STR(norm("/a/../../b"), "-400");
    CHECK_STR(norm("/%2e%2e/etc/passwd"), "-400");
    CHECK_STR(norm("/%2E."), "-400");

    /* decoded dots are dots */
    CHECK_STR(norm("/a/%2e"), "/a/");
    CHECK_STR(norm("/a/b/%2e%2E"), "/a/");
    CHECK_STR(norm("/a%2eb"), "/a.b");

    /* percent-decoding */
    CHECK_STR(norm("/%41%62c"), "/Abc");
    CHECK_STR(norm("/a%20b"), "/a b");
    CHECK_STR(norm("/%25"), "/%");
    CHECK_STR(norm("/%2541"), "/%41"); /* decoded once only */
    CHECK_STR(norm("/%C3%A9"), "/\xc3\xa9");
    CHECK_STR(norm("/%ff%80"), "/\xff\x80"); /* bytes >= 0x80 kept as they are */
    CHECK_STR(norm("/\xc3\xa9"), "/\xc3\xa9");

    /* bad escapes */
    CHECK_STR(norm("/%"), "-400");
    CHECK_STR(norm("/%4"), "-400");
    CHECK_STR(norm("/%4g"), "-400");
    CHECK_STR(norm("/%g4"), "-400");
    CHECK_STR(norm("/a%"), "-400");
    CHECK_STR(norm("/%%41"), "-400");

    /* control characters and NUL */
    CHECK_STR(norm("/%00"), "-400");
    CHECK_STR(norm("/a%0d%0a"), "-400");
    CHECK_STR(norm("/%1f"), "-400");
    CHECK_STR(norm("/%7f"), "-400");
    CHECK_STR(norm("/a\tb"), "-400");
    {
        char out[8];
        CHECK_INT(path_normalise("/a\0b", 4, out), -400);
    }

    /* encoded slash */
    CHECK_STR(norm("/a%2Fb"), "-404");
    CHECK_STR(norm("/a%2fb"), "-404");
    CHECK_STR(norm("/%2f"), "-404");

    /* must start with '/' */
    CHECK_STR(norm(""), "-400");
    CHECK_STR(norm("a/b"), "-400");
    CHECK_STR(norm("*"), "-400");
    CHECK_STR(norm("%2Fa"), "-400");

    /* the output never needs more than n + 1 bytes, even at the edges */
    {
        char out[3];
        memset(out, 'x', sizeof out);
        CHECK_INT(path_normalise("/.", 2, out), 1);
        CHECK_STR(out, "/");
        CHECK_INT(path_normalise("//", 2, out), 1);
        CHECK_INT(path_normalise("/a", 2, out), 2);
        CHECK_STR(out, "/a");
    }

    /* the length in is respected: bytes past n are not read */
    {
        char out[16];
        CHECK_INT(path_normalise("/ab/../cd", 3, out), 3);
        CHECK_STR(out, "/ab");
    }

    return unit_report();
}
