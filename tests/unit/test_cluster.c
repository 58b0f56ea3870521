/* Unit tests: common/cluster.c (slots, slot map, redirections, partitions).
 * Expected slots are what a real Redis answers to CLUSTER KEYSLOT. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "common/cluster.h"
#include "common/keys.h"

static unsigned slot_of(const char *key)
{
    return cm_key_slot(key, strlen(key));
}

Test(cluster, crc16_and_slots_match_redis)
{
    cr_assert_eq(cm_crc16("123456789", 9), 0x31C3); /* the cluster spec's check value */
    cr_assert_eq(slot_of("foo"), 12182);
    cr_assert_eq(slot_of("bar"), 5061);
    cr_assert_eq(slot_of(""), 0);
}

Test(cluster, hash_tags_follow_the_spec)
{
    cr_assert_eq(slot_of("{user1000}.following"), slot_of("user1000"));
    cr_assert_eq(slot_of("foo{}{bar}"), slot_of("foo{}{bar}")); /* empty tag: the whole key */
    cr_assert_neq(slot_of("foo{}{bar}"), slot_of("bar"));
    cr_assert_eq(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    cr_assert_eq(slot_of("foo{bar}{zap}"), slot_of("bar"));
    cr_assert_eq(slot_of("{open"), cm_crc16("{open", 5) & 16383);
    /* every key of one conversation, and its channel, share one slot */
    char a[CM_KEY_MAX], b[CM_KEY_MAX], c[CM_KEY_MAX];
    size_t na = cm_key_conv(a, "room:general", "seq");
    size_t nb = cm_key_idem(b, "room:general", "alice", "x1", 2);
    size_t nc = cm_key_conv_channel(c, "room:general", strlen("room:general"));
    cr_assert_eq(cm_key_slot(a, na), cm_key_slot(b, nb));
    cr_assert_eq(cm_key_slot(a, na), cm_key_slot(c, nc));
    na = cm_key_user(a, "alice", "rooms");
    nc = cm_key_user_channel(c, "alice", 5);
    cr_assert_eq(cm_key_slot(a, na), cm_key_slot(c, nc));
}

static redisReply *parse_resp(const char *text)
{
    redisReader *r = redisReaderCreate();
    cr_assert_not_null(r);
    cr_assert_eq(redisReaderFeed(r, text, strlen(text)), REDIS_OK);
    void *reply = NULL;
    cr_assert_eq(redisReaderGetReply(r, &reply), REDIS_OK);
    cr_assert_not_null(reply, "incomplete RESP in the test");
    redisReaderFree(r);
    return reply;
}

/* Two masters with one replica each, as CLUSTER SLOTS shows them; the
 * second master's host is empty (cluster-preferred-endpoint-type unknown). */
#define SLOTS_TWO_MASTERS                                                                                            \
    "*2\r\n"                                                                                                        \
    "*4\r\n:0\r\n:8191\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$3\r\nid0\r\n*3\r\n$9\r\n127.0.0.1\r\n:7003\r\n$3\r\nid3\r\n" \
    "*3\r\n:8192\r\n:16383\r\n*3\r\n$0\r\n\r\n:7001\r\n$3\r\nid1\r\n"

Test(cluster, slot_map_from_cluster_slots)
{
    static struct cm_slot_map m;
    char err[128];
    struct cm_redis_addr asked = {"10.0.0.9", 7001};
    redisReply *r = parse_resp(SLOTS_TWO_MASTERS);
    cr_assert_eq(cm_slot_map_parse(&m, r, &asked, err, sizeof(err)), 0, "%s", err);
    freeReplyObject(r);
    cr_assert_eq(m.nnodes, 2);
    cr_assert_eq(cm_slot_map_uncovered(&m), 0);
    const struct cm_cluster_node *n = cm_slot_map_node(&m, 0);
    cr_assert_str_eq(n->addr.host, "127.0.0.1");
    cr_assert_eq(n->addr.port, 7000);
    cr_assert_str_eq(n->id, "id0");
    n = cm_slot_map_node(&m, 16383);
    cr_assert_str_eq(n->addr.host, "10.0.0.9", "an empty host is the node asked");
    cr_assert_eq(n->addr.port, 7001);
    cr_assert_eq(cm_slot_map_node(&m, 8191), cm_slot_map_node(&m, 0));
    cr_assert_null(cm_slot_map_node(&m, CM_SLOTS));
    struct cm_redis_addr a7001 = {"10.0.0.9", 7001}, nowhere = {"127.0.0.1", 1};
    cr_assert_eq(cm_slot_map_find(&m, &a7001), 1);
    cr_assert_eq(cm_slot_map_find(&m, &nowhere), -1);
}

Test(cluster, partial_coverage_is_counted)
{
    static struct cm_slot_map m;
    char err[128];
    redisReply *r = parse_resp("*1\r\n*3\r\n:100\r\n:199\r\n*2\r\n$1\r\nh\r\n:1\r\n");
    cr_assert_eq(cm_slot_map_parse(&m, r, NULL, err, sizeof(err)), 0, "%s", err);
    freeReplyObject(r);
    cr_assert_eq(cm_slot_map_uncovered(&m), CM_SLOTS - 100);
    cr_assert_null(cm_slot_map_node(&m, 99));
    cr_assert_not_null(cm_slot_map_node(&m, 150));
}

Test(cluster, bad_slot_maps_are_refused_with_a_reason)
{
    static struct cm_slot_map m;
    static const char *const bad[] = {
        "-ERR This instance has cluster support disabled\r\n",
        ":1\r\n",
        "*0\r\n",                                                 /* nothing served */
        "*1\r\n*2\r\n:0\r\n:1\r\n",                               /* no master */
        "*1\r\n*3\r\n:5\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n",        /* end before start */
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n",    /* slot out of range */
        "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:70000\r\n",    /* bad port */
        "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$0\r\n\r\n:7000\r\n",      /* empty host, nobody asked */
        "*1\r\n*3\r\n$1\r\n0\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n",   /* slot as a string */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[128] = "";
        redisReply *r = parse_resp(bad[i]);
        cr_assert_eq(cm_slot_map_parse(&m, r, NULL, err, sizeof(err)), -1, "case %zu accepted", i);
        cr_assert(strncmp(err, "CLUSTER SLOTS", 13) == 0, "case %zu: %s", i, err);
        freeReplyObject(r);
    }
}

Test(cluster, single_node_serves_every_slot)
{
    static struct cm_slot_map m;
    struct cm_redis_addr a = {"127.0.0.1", 6379};
    cm_slot_map_single(&m, &a);
    cr_assert_eq(m.nnodes, 1);
    cr_assert_eq(cm_slot_map_uncovered(&m), 0);
    cr_assert_eq(cm_slot_map_node(&m, 12345)->addr.port, 6379);
}

static enum cm_redirect redirect(const char *s, unsigned *slot, struct cm_redis_addr *to)
{
    return cm_redirect_parse(s, strlen(s), slot, to);
}

Test(cluster, redirections)
{
    unsigned slot = 0;
    struct cm_redis_addr to;
    cr_assert_eq(redirect("MOVED 3999 127.0.0.1:6381", &slot, &to), CM_REDIRECT_MOVED);
    cr_assert_eq(slot, 3999);
    cr_assert_str_eq(to.host, "127.0.0.1");
    cr_assert_eq(to.port, 6381);
    cr_assert_eq(redirect("ASK 16383 redis-a.example:7000", &slot, &to), CM_REDIRECT_ASK);
    cr_assert_eq(slot, 16383);
    cr_assert_str_eq(to.host, "redis-a.example");
    cr_assert_eq(redirect("MOVED 1 ::1:7000", &slot, &to), CM_REDIRECT_MOVED);
    cr_assert_str_eq(to.host, "::1");
    cr_assert_eq(redirect("MOVED 1 [::1]:7000", &slot, &to), CM_REDIRECT_MOVED);
    cr_assert_str_eq(to.host, "::1");
    static const char *const bad[] = {"MOVED", "MOVED 1", "MOVED x 127.0.0.1:1", "MOVED 16384 h:1", "MOVED 1 h",
                                      "MOVED 1 h:", "MOVED 1 :7000", "MOVED 1 h:70000", "MOVED 1 h:7x", "ASK 1  ",
                                      "ERR unknown command", "MOVED 1234567 h:1", "TRYAGAIN Multiple keys request"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(redirect(bad[i], &slot, &to), CM_REDIRECT_NONE, "accepted \"%s\"", bad[i]);
}

Test(cluster, one_partition_keeps_the_single_queue)
{
    char tag[CM_QUEUE_TAG_MAX], k[CM_KEY_MAX];
    cm_queue_tag(tag, 0, 1);
    cr_assert_str_eq(tag, "q");
    cm_key_queue_in(k, tag, "inbound");
    cr_assert_str_eq(k, "chatmi:{q}:inbound");
    cm_key_queue_proc_in(k, tag, "fanout", "w1");
    cr_assert_str_eq(k, "chatmi:{q}:fanout:proc:w1");
    cr_assert_eq(cm_queue_partition("alice", 5, 1), 0);
}

/* Partition p lands in the p-th of n equal slot ranges, so with m masters
 * holding equal ranges and n a multiple of m each master gets n / m. */
Test(cluster, partitions_spread_evenly_over_equal_slot_ranges)
{
    static const unsigned counts[] = {2, 3, 4, 6, 8, 12, 16, 64, 256};
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        unsigned n = counts[c];
        unsigned per_master[3] = {0, 0, 0};
        char seen[CM_QUEUE_PARTITIONS_MAX][CM_QUEUE_TAG_MAX];
        for (unsigned p = 0; p < n; p++) {
            char tag[CM_QUEUE_TAG_MAX], k1[CM_KEY_MAX], k2[CM_KEY_MAX];
            cm_queue_tag(tag, p, n);
            unsigned s = cm_key_slot(tag, strlen(tag));
            cr_assert(s >= p * CM_SLOTS / n && s < (p + 1) * CM_SLOTS / n, "n=%u p=%u tag %s slot %u", n, p, tag, s);
            /* a partition's keys share its slot: one MULTI or script each */
            size_t l1 = cm_key_queue_in(k1, tag, "inbound");
            size_t l2 = cm_key_queue_proc_in(k2, tag, "inbound", "w-1");
            cr_assert_eq(cm_key_slot(k1, l1), s);
            cr_assert_eq(cm_key_slot(k2, l2), s);
            for (unsigned q = 0; q < p; q++)
                cr_assert_str_neq(seen[q], tag);
            snprintf(seen[p], sizeof(seen[p]), "%s", tag);
            /* redis-cli --cluster create's ranges for 3 masters */
            per_master[s <= 5460 ? 0 : s <= 10922 ? 1 : 2]++;
        }
        if (n % 3 == 0)
            for (int m = 0; m < 3; m++)
                cr_assert_eq(per_master[m], n / 3, "n=%u master %d holds %u", n, m, per_master[m]);
    }
}

Test(cluster, users_spread_over_partitions_and_stay_put)
{
    unsigned hits[8] = {0};
    for (int i = 0; i < 8000; i++) {
        char u[32];
        int len = snprintf(u, sizeof(u), "user%d", i);
        unsigned p = cm_queue_partition(u, (size_t)len, 8);
        cr_assert_lt(p, 8);
        cr_assert_eq(cm_queue_partition(u, (size_t)len, 8), p);
        hits[p]++;
    }
    for (int p = 0; p < 8; p++)
        cr_assert(hits[p] > 800 && hits[p] < 1200, "partition %d got %u of 8000 users", p, hits[p]);
}
