/* it_cluster: the gateway against a real 6-node Redis Cluster (3 masters,
 * 3 replicas), with no worker: the test plays
 * the worker's part by SPUBLISHing delivery records (redis-cli -c) to the
 * per-user and per-room shard channels, and reads the inbound partition
 * lists. Covered: deliveries through SSUBSCRIBE, the push landing on the
 * user's partition, a master killed (-9) and a slot moved: exactly the
 * affected sessions (users whose channel, or a room of theirs whose
 * channel, was on it) get a resync once subscribed again, and deliveries
 * flow from the new owner. The cluster is the harness's (it_cluster_start). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cluster.h"
#include "itest.h"

/* The test's cluster comes from the harness (it_cluster_start: 3 masters,
 * 1 replica each); nodes are the harness's node numbers. */

/* redis-cli [-c] against a live master: key commands follow MOVED. */
static void cli(const char *const *args, char *out, size_t outlen)
{
    cr_assert_eq(it_redis_cli(it_cluster_master_port(), args, out, outlen), 0, "redis-cli %s: %s", args[0], out);
}

static void cluster_init(void)
{
    it_begin();
    char buf[512];
    const char *server = it_which(getenv("REDIS_SERVER") ? getenv("REDIS_SERVER") : "redis-server", buf, sizeof(buf));
    cr_assert_not_null(server, "no redis-server");
    /* SSUBSCRIBE and SPUBLISH came with Redis 7.0 */
    const char *argv[] = {server, "--version", NULL};
    char out[256];
    int st = 0;
    cr_assert_eq(it_run(argv, NULL, it_ms(5000), out, sizeof(out), &st), 0);
    const char *v = strstr(out, "v=");
    if (v == NULL || atoi(v + 2) < 7)
        cr_skip_test("redis-server is older than 7.0 (no shard channels): %s", out);
    it_cluster_start(3, 1);
    it_set_queue_partitions(3);
}

static int gw_start(void)
{
    struct it_gw_conf c = {.processes = 1};
    return it_gateway_start(&c);
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
    cli(a, out, sizeof(out));
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
 * other than avoid (a node number). */
static void user_elsewhere_from(char *out, size_t outlen, int avoid, int from)
{
    for (int i = from; i < from + 1000; i++) {
        char chan[64];
        snprintf(out, outlen, "u%d", i);
        snprintf(chan, sizeof(chan), "chatmi:{u:%s}", out);
        if (it_cluster_key_owner(chan) != avoid)
            return;
    }
    cr_assert_fail("no user on another master");
}

static void user_elsewhere(char *out, size_t outlen, int avoid)
{
    user_elsewhere_from(out, outlen, avoid, 0);
}

/* A room (r0, r1, ...) whose channel is served by master (a node number). */
static void room_on(char *out, size_t outlen, int master)
{
    for (int i = 0; i < 1000; i++) {
        char chan[64];
        snprintf(out, outlen, "r%d", i);
        snprintf(chan, sizeof(chan), "chatmi:{c:room:%s}", out);
        if (it_cluster_key_owner(chan) == master)
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
    cli(a0, out, sizeof(out));
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
        cli(llen, out, sizeof(out));
        if (atoi(out) == 1)
            break;
        cr_assert(it_mono_ms() < end, "LLEN %s is %s, not 1", key, out);
        it_pause_ms(50);
    }
    const char *old[] = {"EXISTS", "chatmi:{q}:inbound", NULL};
    cli(old, out, sizeof(out));
    cr_assert_eq(atoi(out), 0, "with 3 partitions nothing goes to chatmi:{q}:inbound");
    ws_free(alice);
}

Test(cluster, master_killed_resyncs_exactly_its_users)
{
    gw_start();
    struct ws *alice = it_open(it_port(), "alice", NULL);
    int m = it_cluster_key_owner("chatmi:{u:alice}");
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
    cli(sadd, sout, sizeof(sout));
    struct ws *cw = it_open(it_port(), carol, NULL);
    spublish("chatmi:{u:alice}", 1);
    wait_test(alice, 1, IT_WAIT);

    /* the harness kills it and waits for its replica's promotion; the
     * resync is read from the socket afterwards */
    int64_t t0 = it_mono_ms();
    long promoted_ms = it_cluster_kill_master(m, NULL);
    json_t *r = ws_wait_op(alice, "resync", it_ms(30000));
    cr_assert_not_null(r, "no resync for a user whose master died");
    int64_t t1 = it_mono_ms();
    json_decref(r);
    fprintf(stderr, "it_cluster: master %d killed; replica promoted after %ld ms, alice's resync read after %lld ms\n",
            m, promoted_ms, (long long)(t1 - t0));
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
    int slot = it_cluster_keyslot("chatmi:{u:alice}");
    int from = it_cluster_slot_owner(slot);
    char other[32];
    user_elsewhere(other, sizeof(other), from);
    struct ws *bob = it_open(it_port(), other, NULL);
    /* another master to move to */
    int masters[8], to = -1;
    int nm = it_cluster_masters(masters, 8);
    for (int i = 0; i < nm && to < 0; i++)
        if (masters[i] != from)
            to = masters[i];
    cr_assert(to >= 0);
    int64_t t0 = it_mono_ms();
    it_cluster_move_slot(slot, to); /* with its keys (alice's nodes set) */
    json_t *r = ws_wait_op(alice, "resync", it_ms(15000));
    cr_assert_not_null(r, "no resync for a user whose slot moved");
    json_decref(r);
    fprintf(stderr, "it_cluster: slot %d moved from node %d to node %d; alice's resync read after %lld ms\n", slot,
            from, to, (long long)(it_mono_ms() - t0));
    cr_assert_eq(it_cluster_slot_owner(slot), to);
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
