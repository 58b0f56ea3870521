/* redis_link.h: a gateway child's two Redis connections on its libevent
 * loop: `cmd` (queue pushes, presence sets, node liveness) and `sub` (the
 * per-user channels). Both reconnect with capped exponential backoff and
 * jitter; while either is down the child is not ready.
 *
 * Both always go to the master, wherever it is now:
 *   - redis://host:port: that host (the name is resolved again at every
 *     connect, so a DNS endpoint that moves, like an ElastiCache primary
 *     endpoint, is followed);
 *   - redis+sentinel://: the address the sentinels give (gateway/sentinel.h),
 *     asked again after every loss.
 * A link counts as up once ROLE says master (a node that refuses ROLE is
 * taken at its word) and PING answers. Both links are dropped and made
 * again when a reply says the node is no longer a usable master (READONLY,
 * LOADING, ...; common/redis.h), when the links do not come up in time, and,
 * with sentinels, when either link is lost or a sentinel announces that the
 * master moved (+switch-master). Re-subscribing every local user after a
 * reconnect is gw_users_link_up's job.
 *
 * redis+cluster:// goes through gateway/cluster_link.h instead (chosen by
 * the URL scheme behind this same API): a command link and a subscription
 * link per master, commands routed by slot, SSUBSCRIBE for the channels.
 * A channel's subscription lives on one link (GW_LINK_NONE: none); plain
 * and sentinel mode have one link, 0. */
#ifndef CHATMI_GATEWAY_REDIS_LINK_H
#define CHATMI_GATEWAY_REDIS_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis/async.h>

#include "common/backoff.h"
#include "common/ids.h"
#include "common/redis_url.h"

struct gw_child;
struct gw_cluster;
struct gw_sentinel;

#define GW_LINK_NONE 0xff /* a channel not subscribed on any link */
struct event;

struct gw_redis {
    redisAsyncContext *cmd;   /* NULL while disconnected */
    redisAsyncContext *sub;
    int cmd_up, sub_up;       /* connected, ROLE and PING answered */
    struct cm_backoff backoff;
    struct event *retry_ev;   /* the next connect attempt */
    struct event *drop_ev;    /* drops both links from the loop (never inside a hiredis callback) */
    struct event *timeout_ev; /* the links must be up by then */
    int drop_pending;         /* drop_ev is active: ignore what the doomed links answer */
    int drop_quiet;           /* its reason was logged already */
    int64_t cmd_opened_ms, sub_opened_ms; /* monotonic: when each link was opened */
    char drop_why[256];

    struct gw_sentinel *sentinel; /* redis+sentinel:// only */
    int discovering;          /* a sentinel round is running */
    struct cm_redis_addr master; /* where the links go (sentinel: the last answer) */
    int have_master;          /* 0: ask the sentinels before connecting */
    struct cm_redis_addr hint, hint_from; /* announced (+switch-master) while a round ran, and by whom */
    int have_hint;
    int drop_then_connect;    /* the drop reconnects at once (the failover is over) */
    struct cm_redis_addr last_up; /* the master of the last time both links were up */
    int have_last_up;
    int64_t down_since_ms;    /* monotonic: when the links last stopped being both up; 0 while up */

    struct gw_cluster *cluster; /* redis+cluster:// only (cluster_link.h) */
};

/* Starts connecting (never blocks: sentinels are asked on the loop too).
 * 0, or -1 when out of memory. */
int gw_redis_start(struct gw_child *ch);
/* Closes everything; pushes still unconfirmed are answered unavailable. */
void gw_redis_stop(struct gw_child *ch);
/* Both links up (cluster: every slot served, and every master's two
 * links up). */
int gw_redis_ready(const struct gw_child *ch);

/* Who sent a pushed request, so that a push lost with the link can be
 * answered: the session (fd and generation) and the request id. */
struct gw_push_origin {
    int fd;
    uint32_t gen;
    uint8_t idlen;            /* 0: the request had no readable id */
    char id[CM_REQ_ID_MAX];
};

/* RPUSH an envelope of user to the inbound queue (the user's partition
 * with --queue-partitions: common/cluster.h). -1 when the link is down. If the
 * link fails before Redis confirms the push, the origin session (when still
 * open) is answered `unavailable` with the request's id: the request may or
 * may not be queued, and a retry with the same id is safe either way. */
int gw_redis_push(struct gw_child *ch, const char *user, size_t user_len, const char *data, size_t len,
                  const struct gw_push_origin *origin);

/* SUBSCRIBE / UNSUBSCRIBE channels, and SADD/SREM this node in each user's
 * nodes set. links[k] gets the link the k-th channel's SUBSCRIBE went to,
 * GW_LINK_NONE when it could not be sent (the link, or in cluster mode
 * the slot's master, is down). Unsubscribe goes to the link the channel
 * is on; -1 when that link is down. */
void gw_redis_subscribe(struct gw_child *ch, const char *const *users, const size_t *lens, size_t n, uint8_t *links);
int gw_redis_unsubscribe(struct gw_child *ch, const char *user, size_t len, uint8_t link);

/* The same for room channels (rooms.h): SUBSCRIBE of many rooms in one
 * command, UNSUBSCRIBE of one. */
void gw_redis_subscribe_rooms(struct gw_child *ch, const char *const *convs, const size_t *lens, size_t n,
                              uint8_t *links);
int gw_redis_unsubscribe_room(struct gw_child *ch, const char *conv, size_t len, uint8_t link);

/* Reads the user's rooms set; the answer goes to gw_rooms_on_loaded with
 * id. And reads a room's seq for gw_rooms_on_seq. 0, or -1 when the command
 * link is not up (no callback then). */
int gw_redis_load_rooms(struct gw_child *ch, const char *user, size_t len, uint32_t id);
int gw_redis_room_seq(struct gw_child *ch, const char *conv, size_t len);

/* SET the node's alive key (every few seconds). */
void gw_redis_heartbeat(struct gw_child *ch);

#endif
