/* redis_url.h: the --redis-url forms of contract section 1.
 *   redis://[user:password@]host:port[/db]
 *   redis+sentinel://[user:password@]h1:26379,h2:26379/mastername[/db]
 *   redis+cluster://[user:password@]h1:p1,h2:p2          (db 0 only)
 * Host may be a name, an IPv4 address or [IPv6]; port defaults to 6379
 * (26379 for sentinels). user and password are percent-decoded. */
#ifndef CHATMI_COMMON_REDIS_URL_H
#define CHATMI_COMMON_REDIS_URL_H

#include <stddef.h>

enum cm_redis_kind { CM_REDIS_PLAIN = 0, CM_REDIS_SENTINEL, CM_REDIS_CLUSTER };

struct cm_redis_addr {
    char host[256];
    int port;
};

#define CM_REDIS_ADDRS_MAX 16

struct cm_redis_url {
    enum cm_redis_kind kind;
    char user[128];      /* "" when absent */
    char password[256];  /* "" when absent */
    int db;
    char master[128];    /* sentinel master name */
    struct cm_redis_addr addrs[CM_REDIS_ADDRS_MAX];
    size_t naddrs;
};

/* 0, or -1 with a message in err (which never contains the password). */
int cm_redis_url_parse(const char *s, struct cm_redis_url *out, char *err, size_t errlen);

/* "redis://user:***@host:port/db" for logs. */
void cm_redis_url_describe(const struct cm_redis_url *u, char *buf, size_t buflen);

/* "host:port", or "[v6]:port" when the host holds a ':' (truncated to
 * buflen). CM_REDIS_ADDR_TEXT_MAX always suffices. */
#define CM_REDIS_ADDR_TEXT_MAX 272
void cm_redis_addr_format(const struct cm_redis_addr *a, char *buf, size_t buflen);

/* 1 when both name the same host (compared as text, case-insensitively)
 * and port. */
int cm_redis_addr_eq(const struct cm_redis_addr *a, const struct cm_redis_addr *b);

#endif
