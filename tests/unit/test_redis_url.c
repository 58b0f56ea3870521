/* Unit tests: common/redis_url.c */
#include <criterion/criterion.h>
#include <string.h>

#include "common/redis_url.h"

static struct cm_redis_url parse_ok(const char *s)
{
    struct cm_redis_url u;
    char err[256] = "";
    cr_assert_eq(cm_redis_url_parse(s, &u, err, sizeof(err)), 0, "%s: %s", s, err);
    return u;
}

static void parse_bad(const char *s, const char *needle)
{
    struct cm_redis_url u;
    char err[256] = "";
    cr_assert_eq(cm_redis_url_parse(s, &u, err, sizeof(err)), -1, "accepted %s", s);
    cr_assert_neq(err[0], '\0');
    if (needle)
        cr_assert_not_null(strstr(err, needle), "\"%s\" lacks \"%s\"", err, needle);
}

Test(redis_url, plain_default)
{
    struct cm_redis_url u = parse_ok("redis://127.0.0.1:6379/0");
    cr_assert_eq(u.kind, CM_REDIS_PLAIN);
    cr_assert_eq(u.naddrs, 1);
    cr_assert_str_eq(u.addrs[0].host, "127.0.0.1");
    cr_assert_eq(u.addrs[0].port, 6379);
    cr_assert_eq(u.db, 0);
    cr_assert_str_eq(u.user, "");
    cr_assert_str_eq(u.password, "");
}

Test(redis_url, plain_variants)
{
    struct cm_redis_url u = parse_ok("redis://cache.internal");
    cr_assert_str_eq(u.addrs[0].host, "cache.internal");
    cr_assert_eq(u.addrs[0].port, 6379);
    u = parse_ok("redis://h:7000/");
    cr_assert_eq(u.addrs[0].port, 7000);
    cr_assert_eq(u.db, 0);
    u = parse_ok("redis://h/15");
    cr_assert_eq(u.db, 15);
    u = parse_ok("redis://[::1]:6380/2");
    cr_assert_str_eq(u.addrs[0].host, "::1");
    cr_assert_eq(u.addrs[0].port, 6380);
    cr_assert_eq(u.db, 2);
    u = parse_ok("redis://[fe80::1]");
    cr_assert_str_eq(u.addrs[0].host, "fe80::1");
    cr_assert_eq(u.addrs[0].port, 6379);
}

Test(redis_url, credentials)
{
    struct cm_redis_url u = parse_ok("redis://app:s3cret@h:1/3");
    cr_assert_str_eq(u.user, "app");
    cr_assert_str_eq(u.password, "s3cret");
    cr_assert_eq(u.db, 3);
    u = parse_ok("redis://:onlypass@h");
    cr_assert_str_eq(u.user, "");
    cr_assert_str_eq(u.password, "onlypass");
    u = parse_ok("redis://u%40x:p%3A%2F%25@h");
    cr_assert_str_eq(u.user, "u@x");
    cr_assert_str_eq(u.password, "p:/%");
    /* an unescaped '@' or '/' in the password: the last '@' ends the userinfo */
    u = parse_ok("redis://u:p@ss/w@h:2/4");
    cr_assert_str_eq(u.password, "p@ss/w");
    cr_assert_str_eq(u.addrs[0].host, "h");
    cr_assert_eq(u.db, 4);
    u = parse_ok("redis://justuser@h");
    cr_assert_str_eq(u.user, "justuser");
    cr_assert_str_eq(u.password, "");
}

Test(redis_url, sentinel)
{
    struct cm_redis_url u = parse_ok("redis+sentinel://:pw@s1:26379,s2,[::1]:26380/mymaster/2");
    cr_assert_eq(u.kind, CM_REDIS_SENTINEL);
    cr_assert_eq(u.naddrs, 3);
    cr_assert_str_eq(u.addrs[1].host, "s2");
    cr_assert_eq(u.addrs[1].port, 26379);
    cr_assert_str_eq(u.addrs[2].host, "::1");
    cr_assert_eq(u.addrs[2].port, 26380);
    cr_assert_str_eq(u.master, "mymaster");
    cr_assert_eq(u.db, 2);
    cr_assert_str_eq(u.password, "pw");
    u = parse_ok("redis+sentinel://s1/m");
    cr_assert_eq(u.db, 0);
    cr_assert_str_eq(u.master, "m");
}

Test(redis_url, cluster)
{
    struct cm_redis_url u = parse_ok("redis+cluster://a:7000,b:7001");
    cr_assert_eq(u.kind, CM_REDIS_CLUSTER);
    cr_assert_eq(u.naddrs, 2);
    cr_assert_eq(u.addrs[1].port, 7001);
    parse_ok("redis+cluster://a:7000/0");
    parse_bad("redis+cluster://a:7000/1", "database 0 only");
}

Test(redis_url, rejects)
{
    parse_bad("", NULL);
    parse_bad("http://h:1", "redis://");
    parse_bad("rediss://h", "redis://");
    parse_bad("redis://", "no host");
    parse_bad("redis://:6379", NULL);
    parse_bad("redis://h:0", NULL);
    parse_bad("redis://h:65536", NULL);
    parse_bad("redis://h:port", NULL);
    parse_bad("redis://h/x", "database");
    parse_bad("redis://h/-1", "database");
    parse_bad("redis://h/99999999999", "database");
    parse_bad("redis://a,b", "one host");
    parse_bad("redis://h?timeout=1", "query");
    parse_bad("redis://[::1:6379", NULL);
    parse_bad("redis://::1:6379", NULL);
    parse_bad("redis+sentinel://s1", "mastername");
    parse_bad("redis+sentinel://s1,/m", NULL);
    parse_bad("redis://u:bad%zzescape@h", "%-escape");
    parse_bad("redis://u:trunc%4@h", NULL);
    parse_bad("redis://u:nul%00@h", NULL);
    char many[512] = "redis+cluster://";
    for (int i = 0; i < CM_REDIS_ADDRS_MAX + 1; i++)
        strcat(many, i ? ",h:1" : "h:1");
    parse_bad(many, "too many");
}

Test(redis_url, errors_never_show_the_password)
{
    const char *urls[] = {"redis://u:TOPSECRET@h:bad", "redis://u:TOPSECRET@h/x", "redis://u:TOPSECRET@",
                          "redis+cluster://u:TOPSECRET@a/3", "redis://u:TOPSECRET%zz@h"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        struct cm_redis_url u;
        char err[256] = "";
        cr_assert_eq(cm_redis_url_parse(urls[i], &u, err, sizeof(err)), -1, "%s", urls[i]);
        cr_assert_null(strstr(err, "TOPSECRET"), "leaked: %s", err);
    }
}

Test(redis_url, describe_masks_password)
{
    char buf[512];
    struct cm_redis_url u = parse_ok("redis://app:s3cret@h:1/3");
    cm_redis_url_describe(&u, buf, sizeof(buf));
    cr_assert_str_eq(buf, "redis://app:***@h:1/3");
    u = parse_ok("redis://[::1]");
    cm_redis_url_describe(&u, buf, sizeof(buf));
    cr_assert_str_eq(buf, "redis://[::1]:6379/0");
    u = parse_ok("redis+sentinel://:pw@s1,s2:5/mm/1");
    cm_redis_url_describe(&u, buf, sizeof(buf));
    cr_assert_str_eq(buf, "redis+sentinel://:***@s1:26379,s2:5/mm/1");
    char tiny[8];
    memset(tiny, 'Z', sizeof(tiny));
    cm_redis_url_describe(&u, tiny, 6);
    cr_assert_eq(strlen(tiny), 5);
    cr_assert_eq(tiny[6], 'Z');
}
