/*
 * sim.h - the eviction simulator: replaying a trace through the real store
 * (slab/, opened with simulate = true: no device, no data) under one policy
 * and one capacity, and the exact block-granular bounds it is compared with
 * (an infinite cache, Belady's MIN) and block-granular baselines (a
 * per-block LRU, and FIFO with an oracle admission filter).
 *
 * Geometry: a 512-token block of the trace stands for one value of
 * value_bytes (default a 16 KiB slot less its 64-byte header), and a slab
 * of slab_size bytes holds blocks_per_slab of them (default 63 in 1 MiB:
 * the slab's summary and header take one block's worth). Capacities are counted in
 * blocks; a store of C blocks has round(C / blocks_per_slab) slabs.
 */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sim_trace.h"

/* How trace blocks map onto the store. */
struct sim_geo {
    uint32_t slab_size;        /* bytes per slab (a multiple of 1 MiB) */
    uint32_t value_bytes;      /* bytes of one simulated block */
    uint32_t blocks_per_slab;  /* what a slab holds of them */
    uint32_t mem_slabs;        /* DRAM budget, in memory slabs (at least 2) */
};

/* The geometry whose slabs hold as close to want blocks as can be had with
 * slabs of at most 16 MiB; 0 or -1 if want is out of range (1..4095). */
int sim_geo_init(struct sim_geo *g, uint32_t want, uint32_t mem_slabs);

/* What one run measured. */
struct sim_result {
    char trace[64];
    char policy[32];          /* "fifo", "reinsert:2", "MIN", "infinite" ... */
    uint64_t capacity;        /* blocks; 0 = infinite */
    uint64_t slabs;           /* store slabs (0 for the exact bounds) */
    uint64_t requests;
    uint64_t refs;            /* block references */
    uint64_t present;         /* of which present when asked for */
    uint64_t prefix_blocks;   /* of which in the leading run GetPrefix found */
    uint64_t tokens;          /* prompt tokens */
    uint64_t hit_tokens;      /* tokens covered by the leading runs */
    uint64_t puts;            /* blocks written by puts */
    uint64_t skipped;         /* blocks offered but not admitted */
    uint64_t reinserts;       /* blocks copied forward */
    uint64_t reinsert_dropped;
    uint64_t evictions;       /* slabs (or blocks, for the exact bounds) */
    uint64_t errors;          /* checksum failures and I/O errors (device) */
    double seconds;
};

static inline double sim_block_ratio(const struct sim_result *r)
{
    return r->refs ? (double)r->present / (double)r->refs : 0;
}
static inline double sim_prefix_ratio(const struct sim_result *r)
{
    return r->tokens ? (double)r->hit_tokens / (double)r->tokens : 0;
}
/* Blocks written to the device (puts admitted and copies forward) per
 * block offered: below 1 when admission refuses blocks. */
static inline double sim_wa(const struct sim_result *r)
{
    uint64_t offered = r->puts + r->skipped;
    return offered ? (double)(r->puts + r->reinserts) / (double)offered : 1.0;
}

/* With t->warm set, the counters are of the requests from t->warm on:
 * call sim_warm_at() at the top of each request of a replay, and
 * sim_unwarm() at the end. */
static inline void sim_warm_at(const struct sim_trace *t, size_t i, const struct sim_result *r,
                               struct sim_result *w)
{
    if (i == t->warm)
        *w = *r;
}
void sim_unwarm(const struct sim_trace *t, struct sim_result *r, const struct sim_result *w);

/* Tokens a leading run of found blocks covers in request r. */
uint64_t sim_hit_tokens(const struct sim_req *r, uint32_t found);

/* The 128-bit key of a block id (xxh3-128 of the id, seeded). */
void sim_key(uint32_t id, uint64_t *lo, uint64_t *hi);

/* Replay t through a simulated store with policy (a store_config.evict
 * spec, "evict[:param][+admit[:param]]", or a name with param; param 0 =
 * the policy's default) at capacity blocks; with t->hint set, puts carry
 * the hints it derives. Returns 0 or -1 with err. */
int sim_replay(const struct sim_trace *t, const struct sim_geo *g,
               const char *policy, uint32_t param, uint64_t capacity,
               struct sim_result *r, char *err, size_t errlen);

/* The same through a real store on the file or device at path (created
 * fresh; blocks are written and read back, verified), to check that the
 * simulation stands for the real thing. */
int sim_replay_dev(const struct sim_trace *t, const struct sim_geo *g,
                   const char *policy, uint32_t param, uint64_t capacity,
                   const char *device, struct sim_result *r, char *err, size_t errlen);

/* CPU cost of the put path under policy: n puts (chains of 16, every
 * other one marked finished) into a store of capacity blocks, reserve and
 * commit (value bytes left as they are), in nanoseconds of process CPU per
 * put: simulated, or on a real file or device when device is set (then
 * with checksums and writes; a simulated store finds a victim's blocks by
 * scanning the index, which a real one does not). Returns 0 or -1. */
int sim_put_cost(const struct sim_geo *g, const char *policy, uint64_t capacity, uint64_t n,
                 const char *device, double *ns_per_put, char *err, size_t errlen);

/* Print the structure of t's requests to f: the share that start a new
 * chain, repeat one, or continue or branch off one; the share of blocks
 * first put by finished chains (t->done) and read again; and per use of a
 * block (its first, second, ... reference) how often it is read again, and
 * again within each of the ncaps capacities (counted in new blocks put in
 * between, as a FIFO log that stores every block would see it). Returns 0
 * or -1 (out of memory). */
int sim_trace_stats(const struct sim_trace *t, const uint64_t *caps, size_t ncaps, FILE *f);

/* Exact block-granular bounds and baselines (sim_bound.c). */
int sim_bound_infinite(const struct sim_trace *t, struct sim_result *r);
int sim_bound_min(const struct sim_trace *t, uint64_t capacity, struct sim_result *r);
int sim_bound_lru(const struct sim_trace *t, uint64_t capacity, struct sim_result *r);
int sim_bound_fifo_oracle(const struct sim_trace *t, uint64_t capacity, struct sim_result *r);

#endif
