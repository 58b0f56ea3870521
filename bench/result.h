/* result.h: what one bench process measured, as plain data: the shards of
 * a multi-process run send it to the coordinator through a socket, which
 * adds them up with bn_result_merge. */
#ifndef CHATMI_BENCH_RESULT_H
#define CHATMI_BENCH_RESULT_H

#include <stdint.h>

#include "bench/hist.h"

enum bn_err {
    BN_E_BAD_REQUEST = 0,
    BN_E_FORBIDDEN,
    BN_E_NOT_FOUND,
    BN_E_TOO_LARGE,
    BN_E_RATE_LIMITED,
    BN_E_UNAVAILABLE,
    BN_E_INTERNAL,
    BN_E_OTHER,
    BN_E__COUNT
};

extern const char *const bn_err_names[BN_E__COUNT];

/* The code of an error reply ("rate_limited") as enum bn_err. */
enum bn_err bn_err_from(const char *s, size_t len);

struct bn_result {
    /* connections: every attempt, warm-up and storm reconnects included */
    uint64_t connects;        /* attempts started */
    uint64_t connected;       /* hello received */
    uint64_t fail_connect;    /* TCP connect failed */
    uint64_t fail_4xx, fail_5xx, fail_status_other; /* HTTP answers other than 101 */
    uint64_t fail_handshake;  /* malformed answer, wrong accept */
    uint64_t fail_timeout;    /* no hello within --connect-timeout */
    uint64_t fail_closed;     /* closed before hello */
    int last_errno, last_status;
    int64_t ramp_first_ns, ramp_last_ns; /* first connect of the initial ramp, its last hello */
    uint64_t ramp_connected;
    uint64_t ready_at_go;     /* sessions up when the run started */
    struct bn_hist handshake; /* connect started to hello */

    /* sessions after hello */
    uint64_t dropped;         /* closed by the server or the network, not by the bench */
    uint64_t close_1001, close_1013, close_other;
    uint64_t resyncs, protocol_errors, unknown_ops;

    /* dm and room: messages whose timestamp lies in the measured period */
    uint64_t sent, skipped, acked, delivered;
    uint64_t errors[BN_E__COUNT];
    uint64_t delivered_other; /* deliveries of warm-up or late messages */
    struct bn_hist latency;   /* send to delivery, every delivery */
    struct bn_hist ack_latency;

    /* storm */
    uint64_t storm_clients, storm_reconnected, storm_recovered, storm_msgs, storm_live;
    uint64_t storm_history_requests, storm_feeder_sent, storm_feeder_resent;
    int64_t storm_t_go, storm_t_last_hello, storm_t_last_recovered;
    double storm_feed_s;      /* time to send and get acks for the missed messages */
    struct bn_hist recovery;  /* scheduled reconnect to last missed message received */

    /* the bench process(es) */
    int processes;
    double cpu_run_s;         /* CPU during the measured period, summed over processes */
    double cpu_run_max_s;     /* the busiest process's share of it */
    double cpu_total_s;
    double run_s;             /* length of the measured period */
    long maxrss_kb;           /* summed over processes */
    struct bn_hist lag;       /* event loop lateness of the 1 ms tick during the run */
};

void bn_result_init(struct bn_result *r);
void bn_result_merge(struct bn_result *dst, const struct bn_result *src);

#endif
