/*
 * test_variable_sizes.c - what the store reports about blocks of a
 * variable-size namespace (block_bytes 0).
 *
 * stats.bytes and store_ns_info.bytes are "live value bytes": the sum of the
 * values' lengths, not of their slots. store_describe() and the item walk
 * report each block's length, also once its DRAM copy is gone. Such blocks
 * have no chain position (reported as 0).
 */
#include "kt.h"

enum { NS = 40, NSF = 41 };

static const uint32_t sizes[] = { 5000, 4096, 65537, 100000, 12345, 250000 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* Item walk: the length of every block of NS. */
static int walk_cb(const struct store_item_info *ii, void *arg)
{
    uint64_t *bad = arg;
    if (ii->ns != NS)
        return 0;
    /* Blocks of variable-size namespaces keep no chain position: find the
     * block by its key. */
    uint64_t i = 0;
    while (i < NSIZES && (kt_key(i).lo != ii->key.lo || kt_key(i).hi != ii->key.hi))
        i++;
    if (i >= NSIZES || ii->len != sizes[i]) {
        fprintf(stderr, "  walk: block %" PRIu64 " len %u, put %u\n", i,
                ii->len, i < NSIZES ? sizes[i] : 0);
        (*bad)++;
    }
    return 0;
}

int main(void)
{
    kt_begin("variable_sizes");
    char path[4200];
    struct store_config cfg;
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 32 * KT_MIB,
              1 * KT_MIB, 2 * KT_MIB, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, 0, NULL, 0));
    KT_OK(store_ns_open(st, NSF, 64 * KT_KIB, NULL, 0));

    uint64_t sum = 0;
    for (uint64_t i = 0; i < NSIZES; i++) {
        struct kc_key k = kt_key(i);
        KT_EQ(kt_put1(st, NS, &k, sizes[i], (uint32_t)i), KC_OK);
        sum += sizes[i];
    }
    /* Lengths right after the puts (with 2 memory slabs for 6 classes,
     * some DRAM copies are already gone). */
    uint64_t bad = 0;
    for (uint64_t i = 0; i < NSIZES; i++) {
        struct kc_key k = kt_key(i);
        struct store_item_info ii;
        KT_OK(store_describe(st, NS, &k, &ii));
        if (ii.len != sizes[i]) {
            fprintf(stderr, "  describe: block %" PRIu64 " len %u, put %u "
                    "(in DRAM: %d)\n", i, ii.len, sizes[i], ii.in_memory);
            bad++;
        }
    }
    struct store_stats s = kt_stats(st);
    struct store_ns_info ni;
    KT_OK(store_ns_get(st, NS, &ni));
    printf("  %zu values of %" PRIu64 " bytes: stats.bytes %" PRIu64
           ", ns bytes %" PRIu64 "\n", NSIZES, sum, s.bytes, ni.bytes);

    /* Push them out of DRAM with blocks of the other namespace. */
    for (uint64_t i = 0; i < 80; i++)
        KT_PUT(st, NSF, 1000 + i, 64 * KT_KIB);
    KT_OK(store_flush(st));
    for (uint64_t i = 0; i < NSIZES; i++) {
        struct kc_key k = kt_key(i);
        struct store_item_info ii;
        KT_OK(store_describe(st, NS, &k, &ii));
        KT_CHECK(!ii.in_memory);
        uint32_t len = 0;
        KT_EQ(KT_GET(st, NS, &k, true, &len), KC_OK);
        KT_EQ(len, sizes[i]);
        if (ii.len != sizes[i]) {
            fprintf(stderr, "  describe: block %" PRIu64 " len %u, put %u\n",
                    i, ii.len, sizes[i]);
            bad++;
        }
    }
    store_foreach_item(st, walk_cb, &bad);
    KT_OK(store_ns_get(st, NS, &ni));
    s = kt_stats(st);
    KT_EQ(ni.items, NSIZES);
    KT_EQ(ni.bytes, sum);
    KT_EQ(s.bytes, sum + 80ull * 64 * KT_KIB);
    KT_EQ(bad, 0);
    KT_CLOSE(st);
    printf("variable_sizes: ok\n");
    return 0;
}
