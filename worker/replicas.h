/* replicas.h: acks that wait for the master's replicas (--wait-replicas).
 *
 * Redis replicates asynchronously: a message the master stored, and the
 * worker acked, can be missing from the replica a failover promotes; its
 * sender never resends it. So before the replies and the hand-off of an
 * ingest batch that wrote something (send, join, leave), the worker sends
 * WAIT for min(--wait-replicas, replicas connected to the master) replicas,
 * for at most --wait-timeout: whenever replicas are up, an ack means "on the
 * master and on its replicas", and fan-out jobs (live deliveries) follow
 * only replicated messages.
 *
 * With no replica connected (a single Redis) nothing is waited for. When a
 * wait times out, the batch is acked anyway, replication_lag is logged, and
 * waits stay off for REPLICAS_SUSPEND_MS: a replica that lags (or died
 * without its master noticing yet) is the operators' problem to see, not a
 * reason to stall every batch. The replica count comes from ROLE, read at
 * every heartbeat. */
#ifndef CHATMI_WORKER_REPLICAS_H
#define CHATMI_WORKER_REPLICAS_H

#include "worker/worker.h"

/* ROLE: how many replicas the master has now (w->replicas). 0, or -1 on a
 * connection failure (an error reply counts as no replicas, logged once). */
int replicas_refresh(struct wk *w);

/* WAIT for the replicas, as above; call with no reply pending. 0, or -1 on
 * a connection failure. */
int replicas_wait(struct wk *w);

#endif
