/*
 * test_ns_counts_evict.c - a namespace's live counts right after an eviction.
 *
 * store_ns_info.items and .bytes are the namespace's live blocks; after a
 * slab is reclaimed they must agree with the store's own counters and with
 * what the index holds, on a device with many slabs (where one eviction's
 * incremental index sweep covers only part of the table).
 */
#include "kt.h"

enum { NS = 50 };
#define BLK (32 * KT_KIB)

static int count_cb(const struct store_item_info *ii, void *arg)
{
    (void)ii;
    (*(uint64_t *)arg)++;
    return 0;
}

int main(void)
{
    kt_begin("ns_counts_evict");
    char path[4200];
    struct store_config cfg;
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 160 * KT_MIB,
              1 * KT_MIB, 4 * KT_MIB, BLK);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));

    uint64_t i = 0;
    for (; kt_stats(st).evictions < 1; i++) {
        KT_PUT(st, NS, i, BLK);
        KT_CHECK(i < 100000);
    }
    struct store_stats s = kt_stats(st);
    struct store_ns_info ni;
    KT_OK(store_ns_get(st, NS, &ni));
    uint64_t walked = 0;
    store_foreach_item(st, count_cb, &walked);
    printf("  %" PRIu64 " puts, %" PRIu64 " slabs, %" PRIu64 " eviction(s), %"
           PRIu64 " evicted items: store %" PRIu64 " items, index %" PRIu64
           ", namespace %" PRIu64 "\n", i, s.ssd_slabs, s.evictions,
           s.evicted_items, s.items, walked, ni.items);
    KT_EQ(walked, s.items);
    KT_EQ(ni.items, s.items);
    KT_EQ(ni.bytes, s.bytes);
    KT_CLOSE(st);
    printf("ns_counts_evict: ok\n");
    return 0;
}
