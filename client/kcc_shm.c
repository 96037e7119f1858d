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
#include "kcc_raw.h"
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
    struct kcc_raw_resp r = {0};
    const char *env = getenv("KVCACHE_SHM");
    int rc;

    s->shm.tried_gen = s->conn.nconnects;
    if (s->conn.uri->kind != KCC_URI_UNIX || s->conn.uri->no_shm ||
        (env && strcmp(env, "0") == 0))
        return 0;
    req.id = s->next_id++;
    req.op_case = KVCACHE__REQUEST__OP_ATTACH;
    req.attach = &ar;
    rc = kcc_raw_send(&s->conn, &req, NULL, 0, deadline_ms);
    if (rc == 0)
        rc = kcc_raw_recv(&s->conn, SHM_ATTACH_MAX, 0, &r, deadline_ms);
    if (rc == 0 && r.r->id != req.id)
        rc = KVCACHE_EPROTO;
    /* a daemon that offers none answers an error: the socket path stays */
    if (rc == 0 && r.r->code == KVCACHE__CODE__OK &&
        r.r->result_case == KVCACHE__RESPONSE__RESULT_ATTACH &&
        shm_map(&s->shm, r.r->attach, r.fds, r.nfds) == 0)
        s->shm.conn_gen = s->conn.nconnects;
    kcc_raw_resp_free(&r);         /* closes the descriptors: the maps stay;
                                      also after a wrong id */
    return rc;
}

void kcc_shm_release(struct kcc_server *s, uint64_t gen, const uint64_t *leases, size_t n,
                     uint64_t deadline_ms)
{
    Kvcache__Request req = KVCACHE__REQUEST__INIT;
    Kvcache__ReleaseRequest rr = KVCACHE__RELEASE_REQUEST__INIT;
    int rc;

    if (n == 0 || s->conn.fd < 0 || KCC_GEN(gen) != KCC_GEN(s->conn.nconnects))
        return;
    req.id = s->next_id++;
    req.op_case = KVCACHE__REQUEST__OP_RELEASE;
    req.release = &rr;
    rr.n_leases = n;
    rr.leases = (uint64_t *)leases;
    /* on failure the lease timeout ends them */
    rc = kcc_raw_send(&s->conn, &req, NULL, 0, deadline_ms);
    if (rc && rc != KVCACHE_ENOMEM)
        kcc_conn_close(&s->conn);   /* mid-frame: the stream is lost */
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
