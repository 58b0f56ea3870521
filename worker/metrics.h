/* metrics.h: the worker's Prometheus metrics.
 *
 * Each lane (main.c) has its own and is the only writer of every field in it; the metrics
 * thread (metrics_http.h) only reads, to answer GET /metrics. Both use
 * relaxed atomics, and the writer never takes a lock or makes a syscall to
 * count: a single writer needs no read-modify-write, so an update is a
 * plain load and store of one word.
 *
 * What the main thread already counts for its periodic stats line (struct
 * wk_stats) is copied here once per turn of its loop (wk_metrics_tick), so
 * the stages keep counting in one place. */
#ifndef CHATMI_WORKER_METRICS_H
#define CHATMI_WORKER_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#include "common/proto.h"

struct wk;

/* Latency histograms of the stages a batch goes through. */
enum wk_mstage {
    WK_MSTAGE_TAKE = 0,      /* taking a batch from a queue (not the blocking wait for one) */
    WK_MSTAGE_STORE,         /* ingest: the pipelined Redis stages of every request */
    WK_MSTAGE_WAIT_REPLICAS, /* ingest: WAIT for the replicas (only when it waits) */
    WK_MSTAGE_REPLY,         /* ingest: replies, fan-out jobs and the hand-off */
    WK_MSTAGE_FANOUT,        /* a whole fan-out batch */
    WK_MSTAGE__COUNT
};

/* Result of one request. */
enum wk_mresult { WK_MRESULT_OK = 0, WK_MRESULT_ERROR, WK_MRESULT_DEAD, WK_MRESULT__COUNT };

#define WK_MOPS 7 /* enum cm_op values */
#define WK_MERRS 7 /* enum cm_err values but CM_ERR_NONE */
#define WK_MBUCKETS 16

struct wk_histogram {
    uint64_t bucket[WK_MBUCKETS + 1]; /* per bound (not cumulative); the last: above every bound */
    uint64_t sum_ns; /* the count is the sum of the buckets */
};

/* Copies of struct wk_stats and the connection's counters. */
enum wk_mcopy {
    WK_MC_REQUESTS = 0,
    WK_MC_SENDS,
    WK_MC_DEAD,
    WK_MC_DELIVERIES,
    WK_MC_FANOUT_REPEATS,
    WK_MC_ROUND_TRIPS,
    WK_MC_RECONNECTS,
    WK_MC_REDIRECTS,
    WK_MC__COUNT
};

/* Gauges read from Redis every WK_METRICS_DEPTH_MS (-1 until the first read). */
enum wk_mdepth { WK_MD_INBOUND = 0, WK_MD_FANOUT, WK_MD_DEAD, WK_MD_WORKERS, WK_MD__COUNT };
#define WK_METRICS_DEPTH_MS 5000

struct wk_metrics {
    int enabled;                                  /* --metrics-listen given */
    uint64_t processed[WK_MOPS][WK_MRESULT__COUNT];
    uint64_t errors[WK_MERRS];
    struct wk_histogram stage[WK_MSTAGE__COUNT];
    uint64_t copy[WK_MC__COUNT];
    int64_t depth[WK_MD__COUNT];
    int64_t redis_up;                             /* 1 while connected */
    int64_t depth_next_ms;                        /* main thread only */
    double start_time;                            /* Unix seconds */
};

/* Zeroes m, sets the depth gauges to "unknown" and the start time. */
void wk_metrics_init(struct wk_metrics *m, int enabled);

/* Monotonic nanoseconds (vDSO clock_gettime: no syscall). */
int64_t wk_metrics_now(void);

/* Records a stage that began at t0 (wk_metrics_now()); returns now, so
 * stages can be chained: t = wk_metric_stage(m, WK_MSTAGE_STORE, t). */
int64_t wk_metric_stage(struct wk_metrics *m, enum wk_mstage s, int64_t t0);

/* Counts one ingested request: op (CM_OP_UNKNOWN when it did not decode),
 * dead (undecodable envelope), and the packed reply, an error reply
 * counting as an error by its code. */
void wk_metric_request(struct wk_metrics *m, enum cm_op op, int dead, const msgpack_sbuffer *reply);

/* Main loop, once per turn: copies the stats, and reads the queue depths
 * when due (metrics enabled only; one pipelined round trip), or takes the
 * --emf record's reading when younger than WK_METRICS_DEPTH_MS (depths.h).
 * 0, or -1 on a connection failure. */
int wk_metrics_tick(struct wk *w, int64_t now_ms);

/* Sets the redis_up gauge. */
void wk_metric_redis_up(struct wk_metrics *m, int up);

/* The Prometheus text exposition (0.0.4) of the nlanes lanes' metrics,
 * summed (metrics.c: sum_lanes), in a malloc'ed buffer; any thread. 0 or
 * -1 (out of memory). */
int wk_metrics_render(const struct wk_metrics *const *lanes, size_t nlanes, const char *worker_id,
                      const char *stage, char **out, size_t *outlen);

#endif
