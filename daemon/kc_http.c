/*
 * kc_http.c - a minimal HTTP responder for scrapers, in the daemon's loop.
 */
#include "daemon/kc_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/kc_log.h"
#include "daemon/kc_daemon.h"
#include "daemon/kc_info.h"

#define HTTP_REQ_MAX 4096
#define HTTP_CONNS_MAX 64

/* One scrape in progress. */
struct http_conn {
    struct loop_handler lh;    /* first: the loop's handle */
    struct http_srv *h;
    struct http_conn *prev, *next;
    char req[HTTP_REQ_MAX];
    size_t rlen;
    struct sbuf out;           /* response, once the request is complete */
    size_t opos;
    uint64_t accepted_ns;      /* closed at accepted_ns + HTTP_DEADLINE_NS */
};

/* The endpoint. */
struct http_srv {
    struct loop_handler lh;    /* listener */
    struct server *s;
    struct http_conn *conns;
    unsigned nconns;
};

/* Close and free one HTTP connection. */
static void http_conn_close(struct http_conn *hc)
{
    struct http_srv *h = hc->h;

    loop_del(h->s->loop, &hc->lh);
    close(hc->lh.fd);
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        h->conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    h->nconns--;
    sbuf_free(&hc->out);
    free(hc);
}

/* Build the answer to the request line in hc->req. */
static void http_answer(struct http_conn *hc)
{
    struct server *s = hc->h->s;
    struct sbuf body = { 0 };
    const char *status = "200 OK";
    struct store_stats ss;
    struct health hl;

    info_health(s, &hl);
    if (strncmp(hc->req, "GET /metrics ", 13) == 0) {
        store_stats(s->st, &ss);
        stats_prometheus(&body, &s->stats, &ss, &hl, loop_now_ns());
    } else if (strncmp(hc->req, "GET /health ", 12) == 0) {
        static const char *const names[] = { "ok", "degraded", "down" };

        sbuf_printf(&body, "%s%s%s\n", names[hl.state],
                    hl.reason[0] ? ": " : "", hl.reason);
        if (hl.state == HEALTH_DOWN)
            status = "503 Service Unavailable";
    } else {
        status = "404 Not Found";
        sbuf_printf(&body, "try GET /metrics or GET /health\n");
    }
    sbuf_printf(&hc->out, "HTTP/1.0 %s\r\nContent-Type: text/plain; "
                "version=0.0.4\r\nContent-Length: %zu\r\nConnection: close"
                "\r\n\r\n", status, body.len);
    if (body.len)
        sbuf_printf(&hc->out, "%.*s", (int)body.len, body.p);
    sbuf_free(&body);
}

/* Read the request until its blank line, answer, send, close. */
static void http_conn_event(struct loop_handler *lh, uint32_t events)
{
    struct http_conn *hc = (struct http_conn *)lh;
    ssize_t n;

    if (events & EPOLLERR)
        goto close;
    if (hc->out.p == NULL) {
        n = recv(lh->fd, hc->req + hc->rlen, HTTP_REQ_MAX - 1 - hc->rlen,
                 MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            goto close;
        }
        hc->rlen += (size_t)n;
        hc->req[hc->rlen] = '\0';
        if (strstr(hc->req, "\r\n\r\n") == NULL &&
            strstr(hc->req, "\n\n") == NULL) {
            if (hc->rlen == HTTP_REQ_MAX - 1)
                goto close;
            return;
        }
        http_answer(hc);
        if (hc->out.p == NULL || loop_mod(hc->h->s->loop, lh, EPOLLOUT) < 0)
            goto close;
    }
    while (hc->opos < hc->out.len) {
        n = send(lh->fd, hc->out.p + hc->opos, hc->out.len - hc->opos,
                 MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            goto close;
        }
        hc->opos += (size_t)n;
    }
close:
    http_conn_close(hc);
}

/* Accept one scraper (at most HTTP_CONNS_MAX at once). */
static void http_accept(struct loop_handler *lh, uint32_t events)
{
    struct http_srv *h = (struct http_srv *)lh;
    struct http_conn *hc;
    int fd;

    (void)events;
    fd = accept4(lh->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (h->nconns >= HTTP_CONNS_MAX || (hc = calloc(1, sizeof(*hc))) == NULL) {
        close(fd);
        return;
    }
    hc->h = h;
    hc->accepted_ns = loop_now_ns();
    hc->lh.fd = fd;
    hc->lh.cb = http_conn_event;
    if (loop_add(h->s->loop, &hc->lh, EPOLLIN) < 0) {
        close(fd);
        free(hc);
        return;
    }
    hc->next = h->conns;
    if (h->conns)
        h->conns->prev = hc;
    h->conns = hc;
    h->nconns++;
}

struct http_srv *http_create(struct server *s, const char *addr, int port,
                             int *bound)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof(sa);
    struct http_srv *h = calloc(1, sizeof(*h));
    int one = 1, fd = -1;

    if (h == NULL)
        return NULL;
    h->s = s;
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        log_error("metrics: bad listen address %s", addr);
        goto err;
    }
    sa.sin_port = htons((uint16_t)port);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto err_errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
        goto err_errno;
    h->lh.fd = fd;
    h->lh.cb = http_accept;
    if (loop_add(s->loop, &h->lh, EPOLLIN) < 0)
        goto err_errno;
    *bound = ntohs(sa.sin_port);
    return h;
err_errno:
    log_error("metrics: cannot listen on %s:%d: %s", addr, port, strerror(errno));
err:
    if (fd >= 0)
        close(fd);
    free(h);
    return NULL;
}

void http_tick(struct http_srv *h, uint64_t now_ns)
{
    struct http_conn *hc, *next;

    if (h == NULL)
        return;
    for (hc = h->conns; hc; hc = next) {
        next = hc->next;
        if (hc->accepted_ns < now_ns &&
            now_ns - hc->accepted_ns > HTTP_DEADLINE_NS) {
            log_debug("metrics: connection past its %llu s deadline: closing",
                      HTTP_DEADLINE_NS / 1000000000ull);
            http_conn_close(hc);
        }
    }
}

void http_destroy(struct http_srv *h)
{
    if (h == NULL)
        return;
    while (h->conns)
        http_conn_close(h->conns);
    loop_del(h->s->loop, &h->lh);
    close(h->lh.fd);
    free(h);
}
