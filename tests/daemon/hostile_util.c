/*
 * hostile_util.c - helpers shared by the cases of test_hostile.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/kvcache.h"
#include "hostile.h"
#include "kc_tclient.h"


/* Seconds on the monotonic clock. */
double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One request, its response checked to decode. */
void roundtrip(struct tc *c, Kvcache__Request *q, struct tc_resp *rs)
{
    tc_send(c, q, NULL, 0);
    CHECK(tc_recv(c, rs) == 0);
}

/* A blocking TCP connection to 127.0.0.1:port (rcvbuf > 0: that receive
 * buffer, set before connect), or -1. */
int tcp_connect_buf(int port, int rcvbuf)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd >= 0 && rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* A TCP connection to 127.0.0.1:port, or -1. */
int tcp_connect(int port)
{
    return tcp_connect_buf(port, 0);
}

/* One metric of GET /metrics, or -1. */
long long metric(int port, const char *name)
{
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    char *buf = malloc(1 << 20), key[128], *p;
    size_t len = 0;
    long long v = -1;
    int fd = tcp_connect(port);
    ssize_t n;

    CHECK(fd >= 0 && buf != NULL);
    CHECK(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == sizeof(req) - 1);
    while (len < (1 << 20) - 1 && (n = recv(fd, buf + len, (1 << 20) - 1 - len,
                                            0)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
    snprintf(key, sizeof(key), "\nkvcached_%s ", name);
    if ((p = strstr(buf, key)) != NULL)
        v = atoll(p + strlen(key));
    free(buf);
    return v;
}

/* Resident memory of the daemon in KiB. */
long rss_kib(void)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)d.pid);
    f = fopen(path, "r");
    CHECK(f != NULL);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* The memcache port from the daemon's port file, or -1. */
int memcache_port(void)
{
    char pf[300];
    int tcp, met, pid, mc = -1;
    FILE *f;

    snprintf(pf, sizeof(pf), "%s/ports", d.dir);
    f = fopen(pf, "r");
    CHECK(f != NULL);
    if (fscanf(f, "tcp=%d metrics=%d pid=%d memcache=%d", &tcp, &met, &pid,
               &mc) != 4)
        mc = -1;
    fclose(f);
    return mc;
}

/* Send all of buf on a blocking fd. */
void send_all(int fd, const void *buf, size_t len)
{
    CHECK(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len);
}

/* Send a Put header for n blocks of len bytes and the first `some` data
 * bytes, no more: its first block's slot stays reserved. */
void put_head_only(struct tc *c, uint64_t ns, uint64_t base, size_t n,
                   uint32_t len, size_t some)
{
    uint8_t *zero = calloc(1, some + 1);

    CHECK(zero != NULL);
    tc_send_put_head(c, ns, base, n, len, (uint64_t)n * len);
    CHECK(tc_send_raw(c, zero, some) == 0);
    free(zero);
}
