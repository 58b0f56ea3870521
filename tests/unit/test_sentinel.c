/* Unit tests: the reply parsers of common/sentinel.c and common/redis.c
 * (sentinel answers, +switch-master messages, ROLE, failover errors), fed
 * real RESP bytes through hiredis's reader. */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "common/redis.h"
#include "common/redis_url.h"
#include "common/sentinel.h"

/* Parses one RESP value; the caller frees it with freeReplyObject. */
static redisReply *resp(const char *bytes)
{
    redisReader *rd = redisReaderCreate();
    cr_assert_not_null(rd);
    cr_assert_eq(redisReaderFeed(rd, bytes, strlen(bytes)), REDIS_OK);
    void *r = NULL;
    cr_assert_eq(redisReaderGetReply(rd, &r), REDIS_OK);
    cr_assert_not_null(r, "incomplete RESP: %s", bytes);
    redisReaderFree(rd);
    return r;
}

Test(sentinel, master_address)
{
    redisReply *r = resp("*2\r\n$9\r\n10.0.0.17\r\n$4\r\n6380\r\n");
    struct cm_redis_addr a;
    char err[256] = "";
    cr_assert_eq(cm_sentinel_parse_addr(r, "chatmi", &a, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(a.host, "10.0.0.17");
    cr_assert_eq(a.port, 6380);
    freeReplyObject(r);

    r = resp("*2\r\n$3\r\n::1\r\n$5\r\n26379\r\n");
    cr_assert_eq(cm_sentinel_parse_addr(r, "chatmi", &a, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(a.host, "::1");
    freeReplyObject(r);
}

Test(sentinel, master_address_failures)
{
    struct cm_redis_addr a = {"unchanged", 1};
    char err[256];
    redisReply *r = resp("*-1\r\n");
    cr_assert_eq(cm_sentinel_parse_addr(r, "nosuch", &a, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "\"nosuch\""), "%s", err);
    freeReplyObject(r);

    r = resp("$-1\r\n");
    cr_assert_eq(cm_sentinel_parse_addr(r, "nosuch", &a, err, sizeof(err)), -1);
    freeReplyObject(r);

    r = resp("-ERR unknown command 'SENTINEL'\r\n");
    cr_assert_eq(cm_sentinel_parse_addr(r, "m", &a, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "unknown command"), "%s", err);
    freeReplyObject(r);

    static const char *const bad[] = {
        "*1\r\n$3\r\nabc\r\n",                       /* one element */
        "*2\r\n$3\r\nabc\r\n$1\r\n0\r\n",             /* port 0 */
        "*2\r\n$3\r\nabc\r\n$5\r\n65536\r\n",         /* port too big */
        "*2\r\n$3\r\nabc\r\n$2\r\n6x\r\n",            /* not a number */
        "*2\r\n$0\r\n\r\n$4\r\n6379\r\n",             /* empty host */
        "*2\r\n$3\r\nabc\r\n:6379\r\n",               /* integer port */
        "+OK\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = resp(bad[i]);
        cr_assert_eq(cm_sentinel_parse_addr(r, "m", &a, err, sizeof(err)), -1, "accepted case %zu", i);
        freeReplyObject(r);
    }
    cr_assert_eq(cm_sentinel_parse_addr(NULL, "m", &a, err, sizeof(err)), -1);
    cr_assert_str_eq(a.host, "unchanged", "a failed parse leaves the output alone");
}

/* A three-element pub/sub array, lengths computed. */
static redisReply *pubsub(const char *kind, const char *chan, const char *payload)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "*3\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(kind), kind,
             strlen(chan), chan, strlen(payload), payload);
    return resp(buf);
}

Test(sentinel, switch_master_message)
{
    redisReply *r = pubsub("message", "+switch-master", "chatmi 127.0.0.1 6379 127.0.0.1 6380 extra");
    struct cm_redis_addr a;
    cr_assert_eq(cm_sentinel_parse_switch(r, "chatmi", &a), 1);
    cr_assert_str_eq(a.host, "127.0.0.1");
    cr_assert_eq(a.port, 6380);
    cr_assert_eq(cm_sentinel_parse_switch(r, "chat", &a), 0, "a prefix of the name is another master");
    cr_assert_eq(cm_sentinel_parse_switch(r, "chatmi2", &a), 0);
    freeReplyObject(r);

    r = pubsub("message", "+switch-master", "m 10.0.0.1 6379 fe80::1 7000");
    cr_assert_eq(cm_sentinel_parse_switch(r, "m", &a), 1);
    cr_assert_str_eq(a.host, "fe80::1");
    cr_assert_eq(a.port, 7000);
    freeReplyObject(r);

    redisReply *other[] = {
        resp("*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n"), /* confirmation */
        pubsub("message", "+sdown", "chatmi 127.0.0.1 6379 127.0.0.1 6380"),   /* another channel */
        pubsub("pmessage", "+switch-master", "chatmi 127.0.0.1 6379 127.0.0.1 6380"),
        pubsub("message", "+switch-master", "chatmi 127.0.0.1 6379 1.2.3"),     /* too few words */
        pubsub("message", "+switch-master", "chatmi 127.0.0.1 6379 127.0.0.1 99x"), /* bad port */
        pubsub("message", "+switch-master", ""),
        resp("-ERR no\r\n"),
    };
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        cr_assert_eq(cm_sentinel_parse_switch(other[i], "chatmi", &a), 0, "case %zu", i);
        freeReplyObject(other[i]);
    }
    cr_assert_eq(cm_sentinel_parse_switch(NULL, "chatmi", &a), 0);
}

Test(sentinel, role)
{
    char role[32];
    redisReply *r = resp("*3\r\n$6\r\nmaster\r\n:3129659\r\n*0\r\n");
    cr_assert_eq(cm_redis_parse_role(r, role, sizeof(role)), 1);
    cr_assert_str_eq(role, "master");
    freeReplyObject(r);
    r = resp("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:9999\r\n$9\r\nconnected\r\n:3167038\r\n");
    cr_assert_eq(cm_redis_parse_role(r, role, sizeof(role)), 0);
    cr_assert_str_eq(role, "slave");
    freeReplyObject(r);
    r = resp("*2\r\n$8\r\nsentinel\r\n*0\r\n");
    cr_assert_eq(cm_redis_parse_role(r, role, sizeof(role)), 0);
    freeReplyObject(r);
    r = resp("-NOPERM this user has no permissions to run the 'role' command\r\n");
    cr_assert_eq(cm_redis_parse_role(r, role, sizeof(role)), -1);
    freeReplyObject(r);
    cr_assert_eq(cm_redis_parse_role(NULL, role, sizeof(role)), -1);
}

Test(sentinel, failover_errors)
{
    static const char *const yes[] = {"READONLY You can't write against a read only replica.",
                                      "LOADING Redis is loading the dataset in memory",
                                      "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
                                      "UNBLOCKED force unblock from blocking operation, instance state changed",
                                      "READONLY"};
    static const char *const no[] = {"ERR unknown command", "NOSCRIPT No matching script", "READONLYX",
                                     "NOAUTH Authentication required.", "WRONGTYPE Operation", ""};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        cr_assert_eq(cm_redis_error_is_failover(yes[i], strlen(yes[i])), 1, "%s", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        cr_assert_eq(cm_redis_error_is_failover(no[i], strlen(no[i])), 0, "%s", no[i]);
    cr_assert_eq(cm_redis_error_is_failover(NULL, 0), 0);
    cr_assert_eq(cm_redis_error_is_failover("READONLY x", 4), 0, "length is honoured");
}

Test(sentinel, noauth)
{
    redisReply *r = resp("-NOAUTH Authentication required.\r\n");
    cr_assert_eq(cm_redis_reply_is_noauth(r), 1);
    freeReplyObject(r);
    r = resp("-ERR invalid password\r\n");
    cr_assert_eq(cm_redis_reply_is_noauth(r), 0);
    freeReplyObject(r);
    cr_assert_eq(cm_redis_reply_is_noauth(NULL), 0);
}

Test(sentinel, addr_text)
{
    struct cm_redis_addr a = {"10.1.2.3", 6379}, b = {"::1", 26379}, c = {"CACHE.internal", 6379},
                         d = {"cache.internal", 6379}, e = {"cache.internal", 6380};
    char buf[CM_REDIS_ADDR_TEXT_MAX];
    cm_redis_addr_format(&a, buf, sizeof(buf));
    cr_assert_str_eq(buf, "10.1.2.3:6379");
    cm_redis_addr_format(&b, buf, sizeof(buf));
    cr_assert_str_eq(buf, "[::1]:26379");
    cr_assert(cm_redis_addr_eq(&c, &d));
    cr_assert(!cm_redis_addr_eq(&d, &e));
    cr_assert(!cm_redis_addr_eq(&a, &b));
    char tiny[6];
    cm_redis_addr_format(&a, tiny, sizeof(tiny));
    cr_assert_str_eq(tiny, "10.1.");
}

/* Blocking discovery against nothing: every sentinel's failure is listed,
 * the order of asking moves on, and nothing leaks. Port 1 on loopback
 * refuses at once. */
Test(sentinel, discover_unreachable)
{
    struct cm_redis_url u;
    char err[1024];
    cr_assert_eq(cm_redis_url_parse("redis+sentinel://127.0.0.1:1,127.0.0.1:2/chatmi", &u, err, sizeof(err)), 0);
    size_t next = 1;
    struct cm_redis_addr m;
    cr_assert_eq(cm_sentinel_discover(&u, 200, &next, &m, NULL, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "\"chatmi\""), "%s", err);
    cr_assert_not_null(strstr(err, "127.0.0.1:1:"), "%s", err);
    cr_assert_not_null(strstr(err, "127.0.0.1:2:"), "%s", err);
    cr_assert_lt(strstr(err, "127.0.0.1:2:"), strstr(err, "127.0.0.1:1:"), "asked from *next on: %s", err);
    cr_assert_eq(next, 0);
    cr_assert_null(cm_redis_connect(&u, 200, &next, &m, err, sizeof(err)));
    cr_assert_null(cm_sentinel_watch_open(&u, 0, 200, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "127.0.0.1:1"), "%s", err);

    cr_assert_eq(cm_redis_url_parse("redis+cluster://127.0.0.1:1", &u, err, sizeof(err)), 0);
    cr_assert_null(cm_redis_connect(&u, 200, NULL, NULL, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "not supported"), "%s", err);
}
