/* sentinel.c: see sentinel.h.
 *
 * Every hiredis context here has ac->data pointing at the gw_sentinel while
 * it is ours. To let one go, the pointer to it (s->q or s->w) is cleared
 * and ac->data set to NULL first; every callback returns at once for such
 * a context, so nothing hiredis runs while freeing it can reach us. A
 * context is freed with redisAsyncFree only from a timer or
 * gw_sentinel_free (never inside its own callbacks: hiredis 0.14 does not
 * allow that in the connect callback); inside a reply callback it is let
 * go with redisAsyncDisconnect, which hiredis completes after the callback
 * returns. A failed connect is freed by hiredis itself. */
#include <config.h>

#include "gateway/sentinel.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include "common/backoff.h"
#include "common/log.h"
#include "common/sentinel.h"

#define WATCH_BACKOFF_MIN_MS 500
#define WATCH_BACKOFF_MAX_MS 10000

struct gw_sentinel {
    struct event_base *base;
    const struct cm_redis_url *url;
    struct gw_sentinel_cb cb;
    void *arg;
    int auth;                       /* sentinels want AUTH: learned from a NOAUTH */

    /* discovery round */
    redisAsyncContext *q;           /* the sentinel being asked, NULL between attempts */
    int q_running;
    size_t q_first;                 /* asked first in the next round */
    size_t q_idx, q_tried;
    int q_authed;                   /* AUTH sent on q */
    char q_autherr[128];            /* the AUTH error on q, if any */
    struct event *q_timer;          /* the attempt's deadline */
    struct event *q_done;           /* delivers the round's result */
    int q_ok;
    struct cm_redis_addr q_master, q_from;
    char q_why[768];

    /* watch */
    redisAsyncContext *w;
    size_t w_idx;
    int w_authed, w_subscribed;
    struct event *w_timer;          /* with w: subscribe deadline; without: next attempt */
    struct cm_backoff w_backoff;
    struct event *w_note;           /* delivers a moved() */
    struct cm_redis_addr w_master, w_from;
};

static const struct timeval attempt_tv = {CM_SENTINEL_TIMEOUT_MS / 1000, (CM_SENTINEL_TIMEOUT_MS % 1000) * 1000};

static int has_credentials(const struct cm_redis_url *u)
{
    return u->user[0] != '\0' || u->password[0] != '\0';
}

static void add_why(char *buf, size_t buflen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add_why(char *buf, size_t buflen, const char *fmt, ...)
{
    size_t len = strnlen(buf, buflen);
    if (len + 3 >= buflen)
        return;
    if (len > 0) {
        memcpy(buf + len, "; ", 3);
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, buflen - len, fmt, ap);
    va_end(ap);
}

/* Lets a context go (see the top of the file). */
static void release(redisAsyncContext *ac, int in_reply_callback)
{
    ac->data = NULL;
    if (in_reply_callback)
        redisAsyncDisconnect(ac);
    else
        redisAsyncFree(ac);
}

static int queue_auth(struct gw_sentinel *s, redisAsyncContext *ac, redisCallbackFn *fn)
{
    const struct cm_redis_url *u = s->url;
    if (u->user[0] != '\0')
        return redisAsyncCommand(ac, fn, NULL, "AUTH %s %s", u->user, u->password);
    return redisAsyncCommand(ac, fn, NULL, "AUTH %s", u->password);
}

static int queue_get_master(struct gw_sentinel *s, redisAsyncContext *ac, redisCallbackFn *fn)
{
    return redisAsyncCommand(ac, fn, NULL, "SENTINEL get-master-addr-by-name %s", s->url->master);
}

/* A non-blocking connect to sentinel idx, attached to the loop. */
static redisAsyncContext *open_sentinel(struct gw_sentinel *s, size_t idx, redisConnectCallback *on_connect,
                                        redisDisconnectCallback *on_disconnect, char *why, size_t whylen)
{
    const struct cm_redis_addr *a = &s->url->addrs[idx];
    redisAsyncContext *ac = redisAsyncConnect(a->host, a->port);
    if (ac == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    if (ac->err) {
        snprintf(why, whylen, "%s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    if (redisLibeventAttach(ac, s->base) != REDIS_OK) {
        snprintf(why, whylen, "cannot attach to the event loop");
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = s;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

/* ---- discovery ------------------------------------------------------------------ */

static void q_ask_next(struct gw_sentinel *s);

static void q_finish(struct gw_sentinel *s, int ok)
{
    size_t n = s->url->naddrs;
    s->q_running = 0;
    s->q_ok = ok;
    s->q_first = ok ? s->q_idx : (s->q_first + 1) % n;
    event_active(s->q_done, 0, 0);
}

static void q_on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_sentinel *s = arg;
    if (s->q_ok)
        s->cb.found(s->arg, &s->q_master, &s->q_from, NULL);
    else
        s->cb.found(s->arg, NULL, NULL, s->q_why);
}

/* The attempt on the current sentinel failed: record why, try the next. */
static void q_failed(struct gw_sentinel *s, const char *why)
{
    char where[CM_REDIS_ADDR_TEXT_MAX];
    cm_redis_addr_format(&s->url->addrs[s->q_idx], where, sizeof(where));
    add_why(s->q_why, sizeof(s->q_why), "%s: %s", where, why);
    evtimer_del(s->q_timer);
    q_ask_next(s);
}

static void q_on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    struct gw_sentinel *s = ac->data;
    redisReply *r = reply;
    if (s == NULL || ac != s->q || r == NULL || r->type != REDIS_REPLY_ERROR)
        return;
    snprintf(s->q_autherr, sizeof(s->q_autherr), "AUTH: %.*s", (int)r->len, r->str);
}

static void q_on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    struct gw_sentinel *s = ac->data;
    redisReply *r = reply;
    if (s == NULL || ac != s->q || r == NULL)
        return; /* not ours any more, or going away (the disconnect callback decides) */
    if (cm_redis_reply_is_noauth(r) && has_credentials(s->url) && !s->q_authed) {
        s->auth = 1;
        s->q_authed = 1;
        if (queue_auth(s, ac, q_on_auth) == REDIS_OK && queue_get_master(s, ac, q_on_reply) == REDIS_OK)
            return;
    }
    char why[256];
    struct cm_redis_addr a;
    int ok = cm_sentinel_parse_addr(r, s->url->master, &a, why, sizeof(why)) == 0;
    s->q = NULL;
    release(ac, 1);
    if (!ok) {
        q_failed(s, s->q_autherr[0] ? s->q_autherr : why);
        return;
    }
    evtimer_del(s->q_timer);
    s->q_master = a;
    s->q_from = s->url->addrs[s->q_idx];
    q_finish(s, 1);
}

static void q_on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct gw_sentinel *s = ac->data;
    if (s == NULL || ac != s->q || status == REDIS_OK)
        return;
    /* hiredis frees the context after this callback */
    s->q = NULL;
    q_failed(s, ac->errstr[0] ? ac->errstr : "cannot connect");
}

static void q_on_disconnect(const redisAsyncContext *cac, int status)
{
    (void)status;
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct gw_sentinel *s = ac->data;
    if (s == NULL || ac != s->q)
        return;
    s->q = NULL;
    q_failed(s, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void q_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_sentinel *s = arg;
    redisAsyncContext *ac = s->q;
    if (ac == NULL)
        return;
    s->q = NULL;
    release(ac, 0);
    q_failed(s, "no answer within the timeout");
}

static void q_ask_next(struct gw_sentinel *s)
{
    size_t n = s->url->naddrs;
    while (s->q_tried < n) {
        size_t i = (s->q_first + s->q_tried) % n;
        char why[256];
        s->q_tried++;
        s->q_idx = i;
        s->q_authed = s->auth;
        s->q_autherr[0] = '\0';
        redisAsyncContext *ac = open_sentinel(s, i, q_on_connect, q_on_disconnect, why, sizeof(why));
        if (ac == NULL) {
            char where[CM_REDIS_ADDR_TEXT_MAX];
            cm_redis_addr_format(&s->url->addrs[i], where, sizeof(where));
            add_why(s->q_why, sizeof(s->q_why), "%s: %s", where, why);
            continue;
        }
        if ((s->auth && has_credentials(s->url) && queue_auth(s, ac, q_on_auth) != REDIS_OK) ||
            queue_get_master(s, ac, q_on_reply) != REDIS_OK) {
            release(ac, 0);
            add_why(s->q_why, sizeof(s->q_why), "cannot queue a command");
            continue;
        }
        s->q = ac;
        evtimer_add(s->q_timer, &attempt_tv);
        return;
    }
    q_finish(s, 0);
}

void gw_sentinel_discover(struct gw_sentinel *s)
{
    if (s->q_running)
        return;
    s->q_running = 1;
    s->q_tried = 0;
    s->q_why[0] = '\0';
    q_ask_next(s);
}

/* ---- watch ---------------------------------------------------------------------- */

static void w_open(struct gw_sentinel *s);

static void w_retry_later(struct gw_sentinel *s)
{
    int64_t ms = cm_backoff_next(&s->w_backoff);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(s->w_timer, &tv);
}

/* The watch connection is gone (already let go): next sentinel, later. */
static void w_lost(struct gw_sentinel *s, const char *why)
{
    char where[CM_REDIS_ADDR_TEXT_MAX];
    cm_redis_addr_format(&s->url->addrs[s->w_idx], where, sizeof(where));
    if (s->w_subscribed)
        cm_warn("sentinel_watch_lost", "lost the +switch-master subscription on sentinel %s: %s", where, why);
    else
        cm_debug("sentinel_watch_failed", "sentinel %s: %s", where, why);
    s->w_subscribed = 0;
    s->w_idx = (s->w_idx + 1) % s->url->naddrs;
    evtimer_del(s->w_timer);
    w_retry_later(s);
}

static void w_on_note(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_sentinel *s = arg;
    s->cb.moved(s->arg, &s->w_master, &s->w_from);
}

static void w_note(struct gw_sentinel *s, const struct cm_redis_addr *master)
{
    s->w_master = *master;
    s->w_from = s->url->addrs[s->w_idx];
    event_active(s->w_note, 0, 0);
}

static void w_on_message(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    struct gw_sentinel *s = ac->data;
    redisReply *r = reply;
    if (s == NULL || ac != s->w || r == NULL)
        return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[0]->str, "subscribe") == 0) {
        char where[CM_REDIS_ADDR_TEXT_MAX];
        cm_redis_addr_format(&s->url->addrs[s->w_idx], where, sizeof(where));
        cm_debug("sentinel_watch", "watching %s on sentinel %s", CM_SENTINEL_SWITCH_CHANNEL, where);
        s->w_subscribed = 1;
        evtimer_del(s->w_timer);
        cm_backoff_reset(&s->w_backoff);
        return;
    }
    struct cm_redis_addr a;
    if (cm_sentinel_parse_switch(r, s->url->master, &a))
        w_note(s, &a);
}

static void w_on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    (void)reply;
    (void)priv; /* a failed AUTH shows in the next reply */
}

static void w_on_get(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    struct gw_sentinel *s = ac->data;
    redisReply *r = reply;
    if (s == NULL || ac != s->w || r == NULL)
        return;
    if (cm_redis_reply_is_noauth(r) && has_credentials(s->url) && !s->w_authed) {
        s->auth = 1;
        s->w_authed = 1;
        if (queue_auth(s, ac, w_on_auth) == REDIS_OK && queue_get_master(s, ac, w_on_get) == REDIS_OK)
            return;
    }
    char why[256] = "cannot queue SUBSCRIBE";
    struct cm_redis_addr a;
    if (cm_sentinel_parse_addr(r, s->url->master, &a, why, sizeof(why)) < 0 ||
        redisAsyncCommand(ac, w_on_message, NULL, "SUBSCRIBE %s", CM_SENTINEL_SWITCH_CHANNEL) != REDIS_OK) {
        s->w = NULL;
        release(ac, 1);
        w_lost(s, why);
        return;
    }
    w_note(s, &a);
}

static void w_on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct gw_sentinel *s = ac->data;
    if (s == NULL || ac != s->w || status == REDIS_OK)
        return;
    s->w = NULL; /* hiredis frees it */
    w_lost(s, ac->errstr[0] ? ac->errstr : "cannot connect");
}

static void w_on_disconnect(const redisAsyncContext *cac, int status)
{
    (void)status;
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    struct gw_sentinel *s = ac->data;
    if (s == NULL || ac != s->w)
        return;
    s->w = NULL;
    w_lost(s, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void w_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_sentinel *s = arg;
    redisAsyncContext *ac = s->w;
    if (ac == NULL) {
        w_open(s);
        return;
    }
    s->w = NULL;
    release(ac, 0);
    w_lost(s, "no answer within the timeout");
}

static void w_open(struct gw_sentinel *s)
{
    char why[256];
    redisAsyncContext *ac = open_sentinel(s, s->w_idx, w_on_connect, w_on_disconnect, why, sizeof(why));
    if (ac == NULL) {
        w_lost(s, why);
        return;
    }
    s->w_authed = s->auth;
    s->w_subscribed = 0;
    if ((s->auth && has_credentials(s->url) && queue_auth(s, ac, w_on_auth) != REDIS_OK) ||
        queue_get_master(s, ac, w_on_get) != REDIS_OK) {
        release(ac, 0);
        w_lost(s, "cannot queue a command");
        return;
    }
    s->w = ac;
    evtimer_add(s->w_timer, &attempt_tv);
}

/* ---- life ----------------------------------------------------------------------- */

struct gw_sentinel *gw_sentinel_new(struct event_base *base, const struct cm_redis_url *url,
                                    const struct gw_sentinel_cb *cb, void *arg)
{
    if (url->kind != CM_REDIS_SENTINEL || url->naddrs == 0)
        return NULL;
    struct gw_sentinel *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->base = base;
    s->url = url;
    s->cb = *cb;
    s->arg = arg;
    cm_backoff_init(&s->w_backoff, WATCH_BACKOFF_MIN_MS, WATCH_BACKOFF_MAX_MS);
    s->q_timer = evtimer_new(base, q_on_timeout, s);
    s->q_done = event_new(base, -1, 0, q_on_done, s);
    s->w_timer = evtimer_new(base, w_on_timer, s);
    s->w_note = event_new(base, -1, 0, w_on_note, s);
    if (s->q_timer == NULL || s->q_done == NULL || s->w_timer == NULL || s->w_note == NULL) {
        gw_sentinel_free(s);
        return NULL;
    }
    w_open(s);
    return s;
}

void gw_sentinel_free(struct gw_sentinel *s)
{
    if (s == NULL)
        return;
    redisAsyncContext *q = s->q, *w = s->w;
    s->q = s->w = NULL;
    if (q != NULL)
        release(q, 0);
    if (w != NULL)
        release(w, 0);
    if (s->q_timer != NULL)
        event_free(s->q_timer);
    if (s->q_done != NULL)
        event_free(s->q_done);
    if (s->w_timer != NULL)
        event_free(s->w_timer);
    if (s->w_note != NULL)
        event_free(s->w_note);
    free(s);
}
