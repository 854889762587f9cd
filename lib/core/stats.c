/* The shared counters of stats.h.  The region: a header, the server
 * labels, one struct stats_worker per worker, then per worker one block
 * per label.  Pages of blocks nobody counts in are never touched, so
 * room for labels a reload may add costs address space only. */
#include "core/stats.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "core/log.h"

enum { LABEL_FREE, LABEL_CLAIMING, LABEL_SET };

struct label {
    uint32_t state; /* LABEL_*, read and written atomically */
    char name[STATS_NAME_MAX];
};

struct region {
    unsigned workers, servers;
    int64_t started;
    size_t size;
    struct label *labels;
    struct stats_worker *per_worker;
    struct stats_block *blocks; /* [worker][server] */
};

/* The header lives in the region too, so a process forked from the one
 * that mapped it finds it; this pointer is inherited with the mapping. */
static struct region *region;

struct stats_block *stats_blocks;
struct stats_worker *stats_self;

#define OTHER_LABEL "(other)"

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

int stats_open(unsigned workers, unsigned servers)
{
    if (region && region->workers >= workers && region->servers >= servers)
        return 0;
    size_t head = round_up(sizeof *region, 64);
    size_t labels = round_up(servers * sizeof(struct label), 64);
    size_t per_worker = workers * sizeof(struct stats_worker);
    size_t blocks = (size_t)workers * servers * sizeof(struct stats_block);
    size_t size = head + labels + per_worker + blocks;
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        log_msg(LOG_WARN, "status counters: no shared memory (%zu bytes); nothing is counted",
                size);
        return -1;
    }
    if (region)
        munmap(region, region->size);
    region = (struct region *)p;
    region->workers = workers;
    region->servers = servers;
    region->started = (int64_t)time(NULL);
    region->size = size;
    region->labels = (struct label *)(p + head);
    region->per_worker = (struct stats_worker *)(p + head + labels);
    region->blocks = (struct stats_block *)(p + head + labels + per_worker);
    /* The last label takes whatever finds no room of its own. */
    struct label *last = &region->labels[servers - 1];
    memcpy(last->name, OTHER_LABEL, sizeof OTHER_LABEL);
    last->state = LABEL_SET;
    stats_blocks = NULL;
    stats_self = NULL;
    return 0;
}

void stats_enter_worker(unsigned index)
{
    if (!region || index >= region->workers)
        return;
    stats_self = &region->per_worker[index];
    stats_blocks = &region->blocks[(size_t)index * region->servers];
    /* The connections of a worker that died went with it. */
    for (int i = 0; i < STATS_CONN_STATES; i++)
        __atomic_store_n(&stats_self->conns[i], 0, __ATOMIC_RELAXED);
}

static int find_label(const char *name, unsigned below)
{
    for (unsigned i = 0; i < below; i++) {
        struct label *l = &region->labels[i];
        if (__atomic_load_n(&l->state, __ATOMIC_ACQUIRE) == LABEL_SET && strcmp(l->name, name) == 0)
            return (int)i;
    }
    return -1;
}

int stats_server(const char *name)
{
    if (!region)
        return -1;
    char cut[STATS_NAME_MAX];
    snprintf(cut, sizeof cut, "%s", name);
    int i = find_label(cut, region->servers);
    if (i >= 0)
        return i;
    /* The supervisor and every worker settle the same sites on a reload:
     * the first claims the label and the others find it.  Two that claim
     * the same name at once get a label each; the readers add up labels
     * of the same name. */
    for (unsigned j = 0; j + 1 < region->servers; j++) {
        struct label *l = &region->labels[j];
        uint32_t expect = LABEL_FREE;
        if (__atomic_compare_exchange_n(&l->state, &expect, LABEL_CLAIMING, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            memcpy(l->name, cut, strlen(cut) + 1);
            __atomic_store_n(&l->state, LABEL_SET, __ATOMIC_RELEASE);
            return (int)j;
        }
    }
    return (int)region->servers - 1;
}

void stats_response(int server, int method_id, int status, int proto)
{
    if (!stats_blocks || server < 0)
        return;
    struct stats_block *b = &stats_blocks[server];
    int m = method_id >= 0 && method_id < METHOD_REGISTERED_COUNT ? method_id : STATS_METHOD_OTHER;
    int c = http_status_index(status);
    if (c < 0)
        c = HTTP_STATUS_COUNT + (status < 200 ? 0 : status >= 500 ? 4 : status / 100 - 1);
    stats_add(&b->requests[m][c], 1);
    stats_add(&b->protocols[proto], 1);
    if (method_id >= 0 && (status == 501 || status == 405))
        stats_add(&b->refusals[m][status == 405], 1);
}

unsigned stats_servers(void)
{
    if (!region)
        return 0;
    unsigned n = 0;
    for (unsigned i = 0; i < region->servers; i++)
        if (__atomic_load_n(&region->labels[i].state, __ATOMIC_ACQUIRE) == LABEL_SET)
            n = i + 1;
    return n;
}

const char *stats_server_name(unsigned i)
{
    if (!region || i >= region->servers ||
        __atomic_load_n(&region->labels[i].state, __ATOMIC_ACQUIRE) != LABEL_SET)
        return NULL;
    const char *name = region->labels[i].name;
    return find_label(name, i) < 0 ? name : NULL; /* a twin's counters are the first's */
}

static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Adds one label's blocks. */
static void sum_label(unsigned i, struct stats_block *sum)
{
    for (unsigned w = 0; w < region->workers; w++) {
        const struct stats_block *b = &region->blocks[(size_t)w * region->servers + i];
        for (int m = 0; m < STATS_METHODS; m++) {
            for (int c = 0; c < STATS_CODES; c++)
                sum->requests[m][c] += load(&b->requests[m][c]);
            sum->refusals[m][0] += load(&b->refusals[m][0]);
            sum->refusals[m][1] += load(&b->refusals[m][1]);
        }
        for (int p = 0; p < STATS_PROTOS; p++)
            sum->protocols[p] += load(&b->protocols[p]);
    }
}

void stats_sum_server(unsigned i, struct stats_block *sum)
{
    const char *name = stats_server_name(i);
    if (!name)
        return;
    for (unsigned j = i; j < region->servers; j++)
        if (__atomic_load_n(&region->labels[j].state, __ATOMIC_ACQUIRE) == LABEL_SET &&
            strcmp(region->labels[j].name, name) == 0)
            sum_label(j, sum);
}

unsigned stats_workers(void)
{
    return region ? region->workers : 0;
}

void stats_add_worker(unsigned w, struct stats_worker *sum)
{
    if (!region || w >= region->workers)
        return;
    const struct stats_worker *s = &region->per_worker[w];
    sum->received += load(&s->received);
    sum->sent += load(&s->sent);
    sum->accepted += load(&s->accepted);
    for (int i = 0; i < STATS_CONN_STATES; i++)
        sum->conns[i] += load(&s->conns[i]);
    for (int p = 0; p < STATS_PROTOS; p++)
        sum->sessions[p] += load(&s->sessions[p]);
}

int64_t stats_started(void)
{
    return region ? region->started : 0;
}

const char *stats_proto_label(int proto)
{
    static const char *const labels[STATS_PROTOS] = {
        [STATS_PROTO_HTTP10] = "http/1.0",
        [STATS_PROTO_HTTP11] = "http/1.1",
        [STATS_PROTO_H2] = "h2",
    };
    return labels[proto];
}

const char *stats_method_label(int i)
{
    return i < METHOD_REGISTERED_COUNT ? method_name(i) : "other";
}

const char *stats_code_label(int i, char *out)
{
    int code = i < HTTP_STATUS_COUNT ? http_status_at(i) : (i - HTTP_STATUS_COUNT + 1) * 100;
    out[0] = (char)('0' + code / 100 % 10);
    out[1] = i < HTTP_STATUS_COUNT ? (char)('0' + code / 10 % 10) : 'x';
    out[2] = i < HTTP_STATUS_COUNT ? (char)('0' + code % 10) : 'x';
    out[3] = '\0';
    return out;
}

void stats_put_label(struct buf *b, const char *s, size_t n)
{
    buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        const char *esc = s[i] == '\\'   ? "\\\\"
                          : s[i] == '"'  ? "\\\""
                          : s[i] == '\n' ? "\\n"
                                         : NULL;
        if (esc)
            buf_puts(b, esc);
        else
            buf_append(b, s + i, 1);
    }
    buf_append(b, "\"", 1);
}
