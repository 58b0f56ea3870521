/* metrics.c: the shared counter segment, its cells and its Prometheus
 * rendering (metrics.h). */
#include <config.h>

#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "common/prom.h"

/* Cells per configured child: the child, its successor during a reload and
 * retiring children of two more overlapping reloads. */
#define CELLS_PER_PROCESS 4
#define CELLS_SPARE 4
/* A scrape retries this often while the master folds cells (a fold is a few
 * dozen stores), then renders what it has. */
#define FOLD_RETRIES 1000

struct gw_metrics_shared {
    uint64_t fold_seq;                /* odd while the master folds a cell */
    double start_time;                /* the master's start, Unix seconds */
    struct gw_metrics_cell master;    /* the master's counters and those of exited children */
    unsigned char used[];             /* ncells flags (master only); the cells follow, aligned */
};

struct metric_desc {
    const char *name;
    const char *type;
    const char *help;
    const char *label;                /* NULL: none */
    const char *value;
};

#define HS "chatmi_gateway_handshakes_total", "counter", "WebSocket handshakes by result", "result"
#define ERR "chatmi_gateway_errors_total", "counter", "Error replies sent by the gateway itself, by protocol code", "code"

static const struct metric_desc descs[GW_M__COUNT] = {
    [GW_M_CONNS_OPEN] = {"chatmi_gateway_connections", "gauge", "WebSocket sessions open", NULL, NULL},
    [GW_M_CONNS_TOTAL] = {"chatmi_gateway_connections_total", "counter", "WebSocket sessions opened", NULL, NULL},
    [GW_M_HANDSHAKE_OK] = {HS, "ok"},
    [GW_M_HANDSHAKE_BAD_REQUEST] = {HS, "bad_request"},
    [GW_M_HANDSHAKE_UNAUTHORIZED] = {HS, "unauthorized"},
    [GW_M_HANDSHAKE_FORBIDDEN_ORIGIN] = {HS, "forbidden_origin"},
    [GW_M_HANDSHAKE_BAD_VERSION] = {HS, "unsupported_version"},
    [GW_M_HANDSHAKE_DRAINING] = {HS, "draining"},
    [GW_M_HANDSHAKE_OVER_LIMIT] = {HS, "over_limit"},
    [GW_M_HANDSHAKE_TIMEOUT] = {HS, "timeout"},
    [GW_M_HANDSHAKE_ERROR] = {HS, "error"},
    [GW_M_HTTP_REQUESTS] = {"chatmi_gateway_http_requests_total", "counter",
                            "Plain HTTP requests answered (not WebSocket upgrades)", NULL, NULL},
    [GW_M_FRAMES_IN] = {"chatmi_gateway_messages_in_total", "counter", "WebSocket messages received from clients",
                        NULL, NULL},
    [GW_M_BYTES_IN] = {"chatmi_gateway_bytes_in_total", "counter", "Bytes received from clients", NULL, NULL},
    [GW_M_FRAMES_OUT] = {"chatmi_gateway_frames_out_total", "counter", "WebSocket frames queued to clients", NULL,
                         NULL},
    [GW_M_BYTES_OUT] = {"chatmi_gateway_bytes_out_total", "counter", "Bytes written to clients", NULL, NULL},
    [GW_M_REQUESTS_QUEUED] = {"chatmi_gateway_requests_queued_total", "counter",
                              "Requests pushed to the inbound queue", NULL, NULL},
    [GW_M_DELIVERIES] = {"chatmi_gateway_deliveries_total", "counter", "Server messages delivered to sessions", NULL,
                         NULL},
    [GW_M_ERR_BAD_REQUEST] = {ERR, "bad_request"},
    [GW_M_ERR_FORBIDDEN] = {ERR, "forbidden"},
    [GW_M_ERR_NOT_FOUND] = {ERR, "not_found"},
    [GW_M_ERR_TOO_LARGE] = {ERR, "too_large"},
    [GW_M_ERR_RATE_LIMITED] = {ERR, "rate_limited"},
    [GW_M_ERR_UNAVAILABLE] = {ERR, "unavailable"},
    [GW_M_ERR_INTERNAL] = {ERR, "internal"},
    [GW_M_RESYNCS] = {"chatmi_gateway_resyncs_total", "counter",
                      "Resync messages sent to sessions after a subscription gap", NULL, NULL},
    [GW_M_SLOW_CLOSES] = {"chatmi_gateway_slow_client_disconnects_total", "counter",
                          "Sessions closed (1013) for exceeding --max-queued-bytes", NULL, NULL},
    [GW_M_REDIS_RECONNECTS] = {"chatmi_gateway_redis_reconnects_total", "counter", "Redis reconnections", NULL,
                               NULL},
    [GW_M_SUBSCRIPTIONS] = {"chatmi_gateway_subscriptions", "gauge", "Per-user channels subscribed", NULL, NULL},
    [GW_M_ROOM_SUBSCRIPTIONS] = {"chatmi_gateway_room_subscriptions", "gauge",
                                 "Room channels subscribed (one per room with members on a child)", NULL, NULL},
    [GW_M_PROCESSES_RUNNING] = {"chatmi_gateway_processes_running", "gauge",
                                "Child processes alive (retiring ones included)", NULL, NULL},
    [GW_M_CHILD_STARTS] = {"chatmi_gateway_process_starts_total", "counter", "Child processes started", NULL, NULL},
    [GW_M_CHILD_RESTARTS] = {"chatmi_gateway_process_restarts_total", "counter",
                             "Child process starts beyond the first of each child (crash respawns and reloads)",
                             NULL, NULL},
};

static int is_gauge(enum gw_counter c)
{
    return descs[c].type[0] == 'g';
}

static size_t cells_offset(size_t ncells)
{
    size_t off = sizeof(struct gw_metrics_shared) + ncells;
    return (off + 63) & ~(size_t)63;
}

struct gw_metrics_cell *gw_metrics_cell(const struct gw_metrics *m, size_t cell)
{
    struct gw_metrics_cell *cells = (struct gw_metrics_cell *)((char *)m->shm + cells_offset(m->ncells));
    return &cells[cell < m->ncells ? cell : m->ncells - 1];
}

int gw_metrics_map(struct gw_metrics *m, size_t processes)
{
    size_t ncells = processes * CELLS_PER_PROCESS + CELLS_SPARE;
    size_t size = cells_offset(ncells) + ncells * sizeof(struct gw_metrics_cell);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    memset(p, 0, size);
    m->shm = p;
    m->size = size;
    m->ncells = ncells;
    m->processes = processes;
    m->own = &m->shm->master;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->shm->start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    return 0;
}

void gw_metrics_unmap(struct gw_metrics *m)
{
    if (m->shm != NULL)
        munmap(m->shm, m->size);
    memset(m, 0, sizeof(*m));
}

size_t gw_metrics_cell_take(struct gw_metrics *m, int *overflow)
{
    *overflow = 0;
    for (size_t i = 0; i + 1 < m->ncells; i++) {
        if (!m->shm->used[i]) {
            m->shm->used[i] = 1;
            /* Zero already: fresh from the mapping, or folded and cleared. */
            gw_metric_set(gw_metrics_cell(m, i), GW_M_PROCESSES_RUNNING, 1);
            return i;
        }
    }
    *overflow = 1;
    gw_metric_add(gw_metrics_cell(m, m->ncells - 1), GW_M_PROCESSES_RUNNING, 1);
    return m->ncells - 1;
}

void gw_metrics_cell_release(struct gw_metrics *m, size_t cell)
{
    struct gw_metrics_cell *c = gw_metrics_cell(m, cell);
    if (cell + 1 >= m->ncells) {
        /* Shared overflow cell: only the running flag is known to be ours. */
        gw_metric_add(c, GW_M_PROCESSES_RUNNING, -1);
        return;
    }
    uint64_t *seq = &m->shm->fold_seq;
    __atomic_store_n(seq, __atomic_load_n(seq, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    for (int k = 0; k < GW_M__COUNT; k++) {
        uint64_t v = __atomic_load_n(&c->v[k], __ATOMIC_RELAXED);
        if (!is_gauge((enum gw_counter)k))
            gw_metric_add(&m->shm->master, (enum gw_counter)k, (int64_t)v);
        __atomic_store_n(&c->v[k], 0, __ATOMIC_RELAXED);
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(seq, __atomic_load_n(seq, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
    m->shm->used[cell] = 0;
}

enum gw_counter gw_metric_handshake_status(int status)
{
    switch (status) {
    case 101: return GW_M_HANDSHAKE_OK;
    case 400:
    case 405:
    case 431: return GW_M_HANDSHAKE_BAD_REQUEST;
    case 401: return GW_M_HANDSHAKE_UNAUTHORIZED;
    case 403: return GW_M_HANDSHAKE_FORBIDDEN_ORIGIN;
    case 426: return GW_M_HANDSHAKE_BAD_VERSION;
    case 503: return GW_M_HANDSHAKE_DRAINING;
    default: return GW_M_HANDSHAKE_ERROR;
    }
}

/* Sums every cell into out[], consistently with respect to folds. */
static void snapshot(const struct gw_metrics *m, uint64_t out[GW_M__COUNT])
{
    const uint64_t *seq = &m->shm->fold_seq;
    for (int attempt = 0; attempt < FOLD_RETRIES; attempt++) {
        uint64_t s1 = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
        for (int k = 0; k < GW_M__COUNT; k++)
            out[k] = __atomic_load_n(&m->shm->master.v[k], __ATOMIC_RELAXED);
        for (size_t i = 0; i < m->ncells; i++) {
            const struct gw_metrics_cell *c = gw_metrics_cell(m, i);
            for (int k = 0; k < GW_M__COUNT; k++)
                out[k] += __atomic_load_n(&c->v[k], __ATOMIC_RELAXED);
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if ((s1 & 1) == 0 && __atomic_load_n(seq, __ATOMIC_RELAXED) == s1)
            return;
    }
}

int gw_metrics_render(const struct gw_metrics *m, char **out, size_t *outlen)
{
    uint64_t sum[GW_M__COUNT];
    snapshot(m, sum);

    struct cm_prom_text t;
    if (cm_prom_init(&t, 8192) < 0)
        return -1;
    cm_prom_family(&t, "chatmi_gateway_build_info", "gauge", "Always 1; the labels say which build runs");
    cm_prom_add(&t, "chatmi_gateway_build_info{version=\"%s\",program=\"chatmi-gateway\"} 1\n", PACKAGE_VERSION);
    cm_prom_family(&t, "chatmi_gateway_start_time_seconds", "gauge", "Start of the master process, Unix time");
    cm_prom_add(&t, "chatmi_gateway_start_time_seconds %.3f\n", m->shm->start_time);
    cm_prom_family(&t, "chatmi_gateway_processes", "gauge", "Child processes configured (--processes)");
    cm_prom_add(&t, "chatmi_gateway_processes %zu\n", m->processes);
    const char *prev = NULL;
    for (int c = 0; c < GW_M__COUNT; c++) {
        const struct metric_desc *d = &descs[c];
        if (prev == NULL || strcmp(prev, d->name) != 0)
            cm_prom_family(&t, d->name, d->type, d->help);
        prev = d->name;
        char value[32];
        if (is_gauge((enum gw_counter)c))
            snprintf(value, sizeof(value), "%" PRId64, (int64_t)sum[c]);
        else
            snprintf(value, sizeof(value), "%" PRIu64, sum[c]);
        if (d->label != NULL)
            cm_prom_add(&t, "%s{%s=\"%s\"} %s\n", d->name, d->label, d->value, value);
        else
            cm_prom_add(&t, "%s %s\n", d->name, value);
    }
    return cm_prom_finish(&t, out, outlen);
}
