/*
 * kcc_shm.c - Attach (region and staging area received with SCM_RIGHTS and
 * mapped), offsets to pointers, and releases of leases.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kc_frame.h"
#include "kcc_mux.h"
#include "kcc_shm.h"
#include "kvcache.h"

/* Largest Attach answer read. */
#define SHM_ATTACH_MAX 4096

uint64_t kcc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int kcc_shm_on(const struct kcc_server *s)
{
    return s->conn.fd >= 0 && s->shm.conn_gen == s->conn.nconnects && s->shm.region;
}

const void *kcc_shm_ptr(const struct kcc_server *s, uint64_t off, uint64_t len)
{
    if (s->shm.region == NULL || off > s->shm.region_size ||
        len > s->shm.region_size - off)
        return NULL;
    return s->shm.region + off;
}

/* Keep a mapping until the handle ends. */
static void shm_keep(struct kcc_shm *sh, void *base, size_t size)
{
    struct kcc_map *m = malloc(sizeof(*m));

    if (m == NULL)
        return;   /* leaked mapping rather than a dangling reference */
    *m = (struct kcc_map){sh->old, base, size};
    sh->old = m;
}

/* Read exactly len bytes, collecting up to 2 passed fds. 0 or an error. */
static int shm_recv(int fd, uint8_t *buf, size_t len, int *fds, int *nfds,
                    uint64_t deadline_ms)
{
    size_t got = 0;

    while (got < len) {
        union { char b[CMSG_SPACE(2 * sizeof(int))]; struct cmsghdr align; } u;
        struct iovec iov = {buf + got, len - got};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                            .msg_controllen = sizeof(u.b)};
        ssize_t r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

        if (r > 0) {
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                    continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                    int f;
                    memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                    if (*nfds < 2)
                        fds[(*nfds)++] = f;
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

/* Map what an Attach answer gave. */
static int shm_map(struct kcc_shm *sh, const Kvcache__AttachResponse *a, const int *fds,
                   int nfds)
{
    if (nfds < 1 || a->region_size == 0 || a->region_size > SIZE_MAX)
        return KVCACHE_EPROTO;
    if (sh->region == NULL || sh->region_id != a->region_id) {
        void *p = mmap(NULL, a->region_size, PROT_READ, MAP_SHARED, fds[0], 0);
        if (p == MAP_FAILED)
            return -errno;
        if (sh->region)
            shm_keep(sh, (void *)sh->region, sh->region_size);
        sh->region = p;
        sh->region_size = a->region_size;
        sh->region_id = a->region_id;
    }
    if (sh->staging) {
        if (sh->staging_out)
            shm_keep(sh, sh->staging, sh->staging_size);
        else
            munmap(sh->staging, sh->staging_size);
        sh->staging = NULL;
        sh->staging_size = sh->staging_used = sh->staging_out = 0;
    }
    if (nfds > 1 && a->staging_size && a->staging_size <= SIZE_MAX) {
        void *p = mmap(NULL, a->staging_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
        if (p != MAP_FAILED) {
            sh->staging = p;
            sh->staging_size = a->staging_size;
            sh->staging_id = a->staging_id;
        }
    }
    sh->lease_timeout_ms = a->lease_timeout_ms;
    return 0;
}

int kcc_shm_attach(struct kcc_server *s, uint64_t deadline_ms)
{
    Kvcache__Request req = KVCACHE__REQUEST__INIT;
    Kvcache__AttachRequest ar = KVCACHE__ATTACH_REQUEST__INIT;
    Kvcache__Response *resp = NULL;
    struct kc_frame_hdr h = {.version = KC_FRAME_VERSION};
    uint8_t out[KC_FRAME_HDR_LEN + 32], hdr[KC_FRAME_HDR_LEN], *pb = NULL;
    const char *env = getenv("KVCACHE_SHM");
    int fds[2], nfds = 0, rc;
    struct iovec iov;

    s->shm.tried_gen = s->conn.nconnects;
    if (s->conn.uri->kind != KCC_URI_UNIX || s->conn.uri->no_shm ||
        (env && strcmp(env, "0") == 0))
        return 0;
    req.id = s->next_id++;
    req.op_case = KVCACHE__REQUEST__OP_ATTACH;
    req.attach = &ar;
    h.pb_len = (uint32_t)kvcache__request__pack(&req, out + KC_FRAME_HDR_LEN);
    kc_frame_encode(out, &h);
    iov = (struct iovec){out, KC_FRAME_HDR_LEN + h.pb_len};
    rc = kcc_conn_writev(&s->conn, &iov, 1, deadline_ms);
    if (rc == 0)
        rc = shm_recv(s->conn.fd, hdr, sizeof(hdr), fds, &nfds, deadline_ms);
    if (rc == 0) {
        rc = kc_frame_decode(hdr, SHM_ATTACH_MAX, 0, &h) != 0 ? KVCACHE_EPROTO : 0;
    }
    if (rc == 0) {
        pb = malloc(h.pb_len ? h.pb_len : 1);
        rc = pb ? shm_recv(s->conn.fd, pb, h.pb_len, fds, &nfds, deadline_ms) : KVCACHE_ENOMEM;
    }
    if (rc == 0) {
        resp = kvcache__response__unpack(NULL, h.pb_len, pb);
        rc = resp == NULL || resp->id != req.id ? KVCACHE_EPROTO : 0;
    }
    /* a daemon that offers none answers an error: the socket path stays */
    if (rc == 0 && resp->code == KVCACHE__CODE__OK &&
        resp->result_case == KVCACHE__RESPONSE__RESULT_ATTACH &&
        shm_map(&s->shm, resp->attach, fds, nfds) == 0)
        s->shm.conn_gen = s->conn.nconnects;
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    if (resp)
        kvcache__response__free_unpacked(resp, NULL);
    free(pb);
    return rc;
}

void kcc_shm_release(struct kcc_server *s, uint64_t gen, const uint64_t *leases, size_t n,
                     uint64_t deadline_ms)
{
    Kvcache__Request req = KVCACHE__REQUEST__INIT;
    Kvcache__ReleaseRequest rr = KVCACHE__RELEASE_REQUEST__INIT;
    struct kc_frame_hdr h = {.version = KC_FRAME_VERSION};
    uint8_t hdr[KC_FRAME_HDR_LEN], *pb;
    struct iovec iov[2];
    size_t len;

    if (n == 0 || s->conn.fd < 0 || KCC_GEN(gen) != KCC_GEN(s->conn.nconnects))
        return;
    req.id = s->next_id++;
    req.op_case = KVCACHE__REQUEST__OP_RELEASE;
    req.release = &rr;
    rr.n_leases = n;
    rr.leases = (uint64_t *)leases;
    len = kvcache__request__get_packed_size(&req);
    pb = malloc(len ? len : 1);
    if (pb == NULL)
        return;   /* the lease timeout ends them */
    kvcache__request__pack(&req, pb);
    h.pb_len = (uint32_t)len;
    kc_frame_encode(hdr, &h);
    iov[0] = (struct iovec){hdr, sizeof(hdr)};
    iov[1] = (struct iovec){pb, len};
    if (kcc_conn_writev(&s->conn, iov, 2, deadline_ms) != 0)
        kcc_conn_close(&s->conn);   /* mid-frame: the stream is lost */
    free(pb);
}

void kcc_shm_deinit(struct kcc_shm *sh)
{
    if (sh->region)
        munmap((void *)sh->region, sh->region_size);
    if (sh->staging)
        munmap(sh->staging, sh->staging_size);
    while (sh->old) {
        struct kcc_map *m = sh->old;
        sh->old = m->next;
        munmap(m->base, m->size);
        free(m);
    }
    memset(sh, 0, sizeof(*sh));
}
