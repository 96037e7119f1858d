/*
 * sim_stats.c - the structure of a trace's requests, the figures that say
 * which admission can work on it (sim.h: sim_trace_stats).
 */
#include "sim.h"

#include <stdlib.h>

#define STATS_USES 4   /* uses counted apart: 1st, 2nd, 3rd, 4th and later */

/* Per use number: references, how many are read again, and how many again
 * within each capacity (in new blocks put in between). */
struct use_stats {
    uint64_t refs;
    uint64_t again;
    uint64_t within[8];
};

int sim_trace_stats(const struct sim_trace *t, const uint64_t *caps, size_t ncaps, FILE *f)
{
    size_t nid = t->max_id ? t->max_id : 1;
    uint64_t *clock_at = malloc(sizeof(uint64_t) * (t->nids ? t->nids : 1));
    uint64_t *seen_at = calloc(nid, sizeof(uint64_t));   /* 0 = never seen */
    uint32_t *uses = calloc(nid, sizeof(uint32_t));
    uint32_t *last = malloc(sizeof(uint32_t) * nid);
    uint64_t *next = malloc(sizeof(uint64_t) * (t->nids ? t->nids : 1));
    struct use_stats us[STATS_USES] = { 0 };
    uint64_t fresh = 0, repeat = 0, branch = 0, newb = 0, new_done = 0, new_done_again = 0;
    uint64_t clock = 0;

    if (clock_at == NULL || seen_at == NULL || uses == NULL || last == NULL || next == NULL) {
        free(clock_at), free(seen_at), free(uses), free(last), free(next);
        return -1;
    }
    if (ncaps > 8)
        ncaps = 8;
    /* The clock counts new blocks (first references); next[r] is the next
     * reference of the same id (UINT64_MAX: none). */
    for (size_t i = 0; i < nid; i++)
        last[i] = UINT32_MAX;
    for (uint64_t r = 0; r < t->nids; r++) {
        if (seen_at[t->ids[r]] == 0) {
            seen_at[t->ids[r]] = 1;
            clock++;
        }
        clock_at[r] = clock;
    }
    for (uint64_t r = t->nids; r-- > 0;) {
        next[r] = last[t->ids[r]] == UINT32_MAX ? UINT64_MAX : last[t->ids[r]];
        last[t->ids[r]] = (uint32_t)r;
    }
    for (size_t i = 0; i < nid; i++)
        seen_at[i] = 0;
    for (size_t i = 0; i < t->nreq; i++) {
        const uint32_t *ids = sim_req_ids(t, i);
        uint32_t n = t->req[i].nblocks, k = 0;
        if (n == 0)
            continue;
        while (k < n && seen_at[ids[k]] != 0)
            k++;
        if (k == 0)
            fresh++;
        else if (k == n)
            repeat++;
        else
            branch++;
        for (uint32_t b = 0; b < n; b++) {
            uint64_t r = t->req[i].off + b;
            uint32_t u = uses[ids[b]]++;
            struct use_stats *s = &us[u < STATS_USES ? u : STATS_USES - 1];
            if (u == 0) {
                newb++;
                seen_at[ids[b]] = 1;
                if (t->done != NULL && t->done[i]) {
                    new_done++;
                    new_done_again += next[r] != UINT64_MAX;
                }
            }
            s->refs++;
            if (next[r] == UINT64_MAX)
                continue;
            s->again++;
            for (size_t c = 0; c < ncaps; c++)
                s->within[c] += clock_at[next[r]] - clock_at[r] <= caps[c];
        }
    }
    size_t nreq = fresh + repeat + branch;
    fprintf(f, "# %s: %zu requests: %.1f%% start a chain no earlier request holds, %.1f%% are "
               "wholly held by earlier ones, %.1f%% continue or branch off one\n",
            t->name, nreq, 100.0 * fresh / (nreq ? nreq : 1), 100.0 * repeat / (nreq ? nreq : 1),
            100.0 * branch / (nreq ? nreq : 1));
    fprintf(f, "# %s: %llu distinct blocks, %llu references", t->name, (unsigned long long)newb,
            (unsigned long long)t->nids);
    if (t->done != NULL)
        fprintf(f, "; %.1f%% of the blocks are first put by a finished chain, %.1f%% of those "
                   "are read again",
                100.0 * new_done / (newb ? newb : 1), 100.0 * new_done_again / (new_done ? new_done : 1));
    fprintf(f, "\n# %s: use  references  read again  again within", t->name);
    for (size_t c = 0; c < ncaps; c++)
        fprintf(f, " %llu", (unsigned long long)caps[c]);
    fprintf(f, " new blocks\n");
    for (int u = 0; u < STATS_USES; u++) {
        fprintf(f, "# %s: %s%d %11llu %10.1f%% ", t->name, u == STATS_USES - 1 ? ">=" : "  ", u + 1,
                (unsigned long long)us[u].refs, 100.0 * us[u].again / (us[u].refs ? us[u].refs : 1));
        for (size_t c = 0; c < ncaps; c++)
            fprintf(f, " %5.1f%%", 100.0 * us[u].within[c] / (us[u].refs ? us[u].refs : 1));
        fprintf(f, "\n");
    }
    free(clock_at), free(seen_at), free(uses), free(last), free(next);
    return 0;
}
