/*
 * test_recovery_one_read_per_slab.c - a warm restart reads each slab's tail
 * (its summary and header) once, not each item: the scan's device reads
 * equal the number of slabs (format 3; before, one read per item). Stores
 * of 4 KiB and of 256 KiB blocks, full and evicting, with deletes; after
 * the restart every block is where it was, byte for byte.
 */
#include "kt.h"

#define SLAB (8 * KT_MIB)
#define NSLABS 12

/* Fill a store with blocks of len bytes (twice over), delete some, restart,
 * and check the reads of the recovery and every block. */
static void run(const char *name, uint32_t len)
{
    char path[4200];
    struct store_config cfg;
    kt_config(&cfg, kt_path(path, sizeof(path), name), 1 * KT_MIB + NSLABS * SLAB, SLAB,
              2 * SLAB, len);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, 1, len, NULL, 0));
    uint64_t n = 2 * (uint64_t)NSLABS * (SLAB / (len + 128));
    for (uint64_t i = 0; i < n; i++)
        KT_PUT(st, 1, i, len);
    for (uint64_t i = n - 50; i < n; i += 5) {
        struct kc_key k = kt_key(i);
        KT_EQ(store_delete(st, 1, &k), KC_OK);
    }
    uint64_t live = kt_stats(st).items;
    KT_CHECK(kt_stats(st).evictions > 0);
    KT_CLOSE(st);

    cfg.fresh = false;
    st = KT_OPEN(&cfg);
    struct store_recovery rec;
    store_recovery_info(st, &rec);
    printf("  %u-byte blocks: %" PRIu64 " blocks recovered from %" PRIu64 " valid slabs of %u"
           " with %" PRIu64 " device reads in %.3f s\n", len, rec.items, rec.slabs_valid,
           store_nslabs(st), rec.reads, rec.seconds);
    KT_EQ(rec.reads, store_nslabs(st));
    KT_EQ(rec.items, live);
    KT_EQ(kt_stats(st).items, live);
    uint64_t hits = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct kc_key k = kt_key(i);
        int r = KT_GET(st, 1, &k, i & 1, NULL);
        KT_CHECK(r == KC_OK || r == KC_MISS);
        if (i >= n - 50 && (i - (n - 50)) % 5 == 0)
            KT_EQ(r, KC_MISS);   /* deleted */
        hits += r == KC_OK;
    }
    KT_EQ(hits, live);
    KT_EQ(kt_stats(st).checksum_failures, 0);
    KT_CLOSE(st);
    unlink(path);
}

int main(void)
{
    kt_begin("recovery_one_read_per_slab");
    run("small", 4096);
    run("large", 256 * 1024);
    printf("recovery_one_read_per_slab: ok\n");
    return 0;
}
