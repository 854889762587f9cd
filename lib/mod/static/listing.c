/* Directory listings: a small, sorted HTML table. */
#include "mod/static/internal.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"

struct entry {
    char *name;
    bool dir;
    uint64_t size;
    time_t mtime;
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static void html_escape(struct buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': buf_puts(b, "&amp;"); break;
        case '<': buf_puts(b, "&lt;"); break;
        case '>': buf_puts(b, "&gt;"); break;
        case '"': buf_puts(b, "&quot;"); break;
        case '\'': buf_puts(b, "&#39;"); break;
        default: buf_append(b, s, 1);
        }
    }
}

static void row(struct buf *b, const struct entry *e)
{
    /* The href keeps only unreserved bytes: a name like "a:b" must not
     * read as a scheme, and nothing in it needs HTML escaping. */
    buf_puts(b, "<tr><td><a href=\"");
    static_url_encode(b, e->name, strlen(e->name), "");
    if (e->dir)
        buf_puts(b, "/");
    buf_puts(b, "\">");
    html_escape(b, e->name);
    if (e->dir)
        buf_puts(b, "/");
    buf_puts(b, "</a></td><td>");
    struct tm tm;
    if (gmtime_r(&e->mtime, &tm))
        buf_printf(b, "%04d-%02d-%02d %02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                   tm.tm_hour, tm.tm_min);
    if (e->dir)
        buf_puts(b, "</td><td>-</td></tr>\n");
    else
        buf_printf(b, "</td><td>%" PRIu64 "</td></tr>\n", e->size);
}

void listing_respond(struct verbd_response *res, const struct static_inst *in, const char *rel,
                     const char *path, int fd, bool at_root)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        verbd_response_error(res, 500, "cannot read the directory");
        return;
    }
    struct entry *ents = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *de; (de = readdir(d));) {
        /* "." and "..", and what is not served (hidden.c), are not
         * listed. */
        if (static_entry_hidden(in, de->d_name))
            continue;
        /* Only what could be served is listed: a broken symlink, one
         * leading out of the root, a FIFO or a device would only answer
         * 404 or 403 (and their targets' sizes are none of the client's
         * business). */
        struct stat st;
        char *p = static_join(rel, de->d_name);
        int r = static_stat(in, p, &st);
        free(p);
        if (r != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            struct entry *p = realloc(ents, cap * sizeof *p);
            if (!p)
                abort();
            ents = p;
        }
        char *name = strdup(de->d_name);
        if (!name)
            abort();
        ents[n++] =
            (struct entry){name, S_ISDIR(st.st_mode), (uint64_t)st.st_size, st.st_mtim.tv_sec};
    }
    closedir(d);
    if (n)
        qsort(ents, n, sizeof *ents, entry_cmp);

    struct buf b = {0};
    buf_puts(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
    html_escape(&b, path);
    buf_puts(&b, "</title></head>\n<body><h1>Index of ");
    html_escape(&b, path);
    buf_puts(&b, "</h1>\n<table>\n<tr><th>Name</th><th>Last modified (UTC)</th>"
                 "<th>Size</th></tr>\n");
    if (!at_root)
        buf_puts(&b, "<tr><td><a href=\"../\">../</a></td><td></td><td>-</td></tr>\n");
    for (size_t i = 0; i < n; i++) {
        row(&b, &ents[i]);
        free(ents[i].name);
    }
    free(ents);
    buf_puts(&b, "</table>\n</body></html>\n");

    verbd_response_status(res, 200);
    verbd_response_header(res, "Content-Type", "text/html; charset=utf-8");
    verbd_response_body(res, b.p, b.len);
    buf_free(&b);
}
