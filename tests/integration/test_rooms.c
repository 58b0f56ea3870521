/* test_rooms.c: room messages travel on one channel per room (gateway
 * children with members subscribe to it), so a room message costs one
 * PUBLISH however many members it has; membership follows joins and
 * leaves made on any gateway; a member that may have missed a message
 * around its join is told to resync.
 *
 * Gateway 0 and 1 have two children each; gateway 2 and 3 one child each,
 * so the membership cases below know which child holds which session. The
 * gap cases publish membership elements the way a worker does (envelope.h)
 * with chosen seqs: the race they stand for cannot be timed from outside.
 *
 * Under CHATMI_IT_REDIS=cluster the Redis-side counts add up every node
 * (a message may go out as PUBLISH or as sharded SPUBLISH on its slot's
 * owner; a subscription may be plain or sharded), and the membership
 * elements are published with SPUBLISH, as a worker in a cluster does. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdlib.h>
#include <string.h>

#include "itest.h"

static void rooms_init(void)
{
    it_redis_init();
    it_gateway_start(NULL);
    it_gateway_start(NULL);
    struct it_gw_conf one = {.processes = 1};
    it_gateway_start(&one);
    it_gateway_start(&one);
    it_worker_start(NULL);
}

TestSuite(rooms, .init = rooms_init, .fini = it_end, .timeout = 90);

/* The ports of the Redis nodes to count on: the one Redis, or every live
 * node of the cluster. Returns how many. */
static int count_ports(int *out, int max)
{
    if (!it_cluster_active()) {
        out[0] = it_redis_port();
        return 1;
    }
    int n = 0;
    for (int i = 0; i < it_cluster_nodes() && n < max; i++)
        if (it_cluster_alive(i))
            out[n++] = it_cluster_port(i);
    return n;
}

/* calls of a command on one node so far, from INFO commandstats */
static long long calls_on(int port, const char *cmd)
{
    char out[16384], needle[64];
    const char *args[] = {"INFO", "commandstats", NULL};
    cr_assert_eq(it_redis_cli(port, args, out, sizeof(out)), 0, "INFO: %s", out);
    snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", cmd);
    const char *p = strstr(out, needle);
    return p ? atoll(p + strlen(needle)) : 0;
}

/* calls of a command so far; "publish" counts SPUBLISH too in a cluster */
static long long cmd_calls(const char *cmd)
{
    int ports[16];
    int n = count_ports(ports, 16);
    long long sum = 0;
    for (int i = 0; i < n; i++) {
        sum += calls_on(ports[i], cmd);
        if (it_cluster_active() && strcmp(cmd, "publish") == 0)
            sum += calls_on(ports[i], "spublish");
    }
    return sum;
}

/* A delivery of conv/seq, or a resync (the same news for a client: fetch
 * history after). */
struct deliv_or_resync {
    const char *conv;
    int64_t seq;
};

static int match_deliv_or_resync(json_t *m, const void *arg)
{
    const struct deliv_or_resync *w = arg;
    const char *op = js(m, "op");
    if (strcmp(op, "resync") == 0)
        return 1;
    return strcmp(op, "message") == 0 && strcmp(js(m, "conv"), w->conv) == 0 && ji(m, "seq") == w->seq;
}

static void await_deliv_or_resync(struct ws *ws, const char *conv, int64_t seq)
{
    struct deliv_or_resync w = {conv, seq};
    json_t *m = ws_wait(ws, match_deliv_or_resync, &w, IT_WAIT);
    cr_assert_not_null(m, "%s: neither %s seq %lld nor a resync within %d ms", ws->name, conv, (long long)seq,
                       IT_WAIT);
    json_decref(m);
}

/* Subscribers of a channel on one node, from PUBSUB NUMSUB or SHARDNUMSUB. */
static long numsub_on(int port, const char *what, const char *chan)
{
    char out[256];
    const char *args[] = {"PUBSUB", what, chan, NULL};
    cr_assert_eq(it_redis_cli(port, args, out, sizeof(out)), 0, "PUBSUB: %s", out);
    const char *nl = strchr(out, '\n'); /* the channel's name, then the count */
    return nl != NULL ? atol(nl + 1) : -1;
}

/* Subscribers of a channel: in a cluster, plain and sharded ones on every
 * node (each subscription lives on the one node it was made on). */
static long numsub(const char *chan)
{
    if (!it_cluster_active())
        return numsub_on(it_redis_port(), "NUMSUB", chan);
    int ports[16];
    int n = count_ports(ports, 16);
    long sum = 0;
    for (int i = 0; i < n; i++)
        sum += numsub_on(ports[i], "NUMSUB", chan) + numsub_on(ports[i], "SHARDNUMSUB", chan);
    return sum;
}

static void redis_do(const char *const *args)
{
    char out[1024];
    cr_assert_eq(it_redis_cli(it_redis_port(), args, out, sizeof(out)), 0, "redis-cli %s: %s", args[0], out);
}

Test(rooms, one_publish_per_room_message)
{
    enum { MEMBERS = 12, MESSAGES = 5 };
    struct ws *m[MEMBERS];
    for (int i = 0; i < MEMBERS; i++) {
        char name[16], id[16];
        snprintf(name, sizeof(name), "m%02d", i);
        snprintf(id, sizeof(id), "j%d", i);
        m[i] = it_open(it_gw_port(i % 2), name, i % 3 == 0 ? IT_SUBPROTO_MSGPACK : NULL);
        it_join(m[i], id, "big");
    }
    it_sync(m[0], "s0");
    long long before = cmd_calls("publish");
    for (int k = 0; k < MESSAGES; k++) {
        char id[16], text[32];
        snprintf(id, sizeof(id), "x%d", k);
        snprintf(text, sizeof(text), "hello %d", k);
        json_decref(it_room_send(m[k % MEMBERS], id, "big", text));
    }
    for (int i = 0; i < MEMBERS; i++)
        for (int k = 1; k <= MESSAGES; k++)
            json_decref(it_deliv(m[i], "room:big", k));
    long long calls = cmd_calls("publish") - before;
    /* one ack and one room publish per message; a publish per member
     * would be MESSAGES * (MEMBERS + 1) */
    cr_assert_eq(calls, 2 * MESSAGES, "%lld PUBLISH calls for %d messages to %d members", calls, MESSAGES,
                 MEMBERS);
    for (int i = 0; i < MEMBERS; i++)
        ws_free(m[i]);
}

Test(rooms, join_and_leave_reach_other_gateways)
{
    struct ws *a0 = it_open(it_gw_port(2), "alice", NULL);
    struct ws *a1 = it_open(it_gw_port(3), "alice", NULL);
    struct ws *c = it_open(it_gw_port(0), "carol", NULL);
    it_join(c, "c1", "shared");
    it_join(a1, "a1", "shared"); /* on gateway 3; gateway 2 learns of it from the reply */
    json_decref(it_room_send(c, "c2", "shared", "both alice sessions"));
    json_decref(it_deliv(a1, "room:shared", 1));
    /* gateway 2 learnt of the join from the reply and subscribed on its own
     * time: the message, or a resync if it was published before that */
    await_deliv_or_resync(a0, "room:shared", 1);

    json_decref(it_req_op(a1, json_pack("{s:s,s:s,s:s}", "op", "leave", "id", "a2", "room", "shared"), "left"));
    json_decref(it_room_send(c, "c3", "shared", "alice has left"));
    json_decref(it_deliv(c, "room:shared", 2));
    it_sync(a0, "s1");
    it_sync(a1, "s2");
    cr_assert_eq(ws_backlog_count(a0, ws_match_op, "message"), 0, "alice's other session still gets the room");
    cr_assert_eq(ws_backlog_count(a1, ws_match_op, "message"), 0, "the leaving session still gets the room");
    ws_free(a0);
    ws_free(a1);
    ws_free(c);
}

Test(rooms, reconnect_restores_membership)
{
    struct ws *b = it_open(it_gw_port(2), "bert", NULL);
    struct ws *d = it_open(it_gw_port(3), "dora", NULL);
    it_join(b, "b1", "club");
    it_join(d, "d1", "club");
    ws_free(b);
    /* a new session of bert, on a child that has never seen him */
    b = it_open(it_gw_port(3), "bert", NULL);
    json_decref(it_room_send(d, "d2", "club", "welcome back"));
    json_t *msg = it_deliv(b, "room:club", 1);
    cr_assert_str_eq(js(msg, "text"), "welcome back");
    json_decref(msg);
    ws_free(b);
    ws_free(d);
}

/* Publishes on user's channel what a worker sends with a join reply: the
 * reply for no session in particular and the element ["+", conv, seq]. */
static void publish_join(const char *user, const char *room, int seq)
{
    char chan[128], conv[80];
    snprintf(chan, sizeof(chan), "chatmi:{u:%s}", user);
    int clen = snprintf(conv, sizeof(conv), "room:%s", room);
    /* {"op":"joined","room":room,"conv":conv} */
    unsigned char msg[256];
    size_t n = 0;
    msg[n++] = 0x83;
    msg[n++] = 0xa2, memcpy(msg + n, "op", 2), n += 2;
    msg[n++] = 0xa6, memcpy(msg + n, "joined", 6), n += 6;
    msg[n++] = 0xa4, memcpy(msg + n, "room", 4), n += 4;
    msg[n++] = (unsigned char)(0xa0 | strlen(room)), memcpy(msg + n, room, strlen(room)), n += strlen(room);
    msg[n++] = 0xa4, memcpy(msg + n, "conv", 4), n += 4;
    msg[n++] = (unsigned char)(0xa0 | clen), memcpy(msg + n, conv, (size_t)clen), n += (size_t)clen;
    /* [nil, bin msg, ["+", conv, seq]]: no NUL byte for seq >= 1 */
    cr_assert(seq >= 1 && seq < 128 && clen < 32);
    char rec[512];
    size_t r = 0;
    rec[r++] = (char)0x93;
    rec[r++] = (char)0xc0;
    rec[r++] = (char)0xc4, rec[r++] = (char)n, memcpy(rec + r, msg, n), r += n;
    rec[r++] = (char)0x93;
    rec[r++] = (char)0xa1, rec[r++] = '+';
    rec[r++] = (char)(0xa0 | clen), memcpy(rec + r, conv, (size_t)clen), r += (size_t)clen;
    rec[r++] = (char)seq;
    rec[r] = '\0';
    cr_assert_eq(strlen(rec), r, "the record holds a NUL byte");
    /* in a cluster, sharded pub/sub: redis-cli -c takes it to the slot's owner */
    const char *args[] = {it_cluster_active() ? "SPUBLISH" : "PUBLISH", chan, rec, NULL};
    redis_do(args);
}

/* After a round trip on ws, whether a resync arrived before it. */
static int got_resync(struct ws *ws, const char *sync_id)
{
    it_sync(ws, sync_id);
    return ws_backlog_count(ws, ws_match_op, "resync") > 0;
}

Test(rooms, join_behind_a_seen_message_resyncs)
{
    /* gateway 2 has one child: dan's session keeps room:seen's channel
     * flowing there, and it has delivered seq 1..3 */
    struct ws *dan = it_open(it_gw_port(2), "dan", NULL);
    struct ws *eve = it_open(it_gw_port(2), "eve", NULL);
    it_join(dan, "d1", "seen");
    for (int k = 1; k <= 3; k++) {
        char id[8];
        snprintf(id, sizeof(id), "d%d", k + 1);
        json_decref(it_room_send(dan, id, "seen", "before eve"));
        json_decref(it_deliv(dan, "room:seen", k));
    }
    /* joined when the room was at seq 3: nothing missed */
    publish_join("eve", "seen", 3);
    cr_assert(!got_resync(eve, "e1"), "resync although nothing was missed");
    ws_free(eve);

    /* joined at seq 2 while the child had delivered 3: 3 may be missed */
    struct ws *fay = it_open(it_gw_port(2), "fay", NULL);
    publish_join("fay", "seen", 2);
    json_t *r = ws_wait_op(fay, "resync", IT_WAIT);
    cr_assert_not_null(r, "no resync for a member that joined behind a delivered message");
    cr_assert_str_eq(js(r, "reason"), "subscription_interrupted");
    json_decref(r);
    ws_free(fay);
    ws_free(dan);
}

Test(rooms, join_to_a_new_channel_checks_the_room_seq)
{
    /* gateway 3 has one child and no member of room:fresh */
    struct ws *x = it_open(it_gw_port(0), "xena", NULL);
    it_join(x, "x1", "fresh");
    for (int k = 1; k <= 4; k++) {
        char id[8];
        snprintf(id, sizeof(id), "x%d", k + 1);
        json_decref(it_room_send(x, id, "fresh", "early"));
    }
    struct ws *g = it_open(it_gw_port(3), "gus", NULL);
    publish_join("gus", "fresh", 4); /* the child subscribes the room's channel */
    int64_t deadline = it_mono_ms() + IT_WAIT;
    while (numsub("chatmi:{c:room:fresh}") < 2 && it_mono_ms() < deadline)
        it_pause_ms(10); /* polled: Redis's own count is the only sign */
    cr_assert_eq(numsub("chatmi:{c:room:fresh}"), 2, "gateway 3 did not subscribe room:fresh");
    /* the child now delivers the room to gus (a resync instead is allowed:
     * its seq check may read the room after this message) */
    json_decref(it_room_send(x, "x9", "fresh", "for gus"));
    await_deliv_or_resync(g, "room:fresh", 5);
    ws_free(g);

    struct ws *h = it_open(it_gw_port(3), "hal", NULL);
    /* gus's session is gone, so is the channel on gateway 3: a new one */
    publish_join("hal", "fresh", 2);
    json_t *r = ws_wait_op(h, "resync", IT_WAIT);
    cr_assert_not_null(r, "no resync although the room moved past the join's seq before the subscription");
    json_decref(r);
    ws_free(h);
    ws_free(x);
}

Test(rooms, joined_reply_waits_for_the_room_channel)
{
    /* a room no child has subscribed yet: the joined reply comes only once
     * this child's subscription to it is confirmed, so a send right after
     * "joined" cannot be published before anyone here listens */
    for (int k = 0; k < 5; k++) {
        char user[16], room[16], id[16], chan[64];
        snprintf(user, sizeof(user), "ivy%d", k);
        snprintf(room, sizeof(room), "instant%d", k);
        snprintf(id, sizeof(id), "i%d", k);
        snprintf(chan, sizeof(chan), "chatmi:{c:room:%s}", room);
        struct ws *w = it_open(it_gw_port(2), user, NULL);
        it_join(w, id, room);
        long subs = numsub(chan);
        cr_assert_eq(subs, 1, "joined arrived while %s had %ld subscribers", chan, subs);
        json_decref(it_room_send(w, "s", room, "right after joining"));
        json_decref(it_deliv(w, NULL, 1));
        ws_free(w);
    }
}
