/*
 * kvc_inspect.c - `kvcache inspect --offline PATH [VIEW]`: the views of
 * `stats`, `ns` and `slabs` computed from a store file with no daemon
 * running, read-only, plus a list of every item.
 *
 * It reads the superblock and the tail of every slab (its header and the
 * summary of its items), as recovery does. An item is live when its namespace
 * is open with the same epoch and no newer copy of its key exists (the
 * highest item sequence wins, as in recovery), and it is not a tombstone: a
 * delete is logged as a tombstone, which hides every older copy.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kc_nsid.h"
#include "kvc_cli.h"
#include "kvc_json.h"
#include "kvc_store.h"
#include "kvc_views.h"

static bool i_offline;
static const struct kvc_opt inspect_opts[] = {
    { "offline", 'o', NULL, "read a store file (required: online views are the other commands)",
      NULL, NULL, &i_offline },
    { 0 },
};
static const struct kvc_cmd inspect_cmd = {
    "inspect", "--offline PATH [summary|ns|slabs|items]",
    "The views of stats, ns and slabs from a store file, no daemon needed\n"
    "(read-only). VIEW: summary (default: geometry, totals, namespaces and the\n"
    "store's slab totals), ns, slabs (one line per slab), items (one line\n"
    "per item on the device).",
    "Exit 0, 1 when the file is not a readable store, 4 when headers are\n"
    "damaged (run scrub for values).", inspect_opts,
};

/* One item header found on the device. */
struct item {
    uint64_t ns, lo, hi, seq;
    uint32_t slab, slot, len, chain_pos, epoch;   /* slot: offset in 64-byte units */
    bool live;
    bool tomb;               /* a delete: never live, hides older copies */
};

/* Everything read from the file. */
struct scan {
    struct fmt_slab *hdr;    /* per slab */
    bool *valid;
    struct item *items;
    size_t n, cap;
    uint64_t bad_items, holes, bad_slabs;
};

static int scan_store(const struct kvc_store *s, struct scan *sc)
{
    uint32_t nslabs = s->sb->nslabs;
    uint8_t *sum = NULL;
    int rc = -1;

    sc->hdr = calloc(nslabs + 1, sizeof(*sc->hdr));
    sc->valid = calloc(nslabs + 1, sizeof(*sc->valid));
    if (sc->hdr == NULL || sc->valid == NULL)
        goto out;
    for (uint32_t id = 0; id < nslabs; id++) {
        free(sum);
        int t = kvc_slab_tail(s, id, &sc->hdr[id], &sum);
        if (t < 0)
            goto out;
        sc->valid[id] = sum != NULL;
        if (!sc->valid[id] && sc->hdr[id].magic == FMT_SLAB_MAGIC &&
            (t == 1 || !fmt_slab_check(&sc->hdr[id])))
            sc->bad_slabs++;
        if (!sc->valid[id])
            continue;
        const struct fmt_slab *h = &sc->hdr[id];
        uint64_t off = 0;
        for (uint32_t i = 0; i < h->nitems; i++) {
            const struct fmt_item *it = (const struct fmt_item *)(sum + (uint64_t)i * FMT_ITEM_HDR);
            uint32_t unit = (uint32_t)(off / FMT_ALIGN);
            off += fmt_item_span(it->len);
            if (it->magic == 0) {
                sc->holes++;
                continue;
            }
            if (!fmt_item_check_hdr(it) || !fmt_item_in_slab(h, it)) {
                sc->bad_items += fmt_item_in_slab(h, it) || !fmt_item_check_hdr(it);
                continue;
            }
            if (sc->n == sc->cap) {
                size_t nc = sc->cap ? 2 * sc->cap : 1024;
                struct item *ni = realloc(sc->items, nc * sizeof(*ni));
                if (ni == NULL)
                    goto out;
                sc->items = ni;
                sc->cap = nc;
            }
            sc->items[sc->n++] = (struct item){ it->ns, it->key_lo, it->key_hi,
                                                fmt_item_order(it), id, unit, it->len,
                                                it->chain_pos, it->ns_epoch, false,
                                                fmt_item_is_tomb(it) };
        }
    }
    rc = 0;
out:
    free(sum);
    return rc;
}

/* Order by key, then newest first: the first of a run of equal keys wins. */
static int item_cmp(const void *a, const void *b)
{
    const struct item *x = *(struct item *const *)a, *y = *(struct item *const *)b;
    if (x->ns != y->ns) return x->ns < y->ns ? -1 : 1;
    if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
    if (x->hi != y->hi) return x->hi < y->hi ? -1 : 1;
    return x->seq > y->seq ? -1 : x->seq < y->seq;
}

static int mark_live(const struct kvc_store *s, struct scan *sc)
{
    struct item **ord = malloc((sc->n + 1) * sizeof(*ord));
    if (ord == NULL)
        return -1;
    for (size_t i = 0; i < sc->n; i++)
        ord[i] = &sc->items[i];
    qsort(ord, sc->n, sizeof(*ord), item_cmp);
    for (size_t i = 0; i < sc->n; i++) {
        struct item *it = ord[i];
        if (i > 0 && ord[i - 1]->ns == it->ns && ord[i - 1]->lo == it->lo &&
            ord[i - 1]->hi == it->hi)
            continue;   /* an older copy */
        const struct fmt_ns *n = kvc_store_ns(s, it->ns);
        it->live = !it->tomb && n && n->live && n->epoch == it->epoch;
    }
    free(ord);
    return 0;
}

/* The ListNamespaces message of the file; strings point into s. */
static void build_ns(const struct kvc_store *s, const struct scan *sc,
                     Kvcache__ListNamespacesResponse *l, Kvcache__NamespaceInfo *info,
                     Kvcache__NamespaceInfo **ptr, Kvcache__NamespaceDesc *desc,
                     char (*strs)[2][KC_NS_MODEL_MAX + 1])
{
    kvcache__list_namespaces_response__init(l);
    l->namespaces = ptr;
    for (uint32_t i = 0; i < s->sb->ns_count; i++) {
        const struct fmt_ns *r = &s->ns[i];
        if (!r->live)
            continue;
        Kvcache__NamespaceInfo *n = &info[l->n_namespaces];
        struct kc_ns_desc d;
        kvcache__namespace_info__init(n);
        n->ns = r->id;
        n->block_bytes = r->block_bytes;
        if (r->desc_len <= FMT_NS_DESC_MAX && kc_ns_parse(r->desc, r->desc_len, &d) == 0) {
            Kvcache__NamespaceDesc *pd = &desc[l->n_namespaces];
            kvcache__namespace_desc__init(pd);
            snprintf(strs[l->n_namespaces][0], KC_NS_MODEL_MAX + 1, "%.*s", (int)d.model_len,
                     d.model);
            snprintf(strs[l->n_namespaces][1], KC_NS_MODEL_MAX + 1, "%.*s", (int)d.dtype_len,
                     d.dtype);
            pd->model = strs[l->n_namespaces][0];
            pd->dtype = strs[l->n_namespaces][1];
            pd->layer_begin = d.layer_begin;
            pd->layer_end = d.layer_end;
            pd->tokens_per_block = d.tokens_per_block;
            pd->kv_heads = d.kv_heads;
            pd->head_dim = d.head_dim;
            pd->block_bytes = d.block_bytes;
            n->desc = pd;
        }
        for (size_t k = 0; k < sc->n; k++)
            if (sc->items[k].live && sc->items[k].ns == r->id) {
                n->items++;
                n->bytes += sc->items[k].len;
            }
        ptr[l->n_namespaces++] = n;
    }
}

/* The ListSlabs message of the file. */
static void build_slabs(const struct kvc_store *s, const struct scan *sc,
                        Kvcache__ListSlabsResponse *l, Kvcache__SlabInfo *info,
                        Kvcache__SlabInfo **ptr)
{
    kvcache__list_slabs_response__init(l);
    l->total = s->sb->nslabs;
    l->slab_size = s->sb->slab_size;
    l->slabs = ptr;
    for (uint32_t id = 0; id < s->sb->nslabs; id++) {
        Kvcache__SlabInfo *si = &info[id];
        kvcache__slab_info__init(si);
        si->id = id;
        if (sc->valid[id]) {
            si->state = KVCACHE__SLAB_INFO__STATE__SSD;
            si->nitems = sc->hdr[id].nitems;
            si->seq = sc->hdr[id].seq;
            si->used_bytes = sc->hdr[id].used;
            si->seq_hi = sc->hdr[id].seq_hi;
        }
        ptr[l->n_slabs++] = si;
    }
    for (size_t k = 0; k < sc->n; k++)
        if (sc->items[k].live) {
            info[sc->items[k].slab].nlive++;
            info[sc->items[k].slab].live_bytes += sc->items[k].len;
        }
}

static void key_hex(uint64_t lo, uint64_t hi, char out[33])
{
    uint8_t b[16];
    kvcache_key_to_bytes((kvcache_key_t){ lo, hi }, b);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void view_summary(const char *path, const struct kvc_store *s, const struct scan *sc,
                         bool json)
{
    uint64_t live = 0, bytes = 0, used = 0, dropped = 0;
    char a[32], b[32], c[32];
    for (size_t k = 0; k < sc->n; k++)
        if (sc->items[k].live) {
            live++;
            bytes += sc->items[k].len;
        }
    for (uint32_t id = 0; id < s->sb->nslabs; id++)
        used += sc->valid[id];
    for (uint32_t i = 0; i < s->sb->ns_count; i++)
        dropped += !s->ns[i].live;
    if (json) {
        printf("\"file\": ");
        kvc_json_str(stdout, path);
        printf(", \"direct_io\": %s, \"store_id\": \"0x%016" PRIx64 "\", \"generation\": %" PRIu64
               ", \"superblock_copy\": \"%c\", \"copy_a_ok\": %s, \"copy_b_ok\": %s, "
               "\"device_size\": %" PRIu64 ", \"slab_size\": %u, \"nslabs\": %u, "
               "\"slabs_used\": %" PRIu64 ", \"items\": %" PRIu64 ", \"bytes\": %" PRIu64
               ", \"items_on_device\": %zu, \"dead_items\": %" PRIu64 ", \"holes\": %" PRIu64
               ", \"bad_items\": %" PRIu64 ", \"bad_slabs\": %" PRIu64
               ", \"namespaces_dropped\": %" PRIu64,
               s->direct ? "true" : "false", s->sb->store_id, s->sb->generation,
               s->copy ? 'B' : 'A', s->copy_ok[0] ? "true" : "false",
               s->copy_ok[1] ? "true" : "false", s->sb->device_size, s->sb->slab_size,
               s->sb->nslabs, used, live, bytes, sc->n, (uint64_t)sc->n - live, sc->holes,
               sc->bad_items, sc->bad_slabs, dropped);
        return;
    }
    printf("store %s (read-only%s)\n", path, s->direct ? ", O_DIRECT" : "");
    printf("%-12s id %016" PRIx64 ", generation %" PRIu64 " in copy %c (A %s, B %s)\n",
           "superblock", s->sb->store_id, s->sb->generation, s->copy ? 'B' : 'A',
           s->copy_ok[0] ? "ok" : "bad", s->copy_ok[1] ? "ok" : "bad");
    printf("%-12s %s device, %u slabs of %s, %" PRIu64 " used\n", "geometry",
           kvc_bytes(a, sizeof(a), (double)s->sb->device_size), s->sb->nslabs,
           kvc_bytes(b, sizeof(b), s->sb->slab_size), used);
    printf("%-12s %s live blocks, %s (%zu item headers: %" PRIu64 " superseded or dropped)\n",
           "stored", kvc_count(a, sizeof(a), (double)live), kvc_bytes(c, sizeof(c), (double)bytes),
           sc->n, (uint64_t)sc->n - live);
    printf("%-12s %" PRIu64 " damaged slab headers, %" PRIu64 " damaged item headers, %" PRIu64
           " holes\n", "integrity", sc->bad_slabs, sc->bad_items, sc->holes);
    printf("%-12s %u (%" PRIu64 " dropped)\n\n", "namespaces", s->sb->ns_count, dropped);
}

int cmd_inspect(struct kvc_ctx *x, int argc, char **argv)
{
    struct kvc_store st;
    struct scan sc = { 0 };
    char err[512];
    int rc, first;
    const char *view = "summary";

    if ((rc = kvc_parse(x, &inspect_cmd, argc, argv, &first)) >= 0)
        return rc;
    if (!i_offline) {
        kvc_err("inspect", "only --offline PATH: for a running daemon use stats, ns, slabs");
        return KVC_EXIT_USAGE;
    }
    if (first >= argc || first + 2 < argc) {
        kvc_err("inspect", "usage: inspect --offline PATH [summary|ns|slabs|items]");
        return KVC_EXIT_USAGE;
    }
    if (first + 1 < argc)
        view = argv[first + 1];
    if (strcmp(view, "summary") && strcmp(view, "ns") && strcmp(view, "slabs") &&
        strcmp(view, "items")) {
        kvc_err("inspect", "unknown view \"%s\"", view);
        return KVC_EXIT_USAGE;
    }
    const char *path = argv[first];
    if (kvc_store_open(path, &st, err, sizeof(err))) {
        kvc_err("inspect", "%s", err);
        return KVC_EXIT_ERROR;
    }
    uint32_t nns = st.sb->ns_count, nslabs = st.sb->nslabs;
    Kvcache__NamespaceInfo *ninfo = calloc(nns + 1, sizeof(*ninfo));
    Kvcache__NamespaceInfo **nptr = calloc(nns + 1, sizeof(*nptr));
    Kvcache__NamespaceDesc *ndesc = calloc(nns + 1, sizeof(*ndesc));
    char (*strs)[2][KC_NS_MODEL_MAX + 1] = calloc(nns + 1, sizeof(*strs));
    Kvcache__SlabInfo *sinfo = calloc(nslabs + 1, sizeof(*sinfo));
    Kvcache__SlabInfo **sptr = calloc(nslabs + 1, sizeof(*sptr));
    rc = KVC_EXIT_ERROR;
    if (!ninfo || !nptr || !ndesc || !strs || !sinfo || !sptr)
        goto out;
    if (scan_store(&st, &sc) || mark_live(&st, &sc)) {
        kvc_err("inspect", "%s: read error or out of memory while scanning", path);
        goto out;
    }
    Kvcache__ListNamespacesResponse nl;
    Kvcache__ListSlabsResponse sl;
    build_ns(&st, &sc, &nl, ninfo, nptr, ndesc, strs);
    build_slabs(&st, &sc, &sl, sinfo, sptr);

    if (!strcmp(view, "summary")) {
        if (x->json) {
            printf("{");
            view_summary(path, &st, &sc, true);
            printf(", \"namespaces\": ");
            kvc_json_msg(stdout, &nl.base);
            printf(", \"slabs\": ");
            fflush(stdout);
            kvc_view_slabs(&sl, true, true);   /* ends the line */
            /* close the outer object on its own line: still one document */
            printf("}\n");
        } else {
            view_summary(path, &st, &sc, false);
            kvc_view_ns(&nl, false);
            printf("\n");
            kvc_view_slabs(&sl, false, true);
        }
    } else if (!strcmp(view, "ns")) {
        kvc_view_ns(&nl, x->json);
    } else if (!strcmp(view, "slabs")) {
        kvc_view_slabs(&sl, x->json, false);
    } else {
        char hex[33];
        if (x->json)
            printf("{\"items\": [");
        else
            printf("%6s %6s %-18s %-32s %10s %9s %s\n", "slab", "slot", "ns", "key", "length",
                   "chain_pos", "state");
        for (size_t k = 0; k < sc.n; k++) {
            const struct item *it = &sc.items[k];
            key_hex(it->lo, it->hi, hex);
            if (x->json)
                printf("%s{\"slab\": %u, \"slot\": %u, \"ns\": \"0x%016" PRIx64 "\", \"key\": "
                       "\"%s\", \"length\": %u, \"chain_pos\": %u, \"seq\": %" PRIu64
                       ", \"live\": %s}", k ? ", " : "", it->slab, it->slot, it->ns, hex,
                       it->len, it->chain_pos, it->seq, it->live ? "true" : "false");
            else
                printf("%6u %6u %016" PRIx64 "   %s %10u %9u %s\n", it->slab, it->slot, it->ns,
                       hex, it->len, it->chain_pos, it->live ? "live" : "dead");
        }
        if (x->json)
            printf("]}\n");
    }
    rc = sc.bad_slabs || sc.bad_items ? KVC_EXIT_DAMAGE : KVC_EXIT_OK;
out:
    free(ninfo);
    free(nptr);
    free(ndesc);
    free(strs);
    free(sinfo);
    free(sptr);
    free(sc.hdr);
    free(sc.valid);
    free(sc.items);
    kvc_store_close(&st);
    return rc;
}
