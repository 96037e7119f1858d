/*
 * test_restart.c - SIGTERM flushes and exits 0; the next start recovers
 * every block (byte-identical) and the namespace descriptor; --fresh
 * starts empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_tclient.h"

#define BLK 65536u
#define NBLK 100

/* Count the namespaces and check ours is listed with its model. */
static void check_listed(struct tc *c, uint64_t ns, bool want)
{
    Kvcache__Request q = KVCACHE__REQUEST__INIT;
    Kvcache__ListNamespacesRequest lq = KVCACHE__LIST_NAMESPACES_REQUEST__INIT;
    struct tc_resp rs;
    bool seen = false;

    q.op_case = KVCACHE__REQUEST__OP_LIST_NAMESPACES;
    q.list_namespaces = &lq;
    tc_send(c, &q, NULL, 0);
    CHECK(tc_recv(c, &rs) == 0 && rs.r->code == 0);
    for (size_t i = 0; i < rs.r->list_namespaces->n_namespaces; i++) {
        Kvcache__NamespaceInfo *ni = rs.r->list_namespaces->namespaces[i];

        if (ni->ns == ns) {
            seen = true;
            CHECK(ni->desc && strcmp(ni->desc->model, "restart-model") == 0);
        }
    }
    CHECK(seen == want);
    tc_resp_free(&rs);
}

int main(int argc, char **argv)
{
    static const char *const fresh[] = { "--fresh", NULL };
    struct td d;
    struct tc c;
    uint64_t ns;

    if (argc > 1)
        td_set_binary(argv[1]);
    td_mkdir(&d);
    td_start(&d, NULL);
    tc_connect_tcp(&c, d.port);
    ns = tc_open_ns(&c, "restart-model", BLK);
    for (int i = 0; i < NBLK / 10; i++)
        tc_put_blocks(&c, ns, 5000 + (uint64_t)i * 10, 10, BLK);
    CHECK(tc_get_prefix_check(&c, ns, 5000, NBLK, BLK) == NBLK);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);

    /* warm start: everything back, the namespace known without reopening */
    td_start(&d, NULL);
    tc_connect_unix(&c, d.sock);
    check_listed(&c, ns, true);
    CHECK(tc_get_prefix_check(&c, ns, 5000, NBLK, BLK) == NBLK);
    tc_put_blocks(&c, ns, 9000, 3, BLK);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);

    /* twice in a row */
    td_start(&d, NULL);
    tc_connect_unix(&c, d.sock);
    CHECK(tc_get_prefix_check(&c, ns, 5000, NBLK, BLK) == NBLK);
    CHECK(tc_get_prefix_check(&c, ns, 9000, 3, BLK) == 3);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);

    /* --fresh: empty */
    td_start(&d, fresh);
    tc_connect_unix(&c, d.sock);
    check_listed(&c, ns, false);
    tc_close(&c);
    CHECK(td_stop(&d) == 0);
    td_cleanup(&d);
    printf("test_restart: ok\n");
    return 0;
}
