/*
 * test_restart.c - warm restart.
 *
 * Close and reopen: every block (flushed earlier, or only in DRAM at close)
 * reads back byte-identical with its chain position, namespaces keep their
 * block size and descriptor, the recovery counts agree. A dropped namespace's
 * blocks do not come back, even if the id is opened again; another geometry
 * is refused; a fresh open starts empty and what it replaced stays gone.
 */
#include "kt.h"

enum { NS_A = 10, NS_V = 11, NS_DROP = 12, NS_RE = 13 };
#define BLK_A (24 * KT_KIB)
#define BLK_D (8 * KT_KIB)
#define DEV (48 * KT_MIB)
#define MEM (4 * KT_MIB)
#define NA 300
#define NV 20
#define ND 50

static char path[4200];
static const char desc_a[] = "llama-8b/layers 0-15/fp16";

static uint32_t vsize(uint64_t i) { return 4096 + (uint32_t)(i * 9973) % 200000; }

static struct store *open_store(bool fresh)
{
    struct store_config cfg;
    kt_config(&cfg, path, DEV, 1 * KT_MIB, MEM, 4 * KT_KIB);
    cfg.fresh = fresh;
    return KT_OPEN(&cfg);
}

/* Every block the first session left must be there, intact. */
static void check_all(struct store *st, uint64_t extra_a)
{
    struct store_ns_info ni;
    KT_OK(store_ns_get(st, NS_A, &ni));
    KT_EQ(ni.block_bytes, BLK_A);
    KT_EQ(ni.desc_len, sizeof(desc_a));
    KT_CHECK(memcmp(ni.desc, desc_a, sizeof(desc_a)) == 0);
    KT_EQ(ni.items, NA + extra_a);
    KT_EQ(ni.bytes, (NA + extra_a) * BLK_A);
    KT_OK(store_ns_get(st, NS_V, &ni));
    KT_EQ(ni.block_bytes, 0);
    KT_EQ(ni.items, NV);

    for (uint64_t i = 0; i < NA + extra_a; i++) {
        struct kc_key k = kt_key(i);
        uint32_t len = 0;
        KT_EQ(KT_GET(st, NS_A, &k, i & 1, &len), KC_OK);
        KT_EQ(len, BLK_A);
        struct store_item_info ii;
        KT_OK(store_describe(st, NS_A, &k, &ii));
        KT_EQ(ii.chain_pos, (uint32_t)i);
    }
    for (uint64_t i = 0; i < NV; i++) {
        struct kc_key k = kt_key(10000 + i);
        uint32_t len = 0;
        KT_EQ(KT_GET(st, NS_V, &k, true, &len), KC_OK);
        KT_EQ(len, vsize(i));
    }
    /* Dropped namespace: unknown, and its blocks gone. */
    KT_EQ(store_ns_get(st, NS_DROP, &ni), KC_ENONS);
    /* Re-created namespace: only the blocks put after the drop. */
    KT_OK(store_ns_get(st, NS_RE, &ni));
    KT_EQ(ni.items, 5);
    for (uint64_t i = 0; i < ND; i++) {
        struct kc_key k = kt_key(30000 + i);
        int want = i < 5 ? KC_OK : KC_MISS;
        KT_EQ(KT_GET(st, NS_RE, &k, false, NULL), want);
    }
}

int main(void)
{
    kt_begin("restart");
    kt_path(path, sizeof(path), "store");

    /* Session 1: three namespaces, one dropped, one dropped and re-made. */
    struct store *st = open_store(true);
    KT_OK(store_ns_open(st, NS_A, BLK_A, desc_a, sizeof(desc_a)));
    KT_OK(store_ns_open(st, NS_V, 0, NULL, 0));
    KT_OK(store_ns_open(st, NS_DROP, BLK_D, "x", 1));
    KT_OK(store_ns_open(st, NS_RE, BLK_D, "y", 1));
    for (uint64_t i = 0; i < ND; i++) {
        KT_PUT(st, NS_DROP, 20000 + i, BLK_D);
        KT_PUT(st, NS_RE, 30000 + i, BLK_D);
    }
    for (uint64_t i = 0; i < NV; i++) {
        struct kc_key k = kt_key(10000 + i);
        KT_EQ(kt_put1(st, NS_V, &k, vsize(i), (uint32_t)i), KC_OK);
    }
    for (uint64_t i = 0; i < NA - 10; i++)
        KT_PUT(st, NS_A, i, BLK_A);
    KT_OK(store_flush(st));
    KT_OK(store_ns_drop(st, NS_DROP));
    KT_OK(store_ns_drop(st, NS_RE));
    struct kc_key kd = kt_key(20000);
    KT_EQ(KT_GET(st, NS_DROP, &kd, false, NULL), KC_ENONS);
    KT_OK(store_ns_open(st, NS_RE, BLK_D, "y", 1));
    for (uint64_t i = 0; i < 5; i++)
        KT_PUT(st, NS_RE, 30000 + i, BLK_D);   /* same keys, new lives */
    for (uint64_t i = NA - 10; i < NA; i++)    /* only in DRAM at close */
        KT_PUT(st, NS_A, i, BLK_A);
    uint64_t items = kt_stats(st).items;
    KT_EQ(items, NA + NV + 5);
    KT_CLOSE(st);

    /* Session 2: all back. */
    st = open_store(false);
    struct store_recovery rec;
    store_recovery_info(st, &rec);
    printf("  recovery: %" PRIu64 " slabs scanned, %" PRIu64 " valid, %" PRIu64
           " items, %" PRIu64 " skipped, %" PRIu64 " bytes, %.3f s\n",
           rec.slabs_scanned, rec.slabs_valid, rec.items, rec.items_skipped,
           rec.bytes, rec.seconds);
    KT_EQ(rec.items, items);
    KT_CHECK(rec.slabs_valid > 0 && rec.slabs_valid <= rec.slabs_scanned);
    KT_EQ(kt_stats(st).items, items);
    check_all(st, 0);
    KT_EQ(store_ns_open(st, NS_A, BLK_A * 2, NULL, 0), KC_EBADSIZE);
    /* Opening the dropped id again gives an empty namespace. */
    KT_OK(store_ns_open(st, NS_DROP, BLK_D, NULL, 0));
    for (uint64_t i = 0; i < ND; i++) {
        struct kc_key k = kt_key(20000 + i);
        KT_EQ(KT_GET(st, NS_DROP, &k, false, NULL), KC_MISS);
    }
    KT_OK(store_ns_drop(st, NS_DROP));
    for (uint64_t i = NA; i < NA + 20; i++)
        KT_PUT(st, NS_A, i, BLK_A);
    KT_CLOSE(st);

    /* Session 3: a restart after a restart. */
    st = open_store(false);
    check_all(st, 20);
    KT_CLOSE(st);

    /* Another geometry is refused, and harms nothing. */
    struct store_config cfg;
    kt_config(&cfg, path, DEV, 2 * KT_MIB, MEM, 4 * KT_KIB);
    struct store *other = NULL;
    char err[256] = "";
    int r = store_open(&cfg, &other, err, sizeof(err));
    printf("  other geometry: %d (%s) %s\n", r, kc_strerror(r), err);
    KT_EQ(r, KC_EFORMAT);
    st = open_store(false);
    check_all(st, 20);
    KT_CLOSE(st);

    /* Fresh: empty, and the old store does not come back afterwards. */
    st = open_store(true);
    struct store_stats s = kt_stats(st);
    KT_EQ(s.items, 0);
    struct store_ns_info ni;
    KT_EQ(store_ns_at(st, 0, &ni), KC_ENONS);
    KT_OK(store_ns_open(st, NS_A, BLK_A, NULL, 0));
    for (uint64_t i = 0; i < 20; i++) {
        struct kc_key k = kt_key(i);
        KT_EQ(KT_GET(st, NS_A, &k, false, NULL), KC_MISS);
    }
    KT_PUT(st, NS_A, 5000, BLK_A);
    KT_CLOSE(st);
    st = open_store(false);
    store_recovery_info(st, &rec);
    KT_EQ(rec.items, 1);
    KT_EQ(kt_stats(st).items, 1);
    for (uint64_t i = 0; i < NA; i += 11) {
        struct kc_key k = kt_key(i);
        KT_EQ(KT_GET(st, NS_A, &k, false, NULL), KC_MISS);
    }
    struct kc_key k = kt_key(5000);
    KT_EQ(KT_GET(st, NS_A, &k, true, NULL), KC_OK);
    KT_EQ(store_ns_get(st, NS_V, &ni), KC_ENONS);
    KT_CLOSE(st);
    printf("restart: ok\n");
    return 0;
}
