/*
 * kcc_ring.h - ketama consistent-hash ring over a list of servers, laid out
 * as twemproxy's `distribution: ketama` with `hash: md5` (see kvcache.h).
 */
#ifndef KCC_RING_H
#define KCC_RING_H

#include <stddef.h>
#include <stdint.h>

/* One point of the continuum. */
struct kcc_point {
    uint32_t value;   /* position on the 32-bit circle */
    uint32_t server;  /* index of the server owning the arc ending here */
};

/* The continuum: points sorted by value. */
struct kcc_ring {
    struct kcc_point *points;  /* sorted ascending by value */
    uint32_t npoints;         /* number of points (about 160 per server) */
    uint32_t nservers;        /* servers the ring was built from */
};

/*
 * Build the ring for nservers servers with names[i] (as in twemproxy:
 * "host:port" or a socket path) and weights[i] >= 1 (NULL: all 1), with
 * `points` points per server of average weight (a multiple of 4; 160 gives
 * exactly twemproxy's ring, more gives a superset of its points and a more
 * even spread).  Returns 0 or KVCACHE_ENOMEM / KVCACHE_EINVAL.
 */
int kcc_ring_init(struct kcc_ring *ring, const char *const *names,
                 const uint32_t *weights, uint32_t nservers, uint32_t points);
void kcc_ring_deinit(struct kcc_ring *ring);

/* Server owning a 32-bit hash: first point >= hash, wrapping around. */
uint32_t kcc_ring_lookup(const struct kcc_ring *ring, uint32_t hash);

/* The ring hash of a 16-byte key: md5(key bytes), first 4 bytes as u32 LE. */
uint32_t kcc_ring_hash(const uint8_t key[16]);

#endif
