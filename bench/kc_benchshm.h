/*
 * kc_benchshm.h - the client's side of kvcached's shared memory for the
 * benchmarks that speak raw frames (kc_rpcbench): Attach (the region and a
 * staging area received with SCM_RIGHTS and mapped), and Release.
 * docs/shm.md describes the protocol; libkvcache has the same steps.
 */
#ifndef KC_BENCHSHM_H
#define KC_BENCHSHM_H

#include <stddef.h>
#include <stdint.h>

/* What Attach gave one connection. */
struct bshm {
    const uint8_t *region;   /* the daemon's region, read-only */
    size_t region_size;
    uint8_t *staging;        /* this connection's staging area */
    size_t staging_size;
    uint64_t staging_id;
    char pages[16];          /* "hugetlb", "thp" or "4k" */
};

/* Attach on a blocking unix connection fd (nothing else in flight; id is
 * the request id to use). Exits the program on failure. */
void bshm_attach(int fd, uint64_t id, struct bshm *s);

/* Send Release for one lease (no response comes). */
void bshm_release(int fd, uint64_t id, uint64_t lease);

/* Unmap. */
void bshm_deinit(struct bshm *s);

#endif
