/* sentinel.h: Redis Sentinel for redis+sentinel:// URLs: asking the
 * sentinels where the master is, and reading their +switch-master
 * announcements. The blocking calls are for the worker; the gateway's
 * non-blocking version (gateway/sentinel.c) shares the reply parsers.
 *
 * Sentinels are asked without credentials. A sentinel that answers NOAUTH
 * is asked again after AUTH with the URL's user and password: the usual
 * set-up gives the sentinels the data nodes' password (`requirepass` in
 * sentinel.conf). Nothing here logs. */
#ifndef CHATMI_COMMON_SENTINEL_H
#define CHATMI_COMMON_SENTINEL_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "common/redis_url.h"

/* Connect, then reply, each at most this long per sentinel: a dead or
 * unreachable sentinel costs one second before the next is asked. */
#define CM_SENTINEL_TIMEOUT_MS 1000

/* The channel of the sentinels' failover announcements. */
#define CM_SENTINEL_SWITCH_CHANNEL "+switch-master"

/* The reply of SENTINEL get-master-addr-by-name <master>: [ip, port].
 * 0 with *out set, or -1 with a message in err (a nil reply: the sentinel
 * does not monitor that name; an error reply; anything malformed). */
int cm_sentinel_parse_addr(const redisReply *r, const char *master, struct cm_redis_addr *out, char *err,
                           size_t errlen);

/* A message of the +switch-master channel: ["message", "+switch-master",
 * "<name> <old-ip> <old-port> <new-ip> <new-port>"]. 1 when it announces a
 * new address for master (*to set), 0 for anything else (another master,
 * a subscribe confirmation, a malformed payload). */
int cm_sentinel_parse_switch(const redisReply *r, const char *master, struct cm_redis_addr *to);

/* 1 when r is a NOAUTH error (the server wants a password). */
int cm_redis_reply_is_noauth(const redisReply *r);

/* Blocking discovery: asks the URL's sentinels for the master's address,
 * one after the other, each with timeout_ms for connect and reply, starting
 * with sentinel *next. On success *next becomes the sentinel that answered
 * (asked first next time), *master its answer and *from (may be NULL) its
 * address. When none answers, *next moves on by one and err lists each
 * sentinel's failure. 0 or -1. The address is not checked here: the caller
 * connects and verifies the node's ROLE. */
int cm_sentinel_discover(const struct cm_redis_url *u, int timeout_ms, size_t *next, struct cm_redis_addr *master,
                         struct cm_redis_addr *from, char *err, size_t errlen);

/* Blocking: connects to sentinel u->addrs[idx] and subscribes to
 * +switch-master (connect and confirmation within timeout_ms). The context
 * belongs to the caller (redisFree). NULL with err on failure. */
redisContext *cm_sentinel_watch_open(const struct cm_redis_url *u, size_t idx, int timeout_ms, char *err,
                                     size_t errlen);

/* Without blocking, reads what the watch connection has received. 1 when a
 * +switch-master for master was among it (*to: the latest), 0 when nothing
 * concerned us, -1 when the connection failed or closed (the caller frees
 * it and opens another). */
int cm_sentinel_watch_poll(redisContext *c, const char *master, struct cm_redis_addr *to);

#endif
