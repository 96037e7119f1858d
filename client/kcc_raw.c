/*
 * kcc_raw.c - blocking single-frame exchanges: the library's own framing
 * of one request and one response, used outside the multiplexer and by
 * the internal entry of tools and tests (kcc_raw.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kc_frame.h"
#include "kcc_client.h"
#include "kcc_raw.h"

#define RAW_MAX_IOV 64              /* data iovecs one request may carry */
#define RAW_DATA_MAX (4ull << 30)   /* data section kcc_raw_call accepts */
#define RAW_TOKEN_MAX 1024          /* longest token read from $KVCACHE_TOKEN_FILE */
#define RAW_SMALL_MAX 4096          /* Auth and Attach answers are small */

/* Send all of iov[0..n) (modified as it goes). */
static int raw_sendv(int fd, struct iovec *iov, int n, uint64_t deadline_ms)
{
    while (n > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            int rc;
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -errno;
            rc = kcc_conn_wait(fd, POLLOUT, deadline_ms);
            if (rc)
                return rc;
            continue;
        }
        for (size_t done = (size_t)w; n > 0 && (done || iov->iov_len == 0);) {
            size_t k = done < iov->iov_len ? done : iov->iov_len;
            iov->iov_base = (char *)iov->iov_base + k;
            iov->iov_len -= k;
            done -= k;
            if (iov->iov_len == 0) {
                iov++;
                n--;
            }
        }
    }
    return 0;
}

int kcc_raw_write(struct kcc_conn *c, const void *buf, size_t len, uint64_t deadline_ms)
{
    struct iovec iov = {(void *)buf, len};
    return raw_sendv(c->fd, &iov, 1, deadline_ms);
}

/* Frame req declaring data_len bytes of data; send the header, the
 * message and data[0..ndata) (adding up to at most data_len). */
static int raw_frame(struct kcc_conn *c, const Kvcache__Request *req, uint64_t data_len,
                     const struct iovec *data, int ndata, uint64_t deadline_ms)
{
    struct kc_frame_hdr h = {.version = KC_FRAME_VERSION, .data_len = data_len};
    struct iovec iov[2 + RAW_MAX_IOV];
    uint8_t hdr[KC_FRAME_HDR_LEN], small[512], *pb = small;
    size_t len = kvcache__request__get_packed_size(req);
    int rc;

    if (len > KC_FRAME_PB_MAX || ndata < 0 || ndata > RAW_MAX_IOV)
        return KVCACHE_EINVAL;
    if (len > sizeof(small) && (pb = malloc(len)) == NULL)
        return KVCACHE_ENOMEM;
    kvcache__request__pack(req, pb);
    h.pb_len = (uint32_t)len;
    for (int i = 0; i < ndata; i++)
        iov[2 + i] = data[i];
    kc_frame_encode(hdr, &h);
    iov[0] = (struct iovec){hdr, sizeof(hdr)};
    iov[1] = (struct iovec){pb, len};
    rc = raw_sendv(c->fd, iov, 2 + ndata, deadline_ms);
    memset(pb, 0, len);            /* an Auth request holds the token */
    if (pb != small)
        free(pb);
    return rc;
}

int kcc_raw_send(struct kcc_conn *c, const Kvcache__Request *req,
                 const struct iovec *data, int ndata, uint64_t deadline_ms)
{
    uint64_t data_len = 0;

    for (int i = 0; i < ndata; i++)
        data_len += data[i].iov_len;
    return raw_frame(c, req, data_len, data, ndata, deadline_ms);
}

int kcc_raw_send_head(struct kcc_conn *c, const Kvcache__Request *req, uint64_t data_len,
                      uint64_t deadline_ms)
{
    return raw_frame(c, req, data_len, NULL, 0, deadline_ms);
}

/* Read exactly len bytes, collecting up to 2 passed descriptors into out. */
static int raw_read(int fd, uint8_t *buf, size_t len, struct kcc_raw_resp *out,
                    uint64_t deadline_ms)
{
    size_t got = 0;

    while (got < len) {
        union { char b[CMSG_SPACE(2 * sizeof(int))]; struct cmsghdr align; } u;
        struct iovec iov = {buf + got, len - got};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                            .msg_controllen = sizeof(u.b)};
        ssize_t r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

        if (r > 0) {
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                    continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                    int f;
                    memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                    if (out->nfds < 2)
                        out->fds[out->nfds++] = f;
                    else
                        close(f);
                }
            }
            got += (size_t)r;
            continue;
        }
        int w = kcc_conn_read_retry(fd, r, deadline_ms);
        if (w)
            return w;
    }
    return 0;
}

void kcc_raw_resp_free(struct kcc_raw_resp *r)
{
    if (r->r)
        kvcache__response__free_unpacked(r->r, NULL);
    free(r->data);
    for (int i = 0; i < r->nfds; i++)
        close(r->fds[i]);
    memset(r, 0, sizeof(*r));
}

int kcc_raw_recv(struct kcc_conn *c, uint32_t pb_max, uint64_t data_max,
                 struct kcc_raw_resp *out, uint64_t deadline_ms)
{
    struct kcc_raw_resp t = {0};
    struct kc_frame_hdr h;
    uint8_t hdr[KC_FRAME_HDR_LEN], *pb = NULL;
    int rc;

    rc = raw_read(c->fd, hdr, sizeof(hdr), &t, deadline_ms);
    if (rc == 0 && (kc_frame_decode(hdr, pb_max, data_max, &h) != 0 ||
                    !(h.flags & KC_FRAME_F_RESPONSE)))
        rc = KVCACHE_EPROTO;
    if (rc == 0 && (pb = malloc(h.pb_len ? h.pb_len : 1)) == NULL)
        rc = KVCACHE_ENOMEM;
    if (rc == 0)
        rc = raw_read(c->fd, pb, h.pb_len, &t, deadline_ms);
    if (rc == 0 && (t.r = kvcache__response__unpack(NULL, h.pb_len, pb)) == NULL)
        rc = KVCACHE_EPROTO;
    if (rc == 0 && h.data_len) {
        t.data_len = h.data_len;
        t.data = h.data_len <= SIZE_MAX ? malloc((size_t)h.data_len) : NULL;
        rc = t.data ? raw_read(c->fd, t.data, (size_t)h.data_len, &t, deadline_ms)
                    : KVCACHE_ENOMEM;
    }
    free(pb);
    if (rc)
        kcc_raw_resp_free(&t);
    else
        *out = t;
    return rc;
}

/* The token to present: $KVCACHE_TOKEN, else the first line of the file
 * $KVCACHE_TOKEN_FILE; its length, 0 when neither is set. */
static size_t raw_token(char *buf, size_t cap)
{
    const char *t = getenv("KVCACHE_TOKEN"), *path = getenv("KVCACHE_TOKEN_FILE");
    size_t n = 0;

    if (t != NULL && *t != '\0') {
        n = strlen(t);
        if (n >= cap)
            return 0;
        memcpy(buf, t, n);
    } else if (path != NULL && *path != '\0') {
        FILE *f = fopen(path, "re");

        if (f == NULL)
            return 0;
        n = fread(buf, 1, cap - 1, f);
        fclose(f);
        buf[n] = '\0';
        n = strcspn(buf, "\r\n");
    }
    return n;
}

int kcc_raw_auth(struct kcc_conn *c, uint64_t deadline_ms)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__AuthRequest a = KVCACHE__AUTH_REQUEST__INIT;
    struct kcc_raw_resp r = {0};
    char tok[RAW_TOKEN_MAX + 1];
    size_t n = raw_token(tok, sizeof(tok));
    int rc;

    if (n == 0)
        return 0;
    a.token.data = (uint8_t *)tok;
    a.token.len = n;
    q.id = UINT64_MAX;       /* never one of the handle's own ids */
    q.op_case = KVCACHE__REQUEST__OP_AUTH;
    q.auth = &a;
    rc = kcc_raw_send(c, &q, NULL, 0, deadline_ms);
    memset(tok, 0, sizeof(tok));
    if (rc == 0)
        rc = kcc_raw_recv(c, RAW_SMALL_MAX, 0, &r, deadline_ms);
    if (rc)
        return rc;
    rc = r.r->code == KVCACHE__CODE__OK && r.r->result_case ==
         KVCACHE__RESPONSE__RESULT_AUTH ? 0 : KVCACHE_ESERVER;
    kcc_raw_resp_free(&r);
    return rc;
}

struct kcc_conn *kcc_raw_conn(kvcache_t *kc, uint32_t server, int *rc)
{
    uint64_t deadline = kcc_now_ms() + (uint64_t)kc->opt.timeout_ms;

    if (server >= kc->nservers) {
        *rc = KVCACHE_EINVAL;
        return NULL;
    }
    *rc = kcc_server_connect(&kc->pool.srv[server], &kc->cfg, deadline);
    return *rc ? NULL : &kc->pool.srv[server].conn;
}

uint64_t kcc_raw_next_id(kvcache_t *kc, uint32_t server)
{
    return server < kc->nservers ? kc->pool.srv[server].next_id++ : 0;
}

int kcc_raw_call(kvcache_t *kc, uint32_t server, Kvcache__Request *req,
                 const void *data, size_t len, struct kcc_raw_resp *out)
{
    uint64_t deadline = kcc_now_ms() + (uint64_t)kc->opt.timeout_ms;
    struct iovec iov = {(void *)data, len};
    struct kcc_conn *c;
    int rc;

    c = kcc_raw_conn(kc, server, &rc);
    if (c == NULL)
        return rc;
    if (req->id == 0)
        req->id = kcc_raw_next_id(kc, server);
    rc = kcc_raw_send(c, req, &iov, len ? 1 : 0, deadline);
    if (rc == 0)
        rc = kcc_raw_recv(c, KC_FRAME_PB_MAX, RAW_DATA_MAX, out, deadline);
    if (rc)
        kcc_conn_close(c);
    return rc;
}
