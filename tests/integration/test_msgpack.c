/* test_msgpack.c: the chatmi.v1.msgpack subprotocol end to end: binary
 * frames carrying the same maps as the JSON protocol, and sessions of both
 * encodings talking to each other. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <string.h>

#include "itest.h"

#define MP IT_SUBPROTO_MSGPACK

TestSuite(msgpack, .init = it_stack_init, .fini = it_end, .timeout = 60);

/* every message on a msgpack session is a binary frame */
static void assert_binary(json_t *m)
{
    cr_assert_str_eq(js(m, "__frame"), "binary", "msgpack session got a text frame: %s", jdump(m));
}

Test(msgpack, hello)
{
    struct ws *a = it_open(it_port(), "alice", MP);
    cr_assert(a->msgpack, "the server did not select chatmi.v1.msgpack");
    assert_binary(a->hello);
    cr_assert_str_eq(js(a->hello, "user"), "alice");
    cr_assert(strlen(js(a->hello, "session")) > 0 && strlen(js(a->hello, "node")) > 0, "%s", jdump(a->hello));
    cr_assert(json_is_number(json_object_get(a->hello, "heartbeat")), "%s", jdump(a->hello));
    ws_free(a);
}

Test(msgpack, dm_between_encodings)
{
    struct ws *a = it_open(it_port(), "alice", MP);    /* msgpack */
    struct ws *b = it_open(it_port(), "bob", NULL);    /* JSON */
    struct ws *b2 = it_open(it_port(), "bob", MP);     /* msgpack */

    json_t *ack = it_dm(a, "1", "bob", "from msgpack \xe2\x82\xac");
    assert_binary(ack);
    cr_assert_str_eq(js(ack, "conv"), "dm:alice:bob");
    cr_assert_eq(ji(ack, "seq"), 1);
    cr_assert(ji(ack, "ts") > 0 && strlen(js(ack, "msg")) > 0, "%s", jdump(ack));

    json_t *m = it_deliv(b, "dm:alice:bob", 1);
    cr_assert_str_eq(js(m, "__frame"), "text");
    cr_assert_str_eq(js(m, "text"), "from msgpack \xe2\x82\xac");
    cr_assert_str_eq(js(m, "from"), "alice");
    cr_assert_str_eq(js(m, "msg"), js(ack, "msg"));
    cr_assert_eq(ji(m, "ts"), ji(ack, "ts"));
    json_decref(m);
    m = it_deliv(b2, "dm:alice:bob", 1);
    assert_binary(m);
    cr_assert_str_eq(js(m, "text"), "from msgpack \xe2\x82\xac");
    cr_assert_str_eq(js(m, "msg"), js(ack, "msg"));
    json_decref(m);
    m = it_deliv(a, "dm:alice:bob", 1);
    assert_binary(m);
    json_decref(m);
    json_decref(ack);

    /* JSON to msgpack */
    ack = it_dm(b, "2", "alice", "from json");
    m = it_deliv(a, "dm:alice:bob", 2);
    assert_binary(m);
    cr_assert_str_eq(js(m, "text"), "from json");
    cr_assert_str_eq(js(m, "from"), "bob");
    json_decref(m);
    json_decref(ack);
    ws_free(a);
    ws_free(b);
    ws_free(b2);
}

Test(msgpack, rooms_history_convs_presence)
{
    struct ws *a = it_open(it_port(), "alice", MP);
    struct ws *c = it_open(it_port(), "carol", MP);
    it_join(a, "j1", "mp");
    it_join(c, "j2", "mp");
    for (int i = 1; i <= 3; i++) {
        char id[8], text[16];
        snprintf(id, sizeof(id), "s%d", i);
        snprintf(text, sizeof(text), "m%d", i);
        json_t *ack = it_room_send(a, id, "mp", text);
        assert_binary(ack);
        cr_assert_eq(ji(ack, "seq"), i);
        json_decref(ack);
        json_t *m = it_deliv(c, "room:mp", i);
        assert_binary(m);
        cr_assert_str_eq(js(m, "text"), text);
        json_decref(m);
    }
    json_t *h = it_history(c, "h", "room:mp", "after", 1, 0);
    assert_binary(h);
    it_assert_seq_range(json_object_get(h, "messages"), 2, 3, "msgpack history");
    cr_assert_str_eq(js(json_array_get(json_object_get(h, "messages"), 0), "text"), "m2");
    json_decref(h);

    json_t *r = it_req_op(a, json_pack("{s:s,s:s}", "op", "convs", "id", "c"), "convs");
    assert_binary(r);
    json_t *convs = json_object_get(r, "convs");
    cr_assert_eq(json_array_size(convs), 1, "%s", jdump(r));
    cr_assert_str_eq(js(json_array_get(convs, 0), "conv"), "room:mp");
    cr_assert_eq(ji(json_array_get(convs, 0), "last_seq"), 3);
    json_decref(r);

    r = it_req_op(a, json_pack("{s:s,s:s,s:[s,s]}", "op", "presence", "id", "p", "users", "carol", "dave"),
                  "presence");
    assert_binary(r);
    cr_assert_str_eq(js(json_object_get(r, "users"), "carol"), "online", "%s", jdump(r));
    cr_assert_str_eq(js(json_object_get(r, "users"), "dave"), "offline", "%s", jdump(r));
    json_decref(r);

    json_t *l = it_req_op(c, json_pack("{s:s,s:s,s:s}", "op", "leave", "id", "l", "room", "mp"), "left");
    assert_binary(l);
    json_decref(l);
    ws_free(a);
    ws_free(c);
}

Test(msgpack, errors_and_idempotency)
{
    struct ws *a = it_open(it_port(), "alice", MP);
    json_t *e = it_req_err(a, json_pack("{s:s,s:s}", "op", "dance", "id", "e1"), "bad_request");
    assert_binary(e);
    json_decref(e);
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s}", "op", "history", "id", "e2", "conv", "room:none"), "not_found");

    /* bytes that are not one MessagePack map: an error, the session stays */
    static const unsigned char junk[] = {0xc1, 0xff, 0x00, 0x93};
    cr_assert_eq(ws_send_binary(a, junk, sizeof(junk)), 0);
    e = ws_wait_op(a, "error", IT_WAIT);
    cr_assert_not_null(e, "no error for undecodable MessagePack (%s, close %d)", a->err, a->close_code);
    cr_assert_str_eq(js(e, "code"), "bad_request", "%s", jdump(e));
    json_decref(e);
    /* an array instead of a map */
    static const unsigned char arr[] = {0x92, 0x01, 0x02};
    cr_assert_eq(ws_send_binary(a, arr, sizeof(arr)), 0);
    e = ws_wait_op(a, "error", IT_WAIT);
    cr_assert_not_null(e, "no error for a MessagePack array (%s)", a->err);
    cr_assert_str_eq(js(e, "code"), "bad_request", "%s", jdump(e));
    json_decref(e);

    json_t *ack1 = it_dm(a, "same", "bob", "once");
    json_t *ack2 = it_dm(a, "same", "bob", "once");
    cr_assert_eq(ji(ack1, "seq"), ji(ack2, "seq"));
    cr_assert_str_eq(js(ack1, "msg"), js(ack2, "msg"));
    json_decref(ack1);
    json_decref(ack2);

    /* text over the limit */
    char big[4200];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "big", "to", "bob", "text", big),
                    "too_large");
    ws_free(a);
}
