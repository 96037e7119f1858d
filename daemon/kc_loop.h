/*
 * kc_loop.h - a thin epoll event loop with a before-sleep hook.
 *
 * Level-triggered. Each registered fd carries a struct loop_handler (usually
 * embedded in the owner's struct) whose callback gets the epoll events. The
 * before-sleep hook runs once per iteration, before epoll_wait, and returns
 * how long the loop may sleep (redis ae.c's beforesleep, with a timeout).
 */
#ifndef KC_LOOP_H
#define KC_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop_handler;
typedef void (*loop_cb)(struct loop_handler *h, uint32_t events);

/* What one registered fd calls back. */
struct loop_handler {
    int fd;
    uint32_t events;   /* current interest (EPOLLIN, EPOLLOUT) */
    loop_cb cb;
};

struct loop;

/* Create a loop; NULL on failure (errno set). */
struct loop *loop_create(void);
void loop_destroy(struct loop *l);

/* Register h->fd with interest events. 0 or -errno. */
int loop_add(struct loop *l, struct loop_handler *h, uint32_t events);

/* Change the interest of a registered handler (no-op if unchanged). */
int loop_mod(struct loop *l, struct loop_handler *h, uint32_t events);

/* Unregister (before closing the fd). */
void loop_del(struct loop *l, struct loop_handler *h);

/* Hook run before each sleep; returns the longest sleep in ms (-1 = none). */
typedef int (*loop_before_sleep)(void *arg);

/* Run until loop_stop(); returns 0 or -errno of a failed epoll_wait. */
int loop_run(struct loop *l, loop_before_sleep hook, void *arg);

/* Make loop_run return after the current iteration. */
void loop_stop(struct loop *l);

/* Monotonic time in nanoseconds. */
uint64_t loop_now_ns(void);

#endif
