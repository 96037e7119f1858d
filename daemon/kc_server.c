/*
 * kc_server.c - listeners, accept, the store's eventfd, signals, and the
 * before-sleep hook (deferred frees, retries, idle timeouts, drain).
 */
#include "daemon/kc_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/kc_conn.h"
#include "daemon/kc_http.h"
#include "daemon/kc_lease.h"
#include "daemon/kc_log.h"
#include "daemon/kc_mcparse.h"
#include "daemon/kc_memcache.h"
#include "daemon/kc_rpc.h"
#include "daemon/kc_shm.h"

/* How long a stop waits for requests in flight. */
#define SERVER_DRAIN_NS (10ull * 1000000000ull)
/* Socket buffers asked for on client connections (big blocks). */
#define SERVER_SOCKBUF (4 << 20)

static void server_accept_tcp(struct loop_handler *h, uint32_t events);
static void server_accept_unix(struct loop_handler *h, uint32_t events);
static void server_accept_mc(struct loop_handler *h, uint32_t events);

/* Listen on TCP addr:port; returns the fd or -1 (logged). */
static int listen_tcp(const char *addr, int port, int *bound)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    int one = 1, fd;

    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        log_error("bad listen address %s (IPv4 expected)", addr);
        return -1;
    }
    sa.sin_port = htons((uint16_t)port);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto err;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        goto err;
    *bound = ntohs(sa.sin_port);
    return fd;
err:
    log_error("cannot listen on %s:%d: %s", addr, port, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Listen on a Unix socket, mode 0600; a stale socket file is replaced, a
 * live one (another daemon) or a file that is not a socket is an error. Returns the fd or -1 (logged). */
/* umask is per process: shards start their listeners on several threads
 * at once, and two interleaved set/restore pairs could leave the process
 * with the socket's 0177 for good (files made later, then 0600). One lock
 * makes each set/bind/restore whole. */
static pthread_mutex_t umask_lock = PTHREAD_MUTEX_INITIALIZER;

static int listen_unix(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat stb;
    mode_t old;
    int fd, probe;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_error("socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    /* only a socket file is ever replaced: -s pointed at a store, a log
     * or a folder by mistake must not delete it */
    if (lstat(path, &stb) == 0 && !S_ISSOCK(stb.st_mode)) {
        log_error("%s exists and is not a socket: refusing to replace it "
                  "(remove it or pick another -s)", path);
        return -1;
    }
    probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(probe);
        log_error("another server is listening on %s", path);
        return -1;
    }
    if (probe >= 0)
        close(probe);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto err;
    pthread_mutex_lock(&umask_lock);
    old = umask(0177);
    int brc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int berr = errno;
    umask(old);
    pthread_mutex_unlock(&umask_lock);
    if (brc < 0) {
        errno = berr;
        goto err;
    }
    if (chmod(path, 0600) < 0 || listen(fd, 1024) < 0)
        goto err;
    return fd;
err:
    log_error("cannot listen on %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Stop listening (at shutdown): no new connections. */
static void server_close_listeners(struct server *s)
{
    if (s->tcp_lh.fd >= 0) {
        loop_del(s->loop, &s->tcp_lh);
        close(s->tcp_lh.fd);
        s->tcp_lh.fd = -1;
    }
    if (s->unix_lh.fd >= 0) {
        loop_del(s->loop, &s->unix_lh);
        close(s->unix_lh.fd);
        s->unix_lh.fd = -1;
        unlink(s->opts->socket);
    }
    if (s->mc_lh.fd >= 0) {
        loop_del(s->loop, &s->mc_lh);
        close(s->mc_lh.fd);
        s->mc_lh.fd = -1;
    }
}

/* The store's eventfd fired: reap completions (runs get callbacks). */
static void server_store_event(struct loop_handler *h, uint32_t events)
{
    struct server *s = (struct server *)((char *)h -
                                         offsetof(struct server, store_lh));
    int rc;

    (void)events;
    rc = store_poll(s->st, false);
    if (rc < 0)
        log_warn("store_poll: %s", kc_strerror(rc));
}

/* SIGTERM / SIGINT: stop accepting, drain, then the loop stops. */
static void server_signal(struct loop_handler *h, uint32_t events)
{
    struct server *s = (struct server *)((char *)h -
                                         offsetof(struct server, signal_lh));
    struct signalfd_siginfo si;

    (void)events;
    if (read(h->fd, &si, sizeof(si)) != sizeof(si))
        return;
    if (s->stopping) {
        log_warn("signal %u again: stopping now", si.ssi_signo);
        s->stop_deadline_ns = 0;
        return;
    }
    log_info("signal %u: no new connections, finishing requests in flight",
             si.ssi_signo);
    s->stopping = true;
    s->stop_deadline_ns = loop_now_ns() + SERVER_DRAIN_NS;
    server_close_listeners(s);
    for (struct conn *c = s->conns; c; c = c->next)
        conn_update_events(c);
}

int server_init(struct server *s, const struct options *o, struct store *st)
{
    sigset_t mask;

    memset(s, 0, sizeof(*s));
    s->opts = o;
    s->st = st;
    s->unix_lh.fd = s->tcp_lh.fd = s->signal_lh.fd = s->store_lh.fd = -1;
    s->mc_lh.fd = -1;
    s->tcp_port = s->metrics_port = s->mc_port = -1;
    stats_init(&s->stats, loop_now_ns());
    if (auth_init(&s->auth, o) < 0)
        return -1;
    s->last_tick_ns = s->stats.start_ns;
    s->loop = loop_create();
    if (s->loop == NULL) {
        log_error("out of memory");
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    s->signal_lh.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    s->signal_lh.cb = server_signal;
    s->store_lh.fd = store_fd(st);
    s->store_lh.cb = server_store_event;
    if (s->signal_lh.fd < 0 || loop_add(s->loop, &s->signal_lh, EPOLLIN) < 0 ||
        loop_add(s->loop, &s->store_lh, EPOLLIN) < 0) {
        log_error("cannot set up signals and the store's eventfd: %s",
                  strerror(errno));
        return -1;
    }
    if (o->port >= 0) {
        s->tcp_lh.fd = listen_tcp(o->listen, o->port, &s->tcp_port);
        s->tcp_lh.cb = server_accept_tcp;
        if (s->tcp_lh.fd < 0 || loop_add(s->loop, &s->tcp_lh, EPOLLIN) < 0)
            return -1;
        log_info("listening on tcp %s:%d", o->listen, s->tcp_port);
    }
    if (o->socket[0] != '\0') {
        s->unix_lh.fd = listen_unix(o->socket);
        s->unix_lh.cb = server_accept_unix;
        if (s->unix_lh.fd < 0 || loop_add(s->loop, &s->unix_lh, EPOLLIN) < 0)
            return -1;
        log_info("listening on unix %s", o->socket);
    }
    if (o->memcache_port >= 0) {
        if (mc_ns_listed(o->memcache_writable, 0) < 0) {
            log_error("--memcache-writable %s: want \"all\" or namespace ids "
                      "of 16 hex digits, comma-separated", o->memcache_writable);
            return -1;
        }
        s->mc_lh.fd = listen_tcp(o->memcache_listen, o->memcache_port,
                                 &s->mc_port);
        s->mc_lh.cb = server_accept_mc;
        if (s->mc_lh.fd < 0 || loop_add(s->loop, &s->mc_lh, EPOLLIN) < 0)
            return -1;
        log_info("memcache protocol on tcp %s:%d", o->memcache_listen,
                 s->mc_port);
    }
    if (o->metrics_port >= 0) {
        s->http = http_create(s, o->listen, o->metrics_port, &s->metrics_port);
        if (s->http == NULL)
            return -1;
        log_info("metrics on http://%s:%d/metrics", o->listen, s->metrics_port);
    }
    return 0;
}

/* Accept what is pending on a listener. */
static void server_accept(struct server *s, struct loop_handler *h, bool is_unix,
                          bool is_mc)
{
    for (int i = 0; i < 64 && !s->stopping; i++) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        int one = 1, bufsz = SERVER_SOCKBUF;
        struct conn *c;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR)
                log_warn("accept: %s", strerror(errno));
            return;
        }
        if (s->nconns >= s->opts->max_conns) {
            if (is_mc)
                mc_refuse(fd, "too many open connections");
            else
                rpc_refuse(fd, "too many connections");
            close(fd);
            s->stats.conns_rejected++;
            log_warn("connection refused: %u connections open (--conns)",
                     s->nconns);
            continue;
        }
        c = malloc(sizeof(*c));
        if (c == NULL || conn_init(c, s, fd, is_unix,
                                   is_mc ? &mc_proto : &rpc_proto) < 0 ||
            (is_mc && mc_attach(c) < 0)) {
            if (c)
                free(c->ibuf);
            free(c);
            close(fd);
            log_warn("connection dropped: out of memory");
            continue;
        }
        if (!is_unix)
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
        if (loop_add(s->loop, &c->lh, EPOLLIN) < 0) {
            conn_free(c);
            close(fd);
            continue;
        }
        c->id = ++s->next_conn_id;
        c->cred = auth_initial(&s->auth, is_unix);
        snprintf(c->peer, sizeof(c->peer), "%s",
                 is_unix ? "unix" : is_mc ? "memcache" : "tcp");
        if (is_mc)
            s->stats.mc_conns_total++;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        s->stats.conns++;
        s->stats.conns_total++;
        log_debug("conn %llu (%s): accepted", (unsigned long long)c->id, c->peer);
    }
}

/* The TCP listener fired. */
static void server_accept_tcp(struct loop_handler *h, uint32_t events)
{
    (void)events;
    server_accept((struct server *)((char *)h - offsetof(struct server, tcp_lh)),
                  h, false, false);
}

/* The Unix listener fired. */
static void server_accept_unix(struct loop_handler *h, uint32_t events)
{
    (void)events;
    server_accept((struct server *)((char *)h - offsetof(struct server, unix_lh)),
                  h, true, false);
}

/* The memcache listener fired. */
static void server_accept_mc(struct loop_handler *h, uint32_t events)
{
    (void)events;
    server_accept((struct server *)((char *)h - offsetof(struct server, mc_lh)),
                  h, false, true);
}

/* Once a second: health windows, idle connections. */
static void server_tick(struct server *s, uint64_t now)
{
    uint64_t idle_ns = (uint64_t)s->opts->idle_timeout * 1000000000ull;
    uint64_t put_ns = (uint64_t)s->opts->put_timeout * 1000000000ull;
    uint64_t send_ns = (uint64_t)s->opts->send_timeout * 1000000000ull;
    struct store_stats ss;
    struct conn *c, *next;

    store_stats(s->st, &ss);
    stats_tick(&s->stats, now, ss.io_errors);
    http_tick(s->http, now);
    lease_expire(s, now);
    for (c = s->conns; c; c = next) {
        next = c->next;
        /* last_active_ns may be later than now (stamped while this
         * iteration processed the connection): never subtract blindly */
        /* a block received into a reserved memory-slab slot keeps that
         * slab from being flushed, and so other clients' puts waiting:
         * it gets --put-timeout, however slowly its bytes trickle in */
        if (c->state == CS_DATA && c->sink && c->sink_left > 0 &&
            c->sink_ns < now && now - c->sink_ns > put_ns) {
            s->stats.put_timeouts++;
            log_info("conn %llu (%s): block not received within %u s: closing",
                     (unsigned long long)c->id, c->peer, s->opts->put_timeout);
            conn_close(c, "put timeout");
            continue;
        }
        /* answers (and the read buffers they hold) the peer does not take */
        if (c->out_head && c->last_sent_ns < now &&
            now - c->last_sent_ns > send_ns) {
            s->stats.send_timeouts++;
            log_info("conn %llu (%s): took none of its answers in %u s: "
                     "closing", (unsigned long long)c->id, c->peer,
                     s->opts->send_timeout);
            conn_close(c, "send timeout");
            continue;
        }
        if (c->gets_inflight == 0 && (c->shm == NULL || c->shm->nleases == 0) &&
            c->last_active_ns < now &&
            now - c->last_active_ns > idle_ns) {
            s->stats.idle_closed++;
            log_info("conn %llu (%s): idle for %u s: closing",
                     (unsigned long long)c->id, c->peer, s->opts->idle_timeout);
            conn_close(c, "idle timeout");
        }
    }
    s->last_tick_ns = now;
}

/* True once every connection is at a frame boundary with nothing pending. */
static bool server_drained(const struct server *s)
{
    for (const struct conn *c = s->conns; c; c = c->next)
        if (c->state != CS_HDR || c->out_head || c->gets_inflight ||
            c->parked)
            return false;
    return true;
}

/* Work deferred to the end of each loop iteration; returns the sleep. */
static int server_before_sleep(void *arg)
{
    struct server *s = arg;
    uint64_t now = loop_now_ns();
    struct conn **pp, *c, *next, *kick;

    /* connections whose reader yielded or was unblocked; those that kick
     * themselves again wait for the next iteration, after epoll has had
     * its turn, so one busy connection cannot starve the others */
    kick = s->kick;
    s->kick = NULL;
    for (c = kick; c; c = next) {
        next = c->kick_next;
        c->kicked = false;
        if (!c->closed)
            conn_process(c);
    }
    /* Puts waiting for a memory slab: retry once per iteration */
    if (s->busy_waiters) {
        for (c = s->conns; c; c = next) {
            next = c->next;
            if (!c->busy_wait)
                continue;
            c->busy_wait = false;
            s->busy_waiters--;
            conn_process(c);
        }
    }
    if (now - s->last_tick_ns >= 1000000000ull)
        server_tick(s, now);
    /* free closed connections once no get of theirs is in flight and they
     * are off the kick list */
    for (pp = &s->dead; (c = *pp) != NULL;) {
        if (c->gets_inflight == 0 && !c->kicked) {
            *pp = c->dead_next;
            conn_free(c);
        } else {
            pp = &c->dead_next;
        }
    }
    if (s->stopping && (server_drained(s) || now >= s->stop_deadline_ns)) {
        loop_stop(s->loop);
        return 0;
    }
    if (s->kick)
        return 0;
    if (s->busy_waiters || s->stopping)
        return 1;
    return 1000 - (int)((now - s->last_tick_ns) / 1000000ull);
}

/* Tell a test harness the ports (written atomically by rename). */
static void server_write_port_file(struct server *s)
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", s->opts->port_file);
    f = fopen(tmp, "w");
    if (f == NULL) {
        log_warn("cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    fprintf(f, "tcp=%d metrics=%d pid=%d memcache=%d\n", s->tcp_port,
            s->metrics_port, (int)getpid(), s->mc_port);
    fclose(f);
    if (rename(tmp, s->opts->port_file) < 0)
        log_warn("cannot rename %s: %s", tmp, strerror(errno));
}

int server_run(struct server *s)
{
    int rc;

    if (s->opts->port_file)
        server_write_port_file(s);
    rc = loop_run(s->loop, server_before_sleep, s);
    if (rc < 0) {
        log_error("event loop: %s", strerror(-rc));
        return -1;
    }
    if (!server_drained(s))
        log_warn("stopping with requests still in flight (drain timeout)");
    return 0;
}

void server_deinit(struct server *s)
{
    server_close_listeners(s);
    while (s->conns)
        conn_close(s->conns, "shutdown");
    /* let reads in flight finish so their callbacks see closed connections */
    while (s->st && store_busy(s->st))
        if (store_poll(s->st, true) < 0)
            break;
    while (s->dead) {
        struct conn *c = s->dead;

        s->dead = c->dead_next;
        conn_free(c);
    }
    http_destroy(s->http);
    s->http = NULL;
    auth_deinit(&s->auth);
    if (s->signal_lh.fd >= 0)
        close(s->signal_lh.fd);
    loop_destroy(s->loop);
    s->loop = NULL;
}
