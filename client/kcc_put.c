/*
 * kcc_put.c - the synchronous put, and the stats and health calls.  A put is split by
 * server and batch like the other calls; its blocks are sent from the
 * caller's buffers (one iovec per block, no copy).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcc_client.h"

/* One batch of one server's blocks. */
struct put_xfer {
    struct kcc_xfer x;
    struct kcc_pool *p;
    const uint32_t *idx;        /* key indices of the batch */
    size_t count;
    int *status;                /* per key index (caller's array or ours) */
    Kvcache__Request req;
    Kvcache__PutRequest put;
    Kvcache__PutItem *items;    /* count items */
    Kvcache__PutItem **itemp;   /* pointers to them, as protobuf-c wants */
    struct iovec *iov;          /* the blocks, in the caller's buffers */
};

/* Turn a per-item code into a kvcache_put_status. */
static int put_status(int32_t code)
{
    if (code == KVCACHE__CODE__OK)
        return KVCACHE_PUT_STORED;
    if (code == KVCACHE__CODE__EXISTS)
        return KVCACHE_PUT_EXISTS;
    int rc = kcc_code(code);
    return rc ? rc : KVCACHE_ESERVER;
}

static int put_resp(struct kcc_xfer *x, Kvcache__Response *resp, uint64_t data_len,
                    struct iovec **iov, int *niov)
{
    struct put_xfer *t = x->arg;
    (void)iov;
    (void)niov;
    if (resp->code != KVCACHE__CODE__OK) {
        int rc = kcc_code(resp->code);
        if (resp->code != KVCACHE__CODE__UNKNOWN_NAMESPACE)
            kcc_pool_err(t->p, x->server, rc ? rc : KVCACHE_ESERVER, resp->message);
        return rc ? rc : KVCACHE_ESERVER;
    }
    if (resp->result_case != KVCACHE__RESPONSE__RESULT_PUT ||
        resp->put->n_status != t->count || data_len)
        return KVCACHE_EPROTO;
    for (size_t j = 0; j < t->count; j++)
        t->status[t->idx[j]] = put_status(resp->put->status[j]);
    return 0;
}

/* True if every block of the batch lies in staging area sh. */
static int put_in_staging(const struct kcc_shm *sh, const void *const *bufs,
                          const uint32_t *idx, size_t count, size_t block_len)
{
    for (size_t j = 0; j < count; j++) {
        const uint8_t *b = bufs[idx[j]];
        if (sh->staging == NULL || b < sh->staging || b >= sh->staging + sh->staging_size ||
            block_len > (size_t)(sh->staging + sh->staging_size - b))
            return 0;
    }
    return 1;
}

/* A batch for server s goes by reference when its connection (made now if
 * needed) is attached: blocks already in the staging area are named by
 * their offsets, others are copied into its free part first (*scratch
 * bytes past the reservations are taken by earlier batches of the call).
 * Sets the items' offsets and *staging to the area's id, or leaves
 * *staging 0 (bytes on the socket). */
static void kcc_put_staged(struct kcc_pool *p, uint32_t s, Kvcache__PutItem *items,
                           size_t count, const void *const *bufs, const uint32_t *idx,
                           size_t block_len, uint64_t deadline, size_t *scratch,
                           uint64_t *staging)
{
    struct kcc_server *sv = &p->srv[s];
    struct kcc_shm *sh = &sv->shm;
    size_t need = count * block_len, at;

    *staging = 0;
    if (count == 0 || sv->conn.uri->kind != KCC_URI_UNIX ||
        kcc_server_connect(sv, &p->kc->cfg, deadline) != 0 || !kcc_shm_on(sv) ||
        sh->staging == NULL)
        return;
    if (put_in_staging(sh, bufs, idx, count, block_len)) {
        for (size_t j = 0; j < count; j++)
            items[j].offset = (uint64_t)((const uint8_t *)bufs[idx[j]] - sh->staging);
    } else {
        at = sh->staging_used + *scratch;
        if (at > sh->staging_size || need > sh->staging_size - at)
            return;
        for (size_t j = 0; j < count; j++) {
            memcpy(sh->staging + at + j * block_len, bufs[idx[j]], block_len);
            items[j].offset = at + j * block_len;
        }
        *scratch += need;
    }
    *staging = sh->staging_id;
}

int kcc_op_put(struct kcc_pool *p, uint64_t ns, const kvcache_key_t *keys, size_t n,
               uint32_t first_pos, uint32_t hints, const void *const *bufs, size_t block_len,
               int *status, size_t *nstored, uint64_t deadline)
{
    struct kvcache *kc = p->kc;
    size_t per = KCC_MAX_BATCH, nx = 0, k = 0, stored = 0;
    struct put_xfer *t = NULL;
    struct kcc_xfer **xp = NULL;
    Kvcache__PutItem *items = NULL;
    Kvcache__PutItem **itemp = NULL;
    struct iovec *iovs = NULL;
    int *st = status, rc;
    struct kcc_split sp;
    size_t *scratch = NULL;     /* per server: staging bytes this call copied into */

    if (nstored)
        *nstored = 0;
    if (block_len == 0 || block_len > UINT32_MAX || (n && (keys == NULL || bufs == NULL)))
        return KVCACHE_EINVAL;
    if (n == 0)
        return 0;
    if (per * block_len > KCC_MAX_PUT_BYTES)
        per = KCC_MAX_PUT_BYTES / block_len ? KCC_MAX_PUT_BYTES / block_len : 1;
    rc = kcc_split_keys(kc, ns, keys, n, &sp);
    if (rc)
        return rc;
    for (uint32_t s = 0; s < kc->nservers; s++)
        nx += (sp.count[s] + per - 1) / per;
    t = calloc(nx, sizeof(*t));
    xp = calloc(nx, sizeof(*xp));
    items = calloc(n, sizeof(*items));
    itemp = calloc(n, sizeof(*itemp));
    iovs = calloc(n, sizeof(*iovs));
    scratch = calloc(kc->nservers, sizeof(*scratch));
    if (st == NULL)
        st = calloc(n, sizeof(*st));
    if (!t || !xp || !items || !itemp || !iovs || !st || !scratch) {
        rc = KVCACHE_ENOMEM;
        goto out;
    }
    for (uint32_t s = 0; s < kc->nservers; s++)
        for (size_t off = 0; off < sp.count[s]; off += per) {
            struct put_xfer *b = &t[k];
            size_t first = (size_t)sp.start[s] + off;
            Kvcache__Request ri = KVCACHE__REQUEST__INIT;
            Kvcache__PutRequest pi = KVCACHE__PUT_REQUEST__INIT;
            Kvcache__PutItem ii = KVCACHE__PUT_ITEM__INIT;
            b->p = p;
            b->idx = sp.idx + first;
            b->count = sp.count[s] - off < per ? sp.count[s] - off : per;
            b->status = st;
            b->items = items + first;
            b->itemp = itemp + first;
            b->iov = iovs + first;
            for (size_t j = 0; j < b->count; j++) {
                b->items[j] = ii;
                b->items[j].key.len = 16;
                b->items[j].key.data = sp.wire + 16 * (first + j);
                b->items[j].chain_pos = first_pos + b->idx[j];
                b->items[j].length = (uint32_t)block_len;
                b->items[j].hints = hints;
                b->itemp[j] = &b->items[j];
                b->iov[j] = (struct iovec){(void *)bufs[b->idx[j]], block_len};
            }
            b->put = pi;
            kcc_put_staged(p, s, b->items, b->count, bufs, b->idx, block_len, deadline,
                           &scratch[s], &b->put.staging);
            b->put.ns = ns;
            b->put.n_items = b->count;
            b->put.items = b->itemp;
            b->req = ri;
            b->req.op_case = KVCACHE__REQUEST__OP_PUT;
            b->req.put = &b->put;
            b->x = (struct kcc_xfer){.server = s, .req = &b->req, .data = b->iov,
                                     .ndata = b->put.staging ? 0 : (int)b->count,
                                     .on_resp = put_resp, .arg = b};
            xp[k++] = &b->x;
        }
    kcc_run(p, xp, nx, ns, deadline, "put");
    rc = 0;
    for (size_t i = 0; i < nx; i++) {
        for (size_t j = 0; j < t[i].count; j++) {
            int v = t[i].x.rc ? t[i].x.rc : st[t[i].idx[j]];
            st[t[i].idx[j]] = v;
            if (v >= 0)
                stored++;
            else if (rc == 0)
                rc = v;
        }
    }
    if (nstored)
        *nstored = stored;
out:
    if (st != status)
        free(st);
    free(t);
    free(xp);
    free(items);
    free(itemp);
    free(iovs);
    free(scratch);
    kcc_split_free(&sp);
    return rc;
}

int kvcache_put_hint(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                     uint32_t first_pos, uint32_t hints, const void *const *bufs,
                     size_t block_len, int *status, size_t *nstored)
{
    if (nstored)
        *nstored = 0;
    if (kc == NULL)
        return KVCACHE_EINVAL;
    kc->pool.err[0] = '\0';
    return kcc_op_put(&kc->pool, ns_id, keys, n, first_pos, hints, bufs, block_len, status,
                      nstored, kcc_now_ms() + (uint64_t)kc->opt.timeout_ms);
}

int kvcache_put(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                uint32_t first_pos, const void *const *bufs, size_t block_len,
                int *status, size_t *nstored)
{
    return kvcache_put_hint(kc, ns_id, keys, n, first_pos, 0, bufs, block_len, status, nstored);
}

/* The Stats transfer. */
struct stats_xfer {
    struct kcc_xfer x;
    struct kcc_pool *p;
    kvcache_stats_t *st;
};

static int stats_resp(struct kcc_xfer *x, Kvcache__Response *resp, uint64_t data_len,
                      struct iovec **iov, int *niov)
{
    struct stats_xfer *t = x->arg;
    const Kvcache__StatsResponse *r = resp->stats;
    (void)iov;
    (void)niov;
    if (resp->code != KVCACHE__CODE__OK) {
        kcc_pool_err(t->p, x->server, KVCACHE_ESERVER, resp->message);
        return KVCACHE_ESERVER;
    }
    if (resp->result_case != KVCACHE__RESPONSE__RESULT_STATS || data_len)
        return KVCACHE_EPROTO;
    t->st->items = r->items;
    t->st->bytes = r->bytes;
    t->st->hits = r->hits;
    t->st->misses = r->misses;
    t->st->puts = r->puts;
    t->st->evictions = r->evictions;
    t->st->connections = r->connections;
    t->st->uptime_s = r->uptime_s;
    return 0;
}

int kvcache_stats(kvcache_t *kc, int server, kvcache_stats_t *st)
{
    Kvcache__Request req = KVCACHE__REQUEST__INIT;
    Kvcache__StatsRequest sr = KVCACHE__STATS_REQUEST__INIT;
    struct stats_xfer t;
    struct kcc_xfer *xp = &t.x;

    if (kc == NULL || st == NULL || server < 0 || (uint32_t)server >= kc->nservers)
        return KVCACHE_EINVAL;
    memset(st, 0, sizeof(*st));
    kc->pool.err[0] = '\0';
    req.op_case = KVCACHE__REQUEST__OP_STATS;
    req.stats = &sr;
    t.p = &kc->pool;
    t.st = st;
    t.x = (struct kcc_xfer){.server = (uint32_t)server, .req = &req, .on_resp = stats_resp,
                            .arg = &t};
    kcc_run(&kc->pool, &xp, 1, 0, kcc_now_ms() + (uint64_t)kc->opt.timeout_ms, "stats");
    return t.x.rc;
}

/* The Health transfer. */
struct health_xfer {
    struct kcc_xfer x;
    int *state;
    char *reason;
    size_t len;
};

static int health_resp(struct kcc_xfer *x, Kvcache__Response *resp, uint64_t data_len,
                       struct iovec **iov, int *niov)
{
    struct health_xfer *t = x->arg;
    (void)iov;
    (void)niov;
    if (resp->code == KVCACHE__CODE__SHUTTING_DOWN) {
        *t->state = KVCACHE_HEALTH_DOWN;
        return 0;
    }
    if (resp->code != KVCACHE__CODE__OK)
        return KVCACHE_ESERVER;
    if (resp->result_case != KVCACHE__RESPONSE__RESULT_HEALTH || data_len)
        return KVCACHE_EPROTO;
    switch (resp->health->state) {
    case KVCACHE__HEALTH_RESPONSE__STATE__OK: *t->state = KVCACHE_HEALTH_OK; break;
    case KVCACHE__HEALTH_RESPONSE__STATE__DEGRADED: *t->state = KVCACHE_HEALTH_DEGRADED; break;
    default: *t->state = KVCACHE_HEALTH_DOWN; break;
    }
    if (t->reason && t->len)
        snprintf(t->reason, t->len, "%s", resp->health->reason ? resp->health->reason : "");
    return 0;
}

int kvcache_health(kvcache_t *kc, int server, int *state, char *reason, size_t len)
{
    Kvcache__Request req = KVCACHE__REQUEST__INIT;
    Kvcache__HealthRequest hr = KVCACHE__HEALTH_REQUEST__INIT;
    struct health_xfer t = {.state = state, .reason = reason, .len = len};
    struct kcc_xfer *xp = &t.x;

    if (kc == NULL || state == NULL || server < 0 || (uint32_t)server >= kc->nservers)
        return KVCACHE_EINVAL;
    *state = KVCACHE_HEALTH_DOWN;
    if (reason && len)
        reason[0] = '\0';
    kc->pool.err[0] = '\0';
    req.op_case = KVCACHE__REQUEST__OP_HEALTH;
    req.health = &hr;
    t.x = (struct kcc_xfer){.server = (uint32_t)server, .req = &req, .on_resp = health_resp,
                            .arg = &t};
    kcc_run(&kc->pool, &xp, 1, 0, kcc_now_ms() + (uint64_t)kc->opt.timeout_ms, "health");
    if (t.x.rc)
        *state = KVCACHE_HEALTH_DOWN;
    return t.x.rc;
}
