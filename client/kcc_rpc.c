/*
 * kcc_rpc.c - framing of requests and responses on a connection.
 */
#include <stdlib.h>
#include <string.h>

#include "kvcache.h"
#include "kc_frame.h"
#include "kcc_rpc.h"

/* A response data section larger than this is refused (protects the client
 * from a corrupt header; the daemon's own request limit is 1 GiB). */
#define RPC_DATA_MAX (4ull << 30)

void kcc_server_init(struct kcc_server *s, const struct kcc_uri *uri)
{
    memset(s, 0, sizeof(*s));
    kcc_conn_init(&s->conn, uri);
    s->next_id = 1;
}

void kcc_server_deinit(struct kcc_server *s)
{
    kcc_conn_deinit(&s->conn);
    free(s->pb);
    s->pb = NULL;
    s->pb_cap = 0;
}

void kcc_server_fail(struct kcc_server *s, const struct kcc_rpc_cfg *cfg, int rc)
{
    kcc_conn_close(&s->conn);
    s->sent_id = 0;
    s->data_left = 0;
    if (rc == KVCACHE_ETIMEDOUT) {
        s->timeouts++;
        s->conn.down_until_ms = kcc_now_ms() + (uint64_t)cfg->retry_ms;
    }
}

int kcc_rpc_send(struct kcc_server *s, const struct kcc_rpc_cfg *cfg,
                 Kvcache__Request *req, struct iovec *data, int n, uint64_t deadline_ms)
{
    uint8_t hdr[KC_FRAME_HDR_LEN], small[512], *pb = small;
    struct kc_frame_hdr h = {.version = KC_FRAME_VERSION};
    struct iovec stackiov[18], *iov = stackiov;
    size_t pblen;
    int rc;

    /* Between calls nothing is owed to us: a readable socket means the
     * server closed it (restart, idle timeout), so start a new one rather
     * than fail this call on the old one. */
    if (s->conn.fd >= 0 && kcc_conn_stale(&s->conn))
        kcc_conn_close(&s->conn);
    if (s->conn.fd < 0 && kcc_now_ms() < s->conn.down_until_ms)
        return KVCACHE_EDOWN;
    rc = kcc_conn_ensure(&s->conn, deadline_ms, cfg->connect_ms);
    if (rc)
        goto fail;
    req->id = s->next_id++;
    pblen = kvcache__request__get_packed_size(req);
    if (pblen > KC_FRAME_PB_MAX) {
        rc = KVCACHE_EINVAL;
        goto out;
    }
    if (pblen > sizeof(small) && (pb = malloc(pblen)) == NULL) {
        rc = KVCACHE_ENOMEM;
        goto out;
    }
    if (n + 2 > (int)(sizeof(stackiov) / sizeof(stackiov[0])) &&
        (iov = malloc(sizeof(*iov) * (size_t)(n + 2))) == NULL) {
        rc = KVCACHE_ENOMEM;
        goto out;
    }
    kvcache__request__pack(req, pb);
    h.pb_len = (uint32_t)pblen;
    for (int i = 0; i < n; i++)
        h.data_len += data[i].iov_len;
    kc_frame_encode(hdr, &h);
    iov[0] = (struct iovec){hdr, sizeof(hdr)};
    iov[1] = (struct iovec){pb, pblen};
    if (n)
        memcpy(iov + 2, data, sizeof(*iov) * (size_t)n);
    rc = kcc_conn_writev(&s->conn, iov, n + 2, deadline_ms);
    if (rc == 0)
        s->sent_id = req->id;
out:
    if (pb != small)
        free(pb);
    if (iov != stackiov)
        free(iov);
fail:
    if (rc)
        kcc_server_fail(s, cfg, rc);
    return rc;
}

int kcc_rpc_recv(struct kcc_server *s, const struct kcc_rpc_cfg *cfg,
                 Kvcache__Response **resp, uint64_t deadline_ms)
{
    uint8_t hdr[KC_FRAME_HDR_LEN];
    struct kc_frame_hdr h;
    int rc;

    *resp = NULL;
    if (s->conn.fd < 0 || s->sent_id == 0)
        return KVCACHE_EPROTO;
    rc = kcc_conn_read(&s->conn, hdr, sizeof(hdr), deadline_ms);
    if (rc)
        goto fail;
    if (kc_frame_decode(hdr, KC_FRAME_PB_MAX, RPC_DATA_MAX, &h) ||
        !(h.flags & KC_FRAME_F_RESPONSE)) {
        rc = KVCACHE_EPROTO;
        goto fail;
    }
    if (h.pb_len > s->pb_cap) {
        uint8_t *nb = realloc(s->pb, h.pb_len);
        if (nb == NULL) {
            rc = KVCACHE_ENOMEM;
            goto fail;
        }
        s->pb = nb;
        s->pb_cap = h.pb_len;
    }
    rc = kcc_conn_read(&s->conn, s->pb, h.pb_len, deadline_ms);
    if (rc)
        goto fail;
    *resp = kvcache__response__unpack(NULL, h.pb_len, s->pb);
    /* One request in flight per connection, so the id must be ours; id 0
     * is the daemon's answer to a frame it could not read. */
    if (*resp == NULL || (*resp)->id != s->sent_id) {
        rc = *resp && (*resp)->id == 0 && (*resp)->code ? kcc_rpc_code((*resp)->code)
                                                        : KVCACHE_EPROTO;
        goto fail;
    }
    s->data_left = h.data_len;
    s->sent_id = 0;
    return 0;
fail:
    if (*resp)
        kvcache__response__free_unpacked(*resp, NULL);
    *resp = NULL;
    kcc_server_fail(s, cfg, rc);
    return rc;
}

int kcc_rpc_recv_data(struct kcc_server *s, const struct kcc_rpc_cfg *cfg,
                      struct iovec *iov, int n, uint64_t deadline_ms)
{
    uint64_t total = 0;
    int rc;

    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (total != s->data_left) {
        rc = KVCACHE_EPROTO;
        goto fail;
    }
    rc = kcc_conn_readv(&s->conn, iov, n, deadline_ms);
    if (rc)
        goto fail;
    s->data_left = 0;
    return 0;
fail:
    kcc_server_fail(s, cfg, rc);
    return rc;
}

int kcc_rpc_code(int32_t code)
{
    switch (code) {
    case KVCACHE__CODE__OK:
    case KVCACHE__CODE__EXISTS:
    case KVCACHE__CODE__MISS:
        return 0;
    case KVCACHE__CODE__UNKNOWN_NAMESPACE:
        return KVCACHE_ENONS;
    case KVCACHE__CODE__BAD_SIZE:
    case KVCACHE__CODE__TOO_BIG:
        return KVCACHE_ESIZE;
    case KVCACHE__CODE__NO_SPACE:
    case KVCACHE__CODE__BUSY:
    case KVCACHE__CODE__NAMESPACE_FULL:
        return KVCACHE_ENOSPACE;
    default:
        return KVCACHE_ESERVER;
    }
}
