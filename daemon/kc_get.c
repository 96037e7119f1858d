/*
 * kc_get.c - Get and GetPrefix (kc_get.h): submitted to the store,
 * answered from get_done, from the store's callback.
 */
#include "daemon/kc_get.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kc_budget.h"
#include "daemon/kc_conn.h"
#include "daemon/kc_daemon.h"
#include "daemon/kc_dispatch.h"
#include "daemon/kc_lease.h"
#include "daemon/kc_log.h"
#include "daemon/kc_reply.h"
#include "daemon/kc_shm.h"
#include "kc_frame.h"

/* The release function of an answer that sends a get's blocks. */
static void get_rel(struct server *s, void *g)
{
    get_ctx_release(s, g);
}

/* The store finished a get batch: answer with iovecs into its memory. */
static void get_done(struct store_get *g, void *arg)
{
    struct get_ctx *x = arg;
    struct conn *c = x->c;
    struct server *s = c->srv;
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__GetPrefixResponse pr = KVCACHE__GET_PREFIX_RESPONSE__INIT;
    Kvcache__GetResponse gr = KVCACHE__GET_RESPONSE__INIT;
    uint64_t now = loop_now_ns(), data_len = 0;
    size_t n = x->n, niov = 0, nret, nhit = 0;
    struct iovec *iov = NULL;
    uint32_t *lens = NULL, *pos = NULL;
    uint64_t *offs = NULL, leased = 0;
    Kvcache__Code *st = NULL;

    c->gets_inflight--;
    if (!s->in_get_submit)
        stats_device_read(&s->stats, now - x->t0);
    if (c->closed) {
        get_ctx_release(s, x);
        return;
    }
    if (c->gets_inflight == CONN_GETS_MAX)
        conn_kick(c);
    hist_add(&s->stats.op[x->op], now - x->t0);
    r.id = x->id;
    if (g->status < 0) {
        s->stats.op_errors[x->op]++;
        r.code = code_from_kc(g->status);
        r.message = (char *)kc_strerror(g->status);
        rpc_send(c, &r, NULL, 0, 0, NULL, NULL);
        get_ctx_release(s, x);
        return;
    }
    nret = n;
    if (x->op == OPK_GET_PREFIX) {
        /* distinct keys are in first-seen order: the prefix of the keys
         * asked ends where the first missing distinct key first appears */
        nret = g->found;
        if (x->uniq)
            for (nret = 0; nret < n && x->uniq[nret] < g->found; nret++)
                ;
    }
    iov = malloc((n + 1) * sizeof(*iov));
    lens = calloc(n + 1, sizeof(*lens));
    pos = calloc(n + 1, sizeof(*pos));
    st = calloc(n + 1, sizeof(*st));
    offs = x->by_ref ? calloc(n + 1, sizeof(*offs)) : NULL;
    if (!iov || !lens || !pos || !st || (x->by_ref && !offs)) {
        r.code = KVCACHE__CODE__NO_MEMORY;
        r.message = "out of memory";
        rpc_send(c, &r, NULL, 0, 0, NULL, NULL);
        get_ctx_release(s, x);
        goto out;
    }
    for (size_t i = 0; i < nret; i++) {
        const struct store_get_item *it =
            &g->items[x->uniq ? x->uniq[i] : i];
        bool hit = it->status == KC_OK;

        st[i] = (Kvcache__Code)code_from_kc(it->status);
        lens[i] = hit ? it->len : 0;
        pos[i] = hit ? it->chain_pos : 0;
        if (hit && x->by_ref) {
            offs[i] = shm_region_offset(s->shm, it->data, it->len);
            if (offs[i] != SHM_INLINE) {
                leased += it->len;
                nhit++;
                continue;
            }
            s->stats.ref_inline_blocks++;
        }
        if (hit) {
            iov[niov].iov_base = (void *)it->data;
            iov[niov].iov_len = it->len;
            data_len += it->len;
            niov++;
            nhit++;
        }
    }
    s->stats.miss_bytes += (uint64_t)(n - nhit) * x->block_bytes;
    if (leased && !lease_fits(c, leased)) {
        s->stats.limit_errors++;
        s->stats.op_errors[x->op]++;
        r.code = KVCACHE__CODE__LIMIT;
        r.message = "over the leased bytes or leases of a connection "
                    "(--lease-max): release references first";
        rpc_send(c, &r, NULL, 0, 0, NULL, NULL);
        get_ctx_release(s, x);
        goto out;
    }
    if (leased) {
        lease_add(c, x, leased);
        if (x->by_ref) {
            if (x->op == OPK_GET_PREFIX) {
                pr.lease = x->lease;
                pr.lease_deadline_ns = x->lease_deadline;
            } else {
                gr.lease = x->lease;
                gr.lease_deadline_ns = x->lease_deadline;
            }
        }
    }
    if (x->op == OPK_GET_PREFIX) {
        pr.found = (uint32_t)nret;
        pr.n_lengths = pr.n_chain_pos = nret;
        pr.lengths = lens;
        pr.chain_pos = pos;
        pr.n_offsets = x->by_ref ? nret : 0;
        pr.offsets = offs;
        r.result_case = KVCACHE__RESPONSE__RESULT_GET_PREFIX;
        r.get_prefix = &pr;
    } else {
        gr.n_status = gr.n_lengths = gr.n_chain_pos = n;
        gr.status = st;
        gr.lengths = lens;
        gr.chain_pos = pos;
        gr.n_offsets = x->by_ref ? n : 0;
        gr.offsets = offs;
        r.result_case = KVCACHE__RESPONSE__RESULT_GET;
        r.get = &gr;
    }
    /* the response holds x only while it sends bytes of x's memory; the
     * lease (if any) holds it on its own */
    if (niov == 0 && x->lease) {
        rpc_send(c, &r, NULL, 0, 0, NULL, NULL);
        get_ctx_release(s, x);
    } else {
        rpc_send(c, &r, iov, (int)niov, data_len, get_rel, x);
    }
out:
    free(offs);
    free(iov);
    free(lens);
    free(pos);
    free(st);
}

void get_ctx_release(struct server *s, struct get_ctx *g)
{
    assert(g->holds > (g->lease != 0));   /* a live lease keeps its hold */
    if (--g->holds > 0)
        return;
    store_get_release(s->st, &g->g);
    budget_charge(g->c, -(int64_t)g->charged);
    free(g->uniq);
    free(g);
}

/*
 * Merge duplicate keys of a get: x->items[0..n) become the distinct keys in
 * first-seen order, x->uniq[i] the distinct entry of key i (left NULL when
 * every key is distinct). Each block is then read and held once, however
 * often a batch names it. Returns the distinct count, or 0 (no memory).
 */
static size_t get_dedup(struct get_ctx *x, size_t n)
{
    size_t cap = 16, nu = 0;
    uint32_t *slot;

    while (cap < 2 * n)
        cap *= 2;
    slot = malloc(cap * sizeof(*slot));
    x->uniq = malloc((n + 1) * sizeof(*x->uniq));
    if (slot == NULL || x->uniq == NULL) {
        free(slot);
        return 0;
    }
    memset(slot, 0xff, cap * sizeof(*slot));
    for (size_t i = 0; i < n; i++) {
        const struct kc_key *k = &x->items[i].key;
        size_t h = (size_t)(k->lo ^ (k->hi * 0x9E3779B97F4A7C15ull)) & (cap - 1);

        while (slot[h] != UINT32_MAX &&
               (x->items[slot[h]].key.lo != k->lo ||
                x->items[slot[h]].key.hi != k->hi))
            h = (h + 1) & (cap - 1);
        if (slot[h] == UINT32_MAX) {
            slot[h] = (uint32_t)nu;
            x->items[nu].key = *k;
            nu++;
        }
        x->uniq[i] = slot[h];
    }
    free(slot);
    if (nu == n) {
        free(x->uniq);
        x->uniq = NULL;
    }
    return nu;
}

/* Get and GetPrefix: submit to the store, answer from get_done. */
static int do_get(struct conn *c, Kvcache__Request *q, uint64_t t0, int op)
{
    struct server *s = c->srv;
    uint64_t ns = op == OPK_GET ? q->get->ns : q->get_prefix->ns;
    ProtobufCBinaryData *keys = op == OPK_GET ? &q->get->keys
                                              : &q->get_prefix->keys;
    bool by_ref = op == OPK_GET ? q->get->by_ref : q->get_prefix->by_ref;
    struct store_ns_info info;
    struct get_ctx *x;
    size_t n, nu;
    uint64_t need;
    int rc;

    if (rpc_keys_check(c, op, q->id, t0, keys, &n) < 0 ||
        rpc_ns_check(c, op, q->id, t0, ns, &info) < 0)
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    if (by_ref && c->shm == NULL)
        return rpc_reply_error(c, op, q->id, t0, KVCACHE__CODE__BAD_REQUEST,
                           "by_ref needs Attach on this connection first");
    if (by_ref && !lease_fits(c, (uint64_t)n * info.block_bytes))
        return rpc_reply_error(c, op, q->id, t0, KVCACHE__CODE__LIMIT,
                           "over the leased bytes or leases of a connection "
                           "(--lease-max): release references first");
    x = calloc(1, sizeof(*x) + (n + 1) * sizeof(x->items[0]));
    if (x == NULL)
        return rpc_reply_error(c, op, q->id, t0, KVCACHE__CODE__NO_MEMORY,
                           "out of memory");
    x->c = c;
    x->id = q->id;
    x->op = op;
    x->t0 = t0;
    x->block_bytes = info.block_bytes;
    x->n = n;
    x->by_ref = by_ref;
    x->holds = 1;
    for (size_t i = 0; i < n; i++)
        kc_key_unpack(keys->data + i * KC_KEY_WIRE_LEN, &x->items[i].key.lo,
                      &x->items[i].key.hi);
    nu = n ? get_dedup(x, n) : 0;
    if (n && nu == 0) {
        free(x);
        return rpc_reply_error(c, op, q->id, t0, KVCACHE__CODE__NO_MEMORY,
                           "out of memory");
    }
    /* read buffers this get will hold until its answer is sent */
    need = budget_get_bytes(s->st, ns, x->items, nu, op == OPK_GET_PREFIX);
    switch (budget_admit(c, need)) {
    case BUDGET_OK:
        break;
    case BUDGET_WAIT:
        free(x->uniq);
        free(x);
        c->parked = q;           /* dispatched again once there is room */
        return conn_budget_wait(c);
    case BUDGET_NEVER: {
        char msg[160];

        free(x->uniq);
        free(x);
        snprintf(msg, sizeof(msg), "get needs %llu bytes of read buffers, "
                 "over --conn-inflight or --read-inflight",
                 (unsigned long long)need);
        return rpc_reply_error(c, op, q->id, t0, KVCACHE__CODE__LIMIT, msg);
    }
    }
    budget_charge(c, (int64_t)need);
    x->charged = need;
    x->g.ns = ns;
    x->g.items = x->items;
    x->g.n = nu;
    x->g.prefix = op == OPK_GET_PREFIX;
    x->g.done = get_done;
    x->g.arg = x;
    c->gets_inflight++;
    /* done() may run (and x be sent and freed) inside the call: x is not
     * touched after it unless it failed, in which case done() never runs */
    s->in_get_submit = true;
    rc = store_get_submit(s->st, &x->g);
    s->in_get_submit = false;
    if (rc < 0) {
        c->gets_inflight--;
        budget_charge(c, -(int64_t)x->charged);
        free(x->uniq);
        free(x);
        return rpc_reply_error(c, op, q->id, t0, code_from_kc(rc), kc_strerror(rc));
    }
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

int op_get(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    return do_get(c, q, t0, OPK_GET);
}

int op_get_prefix(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    return do_get(c, q, t0, OPK_GET_PREFIX);
}

/* Match: leading keys present, from the index alone. */
