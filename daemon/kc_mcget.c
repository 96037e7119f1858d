/*
 * kc_mcget.c - memcache reads: get, gets (VALUE lines + END), gat, gats,
 * mg (VA, HD, EN with return flags) and the fetch of an old item for a
 * read-modify-write. One store batch per run of keys of one namespace;
 * values are sent from the engine's memory, past the header of text keys.
 */
#include "daemon/kc_mcget.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kc_budget.h"
#include "daemon/kc_conn.h"
#include "daemon/kc_mcconn.h"
#include "daemon/kc_daemon.h"

/* A read in flight: one store batch per run of keys of one namespace. */
struct mc_get {
    struct conn *c;
    int kind;                      /* enum mc_get_kind */
    size_t nkeys;
    uint64_t charged;              /* in-flight budget taken (kc_budget.h) */
    size_t nbatch;
    size_t pending;                /* batches not done + 1 while submitting */
    struct mc_tok *keys;           /* into text: the keys as sent */
    struct store_get *batch;       /* nbatch */
    bool *submitted;               /* nbatch: needs store_get_release */
    struct store_get_item *items;  /* nkeys, batches are runs of it */
    uint64_t *ns;                  /* nkeys: namespace of each key */
    bool *textkey;                 /* nkeys: a text key (value has a header) */
    struct store_item_info *loc;   /* nkeys: where the item was at the start
                                      (writing kinds), loc.len 0 = absent */
    int64_t exptime;               /* gat / mg T: the new exptime */
    bool writes;                   /* finishes in mc_step (may write) */
    /* mg */
    struct mc_tok mgflags[MC_TOKENS]; /* flag tokens (into text) */
    size_t nmgflags;
    bool mg_value, mg_quiet, mg_touch, mg_b64;
    int64_t mg_vivify;             /* N: ttl of an item made on a miss, -1 */
    int64_t mg_recache;            /* R: win when the ttl is below, -1 */
    bool mg_hit_before;            /* h: the item had been read before */
    void *arena;                   /* the per-key arrays, one allocation */
    char text[];                   /* copy of the command line */
};

/* Carve the per-key arrays of x out of one zeroed allocation. 0 or -1.
 * Every element size is a multiple of 8 but the bools, which come last. */
static int mc_get_arrays(struct mc_get *x, size_t n)
{
    _Static_assert(sizeof(struct store_get_item) % 8 == 0 &&
                   sizeof(struct store_get) % 8 == 0 &&
                   sizeof(struct mc_tok) % 8 == 0 &&
                   sizeof(struct store_item_info) % 8 == 0,
                   "the arrays before the bools keep 8-byte alignment");
    size_t sz = n * (sizeof(*x->items) + sizeof(*x->batch) + sizeof(*x->keys) +
                     sizeof(*x->ns) + sizeof(*x->loc) + 2 * sizeof(bool));
    uint8_t *p = calloc(1, sz);

    if (p == NULL)
        return -1;
    x->arena = p;
    x->items = (void *)p;
    p += n * sizeof(*x->items);
    x->batch = (void *)p;
    p += n * sizeof(*x->batch);
    x->keys = (void *)p;
    p += n * sizeof(*x->keys);
    x->ns = (void *)p;
    p += n * sizeof(*x->ns);
    x->loc = (void *)p;
    p += n * sizeof(*x->loc);
    x->submitted = (void *)p;
    p += n * sizeof(bool);
    x->textkey = (void *)p;
    return 0;
}

/* No memory for a get: answer so and go on. */
static int mc_get_oom(struct conn *c)
{
    return mc_error(c, "SERVER_ERROR out of memory\r\n");
}

/* Free a get: release engine memory of the batches submitted. */
static void mc_get_free(struct server *s, void *arg)
{
    struct mc_get *x = arg;

    if (x->charged)
        budget_charge(x->c, -(int64_t)x->charged);
    for (size_t b = 0; b < x->nbatch; b++)
        if (x->submitted[b])
            store_get_release(s->st, &x->batch[b]);
    free(x->arena);
    free(x);
}

/*
 * The item i as memcache sees it: false for a miss (absent, not a header,
 * expired). Raw blocks (direct keys) have flags 0, no expiry and a cas
 * derived from their key (they never change).
 */
static bool mc_view(struct mc_get *x, size_t i, int64_t now, struct mc_meta *m,
                    const uint8_t **d, uint32_t *l)
{
    struct server *s = x->c->srv;
    const struct store_get_item *it = &x->items[i];

    if (it->status != KC_OK)
        return false;
    if (!x->textkey[i]) {
        *m = (struct mc_meta){ .cas = (it->key.lo >> 1) | 1 };
        *d = it->data;
        *l = it->len;
        return true;
    }
    if (mci_decode(it->data, it->len, m) < 0)
        return false;
    mc_cas_seen(&s->mcs, m->cas);
    if (mci_expired(m, now))
        return false;
    *d = (const uint8_t *)it->data + MCI_HDR_LEN;
    *l = it->len - MCI_HDR_LEN;
    return true;
}

/* Append " <c>" (W, X, Z) or formatted text to out; returns the new length. */
static size_t mc_put(char *out, size_t n, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t mc_put(char *out, size_t n, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (n >= cap)
        return n;
    va_start(ap, fmt);
    w = vsnprintf(out + n, cap - n, fmt, ap);
    va_end(ap);
    if (w < 0)
        return n;
    return n + ((size_t)w < cap - n ? (size_t)w : cap - n - 1);
}

/* mg return flags (request order), then Z, X, W as memcached puts them. */
static size_t mc_mg_flags(const struct mc_get *x, bool hit, const struct mc_meta *m,
                          uint32_t vlen, int64_t now, bool win, char *out,
                          size_t cap)
{
    const struct mc_tok *key = &x->keys[0];
    size_t n = 0;

    for (size_t i = 0; i < x->nmgflags; i++) {
        const struct mc_tok *f = &x->mgflags[i];

        switch (f->p[0]) {
        case 'k':
            n = mc_put(out, n, cap, " k%.*s%s", (int)key->len, key->p,
                       x->mg_b64 ? " b" : "");
            break;
        case 'O':
            n = mc_put(out, n, cap, " %.*s", (int)(f->len > 33 ? 33 : f->len),
                       f->p);
            break;
        default:
            if (!hit)
                break;
            if (f->p[0] == 's')
                n = mc_put(out, n, cap, " s%u", vlen);
            else if (f->p[0] == 'f')
                n = mc_put(out, n, cap, " f%u", m->flags);
            else if (f->p[0] == 't')
                n = mc_put(out, n, cap, " t%lld", (long long)mci_ttl(m, now));
            else if (f->p[0] == 'c')
                n = mc_put(out, n, cap, " c%llu", (unsigned long long)m->cas);
            else if (f->p[0] == 'h')
                n = mc_put(out, n, cap, " h%d", x->mg_hit_before ? 1 : 0);
            else if (f->p[0] == 'l')
                n = mc_put(out, n, cap, " l0");
            break;
        }
    }
    if (hit && (m->bits & MCI_WON) && !win)
        n = mc_put(out, n, cap, " Z");
    if (hit && (m->bits & MCI_STALE))
        n = mc_put(out, n, cap, " X");
    if (win)
        n = mc_put(out, n, cap, " W");
    return n;
}

/* Does mg win the right to recache item m (a W token)? */
static bool mc_mg_wins(const struct mc_get *x, const struct mc_meta *m, int64_t now)
{
    if (m->bits & MCI_WON)
        return false;
    if (m->bits & MCI_STALE)
        return true;
    return x->mg_recache >= 0 && m->exptime != 0 &&
           mci_ttl(m, now) < x->mg_recache;
}

/* Has item i's key been written or deleted since the read started? */
static bool mc_changed(const struct mc_get *x, size_t i)
{
    struct store_item_info now;
    const struct store_item_info *was = &x->loc[i];
    bool had = was->slab != UINT32_MAX;

    if (store_describe(x->c->srv->st, x->ns[i], &x->items[i].key, &now) != 0)
        return had;
    return !had || now.slab != was->slab || now.slot != was->slot;
}

/* Every batch is done: queue the answer (blocks sent from the engine);
 * for writing kinds (only from mc_step) rewrite what changed first. */
static void mc_get_answer(struct mc_get *x)
{
    struct conn *c = x->c;
    struct server *s = c->srv;
    struct mc_state *ms = &s->mcs;
    struct conn_piece *pc = NULL;
    int64_t now = mc_now();
    char *text = NULL;
    size_t tcap, tlen = 0;
    int np = 0;

    /* per key: a header line of at most 300 bytes (mg: 900), "\r\n" */
    tcap = x->nkeys * (x->kind == MCG_MG ? 1200 : 340) + 16;
    text = malloc(tcap);
    pc = malloc((3 * x->nkeys + 1) * sizeof(*pc));
    if (text == NULL || pc == NULL) {
        mc_get_free(s, x);
        mc_reply(c, "SERVER_ERROR out of memory\r\n");
        goto out;
    }
    for (size_t i = 0; i < x->nkeys; i++) {
        struct store_get_item *it = &x->items[i];
        struct mc_meta m = { 0 };
        const uint8_t *d = NULL;
        uint32_t l = 0;
        bool hit = mc_view(x, i, now, &m, &d, &l);
        bool win = false;
        size_t start = tlen;

        if (hit) {
            ms->get_hits++;
            s->stats.mc_get_hits++;
        } else {
            ms->get_misses++;
        }
        if (hit && x->kind == MCG_MG)
            win = mc_mg_wins(x, &m, now);
        if (x->writes && x->textkey[i] && hit && !mc_changed(x, i)) {
            /* gat, mg T, a win token: a new version with the new header */
            struct mc_meta nm = m;
            bool touch = x->kind == MCG_GAT || x->kind == MCG_GATS || x->mg_touch;

            if (touch)
                nm.exptime = x->exptime;
            if (win)
                nm.bits |= MCI_WON;
            if (touch || win)
                mc_item_write(c, x->ns[i], &it->key, &nm, d, l, NULL, 0);
            if (touch) {
                ms->touch_hits++;
                m = nm;
            }
        } else if (!hit && x->kind == MCG_MG && x->mg_vivify >= 0 && x->textkey[i]) {
            /* N: make an empty item and give this client the win */
            struct mc_meta nm = { .exptime = mci_exptime(x->mg_vivify, now),
                                  .bits = MCI_WON,
                                  .cas = mc_cas_next(ms, mc_now_us()) };

            if (mc_item_write(c, MC_TEXT_NS, &it->key, &nm, NULL, 0, NULL, 0) == 0) {
                hit = win = true;
                m = nm;
                m.bits = 0;
                d = (const uint8_t *)"";
                l = 0;
            }
        } else if (!hit && (x->kind == MCG_GAT || x->kind == MCG_GATS ||
                            x->mg_touch)) {
            ms->touch_misses++;
        }
        if (x->kind == MCG_MG) {
            char fl[MC_FLAGS_MAX + 300];
            size_t fn = mc_mg_flags(x, hit, &m, l, now, win, fl, sizeof(fl));

            if (!hit && x->mg_quiet)
                continue;
            if (hit && x->mg_value)
                tlen += (size_t)snprintf(text + tlen, tcap - tlen, "VA %u%.*s\r\n",
                                         l, (int)fn, fl);
            else
                tlen += (size_t)snprintf(text + tlen, tcap - tlen, "%s%.*s\r\n",
                                         hit ? "HD" : "EN", (int)fn, fl);
            pc[np++] = (struct conn_piece){ NULL, start, tlen - start };
            if (!(hit && x->mg_value))
                continue;
        } else {
            if (!hit)
                continue;
            if (x->kind == MCG_GETS || x->kind == MCG_GATS)
                tlen += (size_t)snprintf(text + tlen, tcap - tlen,
                                         "VALUE %.*s %u %u %llu\r\n",
                                         (int)x->keys[i].len, x->keys[i].p,
                                         m.flags, l, (unsigned long long)m.cas);
            else
                tlen += (size_t)snprintf(text + tlen, tcap - tlen,
                                         "VALUE %.*s %u %u\r\n",
                                         (int)x->keys[i].len, x->keys[i].p,
                                         m.flags, l);
            pc[np++] = (struct conn_piece){ NULL, start, tlen - start };
        }
        if (l)
            pc[np++] = (struct conn_piece){ d, 0, l };
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
}

/* Every batch is done (store callback context, or inside mc_get_start). */
static void mc_get_finish(struct mc_get *x)
{
    struct conn *c = x->c;
    struct server *s = c->srv;

    c->gets_inflight--;
    if (c->closed) {
        mc_get_free(s, x);
        return;
    }
    if (x->writes || x->kind == MCG_MG) {
        bool defer = x->writes;
        int64_t now = mc_now();

        /* an mg that meets a stale item writes its win token: defer too */
        for (size_t i = 0; !defer && i < x->nkeys; i++) {
            struct mc_meta m;
            const uint8_t *d;
            uint32_t l;

            if (mc_view(x, i, now, &m, &d, &l) && mc_mg_wins(x, &m, now))
                defer = true;
        }
        if (defer) {
            x->writes = true;
            c->mc->ready = x;
            conn_kick(c);
            return;
        }
    }
    mc_get_answer(x);
    /* the reader waited for this answer: carry on with buffered commands */
    if (!c->closed)
        conn_kick(c);
}

/* One batch done (from store_poll, or inside store_get_submit). */
static void mc_get_batch_done(struct store_get *g, void *arg)
{
    struct mc_get *x = arg;

    (void)g;
    if (--x->pending == 0)
        mc_get_finish(x);
}

void mc_get_discard(struct conn *c)
{
    struct mc_get *x = c->mc->ready;

    c->mc->ready = NULL;
    if (x)
        mc_get_free(c->srv, x);
}

int mc_get_resume(struct conn *c)
{
    struct mc_get *x = c->mc->ready;
    struct server *s = c->srv;

    c->mc->ready = NULL;
    if (x->kind == MCG_FETCH) {
        struct mc_meta m = { 0 };
        const uint8_t *d = NULL;
        uint32_t l = 0;
        bool hit;
        int r;

        if (mc_changed(x, 0)) {
            /* written by another connection meanwhile: read it again */
            mc_get_free(s, x);
            return mc_get_start(c, MCG_FETCH, NULL, 0, NULL, 1, NULL, 0, 0);
        }
        hit = mc_view(x, 0, mc_now(), &m, &d, &l);
        r = mc_store_apply(c, hit, &m, d, l);
        mc_get_free(s, x);
        return r;
    }
    mc_get_answer(x);
    return mc_done(c);
}

/* mg flags with a number: T, N, R. */
static int64_t mc_flag_num(const struct mc_tok *f)
{
    struct mc_tok v = { f->p + 1, f->len - 1 };
    int64_t x = 0;

    mc_parse_i64(&v, &x);
    return x;
}

int mc_get_start(struct conn *c, int kind, const char *line, size_t len,
                 const struct mc_tok *keys, size_t n,
                 const struct mc_tok *fl, size_t nfl, int64_t exptime)
{
    struct server *s = c->srv;
    struct mc_conn *mcn = c->mc;
    struct mc_get *x;
    size_t b = 0;

    x = calloc(1, sizeof(*x) + len + 1);
    if (x == NULL)
        return mc_get_oom(c);
    if (mc_get_arrays(x, n) < 0) {
        mc_get_free(s, x);
        return mc_get_oom(c);
    }
    if (len)
        memcpy(x->text, line, len);
    x->c = c;
    x->kind = kind;
    x->nkeys = n;
    x->exptime = exptime;
    x->mg_vivify = x->mg_recache = -1;
    x->writes = kind == MCG_GAT || kind == MCG_GATS || kind == MCG_FETCH;
    for (size_t i = 0; i < n && kind != MCG_FETCH; i++)
        x->keys[i] = (struct mc_tok){ x->text + (keys[i].p - line), keys[i].len };
    for (size_t i = 0; i < nfl && i < MC_TOKENS; i++) {
        const struct mc_tok *f = &fl[i];

        x->mgflags[i] = (struct mc_tok){ x->text + (f->p - line), f->len };
        x->nmgflags++;
        switch (f->p[0]) {
        case 'v': x->mg_value = true; break;
        case 'q': x->mg_quiet = true; break;
        case 'b': x->mg_b64 = true; break;
        case 'T':
            x->mg_touch = x->writes = true;
            x->exptime = mci_exptime(mc_flag_num(f), mc_now());
            break;
        case 'N': x->mg_vivify = mc_flag_num(f); x->writes = true; break;
        case 'R': x->mg_recache = mc_flag_num(f); break;
        default: break;
        }
    }
    /* runs of keys of one namespace make one batch each */
    for (size_t i = 0; i < n; i++) {
        uint64_t ns;

        if (kind == MCG_FETCH) {
            ns = mcn->ns;
            x->items[i].key = mcn->key;
        } else if (x->mg_b64) {
            uint8_t raw[MC_KEY_MAX];
            int bl = mc_b64_decode(&x->keys[i], raw, sizeof(raw));
            struct mc_tok bt = { (const char *)raw, bl < 0 ? 0 : (size_t)bl };

            if (bl < 0) {
                mc_get_free(s, x);
                return mc_error(c, "CLIENT_ERROR error decoding key\r\n");
            }
            mc_key_map(&bt, &ns, &x->items[i].key);
        } else {
            mc_key_map(&x->keys[i], &ns, &x->items[i].key);
        }
        x->ns[i] = ns;
        x->textkey[i] = ns == MC_TEXT_NS;
        if ((!x->writes && kind != MCG_MG) ||
            store_describe(s->st, ns, &x->items[i].key, &x->loc[i]) != 0)
            x->loc[i].slab = UINT32_MAX;
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
    x->mg_hit_before = x->loc[0].hits > 0;
    x->nbatch = b + 1;
    /* read buffers this get will hold until its answer is sent
     * (kc_budget.h): over the budget now, the line is put back and the
     * connection reads nothing more until buffers free; a fetch for a
     * write (one item of at most -I bytes, its value received already)
     * goes over it; a get larger than a limit alone is an error */
    {
        uint64_t need = 0;

        for (b = 0; b < x->nbatch; b++)
            need += budget_get_bytes(s->st, x->batch[b].ns, x->batch[b].items,
                                     x->batch[b].n, false);
        switch (budget_admit(c, need)) {
        case BUDGET_OK:
            break;
        case BUDGET_WAIT:
            if (kind == MCG_FETCH)
                break;
            mc_get_free(s, x);
            c->ipos = (size_t)((const uint8_t *)line - c->ibuf);
            return conn_budget_wait(c);
        case BUDGET_NEVER:
            mc_get_free(s, x);
            s->stats.limit_errors++;
            return mc_error(c, "SERVER_ERROR get needs more read buffers than "
                            "--conn-inflight / --read-inflight allow\r\n");
        }
        budget_charge(c, (int64_t)need);
        x->charged = need;
    }
    s->stats.mc_get_keys += n;
    if (kind != MCG_FETCH)
        s->mcs.cmd_get += n;
    if (kind == MCG_GAT || kind == MCG_GATS || x->mg_touch)
        s->mcs.cmd_touch += n;
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
    return mc_done(c);
}
