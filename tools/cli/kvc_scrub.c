/*
 * kvc_scrub.c - `kvcache scrub PATH`: read every slab of a store file and
 * verify every header and every value checksum, with a progress bar.
 *
 * It reads the file itself (read-only), so it works with or without a
 * daemon. Next to a running daemon a slab may be rewritten while it is
 * read: a slab that shows a fault is read again, and if its header's
 * sequence number changed in between it is counted as "rewritten", not
 * damaged. A fault that is still there on the second read is damage.
 * Items still only in the daemon's DRAM are not on the device yet and are
 * not scrubbed.
 *
 * Then it asks the daemon at --server for the store's audit (Audit RPC:
 * store_audit, do the daemon's index and its slabs agree?) when that daemon
 * serves this very store (same store id); with no daemon there the index
 * does not exist (it is rebuilt from the slabs at start) and the report
 * says why it was not audited.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvc_cli.h"
#include "kvc_json.h"
#include "kvc_rpc.h"
#include "kvc_store.h"

static bool s_progress, s_no_progress, s_no_audit;
static long s_limit = 100;
static const struct kvc_opt scrub_opts[] = {
    { "progress", 'p', NULL, "progress bar on stderr even when it is not a terminal", NULL,
      NULL, &s_progress },
    { "no-progress", 'q', NULL, "no progress bar", NULL, NULL, &s_no_progress },
    { "limit", 'l', "N", "list at most N damaged items (default 100; counts are complete)",
      NULL, &s_limit, NULL },
    { "no-audit", 'A', NULL, "do not ask the daemon for its index audit", NULL, NULL,
      &s_no_audit },
    { 0 },
};
static const struct kvc_cmd scrub_cmd = {
    "scrub", "PATH", "Read every item of a store file and verify every checksum: superblock\n"
    "copies, slab headers, item headers and values; then ask the daemon at\n"
    "--server, if it serves this store, whether its index and slabs agree.\n"
    "Reports what is damaged. Exit 0 when clean, 4 when damage or a\n"
    "disagreement was found, 1 when the file cannot be read.",
    "Safe next to a running daemon (read-only; slabs rewritten meanwhile are\n"
    "re-read). Give the daemon's store path (-D); the audit is an admin\n"
    "operation (the admin token, where the daemon has one).",
    scrub_opts,
};

/* One damaged item or slab. */
struct fault {
    uint32_t slab, slot;     /* slot: item index; UINT32_MAX: the slab header */
    uint64_t ns;
    kvcache_key_t key;
    const char *what;
};

/* Totals of a scrub. */
struct scrub {
    uint64_t slabs, slabs_used, slabs_rewritten, items, holes, stale, bytes;
    uint64_t damaged_items, damaged_slabs;
    struct fault *faults;
    size_t nfaults, cap;
};

static void add_fault(struct scrub *sc, struct fault f)
{
    if (f.slot == UINT32_MAX)
        sc->damaged_slabs++;
    else
        sc->damaged_items++;
    if (sc->nfaults >= (size_t)s_limit)
        return;
    if (sc->nfaults == sc->cap) {
        size_t nc = sc->cap ? 2 * sc->cap : 16;
        struct fault *n = realloc(sc->faults, nc * sizeof(*n));
        if (n == NULL)
            return;
        sc->faults = n;
        sc->cap = nc;
    }
    sc->faults[sc->nfaults++] = f;
}

/* Check one slab image; faults into local[] (count returned), totals in t. */
static size_t check_slab(const struct kvc_store *s, uint32_t id, const uint8_t *img,
                         struct scrub *t, struct fault *local, size_t cap)
{
    uint32_t slab = s->sb->slab_size;
    const struct fmt_slab *h = (const struct fmt_slab *)(img + fmt_hdr_off(slab));
    size_t n = 0;

    if (h->magic != FMT_SLAB_MAGIC)
        return 0;   /* never written: free */
    if (!kvc_slab_valid(s, h, id) ||
        fmt_sum_csum(img + fmt_sum_off(slab, h->nitems), h->nitems) != h->sum_csum) {
        if (h->store_id == s->sb->store_id || !fmt_slab_check(h))
            local[n++] = (struct fault){ id, UINT32_MAX, 0, { 0, 0 },
                                         !fmt_slab_check(h) ? "slab header checksum"
                                         : !kvc_slab_valid(s, h, id) ? "slab header does not fit"
                                                                     : "slab summary checksum" };
        return n;   /* another store's leftover: free */
    }
    t->slabs_used++;
    const uint8_t *sum = img + fmt_sum_off(slab, h->nitems);
    uint64_t off = 0;
    for (uint32_t i = 0; i < h->nitems && n < cap; i++) {
        const struct fmt_item *copy = (const struct fmt_item *)(sum + (uint64_t)i * FMT_ITEM_HDR);
        const uint8_t *item = img + off;
        const struct fmt_item *it = (const struct fmt_item *)item;
        off += fmt_item_span(copy->len);
        if (copy->magic == 0) {
            t->holes++;   /* an aborted put */
            continue;
        }
        struct fault f = { id, i, copy->ns, { copy->key_lo, copy->key_hi }, NULL };
        if (!fmt_item_check_hdr(copy)) {
            f.what = "summary item header checksum";
        } else if (!fmt_item_in_slab(h, copy)) {
            t->stale++;   /* not of this write of the slab */
            continue;
        } else if (off > h->used) {
            f.what = "item beyond the slab's items";
        } else if (memcmp(it, copy, FMT_ITEM_HDR) != 0) {
            f.what = "item header differs from its summary copy";
        } else if (!fmt_item_check_value(it, item + FMT_ITEM_HDR)) {
            f.what = "value checksum";
        } else {
            t->items++;
            t->bytes += it->len;
            continue;
        }
        local[n++] = f;
    }
    return n;
}

/* The daemon's audit of the store. */
struct audit {
    bool ran;                /* the daemon serving this store answered */
    uint32_t disagreements;
    uint64_t micros;
    char first[256];         /* the first disagreement */
    char why[320];           /* not ran: why */
};

/* Ask the daemon at x->server for its audit, if it serves store s. */
static void scrub_audit(struct kvc_ctx *x, const struct kvc_store *s, struct audit *au)
{
    Kvcache__Response *resp = NULL;
    struct kvc_rpc *r;
    int rc;

    memset(au, 0, sizeof(*au));
    if (s_no_audit) {
        snprintf(au->why, sizeof(au->why), "--no-audit");
        return;
    }
    if ((r = kvc_rpc_create(x->server, x->timeout_ms)) == NULL) {
        snprintf(au->why, sizeof(au->why), "bad server URI \"%s\"", x->server);
        return;
    }
    rc = kvc_rpc_audit(r, &resp);
    if (rc) {
        snprintf(au->why, sizeof(au->why), "%s", kvc_rpc_error(r));
    } else if (resp->audit->store_id != s->sb->store_id) {
        snprintf(au->why, sizeof(au->why), "the daemon at %s serves another store", x->server);
    } else {
        au->ran = true;
        au->disagreements = resp->audit->disagreements;
        au->micros = resp->audit->micros;
        snprintf(au->first, sizeof(au->first), "%s", resp->audit->first);
    }
    if (resp)
        kvcache__response__free_unpacked(resp, NULL);
    kvc_rpc_destroy(r);
}

static void progress(uint32_t done, uint32_t total, double t0)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double el = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 - t0;
    int w = total ? (int)((uint64_t)done * 30 / total) : 30;
    fprintf(stderr, "\r[%.*s%*s] %3u%% %u/%u slabs %.1fs", w,
            "##############################", 30 - w, "", total ? done * 100 / total : 100,
            done, total, el);
}

int cmd_scrub(struct kvc_ctx *x, int argc, char **argv)
{
    struct kvc_store st;
    struct scrub sc = { 0 };
    uint8_t *img = NULL, *hdr = NULL;
    struct fault *local = NULL;
    char err[512];
    int rc, first;
    struct timespec ts;

    if ((rc = kvc_parse(x, &scrub_cmd, argc, argv, &first)) >= 0)
        return rc;
    if (first + 1 != argc || s_limit < 0) {
        kvc_err("scrub", "one store PATH expected (see --help)");
        return KVC_EXIT_USAGE;
    }
    if (kvc_store_open(argv[first], &st, err, sizeof(err))) {
        kvc_err("scrub", "%s", err);
        return KVC_EXIT_ERROR;
    }
    bool bar = !s_no_progress && (s_progress || isatty(2));
    uint32_t slab = st.sb->slab_size, nslots_max = slab / FMT_ITEM_HDR;
    img = kvc_store_alloc(slab);
    hdr = kvc_store_alloc(FMT_BLOCK);
    local = calloc(nslots_max + 1, sizeof(*local));
    rc = KVC_EXIT_ERROR;
    if (img == NULL || hdr == NULL || local == NULL)
        goto out;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t0 = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    for (uint32_t id = 0; id < st.sb->nslabs; id++) {
        size_t nf = 0;
        for (int attempt = 0; attempt < 3; attempt++) {
            struct scrub before = sc;
            int e = kvc_store_read(&st, img, slab, kvc_slab_off(&st, id));
            if (e) {
                kvc_err("scrub", "%s: slab %u: read: %s", argv[first], id, strerror(-e));
                goto out;
            }
            nf = check_slab(&st, id, img, &sc, local, nslots_max + 1);
            if (nf == 0)
                break;
            /* a fault: was the slab rewritten under us? */
            const uint8_t *was = img + fmt_hdr_off(slab);
            if (kvc_store_read(&st, hdr, FMT_BLOCK, kvc_slab_off(&st, id) + fmt_hdr_off(slab)) == 0 &&
                memcmp(hdr, was, sizeof(struct fmt_slab)) == 0)
                break;   /* same slab: the fault is real */
            sc = before;   /* count it again on the next read */
            if (attempt == 2) {
                sc.slabs_rewritten++;
                nf = 0;
            }
        }
        for (size_t i = 0; i < nf; i++)
            add_fault(&sc, local[i]);
        sc.slabs++;
        if (bar && (id % 16 == 0 || id + 1 == st.sb->nslabs))
            progress(id + 1, st.sb->nslabs, t0);
    }
    if (bar)
        fprintf(stderr, "\n");
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double secs = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 - t0;
    struct audit au;
    scrub_audit(x, &st, &au);
    const char *sbnote = st.copy_ok[0] && st.copy_ok[1] ? "both intact"
                       : st.copy_ok[0] ? "copy B damaged or never written"
                                       : "copy A damaged or never written";
    if (x->json) {
        printf("{\"path\": ");
        kvc_json_str(stdout, argv[first]);
        printf(", \"seconds\": %.3f, \"superblock\": {\"copy_a\": %s, \"copy_b\": %s, "
               "\"in_use\": \"%c\"}, \"slabs\": %" PRIu64 ", \"slabs_used\": %" PRIu64
               ", \"slabs_rewritten\": %" PRIu64 ", \"items\": %" PRIu64 ", \"bytes\": %" PRIu64
               ", \"holes\": %" PRIu64 ", \"stale\": %" PRIu64 ", \"damaged_slabs\": %" PRIu64
               ", \"damaged_items\": %" PRIu64 ", \"damaged\": [",
               secs, st.copy_ok[0] ? "true" : "false", st.copy_ok[1] ? "true" : "false",
               st.copy ? 'B' : 'A', sc.slabs, sc.slabs_used, sc.slabs_rewritten, sc.items,
               sc.bytes, sc.holes, sc.stale, sc.damaged_slabs, sc.damaged_items);
        for (size_t i = 0; i < sc.nfaults; i++) {
            const struct fault *f = &sc.faults[i];
            printf("%s{\"slab\": %u, \"slot\": ", i ? ", " : "", f->slab);
            if (f->slot == UINT32_MAX)
                printf("null, \"ns\": null, \"key\": null");
            else {
                uint8_t kb[16];
                kvcache_key_to_bytes(f->key, kb);
                printf("%u, \"ns\": \"0x%016" PRIx64 "\", \"key\": \"", f->slot, f->ns);
                for (int j = 0; j < 16; j++)
                    printf("%02x", kb[j]);
                printf("\"");
            }
            printf(", \"what\": \"%s\"}", f->what);
        }
        printf("], \"audit\": {\"ran\": %s", au.ran ? "true" : "false");
        if (au.ran) {
            printf(", \"agree\": %s, \"disagreements\": %u, \"micros\": %" PRIu64
                   ", \"first\": ", au.disagreements ? "false" : "true", au.disagreements,
                   au.micros);
            kvc_json_str(stdout, au.first);
        } else {
            printf(", \"why\": ");
            kvc_json_str(stdout, au.why);
        }
        printf("}}\n");
    } else {
        char a[32];
        printf("%s: superblock %s; %" PRIu64 " slabs (%" PRIu64 " in use), %" PRIu64
               " items verified (%s) in %.1f s\n", argv[first], sbnote, sc.slabs, sc.slabs_used,
               sc.items, kvc_bytes(a, sizeof(a), (double)sc.bytes), secs);
        if (sc.holes || sc.stale || sc.slabs_rewritten)
            printf("  %" PRIu64 " holes (aborted puts), %" PRIu64 " stale slots, %" PRIu64
                   " slabs rewritten while read\n", sc.holes, sc.stale, sc.slabs_rewritten);
        for (size_t i = 0; i < sc.nfaults; i++) {
            const struct fault *f = &sc.faults[i];
            if (f->slot == UINT32_MAX) {
                printf("  DAMAGED slab %u: %s\n", f->slab, f->what);
                continue;
            }
            uint8_t kb[16];
            kvcache_key_to_bytes(f->key, kb);
            printf("  DAMAGED slab %u slot %u ns %016" PRIx64 " key ", f->slab, f->slot, f->ns);
            for (int j = 0; j < 16; j++)
                printf("%02x", kb[j]);
            printf(": %s\n", f->what);
        }
        if (sc.damaged_items + sc.damaged_slabs > sc.nfaults)
            printf("  ... %" PRIu64 " more not listed (--limit)\n",
                   sc.damaged_items + sc.damaged_slabs - sc.nfaults);
        printf("%s: %" PRIu64 " damaged items, %" PRIu64 " damaged slab headers\n",
               sc.damaged_items + sc.damaged_slabs ? "DAMAGE" : "clean", sc.damaged_items,
               sc.damaged_slabs);
        if (!au.ran)
            printf("index: not audited (%s)\n", au.why);
        else if (au.disagreements == 0)
            printf("index: agrees with the slabs (the daemon's audit, %.1f ms)\n",
                   (double)au.micros / 1000.0);
        else
            printf("index: DISAGREES with the slabs: %u disagreements; first: %s\n",
                   au.disagreements, au.first);
    }
    rc = sc.damaged_items + sc.damaged_slabs || (au.ran && au.disagreements) ? KVC_EXIT_DAMAGE
                                                                             : KVC_EXIT_OK;
out:
    free(img);
    free(hdr);
    free(local);
    free(sc.faults);
    kvc_store_close(&st);
    return rc;
}
