/* What the gateway learnt from its upstreams: methods an upstream answered
 * 501 (DESIGN.md, "Origin servers and gateways"), each until its answer
 * goes stale, and, where the operator asks, the Allow of its OPTIONS *.
 * One table in memory shared by every worker (mapped before they fork,
 * kept across reloads), keyed by upstream and method, so a refusal learnt
 * by one worker is decided by all. */
#include "upstream/learn.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "core/clock.h"
#include "core/stats.h"
#include "http/method.h"

#define SLOTS 256
#define KEY_MAX 96 /* "upstream\nMETHOD" */

struct slot {
    char key[KEY_MAX];
    uint64_t expires_ms; /* clock_ms() time; 0: free */
};

/* An upstream's OPTIONS * Allow, and when a worker asks it next. */
#define ALLOW_SLOTS 32
#define NAME_MAX_LEN 64
#define ALLOW_MAX_LEN 512

struct allow_slot {
    char upstream[NAME_MAX_LEN];
    char allow[ALLOW_MAX_LEN];
    uint64_t expires_ms, ask_at_ms;
};

/* 405s without Allow, per upstream (the first MISSING_SLOTS upstreams
 * that sent one). */
#define MISSING_SLOTS 32

struct missing_slot {
    char upstream[NAME_MAX_LEN];
    uint64_t count;
};

struct table {
    atomic_flag lock;
    struct slot slots[SLOTS];
    struct allow_slot allows[ALLOW_SLOTS];
    struct missing_slot missing[MISSING_SLOTS];
};

static struct table *table;

int learn_init(void)
{
    if (table)
        return 0;
    void *p = mmap(NULL, sizeof *table, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    table = p;
    atomic_flag_clear(&table->lock);
    return 0;
}

static void lock(void)
{
    while (atomic_flag_test_and_set_explicit(&table->lock, memory_order_acquire))
        ;
}

static void unlock(void)
{
    atomic_flag_clear_explicit(&table->lock, memory_order_release);
}

/* The key of (upstream, method); false if it does not fit. */
static bool make_key(char *key, const char *upstream, const char *method, size_t len)
{
    size_t ul = strlen(upstream);
    if (ul + 1 + len + 1 > KEY_MAX)
        return false;
    memcpy(key, upstream, ul);
    key[ul] = '\n';
    memcpy(key + ul + 1, method, len);
    key[ul + 1 + len] = '\0';
    return true;
}

static unsigned hash(const char *key)
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

void learn_refusal(const char *upstream, const char *method, size_t len, uint64_t ttl_ms)
{
    char key[KEY_MAX];
    if (!table || !make_key(key, upstream, method, len))
        return;
    uint64_t now = clock_ms();
    unsigned h = hash(key);
    lock();
    /* Its own slot (a probe ends at a slot never used), else the first
     * stale one along the probe; with every slot live, the one that goes
     * stale first gives way. */
    struct slot *use = NULL, *free_slot = NULL, *soonest = NULL;
    for (unsigned i = 0; i < SLOTS; i++) {
        struct slot *s = &table->slots[(h + i) % SLOTS];
        if (s->key[0] == '\0') {
            if (!free_slot)
                free_slot = s;
            break;
        }
        if (strcmp(s->key, key) == 0) {
            use = s;
            break;
        }
        if (!free_slot && s->expires_ms <= now)
            free_slot = s;
        if (!soonest || s->expires_ms < soonest->expires_ms)
            soonest = s;
    }
    if (!use)
        use = free_slot ? free_slot : soonest;
    memcpy(use->key, key, strlen(key) + 1);
    use->expires_ms = now + ttl_ms;
    unlock();
}

uint64_t learn_from_501(const char *upstream, const struct http_request *h, int id, struct span cc,
                        uint64_t default_ttl_ms)
{
    if (!default_ttl_ms || id == METHOD_GET || id == METHOD_HEAD || id == METHOD_OPTIONS ||
        h->framing == BODY_CHUNKED || h->expect_continue || http_field_get(h, "Content-Range").p)
        return 0;
    uint64_t ttl = default_ttl_ms;
    struct span d;
    bool shared = false;
    while (http_list_next(&cc, &d)) {
        bool s = d.n > 9 && strncasecmp(d.p, "s-maxage=", 9) == 0;
        bool m = d.n > 8 && strncasecmp(d.p, "max-age=", 8) == 0;
        if ((d.n == 8 && strncasecmp(d.p, "no-store", 8) == 0) ||
            (d.n == 8 && strncasecmp(d.p, "no-cache", 8) == 0))
            return 0;
        if ((s || (m && !shared)) && strspn(d.p + (s ? 9 : 8), "0123456789") == d.n - (s ? 9 : 8)) {
            ttl = strtoull(d.p + (s ? 9 : 8), NULL, 10) * 1000;
            shared = shared || s;
        }
    }
    if (ttl)
        learn_refusal(upstream, h->method.p, h->method.n, ttl);
    return ttl;
}

uint64_t learnt_refusal(const char *upstream, const char *method, size_t len)
{
    char key[KEY_MAX];
    if (!table || !make_key(key, upstream, method, len))
        return 0;
    uint64_t now = clock_ms(), left = 0;
    unsigned h = hash(key);
    lock();
    for (unsigned i = 0; i < SLOTS; i++) {
        const struct slot *s = &table->slots[(h + i) % SLOTS];
        if (s->key[0] == '\0')
            break;
        if (strcmp(s->key, key) == 0) {
            left = s->expires_ms > now ? s->expires_ms - now : 0;
            break;
        }
    }
    unlock();
    return left;
}

/* The upstream's slot, made if `make` (taking a free one, else the one
 * that went stale first); NULL if none.  Under the lock. */
static struct allow_slot *allow_slot(const char *upstream, bool make)
{
    struct allow_slot *empty = NULL, *stalest = NULL;
    for (unsigned i = 0; i < ALLOW_SLOTS; i++) {
        struct allow_slot *s = &table->allows[i];
        if (s->upstream[0] == '\0') {
            if (!empty)
                empty = s;
        } else if (strcmp(s->upstream, upstream) == 0) {
            return s;
        } else if (!stalest || s->expires_ms < stalest->expires_ms) {
            stalest = s;
        }
    }
    if (!make || strlen(upstream) >= NAME_MAX_LEN)
        return NULL;
    struct allow_slot *use = empty ? empty : stalest;
    memset(use, 0, sizeof *use);
    strcpy(use->upstream, upstream);
    return use;
}

void learn_allow(const char *upstream, const char *allow, size_t len, uint64_t ttl_ms)
{
    if (!table || len >= ALLOW_MAX_LEN)
        return;
    lock();
    struct allow_slot *s = allow_slot(upstream, true);
    if (s) {
        memcpy(s->allow, allow, len);
        s->allow[len] = '\0';
        s->expires_ms = clock_ms() + ttl_ms;
    }
    unlock();
}

static bool list_has(const char *list, const char *method, size_t len)
{
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, " \t,");
        if (n == len && memcmp(p, method, len) == 0)
            return true;
        p += n;
    }
    return false;
}

int learnt_allow_lists(const char *upstream, const char *method, size_t len)
{
    if (!table)
        return -1;
    int answer = -1;
    lock();
    const struct allow_slot *s = allow_slot(upstream, false);
    if (s && s->expires_ms > clock_ms())
        answer = list_has(s->allow, method, len) ||
                 (len == 4 && memcmp(method, "HEAD", 4) == 0 && list_has(s->allow, "GET", 3));
    unlock();
    return answer;
}

bool learn_claim_asking(const char *upstream, uint64_t every_ms)
{
    if (!table)
        return false;
    uint64_t now = clock_ms();
    bool mine = false;
    lock();
    struct allow_slot *s = allow_slot(upstream, true);
    if (s && s->ask_at_ms <= now) {
        s->ask_at_ms = now + every_ms;
        mine = true;
    }
    unlock();
    return mine;
}

void learn_missing_allow(const char *upstream)
{
    if (!table || strlen(upstream) >= NAME_MAX_LEN)
        return;
    lock();
    for (unsigned i = 0; i < MISSING_SLOTS; i++) {
        struct missing_slot *s = &table->missing[i];
        if (s->upstream[0] == '\0')
            strcpy(s->upstream, upstream);
        if (strcmp(s->upstream, upstream) == 0) {
            s->count++;
            break;
        }
    }
    unlock();
}

void learn_metrics(struct buf *out)
{
    buf_puts(out, "# HELP verbd_gateway_405_without_allow_total 405 answers an upstream sent "
                  "without the Allow field RFC 9110 requires, by upstream.\n"
                  "# TYPE verbd_gateway_405_without_allow_total counter\n");
    if (table) {
        static struct missing_slot missing[MISSING_SLOTS];
        lock();
        memcpy(missing, table->missing, sizeof missing);
        unlock();
        for (unsigned i = 0; i < MISSING_SLOTS && missing[i].upstream[0]; i++) {
            buf_puts(out, "verbd_gateway_405_without_allow_total{upstream=");
            stats_put_label(out, missing[i].upstream, strlen(missing[i].upstream));
            buf_puts(out, "} ");
            buf_put_u64(out, missing[i].count);
            buf_puts(out, "\n");
        }
    }
    buf_puts(out, "# HELP verbd_gateway_learnt_refusal_seconds Methods an upstream answered 501, "
                  "refused here without asking it until the answer goes stale: seconds left, by "
                  "upstream and method.\n"
                  "# TYPE verbd_gateway_learnt_refusal_seconds gauge\n");
    if (!table)
        return;
    /* A copy of the live slots, formatted after the lock is let go. */
    static struct slot live[SLOTS];
    unsigned n = 0;
    uint64_t now = clock_ms();
    lock();
    for (unsigned i = 0; i < SLOTS; i++)
        if (table->slots[i].key[0] && table->slots[i].expires_ms > now)
            live[n++] = table->slots[i];
    unlock();
    for (unsigned i = 0; i < n; i++) {
        const char *key = live[i].key, *nl = strchr(key, '\n');
        if (!nl)
            continue;
        buf_puts(out, "verbd_gateway_learnt_refusal_seconds{upstream=");
        stats_put_label(out, key, (size_t)(nl - key));
        buf_puts(out, ",method=");
        stats_put_label(out, nl + 1, strlen(nl + 1));
        buf_puts(out, "} ");
        buf_put_u64(out, (live[i].expires_ms - now + 999) / 1000);
        buf_puts(out, "\n");
    }
}
