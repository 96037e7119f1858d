/*
 * kc_csum.c - run-time choice of the xxh3-64 variant (kc_csum.h), and the
 * baseline SSE2 one.
 */
#include "ssd/kc_csum.h"

#include <stdlib.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t csum64_sse2(const void *p, size_t len)
{
    return XXH3_64bits(p, len);
}

void csum_update_sse2(void *state, const void *p, size_t len)
{
    XXH3_64bits_update(state, p, len);
}

typedef uint64_t (*csum_fn)(const void *, size_t);
typedef void (*csum_update_fn)(void *, const void *, size_t);

static csum_update_fn csum_update_chosen;

/* Pick the widest variant this CPU runs (and its streaming update). */
static csum_fn csum_pick(const char **name)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *name = "avx512";
        csum_update_chosen = csum_update_avx512;
        return csum64_avx512;
    }
    if (__builtin_cpu_supports("avx2")) {
        *name = "avx2";
        csum_update_chosen = csum_update_avx2;
        return csum64_avx2;
    }
    *name = "sse2";
    csum_update_chosen = csum_update_sse2;
    return csum64_sse2;
}

static csum_fn csum_chosen;
static const char *csum_name;

/* The streaming state: xxh3's own, which wants 64-byte alignment. */
struct csum_stream {
    XXH3_state_t s;
};

struct csum_stream *csum_stream_create(void)
{
    void *p = NULL;

    if (csum_chosen == NULL)
        csum_chosen = csum_pick(&csum_name);
    if (posix_memalign(&p, 64, sizeof(struct csum_stream)) != 0)
        return NULL;
    csum_stream_reset(p);
    return p;
}

void csum_stream_destroy(struct csum_stream *cs)
{
    free(cs);
}

void csum_stream_reset(struct csum_stream *cs)
{
    XXH3_64bits_reset(&cs->s);
}

void csum_stream_update(struct csum_stream *cs, const void *p, size_t len)
{
    csum_update_chosen(&cs->s, p, len);
}

uint64_t csum_stream_digest(const struct csum_stream *cs)
{
    return XXH3_64bits_digest(&cs->s);
}

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
