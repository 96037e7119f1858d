/*
 * test_class.c - size classes and namespaces through the store API.
 *
 * A namespace with a fixed block size gets a class whose slot wastes less
 * than 4 KiB per block (plus the item header); a variable-size namespace
 * falls back to geometric classes; values too big for a slab, of the wrong
 * size, or for an unknown namespace are refused with their codes.
 */
#include "kt.h"

/* The item header in each slot (ssd/kc_format.h: 64 bytes) is not counted
 * as waste; anything more than that is. */
#define ITEM_HDR_MAX 64u

enum { NS_FIXED = 7, NS_ODD = 8, NS_VAR = 9, NS_NONE = 4242 };

/* Slot size of the slab holding key k (after a flush). */
static uint32_t slot_of(struct store *st, uint64_t ns, const struct kc_key *k)
{
    struct store_item_info ii;
    struct store_slab_info si;
    KT_OK(store_describe(st, ns, k, &ii));
    KT_OK(store_slab_get(st, ii.slab, &si));
    KT_CHECKF(si.slot_size >= ii.len, "slot %u < len %u", si.slot_size, ii.len);
    KT_CHECK(si.nslots >= 1);
    KT_LE((uint64_t)si.nslots * si.slot_size, 1 * KT_MIB);
    return si.slot_size;
}

/* Fixed block sizes: the class fits the size to within 4 KiB. */
static void test_fixed(struct store *st)
{
    const uint32_t sizes[] = { 16 * KT_KIB, 100 * KT_KIB + 123, 40 * KT_KIB + 1 };
    const uint64_t ns[] = { NS_FIXED, NS_ODD, NS_ODD + 100 };
    for (size_t s = 0; s < 3; s++) {
        KT_OK(store_ns_open(st, ns[s], sizes[s], "fixed", 5));
        for (uint64_t i = 0; i < 4; i++)
            KT_PUT(st, ns[s], 1000 * s + i, sizes[s]);
    }
    KT_OK(store_flush(st));
    for (size_t s = 0; s < 3; s++) {
        struct kc_key k = kt_key(1000 * s);
        uint32_t slot = slot_of(st, ns[s], &k);
        printf("  fixed %u B -> slot %u B (waste %u)\n", sizes[s], slot,
               slot - sizes[s]);
        KT_CHECKF(slot - sizes[s] < 4096 + ITEM_HDR_MAX,
                  "block %u in slot %u wastes %u bytes", sizes[s], slot,
                  slot - sizes[s]);
        uint32_t len = 0;
        KT_EQ(KT_GET(st, ns[s], &k, true, &len), KC_OK);
        KT_EQ(len, sizes[s]);
    }
    /* Wrong size for a fixed namespace. */
    struct kc_key k = kt_key(99);
    KT_EQ(kt_put1(st, NS_FIXED, &k, 16 * KT_KIB - 1, 0), KC_EBADSIZE);
    KT_EQ(kt_put1(st, NS_FIXED, &k, 16 * KT_KIB + 4096, 0), KC_EBADSIZE);
    KT_EQ(kt_put1(st, NS_FIXED, &k, 0, 0), KC_EBADSIZE);
    KT_EQ(store_match(st, NS_FIXED, &k, 1), 0);
}

/* Variable sizes: geometric classes, each slot at most ~2x the value. */
static void test_variable(struct store *st)
{
    const uint32_t sizes[] = { 4096, 5000, 9000, 20000, 33333, 65536, 100000,
                               200000, 300000 };
    const size_t n = sizeof(sizes) / sizeof(sizes[0]);
    KT_OK(store_ns_open(st, NS_VAR, 0, NULL, 0));
    for (size_t i = 0; i < n; i++) {
        struct kc_key k = kt_key(5000 + i);
        KT_EQ(kt_put1(st, NS_VAR, &k, sizes[i], (uint32_t)i), KC_OK);
    }
    KT_OK(store_flush(st));
    uint32_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        struct kc_key k = kt_key(5000 + i);
        uint32_t slot = slot_of(st, NS_VAR, &k);
        printf("  variable %u B -> slot %u B\n", sizes[i], slot);
        KT_CHECKF(slot <= 2 * sizes[i] + 4096 + ITEM_HDR_MAX,
                  "value %u in slot %u: not a geometric fit", sizes[i], slot);
        KT_CHECK(slot >= prev);  /* classes grow with the size */
        prev = slot;
        uint32_t len = 0;
        KT_EQ(KT_GET(st, NS_VAR, &k, false, &len), KC_OK);
        KT_EQ(len, sizes[i]);
    }
    /* Too big for a 1 MiB slab. */
    struct kc_key k = kt_key(6000);
    KT_EQ(kt_put1(st, NS_VAR, &k, 1 * KT_MIB, 0), KC_ETOOBIG);
    KT_EQ(kt_put1(st, NS_VAR, &k, 3 * KT_MIB, 0), KC_ETOOBIG);
    struct store_stats s = kt_stats(st);
    KT_CHECK(s.puts_rejected >= 2);
    /* A namespace whose blocks cannot fit a slab: refused at open or put. */
    int r = store_ns_open(st, NS_VAR + 1, 2 * KT_MIB, NULL, 0);
    if (r == 0)
        KT_EQ(kt_put1(st, NS_VAR + 1, &k, 2 * KT_MIB, 0), KC_ETOOBIG);
    else
        KT_CHECKF(r == KC_ETOOBIG || r == KC_EINVAL, "ns_open 2 MiB -> %d", r);
}

/* Namespaces: reopen, size conflict, descriptors, listing, unknown ids. */
static void test_namespaces(struct store *st)
{
    KT_OK(store_ns_open(st, NS_FIXED, 16 * KT_KIB, "fixed", 5));  /* no-op */
    KT_EQ(store_ns_open(st, NS_FIXED, 32 * KT_KIB, NULL, 0), KC_EBADSIZE);

    struct store_ns_info info;
    KT_OK(store_ns_get(st, NS_FIXED, &info));
    KT_EQ(info.id, NS_FIXED);
    KT_EQ(info.block_bytes, 16 * KT_KIB);
    KT_EQ(info.desc_len, 5);
    KT_CHECK(memcmp(info.desc, "fixed", 5) == 0);
    KT_EQ(info.items, 4);
    KT_EQ(info.bytes, 4 * 16 * KT_KIB);

    size_t seen = 0;
    bool saw_var = false;
    for (size_t i = 0; store_ns_at(st, i, &info) == 0; i++) {
        seen++;
        saw_var |= info.id == NS_VAR;
        KT_CHECK(i < 1000);
    }
    KT_CHECK(seen >= 4);
    KT_CHECK(saw_var);
    KT_EQ(store_ns_at(st, seen, &info), KC_ENONS);

    uint8_t big[STORE_NS_DESC_MAX + 1];
    memset(big, 'd', sizeof(big));
    KT_CHECK(store_ns_open(st, 77, 4096, big, sizeof(big)) != 0);
    KT_OK(store_ns_open(st, 78, 4096, big, STORE_NS_DESC_MAX));

    /* Unknown namespace. */
    struct kc_key k = kt_key(1);
    KT_EQ(store_ns_get(st, NS_NONE, &info), KC_ENONS);
    KT_EQ(kt_put1(st, NS_NONE, &k, 4096, 0), KC_ENONS);
    KT_EQ(KT_GET(st, NS_NONE, &k, false, NULL), KC_ENONS);
    KT_EQ(store_match(st, NS_NONE, &k, 1), 0);
    int r = store_delete(st, NS_NONE, &k);
    KT_CHECKF(r == KC_ENONS || r == KC_MISS, "delete in unknown ns -> %d", r);
    KT_EQ(store_ns_drop(st, NS_NONE), KC_ENONS);
    /* A key stored in one namespace is not visible from another. */
    struct kc_key k0 = kt_key(0);
    KT_EQ(store_match(st, NS_FIXED, &k0, 1), 1);
    KT_EQ(store_match(st, NS_VAR, &k0, 1), 0);
    KT_EQ(KT_GET(st, NS_VAR, &k0, false, NULL), KC_MISS);
}

/* kc_strerror names every code. */
static void test_strerror(void)
{
    const int codes[] = { KC_OK, KC_EXISTS, KC_MISS, KC_SKIPPED, KC_EINVAL, KC_ENONS,
                          KC_EBADSIZE, KC_ETOOBIG, KC_ENOSPC, KC_EBUSY, KC_EIO,
                          KC_ECSUM, KC_ENOMEM, KC_EFORMAT, KC_ENSFULL, -ENOENT };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *s = kc_strerror(codes[i]);
        KT_CHECK(s != NULL && s[0] != '\0');
    }
}

/* Blocks of 64 MiB (a 512-token block of an 8B model) with 65 MiB slabs. */
static void test_big(void)
{
    char path[4200];
    struct store_config cfg;
    const uint32_t big = 64 * KT_MIB;
    kt_config(&cfg, kt_path(path, sizeof(path), "big"), 1 * KT_MIB +
              3ull * 65 * KT_MIB, 65 * KT_MIB, 130 * KT_MIB, big);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS_FIXED, big, NULL, 0));
    for (uint64_t i = 0; i < 3; i++)
        KT_PUT(st, NS_FIXED, 7000 + i, big);
    KT_OK(store_flush(st));
    struct kc_key k = kt_key(7000);
    struct store_item_info ii;
    KT_OK(store_describe(st, NS_FIXED, &k, &ii));
    printf("  64 MiB block: slab %u, in DRAM %d\n", ii.slab, ii.in_memory);
    for (uint64_t i = 0; i < 3; i++) {
        struct kc_key ki = kt_key(7000 + i);
        uint32_t len = 0;
        KT_EQ(KT_GET(st, NS_FIXED, &ki, i == 0, &len), KC_OK);
        KT_EQ(len, big);
    }
    KT_EQ(kt_stats(st).evictions, 0);
    KT_CLOSE(st);
}

int main(void)
{
    kt_begin("class");
    char path[4200];
    struct store_config cfg;
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 32 * KT_MIB,
              1 * KT_MIB, 4 * KT_MIB, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    test_strerror();
    test_fixed(st);
    test_variable(st);
    test_namespaces(st);
    KT_CLOSE(st);
    test_big();
    printf("class: ok\n");
    return 0;
}
