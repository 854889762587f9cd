/* XML with libxml2: request bodies parsed with no DTD, no entity
 * substitution and no network (no XXE), namespaces checked; responses
 * built by hand with everything escaped. */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <stdlib.h>
#include <string.h>

#include "mod/webdav/internal.h"

static const char *find(const char *p, size_t n, const char *needle)
{
    return memmem(p, n, needle, strlen(needle));
}

xmlDoc *dav_xml_parse(const char *p, size_t n)
{
    if (n == 0 || n > DAV_XML_MAX || n > (size_t)INT32_MAX)
        return NULL;
    /* No request body needs a document type declaration: refusing one
     * outright means no entity can be declared, so none can expand or
     * reach outside (the parser options forbid it again below). */
    if (find(p, n, "<!DOCTYPE") || find(p, n, "<!ENTITY"))
        return NULL;
    xmlParserCtxt *ctxt = xmlNewParserCtxt();
    if (!ctxt)
        return NULL;
    int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, p, (int)n, "request.xml", NULL, opts);
    bool ok = doc && ctxt->wellFormed && ctxt->nsWellFormed && !doc->intSubset &&
              xmlDocGetRootElement(doc);
    xmlFreeParserCtxt(ctxt);
    if (!ok) {
        if (doc)
            xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

void dav_xml_free(xmlDoc *doc)
{
    if (doc)
        xmlFreeDoc(doc);
}

bool dav_xml_is(const xmlNode *node, const char *name)
{
    return node && node->type == XML_ELEMENT_NODE && node->ns && node->ns->href &&
           strcmp((const char *)node->ns->href, "DAV:") == 0 &&
           strcmp((const char *)node->name, name) == 0;
}

static xmlNode *elem_from(xmlNode *n)
{
    while (n && n->type != XML_ELEMENT_NODE)
        n = n->next;
    return n;
}

xmlNode *dav_xml_first(const xmlNode *node)
{
    return node ? elem_from(node->children) : NULL;
}
xmlNode *dav_xml_next(const xmlNode *node)
{
    return node ? elem_from(node->next) : NULL;
}

char *dav_xml_dump(const xmlNode *node, bool children_only)
{
    /* A copy in a document of its own gets every namespace it uses
     * declared on its root, so the text stands alone. */
    xmlDoc *doc = xmlNewDoc((const xmlChar *)"1.0");
    if (!doc)
        abort();
    xmlNode *copy = xmlDocCopyNode((xmlNode *)node, doc, 1);
    if (!copy)
        abort();
    xmlDocSetRootElement(doc, copy);
    xmlReconciliateNs(doc, copy);
    xmlBuffer *b = xmlBufferCreate();
    if (!b)
        abort();
    if (children_only) {
        for (xmlNode *c = copy->children; c; c = c->next) {
            if (c->type == XML_ELEMENT_NODE) {
                /* Namespaces declared on the copy's root are in scope of
                 * the child: dump a standalone copy of each child. */
                char *s = dav_xml_dump(c, false);
                xmlBufferCat(b, (const xmlChar *)s);
                free(s);
            } else {
                xmlNodeDump(b, doc, c, 0, 0);
            }
        }
    } else {
        xmlNodeDump(b, doc, copy, 0, 0);
    }
    char *out = strdup((const char *)xmlBufferContent(b));
    if (!out)
        abort();
    xmlBufferFree(b);
    xmlFreeDoc(doc);
    return out;
}

void dav_xml_escape(struct buf *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        default:
            /* Control characters are not allowed in XML 1.0 at all. */
            if ((unsigned char)s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
                rep = "";
            break;
        }
        if (rep) {
            buf_append(b, s + start, i - start);
            buf_puts(b, rep);
            start = i + 1;
        }
    }
    buf_append(b, s + start, n - start);
}

void dav_xml_href(struct buf *b, const char *prefix, const char *rel, bool dir)
{
    static const char hex[] = "0123456789ABCDEF";
    struct buf tmp = {0};
    buf_puts(&tmp, prefix);
    buf_puts(&tmp, "/");
    for (const unsigned char *p = (const unsigned char *)rel; *p; p++) {
        unsigned char c = *p;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     strchr("-._~/!$()*+,;=:@", c);
        if (plain) {
            buf_append(&tmp, p, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(&tmp, e, 3);
        }
    }
    if (dir && *rel)
        buf_puts(&tmp, "/");
    buf_puts(b, "<D:href>");
    dav_xml_escape(b, tmp.p, tmp.len);
    buf_puts(b, "</D:href>");
    buf_free(&tmp);
}

void dav_xml_respond(struct verbd_response *res, int status, const struct buf *b)
{
    verbd_response_status(res, status);
    verbd_response_header(res, "Content-Type", "application/xml; charset=utf-8");
    verbd_response_body(res, b->p, b->len);
}

void dav_error(struct verbd_response *res, int status, const char *cond)
{
    if (!cond) {
        verbd_response_error(res, status, NULL);
        return;
    }
    struct buf b = {0};
    buf_printf(&b,
               "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
               "<D:error xmlns:D=\"DAV:\"><D:%s/></D:error>\n",
               cond);
    dav_xml_respond(res, status, &b);
    buf_free(&b);
}
