/*
 * kc_dispatch.c - the synchronous operations: decoded request in, store
 * call, response out (OpenNamespace, Match, Exists, Delete, DropNamespace,
 * Health, ListSlabs, Audit, DescribeKey, Auth). Get and GetPrefix are in kc_get.c, Put in
 * kc_put.c; the table that calls them is kc_rpc.c's.
 */
#include "daemon/kc_dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_daemon.h"
#include "daemon/kc_info.h"
#include "daemon/kc_log.h"
#include "daemon/kc_reply.h"
#include "kc_frame.h"
#include "kc_nsid.h"

/* Most slabs one ListSlabs answers. */
#define LIST_SLABS_MAX 4096

int op_open_namespace(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__NamespaceDesc *d = q->open_namespace->desc;
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__OpenNamespaceResponse or = KVCACHE__OPEN_NAMESPACE_RESPONSE__INIT;
    uint8_t canon[KC_NS_CANON_MAX];
    struct kc_ns_desc nd;
    int len, rc;

    if (d == NULL)
        return rpc_reply_error(c, OPK_OPEN_NAMESPACE, q->id, t0,
                           KVCACHE__CODE__BAD_REQUEST, "no descriptor");
    nd = (struct kc_ns_desc){ d->model, (uint32_t)strlen(d->model),
        d->layer_begin, d->layer_end, d->tokens_per_block, d->dtype,
        (uint32_t)strlen(d->dtype), d->kv_heads, d->head_dim, d->block_bytes };
    len = kc_ns_canon(&nd, canon, sizeof(canon));
    if (len < 0)
        return rpc_reply_error(c, OPK_OPEN_NAMESPACE, q->id, t0,
                           KVCACHE__CODE__BAD_REQUEST,
                           "model must be 1..256 bytes, dtype 0..32");
    or.ns = kc_ns_id_of(canon, (size_t)len);
    {
        struct store_ns_info in;

        if (store_ns_get(c->srv->st, or.ns, &in) != 0 &&
            !auth_ns_create(&c->srv->auth, (enum auth_cred)c->cred))
            return rpc_reply_error(c, OPK_OPEN_NAMESPACE, q->id, t0,
                               KVCACHE__CODE__LIMIT, "namespace quota of "
                               "this credential reached (--ns-quota)");
    }
    rc = store_ns_open(c->srv->st, or.ns, d->block_bytes, canon, (uint32_t)len);
    if (rc != 0)
        return rpc_reply_error(c, OPK_OPEN_NAMESPACE, q->id, t0,
                           code_from_kc(rc), kc_strerror(rc));
    log_debug("namespace %016llx opened: %s, %u bytes per block",
              (unsigned long long)or.ns, d->model, d->block_bytes);
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_OPEN_NAMESPACE;
    r.open_namespace = &or;
    return rpc_reply(c, OPK_OPEN_NAMESPACE, t0, &r);
}

/* Match: leading keys present, from the index alone; with where, which of
 * them have a DRAM copy (one byte per matched key). */
int op_match(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__MatchResponse mr = KVCACHE__MATCH_RESPONSE__INIT;
    struct store_ns_info info;
    struct kc_key *keys;
    uint8_t *where;
    size_t n;
    int ret;

    if (rpc_keys_check(c, OPK_MATCH, q->id, t0, &q->match->keys, &n) < 0 ||
        rpc_ns_check(c, OPK_MATCH, q->id, t0, q->match->ns, &info) < 0)
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    keys = malloc((n + 1) * sizeof(*keys));
    where = q->match->where ? malloc(n + 1) : NULL;
    if (keys == NULL || (q->match->where && where == NULL)) {
        free(keys);
        free(where);
        return rpc_reply_error(c, OPK_MATCH, q->id, t0,
                               KVCACHE__CODE__NO_MEMORY, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        kc_key_unpack(q->match->keys.data + i * KC_KEY_WIRE_LEN, &keys[i].lo,
                      &keys[i].hi);
    mr.matched = (uint32_t)store_match_where(c->srv->st, q->match->ns, keys, n,
                                             where);
    free(keys);
    if (where != NULL) {
        mr.where.data = where;
        mr.where.len = mr.matched;
        while (mr.dram_leading < mr.matched &&
               where[mr.dram_leading] == STORE_WHERE_DRAM)
            mr.dram_leading++;
    }
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_MATCH;
    r.match = &mr;
    ret = rpc_reply(c, OPK_MATCH, t0, &r);
    free(where);
    return ret;
}

/* Exists: whether each key is held, from the index (no I/O, no data). */
int op_exists(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__ExistsResponse er = KVCACHE__EXISTS_RESPONSE__INIT;
    const Kvcache__ExistsRequest *e = q->exists;
    struct store_ns_info info;
    protobuf_c_boolean *present;
    size_t n;
    int ret;

    if (rpc_keys_check(c, OPK_EXISTS, q->id, t0, &e->keys, &n) < 0 ||
        rpc_ns_check(c, OPK_EXISTS, q->id, t0, e->ns, &info) < 0)
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    present = malloc((n + 1) * sizeof(*present));
    if (present == NULL)
        return rpc_reply_error(c, OPK_EXISTS, q->id, t0,
                               KVCACHE__CODE__NO_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++) {
        struct kc_key k;

        kc_key_unpack(e->keys.data + i * KC_KEY_WIRE_LEN, &k.lo, &k.hi);
        present[i] = store_match(c->srv->st, e->ns, &k, 1) == 1;
    }
    er.n_present = n;
    er.present = present;
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_EXISTS;
    r.exists = &er;
    ret = rpc_reply(c, OPK_EXISTS, t0, &r);
    free(present);
    return ret;
}

/* Delete: per-key OK or MISS. */
int op_delete(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__DeleteResponse dr = KVCACHE__DELETE_RESPONSE__INIT;
    struct store_ns_info info;
    Kvcache__Code *st;
    size_t n;
    int ret;

    if (rpc_keys_check(c, OPK_DELETE, q->id, t0, &q->delete_->keys, &n) < 0 ||
        rpc_ns_check(c, OPK_DELETE, q->id, t0, q->delete_->ns, &info) < 0)
        return c->closed ? STEP_CLOSED : STEP_PROGRESS;
    st = malloc((n + 1) * sizeof(*st));
    if (st == NULL)
        return rpc_reply_error(c, OPK_DELETE, q->id, t0, KVCACHE__CODE__NO_MEMORY,
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
    ret = rpc_reply(c, OPK_DELETE, t0, &r);
    free(st);
    return ret;
}

/* DropNamespace: the namespace and its blocks (persisted). */
int op_drop_namespace(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__DropNamespaceResponse dr = KVCACHE__DROP_NAMESPACE_RESPONSE__INIT;
    int rc = store_ns_drop(c->srv->st, q->drop_namespace->ns);

    if (rc != 0)
        return rpc_reply_error(c, OPK_DROP_NAMESPACE, q->id, t0, code_from_kc(rc),
                           kc_strerror(rc));
    log_info("namespace %016llx dropped",
             (unsigned long long)q->drop_namespace->ns);
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_DROP_NAMESPACE;
    r.drop_namespace = &dr;
    return rpc_reply(c, OPK_DROP_NAMESPACE, t0, &r);
}

/* Health: the verdict of kc_stats over the last window. */
int op_health(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__HealthResponse hr = KVCACHE__HEALTH_RESPONSE__INIT;
    struct health h;

    info_health(c->srv, &h);
    hr.state = (Kvcache__HealthResponse__State)h.state;
    hr.reason = h.reason;
    hr.device_read_p99_ms = h.device_read_p99_ms;
    hr.io_errors_window = h.io_errors_window;
    hr.uptime_s = (loop_now_ns() - c->srv->stats.start_ns) / 1000000000ull;
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_HEALTH;
    r.health = &hr;
    return rpc_reply(c, OPK_HEALTH, t0, &r);
}

/* Audit (admin): the store's check that index and slabs agree, for
 * `kvcache scrub`. It walks the whole index: the loop waits for it. */
int op_audit(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__AuditResponse ar = KVCACHE__AUDIT_RESPONSE__INIT;
    struct store_stats ss;
    char first[256] = "";
    struct timespec a, b;

    clock_gettime(CLOCK_MONOTONIC, &a);
    int n = store_audit(c->srv->st, first, sizeof(first));
    clock_gettime(CLOCK_MONOTONIC, &b);
    store_stats(c->srv->st, &ss);
    if (n > 0)
        log_warn("audit: %d disagreements between index and slabs; first: %s", n, first);
    ar.disagreements = n > 0 ? (uint32_t)n : 0;
    ar.first = first;
    ar.store_id = ss.store_id;
    ar.micros = (uint64_t)((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000);
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_AUDIT;
    r.audit = &ar;
    return rpc_reply(c, OPK_AUDIT, t0, &r);
}

/* ListSlabs: a page of slab states for the inspection CLI. */
int op_list_slabs(struct conn *c, Kvcache__Request *q, uint64_t t0)
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
        return rpc_reply_error(c, OPK_LIST_SLABS, q->id, t0,
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
        si[i].nitems = in.nitems;
        si[i].nlive = in.nlive;
        si[i].seq = in.seq;
        si[i].seq_hi = in.seq_hi;
        si[i].used_bytes = in.used;
        si[i].live_bytes = in.live_bytes;
        si[i].in_memory = in.in_memory;
    }
    lr.total = total;
    struct store_stats ss;
    store_stats(c->srv->st, &ss);
    lr.slab_size = (uint32_t)ss.slab_size;
    lr.n_slabs = n;
    lr.slabs = sp;
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_LIST_SLABS;
    r.list_slabs = &lr;
    ret = rpc_reply(c, OPK_LIST_SLABS, t0, &r);
    free(si);
    free(sp);
    return ret;
}

/* DescribeKey: where a key lives, for the inspection CLI. */
int op_describe_key(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__DescribeKeyResponse dr = KVCACHE__DESCRIBE_KEY_RESPONSE__INIT;
    struct store_item_info in;
    struct kc_key k;

    if (q->describe_key->key.len != KC_KEY_WIRE_LEN)
        return rpc_reply_error(c, OPK_DESCRIBE_KEY, q->id, t0,
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
    return rpc_reply(c, OPK_DESCRIBE_KEY, t0, &r);
}

/* Auth: the token of --token-file or --admin-token-file. A wrong one is
 * answered DENIED and the connection closed. */
int op_auth(struct conn *c, Kvcache__Request *q, uint64_t t0)
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
        return rpc_reply_error(c, OPK_AUTH, q->id, t0, KVCACHE__CODE__DENIED,
                           "wrong token");
    }
    c->cred = cred;
    ar.admin = auth_admin(&s->auth, cred);
    r.id = q->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_AUTH;
    r.auth = &ar;
    return rpc_reply(c, OPK_AUTH, t0, &r);
}

