/*
 * kcc_async.c - fire-and-forget puts.  kvcache_put_async copies the keys and
 * blocks into a queue bounded in batches and bytes and returns; one
 * background thread per handle (started on first use) sends the batches with
 * kcc_op_put over its own connections, so it never shares a socket with the
 * calling thread.  A full queue drops the put: a cache may lose writes, an
 * engine must not wait on it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kcc_client.h"

/* One queued batch; keys and block bytes follow the struct in one allocation. */
struct async_item {
    struct async_item *next;
    uint64_t ns;
    size_t n;
    uint32_t first_pos;
    uint32_t hints;             /* KVCACHE_HINT_* of every block */
    size_t block_len;
    kvcache_key_t *keys;        /* n keys */
    uint8_t *data;              /* n * block_len bytes */
};

struct kcc_async {
    struct kvcache *kc;
    pthread_t thread;
    pthread_mutex_t lock;       /* guards everything below except the counters */
    pthread_cond_t work;        /* signalled when an item is queued or on stop */
    pthread_cond_t idle;        /* signalled when the queue drains */
    struct async_item *head, *tail;
    size_t items, bytes;        /* what the queue holds now */
    int busy;                   /* the thread is sending a batch */
    int stop;                   /* destroy asked the thread to exit */
    int timeout_ms;             /* per batch, copied from the options at start */
    struct kcc_pool pool;       /* the thread's own connections */
    atomic_uint_fast64_t queued, dropped, failed, done;
};

static void *async_main(void *arg)
{
    struct kcc_async *a = arg;

    pthread_mutex_lock(&a->lock);
    for (;;) {
        while (a->head == NULL && !a->stop)
            pthread_cond_wait(&a->work, &a->lock);
        if (a->stop)
            break;
        struct async_item *it = a->head;
        a->head = it->next;
        if (a->head == NULL)
            a->tail = NULL;
        a->busy = 1;
        pthread_mutex_unlock(&a->lock);

        const void **bufs = malloc(sizeof(*bufs) * it->n);
        int rc = KVCACHE_ENOMEM;
        if (bufs) {
            for (size_t i = 0; i < it->n; i++)
                bufs[i] = it->data + i * it->block_len;
            rc = kcc_op_put(&a->pool, it->ns, it->keys, it->n, it->first_pos, it->hints, bufs,
                            it->block_len, NULL, NULL, kcc_now_ms() + (uint64_t)a->timeout_ms);
            free(bufs);
        }
        atomic_fetch_add(rc ? &a->failed : &a->done, 1);

        pthread_mutex_lock(&a->lock);
        a->items--;
        a->bytes -= it->n * it->block_len;
        a->busy = 0;
        free(it);
        if (a->head == NULL)
            pthread_cond_broadcast(&a->idle);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* Start the queue and its thread. */
static int async_start(struct kvcache *kc)
{
    struct kcc_async *a = calloc(1, sizeof(*a));
    int rc = KVCACHE_ENOMEM;

    if (a == NULL)
        return rc;
    a->kc = kc;
    a->timeout_ms = kc->opt.timeout_ms;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->work, NULL);
    pthread_cond_init(&a->idle, NULL);
    rc = kcc_pool_init(&a->pool, kc);
    if (rc)
        goto err;
    if (pthread_create(&a->thread, NULL, async_main, a)) {
        rc = KVCACHE_ENOMEM;
        kcc_pool_deinit(&a->pool);
        goto err;
    }
    kc->async = a;
    return 0;
err:
    pthread_cond_destroy(&a->work);
    pthread_cond_destroy(&a->idle);
    pthread_mutex_destroy(&a->lock);
    free(a);
    return rc;
}

void kcc_async_destroy(struct kcc_async *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    a->stop = 1;
    pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    while (a->head) {
        struct async_item *it = a->head;
        a->head = it->next;
        free(it);
    }
    kcc_pool_deinit(&a->pool);
    pthread_cond_destroy(&a->work);
    pthread_cond_destroy(&a->idle);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

int kvcache_put_async(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                      uint32_t first_pos, const void *const *bufs, size_t block_len)
{
    return kvcache_put_async_hint(kc, ns_id, keys, n, first_pos, 0, bufs, block_len);
}

int kvcache_put_async_hint(kvcache_t *kc, uint64_t ns_id, const kvcache_key_t *keys, size_t n,
                           uint32_t first_pos, uint32_t hints, const void *const *bufs,
                           size_t block_len)
{
    struct kcc_async *a;
    struct async_item *it;
    size_t bytes = n * block_len;
    int rc;

    if (kc == NULL || block_len == 0 || block_len > UINT32_MAX || (n && (!keys || !bufs)))
        return KVCACHE_EINVAL;
    if (n == 0)
        return 0;
    if (kc->async == NULL && (rc = async_start(kc)) != 0)
        return rc;
    a = kc->async;
    pthread_mutex_lock(&a->lock);
    if (a->items + 1 > kc->opt.async_max_items || a->bytes + bytes > kc->opt.async_max_bytes) {
        pthread_mutex_unlock(&a->lock);
        atomic_fetch_add(&a->dropped, 1);
        return KVCACHE_EFULL;
    }
    /* Reserve the room, copy outside the lock. */
    a->items++;
    a->bytes += bytes;
    pthread_mutex_unlock(&a->lock);

    it = malloc(sizeof(*it) + n * sizeof(kvcache_key_t) + bytes);
    if (it == NULL) {
        pthread_mutex_lock(&a->lock);
        a->items--;
        a->bytes -= bytes;
        pthread_mutex_unlock(&a->lock);
        atomic_fetch_add(&a->dropped, 1);
        return KVCACHE_ENOMEM;
    }
    it->next = NULL;
    it->ns = ns_id;
    it->n = n;
    it->first_pos = first_pos;
    it->hints = hints;
    it->block_len = block_len;
    it->keys = (kvcache_key_t *)(it + 1);
    it->data = (uint8_t *)(it->keys + n);
    memcpy(it->keys, keys, n * sizeof(*keys));
    for (size_t i = 0; i < n; i++)
        memcpy(it->data + i * block_len, bufs[i], block_len);

    pthread_mutex_lock(&a->lock);
    if (a->tail)
        a->tail->next = it;
    else
        a->head = it;
    a->tail = it;
    pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->lock);
    atomic_fetch_add(&a->queued, 1);
    return 0;
}

int kvcache_flush(kvcache_t *kc, int timeout_ms)
{
    struct kcc_async *a;
    struct timespec ts;
    int rc = 0;

    if (kc == NULL)
        return KVCACHE_EINVAL;
    a = kc->async;
    if (a == NULL)
        return 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (timeout_ms >= 0) {
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
    }
    pthread_mutex_lock(&a->lock);
    /* items counts reserved, queued and in-flight batches. */
    while (a->items > 0 && rc == 0) {
        if (timeout_ms < 0)
            pthread_cond_wait(&a->idle, &a->lock);
        else if (pthread_cond_timedwait(&a->idle, &a->lock, &ts))
            rc = a->items > 0 ? KVCACHE_ETIMEDOUT : 0;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

void kcc_async_stats(const struct kvcache *kc, kvcache_client_stats_t *cs)
{
    struct kcc_async *a = kc->async;
    if (a == NULL)
        return;
    cs->async_queued = atomic_load(&a->queued);
    cs->async_dropped = atomic_load(&a->dropped);
    cs->async_failed = atomic_load(&a->failed);
    cs->async_done = atomic_load(&a->done);
}
