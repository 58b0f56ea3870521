/* keys.h: every Redis key and channel name chatmi uses, in one place.
 *
 * Layout (docs/architecture.md explains lifetimes and who reads/writes):
 * every key of one conversation shares the hash tag {c:<conv>}, every key of
 * one user {u:<user>}, the queues {q}; so each command touches one slot and a
 * Redis Cluster later is a routing change.
 *
 *   chatmi:{c:<conv>}:seq                string  last seq (INCR)
 *   chatmi:{c:<conv>}:log                zset    score seq, member packed message
 *   chatmi:{c:<conv>}:members            set     room members
 *   chatmi:{c:<conv>}:idem:<user>:<id>   string  packed ack of an accepted send (EX idempotency TTL)
 *   chatmi:{c:<conv>}:fanned             string  bitmap ring: fan-out parts already published
 *   chatmi:{c:room:<name>}               channel per-room delivery channel (gateways with members subscribe)
 *   chatmi:{u:<user>}:convs              set     conversations the user is in
 *   chatmi:{u:<user>}:rooms              set     rooms the user is a member of (read by gateways)
 *   chatmi:{u:<user>}:nodes              set     gateway nodes holding a session of the user
 *   chatmi:{u:<user>}                    channel per-user delivery channel
 *   chatmi:{n:<node>}:alive              string  node liveness (EX node TTL)
 *   chatmi:{q}:inbound                   list    gateway -> worker ingest
 *   chatmi:{q}:fanout                    list    ingest -> fan-out
 *   chatmi:{q}:inbound:proc:<worker>     list    in-flight ingest work of one worker
 *   chatmi:{q}:fanout:proc:<worker>      list    in-flight fan-out work of one worker
 *   chatmi:{q}:workers                   zset    worker id -> heartbeat deadline (ms)
 *   chatmi:{q}:dead                      list    poison envelopes with their reason
 *
 * With --queue-partitions N > 1 every {q} key exists once per partition,
 * with the partition's tag instead of q (common/cluster.h: {q<p>.<k>}).
 *
 * Each function writes the NUL-terminated name into out (size CM_KEY_MAX)
 * and returns its length; arguments are trusted to be valid ids. */
#ifndef CHATMI_COMMON_KEYS_H
#define CHATMI_COMMON_KEYS_H

#include <stddef.h>

#define CM_KEY_PREFIX "chatmi"
#define CM_KEY_MAX 512

size_t cm_key_conv(char *out, const char *conv, const char *suffix);          /* chatmi:{c:<conv>}:<suffix> */
size_t cm_key_idem(char *out, const char *conv, const char *user, const char *id, size_t idlen);
size_t cm_key_user(char *out, const char *user, const char *suffix);          /* chatmi:{u:<user>}:<suffix> */
size_t cm_key_user_channel(char *out, const char *user, size_t userlen);      /* chatmi:{u:<user>} */
size_t cm_key_conv_channel(char *out, const char *conv, size_t convlen);     /* chatmi:{c:<conv>} */
size_t cm_key_node_alive(char *out, const char *node);                       /* chatmi:{n:<node>}:alive */
size_t cm_key_queue(char *out, const char *name);                            /* chatmi:{q}:<name> */
size_t cm_key_queue_proc(char *out, const char *name, const char *worker);   /* chatmi:{q}:<name>:proc:<worker> */
/* The same in the queue partition whose tag is tag (cm_queue_tag). */
size_t cm_key_queue_in(char *out, const char *tag, const char *name);       /* chatmi:{<tag>}:<name> */
size_t cm_key_queue_proc_in(char *out, const char *tag, const char *name, const char *worker);

/* Extracts the user from a per-user channel name; 0 when it is not one.
 * The result points into channel (not NUL terminated). */
int cm_key_channel_user(const char *channel, size_t len, const char **user, size_t *userlen);
/* Extracts the room conversation ("room:<name>") from a per-room channel
 * name; 0 when it is not one. */
int cm_key_channel_room(const char *channel, size_t len, const char **conv, size_t *convlen);

#endif
