/*
 * kc_csum.c - run-time choice of the xxh3-64 variant (kc_csum.h), and the
 * baseline SSE2 one.
 */
#include "ssd/kc_csum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t csum64_sse2(const void *p, size_t len)
{
    return XXH3_64bits(p, len);
}

typedef uint64_t (*csum_fn)(const void *, size_t);

/* Pick the widest variant this CPU runs. */
static csum_fn csum_pick(const char **name)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *name = "avx512";
        return csum64_avx512;
    }
    if (__builtin_cpu_supports("avx2")) {
        *name = "avx2";
        return csum64_avx2;
    }
    *name = "sse2";
    return csum64_sse2;
}

static csum_fn csum_chosen;
static const char *csum_name;

uint64_t csum64(const void *p, size_t len)
{
    /* Racy but benign: every thread computes the same choice. */
    if (__builtin_expect(csum_chosen == NULL, 0))
        csum_chosen = csum_pick(&csum_name);
    return csum_chosen(p, len);
}

const char *csum_impl(void)
{
    if (csum_chosen == NULL)
        csum_chosen = csum_pick(&csum_name);
    return csum_name;
}
