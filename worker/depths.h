/* depths.h: the queue depths lane 0 reads (emf_read_depths, emf.h) for its
 * two outputs, the --emf records and the Prometheus gauges (metrics.h), and
 * the one reading they share (pure: no I/O, for emf.c, metrics.c and the
 * unit tests).
 *
 * A reading is a round trip to every queue partition. With both outputs on,
 * each reading its own on its own timer would read the same depths twice;
 * instead the record keeps its reading (struct wk: depths) and the gauges
 * take it when it is younger than their period, reading only otherwise. */
#ifndef CHATMI_WORKER_DEPTHS_H
#define CHATMI_WORKER_DEPTHS_H

#include <stdint.h>

struct wk_emf_depths {
    long long inbound;  /* LLEN inbound */
    long long fanout;   /* LLEN fanout */
    long long dead;     /* LLEN dead */
    long long workers;  /* ZCARD workers: live workers (and dead ones not reaped yet) */
};

/* The last reading Redis answered without an error, and when. */
struct wk_depth_reading {
    int valid;            /* 0 until the first such reading */
    int64_t read_ms;      /* monotonic time of the reading */
    struct wk_emf_depths d;
};

/* 1 when r holds a reading taken less than max_age_ms before now_ms
 * (monotonic), which an output wanting depths that fresh may use as its
 * own; 0 when it must read them. */
static inline int wk_depth_reading_fresh(const struct wk_depth_reading *r, int64_t now_ms, int64_t max_age_ms)
{
    return r->valid && now_ms - r->read_ms < max_age_ms;
}

#endif
