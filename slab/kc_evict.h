/*
 * kc_evict.h - eviction policies: which slab on the device to reclaim when
 * none is free. A policy is told when a slab reaches the device, when a
 * block of it is read, and when it is freed, and names a victim on demand.
 * Only slabs wholly on the device (not open, not being written) are ever
 * handed to a policy, so any victim it names can be reclaimed.
 *
 * Policies: "fifo" (fatcache's: the oldest written slab), "lru" (the slab
 * least recently read or written).
 */
#ifndef KC_EVICT_H
#define KC_EVICT_H

#include <stdint.h>

#define EVICT_NONE UINT32_MAX

struct evict;

struct evict_ops {
    const char *name;
    const char *help;
    void (*on_write)(struct evict *ev, uint32_t slab);
    void (*on_read)(struct evict *ev, uint32_t slab);
    void (*on_free)(struct evict *ev, uint32_t slab);
    uint32_t (*victim)(struct evict *ev);
};

/* Policy state: a doubly linked list of slabs, oldest first. */
struct evict {
    const struct evict_ops *ops;
    uint32_t nslabs;
    uint32_t *prev, *next;   /* per slab; EVICT_NONE ends */
    uint32_t head, tail;
    uint32_t count;
};

/* Policy by name, or NULL. */
const struct evict_ops *evict_find(const char *name);
/* Names of all policies, NULL-terminated. */
const char *const *evict_names(void);

int evict_init(struct evict *ev, const struct evict_ops *ops, uint32_t nslabs);
void evict_deinit(struct evict *ev);

static inline void evict_on_write(struct evict *ev, uint32_t s) { ev->ops->on_write(ev, s); }
static inline void evict_on_read(struct evict *ev, uint32_t s) { ev->ops->on_read(ev, s); }
static inline void evict_on_free(struct evict *ev, uint32_t s) { ev->ops->on_free(ev, s); }
static inline uint32_t evict_victim(struct evict *ev) { return ev->ops->victim(ev); }

#endif
