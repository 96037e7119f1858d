/*
 * kcc_mux.c - one poll() loop over the servers of a call: requests are
 * written as the sockets take them, responses are read as they come, each
 * response's data section straight into the buffers its transfer names.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvcache.h"
#include "kc_frame.h"
#include "kcc_mux.h"
#include "kcc_raw.h"

#define MUX_MAX_IOV 1024            /* iovecs per sendmsg/readv */
#define MUX_DATA_MAX (4ull << 30)   /* refuse larger response data sections */

enum { XF_QUEUED, XF_INFLIGHT, XF_DONE };
enum { RX_HDR, RX_PB, RX_DATA };
enum { STEP_WAIT = 1 };             /* a step would block: poll */

/* What one call tracks per server. */
struct mux_srv {
    struct kcc_xfer **xf;           /* this server's transfers */
    size_t nxf;
    size_t pending;                 /* transfers not done */
    struct iovec *out;              /* everything to send, in order */
    int nout, outpos;
};

void kcc_server_init(struct kcc_server *s, const struct kcc_uri *uri)
{
    memset(s, 0, sizeof(*s));
    kcc_conn_init(&s->conn, uri);
    s->next_id = 1;
}

int kcc_server_down(const struct kcc_server *s)
{
    return s->conn.fd < 0 && kcc_now_ms() < s->conn.down_until_ms;
}

void kcc_server_deinit(struct kcc_server *s)
{
    kcc_conn_deinit(&s->conn);
    kcc_shm_deinit(&s->shm);
    free(s->rx.pb);
    memset(&s->rx, 0, sizeof(s->rx));
}

int kcc_code(int32_t code)
{
    switch (code) {
    case KVCACHE__CODE__OK:
    case KVCACHE__CODE__EXISTS:
    case KVCACHE__CODE__MISS:
        return 0;
    case KVCACHE__CODE__UNKNOWN_NAMESPACE:
        return KVCACHE_ENONS;
    case KVCACHE__CODE__BAD_SIZE:
    case KVCACHE__CODE__TOO_BIG:
        return KVCACHE_ESIZE;
    case KVCACHE__CODE__NO_SPACE:
    case KVCACHE__CODE__BUSY:
    case KVCACHE__CODE__NAMESPACE_FULL:
        return KVCACHE_ENOSPACE;
    case KVCACHE__CODE__LIMIT:
        return KVCACHE_ELIMIT;
    default:
        return KVCACHE_ESERVER;
    }
}

/* Forget any partly read response (the buffer stays). */
static void rx_reset(struct kcc_rx *rx)
{
    rx->phase = RX_HDR;
    rx->got = 0;
    rx->pb_len = 0;
    rx->data_left = 0;
    rx->iov = NULL;
    rx->niov = 0;
    rx->cur = NULL;
}

/* The server failed: close it, end its open transfers with rc. */
static void mux_fail(struct kcc_server *s, struct mux_srv *m, const struct kcc_mux_cfg *cfg,
                     int rc)
{
    kcc_conn_close(&s->conn);
    rx_reset(&s->rx);
    if (rc == KVCACHE_ETIMEDOUT) {
        s->timeouts++;
        s->conn.down_until_ms = kcc_now_ms() + (uint64_t)cfg->retry_ms;
    }
    for (size_t i = 0; i < m->nxf; i++)
        if (m->xf[i]->state != XF_DONE) {
            m->xf[i]->rc = rc;
            m->xf[i]->state = XF_DONE;
        }
    m->pending = 0;
    m->outpos = m->nout;
}

/* Pack a transfer's request and frame header. */
static int mux_pack(struct kcc_server *s, struct kcc_xfer *x)
{
    struct kc_frame_hdr h = {.version = KC_FRAME_VERSION};

    x->req->id = s->next_id++;
    x->pblen = kvcache__request__get_packed_size(x->req);
    if (x->pblen > KC_FRAME_PB_MAX)
        return KVCACHE_EINVAL;
    x->pb = malloc(x->pblen ? x->pblen : 1);
    if (x->pb == NULL)
        return KVCACHE_ENOMEM;
    kvcache__request__pack(x->req, x->pb);
    h.pb_len = (uint32_t)x->pblen;
    for (int i = 0; i < x->ndata; i++)
        h.data_len += x->data[i].iov_len;
    kc_frame_encode(x->hdr, &h);
    return 0;
}

int kcc_server_connect(struct kcc_server *s, const struct kcc_mux_cfg *cfg,
                       uint64_t deadline)
{
    int rc;

    /* Between calls nothing is owed to us: a readable socket means the
     * server closed it (restart, idle timeout); start a new one. */
    if (s->conn.fd >= 0 && kcc_conn_stale(&s->conn))
        kcc_conn_close(&s->conn);
    if (kcc_server_down(s))
        return KVCACHE_EDOWN;
    if (s->conn.fd < 0) {
        rc = kcc_conn_ensure(&s->conn, deadline, cfg->connect_ms);
        if (rc == 0 && (rc = kcc_raw_auth(&s->conn, deadline)) != 0)
            kcc_conn_close(&s->conn);
        if (rc)
            return rc;
    }
    rc = 0;
    if (s->shm.tried_gen != s->conn.nconnects) {
        rc = kcc_shm_attach(s, deadline);
        if (rc)
            kcc_conn_close(&s->conn);
    }
    return rc;
}

/* Connect the server and lay out everything it is to be sent. */
static int mux_start(struct kcc_server *s, struct mux_srv *m, const struct kcc_mux_cfg *cfg,
                     uint64_t deadline)
{
    int rc, n = 0;

    rc = kcc_server_connect(s, cfg, deadline);
    if (rc)
        return rc;
    rx_reset(&s->rx);
    for (size_t i = 0; i < m->nxf; i++)
        n += 2 + m->xf[i]->ndata;
    m->out = malloc(sizeof(*m->out) * (size_t)n);
    if (m->out == NULL)
        return KVCACHE_ENOMEM;
    for (size_t i = 0; i < m->nxf; i++) {
        struct kcc_xfer *x = m->xf[i];
        rc = mux_pack(s, x);
        if (rc)
            return rc;
        m->out[m->nout++] = (struct iovec){x->hdr, sizeof(x->hdr)};
        m->out[m->nout++] = (struct iovec){x->pb, x->pblen};
        for (int j = 0; j < x->ndata; j++)
            m->out[m->nout++] = x->data[j];
        x->state = XF_INFLIGHT;
    }
    m->pending = m->nxf;
    return 0;
}

/* Write what the socket takes.  0 when all is sent, STEP_WAIT, or an error. */
static int mux_send(struct kcc_server *s, struct mux_srv *m)
{
    while (m->outpos < m->nout) {
        int cnt = m->nout - m->outpos;
        struct msghdr mh = {.msg_iov = m->out + m->outpos,
                            .msg_iovlen = (size_t)(cnt < MUX_MAX_IOV ? cnt : MUX_MAX_IOV)};
        ssize_t w = sendmsg(s->conn.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? STEP_WAIT : -errno;
        }
        size_t done = (size_t)w;
        while (m->outpos < m->nout && done >= m->out[m->outpos].iov_len)
            done -= m->out[m->outpos++].iov_len;
        if (done) {
            m->out[m->outpos].iov_base = (char *)m->out[m->outpos].iov_base + done;
            m->out[m->outpos].iov_len -= done;
        }
    }
    return 0;
}

/* Read into buf[got..len) as far as possible: 0 when full, STEP_WAIT, error. */
static int mux_read_part(int fd, uint8_t *buf, size_t len, size_t *got)
{
    while (*got < len) {
        ssize_t r = read(fd, buf + *got, len - *got);
        if (r > 0) {
            *got += (size_t)r;
            continue;
        }
        if (r == 0)
            return KVCACHE_ECLOSED;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN ? STEP_WAIT : -errno;
    }
    return 0;
}

/* A response message is in: find its transfer, let its owner see it. */
static int mux_dispatch(struct kcc_server *s, struct mux_srv *m)
{
    struct kcc_rx *rx = &s->rx;
    Kvcache__Response *resp = kvcache__response__unpack(NULL, rx->pb_len, rx->pb);
    struct kcc_xfer *x = NULL;
    int rc = KVCACHE_EPROTO;

    if (resp == NULL)
        return KVCACHE_EPROTO;
    for (size_t i = 0; i < m->nxf && x == NULL; i++)
        if (m->xf[i]->state == XF_INFLIGHT && m->xf[i]->req->id == resp->id)
            x = m->xf[i];
    if (x == NULL) {
        /* id 0: the daemon could not read our frame and will close. */
        if (resp->id == 0 && resp->code)
            rc = kcc_code(resp->code) ? kcc_code(resp->code) : KVCACHE_ESERVER;
        kvcache__response__free_unpacked(resp, NULL);
        return rc;
    }
    rx->cur = x;
    rx->iov = NULL;
    rx->niov = 0;
    x->code = resp->code;
    x->rc = x->on_resp(x, resp, rx->data_left, &rx->iov, &rx->niov);
    kvcache__response__free_unpacked(resp, NULL);
    if (rx->iov) {
        uint64_t sum = 0;
        for (int i = 0; i < rx->niov; i++)
            sum += rx->iov[i].iov_len;
        if (sum != rx->data_left)
            return KVCACHE_EPROTO;
    }
    return 0;
}

/* Read responses as far as the socket allows. */
static int mux_recv(struct kcc_server *s, struct mux_srv *m)
{
    struct kcc_rx *rx = &s->rx;
    struct kc_frame_hdr h;
    int rc;

    while (m->pending) {
        switch (rx->phase) {
        case RX_HDR:
            rc = mux_read_part(s->conn.fd, rx->hdr, sizeof(rx->hdr), &rx->got);
            if (rc)
                return rc;
            if (kc_frame_decode(rx->hdr, KC_FRAME_PB_MAX, MUX_DATA_MAX, &h) ||
                !(h.flags & KC_FRAME_F_RESPONSE))
                return KVCACHE_EPROTO;
            if (h.pb_len > rx->pb_cap) {
                uint8_t *nb = realloc(rx->pb, h.pb_len);
                if (nb == NULL)
                    return KVCACHE_ENOMEM;
                rx->pb = nb;
                rx->pb_cap = h.pb_len;
            }
            rx->pb_len = h.pb_len;
            rx->data_left = h.data_len;
            rx->got = 0;
            rx->phase = RX_PB;
            break;
        case RX_PB:
            rc = mux_read_part(s->conn.fd, rx->pb, rx->pb_len, &rx->got);
            if (rc)
                return rc;
            rc = mux_dispatch(s, m);
            if (rc)
                return rc;
            rx->phase = RX_DATA;
            break;
        case RX_DATA:
            while (rx->data_left) {
                uint8_t scratch[16384];
                ssize_t r;
                if (rx->iov) {
                    while (rx->niov && rx->iov->iov_len == 0) {
                        rx->iov++;
                        rx->niov--;
                    }
                    r = readv(s->conn.fd, rx->iov, rx->niov < MUX_MAX_IOV ? rx->niov : MUX_MAX_IOV);
                } else {
                    r = read(s->conn.fd, scratch, rx->data_left < sizeof(scratch)
                                                      ? rx->data_left : sizeof(scratch));
                }
                if (r == 0)
                    return KVCACHE_ECLOSED;
                if (r < 0) {
                    if (errno == EINTR)
                        continue;
                    return errno == EAGAIN ? STEP_WAIT : -errno;
                }
                rx->data_left -= (uint64_t)r;
                for (size_t done = (size_t)r; rx->iov && done;) {
                    size_t k = done < rx->iov->iov_len ? done : rx->iov->iov_len;
                    rx->iov->iov_base = (char *)rx->iov->iov_base + k;
                    rx->iov->iov_len -= k;
                    done -= k;
                    if (rx->iov->iov_len == 0 && rx->niov > 1) {
                        rx->iov++;
                        rx->niov--;
                    }
                }
            }
            rx->cur->state = XF_DONE;
            rx->cur = NULL;
            rx->phase = RX_HDR;
            rx->got = 0;
            m->pending--;
            break;
        }
    }
    return 0;
}

int kcc_mux_run(struct kcc_server *srv, const struct kcc_mux_cfg *cfg,
                struct kcc_xfer **x, size_t n, uint64_t deadline)
{
    uint32_t nsrv = 0;
    struct mux_srv *m;
    struct pollfd *pfd;
    uint32_t *pidx;
    int rc;

    for (size_t i = 0; i < n; i++) {
        x[i]->rc = 0;
        x[i]->code = 0;
        x[i]->state = XF_QUEUED;
        x[i]->pb = NULL;
        if (x[i]->server + 1 > nsrv)
            nsrv = x[i]->server + 1;
    }
    m = calloc(nsrv ? nsrv : 1, sizeof(*m));
    pfd = calloc(nsrv ? nsrv : 1, sizeof(*pfd));
    pidx = calloc(nsrv ? nsrv : 1, sizeof(*pidx));
    if (!m || !pfd || !pidx) {
        rc = KVCACHE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        m[x[i]->server].nxf++;
    for (uint32_t s = 0; s < nsrv; s++) {
        m[s].xf = calloc(m[s].nxf ? m[s].nxf : 1, sizeof(*m[s].xf));
        if (m[s].xf == NULL) {
            rc = KVCACHE_ENOMEM;
            goto out;
        }
        m[s].nxf = 0;
    }
    for (size_t i = 0; i < n; i++)
        m[x[i]->server].xf[m[x[i]->server].nxf++] = x[i];
    for (uint32_t s = 0; s < nsrv; s++) {
        if (m[s].nxf == 0)
            continue;
        rc = mux_start(&srv[s], &m[s], cfg, deadline);
        if (rc)
            mux_fail(&srv[s], &m[s], cfg, rc);
    }
    for (;;) {
        int np = 0;
        uint64_t now;
        for (uint32_t s = 0; s < nsrv; s++) {
            short ev = 0;
            if (m[s].pending == 0)
                continue;
            rc = mux_send(&srv[s], &m[s]);
            if (rc == STEP_WAIT)
                ev |= POLLOUT;
            else if (rc) {
                mux_fail(&srv[s], &m[s], cfg, rc);
                continue;
            }
            rc = mux_recv(&srv[s], &m[s]);
            if (rc == STEP_WAIT)
                ev |= POLLIN;
            else if (rc) {
                mux_fail(&srv[s], &m[s], cfg, rc);
                continue;
            }
            if (m[s].pending) {
                pfd[np] = (struct pollfd){.fd = srv[s].conn.fd, .events = ev};
                pidx[np++] = s;
            }
        }
        if (np == 0)
            break;
        now = kcc_now_ms();
        if (now >= deadline || poll(pfd, (nfds_t)np, (int)(deadline - now)) == 0) {
            for (int i = 0; i < np; i++)
                mux_fail(&srv[pidx[i]], &m[pidx[i]], cfg, KVCACHE_ETIMEDOUT);
            break;
        }
    }
    rc = 0;
out:
    if (rc)
        for (size_t i = 0; i < n; i++)
            x[i]->rc = rc;
    if (m)
        for (uint32_t s = 0; s < nsrv; s++) {
            free(m[s].xf);
            free(m[s].out);
        }
    for (size_t i = 0; i < n; i++) {
        free(x[i]->pb);
        x[i]->pb = NULL;
    }
    free(m);
    free(pfd);
    free(pidx);
    return rc;
}
