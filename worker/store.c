/* store.c: the Redis side of each request (store.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/envelope.h"
#include "common/log.h"
#include "worker/mem.h"
#include "worker/reply.h"
#include "worker/store.h"

enum { K_SEQ = 0, K_LOG = 1, K_MEMBERS = 2, K_IDEM = 3 }; /* send */
enum { K_ROOM_MEMBERS = 0, K_USER_CONVS = 1, K_USER_ROOMS = 2, K_ROOM_SEQ = 3 }; /* join, leave */
enum { K_H_MEMBERS = 0, K_H_LOG = 1 };                   /* history */

static const char *const transient_errors[] = {"OOM", "LOADING", "BUSY", "READONLY", "MASTERDOWN",
                                               "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "MISCONF"};

/* Redis errors that go away by themselves are `unavailable` (the client may
 * retry); anything else is a bug or bad data: `internal`. */
static enum cm_err redis_err_code(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ERROR || !r->str)
        return CM_ERR_INTERNAL;
    for (size_t i = 0; i < sizeof transient_errors / sizeof transient_errors[0]; i++) {
        size_t n = strlen(transient_errors[i]);
        if (strncmp(r->str, transient_errors[i], n) == 0 && (r->str[n] == ' ' || r->str[n] == '\0'))
            return CM_ERR_UNAVAILABLE;
    }
    return CM_ERR_INTERNAL;
}

static void finish_error(struct wk *w, struct store_op *op, msgpack_sbuffer *reply, enum cm_err code,
                         const char *message)
{
    reply_error(reply, &op->req->id, code, message);
    op->done = 1;
    if (w)
        w->stats.errors++;
}

/* Answers with internal/unavailable after an error or unexpected reply. */
static void fail_redis(struct wk *w, struct store_op *op, msgpack_sbuffer *reply, const redisReply *r,
                       const char *what)
{
    enum cm_err code = redis_err_code(r);
    cm_error("redis_error", "%s for %s: %s", what, op->user,
             r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    finish_error(w, op, reply, code,
                 code == CM_ERR_UNAVAILABLE ? "the service is temporarily unavailable, retry later"
                                            : "internal error");
}

static int reply_is(const redisReply *r, int type)
{
    return r && r->type == type;
}

static void copy_str(char *dst, size_t cap, const char *p, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, p, len);
    dst[len] = '\0';
}

/* ---- begin ----------------------------------------------------------- */

static void begin_send(struct wk *w, struct store_op *op, msgpack_sbuffer *reply)
{
    const struct cm_request *req = op->req;
    int has_id = req->id.p != NULL;

    if (req->to.p) {
        op->kind = CM_CONV_DM;
        copy_str(op->peer, sizeof op->peer, req->to.p, req->to.len);
        op->conv_len = cm_conv_dm(op->user, strlen(op->user), req->to.p, req->to.len, op->conv);
    } else {
        op->kind = CM_CONV_ROOM;
        op->conv_len = cm_conv_room(req->room.p, req->room.len, op->conv);
    }
    op->conv[op->conv_len] = '\0';
    if (cm_random_hex(op->msg_id, 8) < 0) {
        cm_error("random", "no random bytes for a message id");
        finish_error(w, op, reply, CM_ERR_INTERNAL, "internal error");
        return;
    }
    op->key_len[K_SEQ] = cm_key_conv(op->key[K_SEQ], op->conv, "seq");
    op->key_len[K_LOG] = cm_key_conv(op->key[K_LOG], op->conv, "log");
    op->key_len[K_MEMBERS] = cm_key_conv(op->key[K_MEMBERS], op->conv, "members");
    if (has_id)
        op->key_len[K_IDEM] = cm_key_idem(op->key[K_IDEM], op->conv, op->user, req->id.p, req->id.len);
    snprintf(op->num[0], sizeof op->num[0], "%ld", w->cfg->history_max);
    snprintf(op->num[1], sizeof op->num[1], "%ld", w->cfg->idem_ttl_s);

    struct wk_argv *a = &op->script;
    conn_script_begin(&w->conn, WK_SCRIPT_SEND, has_id ? 4 : 3, a);
    for (int k = 0; k < (has_id ? 4 : 3); k++)
        wk_argv_add(a, op->key[k], op->key_len[k]);
    wk_argv_addz(a, op->kind == CM_CONV_ROOM ? "1" : "0");
    wk_argv_add(a, op->conv, op->conv_len);
    wk_argv_addz(a, op->user);
    wk_argv_add(a, req->text.p, req->text.len);
    wk_argv_addz(a, op->msg_id);
    wk_argv_addz(a, op->num[0]);
    wk_argv_addz(a, op->num[1]);
    wk_argv_add(a, op->fp, STORE_FP_LEN);
}

static void begin_room_membership(struct store_op *op)
{
    op->kind = CM_CONV_ROOM;
    op->conv_len = cm_conv_room(op->req->room.p, op->req->room.len, op->conv);
    op->conv[op->conv_len] = '\0';
    cm_key_conv(op->key[K_ROOM_MEMBERS], op->conv, "members");
    cm_key_user(op->key[K_USER_CONVS], op->user, "convs");
    cm_key_user(op->key[K_USER_ROOMS], op->user, "rooms");
    cm_key_conv(op->key[K_ROOM_SEQ], op->conv, "seq");
}

static void begin_history(struct wk *w, struct store_op *op, msgpack_sbuffer *reply)
{
    const struct cm_request *req = op->req;
    char a[CM_USER_MAX + 1], b[CM_USER_MAX + 1];

    if (req->conv.len > CM_CONV_MAX) {
        finish_error(w, op, reply, CM_ERR_BAD_REQUEST, "conv is not a conversation id");
        return;
    }
    copy_str(op->conv, sizeof op->conv, req->conv.p, req->conv.len);
    op->conv_len = req->conv.len;
    op->kind = cm_conv_parse(op->conv, op->conv_len, a, b);
    if (op->kind == CM_CONV_INVALID) {
        finish_error(w, op, reply, CM_ERR_BAD_REQUEST, "conv is not a conversation id");
        return;
    }
    /* A DM has no members set: its two users are in its name. */
    if (op->kind == CM_CONV_DM && strcmp(op->user, a) != 0 && strcmp(op->user, b) != 0) {
        finish_error(w, op, reply, CM_ERR_FORBIDDEN, "you are not in this conversation");
        return;
    }
    cm_key_conv(op->key[K_H_MEMBERS], op->conv, "members");
    cm_key_conv(op->key[K_H_LOG], op->conv, "log");

    const char *mode = "latest";
    int64_t bound = 0;
    if (req->has_after) {
        mode = "after";
        bound = req->after;
    } else if (req->has_before) {
        mode = "before";
        bound = req->before;
    }
    int64_t limit = req->limit;
    if (limit < 1)
        limit = CM_HISTORY_LIMIT_DEFAULT;
    if (limit > CM_HISTORY_LIMIT_MAX)
        limit = CM_HISTORY_LIMIT_MAX;
    snprintf(op->num[0], sizeof op->num[0], "%lld", (long long)bound);
    snprintf(op->num[1], sizeof op->num[1], "%lld", (long long)limit);

    struct wk_argv *s = &op->script;
    conn_script_begin(&w->conn, WK_SCRIPT_HISTORY, 2, s);
    wk_argv_addz(s, op->key[K_H_MEMBERS]);
    wk_argv_addz(s, op->key[K_H_LOG]);
    wk_argv_addz(s, op->kind == CM_CONV_ROOM ? op->user : "");
    wk_argv_addz(s, mode);
    wk_argv_addz(s, op->num[0]);
    wk_argv_addz(s, op->num[1]);
}

void store_begin(struct wk *w, struct store_op *op, const struct cm_request *req, const char *user,
                 const char *session, size_t session_len, const char *fp, msgpack_sbuffer *reply)
{
    memset(op, 0, sizeof *op);
    op->req = req;
    op->session = session;
    op->session_len = session_len;
    copy_str(op->user, sizeof op->user, user, strlen(user));
    copy_str(op->fp, sizeof op->fp, fp, STORE_FP_LEN);
    switch (req->op) {
    case CM_OP_SEND:
        begin_send(w, op, reply);
        break;
    case CM_OP_JOIN:
    case CM_OP_LEAVE:
        begin_room_membership(op);
        break;
    case CM_OP_HISTORY:
        begin_history(w, op, reply);
        break;
    case CM_OP_CONVS:
        cm_key_user(op->key[K_USER_CONVS], op->user, "convs");
        break;
    case CM_OP_PRESENCE:
        break;
    case CM_OP_UNKNOWN:
    default:
        finish_error(w, op, reply, CM_ERR_BAD_REQUEST, "unknown op");
        break;
    }
}

/* ---- append ---------------------------------------------------------- */

static int append3(struct wk *w, size_t *count, const char *cmd, const char *key, const char *arg, size_t arglen)
{
    const char *argv[3] = {cmd, key, arg};
    size_t lens[3] = {strlen(cmd), strlen(key), arglen};
    if (conn_append_argv(&w->conn, arg ? 3 : 2, argv, lens) < 0)
        return -1;
    (*count)++;
    return 0;
}

/* Set elements the worker trusts enough to build a key from. */
static int conv_elem_ok(const redisReply *e)
{
    return e->type == REDIS_REPLY_STRING && e->len > 0 && e->len <= CM_CONV_MAX;
}

static int node_elem_ok(const redisReply *e)
{
    return e->type == REDIS_REPLY_STRING && e->len > 0 && e->len <= CM_NODE_MAX;
}

static void user_key(char *out, const struct cm_str *u, const char *suffix)
{
    char user[CM_USER_MAX + 1];
    copy_str(user, sizeof user, u->p, u->len);
    cm_key_user(out, user, suffix);
}

static int append_send(struct wk *w, struct store_op *op, int stage, size_t *count)
{
    if (stage == 1) {
        if (conn_append(&w->conn, &op->script) < 0)
            return -1;
        (*count)++;
        return 0;
    }
    if (stage != 2 || !op->add_convs)
        return 0;
    /* A DM's first message puts it in both users' lists (a redone or
     * retried first message adds it again: SADD does not mind). */
    char k[CM_KEY_MAX];
    cm_key_user(k, op->user, "convs");
    if (append3(w, count, "SADD", k, op->conv, op->conv_len) < 0)
        return -1;
    if (strcmp(op->peer, op->user) != 0) {
        cm_key_user(k, op->peer, "convs");
        if (append3(w, count, "SADD", k, op->conv, op->conv_len) < 0)
            return -1;
    }
    return 0;
}

/* The room's seq is read before the membership changes, never after: a
 * gateway compares it with the messages it has seen to tell whether the
 * new member may have missed one (an older seq only costs a resync). */
static int append_membership(struct wk *w, struct store_op *op, const char *cmd, size_t *count)
{
    if (op->req->op == CM_OP_JOIN && append3(w, count, "GET", op->key[K_ROOM_SEQ], NULL, 0) < 0)
        return -1;
    if (append3(w, count, cmd, op->key[K_ROOM_MEMBERS], op->user, strlen(op->user)) < 0)
        return -1;
    if (append3(w, count, cmd, op->key[K_USER_CONVS], op->conv, op->conv_len) < 0)
        return -1;
    return append3(w, count, cmd, op->key[K_USER_ROOMS], op->conv, op->conv_len);
}

static int append_convs_seq(struct wk *w, struct store_op *op, size_t *count)
{
    const redisReply *set = op->held[0];
    char conv[CM_CONV_MAX + 1], k[CM_KEY_MAX];
    for (size_t i = 0; i < set->elements; i++) {
        if (!conv_elem_ok(set->element[i]))
            continue;
        copy_str(conv, sizeof conv, set->element[i]->str, set->element[i]->len);
        cm_key_conv(k, conv, "seq");
        if (append3(w, count, "GET", k, NULL, 0) < 0)
            return -1;
    }
    return 0;
}

static int append_presence_nodes(struct wk *w, struct store_op *op, size_t *count)
{
    char k[CM_KEY_MAX];
    for (size_t i = 0; i < op->req->nusers; i++) {
        user_key(k, &op->req->users[i], "nodes");
        if (append3(w, count, "SMEMBERS", k, NULL, 0) < 0)
            return -1;
    }
    return 0;
}

static int append_presence_alive(struct wk *w, struct store_op *op, size_t *count)
{
    char node[CM_NODE_MAX + 1], k[CM_KEY_MAX];
    for (size_t i = 0; i < op->nnodes; i++) {
        copy_str(node, sizeof node, op->nodes[i], op->node_lens[i]);
        cm_key_node_alive(k, node);
        if (append3(w, count, "EXISTS", k, NULL, 0) < 0)
            return -1;
    }
    return 0;
}

static long find_node(const struct store_op *op, const char *p, size_t len)
{
    for (size_t i = 0; i < op->nnodes; i++)
        if (op->node_lens[i] == len && memcmp(op->nodes[i], p, len) == 0)
            return (long)i;
    return -1;
}

/* A node whose alive key expired belongs to a gateway that died without
 * cleaning up: drop it from the user's set so presence stays cheap. */
static int append_presence_cleanup(struct wk *w, struct store_op *op, size_t *count)
{
    char k[CM_KEY_MAX];
    for (size_t i = 0; i < op->nheld; i++) {
        const redisReply *set = op->held[i];
        int have_key = 0;
        for (size_t j = 0; j < set->elements; j++) {
            const redisReply *e = set->element[j];
            long n;
            if (!node_elem_ok(e) || (n = find_node(op, e->str, e->len)) < 0 || op->alive[n])
                continue;
            if (!have_key) {
                user_key(k, &op->req->users[i], "nodes");
                have_key = 1;
            }
            if (append3(w, count, "SREM", k, e->str, e->len) < 0)
                return -1;
        }
    }
    return 0;
}

int store_append(struct wk *w, struct store_op *op, int stage, size_t *count)
{
    *count = 0;
    if (op->done)
        return 0;
    switch (op->req->op) {
    case CM_OP_SEND:
        return append_send(w, op, stage, count);
    case CM_OP_JOIN:
        return stage == 1 ? append_membership(w, op, "SADD", count) : 0;
    case CM_OP_LEAVE:
        return stage == 1 ? append_membership(w, op, "SREM", count) : 0;
    case CM_OP_HISTORY:
        if (stage != 1)
            return 0;
        if (conn_append(&w->conn, &op->script) < 0)
            return -1;
        *count = 1;
        return 0;
    case CM_OP_CONVS:
        if (stage == 1)
            return append3(w, count, "SMEMBERS", op->key[K_USER_CONVS], NULL, 0);
        return stage == 2 ? append_convs_seq(w, op, count) : 0;
    case CM_OP_PRESENCE:
        if (stage == 1)
            return append_presence_nodes(w, op, count);
        if (stage == 2)
            return append_presence_alive(w, op, count);
        return append_presence_cleanup(w, op, count);
    case CM_OP_UNKNOWN:
    default:
        return 0;
    }
}

/* ---- collect --------------------------------------------------------- */

/* A DM's job names its users; a room's names none: it goes to the room's
 * channel (fanout.c). The sender's ack rides along: one script call
 * publishes both, after the batch's WAIT like every delivery. */
static void make_job(struct store_op *op, const char *m, size_t mlen, const msgpack_sbuffer *ack,
                     msgpack_sbuffer *job)
{
    const char *pair[2] = {op->user, op->peer};
    size_t lens[2] = {strlen(op->user), strlen(op->peer)};
    size_t n = op->kind == CM_CONV_ROOM ? 0 : strcmp(op->user, op->peer) == 0 ? 1 : 2;
    msgpack_sbuffer rec;
    msgpack_sbuffer_init(&rec);
    reply_delivery(&rec, op->session, op->session_len, ack->data, ack->size);
    if (cm_fanout_job_pack_ack(job, op->conv, op->conv_len, pair, lens, n, m, mlen, op->user, strlen(op->user),
                               rec.data, rec.size) < 0) {
        cm_error("fanout_job", "could not pack the fan-out job of %s", op->conv);
        msgpack_sbuffer_clear(job);
    } else {
        op->ack_in_job = 1;
    }
    msgpack_sbuffer_destroy(&rec);
}

/* Replaces a NOSCRIPT reply by the reply of an EVAL of the same call. */
static int retry_noscript(struct wk *w, struct store_op *op, enum wk_script s, redisReply **r)
{
    if (!conn_is_noscript(*r))
        return 0;
    cm_warn("noscript", "script cache was flushed; falling back to EVAL");
    freeReplyObject(*r);
    *r = conn_script_eval(&w->conn, s, &op->script);
    return *r ? 0 : -1;
}

/* A script's {status, ...} reply: 0 with the status, or -1 when malformed. */
static int script_status(const redisReply *r, long long *status)
{
    if (!reply_is(r, REDIS_REPLY_ARRAY) || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER)
        return -1;
    *status = r->element[0]->integer;
    return 0;
}

static void room_error(struct wk *w, struct store_op *op, msgpack_sbuffer *reply, long long status)
{
    char msg[160];
    const char *room = op->conv + 5; /* "room:" */
    if (status == -2) {
        snprintf(msg, sizeof msg, "room %s does not exist", room);
        finish_error(w, op, reply, CM_ERR_NOT_FOUND, msg);
    } else {
        snprintf(msg, sizeof msg, "you are not a member of room %s", room);
        finish_error(w, op, reply, CM_ERR_FORBIDDEN, msg);
    }
}

static int collect_send(struct wk *w, struct store_op *op, int stage, redisReply **r, size_t n,
                        msgpack_sbuffer *reply, msgpack_sbuffer *job)
{
    long long status;
    if (stage == 2) {
        for (size_t i = 0; i < n; i++)
            if (reply_is(r[i], REDIS_REPLY_ERROR))
                cm_error("redis_error", "adding %s to a user's convs: %s", op->conv, r[i]->str);
        op->done = 1;
        return 0;
    }
    if (retry_noscript(w, op, WK_SCRIPT_SEND, &r[0]) < 0)
        return -1;
    const redisReply *s = r[0];
    if (script_status(s, &status) < 0) {
        fail_redis(w, op, reply, s, "send");
        return 0;
    }
    if (status < 0) {
        room_error(w, op, reply, status);
        return 0;
    }
    if (s->elements != 2 || s->element[1]->type != REDIS_REPLY_STRING) {
        fail_redis(w, op, reply, s, "send");
        return 0;
    }
    const redisReply *m = s->element[1];
    uint64_t seq = 0;
    if (reply_ack(reply, &op->req->id, m->str, m->len, &seq) < 0) {
        cm_error("bad_message", "stored message of %s is malformed", op->conv);
        finish_error(w, op, reply, CM_ERR_INTERNAL, "internal error");
        return 0;
    }
    if (status == 0 || status == 2)
        make_job(op, m->str, m->len, reply, job);
    if (status == 0)
        w->stats.sends++;
    cm_debug("send", "%s -> %s (%s)", op->user, op->conv,
             status == 0 ? "stored" : status == 1 ? "retry" : "redelivered");
    op->add_convs = op->kind == CM_CONV_DM && seq == 1;
    op->done = !op->add_convs;
    return 0;
}

static int collect_history(struct wk *w, struct store_op *op, redisReply **r, msgpack_sbuffer *reply)
{
    long long status;
    if (retry_noscript(w, op, WK_SCRIPT_HISTORY, &r[0]) < 0)
        return -1;
    const redisReply *s = r[0];
    if (script_status(s, &status) < 0) {
        fail_redis(w, op, reply, s, "history");
        return 0;
    }
    if (status < 0) {
        room_error(w, op, reply, status);
        return 0;
    }
    size_t count = 0;
    for (size_t i = 1; i < s->elements; i++)
        count += s->element[i]->type == REDIS_REPLY_STRING;
    reply_history_begin(reply, &op->req->id, op->conv, op->conv_len, count);
    for (size_t i = 1; i < s->elements; i++)
        if (s->element[i]->type == REDIS_REPLY_STRING)
            reply_raw(reply, s->element[i]->str, s->element[i]->len);
    op->done = 1;
    return 0;
}

static void collect_membership(struct wk *w, struct store_op *op, redisReply **r, size_t n,
                               msgpack_sbuffer *reply)
{
    int join = op->req->op == CM_OP_JOIN;
    size_t first = 0;
    if (join) {
        if (!reply_is(r[0], REDIS_REPLY_STRING) && !reply_is(r[0], REDIS_REPLY_NIL)) {
            fail_redis(w, op, reply, r[0], "join");
            return;
        }
        long long seq = r[0]->type == REDIS_REPLY_STRING ? strtoll(r[0]->str, NULL, 10) : 0;
        op->member_seq = seq > 0 ? seq : 0;
        first = 1;
    }
    for (size_t i = first; i < n; i++) {
        if (!reply_is(r[i], REDIS_REPLY_INTEGER)) {
            fail_redis(w, op, reply, r[i], join ? "join" : "leave");
            return;
        }
    }
    if (join)
        reply_joined(reply, &op->req->id, &op->req->room, op->conv, op->conv_len);
    else
        reply_left(reply, &op->req->id, &op->req->room);
    op->member = join ? CM_MEMBER_JOINED : CM_MEMBER_LEFT;
    op->done = 1;
}

static int cmp_elem(const void *a, const void *b)
{
    const redisReply *x = *(redisReply *const *)a, *y = *(redisReply *const *)b;
    if (x->type != REDIS_REPLY_STRING || y->type != REDIS_REPLY_STRING)
        return (x->type == REDIS_REPLY_STRING) - (y->type == REDIS_REPLY_STRING);
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->str, y->str, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Takes ownership of r[0..n) into op->held. */
static void hold(struct store_op *op, redisReply **r, size_t n)
{
    op->held = wk_xcalloc(n, sizeof *op->held);
    for (size_t i = 0; i < n; i++) {
        op->held[i] = r[i];
        r[i] = NULL;
    }
    op->nheld = n;
}

static void collect_convs_set(struct wk *w, struct store_op *op, redisReply **r, msgpack_sbuffer *reply)
{
    if (!reply_is(r[0], REDIS_REPLY_ARRAY)) {
        fail_redis(w, op, reply, r[0], "convs");
        return;
    }
    /* A stable order for clients and tests: by conversation id. */
    if (r[0]->elements > 1)
        qsort(r[0]->element, r[0]->elements, sizeof *r[0]->element, cmp_elem);
    hold(op, r, 1);
    size_t valid = 0;
    for (size_t i = 0; i < op->held[0]->elements; i++)
        valid += conv_elem_ok(op->held[0]->element[i]);
    if (valid == 0) {
        reply_convs_begin(reply, &op->req->id, 0);
        op->done = 1;
    }
}

static void collect_convs_seq(struct wk *w, struct store_op *op, redisReply **r, size_t n,
                              msgpack_sbuffer *reply)
{
    for (size_t i = 0; i < n; i++) {
        if (!reply_is(r[i], REDIS_REPLY_STRING) && !reply_is(r[i], REDIS_REPLY_NIL)) {
            fail_redis(w, op, reply, r[i], "convs");
            return;
        }
    }
    const redisReply *set = op->held[0];
    reply_convs_begin(reply, &op->req->id, n);
    size_t k = 0;
    for (size_t i = 0; i < set->elements && k < n; i++) {
        const redisReply *e = set->element[i];
        if (!conv_elem_ok(e))
            continue;
        long long seq = r[k]->type == REDIS_REPLY_STRING ? strtoll(r[k]->str, NULL, 10) : 0;
        reply_convs_item(reply, e->str, e->len, seq);
        k++;
    }
    op->done = 1;
}

static void presence_reply(struct store_op *op, msgpack_sbuffer *reply)
{
    const struct cm_request *req = op->req;
    size_t distinct = 0;
    unsigned char *dup = wk_xcalloc(req->nusers, 1);
    for (size_t i = 0; i < req->nusers; i++) {
        for (size_t j = 0; j < i && !dup[i]; j++)
            dup[i] = req->users[j].len == req->users[i].len &&
                     memcmp(req->users[j].p, req->users[i].p, req->users[i].len) == 0;
        distinct += !dup[i];
    }
    reply_presence_begin(reply, &req->id, distinct);
    for (size_t i = 0; i < req->nusers; i++) {
        if (dup[i])
            continue;
        int online = 0;
        const redisReply *set = op->held[i];
        for (size_t j = 0; j < set->elements && !online; j++) {
            const redisReply *e = set->element[j];
            long n;
            online = node_elem_ok(e) && (n = find_node(op, e->str, e->len)) >= 0 && op->alive[n];
        }
        reply_presence_item(reply, req->users[i].p, req->users[i].len, online);
    }
    free(dup);
}

static void collect_presence_nodes(struct wk *w, struct store_op *op, redisReply **r, size_t n,
                                   msgpack_sbuffer *reply)
{
    for (size_t i = 0; i < n; i++) {
        if (!reply_is(r[i], REDIS_REPLY_ARRAY)) {
            fail_redis(w, op, reply, r[i], "presence");
            return;
        }
    }
    hold(op, r, n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += op->held[i]->elements;
    op->nodes = wk_xcalloc(total, sizeof *op->nodes);
    op->node_lens = wk_xcalloc(total, sizeof *op->node_lens);
    op->alive = wk_xcalloc(total, 1);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < op->held[i]->elements; j++) {
            const redisReply *e = op->held[i]->element[j];
            if (node_elem_ok(e) && find_node(op, e->str, e->len) < 0) {
                op->nodes[op->nnodes] = e->str;
                op->node_lens[op->nnodes++] = e->len;
            }
        }
    }
    if (op->nnodes == 0) {
        presence_reply(op, reply);
        op->done = 1;
    }
}

static void collect_presence_alive(struct wk *w, struct store_op *op, redisReply **r, size_t n,
                                   msgpack_sbuffer *reply)
{
    int stale = 0;
    for (size_t i = 0; i < n; i++) {
        if (!reply_is(r[i], REDIS_REPLY_INTEGER)) {
            fail_redis(w, op, reply, r[i], "presence");
            return;
        }
        op->alive[i] = r[i]->integer > 0;
        stale |= !op->alive[i];
    }
    presence_reply(op, reply);
    op->done = !stale;
}

int store_collect(struct wk *w, struct store_op *op, int stage, redisReply **r, size_t n,
                  msgpack_sbuffer *reply, msgpack_sbuffer *job)
{
    int rc = 0;
    switch (op->req->op) {
    case CM_OP_SEND:
        rc = collect_send(w, op, stage, r, n, reply, job);
        break;
    case CM_OP_JOIN:
    case CM_OP_LEAVE:
        collect_membership(w, op, r, n, reply);
        break;
    case CM_OP_HISTORY:
        rc = collect_history(w, op, r, reply);
        break;
    case CM_OP_CONVS:
        if (stage == 1)
            collect_convs_set(w, op, r, reply);
        else
            collect_convs_seq(w, op, r, n, reply);
        break;
    case CM_OP_PRESENCE:
        if (stage == 1) {
            collect_presence_nodes(w, op, r, n, reply);
        } else if (stage == 2) {
            collect_presence_alive(w, op, r, n, reply);
        } else {
            for (size_t i = 0; i < n; i++)
                if (reply_is(r[i], REDIS_REPLY_ERROR))
                    cm_warn("redis_error", "removing a stale node: %s", r[i]->str);
            op->done = 1;
        }
        break;
    case CM_OP_UNKNOWN:
    default:
        op->done = 1;
        break;
    }
    for (size_t i = 0; i < n; i++) {
        if (r[i])
            freeReplyObject(r[i]);
        r[i] = NULL;
    }
    return rc;
}

void store_op_free(struct store_op *op)
{
    for (size_t i = 0; i < op->nheld; i++)
        freeReplyObject(op->held[i]);
    free(op->held);
    free(op->nodes);
    free(op->node_lens);
    free(op->alive);
    op->held = NULL;
    op->nheld = 0;
    op->nodes = NULL;
    op->node_lens = NULL;
    op->alive = NULL;
    op->nnodes = 0;
}
