/* Unit tests for the webdav module's pure parts: where locks apply,
 * which locks conflict and which a store load returns, reserved names, XML parsing that refuses
 * DTDs and bad namespaces, standalone dumps of dead properties, escaping and hrefs. */
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#include "mod/webdav/internal.h"
#include "unit.h"

static void test_within_and_covers(void)
{
    CHECK(dav_rel_within("a/b", "a", false));
    CHECK(!dav_rel_within("ab", "a", false));
    CHECK(!dav_rel_within("a", "a", false));
    CHECK(dav_rel_within("a", "a", true));
    CHECK(dav_rel_within("x", "", false));
    CHECK(!dav_rel_within("", "", false));
    CHECK(dav_rel_within("", "", true));

    struct dav_lock l = {.root = "c", .depth = 0};
    CHECK(dav_lock_covers(&l, "c"));
    CHECK(!dav_lock_covers(&l, "c/f"));
    l.depth = DAV_DEPTH_INFINITY;
    CHECK(dav_lock_covers(&l, "c/f"));
    CHECK(dav_lock_covers(&l, "c/d/f"));
    CHECK(!dav_lock_covers(&l, "cc/f"));
    CHECK(!dav_lock_covers(&l, ""));
    struct dav_lock root = {.root = "", .depth = DAV_DEPTH_INFINITY};
    CHECK(dav_lock_covers(&root, "anything/below"));
}

static void test_conflicts(void)
{
    struct dav_lock held = {.root = "a", .depth = DAV_DEPTH_INFINITY, .exclusive = true};
    struct dav_lock want = {.root = "a/b/f", .depth = 0, .exclusive = false};
    CHECK(dav_lock_conflicts(&held, &want)); /* an ancestor, depth infinity */
    held.depth = 0;
    CHECK(!dav_lock_conflicts(&held, &want)); /* an ancestor, depth 0 */
    want.root = "a";
    CHECK(dav_lock_conflicts(&held, &want)); /* the same root */
    held.exclusive = false;
    CHECK(!dav_lock_conflicts(&held, &want)); /* shared with shared */
    want.exclusive = true;
    CHECK(dav_lock_conflicts(&held, &want)); /* exclusive with shared */
    /* A new depth-infinity lock meets the locks below its root. */
    struct dav_lock below = {.root = "a/b/f", .depth = 0, .exclusive = false};
    want.depth = DAV_DEPTH_INFINITY;
    CHECK(dav_lock_conflicts(&below, &want));
    want.depth = 0;
    CHECK(!dav_lock_conflicts(&below, &want));
    want = (struct dav_lock){.root = "ab", .depth = DAV_DEPTH_INFINITY, .exclusive = true};
    CHECK(!dav_lock_conflicts(&below, &want)); /* "ab" is not above "a/b/f" */
}

static void test_scope(void)
{
    const char *paths[] = {"a/b", "x"};
    struct dav_scope q = {.paths = paths, .npaths = 2};
    CHECK(dav_scope_wants_lock(&q, "a/b"));   /* at */
    CHECK(dav_scope_wants_lock(&q, "a"));     /* above */
    CHECK(dav_scope_wants_lock(&q, ""));      /* the root, above all */
    CHECK(dav_scope_wants_lock(&q, "a/b/c")); /* below */
    CHECK(dav_scope_wants_lock(&q, "x"));
    CHECK(!dav_scope_wants_lock(&q, "a/c")); /* a sibling */
    CHECK(!dav_scope_wants_lock(&q, "a/bc"));
    CHECK(!dav_scope_wants_lock(&q, "y"));
    q.npaths = 0;
    CHECK(!dav_scope_wants_lock(&q, ""));
}

static void test_reserved(void)
{
    CHECK(dav_reserved(".verbd-put-1-2-3"));
    CHECK(dav_reserved("a/.verbd-trash-x/b"));
    CHECK(!dav_reserved("a/b.verbd-x"));
    CHECK(!dav_reserved(".verbdx"));
    CHECK(!dav_reserved(""));
}

static xmlDoc *parse(const char *s)
{
    return dav_xml_parse(s, strlen(s));
}

static void test_parse(void)
{
    xmlDoc *d = parse("<D:propfind xmlns:D=\"DAV:\"><D:allprop/></D:propfind>");
    CHECK(d != NULL);
    xmlNode *root = xmlDocGetRootElement(d);
    CHECK(dav_xml_is(root, "propfind"));
    CHECK(dav_xml_is(dav_xml_first(root), "allprop"));
    CHECK(!dav_xml_is(dav_xml_first(root), "prop"));
    dav_xml_free(d);

    /* A default namespace is the same namespace. */
    d = parse("<propfind xmlns=\"DAV:\">\n  <prop/>\n</propfind>");
    CHECK(d && dav_xml_is(dav_xml_first(xmlDocGetRootElement(d)), "prop"));
    dav_xml_free(d);

    /* The same local name in another namespace is not DAV:. */
    d = parse("<propfind xmlns=\"urn:x\"/>");
    CHECK(d && !dav_xml_is(xmlDocGetRootElement(d), "propfind"));
    dav_xml_free(d);

    CHECK(parse("<a>") == NULL);
    CHECK(parse("") == NULL);
    CHECK(parse("text") == NULL);
    CHECK(parse("<a xmlns:p=\"\"><p:b/></a>") == NULL); /* empty prefixed namespace */
    CHECK(parse("<p:a/>") == NULL);                     /* undeclared prefix */
    CHECK(parse("<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a>&e;</a>") == NULL);
    CHECK(parse("<!DOCTYPE a SYSTEM \"http://127.0.0.1:1/x.dtd\"><a/>") == NULL);
    CHECK(parse("<a>&undefined;</a>") == NULL);
    char *big = malloc(DAV_XML_MAX + 16);
    memset(big, ' ', DAV_XML_MAX + 16);
    memcpy(big, "<a/>", 4);
    CHECK(dav_xml_parse(big, DAV_XML_MAX + 16) == NULL);
    free(big);
}

static void test_dump(void)
{
    xmlDoc *d = parse("<D:propertyupdate xmlns:D=\"DAV:\" xmlns:Z=\"urn:z\"><D:set><D:prop>"
                      "<Z:p>a &amp; <Z:b/></Z:p></D:prop></D:set></D:propertyupdate>");
    CHECK(d != NULL);
    xmlNode *p = dav_xml_first(dav_xml_first(dav_xml_first(xmlDocGetRootElement(d))));
    char *s = dav_xml_dump(p, false);
    /* Standalone: its namespace declared on itself, text still escaped. */
    CHECK_STR(s, "<Z:p xmlns:Z=\"urn:z\">a &amp; <Z:b/></Z:p>");
    xmlDoc *again = parse(s);
    CHECK(again != NULL);
    dav_xml_free(again);
    free(s);
    s = dav_xml_dump(p, true);
    CHECK_STR(s, "a &amp; <Z:b xmlns:Z=\"urn:z\"/>");
    free(s);
    dav_xml_free(d);
}

static void test_escape_and_href(void)
{
    struct buf b = {0};
    dav_xml_escape(&b, "a<b>&\"'\x01z", 9);
    buf_append(&b, "", 1);
    CHECK_STR(b.p, "a&lt;b&gt;&amp;&quot;&apos;z");
    b.len = 0;
    dav_xml_href(&b, "/dav", "dir/a b&c\xc3\xa9", true);
    buf_append(&b, "", 1);
    CHECK_STR(b.p, "<D:href>/dav/dir/a%20b%26c%C3%A9/</D:href>");
    b.len = 0;
    dav_xml_href(&b, "/dav", "", true);
    buf_append(&b, "", 1);
    CHECK_STR(b.p, "<D:href>/dav/</D:href>");
    buf_free(&b);
}

static void test_parent_join(void)
{
    char *p = dav_parent("a/b/c");
    CHECK_STR(p, "a/b");
    free(p);
    p = dav_parent("top");
    CHECK_STR(p, "");
    free(p);
    p = dav_join("", "x");
    CHECK_STR(p, "x");
    free(p);
    p = dav_join("a", "x");
    CHECK_STR(p, "a/x");
    free(p);
}

int main(void)
{
    test_within_and_covers();
    test_conflicts();
    test_scope();
    test_reserved();
    test_parse();
    test_dump();
    test_escape_and_href();
    test_parent_join();
    xmlCleanupParser();
    return unit_report();
}
