/*
 * test_hostile.c - one case per defect of hostile or careless clients,
 * each run as its own meson test: `test_hostile KVCACHED CASE`. Every case
 * starts the real daemon on a temporary folder and stops it; the cases are
 * in hostile_*.c (hostile.h).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "hostile.h"

struct td d;

/* The cases, by name. */
static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    { "list_namespaces_over_8", list_namespaces_over_8 },
    { "socket_path_not_a_socket", socket_path_not_a_socket },
    { "nul_in_model", nul_in_model },
    { "put_overflow_self_evicted", put_overflow_self_evicted },
    { "metrics_idle_timeout", metrics_idle_timeout },
    { "slow_put_stalls_others", slow_put_stalls_others },
    { "dup_keys_read_once", dup_keys_read_once },
    { "read_inflight_bounded", read_inflight_bounded },
    { "partial_frames_bounded", partial_frames_bounded },
    { "hostile_live", hostile_live },
    { "tcp_off_by_default", tcp_off_by_default },
    { "token_file_mode_checked", token_file_mode_checked },
    { "auth_before_requests", auth_before_requests },
    { "admin_only_drop", admin_only_drop },
    { "ns_quota", ns_quota },
    { "memcache_auth", memcache_auth },
    { "memcache_namespace_flood", memcache_namespace_flood },
};
int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s KVCACHED CASE\n", argv[0]);
        return 2;
    }
    td_set_binary(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (strcmp(argv[2], cases[i].name) != 0)
            continue;
        td_mkdir(&d);
        cases[i].fn();
        td_cleanup(&d);
        printf("%s: ok\n", argv[2]);
        return 0;
    }
    fprintf(stderr, "no case %s\n", argv[2]);
    return 2;
}
