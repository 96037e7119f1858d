/*
 * kcc_client.c - the kvcache_t handle: options, servers and their ring,
 * namespaces, counters.  The calls themselves are in kcc_ops.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_nsid.h"
#include "kcc_client.h"
#include "kcc_md5.h"

#define DEF_CONNECT_MS  100
#define DEF_TIMEOUT_MS  500
#define DEF_RETRY_MS    1000
#define DEF_ASYNC_BYTES (64u << 20)
#define DEF_ASYNC_ITEMS 1024
#define DEF_RING_POINTS 4000

uint32_t kcc_server_of(const struct kvcache *kc, uint64_t ns_id, kvcache_key_t key)
{
    uint8_t b[KVCACHE_KEY_BYTES], d[16];
    char mk[KVCACHE_MEMCACHE_KEY_LEN + 1];
    if (kc->nservers == 1)
        return 0;
    if (kc->opt.ring_hash == KVCACHE_RING_MEMCACHE) {
        /* nutcracker's placement: md5 of the memcache key's text */
        kvcache_memcache_key(ns_id, key, mk);
        kcc_md5(mk, KVCACHE_MEMCACHE_KEY_LEN, d);
        return kcc_ring_lookup(&kc->ring, (uint32_t)d[0] | (uint32_t)d[1] << 8 |
                               (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24);
    }
    kvcache_key_to_bytes(key, b);
    return kcc_ring_lookup(&kc->ring, kcc_ring_hash(b));
}

void kvcache_memcache_key(uint64_t ns_id, kvcache_key_t key,
                          char out[KVCACHE_MEMCACHE_KEY_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[KVCACHE_KEY_BYTES];

    for (int i = 0; i < 16; i++)
        out[i] = hex[(ns_id >> (60 - 4 * i)) & 0xf];
    out[16] = ':';
    kvcache_key_to_bytes(key, b);
    for (int i = 0; i < KVCACHE_KEY_BYTES; i++) {
        out[17 + 2 * i] = hex[b[i] >> 4];
        out[18 + 2 * i] = hex[b[i] & 0xf];
    }
    out[KVCACHE_MEMCACHE_KEY_LEN] = '\0';
}

void kcc_pool_err(struct kcc_pool *p, uint32_t server, int rc, const char *what)
{
    if (p->err[0])
        return;
    snprintf(p->err, sizeof(p->err), "server %.100s: %.80s: %.60s",
             p->kc->uris[server].name, what ? what : "", kvcache_strerror(rc));
}

int kcc_pool_init(struct kcc_pool *p, struct kvcache *kc)
{
    memset(p, 0, sizeof(*p));
    p->kc = kc;
    p->srv = calloc(kc->nservers, sizeof(*p->srv));
    if (p->srv == NULL)
        return KVCACHE_ENOMEM;
    for (uint32_t i = 0; i < kc->nservers; i++)
        kcc_server_init(&p->srv[i], &kc->uris[i]);
    return 0;
}

void kcc_pool_deinit(struct kcc_pool *p)
{
    if (p->srv)
        for (uint32_t i = 0; i < p->kc->nservers; i++)
            kcc_server_deinit(&p->srv[i]);
    free(p->srv);
    p->srv = NULL;
}

kvcache_t *kvcache_create(const char *servers, const kvcache_options_t *opts, int *err)
{
    struct kvcache *kc = calloc(1, sizeof(*kc));
    const char **names = NULL;
    uint32_t *weights = NULL;
    int rc = KVCACHE_ENOMEM;

    if (kc == NULL)
        goto err;
    pthread_mutex_init(&kc->ns_lock, NULL);
    if (opts)
        kc->opt = *opts;
    if (kc->opt.connect_timeout_ms <= 0)
        kc->opt.connect_timeout_ms = DEF_CONNECT_MS;
    if (kc->opt.timeout_ms <= 0)
        kc->opt.timeout_ms = DEF_TIMEOUT_MS;
    if (kc->opt.retry_ms <= 0)
        kc->opt.retry_ms = DEF_RETRY_MS;
    if (kc->opt.async_max_bytes == 0)
        kc->opt.async_max_bytes = DEF_ASYNC_BYTES;
    if (kc->opt.async_max_items == 0)
        kc->opt.async_max_items = DEF_ASYNC_ITEMS;
    if (kc->opt.ring_points <= 0)
        kc->opt.ring_points = DEF_RING_POINTS;
    kc->cfg.connect_ms = kc->opt.connect_timeout_ms;
    kc->cfg.retry_ms = kc->opt.retry_ms;
    rc = kcc_uri_parse_list(servers, &kc->uris, &kc->nservers);
    if (rc)
        goto err;
    rc = KVCACHE_ENOMEM;
    names = calloc(kc->nservers, sizeof(*names));
    weights = calloc(kc->nservers, sizeof(*weights));
    if (names == NULL || weights == NULL)
        goto err;
    for (uint32_t i = 0; i < kc->nservers; i++) {
        names[i] = kc->uris[i].name;
        weights[i] = kc->uris[i].weight;
    }
    rc = kcc_ring_init(&kc->ring, names, weights, kc->nservers, (uint32_t)kc->opt.ring_points);
    if (rc)
        goto err;
    rc = kcc_pool_init(&kc->pool, kc);
    if (rc)
        goto err;
    free(names);
    free(weights);
    return kc;
err:
    free(names);
    free(weights);
    kvcache_destroy(kc);
    if (err)
        *err = rc;
    return NULL;
}

void kvcache_destroy(kvcache_t *kc)
{
    if (kc == NULL)
        return;
    kcc_async_destroy(kc->async);
    if (kc->pool.kc)
        kcc_pool_deinit(&kc->pool);
    kcc_ring_deinit(&kc->ring);
    for (size_t i = 0; i < kc->nns; i++) {
        free(kc->ns[i].model);
        free(kc->ns[i].dtype);
    }
    free(kc->ns);
    free(kc->uris);
    pthread_mutex_destroy(&kc->ns_lock);
    free(kc);
}

int kvcache_set_timeout(kvcache_t *kc, int timeout_ms)
{
    if (kc == NULL || timeout_ms <= 0)
        return KVCACHE_EINVAL;
    kc->opt.timeout_ms = timeout_ms;
    return 0;
}

const char *kvcache_last_error(const kvcache_t *kc)
{
    return kc ? kc->pool.err : "";
}

int kvcache_server_count(const kvcache_t *kc)
{
    return kc ? (int)kc->nservers : KVCACHE_EINVAL;
}

int kvcache_server_of(const kvcache_t *kc, kvcache_key_t key)
{
    if (kc == NULL || kc->opt.ring_hash == KVCACHE_RING_MEMCACHE)
        return KVCACHE_EINVAL;   /* that placement depends on the namespace */
    return (int)kcc_server_of(kc, 0, key);
}

int kvcache_server_of_ns(const kvcache_t *kc, uint64_t ns_id, kvcache_key_t key)
{
    return kc ? (int)kcc_server_of(kc, ns_id, key) : KVCACHE_EINVAL;
}

/* The proto module's view of a public descriptor. */
static int ns_to_proto(const kvcache_ns_desc_t *d, struct kc_ns_desc *pd)
{
    if (d == NULL || d->model == NULL)
        return KVCACHE_EINVAL;
    *pd = (struct kc_ns_desc){
        .model = d->model, .model_len = (uint32_t)strnlen(d->model, KC_NS_MODEL_MAX + 1),
        .layer_begin = d->layer_begin, .layer_end = d->layer_end,
        .tokens_per_block = d->tokens_per_block,
        .dtype = d->dtype ? d->dtype : "",
        .dtype_len = d->dtype ? (uint32_t)strnlen(d->dtype, KC_NS_DTYPE_MAX + 1) : 0,
        .kv_heads = d->kv_heads, .head_dim = d->head_dim, .block_bytes = d->block_bytes,
    };
    return 0;
}

int kvcache_ns_id(const kvcache_ns_desc_t *desc, uint64_t *ns_id)
{
    struct kc_ns_desc pd;
    if (ns_to_proto(desc, &pd) || ns_id == NULL || kc_ns_id(&pd, ns_id))
        return KVCACHE_EINVAL;
    return 0;
}

/* Remember a namespace in the handle (once per id). */
static int ns_remember(struct kvcache *kc, uint64_t id, const kvcache_ns_desc_t *d)
{
    int rc = 0;
    pthread_mutex_lock(&kc->ns_lock);
    for (size_t i = 0; i < kc->nns; i++)
        if (kc->ns[i].id == id)
            goto out;
    if (kc->nns == kc->ns_cap) {
        size_t cap = kc->ns_cap ? kc->ns_cap * 2 : 4;
        struct kcc_ns *nn = realloc(kc->ns, cap * sizeof(*nn));
        if (nn == NULL) {
            rc = KVCACHE_ENOMEM;
            goto out;
        }
        kc->ns = nn;
        kc->ns_cap = cap;
    }
    struct kcc_ns *ns = &kc->ns[kc->nns];
    ns->id = id;
    ns->desc = *d;
    ns->model = strdup(d->model);
    ns->dtype = strdup(d->dtype ? d->dtype : "");
    if (ns->model == NULL || ns->dtype == NULL) {
        free(ns->model);
        free(ns->dtype);
        rc = KVCACHE_ENOMEM;
        goto out;
    }
    ns->desc.model = ns->model;
    ns->desc.dtype = ns->dtype;
    kc->nns++;
out:
    pthread_mutex_unlock(&kc->ns_lock);
    return rc;
}

int kcc_ns_lookup(struct kvcache *kc, uint64_t id, kvcache_ns_desc_t *d)
{
    int rc = KVCACHE_ENONS;
    pthread_mutex_lock(&kc->ns_lock);
    for (size_t i = 0; i < kc->nns; i++)
        if (kc->ns[i].id == id) {
            *d = kc->ns[i].desc;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&kc->ns_lock);
    return rc;
}

int kvcache_open_namespace(kvcache_t *kc, const kvcache_ns_desc_t *desc, uint64_t *ns_id)
{
    uint64_t id, deadline;
    int rc, first_err = 0, ok = 0;

    if (kc == NULL || ns_id == NULL)
        return KVCACHE_EINVAL;
    rc = kvcache_ns_id(desc, &id);
    if (rc)
        return rc;
    *ns_id = id;
    rc = ns_remember(kc, id, desc);
    if (rc)
        return rc;
    kc->pool.err[0] = '\0';
    deadline = kcc_now_ms() + (uint64_t)kc->opt.timeout_ms;
    for (uint32_t s = 0; s < kc->nservers; s++) {
        rc = kcc_open_ns_on(&kc->pool, s, desc, deadline);
        if (rc == 0)
            ok++;
        else if (first_err == 0 || rc == KVCACHE_ESIZE)
            first_err = rc;
    }
    return ok && first_err != KVCACHE_ESIZE ? 0 : first_err;
}

int kvcache_client_stats(const kvcache_t *kc, kvcache_client_stats_t *cs)
{
    if (kc == NULL || cs == NULL)
        return KVCACHE_EINVAL;
    memset(cs, 0, sizeof(*cs));
    for (uint32_t s = 0; s < kc->nservers; s++) {
        cs->connects += kc->pool.srv[s].conn.nconnects;
        cs->timeouts += kc->pool.srv[s].timeouts;
    }
    kcc_async_stats(kc, cs);
    return 0;
}
