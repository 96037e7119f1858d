/*
 * kc_index.c - open-addressing hash index (kc_index.h).
 */
#include "slab/kc_index.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "ssd/kc_dev.h"

#define INDEX_EMPTY_LOC UINT64_MAX

/* Fill an entry's location and its aux word: the only place that packs
 * them (the accessors in kc_index.h unpack). Hits start at 0. */
static void index_pack(struct index_entry *e, uint32_t slab, uint32_t unit, uint32_t gen,
                       uint32_t ns, uint32_t aux)
{
    assert(slab < INDEX_SLAB_MAX && ns <= INDEX_NS_MAX);
    e->loc = (uint64_t)slab | ((uint64_t)(gen & INDEX_GEN_MASK) << 24) | ((uint64_t)ns << 36);
    e->unit = unit;
    e->aux = aux;
}

/* Home position of a key: fast range reduction of a mixed hash. */
static inline uint64_t index_home(const struct index *ix, uint64_t lo, uint64_t hi, uint32_t ns)
{
    uint64_t h = lo ^ (hi * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)ns * 0xc2b2ae3d27d4eb4fULL);
    h ^= h >> 29;
    return (uint64_t)(((unsigned __int128)h * ix->cap) >> 64);
}

static inline uint64_t index_next(const struct index *ix, uint64_t i)
{
    return i + 1 == ix->cap ? 0 : i + 1;
}

int index_init(struct index *ix, uint64_t cap, const uint16_t *slab_gen)
{
    memset(ix, 0, sizeof(*ix));
    if (cap < 64)
        cap = 64;
    ix->cap = cap;
    ix->limit = cap - cap / 20;  /* keep 5% empty so probes end */
    ix->slab_gen = slab_gen;
    ix->tab = dev_alloc(cap * sizeof(struct index_entry));
    if (ix->tab == NULL)
        return -ENOMEM;
    memset(ix->tab, 0xff, cap * sizeof(struct index_entry));
    return 0;
}

void index_deinit(struct index *ix)
{
    dev_free(ix->tab, ix->cap * sizeof(struct index_entry));
    ix->tab = NULL;
}

uint64_t index_bytes(const struct index *ix)
{
    return ix->cap * sizeof(struct index_entry);
}

struct index_entry *index_find(const struct index *ix, uint64_t key_lo,
                               uint64_t key_hi, uint32_t ns)
{
    uint64_t i = index_home(ix, key_lo, key_hi, ns);

    for (;;) {
        struct index_entry *e = &ix->tab[i];
        if (index_empty(e))
            return NULL;
        if (e->key_lo == key_lo && e->key_hi == key_hi && index_ns(e) == ns &&
            index_live(ix, e))
            return e;
        i = index_next(ix, i);
    }
}

int index_insert(struct index *ix, uint64_t key_lo, uint64_t key_hi,
                 uint32_t ns, uint32_t slab, uint32_t unit, uint32_t gen,
                 uint32_t aux, struct index_entry **out,
                 struct index_entry *stale)
{
    uint64_t i = index_home(ix, key_lo, key_hi, ns);
    struct index_entry *reuse = NULL;

    stale->loc = INDEX_EMPTY_LOC;
    for (;;) {
        struct index_entry *e = &ix->tab[i];
        if (index_empty(e))
            break;
        if (!index_live(ix, e)) {
            if (reuse == NULL)
                reuse = e;
        } else if (e->key_lo == key_lo && e->key_hi == key_hi && index_ns(e) == ns) {
            *out = e;
            return 1;
        }
        i = index_next(ix, i);
    }
    if (reuse != NULL) {
        *stale = *reuse;
    } else {
        if (ix->used >= ix->limit)
            return -1;
        reuse = &ix->tab[i];
        ix->used++;
    }
    reuse->key_lo = key_lo;
    reuse->key_hi = key_hi;
    index_pack(reuse, slab, unit, gen, ns, aux);
    *out = reuse;
    return 0;
}

int index_grow(struct index *ix, uint64_t cap)
{
    struct index big;

    if (index_init(&big, cap, ix->slab_gen) < 0)
        return -ENOMEM;
    for (uint64_t i = 0; i < ix->cap; i++) {
        const struct index_entry *e = &ix->tab[i];
        if (!index_live(ix, e))
            continue;
        uint64_t j = index_home(&big, e->key_lo, e->key_hi, index_ns(e));
        while (!index_empty(&big.tab[j]))
            j = index_next(&big, j);
        big.tab[j] = *e;
        big.used++;
    }
    big.cursor = 0;
    index_deinit(ix);
    *ix = big;
    return 0;
}

struct index_entry *index_walk(const struct index *ix, uint64_t *pos)
{
    while (*pos < ix->cap) {
        struct index_entry *e = &ix->tab[(*pos)++];
        if (index_live(ix, e))
            return e;
    }
    return NULL;
}

/* Remove entry at position i by shifting later entries of its run back. */
static void index_remove_at(struct index *ix, uint64_t i)
{
    uint64_t j = i;

    for (;;) {
        j = index_next(ix, j);
        struct index_entry *e = &ix->tab[j];
        if (index_empty(e))
            break;
        uint64_t h = index_home(ix, e->key_lo, e->key_hi, index_ns(e));
        /* Move e back to i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!stays) {
            ix->tab[i] = *e;
            i = j;
        }
    }
    ix->tab[i].loc = INDEX_EMPTY_LOC;
    ix->used--;
}

void index_remove(struct index *ix, struct index_entry *e)
{
    index_remove_at(ix, (uint64_t)(e - ix->tab));
}

uint64_t index_sweep(struct index *ix, uint64_t n,
                     bool (*drop)(const struct index_entry *, void *),
                     void (*cb)(const struct index_entry *, bool live, void *),
                     void *arg)
{
    uint64_t removed = 0;

    if (n > ix->cap)
        n = ix->cap;
    while (n > 0) {
        uint64_t i = ix->cursor;
        struct index_entry *e = &ix->tab[i];
        if (!index_empty(e)) {
            bool live = index_live(ix, e);
            if (!live || (drop != NULL && drop(e, arg))) {
                if (cb != NULL)
                    cb(e, live, arg);
                index_remove_at(ix, i);
                removed++;
                /* An entry may have moved into i: look at i again, unless
                 * it wrapped from the start (then it was already seen). */
                continue;
            }
        }
        ix->cursor = index_next(ix, i);
        n--;
    }
    return removed;
}
