/* conn.h: the worker's one blocking Redis connection: connect, pipelined
 * commands, scripts by EVALSHA with an EVAL fallback, reconnect backoff.
 *
 * Ownership: replies returned by conn_read/conn_call/conn_script_* belong to
 * the caller (freeReplyObject). After any function here returns a connection
 * failure, the context is unusable: the caller logs, calls conn_close() and
 * reconnects; nothing half-read may be used. */
#ifndef CHATMI_WORKER_CONN_H
#define CHATMI_WORKER_CONN_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "common/redis_url.h"
#include "worker/scripts.h"

/* Command and connect timeout. Longer than any blocking command the worker
 * sends (BLMOVE waits at most 1 s). */
#define WK_REDIS_TIMEOUT_MS 10000

/* One command's arguments. The pointers are borrowed: the strings must live
 * as long as the struct is used (until the command is appended, or until an
 * EVAL retry for script calls). */
#define WK_ARGV_MAX 16
struct wk_argv {
    int argc;
    const char *v[WK_ARGV_MAX];
    size_t len[WK_ARGV_MAX];
};

void wk_argv_reset(struct wk_argv *a);
/* Adds one argument; more than WK_ARGV_MAX is a programming error (abort). */
void wk_argv_add(struct wk_argv *a, const char *p, size_t len);
void wk_argv_addz(struct wk_argv *a, const char *s);

struct wk_conn {
    redisContext *c; /* NULL while disconnected */
    char sha[WK_SCRIPT_COUNT][41];
};

/* Connects as url says and loads every script (SCRIPT LOAD). 0, or -1 with
 * a message in err and the connection closed. */
int conn_open(struct wk_conn *wc, const struct cm_redis_url *url, char *err, size_t errlen);
/* Frees the context (if any). Safe to call twice. */
void conn_close(struct wk_conn *wc);
/* The context's error text, for logs ("not connected" when there is none). */
const char *conn_errstr(const struct wk_conn *wc);

/* Queues one command without reading its reply. 0, or -1 (out of memory in
 * hiredis or no connection: treat as a connection failure). */
int conn_append(struct wk_conn *wc, const struct wk_argv *a);
int conn_append_argv(struct wk_conn *wc, int argc, const char **argv, const size_t *argvlen);
/* Reads the next n replies into out[0..n). 0, or -1 on a connection failure,
 * in which case out[] holds only NULLs (what was read is freed). An error
 * reply from Redis is a reply, not a failure. */
int conn_read(struct wk_conn *wc, redisReply **out, size_t n);
/* Sends one command and reads its reply: NULL on a connection failure. Only
 * when no pipelined replies are pending. */
redisReply *conn_call(struct wk_conn *wc, const struct wk_argv *a);

/* Starts a script call in a: EVALSHA <sha> <nkeys>; the caller adds the keys
 * and arguments. nkeys is 0..9. */
void conn_script_begin(const struct wk_conn *wc, enum wk_script s, int nkeys, struct wk_argv *a);
/* 1 when r is the NOSCRIPT error (the script cache was flushed). */
int conn_is_noscript(const redisReply *r);
/* Runs a's script call again as EVAL with the source (a->v[0..1] are
 * rewritten), then reloads the script for later EVALSHAs. Only when no
 * pipelined replies are pending. The reply, or NULL on a connection failure. */
redisReply *conn_script_eval(struct wk_conn *wc, enum wk_script s, struct wk_argv *a);
/* conn_call() of a script call, with the EVAL fallback. */
redisReply *conn_script_call(struct wk_conn *wc, enum wk_script s, struct wk_argv *a);

/* Milliseconds to wait before reconnect attempt `attempt` (0 based):
 * exponential from 100 ms, capped at 10 s, with jitter (half fixed, half
 * random) so a fleet of workers does not reconnect in step. */
long conn_backoff_ms(unsigned attempt);

#endif
