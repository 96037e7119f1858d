/*
 * chat - a multi-turn chat against kvcached, the way an inference engine
 * would use libkvcache.  Two users talk to one model; both conversations
 * start with the same system prompt.  At each turn the "engine":
 *
 *   1. tokenizes the whole conversation so far (a toy tokenizer: one token
 *      per word, its id a hash of the word),
 *   2. computes the chain keys of its full blocks (kvcache_keys),
 *   3. asks the cache for the longest cached prefix (kvcache_get_prefix),
 *      the blocks landing straight in its "KV memory" (here: a buffer pool),
 *   4. "computes" the KV blocks that were missing (here: bytes derived from
 *      the key, so reused blocks can be checked byte for byte), and
 *   5. stores the new blocks (kvcache_put_async, flushed at the end).
 *
 * Usage: chat [URI] [-b BLOCK_BYTES] [-t TOKENS_PER_BLOCK] [-n TURNS]
 *   URI defaults to unix:./var/kvcached.sock (where kvcached listens when
 *   started with no flags).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvcache.h"

#define MAX_TOKENS 65536

static const char *system_prompt =
    "You are a helpful assistant for a team that runs large language models in "
    "production . Answer briefly , cite the configuration flags you rely on , and "
    "say so when you are not sure . The team runs pipeline-sharded inference on "
    "eight nodes , each with its own cache sidecar on local flash . Keep answers "
    "under a hundred words unless asked for more detail . Prefer concrete numbers "
    "over adjectives and never invent benchmark results .";

/* Each user's lines; the assistant answers with a canned reply per turn. */
static const char *user_lines[2][6] = {
    {"How large should a KV block be for an eight billion parameter model ?",
     "And if the context is one hundred thousand tokens long ?",
     "What happens when the sidecar on one node dies ?",
     "Does the cache survive a restart of the daemon ?",
     "How do I see the hit ratio ?",
     "Thanks , that is all ."},
    {"Which eviction policy does the cache use by default ?",
     "Can I give one node more cache than the others ?",
     "How are keys computed for a prompt ?",
     "What does a timeout cost the engine ?",
     "Is there a Python binding ?",
     "Great , thank you ."},
};

static const char *reply =
    "Here is a short answer with the flags that matter and a number or two to "
    "size it , plus a caveat about what I could not check .";

/* Toy tokenizer: append one token per space-separated word. */
static size_t tokenize(const char *text, uint32_t *out, size_t n, size_t cap)
{
    const char *p = text;
    while (*p && n < cap) {
        uint32_t h = 2166136261u;
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        while (*p && *p != ' ')
            h = (h ^ (uint8_t)*p++) * 16777619u;
        out[n++] = h % 128000;  /* a vocabulary of 128k tokens */
    }
    return n;
}

/* The "KV" bytes of a block: a stream seeded by its key, so any reused block
 * can be checked against what computing it would give. */
static void compute_block(kvcache_key_t key, uint8_t *buf, size_t len)
{
    uint64_t x = key.lo ^ (key.hi * 0x9e3779b97f4a7c15ULL);
    for (size_t i = 0; i + 8 <= len; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    const char *uri = "unix:./var/kvcached.sock";
    uint32_t tpb = 16, block = 65536;
    int turns = 6, opt, err = 0, rc = 1;
    static uint32_t conv[2][MAX_TOKENS];
    size_t ntok[2] = {0, 0}, total_reused = 0, total_blocks = 0;
    kvcache_key_t *keys = NULL;
    uint8_t *pool = NULL, *expect = NULL;
    void **bufs = NULL;
    kvcache_t *kc = NULL;
    uint64_t ns;

    while ((opt = getopt(argc, argv, "b:t:n:h")) != -1) {
        switch (opt) {
        case 'b': block = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 't': tpb = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'n': turns = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s [URI] [-b BLOCK_BYTES] [-t TOKENS_PER_BLOCK] "
                            "[-n TURNS]\n", argv[0]);
            return 2;
        }
    }
    if (optind < argc)
        uri = argv[optind];
    if (turns > 6)
        turns = 6;
    if (block < 8 || tpb == 0) {
        fprintf(stderr, "chat: bad block size or tokens per block\n");
        return 2;
    }

    kc = kvcache_create(uri, NULL, &err);
    if (kc == NULL) {
        fprintf(stderr, "chat: %s: %s\n", uri, kvcache_strerror(err));
        return 1;
    }
    kvcache_ns_desc_t desc = {.model = "toy-chat-model", .layer_begin = 0, .layer_end = 32,
                              .tokens_per_block = tpb, .dtype = "bf16", .kv_heads = 8,
                              .head_dim = 128, .block_bytes = block};
    err = kvcache_open_namespace(kc, &desc, &ns);
    printf("chat: %s, namespace %016llx (%u tokens, %u bytes per block)%s%s\n", uri,
           (unsigned long long)ns, tpb, block, err ? ": " : "", err ? kvcache_last_error(kc) : "");

    size_t maxblk = MAX_TOKENS / tpb;
    keys = calloc(maxblk, sizeof(*keys));
    bufs = calloc(maxblk, sizeof(*bufs));
    pool = malloc((size_t)block * 256);   /* a "KV memory" of 256 blocks */
    expect = malloc(block);
    if (!keys || !bufs || !pool || !expect)
        goto out;

    for (int u = 0; u < 2; u++)
        ntok[u] = tokenize(system_prompt, conv[u], 0, MAX_TOKENS);
    for (int turn = 0; turn < turns; turn++) {
        for (int u = 0; u < 2; u++) {
            size_t found = 0, nkeys, stored, nbuf;
            double t0, t_get;
            int bad = 0;

            ntok[u] = tokenize(user_lines[u][turn], conv[u], ntok[u], MAX_TOKENS);
            /* 2. keys of the full blocks of the conversation so far */
            nkeys = (size_t)kvcache_keys(ns, NULL, conv[u], ntok[u], tpb, keys, maxblk);
            nbuf = nkeys < 256 ? nkeys : 256;
            for (size_t i = 0; i < nbuf; i++)
                bufs[i] = pool + (size_t)i * block;
            /* 3. the cached prefix, straight into the pool */
            t0 = now_ms();
            err = kvcache_get_prefix(kc, ns, keys, nbuf, bufs, block, NULL, &found);
            t_get = now_ms() - t0;
            for (size_t i = 0; i < found; i++) {
                compute_block(keys[i], expect, block);
                bad += memcmp(expect, bufs[i], block) != 0;
            }
            /* 4. compute the rest, 5. store it (fire and forget) */
            for (size_t i = found; i < nbuf; i++)
                compute_block(keys[i], bufs[i], block);
            stored = nbuf - found;
            if (stored)
                kvcache_put_async(kc, ns, keys + found, stored, (uint32_t)found,
                                  (const void *const *)(bufs + found), block);
            printf("turn %d user %c: %4zu tokens, %3zu blocks: reused %3zu (%4zu tokens) "
                   "in %6.2f ms, computed %3zu%s%s%s\n",
                   turn + 1, 'A' + u, ntok[u], nkeys, found, found * tpb, t_get, stored,
                   bad ? " CORRUPT BLOCKS" : "", err ? " -- cache: " : "",
                   err ? kvcache_strerror(err) : "");
            total_reused += found;
            total_blocks += nbuf;
            /* the assistant answers; the answer becomes part of the prompt */
            ntok[u] = tokenize(reply, conv[u], ntok[u], MAX_TOKENS);
            /* let this turn's puts land before the next turn looks */
            kvcache_flush(kc, 1000);
            if (bad)
                goto out;
        }
    }
    kvcache_client_stats_t cs;
    kvcache_client_stats(kc, &cs);
    printf("reused %zu of %zu blocks (%.0f%%); async puts: %llu done, %llu dropped, "
           "%llu failed\n", total_reused, total_blocks,
           total_blocks ? 100.0 * total_reused / total_blocks : 0.0,
           (unsigned long long)cs.async_done, (unsigned long long)cs.async_dropped,
           (unsigned long long)cs.async_failed);
    rc = 0;
out:
    kvcache_destroy(kc);
    free(keys);
    free(bufs);
    free(pool);
    free(expect);
    return rc;
}
