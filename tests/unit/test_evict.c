/*
 * test_evict.c - eviction when the device is full.
 *
 * Five times the device's capacity is written in one class: every put
 * succeeds, whole slabs are reclaimed oldest first (fifo), the newest blocks
 * read back byte-identical, the oldest are gone, and the counters agree
 * with what a scan of every key finds.
 */
#include "kt.h"

enum { NS = 6, NS2 = 7 };
#define BLK (32 * KT_KIB)
#define DEV (8 * KT_MIB)
#define MEM (2 * KT_MIB)

static int count_cb(const struct store_item_info *ii, void *arg)
{
    (void)ii;
    (*(uint64_t *)arg)++;
    return 0;
}

/*
 * Policies by name: an unknown one is refused at open; with "lru", a slab
 * read often survives the writes that evict its neighbours.
 */
static void test_policies(const char *path)
{
    struct store_config cfg;
    kt_config(&cfg, path, DEV, 1 * KT_MIB, MEM, 4 * KT_KIB);
    cfg.fresh = true;
    cfg.evict = "no-such-policy";
    struct store *st = NULL;
    char err[256] = "";
    int r = store_open(&cfg, &st, err, sizeof(err));
    KT_CHECKF(r != 0 && st == NULL, "unknown policy accepted (%d)", r);
    printf("  unknown policy: %d (%s) %s\n", r, kc_strerror(r), err);

    cfg.evict = "lru";
    st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    struct kc_key hot = kt_key(500000);
    KT_EQ(kt_put1(st, NS, &hot, BLK, 0), KC_OK);
    for (uint64_t i = 0; i < 5 * DEV / BLK; i++) {
        KT_PUT(st, NS, 600000 + i, BLK);
        if (i % 8 == 0)   /* keep the hot block's slab recently used */
            KT_EQ(KT_GET(st, NS, &hot, false, NULL), KC_OK);
    }
    KT_CHECK(kt_stats(st).evictions > 0);
    KT_EQ(KT_GET(st, NS, &hot, true, NULL), KC_OK);
    KT_CLOSE(st);
}

int main(void)
{
    kt_begin("evict");
    char path[4200];
    struct store_config cfg;
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), DEV, 1 * KT_MIB,
              MEM, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    KT_OK(store_ns_open(st, NS2, 0, NULL, 0));

    const uint64_t n = 5 * DEV / BLK;
    for (uint64_t i = 0; i < n; i++)
        KT_PUT(st, NS, i, BLK);
    KT_OK(store_flush(st));
    struct store_stats s = kt_stats(st);
    printf("  %" PRIu64 " puts, %" PRIu64 " live, %" PRIu64 " evictions, %"
           PRIu64 " evicted items, %" PRIu64 "/%" PRIu64 " slabs used\n",
           s.puts, s.items, s.evictions, s.evicted_items, s.ssd_slabs_used,
           s.ssd_slabs);
    KT_EQ(s.puts, n);
    KT_EQ(s.puts_rejected, 0);
    KT_CHECK(s.evictions > 0);
    KT_CHECK(s.evicted_items > 0);
    KT_EQ(s.items + s.evicted_items, n);
    KT_EQ(s.bytes, s.items * BLK);
    KT_LE(s.items, DEV / BLK);
    KT_LE(s.ssd_slabs_used + s.ssd_slabs_free, s.ssd_slabs);
    KT_LE(s.ssd_slabs, DEV / KT_MIB);
    KT_CHECK(s.items >= n / 10);   /* most of the device still holds data */

    /* Which keys are present: a suffix of the write order (fifo). */
    uint64_t found = 0, first = n, last_missing = 0;
    bool any_missing = false;
    for (uint64_t i = 0; i < n; i++) {
        struct kc_key k = kt_key(i);
        bool here = store_match(st, NS, &k, 1) == 1;
        if (here) {
            found++;
            if (first == n)
                first = i;
        } else {
            any_missing = true;
            last_missing = i;
        }
    }
    KT_EQ(found, s.items);
    KT_CHECK(any_missing);
    KT_CHECKF(last_missing < first, "fifo: key %" PRIu64 " missing after "
              "key %" PRIu64 " present", last_missing, first);
    uint64_t visited = 0;
    store_foreach_item(st, count_cb, &visited);
    KT_EQ(visited, found);

    /* Newest blocks intact (from DRAM and device), oldest gone. */
    for (uint64_t i = first; i < n; i++) {
        struct kc_key k = kt_key(i);
        uint32_t len = 0;
        KT_EQ(KT_GET(st, NS, &k, i & 1, &len), KC_OK);
        KT_EQ(len, BLK);
    }
    for (uint64_t i = 0; i < first; i += 13) {
        struct kc_key k = kt_key(i);
        KT_EQ(KT_GET(st, NS, &k, false, NULL), KC_MISS);
    }
    struct store_ns_info ni;
    KT_OK(store_ns_get(st, NS, &ni));
    KT_EQ(ni.items, s.items);

    /* Slabs' live counts agree with the index. */
    uint64_t live = 0;
    for (uint32_t id = 0; id < store_nslabs(st); id++) {
        struct store_slab_info si;
        KT_OK(store_slab_get(st, id, &si));
        KT_LE(si.nlive, si.nitems);
        KT_LE((uint64_t)si.nitems * 64, si.used);   /* an item takes 64 bytes at least */
        live += si.nlive;
    }
    KT_EQ(live, s.items);

    /* A second class evicts the first one's slabs too, and stays readable. */
    for (uint64_t i = 0; i < 40; i++) {
        struct kc_key k = kt_key(n + i);
        KT_EQ(kt_put1(st, NS2, &k, 200 * KT_KIB + (uint32_t)i, 0), KC_OK);
    }
    KT_OK(store_flush(st));
    for (uint64_t i = 30; i < 40; i++) {
        struct kc_key k = kt_key(n + i);
        uint32_t len = 0;
        KT_EQ(KT_GET(st, NS2, &k, true, &len), KC_OK);
        KT_EQ(len, 200 * KT_KIB + (uint32_t)i);
    }
    s = kt_stats(st);
    KT_EQ(s.checksum_failures, 0);
    KT_EQ(s.io_errors, 0);
    KT_LE(s.bytes, DEV);
    KT_CLOSE(st);
    test_policies(path);
    printf("evict: ok\n");
    return 0;
}
