/* queue.h: the reliable queues: taking a batch into this worker's processing
 * list, handing a finished batch on, the dead list, heartbeat and reaper.
 *
 * Every function that talks to Redis returns -1 on a connection failure or
 * when Redis refuses the work (an error reply, logged here): the caller
 * backs off and reconnects; a batch taken stays in the processing list and
 * is redone. */
#ifndef CHATMI_WORKER_QUEUE_H
#define CHATMI_WORKER_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <msgpack.h>

#include "worker/conn.h"
#include "worker/worker.h"

/* A batch of queue items. The item strings point into the replies in
 * owner[], which the batch owns; queue_batch_free() releases everything.
 * Empty replies are not kept, so a wait and a take fill at most two. */
#define QUEUE_BATCH_OWNERS 2
struct queue_batch {
    redisReply *owner[QUEUE_BATCH_OWNERS];
    size_t nowners;
    size_t n, cap;
    const char **item;
    size_t *len;
};

void queue_batch_free(struct queue_batch *b);

/* Moves up to max items from the head of queue to the tail of proc (one
 * script call) and adds them to b. 0 (maybe with none), or -1. */
int queue_take(struct wk_conn *wc, const char *queue, const char *proc, long max, struct queue_batch *b);

/* BLMOVE queue proc LEFT RIGHT timeout_s: waits for one item and adds it to
 * b. 0 (b unchanged on timeout), or -1. */
int queue_wait(struct wk_conn *wc, const char *queue, const char *proc, double timeout_s,
               struct queue_batch *b);

/* Adds every item of proc (this worker's unfinished batch, left by a lost
 * connection or a previous run with the same worker id) to b. 0 or -1. */
int queue_pending(struct wk_conn *wc, const char *proc, struct queue_batch *b);

/* Appends the packed dead-list entry {reason, envelope: <bin data>} to sb. */
void queue_pack_dead(msgpack_sbuffer *sb, const char *reason, const char *data, size_t len);

/* What a finished batch hands on: fan-out jobs for the next queue and
 * entries for the dead list (queue_pack_dead). Pointers are borrowed. */
struct queue_done {
    const char *next; /* the next queue; NULL when njobs is 0 */
    const char *const *jobs;
    const size_t *job_lens;
    size_t njobs;
    const char *dead; /* the dead list; NULL when ndead is 0 */
    const char *const *dead_entries;
    const size_t *dead_lens;
    size_t ndead;
};

/* Queues the hand-off of a finished batch, atomically: MULTI, RPUSH next
 * jobs..., LPUSH dead entries... and LTRIM dead to 10,000, DEL proc, EXEC;
 * only DEL proc when there is nothing to hand on. Returns the number of
 * replies to read, or -1. */
int queue_append_done(struct wk_conn *wc, const char *proc, const struct queue_done *d);

/* Checks the n replies of queue_append_done(). 0 when the hand-off happened,
 * -1 (logged) when it did not and the batch is still in proc. */
int queue_check_done(redisReply *const *r, size_t n);

/* Heartbeat and reaper (scripts.h WK_SCRIPT_BEAT): sets this worker's
 * deadline to now + ttl_ms on the Redis clock and requeues the batches of
 * every worker past its deadline; logs what it reaped. 0, or -1 on a
 * connection failure. */
int queue_beat(struct wk_conn *wc, const struct wk_keys *k, const char *worker_id, int64_t ttl_ms);

/* Removes this worker from the heartbeat set at a clean exit. 0 or -1. */
int queue_forget(struct wk_conn *wc, const struct wk_keys *k, const char *worker_id);

#endif
