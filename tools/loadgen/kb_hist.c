/*
 * kb_hist.c - log-linear latency histograms (kb_hist.h).
 */
#include "kb_hist.h"

unsigned kb_hist_bucket(uint64_t ns)
{
    if (ns < 2 * KB_HIST_SUB)
        return (unsigned)ns;
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);    /* >= SUB_BITS + 1 */
    unsigned shift = msb - KB_HIST_SUB_BITS;
    unsigned idx = shift * KB_HIST_SUB + (unsigned)(ns >> shift);
    return idx < KB_HIST_BUCKETS ? idx : KB_HIST_BUCKETS - 1;
}

uint64_t kb_hist_bucket_low(unsigned idx)
{
    if (idx < 2 * KB_HIST_SUB)
        return idx;
    /* idx = shift * SUB + top, with top in [SUB, 2 * SUB) */
    unsigned shift = idx / KB_HIST_SUB - 1;
    uint64_t top = idx % KB_HIST_SUB + KB_HIST_SUB;
    return top << shift;
}

void kb_hist_add(struct kb_hist *h, uint64_t ns)
{
    h->b[kb_hist_bucket(ns)]++;
    h->count++;
    h->sum_ns += ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void kb_hist_merge(struct kb_hist *dst, const struct kb_hist *src)
{
    for (unsigned i = 0; i < KB_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum_ns += src->sum_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
}

uint64_t kb_hist_quantile(const struct kb_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q < 0)
        q = 0;
    /* rank of the wanted value, 1-based: the smallest with q of the values
     * at or below it */
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank == 0)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < KB_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t lo = kb_hist_bucket_low(i);
            uint64_t hi = i + 1 < KB_HIST_BUCKETS ? kb_hist_bucket_low(i + 1) : lo;
            uint64_t mid = lo + (hi - lo) / 2;
            return mid > h->max_ns ? h->max_ns : mid;
        }
    }
    return h->max_ns;
}
