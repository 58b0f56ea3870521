/* worker.h: the worker's configuration and its one context struct, passed
 * to every stage (no global state besides the signal flag in main.c). */
#ifndef CHATMI_WORKER_WORKER_H
#define CHATMI_WORKER_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "common/cluster.h"
#include "common/keys.h"
#include "common/redis_url.h"
#include "common/net.h"
#include "worker/conn.h"
#include "worker/depths.h"
#include "worker/metrics.h"

/* In the order of the --stage choices. */
enum wk_stage { WK_STAGE_INGEST = 0, WK_STAGE_FANOUT = 1, WK_STAGE_ALL = 2 };

#define WK_WORKER_ID_MAX 128
/* Keeps the take script's unpack() well inside Lua's stack limit. */
#define WK_BATCH_MAX 1000
/* A dead worker is reaped this many heartbeats after its last one. */
#define WK_HEARTBEAT_MISSES 5
/* Longest --emf-namespace (CloudWatch's limit). */
#define WK_EMF_NAMESPACE_MAX 255

struct wk_config {
    enum wk_stage stage;
    long batch;
    unsigned partitions;     /* --queue-partitions: queue sets (main.c) */
    unsigned nlanes;         /* --partitions: how many of them this worker works, one lane each */
    unsigned lane_partition[CM_QUEUE_PARTITIONS_MAX]; /* lane -> partition, ascending */
    long history_max;
    long idem_ttl_s;
    size_t max_text_bytes;
    int64_t heartbeat_ms;
    char worker_id[WK_WORKER_ID_MAX + 1];
    struct cm_redis_url url;
    int64_t emf_interval_ms; /* --emf: queue depth records this often; 0: off (emf.h) */
    long wait_replicas;      /* --wait-replicas: replicas an ack waits for (replicas.h); 0: none */
    int64_t wait_timeout_ms; /* --wait-timeout: the longest such wait */
    char emf_namespace[WK_EMF_NAMESPACE_MAX + 1];
    int metrics_on;          /* --metrics-listen given (metrics_http.h) */
    char metrics_host[CM_NET_HOST_MAX];
    int metrics_port;
};

/* Every queue key, built once at start with common/keys.h. The proc
 * prefixes ("chatmi:{q}:inbound:proc:") let the reaper script name other
 * workers' processing lists. */
struct wk_keys {
    char inbound[CM_KEY_MAX];
    char fanout[CM_KEY_MAX];
    char inbound_proc[CM_KEY_MAX];
    char fanout_proc[CM_KEY_MAX];
    char inbound_proc_prefix[CM_KEY_MAX];
    char fanout_proc_prefix[CM_KEY_MAX];
    char workers[CM_KEY_MAX];
    char dead[CM_KEY_MAX];
};

/* Counters for the periodic stats log line. */
struct wk_stats {
    uint64_t requests;   /* envelopes that decoded */
    uint64_t errors;     /* error replies */
    uint64_t sends;      /* messages stored */
    uint64_t dead;       /* poison records sent to the dead list */
    uint64_t deliveries; /* fan-out PUBLISHes */
    uint64_t fanout_repeats; /* fan-out parts skipped: already published (a redone or repeated job) */
    uint64_t reconnects;     /* connections to Redis after the first */
};

/* One lane: the worker's loop on one queue partition, on its own thread
 * with its own connection (main.c). */
struct wk {
    const struct wk_config *cfg;
    unsigned lane;                  /* index among this worker's lanes; lane 0 reads every depth */
    unsigned partition;             /* this lane's queue partition */
    const struct wk_keys *all_keys; /* every partition's keys (lane 0 reads their depths) */
    unsigned nparts;
    struct wk_conn conn;
    struct wk_keys keys;
    struct wk_stats stats;
    struct wk_metrics metrics; /* written by this thread only; read by the metrics thread */
    int64_t emf_next_ms; /* monotonic time of the next EMF record */
    struct wk_depth_reading depths; /* lane 0: the last EMF record's reading, reused by the gauges (depths.h) */
    int replicas;                     /* replicas of the master, from ROLE (replicas.h) */
    int role_warned;                  /* ROLE gave no replica list: said once */
    int64_t replicas_suspended_until; /* monotonic: no WAIT before this (after a timeout) */
};

#endif
