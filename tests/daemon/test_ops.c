/*
 * test_ops.c - every operation, over the Unix socket and over TCP, against
 * the real kvcached; then GET /metrics and a clean SIGTERM.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kc_nsid.h"
#include "kc_tclient.h"

#define BLK 65536u

/* Send q (no data) and receive its response, checking the id. */
static void roundtrip(struct tc *c, Kvcache__Request *q, struct tc_resp *rs)
{
    uint64_t id = tc_send(c, q, NULL, 0);

    CHECK(tc_recv(c, rs) == 0);
    CHECK(rs->r->id == id);
}

static void key_request(Kvcache__Request *q, int op, uint64_t ns,
                        uint8_t *keys, size_t n, void *sub)
{
    /* every keyed request has the same layout: ns then keys */
    Kvcache__MatchRequest *m = sub;

    m->ns = ns;
    m->keys.data = keys;
    m->keys.len = n * KC_KEY_WIRE_LEN;
    q->op_case = op;
    q->match = sub;    /* the oneof members share storage */
}

static void test_transport(struct tc *c, const char *model, uint64_t base)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__MatchRequest m = KVCACHE__MATCH_REQUEST__INIT;
    Kvcache__GetRequest g = KVCACHE__GET_REQUEST__INIT;
    Kvcache__DeleteRequest dl = KVCACHE__DELETE_REQUEST__INIT;
    Kvcache__DescribeKeyRequest dk = KVCACHE__DESCRIBE_KEY_REQUEST__INIT;
    Kvcache__ListSlabsRequest ls = KVCACHE__LIST_SLABS_REQUEST__INIT;
    Kvcache__StatsRequest sq = KVCACHE__STATS_REQUEST__INIT;
    Kvcache__HealthRequest hq = KVCACHE__HEALTH_REQUEST__INIT;
    Kvcache__ListNamespacesRequest lq = KVCACHE__LIST_NAMESPACES_REQUEST__INIT;
    Kvcache__DropNamespaceRequest dq = KVCACHE__DROP_NAMESPACE_REQUEST__INIT;
    struct kc_ns_desc nd = { model, (uint32_t)strlen(model), 0, 32, 16, "bf16",
                             4, 8, 128, BLK };
    uint8_t *keys, want[BLK];
    struct tc_resp rs;
    uint64_t ns, id;
    bool seen = false;

    /* OpenNamespace: the id is the documented hash, and stable */
    ns = tc_open_ns(c, model, BLK);
    CHECK(kc_ns_id(&nd, &id) == 0 && id == ns);
    CHECK(tc_open_ns(c, model, BLK) == ns);

    /* Put, then Put again: idempotent */
    tc_put_blocks(c, ns, base, 8, BLK);
    tc_put_blocks(c, ns, base, 8, BLK);
    CHECK(tc_get_prefix_check(c, ns, base, 8, BLK) == 8);

    /* empty batches are valid and answered */
    CHECK(tc_get_prefix_check(c, ns, base, 0, BLK) == 0);
    tc_put_blocks(c, ns, base, 0, BLK);
    {
        Kvcache__GetRequest g0 = KVCACHE__GET_REQUEST__INIT;

        kvcache__request__init(&q);
        g0.ns = ns;
        q.op_case = KVCACHE__REQUEST__OP_GET;
        q.get = &g0;
        roundtrip(c, &q, &rs);
        CHECK(rs.r->code == 0 && rs.r->get->n_status == 0 && rs.data_len == 0);
        tc_resp_free(&rs);
    }

    /* GetPrefix stops at the first missing key */
    keys = tc_keys(base, 8);
    kc_key_pack(keys + 4 * KC_KEY_WIRE_LEN, 999999, 1);
    memset(&q, 0, sizeof(q));
    kvcache__request__init(&q);
    {
        Kvcache__GetPrefixRequest gp = KVCACHE__GET_PREFIX_REQUEST__INIT;

        gp.ns = ns;
        gp.keys.data = keys;
        gp.keys.len = 8 * KC_KEY_WIRE_LEN;
        q.op_case = KVCACHE__REQUEST__OP_GET_PREFIX;
        q.get_prefix = &gp;
        roundtrip(c, &q, &rs);
        CHECK(rs.r->code == 0 && rs.r->get_prefix->found == 4);
        CHECK(rs.data_len == 4ull * BLK);
        tc_resp_free(&rs);
    }

    /* Get: per-key status, data of the hits in key order */
    kvcache__request__init(&q);
    g.ns = ns;
    g.keys.data = keys + 3 * KC_KEY_WIRE_LEN;    /* base+3, missing, base+5 */
    g.keys.len = 3 * KC_KEY_WIRE_LEN;
    q.op_case = KVCACHE__REQUEST__OP_GET;
    q.get = &g;
    roundtrip(c, &q, &rs);
    CHECK(rs.r->code == 0 && rs.r->get->n_status == 3);
    CHECK(rs.r->get->status[0] == KVCACHE__CODE__OK);
    CHECK(rs.r->get->status[1] == KVCACHE__CODE__MISS);
    CHECK(rs.r->get->status[2] == KVCACHE__CODE__OK);
    CHECK(rs.r->get->lengths[0] == BLK && rs.r->get->lengths[1] == 0);
    CHECK(rs.data_len == 2ull * BLK);
    tc_fill(want, BLK, base + 3);
    CHECK(memcmp(rs.data, want, BLK) == 0);
    tc_fill(want, BLK, base + 5);
    CHECK(memcmp(rs.data + BLK, want, BLK) == 0);
    tc_resp_free(&rs);

    /* Exists: per key, any order, no data (base+3, missing, base+5,
     * then base+0 after them); in an unknown namespace: its error */
    {
        Kvcache__ExistsRequest ex = KVCACHE__EXISTS_REQUEST__INIT;
        uint8_t *k4 = tc_keys(base, 4);

        memcpy(k4, keys + 3 * KC_KEY_WIRE_LEN, 3 * KC_KEY_WIRE_LEN);
        kc_key_pack(k4 + 3 * KC_KEY_WIRE_LEN, base, ~base);
        kvcache__request__init(&q);
        ex.ns = ns;
        ex.keys.data = k4;
        ex.keys.len = 4 * KC_KEY_WIRE_LEN;
        q.op_case = KVCACHE__REQUEST__OP_EXISTS;
        q.exists = &ex;
        roundtrip(c, &q, &rs);
        CHECK(rs.r->code == 0 && rs.r->result_case == KVCACHE__RESPONSE__RESULT_EXISTS);
        CHECK(rs.r->exists->n_present == 4 && rs.data_len == 0);
        CHECK(rs.r->exists->present[0] && !rs.r->exists->present[1]);
        CHECK(rs.r->exists->present[2] && rs.r->exists->present[3]);
        tc_resp_free(&rs);
        ex.ns = ns + 1;
        roundtrip(c, &q, &rs);
        CHECK(rs.r->code == KVCACHE__CODE__UNKNOWN_NAMESPACE);
        free(k4);
    }
    tc_resp_free(&rs);

    /* Match */
    kvcache__request__init(&q);
    key_request(&q, KVCACHE__REQUEST__OP_MATCH, ns, keys, 8, &m);
    roundtrip(c, &q, &rs);
    CHECK(rs.r->code == 0 && rs.r->match->matched == 4);
    tc_resp_free(&rs);
    free(keys);
    keys = tc_keys(base, 8);
    kvcache__request__init(&q);
    key_request(&q, KVCACHE__REQUEST__OP_MATCH, ns, keys, 8, &m);
    roundtrip(c, &q, &rs);
    CHECK(rs.r->code == 0 && rs.r->match->matched == 8);
    tc_resp_free(&rs);

    /* DescribeKey */
    kvcache__request__init(&q);
    dk.ns = ns;
    dk.key.data = keys;
    dk.key.len = KC_KEY_WIRE_LEN;
    q.op_case = KVCACHE__REQUEST__OP_DESCRIBE_KEY;
    q.describe_key = &dk;
    roundtrip(c, &q, &rs);
    CHECK(rs.r->code == 0 && rs.r->describe_key->found);
    CHECK(rs.r->describe_key->length == BLK);
    CHECK(rs.r->describe_key->chain_pos == (uint32_t)base);
    tc_resp_free(&rs);

    /* Delete: present and missing */
    kvcache__request__init(&q);
    dl.ns = ns;
    dl.keys.data = keys + 7 * KC_KEY_WIRE_LEN;
    dl.keys.len = KC_KEY_WIRE_LEN;
    q.op_case = KVCACHE__REQUEST__OP_DELETE;
    q.delete_ = &dl;
    roundtrip(c, &q, &rs);
    CHECK(rs.r->code == 0 && rs.r->delete_->n_status == 1);
    CHECK(rs.r->delete_->status[0] == KVCACHE__CODE__OK);
    tc_resp_free(&rs);
    q.id = 0;
    roundtrip(c, &q, &rs);
    CHECK(rs.r->delete_->status[0] == KVCACHE__CODE__MISS);
    tc_resp_free(&rs);
    CHECK(tc_get_prefix_check(c, ns, base, 8, BLK) == 7);

    /* ListNamespaces: ours with its descriptor */
    kvcache__request__init(&q);
    q.op_case = KVCACHE__REQUEST__OP_LIST_NAMESPACES;
    q.list_namespaces = &lq;
    roundtrip(c, &q, &rs);
    CHECK(rs.r->code == 0);
    for (size_t i = 0; i < rs.r->list_namespaces->n_namespaces; i++) {
        Kvcache__NamespaceInfo *ni = rs.r->list_namespaces->namespaces[i];

        if (ni->ns == ns) {
            seen = true;
            CHECK(ni->desc && strcmp(ni->desc->model, model) == 0);
            CHECK(ni->block_bytes == BLK && ni->desc->kv_heads == 8);
            CHECK(ni->items == 7);
        }
    }
    CHECK(seen);
    tc_resp_free(&rs);

    /* ListSlabs */
    kvcache__request__init(&q);
    ls.limit = 10;
    q.op_case = KVCACHE__REQUEST__OP_LIST_SLABS;
    q.list_slabs = &ls;
    roundtrip(c, &q, &rs);
    CHECK(rs.r->code == 0 && rs.r->list_slabs->total > 10);
    CHECK(rs.r->list_slabs->n_slabs == 10);
    tc_resp_free(&rs);

    /* Stats */
    kvcache__request__init(&q);
    q.op_case = KVCACHE__REQUEST__OP_STATS;
    q.stats = &sq;
    roundtrip(c, &q, &rs);
    CHECK(rs.r->code == 0 && rs.r->stats->items >= 7);
    CHECK(rs.r->stats->puts >= 8 && rs.r->stats->requests > 10);
    CHECK(rs.r->stats->n_latency > 3 && rs.r->stats->index_entry_bytes > 0);
    CHECK(rs.r->stats->index_entry_bytes <= 32);
    tc_resp_free(&rs);

    /* Health */
    kvcache__request__init(&q);
    q.op_case = KVCACHE__REQUEST__OP_HEALTH;
    q.health = &hq;
    roundtrip(c, &q, &rs);
    CHECK(rs.r->code == 0);
    CHECK(rs.r->health->state == KVCACHE__HEALTH_RESPONSE__STATE__OK);
    tc_resp_free(&rs);

    /* DropNamespace, then the namespace is unknown */
    kvcache__request__init(&q);
    dq.ns = ns;
    q.op_case = KVCACHE__REQUEST__OP_DROP_NAMESPACE;
    q.drop_namespace = &dq;
    roundtrip(c, &q, &rs);
    CHECK(rs.r->code == 0);
    tc_resp_free(&rs);
    kvcache__request__init(&q);
    key_request(&q, KVCACHE__REQUEST__OP_MATCH, ns, keys, 8, &m);
    roundtrip(c, &q, &rs);
    CHECK(rs.r->code == KVCACHE__CODE__UNKNOWN_NAMESPACE);
    tc_resp_free(&rs);
    free(keys);
}

/* GET path from the metrics port; returns the body (caller frees). */
static char *http_get(int port, const char *path)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    char req[128], *buf = malloc(1 << 20);
    size_t len = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    CHECK(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    while ((n = read(fd, buf + len, (1 << 20) - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
    return buf;
}

int main(int argc, char **argv)
{
    struct td d;
    struct tc u, t;
    char *body;

    if (argc > 1)
        td_set_binary(argv[1]);
    td_mkdir(&d);
    td_start(&d, NULL);
    tc_connect_unix(&u, d.sock);
    test_transport(&u, "model-unix", 1000);
    tc_connect_tcp(&t, d.port);
    test_transport(&t, "model-tcp", 2000);
    body = http_get(d.mport, "/metrics");
    CHECK(strstr(body, "200 OK") != NULL);
    CHECK(strstr(body, "kvcached_puts_total 16") != NULL);
    CHECK(strstr(body, "kvcached_request_duration_seconds_bucket{op=\"put\"") != NULL);
    free(body);
    body = http_get(d.mport, "/health");
    CHECK(strstr(body, "\r\n\r\nok") != NULL);
    free(body);
    tc_close(&u);
    tc_close(&t);
    CHECK(td_stop(&d) == 0);
    td_cleanup(&d);
    printf("test_ops: ok\n");
    return 0;
}
