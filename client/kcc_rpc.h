/*
 * kcc_rpc.h - one request/response exchange with one server over its
 * connection: frame a kvcache.Request plus its data section, read back the
 * header and the kvcache.Response, then let the caller read the data
 * section straight into its own buffers.
 *
 * Failure policy (what makes "a sick cache costs misses, not stalls"): any
 * I/O or framing error closes the connection (the next call reconnects); a
 * timeout also marks the server down for retry_ms, during which calls skip it
 * at once with KVCACHE_EDOWN.
 */
#ifndef KCC_RPC_H
#define KCC_RPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kcc_conn.h"
#include "kvcache.pb-c.h"

/* One server as seen by one thread: its connection and receive state. */
struct kcc_server {
    struct kcc_conn conn;       /* the socket, reconnected on demand */
    uint64_t next_id;           /* request id counter of this connection */
    uint64_t sent_id;           /* id of the request in flight (0: none) */
    uint8_t *pb;                /* receive buffer of the protobuf part */
    size_t pb_cap;              /* its capacity */
    uint64_t data_left;         /* data section bytes of the response not yet read */
    uint64_t timeouts;          /* calls that timed out on this server */
};

/* Settings shared by the servers of one handle. */
struct kcc_rpc_cfg {
    int connect_ms;             /* connect timeout */
    int retry_ms;               /* skip a server this long after a timeout */
};

void kcc_server_init(struct kcc_server *s, const struct kcc_uri *uri);
void kcc_server_deinit(struct kcc_server *s);

/* The server failed with rc: close, and after a timeout mark it down. */
void kcc_server_fail(struct kcc_server *s, const struct kcc_rpc_cfg *cfg, int rc);

/*
 * Connect if needed and send req (its id is set here) followed by the data
 * section iov[0..n) (iov may be modified).  0 or an error (the server has
 * been failed).  KVCACHE_EDOWN without I/O while the server is marked down.
 */
int kcc_rpc_send(struct kcc_server *s, const struct kcc_rpc_cfg *cfg,
                 Kvcache__Request *req, struct iovec *iov, int n, uint64_t deadline_ms);

/*
 * Read the response to the request in flight: header and protobuf message.
 * *resp is to be freed with kvcache__response__free_unpacked(*resp, NULL).
 * The data section (s->data_left bytes) is still on the socket: read it with
 * kcc_rpc_recv_data.  0 or an error (the server has been failed).
 */
int kcc_rpc_recv(struct kcc_server *s, const struct kcc_rpc_cfg *cfg,
                 Kvcache__Response **resp, uint64_t deadline_ms);

/* Read the data section into iov[0..n), which must add up to data_left. */
int kcc_rpc_recv_data(struct kcc_server *s, const struct kcc_rpc_cfg *cfg,
                      struct iovec *iov, int n, uint64_t deadline_ms);

/* Map a kvcache.Code of a response to a KVCACHE_E* code (0 for OK). */
int kcc_rpc_code(int32_t code);

#endif
