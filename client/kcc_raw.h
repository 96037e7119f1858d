/*
 * kcc_raw.h - one request frame at a time, blocking up to a deadline: the
 * exchanges outside the multiplexer (Auth at connect, Attach, Release) and
 * the internal entry through which tools and tests speak the protocol with
 * the library's encoder where kvcache.h has no call (raw batches, requests
 * a well-behaved client never sends).  Not installed: the library's users
 * see only kvcache.h.
 *
 * Contract: kcc_raw_send frames and sends one request; kcc_raw_recv reads
 * one response frame whole, refusing a message over pb_max or a data
 * section over data_max (KVCACHE_EPROTO, nothing more is read).  An error
 * in the middle of a frame leaves the stream position unknown: the caller
 * closes the connection (kcc_raw_call does).
 */
#ifndef KCC_RAW_H
#define KCC_RAW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kcc_conn.h"
#include "kvcache.h"
#include "kvcache.pb-c.h"

/* One received response. */
struct kcc_raw_resp {
    Kvcache__Response *r;       /* the decoded message (NULL until received) */
    uint8_t *data;              /* its data section, malloc'd (NULL if empty) */
    uint64_t data_len;          /* bytes of data */
    int fds[2];                 /* descriptors passed with it (SCM_RIGHTS) */
    int nfds;                   /* how many of fds are open */
};

/* Frame req (id as set) with the data section data[0..ndata) and send it
 * all.  0, KVCACHE_EINVAL (message too large), -errno, KVCACHE_ETIMEDOUT. */
int kcc_raw_send(struct kcc_conn *c, const Kvcache__Request *req,
                 const struct iovec *data, int ndata, uint64_t deadline_ms);

/* Frame req declaring a data section of data_len bytes and send the
 * header and message only: the caller streams the data (kcc_raw_write), or
 * a test sends less than it declared.  Errors as kcc_raw_send. */
int kcc_raw_send_head(struct kcc_conn *c, const Kvcache__Request *req, uint64_t data_len,
                      uint64_t deadline_ms);

/* Send len bytes as they are. 0, -errno, KVCACHE_ETIMEDOUT. */
int kcc_raw_write(struct kcc_conn *c, const void *buf, size_t len, uint64_t deadline_ms);

/* Receive one response frame into *out (see the contract for the limits).
 * 0, KVCACHE_EPROTO, KVCACHE_ECLOSED, KVCACHE_ENOMEM, -errno,
 * KVCACHE_ETIMEDOUT; *out is filled only on 0 (free it). */
int kcc_raw_recv(struct kcc_conn *c, uint32_t pb_max, uint64_t data_max,
                 struct kcc_raw_resp *out, uint64_t deadline_ms);

/* Free what kcc_raw_recv gave, closing passed descriptors. */
void kcc_raw_resp_free(struct kcc_raw_resp *r);

/* Present $KVCACHE_TOKEN / $KVCACHE_TOKEN_FILE (if set) on a new
 * connection and wait for the answer: 0, KVCACHE_ESERVER (refused) or a
 * transport error. */
int kcc_raw_auth(struct kcc_conn *c, uint64_t deadline_ms);

/* The connection to server `server` of a handle, connected as a call would
 * connect it (Auth, Attach).  NULL with *rc set on failure. */
struct kcc_conn *kcc_raw_conn(kvcache_t *kc, uint32_t server, int *rc);

/* A fresh request id of that server (never reused by the handle). */
uint64_t kcc_raw_next_id(kvcache_t *kc, uint32_t server);

/* One request to a server of the handle and its response, within the
 * handle's timeout; req->id 0 takes a fresh id.  On a transport error the
 * connection is closed (the next call reconnects). */
int kcc_raw_call(kvcache_t *kc, uint32_t server, Kvcache__Request *req,
                 const void *data, size_t len, struct kcc_raw_resp *out);

#endif
