/*
 * kc_format.c - checksums of the on-device headers (see kc_format.h).
 */
#include "ssd/kc_format.h"

#include <stddef.h>
#include <xxhash.h>

#include "ssd/kc_csum.h"

void fmt_sb_seal(struct fmt_sb *sb)
{
    sb->csum = 0;
    sb->csum = XXH3_64bits(sb, sizeof(*sb) + (size_t)sb->ns_count * sizeof(struct fmt_ns));
}

bool fmt_sb_check(const struct fmt_sb *sb, uint64_t bytes_available)
{
    struct fmt_sb copy;

    if (sb->magic != FMT_SB_MAGIC || sb->version != FMT_VERSION)
        return false;
    if (sb->ns_count > FMT_NS_MAX ||
        sizeof(*sb) + (uint64_t)sb->ns_count * sizeof(struct fmt_ns) > bytes_available)
        return false;
    /* Checksum over a copy of the header with csum zeroed, then records. */
    copy = *sb;
    copy.csum = 0;
    XXH3_state_t *s = XXH3_createState();
    if (s == NULL)
        return false;
    XXH3_64bits_reset(s);
    XXH3_64bits_update(s, &copy, sizeof(copy));
    XXH3_64bits_update(s, sb + 1, (size_t)sb->ns_count * sizeof(struct fmt_ns));
    uint64_t sum = XXH3_64bits_digest(s);
    XXH3_freeState(s);
    return sum == sb->csum;
}

void fmt_slab_seal(struct fmt_slab *h)
{
    h->csum = 0;
    h->csum = XXH3_64bits(h, sizeof(*h));
}

bool fmt_slab_check(const struct fmt_slab *h)
{
    struct fmt_slab copy = *h;

    if (h->magic != FMT_SLAB_MAGIC || h->version != FMT_VERSION)
        return false;
    copy.csum = 0;
    return XXH3_64bits(&copy, sizeof(copy)) == h->csum;
}

bool fmt_slab_sane(const struct fmt_slab *h, uint32_t slab_size)
{
    return h->used % FMT_ALIGN == 0 && (uint64_t)h->nitems * FMT_ITEM_HDR <= h->used &&
           fmt_slab_fits(slab_size, h->used, h->nitems) && h->seq_hi >= h->seq;
}

uint64_t fmt_sum_csum(const void *sum, uint32_t nitems)
{
    return XXH3_64bits(sum, fmt_sum_bytes(nitems));
}

void fmt_item_seal(struct fmt_item *h, const void *value)
{
    h->magic = FMT_ITEM_MAGIC;
    h->vsum = csum64(value, h->len);
    h->hsum = XXH3_64bits(h, offsetof(struct fmt_item, hsum));
}

void fmt_tomb_seal(struct fmt_item *h, uint64_t order)
{
    h->magic = FMT_TOMB_MAGIC;
    h->len = 0;
    h->vsum = order;
    h->hsum = XXH3_64bits(h, offsetof(struct fmt_item, hsum));
}

bool fmt_item_check_hdr(const struct fmt_item *h)
{
    return (h->magic == FMT_ITEM_MAGIC || (h->magic == FMT_TOMB_MAGIC && h->len == 0)) &&
           XXH3_64bits(h, offsetof(struct fmt_item, hsum)) == h->hsum;
}

bool fmt_item_check_value(const struct fmt_item *h, const void *value)
{
    if (fmt_item_is_tomb(h))
        return true;
    return csum64(value, h->len) == h->vsum;
}
