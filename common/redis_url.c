/* redis_url.c: parsing and describing --redis-url (redis_url.h).
 * Error messages quote only the part that failed and never the userinfo,
 * so a password cannot reach a log through them. */
#include "common/redis_url.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DB_MAX 65535

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into out (size outlen, NUL terminated). */
static int pct_decode(const char *s, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return -1;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0' || n + 1 >= outlen)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

static int parse_uint(const char *s, size_t len, long max, long *out)
{
    long v = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

static int parse_addr(const char *s, size_t len, int defport, struct cm_redis_addr *a, char *err, size_t errlen)
{
    const char *h = s, *portp = NULL;
    size_t hl = len;
    long port = defport;

    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            goto bad;
        h = s + 1;
        hl = (size_t)(close - h);
        if (close + 1 < s + len) {
            if (close[1] != ':')
                goto bad;
            portp = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', len);
        if (colon != NULL) {
            hl = (size_t)(colon - s);
            portp = colon + 1;
        }
    }
    if (hl == 0 || hl >= sizeof(a->host))
        goto bad;
    for (size_t i = 0; i < hl; i++)
        if (h[i] == '@' || h[i] == '/' || h[i] == ',' || h[i] == '?' || h[i] == '#' || (unsigned char)h[i] <= ' ' ||
            (s[0] != '[' && h[i] == ':'))
            goto bad;
    if (portp != NULL && (parse_uint(portp, (size_t)(s + len - portp), 65535, &port) < 0 || port == 0))
        goto bad;
    memcpy(a->host, h, hl);
    a->host[hl] = '\0';
    a->port = (int)port;
    return 0;
bad:
    snprintf(err, errlen, "bad host:port \"%.*s\" (expected host, host:port or [v6]:port)", (int)len, s);
    return -1;
}

int cm_redis_url_parse(const char *s, struct cm_redis_url *out, char *err, size_t errlen)
{
    static const struct {
        const char *scheme;
        enum cm_redis_kind kind;
        int defport;
    } schemes[] = {
        {"redis://", CM_REDIS_PLAIN, 6379},
        {"redis+sentinel://", CM_REDIS_SENTINEL, 26379},
        {"redis+cluster://", CM_REDIS_CLUSTER, 6379},
    };
    const char *p = NULL, *end, *at, *hosts, *path;
    int defport = 6379;

    memset(out, 0, sizeof(*out));
    if (s == NULL) {
        snprintf(err, errlen, "empty Redis URL");
        return -1;
    }
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t n = strlen(schemes[i].scheme);
        if (strncmp(s, schemes[i].scheme, n) == 0) {
            p = s + n;
            out->kind = schemes[i].kind;
            defport = schemes[i].defport;
            break;
        }
    }
    if (p == NULL) {
        snprintf(err, errlen, "expected a URL starting with redis://, redis+sentinel:// or redis+cluster://");
        return -1;
    }
    end = p + strlen(p);
    if (strpbrk(p, "?#") != NULL) {
        snprintf(err, errlen, "query parameters and fragments are not supported in a Redis URL");
        return -1;
    }

    /* The last '@' ends the userinfo: a password may contain '/' or '@'. */
    at = strrchr(p, '@');
    hosts = p;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *ue = colon ? colon : at;
        if (pct_decode(p, (size_t)(ue - p), out->user, sizeof(out->user)) < 0 ||
            (colon && pct_decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof(out->password)) < 0)) {
            snprintf(err, errlen, "bad user or password in the Redis URL (too long, or a bad %%-escape)");
            memset(out->password, 0, sizeof(out->password));
            return -1;
        }
        hosts = at + 1;
    }
    path = strchr(hosts, '/');
    if (path == NULL)
        path = end;

    /* host list */
    for (const char *h = hosts; h < path;) {
        const char *comma = memchr(h, ',', (size_t)(path - h));
        const char *he = comma ? comma : path;
        if (out->naddrs == CM_REDIS_ADDRS_MAX) {
            snprintf(err, errlen, "too many hosts (at most %d)", CM_REDIS_ADDRS_MAX);
            return -1;
        }
        if (parse_addr(h, (size_t)(he - h), defport, &out->addrs[out->naddrs], err, errlen) < 0)
            return -1;
        out->naddrs++;
        h = comma ? comma + 1 : path;
        if (comma && h == path) {
            snprintf(err, errlen, "empty host after ','");
            return -1;
        }
    }
    if (out->naddrs == 0) {
        snprintf(err, errlen, "the Redis URL has no host");
        return -1;
    }
    if (out->kind == CM_REDIS_PLAIN && out->naddrs > 1) {
        snprintf(err, errlen, "redis:// takes one host; use redis+sentinel:// or redis+cluster:// for several");
        return -1;
    }

    /* path: [/db] or, for a sentinel, /mastername[/db] */
    const char *seg = path < end ? path + 1 : end;
    if (out->kind == CM_REDIS_SENTINEL) {
        const char *slash = strchr(seg, '/');
        size_t ml = slash ? (size_t)(slash - seg) : strlen(seg);
        if (ml == 0 || ml >= sizeof(out->master)) {
            snprintf(err, errlen, "redis+sentinel:// needs /mastername after the hosts");
            return -1;
        }
        memcpy(out->master, seg, ml);
        out->master[ml] = '\0';
        seg = slash ? slash + 1 : end;
    }
    if (seg < end) {
        long db;
        if (parse_uint(seg, (size_t)(end - seg), DB_MAX, &db) < 0) {
            snprintf(err, errlen, "database must be a number from 0 to %d, got \"%s\"", DB_MAX, seg);
            return -1;
        }
        out->db = (int)db;
    }
    if (out->kind == CM_REDIS_CLUSTER && out->db != 0) {
        snprintf(err, errlen, "redis+cluster:// supports database 0 only");
        return -1;
    }
    return 0;
}

struct sink {
    char *p;
    size_t len, cap;
};

static void sink_add(struct sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sink_add(struct sink *s, const char *fmt, ...)
{
    if (s->len + 1 >= s->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->len = s->len + (size_t)n < s->cap - 1 ? s->len + (size_t)n : s->cap - 1;
}

void cm_redis_url_describe(const struct cm_redis_url *u, char *buf, size_t buflen)
{
    static const char *const schemes[] = {"redis://", "redis+sentinel://", "redis+cluster://"};
    struct sink s = {buf, 0, buflen};
    if (buflen == 0)
        return;
    buf[0] = '\0';
    sink_add(&s, "%s", schemes[u->kind <= CM_REDIS_CLUSTER ? u->kind : 0]);
    if (u->user[0] || u->password[0])
        sink_add(&s, "%s%s@", u->user, u->password[0] ? ":***" : "");
    for (size_t i = 0; i < u->naddrs; i++) {
        const char *h = u->addrs[i].host;
        if (strchr(h, ':'))
            sink_add(&s, "%s[%s]:%d", i ? "," : "", h, u->addrs[i].port);
        else
            sink_add(&s, "%s%s:%d", i ? "," : "", h, u->addrs[i].port);
    }
    if (u->kind == CM_REDIS_SENTINEL)
        sink_add(&s, "/%s", u->master);
    sink_add(&s, "/%d", u->db);
}

void cm_redis_addr_format(const struct cm_redis_addr *a, char *buf, size_t buflen)
{
    if (buflen == 0)
        return;
    if (strchr(a->host, ':') != NULL)
        snprintf(buf, buflen, "[%s]:%d", a->host, a->port);
    else
        snprintf(buf, buflen, "%s:%d", a->host, a->port);
}

int cm_redis_addr_eq(const struct cm_redis_addr *a, const struct cm_redis_addr *b)
{
    return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}
