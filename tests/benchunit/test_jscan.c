/* The allocation-free JSON walker on the server messages the bench reads. */
#include <criterion/criterion.h>
#include <string.h>

#include "bench/jscan.h"

static int member(const char *js, const char *key, struct bn_jval *out)
{
    struct bn_jiter it;
    struct bn_jval k, v;
    int r;
    if (bn_json_object(&it, js, strlen(js)) < 0)
        return -1;
    while ((r = bn_json_next_member(&it, &k, &v)) > 0)
        if (k.len == strlen(key) && memcmp(k.s, key, k.len) == 0) {
            *out = v;
            return 1;
        }
    return r;
}

Test(jscan, members_of_a_message)
{
    const char *js = "{\"op\":\"message\",\"conv\":\"room:r\",\"seq\":18,\"msg\":\"5c1e\",\"from\":\"a\","
                     "\"text\":\"t=123;j=4;xx\",\"ts\":1732300000123}";
    struct bn_jval v;
    int64_t n;
    cr_assert_eq(member(js, "op", &v), 1);
    cr_assert(bn_jval_is(&v, "message"));
    cr_assert_eq(member(js, "seq", &v), 1);
    cr_assert_eq(v.type, BN_J_NUMBER);
    cr_assert_eq(bn_jval_int(&v, &n), 0);
    cr_assert_eq(n, 18);
    cr_assert_eq(member(js, "text", &v), 1);
    cr_assert_eq(v.len, 12);
    cr_assert_eq(memcmp(v.s, "t=123;j=4;xx", 12), 0);
    cr_assert_eq(member(js, "ts", &v), 1);
    cr_assert_eq(bn_jval_int(&v, &n), 0);
    cr_assert_eq(n, 1732300000123LL);
    cr_assert_eq(member(js, "nope", &v), 0);
}

Test(jscan, nested_values_are_skipped_whole_and_can_be_opened)
{
    const char *js = " { \"op\" : \"history\" , \"messages\" : [ {\"seq\":1,\"text\":\"a]}\\\"\"},"
                     "{\"seq\":2,\"n\":[1,{\"x\":null}],\"ok\":true} ] , \"id\":\"h\" } ";
    struct bn_jval v, e, k, val;
    cr_assert_eq(member(js, "id", &v), 1, "the member after a nested array is found");
    cr_assert(bn_jval_is(&v, "h"));
    cr_assert_eq(member(js, "messages", &v), 1);
    cr_assert_eq(v.type, BN_J_ARRAY);
    struct bn_jiter arr, obj;
    cr_assert_eq(bn_json_array(&arr, v.s, v.len), 0);
    int64_t seqs[4];
    int n = 0;
    while (bn_json_next_elem(&arr, &e) > 0) {
        cr_assert_eq(e.type, BN_J_OBJECT);
        cr_assert_eq(bn_json_object(&obj, e.s, e.len), 0);
        while (bn_json_next_member(&obj, &k, &val) > 0)
            if (k.len == 3 && memcmp(k.s, "seq", 3) == 0)
                cr_assert_eq(bn_jval_int(&val, &seqs[n]), 0);
        n++;
    }
    cr_assert_eq(n, 2);
    cr_assert_eq(seqs[0], 1);
    cr_assert_eq(seqs[1], 2);
}

Test(jscan, empty_object_and_array)
{
    struct bn_jiter it;
    struct bn_jval k, v;
    cr_assert_eq(bn_json_object(&it, "{}", 2), 0);
    cr_assert_eq(bn_json_next_member(&it, &k, &v), 0);
    cr_assert_eq(bn_json_next_member(&it, &k, &v), 0, "stays at the end");
    cr_assert_eq(bn_json_array(&it, " [ ] ", 5), 0);
    cr_assert_eq(bn_json_next_elem(&it, &v), 0);
}

Test(jscan, malformed_input_is_an_error_not_a_crash)
{
    const char *bad[] = {
        "{\"op\":\"x\"",        /* unterminated */
        "{\"op\" \"x\"}",       /* no colon */
        "{\"op\":\"x\",}",      /* trailing comma */
        "{,\"op\":1}",          /* leading comma */
        "{\"op\":[1,2}",        /* mismatched bracket */
        "{\"op\":\"a\nb\"}",    /* control character in a string */
        "{op:1}",               /* unquoted key */
        "{\"op\":tru}",         /* bad literal */
        "{\"a\":1 \"b\":2}",    /* missing comma */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct bn_jiter it;
        struct bn_jval k, v;
        int r = 0;
        if (bn_json_object(&it, bad[i], strlen(bad[i])) < 0)
            continue;
        while ((r = bn_json_next_member(&it, &k, &v)) > 0)
            ;
        cr_assert_eq(r, -1, "%s", bad[i]);
    }
    struct bn_jiter it;
    cr_assert_eq(bn_json_object(&it, "[1]", 3), -1);
    cr_assert_eq(bn_json_array(&it, "{}", 2), -1);
}

Test(jscan, integers)
{
    struct bn_jval v = {BN_J_NUMBER, "-42", 3};
    int64_t n;
    cr_assert_eq(bn_jval_int(&v, &n), 0);
    cr_assert_eq(n, -42);
    struct bn_jval f = {BN_J_NUMBER, "4.5", 3};
    cr_assert_eq(bn_jval_int(&f, &n), -1);
    struct bn_jval s = {BN_J_STRING, "42", 2};
    cr_assert_eq(bn_jval_int(&s, &n), -1);
}
