/* Unit tests: common/keys.c */
#include <criterion/criterion.h>
#include <string.h>

#include "common/keys.h"

Test(keys, names_match_the_layout)
{
    char k[CM_KEY_MAX];
    cr_assert_eq(cm_key_conv(k, "room:general", "seq"), strlen("chatmi:{c:room:general}:seq"));
    cr_assert_str_eq(k, "chatmi:{c:room:general}:seq");
    cm_key_conv(k, "dm:alice:bob", "log");
    cr_assert_str_eq(k, "chatmi:{c:dm:alice:bob}:log");
    cm_key_idem(k, "room:general", "alice", "42xyz", 2);
    cr_assert_str_eq(k, "chatmi:{c:room:general}:idem:alice:42");
    cm_key_user(k, "alice", "convs");
    cr_assert_str_eq(k, "chatmi:{u:alice}:convs");
    cr_assert_eq(cm_key_user_channel(k, "alice-and-more", 5), strlen("chatmi:{u:alice}"));
    cr_assert_str_eq(k, "chatmi:{u:alice}");
    cm_key_node_alive(k, "g0123456789ab");
    cr_assert_str_eq(k, "chatmi:{n:g0123456789ab}:alive");
    cm_key_queue(k, "inbound");
    cr_assert_str_eq(k, "chatmi:{q}:inbound");
    size_t n = cm_key_queue_proc(k, "fanout", "host-1-abc");
    cr_assert_str_eq(k, "chatmi:{q}:fanout:proc:host-1-abc");
    cr_assert_eq(n, strlen(k));
}

Test(keys, idem_id_may_hold_any_bytes)
{
    char k[CM_KEY_MAX];
    size_t n = cm_key_idem(k, "room:r", "u", "a\0b", 3);
    cr_assert_eq(n, strlen("chatmi:{c:room:r}:idem:u:") + 3);
}

Test(keys, overlong_arguments_are_truncated_not_overflowed)
{
    char big[2 * CM_KEY_MAX];
    char k[CM_KEY_MAX];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(cm_key_queue(k, big), CM_KEY_MAX - 1);
    cr_assert_eq(strlen(k), CM_KEY_MAX - 1);
}

Test(keys, channel_user_roundtrip)
{
    char k[CM_KEY_MAX];
    const char *u = NULL;
    size_t ul = 0;
    size_t n = cm_key_user_channel(k, "bob.smith", 9);
    cr_assert(cm_key_channel_user(k, n, &u, &ul));
    cr_assert_eq(ul, 9);
    cr_assert_eq(memcmp(u, "bob.smith", 9), 0);
    cr_assert_eq(u, k + strlen("chatmi:{u:"));
}

Test(keys, channel_user_rejects_other_names)
{
    const char *bad[] = {"chatmi:{u:}",       "chatmi:{u:bob}:convs", "chatmi:{c:bob}", "chatmi:{u:bob",
                         "other:{u:bob}",     "chatmi:{u:b b}",       "chatmi:{u:",     "",
                         "chatmi:{u:bob}}"};
    const char *u;
    size_t ul;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(cm_key_channel_user(bad[i], strlen(bad[i]), &u, &ul), "accepted \"%s\"", bad[i]);
    /* the length bounds the name: a valid prefix is not enough */
    cr_assert_not(cm_key_channel_user("chatmi:{u:bob}", 13, &u, &ul));
}

Test(keys, channel_room_roundtrip)
{
    char k[CM_KEY_MAX];
    const char *c = NULL;
    size_t cl = 0;
    size_t n = cm_key_conv_channel(k, "room:lobby", 10);
    cr_assert_str_eq(k, "chatmi:{c:room:lobby}");
    cr_assert(cm_key_channel_room(k, n, &c, &cl));
    cr_assert_eq(cl, 10);
    cr_assert_eq(memcmp(c, "room:lobby", 10), 0);
}

Test(keys, channel_room_rejects_other_names)
{
    const char *bad[] = {"chatmi:{c:room:}",  "chatmi:{c:dm:a:b}", "chatmi:{u:room:x}", "chatmi:{c:room:x",
                         "chatmi:{c:room:x}:seq", "chatmi:{c:room:a b}", "chatmi:{c:", "", "chatmi:{c:room:x}}"};
    const char *c;
    size_t cl;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(cm_key_channel_room(bad[i], strlen(bad[i]), &c, &cl), "accepted \"%s\"", bad[i]);
    /* and a room channel is not a user channel */
    const char *u;
    size_t ul;
    cr_assert_not(cm_key_channel_user("chatmi:{c:room:x}", 17, &u, &ul));
}
