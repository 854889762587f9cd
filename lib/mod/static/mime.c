/* Content types by file-name extension: the location's `types { }`, then
 * its `mime_types` file (by default /etc/mime.types when the system has
 * one), then a built-in table, then application/octet-stream.  Text and
 * JavaScript get the location's charset parameter (`charset`, utf-8 by
 * default); other types are sent as listed: JSON has no charset
 * parameter (RFC 8259 §11), and binary types have no use for one. */
#include "mod/static/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIME_DEFAULT "application/octet-stream"
#define MIME_EXT_MAX 16

struct mime_entry {
    const char *ext; /* lowercase */
    const char *type;
};

/* The fallback, sorted by extension (bsearch); one source for the list. */
static const struct mime_entry builtin[] = {
    {"7z", "application/x-7z-compressed"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css"},
    {"csv", "text/csv"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html"},
    {"html", "text/html"},
    {"ico", "image/vnd.microsoft.icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript"},
    {"json", "application/json"},
    {"m4a", "audio/mp4"},
    {"map", "application/json"},
    {"md", "text/markdown"},
    {"mjs", "text/javascript"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tgz", "application/gzip"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xml", "application/xml"},
    {"xz", "application/x-xz"},
    {"zip", "application/zip"},
    {"zst", "application/zstd"},
};

/* The system table: pointers into `text`, the file's bytes, sorted by
 * extension.  Loaded by the first instance, freed with the last. */
static pthread_mutex_t mime_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned mime_users;
static struct mime_types *sys;

/* "type; charset=x" strings handed out by mime_content_type: few (one per
 * text type and charset in use), kept until the last user lets go. */
struct with_charset {
    struct with_charset *next;
    char text[];
};
static struct with_charset *interned;

/* Not tolower(): the locale must not change which type a file gets. */
static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct mime_entry *x = a, *y = b;
    int c = strcmp(x->ext, y->ext);
    /* On a duplicate the earlier line wins: its pointers come first. */
    if (c == 0)
        c = (x->type > y->type) - (x->type < y->type);
    return c;
}

struct mime_types {
    char *text; /* the records' bytes, which the entries point into */
    struct mime_entry *v;
    size_t n;
};

static bool is_media_type(const char *s)
{
    const char *slash = strchr(s, '/');
    return slash && slash != s && slash[1] && !strchr(slash + 1, '/');
}

struct mime_types *mime_types_parse(const char *text, size_t len, bool strict, char *err,
                                    size_t errlen)
{
    struct mime_types *t = calloc(1, sizeof *t);
    if (!t || !(t->text = malloc(len + 1)))
        abort();
    memcpy(t->text, text, len);
    t->text[len] = '\0';
    size_t cap = 0;
    /* Records end at a newline (a mime.types file) or ";" (types { }). */
    for (char *rec = t->text, *next; rec && *rec; rec = next) {
        next = rec + strcspn(rec, "\n;");
        if (*next)
            *next++ = '\0';
        else
            next = NULL;
        char *hash = strchr(rec, '#');
        if (hash)
            *hash = '\0';
        char *save, *type = strtok_r(rec, " \t\r", &save);
        if (!type)
            continue;
        if (!is_media_type(type)) {
            if (!strict)
                continue;
            snprintf(err, errlen, "types: \"%s\" is not a media type (TYPE/SUBTYPE)", type);
            mime_types_free(t);
            return NULL;
        }
        for (char *ext; (ext = strtok_r(NULL, " \t\r", &save));) {
            if (strict && (strchr(ext, '/') || strlen(ext) > MIME_EXT_MAX)) {
                snprintf(err, errlen, "types: \"%s\" is not an extension%s", ext,
                         strchr(ext, '/') ? " (a \";\" missing before it?)" : " (too long)");
                mime_types_free(t);
                return NULL;
            }
            if (strlen(ext) > MIME_EXT_MAX)
                continue;
            for (char *c = ext; *c; c++)
                *c = ascii_lower(*c);
            if (t->n == cap) {
                cap = cap ? cap * 2 : 64;
                struct mime_entry *v = realloc(t->v, cap * sizeof *v);
                if (!v)
                    abort();
                t->v = v;
            }
            t->v[t->n++] = (struct mime_entry){ext, type};
        }
    }
    if (t->n)
        qsort(t->v, t->n, sizeof *t->v, entry_cmp);
    return t;
}

struct mime_types *mime_types_load(const char *file, char *err, size_t errlen)
{
    FILE *f = fopen(file, "re");
    if (!f) {
        snprintf(err, errlen, "mime_types %s: %s", file, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, tcap = 0;
    char chunk[4096];
    size_t got;
    /* The whole file (bounded) into one buffer that the table points into. */
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0 && len < (1u << 20)) {
        if (len + got > tcap) {
            tcap = (len + got) * 2;
            char *t = realloc(text, tcap);
            if (!t)
                abort();
            text = t;
        }
        memcpy(text + len, chunk, got);
        len += got;
    }
    fclose(f);
    struct mime_types *t = mime_types_parse(text ? text : "", len, false, err, errlen);
    free(text);
    return t;
}

void mime_types_free(struct mime_types *t)
{
    if (!t)
        return;
    free(t->v);
    free(t->text);
    free(t);
}

static void load(const char *file)
{
    char err[256];
    struct mime_types *t = mime_types_load(file, err, sizeof err);
    if (t && t->n == 0) {
        mime_types_free(t);
        t = NULL;
    }
    sys = t;
}

void mime_acquire_from(const char *file)
{
    pthread_mutex_lock(&mime_lock);
    if (mime_users++ == 0 && file)
        load(file);
    pthread_mutex_unlock(&mime_lock);
}

void mime_acquire(void)
{
    mime_acquire_from("/etc/mime.types");
}

void mime_release(void)
{
    pthread_mutex_lock(&mime_lock);
    if (mime_users && --mime_users == 0) {
        mime_types_free(sys);
        sys = NULL;
        while (interned) {
            struct with_charset *next = interned->next;
            free(interned);
            interned = next;
        }
    }
    pthread_mutex_unlock(&mime_lock);
}

static int key_cmp(const void *key, const void *entry)
{
    return strcmp(key, ((const struct mime_entry *)entry)->ext);
}

/* The first of equal keys, so that the earliest line of the file wins. */
static const struct mime_entry *find_first(const char *ext, const struct mime_entry *tab, size_t n)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(tab[mid].ext, ext) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && strcmp(tab[lo].ext, ext) == 0 ? &tab[lo] : NULL;
}

static const struct mime_entry *find(const struct mime_types *t, const char *ext)
{
    return t ? find_first(ext, t->v, t->n) : NULL;
}

const char *mime_type_in(const struct mime_choice *c, const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    /* ".profile" has no extension; neither has "name." */
    if (!dot || dot == base || !dot[1])
        return MIME_DEFAULT;
    size_t n = strlen(dot + 1);
    if (n > MIME_EXT_MAX)
        return MIME_DEFAULT;
    char ext[MIME_EXT_MAX + 1];
    for (size_t i = 0; i <= n; i++)
        ext[i] = ascii_lower(dot[1 + i]);
    /* Instances exist while handlers run, so the system table cannot go
     * away here; it only changes when the first instance is created. */
    const struct mime_entry *e = c ? find(c->types, ext) : NULL;
    if (!e)
        e = find(c && (c->file || c->no_file) ? c->file : sys, ext);
    if (!e)
        e = bsearch(ext, builtin, sizeof builtin / sizeof builtin[0], sizeof builtin[0], key_cmp);
    return e ? e->type : MIME_DEFAULT;
}

const char *mime_type(const char *name)
{
    return mime_type_in(NULL, name);
}

/* Types whose text a charset parameter describes: text/ ones, and JavaScript
 * under its historical names. */
static bool takes_charset(const char *type)
{
    static const char *const js[] = {"application/javascript", "application/x-javascript",
                                     "application/ecmascript"};
    if (strncmp(type, "text/", 5) == 0)
        return true;
    for (size_t i = 0; i < sizeof js / sizeof js[0]; i++)
        if (strcmp(type, js[i]) == 0)
            return true;
    return false;
}

const char *mime_content_type(const struct mime_choice *c, const char *name, const char *charset)
{
    const char *type = mime_type_in(c, name);
    if (!charset || !takes_charset(type) || strchr(type, ';'))
        return type;
    char want[160];
    int n = snprintf(want, sizeof want, "%s; charset=%s", type, charset);
    if (n < 0 || (size_t)n >= sizeof want)
        return type;
    pthread_mutex_lock(&mime_lock);
    struct with_charset *w = interned;
    while (w && strcmp(w->text, want) != 0)
        w = w->next;
    if (!w) {
        w = malloc(sizeof *w + (size_t)n + 1);
        if (!w)
            abort();
        memcpy(w->text, want, (size_t)n + 1);
        w->next = interned;
        interned = w;
    }
    pthread_mutex_unlock(&mime_lock);
    return w->text;
}

int mime_set_charset(char **slot, const char *value, char *err, size_t errlen)
{
    char *v = NULL;
    if (strcmp(value, "off") != 0) {
        /* A token (RFC 9110 §5.6.2), as a charset parameter's value is. */
        size_t n = strlen(value);
        bool ok = n > 0 && n <= 40;
        for (size_t i = 0; ok && i < n; i++)
            ok = (value[i] >= 'a' && value[i] <= 'z') || (value[i] >= 'A' && value[i] <= 'Z') ||
                 (value[i] >= '0' && value[i] <= '9') || strchr("!#$%&'*+-.^_`|~", value[i]);
        if (!ok) {
            snprintf(err, errlen, "charset: \"%s\" is not a charset name (or off)", value);
            return -1;
        }
        if (!(v = strdup(value)))
            abort();
    }
    free(*slot);
    *slot = v;
    return 0;
}
