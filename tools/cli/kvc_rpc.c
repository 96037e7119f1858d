/*
 * kvc_rpc.c - single RPCs to one daemon (kvc_rpc.h).
 */
#include <errno.h>
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

#include "kc_frame.h"
#include "kvc_rpc.h"

/* Most bytes of a response message the CLI accepts. */
#define RPC_PB_MAX KC_FRAME_PB_MAX

struct kvc_rpc {
    char uri[512];               /* as given */
    char path[108];              /* unix: socket path */
    char host[256], port[16];    /* tcp */
    bool unix_sock;
    int fd;                      /* -1 until connected */
    uint64_t next_id;
    int timeout_ms;
    uint8_t *pb;                 /* receive buffer */
    size_t pb_cap;
    char err[600];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct kvc_rpc *kvc_rpc_create(const char *uri, int timeout_ms)
{
    struct kvc_rpc *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->fd = -1;
    r->next_id = 1;
    r->timeout_ms = timeout_ms;
    snprintf(r->uri, sizeof(r->uri), "%s", uri);
    size_t len = strlen(uri);
    if (len > 5 && len - 5 < sizeof(r->path) && !strncmp(uri, "unix:", 5)) {
        r->unix_sock = true;
        memcpy(r->path, uri + 5, len - 5 + 1);
        return r;
    }
    const char *colon = strrchr(uri, ':');
    if (!strncmp(uri, "tcp:", 4) && colon > uri + 4 && colon[1] &&
        (size_t)(colon - uri - 4) < sizeof(r->host) && strlen(colon + 1) < sizeof(r->port)) {
        const char *h = uri + 4;
        size_t hl = (size_t)(colon - h);
        if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {   /* tcp:[v6]:port */
            h++;
            hl -= 2;
        }
        memcpy(r->host, h, hl);
        r->host[hl] = '\0';
        snprintf(r->port, sizeof(r->port), "%s", colon + 1);
        return r;
    }
    free(r);
    return NULL;
}

static void rpc_close(struct kvc_rpc *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

void kvc_rpc_destroy(struct kvc_rpc *r)
{
    if (r == NULL)
        return;
    rpc_close(r);
    free(r->pb);
    free(r);
}

const char *kvc_rpc_error(const struct kvc_rpc *r)
{
    return r->err;
}

/* Wait until fd is ready for ev, or the deadline. 0, -errno or ETIMEDOUT. */
static int wait_fd(int fd, short ev, uint64_t deadline)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return KVCACHE_ETIMEDOUT;
        struct pollfd p = { fd, ev, 0 };
        int n = poll(&p, 1, (int)(deadline - now));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int rpc_connect(struct kvc_rpc *r, uint64_t deadline)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc;

    memset(&ss, 0, sizeof(ss));
    if (r->unix_sock) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, r->path, strlen(r->path) + 1);
        len = sizeof(*sun);
    } else {
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
        if ((rc = getaddrinfo(r->host, r->port, &hints, &ai)) != 0)
            return -EHOSTUNREACH;
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        len = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    r->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->fd < 0)
        return -errno;
    if (connect(r->fd, (struct sockaddr *)&ss, len) < 0) {
        if (errno != EINPROGRESS)
            return -errno;
        int e = 0;
        socklen_t el = sizeof(e);
        if ((rc = wait_fd(r->fd, POLLOUT, deadline)) != 0)
            return rc;
        getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &e, &el);
        if (e)
            return -e;
    }
    if (!r->unix_sock) {
        int one = 1;
        setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return 0;
}

static int send_all(struct kvc_rpc *r, const uint8_t *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(r->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            int rc = wait_fd(r->fd, POLLOUT, deadline);
            if (rc)
                return rc;
        } else {
            return -errno;
        }
    }
    return 0;
}

static int recv_all(struct kvc_rpc *r, uint8_t *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t g = recv(r->fd, p, n, 0);
        if (g > 0) {
            p += g;
            n -= (size_t)g;
        } else if (g == 0) {
            return KVCACHE_ECLOSED;
        } else if (errno == EAGAIN || errno == EINTR) {
            int rc = wait_fd(r->fd, POLLIN, deadline);
            if (rc)
                return rc;
        } else {
            return -errno;
        }
    }
    return 0;
}

/* One exchange on the connection: request out, response in. */
static int exchange(struct kvc_rpc *r, Kvcache__Request *req, Kvcache__Response **resp,
                    uint64_t deadline)
{
    uint8_t hdr[KC_FRAME_HDR_LEN], *out;
    struct kc_frame_hdr h = { .version = KC_FRAME_VERSION };
    size_t pblen;
    int rc;

    req->id = r->next_id++;
    pblen = kvcache__request__get_packed_size(req);
    if ((out = malloc(KC_FRAME_HDR_LEN + pblen)) == NULL)
        return KVCACHE_ENOMEM;
    h.pb_len = (uint32_t)pblen;
    kc_frame_encode(out, &h);
    kvcache__request__pack(req, out + KC_FRAME_HDR_LEN);
    rc = send_all(r, out, KC_FRAME_HDR_LEN + pblen, deadline);
    free(out);
    if (rc)
        return rc;
    if ((rc = recv_all(r, hdr, sizeof(hdr), deadline)) != 0)
        return rc;
    if (kc_frame_decode(hdr, RPC_PB_MAX, 0, &h) || !(h.flags & KC_FRAME_F_RESPONSE))
        return KVCACHE_EPROTO;   /* none of our ops has a data section */
    if (h.pb_len > r->pb_cap) {
        uint8_t *nb = realloc(r->pb, h.pb_len);
        if (nb == NULL)
            return KVCACHE_ENOMEM;
        r->pb = nb;
        r->pb_cap = h.pb_len;
    }
    if ((rc = recv_all(r, r->pb, h.pb_len, deadline)) != 0)
        return rc;
    *resp = kvcache__response__unpack(NULL, h.pb_len, r->pb);
    if (*resp == NULL)
        return KVCACHE_EPROTO;
    if ((*resp)->id != req->id && (*resp)->code == KVCACHE__CODE__OK) {
        kvcache__response__free_unpacked(*resp, NULL);
        *resp = NULL;
        return KVCACHE_EPROTO;
    }
    return 0;
}

int kvc_rpc_call(struct kvc_rpc *r, Kvcache__Request *req, Kvcache__Response **resp)
{
    uint64_t deadline = now_ms() + (uint64_t)r->timeout_ms;
    int rc = 0;

    *resp = NULL;
    r->err[0] = '\0';
    if (r->fd < 0)
        rc = rpc_connect(r, deadline);
    if (rc == 0)
        rc = exchange(r, req, resp, deadline);
    if (rc) {
        rpc_close(r);   /* the stream position is unknown now */
        snprintf(r->err, sizeof(r->err), "%s: %s", r->uri, kvcache_strerror(rc));
        return rc;
    }
    if ((*resp)->code != KVCACHE__CODE__OK) {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&kvcache__code__descriptor, (*resp)->code);
        snprintf(r->err, sizeof(r->err), "%s: %s%s%.200s", r->uri, v ? v->name : "error",
                 (*resp)->message && *(*resp)->message ? ": " : "",
                 (*resp)->message ? (*resp)->message : "");
        return KVCACHE_ESERVER;
    }
    return 0;
}

/* Call and check that the response holds the result expected. */
static int call_for(struct kvc_rpc *r, Kvcache__Request *q, int result_case,
                    Kvcache__Response **resp)
{
    int rc = kvc_rpc_call(r, q, resp);
    if (rc == 0 && (int)(*resp)->result_case != result_case) {
        snprintf(r->err, sizeof(r->err), "%s: response without the result asked for",
                 r->uri);
        rc = KVCACHE_EPROTO;
    }
    return rc;
}

int kvc_rpc_stats(struct kvc_rpc *r, Kvcache__Response **resp)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__StatsRequest s = KVCACHE__STATS_REQUEST__INIT;
    q.op_case = KVCACHE__REQUEST__OP_STATS;
    q.stats = &s;
    return call_for(r, &q, KVCACHE__RESPONSE__RESULT_STATS, resp);
}

int kvc_rpc_health(struct kvc_rpc *r, Kvcache__Response **resp)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__HealthRequest h = KVCACHE__HEALTH_REQUEST__INIT;
    q.op_case = KVCACHE__REQUEST__OP_HEALTH;
    q.health = &h;
    return call_for(r, &q, KVCACHE__RESPONSE__RESULT_HEALTH, resp);
}

int kvc_rpc_list_ns(struct kvc_rpc *r, Kvcache__Response **resp)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__ListNamespacesRequest l = KVCACHE__LIST_NAMESPACES_REQUEST__INIT;
    q.op_case = KVCACHE__REQUEST__OP_LIST_NAMESPACES;
    q.list_namespaces = &l;
    return call_for(r, &q, KVCACHE__RESPONSE__RESULT_LIST_NAMESPACES, resp);
}

int kvc_rpc_list_slabs(struct kvc_rpc *r, uint32_t start, uint32_t limit,
                       Kvcache__Response **resp)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__ListSlabsRequest l = KVCACHE__LIST_SLABS_REQUEST__INIT;
    l.start = start;
    l.limit = limit;
    q.op_case = KVCACHE__REQUEST__OP_LIST_SLABS;
    q.list_slabs = &l;
    return call_for(r, &q, KVCACHE__RESPONSE__RESULT_LIST_SLABS, resp);
}

int kvc_rpc_describe(struct kvc_rpc *r, uint64_t ns, kvcache_key_t key,
                     Kvcache__Response **resp)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__DescribeKeyRequest d = KVCACHE__DESCRIBE_KEY_REQUEST__INIT;
    uint8_t kb[16];
    kvcache_key_to_bytes(key, kb);
    d.ns = ns;
    d.key.data = kb;
    d.key.len = 16;
    q.op_case = KVCACHE__REQUEST__OP_DESCRIBE_KEY;
    q.describe_key = &d;
    return call_for(r, &q, KVCACHE__RESPONSE__RESULT_DESCRIBE_KEY, resp);
}

struct kvc_rpc *kvc_rpc_open(struct kvc_ctx *x, const char *cmd, int *rc)
{
    struct kvc_rpc *r = kvc_rpc_create(x->server, x->timeout_ms);
    if (r == NULL) {
        kvc_err(cmd, "bad server URI \"%s\" (unix:PATH or tcp:HOST:PORT)", x->server);
        *rc = KVC_EXIT_USAGE;
    }
    return r;
}

int kvc_rpc_fail(struct kvc_rpc *r, const char *cmd, int err, Kvcache__Response *resp)
{
    kvc_err(cmd, "%s", r->err);
    if (resp)
        kvcache__response__free_unpacked(resp, NULL);
    return kvc_exit_for(err);
}
