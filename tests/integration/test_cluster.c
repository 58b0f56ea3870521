/* it_cluster: the gateway against a real 6-node Redis Cluster (3 masters,
 * 3 replicas) started by the test itself, with no worker: the test plays
 * the worker's part by SPUBLISHing delivery records (redis-cli -c) to the
 * per-user and per-room shard channels, and reads the inbound partition
 * lists. Covered: deliveries through SSUBSCRIBE, the push landing on the
 * user's partition, a master killed (-9) and a slot moved: exactly the
 * affected sessions (users whose channel, or a room of theirs whose
 * channel, was on it) get a resync once subscribed again, and deliveries
 * flow from the new owner. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cluster.h"
#include "itest.h"

#define NODES 6

static int port[NODES];
static int live; /* a node not killed: where redis-cli -c starts */
static int spawn_id[NODES];
static char cli[512];
static char url[256];

/* redis-cli [-c] -p p args..., output in out; asserts exit status 0. */
static void cli_do(int p, int follow, const char *const *args, char *out, size_t outlen)
{
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", p);
    const char *argv[48] = {cli, "-h", "127.0.0.1", "-p", ps};
    int n = 5;
    if (follow)
        argv[n++] = "-c";
    for (const char *const *a = args; *a != NULL && n < 46; a++)
        argv[n++] = *a;
    argv[n] = NULL;
    int st = 0;
    cr_assert_eq(it_run(argv, NULL, it_ms(20000), out, outlen, &st), 0, "redis-cli %s did not finish", args[0]);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "redis-cli %s: %s", args[0], out);
}

static int all_ok(void)
{
    for (int i = 0; i < NODES; i++) {
        char out[4096];
        const char *a[] = {"CLUSTER", "INFO", NULL};
        cli_do(port[i], 0, a, out, sizeof(out));
        if (strstr(out, "cluster_state:ok") == NULL)
            return 0;
    }
    return 1;
}

static void wait_ok(int timeout_ms)
{
    int64_t end = it_mono_ms() + it_ms(timeout_ms);
    while (!all_ok()) {
        cr_assert(it_mono_ms() < end, "the cluster did not reach cluster_state:ok");
        it_pause_ms(100);
    }
}

static void cluster_init(void)
{
    it_begin();
    char cbuf[512];
    const char *c = it_which("redis-cli", cbuf, sizeof(cbuf));
    cr_assert_not_null(c, "no redis-cli");
    snprintf(cli, sizeof(cli), "%s", c);
    char buf[512];
    const char *server = it_which(getenv("REDIS_SERVER") ? getenv("REDIS_SERVER") : "redis-server", buf, sizeof(buf));
    cr_assert_not_null(server, "no redis-server");
    {
        /* SSUBSCRIBE and SPUBLISH came with Redis 7.0 */
        const char *argv[] = {server, "--version", NULL};
        char out[256];
        int st = 0;
        cr_assert_eq(it_run(argv, NULL, it_ms(5000), out, sizeof(out), &st), 0);
        const char *v = strstr(out, "v=");
        if (v == NULL || atoi(v + 2) < 7)
            cr_skip_test("redis-server is older than 7.0 (no shard channels): %s", out);
    }
    for (int i = 0; i < NODES; i++) {
        port[i] = it_free_port();
        char dir[512], conf[600], ps[16], bus[16], name[16];
        /* the bus port is given too: port + 10000 may be taken */
        snprintf(bus, sizeof(bus), "%d", it_free_port());
        snprintf(dir, sizeof(dir), "%s/c%d", it_dir(), i);
        mkdir(dir, 0700);
        snprintf(conf, sizeof(conf), "nodes-%d.conf", port[i]);
        snprintf(ps, sizeof(ps), "%d", port[i]);
        snprintf(name, sizeof(name), "cnode%d", i);
        const char *argv[] = {server, "--port", ps, "--cluster-enabled", "yes", "--cluster-config-file", conf,
                              "--cluster-node-timeout", "2000",
                              "--cluster-replica-validity-factor", "0", "--cluster-port", bus, "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", dir, NULL};
        spawn_id[i] = it_spawn(name, argv);
    }
    for (int i = 0; i < NODES; i++) {
        int64_t end = it_mono_ms() + it_ms(10000);
        char out[256];
        for (;;) {
            char ps[16];
            snprintf(ps, sizeof(ps), "%d", port[i]);
            const char *argv[] = {cli, "-h", "127.0.0.1", "-p", ps, "PING", NULL};
            int st = 0;
            if (it_run(argv, NULL, it_ms(2000), out, sizeof(out), &st) == 0 && strstr(out, "PONG") != NULL)
                break;
            cr_assert(it_mono_ms() < end, "cluster node %d did not start", i);
            it_pause_ms(50);
        }
    }
    char addrs[NODES][32];
    const char *args[20] = {"--cluster", "create"};
    int n = 2;
    for (int i = 0; i < NODES; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%d", port[i]);
        args[n++] = addrs[i];
    }
    args[n++] = "--cluster-replicas";
    args[n++] = "1";
    args[n++] = "--cluster-yes";
    args[n] = NULL;
    char out[8192];
    cli_do(port[0], 0, args, out, sizeof(out));
    wait_ok(20000);
    snprintf(url, sizeof(url), "redis+cluster://127.0.0.1:%d,127.0.0.1:%d", port[0], port[1]);
}

static int gw_start(void)
{
    static const char *const extra[] = {"--queue-partitions", "3", NULL};
    struct it_gw_conf c = {.processes = 1, .redis_url = url, .extra = extra};
    return it_gateway_start(&c);
}

static unsigned slot_of(const char *key)
{
    return cm_key_slot(key, strlen(key));
}

/* The port of the master serving slot (CLUSTER SLOTS read from a live node). */
static int master_of(unsigned slot, int ask)
{
    char out[8192];
    const char *b[] = {"CLUSTER", "SLOTS", NULL};
    cli_do(port[ask], 0, b, out, sizeof(out));
    /* redis-cli prints one value a line: start, end, host, port, id, ... */
    char *save = NULL;
    long vals[4096];
    int nv = 0;
    for (char *l = strtok_r(out, "\n", &save); l != NULL && nv < 4096; l = strtok_r(NULL, "\n", &save))
        vals[nv++] = strchr(l, '.') || strlen(l) > 12 ? -1 : strtol(l, NULL, 10);
    /* entries: start end "host" port id [replica: "host" port id] */
    for (int i = 0; i + 3 < nv; i++)
        if (vals[i] >= 0 && vals[i + 1] >= vals[i] && vals[i + 2] == -1 && vals[i + 3] > 1000 &&
            (unsigned)vals[i] <= slot && slot <= (unsigned)vals[i + 1] && (i == 0 || vals[i - 1] == -1))
            return (int)vals[i + 3];
    return -1;
}

static int node_index(int p)
{
    for (int i = 0; i < NODES; i++)
        if (port[i] == p)
            return i;
    return -1;
}

/* A delivery record [nil, bin {"op":"test","k":k}] with no NUL byte. */
static void spublish(const char *chan, int k)
{
    cr_assert(k >= 1 && k < 128);
    char rec[64];
    size_t r = 0;
    unsigned char msg[32];
    size_t n = 0;
    msg[n++] = 0x82;
    msg[n++] = 0xa2, memcpy(msg + n, "op", 2), n += 2;
    msg[n++] = 0xa4, memcpy(msg + n, "test", 4), n += 4;
    msg[n++] = 0xa1, msg[n++] = 'k';
    msg[n++] = (unsigned char)k;
    rec[r++] = (char)0x92;
    rec[r++] = (char)0xc0;
    rec[r++] = (char)0xc4, rec[r++] = (char)n, memcpy(rec + r, msg, n), r += n;
    rec[r] = '\0';
    char out[256];
    const char *a[] = {"SPUBLISH", chan, rec, NULL};
    cli_do(port[live], 1, a, out, sizeof(out));
}

static int match_k(json_t *msg, const void *arg)
{
    const char *op = js(msg, "op");
    return op != NULL && strcmp(op, "test") == 0 && ji(msg, "k") == *(const int *)arg;
}

static void wait_test(struct ws *ws, int k, int timeout_ms)
{
    json_t *m = ws_wait(ws, match_k, &k, timeout_ms);
    cr_assert_not_null(m, "%s: delivery %d did not arrive", ws->name, k);
    json_decref(m);
}

/* A user (u<from>, u<from+1>, ...) whose channel is served by a master
 * other than avoid's. */
static void user_elsewhere_from(char *out, size_t outlen, int avoid_master, int from)
{
    for (int i = from; i < from + 1000; i++) {
        char chan[64];
        snprintf(out, outlen, "u%d", i);
        snprintf(chan, sizeof(chan), "chatmi:{u:%s}", out);
        if (master_of(slot_of(chan), node_index(avoid_master) == 0 ? 1 : 0) != avoid_master)
            return;
    }
    cr_assert_fail("no user on another master");
}

static void user_elsewhere(char *out, size_t outlen, int avoid_master)
{
    user_elsewhere_from(out, outlen, avoid_master, 0);
}

/* A room (r0, r1, ...) whose channel is served by master. */
static void room_on(char *out, size_t outlen, int master)
{
    for (int i = 0; i < 1000; i++) {
        char chan[64];
        snprintf(out, outlen, "r%d", i);
        snprintf(chan, sizeof(chan), "chatmi:{c:room:%s}", out);
        if (master_of(slot_of(chan), node_index(master) == 0 ? 1 : 0) == master)
            return;
    }
    cr_assert_fail("no room on master %d", master);
}

TestSuite(cluster, .init = cluster_init, .fini = it_end, .timeout = 120);

Test(cluster, deliveries_and_partitions)
{
    gw_start();
    const char *a0[] = {"SADD", "chatmi:{u:alice}:rooms", "room:lobby", NULL};
    char out[512];
    cli_do(port[0], 1, a0, out, sizeof(out));
    struct ws *alice = it_open(it_port(), "alice", NULL);
    spublish("chatmi:{u:alice}", 1);
    wait_test(alice, 1, IT_WAIT);
    spublish("chatmi:{c:room:lobby}", 2);
    wait_test(alice, 2, IT_WAIT);

    /* a request lands on alice's partition (no worker: it stays there) */
    json_t *req = json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "r1", "to", "bob", "text", "hi");
    cr_assert_eq(ws_send_json(alice, req), 0); /* takes req */
    char tag[CM_QUEUE_TAG_MAX], key[128];
    cm_queue_tag(tag, cm_queue_partition("alice", 5, 3), 3);
    snprintf(key, sizeof(key), "chatmi:{%s}:inbound", tag);
    const char *llen[] = {"LLEN", key, NULL};
    int64_t end = it_mono_ms() + IT_WAIT;
    for (;;) {
        cli_do(port[live], 1, llen, out, sizeof(out));
        if (atoi(out) == 1)
            break;
        cr_assert(it_mono_ms() < end, "LLEN %s is %s, not 1", key, out);
        it_pause_ms(50);
    }
    const char *old[] = {"EXISTS", "chatmi:{q}:inbound", NULL};
    cli_do(port[0], 1, old, out, sizeof(out));
    cr_assert_eq(atoi(out), 0, "with 3 partitions nothing goes to chatmi:{q}:inbound");
    ws_free(alice);
}

Test(cluster, master_killed_resyncs_exactly_its_users)
{
    gw_start();
    struct ws *alice = it_open(it_port(), "alice", NULL);
    int m = master_of(slot_of("chatmi:{u:alice}"), 0);
    cr_assert(m > 0);
    char other[32], carol[32], room[32], rooms_key[64], room_conv[48];
    user_elsewhere(other, sizeof(other), m);
    struct ws *bob = it_open(it_port(), other, NULL);
    /* carol's own channel survives, but she is in a room whose channel does not */
    user_elsewhere_from(carol, sizeof(carol), m, atoi(other + 1) + 1);
    room_on(room, sizeof(room), m);
    snprintf(rooms_key, sizeof(rooms_key), "chatmi:{u:%s}:rooms", carol);
    snprintf(room_conv, sizeof(room_conv), "room:%s", room);
    char sout[256];
    const char *sadd[] = {"SADD", rooms_key, room_conv, NULL};
    cli_do(port[live], 1, sadd, sout, sizeof(sout));
    struct ws *cw = it_open(it_port(), carol, NULL);
    spublish("chatmi:{u:alice}", 1);
    wait_test(alice, 1, IT_WAIT);

    int idx = node_index(m);
    /* its replica has finished its first sync (else it may not take over) */
    int64_t end = it_mono_ms() + it_ms(10000);
    for (;;) {
        char out[4096];
        const char *a[] = {"INFO", "replication", NULL};
        cli_do(m, 0, a, out, sizeof(out));
        if (strstr(out, "state=online") != NULL)
            break;
        cr_assert(it_mono_ms() < end, "the replica of %d is not in sync", m);
        it_pause_ms(100);
    }
    int st;
    live = idx == 0 ? 1 : 0;
    int64_t t0 = it_mono_ms();
    it_spawn_stop(spawn_id[idx], SIGKILL, it_ms(5000), &st);
    json_t *r = ws_wait_op(alice, "resync", it_ms(30000));
    cr_assert_not_null(r, "no resync for a user whose master died");
    int64_t t1 = it_mono_ms();
    json_decref(r);
    fprintf(stderr, "it_cluster: master %d killed; alice resynced after %lld ms\n", m, (long long)(t1 - t0));
    r = ws_wait_op(cw, "resync", it_ms(10000));
    cr_assert_not_null(r, "no resync for a member of a room whose master died");
    json_decref(r);
    /* deliveries flow from the promoted replica */
    int k = 2;
    for (;;) {
        /* the cluster may still be settling: publish until one arrives */
        spublish("chatmi:{u:alice}", k);
        json_t *d = ws_wait(alice, match_k, &k, it_ms(1000));
        if (d != NULL) {
            json_decref(d);
            break;
        }
        cr_assert(++k < 20, "no delivery after the failover");
    }
    char chan[64];
    snprintf(chan, sizeof(chan), "chatmi:{u:%s}", other);
    spublish(chan, 4);
    wait_test(bob, 4, IT_WAIT);
    cr_assert_eq(ws_backlog_count(bob, ws_match_op, "resync"), 0, "a user on a surviving master got a resync");
    char rchan[64];
    snprintf(rchan, sizeof(rchan), "chatmi:{c:%s}", room_conv);
    spublish(rchan, 5);
    wait_test(cw, 5, IT_WAIT);
    cr_assert_eq(ws_backlog_count(cw, ws_match_op, "resync"), 0, "carol got more than one resync");
    ws_free(cw);
    ws_free(bob);
    ws_free(alice);
}

Test(cluster, slot_move_resyncs_exactly_its_users)
{
    gw_start();
    struct ws *alice = it_open(it_port(), "alice", NULL);
    unsigned slot = slot_of("chatmi:{u:alice}");
    int from = master_of(slot, 0);
    char other[32];
    user_elsewhere(other, sizeof(other), from);
    struct ws *bob = it_open(it_port(), other, NULL);
    /* another master to move to */
    int to = -1;
    for (int i = 0; i < NODES && to < 0; i++) {
        char out[4096];
        const char *a[] = {"ROLE", NULL};
        cli_do(port[i], 0, a, out, sizeof(out));
        if (strncmp(out, "master", 6) == 0 && port[i] != from)
            to = port[i];
    }
    cr_assert(to > 0);
    char from_id[64], to_id[64], out[8192], ss[16], tos[16];
    const char *myid[] = {"CLUSTER", "MYID", NULL};
    cli_do(from, 0, myid, out, sizeof(out));
    snprintf(from_id, sizeof(from_id), "%.40s", out);
    cli_do(to, 0, myid, out, sizeof(out));
    snprintf(to_id, sizeof(to_id), "%.40s", out);
    snprintf(ss, sizeof(ss), "%u", slot);
    snprintf(tos, sizeof(tos), "%d", to);
    const char *imp[] = {"CLUSTER", "SETSLOT", ss, "IMPORTING", from_id, NULL};
    cli_do(to, 0, imp, out, sizeof(out));
    const char *mig[] = {"CLUSTER", "SETSLOT", ss, "MIGRATING", to_id, NULL};
    cli_do(from, 0, mig, out, sizeof(out));
    /* the slot's keys (alice's nodes set) */
    const char *keys[] = {"CLUSTER", "GETKEYSINSLOT", ss, "100", NULL};
    cli_do(from, 0, keys, out, sizeof(out));
    char *save = NULL;
    for (char *k = strtok_r(out, "\n", &save); k != NULL; k = strtok_r(NULL, "\n", &save)) {
        if (*k == '\0')
            continue;
        char o2[256];
        const char *m[] = {"MIGRATE", "127.0.0.1", tos, k, "0", "5000", NULL};
        cli_do(from, 0, m, o2, sizeof(o2));
    }
    int64_t t0 = it_mono_ms();
    const char *node[] = {"CLUSTER", "SETSLOT", ss, "NODE", to_id, NULL};
    cli_do(to, 0, node, out, sizeof(out));
    cli_do(from, 0, node, out, sizeof(out));
    json_t *r = ws_wait_op(alice, "resync", it_ms(15000));
    cr_assert_not_null(r, "no resync for a user whose slot moved");
    json_decref(r);
    fprintf(stderr, "it_cluster: slot %u moved %d -> %d; alice resynced after %lld ms\n", slot, from, to,
            (long long)(it_mono_ms() - t0));
    cr_assert_eq(master_of(slot, node_index(to)), to);
    spublish("chatmi:{u:alice}", 5);
    wait_test(alice, 5, IT_WAIT);
    char chan[64];
    snprintf(chan, sizeof(chan), "chatmi:{u:%s}", other);
    spublish(chan, 6);
    wait_test(bob, 6, IT_WAIT);
    cr_assert_eq(ws_backlog_count(bob, ws_match_op, "resync"), 0, "a user of another slot got a resync");
    ws_free(bob);
    ws_free(alice);
}
