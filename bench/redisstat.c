/* redisstat.c: INFO sampling (redisstat.h). */
#include "bench/redisstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/time.h>
#include <hiredis/hiredis.h>

#include "common/cluster.h"

void bn_redis_parse_info(const char *text, struct bn_redis_sample *out)
{
    double user = 0, sys = 0;
    memset(out, 0, sizeof(*out));
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        char buf[512];
        if (len >= sizeof(buf))
            len = sizeof(buf) - 1;
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = eol ? eol + 1 : NULL;
        char *colon = strchr(buf, ':');
        if (colon == NULL)
            continue;
        *colon = '\0';
        const char *val = colon + 1;
        if (strncmp(buf, "cmdstat_", 8) == 0) {
            const char *calls = strstr(val, "calls=");
            if (calls == NULL || out->ncmds >= BN_REDIS_CMDS_MAX)
                continue;
            struct bn_redis_cmd *c = &out->cmds[out->ncmds++];
            snprintf(c->name, sizeof(c->name), "%.39s", buf + 8);
            c->calls = strtoull(calls + 6, NULL, 10);
        } else if (strcmp(buf, "total_commands_processed") == 0) {
            out->commands_processed = strtoull(val, NULL, 10);
        } else if (strcmp(buf, "used_cpu_user") == 0) {
            user = strtod(val, NULL);
        } else if (strcmp(buf, "used_cpu_sys") == 0) {
            sys = strtod(val, NULL);
        } else if (strcmp(buf, "used_memory_rss") == 0) {
            out->rss = strtoull(val, NULL, 10);
        }
    }
    out->cpu_s = user + sys;
    out->ok = 1;
}

/* A plain blocking connection with AUTH and SELECT: the statistics need
 * nothing more, and a failed sample only costs the Redis figures. */
static redisContext *connect_plain(const struct cm_redis_url *u, const struct cm_redis_addr *at, char *err,
                                   size_t errlen)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(at->host, at->port, tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "redis %s:%d: %s", at->host, at->port, c ? c->errstr : "out of memory");
        if (c != NULL)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (u->password[0] != '\0') {
        if (u->user[0] != '\0')
            r = redisCommand(c, "AUTH %s %s", u->user, u->password);
        else
            r = redisCommand(c, "AUTH %s", u->password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "redis AUTH failed");
            goto fail;
        }
        freeReplyObject(r);
    }
    if (u->db != 0) {
        r = redisCommand(c, "SELECT %d", u->db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "redis SELECT %d failed", u->db);
            goto fail;
        }
        freeReplyObject(r);
    }
    return c;
fail:
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return NULL;
}

static int sample_one(const struct cm_redis_url *url, const struct cm_redis_addr *at, struct bn_redis_sample *out,
                      char *err, size_t errlen)
{
    redisContext *c = connect_plain(url, at, err, errlen);
    if (c == NULL)
        return -1;
    /* "INFO a b c" takes several sections since Redis 7; older servers
     * answer INFO all, which is a superset. */
    redisReply *r = redisCommand(c, "INFO commandstats stats cpu memory");
    if (r == NULL || r->type != REDIS_REPLY_STRING || strstr(r->str, "cmdstat_") == NULL) {
        if (r != NULL)
            freeReplyObject(r);
        r = redisCommand(c, "INFO all");
    }
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        snprintf(err, errlen, "INFO failed: %s", r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        if (r != NULL)
            freeReplyObject(r);
        redisFree(c);
        return -1;
    }
    bn_redis_parse_info(r->str, out);
    freeReplyObject(r);
    redisFree(c);
    return 0;
}

/* Adds one master's sample to the sums in out. */
static void add_node(struct bn_redis_sample *out, const struct bn_redis_sample *n, const struct cm_redis_addr *at)
{
    out->commands_processed += n->commands_processed;
    out->cpu_s += n->cpu_s;
    out->rss += n->rss;
    for (int i = 0; i < n->ncmds; i++) {
        int j = 0;
        while (j < out->ncmds && strcmp(out->cmds[j].name, n->cmds[i].name) != 0)
            j++;
        if (j == out->ncmds) {
            if (out->ncmds == BN_REDIS_CMDS_MAX)
                continue;
            out->cmds[out->ncmds++] = n->cmds[i];
        } else {
            out->cmds[j].calls += n->cmds[i].calls;
        }
    }
    if (out->nnodes < BN_REDIS_NODES_MAX) {
        snprintf(out->node[out->nnodes].addr, sizeof(out->node[0].addr), "%.50s:%d", at->host, at->port);
        out->node[out->nnodes].cpu_s = n->cpu_s;
        out->node[out->nnodes].commands_processed = n->commands_processed;
        out->nnodes++;
    }
}

/* Every master of the cluster: the first seed that answers CLUSTER SLOTS
 * names them. */
static int sample_cluster(const struct cm_redis_url *url, struct bn_redis_sample *out, char *err, size_t errlen)
{
    static struct cm_slot_map map; /* 32 KiB: not on the stack; the bench samples from one thread */
    int have_map = 0;
    for (size_t i = 0; i < url->naddrs && !have_map; i++) {
        redisContext *c = connect_plain(url, &url->addrs[i], err, errlen);
        if (c == NULL)
            continue;
        redisReply *r = redisCommand(c, "CLUSTER SLOTS");
        have_map = cm_slot_map_parse(&map, r, &url->addrs[i], err, errlen) == 0;
        if (r != NULL)
            freeReplyObject(r);
        redisFree(c);
    }
    if (!have_map)
        return -1;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < map.nnodes; i++) {
        struct bn_redis_sample *n = malloc(sizeof(*n));
        if (n == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        int rc = sample_one(url, &map.node[i].addr, n, err, errlen);
        if (rc == 0)
            add_node(out, n, &map.node[i].addr);
        free(n);
        if (rc < 0)
            return -1;
    }
    out->ok = 1;
    return 0;
}

int bn_redis_sample(const struct cm_redis_url *url, struct bn_redis_sample *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (url->naddrs < 1) {
        snprintf(err, errlen, "no Redis host");
        return -1;
    }
    if (url->kind == CM_REDIS_CLUSTER)
        return sample_cluster(url, out, err, errlen);
    return sample_one(url, &url->addrs[0], out, err, errlen);
}

uint64_t bn_redis_calls_delta(const struct bn_redis_sample *a, const struct bn_redis_sample *b, const char *cmd)
{
    uint64_t before = 0, after = 0;
    for (int i = 0; i < a->ncmds; i++)
        if (strcmp(a->cmds[i].name, cmd) == 0)
            before = a->cmds[i].calls;
    for (int i = 0; i < b->ncmds; i++)
        if (strcmp(b->cmds[i].name, cmd) == 0)
            after = b->cmds[i].calls;
    return after > before ? after - before : 0;
}
