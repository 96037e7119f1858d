/*
 * kc_class.c - size classes (kc_class.h).
 */
#include "slab/kc_class.h"

#include <string.h>

#include "ssd/kc_format.h"

void class_init(struct class_table *t, uint32_t slab_size)
{
    memset(t, 0, sizeof(*t));
    t->slab_size = slab_size;
    t->max_slot = (uint32_t)((slab_size - FMT_SLAB_HDR) & ~(uint64_t)(FMT_BLOCK - 1));
    /* Geometric ladder: 4 KiB, then x1.25 rounded up to 4 KiB. */
    uint64_t s = FMT_BLOCK;
    while (t->ngeo < CLASS_MAX && s < t->max_slot) {
        t->geo[t->ngeo++] = (uint32_t)s;
        /* Steps stay under 16 MiB so that the padding of a value in its
         * slot fits the 24 bits the index keeps it in. */
        uint64_t step = s / 4 < CLASS_STEP_MAX ? s / 4 : CLASS_STEP_MAX;
        s = fmt_align(s + step);
    }
    if (t->ngeo < CLASS_MAX)
        t->geo[t->ngeo++] = t->max_slot;
}

uint16_t class_for_slot(struct class_table *t, uint32_t slot_size)
{
    if (slot_size == 0 || slot_size % FMT_BLOCK != 0 || slot_size > t->max_slot)
        return CLASS_NONE;
    for (uint16_t i = 0; i < t->count; i++)
        if (t->slot[i] == slot_size)
            return i;
    if (t->count == CLASS_MAX)
        return CLASS_NONE;
    t->slot[t->count] = slot_size;
    return t->count++;
}

uint32_t class_max_value(const struct class_table *t)
{
    return t->max_slot - FMT_ITEM_HDR;
}

uint16_t class_exact(struct class_table *t, uint32_t len)
{
    if (len > class_max_value(t))
        return CLASS_NONE;
    return class_for_slot(t, fmt_slot_size(len));
}

uint16_t class_geometric(struct class_table *t, uint32_t len)
{
    if (len > class_max_value(t))
        return CLASS_NONE;
    uint64_t need = (uint64_t)len + FMT_ITEM_HDR;
    for (uint16_t i = 0; i < t->ngeo; i++)
        if (t->geo[i] >= need)
            return class_for_slot(t, t->geo[i]);
    return CLASS_NONE;
}
