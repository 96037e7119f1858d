/*
 * kc_store_int.h - the store's internal state, shared by the files of the
 * engine: kc_store.c (open, close, stats), kc_ns.c (namespaces), kc_mslab.c
 * (memory slabs, flush), kc_slaballoc.c (device slabs), kc_slabcount.c
 * (counts per slab and namespace), kc_put.c (puts, tombstones),
 * kc_reclaim.c (eviction, copies forward), kc_rebuild.c (recovery),
 * kc_read.c (get, match, delete) and kc_audit.c. Not a public header.
 */
#ifndef KC_STORE_INT_H
#define KC_STORE_INT_H

#include "slab/kc_admit.h"
#include "slab/kc_evict.h"
#include "slab/kc_index.h"
#include "slab/kc_store.h"
#include "ssd/kc_dev.h"
#include "ssd/kc_format.h"

#include <stdio.h>
#include <stdlib.h>

#define SLAB_NONE UINT32_MAX

/* A cheap invariant, checked in every build. */
#define KC_ASSERT(c) \
    do { if (!(c)) { fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #c); \
                     abort(); } } while (0)
#define STORE_CHUNK (4u << 20)        /* bytes per write of a flush */
#define STORE_RBUF_CACHE (256u << 20) /* read buffers kept for reuse */
#define STORE_ARENA_CHUNK (32u << 20) /* huge-page chunk for read buffers */
#define STORE_ARENA_MAX 16u           /* chunks at most (512 MiB) */
_Static_assert((uint64_t)STORE_ARENA_CHUNK * STORE_ARENA_MAX == STORE_READ_ARENA,
               "the arena's size is STORE_READ_ARENA");

enum mslab_state { MS_FREE = 0, MS_OPEN, MS_FLUSHING, MS_CLEAN };

/* A memory slab: the DRAM image of one device slab. */
struct mslab {
    uint8_t *buf;          /* slab_size bytes, 4 KiB aligned */
    bool ext;              /* buf came from cfg.mem_alloc (never unmapped) */
    uint32_t slab;         /* device slab it is the image of, or SLAB_NONE */
    uint8_t state;         /* enum mslab_state */
    bool full;             /* no more reservations: flush once writers is 0 */
    uint32_t used;         /* bytes of items handed out (FMT_ALIGN multiple) */
    uint32_t nitems;       /* items handed out (reservations included) */
    uint32_t writers;      /* reservations outstanding */
    uint32_t pins;         /* get batches holding pointers into buf */
    uint64_t tick;         /* last use: the coldest clean copy goes first */
    uint32_t chunks;       /* flush writes outstanding */
    int flush_err;
    struct dev_io *ios;    /* one per flush chunk */
    struct store *st;      /* owner, for flush completions */
};

/* How many live blocks (and bytes) of one namespace a slab holds. */
struct slab_ns {
    uint32_t nsidx;
    uint32_t items;
    uint64_t bytes;
};

/* A tombstone a slab holds: what is needed to copy it forward. */
struct slab_tomb {
    uint64_t key_lo, key_hi;
    uint64_t ns;           /* namespace id */
    uint64_t order;        /* sequence of the delete */
};

/* A device slab. */
struct slabinfo {
    struct slab_ns *nsv;   /* live blocks per namespace (usually one) */
    uint32_t nnsv, capnsv;
    struct slab_tomb *tombs;  /* tombstones in the slab (see slab_tomb_needed) */
    uint32_t ntombs, captombs;
    uint64_t seq;          /* taken at open: below every item in the slab */
    uint64_t seq_hi;       /* highest sequence of anything written into it */
    uint64_t seq_first;    /* lowest sequence written into it (UINT64_MAX:
                              nothing yet): pending until it is on the device */
    uint64_t item_min;     /* lowest sequence of a value item in it (not of a
                              tombstone); UINT64_MAX if none */
    uint64_t tomb_min;     /* lowest order of a tombstone in it (UINT64_MAX:
                              none): while unwritten, it may be all that
                              hides an older copy */
    uint64_t wait_seq;     /* retiring: copies up to this sequence must be on
                              the device before the slab is invalidated */
    bool retiring;         /* reclaimed, copies not yet durable: not free */
    bool invalidating;     /* its invalidation write is in flight */
    uint64_t bytes;        /* live value bytes */
    uint32_t nitems;       /* items written (holes included) */
    uint32_t used;         /* bytes of items from the slab's start */
    uint32_t nlive;        /* items indexed */
    uint32_t mem;          /* memory slab index + 1, or 0 */
    uint8_t state;         /* enum store_slab_state */
};

/* A namespace: a slot in the namespace table, persisted in the superblock. */
struct nsent {
    uint64_t id;
    uint32_t block_bytes;  /* 0 = variable */
    uint32_t epoch;
    bool live;
    uint32_t desc_len;
    uint8_t desc[FMT_NS_DESC_MAX];
    uint64_t items;        /* live blocks */
    uint64_t bytes;        /* their value bytes */
};

/* A flush in the order flushes started: the policy learns of written slabs
 * in that order, whatever order their writes complete in. */
struct flushq_ent {
    uint32_t slab;
    int done;              /* 0 in flight, 1 written, -1 lost */
};

/* A free read buffer. */
struct rbuf {
    void *p;
    uint32_t len;
    bool arena;            /* carved from the huge-page arena (never freed
                              alone) or allocated on its own */
};

struct store {
    struct store_config cfg;
    char *path;
    struct dev dev;
    uint32_t open_mem;      /* the memory slab puts go into, + 1 (0: none) */
    struct index ix;
    struct evict ev;
    struct admit adm;       /* which puts reach the device */

    uint32_t slab_size;
    uint32_t nslabs;
    struct slabinfo *slabs;
    uint16_t *slab_gen;     /* generation per slab, read by the index */
    uint32_t write_head;    /* where the search for a free slab starts */
    uint32_t nfree;
    uint64_t next_seq;      /* next item or slab sequence number */
    uint64_t seq_reserved;  /* sequences below it are reserved in the
                               superblock; reaching it writes a new range */
    uint32_t nretiring;     /* slabs waiting for their copies to be durable */
    uint32_t invalidating;  /* invalidation writes in flight */
    struct dev_io *inval_io;/* one per slab: its invalidation write */
    void *zero_blk;         /* FMT_BLOCK zero bytes: an invalid slab header */
    uint32_t flushing;      /* memory slabs being written */
    struct flushq_ent *fq;  /* flushes in the order they started (ring) */
    uint32_t fq_head, fq_len;

    uint32_t nmem;
    struct mslab *mem;
    uint64_t tick;

    uint64_t store_id;
    uint64_t sb_gen;
    uint64_t epoch_next;    /* next namespace epoch (persisted) */
    void *sbuf;             /* superblock buffer */

    struct nsent *ns;
    uint32_t nns;           /* slots used in ns[] */

    bool reinserting;       /* copying a victim's blocks forward */
    bool forwarding;        /* copying a victim's tombstones forward */
    bool closing;           /* store_close under way: no more reclaims */
    void *scratch;          /* slab_size bytes: a victim read back */
    uint32_t reclaiming;    /* victim being read back, or SLAB_NONE */
    struct dev_io reclaim_io;

    uint64_t items_max;     /* blocks the device holds at min_item_size */
    uint64_t sweep_step;    /* index entries swept per eviction */

    struct rbuf *rcache;    /* free read buffers, reused by exact size */
    uint32_t nrcache, caprcache;
    uint64_t rcache_bytes;  /* of them, those allocated on their own */
    void **arena;           /* huge-page chunks read buffers are carved from
                               (from cfg.mem_alloc when set: never freed) */
    uint32_t narena;
    uint8_t *arena_cur;     /* free space of the newest chunk */
    uint64_t arena_left;

    struct store_stats st;
    struct store_recovery rec;
};

/* kc_store.c */
void store_log(struct store *st, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct nsent *store_ns_find(struct store *st, uint64_t ns);
uint32_t store_entry_len(const struct store *st, const struct index_entry *e);
uint32_t store_entry_chain_pos(const struct store *st, const struct index_entry *e);
int store_sb_write(struct store *st);
uint64_t store_seq_take(struct store *st);
void store_seq_reserve(struct store *st, bool force);
int store_index_grow(struct store *st);
int store_barrier(struct store *st);

/* kc_rebuild.c */
int store_recover(struct store *st, char *err, size_t errlen);

/* kc_mslab.c: memory slabs and their flush */
int mslab_init_all(struct store *st);
void mslab_deinit_all(struct store *st);
/* Open the memory slab puts go into, tied to a fresh device slab (KC_EBUSY
 * while none can be had yet). */
int mslab_open(struct store *st, struct mslab **out);
/* A reservation of ms ended: write it out if it is full and now quiet. */
void mslab_writer_done(struct store *st, struct mslab *ms);
void mslab_flush(struct store *st, struct mslab *ms);
void mslab_unpin(struct store *st, uint32_t m);
void slab_detach_mem(struct store *st, uint32_t s);
bool mslab_flush_blockers(struct store *st);

/* kc_slaballoc.c: device-slab allocation */
/* The next free device slab (reclaiming one if none): 0, KC_EBUSY while
 * room is being made, KC_ENOSPC. */
int slab_alloc(struct store *st, uint32_t *out);
/* Reclaim ahead of need when few free slabs are left (see the file). */
void slab_reclaim_maybe(struct store *st);

/* kc_slabcount.c: live blocks and bytes per slab and namespace */
void slab_count_add(struct store *st, uint32_t s, uint32_t nsidx, uint64_t bytes);
void slab_forget_entry(struct store *st, const struct index_entry *e);
void slab_ns_release(struct store *st, struct slabinfo *si);
void slab_ns_free_all(struct store *st);

/* kc_put.c: puts and tombstones */
int store_tomb_write(struct store *st, uint64_t ns, const struct kc_key *key, uint64_t order);

/* kc_reclaim.c: eviction, copies forward, invalidation */
void slab_reclaim_ahead(struct store *st);
bool slab_reclaim(struct store *st, uint32_t s);
void reclaim_deinit(struct store *st);
void slab_drop(struct store *st, uint32_t s);
bool slab_tomb_add(struct slabinfo *si, const struct slab_tomb *t);
void slab_retire_check(struct store *st);
bool slab_blocks(const struct store *st, const struct mslab *ms, uint32_t v);

/* kc_read.c */
void *rbuf_get(struct store *st, uint32_t len);
void rbuf_put(struct store *st, void *p, uint32_t len);
void rbuf_deinit(struct store *st);

#endif
