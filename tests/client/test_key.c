/* test_key: the prefix-chain key test vectors of kvcache.h, and the chain's
 * properties (shared prefixes, continuation, namespaces, partial blocks). */
#include <string.h>

#include "kvcache.h"
#include "kc_test.h"

static void vectors(void)
{
    uint32_t t1[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};  /* 8 is a partial block */
    uint32_t t2[3] = {100000, 7, 4294967295u};
    kvcache_key_t k[4];
    uint8_t wire[16];
    static const uint8_t wire0[16] = {0x74, 0x3c, 0xa6, 0xc4, 0x8a, 0x87, 0x7e, 0x81,
                                      0x47, 0xb7, 0xab, 0xe3, 0xfc, 0xe9, 0x9e, 0x3a};

    CHECK(kvcache_keys(0, NULL, t1, 9, 4, k, 4) == 2);
    CHECK_EQ_U64(k[0].lo, 0x817e878ac4a63c74ULL);
    CHECK_EQ_U64(k[0].hi, 0x3a9ee9fce3abb747ULL);
    CHECK_EQ_U64(k[1].lo, 0x8a9cd36ceaad6c98ULL);
    CHECK_EQ_U64(k[1].hi, 0x7d632ffc95e37038ULL);
    kvcache_key_to_bytes(k[0], wire);
    CHECK(memcmp(wire, wire0, 16) == 0);
    kvcache_key_t back = kvcache_key_from_bytes(wire);
    CHECK(back.lo == k[0].lo && back.hi == k[0].hi);

    CHECK(kvcache_keys(0x0123456789abcdefULL, NULL, t2, 3, 3, k, 4) == 1);
    CHECK_EQ_U64(k[0].lo, 0xd23769ec822f574dULL);
    CHECK_EQ_U64(k[0].hi, 0x644086fdf0f46ce5ULL);

    /* The seed is the ASCII text of the header. */
    kvcache_key_t seed = {KVCACHE_KEY_SEED_LO, KVCACHE_KEY_SEED_HI};
    kvcache_key_to_bytes(seed, wire);
    CHECK(memcmp(wire, "kvcache-chain-v1", 16) == 0);
}

static void properties(void)
{
    enum { T = 300, N = 5 };  /* T > 256 takes the heap buffer path */
    static uint32_t a[T * N], b[T * N];
    kvcache_key_t ka[N], kb[N], kc[N];

    for (int i = 0; i < T * N; i++)
        a[i] = b[i] = (uint32_t)i * 2654435761u;
    b[3 * T + 5] ^= 1;  /* differ in block 3 */
    CHECK(kvcache_keys(42, NULL, a, T * N, T, ka, N) == N);
    CHECK(kvcache_keys(42, NULL, b, T * N, T, kb, N) == N);
    for (int i = 0; i < 3; i++)
        CHECK(ka[i].lo == kb[i].lo && ka[i].hi == kb[i].hi);
    for (int i = 3; i < N; i++)
        CHECK(ka[i].lo != kb[i].lo);
    /* Continuing from key[1] gives the same keys as one call. */
    CHECK(kvcache_keys(42, &ka[1], a + 2 * T, 3 * T, T, kc, N) == 3);
    for (int i = 0; i < 3; i++)
        CHECK(kc[i].lo == ka[i + 2].lo && kc[i].hi == ka[i + 2].hi);
    /* Another namespace shares nothing. */
    CHECK(kvcache_keys(43, NULL, a, T * N, T, kc, N) == N);
    for (int i = 0; i < N; i++)
        CHECK(kc[i].lo != ka[i].lo);
    /* max_keys caps, short input gives no key, bad arguments are refused. */
    CHECK(kvcache_keys(42, NULL, a, T * N, T, kc, 2) == 2);
    CHECK(kvcache_keys(42, NULL, a, T - 1, T, kc, N) == 0);
    CHECK(kvcache_keys(42, NULL, a, T, 0, kc, N) == KVCACHE_EINVAL);
    CHECK(kvcache_keys(42, NULL, a, T, T, NULL, N) == KVCACHE_EINVAL);
}

static void strerror_codes(void)
{
    for (int e = KVCACHE_E_BASE; e >= KVCACHE_E_LAST; e--)
        CHECK(strcmp(kvcache_strerror(e), "unknown error") != 0);
    CHECK(strcmp(kvcache_strerror(KVCACHE_E_LAST - 1), "unknown error") == 0);
    CHECK(strcmp(kvcache_strerror(-2), "No such file or directory") == 0);
    CHECK(strcmp(kvcache_strerror(0), "success") == 0);
}

int main(void)
{
    vectors();
    properties();
    strerror_codes();
    printf("key: ok\n");
    return 0;
}
