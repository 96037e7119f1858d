/*
 * test_reads_ahead_of_writes.c - while a foreground read is active, the
 * device holds at most DEV_RD_WRITES writes in flight, each cut into pieces
 * of at most DEV_RD_PIECE bytes (a read waits behind a few hundred
 * microseconds of writes, not a queue of 4 MiB flush chunks); with no read
 * about, writes go whole and at full depth. Every byte written in pieces
 * reads back. Counts what is in flight at each completion: no timing.
 */
#include "kt.h"

#include "ssd/kc_dev.h"

#define NW 8                  /* writes of 4 MiB, as a flush's chunks */
#define WLEN (4u * KT_MIB)

/* What the completions saw. */
struct seen {
    struct dev *d;
    unsigned done;
    unsigned max_writes;      /* writes in flight, most seen at a completion */
    unsigned reads;           /* reads completed */
};

/* Completion of one write: note the writes still in flight. */
static void on_write(struct dev_io *io, void *arg)
{
    struct seen *s = arg;

    KT_EQ(io->res, 0);
    KT_EQ(io->done, io->len);
    if (s->d->writes_inflight > s->max_writes)
        s->max_writes = s->d->writes_inflight;
    s->done++;
}

/* Completion of a read: read again while writes remain, so that reads
 * stay active through the whole run. */
static void on_read(struct dev_io *io, void *arg)
{
    struct seen *s = arg;

    KT_EQ(io->res, 0);
    s->reads++;
    if (s->done < NW)
        dev_submit(s->d, io);
}

/* Submit NW writes of WLEN at offset base (with a read first if with_read)
 * and wait for all; returns what the completions saw. */
static struct seen run(struct dev *d, uint8_t *wbuf, uint64_t base, bool with_read,
                       uint8_t *rbuf)
{
    struct dev_io w[NW], r;
    struct seen s = { .d = d };

    if (with_read) {
        r = (struct dev_io){ .op = DEV_READ, .buf = rbuf, .len = 64 * KT_KIB,
                             .off = 0, .cb = on_read, .arg = &s };
        dev_submit(d, &r);
    }
    for (int i = 0; i < NW; i++) {
        w[i] = (struct dev_io){ .op = DEV_WRITE, .buf = wbuf + (size_t)i * WLEN,
                                .len = WLEN, .off = base + (uint64_t)i * WLEN,
                                .cb = on_write, .arg = &s };
        dev_submit(d, &w[i]);
    }
    while (dev_busy(d))
        KT_CHECK(dev_reap(d, true) >= 0);
    KT_EQ(s.done, NW);
    KT_CHECK(with_read ? s.reads >= 1 : s.reads == 0);
    return s;
}

int main(void)
{
    char p[4200];
    char err[256];
    struct dev d;

    kt_begin("reads_ahead_of_writes");
    KT_OK(dev_init(&d, kt_path(p, sizeof(p), "dev"), 2ull * NW * WLEN + KT_MIB, 64,
                   err, sizeof(err)));
    uint8_t *wbuf = dev_alloc((uint64_t)NW * WLEN);
    uint8_t *rbuf = dev_alloc((uint64_t)NW * WLEN);
    KT_CHECK(wbuf != NULL && rbuf != NULL);
    struct kc_key k = kt_key(kt_seed);
    kt_fill(wbuf, NW * WLEN, &k);

    /* With a read about: one write in flight at a time, in pieces. */
    uint64_t cut0 = d.throttled;
    struct seen s = run(&d, wbuf, KT_MIB, true, rbuf);
    KT_LE(s.max_writes + 1, (unsigned)DEV_RD_WRITES);
    KT_LE((uint64_t)NW * (WLEN / DEV_RD_PIECE - 1), d.throttled - cut0);
    KT_OK(dev_rw_sync(&d, DEV_READ, rbuf, NW * WLEN, KT_MIB));
    KT_EQ(kt_verify(rbuf, NW * WLEN, &k), -1);

    /* Past the recent-read window: whole writes, several in flight. */
    usleep((useconds_t)(DEV_READ_RECENT_NS / 1000 + 2000));
    cut0 = d.throttled;
    memset(rbuf, 0, (size_t)NW * WLEN);
    s = run(&d, wbuf, KT_MIB + (uint64_t)NW * WLEN, false, rbuf);
    KT_EQ(d.throttled, cut0);
    KT_OK(dev_rw_sync(&d, DEV_READ, rbuf, NW * WLEN, KT_MIB + (uint64_t)NW * WLEN));
    KT_EQ(kt_verify(rbuf, NW * WLEN, &k), -1);
    printf("  writes in flight at a completion, no read about: up to %u (limit %u)\n",
           s.max_writes + 1, d.max_writes);

    dev_free(wbuf, (uint64_t)NW * WLEN);
    dev_free(rbuf, (uint64_t)NW * WLEN);
    dev_deinit(&d);
    printf("reads_ahead_of_writes: ok\n");
    return 0;
}
