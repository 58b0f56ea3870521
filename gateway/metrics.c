/* metrics.c: the shared counter segment and its Prometheus rendering. */
#include <config.h>

#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct metric_desc {
    const char *name;
    const char *type;
    const char *help;
};

static const struct metric_desc descs[GW_M__COUNT] = {
    [GW_M_CONNS_OPEN] = {"chatmi_gateway_connections", "gauge", "WebSocket sessions open"},
    [GW_M_CONNS_TOTAL] = {"chatmi_gateway_connections_total", "counter", "WebSocket sessions opened"},
    [GW_M_HANDSHAKE_OK] = {"chatmi_gateway_handshakes_ok_total", "counter", "Successful WebSocket handshakes"},
    [GW_M_HANDSHAKE_FAILED] = {"chatmi_gateway_handshakes_failed_total", "counter", "Refused WebSocket handshakes"},
    [GW_M_HTTP_REQUESTS] = {"chatmi_gateway_http_requests_total", "counter", "Plain HTTP requests answered"},
    [GW_M_FRAMES_IN] = {"chatmi_gateway_messages_in_total", "counter", "WebSocket messages received from clients"},
    [GW_M_BYTES_IN] = {"chatmi_gateway_bytes_in_total", "counter", "Bytes received from clients"},
    [GW_M_FRAMES_OUT] = {"chatmi_gateway_frames_out_total", "counter", "WebSocket frames queued to clients"},
    [GW_M_BYTES_OUT] = {"chatmi_gateway_bytes_out_total", "counter", "Bytes written to clients"},
    [GW_M_REQUESTS_QUEUED] = {"chatmi_gateway_requests_queued_total", "counter", "Requests pushed to the inbound queue"},
    [GW_M_DELIVERIES] = {"chatmi_gateway_deliveries_total", "counter", "Server messages delivered to sessions"},
    [GW_M_ERRORS_SENT] = {"chatmi_gateway_errors_total", "counter", "Error replies sent by the gateway itself"},
    [GW_M_RESYNCS] = {"chatmi_gateway_resyncs_total", "counter", "Resync messages sent to sessions after a subscription gap"},
    [GW_M_SLOW_CLOSES] = {"chatmi_gateway_slow_client_closes_total", "counter", "Sessions closed for a full output queue"},
    [GW_M_REDIS_RECONNECTS] = {"chatmi_gateway_redis_reconnects_total", "counter", "Redis reconnections"},
    [GW_M_SUBSCRIPTIONS] = {"chatmi_gateway_subscriptions", "gauge", "Per-user channels subscribed"},
    [GW_M_CHILD_STARTS] = {"chatmi_gateway_process_starts_total", "counter", "Child process starts"},
};

int gw_metrics_map(struct gw_metrics *m, size_t nslots)
{
    size_t size = nslots * sizeof(struct gw_metrics_slot);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    memset(p, 0, size);
    m->slots = p;
    m->nslots = nslots;
    return 0;
}

void gw_metrics_unmap(struct gw_metrics *m)
{
    if (m->slots != NULL)
        munmap(m->slots, m->nslots * sizeof(struct gw_metrics_slot));
    m->slots = NULL;
    m->nslots = 0;
}

int gw_metrics_render(const struct gw_metrics *m, char **out, size_t *outlen)
{
    size_t cap = 256 * GW_M__COUNT + 64;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -1;
    size_t len = 0;
    for (int c = 0; c < GW_M__COUNT; c++) {
        uint64_t sum = 0;
        for (size_t i = 0; i < m->nslots; i++)
            sum += __atomic_load_n(&m->slots[i].v[c], __ATOMIC_RELAXED);
        int n = snprintf(buf + len, cap - len, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", descs[c].name,
                         descs[c].help, descs[c].name, descs[c].type, descs[c].name, sum);
        if (n < 0 || (size_t)n >= cap - len) {
            free(buf);
            return -1;
        }
        len += (size_t)n;
    }
    int n = snprintf(buf + len, cap - len, "# HELP chatmi_gateway_processes Child processes configured\n"
                                           "# TYPE chatmi_gateway_processes gauge\nchatmi_gateway_processes %zu\n",
                     m->nslots);
    if (n < 0 || (size_t)n >= cap - len) {
        free(buf);
        return -1;
    }
    len += (size_t)n;
    *out = buf;
    *outlen = len;
    return 0;
}
