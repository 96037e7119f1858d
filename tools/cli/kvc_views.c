/*
 * kvc_views.c - namespace and slab views (kvc_views.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvc_cli.h"
#include "kvc_json.h"
#include "kvc_views.h"

void kvc_view_ns(const Kvcache__ListNamespacesResponse *l, bool json)
{
    char a[32], b[32], c[32];

    if (json) {
        kvc_json_msg(stdout, &l->base);
        putchar('\n');
        return;
    }
    printf("%-18s %-24s %-7s %5s %-8s %5s %5s %10s %10s %10s\n", "id", "model", "layers", "tpb",
           "dtype", "heads", "dim", "block", "blocks", "bytes");
    for (size_t i = 0; i < l->n_namespaces; i++) {
        const Kvcache__NamespaceInfo *n = l->namespaces[i];
        const Kvcache__NamespaceDesc *d = n->desc;
        char layers[24] = "-";
        if (d)
            snprintf(layers, sizeof(layers), "%u-%u", d->layer_begin, d->layer_end);
        printf("%016llx   %-24.24s %-7s %5u %-8.8s %5u %5u %10s %10s %10s\n",
               (unsigned long long)n->ns, d ? d->model : "(opaque)", layers,
               d ? d->tokens_per_block : 0, d ? d->dtype : "-", d ? d->kv_heads : 0,
               d ? d->head_dim : 0, kvc_bytes(a, sizeof(a), n->block_bytes),
               kvc_count(b, sizeof(b), (double)n->items),
               kvc_bytes(c, sizeof(c), (double)n->bytes));
    }
    if (l->n_namespaces == 0)
        printf("(no namespaces)\n");
}

static const char *state_name(int s)
{
    switch (s) {
    case KVCACHE__SLAB_INFO__STATE__FREE: return "free";
    case KVCACHE__SLAB_INFO__STATE__OPEN: return "open";
    case KVCACHE__SLAB_INFO__STATE__FLUSHING: return "flushing";
    default: return "ssd";
    }
}

/* Store totals over the slabs in use. */
struct slab_totals {
    uint32_t used_slabs, nfree, by_state[4];
    uint64_t items, live, dead, used_bytes, live_bytes, maxseq;
};

static void slab_totals(const Kvcache__ListSlabsResponse *l, struct slab_totals *t)
{
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < l->n_slabs; i++) {
        const Kvcache__SlabInfo *s = l->slabs[i];
        if (s->seq_hi > t->maxseq)
            t->maxseq = s->seq_hi;
        if (s->seq > t->maxseq)
            t->maxseq = s->seq;
        t->by_state[s->state & 3]++;
        if (s->state == KVCACHE__SLAB_INFO__STATE__FREE) {
            t->nfree++;
            continue;
        }
        t->used_slabs++;
        t->items += s->nitems;
        t->live += s->nlive;
        t->dead += s->nitems - (s->nlive < s->nitems ? s->nlive : s->nitems);
        t->used_bytes += s->used_bytes;
        t->live_bytes += s->live_bytes;
    }
}

/* a / b as a percentage (0 when b is 0). */
static double pct(uint64_t a, uint64_t b)
{
    return b ? 100.0 * (double)a / (double)b : 0.0;
}

void kvc_view_slabs(const Kvcache__ListSlabsResponse *l, bool json, bool summary)
{
    struct slab_totals t;
    uint64_t cap;
    char a[32], b[32], c[32];

    slab_totals(l, &t);
    cap = (uint64_t)l->total * l->slab_size;
    if (json) {
        printf("{\"total\": %u, \"slab_size\": %u, \"slabs\": [", l->total, l->slab_size);
        /* the message's own list, without its "total" */
        for (size_t i = 0; !summary && i < l->n_slabs; i++) {
            if (i)
                printf(", ");
            kvc_json_msg(stdout, &l->slabs[i]->base);
        }
        printf("], \"free\": %u, \"store\": {\"slabs_used\": %u, \"open\": %u, \"flushing\": %u, "
               "\"ssd\": %u, \"items\": %llu, \"live\": %llu, \"dead\": %llu, "
               "\"used_bytes\": %llu, \"live_bytes\": %llu, \"capacity_bytes\": %llu, "
               "\"fill\": %.4f, \"live_share\": %.4f}}\n",
               t.nfree, t.used_slabs, t.by_state[1], t.by_state[2], t.by_state[3],
               (unsigned long long)t.items, (unsigned long long)t.live,
               (unsigned long long)t.dead, (unsigned long long)t.used_bytes,
               (unsigned long long)t.live_bytes, (unsigned long long)cap,
               pct(t.used_bytes, cap) / 100.0, pct(t.live_bytes, t.used_bytes) / 100.0);
        return;
    }
    if (!summary) {
        printf("%6s %-8s %6s %6s %6s %6s %6s %10s %10s %8s %3s\n", "slab", "state", "items",
               "live", "dead", "fill", "live%", "seq", "seq_hi", "age", "mem");
        for (size_t i = 0; i < l->n_slabs; i++) {
            const Kvcache__SlabInfo *s = l->slabs[i];
            if (s->state == KVCACHE__SLAB_INFO__STATE__FREE) {
                printf("%6u %-8s\n", s->id, "free");
                continue;
            }
            uint64_t hi = s->seq_hi > s->seq ? s->seq_hi : s->seq;
            printf("%6u %-8s %6u %6u %6u %5.1f%% %5.1f%% %10llu %10llu %8llu %3s\n", s->id,
                   state_name(s->state), s->nitems, s->nlive,
                   s->nitems - (s->nlive < s->nitems ? s->nlive : s->nitems),
                   pct(s->used_bytes, l->slab_size), pct(s->live_bytes, s->used_bytes),
                   (unsigned long long)s->seq, (unsigned long long)s->seq_hi,
                   (unsigned long long)(t.maxseq - hi), s->in_memory ? "yes" : "");
        }
        printf("\n(fill = bytes written of the slab; live%% = live value bytes of those; "
               "age = sequences written since; dead = superseded, deleted or dropped)\n");
    }
    printf("store: %u slabs of %s, %u in use (%u open, %u flushing, %u ssd), %u free\n",
           l->total, kvc_bytes(a, sizeof(a), l->slab_size), t.used_slabs, t.by_state[1],
           t.by_state[2], t.by_state[3], t.nfree);
    printf("store: %s of %s written (fill %.1f%%), %s live (%.1f%% of written); "
           "%llu items, %llu live, %llu dead\n",
           kvc_bytes(a, sizeof(a), (double)t.used_bytes), kvc_bytes(b, sizeof(b), (double)cap),
           pct(t.used_bytes, cap), kvc_bytes(c, sizeof(c), (double)t.live_bytes),
           pct(t.live_bytes, t.used_bytes), (unsigned long long)t.items,
           (unsigned long long)t.live, (unsigned long long)t.dead);
}
