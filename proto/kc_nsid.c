/*
 * kc_nsid.c - canonical namespace descriptor bytes and their XXH3-64 id.
 */
#include "kc_nsid.h"

#include <string.h>
#include <xxhash.h>

#include "kc_frame.h"

static const char ns_tag[5] = { 'k', 'v', 'n', 's', '1' };

int kc_ns_canon(const struct kc_ns_desc *d, uint8_t *out, size_t cap)
{
    size_t need;
    uint8_t *p = out;

    if (d->model_len == 0 || d->model_len > KC_NS_MODEL_MAX ||
        d->dtype_len > KC_NS_DTYPE_MAX)
        return -1;
    need = sizeof(ns_tag) + 4 + d->model_len + 12 + 4 + d->dtype_len + 12;
    if (need > cap)
        return -1;
    memcpy(p, ns_tag, sizeof(ns_tag)); p += sizeof(ns_tag);
    kc_put_le32(p, d->model_len); p += 4;
    memcpy(p, d->model, d->model_len); p += d->model_len;
    kc_put_le32(p, d->layer_begin); p += 4;
    kc_put_le32(p, d->layer_end); p += 4;
    kc_put_le32(p, d->tokens_per_block); p += 4;
    kc_put_le32(p, d->dtype_len); p += 4;
    if (d->dtype_len)
        memcpy(p, d->dtype, d->dtype_len);
    p += d->dtype_len;
    kc_put_le32(p, d->kv_heads); p += 4;
    kc_put_le32(p, d->head_dim); p += 4;
    kc_put_le32(p, d->block_bytes); p += 4;
    return (int)(p - out);
}

int kc_ns_parse(const uint8_t *buf, size_t len, struct kc_ns_desc *d)
{
    const uint8_t *p = buf, *end = buf + len;

    if (len < sizeof(ns_tag) + 4 || memcmp(p, ns_tag, sizeof(ns_tag)) != 0)
        return -1;
    p += sizeof(ns_tag);
    d->model_len = kc_get_le32(p); p += 4;
    if (d->model_len == 0 || d->model_len > KC_NS_MODEL_MAX ||
        (size_t)(end - p) < d->model_len + 16u)
        return -1;
    d->model = (const char *)p; p += d->model_len;
    d->layer_begin = kc_get_le32(p); p += 4;
    d->layer_end = kc_get_le32(p); p += 4;
    d->tokens_per_block = kc_get_le32(p); p += 4;
    d->dtype_len = kc_get_le32(p); p += 4;
    if (d->dtype_len > KC_NS_DTYPE_MAX ||
        (size_t)(end - p) != d->dtype_len + 12u)
        return -1;
    d->dtype = (const char *)p; p += d->dtype_len;
    d->kv_heads = kc_get_le32(p); p += 4;
    d->head_dim = kc_get_le32(p); p += 4;
    d->block_bytes = kc_get_le32(p);
    return 0;
}

uint64_t kc_ns_id_of(const uint8_t *canon, size_t len)
{
    return XXH3_64bits(canon, len);
}

int kc_ns_id(const struct kc_ns_desc *d, uint64_t *id)
{
    uint8_t buf[KC_NS_CANON_MAX];
    int n = kc_ns_canon(d, buf, sizeof(buf));

    if (n < 0)
        return -1;
    *id = kc_ns_id_of(buf, (size_t)n);
    return 0;
}
