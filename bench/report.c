/* report.c: results as a table or JSON (report.h). Every figure is derived
 * once, in derive(), and both outputs print the same numbers. */
#include <config.h>

#include "bench/report.h"

#include <inttypes.h>
#include <jansson.h>
#include <string.h>

#define NQ 5
static const double quantiles[NQ] = {0.5, 0.9, 0.99, 0.999, 1.0};
static const char *const qnames[NQ] = {"p50", "p90", "p99", "p99.9", "max"};

#define TOP_CMDS 8

struct lat {
    uint64_t count;
    double ms[NQ];
    double mean_ms;
};

struct tree_fig {
    int have;
    int nprocs;
    double rss_base, rss, pss_base, pss; /* bytes */
    double cpu_s, cpu_pct;               /* in the measured period; % of one core */
    double rss_per_conn, pss_per_conn;   /* bytes per connection, growth over the base */
    int nchildren;
    long child_fds[64];
    double spread_pct;                   /* largest deviation of a child's descriptors from the mean */
};

struct derived {
    const char *scenario;
    double window_s;
    uint64_t conns_wanted, conns_ok, conns_failed;
    double connects_per_s;
    struct lat handshake, latency, ack, recovery, lag;
    uint64_t expected;
    double delivery_ratio, deliveries_per_s, sends_per_s;
    struct tree_fig gw, wk;
    double gw_deliveries_per_cpu_s, wk_cpu_us_per_msg;
    int have_redis;
    double redis_cmds_per_msg, redis_client_cmds_per_msg, redis_cpu_us_per_msg;
    uint64_t redis_cmds;
    int nnodes;                          /* redis+cluster://: per master */
    char node_addr[BN_REDIS_NODES_MAX][64];
    double node_cpu_ms_per_1k_deliveries[BN_REDIS_NODES_MAX];
    double node_cmds_per_msg[BN_REDIS_NODES_MAX];
    int ntop;
    char top_name[TOP_CMDS][40];
    double top_per_msg[TOP_CMDS];
    int have_sock;
    long tcp_mem_pages_base, tcp_mem_pages, tcp_inuse;
    double kernel_per_conn, slab_per_conn;
    uint64_t msgs;
    double bench_cpu_pct, bench_cpu_max_pct;
    double storm_connects_per_s, storm_all_recovered_s;
    int bench_limited;           /* the bench itself was short of CPU: its latencies include its own delay */
    uint64_t storm_expected;
};

static void lat_of(const struct bn_hist *h, struct lat *l)
{
    l->count = h->count;
    for (int i = 0; i < NQ; i++)
        l->ms[i] = (double)bn_hist_quantile(h, quantiles[i]) / 1e6;
    l->mean_ms = bn_hist_mean(h) / 1e6;
}

static uint64_t failures(const struct bn_result *r)
{
    return r->fail_connect + r->fail_4xx + r->fail_5xx + r->fail_status_other + r->fail_handshake +
           r->fail_timeout + r->fail_closed;
}

static void tree_of(const struct bn_report *rep, int gw, double conns, double window, struct tree_fig *t)
{
    const struct bn_sample *held = rep->cfg->scenario == BN_IDLE ? &rep->held : &rep->b;
    const struct bn_tree_sample *base = gw ? &rep->base.gw : &rep->base.wk;
    const struct bn_tree_sample *now = gw ? &held->gw : &held->wk;
    int have_now = gw ? held->have_gw : held->have_wk;
    int have_a = gw ? rep->a.have_gw : rep->a.have_wk, have_b = gw ? rep->b.have_gw : rep->b.have_wk;
    memset(t, 0, sizeof(*t));
    if (!have_now)
        return;
    t->have = 1;
    t->nprocs = now->nprocs;
    t->rss = (double)now->rss;
    t->pss = (double)now->pss;
    t->rss_base = (double)base->rss;
    t->pss_base = (double)base->pss;
    if (conns > 0) {
        t->rss_per_conn = (t->rss - t->rss_base) / conns;
        t->pss_per_conn = (t->pss - t->pss_base) / conns;
    }
    if (have_a && have_b) {
        const struct bn_tree_sample *a = gw ? &rep->a.gw : &rep->a.wk, *b = gw ? &rep->b.gw : &rep->b.wk;
        t->cpu_s = b->cpu_s - a->cpu_s;
        t->cpu_pct = window > 0 ? 100 * t->cpu_s / window : 0;
    }
    if (gw) {
        /* procs[0] is the master; its children hold the connections. */
        double sum = 0;
        for (int i = 1; i < now->nprocs && t->nchildren < 64; i++) {
            long fds = now->procs[i].fds;
            for (int j = 0; j < base->nprocs; j++)
                if (base->procs[j].pid == now->procs[i].pid && base->procs[j].fds > 0 && fds >= base->procs[j].fds)
                    fds -= base->procs[j].fds; /* the child's own descriptors: listener, Redis, ... */
            t->child_fds[t->nchildren++] = fds;
            sum += (double)fds;
        }
        if (t->nchildren > 0 && sum > 0) {
            double mean = sum / t->nchildren;
            for (int i = 0; i < t->nchildren; i++) {
                double dev = 100 * ((double)t->child_fds[i] - mean) / mean;
                if (dev < 0)
                    dev = -dev;
                if (dev > t->spread_pct)
                    t->spread_pct = dev;
            }
        }
    }
}

static void derive(const struct bn_report *rep, struct derived *d)
{
    const struct bn_config *cfg = rep->cfg;
    const struct bn_result *r = &rep->res;
    memset(d, 0, sizeof(*d));
    d->scenario = bn_scenario_name(cfg->scenario);
    d->window_s = rep->a.taken && rep->b.taken ? (double)(rep->b.t_ns - rep->a.t_ns) / 1e9 : r->run_s;
    d->conns_wanted = (uint64_t)cfg->connections;
    d->conns_ok = r->ramp_connected;
    d->conns_failed = failures(r);
    if (r->ramp_last_ns > r->ramp_first_ns)
        d->connects_per_s = (double)r->ramp_connected / ((double)(r->ramp_last_ns - r->ramp_first_ns) / 1e9);
    lat_of(&r->handshake, &d->handshake);
    lat_of(&r->latency, &d->latency);
    lat_of(&r->ack_latency, &d->ack);
    lat_of(&r->recovery, &d->recovery);
    lat_of(&r->lag, &d->lag);
    /* Every message sent in the measured period should reach every member
     * (the sender's own session included): 2 for a DM. */
    uint64_t fanout = cfg->scenario == BN_DM ? 2 : cfg->scenario == BN_ROOM ? r->ready_at_go : 0;
    d->expected = r->sent * fanout;
    d->delivery_ratio = d->expected ? (double)r->delivered / (double)d->expected : 0;
    if (r->run_s > 0) {
        d->deliveries_per_s = (double)r->delivered / r->run_s;
        d->sends_per_s = (double)r->sent / r->run_s;
    }
    double conns = (double)r->ready_at_go;
    tree_of(rep, 1, conns, d->window_s, &d->gw);
    tree_of(rep, 0, 0, d->window_s, &d->wk);
    if (d->gw.cpu_s > 0 && r->delivered > 0)
        d->gw_deliveries_per_cpu_s = (double)r->delivered / d->gw.cpu_s;
    /* Requests in the measured period. Storm: the missed messages, and each
     * client's convs and history requests. */
    uint64_t msgs = cfg->scenario == BN_STORM
                        ? r->storm_feeder_sent + r->storm_reconnected + r->storm_history_requests
                        : r->acked;
    d->msgs = msgs;
    if (d->wk.cpu_s > 0 && msgs > 0)
        d->wk_cpu_us_per_msg = 1e6 * d->wk.cpu_s / (double)msgs;
    if (rep->a.have_redis && rep->b.have_redis) {
        const struct bn_redis_sample *a = &rep->a.redis, *b = &rep->b.redis;
        d->have_redis = 1;
        uint64_t info = bn_redis_calls_delta(a, b, "info");
        for (int i = 0; i < b->ncmds; i++) {
            uint64_t n = bn_redis_calls_delta(a, b, b->cmds[i].name);
            if (strcmp(b->cmds[i].name, "info") == 0 || n == 0)
                continue;
            d->redis_cmds += n;
            /* insertion into the TOP_CMDS largest, largest first */
            int pos = d->ntop;
            while (pos > 0 && d->top_per_msg[pos - 1] < (double)n)
                pos--;
            if (pos >= TOP_CMDS)
                continue;
            int last = d->ntop < TOP_CMDS ? d->ntop++ : TOP_CMDS - 1;
            for (int j = last; j > pos; j--) {
                d->top_per_msg[j] = d->top_per_msg[j - 1];
                memcpy(d->top_name[j], d->top_name[j - 1], sizeof(d->top_name[0]));
            }
            d->top_per_msg[pos] = (double)n;
            snprintf(d->top_name[pos], sizeof(d->top_name[0]), "%s", b->cmds[i].name);
        }
        uint64_t client = b->commands_processed - a->commands_processed;
        client = client > info ? client - info : 0;
        if (msgs > 0) {
            d->redis_cmds_per_msg = (double)d->redis_cmds / (double)msgs;
            d->redis_client_cmds_per_msg = (double)client / (double)msgs;
            d->redis_cpu_us_per_msg = 1e6 * (b->cpu_s - a->cpu_s) / (double)msgs;
            for (int i = 0; i < d->ntop; i++)
                d->top_per_msg[i] /= (double)msgs;
        }
        /* the same masters in the same order before and after, or nothing */
        if (a->nnodes == b->nnodes) {
            for (int i = 0; i < b->nnodes; i++)
                if (strcmp(a->node[i].addr, b->node[i].addr) != 0)
                    goto nodes_done;
            d->nnodes = b->nnodes;
            for (int i = 0; i < b->nnodes; i++) {
                memcpy(d->node_addr[i], b->node[i].addr, sizeof(d->node_addr[i]));
                if (r->delivered > 0)
                    d->node_cpu_ms_per_1k_deliveries[i] =
                        1e6 * (b->node[i].cpu_s - a->node[i].cpu_s) / (double)r->delivered;
                if (msgs > 0)
                    d->node_cmds_per_msg[i] =
                        (double)(b->node[i].commands_processed - a->node[i].commands_processed) / (double)msgs;
            }
        }
    nodes_done:;
    }
    const struct bn_sample *held = cfg->scenario == BN_IDLE || cfg->scenario == BN_STORM ? &rep->held : &rep->b;
    if (rep->base.have_sock && held->have_sock) {
        d->have_sock = 1;
        d->tcp_mem_pages_base = rep->base.sock.tcp_mem_pages;
        d->tcp_mem_pages = held->sock.tcp_mem_pages;
        d->tcp_inuse = held->sock.tcp_inuse;
        if (conns > 0) {
            d->kernel_per_conn = (double)(d->tcp_mem_pages - d->tcp_mem_pages_base) * 4096 / conns;
            if (rep->base.sock.slab_kb > 0 && held->sock.slab_kb > 0)
                d->slab_per_conn = (double)(held->sock.slab_kb - rep->base.sock.slab_kb) * 1024 / conns;
        }
    }
    if (r->run_s > 0) {
        d->bench_cpu_pct = 100 * r->cpu_run_s / r->run_s;
        d->bench_cpu_max_pct = 100 * r->cpu_run_max_s / r->run_s;
    }
    /* A tick more than 5 ms late at p99, or a bench process busy for more
     * than 85 % of the period, means replies sat unread in its sockets. */
    d->bench_limited = (d->lag.count > 0 && d->lag.ms[2] > 5.0) || d->bench_cpu_max_pct > 85;
    if (r->storm_t_last_hello > r->storm_t_go)
        d->storm_connects_per_s = (double)r->storm_reconnected / ((double)(r->storm_t_last_hello - r->storm_t_go) / 1e9);
    if (r->storm_t_last_recovered > r->storm_t_go)
        d->storm_all_recovered_s = (double)(r->storm_t_last_recovered - r->storm_t_go) / 1e9;
    d->storm_expected = r->storm_clients * (uint64_t)cfg->storm_missed;
}

/* ---- text ------------------------------------------------------------------ */

static void lat_line(FILE *out, const char *name, const struct lat *l)
{
    fprintf(out, "  %-22s", name);
    if (l->count == 0) {
        fprintf(out, " (none)\n");
        return;
    }
    for (int i = 0; i < NQ; i++)
        fprintf(out, " %s %.3f", qnames[i], l->ms[i]);
    fprintf(out, " ms  (n=%" PRIu64 ")\n", l->count);
}

static const char *human_bytes(double b, char *buf, size_t len)
{
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(buf, len, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024)
        snprintf(buf, len, "%.1f MiB", b / (1024.0 * 1024));
    else if (b >= 1024.0 || b <= -1024.0)
        snprintf(buf, len, "%.1f KiB", b / 1024.0);
    else
        snprintf(buf, len, "%.0f B", b);
    return buf;
}

void bn_report_text(const struct bn_report *rep, FILE *out)
{
    const struct bn_config *cfg = rep->cfg;
    const struct bn_result *r = &rep->res;
    struct derived d;
    char b1[32], b2[32], b3[32];
    derive(rep, &d);

    fprintf(out, "chatmi-bench %s: %ld connections to ws://%s:%d%s, %d bench process%s", d.scenario,
            cfg->connections, cfg->host, cfg->port, cfg->path, rep->processes, rep->processes == 1 ? "" : "es");
    if (rep->src_count > 0)
        fprintf(out, ", from %u source address%s at %s", rep->src_count, rep->src_count == 1 ? "" : "es",
                rep->src_first);
    fprintf(out, "\n");
    fprintf(out, "connections\n");
    fprintf(out, "  %-22s %" PRIu64 " of %" PRIu64 " in %.2f s: %.0f connects/s\n", "connected",
            d.conns_ok, d.conns_wanted,
            r->ramp_last_ns > r->ramp_first_ns ? (double)(r->ramp_last_ns - r->ramp_first_ns) / 1e9 : 0,
            d.connects_per_s);
    fprintf(out,
            "  %-22s %" PRIu64 " (connect %" PRIu64 ", 4xx %" PRIu64 ", 5xx %" PRIu64 ", bad answer %" PRIu64
            ", timeout %" PRIu64 ", closed %" PRIu64 ")\n",
            "handshake failures", d.conns_failed, r->fail_connect, r->fail_4xx, r->fail_5xx,
            r->fail_handshake + r->fail_status_other, r->fail_timeout, r->fail_closed);
    if (r->last_errno)
        fprintf(out, "  %-22s %s\n", "last connect error", strerror(r->last_errno));
    if (r->last_status)
        fprintf(out, "  %-22s %d\n", "last refusal status", r->last_status);
    lat_line(out, "connect to hello", &d.handshake);
    fprintf(out, "  %-22s %" PRIu64 " (server close 1001 %" PRIu64 ", 1013 %" PRIu64 ", other %" PRIu64 ")\n",
            "sessions dropped", r->dropped, r->close_1001, r->close_1013, r->close_other);

    if (cfg->scenario == BN_DM || cfg->scenario == BN_ROOM) {
        fprintf(out, "messages (measured %.1f s after %.1f s warm-up)\n", r->run_s, cfg->warmup);
        fprintf(out, "  %-22s %" PRIu64 " (%.0f/s), skipped (sender down) %" PRIu64 "\n", "sent", r->sent,
                d.sends_per_s, r->skipped);
        fprintf(out, "  %-22s %" PRIu64 "\n", "acked", r->acked);
        fprintf(out, "  %-22s", "errors");
        uint64_t nerr = 0;
        for (int i = 0; i < BN_E__COUNT; i++)
            if (r->errors[i]) {
                fprintf(out, " %s %" PRIu64, bn_err_names[i], r->errors[i]);
                nerr += r->errors[i];
            }
        fprintf(out, "%s\n", nerr ? "" : " 0");
        fprintf(out, "  %-22s %" PRIu64 " of %" PRIu64 " expected (sent x members; %.2f %%)\n", "delivered",
                r->delivered, d.expected, 100 * d.delivery_ratio);
        fprintf(out, "  %-22s %.0f\n", "deliveries/s", d.deliveries_per_s);
        lat_line(out, "end-to-end latency", &d.latency);
        lat_line(out, "ack latency", &d.ack);
    }
    if (cfg->scenario == BN_STORM) {
        fprintf(out, "reconnect storm (%" PRIu64 " clients within %.1f s, %ld missed messages each)\n",
                r->storm_clients, cfg->storm_window, cfg->storm_missed);
        fprintf(out, "  %-22s %" PRIu64 " sent in %.2f s (resent %" PRIu64 ")\n", "missed messages stored",
                r->storm_feeder_sent, r->storm_feed_s, r->storm_feeder_resent);
        fprintf(out, "  %-22s %" PRIu64 " of %" PRIu64 ": %.0f connects/s\n", "reconnected", r->storm_reconnected,
                r->storm_clients, d.storm_connects_per_s);
        fprintf(out, "  %-22s %" PRIu64 " clients, %" PRIu64 " of %" PRIu64 " messages (%" PRIu64
                " live), the last %.2f s after the reconnects began\n",
                "recovered", r->storm_recovered, r->storm_msgs + r->storm_live, d.storm_expected, r->storm_live,
                d.storm_all_recovered_s);
        fprintf(out, "  %-22s %" PRIu64 "\n", "history requests", r->storm_history_requests);
        lat_line(out, "reconnect to recovered", &d.recovery);
    }
    if (d.gw.have) {
        fprintf(out, "gateway (%d processes)\n", d.gw.nprocs);
        fprintf(out, "  %-22s %s (before: %s), PSS %s\n", "RSS", human_bytes(d.gw.rss, b1, sizeof(b1)),
                human_bytes(d.gw.rss_base, b2, sizeof(b2)), human_bytes(d.gw.pss, b3, sizeof(b3)));
        if (r->ready_at_go > 0)
            fprintf(out, "  %-22s RSS %.0f B, PSS %.0f B (growth over the idle process / sessions)\n",
                    "per connection", d.gw.rss_per_conn, d.gw.pss_per_conn);
        if (d.gw.nchildren > 0) {
            fprintf(out, "  %-22s", "descriptors per child");
            for (int i = 0; i < d.gw.nchildren; i++)
                fprintf(out, " %ld", d.gw.child_fds[i]);
            fprintf(out, " (largest deviation from the mean %.1f %%)\n", d.gw.spread_pct);
        }
        if (d.window_s > 0 && rep->a.have_gw)
            fprintf(out, "  %-22s %.2f s in %.1f s (%.0f %% of a core)\n", "CPU", d.gw.cpu_s, d.window_s,
                    d.gw.cpu_pct);
        if (d.gw_deliveries_per_cpu_s > 0)
            fprintf(out, "  %-22s %.0f\n", "deliveries per CPU-s", d.gw_deliveries_per_cpu_s);
    }
    if (d.wk.have) {
        fprintf(out, "worker (%d processes)\n", d.wk.nprocs);
        fprintf(out, "  %-22s %s\n", "RSS", human_bytes(d.wk.rss, b1, sizeof(b1)));
        if (d.window_s > 0 && rep->a.have_wk)
            fprintf(out, "  %-22s %.2f s in %.1f s (%.0f %% of a core)\n", "CPU", d.wk.cpu_s, d.window_s,
                    d.wk.cpu_pct);
        if (d.wk_cpu_us_per_msg > 0)
            fprintf(out, "  %-22s %.1f us\n", "CPU per request", d.wk_cpu_us_per_msg);
    }
    if (d.have_redis) {
        fprintf(out, "redis\n");
        if (d.msgs > 0)
            fprintf(out, "  %-22s %.2f (commands run by Lua scripts included), CPU %.1f us\n", "commands per request",
                    d.redis_cmds_per_msg, d.redis_cpu_us_per_msg);
        else
            fprintf(out, "  %-22s %" PRIu64 " (no requests)\n", "commands", d.redis_cmds);
        for (int i = 0; i < d.nnodes; i++)
            fprintf(out, "  %-22s %s: CPU %.2f ms per 1,000 deliveries, %.2f commands per request\n",
                    i == 0 ? "per master" : "", d.node_addr[i], d.node_cpu_ms_per_1k_deliveries[i],
                    d.node_cmds_per_msg[i]);
        fprintf(out, "  %-22s", d.msgs > 0 ? "largest, per request" : "largest");
        for (int i = 0; i < d.ntop; i++)
            fprintf(out, " %s %.2f", d.top_name[i], d.top_per_msg[i]);
        fprintf(out, "\n");
    }
    if (d.have_sock) {
        fprintf(out, "kernel\n");
        fprintf(out, "  %-22s %ld pages now, %ld before (%.0f B per connection)\n", "TCP buffer memory",
                d.tcp_mem_pages, d.tcp_mem_pages_base, d.kernel_per_conn);
        fprintf(out, "  %-22s %.0f B per connection (whole machine; on loopback both ends count)\n",
                "slab growth", d.slab_per_conn);
        fprintf(out, "  %-22s %ld\n", "TCP sockets in use", d.tcp_inuse);
    }
    fprintf(out, "bench\n");
    fprintf(out, "  %-22s %.2f s in the measured %.1f s (%.0f %% of a core; busiest process %.0f %%), %.2f s in all\n",
            "CPU", r->cpu_run_s, r->run_s, d.bench_cpu_pct, d.bench_cpu_max_pct, r->cpu_total_s);
    fprintf(out, "  %-22s %s\n", "max RSS", human_bytes((double)r->maxrss_kb * 1024, b1, sizeof(b1)));
    lat_line(out, "1 ms tick lateness", &d.lag);
    if (d.bench_limited)
        fprintf(out, "  WARNING: the bench was short of CPU (tick p99 %.1f ms late, busiest process %.0f %% of a core):\n"
                     "  its latency figures include its own delay; give it more CPU (--bench-processes) or less load\n",
                d.lag.ms[2], d.bench_cpu_max_pct);
    else
        fprintf(out, "  %-22s ok: tick p99 %.2f ms late, busiest process %.0f %% of a core\n", "self-check",
                d.lag.ms[2], d.bench_cpu_max_pct);
    if (r->resyncs || r->protocol_errors || r->unknown_ops)
        fprintf(out, "  %-22s resync %" PRIu64 ", protocol errors %" PRIu64 ", unexpected messages %" PRIu64 "\n",
                "other", r->resyncs, r->protocol_errors, r->unknown_ops);
}

/* ---- JSON ------------------------------------------------------------------ */

static json_t *lat_json(const struct lat *l)
{
    json_t *o = json_object();
    json_object_set_new(o, "count", json_integer((json_int_t)l->count));
    for (int i = 0; i < NQ; i++)
        json_object_set_new(o, qnames[i], json_real(l->ms[i]));
    json_object_set_new(o, "mean", json_real(l->mean_ms));
    return o;
}

static json_t *tree_json(const struct tree_fig *t, int gw)
{
    json_t *o = json_object();
    json_object_set_new(o, "processes", json_integer(t->nprocs));
    json_object_set_new(o, "rss_bytes", json_real(t->rss));
    json_object_set_new(o, "rss_bytes_before", json_real(t->rss_base));
    json_object_set_new(o, "pss_bytes", json_real(t->pss));
    json_object_set_new(o, "cpu_s", json_real(t->cpu_s));
    json_object_set_new(o, "cpu_pct", json_real(t->cpu_pct));
    if (gw) {
        json_object_set_new(o, "rss_per_connection", json_real(t->rss_per_conn));
        json_object_set_new(o, "pss_per_connection", json_real(t->pss_per_conn));
        json_t *fds = json_array();
        for (int i = 0; i < t->nchildren; i++)
            json_array_append_new(fds, json_integer(t->child_fds[i]));
        json_object_set_new(o, "child_descriptors", fds);
        json_object_set_new(o, "child_spread_pct", json_real(t->spread_pct));
    }
    return o;
}

int bn_report_json(const struct bn_report *rep, FILE *out)
{
    const struct bn_config *cfg = rep->cfg;
    const struct bn_result *r = &rep->res;
    struct derived d;
    derive(rep, &d);
    json_t *o = json_object();
    if (o == NULL)
        return -1;
    json_object_set_new(o, "scenario", json_string(d.scenario));
    json_object_set_new(o, "connections", json_integer(cfg->connections));
    json_object_set_new(o, "bench_processes", json_integer(rep->processes));
    json_object_set_new(o, "source_addresses", json_integer(rep->src_count));

    json_t *c = json_object();
    json_object_set_new(c, "connected", json_integer((json_int_t)d.conns_ok));
    json_object_set_new(c, "connects_per_s", json_real(d.connects_per_s));
    json_object_set_new(c, "handshake_failures", json_integer((json_int_t)d.conns_failed));
    json_object_set_new(c, "fail_connect", json_integer((json_int_t)r->fail_connect));
    json_object_set_new(c, "fail_4xx", json_integer((json_int_t)r->fail_4xx));
    json_object_set_new(c, "fail_5xx", json_integer((json_int_t)r->fail_5xx));
    json_object_set_new(c, "fail_timeout", json_integer((json_int_t)r->fail_timeout));
    json_object_set_new(c, "fail_closed", json_integer((json_int_t)r->fail_closed));
    json_object_set_new(c, "fail_bad_answer", json_integer((json_int_t)(r->fail_handshake + r->fail_status_other)));
    json_object_set_new(c, "connect_to_hello_ms", lat_json(&d.handshake));
    json_object_set_new(c, "dropped", json_integer((json_int_t)r->dropped));
    json_object_set_new(c, "close_1001", json_integer((json_int_t)r->close_1001));
    json_object_set_new(c, "close_1013", json_integer((json_int_t)r->close_1013));
    json_object_set_new(o, "connect", c);

    if (cfg->scenario == BN_DM || cfg->scenario == BN_ROOM) {
        json_t *m = json_object();
        json_object_set_new(m, "measured_s", json_real(r->run_s));
        json_object_set_new(m, "sent", json_integer((json_int_t)r->sent));
        json_object_set_new(m, "skipped", json_integer((json_int_t)r->skipped));
        json_object_set_new(m, "acked", json_integer((json_int_t)r->acked));
        json_object_set_new(m, "delivered", json_integer((json_int_t)r->delivered));
        json_object_set_new(m, "expected", json_integer((json_int_t)d.expected));
        json_object_set_new(m, "deliveries_per_s", json_real(d.deliveries_per_s));
        json_object_set_new(m, "sends_per_s", json_real(d.sends_per_s));
        json_t *e = json_object();
        for (int i = 0; i < BN_E__COUNT; i++)
            json_object_set_new(e, bn_err_names[i], json_integer((json_int_t)r->errors[i]));
        json_object_set_new(m, "errors", e);
        json_object_set_new(m, "latency_ms", lat_json(&d.latency));
        json_object_set_new(m, "ack_latency_ms", lat_json(&d.ack));
        json_object_set_new(o, "messages", m);
    }
    if (cfg->scenario == BN_STORM) {
        json_t *s = json_object();
        json_object_set_new(s, "clients", json_integer((json_int_t)r->storm_clients));
        json_object_set_new(s, "window_s", json_real(cfg->storm_window));
        json_object_set_new(s, "missed_each", json_integer(cfg->storm_missed));
        json_object_set_new(s, "feed_s", json_real(r->storm_feed_s));
        json_object_set_new(s, "reconnected", json_integer((json_int_t)r->storm_reconnected));
        json_object_set_new(s, "connects_per_s", json_real(d.storm_connects_per_s));
        json_object_set_new(s, "recovered_clients", json_integer((json_int_t)r->storm_recovered));
        json_object_set_new(s, "recovered_messages", json_integer((json_int_t)(r->storm_msgs + r->storm_live)));
        json_object_set_new(s, "expected_messages", json_integer((json_int_t)d.storm_expected));
        json_object_set_new(s, "history_requests", json_integer((json_int_t)r->storm_history_requests));
        json_object_set_new(s, "all_recovered_s", json_real(d.storm_all_recovered_s));
        json_object_set_new(s, "recovery_ms", lat_json(&d.recovery));
        json_object_set_new(o, "storm", s);
    }
    if (d.gw.have) {
        json_t *g = tree_json(&d.gw, 1);
        json_object_set_new(g, "deliveries_per_cpu_s", json_real(d.gw_deliveries_per_cpu_s));
        json_object_set_new(o, "gateway", g);
    }
    if (d.wk.have) {
        json_t *w = tree_json(&d.wk, 0);
        json_object_set_new(w, "cpu_us_per_request", json_real(d.wk_cpu_us_per_msg));
        json_object_set_new(o, "worker", w);
    }
    if (d.have_redis) {
        json_t *rd = json_object();
        json_object_set_new(rd, "commands", json_integer((json_int_t)d.redis_cmds));
        json_object_set_new(rd, "commands_per_request", json_real(d.redis_cmds_per_msg));
        /* total_commands_processed: on Redis 7 it counts script commands too */
        json_object_set_new(rd, "processed_per_request", json_real(d.redis_client_cmds_per_msg));
        json_object_set_new(rd, "cpu_us_per_request", json_real(d.redis_cpu_us_per_msg));
        json_t *top = json_object();
        for (int i = 0; i < d.ntop; i++)
            json_object_set_new(top, d.top_name[i], json_real(d.top_per_msg[i]));
        json_object_set_new(rd, "per_request", top);
        if (d.nnodes > 0) {
            json_t *nodes = json_array();
            for (int i = 0; i < d.nnodes; i++) {
                json_t *n = json_object();
                json_object_set_new(n, "addr", json_string(d.node_addr[i]));
                json_object_set_new(n, "cpu_ms_per_1k_deliveries", json_real(d.node_cpu_ms_per_1k_deliveries[i]));
                json_object_set_new(n, "processed_per_request", json_real(d.node_cmds_per_msg[i]));
                json_array_append_new(nodes, n);
            }
            json_object_set_new(rd, "masters", nodes);
        }
        json_object_set_new(o, "redis", rd);
    }
    if (d.have_sock) {
        json_t *k = json_object();
        json_object_set_new(k, "tcp_mem_pages", json_integer(d.tcp_mem_pages));
        json_object_set_new(k, "tcp_mem_pages_before", json_integer(d.tcp_mem_pages_base));
        json_object_set_new(k, "tcp_mem_bytes_per_connection", json_real(d.kernel_per_conn));
        json_object_set_new(k, "slab_bytes_per_connection", json_real(d.slab_per_conn));
        json_object_set_new(k, "tcp_inuse", json_integer(d.tcp_inuse));
        json_object_set_new(o, "kernel", k);
    }
    json_t *b = json_object();
    json_object_set_new(b, "cpu_s", json_real(r->cpu_run_s));
    json_object_set_new(b, "cpu_pct", json_real(d.bench_cpu_pct));
    json_object_set_new(b, "cpu_pct_busiest_process", json_real(d.bench_cpu_max_pct));
    json_object_set_new(b, "cpu_total_s", json_real(r->cpu_total_s));
    json_object_set_new(b, "max_rss_bytes", json_integer((json_int_t)r->maxrss_kb * 1024));
    json_object_set_new(b, "tick_lateness_ms", lat_json(&d.lag));
    json_object_set_new(b, "short_of_cpu", json_boolean(d.bench_limited));
    json_object_set_new(b, "resyncs", json_integer((json_int_t)r->resyncs));
    json_object_set_new(b, "protocol_errors", json_integer((json_int_t)r->protocol_errors));
    json_object_set_new(b, "unexpected_messages", json_integer((json_int_t)r->unknown_ops));
    json_object_set_new(o, "bench", b);

    int rc = json_dumpf(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 ? 0 : -1;
    fputc('\n', out);
    json_decref(o);
    return rc;
}
