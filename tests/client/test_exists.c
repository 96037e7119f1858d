/* test_exists: kvcache_exists against the real daemon: keys held anywhere in
 * a chain are reported one by one (match sees only the leading run), in the
 * caller's order, a deleted key turns absent, and bad arguments are
 * refused. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvcache.h"
#include "kc_daemon.h"
#include "kc_test.h"

#define BLOCK  4096    /* bytes per block */
#define TPB    16      /* tokens per block */
#define NBLK   12      /* blocks per chain */

static const kvcache_ns_desc_t desc = {
    .model = "exists-model", .layer_begin = 0, .layer_end = 1, .tokens_per_block = TPB,
    .dtype = "bf16", .kv_heads = 2, .head_dim = 64, .block_bytes = BLOCK,
};

int main(void)
{
    static struct kcd d;
    static uint8_t block[BLOCK];
    uint32_t tokens[NBLK * TPB];
    kvcache_key_t keys[NBLK], rev[NBLK];
    uint8_t present[NBLK];
    const void *bp[1] = { block };
    kvcache_t *kc;
    uint64_t ns;
    size_t n;
    int err = 0;

    signal(SIGPIPE, SIG_IGN);
    kcd_setup();
    rng_state = (uint64_t)getpid();
    kcd_start(&d, 0, 1);
    kc = kvcache_create(d.uri, NULL, &err);
    CHECK(kc != NULL);
    CHECK_RC(kvcache_open_namespace(kc, &desc, &ns));
    for (uint32_t i = 0; i < NBLK * TPB; i++)
        tokens[i] = (uint32_t)rng_next();
    CHECK(kvcache_keys(ns, NULL, tokens, NBLK * TPB, TPB, keys, NBLK) == NBLK);

    /* Only the odd blocks: the chain has no leading run at all. */
    for (uint32_t i = 1; i < NBLK; i += 2) {
        size_t stored = 0;
        memset(block, (int)i, BLOCK);
        CHECK_RC(kvcache_put(kc, ns, &keys[i], 1, i, bp, BLOCK, NULL, &stored));
        CHECK(stored == 1);
    }
    CHECK_RC(kvcache_match(kc, ns, keys, NBLK, &n));
    CHECK(n == 0);
    memset(present, 0xEE, sizeof(present));
    CHECK_RC(kvcache_exists(kc, ns, keys, NBLK, present, &n));
    CHECK(n == NBLK / 2);
    for (int i = 0; i < NBLK; i++)
        CHECK(present[i] == (i & 1));

    /* Any order: reversed keys, reversed answers; the count is optional. */
    for (int i = 0; i < NBLK; i++)
        rev[i] = keys[NBLK - 1 - i];
    CHECK_RC(kvcache_exists(kc, ns, rev, NBLK, present, NULL));
    for (int i = 0; i < NBLK; i++)
        CHECK(present[i] == ((NBLK - 1 - i) & 1));

    /* A deleted key is absent; the others stay. */
    CHECK_RC(kvcache_delete(kc, ns, &keys[3], 1, &n));
    CHECK(n == 1);
    CHECK_RC(kvcache_exists(kc, ns, keys, NBLK, present, &n));
    CHECK(n == NBLK / 2 - 1 && present[3] == 0 && present[1] == 1 && present[5] == 1);

    /* No keys is fine; keys without an answer array are not. */
    CHECK_RC(kvcache_exists(kc, ns, keys, 0, NULL, &n));
    CHECK(n == 0);
    CHECK(kvcache_exists(kc, ns, keys, NBLK, NULL, &n) == KVCACHE_EINVAL);
    CHECK(kvcache_exists(NULL, ns, keys, NBLK, present, &n) == KVCACHE_EINVAL);

    kvcache_destroy(kc);
    kcd_stop(&d, SIGTERM);
    printf("exists: ok\n");
    return 0;
}
