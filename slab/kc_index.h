/*
 * kc_index.h - the in-memory index: an open-addressing hash table (linear
 * probing, backward-shift deletion) from (namespace, 128-bit key) to the
 * block's location, in one allocation sized from the device capacity.
 *
 * An entry is 32 bytes: the full key, a packed location (slab, slab
 * generation, namespace slot, and the item's offset in its slab in 64-byte
 * units), a saturating hit count, and one word that is the block's position
 * in its prefix chain (fixed-size namespaces) or its exact length
 * (variable-size ones). Only kc_index.c packs entries; the accessors here
 * unpack them.
 *
 * Whole-slab eviction does not visit entries: it bumps the slab's
 * generation, which makes every entry pointing into the slab stale at once.
 * Stale entries read as absent, are overwritten by inserts that meet them,
 * and are removed by an incremental sweep (index_sweep) that the store runs
 * on every eviction.
 */
#ifndef KC_INDEX_H
#define KC_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#define INDEX_SLAB_BITS 24
#define INDEX_GEN_BITS 12
#define INDEX_NS_BITS 12
#define INDEX_SLAB_MAX ((1u << INDEX_SLAB_BITS) - 1)  /* also "empty" */
#define INDEX_GEN_MASK ((1u << INDEX_GEN_BITS) - 1)
#define INDEX_NS_MAX ((1u << INDEX_NS_BITS) - 1)
#define INDEX_POS_MAX UINT32_MAX   /* largest chain position */

/* One entry; 32 bytes. */
struct index_entry {
    uint64_t key_lo;
    uint64_t key_hi;
    uint64_t loc;     /* slab:24 gen:12 ns:12 hits:8 (8 unused); slab all
                         ones = empty */
    uint32_t unit;    /* item offset in its slab, in FMT_ALIGN units */
    uint32_t aux;     /* chain position (fixed-size namespaces) or value
                         length (variable-size ones) */
};

/* The entry's fields. */
static inline uint32_t index_slab(const struct index_entry *e) { return (uint32_t)(e->loc & INDEX_SLAB_MAX); }
static inline uint32_t index_gen(const struct index_entry *e) { return (uint32_t)(e->loc >> 24) & INDEX_GEN_MASK; }
static inline uint32_t index_ns(const struct index_entry *e) { return (uint32_t)(e->loc >> 36) & INDEX_NS_MAX; }
static inline uint32_t index_hits(const struct index_entry *e) { return (uint32_t)(e->loc >> 48) & 0xff; }
static inline uint32_t index_unit(const struct index_entry *e) { return e->unit; }
static inline uint32_t index_aux(const struct index_entry *e) { return e->aux; }
/* The chain position (meaningful in fixed-size namespaces; see aux). */
static inline uint32_t index_chain_pos(const struct index_entry *e) { return e->aux; }
static inline bool index_empty(const struct index_entry *e) { return index_slab(e) == INDEX_SLAB_MAX; }

struct index {
    struct index_entry *tab;
    uint64_t cap;            /* entries */
    uint64_t used;           /* occupied entries, stale ones included */
    uint64_t limit;          /* most occupied entries allowed */
    uint64_t cursor;         /* sweep position */
    const uint16_t *slab_gen;/* current generation of every slab */
};

/* True if the entry is occupied and its slab has not been reclaimed since. */
static inline bool index_live(const struct index *ix, const struct index_entry *e)
{
    return !index_empty(e) &&
           (ix->slab_gen[index_slab(e)] & INDEX_GEN_MASK) == index_gen(e);
}

/* Count a read of the entry (saturating at 255). */
static inline void index_hit(struct index_entry *e)
{
    if (index_hits(e) != 0xff)
        e->loc += 1ull << 48;
}

/* Allocate a table for at least cap entries; slab_gen is read, not owned. */
int index_init(struct index *ix, uint64_t cap, const uint16_t *slab_gen);
void index_deinit(struct index *ix);

/* Bytes of DRAM the table takes. */
uint64_t index_bytes(const struct index *ix);

/* The live entry for (key, ns), or NULL. */
struct index_entry *index_find(const struct index *ix, uint64_t key_lo,
                               uint64_t key_hi, uint32_t ns);

/*
 * Insert (key, ns) at (slab, unit, gen) with aux (see struct index_entry). If a live entry exists returns it
 * in *out with 1 (nothing changed). Otherwise fills an empty or stale slot,
 * returns it in *out with 0, and copies an overwritten stale entry to
 * *stale (stale->loc empty if none). -1 if the table is full.
 */
int index_insert(struct index *ix, uint64_t key_lo, uint64_t key_hi,
                 uint32_t ns, uint32_t slab, uint32_t unit, uint32_t gen,
                 uint32_t aux, struct index_entry **out,
                 struct index_entry *stale);

/* Move the live entries into a table of at least cap entries (larger than
 * now); stale ones are left behind. 0, or -ENOMEM with the table as it was. */
int index_grow(struct index *ix, uint64_t cap);

/* The next live entry at or after position *pos (which is moved past it),
 * or NULL at the end of the table: for walks over every block. */
struct index_entry *index_walk(const struct index *ix, uint64_t *pos);

/* Remove an entry (pointer from index_find or a visit). */
void index_remove(struct index *ix, struct index_entry *e);

/*
 * Visit n entries from the sweep cursor, removing stale ones (cb is called
 * with each before it goes) and, if drop returns true for a live entry,
 * that one too (cb called as well). Returns entries removed.
 */
uint64_t index_sweep(struct index *ix, uint64_t n,
                     bool (*drop)(const struct index_entry *, void *),
                     void (*cb)(const struct index_entry *, bool live, void *),
                     void *arg);

#endif
