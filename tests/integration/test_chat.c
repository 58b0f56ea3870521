/* test_chat.c: contract sections 3-5 end to end through one gateway (two
 * children) and one worker: hello, direct messages, rooms, history paging,
 * convs, presence, idempotent retries, recovery after a reconnect. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <msgpack.h>
#include <unistd.h>

#include "common/envelope.h"
#include "common/keys.h"
#include "itest.h"

TestSuite(chat, .init = it_stack_init, .fini = it_end, .timeout = 60);

static void assert_ts(json_t *m)
{
    int64_t ts = ji(m, "ts");
    int64_t now = it_now_ms();
    cr_assert(ts > 0, "ts missing or not an integer: %s", jdump(m));
    /* milliseconds since the epoch, set by the server: within a minute of our clock */
    cr_assert(ts > now - 60000 && ts < now + 60000, "ts %lld is not near now (%lld ms): %s", (long long)ts,
              (long long)now, jdump(m));
}

static void assert_ack(json_t *ack, const char *id, const char *conv, int64_t seq)
{
    cr_assert_str_eq(js(ack, "op"), "ack", "%s", jdump(ack));
    cr_assert_str_eq(js(ack, "id"), id, "ack id: %s", jdump(ack));
    cr_assert_str_eq(js(ack, "conv"), conv, "ack conv: %s", jdump(ack));
    if (seq > 0)
        cr_assert_eq(ji(ack, "seq"), seq, "ack seq: %s", jdump(ack));
    cr_assert(strlen(js(ack, "msg")) > 0, "ack without msg: %s", jdump(ack));
    assert_ts(ack);
}

/* A delivery matching its ack, from `from` with `text`. */
static void assert_delivery(json_t *m, json_t *ack, const char *from, const char *text)
{
    cr_assert_str_eq(js(m, "op"), "message", "%s", jdump(m));
    cr_assert_str_eq(js(m, "conv"), js(ack, "conv"), "delivery conv: %s vs ack %s", jdump(m), js(ack, "conv"));
    cr_assert_eq(ji(m, "seq"), ji(ack, "seq"), "delivery seq: %s", jdump(m));
    cr_assert_str_eq(js(m, "msg"), js(ack, "msg"), "delivery msg id differs from the ack's: %s", jdump(m));
    cr_assert_str_eq(js(m, "from"), from, "delivery from: %s", jdump(m));
    cr_assert_str_eq(js(m, "text"), text, "delivery text: %s", jdump(m));
    cr_assert_eq(ji(m, "ts"), ji(ack, "ts"), "delivery ts %lld differs from the ack's %lld", (long long)ji(m, "ts"),
                 (long long)ji(ack, "ts"));
}

Test(chat, hello_fields)
{
    struct ws *a1 = it_open(it_port(), "alice", NULL);
    json_t *h = a1->hello;
    cr_assert_str_eq(js(h, "op"), "hello");
    cr_assert_str_eq(js(h, "user"), "alice", "%s", jdump(h));
    cr_assert(strlen(js(h, "session")) > 0, "hello without session: %s", jdump(h));
    cr_assert(strlen(js(h, "node")) > 0, "hello without node: %s", jdump(h));
    json_t *hb = json_object_get(h, "heartbeat");
    cr_assert(json_is_number(hb) && json_number_value(hb) == 25, "heartbeat should be the default 25: %s", jdump(h));
    cr_assert_str_eq(js(h, "__frame"), "text", "JSON session: the hello must be a text frame");

    struct ws *a2 = it_open(it_port(), "alice", NULL);
    cr_assert_str_neq(ws_session(a1), ws_session(a2), "two sessions of alice share the session id %s",
                      ws_session(a1));
    ws_free(a1);
    ws_free(a2);
}

Test(chat, dm_basic)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);

    json_t *ack = it_dm(a, "1", "bob", "hi bob");
    assert_ack(ack, "1", "dm:alice:bob", 1);
    json_t *m = it_deliv(b, "dm:alice:bob", 1);
    assert_delivery(m, ack, "alice", "hi bob");
    json_decref(m);
    /* the sender's own session gets the delivery too */
    m = it_deliv(a, "dm:alice:bob", 1);
    assert_delivery(m, ack, "alice", "hi bob");
    json_decref(m);
    json_decref(ack);

    /* and back: the same conversation from bob's side, next seq */
    ack = it_dm(b, "2", "alice", "hi alice \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_ack(ack, "2", "dm:alice:bob", 2);
    m = it_deliv(a, "dm:alice:bob", 2);
    assert_delivery(m, ack, "bob", "hi alice \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    json_decref(m);
    json_decref(ack);
    ws_free(a);
    ws_free(b);
}

Test(chat, dm_conv_is_byte_ordered)
{
    /* 'Z' (0x5A) sorts before 'a' (0x61) in byte order, unlike a case-insensitive order */
    struct ws *amy = it_open(it_port(), "amy", NULL);
    struct ws *zed = it_open(it_port(), "Zed", NULL);
    json_t *ack = it_dm(amy, "1", "Zed", "x");
    assert_ack(ack, "1", "dm:Zed:amy", 1);
    json_decref(ack);
    json_decref(it_deliv(zed, "dm:Zed:amy", 1));

    /* '-' (0x2D) < '.' (0x2E) < '_' (0x5F); a prefix sorts first */
    struct ws *x1 = it_open(it_port(), "x_1", NULL);
    ack = it_dm(x1, "2", "x-1", "y");
    assert_ack(ack, "2", "dm:x-1:x_1", 1);
    json_decref(ack);
    ack = it_dm(x1, "3", "x", "z");
    assert_ack(ack, "3", "dm:x:x_1", 1);
    json_decref(ack);
    ws_free(amy);
    ws_free(zed);
    ws_free(x1);
}

Test(chat, dm_reaches_every_session_ack_only_the_sender)
{
    struct ws *a1 = it_open(it_port(), "alice", NULL);
    struct ws *a2 = it_open(it_port(), "alice", NULL);
    struct ws *b1 = it_open(it_port(), "bob", NULL);
    struct ws *b2 = it_open(it_port(), "bob", NULL);
    struct ws *all[] = {a1, a2, b1, b2};

    json_t *ack = it_dm(a1, "d1", "bob", "to all of bob");
    assert_ack(ack, "d1", "dm:alice:bob", 1);
    char msg_id[128];
    snprintf(msg_id, sizeof(msg_id), "%s", js(ack, "msg"));
    for (int i = 0; i < 4; i++) {
        json_t *m = it_deliv(all[i], "dm:alice:bob", 1);
        assert_delivery(m, ack, "alice", "to all of bob");
        json_decref(m);
    }
    /* a second message works as a sentinel: after it, no duplicate of the first may come */
    json_t *ack2 = it_dm(a1, "d2", "bob", "second");
    assert_ack(ack2, "d2", "dm:alice:bob", 2);
    for (int i = 0; i < 4; i++) {
        json_decref(it_deliv(all[i], "dm:alice:bob", 2));
        cr_assert_eq(ws_backlog_count(all[i], ws_match_msg_id, msg_id), 0, "%s got message %s twice", all[i]->name,
                     msg_id);
    }
    /* the acks are addressed to the sending session only */
    for (int i = 1; i < 4; i++) {
        it_sync(all[i], "sync");
        cr_assert_eq(ws_backlog_count(all[i], ws_match_id, "d1"), 0, "%s got an ack meant for another session",
                     all[i]->name);
        cr_assert_eq(ws_backlog_count(all[i], ws_match_id, "d2"), 0, "%s got an ack meant for another session",
                     all[i]->name);
    }
    json_decref(ack);
    json_decref(ack2);
    for (int i = 0; i < 4; i++)
        ws_free(all[i]);
}

#define BURST 30

Test(chat, seq_is_gap_free_under_pipelined_sends)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    char id[16], text[32];
    for (int i = 1; i <= BURST; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        snprintf(text, sizeof(text), "burst %d", i);
        cr_assert_eq(ws_send_json(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", id, "to", "bob", "text",
                                               text)),
                     0);
    }
    int seen[BURST + 1] = {0};
    for (int i = 1; i <= BURST; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        json_t *ack = ws_wait_reply(a, id, IT_WAIT);
        cr_assert_not_null(ack, "no ack for %s (%s)", id, a->err);
        cr_assert_str_eq(js(ack, "op"), "ack", "%s", jdump(ack));
        int64_t s = ji(ack, "seq");
        cr_assert(s >= 1 && s <= BURST, "seq %lld outside 1..%d: %s", (long long)s, BURST, jdump(ack));
        cr_assert_eq(seen[s], 0, "seq %lld given twice", (long long)s);
        seen[s] = 1;
        json_decref(ack);
    }
    /* bob sees every seq exactly once */
    int got[BURST + 1] = {0};
    for (int i = 1; i <= BURST; i++) {
        json_t *m = ws_wait_message(b, "dm:alice:bob", -1, IT_WAIT);
        cr_assert_not_null(m, "bob: only %d of %d deliveries (%s)", i - 1, BURST, b->err);
        int64_t s = ji(m, "seq");
        cr_assert(s >= 1 && s <= BURST, "delivery seq %lld outside 1..%d", (long long)s, BURST);
        cr_assert_eq(got[s], 0, "bob got seq %lld twice", (long long)s);
        got[s] = 1;
        json_decref(m);
    }
    ws_free(a);
    ws_free(b);
}

Test(chat, deliveries_arrive_in_seq_order)
{
    /* a client detects gaps by seq; with one sender and one worker the
     * deliveries must come in ascending order or it would see false gaps */
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    char id[16];
    for (int i = 1; i <= BURST; i++) {
        snprintf(id, sizeof(id), "o%d", i);
        cr_assert_eq(ws_send_json(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", id, "to", "bob", "text",
                                               id)),
                     0);
    }
    for (int i = 1; i <= BURST; i++) {
        json_t *m = ws_wait_message(b, "dm:alice:bob", -1, IT_WAIT);
        cr_assert_not_null(m, "bob: only %d of %d deliveries (%s)", i - 1, BURST, b->err);
        cr_assert_eq(ji(m, "seq"), i, "delivery %d has seq %lld", i, (long long)ji(m, "seq"));
        json_decref(m);
    }
    ws_free(a);
    ws_free(b);
}

Test(chat, room_seq_gap_free_with_concurrent_senders)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    struct ws *c = it_open(it_port(), "carol", NULL);
    it_join(a, "j1", "busy");
    it_join(b, "j2", "busy");
    it_join(c, "j3", "busy");
    char id[16];
    for (int i = 0; i < 15; i++) {
        snprintf(id, sizeof(id), "a%d", i);
        ws_send_json(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", id, "room", "busy", "text", id));
        snprintf(id, sizeof(id), "b%d", i);
        ws_send_json(b, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", id, "room", "busy", "text", id));
    }
    int seen[31] = {0};
    for (int i = 0; i < 15; i++) {
        struct ws *who[] = {a, b};
        for (int w = 0; w < 2; w++) {
            snprintf(id, sizeof(id), "%c%d", w == 0 ? 'a' : 'b', i);
            json_t *ack = ws_wait_reply(who[w], id, IT_WAIT);
            cr_assert_not_null(ack, "no ack for %s (%s)", id, who[w]->err);
            cr_assert_str_eq(js(ack, "op"), "ack", "%s", jdump(ack));
            cr_assert_str_eq(js(ack, "conv"), "room:busy");
            int64_t s = ji(ack, "seq");
            cr_assert(s >= 1 && s <= 30 && !seen[s], "bad or repeated seq %lld", (long long)s);
            seen[s] = 1;
            json_decref(ack);
        }
    }
    int got[31] = {0};
    for (int i = 0; i < 30; i++) {
        json_t *m = ws_wait_message(c, "room:busy", -1, IT_WAIT);
        cr_assert_not_null(m, "carol: %d of 30 deliveries (%s)", i, c->err);
        int64_t s = ji(m, "seq");
        cr_assert(s >= 1 && s <= 30 && !got[s], "carol: bad or repeated seq %lld", (long long)s);
        got[s] = 1;
        json_decref(m);
    }
    ws_free(a);
    ws_free(b);
    ws_free(c);
}

Test(chat, room_join_send_leave)
{
    struct ws *a1 = it_open(it_port(), "alice", NULL);
    struct ws *a2 = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);

    it_join(a1, "3", "general");
    /* a non-member may not send */
    json_t *e = it_req_err(b, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "x1", "room", "general", "text", "hi"),
                           "forbidden");
    cr_assert_str_eq(js(e, "id"), "x1", "error must echo the id: %s", jdump(e));
    json_decref(e);

    it_join(b, "4", "general");
    json_t *ack = it_room_send(a1, "5", "general", "hello room");
    assert_ack(ack, "5", "room:general", 1);
    struct ws *all[] = {a1, a2, b};
    for (int i = 0; i < 3; i++) {
        json_t *m = it_deliv(all[i], "room:general", 1);
        assert_delivery(m, ack, "alice", "hello room");
        json_decref(m);
    }
    json_decref(ack);

    /* leave: exact reply, then bob may no longer send, and gets nothing more */
    json_t *l = it_req_op(b, json_pack("{s:s,s:s,s:s}", "op", "leave", "id", "6", "room", "general"), "left");
    cr_assert_str_eq(js(l, "room"), "general", "%s", jdump(l));
    json_decref(l);
    it_req_err_drop(b, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "x2", "room", "general", "text", "hi"),
                    "forbidden");
    ack = it_room_send(a1, "7", "general", "after bob left");
    assert_ack(ack, "7", "room:general", 2);
    json_decref(it_deliv(a2, "room:general", 2));
    it_sync(b, "sync");
    cr_assert_eq(ws_backlog_count(b, ws_match_op, "message"), 0, "bob got a room message after leaving");
    json_decref(ack);
    /* leaving again is harmless */
    json_decref(it_req_op(b, json_pack("{s:s,s:s,s:s}", "op", "leave", "id", "8", "room", "general"), "left"));
    /* and rejoining works, the seq continues */
    it_join(b, "9", "general");
    ack = it_room_send(b, "10", "general", "back");
    assert_ack(ack, "10", "room:general", 3);
    json_decref(it_deliv(a1, "room:general", 3));
    json_decref(ack);
    ws_free(a1);
    ws_free(a2);
    ws_free(b);
}

Test(chat, room_history_access)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    struct ws *c = it_open(it_port(), "carol", NULL);

    /* a room that nobody ever joined does not exist */
    it_req_err_drop(a, json_pack("{s:s,s:s,s:s}", "op", "history", "id", "h0", "conv", "room:nosuch"), "not_found");
    /* a room exists once someone joins it: empty history for the member */
    it_join(a, "j", "fresh");
    json_t *h = it_history(a, "h1", "room:fresh", NULL, 0, 0);
    cr_assert_eq(json_array_size(json_object_get(h, "messages")), 0, "%s", jdump(h));
    json_decref(h);

    json_decref(it_room_send(a, "s1", "fresh", "one"));
    json_decref(it_room_send(a, "s2", "fresh", "two"));
    h = it_history(a, "h2", "room:fresh", "after", 0, 0);
    json_t *msgs = json_object_get(h, "messages");
    it_assert_seq_range(msgs, 1, 2, "room history");
    cr_assert_str_eq(js(json_array_get(msgs, 0), "text"), "one");
    cr_assert_str_eq(js(json_array_get(msgs, 1), "text"), "two");
    cr_assert_str_eq(js(json_array_get(msgs, 1), "from"), "alice");
    cr_assert_str_eq(js(json_array_get(msgs, 1), "conv"), "room:fresh");
    cr_assert(strlen(js(json_array_get(msgs, 1), "msg")) > 0, "history message without msg id");
    json_decref(h);

    /* only members read a room's history; only the two users a DM's */
    it_req_err_drop(b, json_pack("{s:s,s:s,s:s}", "op", "history", "id", "h3", "conv", "room:fresh"), "forbidden");
    json_decref(it_dm(a, "s3", "bob", "private"));
    it_req_err_drop(c, json_pack("{s:s,s:s,s:s}", "op", "history", "id", "h4", "conv", "dm:alice:bob"), "forbidden");
    h = it_history(b, "h5", "dm:alice:bob", "after", 0, 0);
    it_assert_seq_range(json_object_get(h, "messages"), 1, 1, "dm history read by bob");
    json_decref(h);
    ws_free(a);
    ws_free(b);
    ws_free(c);
}

Test(chat, send_to_missing_room_is_refused)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    json_t *e = it_req(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", "m1", "room", "nobody-here", "text",
                                    "hello?"));
    cr_assert_str_eq(js(e, "op"), "error", "a send to a room nobody joined was accepted: %s", jdump(e));
    cr_assert(strcmp(js(e, "code"), "not_found") == 0 || strcmp(js(e, "code"), "forbidden") == 0,
              "expected not_found or forbidden: %s", jdump(e));
    json_decref(e);
    ws_free(a);
}

#define PAGED 250

Test(chat, history_paging, .timeout = 90)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    /* texts by seq, from the acks (no assumption that seq follows send order) */
    static char texts[PAGED + 1][16];
    char id[16];
    int next_ack = 1;
    for (int i = 1; i <= PAGED; i++) {
        snprintf(id, sizeof(id), "p%d", i);
        char text[16];
        snprintf(text, sizeof(text), "t%d", i);
        cr_assert_eq(ws_send_json(a, json_pack("{s:s,s:s,s:s,s:s}", "op", "send", "id", id, "to", "bob", "text",
                                               text)),
                     0);
        /* read acks as we go, 25 behind, so nothing queues up without bound */
        while (next_ack <= i - 25 || (i == PAGED && next_ack <= PAGED)) {
            snprintf(id, sizeof(id), "p%d", next_ack);
            json_t *ack = ws_wait_reply(a, id, IT_WAIT);
            cr_assert_not_null(ack, "no ack for %s (%s)", id, a->err);
            cr_assert_str_eq(js(ack, "op"), "ack", "%s", jdump(ack));
            int64_t s = ji(ack, "seq");
            cr_assert(s >= 1 && s <= PAGED && texts[s][0] == '\0', "bad seq %lld", (long long)s);
            snprintf(texts[s], sizeof(texts[s]), "t%d", next_ack);
            json_decref(ack);
            /* drop our own copies of the deliveries as they come */
            json_decref(ws_backlog_take(a, ws_match_op, "message"));
            next_ack++;
        }
    }
    const char *conv = "dm:alice:bob";

    /* default limit 50, from the start, ascending */
    json_t *h = it_history(a, "q1", conv, "after", 0, 0);
    json_t *msgs = json_object_get(h, "messages");
    it_assert_seq_range(msgs, 1, 50, "after 0, default limit");
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i);
        cr_assert_str_eq(js(m, "text"), texts[ji(m, "seq")], "history text of seq %lld", (long long)ji(m, "seq"));
        cr_assert_str_eq(js(m, "from"), "alice");
        cr_assert_str_eq(js(m, "conv"), conv);
        cr_assert(strlen(js(m, "msg")) > 0 && ji(m, "ts") > 0, "history message fields: %s", jdump(m));
    }
    json_decref(h);

    h = it_history(a, "q2", conv, "after", 10, 5);
    it_assert_seq_range(json_object_get(h, "messages"), 11, 15, "after 10 limit 5");
    json_decref(h);

    h = it_history(a, "q3", conv, "after", 50, 200);
    it_assert_seq_range(json_object_get(h, "messages"), 51, 250, "after 50 limit 200");
    json_decref(h);

    /* limit is capped at 200 */
    h = it_history(a, "q4", conv, "after", 0, 1000);
    it_assert_seq_range(json_object_get(h, "messages"), 1, 200, "after 0 limit 1000 (cap 200)");
    json_decref(h);

    /* before pages backwards; the page is still ascending */
    h = it_history(a, "q5", conv, "before", 251, 10);
    it_assert_seq_range(json_object_get(h, "messages"), 241, 250, "before 251 limit 10");
    json_decref(h);
    h = it_history(a, "q6", conv, "before", 241, 0);
    it_assert_seq_range(json_object_get(h, "messages"), 191, 240, "before 241, default limit");
    json_decref(h);
    h = it_history(a, "q7", conv, "before", 11, 0);
    it_assert_seq_range(json_object_get(h, "messages"), 1, 10, "before 11");
    json_decref(h);

    /* past the end: empty */
    h = it_history(a, "q8", conv, "after", 250, 0);
    it_assert_seq_range(json_object_get(h, "messages"), 1, 0, "after 250");
    json_decref(h);

    /* the other member pages the same way */
    h = it_history(b, "q9", conv, "after", 245, 0);
    it_assert_seq_range(json_object_get(h, "messages"), 246, 250, "bob after 245");
    json_decref(h);
    ws_free(a);
    ws_free(b);
}

static json_t *find_conv(json_t *convs, const char *conv)
{
    size_t i;
    json_t *c;
    json_array_foreach(convs, i, c)
    {
        if (strcmp(js(c, "conv"), conv) == 0)
            return c;
    }
    return NULL;
}

Test(chat, convs_last_seq)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    struct ws *c = it_open(it_port(), "carol", NULL);
    json_decref(it_dm(a, "1", "bob", "one"));
    json_decref(it_dm(a, "2", "bob", "two"));
    it_join(a, "3", "general");
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "r%d", i);
        json_decref(it_room_send(a, id, "general", "room text"));
    }

    json_t *r = it_req_op(a, json_pack("{s:s,s:s}", "op", "convs", "id", "6"), "convs");
    json_t *convs = json_object_get(r, "convs");
    cr_assert(json_is_array(convs), "%s", jdump(r));
    cr_assert_eq(json_array_size(convs), 2, "alice is in exactly two conversations: %s", jdump(r));
    json_t *dm = find_conv(convs, "dm:alice:bob");
    json_t *room = find_conv(convs, "room:general");
    cr_assert(dm != NULL && room != NULL, "%s", jdump(r));
    cr_assert_eq(ji(dm, "last_seq"), 2, "%s", jdump(r));
    cr_assert_eq(ji(room, "last_seq"), 3, "%s", jdump(r));
    json_decref(r);

    /* bob never sent anything, but is in the DM */
    r = it_req_op(b, json_pack("{s:s,s:s}", "op", "convs", "id", "7"), "convs");
    convs = json_object_get(r, "convs");
    cr_assert_eq(json_array_size(convs), 1, "%s", jdump(r));
    cr_assert_eq(ji(find_conv(convs, "dm:alice:bob"), "last_seq"), 2, "%s", jdump(r));
    json_decref(r);

    r = it_req_op(c, json_pack("{s:s,s:s}", "op", "convs", "id", "8"), "convs");
    cr_assert(json_is_array(json_object_get(r, "convs")), "%s", jdump(r));
    cr_assert_eq(json_array_size(json_object_get(r, "convs")), 0, "carol is in nothing: %s", jdump(r));
    json_decref(r);

    /* after leaving, the room is no longer one of alice's conversations */
    json_decref(it_req_op(a, json_pack("{s:s,s:s,s:s}", "op", "leave", "id", "9", "room", "general"), "left"));
    r = it_req_op(a, json_pack("{s:s,s:s}", "op", "convs", "id", "10"), "convs");
    cr_assert_null(find_conv(json_object_get(r, "convs"), "room:general"), "left room still listed: %s", jdump(r));
    cr_assert_not_null(find_conv(json_object_get(r, "convs"), "dm:alice:bob"), "%s", jdump(r));
    json_decref(r);
    ws_free(a);
    ws_free(b);
    ws_free(c);
}

static const char *presence_of(struct ws *ws, const char *id, const char *user, json_t **keep)
{
    json_t *r = it_req_op(ws, json_pack("{s:s,s:s,s:[s]}", "op", "presence", "id", id, "users", user), "presence");
    json_t *users = json_object_get(r, "users");
    cr_assert(json_is_object(users), "presence reply: %s", jdump(r));
    *keep = r;
    return js(users, user);
}

/* Polls presence until user reads `want` (bounded). */
static void wait_presence(struct ws *ws, const char *user, const char *want)
{
    int64_t deadline = it_mono_ms() + it_ms(10000);
    const char *last = "";
    json_t *keep = NULL;
    for (int i = 0; it_mono_ms() < deadline && i < 500; i++) {
        char id[16];
        snprintf(id, sizeof(id), "pp%d", i);
        json_decref(keep);
        last = presence_of(ws, id, user, &keep);
        if (strcmp(last, want) == 0) {
            json_decref(keep);
            return;
        }
        it_pause_ms(50);
    }
    cr_assert_fail("%s did not read %s within 10 s (last: \"%s\", %s)", user, want, last, jdump(keep));
}

Test(chat, presence_online_offline)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b1 = it_open(it_port(), "bob", NULL);

    json_t *r = it_req_op(a, json_pack("{s:s,s:s,s:[s,s,s]}", "op", "presence", "id", "7", "users", "bob", "carol",
                                       "alice"),
                          "presence");
    json_t *users = json_object_get(r, "users");
    cr_assert(json_is_object(users), "%s", jdump(r));
    cr_assert_str_eq(js(users, "bob"), "online", "%s", jdump(r));
    cr_assert_str_eq(js(users, "carol"), "offline", "%s", jdump(r));
    cr_assert_str_eq(js(users, "alice"), "online", "%s", jdump(r));
    cr_assert_eq(json_object_size(users), 3, "%s", jdump(r));
    json_decref(r);

    /* one of bob's two sessions closes cleanly: still online */
    struct ws *b2 = it_open(it_port(), "bob", NULL);
    ws_send_close(b1, 1000, "bye");
    int code = ws_wait_close(b1, IT_WAIT);
    cr_assert_eq(code, 1000, "the server should echo a client close with 1000, got %d", code);
    ws_free(b1);
    json_t *keep;
    cr_assert_str_eq(presence_of(a, "8", "bob", &keep), "online", "bob still has a session: %s", jdump(keep));
    json_decref(keep);

    /* the last one drops without a close frame: offline */
    ws_free(b2);
    wait_presence(a, "bob", "offline");
    ws_free(a);
}

Test(chat, idempotent_retry_same_seq_delivered_once)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    json_t *ack1 = it_dm(a, "same", "bob", "only once");
    assert_ack(ack1, "same", "dm:alice:bob", 1);
    json_decref(it_deliv(b, "dm:alice:bob", 1));

    json_t *ack2 = it_dm(a, "same", "bob", "only once");
    cr_assert_str_eq(js(ack2, "id"), "same");
    cr_assert_eq(ji(ack2, "seq"), ji(ack1, "seq"), "retry got another seq: %s vs %s", js(ack1, "msg"), jdump(ack2));
    cr_assert_str_eq(js(ack2, "msg"), js(ack1, "msg"), "retry got another msg id: %s", jdump(ack2));
    cr_assert_str_eq(js(ack2, "conv"), "dm:alice:bob");

    /* the next message takes the next seq: the retry consumed none */
    json_t *ack3 = it_dm(a, "next", "bob", "sentinel");
    cr_assert_eq(ji(ack3, "seq"), 2, "the retry consumed a seq: %s", jdump(ack3));
    json_decref(it_deliv(b, "dm:alice:bob", 2));
    cr_assert_eq(ws_backlog_count(b, ws_match_msg_id, js(ack1, "msg")), 0, "bob got the retried message twice");
    it_sync(a, "sync");
    /* alice's own session got exactly one delivery of it too */
    json_t *mine = ws_backlog_take(a, ws_match_msg_id, js(ack1, "msg"));
    cr_assert_eq(json_array_size(mine), 1, "alice's session got %zu deliveries of the retried message",
                 json_array_size(mine));
    json_decref(mine);

    /* stored once */
    json_t *h = it_history(b, "h", "dm:alice:bob", "after", 0, 0);
    it_assert_seq_range(json_object_get(h, "messages"), 1, 2, "history after a retry");
    json_decref(h);
    json_decref(ack1);
    json_decref(ack2);
    json_decref(ack3);
    ws_free(a);
    ws_free(b);
}

Test(chat, idempotent_retry_after_reconnect)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    json_t *ack1 = it_dm(a, "r1", "bob", "sent before the reconnect");
    ws_free(a);
    a = it_open(it_port(), "alice", NULL);
    json_t *ack2 = it_dm(a, "r1", "bob", "sent before the reconnect");
    cr_assert_eq(ji(ack2, "seq"), ji(ack1, "seq"), "%s", jdump(ack2));
    cr_assert_str_eq(js(ack2, "msg"), js(ack1, "msg"), "%s", jdump(ack2));

    /* the same id from another user is another message */
    json_t *ack3 = it_dm(b, "r1", "alice", "bob's own r1");
    cr_assert_eq(ji(ack3, "seq"), ji(ack1, "seq") + 1, "%s", jdump(ack3));
    cr_assert_str_neq(js(ack3, "msg"), js(ack1, "msg"), "two users' sends with the same id were merged");
    json_t *m = it_deliv(a, "dm:alice:bob", ji(ack3, "seq"));
    cr_assert_str_eq(js(m, "text"), "bob's own r1");
    json_decref(m);
    json_decref(ack1);
    json_decref(ack2);
    json_decref(ack3);
    ws_free(a);
    ws_free(b);
}

Test(chat, reconnect_recovers_with_convs_and_history)
{
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    json_decref(it_dm(a, "1", "bob", "seen"));
    json_t *m = it_deliv(b, "dm:alice:bob", 1);
    int64_t last_seen = ji(m, "seq");
    json_decref(m);
    ws_free(b);

    it_join(a, "j", "news");
    json_decref(it_dm(a, "2", "bob", "missed one"));
    json_decref(it_dm(a, "3", "bob", "missed two"));

    b = it_open(it_port(), "bob", NULL);
    json_t *r = it_req_op(b, json_pack("{s:s,s:s}", "op", "convs", "id", "c"), "convs");
    json_t *dm = find_conv(json_object_get(r, "convs"), "dm:alice:bob");
    cr_assert_not_null(dm, "%s", jdump(r));
    cr_assert_eq(ji(dm, "last_seq"), 3, "%s", jdump(r));
    json_decref(r);
    json_t *h = it_history(b, "h", "dm:alice:bob", "after", last_seen, 0);
    json_t *msgs = json_object_get(h, "messages");
    it_assert_seq_range(msgs, 2, 3, "recovery");
    cr_assert_str_eq(js(json_array_get(msgs, 0), "text"), "missed one");
    cr_assert_str_eq(js(json_array_get(msgs, 1), "text"), "missed two");
    json_decref(h);
    ws_free(a);
    ws_free(b);
}

/* ---- fan-out jobs repeated (a dead worker's batch redone) ------------------------------ */

/* RPUSH of one binary value over a raw socket (RESP), so the test needs no
 * Redis client library; asserts the integer reply. */
static void raw_rpush(const char *key, const char *val, size_t len)
{
    int fd = it_tcp_connect(it_redis_port(), IT_WAIT);
    cr_assert_geq(fd, 0, "cannot connect to Redis");
    char head[512];
    int n = snprintf(head, sizeof(head), "*3\r\n$5\r\nRPUSH\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(key), key, len);
    cr_assert_eq(write(fd, head, (size_t)n), n);
    cr_assert_eq(write(fd, val, len), (ssize_t)len);
    cr_assert_eq(write(fd, "\r\n", 2), 2);
    char reply[64] = "";
    ssize_t r = read(fd, reply, sizeof(reply) - 1);
    close(fd);
    cr_assert(r > 0 && reply[0] == ':', "RPUSH answered %s", r > 0 ? reply : "nothing");
}

/* A fan-out job for bob of message seq in dm:alice:bob, as the worker makes it. */
static void push_job(int64_t seq, const char *msg_id, const char *text)
{
    msgpack_sbuffer m, job;
    msgpack_sbuffer_init(&m);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &m, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    const char *kv[][2] = {{"op", "message"}, {"conv", "dm:alice:bob"}, {"msg", msg_id}, {"from", "alice"},
                           {"text", text}};
    for (size_t i = 0; i < 5; i++) {
        msgpack_pack_str_with_body(&pk, kv[i][0], strlen(kv[i][0]));
        msgpack_pack_str_with_body(&pk, kv[i][1], strlen(kv[i][1]));
    }
    msgpack_pack_str_with_body(&pk, "seq", 3);
    msgpack_pack_int64(&pk, seq);
    msgpack_pack_str_with_body(&pk, "ts", 2);
    msgpack_pack_int64(&pk, it_now_ms());
    const char *rcpt[] = {"bob"};
    size_t rlen[] = {3};
    msgpack_sbuffer_init(&job);
    cr_assert_eq(cm_fanout_job_pack(&job, "dm:alice:bob", 12, rcpt, rlen, 1, m.data, m.size), 0);
    char key[CM_KEY_MAX];
    it_queue_key(key, "fanout");
    raw_rpush(key, job.data, job.size);
    msgpack_sbuffer_destroy(&m);
    msgpack_sbuffer_destroy(&job);
}

static int match_seq(json_t *msg, const void *seq)
{
    return strcmp(js(msg, "op"), "message") == 0 && ji(msg, "seq") == *(const int64_t *)seq;
}

/* The same fan-out job twice (what a worker that died after publishing
 * leaves behind for the reaper) reaches the recipient once. */
Test(chat, repeated_fanout_job_delivered_once)
{
    it_skip_in_cluster("pushes fan-out jobs onto the one chatmi:{q}:fanout list; partitioned queue names are the "
                       "worker's");
    struct ws *a = it_open(it_port(), "alice", NULL);
    struct ws *b = it_open(it_port(), "bob", NULL);
    json_t *ack = it_dm(a, "1", "bob", "one");
    json_decref(ack);
    json_decref(it_deliv(b, "dm:alice:bob", 1));

    /* seq 1 again: fanned out already, so nothing */
    push_job(1, "m-one", "one");
    push_job(1, "m-one", "one");
    /* seq 50, never fanned out: exactly once */
    push_job(50, "m-fifty", "fifty");
    push_job(50, "m-fifty", "fifty");
    json_t *m = it_deliv(b, "dm:alice:bob", 50);
    cr_assert_str_eq(js(m, "text"), "fifty", "%s", jdump(m));
    json_decref(m);
    /* everything published before this round trip has arrived after it */
    json_decref(it_dm(a, "2", "bob", "two"));
    json_decref(it_deliv(b, "dm:alice:bob", 2));
    it_sync(b, "s1");
    int64_t one = 1, fifty = 50;
    cr_assert_eq(ws_backlog_count(b, match_seq, &one), 0, "seq 1 was delivered again");
    cr_assert_eq(ws_backlog_count(b, match_seq, &fifty), 0, "seq 50 was delivered twice");
    ws_free(a);
    ws_free(b);
}
