/* test_live: every call of libkvcache against one real kvcached, over the
 * Unix socket and TCP; blocks byte-identical in the caller's buffers; a
 * frozen daemon (SIGSTOP) costs a miss within the timeout; a restarted
 * daemon is reconnected to.  Seeded; KC_TEST_SEED repeats a run. */
#include <signal.h>
#include <string.h>
#include <time.h>

#include "kvcache.h"
#include "kc_daemon.h"
#include "kc_test.h"

#define BLOCK  16384   /* bytes per block */
#define TPB    16      /* tokens per block */
#define NBLK   40      /* blocks in the test chain */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const kvcache_ns_desc_t desc = {
    .model = "test-model", .layer_begin = 0, .layer_end = 4, .tokens_per_block = TPB,
    .dtype = "bf16", .kv_heads = 2, .head_dim = 64, .block_bytes = BLOCK,
};

static uint32_t tokens[NBLK * TPB];
static kvcache_key_t keys[NBLK + 8];
static uint8_t *blocks[NBLK];          /* what we put */
static uint8_t *out[NBLK + 8];         /* where we read */

static void clear_out(void)
{
    for (int i = 0; i < NBLK + 8; i++)
        memset(out[i], 0xEE, BLOCK);
}

/* Every call on one handle connected to uri. */
static void every_call(const char *uri, uint64_t salt)
{
    kvcache_t *kc;
    uint64_t ns;
    size_t n;
    int err = 0, st[NBLK];
    uint32_t lens[NBLK + 8];
    kvcache_stats_t stats;

    printf("every call over %s\n", uri);
    kc = kvcache_create(uri, NULL, &err);
    CHECK(kc != NULL);
    CHECK_RC(kvcache_open_namespace(kc, &desc, &ns));
    uint64_t id2;
    CHECK_RC(kvcache_ns_id(&desc, &id2));
    CHECK(ns == id2);

    /* A fresh chain: keys of NBLK blocks (tokens salted per run). */
    for (int i = 0; i < NBLK * TPB; i++)
        tokens[i] = (uint32_t)(rng_next() ^ salt);
    CHECK(kvcache_keys(ns, NULL, tokens, NBLK * TPB, TPB, keys, NBLK) == NBLK);
    for (int i = 0; i < NBLK; i++)
        for (int j = 0; j < BLOCK; j += 8) {
            uint64_t v = rng_next();
            memcpy(blocks[i] + j, &v, 8);
        }
    /* Nothing there yet. */
    CHECK_RC(kvcache_match(kc, ns, keys, NBLK, &n));
    CHECK(n == 0);
    CHECK_RC(kvcache_get_prefix(kc, ns, keys, NBLK, (void *const *)out, BLOCK, lens, &n));
    CHECK(n == 0);

    /* Put the first 30 blocks, then the rest starting at position 30. */
    CHECK_RC(kvcache_put(kc, ns, keys, 30, 0, (const void *const *)blocks, BLOCK, st, &n));
    CHECK(n == 30);
    for (int i = 0; i < 30; i++)
        CHECK(st[i] == KVCACHE_PUT_STORED);
    CHECK_RC(kvcache_match(kc, ns, keys, NBLK, &n));
    CHECK(n == 30);
    /* Again: idempotent. */
    CHECK_RC(kvcache_put(kc, ns, keys, 30, 0, (const void *const *)blocks, BLOCK, st, &n));
    CHECK(n == 30 && st[0] == KVCACHE_PUT_EXISTS && st[29] == KVCACHE_PUT_EXISTS);
    CHECK_RC(kvcache_put(kc, ns, keys + 30, NBLK - 30, 30,
                         (const void *const *)(blocks + 30), BLOCK, NULL, &n));
    CHECK(n == NBLK - 30);

    /* The whole prefix, byte-identical, in our buffers. */
    clear_out();
    CHECK_RC(kvcache_get_prefix(kc, ns, keys, NBLK, (void *const *)out, BLOCK, lens, &n));
    CHECK(n == NBLK);
    for (int i = 0; i < NBLK; i++) {
        CHECK(lens[i] == BLOCK);
        CHECK(memcmp(out[i], blocks[i], BLOCK) == 0);
    }
    /* A longer request stops where the cache does. */
    kvcache_key_t more[NBLK + 8];
    memcpy(more, keys, sizeof(kvcache_key_t) * NBLK);
    uint32_t extra[8 * TPB];
    for (int i = 0; i < 8 * TPB; i++)
        extra[i] = (uint32_t)rng_next();
    CHECK(kvcache_keys(ns, &keys[NBLK - 1], extra, 8 * TPB, TPB, more + NBLK, 8) == 8);
    clear_out();
    CHECK_RC(kvcache_get_prefix(kc, ns, more, NBLK + 8, (void *const *)out, BLOCK, NULL, &n));
    CHECK(n == NBLK);
    CHECK(memcmp(out[NBLK - 1], blocks[NBLK - 1], BLOCK) == 0);
    CHECK(out[NBLK][0] == 0xEE && out[NBLK][BLOCK - 1] == 0xEE);

    /* get: arbitrary keys, hits and misses. */
    kvcache_key_t mix[4] = {keys[5], more[NBLK + 1], keys[0], more[NBLK + 3]};
    clear_out();
    CHECK_RC(kvcache_get(kc, ns, mix, 4, (void *const *)out, BLOCK, lens, &n));
    CHECK(n == 2);
    CHECK(lens[0] == BLOCK && lens[1] == 0 && lens[2] == BLOCK && lens[3] == 0);
    CHECK(memcmp(out[0], blocks[5], BLOCK) == 0 && memcmp(out[2], blocks[0], BLOCK) == 0);

    /* delete block 10: the prefix now stops there. */
    CHECK_RC(kvcache_delete(kc, ns, &keys[10], 1, &n));
    CHECK(n == 1);
    CHECK_RC(kvcache_delete(kc, ns, &keys[10], 1, &n));
    CHECK(n == 0);
    CHECK_RC(kvcache_get_prefix(kc, ns, keys, NBLK, (void *const *)out, BLOCK, NULL, &n));
    CHECK(n == 10);
    CHECK_RC(kvcache_match(kc, ns, keys, NBLK, &n));
    CHECK(n == 10);

    /* async put refills it; flush waits for it. */
    CHECK_RC(kvcache_put_async(kc, ns, &keys[10], 1, 10, (const void *const *)&blocks[10], BLOCK));
    CHECK_RC(kvcache_flush(kc, 2000));
    CHECK_RC(kvcache_get_prefix(kc, ns, keys, NBLK, (void *const *)out, BLOCK, NULL, &n));
    CHECK(n == NBLK);
    CHECK(memcmp(out[10], blocks[10], BLOCK) == 0);
    kvcache_client_stats_t cs;
    CHECK_RC(kvcache_client_stats(kc, &cs));
    CHECK(cs.async_queued == 1 && cs.async_done == 1 && cs.async_failed == 0);

    /* Wrong sizes are refused per key, and a too-small buffer is an error. */
    CHECK(kvcache_put(kc, ns, more + NBLK, 1, NBLK, (const void *const *)blocks, BLOCK / 2,
                      st, &n) == KVCACHE_ESIZE);
    CHECK(n == 0 && st[0] == KVCACHE_ESIZE);
    CHECK(kvcache_get_prefix(kc, ns, keys, 2, (void *const *)out, BLOCK - 1, NULL, &n) ==
          KVCACHE_ESIZE);
    CHECK(n == 0);

    CHECK_RC(kvcache_stats(kc, 0, &stats));
    printf("  stats: items %llu bytes %llu hits %llu misses %llu puts %llu\n",
           (unsigned long long)stats.items, (unsigned long long)stats.bytes,
           (unsigned long long)stats.hits, (unsigned long long)stats.misses,
           (unsigned long long)stats.puts);
    CHECK(stats.items >= NBLK && stats.hits > 0);
    CHECK(kvcache_stats(kc, 1, &stats) == KVCACHE_EINVAL);
    int health = -1;
    char reason[128];
    CHECK_RC(kvcache_health(kc, 0, &health, reason, sizeof(reason)));
    CHECK(health == KVCACHE_HEALTH_OK);
    kvcache_destroy(kc);
}

/* A bounded async queue drops what does not fit, and says so. */
static void async_bounds(const char *uri)
{
    kvcache_options_t o = {.async_max_items = 2, .async_max_bytes = 3 * BLOCK};
    kvcache_client_stats_t cs;
    kvcache_t *kc = kvcache_create(uri, &o, NULL);
    uint64_t ns;
    int full = 0;

    CHECK(kc);
    CHECK_RC(kvcache_open_namespace(kc, &desc, &ns));
    /* Four blocks at once are over the byte bound. */
    CHECK(kvcache_put_async(kc, ns, keys, 4, 0, (const void *const *)blocks, BLOCK) ==
          KVCACHE_EFULL);
    for (int i = 0; i < 50; i++)
        full += kvcache_put_async(kc, ns, &keys[i % NBLK], 1, (uint32_t)(i % NBLK),
                                  (const void *const *)&blocks[i % NBLK], BLOCK) == KVCACHE_EFULL;
    CHECK_RC(kvcache_flush(kc, 5000));
    CHECK_RC(kvcache_client_stats(kc, &cs));
    printf("async bounds: %d of 50 dropped, %llu done\n", full, (unsigned long long)cs.async_done);
    CHECK(cs.async_dropped == (uint64_t)full + 1);
    CHECK(cs.async_done + cs.async_failed == cs.async_queued);
    kvcache_destroy(kc);
}

/* SIGSTOP: a call returns within its timeout with a miss; then the server is
 * skipped at once for retry_ms; after SIGCONT it serves again. */
static void frozen(struct kcd *d)
{
    kvcache_options_t o = {.timeout_ms = 200, .retry_ms = 300};
    kvcache_t *kc = kvcache_create(d->uri, &o, NULL);
    uint64_t ns, t0, dt;
    size_t n = 99;
    int rc;

    CHECK(kc);
    CHECK_RC(kvcache_open_namespace(kc, &desc, &ns));
    CHECK_RC(kvcache_get_prefix(kc, ns, keys, NBLK, (void *const *)out, BLOCK, NULL, &n));
    CHECK(n == NBLK);
    kcd_freeze(d);
    t0 = now_ms();
    rc = kvcache_get_prefix(kc, ns, keys, NBLK, (void *const *)out, BLOCK, NULL, &n);
    dt = now_ms() - t0;
    printf("frozen daemon: get_prefix returned %s after %llu ms, found %zu (%s)\n",
           kvcache_strerror(rc), (unsigned long long)dt, n, kvcache_last_error(kc));
    CHECK(rc == KVCACHE_ETIMEDOUT && n == 0);
    CHECK(dt >= 190 && dt < 400);
    t0 = now_ms();
    rc = kvcache_match(kc, ns, keys, NBLK, &n);
    CHECK(rc == KVCACHE_EDOWN && n == 0 && now_ms() - t0 < 50);
    int health = -1;
    CHECK(kvcache_health(kc, 0, &health, NULL, 0) == KVCACHE_EDOWN);
    CHECK(health == KVCACHE_HEALTH_DOWN);
    /* A frozen daemon accepts connections (the kernel does) but never
     * answers: after the retry delay the call times out again. */
    struct timespec ts = {0, 350 * 1000000};
    nanosleep(&ts, NULL);
    t0 = now_ms();
    rc = kvcache_put(kc, ns, keys, 1, 0, (const void *const *)blocks, BLOCK, NULL, &n);
    dt = now_ms() - t0;
    CHECK(rc == KVCACHE_ETIMEDOUT && n == 0 && dt < 400);
    kcd_thaw(d);
    nanosleep(&ts, NULL);
    CHECK_RC(kvcache_get_prefix(kc, ns, keys, NBLK, (void *const *)out, BLOCK, NULL, &n));
    CHECK(n == NBLK && memcmp(out[7], blocks[7], BLOCK) == 0);
    kvcache_destroy(kc);
}

/* The daemon restarts between two calls: the next call reconnects by itself
 * and finds the blocks again (the store is warm). */
static void restart(struct kcd *d)
{
    kvcache_t *kc = kvcache_create(d->uri, NULL, NULL);
    kvcache_client_stats_t cs;
    uint64_t ns;
    size_t n;

    CHECK(kc);
    CHECK_RC(kvcache_open_namespace(kc, &desc, &ns));
    CHECK_RC(kvcache_match(kc, ns, keys, NBLK, &n));
    CHECK(n == NBLK);
    kcd_stop(d, SIGTERM);
    kcd_start(d, d->idx, 0);
    clear_out();
    CHECK_RC(kvcache_get_prefix(kc, ns, keys, NBLK, (void *const *)out, BLOCK, NULL, &n));
    printf("restart: found %zu of %d after the restart\n", n, NBLK);
    CHECK(n == NBLK && memcmp(out[NBLK - 1], blocks[NBLK - 1], BLOCK) == 0);
    CHECK_RC(kvcache_client_stats(kc, &cs));
    CHECK(cs.connects == 2);
    /* Killed, not restarted: a miss and an error, quickly. */
    kcd_stop(d, SIGKILL);
    uint64_t t0 = now_ms();
    int rc = kvcache_match(kc, ns, keys, NBLK, &n);
    CHECK(rc < 0 && n == 0 && now_ms() - t0 < 100);
    printf("dead daemon: %s (%s)\n", kvcache_strerror(rc), kvcache_last_error(kc));
    kcd_start(d, d->idx, 0);
    CHECK_RC(kvcache_match(kc, ns, keys, NBLK, &n));
    CHECK(n == NBLK);
    /* Restarted empty (--fresh): the daemon no longer knows the namespace;
     * the handle opens it again by itself and the put goes through. */
    kcd_stop(d, SIGKILL);
    kcd_start(d, d->idx, 1);
    int st[2];
    CHECK_RC(kvcache_put(kc, ns, keys, 2, 0, (const void *const *)blocks, BLOCK, st, &n));
    CHECK(n == 2 && st[0] == KVCACHE_PUT_STORED && st[1] == KVCACHE_PUT_STORED);
    CHECK_RC(kvcache_get_prefix(kc, ns, keys, NBLK, (void *const *)out, BLOCK, NULL, &n));
    CHECK(n == 2 && memcmp(out[1], blocks[1], BLOCK) == 0);
    printf("fresh daemon: namespace reopened by the handle, put and get_prefix ok\n");
    kvcache_destroy(kc);
}

/* The daemon closes a connection that stayed idle: the next call notices
 * before sending and opens a new one, without an error. */
static void idle_closed(struct kcd *d)
{
    kvcache_t *kc;
    kvcache_client_stats_t cs;
    uint64_t ns;
    size_t n;

    kcd_stop(d, SIGTERM);
    kcd_start_opt(d, d->idx, 0, "--idle-timeout", "1");
    kc = kvcache_create(d->uri, NULL, NULL);
    CHECK(kc);
    CHECK_RC(kvcache_open_namespace(kc, &desc, &ns));
    CHECK_RC(kvcache_match(kc, ns, keys, NBLK, &n));
    struct timespec ts = {2, 200 * 1000000};
    nanosleep(&ts, NULL);
    CHECK_RC(kvcache_match(kc, ns, keys, NBLK, &n));
    CHECK_RC(kvcache_client_stats(kc, &cs));
    printf("idle-closed connection: call ok, %llu connects\n", (unsigned long long)cs.connects);
    CHECK(cs.connects == 2);
    kvcache_destroy(kc);
}

int main(void)
{
    static struct kcd d;
    const char *env = getenv("KC_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);

    printf("seed %llu (KC_TEST_SEED to repeat)\n", (unsigned long long)seed);
    rng_state = seed;
    signal(SIGPIPE, SIG_IGN);
    kcd_setup();
    for (int i = 0; i < NBLK; i++)
        CHECK((blocks[i] = malloc(BLOCK)) != NULL);
    for (int i = 0; i < NBLK + 8; i++)
        CHECK((out[i] = malloc(BLOCK)) != NULL);
    kcd_start(&d, 0, 1);
    every_call(d.uri, 1);
    every_call(d.tcp_uri, 2);
    async_bounds(d.uri);
    frozen(&d);
    restart(&d);
    idle_closed(&d);
    for (int i = 0; i < NBLK; i++)
        free(blocks[i]);
    for (int i = 0; i < NBLK + 8; i++)
        free(out[i]);
    printf("live: ok\n");
    return 0;
}
