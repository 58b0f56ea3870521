/* fanout.c: the fan-out stage (fanout.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/envelope.h"
#include "common/ids.h"
#include "common/keys.h"
#include "common/log.h"
#include "worker/fanout.h"
#include "worker/mem.h"
#include "worker/reply.h"

/* Replies read at once at most: bounds the memory a room of 100,000 members
 * costs (hiredis buffers every pending command and reply). */
#define FANOUT_WINDOW 1024

/* Reads the replies pending so far; PUBLISH errors are logged, not fatal. */
static int drain(struct wk *w, size_t *pending)
{
    redisReply *r[FANOUT_WINDOW];
    while (*pending > 0) {
        size_t n = *pending < FANOUT_WINDOW ? *pending : FANOUT_WINDOW;
        if (conn_read(&w->conn, r, n) < 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            if (r[i]->type == REDIS_REPLY_ERROR)
                cm_error("redis_error", "fan-out: %s", r[i]->str);
            freeReplyObject(r[i]);
        }
        *pending -= n;
    }
    return 0;
}

static int publish_job(struct wk *w, const struct cm_fanout_job *j, size_t *pending)
{
    msgpack_sbuffer d;
    char channel[CM_KEY_MAX];
    int rc = 0;

    msgpack_sbuffer_init(&d);
    reply_delivery(&d, NULL, 0, j->msg, j->msg_len);
    for (size_t i = 0; i < j->nrecipients && rc == 0; i++) {
        const msgpack_object *o = &j->recipients[i];
        if (o->type != MSGPACK_OBJECT_STR || !cm_valid_user(o->via.str.ptr, o->via.str.size)) {
            cm_warn("fanout_recipient", "skipping an invalid recipient in a job for %.*s", (int)j->conv_len,
                    j->conv);
            continue;
        }
        size_t clen = cm_key_user_channel(channel, o->via.str.ptr, o->via.str.size);
        const char *argv[3] = {"PUBLISH", channel, d.data};
        size_t lens[3] = {7, clen, d.size};
        if (conn_append_argv(&w->conn, 3, argv, lens) < 0) {
            rc = -1;
            break;
        }
        w->stats.deliveries++;
        if (++*pending >= FANOUT_WINDOW)
            rc = drain(w, pending);
    }
    msgpack_sbuffer_destroy(&d);
    return rc;
}

int fanout_run(struct wk *w, const struct queue_batch *b)
{
    size_t pending = 0, ndead = 0;
    const char **dead = wk_xcalloc(b->n, sizeof *dead);
    size_t *dead_lens = wk_xcalloc(b->n, sizeof *dead_lens);
    msgpack_sbuffer *letters = wk_xcalloc(b->n, sizeof *letters);
    int rc = 0;

    for (size_t i = 0; i < b->n && rc == 0; i++) {
        msgpack_unpacked u;
        struct cm_fanout_job j;
        char err[160], reason[200];

        msgpack_unpacked_init(&u);
        if (cm_fanout_job_unpack(b->item[i], b->len[i], &u, &j, err, sizeof err) < 0) {
            snprintf(reason, sizeof reason, "bad fan-out job: %s", err);
            cm_warn("dead_letter", "%s (%zu bytes)", reason, b->len[i]);
            w->stats.dead++;
            msgpack_sbuffer_init(&letters[ndead]);
            queue_pack_dead(&letters[ndead], reason, b->item[i], b->len[i]);
            dead[ndead] = letters[ndead].data;
            dead_lens[ndead] = letters[ndead].size;
            ndead++;
        } else {
            rc = publish_job(w, &j, &pending);
            cm_debug("fanout", "%.*s to %zu recipients", (int)j.conv_len, j.conv, j.nrecipients);
        }
        msgpack_unpacked_destroy(&u);
    }
    if (rc == 0)
        rc = drain(w, &pending);

    int k = -1;
    if (rc == 0) {
        struct queue_done d = {NULL, NULL, NULL, 0, w->keys.dead, dead, dead_lens, ndead};
        k = queue_append_done(&w->conn, w->keys.fanout_proc, &d);
    }
    for (size_t i = 0; i < ndead; i++)
        msgpack_sbuffer_destroy(&letters[i]);
    free(letters);
    free(dead);
    free(dead_lens);
    if (k < 0)
        return -1;

    redisReply **r = wk_xcalloc((size_t)k, sizeof *r);
    if (conn_read(&w->conn, r, (size_t)k) < 0) {
        free(r);
        return -1;
    }
    rc = queue_check_done(r, (size_t)k);
    for (int i = 0; i < k; i++)
        freeReplyObject(r[i]);
    free(r);
    return rc;
}
