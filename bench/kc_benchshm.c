/*
 * kc_benchshm.c - Attach and Release with raw frames, for the benchmarks.
 */
#include "kc_benchshm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kc_frame.h"
#include "kvcache.pb-c.h"

/* Frame and send q (no data section). */
static void bshm_send(int fd, Kvcache__Request *q)
{
    uint8_t buf[KC_FRAME_HDR_LEN + 1024];
    struct kc_frame_hdr h = { KC_FRAME_VERSION, 0, 0, 0 };
    size_t len = kvcache__request__get_packed_size(q), off = 0;

    if (len > sizeof(buf) - KC_FRAME_HDR_LEN) {
        fprintf(stderr, "kc_benchshm: request too large\n");
        exit(1);
    }
    h.pb_len = (uint32_t)len;
    kc_frame_encode(buf, &h);
    kvcache__request__pack(q, buf + KC_FRAME_HDR_LEN);
    len += KC_FRAME_HDR_LEN;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            perror("kc_benchshm: send");
            exit(1);
        }
        off += (size_t)n;
    }
}

/* Receive exactly len bytes, keeping passed fds (at most 2) in fds. */
static void bshm_recv(int fd, uint8_t *p, size_t len, int *fds, int *nfds)
{
    while (len > 0) {
        union { char b[CMSG_SPACE(2 * sizeof(int))]; struct cmsghdr align; } u;
        struct iovec iov = { p, len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                             .msg_controllen = sizeof(u.b) };
        ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            perror("kc_benchshm: recvmsg");
            exit(1);
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            for (size_t i = 0; c->cmsg_type == SCM_RIGHTS &&
                               i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
                if (*nfds < 2)
                    memcpy(&fds[(*nfds)++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        p += n;
        len -= (size_t)n;
    }
}

void bshm_attach(int fd, uint64_t id, struct bshm *s)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__AttachRequest a = KVCACHE__ATTACH_REQUEST__INIT;
    uint8_t hb[KC_FRAME_HDR_LEN], pb[1024];
    struct kc_frame_hdr h;
    Kvcache__Response *r;
    int fds[2], nfds = 0;

    memset(s, 0, sizeof(*s));
    q.id = id;
    q.op_case = KVCACHE__REQUEST__OP_ATTACH;
    q.attach = &a;
    bshm_send(fd, &q);
    bshm_recv(fd, hb, sizeof(hb), fds, &nfds);
    if (kc_frame_decode(hb, sizeof(pb), 0, &h) != 0) {
        fprintf(stderr, "kc_benchshm: bad Attach frame\n");
        exit(1);
    }
    bshm_recv(fd, pb, h.pb_len, fds, &nfds);
    r = kvcache__response__unpack(NULL, h.pb_len, pb);
    if (r == NULL || r->code != 0 || r->result_case != KVCACHE__RESPONSE__RESULT_ATTACH ||
        nfds < 2) {
        fprintf(stderr, "kc_benchshm: Attach refused: %s\n",
                r && r->message ? r->message : "no staging area or no answer");
        exit(1);
    }
    s->region_size = r->attach->region_size;
    s->staging_size = r->attach->staging_size;
    s->staging_id = r->attach->staging_id;
    snprintf(s->pages, sizeof(s->pages), "%s", r->attach->pages);
    kvcache__response__free_unpacked(r, NULL);
    s->region = mmap(NULL, s->region_size, PROT_READ, MAP_SHARED, fds[0], 0);
    s->staging = mmap(NULL, s->staging_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
    close(fds[0]);
    close(fds[1]);
    if (s->region == MAP_FAILED || s->staging == MAP_FAILED) {
        perror("kc_benchshm: mmap");
        exit(1);
    }
}

void bshm_release(int fd, uint64_t id, uint64_t lease)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__ReleaseRequest rr = KVCACHE__RELEASE_REQUEST__INIT;

    q.id = id;
    rr.n_leases = 1;
    rr.leases = &lease;
    q.op_case = KVCACHE__REQUEST__OP_RELEASE;
    q.release = &rr;
    bshm_send(fd, &q);
}

void bshm_deinit(struct bshm *s)
{
    if (s->region)
        munmap((void *)s->region, s->region_size);
    if (s->staging)
        munmap(s->staging, s->staging_size);
    memset(s, 0, sizeof(*s));
}
