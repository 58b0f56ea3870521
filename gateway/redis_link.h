/* redis_link.h: a gateway child's two Redis connections on its libevent
 * loop: `cmd` (queue pushes, presence sets, node liveness) and `sub` (the
 * per-user channels). Both reconnect with capped exponential backoff and
 * jitter; while either is down the child is not ready. */
#ifndef CHATMI_GATEWAY_REDIS_LINK_H
#define CHATMI_GATEWAY_REDIS_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis/async.h>

#include "common/ids.h"

struct gw_child;
struct event;

struct gw_redis {
    redisAsyncContext *cmd;   /* NULL while disconnected */
    redisAsyncContext *sub;
    int cmd_up, sub_up;       /* connected */
    int64_t backoff_ms;
    struct event *retry_ev;
};

int gw_redis_start(struct gw_child *ch);
void gw_redis_stop(struct gw_child *ch);
int gw_redis_ready(const struct gw_child *ch);

/* Who sent a pushed request, so that a push lost with the link can be
 * answered: the session (fd and generation) and the request id. */
struct gw_push_origin {
    int fd;
    uint32_t gen;
    uint8_t idlen;            /* 0: the request had no readable id */
    char id[CM_REQ_ID_MAX];
};

/* RPUSH an envelope to the inbound queue. -1 when the link is down. If the
 * link fails before Redis confirms the push, the origin session (when still
 * open) is answered `unavailable` with the request's id: the request may or
 * may not be queued, and a retry with the same id is safe either way. */
int gw_redis_push(struct gw_child *ch, const char *data, size_t len, const struct gw_push_origin *origin);

/* SUBSCRIBE / UNSUBSCRIBE channels, and SADD/SREM this node in each user's
 * nodes set. -1 when the link is down. */
int gw_redis_subscribe(struct gw_child *ch, const char *const *users, const size_t *lens, size_t n);
int gw_redis_unsubscribe(struct gw_child *ch, const char *user, size_t len);

/* SET the node's alive key (every few seconds). */
void gw_redis_heartbeat(struct gw_child *ch);

#endif
