/*
 * kb_work.c - the client threads and the three workloads.
 *
 * random: each request gets (or, by the mix, puts) `batch` keys drawn
 *   uniformly from the key space; key i is xxh3-128 of i with the seed.
 * chat: each thread owns a share of the conversations; a turn appends a
 *   user message to one conversation, asks for the prefix of the prompt
 *   (GetPrefix of the prompt's full blocks), then stores the blocks that
 *   were missing plus those of the reply (Put), as an engine does after
 *   prefill and decode. A conversation starts with one of a few shared
 *   system prompts and ends after its turn budget or max_tokens.
 * trace: each request of the trace asks for the prefix of its full 512-token
 *   blocks and stores the missing ones; hash ids are chained into keys with
 *   kvcache_keys() (tokens_per_block 1, the id as the token), so a block's
 *   key depends on the ids before it, like the client's keys.
 *
 * Every block written carries a stamp: its key in the first and last 16
 * bytes, so --verify can check what comes back at no cost to the server.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "kb_bench.h"

double kb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64: the thread's random numbers. */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rnd01(uint64_t *s)
{
    return (double)(rnd(s) >> 11) * 0x1.0p-53;
}

/* Log-normal with this median, sigma 0.8 (chat message lengths), clamped. */
static unsigned rnd_len(uint64_t *s, unsigned median, unsigned lo, unsigned hi)
{
    double u1 = rnd01(s) + 1e-12, u2 = rnd01(s);
    double z = sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2);
    double v = exp(log((double)median) + 0.8 * z);
    if (v < lo)
        v = lo;
    if (v > hi)
        v = hi;
    return (unsigned)v;
}

kvcache_key_t kb_random_key(uint64_t seed, uint64_t i)
{
    XXH128_hash_t h = XXH3_128bits_withSeed(&i, sizeof(i), seed);
    return (kvcache_key_t){ h.low64, h.high64 };
}

/* Put the key's stamp into a block to send. */
static void stamp(void *buf, size_t len, kvcache_key_t k)
{
    uint8_t kb[16];
    kvcache_key_to_bytes(k, kb);
    memcpy(buf, kb, 16);
    memcpy((uint8_t *)buf + len - 16, kb, 16);
}

/* Does a block read back carry the stamp of its key? */
static bool stamped(const void *buf, size_t len, kvcache_key_t k)
{
    uint8_t kb[16];
    kvcache_key_to_bytes(k, kb);
    return memcmp(buf, kb, 16) == 0 && memcmp((const uint8_t *)buf + len - 16, kb, 16) == 0;
}

/* ---- one request, timed ---- */

/* Get keys[0..n) (prefix or not), count it; returns blocks found. */
static size_t do_get(struct kb_thread *t, size_t n, bool prefix)
{
    struct kb_cfg *c = &t->run->cfg;
    struct kb_opstat *o = &t->st.op[KB_OP_GET];
    size_t found = 0;
    uint64_t t0 = now_ns();
    int rc = kb_get(&t->conn, t->keys, n, prefix, t->rbufs, c->block, t->lens, &found);
    kb_hist_add(&o->h, now_ns() - t0);
    if (rc) {
        o->errors++;
        if (!t->err[0])
            snprintf(t->err, sizeof(t->err), "get: %.200s", t->conn.err);
    }
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        if (t->lens[i] == 0 || (prefix && i >= found))
            continue;
        hits++;
        o->bytes += t->lens[i];
        if (c->verify && (t->lens[i] != c->block || !stamped(t->rbufs[i], c->block, t->keys[i])))
            t->st.verify_fail++;
    }
    o->blocks += hits;
    t->st.asked += n;
    t->st.hit += hits;
    if (n) {
        t->st.prefix_sum += (double)found / (double)n;
        t->st.prefix_n++;
    }
    return found;
}

/* Put keys[first..first+n) at chain positions first..; 0 or the error. */
static int do_put(struct kb_thread *t, size_t first, size_t n, uint32_t hints)
{
    struct kb_cfg *c = &t->run->cfg;
    struct kb_opstat *o = &t->st.op[KB_OP_PUT];
    size_t stored = 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        stamp(t->wbufs[i], c->block, t->keys[first + i]);
    uint64_t t0 = now_ns();
    int rc = kb_put(&t->conn, t->keys + first, n, (uint32_t)first, hints,
                    (const void *const *)t->wbufs, c->block, &stored);
    kb_hist_add(&o->h, now_ns() - t0);
    /* what the server took (stored or already there); a refused block
     * moved bytes but is not throughput */
    o->blocks += stored;
    o->bytes += (uint64_t)stored * c->block;
    if (rc) {
        o->errors++;
        if (!t->err[0])
            snprintf(t->err, sizeof(t->err), "put: %.200s", t->conn.err);
    }
    return rc;
}

/* ---- random blocks ---- */

static void random_fill(struct kb_thread *t)
{
    struct kb_run *r = t->run;
    struct kb_cfg *c = &r->cfg;
    for (;;) {
        uint64_t first = __atomic_fetch_add(&r->fill_next, c->batch, __ATOMIC_RELAXED);
        if (first >= c->keys || r->stop)
            return;
        size_t n = c->keys - first < c->batch ? (size_t)(c->keys - first) : c->batch;
        for (size_t i = 0; i < n; i++)
            t->keys[i] = kb_random_key(KB_KEY_SEED, first + i);
        /* a server out of memory (memcached -M while extstore catches up)
         * refuses: retry for up to 30 s, as a filling client would */
        int rc, tries = 0;
        while ((rc = do_put(t, 0, n, 0)) != 0 && tries++ < 30000 && !r->stop) {
            t->st.op[KB_OP_PUT].errors--;
            t->st.retries++;
            usleep(1000);
        }
        if (rc == 0 && tries > 0)
            t->err[0] = '\0';   /* refused, then stored: not an error */
        t->st.requests++;
    }
}

static void random_op(struct kb_thread *t)
{
    struct kb_cfg *c = &t->run->cfg;
    for (unsigned i = 0; i < c->batch; i++)
        t->keys[i] = kb_random_key(KB_KEY_SEED, rnd(&t->rng) % c->keys);
    if (rnd01(&t->rng) < c->read_ratio)
        do_get(t, c->batch, false);
    else
        do_put(t, 0, c->batch, 0);
}

/* ---- multi-turn chat ---- */

/* One conversation. */
struct conv {
    uint32_t *tokens;        /* its history so far */
    unsigned ntok;
    unsigned turn;
    unsigned turns;          /* turns it will have */
};

struct chat {
    struct conv *cv;
    unsigned n;
    uint32_t *scratch;
};

/* Start conversation v over: a shared system prompt, a turn budget. */
static void conv_reset(struct kb_thread *t, struct conv *v)
{
    struct kb_cfg *c = &t->run->cfg;
    uint64_t app = rnd(&t->rng) % c->sys_prompts, s = c->seed ^ (app * 0x51ed27ull);
    unsigned n = c->sys_tokens < c->max_tokens ? c->sys_tokens : c->max_tokens / 2;
    for (unsigned i = 0; i < n; i++)
        v->tokens[i] = (uint32_t)rnd(&s) % 128000;
    v->ntok = n;
    v->turn = 0;
    v->turns = 1 + (unsigned)(rnd(&t->rng) % c->max_turns);
}

static int chat_init(struct kb_thread *t)
{
    struct kb_cfg *c = &t->run->cfg;
    struct chat *ch = calloc(1, sizeof(*ch));
    if (ch == NULL)
        return -ENOMEM;
    t->work = ch;
    ch->n = c->convs / c->conns + (t->id < c->convs % c->conns);
    if (ch->n == 0)
        ch->n = 1;
    ch->cv = calloc(ch->n, sizeof(*ch->cv));
    if (ch->cv == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < ch->n; i++) {
        ch->cv[i].tokens = malloc(sizeof(uint32_t) * (c->max_tokens + 1));
        if (ch->cv[i].tokens == NULL)
            return -ENOMEM;
        conv_reset(t, &ch->cv[i]);
    }
    return 0;
}

static void chat_deinit(struct kb_thread *t)
{
    struct chat *ch = t->work;
    if (ch == NULL)
        return;
    for (unsigned i = 0; ch->cv && i < ch->n; i++)
        free(ch->cv[i].tokens);
    free(ch->cv);
    free(ch);
    t->work = NULL;
}

static void chat_op(struct kb_thread *t)
{
    struct kb_cfg *c = &t->run->cfg;
    struct chat *ch = t->work;
    struct conv *v = &ch->cv[rnd(&t->rng) % ch->n];
    unsigned user = rnd_len(&t->rng, c->user_tokens, 1, c->max_tokens / 4 + 1);
    unsigned reply = rnd_len(&t->rng, c->reply_tokens, 1, c->max_tokens / 4 + 1);

    if (v->ntok + user + reply > c->max_tokens || v->turn >= v->turns)
        conv_reset(t, v);
    if (v->ntok + user + reply > c->max_tokens)
        user = reply = (c->max_tokens - v->ntok) / 2;
    for (unsigned i = 0; i < user; i++)
        v->tokens[v->ntok++] = (uint32_t)rnd(&t->rng) % 128000;
    /* prefill: the longest cached prefix of the prompt's full blocks */
    long nb = kvcache_keys(t->run->cfg.target.ns, NULL, v->tokens, v->ntok, c->block_tokens,
                           t->keys, t->run->max_blocks);
    size_t found = nb > 0 ? do_get(t, (size_t)nb, true) : 0;
    /* decode, then store what was computed: the missing prompt blocks and
     * the full blocks of the reply */
    for (unsigned i = 0; i < reply; i++)
        v->tokens[v->ntok++] = (uint32_t)rnd(&t->rng) % 128000;
    long nt = kvcache_keys(t->run->cfg.target.ns, NULL, v->tokens, v->ntok, c->block_tokens,
                           t->keys, t->run->max_blocks);
    if (nt > (long)found)
        do_put(t, found, (size_t)nt - found, 0);
    v->turn++;
}

/* ---- trace replay ---- */

/* Claim the next trace request (or -1 at the end), waiting for its arrival
 * time in real-time mode. */
static long trace_claim(struct kb_thread *t)
{
    struct kb_run *r = t->run;
    uint64_t i = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
    if (i >= r->trace.nreqs) {
        if (!r->cfg.loop)
            return -1;
    }
    if (r->cfg.count && i >= r->cfg.count)
        return -1;
    size_t idx = (size_t)(i % r->trace.nreqs);
    if (r->cfg.real_time) {
        double lap = (double)r->trace.reqs[r->trace.nreqs - 1].ts_ms / 1000.0 + 1.0;
        double at = r->t0 + ((double)(i / r->trace.nreqs) * lap +
                             (double)r->trace.reqs[idx].ts_ms / 1000.0) / r->cfg.speed;
        while (!r->stop) {
            double wait = at - kb_now();
            if (wait <= 0)
                break;
            usleep(wait > 0.1 ? 100000 : (useconds_t)(wait * 1e6));
        }
    }
    return (long)idx;
}

static void trace_op(struct kb_thread *t, size_t idx)
{
    struct kb_run *r = t->run;
    const struct kb_trace_req *q = &r->trace.reqs[idx];
    size_t n = q->nfull < r->max_blocks ? q->nfull : r->max_blocks;
    if (n == 0)
        return;
    kvcache_keys(r->cfg.target.ns, NULL, q->ids, n, 1, t->keys, n);
    size_t found = do_get(t, n, true);
    /* tokens covered, as kvcache-sim counts them */
    uint64_t hit = (uint64_t)found * KB_TRACE_BLOCK_TOKENS;
    t->st.tokens += q->input_len;
    t->st.hit_tokens += hit < q->input_len ? hit : q->input_len;
    if (found < n)
        do_put(t, found, n - found, r->cfg.hints && q->done ? KVCACHE_HINT_DONE : 0);
}

/* ---- threads ---- */

static void *thread_main(void *arg)
{
    struct kb_thread *t = arg;
    struct kb_run *r = t->run;
    struct kb_cfg *c = &r->cfg;

    pthread_barrier_wait(&r->ready);
    if (r->phase == 0) {
        random_fill(t);
        return NULL;
    }
    while (!r->stop) {
        if (c->workload == KB_W_TRACE) {
            long idx = trace_claim(t);
            if (idx < 0 || r->stop)
                break;
            trace_op(t, (size_t)idx);
        } else {
            if (c->count && __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED) >= c->count)
                break;
            if (c->workload == KB_W_RANDOM)
                random_op(t);
            else
                chat_op(t);
        }
        t->st.requests++;
    }
    return NULL;
}

double kb_run_phase(struct kb_run *r, int phase)
{
    struct kb_cfg *c = &r->cfg;
    unsigned started = 0;
    double t0;

    r->phase = phase;
    r->stop = 0;
    r->next = 0;
    r->fill_next = 0;
    pthread_barrier_init(&r->ready, NULL, c->conns + 1);
    for (unsigned i = 0; i < c->conns; i++) {
        memset(&r->th[i].st, 0, sizeof(r->th[i].st));
        if (pthread_create(&r->th[i].tid, NULL, thread_main, &r->th[i]) == 0)
            started++;
    }
    if (started < c->conns) {   /* cannot happen short of a broken system */
        fprintf(stderr, "kvcache-bench: could not start threads\n");
        exit(1);
    }
    r->t0 = t0 = kb_now();
    kb_progress_start(r, phase == 0 ? "fill" : "run");
    pthread_barrier_wait(&r->ready);
    if (phase == 1 && c->count == 0) {
        /* duration mode: sleep, then stop everyone (they finish their
         * request in flight) */
        double end = t0 + c->duration;
        for (double now = kb_now(); now < end; now = kb_now()) {
            double left = end - now;
            usleep(left > 0.05 ? 50000 : (useconds_t)(left * 1e6) + 1);
            bool alive = false;   /* a finite trace may end first */
            for (unsigned i = 0; i < c->conns; i++) {
                if (r->th[i].tid == 0)
                    continue;
                if (pthread_tryjoin_np(r->th[i].tid, NULL) == 0)
                    r->th[i].tid = 0;
                else
                    alive = true;
            }
            if (!alive)
                break;
        }
        r->stop = 1;
    }
    for (unsigned i = 0; i < c->conns; i++)
        if (r->th[i].tid)
            pthread_join(r->th[i].tid, NULL);
    double secs = kb_now() - t0;
    kb_progress_stop(r);
    pthread_barrier_destroy(&r->ready);
    return secs;
}

int kb_run_init(struct kb_run *r, char *err, size_t errlen)
{
    struct kb_cfg *c = &r->cfg;
    int rc;

    if (c->workload == KB_W_RANDOM)
        r->max_blocks = c->batch;
    else if (c->workload == KB_W_CHAT)
        r->max_blocks = c->max_tokens / c->block_tokens + 1;
    else
        r->max_blocks = r->trace.max_blocks ? r->trace.max_blocks : 1;
    r->th = calloc(c->conns, sizeof(*r->th));
    if (r->th == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < c->conns; i++) {
        struct kb_thread *t = &r->th[i];
        t->run = r;
        t->id = i;
        t->rng = c->seed * 0x9e3779b97f4a7c15ull + i + 1;
        t->conn.fd = -1;
        t->rbufs = calloc(r->max_blocks, sizeof(void *));
        t->wbufs = calloc(r->max_blocks, sizeof(void *));
        t->keys = calloc(r->max_blocks, sizeof(*t->keys));
        t->lens = calloc(r->max_blocks, sizeof(*t->lens));
        if (!t->rbufs || !t->wbufs || !t->keys || !t->lens)
            return -ENOMEM;
        for (uint32_t b = 0; b < r->max_blocks; b++) {
            /* page-aligned, and touched once so the first run does not
             * measure page faults */
            if (posix_memalign(&t->rbufs[b], 4096, c->block) ||
                posix_memalign(&t->wbufs[b], 4096, c->block))
                return -ENOMEM;
            memset(t->rbufs[b], 0, c->block);
            uint64_t s = c->seed + b;
            for (uint32_t j = 0; j + 8 <= c->block; j += 8) {
                uint64_t v = rnd(&s);
                memcpy((uint8_t *)t->wbufs[b] + j, &v, 8);
            }
        }
        if (c->workload == KB_W_CHAT && (rc = chat_init(t)) != 0)
            return rc;
        if ((rc = kb_conn_open(&t->conn, &c->target)) != 0) {
            snprintf(err, errlen, "%s", t->conn.err);
            return rc;
        }
    }
    return 0;
}

void kb_run_deinit(struct kb_run *r)
{
    if (r->th == NULL)
        return;
    for (unsigned i = 0; i < r->cfg.conns; i++) {
        struct kb_thread *t = &r->th[i];
        kb_conn_close(&t->conn);
        for (uint32_t b = 0; b < r->max_blocks; b++) {
            if (t->rbufs)
                free(t->rbufs[b]);
            if (t->wbufs)
                free(t->wbufs[b]);
        }
        free(t->rbufs);
        free(t->wbufs);
        free(t->keys);
        free(t->lens);
        chat_deinit(t);
    }
    free(r->th);
    r->th = NULL;
}
