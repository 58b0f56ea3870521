/* redis_link.h: what a gateway child asks of Redis, on its libevent loop:
 * queue pushes, subscriptions to the per-user and room channels, the reads
 * a session needs (a user's rooms, a room's seq) and the node's liveness.
 *
 * Every URL scheme goes through one engine, gateway/cluster_link.h: per
 * master, a command link and a subscription link; commands routed by their
 * key's slot over a slot map. A cluster (redis+cluster://) reads its map
 * with CLUSTER SLOTS and subscribes with SSUBSCRIBE; one Redis is a cluster
 * of one node serving every slot, its map the URL's address
 * (redis://host:port, the name resolved again at every connect, so a DNS
 * endpoint that moves is followed) or the master the sentinels name
 * (redis+sentinel://, asked again after every loss, and told by
 * +switch-master), subscribed with SUBSCRIBE. A channel's subscription
 * lives on one link (GW_LINK_NONE: none); the links' rules are in
 * cluster_link.h. */
#ifndef CHATMI_GATEWAY_REDIS_LINK_H
#define CHATMI_GATEWAY_REDIS_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "common/ids.h"

struct gw_child;
struct gw_cluster;

#define GW_LINK_NONE 0xff /* a channel not subscribed on any link */

struct gw_redis {
    struct gw_cluster *cluster; /* the links (cluster_link.h); NULL before start and after stop */
};

/* Starts connecting (never blocks: sentinels are asked on the loop too).
 * 0, or -1 when out of memory. */
int gw_redis_start(struct gw_child *ch);
/* Closes everything; pushes still unconfirmed are answered unavailable. */
void gw_redis_stop(struct gw_child *ch);
/* Every slot served, and every master's two links up. */
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
 * GW_LINK_NONE when it could not be sent (the channel's master is down). Unsubscribe goes to the link the channel
 * is on; -1 when that link is down. */
void gw_redis_subscribe(struct gw_child *ch, const char *const *users, const size_t *lens, size_t n, uint8_t *links);
int gw_redis_unsubscribe(struct gw_child *ch, const char *user, size_t len, uint8_t link);

/* The same for room channels (rooms.h): many rooms per command,
 * UNSUBSCRIBE of one. */
void gw_redis_subscribe_rooms(struct gw_child *ch, const char *const *convs, const size_t *lens, size_t n,
                              uint8_t *links);
int gw_redis_unsubscribe_room(struct gw_child *ch, const char *conv, size_t len, uint8_t link);

/* Reads the user's rooms set; the answer goes to gw_rooms_on_loaded with
 * id. And reads a room's seq for gw_rooms_on_seq. 0, or -1 when the key's
 * master is not up (no callback then). */
int gw_redis_load_rooms(struct gw_child *ch, const char *user, size_t len, uint32_t id);
int gw_redis_room_seq(struct gw_child *ch, const char *conv, size_t len);

/* SET the node's alive key (every few seconds). */
void gw_redis_heartbeat(struct gw_child *ch);

#endif
