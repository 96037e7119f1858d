/*
 * test_generation_wrap.c - the index keeps 12 bits of slab generation. Under
 * LRU a store whose other slabs stay hot reclaims the same few slabs over
 * and over: their generations come round to the values of entries evicted
 * long ago many times, in an index large enough that those entries are not
 * overwritten or swept out by a full table. A stale entry must never come
 * back (match, describe), and the counts must stay exact (audit). Run in
 * the store's simulation mode: the generation logic is the same, and a
 * device run would write tens of GiB.
 */
#include "kt.h"

enum { NS = 3, SLAB = 4 * 1024 * 1024, BLK = 1300 * 1024, PER_SLAB = 3, NSLABS = 40 };

/* Put key i without a payload (simulation: values are never read). */
static void put_nodata(struct store *st, uint64_t i)
{
    struct store_wslot ws;
    struct kc_key k = kt_key(i);
    int rc;

    while ((rc = store_put_reserve(st, NS, &k, (uint32_t)i, BLK, &ws)) == KC_EBUSY)
        KT_CHECK(store_poll(st, true) >= 0);
    KT_EQ(rc, KC_OK);
    KT_EQ(store_put_commit(st, &ws), KC_OK);
}

/* True if key i is indexed. */
static bool present(struct store *st, uint64_t i)
{
    struct kc_key k = kt_key(i);
    struct store_item_info info;
    bool m = store_match(st, NS, &k, 1) == 1;
    KT_EQ(m, store_describe(st, NS, &k, &info) == KC_OK);
    return m;
}

/* Read key i (simulation: a hit with no bytes), making its slab recent. */
static void touch(struct store *st, uint64_t i)
{
    struct store_get_item it = { .key = kt_key(i) };
    struct store_get g = { .ns = NS, .items = &it, .n = 1 };
    KT_OK(store_get(st, &g));
    KT_EQ(it.status, KC_OK);
    store_get_release(st, &g);
}

int main(void)
{
    kt_begin("generation_wrap");
    struct store_config cfg;
    /* The index is sized for 4 KiB blocks: about 46,000 entries for the few
     * hundred live blocks, so stale entries are not simply reused. */
    kt_config(&cfg, NULL, 1 * KT_MIB + (uint64_t)NSLABS * SLAB, SLAB, 2ull * SLAB,
              4 * KT_KIB);
    cfg.simulate = true;
    cfg.evict = "lru";
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    KT_EQ(store_nslabs(st), NSLABS);

    /* Hot blocks: all slabs but a few, read after every put. */
    const uint64_t hot = (NSLABS - 4) * PER_SLAB;
    for (uint64_t i = 0; i < hot; i++)
        put_nodata(st, i);
    KT_OK(store_flush(st));
    KT_EQ(kt_stats(st).items, hot);
    uint64_t rng = kt_seed, i = hot;
    while (kt_stats(st).evictions < 3 * 2 * 4096) {
        put_nodata(st, i);
        for (uint64_t h = 0; h < hot; h += PER_SLAB)
            touch(st, h);
        if (i % 61 == 0) {
            /* A sample of cold keys put long ago (all evicted). */
            for (int j = 0; j < 8 && i > hot + 64; j++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                uint64_t old = hot + (rng >> 11) % (i - hot - 64);
                KT_CHECKF(!present(st, old), "key %" PRIu64 " came back after %" PRIu64
                          " puts", old, i);
            }
        }
        if (i % 5000 == 0)
            KT_AUDIT(st);
        i++;
    }
    struct store_stats s = kt_stats(st);
    printf("  %" PRIu64 " puts, %" PRIu64 " evictions, index of %" PRIu64 " entries\n",
           i, s.evictions, s.index_capacity);
    /* Every key: the hot ones and the last few cold ones, nothing else. */
    uint64_t found = 0;
    for (uint64_t k = 0; k < i; k++) {
        bool p = present(st, k);
        KT_CHECKF(k < hot || !p || k + 64 >= i, "key %" PRIu64 " of %" PRIu64 " came back",
                  k, i);
        KT_CHECKF(k >= hot || p, "hot key %" PRIu64 " was evicted", k);
        found += p;
    }
    KT_EQ(found, kt_stats(st).items);
    KT_CLOSE(st);
    printf("generation_wrap: ok\n");
    return 0;
}
