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

/* One size class of the histogram. */
struct cls {
    uint32_t slot_size;
    uint32_t slabs[4];       /* by state */
    uint64_t live, dead, slots;
};

static int cls_cmp(const void *a, const void *b)
{
    const struct cls *x = a, *y = b;
    return x->slot_size < y->slot_size ? -1 : x->slot_size > y->slot_size;
}

void kvc_view_slabs(const Kvcache__ListSlabsResponse *l, bool json, bool summary)
{
    struct cls *c = calloc(l->n_slabs + 1, sizeof(*c));
    size_t nc = 0;
    uint64_t maxseq = 0, nfree = 0;
    char a[32];

    if (c == NULL)
        return;
    for (size_t i = 0; i < l->n_slabs; i++) {
        const Kvcache__SlabInfo *s = l->slabs[i];
        if (s->seq > maxseq)
            maxseq = s->seq;
        if (s->state == KVCACHE__SLAB_INFO__STATE__FREE) {
            nfree++;
            continue;
        }
        size_t k;
        for (k = 0; k < nc && c[k].slot_size != s->slot_size; k++)
            ;
        if (k == nc)
            c[nc++].slot_size = s->slot_size;
        c[k].slabs[s->state & 3]++;
        c[k].live += s->nlive;
        c[k].dead += s->nitems - (s->nlive < s->nitems ? s->nlive : s->nitems);
        c[k].slots += s->nslots;
    }
    qsort(c, nc, sizeof(*c), cls_cmp);
    if (json) {
        printf("{\"total\": %u, \"slabs\": ", l->total);
        if (summary) {
            printf("[]");
        } else {
            /* the message's own list, without its "total" */
            printf("[");
            for (size_t i = 0; i < l->n_slabs; i++) {
                if (i)
                    printf(", ");
                kvc_json_msg(stdout, &l->slabs[i]->base);
            }
            printf("]");
        }
        printf(", \"free\": %llu, \"classes\": [", (unsigned long long)nfree);
        for (size_t k = 0; k < nc; k++)
            printf("%s{\"slot_size\": %u, \"slabs\": %u, \"open\": %u, \"flushing\": %u, "
                   "\"ssd\": %u, \"live\": %llu, \"dead\": %llu, \"slots\": %llu}",
                   k ? ", " : "", c[k].slot_size,
                   c[k].slabs[0] + c[k].slabs[1] + c[k].slabs[2] + c[k].slabs[3], c[k].slabs[1],
                   c[k].slabs[2], c[k].slabs[3], (unsigned long long)c[k].live,
                   (unsigned long long)c[k].dead, (unsigned long long)c[k].slots);
        printf("]}\n");
        free(c);
        return;
    }
    if (!summary) {
        printf("%6s %-8s %10s %6s %6s %6s %6s %10s %8s %3s\n", "slab", "state", "class", "slots",
               "items", "live", "dead", "seq", "age", "mem");
        for (size_t i = 0; i < l->n_slabs; i++) {
            const Kvcache__SlabInfo *s = l->slabs[i];
            if (s->state == KVCACHE__SLAB_INFO__STATE__FREE) {
                printf("%6u %-8s\n", s->id, "free");
                continue;
            }
            printf("%6u %-8s %10s %6u %6u %6u %6u %10llu %8llu %3s\n", s->id,
                   state_name(s->state), kvc_bytes(a, sizeof(a), s->slot_size), s->nslots,
                   s->nitems, s->nlive, s->nitems - (s->nlive < s->nitems ? s->nlive : s->nitems),
                   (unsigned long long)s->seq, (unsigned long long)(maxseq - s->seq),
                   s->in_memory ? "yes" : "");
        }
        printf("\n");
    }
    printf("%u slabs, %llu free (age = slab writes since; dead = superseded, deleted or "
           "dropped)\n", l->total, (unsigned long long)nfree);
    printf("%10s %6s %6s %6s %9s %9s %6s  %s\n", "class", "slabs", "open", "ssd", "live", "dead",
           "fill", "slabs of the class");
    uint32_t most = 1;
    for (size_t k = 0; k < nc; k++) {
        uint32_t n = c[k].slabs[0] + c[k].slabs[1] + c[k].slabs[2] + c[k].slabs[3];
        if (n > most)
            most = n;
    }
    for (size_t k = 0; k < nc; k++) {
        uint32_t n = c[k].slabs[0] + c[k].slabs[1] + c[k].slabs[2] + c[k].slabs[3];
        char bar[41];
        int w = (int)((uint64_t)n * 40 / most);
        memset(bar, '#', (size_t)w);
        bar[w] = '\0';
        printf("%10s %6u %6u %6u %9llu %9llu %5.1f%%  %s\n", kvc_bytes(a, sizeof(a),
               c[k].slot_size), n, c[k].slabs[1] + c[k].slabs[2], c[k].slabs[3],
               (unsigned long long)c[k].live, (unsigned long long)c[k].dead,
               c[k].slots ? 100.0 * (double)c[k].live / (double)c[k].slots : 0.0, bar);
    }
    free(c);
}
