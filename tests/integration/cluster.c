/* cluster.c: a real Redis Cluster for the integration and fault tests
 * (harness.h, "Redis Cluster").
 *
 * Why: chatmi gives every key a hash tag so that each command touches one
 * slot, and the programs are learning redis+cluster:// URLs, sharded pub/sub
 * and queue partitions. Only a real cluster shows what that must survive:
 * MOVED and ASK redirections, a master killed and its replica promoted,
 * slots moving between masters under load. So the tests run real
 * redis-server processes with cluster-enabled yes, created by redis-cli
 * --cluster create, as every operator would.
 *
 * The nodes are ordinary harness processes (their output drained into
 * <test dir>/redis-node<i>.log, stopped by it_end). Their state is read with
 * redis-cli (CLUSTER INFO, CLUSTER NODES, INFO replication), polled against
 * a deadline scaled by it_ms(); nothing waits with a fixed sleep. CLUSTER
 * NODES is the source for slot owners because redis-cli prints nested
 * replies (CLUSTER SLOTS, SHARDS) flattened, which loses their structure.
 *
 * One test per process: the cluster's state is a file-level static that
 * it_begin resets. Only the test's main thread calls these functions. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <criterion/criterion.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "harness.h"
#include "harness_priv.h"

#define ITC_MAX_NODES 12
#define ITC_MAX_PROCS 32       /* node processes over the test, restarts included */
#define ITC_SLOTS 16384
#define ITC_NODE_TIMEOUT "1000" /* ms: a dead master is failed over in about 3 s */
#define ITC_START_ATTEMPTS 3
#define ITC_CLI_ARGS 128
#define ITC_MIGRATE_BATCH 100

struct itc_node {
    int proc;   /* harness process index, -1 */
    int port;
    int bus;    /* cluster bus port (cluster-port) */
    char id[48];
    int alive;  /* started and not killed */
    int starts; /* names the logs of restarts */
};

/* One node's CLUSTER NODES, mapped onto node numbers. */
struct itc_view {
    int master[ITC_MAX_NODES];    /* flags hold "master" */
    int fail[ITC_MAX_NODES];      /* "fail" or "fail?" */
    int master_of[ITC_MAX_NODES]; /* a replica's master, -1 */
    int16_t owner[ITC_SLOTS];     /* node number, -1 unassigned */
    int open_slots;               /* [slot->-id] / [slot-<-id] markers */
};

static struct {
    int active;
    int n;
    long start_ms;
    struct itc_node node[ITC_MAX_NODES];
    int procs[ITC_MAX_PROCS];
    int nprocs;
} C;

void it_priv_cluster_reset(void)
{
    memset(&C, 0, sizeof(C));
}

int it_priv_cluster_owns(int idx)
{
    for (int i = 0; i < C.nprocs; i++)
        if (C.procs[i] == idx)
            return 1;
    return 0;
}

void it_priv_cluster_stop(void)
{
    int idx[ITC_MAX_NODES], n = 0;
    for (int i = 0; i < C.n; i++)
        if (C.node[i].proc >= 0 && it_priv_proc_pid(C.node[i].proc) > 0)
            idx[n++] = C.node[i].proc;
    it_priv_proc_stop_many(idx, n, SIGTERM, it_ms(3000));
    for (int i = 0; i < C.n; i++)
        C.node[i].alive = 0;
}

int it_cluster_mode(void)
{
    const char *s = getenv("CHATMI_IT_REDIS");
    return s != NULL && strcmp(s, "cluster") == 0;
}

int it_cluster_active(void)
{
    return C.active;
}

void it_skip_in_cluster(const char *reason)
{
    if (it_cluster_mode())
        cr_skip_test("needs the single Redis, not a cluster (CHATMI_IT_REDIS=cluster): %s", reason);
}

long it_cluster_start_ms(void)
{
    return C.start_ms;
}

/* ---- redis-cli ------------------------------------------------------------------- */

/* redis-cli -h 127.0.0.1 -p port args... (NULL terminated; no -c), output
 * in out. Its exit status, or -1 when it did not finish within timeout_ms. */
static int cli_t(int port, const char *const *args, char *out, size_t outlen, int timeout_ms)
{
    char bin[PATH_MAX], ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    const char *argv[ITC_CLI_ARGS + 8] = {it_priv_redis_cli(bin, sizeof(bin)), "-h", "127.0.0.1", "-p", ports};
    int n = 5;
    for (const char *const *a = args; *a != NULL; a++) {
        cr_assert(n < ITC_CLI_ARGS + 6, "too many redis-cli arguments");
        argv[n++] = *a;
    }
    argv[n] = NULL;
    int st = 0;
    if (it_run(argv, NULL, timeout_ms, out, outlen, &st) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int cli(int port, const char *const *args, char *out, size_t outlen)
{
    return cli_t(port, args, out, outlen, it_ms(5000));
}

/* Runs a redis-cli command that must answer without an error; asserts. */
static void cli_ok(int port, const char *const *args, char *out, size_t outlen)
{
    int rc = cli(port, args, out, outlen);
    cr_assert(rc == 0 && strncmp(out, "ERR", 3) != 0 && strstr(out, "(error)") == NULL,
              "redis-cli -p %d %s %s: status %d: %s", port, args[0], args[1] != NULL ? args[1] : "", rc, out);
}

static int node_of_port(int port)
{
    for (int i = 0; i < C.n; i++)
        if (C.node[i].port == port)
            return i;
    return -1;
}

static int node_of_id(const char *id, size_t len)
{
    for (int i = 0; i < C.n; i++)
        if (strlen(C.node[i].id) == len && strncmp(C.node[i].id, id, len) == 0)
            return i;
    return -1;
}

/* The lowest-numbered live node; asserts there is one. */
static int any_alive(void)
{
    for (int i = 0; i < C.n; i++)
        if (C.node[i].alive)
            return i;
    cr_assert_fail("no live cluster node");
    return -1;
}

/* ---- CLUSTER NODES ------------------------------------------------------------------ */

/* Parses one slot token of a CLUSTER NODES line owned by node owner. */
static void parse_slot_token(struct itc_view *v, const char *t, int owner)
{
    if (t[0] == '[') {
        v->open_slots++;
        return;
    }
    char *end = NULL;
    long a = strtol(t, &end, 10), b = a;
    if (end != NULL && *end == '-')
        b = strtol(end + 1, NULL, 10);
    for (long s = a; s <= b && s >= 0 && s < ITC_SLOTS; s++)
        v->owner[s] = (int16_t)owner;
}

/* Reads CLUSTER NODES of node `from` into v: 1, or 0 when it did not answer. */
static int view_of(int from, struct itc_view *v)
{
    static char out[65536];
    memset(v, 0, sizeof(*v));
    for (int s = 0; s < ITC_SLOTS; s++)
        v->owner[s] = -1;
    for (int i = 0; i < ITC_MAX_NODES; i++)
        v->master_of[i] = -1;
    const char *args[] = {"CLUSTER", "NODES", NULL};
    if (cli(C.node[from].port, args, out, sizeof(out)) != 0)
        return 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        /* <id> <ip:port@cport[,host]> <flags> <master> <ping> <pong> <epoch> <link> <slot>... */
        char *tok[8];
        int nt = 0;
        char *s2 = NULL;
        char *t = strtok_r(line, " ", &s2);
        for (; t != NULL && nt < 8; t = strtok_r(NULL, " ", &s2))
            tok[nt++] = t;
        if (nt < 8)
            continue;
        char addr[64]; /* ip:port@cport[,hostname] */
        snprintf(addr, sizeof(addr), "%s", tok[1]);
        char *at = strchr(addr, '@');
        if (at != NULL)
            *at = '\0';
        const char *colon = strrchr(addr, ':');
        int node = colon != NULL ? node_of_port(atoi(colon + 1)) : -1;
        if (node < 0)
            node = node_of_id(tok[0], strlen(tok[0]));
        if (node < 0)
            continue;
        v->master[node] = strstr(tok[2], "master") != NULL;
        v->fail[node] = strstr(tok[2], "fail") != NULL;
        if (strcmp(tok[3], "-") != 0)
            v->master_of[node] = node_of_id(tok[3], strlen(tok[3]));
        for (; t != NULL; t = strtok_r(NULL, " ", &s2))
            parse_slot_token(v, t, node);
    }
    return 1;
}

/* A view from a live node; asserts. */
static void view(struct itc_view *v)
{
    static const int attempts = 3;
    for (int a = 0; a < attempts; a++) {
        for (int i = 0; i < C.n; i++)
            if (C.node[i].alive && view_of(i, v))
                return;
    }
    cr_assert_fail("no live cluster node answered CLUSTER NODES");
}

/* ---- health --------------------------------------------------------------------- */

static int16_t g_ref_owner[ITC_SLOTS];

/* 1 when the cluster is healthy (harness.h); else 0 with the reason in why. */
static int healthy(char *why, size_t whylen)
{
    static char out[16384];
    static struct itc_view v;
    int ref = -1;
    for (int i = 0; i < C.n; i++) {
        if (!C.node[i].alive)
            continue;
        int port = C.node[i].port;
        const char *info[] = {"CLUSTER", "INFO", NULL};
        if (cli(port, info, out, sizeof(out)) != 0) {
            snprintf(why, whylen, "node %d (port %d) did not answer CLUSTER INFO: %.200s", i, port, out);
            return 0;
        }
        if (strstr(out, "cluster_state:ok") == NULL || strstr(out, "cluster_slots_assigned:16384") == NULL ||
            strstr(out, "cluster_slots_ok:16384") == NULL) {
            snprintf(why, whylen, "node %d (port %d) CLUSTER INFO: %.300s", i, port, out);
            return 0;
        }
        if (!view_of(i, &v)) {
            snprintf(why, whylen, "node %d (port %d) did not answer CLUSTER NODES", i, port);
            return 0;
        }
        if (v.open_slots > 0) {
            snprintf(why, whylen, "node %d (port %d) has %d slots migrating or importing", i, port, v.open_slots);
            return 0;
        }
        for (int s = 0; s < ITC_SLOTS; s++) {
            int o = v.owner[s];
            if (o < 0 || !C.node[o].alive || v.fail[o]) {
                snprintf(why, whylen, "node %d (port %d) sees slot %d %s", i, port, s,
                         o < 0 ? "unassigned" : "on a dead or failed node");
                return 0;
            }
        }
        if (ref < 0) {
            memcpy(g_ref_owner, v.owner, sizeof(g_ref_owner));
            ref = i;
        } else if (memcmp(g_ref_owner, v.owner, sizeof(g_ref_owner)) != 0) {
            snprintf(why, whylen, "nodes %d and %d disagree about slot owners", ref, i);
            return 0;
        }
        if (!v.master[i]) {
            const char *repl[] = {"INFO", "replication", NULL};
            if (cli(port, repl, out, sizeof(out)) != 0 || strstr(out, "master_link_status:up") == NULL ||
                strstr(out, "master_sync_in_progress:0") == NULL) {
                snprintf(why, whylen, "replica node %d (port %d) not in sync with its master: %.300s", i, port, out);
                return 0;
            }
        }
    }
    if (ref < 0) {
        snprintf(why, whylen, "no live node");
        return 0;
    }
    return 1;
}

int it_cluster_wait_ok(int timeout_ms, char *why, size_t whylen)
{
    char reason[512] = "";
    int64_t deadline = it_mono_ms() + timeout_ms;
    for (int round = 0; round < 100000; round++) {
        if (healthy(reason, sizeof(reason)))
            return 1;
        if (it_mono_ms() >= deadline)
            break;
        it_pause_ms(20); /* paces the poll of the nodes' state */
    }
    if (why != NULL)
        snprintf(why, whylen, "%s", reason);
    return 0;
}

static void assert_ok(const char *after)
{
    char why[512];
    cr_assert(it_cluster_wait_ok(it_ms(30000), why, sizeof(why)), "the cluster was not healthy %d ms %s: %s",
              it_ms(30000), after, why);
}

/* ---- nodes ---------------------------------------------------------------------- */

/* Starts node i on its port and bus port: 1 ready, 0 a port was in use. */
static int node_spawn(int i)
{
    struct itc_node *nd = &C.node[i];
    char bin[PATH_MAX], dir[PATH_MAX + 64], port[16], bus[16], name[32];
    snprintf(dir, sizeof(dir), "%s/redis-data", it_dir());
    mkdir(dir, 0700);
    snprintf(dir, sizeof(dir), "%s/redis-data/node%d", it_dir(), i);
    mkdir(dir, 0700);
    snprintf(port, sizeof(port), "%d", nd->port);
    snprintf(bus, sizeof(bus), "%d", nd->bus);
    const char *argv[] = {it_priv_redis_server(bin, sizeof(bin)),
                          "--port", port, "--cluster-port", bus, "--bind", "127.0.0.1", "--protected-mode", "no",
                          "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                          "--cluster-node-timeout", ITC_NODE_TIMEOUT,
                          /* a replica out of touch for long may still be promoted */
                          "--cluster-replica-validity-factor", "0",
                          "--dir", dir, "--save", "", "--appendonly", "no",
                          /* full syncs at once (Redis 7 waits 5 s by default) */
                          "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                          /* SIGTERM: exit without waiting for replicas */
                          "--shutdown-timeout", "0",
                          "--daemonize", "no", "--logfile", "", NULL};
    snprintf(name, sizeof(name), nd->starts == 0 ? "redis-node%d" : "redis-node%d-%d", i, nd->starts);
    nd->starts++;
    int idx = it_priv_redis_proc_start(name, argv);
    cr_assert(idx >= 0, "cannot start %s", argv[0]);
    cr_assert(C.nprocs < ITC_MAX_PROCS, "too many cluster node processes");
    C.procs[C.nprocs++] = idx;
    int rc = it_priv_proc_wait_ready(idx, it_ms(10000));
    if (rc == 1) {
        nd->proc = idx;
        nd->alive = 1;
        return 1;
    }
    it_priv_proc_stop(idx, SIGKILL, it_ms(2000));
    if (rc == 0 && it_priv_proc_log_contains(idx, "in use"))
        return 0;
    it_priv_proc_fail(idx, "redis cluster node", rc);
    return 0;
}

int it_cluster_start(int masters, int replicas)
{
    /* scripts/test.sh's distcheck: the tarball's build runs the suites,
     * build/ and build-san/ have run the cluster cases already */
    const char *skip = getenv("CHATMI_IT_SKIP_CLUSTER");
    if (skip != NULL && strcmp(skip, "1") == 0)
        cr_skip_test("Redis Cluster runs are left out here (CHATMI_IT_SKIP_CLUSTER=1)");
    cr_assert(!C.active, "a cluster is already running");
    cr_assert(masters >= 3 && replicas >= 0 && masters * (1 + replicas) <= ITC_MAX_NODES,
              "a cluster of %d masters with %d replicas each is not supported (3 masters at least)", masters,
              replicas);
    int64_t t0 = it_mono_ms();
    C.n = masters * (1 + replicas);
    for (int i = 0; i < C.n; i++) {
        C.node[i].proc = -1;
        int up = 0;
        for (int attempt = 0; attempt < ITC_START_ATTEMPTS && !up; attempt++) {
            C.node[i].port = it_free_port();
            do
                C.node[i].bus = it_free_port();
            while (C.node[i].bus == C.node[i].port);
            up = node_spawn(i);
        }
        cr_assert(up, "redis cluster node %d: no free ports after %d attempts", i, ITC_START_ATTEMPTS);
        char out[256];
        const char *myid[] = {"CLUSTER", "MYID", NULL};
        cli_ok(C.node[i].port, myid, out, sizeof(out));
        out[strcspn(out, "\r\n")] = '\0';
        cr_assert(strlen(out) == 40, "CLUSTER MYID on port %d: %s", C.node[i].port, out);
        snprintf(C.node[i].id, sizeof(C.node[i].id), "%s", out);
    }
    C.active = 1;

    char bin[PATH_MAX], addrs[ITC_MAX_NODES][32], reps[16];
    const char *argv[ITC_MAX_NODES + 16];
    int n = 0;
    argv[n++] = it_priv_redis_cli(bin, sizeof(bin));
    argv[n++] = "--cluster";
    argv[n++] = "create";
    for (int i = 0; i < C.n; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%d", C.node[i].port);
        argv[n++] = addrs[i];
    }
    snprintf(reps, sizeof(reps), "%d", replicas);
    argv[n++] = "--cluster-replicas";
    argv[n++] = reps;
    argv[n++] = "--cluster-yes";
    argv[n] = NULL;
    static char out[65536];
    int st = 0;
    int rc = it_run(argv, NULL, it_ms(60000), out, sizeof(out), &st);
    cr_assert(rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(out, "All 16384 slots covered") != NULL,
              "redis-cli --cluster create failed (%s, status %d):\n%s", rc < 0 ? "timed out" : "exited",
              WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
    assert_ok("after redis-cli --cluster create");

    /* the shape asked for: masters with their replicas */
    struct itc_view v;
    view(&v);
    int nm = 0;
    for (int i = 0; i < C.n; i++) {
        if (!v.master[i])
            continue;
        nm++;
        int nr = 0;
        for (int j = 0; j < C.n; j++)
            nr += v.master_of[j] == i;
        cr_assert_eq(nr, replicas, "master node %d has %d replicas, expected %d", i, nr, replicas);
    }
    cr_assert_eq(nm, masters, "the cluster has %d masters, expected %d", nm, masters);
    C.start_ms = (long)(it_mono_ms() - t0);
    fprintf(stderr, "harness: Redis Cluster of %d masters x %d replicas healthy in %ld ms\n", masters, replicas,
            C.start_ms);
    return it_cluster_master_port();
}

/* ---- topology ------------------------------------------------------------------ */

static void check_node(int node)
{
    cr_assert(C.active && node >= 0 && node < C.n, "no cluster node %d", node);
}

int it_cluster_nodes(void)
{
    return C.active ? C.n : 0;
}

int it_cluster_port(int node)
{
    check_node(node);
    return C.node[node].port;
}

int it_cluster_alive(int node)
{
    check_node(node);
    return C.node[node].alive;
}

const char *it_cluster_id(int node)
{
    check_node(node);
    return C.node[node].id;
}

int it_cluster_is_master(int node)
{
    check_node(node);
    static struct itc_view v;
    view(&v);
    return v.master[node] && !v.fail[node];
}

int it_cluster_master_of(int node)
{
    check_node(node);
    static struct itc_view v;
    view(&v);
    return v.master[node] ? -1 : v.master_of[node];
}

int it_cluster_masters(int *out, int max)
{
    static struct itc_view v;
    view(&v);
    int n = 0;
    for (int i = 0; i < C.n && n < max; i++)
        if (C.node[i].alive && v.master[i] && !v.fail[i])
            out[n++] = i;
    return n;
}

int it_cluster_master_port(void)
{
    int m[ITC_MAX_NODES];
    int n = it_cluster_masters(m, ITC_MAX_NODES);
    cr_assert_gt(n, 0, "the cluster has no live master");
    return C.node[m[0]].port;
}

int it_cluster_slot_count(int node)
{
    check_node(node);
    static struct itc_view v;
    view(&v);
    int n = 0;
    for (int s = 0; s < ITC_SLOTS; s++)
        n += v.owner[s] == node;
    return n;
}

const char *it_cluster_url(char *buf, size_t buflen)
{
    int m[ITC_MAX_NODES];
    int n = it_cluster_masters(m, ITC_MAX_NODES);
    cr_assert_gt(n, 0, "the cluster has no live master");
    size_t len = (size_t)snprintf(buf, buflen, "redis+cluster://");
    for (int i = 0; i < n && len < buflen; i++)
        len += (size_t)snprintf(buf + len, buflen - len, "%s127.0.0.1:%d", i > 0 ? "," : "", C.node[m[i]].port);
    cr_assert_lt(len, buflen, "cluster URL too long");
    return buf;
}

int it_cluster_keyslot(const char *key)
{
    char out[64];
    const char *args[] = {"CLUSTER", "KEYSLOT", key, NULL};
    cli_ok(C.node[any_alive()].port, args, out, sizeof(out));
    int slot = atoi(out);
    cr_assert(slot >= 0 && slot < ITC_SLOTS, "CLUSTER KEYSLOT %s: %s", key, out);
    return slot;
}

int it_cluster_slot_owner(int slot)
{
    cr_assert(slot >= 0 && slot < ITC_SLOTS);
    static struct itc_view v;
    view(&v);
    cr_assert_geq(v.owner[slot], 0, "slot %d has no owner", slot);
    return v.owner[slot];
}

void it_cluster_slot_map(int *out)
{
    static struct itc_view v;
    view(&v);
    for (int s = 0; s < ITC_SLOTS; s++)
        out[s] = v.owner[s];
}

int it_cluster_key_owner(const char *key)
{
    return it_cluster_slot_owner(it_cluster_keyslot(key));
}

/* ---- faults ------------------------------------------------------------------------ */

long it_cluster_kill_master(int node, int *promoted)
{
    check_node(node);
    static struct itc_view v;
    view(&v);
    cr_assert(C.node[node].alive && v.master[node], "node %d is not a live master", node);
    int slot = -1, replicas = 0;
    for (int s = 0; s < ITC_SLOTS && slot < 0; s++)
        if (v.owner[s] == node)
            slot = s;
    for (int j = 0; j < C.n; j++)
        replicas += C.node[j].alive && v.master_of[j] == node;
    cr_assert(slot >= 0 && replicas > 0, "master node %d has %s", node, slot < 0 ? "no slot" : "no live replica");

    int64_t t0 = it_mono_ms();
    it_priv_proc_stop(C.node[node].proc, SIGKILL, it_ms(3000));
    C.node[node].alive = 0;
    int64_t deadline = t0 + it_ms(30000);
    char why[512] = "";
    int now_owner = node;
    for (int round = 0; round < 100000; round++) {
        if (healthy(why, sizeof(why))) {
            now_owner = it_cluster_slot_owner(slot);
            if (now_owner != node && v.master_of[now_owner] == node)
                break;
            snprintf(why, sizeof(why), "slot %d is on node %d, not on a replica of node %d", slot, now_owner, node);
        }
        if (it_mono_ms() >= deadline)
            break;
        it_pause_ms(20); /* paces the poll of the nodes' state */
    }
    long ms = (long)(it_mono_ms() - t0);
    cr_assert(now_owner != node && v.master_of[now_owner] == node,
              "no replica of node %d took over within %d ms of its kill -9: %s", node, it_ms(30000), why);
    fprintf(stderr, "harness: cluster master node %d killed; replica node %d promoted, cluster ok after %ld ms\n",
            node, now_owner, ms);
    if (promoted != NULL)
        *promoted = now_owner;
    return ms;
}

void it_cluster_restart_node(int node)
{
    check_node(node);
    cr_assert(!C.node[node].alive, "node %d is running", node);
    cr_assert(node_spawn(node), "node %d: port %d or %d is taken now", node, C.node[node].port, C.node[node].bus);
    assert_ok("after a node's restart");
}

/* Output of the long redis-cli --cluster commands (reshard prints a line per key batch). */
static char g_long_out[262144];

long it_cluster_reshard(int from, int to, int nslots)
{
    check_node(from);
    check_node(to);
    cr_assert(nslots > 0);
    char bin[PATH_MAX], entry[32], n[16];
    snprintf(entry, sizeof(entry), "127.0.0.1:%d", C.node[to].port);
    snprintf(n, sizeof(n), "%d", nslots);
    const char *argv[] = {it_priv_redis_cli(bin, sizeof(bin)), "--cluster", "reshard", entry, "--cluster-from",
                          C.node[from].id, "--cluster-to", C.node[to].id, "--cluster-slots", n, "--cluster-yes",
                          NULL};
    int64_t t0 = it_mono_ms();
    int st = 0;
    int rc = it_run(argv, NULL, it_ms(120000), g_long_out, sizeof(g_long_out), &st);
    size_t len = strlen(g_long_out);
    cr_assert(rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(g_long_out, "[ERR]") == NULL,
              "redis-cli --cluster reshard of %d slots from node %d to %d failed (%s, status %d); its last output:\n%s",
              nslots, from, to, rc < 0 ? "timed out" : "exited", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
              g_long_out + (len > 4000 ? len - 4000 : 0));
    assert_ok("after redis-cli --cluster reshard");
    return (long)(it_mono_ms() - t0);
}

/* Moves the keys left in slot from node src to node dst (MIGRATE), until
 * none is left. */
static void migrate_keys(int slot, int src, int dst)
{
    static char out[65536];
    char slots[16], count[16], dport[16];
    snprintf(slots, sizeof(slots), "%d", slot);
    snprintf(count, sizeof(count), "%d", ITC_MIGRATE_BATCH);
    snprintf(dport, sizeof(dport), "%d", C.node[dst].port);
    for (int round = 0; round < 10000; round++) {
        const char *get[] = {"CLUSTER", "GETKEYSINSLOT", slots, count, NULL};
        cli_ok(C.node[src].port, get, out, sizeof(out));
        const char *args[ITC_CLI_ARGS];
        int n = 0;
        args[n++] = "MIGRATE";
        args[n++] = "127.0.0.1";
        args[n++] = dport;
        args[n++] = "";
        args[n++] = "0";
        args[n++] = "10000";
        args[n++] = "KEYS";
        int first = n;
        char *save = NULL;
        for (char *k = strtok_r(out, "\n", &save); k != NULL && n < ITC_CLI_ARGS - 1; k = strtok_r(NULL, "\n", &save))
            if (*k != '\0')
                args[n++] = k;
        if (n == first)
            return;
        args[n] = NULL;
        static char res[4096];
        cli_ok(C.node[src].port, args, res, sizeof(res));
        cr_assert(strstr(res, "OK") != NULL || strstr(res, "NOKEY") != NULL, "MIGRATE of slot %d: %s", slot, res);
    }
    cr_assert_fail("slot %d still has keys after 10000 MIGRATE rounds", slot);
}

long it_cluster_move_slot(int slot, int to)
{
    check_node(to);
    int from = it_cluster_slot_owner(slot);
    if (from == to)
        return 0;
    cr_assert(it_cluster_is_master(to), "node %d is not a master", to);
    int64_t t0 = it_mono_ms();
    char slots[16], out[1024];
    snprintf(slots, sizeof(slots), "%d", slot);
    const char *imp[] = {"CLUSTER", "SETSLOT", slots, "IMPORTING", C.node[from].id, NULL};
    cli_ok(C.node[to].port, imp, out, sizeof(out));
    const char *mig[] = {"CLUSTER", "SETSLOT", slots, "MIGRATING", C.node[to].id, NULL};
    cli_ok(C.node[from].port, mig, out, sizeof(out));
    migrate_keys(slot, from, to);
    /* the new owner first, then the old one, then every other master */
    const char *set[] = {"CLUSTER", "SETSLOT", slots, "NODE", C.node[to].id, NULL};
    cli_ok(C.node[to].port, set, out, sizeof(out));
    cli_ok(C.node[from].port, set, out, sizeof(out));
    int m[ITC_MAX_NODES];
    int nm = it_cluster_masters(m, ITC_MAX_NODES);
    for (int i = 0; i < nm; i++)
        if (m[i] != to && m[i] != from)
            cli_ok(C.node[m[i]].port, set, out, sizeof(out));
    assert_ok("after moving a slot");
    cr_assert_eq(it_cluster_slot_owner(slot), to, "slot %d did not move to node %d", slot, to);
    return (long)(it_mono_ms() - t0);
}

long it_cluster_rebalance(void)
{
    char bin[PATH_MAX], entry[32];
    snprintf(entry, sizeof(entry), "127.0.0.1:%d", it_cluster_master_port());
    const char *argv[] = {it_priv_redis_cli(bin, sizeof(bin)), "--cluster", "rebalance", entry,
                          "--cluster-threshold", "0.1", "--cluster-yes", NULL};
    int64_t t0 = it_mono_ms();
    int st = 0;
    int rc = it_run(argv, NULL, it_ms(120000), g_long_out, sizeof(g_long_out), &st);
    size_t len = strlen(g_long_out);
    cr_assert(rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && strstr(g_long_out, "[ERR]") == NULL,
              "redis-cli --cluster rebalance failed (%s, status %d); its last output:\n%s",
              rc < 0 ? "timed out" : "exited", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
              g_long_out + (len > 4000 ? len - 4000 : 0));
    assert_ok("after redis-cli --cluster rebalance");
    return (long)(it_mono_ms() - t0);
}
