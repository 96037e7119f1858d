/*
 * kc_lease.c - leases of get batches answered by reference: grant, release,
 * expiry, and the per-connection bounds.
 */
#include "daemon/kc_lease.h"

#include <assert.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_dispatch.h"
#include "daemon/kc_get.h"
#include "daemon/kc_log.h"
#include "daemon/kc_reply.h"
#include "daemon/kc_daemon.h"
#include "daemon/kc_shm.h"

bool lease_fits(const struct conn *c, uint64_t bytes)
{
    const struct shm_conn *sc = c->shm;

    return sc != NULL && sc->nleases < LEASE_COUNT_MAX &&
           sc->lease_bytes + bytes <= c->srv->opts->lease_max;
}

void lease_add(struct conn *c, struct get_ctx *x, uint64_t bytes)
{
    struct shm_conn *sc = c->shm;

    assert(sc != NULL && x->lease == 0 && sc->nleases < LEASE_COUNT_MAX);
    /* at most half the slots are taken: a free one is near */
    while (sc->lslots[sc->next_lease % LEASE_SLOTS] != NULL || sc->next_lease == 0)
        sc->next_lease++;
    x->lease = sc->next_lease++;
    sc->lslots[x->lease % LEASE_SLOTS] = x;
    x->lease_bytes = bytes;
    x->lease_deadline = loop_now_ns() +
                        (uint64_t)c->srv->opts->lease_timeout * 1000000000ull;
    x->holds++;
    x->lprev = sc->ltail;
    x->lnext = NULL;
    if (sc->ltail)
        sc->ltail->lnext = x;
    else
        sc->lhead = x;
    sc->ltail = x;
    sc->nleases++;
    sc->lease_bytes += bytes;
    c->srv->stats.leases++;
    c->srv->stats.leased_bytes += bytes;
}

/* Take lease x off c's list and drop its hold. */
static void lease_end(struct conn *c, struct get_ctx *x)
{
    struct shm_conn *sc = c->shm;
    struct server *s = c->srv;

    assert(sc->nleases > 0 && sc->lease_bytes >= x->lease_bytes &&
           sc->lslots[x->lease % LEASE_SLOTS] == x);
    sc->lslots[x->lease % LEASE_SLOTS] = NULL;
    if (x->lprev)
        x->lprev->lnext = x->lnext;
    else
        sc->lhead = x->lnext;
    if (x->lnext)
        x->lnext->lprev = x->lprev;
    else
        sc->ltail = x->lprev;
    sc->nleases--;
    sc->lease_bytes -= x->lease_bytes;
    s->stats.leased_bytes -= x->lease_bytes;
    x->lease = 0;
    get_ctx_release(s, x);
}

int op_release(struct conn *c, Kvcache__Request *q, uint64_t t0)
{
    const Kvcache__ReleaseRequest *rq = q->release;

    (void)t0;
    hist_add(&c->srv->stats.op[OPK_RELEASE], 0);
    if (c->shm == NULL)
        return STEP_PROGRESS;
    for (size_t i = 0; i < rq->n_leases; i++) {
        struct get_ctx *x = c->shm->lslots[rq->leases[i] % LEASE_SLOTS];
        if (x != NULL && x->lease == rq->leases[i])
            lease_end(c, x);
    }
    if (c->shm->nleases == 0 && c->gets_inflight == 0)
        c->last_active_ns = loop_now_ns();
    return STEP_PROGRESS;
}

void lease_drop_all(struct conn *c)
{
    while (c->shm != NULL && c->shm->lhead != NULL)
        lease_end(c, c->shm->lhead);
}

void lease_expire(struct server *s, uint64_t now)
{
    for (struct conn *c = s->conns; c; c = c->next) {
        uint64_t n = 0;

        while (c->shm && c->shm->lhead && c->shm->lhead->lease_deadline <= now) {
            lease_end(c, c->shm->lhead);
            n++;
        }
        if (n) {
            s->stats.leases_expired += n;
            log_info("conn %llu (%s): %llu leases ran past --lease-timeout: ended",
                     (unsigned long long)c->id, c->peer, (unsigned long long)n);
        }
    }
}
