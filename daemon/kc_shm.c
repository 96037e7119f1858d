/*
 * kc_shm.c - the shared region (memfd, huge pages, seals, a bump allocator
 * for the store) and the Attach operation that hands it to a local client
 * with a staging area of its own.
 */
#include "daemon/kc_shm.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_dispatch.h"
#include "daemon/kc_log.h"
#include "daemon/kc_reply.h"
#include "daemon/kc_daemon.h"
#include "kc_frame.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define SHM_HUGE (2ull << 20)    /* huge page, and the allocator's alignment */

/* Free huge pages of the default size, in bytes (0 if unknown). */
static uint64_t shm_hugetlb_free(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    unsigned long long nfree = 0, kb = 0, v;
    char line[128];

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "HugePages_Free: %llu", &v) == 1)
            nfree = v;
        else if (sscanf(line, "Hugepagesize: %llu kB", &v) == 1)
            kb = v;
    }
    fclose(f);
    return kb == 2048 ? nfree * kb * 1024 : 0;
}

/* True if shmem THP is allowed on madvise (shmem_enabled not never/deny). */
static bool shm_thp_ok(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");
    char line[256] = "";
    bool ok;

    if (f == NULL)
        return false;
    if (fgets(line, sizeof(line), f) == NULL)
        line[0] = '\0';
    fclose(f);
    ok = strstr(line, "[always]") || strstr(line, "[advise]") ||
         strstr(line, "[within_size]") || strstr(line, "[force]");
    return ok;
}

/* memfd of size bytes, huge pages if hugetlb. -1 on failure (errno). */
static int shm_memfd(const char *name, uint64_t size, bool hugetlb)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING |
                                (hugetlb ? MFD_HUGETLB : 0));

    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int shm_region_init(struct shm_region *r, const char *mode, uint64_t size)
{
    bool want_huge = !strcmp(mode, "hugetlb"), want_thp = !strcmp(mode, "thp");
    bool autom = !strcmp(mode, "auto");

    memset(r, 0, sizeof(*r));
    r->fd = -1;
    if (!strcmp(mode, "off"))
        return 0;
    if (!autom && !want_huge && !want_thp && strcmp(mode, "4k")) {
        log_error("--shm: unknown mode '%s' (auto, hugetlb, thp, 4k, off)", mode);
        return -1;
    }
    size = (size + SHM_HUGE - 1) & ~(SHM_HUGE - 1);
    if (want_huge || (autom && shm_hugetlb_free() >= size)) {
        r->fd = shm_memfd("kvcached-region", size, true);
        if (r->fd >= 0) {
            r->pages = "hugetlb";
        } else if (want_huge) {
            log_error("--shm hugetlb: %s (%llu MiB of huge pages needed)",
                      strerror(errno), (unsigned long long)(size >> 20));
            return -1;
        }
    }
    if (r->fd < 0) {
        r->fd = shm_memfd("kvcached-region", size, false);
        if (r->fd < 0) {
            log_error("shared region: memfd_create: %s", strerror(errno));
            return -1;
        }
        r->pages = (want_thp || autom) && shm_thp_ok() ? "thp" : "4k";
        if (want_thp && strcmp(r->pages, "thp"))
            log_warn("--shm thp: shmem_enabled is never or deny: 4 KiB pages");
    }
    r->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
    if (r->base == MAP_FAILED) {
        log_error("shared region: mmap %llu MiB: %s",
                  (unsigned long long)(size >> 20), strerror(errno));
        r->base = NULL;
        shm_region_deinit(r);
        return -1;
    }
    if (!strcmp(r->pages, "thp"))
        madvise(r->base, size, MADV_HUGEPAGE);
    r->size = size;
    /* no resizing ever (a shrink would fault the daemon); no writable
     * mappings from now on (clients map it read-only) where supported */
    if (fcntl(r->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
        log_error("shared region: cannot seal: %s", strerror(errno));
        shm_region_deinit(r);
        return -1;
    }
    if (fcntl(r->fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0)
        log_warn("shared region: no F_SEAL_FUTURE_WRITE (%s): clients are "
                 "trusted to map it read-only", strerror(errno));
    fcntl(r->fd, F_ADD_SEALS, F_SEAL_SEAL);
    if (getrandom(&r->id, sizeof(r->id), 0) != sizeof(r->id))
        r->id = (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)r->base;
    log_info("shared region: %llu MiB on %s pages%s", (unsigned long long)(size >> 20),
             r->pages, !strcmp(r->pages, "4k") ? " (no hugetlb pages reserved, "
             "shmem THP off: O_DIRECT reads pin 4 KiB pages)" : "");
    return 0;
}

void shm_region_deinit(struct shm_region *r)
{
    if (r->base != NULL)
        munmap(r->base, r->size);
    if (r->fd >= 0)
        close(r->fd);
    r->base = NULL;
    r->fd = -1;
}

void *shm_region_alloc(void *arg, uint64_t len)
{
    struct shm_region *r = arg;
    /* huge-page alignment for pieces of 2 MiB or more; 1 MiB slabs (small
     * test geometries) pack two to a huge page instead of wasting half */
    uint64_t align = len >= SHM_HUGE ? SHM_HUGE : 4096, at;

    at = (r->used + align - 1) & ~(align - 1);
    if (r->base == NULL || len > r->size || at > r->size - len)
        return NULL;
    r->used = at + len;
    return r->base + at;
}

uint64_t shm_region_offset(const struct shm_region *r, const void *p, uint64_t len)
{
    const uint8_t *b = p;

    if (r == NULL || r->base == NULL || b < r->base || b >= r->base + r->size ||
        len > (uint64_t)(r->base + r->size - b))
        return SHM_INLINE;
    return (uint64_t)(b - r->base);
}

/* Make c's staging area. 0 or -1 (errno). */
static int shm_staging_init(struct shm_conn *sc, uint64_t size)
{
    sc->staging_fd = -1;
    if (size == 0)
        return 0;
    sc->staging_fd = shm_memfd("kvcached-staging", size, false);
    if (sc->staging_fd < 0)
        return -1;
    sc->staging = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
                       sc->staging_fd, 0);
    if (sc->staging == MAP_FAILED ||
        fcntl(sc->staging_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        int e = errno;
        if (sc->staging != MAP_FAILED)
            munmap(sc->staging, size);
        sc->staging = NULL;
        close(sc->staging_fd);
        sc->staging_fd = -1;
        errno = e;
        return -1;
    }
    sc->staging_size = size;
    while (sc->staging_id == 0)
        if (getrandom(&sc->staging_id, sizeof(sc->staging_id), 0) != sizeof(sc->staging_id))
            sc->staging_id = (uint64_t)(uintptr_t)sc->staging ^ loop_now_ns();
    return 0;
}

/* Send one response frame with fds on its first byte; the rest of a short
 * send goes through the output queue. 0 or -1 (the connection is closed). */
static int shm_send_fds(struct conn *c, const Kvcache__Response *r,
                        const int *fds, int nfds)
{
    size_t pb = kvcache__response__get_packed_size(r);
    size_t len = KC_FRAME_HDR_LEN + pb;
    uint8_t *buf = malloc(len);
    struct kc_frame_hdr hdr = { KC_FRAME_VERSION, KC_FRAME_F_RESPONSE, 0, 0 };
    union { char b[CMSG_SPACE(2 * sizeof(int))]; struct cmsghdr align; } u;
    struct iovec iov;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = u.b, .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
    struct cmsghdr *cm;
    ssize_t w;

    if (buf == NULL || nfds > 2) {
        free(buf);
        conn_close(c, "out of memory for a response");
        return -1;
    }
    hdr.pb_len = (uint32_t)pb;
    kc_frame_encode(buf, &hdr);
    kvcache__response__pack(r, buf + KC_FRAME_HDR_LEN);
    iov = (struct iovec){ buf, len };
    memset(u.b, 0, sizeof(u.b));
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
    do
        w = sendmsg(c->lh.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w <= 0) {
        free(buf);
        conn_close(c, "attach: cannot send the region");
        return -1;
    }
    c->srv->stats.bytes_out += (uint64_t)w;
    if ((size_t)w < len) {
        struct conn_piece p = { NULL, 0, len - (size_t)w };
        conn_send_raw(c, (const char *)buf + w, len - (size_t)w, &p, 1, NULL, NULL);
    }
    free(buf);
    return 0;
}

int op_attach(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    struct server *s = c->srv;
    Kvcache__Response r = KVCACHE__RESPONSE__INIT;
    Kvcache__AttachResponse ar = KVCACHE__ATTACH_RESPONSE__INIT;
    const char *why = NULL;
    int code = KVCACHE__CODE__UNSUPPORTED, fds[2], nfds = 0;
    struct shm_conn *sc;

    r.id = q->id;
    if (s->shm == NULL || s->shm->fd < 0)
        why = "shared memory is off in this daemon (--shm off)";
    else if (!c->is_unix)
        why = "shared memory is offered on the Unix socket only";
    else if (c->shm != NULL)
        why = "already attached", code = KVCACHE__CODE__BAD_REQUEST;
    else if (c->out_head != NULL || c->gets_inflight)
        why = "Attach must be sent alone, before other requests",
        code = KVCACHE__CODE__BAD_REQUEST;
    if (why != NULL) {
        r.code = code;
        r.message = (char *)why;
        return rpc_reply(c, OPK_ATTACH, t0, &r);
    }
    sc = calloc(1, sizeof(*sc));
    if (sc != NULL && (sc->lslots = calloc(LEASE_SLOTS, sizeof(*sc->lslots))) == NULL) {
        free(sc);
        sc = NULL;
    }
    if (sc == NULL || shm_staging_init(sc, s->opts->shm_staging) < 0) {
        log_warn("conn %llu (%s): attach: staging area of %llu MiB: %s",
                 (unsigned long long)c->id, c->peer,
                 (unsigned long long)(s->opts->shm_staging >> 20),
                 sc ? strerror(errno) : "out of memory");
        if (sc)
            free(sc->lslots);
        free(sc);
        r.code = KVCACHE__CODE__NO_MEMORY;
        r.message = "cannot make a staging area";
        return rpc_reply(c, OPK_ATTACH, t0, &r);
    }
    sc->next_lease = 1;
    c->shm = sc;
    ar.region_size = s->shm->size;
    ar.staging_size = sc->staging_size;
    ar.region_id = s->shm->id;
    ar.lease_timeout_ms = s->opts->lease_timeout * 1000u;
    ar.lease_max_bytes = s->opts->lease_max;
    ar.pages = (char *)s->shm->pages;
    ar.staging_id = sc->staging_id;
    r.result_case = KVCACHE__RESPONSE__RESULT_ATTACH;
    r.attach = &ar;
    fds[nfds++] = s->shm->fd;
    if (sc->staging_fd >= 0)
        fds[nfds++] = sc->staging_fd;
    hist_add(&s->stats.op[OPK_ATTACH], loop_now_ns() - t0);
    s->stats.shm_attached++;
    log_debug("conn %llu (%s): attached (staging %llu MiB)",
              (unsigned long long)c->id, c->peer,
              (unsigned long long)(sc->staging_size >> 20));
    return shm_send_fds(c, &r, fds, nfds) < 0 ? STEP_CLOSED : STEP_PROGRESS;
}

void shm_conn_close(struct conn *c)
{
    struct shm_conn *sc = c->shm;

    if (sc == NULL)
        return;
    assert(sc->nleases == 0);   /* lease_drop_all(c) first (kc_rpc.c) */
    if (sc->staging != NULL)
        munmap(sc->staging, sc->staging_size);
    if (sc->staging_fd >= 0)
        close(sc->staging_fd);
    free(sc->lslots);
    free(sc);
    c->shm = NULL;
}
