/*
 * kc_ns.c - namespaces: the table persisted in the superblock (open, drop,
 * listing), and what an index entry's namespace says about its block (its
 * length, its position in the prefix chain).
 */
#include "slab/kc_store_int.h"

#include <string.h>

struct nsent *store_ns_find(struct store *st, uint64_t ns)
{
    for (uint32_t i = 0; i < st->nns; i++)
        if (st->ns[i].live && st->ns[i].id == ns)
            return &st->ns[i];
    return NULL;
}

/*
 * The index keeps one word per entry for the block's position in its prefix
 * chain. Blocks of variable-size namespaces have no chain; for them the
 * word holds the value's length, so it is known without a read.
 */
uint32_t store_entry_len(const struct store *st, const struct index_entry *e)
{
    const struct nsent *n = &st->ns[index_ns(e)];

    return n->block_bytes != 0 ? n->block_bytes : index_aux(e);
}

uint32_t store_entry_chain_pos(const struct store *st, const struct index_entry *e)
{
    return st->ns[index_ns(e)].block_bytes != 0 ? index_chain_pos(e) : 0;
}

int store_ns_open(struct store *st, uint64_t ns, uint32_t block_bytes,
                  const void *desc, uint32_t desc_len)
{
    struct nsent *n = store_ns_find(st, ns);

    if (desc_len > FMT_NS_DESC_MAX)
        return KC_EINVAL;
    if (block_bytes > fmt_max_value(st->slab_size))
        return KC_ETOOBIG;
    if (n != NULL)
        return n->block_bytes == block_bytes ? 0 : KC_EBADSIZE;
    /* A free record (of a dropped namespace), else a new one. */
    for (uint32_t i = 0; i < st->nns && n == NULL; i++)
        if (!st->ns[i].live)
            n = &st->ns[i];
    if (n == NULL) {
        if (st->nns >= FMT_NS_MAX || st->nns > INDEX_NS_MAX)
            return KC_ENSFULL;
        n = &st->ns[st->nns++];
    }
    memset(n, 0, sizeof(*n));
    /* A new epoch, never used before: blocks of an earlier opening of the
     * same id (dropped since) stay unreadable, even after a restart. */
    n->epoch = (uint32_t)++st->epoch_next;
    n->id = ns;
    n->block_bytes = block_bytes;
    n->live = true;
    n->items = n->bytes = 0;
    n->desc_len = desc_len;
    if (desc_len > 0)
        memcpy(n->desc, desc, desc_len);
    return store_sb_write(st);
}

/* What a namespace drop's sweep needs. */
struct drop_arg {
    struct store *st;
    uint32_t nsidx;
};

/* Sweep filter: entries of the namespace being dropped. */
static bool store_drop_match(const struct index_entry *e, void *arg)
{
    return index_ns(e) == ((struct drop_arg *)arg)->nsidx;
}

/* Sweep callback: a removed entry leaves its slab's and namespace's counts. */
static void store_drop_cb(const struct index_entry *e, bool live, void *arg)
{
    struct store *st = ((struct drop_arg *)arg)->st;

    if (live)
        slab_forget_entry(st, e);
}

int store_ns_drop(struct store *st, uint64_t ns)
{
    struct nsent *n = store_ns_find(st, ns);
    struct drop_arg arg = { .st = st };

    if (n == NULL)
        return KC_ENONS;
    arg.nsidx = (uint32_t)(n - st->ns);
    /* One full pass over the index removes every entry of the namespace. */
    uint64_t saved = st->ix.cursor;
    st->ix.cursor = 0;
    index_sweep(&st->ix, st->ix.cap, store_drop_match, store_drop_cb, &arg);
    st->ix.cursor = saved < st->ix.cap ? saved : 0;
    memset(n, 0, sizeof(*n));   /* the record is free for another */
    return store_sb_write(st);
}

/* Fill the public view of a namespace. */
static void store_ns_fill(const struct nsent *n, struct store_ns_info *out)
{
    memset(out, 0, sizeof(*out));
    out->id = n->id;
    out->block_bytes = n->block_bytes;
    out->desc_len = n->desc_len;
    memcpy(out->desc, n->desc, n->desc_len);
    out->items = n->items;
    out->bytes = n->bytes;
}

int store_ns_get(const struct store *st, uint64_t ns, struct store_ns_info *out)
{
    const struct nsent *n = store_ns_find((struct store *)st, ns);

    if (n == NULL)
        return KC_ENONS;
    store_ns_fill(n, out);
    return 0;
}

int store_ns_at(const struct store *st, size_t i, struct store_ns_info *out)
{
    for (uint32_t k = 0; k < st->nns; k++) {
        if (!st->ns[k].live)
            continue;
        if (i-- == 0) {
            store_ns_fill(&st->ns[k], out);
            return 0;
        }
    }
    return KC_ENONS;
}
