/*
 * kc_dispatch.h - decoded requests to store calls and responses.
 *
 * Synchronous operations answer at once. Get and GetPrefix are submitted to
 * the store and answered from its callback, with the blocks sent straight
 * from the engine's memory (struct get_ctx holds them until sent). Put is a
 * small state machine (kc_put.c) fed by the connection's data sink.
 */
#ifndef KC_DISPATCH_H
#define KC_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "kc_ops.h"
#include "kvcache.pb-c.h"
#include "slab/kc_store.h"

struct conn;
struct server;

/* Handle a decoded request (takes ownership of req). */
int dispatch_request(struct conn *c, Kvcache__Request *req, uint64_t data_len);

/*
 * Are the request's strings whole? protobuf-c cuts a string at its first
 * NUL, so a model "a\0b" would open namespace "a". pb is the request's raw
 * protobuf message. False: refuse the request (BAD_REQUEST).
 */
bool dispatch_strings_ok(const Kvcache__Request *q, const uint8_t *pb,
                         size_t len);

/*
 * The handler of each operation of kc_ops.h: op_<name>(c, q, t0) answers
 * request q decoded at t0 and returns a step. q is freed by the caller,
 * except by a KC_OP_DATA handler (it takes q; its data section follows,
 * c->hdr.data_len bytes) or a get parked for the budget (c->parked).
 * Where they live: kc_dispatch.c (most), kc_get.c?, kc_info.c (stats,
 * list_namespaces), kc_put.c (put), kc_shm.c (attach), kc_lease.c
 * (release).
 */
#define OP_HANDLER(name, NAME, num, flags) \
    int op_##name(struct conn *c, Kvcache__Request *q, uint64_t t0);
KC_OPS(OP_HANDLER)
#undef OP_HANDLER



#endif
