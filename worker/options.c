/* options.c: option table and checks (options.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/cluster.h"
#include "common/log.h"
#include "common/opt.h"
#include "worker/emf.h"
#include "worker/options.h"
#include "worker/route.h"

static const char *const stage_names[] = {"ingest", "fanout", "all"};

const char *wk_stage_name(enum wk_stage s)
{
    return (unsigned)s < 3 ? stage_names[s] : "?";
}

/* Worker ids become part of key names: keep them to a safe alphabet. */
static int valid_worker_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WK_WORKER_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-' || c == ':'))
            return 0;
    }
    return 1;
}

/* <hostname>-<pid>-<random>: unique across restarts, so a restarted worker
 * never mistakes a dead predecessor's batch for its own. */
static int default_worker_id(char *out, size_t outlen)
{
    char host[65] = "worker", rnd[9];
    if (gethostname(host, sizeof host) < 0)
        strcpy(host, "worker");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '.'))
            *p = '_';
    if (cm_random_hex(rnd, 4) < 0)
        return -1;
    snprintf(out, outlen, "%s-%ld-%s", host[0] ? host : "worker", (long)getpid(), rnd);
    return 0;
}

enum wk_options_result wk_options_parse(int argc, char **argv, struct wk_config *cfg)
{
    char *redis_url = NULL, *worker_id = NULL, *emf_namespace = NULL, *metrics_listen = NULL, *lanes = NULL;
    int stage = WK_STAGE_ALL, log_format = 0, log_level = 1, emf = 0;
    long batch = 64, history_max = 10000;
    double idem_ttl = 86400, heartbeat = 2, emf_interval = 10, wait_timeout = 1;
    long wait_replicas = 1, partitions = 1;
    size_t max_text = 4096;
    char err[512];

    const struct cm_opt opts[] = {
        {"redis-url", CM_OPT_STRING, "redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", NULL, 0, 0,
         CM_OPT_SECRET_URL,
         "redis://[user:password@]host:port[/db], "
         "redis+sentinel://[user:password@]h1:26379,h2:26379/mastername[/db] or "
         "redis+cluster://[user:password@]h1:p1,h2:p2",
         &redis_url},
        {"stage", CM_OPT_ENUM, "all", NULL, "ingest|fanout|all", 0, 0, 0,
         "which queues to work: ingest (inbound), fanout, or all (alternating)", &stage},
        {"queue-partitions", CM_OPT_INT, "1", NULL, NULL, 1, CM_QUEUE_PARTITIONS_MAX, 0,
         "independent queue sets, one hash slot each (same value on every gateway and worker); the worker "
         "works each on its own thread",
         &partitions},
        {"partitions", CM_OPT_STRING, "all", NULL, NULL, 0, 0, 0,
         "which queue partitions this worker works: all, or a list such as 0-3,6 (every partition needs a "
         "worker)",
         &lanes},
        {"batch", CM_OPT_INT, "64", NULL, NULL, 1, WK_BATCH_MAX, 0, "queue items taken per round trip", &batch},
        {"history-max", CM_OPT_INT, "10000", NULL, NULL, 1, 100000000, 0,
         "messages kept per conversation (newest)", &history_max},
        {"idempotency-ttl", CM_OPT_SECONDS, "86400", NULL, NULL, 1, 31536000, 0,
         "how long a send id is remembered for retries", &idem_ttl},
        {"max-text-bytes", CM_OPT_BYTES, "4096", NULL, NULL, 1, 1048576, 0, "largest message text (UTF-8 bytes)",
         &max_text},
        {"worker-id", CM_OPT_STRING, NULL, "<hostname>-<pid>-<random>", NULL, 0, 0, 0,
         "names this worker's processing lists; unique per running worker", &worker_id},
        {"heartbeat", CM_OPT_SECONDS, "2", NULL, NULL, 0.1, 60, 0,
         "heartbeat period; a worker silent for 5 periods is reaped", &heartbeat},
        {"log-format", CM_OPT_ENUM, "text", NULL, "text|json", 0, 0, 0, "log records as text or JSON lines",
         &log_format},
        {"log-level", CM_OPT_ENUM, "info", NULL, "debug|info|warn|error", 0, 0, 0, "lowest level logged",
         &log_level},
        {"wait-replicas", CM_OPT_INT, "1", NULL, NULL, 0, 16, 0,
         "replicas (of those connected to the master) that must have a batch's writes before it is acked; 0: "
         "do not wait",
         &wait_replicas},
        {"wait-timeout", CM_OPT_SECONDS, "1", NULL, NULL, 0.01, 60, 0,
         "longest wait for --wait-replicas; then the batch is acked anyway (replication_lag is logged)",
         &wait_timeout},
        {"emf", CM_OPT_BOOL, "false", NULL, NULL, 0, 0, 0,
         "write queue depths to stdout as CloudWatch Embedded Metric Format lines", &emf},
        {"emf-interval", CM_OPT_SECONDS, "10", NULL, NULL, 1, 3600, 0, "period of the --emf lines", &emf_interval},
        {"emf-namespace", CM_OPT_STRING, "chatmi", NULL, NULL, 0, 0, 0, "CloudWatch namespace of the --emf metrics",
         &emf_namespace},
        {"metrics-listen", CM_OPT_STRING, NULL, "off", NULL, 0, 0, 0,
         "ADDR:PORT of an HTTP endpoint for Prometheus (GET /metrics, /healthz, /readyz), e.g. 0.0.0.0:9091",
         &metrics_listen},
    };
    const size_t nopts = sizeof opts / sizeof opts[0];
    enum wk_options_result res = WK_OPTIONS_ERROR;
    char from[sizeof opts / sizeof opts[0]];

    memset(cfg, 0, sizeof *cfg);
    enum cm_opt_result pr = cm_opt_parse_from(opts, nopts, argc, argv, "Usage: chatmi-worker [OPTIONS]",
                                              "chatmi-worker " PACKAGE_VERSION, from, err, sizeof err);
    if (pr == CM_OPT_EXIT) {
        res = WK_OPTIONS_EXIT;
        goto out;
    }
    if (pr != CM_OPT_OK) {
        fprintf(stderr, "chatmi-worker: %s\n", err);
        goto out;
    }
    if (!redis_url || cm_redis_url_parse(redis_url, &cfg->url, err, sizeof err) < 0) {
        fprintf(stderr, "chatmi-worker: --redis-url: %s\n", redis_url ? err : "missing");
        goto out;
    }
    if (worker_id && !valid_worker_id(worker_id)) {
        fprintf(stderr, "chatmi-worker: --worker-id: 1 to %d characters of A-Z a-z 0-9 _ . - :\n",
                WK_WORKER_ID_MAX);
        goto out;
    }
    if (worker_id) {
        strcpy(cfg->worker_id, worker_id);
    } else if (default_worker_id(cfg->worker_id, sizeof cfg->worker_id) < 0) {
        fprintf(stderr, "chatmi-worker: --worker-id: no random bytes for the default\n");
        goto out;
    }
    if (!emf_namespace || !emf_namespace_valid(emf_namespace)) {
        fprintf(stderr, "chatmi-worker: --emf-namespace: 1 to %d characters of A-Z a-z 0-9 . - _ / # :, not "
                        "starting with AWS/\n", WK_EMF_NAMESPACE_MAX);
        goto out;
    }
    strcpy(cfg->emf_namespace, emf_namespace);
    if (metrics_listen != NULL && *metrics_listen != '\0' && strcmp(metrics_listen, "off") != 0) {
        if (cm_net_parse_hostport(metrics_listen, cfg->metrics_host, sizeof cfg->metrics_host, &cfg->metrics_port,
                                  err, sizeof err) < 0) {
            fprintf(stderr, "chatmi-worker: --metrics-listen: %s\n", err);
            goto out;
        }
        cfg->metrics_on = 1;
    }
    cfg->emf_interval_ms = emf ? (int64_t)(emf_interval * 1000 + 0.5) : 0;
    cfg->stage = (enum wk_stage)stage;
    cfg->batch = batch;
    cfg->history_max = history_max;
    cfg->idem_ttl_s = (long)(idem_ttl + 0.5);
    cfg->max_text_bytes = max_text;
    cfg->heartbeat_ms = (int64_t)(heartbeat * 1000 + 0.5);
    cfg->wait_replicas = wait_replicas;
    cfg->partitions = (unsigned)partitions;
    {
        unsigned char take[CM_QUEUE_PARTITIONS_MAX];
        if (wk_partitions_parse(lanes, cfg->partitions, take, err, sizeof err) < 0) {
            fprintf(stderr, "chatmi-worker: --partitions: %s\n", err);
            goto out;
        }
        for (unsigned p = 0; p < cfg->partitions; p++)
            if (take[p])
                cfg->lane_partition[cfg->nlanes++] = p;
    }
    cfg->wait_timeout_ms = (int64_t)(wait_timeout * 1000 + 0.5);

    cm_log_init("chatmi-worker", log_format == 1 ? CM_LOG_JSON : CM_LOG_TEXT, (enum cm_log_level)log_level);
    char url[512];
    cm_redis_url_describe(&cfg->url, url, sizeof url);
    const struct cm_log_field extra[] = {{"redis_effective", url}, {"worker_id_effective", cfg->worker_id}};
    cm_opt_log_config(opts, nopts, from, "config", extra, 2);
    res = WK_OPTIONS_OK;
out:
    cm_opt_free(opts, nopts);
    return res;
}
