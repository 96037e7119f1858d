/*
 * kcc_mux.h - the exchanges of one call with several servers, driven
 * together by one poll() loop.
 *
 * A call is a set of transfers (struct kcc_xfer): one request to one server,
 * possibly with a data section to send, and one response whose data section
 * is read straight into buffers that the transfer's owner names once it has
 * seen the response message.  Each server's requests are pipelined on its
 * connection and its responses are matched by request id (the daemon may
 * answer out of order).  All servers progress at once, so a frozen server
 * costs its own transfers (ETIMEDOUT at the call's deadline) and never the
 * others'.
 *
 * Failure policy: any I/O or framing error closes that server's connection
 * (the next call reconnects); a timeout also marks the server down for
 * retry_ms, during which calls skip it at once with KVCACHE_EDOWN.
 */
#ifndef KCC_MUX_H
#define KCC_MUX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kcc_conn.h"
#include "kcc_shm.h"
#include "kvcache.pb-c.h"

struct kcc_xfer;

/*
 * Called with the decoded response of a transfer (code OK or not).  It
 * checks it, and for a data section names where its bytes go: *iov / *niov
 * (owned by the caller, adding up to data_len), or leaves *iov NULL to have
 * them discarded.  Returns 0 or an error for the transfer.
 */
typedef int (*kcc_xfer_resp_fn)(struct kcc_xfer *x, Kvcache__Response *resp,
                                uint64_t data_len, struct iovec **iov, int *niov);

/* One request/response with one server. */
struct kcc_xfer {
    uint32_t server;            /* index of the server */
    Kvcache__Request *req;      /* the request (its id is set by the mux) */
    struct iovec *data;         /* data section to send (not modified) */
    int ndata;
    kcc_xfer_resp_fn on_resp;   /* response handler */
    void *arg;                  /* for the handler */
    int rc;                     /* result: 0, KVCACHE_E*, -errno */
    int32_t code;               /* the response's code (for UNKNOWN_NAMESPACE) */
    /* private to the mux */
    int state;                  /* queued, in flight, done */
    uint8_t hdr[20];            /* frame header to send */
    uint8_t *pb;                /* packed request */
    size_t pblen;
};

/* Receive state of a server's connection. */
struct kcc_rx {
    int phase;                  /* header, message, data */
    uint8_t hdr[20];            /* frame header being read */
    size_t got;                 /* bytes of the current part read */
    uint8_t *pb;                /* message buffer */
    size_t pb_cap, pb_len;
    uint64_t data_left;         /* data bytes still to read */
    struct iovec *iov;          /* where they go (NULL: discard) */
    int niov;
    struct kcc_xfer *cur;       /* the transfer the response belongs to */
};

/* One server as one thread sees it. */
struct kcc_server {
    struct kcc_conn conn;       /* the socket, reconnected on demand */
    uint64_t next_id;           /* request id counter */
    struct kcc_rx rx;           /* receive state */
    uint64_t timeouts;          /* exchanges that timed out */
    struct kcc_shm shm;         /* shared region and staging (kcc_shm.c) */
};

/* Connect and retry settings of a handle. */
struct kcc_mux_cfg {
    int connect_ms;
    int retry_ms;
};

/* True while a server is being skipped after a timeout (no I/O). */
int kcc_server_down(const struct kcc_server *s);

void kcc_server_init(struct kcc_server *s, const struct kcc_uri *uri);

/* Connect if needed (replacing a connection the server closed) and attach a
 * new unix connection to the daemon's shared memory.  0 or an error. */
int kcc_server_connect(struct kcc_server *s, const struct kcc_mux_cfg *cfg,
                       uint64_t deadline_ms);
void kcc_server_deinit(struct kcc_server *s);

/*
 * Run the transfers x[0..n) against srv[] until each is done or failed, or
 * the deadline passes.  Each x[i].rc says how it ended.  Returns 0, or
 * KVCACHE_ENOMEM if nothing could be started.
 */
int kcc_mux_run(struct kcc_server *srv, const struct kcc_mux_cfg *cfg,
                struct kcc_xfer **x, size_t n, uint64_t deadline_ms);

/* Map a kvcache.Code to a KVCACHE_E* code (0 for OK, EXISTS and MISS). */
int kcc_code(int32_t code);

#endif
