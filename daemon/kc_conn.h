/*
 * kc_conn.h - one client connection: the frame reader state machine, the
 * data sink that lets Put bytes land straight in a memory slab, and the
 * output queue sent with sendmsg from the engine's buffers.
 *
 * Reading: header -> protobuf -> data section. Requests are started in
 * arrival order; responses are queued as they finish (out of order for
 * gets that wait on the device). A connection stops reading new requests
 * (backpressure) while its output queue or its gets in flight are over a
 * limit, so a slow reader only holds back itself.
 */
#ifndef KC_CONN_H
#define KC_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "daemon/kc_loop.h"
#include "kc_frame.h"
#include "kvcache.pb-c.h"

struct server;
struct get_ctx;
struct put_ctx;
struct mc_conn;
struct shm_conn;

/* Backpressure limits of one connection. */
#define CONN_OUT_BYTES_MAX (64ull << 20)
#define CONN_OUT_COUNT_MAX 1024
#define CONN_GETS_MAX 256
#define CONN_IBUF_SIZE (64u << 10)

/* Where the reader is. */
enum conn_state {
    CS_HDR,     /* waiting for a frame header */
    CS_PB,      /* waiting for the protobuf message */
    CS_DATA,    /* consuming the data section into the sink */
};

/* One queued response: iov[0] is the header + protobuf (owned), the rest
 * point into engine memory held by get until the response is sent. */
struct resp {
    struct resp *next;
    struct get_ctx *get;   /* released after sending, or NULL */
    void (*rel)(struct server *, void *);  /* or this is called on rel_arg */
    void *rel_arg;
    size_t total;          /* bytes of all iovs */
    size_t sent;           /* bytes of iov[cur] already sent */
    int niov;
    int cur;               /* first iov not fully sent */
    struct iovec iov[];
};

/* A client connection. */
struct conn {
    struct loop_handler lh;     /* must stay first: the loop's handle */
    struct server *srv;
    struct conn *prev, *next;   /* server's live list */
    struct conn *kick_next;     /* server's kick list */
    struct conn *dead_next;     /* server's dead list */
    uint64_t id;                /* for log lines */
    bool is_unix;
    bool kicked;                /* on the kick list */
    bool closed;                /* fd closed, waiting to be freed */
    bool read_eof;              /* peer closed its side at a frame boundary */
    bool close_after_flush;     /* protocol error: send, then close */
    bool busy_wait;             /* a Put reservation got KC_EBUSY */
    struct mc_conn *mc;         /* memcache protocol state (kc_memcache.c),
                                   NULL on protobuf connections */
    struct shm_conn *shm;       /* staging area and leases (kc_shm.c),
                                   NULL until the client attaches */
    char peer[48];
    /* input */
    uint8_t *ibuf;
    size_t icap, ipos, ilen;    /* unread bytes are ibuf[ipos..ilen) */
    enum conn_state state;
    struct kc_frame_hdr hdr;    /* frame being read */
    uint8_t *sink;              /* data destination; NULL = discard */
    uint64_t sink_left;         /* bytes still to put in the sink */
    struct put_ctx *put;        /* Put being received, or NULL */
    /* output */
    struct resp *out_head, *out_tail;
    uint64_t out_bytes;         /* unsent bytes queued */
    unsigned out_count;
    unsigned gets_inflight;     /* get batches submitted, not yet done */
    uint64_t last_active_ns;
};

/* Accept-time setup of c around fd. 0 or -1. */
int conn_init(struct conn *c, struct server *s, int fd, bool is_unix);

/* Read and process what is there, then update the loop interest. */
void conn_process(struct conn *c);

/* Close now: abort a Put in progress, drop queued output. */
void conn_close(struct conn *c, const char *why);

/* Free a closed connection whose gets have all finished. */
void conn_free(struct conn *c);

/*
 * Queue a response: r packed behind a frame header, then ndata iovecs of
 * data (data_len bytes in all). owner, if any, is released once sent (or
 * at once if the connection is closed). Tries to send right away.
 */
void conn_send(struct conn *c, const Kvcache__Response *r,
               const struct iovec *data, int ndata, uint64_t data_len,
               struct get_ctx *owner);

/* Queue an error response with a formatted message. */
void conn_send_error(struct conn *c, uint64_t id, int code,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * A piece of a raw (memcache) response: data NULL means text[off..off+len)
 * of the text passed along (copied into the response), else len bytes of
 * engine memory at data (sent from there).
 */
struct conn_piece {
    const void *data;
    size_t off;
    size_t len;
};

/* Queue a raw response; rel(rel_arg) runs once it is sent or dropped. */
void conn_send_raw(struct conn *c, const char *text, size_t tlen,
                   const struct conn_piece *p, int np,
                   void (*rel)(struct server *, void *), void *rel_arg);

/* Queue a line of text (no engine memory). */
void conn_send_text(struct conn *c, const char *text, size_t len);

/* Make room for need contiguous unread bytes in the input buffer. 0 / -1. */
int conn_ibuf_room(struct conn *c, size_t need);

/* Skip a request's data section (after an error response). */
void conn_skip_data(struct conn *c, uint64_t len);

/* Point the data sink at buf (NULL = discard) for len bytes. */
void conn_set_sink(struct conn *c, void *buf, uint64_t len);

/* Update epoll interest from the state (read allowed, output pending). */
void conn_update_events(struct conn *c);

#endif
