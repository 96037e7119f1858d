/*
 * kc_audit.c - store_audit: walk the index and the slabs and check that they
 * agree (see kc_store.h). Read-only; the cost is one pass over the index and
 * one over the slabs, so it is for tests and scrubbing, not the hot path.
 */
#include "slab/kc_store_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* What an audit has found so far. */
struct audit {
    const struct store *st;
    char *err;             /* first disagreement, described */
    size_t errlen;
    int bad;               /* disagreements found */
};

/* Note a disagreement; the first one is kept in the caller's buffer, the
 * first few are logged. */
__attribute__((format(printf, 2, 3)))
static void audit_bad(struct audit *a, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (a->bad == 0 && a->err != NULL && a->errlen > 0)
        snprintf(a->err, a->errlen, "%s", msg);
    if (a->bad < 8)
        store_log((struct store *)a->st, 0, "audit: %s", msg);
    a->bad++;
}

/* Bytes of items a slab in use holds, from its memory slab if it is being
 * filled, else from its record. */
static uint64_t audit_slab_used(const struct store *st, const struct slabinfo *si)
{
    if (si->state == STORE_SLAB_OPEN && si->mem != 0)
        return st->mem[si->mem - 1].used;
    return si->used;
}

/* One live index entry: inside the used items of a slab in use, its DRAM
 * copy (if any) naming the same key, namespace and length. Adds it to its
 * slab's counts. */
static void audit_entry(struct audit *a, const struct index_entry *e,
                        uint32_t *cnt, uint64_t *bytes)
{
    const struct store *st = a->st;
    uint32_t s = index_slab(e), nsi = index_ns(e);
    uint64_t off = (uint64_t)index_unit(e) * FMT_ALIGN;

    if (s >= st->nslabs) {
        audit_bad(a, "index entry names slab %u of %u", s, st->nslabs);
        return;
    }
    const struct slabinfo *si = &st->slabs[s];
    if (si->state == STORE_SLAB_FREE || si->retiring || si->invalidating) {
        audit_bad(a, "index entry into slab %u, which is not in use (state %u)", s, si->state);
        return;
    }
    if (nsi >= st->nns || !st->ns[nsi].live) {
        audit_bad(a, "index entry into slab %u of a namespace not open (%u)", s, nsi);
        return;
    }
    if (off + fmt_item_span(store_entry_len(st, e)) > audit_slab_used(st, si)) {
        audit_bad(a, "index entry into slab %u at %llu, past its %llu bytes of items", s,
                  (unsigned long long)off, (unsigned long long)audit_slab_used(st, si));
        return;
    }
    cnt[s]++;
    bytes[s] += store_entry_len(st, e);
    if (si->mem == 0)
        return;
    const struct mslab *ms = &st->mem[si->mem - 1];
    const struct fmt_item *h = (const void *)(ms->buf + off);
    if (h->magic != FMT_ITEM_MAGIC || h->key_lo != e->key_lo || h->key_hi != e->key_hi ||
        h->ns != st->ns[nsi].id || (uint64_t)h->len != store_entry_len(st, e))
        audit_bad(a, "DRAM copy of slab %u at %llu does not hold the indexed block", s,
                  (unsigned long long)off);
}

/* One device slab: its counts against the index's, its link to its memory
 * slab; adds its per-namespace counts to nsitems. */
static void audit_slab(struct audit *a, uint32_t s, uint32_t cnt, uint64_t bytes,
                       uint64_t *nsitems)
{
    const struct store *st = a->st;
    const struct slabinfo *si = &st->slabs[s];
    uint64_t vi = 0, vb = 0;

    if (si->nlive != cnt || si->bytes != bytes)
        audit_bad(a, "slab %u counts %u blocks (%llu bytes), the index %u (%llu)", s,
                  si->nlive, (unsigned long long)si->bytes, cnt, (unsigned long long)bytes);
    for (uint32_t i = 0; i < si->nnsv; i++) {
        vi += si->nsv[i].items;
        vb += si->nsv[i].bytes;
        if (si->nsv[i].nsidx < st->nns)
            nsitems[si->nsv[i].nsidx] += si->nsv[i].items;
    }
    if (si->nnsv > 0 && (vi != si->nlive || vb != si->bytes))
        audit_bad(a, "slab %u: namespace counts %llu blocks, the slab %u", s,
                  (unsigned long long)vi, si->nlive);
    if (si->state == STORE_SLAB_FREE && (si->nlive != 0 || si->mem != 0 || si->retiring))
        audit_bad(a, "free slab %u holds blocks or a memory slab", s);
    if (si->mem != 0 && (si->mem > st->nmem || st->mem[si->mem - 1].slab != s))
        audit_bad(a, "slab %u names memory slab %u, which is not its copy", s, si->mem - 1);
}

/* Memory slabs: each in use is the copy of a slab that names it back. */
static void audit_mem(struct audit *a)
{
    const struct store *st = a->st;
    uint32_t flushing = 0;

    for (uint32_t m = 0; m < st->nmem; m++) {
        const struct mslab *ms = &st->mem[m];
        if (ms->state == MS_FLUSHING)
            flushing++;
        if (ms->state == MS_FREE)
            continue;
        if (ms->slab >= st->nslabs || st->slabs[ms->slab].mem != m + 1)
            audit_bad(a, "memory slab %u (state %u) is not the copy of slab %u", m,
                      ms->state, ms->slab);
        if (ms->writers > ms->nitems || (ms->state != MS_OPEN && ms->writers != 0))
            audit_bad(a, "memory slab %u has %u writers for %u items (state %u)", m,
                      ms->writers, ms->nitems, ms->state);
    }
    if (flushing != st->flushing)
        audit_bad(a, "%u memory slabs are being written, the store counts %u", flushing,
                  st->flushing);
}

int store_audit(const struct store *st, char *err, size_t errlen)
{
    struct audit a = { .st = st, .err = err, .errlen = errlen };
    uint32_t *cnt = calloc(st->nslabs, sizeof(*cnt));
    uint64_t *bytes = calloc(st->nslabs, sizeof(*bytes));
    uint64_t *nsitems = calloc(st->nns + 1, sizeof(*nsitems));
    uint64_t items = 0, sbytes = 0;
    uint32_t nfree = 0, nretiring = 0, ninval = 0;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (cnt == NULL || bytes == NULL || nsitems == NULL) {
        audit_bad(&a, "out of memory for the audit");
        goto out;
    }
    for (uint64_t i = 0;;) {
        const struct index_entry *e = index_walk(&st->ix, &i);
        if (e == NULL)
            break;
        audit_entry(&a, e, cnt, bytes);
    }
    for (uint32_t s = 0; s < st->nslabs; s++) {
        const struct slabinfo *si = &st->slabs[s];
        audit_slab(&a, s, cnt[s], bytes[s], nsitems);
        items += si->nlive;
        sbytes += si->bytes;
        nfree += si->state == STORE_SLAB_FREE;
        nretiring += si->retiring;
        ninval += si->invalidating;
    }
    if (items != st->st.items || sbytes != st->st.bytes)
        audit_bad(&a, "the store counts %llu blocks (%llu bytes), its slabs %llu (%llu)",
                  (unsigned long long)st->st.items, (unsigned long long)st->st.bytes,
                  (unsigned long long)items, (unsigned long long)sbytes);
    for (uint32_t i = 0; i < st->nns; i++)
        if (st->ns[i].live && st->ns[i].items != nsitems[i])
            audit_bad(&a, "namespace %llu counts %llu blocks, its slabs %llu",
                      (unsigned long long)st->ns[i].id, (unsigned long long)st->ns[i].items,
                      (unsigned long long)nsitems[i]);
    if (nfree != st->nfree || nretiring != st->nretiring || ninval != st->invalidating)
        audit_bad(&a, "slab states: %u free, %u retiring, %u invalidating; the store "
                  "counts %u, %u, %u", nfree, nretiring, ninval, st->nfree, st->nretiring,
                  st->invalidating);
    audit_mem(&a);
out:
    free(cnt);
    free(bytes);
    free(nsitems);
    return a.bad;
}
