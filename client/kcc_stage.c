/*
 * kcc_stage.c - the shared memory as the caller sees it: the region and
 * staging area of a server, and puts from reserved buffers.
 */
#include <stdlib.h>
#include <string.h>

#include "kcc_client.h"

/* Server index check and connection (with Attach) of server `server`. */
static struct kcc_server *stage_server(kvcache_t *kc, int server, int *rc)
{
    struct kcc_server *s;

    if (kc == NULL || server < 0 || (uint32_t)server >= kc->nservers) {
        *rc = KVCACHE_EINVAL;
        return NULL;
    }
    s = &kc->pool.srv[server];
    *rc = kcc_server_connect(s, &kc->cfg, kcc_now_ms() + (uint64_t)kc->opt.timeout_ms);
    if (*rc == 0 && !kcc_shm_on(s))
        *rc = KVCACHE_ENOSHM;
    return *rc ? NULL : s;
}

int kvcache_shm_region(kvcache_t *kc, int server, const void **base, size_t *size)
{
    int rc;
    struct kcc_server *s = stage_server(kc, server, &rc);

    if (s == NULL)
        return rc;
    if (base)
        *base = s->shm.region;
    if (size)
        *size = s->shm.region_size;
    return 0;
}

int kvcache_shm_staging(kvcache_t *kc, int server, void **base, size_t *size)
{
    int rc;
    struct kcc_server *s = stage_server(kc, server, &rc);

    if (s == NULL)
        return rc;
    if (s->shm.staging == NULL)
        return KVCACHE_ENOSHM;
    if (base)
        *base = s->shm.staging;
    if (size)
        *size = s->shm.staging_size;
    return 0;
}

/* The server whose staging area holds [p, p + len), or NULL. */
static struct kcc_server *stage_owner(kvcache_t *kc, const void *p, size_t len)
{
    for (uint32_t i = 0; i < kc->nservers; i++) {
        struct kcc_shm *sh = &kc->pool.srv[i].shm;
        const uint8_t *b = p;
        if (sh->staging && b >= sh->staging && b < sh->staging + sh->staging_size &&
            len <= (size_t)(sh->staging + sh->staging_size - b))
            return &kc->pool.srv[i];
    }
    return NULL;
}

int kvcache_put_reserve(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                        size_t block_len, void **bufs)
{
    size_t al = (block_len + 4095) & ~(size_t)4095;

    if (kc == NULL || block_len == 0 || (n && (keys == NULL || bufs == NULL)))
        return KVCACHE_EINVAL;
    for (size_t i = 0; i < n; i++) {
        uint32_t si = kcc_server_of(kc, ns_id, keys[i]);
        struct kcc_server *s = &kc->pool.srv[si];
        int rc = 0;

        if (s->shm.staging_out == 0)
            s->shm.staging_used = 0;   /* nothing out: start over */
        if (s->shm.tried_gen != s->conn.nconnects || s->conn.fd < 0)
            rc = kcc_server_connect(s, &kc->cfg, kcc_now_ms() + (uint64_t)kc->opt.timeout_ms);
        if (rc == 0 && kcc_shm_on(s) && s->shm.staging &&
            s->shm.staging_size - s->shm.staging_used >= al) {
            bufs[i] = s->shm.staging + s->shm.staging_used;
            s->shm.staging_used += al;
            s->shm.staging_out++;
        } else if ((bufs[i] = malloc(block_len)) == NULL) {
            kvcache_put_cancel(kc, bufs, i);
            return KVCACHE_ENOMEM;
        }
    }
    return 0;
}

/* True if p lies in a staging area of an earlier connection (kept mapped
 * until the handle ends: nothing to give back). */
static int stage_old(const kvcache_t *kc, const void *p)
{
    for (uint32_t i = 0; i < kc->nservers; i++)
        for (const struct kcc_map *m = kc->pool.srv[i].shm.old; m; m = m->next)
            if ((const uint8_t *)p >= (const uint8_t *)m->base &&
                (const uint8_t *)p < (const uint8_t *)m->base + m->size)
                return 1;
    return 0;
}

void kvcache_put_cancel(kvcache_t *kc, void *const *bufs, size_t n)
{
    if (kc == NULL || bufs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        struct kcc_server *s = stage_owner(kc, bufs[i], 1);
        if (s && s->shm.staging_out)
            s->shm.staging_out--;
        else if (s == NULL && !stage_old(kc, bufs[i]))
            free(bufs[i]);
    }
}

int kvcache_put_commit(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                       uint32_t first_pos, void *const *bufs, size_t block_len, int *status,
                       size_t *nstored)
{
    int rc;

    if (nstored)
        *nstored = 0;
    if (kc == NULL)
        return KVCACHE_EINVAL;
    kc->pool.err[0] = '\0';
    rc = kcc_op_put(&kc->pool, ns_id, keys, n, first_pos, 0, (const void *const *)bufs,
                    block_len, status, nstored, kcc_now_ms() + (uint64_t)kc->opt.timeout_ms);
    kvcache_put_cancel(kc, bufs, n);
    return rc;
}
