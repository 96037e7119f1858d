/*
 * kc_shm.h - the shared region: one memfd holding the store's memory slabs
 * and read buffers, offered to local clients on the Unix socket (Attach),
 * plus a per-connection staging area for puts by reference.
 *
 * Contract. The region is created before the store (the store takes its
 * memory through shm_region_alloc, store_config.mem_alloc) and destroyed
 * after store_close. It is sealed against growing and shrinking (a client
 * cannot make the daemon fault) and, where the kernel has it, against new
 * writable mappings (F_SEAL_FUTURE_WRITE): clients map it PROT_READ. Pages:
 * hugetlb (MFD_HUGETLB, when enough huge pages are reserved), else shmem THP
 * (madvise, when shmem_enabled allows it), else 4 KiB pages; the start-up
 * log says which. Only the Unix socket (mode 0600: the same user) offers it.
 *
 * A staging area is a memfd of its own per attached connection, read-write
 * for the client, sealed against resizing; the daemon copies committed
 * blocks out of it (kc_put.c), so nothing a client writes there afterwards
 * changes a stored block.
 */
#ifndef KC_SHM_H
#define KC_SHM_H

#include <stdbool.h>
#include <stdint.h>

#include "kvcache.pb-c.h"

struct conn;

/* Leases one connection may hold, and the slots of its id table (twice
 * as many: a new id is chosen so that its slot is free, so a lookup is
 * one slot). */
#define LEASE_COUNT_MAX 4096
#define LEASE_SLOTS (2 * LEASE_COUNT_MAX)

/* Offset of a block that is not in the region (sent in the data section). */
#define SHM_INLINE UINT64_MAX

/* The daemon's shared region. */
struct shm_region {
    int fd;               /* the memfd, -1 when off */
    uint8_t *base;        /* mapped read-write here */
    uint64_t size;        /* bytes mapped */
    uint64_t used;        /* bytes handed out by shm_region_alloc */
    uint64_t id;          /* random: tells clients one daemon run */
    const char *pages;    /* "hugetlb", "thp" or "4k" */
};

/* A connection's shared-memory state (NULL until it attaches). */
struct shm_conn {
    int staging_fd;        /* memfd of the staging area, -1 if none */
    uint8_t *staging;      /* mapped read-write here */
    uint64_t staging_size;
    uint64_t staging_id;   /* random, nonzero: staged puts must name it */
    struct get_ctx *lhead, *ltail; /* leases held, oldest first (kc_lease.c) */
    struct get_ctx **lslots; /* lease by id % LEASE_SLOTS (kc_lease.c) */
    uint32_t nleases;
    uint64_t lease_bytes;  /* block bytes they hold */
    uint64_t next_lease;   /* lease id counter */
};

/*
 * Create the region: mode "off" (nothing, fd -1), "auto", "hugetlb", "thp"
 * or "4k"; size is rounded up to the page size. 0, or -1 (logged).
 */
int shm_region_init(struct shm_region *r, const char *mode, uint64_t size);

/* Unmap and close (after store_close). */
void shm_region_deinit(struct shm_region *r);

/* store_config.mem_alloc: len bytes of the region (2 MiB aligned from
 * 2 MiB up, else 4 KiB aligned), or NULL when it is off or used up. */
void *shm_region_alloc(void *arg, uint64_t len);

/* Offset of [p, p + len) in the region, or SHM_INLINE if it is not inside. */
uint64_t shm_region_offset(const struct shm_region *r, const void *p, uint64_t len);

/* op_attach (kc_dispatch.h), the Attach operation, is here: it answers
 * with the region and a new staging area. */

/* Free a connection's staging area (at close; its leases are dropped
 * first, lease_drop_all). */
void shm_conn_close(struct conn *c);

#endif
