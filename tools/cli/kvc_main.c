/*
 * kvc_main.c - kvcache: the subcommand table, the common options, the
 * option parser every subcommand uses.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "kvc_cli.h"

/* One entry of the subcommand table. */
struct kvc_sub {
    const char *name;
    int (*fn)(struct kvc_ctx *, int, char **);
    const char *summary;
};

static const struct kvc_sub subs[] = {
    { "stats", cmd_stats, "counters of a running daemon: hit ratio, DRAM, SSD, I/O, latency" },
    { "top", cmd_top, "refresh every second with rates, like top" },
    { "health", cmd_health, "the daemon's health: ok, degraded or down" },
    { "ns", cmd_ns, "namespaces: descriptor, blocks and bytes each" },
    { "slabs", cmd_slabs, "one line per slab (fill, live share), and the store's totals" },
    { "match", cmd_match, "how many leading keys of a chain are cached" },
    { "exists", cmd_exists, "which keys are cached, in any order (no data, no I/O)" },
    { "get", cmd_get, "fetch blocks (and where they live); dump one to a file" },
    { "put", cmd_put, "store blocks from a file or a pattern" },
    { "describe", cmd_describe, "where keys live: slab, slot, length, DRAM copy, hits" },
    { "keys", cmd_keys, "compute the chain keys of a token sequence, like the client" },
    { "scrub", cmd_scrub, "read every item of a store file, verify every checksum" },
    { "inspect", cmd_inspect, "the same views from a store file, no daemon (--offline)" },
};
#define NSUBS (sizeof(subs) / sizeof(subs[0]))

/* Options every subcommand takes. */
static const char *opt_server;
static long opt_timeout = 2000;
static bool opt_json, opt_help;
static const struct kvc_opt common[] = {
    { "server", 's', "URI", "daemon to ask: unix:PATH or tcp:HOST:PORT "
                            "(default $KVCACHE_SERVER, else unix:./var/kvcached.sock)",
      &opt_server, NULL, NULL },
    { "json", 'j', NULL, "machine-readable output (one JSON document)", NULL, NULL, &opt_json },
    { "timeout", 0, "MS", "per call (default 2000)", NULL, &opt_timeout, NULL },
    { "help", 'h', NULL, "this text", NULL, NULL, &opt_help },
    { 0 },
};

void kvc_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "kvcache %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

const char *kvc_bytes(char *buf, size_t len, double b)
{
    static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    int i = 0;
    while (b >= 1024 && i < 5) {
        b /= 1024;
        i++;
    }
    snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
    return buf;
}

const char *kvc_count(char *buf, size_t len, double n)
{
    if (n < 10000)
        snprintf(buf, len, "%.0f", n);
    else if (n < 1e6)
        snprintf(buf, len, "%.1fk", n / 1e3);
    else if (n < 1e9)
        snprintf(buf, len, "%.1fM", n / 1e6);
    else
        snprintf(buf, len, "%.1fG", n / 1e9);
    return buf;
}

static void print_opts(const struct kvc_opt *o, FILE *f)
{
    for (; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof(left), "%s%c%s--%s%s%s", o->letter ? "-" : " ",
                 o->letter ? o->letter : ' ', o->letter ? ", " : "  ", o->name,
                 o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(f, "  %-26s %s\n", left, o->help);
    }
}

void kvc_help(const struct kvc_cmd *cmd, FILE *f)
{
    fprintf(f, "Usage: kvcache %s [options]%s%s\n\n%s\n", cmd->name, cmd->args ? " " : "",
            cmd->args ? cmd->args : "", cmd->summary);
    if (cmd->details)
        fprintf(f, "\n%s\n", cmd->details);
    fprintf(f, "\nOptions:\n");
    print_opts(cmd->opts, f);
    print_opts(common, f);
    fprintf(f, "\nExit: 0 ok, 1 error, 2 usage, 3 not all found, 4 damage found, "
               "5 no server.\n");
}

int kvc_parse(struct kvc_ctx *x, const struct kvc_cmd *cmd, int argc, char **argv, int *first)
{
    const struct kvc_opt *tabs[2] = { cmd->opts, common };
    struct option lo[64];
    char so[128], *sp = so;
    const struct kvc_opt *by[64];
    int n = 0, ch, li;

    for (int t = 0; t < 2; t++)
        for (const struct kvc_opt *o = tabs[t]; o && o->name && n < 63; o++) {
            by[n] = o;
            lo[n] = (struct option){ o->name, o->arg ? required_argument : no_argument, NULL,
                                     o->letter ? o->letter : 1000 + n };
            if (o->letter) {
                *sp++ = (char)o->letter;
                if (o->arg)
                    *sp++ = ':';
            }
            n++;
        }
    *sp = '\0';
    memset(&lo[n], 0, sizeof(lo[n]));
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, so, lo, &li)) != -1) {
        const struct kvc_opt *o = NULL;
        if (ch == '?' || ch == ':') {
            kvc_err(cmd->name, "unknown option or missing argument: %s (see --help)",
                    argv[optind - 1]);
            return KVC_EXIT_USAGE;
        }
        for (int i = 0; i < n; i++)
            if (ch == (by[i]->letter ? by[i]->letter : 1000 + i))
                o = by[i];
        if (o->flag)
            *o->flag = true;
        else if (o->str)
            *o->str = optarg;
        else if (o->num) {
            char *end;
            errno = 0;
            *o->num = strtol(optarg, &end, 0);
            if (errno || *end || end == optarg) {
                kvc_err(cmd->name, "--%s: not a number: \"%s\"", o->name, optarg);
                return KVC_EXIT_USAGE;
            }
        }
    }
    if (opt_help) {
        kvc_help(cmd, stdout);
        return KVC_EXIT_OK;
    }
    if (opt_timeout <= 0) {
        kvc_err(cmd->name, "--timeout must be positive");
        return KVC_EXIT_USAGE;
    }
    x->json = opt_json;
    x->timeout_ms = (int)opt_timeout;
    if (opt_server)
        x->server = opt_server;
    *first = optind;
    return -1;
}

kvcache_t *kvc_handle(struct kvc_ctx *x)
{
    int err;
    if (x->kc)
        return x->kc;
    kvcache_options_t o = { .timeout_ms = x->timeout_ms, .connect_timeout_ms = x->timeout_ms };
    x->kc = kvcache_create(x->server, &o, &err);
    if (x->kc == NULL)
        kvc_err("", "%s: %s", x->server, kvcache_strerror(err));
    return x->kc;
}

int kvc_exit_for(int err)
{
    switch (err) {
    case 0:
        return KVC_EXIT_OK;
    case KVCACHE_ETIMEDOUT: case KVCACHE_EDOWN: case KVCACHE_ECLOSED: case KVCACHE_EURI:
    case -ECONNREFUSED: case -ENOENT: case -EHOSTUNREACH: case -ENETUNREACH:
        return KVC_EXIT_CONNECT;
    default:
        return KVC_EXIT_ERROR;
    }
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: kvcache COMMAND [options] [args]\n\n"
               "Look inside a running kvcached, or a store file with no daemon.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < NSUBS; i++)
        fprintf(f, "  %-10s %s\n", subs[i].name, subs[i].summary);
    fprintf(f, "\n`kvcache COMMAND --help` for the options of one. Every command takes\n"
               "--json, --server URI and --timeout MS.\n"
               "Exit: 0 ok, 1 error, 2 usage, 3 not all found, 4 damage found, 5 no server.\n");
}

int main(int argc, char **argv)
{
    struct kvc_ctx x = { .timeout_ms = 2000 };
    const char *env = getenv("KVCACHE_SERVER");
    int rc;

    x.server = env && *env ? env : "unix:./var/kvcached.sock";
    /* common options may come before the command too: kvcache -s URI stats;
     * they are moved after it, where the command's parser takes them */
    int lead = 1;
    while (lead < argc && argv[lead][0] == '-' && strcmp(argv[lead], "-h") &&
           strcmp(argv[lead], "--help")) {
        bool arg = !strcmp(argv[lead], "-s") || !strcmp(argv[lead], "--server") ||
                   !strcmp(argv[lead], "--timeout");
        lead += arg ? 2 : 1;
    }
    if (lead > 1 && lead < argc) {
        char *cmd = argv[lead];
        memmove(argv + 2, argv + 1, (size_t)(lead - 1) * sizeof(*argv));
        argv[1] = cmd;
    }
    if (argc < 2) {
        usage(stderr);
        return KVC_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return KVC_EXIT_OK;
    }
    for (size_t i = 0; i < NSUBS; i++)
        if (!strcmp(argv[1], subs[i].name)) {
            rc = subs[i].fn(&x, argc - 1, argv + 1);
            kvcache_destroy(x.kc);
            return rc;
        }
    fprintf(stderr, "kvcache: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return KVC_EXIT_USAGE;
}
