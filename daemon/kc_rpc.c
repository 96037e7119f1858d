/*
 * kc_rpc.c - the protobuf RPC on a connection (kc_rpc.h): frame reader,
 * dispatch through the table of operations, and the connection's hooks.
 */
#include "daemon/kc_rpc.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "daemon/kc_budget.h"
#include "daemon/kc_conn.h"
#include "daemon/kc_daemon.h"
#include "daemon/kc_dispatch.h"
#include "daemon/kc_lease.h"
#include "daemon/kc_log.h"
#include "daemon/kc_put.h"
#include "daemon/kc_reply.h"
#include "daemon/kc_shm.h"
#include "kc_frame.h"
#include "kc_pbscan.h"

/*
 * Are the request's strings whole? protobuf-c cuts a string at its first
 * NUL, so a model "a\0b" would open namespace "a". pb is the request's raw
 * protobuf message. False: refuse the request (BAD_REQUEST).
 */
static bool rpc_strings_ok(const Kvcache__Request *q, const uint8_t *pb,
                           size_t len)
{
    /* Request.open_namespace(10) -> desc(1) -> model(1) / dtype(5) */
    static const uint32_t model[] = { 10, 1, 1 }, dtype[] = { 10, 1, 5 };

    if (q->op_case != KVCACHE__REQUEST__OP_OPEN_NAMESPACE)
        return true;
    return kc_pb_path_has_nul(pb, len, model, 3) == 0 &&
           kc_pb_path_has_nul(pb, len, dtype, 3) == 0;
}


/* A bad frame header: answer once, then close after the answer is sent. */
static int rpc_bad_frame(struct conn *c, int rc)
{
    struct server *s = c->srv;
    int code = KVCACHE__CODE__BAD_REQUEST;

    if (rc == KC_FRAME_EVERSION) {
        code = KVCACHE__CODE__UNSUPPORTED;
    } else if (rc == KC_FRAME_EPBLEN || rc == KC_FRAME_EDATALEN) {
        code = KVCACHE__CODE__LIMIT;
        s->stats.limit_errors++;
    }
    if (code != KVCACHE__CODE__LIMIT)
        s->stats.protocol_errors++;
    log_warn("conn %llu (%s): %s (pb_len %u, data_len %llu): closing",
             (unsigned long long)c->id, c->peer, kc_frame_strerror(rc),
             c->hdr.pb_len, (unsigned long long)c->hdr.data_len);
    c->close_after_flush = true;
    rpc_send_error(c, 0, code, "%s", kc_frame_strerror(rc));
    return c->closed ? STEP_CLOSED : STEP_BLOCKED;
}

/* At a frame boundary: a parked get, the header, the protobuf message. */
static int rpc_on_read(struct conn *c)
{
    size_t avail = c->ilen - c->ipos;
    Kvcache__Request *req;
    int rc;

    if (c->parked) {             /* a get waiting for the budget */
        req = c->parked;
        c->parked = NULL;
        return dispatch_request(c, req, 0);
    }

    switch (c->state) {
    case CS_HDR:
        if (c->close_after_flush || c->busy_wait || !conn_may_start(c))
            return STEP_BLOCKED;
        if (c->srv->inflight_bytes > c->srv->opts->read_inflight)
            return conn_budget_wait(c);     /* every client over the total */
        if (avail < KC_FRAME_HDR_LEN) {
            if (conn_ibuf_room(c, KC_FRAME_HDR_LEN) < 0)
                goto nomem;
            return STEP_NEED_INPUT;
        }
        rc = kc_frame_decode(c->ibuf + c->ipos, KC_FRAME_PB_MAX,
                             c->srv->opts->max_frame, &c->hdr);
        c->ipos += KC_FRAME_HDR_LEN;
        if (rc != 0)
            return rpc_bad_frame(c, rc);
        c->state = CS_PB;
        return STEP_PROGRESS;
    case CS_PB:
        if (avail < c->hdr.pb_len) {
            /* grow with the bytes that came, not to the declared size at
             * once: a partial frame holds what it sent, twice at most */
            size_t want = avail * 2 > avail + CONN_IBUF_SIZE
                              ? avail * 2 : avail + CONN_IBUF_SIZE;

            if (want > c->hdr.pb_len)
                want = c->hdr.pb_len;
            if (want > c->icap - c->ipos && want > c->icap &&
                budget_admit(c, want - c->icap) != BUDGET_OK)
                return conn_budget_wait(c);
            if (conn_ibuf_room(c, want) < 0)
                goto nomem;
            return STEP_NEED_INPUT;
        }
        req = kvcache__request__unpack(NULL, c->hdr.pb_len, c->ibuf + c->ipos);
        c->ipos += c->hdr.pb_len;
        c->srv->stats.requests++;
        if (req == NULL) {
            c->srv->stats.protocol_errors++;
            log_warn("conn %llu (%s): request of %u bytes does not decode",
                     (unsigned long long)c->id, c->peer, c->hdr.pb_len);
            rpc_send_error(c, 0, KVCACHE__CODE__BAD_REQUEST,
                            "protobuf message does not decode");
            conn_skip_data(c, c->hdr.data_len);
            return c->closed ? STEP_CLOSED : STEP_PROGRESS;
        }
        if (!rpc_strings_ok(req, c->ibuf + c->ipos - c->hdr.pb_len,
                                 c->hdr.pb_len)) {
            c->srv->stats.protocol_errors++;
            rpc_send_error(c, req->id, KVCACHE__CODE__BAD_REQUEST,
                            "a string field holds a NUL byte");
            kvcache__request__free_unpacked(req, NULL);
            conn_skip_data(c, c->hdr.data_len);
            return c->closed ? STEP_CLOSED : STEP_PROGRESS;
        }
        return dispatch_request(c, req, c->hdr.data_len);
    case CS_DATA:
        break;
    }
    return STEP_BLOCKED;
nomem:
    conn_close(c, "out of memory for the input buffer");
    return STEP_CLOSED;
}


/* The sink is full: the next block of a Put, else the next frame. */
static int rpc_on_data(struct conn *c)
{
    if (c->put)
        return put_next(c);
    c->state = CS_HDR;
    return STEP_PROGRESS;
}

/* The connection closes: a Put in progress, a parked get, the shared
 * region's staging area and leases. */
static void rpc_on_close(struct conn *c)
{
    if (c->put)
        put_abort(c);
    if (c->parked) {
        kvcache__request__free_unpacked(c->parked, NULL);
        c->parked = NULL;
    }
    if (c->shm) {
        lease_drop_all(c);
        shm_conn_close(c);
    }
}

const struct conn_proto rpc_proto = {
    .name = "rpc",
    .on_read = rpc_on_read,
    .on_data = rpc_on_data,
    .on_close = rpc_on_close,
};

void rpc_refuse(int fd, const char *why)
{
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    uint8_t buf[KC_FRAME_HDR_LEN + 128];
    struct kc_frame_hdr fh = { KC_FRAME_VERSION, KC_FRAME_F_RESPONSE, 0, 0 };

    r.code = KVCACHE__CODE__LIMIT;
    r.message = (char *)why;
    if (kvcache__response__get_packed_size(&r) > sizeof(buf) - KC_FRAME_HDR_LEN)
        return;
    fh.pb_len = (uint32_t)kvcache__response__pack(&r, buf + KC_FRAME_HDR_LEN);
    kc_frame_encode(buf, &fh);
    if (send(fd, buf, KC_FRAME_HDR_LEN + fh.pb_len,
             MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_debug("refused connection: send failed");
}

/* The request's operation as an op_kind, or -1. */
static int op_of(const Kvcache__Request *q)
{
    switch (q->op_case) {
#define OP_CASE(name, NAME, num, flags) \
    case KVCACHE__REQUEST__OP_##NAME: return OPK_##NAME;
    KC_OPS(OP_CASE)
#undef OP_CASE
    default: return -1;
    }
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
        rpc_reply_error(c, op < 0 ? OPK_AUTH : op, q->id, t0,
                    KVCACHE__CODE__DENIED,
                    "authenticate first (Auth with the daemon's token)");
        return false;
    }
    if ((op_flags(op) & KC_OP_ADMIN) && !auth_admin(&s->auth, c->cred)) {
        rpc_reply_error(c, op, q->id, t0, KVCACHE__CODE__DENIED,
                    "this operation needs the admin token");
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
    if (!(op_flags(op) & KC_OP_DATA))
        conn_skip_data(c, data_len);
    if (op < 0) {
        c->srv->stats.protocol_errors++;
        log_info("conn %llu (%s): request %llu has no known operation",
                 (unsigned long long)c->id, c->peer, (unsigned long long)q->id);
        rpc_send_error(c, q->id, KVCACHE__CODE__UNSUPPORTED,
                        "no known operation in the request");
        ret = c->closed ? STEP_CLOSED : STEP_PROGRESS;
    } else if (data_len != 0 && !(op_flags(op) & KC_OP_DATA)) {
        ret = rpc_reply_error(c, op, q->id, t0, KVCACHE__CODE__BAD_REQUEST,
                          "this operation takes no data section");
    } else {
        switch (op) {
#define OP_CALL(name, NAME, num, flags) \
        case OPK_##NAME: ret = op_##name(c, q, t0); break;
        KC_OPS(OP_CALL)
#undef OP_CALL
        default: ret = STEP_PROGRESS; assert(0); break;
        }
    }
    /* a data operation took q; a parked get keeps it for a retry */
    if ((op_flags(op) & KC_OP_DATA) || c->parked == q)
        return ret;
    kvcache__request__free_unpacked(q, NULL);
    return ret;
}

