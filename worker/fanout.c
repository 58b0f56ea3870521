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
#include "worker/route.h"

/* Script calls in flight at most before their replies are read: bounds
 * what hiredis buffers. */
#define FANOUT_WINDOW 256
/* Recipients per script call: a room of 100,000 members becomes calls of
 * at most this many publishes (or 1/64 of the room, whichever is more:
 * the dedup bitmap has 64 parts per message), so no single script holds
 * Redis for long. */
#define FANOUT_PART_MIN 1000
#define FANOUT_PARTS_MAX 64

/* One script call, kept until its reply is read: a NOSCRIPT reply (script
 * cache flushed) is retried as EVAL with the same arguments. */
struct fan_call {
    const char **argv;
    size_t *lens;
    char *chans;    /* the channel names argv points into */
    int argc;
    char key[CM_KEY_MAX], seq[24], part[24], ack_chan[CM_KEY_MAX];
};

static void call_free(struct fan_call *c)
{
    free(c->argv);
    free(c->lens);
    free(c->chans);
    c->argv = NULL;
    c->lens = NULL;
    c->chans = NULL;
    c->argc = 0;
}

struct shard_state;

struct fan_state {
    struct shard_state *shard; /* cluster mode only */
    struct fan_call calls[FANOUT_WINDOW];
    size_t pending;
    msgpack_sbuffer deliveries[FANOUT_WINDOW]; /* payloads argv points into */
};

/* Reads the replies of the calls in flight. Script errors are logged, not
 * fatal; a flushed script cache is handled by running the call as EVAL. */
static int drain(struct wk *w, struct fan_state *st)
{
    redisReply *r[FANOUT_WINDOW];
    int rc = 0;
    if (st->pending > 0 && conn_read(&w->conn, r, st->pending) < 0)
        rc = -1;
    for (size_t i = 0; i < st->pending; i++) {
        struct fan_call *c = &st->calls[i];
        if (rc == 0 && conn_is_noscript(r[i])) {
            freeReplyObject(r[i]);
            c->argv[0] = "EVAL";
            c->lens[0] = 4;
            c->argv[1] = wk_script_source(WK_SCRIPT_FANOUT);
            c->lens[1] = strlen(c->argv[1]);
            redisReply *again = NULL;
            if (conn_append_argv(&w->conn, c->argc, c->argv, c->lens) < 0 || conn_read(&w->conn, &again, 1) < 0)
                rc = -1;
            r[i] = again;
        }
        if (rc == 0 && r[i] != NULL) {
            if (r[i]->type == REDIS_REPLY_ERROR)
                cm_error("redis_error", "fan-out: %s", r[i]->str);
            else if (r[i]->type == REDIS_REPLY_INTEGER && r[i]->integer == 0)
                w->stats.fanout_repeats++;
            else if (r[i]->type == REDIS_REPLY_INTEGER)
                w->stats.deliveries += (uint64_t)r[i]->integer;
        }
        if (rc == 0 && r[i] != NULL)
            freeReplyObject(r[i]);
        call_free(c);
        msgpack_sbuffer_destroy(&st->deliveries[i]);
    }
    st->pending = 0;
    return rc;
}

/* Queues one script call: part `part` of the message's fan-out, to the n
 * users of rcpt, or (rcpt NULL) to the conversation's own channel. -1 on a
 * connection failure. */
static int shard_part_add(struct wk *w, struct shard_state *st, const char *conv, long long seq, size_t part,
                          const msgpack_object *rcpt, size_t n, const struct cm_fanout_job *j);

static int publish_part(struct wk *w, struct fan_state *st, const char *conv, long long seq, size_t part,
                        const msgpack_object *rcpt, size_t n, const struct cm_fanout_job *j)
{
    if (w->conn.cluster)
        return shard_part_add(w, st->shard, conv, seq, part, rcpt, n, j);
    if (st->pending == FANOUT_WINDOW && drain(w, st) < 0)
        return -1;
    size_t nchans = rcpt == NULL ? 1 : n;
    struct fan_call *c = &st->calls[st->pending];
    msgpack_sbuffer *d = &st->deliveries[st->pending];
    msgpack_sbuffer_init(d);
    reply_delivery(d, NULL, 0, j->msg, j->msg_len);
    c->argv = wk_xcalloc(9 + nchans, sizeof *c->argv);
    c->lens = wk_xcalloc(9 + nchans, sizeof *c->lens);
    c->chans = wk_xcalloc(nchans, CM_KEY_MAX);
    cm_key_conv(c->key, conv, "fanned");
    snprintf(c->seq, sizeof c->seq, "%lld", seq);
    snprintf(c->part, sizeof c->part, "%zu", part);
    int a = 0;
    c->argv[a] = "EVALSHA", c->lens[a++] = 7;
    c->argv[a] = w->conn.sha[WK_SCRIPT_FANOUT], c->lens[a++] = strlen(w->conn.sha[WK_SCRIPT_FANOUT]);
    c->argv[a] = "1", c->lens[a++] = 1;
    c->argv[a] = c->key, c->lens[a++] = strlen(c->key);
    c->argv[a] = c->seq, c->lens[a++] = strlen(c->seq);
    c->argv[a] = c->part, c->lens[a++] = strlen(c->part);
    c->argv[a] = d->data, c->lens[a++] = d->size;
    /* The sender's ack rides with part 0 (ack_user is validated). */
    size_t ack_len = 0;
    if (part == 0 && j->ack_user != NULL)
        ack_len = cm_key_user_channel(c->ack_chan, j->ack_user, j->ack_user_len);
    c->argv[a] = c->ack_chan, c->lens[a++] = ack_len;
    c->argv[a] = ack_len ? j->ack : "", c->lens[a++] = ack_len ? j->ack_len : 0;
    if (rcpt == NULL) {
        c->lens[a] = cm_key_conv_channel(c->chans, conv, strlen(conv));
        c->argv[a++] = c->chans;
    }
    for (size_t i = 0; rcpt != NULL && i < n; i++) {
        const msgpack_object *o = &rcpt[i];
        if (o->type != MSGPACK_OBJECT_STR || !cm_valid_user(o->via.str.ptr, o->via.str.size)) {
            cm_warn("fanout_recipient", "skipping an invalid recipient in a job for %s", conv);
            continue;
        }
        char *chan = c->chans + (size_t)(a - 9) * CM_KEY_MAX;
        c->lens[a] = cm_key_user_channel(chan, o->via.str.ptr, o->via.str.size);
        c->argv[a++] = chan;
    }
    c->argc = a;
    if (conn_append_argv(&w->conn, c->argc, c->argv, c->lens) < 0) {
        call_free(c);
        msgpack_sbuffer_destroy(d);
        return -1;
    }
    st->pending++;
    return 0;
}

/* Queues the script calls of one job (one per part of its recipients).
 * -1 on a connection failure. Returns 1 (nothing queued) for a job that
 * cannot be fanned out: the caller dead-letters it. */
static int publish_job(struct wk *w, const struct cm_fanout_job *j, struct fan_state *st, char *why, size_t whylen)
{
    long long seq = cm_message_seq(j->msg, j->msg_len);
    char conv[CM_CONV_MAX + 1];
    if (seq < 0 || j->conv_len == 0 || j->conv_len > CM_CONV_MAX) {
        snprintf(why, whylen, "fan-out job without a message seq or with a bad conversation");
        return 1;
    }
    memcpy(conv, j->conv, j->conv_len);
    conv[j->conv_len] = '\0';

    /* A room message is one PUBLISH on the room's channel, whatever the
     * room's size: Redis hands it to each gateway child with members online
     * (they subscribe while they hold one), and the child fans it out to its
     * own sessions. Its work grows with gateways, not members. */
    int room = j->conv_len > 5 && memcmp(j->conv, "room:", 5) == 0;
    if (room)
        return publish_part(w, st, conv, seq, 0, NULL, 0, j);

    size_t part_size = (j->nrecipients + FANOUT_PARTS_MAX - 1) / FANOUT_PARTS_MAX;
    if (part_size < FANOUT_PART_MIN)
        part_size = FANOUT_PART_MIN;
    size_t nparts = j->nrecipients == 0 ? 0 : (j->nrecipients + part_size - 1) / part_size;
    for (size_t part = 0; part < nparts; part++) {
        size_t first = part * part_size;
        size_t n = j->nrecipients - first < part_size ? j->nrecipients - first : part_size;
        if (publish_part(w, st, conv, seq, part, j->recipients + first, n, j) < 0)
            return -1;
    }
    return 0;
}

/* ---- Redis Cluster: sharded pub/sub -------------------------------------
 *
 * Gateways SSUBSCRIBE, and a shard channel lives in its own slot: a
 * per-user channel chatmi:{u:<user>} is not in the slot of the
 * conversation's bitmap, so one script cannot publish to it and mark the
 * part. Each part goes in three pipelined rounds for the whole window:
 *   1. GETBIT: parts already fanned out (a redone job) are skipped;
 *   2. SPUBLISH the sender's ack and the per-user deliveries, each routed
 *      to its channel's slot (the ack first on the same channel, so it
 *      still arrives first);
 *   3. the fanout-shard script in the conversation's slot marks the part,
 *      and for a room publishes to the room channel (same slot) only when
 *      the part was not marked yet.
 * A part is marked only after its publishes were confirmed, so a crash
 * between 2 and 3 repeats deliveries (clients drop them by (conv, seq))
 * but never loses one. A room delivery stays exactly once. */

struct shard_part {
    char fanned[CM_KEY_MAX], seq[24], part[24], bit[24];
    char room_chan[CM_KEY_MAX]; /* "" for a DM */
    char ack_chan[CM_KEY_MAX];  /* "" without an ack */
    char *ack;
    size_t ack_len;
    char *chans; /* nchans names of CM_KEY_MAX */
    size_t nchans;
    msgpack_sbuffer delivery;
    int skip; /* marked already, or a publish failed: not marked now */
};

struct shard_state {
    struct shard_part part[FANOUT_WINDOW];
    size_t n;
};

static void shard_part_free(struct shard_part *p)
{
    free(p->ack);
    free(p->chans);
    msgpack_sbuffer_destroy(&p->delivery);
    memset(p, 0, sizeof *p);
}

static int shard_append(struct wk *w, const char *cmd, const char *key, size_t keylen, const char *arg,
                        size_t arglen, int argc)
{
    const char *argv[3] = {cmd, key, arg};
    size_t lens[3] = {strlen(cmd), keylen, arglen};
    return conn_append_argv(&w->conn, argc, argv, lens);
}

/* The mark script's call for part p (scripts.h WK_SCRIPT_FANOUT_SHARD):
 * its bitmap, and for a room the room's channel and delivery, which the
 * script publishes in the same step. */
static void mark_argv(struct wk *w, const struct shard_part *p, struct wk_argv *a)
{
    int room = p->room_chan[0] != '\0';
    conn_script_begin(&w->conn, WK_SCRIPT_FANOUT_SHARD, room ? 2 : 1, a);
    wk_argv_addz(a, p->fanned);
    if (room)
        wk_argv_addz(a, p->room_chan);
    wk_argv_addz(a, p->seq);
    wk_argv_addz(a, p->part);
    wk_argv_add(a, room ? p->delivery.data : "", room ? p->delivery.size : 0);
}

/* Reads k replies; NULL on a connection failure. The caller frees them
 * with replies_free. */
static redisReply **read_k(struct wk *w, size_t k)
{
    redisReply **r = wk_xcalloc(k ? k : 1, sizeof *r);
    if (k > 0 && conn_read(&w->conn, r, k) < 0) {
        free(r);
        return NULL;
    }
    return r;
}

static void replies_free(redisReply **r, size_t k)
{
    for (size_t i = 0; i < k; i++)
        freeReplyObject(r[i]);
    free(r);
}

/* Runs the three rounds for the parts collected. -1 on a connection
 * failure. Frees the parts either way. */
static int shard_flush(struct wk *w, struct shard_state *st)
{
    int rc = -1;
    size_t k = 0;
    redisReply **r = NULL;
    /* 1. Which parts are done already. */
    for (size_t i = 0; i < st->n; i++)
        if (shard_append(w, "GETBIT", st->part[i].fanned, strlen(st->part[i].fanned), st->part[i].bit,
                         strlen(st->part[i].bit), 3) < 0)
            goto out;
    if (!(r = read_k(w, st->n)))
        goto out;
    for (size_t i = 0; i < st->n; i++) {
        if (r[i]->type == REDIS_REPLY_INTEGER && r[i]->integer == 1) {
            st->part[i].skip = 1;
            w->stats.fanout_repeats++;
        } else if (r[i]->type == REDIS_REPLY_ERROR) {
            cm_error("redis_error", "fan-out check: %s", r[i]->str);
        }
    }
    replies_free(r, st->n);
    r = NULL;

    /* 2. The per-user publishes. */
    for (size_t i = 0; i < st->n; i++) {
        struct shard_part *p = &st->part[i];
        if (p->skip)
            continue;
        if (p->ack_chan[0] && shard_append(w, "SPUBLISH", p->ack_chan, strlen(p->ack_chan), p->ack, p->ack_len, 3) < 0)
            goto out;
        k += p->ack_chan[0] != '\0';
        for (size_t c = 0; c < p->nchans; c++) {
            const char *ch = p->chans + c * CM_KEY_MAX;
            if (shard_append(w, "SPUBLISH", ch, strlen(ch), p->delivery.data, p->delivery.size, 3) < 0)
                goto out;
            k++;
        }
    }
    if (!(r = read_k(w, k)))
        goto out;
    size_t j = 0;
    for (size_t i = 0; i < st->n; i++) {
        struct shard_part *p = &st->part[i];
        if (p->skip)
            continue;
        size_t m = (p->ack_chan[0] != '\0') + p->nchans;
        int failed = 0;
        for (size_t x = 0; x < m; x++, j++) {
            if (r[j]->type == REDIS_REPLY_ERROR) {
                cm_error("redis_error", "fan-out SPUBLISH: %s", r[j]->str);
                failed = 1;
            } else if (x > 0 || p->ack_chan[0] == '\0') {
                w->stats.deliveries++;
            }
        }
        /* Not marked: a repeat of the job may publish it again. */
        p->skip = failed;
    }
    replies_free(r, k);
    r = NULL;

    /* 3. Mark (and publish to a room's channel). */
    k = 0;
    for (size_t i = 0; i < st->n; i++) {
        struct shard_part *p = &st->part[i];
        if (p->skip)
            continue;
        struct wk_argv a;
        mark_argv(w, p, &a);
        if (conn_append(&w->conn, &a) < 0)
            goto out;
        k++;
    }
    if (!(r = read_k(w, k)))
        goto out;
    j = 0;
    rc = 0;
    for (size_t i = 0; i < st->n && rc == 0; i++) {
        struct shard_part *p = &st->part[i];
        if (p->skip)
            continue;
        redisReply *x = r[j];
        if (conn_is_noscript(x)) {
            struct wk_argv a;
            mark_argv(w, p, &a);
            /* Nothing else is in flight: every reply of round 3 is read. */
            redisReply *again = conn_script_eval(&w->conn, WK_SCRIPT_FANOUT_SHARD, &a);
            if (!again) {
                rc = -1;
                break;
            }
            freeReplyObject(r[j]);
            r[j] = x = again;
        }
        if (x->type == REDIS_REPLY_ERROR)
            cm_error("redis_error", "fan-out: %s", x->str);
        else if (x->type == REDIS_REPLY_INTEGER && p->room_chan[0])
            x->integer == 1 ? w->stats.deliveries++ : w->stats.fanout_repeats++;
        j++;
    }
out:
    if (r)
        replies_free(r, k);
    for (size_t i = 0; i < st->n; i++)
        shard_part_free(&st->part[i]);
    st->n = 0;
    return rc;
}

/* Adds one part (cluster mode), flushing a full window first. */
static int shard_part_add(struct wk *w, struct shard_state *st, const char *conv, long long seq, size_t part,
                          const msgpack_object *rcpt, size_t n, const struct cm_fanout_job *j)
{
    if (st->n == FANOUT_WINDOW && shard_flush(w, st) < 0)
        return -1;
    struct shard_part *p = &st->part[st->n++];
    memset(p, 0, sizeof *p);
    msgpack_sbuffer_init(&p->delivery);
    reply_delivery(&p->delivery, NULL, 0, j->msg, j->msg_len);
    cm_key_conv(p->fanned, conv, "fanned");
    snprintf(p->seq, sizeof p->seq, "%lld", seq);
    snprintf(p->part, sizeof p->part, "%zu", part);
    snprintf(p->bit, sizeof p->bit, "%ld", wk_fanned_bit(seq, (unsigned)part));
    if (part == 0 && j->ack_user != NULL) {
        cm_key_user_channel(p->ack_chan, j->ack_user, j->ack_user_len);
        p->ack = wk_xmalloc(j->ack_len ? j->ack_len : 1);
        memcpy(p->ack, j->ack, j->ack_len);
        p->ack_len = j->ack_len;
    }
    if (rcpt == NULL) {
        cm_key_conv_channel(p->room_chan, conv, strlen(conv));
        return 0;
    }
    p->chans = wk_xcalloc(n ? n : 1, CM_KEY_MAX);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *o = &rcpt[i];
        if (o->type != MSGPACK_OBJECT_STR || !cm_valid_user(o->via.str.ptr, o->via.str.size)) {
            cm_warn("fanout_recipient", "skipping an invalid recipient in a job for %s", conv);
            continue;
        }
        cm_key_user_channel(p->chans + p->nchans * CM_KEY_MAX, o->via.str.ptr, o->via.str.size);
        p->nchans++;
    }
    return 0;
}

int fanout_run(struct wk *w, const struct queue_batch *b)
{
    size_t ndead = 0;
    struct fan_state *st = wk_xcalloc(1, sizeof *st);
    if (w->conn.cluster)
        st->shard = wk_xcalloc(1, sizeof *st->shard);
    const char **dead = wk_xcalloc(b->n, sizeof *dead);
    size_t *dead_lens = wk_xcalloc(b->n, sizeof *dead_lens);
    msgpack_sbuffer *letters = wk_xcalloc(b->n, sizeof *letters);
    int rc = 0;

    for (size_t i = 0; i < b->n && rc == 0; i++) {
        msgpack_unpacked u;
        struct cm_fanout_job j;
        char err[160], reason[200];

        msgpack_unpacked_init(&u);
        int bad = cm_fanout_job_unpack(b->item[i], b->len[i], &u, &j, err, sizeof err) < 0;
        if (!bad) {
            rc = publish_job(w, &j, st, err, sizeof err);
            bad = rc == 1;
            if (bad)
                rc = 0;
            else
                cm_debug("fanout", "%.*s to %zu recipients", (int)j.conv_len, j.conv, j.nrecipients);
        }
        if (bad) {
            snprintf(reason, sizeof reason, "bad fan-out job: %s", err);
            cm_warn("dead_letter", "%s (%zu bytes)", reason, b->len[i]);
            w->stats.dead++;
            msgpack_sbuffer_init(&letters[ndead]);
            queue_pack_dead(&letters[ndead], reason, b->item[i], b->len[i]);
            dead[ndead] = letters[ndead].data;
            dead_lens[ndead] = letters[ndead].size;
            ndead++;
        }
        msgpack_unpacked_destroy(&u);
    }
    /* After a failure too: frees what is in flight. */
    if (drain(w, st) < 0)
        rc = -1;
    if (st->shard) {
        if (rc == 0 && shard_flush(w, st->shard) < 0)
            rc = -1;
        for (size_t i = 0; i < st->shard->n; i++)
            shard_part_free(&st->shard->part[i]);
        free(st->shard);
    }
    free(st);

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
