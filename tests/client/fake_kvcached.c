/*
 * fake_kvcached: an in-memory stand-in that speaks kvcached's wire protocol
 * (proto/README.md) with the same flags the client tests pass to kvcached
 * (-s PATH, -p -1|0, --port-file PATH; others ignored).  Only for
 * developing libkvcache while the daemon is not built; every live test runs
 * against the real kvcached when it exists (see kc_daemon.c).  Blocking and
 * single-threaded: a frame is read whole once its first byte arrives.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kc_frame.h"
#include "kc_nsid.h"
#include "kvcache.pb-c.h"

#define NBUCKET 65536
#define MAXFD 64

struct item {
    struct item *next;
    uint64_t ns;
    uint8_t key[16];
    uint32_t pos, len;
    uint8_t *data;
};

static struct item *table[NBUCKET];
static uint64_t ns_ids[64];
static uint32_t ns_bytes[64];
static int nns;

static uint32_t ns_block_bytes(uint64_t ns)
{
    for (int i = 0; i < nns; i++)
        if (ns_ids[i] == ns)
            return ns_bytes[i];
    return 0;
}
static uint64_t nitems, nbytes, hits, misses, nputs;

static struct item **slot(uint64_t ns, const uint8_t *key)
{
    uint64_t h = ns * 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 0x100000001b3ULL;
    struct item **pp = &table[h % NBUCKET];
    while (*pp && ((*pp)->ns != ns || memcmp((*pp)->key, key, 16)))
        pp = &(*pp)->next;
    return pp;
}

static int read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t r = read(fd, p, len);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Send resp and then data[0..ndata) blocks. */
static int reply(int fd, Kvcache__Response *resp, struct item **blocks, size_t nb)
{
    uint8_t hdr[KC_FRAME_HDR_LEN];
    struct kc_frame_hdr h = {.version = KC_FRAME_VERSION, .flags = KC_FRAME_F_RESPONSE};
    size_t pblen = kvcache__response__get_packed_size(resp);
    uint8_t *pb = malloc(pblen + 1);
    int rc;
    h.pb_len = (uint32_t)pblen;
    for (size_t i = 0; i < nb; i++)
        h.data_len += blocks[i]->len;
    kvcache__response__pack(resp, pb);
    kc_frame_encode(hdr, &h);
    rc = write_full(fd, hdr, sizeof(hdr)) || write_full(fd, pb, pblen);
    for (size_t i = 0; i < nb && !rc; i++)
        rc = write_full(fd, blocks[i]->data, blocks[i]->len);
    free(pb);
    return rc;
}

/* Serve one request on fd; -1 closes the connection. */
static int serve(int fd)
{
    uint8_t hdr[KC_FRAME_HDR_LEN], *pb = NULL, *data = NULL;
    struct kc_frame_hdr h;
    Kvcache__Request *req = NULL;
    Kvcache__Response resp = KVCACHE__RESPONSE__INIT;
    int rc = -1;

    if (read_full(fd, hdr, sizeof(hdr)) || kc_frame_decode(hdr, KC_FRAME_PB_MAX, 1ull << 30, &h))
        return -1;
    pb = malloc(h.pb_len + 1);
    data = malloc(h.data_len + 1);
    if (!pb || !data || read_full(fd, pb, h.pb_len) || read_full(fd, data, h.data_len))
        goto out;
    req = kvcache__request__unpack(NULL, h.pb_len, pb);
    if (req == NULL)
        goto out;
    resp.id = req->id;
    switch (req->op_case) {
    case KVCACHE__REQUEST__OP_OPEN_NAMESPACE: {
        Kvcache__OpenNamespaceResponse r = KVCACHE__OPEN_NAMESPACE_RESPONSE__INIT;
        Kvcache__NamespaceDesc *d = req->open_namespace->desc;
        struct kc_ns_desc pd = {d->model, (uint32_t)strlen(d->model), d->layer_begin,
                                d->layer_end, d->tokens_per_block, d->dtype,
                                (uint32_t)strlen(d->dtype), d->kv_heads, d->head_dim,
                                d->block_bytes};
        kc_ns_id(&pd, &r.ns);
        if (!ns_block_bytes(r.ns) && nns < 64) {
            ns_ids[nns] = r.ns;
            ns_bytes[nns++] = d->block_bytes;
        }
        resp.result_case = KVCACHE__RESPONSE__RESULT_OPEN_NAMESPACE;
        resp.open_namespace = &r;
        rc = reply(fd, &resp, NULL, 0);
        break;
    }
    case KVCACHE__REQUEST__OP_PUT: {
        Kvcache__PutResponse r = KVCACHE__PUT_RESPONSE__INIT;
        size_t n = req->put->n_items, off = 0;
        Kvcache__Code st[n ? n : 1];
        for (size_t i = 0; i < n; i++) {
            Kvcache__PutItem *it = req->put->items[i];
            struct item **pp = slot(req->put->ns, it->key.data);
            if (it->length != ns_block_bytes(req->put->ns)) {
                st[i] = KVCACHE__CODE__BAD_SIZE;
            } else if (*pp) {
                st[i] = KVCACHE__CODE__EXISTS;
            } else {
                struct item *ni = calloc(1, sizeof(*ni));
                ni->ns = req->put->ns;
                memcpy(ni->key, it->key.data, 16);
                ni->pos = it->chain_pos;
                ni->len = it->length;
                ni->data = malloc(it->length);
                memcpy(ni->data, data + off, it->length);
                *pp = ni;
                nitems++;
                nbytes += it->length;
                nputs++;
                st[i] = KVCACHE__CODE__OK;
            }
            off += it->length;
        }
        r.n_status = n;
        r.status = st;
        resp.result_case = KVCACHE__RESPONSE__RESULT_PUT;
        resp.put = &r;
        rc = reply(fd, &resp, NULL, 0);
        break;
    }
    case KVCACHE__REQUEST__OP_GET_PREFIX:
    case KVCACHE__REQUEST__OP_MATCH:
    case KVCACHE__REQUEST__OP_GET:
    case KVCACHE__REQUEST__OP_DELETE: {
        ProtobufCBinaryData keys = req->get_prefix->keys;  /* same layout in all four */
        uint64_t ns = req->get_prefix->ns;
        size_t n = keys.len / 16, found = 0, nb = 0;
        struct item *blocks[n ? n : 1];
        uint32_t lens[n ? n : 1], pos[n ? n : 1];
        Kvcache__Code st[n ? n : 1];
        int prefix = req->op_case == KVCACHE__REQUEST__OP_GET_PREFIX ||
                     req->op_case == KVCACHE__REQUEST__OP_MATCH;
        for (size_t i = 0; i < n; i++) {
            struct item **pp = slot(ns, keys.data + 16 * i), *it = *pp;
            lens[i] = pos[i] = 0;
            st[i] = it ? KVCACHE__CODE__OK : KVCACHE__CODE__MISS;
            if (prefix && !it)
                break;
            if (!it) {
                misses++;
                continue;
            }
            hits++;
            found++;
            if (req->op_case == KVCACHE__REQUEST__OP_DELETE) {
                *pp = it->next;
                nitems--;
                nbytes -= it->len;
                free(it->data);
                free(it);
                continue;
            }
            lens[prefix ? nb : i] = it->len;
            pos[prefix ? nb : i] = it->pos;
            blocks[nb++] = it;
        }
        if (req->op_case == KVCACHE__REQUEST__OP_MATCH) {
            Kvcache__MatchResponse r = KVCACHE__MATCH_RESPONSE__INIT;
            r.matched = (uint32_t)found;
            resp.result_case = KVCACHE__RESPONSE__RESULT_MATCH;
            resp.match = &r;
            rc = reply(fd, &resp, NULL, 0);
        } else if (req->op_case == KVCACHE__REQUEST__OP_GET_PREFIX) {
            Kvcache__GetPrefixResponse r = KVCACHE__GET_PREFIX_RESPONSE__INIT;
            r.found = (uint32_t)found;
            r.n_lengths = r.n_chain_pos = found;
            r.lengths = lens;
            r.chain_pos = pos;
            resp.result_case = KVCACHE__RESPONSE__RESULT_GET_PREFIX;
            resp.get_prefix = &r;
            rc = reply(fd, &resp, blocks, nb);
        } else if (req->op_case == KVCACHE__REQUEST__OP_GET) {
            Kvcache__GetResponse r = KVCACHE__GET_RESPONSE__INIT;
            r.n_status = r.n_lengths = r.n_chain_pos = n;
            r.status = st;
            r.lengths = lens;
            r.chain_pos = pos;
            resp.result_case = KVCACHE__RESPONSE__RESULT_GET;
            resp.get = &r;
            rc = reply(fd, &resp, blocks, nb);
        } else {
            Kvcache__DeleteResponse r = KVCACHE__DELETE_RESPONSE__INIT;
            r.n_status = n;
            r.status = st;
            resp.result_case = KVCACHE__RESPONSE__RESULT_DELETE;
            resp.delete_ = &r;
            rc = reply(fd, &resp, NULL, 0);
        }
        break;
    }
    case KVCACHE__REQUEST__OP_STATS: {
        Kvcache__StatsResponse r = KVCACHE__STATS_RESPONSE__INIT;
        r.items = nitems;
        r.bytes = nbytes;
        r.hits = hits;
        r.misses = misses;
        r.puts = nputs;
        resp.result_case = KVCACHE__RESPONSE__RESULT_STATS;
        resp.stats = &r;
        rc = reply(fd, &resp, NULL, 0);
        break;
    }
    default:
        resp.code = KVCACHE__CODE__UNSUPPORTED;
        resp.message = "unsupported";
        rc = reply(fd, &resp, NULL, 0);
    }
out:
    if (req)
        kvcache__request__free_unpacked(req, NULL);
    free(pb);
    free(data);
    return rc;
}

int main(int argc, char **argv)
{
    const char *sock = NULL, *portfile = NULL;
    int tcp = 0;
    struct pollfd fds[MAXFD];
    int nfds = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc)
            sock = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc)
            tcp = atoi(argv[++i]) >= 0;
        else if (!strcmp(argv[i], "--port-file") && i + 1 < argc)
            portfile = argv[++i];
    }
    signal(SIGPIPE, SIG_IGN);
    if (sock) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
        unlink(sock);
        if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 64))
            return 1;
        fds[nfds++] = (struct pollfd){.fd = fd, .events = POLLIN};
    }
    if (tcp) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t sl = sizeof(sin);
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, 64))
            return 1;
        getsockname(fd, (struct sockaddr *)&sin, &sl);
        fds[nfds++] = (struct pollfd){.fd = fd, .events = POLLIN};
        if (portfile) {
            FILE *f = fopen(portfile, "w");
            fprintf(f, "tcp=%d metrics=0\n", ntohs(sin.sin_port));
            fclose(f);
        }
    }
    int nlisten = nfds;
    printf("fake_kvcached: ready\n");
    fflush(stdout);
    for (;;) {
        if (poll(fds, (nfds_t)nfds, -1) < 0)
            continue;
        for (int i = 0; i < nfds; i++) {
            if (!fds[i].revents)
                continue;
            if (i < nlisten) {
                int c = accept(fds[i].fd, NULL, NULL);
                if (c >= 0 && nfds < MAXFD)
                    fds[nfds++] = (struct pollfd){.fd = c, .events = POLLIN};
                else if (c >= 0)
                    close(c);
            } else if (serve(fds[i].fd)) {
                close(fds[i].fd);
                fds[i--] = fds[--nfds];
            }
        }
    }
}
