/* test_admit: hint admission through the real daemon (--evict fifo+hint):
 * once the store has evicted, blocks put with KVCACHE_HINT_DONE (sync and
 * async) are acknowledged but not stored, while blocks without the hint
 * are; before the store is full, hinted blocks are stored too. */
#include <signal.h>
#include <string.h>

#include "kvcache.h"
#include "kc_daemon.h"
#include "kc_test.h"

#define BLOCK  16384   /* bytes per block */
#define TPB    16      /* tokens per block */
#define NBLK   32      /* blocks per chain */

static const kvcache_ns_desc_t desc = {
    .model = "admit-model", .layer_begin = 0, .layer_end = 1, .tokens_per_block = TPB,
    .dtype = "bf16", .kv_heads = 2, .head_dim = 64, .block_bytes = BLOCK,
};

static uint8_t *blocks[NBLK];

/* The keys of chain number c (distinct tokens per chain). */
static void chain_keys(uint64_t ns, uint32_t c, kvcache_key_t *keys)
{
    static uint32_t tokens[NBLK * TPB];
    for (uint32_t i = 0; i < NBLK * TPB; i++)
        tokens[i] = c * NBLK * TPB + i;
    CHECK(kvcache_keys(ns, NULL, tokens, NBLK * TPB, TPB, keys, NBLK) == NBLK);
}

/* Put chain c with hints (synchronously); every status must be stored. */
static void put_chain(kvcache_t *kc, uint64_t ns, uint32_t c, uint32_t hints)
{
    kvcache_key_t keys[NBLK];
    int st[NBLK];
    size_t stored = 0;

    chain_keys(ns, c, keys);
    CHECK_RC(kvcache_put_hint(kc, ns, keys, NBLK, 0, hints, (const void *const *)blocks, BLOCK,
                              st, &stored));
    CHECK(stored == NBLK);
    for (int i = 0; i < NBLK; i++)
        CHECK(st[i] == KVCACHE_PUT_STORED);
}

/* Blocks of chain c the daemon has (leading run). */
static size_t have(kvcache_t *kc, uint64_t ns, uint32_t c)
{
    kvcache_key_t keys[NBLK];
    size_t n = 0;

    chain_keys(ns, c, keys);
    CHECK_RC(kvcache_match(kc, ns, keys, NBLK, &n));
    return n;
}

int main(void)
{
    static struct kcd d;
    kvcache_t *kc;
    uint64_t ns;
    int err = 0;
    kvcache_stats_t stats;
    uint32_t c = 1;

    signal(SIGPIPE, SIG_IGN);
    kcd_setup();
    for (int i = 0; i < NBLK; i++) {
        CHECK((blocks[i] = malloc(BLOCK)) != NULL);
        memset(blocks[i], i + 1, BLOCK);
    }
    kcd_start_opt(&d, 0, 1, "--evict", "fifo+hint");
    kc = kvcache_create(d.uri, NULL, &err);
    CHECK(kc != NULL);
    CHECK_RC(kvcache_open_namespace(kc, &desc, &ns));

    /* Room: a finished chain is kept. */
    put_chain(kc, ns, c, KVCACHE_HINT_DONE);
    CHECK(have(kc, ns, c) == NBLK);
    /* Fill the 64 MiB store until it evicts (about 4,000 blocks). */
    for (c = 2;; c++) {
        put_chain(kc, ns, c, 0);
        CHECK_RC(kvcache_stats(kc, 0, &stats));
        if (stats.evictions > 0)
            break;
        CHECK(c < 1000);
    }
    uint64_t puts = stats.puts;
    /* Full: a finished chain is acknowledged but not written. */
    put_chain(kc, ns, ++c, KVCACHE_HINT_DONE);
    CHECK(have(kc, ns, c) == 0);
    CHECK_RC(kvcache_stats(kc, 0, &stats));
    CHECK(stats.puts == puts);
    /* ... the same through the async queue ... */
    kvcache_key_t keys[NBLK];
    chain_keys(ns, ++c, keys);
    CHECK_RC(kvcache_put_async_hint(kc, ns, keys, NBLK, 0, KVCACHE_HINT_DONE,
                                    (const void *const *)blocks, BLOCK));
    CHECK(kvcache_flush(kc, 5000) == 0);
    CHECK(have(kc, ns, c) == 0);
    /* ... while a live chain is stored, and unknown hint bits are ignored. */
    put_chain(kc, ns, ++c, 0x100);
    CHECK(have(kc, ns, c) == NBLK);

    kvcache_destroy(kc);
    kcd_stop(&d, SIGTERM);
    for (int i = 0; i < NBLK; i++)
        free(blocks[i]);
    printf("admit: ok\n");
    return 0;
}
