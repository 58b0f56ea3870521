/* Unit tests: worker/route.c (which slot each of the worker's commands goes
 * to on a Redis Cluster), and the key layout the routing relies on: every
 * key one command, transaction or script names shares one slot. */
#include <criterion/criterion.h>
#include <string.h>

#include "common/cluster.h"
#include "common/keys.h"
#include "worker/route.h"

#define PIN 4242u

static unsigned slot_of(const char *key)
{
    return cm_key_slot(key, strlen(key));
}

/* Routes a NULL-terminated argument list. */
static unsigned route(const char *const *argv)
{
    size_t lens[16];
    int argc = 0;
    for (; argv[argc] != NULL; argc++)
        lens[argc] = strlen(argv[argc]);
    return wk_route_slot(argc, argv, lens, PIN);
}

Test(route, a_command_goes_to_its_first_key)
{
    const char *rpush[] = {"RPUSH", "chatmi:{q}:fanout", "job", NULL};
    cr_assert_eq(route(rpush), slot_of("q"));
    const char *spublish[] = {"SPUBLISH", "chatmi:{u:alice}", "x", NULL};
    cr_assert_eq(route(spublish), slot_of("u:alice"));
    const char *lower[] = {"getbit", "chatmi:{c:dm:a:b}:fanned", "7", NULL};
    cr_assert_eq(route(lower), slot_of("c:dm:a:b"));
}

Test(route, scripts_go_to_keys_1)
{
    const char *send[] = {"EVALSHA", "0123456789012345678901234567890123456789", "3", "chatmi:{c:room:x}:seq",
                          "chatmi:{c:room:x}:log", "chatmi:{c:room:x}:members", "1", NULL};
    cr_assert_eq(route(send), slot_of("c:room:x"));
    const char *eval[] = {"eval", "return 1", "1", "chatmi:{q3.1}:inbound", NULL};
    cr_assert_eq(route(eval), slot_of("q3.1"));
    const char *nokeys[] = {"EVALSHA", "0123456789012345678901234567890123456789", "0", "arg", NULL};
    cr_assert_eq(route(nokeys), PIN);
}

Test(route, keyless_commands_go_to_the_pinned_slot)
{
    const char *const *cmds[] = {
        (const char *[]){"MULTI", NULL},          (const char *[]){"EXEC", NULL},
        (const char *[]){"ROLE", NULL},           (const char *[]){"WAIT", "1", "1000", NULL},
        (const char *[]){"SCRIPT", "LOAD", "return 1", NULL}, (const char *[]){"ping", NULL},
        (const char *[]){"CLUSTER", "SLOTS", NULL}, (const char *[]){"ASKING", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        cr_assert_eq(route(cmds[i]), PIN, "%s", cmds[i][0]);
    cr_assert_eq(wk_route_slot(0, NULL, NULL, PIN), PIN);
    const char *alone[] = {"GET", NULL};
    cr_assert_eq(route(alone), PIN);
}

/* A hand-off (MULTI, RPUSH next, LPUSH dead, DEL proc, EXEC) and the
 * heartbeat script name keys of one partition only. */
Test(route, a_partition_is_one_slot)
{
    for (unsigned n = 1; n <= CM_QUEUE_PARTITIONS_MAX; n *= 4) {
        for (unsigned p = 0; p < n; p++) {
            char tag[CM_QUEUE_TAG_MAX], k[CM_KEY_MAX];
            cm_queue_tag(tag, p, n);
            cm_key_queue_in(k, tag, "inbound");
            unsigned s = slot_of(k);
            const char *names[] = {"fanout", "workers", "dead"};
            for (size_t i = 0; i < 3; i++) {
                cm_key_queue_in(k, tag, names[i]);
                cr_assert_eq(slot_of(k), s, "%s", k);
            }
            cm_key_queue_proc_in(k, tag, "fanout", "some-worker-1");
            cr_assert_eq(slot_of(k), s, "%s", k);
            cm_key_queue_proc_in(k, tag, "inbound", "");
            cr_assert_eq(slot_of(k), s, "%s", k);
        }
    }
    char k[CM_KEY_MAX];
    cm_key_queue_in(k, "q", "inbound");
    cr_assert_str_eq(k, "chatmi:{q}:inbound"); /* one partition: today's keys */
}

/* The room fan-out script names the room channel in KEYS with the bitmap:
 * both must be in the conversation's slot. A DM's per-user channels are
 * not (hence the separate SPUBLISHes). */
Test(route, a_room_channel_shares_its_bitmaps_slot)
{
    const char *rooms[] = {"room:lobby", "room:a", "room:with:colons", "room:Ünïcode"};
    for (size_t i = 0; i < sizeof rooms / sizeof rooms[0]; i++) {
        char fanned[CM_KEY_MAX], chan[CM_KEY_MAX], seq[CM_KEY_MAX];
        cm_key_conv(fanned, rooms[i], "fanned");
        cm_key_conv(seq, rooms[i], "seq");
        cm_key_conv_channel(chan, rooms[i], strlen(rooms[i]));
        cr_assert_eq(slot_of(chan), slot_of(fanned), "%s", chan);
        cr_assert_eq(slot_of(seq), slot_of(fanned), "%s", seq);
    }
    char fanned[CM_KEY_MAX], alice[CM_KEY_MAX];
    cm_key_conv(fanned, "dm:alice:bob", "fanned");
    cm_key_user_channel(alice, "alice", 5);
    cr_assert_neq(slot_of(alice), slot_of(fanned));
}

Test(route, fanned_bits_match_the_scripts_ring)
{
    cr_assert_eq(wk_fanned_bit(0, 0), 0);
    cr_assert_eq(wk_fanned_bit(1, 0), 64);
    cr_assert_eq(wk_fanned_bit(1, 63), 127);
    cr_assert_eq(wk_fanned_bit(4096, 0), 0); /* 4096 * 64 = the ring */
    cr_assert_eq(wk_fanned_bit(4097, 5), 69);
    cr_assert_lt(wk_fanned_bit(123456789, 17), WK_FANNED_RING);
}

Test(route, partition_lists)
{
    unsigned char take[8];
    char err[160];
    cr_assert_eq(wk_partitions_parse("all", 8, take, err, sizeof err), 8);
    cr_assert_eq(wk_partitions_parse("", 8, take, err, sizeof err), 8);
    cr_assert_eq(wk_partitions_parse("0-2,6", 8, take, err, sizeof err), 4);
    const unsigned char want[8] = {1, 1, 1, 0, 0, 0, 1, 0};
    cr_assert_arr_eq(take, want, 8);
    cr_assert_eq(wk_partitions_parse("7", 8, take, err, sizeof err), 1);
    cr_assert_eq(take[7], 1);
    cr_assert_eq(take[0], 0);
    cr_assert_eq(wk_partitions_parse("3-3", 8, take, err, sizeof err), 1);
}

Test(route, bad_partition_lists_say_why)
{
    static const struct {
        const char *s, *why;
    } bad[] = {
        {"8", "does not exist"},     {"0-8", "does not exist"}, {"3-1", "backwards"},
        {"1,1", "named twice"},      {"0-2,2", "named twice"},  {"x", "expected all"},
        {"1,", "expected all"},      {",1", "expected all"},    {"1-", "expected all"},
        {"-1", "expected all"},      {"1 2", "expected all"},   {"0001", "expected all"},
        {"1;2", "expected all"},     {"ALL", "expected all"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char take[8];
        char err[160] = "";
        cr_assert_eq(wk_partitions_parse(bad[i].s, 8, take, err, sizeof err), -1, "accepted \"%s\"", bad[i].s);
        cr_assert(strstr(err, bad[i].why) != NULL, "\"%s\": %s", bad[i].s, err);
    }
}
