/* emf.h: queue depths as CloudWatch Embedded Metric Format records (--emf).
 *
 * With --emf the worker writes, every --emf-interval, one JSON object a line
 * on stdout that CloudWatch Logs turns into metrics (namespace
 * --emf-namespace, no dimensions): InboundDepth, FanoutDepth, DeadLetters,
 * LiveWorkers and InboundPerWorker (inbound depth / live workers, the
 * worker service's scaling metric). Every worker of a deployment reports the
 * same global depths; read them with the Maximum or Average statistic.
 * docs/deploy-ecs.md shows the record and how the autoscaling uses it. */
#ifndef CHATMI_WORKER_EMF_H
#define CHATMI_WORKER_EMF_H

#include <stddef.h>
#include <stdint.h>

#include "worker/depths.h"
#include "worker/worker.h"

/* 1 when ns is a namespace CloudWatch accepts and needs no JSON escaping:
 * 1 to 255 of A-Z a-z 0-9 . - _ / # :, not starting with "AWS/". */
int emf_namespace_valid(const char *ns);

/* Formats one record for depths d at ts_ms (milliseconds since the epoch)
 * into buf, ending in "\n". worker_id and stage are plain properties
 * (ids are [A-Za-z0-9_.:-], no escaping needed). Returns the length, or -1
 * when buf is too small. Pure: no I/O. */
int emf_format(char *buf, size_t buflen, const char *ns, int64_t ts_ms, const struct wk_emf_depths *d,
               const char *worker_id, const char *stage);

/* LLEN inbound, LLEN fanout, LLEN dead, ZCARD workers of each of the
 * nparts queue partitions keys[] in one round trip (also used by the
 * Prometheus metrics, metrics.h): the queues' sums, and the largest
 * workers set. 0, 1 when Redis answered with an error (logged; d partly
 * filled), -1 on a connection failure. */
int emf_read_depths(struct wk_conn *wc, const struct wk_keys *keys, size_t nparts, struct wk_emf_depths *d);

/* When w's next record is due (now_ms, monotonic), reads the depths in one
 * pipelined round trip and writes the record to stdout with one write(2).
 * The record always reads its own; it keeps the reading in w->depths for
 * the Prometheus gauges (depths.h). Only lane 0 calls it (it reads every
 * partition), before wk_metrics_tick in a turn.
 * 0 (also when not due, or --emf is off), or -1 on a connection failure. */
int emf_tick(struct wk *w, int64_t now_ms);

#endif
