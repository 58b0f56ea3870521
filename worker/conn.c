/* conn.c: the blocking Redis connection of conn.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/redis.h"
#include "common/sentinel.h"
#include "worker/conn.h"

#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 10000
/* Spacing of attempts to open the +switch-master subscription. */
#define WATCH_BACKOFF_MIN_MS 1000
#define WATCH_BACKOFF_MAX_MS 30000

void wk_argv_reset(struct wk_argv *a)
{
    a->argc = 0;
}

void wk_argv_add(struct wk_argv *a, const char *p, size_t len)
{
    if (a->argc >= WK_ARGV_MAX) {
        fprintf(stderr, "chatmi-worker: too many command arguments\n");
        abort();
    }
    a->v[a->argc] = p;
    a->len[a->argc] = len;
    a->argc++;
}

void wk_argv_addz(struct wk_argv *a, const char *s)
{
    wk_argv_add(a, s, strlen(s));
}

static int load_script(struct wk_conn *wc, enum wk_script s, char *err, size_t errlen)
{
    redisReply *r = redisCommand(wc->c, "SCRIPT LOAD %s", wk_script_source(s));
    if (!r) {
        snprintf(err, errlen, "loading script %s: %s", wk_script_name(s), conn_errstr(wc));
        return -1;
    }
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        snprintf(err, errlen, "loading script %s: %s", wk_script_name(s),
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return -1;
    }
    memcpy(wc->sha[s], r->str, 40);
    wc->sha[s][40] = '\0';
    freeReplyObject(r);
    return 0;
}

int conn_open(struct wk_conn *wc, const struct cm_redis_url *url, char *err, size_t errlen)
{
    conn_close(wc);
    struct cm_redis_addr where;
    wc->c = cm_redis_connect(url, WK_REDIS_TIMEOUT_MS, &wc->sentinel_next, &where, err, errlen);
    if (!wc->c)
        return -1;
    for (int s = 0; s < WK_SCRIPT_COUNT; s++) {
        if (load_script(wc, (enum wk_script)s, err, errlen) < 0) {
            conn_close(wc);
            return -1;
        }
    }
    wc->moved = wc->have_where && !cm_redis_addr_eq(&wc->where, &where);
    if (wc->have_where)
        wc->prev = wc->where;
    wc->where = where;
    wc->have_where = 1;
    return 0;
}

void conn_close(struct wk_conn *wc)
{
    if (wc->c) {
        redisFree(wc->c);
        wc->c = NULL;
    }
}

void conn_free(struct wk_conn *wc)
{
    conn_close(wc);
    if (wc->watch) {
        redisFree(wc->watch);
        wc->watch = NULL;
    }
}

const char *conn_errstr(const struct wk_conn *wc)
{
    if (!wc->c)
        return "not connected";
    if (wc->c->err)
        return wc->c->errstr;
    return "error reply, see above";
}

int conn_append_argv(struct wk_conn *wc, int argc, const char **argv, const size_t *argvlen)
{
    if (!wc->c || wc->c->err)
        return -1;
    return redisAppendCommandArgv(wc->c, argc, argv, argvlen) == REDIS_OK ? 0 : -1;
}

int conn_append(struct wk_conn *wc, const struct wk_argv *a)
{
    /* hiredis 0.14 takes `const char **` but never writes through it. */
    return conn_append_argv(wc, a->argc, (const char **)(uintptr_t)a->v, a->len);
}

/* Fails the context with an error reply's text (see conn_read). */
static void fail_with(struct wk_conn *wc, const redisReply *r)
{
    wc->c->err = REDIS_ERR_OTHER;
    snprintf(wc->c->errstr, sizeof(wc->c->errstr), "%.*s", (int)r->len, r->str);
}

int conn_read(struct wk_conn *wc, redisReply **out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (!wc->c || wc->c->err)
        return -1;
    wc->round_trips += n > 0;
    /* The whole pipeline is read even after a failover error: a lost
     * connection then overrides it as the cause. */
    const redisReply *failover = NULL;
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(wc->c, &r) != REDIS_OK || !r) {
            failover = NULL;
            goto fail;
        }
        out[i] = r;
        if (!failover && out[i]->type == REDIS_REPLY_ERROR && cm_redis_error_is_failover(out[i]->str, out[i]->len))
            failover = out[i];
    }
    if (!failover)
        return 0;
    fail_with(wc, failover);
fail:
    for (size_t j = 0; j < n; j++) {
        freeReplyObject(out[j]);
        out[j] = NULL;
    }
    return -1;
}

redisReply *conn_call(struct wk_conn *wc, const struct wk_argv *a)
{
    redisReply *r = NULL;
    if (conn_append(wc, a) < 0 || conn_read(wc, &r, 1) < 0)
        return NULL;
    return r;
}

void conn_script_begin(const struct wk_conn *wc, enum wk_script s, int nkeys, struct wk_argv *a)
{
    static const char *const digits[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    wk_argv_reset(a);
    wk_argv_add(a, "EVALSHA", 7);
    wk_argv_add(a, wc->sha[s], 40);
    wk_argv_add(a, digits[nkeys < 0 || nkeys > 9 ? 0 : nkeys], 1);
}

int conn_is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

redisReply *conn_script_eval(struct wk_conn *wc, enum wk_script s, struct wk_argv *a)
{
    const char *src = wk_script_source(s);
    a->v[0] = "EVAL";
    a->len[0] = 4;
    a->v[1] = src;
    a->len[1] = strlen(src);
    redisReply *r = conn_call(wc, a);
    if (!r)
        return NULL;
    char err[256];
    /* A failed reload is not fatal: the next call falls back to EVAL again.
     * A lost connection is, and shows up on the next command. */
    (void)load_script(wc, s, err, sizeof err);
    return r;
}

redisReply *conn_script_call(struct wk_conn *wc, enum wk_script s, struct wk_argv *a)
{
    redisReply *r = conn_call(wc, a);
    if (conn_is_noscript(r)) {
        freeReplyObject(r);
        r = conn_script_eval(wc, s, a);
    }
    return r;
}

long conn_backoff_ms(unsigned attempt)
{
    uint32_t rnd = 0;
    if (cm_random_bytes(&rnd, sizeof rnd) < 0)
        rnd = (uint32_t)cm_monotonic_ms();
    return (long)cm_backoff_jitter(cm_backoff_base(BACKOFF_BASE_MS, BACKOFF_CAP_MS, attempt), rnd);
}

int conn_master_moved(struct wk_conn *wc, const struct cm_redis_url *url, char *to, size_t tolen)
{
    if (url->kind != CM_REDIS_SENTINEL || !wc->have_where)
        return 0;
    if (wc->watch == NULL) {
        int64_t now = cm_monotonic_ms();
        if (now < wc->watch_next_ms)
            return 0;
        char err[256];
        wc->watch = cm_sentinel_watch_open(url, wc->watch_idx, CM_SENTINEL_TIMEOUT_MS, err, sizeof err);
        if (wc->watch == NULL) {
            /* Not fatal: a lost connection or a READONLY reply still leads
             * to the new master; try the next sentinel later. */
            wc->watch_idx = (wc->watch_idx + 1) % url->naddrs;
            wc->watch_next_ms =
                now + cm_backoff_jitter(cm_backoff_base(WATCH_BACKOFF_MIN_MS, WATCH_BACKOFF_MAX_MS, wc->watch_failures),
                                        (uint32_t)now);
            if (wc->watch_failures < 64)
                wc->watch_failures++;
            return 0;
        }
        wc->watch_failures = 0;
    }
    struct cm_redis_addr a;
    int rc = cm_sentinel_watch_poll(wc->watch, url->master, &a);
    if (rc < 0) {
        redisFree(wc->watch);
        wc->watch = NULL;
        wc->watch_idx = (wc->watch_idx + 1) % url->naddrs;
        return 0;
    }
    if (rc == 0 || cm_redis_addr_eq(&a, &wc->where))
        return 0;
    if (tolen > 0)
        cm_redis_addr_format(&a, to, tolen);
    return 1;
}
