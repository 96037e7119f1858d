/*
 * kvc_list.c - `kvcache ns` and `kvcache slabs` against a running daemon.
 */
#include <stdlib.h>

#include "kvc_rpc.h"
#include "kvc_views.h"

static const struct kvc_cmd ns_cmd = {
    "ns", NULL, "Namespaces the daemon knows: id, descriptor (model, layers, tokens per\n"
    "block, dtype, KV heads, head dim), block size, blocks and bytes stored.", NULL, NULL,
};

int cmd_ns(struct kvc_ctx *x, int argc, char **argv)
{
    struct kvc_rpc *r;
    Kvcache__Response *resp;
    int rc, first;

    if ((rc = kvc_parse(x, &ns_cmd, argc, argv, &first)) >= 0)
        return rc;
    if ((r = kvc_rpc_open(x, "ns", &rc)) == NULL)
        return rc;
    if ((rc = kvc_rpc_list_ns(r, &resp)) != 0) {
        rc = kvc_rpc_fail(r, "ns", rc, resp);
        kvc_rpc_destroy(r);
        return rc;
    }
    kvc_view_ns(resp->list_namespaces, x->json);
    kvcache__response__free_unpacked(resp, NULL);
    kvc_rpc_destroy(r);
    return KVC_EXIT_OK;
}

static bool slabs_summary;
static const struct kvc_opt slabs_opts[] = {
    { "summary", 'S', NULL, "only the store's totals", NULL, NULL, &slabs_summary },
    { 0 },
};
static const struct kvc_cmd slabs_cmd = {
    "slabs", NULL, "One line per slab: id, state (free, open or flushing in DRAM, ssd), items\n"
    "written, live and dead, fill (bytes written of the slab), live share (live\n"
    "value bytes of those), write sequence range, age, DRAM copy; then the\n"
    "store's totals: slabs by state, bytes written and live, items.", NULL, slabs_opts,
};

int cmd_slabs(struct kvc_ctx *x, int argc, char **argv)
{
    Kvcache__ListSlabsResponse all = KVCACHE__LIST_SLABS_RESPONSE__INIT;
    Kvcache__Response **parts = NULL;
    size_t nparts = 0;
    struct kvc_rpc *r;
    int rc, first;

    if ((rc = kvc_parse(x, &slabs_cmd, argc, argv, &first)) >= 0)
        return rc;
    if ((r = kvc_rpc_open(x, "slabs", &rc)) == NULL)
        return rc;
    /* page through the list: the daemon answers a bounded number per call */
    for (uint32_t start = 0;;) {
        Kvcache__Response *resp, **np;
        if ((rc = kvc_rpc_list_slabs(r, start, 0, &resp)) != 0) {
            rc = kvc_rpc_fail(r, "slabs", rc, resp);
            goto out;
        }
        if ((np = realloc(parts, (nparts + 1) * sizeof(*np))) == NULL) {
            kvcache__response__free_unpacked(resp, NULL);
            rc = KVC_EXIT_ERROR;
            goto out;
        }
        parts = np;
        parts[nparts++] = resp;
        const Kvcache__ListSlabsResponse *l = resp->list_slabs;
        Kvcache__SlabInfo **ns = realloc(all.slabs, (all.n_slabs + l->n_slabs + 1) * sizeof(*ns));
        if (ns == NULL) {
            rc = KVC_EXIT_ERROR;
            goto out;
        }
        all.slabs = ns;
        for (size_t i = 0; i < l->n_slabs; i++)
            all.slabs[all.n_slabs++] = l->slabs[i];
        all.total = l->total;
        all.slab_size = l->slab_size;
        start += (uint32_t)l->n_slabs;
        if (l->n_slabs == 0 || start >= l->total)
            break;
    }
    kvc_view_slabs(&all, x->json, slabs_summary);
    rc = KVC_EXIT_OK;
out:
    free(all.slabs);
    for (size_t i = 0; i < nparts; i++)
        kvcache__response__free_unpacked(parts[i], NULL);
    free(parts);
    kvc_rpc_destroy(r);
    return rc;
}
