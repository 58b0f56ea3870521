/* coord.c: phase barriers and sampling (coord.h). */
#include <config.h>

#include "bench/coord.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "bench/shard.h"
#include "common/log.h"

#define GO_DELAY_NS 50000000LL /* a phase starts this long after the last arrival: every shard has heard */

struct coord {
    struct bn_report *rep;
    struct event_base *base;
    int nshards;
    const int *fds;
    struct event **evs;
    int arrived[3];
    int results, lost;
    struct event *sample_a, *sample_b;
};

void bn_sample_take(const struct bn_config *cfg, struct bn_sample *s, int pss_fds)
{
    memset(s, 0, sizeof(*s));
    s->taken = 1;
    s->t_ns = bn_now_ns();
    if (cfg->ngateway_pids > 0)
        s->have_gw = bn_tree_sample(cfg->gateway_pids, cfg->ngateway_pids, pss_fds, pss_fds, &s->gw) > 0;
    if (cfg->nworker_pids > 0)
        s->have_wk = bn_tree_sample(cfg->worker_pids, cfg->nworker_pids, pss_fds, 0, &s->wk) > 0;
    s->have_sock = bn_sockstat_read(&s->sock) == 0;
    if (cfg->have_redis) {
        char err[256];
        if (bn_redis_sample(&cfg->redis, &s->redis, err, sizeof(err)) == 0)
            s->have_redis = 1;
        else
            cm_warn("redis_stats", "Redis INFO failed: %s", err);
    }
}

static void broadcast(struct coord *co, uint32_t phase, int64_t t)
{
    struct bn_msg m = {BN_MSG_GO, phase, t};
    for (int i = 0; i < co->nshards; i++)
        if (co->fds[i] >= 0 && send(co->fds[i], &m, sizeof(m), MSG_NOSIGNAL) < 0)
            cm_warn("link", "cannot reach bench process %d: %s", i, strerror(errno));
}

static void on_sample_a(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct coord *co = arg;
    bn_sample_take(co->rep->cfg, &co->rep->a, 0);
}

static void on_sample_b(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct coord *co = arg;
    bn_sample_take(co->rep->cfg, &co->rep->b, 1);
}

static void at(struct event *ev, int64_t t)
{
    int64_t d = t - bn_now_ns();
    if (d < 0)
        d = 0;
    struct timeval tv = {(time_t)(d / 1000000000), (suseconds_t)(d % 1000000000 / 1000)};
    event_add(ev, &tv);
}

static void all_arrived(struct coord *co, uint32_t phase)
{
    const struct bn_config *cfg = co->rep->cfg;
    struct bn_report *rep = co->rep;
    int64_t t = bn_now_ns() + GO_DELAY_NS;
    if (phase == 1) {
        switch (cfg->scenario) {
        case BN_IDLE:
            bn_sample_take(cfg, &rep->held, 1);
            t = bn_now_ns();
            at(co->sample_a, t);
            at(co->sample_b, t + (int64_t)(cfg->duration * 1e9));
            break;
        case BN_DM:
        case BN_ROOM:
            at(co->sample_a, t + (int64_t)(cfg->warmup * 1e9));
            at(co->sample_b, t + (int64_t)((cfg->warmup + cfg->duration) * 1e9));
            break;
        case BN_STORM:
            bn_sample_take(cfg, &rep->held, 1);
            t = bn_now_ns();
            break;
        }
    } else if (phase == 2) {
        bn_sample_take(cfg, &rep->a, 0);
        t = rep->a.t_ns + GO_DELAY_NS;
    }
    broadcast(co, phase, t);
}

static void on_link(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct coord *co = arg;
    int k = 0;
    while (k < co->nshards && co->fds[k] != fd)
        k++;
    struct {
        struct bn_msg m;
        struct bn_result r;
    } *in = malloc(sizeof(*in));
    if (in == NULL)
        return;
    ssize_t n = recv(fd, in, sizeof(*in), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        free(in);
        return;
    }
    if (n < (ssize_t)sizeof(struct bn_msg)) {
        cm_error("link", "bench process %d went away without a result", k);
        co->lost++;
        event_del(co->evs[k]);
        free(in);
    } else if (in->m.type == BN_MSG_ARRIVE && in->m.phase >= 1 && in->m.phase <= 2) {
        if (++co->arrived[in->m.phase] == co->nshards)
            all_arrived(co, in->m.phase);
        free(in);
        return;
    } else if (in->m.type == BN_MSG_RESULT && n == (ssize_t)sizeof(*in)) {
        bn_result_merge(&co->rep->res, &in->r);
        co->results++;
        event_del(co->evs[k]);
        free(in);
    } else {
        free(in);
        return;
    }
    if (co->results + co->lost == co->nshards) {
        struct bn_report *rep = co->rep;
        if (!rep->b.taken) /* storm, or a run cut short */
            bn_sample_take(rep->cfg, &rep->b, 1);
        event_base_loopbreak(co->base);
    }
}

int bn_coord_run(struct bn_report *rep, struct event_base *base, const int *fds, int nshards)
{
    struct coord co;
    memset(&co, 0, sizeof(co));
    co.rep = rep;
    co.base = base;
    co.nshards = nshards;
    co.fds = fds;
    co.evs = calloc((size_t)nshards, sizeof(*co.evs));
    co.sample_a = evtimer_new(base, on_sample_a, &co);
    co.sample_b = evtimer_new(base, on_sample_b, &co);
    if (co.evs == NULL || co.sample_a == NULL || co.sample_b == NULL) {
        cm_error("start_failed", "coordinator: out of memory");
        return -1;
    }
    bn_result_init(&rep->res);
    for (int i = 0; i < nshards; i++) {
        co.evs[i] = event_new(base, fds[i], EV_READ | EV_PERSIST, on_link, &co);
        event_add(co.evs[i], NULL);
    }
    event_base_dispatch(base);
    for (int i = 0; i < nshards; i++)
        event_free(co.evs[i]);
    free(co.evs);
    event_free(co.sample_a);
    event_free(co.sample_b);
    return co.lost ? -1 : 0;
}
