/*
 * kc_reply.c - answers of the RPC (kc_reply.h).
 */
#include "daemon/kc_reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kc_daemon.h"
#include "kc_frame.h"

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


void rpc_send(struct conn *c, const Kvcache__Response *r,
              const struct iovec *data, int ndata, uint64_t data_len,
              conn_rel_fn rel, void *rel_arg)
{
    struct kc_frame_hdr hdr = { KC_FRAME_VERSION, KC_FRAME_F_RESPONSE, 0,
                                data_len };
    size_t pb, hlen;
    struct resp *rp;
    uint8_t *head;
    int niov = 1;

    if (c->closed) {
        if (rel)
            rel(c->srv, rel_arg);
        return;
    }
    pb = kvcache__response__get_packed_size(r);
    hlen = KC_FRAME_HDR_LEN + pb;
    rp = conn_resp_new(c, ndata + 1, hlen, rel, rel_arg);
    if (rp == NULL)
        return;
    head = conn_resp_extra(rp);
    hdr.pb_len = (uint32_t)pb;
    kc_frame_encode(head, &hdr);
    kvcache__response__pack(r, head + KC_FRAME_HDR_LEN);
    rp->iov[0].iov_base = head;
    rp->iov[0].iov_len = hlen;
    for (int i = 0; i < ndata; i++)
        if (data[i].iov_len)
            rp->iov[niov++] = data[i];
    rp->niov = niov;
    conn_resp_queue(c, rp, hlen + data_len);
}

void rpc_send_error(struct conn *c, uint64_t id, int code, const char *fmt, ...)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r.id = id;
    r.code = code;
    r.message = msg;
    rpc_send(c, &r, NULL, 0, 0, NULL, NULL);
}


/* Queue r for request op, recording its latency and error. */
int rpc_reply(struct conn *c, int op, uint64_t t0, Kvcache__Response *r)
{
    struct server *s = c->srv;

    hist_add(&s->stats.op[op], loop_now_ns() - t0);
    if (r->code != KVCACHE__CODE__OK)
        s->stats.op_errors[op]++;
    rpc_send(c, r, NULL, 0, 0, NULL, NULL);
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

/* Answer an error for op (message formatted by the caller). */
int rpc_reply_error(struct conn *c, int op, uint64_t id, uint64_t t0,
                    int code, const char *msg)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;

    r.id = id;
    r.code = code;
    r.message = (char *)msg;
    if (code == KVCACHE__CODE__LIMIT)
        c->srv->stats.limit_errors++;
    return rpc_reply(c, op, t0, &r);
}

/* Check a `bytes keys` list: a multiple of 16, at most max_batch keys.
 * Answers the error itself and returns -1 when it is not. */
int rpc_keys_check(struct conn *c, int op, uint64_t id, uint64_t t0,
                   const ProtobufCBinaryData *b, size_t *n)
{
    unsigned max = c->srv->opts->max_batch;
    char msg[128];

    if (b->len % KC_KEY_WIRE_LEN != 0) {
        snprintf(msg, sizeof(msg), "keys field of %zu bytes is not a "
                 "multiple of 16", b->len);
        rpc_reply_error(c, op, id, t0, KVCACHE__CODE__BAD_REQUEST, msg);
        return -1;
    }
    *n = b->len / KC_KEY_WIRE_LEN;
    if (*n > max) {
        snprintf(msg, sizeof(msg), "%zu keys over the limit of %u", *n, max);
        rpc_reply_error(c, op, id, t0, KVCACHE__CODE__LIMIT, msg);
        return -1;
    }
    return 0;
}

/* Look a namespace up; answers UNKNOWN_NAMESPACE and returns -1 if absent. */
int rpc_ns_check(struct conn *c, int op, uint64_t id, uint64_t t0,
                 uint64_t ns, struct store_ns_info *info)
{
    char msg[64];

    if (store_ns_get(c->srv->st, ns, info) == 0)
        return 0;
    snprintf(msg, sizeof(msg), "unknown namespace %016llx",
             (unsigned long long)ns);
    rpc_reply_error(c, op, id, t0, KVCACHE__CODE__UNKNOWN_NAMESPACE, msg);
    return -1;
}

/* OpenNamespace: canonical descriptor -> id, persisted by the store. */
