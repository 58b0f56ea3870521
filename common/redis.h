/* redis.h: connecting to Redis as --redis-url says, for the blocking
 * (worker) and the libevent-driven (gateway) sides.
 *
 * Ownership: the caller owns the returned context and frees it with
 * redisFree / redisAsyncFree (never from inside one of its callbacks). */
#ifndef CHATMI_COMMON_REDIS_H
#define CHATMI_COMMON_REDIS_H

#include <stddef.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "common/redis_url.h"

/* Connects (blocking, connect and command timeout timeout_ms), then AUTH
 * and SELECT as the URL says. Only CM_REDIS_PLAIN is supported in this
 * version; other kinds fail with a message. NULL on failure, err set. */
redisContext *cm_redis_connect(const struct cm_redis_url *u, int timeout_ms, char *err, size_t errlen);

/* Starts a non-blocking connect and queues AUTH/SELECT ahead of anything the
 * caller sends. The caller attaches it to its event loop (redisLibeventAttach)
 * and sets the connect/disconnect callbacks. NULL on immediate failure. */
redisAsyncContext *cm_redis_connect_async(const struct cm_redis_url *u, char *err, size_t errlen);

/* 1 when reply is an error reply or NULL. */
int cm_redis_reply_failed(const redisReply *r);

#endif
