/*
 * kcc_conn.c - sockets with deadlines.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kvcache.h"
#include "kcc_conn.h"
#include "kc_frame.h"
#include "kvcache.pb-c.h"

/* Longest token read from $KVCACHE_TOKEN_FILE. */
#define CONN_TOKEN_MAX 1024

#define CONN_MAX_IOV 1024  /* iovecs handed to one readv/sendmsg */

uint64_t kcc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void kcc_conn_init(struct kcc_conn *c, const struct kcc_uri *uri)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->uri = uri;
}

void kcc_conn_close(struct kcc_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

void kcc_conn_deinit(struct kcc_conn *c)
{
    kcc_conn_close(c);
}

int kcc_conn_wait(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = kcc_now_ms();
        struct pollfd p = {.fd = fd, .events = events};
        int r;
        if (now >= deadline_ms)
            return KVCACHE_ETIMEDOUT;
        r = poll(&p, 1, (int)(deadline_ms - now));
        if (r > 0)
            return 0;  /* errors and hangups show up in the next I/O call */
        if (r == 0)
            return KVCACHE_ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* Non-blocking connect of a new socket to addr, within the deadline. */
static int conn_connect_addr(int family, const struct sockaddr *addr, socklen_t alen,
                             uint64_t deadline_ms, int *fdp)
{
    int fd, rc, one = 1, soerr = 0;
    socklen_t slen = sizeof(soerr);

    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (family != AF_UNIX)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, addr, alen) == 0)
        goto done;
    if (errno != EINPROGRESS && errno != EAGAIN) {
        rc = -errno;
        goto err;
    }
    rc = kcc_conn_wait(fd, POLLOUT, deadline_ms);
    if (rc)
        goto err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0 || soerr) {
        rc = soerr ? -soerr : -errno;
        goto err;
    }
done:
    *fdp = fd;
    return 0;
err:
    close(fd);
    return rc;
}

/* The token to present: $KVCACHE_TOKEN, else the first line of the file
 * $KVCACHE_TOKEN_FILE; its length, 0 when neither is set. */
static size_t conn_token(char *buf, size_t cap)
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

/* Present the token (if any) as the connection's first request and wait
 * for the answer. 0, KVCACHE_ESERVER (refused) or a transport error. */
static int conn_auth(struct kcc_conn *c, uint64_t deadline_ms)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__AuthRequest a = KVCACHE__AUTH_REQUEST__INIT;
    struct kc_frame_hdr h = {KC_FRAME_VERSION, 0, 0, 0};
    uint8_t frame[KC_FRAME_HDR_LEN + CONN_TOKEN_MAX + 32], hdr[KC_FRAME_HDR_LEN];
    uint8_t pb[256];
    char tok[CONN_TOKEN_MAX + 1];
    size_t n = conn_token(tok, sizeof(tok));
    struct iovec iov;
    Kvcache__Response *r;
    int rc;

    if (n == 0)
        return 0;
    a.token.data = (uint8_t *)tok;
    a.token.len = n;
    q.id = UINT64_MAX;       /* never one of the handle's own ids */
    q.op_case = KVCACHE__REQUEST__OP_AUTH;
    q.auth = &a;
    h.pb_len = (uint32_t)kvcache__request__pack(&q, frame + KC_FRAME_HDR_LEN);
    kc_frame_encode(frame, &h);
    memset(tok, 0, sizeof(tok));
    iov = (struct iovec){.iov_base = frame, .iov_len = KC_FRAME_HDR_LEN + h.pb_len};
    rc = kcc_conn_writev(c, &iov, 1, deadline_ms);
    memset(frame, 0, sizeof(frame));
    if (rc == 0)
        rc = kcc_conn_read(c, hdr, sizeof(hdr), deadline_ms);
    if (rc)
        return rc;
    if (kc_frame_decode(hdr, sizeof(pb), 0, &h) != 0)
        return KVCACHE_EPROTO;
    rc = kcc_conn_read(c, pb, h.pb_len, deadline_ms);
    if (rc)
        return rc;
    r = kvcache__response__unpack(NULL, h.pb_len, pb);
    if (r == NULL)
        return KVCACHE_EPROTO;
    rc = r->code == KVCACHE__CODE__OK && r->result_case ==
         KVCACHE__RESPONSE__RESULT_AUTH ? 0 : KVCACHE_ESERVER;
    kvcache__response__free_unpacked(r, NULL);
    return rc;
}

int kcc_conn_ensure(struct kcc_conn *c, uint64_t deadline_ms, int connect_ms)
{
    uint64_t cdl = kcc_now_ms() + (uint64_t)connect_ms;
    int rc;

    if (c->fd >= 0)
        return 0;
    if (cdl > deadline_ms)
        cdl = deadline_ms;
    if (c->uri->kind == KCC_URI_UNIX) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        memcpy(sun.sun_path, c->uri->path, sizeof(sun.sun_path));
        rc = conn_connect_addr(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun), cdl, &c->fd);
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
        int g = getaddrinfo(c->uri->host, c->uri->port, &hints, &res);
        if (g)
            return g == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
        rc = -EHOSTUNREACH;
        for (ai = res; ai; ai = ai->ai_next) {
            rc = conn_connect_addr(ai->ai_family, ai->ai_addr, ai->ai_addrlen, cdl, &c->fd);
            if (rc == 0 || rc == KVCACHE_ETIMEDOUT)
                break;
        }
        freeaddrinfo(res);
    }
    if (rc == 0 && (rc = conn_auth(c, deadline_ms)) != 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (rc == 0)
        c->nconnects++;
    else
        c->fd = -1;
    return rc;
}

int kcc_conn_stale(const struct kcc_conn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

/* Drop the first `done` bytes from iov[0..*n), advancing *iovp. */
static void iov_advance(struct iovec **iovp, int *n, size_t done)
{
    struct iovec *iov = *iovp;
    while (*n > 0 && done >= iov->iov_len) {
        done -= iov->iov_len;
        iov++;
        (*n)--;
    }
    if (*n > 0) {
        iov->iov_base = (char *)iov->iov_base + done;
        iov->iov_len -= done;
    }
    *iovp = iov;
}

/* Skip leading empty entries, so that a finished transfer has n == 0. */
static void iov_trim(struct iovec **iovp, int *n)
{
    while (*n > 0 && (*iovp)->iov_len == 0) {
        (*iovp)++;
        (*n)--;
    }
}

int kcc_conn_writev(struct kcc_conn *c, struct iovec *iov, int n, uint64_t deadline_ms)
{
    for (iov_trim(&iov, &n); n > 0; iov_trim(&iov, &n)) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)(n < CONN_MAX_IOV ? n : CONN_MAX_IOV)};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w > 0) {
            iov_advance(&iov, &n, (size_t)w);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return -errno;
        int rc = kcc_conn_wait(c->fd, POLLOUT, deadline_ms);
        if (rc)
            return rc;
    }
    return 0;
}

int kcc_conn_read_retry(int fd, ssize_t r, uint64_t deadline_ms)
{
    if (r == 0)
        return KVCACHE_ECLOSED;
    if (errno == EINTR)
        return 0;
    if (errno != EAGAIN)
        return -errno;
    return kcc_conn_wait(fd, POLLIN, deadline_ms);
}

int kcc_conn_readv(struct kcc_conn *c, struct iovec *iov, int n, uint64_t deadline_ms)
{
    for (iov_trim(&iov, &n); n > 0; iov_trim(&iov, &n)) {
        ssize_t r = readv(c->fd, iov, n < CONN_MAX_IOV ? n : CONN_MAX_IOV);
        if (r > 0) {
            iov_advance(&iov, &n, (size_t)r);
            continue;
        }
        int rc = kcc_conn_read_retry(c->fd, r, deadline_ms);
        if (rc)
            return rc;
    }
    return 0;
}

int kcc_conn_read(struct kcc_conn *c, void *buf, size_t len, uint64_t deadline_ms)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    return kcc_conn_readv(c, &iov, 1, deadline_ms);
}
