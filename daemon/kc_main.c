/*
 * kc_main.c - kvcached: options, the store, the server, a clean stop.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_dispatch.h"
#include "daemon/kc_log.h"
#include "daemon/kc_opts.h"
#include "daemon/kc_server.h"
#include "kc_frame.h"
#include "slab/kc_store.h"

#ifndef KC_VERSION
#define KC_VERSION "unknown"
#endif
#ifdef KC_HAVE_JEMALLOC
#define KC_ALLOCATOR "jemalloc"
#else
#define KC_ALLOCATOR "libc malloc"
#endif

/* -z/--sizes: what the daemon's own structures cost. */
static void print_sizes(void)
{
    printf("frame header               %4d bytes\n", KC_FRAME_HDR_LEN);
    printf("struct conn                %4zu bytes + %u input buffer\n",
           sizeof(struct conn), CONN_IBUF_SIZE);
    printf("struct resp                %4zu bytes + 16 per block sent\n",
           sizeof(struct resp));
    printf("struct get_ctx             %4zu bytes + %zu per key asked\n",
           sizeof(struct get_ctx), sizeof(struct store_get_item));
    printf("struct store_wslot         %4zu bytes (one per Put in progress)\n",
           sizeof(struct store_wslot));
    printf("struct store_ns_info       %4zu bytes\n", sizeof(struct store_ns_info));
    printf("struct server              %4zu bytes\n", sizeof(struct server));
    printf("index DRAM per stored block: see index_entry_bytes in Stats or\n"
           "/metrics (the engine sizes it from the device)\n");
}

/* The store's log sink: its levels 0..2 are ours. */
static void store_log(void *arg, int level, const char *msg)
{
    (void)arg;
    log_write(level, "store: %s", msg);
}

/* Create the parent folder of path if it is missing (one level, 0700). */
static int make_parent(const char *path)
{
    char buf[4096], *dir;

    snprintf(buf, sizeof(buf), "%s", path);
    dir = dirname(buf);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        log_error("cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    struct store_config cfg;
    struct store_recovery rec;
    struct store *st = NULL;
    struct server srv;
    char err[256] = "";
    int rc;

    opts_default(&o);
    if (opts_parse(&o, argc, argv) < 0)
        return 2;
    if (o.help) {
        opts_usage(argv[0]);
        return 0;
    }
    if (o.version) {
        printf("kvcached %s (protocol %d, %s)\n", KC_VERSION, KC_FRAME_VERSION,
               KC_ALLOCATOR);
        return 0;
    }
    if (o.sizes) {
        print_sizes();
        return 0;
    }
    if (opts_check(&o) < 0)
        return 2;
    log_set_level(LOG_INFO + o.verbose);
    if (make_parent(o.device) < 0 ||
        (o.socket[0] && make_parent(o.socket) < 0))
        return 1;
    store_config_default(&cfg);
    cfg.path = o.device;
    cfg.device_size = o.device_size;
    cfg.slab_size = (uint32_t)o.slab_size;
    cfg.memory = o.memory_mib << 20;
    cfg.min_item_size = (uint32_t)o.min_item;
    cfg.fresh = o.fresh;
    cfg.evict = o.evict;
    cfg.queue_depth = o.queue_depth;
    cfg.log = store_log;
    rc = store_open(&cfg, &st, err, sizeof(err));
    if (rc < 0) {
        log_error("cannot open store %s: %s (%s)", o.device, err,
                  kc_strerror(rc));
        return 1;
    }
    store_recovery_info(st, &rec);
    log_info("kvcached %s (%s): store %s, %llu MiB device, %llu MiB slabs, "
             "%llu MiB memory%s", KC_VERSION, KC_ALLOCATOR, o.device,
             (unsigned long long)(o.device_size >> 20),
             (unsigned long long)(o.slab_size >> 20),
             (unsigned long long)o.memory_mib, o.fresh ? ", fresh" : "");
    log_info("recovered %llu blocks (%llu MiB) from %llu of %llu slabs in "
             "%.3f s, %llu items skipped", (unsigned long long)rec.items,
             (unsigned long long)(rec.bytes >> 20),
             (unsigned long long)rec.slabs_valid,
             (unsigned long long)rec.slabs_scanned, rec.seconds,
             (unsigned long long)rec.items_skipped);
    if (server_init(&srv, &o, st) < 0) {
        server_deinit(&srv);
        store_close(st);
        return 1;
    }
    rc = server_run(&srv);
    server_deinit(&srv);
    log_info("flushing memory slabs and closing the store");
    store_close(st);
    log_info("stopped");
    return rc < 0 ? 1 : 0;
}
