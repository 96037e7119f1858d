/*
 * kc_evict.c - eviction policies (kc_evict.h).
 */
#include "slab/kc_evict.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Unlink slab s from the list, if on it. */
void evict_list_unlink(struct evict *ev, uint32_t s)
{
    uint32_t p = ev->prev[s], n = ev->next[s];

    if (p == EVICT_NONE && ev->head != s)
        return;  /* not on the list */
    if (p != EVICT_NONE)
        ev->next[p] = n;
    else
        ev->head = n;
    if (n != EVICT_NONE)
        ev->prev[n] = p;
    else
        ev->tail = p;
    ev->prev[s] = ev->next[s] = EVICT_NONE;
    ev->count--;
}

/* Append slab s at the tail (the youngest end). */
void evict_list_append(struct evict *ev, uint32_t s)
{
    ev->prev[s] = ev->tail;
    ev->next[s] = EVICT_NONE;
    if (ev->tail != EVICT_NONE)
        ev->next[ev->tail] = s;
    else
        ev->head = s;
    ev->tail = s;
    ev->count++;
}

bool evict_list_has(const struct evict *ev, uint32_t s)
{
    return ev->prev[s] != EVICT_NONE || ev->head == s;
}

static void list_on_write(struct evict *ev, uint32_t s)
{
    evict_list_unlink(ev, s);
    evict_list_append(ev, s);
}

static void list_on_free(struct evict *ev, uint32_t s)
{
    evict_list_unlink(ev, s);
}

static uint32_t list_victim(struct evict *ev)
{
    return ev->head;
}

static void fifo_on_read(struct evict *ev, uint32_t s, const struct index_entry *e)
{
    (void)ev;
    (void)s;
    (void)e;
}

/* LRU: a read makes the slab the youngest. */
static void lru_on_read(struct evict *ev, uint32_t s, const struct index_entry *e)
{
    (void)e;
    if (ev->tail != s && evict_list_has(ev, s)) {
        evict_list_unlink(ev, s);
        evict_list_append(ev, s);
    }
}

static const struct evict_ops evict_fifo = {
    .name = "fifo", .help = "the oldest written slab (fatcache)",
    .on_write = list_on_write, .on_read = fifo_on_read,
    .on_free = list_on_free, .victim = list_victim,
};

static const struct evict_ops evict_lru = {
    .name = "lru", .help = "the slab least recently read or written",
    .on_write = list_on_write, .on_read = lru_on_read,
    .on_free = list_on_free, .victim = list_victim,
};

/* reinsert: FIFO order; a block read at least k times (param, default 1)
 * since it was written is copied forward when its slab goes (CacheLib
 * BlockCache's hits-based reinsertion). */
static bool reinsert_reinsert(struct evict *ev, uint32_t s, const struct index_entry *e)
{
    (void)s;
    return index_hits(e) >= (ev->param ? ev->param : 1);
}

static const struct evict_ops evict_reinsert = {
    .name = "reinsert", .help = "fifo, copying forward blocks read >= k times (k = param, 1)",
    .on_write = list_on_write, .on_read = fifo_on_read,
    .on_free = list_on_free, .victim = list_victim, .reinsert = reinsert_reinsert,
};

/*
 * prefix: FIFO order with reinsertion for prefix chains read through
 * GetPrefix, paid from a write budget and spent on the most read blocks,
 * chain heads first among equals.
 *
 * A live block of the victim read since it was written (or last copied) is
 * copied forward, as `reinsert` does, but:
 * - Copies are paid from a budget of param percent (default 30) of the
 *   blocks put, so write amplification stays at or below 1 + param/100
 *   whatever the traffic.
 * - The budget goes to the blocks most likely to be asked for again: a
 *   copy needs more reads than a threshold, or as many and a chain position
 *   no deeper than a limit. While the credit is short and still falling,
 *   the limit falls (63, 15, 3, 0) and then the threshold rises; while it
 *   is ample and still rising, they move back. A block is of use only while every block before it in its
 *   chain is cached, and under GetPrefix a block is read only when its
 *   predecessors were found, so reads fall along a chain: both rules cut
 *   chains from the tail, and a kept tail never loses its head to them.
 * With a budget large enough for every read block, this is `reinsert` with
 * k = 1. Once the engine sends hints of finished chains (ev->hinted), a
 * copy needs two reads: admission then writes only blocks whose chain goes
 * on, so nearly every block not yet read will be, and a copy of a block
 * read once (whose chain may have ended with that read) would push one of
 * them out; a block read twice belongs to a conversation that went on
 * more than once, the likeliest to go on again (docs/eviction.md). Choosing the victim among the oldest slabs by fewest reads, or by
 * LFS's cost-benefit on read blocks, did no better than FIFO order on the
 * Mooncake traces and the chat generator (docs/eviction.md).
 */
#define PREFIX_BUDGET_DEFAULT 30u  /* copies allowed per 100 blocks put */
#define PREFIX_CREDIT_SHORT 16     /* copies left below which: stricter */
#define PREFIX_CREDIT_AMPLE 64     /* copies left above which: looser */
#define PREFIX_POS_ANY INDEX_POS_MAX

/* Running state of the prefix policy: the write budget and its use. */
struct prefix_state {
    uint32_t pending;    /* copies promised by reinsert(), not yet inserted */
    uint32_t min_hits;   /* reads a copy needs (more, or as many and ...) */
    uint32_t pos_limit;  /* ... a chain position at most this */
    int64_t credit;      /* copies the budget allows, in hundredths */
    int64_t last_credit; /* credit at the previous victim */
};

static int prefix_init(struct evict *ev)
{
    struct prefix_state *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return -1;
    p->min_hits = 1;
    p->pos_limit = PREFIX_POS_ANY;
    ev->priv = p;
    return 0;
}

static void prefix_deinit(struct evict *ev)
{
    free(ev->priv);
}

/* A block entered a slab: a put earns credit, a promised copy does not. */
static void prefix_on_insert(struct evict *ev, uint32_t s, uint32_t pos)
{
    struct prefix_state *p = ev->priv;

    (void)s;
    (void)pos;
    if (p->pending > 0)
        p->pending--;
    else
        p->credit += ev->param ? ev->param : PREFIX_BUDGET_DEFAULT;
}

/* Stricter: a shallower chain position limit, then one more read. */
static void prefix_tighten(struct prefix_state *p)
{
    if (p->pos_limit > 0) {
        p->pos_limit = p->pos_limit == PREFIX_POS_ANY ? 63 : p->pos_limit / 4;
    } else if (p->min_hits < 255) {
        p->min_hits++;
        p->pos_limit = PREFIX_POS_ANY;
    }
}

/* Looser: a deeper limit, then one read fewer. */
static void prefix_loosen(struct prefix_state *p)
{
    if (p->pos_limit != PREFIX_POS_ANY) {
        p->pos_limit = p->pos_limit >= 63 ? PREFIX_POS_ANY : p->pos_limit * 4 + 3;
    } else if (p->min_hits > 1) {
        p->min_hits--;
        p->pos_limit = 0;
    }
}

/* The oldest slab; first, fit the copy threshold to the credit: stricter
 * while it is short and still falling, looser while it is ample and still
 * rising. */
static uint32_t prefix_victim(struct evict *ev)
{
    struct prefix_state *p = ev->priv;

    p->pending = 0;   /* copies of an earlier victim that found no room */
    if (p->credit < PREFIX_CREDIT_SHORT * 100 && p->credit <= p->last_credit)
        prefix_tighten(p);
    else if (p->credit > PREFIX_CREDIT_AMPLE * 100 && p->credit > p->last_credit)
        prefix_loosen(p);
    p->last_credit = p->credit;
    return ev->head;
}

static bool prefix_reinsert(struct evict *ev, uint32_t s, const struct index_entry *e)
{
    struct prefix_state *p = ev->priv;
    uint32_t hits = index_hits(e);

    (void)s;
    if ((ev->hinted && hits < 2) || hits == 0 || p->credit < 100 || hits < p->min_hits ||
        (hits == p->min_hits && index_chain_pos(e) > p->pos_limit))
        return false;
    p->credit -= 100;
    p->pending++;
    return true;
}

static const struct evict_ops evict_prefix = {
    .name = "prefix", .help = "fifo, copying forward the most read blocks, chain heads first, "
                              "within a write budget (param: percent of puts, 30 = WA <= 1.3)",
    .init = prefix_init, .deinit = prefix_deinit,
    .on_write = list_on_write, .on_insert = prefix_on_insert, .on_read = fifo_on_read,
    .on_free = list_on_free, .victim = prefix_victim, .reinsert = prefix_reinsert,
};

static const struct evict_ops *const evict_all[] = { &evict_fifo, &evict_lru, &evict_reinsert,
                                                     &evict_prefix, NULL };
static const char *const evict_all_names[] = { "fifo", "lru", "reinsert", "prefix", NULL };

const struct evict_ops *evict_find(const char *name)
{
    for (size_t i = 0; evict_all[i] != NULL; i++)
        if (strcmp(evict_all[i]->name, name) == 0)
            return evict_all[i];
    return NULL;
}

const char *const *evict_names(void)
{
    return evict_all_names;
}

int evict_init(struct evict *ev, const struct evict_ops *ops, uint32_t nslabs)
{
    uint32_t param = ev->param;

    memset(ev, 0, sizeof(*ev));
    ev->param = param;
    ev->ops = ops;
    ev->nslabs = nslabs;
    ev->head = ev->tail = EVICT_NONE;
    ev->prev = malloc(sizeof(uint32_t) * nslabs);
    ev->next = malloc(sizeof(uint32_t) * nslabs);
    if (ev->prev == NULL || ev->next == NULL) {
        evict_deinit(ev);
        return -ENOMEM;
    }
    memset(ev->prev, 0xff, sizeof(uint32_t) * nslabs);
    memset(ev->next, 0xff, sizeof(uint32_t) * nslabs);
    if (ops->init != NULL && ops->init(ev) < 0) {
        evict_deinit(ev);
        return -ENOMEM;
    }
    return 0;
}

void evict_deinit(struct evict *ev)
{
    if (ev->ops != NULL && ev->ops->deinit != NULL && ev->priv != NULL)
        ev->ops->deinit(ev);
    ev->priv = NULL;
    free(ev->prev);
    free(ev->next);
    ev->prev = ev->next = NULL;
}
