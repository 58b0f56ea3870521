/* cluster.h: what both programs need to talk to a Redis Cluster: the hash
 * slot of a key, the slot map (which master serves which slots), MOVED/ASK
 * redirections, and the queue partitions.
 *
 * A single Redis (redis://, or the master a sentinel names) is a cluster of
 * one node that serves every slot: cm_slot_map_single(). So callers route
 * every command through one map, whatever the URL scheme.
 *
 * Queue partitions (--queue-partitions N): the permanent queues are N
 * independent sets of keys, chatmi:{<tag>}:inbound and so on, one hash tag
 * per partition. N = 1 keeps the tag "q" (chatmi:{q}:inbound, the layout of
 * a single-queue deployment). For N > 1, partition p's tag is "q<p>.<k>"
 * with the smallest k >= 0 whose slot falls in the p-th of N equal slot
 * ranges. redis-cli --cluster create and ElastiCache both give M masters
 * M equal contiguous slot ranges, so when N is a multiple of M every master
 * holds N / M partitions (bare tags {q0}, {q1}, ... land where CRC16 puts
 * them: 8 of them can leave a master of 3 with none). A user's requests
 * always go to partition crc16(user) mod N, so their order holds. */
#ifndef CHATMI_COMMON_CLUSTER_H
#define CHATMI_COMMON_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include "common/redis_url.h"

#define CM_SLOTS 16384
#define CM_CLUSTER_NODES_MAX 128 /* masters one map can name */
#define CM_QUEUE_PARTITIONS_MAX 256
#define CM_QUEUE_TAG_MAX 16
#define CM_NODE_ID_MAX 40

/* CRC16-CCITT (XMODEM), the checksum Redis Cluster uses. */
uint16_t cm_crc16(const void *buf, size_t len);

/* The hash slot of a key or shard channel: CRC16 of the text between the
 * first '{' and the next '}' when that is not empty, of the whole key
 * otherwise; mod 16384. */
unsigned cm_key_slot(const char *key, size_t len);

struct cm_cluster_node {
    struct cm_redis_addr addr;
    char id[CM_NODE_ID_MAX + 1]; /* "" when unknown (a single node) */
};

#define CM_SLOT_NONE UINT16_MAX

/* Which master serves each slot. 32 KiB plus the node table: keep one per
 * process (or per worker lane), not per request. */
struct cm_slot_map {
    uint16_t owner[CM_SLOTS];       /* index into node[], or CM_SLOT_NONE */
    struct cm_cluster_node node[CM_CLUSTER_NODES_MAX];
    size_t nnodes;
};

/* One node serving all slots (plain redis:// and sentinel). */
void cm_slot_map_single(struct cm_slot_map *m, const struct cm_redis_addr *addr);

/* Fills m from a CLUSTER SLOTS reply. asked is the node the command went
 * to: an empty or "?" host in the reply means that node's host. 0, or -1
 * with a message in err (m is then unusable) when the reply is not a slot
 * map or names more than CM_CLUSTER_NODES_MAX masters. Uncovered slots are
 * CM_SLOT_NONE. */
int cm_slot_map_parse(struct cm_slot_map *m, const redisReply *r, const struct cm_redis_addr *asked,
                      char *err, size_t errlen);

/* The node serving slot, or NULL when none does. */
const struct cm_cluster_node *cm_slot_map_node(const struct cm_slot_map *m, unsigned slot);
/* The index in node[] of addr, or -1. */
int cm_slot_map_find(const struct cm_slot_map *m, const struct cm_redis_addr *addr);
/* Slots not served by any node. */
size_t cm_slot_map_uncovered(const struct cm_slot_map *m);

/* A MOVED or ASK error ("MOVED 3999 127.0.0.1:6381"). */
enum cm_redirect { CM_REDIRECT_NONE = 0, CM_REDIRECT_MOVED, CM_REDIRECT_ASK };
/* The redirection an error reply's text asks for, with its slot and
 * target; CM_REDIRECT_NONE when the text is no (well-formed) redirection. */
enum cm_redirect cm_redirect_parse(const char *err, size_t len, unsigned *slot, struct cm_redis_addr *to);

/* Partition p's hash tag (without braces) for n partitions into out
 * (CM_QUEUE_TAG_MAX); 1 <= n <= CM_QUEUE_PARTITIONS_MAX, p < n. */
void cm_queue_tag(char *out, unsigned p, unsigned n);
/* The partition a user's requests go to. */
unsigned cm_queue_partition(const char *user, size_t len, unsigned n);

#endif
