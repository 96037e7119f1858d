/*
 * kc_main.c - kvcached: options, the store, the server, a clean stop.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_dispatch.h"
#include "daemon/kc_get.h"
#include "daemon/kc_log.h"
#include "daemon/kc_opts.h"
#include "daemon/kc_server.h"
#include "daemon/kc_lease.h"
#include "daemon/kc_shm.h"
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
    printf("struct shm_conn            %4zu bytes + %zu of lease slots (per "
           "attached connection; its staging area is shared memory)\n",
           sizeof(struct shm_conn), LEASE_SLOTS * sizeof(struct get_ctx *));
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

/*
 * Take an exclusive lock on the store so that a second daemon on the same
 * file or device refuses to start instead of corrupting it (the engine
 * does not lock). Returns the fd to keep open, or -1 (logged).
 */
static int lock_store(const char *path)
{
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0) {
        log_error("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        log_error("store %s is in use by another process (%s)", path,
                  strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * One instance: lock and open the store, serve until SIGTERM/SIGINT (or a
 * signal sent to this thread), flush and close. Returns the exit status.
 */
static int instance_run(const struct options *o)
{
    struct store_config cfg;
    struct store_recovery rec;
    struct store *st = NULL;
    struct server srv;
    struct shm_region shm;
    uint64_t nmem = o->memory_mib / (o->slab_size >> 20);
    char err[256] = "";
    int rc, lockfd;

    if (make_parent(o->device) < 0 ||
        (o->socket[0] && make_parent(o->socket) < 0))
        return 1;
    lockfd = lock_store(o->device);
    if (lockfd < 0)
        return 1;
    /* the region holds the memory slabs (at least 2) and the read arena */
    if (shm_region_init(&shm, o->shm, (nmem < 2 ? 2 : nmem) * o->slab_size +
                        STORE_READ_ARENA) < 0) {
        close(lockfd);
        return 1;
    }
    store_config_default(&cfg);
    if (shm.fd >= 0) {
        cfg.mem_alloc = shm_region_alloc;
        cfg.mem_arg = &shm;
    }
    cfg.path = o->device;
    cfg.device_size = o->device_size;
    cfg.slab_size = (uint32_t)o->slab_size;
    cfg.memory = o->memory_mib << 20;
    cfg.min_item_size = (uint32_t)o->min_item;
    cfg.fresh = o->fresh;
    cfg.evict = o->evict;
    cfg.queue_depth = o->queue_depth;
    cfg.log = store_log;
    rc = store_open(&cfg, &st, err, sizeof(err));
    if (rc < 0) {
        log_error("cannot open store %s: %s (%s)", o->device, err,
                  kc_strerror(rc));
        shm_region_deinit(&shm);
        close(lockfd);
        return 1;
    }
    store_recovery_info(st, &rec);
    log_info("kvcached %s (%s): store %s, %llu MiB device, %llu MiB slabs, "
             "%llu MiB memory, evict %s%s", KC_VERSION, KC_ALLOCATOR, o->device,
             (unsigned long long)(o->device_size >> 20),
             (unsigned long long)(o->slab_size >> 20),
             (unsigned long long)o->memory_mib, o->evict, o->fresh ? ", fresh" : "");
    log_info("recovered %llu blocks (%llu MiB) from %llu of %llu slabs in "
             "%.3f s, %llu items skipped", (unsigned long long)rec.items,
             (unsigned long long)(rec.bytes >> 20),
             (unsigned long long)rec.slabs_valid,
             (unsigned long long)rec.slabs_scanned, rec.seconds,
             (unsigned long long)rec.items_skipped);
    if (server_init(&srv, o, st) < 0) {
        server_deinit(&srv);
        store_close(st);
        shm_region_deinit(&shm);
        close(lockfd);
        return 1;
    }
    srv.shm = shm.fd >= 0 ? &shm : NULL;
    rc = server_run(&srv);
    server_deinit(&srv);
    log_info("%s: flushing memory slabs and closing the store", o->device);
    store_close(st);
    shm_region_deinit(&shm);
    close(lockfd);
    return rc < 0 ? 1 : 0;
}

/* A shard: its options (own device, socket, ports) and its thread. */
struct shard {
    struct options o;
    char device[4096];
    char socket[4096];
    pthread_t tid;
    int rc;
    atomic_bool done;
};

/* A shard's thread: one whole instance. */
static void *shard_main(void *arg)
{
    struct shard *sh = arg;

    sh->rc = instance_run(&sh->o);
    atomic_store(&sh->done, true);
    return NULL;
}

/* A port for shard i: "off" (-1) and "any" (0) stay as they are. */
static int shard_port(int port, unsigned i)
{
    return port <= 0 ? port : port + (int)i;
}

/*
 * Sharding by threads: n independent instances (store, io_uring, event
 * loop), shard i on DEVICE.i (device size and memory split n ways),
 * SOCKET.i and PORT+i. Nothing is shared, so it scales with cores; clients
 * spread keys over the shards with their consistent-hash ring (the server
 * list is logged at start). SIGTERM/SIGINT stops every shard; so does one
 * shard ending.
 */
static int shards_run(const struct options *o)
{
    unsigned n = o->threads;
    struct shard *sh = calloc(n, sizeof(*sh));
    sigset_t mask;
    char list[8192] = "";
    int rc = 0;

    if (sh == NULL)
        return 1;
    /* Block the signals before any thread starts: this thread takes them
     * and passes them on to every shard. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    for (unsigned i = 0; i < n; i++) {
        sh[i].o = *o;
        snprintf(sh[i].device, sizeof(sh[i].device), "%s.%u", o->device, i);
        sh[i].o.device = sh[i].device;
        sh[i].o.device_size = o->device_size / n;
        sh[i].o.memory_mib = o->memory_mib / n ? o->memory_mib / n : 1;
        sh[i].o.socket = "";
        if (o->socket[0]) {
            snprintf(sh[i].socket, sizeof(sh[i].socket), "%s.%u", o->socket, i);
            sh[i].o.socket = sh[i].socket;
            size_t len = strlen(list);
            snprintf(list + len, sizeof(list) - len, "%sunix:%s", len ? "," : "",
                     sh[i].socket);
        }
        sh[i].o.port = shard_port(o->port, i);
        sh[i].o.metrics_port = shard_port(o->metrics_port, i);
        sh[i].o.memcache_port = shard_port(o->memcache_port, i);
        sh[i].o.port_file = i == 0 ? o->port_file : NULL;   /* shard 0 reports */
    }
    log_info("%u shards; give clients the list %s", n,
             list[0] ? list : "of TCP ports from the base port up");
    unsigned started = 0;
    for (; started < n; started++) {
        if (pthread_create(&sh[started].tid, NULL, shard_main, &sh[started]) != 0) {
            log_error("cannot start shard %u", started);
            rc = 1;
            break;
        }
    }
    /* Wait for a signal or for a shard to end, then stop them all. */
    struct timespec tick = { .tv_sec = 0, .tv_nsec = 100 * 1000 * 1000 };
    for (bool stop = rc != 0; !stop;) {
        if (sigtimedwait(&mask, NULL, &tick) > 0)
            stop = true;
        for (unsigned i = 0; i < started; i++)
            stop |= atomic_load(&sh[i].done);
    }
    for (unsigned i = 0; i < started; i++)
        if (!atomic_load(&sh[i].done))
            pthread_kill(sh[i].tid, SIGTERM);
    for (unsigned i = 0; i < started; i++) {
        pthread_join(sh[i].tid, NULL);
        rc |= sh[i].rc;
    }
    free(sh);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;
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
    rc = o.threads > 1 ? shards_run(&o) : instance_run(&o);
    log_info("stopped");
    return rc;
}
