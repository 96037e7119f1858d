/*
 * kcc_shm.h - the client's side of the shared-memory path: Attach on a new
 * unix connection (the daemon's region mapped read-only, a staging area
 * mapped read-write), offsets to pointers, fire-and-forget releases.
 *
 * Mappings outlive connections: a region is mapped once per daemon run
 * (region_id) and kept until the handle is destroyed, so references and a
 * CUDA registration stay valid across reconnects to the same daemon; a new
 * daemon's region is mapped beside it. A staging area belongs to one
 * connection; an old one stays mapped while buffers reserved in it are out.
 */
#ifndef KCC_SHM_H
#define KCC_SHM_H

#include <stddef.h>
#include <stdint.h>

struct kcc_server;

/* A mapping kept until the handle ends. */
struct kcc_map {
    struct kcc_map *next;
    void *base;
    size_t size;
};

/* Shared-memory state of one server. */
struct kcc_shm {
    uint64_t conn_gen;        /* conn.nconnects when attached (0: never) */
    uint64_t tried_gen;       /* conn.nconnects when Attach was last tried */
    const uint8_t *region;    /* the region, read-only, or NULL */
    size_t region_size;
    uint64_t region_id;
    uint8_t *staging;         /* this connection's staging area, or NULL */
    size_t staging_size;
    uint64_t staging_id;      /* names it in staged puts */
    size_t staging_used;      /* bump pointer of reservations */
    size_t staging_out;       /* reserved buffers not given back */
    uint32_t lease_timeout_ms;
    struct kcc_map *old;      /* earlier regions and staging areas */
};

/* True if s's current connection is attached (gets may go by reference). */
int kcc_shm_on(const struct kcc_server *s);

/*
 * After a new unix connection: ask for the region (unless the URI or
 * KVCACHE_SHM=0 opted out) and map it. 0 also when the daemon offers none;
 * an I/O error or timeout returns its code (the caller closes the socket).
 */
int kcc_shm_attach(struct kcc_server *s, uint64_t deadline_ms);

/* Pointer to [off, off + len) of the region, or NULL if out of bounds. */
const void *kcc_shm_ptr(const struct kcc_server *s, uint64_t off, uint64_t len);

/* A connection generation as kept in a kvcache_ref (24 bits). */
#define KCC_GEN(g) ((uint32_t)(g) & 0xffffffu)

/* Send Release for leases[0..n) granted on connection gen (KCC_GEN); dropped when
 * that connection is gone (its leases ended with it). No answer awaited. */
void kcc_shm_release(struct kcc_server *s, uint64_t gen, const uint64_t *leases, size_t n,
                     uint64_t deadline_ms);

/* Unmap everything (handle destroy). */
void kcc_shm_deinit(struct kcc_shm *sh);

/* CLOCK_MONOTONIC in ns (the clock lease deadlines are in). */
uint64_t kcc_now_ns(void);

#endif
