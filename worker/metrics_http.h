/* metrics_http.h: the worker's HTTP endpoint for Prometheus
 * (--metrics-listen): GET /metrics, /healthz (the process runs) and
 * /readyz (every lane connected to Redis).
 *
 * Why a thread: the main loop blocks in hiredis (BLMOVE waits up to a
 * second, a reconnect backoff up to ten), so answering scrapes between
 * batches would make them wait that long, and shortening those waits would
 * cost Redis round trips. A small thread with its own poll() loop answers at
 * once and only reads the counters the main thread keeps with relaxed
 * atomics (metrics.h): the queue work never waits for a scrape, and a scrape
 * never waits for Redis.
 *
 * Clients are served one at a time, each within CLIENT_DEADLINE_MS (a slow
 * or silent client delays other scrapes by that much at most, never the
 * worker). */
#ifndef CHATMI_WORKER_METRICS_HTTP_H
#define CHATMI_WORKER_METRICS_HTTP_H

#include <pthread.h>
#include <stddef.h>

#include "worker/metrics.h"

struct wk_metrics_server {
    int listen_fd;             /* -1 when not started */
    int wake[2];               /* pipe: a byte (or EOF) stops the thread */
    pthread_t thread;
    const struct wk_metrics *const *m; /* the lanes' metrics, borrowed: outlive the server */
    size_t nm;
    const char *worker_id;      /* borrowed */
    const char *stage;          /* borrowed */
};

/* Listens on host:port and starts the thread (every signal blocked in it, so
 * they reach the main thread). 0, or -1 with a reason in err and nothing
 * left open. */
int wk_metrics_server_start(struct wk_metrics_server *s, const char *host, int port,
                            const struct wk_metrics *const *m, size_t nm, const char *worker_id, const char *stage,
                            char *err, size_t errlen);

/* Stops and joins the thread and closes everything. Safe on a server that
 * never started (listen_fd -1) and twice. */
void wk_metrics_server_stop(struct wk_metrics_server *s);

/* The answer to a request head (pure, for tests): status code, and the
 * path's meaning: 1 /metrics, 2 /healthz, 3 /readyz, 0 otherwise. */
int wk_metrics_route(const char *head, size_t len, int *what);

#endif
