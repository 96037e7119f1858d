/*
 * kc_slabcount.c - live blocks and bytes per device slab and namespace.
 * Counts are kept per slab and namespace, so that reclaiming a whole slab
 * updates the store's and every namespace's counts at once, without
 * visiting index entries.
 */
#include "slab/kc_store_int.h"

#include <stdlib.h>

/* The namespace counter of slab s for nsidx, made if missing. */
static struct slab_ns *slab_ns_get(struct slabinfo *si, uint32_t nsidx, bool make)
{
    for (uint32_t i = 0; i < si->nnsv; i++)
        if (si->nsv[i].nsidx == nsidx)
            return &si->nsv[i];
    if (!make)
        return NULL;
    if (si->nnsv == si->capnsv) {
        uint32_t cap = si->capnsv ? si->capnsv * 2 : 2;
        struct slab_ns *v = realloc(si->nsv, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        si->nsv = v;
        si->capnsv = cap;
    }
    si->nsv[si->nnsv] = (struct slab_ns){ .nsidx = nsidx };
    return &si->nsv[si->nnsv++];
}

/* A live block of bytes in namespace nsidx now lives in slab s. Counts are
 * kept per slab and namespace, so that reclaiming a whole slab updates the
 * namespaces' counts at once, without visiting index entries. */
void slab_count_add(struct store *st, uint32_t s, uint32_t nsidx, uint64_t bytes)
{
    struct slabinfo *si = &st->slabs[s];
    struct slab_ns *c = slab_ns_get(si, nsidx, true);
    struct nsent *n = &st->ns[nsidx];

    if (c == NULL) {
        store_log(st, 1, "out of memory for the counts of slab %u", s);
    } else {
        c->items++;
        c->bytes += bytes;
    }
    si->nlive++;
    si->bytes += bytes;
    n->items++;
    n->bytes += bytes;
    st->st.items++;
    st->st.bytes += bytes;
}

void slab_forget_entry(struct store *st, const struct index_entry *e)
{
    uint32_t s = index_slab(e);
    struct slabinfo *si = &st->slabs[s];
    struct nsent *n = &st->ns[index_ns(e)];
    struct slab_ns *c = slab_ns_get(si, index_ns(e), false);
    uint64_t b = store_entry_len(st, e);

    KC_ASSERT(si->nlive > 0 && si->bytes >= b && n->items > 0 && n->bytes >= b &&
              st->st.items > 0 && st->st.bytes >= b);
    if (c != NULL && c->items > 0) {
        c->items--;
        c->bytes -= b;
    }
    si->nlive--;
    si->bytes -= b;
    n->items--;
    n->bytes -= b;
    st->st.items--;
    st->st.bytes -= b;
}

/* Every block of slab s leaves its namespace's counts. */
void slab_ns_release(struct store *st, struct slabinfo *si)
{
    for (uint32_t i = 0; i < si->nnsv; i++) {
        struct nsent *n = &st->ns[si->nsv[i].nsidx];
        n->items -= si->nsv[i].items;
        n->bytes -= si->nsv[i].bytes;
    }
    free(si->nsv);
    si->nsv = NULL;
    si->nnsv = si->capnsv = 0;
}

void slab_ns_free_all(struct store *st)
{
    for (uint32_t s = 0; s < st->nslabs; s++) {
        free(st->slabs[s].nsv);
        st->slabs[s].nsv = NULL;
    }
}
