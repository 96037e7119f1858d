/* test_match_where: kvcache_match_where against the real daemon (8 MiB of
 * memory slabs): blocks just put have a DRAM copy, blocks pushed out of
 * memory by later puts are on the SSD only, a mixed run is reported block by
 * block, and past the matched run where[] is 0; blocks read back intact. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvcache.h"
#include "kc_daemon.h"
#include "kc_test.h"

#define BLOCK  16384   /* bytes per block */
#define TPB    16      /* tokens per block */
#define NBLK   32      /* blocks per chain */
#define HALF   (NBLK / 2)

static const kvcache_ns_desc_t desc = {
    .model = "where-model", .layer_begin = 0, .layer_end = 1, .tokens_per_block = TPB,
    .dtype = "bf16", .kv_heads = 2, .head_dim = 64, .block_bytes = BLOCK,
};

static uint8_t *blocks[NBLK];

/* Put a chain of fresh random tokens (block i holds bytes i + fill) and
 * return its keys. */
static void put_chain(kvcache_t *kc, uint64_t ns, kvcache_key_t *keys, int fill)
{
    uint32_t tokens[NBLK * TPB];
    size_t stored = 0;

    for (uint32_t i = 0; i < NBLK * TPB; i++)
        tokens[i] = (uint32_t)rng_next();
    CHECK(kvcache_keys(ns, NULL, tokens, NBLK * TPB, TPB, keys, NBLK) == NBLK);
    for (int i = 0; i < NBLK; i++)
        memset(blocks[i], i + fill, BLOCK);
    CHECK_RC(kvcache_put(kc, ns, keys, NBLK, 0, (const void *const *)blocks, BLOCK, NULL,
                         &stored));
    CHECK(stored == NBLK);
}

int main(void)
{
    static struct kcd d;
    kvcache_key_t old[NBLK], fresh[NBLK], mixed[NBLK + 1];
    uint8_t where[NBLK + 1];
    kvcache_t *kc;
    uint64_t ns;
    size_t n;
    int err = 0;

    signal(SIGPIPE, SIG_IGN);
    kcd_setup();
    const char *env = getenv("KC_TEST_SEED");
    rng_state = env ? strtoull(env, NULL, 0) : (uint64_t)getpid();
    printf("seed %llu (KC_TEST_SEED to repeat)\n", (unsigned long long)rng_state);
    for (int i = 0; i < NBLK; i++)
        CHECK((blocks[i] = malloc(BLOCK)) != NULL);
    kcd_start(&d, 0, 1);
    kc = kvcache_create(d.uri, NULL, &err);
    CHECK(kc != NULL);
    CHECK_RC(kvcache_open_namespace(kc, &desc, &ns));

    /* A chain, then 24 MiB more (three times the memory slabs): the first
     * lives on the SSD only; the last chain put has its DRAM copy. */
    kvcache_key_t filler[NBLK];
    put_chain(kc, ns, old, 1);
    for (int c = 0; c < 48; c++)
        put_chain(kc, ns, filler, 2);
    put_chain(kc, ns, fresh, 3);

    memset(where, 0xEE, sizeof(where));
    CHECK_RC(kvcache_match_where(kc, ns, fresh, NBLK, &n, where));
    CHECK(n == NBLK);
    for (int i = 0; i < NBLK; i++)
        CHECK(where[i] == KVCACHE_WHERE_DRAM);
    CHECK_RC(kvcache_match_where(kc, ns, old, NBLK, &n, where));
    CHECK(n == NBLK);
    for (int i = 0; i < NBLK; i++)
        CHECK(where[i] == KVCACHE_WHERE_SSD);

    /* HALF from DRAM, HALF from the SSD, then a key nobody put. */
    memcpy(mixed, fresh, HALF * sizeof(*mixed));
    memcpy(mixed + HALF, old + HALF, HALF * sizeof(*mixed));
    mixed[NBLK] = fresh[0];
    mixed[NBLK].lo ^= 1;
    memset(where, 0xEE, sizeof(where));
    CHECK_RC(kvcache_match_where(kc, ns, mixed, NBLK + 1, &n, where));
    CHECK(n == NBLK);
    for (int i = 0; i < NBLK; i++)
        CHECK(where[i] == (i < HALF ? KVCACHE_WHERE_DRAM : KVCACHE_WHERE_SSD));
    CHECK(where[NBLK] == 0);
    /* The plain match agrees; bad arguments are refused. */
    CHECK_RC(kvcache_match(kc, ns, mixed, NBLK + 1, &n));
    CHECK(n == NBLK);
    CHECK(kvcache_match_where(kc, ns, mixed, NBLK, &n, NULL) == KVCACHE_EINVAL);

    /* What the SSD half says is so: those blocks read back intact. */
    uint32_t lens[NBLK];
    CHECK_RC(kvcache_get_prefix(kc, ns, old, NBLK, (void *const *)blocks, BLOCK, lens, &n));
    CHECK(n == NBLK);
    for (int i = 0; i < NBLK; i++)
        CHECK(lens[i] == BLOCK && blocks[i][0] == (uint8_t)(i + 1) &&
              blocks[i][BLOCK - 1] == (uint8_t)(i + 1));

    kvcache_destroy(kc);
    kcd_stop(&d, SIGTERM);
    for (int i = 0; i < NBLK; i++)
        free(blocks[i]);
    printf("match_where: ok\n");
    return 0;
}
