/* Unit tests: common/ids.c */
#include <criterion/criterion.h>
#include <string.h>

#include "common/ids.h"

#define U8(s) ((const unsigned char *)(s)), (sizeof(s) - 1)

Test(ids, valid_user_accepts_alphabet_and_lengths)
{
    char max[CM_USER_MAX + 1];
    memset(max, 'a', CM_USER_MAX);
    cr_assert(cm_valid_user("alice", 5));
    cr_assert(cm_valid_user("A-Z_a.z-09", 10));
    cr_assert(cm_valid_user("x", 1));
    cr_assert(cm_valid_user(max, CM_USER_MAX));
    cr_assert_not(cm_valid_user(max, CM_USER_MAX + 1));
    cr_assert_not(cm_valid_user("", 0));
    cr_assert_not(cm_valid_user(NULL, 3));
}

Test(ids, valid_user_rejects_other_bytes)
{
    const char *bad[] = {"a b", "a:b", "a/b", "a@b", "a\x00" "b", "caf\xc3\xa9", "a{b}", "a\nb", "a+b", "a*"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = i == 4 ? 3 : strlen(bad[i]);
        cr_assert_not(cm_valid_user(bad[i], n), "accepted bad[%zu]", i);
        cr_assert_not(cm_valid_room(bad[i], n), "room accepted bad[%zu]", i);
    }
}

Test(ids, valid_room_same_rule)
{
    char max[CM_ROOM_MAX + 2];
    memset(max, 'r', sizeof(max));
    cr_assert(cm_valid_room("general", 7));
    cr_assert(cm_valid_room(max, CM_ROOM_MAX));
    cr_assert_not(cm_valid_room(max, CM_ROOM_MAX + 1));
    cr_assert_not(cm_valid_room("", 0));
}

Test(ids, utf8_accepts_well_formed)
{
    cr_assert(cm_utf8_valid(U8("")));
    cr_assert(cm_utf8_valid(U8("plain ascii")));
    cr_assert(cm_utf8_valid(U8("caf\xc3\xa9")));               /* U+00E9 */
    cr_assert(cm_utf8_valid(U8("\xc2\x80")));                  /* U+0080, smallest 2-byte */
    cr_assert(cm_utf8_valid(U8("\xdf\xbf")));                  /* U+07FF */
    cr_assert(cm_utf8_valid(U8("\xe0\xa0\x80")));              /* U+0800 */
    cr_assert(cm_utf8_valid(U8("\xe2\x82\xac")));              /* euro */
    cr_assert(cm_utf8_valid(U8("\xed\x9f\xbf")));              /* U+D7FF, just below surrogates */
    cr_assert(cm_utf8_valid(U8("\xee\x80\x80")));              /* U+E000, just above */
    cr_assert(cm_utf8_valid(U8("\xef\xbf\xbf")));              /* U+FFFF */
    cr_assert(cm_utf8_valid(U8("\xf0\x90\x80\x80")));          /* U+10000 */
    cr_assert(cm_utf8_valid(U8("\xf0\x9f\x98\x80")));          /* emoji */
    cr_assert(cm_utf8_valid(U8("\xf4\x8f\xbf\xbf")));          /* U+10FFFF */
    cr_assert(cm_utf8_valid((const unsigned char *)"a\0b", 3)); /* NUL is a code point */
}

Test(ids, utf8_rejects_overlongs)
{
    cr_assert_not(cm_utf8_valid(U8("\xc0\x80")));         /* overlong NUL */
    cr_assert_not(cm_utf8_valid(U8("\xc1\xbf")));
    cr_assert_not(cm_utf8_valid(U8("\xc0\xaf")));         /* overlong '/' */
    cr_assert_not(cm_utf8_valid(U8("\xe0\x80\xaf")));
    cr_assert_not(cm_utf8_valid(U8("\xe0\x9f\xbf")));     /* overlong U+07FF */
    cr_assert_not(cm_utf8_valid(U8("\xf0\x80\x80\xaf")));
    cr_assert_not(cm_utf8_valid(U8("\xf0\x8f\xbf\xbf"))); /* overlong U+FFFF */
}

Test(ids, utf8_rejects_surrogates)
{
    cr_assert_not(cm_utf8_valid(U8("\xed\xa0\x80")));             /* U+D800 */
    cr_assert_not(cm_utf8_valid(U8("\xed\xbf\xbf")));             /* U+DFFF */
    cr_assert_not(cm_utf8_valid(U8("\xed\xa0\xbd\xed\xb8\x80"))); /* CESU-8 pair */
}

Test(ids, utf8_rejects_above_10ffff_and_invalid_leads)
{
    cr_assert_not(cm_utf8_valid(U8("\xf4\x90\x80\x80"))); /* U+110000 */
    cr_assert_not(cm_utf8_valid(U8("\xf5\x80\x80\x80")));
    cr_assert_not(cm_utf8_valid(U8("\xf7\xbf\xbf\xbf")));
    cr_assert_not(cm_utf8_valid(U8("\xf8\x88\x80\x80\x80"))); /* 5-byte form */
    cr_assert_not(cm_utf8_valid(U8("\xfc\x84\x80\x80\x80\x80")));
    cr_assert_not(cm_utf8_valid(U8("\xfe")));
    cr_assert_not(cm_utf8_valid(U8("\xff")));
    cr_assert_not(cm_utf8_valid(U8("\x80")));      /* lone continuation */
    cr_assert_not(cm_utf8_valid(U8("a\xbf" "b")));
}

Test(ids, utf8_rejects_truncated_sequences)
{
    cr_assert_not(cm_utf8_valid(U8("\xc3")));
    cr_assert_not(cm_utf8_valid(U8("\xe2\x82")));
    cr_assert_not(cm_utf8_valid(U8("\xf0\x9f\x98")));
    cr_assert_not(cm_utf8_valid(U8("\xe2\x82" "a")));   /* interrupted by ASCII */
    cr_assert_not(cm_utf8_valid(U8("\xf0\x9f\x98\x41")));
    cr_assert_not(cm_utf8_valid(U8("ok\xc3")));
    /* every proper prefix of a 4-byte sequence is invalid; the whole is valid */
    const unsigned char emoji[] = {0xf0, 0x9f, 0x98, 0x80};
    for (size_t n = 1; n < 4; n++)
        cr_assert_not(cm_utf8_valid(emoji, n), "prefix %zu accepted", n);
    cr_assert(cm_utf8_valid(emoji, 4));
}

Test(ids, conv_dm_orders_by_bytes)
{
    char out[CM_CONV_MAX + 1];
    cr_assert_eq(cm_conv_dm("bob", 3, "alice", 5, out), strlen("dm:alice:bob"));
    cr_assert_str_eq(out, "dm:alice:bob");
    cm_conv_dm("alice", 5, "bob", 3, out);
    cr_assert_str_eq(out, "dm:alice:bob");
    cm_conv_dm("ab", 2, "a", 1, out); /* prefix sorts first */
    cr_assert_str_eq(out, "dm:a:ab");
    cm_conv_dm("a", 1, "B", 1, out); /* byte order: uppercase first */
    cr_assert_str_eq(out, "dm:B:a");
    cm_conv_dm("me", 2, "me", 2, out);
    cr_assert_str_eq(out, "dm:me:me");
}

Test(ids, conv_dm_longest_fits)
{
    char a[CM_USER_MAX], b[CM_USER_MAX], out[CM_CONV_MAX + 1];
    memset(a, 'a', sizeof(a));
    memset(b, 'b', sizeof(b));
    cr_assert_eq(cm_conv_dm(b, sizeof(b), a, sizeof(a), out), CM_CONV_MAX);
    cr_assert_eq(out[CM_CONV_MAX], '\0');
    char a2[CM_USER_MAX + 1], b2[CM_USER_MAX + 1];
    cr_assert_eq(cm_conv_parse(out, CM_CONV_MAX, a2, b2), CM_CONV_DM);
    cr_assert_eq(strlen(a2), CM_USER_MAX);
}

Test(ids, conv_room)
{
    char out[CM_CONV_MAX + 1];
    cr_assert_eq(cm_conv_room("general", 7, out), 12);
    cr_assert_str_eq(out, "room:general");
}

Test(ids, conv_parse_valid)
{
    char a[CM_USER_MAX + 1], b[CM_USER_MAX + 1];
    cr_assert_eq(cm_conv_parse("room:general", 12, a, b), CM_CONV_ROOM);
    cr_assert_str_eq(a, "general");
    cr_assert_str_eq(b, "");
    cr_assert_eq(cm_conv_parse("dm:alice:bob", 12, a, b), CM_CONV_DM);
    cr_assert_str_eq(a, "alice");
    cr_assert_str_eq(b, "bob");
    cr_assert_eq(cm_conv_parse("dm:me:me", 8, a, b), CM_CONV_DM);
}

Test(ids, conv_parse_invalid)
{
    char a[CM_USER_MAX + 1], b[CM_USER_MAX + 1];
    const char *bad[] = {
        "",           "room:",       "room",          "room:a b",     "dm:",      "dm:alice",
        "dm:alice:",  "dm::bob",     "dm:bob:alice",  "dm:a:b:c",     "DM:a:b",   "chan:x",
        "room:x:y",   " room:x",     "dm:alice:bob ", "dm:a\xc3\xa9:b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(cm_conv_parse(bad[i], strlen(bad[i]), a, b), CM_CONV_INVALID, "accepted \"%s\"", bad[i]);
    char longroom[5 + CM_ROOM_MAX + 1];
    memcpy(longroom, "room:", 5);
    memset(longroom + 5, 'x', CM_ROOM_MAX + 1);
    cr_assert_eq(cm_conv_parse(longroom, sizeof(longroom), a, b), CM_CONV_INVALID);
    cr_assert_eq(cm_conv_parse(longroom, sizeof(longroom) - 1, a, b), CM_CONV_ROOM);
    /* the length given is what counts, not a NUL */
    cr_assert_eq(cm_conv_parse("room:ab", 6, a, b), CM_CONV_ROOM);
    cr_assert_str_eq(a, "a");
}
