/*
 * kc_dispatch.c - one function per operation: decoded request in, store
 * call, response out. Get and GetPrefix finish in get_done(), from the
 * store's callback.
 */
#include "daemon/kc_dispatch.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kc_budget.h"
#include "daemon/kc_conn.h"
#include "daemon/kc_lease.h"
#include "daemon/kc_log.h"
#include "daemon/kc_server.h"
#include "daemon/kc_shm.h"
#include "kc_frame.h"
#include "kc_nsid.h"
#include "kc_pbscan.h"

/* Most slabs one ListSlabs answers. */
#define LIST_SLABS_MAX 4096

int code_from_kc(int rc)
{
    switch (rc) {
    case KC_OK: return KVCACHE__CODE__OK;
    case KC_EXISTS: return KVCACHE__CODE__EXISTS;
    case KC_SKIPPED: return KVCACHE__CODE__OK;   /* accepted, not admitted */
    case KC_MISS: return KVCACHE__CODE__MISS;
    case KC_EINVAL: return KVCACHE__CODE__BAD_REQUEST;
    case KC_ENONS: return KVCACHE__CODE__UNKNOWN_NAMESPACE;
    case KC_EBADSIZE: return KVCACHE__CODE__BAD_SIZE;
    case KC_ETOOBIG: return KVCACHE__CODE__TOO_BIG;
    case KC_ENOSPC: return KVCACHE__CODE__NO_SPACE;
    case KC_EBUSY: return KVCACHE__CODE__BUSY;
    case KC_EIO: return KVCACHE__CODE__IO_ERROR;
    case KC_ECSUM: return KVCACHE__CODE__CHECKSUM;
    case KC_ENOMEM: return KVCACHE__CODE__NO_MEMORY;
    case KC_EFORMAT: return KVCACHE__CODE__FORMAT;
    case KC_ENSFULL: return KVCACHE__CODE__NAMESPACE_FULL;
    default:
        return rc < 0 && rc > -1000 ? KVCACHE__CODE__IO_ERROR
                                    : KVCACHE__CODE__INTERNAL;
    }
}

bool dispatch_strings_ok(const Kvcache__Request *q, const uint8_t *pb,
                         size_t len)
{
    /* Request.open_namespace(10) -> desc(1) -> model(1) / dtype(5) */
    static const uint32_t model[] = { 10, 1, 1 }, dtype[] = { 10, 1, 5 };

    if (q->op_case != KVCACHE__REQUEST__OP_OPEN_NAMESPACE)
        return true;
    return kc_pb_path_has_nul(pb, len, model, 3) == 0 &&
           kc_pb_path_has_nul(pb, len, dtype, 3) == 0;
}

/* Queue r for request op, recording its latency and error. */
int dispatch_reply(struct conn *c, int op, uint64_t t0, Kvcache__Response *r)
{
    struct server *s = c->srv;

    hist_add(&s->stats.op[op], loop_now_ns() - t0);
    if (r->code != KVCACHE__CODE__OK)
        s->stats.op_errors[op]++;
    conn_send(c, r, NULL, 0, 0, NULL);
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

/* Answer an error for op (message formatted by the caller). */
static int reply_error(struct conn *c, int op, uint64_t id, uint64_t t0,
                       int code, const char *msg)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;

    r.id = id;
    r.code = code;
    r.message = (char *)msg;
    if (code == KVCACHE__CODE__LIMIT)
        c->srv->stats.limit_errors++;
    return dispatch_reply(c, op, t0, &r);
}

/* Check a `bytes keys` list: a multiple of 16, at most max_batch keys.
 * Answers the error itself and returns -1 when it is not. */
static int keys_check(struct conn *c, int op, uint64_t id, uint64_t t0,
                      const ProtobufCBinaryData *b, size_t *n)
{
    unsigned max = c->srv->opts->max_batch;
    char msg[128];

    if (b->len % KC_KEY_WIRE_LEN != 0) {
        snprintf(msg, sizeof(msg), "keys field of %zu bytes is not a "
                 "multiple of 16", b->len);
        reply_error(c, op, id, t0, KVCACHE__CODE__BAD_REQUEST, msg);
        return -1;
    }
    *n = b->len / KC_KEY_WIRE_LEN;
    if (*n > max) {
        snprintf(msg, sizeof(msg), "%zu keys over the limit of %u", *n, max);
        reply_error(c, op, id, t0, KVCACHE__CODE__LIMIT, msg);
        return -1;
    }
    return 0;
}

/* Look a namespace up; answers UNKNOWN_NAMESPACE and returns -1 if absent. */
static int ns_check(struct conn *c, int op, uint64_t id, uint64_t t0,
                    uint64_t ns, struct store_ns_info *info)
{
    char msg[64];

    if (store_ns_get(c->srv->st, ns, info) == 0)
        return 0;
    snprintf(msg, sizeof(msg), "unknown namespace %016llx",
             (unsigned long long)ns);
    reply_error(c, op, id, t0, KVCACHE__CODE__UNKNOWN_NAMESPACE, msg);
    return -1;
}

/* OpenNamespace: canonical descriptor -> id, persisted by the store. */
static int do_open_namespace(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__NamespaceDesc *d = q->open_namespace->desc;
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__OpenNamespaceResponse or = KVCACHE__OPEN_NAMESPACE_RESPONSE__INIT;
    uint8_t canon[KC_NS_CANON_MAX];
    struct kc_ns_desc nd;
    int len, rc;

    if (d == NULL)
        return reply_error(c, OPK_OPEN_NAMESPACE, q->id, t0,
                           KVCACHE__CODE__BAD_REQUEST, "no descriptor");
    nd = (struct kc_ns_desc){ d->model, (uint32_t)strlen(d->model),
        d->layer_begin, d->layer_end, d->tokens_per_block, d->dtype,
        (uint32_t)strlen(d->dtype), d->kv_heads, d->head_dim, d->block_bytes };
    len = kc_ns_canon(&nd, canon, sizeof(canon));
    if (len < 0)
        return reply_error(c, OPK_OPEN_NAMESPACE, q->id, t0,
                           KVCACHE__CODE__BAD_REQUEST,
                           "model must be 1..256 bytes, dtype 0..32");
    or.ns = kc_ns_id_of(canon, (size_t)len);
    {
        struct store_ns_info in;

        if (store_ns_get(c->srv->st, or.ns, &in) != 0 &&
            !auth_ns_create(&c->srv->auth, (enum auth_cred)c->cred))
            return reply_error(c, OPK_OPEN_NAMESPACE, q->id, t0,
                               KVCACHE__CODE__LIMIT, "namespace quota of "
                               "this credential reached (--ns-quota)");
    }
    rc = store_ns_open(c->srv->st, or.ns, d->block_bytes, canon, (uint32_t)len);
    if (rc != 0)
        return reply_error(c, OPK_OPEN_NAMESPACE, q->id, t0,
                           code_from_kc(rc), kc_strerror(rc));
    log_debug("namespace %016llx opened: %s, %u bytes per block",
              (unsigned long long)or.ns, d->model, d->block_bytes);
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_OPEN_NAMESPACE;
    r.open_namespace = &or;
    return dispatch_reply(c, OPK_OPEN_NAMESPACE, t0, &r);
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
        server_kick(s, c);
    hist_add(&s->stats.op[x->op], now - x->t0);
    r.id = x->id;
    if (g->status < 0) {
        s->stats.op_errors[x->op]++;
        r.code = code_from_kc(g->status);
        r.message = (char *)kc_strerror(g->status);
        conn_send(c, &r, NULL, 0, 0, NULL);
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
        conn_send(c, &r, NULL, 0, 0, NULL);
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
        conn_send(c, &r, NULL, 0, 0, NULL);
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
        conn_send(c, &r, NULL, 0, 0, NULL);
        get_ctx_release(s, x);
    } else {
        conn_send(c, &r, iov, (int)niov, data_len, x);
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

    if (keys_check(c, op, q->id, t0, keys, &n) < 0 ||
        ns_check(c, op, q->id, t0, ns, &info) < 0)
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    if (by_ref && c->shm == NULL)
        return reply_error(c, op, q->id, t0, KVCACHE__CODE__BAD_REQUEST,
                           "by_ref needs Attach on this connection first");
    if (by_ref && !lease_fits(c, (uint64_t)n * info.block_bytes))
        return reply_error(c, op, q->id, t0, KVCACHE__CODE__LIMIT,
                           "over the leased bytes or leases of a connection "
                           "(--lease-max): release references first");
    x = calloc(1, sizeof(*x) + (n + 1) * sizeof(x->items[0]));
    if (x == NULL)
        return reply_error(c, op, q->id, t0, KVCACHE__CODE__NO_MEMORY,
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
        return reply_error(c, op, q->id, t0, KVCACHE__CODE__NO_MEMORY,
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
        return reply_error(c, op, q->id, t0, KVCACHE__CODE__LIMIT, msg);
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
        return reply_error(c, op, q->id, t0, code_from_kc(rc), kc_strerror(rc));
    }
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

/* Match: leading keys present, from the index alone; with where, which of
 * them have a DRAM copy (one byte per matched key). */
static int do_match(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__MatchResponse mr = KVCACHE__MATCH_RESPONSE__INIT;
    struct store_ns_info info;
    struct kc_key *keys;
    uint8_t *where;
    size_t n;

    if (keys_check(c, OPK_MATCH, q->id, t0, &q->match->keys, &n) < 0 ||
        ns_check(c, OPK_MATCH, q->id, t0, q->match->ns, &info) < 0)
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    keys = malloc((n + 1) * sizeof(*keys));
    where = q->match->where ? malloc(n + 1) : NULL;
    if (keys == NULL || (q->match->where && where == NULL)) {
        free(keys);
        free(where);
        return reply_error(c, OPK_MATCH, q->id, t0, KVCACHE__CODE__NO_MEMORY,
                           "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        kc_key_unpack(q->match->keys.data + i * KC_KEY_WIRE_LEN, &keys[i].lo,
                      &keys[i].hi);
    mr.matched = (uint32_t)store_match_where(c->srv->st, q->match->ns, keys, n, where);
    free(keys);
    if (where != NULL) {
        mr.where.data = where;
        mr.where.len = mr.matched;
        while (mr.dram_leading < mr.matched && where[mr.dram_leading] == STORE_WHERE_DRAM)
            mr.dram_leading++;
    }
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_MATCH;
    r.match = &mr;
    int rc = dispatch_reply(c, OPK_MATCH, t0, &r);
    free(where);
    return rc;
}

/* Delete: per-key OK or MISS. */
static int do_delete(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__DeleteResponse dr = KVCACHE__DELETE_RESPONSE__INIT;
    struct store_ns_info info;
    Kvcache__Code *st;
    size_t n;
    int ret;

    if (keys_check(c, OPK_DELETE, q->id, t0, &q->delete_->keys, &n) < 0 ||
        ns_check(c, OPK_DELETE, q->id, t0, q->delete_->ns, &info) < 0)
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    st = malloc((n + 1) * sizeof(*st));
    if (st == NULL)
        return reply_error(c, OPK_DELETE, q->id, t0, KVCACHE__CODE__NO_MEMORY,
                           "out of memory");
    for (size_t i = 0; i < n; i++) {
        struct kc_key k;

        kc_key_unpack(q->delete_->keys.data + i * KC_KEY_WIRE_LEN, &k.lo, &k.hi);
        st[i] = (Kvcache__Code)code_from_kc(store_delete(c->srv->st,
                                                         q->delete_->ns, &k));
    }
    dr.n_status = n;
    dr.status = st;
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_DELETE;
    r.delete_ = &dr;
    ret = dispatch_reply(c, OPK_DELETE, t0, &r);
    free(st);
    return ret;
}

/* DropNamespace: the namespace and its blocks (persisted). */
static int do_drop_namespace(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__DropNamespaceResponse dr = KVCACHE__DROP_NAMESPACE_RESPONSE__INIT;
    int rc = store_ns_drop(c->srv->st, q->drop_namespace->ns);

    if (rc != 0)
        return reply_error(c, OPK_DROP_NAMESPACE, q->id, t0, code_from_kc(rc),
                           kc_strerror(rc));
    log_info("namespace %016llx dropped",
             (unsigned long long)q->drop_namespace->ns);
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_DROP_NAMESPACE;
    r.drop_namespace = &dr;
    return dispatch_reply(c, OPK_DROP_NAMESPACE, t0, &r);
}

/* Health: the verdict of kc_stats over the last window. */
static int do_health(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__HealthResponse hr = KVCACHE__HEALTH_RESPONSE__INIT;
    struct health h;

    server_health(c->srv, &h);
    hr.state = (Kvcache__HealthResponse__State)h.state;
    hr.reason = h.reason;
    hr.device_read_p99_ms = h.device_read_p99_ms;
    hr.io_errors_window = h.io_errors_window;
    hr.uptime_s = (loop_now_ns() - c->srv->stats.start_ns) / 1000000000ull;
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_HEALTH;
    r.health = &hr;
    return dispatch_reply(c, OPK_HEALTH, t0, &r);
}

/* ListSlabs: a page of slab states for the inspection CLI. */
static int do_list_slabs(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__ListSlabsResponse lr = KVCACHE__LIST_SLABS_RESPONSE__INIT;
    uint32_t total = store_nslabs(c->srv->st), start = q->list_slabs->start;
    uint32_t limit = q->list_slabs->limit, n;
    Kvcache__SlabInfo *si, **sp;
    int ret;

    if (limit == 0 || limit > LIST_SLABS_MAX)
        limit = LIST_SLABS_MAX;
    n = start >= total ? 0 : total - start;
    if (n > limit)
        n = limit;
    si = calloc(n + 1, sizeof(*si));
    sp = calloc(n + 1, sizeof(*sp));
    if (si == NULL || sp == NULL) {
        free(si);
        free(sp);
        return reply_error(c, OPK_LIST_SLABS, q->id, t0,
                           KVCACHE__CODE__NO_MEMORY, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        struct store_slab_info in;

        kvcache__slab_info__init(&si[i]);
        sp[i] = &si[i];
        if (store_slab_get(c->srv->st, start + i, &in) != 0)
            continue;
        si[i].id = in.id;
        si[i].state = (Kvcache__SlabInfo__State)in.state;
        si[i].slot_size = in.slot_size;
        si[i].nslots = in.nslots;
        si[i].nitems = in.nitems;
        si[i].nlive = in.nlive;
        si[i].seq = in.seq;
        si[i].in_memory = in.in_memory;
    }
    lr.total = total;
    lr.n_slabs = n;
    lr.slabs = sp;
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_LIST_SLABS;
    r.list_slabs = &lr;
    ret = dispatch_reply(c, OPK_LIST_SLABS, t0, &r);
    free(si);
    free(sp);
    return ret;
}

/* DescribeKey: where a key lives, for the inspection CLI. */
static int do_describe_key(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__DescribeKeyResponse dr = KVCACHE__DESCRIBE_KEY_RESPONSE__INIT;
    struct store_item_info in;
    struct kc_key k;

    if (q->describe_key->key.len != KC_KEY_WIRE_LEN)
        return reply_error(c, OPK_DESCRIBE_KEY, q->id, t0,
                           KVCACHE__CODE__BAD_REQUEST, "key is not 16 bytes");
    kc_key_unpack(q->describe_key->key.data, &k.lo, &k.hi);
    if (store_describe(c->srv->st, q->describe_key->ns, &k, &in) == 0) {
        dr.found = true;
        dr.slab = in.slab;
        dr.slot = in.slot;
        dr.length = in.len;
        dr.chain_pos = in.chain_pos;
        dr.hits = in.hits;
        dr.in_memory = in.in_memory;
    }
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_DESCRIBE_KEY;
    r.describe_key = &dr;
    return dispatch_reply(c, OPK_DESCRIBE_KEY, t0, &r);
}

/* The request's operation as an op_kind, or -1. */
static int op_of(const Kvcache__Request *q)
{
    switch (q->op_case) {
    case KVCACHE__REQUEST__OP_OPEN_NAMESPACE: return OPK_OPEN_NAMESPACE;
    case KVCACHE__REQUEST__OP_PUT: return OPK_PUT;
    case KVCACHE__REQUEST__OP_GET_PREFIX: return OPK_GET_PREFIX;
    case KVCACHE__REQUEST__OP_GET: return OPK_GET;
    case KVCACHE__REQUEST__OP_MATCH: return OPK_MATCH;
    case KVCACHE__REQUEST__OP_DELETE: return OPK_DELETE;
    case KVCACHE__REQUEST__OP_DROP_NAMESPACE: return OPK_DROP_NAMESPACE;
    case KVCACHE__REQUEST__OP_STATS: return OPK_STATS;
    case KVCACHE__REQUEST__OP_HEALTH: return OPK_HEALTH;
    case KVCACHE__REQUEST__OP_LIST_NAMESPACES: return OPK_LIST_NAMESPACES;
    case KVCACHE__REQUEST__OP_LIST_SLABS: return OPK_LIST_SLABS;
    case KVCACHE__REQUEST__OP_DESCRIBE_KEY: return OPK_DESCRIBE_KEY;
    case KVCACHE__REQUEST__OP_ATTACH: return OPK_ATTACH;
    case KVCACHE__REQUEST__OP_RELEASE: return OPK_RELEASE;
    case KVCACHE__REQUEST__OP_AUTH: return OPK_AUTH;
    default: return -1;
    }
}

/* Auth: the token of --token-file or --admin-token-file. A wrong one is
 * answered DENIED and the connection closed. */
static int do_auth(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__AuthResponse ar = KVCACHE__AUTH_RESPONSE__INIT;
    struct server *s = c->srv;
    enum auth_cred cred = auth_check(&s->auth, q->auth->token.data,
                                     q->auth->token.len);

    if (cred == CRED_NONE) {
        s->auth.failures++;
        log_warn("conn %llu (%s): Auth with a wrong token: closing",
                 (unsigned long long)c->id, c->peer);
        c->close_after_flush = true;
        return reply_error(c, OPK_AUTH, q->id, t0, KVCACHE__CODE__DENIED,
                           "wrong token");
    }
    c->cred = cred;
    ar.admin = auth_admin(&s->auth, cred);
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_AUTH;
    r.auth = &ar;
    return dispatch_reply(c, OPK_AUTH, t0, &r);
}

/* Is op allowed to c's credential? Answers DENIED (closing the connection
 * when it has not authenticated) and returns false when it is not. */
static bool dispatch_allowed(struct conn *c, Kvcache__Request *q, int op,
                             uint64_t t0)
{
    struct server *s = c->srv;

    if (c->cred == CRED_NONE && op != OPK_AUTH) {
        s->auth.failures++;
        log_info("conn %llu (%s): request before Auth: closing",
                 (unsigned long long)c->id, c->peer);
        c->close_after_flush = true;
        reply_error(c, op < 0 ? OPK_AUTH : op, q->id, t0,
                    KVCACHE__CODE__DENIED,
                    "authenticate first (Auth with the daemon's token)");
        return false;
    }
    if (op == OPK_DROP_NAMESPACE && !auth_admin(&s->auth, c->cred)) {
        reply_error(c, op, q->id, t0, KVCACHE__CODE__DENIED,
                    "DropNamespace needs the admin token");
        return false;
    }
    return true;
}

int dispatch_request(struct conn *c, Kvcache__Request *q, uint64_t data_len)
{
    uint64_t t0 = loop_now_ns();
    int op = op_of(q), ret;

    if (!dispatch_allowed(c, q, op, t0)) {
        conn_skip_data(c, data_len);
        kvcache__request__free_unpacked(q, NULL);
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    }
    if (op == OPK_PUT)
        return put_start(c, q, data_len);
    conn_skip_data(c, data_len);
    if (op < 0) {
        c->srv->stats.protocol_errors++;
        log_info("conn %llu (%s): request %llu has no known operation",
                 (unsigned long long)c->id, c->peer, (unsigned long long)q->id);
        conn_send_error(c, q->id, KVCACHE__CODE__UNSUPPORTED,
                        "no known operation in the request");
        ret = c->closed ? STEP_CLOSED : STEP_PROGRESS;
    } else if (data_len != 0) {
        ret = reply_error(c, op, q->id, t0, KVCACHE__CODE__BAD_REQUEST,
                          "this operation takes no data section");
    } else {
        switch (op) {
        case OPK_OPEN_NAMESPACE: ret = do_open_namespace(c, q, t0); break;
        case OPK_GET_PREFIX:
        case OPK_GET: ret = do_get(c, q, t0, op); break;
        case OPK_MATCH: ret = do_match(c, q, t0); break;
        case OPK_DELETE: ret = do_delete(c, q, t0); break;
        case OPK_DROP_NAMESPACE: ret = do_drop_namespace(c, q, t0); break;
        case OPK_STATS: ret = dispatch_stats(c, q, t0); break;
        case OPK_HEALTH: ret = do_health(c, q, t0); break;
        case OPK_LIST_NAMESPACES: ret = dispatch_list_namespaces(c, q, t0); break;
        case OPK_LIST_SLABS: ret = do_list_slabs(c, q, t0); break;
        case OPK_ATTACH: ret = shm_attach(c, q, t0); break;
        case OPK_RELEASE: ret = lease_release_op(c, q); break;
        case OPK_DESCRIBE_KEY: ret = do_describe_key(c, q, t0); break;
        case OPK_AUTH: ret = do_auth(c, q, t0); break;
        default: ret = STEP_PROGRESS; assert(0); break;
        }
    }
    if (c->parked == q)          /* kept for a retry */
        return ret;
    kvcache__request__free_unpacked(q, NULL);
    return ret;
}
