/* redis.h: connecting to Redis as --redis-url says, for the blocking
 * (worker) and the libevent-driven (gateway) sides, and reading the replies
 * that tell a client its node is no longer the master.
 *
 * Ownership: the caller owns the returned context and frees it with
 * redisFree / redisAsyncFree (never from inside one of its callbacks). */
#ifndef CHATMI_COMMON_REDIS_H
#define CHATMI_COMMON_REDIS_H

#include <stddef.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "common/redis_url.h"

/* Connects (blocking, connect and command timeout timeout_ms) to the data
 * node a, then AUTH and SELECT as u says, then checks with ROLE that the
 * node is a master (a node that refuses ROLE, for instance an ACL user
 * without the permission, is taken at its word). NULL on failure, err set. */
redisContext *cm_redis_connect_addr(const struct cm_redis_url *u, const struct cm_redis_addr *a, int timeout_ms,
                                    char *err, size_t errlen);
/* The same without the ROLE check: any node, master or replica (a Redis
 * Cluster seed, asked for CLUSTER SLOTS). */
redisContext *cm_redis_connect_node(const struct cm_redis_url *u, const struct cm_redis_addr *a, int timeout_ms,
                                    char *err, size_t errlen);

/* Connects to the master as u says: redis:// its one host (a name is
 * resolved again at every call, so a DNS endpoint that moved, like an
 * ElastiCache primary endpoint, is followed); redis+sentinel:// the address
 * the sentinels give (common/sentinel.h; *sentinel_next carries the order
 * of asking between calls, see cm_sentinel_discover). where (may be NULL)
 * gets the address connected to. redis+cluster:// is not supported. NULL on
 * failure, err set. */
redisContext *cm_redis_connect(const struct cm_redis_url *u, int timeout_ms, size_t *sentinel_next,
                               struct cm_redis_addr *where, char *err, size_t errlen);

/* Starts a non-blocking connect to the data node a and queues AUTH/SELECT
 * ahead of anything the caller sends; a refused AUTH or SELECT disconnects
 * (the disconnect callback sees the reason in ac->errstr). The caller
 * attaches it to its event loop (redisLibeventAttach) and sets the
 * connect/disconnect callbacks. NULL on immediate failure. */
redisAsyncContext *cm_redis_connect_async_addr(const struct cm_redis_url *u, const struct cm_redis_addr *a, char *err,
                                               size_t errlen);

/* 1 when reply is an error reply or NULL. */
int cm_redis_reply_failed(const redisReply *r);

/* The ROLE reply: 1 when the node is a master, 0 when it is something else
 * (its role, "slave" or "sentinel", copied into role), -1 when the reply is
 * an error or not understood. */
int cm_redis_parse_role(const redisReply *r, char *role, size_t rolelen);

/* 1 when an error reply (its text, without the leading '-') means this node
 * cannot serve as our master now, so the client must reconnect and, with
 * sentinels, look for the master again: READONLY (a replica), LOADING
 * (loading its data set after a restart), MASTERDOWN (a replica cut off
 * from its master), UNBLOCKED (a blocking command ended by a role change). */
int cm_redis_error_is_failover(const char *s, size_t len);

#endif
