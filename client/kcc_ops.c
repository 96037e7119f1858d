/*
 * kcc_ops.c - the calls: requests are split by server (the ring), sent to
 * every server first, then the answers are read one server after the other,
 * so that servers work in parallel.  Blocks are read from the socket straight
 * into the caller's buffers.  A failed server counts as missing its keys.
 */
#include <stdlib.h>
#include <string.h>

#include "kcc_client.h"


void kcc_split_free(struct kcc_split *sp)
{
    free(sp->idx);
    free(sp->start);
    free(sp->count);
    free(sp->wire);
}

int kcc_split_keys(const struct kvcache *kc, const kvcache_key_t *keys, size_t n,
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
        owner[i] = kcc_server_of(kc, keys[i]);
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

int kcc_open_ns_on(struct kcc_pool *p, uint32_t s, const kvcache_ns_desc_t *d,
                   uint64_t deadline_ms)
{
    Kvcache__Request req = KVCACHE__REQUEST__INIT;
    Kvcache__OpenNamespaceRequest on = KVCACHE__OPEN_NAMESPACE_REQUEST__INIT;
    Kvcache__NamespaceDesc pd = KVCACHE__NAMESPACE_DESC__INIT;
    Kvcache__Response *resp;
    struct kcc_server *srv = &p->srv[s];
    int rc;

    pd.model = (char *)d->model;
    pd.layer_begin = d->layer_begin;
    pd.layer_end = d->layer_end;
    pd.tokens_per_block = d->tokens_per_block;
    pd.dtype = (char *)(d->dtype ? d->dtype : "");
    pd.kv_heads = d->kv_heads;
    pd.head_dim = d->head_dim;
    pd.block_bytes = d->block_bytes;
    on.desc = &pd;
    req.op_case = KVCACHE__REQUEST__OP_OPEN_NAMESPACE;
    req.open_namespace = &on;
    rc = kcc_rpc_send(srv, &p->kc->cfg, &req, NULL, 0, deadline_ms);
    if (rc == 0)
        rc = kcc_rpc_recv(srv, &p->kc->cfg, &resp, deadline_ms);
    if (rc) {
        kcc_pool_err(p, s, rc, "open namespace");
        return rc;
    }
    if (resp->code != KVCACHE__CODE__OK) {
        rc = kcc_rpc_code(resp->code);
        if (rc == 0)
            rc = KVCACHE_ESERVER;
        kcc_pool_err(p, s, rc, resp->message);
    } else if (srv->data_left) {
        kcc_server_fail(srv, &p->kc->cfg, KVCACHE_EPROTO);
        rc = KVCACHE_EPROTO;
    }
    kvcache__response__free_unpacked(resp, NULL);
    return rc;
}

/*
 * Read the answer to req on server s; if the server does not know the
 * namespace but the handle does, open it there and ask again once.  On
 * success *resp has code OK; otherwise the error is returned and recorded.
 */
int kcc_ops_finish(struct kcc_pool *p, uint32_t s, Kvcache__Request *req, uint64_t ns,
                      struct iovec *data, int ndata, uint64_t deadline, Kvcache__Response **resp)
{
    struct kcc_server *srv = &p->srv[s];
    kvcache_ns_desc_t d;
    int rc;

    rc = kcc_rpc_recv(srv, &p->kc->cfg, resp, deadline);
    if (rc == 0 && (*resp)->code == KVCACHE__CODE__UNKNOWN_NAMESPACE &&
        kcc_ns_lookup(p->kc, ns, &d) == 0) {
        kvcache__response__free_unpacked(*resp, NULL);
        *resp = NULL;
        rc = kcc_open_ns_on(p, s, &d, deadline);
        if (rc == 0)
            rc = kcc_rpc_send(srv, &p->kc->cfg, req, data, ndata, deadline);
        if (rc == 0)
            rc = kcc_rpc_recv(srv, &p->kc->cfg, resp, deadline);
    }
    if (rc) {
        kcc_pool_err(p, s, rc, "recv");
        return rc;
    }
    if ((*resp)->code != KVCACHE__CODE__OK) {
        rc = kcc_rpc_code((*resp)->code);
        if (rc == 0)
            rc = KVCACHE_ESERVER;
        kcc_pool_err(p, s, rc, (*resp)->message);
    } else if ((int)(*resp)->result_case != (int)req->op_case) {
        rc = KVCACHE_EPROTO;
        kcc_pool_err(p, s, rc, "wrong result type");
    }
    if (rc) {
        if (srv->data_left)
            kcc_server_fail(srv, &p->kc->cfg, KVCACHE_EPROTO);
        kvcache__response__free_unpacked(*resp, NULL);
        *resp = NULL;
    }
    return rc;
}

/* The operations on lists of keys. */
enum keyop { OP_MATCH, OP_GET_PREFIX, OP_GET, OP_DELETE };

/* Arguments and results of one key operation. */
struct keyop_args {
    enum keyop op;
    void *const *bufs;          /* get/get_prefix: caller buffers */
    size_t buf_size;
    uint32_t *lengths;          /* get/get_prefix: per-key lengths (optional for prefix) */
    size_t *local;              /* per server: leading run found (match/prefix) */
    size_t hits;                /* get/delete: keys found */
};

/* One server's request of a key operation. */
struct keyop_req {
    Kvcache__Request req;
    union {
        Kvcache__MatchRequest m;
        Kvcache__GetPrefixRequest gp;
        Kvcache__GetRequest g;
        Kvcache__DeleteRequest d;
    } u;
    int rc;                     /* result of the send, then of the exchange */
};

static void keyop_build(struct keyop_req *r, enum keyop op, uint64_t ns, uint8_t *wire,
                        size_t count)
{
    ProtobufCBinaryData keys = {.len = 16 * count, .data = wire};
    Kvcache__Request init = KVCACHE__REQUEST__INIT;

    r->req = init;
    switch (op) {
    case OP_MATCH: {
        Kvcache__MatchRequest m = KVCACHE__MATCH_REQUEST__INIT;
        r->u.m = m;
        r->u.m.ns = ns;
        r->u.m.keys = keys;
        r->req.op_case = KVCACHE__REQUEST__OP_MATCH;
        r->req.match = &r->u.m;
        break;
    }
    case OP_GET_PREFIX: {
        Kvcache__GetPrefixRequest gp = KVCACHE__GET_PREFIX_REQUEST__INIT;
        r->u.gp = gp;
        r->u.gp.ns = ns;
        r->u.gp.keys = keys;
        r->req.op_case = KVCACHE__REQUEST__OP_GET_PREFIX;
        r->req.get_prefix = &r->u.gp;
        break;
    }
    case OP_GET: {
        Kvcache__GetRequest g = KVCACHE__GET_REQUEST__INIT;
        r->u.g = g;
        r->u.g.ns = ns;
        r->u.g.keys = keys;
        r->req.op_case = KVCACHE__REQUEST__OP_GET;
        r->req.get = &r->u.g;
        break;
    }
    case OP_DELETE: {
        Kvcache__DeleteRequest d = KVCACHE__DELETE_REQUEST__INIT;
        r->u.d = d;
        r->u.d.ns = ns;
        r->u.d.keys = keys;
        r->req.op_case = KVCACHE__REQUEST__OP_DELETE;
        r->req.delete_ = &r->u.d;
        break;
    }
    }
}

/* Take server s's answer apart; read its blocks into the caller's buffers. */
static int keyop_result(struct kcc_pool *p, uint32_t s, const Kvcache__Response *resp,
                        const uint32_t *idx, size_t count, struct keyop_args *a,
                        uint64_t deadline)
{
    struct kcc_server *srv = &p->srv[s];
    struct iovec *iov = NULL;
    int rc = KVCACHE_EPROTO, niov = 0;

    switch (a->op) {
    case OP_MATCH:
        if (resp->match->matched > count || srv->data_left)
            goto bad;
        a->local[s] = resp->match->matched;
        return 0;
    case OP_DELETE:
        if (resp->delete_->n_status != count || srv->data_left)
            goto bad;
        for (size_t j = 0; j < count; j++)
            a->hits += resp->delete_->status[j] == KVCACHE__CODE__OK;
        return 0;
    case OP_GET_PREFIX: {
        const Kvcache__GetPrefixResponse *g = resp->get_prefix;
        if (g->found > count || g->n_lengths < g->found)
            goto bad;
        iov = malloc(sizeof(*iov) * (g->found ? g->found : 1));
        if (iov == NULL) {
            rc = KVCACHE_ENOMEM;
            goto bad;
        }
        for (size_t j = 0; j < g->found; j++) {
            if (g->lengths[j] > a->buf_size) {
                rc = KVCACHE_ESIZE;
                goto bad;
            }
            iov[niov++] = (struct iovec){a->bufs[idx[j]], g->lengths[j]};
            if (a->lengths)
                a->lengths[idx[j]] = g->lengths[j];
        }
        rc = kcc_rpc_recv_data(srv, &p->kc->cfg, iov, niov, deadline);
        free(iov);
        if (rc) {
            kcc_pool_err(p, s, rc, "get_prefix data");
            return rc;
        }
        a->local[s] = g->found;
        return 0;
    }
    case OP_GET: {
        const Kvcache__GetResponse *g = resp->get;
        if (g->n_status != count || g->n_lengths != count)
            goto bad;
        iov = malloc(sizeof(*iov) * (count ? count : 1));
        if (iov == NULL) {
            rc = KVCACHE_ENOMEM;
            goto bad;
        }
        for (size_t j = 0; j < count; j++) {
            int hit = g->status[j] == KVCACHE__CODE__OK;
            if (hit && g->lengths[j] > a->buf_size) {
                rc = KVCACHE_ESIZE;
                goto bad;
            }
            if (hit)
                iov[niov++] = (struct iovec){a->bufs[idx[j]], g->lengths[j]};
            a->lengths[idx[j]] = hit ? g->lengths[j] : 0;
        }
        rc = kcc_rpc_recv_data(srv, &p->kc->cfg, iov, niov, deadline);
        free(iov);
        if (rc) {
            /* Whatever this server said was found is lost now. */
            for (size_t j = 0; j < count; j++)
                a->lengths[idx[j]] = 0;
            kcc_pool_err(p, s, rc, "get data");
            return rc;
        }
        a->hits += (size_t)niov;
        return 0;
    }
    }
bad:
    free(iov);
    kcc_server_fail(srv, &p->kc->cfg, rc);
    kcc_pool_err(p, s, rc, "bad answer");
    return rc;
}

/* One key operation over keys[0..n) (n <= KCC_MAX_BATCH).  Returns the first
 * error; results in a (per-server runs, hits, lengths). */
static int keyop_run(struct kcc_pool *p, uint64_t ns, const kvcache_key_t *keys, size_t n,
                     struct keyop_args *a, uint64_t deadline)
{
    struct kvcache *kc = p->kc;
    struct keyop_req *rq = NULL;
    struct kcc_split sp;
    int rc, first = 0;

    rc = kcc_split_keys(kc, keys, n, &sp);
    if (rc)
        return rc;
    rq = calloc(kc->nservers, sizeof(*rq));
    if (rq == NULL) {
        kcc_split_free(&sp);
        return KVCACHE_ENOMEM;
    }
    for (uint32_t s = 0; s < kc->nservers; s++) {
        a->local[s] = 0;
        if (sp.count[s] == 0)
            continue;
        keyop_build(&rq[s], a->op, ns, sp.wire + 16 * (size_t)sp.start[s], sp.count[s]);
        rq[s].rc = kcc_rpc_send(&p->srv[s], &kc->cfg, &rq[s].req, NULL, 0, deadline);
        if (rq[s].rc)
            kcc_pool_err(p, s, rq[s].rc, "send");
    }
    for (uint32_t s = 0; s < kc->nservers; s++) {
        Kvcache__Response *resp;
        if (sp.count[s] == 0)
            continue;
        if (rq[s].rc == 0)
            rq[s].rc = kcc_ops_finish(p, s, &rq[s].req, ns, NULL, 0, deadline, &resp);
        if (rq[s].rc == 0) {
            rq[s].rc = keyop_result(p, s, resp, sp.idx + sp.start[s], sp.count[s], a, deadline);
            kvcache__response__free_unpacked(resp, NULL);
        }
        if (rq[s].rc && first == 0)
            first = rq[s].rc;
    }
    /* Turn per-server runs into the global leading run. */
    if (a->op == OP_MATCH || a->op == OP_GET_PREFIX) {
        size_t run = n;
        for (uint32_t s = 0; s < kc->nservers; s++)
            if (a->local[s] < sp.count[s] && sp.idx[sp.start[s] + a->local[s]] < run)
                run = sp.idx[sp.start[s] + a->local[s]];
        a->hits = run;
    }
    free(rq);
    kcc_split_free(&sp);
    return first;
}

/* Check the common arguments of a call and start its clock. */
static int ops_begin(kvcache_t *kc, const kvcache_key_t *keys, size_t n, uint64_t *deadline)
{
    if (kc == NULL || (keys == NULL && n))
        return KVCACHE_EINVAL;
    kc->pool.err[0] = '\0';
    *deadline = kcc_now_ms() + (uint64_t)kc->opt.timeout_ms;
    return 0;
}

/* match and get_prefix: chunk by chunk while every key of a chunk is found. */
static int ops_prefix(kvcache_t *kc, enum keyop op, uint64_t ns, const kvcache_key_t *keys,
                      size_t n, void *const *bufs, size_t buf_size, uint32_t *lengths,
                      size_t *found)
{
    size_t local[kc ? kc->nservers : 1];
    struct keyop_args a = {.op = op, .buf_size = buf_size, .lengths = lengths, .local = local};
    uint64_t deadline;
    size_t done = 0;
    int rc;

    if (found)
        *found = 0;
    rc = ops_begin(kc, keys, n, &deadline);
    if (rc || found == NULL || (op == OP_GET_PREFIX && bufs == NULL && n))
        return rc ? rc : KVCACHE_EINVAL;
    while (done < n) {
        size_t chunk = n - done < KCC_MAX_BATCH ? n - done : KCC_MAX_BATCH;
        a.bufs = bufs ? bufs + done : NULL;
        a.lengths = lengths ? lengths + done : NULL;
        rc = keyop_run(&kc->pool, ns, keys + done, chunk, &a, deadline);
        done += a.hits;
        if (rc || a.hits < chunk)
            break;
    }
    *found = done;
    return rc;
}

int kvcache_match(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                  size_t *matched)
{
    return ops_prefix(kc, OP_MATCH, ns_id, keys, n, NULL, 0, NULL, matched);
}

int kvcache_get_prefix(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                       void *const *bufs, size_t buf_size, uint32_t *lengths, size_t *found)
{
    return ops_prefix(kc, OP_GET_PREFIX, ns_id, keys, n, bufs, buf_size, lengths, found);
}

/* get and delete: every chunk, whatever was found. */
static int ops_each(kvcache_t *kc, enum keyop op, uint64_t ns, const kvcache_key_t *keys,
                    size_t n, void *const *bufs, size_t buf_size, uint32_t *lengths,
                    size_t *nfound)
{
    size_t local[kc ? kc->nservers : 1];
    struct keyop_args a = {.op = op, .buf_size = buf_size, .local = local};
    uint64_t deadline;
    size_t hits = 0;
    int rc, first = 0;

    if (nfound)
        *nfound = 0;
    rc = ops_begin(kc, keys, n, &deadline);
    if (rc || (op == OP_GET && (bufs == NULL || lengths == NULL) && n))
        return rc ? rc : KVCACHE_EINVAL;
    for (size_t done = 0; done < n; done += KCC_MAX_BATCH) {
        size_t chunk = n - done < KCC_MAX_BATCH ? n - done : KCC_MAX_BATCH;
        a.bufs = bufs ? bufs + done : NULL;
        a.lengths = lengths ? lengths + done : NULL;
        a.hits = 0;
        rc = keyop_run(&kc->pool, ns, keys + done, chunk, &a, deadline);
        hits += a.hits;
        if (rc && first == 0)
            first = rc;
    }
    if (nfound)
        *nfound = hits;
    return first;
}

int kvcache_get(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                void *const *bufs, size_t buf_size, uint32_t *lengths, size_t *nfound)
{
    return ops_each(kc, OP_GET, ns_id, keys, n, bufs, buf_size, lengths, nfound);
}

int kvcache_delete(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                   size_t *ndeleted)
{
    return ops_each(kc, OP_DELETE, ns_id, keys, n, NULL, 0, NULL, ndeleted);
}
