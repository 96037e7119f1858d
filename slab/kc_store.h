/*
 * kc_store.h - the kvcached storage engine: the contract.
 *
 * A store keeps fixed-size KV-cache blocks of LLM prefixes in DRAM memory
 * slabs and on an SSD (a regular file or a block device) cut into slabs that
 * each hold blocks of any size (a log segment with a summary at its end),
 * written log-structured and evicted a whole slab at a time (after Twitter
 * fatcache's design), through io_uring with O_DIRECT.
 *
 * Threading: a store is used by one thread at a time. Nothing here blocks on
 * the device except the calls marked "synchronous". Asynchronous reads end in
 * a callback that runs inside store_poll(), on the caller's thread.
 *
 * Errors: functions return 0 or a negative KC_E* code (kc_strerror() names
 * it); per-item outcomes are in the item's status field (KC_OK, KC_EXISTS,
 * KC_MISS or a negative code).
 *
 * Keys: a block is named by a 128-bit key (xxh3-128 over its prefix chain,
 * computed by clients) inside a 64-bit namespace. Every block of a namespace
 * has the namespace's block size, unless the namespace was opened with
 * block_bytes 0 (variable sizes). Slabs take blocks of any size and
 * namespace, packed at 64 bytes.
 *
 * On the device (see ssd/kc_format.h): a superblock with the namespace table,
 * then slabs; each slab ends with a summary of its items and a checksummed
 * header (magic, version, store id, slab id, sequence range, item count,
 * summary checksum), each item starts with a checksummed header (key, namespace, length, xxh3-64 of the value, chain
 * position, its own sequence number). Every read from the device is
 * verified: key, namespace and checksum; a mismatch is a miss, counted,
 * never data.
 *
 * What is kept (docs/storage.md): a delete is logged (a tombstone) and an
 * evicted slab is invalidated on the device, so neither comes back after a
 * restart; recovery keeps the newest copy of every key; store_close loses
 * nothing; a crash loses at most what was still in memory slabs.
 */
#ifndef KC_STORE_H
#define KC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A 128-bit block key: lo and hi halves of an XXH128_hash_t. */
struct kc_key {
    uint64_t lo;
    uint64_t hi;
};

/* Outcomes and errors. 0 and the positive codes are per-item outcomes. */
enum kc_code {
    KC_OK = 0,          /* done / found */
    KC_EXISTS = 1,      /* put: already present (puts are idempotent) */
    KC_MISS = 2,        /* get: not present, evicted or failed verification */
    KC_SKIPPED = 3,     /* put: not admitted (kc_admit.h); nothing stored */
    KC_EINVAL = -1001,  /* bad argument */
    KC_ENONS = -1002,   /* unknown namespace */
    KC_EBADSIZE = -1003,/* value size differs from the namespace's block size */
    KC_ETOOBIG = -1004, /* value larger than a slab can hold */
    KC_ENOSPC = -1005,  /* no slab can be reclaimed / index full */
    KC_EBUSY = -1006,   /* no memory slab free right now: poll and retry */
    KC_EIO = -1007,     /* device I/O error */
    KC_ECSUM = -1008,   /* checksum or header mismatch (reported as a miss) */
    KC_ENOMEM = -1009,  /* out of memory */
    KC_EFORMAT = -1010, /* store on the device has another format or geometry */
    KC_ENSFULL = -1011, /* namespace table full */
};

/* Human-readable text for a KC_* code or a negative errno. */
const char *kc_strerror(int code);

/* How a store is opened. Fill with store_config_default(), then override. */
struct store_config {
    const char *path;        /* file or block device */
    uint64_t device_size;    /* bytes to use; 0 = the existing size (a block
                                device's size, or a file's) */
    uint32_t slab_size;      /* bytes per slab, a multiple of 1 MiB */
    uint64_t memory;         /* DRAM budget for memory slabs, bytes */
    uint32_t min_item_size;  /* smallest block expected; sizes the index */
    bool fresh;              /* start empty, ignoring what is on the device */
    const char *evict;       /* eviction policy, "name" or "name:param"
                                (e.g. "prefix:30"), optionally followed by
                                an admission policy: "+name[:param]"
                                (e.g. "prefix+hint"); NULL = "fifo" */
    unsigned queue_depth;    /* io_uring submission queue entries */
    /* Log sink for what the store has to say (checksum failures, I/O
     * errors, recovery); level 0 error, 1 warning, 2 info. NULL = stderr. */
    void (*log)(void *arg, int level, const char *msg);
    void *log_arg;
    /* Simulation (the eviction simulator): no device at all. Writes
     * complete at once, blocks of device slabs are reported as hits with
     * no data (data NULL), values are not checksummed. device_size sets
     * the simulated capacity. */
    bool simulate;
    /* Eviction policy parameter (reinsert: reads needed to be kept). */
    uint32_t evict_param;
    /* Fault injection, for tests: fail every Nth device read / write with
     * EIO (0 = never). */
    uint64_t fault_read_every;
    uint64_t fault_write_every;
    /* The errno of those faults (0 = EIO; ENOSPC: a full file system). */
    int fault_errno;
    /* Fault injection, for tests: every write after the Nth (counted from
     * the open) is discarded but reported done, as in a power loss that
     * keeps the order of writes (0 = never). */
    uint64_t fault_write_cut;
    /* Where memory slabs (slab_size bytes each) and read-buffer chunks
     * (STORE_READ_ARENA bytes in all, at most) come from: the daemon's
     * shared region. Returns len bytes, 4 KiB aligned, that stay mapped
     * until after store_close, or NULL (then private memory is used:
     * callers must not assume every block lies in the region). NULL =
     * private anonymous mappings. */
    void *(*mem_alloc)(void *arg, uint64_t len);
    void *mem_arg;
};

/* Read-buffer bytes the store takes from mem_alloc at most. */
#define STORE_READ_ARENA (512ull << 20)

/* Defaults: 32 MiB slabs, 256 MiB memory, 256 KiB min item, fifo, qd 64. */
void store_config_default(struct store_config *cfg);

struct store;

/*
 * Open (synchronous): create or reuse the store on cfg->path. An existing
 * store of the same geometry is recovered (the index rebuilt from slab and
 * item headers) unless cfg->fresh. On failure returns a negative code and
 * writes a message to err.
 */
int store_open(const struct store_config *cfg, struct store **out,
               char *err, size_t errlen);

/*
 * Close (synchronous): waits for reads in flight, flushes every memory slab
 * holding unwritten items to the device, persists the namespace table, and
 * frees everything.
 */
void store_close(struct store *st);

/* Result of recovery at open time. */
struct store_recovery {
    uint64_t slabs_scanned;  /* slab headers read */
    uint64_t slabs_valid;    /* slabs with a valid header */
    uint64_t items;          /* items put back in the index */
    uint64_t items_skipped;  /* bad header, stale, or dropped namespace */
    uint64_t bytes;          /* value bytes recovered */
    uint64_t tombstones;     /* deletes found on the device */
    uint64_t items_deleted;  /* keys whose newest copy is a delete */
    uint64_t tombstones_added; /* written to hide an older copy a crash left
                                  uncovered (its delete was lost) */
    double seconds;          /* time spent */
    uint64_t reads;          /* device reads of the scan (one per slab, a
                                second for a summary longer than FMT_TAIL) */
    uint64_t slabs_bad;      /* header intact, summary damaged: dropped */
};
void store_recovery_info(const struct store *st, struct store_recovery *r);

/* ---- namespaces ---- */

#define STORE_NS_DESC_MAX 512

/*
 * Register a namespace (synchronous: persists the namespace table). Opening
 * an existing id with the same block size is a no-op; with another size
 * returns KC_EBADSIZE. block_bytes 0 = variable sizes. desc is an opaque
 * descriptor kept with the store (at most STORE_NS_DESC_MAX bytes).
 */
int store_ns_open(struct store *st, uint64_t ns, uint32_t block_bytes,
                  const void *desc, uint32_t desc_len);

/* Drop a namespace and all its blocks (synchronous: persists the table). */
int store_ns_drop(struct store *st, uint64_t ns);

/* What the store knows of one namespace. */
struct store_ns_info {
    uint64_t id;
    uint32_t block_bytes;
    uint32_t desc_len;
    uint8_t desc[STORE_NS_DESC_MAX];
    uint64_t items;   /* live blocks */
    uint64_t bytes;   /* live value bytes */
};

/* Info of namespace ns; KC_ENONS if unknown. */
int store_ns_get(const struct store *st, uint64_t ns, struct store_ns_info *out);

/* Namespace by position 0..count-1 (for listing); KC_ENONS past the end. */
int store_ns_at(const struct store *st, size_t i, struct store_ns_info *out);

/* ---- put ---- */

/* One block of a put batch. */
struct store_put_item {
    struct kc_key key;   /* in */
    uint32_t chain_pos;  /* in: position of the block in its prefix chain */
    uint32_t len;        /* in */
    const void *data;    /* in */
    int status;          /* out: KC_OK, KC_EXISTS or a negative code */
};

/*
 * Put a batch: each value is copied once into the open memory slab of its
 * class. Full memory slabs are written to the device in the background. If no
 * memory slab is free, waits for a flush to finish. Returns 0 when every item
 * has its status set; negative only for errors of the whole batch (KC_ENONS).
 */
int store_put(struct store *st, uint64_t ns, struct store_put_item *items,
              size_t n);

/*
 * Zero-copy put: reserve a slot of len bytes in a memory slab, fill
 * ws->buf yourself (for example straight from a socket), then commit (which
 * checksums and indexes it) or abort. A memory slab is not written while it
 * has reservations outstanding. Returns KC_EXISTS if the key is present (no
 * reservation made), KC_EBUSY if no memory slab is free right now (call
 * store_poll and retry), or an error.
 */
struct store_wslot {
    void *buf;            /* where the value goes: len bytes */
    uint32_t len;
    /* private */
    uint64_t ns;
    struct kc_key key;
    uint32_t chain_pos;
    uint32_t slab;
    uint32_t slot;        /* item offset in the slab, in 64-byte units */
    uint32_t mslab;       /* memory slab index */
    uint32_t epoch;       /* the namespace's epoch at the reservation */
};
int store_put_reserve(struct store *st, uint64_t ns, const struct kc_key *key,
                      uint32_t chain_pos, uint32_t len, struct store_wslot *ws);
int store_put_commit(struct store *st, struct store_wslot *ws);   /* KC_ENONS if the
                       namespace was dropped (or dropped and opened again) since */
/* The same for a block of a prefix chain, first asking the admission policy
 * (kc_admit.h) with the engine's hints (ADMIT_HINT_*): KC_SKIPPED if it is
 * not to be stored (no reservation made; the caller drops the value). */
int store_put_reserve_hint(struct store *st, uint64_t ns, const struct kc_key *key,
                           uint32_t chain_pos, uint32_t hints, uint32_t len,
                           struct store_wslot *ws);
void store_put_abort(struct store *st, struct store_wslot *ws);

/* ---- get ---- */

/* One key of a get batch. */
struct store_get_item {
    struct kc_key key;   /* in */
    void *dst;           /* in, optional: copy the value here */
    uint32_t dst_cap;    /* in: capacity of dst */
    int status;          /* out: KC_OK, KC_MISS or a negative code */
    uint32_t len;        /* out: value length */
    uint32_t chain_pos;  /* out */
    const void *data;    /* out: the value, in a memory slab or a read
                            buffer; valid until store_get_release() */
    /* private */
    void *rbuf;          /* read buffer owned by the store */
    uint32_t rlen;       /* its size */
    uint32_t mslab;      /* pinned memory slab + 1, or 0 */
    uint32_t slab;
};

/* A get batch. */
struct store_get {
    uint64_t ns;                    /* in */
    struct store_get_item *items;   /* in */
    size_t n;                       /* in */
    bool prefix;                    /* in: GetPrefix: stop at the first miss */
    size_t found;                   /* out: prefix mode: length of the leading
                                       run found; else number of hits */
    int status;                     /* out: 0 or a batch error (KC_ENONS) */
    void (*done)(struct store_get *g, void *arg);  /* completion callback */
    void *arg;
    /* private */
    size_t pending;
    struct store_get *next;
};

/*
 * Submit a get batch. Items in DRAM are served at once; others are read
 * from the device with several reads in flight. done() runs exactly once,
 * from store_poll() (or from inside this call if nothing needed the device),
 * unless the call returns a negative code (KC_ENONS): then it never runs.
 * In prefix mode only the leading run of present keys is read, and a block
 * that fails verification ends the run there. Data stays valid (and memory
 * slabs pinned) until store_get_release().
 */
int store_get_submit(struct store *st, struct store_get *g);

/* Synchronous get: submit and wait; done may be NULL. */
int store_get(struct store *st, struct store_get *g);

/* Release data and pins held by a finished get batch. */
void store_get_release(struct store *st, struct store_get *g);

/* ---- other operations ---- */

/* How many leading keys of an ordered list are present (no I/O). */
/* Where a block lives (store_match_where). */
enum store_where { STORE_WHERE_DRAM = 1, STORE_WHERE_SSD = 2 };

/* As store_match, and where[i] (for i < the result) says whether block i
 * has a DRAM copy (a memory slab, open or clean) or lives on the SSD only;
 * where may be NULL. */
size_t store_match_where(struct store *st, uint64_t ns, const struct kc_key *keys, size_t n,
                         uint8_t *where);
size_t store_match(struct store *st, uint64_t ns, const struct kc_key *keys,
                   size_t n);

/* Delete one block: a tombstone is written through the log (so the delete
 * outlives restarts), then the index entry goes. Waits for a memory slab
 * if none is free, as store_put does. KC_OK, KC_MISS, or an error (then
 * the block stays). */
int store_delete(struct store *st, uint64_t ns, const struct kc_key *key);

/* Where a key lives, for the inspection tools. */
struct store_item_info {
    uint64_t ns;
    struct kc_key key;
    uint32_t slab;
    uint32_t slot;      /* item offset in the slab, in 64-byte units */
    uint32_t len;
    uint32_t chain_pos; /* 0 in variable-size namespaces: their index
                           entries keep the value's length instead */
    uint32_t hits;
    bool in_memory;     /* a DRAM copy exists */
};
int store_describe(const struct store *st, uint64_t ns,
                   const struct kc_key *key, struct store_item_info *out);

/* Visit every live item of the index; stop early if cb returns non-zero. */
void store_foreach_item(const struct store *st,
                        int (*cb)(const struct store_item_info *, void *),
                        void *arg);

enum store_slab_state {
    STORE_SLAB_FREE = 0,   /* unused */
    STORE_SLAB_OPEN,       /* memory slab being filled */
    STORE_SLAB_FLUSHING,   /* write to the device in flight */
    STORE_SLAB_SSD,        /* on the device (maybe with a DRAM copy) */
};

struct store_slab_info {
    uint32_t id;
    int state;             /* enum store_slab_state */
    uint32_t nitems;       /* items written (holes of aborted puts included) */
    uint32_t used;         /* bytes of items from the slab's start */
    uint32_t nlive;        /* items still indexed */
    uint64_t seq;          /* write sequence taken at open: below its items */
    uint64_t seq_hi;       /* highest sequence written into it */
    uint64_t live_bytes;   /* value bytes of the items still indexed */
    bool in_memory;        /* a DRAM copy exists */
};
uint32_t store_nslabs(const struct store *st);
/*
 * Check that the index and the slabs agree (an audit, O(index + slabs)):
 * every live index entry lies in a used item of a slab in use (and, in a
 * DRAM copy, names that item's key and namespace); the live blocks and bytes
 * counted per slab, per namespace and for the store equal what the index
 * holds; memory slabs and device slabs point at each other; the free,
 * retiring and invalidating counts match the slabs' states. Returns the
 * number of disagreements (0: consistent); the first is described in err.
 * Tests call it after every phase; `kvcache scrub` can use it too.
 */
int store_audit(const struct store *st, char *err, size_t errlen);

int store_slab_get(const struct store *st, uint32_t id,
                   struct store_slab_info *out);

/* Counters; all monotonic except the gauges marked. */
struct store_stats {
    uint64_t items;             /* gauge: live blocks */
    uint64_t bytes;             /* gauge: live value bytes */
    uint64_t index_capacity;    /* gauge: index entries */
    uint64_t index_bytes;       /* gauge: DRAM of the index */
    uint32_t index_entry_bytes; /* DRAM bytes per stored block in the index */
    uint64_t mem_slabs;         /* gauge: memory slabs */
    uint64_t mem_slabs_free;    /* gauge */
    uint64_t mem_bytes;         /* gauge: DRAM of memory slabs */
    uint64_t ssd_slabs;         /* gauge: slabs on the device */
    uint64_t ssd_slabs_free;    /* gauge */
    uint64_t ssd_slabs_used;    /* gauge */
    uint64_t slab_size;
    uint64_t device_size;
    uint64_t store_id;          /* the superblock's random id of this store */
    uint64_t puts;              /* blocks stored */
    uint64_t puts_exists;       /* puts of a block already present */
    uint64_t puts_rejected;     /* puts refused */
    uint64_t puts_skipped;      /* puts not admitted (KC_SKIPPED) */
    uint64_t put_bytes;
    uint64_t gets;              /* keys asked for */
    uint64_t hits;              /* keys found */
    uint64_t hits_mem;          /* of which served from DRAM */
    uint64_t misses;
    uint64_t hit_bytes;
    uint64_t deletes;
    uint64_t evictions;         /* slabs reclaimed */
    uint64_t evicted_items;     /* live items dropped by eviction */
    uint64_t flushes;           /* memory slabs written */
    uint64_t bytes_written;     /* to the device */
    uint64_t bytes_read;        /* from the device */
    uint64_t checksum_failures; /* verification failures on read */
    uint64_t io_errors;
    uint64_t reads_inflight;    /* gauge */
    uint64_t reinserts;         /* blocks copied forward by the policy */
    uint64_t reinsert_bytes;
    uint64_t reinsert_dropped;  /* chosen for copying but no room */
    uint64_t tombstones;        /* deletes written to the log */
    uint64_t tomb_copies;       /* tombstones copied forward at a reclaim */
    uint64_t tomb_expired;      /* tombstones no longer needed at a reclaim */
    uint64_t tomb_waits;        /* reclaims put off: a tombstone found no room */
    uint64_t invalidations;     /* reclaimed slabs invalidated on the device */
    uint64_t syncs;             /* durability barriers (fdatasync) */
    uint64_t index_grown;       /* times the index doubled */
    uint64_t writes_discarded;  /* tests: writes dropped by fault_write_cut */
    uint64_t blocks_lost;       /* acknowledged blocks dropped because their
                                   slab write failed (also in io_errors) */
    uint64_t nospace_errors;    /* writes refused with ENOSPC (full file system) */
    uint64_t blocks_max;        /* gauge: blocks the device holds at
                                   min_item_size (what the index is sized for) */
    double dram_per_block;      /* index + slab table DRAM / blocks_max */
};
void store_stats(const struct store *st, struct store_stats *out);

/* ---- event loop integration ---- */

/*
 * A file descriptor (an eventfd) that becomes readable when device I/O has
 * completed; an event loop polls it and then calls store_poll().
 */
int store_fd(const struct store *st);

/*
 * Reap completions: finish flushes, verify reads, run get callbacks. With
 * wait, blocks until at least one completion if any I/O is in flight.
 * Returns the number of completions handled or a negative code.
 */
int store_poll(struct store *st, bool wait);

/* True if device I/O is in flight. */
bool store_busy(const struct store *st);

/* Write every memory slab holding unwritten items (synchronous). */
int store_flush(struct store *st);

#endif
