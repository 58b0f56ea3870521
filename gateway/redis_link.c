/* redis_link.c: the child's command and subscription connections.
 *
 * hiredis frees an async context itself after its disconnect callback (and
 * after a failed connect), so the pointers here are cleared in those
 * callbacks and never freed by us except at shutdown. */
#include <config.h>

#include "redis_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>

#include "common/clock.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/redis.h"
#include "gateway/child.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define NODE_TTL_S 15

static void connect_both(struct gw_child *ch);

static void schedule_retry(struct gw_child *ch)
{
    struct gw_redis *r = &ch->redis;
    if (r->retry_ev == NULL || evtimer_pending(r->retry_ev, NULL))
        return;
    int64_t base = r->backoff_ms ? r->backoff_ms : BACKOFF_MIN_MS;
    unsigned char rnd;
    cm_random_bytes(&rnd, 1);
    int64_t delay = base / 2 + (base * rnd) / 512; /* jitter: [base/2, base) */
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000)};
    evtimer_add(r->retry_ev, &tv);
    r->backoff_ms = base * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : base * 2;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_both(arg);
}

/* A link counts as up once a PING has an answer: the AUTH and SELECT queued
 * ahead of it have then succeeded too. */
static void on_ping(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    redisReply *rep = reply;
    struct gw_child *ch = ac->data;
    struct gw_redis *r = &ch->redis;
    if (rep == NULL)
        return; /* the link went down before the answer */
    if (rep->type == REDIS_REPLY_ERROR) {
        cm_error("redis_refused", "Redis refused the connection: %s", rep->str);
        redisAsyncDisconnect(ac);
        return;
    }
    if (ac == r->sub) {
        r->sub_up = 1;
    } else if (ac == r->cmd) {
        r->cmd_up = 1;
        gw_redis_heartbeat(ch);
    }
    if (r->cmd_up && r->sub_up) {
        r->backoff_ms = 0;
        cm_info("redis_connected", "connected to Redis");
        /* Subscribing needs both links (SADD of the node set goes on the
         * command link), so users are queued only once both answer. */
        gw_users_link_up(ch);
    }
    gw_child_update_ready(ch);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct gw_child *ch = ac->data;
    struct gw_redis *r = &ch->redis;
    int is_sub = ac == r->sub;
    if (status != REDIS_OK) {
        cm_warn("redis_connect_failed", "%s connection: %s", is_sub ? "subscription" : "command", ac->errstr);
        if (is_sub)
            r->sub = NULL;
        else
            r->cmd = NULL;
        schedule_retry(ch);
        gw_child_update_ready(ch);
        return;
    }
    redisAsyncCommand(ac, on_ping, NULL, "PING");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct gw_child *ch = ac->data;
    struct gw_redis *r = &ch->redis;
    if (ac == r->sub) {
        r->sub = NULL;
        r->sub_up = 0;
        gw_users_link_down(ch);
    } else if (ac == r->cmd) {
        r->cmd = NULL;
        r->cmd_up = 0;
    }
    if (r->retry_ev != NULL) { /* NULL: we are stopping */
        cm_warn("redis_disconnected", "lost Redis: %s", ac->errstr[0] ? ac->errstr : "closed");
        gw_metric_add(ch->stats, GW_M_REDIS_RECONNECTS, 1);
        schedule_retry(ch);
    }
    gw_child_update_ready(ch);
}

static redisAsyncContext *open_one(struct gw_child *ch)
{
    char err[256];
    redisAsyncContext *ac = cm_redis_connect_async(&ch->cfg->redis, err, sizeof(err));
    if (ac == NULL) {
        cm_warn("redis_connect_failed", "%s", err);
        return NULL;
    }
    ac->data = ch;
    if (redisLibeventAttach(ac, ch->base) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

static void connect_both(struct gw_child *ch)
{
    struct gw_redis *r = &ch->redis;
    if (r->cmd == NULL)
        r->cmd = open_one(ch);
    if (r->sub == NULL)
        r->sub = open_one(ch);
    if (r->cmd == NULL || r->sub == NULL)
        schedule_retry(ch);
}

int gw_redis_start(struct gw_child *ch)
{
    ch->redis.retry_ev = evtimer_new(ch->base, on_retry, ch);
    if (ch->redis.retry_ev == NULL)
        return -1;
    connect_both(ch);
    return 0;
}

void gw_redis_stop(struct gw_child *ch)
{
    struct gw_redis *r = &ch->redis;
    if (r->retry_ev != NULL) {
        event_free(r->retry_ev);
        r->retry_ev = NULL;
    }
    /* Clear first: redisAsyncFree runs the disconnect callback. */
    redisAsyncContext *cmd = r->cmd, *sub = r->sub;
    r->cmd = r->sub = NULL;
    r->cmd_up = r->sub_up = 0;
    if (cmd != NULL)
        redisAsyncFree(cmd);
    if (sub != NULL)
        redisAsyncFree(sub);
}

int gw_redis_ready(const struct gw_child *ch)
{
    return ch->redis.cmd_up && ch->redis.sub_up;
}

static void on_push(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *rep = reply;
    struct gw_push_origin *o = priv;
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        cm_debug("redis_push_failed", "a request may not have reached the queue: %s",
                 rep ? rep->str : "connection lost");
        gw_child_push_failed(ac->data, o);
    }
    free(o);
}

int gw_redis_push(struct gw_child *ch, const char *data, size_t len, const struct gw_push_origin *origin)
{
    if (!ch->redis.cmd_up)
        return -1;
    struct gw_push_origin *o = malloc(sizeof(*o));
    if (o == NULL)
        return -1;
    *o = *origin;
    char key[CM_KEY_MAX];
    cm_key_queue(key, "inbound");
    if (redisAsyncCommand(ch->redis.cmd, on_push, o, "RPUSH %s %b", key, data, len) != REDIS_OK) {
        free(o);
        return -1;
    }
    return 0;
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    redisReply *r = reply;
    struct gw_child *ch = ac->data;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return;
    redisReply *kind = r->element[0], *chan = r->element[1];
    if (kind->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING)
        return;
    const char *user;
    size_t ulen;
    if (!cm_key_channel_user(chan->str, chan->len, &user, &ulen))
        return;
    struct gw_user *u = gw_users_find(ch, user, ulen);
    if (u == NULL)
        return;
    if (strcmp(kind->str, "message") == 0) {
        redisReply *payload = r->element[2];
        if (payload->type == REDIS_REPLY_STRING)
            gw_child_deliver(ch, u, payload->str, payload->len);
    } else if (strcmp(kind->str, "subscribe") == 0) {
        gw_users_on_subscribed(ch, u);
    } else if (strcmp(kind->str, "unsubscribe") == 0) {
        gw_users_on_unsubscribed(ch, u);
    }
}

static void on_ignore(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    (void)priv;
    redisReply *r = reply;
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        cm_warn("redis_error", "%s", r->str);
}

int gw_redis_subscribe(struct gw_child *ch, const char *const *users, const size_t *lens, size_t n)
{
    struct gw_redis *r = &ch->redis;
    if (!r->sub_up || !r->cmd_up)
        return -1;
    const char **argv = malloc((n + 1) * sizeof(*argv));
    size_t *argvlen = malloc((n + 1) * sizeof(*argvlen));
    char *names = malloc(n * CM_KEY_MAX);
    int rc = -1;
    if (argv == NULL || argvlen == NULL || names == NULL)
        goto out;
    argv[0] = "SUBSCRIBE";
    argvlen[0] = 9;
    for (size_t i = 0; i < n; i++) {
        char *ch_name = names + i * CM_KEY_MAX;
        argvlen[i + 1] = cm_key_user_channel(ch_name, users[i], lens[i]);
        argv[i + 1] = ch_name;
        char nodes[CM_KEY_MAX];
        cm_key_user(nodes, users[i], "nodes");
        redisAsyncCommand(r->cmd, on_ignore, NULL, "SADD %s %s", nodes, ch->node);
    }
    rc = redisAsyncCommandArgv(r->sub, on_sub_reply, NULL, (int)(n + 1), argv, argvlen) == REDIS_OK ? 0 : -1;
out:
    free(argv);
    free(argvlen);
    free(names);
    return rc;
}

int gw_redis_unsubscribe(struct gw_child *ch, const char *user, size_t len)
{
    struct gw_redis *r = &ch->redis;
    if (!r->sub_up)
        return -1;
    char chan[CM_KEY_MAX], nodes[CM_KEY_MAX];
    cm_key_user_channel(chan, user, len);
    cm_key_user(nodes, user, "nodes");
    if (r->cmd_up)
        redisAsyncCommand(r->cmd, on_ignore, NULL, "SREM %s %s", nodes, ch->node);
    return redisAsyncCommand(r->sub, on_sub_reply, NULL, "UNSUBSCRIBE %s", chan) == REDIS_OK ? 0 : -1;
}

void gw_redis_heartbeat(struct gw_child *ch)
{
    if (!ch->redis.cmd_up)
        return;
    char key[CM_KEY_MAX];
    cm_key_node_alive(key, ch->node);
    redisAsyncCommand(ch->redis.cmd, on_ignore, NULL, "SET %s 1 EX %d", key, NODE_TTL_S);
}
