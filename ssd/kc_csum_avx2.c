/*
 * kc_csum_avx2.c - xxh3-64 built for AVX2 (this file alone is compiled with
 * -mavx2; kc_csum.c calls it only on CPUs that have AVX2).
 */
#include "ssd/kc_csum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t csum64_avx2(const void *p, size_t len)
{
    return XXH3_64bits(p, len);
}

void csum_update_avx2(void *state, const void *p, size_t len)
{
    XXH3_64bits_update(state, p, len);
}
