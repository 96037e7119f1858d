/*
 * kc_class.h - size classes.
 *
 * A class is a slot size (a multiple of 4 KiB, item header included). The
 * classes of fixed-size namespaces are made exactly for their block size
 * (rounded up to 4 KiB, so a block wastes less than 4 KiB); values of
 * variable-size namespaces use geometric classes (factor 1.25, aligned to
 * 4 KiB, steps capped just under 16 MiB) up to the largest slot a slab
 * holds.
 */
#ifndef KC_CLASS_H
#define KC_CLASS_H

#include <stdint.h>

#define CLASS_MAX 256
#define CLASS_NONE UINT16_MAX
#define CLASS_STEP_MAX ((16u << 20) - 4096u)  /* geometric step cap */

struct class_table {
    uint32_t slab_size;
    uint32_t max_slot;           /* largest slot a slab can hold */
    uint16_t count;
    uint32_t slot[CLASS_MAX];    /* slot size per class id */
    uint32_t geo[CLASS_MAX];     /* geometric ladder of slot sizes */
    uint16_t ngeo;
};

void class_init(struct class_table *t, uint32_t slab_size);

/* Class id with exactly this slot size, made if missing; CLASS_NONE if the
 * table is full or the slot does not fit a slab. */
uint16_t class_for_slot(struct class_table *t, uint32_t slot_size);

/* Class for a value of len bytes in a fixed-size namespace. */
uint16_t class_exact(struct class_table *t, uint32_t len);

/* Class for a value of len bytes in a variable-size namespace. */
uint16_t class_geometric(struct class_table *t, uint32_t len);

/* Largest value a slab can hold. */
uint32_t class_max_value(const struct class_table *t);

#endif
