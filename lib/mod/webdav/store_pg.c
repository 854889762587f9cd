/* The PostgreSQL store of dead properties and locks: one database that
 * several verbd nodes share.  Everything is asynchronous (libpq's
 * non-blocking API, the socket watched by the worker's loop): a worker
 * never waits for the database.
 *
 * Each worker keeps a small pool of connections (POOL_MAX).  An operation
 * takes an idle connection, or opens one, or waits in line for one; it
 * sends its statements in pipeline mode followed by one sync, so that
 * they are one round trip and one implicit transaction (all or nothing);
 * and gives the connection back when the sync comes back.  If its
 * exchange ends first, the connection is closed (its state is unknown).
 * A new connection's first transaction also creates the schema if it is
 * missing and sets statement_timeout.
 *
 * Paths are rel strings in "C"-collated columns, compared bytewise: a
 * subtree is rel itself plus the range (rel + "/", rel + "0").  Lock
 * expiry is the database's clock, now(). */
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "mod/webdav/internal.h"
#include "mod/webdav/store.h"
#include "mod/webdav/store_pg_sweep.h"

#define POOL_MAX 4             /* connections per worker */
#define OP_TIMEOUT_MS 10000    /* an operation not answered by then fails */
#define STATEMENT_TIMEOUT "5s" /* the database's own limit per statement */
#define LOCK_KEY "7465637"     /* pg_advisory_xact_lock: every LOCK, serialised */
#define SCHEMA_KEY "7465638"   /* ... and schema creation */
#define SCHEMA_VERSION "1"

/* ---- statements -------------------------------------------------------- */

#define SUBTREE(col, p)                                                                            \
    "(" p " = '' OR " col " = " p " OR (" col " >= " p " || '/' AND " col " < " p " || '0'))"

static const char *const schema_sql[] = {
    "SET statement_timeout = '" STATEMENT_TIMEOUT "'",
    "SELECT pg_advisory_xact_lock(" SCHEMA_KEY ")",
    "CREATE TABLE IF NOT EXISTS dav_schema_version(version integer NOT NULL)",
    "CREATE TABLE IF NOT EXISTS dav_props(path text COLLATE \"C\" NOT NULL, ns text NOT NULL,"
    " name text NOT NULL, xml text NOT NULL, PRIMARY KEY (path, ns, name))",
    "CREATE TABLE IF NOT EXISTS dav_locks(token text PRIMARY KEY, root text COLLATE \"C\" NOT NULL,"
    " depth integer NOT NULL, exclusive boolean NOT NULL, owner text, timeout bigint NOT NULL,"
    " expires timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS dav_locks_root ON dav_locks(root)",
    "INSERT INTO dav_schema_version SELECT " SCHEMA_VERSION
    " WHERE NOT EXISTS (SELECT 1 FROM dav_schema_version)",
};

/* The unexpired locks that matter to the paths in $1 (a text[]). */
static const char locks_sql[] =
    "SELECT token, root, depth, exclusive, owner, timeout,"
    " GREATEST(0, CEIL(EXTRACT(EPOCH FROM expires - now())))::bigint FROM dav_locks"
    " WHERE expires > now() AND EXISTS (SELECT 1 FROM unnest($1::text[]) AS q(p) WHERE"
    " root = '' OR root = p OR (p >= root || '/' AND p < root || '0')"
    " OR (p = '' AND root <> '') OR (root >= p || '/' AND root < p || '0'))";

/* The properties of $1 and, with $2, below it (depth is cut in C). */
static const char props_sql[] =
    "SELECT path, ns, name, xml FROM dav_props WHERE path = $1 OR ($2::boolean AND ($1 = '' OR"
    " (path >= $1 || '/' AND path < $1 || '0'))) ORDER BY path";

static const char lock_sweep_sql[] = "DELETE FROM dav_locks WHERE expires <= now()";
static const char lock_serialise_sql[] = "SELECT pg_advisory_xact_lock(" LOCK_KEY ")";
/* Inserts the lock unless an unexpired lock conflicts (dav_lock_conflicts). */
static const char lock_sql[] =
    "INSERT INTO dav_locks(token, root, depth, exclusive, owner, timeout, expires)"
    " SELECT $1, $2, $3::integer, $4::boolean, $5, $6::bigint, now() + $6::bigint * interval '1s'"
    " WHERE NOT EXISTS (SELECT 1 FROM dav_locks h WHERE h.expires > now()"
    " AND (h.exclusive OR $4::boolean) AND (h.root = $2"
    " OR (h.depth = -1 AND ((h.root = '' AND $2 <> '') OR ($2 >= h.root || '/' AND $2 < h.root || "
    "'0')))"
    " OR ($3::integer = -1 AND (($2 = '' AND h.root <> '') OR (h.root >= $2 || '/' AND h.root < $2 "
    "|| '0')))))";
static const char refresh_sql[] =
    "UPDATE dav_locks SET timeout = $2::bigint, expires = now() +"
    " $2::bigint * interval '1s' WHERE token = $1 AND expires > now()";
static const char unlock_sql[] = "DELETE FROM dav_locks WHERE token = $1 AND expires > now()";
static const char prop_set_sql[] =
    "INSERT INTO dav_props(path, ns, name, xml) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (path, ns, name) DO UPDATE SET xml = EXCLUDED.xml";
static const char prop_del_sql[] =
    "DELETE FROM dav_props WHERE path = $1 AND ns = $2 AND name = $3";
static const char props_drop_sql[] = "DELETE FROM dav_props WHERE " SUBTREE("path", "$1");
static const char locks_drop_sql[] = "DELETE FROM dav_locks WHERE " SUBTREE("root", "$1");
static const char transfer_read_sql[] =
    "CREATE TEMPORARY TABLE dav_moving ON COMMIT DROP AS SELECT $2 || substr(path, length($1) + 1)"
    " AS path, ns, name, xml FROM dav_props WHERE path = $1 OR ($3::boolean AND"
    " (path >= $1 || '/' AND path < $1 || '0'))";
static const char transfer_write_sql[] =
    "INSERT INTO dav_props(path, ns, name, xml) SELECT path, ns, name, xml FROM dav_moving";

/* ---- the pool of one worker ------------------------------------------ */

struct pg_conn {
    PGconn *c;
    bool ready; /* the schema is there and statement_timeout set */
    struct pg_conn *next;
};

struct pg_op;

struct pg_store {
    struct dav_store base;
    char *conninfo;
    pid_t pid;                           /* the process whose pool this is */
    struct pg_conn *idle;                /* connected, nothing in flight */
    int open;                            /* this process's connections, idle or busy */
    struct pg_op *wait_head, *wait_tail; /* operations waiting for one */
    struct pg_sweeper *sweeper;          /* this worker's, or NULL */
    pid_t sweeper_pid;
};

/* What a statement's result is for. */
enum role { R_NONE, R_LOCKS, R_PROPS, R_COUNT };

struct pg_stmt {
    const char *sql;
    int n;
    const char *v[6];
    enum role role;
};

struct pg_op {
    struct pg_store *s;
    struct dav_req *r;
    dav_store_done *done;
    struct pg_stmt *st;
    int nst, cap;
    const char *props_rel; /* R_PROPS: the depth cut */
    int props_depth;
    struct pg_conn *conn;
    int first;  /* the index of the first of the operation's own statements */
    int cur;    /* the statement whose results come next */
    long count; /* R_COUNT: rows affected */
    int none;   /* with an R_COUNT statement: the result if no row was */
    bool failed, finished, waiting;
    bool reserved; /* counted in s->open before its connection exists */
    struct verbd_watch *watch;
    struct verbd_timer *timer;
    struct pg_op *next_waiting;
};

static char *arena_strdup(struct verbd_exchange *x, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = verbd_alloc(x, n);
    memcpy(d, s, n);
    return d;
}

static struct pg_stmt *add(struct pg_op *op, const char *sql, enum role role)
{
    if (op->nst == op->cap) {
        int cap = op->cap ? op->cap * 2 : 8;
        struct pg_stmt *st = verbd_alloc(op->r->x, (size_t)cap * sizeof *st);
        if (op->nst)
            memcpy(st, op->st, (size_t)op->nst * sizeof *st);
        op->st = st;
        op->cap = cap;
    }
    struct pg_stmt *s = &op->st[op->nst++];
    *s = (struct pg_stmt){.sql = sql, .role = role};
    return s;
}

static void param(struct pg_op *op, struct pg_stmt *s, const char *v)
{
    s->v[s->n++] = arena_strdup(op->r->x, v);
}

static void param_long(struct pg_op *op, struct pg_stmt *s, long v)
{
    char b[24];
    snprintf(b, sizeof b, "%ld", v);
    param(op, s, b);
}

static void conn_close(struct pg_store *s, struct pg_conn *pc)
{
    PQfinish(pc->c);
    free(pc);
    s->open--;
}

static void op_send(struct pg_op *op);

/* An idle connection that still works, or NULL.  An idle connection
 * receives nothing: input on one means the server ended it (a restart
 * sends an error, then closes), found out here before anything is sent
 * on it that could then be lost. */
static struct pg_conn *pool_take(struct pg_store *s)
{
    while (s->idle) {
        struct pg_conn *pc = s->idle;
        s->idle = pc->next;
        struct pollfd p = {.fd = PQsocket(pc->c), .events = POLLIN};
        if (p.fd >= 0 && poll(&p, 1, 0) == 0 && PQstatus(pc->c) == CONNECTION_OK)
            return pc;
        conn_close(s, pc);
    }
    return NULL;
}

static void op_begin(struct verbd_exchange *x, void *arg);

/* A connection is free again (pc, or NULL when one was closed): the next
 * operation in line gets it, or opens one in its place.  Its turn comes
 * from the loop, from its own exchange. */
static void pool_give_back(struct pg_store *s, struct pg_conn *pc)
{
    if (pc && PQstatus(pc->c) == CONNECTION_OK && PQtransactionStatus(pc->c) == PQTRANS_IDLE) {
        pc->next = s->idle;
        s->idle = pc;
    } else if (pc) {
        conn_close(s, pc);
    }
    struct pg_op *w = s->wait_head;
    if (w && (s->idle || s->open < POOL_MAX)) {
        s->wait_head = w->next_waiting;
        if (!s->wait_head)
            s->wait_tail = NULL;
        w->waiting = false;
        w->conn = pool_take(s); /* NULL: it opens one */
        if (!w->conn)
            s->open++; /* the slot is its own */
        w->reserved = !w->conn;
        verbd_defer(w->r->x, op_begin, w);
    }
}

/* Takes op out of the line of operations waiting for a connection. */
static void unwait(struct pg_op *op)
{
    struct pg_op **p = &op->s->wait_head, *prev = NULL;
    while (*p && *p != op) {
        prev = *p;
        p = &(*p)->next_waiting;
    }
    if (*p)
        *p = op->next_waiting;
    if (op->s->wait_tail == op)
        op->s->wait_tail = prev;
    op->waiting = false;
}

/* Ends the operation: its connection back to the pool, its completion
 * called. */
static void op_finish(struct pg_op *op, int result)
{
    if (op->finished)
        return;
    op->finished = true;
    if (op->watch)
        verbd_watch_cancel(op->watch);
    if (op->timer)
        verbd_timer_cancel(op->timer);
    op->watch = NULL;
    if (op->waiting)
        unwait(op);
    else if (!op->conn && op->reserved)
        op->s->open--;
    op->reserved = false;
    struct pg_conn *pc = op->conn;
    op->conn = NULL;
    if (pc && result == DAV_STORE_DOWN) {
        conn_close(op->s, pc); /* its state is not to be trusted */
        pc = NULL;
    }
    pool_give_back(op->s, pc);
    op->done(op->r, result);
}

static void op_fail(struct pg_op *op, const char *what)
{
    const char *msg = op->conn ? PQerrorMessage(op->conn->c) : "";
    log_msg(LOG_ERROR, "webdav: PostgreSQL store: %s%s%.*s", what, *msg ? ": " : "",
            (int)strcspn(msg, "\n"), msg);
    op_finish(op, DAV_STORE_DOWN);
}

/* The exchange ended with the operation in flight or in line. */
static void op_cleanup(void *arg)
{
    struct pg_op *op = arg;
    if (op->finished)
        return;
    op->finished = true;
    if (op->waiting) {
        unwait(op);
        return;
    }
    if (op->conn)
        conn_close(op->s, op->conn);
    else if (op->reserved)
        op->s->open--;
    op->conn = NULL;
    pool_give_back(op->s, NULL);
}

static void op_timeout(struct verbd_exchange *x, void *arg)
{
    (void)x;
    struct pg_op *op = arg;
    op->timer = NULL;
    log_msg(LOG_ERROR, "webdav: PostgreSQL store: no answer in %d ms", OP_TIMEOUT_MS);
    op_finish(op, DAV_STORE_DOWN);
}

static void watch(struct pg_op *op, unsigned events,
                  void (*cb)(struct verbd_exchange *x, unsigned events, void *arg))
{
    if (op->watch)
        verbd_watch_cancel(op->watch);
    op->watch = verbd_watch(op->r->x, PQsocket(op->conn->c), events, cb, op);
}

/* ---- results ------------------------------------------------------------- */

static void rows_locks(struct pg_op *op, PGresult *res)
{
    struct dav_locks *out = &op->r->locks;
    int n = PQntuples(res);
    out->v = calloc((size_t)n + 1, sizeof *out->v);
    if (!out->v)
        abort();
    for (int i = 0; i < n; i++) {
        struct dav_lock *l = &out->v[out->n++];
        snprintf(l->token, sizeof l->token, "%s", PQgetvalue(res, i, 0));
        if (!(l->root = strdup(PQgetvalue(res, i, 1))))
            abort();
        l->depth = atoi(PQgetvalue(res, i, 2));
        l->exclusive = PQgetvalue(res, i, 3)[0] == 't';
        if (!PQgetisnull(res, i, 4) && !(l->owner = strdup(PQgetvalue(res, i, 4))))
            abort();
        l->timeout = atol(PQgetvalue(res, i, 5));
        l->left = atol(PQgetvalue(res, i, 6));
    }
}

static void rows_props(struct pg_op *op, PGresult *res)
{
    struct dav_props *out = &op->r->props;
    int n = PQntuples(res);
    out->v = calloc((size_t)n + 1, sizeof *out->v);
    if (!out->v)
        abort();
    for (int i = 0; i < n; i++) {
        const char *path = PQgetvalue(res, i, 0);
        if (!dav_within_depth(path, op->props_rel, op->props_depth))
            continue;
        struct dav_prop *p = &out->v[out->n++];
        if (!(p->path = strdup(path)) || !(p->ns = strdup(PQgetvalue(res, i, 1))) ||
            !(p->name = strdup(PQgetvalue(res, i, 2))) || !(p->xml = strdup(PQgetvalue(res, i, 3))))
            abort();
    }
}

static void op_result(struct pg_op *op, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED || st == PGRES_BAD_RESPONSE) {
        if (!op->failed && st != PGRES_PIPELINE_ABORTED) {
            const char *msg = PQresultErrorMessage(res);
            log_msg(LOG_ERROR, "webdav: PostgreSQL store: %.*s", (int)strcspn(msg, "\n"), msg);
        }
        op->failed = true;
        return;
    }
    if (op->cur < op->first || op->cur >= op->first + op->nst)
        return; /* the schema's */
    switch (op->st[op->cur - op->first].role) {
    case R_LOCKS: rows_locks(op, res); break;
    case R_PROPS: rows_props(op, res); break;
    case R_COUNT: op->count += atol(PQcmdTuples(res)); break;
    case R_NONE: break;
    }
}

static void on_results(struct verbd_exchange *x, unsigned events, void *arg)
{
    (void)x, (void)events;
    struct pg_op *op = arg;
    PGconn *c = op->conn->c;
    if (!PQconsumeInput(c)) {
        op_fail(op, "reading");
        return;
    }
    while (!PQisBusy(c)) {
        PGresult *res = PQgetResult(c);
        if (!res) {
            op->cur++; /* the end of one statement's results */
            continue;
        }
        bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
        if (!sync)
            op_result(op, res);
        PQclear(res);
        if (sync) {
            if (op->failed) {
                op_finish(op, DAV_STORE_DOWN);
                return;
            }
            op->conn->ready = true;
            op_finish(op, op->count > 0 ? DAV_STORE_OK : op->none);
            return;
        }
    }
}

/* Sends what libpq holds; while the server's socket buffer is full, it
 * may be sending to us too, which is read meanwhile (libpq's rule). */
static void on_flush(struct verbd_exchange *x, unsigned events, void *arg)
{
    (void)x;
    struct pg_op *op = arg;
    if ((events & VERBD_READABLE) && !PQconsumeInput(op->conn->c)) {
        op_fail(op, "reading");
        return;
    }
    int f = PQflush(op->conn->c);
    if (f < 0)
        op_fail(op, "sending");
    else if (f > 0)
        watch(op, VERBD_READABLE | VERBD_WRITABLE, on_flush);
    else
        watch(op, VERBD_READABLE, on_results);
}

/* ---- sending ------------------------------------------------------------- */

static bool send_stmt(struct pg_op *op, const char *sql, int n, const char *const *v)
{
    return PQsendQueryParams(op->conn->c, sql, n, NULL, v, NULL, NULL, 0) == 1;
}

static void op_send(struct pg_op *op)
{
    PGconn *c = op->conn->c;
    op->first = 0;
    op->cur = 0;
    bool ok = PQpipelineStatus(c) == PQ_PIPELINE_ON || PQenterPipelineMode(c) == 1;
    if (ok && !op->conn->ready) {
        for (size_t i = 0; i < sizeof schema_sql / sizeof schema_sql[0] && ok; i++)
            ok = send_stmt(op, schema_sql[i], 0, NULL);
        op->first = (int)(sizeof schema_sql / sizeof schema_sql[0]);
    }
    for (int i = 0; i < op->nst && ok; i++)
        ok = send_stmt(op, op->st[i].sql, op->st[i].n, op->st[i].v);
    if (ok)
        ok = PQpipelineSync(c) == 1;
    if (!ok) {
        op_fail(op, "sending");
        return;
    }
    on_flush(op->r->x, 0, op);
}

/* The server's notices go to the error log, not to stderr. */
static void notice(void *arg, const char *msg)
{
    (void)arg;
    log_msg(LOG_INFO, "webdav: PostgreSQL store: %.*s", (int)strcspn(msg, "\n"), msg);
}

static void on_connect(struct verbd_exchange *x, unsigned events, void *arg)
{
    (void)x, (void)events;
    struct pg_op *op = arg;
    switch (PQconnectPoll(op->conn->c)) {
    case PGRES_POLLING_READING: watch(op, VERBD_READABLE, on_connect); break;
    case PGRES_POLLING_WRITING: watch(op, VERBD_WRITABLE, on_connect); break;
    case PGRES_POLLING_OK:
        PQsetNoticeProcessor(op->conn->c, notice, NULL);
        if (PQsetnonblocking(op->conn->c, 1) != 0) {
            op_fail(op, "connecting");
            return;
        }
        op_send(op);
        break;
    default: op_fail(op, "connecting"); break;
    }
}

static void op_start(struct pg_op *op)
{
    struct pg_store *s = op->s;
    if (op->conn || (op->conn = pool_take(s))) {
        op_send(op);
        return;
    }
    if (!op->reserved && s->open >= POOL_MAX) {
        op->waiting = true;
        if (s->wait_tail)
            s->wait_tail->next_waiting = op;
        else
            s->wait_head = op;
        s->wait_tail = op;
        return;
    }
    if (!op->reserved)
        s->open++;
    op->reserved = false;
    static const char *const keys[] = {"dbname", "client_encoding", "application_name", NULL};
    const char *const values[] = {s->conninfo, "UTF8", "verbd", NULL};
    struct pg_conn *pc = calloc(1, sizeof *pc);
    if (!pc)
        abort();
    pc->c = PQconnectStartParams(keys, values, 1);
    op->conn = pc;
    if (!pc->c || PQstatus(pc->c) == CONNECTION_BAD) {
        op_fail(op, "connecting");
        return;
    }
    watch(op, VERBD_WRITABLE, on_connect);
}

static void op_begin(struct verbd_exchange *x, void *arg)
{
    (void)x;
    struct pg_op *op = arg;
    if (!op->finished) /* not timed out meanwhile */
        op_start(op);
}

/* A new operation of request r; its statements are added, then run. */
static struct pg_op *op_new(struct dav_store *vs, struct dav_req *r, dav_store_done *done)
{
    struct pg_store *s = (struct pg_store *)vs;
    if (s->pid != getpid()) {
        /* Inherited across fork: the parent's connections are not ours. */
        s->idle = NULL;
        s->open = 0;
        s->wait_head = s->wait_tail = NULL;
        s->pid = getpid();
    }
    struct pg_op *op = verbd_alloc(r->x, sizeof *op);
    *op = (struct pg_op){.s = s, .r = r, .done = done, .none = DAV_STORE_OK};
    verbd_cleanup(r->x, op_cleanup, op);
    return op;
}

/* Starts it from the loop: its completion never runs inside the call. */
static void op_run(struct pg_op *op)
{
    op->timer = verbd_timer(op->r->x, OP_TIMEOUT_MS, 0, op_timeout, op);
    verbd_defer(op->r->x, op_begin, op);
}

/* ---- the operations ------------------------------------------------------- */

/* A text[] literal of the paths. */
static char *text_array(const char *const *v, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += 2 * strlen(v[i]) + 3;
    char *out = malloc(len), *o = out;
    if (!out)
        abort();
    *o++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        *o++ = '"';
        for (const char *p = v[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                *o++ = '\\';
            *o++ = *p;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    return out;
}

static void op_load(struct dav_store *vs, struct dav_req *r, const struct dav_scope *q,
                    dav_store_done *done)
{
    struct pg_op *op = op_new(vs, r, done);
    if (q->npaths) {
        struct pg_stmt *st = add(op, locks_sql, R_LOCKS);
        char *arr = text_array(q->paths, q->npaths);
        param(op, st, arr);
        free(arr);
    }
    if (q->props_rel) {
        struct pg_stmt *st = add(op, props_sql, R_PROPS);
        param(op, st, q->props_rel);
        param(op, st, q->props_depth != 0 ? "true" : "false");
        op->props_rel = arena_strdup(r->x, q->props_rel);
        op->props_depth = q->props_depth;
    }
    op_run(op);
}

static void op_patch(struct dav_store *vs, struct dav_req *r, const char *rel,
                     const struct dav_patch *ops, size_t n, dav_store_done *done)
{
    struct pg_op *op = op_new(vs, r, done);
    for (size_t i = 0; i < n; i++) {
        struct pg_stmt *st = add(op, ops[i].set ? prop_set_sql : prop_del_sql, R_NONE);
        param(op, st, rel);
        param(op, st, ops[i].ns);
        param(op, st, ops[i].name);
        if (ops[i].set)
            param(op, st, ops[i].xml);
    }
    op_run(op);
}

static void op_lock(struct dav_store *vs, struct dav_req *r, const struct dav_lock *l,
                    dav_store_done *done)
{
    struct pg_op *op = op_new(vs, r, done);
    add(op, lock_serialise_sql, R_NONE);
    add(op, lock_sweep_sql, R_NONE);
    struct pg_stmt *st = add(op, lock_sql, R_COUNT);
    param(op, st, l->token);
    param(op, st, l->root);
    param_long(op, st, l->depth);
    param(op, st, l->exclusive ? "true" : "false");
    st->v[st->n++] = arena_strdup(r->x, l->owner); /* NULL stays NULL */
    param_long(op, st, l->timeout);
    op->none = DAV_STORE_CONFLICT; /* no row inserted: a conflicting lock */
    op_run(op);
}

static void op_token(struct dav_store *vs, struct dav_req *r, const char *sql, const char *token,
                     const long *timeout, dav_store_done *done)
{
    struct pg_op *op = op_new(vs, r, done);
    struct pg_stmt *st = add(op, sql, R_COUNT);
    param(op, st, token);
    if (timeout)
        param_long(op, st, *timeout);
    op->none = DAV_STORE_GONE; /* no such unexpired lock */
    op_run(op);
}

static void op_refresh(struct dav_store *vs, struct dav_req *r, const char *token, long timeout,
                       dav_store_done *done)
{
    op_token(vs, r, refresh_sql, token, &timeout, done);
}

static void op_unlock(struct dav_store *vs, struct dav_req *r, const char *token,
                      dav_store_done *done)
{
    op_token(vs, r, unlock_sql, token, NULL, done);
}

static void op_drop(struct dav_store *vs, struct dav_req *r, const char *rel, unsigned what,
                    dav_store_done *done)
{
    struct pg_op *op = op_new(vs, r, done);
    if (what & DAV_STORE_PROPS)
        param(op, add(op, props_drop_sql, R_NONE), rel);
    if (what & DAV_STORE_LOCKS)
        param(op, add(op, locks_drop_sql, R_NONE), rel);
    op_run(op);
}

static void op_transfer(struct dav_store *vs, struct dav_req *r, const char *src, const char *dst,
                        bool recursive, bool move, dav_store_done *done)
{
    struct pg_op *op = op_new(vs, r, done);
    struct pg_stmt *st = add(op, transfer_read_sql, R_NONE); /* read first: dst may hold src */
    param(op, st, src);
    param(op, st, dst);
    param(op, st, recursive ? "true" : "false");
    param(op, add(op, props_drop_sql, R_NONE), dst);
    if (move)
        param(op, add(op, props_drop_sql, R_NONE), src);
    add(op, transfer_write_sql, R_NONE);
    if (move)
        param(op, add(op, locks_drop_sql, R_NONE), src);
    op_run(op);
}

static void op_sweep_every(struct dav_store *vs, struct loop *loop, uint64_t ms)
{
    struct pg_store *s = (struct pg_store *)vs;
    if (s->sweeper && s->sweeper_pid == getpid())
        return;
    s->sweeper = pg_sweeper_start(loop, s->conninfo, ms);
    s->sweeper_pid = getpid();
}

static void op_sweep_stop(struct dav_store *vs)
{
    struct pg_store *s = (struct pg_store *)vs;
    if (s->sweeper && s->sweeper_pid == getpid())
        pg_sweeper_stop(s->sweeper);
    s->sweeper = NULL;
}

static void op_destroy(struct dav_store *vs)
{
    struct pg_store *s = (struct pg_store *)vs;
    if (s->pid == getpid())
        while (s->idle) {
            struct pg_conn *pc = s->idle;
            s->idle = pc->next;
            conn_close(s, pc);
        }
    free(s->conninfo);
    free(s);
}

static const struct dav_store_ops pg_ops = {
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

/* ---- schema set-up, blocking (verbd dav-store) ---------------------------- */

static int setup_fail(PGconn *c, const char *what, char *msg, size_t len)
{
    const char *why = PQerrorMessage(c);
    snprintf(msg, len, "%s: %.*s", what, (int)strcspn(why, "\n"), why);
    PQfinish(c);
    return -1;
}

/* One statement of the set-up: false (msg says why) if it failed. */
static bool setup_exec(PGconn *c, const char *sql, PGresult **out)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (ok && out)
        *out = res;
    else
        PQclear(res);
    return ok;
}

int dav_store_pg_setup(const char *conninfo, bool create, char *msg, size_t len)
{
    static const char *const keys[] = {"dbname", "client_encoding", "application_name", NULL};
    const char *const values[] = {conninfo, "UTF8", "verbd", NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    if (PQstatus(c) != CONNECTION_OK)
        return setup_fail(c, "cannot connect", msg, len);
    PGresult *res = NULL;
    /* Under the same advisory lock as a worker's first connection: nodes
     * starting meanwhile wait for this transaction. */
    if (!setup_exec(c, "BEGIN", NULL) || !setup_exec(c, schema_sql[0], NULL) ||
        !setup_exec(c, schema_sql[1], NULL) ||
        !setup_exec(
            c,
            "SELECT to_regclass('dav_schema_version') IS NOT NULL AND"
            " to_regclass('dav_props') IS NOT NULL AND to_regclass('dav_locks') IS NOT NULL",
            &res))
        return setup_fail(c, "reading the schema", msg, len);
    bool exists = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    long version = 0;
    if (exists) {
        if (!setup_exec(c, "SELECT COALESCE(MAX(version), 0) FROM dav_schema_version", &res))
            return setup_fail(c, "reading the schema version", msg, len);
        version = atol(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    if (!exists && !create) {
        snprintf(msg, len, "no schema here (verbd dav-store init creates it)");
        PQfinish(c);
        return -1;
    }
    if (version > atol(SCHEMA_VERSION)) {
        snprintf(msg, len, "schema version %ld is newer than this verbd's (%s)", version,
                 SCHEMA_VERSION);
        PQfinish(c);
        return -1;
    }
    /* Every statement is idempotent: what is missing is created. */
    for (size_t i = 2; i < sizeof schema_sql / sizeof schema_sql[0]; i++)
        if (!setup_exec(c, schema_sql[i], NULL))
            return setup_fail(c, "creating the schema", msg, len);
    if (!setup_exec(c, "COMMIT", NULL))
        return setup_fail(c, "committing", msg, len);
    if (!exists)
        snprintf(msg, len, "created the schema, version %s", SCHEMA_VERSION);
    else if (version < atol(SCHEMA_VERSION))
        snprintf(msg, len, "migrated the schema from version %ld to %s", version, SCHEMA_VERSION);
    else
        snprintf(msg, len, "schema version %s, up to date", SCHEMA_VERSION);
    PQfinish(c);
    return 0;
}

bool dav_store_pg_names(const char *value)
{
    return strncmp(value, "postgresql://", 13) == 0 || strncmp(value, "postgres://", 11) == 0;
}

/* The URI parses, and holds no password: that belongs in a password
 * file (PGPASSFILE, ~/.pgpass), never in the configuration or its logs.
 * Nothing is connected to. */
int dav_store_pg_check(const char *directive, const char *value, char *err, size_t errlen)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(value, &why);
    if (!opts) {
        snprintf(err, errlen, "%s: not a PostgreSQL connection URI: %.*s", directive,
                 why ? (int)strcspn(why, "\n") : 0, why ? why : "");
        PQfreemem(why);
        return -1;
    }
    int rc = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val) {
            snprintf(err, errlen,
                     "%s: the URI holds a password; put it in a password file "
                     "(PGPASSFILE or ~/.pgpass) instead",
                     directive);
            rc = -1;
        }
    PQconninfoFree(opts);
    return rc;
}

struct dav_store *dav_store_pg(const char *conninfo)
{
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s || !(s->conninfo = strdup(conninfo)))
        abort();
    s->base.ops = &pg_ops;
    s->pid = getpid();
    return &s->base;
}
