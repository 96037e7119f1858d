/*
 * kc_conn.h - one client connection: its input buffer, the data sink
 * that lets a value land straight in a memory slab, the output queue sent
 * with sendmsg from the engine's buffers, and backpressure. It knows no
 * protocol: each (the RPC, kc_rpc.h; memcache, kc_memcache.h) plugs in
 * through a struct conn_proto chosen at accept, and every queued answer
 * carries one release function for whatever engine memory it points at.
 *
 * Reading: the protocol's on_read parses buffered bytes at a message
 * boundary; a message with a data section points the sink at its
 * destination (state CS_DATA); the connection fills it (straight from
 * the socket when the buffer is empty) and calls on_data. A connection
 * stops reading new requests (backpressure) while its output queue or its
 * gets in flight are over a limit, so a slow reader only holds back
 * itself.
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
struct conn;
struct put_ctx;
struct mc_conn;
struct shm_conn;

/* Backpressure limits of one connection. */
#define CONN_OUT_BYTES_MAX (64ull << 20)
#define CONN_OUT_COUNT_MAX 1024
#define CONN_GETS_MAX 256
#define CONN_IBUF_SIZE (64u << 10)

/* What one step of the connection's reader achieved. */
enum step {
    STEP_CLOSED = -1,      /* the connection was closed */
    STEP_NEED_INPUT = 0,   /* read more bytes */
    STEP_PROGRESS = 1,     /* did something; step again */
    STEP_BLOCKED = 2,      /* waiting (KC_EBUSY, backpressure) */
};

/* Where the reader is. CS_DATA is the connection's; the others are the
 * protocol's (memcache uses CS_HDR only: at a command boundary). */
enum conn_state {
    CS_HDR,     /* waiting for a message (RPC: its frame header) */
    CS_PB,      /* RPC: waiting for the protobuf message */
    CS_DATA,    /* consuming a data section into the sink */
};

/* What a protocol plugs into a connection (one table per protocol, set at
 * accept; kc_rpc.c, kc_memcache.c). */
struct conn_proto {
    const char *name;      /* for log lines */
    /* At a message boundary (state != CS_DATA): parse buffered bytes;
     * returns a step (STEP_NEED_INPUT for more bytes). */
    int (*on_read)(struct conn *c);
    /* The sink of a data section is full: go on with the message. */
    int (*on_data)(struct conn *c);
    /* The output queue became empty (NULL: nothing to do). */
    void (*on_drained)(struct conn *c);
    /* The connection closes: abort what is in progress. */
    void (*on_close)(struct conn *c);
    /* The connection is freed (every get finished): free the protocol's
     * state (NULL: none). */
    void (*on_free)(struct conn *c);
    /* Answers leave in request order: one get in flight at a time. */
    bool ordered;
};

/* Releases what a queued answer points at, once sent or dropped. */
typedef void (*conn_rel_fn)(struct server *s, void *arg);

/* One queued response: iovecs into its own allocation (header, text) and
 * into engine memory, which rel(rel_arg) gives back once sent. */
struct resp {
    struct resp *next;
    conn_rel_fn rel;       /* called on rel_arg once sent or dropped */
    void *rel_arg;
    size_t total;          /* bytes of all iovs */
    size_t owned;          /* bytes of this allocation (kc_budget.h) */
    size_t sent;           /* bytes of iov[cur] already sent */
    int niov;
    int cur;               /* first iov not fully sent */
    struct iovec iov[];
};

/* A client connection. */
struct conn {
    struct loop_handler lh;     /* must stay first: the loop's handle */
    struct server *srv;
    const struct conn_proto *proto; /* the protocol spoken (set at accept) */
    struct conn *prev, *next;   /* server's live list */
    struct conn *kick_next;     /* server's kick list */
    struct conn *dead_next;     /* server's dead list */
    uint64_t id;                /* for log lines */
    bool is_unix;
    int cred;                   /* enum auth_cred (kc_auth.h) */
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
    uint64_t sink_ns;           /* when a non-NULL sink was set: its bytes
                                   must arrive within --put-timeout */
    struct put_ctx *put;        /* Put being received, or NULL */
    Kvcache__Request *parked;   /* a get waiting for the in-flight budget:
                                   dispatched again before anything else */
    uint64_t inflight_bytes;    /* kc_budget.h: this connection's share */
    uint64_t ibuf_charged;      /* of which: ibuf beyond CONN_IBUF_SIZE */
    /* output */
    struct resp *out_head, *out_tail;
    uint64_t out_bytes;         /* unsent bytes queued */
    unsigned out_count;
    unsigned gets_inflight;     /* get batches submitted, not yet done */
    uint64_t last_active_ns;
    uint64_t last_sent_ns;      /* last byte sent, or the queue filled */
};

/* Accept-time setup of c around fd, speaking proto. 0 or -1. */
int conn_init(struct conn *c, struct server *s, int fd, bool is_unix,
              const struct conn_proto *proto);

/* Ask for c to be processed again before the next sleep (the server's
 * kick list). */
void conn_kick(struct conn *c);

/* May a new request be started (not stopping, not backpressured, no get
 * in flight on an ordered protocol)? */
bool conn_may_start(const struct conn *c);

/* Read and process what is there, then update the loop interest. */
void conn_process(struct conn *c);

/* Close now: abort a Put in progress, drop queued output. */
void conn_close(struct conn *c, const char *why);

/* Free a closed connection whose gets have all finished. */
void conn_free(struct conn *c);

/*
 * A new response with room for niov iovecs and extra bytes of its own
 * (conn_resp_extra), or NULL (then rel(rel_arg) was called and the
 * connection closed: out of memory). rel may be NULL.
 */
struct resp *conn_resp_new(struct conn *c, int niov, size_t extra,
                           conn_rel_fn rel, void *rel_arg);

/* The extra bytes of rp. */
void *conn_resp_extra(struct resp *rp);

/* Queue rp (its iov[0..rp->niov) filled, total bytes in all) and try to
 * send right away. The one path every answer takes. */
void conn_resp_queue(struct conn *c, struct resp *rp, size_t total);

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
                   conn_rel_fn rel, void *rel_arg);

/* Queue a line of text (no engine memory). */
void conn_send_text(struct conn *c, const char *text, size_t len);

/* Make room for need contiguous unread bytes in the input buffer. 0 / -1. */
int conn_ibuf_room(struct conn *c, size_t need);

/* Wait for the in-flight budget (kc_budget.h): retried every loop
 * iteration, like a Put waiting for a memory slab. Returns STEP_BLOCKED. */
int conn_budget_wait(struct conn *c);

/* Skip a request's data section (after an error response). */
void conn_skip_data(struct conn *c, uint64_t len);

/* Point the data sink at buf (NULL = discard) for len bytes. */
void conn_set_sink(struct conn *c, void *buf, uint64_t len);

/* Update epoll interest from the state (read allowed, output pending). */
void conn_update_events(struct conn *c);

#endif
