/* Unit tests: common/proto.c */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "common/proto.h"
#include "tests/support/twin.h"

#define MAXTEXT 4096

static enum cm_err dec_json(const char *s, struct cm_request *r, char *msg, size_t msglen)
{
    return cm_request_decode(CM_ENC_JSON, s, strlen(s), MAXTEXT, r, msg, msglen);
}

/* Decodes s as JSON and as its MessagePack twin; both must agree. The
 * msgpack buffer is returned in sb (strings point into it) for inspection. */
static enum cm_err dec_both(const char *s, struct cm_request *r, msgpack_sbuffer *sb, char *msg, size_t msglen)
{
    struct cm_request r2;
    char msg2[256];
    json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
    cr_assert_not_null(j, "test input is not JSON: %s", s);
    twin_pack_json(sb, j);
    json_decref(j);

    enum cm_err e1 = dec_json(s, r, msg, msglen);
    enum cm_err e2 = cm_request_decode(CM_ENC_MSGPACK, sb->data, sb->size, MAXTEXT, &r2, msg2, sizeof(msg2));
    cr_assert_eq(e1, e2, "json %d vs msgpack %d for %s (%s / %s)", e1, e2, s, msg, msg2);
    cr_assert_eq(r->op, r2.op);
    cr_assert_eq(r->id.len, r2.id.len);
    cr_assert_eq(r->nusers, r2.nusers);
    cr_assert_eq(r->limit, r2.limit);
    cr_assert_eq(r->text.len, r2.text.len);
    if (r->text.p)
        cr_assert_eq(memcmp(r->text.p, r2.text.p, r->text.len), 0);
    cm_request_free(&r2);
    return e1;
}

static int str_is(struct cm_str s, const char *want)
{
    return s.p != NULL && s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static void ok(const char *s, struct cm_request *r, msgpack_sbuffer *sb)
{
    char msg[256] = "";
    cr_assert_eq(dec_both(s, r, sb, msg, sizeof(msg)), CM_ERR_NONE, "%s: %s", s, msg);
}

static void bad(const char *s, enum cm_err want, const char *needle)
{
    struct cm_request r;
    msgpack_sbuffer sb;
    char msg[256] = "";
    cr_assert_eq(dec_both(s, &r, &sb, msg, sizeof(msg)), want, "%s", s);
    cr_assert_neq(msg[0], '\0', "no message for %s", s);
    if (needle)
        cr_assert_not_null(strstr(msg, needle), "\"%s\" lacks \"%s\" (input %s)", msg, needle, s);
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
}

Test(proto, err_codes)
{
    cr_assert_str_eq(cm_err_code(CM_ERR_BAD_REQUEST), "bad_request");
    cr_assert_str_eq(cm_err_code(CM_ERR_FORBIDDEN), "forbidden");
    cr_assert_str_eq(cm_err_code(CM_ERR_NOT_FOUND), "not_found");
    cr_assert_str_eq(cm_err_code(CM_ERR_TOO_LARGE), "too_large");
    cr_assert_str_eq(cm_err_code(CM_ERR_RATE_LIMITED), "rate_limited");
    cr_assert_str_eq(cm_err_code(CM_ERR_UNAVAILABLE), "unavailable");
    cr_assert_str_eq(cm_err_code(CM_ERR_INTERNAL), "internal");
    cr_assert_str_eq(cm_err_code((enum cm_err)99), "internal");
}

Test(proto, send_dm)
{
    struct cm_request r;
    msgpack_sbuffer sb;
    ok("{\"op\":\"send\",\"id\":\"1\",\"to\":\"bob\",\"text\":\"hi\"}", &r, &sb);
    cr_assert_eq(r.op, CM_OP_SEND);
    cr_assert(str_is(r.id, "1"));
    cr_assert(str_is(r.to, "bob"));
    cr_assert_null(r.room.p);
    cr_assert(str_is(r.text, "hi"));
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
}

Test(proto, send_room_unicode_and_unknown_fields)
{
    struct cm_request r;
    msgpack_sbuffer sb;
    ok("{\"op\":\"send\",\"room\":\"general\",\"text\":\"h\\u00e9 \xf0\x9f\x98\x80\",\"extra\":[1,{\"x\":null}],"
       "\"to\":null}",
       &r, &sb);
    cr_assert(str_is(r.room, "general"));
    cr_assert_null(r.to.p);
    cr_assert_null(r.id.p);
    cr_assert(str_is(r.text, "h\xc3\xa9 \xf0\x9f\x98\x80"));
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
}

Test(proto, join_leave_convs)
{
    struct cm_request r;
    msgpack_sbuffer sb;
    ok("{\"op\":\"join\",\"id\":\"3\",\"room\":\"general\"}", &r, &sb);
    cr_assert_eq(r.op, CM_OP_JOIN);
    cr_assert(str_is(r.room, "general"));
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
    ok("{\"op\":\"leave\",\"id\":\"4\",\"room\":\"a.b-c_d\"}", &r, &sb);
    cr_assert_eq(r.op, CM_OP_LEAVE);
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
    ok("{\"op\":\"convs\",\"id\":\"6\"}", &r, &sb);
    cr_assert_eq(r.op, CM_OP_CONVS);
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
}

Test(proto, history)
{
    struct cm_request r;
    msgpack_sbuffer sb;
    ok("{\"op\":\"history\",\"id\":\"5\",\"conv\":\"room:general\",\"after\":10,\"limit\":50}", &r, &sb);
    cr_assert_eq(r.op, CM_OP_HISTORY);
    cr_assert(str_is(r.conv, "room:general"));
    cr_assert(r.has_after);
    cr_assert_not(r.has_before);
    cr_assert_eq(r.after, 10);
    cr_assert_eq(r.limit, 50);
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);

    ok("{\"op\":\"history\",\"conv\":\"dm:alice:bob\",\"before\":0}", &r, &sb);
    cr_assert(r.has_before);
    cr_assert_eq(r.before, 0);
    cr_assert_eq(r.limit, CM_HISTORY_LIMIT_DEFAULT);
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);

    ok("{\"op\":\"history\",\"conv\":\"room:x\",\"limit\":201}", &r, &sb);
    cr_assert_eq(r.limit, CM_HISTORY_LIMIT_MAX);
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
    ok("{\"op\":\"history\",\"conv\":\"room:x\",\"limit\":1}", &r, &sb);
    cr_assert_eq(r.limit, 1);
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
    ok("{\"op\":\"history\",\"conv\":\"room:x\",\"limit\":9223372036854775807}", &r, &sb);
    cr_assert_eq(r.limit, CM_HISTORY_LIMIT_MAX);
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
}

Test(proto, presence)
{
    struct cm_request r;
    msgpack_sbuffer sb;
    ok("{\"op\":\"presence\",\"id\":\"7\",\"users\":[\"bob\",\"carol\"]}", &r, &sb);
    cr_assert_eq(r.op, CM_OP_PRESENCE);
    cr_assert_eq(r.nusers, 2);
    cr_assert(str_is(r.users[0], "bob"));
    cr_assert(str_is(r.users[1], "carol"));
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);

    char big[2048] = "{\"op\":\"presence\",\"users\":[";
    for (int i = 0; i < CM_PRESENCE_USERS_MAX; i++)
        strcat(big, i ? ",\"u\"" : "\"u\"");
    strcat(big, "]}");
    ok(big, &r, &sb);
    cr_assert_eq(r.nusers, CM_PRESENCE_USERS_MAX);
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
    big[strlen(big) - 2] = '\0';
    strcat(big, ",\"u\"]}");
    bad(big, CM_ERR_BAD_REQUEST, "1 to 100");
}

Test(proto, bad_envelope_level)
{
    struct cm_request r;
    char msg[256] = "";
    cr_assert_eq(dec_json("", &r, msg, sizeof(msg)), CM_ERR_BAD_REQUEST);
    cr_assert_not_null(strstr(msg, "JSON"), "%s", msg);
    cm_request_free(&r);
    cr_assert_eq(dec_json("{\"op\":\"convs\"", &r, msg, sizeof(msg)), CM_ERR_BAD_REQUEST);
    cm_request_free(&r);
    cr_assert_eq(dec_json("{\"op\":\"convs\"} {}", &r, msg, sizeof(msg)), CM_ERR_BAD_REQUEST);
    cm_request_free(&r);
    cr_assert_eq(dec_json("{\"op\":\"convs\",\"op\":\"convs\"}", &r, msg, sizeof(msg)), CM_ERR_BAD_REQUEST);
    cm_request_free(&r);
    cr_assert_eq(dec_json("{\"op\":\"send\",\"to\":\"b\",\"text\":\"\xc3\"}", &r, msg, sizeof(msg)),
                 CM_ERR_BAD_REQUEST); /* invalid UTF-8 inside JSON */
    cm_request_free(&r);
    bad("[1,2]", CM_ERR_BAD_REQUEST, "object");
    bad("\"convs\"", CM_ERR_BAD_REQUEST, NULL);
    bad("{}", CM_ERR_BAD_REQUEST, "op is required");
    bad("{\"op\":5}", CM_ERR_BAD_REQUEST, "unknown op");
    bad("{\"op\":\"shout\"}", CM_ERR_BAD_REQUEST, "unknown op");
    bad("{\"op\":\"SEND\"}", CM_ERR_BAD_REQUEST, "unknown op");
}

Test(proto, bad_id)
{
    char id65[100] = "{\"op\":\"convs\",\"id\":\"";
    for (int i = 0; i < 65; i++)
        strcat(id65, "x");
    strcat(id65, "\"}");
    bad(id65, CM_ERR_BAD_REQUEST, "id must be a string of 1 to 64 bytes");
    bad("{\"op\":\"convs\",\"id\":\"\"}", CM_ERR_BAD_REQUEST, "id");
    bad("{\"op\":\"convs\",\"id\":7}", CM_ERR_BAD_REQUEST, "id");
    bad("{\"op\":\"convs\",\"id\":[\"a\"]}", CM_ERR_BAD_REQUEST, "id");
    /* 64 bytes is fine, even when it is 16 four-byte characters */
    struct cm_request r;
    msgpack_sbuffer sb;
    char id64[200] = "{\"op\":\"convs\",\"id\":\"";
    for (int i = 0; i < 16; i++)
        strcat(id64, "\xf0\x9f\x98\x80");
    strcat(id64, "\"}");
    ok(id64, &r, &sb);
    cr_assert_eq(r.id.len, 64);
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
}

Test(proto, id_is_kept_for_the_error_reply)
{
    struct cm_request r;
    char msg[256];
    cr_assert_eq(dec_json("{\"op\":\"join\",\"id\":\"abc\",\"room\":\"no spaces\"}", &r, msg, sizeof(msg)),
                 CM_ERR_BAD_REQUEST);
    cr_assert(str_is(r.id, "abc"));
    cr_assert_str_eq(msg, "room must be 1-64 characters of A-Z a-z 0-9 _ . -");
    cm_request_free(&r);
    cr_assert_eq(dec_json("{\"op\":\"nope\",\"id\":\"q\"}", &r, msg, sizeof(msg)), CM_ERR_BAD_REQUEST);
    cr_assert(str_is(r.id, "q"));
    cm_request_free(&r);
}

Test(proto, bad_send)
{
    bad("{\"op\":\"send\",\"text\":\"hi\"}", CM_ERR_BAD_REQUEST, "exactly one of to");
    bad("{\"op\":\"send\",\"to\":\"bob\",\"room\":\"r\",\"text\":\"hi\"}", CM_ERR_BAD_REQUEST, "exactly one of to");
    bad("{\"op\":\"send\",\"to\":\"bo b\",\"text\":\"hi\"}", CM_ERR_BAD_REQUEST, "to must be 1-64");
    bad("{\"op\":\"send\",\"to\":\"\",\"text\":\"hi\"}", CM_ERR_BAD_REQUEST, "to must be");
    bad("{\"op\":\"send\",\"to\":42,\"text\":\"hi\"}", CM_ERR_BAD_REQUEST, "to must be");
    bad("{\"op\":\"send\",\"room\":\"a/b\",\"text\":\"hi\"}", CM_ERR_BAD_REQUEST, "room must be 1-64 characters");
    bad("{\"op\":\"send\",\"to\":\"bob\"}", CM_ERR_BAD_REQUEST, "text is required");
    bad("{\"op\":\"send\",\"to\":\"bob\",\"text\":\"\"}", CM_ERR_BAD_REQUEST, "text must not be empty");
    bad("{\"op\":\"send\",\"to\":\"bob\",\"text\":5}", CM_ERR_BAD_REQUEST, "text must be a string");
    bad("{\"op\":\"send\",\"to\":\"bob\",\"text\":[\"hi\"]}", CM_ERR_BAD_REQUEST, "text must be a string");
    char room65[200] = "{\"op\":\"send\",\"text\":\"x\",\"room\":\"";
    for (int i = 0; i < 65; i++)
        strcat(room65, "r");
    strcat(room65, "\"}");
    bad(room65, CM_ERR_BAD_REQUEST, "room must be");
}

Test(proto, text_size_limit)
{
    static char big[MAXTEXT + 100];
    struct cm_request r;
    msgpack_sbuffer sb;
    char msg[256] = "";
    int n = sprintf(big, "{\"op\":\"send\",\"to\":\"bob\",\"text\":\"");
    memset(big + n, 'x', MAXTEXT);
    strcpy(big + n + MAXTEXT, "\"}");
    ok(big, &r, &sb); /* exactly the limit */
    cr_assert_eq(r.text.len, MAXTEXT);
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
    memset(big + n, 'x', MAXTEXT + 1);
    strcpy(big + n + MAXTEXT + 1, "\"}");
    cr_assert_eq(dec_both(big, &r, &sb, msg, sizeof(msg)), CM_ERR_TOO_LARGE);
    cr_assert_not_null(strstr(msg, "4096"), "%s", msg);
    cm_request_free(&r);
    msgpack_sbuffer_destroy(&sb);
    /* the limit counts bytes, not characters */
    cr_assert_eq(cm_request_decode(CM_ENC_JSON, "{\"op\":\"send\",\"to\":\"b\",\"text\":\"\xc3\xa9\xc3\xa9\"}", 36,
                                   3, &r, msg, sizeof(msg)),
                 CM_ERR_TOO_LARGE);
    cm_request_free(&r);
}

Test(proto, bad_join_history_presence)
{
    bad("{\"op\":\"join\"}", CM_ERR_BAD_REQUEST, "room is required");
    bad("{\"op\":\"join\",\"room\":\"\"}", CM_ERR_BAD_REQUEST, "room must be");
    bad("{\"op\":\"leave\",\"room\":{}}", CM_ERR_BAD_REQUEST, "room must be");
    bad("{\"op\":\"history\"}", CM_ERR_BAD_REQUEST, "conv is required");
    bad("{\"op\":\"history\",\"conv\":\"general\"}", CM_ERR_BAD_REQUEST, "conv must be");
    bad("{\"op\":\"history\",\"conv\":\"dm:bob:alice\"}", CM_ERR_BAD_REQUEST, "byte order");
    bad("{\"op\":\"history\",\"conv\":\"room:x\",\"after\":1,\"before\":5}", CM_ERR_BAD_REQUEST, "not both");
    bad("{\"op\":\"history\",\"conv\":\"room:x\",\"after\":-1}", CM_ERR_BAD_REQUEST, "after must be");
    bad("{\"op\":\"history\",\"conv\":\"room:x\",\"after\":1.5}", CM_ERR_BAD_REQUEST, "after must be");
    bad("{\"op\":\"history\",\"conv\":\"room:x\",\"after\":\"10\"}", CM_ERR_BAD_REQUEST, "after must be");
    bad("{\"op\":\"history\",\"conv\":\"room:x\",\"before\":true}", CM_ERR_BAD_REQUEST, "before must be");
    bad("{\"op\":\"history\",\"conv\":\"room:x\",\"limit\":0}", CM_ERR_BAD_REQUEST, "limit must be");
    bad("{\"op\":\"history\",\"conv\":\"room:x\",\"limit\":-5}", CM_ERR_BAD_REQUEST, "limit must be");
    bad("{\"op\":\"history\",\"conv\":\"room:x\",\"limit\":10.0}", CM_ERR_BAD_REQUEST, "limit must be");
    bad("{\"op\":\"presence\"}", CM_ERR_BAD_REQUEST, "users is required");
    bad("{\"op\":\"presence\",\"users\":[]}", CM_ERR_BAD_REQUEST, "1 to 100");
    bad("{\"op\":\"presence\",\"users\":\"bob\"}", CM_ERR_BAD_REQUEST, "1 to 100");
    bad("{\"op\":\"presence\",\"users\":[\"bob\",7]}", CM_ERR_BAD_REQUEST, "users[1]");
    bad("{\"op\":\"presence\",\"users\":[\"bob\",\"a:b\"]}", CM_ERR_BAD_REQUEST, "users[1]");
}

/* ---- MessagePack-only cases ---- */

static enum cm_err dec_mp(msgpack_sbuffer *sb, struct cm_request *r, char *msg, size_t msglen)
{
    return cm_request_decode(CM_ENC_MSGPACK, sb->data, sb->size, MAXTEXT, r, msg, msglen);
}

static void mp_send_text(msgpack_packer *pk, int bin, const char *text, size_t len)
{
    msgpack_pack_map(pk, 3);
    cm_pack_str(pk, "op");
    cm_pack_str(pk, "send");
    cm_pack_str(pk, "to");
    cm_pack_str(pk, "bob");
    cm_pack_str(pk, "text");
    if (bin)
        msgpack_pack_bin_with_body(pk, text, len);
    else
        cm_pack_strn(pk, text, len);
}

Test(proto, msgpack_text_rules)
{
    const struct {
        int bin;
        const char *text;
        size_t len;
        enum cm_err want;
    } cases[] = {
        {0, "hi", 2, CM_ERR_NONE},
        {1, "hi", 2, CM_ERR_BAD_REQUEST},             /* bin is not text */
        {0, "\xc0\xaf", 2, CM_ERR_BAD_REQUEST},       /* overlong */
        {0, "\xed\xa0\x80", 3, CM_ERR_BAD_REQUEST},   /* surrogate */
        {0, "ok\xf0\x9f", 4, CM_ERR_BAD_REQUEST},     /* truncated */
        {0, "\xf4\x90\x80\x80", 4, CM_ERR_BAD_REQUEST},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        struct cm_request r;
        char msg[256] = "";
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        mp_send_text(&pk, cases[i].bin, cases[i].text, cases[i].len);
        cr_assert_eq(dec_mp(&sb, &r, msg, sizeof(msg)), cases[i].want, "case %zu: %s", i, msg);
        if (cases[i].want == CM_ERR_NONE)
            cr_assert(r.text.p >= sb.data && r.text.p < sb.data + sb.size, "zero-copy");
        cm_request_free(&r);
        msgpack_sbuffer_destroy(&sb);
    }
}

Test(proto, msgpack_structure_rules)
{
    struct {
        const char *data;
        size_t len;
        const char *needle;
    } cases[] = {
#define B(lit) lit, sizeof(lit) - 1
        {B("\x91\xa2op"), "map"},                                   /* an array */
        {B("\x81\x01\xa5" "convs"), "keys must be strings"},        /* int key */
        {B("\x81\xc4\x02op\xa5" "convs"), "keys must be strings"}, /* bin key */
        {B("\x82\xa2op\xa5" "convs\xa2op\xa5" "convs"), "duplicate"},
        {B("\x81\xa2op\xc4\x05" "convs"), "unknown op"},            /* op as bin */
        {B("\x82\xa2op\xa5" "convs\xa2id\xc4\x01x"), "id"},         /* id as bin */
        {B("\x82\xa2op\xa5" "convs\xa2id\xa1\xff"), "id"},          /* id not UTF-8 */
        {B("\x81\xa2op"), "MessagePack"},                            /* truncated */
        {B("\x81\xa2op\xa5" "convs\xc0"), "trailing"},
        {"", 0, "MessagePack"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cm_request r;
        char msg[256] = "";
        cr_assert_eq(cm_request_decode(CM_ENC_MSGPACK, cases[i].data, cases[i].len, MAXTEXT, &r, msg, sizeof(msg)),
                     CM_ERR_BAD_REQUEST, "case %zu", i);
        cr_assert_not_null(strstr(msg, cases[i].needle), "case %zu: \"%s\" lacks \"%s\"", i, msg, cases[i].needle);
        cm_request_free(&r);
    }
    /* positive ints above int64 are not a valid seq; limit is capped though */
    struct cm_request r;
    char msg[256];
    static const char after_huge[] = "\x83\xa2op\xa7history\xa4" "conv\xa6room:x\xa5" "after\xcf\xff\xff\xff\xff\xff\xff\xff\xff";
    cr_assert_eq(cm_request_decode(CM_ENC_MSGPACK, after_huge, sizeof(after_huge) - 1, MAXTEXT, &r, msg, sizeof(msg)),
                 CM_ERR_BAD_REQUEST);
    cm_request_free(&r);
    static const char limit_huge[] = "\x83\xa2op\xa7history\xa4" "conv\xa6room:x\xa5limit\xcf\xff\xff\xff\xff\xff\xff\xff\xff";
    cr_assert_eq(cm_request_decode(CM_ENC_MSGPACK, limit_huge, sizeof(limit_huge) - 1, MAXTEXT, &r, msg, sizeof(msg)),
                 CM_ERR_NONE, "%s", msg);
    cr_assert_eq(r.limit, CM_HISTORY_LIMIT_MAX);
    cm_request_free(&r);
}

Test(proto, truncated_requests_every_length)
{
    const char *json = "{\"op\":\"send\",\"id\":\"1\",\"to\":\"bob\",\"text\":\"h\xc3\xa9llo\"}";
    struct cm_request r;
    msgpack_sbuffer sb;
    char msg[256];
    ok(json, &r, &sb);
    cm_request_free(&r);
    for (size_t n = 0; n < strlen(json); n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, json, n);
        cr_assert_neq(cm_request_decode(CM_ENC_JSON, copy, n, MAXTEXT, &r, msg, sizeof(msg)), CM_ERR_NONE, "%zu", n);
        cm_request_free(&r);
        free(copy);
    }
    for (size_t n = 0; n < sb.size; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, sb.data, n);
        cr_assert_neq(cm_request_decode(CM_ENC_MSGPACK, copy, n, MAXTEXT, &r, msg, sizeof(msg)), CM_ERR_NONE, "%zu",
                      n);
        cm_request_free(&r);
        free(copy);
    }
    msgpack_sbuffer_destroy(&sb);
}

Test(proto, random_bytes_never_crash)
{
    static const char alphabet[] = "\x81\xa2op\xa4send\xa2to\x91{}\"[],:";
    unsigned int seed = 777;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(rand_r(&seed) % 64);
        char *buf = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)(rand_r(&seed) % 4 ? rand_r(&seed) : alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)]);
        struct cm_request r;
        char msg[256], id[CM_REQ_ID_MAX + 1];
        cm_request_decode(CM_ENC_MSGPACK, buf, n, MAXTEXT, &r, msg, sizeof(msg));
        cm_request_free(&r);
        cm_request_decode(CM_ENC_JSON, buf, n, MAXTEXT, &r, msg, sizeof(msg));
        cm_request_free(&r);
        cr_assert_leq(cm_request_peek_id(CM_ENC_MSGPACK, buf, n, id), CM_REQ_ID_MAX);
        cr_assert_leq(cm_request_peek_id(CM_ENC_JSON, buf, n, id), CM_REQ_ID_MAX);
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        if (cm_msgpack_to_json(buf, n, &out) == 0) {
            json_t *j = json_loadb(out.data, out.size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
            cr_assert_not_null(j, "produced invalid JSON: %.*s", (int)out.size, out.data);
            json_decref(j);
        } else {
            cr_assert_eq(out.size, 0);
        }
        msgpack_sbuffer_destroy(&out);
        free(buf);
    }
}

Test(proto, peek_id)
{
    char id[CM_REQ_ID_MAX + 1];
    const char *j = "{\"op\":\"send\",\"id\":\"abc-1\",\"text\":";
    /* the rest of the request need not be valid JSON for msgpack, but for JSON it must parse */
    cr_assert_eq(cm_request_peek_id(CM_ENC_JSON, j, strlen(j), id), 0);
    j = "{\"op\":\"whatever\",\"id\":\"abc-1\",\"text\":5}";
    cr_assert_eq(cm_request_peek_id(CM_ENC_JSON, j, strlen(j), id), 5);
    cr_assert_str_eq(id, "abc-1");
    cr_assert_eq(cm_request_peek_id(CM_ENC_JSON, "{\"id\":7}", 8, id), 0);
    cr_assert_str_eq(id, "");
    cr_assert_eq(cm_request_peek_id(CM_ENC_JSON, "{\"id\":\"\"}", 9, id), 0);
    cr_assert_eq(cm_request_peek_id(CM_ENC_JSON, "[\"id\"]", 6, id), 0);
    cr_assert_eq(cm_request_peek_id(CM_ENC_JSON, "garbage", 7, id), 0);
    char long_id[100] = "{\"id\":\"";
    for (int i = 0; i < 65; i++)
        strcat(long_id, "x");
    strcat(long_id, "\"}");
    cr_assert_eq(cm_request_peek_id(CM_ENC_JSON, long_id, strlen(long_id), id), 0);

    static const char mp[] = "\x82\xa2op\xa4send\xa2id\xa3q-9";
    cr_assert_eq(cm_request_peek_id(CM_ENC_MSGPACK, mp, sizeof(mp) - 1, id), 3);
    cr_assert_str_eq(id, "q-9");
    cr_assert_eq(cm_request_peek_id(CM_ENC_MSGPACK, "\x81\xa2id\x07", 5, id), 0);
    cr_assert_eq(cm_request_peek_id(CM_ENC_MSGPACK, "\x81\xa2id\xc4\x01x", 7, id), 0);
    cr_assert_eq(cm_request_peek_id(CM_ENC_MSGPACK, mp, 10, id), 0); /* truncated */
}

static char *to_json_str(msgpack_sbuffer *in)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_sbuffer_write(&out, "PRE", 3); /* appends, never overwrites */
    cr_assert_eq(cm_msgpack_to_json(in->data, in->size, &out), 0);
    cr_assert_eq(memcmp(out.data, "PRE", 3), 0);
    char *s = strndup(out.data + 3, out.size - 3);
    msgpack_sbuffer_destroy(&out);
    return s;
}

Test(proto, pack_error_to_json)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    cm_pack_error(&pk, "2", 1, CM_ERR_FORBIDDEN, "not a \"member\"");
    char *s = to_json_str(&sb);
    cr_assert_str_eq(s, "{\"op\":\"error\",\"id\":\"2\",\"code\":\"forbidden\",\"message\":\"not a \\\"member\\\"\"}");
    free(s);
    msgpack_sbuffer_clear(&sb);
    cm_pack_error(&pk, NULL, 0, CM_ERR_RATE_LIMITED, "slow down");
    s = to_json_str(&sb);
    cr_assert_str_eq(s, "{\"op\":\"error\",\"code\":\"rate_limited\",\"message\":\"slow down\"}");
    free(s);
    msgpack_sbuffer_destroy(&sb);
}

Test(proto, msgpack_to_json_types_escaping_unicode)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 9);
    cm_pack_str(&pk, "op");
    cm_pack_str(&pk, "message");
    cm_pack_str(&pk, "seq");
    msgpack_pack_uint64(&pk, 18);
    cm_pack_str(&pk, "neg");
    msgpack_pack_int64(&pk, -9007199254740993LL);
    cm_pack_str(&pk, "f");
    msgpack_pack_double(&pk, 1.5);
    cm_pack_str(&pk, "flags");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_true(&pk);
    msgpack_pack_false(&pk);
    msgpack_pack_nil(&pk);
    cm_pack_str(&pk, "text");
    cm_pack_strn(&pk, "q\"b\\s/\n\t\x01 \xc3\xa9\xf0\x9f\x98\x80", 16);
    cm_pack_str(&pk, "nul");
    cm_pack_strn(&pk, "a\0b", 3);
    cm_pack_str(&pk, "nested");
    msgpack_pack_map(&pk, 1);
    cm_pack_str(&pk, "m");
    msgpack_pack_array(&pk, 0);
    cm_pack_str(&pk, "big");
    msgpack_pack_uint64(&pk, 9223372036854775807ULL);
    char *s = to_json_str(&sb);
    cr_assert_str_eq(s, "{\"op\":\"message\",\"seq\":18,\"neg\":-9007199254740993,\"f\":1.5,"
                        "\"flags\":[true,false,null],"
                        "\"text\":\"q\\\"b\\\\s/\\n\\t\\u0001 \xc3\xa9\xf0\x9f\x98\x80\",\"nul\":\"a\\u0000b\","
                        "\"nested\":{\"m\":[]},\"big\":9223372036854775807}");
    json_t *j = json_loads(s, JSON_ALLOW_NUL, NULL);
    cr_assert_not_null(j);
    cr_assert_eq(json_string_length(json_object_get(j, "nul")), 3);
    json_decref(j);
    free(s);
    msgpack_sbuffer_destroy(&sb);
}

Test(proto, msgpack_to_json_scalars)
{
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    cr_assert_eq(cm_msgpack_to_json("\xa2hi", 3, &out), 0);
    cr_assert_eq(out.size, 4);
    cr_assert_eq(memcmp(out.data, "\"hi\"", 4), 0);
    msgpack_sbuffer_clear(&out);
    cr_assert_eq(cm_msgpack_to_json("\x2a", 1, &out), 0);
    cr_assert_eq(memcmp(out.data, "42", 2), 0);
    msgpack_sbuffer_destroy(&out);
}

Test(proto, msgpack_to_json_rejects)
{
    struct {
        const char *data;
        size_t len;
    } cases[] = {
        {"\xa1\xff", 2},                                     /* invalid UTF-8 string */
        {"\x81\xa1k\xa2\xed\xa0", 5},                        /* truncated */
        {"\x81\xa3\xed\xa0\x80\x01", 6},                     /* surrogate key */
        {"\x81\x01\x02", 3},                                 /* int key */
        {"\xc4\x01x", 3},                                    /* bin */
        {"\xd4\x01\x02", 3},                                 /* ext */
        {"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9},         /* > int64 */
        {"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 9},         /* NaN */
        {"\x92\x01\xc4\x00", 4},                             /* bin inside an array */
        {"\xa1x\xa1y", 4},                                   /* two values */
        {"", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msgpack_sbuffer out;
        msgpack_sbuffer_init(&out);
        msgpack_sbuffer_write(&out, "keep", 4);
        cr_assert_eq(cm_msgpack_to_json(cases[i].data, cases[i].len, &out), -1, "case %zu", i);
        cr_assert_eq(out.size, 4, "case %zu left bytes behind", i);
        msgpack_sbuffer_destroy(&out);
    }
}
