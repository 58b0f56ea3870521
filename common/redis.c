/* redis.c: opening Redis connections as --redis-url says (redis.h).
 * Nothing here logs: every failure is returned to the caller. */
#include "common/redis.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

static int supported(const struct cm_redis_url *u, char *err, size_t errlen)
{
    if (u->kind == CM_REDIS_SENTINEL) {
        snprintf(err, errlen, "redis+sentinel:// is not supported in this version; use redis://host:port");
        return 0;
    }
    if (u->kind == CM_REDIS_CLUSTER) {
        snprintf(err, errlen, "redis+cluster:// is not supported in this version; use redis://host:port");
        return 0;
    }
    if (u->naddrs < 1) {
        snprintf(err, errlen, "the Redis URL has no host");
        return 0;
    }
    return 1;
}

/* AUTH with a user needs a password argument; an ACL user marked nopass
 * accepts any, so an empty one is sent. */
static int wants_auth(const struct cm_redis_url *u)
{
    return u->user[0] != '\0' || u->password[0] != '\0';
}

static redisReply *sync_auth(redisContext *c, const struct cm_redis_url *u)
{
    if (u->user[0] != '\0')
        return redisCommand(c, "AUTH %s %s", u->user, u->password);
    return redisCommand(c, "AUTH %s", u->password);
}

/* Runs one set-up command's reply check; frees the reply. */
static int sync_ok(redisContext *c, redisReply *r, const char *what, char *err, size_t errlen)
{
    if (r == NULL) {
        snprintf(err, errlen, "%s: %s", what, c->errstr[0] ? c->errstr : "connection lost");
        return 0;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s: %.*s", what, (int)r->len, r->str);
        freeReplyObject(r);
        return 0;
    }
    freeReplyObject(r);
    return 1;
}

redisContext *cm_redis_connect(const struct cm_redis_url *u, int timeout_ms, char *err, size_t errlen)
{
    if (!supported(u, err, errlen))
        return NULL;
    const struct cm_redis_addr *a = &u->addrs[0];
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(a->host, a->port, tv);
    if (c == NULL) {
        snprintf(err, errlen, "redis %s:%d: out of memory", a->host, a->port);
        return NULL;
    }
    if (c->err) {
        snprintf(err, errlen, "redis %s:%d: %s", a->host, a->port, c->errstr);
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errlen, "redis %s:%d: cannot set the timeout: %s", a->host, a->port, c->errstr);
        goto fail;
    }
    if (wants_auth(u) && !sync_ok(c, sync_auth(c, u), "AUTH", err, errlen))
        goto fail;
    if (u->db != 0 && !sync_ok(c, redisCommand(c, "SELECT %d", u->db), "SELECT", err, errlen))
        goto fail;
    return c;
fail:
    redisFree(c);
    return NULL;
}

/* A failed AUTH or SELECT leaves a connection that would answer every later
 * command with NOAUTH or use the wrong database: record why and disconnect,
 * so the caller's disconnect callback sees REDIS_ERR and ac->errstr. */
static void setup_reply(redisAsyncContext *ac, void *reply, void *what)
{
    redisReply *r = reply;
    if (r == NULL || r->type != REDIS_REPLY_ERROR)
        return;
    if (ac->c.err == 0) {
        ac->c.err = REDIS_ERR_OTHER;
        snprintf(ac->c.errstr, sizeof(ac->c.errstr), "%s: %.*s", (const char *)what, (int)r->len, r->str);
    }
    redisAsyncDisconnect(ac);
}

redisAsyncContext *cm_redis_connect_async(const struct cm_redis_url *u, char *err, size_t errlen)
{
    if (!supported(u, err, errlen))
        return NULL;
    const struct cm_redis_addr *a = &u->addrs[0];
    redisAsyncContext *ac = redisAsyncConnect(a->host, a->port);
    if (ac == NULL) {
        snprintf(err, errlen, "redis %s:%d: out of memory", a->host, a->port);
        return NULL;
    }
    if (ac->err) {
        snprintf(err, errlen, "redis %s:%d: %s", a->host, a->port, ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    /* Queued before the caller's commands, so they go out first once the
     * connection is up. */
    int rc = REDIS_OK;
    if (wants_auth(u)) {
        if (u->user[0] != '\0')
            rc = redisAsyncCommand(ac, setup_reply, (void *)"AUTH", "AUTH %s %s", u->user, u->password);
        else
            rc = redisAsyncCommand(ac, setup_reply, (void *)"AUTH", "AUTH %s", u->password);
    }
    if (rc == REDIS_OK && u->db != 0)
        rc = redisAsyncCommand(ac, setup_reply, (void *)"SELECT", "SELECT %d", u->db);
    if (rc != REDIS_OK) {
        snprintf(err, errlen, "redis %s:%d: cannot queue AUTH/SELECT", a->host, a->port);
        redisAsyncFree(ac);
        return NULL;
    }
    return ac;
}

int cm_redis_reply_failed(const redisReply *r)
{
    return r == NULL || r->type == REDIS_REPLY_ERROR;
}
