/* main.c: chatmi-worker: options, signals, the lanes and their loop
 * (docs/architecture.md, "Worker").
 *
 * A lane is the worker's whole loop (take, ingest, hand-off, fan-out,
 * heartbeat and reaper) on one queue partition, with its own Redis
 * connection, counters and metrics, on its own thread. --queue-partitions N
 * runs N lanes, so every partition is waited on by a blocking BLMOVE of its
 * own and none adds latency to another. The main thread only waits for a
 * stop signal, then joins the lanes; each finishes its batch and leaves its
 * partition's heartbeat set first. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/cluster.h"
#include "common/keys.h"
#include "common/log.h"
#include "worker/emf.h"
#include "worker/fanout.h"
#include "worker/ingest.h"
#include "worker/metrics_http.h"
#include "worker/options.h"
#include "worker/queue.h"
#include "worker/replicas.h"
#include "worker/worker.h"

/* Longest a BLMOVE waits, so a stop request is seen within a second. */
#define WAIT_MAX_S 1.0
/* Stage all can block on one list only (inbound); fan-out jobs queued by
 * ingest-only workers wait at most this long for it. */
#define WAIT_ALL_S 0.25
#define STATS_EVERY_MS 60000

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Lanes read the flag the handler sets (in the main thread). */
static int stopping(void)
{
    return __atomic_load_n(&stop_requested, __ATOMIC_RELAXED) != 0;
}

static void setup_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

/* Partition p of n: its tag is "q" when n is 1 (chatmi:{q}:inbound). */
static void init_keys(struct wk_keys *k, const char *id, unsigned p, unsigned n)
{
    char tag[CM_QUEUE_TAG_MAX];
    cm_queue_tag(tag, p, n);
    cm_key_queue_in(k->inbound, tag, "inbound");
    cm_key_queue_in(k->fanout, tag, "fanout");
    cm_key_queue_proc_in(k->inbound_proc, tag, "inbound", id);
    cm_key_queue_proc_in(k->fanout_proc, tag, "fanout", id);
    cm_key_queue_proc_in(k->inbound_proc_prefix, tag, "inbound", "");
    cm_key_queue_proc_in(k->fanout_proc_prefix, tag, "fanout", "");
    cm_key_queue_in(k->workers, tag, "workers");
    cm_key_queue_in(k->dead, tag, "dead");
}

/* Sleeps ms milliseconds or until a stop is requested. */
static void nap(long ms)
{
    int64_t end = cm_monotonic_ms() + ms;
    while (!stopping()) {
        int64_t left = end - cm_monotonic_ms();
        if (left <= 0)
            break;
        if (left > 100)
            left = 100;
        struct timespec ts = {0, (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Sleeps ms milliseconds like nap(), but ends early when the sentinels
 * announce a new master (conn_master_moved): the failover is over, so the
 * next attempt should not wait for the backoff. */
static void nap_until_switch(struct wk *w, long ms)
{
    int64_t end = cm_monotonic_ms() + ms;
    while (!stopping()) {
        char to[CM_REDIS_ADDR_TEXT_MAX];
        if (conn_master_moved(&w->conn, &w->cfg->url, to, sizeof to)) {
            cm_info("redis_sentinel_switch", "the sentinels moved master %s to %s; connecting now",
                    w->cfg->url.master, to);
            return;
        }
        int64_t left = end - cm_monotonic_ms();
        if (left <= 0)
            break;
        nap(left > 100 ? 100 : (long)left);
    }
}

/* Connects (and loads the scripts), retrying with backoff until it works or
 * a stop is requested; logs the master it reached when that is news (a
 * reconnect, a new master). 0 when connected, -1 when stopping. */
static int connect_with_backoff(struct wk *w, int reconnect)
{
    char err[1024];
    for (unsigned attempt = 0; !stop_requested; attempt++) {
        if (conn_open(&w->conn, &w->cfg->url, err, sizeof err) == 0) {
            const struct wk_conn *c = &w->conn;
            char at[CM_REDIS_ADDR_TEXT_MAX], was[CM_REDIS_ADDR_TEXT_MAX];
            cm_redis_addr_format(&c->where, at, sizeof at);
            cm_redis_addr_format(&c->prev, was, sizeof was);
            if (c->cluster) {
                /* where is only the node that gave the slot map. */
                if (attempt > 0 || reconnect || w->lane == 0)
                    cm_info("redis_connected", "connected to the Redis Cluster (%zu masters, slot map from %s) "
                            "after %u attempts", c->map->nnodes, at, attempt + 1);
            } else {
                if (c->moved)
                    cm_warn("redis_master_changed", "following the new Redis master %s%s%s (was %s)", at,
                            w->cfg->url.kind == CM_REDIS_SENTINEL ? " of " : "", w->cfg->url.master, was);
                if (attempt > 0 || c->moved || reconnect)
                    cm_info("redis_connected", "connected to Redis at %s after %u attempts", at, attempt + 1);
            }
            w->stats.reconnects += reconnect != 0;
            wk_metric_redis_up(&w->metrics, 1);
            return 0;
        }
        long ms = conn_backoff_ms(attempt);
        cm_warn("redis_connect", "%s; retrying in %ld ms", err, ms);
        nap_until_switch(w, ms);
    }
    return -1;
}

/* Takes one batch from queue (waiting up to wait_s when it is empty and
 * wait_s > 0; seen_empty: the caller just found it empty, so only wait)
 * and processes it. 1 when it did work, 0 when the queue was empty, -1 on
 * a connection failure. */
static int run_batch(struct wk *w, int ingest, double wait_s, int seen_empty)
{
    const char *q = ingest ? w->keys.inbound : w->keys.fanout;
    const char *proc = ingest ? w->keys.inbound_proc : w->keys.fanout_proc;
    struct queue_batch b;
    memset(&b, 0, sizeof b);

    /* The take stage is timed when it brings items, and the blocking wait
     * for an empty queue is not part of it (it measures idleness). */
    int64_t t = wk_metrics_now();
    int rc = seen_empty ? 0 : queue_take(&w->conn, q, proc, w->cfg->batch, &b);
    if (rc == 0 && b.n == 0 && wait_s > 0) {
        rc = queue_wait(&w->conn, q, proc, wait_s, &b);
        /* Whatever arrived with the first item joins its batch. */
        t = wk_metrics_now();
        if (rc == 0 && b.n == 1 && w->cfg->batch > 1)
            rc = queue_take(&w->conn, q, proc, w->cfg->batch - 1, &b);
    }
    if (rc == 0 && b.n > 0)
        t = wk_metric_stage(&w->metrics, WK_MSTAGE_TAKE, t);
    if (rc == 0 && b.n > 0)
        rc = ingest ? ingest_run(w, &b) : fanout_run(w, &b);
    if (rc == 0 && b.n > 0 && !ingest)
        wk_metric_stage(&w->metrics, WK_MSTAGE_FANOUT, t);
    int did = b.n > 0;
    queue_batch_free(&b);
    return rc < 0 ? -1 : did;
}

/* Finishes what this worker had in hand when it lost Redis (or what a
 * previous run with the same --worker-id left). 0 or -1. */
static int recover(struct wk *w)
{
    for (int ingest = 1; ingest >= 0; ingest--) {
        struct queue_batch b;
        memset(&b, 0, sizeof b);
        const char *proc = ingest ? w->keys.inbound_proc : w->keys.fanout_proc;
        int rc = queue_pending(&w->conn, proc, &b);
        if (rc == 0 && b.n > 0) {
            cm_info("recover", "redoing %zu items left in %s", b.n, proc);
            rc = ingest ? ingest_run(w, &b) : fanout_run(w, &b);
        }
        queue_batch_free(&b);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* The counters since start, as fields (JSON: numbers as strings). */
static void log_stats(const struct wk *w)
{
    const struct wk_stats *s = &w->stats;
    const uint64_t v[] = {s->requests, s->errors, s->sends, s->deliveries, s->fanout_repeats, s->dead, s->reconnects};
    static const char *const names[] = {"requests", "errors", "sends", "deliveries", "fanout_repeats", "dead",
                                        "reconnects"};
    char text[7][24];
    struct cm_log_field f[7];
    for (size_t i = 0; i < 7; i++) {
        snprintf(text[i], sizeof text[i], "%llu", (unsigned long long)v[i]);
        f[i].key = names[i];
        f[i].value = text[i];
    }
    cm_log_fields(CM_LOG_INFO, "stats", f, 7, "counters since start");
}

/* The heartbeat (and the reaper), and a fresh count of the master's
 * replicas for the acks' WAIT. 0, or -1 on a connection failure. */
static int beat(struct wk *w)
{
    const struct wk_config *cfg = w->cfg;
    if (queue_beat(&w->conn, &w->keys, cfg->worker_id, cfg->heartbeat_ms * WK_HEARTBEAT_MISSES) < 0)
        return -1;
    return replicas_refresh(w);
}

/* One turn of the loop: heartbeat when due, then a batch of each stage;
 * blocks (up to a second) only when every queue it works was empty. */
static int step(struct wk *w, int64_t *next_beat)
{
    const struct wk_config *cfg = w->cfg;
    int64_t now = cm_monotonic_ms();
    if (now >= *next_beat) {
        if (beat(w) < 0)
            return -1;
        *next_beat = now + cfg->heartbeat_ms;
    }
    if (emf_tick(w, now) < 0)
        return -1;
    if (wk_metrics_tick(w, now) < 0)
        return -1;
    double wait_s = (double)cfg->heartbeat_ms / 1000.0;
    if (wait_s > WAIT_MAX_S)
        wait_s = WAIT_MAX_S;

    int did = 0, rc;
    if (cfg->stage != WK_STAGE_FANOUT) {
        if ((rc = run_batch(w, 1, cfg->stage == WK_STAGE_INGEST ? wait_s : 0, 0)) < 0)
            return -1;
        did |= rc;
    }
    if (cfg->stage != WK_STAGE_INGEST) {
        if ((rc = run_batch(w, 0, cfg->stage == WK_STAGE_FANOUT ? wait_s : 0, 0)) < 0)
            return -1;
        did |= rc;
    }
    /* Stage all: both lists were empty; wait on inbound, where new work
     * starts (fan-out jobs come from ingest batches, ours included). */
    if (wait_s > WAIT_ALL_S)
        wait_s = WAIT_ALL_S;
    if (!did && cfg->stage == WK_STAGE_ALL && !stopping() && run_batch(w, 1, wait_s, 1) < 0)
        return -1;
    return 0;
}

/* A lane's loop until a stop is requested (the thread's body). */
static void *lane_run(void *arg)
{
    struct wk *wp = arg, *w = wp;
    const struct wk_config *cfg = w->cfg;
    char part[16];
    snprintf(part, sizeof part, "%u", w->partition);
    if (cfg->partitions > 1)
        cm_log_thread_field("partition", part);
    /* Keyless commands (the MULTI of a hand-off, ROLE) go to the master of
     * this lane's queues. */
    conn_pin(&w->conn, w->keys.inbound);

    int ready = 0, connected = 0;
    unsigned failures = 0; /* consecutive failed turns: backs off a Redis that refuses work */
    int64_t next_beat = 0, next_stats = cm_monotonic_ms() + STATS_EVERY_MS;
    struct wk_stats last = w->stats;
    while (!stopping()) {
        if (!connected) {
            if (connect_with_backoff(w, ready) < 0)
                break;
            connected = 1;
            next_beat = 0;
            if (beat(w) < 0 || recover(w) < 0) {
                cm_error("redis_lost", "Redis failed while recovering (%s); reconnecting", conn_errstr(&w->conn));
                conn_close(&w->conn);
                wk_metric_redis_up(&w->metrics, 0);
                connected = 0;
                nap_until_switch(w, conn_backoff_ms(failures++));
                continue;
            }
            if (!ready) {
                cm_info("ready", "worker %s ready: stage %s, batch %ld, queue %s", cfg->worker_id,
                        wk_stage_name(cfg->stage), cfg->batch, w->keys.inbound);
                ready = 1;
            }
        }
        if (step(w, &next_beat) < 0) {
            cm_error("redis_lost", "Redis failed (%s); reconnecting", conn_errstr(&w->conn));
            conn_close(&w->conn);
            wk_metric_redis_up(&w->metrics, 0);
            connected = 0;
            nap_until_switch(w, conn_backoff_ms(failures++));
            continue;
        }
        failures = 0;
        char to[CM_REDIS_ADDR_TEXT_MAX];
        if (conn_master_moved(&w->conn, &cfg->url, to, sizeof to)) {
            /* Between batches: nothing is in hand. */
            cm_warn("redis_failover", "the sentinels moved master %s to %s; reconnecting", cfg->url.master, to);
            conn_close(&w->conn);
            wk_metric_redis_up(&w->metrics, 0);
            connected = 0;
            continue;
        }
        if (cm_monotonic_ms() >= next_stats) {
            if (memcmp(&last, &w->stats, sizeof last) != 0)
                log_stats(w);
            last = w->stats;
            next_stats = cm_monotonic_ms() + STATS_EVERY_MS;
        }
    }
    /* Every batch taken was finished (step returns only between batches):
     * nothing is in hand, so leave the heartbeat set cleanly. */
    if (connected)
        (void)queue_forget(&w->conn, &w->keys, cfg->worker_id);
    conn_free(&w->conn);
    log_stats(w);
    return NULL;
}

int main(int argc, char **argv)
{
    struct wk_config cfg;
    switch (wk_options_parse(argc, argv, &cfg)) {
    case WK_OPTIONS_OK:
        break;
    case WK_OPTIONS_EXIT:
        return 0;
    case WK_OPTIONS_ERROR:
    default:
        return 2;
    }
    setup_signals();

    unsigned n = cfg.nlanes, nparts = cfg.partitions;
    struct wk *lanes = calloc(n, sizeof *lanes);
    struct wk_keys *keys = calloc(nparts, sizeof *keys);
    const struct wk_metrics **metrics = calloc(n, sizeof *metrics);
    pthread_t *threads = calloc(n, sizeof *threads);
    if (!lanes || !keys || !metrics || !threads) {
        cm_error("start_failed", "out of memory for %u lanes", n);
        free(threads);
        free(metrics);
        free(keys);
        free(lanes);
        return 1;
    }
    for (unsigned p = 0; p < nparts; p++)
        init_keys(&keys[p], cfg.worker_id, p, nparts);
    for (unsigned i = 0; i < n; i++) {
        struct wk *w = &lanes[i];
        w->cfg = &cfg;
        w->lane = i;
        w->partition = cfg.lane_partition[i];
        w->all_keys = keys;
        w->nparts = nparts;
        w->keys = keys[w->partition];
        wk_metrics_init(&w->metrics, cfg.metrics_on);
        metrics[i] = &w->metrics;
    }
    int rc = 0;
    struct wk_metrics_server metrics_server = {.listen_fd = -1};
    if (cfg.metrics_on) {
        char err[512];
        if (wk_metrics_server_start(&metrics_server, cfg.metrics_host, cfg.metrics_port, metrics, n, cfg.worker_id,
                                    wk_stage_name(cfg.stage), err, sizeof err) < 0) {
            cm_error("start_failed", "--metrics-listen %s:%d: %s", cfg.metrics_host, cfg.metrics_port, err);
            rc = 1;
            goto out;
        }
        cm_info("metrics_listen", "serving /metrics on %s:%d", cfg.metrics_host, cfg.metrics_port);
    }

    /* The lanes start with SIGINT and SIGTERM blocked, so the handler runs
     * on this thread, which waits for it in sigsuspend. */
    sigset_t stop_set, old;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_set, &old);
    unsigned started = 0;
    for (; started < n; started++) {
        int e = pthread_create(&threads[started], NULL, lane_run, &lanes[started]);
        if (e != 0) {
            cm_error("start_failed", "cannot start lane %u: %s", started, strerror(e));
            stop_requested = 1;
            rc = 1;
            break;
        }
    }
    if (nparts > 1)
        cm_info("lanes", "%u lanes started, one per queue partition worked (%u of %u)", started, n, nparts);
    while (!stopping())
        sigsuspend(&old);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    for (unsigned p = 0; p < started; p++)
        pthread_join(threads[p], NULL);
    wk_metrics_server_stop(&metrics_server);
    cm_info("exit", "worker %s stopped", cfg.worker_id);
out:
    free(threads);
    free(metrics);
    free(keys);
    free(lanes);
    return rc;
}
