/*
 * kc_put.c - receiving a Put: each block is read from the socket straight
 * into a reserved slot of a memory slab (store_put_reserve), then committed.
 * A block that cannot be stored (present already, wrong size) is read into
 * nowhere and gets its per-item status; so does a block that would take
 * its namespace over --ns-max-bytes (LIMIT). KC_EBUSY (no memory slab free)
 * parks the connection until the server's before-sleep hook retries it.
 *
 * A staged Put (PutRequest.staging) has no data section: each block is
 * copied from the connection's staging area (kc_shm.h) into its reserved
 * slot, then committed (and checksummed) from the daemon's copy, so the
 * client cannot change a block once it is committed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_dispatch.h"
#include "daemon/kc_put.h"
#include "daemon/kc_log.h"
#include "daemon/kc_reply.h"
#include "daemon/kc_daemon.h"
#include "daemon/kc_shm.h"
#include "slab/kc_admit.h"

/* A Put being received. */
struct put_ctx {
    Kvcache__Request *req;     /* decoded request (items) */
    uint64_t id;
    uint64_t ns;
    uint64_t t0;
    size_t n;                  /* items */
    size_t i;                  /* item being received */
    bool active;               /* item i has its sink set */
    bool reserved;             /* ws holds a reservation for item i */
    const uint8_t *staging;    /* staged put: the staging area, else NULL */
    struct store_wslot ws;
    uint8_t *committed;        /* per item: stored by this request (after
                                  status[]), checked once more at the end */
    Kvcache__Code status[];    /* per item */
};

/* Refuse a whole Put: answer, skip its data, free the request. */
static int put_refuse(struct conn *c, Kvcache__Request *req, uint64_t data_len,
                      int code, const char *what)
{
    struct server *s = c->srv;

    if (code == KVCACHE__CODE__LIMIT)
        s->stats.limit_errors++;
    s->stats.op_errors[OPK_PUT]++;
    log_info("conn %llu (%s): put %llu refused: %s", (unsigned long long)c->id,
             c->peer, (unsigned long long)req->id, what);
    rpc_send_error(c, req->id, code, "%s", what);
    kvcache__request__free_unpacked(req, NULL);
    conn_skip_data(c, data_len);
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

int op_put(struct conn *c, Kvcache__Request *req, uint64_t t0)
{
    uint64_t data_len = c->hdr.data_len;
    struct server *s = c->srv;
    Kvcache__PutRequest *p = req->put;
    struct store_ns_info info;
    struct put_ctx *ctx;
    uint64_t sum = 0;
    char what[160];

    if (p->n_items > s->opts->max_batch) {
        snprintf(what, sizeof(what), "batch of %zu items over the limit of %u",
                 p->n_items, s->opts->max_batch);
        return put_refuse(c, req, data_len, KVCACHE__CODE__LIMIT, what);
    }
    for (size_t i = 0; i < p->n_items; i++) {
        if (p->items[i]->key.len != KC_KEY_WIRE_LEN) {
            snprintf(what, sizeof(what), "item %zu: key of %zu bytes, not 16",
                     i, p->items[i]->key.len);
            return put_refuse(c, req, data_len, KVCACHE__CODE__BAD_REQUEST, what);
        }
        sum += p->items[i]->length;
    }
    if (p->staging != 0) {
        const struct shm_conn *sc = c->shm;
        if (sc == NULL || sc->staging == NULL || p->staging != sc->staging_id)
            return put_refuse(c, req, data_len, KVCACHE__CODE__BAD_REQUEST,
                              "staged put names no staging area of this connection");
        for (size_t i = 0; i < p->n_items; i++) {
            const Kvcache__PutItem *it = p->items[i];
            if (it->offset > sc->staging_size ||
                it->length > sc->staging_size - it->offset) {
                snprintf(what, sizeof(what), "item %zu: offset %llu + %u bytes "
                         "past the staging area", i, (unsigned long long)it->offset,
                         it->length);
                return put_refuse(c, req, data_len, KVCACHE__CODE__BAD_REQUEST, what);
            }
        }
        sum = 0;   /* no data section */
    }
    if (sum != data_len) {
        snprintf(what, sizeof(what), "item lengths add up to %llu bytes but "
                 "the data section has %llu", (unsigned long long)sum,
                 (unsigned long long)data_len);
        return put_refuse(c, req, data_len, KVCACHE__CODE__BAD_REQUEST, what);
    }
    if (store_ns_get(s->st, p->ns, &info) != 0) {
        snprintf(what, sizeof(what), "unknown namespace %016llx",
                 (unsigned long long)p->ns);
        return put_refuse(c, req, data_len,
                          KVCACHE__CODE__UNKNOWN_NAMESPACE, what);
    }
    ctx = calloc(1, sizeof(*ctx) + p->n_items * (sizeof(ctx->status[0]) + 1));
    if (ctx == NULL)
        return put_refuse(c, req, data_len, KVCACHE__CODE__NO_MEMORY,
                          "out of memory");
    ctx->committed = (uint8_t *)&ctx->status[p->n_items];
    ctx->req = req;
    ctx->id = req->id;
    ctx->ns = p->ns;
    ctx->n = p->n_items;
    ctx->t0 = t0;
    ctx->staging = p->staging ? c->shm->staging : NULL;
    c->put = ctx;
    conn_set_sink(c, NULL, 0);   /* put_next runs on the next step */
    return STEP_PROGRESS;
}

/* All items received: answer and go back to reading headers. */
static int put_finish(struct conn *c)
{
    struct put_ctx *p = c->put;
    struct server *s = c->srv;
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__PutResponse pr = KVCACHE__PUT_RESPONSE__INIT;

    /* OK means readable when the answer leaves: a request larger than the
     * store evicts its own first blocks to make room for its last ones,
     * and those must not be reported stored */
    for (size_t i = 0; i < p->n; i++) {
        Kvcache__PutItem *it = p->req->put->items[i];
        struct kc_key key;

        if (!p->committed[i])     /* refused, or not admitted (KC_SKIPPED) */
            continue;
        kc_key_unpack(it->key.data, &key.lo, &key.hi);
        if (store_match(s->st, p->ns, &key, 1) == 0) {
            p->status[i] = KVCACHE__CODE__NO_SPACE;
            s->stats.put_evicted++;
        }
    }
    pr.n_status = p->n;
    pr.status = p->status;
    r.id = p->id;
    r.result_case = KVCACHE__RESPONSE__RESULT_PUT;
    r.put = &pr;
    hist_add(&s->stats.op[OPK_PUT], loop_now_ns() - p->t0);
    c->put = NULL;
    c->state = CS_HDR;
    rpc_send(c, &r, NULL, 0, 0, NULL, NULL);
    kvcache__request__free_unpacked(p->req, NULL);
    free(p);
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

int put_next(struct conn *c)
{
    struct put_ctx *p = c->put;
    struct server *s = c->srv;
    Kvcache__PutItem *it;
    struct kc_key key;
    int rc;

    if (p->active) {
        if (p->reserved) {
            rc = store_put_commit(s->st, &p->ws);
            p->status[p->i] = (Kvcache__Code)code_from_kc(rc);
            p->committed[p->i] = rc == KC_OK;
            p->reserved = false;
        }
        p->active = false;
        p->i++;
    }
    if (p->i == p->n)
        return put_finish(c);
    it = p->req->put->items[p->i];
    kc_key_unpack(it->key.data, &key.lo, &key.hi);
    if (!auth_ns_bytes_ok(&s->auth, s->st, p->ns, it->length) &&
        store_match(s->st, p->ns, &key, 1) == 0) {
        /* over --ns-max-bytes (a present key still answers EXISTS) */
        s->stats.quota_refused++;
        p->status[p->i] = KVCACHE__CODE__LIMIT;
        conn_set_sink(c, NULL, p->staging ? 0 : it->length);
        p->active = true;
        return STEP_PROGRESS;
    }
    rc = store_put_reserve_hint(s->st, p->ns, &key, it->chain_pos,
                                it->hints & ADMIT_HINT_MASK, it->length, &p->ws);
    if (rc == KC_EBUSY) {
        if (!c->busy_wait) {
            c->busy_wait = true;
            s->busy_waiters++;
        }
        s->stats.busy_retries++;
        return STEP_BLOCKED;
    }
    if (rc == 0 && p->staging) {
        p->reserved = true;
        memcpy(p->ws.buf, p->staging + it->offset, it->length);
        s->stats.staged_puts++;
        conn_set_sink(c, NULL, 0);
    } else if (rc == 0) {
        p->reserved = true;
        conn_set_sink(c, p->ws.buf, it->length);
    } else {
        p->status[p->i] = (Kvcache__Code)code_from_kc(rc);
        conn_set_sink(c, NULL, p->staging ? 0 : it->length);
    }
    p->active = true;
    return STEP_PROGRESS;
}

void put_abort(struct conn *c)
{
    struct put_ctx *p = c->put;

    if (p == NULL)
        return;
    if (p->reserved)
        store_put_abort(c->srv->st, &p->ws);
    kvcache__request__free_unpacked(p->req, NULL);
    free(p);
    c->put = NULL;
}
