/* sentinel.c: see sentinel.h. */
#include "common/sentinel.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* A +switch-master poll reads at most this many messages a call. */
#define WATCH_POLL_MAX 64

static int parse_port(const char *s, size_t len, int *port)
{
    long v = 0;
    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

static int set_addr(struct cm_redis_addr *a, const char *host, size_t hlen, const char *port, size_t plen)
{
    if (hlen == 0 || hlen >= sizeof(a->host) || memchr(host, '\0', hlen) != NULL)
        return -1;
    if (parse_port(port, plen, &a->port) < 0)
        return -1;
    memcpy(a->host, host, hlen);
    a->host[hlen] = '\0';
    return 0;
}

int cm_sentinel_parse_addr(const redisReply *r, const char *master, struct cm_redis_addr *out, char *err,
                           size_t errlen)
{
    if (r == NULL) {
        snprintf(err, errlen, "no reply");
        return -1;
    }
    if (r->type == REDIS_REPLY_NIL) {
        snprintf(err, errlen, "does not monitor a master named \"%s\"", master);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%.*s", (int)r->len, r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        snprintf(err, errlen, "unexpected reply to SENTINEL get-master-addr-by-name");
        return -1;
    }
    struct cm_redis_addr a;
    if (set_addr(&a, r->element[0]->str, r->element[0]->len, r->element[1]->str, r->element[1]->len) < 0) {
        snprintf(err, errlen, "bad master address in the reply");
        return -1;
    }
    *out = a;
    return 0;
}

/* Splits the next space-separated word off [*p, end). */
static int next_word(const char **p, const char *end, const char **w, size_t *wl)
{
    const char *s = *p;
    while (s < end && *s == ' ')
        s++;
    const char *e = s;
    while (e < end && *e != ' ')
        e++;
    if (e == s)
        return -1;
    *w = s;
    *wl = (size_t)(e - s);
    *p = e;
    return 0;
}

int cm_sentinel_parse_switch(const redisReply *r, const char *master, struct cm_redis_addr *to)
{
    static const char chan[] = CM_SENTINEL_SWITCH_CHANNEL;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return 0;
    const redisReply *kind = r->element[0], *ch = r->element[1], *msg = r->element[2];
    if (kind->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING)
        return 0;
    if (kind->len != 7 || memcmp(kind->str, "message", 7) != 0 || ch->len != sizeof(chan) - 1 ||
        memcmp(ch->str, chan, sizeof(chan) - 1) != 0)
        return 0;
    const char *p = msg->str, *end = msg->str + msg->len;
    const char *w[5];
    size_t wl[5];
    for (int i = 0; i < 5; i++)
        if (next_word(&p, end, &w[i], &wl[i]) < 0)
            return 0;
    if (wl[0] != strlen(master) || memcmp(w[0], master, wl[0]) != 0)
        return 0;
    struct cm_redis_addr a;
    if (set_addr(&a, w[3], wl[3], w[4], wl[4]) < 0)
        return 0;
    *to = a;
    return 1;
}

int cm_redis_reply_is_noauth(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->len >= 6 && memcmp(r->str, "NOAUTH", 6) == 0;
}

static int has_credentials(const struct cm_redis_url *u)
{
    return u->user[0] != '\0' || u->password[0] != '\0';
}

/* Sends a command; when the sentinel wants a password and the URL has one,
 * AUTH and send it again. The reply (the AUTH error if that failed), or
 * NULL on a connection failure. */
static redisReply *sentinel_command(redisContext *c, const struct cm_redis_url *u, int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (!cm_redis_reply_is_noauth(r) || !has_credentials(u))
        return r;
    freeReplyObject(r);
    if (u->user[0] != '\0')
        r = redisCommand(c, "AUTH %s %s", u->user, u->password);
    else
        r = redisCommand(c, "AUTH %s", u->password);
    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        return r;
    freeReplyObject(r);
    return redisCommandArgv(c, argc, argv, NULL);
}

/* Appends "; " (unless first) and a formatted part to err. */
static void add_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add_err(char *err, size_t errlen, const char *fmt, ...)
{
    size_t len = strnlen(err, errlen);
    if (errlen == 0 || len + 1 >= errlen)
        return;
    if (len > 0) {
        snprintf(err + len, errlen - len, "; ");
        len = strnlen(err, errlen);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + len, errlen - len, fmt, ap);
    va_end(ap);
}

/* Connects to sentinel a with timeout_ms for the connect and each reply.
 * NULL with *why set (points into a static string or c->errstr copy). */
static redisContext *sentinel_connect(const struct cm_redis_addr *a, int timeout_ms, char *why, size_t whylen)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(a->host, a->port, tv);
    if (c == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    if (c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(why, whylen, "%s", c->errstr[0] ? c->errstr : "cannot connect");
        redisFree(c);
        return NULL;
    }
    return c;
}

int cm_sentinel_discover(const struct cm_redis_url *u, int timeout_ms, size_t *next, struct cm_redis_addr *master,
                         struct cm_redis_addr *from, char *err, size_t errlen)
{
    if (errlen > 0)
        err[0] = '\0';
    if (u->kind != CM_REDIS_SENTINEL || u->naddrs == 0) {
        snprintf(err, errlen, "not a redis+sentinel:// URL");
        return -1;
    }
    size_t n = u->naddrs, start = *next % n;
    char list[512] = "";
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        const struct cm_redis_addr *s = &u->addrs[i];
        char where[CM_REDIS_ADDR_TEXT_MAX], why[256];
        cm_redis_addr_format(s, where, sizeof(where));
        redisContext *c = sentinel_connect(s, timeout_ms, why, sizeof(why));
        if (c == NULL) {
            add_err(list, sizeof(list), "%s: %s", where, why);
            continue;
        }
        const char *argv[] = {"SENTINEL", "get-master-addr-by-name", u->master};
        redisReply *r = sentinel_command(c, u, 3, argv);
        struct cm_redis_addr a;
        if (r == NULL) {
            add_err(list, sizeof(list), "%s: %s", where, c->errstr[0] ? c->errstr : "connection lost");
        } else if (cm_sentinel_parse_addr(r, u->master, &a, why, sizeof(why)) < 0) {
            add_err(list, sizeof(list), "%s: %s", where, why);
        } else {
            freeReplyObject(r);
            redisFree(c);
            *next = i;
            *master = a;
            if (from != NULL)
                *from = *s;
            return 0;
        }
        freeReplyObject(r);
        redisFree(c);
    }
    *next = (start + 1) % n;
    snprintf(err, errlen, "no sentinel gave the address of master \"%s\" (%s)", u->master, list);
    return -1;
}

redisContext *cm_sentinel_watch_open(const struct cm_redis_url *u, size_t idx, int timeout_ms, char *err,
                                     size_t errlen)
{
    if (u->naddrs == 0) {
        snprintf(err, errlen, "no sentinel");
        return NULL;
    }
    const struct cm_redis_addr *s = &u->addrs[idx % u->naddrs];
    char where[CM_REDIS_ADDR_TEXT_MAX], why[256];
    cm_redis_addr_format(s, where, sizeof(where));
    redisContext *c = sentinel_connect(s, timeout_ms, why, sizeof(why));
    if (c == NULL) {
        snprintf(err, errlen, "sentinel %s: %s", where, why);
        return NULL;
    }
    const char *argv[] = {"SUBSCRIBE", CM_SENTINEL_SWITCH_CHANNEL};
    redisReply *r = sentinel_command(c, u, 2, argv);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "subscribe") != 0) {
        snprintf(err, errlen, "sentinel %s: SUBSCRIBE %s: %s", where, CM_SENTINEL_SWITCH_CHANNEL,
                 r == NULL ? (c->errstr[0] ? c->errstr : "connection lost")
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
        freeReplyObject(r);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(r);
    return c;
}

int cm_sentinel_watch_poll(redisContext *c, const char *master, struct cm_redis_addr *to)
{
    int found = 0;
    for (int i = 0; i < WATCH_POLL_MAX; i++) {
        void *r = NULL;
        if (redisGetReplyFromReader(c, &r) != REDIS_OK)
            return -1;
        if (r == NULL) {
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            int pr = poll(&p, 1, 0);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr < 0)
                return -1;
            if (pr == 0)
                break;
            if (redisBufferRead(c) != REDIS_OK)
                return -1;
            continue;
        }
        struct cm_redis_addr a;
        if (cm_sentinel_parse_switch(r, master, &a)) {
            *to = a;
            found = 1;
        }
        freeReplyObject(r);
    }
    return found;
}
