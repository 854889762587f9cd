/* The SQLite store of dead properties and locks: the default, a file
 * beside the share, no server needed.  Every worker process opens the
 * file itself (a connection never crosses fork); WAL mode and a busy
 * timeout let them share it.  The engine is local and fast, so each
 * operation runs at once, in the call, and its completion is delivered
 * from the loop (dav_store_complete) like any other store's.
 *
 * Paths are rel strings compared bytewise; a subtree is rel itself plus
 * the range (rel + "/", rel + "0"), since '0' follows '/'.  Lock expiry
 * is SQLite's clock: `expires` is in its Unix seconds, to the millisecond
 * (whole seconds would let a lock granted for one second end at once). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/loop.h"
#include "mod/static/static.h"
#include "mod/webdav/internal.h"
#include "mod/webdav/store.h"

#define NOW "((julianday('now') - 2440587.5) * 86400.0)"

enum {
    S_PROPS_SCOPE,
    S_PROP_SET,
    S_PROP_DEL,
    S_PROPS_DROP,
    S_PROPS_DROP_ALL,
    S_LOCKS_LIVE,
    S_LOCKS_PURGE,
    S_LOCK_INS,
    S_LOCK_REFRESH,
    S_LOCK_DEL,
    S_LOCKS_DROP,
    S_LOCKS_DROP_ALL,
    S_BEGIN,
    S_COMMIT,
    S_COUNT
};

static const char *const sql_text[S_COUNT] = {
    /* rel itself, and with ?2 everything below it (depth is cut in C) */
    [S_PROPS_SCOPE] = "SELECT path, ns, name, xml FROM props WHERE path = ?1 OR (?2 AND (?1 = '' "
                      "OR (path >= ?1 || '/' AND path < ?1 || '0'))) ORDER BY path",
    [S_PROP_SET] = "INSERT OR REPLACE INTO props(path, ns, name, xml) VALUES (?1, ?2, ?3, ?4)",
    [S_PROP_DEL] = "DELETE FROM props WHERE path = ?1 AND ns = ?2 AND name = ?3",
    [S_PROPS_DROP] =
        "DELETE FROM props WHERE path = ?1 OR (path >= ?1 || '/' AND path < ?1 || '0')",
    [S_PROPS_DROP_ALL] = "DELETE FROM props",
    [S_LOCKS_LIVE] = "SELECT token, root, depth, exclusive, owner, timeout,"
                     " CAST(expires - " NOW " + 0.999 AS INTEGER)"
                     " FROM locks WHERE expires > " NOW,
    [S_LOCKS_PURGE] = "DELETE FROM locks WHERE expires <= " NOW,
    [S_LOCK_INS] = "INSERT INTO locks(token, root, depth, exclusive, owner, timeout, expires) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, " NOW " + ?6)",
    [S_LOCK_REFRESH] =
        "UPDATE locks SET timeout = ?2, expires = " NOW " + ?2 WHERE token = ?1 AND expires > " NOW,
    [S_LOCK_DEL] = "DELETE FROM locks WHERE token = ?1 AND expires > " NOW,
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

struct sqlite_store {
    struct dav_store base;
    char *path;  /* NULL: none set (a share at "/" needs dav_db) */
    sqlite3 *db; /* opened lazily, per process (never across fork) */
    pid_t pid;
    sqlite3_stmt *stmts[S_COUNT];
    struct loop *sweep_loop; /* this worker's sweep, if started */
    struct loop_timer sweep;
    uint64_t sweep_ms;
    pid_t sweep_pid;
};

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
static char *real_target(const char *directive, const char *path, char *err, size_t errlen)
{
    char *real = realpath(path, NULL);
    if (real)
        return real;
    struct stat st;
    if (lstat(path, &st) == 0) {
        snprintf(err, errlen, "%s: %s is a symbolic link to a file that does not exist", directive,
                 path);
        return NULL;
    }
    char *d = strdup(path), *b = strdup(path);
    if (!d || !b)
        abort();
    char *dir = realpath(dirname(d), NULL);
    const char *base = basename(b);
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen,
                 "%s: %s cannot be an SQLite database file (its directory "
                 "must exist)",
                 directive, path);
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
static int check_outside(const struct dav_inst *in, const char *directive, const char *path,
                         const char *real, char *err, size_t errlen)
{
    struct stat root;
    if (fstat(in->root_fd, &root) != 0) {
        snprintf(err, errlen, "%s: the shared directory: %s", directive, strerror(errno));
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
                         "%s: %s: its %s is a symbolic link to a file that "
                         "does not exist",
                         directive, path, sibling);
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
                         "%s: %s is inside the shared directory %s, where "
                         "clients could read, overwrite or delete it; put it "
                         "beside that directory",
                         directive, path, static_root_real(in->st));
            else
                snprintf(err, errlen,
                         "%s: %s: its %s leads into the shared directory "
                         "%s, where clients could read, overwrite or delete it",
                         directive, path, sibling, static_root_real(in->st));
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
static int check_content(const char *directive, const char *path, const char *real, char *err,
                         size_t errlen)
{
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s: %s", directive, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s: %s is not a regular file", directive, path);
        return -1;
    }
    char head[16];
    ssize_t got = st.st_size ? pread(fd, head, sizeof head, 0) : 0;
    close(fd);
    if (st.st_size == 0)
        return 0;
    if (got != (ssize_t)sizeof head || memcmp(head, "SQLite format 3", 16) != 0) {
        snprintf(err, errlen,
                 "%s: %s exists and is not an SQLite database; name another "
                 "file (verbd creates it) or move this one away",
                 directive, path);
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
                 "%s: %s is an SQLite database of something else (it has a "
                 "table \"%s\"); name a file of its own",
                 directive, path, (const char *)sqlite3_column_text(q, 0));
    else if (rc != SQLITE_DONE)
        snprintf(err, errlen, "%s: %s: %s", directive, path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_finalize(q);
    sqlite3_close(db);
    return rc == SQLITE_DONE ? 0 : -1;
}

int dav_store_sqlite_check(const struct dav_inst *in, const char *directive, const char *path,
                           char *err, size_t errlen)
{
    if (!*path) {
        snprintf(err, errlen, "%s: an empty path", directive);
        return -1;
    }
    char *real = real_target(directive, path, err, errlen);
    if (!real)
        return -1;
    struct stat st;
    int rc = check_outside(in, directive, path, real, err, errlen);
    if (rc == 0 && stat(real, &st) == 0)
        rc = check_content(directive, path, real, err, errlen);
    free(real);
    return rc;
}

/* ---- the connection of one process --------------------------------- */

static void db_close(struct sqlite_store *s)
{
    for (int i = 0; i < S_COUNT; i++) {
        if (s->stmts[i])
            sqlite3_finalize(s->stmts[i]);
        s->stmts[i] = NULL;
    }
    if (s->db)
        sqlite3_close(s->db);
    s->db = NULL;
}

/* Opens the database for this process (creating it) if needed: 0, or -1
 * (logged; the next operation tries again). */
static int db_open(struct sqlite_store *s)
{
    if (s->db && s->pid == getpid())
        return 0;
    if (s->db) {
        /* Inherited across fork: SQLite forbids using (or closing) it here;
         * forget it.  Its memory is the parent's to free. */
        s->db = NULL;
        memset(s->stmts, 0, sizeof s->stmts);
    }
    if (!s->path) {
        log_msg(LOG_ERROR, "webdav: no database path (set dav_store or dav_db)");
        return -1;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        log_msg(LOG_ERROR, "webdav: database %s: %s", s->path,
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -1;
    }
    s->db = db;
    s->pid = getpid();
    return 0;
}

static sqlite3_stmt *stmt(struct sqlite_store *s, int id)
{
    if (db_open(s) != 0)
        return NULL;
    if (!s->stmts[id] && sqlite3_prepare_v3(s->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT,
                                            &s->stmts[id], NULL) != SQLITE_OK) {
        log_msg(LOG_ERROR, "webdav: database %s: %s", s->path, sqlite3_errmsg(s->db));
        return NULL;
    }
    return s->stmts[id];
}

static void reset(sqlite3_stmt *q)
{
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
}

static void bind_text(sqlite3_stmt *q, int i, const char *t)
{
    if (t)
        sqlite3_bind_text(q, i, t, (int)strlen(t), SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, i);
}

static const char *col(sqlite3_stmt *q, int i)
{
    const char *t = (const char *)sqlite3_column_text(q, i);
    return t ? t : "";
}

/* Runs a statement that returns no rows: 0 or -1 (logged). */
static int run(struct sqlite_store *s, sqlite3_stmt *q)
{
    int rc = sqlite3_step(q);
    reset(q);
    if (rc != SQLITE_DONE) {
        log_msg(LOG_ERROR, "webdav: database %s: %s", s->path, sqlite3_errmsg(s->db));
        return -1;
    }
    return 0;
}

static int exec(struct sqlite_store *s, int id)
{
    sqlite3_stmt *q = stmt(s, id);
    return q ? run(s, q) : -1;
}

static int begin(struct sqlite_store *s)
{
    return exec(s, S_BEGIN);
}

static void rollback(struct sqlite_store *s)
{
    if (s->db && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Ends the transaction begun for an operation: commits if rc is 0,
 * else rolls back.  0, or -1 if either way it failed. */
static int finish(struct sqlite_store *s, int rc)
{
    if (rc == 0 && exec(s, S_COMMIT) == 0)
        return 0;
    rollback(s);
    return -1;
}

/* ---- reading ------------------------------------------------------------- */

static int locks_live(struct sqlite_store *s, const struct dav_scope *q, struct dav_locks *out)
{
    sqlite3_stmt *st = stmt(s, S_LOCKS_LIVE);
    if (!st)
        return -1;
    int rc;
    size_t cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (q && !dav_scope_wants_lock(q, col(st, 1)))
            continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            out->v = realloc(out->v, cap * sizeof *out->v);
            if (!out->v)
                abort();
        }
        struct dav_lock *l = &out->v[out->n++];
        memset(l, 0, sizeof *l);
        snprintf(l->token, sizeof l->token, "%s", col(st, 0));
        if (!(l->root = strdup(col(st, 1))))
            abort();
        l->depth = sqlite3_column_int(st, 2);
        l->exclusive = sqlite3_column_int(st, 3) != 0;
        if (sqlite3_column_type(st, 4) != SQLITE_NULL && !(l->owner = strdup(col(st, 4))))
            abort();
        l->timeout = (long)sqlite3_column_int64(st, 5);
        l->left = (long)sqlite3_column_int64(st, 6);
    }
    reset(st);
    if (rc != SQLITE_DONE) {
        log_msg(LOG_ERROR, "webdav: database %s: %s", s->path, sqlite3_errmsg(s->db));
        dav_locks_free(out);
        return -1;
    }
    return 0;
}

/* The properties of rel and below (recursive), paths rewritten from src
 * to dst when dst is not NULL; only those within depth of rel. */
static int props_tree(struct sqlite_store *s, const char *rel, int depth, const char *dst,
                      struct dav_props *out)
{
    sqlite3_stmt *st = stmt(s, S_PROPS_SCOPE);
    if (!st)
        return -1;
    bind_text(st, 1, rel);
    sqlite3_bind_int(st, 2, depth != 0);
    int rc;
    size_t cap = 0, rl = strlen(rel);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *path = col(st, 0);
        if (!dav_within_depth(path, rel, depth))
            continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            out->v = realloc(out->v, cap * sizeof *out->v);
            if (!out->v)
                abort();
        }
        struct dav_prop *p = &out->v[out->n++];
        if (dst) {
            /* Rewritten in C, which keeps any byte of a name intact. */
            const char *rest = path + rl;
            p->path = malloc(strlen(dst) + strlen(rest) + 1);
            if (!p->path)
                abort();
            strcpy(p->path, dst);
            strcat(p->path, rest);
        } else if (!(p->path = strdup(path))) {
            abort();
        }
        if (!(p->ns = strdup(col(st, 1))) || !(p->name = strdup(col(st, 2))) ||
            !(p->xml = strdup(col(st, 3))))
            abort();
    }
    reset(st);
    if (rc != SQLITE_DONE) {
        log_msg(LOG_ERROR, "webdav: database %s: %s", s->path, sqlite3_errmsg(s->db));
        dav_props_free(out);
        return -1;
    }
    return 0;
}

static void op_load(struct dav_store *vs, struct dav_req *r, const struct dav_scope *q,
                    dav_store_done *done)
{
    struct sqlite_store *s = (struct sqlite_store *)vs;
    /* One read transaction: the locks and properties agree. */
    int rc = db_open(s);
    if (rc == 0 && sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        log_msg(LOG_ERROR, "webdav: database %s: %s", s->path, sqlite3_errmsg(s->db));
        rc = -1;
    }
    if (rc == 0 && q->npaths)
        rc = locks_live(s, q, &r->locks);
    if (rc == 0 && q->props_rel)
        rc = props_tree(s, q->props_rel, q->props_depth, NULL, &r->props);
    rollback(s); /* read only: nothing to keep */
    dav_store_complete(r, done, rc == 0 ? DAV_STORE_OK : DAV_STORE_DOWN);
}

/* ---- writing -------------------------------------------------------------- */

static int prop_write(struct sqlite_store *s, const char *rel, const struct dav_patch *p)
{
    sqlite3_stmt *q = stmt(s, p->set ? S_PROP_SET : S_PROP_DEL);
    if (!q)
        return -1;
    bind_text(q, 1, rel);
    bind_text(q, 2, p->ns);
    bind_text(q, 3, p->name);
    if (p->set)
        bind_text(q, 4, p->xml);
    return run(s, q);
}

static int subtree_drop(struct sqlite_store *s, const char *rel, bool locks)
{
    int all = locks ? S_LOCKS_DROP_ALL : S_PROPS_DROP_ALL;
    sqlite3_stmt *q = stmt(s, *rel ? (locks ? S_LOCKS_DROP : S_PROPS_DROP) : all);
    if (!q)
        return -1;
    if (*rel)
        bind_text(q, 1, rel);
    return run(s, q);
}

static void op_patch(struct dav_store *vs, struct dav_req *r, const char *rel,
                     const struct dav_patch *ops, size_t n, dav_store_done *done)
{
    struct sqlite_store *s = (struct sqlite_store *)vs;
    int rc = begin(s);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = prop_write(s, rel, &ops[i]);
    rc = finish(s, rc);
    dav_store_complete(r, done, rc == 0 ? DAV_STORE_OK : DAV_STORE_DOWN);
}

static void op_lock(struct dav_store *vs, struct dav_req *r, const struct dav_lock *l,
                    dav_store_done *done)
{
    struct sqlite_store *s = (struct sqlite_store *)vs;
    /* BEGIN IMMEDIATE takes the write lock first: lockers of every
     * process run one after another. */
    int rc = begin(s);
    if (rc == 0)
        rc = exec(s, S_LOCKS_PURGE);
    struct dav_locks held = {0};
    if (rc == 0)
        rc = locks_live(s, NULL, &held);
    bool conflict = false;
    for (size_t i = 0; i < held.n && !conflict; i++)
        conflict = dav_lock_conflicts(&held.v[i], l);
    dav_locks_free(&held);
    if (rc == 0 && !conflict) {
        sqlite3_stmt *q = stmt(s, S_LOCK_INS);
        if (!q) {
            rc = -1;
        } else {
            bind_text(q, 1, l->token);
            bind_text(q, 2, l->root);
            sqlite3_bind_int(q, 3, l->depth);
            sqlite3_bind_int(q, 4, l->exclusive);
            bind_text(q, 5, l->owner);
            sqlite3_bind_int64(q, 6, l->timeout);
            rc = run(s, q);
        }
    }
    rc = finish(s, conflict ? -1 : rc);
    dav_store_complete(r, done,
                       conflict  ? DAV_STORE_CONFLICT
                       : rc == 0 ? DAV_STORE_OK
                                 : DAV_STORE_DOWN);
}

/* Runs q (token bound as ?1): OK if it changed a row, GONE if none. */
static int token_change(struct sqlite_store *s, sqlite3_stmt *q)
{
    if (!q)
        return DAV_STORE_DOWN;
    if (run(s, q) != 0)
        return DAV_STORE_DOWN;
    return sqlite3_changes(s->db) ? DAV_STORE_OK : DAV_STORE_GONE;
}

static void op_refresh(struct dav_store *vs, struct dav_req *r, const char *token, long timeout,
                       dav_store_done *done)
{
    struct sqlite_store *s = (struct sqlite_store *)vs;
    sqlite3_stmt *q = stmt(s, S_LOCK_REFRESH);
    if (q) {
        bind_text(q, 1, token);
        sqlite3_bind_int64(q, 2, timeout);
    }
    dav_store_complete(r, done, token_change(s, q));
}

static void op_unlock(struct dav_store *vs, struct dav_req *r, const char *token,
                      dav_store_done *done)
{
    struct sqlite_store *s = (struct sqlite_store *)vs;
    sqlite3_stmt *q = stmt(s, S_LOCK_DEL);
    if (q)
        bind_text(q, 1, token);
    dav_store_complete(r, done, token_change(s, q));
}

static void op_drop(struct dav_store *vs, struct dav_req *r, const char *rel, unsigned what,
                    dav_store_done *done)
{
    struct sqlite_store *s = (struct sqlite_store *)vs;
    int rc = begin(s);
    if (rc == 0 && (what & DAV_STORE_PROPS))
        rc = subtree_drop(s, rel, false);
    if (rc == 0 && (what & DAV_STORE_LOCKS))
        rc = subtree_drop(s, rel, true);
    rc = finish(s, rc);
    dav_store_complete(r, done, rc == 0 ? DAV_STORE_OK : DAV_STORE_DOWN);
}

static void op_transfer(struct dav_store *vs, struct dav_req *r, const char *src, const char *dst,
                        bool recursive, bool move, dav_store_done *done)
{
    struct sqlite_store *s = (struct sqlite_store *)vs;
    struct dav_props rows = {0};
    /* Read first (dst may hold src), then write. */
    int rc = begin(s);
    if (rc == 0)
        rc = props_tree(s, src, recursive ? DAV_DEPTH_INFINITY : 0, dst, &rows);
    if (rc == 0)
        rc = subtree_drop(s, dst, false);
    if (rc == 0 && move)
        rc = subtree_drop(s, src, false);
    for (size_t i = 0; i < rows.n && rc == 0; i++) {
        struct dav_patch p = {
            .set = true, .ns = rows.v[i].ns, .name = rows.v[i].name, .xml = rows.v[i].xml};
        rc = prop_write(s, rows.v[i].path, &p);
    }
    if (rc == 0 && move)
        rc = subtree_drop(s, src, true);
    rc = finish(s, rc);
    dav_props_free(&rows);
    dav_store_complete(r, done, rc == 0 ? DAV_STORE_OK : DAV_STORE_DOWN);
}

/* The sweep of expired locks: a local file, one short statement; the
 * file is not opened (nor created) for it. */
static void sweep(void *arg)
{
    struct sqlite_store *s = arg;
    loop_timer_at(s->sweep_loop, &s->sweep, clock_ms() + s->sweep_ms, sweep, s);
    if (s->db && s->pid == getpid() && exec(s, S_LOCKS_PURGE) == 0 && sqlite3_changes(s->db) > 0)
        log_msg(LOG_DEBUG, "webdav: database %s: swept %d expired lock%s", s->path,
                sqlite3_changes(s->db), sqlite3_changes(s->db) == 1 ? "" : "s");
}

static void op_sweep_every(struct dav_store *vs, struct loop *loop, uint64_t ms)
{
    struct sqlite_store *s = (struct sqlite_store *)vs;
    if (s->sweep_loop && s->sweep_pid == getpid())
        return;
    s->sweep_loop = loop;
    s->sweep_ms = ms;
    s->sweep_pid = getpid();
    loop_timer_init(&s->sweep);
    loop_timer_at(loop, &s->sweep, clock_ms() + ms, sweep, s);
}

static void op_sweep_stop(struct dav_store *vs)
{
    struct sqlite_store *s = (struct sqlite_store *)vs;
    if (s->sweep_loop && s->sweep_pid == getpid())
        loop_timer_stop(s->sweep_loop, &s->sweep);
    s->sweep_loop = NULL;
}

static void op_destroy(struct dav_store *vs)
{
    struct sqlite_store *s = (struct sqlite_store *)vs;
    if (s->db && s->pid == getpid())
        db_close(s);
    free(s->path);
    free(s);
}

static const struct dav_store_ops sqlite_ops = {
    .load = op_load,
    .patch = op_patch,
    .lock = op_lock,
    .refresh = op_refresh,
    .unlock = op_unlock,
    .drop = op_drop,
    .transfer = op_transfer,
    .sweep_every = op_sweep_every,
    .sweep_stop = op_sweep_stop,
    .destroy = op_destroy,
};

struct dav_store *dav_store_sqlite(const char *path)
{
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->base.ops = &sqlite_ops;
    if (path && !(s->path = strdup(path)))
        abort();
    return &s->base;
}

int dav_store_sqlite_setup(const char *path, bool create, char *msg, size_t len)
{
    if (!create && access(path, F_OK) != 0) {
        snprintf(msg, len, "no database at %s (verbd dav-store init creates it)", path);
        return -1;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    sqlite3_stmt *q = NULL;
    int tables = 0;
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        rc = sqlite3_prepare_v2(db,
                                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                                " AND name IN ('props', 'locks')",
                                -1, &q, NULL);
    }
    if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        tables = sqlite3_column_int(q, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_OK && tables < 2 && !create) {
        snprintf(msg, len, "%s has no schema (verbd dav-store init creates it)", path);
        sqlite3_close(db);
        return -1;
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(msg, len, "%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -1;
    }
    sqlite3_close(db);
    snprintf(msg, len, tables < 2 ? "created the schema in %s" : "%s: schema up to date", path);
    return 0;
}
