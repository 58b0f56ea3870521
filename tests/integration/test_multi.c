/* test_multi.c: two gateway instances (different ports, two children each)
 * on one Redis with one worker: users on different gateways talk to each
 * other, acks go only to the requesting session, presence spans gateways. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <string.h>

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
