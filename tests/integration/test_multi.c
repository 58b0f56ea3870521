/* test_multi.c: two gateway instances (different ports, two children each)
 * on one Redis with one worker: users on different gateways talk to each
 * other, acks go only to the requesting session, presence spans gateways.
 * And two workers that split the queue partitions between them. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cluster.h"
#include "common/keys.h"
#include "itest.h"

static void multi_init(void)
{
    it_redis_init();
    it_gateway_start(NULL);
    it_gateway_start(NULL);
    it_worker_start(NULL);
}

TestSuite(multi, .init = multi_init, .fini = it_end, .timeout = 60);

Test(multi, distinct_nodes)
{
    struct ws *a = it_open(it_gw_port(0), "alice", NULL);
    struct ws *b = it_open(it_gw_port(1), "bob", NULL);
    cr_assert_str_neq(js(a->hello, "node"), js(b->hello, "node"), "two gateways report the same node");
    cr_assert_str_neq(ws_session(a), ws_session(b));
    ws_free(a);
    ws_free(b);
}

Test(multi, dm_across_gateways)
{
    struct ws *a0 = it_open(it_gw_port(0), "alice", NULL);
    struct ws *a1 = it_open(it_gw_port(1), "alice", NULL);
    struct ws *b1 = it_open(it_gw_port(1), "bob", NULL);
    struct ws *b0 = it_open(it_gw_port(0), "bob", IT_SUBPROTO_MSGPACK);

    json_t *ack = it_dm(a0, "x1", "bob", "across");
    cr_assert_eq(ji(ack, "seq"), 1);
    struct ws *all[] = {a0, a1, b1, b0};
    for (int i = 0; i < 4; i++) {
        json_t *m = it_deliv(all[i], "dm:alice:bob", 1);
        cr_assert_str_eq(js(m, "text"), "across", "%s", all[i]->name);
        cr_assert_str_eq(js(m, "msg"), js(ack, "msg"));
        json_decref(m);
    }
    json_decref(ack);
    /* the ack went to a0 only, not to alice's session on the other gateway */
    it_sync(a1, "s");
    cr_assert_eq(ws_backlog_count(a1, ws_match_id, "x1"), 0, "alice's session on gateway 1 got gateway 0's ack");

    ack = it_dm(b1, "y1", "alice", "and back");
    cr_assert_eq(ji(ack, "seq"), 2);
    json_decref(it_deliv(a0, "dm:alice:bob", 2));
    json_decref(it_deliv(a1, "dm:alice:bob", 2));
    json_decref(ack);
    for (int i = 0; i < 4; i++)
        ws_free(all[i]);
}

Test(multi, room_across_gateways)
{
    struct ws *a = it_open(it_gw_port(0), "alice", NULL);
    struct ws *c = it_open(it_gw_port(1), "carol", NULL);
    struct ws *d = it_open(it_gw_port(1), "dave", NULL);
    it_join(a, "1", "lobby");
    it_join(c, "2", "lobby");
    it_join(d, "3", "lobby");
    json_decref(it_room_send(c, "4", "lobby", "from gateway 1"));
    json_decref(it_room_send(a, "5", "lobby", "from gateway 0"));
    struct ws *all[] = {a, c, d};
    for (int i = 0; i < 3; i++) {
        json_t *m1 = it_deliv(all[i], "room:lobby", 1);
        json_t *m2 = it_deliv(all[i], "room:lobby", 2);
        cr_assert_str_eq(js(m1, "text"), "from gateway 1");
        cr_assert_str_eq(js(m2, "text"), "from gateway 0");
        json_decref(m1);
        json_decref(m2);
    }
    /* history and convs read the same data from either gateway */
    json_t *h = it_history(d, "h", "room:lobby", "after", 0, 0);
    it_assert_seq_range(json_object_get(h, "messages"), 1, 2, "history via gateway 1");
    json_decref(h);
    for (int i = 0; i < 3; i++)
        ws_free(all[i]);
}

Test(multi, presence_across_gateways)
{
    struct ws *a = it_open(it_gw_port(0), "alice", NULL);
    struct ws *b = it_open(it_gw_port(1), "bob", NULL);
    json_t *r = it_req_op(a, json_pack("{s:s,s:s,s:[s,s]}", "op", "presence", "id", "p", "users", "bob", "zoe"),
                          "presence");
    cr_assert_str_eq(js(json_object_get(r, "users"), "bob"), "online", "%s", jdump(r));
    cr_assert_str_eq(js(json_object_get(r, "users"), "zoe"), "offline", "%s", jdump(r));
    json_decref(r);
    ws_free(a);
    ws_free(b);
}

/* ---- workers that split the queue partitions (worker --partitions) ---------------- */

/* A user name whose requests go to queue partition p of n. */
static void user_in_partition(char *out, size_t outlen, unsigned p, unsigned n)
{
    for (int i = 0; i < 1000; i++) {
        int len = snprintf(out, outlen, "user%d", i);
        if (cm_queue_partition(out, (size_t)len, n) == p)
            return;
    }
    cr_assert_fail("no user name in partition %u of %u", p, n);
}

static long long inbound_len(unsigned p, unsigned n)
{
    char tag[CM_QUEUE_TAG_MAX], key[CM_KEY_MAX], out[256];
    cm_queue_tag(tag, p, n);
    cm_key_queue_in(key, tag, "inbound");
    const char *argv[] = {"LLEN", key, NULL};
    cr_assert_eq(it_redis_cli(it_redis_port(), argv, out, sizeof(out)), 0, "LLEN %s: %s", key, out);
    return strtoll(out, NULL, 10);
}

static void partitions_init(void)
{
    it_redis_init();
    it_set_queue_partitions(4);
    it_gateway_start(NULL);
}

/* A worker started with --partitions 0,2 takes partition 0's requests and
 * leaves partition 1's alone; a second one with 1,3 takes those. */
TestSuite(partitions, .init = partitions_init, .fini = it_end, .timeout = 60);

Test(partitions, workers_split_them)
{
    char in0[32], in1[32];
    user_in_partition(in0, sizeof(in0), 0, 4);
    user_in_partition(in1, sizeof(in1), 1, 4);
    static const char *const even[] = {"--partitions", "0,2", NULL};
    static const char *const odd[] = {"--partitions", "1,3", NULL};
    struct it_worker_conf we = {.extra = even}, wo = {.extra = odd};
    it_worker_start(&we);

    struct ws *u0 = it_open(it_gw_port(0), in0, NULL);
    struct ws *u1 = it_open(it_gw_port(0), in1, NULL);
    cr_assert_eq(ws_send_json(u1, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "m1", "to", in0, "text",
                                            "waits for a worker of partition 1")),
                 0);
    int64_t end = it_mono_ms() + IT_WAIT;
    while (inbound_len(1, 4) != 1) {
        cr_assert(it_mono_ms() < end, "the request never reached partition 1's inbound list");
        it_pause_ms(20);
    }
    /* partition 0 is worked: this ack comes while partition 1's request waits */
    json_decref(it_dm(u0, "m2", in1, "taken at once"));
    cr_assert_eq(inbound_len(1, 4), 1, "the --partitions 0,2 worker took a request of partition 1");

    it_worker_start(&wo);
    json_t *ack = ws_wait_reply(u1, "m1", IT_WAIT);
    cr_assert_not_null(ack, "no ack once a worker of partition 1 runs");
    cr_assert_str_eq(js(ack, "op"), "ack");
    json_decref(ack);
    cr_assert_eq(inbound_len(1, 4), 0);
    ws_free(u0);
    ws_free(u1);
}
