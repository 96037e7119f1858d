/*
 * kb_hist.h - latency histograms of the load generator.
 *
 * Log-linear buckets (HdrHistogram's layout, simplified): values below 64 ns
 * have a bucket each; above, every power of two is cut into 32 sub-buckets,
 * so a percentile is off by at most 1/32 (3%). Recording is a shift and an
 * increment, cheap enough for every operation; each thread has its own
 * histograms, merged once at the end (or under the progress line's reads,
 * where a torn read of a counter only blurs a live figure).
 */
#ifndef KB_HIST_H
#define KB_HIST_H

#include <stdint.h>

#define KB_HIST_SUB_BITS 5
#define KB_HIST_SUB (1u << KB_HIST_SUB_BITS)
/* Up to 2^42 ns (73 minutes): more is clamped into the last bucket. */
#define KB_HIST_BUCKETS ((42 - KB_HIST_SUB_BITS) * KB_HIST_SUB + 2 * KB_HIST_SUB)

struct kb_hist {
    uint64_t count;                    /* values recorded */
    uint64_t sum_ns;                   /* their sum, for the mean */
    uint64_t max_ns;                   /* largest value */
    uint64_t b[KB_HIST_BUCKETS];       /* counts per bucket */
};

/* Record one latency in nanoseconds. */
void kb_hist_add(struct kb_hist *h, uint64_t ns);

/* Add every count of src into dst. */
void kb_hist_merge(struct kb_hist *dst, const struct kb_hist *src);

/* The value (ns) under which a fraction q (0..1) of the values lie; 0 if
 * empty. Returns the middle of the bucket, never more than max_ns. */
uint64_t kb_hist_quantile(const struct kb_hist *h, double q);

/* Bucket index of a value, and the lowest value of a bucket (for tests). */
unsigned kb_hist_bucket(uint64_t ns);
uint64_t kb_hist_bucket_low(unsigned idx);

#endif
