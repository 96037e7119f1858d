/*
 * kcc_ops.c - the calls on lists of keys (match, get_prefix, get, delete)
 * and open_namespace.  Keys are split by server (the ring) and by batch; all
 * batches of all servers go out at once through the mux, and blocks are
 * read from the sockets straight into the caller's buffers.  A failed server
 * counts as missing its keys.
 */
#include <stdlib.h>
#include <string.h>

#include "kc_ops.h"
#include "kcc_client.h"

void kcc_split_free(struct kcc_split *sp)
{
    free(sp->idx);
    free(sp->start);
    free(sp->count);
    free(sp->wire);
}

int kcc_split_keys(const struct kvcache *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                   struct kcc_split *sp)
{
    uint32_t ns = kc->nservers, *owner = NULL, *fill = NULL;
    int rc = KVCACHE_ENOMEM;

    memset(sp, 0, sizeof(*sp));
    sp->idx = malloc(sizeof(uint32_t) * (n ? n : 1));
    sp->start = calloc(ns, sizeof(uint32_t));
    sp->count = calloc(ns, sizeof(uint32_t));
    sp->wire = malloc(16 * (n ? n : 1));
    owner = malloc(sizeof(uint32_t) * (n ? n : 1));
    fill = calloc(ns, sizeof(uint32_t));
    if (!sp->idx || !sp->start || !sp->count || !sp->wire || !owner || !fill)
        goto out;
    for (size_t i = 0; i < n; i++) {
        owner[i] = kcc_server_of(kc, ns_id, keys[i]);
        sp->count[owner[i]]++;
    }
    for (uint32_t s = 1; s < ns; s++)
        sp->start[s] = sp->start[s - 1] + sp->count[s - 1];
    for (size_t i = 0; i < n; i++) {
        uint32_t pos = sp->start[owner[i]] + fill[owner[i]]++;
        sp->idx[pos] = (uint32_t)i;
        kvcache_key_to_bytes(keys[i], sp->wire + 16 * (size_t)pos);
    }
    rc = 0;
out:
    free(owner);
    free(fill);
    if (rc)
        kcc_split_free(sp);
    return rc;
}

int kcc_first_rc(struct kcc_xfer **x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (x[i]->rc)
            return x[i]->rc;
    return 0;
}

/* Shared check of a response: its code, then that it answers this op. */
static int resp_check(struct kcc_pool *p, struct kcc_xfer *x, const Kvcache__Response *resp)
{
    int rc;
    if (resp->code != KVCACHE__CODE__OK) {
        rc = kcc_code(resp->code);
        if (rc == 0)
            rc = KVCACHE_ESERVER;
        if (resp->code != KVCACHE__CODE__UNKNOWN_NAMESPACE)
            kcc_pool_err(p, x->server, rc, resp->message);
        return rc;
    }
    if ((int)resp->result_case != (int)x->req->op_case)
        return KVCACHE_EPROTO;
    return 0;
}

/* ---- open_namespace ---------------------------------------------------- */

/* One OpenNamespace transfer. */
struct ns_xfer {
    struct kcc_xfer x;
    struct kcc_pool *p;
    Kvcache__Request req;
    Kvcache__OpenNamespaceRequest on;
    Kvcache__NamespaceDesc pd;
};

static int ns_resp(struct kcc_xfer *x, Kvcache__Response *resp, uint64_t data_len,
                   struct iovec **iov, int *niov)
{
    struct ns_xfer *t = x->arg;
    (void)iov;
    (void)niov;
    int rc = resp_check(t->p, x, resp);
    return rc ? rc : data_len ? KVCACHE_EPROTO : 0;
}

int kcc_open_ns_on(struct kcc_pool *p, uint32_t s, const kvcache_ns_desc_t *d,
                   uint64_t deadline_ms)
{
    Kvcache__Request ri = KVCACHE__REQUEST__INIT;
    Kvcache__OpenNamespaceRequest oi = KVCACHE__OPEN_NAMESPACE_REQUEST__INIT;
    Kvcache__NamespaceDesc di = KVCACHE__NAMESPACE_DESC__INIT;
    struct ns_xfer t = {.p = p, .req = ri, .on = oi, .pd = di};
    struct kcc_xfer *xp = &t.x;

    t.pd.model = (char *)d->model;
    t.pd.layer_begin = d->layer_begin;
    t.pd.layer_end = d->layer_end;
    t.pd.tokens_per_block = d->tokens_per_block;
    t.pd.dtype = (char *)(d->dtype ? d->dtype : "");
    t.pd.kv_heads = d->kv_heads;
    t.pd.head_dim = d->head_dim;
    t.pd.block_bytes = d->block_bytes;
    t.on.desc = &t.pd;
    t.req.op_case = KVCACHE__REQUEST__OP_OPEN_NAMESPACE;
    t.req.open_namespace = &t.on;
    t.x = (struct kcc_xfer){.server = s, .req = &t.req, .on_resp = ns_resp, .arg = &t};
    kcc_mux_run(p->srv, &p->kc->cfg, &xp, 1, deadline_ms);
    if (t.x.rc)
        kcc_pool_err(p, s, t.x.rc, "open namespace");
    return t.x.rc;
}

void kcc_run(struct kcc_pool *p, struct kcc_xfer **x, size_t n, uint64_t ns,
             uint64_t deadline, const char *what)
{
    struct kcc_xfer **again = NULL;
    size_t nagain = 0;
    kvcache_ns_desc_t d;

    kcc_mux_run(p->srv, &p->kc->cfg, x, n, deadline);
    for (size_t i = 0; i < n; i++)
        if (x[i]->code == KVCACHE__CODE__UNKNOWN_NAMESPACE)
            nagain++;
    if (nagain && kcc_ns_lookup(p->kc, ns, &d) == 0 &&
        (again = malloc(sizeof(*again) * nagain)) != NULL) {
        uint32_t last = UINT32_MAX;
        nagain = 0;
        for (size_t i = 0; i < n; i++) {
            if (x[i]->code != KVCACHE__CODE__UNKNOWN_NAMESPACE)
                continue;
            /* x is grouped by server, so one open per server suffices. */
            if (x[i]->server != last && kcc_open_ns_on(p, x[i]->server, &d, deadline))
                continue;
            last = x[i]->server;
            again[nagain++] = x[i];
        }
        kcc_mux_run(p->srv, &p->kc->cfg, again, nagain, deadline);
        free(again);
    }
    for (size_t i = 0; i < n; i++)
        if (x[i]->rc) {
            kcc_pool_err(p, x[i]->server, x[i]->rc, what);
            break;
        }
}

/* ---- key operations ---------------------------------------------------- */

/* The key operations: the rows of proto's table flagged keys (kc_ops.h),
 * OP_GET_PREFIX, OP_GET, OP_MATCH, OP_DELETE, OP_EXISTS. */
enum keyop {
#define KEYOP_ENUM(name, NAME, num, flags) OP_##NAME,
    KC_KEY_OPS(KEYOP_ENUM)
#undef KEYOP_ENUM
};

/* Their names, for error messages. */
static const char *const keyop_names[] = {
#define KEYOP_NAME(name, NAME, num, flags) #name,
    KC_KEY_OPS(KEYOP_NAME)
#undef KEYOP_NAME
};

/* Arguments of one key operation. */
struct keyop_args {
    struct kcc_pool *p;
    enum keyop op;
    void *const *bufs;          /* get/get_prefix: caller buffers, by key index */
    size_t buf_size;
    uint32_t *lengths;          /* per key (optional for get_prefix) */
    kvcache_ref_t *refs;        /* get_prefix_refs: references, by key index */
    uint8_t *where;             /* match_where: where each block lives, by key index */
    uint8_t *present;           /* exists: 1 if held, by key index */
};

/* One batch of one server's keys. */
struct keyop_xfer {
    struct kcc_xfer x;
    struct keyop_args *a;
    const uint32_t *idx;        /* key indices of the batch, ascending */
    size_t count;
    size_t found;               /* prefix: leading run; get/delete: hits */
    struct iovec *iov;          /* where the blocks go */
    int by_ref;                 /* asked for references (shared memory) */
    uint64_t gen;               /* the connection asked on */
    uint64_t lease;             /* lease the answer holds, 0 if none */
    uint64_t lease_deadline;    /* its end, CLOCK_MONOTONIC ns */
    Kvcache__Request req;
    union {
        Kvcache__MatchRequest m;
        Kvcache__GetPrefixRequest gp;
        Kvcache__GetRequest g;
        Kvcache__DeleteRequest d;
        Kvcache__ExistsRequest e;
    } u;
};

static void keyop_build(struct keyop_xfer *t, enum keyop op, uint64_t ns, uint8_t *wire)
{
    ProtobufCBinaryData keys = {.len = 16 * t->count, .data = wire};
    Kvcache__Request init = KVCACHE__REQUEST__INIT;

    t->req = init;
    switch (op) {
    case OP_MATCH: {
        Kvcache__MatchRequest m = KVCACHE__MATCH_REQUEST__INIT;
        t->u.m = m;
        t->u.m.ns = ns;
        t->u.m.keys = keys;
        t->u.m.where = t->a->where != NULL;
        t->req.op_case = KVCACHE__REQUEST__OP_MATCH;
        t->req.match = &t->u.m;
        break;
    }
    case OP_GET_PREFIX: {
        Kvcache__GetPrefixRequest gp = KVCACHE__GET_PREFIX_REQUEST__INIT;
        t->u.gp = gp;
        t->u.gp.ns = ns;
        t->u.gp.keys = keys;
        t->u.gp.by_ref = t->by_ref;
        t->req.op_case = KVCACHE__REQUEST__OP_GET_PREFIX;
        t->req.get_prefix = &t->u.gp;
        break;
    }
    case OP_GET: {
        Kvcache__GetRequest g = KVCACHE__GET_REQUEST__INIT;
        t->u.g = g;
        t->u.g.ns = ns;
        t->u.g.keys = keys;
        t->u.g.by_ref = t->by_ref;
        t->req.op_case = KVCACHE__REQUEST__OP_GET;
        t->req.get = &t->u.g;
        break;
    }
    case OP_DELETE: {
        Kvcache__DeleteRequest d = KVCACHE__DELETE_REQUEST__INIT;
        t->u.d = d;
        t->u.d.ns = ns;
        t->u.d.keys = keys;
        t->req.op_case = KVCACHE__REQUEST__OP_DELETE;
        t->req.delete_ = &t->u.d;
        break;
    }
    case OP_EXISTS: {
        Kvcache__ExistsRequest e = KVCACHE__EXISTS_REQUEST__INIT;
        t->u.e = e;
        t->u.e.ns = ns;
        t->u.e.keys = keys;
        t->req.op_case = KVCACHE__REQUEST__OP_EXISTS;
        t->req.exists = &t->u.e;
        break;
    }
    }
}

/* Block j (key index i) of a batch: copied from the shared region, made a
 * reference, or named for the data section in t->iov[*n].  0 or an error. */
static int keyop_block(struct keyop_xfer *t, const uint64_t *offs, size_t j, size_t i,
                       uint32_t len, int *n)
{
    struct keyop_args *a = t->a;
    const struct kcc_server *s = &a->p->srv[t->x.server];
    uint64_t off = offs ? offs[j] : UINT64_MAX;
    const void *src = NULL;

    if (a->refs == NULL && len > a->buf_size)
        return KVCACHE_ESIZE;
    if (off != UINT64_MAX && (src = kcc_shm_ptr(s, off, len)) == NULL)
        return KVCACHE_EPROTO;
    if (a->refs) {
        kvcache_ref_t *r = &a->refs[i];
        *r = (kvcache_ref_t){.data = src, .len = len, .deadline_ns = UINT64_MAX,
                             .server = t->x.server};
        if (src) {
            r->flags = KVCACHE_REF_SHARED;
            r->lease = t->lease;
            r->deadline_ns = t->lease_deadline;
            r->priv_flags = KCC_GEN(t->gen) << 8;
            return 0;
        }
        r->data = malloc(len ? len : 1);
        if (r->data == NULL)
            return KVCACHE_ENOMEM;
        r->priv_flags = 1;   /* a copy of the library's */
        t->iov[(*n)++] = (struct iovec){(void *)r->data, len};
        return 0;
    }
    if (src)
        memcpy(a->bufs[i], src, len);
    else
        t->iov[(*n)++] = (struct iovec){a->bufs[i], len};
    return 0;
}

/* A batch's response: counts, and the caller's buffers for its blocks. */
static int keyop_resp(struct kcc_xfer *x, Kvcache__Response *resp, uint64_t data_len,
                      struct iovec **iov, int *niov)
{
    struct keyop_xfer *t = x->arg;
    struct keyop_args *a = t->a;
    int rc = resp_check(a->p, x, resp), n = 0;

    t->found = 0;
    if (rc)
        return rc;
    switch (a->op) {
    case OP_MATCH:
        if (resp->match->matched > t->count || data_len)
            return KVCACHE_EPROTO;
        if (a->where) {
            const ProtobufCBinaryData *w = &resp->match->where;
            if (w->len != resp->match->matched)
                return KVCACHE_EPROTO;
            for (size_t j = 0; j < w->len; j++) {
                if (w->data[j] != KVCACHE_WHERE_DRAM && w->data[j] != KVCACHE_WHERE_SSD)
                    return KVCACHE_EPROTO;
                a->where[t->idx[j]] = w->data[j];
            }
        }
        t->found = resp->match->matched;
        return 0;
    case OP_DELETE:
        if (resp->delete_->n_status != t->count || data_len)
            return KVCACHE_EPROTO;
        for (size_t j = 0; j < t->count; j++)
            t->found += resp->delete_->status[j] == KVCACHE__CODE__OK;
        return 0;
    case OP_EXISTS:
        if (resp->exists->n_present != t->count || data_len)
            return KVCACHE_EPROTO;
        for (size_t j = 0; j < t->count; j++) {
            a->present[t->idx[j]] = resp->exists->present[j] ? 1 : 0;
            t->found += resp->exists->present[j] != 0;
        }
        return 0;
    case OP_GET_PREFIX: {
        const Kvcache__GetPrefixResponse *g = resp->get_prefix;
        const uint64_t *offs = t->by_ref ? g->offsets : NULL;
        if (g->found > t->count || g->n_lengths < g->found ||
            (t->by_ref && g->n_offsets != g->found))
            return KVCACHE_EPROTO;
        t->lease = g->lease;
        t->lease_deadline = g->lease_deadline_ns;
        for (size_t j = 0; j < g->found; j++) {
            rc = keyop_block(t, offs, j, t->idx[j], g->lengths[j], &n);
            if (rc)
                return rc;
            if (a->lengths)
                a->lengths[t->idx[j]] = g->lengths[j];
        }
        t->found = g->found;
        break;
    }
    case OP_GET: {
        const Kvcache__GetResponse *g = resp->get;
        const uint64_t *offs = t->by_ref ? g->offsets : NULL;
        if (g->n_status != t->count || g->n_lengths != t->count ||
            (t->by_ref && g->n_offsets != t->count))
            return KVCACHE_EPROTO;
        t->lease = g->lease;
        t->lease_deadline = g->lease_deadline_ns;
        for (size_t j = 0; j < t->count; j++)
            if (g->status[j] == KVCACHE__CODE__OK && g->lengths[j] > a->buf_size)
                return KVCACHE_ESIZE;
        for (size_t j = 0; j < t->count; j++) {
            int hit = g->status[j] == KVCACHE__CODE__OK;
            if (hit && (rc = keyop_block(t, offs, j, t->idx[j], g->lengths[j], &n)) != 0)
                return rc;
            a->lengths[t->idx[j]] = hit ? g->lengths[j] : 0;
            t->found += (size_t)hit;
        }
        break;
    }
    }
    /* copies out of the region are good only if they ended within the lease */
    if (t->lease && a->refs == NULL && kcc_now_ns() >= t->lease_deadline)
        return KVCACHE_ESTALE;
    *iov = t->iov;
    *niov = n;
    return 0;
}

/* Give back the leases of batches t[0..nx) that no reference in refs[0..run)
 * holds (all of them when refs is NULL), one Release per server. */
static void keyop_release(struct kcc_pool *p, struct keyop_xfer *t, size_t nx,
                          const kvcache_ref_t *refs, size_t run)
{
    uint64_t *ids = malloc(sizeof(*ids) * (nx ? nx : 1));
    uint64_t deadline = kcc_now_ms() + (uint64_t)p->kc->opt.timeout_ms;
    size_t k = 0;

    if (ids == NULL)
        return;   /* the daemon's lease timeout ends them */
    while (k < nx) {
        uint32_t s = t[k].x.server;
        uint64_t gen = t[k].gen;
        size_t m = 0;
        for (; k < nx && t[k].x.server == s; k++) {
            if (t[k].lease == 0)
                continue;
            if (refs && t[k].found && t[k].idx[0] < run && refs[t[k].idx[0]].lease == t[k].lease)
                continue;   /* a reference within the run holds it */
            ids[m++] = t[k].lease;
        }
        kcc_shm_release(&p->srv[s], gen, ids, m, deadline);
    }
    free(ids);
}

/* Run one key operation over keys[0..n); results per key index in a, the
 * leading run (prefix ops) or the hits (get/delete) in *result. */
static int keyop_run(kvcache_t *kc, struct keyop_args *a, uint64_t ns,
                     const kvcache_key_t *keys, size_t n, size_t *result)
{
    struct kcc_pool *p = &kc->pool;
    struct keyop_xfer *t = NULL;
    struct kcc_xfer **xp = NULL;
    struct iovec *iovs = NULL;
    struct kcc_split sp;
    size_t nx = 0, k = 0, res = 0;
    uint64_t deadline = kcc_now_ms() + (uint64_t)kc->opt.timeout_ms;
    int rc, down_rc = 0;

    p->err[0] = '\0';
    /* A prefix ends at the first key of a server being skipped: ask the
     * others only for the keys before it (not for blocks past the run). */
    if ((a->op == OP_MATCH || a->op == OP_GET_PREFIX) && kc->nservers > 1) {
        for (size_t i = 0; i < n; i++) {
            uint32_t s = kcc_server_of(kc, ns, keys[i]);
            if (kcc_server_down(&p->srv[s])) {
                kcc_pool_err(p, s, KVCACHE_EDOWN, keyop_names[a->op]);
                down_rc = KVCACHE_EDOWN;
                n = i;
                break;
            }
        }
    }
    rc = kcc_split_keys(kc, ns, keys, n, &sp);
    if (rc)
        return rc;
    for (uint32_t s = 0; s < kc->nservers; s++)
        nx += (sp.count[s] + KCC_MAX_BATCH - 1) / KCC_MAX_BATCH;
    t = calloc(nx ? nx : 1, sizeof(*t));
    xp = calloc(nx ? nx : 1, sizeof(*xp));
    iovs = calloc(n ? n : 1, sizeof(*iovs));
    if (!t || !xp || !iovs) {
        rc = KVCACHE_ENOMEM;
        goto out;
    }
    for (uint32_t s = 0; s < kc->nservers; s++)
        for (uint32_t off = 0; off < sp.count[s]; off += KCC_MAX_BATCH) {
            struct keyop_xfer *b = &t[k];
            size_t first = (size_t)sp.start[s] + off;
            b->a = a;
            b->idx = sp.idx + first;
            b->count = sp.count[s] - off < KCC_MAX_BATCH ? sp.count[s] - off : KCC_MAX_BATCH;
            b->iov = iovs + first;
            if (a->op == OP_GET_PREFIX || a->op == OP_GET) {
                /* references need the connection attached before asking */
                if (off == 0)
                    kcc_server_connect(&p->srv[s], &kc->cfg, deadline);
                b->by_ref = kcc_shm_on(&p->srv[s]);
                b->gen = p->srv[s].conn.nconnects;
            }
            keyop_build(b, a->op, ns, sp.wire + 16 * first);
            b->x = (struct kcc_xfer){.server = s, .req = &b->req, .on_resp = keyop_resp,
                                     .arg = b};
            xp[k++] = &b->x;
        }
    kcc_run(p, xp, nx, ns, deadline, keyop_names[a->op]);
    rc = down_rc ? down_rc : kcc_first_rc(xp, nx);
    if (a->op == OP_MATCH || a->op == OP_GET_PREFIX) {
        /* A server's run ends at its first short or failed batch; the
         * call's run at the first key missing on any server. */
        res = n;
        k = 0;
        for (uint32_t s = 0; s < kc->nservers; s++) {
            size_t nb = (sp.count[s] + KCC_MAX_BATCH - 1) / KCC_MAX_BATCH, run = 0;
            int open = 1;
            for (size_t b = 0; b < nb; b++, k++) {
                if (!open)
                    continue;
                run += t[k].x.rc ? 0 : t[k].found;
                open = !t[k].x.rc && t[k].found == t[k].count;
            }
            if (run < sp.count[s] && sp.idx[sp.start[s] + run] < res)
                res = sp.idx[sp.start[s] + run];
        }
    }
    if (a->refs) {
        /* references past the run are not handed out */
        keyop_release(p, t, nx, a->refs, res);
        for (size_t i = res; i < n; i++) {
            if (a->refs[i].priv_flags & 1)
                free((void *)a->refs[i].data);
            memset(&a->refs[i], 0, sizeof(a->refs[i]));
        }
    } else if (a->op == OP_GET_PREFIX || a->op == OP_GET) {
        keyop_release(p, t, nx, NULL, 0);
    }
    if (a->op != OP_MATCH && a->op != OP_GET_PREFIX) {
        for (size_t i = 0; i < nx; i++) {
            if (t[i].x.rc == 0) {
                res += t[i].found;
            } else if (a->op == OP_GET) {
                for (size_t j = 0; j < t[i].count; j++)
                    a->lengths[t[i].idx[j]] = 0;
            }
        }
    }
out:
    *result = res;
    free(t);
    free(xp);
    free(iovs);
    kcc_split_free(&sp);
    return rc;
}

int kvcache_match(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                  size_t *matched)
{
    struct keyop_args a = {.p = kc ? &kc->pool : NULL, .op = OP_MATCH};
    if (matched)
        *matched = 0;
    if (kc == NULL || matched == NULL || (keys == NULL && n))
        return KVCACHE_EINVAL;
    return keyop_run(kc, &a, ns_id, keys, n, matched);
}

int kvcache_match_where(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                        size_t *matched, uint8_t *where)
{
    struct keyop_args a = {.p = kc ? &kc->pool : NULL, .op = OP_MATCH, .where = where};
    if (matched)
        *matched = 0;
    if (kc == NULL || matched == NULL || where == NULL || (keys == NULL && n))
        return KVCACHE_EINVAL;
    memset(where, 0, n);
    int rc = keyop_run(kc, &a, ns_id, keys, n, matched);
    memset(where + *matched, 0, n - *matched);   /* past the run: nothing */
    return rc;
}

int kvcache_exists(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                   uint8_t *present, size_t *npresent)
{
    struct keyop_args a = {.p = kc ? &kc->pool : NULL, .op = OP_EXISTS, .present = present};
    size_t dummy;
    if (npresent)
        *npresent = 0;
    if (kc == NULL || (n && (keys == NULL || present == NULL)))
        return KVCACHE_EINVAL;
    memset(present, 0, n);
    return keyop_run(kc, &a, ns_id, keys, n, npresent ? npresent : &dummy);
}

int kvcache_get_prefix(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                       void *const *bufs, size_t buf_size, uint32_t *lengths, size_t *found)
{
    struct keyop_args a = {.p = kc ? &kc->pool : NULL, .op = OP_GET_PREFIX, .bufs = bufs,
                           .buf_size = buf_size, .lengths = lengths};
    if (found)
        *found = 0;
    if (kc == NULL || found == NULL || (n && (keys == NULL || bufs == NULL)))
        return KVCACHE_EINVAL;
    return keyop_run(kc, &a, ns_id, keys, n, found);
}

int kvcache_get_prefix_refs(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys,
                            size_t n, kvcache_ref_t *refs, size_t *found)
{
    struct keyop_args a = {.p = kc ? &kc->pool : NULL, .op = OP_GET_PREFIX, .refs = refs};
    if (found)
        *found = 0;
    if (kc == NULL || found == NULL || (n && (keys == NULL || refs == NULL)))
        return KVCACHE_EINVAL;
    memset(refs, 0, sizeof(*refs) * n);
    return keyop_run(kc, &a, ns_id, keys, n, found);
}

int kvcache_release_refs(kvcache_t *kc, kvcache_ref_t *refs, size_t n)
{
    uint64_t now = kcc_now_ns(), *ids;
    int rc = 0;

    if (kc == NULL || (n && refs == NULL))
        return KVCACHE_EINVAL;
    ids = malloc(sizeof(*ids) * (n ? n : 1));
    for (uint32_t s = 0; s < kc->nservers; s++) {
        size_t m = 0;
        uint32_t gen = 0;
        for (size_t i = 0; i < n; i++) {
            kvcache_ref_t *r = &refs[i];
            int seen = 0;
            if (r->server != s || r->lease == 0)
                continue;
            if (now >= r->deadline_ns)
                rc = KVCACHE_ESTALE;
            gen = r->priv_flags >> 8;
            for (size_t j = 0; j < m && !seen; j++)
                seen = ids[j] == r->lease;
            if (!seen && ids)
                ids[m++] = r->lease;
        }
        kcc_shm_release(&kc->pool.srv[s], gen, ids, m,
                        kcc_now_ms() + (uint64_t)kc->opt.timeout_ms);
    }
    free(ids);
    for (size_t i = 0; i < n; i++) {
        if (refs[i].priv_flags & 1)
            free((void *)refs[i].data);
        memset(&refs[i], 0, sizeof(refs[i]));
    }
    return rc;
}

int kvcache_get(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                void *const *bufs, size_t buf_size, uint32_t *lengths, size_t *nfound)
{
    struct keyop_args a = {.p = kc ? &kc->pool : NULL, .op = OP_GET, .bufs = bufs,
                           .buf_size = buf_size, .lengths = lengths};
    size_t dummy;
    if (nfound)
        *nfound = 0;
    if (kc == NULL || (n && (keys == NULL || bufs == NULL || lengths == NULL)))
        return KVCACHE_EINVAL;
    return keyop_run(kc, &a, ns_id, keys, n, nfound ? nfound : &dummy);
}

int kvcache_delete(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                   size_t *ndeleted)
{
    struct keyop_args a = {.p = kc ? &kc->pool : NULL, .op = OP_DELETE};
    size_t dummy;
    if (ndeleted)
        *ndeleted = 0;
    if (kc == NULL || (keys == NULL && n))
        return KVCACHE_EINVAL;
    return keyop_run(kc, &a, ns_id, keys, n, ndeleted ? ndeleted : &dummy);
}
