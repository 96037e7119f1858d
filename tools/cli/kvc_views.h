/*
 * kvc_views.h - the namespace and slab views, shared by the online commands
 * (`kvcache ns`, `kvcache slabs`, from the daemon's RPCs) and the offline
 * inspector (from a store file), which fills the same protobuf messages.
 */
#ifndef KVC_VIEWS_H
#define KVC_VIEWS_H

#include <stdbool.h>

#include "kvcache.pb-c.h"

/* Namespaces: a table, or the message as JSON. */
void kvc_view_ns(const Kvcache__ListNamespacesResponse *l, bool json);

/* Slabs: one line each (unless summary: fill, live share, sequence range)
 * then the store's totals; with json, the slabs plus a "store" object. */
void kvc_view_slabs(const Kvcache__ListSlabsResponse *l, bool json, bool summary);

#endif
