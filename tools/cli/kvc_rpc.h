/*
 * kvc_rpc.h - the RPCs the CLI needs that libkvcache does not offer
 * (Stats with every counter, Health, ListNamespaces, ListSlabs, Audit,
 * DescribeKey): one request, one response, on one server, with a deadline,
 * sent with libkvcache's framing and connection (client/kcc_raw.h: the URI
 * syntax, timeouts and $KVCACHE_TOKEN are the library's).
 */
#ifndef KVC_RPC_H
#define KVC_RPC_H

#include "kvcache.pb-c.h"
#include "kvc_cli.h"

struct kvc_rpc;

/* Connect lazily to uri (one server). NULL on a bad URI or a list. */
struct kvc_rpc *kvc_rpc_create(const char *uri, int timeout_ms);
void kvc_rpc_destroy(struct kvc_rpc *r);

/*
 * Send req and read the response (*resp, free with
 * kvcache__response__free_unpacked). 0, a KVCACHE_E* / -errno code, or
 * KVCACHE_ESERVER when the response carries an error code (then *resp is
 * set and holds the message). The response must have no data section.
 */
int kvc_rpc_call(struct kvc_rpc *r, Kvcache__Request *req, Kvcache__Response **resp);

/* Shorthands; each fills *resp. */
int kvc_rpc_stats(struct kvc_rpc *r, Kvcache__Response **resp);
int kvc_rpc_health(struct kvc_rpc *r, Kvcache__Response **resp);
int kvc_rpc_list_ns(struct kvc_rpc *r, Kvcache__Response **resp);
int kvc_rpc_list_slabs(struct kvc_rpc *r, uint32_t start, uint32_t limit,
                       Kvcache__Response **resp);
int kvc_rpc_audit(struct kvc_rpc *r, Kvcache__Response **resp);
int kvc_rpc_describe(struct kvc_rpc *r, uint64_t ns, kvcache_key_t key,
                     Kvcache__Response **resp);

/* Text of the last failure ("unix:/x: connection refused"). */
const char *kvc_rpc_error(const struct kvc_rpc *r);

/* Connect, or report and return the exit code: a wrapper the subcommands
 * use as `if (!(r = kvc_rpc_open(x, "stats", &rc))) return rc;`. */
struct kvc_rpc *kvc_rpc_open(struct kvc_ctx *x, const char *cmd, int *rc);

/* Report a failed call of subcommand cmd; returns the exit code. */
int kvc_rpc_fail(struct kvc_rpc *r, const char *cmd, int err, Kvcache__Response *resp);

#endif
