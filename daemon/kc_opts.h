/*
 * kc_opts.h - the daemon's options: a declarative table, then parse, check.
 *
 * Every option is one row of opts_table[] in kc_opts.c (long name, short
 * letter, kind, bounds, field); usage text is printed from the same table.
 */
#ifndef KC_OPTS_H
#define KC_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#define KC_DEFAULT_DIR "./var"
#define KC_DEFAULT_SOCKET "./var/kvcached.sock"
#define KC_DEFAULT_DEVICE "./var/kvcache.store"

/* Parsed options of one daemon. */
struct options {
    int port;                 /* TCP port; 0 = any free port, -1 = no TCP */
    const char *listen;       /* TCP address to bind */
    const char *socket;       /* Unix socket path; "" = no Unix socket */
    uint64_t memory_mib;      /* DRAM budget for memory slabs */
    const char *device;       /* store file or block device */
    uint64_t device_size;     /* bytes; 0 = existing size */
    uint64_t slab_size;       /* bytes per slab */
    uint64_t min_item;        /* smallest block expected (sizes the index) */
    const char *evict;        /* eviction policy name */
    bool fresh;               /* start empty */
    unsigned queue_depth;     /* io_uring entries */
    int metrics_port;         /* Prometheus HTTP; -1 = off, 0 = any port */
    unsigned max_conns;       /* simultaneous client connections */
    uint64_t max_frame;       /* data section of one request, bytes */
    unsigned max_batch;       /* keys or items per request */
    unsigned idle_timeout;    /* seconds without activity before close */
    uint64_t conn_inflight;   /* bytes of requests in flight, one connection
                                 (kc_budget.h) */
    uint64_t read_inflight;   /* the same, every connection together */
    const char *token_file;   /* clients' token (kc_auth.h), or NULL */
    const char *admin_token_file; /* the admin token, or NULL */
    bool no_auth;             /* TCP and memcache may run without
                                 --token-file (else start is refused) */
    uint64_t ns_max_bytes;    /* live bytes one namespace may hold; 0 = any */
    const char *memcache_writable; /* namespaces (hex ids, comma-separated,
                                 or "all") memcache may write besides its
                                 own, or NULL */
    unsigned ns_quota;        /* namespaces one credential creates; 0 = any */
    unsigned memcache_namespaces; /* namespaces of the direct key form that
                                 memcache sets may create (this run) */
    unsigned send_timeout;    /* seconds a peer may accept none of its
                                 queued answers before it is closed */
    unsigned put_timeout;     /* seconds a block may take to arrive once
                                 its memory-slab slot is reserved */
    unsigned health_latency_ms; /* device read p99 above which: degraded */
    unsigned health_errors;   /* I/O errors per window from which: degraded */
    int memcache_port;        /* memcache text protocol; -1 = off */
    const char *memcache_listen; /* its address */
    uint64_t memcache_block;  /* block size of namespaces a set creates */
    uint64_t memcache_max_value; /* largest value (-I); 0 = 1 MiB */
    const char *port_file;    /* write "tcp=N metrics=N" here when ready */
    unsigned threads;         /* shards, one thread each (1 = no sharding) */
    const char *shm;          /* shared region: auto, hugetlb, thp, 4k, off */
    uint64_t shm_staging;     /* staging area per attached connection */
    unsigned lease_timeout;   /* seconds a lease lasts unreleased */
    uint64_t lease_max;       /* block bytes one connection may hold leased */
    int verbose;              /* -v count */
    bool help;
    bool version;
    bool sizes;
};

/* Fill defaults. */
void opts_default(struct options *o);

/*
 * Parse argv into o (after opts_default). Returns 0, or -1 after printing
 * why to stderr.
 */
int opts_parse(struct options *o, int argc, char **argv);

/* Cross-field checks (slab size vs item size, ...). 0 or -1 with a message. */
int opts_check(const struct options *o);

/* Print usage, from the option table, to stdout. */
void opts_usage(const char *prog);

/* Parse a size with an optional k/m/g/t suffix (powers of 1024). */
int opts_parse_size(const char *s, uint64_t *out);

#endif
