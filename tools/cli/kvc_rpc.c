/*
 * kvc_rpc.c - single RPCs to one daemon (kvc_rpc.h), through libkvcache's
 * connection and framing (its internal entry client/kcc_raw.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kcc_raw.h"
#include "kvc_rpc.h"

struct kvc_rpc {
    char uri[512];               /* as given, for messages */
    kvcache_t *kc;               /* the one server, connected on first call */
    char err[600];               /* text of the last failure */
};

struct kvc_rpc *kvc_rpc_create(const char *uri, int timeout_ms)
{
    kvcache_options_t o = {.timeout_ms = timeout_ms, .connect_timeout_ms = timeout_ms};
    struct kvc_rpc *r;
    char u[520];

    /* one server; the CLI never reads blocks by reference: no Attach */
    if (strchr(uri, ',') != NULL || strlen(uri) >= sizeof(r->uri))
        return NULL;
    snprintf(u, sizeof(u), "%s%s", uri,
             strncmp(uri, "unix:", 5) == 0 && strchr(uri, '?') == NULL ? "?shm=0" : "");
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return NULL;
    snprintf(r->uri, sizeof(r->uri), "%s", uri);
    if ((r->kc = kvcache_create(u, &o, NULL)) == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

void kvc_rpc_destroy(struct kvc_rpc *r)
{
    if (r == NULL)
        return;
    kvcache_destroy(r->kc);
    free(r);
}

const char *kvc_rpc_error(const struct kvc_rpc *r)
{
    return r->err;
}

int kvc_rpc_call(struct kvc_rpc *r, Kvcache__Request *req, Kvcache__Response **resp)
{
    struct kcc_raw_resp rr = {0};
    int rc;

    *resp = NULL;
    r->err[0] = '\0';
    req->id = 0;
    rc = kcc_raw_call(r->kc, 0, req, NULL, 0, &rr);
    /* none of the CLI's operations answers with a data section */
    if (rc == 0 && (rr.data_len != 0 ||
                    (rr.r->id != req->id && rr.r->code == KVCACHE__CODE__OK)))
        rc = KVCACHE_EPROTO;
    if (rc) {
        kcc_raw_resp_free(&rr);
        snprintf(r->err, sizeof(r->err), "%s: %s", r->uri, kvcache_strerror(rc));
        return rc;
    }
    *resp = rr.r;
    rr.r = NULL;
    kcc_raw_resp_free(&rr);
    if ((*resp)->code != KVCACHE__CODE__OK) {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&kvcache__code__descriptor, (*resp)->code);
        snprintf(r->err, sizeof(r->err), "%s: %s%s%.200s", r->uri, v ? v->name : "error",
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
                 r->uri);
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

int kvc_rpc_audit(struct kvc_rpc *r, Kvcache__Response **resp)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__AuditRequest a = KVCACHE__AUDIT_REQUEST__INIT;
    q.op_case = KVCACHE__REQUEST__OP_AUDIT;
    q.audit = &a;
    return call_for(r, &q, KVCACHE__RESPONSE__RESULT_AUDIT, resp);
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
