/*
 * kc_nsid.h - namespace descriptors: canonical bytes and the stable id.
 *
 * A namespace id is XXH3-64 (seed 0) of the canonical serialization below,
 * so every node and every restart derives the same id from the same
 * descriptor. All integers little-endian:
 *
 *   "kvns1"                 5 ASCII bytes (format tag)
 *   u32 model_len, model    model name bytes, 1..KC_NS_MODEL_MAX
 *   u32 layer_begin
 *   u32 layer_end
 *   u32 tokens_per_block
 *   u32 dtype_len, dtype    dtype name bytes, 0..KC_NS_DTYPE_MAX
 *   u32 kv_heads
 *   u32 head_dim
 *   u32 block_bytes
 *
 * The daemon stores these bytes as the store's opaque descriptor and parses
 * them back for ListNamespaces.
 */
#ifndef KC_NSID_H
#define KC_NSID_H

#include <stddef.h>
#include <stdint.h>

#define KC_NS_MODEL_MAX 256
#define KC_NS_DTYPE_MAX 32
#define KC_NS_CANON_MAX (5 + 4 + KC_NS_MODEL_MAX + 12 + 4 + KC_NS_DTYPE_MAX + 12)

/* A descriptor; strings are not NUL-terminated, lengths are explicit. */
struct kc_ns_desc {
    const char *model;
    uint32_t model_len;
    uint32_t layer_begin;
    uint32_t layer_end;
    uint32_t tokens_per_block;
    const char *dtype;
    uint32_t dtype_len;
    uint32_t kv_heads;
    uint32_t head_dim;
    uint32_t block_bytes;
};

/*
 * Write the canonical bytes of d into out (KC_NS_CANON_MAX bytes suffice).
 * Returns their length, or -1 if a string is empty (model) or too long.
 */
int kc_ns_canon(const struct kc_ns_desc *d, uint8_t *out, size_t cap);

/* Parse canonical bytes back; strings point into buf. 0 or -1. */
int kc_ns_parse(const uint8_t *buf, size_t len, struct kc_ns_desc *d);

/* The id of canonical bytes: XXH3-64 with seed 0. */
uint64_t kc_ns_id_of(const uint8_t *canon, size_t len);

/* Canonicalize and hash in one step; returns -1 if d is invalid. */
int kc_ns_id(const struct kc_ns_desc *d, uint64_t *id);

#endif
