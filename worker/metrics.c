/* metrics.c: the worker's counters, histograms and their exposition
 * (metrics.h). */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/prom.h"
#include "worker/emf.h"
#include "worker/metrics.h"
#include "worker/worker.h"

/* Upper bounds of the stage histograms, in seconds: 100 us (a pipelined
 * round trip on a LAN) to 10 s (a WAIT timing out, a stalled Redis). */
static const double bounds[WK_MBUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                           0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
static const char *const stage_names[WK_MSTAGE__COUNT] = {"take", "store", "wait_replicas", "reply", "fanout"};
static const char *const op_names[WK_MOPS] = {"unknown", "send", "join", "leave", "history", "convs", "presence"};
static const char *const result_names[WK_MRESULT__COUNT] = {"ok", "error", "dead"};

/* Single writer: a relaxed load and store, no locked instruction. */
static inline void bump(uint64_t *p, uint64_t d)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + d, __ATOMIC_RELAXED);
}

static inline uint64_t get(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void wk_metrics_init(struct wk_metrics *m, int enabled)
{
    memset(m, 0, sizeof(*m));
    m->enabled = enabled;
    for (int i = 0; i < WK_MD__COUNT; i++)
        m->depth[i] = -1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t wk_metrics_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t wk_metric_stage(struct wk_metrics *m, enum wk_mstage s, int64_t t0)
{
    int64_t now = wk_metrics_now();
    if ((unsigned)s >= WK_MSTAGE__COUNT)
        return now;
    uint64_t ns = now > t0 ? (uint64_t)(now - t0) : 0;
    double secs = (double)ns / 1e9;
    size_t b = 0;
    while (b < WK_MBUCKETS && secs > bounds[b])
        b++;
    struct wk_histogram *h = &m->stage[s];
    bump(&h->bucket[b], 1);
    bump(&h->sum_ns, ns);
    return now;
}

/* Reads a msgpack str header at p (fixstr, str8, str16): its length and
 * where the bytes start; -1 when p is not a str. */
static long str_at(const unsigned char *p, const unsigned char *end, const unsigned char **body)
{
    if (p >= end)
        return -1;
    long n;
    if ((*p & 0xE0) == 0xA0)
        n = *p & 0x1F, *body = p + 1;
    else if (*p == 0xD9 && end - p >= 2)
        n = p[1], *body = p + 2;
    else if (*p == 0xDA && end - p >= 3)
        n = (long)p[1] << 8 | p[2], *body = p + 3;
    else
        return -1;
    return *body + n <= end ? n : -1;
}

/* The code of an error reply (cm_pack_error: {"op":"error",["id":..,]
 * "code":..,"message":..}), CM_ERR_NONE when reply is not an error. Only
 * the few leading bytes are looked at for the common case (not an error). */
static enum cm_err reply_error_code(const msgpack_sbuffer *reply)
{
    static const unsigned char op_error[] = {0xA2, 'o', 'p', 0xA5, 'e', 'r', 'r', 'o', 'r'};
    const unsigned char *p = (const unsigned char *)reply->data, *end = p + reply->size;
    if (reply->size < 1 + sizeof(op_error) || (p[0] & 0xF0) != 0x80 ||
        memcmp(p + 1, op_error, sizeof(op_error)) != 0)
        return CM_ERR_NONE;
    size_t pairs = (p[0] & 0x0F) - 1;
    p += 1 + sizeof(op_error);
    for (size_t i = 0; i < pairs; i++) {
        const unsigned char *k, *v;
        long kn = str_at(p, end, &k);
        if (kn < 0)
            break;
        long vn = str_at(k + kn, end, &v);
        if (vn < 0)
            break;
        if (kn == 4 && memcmp(k, "code", 4) == 0) {
            for (int e = CM_ERR_BAD_REQUEST; e <= CM_ERR_INTERNAL; e++) {
                const char *name = cm_err_code((enum cm_err)e);
                if ((size_t)vn == strlen(name) && memcmp(v, name, (size_t)vn) == 0)
                    return (enum cm_err)e;
            }
            return CM_ERR_INTERNAL;
        }
        p = v + vn;
    }
    return CM_ERR_INTERNAL;
}

void wk_metric_request(struct wk_metrics *m, enum cm_op op, int dead, const msgpack_sbuffer *reply)
{
    if ((unsigned)op >= WK_MOPS)
        op = CM_OP_UNKNOWN;
    enum wk_mresult r = WK_MRESULT_OK;
    if (dead) {
        r = WK_MRESULT_DEAD;
    } else {
        enum cm_err e = reply_error_code(reply);
        if (e != CM_ERR_NONE) {
            r = WK_MRESULT_ERROR;
            bump(&m->errors[e - CM_ERR_BAD_REQUEST], 1);
        }
    }
    bump(&m->processed[op][r], 1);
}

void wk_metric_redis_up(struct wk_metrics *m, int up)
{
    __atomic_store_n(&m->redis_up, (int64_t)(up != 0), __ATOMIC_RELAXED);
}

int wk_metrics_tick(struct wk *w, int64_t now_ms)
{
    struct wk_metrics *m = &w->metrics;
    const struct wk_stats *s = &w->stats;
    const uint64_t v[WK_MC__COUNT] = {
        [WK_MC_REQUESTS] = s->requests,         [WK_MC_SENDS] = s->sends,
        [WK_MC_DEAD] = s->dead,                 [WK_MC_DELIVERIES] = s->deliveries,
        [WK_MC_FANOUT_REPEATS] = s->fanout_repeats, [WK_MC_ROUND_TRIPS] = w->conn.round_trips,
        [WK_MC_REDIRECTS] = w->conn.redirects,
        [WK_MC_RECONNECTS] = s->reconnects,
    };
    for (int i = 0; i < WK_MC__COUNT; i++)
        __atomic_store_n(&m->copy[i], v[i], __ATOMIC_RELAXED);
    if (!m->enabled || now_ms < m->depth_next_ms || w->lane != 0)
        return 0;
    /* With --emf on, the record's reading (emf_tick runs first in a turn)
     * serves while younger than the gauges' period: one round trip to every
     * partition where there were two. The next is due a period after the
     * reading used, so the gauges are still at most a period old. */
    struct wk_emf_depths d = {-1, -1, -1, -1};
    int64_t read_ms = now_ms;
    if (wk_depth_reading_fresh(&w->depths, now_ms, WK_METRICS_DEPTH_MS)) {
        d = w->depths.d;
        read_ms = w->depths.read_ms;
    } else if (emf_read_depths(&w->conn, w->all_keys, w->nparts, &d) < 0) {
        return -1;
    }
    m->depth_next_ms = read_ms + WK_METRICS_DEPTH_MS;
    const long long got[WK_MD__COUNT] = {d.inbound, d.fanout, d.dead, d.workers};
    for (int i = 0; i < WK_MD__COUNT; i++)
        __atomic_store_n(&m->depth[i], (int64_t)got[i], __ATOMIC_RELAXED);
    return 0;
}

/* ---- exposition ------------------------------------------------------------------- */

static void counter(struct cm_prom_text *t, const char *name, const char *help, uint64_t v)
{
    cm_prom_family(t, name, "counter", help);
    cm_prom_add(t, "%s %" PRIu64 "\n", name, v);
}

static void histograms(struct cm_prom_text *t, const struct wk_metrics *m)
{
    const char *name = "chatmi_worker_stage_seconds";
    cm_prom_family(t, name, "histogram", "Time a batch spends in each stage");
    for (int s = 0; s < WK_MSTAGE__COUNT; s++) {
        const struct wk_histogram *h = &m->stage[s];
        /* _count is the +Inf bucket by definition: taken from the same
         * reads, so a scrape racing an update never shows them apart. */
        uint64_t cum = 0;
        for (int b = 0; b <= WK_MBUCKETS; b++) {
            cum += get(&h->bucket[b]);
            if (b < WK_MBUCKETS)
                cm_prom_add(t, "%s_bucket{stage=\"%s\",le=\"%g\"} %" PRIu64 "\n", name, stage_names[s], bounds[b], cum);
            else
                cm_prom_add(t, "%s_bucket{stage=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", name, stage_names[s], cum);
        }
        cm_prom_add(t, "%s_sum{stage=\"%s\"} %.9f\n", name, stage_names[s], (double)get(&h->sum_ns) / 1e9);
        cm_prom_add(t, "%s_count{stage=\"%s\"} %" PRIu64 "\n", name, stage_names[s], cum);
    }
}

/* The lanes' metrics as one: counters and histograms add up; the depth
 * gauges are lane 0's (it reads every partition); redis_up is 1 only
 * while every lane is connected. */
static void sum_lanes(struct wk_metrics *m, const struct wk_metrics *const *lanes, size_t n)
{
    memset(m, 0, sizeof *m);
    m->redis_up = 1;
    for (size_t l = 0; l < n; l++) {
        const struct wk_metrics *x = lanes[l];
        for (int op = 0; op < WK_MOPS; op++)
            for (int r = 0; r < WK_MRESULT__COUNT; r++)
                m->processed[op][r] += get(&x->processed[op][r]);
        for (int e = 0; e < WK_MERRS; e++)
            m->errors[e] += get(&x->errors[e]);
        for (int s = 0; s < WK_MSTAGE__COUNT; s++) {
            for (int b = 0; b <= WK_MBUCKETS; b++)
                m->stage[s].bucket[b] += get(&x->stage[s].bucket[b]);
            m->stage[s].sum_ns += get(&x->stage[s].sum_ns);
        }
        for (int c = 0; c < WK_MC__COUNT; c++)
            m->copy[c] += get(&x->copy[c]);
        if (__atomic_load_n(&x->redis_up, __ATOMIC_RELAXED) == 0)
            m->redis_up = 0;
    }
    for (int d = 0; d < WK_MD__COUNT; d++)
        m->depth[d] = n > 0 ? __atomic_load_n(&lanes[0]->depth[d], __ATOMIC_RELAXED) : -1;
    m->start_time = n > 0 ? lanes[0]->start_time : 0;
}

int wk_metrics_render(const struct wk_metrics *const *lanes, size_t nlanes, const char *worker_id,
                      const char *stage, char **out, size_t *outlen)
{
    struct wk_metrics sum;
    const struct wk_metrics *m = &sum;
    sum_lanes(&sum, lanes, nlanes);
    struct cm_prom_text t;
    if (cm_prom_init(&t, 16384) < 0)
        return -1;
    cm_prom_family(&t, "chatmi_worker_build_info", "gauge", "Always 1; the labels say which build runs and as what");
    cm_prom_add(&t, "chatmi_worker_build_info{version=\"%s\",worker_id=\"%s\",stage=\"%s\"} 1\n", PACKAGE_VERSION,
        worker_id, stage);
    cm_prom_family(&t, "chatmi_worker_start_time_seconds", "gauge", "Start of the worker process, Unix time");
    cm_prom_add(&t, "chatmi_worker_start_time_seconds %.3f\n", m->start_time);
    cm_prom_family(&t, "chatmi_worker_redis_up", "gauge", "1 while the worker is connected to the Redis master");
    cm_prom_add(&t, "chatmi_worker_redis_up %" PRId64 "\n", __atomic_load_n(&m->redis_up, __ATOMIC_RELAXED));

    cm_prom_family(&t, "chatmi_worker_queue_depth", "gauge",
         "Items waiting in each queue (read every 5 s; -1 before the first read)");
    static const char *const queues[3] = {"inbound", "fanout", "dead"};
    for (int q = 0; q < 3; q++)
        cm_prom_add(&t, "chatmi_worker_queue_depth{queue=\"%s\"} %" PRId64 "\n", queues[q],
            __atomic_load_n(&m->depth[q], __ATOMIC_RELAXED));
    cm_prom_family(&t, "chatmi_worker_live_workers", "gauge", "Workers in the heartbeat set (read every 5 s; -1 before)");
    cm_prom_add(&t, "chatmi_worker_live_workers %" PRId64 "\n", __atomic_load_n(&m->depth[WK_MD_WORKERS], __ATOMIC_RELAXED));

    cm_prom_family(&t, "chatmi_worker_processed_total", "counter", "Client requests processed, by op and result");
    for (int op = 0; op < WK_MOPS; op++)
        for (int r = 0; r < WK_MRESULT__COUNT; r++)
            cm_prom_add(&t, "chatmi_worker_processed_total{op=\"%s\",result=\"%s\"} %" PRIu64 "\n", op_names[op],
                result_names[r], get(&m->processed[op][r]));
    cm_prom_family(&t, "chatmi_worker_errors_total", "counter", "Error replies sent to clients, by protocol code");
    for (int e = 0; e < WK_MERRS; e++)
        cm_prom_add(&t, "chatmi_worker_errors_total{code=\"%s\"} %" PRIu64 "\n", cm_err_code((enum cm_err)(e + 1)),
            get(&m->errors[e]));

    counter(&t, "chatmi_worker_requests_total", "Envelopes taken from the inbound queue that decoded",
            get(&m->copy[WK_MC_REQUESTS]));
    counter(&t, "chatmi_worker_messages_stored_total", "New messages stored (retries not counted)",
            get(&m->copy[WK_MC_SENDS]));
    counter(&t, "chatmi_worker_dead_letters_total", "Items moved to the dead list", get(&m->copy[WK_MC_DEAD]));
    counter(&t, "chatmi_worker_deliveries_published_total", "Per-user PUBLISHes made by the fan-out",
            get(&m->copy[WK_MC_DELIVERIES]));
    counter(&t, "chatmi_worker_fanout_repeats_total", "Fan-out parts skipped as already published (redone jobs)",
            get(&m->copy[WK_MC_FANOUT_REPEATS]));
    counter(&t, "chatmi_worker_redis_round_trips_total", "Round trips to Redis (a pipeline counts once)",
            get(&m->copy[WK_MC_ROUND_TRIPS]));
    counter(&t, "chatmi_worker_redis_reconnects_total", "Connections to Redis after the first",
            get(&m->copy[WK_MC_RECONNECTS]));
    counter(&t, "chatmi_worker_redis_redirects_total", "MOVED and ASK redirections followed (Redis Cluster)",
            get(&m->copy[WK_MC_REDIRECTS]));
    histograms(&t, m);
    return cm_prom_finish(&t, out, outlen);
}
