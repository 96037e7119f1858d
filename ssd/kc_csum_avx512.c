/*
 * kc_csum_avx512.c - xxh3-64 built for AVX-512 (this file alone is compiled with
 * -mavx512f; kc_csum.c calls it only on CPUs that have it).
 */
#include "ssd/kc_csum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t csum64_avx512(const void *p, size_t len)
{
    return XXH3_64bits(p, len);
}

void csum_update_avx512(void *state, const void *p, size_t len)
{
    XXH3_64bits_update(state, p, len);
}
