/*
 * kc_loop.c - epoll loop.
 */
#include "kc_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_EVENTS 256

struct loop {
    int epfd;
    bool stop;
    struct epoll_event events[LOOP_EVENTS];
};

struct loop *loop_create(void)
{
    struct loop *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        free(l);
        return NULL;
    }
    return l;
}

void loop_destroy(struct loop *l)
{
    if (l == NULL)
        return;
    close(l->epfd);
    free(l);
}

int loop_add(struct loop *l, struct loop_handler *h, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = h };

    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, h->fd, &ev) < 0)
        return -errno;
    h->events = events;
    return 0;
}

int loop_mod(struct loop *l, struct loop_handler *h, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = h };

    if (h->events == events)
        return 0;
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, h->fd, &ev) < 0)
        return -errno;
    h->events = events;
    return 0;
}

void loop_del(struct loop *l, struct loop_handler *h)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->fd, NULL);
}

int loop_run(struct loop *l, loop_before_sleep hook, void *arg)
{
    l->stop = false;
    while (!l->stop) {
        int timeout = hook ? hook(arg) : -1, n;

        if (l->stop)
            break;
        n = epoll_wait(l->epfd, l->events, LOOP_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        for (int i = 0; i < n; i++) {
            struct loop_handler *h = l->events[i].data.ptr;

            h->cb(h, l->events[i].events);
        }
    }
    return 0;
}

void loop_stop(struct loop *l)
{
    l->stop = true;
}

uint64_t loop_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
