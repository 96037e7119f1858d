/*
 * kc_store.c - opening, recovering and closing a store; stats and the views
 * the inspection tools use (namespaces are in kc_ns.c). See kc_store.h for the contract.
 */
#include "slab/kc_store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ssd/kc_recover.h"

/* Sequence numbers reserved in the superblock at a time: one superblock
 * write per million items or slabs. */
#define STORE_SEQ_RANGE (1ull << 20)

const char *kc_strerror(int code)
{
    switch (code) {
    case KC_OK: return "ok";
    case KC_EXISTS: return "already present";
    case KC_MISS: return "not found";
    case KC_SKIPPED: return "not admitted";
    case KC_EINVAL: return "invalid argument";
    case KC_ENONS: return "unknown namespace";
    case KC_EBADSIZE: return "value size does not match the namespace's block size";
    case KC_ETOOBIG: return "value larger than a slab holds";
    case KC_ENOSPC: return "no space: nothing can be evicted or the index is full";
    case KC_EBUSY: return "no memory slab free right now";
    case KC_EIO: return "device I/O error";
    case KC_ECSUM: return "checksum mismatch";
    case KC_ENOMEM: return "out of memory";
    case KC_EFORMAT: return "store on the device has another format or geometry";
    case KC_ENSFULL: return "namespace table full";
    default: return code < 0 && code > -4096 ? strerror(-code) : "unknown error";
    }
}

void store_config_default(struct store_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->path = "var/kvcache.store";
    cfg->slab_size = 32u << 20;
    cfg->memory = 256ull << 20;
    cfg->min_item_size = 256u << 10;
    cfg->queue_depth = 64;
}

void store_log(struct store *st, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (st->cfg.log != NULL)
        st->cfg.log(st->cfg.log_arg, level, msg);
    else
        fprintf(stderr, "kvstore %s: %s\n", level == 0 ? "error" : level == 1 ? "warning" : "info", msg);
}

/* Write the namespace table and geometry to the next superblock copy. */
int store_sb_write(struct store *st)
{
    struct fmt_sb *sb = st->sbuf;
    struct fmt_ns *rec = (struct fmt_ns *)(sb + 1);

    memset(st->sbuf, 0, FMT_SB_COPY);
    *sb = (struct fmt_sb){ .magic = FMT_SB_MAGIC, .version = FMT_VERSION,
                           .store_id = st->store_id, .epoch_next = st->epoch_next,
                           .generation = ++st->sb_gen, .device_size = st->dev.size,
                           .slab_size = st->slab_size, .nslabs = st->nslabs,
                           .data_off = FMT_DATA_OFF, .seq_reserved = st->seq_reserved };
    for (uint32_t i = 0; i < st->nns; i++) {
        const struct nsent *n = &st->ns[i];
        if (!n->live)
            continue;
        struct fmt_ns *r = &rec[sb->ns_count++];
        *r = (struct fmt_ns){ .id = n->id, .block_bytes = n->block_bytes,
                              .epoch = n->epoch, .live = 1, .desc_len = n->desc_len };
        memcpy(r->desc, n->desc, n->desc_len);
    }
    int rc = recover_sb_store(&st->dev, st->sbuf);
    if (rc == 0)
        rc = dev_sync(&st->dev);   /* the namespace table and the sequence
                                      range are relied on once written */
    if (rc < 0) {
        st->st.io_errors++;
        store_log(st, 0, "superblock write failed: %s", strerror(-rc));
        return KC_EIO;
    }
    return 0;
}

/*
 * The next sequence number (items, tombstones, slabs). Numbers never repeat,
 * even after a crash: before one at or past the range reserved in the
 * superblock is handed out, a new range is written (and synced), and a
 * reopened store starts at the reserved end.
 */
uint64_t store_seq_take(struct store *st)
{
    if (st->next_seq >= st->seq_reserved)
        store_seq_reserve(st, true);
    return st->next_seq++;
}

/*
 * Reserve the next range of sequence numbers once half of the current one
 * is used (or at once if forced: none left). Called where a synchronous
 * superblock write is safe (a put or delete starting, not inside an I/O
 * completion), so that store_seq_take practically never has to.
 */
void store_seq_reserve(struct store *st, bool force)
{
    if (!force && st->next_seq + STORE_SEQ_RANGE / 2 < st->seq_reserved)
        return;
    st->seq_reserved = st->next_seq + STORE_SEQ_RANGE;
    store_sb_write(st);   /* on failure, logged and counted */
}

/*
 * Double the index (a store sized for larger blocks than it gets), up to
 * the entries the device needs when every block is 4 KiB.
 * The sweep step follows the size.
 */
int store_index_grow(struct store *st)
{
    uint64_t most = (uint64_t)st->nslabs * (st->slab_size / fmt_item_span(FMT_BLOCK));
    uint64_t cap = st->ix.cap * 2;

    most += most / 8;
    if (cap > most)
        cap = most;
    if (cap <= st->ix.cap)
        return KC_ENOSPC;
    if (index_grow(&st->ix, cap) < 0) {
        store_log(st, 1, "index full at %llu entries, and no memory to grow it",
                  (unsigned long long)st->ix.cap);
        return KC_ENOMEM;
    }
    uint64_t step = 32 * (st->ix.cap / st->nslabs);
    st->sweep_step = step < 1024 ? 1024 : step;
    st->st.index_grown++;
    store_log(st, 2, "index grown to %llu entries (%llu bytes): blocks are smaller than "
              "min_item_size", (unsigned long long)st->ix.cap,
              (unsigned long long)index_bytes(&st->ix));
    return 0;
}

/* Durability barrier: what was written so far is on stable storage. */
int store_barrier(struct store *st)
{
    int rc = dev_sync(&st->dev);

    if (rc < 0) {
        st->st.io_errors++;
        store_log(st, 0, "fdatasync of %s failed: %s", st->path, strerror(-rc));
        return KC_EIO;
    }
    return 0;
}

/* Load the namespace table from a valid superblock in st->sbuf. */
static int store_sb_adopt(struct store *st)
{
    const struct fmt_sb *sb = st->sbuf;
    const struct fmt_ns *rec = (const struct fmt_ns *)(sb + 1);

    st->store_id = sb->store_id;
    st->sb_gen = sb->generation;
    st->epoch_next = sb->epoch_next;
    /* Numbers below the reserved end may have been used before a crash. */
    st->next_seq = st->seq_reserved = sb->seq_reserved;
    st->nns = sb->ns_count;
    for (uint32_t i = 0; i < st->nns; i++) {
        struct nsent *n = &st->ns[i];
        memset(n, 0, sizeof(*n));
        n->id = rec[i].id;
        n->block_bytes = rec[i].block_bytes;
        n->epoch = rec[i].epoch;
        n->live = true;
        n->desc_len = rec[i].desc_len > FMT_NS_DESC_MAX ? FMT_NS_DESC_MAX : rec[i].desc_len;
        memcpy(n->desc, rec[i].desc, n->desc_len);
    }
    return 0;
}

/* Check the configuration and work out the geometry. */
static int store_geometry(struct store *st, char *err, size_t errlen)
{
    const struct store_config *c = &st->cfg;

    if (c->slab_size < (1u << 20) || c->slab_size % (1u << 20) != 0) {
        snprintf(err, errlen, "slab size %u: must be a multiple of 1 MiB", c->slab_size);
        return KC_EINVAL;
    }
    st->slab_size = c->slab_size;
    if (st->dev.size < FMT_DATA_OFF + 3ull * st->slab_size) {
        snprintf(err, errlen, "device of %llu bytes holds fewer than 3 slabs of %u bytes",
                 (unsigned long long)st->dev.size, st->slab_size);
        return KC_EINVAL;
    }
    uint64_t n = (st->dev.size - FMT_DATA_OFF) / st->slab_size;
    st->nslabs = n > INDEX_SLAB_MAX - 1 ? INDEX_SLAB_MAX - 1 : (uint32_t)n;
    uint64_t nmem = c->memory / st->slab_size;
    if (nmem < 2)
        nmem = 2;
    if (nmem > st->nslabs - 1)
        nmem = st->nslabs - 1;
    st->nmem = (uint32_t)nmem;
    uint32_t min = c->min_item_size ? c->min_item_size : FMT_BLOCK;
    if (min > fmt_max_value(st->slab_size))
        min = fmt_max_value(st->slab_size);
    /* Blocks a slab holds at min_item_size, each with its summary copy. */
    st->items_max = (uint64_t)st->nslabs *
                    ((st->slab_size - FMT_SLAB_HDR) / (fmt_item_span(min) + FMT_ITEM_HDR));
    return 0;
}

/* Split one "name" or "name:param" of at most len chars into name and
 * param. Returns false if the name is too long or the param no number. */
static bool store_spec_split(const char *spec, size_t len, char *name, size_t namelen,
                             uint32_t *param)
{
    const char *colon = memchr(spec, ':', len);
    size_t nlen = colon != NULL ? (size_t)(colon - spec) : len;

    if (nlen >= namelen)
        return false;
    memcpy(name, spec, nlen);
    name[nlen] = '\0';
    if (colon != NULL) {
        char num[16], *end;
        size_t plen = len - nlen - 1;
        if (plen == 0 || plen >= sizeof(num))
            return false;
        memcpy(num, colon + 1, plen);
        num[plen] = '\0';
        unsigned long v = strtoul(num, &end, 10);
        if (*end != '\0' || v > UINT32_MAX)
            return false;
        *param = (uint32_t)v;
    }
    return true;
}

/* Split a policy spec "evict[:param][+admit[:param]]" (e.g. "prefix:30",
 * "prefix+hint", "fifo+ghost:8"). Returns the eviction policy and sets
 * *admit to the admission policy ("all" if none is named), or NULL if a
 * name is unknown or a parameter is not a number. */
static const struct evict_ops *store_evict_parse(const char *spec, uint32_t *param,
                                                 const struct admit_ops **admit,
                                                 uint32_t *admit_param)
{
    char name[32];
    const char *plus = strchr(spec, '+');
    size_t len = plus != NULL ? (size_t)(plus - spec) : strlen(spec);

    *admit = admit_find("all");
    if (!store_spec_split(spec, len, name, sizeof(name), param))
        return NULL;
    if (plus != NULL) {
        char aname[32];
        if (!store_spec_split(plus + 1, strlen(plus + 1), aname, sizeof(aname), admit_param))
            return NULL;
        *admit = admit_find(aname);
        if (*admit == NULL)
            return NULL;
    }
    return evict_find(name);
}

/* Allocate the tables that depend on the geometry. */
static int store_alloc(struct store *st)
{
    st->slabs = calloc(st->nslabs, sizeof(*st->slabs));
    st->slab_gen = calloc(st->nslabs, sizeof(*st->slab_gen));
    st->ns = calloc(FMT_NS_MAX, sizeof(*st->ns));
    st->sbuf = dev_alloc(FMT_SB_COPY);
    if (st->slabs == NULL || st->slab_gen == NULL || st->ns == NULL || st->sbuf == NULL)
        return KC_ENOMEM;
    st->nfree = st->nslabs;
    /* 9/8 entries per block: 32-byte entries make 36 bytes per block. */
    uint64_t cap = st->items_max + st->items_max / 8;
    if (index_init(&st->ix, cap, st->slab_gen) < 0)
        return KC_ENOMEM;
    uint64_t step = 32 * (st->ix.cap / st->nslabs);
    st->sweep_step = step < 1024 ? 1024 : step;
    st->ev.param = st->cfg.evict_param;
    const struct admit_ops *aops;
    const struct evict_ops *ops = store_evict_parse(st->cfg.evict ? st->cfg.evict : "fifo",
                                                    &st->ev.param, &aops, &st->adm.param);
    if (ops == NULL || evict_init(&st->ev, ops, st->nslabs) < 0)
        return ops == NULL ? KC_EINVAL : KC_ENOMEM;
    if (admit_init(&st->adm, aops, st->items_max) < 0)
        return KC_ENOMEM;
    return mslab_init_all(st);
}

int store_open(const struct store_config *cfg, struct store **out, char *err, size_t errlen)
{
    struct store *st = calloc(1, sizeof(*st));
    int rc;

    *out = NULL;
    if (st == NULL)
        return KC_ENOMEM;
    st->cfg = *cfg;
    st->path = strdup(cfg->path != NULL ? cfg->path : "(simulated)");
    st->cfg.path = st->path;
    st->dev.fd = -1;
    st->next_seq = 1;
    st->reclaiming = SLAB_NONE;
    if (cfg->simulate) {
        rc = dev_init_sim(&st->dev, cfg->device_size);
        st->cfg.fresh = true;
    } else {
        rc = dev_init(&st->dev, cfg->path, cfg->device_size,
                      cfg->queue_depth ? cfg->queue_depth : 64, err, errlen);
    }
    if (rc < 0)
        goto fail;
    if (!st->dev.direct && !cfg->simulate)
        store_log(st, 1, "%s does not support O_DIRECT: using buffered I/O", cfg->path);
    if ((rc = store_geometry(st, err, errlen)) < 0)
        goto fail;
    uint32_t param, aparam;
    const struct admit_ops *aops;
    if (cfg->evict != NULL && store_evict_parse(cfg->evict, &param, &aops, &aparam) == NULL) {
        snprintf(err, errlen, "unknown eviction policy '%s'", cfg->evict);
        rc = KC_EINVAL;
        goto fail;
    }
    if ((rc = store_alloc(st)) < 0) {
        snprintf(err, errlen, "allocating tables: %s", kc_strerror(rc));
        goto fail;
    }
    rc = st->cfg.fresh ? 0 : recover_sb_load(&st->dev, st->sbuf);
    if (rc < 0) {
        snprintf(err, errlen, "reading superblock: %s", strerror(-rc));
        rc = KC_EIO;
        goto fail;
    }
    if (rc == 2) {
        snprintf(err, errlen, "%s holds a store of format version %u; this version writes "
                 "format %u (slabs of mixed sizes with a summary) and cannot read it: "
                 "start with fresh (--fresh) to erase it", cfg->path,
                 ((const struct fmt_sb *)st->sbuf)->version, FMT_VERSION);
        rc = KC_EFORMAT;
        goto fail;
    }
    if (rc == 1) {
        const struct fmt_sb *sb = st->sbuf;
        if (sb->slab_size != st->slab_size || sb->nslabs != st->nslabs) {
            snprintf(err, errlen, "%s holds a store of %u slabs of %u bytes, not %u of %u: "
                     "start with the same geometry, or fresh to erase it", cfg->path,
                     sb->nslabs, sb->slab_size, st->nslabs, st->slab_size);
            rc = KC_EFORMAT;
            goto fail;
        }
        store_sb_adopt(st);
        if ((rc = store_recover(st, err, errlen)) < 0)
            goto fail;
    } else {
        if (getrandom(&st->store_id, sizeof(st->store_id), 0) != sizeof(st->store_id))
            st->store_id = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
        /* Both copies: an older store's other copy must not outlive it. */
        if ((rc = store_sb_write(st)) < 0 || (rc = store_sb_write(st)) < 0) {
            snprintf(err, errlen, "writing superblock to %s failed", cfg->path);
            goto fail;
        }
    }
    /* Faults start once the store is open: opening itself is not tested. */
    st->dev.fault_read_every = cfg->fault_read_every;
    st->dev.fault_write_every = cfg->fault_write_every;
    st->dev.fault_errno = cfg->fault_errno;
    if (cfg->fault_write_cut != 0)
        st->dev.fault_write_cut = st->dev.nwrites + cfg->fault_write_cut;
    *out = st;
    return 0;
fail:
    store_close(st);
    return rc;
}

void store_close(struct store *st)
{
    if (st == NULL)
        return;
    st->closing = true;
    if ((st->dev.fd >= 0 || st->dev.sim) && st->mem != NULL) {
        store_flush(st);
        slab_retire_check(st);
        if (st->sbuf != NULL)
            store_sb_write(st);   /* synced: the flushed slabs too */
    }
    dev_deinit(&st->dev);
    reclaim_deinit(st);
    if (st->slabs != NULL)
        slab_ns_free_all(st);
    mslab_deinit_all(st);
    rbuf_deinit(st);
    index_deinit(&st->ix);
    evict_deinit(&st->ev);
    admit_deinit(&st->adm);
    dev_free(st->sbuf, FMT_SB_COPY);
    if (st->scratch != NULL)
        dev_free(st->scratch, st->slab_size);
    free(st->ns);
    free(st->slab_gen);
    free(st->slabs);
    free(st->path);
    free(st);
}

void store_recovery_info(const struct store *st, struct store_recovery *r)
{
    *r = st->rec;
}

/* ---- views ---- */

uint32_t store_nslabs(const struct store *st)
{
    return st->nslabs;
}

int store_slab_get(const struct store *st, uint32_t id, struct store_slab_info *out)
{
    if (id >= st->nslabs)
        return KC_EINVAL;
    const struct slabinfo *s = &st->slabs[id];
    memset(out, 0, sizeof(*out));
    out->id = id;
    out->state = s->state;
    out->nitems = s->state == STORE_SLAB_OPEN && s->mem != 0 ? st->mem[s->mem - 1].nitems
                                                              : s->nitems;
    out->used = s->state == STORE_SLAB_OPEN && s->mem != 0 ? st->mem[s->mem - 1].used : s->used;
    out->nlive = s->nlive;
    out->seq = s->seq;
    out->seq_hi = s->seq_hi;
    out->live_bytes = s->bytes;
    out->in_memory = s->mem != 0;
    return 0;
}

/* Public view of an index entry. */
static void store_item_fill(const struct store *st, const struct index_entry *e,
                            struct store_item_info *out)
{
    const struct nsent *n = &st->ns[index_ns(e)];
    const struct slabinfo *s = &st->slabs[index_slab(e)];

    memset(out, 0, sizeof(*out));
    out->ns = n->id;
    out->key.lo = e->key_lo;
    out->key.hi = e->key_hi;
    out->slab = index_slab(e);
    out->slot = index_unit(e);
    out->len = store_entry_len(st, e);
    out->chain_pos = store_entry_chain_pos(st, e);
    out->hits = index_hits(e);
    out->in_memory = s->mem != 0;
}

int store_describe(const struct store *st, uint64_t ns, const struct kc_key *key,
                   struct store_item_info *out)
{
    const struct nsent *n = store_ns_find((struct store *)st, ns);

    if (n == NULL)
        return KC_ENONS;
    const struct index_entry *e = index_find(&st->ix, key->lo, key->hi, (uint32_t)(n - st->ns));
    if (e == NULL)
        return KC_MISS;
    store_item_fill(st, e, out);
    return 0;
}

void store_foreach_item(const struct store *st,
                        int (*cb)(const struct store_item_info *, void *), void *arg)
{
    struct store_item_info info;

    const struct index_entry *e;
    for (uint64_t i = 0; (e = index_walk(&st->ix, &i)) != NULL;) {
        store_item_fill(st, e, &info);
        if (cb(&info, arg) != 0)
            return;
    }
}

void store_stats(const struct store *st, struct store_stats *out)
{
    *out = st->st;
    out->index_capacity = st->ix.cap;
    out->index_bytes = index_bytes(&st->ix);
    out->index_entry_bytes = sizeof(struct index_entry);
    out->mem_slabs = st->nmem;
    out->mem_slabs_free = 0;
    for (uint32_t m = 0; m < st->nmem; m++)
        out->mem_slabs_free += st->mem[m].state == MS_FREE;
    out->mem_bytes = (uint64_t)st->nmem * st->slab_size;
    out->ssd_slabs = st->nslabs;
    out->ssd_slabs_free = st->nfree;
    out->store_id = st->store_id;
    out->ssd_slabs_used = st->nslabs - st->nfree;
    out->slab_size = st->slab_size;
    out->device_size = st->dev.size;
    out->bytes_written = st->dev.bytes_written;
    out->bytes_read = st->dev.bytes_read;
    out->syncs = st->dev.syncs;
    out->writes_discarded = st->dev.writes_discarded;
    out->reads_inflight = st->dev.inflight - st->dev.writes_inflight;
    out->blocks_max = st->items_max;
    out->dram_per_block = st->items_max == 0 ? 0 :
        (double)(index_bytes(&st->ix) + (uint64_t)st->nslabs *
                 (sizeof(struct slabinfo) + sizeof(uint16_t))) / (double)st->items_max;
}

/* ---- event loop ---- */

int store_fd(const struct store *st)
{
    return st->dev.efd;
}

int store_poll(struct store *st, bool wait)
{
    int rc = dev_reap(&st->dev, wait);
    return rc < 0 ? KC_EIO : rc;
}

bool store_busy(const struct store *st)
{
    return dev_busy(&st->dev);
}
