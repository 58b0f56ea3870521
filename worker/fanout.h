/* fanout.h: the fan-out stage: each job becomes one PUBLISH of the message
 * to every recipient's channel. */
#ifndef CHATMI_WORKER_FANOUT_H
#define CHATMI_WORKER_FANOUT_H

#include "worker/queue.h"
#include "worker/worker.h"

/* Publishes every job of b (in this worker's fan-out processing list) as a
 * delivery [nil, message] to chatmi:{u:<recipient>}, pipelined; poison jobs
 * go to the dead list; then deletes the processing list. 0, or -1 on a
 * connection failure (the batch is redone: deliveries are at least once). */
int fanout_run(struct wk *w, const struct queue_batch *b);

#endif
