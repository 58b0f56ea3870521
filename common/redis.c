/* redis.c: opening Redis connections as --redis-url says (redis.h).
 * Nothing here logs: every failure is returned to the caller. */
#include "common/redis.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "common/sentinel.h"

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

/* ROLE must say master. An error reply (ROLE renamed or not permitted)
 * proves nothing either way: the node is accepted, and a replica shows up
 * later as READONLY replies. */
static int sync_is_master(redisContext *c, const char *where, char *err, size_t errlen)
{
    redisReply *r = redisCommand(c, "ROLE");
    if (r == NULL) {
        snprintf(err, errlen, "redis %s: ROLE: %s", where, c->errstr[0] ? c->errstr : "connection lost");
        return 0;
    }
    char role[32];
    int rc = cm_redis_parse_role(r, role, sizeof(role));
    freeReplyObject(r);
    if (rc == 0) {
        snprintf(err, errlen, "redis %s is a %s, not a master", where, role);
        return 0;
    }
    return 1;
}

static redisContext *connect_addr(const struct cm_redis_url *u, const struct cm_redis_addr *a, int timeout_ms,
                                  int want_master, char *err, size_t errlen)
{
    char where[CM_REDIS_ADDR_TEXT_MAX];
    cm_redis_addr_format(a, where, sizeof(where));
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(a->host, a->port, tv);
    if (c == NULL) {
        snprintf(err, errlen, "redis %s: out of memory", where);
        return NULL;
    }
    if (c->err) {
        snprintf(err, errlen, "redis %s: %s", where, c->errstr);
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errlen, "redis %s: cannot set the timeout: %s", where, c->errstr);
        goto fail;
    }
    /* A host that vanishes without closing (a failed instance behind a
     * moved endpoint) is noticed by keepalive rather than never. */
    (void)redisEnableKeepAlive(c);
    char what[CM_REDIS_ADDR_TEXT_MAX + 32];
    snprintf(what, sizeof(what), "redis %s: AUTH", where);
    if (wants_auth(u) && !sync_ok(c, sync_auth(c, u), what, err, errlen))
        goto fail;
    snprintf(what, sizeof(what), "redis %s: SELECT", where);
    if (u->db != 0 && !sync_ok(c, redisCommand(c, "SELECT %d", u->db), what, err, errlen))
        goto fail;
    if (want_master && !sync_is_master(c, where, err, errlen))
        goto fail;
    return c;
fail:
    redisFree(c);
    return NULL;
}

redisContext *cm_redis_connect_addr(const struct cm_redis_url *u, const struct cm_redis_addr *a, int timeout_ms,
                                    char *err, size_t errlen)
{
    return connect_addr(u, a, timeout_ms, 1, err, errlen);
}

redisContext *cm_redis_connect_node(const struct cm_redis_url *u, const struct cm_redis_addr *a, int timeout_ms,
                                    char *err, size_t errlen)
{
    return connect_addr(u, a, timeout_ms, 0, err, errlen);
}

redisContext *cm_redis_connect(const struct cm_redis_url *u, int timeout_ms, size_t *sentinel_next,
                               struct cm_redis_addr *where, char *err, size_t errlen)
{
    struct cm_redis_addr a;
    size_t next = 0;
    switch (u->kind) {
    case CM_REDIS_PLAIN:
        if (u->naddrs < 1) {
            snprintf(err, errlen, "the Redis URL has no host");
            return NULL;
        }
        a = u->addrs[0];
        break;
    case CM_REDIS_SENTINEL:
        if (cm_sentinel_discover(u, CM_SENTINEL_TIMEOUT_MS, sentinel_next ? sentinel_next : &next, &a, NULL, err,
                                 errlen) < 0)
            return NULL;
        break;
    case CM_REDIS_CLUSTER:
    default:
        snprintf(err, errlen, "redis+cluster:// is not supported in this version; use redis:// or redis+sentinel://");
        return NULL;
    }
    redisContext *c = cm_redis_connect_addr(u, &a, timeout_ms, err, errlen);
    if (c != NULL && where != NULL)
        *where = a;
    return c;
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

redisAsyncContext *cm_redis_connect_async_addr(const struct cm_redis_url *u, const struct cm_redis_addr *a, char *err,
                                               size_t errlen)
{
    char where[CM_REDIS_ADDR_TEXT_MAX];
    cm_redis_addr_format(a, where, sizeof(where));
    redisAsyncContext *ac = redisAsyncConnect(a->host, a->port);
    if (ac == NULL) {
        snprintf(err, errlen, "redis %s: out of memory", where);
        return NULL;
    }
    if (ac->err) {
        snprintf(err, errlen, "redis %s: %s", where, ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    (void)redisEnableKeepAlive(&ac->c);
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
        snprintf(err, errlen, "redis %s: cannot queue AUTH/SELECT", where);
        redisAsyncFree(ac);
        return NULL;
    }
    return ac;
}

int cm_redis_reply_failed(const redisReply *r)
{
    return r == NULL || r->type == REDIS_REPLY_ERROR;
}

int cm_redis_parse_role(const redisReply *r, char *role, size_t rolelen)
{
    if (rolelen > 0)
        role[0] = '\0';
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING)
        return -1;
    const redisReply *e = r->element[0];
    if (rolelen > 0)
        snprintf(role, rolelen, "%.*s", (int)e->len, e->str);
    return e->len == 6 && memcmp(e->str, "master", 6) == 0 ? 1 : 0;
}

int cm_redis_error_is_failover(const char *s, size_t len)
{
    static const char *const codes[] = {"READONLY", "LOADING", "MASTERDOWN", "UNBLOCKED"};
    if (s == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t n = strlen(codes[i]);
        if (len >= n && memcmp(s, codes[i], n) == 0 && (len == n || s[n] == ' '))
            return 1;
    }
    return 0;
}
