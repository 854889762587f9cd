/* Structured Field Dictionaries (lib/http/sf.c, RFC 8941): what is valid,
 * and the members with their types and values. */
#include <string.h>

#include "http/sf.h"
#include "unit.h"

static struct span sp(const char *s)
{
    return (struct span){s, strlen(s)};
}

static bool valid(const char *s)
{
    return sf_dict_valid(sp(s));
}

static bool span_is(struct span s, const char *want)
{
    return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

static void test_valid(void)
{
    CHECK(valid(""));
    CHECK(valid("   "));
    CHECK(valid("a=1"));
    CHECK(valid("a=1, b=2"));
    CHECK(valid("a=1,b=2"));
    CHECK(valid("a=1 ,\tb=2"));
    CHECK(valid(" a=1  "));
    CHECK(valid("no-store"));
    CHECK(valid("a, b=?0, c=?1"));
    CHECK(valid("a=-42, b=3.141, c=-0.5, d=999999999999999"));
    CHECK(valid("a=\"x, \\\"y\\\" \\\\ z\""));
    CHECK(valid("a=tok, b=*x:/y!#"));
    CHECK(valid("a=:cHJldGVuZA==:, b=::"));
    CHECK(valid("a=(1 2 \"x\");p, b=(), c=( a  b )"));
    CHECK(valid("a;p=1;q, b=1;r=\"s\";t=?0"));
    CHECK(valid("*a.b_c-d*=1"));

    CHECK(!valid(","));
    CHECK(!valid("a=1,"));
    CHECK(!valid("a=1,,b=2"));
    CHECK(!valid(",a=1"));
    CHECK(!valid("a=1 b=2"));
    CHECK(!valid("A=1"));
    CHECK(!valid("1a=1"));
    CHECK(!valid("-a=1"));
    CHECK(!valid("\ta=1"));
    CHECK(!valid("a="));
    CHECK(!valid("a=\"x"));
    CHECK(!valid("a=\"x\\y\""));
    CHECK(!valid("a=\"\x01\""));
    CHECK(!valid("a=\"\xc3\xa9\""));
    CHECK(!valid("a=1000000000000000"));
    CHECK(!valid("a=1.1234"));
    CHECK(!valid("a=1."));
    CHECK(!valid("a=1234567890123.1"));
    CHECK(!valid("a=-"));
    CHECK(!valid("a=--1"));
    CHECK(!valid("a=?2"));
    CHECK(!valid("a=?"));
    CHECK(!valid("a=:abc"));
    CHECK(!valid("a=:ab$:"));
    CHECK(!valid("a=(1 2"));
    CHECK(!valid("a=(1,2)"));
    CHECK(!valid("a=((1))"));
    CHECK(!valid("a=@1"));
    CHECK(!valid("a=%\"x\""));
    CHECK(!valid("a;=1"));
    CHECK(!valid("a;P=1"));
    CHECK(!valid("a;p=(1)"));
    CHECK(!valid("a=1;"));
    CHECK(!valid("a=\"x\"y"));
}

static void test_limit(void)
{
    char many[SF_DICT_MEMBERS_MAX * 2 + 8];
    size_t n = 0;
    for (int i = 0; i < SF_DICT_MEMBERS_MAX; i++) {
        many[n++] = 'a';
        many[n++] = ',';
    }
    many[n - 1] = '\0';
    CHECK(valid(many));
    many[n - 1] = ',';
    many[n++] = 'a';
    many[n] = '\0';
    CHECK(!valid(many));
}

static void test_members(void)
{
    struct span rest = sp("max-age=60;x=1, no-store, f=?0, s=\"a\\\"b\", t=tok/x, d=-1.25, "
                          "b=:AQ==:, l=(1 2);p, max-age=5");
    CHECK(sf_dict_valid(rest));
    struct sf_member m;
    CHECK(sf_dict_next(&rest, &m));
    CHECK(span_is(m.key, "max-age"));
    CHECK_INT(m.type, SF_INTEGER);
    CHECK_INT(m.number, 60);
    CHECK(sf_dict_next(&rest, &m));
    CHECK(span_is(m.key, "no-store"));
    CHECK_INT(m.type, SF_BOOLEAN);
    CHECK_INT(m.number, 1);
    CHECK(sf_dict_next(&rest, &m));
    CHECK_INT(m.type, SF_BOOLEAN);
    CHECK_INT(m.number, 0);
    CHECK(sf_dict_next(&rest, &m));
    CHECK_INT(m.type, SF_STRING);
    CHECK(span_is(m.text, "a\\\"b"));
    CHECK(sf_dict_next(&rest, &m));
    CHECK_INT(m.type, SF_TOKEN);
    CHECK(span_is(m.text, "tok/x"));
    CHECK(sf_dict_next(&rest, &m));
    CHECK_INT(m.type, SF_DECIMAL);
    CHECK_INT(m.number, -1250);
    CHECK(sf_dict_next(&rest, &m));
    CHECK_INT(m.type, SF_BYTES);
    CHECK(span_is(m.text, "AQ=="));
    CHECK(sf_dict_next(&rest, &m));
    CHECK(span_is(m.key, "l"));
    CHECK_INT(m.type, SF_INNER_LIST);
    CHECK(sf_dict_next(&rest, &m));
    CHECK(span_is(m.key, "max-age"));
    CHECK_INT(m.number, 5);
    CHECK(!sf_dict_next(&rest, &m));
    CHECK(!sf_dict_next(&rest, &m));
}

int main(void)
{
    test_valid();
    test_limit();
    test_members();
    return unit_report();
}
