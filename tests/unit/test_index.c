/*
 * test_index.c - the in-memory index, through the store API.
 *
 * Many keys are all found; keys built to collide in any half of the key
 * (same lo, same hi, same low bits) stay distinct; delete and match behave;
 * a full index refuses (KC_ENOSPC) or evicts, never corrupts; the index
 * costs at most 32 bytes of DRAM per block.
 */
#include "kt.h"

enum { NS = 1, NS2 = 2 };
#define BLK (4 * KT_KIB)

/* Put a block under an explicit key (chain position pos). */
static void put_key(struct store *st, uint64_t ns, const struct kc_key *k,
                    uint32_t pos)
{
    int r = kt_put1(st, ns, k, BLK, pos);
    KT_CHECKF(r == KC_OK, "put -> %d (%s)", r, kc_strerror(r));
}

/* Count items visited by store_foreach_item. */
static int count_cb(const struct store_item_info *ii, void *arg)
{
    (void)ii;
    (*(uint64_t *)arg)++;
    return 0;
}

/* Many keys: all present, all readable, DRAM per entry within budget. */
static void test_many(struct store *st, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        KT_PUT(st, NS, i, BLK);
    struct store_stats s = kt_stats(st);
    KT_EQ(s.items, n);
    KT_EQ(s.bytes, n * BLK);
    KT_EQ(s.puts, n);
    printf("  index: %" PRIu64 " entries, %" PRIu64 " bytes, %u B/entry\n",
           s.index_capacity, s.index_bytes, s.index_entry_bytes);
    KT_CHECK(s.index_entry_bytes > 0);
    KT_LE(s.index_entry_bytes, 32);
    KT_CHECK(s.index_capacity >= n);
    /* DRAM of the whole index: at most 32 B per entry, plus 1/8 slack. */
    KT_LE(s.index_bytes, s.index_capacity * 32 + s.index_capacity * 4 + 65536);

    for (uint64_t i = 0; i < n; i++) {
        struct kc_key k = kt_key(i);
        KT_EQ(store_match(st, NS, &k, 1), 1);
    }
    /* Every other key from the device or DRAM, byte-identical. */
    for (uint64_t i = 0; i < n; i += 7) {
        struct kc_key k = kt_key(i);
        uint32_t len = 0;
        KT_EQ(KT_GET(st, NS, &k, (i & 1) != 0, &len), KC_OK);
        KT_EQ(len, BLK);
        struct store_item_info ii;
        KT_OK(store_describe(st, NS, &k, &ii));
        KT_EQ(ii.chain_pos, (uint32_t)i);
        KT_EQ(ii.len, BLK);
        KT_CHECK(kt_key_eq(&ii.key, &k));
        KT_EQ(ii.ns, NS);
    }
    uint64_t visited = 0;
    store_foreach_item(st, count_cb, &visited);
    KT_EQ(visited, n);
    /* A put of a present key is idempotent. */
    struct kc_key k0 = kt_key(0);
    KT_EQ(kt_put1(st, NS, &k0, BLK, 0), KC_EXISTS);
    s = kt_stats(st);
    KT_EQ(s.items, n);
    KT_CHECK(s.puts_exists >= 1);
}

/* Keys sharing one half or the low bits of both halves stay distinct. */
static void test_collisions(struct store *st)
{
    struct kc_key ks[96];
    uint64_t base = kt_mix(kt_seed ^ 0xc0111de);
    for (int i = 0; i < 32; i++) {
        ks[i].lo = base;                          /* same lo */
        ks[i].hi = kt_mix(base + (uint64_t)i);
        ks[32 + i].hi = base;                     /* same hi */
        ks[32 + i].lo = kt_mix(base ^ (uint64_t)i);
        ks[64 + i].lo = (base & 0xffffffffull) | ((uint64_t)(i + 1) << 40);
        ks[64 + i].hi = (base & 0xffffull) | ((uint64_t)(i + 7) << 48);
    }                                             /* same low bits */
    for (int i = 0; i < 96; i++)
        put_key(st, NS2, &ks[i], (uint32_t)i);
    for (int i = 0; i < 96; i++) {
        KT_EQ(store_match(st, NS2, &ks[i], 1), 1);
        KT_EQ(KT_GET(st, NS2, &ks[i], i & 1, NULL), KC_OK);
        struct store_item_info ii;
        KT_OK(store_describe(st, NS2, &ks[i], &ii));
        KT_EQ(ii.chain_pos, (uint32_t)i);
    }
    /* Deleting one of a colliding group leaves the others. */
    for (int i = 0; i < 96; i += 3)
        KT_EQ(store_delete(st, NS2, &ks[i]), KC_OK);
    for (int i = 0; i < 96; i++) {
        int want = i % 3 == 0 ? KC_MISS : KC_OK;
        KT_EQ(KT_GET(st, NS2, &ks[i], false, NULL), want);
        KT_EQ(store_match(st, NS2, &ks[i], 1), want == KC_OK);
    }
}

/* Delete and match on an ordered chain. */
static void test_delete_match(struct store *st)
{
    struct kc_key chain[10];
    for (uint64_t i = 0; i < 10; i++) {
        chain[i] = kt_key(100000 + i);
        put_key(st, NS, &chain[i], (uint32_t)i);
    }
    KT_EQ(store_match(st, NS, chain, 10), 10);
    KT_EQ(store_match(st, NS, chain, 0), 0);
    uint64_t items = kt_stats(st).items;
    KT_EQ(store_delete(st, NS, &chain[5]), KC_OK);
    KT_EQ(store_delete(st, NS, &chain[5]), KC_MISS);
    KT_EQ(kt_stats(st).items, items - 1);
    KT_CHECK(kt_stats(st).deletes >= 1);
    KT_EQ(store_match(st, NS, chain, 10), 5);
    KT_EQ(store_match(st, NS, chain + 6, 4), 4);
    KT_EQ(KT_GET(st, NS, &chain[5], false, NULL), KC_MISS);
    struct store_item_info ii;
    KT_CHECK(store_describe(st, NS, &chain[5], &ii) != 0);
    KT_EQ(store_delete(st, NS, &chain[0]), KC_OK);
    KT_EQ(store_match(st, NS, chain, 10), 0);
    /* A deleted key can be stored again. */
    put_key(st, NS, &chain[5], 5);
    KT_EQ(KT_GET(st, NS, &chain[5], true, NULL), KC_OK);
    KT_EQ(store_match(st, NS, chain + 1, 9), 9);
}

/*
 * A full index: the index is sized for 64 KiB blocks, and we store 4 KiB
 * ones, far more than it has entries. It grows (up to what the device
 * holds at 4 KiB) instead of evicting; puts end in KC_OK or KC_ENOSPC,
 * the counts stay consistent and every block found is intact.
 */
static void test_full(void)
{
    char path[4200];
    struct store_config cfg;
    kt_config(&cfg, kt_path(path, sizeof(path), "full"), 16 * KT_MIB,
              1 * KT_MIB, 3 * KT_MIB, 64 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    uint64_t cap = kt_stats(st).index_capacity;
    uint64_t n = 3000;  /* about 12 MiB: fits the device, not the index */
    printf("  full: index capacity %" PRIu64 ", putting %" PRIu64 "\n", cap, n);
    KT_CHECK(cap < n);
    uint64_t ok = 0, nospc = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct kc_key k = kt_key(200000 + i);
        int r = kt_put1(st, NS, &k, BLK, (uint32_t)i);
        KT_CHECKF(r == KC_OK || r == KC_ENOSPC, "put #%" PRIu64 " -> %d (%s)",
                  i, r, kc_strerror(r));
        ok += r == KC_OK;
        nospc += r == KC_ENOSPC;
    }
    struct store_stats s = kt_stats(st);
    printf("  full: %" PRIu64 " stored, %" PRIu64 " ENOSPC, %" PRIu64
           " live, %" PRIu64 " evicted items\n", ok, nospc, s.items,
           s.evicted_items);
    KT_LE(s.items, s.index_capacity);
    KT_EQ(s.items * BLK, s.bytes);
    KT_CHECK(s.index_grown > 0 && s.index_capacity > cap);
    KT_CHECK(s.items > cap);
    uint64_t found = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct kc_key k = kt_key(200000 + i);
        int r = KT_GET(st, NS, &k, i & 1, NULL);  /* verifies the bytes */
        KT_CHECK(r == KC_OK || r == KC_MISS);
        found += r == KC_OK;
    }
    KT_EQ(found, s.items);
    uint64_t visited = 0;
    store_foreach_item(st, count_cb, &visited);
    KT_EQ(visited, s.items);
    /* After deletes, room again. */
    for (uint64_t i = 0; i < n && kt_stats(st).items > s.items / 2; i++) {
        struct kc_key k = kt_key(200000 + i);
        store_delete(st, NS, &k);
    }
    struct kc_key k = kt_key(999999);
    KT_EQ(kt_put1(st, NS, &k, BLK, 0), KC_OK);
    KT_EQ(KT_GET(st, NS, &k, false, NULL), KC_OK);
    KT_CLOSE(st);
}

int main(void)
{
    kt_begin("index");
    char path[4200];
    struct store_config cfg;
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 64 * KT_MIB,
              1 * KT_MIB, 4 * KT_MIB, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, BLK, NULL, 0));
    KT_OK(store_ns_open(st, NS2, BLK, NULL, 0));
    test_many(st, 4000);   /* ~16 MiB: most of it on the device */
    test_collisions(st);
    test_delete_match(st);
    KT_CLOSE(st);
    test_full();
    printf("index: ok\n");
    return 0;
}
