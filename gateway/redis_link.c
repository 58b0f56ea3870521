/* redis_link.c: the child's command and subscription connections
 * (redis_link.h).
 *
 * hiredis frees an async context itself after its disconnect callback (and
 * after a failed connect), so the pointers here are cleared in those
 * callbacks. We free a context ourselves only from the loop (drop_ev, at
 * stop), never from inside one of its callbacks, and clear its pointer
 * first: a callback for a context that is neither r->cmd nor r->sub is a
 * stale one and does nothing. */
#include <config.h>

#include "redis_link.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>

#include "common/clock.h"
#include "common/cluster.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/redis.h"
#include "gateway/child.h"
#include "gateway/cluster_link.h"
#include "gateway/sentinel.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* From connect to the PING answer; a node that takes longer (a host gone
 * silent behind a moved endpoint) is given up and connected to again. */
#define LINK_TIMEOUT_MS 5000
#define NODE_TTL_S 15

static void connect_links(struct gw_child *ch);

static int use_sentinel(const struct gw_child *ch)
{
    return ch->cfg->redis.kind == CM_REDIS_SENTINEL;
}

static int use_cluster(const struct gw_child *ch)
{
    return ch->cfg->redis.kind == CM_REDIS_CLUSTER;
}

static const char *link_name(const struct gw_redis *r, const redisAsyncContext *ac)
{
    return ac == r->sub ? "subscription" : "command";
}

static void schedule_retry(struct gw_child *ch)
{
    struct gw_redis *r = &ch->redis;
    if (r->retry_ev == NULL || evtimer_pending(r->retry_ev, NULL))
        return;
    int64_t delay = cm_backoff_next(&r->backoff);
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000)};
    evtimer_add(r->retry_ev, &tv);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_links(arg);
}

/* A link's context is gone or being let go: its bookkeeping. */
static void link_gone(struct gw_child *ch, int is_sub)
{
    struct gw_redis *r = &ch->redis;
    if (r->cmd_up && r->sub_up)
        r->down_since_ms = cm_monotonic_ms();
    if (is_sub) {
        r->sub = NULL;
        r->sub_up = 0;
        gw_users_link_down(ch);
    } else {
        r->cmd = NULL;
        r->cmd_up = 0;
    }
}

static void request_drop_v(struct gw_child *ch, int quiet, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void request_drop_v(struct gw_child *ch, int quiet, const char *fmt, va_list ap)
{
    struct gw_redis *r = &ch->redis;
    if (r->drop_ev == NULL || r->drop_pending)
        return;
    vsnprintf(r->drop_why, sizeof(r->drop_why), fmt, ap);
    r->drop_pending = 1;
    r->drop_quiet = quiet;
    if (use_sentinel(ch))
        r->have_master = 0;
    event_active(r->drop_ev, 0, 0);
}

/* Drops both links from the loop, soon, and connects again (with
 * sentinels: after asking them where the master is). The first reason
 * given is the one logged (as a warning; at debug level with the _quiet
 * form, for a failure already logged). Safe inside hiredis callbacks. */
static void request_drop(struct gw_child *ch, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void request_drop_quiet(struct gw_child *ch, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void request_drop(struct gw_child *ch, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    request_drop_v(ch, 0, fmt, ap);
    va_end(ap);
}

static void request_drop_quiet(struct gw_child *ch, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    request_drop_v(ch, 1, fmt, ap);
    va_end(ap);
}

static void drop_links(struct gw_child *ch)
{
    struct gw_redis *r = &ch->redis;
    redisAsyncContext *cmd = r->cmd, *sub = r->sub;
    if (cmd != NULL) {
        link_gone(ch, 0);
        redisAsyncFree(cmd); /* pending pushes are answered unavailable */
    }
    if (sub != NULL) {
        link_gone(ch, 1);
        redisAsyncFree(sub);
    }
    if (cmd != NULL || sub != NULL)
        gw_metric_add(ch->stats, GW_M_REDIS_RECONNECTS, 1);
}

static void on_drop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_child *ch = arg;
    struct gw_redis *r = &ch->redis;
    cm_log(r->drop_quiet ? CM_LOG_DEBUG : CM_LOG_WARN, "redis_reconnect", "%s; reconnecting", r->drop_why);
    drop_links(ch);
    r->drop_pending = 0;
    if (r->drop_then_connect) {
        r->drop_then_connect = 0;
        connect_links(ch);
    } else {
        schedule_retry(ch);
    }
    gw_child_update_ready(ch);
}

/* A link that is not up LINK_TIMEOUT_MS after it was opened is given up. */
static void on_link_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_child *ch = arg;
    struct gw_redis *r = &ch->redis;
    int64_t now = cm_monotonic_ms(), wait_ms = -1;
    int stuck = 0;
    if (r->cmd != NULL && !r->cmd_up) {
        stuck |= now - r->cmd_opened_ms >= LINK_TIMEOUT_MS;
        wait_ms = r->cmd_opened_ms + LINK_TIMEOUT_MS - now;
    }
    if (r->sub != NULL && !r->sub_up) {
        stuck |= now - r->sub_opened_ms >= LINK_TIMEOUT_MS;
        int64_t w = r->sub_opened_ms + LINK_TIMEOUT_MS - now;
        if (wait_ms < 0 || w < wait_ms)
            wait_ms = w;
    }
    if (stuck) {
        char where[CM_REDIS_ADDR_TEXT_MAX];
        cm_redis_addr_format(&r->master, where, sizeof(where));
        request_drop(ch, "Redis at %s did not answer within %d ms", where, LINK_TIMEOUT_MS);
    } else if (wait_ms > 0) {
        struct timeval tv = {(time_t)(wait_ms / 1000), (suseconds_t)((wait_ms % 1000) * 1000)};
        evtimer_add(r->timeout_ev, &tv);
    }
}

static void arm_link_timeout(struct gw_redis *r)
{
    if (r->timeout_ev == NULL || evtimer_pending(r->timeout_ev, NULL))
        return;
    struct timeval tv = {LINK_TIMEOUT_MS / 1000, (LINK_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(r->timeout_ev, &tv);
}

/* An error reply that means the node is no longer our master. */
static int failover_reply(struct gw_child *ch, const redisReply *rep)
{
    if (rep == NULL || rep->type != REDIS_REPLY_ERROR || !cm_redis_error_is_failover(rep->str, rep->len))
        return 0;
    char where[CM_REDIS_ADDR_TEXT_MAX];
    cm_redis_addr_format(&ch->redis.master, where, sizeof(where));
    request_drop(ch, "Redis at %s is no longer a usable master (%s)", where, rep->str);
    return 1;
}

/* ROLE, queued right after connecting: a replica is given up at once. An
 * error reply (ROLE not permitted) proves nothing either way. */
static void on_role(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    redisReply *rep = reply;
    struct gw_child *ch = ac->data;
    struct gw_redis *r = &ch->redis;
    if (rep == NULL || r->drop_pending || (ac != r->cmd && ac != r->sub))
        return;
    char role[32];
    int rc = cm_redis_parse_role(rep, role, sizeof(role));
    if (rc == 0) {
        char where[CM_REDIS_ADDR_TEXT_MAX];
        cm_redis_addr_format(&r->master, where, sizeof(where));
        request_drop(ch, "Redis at %s is a %s, not the master", where, role);
    } else if (rc < 0 && rep->type == REDIS_REPLY_ERROR && !failover_reply(ch, rep)) {
        cm_debug("redis_role", "ROLE refused (%s): the node is taken for a master", rep->str);
    }
}

/* A link counts as up once a PING has an answer: the AUTH, SELECT and ROLE
 * queued ahead of it have then succeeded too. */
static void on_ping(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    redisReply *rep = reply;
    struct gw_child *ch = ac->data;
    struct gw_redis *r = &ch->redis;
    if (rep == NULL || r->drop_pending || (ac != r->cmd && ac != r->sub))
        return; /* the link went down before the answer, or is being dropped */
    if (rep->type == REDIS_REPLY_ERROR) {
        if (!failover_reply(ch, rep)) {
            cm_error("redis_refused", "Redis refused the connection: %s", rep->str);
            redisAsyncDisconnect(ac);
        }
        return;
    }
    if (ac == r->sub) {
        r->sub_up = 1;
    } else {
        r->cmd_up = 1;
        gw_redis_heartbeat(ch);
    }
    if (r->cmd_up && r->sub_up) {
        char where[CM_REDIS_ADDR_TEXT_MAX], was[CM_REDIS_ADDR_TEXT_MAX], down[64] = "";
        cm_redis_addr_format(&r->master, where, sizeof(where));
        cm_backoff_reset(&r->backoff);
        if (r->timeout_ev != NULL)
            evtimer_del(r->timeout_ev);
        if (r->have_last_up && !cm_redis_addr_eq(&r->last_up, &r->master)) {
            cm_redis_addr_format(&r->last_up, was, sizeof(was));
            cm_warn("redis_master_changed", "following the new Redis master %s%s%s (was %s)", where,
                    use_sentinel(ch) ? " of " : "", use_sentinel(ch) ? ch->cfg->redis.master : "", was);
        }
        if (r->down_since_ms > 0)
            snprintf(down, sizeof(down), " after %lld ms without it",
                     (long long)(cm_monotonic_ms() - r->down_since_ms));
        cm_info("redis_connected", "connected to Redis at %s%s", where, down);
        r->last_up = r->master;
        r->have_last_up = 1;
        r->down_since_ms = 0;
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
    if (ac != r->cmd && ac != r->sub)
        return;
    int is_sub = ac == r->sub;
    if (status != REDIS_OK) {
        char where[CM_REDIS_ADDR_TEXT_MAX];
        cm_redis_addr_format(&r->master, where, sizeof(where));
        cm_warn("redis_connect_failed", "Redis at %s (%s link): %s", where, link_name(r, ac), ac->errstr);
        link_gone(ch, is_sub); /* hiredis frees the context after this callback */
        if (use_sentinel(ch))
            request_drop_quiet(ch, "cannot reach the master %s", where);
        else
            schedule_retry(ch);
        gw_child_update_ready(ch);
        return;
    }
    redisAsyncCommand(ac, on_role, NULL, "ROLE");
    redisAsyncCommand(ac, on_ping, NULL, "PING");
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    (void)status;
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct gw_child *ch = ac->data;
    struct gw_redis *r = &ch->redis;
    if (ac != r->cmd && ac != r->sub)
        return; /* let go by us: drop_links or gw_redis_stop did the bookkeeping */
    char where[CM_REDIS_ADDR_TEXT_MAX];
    cm_redis_addr_format(&r->master, where, sizeof(where));
    cm_warn("redis_disconnected", "lost Redis at %s (%s link): %s", where, link_name(r, ac),
            ac->errstr[0] ? ac->errstr : "closed");
    link_gone(ch, ac == r->sub);
    gw_metric_add(ch->stats, GW_M_REDIS_RECONNECTS, 1);
    /* With sentinels the master may have moved: both links go, and the
     * sentinels are asked again. */
    if (use_sentinel(ch))
        request_drop_quiet(ch, "lost the master %s", where);
    else
        schedule_retry(ch);
    gw_child_update_ready(ch);
}

static redisAsyncContext *open_one(struct gw_child *ch, int64_t *opened_ms)
{
    char err[512];
    redisAsyncContext *ac = cm_redis_connect_async_addr(&ch->cfg->redis, &ch->redis.master, err, sizeof(err));
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
    *opened_ms = cm_monotonic_ms();
    return ac;
}

static void connect_links(struct gw_child *ch)
{
    struct gw_redis *r = &ch->redis;
    if (r->drop_pending || r->retry_ev == NULL)
        return; /* the drop connects again; or stopping */
    if (use_sentinel(ch)) {
        if (!r->have_master) {
            if (!r->discovering) {
                r->discovering = 1;
                gw_sentinel_discover(r->sentinel);
            }
            return;
        }
    } else {
        r->master = ch->cfg->redis.addrs[0];
        r->have_master = 1;
    }
    if (r->cmd == NULL)
        r->cmd = open_one(ch, &r->cmd_opened_ms);
    if (r->sub == NULL)
        r->sub = open_one(ch, &r->sub_opened_ms);
    if (r->cmd == NULL || r->sub == NULL)
        schedule_retry(ch);
    if ((r->cmd != NULL && !r->cmd_up) || (r->sub != NULL && !r->sub_up))
        arm_link_timeout(r);
}

/* A sentinel round ended (gateway/sentinel.h). */
static void on_sentinel_found(void *arg, const struct cm_redis_addr *master, const struct cm_redis_addr *from,
                              const char *why)
{
    struct gw_child *ch = arg;
    struct gw_redis *r = &ch->redis;
    r->discovering = 0;
    if (r->have_hint) {
        /* A sentinel announced a switch while this round ran: its answer
         * may predate it. The announcement wins (ROLE checks it anyway). */
        r->have_hint = 0;
        if (master == NULL || !cm_redis_addr_eq(master, &r->hint)) {
            master = &r->hint;
            from = &r->hint_from;
        }
    }
    if (master == NULL) {
        cm_error("redis_sentinel_failed", "%s; retrying", why);
        schedule_retry(ch);
        return;
    }
    char at[CM_REDIS_ADDR_TEXT_MAX], by[CM_REDIS_ADDR_TEXT_MAX];
    cm_redis_addr_format(master, at, sizeof(at));
    cm_redis_addr_format(from, by, sizeof(by));
    if (!r->have_last_up || !cm_redis_addr_eq(master, &r->last_up))
        cm_info("redis_master", "sentinel %s: master %s is at %s", by, ch->cfg->redis.master, at);
    else
        cm_debug("redis_master", "sentinel %s: master %s is at %s", by, ch->cfg->redis.master, at);
    if ((r->cmd != NULL || r->sub != NULL) && !cm_redis_addr_eq(master, &r->master)) {
        request_drop(ch, "the sentinels moved master %s to %s", ch->cfg->redis.master, at);
        return;
    }
    r->master = *master;
    r->have_master = 1;
    connect_links(ch);
}

/* A sentinel says where the master is now (gateway/sentinel.h). */
static void on_sentinel_moved(void *arg, const struct cm_redis_addr *master, const struct cm_redis_addr *from)
{
    struct gw_child *ch = arg;
    struct gw_redis *r = &ch->redis;
    if (r->have_master && cm_redis_addr_eq(master, &r->master))
        return; /* what we already use */
    if (!r->have_master && r->discovering) {
        r->hint = *master; /* a round is asking already: see on_sentinel_found */
        r->hint_from = *from;
        r->have_hint = 1;
        return;
    }
    char at[CM_REDIS_ADDR_TEXT_MAX], by[CM_REDIS_ADDR_TEXT_MAX];
    cm_redis_addr_format(master, at, sizeof(at));
    cm_redis_addr_format(from, by, sizeof(by));
    cm_warn("redis_sentinel_switch", "sentinel %s: master %s is now at %s", by, ch->cfg->redis.master, at);
    if (r->cmd != NULL || r->sub != NULL) {
        request_drop(ch, "the sentinels moved master %s to %s", ch->cfg->redis.master, at);
        r->drop_then_connect = 1;
        return;
    }
    /* Waiting to retry: go there now, the failover is over (ROLE checks
     * the node like any answer). */
    r->master = *master;
    r->have_master = 1;
    if (r->retry_ev != NULL)
        evtimer_del(r->retry_ev);
    connect_links(ch);
}

int gw_redis_start(struct gw_child *ch)
{
    struct gw_redis *r = &ch->redis;
    if (use_cluster(ch))
        return gw_cluster_start(ch);
    cm_backoff_init(&r->backoff, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    r->retry_ev = evtimer_new(ch->base, on_retry, ch);
    r->drop_ev = event_new(ch->base, -1, 0, on_drop, ch);
    r->timeout_ev = evtimer_new(ch->base, on_link_timeout, ch);
    if (r->retry_ev == NULL || r->drop_ev == NULL || r->timeout_ev == NULL)
        return -1;
    if (use_sentinel(ch)) {
        static const struct gw_sentinel_cb cb = {on_sentinel_found, on_sentinel_moved};
        r->sentinel = gw_sentinel_new(ch->base, &ch->cfg->redis, &cb, ch);
        if (r->sentinel == NULL)
            return -1;
    }
    connect_links(ch);
    return 0;
}

void gw_redis_stop(struct gw_child *ch)
{
    struct gw_redis *r = &ch->redis;
    if (r->cluster != NULL) {
        gw_cluster_stop(ch);
        return;
    }
    struct event **evs[] = {&r->retry_ev, &r->drop_ev, &r->timeout_ev};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (*evs[i] != NULL) {
            event_free(*evs[i]);
            *evs[i] = NULL;
        }
    }
    gw_sentinel_free(r->sentinel);
    r->sentinel = NULL;
    /* Clear first: redisAsyncFree runs the disconnect callback. */
    redisAsyncContext *cmd = r->cmd, *sub = r->sub;
    r->cmd = r->sub = NULL;
    r->cmd_up = r->sub_up = 0;
    r->drop_pending = 0;
    if (cmd != NULL)
        redisAsyncFree(cmd);
    if (sub != NULL)
        redisAsyncFree(sub);
}

int gw_redis_ready(const struct gw_child *ch)
{
    if (ch->redis.cluster != NULL)
        return gw_cluster_ready(ch);
    return ch->redis.cmd_up && ch->redis.sub_up;
}

/* The answer of a command: current says it came on the link in use (in
 * cluster mode cluster_link.c has looked at it already). */
static void push_done(struct gw_child *ch, redisReply *rep, void *priv)
{
    struct gw_push_origin *o = priv;
    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        cm_debug("redis_push_failed", "a request may not have reached the queue: %s",
                 rep ? rep->str : "connection lost");
        gw_child_push_failed(ch, o);
    }
    free(o);
}

static void on_push(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *rep = reply;
    struct gw_child *ch = ac->data;
    if (rep != NULL && ac == ch->redis.cmd)
        failover_reply(ch, rep);
    push_done(ch, rep, priv);
}

int gw_redis_push(struct gw_child *ch, const char *user, size_t user_len, const char *data, size_t len,
                  const struct gw_push_origin *origin)
{
    int cluster = ch->redis.cluster != NULL;
    if (!cluster && (!ch->redis.cmd_up || ch->redis.drop_pending))
        return -1;
    struct gw_push_origin *o = malloc(sizeof(*o));
    if (o == NULL)
        return -1;
    *o = *origin;
    char key[CM_KEY_MAX], tag[CM_QUEUE_TAG_MAX];
    unsigned n = (unsigned)ch->cfg->queue_partitions;
    cm_queue_tag(tag, cm_queue_partition(user, user_len, n), n);
    size_t klen = cm_key_queue_in(key, tag, "inbound");
    int rc = cluster ? gw_cluster_command(ch, push_done, o, key, klen, "RPUSH %b %b", key, klen, data, len)
                     : redisAsyncCommand(ch->redis.cmd, on_push, o, "RPUSH %b %b", key, klen, data, len) == REDIS_OK
                           ? 0 : -1;
    if (rc < 0) {
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
    const char *name;
    size_t nlen;
    int message = strcmp(kind->str, "message") == 0;
    const redisReply *payload = r->element[2];
    if (message && payload->type != REDIS_REPLY_STRING)
        return;
    if (cm_key_channel_user(chan->str, chan->len, &name, &nlen)) {
        struct gw_user *u = gw_users_find(ch, name, nlen);
        if (u == NULL)
            return;
        if (message)
            gw_child_deliver(ch, u, payload->str, payload->len);
        else if (strcmp(kind->str, "subscribe") == 0)
            gw_users_on_subscribed(ch, u);
        else if (strcmp(kind->str, "unsubscribe") == 0)
            gw_users_on_unsubscribed(ch, u);
    } else if (cm_key_channel_room(chan->str, chan->len, &name, &nlen)) {
        struct gw_room *room = gw_rooms_find(ch, name, nlen);
        if (room == NULL)
            return;
        if (message)
            gw_rooms_deliver(ch, room, payload->str, payload->len);
        else if (strcmp(kind->str, "subscribe") == 0)
            gw_rooms_on_subscribed(ch, room);
        else if (strcmp(kind->str, "unsubscribe") == 0)
            gw_rooms_on_unsubscribed(ch, room);
    }
}

static void ignore_done(struct gw_child *ch, redisReply *r, void *priv)
{
    (void)ch;
    (void)priv;
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        cm_warn("redis_error", "%s", r->str);
}

static void on_ignore(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    redisReply *r = reply;
    struct gw_child *ch = ac->data;
    if (r != NULL && r->type == REDIS_REPLY_ERROR && (ac != ch->redis.cmd || !failover_reply(ch, r)))
        cm_warn("redis_error", "%s", r->str);
}

/* One command on the key's link that nobody waits for. */
static void send_ignored(struct gw_child *ch, const char *key, const char *fmt, const char *arg, int num)
{
    if (ch->redis.cluster != NULL)
        (void)gw_cluster_command(ch, ignore_done, NULL, key, strlen(key), fmt, key, arg, num);
    else if (ch->redis.cmd_up)
        redisAsyncCommand(ch->redis.cmd, on_ignore, NULL, fmt, key, arg, num);
}

/* SUBSCRIBE to the channels of n ids (channel names from `channel`) in one
 * command (cluster: SSUBSCRIBE, one command per slot); for users, also adds
 * this node to each one's node set. */
static void subscribe_batch(struct gw_child *ch, const char *const *ids, const size_t *lens, size_t n,
                            size_t (*channel)(char *, const char *, size_t), int user_nodes, uint8_t *links)
{
    struct gw_redis *r = &ch->redis;
    for (size_t i = 0; i < n; i++)
        links[i] = GW_LINK_NONE;
    if (r->cluster == NULL && (!r->sub_up || !r->cmd_up))
        return;
    const char **argv = malloc((n + 1) * sizeof(*argv));
    size_t *argvlen = malloc((n + 1) * sizeof(*argvlen));
    char *names = malloc(n * CM_KEY_MAX);
    if (argv != NULL && argvlen != NULL && names != NULL) {
        argv[0] = "SUBSCRIBE";
        argvlen[0] = 9;
        for (size_t i = 0; i < n; i++) {
            argvlen[i + 1] = channel(names + i * CM_KEY_MAX, ids[i], lens[i]);
            argv[i + 1] = names + i * CM_KEY_MAX;
        }
        if (r->cluster != NULL) {
            gw_cluster_subscribe(ch, argv + 1, argvlen + 1, n, links);
        } else if (redisAsyncCommandArgv(r->sub, on_sub_reply, NULL, (int)(n + 1), argv, argvlen) == REDIS_OK) {
            for (size_t i = 0; i < n; i++)
                links[i] = 0;
        }
        for (size_t i = 0; user_nodes && i < n; i++) {
            if (links[i] == GW_LINK_NONE)
                continue;
            char nodes[CM_KEY_MAX];
            cm_key_user(nodes, ids[i], "nodes");
            send_ignored(ch, nodes, "SADD %s %s", ch->node, 0);
        }
    }
    free(argv);
    free(argvlen);
    free(names);
}

void gw_redis_subscribe(struct gw_child *ch, const char *const *users, const size_t *lens, size_t n, uint8_t *links)
{
    subscribe_batch(ch, users, lens, n, cm_key_user_channel, 1, links);
}

int gw_redis_unsubscribe(struct gw_child *ch, const char *user, size_t len, uint8_t link)
{
    struct gw_redis *r = &ch->redis;
    char chan[CM_KEY_MAX], nodes[CM_KEY_MAX];
    size_t clen = cm_key_user_channel(chan, user, len);
    cm_key_user(nodes, user, "nodes");
    send_ignored(ch, nodes, "SREM %s %s", ch->node, 0);
    if (r->cluster != NULL)
        return gw_cluster_unsubscribe(ch, chan, clen, link);
    if (!r->sub_up)
        return -1;
    return redisAsyncCommand(r->sub, on_sub_reply, NULL, "UNSUBSCRIBE %b", chan, clen) == REDIS_OK ? 0 : -1;
}

void gw_redis_heartbeat(struct gw_child *ch)
{
    char key[CM_KEY_MAX];
    cm_key_node_alive(key, ch->node);
    send_ignored(ch, key, "SET %s %s EX %d", "1", NODE_TTL_S);
}

void gw_redis_subscribe_rooms(struct gw_child *ch, const char *const *convs, const size_t *lens, size_t n,
                              uint8_t *links)
{
    subscribe_batch(ch, convs, lens, n, cm_key_conv_channel, 0, links);
}

int gw_redis_unsubscribe_room(struct gw_child *ch, const char *conv, size_t len, uint8_t link)
{
    struct gw_redis *r = &ch->redis;
    char chan[CM_KEY_MAX];
    size_t clen = cm_key_conv_channel(chan, conv, len);
    if (r->cluster != NULL)
        return gw_cluster_unsubscribe(ch, chan, clen, link);
    if (!r->sub_up)
        return -1;
    return redisAsyncCommand(r->sub, on_sub_reply, NULL, "UNSUBSCRIBE %b", chan, clen) == REDIS_OK ? 0 : -1;
}

/* What a read on the command link is for, until its answer. */
struct read_for {
    uint32_t id;
    uint8_t len;
    char name[CM_CONV_MAX + 1];
};

/* A read for name, or NULL when the command link is not up (cluster: the
 * key's master is checked when sending). */
static struct read_for *read_begin(struct gw_child *ch, const char *name, size_t len, uint32_t id)
{
    if (ch->redis.cluster == NULL && (!ch->redis.cmd_up || ch->redis.drop_pending))
        return NULL;
    struct read_for *f = malloc(sizeof(*f));
    if (f == NULL || len > CM_CONV_MAX) {
        free(f);
        return NULL;
    }
    f->id = id;
    f->len = (uint8_t)len;
    memcpy(f->name, name, len);
    f->name[len] = '\0';
    return f;
}

/* Sends "cmd key" with f for done (or, plain and sentinel, the hiredis
 * callback cb); f is freed when that fails. 0 or -1. */
static int read_send(struct gw_child *ch, gw_cluster_cb *done, redisCallbackFn *cb, struct read_for *f,
                     const char *cmd, const char *key)
{
    int rc = ch->redis.cluster != NULL
                 ? gw_cluster_command(ch, done, f, key, strlen(key), "%s %s", cmd, key)
                 : redisAsyncCommand(ch->redis.cmd, cb, f, "%s %s", cmd, key) == REDIS_OK ? 0 : -1;
    if (rc < 0)
        free(f);
    return rc;
}

static void rooms_done(struct gw_child *ch, redisReply *rep, void *priv)
{
    struct read_for *f = priv;
    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        if (rep != NULL)
            cm_warn("redis_error", "reading %s's rooms: %s", f->name,
                    rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        gw_rooms_on_loaded(ch, f->name, f->len, f->id, NULL, NULL, 0);
        free(f);
        return;
    }
    const char **members = malloc((rep->elements + 1) * sizeof(*members));
    size_t *lens = malloc((rep->elements + 1) * sizeof(*lens));
    size_t n = 0;
    for (size_t i = 0; members != NULL && lens != NULL && i < rep->elements; i++) {
        if (rep->element[i]->type == REDIS_REPLY_STRING) {
            members[n] = rep->element[i]->str;
            lens[n++] = rep->element[i]->len;
        }
    }
    if (members != NULL && lens != NULL)
        gw_rooms_on_loaded(ch, f->name, f->len, f->id, members, lens, n);
    else
        gw_rooms_on_loaded(ch, f->name, f->len, f->id, NULL, NULL, 0);
    free(members);
    free(lens);
    free(f);
}

static void on_rooms(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *rep = reply;
    struct gw_child *ch = ac->data;
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && (ac != ch->redis.cmd || failover_reply(ch, rep))) {
        gw_rooms_on_loaded(ch, ((struct read_for *)priv)->name, ((struct read_for *)priv)->len,
                           ((struct read_for *)priv)->id, NULL, NULL, 0);
        free(priv);
        return;
    }
    rooms_done(ch, rep, priv);
}

int gw_redis_load_rooms(struct gw_child *ch, const char *user, size_t len, uint32_t id)
{
    struct read_for *f = read_begin(ch, user, len, id);
    if (f == NULL)
        return -1;
    char key[CM_KEY_MAX];
    cm_key_user(key, f->name, "rooms");
    return read_send(ch, rooms_done, on_rooms, f, "SMEMBERS", key);
}

static void room_seq_done(struct gw_child *ch, redisReply *rep, void *priv)
{
    struct read_for *f = priv;
    long long value = -1;
    if (rep != NULL && rep->type == REDIS_REPLY_STRING)
        value = strtoll(rep->str, NULL, 10);
    else if (rep != NULL && rep->type == REDIS_REPLY_NIL)
        value = 0;
    else if (rep != NULL)
        cm_warn("redis_error", "reading the seq of %s: %s", f->name,
                rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    gw_rooms_on_seq(ch, f->name, f->len, value);
    free(f);
}

static void on_room_seq(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *rep = reply;
    struct gw_child *ch = ac->data;
    struct read_for *f = priv;
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && (ac != ch->redis.cmd || failover_reply(ch, rep))) {
        gw_rooms_on_seq(ch, f->name, f->len, -1);
        free(f);
        return;
    }
    room_seq_done(ch, rep, priv);
}

int gw_redis_room_seq(struct gw_child *ch, const char *conv, size_t len)
{
    struct read_for *f = read_begin(ch, conv, len, 0);
    if (f == NULL)
        return -1;
    char key[CM_KEY_MAX];
    cm_key_conv(key, f->name, "seq");
    return read_send(ch, room_seq_done, on_room_seq, f, "GET", key);
}
