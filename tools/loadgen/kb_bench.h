/*
 * kb_bench.h - the load generator's run: its configuration, the shared
 * state of the client threads, and per-thread statistics.
 *
 * A run is closed loop: each of `conns` threads owns one connection and has
 * one request in flight at a time. It lasts `duration` seconds or `count`
 * requests. The random workload may start with a fill phase (every key of
 * the key space written once) reported on its own.
 */
#ifndef KB_BENCH_H
#define KB_BENCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kb_conn.h"
#include "kb_hist.h"
#include "kb_trace.h"

enum kb_workload { KB_W_RANDOM, KB_W_CHAT, KB_W_TRACE };
enum kb_op { KB_OP_GET, KB_OP_PUT, KB_NOPS };

/* Everything the command line sets. */
struct kb_cfg {
    struct kb_target target;
    enum kb_workload workload;
    unsigned conns;          /* client threads, one connection each */
    double duration;         /* seconds of the measured phase */
    uint64_t count;          /* or this many requests (0: use duration) */
    uint32_t block;          /* block bytes */
    uint64_t seed;
    bool json;               /* summary as JSON on stdout */
    int progress;            /* live line on stderr: -1 auto (a tty), 0, 1 */
    bool verify;             /* check the stamp of every block read */
    /* random blocks */
    uint64_t keys;           /* key space */
    double read_ratio;       /* fraction of requests that are gets */
    unsigned batch;          /* keys per request */
    bool fill;               /* write the key space first */
    /* multi-turn chat */
    unsigned convs;          /* conversations open at once */
    unsigned max_turns;      /* turns of the longest conversation */
    unsigned sys_prompts;    /* distinct system prompts, shared */
    unsigned sys_tokens;     /* tokens of a system prompt */
    unsigned user_tokens;    /* median tokens of a user message */
    unsigned reply_tokens;   /* median tokens of a reply */
    unsigned block_tokens;   /* tokens per block */
    unsigned max_tokens;     /* a conversation ends past this */
    /* trace replay */
    const char *trace_path;
    bool real_time;          /* honour arrival times (scaled by speed) */
    double speed;
    bool loop;               /* start over at the end of the trace */
    bool hints;              /* mark the puts of finished chains */
};

/* Counters of one kind of operation. */
struct kb_opstat {
    struct kb_hist h;        /* latency of every request */
    uint64_t blocks;         /* blocks moved */
    uint64_t bytes;          /* block bytes moved */
    uint64_t errors;         /* failed requests */
};

/* Counters of one thread (and, summed, of the run). */
struct kb_stat {
    struct kb_opstat op[KB_NOPS];
    uint64_t requests;       /* workload requests (a chat turn, a trace line) */
    uint64_t asked;          /* blocks asked for by gets */
    uint64_t hit;            /* blocks found */
    double prefix_sum;       /* sum over gets of found / asked */
    uint64_t prefix_n;       /* gets counted in prefix_sum */
    uint64_t tokens;         /* trace: prompt tokens of the requests */
    uint64_t hit_tokens;     /* trace: of which covered by the prefix found */
    uint64_t verify_fail;    /* blocks with a wrong stamp */
    uint64_t retries;        /* fill puts retried (server out of memory) */
};

struct kb_run;

/* One client thread. */
struct kb_thread {
    struct kb_run *run;
    unsigned id;
    pthread_t tid;
    struct kb_conn conn;
    struct kb_stat st;       /* of the phase running */
    uint64_t rng;
    void **rbufs;            /* receive buffers, max_blocks of them */
    void **wbufs;            /* send buffers (stamped before each put) */
    kvcache_key_t *keys;
    uint32_t *lens;
    uint32_t *tokens;        /* chat: scratch */
    void *work;              /* workload state of this thread */
    char err[256];           /* first error seen */
};

/* The run. */
struct kb_run {
    struct kb_cfg cfg;
    struct kb_trace trace;
    uint32_t max_blocks;             /* most blocks in one request */
    struct kb_thread *th;
    volatile int stop;               /* set when the phase is over */
    uint64_t next;                   /* requests claimed (count / trace) */
    uint64_t fill_next;              /* fill: next key index */
    int phase;                       /* 0 fill, 1 measured */
    double t0;                       /* start of the phase (s, monotonic) */
    pthread_barrier_t ready;
    /* the progress line's thread */
    pthread_t prog_tid;
    bool prog_on;
    const char *prog_phase;
    pthread_mutex_t prog_mu;
    pthread_cond_t prog_cv;
};

/* Seconds on the monotonic clock. */
double kb_now(void);

/* Key of block i of the random workload: the same for every --seed, so a
 * run with another seed reads what a fill wrote (the seed varies the order
 * of accesses, not the keys). */
#define KB_KEY_SEED 0x6b76636163686521ull
kvcache_key_t kb_random_key(uint64_t seed, uint64_t i);

/* Run one phase (0 fill, 1 measured) on every thread; the stats of each
 * thread are left in th[i].st. Returns the seconds it took. */
double kb_run_phase(struct kb_run *r, int phase);

/* Set up / tear down the threads' connections and buffers. */
int kb_run_init(struct kb_run *r, char *err, size_t errlen);
void kb_run_deinit(struct kb_run *r);

/* Reports (kb_report.c). */
void kb_stat_merge(struct kb_stat *dst, const struct kb_stat *src);
void kb_progress_start(struct kb_run *r, const char *phase);
void kb_progress_stop(struct kb_run *r);
void kb_report_text(const struct kb_run *r, const char *phase, const struct kb_stat *s,
                    double secs);
void kb_report_json(const struct kb_run *r, const struct kb_stat *fill, double fill_secs,
                    const struct kb_stat *s, double secs);

#endif
