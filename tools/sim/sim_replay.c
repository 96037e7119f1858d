/*
 * sim_replay.c - replaying a trace through the real store in simulation
 * mode (sim.h): per request, a GetPrefix for its chain of blocks, then a
 * put of every block the prefix did not cover (with its chain position),
 * exactly what an inference engine in front of kvcached does.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "slab/kc_admit.h"
#include "slab/kc_store.h"
#include "ssd/kc_format.h"

#define SIM_NS 1
#define SIM_KEY_SEED 0x6b76636163686564ULL   /* "kvcached" */

int sim_geo_init(struct sim_geo *g, uint32_t want, uint32_t mem_slabs)
{
    uint32_t best_diff = UINT32_MAX;

    if (want == 0 || want > 4095)
        return -1;
    memset(g, 0, sizeof(*g));
    /* Slabs of m MiB, values of k * 4 KiB less their header: as many as
     * fit with the slab's summary and header (kc_format.h). */
    for (uint32_t m = 1; m <= 16 && best_diff != 0; m++) {
        uint32_t units = m * ((1u << 20) / FMT_BLOCK) - FMT_SLAB_HDR / FMT_BLOCK;
        for (uint32_t k = 1; k <= units; k++) {
            uint32_t span = k * FMT_BLOCK, n = (m << 20) / span;
            while (n > 0 && !fmt_slab_fits(m << 20, (uint64_t)n * span, n))
                n--;
            uint32_t diff = n > want ? n - want : want - n;
            if (diff < best_diff) {
                best_diff = diff;
                g->slab_size = m << 20;
                g->value_bytes = k * FMT_BLOCK - FMT_ITEM_HDR;
                g->blocks_per_slab = n;
            }
            if (n < want)
                break;
        }
    }
    g->mem_slabs = mem_slabs < 2 ? 2 : mem_slabs;
    return 0;
}

void sim_unwarm(const struct sim_trace *t, struct sim_result *r, const struct sim_result *w)
{
    if (t->warm == 0 || t->warm >= t->nreq)
        return;
    r->requests -= t->warm;
    r->refs -= t->req[t->warm].off;
    for (size_t i = 0; i < t->warm; i++)
        r->tokens -= t->req[i].input_len;
    r->present -= w->present;
    r->prefix_blocks -= w->prefix_blocks;
    r->hit_tokens -= w->hit_tokens;
    r->puts -= w->puts;
    r->skipped -= w->skipped;
    r->reinserts -= w->reinserts;
    r->reinsert_dropped -= w->reinsert_dropped;
    r->evictions -= w->evictions;
}

uint64_t sim_hit_tokens(const struct sim_req *r, uint32_t found)
{
    uint64_t t = (uint64_t)found * SIM_BLOCK_TOKENS;
    return t < r->input_len ? t : r->input_len;
}

void sim_key(uint32_t id, uint64_t *lo, uint64_t *hi)
{
    uint8_t b[4] = { (uint8_t)id, (uint8_t)(id >> 8), (uint8_t)(id >> 16), (uint8_t)(id >> 24) };
    XXH128_hash_t h = XXH3_128bits_withSeed(b, sizeof(b), SIM_KEY_SEED);
    *lo = h.low64;
    *hi = h.high64;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The store's log goes nowhere during a sweep; errors surface as counts. */
static void sim_log(void *arg, int level, const char *msg)
{
    (void)arg;
    if (level == 0)
        fprintf(stderr, "kvcache-sim: store: %s\n", msg);
}

/* Put one block, waiting for a flush if no memory slab is free. With a
 * real device the value is filled (id, then zeros) so that reads verify. */
static int sim_put(struct store *st, const struct kc_key *k, uint32_t pos, uint32_t hints,
                   uint32_t len, bool fill, uint32_t id)
{
    struct store_wslot ws;
    int rc;

    for (;;) {
        rc = store_put_reserve_hint(st, SIM_NS, k, pos, hints, len, &ws);
        if (rc != KC_EBUSY || !store_busy(st))
            break;
        if (store_poll(st, true) < 0)
            return KC_EIO;
    }
    if (rc != 0)
        return rc;
    if (fill) {
        memset(ws.buf, 0, len);
        memcpy(ws.buf, &id, sizeof(id));
    }
    return store_put_commit(st, &ws);   /* simulated: bytes left unwritten */
}

int sim_put_cost(const struct sim_geo *g, const char *policy, uint64_t capacity, uint64_t n,
                 const char *device, double *ns_per_put, char *err, size_t errlen)
{
    struct store_config cfg;
    struct store *st = NULL;
    struct timespec a, b;
    uint64_t nslabs = (capacity + g->blocks_per_slab / 2) / g->blocks_per_slab;
    int rc = 0;

    store_config_default(&cfg);
    cfg.simulate = device == NULL;
    cfg.path = device;
    cfg.fresh = true;
    cfg.device_size = FMT_DATA_OFF + (nslabs < 3 ? 3 : nslabs) * g->slab_size;
    cfg.slab_size = g->slab_size;
    cfg.memory = (uint64_t)g->mem_slabs * g->slab_size;
    cfg.min_item_size = g->value_bytes;
    cfg.evict = policy;
    cfg.log = sim_log;
    if (store_open(&cfg, &st, err, errlen) < 0)
        return -1;
    if (store_ns_open(st, SIM_NS, g->value_bytes, NULL, 0) < 0) {
        snprintf(err, errlen, "namespace");
        store_close(st);
        return -1;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    for (uint64_t i = 0; i < n && rc >= 0; i++) {
        struct kc_key k;
        sim_key((uint32_t)i, &k.lo, &k.hi);
        /* chains of 16; every other chain finished */
        rc = sim_put(st, &k, (uint32_t)(i % 16), (i / 16) % 2 ? ADMIT_HINT_DONE : 0,
                     g->value_bytes, false, 0);
        if (i % 16 == 15)
            store_poll(st, false);
    }
    while (rc >= 0 && store_busy(st))
        if (store_poll(st, true) < 0)
            break;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    store_close(st);
    if (rc < 0) {
        snprintf(err, errlen, "put: %s", kc_strerror(rc));
        return -1;
    }
    *ns_per_put = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) /
                  (double)(n ? n : 1);
    return 0;
}

int sim_replay(const struct sim_trace *t, const struct sim_geo *g,
               const char *policy, uint32_t param, uint64_t capacity,
               struct sim_result *r, char *err, size_t errlen)
{
    return sim_replay_dev(t, g, policy, param, capacity, NULL, r, err, errlen);
}

/* Wait until no write or read is in flight, so that a real device and the
 * simulated one see slabs reach the device at the same points. */
/* The store's put, copy and eviction counters into r (at the warm-up mark
 * and at the end). */
static void sim_store_counters(struct store *st, struct sim_result *r)
{
    struct store_stats ss;

    store_stats(st, &ss);
    r->puts = ss.puts;
    r->skipped = ss.puts_skipped;
    r->reinserts = ss.reinserts;
    r->reinsert_dropped = ss.reinsert_dropped;
    r->evictions = ss.evictions;
}

static void sim_settle(struct store *st)
{
    store_poll(st, false);
    while (store_busy(st))
        if (store_poll(st, true) < 0)
            break;
}

int sim_replay_dev(const struct sim_trace *t, const struct sim_geo *g,
                   const char *policy, uint32_t param, uint64_t capacity,
                   const char *device, struct sim_result *r, char *err, size_t errlen)
{
    struct store_config cfg;
    struct store *st = NULL;
    struct store_get_item *items = NULL;
    struct store_stats ss;
    uint32_t maxn = 1;
    double t0 = now_s();
    int rc;

    memset(r, 0, sizeof(*r));
    snprintf(r->trace, sizeof(r->trace), "%s", t->name);
    if (param != 0)
        snprintf(r->policy, sizeof(r->policy), "%s:%u", policy, param);
    else
        snprintf(r->policy, sizeof(r->policy), "%s", policy);
    r->capacity = capacity;
    r->requests = t->nreq;
    r->tokens = t->tokens;
    r->refs = t->nids;
    uint64_t nslabs = (capacity + g->blocks_per_slab / 2) / g->blocks_per_slab;
    if (nslabs < 3)
        nslabs = 3;
    r->slabs = nslabs;

    store_config_default(&cfg);
    cfg.simulate = device == NULL;
    cfg.path = device;
    cfg.fresh = true;
    cfg.device_size = FMT_DATA_OFF + nslabs * g->slab_size;
    cfg.slab_size = g->slab_size;
    cfg.memory = (uint64_t)g->mem_slabs * g->slab_size;
    cfg.min_item_size = g->value_bytes;
    cfg.evict = policy;
    cfg.evict_param = param;
    cfg.log = sim_log;
    rc = store_open(&cfg, &st, err, errlen);
    if (rc < 0)
        return -1;
    rc = store_ns_open(st, SIM_NS, g->value_bytes, NULL, 0);
    if (rc < 0) {
        snprintf(err, errlen, "namespace: %s", kc_strerror(rc));
        goto fail;
    }
    for (size_t i = 0; i < t->nreq; i++)
        if (t->req[i].nblocks > maxn)
            maxn = t->req[i].nblocks;
    items = calloc(maxn, sizeof(*items));
    if (items == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    struct sim_result w = *r;
    for (size_t i = 0; i < t->nreq; i++) {
        if (i == t->warm) {     /* the store's counters so far, too */
            sim_store_counters(st, r);
            sim_warm_at(t, i, r, &w);
        }
        const uint32_t *ids = sim_req_ids(t, i);
        uint32_t n = t->req[i].nblocks;
        const uint8_t *hint = t->hint != NULL ? t->hint + t->req[i].off : NULL;
        if (n == 0)
            continue;
        for (uint32_t b = 0; b < n; b++) {
            items[b] = (struct store_get_item){ 0 };
            sim_key(ids[b], &items[b].key.lo, &items[b].key.hi);
        }
        struct store_get gt = { .ns = SIM_NS, .items = items, .n = n, .prefix = true };
        if (store_get(st, &gt) < 0) {
            snprintf(err, errlen, "get: %s", kc_strerror(gt.status));
            goto fail;
        }
        uint32_t found = (uint32_t)gt.found;
        store_get_release(st, &gt);
        r->prefix_blocks += found;
        r->present += found;
        r->hit_tokens += sim_hit_tokens(&t->req[i], found);
        /* Blocks past the first miss that are present still count as
         * present (block hit ratio); they are not put again. */
        for (uint32_t b = found; b < n; b++) {
            struct store_item_info info;
            if (store_describe(st, SIM_NS, &items[b].key, &info) == 0) {
                r->present++;
                continue;
            }
            rc = sim_put(st, &items[b].key, b, hint != NULL && hint[b] ? ADMIT_HINT_DONE : 0,
                         g->value_bytes, device != NULL, ids[b]);
            if (rc < 0) {
                snprintf(err, errlen, "request %zu block %u: put: %s", i, b, kc_strerror(rc));
                goto fail;
            }
        }
        sim_settle(st);
    }
    sim_store_counters(st, r);
    store_stats(st, &ss);
    r->errors = ss.checksum_failures + ss.io_errors;
    sim_unwarm(t, r, &w);
    free(items);
    store_close(st);
    r->seconds = now_s() - t0;
    return 0;
fail:
    free(items);
    store_close(st);
    return -1;
}
