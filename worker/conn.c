/* conn.c: the blocking Redis connection of conn.h. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/redis.h"
#include "common/sentinel.h"
#include "common/log.h"
#include "worker/conn.h"
#include "worker/mem.h"
#include "worker/route.h"

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

/* Follow at most this many redirections for one command. */
#define REDIRECTS_MAX 5
/* Connect and command timeout while looking for a node to read the slot
 * map from. */
#define MAP_TIMEOUT_MS 1000

/* Records why the connection failed; the first cause wins. */
static void set_err(struct wk_conn *wc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct wk_conn *wc, const char *fmt, ...)
{
    if (wc->err[0] != '\0')
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(wc->err, sizeof wc->err, fmt, ap);
    va_end(ap);
}

static int load_script(redisContext *c, char sha[41], enum wk_script s, char *err, size_t errlen)
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", wk_script_source(s));
    if (!r) {
        snprintf(err, errlen, "loading script %s: %s", wk_script_name(s), c->errstr);
        return -1;
    }
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        snprintf(err, errlen, "loading script %s: %s", wk_script_name(s),
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return -1;
    }
    memcpy(sha, r->str, 40);
    sha[40] = '\0';
    freeReplyObject(r);
    return 0;
}

/* Every script on node c (the digests are the same on every node). */
static int load_scripts(struct wk_conn *wc, redisContext *c, char *err, size_t errlen)
{
    for (int s = 0; s < WK_SCRIPT_COUNT; s++)
        if (load_script(c, wc->sha[s], (enum wk_script)s, err, errlen) < 0)
            return -1;
    return 0;
}

/* Connects to map node idx when it is not yet: its ROLE must be master,
 * then the scripts are loaded. 0, or -1 with the reason in wc->err. */
static int node_open(struct wk_conn *wc, int idx)
{
    if (wc->node[idx])
        return 0;
    char err[512];
    redisContext *c = cm_redis_connect_addr(wc->url, &wc->map->node[idx].addr, WK_REDIS_TIMEOUT_MS, err, sizeof err);
    if (c && load_scripts(wc, c, err, sizeof err) < 0) {
        redisFree(c);
        c = NULL;
    }
    if (!c) {
        set_err(wc, "%s", err);
        return -1;
    }
    wc->node[idx] = c;
    return 0;
}

/* The index of addr in the map, added (serving no slot yet) when it is not
 * there; -1 when the table is full. */
static int node_index(struct wk_conn *wc, const struct cm_redis_addr *addr)
{
    int idx = cm_slot_map_find(wc->map, addr);
    if (idx >= 0)
        return idx;
    if (wc->map->nnodes >= CM_CLUSTER_NODES_MAX)
        return -1;
    idx = (int)wc->map->nnodes++;
    memset(&wc->map->node[idx], 0, sizeof wc->map->node[idx]);
    wc->map->node[idx].addr = *addr;
    return idx;
}

/* Reads CLUSTER SLOTS on c (at addr) into a fresh map. 0, or -1 with err. */
static int read_map(redisContext *c, const struct cm_redis_addr *addr, struct cm_slot_map *m, char *err,
                    size_t errlen)
{
    redisReply *r = redisCommand(c, "CLUSTER SLOTS");
    if (!r) {
        snprintf(err, errlen, "CLUSTER SLOTS: %s", c->errstr);
        return -1;
    }
    int rc = cm_slot_map_parse(m, r, addr, err, errlen);
    if (rc == 0 && cm_slot_map_uncovered(m) == CM_SLOTS) {
        snprintf(err, errlen, "CLUSTER SLOTS: no slot is served");
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* Cluster mode, when nothing is connected: the map from the first node that
 * answers (master or replica), the masters of the last map first, then the
 * URL's seeds. Keeps the connection it read the map from when that node is
 * a master in the map (a node that just lost its slots is not). */
static int map_load(struct wk_conn *wc, struct cm_redis_addr *where, char *err, size_t errlen)
{
    size_t ncand = 0;
    struct cm_redis_addr *cand = wk_xcalloc(wc->map->nnodes + wc->url->naddrs, sizeof *cand);
    for (size_t i = 0; i < wc->map->nnodes; i++)
        cand[ncand++] = wc->map->node[i].addr;
    for (size_t i = 0; i < wc->url->naddrs; i++)
        cand[ncand++] = wc->url->addrs[i];
    struct cm_slot_map *m = wk_xcalloc(1, sizeof *m);
    int rc = -1;
    snprintf(err, errlen, "no cluster node to ask");
    for (size_t i = 0; i < ncand && rc < 0; i++) {
        char why[512];
        /* A short timeout: the first candidates are the last map's
         * masters, one of which may be the dead one. */
        redisContext *c = cm_redis_connect_node(wc->url, &cand[i], MAP_TIMEOUT_MS, why, sizeof why);
        if (c && read_map(c, &cand[i], m, why, sizeof why) == 0) {
            *wc->map = *m;
            *where = cand[i];
            rc = 0;
            int idx = cm_slot_map_find(wc->map, &cand[i]);
            struct timeval tv = {WK_REDIS_TIMEOUT_MS / 1000, (WK_REDIS_TIMEOUT_MS % 1000) * 1000};
            if (idx >= 0 && redisSetTimeout(c, tv) == REDIS_OK && load_scripts(wc, c, why, sizeof why) == 0) {
                wc->node[idx] = c;
                c = NULL;
            }
        } else {
            char at[CM_REDIS_ADDR_TEXT_MAX];
            cm_redis_addr_format(&cand[i], at, sizeof at);
            snprintf(err, errlen, "cluster node %s: %s", at, why);
        }
        if (c)
            redisFree(c);
    }
    free(m);
    free(cand);
    return rc;
}

/* After a MOVED, between pipelines: reads the map again from a connected
 * master and keeps the connections to the masters that stay. A failure
 * leaves the patched map in place (the MOVED already fixed the slot). */
static void map_refresh(struct wk_conn *wc)
{
    wc->map_stale = 0;
    struct cm_slot_map *m = wk_xcalloc(1, sizeof *m);
    redisContext *keep[CM_CLUSTER_NODES_MAX] = {NULL};
    unsigned char written[CM_CLUSTER_NODES_MAX] = {0};
    int got = 0;
    char err[512];
    for (size_t i = 0; i < wc->map->nnodes && !got; i++)
        if (wc->node[i])
            got = read_map(wc->node[i], &wc->map->node[i].addr, m, err, sizeof err) == 0;
    if (!got) {
        cm_warn("cluster_map", "could not read the slot map again: %s", err);
        free(m);
        return;
    }
    for (size_t i = 0; i < wc->map->nnodes; i++) {
        if (!wc->node[i])
            continue;
        int idx = cm_slot_map_find(m, &wc->map->node[i].addr);
        if (idx >= 0 && !keep[idx]) {
            keep[idx] = wc->node[i];
            written[idx] = wc->written[i];
        } else {
            /* No longer a master: what it got is not waited for
             * (its slots moved, with their data, elsewhere). */
            redisFree(wc->node[i]);
        }
        wc->node[i] = NULL;
    }
    *wc->map = *m;
    memcpy(wc->node, keep, sizeof keep);
    memcpy(wc->written, written, sizeof written);
    free(m);
    cm_info("cluster_map", "slot map reloaded: %zu masters", wc->map->nnodes);
}

int conn_open(struct wk_conn *wc, const struct cm_redis_url *url, char *err, size_t errlen)
{
    conn_close(wc);
    wc->url = url;
    wc->cluster = url->kind == CM_REDIS_CLUSTER;
    if (!wc->map)
        wc->map = wk_xcalloc(1, sizeof *wc->map);
    struct cm_redis_addr where;
    if (wc->cluster) {
        if (map_load(wc, &where, err, errlen) < 0)
            return -1;
    } else {
        redisContext *c = cm_redis_connect(url, WK_REDIS_TIMEOUT_MS, &wc->sentinel_next, &where, err, errlen);
        if (!c)
            return -1;
        cm_slot_map_single(wc->map, &where);
        wc->node[0] = c;
        if (load_scripts(wc, c, err, errlen) < 0) {
            conn_close(wc);
            return -1;
        }
    }
    wc->open = 1;
    wc->err[0] = '\0';
    wc->map_stale = 0;
    wc->moved = wc->have_where && !cm_redis_addr_eq(&wc->where, &where);
    if (wc->have_where)
        wc->prev = wc->where;
    wc->where = where;
    wc->have_where = 1;
    return 0;
}

static void pend_drop(struct wk_conn *wc, size_t n)
{
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        free(wc->pend[i].cmd);
    memmove(wc->pend, wc->pend + n, (wc->npend - n) * sizeof *wc->pend);
    wc->npend -= n;
}

void conn_close(struct wk_conn *wc)
{
    for (size_t i = 0; i < CM_CLUSTER_NODES_MAX; i++) {
        if (wc->node[i]) {
            redisFree(wc->node[i]);
            wc->node[i] = NULL;
        }
    }
    pend_drop(wc, wc->npend);
    memset(wc->written, 0, sizeof wc->written);
    wc->open = 0;
    wc->in_multi = 0;
}

void conn_free(struct wk_conn *wc)
{
    conn_close(wc);
    free(wc->pend);
    wc->pend = NULL;
    wc->cappend = 0;
    free(wc->map);
    wc->map = NULL;
    if (wc->watch) {
        redisFree(wc->watch);
        wc->watch = NULL;
    }
}

const char *conn_errstr(const struct wk_conn *wc)
{
    if (wc->err[0] != '\0')
        return wc->err;
    if (!wc->open)
        return "not connected";
    return "error reply, see above";
}

void conn_pin(struct wk_conn *wc, const char *key)
{
    wc->pin = cm_key_slot(key, strlen(key));
}

/* Queues an already formatted command for node idx; takes cmd. */
static int append_node(struct wk_conn *wc, int idx, char *cmd, size_t len)
{
    if (node_open(wc, idx) < 0) {
        free(cmd);
        return -1;
    }
    if (redisAppendFormattedCommand(wc->node[idx], cmd, len) != REDIS_OK) {
        set_err(wc, "%s", wc->node[idx]->errstr);
        free(cmd);
        return -1;
    }
    if (wc->npend == wc->cappend) {
        wc->cappend = wc->cappend ? wc->cappend * 2 : 64;
        wc->pend = wk_xrealloc(wc->pend, wc->cappend * sizeof *wc->pend);
    }
    wc->pend[wc->npend].node = idx;
    wc->pend[wc->npend].in_multi = wc->in_multi;
    wc->pend[wc->npend].cmd = cmd;
    wc->pend[wc->npend].len = len;
    wc->npend++;
    wc->written[idx] = 1;
    return 0;
}

static int append_argv_node(struct wk_conn *wc, int idx, int argc, const char **argv, const size_t *argvlen)
{
    if (argc > 0 && argvlen[0] == 5 && strncasecmp(argv[0], "MULTI", 5) == 0)
        wc->in_multi = 1;
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0) {
        set_err(wc, "out of memory formatting a command");
        return -1;
    }
    int rc = append_node(wc, idx, cmd, (size_t)len);
    if (argc > 0 && ((argvlen[0] == 4 && strncasecmp(argv[0], "EXEC", 4) == 0) ||
                     (argvlen[0] == 7 && strncasecmp(argv[0], "DISCARD", 7) == 0)))
        wc->in_multi = 0;
    return rc;
}

int conn_append_argv(struct wk_conn *wc, int argc, const char **argv, const size_t *argvlen)
{
    if (!wc->open || wc->err[0] != '\0')
        return -1;
    if (argvlen == NULL) { /* NUL-terminated arguments, as hiredis allows */
        size_t lens[WK_ARGV_MAX];
        if (argc > WK_ARGV_MAX) {
            set_err(wc, "too many command arguments");
            return -1;
        }
        for (int i = 0; i < argc; i++)
            lens[i] = strlen(argv[i]);
        return conn_append_argv(wc, argc, argv, lens);
    }
    if (wc->map_stale && wc->npend == 0)
        map_refresh(wc);
    unsigned slot = wk_route_slot(argc, argv, argvlen, wc->pin);
    uint16_t idx = wc->map->owner[slot];
    if (idx == CM_SLOT_NONE) {
        set_err(wc, "no master serves slot %u", slot);
        return -1;
    }
    return append_argv_node(wc, idx, argc, argv, argvlen);
}

int conn_append(struct wk_conn *wc, const struct wk_argv *a)
{
    /* hiredis 0.14 takes `const char **` but never writes through it. */
    return conn_append_argv(wc, a->argc, (const char **)(uintptr_t)a->v, a->len);
}

/* Errors that make the batch worth redoing elsewhere or later: the node is
 * no longer a master (any mode), the cluster is down or a slot is moving
 * (cluster mode). */
static int fails_connection(const struct wk_conn *wc, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ERROR)
        return 0;
    if (cm_redis_error_is_failover(r->str, r->len))
        return 1;
    return wc->cluster && r->str &&
           (strncmp(r->str, "CLUSTERDOWN", 11) == 0 || strncmp(r->str, "TRYAGAIN", 8) == 0);
}

/* Writes every node's queued commands, so the nodes work in parallel
 * rather than one after the other as their replies are read. */
static int flush_all(struct wk_conn *wc)
{
    for (size_t i = 0; i < wc->map->nnodes; i++) {
        redisContext *c = wc->node[i];
        int done = 0;
        while (c && !done) {
            if (redisBufferWrite(c, &done) != REDIS_OK) {
                set_err(wc, "%s", c->errstr);
                return -1;
            }
        }
    }
    return 0;
}

/* Reads one reply of node idx. NULL (wc->err set) on a connection failure. */
static redisReply *node_reply(struct wk_conn *wc, int idx)
{
    void *r = NULL;
    if (!wc->node[idx] || redisGetReply(wc->node[idx], &r) != REDIS_OK || !r) {
        set_err(wc, "%s", wc->node[idx] ? wc->node[idx]->errstr : "not connected");
        return NULL;
    }
    return r;
}

/* Sends command me again where *r (a MOVED or ASK) says, as often as the
 * nodes redirect it; *r becomes the final reply. pend[from..] are the
 * commands still in flight. 0 (also when *r is no redirection), or -1
 * (wc->err). */
static int follow(struct wk_conn *wc, const struct wk_pending *me, size_t from, redisReply **r)
{
    for (int hop = 0; hop < REDIRECTS_MAX; hop++) {
        unsigned slot;
        struct cm_redis_addr to;
        enum cm_redirect kind = (*r)->type == REDIS_REPLY_ERROR
                                    ? cm_redirect_parse((*r)->str, (*r)->len, &slot, &to)
                                    : CM_REDIRECT_NONE;
        if (kind == CM_REDIRECT_NONE)
            return 0;
        /* A command of a transaction is not sent again on its own: the
         * transaction fails (EXECABORT) and the batch is redone once the
         * map is read again. */
        if (me->in_multi) {
            set_err(wc, "the slot of a transaction moved (%.*s); redoing", (int)(*r)->len, (*r)->str);
            wc->map_stale = 1;
            return -1;
        }
        int idx = node_index(wc, &to);
        if (idx < 0 || slot >= CM_SLOTS) {
            set_err(wc, "redirected to %s:%d: too many masters", to.host, to.port);
            return -1;
        }
        /* The target must have nothing else in flight, or its reply
         * would be read out of turn. */
        for (size_t k = from; k < wc->npend; k++) {
            if (wc->pend[k].node == idx) {
                set_err(wc, "redirected to a node with commands in flight; redoing");
                return -1;
            }
        }
        if (kind == CM_REDIRECT_MOVED) {
            wc->map->owner[slot] = (uint16_t)idx;
            wc->map_stale = 1;
        }
        wc->redirects++;
        if (node_open(wc, idx) < 0)
            return -1;
        redisContext *c = wc->node[idx];
        if (kind == CM_REDIRECT_ASK && redisAppendCommand(c, "ASKING") != REDIS_OK) {
            set_err(wc, "%s", c->errstr);
            return -1;
        }
        if (redisAppendFormattedCommand(c, me->cmd, me->len) != REDIS_OK) {
            set_err(wc, "%s", c->errstr);
            return -1;
        }
        wc->written[idx] = 1;
        if (kind == CM_REDIRECT_ASK) {
            redisReply *ok = node_reply(wc, idx);
            if (!ok)
                return -1;
            freeReplyObject(ok);
        }
        redisReply *again = node_reply(wc, idx);
        if (!again)
            return -1;
        freeReplyObject(*r);
        *r = again;
    }
    set_err(wc, "more than %d redirections", REDIRECTS_MAX);
    return -1;
}

int conn_read(struct wk_conn *wc, redisReply **out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (!wc->open || wc->err[0] != '\0' || n > wc->npend) {
        set_err(wc, "%s", wc->open ? "reading more replies than commands sent" : "not connected");
        return -1;
    }
    if (n == 0)
        return 0;
    wc->round_trips++;
    if (flush_all(wc) < 0)
        goto fail;
    /* The whole pipeline is read even after a failover error: a lost
     * connection then overrides it as the cause. */
    const redisReply *failover = NULL;
    int redirected = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = node_reply(wc, wc->pend[i].node);
        if (!out[i])
            goto fail;
        if (!failover && fails_connection(wc, out[i]))
            failover = out[i];
        if (out[i]->type == REDIS_REPLY_ERROR && wc->cluster &&
            (strncmp(out[i]->str, "MOVED ", 6) == 0 || strncmp(out[i]->str, "ASK ", 4) == 0))
            redirected = 1;
    }
    if (failover) {
        set_err(wc, "%.*s", (int)failover->len, failover->str);
        wc->map_stale = wc->cluster;
        goto fail;
    }
    /* Every reply of the pipeline is in, so a command sent again is
     * read right after it is sent. */
    for (size_t i = 0; redirected && i < n; i++) {
        if (follow(wc, &wc->pend[i], n, &out[i]) < 0)
            goto fail;
        if (fails_connection(wc, out[i])) {
            set_err(wc, "%.*s", (int)out[i]->len, out[i]->str);
            wc->map_stale = 1;
            goto fail;
        }
    }
    pend_drop(wc, n);
    return 0;
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
    /* Reload where the script was missing. A failed reload is not fatal:
     * the next call falls back to EVAL again. A lost connection is, and
     * shows up on the next command. */
    uint16_t idx = wc->map->owner[wk_route_slot(a->argc, a->v, a->len, wc->pin)];
    char err[256];
    if (idx != CM_SLOT_NONE && wc->node[idx])
        (void)load_script(wc->node[idx], wc->sha[s], s, err, sizeof err);
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

void conn_written_clear(struct wk_conn *wc)
{
    memset(wc->written, 0, sizeof wc->written);
}

int conn_wait_written(struct wk_conn *wc, long want, long timeout_ms, long *acked)
{
    char num[24], ms[24];
    snprintf(num, sizeof num, "%ld", want);
    snprintf(ms, sizeof ms, "%ld", timeout_ms);
    const char *argv[3] = {"WAIT", num, ms};
    const size_t lens[3] = {4, strlen(num), strlen(ms)};
    size_t n = 0;
    *acked = want;
    if (!wc->open || wc->npend != 0) {
        set_err(wc, "%s", wc->open ? "WAIT with replies pending" : "not connected");
        return -1;
    }
    unsigned char to[CM_CLUSTER_NODES_MAX];
    memcpy(to, wc->written, sizeof to);
    for (size_t i = 0; i < wc->map->nnodes; i++) {
        if (!to[i] || !wc->node[i])
            continue;
        if (append_argv_node(wc, (int)i, 3, argv, lens) < 0)
            return -1;
        n++;
    }
    conn_written_clear(wc);
    if (n == 0)
        return 0;
    redisReply **r = wk_xcalloc(n, sizeof *r);
    int rc = conn_read(wc, r, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (r[i]->type == REDIS_REPLY_INTEGER) {
            if (r[i]->integer < *acked && *acked >= 0)
                *acked = (long)r[i]->integer;
        } else {
            cm_warn("replication_lag", "WAIT: %s", r[i]->type == REDIS_REPLY_ERROR ? r[i]->str : "unexpected reply");
            *acked = -1;
            rc = 1;
        }
    }
    for (size_t i = 0; i < n; i++)
        freeReplyObject(r[i]);
    free(r);
    return rc;
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
