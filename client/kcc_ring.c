/*
 * kcc_ring.c - the ketama continuum.  Points are computed as twemproxy does so
 * that a fleet addressed through nutcracker and through this library agree
 * on where a key lives: each server gets floor(w/W * 40 * n) * 4 points (160
 * when weights are equal); the points of server NAME are the four LE words
 * of md5("NAME-i").  A larger `points` extends the same sequence of names,
 * which evens out the spread (relative deviation about 1/sqrt(points)).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvcache.h"
#include "kcc_md5.h"
#include "kcc_ring.h"

#define RING_POINTS_PER_HASH   4    /* one md5 digest gives four points */
#define RING_MAX_NAME          256

/* Word `i` (0..3) of a digest, little-endian. */
static uint32_t digest_word(const uint8_t d[16], int i)
{
    return (uint32_t)d[4 * i] | (uint32_t)d[4 * i + 1] << 8 |
           (uint32_t)d[4 * i + 2] << 16 | (uint32_t)d[4 * i + 3] << 24;
}

/* Order by value, then by server so that the (rare) ties are deterministic. */
static int point_cmp(const void *a, const void *b)
{
    const struct kcc_point *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return (x->server > y->server) - (x->server < y->server);
}

/* Points of one server: floor(w/W * points/4 * n) * 4, computed in float
 * with twemproxy's rounding so that points = 160 reproduces its ring. */
static uint32_t ring_server_points(uint32_t w, uint64_t total, uint32_t points,
                                   uint32_t nservers)
{
    float pct = (float)w / (float)total;
    return (uint32_t)floorf((float)(pct * (float)points / 4 * (float)nservers
                                    + 0.0000000001)) * 4;
}

int kcc_ring_init(struct kcc_ring *ring, const char *const *names,
                 const uint32_t *weights, uint32_t nservers, uint32_t points)
{
    uint64_t total = 0;
    size_t cap = 0, n = 0;

    memset(ring, 0, sizeof(*ring));
    if (nservers == 0 || points < RING_POINTS_PER_HASH || points > 1u << 20)
        return KVCACHE_EINVAL;
    for (uint32_t s = 0; s < nservers; s++) {
        uint32_t w = weights ? weights[s] : 1;
        if (w == 0)
            return KVCACHE_EINVAL;
        total += w;
    }
    for (uint32_t s = 0; s < nservers; s++)
        cap += ring_server_points(weights ? weights[s] : 1, total, points, nservers);
    ring->points = calloc(cap ? cap : 1, sizeof(*ring->points));
    if (ring->points == NULL)
        return KVCACHE_ENOMEM;
    for (uint32_t s = 0; s < nservers; s++) {
        uint32_t pts = ring_server_points(weights ? weights[s] : 1, total, points, nservers);
        for (uint32_t i = 0; i < pts / RING_POINTS_PER_HASH; i++) {
            char host[RING_MAX_NAME + 16];
            uint8_t d[16];
            int len = snprintf(host, sizeof(host), "%.*s-%u", RING_MAX_NAME, names[s], i);
            kcc_md5(host, (size_t)len, d);
            for (int x = 0; x < RING_POINTS_PER_HASH; x++) {
                ring->points[n].value = digest_word(d, x);
                ring->points[n].server = s;
                n++;
            }
        }
    }
    qsort(ring->points, n, sizeof(*ring->points), point_cmp);
    ring->npoints = (uint32_t)n;
    ring->nservers = nservers;
    return 0;
}

void kcc_ring_deinit(struct kcc_ring *ring)
{
    free(ring->points);
    memset(ring, 0, sizeof(*ring));
}

uint32_t kcc_ring_lookup(const struct kcc_ring *ring, uint32_t hash)
{
    uint32_t lo = 0, hi = ring->npoints;

    if (ring->npoints == 0)
        return 0;
    while (lo < hi) {  /* first point with value >= hash */
        uint32_t mid = lo + (hi - lo) / 2;
        if (ring->points[mid].value < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    return ring->points[lo == ring->npoints ? 0 : lo].server;
}

uint32_t kcc_ring_hash(const uint8_t key[16])
{
    uint8_t d[16];
    kcc_md5(key, 16, d);
    return digest_word(d, 0);
}
