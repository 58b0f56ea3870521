/* ingest.c: the ingest stage (ingest.h). Requests of a batch are worked on
 * together, stage by stage, so the whole batch costs a few round trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/envelope.h"
#include "common/ids.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/proto.h"
#include "worker/ingest.h"
#include "worker/mem.h"
#include "worker/metrics.h"
#include "worker/replicas.h"
#include "worker/reply.h"
#include "worker/store.h"

struct item {
    msgpack_unpacked mp;    /* owns what env points to (besides the raw item) */
    struct cm_envelope env;
    int dead;               /* undecodable: goes to the dead list */
    char reason[200];
    int has_req;            /* req was decoded (must be freed) */
    struct cm_request req;
    int has_op;             /* op was begun (must be freed) */
    struct store_op op;
    char user[CM_USER_MAX + 1];
    msgpack_sbuffer reply;  /* packed server message for the requester */
    msgpack_sbuffer job;    /* packed fan-out job of a new message */
};

/* FNV-1a, 64 bits: tells a redelivered envelope from a client's retry. */
static void fingerprint(const char *p, size_t len, char out[STORE_FP_LEN + 1])
{
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    snprintf(out, STORE_FP_LEN + 1, "%016llx", h);
}

static void item_prepare(struct wk *w, struct item *it, const char *raw, size_t len)
{
    char err[160], msg[256];

    msgpack_unpacked_init(&it->mp);
    msgpack_sbuffer_init(&it->reply);
    msgpack_sbuffer_init(&it->job);
    if (cm_envelope_unpack(raw, len, &it->mp, &it->env, err, sizeof err) < 0) {
        it->dead = 1;
        snprintf(it->reason, sizeof it->reason, "bad envelope: %s", err);
        return;
    }
    if (!cm_valid_user(it->env.user, it->env.user_len)) {
        it->dead = 1;
        snprintf(it->reason, sizeof it->reason, "bad envelope: user is not a valid user id");
        return;
    }
    if (it->env.session_len == 0 || it->env.session_len > CM_SESSION_MAX) {
        it->dead = 1;
        snprintf(it->reason, sizeof it->reason, "bad envelope: bad session");
        return;
    }
    memcpy(it->user, it->env.user, it->env.user_len);
    it->user[it->env.user_len] = '\0';
    w->stats.requests++;

    it->has_req = 1;
    enum cm_err e = cm_request_decode(it->env.enc, it->env.payload, it->env.payload_len, w->cfg->max_text_bytes,
                                      &it->req, msg, sizeof msg);
    if (e != CM_ERR_NONE) {
        cm_debug("bad_request", "%s: %s: %s", it->user, cm_err_code(e), msg);
        reply_error(&it->reply, &it->req.id, e, msg);
        w->stats.errors++;
        return;
    }
    char fp[STORE_FP_LEN + 1];
    fingerprint(raw, len, fp);
    it->has_op = 1;
    store_begin(w, &it->op, &it->req, it->user, it->env.session, it->env.session_len, fp, &it->reply);
}

static void item_free(struct item *it)
{
    if (it->has_op)
        store_op_free(&it->op);
    if (it->has_req)
        cm_request_free(&it->req);
    msgpack_unpacked_destroy(&it->mp);
    msgpack_sbuffer_destroy(&it->reply);
    msgpack_sbuffer_destroy(&it->job);
}

/* Runs every op's Redis stages. -1 on a connection failure. */
static int run_stages(struct wk *w, struct item *items, size_t n)
{
    for (int stage = 1; stage <= STORE_STAGES; stage++) {
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            struct store_op *op = &items[i].op;
            if (!items[i].has_op)
                continue;
            if (store_append(w, op, stage, &op->count) < 0)
                return -1;
            op->first = total;
            total += op->count;
        }
        if (total == 0)
            continue;
        redisReply **r = wk_xcalloc(total, sizeof *r);
        if (conn_read(&w->conn, r, total) < 0) {
            free(r);
            return -1;
        }
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
            struct store_op *op = &items[i].op;
            if (!items[i].has_op || op->count == 0)
                continue;
            if (rc == 0) {
                rc = store_collect(w, op, stage, r + op->first, op->count, &items[i].reply, &items[i].job);
            } else {
                for (size_t k = 0; k < op->count; k++)
                    freeReplyObject(r[op->first + k]);
            }
        }
        free(r);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Queues a PUBLISH of the item's reply to its session (SPUBLISH on a
 * Redis Cluster, where gateways subscribe to shard channels). 0 or -1. */
static int append_reply(struct wk *w, struct item *it, msgpack_sbuffer *tmp)
{
    char channel[CM_KEY_MAX];
    size_t clen = cm_key_user_channel(channel, it->user, strlen(it->user));
    msgpack_sbuffer_clear(tmp);
    enum cm_member_change change = it->has_op ? it->op.member : CM_MEMBER_NONE;
    reply_delivery_member(tmp, it->env.session, it->env.session_len, it->reply.data, it->reply.size, change,
                          it->op.conv, it->op.conv_len, it->op.member_seq);
    const char *argv[3] = {w->conn.cluster ? "SPUBLISH" : "PUBLISH", channel, tmp->data};
    size_t lens[3] = {strlen(argv[0]), clen, tmp->size};
    return conn_append_argv(&w->conn, 3, argv, lens);
}

/* Replies, then the hand-off (fan-out jobs, dead letters, DEL proc), in one
 * round trip. The ack of an accepted send travels in its fan-out job (the
 * fan-out script publishes it just before the message), so a client always
 * sees its ack before the delivery of the same message. */
static int finish(struct wk *w, const struct queue_batch *b, struct item *items, size_t n)
{
    size_t total = 0, njobs = 0, ndead = 0;
    const char **jobs = wk_xcalloc(n, sizeof *jobs), **dead = wk_xcalloc(n, sizeof *dead);
    size_t *job_lens = wk_xcalloc(n, sizeof *job_lens), *dead_lens = wk_xcalloc(n, sizeof *dead_lens);
    msgpack_sbuffer tmp;
    int rc = 0;

    msgpack_sbuffer_init(&tmp);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct item *it = &items[i];
        wk_metric_request(&w->metrics, it->has_req ? it->req.op : CM_OP_UNKNOWN, it->dead, &it->reply);
        if (it->dead) {
            cm_warn("dead_letter", "%s (%zu bytes)", it->reason, b->len[i]);
            w->stats.dead++;
            /* The reply buffer is unused for a dead item: it holds the entry. */
            queue_pack_dead(&it->reply, it->reason, b->item[i], b->len[i]);
            dead[ndead] = it->reply.data;
            dead_lens[ndead++] = it->reply.size;
        } else if (it->reply.size > 0 && !(it->has_op && it->op.ack_in_job && it->job.size > 0)) {
            if (append_reply(w, it, &tmp) < 0)
                rc = -1;
            total++;
        }
        if (it->job.size > 0) {
            jobs[njobs] = it->job.data;
            job_lens[njobs++] = it->job.size;
        }
    }
    msgpack_sbuffer_destroy(&tmp);
    size_t head = total;
    if (rc == 0) {
        struct queue_done d = {w->keys.fanout, jobs, job_lens, njobs, w->keys.dead, dead, dead_lens, ndead};
        int k = queue_append_done(&w->conn, w->keys.inbound_proc, &d);
        if (k < 0)
            rc = -1;
        else
            total += (size_t)k;
    }
    free(jobs);
    free(job_lens);
    free(dead);
    free(dead_lens);
    if (rc < 0)
        return -1;

    redisReply **r = wk_xcalloc(total, sizeof *r);
    if (conn_read(&w->conn, r, total) < 0) {
        free(r);
        return -1;
    }
    for (size_t i = 0; i < head; i++)
        if (r[i]->type == REDIS_REPLY_ERROR)
            cm_error("redis_error", "publishing a reply: %s", r[i]->str);
    rc = queue_check_done(r + head, total - head);
    for (size_t i = 0; i < total; i++)
        freeReplyObject(r[i]);
    free(r);
    return rc;
}

/* Whether some request of the batch wrote to Redis (or is answered from a
 * write: a send's retry). */
static int batch_writes(const struct item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        enum cm_op op = items[i].has_op ? items[i].req.op : CM_OP_UNKNOWN;
        if (op == CM_OP_SEND || op == CM_OP_JOIN || op == CM_OP_LEAVE)
            return 1;
    }
    return 0;
}

int ingest_run(struct wk *w, const struct queue_batch *b)
{
    size_t n = b->n;
    struct item *items = wk_xcalloc(n, sizeof *items);

    for (size_t i = 0; i < n; i++)
        item_prepare(w, &items[i], b->item[i], b->len[i]);
    int64_t t = wk_metrics_now();
    conn_written_clear(&w->conn); /* replicas_wait: the masters this batch writes to */
    int rc = run_stages(w, items, n);
    wk_metric_stage(&w->metrics, WK_MSTAGE_STORE, t);
    /* Acks (and deliveries) only for writes the replicas have too. */
    if (rc == 0 && batch_writes(items, n))
        rc = replicas_wait(w);
    t = wk_metrics_now();
    if (rc == 0)
        rc = finish(w, b, items, n);
    wk_metric_stage(&w->metrics, WK_MSTAGE_REPLY, t);
    for (size_t i = 0; i < n; i++)
        item_free(&items[i]);
    free(items);
    cm_debug("ingest", "batch of %zu %s", n, rc == 0 ? "done" : "left in hand");
    return rc;
}
