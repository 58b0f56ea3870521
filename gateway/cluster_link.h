/* cluster_link.h: a gateway child's links to Redis, for every URL scheme
 * (behind redis_link.h's API). A single Redis is a cluster of one node
 * serving every slot, so one code path serves all three:
 *
 *   - The slot map: redis+cluster:// reads CLUSTER SLOTS on a short-lived
 *     connection to the masters of the last map, then to the URL's seeds,
 *     the first that answers; redis:// is the URL's address (its name
 *     resolved again at every connect); redis+sentinel:// is the master the
 *     sentinels name (gateway/sentinel.h: asked again after any loss, and
 *     +switch-master applies a new map at once). The map is looked up again
 *     after any link loss, any redirection, any channel Redis drops, and
 *     while not every node is up, with capped backoff.
 *   - Per master: a command link (hiredis async) and a subscription link
 *     (our own non-blocking socket read with a redisReader: hiredis 0.14's
 *     async layer does not know SSUBSCRIBE's replies; gateway/ssub.h). Each
 *     link has an id 0..254, stable while its master is in the map, which
 *     users and rooms keep for their channel (GW_LINK_NONE: none).
 *   - Commands go to the master of their key's slot; MOVED is followed
 *     (and the map read again), ASK with ASKING, TRYAGAIN and CLUSTERDOWN
 *     retried with backoff; a command lost with its link is answered with
 *     a NULL reply (a push: `unavailable`).
 *   - Channels: SSUBSCRIBE grouped by slot on a cluster, one SUBSCRIBE on
 *     one Redis. A lost subscription link, an unsolicited sunsubscribe (the
 *     slot moved) or a master that changed puts exactly the channels it
 *     held back to NONE (gw_users_on_lost, gw_rooms_on_lost: their sessions
 *     get a resync once subscribed again); they are subscribed again where
 *     the new map says.
 *   - One Redis must be a master: ROLE is asked before the command link's
 *     PING, and a replica, or a reply such as READONLY or LOADING, gives
 *     the node up: both links closed, the master looked up again.
 *
 * Ready (gw_redis_ready, /readyz) means: a map where every slot is served,
 * and the command and subscription links of every master in it up. */
#ifndef CHATMI_GATEWAY_CLUSTER_LINK_H
#define CHATMI_GATEWAY_CLUSTER_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

struct gw_child;

/* A command's answer: reply NULL when the command was lost with its link
 * or could not be routed after redirections and retries. The reply is
 * freed after the call. */
typedef void gw_cluster_cb(struct gw_child *ch, redisReply *reply, void *priv);

/* 0, or -1 when out of memory. Never blocks. */
int gw_cluster_start(struct gw_child *ch);
/* Closes every link; commands in flight get their NULL answer. */
void gw_cluster_stop(struct gw_child *ch);
int gw_cluster_ready(const struct gw_child *ch);

/* Sends the command (hiredis format) to the master of key's slot. 0, or
 * -1 (cb never called) when that master's command link is not up. */
int gw_cluster_command(struct gw_child *ch, gw_cluster_cb *cb, void *priv, const char *key, size_t keylen,
                       const char *fmt, ...);

/* SSUBSCRIBE n channels, one command per slot, on their masters'
 * subscription links; links[k]: the link the k-th went to, or
 * GW_LINK_NONE when its master's link is not up. */
void gw_cluster_subscribe(struct gw_child *ch, const char *const *chans, const size_t *lens, size_t n,
                          uint8_t *links);
/* SUNSUBSCRIBE a channel on the link it is on. 0, or -1 when that link is
 * not up (the subscription died with it). */
int gw_cluster_unsubscribe(struct gw_child *ch, const char *chan, size_t len, uint8_t link);

#endif
