/* coord.h: the coordinator: starts each phase in every shard at once, and
 * samples the processes under test (/proc) and Redis (INFO) at the edges
 * of the measured period. It runs in the bench's first process, on the
 * shard's loop when there is one shard, alone when shards are forked. */
#ifndef CHATMI_BENCH_COORD_H
#define CHATMI_BENCH_COORD_H

#include <stdint.h>
#include <event2/event.h>

#include "bench/options.h"
#include "bench/procstat.h"
#include "bench/redisstat.h"
#include "bench/result.h"

struct bn_sample {
    int taken;
    int64_t t_ns;
    int have_gw, have_wk, have_sock, have_redis;
    struct bn_tree_sample gw, wk;
    struct bn_sockstat sock;
    struct bn_redis_sample redis;
};

struct bn_report {
    const struct bn_config *cfg;
    int processes;
    struct bn_result res;
    /* base: before any connection; held: idle, every connection up;
     * a, b: the edges of the measured period (storm: reconnects to the end) */
    struct bn_sample base, held, a, b;
    uint32_t src_count;
    char src_first[32];
    long fd_limit;
};

/* Takes one sample of what cfg names (gateway and worker trees, sockstat,
 * Redis). pss_fds: also PSS and descriptor counts (slower). */
void bn_sample_take(const struct bn_config *cfg, struct bn_sample *s, int pss_fds);

/* Drives nshards shards (started after rep->base was taken) through the links fds[] (SOCK_SEQPACKET) on base
 * until every shard sent its result, which ends up merged in rep->res.
 * 0, or -1 when a shard went away without a result. */
int bn_coord_run(struct bn_report *rep, struct event_base *base, const int *fds, int nshards);

#endif
