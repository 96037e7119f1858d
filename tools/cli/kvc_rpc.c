/*
 * kvc_rpc.c - single RPCs to one daemon (kvc_rpc.h).
 */
#include <stdlib.h>
#include <string.h>

#include "kcc_conn.h"
#include "kcc_rpc.h"
#include "kcc_uri.h"
#include "kvc_rpc.h"

struct kvc_rpc {
    struct kcc_uri uri;          /* the server */
    struct kcc_server srv;       /* its connection */
    struct kcc_rpc_cfg cfg;
    int timeout_ms;
    char err[400];
};

struct kvc_rpc *kvc_rpc_create(const char *uri, int timeout_ms)
{
    struct kvc_rpc *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    if (kcc_uri_parse(uri, strlen(uri), &r->uri)) {
        free(r);
        return NULL;
    }
    kcc_server_init(&r->srv, &r->uri);
    r->cfg.connect_ms = timeout_ms;
    r->cfg.retry_ms = 0;
    r->timeout_ms = timeout_ms;
    return r;
}

void kvc_rpc_destroy(struct kvc_rpc *r)
{
    if (r == NULL)
        return;
    kcc_server_deinit(&r->srv);
    free(r);
}

const char *kvc_rpc_error(const struct kvc_rpc *r)
{
    return r->err;
}

int kvc_rpc_call(struct kvc_rpc *r, Kvcache__Request *req, Kvcache__Response **resp)
{
    uint64_t deadline = kcc_now_ms() + (uint64_t)r->timeout_ms;
    int rc;

    *resp = NULL;
    r->err[0] = '\0';
    rc = kcc_rpc_send(&r->srv, &r->cfg, req, NULL, 0, deadline);
    if (rc == 0)
        rc = kcc_rpc_recv(&r->srv, &r->cfg, resp, deadline);
    if (rc) {
        snprintf(r->err, sizeof(r->err), "%s: %s", r->uri.name, kvcache_strerror(rc));
        return rc;
    }
    if (r->srv.data_left) {   /* none of our ops has a data section */
        kcc_server_fail(&r->srv, &r->cfg, KVCACHE_EPROTO);
        snprintf(r->err, sizeof(r->err), "%s: unexpected data section", r->uri.name);
        return KVCACHE_EPROTO;
    }
    if ((*resp)->code != KVCACHE__CODE__OK) {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&kvcache__code__descriptor, (*resp)->code);
        snprintf(r->err, sizeof(r->err), "%s: %s%s%s", r->uri.name, v ? v->name : "error",
                 (*resp)->message && *(*resp)->message ? ": " : "",
                 (*resp)->message ? (*resp)->message : "");
        return KVCACHE_ESERVER;
    }
    return 0;
}

/* Call and check that the response holds the result expected. */
static int call_for(struct kvc_rpc *r, Kvcache__Request *q, int result_case,
                    Kvcache__Response **resp)
{
    int rc = kvc_rpc_call(r, q, resp);
    if (rc == 0 && (int)(*resp)->result_case != result_case) {
        snprintf(r->err, sizeof(r->err), "%s: response without the result asked for",
                 r->uri.name);
        rc = KVCACHE_EPROTO;
    }
    return rc;
}

int kvc_rpc_stats(struct kvc_rpc *r, Kvcache__Response **resp)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__StatsRequest s = KVCACHE__STATS_REQUEST__INIT;
    q.op_case = KVCACHE__REQUEST__OP_STATS;
    q.stats = &s;
    return call_for(r, &q, KVCACHE__RESPONSE__RESULT_STATS, resp);
}

int kvc_rpc_health(struct kvc_rpc *r, Kvcache__Response **resp)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__HealthRequest h = KVCACHE__HEALTH_REQUEST__INIT;
    q.op_case = KVCACHE__REQUEST__OP_HEALTH;
    q.health = &h;
    return call_for(r, &q, KVCACHE__RESPONSE__RESULT_HEALTH, resp);
}

int kvc_rpc_list_ns(struct kvc_rpc *r, Kvcache__Response **resp)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__ListNamespacesRequest l = KVCACHE__LIST_NAMESPACES_REQUEST__INIT;
    q.op_case = KVCACHE__REQUEST__OP_LIST_NAMESPACES;
    q.list_namespaces = &l;
    return call_for(r, &q, KVCACHE__RESPONSE__RESULT_LIST_NAMESPACES, resp);
}

int kvc_rpc_list_slabs(struct kvc_rpc *r, uint32_t start, uint32_t limit,
                       Kvcache__Response **resp)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__ListSlabsRequest l = KVCACHE__LIST_SLABS_REQUEST__INIT;
    l.start = start;
    l.limit = limit;
    q.op_case = KVCACHE__REQUEST__OP_LIST_SLABS;
    q.list_slabs = &l;
    return call_for(r, &q, KVCACHE__RESPONSE__RESULT_LIST_SLABS, resp);
}

int kvc_rpc_describe(struct kvc_rpc *r, uint64_t ns, kvcache_key_t key,
                     Kvcache__Response **resp)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__DescribeKeyRequest d = KVCACHE__DESCRIBE_KEY_REQUEST__INIT;
    uint8_t kb[16];
    kvcache_key_to_bytes(key, kb);
    d.ns = ns;
    d.key.data = kb;
    d.key.len = 16;
    q.op_case = KVCACHE__REQUEST__OP_DESCRIBE_KEY;
    q.describe_key = &d;
    return call_for(r, &q, KVCACHE__RESPONSE__RESULT_DESCRIBE_KEY, resp);
}

struct kvc_rpc *kvc_rpc_open(struct kvc_ctx *x, const char *cmd, int *rc)
{
    struct kvc_rpc *r = kvc_rpc_create(x->server, x->timeout_ms);
    if (r == NULL) {
        kvc_err(cmd, "bad server URI \"%s\" (unix:PATH or tcp:HOST:PORT)", x->server);
        *rc = KVC_EXIT_USAGE;
    }
    return r;
}

int kvc_rpc_fail(struct kvc_rpc *r, const char *cmd, int err, Kvcache__Response *resp)
{
    kvc_err(cmd, "%s", r->err);
    if (resp)
        kvcache__response__free_unpacked(resp, NULL);
    return kvc_exit_for(err);
}
