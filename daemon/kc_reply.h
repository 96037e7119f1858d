/*
 * kc_reply.h - answers of the RPC: a Response packed behind its frame
 * header and queued on the connection (with iovecs into engine memory and
 * the one release function of kc_conn.h), the per-op latency and error
 * counts, and the checks every key operation makes before it answers
 * (keys field, namespace).
 */
#ifndef KC_REPLY_H
#define KC_REPLY_H

#include <stdint.h>
#include <sys/uio.h>

#include "daemon/kc_conn.h"
#include "kvcache.pb-c.h"
#include "slab/kc_store.h"

/*
 * Queue a response: r packed behind a frame header, then ndata iovecs of
 * data (data_len bytes in all). rel(rel_arg), if rel is not NULL, gives
 * back what the iovecs point at once sent (or at once if the connection
 * is closed). Tries to send right away.
 */
void rpc_send(struct conn *c, const Kvcache__Response *r,
              const struct iovec *data, int ndata, uint64_t data_len,
              conn_rel_fn rel, void *rel_arg);

/* Queue an error response with a formatted message. */
void rpc_send_error(struct conn *c, uint64_t id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Queue r as the answer to op, recording its latency; returns a step. */
int rpc_reply(struct conn *c, int op, uint64_t t0, Kvcache__Response *r);

/* Answer an error for op (message formatted by the caller); a step. */
int rpc_reply_error(struct conn *c, int op, uint64_t id, uint64_t t0,
                    int code, const char *msg);

/* Check a `bytes keys` list: a multiple of 16, at most --max-batch keys
 * (their count in *n). Answers the error itself and returns -1 when not. */
int rpc_keys_check(struct conn *c, int op, uint64_t id, uint64_t t0,
                   const ProtobufCBinaryData *b, size_t *n);

/* Look a namespace up; answers UNKNOWN_NAMESPACE and returns -1 if absent. */
int rpc_ns_check(struct conn *c, int op, uint64_t id, uint64_t t0,
                 uint64_t ns, struct store_ns_info *info);

/* A store KC_* code as a wire kvcache.Code. */
int code_from_kc(int rc);

#endif
