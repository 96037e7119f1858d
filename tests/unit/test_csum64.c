/*
 * test_csum64.c - every checksum variant the CPU runs gives XXH3_64bits'
 * digest (the on-device format depends on it), whole or streamed in
 * uneven pieces, at lengths around the
 * algorithm's internal boundaries, and how fast each is on a 256 KiB value.
 */
#include "kt.h"

#include <xxhash.h>

#include "ssd/kc_csum.h"

int main(void)
{
    kt_begin("csum64");
    const size_t max = 1u << 20;
    uint8_t *buf = malloc(max + 64);
    KT_CHECK(buf != NULL);
    for (size_t i = 0; i < max + 64; i++)
        buf[i] = (uint8_t)(kt_mix(i) >> 7);
    __builtin_cpu_init();
    bool has512 = __builtin_cpu_supports("avx512f");
    bool has2 = __builtin_cpu_supports("avx2");
    const size_t lens[] = { 0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 1024, 4095,
                            4096, 65536, 262144, 262144 + 64, max };
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        for (size_t off = 0; off < 2; off++) {   /* aligned and not */
            const void *p = buf + off;
            uint64_t want = XXH3_64bits(p, lens[k]);
            KT_EQ(csum64(p, lens[k]), want);
            KT_EQ(csum64_sse2(p, lens[k]), want);
            if (has2)
                KT_EQ(csum64_avx2(p, lens[k]), want);
            if (has512)
                KT_EQ(csum64_avx512(p, lens[k]), want);
        }
    }
    /* The streaming form, fed in uneven pieces, gives the same digest. */
    struct csum_stream *cs = csum_stream_create();
    KT_CHECK(cs != NULL);
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        csum_stream_reset(cs);
        for (size_t at = 0, i = 0; at < lens[k]; i++) {
            size_t n = 1 + kt_mix(kt_seed + i) % (lens[k] / 3 + 1);
            n = n < lens[k] - at ? n : lens[k] - at;
            csum_stream_update(cs, buf + at, n);
            at += n;
        }
        KT_EQ(csum_stream_digest(cs), XXH3_64bits(buf, lens[k]));
    }
    csum_stream_destroy(cs);
    /* Speed, for the record (not asserted). */
    uint64_t (*const fns[])(const void *, size_t) = { csum64_sse2, csum64_avx2, csum64_avx512 };
    const char *names[] = { "sse2", "avx2", "avx512" };
    bool have[] = { true, has2, has512 };
    for (int f = 0; f < 3; f++) {
        if (!have[f])
            continue;
        uint64_t sink = 0;
        double t0 = kt_now();
        for (int i = 0; i < 2000; i++)
            sink += fns[f](buf + (i & 63) * 4096, 262144);
        double us = (kt_now() - t0) / 2000 * 1e6;
        printf("  %-6s 256 KiB in %.1f us (%.1f GB/s)%s\n", names[f], us,
               262144 / us / 1e3, sink == 1 ? "" : "");
    }
    printf("  csum64 uses %s\n", csum_impl());
    free(buf);
    printf("csum64: ok\n");
    return 0;
}
