/* fanout.h: the fan-out stage: each job becomes one PUBLISH of the message
 * to the room's channel or to each recipient's (SPUBLISH on a Redis
 * Cluster, fanout.c "sharded pub/sub"). */
#ifndef CHATMI_WORKER_FANOUT_H
#define CHATMI_WORKER_FANOUT_H

#include "worker/queue.h"
#include "worker/worker.h"

/* Publishes every job of b (in this worker's fan-out processing list) as a
 * delivery [nil, message] to chatmi:{c:room:<name>} or chatmi:{u:<recipient>},
 * pipelined, each part of a message once (the conversation's fanned
 * bitmap; on a cluster, per-user parts at least once); poison jobs go to
 * the dead list; then deletes the processing list. 0, or -1 on a
 * connection failure (the batch is redone). */
int fanout_run(struct wk *w, const struct queue_batch *b);

#endif
