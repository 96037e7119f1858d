/*
 * test_capacity_mixed_sizes.c - blocks of many sizes share slabs (format 3:
 * a slab is a log of items of any size, packed at 64 bytes), so no slab is
 * written half empty because more sizes are in use than memory slabs.
 *
 * 1. The run that lost capacity before: 400 puts cycling over 12 sizes
 *    (4 KiB to 350 KiB) in a 1 GiB store with 32 MiB slabs and 64 MiB of
 *    memory slabs: all 400 stay (before: 42, after 232 flushes and 211
 *    evictions).
 * 2. A long run: the same sizes put until twice the store's size has been
 *    written, evicting all along: at least 90% of the slabs' bytes hold
 *    live blocks at the end (and after every tenth of the run), and every
 *    block still indexed reads back byte for byte.
 */
#include "kt.h"

enum { NS = 14, NSIZES = 12 };

/* The 12 sizes, 4 KiB to 350 KiB, roughly geometric. */
static const uint32_t sizes[NSIZES] = {
    4096, 6144, 9728, 15360, 24576, 38912, 61440, 97280, 131072, 180224, 262144, 358400,
};

/* Live bytes over the bytes of all slabs. */
static double live_fraction(const struct store *st)
{
    struct store_stats s = kt_stats(st);
    return (double)s.bytes / ((double)s.ssd_slabs * (double)s.slab_size);
}

int main(void)
{
    kt_begin("capacity_mixed_sizes");
    char path[4200];
    struct store_config cfg;

    /* 1: the 400-put run of the report. */
    kt_config(&cfg, kt_path(path, sizeof(path), "big"), 1024ull * KT_MIB, 32 * KT_MIB,
              64 * KT_MIB, 4 * KT_KIB);
    cfg.fresh = true;
    struct store *st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, 0, NULL, 0));
    for (uint64_t i = 0; i < 400; i++)
        KT_PUT(st, NS, i, sizes[i % NSIZES]);
    KT_OK(store_flush(st));
    struct store_stats s = kt_stats(st);
    printf("  400 puts over 12 sizes: %" PRIu64 " blocks kept, %" PRIu64 " flushes, %" PRIu64
           " evictions\n", s.items, s.flushes, s.evictions);
    KT_EQ(s.items, 400);
    KT_EQ(s.evictions, 0);
    KT_CLOSE(st);
    unlink(path);

    /* 2: twice the store's size, evicting. */
    kt_config(&cfg, kt_path(path, sizeof(path), "small"), 257ull * KT_MIB, 8 * KT_MIB,
              32 * KT_MIB, 4 * KT_KIB);
    cfg.fresh = true;
    st = KT_OPEN(&cfg);
    KT_OK(store_ns_open(st, NS, 0, NULL, 0));
    uint64_t cap = (uint64_t)kt_stats(st).ssd_slabs * kt_stats(st).slab_size, written = 0;
    uint64_t n = 0, checks = 0;
    double worst = 1.0;
    while (written < 2 * cap) {
        uint32_t len = sizes[n % NSIZES];
        KT_PUT(st, NS, 1000 + n, len);
        written += len;
        n++;
        if (written > cap && written / (cap / 5) != (written - len) / (cap / 5)) {
            double f = live_fraction(st);
            printf("  after %" PRIu64 " MiB: %.1f%% of the slabs live\n", written >> 20,
                   100.0 * f);
            worst = f < worst ? f : worst;
            KT_AUDIT(st);
            checks++;
        }
    }
    s = kt_stats(st);
    double f = live_fraction(st);
    printf("  %" PRIu64 " puts (%" PRIu64 " MiB) into %" PRIu64 " MiB of slabs: %" PRIu64
           " blocks, %.1f%% of the slabs' bytes live (lowest %.1f%%), %" PRIu64
           " evictions\n", n, written >> 20, cap >> 20, s.items, 100.0 * f, 100.0 * worst,
           s.evictions);
    KT_CHECK(checks >= 4 && s.evictions > 0);
    KT_CHECKF(worst >= 0.90, "only %.1f%% of the store live", 100.0 * worst);
    KT_CHECKF(f >= 0.90, "only %.1f%% of the store live", 100.0 * f);
    uint64_t hits = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct kc_key k = kt_key(1000 + i);
        uint32_t got = 0;
        int r = KT_GET(st, NS, &k, i & 1, &got);   /* wrong bytes fail the test */
        KT_CHECK(r == KC_OK || r == KC_MISS);
        if (r == KC_OK)
            KT_EQ(got, sizes[i % NSIZES]);
        hits += r == KC_OK;
    }
    KT_EQ(hits, kt_stats(st).items);
    KT_CLOSE(st);
    printf("capacity_mixed_sizes: ok\n");
    return 0;
}
