/*
 * kvc_cli.h - the kvcache inspection CLI: what the subcommands share.
 *
 * Every subcommand is `int cmd_NAME(struct kvc_ctx *x, int argc, char **argv)`
 * with argv[0] the subcommand name; common options (--server, --json,
 * --timeout, --help) are parsed by kvc_parse() together with the
 * subcommand's own, from one declarative table per subcommand.
 */
#ifndef KVC_CLI_H
#define KVC_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kvcache.h"

/* Exit codes, the same for every subcommand (docs/tools.md). */
enum kvc_exit {
    KVC_EXIT_OK = 0,         /* done; everything asked for was found */
    KVC_EXIT_ERROR = 1,      /* the server answered with an error, I/O error */
    KVC_EXIT_USAGE = 2,      /* bad command line */
    KVC_EXIT_MISS = 3,       /* match/get: not every key was found */
    KVC_EXIT_DAMAGE = 4,     /* scrub/inspect: damaged items or headers found */
    KVC_EXIT_CONNECT = 5,    /* no server to talk to */
};

/* Options common to every subcommand. */
struct kvc_ctx {
    const char *server;      /* libkvcache URI (one server) */
    bool json;               /* machine output */
    int timeout_ms;          /* per call */
    kvcache_t *kc;           /* opened on first use */
};

/* One option of a subcommand's table. */
struct kvc_opt {
    const char *name;        /* long name */
    int letter;              /* short letter or 0 */
    const char *arg;         /* argument name, NULL for a flag */
    const char *help;
    const char **str;        /* where a string goes */
    long *num;               /* or where a number goes (strtol base 0) */
    bool *flag;              /* or set this flag */
};

/* A subcommand: name, usage line, what it does, its options. */
struct kvc_cmd {
    const char *name;
    const char *args;        /* positional arguments, for the usage line */
    const char *summary;
    const char *details;     /* more text for --help, or NULL */
    const struct kvc_opt *opts;   /* ends with a zero entry; may be NULL */
};

/*
 * Parse argv (argv[0] = subcommand) with the command's table plus the
 * common options. Positional arguments are left in argv[*first..argc).
 * Returns -1 on success; else an exit code to return (help printed: 0,
 * usage error: 2).
 */
int kvc_parse(struct kvc_ctx *x, const struct kvc_cmd *cmd, int argc, char **argv, int *first);

/* Print the help of a subcommand. */
void kvc_help(const struct kvc_cmd *cmd, FILE *f);

/* The libkvcache handle for x->server (created on first use). */
kvcache_t *kvc_handle(struct kvc_ctx *x);

/* Exit code for a libkvcache error (connection problems: KVC_EXIT_CONNECT). */
int kvc_exit_for(int err);

/* Print an error "kvcache NAME: ..." on stderr. */
void kvc_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Human sizes and counts: "1.5 GiB", "12.3k". Return buf. */
const char *kvc_bytes(char *buf, size_t len, double bytes);
const char *kvc_count(char *buf, size_t len, double n);

/* Subcommands. */
int cmd_stats(struct kvc_ctx *x, int argc, char **argv);
int cmd_top(struct kvc_ctx *x, int argc, char **argv);
int cmd_health(struct kvc_ctx *x, int argc, char **argv);
int cmd_ns(struct kvc_ctx *x, int argc, char **argv);
int cmd_slabs(struct kvc_ctx *x, int argc, char **argv);
int cmd_match(struct kvc_ctx *x, int argc, char **argv);
int cmd_exists(struct kvc_ctx *x, int argc, char **argv);
int cmd_get(struct kvc_ctx *x, int argc, char **argv);
int cmd_put(struct kvc_ctx *x, int argc, char **argv);
int cmd_describe(struct kvc_ctx *x, int argc, char **argv);
int cmd_keys(struct kvc_ctx *x, int argc, char **argv);
int cmd_scrub(struct kvc_ctx *x, int argc, char **argv);
int cmd_inspect(struct kvc_ctx *x, int argc, char **argv);

#endif
