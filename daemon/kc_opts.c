/*
 * kc_opts.c - the option table, parsing (getopt_long built from the table)
 * and checks.
 */
#include "kc_opts.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How an option's argument is read. */
enum opt_kind {
    OPT_INT,     /* signed integer within [min, max] into an int */
    OPT_UINT,    /* unsigned within [min, max] into an unsigned */
    OPT_U64,     /* unsigned within [min, max] into a uint64_t */
    OPT_SIZE,    /* like OPT_U64 with a k/m/g/t suffix */
    OPT_STR,     /* a string (pointer into argv) */
    OPT_FLAG,    /* no argument: sets a bool */
    OPT_COUNT,   /* no argument: increments an int (-v -v) */
};

/* One row of the table. */
struct opt_def {
    const char *name;     /* long name */
    int letter;           /* short letter, or 0 */
    enum opt_kind kind;
    int64_t min, max;     /* bounds for numbers */
    size_t off;           /* field offset in struct options */
    const char *arg;      /* argument name in usage */
    const char *help;
};

#define F(f) offsetof(struct options, f)
static const struct opt_def opts_table[] = {
    { "port", 'p', OPT_INT, -1, 65535, F(port), "N",
      "TCP port, e.g. 7070 (default -1 = no TCP; 0 = any free port); "
      "see --token-file" },
    { "listen", 'l', OPT_STR, 0, 0, F(listen), "ADDR",
      "TCP address (default 127.0.0.1)" },
    { "socket", 's', OPT_STR, 0, 0, F(socket), "PATH",
      "Unix socket, mode 0600 (default ./var/kvcached.sock; \"\" = none)" },
    { "memory", 'm', OPT_U64, 1, 1 << 22, F(memory_mib), "MIB",
      "DRAM for memory slabs in MiB (default 256)" },
    { "device", 'D', OPT_STR, 0, 0, F(device), "PATH",
      "store file or block device (default ./var/kvcache.store)" },
    { "device-size", 'S', OPT_SIZE, 0, INT64_MAX, F(device_size), "SIZE",
      "bytes of the device to use, k/m/g suffixes (default 1g)" },
    { "slab-size", 0, OPT_SIZE, 1 << 20, 1 << 30, F(slab_size), "SIZE",
      "slab size, a multiple of 1m (default 32m)" },
    { "min-item-size", 0, OPT_SIZE, 4096, 1 << 30, F(min_item), "SIZE",
      "smallest block expected, sizes the index (default 256k)" },
    { "evict", 0, OPT_STR, 0, 0, F(evict), "POLICY",
      "eviction fifo, lru, reinsert[:k], prefix[:b], +admission all, hint, ghost[:n] "
      "(default prefix+hint)" },
    { "fresh", 0, OPT_FLAG, 0, 0, F(fresh), NULL,
      "start empty, ignoring what is on the device" },
    { "queue-depth", 0, OPT_UINT, 4, 4096, F(queue_depth), "N",
      "io_uring entries (default 64)" },
    { "metrics-port", 0, OPT_INT, -1, 65535, F(metrics_port), "N",
      "Prometheus text on GET /metrics (default -1 = off; 0 = any port)" },
    { "conns", 'c', OPT_UINT, 1, 1 << 20, F(max_conns), "N",
      "maximum client connections (default 1024)" },
    { "max-frame", 0, OPT_SIZE, 1 << 20, INT64_MAX, F(max_frame), "SIZE",
      "maximum data section of one request (default 1g)" },
    { "max-batch", 0, OPT_UINT, 1, 1 << 20, F(max_batch), "N",
      "maximum keys or items per request (default 4096)" },
    { "idle-timeout", 0, OPT_UINT, 1, 1 << 30, F(idle_timeout), "SECONDS",
      "close connections idle this long (default 300)" },
    { "conn-inflight", 0, OPT_SIZE, 16 << 20, INT64_MAX, F(conn_inflight),
      "SIZE", "bytes one connection's requests in flight may hold: read "
      "buffers of its gets, a large request being received, responses "
      "(default 256m)" },
    { "read-inflight", 0, OPT_SIZE, 16 << 20, INT64_MAX, F(read_inflight),
      "SIZE", "the same for all connections together (default 1g)" },
    { "token-file", 0, OPT_STR, 0, 0, F(token_file), "PATH",
      "TCP and memcache clients must first present the token in PATH "
      "(mode 0600; Auth RPC, memcache \"auth <token>\")" },
    { "no-auth", 0, OPT_FLAG, 0, 0, F(no_auth), NULL,
      "allow -p and --memcache-port without --token-file: whoever reaches "
      "them may read, write and drop every namespace (else refused)" },
    { "ns-max-bytes", 0, OPT_SIZE, 0, INT64_MAX, F(ns_max_bytes), "SIZE",
      "live bytes one namespace may hold; a Put block over it gets LIMIT "
      "(default 0 = no limit)" },
    { "admin-token-file", 0, OPT_STR, 0, 0, F(admin_token_file), "PATH",
      "DropNamespace needs the token in PATH (mode 0600), on any listener" },
    { "ns-quota", 0, OPT_UINT, 0, 1 << 20, F(ns_quota), "N",
      "namespaces one credential (Unix socket, token, admin token) may "
      "create (default 0 = no limit)" },
    { "memcache-namespaces", 0, OPT_UINT, 0, 1 << 20,
      F(memcache_namespaces), "N", "namespaces memcache sets of direct keys "
      "(<ns>:<key>) may create (default 16; 0 = none, they must exist)" },
    { "send-timeout", 0, OPT_UINT, 1, 3600, F(send_timeout), "SECONDS",
      "close a connection whose answers wait this long without the peer "
      "taking a byte: its read buffers go back (default 30)" },
    { "put-timeout", 0, OPT_UINT, 1, 3600, F(put_timeout), "SECONDS",
      "a block being received into a memory slab must arrive within this "
      "time, else its connection is closed (default 10)" },
    { "health-latency-ms", 0, OPT_UINT, 1, 1 << 30, F(health_latency_ms), "MS",
      "device read p99 over which Health says degraded (default 50)" },
    { "health-errors", 0, OPT_UINT, 1, 1 << 30, F(health_errors), "N",
      "I/O errors per 10 s from which Health says degraded (default 1)" },
    { "memcache-port", 0, OPT_INT, -1, 65535, F(memcache_port), "N",
      "memcached text protocol on this TCP port (default -1 = off; 0 = any)" },
    { "memcache-listen", 0, OPT_STR, 0, 0, F(memcache_listen), "ADDR",
      "address of the memcache port (default 127.0.0.1)" },
    { "memcache-writable", 0, OPT_STR, 0, 0, F(memcache_writable), "LIST",
      "namespaces (16-hex-digit ids, comma-separated, or \"all\") memcache "
      "may write besides its text namespace and those it created "
      "(default none)" },
    { "memcache-block", 0, OPT_SIZE, 0, 1 << 30, F(memcache_block), "SIZE",
      "block size of a namespace created by a memcache set (default 0 = any)" },
    { "memcache-max-value", 'I', OPT_SIZE, 0, 1 << 30, F(memcache_max_value),
      "SIZE", "largest memcache value, memcached's -I (default 0 = 1 MiB)" },
    { "threads", 't', OPT_UINT, 1, 64, F(threads), "N",
      "shards, one thread and one store each: DEVICE.i, SOCKET.i, PORT+i "
      "(default 1; clients list every shard)" },
    { "shm", 0, OPT_STR, 0, 0, F(shm), "MODE",
      "shared region for local clients: auto, hugetlb, thp, 4k, off "
      "(default auto: hugetlb if enough pages are reserved, else thp if "
      "shmem_enabled allows it, else 4k)" },
    { "shm-staging", 0, OPT_SIZE, 0, 1ll << 40, F(shm_staging), "SIZE",
      "staging area for puts by reference, per attached connection "
      "(default 256m; 0 = none)" },
    { "lease-timeout", 0, OPT_UINT, 1, 3600, F(lease_timeout), "SECONDS",
      "a reference not released within this is ended (default 30)" },
    { "lease-max", 0, OPT_SIZE, 1 << 16, INT64_MAX, F(lease_max), "SIZE",
      "block bytes one connection may hold by reference (default 4g)" },
    { "port-file", 0, OPT_STR, 0, 0, F(port_file), "PATH",
      "when ready, write \"tcp=N metrics=N\" to PATH (for tests)" },
    { "verbose", 'v', OPT_COUNT, 0, 0, F(verbose), NULL,
      "more log lines (repeat for more)" },
    { "sizes", 'z', OPT_FLAG, 0, 0, F(sizes), NULL,
      "print struct sizes and DRAM cost per block, then exit" },
    { "version", 'V', OPT_FLAG, 0, 0, F(version), NULL,
      "print the version and exit" },
    { "help", 'h', OPT_FLAG, 0, 0, F(help), NULL, "this text" },
};
#undef F
#define NOPTS (sizeof(opts_table) / sizeof(opts_table[0]))

void opts_default(struct options *o)
{
    memset(o, 0, sizeof(*o));
    o->port = -1;                 /* TCP only when asked: docs/security.md */
    o->listen = "127.0.0.1";
    o->socket = KC_DEFAULT_SOCKET;
    o->memory_mib = 256;
    o->device = KC_DEFAULT_DEVICE;
    o->device_size = 1ull << 30;
    o->slab_size = 32u << 20;
    o->min_item = 256u << 10;
    o->evict = "prefix+hint";
    o->queue_depth = 64;
    o->metrics_port = -1;
    o->max_conns = 1024;
    o->max_frame = 1ull << 30;
    o->max_batch = 4096;
    o->idle_timeout = 300;
    o->put_timeout = 10;
    o->send_timeout = 30;
    o->memcache_namespaces = 16;
    o->conn_inflight = 256ull << 20;
    o->read_inflight = 1ull << 30;
    o->health_latency_ms = 50;
    o->health_errors = 1;
    o->memcache_port = -1;
    o->memcache_listen = "127.0.0.1";
    o->shm = "auto";
    o->shm_staging = 256ull << 20;
    o->lease_timeout = 30;
    o->lease_max = 4ull << 30;
    o->threads = 1;
}

int opts_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    errno = 0;
    if (*s == '-' || *s == '\0')
        return -1;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end != '\0' || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* Store one option's argument into its field. */
static int opts_set(struct options *o, const struct opt_def *d, const char *arg)
{
    char *field = (char *)o + d->off, *end;
    long long v = 0;
    uint64_t u = 0;

    switch (d->kind) {
    case OPT_FLAG:
        *(bool *)field = true;
        return 0;
    case OPT_COUNT:
        (*(int *)field)++;
        return 0;
    case OPT_STR:
        *(const char **)field = arg;
        return 0;
    case OPT_SIZE:
        if (opts_parse_size(arg, &u) < 0)
            goto bad;
        if (u < (uint64_t)d->min || u > (uint64_t)d->max)
            goto range;
        *(uint64_t *)field = u;
        return 0;
    case OPT_INT: case OPT_UINT: case OPT_U64:
        errno = 0;
        v = strtoll(arg, &end, 10);
        if (errno || end == arg || *end != '\0')
            goto bad;
        if (v < d->min || v > d->max)
            goto range;
        if (d->kind == OPT_INT)
            *(int *)field = (int)v;
        else if (d->kind == OPT_UINT)
            *(unsigned *)field = (unsigned)v;
        else
            *(uint64_t *)field = (uint64_t)v;
        return 0;
    }
bad:
    fprintf(stderr, "kvcached: --%s: cannot parse \"%s\"\n", d->name, arg);
    return -1;
range:
    fprintf(stderr, "kvcached: --%s: \"%s\" is out of range [%lld, %lld]\n",
            d->name, arg, (long long)d->min, (long long)d->max);
    return -1;
}

int opts_parse(struct options *o, int argc, char **argv)
{
    struct option longopts[NOPTS + 1];
    char shortopts[2 * NOPTS + 2], *sp = shortopts;
    int c, idx;

    *sp++ = ':';
    for (size_t i = 0; i < NOPTS; i++) {
        bool has_arg = opts_table[i].kind != OPT_FLAG &&
                       opts_table[i].kind != OPT_COUNT;

        longopts[i].name = opts_table[i].name;
        longopts[i].has_arg = has_arg ? required_argument : no_argument;
        longopts[i].flag = NULL;
        longopts[i].val = 256 + (int)i;
        if (opts_table[i].letter) {
            *sp++ = (char)opts_table[i].letter;
            if (has_arg)
                *sp++ = ':';
        }
    }
    *sp = '\0';
    memset(&longopts[NOPTS], 0, sizeof(longopts[NOPTS]));
    optind = 1;
    while ((c = getopt_long(argc, argv, shortopts, longopts, &idx)) != -1) {
        const struct opt_def *d = NULL;

        if (c == '?' || c == ':') {
            fprintf(stderr, "kvcached: %s option \"%s\"; see --help\n",
                    c == '?' ? "unknown" : "missing argument of",
                    argv[optind - 1]);
            return -1;
        }
        if (c >= 256) {
            d = &opts_table[c - 256];
        } else {
            for (size_t i = 0; i < NOPTS; i++)
                if (opts_table[i].letter == c)
                    d = &opts_table[i];
        }
        if (d == NULL || opts_set(o, d, optarg) < 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "kvcached: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    return 0;
}

int opts_check(const struct options *o)
{
    if (o->slab_size % (1u << 20) != 0) {
        fprintf(stderr, "kvcached: --slab-size must be a multiple of 1m\n");
        return -1;
    }
    if (o->memory_mib * (1ull << 20) < o->slab_size) {
        fprintf(stderr, "kvcached: --memory must hold at least one slab\n");
        return -1;
    }
    if (o->device_size != 0 && o->device_size < 2 * o->slab_size) {
        fprintf(stderr, "kvcached: --device-size must hold at least two slabs\n");
        return -1;
    }
    /* --threads N gives shard i the file DEVICE.i: a block device cannot be
     * named that way (DEVICE.i would be a regular file beside it, on
     * devtmpfs, in RAM), and a size of 0 ("the device's own size") cannot
     * be split between shards. */
    struct stat st;
    if (o->threads > 1 && stat(o->device, &st) == 0 && !S_ISREG(st.st_mode)) {
        fprintf(stderr, "kvcached: --threads %u needs --device to name a file path "
                "(shard i uses PATH.i); %s is not a regular file: run one daemon per "
                "partition instead\n", o->threads, o->device);
        return -1;
    }
    if (o->threads > 1 && o->device_size == 0) {
        fprintf(stderr, "kvcached: --threads %u needs an explicit --device-size to "
                "split between its shards\n", o->threads);
        return -1;
    }
    if ((o->port >= 0 || o->memcache_port >= 0) && o->token_file == NULL &&
        !o->no_auth) {
        fprintf(stderr, "kvcached: %s is on without --token-file: whoever "
                "reaches it could read, write and drop every namespace; give "
                "--token-file PATH (docs/security.md), or --no-auth to run it "
                "open\n", o->port >= 0 ? "TCP (-p)" : "the memcache port");
        return -1;
    }
    if (o->port < 0 && o->socket[0] == '\0') {
        fprintf(stderr, "kvcached: no TCP port and no Unix socket: nothing to serve\n");
        return -1;
    }
    return 0;
}

void opts_usage(const char *prog)
{
    printf("Usage: %s [options]\n\n"
           "kvcached: an SSD-backed KV-cache sidecar for LLM prefixes.\n"
           "With no options: store ./var/kvcache.store (1 GiB), socket\n"
           "./var/kvcached.sock (mode 0600), no TCP.\n\nOptions:\n", prog);
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt_def *d = &opts_table[i];
        char left[64];

        snprintf(left, sizeof(left), "%s%c%s--%s%s%s",
                 d->letter ? "-" : " ", d->letter ? d->letter : ' ',
                 d->letter ? ", " : "  ", d->name, d->arg ? " " : "",
                 d->arg ? d->arg : "");
        printf("  %-30s %s\n", left, d->help);
    }
}
