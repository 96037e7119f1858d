/*
 * kc_http.h - the metrics endpoint: plain HTTP/1.0-style GET /metrics
 * (Prometheus text) and GET /health, one request per connection.
 */
#ifndef KC_HTTP_H
#define KC_HTTP_H

#include <stdint.h>

/* A scrape must be over (request read, answer sent) this long after its
 * connection was accepted, else it is closed: slow or silent peers cannot
 * hold the endpoint's connection slots. */
#define HTTP_DEADLINE_NS (10ull * 1000000000ull)

struct server;
struct http_srv;

/*
 * Listen on addr:port (port 0 = any) and serve from s's loop. Returns the
 * endpoint or NULL (logged); *bound gets the port.
 */
struct http_srv *http_create(struct server *s, const char *addr, int port,
                             int *bound);

/* Close connections past HTTP_DEADLINE_NS (called once a second). */
void http_tick(struct http_srv *h, uint64_t now_ns);

/* Close the listener and every open HTTP connection. */
void http_destroy(struct http_srv *h);

#endif
