/* emf.c: CloudWatch Embedded Metric Format records of the queue depths (emf.h). */
#include "worker/emf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/conn.h"
#include "worker/mem.h"
#include "worker/options.h"

int emf_namespace_valid(const char *ns)
{
    size_t n = strlen(ns);
    if (n == 0 || n > WK_EMF_NAMESPACE_MAX || strncmp(ns, "AWS/", 4) == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = ns[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == '_' || c == '/' || c == '#' || c == ':'))
            return 0;
    }
    return 1;
}

int emf_format(char *buf, size_t buflen, const char *ns, int64_t ts_ms, const struct wk_emf_depths *d,
               const char *worker_id, const char *stage)
{
    long long per_worker_x100 = d->workers > 0 ? d->inbound * 100 / d->workers : d->inbound * 100;
    int n = snprintf(buf, buflen,
                     "{\"_aws\":{\"Timestamp\":%lld,\"CloudWatchMetrics\":[{\"Namespace\":\"%s\",\"Dimensions\":[[]],"
                     "\"Metrics\":[{\"Name\":\"InboundDepth\",\"Unit\":\"Count\"},"
                     "{\"Name\":\"FanoutDepth\",\"Unit\":\"Count\"},"
                     "{\"Name\":\"DeadLetters\",\"Unit\":\"Count\"},"
                     "{\"Name\":\"LiveWorkers\",\"Unit\":\"Count\"},"
                     "{\"Name\":\"InboundPerWorker\",\"Unit\":\"Count\"}]}]},"
                     "\"InboundDepth\":%lld,\"FanoutDepth\":%lld,\"DeadLetters\":%lld,\"LiveWorkers\":%lld,"
                     "\"InboundPerWorker\":%lld.%02lld,\"worker\":\"%s\",\"stage\":\"%s\",\"event\":\"emf\"}\n",
                     (long long)ts_ms, ns, d->inbound, d->fanout, d->dead, d->workers, per_worker_x100 / 100,
                     per_worker_x100 % 100, worker_id, stage);
    return n < 0 || (size_t)n >= buflen ? -1 : n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int emf_read_depths(struct wk_conn *wc, const struct wk_keys *keys, size_t nparts, struct wk_emf_depths *d)
{
    size_t n = 4 * nparts;
    for (size_t p = 0; p < nparts; p++) {
        const struct wk_keys *k = &keys[p];
        const char *cmd[4][4] = {{"LLEN", k->inbound}, {"LLEN", k->fanout}, {"LLEN", k->dead},
                                 {"ZRANGE", k->workers, "0", "-1"}};
        for (int i = 0; i < 4; i++)
            if (conn_append_argv(wc, i == 3 ? 4 : 2, cmd[i], NULL) < 0)
                return -1;
    }
    redisReply **r = wk_xcalloc(n, sizeof *r);
    if (conn_read(wc, r, n) < 0) {
        free(r);
        return -1;
    }
    static const char *const what[4] = {"LLEN inbound", "LLEN fanout", "LLEN dead", "ZRANGE workers"};
    long long *out[3] = {&d->inbound, &d->fanout, &d->dead};
    for (int i = 0; i < 3; i++)
        *out[i] = 0;
    d->workers = 0;
    /* A worker beats in each partition it works (--partitions): the live
     * workers are the distinct names over every partition's set. */
    size_t nnames = 0, cap = 0;
    const char **names = NULL;
    int rc = 0;
    for (size_t j = 0; j < n; j++) {
        int i = (int)(j % 4);
        if (i < 3 && r[j]->type == REDIS_REPLY_INTEGER) {
            *out[i] += r[j]->integer;
        } else if (i == 3 && r[j]->type == REDIS_REPLY_ARRAY) {
            for (size_t e = 0; e < r[j]->elements; e++) {
                if (r[j]->element[e]->type != REDIS_REPLY_STRING)
                    continue;
                if (nnames == cap) {
                    cap = cap ? 2 * cap : 64;
                    names = wk_xrealloc(names, cap * sizeof *names);
                }
                names[nnames++] = r[j]->element[e]->str;
            }
        } else if (rc == 0) {
            cm_warn("emf", "%s of partition %zu: %s", what[i], j / 4,
                    r[j]->type == REDIS_REPLY_ERROR ? r[j]->str : "unexpected reply");
            rc = 1;
        }
    }
    if (nnames > 0) {
        qsort(names, nnames, sizeof *names, cmp_str);
        d->workers = 1;
        for (size_t e = 1; e < nnames; e++)
            d->workers += strcmp(names[e], names[e - 1]) != 0;
    }
    free(names);
    for (size_t j = 0; j < n; j++)
        freeReplyObject(r[j]);
    free(r);
    return rc;
}

int emf_tick(struct wk *w, int64_t now_ms)
{
    const struct wk_config *cfg = w->cfg;
    if (cfg->emf_interval_ms <= 0 || now_ms < w->emf_next_ms || w->lane != 0)
        return 0;
    struct wk_emf_depths d;
    memset(&d, 0, sizeof d);
    int rc = emf_read_depths(&w->conn, w->all_keys, w->nparts, &d);
    if (rc < 0)
        return -1;
    w->emf_next_ms = now_ms + cfg->emf_interval_ms;
    if (rc > 0)
        return 0;
    w->depths.valid = 1;
    w->depths.read_ms = now_ms;
    w->depths.d = d;
    char buf[1024 + WK_EMF_NAMESPACE_MAX + WK_WORKER_ID_MAX];
    int n = emf_format(buf, sizeof buf, cfg->emf_namespace, cm_now_ms(), &d, cfg->worker_id,
                       wk_stage_name(cfg->stage));
    if (n > 0) {
        ssize_t wr;
        do
            wr = write(STDOUT_FILENO, buf, (size_t)n);
        while (wr < 0 && errno == EINTR);
    }
    return 0;
}
