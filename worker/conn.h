/* conn.h: a worker lane's blocking Redis connection: connect, pipelined
 * commands routed by slot to the masters that serve them (one for redis://
 * and sentinel, the cluster's for redis+cluster://), scripts by EVALSHA
 * with an EVAL fallback, reconnect backoff.
 *
 * Ownership: replies returned by conn_read/conn_call/conn_script_* belong to
 * the caller (freeReplyObject). After any function here returns a connection
 * failure, the connection (to every master) is unusable: the caller logs,
 * calls conn_close() and reconnects; nothing half-read may be used. */
#ifndef CHATMI_WORKER_CONN_H
#define CHATMI_WORKER_CONN_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "common/cluster.h"
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

/* One command queued and not yet answered: its node and its wire form,
 * kept to send it again after a MOVED or ASK. */
struct wk_pending {
    int node;
    int in_multi;   /* queued inside MULTI ... EXEC: never sent again alone */
    char *cmd;
    size_t len;
};

/* Start with the struct zeroed.
 *
 * Every URL scheme goes through one slot map (common/cluster.h): redis://
 * and redis+sentinel:// are one node serving every slot; redis+cluster://
 * is the map CLUSTER SLOTS gives. Each command goes to the master of its
 * key's slot (the first key; scripts: KEYS[1]); a command without a key
 * (MULTI, EXEC, ROLE) goes to the slot pinned by conn_pin. Connections to
 * masters are opened when first needed; replies come back in the order the
 * commands were queued, whatever nodes served them. */
struct wk_conn {
    int cluster;                /* redis+cluster:// */
    int open;                   /* between a successful conn_open and conn_close */
    int map_stale;              /* a MOVED was followed: reload the map when idle */
    const struct cm_redis_url *url; /* borrowed, set by conn_open */
    struct cm_slot_map *map;    /* allocated by the first conn_open */
    redisContext *node[CM_CLUSTER_NODES_MAX]; /* by map->node index; NULL: not connected */
    unsigned char written[CM_CLUSTER_NODES_MAX]; /* got a command since conn_written_clear */
    unsigned pin;               /* slot of keyless commands */
    int in_multi;               /* a MULTI was queued and its EXEC not yet */
    char sha[WK_SCRIPT_COUNT][41];
    char err[256];              /* why the connection failed; "" while it works */

    struct wk_pending *pend;    /* queued, unanswered commands, in order */
    size_t npend, cappend;

    uint64_t round_trips;       /* conn_read calls that read replies (metrics.h) */
    uint64_t redirects;         /* MOVED and ASK replies followed */

    /* The master connected to, and the one before it (for the log line of
     * a failover): set by conn_open. In cluster mode: the node the slot map
     * came from. */
    struct cm_redis_addr where, prev;
    int have_where;
    int moved;                  /* this connection's master differs from the last one's */
    size_t sentinel_next;       /* sentinel asked first (cm_sentinel_discover) */

    /* redis+sentinel://: a +switch-master subscription on one sentinel,
     * opened lazily by conn_master_moved; NULL while there is none. */
    redisContext *watch;
    size_t watch_idx;
    int64_t watch_next_ms;      /* monotonic time of the next attempt to open it */
    unsigned watch_failures;
};

/* Connects to the master as url says (redis+sentinel://: asks the
 * sentinels, then checks the node's ROLE; redis+cluster://: reads the slot
 * map with CLUSTER SLOTS from the first node that answers, the masters of
 * the last map first, then the URL's seeds), loads every script (SCRIPT
 * LOAD; on each master as it is connected) and sets where/prev/moved. 0,
 * or -1 with a message in err and the connection closed. */
int conn_open(struct wk_conn *wc, const struct cm_redis_url *url, char *err, size_t errlen);
/* Frees the contexts (if any) and what is queued; the sentinel subscription stays, to tell
 * when a new master is worth trying at once. Safe to call twice. */
void conn_close(struct wk_conn *wc);
/* conn_close, and the sentinel subscription too (at exit). */
void conn_free(struct wk_conn *wc);
/* Why the connection failed, for logs ("not connected" when closed). */
const char *conn_errstr(const struct wk_conn *wc);

/* Keyless commands (MULTI, EXEC, ROLE, ...) go to the master of key's slot
 * from now on (route.h): pin a transaction to the slot of its keys before
 * MULTI. */
void conn_pin(struct wk_conn *wc, const char *key);

/* WAIT numreplicas timeout_ms on every master written to since the last
 * call (conn_written_clear too), pipelined. The smallest count any of them
 * gave, in *acked (want when none was written to); 0, 1 when one answered
 * with an error (logged, in *acked -1), -1 on a connection failure. */
int conn_wait_written(struct wk_conn *wc, long want, long timeout_ms, long *acked);
void conn_written_clear(struct wk_conn *wc);

/* redis+sentinel:// only (0 for other URLs, without doing anything): reads,
 * without blocking, the sentinels' +switch-master announcements, opening
 * the subscription first when there is none (one sentinel per attempt,
 * CM_SENTINEL_TIMEOUT_MS at most, attempts spaced by a capped backoff).
 * 1 when a sentinel announced that our master moved to a node other than
 * the one connected to last (its address in to, "host:port", when
 * tolen > 0): connected, the caller closes the connection between batches
 * and connects again; waiting to reconnect, it stops waiting. 0 before the
 * first connection. */
int conn_master_moved(struct wk_conn *wc, const struct cm_redis_url *url, char *to, size_t tolen);

/* Queues one command without reading its reply, for the master of its
 * slot (connecting to it first when needed). 0, or -1 (a connection
 * failure: no master for the slot, it cannot be reached, out of memory). */
int conn_append(struct wk_conn *wc, const struct wk_argv *a);
int conn_append_argv(struct wk_conn *wc, int argc, const char **argv, const size_t *argvlen);
/* Reads the next n replies into out[0..n). 0, or -1 on a connection failure,
 * in which case out[] holds only NULLs (what was read is freed). An error
 * reply from Redis is a reply, not a failure, except one that says the node
 * is no longer a usable master (cm_redis_error_is_failover: READONLY,
 * LOADING, ...): that fails the connection, with the error as its errstr,
 * so the caller reconnects (to the new master) and redoes the batch. In
 * cluster mode CLUSTERDOWN and TRYAGAIN fail it the same way (the caller
 * backs off and redoes), and a MOVED or ASK reply is followed: the command
 * is sent again to the node named (after ASKING for ASK; a MOVED reloads
 * the slot map first), up to 5 times, and that node's reply takes its
 * place. */
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
 * random) so a fleet of workers does not reconnect in step
 * (common/backoff.h). */
long conn_backoff_ms(unsigned attempt);

#endif
