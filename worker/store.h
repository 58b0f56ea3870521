/* store.h: the Redis side of each client request (send, join, leave,
 * history, convs, presence), run for a whole batch at once in pipelined
 * stages.
 *
 * For every request of a batch the ingest loop calls store_begin(), then for
 * each stage 1..STORE_STAGES: store_append() on every op (queues its
 * commands), reads all replies of the stage, and store_collect() on every op
 * that queued some. An op writes exactly one server message into its reply
 * buffer (its result or an error) by the time it is done, and for a newly
 * accepted send also one packed fan-out job. store_op_free() in every case. */
#ifndef CHATMI_WORKER_STORE_H
#define CHATMI_WORKER_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include <msgpack.h>

#include "common/envelope.h"
#include "common/ids.h"
#include "common/keys.h"
#include "common/proto.h"
#include "worker/conn.h"
#include "worker/worker.h"

#define STORE_STAGES 3
#define STORE_FP_LEN 16 /* envelope fingerprint: 16 hex chars */

struct store_op {
    const struct cm_request *req; /* borrowed: outlives the op */
    int done;                     /* the reply is written; nothing more to queue */
    char user[CM_USER_MAX + 1];   /* the requester */
    char peer[CM_USER_MAX + 1];   /* send to a DM: the other user */
    char conv[CM_CONV_MAX + 1];
    size_t conv_len;
    enum cm_conv_kind kind;
    char msg_id[17];
    char fp[STORE_FP_LEN + 1];
    char num[3][24];              /* numeric script arguments */
    char key[4][CM_KEY_MAX];      /* the script's keys, or the keys of join/leave/convs */
    size_t key_len[4];            /* the idempotency key may hold any byte of the client's id */
    struct wk_argv script;        /* kept for an EVAL retry after NOSCRIPT */
    int add_convs;                /* send: a DM's first message; stage 2 adds it to both users' convs */
    const char *session;          /* the requesting session (borrowed), for the ack in a fan-out job */
    size_t session_len;
    int ack_in_job;               /* send: the ack rides in the fan-out job, not published with the replies */
    enum cm_member_change member; /* join/leave: the membership element of the reply's delivery */
    int64_t member_seq;           /* join: the room's seq read just before the join */
    size_t first, count;          /* this op's replies in the current stage */

    /* convs and presence: earlier stages' replies, owned */
    redisReply **held;
    size_t nheld;
    /* presence: the distinct node ids found (pointing into held) and
     * whether each is alive */
    const char **nodes;
    size_t *node_lens;
    unsigned char *alive;
    size_t nnodes;
};

/* Prepares op for the request of `user` (valid id, NUL terminated) whose
 * envelope has fingerprint fp (STORE_FP_LEN chars). Checks that need no
 * Redis (a DM's history read by a third user: forbidden) are answered here:
 * op->done is set and the error is in reply. Never fails otherwise. */
void store_begin(struct wk *w, struct store_op *op, const struct cm_request *req, const char *user,
                 const char *session, size_t session_len, const char *fp, msgpack_sbuffer *reply);

/* Queues op's commands of `stage` and sets *count to their number (0 when
 * the op has nothing to do in this stage). 0, or -1 when queuing failed (a
 * connection failure). */
int store_append(struct wk *w, struct store_op *op, int stage, size_t *count);

/* Consumes op's `n` replies of `stage` (always taking ownership, even on
 * failure), writes the reply when the op is done and, for a newly stored
 * message (or one whose envelope is redelivered after a crash), the packed
 * fan-out job into job, with the ack in it (op->ack_in_job: the caller
 * does not publish reply then). Redis error replies become an
 * `internal` or `unavailable` error reply (logged). 0, or -1 on a connection
 * failure during an EVAL retry. */
int store_collect(struct wk *w, struct store_op *op, int stage, redisReply **r, size_t n,
                  msgpack_sbuffer *reply, msgpack_sbuffer *job);

void store_op_free(struct store_op *op);

#endif
