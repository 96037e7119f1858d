/*
 * kc_dev.c - device open and io_uring submission/completion (kc_dev.h).
 */
#include "ssd/kc_dev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A cheap invariant, checked in every build. */
#define KC_DEV_ASSERT(c) \
    do { if (!(c)) { fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #c); \
                     abort(); } } while (0)

/* Monotonic clock in ns (the read-recency window). */
static uint64_t dev_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* True while foreground reads are active: writes are throttled. */
static bool dev_reads_active(const struct dev *d, uint64_t now)
{
    return d->rq_head != NULL || d->reads_inflight > 0 ||
           now - d->last_read_ns < DEV_READ_RECENT_NS;
}

/* Open the file or device, O_DIRECT if the filesystem allows it. */
static int dev_open_fd(struct dev *d, const char *path, char *err, size_t errlen)
{
    d->fd = open(path, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
    d->direct = true;
    if (d->fd < 0 && errno == EINVAL) {
        /* tmpfs and some others refuse O_DIRECT: go on buffered. */
        d->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        d->direct = false;
    }
    if (d->fd < 0) {
        int e = errno;
        snprintf(err, errlen, "open %s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

/* Work out the usable size; extend a regular file to size if needed. */
static int dev_size_fd(struct dev *d, const char *path, uint64_t size,
                       char *err, size_t errlen)
{
    struct stat sb;

    if (fstat(d->fd, &sb) < 0)
        goto err;
    if (S_ISBLK(sb.st_mode)) {
        uint64_t bytes;
        d->blockdev = true;
        if (ioctl(d->fd, BLKGETSIZE64, &bytes) < 0)
            goto err;
        if (size == 0 || size > bytes)
            size = bytes;
    } else {
        if (size == 0)
            size = (uint64_t)sb.st_size;
        if ((uint64_t)sb.st_size < size) {
            int rc = posix_fallocate(d->fd, 0, (off_t)size);
            if (rc == EOPNOTSUPP || rc == EINVAL)
                rc = ftruncate(d->fd, (off_t)size) < 0 ? errno : 0;
            if (rc != 0) {
                snprintf(err, errlen, "grow %s to %llu bytes: %s", path,
                         (unsigned long long)size, strerror(rc));
                return -rc;
            }
        }
    }
    d->size = size & ~(uint64_t)4095;
    return 0;
err:
    snprintf(err, errlen, "size of %s: %s", path, strerror(errno));
    return -errno;
}

int dev_init(struct dev *d, const char *path, uint64_t size, unsigned depth,
             char *err, size_t errlen)
{
    int rc;

    memset(d, 0, sizeof(*d));
    d->fd = d->efd = -1;
    d->depth = depth ? depth : 64;
    d->max_writes = d->depth / 2 > 16 ? 16 : d->depth / 2;
    if (d->max_writes == 0)
        d->max_writes = 1;
    rc = dev_open_fd(d, path, err, errlen);
    if (rc < 0)
        goto fail;
    rc = dev_size_fd(d, path, size, err, errlen);
    if (rc < 0)
        goto fail;
    rc = io_uring_queue_init(d->depth, &d->ring, 0);
    if (rc < 0) {
        snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-rc));
        goto fail;
    }
    d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->efd < 0 || io_uring_register_eventfd(&d->ring, d->efd) < 0) {
        rc = -errno;
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        io_uring_queue_exit(&d->ring);
        goto fail;
    }
    return 0;
fail:
    if (d->efd >= 0)
        close(d->efd);
    if (d->fd >= 0)
        close(d->fd);
    d->fd = d->efd = -1;
    return rc;
}

int dev_init_sim(struct dev *d, uint64_t size)
{
    memset(d, 0, sizeof(*d));
    d->sim = true;
    d->size = size & ~(uint64_t)4095;
    d->depth = 64;
    d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    d->fd = -1;
    return d->efd < 0 ? -errno : 0;
}

void dev_deinit(struct dev *d)
{
    if (d->sim) {
        while (dev_busy(d))
            dev_reap(d, false);
        if (d->efd >= 0)
            close(d->efd);
        d->efd = -1;
        d->sim = false;
        return;
    }
    if (d->fd < 0)
        return;
    while (dev_busy(d))
        dev_reap(d, true);
    io_uring_queue_exit(&d->ring);
    close(d->efd);
    close(d->fd);
    d->fd = d->efd = -1;
}

/* Put one io into a submission queue entry: its remaining bytes, or at
 * most piece bytes of them (0: no limit); the rest goes as a short
 * transfer does, requeued at the front when this part completes. */
static void dev_prep(struct dev *d, struct io_uring_sqe *sqe, struct dev_io *io,
                     unsigned piece)
{
    char *p = (char *)io->buf + io->done;
    unsigned n = io->len - io->done;
    uint64_t off = io->off + io->done;

    if (piece != 0 && n > piece) {
        n = piece;
        d->throttled++;
    }

    if (io->op == DEV_READ)
        io_uring_prep_read(sqe, d->fd, p, n, off);
    else
        io_uring_prep_write(sqe, d->fd, p, n, off);
    io_uring_sqe_set_data(sqe, io);
    d->inflight++;
    if (io->op == DEV_WRITE || io->bg)
        d->writes_inflight++;
    else
        d->reads_inflight++;
}

/* Move backlog into the ring, reads first, writes up to max_writes (or
 * DEV_RD_WRITES pieces of DEV_RD_PIECE while reads are active). */
static void dev_pump(struct dev *d)
{
    struct io_uring_sqe *sqe;
    int queued = 0;
    unsigned maxw = d->max_writes, piece = 0;

    while (d->rq_head != NULL && (sqe = io_uring_get_sqe(&d->ring)) != NULL) {
        struct dev_io *io = d->rq_head;
        d->rq_head = io->next;
        if (d->rq_head == NULL)
            d->rq_tail = NULL;
        dev_prep(d, sqe, io, 0);
        queued++;
    }
    if (d->wq_head != NULL && dev_reads_active(d, dev_now_ns())) {
        maxw = DEV_RD_WRITES < maxw ? DEV_RD_WRITES : maxw;
        piece = DEV_RD_PIECE;
    }
    while (d->wq_head != NULL && d->writes_inflight < maxw &&
           (sqe = io_uring_get_sqe(&d->ring)) != NULL) {
        struct dev_io *io = d->wq_head;
        d->wq_head = io->next;
        if (d->wq_head == NULL)
            d->wq_tail = NULL;
        dev_prep(d, sqe, io, piece);
        queued++;
    }
    if (queued > 0)
        io_uring_submit(&d->ring);
}

/* Append io to the backlog of its kind. */
static void dev_enqueue(struct dev *d, struct dev_io *io, bool front)
{
    bool fg = io->op == DEV_READ && !io->bg;
    struct dev_io **head = fg ? &d->rq_head : &d->wq_head;
    struct dev_io **tail = fg ? &d->rq_tail : &d->wq_tail;

    if (front) {
        io->next = *head;
        *head = io;
        if (*tail == NULL)
            *tail = io;
        return;
    }
    io->next = NULL;
    if (*tail != NULL)
        (*tail)->next = io;
    else
        *head = io;
    *tail = io;
}

/* Complete io with res at the next reap, without the ring (simulation,
 * injected faults); the eventfd is signalled as for a real completion. */
static void dev_defer(struct dev *d, struct dev_io *io, int res)
{
    uint64_t one = 1;

    io->res = res;
    io->next = NULL;
    if (d->done_tail != NULL)
        d->done_tail->next = io;
    else
        d->done_head = io;
    d->done_tail = io;
    d->inflight++;
    if (write(d->efd, &one, sizeof(one)) < 0) {
        /* the counter cannot overflow here; nothing else to do */
    }
}

void dev_submit(struct dev *d, struct dev_io *io)
{
    io->res = 0;
    io->done = 0;
    uint64_t n = io->op == DEV_READ ? ++d->nreads : ++d->nwrites;
    uint64_t every = io->op == DEV_READ ? d->fault_read_every : d->fault_write_every;
    if (every != 0 && n % every == 0) {
        dev_defer(d, io, d->fault_errno != 0 ? -d->fault_errno : -EIO);
        return;
    }
    if (io->op == DEV_WRITE && d->fault_write_cut != 0 && n > d->fault_write_cut) {
        d->writes_discarded++;
        dev_defer(d, io, 0);
        return;
    }
    if (d->sim) {
        dev_defer(d, io, 0);
        return;
    }
    if (io->op == DEV_READ && !io->bg)
        d->last_read_ns = dev_now_ns();
    dev_enqueue(d, io, false);
    dev_pump(d);
}

/* Finish the ios completed without the ring. */
static int dev_reap_deferred(struct dev *d)
{
    struct dev_io *io = d->done_head;
    int n = 0;

    d->done_head = d->done_tail = NULL;
    while (io != NULL) {
        struct dev_io *next = io->next;
        d->inflight--;
        if (io->res == 0) {
            io->done = io->len;
            if (io->op == DEV_READ)
                d->bytes_read += io->len;
            else
                d->bytes_written += io->len;
        } else {
            d->errors++;
        }
        io->cb(io, io->arg);
        io = next;
        n++;
    }
    return n;
}

/* Handle one completion: requeue short or -EAGAIN transfers, else finish. */
static void dev_complete(struct dev *d, struct dev_io *io, int res)
{
    d->inflight--;
    if (io->op == DEV_WRITE || io->bg) {
        KC_DEV_ASSERT(d->writes_inflight > 0);
        d->writes_inflight--;
    } else {
        KC_DEV_ASSERT(d->reads_inflight > 0);
        d->reads_inflight--;
    }
    if (res == -EAGAIN || res == -EINTR) {
        dev_enqueue(d, io, true);
        return;
    }
    if (res < 0) {
        io->res = res;
        d->errors++;
    } else if (res == 0) {
        io->res = -EIO;     /* end of device: nothing more to transfer */
        d->errors++;
    } else {
        io->done += (uint32_t)res;
        if (io->op == DEV_READ)
            d->bytes_read += (uint64_t)res;
        else
            d->bytes_written += (uint64_t)res;
        if (io->done < io->len) {
            dev_enqueue(d, io, true);
            return;
        }
    }
    io->cb(io, io->arg);
}

int dev_reap(struct dev *d, bool wait)
{
    struct io_uring_cqe *cqe;
    int n = 0;
    uint64_t junk;

    if (d->done_head != NULL) {
        if (read(d->efd, &junk, sizeof(junk)) < 0 && errno != EAGAIN)
            return -errno;
        n = dev_reap_deferred(d);
        wait = false;           /* something was done: do not block */
    }
    if (d->sim)
        return n;
    if (wait && d->inflight > 0) {
        int rc = io_uring_wait_cqe(&d->ring, &cqe);
        if (rc < 0 && rc != -EINTR)
            return rc;
    }
    /* Clear the eventfd before reaping so no wakeup is lost. */
    if (read(d->efd, &junk, sizeof(junk)) < 0 && errno != EAGAIN)
        return -errno;
    while (io_uring_peek_cqe(&d->ring, &cqe) == 0) {
        struct dev_io *io = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&d->ring, cqe);
        dev_complete(d, io, res);
        n++;
    }
    dev_pump(d);
    return n;
}

bool dev_busy(const struct dev *d)
{
    return d->inflight > 0 || d->done_head != NULL || d->rq_head != NULL || d->wq_head != NULL;
}

/* Callback of a synchronous io: mark it finished. */
static void dev_sync_cb(struct dev_io *io, void *arg)
{
    (void)io;
    *(int *)arg = 1;
}

int dev_rw_sync(struct dev *d, int op, void *buf, uint32_t len, uint64_t off)
{
    int finished = 0;
    struct dev_io io = { .op = op, .buf = buf, .len = len, .off = off,
                         .cb = dev_sync_cb, .arg = &finished };

    dev_submit(d, &io);
    while (!finished) {
        int rc = dev_reap(d, true);
        if (rc < 0)
            return rc;
    }
    return io.res;
}

int dev_sync(struct dev *d)
{
    if (d->sim)
        return 0;
    d->syncs++;
    return fdatasync(d->fd) == 0 ? 0 : -errno;
}

void *dev_alloc(uint64_t len)
{
    void *p;

    if (len >= (2u << 20)) {
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        /* Huge pages: an O_DIRECT transfer pins one folio per 2 MiB
         * instead of 512 pages (best effort: THP may be off). */
        madvise(p, len, MADV_HUGEPAGE);
        return p;
    }
    if (posix_memalign(&p, 4096, len) != 0)
        return NULL;
    memset(p, 0, len);
    return p;
}

void dev_free(void *p, uint64_t len)
{
    if (p == NULL)
        return;
    if (len >= (2u << 20))
        munmap(p, len);
    else
        free(p);
}
