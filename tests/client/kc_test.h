/*
 * kc_test.h - tiny assertion helpers of the client tests.  A failed check
 * prints where and exits 1; exit 77 means "skipped" to meson.
 */
#ifndef KC_TEST_H
#define KC_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond) do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1); \
        } \
    } while (0)

#define CHECK_EQ_U64(a, b) do { \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b); \
        if (a_ != b_) { \
            fprintf(stderr, "%s:%d: %s == %s failed: 0x%llx != 0x%llx\n", \
                    __FILE__, __LINE__, #a, #b, a_, b_); \
            exit(1); \
        } \
    } while (0)

#define CHECK_RC(expr) do { \
        long rc_ = (long)(expr); \
        if (rc_ < 0) { \
            fprintf(stderr, "%s:%d: %s returned %ld (%s)\n", __FILE__, __LINE__, \
                    #expr, rc_, kvcache_strerror((int)rc_)); \
            exit(1); \
        } \
    } while (0)


/* splitmix64: the tests' random numbers, from a seed each test prints
 * (KC_TEST_SEED to repeat) by setting rng_state. */
static uint64_t rng_state __attribute__((unused));

static inline uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
