/*
 * test_sim.c - tests of the eviction policies (slab/kc_evict.c) and of the
 * simulator (tools/sim): each policy on a hand-made sequence of puts and
 * reads where the right victim is known, the exact bounds on a trace worked
 * out by hand, and the simulated device against a real file giving the same
 * hit ratios. Usage: test_sim NAME (one test) or no argument (all).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim.h"
#include "slab/kc_admit.h"
#include "slab/kc_store.h"
#include "ssd/kc_format.h"

static int failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                     \
        }                                                                   \
    } while (0)

#define NS 7

/* The store's warnings (no O_DIRECT on a simulated device) are expected. */
static void quiet_log(void *arg, int level, const char *msg)
{
    (void)arg;
    if (level == 0)
        fprintf(stderr, "store: %s\n", msg);
}

/* A simulated store of nslabs slabs of 4 blocks, 2 memory slabs. */
struct tstore {
    struct store *st;
    struct sim_geo g;
};

static void ts_open(struct tstore *t, const char *policy, uint32_t param, uint32_t nslabs)
{
    struct store_config cfg;
    char err[256];

    if (sim_geo_init(&t->g, 4, 2) < 0 || t->g.blocks_per_slab != 4) {
        fprintf(stderr, "geometry of 4 blocks per slab not found\n");
        exit(1);
    }
    store_config_default(&cfg);
    cfg.simulate = true;
    cfg.device_size = FMT_DATA_OFF + (uint64_t)nslabs * t->g.slab_size;
    cfg.slab_size = t->g.slab_size;
    cfg.memory = 2ull * t->g.slab_size;
    cfg.min_item_size = t->g.value_bytes;
    cfg.evict = policy;
    cfg.evict_param = param;
    cfg.log = quiet_log;
    if (store_open(&cfg, &t->st, err, sizeof(err)) < 0 ||
        store_ns_open(t->st, NS, t->g.value_bytes, NULL, 0) < 0) {
        fprintf(stderr, "store_open: %s\n", err);
        exit(1);
    }
}

/* Let writes finish, as the simulator does after each request. */
static void ts_settle(struct tstore *t)
{
    store_poll(t->st, false);
    while (store_busy(t->st))
        store_poll(t->st, true);
}

/* Put block id at chain position pos. */
static void ts_put(struct tstore *t, uint32_t id, uint32_t pos)
{
    struct store_wslot ws;
    struct kc_key k;
    int rc;

    sim_key(id, &k.lo, &k.hi);
    while ((rc = store_put_reserve(t->st, NS, &k, pos, t->g.value_bytes, &ws)) == KC_EBUSY)
        store_poll(t->st, true);
    CHECK(rc == 0);
    if (rc == 0)
        CHECK(store_put_commit(t->st, &ws) == 0);
}

/* Put a chain of n blocks first, first+1, ... at positions 0.. n-1. */
static void ts_put_chain(struct tstore *t, uint32_t first, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        ts_put(t, first + i, i);
    ts_settle(t);
}

/* GetPrefix of the chain first .. first+n-1; returns the leading run. */
static size_t ts_get_chain(struct tstore *t, uint32_t first, uint32_t n)
{
    struct store_get_item it[16];
    struct store_get g = { .ns = NS, .items = it, .n = n, .prefix = true };

    memset(it, 0, sizeof(it));
    for (uint32_t i = 0; i < n; i++)
        sim_key(first + i, &it[i].key.lo, &it[i].key.hi);
    CHECK(store_get(t->st, &g) == 0);
    store_get_release(t->st, &g);
    return g.found;
}

static bool ts_has(struct tstore *t, uint32_t id)
{
    struct store_item_info info;
    struct kc_key k;

    sim_key(id, &k.lo, &k.hi);
    return store_describe(t->st, NS, &k, &info) == 0;
}

enum { A = 100, B = 200, C = 300, D = 400, E = 500 };

/* fifo: the oldest slab goes, however often it was read. */
static void test_fifo(void)
{
    struct tstore t;

    ts_open(&t, "fifo", 0, 4);
    ts_put_chain(&t, A, 4);
    ts_put_chain(&t, B, 4);
    ts_put_chain(&t, C, 4);
    ts_put_chain(&t, D, 4);
    CHECK(ts_get_chain(&t, A, 4) == 4);
    ts_put_chain(&t, E, 4);
    for (uint32_t i = 0; i < 4; i++) {
        CHECK(!ts_has(&t, A + i));
        CHECK(ts_has(&t, B + i) && ts_has(&t, C + i) && ts_has(&t, D + i) && ts_has(&t, E + i));
    }
    store_close(t.st);
}

/* lru: a read slab goes to the young end, the least recent one goes. */
static void test_lru(void)
{
    struct tstore t;

    ts_open(&t, "lru", 0, 4);
    ts_put_chain(&t, A, 4);
    ts_put_chain(&t, B, 4);
    ts_put_chain(&t, C, 4);
    ts_put_chain(&t, D, 4);
    CHECK(ts_get_chain(&t, A, 2) == 2);
    ts_put_chain(&t, E, 4);
    for (uint32_t i = 0; i < 4; i++) {
        CHECK(ts_has(&t, A + i));
        CHECK(!ts_has(&t, B + i));
    }
    store_close(t.st);
}

/*
 * The reinsertion policies, 5 slabs: A and B written, A0 read twice and A1
 * once. Writing C leaves two slabs free, so the victim (A, the oldest) is
 * reclaimed ahead with its chosen blocks copied forward. Returns the blocks of A still there as a bit mask.
 */
static unsigned reinsert_case(const char *policy, uint32_t param, uint64_t *reinserts)
{
    struct tstore t;
    struct store_stats ss;
    unsigned mask = 0;

    ts_open(&t, policy, param, 5);
    ts_put_chain(&t, A, 4);
    ts_put_chain(&t, B, 4);
    CHECK(ts_get_chain(&t, A, 2) == 2);
    CHECK(ts_get_chain(&t, A, 1) == 1);
    ts_put_chain(&t, C, 4);
    for (uint32_t i = 0; i < 4; i++) {
        mask |= ts_has(&t, A + i) << i;
        CHECK(ts_has(&t, C + i));
    }
    store_stats(t.st, &ss);
    *reinserts = ss.reinserts;
    store_close(t.st);
    return mask;
}

static void test_reinsert(void)
{
    uint64_t n;

    CHECK(reinsert_case("reinsert", 1, &n) == 0x3);   /* A0, A1 kept */
    CHECK(n == 2);
    CHECK(reinsert_case("reinsert", 2, &n) == 0x1);   /* only A0 */
    CHECK(n == 1);
}

/* prefix: copies are paid from the budget, param percent of the blocks
 * put: 9 puts at 20% pay for one copy (the head, first in slot order), at
 * 10% for none, at 1000% for every read block. */
static void test_prefix(void)
{
    uint64_t n;

    CHECK(reinsert_case("prefix", 1000, &n) == 0x3);
    CHECK(n == 2);
    CHECK(reinsert_case("prefix", 20, &n) == 0x1);
    CHECK(n == 1);
    CHECK(reinsert_case("prefix", 10, &n) == 0x0);
    CHECK(n == 0);
}

/* Slab of block id, or UINT32_MAX if absent. */
static uint32_t ts_slab(struct tstore *t, uint32_t id)
{
    struct store_item_info info;
    struct kc_key k;

    sim_key(id, &k.lo, &k.hi);
    return store_describe(t->st, NS, &k, &info) == 0 ? info.slab : UINT32_MAX;
}

/* prefix: a budget short for good is spent on chain heads. Each round
 * writes a chain of 4 blocks and reads it twice; at 10% every victim offers
 * 4 blocks read twice for 0.4 copies earned. The threshold settles on
 * heads, loosening now and then when credit piles up: once settled, a head
 * must be copied at least 3 times as often as a block of a tail. A block
 * whose slab changed was copied. */
static void test_prefix_heads(void)
{
    enum { ROUNDS = 600, LATE = 200 };
    static uint32_t slab[ROUNDS * 4];
    struct tstore t;
    uint32_t late_heads = 0, late_tails = 0, early_tails = 0;

    ts_open(&t, "prefix", 10, 6);
    for (uint32_t r = 0; r < ROUNDS; r++) {
        uint32_t first = 1000 + 4 * r;
        ts_put_chain(&t, first, 4);
        for (uint32_t i = 0; i < 4; i++)
            slab[4 * r + i] = ts_slab(&t, first + i);
        CHECK(ts_get_chain(&t, first, 4) == 4);
        CHECK(ts_get_chain(&t, first, 4) == 4);
        for (uint32_t b = 0; b < 4 * r; b++) {
            uint32_t now = ts_slab(&t, 1000 + b);
            if (now == slab[b] || now == UINT32_MAX)
                continue;
            slab[b] = now;                 /* copied forward: count once */
            if (b % 4 == 0)
                late_heads += r >= LATE;
            else if (r >= LATE)
                late_tails++;
            else
                early_tails++;
        }
    }
    printf("copies: %u tail blocks early; late %u heads, %u tail blocks\n",
           early_tails, late_heads, late_tails);
    CHECK(early_tails > 0);     /* the threshold starts open */
    CHECK(late_heads > 0);
    CHECK(late_heads >= late_tails);   /* 1 head for 3 tail blocks a chain */
    store_close(t.st);
}

/* prefix: whatever is read, copies stay within the write budget. */
static void test_prefix_budget(void)
{
    struct sim_synth p;
    struct sim_trace t;
    struct sim_geo g;
    struct sim_result r, rr;
    char err[256];

    sim_synth_default(&p);
    p.conversations = 400;
    p.turns = 8;
    CHECK(sim_trace_synth(&t, &p, false) == 0);
    CHECK(sim_geo_init(&g, 16, 2) == 0);
    CHECK(sim_replay(&t, &g, "prefix", 0, 2000, &r, err, sizeof(err)) == 0);
    CHECK(sim_replay(&t, &g, "reinsert", 1, 2000, &rr, err, sizeof(err)) == 0);
    printf("chat trace at 2000 blocks: prefix WA %.3f hit %.4f, reinsert:1 WA %.3f hit %.4f\n",
           sim_wa(&r), sim_prefix_ratio(&r), sim_wa(&rr), sim_prefix_ratio(&rr));
    CHECK(r.reinserts > 0);
    CHECK(sim_wa(&r) <= 1.3 + 1e-9);
    CHECK(sim_replay(&t, &g, "prefix", 10, 2000, &r, err, sizeof(err)) == 0);
    CHECK(sim_wa(&r) <= 1.1 + 1e-9);
    sim_trace_deinit(&t);
}

/*
 * The bounds on requests [1 2 3] [1 2 4] [5] [1 2 3] at 2 blocks:
 * - infinite: present 2 + 3 of 10 references.
 * - MIN: keeps 1 and 2 (next used soonest), never admits 3, 4, 5 (used
 *   later than both, or never): present 2 + 2.
 * - block LRU, chains touched tail first: after [1 2 3] it holds {2, 1};
 *   [1 2 4] finds 1, 2 and leaves {2, 1}; [5] leaves {1, 5}; [1 2 3] finds 1.
 * - fifo-oracle admits 1, 2, 3 (pushing 1 out), then 1 and 2 again, never
 *   4 or 5: the last request finds 1 and 2.
 */
static void test_bounds(void)
{
    const uint32_t ids[] = { 1, 2, 3, 1, 2, 4, 5, 1, 2, 3 };
    const uint32_t len[] = { 3, 3, 1, 3 };
    struct sim_trace t;
    struct sim_result r;

    CHECK(sim_trace_from(&t, "hand", ids, len, 4) == 0);
    CHECK(sim_bound_infinite(&t, &r) == 0);
    CHECK(r.refs == 10 && r.present == 5 && r.prefix_blocks == 5);
    CHECK(r.hit_tokens == 5 * SIM_BLOCK_TOKENS && r.tokens == 10 * SIM_BLOCK_TOKENS);
    CHECK(sim_bound_min(&t, 2, &r) == 0);
    CHECK(r.present == 4 && r.prefix_blocks == 4 && r.evictions == 0);
    CHECK(sim_bound_min(&t, 3, &r) == 0);
    CHECK(r.present == 5);                      /* as much as infinite */
    CHECK(sim_bound_lru(&t, 2, &r) == 0);
    CHECK(r.present == 3 && r.prefix_blocks == 3);
    CHECK(sim_bound_fifo_oracle(&t, 2, &r) == 0);
    CHECK(r.present == 2 && r.prefix_blocks == 2 && r.evictions == 3);
    sim_trace_deinit(&t);
}

/* Put block id at chain position pos through admission with hints;
 * returns what the store said (KC_OK, KC_SKIPPED, ...). */
static int ts_put_hint(struct tstore *t, uint32_t id, uint32_t pos, uint32_t hints)
{
    struct store_wslot ws;
    struct kc_key k;
    int rc;

    sim_key(id, &k.lo, &k.hi);
    while ((rc = store_put_reserve_hint(t->st, NS, &k, pos, hints, t->g.value_bytes, &ws)) ==
           KC_EBUSY)
        store_poll(t->st, true);
    if (rc == 0)
        rc = store_put_commit(t->st, &ws);
    return rc;
}

/* Put the chain first .. first+n-1 with hints; returns how many were
 * skipped. */
static uint32_t ts_put_chain_hint(struct tstore *t, uint32_t first, uint32_t n, uint32_t hints)
{
    uint32_t skipped = 0;

    for (uint32_t i = 0; i < n; i++) {
        int rc = ts_put_hint(t, first + i, i, hints);
        CHECK(rc == KC_OK || rc == KC_SKIPPED || rc == KC_EXISTS);
        skipped += rc == KC_SKIPPED;
    }
    ts_settle(t);
    return skipped;
}

static uint64_t ts_stat_skipped(struct tstore *t)
{
    struct store_stats ss;
    store_stats(t->st, &ss);
    return ss.puts_skipped;
}

/* hint: while the device has never been full, a finished chain is stored
 * too; after the first eviction its blocks are refused (not stored,
 * counted, no write) while live chains are stored; puts without admission
 * (memcache, copies) are never refused; a present key stays KC_EXISTS. */
static void test_admit_hint(void)
{
    struct tstore t;

    ts_open(&t, "fifo+hint", 0, 4);
    CHECK(ts_put_chain_hint(&t, A, 4, ADMIT_HINT_DONE) == 0);
    CHECK(ts_has(&t, A + 3));
    ts_put_chain(&t, B, 4);
    ts_put_chain(&t, C, 4);
    ts_put_chain(&t, D, 4);
    ts_put_chain(&t, E, 4);                 /* the first eviction */
    CHECK(!ts_has(&t, A));
    CHECK(ts_put_chain_hint(&t, 600, 4, ADMIT_HINT_DONE) == 4);
    CHECK(!ts_has(&t, 600) && !ts_has(&t, 603) && ts_stat_skipped(&t) == 4);
    CHECK(ts_put_chain_hint(&t, 700, 4, 0) == 0);
    CHECK(ts_has(&t, 700) && ts_has(&t, 703));
    CHECK(ts_put_hint(&t, 700, 0, ADMIT_HINT_DONE) == KC_EXISTS);
    ts_put_chain(&t, 800, 2);               /* no admission: stored */
    CHECK(ts_has(&t, 800) && ts_has(&t, 801));
    store_close(t.st);
}

/* ghost: once the device is full, a block is stored the second time it is
 * put, a chain's head at once; hints are not looked at. */
static void test_admit_ghost(void)
{
    struct tstore t;

    ts_open(&t, "fifo+ghost", 0, 4);
    for (uint32_t c = 0; c < 5; c++)
        ts_put_chain(&t, A + 100 * c, 4);   /* full: the first eviction */
    CHECK(ts_put_chain_hint(&t, 900, 4, 0) == 3);
    CHECK(ts_has(&t, 900) && !ts_has(&t, 901));
    CHECK(ts_put_chain_hint(&t, 900, 4, ADMIT_HINT_DONE) == 0);
    CHECK(ts_has(&t, 901) && ts_has(&t, 903));
    store_close(t.st);
}

/* Specs: eviction and admission with their parameters; unknown names,
 * empty names and bad numbers are refused at open. */
static void test_admit_spec(void)
{
    const char *good[] = { "prefix:30+hint", "fifo+ghost:8", "lru+all", "prefix" };
    const char *bad[] = { "fifo+nosuch", "fifo+", "nosuch+hint", "fifo+hint:x", "+hint" };
    struct store_config cfg;
    struct store *st;
    char err[256];

    store_config_default(&cfg);
    cfg.simulate = true;
    cfg.device_size = FMT_DATA_OFF + 8ull * (1u << 20);
    cfg.slab_size = 1u << 20;
    cfg.memory = 2u << 20;
    cfg.log = quiet_log;
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        cfg.evict = good[i];
        CHECK(store_open(&cfg, &st, err, sizeof(err)) == 0);
        if (st != NULL)
            store_close(st);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        cfg.evict = bad[i];
        st = NULL;
        CHECK(store_open(&cfg, &st, err, sizeof(err)) < 0 && st == NULL);
    }
}

/* The hints the simulator derives: a request is done when no later one
 * holds its last block; replayed with them, hint admission writes less
 * than one block per block offered and finds at least what fifo finds on
 * the chat generator's trace. */
static void test_admit_trace(void)
{
    const uint32_t ids[] = { 1, 2, 3, 1, 2, 3, 4, 1, 5, 1, 5 };
    const uint32_t len[] = { 3, 4, 2, 2 };
    struct sim_trace t;
    struct sim_synth p;
    struct sim_geo g;
    struct sim_result f, h;
    char err[256];

    CHECK(sim_trace_from(&t, "hand", ids, len, 4) == 0);
    CHECK(sim_trace_hints(&t, SIM_HINTS_DONE) == 0);
    CHECK(!t.done[0] && t.done[1] && !t.done[2] && t.done[3]);
    sim_trace_deinit(&t);

    sim_synth_default(&p);
    p.conversations = 300;
    CHECK(sim_trace_synth(&t, &p, false) == 0);
    CHECK(sim_trace_hints(&t, SIM_HINTS_DONE) == 0);
    CHECK(sim_geo_init(&g, 63, 4) == 0);
    CHECK(sim_replay(&t, &g, "fifo", 0, 1000, &f, err, sizeof(err)) == 0);
    CHECK(sim_replay(&t, &g, "fifo+hint", 0, 1000, &h, err, sizeof(err)) == 0);
    printf("fifo %.4f (WA %.3f), fifo+hint %.4f (WA %.3f, %llu of %llu refused)\n",
           sim_prefix_ratio(&f), sim_wa(&f), sim_prefix_ratio(&h), sim_wa(&h),
           (unsigned long long)h.skipped, (unsigned long long)(h.puts + h.skipped));
    CHECK(f.skipped == 0 && h.skipped > 0 && sim_wa(&h) < 1.0);
    CHECK(sim_prefix_ratio(&h) >= sim_prefix_ratio(&f));
    CHECK(strcmp(h.policy, "fifo+hint") == 0);
    sim_trace_deinit(&t);
}


/* A hand trace for the hint modes and the statistics: r0 = 1 2 3, r1 = 1 2
 * 3 4 (continues r0), r2 = 1 6 7 and r3 = 1 6 8 (branch off at 6). r0 is
 * not finished (r1 holds its last block), r1, r2 and r3 are. */
static const uint32_t hand_ids[] = { 1, 2, 3, 1, 2, 3, 4, 1, 6, 7, 1, 6, 8 };
static const uint32_t hand_len[] = { 3, 4, 3, 3 };

/* Each mode marks the blocks it should, request by request: done every
 * block of a finished chain; shared only past the leading blocks another
 * request holds too; block exactly those no later request reads; none
 * nothing. Names parse both ways. */
static void test_trace_hints(void)
{
    static const uint8_t want[4][13] = {
        [SIM_HINTS_NONE] = { 0 },
        [SIM_HINTS_DONE] = { 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
        [SIM_HINTS_SHARED] = { 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1 },
        [SIM_HINTS_BLOCK] = { 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1 },
    };
    struct sim_trace t;

    CHECK(sim_trace_from(&t, "hand", hand_ids, hand_len, 4) == 0);
    for (int m = SIM_HINTS_NONE; m <= SIM_HINTS_BLOCK; m++) {
        CHECK(sim_hints_parse(sim_hints_name((enum sim_hints)m)) == m);
        CHECK(sim_trace_hints(&t, (enum sim_hints)m) == 0);
        CHECK(!t.done[0] && t.done[1] && t.done[2] && t.done[3]);
        CHECK((t.hint == NULL) == (m == SIM_HINTS_NONE));
        for (uint64_t r = 0; t.hint != NULL && r < t.nids; r++)
            if (t.hint[r] != want[m][r]) {
                fprintf(stderr, "mode %s reference %llu: hint %u\n",
                        sim_hints_name((enum sim_hints)m), (unsigned long long)r, t.hint[r]);
                failures++;
            }
    }
    CHECK(sim_hints_parse("chain") == -1 && sim_hints_parse("") == -1);
    sim_trace_deinit(&t);
}

/* The block mode is the perfect filter: replayed with it, fifo+hint never
 * writes a block, once the device has been full, that is not read again;
 * on the chat generator's trace it writes less than fifo and finds at
 * least as much as fifo and as fifo+hint with the done hints. */
static void test_admit_block_hints(void)
{
    struct sim_trace t;
    struct sim_synth p;
    struct sim_geo g;
    struct sim_result f, d, b;
    char err[256];

    sim_synth_default(&p);
    p.conversations = 300;
    CHECK(sim_trace_synth(&t, &p, false) == 0);
    CHECK(sim_geo_init(&g, 63, 4) == 0);
    CHECK(sim_trace_hints(&t, SIM_HINTS_NONE) == 0);
    CHECK(sim_replay(&t, &g, "fifo+hint", 0, 1000, &f, err, sizeof(err)) == 0);
    CHECK(sim_trace_hints(&t, SIM_HINTS_DONE) == 0);
    CHECK(sim_replay(&t, &g, "fifo+hint", 0, 1000, &d, err, sizeof(err)) == 0);
    CHECK(sim_trace_hints(&t, SIM_HINTS_BLOCK) == 0);
    CHECK(sim_replay(&t, &g, "fifo+hint", 0, 1000, &b, err, sizeof(err)) == 0);
    printf("no hints %.4f, done %.4f (WA %.3f), block %.4f (WA %.3f)\n", sim_prefix_ratio(&f),
           sim_prefix_ratio(&d), sim_wa(&d), sim_prefix_ratio(&b), sim_wa(&b));
    CHECK(f.skipped == 0 && b.skipped > d.skipped / 2 && sim_wa(&b) < 1.0);
    CHECK(sim_prefix_ratio(&b) >= sim_prefix_ratio(&f));
    CHECK(sim_prefix_ratio(&b) >= sim_prefix_ratio(&d));
    sim_trace_deinit(&t);

    /* By hand: six chains of 4 never read again fill a store of 3 slabs
     * of 4, then the chain 30 31 32 33, of which a later request reads 30
     * and 31 only. The done hints mark the whole chain (its last block is
     * not read again) and lose 30 and 31; the block hints keep them. */
    const uint32_t ids[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                             19, 20, 21, 22, 23, 24, 30, 31, 32, 33, 30, 31 };
    const uint32_t len[] = { 4, 4, 4, 4, 4, 4, 4, 2 };
    CHECK(sim_trace_from(&t, "hand", ids, len, 8) == 0);
    CHECK(sim_geo_init(&g, 4, 2) == 0);
    CHECK(sim_trace_hints(&t, SIM_HINTS_DONE) == 0);
    CHECK(sim_replay(&t, &g, "fifo+hint", 0, 12, &d, err, sizeof(err)) == 0);
    CHECK(sim_trace_hints(&t, SIM_HINTS_BLOCK) == 0);
    CHECK(sim_replay(&t, &g, "fifo+hint", 0, 12, &b, err, sizeof(err)) == 0);
    CHECK(d.prefix_blocks == 0 && b.prefix_blocks == 2);
    CHECK(b.skipped >= 2 && b.puts + b.skipped == 28);
    sim_trace_deinit(&t);
}

/* The statistics of the hand trace, worked out by hand. */
static void test_trace_stats(void)
{
    const uint64_t caps[] = { 1, 10 };
    struct sim_trace t;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    CHECK(f != NULL);
    CHECK(sim_trace_from(&t, "hand", hand_ids, hand_len, 4) == 0);
    CHECK(sim_trace_hints(&t, SIM_HINTS_DONE) == 0);
    CHECK(sim_trace_stats(&t, caps, 2, f) == 0);
    fclose(f);
    printf("%s", out);
    /* r0 starts a chain, r1 continues it, r2 and r3 branch off; 7 distinct
     * blocks, 4 first put by finished chains (4, 6, 7, 8), of which 6 is
     * read again */
    CHECK(strstr(out, "4 requests: 25.0% start a chain no earlier request holds, 0.0% are "
                      "wholly held by earlier ones, 75.0% continue or branch off one") != NULL);
    CHECK(strstr(out, "7 distinct blocks, 13 references; 57.1% of the blocks are first put by "
                      "a finished chain, 25.0% of those are read again") != NULL);
    /* first uses: 1, 2, 3 and 6 are read again (4 of 7); within 1 new
     * block put in between, 2, 3 and 6 (1 waits for 2 and 3) */
    CHECK(strstr(out, "  1           7       57.1%   42.9%  57.1%") != NULL);
    free(out);
    sim_trace_deinit(&t);
}

/* A trace file round trip: write, load, same chains; partial blocks. */
static void test_trace_io(void)
{
    char path[] = "/tmp/kvsim-trace-XXXXXX";
    struct sim_trace a, b;
    char err[256];
    int fd = mkstemp(path);

    CHECK(fd >= 0);
    close(fd);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"timestamp\": 5, \"input_length\": 1100, \"output_length\": 9, \"hash_ids\": [4, 7, 9]}\n"
               "{\"timestamp\": 6, \"input_length\": 1024, \"output_length\": 1, \"hash_ids\": [4, 7]}\n");
    fclose(f);
    CHECK(sim_trace_load(&a, path, false, err, sizeof(err)) == 0);
    CHECK(a.nreq == 2 && a.nids == 4 && a.req[0].nblocks == 2 && a.max_id == 8);
    CHECK(sim_trace_load(&b, path, true, err, sizeof(err)) == 0);
    CHECK(b.nids == 5 && b.req[0].nblocks == 3 && sim_req_ids(&b, 0)[2] == 9);
    CHECK(b.tokens == 2124);
    sim_trace_deinit(&b);
    CHECK(sim_trace_write(&a, path) == 0);
    CHECK(sim_trace_load(&b, path, false, err, sizeof(err)) == 0);
    CHECK(b.nids == a.nids && memcmp(a.ids, b.ids, a.nids * sizeof(uint32_t)) == 0);
    sim_trace_deinit(&a);
    sim_trace_deinit(&b);
    unlink(path);
}

/* The chat generator once left ids[] in generation order while requests
 * were sorted by arrival, and MIN (which walks ids[]) came out below the
 * infinite cache with room for every block. */
static void test_synth_order(void)
{
    struct sim_synth p;
    struct sim_trace t;
    struct sim_result inf, min;

    sim_synth_default(&p);
    p.conversations = 200;
    CHECK(sim_trace_synth(&t, &p, false) == 0);
    for (size_t i = 0; i + 1 < t.nreq; i++) {
        CHECK(t.req[i].t_ms <= t.req[i + 1].t_ms);
        CHECK(t.req[i].off + t.req[i].nblocks == t.req[i + 1].off);
    }
    CHECK(sim_bound_infinite(&t, &inf) == 0);
    CHECK(sim_bound_min(&t, t.nids, &min) == 0);
    CHECK(inf.present == min.present && inf.hit_tokens == min.hit_tokens);
    sim_trace_deinit(&t);
}

/* The simulated device and a real file give the same hit ratios: exactly
 * without copies, within 0.01 with them (a device reads a victim back in
 * the background). Simulation once offered a victim's blocks to the policy
 * in index order instead of slot order, and a budgeted policy kept other
 * blocks: 1.5 points apart on this trace. */
static void test_device(void)
{
    char dir[] = "/var/tmp/kvsim-XXXXXX";
    char path[64], err[256];
    const char *policies[] = { "fifo", "lru", "reinsert", "prefix", "fifo+hint", "fifo+ghost" };
    struct sim_synth p;
    struct sim_trace t;
    struct sim_geo g;

    if (mkdtemp(dir) == NULL) {
        printf("no temporary folder: skipped\n");
        return;
    }
    snprintf(path, sizeof(path), "%s/dev", dir);
    sim_synth_default(&p);
    p.conversations = 300;
    CHECK(sim_trace_synth(&t, &p, false) == 0);
    CHECK(sim_trace_hints(&t, SIM_HINTS_DONE) == 0);
    CHECK(sim_geo_init(&g, 63, 4) == 0);
    for (size_t i = 0; i < sizeof(policies) / sizeof(*policies); i++) {
        struct sim_result s, d;
        CHECK(sim_replay(&t, &g, policies[i], 0, 1000, &s, err, sizeof(err)) == 0);
        CHECK(sim_replay_dev(&t, &g, policies[i], 0, 1000, path, &d, err, sizeof(err)) == 0);
        printf("%s: simulated %.4f/%.4f, file %.4f/%.4f (block/prefix), %llu evictions, "
               "copies %llu/%llu, dropped %llu/%llu\n",
               policies[i], sim_block_ratio(&s), sim_prefix_ratio(&s), sim_block_ratio(&d),
               sim_prefix_ratio(&d), (unsigned long long)d.evictions,
               (unsigned long long)s.reinserts, (unsigned long long)d.reinserts,
               (unsigned long long)s.reinsert_dropped, (unsigned long long)d.reinsert_dropped);
        CHECK(s.evictions > 0 && d.errors == 0);
        if (s.reinserts == 0) {
            CHECK(s.present == d.present && s.hit_tokens == d.hit_tokens);
            CHECK(s.evictions == d.evictions && s.skipped == d.skipped);
        } else {
            /* a device reads a victim back in the background, so copies
             * are made a little later than in simulation */
            double dr = sim_prefix_ratio(&s) - sim_prefix_ratio(&d);
            CHECK(dr < 0.01 && dr > -0.01);
            CHECK(s.reinserts < d.reinserts * 1.02 && d.reinserts < s.reinserts * 1.02);
        }
    }
    sim_trace_deinit(&t);
    unlink(path);
    rmdir(dir);
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    { "fifo", test_fifo }, { "lru", test_lru }, { "reinsert", test_reinsert },
    { "prefix", test_prefix }, { "prefix-heads", test_prefix_heads }, { "prefix-budget", test_prefix_budget },
    { "bounds", test_bounds }, { "synth-min-order", test_synth_order }, { "trace-io", test_trace_io }, { "device", test_device },
    { "admit-hint", test_admit_hint }, { "admit-ghost", test_admit_ghost },
    { "admit-spec", test_admit_spec }, { "admit-trace", test_admit_trace },
    { "trace-hints", test_trace_hints }, { "admit-block-hints", test_admit_block_hints },
    { "trace-stats", test_trace_stats },
};

int main(int argc, char **argv)
{
    int ran = 0;

    for (size_t i = 0; i < sizeof(tests) / sizeof(*tests); i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
            continue;
        tests[i].fn();
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "");
        return 1;
    }
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
