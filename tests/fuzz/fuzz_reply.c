/*
 * fuzz_reply.c - libFuzzer harness: the client library's reply parser
 * (client/kcc_mux.c and the per-operation answer checks) on arbitrary
 * answers from a fake server.
 *
 * A thread serves a Unix socket: it reads each request frame the library
 * sends and answers with the current input. Input byte 0 picks the call
 * (bits 0-2) and how to answer: bit 7 set sends the rest of the input raw
 * (frame header included) and closes; else bytes 1-2 are the protobuf
 * length, then the protobuf message (if it decodes as a Response its id is
 * set to the request's, so it is matched), then the data section. The
 * library must return an error code or a result that fits its buffers,
 * never crash, hang past its timeout or write outside them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/kvcache.h"
#include "kc_frame.h"
#include "kvcache.pb-c.h"

#define FUZZ_BLK 64
#define FUZZ_N 4

static char fuzz_sock[108];
static int fuzz_lfd = -1;
static kvcache_t *fuzz_kc;
static const uint8_t *fuzz_in;        /* the answer being fuzzed */
static size_t fuzz_len;
static pthread_mutex_t fuzz_mu = PTHREAD_MUTEX_INITIALIZER;

/* Read len bytes; 0 or -1 (closed). */
static int fuzz_read(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = read(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Answer one request on fd from the current input. 0, or -1 to close. */
static int fuzz_answer(int fd, uint64_t id)
{
    uint8_t hdr[KC_FRAME_HDR_LEN], *pb = NULL;
    struct kc_frame_hdr h = { KC_FRAME_VERSION, KC_FRAME_F_RESPONSE, 0, 0 };
    static uint8_t copy[1 << 16];
    const uint8_t *in = copy;
    size_t len, pblen;
    Kvcache__Response *r;
    int rc = 0;

    /* the input belongs to the fuzzer's thread: copy it while it is ours */
    pthread_mutex_lock(&fuzz_mu);
    len = fuzz_len < sizeof(copy) ? fuzz_len : sizeof(copy);
    if (len)
        memcpy(copy, fuzz_in, len);
    pthread_mutex_unlock(&fuzz_mu);
    if (len < 1)
        return -1;
    if (in[0] & 0x80) {
        if (len > 1 && send(fd, in + 1, len - 1, MSG_NOSIGNAL) < 0)
            return -1;
        return -1;
    }
    pblen = len >= 3 ? (size_t)(in[1] | in[2] << 8) : 0;
    in += len >= 3 ? 3 : len;
    len -= len >= 3 ? 3 : len;
    if (pblen > len)
        pblen = len;
    r = kvcache__response__unpack(NULL, pblen, in);
    if (r != NULL) {
        r->id = id;
        pb = malloc(kvcache__response__get_packed_size(r) + 1);
        if (pb == NULL)
            abort();
        h.pb_len = (uint32_t)kvcache__response__pack(r, pb);
        kvcache__response__free_unpacked(r, NULL);
    } else {
        h.pb_len = (uint32_t)pblen;
    }
    h.data_len = len - pblen;
    kc_frame_encode(hdr, &h);
    if (send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL) < 0 ||
        send(fd, pb ? pb : in, h.pb_len, MSG_NOSIGNAL) < 0 ||
        (h.data_len && send(fd, in + pblen, h.data_len, MSG_NOSIGNAL) < 0))
        rc = -1;
    free(pb);
    return rc;
}

/* The fake server: one connection at a time, every request answered. */
static void *fuzz_server(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(fuzz_lfd, NULL, NULL);

        if (fd < 0)
            continue;
        for (;;) {
            uint8_t hdr[KC_FRAME_HDR_LEN], *pb;
            struct kc_frame_hdr h;
            Kvcache__Request *q;
            uint64_t id = 0;
            int stop;

            if (fuzz_read(fd, hdr, sizeof(hdr)) < 0 ||
                kc_frame_decode(hdr, KC_FRAME_PB_MAX, 1ull << 30, &h) != 0)
                break;
            pb = malloc(h.pb_len + h.data_len + 1);
            if (pb == NULL || fuzz_read(fd, pb, h.pb_len + h.data_len) < 0) {
                free(pb);
                break;
            }
            q = kvcache__request__unpack(NULL, h.pb_len, pb);
            if (q) {
                id = q->id;
                kvcache__request__free_unpacked(q, NULL);
            }
            free(pb);
            stop = fuzz_answer(fd, id);
            if (stop)
                break;
        }
        close(fd);
    }
    return NULL;
}

/* Socket, server thread, handle. */
static void fuzz_setup(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    kvcache_options_t o = { .timeout_ms = 200, .retry_ms = 1,
                            .connect_timeout_ms = 100 };
    char uri[160];
    pthread_t t;

    snprintf(fuzz_sock, sizeof(fuzz_sock), "/tmp/fuzz_reply.%d.sock",
             (int)getpid());
    unlink(fuzz_sock);
    strcpy(sa.sun_path, fuzz_sock);
    fuzz_lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fuzz_lfd < 0 || bind(fuzz_lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fuzz_lfd, 8) < 0 ||
        pthread_create(&t, NULL, fuzz_server, NULL) != 0)
        abort();
    pthread_detach(t);
    snprintf(uri, sizeof(uri), "unix:%s", fuzz_sock);
    fuzz_kc = kvcache_create(uri, &o, NULL);
    if (fuzz_kc == NULL)
        abort();
}

/* Remove the socket file at exit. */
static void fuzz_cleanup(void)
{
    unlink(fuzz_sock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t blk[FUZZ_N][FUZZ_BLK];
    void *bufs[FUZZ_N] = { blk[0], blk[1], blk[2], blk[3] };
    kvcache_key_t keys[FUZZ_N];
    uint32_t lens[FUZZ_N];
    int status[FUZZ_N];
    size_t n = 0;

    if (fuzz_kc == NULL) {
        fuzz_setup();
        atexit(fuzz_cleanup);
    }
    if (size < 1)
        return 0;
    pthread_mutex_lock(&fuzz_mu);
    fuzz_in = data;
    fuzz_len = size;
    pthread_mutex_unlock(&fuzz_mu);
    memset(keys, 0, sizeof(keys));
    for (int i = 0; i < FUZZ_N; i++)
        memset(&keys[i], i + 1, sizeof(keys[i]));
    switch (data[0] & 7) {
    case 0:
        if (kvcache_get_prefix(fuzz_kc, 1, keys, FUZZ_N, bufs, FUZZ_BLK, lens,
                               &n) == 0 && n > FUZZ_N)
            abort();
        break;
    case 1:
        if (kvcache_get(fuzz_kc, 1, keys, FUZZ_N, bufs, FUZZ_BLK, lens,
                        &n) == 0 && n > FUZZ_N)
            abort();
        break;
    case 2:
        if (kvcache_match(fuzz_kc, 1, keys, FUZZ_N, &n) == 0 && n > FUZZ_N)
            abort();
        break;
    case 3:
        (void)kvcache_delete(fuzz_kc, 1, keys, FUZZ_N, &n);
        break;
    case 4:
        (void)kvcache_put(fuzz_kc, 1, keys, FUZZ_N, 0,
                          (const void *const *)bufs, FUZZ_BLK, status, &n);
        break;
    case 5: {
        kvcache_ns_desc_t d = { "m", 0, 1, 16, "bf16", 1, 1, FUZZ_BLK };
        uint64_t ns;

        (void)kvcache_open_namespace(fuzz_kc, &d, &ns);
        break;
    }
    case 6: {
        kvcache_stats_t st;

        (void)kvcache_stats(fuzz_kc, 0, &st);
        break;
    }
    default: {
        char reason[64];
        int state;

        (void)kvcache_health(fuzz_kc, 0, &state, reason, sizeof(reason));
        break;
    }
    }
    pthread_mutex_lock(&fuzz_mu);
    fuzz_in = NULL;
    fuzz_len = 0;
    pthread_mutex_unlock(&fuzz_mu);
    return 0;
}
