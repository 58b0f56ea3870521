/* test_ssub.c: SSUBSCRIBE grouping by (link, slot) and the reply FIFO of a
 * subscription link, fed real RESP bytes through hiredis's reader, whole
 * and one byte at a time. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "common/cluster.h"
#include "gateway/ssub.h"

TestSuite(group, .timeout = 20);
TestSuite(fifo, .timeout = 20);

Test(group, runs_of_equal_keys_keep_their_order)
{
    const uint32_t keys[] = {5, 3, 5, 9, 3, 5, UINT32_MAX, 3};
    size_t order[8], starts[9];
    size_t g = gw_ssub_group(keys, 8, order, starts);
    cr_assert_eq(g, 4);
    const size_t want[] = {1, 4, 7, 0, 2, 5, 3, 6};
    for (size_t i = 0; i < 8; i++)
        cr_assert_eq(order[i], want[i], "order[%zu] = %zu", i, order[i]);
    const size_t wstarts[] = {0, 3, 6, 7, 8};
    for (size_t i = 0; i <= g; i++)
        cr_assert_eq(starts[i], wstarts[i]);
}

Test(group, empty_and_single)
{
    size_t order[1], starts[2];
    cr_assert_eq(gw_ssub_group(NULL, 0, order, starts), 0);
    cr_assert_eq(starts[0], 0);
    const uint32_t k = 7;
    cr_assert_eq(gw_ssub_group(&k, 1, order, starts), 1);
    cr_assert_eq(starts[1], 1);
}

Test(group, channels_of_one_group_share_a_slot_and_link)
{
    /* 300 user channels over two links split at slot 8192: every group one
     * slot, and every channel in exactly one group */
    enum { N = 300 };
    char names[N][32];
    uint32_t keys[N];
    for (int i = 0; i < N; i++) {
        int n = snprintf(names[i], sizeof(names[i]), "chatmi:{u:user%d}", i % 120);
        unsigned slot = cm_key_slot(names[i], (size_t)n);
        keys[i] = gw_ssub_key(slot < 8192 ? 0 : 1, slot);
    }
    size_t order[N], starts[N + 1];
    size_t g = gw_ssub_group(keys, N, order, starts);
    cr_assert(g >= 100 && g <= 120, "%zu groups for 120 distinct users", g);
    int seen[N] = {0};
    for (size_t k = 0; k < g; k++) {
        unsigned slot = cm_key_slot(names[order[starts[k]]], strlen(names[order[starts[k]]]));
        for (size_t i = starts[k]; i < starts[k + 1]; i++) {
            cr_assert_eq(cm_key_slot(names[order[i]], strlen(names[order[i]])), slot);
            seen[order[i]]++;
        }
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(seen[i], 1);
}

/* Feeds bytes (whole, or byte by byte) and classifies every reply. */
static size_t feed(struct gw_ssub_fifo *f, const char *bytes, int bytewise, enum gw_ssub_event *ev,
                   struct gw_ssub_result *res, char (*chans)[64], size_t max)
{
    redisReader *rd = redisReaderCreate();
    size_t n = 0, len = strlen(bytes);
    for (size_t off = 0; off < len;) {
        size_t step = bytewise ? 1 : len;
        cr_assert_eq(redisReaderFeed(rd, bytes + off, step), REDIS_OK);
        off += step;
        void *r;
        while (redisReaderGetReply(rd, &r) == REDIS_OK && r != NULL) {
            cr_assert(n < max);
            ev[n] = gw_ssub_classify(f, r, &res[n]);
            snprintf(chans[n], 64, "%.*s", (int)res[n].channel_len, res[n].channel ? res[n].channel : "");
            res[n].channel = NULL; /* points into r */
            res[n].payload = NULL;
            res[n].error = NULL;
            n++;
            freeReplyObject(r);
        }
    }
    redisReaderFree(rd);
    return n;
}

static void script(int bytewise)
{
    struct gw_ssub_fifo f = {0};
    cr_assert_eq(gw_ssub_fifo_push(&f, GW_SSUB_AUTH, 0, 0, NULL, 0), 0);
    cr_assert_eq(gw_ssub_fifo_push(&f, GW_SSUB_PING, 0, 0, NULL, 0), 0);
    cr_assert_eq(gw_ssub_fifo_push(&f, GW_SSUB_SUB, 42, 2, NULL, 0), 0);
    cr_assert_eq(gw_ssub_fifo_push(&f, GW_SSUB_SUB, 77, 1, NULL, 0), 0);
    cr_assert_eq(gw_ssub_fifo_push(&f, GW_SSUB_UNSUB, 0, 0, "chatmi:{u:b}", 12), 0);
    cr_assert_eq(gw_ssub_fifo_push(&f, GW_SSUB_UNSUB, 0, 0, "chatmi:{u:c}", 12), 0);
    const char *bytes = "+OK\r\n"
                        "+PONG\r\n"
                        "*3\r\n$10\r\nssubscribe\r\n$12\r\nchatmi:{u:a}\r\n:1\r\n"
                        "*3\r\n$8\r\nsmessage\r\n$12\r\nchatmi:{u:a}\r\n$3\r\nxyz\r\n"
                        "*3\r\n$10\r\nssubscribe\r\n$12\r\nchatmi:{u:b}\r\n:2\r\n"
                        "-MOVED 77 127.0.0.1:7002\r\n"
                        "*3\r\n$12\r\nsunsubscribe\r\n$12\r\nchatmi:{u:a}\r\n:1\r\n"
                        "*3\r\n$12\r\nsunsubscribe\r\n$12\r\nchatmi:{u:b}\r\n:0\r\n"
                        "-MOVED 1 127.0.0.1:7003\r\n";
    enum gw_ssub_event ev[16];
    struct gw_ssub_result res[16];
    char chans[16][64];
    size_t n = feed(&f, bytes, bytewise, ev, res, chans, 16);
    cr_assert_eq(n, 9);
    const enum gw_ssub_event want[] = {GW_SSUB_EV_AUTH_OK,    GW_SSUB_EV_PONG,       GW_SSUB_EV_SUBSCRIBED,
                                       GW_SSUB_EV_MESSAGE,    GW_SSUB_EV_SUBSCRIBED, GW_SSUB_EV_SUB_FAILED,
                                       GW_SSUB_EV_DROPPED,    GW_SSUB_EV_UNSUBSCRIBED, GW_SSUB_EV_UNSUBSCRIBED};
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ev[i], want[i], "reply %zu: event %d, want %d", i, ev[i], want[i]);
    cr_assert_str_eq(chans[2], "chatmi:{u:a}");
    cr_assert_eq(res[2].slot, 42);
    cr_assert_eq(res[5].slot, 77, "the refusal names its group's slot");
    cr_assert_str_eq(chans[6], "chatmi:{u:a}", "unsolicited: Redis dropped a");
    cr_assert_str_eq(chans[7], "chatmi:{u:b}");
    cr_assert_str_eq(chans[8], "chatmi:{u:c}", "a refused SUNSUBSCRIBE names its channel");
    cr_assert_eq(f.n, 0, "every entry answered");
    gw_ssub_fifo_clear(&f);
}

Test(fifo, a_scripted_session)
{
    script(0);
}

Test(fifo, a_scripted_session_byte_by_byte)
{
    script(1);
}

/* One Redis (redis://, sentinel) speaks plain pub/sub on the same link:
 * SUBSCRIBE / UNSUBSCRIBE, answered by subscribe / message / unsubscribe. */
Test(fifo, plain_pubsub_replies)
{
    struct gw_ssub_fifo f = {0};
    cr_assert_eq(gw_ssub_fifo_push(&f, GW_SSUB_PING, 0, 0, NULL, 0), 0);
    cr_assert_eq(gw_ssub_fifo_push(&f, GW_SSUB_SUB, 0, 2, NULL, 0), 0);
    cr_assert_eq(gw_ssub_fifo_push(&f, GW_SSUB_UNSUB, 0, 0, "chatmi:{u:a}", 12), 0);
    const char *bytes = "+PONG\r\n"
                        "*3\r\n$9\r\nsubscribe\r\n$12\r\nchatmi:{u:a}\r\n:1\r\n"
                        "*3\r\n$7\r\nmessage\r\n$12\r\nchatmi:{u:a}\r\n$2\r\nhi\r\n"
                        "*3\r\n$9\r\nsubscribe\r\n$12\r\nchatmi:{u:b}\r\n:2\r\n"
                        "*3\r\n$11\r\nunsubscribe\r\n$12\r\nchatmi:{u:a}\r\n:1\r\n"
                        "*3\r\n$8\r\nxmessage\r\n$12\r\nchatmi:{u:b}\r\n$2\r\nhi\r\n";
    enum gw_ssub_event ev[8];
    struct gw_ssub_result res[8];
    char chans[8][64];
    cr_assert_eq(feed(&f, bytes, 0, ev, res, chans, 8), 6);
    const enum gw_ssub_event want[] = {GW_SSUB_EV_PONG,       GW_SSUB_EV_SUBSCRIBED,   GW_SSUB_EV_MESSAGE,
                                       GW_SSUB_EV_SUBSCRIBED, GW_SSUB_EV_UNSUBSCRIBED, GW_SSUB_EV_MALFORMED};
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(ev[i], want[i], "reply %zu: event %d, want %d", i, ev[i], want[i]);
    cr_assert_str_eq(chans[2], "chatmi:{u:a}");
    cr_assert_str_eq(chans[4], "chatmi:{u:a}");
    cr_assert_eq(f.n, 0, "every entry answered");
    gw_ssub_fifo_clear(&f);
}

Test(fifo, replies_to_nothing_are_malformed)
{
    struct gw_ssub_fifo f = {0};
    enum gw_ssub_event ev[4];
    struct gw_ssub_result res[4];
    char chans[4][64];
    cr_assert_eq(feed(&f, "+OK\r\n", 0, ev, res, chans, 4), 1);
    cr_assert_eq(ev[0], GW_SSUB_EV_MALFORMED);
    cr_assert_eq(feed(&f, "*3\r\n$10\r\nssubscribe\r\n$1\r\nx\r\n:1\r\n", 0, ev, res, chans, 4), 1);
    cr_assert_eq(ev[0], GW_SSUB_EV_MALFORMED, "a confirmation nobody asked for");
    cr_assert_eq(feed(&f, "*2\r\n$8\r\nsmessage\r\n$1\r\nx\r\n", 0, ev, res, chans, 4), 1);
    cr_assert_eq(ev[0], GW_SSUB_EV_MALFORMED, "a message without payload");
    cr_assert_eq(feed(&f, ":5\r\n", 0, ev, res, chans, 4), 1);
    cr_assert_eq(ev[0], GW_SSUB_EV_MALFORMED);
    cr_assert_eq(gw_ssub_fifo_push(&f, GW_SSUB_PING, 0, 0, NULL, 0), 0);
    cr_assert_eq(feed(&f, "*2\r\n$4\r\npong\r\n$0\r\n\r\n", 0, ev, res, chans, 4), 1);
    cr_assert_eq(ev[0], GW_SSUB_EV_PONG, "PING in subscribed mode");
    gw_ssub_fifo_clear(&f);
}

Test(fifo, the_ring_grows_past_its_first_size)
{
    struct gw_ssub_fifo f = {0};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(gw_ssub_fifo_push(&f, GW_SSUB_SUB, (unsigned)i, 1, NULL, 0), 0);
    enum gw_ssub_event ev[64];
    struct gw_ssub_result res[64];
    char chans[64][64];
    const char *one = "*3\r\n$10\r\nssubscribe\r\n$1\r\nx\r\n:1\r\n";
    cr_assert_eq(feed(&f, one, 0, ev, res, chans, 64), 1); /* head moves: the ring wraps below */
    for (int i = 5; i < 40; i++)
        cr_assert_eq(gw_ssub_fifo_push(&f, GW_SSUB_SUB, (unsigned)i, 1, NULL, 0), 0);
    for (int i = 1; i < 40; i++) {
        cr_assert_eq(feed(&f, one, 0, ev, res, chans, 64), 1);
        cr_assert_eq(ev[0], GW_SSUB_EV_SUBSCRIBED);
        cr_assert_eq(res[0].slot, (unsigned)i, "entry %d answered out of order", i);
    }
    cr_assert_eq(f.n, 0);
    gw_ssub_fifo_clear(&f);
}
