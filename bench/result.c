/* result.c: result merging (result.h). */
#include "bench/result.h"

#include <string.h>

const char *const bn_err_names[BN_E__COUNT] = {"bad_request", "forbidden", "not_found", "too_large",
                                               "rate_limited", "unavailable", "internal", "other"};

enum bn_err bn_err_from(const char *s, size_t len)
{
    for (int i = 0; i < BN_E_OTHER; i++)
        if (strlen(bn_err_names[i]) == len && memcmp(bn_err_names[i], s, len) == 0)
            return (enum bn_err)i;
    return BN_E_OTHER;
}

void bn_result_init(struct bn_result *r)
{
    memset(r, 0, sizeof(*r));
    bn_hist_init(&r->handshake);
    bn_hist_init(&r->latency);
    bn_hist_init(&r->ack_latency);
    bn_hist_init(&r->recovery);
    bn_hist_init(&r->lag);
}

static int64_t min_set(int64_t a, int64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

void bn_result_merge(struct bn_result *d, const struct bn_result *s)
{
#define SUM(f) d->f += s->f
    SUM(connects);
    SUM(connected);
    SUM(fail_connect);
    SUM(fail_4xx);
    SUM(fail_5xx);
    SUM(fail_status_other);
    SUM(fail_handshake);
    SUM(fail_timeout);
    SUM(fail_closed);
    SUM(ramp_connected);
    SUM(ready_at_go);
    SUM(dropped);
    SUM(close_1001);
    SUM(close_1013);
    SUM(close_other);
    SUM(resyncs);
    SUM(protocol_errors);
    SUM(unknown_ops);
    SUM(sent);
    SUM(skipped);
    SUM(acked);
    SUM(delivered);
    SUM(delivered_other);
    SUM(storm_clients);
    SUM(storm_reconnected);
    SUM(storm_recovered);
    SUM(storm_msgs);
    SUM(storm_live);
    SUM(storm_history_requests);
    SUM(storm_feeder_sent);
    SUM(storm_feeder_resent);
    SUM(processes);
    SUM(cpu_run_s);
    SUM(cpu_total_s);
    SUM(maxrss_kb);
#undef SUM
    for (int i = 0; i < BN_E__COUNT; i++)
        d->errors[i] += s->errors[i];
    if (s->last_errno)
        d->last_errno = s->last_errno;
    if (s->last_status)
        d->last_status = s->last_status;
    d->ramp_first_ns = min_set(d->ramp_first_ns, s->ramp_first_ns);
    d->ramp_last_ns = max64(d->ramp_last_ns, s->ramp_last_ns);
    d->storm_t_go = min_set(d->storm_t_go, s->storm_t_go);
    d->storm_t_last_hello = max64(d->storm_t_last_hello, s->storm_t_last_hello);
    d->storm_t_last_recovered = max64(d->storm_t_last_recovered, s->storm_t_last_recovered);
    if (s->storm_feed_s > d->storm_feed_s)
        d->storm_feed_s = s->storm_feed_s;
    if (s->cpu_run_max_s > d->cpu_run_max_s)
        d->cpu_run_max_s = s->cpu_run_max_s;
    if (s->run_s > d->run_s)
        d->run_s = s->run_s;
    bn_hist_merge(&d->handshake, &s->handshake);
    bn_hist_merge(&d->latency, &s->latency);
    bn_hist_merge(&d->ack_latency, &s->ack_latency);
    bn_hist_merge(&d->recovery, &s->recovery);
    bn_hist_merge(&d->lag, &s->lag);
}
