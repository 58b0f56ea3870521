/* redisstat.h: Redis's own counters (INFO commandstats, stats, cpu), read
 * before and after a measured period to give Redis work per message. */
#ifndef CHATMI_BENCH_REDISSTAT_H
#define CHATMI_BENCH_REDISSTAT_H

#include <stddef.h>
#include <stdint.h>

#include "common/redis_url.h"

#define BN_REDIS_CMDS_MAX 96
#define BN_REDIS_NODES_MAX 16

struct bn_redis_cmd {
    char name[40];
    uint64_t calls;
};

struct bn_redis_sample {
    int ok;
    uint64_t commands_processed; /* total_commands_processed: commands clients sent */
    double cpu_s;                /* used_cpu_user + used_cpu_sys */
    uint64_t rss;                /* used_memory_rss */
    int ncmds;
    struct bn_redis_cmd cmds[BN_REDIS_CMDS_MAX]; /* cmdstat_<name>: calls, scripts' commands included */
    /* redis+cluster://: every master's own figures (the fields above are
     * their sums), in CLUSTER SLOTS order; 0 nodes for a single Redis. */
    int nnodes;
    struct {
        char addr[64];
        double cpu_s;
        uint64_t commands_processed;
    } node[BN_REDIS_NODES_MAX];
};

/* Connects, runs INFO, disconnects; with redis+cluster://, on every master
 * CLUSTER SLOTS names. 0, or -1 with a message in err. */
int bn_redis_sample(const struct cm_redis_url *url, struct bn_redis_sample *out, char *err, size_t errlen);

/* Parses the text of an INFO reply. */
void bn_redis_parse_info(const char *text, struct bn_redis_sample *out);

/* Calls of cmd between a and b (0 when unknown). */
uint64_t bn_redis_calls_delta(const struct bn_redis_sample *a, const struct bn_redis_sample *b, const char *cmd);

#endif
