/*
 * kc_dev.h - the device: a file or block device opened with O_DIRECT, and
 * one io_uring through which every read and write of the store goes.
 *
 * I/O is described by a struct dev_io that the caller owns; its address is
 * the io_uring user_data. Completions are reaped by dev_reap(), which calls
 * each io's callback. Short transfers are resubmitted for the rest, -EAGAIN
 * is retried. Requests beyond the ring's free entries wait in a backlog in
 * submission order; reads are queued ahead of writes so that a flood of slab
 * flushes does not delay reads (reads first).
 *
 * Reads stay ahead of writes in the device too: while foreground reads are
 * active (one is queued or in flight, or one was submitted in the last
 * DEV_READ_RECENT_NS), at most DEV_RD_WRITES writes (and background reads)
 * are in flight, each submitted in pieces of at most DEV_RD_PIECE bytes, so
 * a read waits behind at most about DEV_RD_WRITES * DEV_RD_PIECE bytes of
 * writes (0.5 ms at 2 GB/s) instead of max_writes whole flush chunks (64 MiB,
 * 30 ms). Otherwise writes go at full depth and size.
 */
#ifndef KC_DEV_H
#define KC_DEV_H

#include <stdbool.h>
#include <stdint.h>
#include <liburing.h>

#define DEV_READ_RECENT_NS 5000000ull  /* a read this recent keeps writes throttled */
#define DEV_RD_WRITES 1u               /* writes in flight while reads are active */
#define DEV_RD_PIECE (1u << 20)        /* bytes per write submission meanwhile */

enum dev_op { DEV_READ = 0, DEV_WRITE = 1 };

struct dev_io;
typedef void (*dev_cb)(struct dev_io *io, void *arg);

/* One read or write; buffer, length and offset 4 KiB aligned. */
struct dev_io {
    int op;               /* enum dev_op */
    bool bg;              /* background read: queued and throttled with
                             the writes, behind foreground reads */
    void *buf;
    uint32_t len;
    uint64_t off;         /* byte offset on the device */
    int res;              /* out: 0 or -errno */
    uint32_t done;        /* bytes transferred so far */
    dev_cb cb;            /* called once, from dev_reap() */
    void *arg;
    struct dev_io *next;  /* backlog link */
};

struct dev {
    int fd;
    int efd;              /* eventfd signalled on completions */
    bool direct;          /* opened with O_DIRECT */
    bool blockdev;
    uint64_t size;        /* usable bytes */
    struct io_uring ring;
    unsigned depth;       /* ring entries */
    unsigned inflight;    /* submitted, not yet completed */
    unsigned max_writes;  /* writes and background reads in flight at once */
    unsigned writes_inflight;
    unsigned reads_inflight;     /* foreground reads in flight */
    uint64_t last_read_ns;       /* when the last foreground read was queued */
    uint64_t throttled;          /* write submissions cut to DEV_RD_PIECE */
    struct dev_io *rq_head, *rq_tail;   /* backlog of reads */
    struct dev_io *wq_head, *wq_tail;   /* backlog of writes */
    uint64_t bytes_read, bytes_written, errors;
    bool sim;             /* no device: ios complete at once, no data */
    struct dev_io *done_head, *done_tail;  /* completed without the ring
                                              (simulation, injected faults) */
    uint64_t fault_read_every;   /* tests: fail every Nth read with EIO */
    uint64_t fault_write_every;  /* tests: fail every Nth write with EIO */
    int fault_errno;             /* tests: the error faults give (0: EIO) */
    uint64_t nreads, nwrites;    /* ios submitted, for the faults */
    uint64_t syncs;              /* durability barriers (dev_sync) */
    uint64_t fault_write_cut;    /* tests: writes after the Nth are discarded
                                    (reported done, never made): a power
                                    loss that keeps the order of writes */
    uint64_t writes_discarded;
};

/*
 * Open path with O_DIRECT (falling back to buffered I/O, with *direct set
 * false, only where the filesystem refuses O_DIRECT). A regular file is
 * created or extended to size; size 0 takes the existing size. Returns 0 or
 * -errno, with a message in err.
 */
int dev_init(struct dev *d, const char *path, uint64_t size, unsigned depth,
             char *err, size_t errlen);
void dev_deinit(struct dev *d);

/* A simulated device of size bytes: nothing is stored, every io succeeds. */
int dev_init_sim(struct dev *d, uint64_t size);

/* Queue an io and submit what the ring can take. */
void dev_submit(struct dev *d, struct dev_io *io);

/* Reap completions, calling callbacks; with wait, block for at least one
 * if any I/O is in flight. Returns completions handled or -errno. */
int dev_reap(struct dev *d, bool wait);

/* True if any io is in flight or queued. */
bool dev_busy(const struct dev *d);

/* Synchronous read or write through the ring (startup, superblock). Other
 * ios completing meanwhile get their callbacks as usual. */
int dev_rw_sync(struct dev *d, int op, void *buf, uint32_t len, uint64_t off);

/* Durability barrier (synchronous): every write completed before the call
 * is on stable storage when it returns (fdatasync; the file system or
 * block layer flushes the device's volatile cache). 0 or -errno. */
int dev_sync(struct dev *d);

/* Allocate an aligned buffer for I/O (zeroed); free with dev_free(). */
void *dev_alloc(uint64_t len);
void dev_free(void *p, uint64_t len);

#endif
