/* test_sentinel.c: Redis endpoints that move (docs/operations.md, "Redis"):
 *   - redis+sentinel:// followed through a failover (the master killed with
 *     SIGKILL, the sentinels promote the replica): gateway and worker log
 *     the new master, a new DM is acked and delivered, nothing acked is
 *     lost;
 *   - a planned failover (SENTINEL FAILOVER): the old master lives on as a
 *     replica, so only +switch-master and READONLY tell the programs;
 *   - redis:// restarted on the same port, and a redis:// node demoted to a
 *     replica and promoted back (an ElastiCache primary endpoint that moves
 *     lands for a while on a replica: ROLE and READONLY);
 *   - sentinels unreachable or not knowing the master name: a clear error,
 *     retries, no crash; bad URLs: exit status 2.
 * Real processes: Debian's redis-server and redis-sentinel on loopback
 * ports, each test with its own directory. Waits poll logs or replies with
 * deadlines; no sleep stands in for an event. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "itest.h"

#define MASTER "chatmi"
#define NSENTINELS 3
#define OUT_MAX 8192

/* ---- helpers ---------------------------------------------------------------------- */

/* The gateway's option check decides whether it takes sentinel URLs (the
 * worker's does not depend on it): probe with a URL that cannot connect and
 * a missing JWT key, which is reported only once --redis-url passed. */
static int gateway_takes_sentinel_urls(void)
{
    static char out[OUT_MAX];
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", it_free_port());
    const char *argv[] = {it_gateway_bin(), "--listen", listen, "--redis-url", "redis+sentinel://127.0.0.1:1/x",
                          "--auth", "jwt", NULL};
    int st = 0;
    cr_assert_eq(it_run(argv, NULL, it_ms(10000), out, sizeof(out), &st), 0, "the gateway did not exit: %s", out);
    return strstr(out, "not supported") == NULL;
}

/* Starts NSENTINELS sentinels on the test's Redis and waits until each one
 * knows the replica and the other sentinels (a failover needs both). */
static void start_sentinels(int *ports, int down_after_ms)
{
    for (int i = 0; i < NSENTINELS; i++)
        ports[i] = it_sentinel_start(MASTER, 2, down_after_ms, 3000);
    for (int i = 0; i < NSENTINELS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "sentinel%d", i);
        cr_assert(it_log_wait_count(name, "+slave slave", 1, it_ms(15000)), "%s never saw the replica", name);
        cr_assert(it_log_wait_count(name, "+sentinel sentinel", NSENTINELS - 1, it_ms(15000)),
                  "%s did not discover the other sentinels", name);
    }
}

/* Ends a test whose worker half passed when the gateway cannot take part,
 * loudly: Criterion's summary does not show skips. */
#define SKIP_GATEWAY_HALF()                                                                                          \
    do {                                                                                                             \
        fprintf(stderr, "SKIP %s::%s: chatmi-gateway refuses redis+sentinel:// URLs (gateway/options.c); only the " \
                        "worker half ran\n",                                                                         \
                criterion_current_suite->name, criterion_current_test->name);                                       \
        cr_skip_test("chatmi-gateway refuses redis+sentinel:// URLs (gateway/options.c); the worker half passed");   \
    } while (0)

static void sentinel_url(char *buf, size_t len, const int *ports, const char *master)
{
    int n = snprintf(buf, len, "redis+sentinel://");
    for (int i = 0; i < NSENTINELS; i++)
        n += snprintf(buf + n, len - (size_t)n, "%s127.0.0.1:%d", i ? "," : "", ports[i]);
    snprintf(buf + n, len - (size_t)n, "/%s/0", master);
}

/* One number after "field:" in redis-cli output, or -1. */
static long long info_field(const char *out, const char *field)
{
    const char *p = strstr(out, field);
    return p != NULL ? atoll(p + strlen(field)) : -1;
}

/* Waits until the replica has everything the master wrote (so killing the
 * master loses nothing acked: Redis replication is asynchronous). */
static void wait_replica_caught_up(int master_port, int replica_port)
{
    static char out[OUT_MAX];
    const char *info[] = {"INFO", "replication", NULL};
    int64_t deadline = it_mono_ms() + it_ms(10000);
    for (;;) {
        cr_assert_eq(it_redis_cli(master_port, info, out, sizeof(out)), 0, "INFO on the master: %s", out);
        long long m = info_field(out, "master_repl_offset:");
        cr_assert_eq(it_redis_cli(replica_port, info, out, sizeof(out)), 0, "INFO on the replica: %s", out);
        long long r = info_field(out, "slave_repl_offset:");
        if (m > 0 && r == m)
            return;
        cr_assert(it_mono_ms() < deadline, "the replica stays behind (offset %lld of %lld)", r, m);
        it_pause_ms(20);
    }
}

/* Sends a DM until it is acked: while Redis is away the gateway answers
 * unavailable, and a retry with the same id is the contract's recovery. */
static json_t *dm_until_acked(struct ws *ws, const char *id, const char *to, const char *text, int timeout_ms)
{
    int64_t deadline = it_mono_ms() + timeout_ms;
    for (;;) {
        json_t *rep = ws_request(ws, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", id, "to", to, "text", text),
                                 IT_WAIT);
        if (rep != NULL && strcmp(js(rep, "op"), "ack") == 0)
            return rep;
        cr_assert(rep == NULL || (strcmp(js(rep, "op"), "error") == 0 && strcmp(js(rep, "code"), "unavailable") == 0),
                  "%s: unexpected answer to send %s: %s", ws->name, id, jdump(rep));
        cr_assert(ws->close_code == 0, "%s: closed (%d) while Redis was away", ws->name, ws->close_code);
        json_decref(rep);
        cr_assert(it_mono_ms() < deadline, "%s: send %s not acked within %d ms", ws->name, id, timeout_ms);
        it_pause_ms(100); /* paces the retries; the deadline bounds them */
    }
}

/* Pushes n undecodable records on the inbound queue of the Redis at port
 * and waits until the worker has moved them all to the dead list: proof
 * that it works against that node. */
static void worker_handles_queue_on(int port, long long *dead_before)
{
    static char out[OUT_MAX];
    const char *push[] = {"RPUSH", "chatmi:{q}:inbound", "not-an-envelope", "not-an-envelope", NULL};
    cr_assert_eq(it_redis_cli(port, push, out, sizeof(out)), 0, "RPUSH: %s", out);
    const char *llen[] = {"LLEN", "chatmi:{q}:dead", NULL};
    int64_t deadline = it_mono_ms() + it_ms(15000);
    for (;;) {
        cr_assert_eq(it_redis_cli(port, llen, out, sizeof(out)), 0, "LLEN: %s", out);
        long long n = atoll(out);
        if (n >= *dead_before + 2) {
            *dead_before = n;
            return;
        }
        cr_assert(it_mono_ms() < deadline, "the worker did not take the queue on port %d (dead list %lld)", port, n);
        it_pause_ms(50);
    }
}

static void assert_history(struct ws *ws, const char *conv, int64_t last)
{
    json_t *h = it_history(ws, "h-final", conv, "after", 0, 50);
    it_assert_seq_range(json_object_get(h, "messages"), 1, last, "history after the failover");
    json_decref(h);
}

/* ---- sentinel failover ------------------------------------------------------------- */

TestSuite(sentinel, .init = it_redis_init, .fini = it_end, .timeout = 150);

/* The master dies (SIGKILL): the sentinels promote the replica; the worker
 * and every gateway child find it, log it, and chat goes on. */
Test(sentinel, master_killed_failover_followed)
{
    it_skip_in_cluster("Sentinel watches a single master and its replica");
    int master = it_redis_port();
    int replica = it_redis_replica_start();
    int sp[NSENTINELS];
    start_sentinels(sp, 1000);
    char url[256];
    sentinel_url(url, sizeof(url), sp, MASTER);
    int with_gateway = gateway_takes_sentinel_urls();

    const char *wextra[] = {"--redis-url", url, NULL};
    struct it_worker_conf wc = {.extra = wextra};
    it_worker_start(&wc);
    struct ws *a = NULL, *b = NULL;
    if (with_gateway) {
        struct it_gw_conf gc = {.redis_url = url};
        it_gateway_start(&gc);
        a = it_open(it_port(), "alice", NULL);
        b = it_open(it_port(), "bob", NULL);
        json_decref(it_dm(a, "d1", "bob", "before the failover"));
        json_decref(it_deliv(b, "dm:alice:bob", 1));
    }
    long long dead = 0;
    worker_handles_queue_on(master, &dead);
    wait_replica_caught_up(master, replica);

    int64_t t_kill = it_mono_ms();
    it_redis_kill();
    char needle[64];
    snprintf(needle, sizeof(needle), "+switch-master %s", MASTER);
    cr_assert(it_log_wait_count("sentinel0", needle, 1, it_ms(30000)), "the sentinels did not fail over");
    int64_t t_switch = it_mono_ms();

    cr_assert(it_log_wait_count("worker0", "redis_master_changed", 1, it_ms(20000)),
              "the worker did not log that it follows the new master");
    int64_t t_worker = it_mono_ms();
    worker_handles_queue_on(replica, &dead);
    char at[64];
    snprintf(at, sizeof(at), "127.0.0.1:%d", replica);
    cr_assert(it_log_count("worker0", at) > 0, "the worker's log does not name the new master %s", at);

    if (!with_gateway) {
        fprintf(stderr, "sentinel failover: kill -> +switch-master %lld ms, worker following %lld ms later\n",
                (long long)(t_switch - t_kill), (long long)(t_worker - t_switch));
        SKIP_GATEWAY_HALF();
    }
    cr_assert(it_gw_log_wait(0, "redis_master_changed", it_ms(20000)),
              "the gateway did not log that it follows the new master");
    int64_t t_gateway = it_mono_ms();
    json_t *ack = dm_until_acked(a, "d2", "bob", "after the failover", it_ms(30000));
    int64_t t_ack = it_mono_ms();
    cr_assert_eq(ji(ack, "seq"), 2, "seq goes on from the replica's copy: %s", jdump(ack));
    json_decref(ack);
    json_decref(it_deliv(b, "dm:alice:bob", 2));
    assert_history(b, "dm:alice:bob", 2);
    /* a session opened after the failover works too */
    struct ws *c = it_open(it_port(), "carol", NULL);
    json_decref(it_dm(c, "c1", "alice", "hello"));
    json_decref(it_deliv(a, "dm:alice:carol", 1));
    fprintf(stderr,
            "sentinel failover: kill -> +switch-master %lld ms; after it, as seen by the test (checked in turn): "
            "worker following %lld ms, gateway following %lld ms, first ack %lld ms (kill -> ack %lld ms)\n",
            (long long)(t_switch - t_kill), (long long)(t_worker - t_switch), (long long)(t_gateway - t_switch),
            (long long)(t_ack - t_switch), (long long)(t_ack - t_kill));
    ws_free(c);
    ws_free(a);
    ws_free(b);
}

/* SENTINEL FAILOVER: the old master stays up and becomes a replica, so no
 * connection is lost: the programs learn it from +switch-master (and
 * READONLY or a refused ROLE) and move. */
Test(sentinel, planned_failover_followed)
{
    it_skip_in_cluster("Sentinel watches a single master and its replica");
    int master = it_redis_port();
    int replica = it_redis_replica_start();
    int sp[NSENTINELS];
    start_sentinels(sp, 5000);
    char url[256];
    sentinel_url(url, sizeof(url), sp, MASTER);
    int with_gateway = gateway_takes_sentinel_urls();

    const char *wextra[] = {"--redis-url", url, NULL};
    struct it_worker_conf wc = {.extra = wextra};
    it_worker_start(&wc);
    struct ws *a = NULL, *b = NULL;
    if (with_gateway) {
        struct it_gw_conf gc = {.redis_url = url};
        it_gateway_start(&gc);
        a = it_open(it_port(), "alice", NULL);
        b = it_open(it_port(), "bob", NULL);
        json_decref(it_dm(a, "d1", "bob", "before"));
        json_decref(it_deliv(b, "dm:alice:bob", 1));
        /* both children hold a watch on a sentinel before the switch */
    }
    long long dead = 0;
    worker_handles_queue_on(master, &dead);
    wait_replica_caught_up(master, replica);

    static char out[OUT_MAX];
    const char *fo[] = {"SENTINEL", "FAILOVER", MASTER, NULL};
    cr_assert_eq(it_redis_cli(sp[0], fo, out, sizeof(out)), 0, "SENTINEL FAILOVER: %s", out);
    cr_assert(strstr(out, "OK") != NULL, "SENTINEL FAILOVER: %s", out);
    char needle[64];
    snprintf(needle, sizeof(needle), "+switch-master %s", MASTER);
    cr_assert(it_log_wait_count("sentinel0", needle, 1, it_ms(30000)), "the sentinels did not fail over");

    cr_assert(it_log_wait_count("worker0", "redis_master_changed", 1, it_ms(20000)),
              "the worker did not follow the new master");
    worker_handles_queue_on(replica, &dead);
    if (!with_gateway)
        SKIP_GATEWAY_HALF();
    cr_assert(it_gw_log_wait(0, "redis_master_changed", it_ms(20000)), "the gateway did not follow the new master");
    json_t *ack = dm_until_acked(a, "d2", "bob", "after", it_ms(30000));
    cr_assert_eq(ji(ack, "seq"), 2, "%s", jdump(ack));
    json_decref(ack);
    json_decref(it_deliv(b, "dm:alice:bob", 2));
    assert_history(a, "dm:alice:bob", 2);
    ws_free(a);
    ws_free(b);
}

/* Nothing answers at the sentinel addresses, or a sentinel does not know
 * the master name: both programs say so clearly and keep retrying, and
 * stop cleanly (exit 0) on SIGTERM. */
Test(sentinel, unreachable_or_unknown_sentinels_retried)
{
    it_skip_in_cluster("Sentinel watches a single master");
    /* one real sentinel, which monitors "chatmi", and one dead address */
    int sp = it_sentinel_start(MASTER, 1, 5000, 3000);
    char url[256];
    snprintf(url, sizeof(url), "redis+sentinel://127.0.0.1:%d,127.0.0.1:%d/nosuch/0", it_free_port(), sp);
    int with_gateway = gateway_takes_sentinel_urls();

    const char *wargv[] = {it_worker_bin(), "--redis-url", url, "--log-format", "json", NULL};
    int w = it_spawn("worker-nosentinel", wargv);
    int g = -1;
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", it_free_port());
    if (with_gateway) {
        const char *gargv[] = {it_gateway_bin(), "--listen", listen, "--processes", "1", "--redis-url", url,
                               "--auth", "none", "--log-format", "json", "--drain-seconds", "0", NULL};
        g = it_spawn("gateway-nosentinel", gargv);
    }
    cr_assert(it_log_wait_count("worker-nosentinel", "no sentinel gave the address of master", 3, it_ms(20000)),
              "the worker did not report (and retry) the failed discovery");
    cr_assert(it_log_count("worker-nosentinel", "does not monitor a master named") > 0,
              "the worker's error does not say the sentinel does not know the name");
    cr_assert(it_log_count("worker-nosentinel", "Connection refused") > 0,
              "the worker's error does not name the dead sentinel's failure");
    if (g >= 0) {
        cr_assert(it_log_wait_count("gateway-nosentinel", "redis_sentinel_failed", 3, it_ms(20000)),
                  "the gateway did not report (and retry) the failed discovery");
        cr_assert(it_log_count("gateway-nosentinel", "does not monitor a master named") > 0,
                  "the gateway's error does not say the sentinel does not know the name");
        struct it_http_resp resp;
        int port = atoi(strchr(listen, ':') + 1);
        cr_assert_eq(it_http_get(port, "/readyz", IT_WAIT, &resp), 0, "/readyz did not answer");
        cr_assert_eq(resp.status, 503, "/readyz without Redis: %d", resp.status);
        it_http_resp_free(&resp);
        int st = 0;
        cr_assert(it_spawn_stop(g, SIGTERM, it_ms(10000), &st), "the gateway did not stop on SIGTERM");
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "gateway exit status %d", st);
    }
    int st = 0;
    cr_assert(it_spawn_stop(w, SIGTERM, it_ms(10000), &st), "the worker did not stop on SIGTERM");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker exit status %d", st);
    if (g < 0)
        SKIP_GATEWAY_HALF();
}

/* Bad sentinel URLs, and a cluster URL with a database (a cluster has only
 * database 0), stop both programs at start (status 2, naming the option). */
Test(sentinel, bad_urls_exit_2)
{
    static char out[OUT_MAX];
    static const char *const bad[] = {"redis+sentinel://127.0.0.1:26379", "redis+sentinel://127.0.0.1:26379/",
                                      "redis+sentinel:///chatmi", "redis+cluster://127.0.0.1:7000/1"};
    const char *bins[] = {it_worker_bin(), it_gateway_bin()};
    for (size_t b = 0; b < 2; b++) {
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            char listen[64];
            snprintf(listen, sizeof(listen), "127.0.0.1:%d", it_free_port());
            const char *argv[] = {bins[b], "--redis-url", bad[i], "--auth", "none", "--listen", listen, NULL};
            if (b == 0)
                argv[3] = NULL; /* the worker has neither --auth nor --listen */
            int st = 0;
            cr_assert_eq(it_run(argv, NULL, it_ms(10000), out, sizeof(out), &st), 0, "%s did not exit: %s", bins[b],
                         out);
            cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s --redis-url %s: status %d, output:\n%s", bins[b],
                      bad[i], st, out);
            cr_assert_not_null(strstr(out, "redis-url"), "%s --redis-url %s: the message does not name the option:\n%s",
                               bins[b], bad[i], out);
        }
    }
}

/* ---- redis:// endpoints ------------------------------------------------------------ */

static void aof_redis_init(void)
{
    it_begin();
    if (it_cluster_mode())
        return; /* each test skips itself: AOF and restarts of one Redis */
    it_redis_use_aof();
    it_redis_start();
}

TestSuite(endpoint, .init = aof_redis_init, .fini = it_end, .timeout = 120);

/* Killed and started again on the same port (with AOF, so nothing acked is
 * lost): both programs reconnect to the same address and say so. */
Test(endpoint, restarted_same_port_reconnected)
{
    it_skip_in_cluster("restarts the one Redis on its port, with AOF");
    it_gateway_start(NULL);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    json_decref(it_dm(a, "d1", "bob", "before"));
    json_decref(it_deliv(b, "dm:alice:bob", 1));
    int gw_before = it_log_count("gateway0", "redis_connected");

    int64_t t0 = it_mono_ms();
    it_redis_restart();
    int64_t t_up = it_mono_ms();
    cr_assert(it_log_wait_count("worker0", "redis_connected", 1, it_ms(20000)), "the worker did not reconnect");
    /* every child logs its reconnect */
    cr_assert(it_log_wait_count("gateway0", "redis_connected", gw_before + 2, it_ms(20000)),
              "the gateway's children did not both reconnect");
    int64_t t_back = it_mono_ms();
    json_t *ack = dm_until_acked(a, "d2", "bob", "after", it_ms(20000));
    cr_assert_eq(ji(ack, "seq"), 2, "seq goes on after the restart (AOF): %s", jdump(ack));
    json_decref(ack);
    json_decref(it_deliv(b, "dm:alice:bob", 2));
    fprintf(stderr, "redis restart: down %lld ms; both reconnected %lld ms after it was up again\n",
            (long long)(t_up - t0), (long long)(t_back - t_up));
    ws_free(a);
    ws_free(b);
}

/* The node behind a redis:// URL turns into a replica (as a moved
 * ElastiCache primary endpoint may still point at the old primary for a
 * while): writes get READONLY, reconnecting finds ROLE slave, and both
 * programs keep trying until it is a master again. */
Test(endpoint, demoted_to_replica_then_promoted)
{
    it_skip_in_cluster("demotes the one Redis behind a redis:// URL to a replica");
    int port = it_redis_port();
    int other = it_redis_replica_start();
    it_gateway_start(NULL);
    it_worker_start(NULL);
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    json_decref(it_dm(a, "d1", "bob", "before"));
    json_decref(it_deliv(b, "dm:alice:bob", 1));
    wait_replica_caught_up(port, other);

    static char out[OUT_MAX];
    char others[16];
    snprintf(others, sizeof(others), "%d", other);
    const char *promote_other[] = {"REPLICAOF", "NO", "ONE", NULL};
    cr_assert_eq(it_redis_cli(other, promote_other, out, sizeof(out)), 0, "%s", out);
    const char *demote[] = {"REPLICAOF", "127.0.0.1", others, NULL};
    cr_assert_eq(it_redis_cli(port, demote, out, sizeof(out)), 0, "%s", out);

    /* a send now finds a replica: answered unavailable, never acked */
    json_t *rep = it_req(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "d2", "to", "bob", "text", "during"));
    cr_assert_str_eq(js(rep, "op"), "error", "a send to a replica was answered %s", jdump(rep));
    cr_assert_str_eq(js(rep, "code"), "unavailable", "%s", jdump(rep));
    json_decref(rep);
    cr_assert(it_gw_log_wait(0, "not the master", it_ms(15000)), "the gateway did not notice the replica (ROLE)");
    cr_assert(it_log_wait_count("worker0", "not a master", 1, it_ms(15000)),
              "the worker did not notice the replica (READONLY/UNBLOCKED, then ROLE)");

    const char *promote[] = {"REPLICAOF", "NO", "ONE", NULL};
    cr_assert_eq(it_redis_cli(port, promote, out, sizeof(out)), 0, "%s", out);
    json_t *ack = dm_until_acked(a, "d2", "bob", "after", it_ms(30000));
    cr_assert_eq(ji(ack, "seq"), 2, "%s", jdump(ack));
    json_decref(ack);
    json_decref(it_deliv(b, "dm:alice:bob", 2));
    ws_free(a);
    ws_free(b);
}
