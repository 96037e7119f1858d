/*
 * kc_key.c - prefix-chain keys (the layout is specified in kvcache.h) and
 * the byte form of a key.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "kvcache.h"

/* Store v as 8 little-endian bytes, whatever the host order. */
static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

long kvcache_keys(uint64_t ns_id, const kvcache_key_t *prev,
                  const uint32_t *tokens, size_t ntokens,
                  uint32_t tokens_per_block,
                  kvcache_key_t *keys, size_t max_keys)
{
    kvcache_key_t k = {KVCACHE_KEY_SEED_LO, KVCACHE_KEY_SEED_HI};
    size_t nblocks, hdr = 24, len;
    uint8_t stackbuf[24 + 4 * 256], *buf = stackbuf;

    if (tokens_per_block == 0 || (tokens == NULL && ntokens) || (keys == NULL && max_keys))
        return KVCACHE_EINVAL;
    nblocks = ntokens / tokens_per_block;
    if (nblocks > max_keys)
        nblocks = max_keys;
    if (nblocks == 0)
        return 0;
    if (prev)
        k = *prev;
    len = hdr + 4 * (size_t)tokens_per_block;
    if (len > sizeof(stackbuf)) {
        buf = malloc(len);
        if (buf == NULL)
            return KVCACHE_ENOMEM;
    }
    /* One buffer reused per block: ns_id ‖ prev.lo ‖ prev.hi ‖ tokens (LE). */
    put_le64(buf, ns_id);
    for (size_t b = 0; b < nblocks; b++) {
        const uint32_t *t = tokens + b * tokens_per_block;
        uint8_t *p = buf + hdr;
        put_le64(buf + 8, k.lo);
        put_le64(buf + 16, k.hi);
        for (uint32_t i = 0; i < tokens_per_block; i++, p += 4) {
            p[0] = (uint8_t)t[i];
            p[1] = (uint8_t)(t[i] >> 8);
            p[2] = (uint8_t)(t[i] >> 16);
            p[3] = (uint8_t)(t[i] >> 24);
        }
        XXH128_hash_t h = XXH3_128bits_withSeed(buf, len, 0);
        k.lo = h.low64;
        k.hi = h.high64;
        keys[b] = k;
    }
    if (buf != stackbuf)
        free(buf);
    return (long)nblocks;
}

void kvcache_key_to_bytes(kvcache_key_t key, uint8_t out[KVCACHE_KEY_BYTES])
{
    put_le64(out, key.lo);
    put_le64(out + 8, key.hi);
}

kvcache_key_t kvcache_key_from_bytes(const uint8_t in[KVCACHE_KEY_BYTES])
{
    kvcache_key_t k = {get_le64(in), get_le64(in + 8)};
    return k;
}
