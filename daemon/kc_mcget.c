/*
 * kc_mcget.c - memcache gets: get, gets (VALUE lines + END) and mg (VA, HD,
 * EN with return flags), from one store batch per run of keys of one
 * namespace; blocks are sent from the engine's memory.
 */
#include "daemon/kc_mcget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_dispatch.h"
#include "daemon/kc_server.h"

/* A get in flight: one store batch per run of keys of one namespace. */
struct mc_get {
    struct conn *c;
    int kind;
    size_t nkeys;
    size_t nbatch;
    size_t pending;                /* batches not done + 1 while submitting */
    struct mc_tok *keys;           /* into text */
    struct store_get *batch;       /* nbatch */
    bool *submitted;               /* nbatch: needs store_get_release */
    struct store_get_item *items;  /* nkeys, batches are runs of it */
    /* mg: the flag tokens (into text) */
    struct mc_tok mgflags[MC_TOKENS];
    size_t nmgflags;
    bool mg_value, mg_quiet;
    char text[];                   /* copy of the command line */
};

/* No memory for a get: answer so and go on. */
static int mc_get_oom(struct conn *c)
{
    c->srv->stats.mc_errors++;
    conn_send_text(c, "SERVER_ERROR out of memory\r\n", 28);
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

/* Free a get: release engine memory of the batches submitted. */
static void mc_get_free(struct server *s, void *arg)
{
    struct mc_get *x = arg;

    for (size_t b = 0; b < x->nbatch; b++)
        if (x->submitted[b])
            store_get_release(s->st, &x->batch[b]);
    free(x->batch);
    free(x->submitted);
    free(x->items);
    free(x->keys);
    free(x);
}

/* Append mg return flags to out (request order), hit or miss. */
static size_t mc_mg_flags(const struct mc_get *x, const struct store_get_item *it,
                          bool hit, char *out, size_t cap)
{
    const struct mc_tok *key = &x->keys[0];
    size_t n = 0;

    for (size_t i = 0; i < x->nmgflags && n < cap; i++) {
        const struct mc_tok *f = &x->mgflags[i];
        int w = 0;

        switch (f->p[0]) {
        case 'k':
            w = snprintf(out + n, cap - n, " k%.*s", (int)key->len, key->p);
            break;
        case 'O':
            w = snprintf(out + n, cap - n, " %.*s", (int)f->len, f->p);
            break;
        case 's':
            if (hit)
                w = snprintf(out + n, cap - n, " s%u", it->len);
            break;
        case 'f':
            if (hit)
                w = snprintf(out + n, cap - n, " f0");
            break;
        case 't':
            if (hit)
                w = snprintf(out + n, cap - n, " t-1");
            break;
        case 'c':
            if (hit)
                w = snprintf(out + n, cap - n, " c%llu",
                             (unsigned long long)((it->key.lo >> 1) | 1));
            break;
        case 'h': case 'l':
            if (hit)
                w = snprintf(out + n, cap - n, " %c0", f->p[0]);
            break;
        default:
            break;
        }
        if (w > 0)
            n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
    }
    return n;
}

/* Every batch is done: queue the answer (blocks sent from the engine). */
static void mc_get_finish(struct mc_get *x)
{
    struct conn *c = x->c;
    struct server *s = c->srv;
    struct conn_piece *pc = NULL;
    char *text = NULL;
    size_t tcap, tlen = 0;
    int np = 0;

    c->gets_inflight--;
    if (c->closed) {
        mc_get_free(s, x);
        return;
    }
    /* per key: a header line of at most 300 bytes (mg: 900), "\r\n" */
    tcap = x->nkeys * (x->kind == MCG_MG ? 1200 : 320) + 16;
    text = malloc(tcap);
    pc = malloc((3 * x->nkeys + 1) * sizeof(*pc));
    if (text == NULL || pc == NULL) {
        mc_get_free(s, x);
        conn_send_text(c, "SERVER_ERROR out of memory\r\n", 28);
        goto out;
    }
    for (size_t i = 0; i < x->nkeys; i++) {
        const struct store_get_item *it = &x->items[i];
        bool hit = it->status == KC_OK;
        size_t start = tlen;

        if (hit)
            s->stats.mc_get_hits++;
        if (x->kind == MCG_MG) {
            char fl[MC_FLAGS_MAX + 300];
            size_t fn = mc_mg_flags(x, it, hit, fl, sizeof(fl));

            if (!hit && x->mg_quiet)
                continue;
            if (hit && x->mg_value)
                tlen += (size_t)snprintf(text + tlen, tcap - tlen, "VA %u%.*s\r\n",
                                         it->len, (int)fn, fl);
            else
                tlen += (size_t)snprintf(text + tlen, tcap - tlen, "%s%.*s\r\n",
                                         hit ? "HD" : "EN", (int)fn, fl);
            pc[np++] = (struct conn_piece){ NULL, start, tlen - start };
            if (!(hit && x->mg_value))
                continue;
        } else {
            if (!hit)
                continue;
            if (x->kind == MCG_GETS)
                tlen += (size_t)snprintf(text + tlen, tcap - tlen,
                                         "VALUE %.*s 0 %u %llu\r\n",
                                         (int)x->keys[i].len, x->keys[i].p, it->len,
                                         (unsigned long long)((it->key.lo >> 1) | 1));
            else
                tlen += (size_t)snprintf(text + tlen, tcap - tlen,
                                         "VALUE %.*s 0 %u\r\n",
                                         (int)x->keys[i].len, x->keys[i].p, it->len);
            pc[np++] = (struct conn_piece){ NULL, start, tlen - start };
        }
        pc[np++] = (struct conn_piece){ it->data, 0, it->len };
        memcpy(text + tlen, "\r\n", 2);
        pc[np++] = (struct conn_piece){ NULL, tlen, 2 };
        tlen += 2;
    }
    if (x->kind != MCG_MG) {
        memcpy(text + tlen, "END\r\n", 5);
        pc[np++] = (struct conn_piece){ NULL, tlen, 5 };
        tlen += 5;
    }
    conn_send_raw(c, text, tlen, pc, np, mc_get_free, x);
out:
    free(text);
    free(pc);
    /* the reader waited for this answer: carry on with buffered commands */
    if (!c->closed)
        server_kick(s, c);
}

/* One batch done (from store_poll, or inside store_get_submit). */
static void mc_get_batch_done(struct store_get *g, void *arg)
{
    struct mc_get *x = arg;

    (void)g;
    if (--x->pending == 0)
        mc_get_finish(x);
}

int mc_get_start(struct conn *c, int kind, const char *line, size_t len,
                        const struct mc_tok *keys, size_t n,
                        const struct mc_tok *fl, size_t nfl)
{
    struct server *s = c->srv;
    struct mc_get *x;
    size_t b = 0;

    x = calloc(1, sizeof(*x) + len + 1);
    if (x == NULL)
        return mc_get_oom(c);
    x->keys = malloc(n * sizeof(*x->keys));
    x->items = calloc(n, sizeof(*x->items));
    x->batch = calloc(n, sizeof(*x->batch));
    x->submitted = calloc(n, sizeof(*x->submitted));
    if (!x->keys || !x->items || !x->batch || !x->submitted) {
        mc_get_free(s, x);
        return mc_get_oom(c);
    }
    memcpy(x->text, line, len);
    x->c = c;
    x->kind = kind;
    x->nkeys = n;
    for (size_t i = 0; i < n; i++)
        x->keys[i] = (struct mc_tok){ x->text + (keys[i].p - line), keys[i].len };
    for (size_t i = 0; i < nfl && i < MC_TOKENS; i++) {
        x->mgflags[i] = (struct mc_tok){ x->text + (fl[i].p - line), fl[i].len };
        x->nmgflags++;
        if (fl[i].p[0] == 'v')
            x->mg_value = true;
        if (fl[i].p[0] == 'q')
            x->mg_quiet = true;
    }
    /* runs of keys of one namespace make one batch each */
    for (size_t i = 0; i < n; i++) {
        uint64_t ns;

        mc_key_map(&x->keys[i], &ns, &x->items[i].key);
        if (i > 0 && ns == x->batch[b].ns) {
            x->batch[b].n++;
            continue;
        }
        if (i > 0)
            b++;
        x->batch[b].ns = ns;
        x->batch[b].items = &x->items[i];
        x->batch[b].n = 1;
    }
    x->nbatch = b + 1;
    s->stats.mc_get_keys += n;
    c->gets_inflight++;
    x->pending = x->nbatch + 1;
    for (b = 0; b < x->nbatch; b++) {
        struct store_get *g = &x->batch[b];
        struct store_ns_info info;
        int rc = KC_ENONS;

        g->done = mc_get_batch_done;
        g->arg = x;
        if (store_ns_get(s->st, g->ns, &info) == 0) {
            x->submitted[b] = true;
            rc = store_get_submit(s->st, g);
        }
        if (rc < 0) {
            x->submitted[b] = false;
            for (size_t i = 0; i < g->n; i++)
                g->items[i].status = KC_MISS;
            x->pending--;
        }
    }
    mc_get_batch_done(NULL, x);   /* drops the submitting guard */
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}
