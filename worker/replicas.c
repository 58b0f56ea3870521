/* replicas.c: WAIT before acking (replicas.h). */
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/redis.h"
#include "worker/replicas.h"

/* After a wait that timed out, no waits for this long. */
#define REPLICAS_SUSPEND_MS 10000

int replicas_refresh(struct wk *w)
{
    struct wk_argv a;
    wk_argv_reset(&a);
    wk_argv_addz(&a, "ROLE");
    redisReply *r = conn_call(&w->conn, &a);
    if (!r)
        return -1;
    char role[32];
    int n = 0;
    if (cm_redis_parse_role(r, role, sizeof role) == 1 && r->elements >= 3 &&
        r->element[2]->type == REDIS_REPLY_ARRAY) {
        n = (int)r->element[2]->elements;
    } else if (!w->role_warned) {
        cm_warn("replicas_unknown", "ROLE gave no replica list (%s); acks do not wait for replicas",
                r->type == REDIS_REPLY_ERROR ? r->str : role);
        w->role_warned = 1;
    }
    if (n != w->replicas)
        cm_info("replicas", "the master has %d replica%s; acks wait for %ld of them", n, n == 1 ? "" : "s",
                w->cfg->wait_replicas < n ? w->cfg->wait_replicas : (long)n);
    w->replicas = n;
    freeReplyObject(r);
    return 0;
}

int replicas_wait(struct wk *w)
{
    long want = w->cfg->wait_replicas < w->replicas ? w->cfg->wait_replicas : w->replicas;
    int64_t now = cm_monotonic_ms();
    if (want <= 0 || now < w->replicas_suspended_until)
        return 0;
    /* On every master the batch wrote to (one, but for a cluster). */
    long acked = 0;
    int64_t t0 = wk_metrics_now();
    int rc = conn_wait_written(&w->conn, want, (long)w->cfg->wait_timeout_ms, &acked);
    wk_metric_stage(&w->metrics, WK_MSTAGE_WAIT_REPLICAS, t0);
    if (rc < 0)
        return -1;
    if (rc == 0 && acked >= want)
        return 0;
    if (rc == 0)
        cm_warn("replication_lag",
                "%ld of %ld replicas confirmed the batch within %lld ms; acking anyway, and not waiting for "
                "replicas for the next %d s",
                acked, want, (long long)w->cfg->wait_timeout_ms, REPLICAS_SUSPEND_MS / 1000);
    else
        cm_warn("replication_lag", "WAIT failed (see above); acking anyway, and not waiting for replicas for the "
                "next %d s", REPLICAS_SUSPEND_MS / 1000);
    w->replicas_suspended_until = cm_monotonic_ms() + REPLICAS_SUSPEND_MS;
    return 0;
}
