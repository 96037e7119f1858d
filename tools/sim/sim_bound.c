/*
 * sim_bound.c - exact simulations at block granularity, with no slabs: the
 * infinite cache, Belady's MIN (future knowledge: evict the block whose
 * next use is furthest away), and a per-block LRU (what the slab policies
 * would do if they could evict one block at a time).
 *
 * MIN as written here is an upper bound for the prefix hit ratio too, not
 * only for the block hit ratio: a block is always asked for after its
 * predecessor in the same request, so its next use is later than its
 * predecessor's and MIN drops a chain from the tail. The set it keeps is
 * closed under "predecessor of", every block it holds is in a leading run,
 * and no policy finds more leading blocks than MIN finds blocks. Blocks
 * never used again, or used later than everything cached, are not admitted
 * (MIN with bypass); that only helps it.
 *
 * fifo-oracle is FIFO at block granularity that admits only blocks that
 * will be asked for again: what a perfect admission filter (the best that
 * S3-FIFO-like filters of one-hit blocks can hope for) gives without MIN's
 * knowledge of when.
 */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NEVER UINT64_MAX

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fill the fields every bound shares. */
static void bound_start(const struct sim_trace *t, struct sim_result *r,
                        const char *name, uint64_t capacity)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->trace, sizeof(r->trace), "%s", t->name);
    snprintf(r->policy, sizeof(r->policy), "%s", name);
    r->capacity = capacity;
    r->requests = t->nreq;
    r->tokens = t->tokens;
    r->refs = t->nids;
}

int sim_bound_infinite(const struct sim_trace *t, struct sim_result *r)
{
    uint8_t *seen = calloc(t->max_id ? t->max_id : 1, 1);
    double t0 = now_s();

    if (seen == NULL)
        return -1;
    bound_start(t, r, "infinite", 0);
    struct sim_result w = *r;
    for (size_t i = 0; i < t->nreq; i++) {
        sim_warm_at(t, i, r, &w);
        const uint32_t *ids = sim_req_ids(t, i);
        uint32_t n = t->req[i].nblocks, run = 0;
        bool lead = true;
        for (uint32_t b = 0; b < n; b++) {
            if (seen[ids[b]]) {
                r->present++;
                run += lead;
            } else {
                lead = false;
            }
        }
        for (uint32_t b = 0; b < n; b++)
            seen[ids[b]] = 1;
        r->prefix_blocks += run;
        r->hit_tokens += sim_hit_tokens(&t->req[i], run);
    }
    r->puts = t->nids - r->present;
    sim_unwarm(t, r, &w);
    r->seconds = now_s() - t0;
    free(seen);
    return 0;
}

/* A max-heap of (next use, id) with lazy deletion: an entry is current
 * only while its id is cached with that next use. */
struct heap_ent {
    uint64_t next;
    uint32_t id;
};

static void heap_push(struct heap_ent *h, size_t *n, struct heap_ent e)
{
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2].next < e.next) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
}

static struct heap_ent heap_pop(struct heap_ent *h, size_t *n)
{
    struct heap_ent top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1].next > h[c].next)
            c++;
        if (h[c].next <= last.next)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

int sim_bound_min(const struct sim_trace *t, uint64_t capacity, struct sim_result *r)
{
    uint64_t *nextuse = malloc((t->nids ? t->nids : 1) * sizeof(uint64_t));
    uint64_t *last = malloc((t->max_id ? t->max_id : 1) * sizeof(uint64_t));
    uint64_t *cur = malloc((t->max_id ? t->max_id : 1) * sizeof(uint64_t)); /* NEVER = not cached */
    struct heap_ent *heap = malloc((t->nids + 1) * sizeof(*heap));
    size_t nheap = 0;
    uint64_t cached = 0;
    double t0 = now_s();
    int rc = -1;

    if (nextuse == NULL || last == NULL || cur == NULL || heap == NULL)
        goto out;
    bound_start(t, r, "MIN", capacity);
    for (uint32_t id = 0; id < t->max_id; id++)
        last[id] = NEVER, cur[id] = NEVER;
    for (uint64_t p = t->nids; p-- > 0;) {
        nextuse[p] = last[t->ids[p]];
        last[t->ids[p]] = p;
    }
    struct sim_result w = *r;
    for (size_t i = 0; i < t->nreq; i++) {
        sim_warm_at(t, i, r, &w);
        uint64_t p = t->req[i].off;
        uint32_t n = t->req[i].nblocks, run = 0;
        bool lead = true;
        for (uint32_t b = 0; b < n; b++, p++) {
            uint32_t id = t->ids[p];
            uint64_t nu = nextuse[p];
            if (cur[id] != NEVER) {
                r->present++;
                run += lead;
                cur[id] = nu;
                if (nu == NEVER) {            /* done with it: free the room */
                    cached--;
                } else {
                    heap_push(heap, &nheap, (struct heap_ent){ nu, id });
                }
                continue;
            }
            lead = false;
            r->puts++;
            if (nu == NEVER || capacity == 0)
                continue;                     /* bypass: never asked again */
            if (cached == capacity) {
                while (nheap > 0 && cur[heap[0].id] != heap[0].next)
                    heap_pop(heap, &nheap);   /* stale */
                if (nheap == 0 || heap[0].next < nu)
                    continue;                 /* bypass: needed last */
                struct heap_ent v = heap_pop(heap, &nheap);
                cur[v.id] = NEVER;
                cached--;
                r->evictions++;
            }
            cur[id] = nu;
            cached++;
            heap_push(heap, &nheap, (struct heap_ent){ nu, id });
        }
        r->prefix_blocks += run;
        r->hit_tokens += sim_hit_tokens(&t->req[i], run);
    }
    sim_unwarm(t, r, &w);
    r->seconds = now_s() - t0;
    rc = 0;
out:
    free(nextuse);
    free(last);
    free(cur);
    free(heap);
    return rc;
}

int sim_bound_lru(const struct sim_trace *t, uint64_t capacity, struct sim_result *r)
{
    uint32_t m = t->max_id ? t->max_id : 1;
    uint32_t *prev = malloc(m * sizeof(uint32_t)), *next = malloc(m * sizeof(uint32_t));
    uint8_t *in = calloc(m, 1);
    uint32_t head = UINT32_MAX, tail = UINT32_MAX;   /* head = least recent */
    uint64_t cached = 0;
    double t0 = now_s();
    int rc = -1;

    if (prev == NULL || next == NULL || in == NULL)
        goto out;
    bound_start(t, r, "block-lru", capacity);
    struct sim_result w = *r;
    for (size_t i = 0; i < t->nreq; i++) {
        sim_warm_at(t, i, r, &w);
        const uint32_t *ids = sim_req_ids(t, i);
        uint32_t n = t->req[i].nblocks, run = 0;
        bool lead = true;
        for (uint32_t b = 0; b < n; b++) {
            if (in[ids[b]]) {
                r->present++;
                run += lead;
            } else {
                lead = false;
                r->puts++;
            }
        }
        r->prefix_blocks += run;
        r->hit_tokens += sim_hit_tokens(&t->req[i], run);
        /* Touch from the tail of the chain to its head, so that the head
         * is the most recent and a chain is dropped tail first. */
        for (uint32_t b = n; b-- > 0;) {
            uint32_t id = ids[b];
            if (in[id]) {
                uint32_t p = prev[id], q = next[id];
                if (p != UINT32_MAX) next[p] = q; else head = q;
                if (q != UINT32_MAX) prev[q] = p; else tail = p;
            } else {
                if (cached == capacity && head != UINT32_MAX) {
                    uint32_t v = head;
                    head = next[v];
                    if (head != UINT32_MAX) prev[head] = UINT32_MAX; else tail = UINT32_MAX;
                    in[v] = 0;
                    cached--;
                    r->evictions++;
                }
                in[id] = 1;
                cached++;
            }
            prev[id] = tail;
            next[id] = UINT32_MAX;
            if (tail != UINT32_MAX) next[tail] = id; else head = id;
            tail = id;
        }
    }
    sim_unwarm(t, r, &w);
    r->seconds = now_s() - t0;
    rc = 0;
out:
    free(prev);
    free(next);
    free(in);
    return rc;
}

int sim_bound_fifo_oracle(const struct sim_trace *t, uint64_t capacity, struct sim_result *r)
{
    uint32_t m = t->max_id ? t->max_id : 1;
    uint32_t *left = calloc(m, sizeof(uint32_t));      /* references to come */
    uint8_t *in = calloc(m, 1);
    uint32_t *ring = malloc((capacity ? capacity : 1) * sizeof(uint32_t));
    uint64_t head = 0, cached = 0;
    double t0 = now_s();
    int rc = -1;

    if (left == NULL || in == NULL || ring == NULL || capacity == 0)
        goto out;
    bound_start(t, r, "fifo-oracle", capacity);
    for (uint64_t p = 0; p < t->nids; p++)
        left[t->ids[p]]++;
    struct sim_result w = *r;
    for (size_t i = 0; i < t->nreq; i++) {
        sim_warm_at(t, i, r, &w);
        const uint32_t *ids = sim_req_ids(t, i);
        uint32_t n = t->req[i].nblocks, run = 0;
        bool lead = true;
        for (uint32_t b = 0; b < n; b++) {
            uint32_t id = ids[b];
            left[id]--;
            if (in[id]) {
                r->present++;
                run += lead;
                continue;
            }
            lead = false;
            r->puts++;
            if (left[id] == 0)
                continue;                  /* never asked again: not admitted */
            if (cached == capacity) {
                in[ring[head]] = 0;
                head = (head + 1) % capacity;
                cached--;
                r->evictions++;
            }
            ring[(head + cached) % capacity] = id;
            in[id] = 1;
            cached++;
        }
        r->prefix_blocks += run;
        r->hit_tokens += sim_hit_tokens(&t->req[i], run);
    }
    sim_unwarm(t, r, &w);
    r->seconds = now_s() - t0;
    rc = 0;
out:
    free(left);
    free(in);
    free(ring);
    return rc;
}
