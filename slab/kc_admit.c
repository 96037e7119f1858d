/*
 * kc_admit.c - admission policies (kc_admit.h).
 */
#include "slab/kc_admit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* all: every block is written (the engine before admission). */
static bool all_check(struct admit *a, const struct kc_key *key, uint32_t chain_pos,
                      uint32_t hints, bool room)
{
    (void)room;
    (void)a;
    (void)key;
    (void)chain_pos;
    (void)hints;
    return true;
}

/* hint: every block but those of a chain the engine says is finished,
 * once the device is full. A chat turn puts the blocks of its prompt; the
 * next turn of the same conversation asks for them again. When the engine
 * knows there will be no next turn (the session was closed), the blocks
 * would only be read by another request sharing them (the same document
 * under another question), which is rarer: while storing them pushes
 * nothing out they are kept for that chance, after that they are refused
 * so that live conversations keep their room. */
static bool hint_check(struct admit *a, const struct kc_key *key, uint32_t chain_pos,
                       uint32_t hints, bool room)
{
    (void)a;
    (void)key;
    (void)chain_pos;
    return room || (hints & ADMIT_HINT_DONE) == 0;
}

/*
 * ghost: S3-FIFO's ghost queue for flash: a block is written the second
 * time it is offered (its key is in the history of refused keys), or at
 * once if it heads its chain (position 0: shared by every request with
 * that prefix) or while the device has room. It uses no hints: what the
 * cache learns by itself.
 *
 * The history is a direct-mapped table of 16-bit key tags, GHOST_PER_BLOCK
 * (or param) slots per block the store holds: a refused key writes its tag
 * over whatever was in its slot, so old entries fade as new ones come, and
 * a false match (1 in 65536 per lookup) only admits a block.
 */
#define GHOST_PER_BLOCK 4u

/* The ghost table. */
struct ghost {
    uint16_t *tag;   /* per slot: tag of the last key refused there, 0 = none */
    uint64_t mask;   /* slots - 1 (a power of two) */
};

static int ghost_init(struct admit *a, uint64_t blocks)
{
    struct ghost *g = calloc(1, sizeof(*g));
    uint64_t want = blocks * (a->param ? a->param : GHOST_PER_BLOCK), n = 1024;

    if (g == NULL)
        return -ENOMEM;
    while (n < want)
        n <<= 1;
    g->tag = calloc(n, sizeof(*g->tag));
    if (g->tag == NULL) {
        free(g);
        return -ENOMEM;
    }
    g->mask = n - 1;
    a->priv = g;
    return 0;
}

static void ghost_deinit(struct admit *a)
{
    struct ghost *g = a->priv;

    free(g->tag);
    free(g);
}

static bool ghost_check(struct admit *a, const struct kc_key *key, uint32_t chain_pos,
                        uint32_t hints, bool room)
{
    struct ghost *g = a->priv;
    uint64_t slot = key->lo & g->mask;
    uint16_t tag = (uint16_t)(key->hi | 1);   /* never 0 */

    (void)hints;
    if (chain_pos == 0 || room)
        return true;
    if (g->tag[slot] == tag) {
        g->tag[slot] = 0;
        return true;
    }
    g->tag[slot] = tag;
    return false;
}

static const struct admit_ops admit_all = {
    .name = "all", .help = "write every block put",
    .check = all_check,
};

static const struct admit_ops admit_hint = {
    .name = "hint", .help = "write every block but those the engine marks as ending "
                            "a finished chain (PutItem.hints) once the device is full",
    .hints = true, .check = hint_check,
};

static const struct admit_ops admit_ghost = {
    .name = "ghost", .help = "write a block the second time it is put (ghost history of "
                             "refused keys, param slots per block, 4), chain heads at once",
    .init = ghost_init, .deinit = ghost_deinit, .check = ghost_check,
};

static const struct admit_ops *const admit_all_ops[] = { &admit_all, &admit_hint, &admit_ghost,
                                                         NULL };
static const char *const admit_all_names[] = { "all", "hint", "ghost", NULL };

const struct admit_ops *admit_find(const char *name)
{
    for (size_t i = 0; admit_all_ops[i] != NULL; i++)
        if (strcmp(admit_all_ops[i]->name, name) == 0)
            return admit_all_ops[i];
    return NULL;
}

const char *const *admit_names(void)
{
    return admit_all_names;
}

int admit_init(struct admit *a, const struct admit_ops *ops, uint64_t blocks)
{
    a->ops = ops;
    a->priv = NULL;
    if (ops->init != NULL)
        return ops->init(a, blocks);
    return 0;
}

void admit_deinit(struct admit *a)
{
    if (a->ops != NULL && a->ops->deinit != NULL && a->priv != NULL)
        a->ops->deinit(a);
    a->priv = NULL;
    a->ops = NULL;
}
