/*
 * test_faults.c - device I/O errors, injected by the engine's fault hooks
 * (store_config.fault_read_every / fault_write_every): a failed read is a
 * miss, counted and logged; a failed slab write drops that slab's blocks;
 * in both cases every block still served is byte-identical and the store
 * keeps working.
 */
#include "kt.h"

enum { NS = 7, BLK = 60 * 1024, N = 300 };

/* Open with the namespace registered, then reopen with faults. */
static struct store *open_faulty(struct store_config *cfg, uint64_t rd, uint64_t wr)
{
    cfg->fault_read_every = rd;
    cfg->fault_write_every = wr;
    struct store *st = KT_OPEN(cfg);
    return st;
}

int main(void)
{
    kt_begin("faults");
    char path[4200];
    struct store_config cfg;
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 32 * KT_MIB,
              1 * KT_MIB, 2 * KT_MIB, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    KT_CLOSE(st);

    /* Write faults: every 5th slab write fails. */
    cfg.fresh = false;
    st = open_faulty(&cfg, 0, 5);
    for (uint64_t i = 0; i < N; i++)
        KT_PUT(st, NS, i, BLK);
    KT_OK(store_flush(st));
    struct store_stats s = kt_stats(st);
    printf("  write faults: %" PRIu64 " I/O errors, %" PRIu64 " live of %d\n",
           s.io_errors, s.items, N);
    KT_CHECK(s.io_errors > 0);
    uint64_t hits = 0;
    for (uint64_t i = 0; i < N; i++) {
        struct kc_key k = kt_key(i);
        int r = KT_GET(st, NS, &k, true, NULL);   /* wrong bytes fail the test */
        KT_CHECK(r == KC_OK || r == KC_MISS);
        hits += r == KC_OK;
    }
    KT_EQ(hits, kt_stats(st).items);
    KT_CHECK(hits > 0);
    /* The store still takes and serves blocks. */
    struct kc_key fresh_key = kt_key(100000);
    KT_EQ(kt_put1(st, NS, &fresh_key, BLK, 0), KC_OK);
    KT_EQ(KT_GET(st, NS, &fresh_key, false, NULL), KC_OK);
    KT_CLOSE(st);

    /* Read faults: every 3rd device read fails. */
    st = open_faulty(&cfg, 3, 0);
    uint64_t live = kt_stats(st).items, misses = 0;
    hits = 0;
    KT_CHECK(live > 0);
    for (int round = 0; round < 2; round++) {
        for (uint64_t i = 0; i < N; i++) {
            struct kc_key k = kt_key(i);
            int r = KT_GET(st, NS, &k, round == 0, NULL);
            KT_CHECK(r == KC_OK || r == KC_MISS);
            hits += r == KC_OK;
            misses += r == KC_MISS;
        }
    }
    s = kt_stats(st);
    printf("  read faults: %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64
           " I/O errors, %" PRIu64 " live\n", hits, misses, s.io_errors, s.items);
    KT_CHECK(s.io_errors > 0);
    KT_EQ(s.checksum_failures, 0);
    /* A failed read does not drop the block: it is still indexed. */
    KT_EQ(s.items, live);
    KT_CHECK(hits > 0);
    KT_CLOSE(st);
    printf("faults: ok\n");
    return 0;
}
