/* ingest.h: the ingest stage: one batch of envelopes from the inbound queue
 * turned into replies, stored messages and fan-out jobs. */
#ifndef CHATMI_WORKER_INGEST_H
#define CHATMI_WORKER_INGEST_H

#include "worker/queue.h"
#include "worker/worker.h"

/* Processes the batch b, which is in this worker's inbound processing list:
 * undecodable envelopes go to the dead list, every request gets exactly one
 * reply published to its session, and the fan-out jobs of new messages are
 * appended to the fan-out queue in the same transaction that deletes the
 * processing list. 0, or -1 on a connection failure or a failed hand-off
 * (logged; the batch is still in the processing list and must be redone). */
int ingest_run(struct wk *w, const struct queue_batch *b);

#endif
