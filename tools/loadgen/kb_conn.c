/*
 * kb_conn.c - the two protocols of the load generator (kb_conn.h).
 *
 * memcache text protocol: "get k1 k2 ...\r\n" answered by one
 * "VALUE <key> <flags> <bytes>\r\n<data>\r\n" per hit then "END\r\n";
 * "set <key> 0 0 <bytes>\r\n<data>\r\n" answered by "STORED\r\n" (or an
 * error line, e.g. "SERVER_ERROR out of memory storing object" under -M).
 * Keys are the 32 hex digits of the block key (hi then lo). Values are
 * received straight into the caller's buffers.
 */
#include "kb_conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define MC_RBUF (64u * 1024)

int kb_conn_open(struct kb_conn *c, const struct kb_target *t)
{
    int rc;

    memset(c, 0, sizeof(*c));
    c->t = t;
    c->fd = -1;
    if (t->proto == KB_KVCACHED) {
        kvcache_options_t o = { .timeout_ms = t->timeout_ms,
                                .connect_timeout_ms = 1000 };
        c->kc = kvcache_create(t->servers, &o, &rc);
        if (c->kc == NULL) {
            snprintf(c->err, sizeof(c->err), "%s: %s", t->servers, kvcache_strerror(rc));
            return rc;
        }
        return 0;
    }
    if (t->mc_port == 0) {   /* a Unix socket: mc_host is its path */
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", t->mc_host);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
            rc = -errno;
            snprintf(c->err, sizeof(c->err), "unix:%s: %s", t->mc_host, strerror(errno));
            kb_conn_close(c);
            return rc;
        }
        goto connected;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    char port[16];
    snprintf(port, sizeof(port), "%d", t->mc_port);
    if ((rc = getaddrinfo(t->mc_host, port, &hints, &ai)) != 0) {
        snprintf(c->err, sizeof(c->err), "%s: %s", t->mc_host, gai_strerror(rc));
        return -EHOSTUNREACH;
    }
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        rc = -errno;
        snprintf(c->err, sizeof(c->err), "%s:%d: %s", t->mc_host, t->mc_port, strerror(errno));
        freeaddrinfo(ai);
        kb_conn_close(c);
        return rc;
    }
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
connected:
    c->rcap = MC_RBUF;
    c->rbuf = malloc(c->rcap);
    if (c->rbuf == NULL) {
        kb_conn_close(c);
        return -ENOMEM;
    }
    return 0;
}

void kb_conn_close(struct kb_conn *c)
{
    kvcache_destroy(c->kc);
    c->kc = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->rbuf);
    c->rbuf = NULL;
}

int kb_open_ns(const struct kb_target *t, const char *model, uint32_t tokens_per_block,
               uint32_t block_bytes, uint64_t *ns, char *err, size_t errlen)
{
    kvcache_ns_desc_t d = { .model = model, .layer_begin = 0, .layer_end = 1,
                            .tokens_per_block = tokens_per_block, .dtype = "bf16",
                            .kv_heads = 8, .head_dim = 128, .block_bytes = block_bytes };
    int rc;

    *ns = 0;
    if (t->proto != KB_KVCACHED)
        return 0;
    kvcache_options_t o = { .timeout_ms = t->timeout_ms, .connect_timeout_ms = 1000 };
    kvcache_t *kc = kvcache_create(t->servers, &o, &rc);
    if (kc == NULL) {
        snprintf(err, errlen, "%s: %s", t->servers, kvcache_strerror(rc));
        return rc;
    }
    rc = kvcache_open_namespace(kc, &d, ns);
    if (rc)
        snprintf(err, errlen, "open namespace on %s: %s (%s)", t->servers,
                 kvcache_strerror(rc), kvcache_last_error(kc));
    kvcache_destroy(kc);
    return rc;
}

/* ---- memcache ---- */

/* The memcache key of a block: 32 hex digits, hi then lo. */
static void mc_key(char out[33], kvcache_key_t k)
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)k.hi, (unsigned long long)k.lo);
}

/* Send every byte of iov (a short write is continued). */
static int mc_sendv(struct kb_conn *c, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Receive more bytes into the read buffer (compacting it first). */
static int mc_fill(struct kb_conn *c)
{
    if (c->roff > 0) {
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    if (c->rlen == c->rcap)
        return -EPROTO;   /* a line longer than the buffer */
    for (;;) {
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (r > 0) {
            c->rlen += (size_t)r;
            return 0;
        }
        if (r == 0)
            return -ECONNRESET;
        if (errno != EINTR)
            return -errno;
    }
}

/* Next line (without \r\n), NUL-terminated in place. */
static int mc_line(struct kb_conn *c, char **line)
{
    for (;;) {
        char *s = c->rbuf + c->roff;
        char *nl = memchr(s, '\n', c->rlen - c->roff);
        if (nl) {
            *nl = '\0';
            if (nl > s && nl[-1] == '\r')
                nl[-1] = '\0';
            c->roff = (size_t)(nl + 1 - c->rbuf);
            *line = s;
            return 0;
        }
        int rc = mc_fill(c);
        if (rc)
            return rc;
    }
}

/* Exactly len bytes into dst (NULL: discard), buffered bytes first. */
static int mc_read(struct kb_conn *c, char *dst, size_t len)
{
    size_t have = c->rlen - c->roff, take = have < len ? have : len;
    if (dst)
        memcpy(dst, c->rbuf + c->roff, take);
    c->roff += take;
    len -= take;
    if (dst)
        dst += take;
    while (len > 0) {
        if (dst == NULL) {
            int rc = mc_fill(c);
            if (rc)
                return rc;
            take = c->rlen - c->roff < len ? c->rlen - c->roff : len;
            c->roff += take;
            len -= take;
            continue;
        }
        ssize_t r = recv(c->fd, dst, len, MSG_WAITALL);
        if (r == 0)
            return -ECONNRESET;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        dst += r;
        len -= (size_t)r;
    }
    return 0;
}

/* After an error line: send "mn" (meta no-op) and skip everything up to
 * its "MN", values included, so the next request starts in step. */
static int mc_resync(struct kb_conn *c)
{
    struct iovec iov = { "mn\r\n", 4 };
    int rc = mc_sendv(c, &iov, 1);
    while (rc == 0) {
        char *line, key[251];
        unsigned flags;
        unsigned long long bytes;
        if ((rc = mc_line(c, &line)) != 0)
            break;
        if (strcmp(line, "MN") == 0)
            return 0;
        if (sscanf(line, "VALUE %250s %u %llu", key, &flags, &bytes) == 3)
            rc = mc_read(c, NULL, bytes + 2);
    }
    return rc;
}

static int mc_get(struct kb_conn *c, const kvcache_key_t *keys, size_t n, bool prefix,
                  void *const *bufs, size_t block_len, uint32_t *lens, size_t *found)
{
    char (*names)[33] = malloc(n * 33);
    struct iovec *iov = malloc((2 * n + 2) * sizeof(*iov));
    int rc = -ENOMEM;
    size_t next = 0, hits = 0;

    if (names == NULL || iov == NULL)
        goto out;
    iov[0] = (struct iovec){ "get", 3 };
    for (size_t i = 0; i < n; i++) {
        mc_key(names[i], keys[i]);
        iov[1 + 2 * i] = (struct iovec){ " ", 1 };
        iov[2 + 2 * i] = (struct iovec){ names[i], 32 };
        lens[i] = 0;
    }
    iov[1 + 2 * n] = (struct iovec){ "\r\n", 2 };
    if ((rc = mc_sendv(c, iov, (int)(2 * n + 2))) != 0)
        goto out;
    for (;;) {
        char *line, key[251];
        unsigned flags;
        unsigned long long bytes;
        if ((rc = mc_line(c, &line)) != 0)
            goto out;
        if (strcmp(line, "END") == 0)
            break;
        if (!strncmp(line, "SERVER_ERROR", 12) || !strncmp(line, "ERROR", 5) ||
            !strncmp(line, "CLIENT_ERROR", 12)) {
            /* e.g. memcached -M with extstore: "SERVER_ERROR out of memory
             * writing get response". The rest of this answer is dropped:
             * resynchronise on a meta no-op before the next request. */
            snprintf(c->err, sizeof(c->err), "memcache get: %.200s", line);
            rc = mc_resync(c);
            if (rc == 0)
                rc = KVCACHE_ESERVER;
            goto out;
        }
        if (sscanf(line, "VALUE %250s %u %llu", key, &flags, &bytes) != 3) {
            snprintf(c->err, sizeof(c->err), "memcache: unexpected \"%.100s\"", line);
            rc = -EPROTO;
            goto out;
        }
        /* hits come back in key order; find this one */
        while (next < n && strcmp(names[next], key) != 0)
            next++;
        if (next == n || bytes > block_len) {
            rc = mc_read(c, NULL, bytes + 2);
            if (rc == 0)
                rc = -EPROTO;
            snprintf(c->err, sizeof(c->err), "memcache: unexpected value %.64s", key);
            goto out;
        }
        if ((rc = mc_read(c, bufs[next], bytes)) != 0 || (rc = mc_read(c, NULL, 2)) != 0)
            goto out;
        lens[next++] = (uint32_t)bytes;
        hits++;
    }
    if (prefix) {
        size_t run = 0;
        while (run < n && lens[run])
            run++;
        *found = run;
    } else {
        *found = hits;
    }
    rc = 0;
out:
    if (rc)
        *found = 0;
    free(names);
    free(iov);
    return rc;
}

static int mc_put(struct kb_conn *c, const kvcache_key_t *keys, size_t n,
                  const void *const *bufs, size_t block_len, size_t *stored)
{
    int rc = 0;

    *stored = 0;
    /* one set at a time: memcached answers each, and a pipelined burst of
     * large values would only queue in the socket buffers */
    for (size_t i = 0; i < n; i++) {
        char hdr[96], *line;
        kvcache_key_t k = keys[i];
        int hl = snprintf(hdr, sizeof(hdr), "set %016llx%016llx 0 0 %zu\r\n",
                          (unsigned long long)k.hi, (unsigned long long)k.lo, block_len);
        struct iovec iov[3] = { { hdr, (size_t)hl }, { (void *)bufs[i], block_len },
                                { "\r\n", 2 } };
        if ((rc = mc_sendv(c, iov, 3)) != 0 || (rc = mc_line(c, &line)) != 0)
            return rc;
        if (strcmp(line, "STORED") == 0) {
            (*stored)++;
        } else {
            snprintf(c->err, sizeof(c->err), "memcache set: %.200s", line);
            rc = KVCACHE_ENOSPACE;
        }
    }
    return rc;
}

/* ---- both ---- */

int kb_get(struct kb_conn *c, const kvcache_key_t *keys, size_t n, bool prefix,
           void *const *bufs, size_t block_len, uint32_t *lens, size_t *found)
{
    int rc;

    if (c->t->proto == KB_MEMCACHE)
        return mc_get(c, keys, n, prefix, bufs, block_len, lens, found);
    if (prefix) {
        memset(lens, 0, n * sizeof(*lens));
        rc = kvcache_get_prefix(c->kc, c->t->ns, keys, n, bufs, block_len, lens, found);
        for (size_t i = *found; i < n; i++)
            lens[i] = 0;
    } else {
        rc = kvcache_get(c->kc, c->t->ns, keys, n, bufs, block_len, lens, found);
    }
    if (rc)
        snprintf(c->err, sizeof(c->err), "%s (%s)", kvcache_strerror(rc),
                 kvcache_last_error(c->kc));
    return rc;
}

int kb_put(struct kb_conn *c, const kvcache_key_t *keys, size_t n, uint32_t first_pos,
           uint32_t hints, const void *const *bufs, size_t block_len, size_t *stored)
{
    int rc;

    if (c->t->proto == KB_MEMCACHE)
        return mc_put(c, keys, n, bufs, block_len, stored);
    rc = kvcache_put_hint(c->kc, c->t->ns, keys, n, first_pos, hints, bufs, block_len, NULL,
                          stored);
    if (rc)
        snprintf(c->err, sizeof(c->err), "%s (%s)", kvcache_strerror(rc),
                 kvcache_last_error(c->kc));
    return rc;
}
