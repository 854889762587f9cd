/* Dead properties and locks in SQLite.  Every worker process opens the
 * file itself (a connection never crosses fork); WAL mode and a busy
 * timeout let them share it.  Paths are rel strings compared bytewise; a
 * subtree is rel itself plus the range (rel + "/", rel + "0"), since '0'
 * follows '/'. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "mod/static/static.h"
#include "mod/webdav/internal.h"

enum {
    S_PROPS_OF,
    S_PROP_GET,
    S_PROP_SET,
    S_PROP_DEL,
    S_PROPS_DROP,
    S_PROPS_TREE,
    S_PROPS_DROP_ALL,
    S_LOCKS_ALL,
    S_LOCKS_PURGE,
    S_LOCK_INS,
    S_LOCK_REFRESH,
    S_LOCK_DEL,
    S_LOCKS_DROP,
    S_LOCKS_DROP_ALL,
    S_BEGIN,
    S_COMMIT,
};

static const char *const sql_text[] = {
    [S_PROPS_OF] = "SELECT ns, name, xml FROM props WHERE path = ?1",
    [S_PROP_GET] = "SELECT xml FROM props WHERE path = ?1 AND ns = ?2 AND name = ?3",
    [S_PROP_SET] = "INSERT OR REPLACE INTO props(path, ns, name, xml) VALUES (?1, ?2, ?3, ?4)",
    [S_PROP_DEL] = "DELETE FROM props WHERE path = ?1 AND ns = ?2 AND name = ?3",
    [S_PROPS_DROP] =
        "DELETE FROM props WHERE path = ?1 OR (path >= ?1 || '/' AND path < ?1 || '0')",
    [S_PROPS_TREE] = "SELECT path, ns, name, xml FROM props WHERE path = ?1 OR "
                     "(?2 AND path >= ?1 || '/' AND path < ?1 || '0')",
    [S_PROPS_DROP_ALL] = "DELETE FROM props",
    [S_LOCKS_ALL] = "SELECT token, root, depth, exclusive, owner, timeout, expires FROM locks",
    [S_LOCKS_PURGE] = "DELETE FROM locks WHERE expires <= ?1",
    [S_LOCK_INS] = "INSERT INTO locks(token, root, depth, exclusive, owner, timeout, expires) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_LOCK_REFRESH] = "UPDATE locks SET timeout = ?2, expires = ?3 WHERE token = ?1",
    [S_LOCK_DEL] = "DELETE FROM locks WHERE token = ?1",
    [S_LOCKS_DROP] =
        "DELETE FROM locks WHERE root = ?1 OR (root >= ?1 || '/' AND root < ?1 || '0')",
    [S_LOCKS_DROP_ALL] = "DELETE FROM locks",
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS props(path TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,"
    " xml TEXT NOT NULL, PRIMARY KEY(path, ns, name)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS locks(token TEXT PRIMARY KEY, root TEXT NOT NULL,"
    " depth INTEGER NOT NULL, exclusive INTEGER NOT NULL, owner TEXT,"
    " timeout INTEGER NOT NULL, expires INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS locks_root ON locks(root);";

void dav_db_close(struct dav_inst *in)
{
    for (int i = 0; i < DAV_STMT_MAX; i++) {
        if (in->stmts[i])
            sqlite3_finalize(in->stmts[i]);
        in->stmts[i] = NULL;
    }
    if (in->db)
        sqlite3_close(in->db);
    in->db = NULL;
}

/* ---- checking a database path at configuration time ------------------ */

/* Whether the existing path `real` (symlinks resolved) is the share's
 * directory or lies below it, compared by device and inode so that bind
 * mounts and other spellings of the same directory count. */
static bool under_root(const struct stat *root, const char *real)
{
    char *p = strdup(real);
    if (!p)
        abort();
    bool inside = false;
    for (;;) {
        struct stat st;
        if (stat(p, &st) == 0 && st.st_dev == root->st_dev && st.st_ino == root->st_ino) {
            inside = true;
            break;
        }
        char *slash = strrchr(p, '/');
        if (!slash || slash == p) {
            inside = stat("/", &st) == 0 && st.st_dev == root->st_dev && st.st_ino == root->st_ino;
            break;
        }
        *slash = '\0';
    }
    free(p);
    return inside;
}

/* Where SQLite will really write for `path`: the file itself, symlinks
 * followed (SQLite follows them too); for a file not there yet, its real
 * directory and its name.  NULL + err if the directory is missing. */
static char *real_target(const char *path, char *err, size_t errlen)
{
    char *real = realpath(path, NULL);
    if (real)
        return real;
    struct stat st;
    if (lstat(path, &st) == 0) {
        snprintf(err, errlen, "dav_db: %s is a symbolic link to a file that does not exist", path);
        return NULL;
    }
    char *d = strdup(path), *b = strdup(path);
    if (!d || !b)
        abort();
    char *dir = realpath(dirname(d), NULL);
    const char *base = basename(b);
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen,
                 "dav_db: %s cannot be an SQLite database file (its directory "
                 "must exist)",
                 path);
    } else {
        size_t n = strlen(dir) + strlen(base) + 2;
        real = malloc(n);
        if (!real)
            abort();
        snprintf(real, n, "%s/%s", strcmp(dir, "/") ? dir : "", base);
    }
    free(dir);
    free(d);
    free(b);
    return real;
}

/* The database and the files SQLite keeps beside it, wherever symlinks
 * take them, must all lie outside the share: clients could read,
 * overwrite or delete any of them there. */
static int check_outside(const struct dav_inst *in, const char *path, const char *real, char *err,
                         size_t errlen)
{
    struct stat root;
    if (fstat(in->root_fd, &root) != 0) {
        snprintf(err, errlen, "dav_db: the shared directory: %s", strerror(errno));
        return -1;
    }
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    size_t n = strlen(real) + 16;
    char *sibling = malloc(n);
    if (!sibling)
        abort();
    int rc = 0;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0] && rc == 0; i++) {
        snprintf(sibling, n, "%s%s", real, suffixes[i]);
        char *target = i ? realpath(sibling, NULL) : NULL; /* an existing sibling */
        const char *where = target ? target : i ? NULL : real;
        if (!where) {
            /* Not there: SQLite creates it beside the file, checked as
             * i == 0.  A dangling symlink would be created where it
             * points, which may be anywhere. */
            struct stat st;
            if (lstat(sibling, &st) == 0) {
                snprintf(err, errlen,
                         "dav_db: %s: its %s is a symbolic link to a file that "
                         "does not exist",
                         path, sibling);
                rc = -1;
            }
            continue;
        }
        /* A file not created yet: its directory decides. */
        char *dir = strdup(where);
        if (!dir)
            abort();
        struct stat st;
        bool exists = stat(where, &st) == 0;
        if (!exists)
            *strrchr(dir, '/') = '\0';
        if (under_root(&root, *dir ? dir : "/")) {
            if (i == 0)
                snprintf(err, errlen,
                         "dav_db: %s is inside the shared directory %s, where "
                         "clients could read, overwrite or delete it; put it "
                         "beside that directory",
                         path, static_root_real(in->st));
            else
                snprintf(err, errlen,
                         "dav_db: %s: its %s leads into the shared directory "
                         "%s, where clients could read, overwrite or delete it",
                         path, sibling, static_root_real(in->st));
            rc = -1;
        }
        free(dir);
        free(target);
    }
    free(sibling);
    return rc;
}

/* "file:" URI of a path, opened immutable: SQLite then reads only the
 * database file itself, takes no lock and creates no -wal or -shm. */
static char *immutable_uri(const char *path)
{
    char *uri = malloc(strlen(path) * 3 + 32), *o = uri;
    if (!uri)
        abort();
    o += sprintf(o, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (*p == '%' || *p == '?' || *p == '#' || *p <= 0x20 || *p >= 0x7f)
            o += sprintf(o, "%%%02X", *p);
        else
            *o++ = (char)*p;
    }
    strcpy(o, "?immutable=1");
    return uri;
}

/* An existing file: an SQLite database (or empty, which SQLite makes one)
 * holding no tables but this module's. */
static int check_content(const char *path, const char *real, char *err, size_t errlen)
{
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "dav_db: %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "dav_db: %s is not a regular file", path);
        return -1;
    }
    char head[16];
    ssize_t got = st.st_size ? pread(fd, head, sizeof head, 0) : 0;
    close(fd);
    if (st.st_size == 0)
        return 0;
    if (got != (ssize_t)sizeof head || memcmp(head, "SQLite format 3", 16) != 0) {
        snprintf(err, errlen,
                 "dav_db: %s exists and is not an SQLite database; name another "
                 "file (verbd creates it) or move this one away",
                 path);
        return -1;
    }
    char *uri = immutable_uri(real);
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "SELECT name FROM sqlite_master WHERE type = 'table' AND name "
                                "NOT IN ('props', 'locks') LIMIT 1",
                                -1, &q, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        snprintf(err, errlen,
                 "dav_db: %s is an SQLite database of something else (it has a "
                 "table \"%s\"); name a file of its own",
                 path, (const char *)sqlite3_column_text(q, 0));
    else if (rc != SQLITE_DONE)
        snprintf(err, errlen, "dav_db: %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc == SQLITE_DONE ? 0 : -1;
}

int dav_db_check(const struct dav_inst *in, const char *path, char *err, size_t errlen)
{
    if (!*path) {
        snprintf(err, errlen, "dav_db: an empty path");
        return -1;
    }
    char *real = real_target(path, err, errlen);
    if (!real)
        return -1;
    struct stat st;
    int rc = check_outside(in, path, real, err, errlen);
    if (rc == 0 && stat(real, &st) == 0)
        rc = check_content(path, real, err, errlen);
    free(real);
    return rc;
}

/* ---- the connection of one process --------------------------------- */

int dav_db_open(struct dav_inst *in)
{
    if (in->db && in->db_pid == getpid())
        return 0;
    if (in->db) {
        /* Inherited across fork: SQLite forbids using (or closing) it here;
         * forget it.  Its memory is the parent's to free. */
        in->db = NULL;
        memset(in->stmts, 0, sizeof in->stmts);
    }
    if (!in->db_path) {
        log_msg(LOG_ERROR, "webdav: no database path (set dav_db)");
        return -1;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        in->db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        log_msg(LOG_ERROR, "webdav: database %s: %s", in->db_path,
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -1;
    }
    in->db = db;
    in->db_pid = getpid();
    return 0;
}

static sqlite3_stmt *stmt(struct dav_inst *in, int id)
{
    if (dav_db_open(in) != 0)
        return NULL;
    if (!in->stmts[id] && sqlite3_prepare_v3(in->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT,
                                             &in->stmts[id], NULL) != SQLITE_OK) {
        log_msg(LOG_ERROR, "webdav: database: %s", sqlite3_errmsg(in->db));
        return NULL;
    }
    return in->stmts[id];
}

static void done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

static void bind_text(sqlite3_stmt *s, int i, const char *t)
{
    if (t)
        sqlite3_bind_text(s, i, t, (int)strlen(t), SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

/* Runs a statement that returns no rows: 0 or -1. */
static int run(struct dav_inst *in, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    done(s);
    if (rc != SQLITE_DONE) {
        log_msg(LOG_ERROR, "webdav: database: %s", sqlite3_errmsg(in->db));
        return -1;
    }
    return 0;
}

int dav_db_begin(struct dav_inst *in)
{
    sqlite3_stmt *s = stmt(in, S_BEGIN);
    return s ? run(in, s) : -1;
}

int dav_db_commit(struct dav_inst *in)
{
    sqlite3_stmt *s = stmt(in, S_COMMIT);
    if (!s)
        return -1;
    if (run(in, s) != 0) {
        dav_db_rollback(in);
        return -1;
    }
    return 0;
}

void dav_db_rollback(struct dav_inst *in)
{
    if (in->db && !sqlite3_get_autocommit(in->db))
        sqlite3_exec(in->db, "ROLLBACK", NULL, NULL, NULL);
}

static const char *col(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? t : "";
}

int dav_props_each(struct dav_inst *in, const char *rel,
                   void (*fn)(void *ctx, const char *ns, const char *name, const char *xml),
                   void *ctx)
{
    sqlite3_stmt *s = stmt(in, S_PROPS_OF);
    if (!s)
        return -1;
    bind_text(s, 1, rel);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, col(s, 0), col(s, 1), col(s, 2));
    done(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

char *dav_prop_get(struct dav_inst *in, const char *rel, const char *ns, const char *name)
{
    sqlite3_stmt *s = stmt(in, S_PROP_GET);
    if (!s)
        return NULL;
    bind_text(s, 1, rel);
    bind_text(s, 2, ns);
    bind_text(s, 3, name);
    char *out = NULL;
    if (sqlite3_step(s) == SQLITE_ROW && !(out = strdup(col(s, 0))))
        abort();
    done(s);
    return out;
}

int dav_prop_set(struct dav_inst *in, const char *rel, const char *ns, const char *name,
                 const char *xml)
{
    sqlite3_stmt *s = stmt(in, S_PROP_SET);
    if (!s)
        return -1;
    bind_text(s, 1, rel);
    bind_text(s, 2, ns);
    bind_text(s, 3, name);
    bind_text(s, 4, xml);
    return run(in, s);
}

int dav_prop_remove(struct dav_inst *in, const char *rel, const char *ns, const char *name)
{
    sqlite3_stmt *s = stmt(in, S_PROP_DEL);
    if (!s)
        return -1;
    bind_text(s, 1, rel);
    bind_text(s, 2, ns);
    bind_text(s, 3, name);
    return run(in, s);
}

int dav_props_drop(struct dav_inst *in, const char *rel)
{
    sqlite3_stmt *s = stmt(in, *rel ? S_PROPS_DROP : S_PROPS_DROP_ALL);
    if (!s)
        return -1;
    if (*rel)
        bind_text(s, 1, rel);
    return run(in, s);
}

struct prop_row {
    char *path, *ns, *name, *xml;
};

int dav_props_copy(struct dav_inst *in, const char *src, const char *dst, bool recursive, bool move)
{
    /* Read first, then write: the rows are few, and rewriting the path
     * prefix in C keeps any byte in a name intact. */
    sqlite3_stmt *s = stmt(in, S_PROPS_TREE);
    if (!s)
        return -1;
    bind_text(s, 1, src);
    sqlite3_bind_int(s, 2, recursive);
    struct prop_row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc;
    size_t sl = strlen(src);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = realloc(rows, cap * sizeof *rows);
            if (!rows)
                abort();
        }
        const char *path = col(s, 0);
        const char *rest = path + (strlen(path) >= sl ? sl : strlen(path));
        struct prop_row *r = &rows[n++];
        r->path = malloc(strlen(dst) + strlen(rest) + 1);
        if (!r->path)
            abort();
        strcpy(r->path, dst);
        strcat(r->path, rest);
        if (!(r->ns = strdup(col(s, 1))) || !(r->name = strdup(col(s, 2))) ||
            !(r->xml = strdup(col(s, 3))))
            abort();
    }
    done(s);
    int result = rc == SQLITE_DONE ? 0 : -1;
    if (result == 0 && move)
        result = dav_props_drop(in, src);
    for (size_t i = 0; i < n; i++) {
        if (result == 0)
            result = dav_prop_set(in, rows[i].path, rows[i].ns, rows[i].name, rows[i].xml);
        free(rows[i].path);
        free(rows[i].ns);
        free(rows[i].name);
        free(rows[i].xml);
    }
    free(rows);
    return result;
}

void dav_locks_free(struct dav_locks *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].root);
        free(l->v[i].owner);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int dav_locks_load(struct dav_inst *in, struct dav_locks *out)
{
    out->v = NULL;
    out->n = 0;
    sqlite3_stmt *p = stmt(in, S_LOCKS_PURGE);
    if (!p)
        return -1;
    sqlite3_bind_int64(p, 1, (sqlite3_int64)time(NULL));
    if (run(in, p) != 0)
        return -1;
    sqlite3_stmt *s = stmt(in, S_LOCKS_ALL);
    if (!s)
        return -1;
    int rc;
    size_t cap = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            out->v = realloc(out->v, cap * sizeof *out->v);
            if (!out->v)
                abort();
        }
        struct dav_lock *l = &out->v[out->n++];
        memset(l, 0, sizeof *l);
        snprintf(l->token, sizeof l->token, "%s", col(s, 0));
        if (!(l->root = strdup(col(s, 1))))
            abort();
        l->depth = sqlite3_column_int(s, 2);
        l->exclusive = sqlite3_column_int(s, 3) != 0;
        if (sqlite3_column_type(s, 4) != SQLITE_NULL && !(l->owner = strdup(col(s, 4))))
            abort();
        l->timeout = (long)sqlite3_column_int64(s, 5);
        l->expires = (time_t)sqlite3_column_int64(s, 6);
    }
    done(s);
    if (rc != SQLITE_DONE) {
        dav_locks_free(out);
        return -1;
    }
    return 0;
}

int dav_lock_insert(struct dav_inst *in, const struct dav_lock *l)
{
    sqlite3_stmt *s = stmt(in, S_LOCK_INS);
    if (!s)
        return -1;
    bind_text(s, 1, l->token);
    bind_text(s, 2, l->root);
    sqlite3_bind_int(s, 3, l->depth);
    sqlite3_bind_int(s, 4, l->exclusive);
    bind_text(s, 5, l->owner);
    sqlite3_bind_int64(s, 6, l->timeout);
    sqlite3_bind_int64(s, 7, (sqlite3_int64)l->expires);
    return run(in, s);
}

int dav_lock_refresh(struct dav_inst *in, const char *token, long timeout, time_t expires)
{
    sqlite3_stmt *s = stmt(in, S_LOCK_REFRESH);
    if (!s)
        return -1;
    bind_text(s, 1, token);
    sqlite3_bind_int64(s, 2, timeout);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)expires);
    return run(in, s);
}

int dav_lock_delete(struct dav_inst *in, const char *token)
{
    sqlite3_stmt *s = stmt(in, S_LOCK_DEL);
    if (!s)
        return -1;
    bind_text(s, 1, token);
    return run(in, s);
}

int dav_locks_drop(struct dav_inst *in, const char *rel)
{
    sqlite3_stmt *s = stmt(in, *rel ? S_LOCKS_DROP : S_LOCKS_DROP_ALL);
    if (!s)
        return -1;
    if (*rel)
        bind_text(s, 1, rel);
    return run(in, s);
}
