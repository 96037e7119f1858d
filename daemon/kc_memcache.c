/*
 * kc_memcache.c - memcached's text protocol: the reader at each command
 * boundary, the command table, and the commands that need no value:
 * delete, flush_all, version, verbosity, mn, quit. Writes are in
 * kc_mcstore.c, reads in kc_mcget.c, stats in kc_mcstats.c. Replies are
 * memcached 1.6's, byte for byte; docs/pool.md lists what differs.
 */
#include "daemon/kc_memcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_log.h"
#include "daemon/kc_mcconn.h"
#include "daemon/kc_mcget.h"
#include "daemon/kc_daemon.h"

/* Longest get line (many keys); other commands: memcached's 2048. */
#define MC_LINE_MAX (1u << 20)
#define MC_SHORT_LINE_MAX 2048
/* What `version` answers: the memcached protocol level it speaks first
 * (libmemcached parses major.minor.micro and refuses a major of 0). */
#define MC_VERSION "1.6.0 kvcached-" KC_VERSION
/* memcached's default item size limit (-I). */
#define MC_ITEM_MAX_DEFAULT (1u << 20)

static const char ERR_FORMAT[] = "CLIENT_ERROR bad command line format\r\n";

int mc_attach(struct conn *c)
{
    c->mc = calloc(1, sizeof(*c->mc));
    return c->mc ? 0 : -1;
}

void mc_reply(struct conn *c, const char *s)
{
    if (!c->mc->noreply)
        conn_send_text(c, s, strlen(s));
}

int mc_done(struct conn *c)
{
    return c->closed ? STEP_CLOSED : STEP_PROGRESS;
}

int mc_error(struct conn *c, const char *s)
{
    c->srv->stats.mc_errors++;
    mc_reply(c, s);
    return mc_done(c);
}

int mc_swallow(struct conn *c, uint64_t len)
{
    c->mc->sink = MCS_SWALLOW;
    conn_skip_data(c, len + 2);
    return mc_done(c);
}

int64_t mc_now(void)
{
    return (int64_t)time(NULL);
}

uint64_t mc_now_us(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

uint64_t mc_max_value(const struct conn *c)
{
    const struct options *o = c->srv->opts;

    return o->memcache_max_value ? o->memcache_max_value : MC_ITEM_MAX_DEFAULT;
}

/* Collect the keys of text items, to delete them after the walk. */
struct mc_flush {
    struct kc_key *keys;
    size_t n, cap;
    bool oom;
};

/* store_foreach_item callback: remember one text key. */
static int mc_flush_collect(const struct store_item_info *info, void *arg)
{
    struct mc_flush *f = arg;

    if (info->ns != MC_TEXT_NS)
        return 0;
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 1024;
        struct kc_key *k = realloc(f->keys, cap * sizeof(*k));

        if (k == NULL) {
            f->oom = true;
            return 1;
        }
        f->keys = k;
        f->cap = cap;
    }
    f->keys[f->n++] = info->key;
    return 0;
}

/* flush_all now: delete every text key's item (deletes are final). */
static int mc_flush_now(struct server *s)
{
    struct mc_flush f = { 0 };

    s->mcs.flush_at = 0;
    store_foreach_item(s->st, mc_flush_collect, &f);
    for (size_t i = 0; i < f.n; i++)
        store_delete(s->st, MC_TEXT_NS, &f.keys[i]);
    free(f.keys);
    log_info("memcache flush_all: %zu items deleted", f.n);
    return f.oom ? -1 : 0;
}

void mc_flush_due(struct conn *c)
{
    struct server *s = c->srv;

    if (s->mcs.flush_at != 0 && mc_now() >= s->mcs.flush_at)
        mc_flush_now(s);
}

void mc_abort(struct conn *c)
{
    struct mc_conn *m = c->mc;

    if (m->sink == MCS_SLOT)
        store_put_abort(c->srv->st, &m->ws);
    mc_get_discard(c);
    free(m->temp);
    m->temp = NULL;
    m->sink = MCS_NONE;
    m->trailer = false;
}

/* The data sink is full (a value, or bytes being swallowed). */
static int mc_data_done(struct conn *c)
{
    struct mc_conn *m = c->mc;

    c->state = CS_HDR;
    if (m->sink == MCS_SWALLOW)
        m->sink = MCS_NONE;
    else if (m->sink != MCS_NONE)
        m->trailer = true;
    return STEP_PROGRESS;
}

/* delete <key> [0] [noreply] */
static int mc_cmd_delete(struct conn *c, const struct mc_tok *t, size_t nt)
{
    struct server *s = c->srv;
    size_t rest;
    struct kc_key k;
    uint64_t ns;

    c->mc->noreply = nt > 2 && mc_tok_is(&t[nt - 1], "noreply");
    rest = nt - 2 - (c->mc->noreply ? 1 : 0);
    if (nt < 2 || nt > 4)
        return mc_error(c, "ERROR\r\n");
    if (rest > 1 || (rest == 1 && !mc_tok_is(&t[2], "0")))
        return mc_error(c, "CLIENT_ERROR bad command line format.  "
                        "Usage: delete <key> [noreply]\r\n");
    if (!mc_key_ok(&t[1]))
        return mc_error(c, ERR_FORMAT);
    if (!mc_key_map(&t[1], &ns, &k))
        ns = MC_TEXT_NS;
    if (!mc_ns_writable(s, ns)) {
        s->stats.mc_errors++;
        return mc_error(c, "SERVER_ERROR namespace not writable over "
                        "memcache (--memcache-writable)\r\n");
    }
    if (store_delete(s->st, ns, &k) == KC_OK) {
        s->mcs.delete_hits++;
        mc_reply(c, "DELETED\r\n");
    } else {
        s->mcs.delete_misses++;
        mc_reply(c, "NOT_FOUND\r\n");
    }
    return mc_done(c);
}

/* flush_all [delay] [noreply] */
static int mc_cmd_flush(struct conn *c, const struct mc_tok *t, size_t nt)
{
    struct server *s = c->srv;
    int64_t delay = 0;

    c->mc->noreply = nt > 1 && mc_tok_is(&t[nt - 1], "noreply");
    if (nt > 3 || (nt == 3 && !c->mc->noreply))
        return mc_error(c, "ERROR\r\n");
    if (nt - (c->mc->noreply ? 1 : 0) == 2 && mc_parse_i64(&t[1], &delay) < 0)
        return mc_error(c, "CLIENT_ERROR invalid exptime argument\r\n");
    s->mcs.cmd_flush++;
    if (delay > 0) {
        s->mcs.flush_at = mci_exptime(delay, mc_now());
    } else if (mc_flush_now(s) < 0) {
        return mc_error(c, "SERVER_ERROR out of memory\r\n");
    }
    mc_reply(c, "OK\r\n");
    return mc_done(c);
}

/* verbosity <level> [noreply]: nothing to change, memcached's replies. */
static int mc_cmd_verbosity(struct conn *c, const struct mc_tok *t, size_t nt)
{
    uint64_t level;

    c->mc->noreply = nt > 1 && mc_tok_is(&t[nt - 1], "noreply");
    if (nt < 2 || nt > 3)
        return mc_error(c, "ERROR\r\n");
    if (nt - c->mc->noreply == 2 && mc_parse_u64(&t[1], UINT32_MAX, &level) < 0)
        return mc_error(c, ERR_FORMAT);
    mc_reply(c, "OK\r\n");
    return mc_done(c);
}

/* get / gets / gat / gats: any number of keys, the whole line tokenized. */
static int mc_cmd_get(struct conn *c, const struct mc_tok *t, const char *line,
                      size_t len, int kind)
{
    bool touch = kind == MCG_GAT || kind == MCG_GATS;
    size_t first = touch ? 2 : 1;
    struct mc_tok *keys;
    int64_t exptime = 0;
    size_t n;
    int r;

    keys = malloc((len / 2 + 2) * sizeof(*keys));
    if (keys == NULL)
        return mc_error(c, "SERVER_ERROR out of memory\r\n");
    n = mc_tokenize(line, len, keys, len / 2 + 1);
    if (n <= first) {
        free(keys);
        return mc_error(c, "ERROR\r\n");
    }
    if (n - first > c->srv->opts->max_batch) {
        free(keys);
        c->srv->stats.limit_errors++;
        return mc_error(c, "CLIENT_ERROR too many keys (--max-batch)\r\n");
    }
    if (touch && mc_parse_i64(&t[1], &exptime) < 0) {
        free(keys);
        return mc_error(c, "CLIENT_ERROR invalid exptime argument\r\n");
    }
    for (size_t i = first; i < n; i++)
        if (!mc_key_ok(&keys[i])) {
            free(keys);
            return mc_error(c, ERR_FORMAT);
        }
    r = mc_get_start(c, kind, line, len, keys + first, n - first, NULL, 0,
                     mci_exptime(exptime, mc_now()));
    free(keys);
    return r;
}

/* Is this line an HTTP request ("GET / HTTP/1.1")? memcached closes. */
static bool mc_is_http(const struct mc_tok *t, size_t nt)
{
    return nt == 3 && t[2].len >= 5 && memcmp(t[2].p, "HTTP/", 5) == 0 &&
           (mc_tok_is(&t[0], "GET") || mc_tok_is(&t[0], "POST") ||
            mc_tok_is(&t[0], "HEAD") || mc_tok_is(&t[0], "PUT"));
}

/* quit: close now if nothing waits to be sent, else once it is sent. */
static int mc_cmd_quit(struct conn *c)
{
    c->close_after_flush = true;
    if (c->out_head == NULL) {
        conn_close(c, "quit");
        return STEP_CLOSED;
    }
    return STEP_BLOCKED;
}

/*
 * The first line of a connection on a daemon with --token-file: "auth
 * <token>" (the rest of the line is the token). OK, or an error and the
 * connection is closed; so is any other command first.
 */
static int mc_auth(struct conn *c, const struct mc_tok *t, size_t nt,
                   const char *line, size_t len)
{
    struct server *s = c->srv;
    enum auth_cred cred = CRED_NONE;

    if (nt >= 2 && mc_tok_is(&t[0], "auth"))
        cred = auth_check(&s->auth, t[1].p, len - (size_t)(t[1].p - line));
    if (cred == CRED_NONE) {
        s->auth.failures++;
        log_info("conn %llu (%s): %s: closing", (unsigned long long)c->id,
                 c->peer, nt >= 1 && mc_tok_is(&t[0], "auth")
                              ? "wrong token" : "command before auth");
        c->close_after_flush = true;
        mc_error(c, nt >= 1 && mc_tok_is(&t[0], "auth")
                        ? "CLIENT_ERROR authentication failed\r\n"
                        : "CLIENT_ERROR authenticate first: auth <token>\r\n");
        return c->closed ? STEP_CLOSED : STEP_BLOCKED;
    }
    c->cred = cred;
    mc_reply(c, "OK\r\n");
    return mc_done(c);
}

/* Run one command line (line[0..len), without its \r\n). */
static int mc_command(struct conn *c, const char *line, size_t len,
                      size_t line_start)
{
    struct server *s = c->srv;
    struct mc_tok t[MC_TOKENS];
    size_t nt = mc_tokenize(line, len, t, MC_TOKENS);

    s->stats.requests++;
    c->mc->noreply = false;
    if (c->cred == CRED_NONE)
        return mc_auth(c, t, nt, line, len);
    mc_flush_due(c);
    if (nt == 0)
        return mc_error(c, "ERROR\r\n");
    if (mc_tok_is(&t[0], "get"))
        return mc_cmd_get(c, t, line, len, MCG_GET);
    if (mc_tok_is(&t[0], "gets"))
        return mc_cmd_get(c, t, line, len, MCG_GETS);
    if (mc_tok_is(&t[0], "gat"))
        return mc_cmd_get(c, t, line, len, MCG_GAT);
    if (mc_tok_is(&t[0], "gats"))
        return mc_cmd_get(c, t, line, len, MCG_GATS);
    if (nt > MC_TOKENS)
        return mc_error(c, "ERROR\r\n");
    if (mc_tok_is(&t[0], "mg")) {
        if (nt < 2)
            return mc_error(c, "ERROR\r\n");
        if (!mc_key_ok(&t[1]))
            return mc_error(c, ERR_FORMAT);
        if (mc_meta_flags(c, t, 2, nt, "bvkOqsftchlTNRu", "TNR") < 0)
            return mc_done(c);
        return mc_get_start(c, MCG_MG, line, len, &t[1], 1, &t[2], nt - 2, 0);
    }
    if (mc_tok_is(&t[0], "set"))
        return mc_cmd_store(c, t, nt, MCM_SET, line_start);
    if (mc_tok_is(&t[0], "add"))
        return mc_cmd_store(c, t, nt, MCM_ADD, line_start);
    if (mc_tok_is(&t[0], "replace"))
        return mc_cmd_store(c, t, nt, MCM_REPLACE, line_start);
    if (mc_tok_is(&t[0], "append"))
        return mc_cmd_store(c, t, nt, MCM_APPEND, line_start);
    if (mc_tok_is(&t[0], "prepend"))
        return mc_cmd_store(c, t, nt, MCM_PREPEND, line_start);
    if (mc_tok_is(&t[0], "cas"))
        return mc_cmd_store(c, t, nt, MCM_CAS, line_start);
    if (mc_tok_is(&t[0], "incr"))
        return mc_cmd_arith(c, t, nt, MCM_INCR);
    if (mc_tok_is(&t[0], "decr"))
        return mc_cmd_arith(c, t, nt, MCM_DECR);
    if (mc_tok_is(&t[0], "ms"))
        return mc_cmd_ms(c, t, nt, line_start);
    if (mc_tok_is(&t[0], "md"))
        return mc_cmd_md(c, t, nt);
    if (mc_tok_is(&t[0], "mn")) {
        mc_reply(c, "MN\r\n");
        return mc_done(c);
    }
    if (mc_tok_is(&t[0], "delete"))
        return mc_cmd_delete(c, t, nt);
    if (mc_tok_is(&t[0], "touch"))
        return mc_cmd_touch(c, t, nt);
    if (mc_tok_is(&t[0], "stats"))
        return mc_cmd_stats(c, t, nt);
    if (mc_tok_is(&t[0], "flush_all"))
        return mc_cmd_flush(c, t, nt);
    if (mc_tok_is(&t[0], "version")) {
        mc_reply(c, "VERSION " MC_VERSION "\r\n");
        return mc_done(c);
    }
    if (mc_tok_is(&t[0], "verbosity"))
        return mc_cmd_verbosity(c, t, nt);
    if (mc_tok_is(&t[0], "quit"))
        return mc_cmd_quit(c);
    if (mc_is_http(t, nt)) {
        s->stats.protocol_errors++;
        conn_close(c, "HTTP request on the memcache port");
        return STEP_CLOSED;
    }
    if (mc_tok_is(&t[0], "ma") || mc_tok_is(&t[0], "me"))
        return mc_error(c, "SERVER_ERROR command not supported by kvcached\r\n");
    return mc_error(c, "ERROR\r\n");
}

int mc_step(struct conn *c)
{
    struct mc_conn *m = c->mc;
    size_t avail = c->ilen - c->ipos, len, start;
    const char *line, *nl;

    if (m->ready)
        return mc_get_resume(c);
    if (m->trailer) {
        bool good;

        if (avail < 2) {
            if (conn_ibuf_room(c, 2) < 0)
                goto nomem;
            return STEP_NEED_INPUT;
        }
        good = c->ibuf[c->ipos] == '\r' && c->ibuf[c->ipos + 1] == '\n';
        c->ipos += 2;
        m->trailer = false;
        return mc_store_end(c, good);
    }
    if (c->close_after_flush || c->busy_wait || c->srv->stopping ||
        c->gets_inflight || c->out_bytes > CONN_OUT_BYTES_MAX ||
        c->out_count > CONN_OUT_COUNT_MAX)
        return STEP_BLOCKED;
    line = (const char *)c->ibuf + c->ipos;
    nl = memchr(line, '\n', avail);
    if (nl == NULL) {
        bool is_get = avail >= 4 && (memcmp(line, "get ", 4) == 0 ||
                                     memcmp(line, "gets", 4) == 0 ||
                                     memcmp(line, "gat", 3) == 0);

        if (avail > (is_get ? MC_LINE_MAX : MC_SHORT_LINE_MAX)) {
            /* memcached closes here too: no way to find the next command */
            c->srv->stats.protocol_errors++;
            log_info("conn %llu (%s): memcache line of more than %zu bytes: "
                     "closing", (unsigned long long)c->id, c->peer, avail);
            c->close_after_flush = true;
            m->noreply = false;
            mc_error(c, "CLIENT_ERROR line too long\r\n");
            return c->closed ? STEP_CLOSED : STEP_BLOCKED;
        }
        if (conn_ibuf_room(c, avail + 4096) < 0)
            goto nomem;
        return STEP_NEED_INPUT;
    }
    start = c->ipos;
    len = (size_t)(nl - line);
    c->ipos += len + 1;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    return mc_command(c, line, len, start);
nomem:
    conn_close(c, "out of memory for the input buffer");
    return STEP_CLOSED;
}

/* The connection is freed: its protocol state. */
static void mc_free(struct conn *c)
{
    free(c->mc);
    c->mc = NULL;
}

const struct conn_proto mc_proto = {
    .name = "memcache",
    .on_read = mc_step,
    .on_data = mc_data_done,
    .on_close = mc_abort,
    .on_free = mc_free,
    .ordered = true,
};

void mc_refuse(int fd, const char *why)
{
    char msg[160];
    int n = snprintf(msg, sizeof(msg), "SERVER_ERROR %s\r\n", why);

    if (send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_debug("refused connection: send failed");
}
