/*
 * kc_mcbench.c - a memcache text-protocol load generator, for comparing
 * kvcached's memcache port with memcached (+ extstore) and with a pool
 * behind nutcracker on the same workload (bench/memcache.sh runs it).
 *
 *   kc_mcbench fill --port P [--host H] --keys N --value BYTES [--conns C]
 *   kc_mcbench get  --port P [--host H] --keys N --value BYTES [--conns C]
 *                   [--batch B] [--seconds S] [--seed X] [--dontneed FILE]
 *
 * Keys are "<prefix><i>" (--prefix, default "mcb:") or, with --hex NS, the
 * direct form "<NS as 16 hex>:<32 hex>" of kvcached's namespaces. Values
 * are a pattern derived from the key index, checked on every hit.
 * fill: sets keys 0..N-1 (connections take turns by index); a
 * "SERVER_ERROR out of memory" (memcached -M) is retried after 1 ms.
 * get: each connection (one thread, blocking) asks for B random keys per
 * request ("get k1 .. kB") until S seconds have passed.
 * --dontneed FILE: a thread drops FILE's page cache every 20 ms
 * (posix_fadvise DONTNEED), so that a server doing buffered I/O on it
 * (memcached's extstore) reads from the device, as kvcached does.
 * Prints one line: "mode=get conns=C batch=B GB/s=... req/s=... hit=...
 * p50_ms=... p99_ms=... bad=..." (bad: values that did not match).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define MAX_BATCH 256

/* The run's parameters. */
struct cfg {
    const char *host, *prefix, *dontneed;
    int port;
    bool fill;
    uint64_t keys, value, seed, hexns;
    bool hex;
    unsigned conns, batch;
    double seconds;
};

/* One connection's thread and its tallies. */
struct worker {
    const struct cfg *cfg;
    pthread_t th;
    unsigned idx;
    int fd;
    uint8_t *rbuf;               /* input buffer */
    size_t rlen, rpos, rcap;
    uint64_t bytes, reqs, keys, hits, bad, retries;
    double *lat;                 /* request latencies, ms */
    size_t nlat, caplat;
};

static volatile bool stop_dontneed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Name of key i into out; returns its length. */
static int key_name(const struct cfg *c, uint64_t i, char *out)
{
    if (c->hex)
        return sprintf(out, "%016llx:%016llx%016llx", (unsigned long long)c->hexns,
                       (unsigned long long)(i * 0x9e3779b97f4a7c15ull),
                       (unsigned long long)i);
    return sprintf(out, "%s%llu", c->prefix, (unsigned long long)i);
}

/* The value of key i: 8-byte words i*K+w, so any slip shows. */
static void value_fill(uint64_t i, uint8_t *v, uint64_t len)
{
    for (uint64_t w = 0; w + 8 <= len; w += 8) {
        uint64_t x = i * 0x100000001b3ull + w;
        memcpy(v + w, &x, 8);
    }
    for (uint64_t w = len & ~7ull; w < len; w++)
        v[w] = (uint8_t)i;
}

static bool value_check(uint64_t i, const uint8_t *v, uint64_t len)
{
    for (uint64_t w = 0; w + 8 <= len; w += 8) {
        uint64_t x = i * 0x100000001b3ull + w, y;
        memcpy(&y, v + w, 8);
        if (x != y)
            return false;
    }
    return true;
}

static int dial(const struct cfg *c)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (inet_pton(AF_INET, c->host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        perror("connect");
        exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            perror("send");
            exit(1);
        }
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

/* Read until rbuf holds a line; returns it (NUL-terminated, no \r\n). */
static char *read_line(struct worker *w)
{
    for (;;) {
        uint8_t *nl = memchr(w->rbuf + w->rpos, '\n', w->rlen - w->rpos);
        ssize_t r;

        if (nl) {
            char *l = (char *)w->rbuf + w->rpos;
            *nl = '\0';
            if (nl > w->rbuf + w->rpos && nl[-1] == '\r')
                nl[-1] = '\0';
            w->rpos = (size_t)(nl - w->rbuf) + 1;
            return l;
        }
        if (w->rpos > 0) {
            memmove(w->rbuf, w->rbuf + w->rpos, w->rlen - w->rpos);
            w->rlen -= w->rpos;
            w->rpos = 0;
        }
        r = recv(w->fd, w->rbuf + w->rlen, w->rcap - w->rlen, 0);
        if (r <= 0) {
            fprintf(stderr, "connection closed\n");
            exit(1);
        }
        w->rlen += (size_t)r;
    }
}

/* Read n bytes into dst (from the buffer first, then the socket). */
static void read_n(struct worker *w, uint8_t *dst, size_t n)
{
    size_t have = w->rlen - w->rpos;

    if (have > n)
        have = n;
    memcpy(dst, w->rbuf + w->rpos, have);
    w->rpos += have;
    while (have < n) {
        ssize_t r = recv(w->fd, dst + have, n - have, 0);
        if (r <= 0) {
            fprintf(stderr, "connection closed\n");
            exit(1);
        }
        have += (size_t)r;
    }
}

static void *fill_thread(void *arg)
{
    struct worker *w = arg;
    const struct cfg *c = w->cfg;
    uint8_t *v = malloc(c->value + 2);
    char hdr[128], key[80];

    for (uint64_t i = w->idx; i < c->keys; i += c->conns) {
        int hl;

        key_name(c, i, key);
        value_fill(i, v, c->value);
        memcpy(v + c->value, "\r\n", 2);
        hl = sprintf(hdr, "set %s 0 0 %llu\r\n", key, (unsigned long long)c->value);
        for (;;) {
            char *l;

            send_all(w->fd, hdr, (size_t)hl);
            send_all(w->fd, v, c->value + 2);
            l = read_line(w);
            if (strcmp(l, "STORED") == 0)
                break;
            if (strstr(l, "out of memory") == NULL) {
                fprintf(stderr, "set %s: %s\n", key, l);
                exit(1);
            }
            w->retries++;
            usleep(1000);
        }
        w->bytes += c->value;
        w->reqs++;
    }
    free(v);
    return NULL;
}

static void *get_thread(void *arg)
{
    struct worker *w = arg;
    const struct cfg *c = w->cfg;
    uint64_t rng = c->seed * 0x9e3779b97f4a7c15ull + w->idx + 1;
    uint8_t *v = malloc(c->value + 2);
    char *req = malloc(8 + (size_t)c->batch * 81);
    double end = now_s() + c->seconds;

    while (now_s() < end) {
        uint64_t ids[MAX_BATCH];
        size_t n = (size_t)sprintf(req, "get");
        double t0 = now_s();

        for (unsigned b = 0; b < c->batch; b++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            ids[b] = rng % c->keys;
            req[n++] = ' ';
            n += (size_t)key_name(c, ids[b], req + n);
        }
        memcpy(req + n, "\r\n", 2);
        send_all(w->fd, req, n + 2);
        for (;;) {
            char *l = read_line(w), key[96];
            unsigned long long len = 0;
            unsigned fl;
            uint64_t id = UINT64_MAX;

            if (strcmp(l, "END") == 0)
                break;
            if (sscanf(l, "VALUE %95s %u %llu", key, &fl, &len) != 3 || len > c->value) {
                fprintf(stderr, "bad reply: %.80s\n", l);
                exit(1);
            }
            read_n(w, v, len + 2);
            for (unsigned b = 0; b < c->batch; b++) {
                char k2[96];
                key_name(c, ids[b], k2);
                if (strcmp(k2, key) == 0) {
                    id = ids[b];
                    break;
                }
            }
            if (id == UINT64_MAX || len != c->value || !value_check(id, v, len))
                w->bad++;
            w->hits++;
            w->bytes += len;
        }
        w->keys += c->batch;
        w->reqs++;
        if (w->nlat == w->caplat) {
            w->caplat = w->caplat ? 2 * w->caplat : 4096;
            w->lat = realloc(w->lat, w->caplat * sizeof(double));
        }
        w->lat[w->nlat++] = (now_s() - t0) * 1e3;
    }
    free(v);
    free(req);
    return NULL;
}

static void *dontneed_thread(void *arg)
{
    const char *path = arg;

    while (!stop_dontneed) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0) {
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
        usleep(20000);
    }
    return NULL;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    struct cfg c = { .host = "127.0.0.1", .prefix = "mcb:", .keys = 1000,
                     .value = 262144, .conns = 1, .batch = 1, .seconds = 5,
                     .seed = 1 };
    struct worker *ws;
    pthread_t dn;
    double t0, dt;
    uint64_t bytes = 0, reqs = 0, keys = 0, hits = 0, bad = 0, retries = 0;
    size_t nlat = 0;
    double *lat;

    if (argc < 2 || (strcmp(argv[1], "fill") && strcmp(argv[1], "get"))) {
        fprintf(stderr, "usage: kc_mcbench fill|get --port P [--host H] [--keys N] "
                "[--value B] [--conns C] [--batch B] [--seconds S] [--seed X] "
                "[--prefix P | --hex NS] [--dontneed FILE]\n");
        return 2;
    }
    c.fill = strcmp(argv[1], "fill") == 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--port")) c.port = atoi(v);
        else if (!strcmp(o, "--host")) c.host = v;
        else if (!strcmp(o, "--keys")) c.keys = strtoull(v, NULL, 0);
        else if (!strcmp(o, "--value")) c.value = strtoull(v, NULL, 0);
        else if (!strcmp(o, "--conns")) c.conns = (unsigned)atoi(v);
        else if (!strcmp(o, "--batch")) c.batch = (unsigned)atoi(v);
        else if (!strcmp(o, "--seconds")) c.seconds = atof(v);
        else if (!strcmp(o, "--seed")) c.seed = strtoull(v, NULL, 0);
        else if (!strcmp(o, "--prefix")) c.prefix = v;
        else if (!strcmp(o, "--hex")) { c.hex = true; c.hexns = strtoull(v, NULL, 16); }
        else if (!strcmp(o, "--dontneed")) c.dontneed = v;
        else { fprintf(stderr, "unknown option %s\n", o); return 2; }
    }
    if (c.conns < 1 || c.conns > MAX_CONNS || c.batch < 1 || c.batch > MAX_BATCH ||
        c.keys == 0 || c.port <= 0) {
        fprintf(stderr, "kc_mcbench: bad conns, batch, keys or port\n");
        return 2;
    }
    ws = calloc(c.conns, sizeof(*ws));
    for (unsigned i = 0; i < c.conns; i++) {
        ws[i].cfg = &c;
        ws[i].idx = i;
        ws[i].fd = dial(&c);
        ws[i].rcap = 1 << 16;
        ws[i].rbuf = malloc(ws[i].rcap);
    }
    if (c.dontneed)
        pthread_create(&dn, NULL, dontneed_thread, (void *)c.dontneed);
    t0 = now_s();
    for (unsigned i = 0; i < c.conns; i++)
        pthread_create(&ws[i].th, NULL, c.fill ? fill_thread : get_thread, &ws[i]);
    for (unsigned i = 0; i < c.conns; i++) {
        pthread_join(ws[i].th, NULL);
        bytes += ws[i].bytes;
        reqs += ws[i].reqs;
        keys += ws[i].keys;
        hits += ws[i].hits;
        bad += ws[i].bad;
        retries += ws[i].retries;
        nlat += ws[i].nlat;
    }
    dt = now_s() - t0;
    if (c.dontneed) {
        stop_dontneed = true;
        pthread_join(dn, NULL);
    }
    if (c.fill) {
        printf("mode=fill conns=%u value=%llu keys=%llu GB/s=%.3f seconds=%.2f "
               "oom_retries=%llu\n", c.conns, (unsigned long long)c.value,
               (unsigned long long)reqs, (double)bytes / dt / 1e9, dt,
               (unsigned long long)retries);
        return 0;
    }
    lat = malloc((nlat + 1) * sizeof(*lat));
    nlat = 0;
    for (unsigned i = 0; i < c.conns; i++) {
        memcpy(lat + nlat, ws[i].lat, ws[i].nlat * sizeof(double));
        nlat += ws[i].nlat;
    }
    qsort(lat, nlat, sizeof(double), dcmp);
    printf("mode=get conns=%u batch=%u value=%llu GB/s=%.3f req/s=%.0f hit=%.3f "
           "p50_ms=%.2f p99_ms=%.2f bad=%llu\n", c.conns, c.batch,
           (unsigned long long)c.value, (double)bytes / dt / 1e9, (double)reqs / dt,
           keys ? (double)hits / (double)keys : 0.0,
           nlat ? lat[nlat / 2] : 0.0, nlat ? lat[nlat * 99 / 100] : 0.0,
           (unsigned long long)bad);
    return bad ? 1 : 0;
}
