/*
 * kc_conn.c - a client connection: input buffer, data sink, output queue,
 * backpressure; the protocol is c->proto's (kc_conn.h).
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

#include "daemon/kc_budget.h"
#include "daemon/kc_daemon.h"
#include "daemon/kc_log.h"

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

int conn_init(struct conn *c, struct server *s, int fd, bool is_unix,
              const struct conn_proto *proto)
{
    memset(c, 0, sizeof(*c));
    c->ibuf = malloc(CONN_IBUF_SIZE);
    if (c->ibuf == NULL)
        return -1;
    c->icap = CONN_IBUF_SIZE;
    c->lh.fd = fd;
    c->lh.cb = conn_event;
    c->srv = s;
    c->proto = proto;
    c->is_unix = is_unix;
    c->state = CS_HDR;
    c->last_active_ns = loop_now_ns();
    return 0;
}

void conn_kick(struct conn *c)
{
    struct server *s = c->srv;

    if (c->kicked || c->closed)
        return;
    c->kicked = true;
    c->kick_next = s->kick;
    s->kick = c;
}

/* Backpressure: too much output queued or too many gets in flight. */
static bool conn_backpressured(const struct conn *c)
{
    return c->out_bytes > CONN_OUT_BYTES_MAX ||
           c->out_count > CONN_OUT_COUNT_MAX ||
           c->gets_inflight > CONN_GETS_MAX || budget_conn_over(c);
}

bool conn_may_start(const struct conn *c)
{
    /* answers in request order: one get at a time per connection */
    return !c->srv->stopping && !conn_backpressured(c) &&
           !(c->proto->ordered && c->gets_inflight);
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
    c->sink_ns = loop_now_ns();
}

void conn_skip_data(struct conn *c, uint64_t len)
{
    conn_set_sink(c, NULL, len);
}

/* Charge the input buffer's size beyond CONN_IBUF_SIZE to the budget. */
static void conn_ibuf_account(struct conn *c)
{
    uint64_t extra = c->icap > CONN_IBUF_SIZE ? c->icap - CONN_IBUF_SIZE : 0;

    budget_charge(c, (int64_t)extra - (int64_t)c->ibuf_charged);
    c->ibuf_charged = extra;
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
            conn_ibuf_account(c);
        }
    }
    if (c->icap < need) {
        uint8_t *nb = realloc(c->ibuf, need);

        if (nb == NULL)
            return -1;
        c->ibuf = nb;
        c->icap = need;
        conn_ibuf_account(c);
    }
    return 0;
}

int conn_budget_wait(struct conn *c)
{
    struct server *s = c->srv;

    if (!c->busy_wait) {
        c->busy_wait = true;
        s->busy_waiters++;
    }
    s->stats.budget_waits++;
    return STEP_BLOCKED;
}

/* One step on buffered bytes: the protocol's at a message boundary, else
 * the data section into the sink. */
static int conn_step(struct conn *c)
{
    size_t avail = c->ilen - c->ipos;
    uint64_t n;

    if (c->state != CS_DATA)
        return c->proto->on_read(c);
    if (c->sink_left == 0)
        return c->proto->on_data(c);
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
    log_info("conn %llu (%s): closed in the middle of a %s message (%s)",
             (unsigned long long)c->id, c->peer, c->proto->name,
             c->state == CS_DATA ? "data" : "header");
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
            conn_kick(c);
            break;
        }
    }
    if (!c->closed)
        conn_update_events(c);
}

/* Free one response, releasing the engine memory it was sending. */
static void resp_free(struct conn *c, struct resp *rp)
{
    budget_charge(c, -(int64_t)rp->owned);
    if (rp->rel)
        rp->rel(c->srv, rp->rel_arg);
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
        c->last_active_ns = c->last_sent_ns = loop_now_ns();
        /* advance: rp->cur is the iov in progress, rp->sent the offset in it */
        while (w > 0 || (c->out_head && c->out_head->cur == c->out_head->niov)) {
            struct resp *rp = c->out_head;
            size_t left;

            if (rp->cur == rp->niov) {
                c->out_head = rp->next;
                if (c->out_head == NULL)
                    c->out_tail = NULL;
                c->out_count--;
                resp_free(c, rp);
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
        conn_kick(c);
    if (c->out_head == NULL && c->proto->on_drained)
        c->proto->on_drained(c);
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

struct resp *conn_resp_new(struct conn *c, int niov, size_t extra,
                           conn_rel_fn rel, void *rel_arg)
{
    size_t owned = sizeof(struct resp) + (size_t)niov * sizeof(struct iovec) +
                   extra;
    struct resp *rp = c->closed ? NULL : malloc(owned);

    if (rp == NULL) {
        if (rel)
            rel(c->srv, rel_arg);
        if (!c->closed)
            conn_close(c, "out of memory for a response");
        return NULL;
    }
    rp->next = NULL;
    rp->rel = rel;
    rp->rel_arg = rel_arg;
    rp->owned = owned;
    rp->niov = niov;
    rp->cur = 0;
    rp->sent = 0;
    return rp;
}

void *conn_resp_extra(struct resp *rp)
{
    return &rp->iov[rp->niov];
}

void conn_resp_queue(struct conn *c, struct resp *rp, size_t total)
{
    budget_charge(c, (int64_t)rp->owned);
    rp->total = total;
    if (c->out_tail) {
        c->out_tail->next = rp;
    } else {
        c->out_head = rp;
        c->last_sent_ns = loop_now_ns();   /* --send-timeout from now */
    }
    c->out_tail = rp;
    c->out_bytes += total;
    c->out_count++;
    conn_flush(c);
}

void conn_send_raw(struct conn *c, const char *text, size_t tlen,
                   const struct conn_piece *p, int np,
                   conn_rel_fn rel, void *rel_arg)
{
    struct resp *rp = conn_resp_new(c, np, tlen, rel, rel_arg);
    char *copy;
    size_t total = 0;
    int n = 0;

    if (rp == NULL)
        return;
    copy = conn_resp_extra(rp);
    memcpy(copy, text, tlen);
    for (int i = 0; i < np; i++) {
        if (p[i].len == 0)
            continue;
        rp->iov[n].iov_base = p[i].data ? (void *)p[i].data : copy + p[i].off;
        rp->iov[n].iov_len = p[i].len;
        n++;
        total += p[i].len;
    }
    rp->niov = n;
    conn_resp_queue(c, rp, total);
}

void conn_send_text(struct conn *c, const char *text, size_t len)
{
    struct conn_piece p = { NULL, 0, len };

    conn_send_raw(c, text, len, &p, 1, NULL, NULL);
}

void conn_close(struct conn *c, const char *why)
{
    struct server *s = c->srv;

    if (c->closed)
        return;
    log_debug("conn %llu (%s): close: %s", (unsigned long long)c->id,
              c->peer, why);
    c->closed = true;
    c->proto->on_close(c);
    budget_charge(c, -(int64_t)c->ibuf_charged);
    c->ibuf_charged = 0;
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
        resp_free(c, rp);
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
    if (c->proto->on_free)
        c->proto->on_free(c);
    free(c->ibuf);
    free(c);
}
