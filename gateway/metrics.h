/* metrics.h: counters for the whole gateway instance, one scrape for every
 * child.
 *
 * The master maps one shared anonymous segment before forking. Every child
 * process gets a cell of its own for its whole life (the master picks a free
 * one before the fork), so a cell has exactly one writer and the hot path
 * is a relaxed atomic add on memory no other process writes. Cells belong
 * to processes, not to the child index: while a SIGHUP reload runs, the
 * retiring child and its successor write different cells, so gauges that a
 * child sets (subscriptions) stay right.
 *
 * When a child exits the master folds its cell: counters are added to the
 * master's own cell ("retired"), gauges are dropped (the connections they
 * counted are gone), and the cell is free again. A seqlock around the fold
 * keeps a concurrent scrape from counting a cell twice or not at all, so
 * counters never appear to go backwards.
 *
 * GET /metrics (any child) sums the master's cell and every child cell. */
#ifndef CHATMI_GATEWAY_METRICS_H
#define CHATMI_GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/proto.h"

/* Counters of one family with a label are consecutive (rendering relies on
 * it); the table in metrics.c names each one. */
enum gw_counter {
    GW_M_CONNS_OPEN = 0,       /* gauge: WebSocket sessions open */
    GW_M_CONNS_TOTAL,          /* WebSocket sessions opened */
    GW_M_HANDSHAKE_OK,         /* handshakes{result}: keep in this order */
    GW_M_HANDSHAKE_BAD_REQUEST,
    GW_M_HANDSHAKE_UNAUTHORIZED,
    GW_M_HANDSHAKE_FORBIDDEN_ORIGIN,
    GW_M_HANDSHAKE_BAD_VERSION,
    GW_M_HANDSHAKE_DRAINING,
    GW_M_HANDSHAKE_OVER_LIMIT,     /* --max-conns, --max-conns-per-ip, --max-sessions-per-user */
    GW_M_HANDSHAKE_TIMEOUT,
    GW_M_HANDSHAKE_ERROR,
    GW_M_HTTP_REQUESTS,        /* non-WebSocket HTTP requests answered */
    GW_M_FRAMES_IN,            /* client messages received */
    GW_M_BYTES_IN,
    GW_M_FRAMES_OUT,           /* frames written to clients */
    GW_M_BYTES_OUT,
    GW_M_REQUESTS_QUEUED,      /* envelopes pushed to the inbound queue */
    GW_M_DELIVERIES,           /* server messages handed to sessions */
    GW_M_ERR_BAD_REQUEST,      /* errors{code}: in enum cm_err order */
    GW_M_ERR_FORBIDDEN,
    GW_M_ERR_NOT_FOUND,
    GW_M_ERR_TOO_LARGE,
    GW_M_ERR_RATE_LIMITED,
    GW_M_ERR_UNAVAILABLE,
    GW_M_ERR_INTERNAL,
    GW_M_RESYNCS,              /* resync messages sent after a subscription gap */
    GW_M_SLOW_CLOSES,          /* closed 1013 for exceeding --max-queued-bytes */
    GW_M_REDIS_RECONNECTS,
    GW_M_SUBSCRIPTIONS,        /* gauge: per-user channels subscribed */
    GW_M_ROOM_SUBSCRIPTIONS,   /* gauge: room channels subscribed */
    GW_M_PROCESSES_RUNNING,    /* gauge: 1 in each live child's cell */
    GW_M_CHILD_STARTS,         /* master: child processes started */
    GW_M_CHILD_RESTARTS,       /* master: starts beyond the first of a child index */
    GW_M__COUNT
};

struct gw_metrics_cell {
    uint64_t v[GW_M__COUNT];
};

struct gw_metrics_shared; /* the mapping's layout, in metrics.c */

struct gw_metrics {
    struct gw_metrics_shared *shm; /* shared mapping; NULL when unmapped */
    size_t size;                   /* of the mapping */
    size_t ncells;                 /* child cells, the last one the overflow cell */
    size_t processes;              /* --processes, for the exposition */
    struct gw_metrics_cell *own;   /* where this process writes */
};

/* Maps the segment for `processes` children: enough cells for every child
 * plus successors and retiring children of several overlapping reloads.
 * own is set to the master's cell. 0 or -1 (errno set). */
int gw_metrics_map(struct gw_metrics *m, size_t processes);
void gw_metrics_unmap(struct gw_metrics *m);

/* Master only. Takes a free, zeroed cell for a child about to be forked
 * and marks it running: its index. When every cell is taken (many reloads
 * whose children are all still draining) returns the shared overflow cell,
 * whose gauges are only right while its processes exit cleanly; *overflow
 * is set then. */
size_t gw_metrics_cell_take(struct gw_metrics *m, int *overflow);

/* Master only, after the cell's child was reaped (or its fork failed):
 * folds its counters into the master's cell and frees it. */
void gw_metrics_cell_release(struct gw_metrics *m, size_t cell);

/* The cell a child writes (for gw_child_run's copy of the struct). */
struct gw_metrics_cell *gw_metrics_cell(const struct gw_metrics *m, size_t cell);

/* The counter of a protocol error code (enum cm_err, not CM_ERR_NONE). */
static inline enum gw_counter gw_metric_error(enum cm_err code)
{
    if (code < CM_ERR_BAD_REQUEST || code > CM_ERR_INTERNAL)
        return GW_M_ERR_INTERNAL;
    return (enum gw_counter)(GW_M_ERR_BAD_REQUEST + (code - CM_ERR_BAD_REQUEST));
}

/* The counter of a refused handshake's HTTP status. */
enum gw_counter gw_metric_handshake_status(int status);

/* One writer per cell: relaxed atomics, never a lock or a syscall. A gauge
 * decremented below zero in a cell wraps; sums are rendered signed. */
static inline void gw_metric_add(struct gw_metrics_cell *s, enum gw_counter c, int64_t d)
{
    __atomic_fetch_add(&s->v[c], (uint64_t)d, __ATOMIC_RELAXED);
}

static inline void gw_metric_set(struct gw_metrics_cell *s, enum gw_counter c, uint64_t v)
{
    __atomic_store_n(&s->v[c], v, __ATOMIC_RELAXED);
}

/* Writes the Prometheus text exposition (format 0.0.4) of the sum over all
 * cells into a malloc'ed buffer (*out, *outlen). 0 or -1 (out of memory). */
int gw_metrics_render(const struct gw_metrics *m, char **out, size_t *outlen);

#endif
