/* main.c: chatmi-bench, a load generator and benchmark for a running
 * chatmi deployment: options, descriptor limit, source addresses, one or
 * more bench processes, and the report. */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <event2/event.h>

#include "bench/coord.h"
#include "bench/options.h"
#include "bench/procstat.h"
#include "bench/report.h"
#include "bench/shard.h"
#include "common/clock.h"
#include "common/log.h"

#define FD_RESERVE 64        /* descriptors a bench process keeps for itself */
#define MAX_PROCESSES 64

/* Raises the soft descriptor limit to the hard one; returns the limit. */
static long raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            cm_warn("fd_limit", "cannot raise RLIMIT_NOFILE to %llu: %s", (unsigned long long)want, strerror(errno));
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
}

/* --source-addrs auto: on loopback, when one source address has too few
 * ephemeral ports toward the gateway for all the connections (with room
 * for sockets of earlier runs still in TIME_WAIT), spread them over
 * consecutive addresses of a random 127.x.y.0/24. */
static void pick_source_addrs(struct bn_config *cfg)
{
    if (!cfg->src_auto || !cfg->dst_loopback)
        return;
    long per_addr = bn_local_port_count() / 2;
    if (per_addr < 1000)
        per_addr = 1000;
    long n = (cfg->connections + per_addr) / per_addr;
    if (n <= 1 && cfg->connections < per_addr)
        return;
    if (n > 250)
        n = 250;
    unsigned char rnd[2] = {0, 0};
    cm_random_bytes(rnd, sizeof(rnd));
    cfg->src_first = (127u << 24) | ((uint32_t)(1 + rnd[0] % 254) << 16) | ((uint32_t)rnd[1] << 8) | 1u;
    cfg->src_count = (uint32_t)n;
}

/* Shard k's clients: whole units (dm: a pair, storm: a room's group) so
 * nothing that belongs together is split between processes. */
static void shard_range(const struct bn_config *cfg, int k, int nshards, uint32_t *first, uint32_t *count)
{
    uint64_t unit = cfg->scenario == BN_DM ? 2 : cfg->scenario == BN_STORM ? (uint64_t)cfg->storm_group : 1;
    uint64_t n = (uint64_t)cfg->connections;
    uint64_t units = (n + unit - 1) / unit;
    uint64_t u0 = units * (uint64_t)k / (uint64_t)nshards, u1 = units * (uint64_t)(k + 1) / (uint64_t)nshards;
    uint64_t a = u0 * unit, b = u1 * unit;
    if (b > n)
        b = n;
    *first = (uint32_t)a;
    *count = (uint32_t)(b > a ? b - a : 0);
}

static int run_single(struct bn_report *rep)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
        cm_error("start_failed", "socketpair: %s", strerror(errno));
        return -1;
    }
    struct event_base *base = bn_event_base_new();
    struct bn_shard *sh = malloc(sizeof(*sh));
    uint32_t first, count;
    shard_range(rep->cfg, 0, 1, &first, &count);
    if (base == NULL || sh == NULL || bn_shard_init(sh, rep->cfg, base, 0, 1, first, count, sv[0]) < 0) {
        cm_error("start_failed", "out of memory or event set-up failed");
        return -1;
    }
    int r = bn_coord_run(rep, base, &sv[1], 1);
    bn_shard_free(sh);
    free(sh);
    event_base_free(base);
    close(sv[0]);
    close(sv[1]);
    return r;
}

static int run_forked(struct bn_report *rep, int nshards)
{
    int fds[MAX_PROCESSES];
    pid_t pids[MAX_PROCESSES];
    int started = 0, r = -1;
    fflush(NULL);
    for (int k = 0; k < nshards; k++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
            cm_error("start_failed", "socketpair: %s", strerror(errno));
            goto out;
        }
        uint32_t first, count;
        shard_range(rep->cfg, k, nshards, &first, &count);
        pid_t pid = fork();
        if (pid < 0) {
            cm_error("start_failed", "fork: %s", strerror(errno));
            close(sv[0]);
            close(sv[1]);
            goto out;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (int i = 0; i < started; i++)
                close(fds[i]);
            close(sv[1]);
            if (getppid() == 1)
                _exit(1);
            int rc = bn_shard_main(rep->cfg, k, nshards, first, count, sv[0]);
            close(sv[0]);
            _exit(rc);
        }
        close(sv[0]);
        fds[started] = sv[1];
        pids[started++] = pid;
    }
    struct event_base *base = bn_event_base_new();
    if (base == NULL)
        goto out;
    r = bn_coord_run(rep, base, fds, nshards);
    event_base_free(base);
out:
    for (int i = 0; i < started; i++) {
        if (r < 0)
            kill(pids[i], SIGTERM);
        close(fds[i]);
    }
    for (int i = 0; i < started; i++) {
        int st;
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
            ;
    }
    return r;
}

int main(int argc, char **argv)
{
    struct bn_config cfg;
    char err[1024];
    int pr = bn_options_parse(argc, argv, &cfg, err, sizeof(err));
    if (pr == BN_OPTIONS_EXIT)
        return 0;
    if (pr != BN_OPTIONS_OK) {
        fprintf(stderr, "chatmi-bench: %s\n", err);
        return 2;
    }
    cm_log_init("chatmi-bench", cfg.log_format == 1 ? CM_LOG_JSON : CM_LOG_TEXT, (enum cm_log_level)cfg.log_level);
    signal(SIGPIPE, SIG_IGN);

    long fd_limit = raise_fd_limit();
    long per_proc = fd_limit - FD_RESERVE > 16 ? fd_limit - FD_RESERVE : 16;
    long need = cfg.connections + 1;
    long nshards = cfg.processes > 0 ? cfg.processes : (need + per_proc - 1) / per_proc;
    if (nshards > MAX_PROCESSES) {
        fprintf(stderr,
                "chatmi-bench: --connections: %ld connections need more than %d processes at RLIMIT_NOFILE %ld; "
                "raise the limit (ulimit -n)\n",
                cfg.connections, MAX_PROCESSES, fd_limit);
        bn_config_free(&cfg);
        return 2;
    }
    if ((need + nshards - 1) / nshards > per_proc)
        cm_warn("fd_limit", "%ld connections in %ld processes exceed RLIMIT_NOFILE %ld per process: some will fail",
                cfg.connections, nshards, fd_limit);
    uint64_t unit = cfg.scenario == BN_DM ? 2 : cfg.scenario == BN_STORM ? (uint64_t)cfg.storm_group : 1;
    uint64_t units = ((uint64_t)cfg.connections + unit - 1) / unit;
    if ((uint64_t)nshards > units)
        nshards = (long)units;
    pick_source_addrs(&cfg);

    struct bn_report *rep = calloc(1, sizeof(*rep));
    if (rep == NULL) {
        fprintf(stderr, "chatmi-bench: out of memory\n");
        bn_config_free(&cfg);
        return 1;
    }
    rep->cfg = &cfg;
    rep->processes = (int)nshards;
    rep->fd_limit = fd_limit;
    rep->src_count = cfg.src_count;
    if (cfg.src_count > 0) {
        struct in_addr a = {htonl(cfg.src_first)};
        inet_ntop(AF_INET, &a, rep->src_first, sizeof(rep->src_first));
    }
    cm_info("start", "%s: %ld connections to ws://%s:%d%s, prefix %s, %ld process%s", bn_scenario_name(cfg.scenario),
            cfg.connections, cfg.host, cfg.port, cfg.path, cfg.prefix, nshards, nshards == 1 ? "" : "es");
    bn_sample_take(&cfg, &rep->base, 1);
    int r = nshards == 1 ? run_single(rep) : run_forked(rep, (int)nshards);
    if (r == 0 || rep->res.processes > 0) {
        if (cfg.json)
            bn_report_json(rep, stdout);
        else
            bn_report_text(rep, stdout);
    }
    int status = r < 0 ? 1 : rep->res.ramp_connected == 0 ? 1 : 0;
    free(rep);
    bn_config_free(&cfg);
    return status;
}
