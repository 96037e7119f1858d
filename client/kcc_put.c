/*
 * kcc_put.c - the synchronous put and the stats call.  A put is split by
 * server like the other calls; its blocks are sent from the caller's buffers
 * (one iovec per block, no copy).
 */
#include <stdlib.h>
#include <string.h>

#include "kcc_client.h"

/* One server's put request. */
struct put_req {
    Kvcache__Request req;
    Kvcache__PutRequest put;
    Kvcache__PutItem *items;    /* one per key of this server */
    Kvcache__PutItem **itemp;   /* pointers to them, as protobuf-c wants */
    struct iovec *iov;          /* the blocks, from the caller's buffers */
    int rc;
};

/* Turn a per-item code into a kvcache_put_status. */
static int put_status(int32_t code)
{
    if (code == KVCACHE__CODE__OK)
        return KVCACHE_PUT_STORED;
    if (code == KVCACHE__CODE__EXISTS)
        return KVCACHE_PUT_EXISTS;
    int rc = kcc_rpc_code(code);
    return rc ? rc : KVCACHE_ESERVER;
}

/* One batch (n <= KCC_MAX_BATCH) over every server. */
static int put_batch(struct kcc_pool *p, uint64_t ns, const kvcache_key_t *keys, size_t n,
                     uint32_t first_pos, const void *const *bufs, size_t block_len,
                     int *status, size_t *nstored, uint64_t deadline)
{
    struct kvcache *kc = p->kc;
    struct put_req *rq;
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
        uint32_t c = sp.count[s], *idx = sp.idx + sp.start[s];
        Kvcache__Request ri = KVCACHE__REQUEST__INIT;
        Kvcache__PutRequest pi = KVCACHE__PUT_REQUEST__INIT;
        Kvcache__PutItem ii = KVCACHE__PUT_ITEM__INIT;
        if (c == 0)
            continue;
        rq[s].items = calloc(c, sizeof(*rq[s].items));
        rq[s].itemp = calloc(c, sizeof(*rq[s].itemp));
        rq[s].iov = calloc(c, sizeof(*rq[s].iov));
        if (!rq[s].items || !rq[s].itemp || !rq[s].iov) {
            rq[s].rc = KVCACHE_ENOMEM;
            continue;
        }
        for (uint32_t j = 0; j < c; j++) {
            rq[s].items[j] = ii;
            rq[s].items[j].key.len = 16;
            rq[s].items[j].key.data = sp.wire + 16 * ((size_t)sp.start[s] + j);
            rq[s].items[j].chain_pos = first_pos + idx[j];
            rq[s].items[j].length = (uint32_t)block_len;
            rq[s].itemp[j] = &rq[s].items[j];
            rq[s].iov[j] = (struct iovec){(void *)bufs[idx[j]], block_len};
        }
        rq[s].put = pi;
        rq[s].put.ns = ns;
        rq[s].put.n_items = c;
        rq[s].put.items = rq[s].itemp;
        rq[s].req = ri;
        rq[s].req.op_case = KVCACHE__REQUEST__OP_PUT;
        rq[s].req.put = &rq[s].put;
        rq[s].rc = kcc_rpc_send(&p->srv[s], &kc->cfg, &rq[s].req, rq[s].iov, (int)c, deadline);
        if (rq[s].rc)
            kcc_pool_err(p, s, rq[s].rc, "put send");
    }
    for (uint32_t s = 0; s < kc->nservers; s++) {
        uint32_t c = sp.count[s], *idx = sp.idx + sp.start[s];
        Kvcache__Response *resp = NULL;
        if (c == 0)
            continue;
        if (rq[s].rc == 0)
            rq[s].rc = kcc_ops_finish(p, s, &rq[s].req, ns, rq[s].iov, (int)c, deadline, &resp);
        if (rq[s].rc == 0 && (resp->put->n_status != c || p->srv[s].data_left)) {
            rq[s].rc = KVCACHE_EPROTO;
            kcc_server_fail(&p->srv[s], &kc->cfg, rq[s].rc);
            kcc_pool_err(p, s, rq[s].rc, "put answer");
        }
        for (uint32_t j = 0; j < c; j++) {
            int st = rq[s].rc ? rq[s].rc : put_status(resp->put->status[j]);
            if (status)
                status[idx[j]] = st;
            if (st >= 0)
                (*nstored)++;
            else if (first == 0)
                first = st;
        }
        if (resp)
            kvcache__response__free_unpacked(resp, NULL);
        if (rq[s].rc && first == 0)
            first = rq[s].rc;
    }
    for (uint32_t s = 0; s < kc->nservers; s++) {
        free(rq[s].items);
        free(rq[s].itemp);
        free(rq[s].iov);
    }
    free(rq);
    kcc_split_free(&sp);
    return first;
}

int kcc_op_put(struct kcc_pool *p, uint64_t ns, const kvcache_key_t *keys, size_t n,
               uint32_t first_pos, const void *const *bufs, size_t block_len,
               int *status, size_t *nstored, uint64_t deadline)
{
    size_t per = KCC_MAX_BATCH, stored = 0;
    int rc, first = 0;

    if (block_len == 0 || block_len > UINT32_MAX || (n && (keys == NULL || bufs == NULL)))
        return KVCACHE_EINVAL;
    if (per * block_len > KCC_MAX_PUT_BYTES)
        per = KCC_MAX_PUT_BYTES / block_len ? KCC_MAX_PUT_BYTES / block_len : 1;
    for (size_t done = 0; done < n; done += per) {
        size_t chunk = n - done < per ? n - done : per;
        rc = put_batch(p, ns, keys + done, chunk, first_pos + (uint32_t)done, bufs + done,
                       block_len, status ? status + done : NULL, &stored, deadline);
        if (rc && first == 0)
            first = rc;
    }
    if (nstored)
        *nstored = stored;
    return first;
}

int kvcache_put(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                uint32_t first_pos, const void *const *bufs, size_t block_len,
                int *status, size_t *nstored)
{
    if (nstored)
        *nstored = 0;
    if (kc == NULL)
        return KVCACHE_EINVAL;
    kc->pool.err[0] = '\0';
    return kcc_op_put(&kc->pool, ns_id, keys, n, first_pos, bufs, block_len, status, nstored,
                      kcc_now_ms() + (uint64_t)kc->opt.timeout_ms);
}

int kvcache_stats(kvcache_t *kc, int server, kvcache_stats_t *st)
{
    Kvcache__Request req = KVCACHE__REQUEST__INIT;
    Kvcache__StatsRequest sr = KVCACHE__STATS_REQUEST__INIT;
    Kvcache__Response *resp;
    uint64_t deadline;
    int rc;

    if (kc == NULL || st == NULL || server < 0 || (uint32_t)server >= kc->nservers)
        return KVCACHE_EINVAL;
    memset(st, 0, sizeof(*st));
    kc->pool.err[0] = '\0';
    deadline = kcc_now_ms() + (uint64_t)kc->opt.timeout_ms;
    req.op_case = KVCACHE__REQUEST__OP_STATS;
    req.stats = &sr;
    rc = kcc_rpc_send(&kc->pool.srv[server], &kc->cfg, &req, NULL, 0, deadline);
    if (rc) {
        kcc_pool_err(&kc->pool, (uint32_t)server, rc, "stats send");
        return rc;
    }
    rc = kcc_ops_finish(&kc->pool, (uint32_t)server, &req, 0, NULL, 0, deadline, &resp);
    if (rc)
        return rc;
    if (kc->pool.srv[server].data_left) {
        kcc_server_fail(&kc->pool.srv[server], &kc->cfg, KVCACHE_EPROTO);
        rc = KVCACHE_EPROTO;
    } else {
        const Kvcache__StatsResponse *r = resp->stats;
        st->items = r->items;
        st->bytes = r->bytes;
        st->hits = r->hits;
        st->misses = r->misses;
        st->puts = r->puts;
        st->evictions = r->evictions;
        st->connections = r->connections;
        st->uptime_s = r->uptime_s;
    }
    kvcache__response__free_unpacked(resp, NULL);
    return rc;
}
