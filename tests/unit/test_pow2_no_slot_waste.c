/*
 * test_pow2_no_slot_waste.c - a power-of-two value takes its size plus its
 * 64-byte header in its slab, nothing more (format 3 packs items at 64
 * bytes; before, a 4096-byte value took an 8 KiB slot). For 4 KiB, 64 KiB
 * and 256 KiB blocks: every written slab's bytes of items are exactly
 * items x (value + 64), so the waste beyond the header is 0 (< 1%), and a
 * slab holds what its size allows with one summary copy per item.
 */
#include "kt.h"

#define SLAB (4 * KT_MIB)

/* Put blocks of len bytes in namespace ns until two slabs are written,
 * then check every written slab's packing. */
static void check_size(struct store *st, uint64_t ns, uint32_t len, uint64_t base)
{
    KT_OK(store_ns_open(st, ns, len, NULL, 0));
    uint64_t i = 0;
    while (kt_stats(st).ssd_slabs_used < 3) {
        KT_PUT(st, ns, base + i, len);
        i++;
    }
    KT_OK(store_flush(st));
    uint64_t items = 0, used = 0;
    for (uint32_t id = 0; id < store_nslabs(st); id++) {
        struct store_slab_info si;
        KT_OK(store_slab_get(st, id, &si));
        if (si.state != STORE_SLAB_SSD || si.nitems == 0)
            continue;
        KT_EQ((uint64_t)si.used, (uint64_t)si.nitems * (len + 64));
        items += si.nitems;
        used += si.used;
    }
    /* A slab holds (slab - header block) / (value + header + summary copy)
     * items, minus what the summary's 4 KiB rounding takes. */
    uint64_t per = (SLAB - 4096) / (len + 128);
    printf("  %u-byte blocks: %" PRIu64 " items in %" PRIu64 " bytes: %.2f%% beyond the values"
           " and their headers, %" PRIu64 " per slab at most\n", len, items, used,
           100.0 * (double)(used - items * len - items * 64) / (double)(items * len), per);
    KT_CHECK(items > 0);
    KT_CHECK((double)(used - items * len - items * 64) < 0.01 * (double)(items * len));
    uint32_t most = 0;   /* the fullest slab (the last one written may not be) */
    for (uint32_t id = 0; id < store_nslabs(st); id++) {
        struct store_slab_info si;
        KT_OK(store_slab_get(st, id, &si));
        if (si.state == STORE_SLAB_SSD && si.nitems > most)
            most = si.nitems;
    }
    KT_CHECKF(most + 2 >= per, "a slab holds %u items of %u bytes, %" PRIu64 " fit", most,
              len, per);
    for (uint64_t k = 0; k < i; k++) {
        struct kc_key key = kt_key(base + k);
        uint32_t got = 0;
        KT_EQ(KT_GET(st, ns, &key, k & 1, &got), KC_OK);
        KT_EQ(got, len);
    }
    KT_OK(store_ns_drop(st, ns));
}

int main(void)
{
    kt_begin("pow2_no_slot_waste");
    char path[4200];
    struct store_config cfg;
    kt_config(&cfg, kt_path(path, sizeof(path), "store"), 1 * KT_MIB + 16 * SLAB, SLAB,
              2 * SLAB, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    check_size(st, 1, 4096, 0);
    KT_AUDIT(st);
    KT_CLOSE(st);
    st = KT_OPEN(&cfg);   /* fresh: each size starts from empty slabs */
    check_size(st, 2, 64 * 1024, 1u << 20);
    KT_CLOSE(st);
    st = KT_OPEN(&cfg);
    check_size(st, 3, 256 * 1024, 2u << 20);
    KT_CLOSE(st);
    printf("pow2_no_slot_waste: ok\n");
    return 0;
}
