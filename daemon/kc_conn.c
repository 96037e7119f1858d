/*
 * kc_conn.c - a client connection: frame reader, data sink, output queue.
 */
#include "daemon/kc_conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/kc_dispatch.h"
#include "daemon/kc_log.h"
#include "daemon/kc_memcache.h"
#include "daemon/kc_server.h"
#include "daemon/kc_shm.h"

/* iovecs handed to one sendmsg. */
#define CONN_IOV_BATCH 128
/* Steps and bytes one connection may take before yielding to the others:
 * a Put flood must not hold a GetPrefix (latency-critical) behind it. */
#define CONN_BUDGET 64
#define CONN_BYTES_BUDGET (4u << 20)
/* Direct reads into the sink only when this much is left. */
#define CONN_DIRECT_MIN 4096

static void conn_event(struct loop_handler *h, uint32_t events);
static void conn_flush(struct conn *c);

int conn_init(struct conn *c, struct server *s, int fd, bool is_unix)
{
    memset(c, 0, sizeof(*c));
    c->ibuf = malloc(CONN_IBUF_SIZE);
    if (c->ibuf == NULL)
        return -1;
    c->icap = CONN_IBUF_SIZE;
    c->lh.fd = fd;
    c->lh.cb = conn_event;
    c->srv = s;
    c->is_unix = is_unix;
    c->state = CS_HDR;
    c->last_active_ns = loop_now_ns();
    return 0;
}

/* Backpressure: too much output queued or too many gets in flight. */
static bool conn_backpressured(const struct conn *c)
{
    return c->out_bytes > CONN_OUT_BYTES_MAX ||
           c->out_count > CONN_OUT_COUNT_MAX ||
           c->gets_inflight > CONN_GETS_MAX;
}

/* May a new request be started? */
static bool conn_may_start(const struct conn *c)
{
    /* memcache answers in order: one get at a time per connection */
    return !c->srv->stopping && !conn_backpressured(c) &&
           !(c->mc && c->gets_inflight);
}

/* May bytes be read from the socket at all? */
static bool conn_may_read(const struct conn *c)
{
    return !c->closed && !c->close_after_flush && !c->read_eof &&
           !c->busy_wait && (c->state != CS_HDR || conn_may_start(c));
}

void conn_update_events(struct conn *c)
{
    uint32_t want = 0;

    if (c->closed)
        return;
    if (conn_may_read(c))
        want |= EPOLLIN;
    if (c->out_head)
        want |= EPOLLOUT;
    if (loop_mod(c->srv->loop, &c->lh, want) < 0)
        conn_close(c, "epoll_ctl failed");
}

/* Close once a half-closed or failed connection has nothing left to do. */
static void conn_maybe_finish(struct conn *c)
{
    if (c->closed || c->out_head || c->gets_inflight)
        return;
    if (c->close_after_flush)
        conn_close(c, "protocol error");
    else if (c->read_eof)
        conn_close(c, "peer closed");
}

void conn_set_sink(struct conn *c, void *buf, uint64_t len)
{
    c->state = CS_DATA;
    c->sink = buf;
    c->sink_left = len;
}

void conn_skip_data(struct conn *c, uint64_t len)
{
    conn_set_sink(c, NULL, len);
}

/* Make room for need contiguous unread bytes in ibuf. 0 or -1. */
int conn_ibuf_room(struct conn *c, size_t need)
{
    size_t unread = c->ilen - c->ipos;

    if (c->ipos > 0 && (c->icap - c->ipos < need || unread == 0)) {
        memmove(c->ibuf, c->ibuf + c->ipos, unread);
        c->ilen = unread;
        c->ipos = 0;
    }
    if (unread == 0 && c->icap > CONN_IBUF_SIZE && need <= CONN_IBUF_SIZE) {
        uint8_t *nb = realloc(c->ibuf, CONN_IBUF_SIZE);

        if (nb) {
            c->ibuf = nb;
            c->icap = CONN_IBUF_SIZE;
        }
    }
    if (c->icap < need) {
        uint8_t *nb = realloc(c->ibuf, need);

        if (nb == NULL)
            return -1;
        c->ibuf = nb;
        c->icap = need;
    }
    return 0;
}

/* A bad frame header: answer once, then close after the answer is sent. */
static int conn_bad_frame(struct conn *c, int rc)
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
    conn_send_error(c, 0, code, "%s", kc_frame_strerror(rc));
    return c->closed ? STEP_CLOSED : STEP_BLOCKED;
}

/* One step of the reader on buffered bytes. */
static int conn_step(struct conn *c)
{
    size_t avail = c->ilen - c->ipos;
    Kvcache__Request *req;
    uint64_t n;
    int rc;

    if (c->mc && c->state != CS_DATA)
        return mc_step(c);
    switch (c->state) {
    case CS_HDR:
        if (c->close_after_flush || c->busy_wait || !conn_may_start(c))
            return STEP_BLOCKED;
        if (avail < KC_FRAME_HDR_LEN) {
            if (conn_ibuf_room(c, KC_FRAME_HDR_LEN) < 0)
                goto nomem;
            return STEP_NEED_INPUT;
        }
        rc = kc_frame_decode(c->ibuf + c->ipos, KC_FRAME_PB_MAX,
                             c->srv->opts->max_frame, &c->hdr);
        c->ipos += KC_FRAME_HDR_LEN;
        if (rc != 0)
            return conn_bad_frame(c, rc);
        c->state = CS_PB;
        return STEP_PROGRESS;
    case CS_PB:
        if (avail < c->hdr.pb_len) {
            if (conn_ibuf_room(c, c->hdr.pb_len) < 0)
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
            conn_send_error(c, 0, KVCACHE__CODE__BAD_REQUEST,
                            "protobuf message does not decode");
            conn_skip_data(c, c->hdr.data_len);
            return c->closed ? STEP_CLOSED : STEP_PROGRESS;
        }
        return dispatch_request(c, req, c->hdr.data_len);
    case CS_DATA:
        if (c->sink_left == 0) {
            if (c->mc)
                return mc_data_done(c);
            if (c->put)
                return put_next(c);
            c->state = CS_HDR;
            return STEP_PROGRESS;
        }
        if (avail == 0)
            return STEP_NEED_INPUT;
        n = avail < c->sink_left ? avail : c->sink_left;
        if (c->sink) {
            memcpy(c->sink, c->ibuf + c->ipos, n);
            c->sink += n;
        }
        c->sink_left -= n;
        c->ipos += n;
        return STEP_PROGRESS;
    }
    return STEP_BLOCKED;
nomem:
    conn_close(c, "out of memory for the input buffer");
    return STEP_CLOSED;
}

/* One recv: straight into the sink when possible, else into ibuf. */
static ssize_t conn_read(struct conn *c)
{
    ssize_t n;

    if (c->state == CS_DATA && c->sink && c->ipos == c->ilen &&
        c->sink_left >= CONN_DIRECT_MIN) {
        size_t want = c->sink_left > (1u << 30) ? (1u << 30) : c->sink_left;

        n = recv(c->lh.fd, c->sink, want, MSG_DONTWAIT);
        if (n > 0) {
            c->sink += n;
            c->sink_left -= (uint64_t)n;
        }
    } else {
        if (c->ilen == c->icap && conn_ibuf_room(c, c->icap) < 0)
            return -ENOMEM;
        if (c->ipos == c->ilen)
            c->ipos = c->ilen = 0;
        n = recv(c->lh.fd, c->ibuf + c->ilen, c->icap - c->ilen, MSG_DONTWAIT);
        if (n > 0)
            c->ilen += (size_t)n;
    }
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (n > 0) {
        c->srv->stats.bytes_in += (uint64_t)n;
        c->last_active_ns = loop_now_ns();
    }
    return n;
}

/* The peer closed its side. */
static void conn_eof(struct conn *c)
{
    if (c->state == CS_HDR && c->ipos == c->ilen) {
        c->read_eof = true;
        conn_maybe_finish(c);
        return;
    }
    log_info("conn %llu (%s): closed in the middle of a frame (%s)",
             (unsigned long long)c->id, c->peer,
             c->put ? "Put data" : c->state == CS_DATA ? "data" : "header");
    conn_close(c, "closed mid-frame");
}

void conn_process(struct conn *c)
{
    int budget = CONN_BUDGET;
    uint64_t bytes = 0;

    while (!c->closed) {
        int r = conn_step(c);
        ssize_t n = 0;

        if (r == STEP_CLOSED)
            return;
        if (r == STEP_BLOCKED)
            break;
        if (r == STEP_NEED_INPUT) {
            if (!conn_may_read(c))
                break;
            n = conn_read(c);
            if (n == -EAGAIN)
                break;
            if (n == 0) {
                conn_eof(c);
                break;
            }
            if (n < 0) {
                conn_close(c, "read error");
                return;
            }
            bytes += (uint64_t)n;
        }
        if (--budget == 0 || bytes >= CONN_BYTES_BUDGET) {
            server_kick(c->srv, c);
            break;
        }
    }
    if (!c->closed)
        conn_update_events(c);
}

/* Free one response, releasing the engine memory it was sending. */
static void resp_free(struct server *s, struct resp *rp)
{
    if (rp->get)
        get_ctx_release(s, rp->get);
    if (rp->rel)
        rp->rel(s, rp->rel_arg);
    free(rp);
}

/* Send what the socket takes from the output queue. */
static void conn_flush(struct conn *c)
{
    bool was_bp = conn_backpressured(c);

    while (c->out_head && !c->closed) {
        struct iovec iov[CONN_IOV_BATCH];
        struct msghdr msg = { .msg_iov = iov };
        int n = 0;
        ssize_t w;

        for (struct resp *rp = c->out_head; rp && n < CONN_IOV_BATCH;
             rp = rp->next) {
            size_t off = rp == c->out_head ? rp->sent : 0;
            for (int i = rp == c->out_head ? rp->cur : 0;
                 i < rp->niov && n < CONN_IOV_BATCH; i++) {
                iov[n].iov_base = (uint8_t *)rp->iov[i].iov_base + off;
                iov[n].iov_len = rp->iov[i].iov_len - off;
                off = 0;
                n++;
            }
        }
        msg.msg_iovlen = (size_t)n;
        w = sendmsg(c->lh.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c, "write error");
            return;
        }
        c->srv->stats.bytes_out += (uint64_t)w;
        c->out_bytes -= (uint64_t)w;
        c->last_active_ns = loop_now_ns();
        /* advance: rp->cur is the iov in progress, rp->sent the offset in it */
        while (w > 0 || (c->out_head && c->out_head->cur == c->out_head->niov)) {
            struct resp *rp = c->out_head;
            size_t left;

            if (rp->cur == rp->niov) {
                c->out_head = rp->next;
                if (c->out_head == NULL)
                    c->out_tail = NULL;
                c->out_count--;
                resp_free(c->srv, rp);
                continue;
            }
            left = rp->iov[rp->cur].iov_len - rp->sent;
            if ((size_t)w >= left) {
                w -= (ssize_t)left;
                rp->cur++;
                rp->sent = 0;
            } else {
                rp->sent += (size_t)w;
                w = 0;
            }
        }
    }
    if (c->closed)
        return;
    if (was_bp && !conn_backpressured(c))
        server_kick(c->srv, c);
    conn_maybe_finish(c);
    if (!c->closed)
        conn_update_events(c);
}

/* Socket readiness: send first (frees engine memory), then read. */
static void conn_event(struct loop_handler *h, uint32_t events)
{
    struct conn *c = (struct conn *)h;

    if (c->closed)
        return;
    if (events & EPOLLERR) {
        conn_close(c, "socket error");
        return;
    }
    if (events & EPOLLOUT)
        conn_flush(c);
    if (c->closed)
        return;
    if (events & EPOLLIN) {
        conn_process(c);
    } else if (events & EPOLLHUP) {
        conn_close(c, "hang up");
    }
}

void conn_send(struct conn *c, const Kvcache__Response *r,
               const struct iovec *data, int ndata, uint64_t data_len,
               struct get_ctx *owner)
{
    struct kc_frame_hdr hdr = { KC_FRAME_VERSION, KC_FRAME_F_RESPONSE, 0,
                                data_len };
    size_t pb, hlen;
    struct resp *rp;
    uint8_t *head;
    int niov = 1;

    if (c->closed) {
        if (owner)
            get_ctx_release(c->srv, owner);
        return;
    }
    pb = kvcache__response__get_packed_size(r);
    hlen = KC_FRAME_HDR_LEN + pb;
    rp = malloc(sizeof(*rp) + (size_t)(ndata + 1) * sizeof(struct iovec) + hlen);
    if (rp == NULL) {
        if (owner)
            get_ctx_release(c->srv, owner);
        conn_close(c, "out of memory for a response");
        return;
    }
    head = (uint8_t *)&rp->iov[ndata + 1];
    hdr.pb_len = (uint32_t)pb;
    kc_frame_encode(head, &hdr);
    kvcache__response__pack(r, head + KC_FRAME_HDR_LEN);
    rp->iov[0].iov_base = head;
    rp->iov[0].iov_len = hlen;
    for (int i = 0; i < ndata; i++)
        if (data[i].iov_len)
            rp->iov[niov++] = data[i];
    rp->niov = niov;
    rp->cur = 0;
    rp->sent = 0;
    rp->get = owner;
    rp->rel = NULL;
    rp->rel_arg = NULL;
    rp->total = hlen + data_len;
    rp->next = NULL;
    if (c->out_tail)
        c->out_tail->next = rp;
    else
        c->out_head = rp;
    c->out_tail = rp;
    c->out_bytes += rp->total;
    c->out_count++;
    conn_flush(c);
}

void conn_send_raw(struct conn *c, const char *text, size_t tlen,
                   const struct conn_piece *p, int np,
                   void (*rel)(struct server *, void *), void *rel_arg)
{
    struct resp *rp;
    char *copy;
    size_t total = 0;

    if (c->closed) {
        if (rel)
            rel(c->srv, rel_arg);
        return;
    }
    rp = malloc(sizeof(*rp) + (size_t)np * sizeof(struct iovec) + tlen);
    if (rp == NULL) {
        if (rel)
            rel(c->srv, rel_arg);
        conn_close(c, "out of memory for a response");
        return;
    }
    copy = (char *)&rp->iov[np];
    memcpy(copy, text, tlen);
    rp->niov = 0;
    for (int i = 0; i < np; i++) {
        if (p[i].len == 0)
            continue;
        rp->iov[rp->niov].iov_base = p[i].data ? (void *)p[i].data
                                               : copy + p[i].off;
        rp->iov[rp->niov].iov_len = p[i].len;
        rp->niov++;
        total += p[i].len;
    }
    rp->cur = 0;
    rp->sent = 0;
    rp->get = NULL;
    rp->rel = rel;
    rp->rel_arg = rel_arg;
    rp->total = total;
    rp->next = NULL;
    if (c->out_tail)
        c->out_tail->next = rp;
    else
        c->out_head = rp;
    c->out_tail = rp;
    c->out_bytes += total;
    c->out_count++;
    conn_flush(c);
}

void conn_send_text(struct conn *c, const char *text, size_t len)
{
    struct conn_piece p = { NULL, 0, len };

    conn_send_raw(c, text, len, &p, 1, NULL, NULL);
}

void conn_send_error(struct conn *c, uint64_t id, int code,
                     const char *fmt, ...)
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
    conn_send(c, &r, NULL, 0, 0, NULL);
}

void conn_close(struct conn *c, const char *why)
{
    struct server *s = c->srv;

    if (c->closed)
        return;
    log_debug("conn %llu (%s): close: %s", (unsigned long long)c->id,
              c->peer, why);
    c->closed = true;
    if (c->put)
        put_abort(c);
    if (c->mc)
        mc_abort(c);
    if (c->shm)
        shm_conn_close(c);
    if (c->busy_wait) {
        c->busy_wait = false;
        s->busy_waiters--;
    }
    loop_del(s->loop, &c->lh);
    close(c->lh.fd);
    c->lh.fd = -1;
    while (c->out_head) {
        struct resp *rp = c->out_head;

        c->out_head = rp->next;
        resp_free(s, rp);
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
    c->out_count = 0;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->nconns--;
    s->stats.conns--;
    c->dead_next = s->dead;
    s->dead = c;
}

void conn_free(struct conn *c)
{
    free(c->mc);
    free(c->ibuf);
    free(c);
}
