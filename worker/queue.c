/* queue.c: reliable queue operations of queue.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/proto.h"
#include "worker/mem.h"
#include "worker/queue.h"

#define DEAD_LIST_MAX "9999" /* LTRIM 0 9999: the newest 10,000 */

void queue_batch_free(struct queue_batch *b)
{
    for (size_t i = 0; i < b->nowners; i++)
        freeReplyObject(b->owner[i]);
    free(b->item);
    free(b->len);
    memset(b, 0, sizeof *b);
}

static void batch_push(struct queue_batch *b, const char *p, size_t len)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->item = wk_xrealloc(b->item, b->cap * sizeof *b->item);
        b->len = wk_xrealloc(b->len, b->cap * sizeof *b->len);
    }
    b->item[b->n] = p;
    b->len[b->n] = len;
    b->n++;
}

/* Takes ownership of r and adds its string items to b. */
static void batch_adopt(struct queue_batch *b, redisReply *r)
{
    if (b->nowners == QUEUE_BATCH_OWNERS) { /* a programming error */
        fprintf(stderr, "chatmi-worker: queue batch owners exhausted\n");
        abort();
    }
    b->owner[b->nowners++] = r;
    if (r->type == REDIS_REPLY_STRING) {
        batch_push(b, r->str, r->len);
    } else if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type == REDIS_REPLY_STRING)
                batch_push(b, e->str, e->len);
        }
    }
}

/* Adopts a reply into b. An error reply is logged and dropped: -1, so the
 * caller backs off instead of spinning on a Redis that refuses work. */
static int batch_take_reply(struct queue_batch *b, redisReply *r, const char *what, const char *key)
{
    if (r->type == REDIS_REPLY_ERROR) {
        cm_error("redis_error", "%s %s: %s", what, key, r->str);
        freeReplyObject(r);
        return -1;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
        freeReplyObject(r);
        return 0;
    }
    batch_adopt(b, r);
    return 0;
}

int queue_take(struct wk_conn *wc, const char *queue, const char *proc, long max, struct queue_batch *b)
{
    char num[24];
    struct wk_argv a;
    snprintf(num, sizeof num, "%ld", max);
    conn_script_begin(wc, WK_SCRIPT_TAKE, 2, &a);
    wk_argv_addz(&a, queue);
    wk_argv_addz(&a, proc);
    wk_argv_addz(&a, num);
    redisReply *r = conn_script_call(wc, WK_SCRIPT_TAKE, &a);
    if (!r)
        return -1;
    return batch_take_reply(b, r, "take from", queue);
}

int queue_wait(struct wk_conn *wc, const char *queue, const char *proc, double timeout_s,
               struct queue_batch *b)
{
    char t[32];
    struct wk_argv a;
    snprintf(t, sizeof t, "%.3f", timeout_s);
    wk_argv_reset(&a);
    wk_argv_addz(&a, "BLMOVE");
    wk_argv_addz(&a, queue);
    wk_argv_addz(&a, proc);
    wk_argv_addz(&a, "LEFT");
    wk_argv_addz(&a, "RIGHT");
    wk_argv_addz(&a, t);
    redisReply *r = conn_call(wc, &a);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return 0;
    }
    return batch_take_reply(b, r, "BLMOVE from", queue);
}

int queue_pending(struct wk_conn *wc, const char *proc, struct queue_batch *b)
{
    struct wk_argv a;
    wk_argv_reset(&a);
    wk_argv_addz(&a, "LRANGE");
    wk_argv_addz(&a, proc);
    wk_argv_addz(&a, "0");
    wk_argv_addz(&a, "-1");
    redisReply *r = conn_call(wc, &a);
    if (!r)
        return -1;
    return batch_take_reply(b, r, "LRANGE", proc);
}

void queue_pack_dead(msgpack_sbuffer *sb, const char *reason, const char *data, size_t len)
{
    msgpack_packer pk;
    wk_packer_init(&pk, sb);
    msgpack_pack_map(&pk, 2);
    cm_pack_str(&pk, "reason");
    cm_pack_str(&pk, reason);
    cm_pack_str(&pk, "envelope");
    msgpack_pack_bin(&pk, len);
    msgpack_pack_bin_body(&pk, data, len);
}

/* Queues `cmd key items...` as one command. */
static int append_list_cmd(struct wk_conn *wc, const char *cmd, const char *key, const char *const *items,
                           const size_t *lens, size_t n)
{
    const char **argv = wk_xmalloc((n + 2) * sizeof *argv);
    size_t *argvlen = wk_xmalloc((n + 2) * sizeof *argvlen);
    argv[0] = cmd;
    argvlen[0] = strlen(cmd);
    argv[1] = key;
    argvlen[1] = strlen(key);
    for (size_t i = 0; i < n; i++) {
        argv[i + 2] = items[i];
        argvlen[i + 2] = lens[i];
    }
    int rc = conn_append_argv(wc, (int)(n + 2), argv, argvlen);
    free(argv);
    free(argvlen);
    return rc;
}

int queue_append_done(struct wk_conn *wc, const char *proc, const struct queue_done *d)
{
    const char *del[2] = {"DEL", proc};
    size_t dellen[2] = {3, strlen(proc)};
    if (d->njobs == 0 && d->ndead == 0)
        return conn_append_argv(wc, 2, del, dellen) < 0 ? -1 : 1;

    /* Dead letters ride in the transaction too: a batch whose poison could
     * not be recorded stays in hand and is redone, instead of losing it. */
    const char *multi = "MULTI", *exec = "EXEC";
    size_t multilen = 5, execlen = 4;
    int n = 0;
    conn_pin(wc, proc); /* MULTI and EXEC go where the partition's keys are */
    if (conn_append_argv(wc, 1, &multi, &multilen) < 0)
        return -1;
    n++;
    if (d->njobs > 0) {
        if (append_list_cmd(wc, "RPUSH", d->next, d->jobs, d->job_lens, d->njobs) < 0)
            return -1;
        n++;
    }
    if (d->ndead > 0) {
        const char *trim[4] = {"LTRIM", d->dead, "0", DEAD_LIST_MAX};
        size_t trimlen[4] = {5, strlen(d->dead), 1, strlen(DEAD_LIST_MAX)};
        if (append_list_cmd(wc, "LPUSH", d->dead, d->dead_entries, d->dead_lens, d->ndead) < 0 ||
            conn_append_argv(wc, 4, trim, trimlen) < 0)
            return -1;
        n += 2;
    }
    if (conn_append_argv(wc, 2, del, dellen) < 0 || conn_append_argv(wc, 1, &exec, &execlen) < 0)
        return -1;
    return n + 2;
}

int queue_check_done(redisReply *const *r, size_t n)
{
    const redisReply *last = r[n - 1];
    if (n == 1) {
        if (last->type == REDIS_REPLY_ERROR) {
            cm_error("redis_error", "deleting the processing list: %s", last->str);
            return -1;
        }
        return 0;
    }
    /* MULTI ... EXEC: EXEC holds the real results; an error queuing a
     * command (OOM) makes EXEC itself fail (EXECABORT). */
    if (last->type != REDIS_REPLY_ARRAY || last->elements != n - 2) {
        cm_error("redis_error", "handing the batch on: %s",
                 last->type == REDIS_REPLY_ERROR ? last->str : "transaction not executed");
        return -1;
    }
    for (size_t i = 0; i < last->elements; i++) {
        if (last->element[i]->type == REDIS_REPLY_ERROR) {
            cm_error("redis_error", "handing the batch on: %s", last->element[i]->str);
            return -1;
        }
    }
    return 0;
}

int queue_beat(struct wk_conn *wc, const struct wk_keys *k, const char *worker_id, int64_t ttl_ms)
{
    char ttl[24];
    struct wk_argv a;
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    conn_script_begin(wc, WK_SCRIPT_BEAT, 3, &a);
    wk_argv_addz(&a, k->workers);
    wk_argv_addz(&a, k->inbound);
    wk_argv_addz(&a, k->fanout);
    wk_argv_addz(&a, worker_id);
    wk_argv_addz(&a, ttl);
    wk_argv_addz(&a, k->inbound_proc_prefix);
    wk_argv_addz(&a, k->fanout_proc_prefix);
    redisReply *r = conn_script_call(wc, WK_SCRIPT_BEAT, &a);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ERROR) {
        cm_error("redis_error", "heartbeat: %s", r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
               r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer > 0) {
        cm_warn("reaped", "requeued %lld items of %lld dead workers", r->element[0]->integer,
                r->element[1]->integer);
    }
    freeReplyObject(r);
    return 0;
}

int queue_forget(struct wk_conn *wc, const struct wk_keys *k, const char *worker_id)
{
    struct wk_argv a;
    wk_argv_reset(&a);
    wk_argv_addz(&a, "ZREM");
    wk_argv_addz(&a, k->workers);
    wk_argv_addz(&a, worker_id);
    redisReply *r = conn_call(wc, &a);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}
