/*
 * kc_rpc.h - the protobuf RPC on a connection (proto/README.md): the frame
 * reader (20-byte header, protobuf message, data section into the sink),
 * and the dispatch of each request through the table of operations
 * (kc_ops.h, generated from kvcache.proto) to its handler op_<name>
 * (kc_dispatch.h). Unix and TCP connections speak it.
 */
#ifndef KC_RPC_H
#define KC_RPC_H

#include <stdint.h>

#include "kvcache.pb-c.h"

struct conn;

/* The RPC's table for struct conn (kc_conn.h). */
extern const struct conn_proto rpc_proto;

/* Handle a decoded request (takes ownership of q); returns a step. */
int dispatch_request(struct conn *c, Kvcache__Request *q, uint64_t data_len);

/* Refuse a connection over --conns before it is set up: one LIMIT
 * answer written to fd (best effort). */
void rpc_refuse(int fd, const char *why);

#endif
