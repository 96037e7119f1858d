/*
 * kcc_conn.c - sockets with deadlines.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kvcache.h"
#include "kcc_conn.h"

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
