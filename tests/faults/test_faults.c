/* test_faults.c: the fault-injection suite (issue 3). Each case runs real
 * redis-server, chatmi-gateway and chatmi-worker processes on 127.0.0.1,
 * puts a steady load on them from several WebSocket clients (fault.h),
 * injects one kind of fault while the load runs, and then checks the
 * invariant of docs/reliability.md: every acked message is in history
 * exactly once with a gap-free seq, and every online recipient got it live
 * or was told to resync. Each case adds a row to the run's table.
 *
 * Recovery times are measured and reported, never asserted beyond generous
 * bounds; every wait is for an event, with a deadline scaled by
 * CHATMI_IT_TIMEOUT_SCALE. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/keys.h"
#include "fault.h"
#include "itest.h"

/* More acks wanted after each fault before the next step: the system is
 * serving again, under the same load. */
#define ACKS_BETWEEN 150

TestSuite(faults, .init = it_begin, .fini = it_end, .timeout = 240);

static void wait_more_acks(struct fl_load *l, long more, const char *after)
{
    long want = fl_acked(l) + more;
    cr_assert(fl_wait_acked(l, want, it_ms(30000)), "%s: the load did not get %ld more acks within %d ms (%ld so far)",
              after, more, it_ms(30000), fl_acked(l));
}

/* No queue work left behind: both lists drained (every partition's, in a
 * cluster), no dead letters. */
static void assert_queues_empty(void)
{
    const char *names[] = {"inbound", "fanout"};
    for (size_t i = 0; i < 2; i++) {
        long long n = -1;
        int64_t deadline = it_mono_ms() + it_ms(10000);
        while ((n = fl_queue_items(names[i])) != 0 && it_mono_ms() < deadline)
            it_pause_ms(20);
        cr_assert_eq(n, 0, "the %s queue still holds %lld items after the load", names[i], n);
    }
    long long dead = fl_queue_items("dead");
    cr_assert_eq(dead, 0, "%lld dead letters after the load", dead);
}

static const char *const fast_beat[] = {"--heartbeat", "0.3", NULL};

/* ---- 1. kill -9 a worker mid-stream, several times ----------------------------------------- */

/* A live worker is SIGSTOPped until it is caught with a batch in hand
 * (bounded), then SIGKILLed, and a new worker started; the reaper in the
 * survivor or the newcomer must requeue the dead worker's batch. Workers
 * beat every 0.3 s, so a dead one is reaped about 1.5 s after its last
 * beat. */
Test(faults, worker_kill9)
{
    it_redis_start();
    it_gateway_start(NULL);
    struct it_worker_conf wc = {.extra = fast_beat};
    int live[2] = {it_worker_start(&wc), it_worker_start(&wc)};
    struct fl_conf conf = {.nclients = 6};
    struct fl_load *l = fl_start(&conf);
    wait_more_acks(l, 200, "start");

    const int rounds = 4;
    int caught = 0;
    long long items = 0;
    long reap_max = 0;
    for (int round = 0; round < rounds; round++) {
        int victim = live[round % 2];
        pid_t pid = it_worker_pid(victim);
        char id[64];
        snprintf(id, sizeof(id), "%s", it_worker_id(victim));
        long long n = 0;
        int64_t deadline = it_mono_ms() + it_ms(5000);
        for (int tries = 0;; tries++) {
            cr_assert_eq(kill(pid, SIGSTOP), 0);
            n = fl_worker_in_hand(id);
            if (n > 0 || it_mono_ms() >= deadline)
                break;
            kill(pid, SIGCONT);
            it_pause_ms(1 + tries % 5); /* paces a bounded retry loop */
        }
        int64_t t_kill = it_now_ms();
        cr_assert(it_worker_signal_wait(victim, SIGKILL, it_ms(5000), NULL), "worker %s did not die of SIGKILL", id);
        if (n > 0) {
            caught++;
            items += n;
        }
        live[round % 2] = it_worker_start(&wc);
        /* the reaper removes the dead worker and hands its lists back */
        int64_t reap_deadline = it_mono_ms() + it_ms(15000);
        long long in_zset = 1, left = 1;
        while (it_mono_ms() < reap_deadline) {
            in_zset = fl_worker_listed(id);
            left = fl_worker_in_hand(id);
            if (in_zset == 0 && left == 0)
                break;
            it_pause_ms(20);
        }
        cr_assert(in_zset == 0 && left == 0, "worker %s was not reaped within %d ms (in the set: %lld, items left %lld)",
                  id, it_ms(15000), in_zset, left);
        long reap = (long)(it_now_ms() - t_kill);
        if (reap > reap_max)
            reap_max = reap;
        fprintf(stderr, "faults: worker_kill9 round %d: killed %s with %lld items in hand, reaped after %ld ms\n",
                round, id, n, reap);
        wait_more_acks(l, ACKS_BETWEEN, "after a worker kill");
    }
    struct fl_result r;
    fl_finish(l, it_port(), &r);
    assert_queues_empty();
    cr_assert_gt(caught, 0, "no worker was caught with a batch in hand in %d tries", rounds);
    cr_assert_eq(r.reconnects, 0, "clients lost their sessions when only workers died");
    char note[160];
    snprintf(note, sizeof(note), "%d of %d killed with a batch in hand (%lld items); reaped within %ld ms", caught,
             rounds, items, reap_max);
    fl_row("1. kill -9 worker", rounds, &r, note);
}

/* ---- 2. kill -9 a gateway child with clients on it ------------------------------------------ */

Test(faults, gateway_child_kill9)
{
    it_redis_start();
    it_gateway_start(NULL); /* two children */
    it_worker_start(NULL);
    struct fl_conf conf = {.nclients = 8};
    struct fl_load *l = fl_start(&conf);
    wait_more_acks(l, 200, "start");

    const int rounds = 2;
    long respawn_max = 0;
    int dropped_total = 0;
    for (int round = 0; round < rounds; round++) {
        pid_t kids[8];
        int nk = it_gw_children(0, kids, 8);
        cr_assert_eq(nk, 2, "the gateway has %d children, expected 2", nk);
        int ports[FL_MAX_CLIENTS], held[8] = {0};
        int n = fl_local_ports(l, ports, FL_MAX_CLIENTS);
        for (int i = 0; i < n; i++) {
            pid_t owner = fl_conn_owner(it_port(), ports[i], kids, nk);
            for (int k = 0; k < nk; k++)
                held[k] += owner == kids[k];
        }
        int victim = held[0] >= held[1] ? 0 : 1;
        cr_assert_gt(held[victim], 0, "no child holds a client (%d and %d)", held[0], held[1]);
        int closes_before = 0;
        fl_closes(l, NULL, 0, &closes_before);
        int64_t t_kill = it_now_ms();
        cr_assert_eq(kill(kids[victim], SIGKILL), 0);
        /* its clients see their sessions end, and the master replaces it */
        int64_t deadline = it_mono_ms() + it_ms(15000);
        int closes = closes_before, replaced = 0;
        while (it_mono_ms() < deadline && (closes < closes_before + held[victim] || !replaced)) {
            fl_closes(l, NULL, 0, &closes);
            if (!replaced) {
                pid_t now[8];
                int m = it_gw_children(0, now, 8);
                int has_dead = 0;
                for (int i = 0; i < m; i++)
                    has_dead |= now[i] == kids[victim];
                if (m == 2 && !has_dead) {
                    replaced = 1;
                    long t = (long)(it_now_ms() - t_kill);
                    if (t > respawn_max)
                        respawn_max = t;
                }
            }
            if (closes < closes_before + held[victim] || !replaced)
                it_pause_ms(10);
        }
        cr_assert_geq(closes, closes_before + held[victim], "%d of %d clients of the killed child saw their session end",
                      closes - closes_before, held[victim]);
        cr_assert(replaced, "the master did not replace the killed child within %d ms", it_ms(15000));
        cr_assert(fl_wait_connected(l, t_kill, 0, it_ms(15000)), "clients did not all reconnect");
        dropped_total += held[victim];
        fprintf(stderr, "faults: gateway_child_kill9 round %d: killed child %d with %d clients\n", round,
                (int)kids[victim], held[victim]);
        wait_more_acks(l, ACKS_BETWEEN, "after a gateway child kill");
    }
    struct fl_result r;
    fl_finish(l, it_port(), &r);
    assert_queues_empty();
    char note[160];
    snprintf(note, sizeof(note), "%d sessions dropped; child replaced within %ld ms", dropped_total, respawn_max);
    fl_row("2. kill -9 gateway child", rounds, &r, note);
}

/* ---- 3. restart Redis (AOF, appendfsync always) under load ------------------------------------- */

Test(faults, redis_restart_aof)
{
    it_skip_in_cluster("restarts the one Redis with AOF (a cluster's nodes: cluster_master_kill)");
    it_redis_use_aof();
    it_redis_start();
    it_gateway_start(NULL);
    it_worker_start(NULL);
    struct fl_conf conf = {.nclients = 6};
    struct fl_load *l = fl_start(&conf);
    wait_more_acks(l, 200, "start");
    const int rounds = 2;
    long down_max = 0;
    for (int round = 0; round < rounds; round++) {
        int64_t t0 = it_now_ms();
        it_redis_restart(); /* SIGKILL, then a new redis-server on the same port and data */
        long down = (long)(it_now_ms() - t0);
        if (down > down_max)
            down_max = down;
        wait_more_acks(l, ACKS_BETWEEN, "after a Redis restart");
    }
    struct fl_result r;
    fl_finish(l, it_port(), &r);
    assert_queues_empty();
    char note[160];
    snprintf(note, sizeof(note), "kill -9 and restart on the same port; Redis down %ld ms; %ld unavailable retried",
             down_max, r.unavailable);
    fl_row("3. restart Redis (AOF always)", rounds, &r, note);
}

/* ---- 4. Sentinel failover ------------------------------------------------------------------- */

#define SENTINEL_MASTER "chatmi"
#define NSENTINELS 3

/* Whether chatmi-gateway takes redis+sentinel:// URLs: its option check
 * says "not supported" (before it complains about the missing JWT key)
 * while it does not. */
static int gateway_takes_sentinel_urls(void)
{
    static char out[8192];
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", it_free_port());
    const char *argv[] = {it_gateway_bin(), "--listen", listen, "--redis-url", "redis+sentinel://127.0.0.1:1/x",
                          "--auth", "jwt", NULL};
    int st = 0;
    cr_assert_eq(it_run(argv, NULL, it_ms(10000), out, sizeof(out), &st), 0, "the gateway did not exit: %s", out);
    return strstr(out, "not supported") == NULL;
}

/* A master, a replica and three sentinels (quorum 2, down-after 1 s) on
 * loopback ports; gateway and worker find the master through the
 * sentinels. The master is killed with SIGKILL under load; the sentinels
 * promote the replica and both programs follow. */
Test(faults, sentinel_failover)
{
    it_skip_in_cluster("Sentinel watches a single master (a cluster fails over by itself: cluster_master_kill)");
    if (!gateway_takes_sentinel_urls()) {
        const char *reason = "chatmi-gateway refuses redis+sentinel:// URLs (gateway/options.c)";
        fl_row("4. Sentinel failover (kill -9 master)", 0, NULL, reason);
        fprintf(stderr, "faults: SKIP sentinel_failover: %s\n", reason);
        cr_skip_test("%s", reason);
    }
    it_redis_start();
    int replica = it_redis_replica_start();
    int sp[NSENTINELS];
    for (int i = 0; i < NSENTINELS; i++)
        sp[i] = it_sentinel_start(SENTINEL_MASTER, 2, 1000, 3000);
    for (int i = 0; i < NSENTINELS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "sentinel%d", i);
        cr_assert(it_log_wait_count(name, "+slave slave", 1, it_ms(15000)), "%s never saw the replica", name);
        cr_assert(it_log_wait_count(name, "+sentinel sentinel", NSENTINELS - 1, it_ms(15000)),
                  "%s did not discover the other sentinels", name);
    }
    char url[256];
    int n = snprintf(url, sizeof(url), "redis+sentinel://");
    for (int i = 0; i < NSENTINELS; i++)
        n += snprintf(url + n, sizeof(url) - (size_t)n, "%s127.0.0.1:%d", i ? "," : "", sp[i]);
    snprintf(url + n, sizeof(url) - (size_t)n, "/%s/0", SENTINEL_MASTER);
    struct it_gw_conf gc = {.redis_url = url};
    it_gateway_start(&gc);
    const char *wextra[] = {"--redis-url", url, "--heartbeat", "0.3", NULL};
    struct it_worker_conf wc = {.extra = wextra};
    it_worker_start(&wc);
    it_worker_start(&wc);

    /* Replication is asynchronous: the record that a fan-out was done can
     * die with the master after its deliveries went out, and the redone
     * job delivers again. Clients drop such repeats by seq; counted. */
    struct fl_conf conf = {.nclients = 6, .live_dups_ok = 1};
    struct fl_load *l = fl_start(&conf);
    wait_more_acks(l, 200, "start");
    int64_t t_kill = it_now_ms();
    it_redis_kill();
    char needle[64];
    snprintf(needle, sizeof(needle), "+switch-master %s", SENTINEL_MASTER);
    cr_assert(it_log_wait_count("sentinel0", needle, 1, it_ms(30000)), "the sentinels did not fail over");
    long switched = (long)(it_now_ms() - t_kill);
    wait_more_acks(l, ACKS_BETWEEN, "after the failover");
    struct fl_result r;
    fl_finish(l, it_port(), &r);
    fl_redis_use_port(replica);
    assert_queues_empty();
    char note[200];
    snprintf(note, sizeof(note),
             "+switch-master %ld ms after the kill (down-after 1 s); %ld unavailable retried; %ld repeated "
             "deliveries",
             switched, r.unavailable, r.live_dups);
    fl_row("4. Sentinel failover (kill -9 master)", 1, &r, note);
}

/* ---- 4b. a replica stalls ----------------------------------------------------------------- */

/* The pid of the redis-server on port, from INFO server. */
static pid_t redis_pid(int port)
{
    static char out[16384];
    const char *info[] = {"INFO", "server", NULL};
    cr_assert_eq(it_redis_cli(port, info, out, sizeof(out)), 0, "INFO server on %d: %s", port, out);
    const char *p = strstr(out, "process_id:");
    cr_assert_not_null(p, "INFO server without process_id: %s", out);
    return (pid_t)atol(p + 11);
}

/* Calls of a command on the Redis at port, from INFO commandstats. */
static long long command_calls(int port, const char *cmd)
{
    static char out[65536];
    const char *info[] = {"INFO", "commandstats", NULL};
    cr_assert_eq(it_redis_cli(port, info, out, sizeof(out)), 0, "INFO commandstats on %d: %s", port, out);
    char needle[64];
    snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", cmd);
    const char *p = strstr(out, needle);
    return p != NULL ? atoll(p + strlen(needle)) : 0;
}

/* With a replica attached, acks wait until it has the batch (WAIT, worker
 * --wait-replicas 1 by default). The replica is then stopped (SIGSTOP)
 * under load: the next batches are acked after --wait-timeout (1 s) and
 * the worker logs replication_lag and stops waiting for 10 s; nothing is
 * lost. */
Test(faults, replica_stalls)
{
    it_skip_in_cluster("stops the replica of the one Redis");
    it_redis_start();
    int replica = it_redis_replica_start();
    it_gateway_start(NULL);
    it_worker_start(NULL);
    cr_assert(it_log_wait_count("worker0", "\"event\":\"replicas\"", 1, it_ms(10000)),
              "the worker did not see the replica");
    struct fl_conf conf = {.nclients = 6};
    struct fl_load *l = fl_start(&conf);
    wait_more_acks(l, 200, "start");
    long long waits = command_calls(it_redis_port(), "wait");
    cr_assert_gt(waits, 0, "acks were sent without waiting for the replica (no WAIT on the master)");

    pid_t rp = redis_pid(replica);
    int64_t t_stop = it_now_ms();
    cr_assert_eq(kill(rp, SIGSTOP), 0);
    cr_assert(it_log_wait_count("worker0", "replication_lag", 1, it_ms(15000)),
              "no replication_lag logged while the replica was stopped");
    wait_more_acks(l, ACKS_BETWEEN, "with the replica stopped");
    long stalled = fl_max_latency(l, t_stop - 2000, it_now_ms());
    cr_assert_eq(kill(rp, SIGCONT), 0);
    wait_more_acks(l, ACKS_BETWEEN, "after the replica runs again");
    struct fl_result r;
    fl_finish(l, it_port(), &r);
    assert_queues_empty();
    char note[200];
    snprintf(note, sizeof(note),
             "acks wait for the replica (%lld WAITs before the stop); stopped: acked after --wait-timeout 1 s, "
             "longest ack wait %ld ms",
             waits, stalled);
    fl_row("4b. replica stalls (SIGSTOP)", 1, &r, note);
}

/* ---- 5. SIGTERM (drain) and SIGHUP (reload) a gateway under load --------------------------------- */

Test(faults, gateway_sigterm_drain)
{
    it_redis_start();
    struct it_gw_conf drained = {.drain_seconds = "2"};
    int g0 = it_gateway_start(&drained);
    int g1 = it_gateway_start(NULL);
    it_worker_start(NULL);
    struct fl_conf conf = {.nclients = 6, .nports = 2, .switch_on_close = 1};
    conf.ports[0] = it_gw_port(g0);
    conf.ports[1] = it_gw_port(g1);
    struct fl_load *l = fl_start(&conf);
    wait_more_acks(l, 200, "start");

    int64_t t0 = it_now_ms();
    cr_assert_eq(kill(it_gw_pid(g0), SIGTERM), 0);
    int st = -1;
    cr_assert(it_gateway_signal_wait(g0, 0, it_ms(20000), &st), "the drained gateway did not exit");
    int64_t t_exit = it_now_ms();
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the drained gateway exited with status %d (signal %d)",
              WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    cr_assert(fl_wait_connected(l, t0, 1, it_ms(15000)), "clients did not all move to the second gateway");

    struct fl_close cl[64];
    int total = 0;
    int n = fl_closes(l, cl, 64, &total);
    int64_t first = 0, last = 0;
    int on_g0 = 0;
    for (int i = 0; i < n; i++) {
        if (cl[i].port != conf.ports[0])
            continue;
        cr_assert_eq(cl[i].code, 1001, "a client of the drained gateway was closed with %d, expected 1001", cl[i].code);
        if (on_g0 == 0 || cl[i].ms < first)
            first = cl[i].ms;
        if (cl[i].ms > last)
            last = cl[i].ms;
        on_g0++;
    }
    cr_assert_eq(on_g0, conf.nclients, "%d of %d clients were closed by the drained gateway", on_g0, conf.nclients);
    cr_assert_geq(last - first, 500, "the closes were not spread over --drain-seconds 2: %lld ms from first to last",
                  (long long)(last - first));
    cr_assert_leq(last - t0, it_ms(8000), "the last close came %lld ms after SIGTERM", (long long)(last - t0));
    wait_more_acks(l, ACKS_BETWEEN, "after the drain");
    struct fl_result r;
    fl_finish(l, it_gw_port(g1), &r);
    assert_queues_empty();
    char note[200];
    snprintf(note, sizeof(note),
             "--drain-seconds 2: %d sessions closed 1001 from +%lld to +%lld ms, master exit 0 at +%lld ms; clients "
             "moved to a second gateway",
             on_g0, (long long)(first - t0), (long long)(last - t0), (long long)(t_exit - t0));
    fl_row("5a. SIGTERM gateway (drain)", 1, &r, note);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

Test(faults, gateway_sighup_reload)
{
    it_redis_start();
    char path[4096];
    snprintf(path, sizeof(path), "%s/gateway.env", it_dir());
    write_file(path, "CHATMI_MAX_QUEUED_BYTES=1MiB\n");
    const char *extra[] = {"--config", path, NULL};
    struct it_gw_conf gc = {.drain_seconds = "1", .extra = extra};
    it_gateway_start(&gc);
    it_worker_start(NULL);
    struct fl_conf conf = {.nclients = 8};
    struct fl_load *l = fl_start(&conf);
    wait_more_acks(l, 200, "start");

    long failures_before = fl_connect_failures(l);
    write_file(path, "CHATMI_MAX_QUEUED_BYTES=2MiB\n");
    int64_t t0 = it_now_ms();
    cr_assert_eq(kill(it_gw_pid(0), SIGHUP), 0);
    cr_assert(it_gw_log_wait(0, "\"event\":\"reloaded\"", it_ms(30000)), "the gateway did not log \"reloaded\"");
    int64_t t_reloaded = it_now_ms();
    /* both replaced children drain their sessions (1 s) and exit 0; every
     * client then has a session on a new child */
    cr_assert(it_log_wait_count("gateway0", "replaced child", 2, it_ms(20000)),
              "the replaced children did not both exit after draining");
    cr_assert_eq(it_log_count("gateway0", "exited with status 0"), 2, "a replaced child exited with an error");
    cr_assert(fl_wait_connected(l, t0, 1, it_ms(20000)), "clients did not all get a session on the new children");
    struct fl_close cl[64];
    int total = 0;
    int n = fl_closes(l, cl, 64, &total);
    for (int i = 0; i < n; i++)
        cr_assert_eq(cl[i].code, 1001, "a session was closed with %d during the reload, expected 1001", cl[i].code);
    long refused = fl_connect_failures(l) - failures_before;
    cr_assert_eq(refused, 0, "%ld connection attempts failed during the reload", refused);
    wait_more_acks(l, ACKS_BETWEEN, "after the reload");
    struct fl_result r;
    fl_finish(l, it_port(), &r);
    assert_queues_empty();
    char note[200];
    snprintf(note, sizeof(note), "2 children replaced one at a time in %lld ms; %d sessions closed 1001; 0 of %ld "
             "reconnects refused",
             (long long)(t_reloaded - t0), total, r.reconnects);
    fl_row("5b. SIGHUP gateway (reload)", 1, &r, note);
}

/* ---- 6. a stalled client -------------------------------------------------------------------- */

/* A session of a room member that never reads its socket, while the load
 * runs with 1 KB messages: the gateway must cut it at --max-queued-bytes
 * with 1013 and the others must not notice. */
Test(faults, stalled_client)
{
    it_redis_start();
    struct it_gw_conf gc = {.max_queued_bytes = "64KiB"};
    it_gateway_start(&gc);
    it_worker_start(NULL);
    struct ws *s = it_open(it_port(), "stalled", NULL);
    it_join(s, "j", "load");
    ws_free(s);

    struct fl_conf conf = {.nclients = 6, .pad = 1000};
    struct fl_load *l = fl_start(&conf);
    wait_more_acks(l, 100, "start");
    int64_t t_stall = it_now_ms();
    int fd = fl_stalled_open(it_port(), "stalled");
    cr_assert(it_gw_log_wait(0, "slow_client", it_ms(30000)), "the stalled session was not cut within %d ms",
              it_ms(30000));
    int64_t t_cut = it_now_ms();
    int code = fl_stalled_close_code(fd, it_ms(10000));
    cr_assert_eq(code, 1013, "the stalled session ended with %d, expected 1013", code);
    long others = fl_max_latency(l, t_stall, t_cut);
    cr_assert_lt(others, it_ms(3000), "other clients waited %ld ms for an ack while one client stalled", others);

    /* the stalled user reconnects and finds where the room is */
    s = it_open(it_port(), "stalled", NULL);
    json_t *cv = it_req_op(s, json_pack("{s:s,s:s}", "op", "convs", "id", "c"), "convs");
    cr_assert_gt(json_array_size(json_object_get(cv, "convs")), 0, "convs after the 1013: %s", jdump(cv));
    json_decref(cv);
    ws_free(s);

    wait_more_acks(l, ACKS_BETWEEN, "after the stalled client was cut");
    struct fl_result r;
    fl_finish(l, it_port(), &r);
    assert_queues_empty();
    cr_assert_eq(r.reconnects, 0, "other clients lost their sessions");
    cr_assert_eq(r.resyncs, 0, "other clients were told to resync");
    char note[200];
    snprintf(note, sizeof(note),
             "--max-queued-bytes 64KiB: cut with 1013 %lld ms after it stopped reading; others' longest ack wait "
             "meanwhile %ld ms",
             (long long)(t_cut - t_stall), others);
    fl_row("6. stalled client (never reads)", 1, &r, note);
}

/* ---- 7. Redis Cluster: a master killed, slots moved, under load ------------------------------- */

/* A real cluster of 3 masters with a replica each (the harness's
 * it_cluster_start: cluster-node-timeout 1 s), one gateway and two workers
 * on it with --queue-partitions 6, two per master (or CHATMI_IT_QUEUE_PARTITIONS). Keys are
 * hash-tagged: a conversation's keys live in the slot of {c:<conv>}, a
 * user's channel in the slot of {u:<user>}, the room's channel in the slot
 * of {c:room:<name>}. Fan-out to per-user channels in a cluster is
 * at-least-once (a failover or a moved slot can lose the record that a
 * publish was done): clients drop repeats by seq, so repeats are counted,
 * not failed (live_dups_ok). */

/* The suite's probes on a cluster, without chatmi: fl_redis_int follows MOVED to a key's owner, and
 * the queue and in-hand counts add up every partition's list wherever its
 * slot lives, also after the slot has moved. */
Test(faults, cluster_probes_follow_slots)
{
    it_cluster_start(3, 1);
    /* lists spread over the masters, spelled as one queue ({q}) and as partitions
     * ({q<p>.<k>}, common/cluster.h on main; the patterns take any {q...}) */
    const char *lists[] = {"chatmi:{q}:inbound", "chatmi:{q0}:inbound", "chatmi:{q1.2}:inbound", "chatmi:{q2}:fanout",
                           "chatmi:{q3.0}:inbound:proc:w-1", "chatmi:{q1}:fanout:proc:w-1", "chatmi:{q2}:dead"};
    const int items[] = {1, 2, 3, 4, 5, 6, 7};
    int owners[8] = {0}, distinct = 0;
    for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
        char out[256];
        for (int k = 0; k < items[i]; k++) {
            const char *push[] = {"RPUSH", lists[i], "x", NULL};
            cr_assert_eq(it_redis_cli(it_redis_port(), push, out, sizeof(out)), 0, "%s", out);
        }
        int o = it_cluster_key_owner(lists[i]);
        distinct += owners[o] == 0;
        owners[o] = 1;
        cr_assert_eq(fl_redis_int("LLEN %s", lists[i]), items[i], "LLEN %s (owner node %d)", lists[i], o);
    }
    cr_assert_geq(distinct, 2, "the lists all landed on one master");
    cr_assert_eq(fl_queue_items("inbound"), 1 + 2 + 3);
    cr_assert_eq(fl_queue_items("fanout"), 4);
    cr_assert_eq(fl_queue_items("dead"), 7);
    cr_assert_eq(fl_worker_in_hand("w-1"), 5 + 6);
    const char *zadd[] = {"ZADD", "chatmi:{q2.1}:workers", "1", "w-1", NULL};
    char zout[64];
    cr_assert_eq(it_redis_cli(it_redis_port(), zadd, zout, sizeof(zout)), 0, "%s", zout);
    cr_assert_eq(fl_worker_listed("w-1"), 1);
    cr_assert_eq(fl_worker_listed("w-2"), 0);
    /* a list's slot moves to another master: still found, still counted */
    int slot = it_cluster_keyslot(lists[1]);
    int from = it_cluster_slot_owner(slot), m[8];
    int nm = it_cluster_masters(m, 8);
    cr_assert_geq(nm, 2);
    it_cluster_move_slot(slot, m[0] != from ? m[0] : m[1]);
    cr_assert_eq(fl_redis_int("LLEN %s", lists[1]), 2);
    cr_assert_eq(fl_queue_items("inbound"), 1 + 2 + 3);
}

#define CLUSTER_RESHARD_MAX 2000 /* slots one redis-cli --cluster reshard may move here */

static void cluster_stack(void)
{
    if (it_queue_partitions() == 0)
        it_set_queue_partitions(6);
    it_cluster_start(3, 1);
    it_gateway_start(NULL);
    struct it_worker_conf wc = {.extra = fast_beat};
    it_worker_start(&wc);
    it_worker_start(&wc);
}

/* kill -9 the master of the room conversation's slot, then the master of a
 * busy user's (c0's) channel slot; each time its replica is promoted, and
 * the killed node is started again (it comes back as a replica, so the
 * next master killed has one too). */
Test(faults, cluster_master_kill)
{
    const char *row = "7a. Redis Cluster: kill -9 master";
    cluster_stack();
    struct fl_conf conf = {.nclients = 6, .live_dups_ok = 1};
    struct fl_load *l = fl_start(&conf);
    wait_more_acks(l, 200, "start");

    const char *keys[] = {"chatmi:{c:room:load}:seq", "chatmi:{u:c0}"};
    const int rounds = 2;
    char note[400];
    int n = snprintf(note, sizeof(note), "3 masters + 3 replicas, node timeout 1 s, %d queue partitions;",
                     it_queue_partitions());
    for (int round = 0; round < rounds; round++) {
        int slot = it_cluster_keyslot(keys[round]);
        int victim = it_cluster_slot_owner(slot);
        int promoted = -1;
        long ms = it_cluster_kill_master(victim, &promoted);
        fprintf(stderr,
                "faults: cluster_master_kill round %d: killed master node %d (slot %d of %s); replica node %d "
                "promoted, cluster ok %ld ms after the kill\n",
                round, victim, slot, keys[round], promoted, ms);
        wait_more_acks(l, ACKS_BETWEEN, "after a cluster master kill");
        it_cluster_restart_node(victim);
        wait_more_acks(l, ACKS_BETWEEN, "after the killed node came back as a replica");
        if (n < (int)sizeof(note))
            n += snprintf(note + n, sizeof(note) - (size_t)n, " master of %s (slot %d) killed, replica promoted in %ld ms;",
                          keys[round], slot, ms);
    }
    struct fl_result r;
    fl_finish(l, it_port(), &r);
    assert_queues_empty();
    if (n < (int)sizeof(note))
        snprintf(note + n, sizeof(note) - (size_t)n, " %ld unavailable retried; %ld repeated deliveries", r.unavailable,
                 r.live_dups);
    fl_row(row, rounds, &r, note);
}

/* redis-cli --cluster reshard moves the lowest slots of a master to another:
 * enough of them to take the room conversation's slot and the channel
 * slots of the load's users that lie below it on that master (or, when
 * that would be too many, a bulk of slots and the room's slot on its own);
 * then redis-cli --cluster rebalance brings the slots back. All under load. */
Test(faults, cluster_reshard, .timeout = 300)
{
    const char *row = "7b. Redis Cluster: reshard under load";
    cluster_stack();
    struct fl_conf conf = {.nclients = 6, .live_dups_ok = 1};
    struct fl_load *l = fl_start(&conf);
    wait_more_acks(l, 200, "start");

    static int map[16384];
    it_cluster_slot_map(map);
    int room_slot = it_cluster_keyslot("chatmi:{c:room:load}");
    int from = map[room_slot];
    int m[8];
    int nm = it_cluster_masters(m, 8);
    cr_assert_geq(nm, 2);
    int to = m[0] != from ? m[0] : m[1];
    /* below[s]: how many of from's slots are <= s (redis-cli takes them lowest first) */
    static int below[16384];
    for (int s = 0, c = 0; s < 16384; s++) {
        c += map[s] == from;
        below[s] = c;
    }
    int nslots = below[room_slot], users = 0, user_slots[FL_MAX_CLIENTS];
    for (int i = 0; i < conf.nclients; i++) {
        char key[32];
        snprintf(key, sizeof(key), "chatmi:{u:c%d}", i);
        int s = it_cluster_keyslot(key);
        if (map[s] == from && below[s] <= CLUSTER_RESHARD_MAX) {
            user_slots[users++] = s;
            if (below[s] > nslots)
                nslots = below[s];
        }
    }
    int room_alone = nslots > CLUSTER_RESHARD_MAX;
    if (room_alone)
        nslots = 200;
    long t_reshard = it_cluster_reshard(from, to, nslots);
    wait_more_acks(l, ACKS_BETWEEN, "after redis-cli --cluster reshard");
    long t_alone = 0;
    if (room_alone) {
        t_alone = it_cluster_move_slot(room_slot, to);
        wait_more_acks(l, ACKS_BETWEEN, "after the room's slot moved");
    }
    it_cluster_slot_map(map);
    cr_assert_eq(map[room_slot], to, "the room conversation's slot %d is on node %d, not %d", room_slot,
                 map[room_slot], to);
    for (int i = 0; i < users; i++)
        cr_assert_eq(map[user_slots[i]], to, "user channel slot %d did not move", user_slots[i]);
    fprintf(stderr,
            "faults: cluster_reshard: %d slots moved from node %d to node %d by redis-cli in %ld ms (room slot %d%s, "
            "%d user channel slots)\n",
            nslots, from, to, t_reshard, room_slot, room_alone ? " moved on its own" : " among them", users);

    long t_back = it_cluster_rebalance();
    wait_more_acks(l, ACKS_BETWEEN, "after redis-cli --cluster rebalance");
    struct fl_result r;
    fl_finish(l, it_port(), &r);
    assert_queues_empty();
    char note[400];
    snprintf(note, sizeof(note),
             "redis-cli --cluster reshard of %d slots in %ld ms (room:load's slot %d%s, %d users' channel slots), "
             "rebalance back in %ld ms; %d queue partitions; %ld unavailable retried; %ld repeated deliveries",
             nslots, t_reshard + t_alone, room_slot, room_alone ? " moved on its own" : "", users, t_back,
             it_queue_partitions(), r.unavailable, r.live_dups);
    fl_row(row, room_alone ? 3 : 2, &r, note);
}
