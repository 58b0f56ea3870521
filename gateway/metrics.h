/* metrics.h: counters for the whole gateway instance.
 *
 * The master maps one shared anonymous segment before forking; child i
 * writes only slot i (single writer, relaxed atomics), any child reads every
 * slot to answer GET /metrics for the instance. A slot outlives its child:
 * totals keep counting across respawns and the master zeroes the gauges of a
 * child that died. */
#ifndef CHATMI_GATEWAY_METRICS_H
#define CHATMI_GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum gw_counter {
    GW_M_CONNS_OPEN = 0,       /* gauge: WebSocket sessions open */
    GW_M_CONNS_TOTAL,          /* WebSocket sessions opened */
    GW_M_HANDSHAKE_OK,
    GW_M_HANDSHAKE_FAILED,
    GW_M_HTTP_REQUESTS,        /* non-WebSocket HTTP requests answered */
    GW_M_FRAMES_IN,            /* client messages received */
    GW_M_BYTES_IN,
    GW_M_FRAMES_OUT,           /* frames written to clients */
    GW_M_BYTES_OUT,
    GW_M_REQUESTS_QUEUED,      /* envelopes pushed to the inbound queue */
    GW_M_DELIVERIES,           /* server messages handed to sessions */
    GW_M_ERRORS_SENT,          /* error replies made by the gateway itself */
    GW_M_SLOW_CLOSES,          /* closed 1013 for exceeding --max-queued-bytes */
    GW_M_REDIS_RECONNECTS,
    GW_M_SUBSCRIPTIONS,        /* gauge: per-user channels subscribed */
    GW_M_CHILD_STARTS,         /* times a child started in this slot */
    GW_M_RESYNCS,              /* resync messages sent after a subscription gap */
    GW_M__COUNT
};

struct gw_metrics_slot {
    uint64_t v[GW_M__COUNT];
};

struct gw_metrics {
    size_t nslots;
    struct gw_metrics_slot *slots; /* shared mapping */
};

/* Maps nslots zeroed slots shared with future children. 0 or -1. */
int gw_metrics_map(struct gw_metrics *m, size_t nslots);
void gw_metrics_unmap(struct gw_metrics *m);

static inline void gw_metric_add(struct gw_metrics_slot *s, enum gw_counter c, int64_t d)
{
    __atomic_fetch_add(&s->v[c], (uint64_t)d, __ATOMIC_RELAXED);
}

static inline void gw_metric_set(struct gw_metrics_slot *s, enum gw_counter c, uint64_t v)
{
    __atomic_store_n(&s->v[c], v, __ATOMIC_RELAXED);
}

/* Writes the Prometheus text exposition of the sum over all slots into a
 * malloc'ed buffer (*out, *outlen). 0 or -1 (out of memory). */
int gw_metrics_render(const struct gw_metrics *m, char **out, size_t *outlen);

#endif
