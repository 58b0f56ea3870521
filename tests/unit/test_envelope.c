/* Unit tests: common/envelope.c */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/envelope.h"

static const struct cm_envelope sample = {
    "alice", 5, "g0123456789ab.42", 16, "g0123456789ab", 13, 1732300000123, CM_ENC_MSGPACK,
    "\x81\xa2op\xa5" "convs", 10,
};

static void pack_sample(msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    cr_assert_eq(cm_envelope_pack(sb, &sample), 0);
}

Test(envelope, roundtrip)
{
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    struct cm_envelope e;
    char err[128] = "";
    pack_sample(&sb);
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_envelope_unpack(sb.data, sb.size, &u, &e, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(e.user_len, 5);
    cr_assert_eq(memcmp(e.user, "alice", 5), 0);
    cr_assert_eq(e.session_len, 16);
    cr_assert_eq(memcmp(e.session, sample.session, 16), 0);
    cr_assert_eq(e.node_len, 13);
    cr_assert_eq(e.recv_ms, 1732300000123);
    cr_assert_eq(e.enc, CM_ENC_MSGPACK);
    cr_assert_eq(e.payload_len, 10);
    cr_assert_eq(memcmp(e.payload, sample.payload, 10), 0);
    /* zero-copy: the payload points into the input */
    cr_assert(e.payload >= sb.data && e.payload < sb.data + sb.size);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, json_encoding_and_empty_payload)
{
    struct cm_envelope in = sample, e;
    in.enc = CM_ENC_JSON;
    in.payload = "";
    in.payload_len = 0;
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    char err[128];
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(cm_envelope_pack(&sb, &in), 0);
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_envelope_unpack(sb.data, sb.size, &u, &e, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(e.enc, CM_ENC_JSON);
    cr_assert_eq(e.payload_len, 0);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, truncated_at_every_length)
{
    msgpack_sbuffer sb;
    pack_sample(&sb);
    for (size_t n = 0; n < sb.size; n++) {
        msgpack_unpacked u;
        struct cm_envelope e;
        char err[128] = "";
        char *copy = malloc(n ? n : 1); /* exact-size copy so ASan sees any over-read */
        memcpy(copy, sb.data, n);
        msgpack_unpacked_init(&u);
        cr_assert_eq(cm_envelope_unpack(copy, n, &u, &e, err, sizeof(err)), -1, "length %zu accepted", n);
        cr_assert_neq(err[0], '\0');
        msgpack_unpacked_destroy(&u);
        free(copy);
    }
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, trailing_bytes_rejected)
{
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    struct cm_envelope e;
    char err[128] = "";
    pack_sample(&sb);
    msgpack_sbuffer_write(&sb, "\xc0", 1);
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_envelope_unpack(sb.data, sb.size, &u, &e, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "trailing"), "%s", err);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

/* Packs an envelope map with one field replaced (or dropped, when val is NULL). */
static void pack_variant(msgpack_sbuffer *sb, const char *key, void (*val)(msgpack_packer *))
{
    static const char *const keys[] = {"v", "u", "s", "n", "t", "e", "p"};
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, val ? 7 : 6);
    for (int i = 0; i < 7; i++) {
        int replace = strcmp(keys[i], key) == 0;
        if (replace && !val)
            continue;
        msgpack_pack_str_with_body(&pk, keys[i], 1);
        if (replace) {
            val(&pk);
            continue;
        }
        switch (i) {
        case 0: msgpack_pack_int(&pk, 1); break;
        case 1: msgpack_pack_str_with_body(&pk, "alice", 5); break;
        case 2: msgpack_pack_str_with_body(&pk, "s1", 2); break;
        case 3: msgpack_pack_str_with_body(&pk, "n1", 2); break;
        case 4: msgpack_pack_int64(&pk, 5); break;
        case 5: msgpack_pack_str_with_body(&pk, "json", 4); break;
        case 6: msgpack_pack_bin_with_body(&pk, "{}", 2); break;
        }
    }
}

static void v_int7(msgpack_packer *pk) { msgpack_pack_int(pk, 7); }
static void v_str(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "x", 1); }
static void v_empty_str(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "", 0); }
static void v_bad_user(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "a b", 3); }
static void v_long_str(msgpack_packer *pk)
{
    char s[CM_SESSION_MAX + 1];
    memset(s, 's', sizeof(s));
    msgpack_pack_str_with_body(pk, s, sizeof(s));
}
static void v_bin(msgpack_packer *pk) { msgpack_pack_bin_with_body(pk, "alice", 5); }
static void v_nil(msgpack_packer *pk) { msgpack_pack_nil(pk); }
static void v_neg(msgpack_packer *pk) { msgpack_pack_int(pk, -1); }
static void v_float(msgpack_packer *pk) { msgpack_pack_double(pk, 1.0); }
static void v_array(msgpack_packer *pk) { msgpack_pack_array(pk, 0); }
static void v_xml(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "xml", 3); }

Test(envelope, wrong_types_and_values)
{
    struct {
        const char *key;
        void (*val)(msgpack_packer *);
    } cases[] = {
        {"v", v_int7},  {"v", v_str},       {"v", NULL},        {"u", v_bin},      {"u", v_bad_user},
        {"u", v_nil},   {"u", v_empty_str}, {"u", NULL},        {"s", v_int7},     {"s", v_long_str},
        {"s", v_empty_str}, {"s", NULL},    {"n", v_long_str},  {"n", v_array},    {"t", v_neg},
        {"t", v_float}, {"t", v_str},       {"e", v_xml},       {"e", v_int7},     {"e", NULL},
        {"p", v_int7},  {"p", v_nil},       {"p", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msgpack_sbuffer sb;
        msgpack_unpacked u;
        struct cm_envelope e;
        char err[128] = "";
        pack_variant(&sb, cases[i].key, cases[i].val);
        msgpack_unpacked_init(&u);
        cr_assert_eq(cm_envelope_unpack(sb.data, sb.size, &u, &e, err, sizeof(err)), -1, "case %zu accepted", i);
        cr_assert_neq(err[0], '\0');
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
    }
    /* the base variant itself is valid, and str is accepted for the payload */
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    struct cm_envelope e;
    char err[128] = "";
    pack_variant(&sb, "p", v_str);
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_envelope_unpack(sb.data, sb.size, &u, &e, err, sizeof(err)), 0, "%s", err);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, not_a_map_and_duplicates)
{
    msgpack_unpacked u;
    struct cm_envelope e;
    char err[128];
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_envelope_unpack("\x93\x01\x02\x03", 4, &u, &e, err, sizeof(err)), -1);
    cr_assert_eq(cm_envelope_unpack("", 0, &u, &e, err, sizeof(err)), -1);
    cr_assert_eq(cm_envelope_unpack("\xc1", 1, &u, &e, err, sizeof(err)), -1);
    msgpack_unpacked_destroy(&u);

    /* a duplicated key is refused even when both values are valid */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 8);
    const char *k[] = {"v", "u", "s", "n", "t", "e", "p", "u"};
    for (int i = 0; i < 8; i++) {
        msgpack_pack_str_with_body(&pk, k[i], 1);
        if (i == 0 || i == 4)
            msgpack_pack_int(&pk, 1);
        else if (i == 5)
            msgpack_pack_str_with_body(&pk, "json", 4);
        else
            msgpack_pack_str_with_body(&pk, "bob", 3);
    }
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_envelope_unpack(sb.data, sb.size, &u, &e, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "duplicate"), "%s", err);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, unknown_fields_ignored)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked u;
    struct cm_envelope e;
    char err[128] = "";
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 8);
    msgpack_pack_str_with_body(&pk, "future", 6);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    const char *k[] = {"v", "u", "s", "n", "t", "e", "p"};
    for (int i = 0; i < 7; i++) {
        msgpack_pack_str_with_body(&pk, k[i], 1);
        if (i == 0 || i == 4)
            msgpack_pack_int(&pk, 1);
        else if (i == 5)
            msgpack_pack_str_with_body(&pk, "msgpack", 7);
        else if (i == 6)
            msgpack_pack_bin_with_body(&pk, "\x80", 1);
        else
            msgpack_pack_str_with_body(&pk, "bob", 3);
    }
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_envelope_unpack(sb.data, sb.size, &u, &e, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(e.enc, CM_ENC_MSGPACK);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, hostile_container_sizes_fail_fast)
{
    /* an array claiming 2^32-1 elements in 5 bytes, inside a map and alone */
    static const char arr32[] = "\xdd\xff\xff\xff\xff";
    static const char map32[] = "\xdf\xff\xff\xff\xff\xa1v";
    static const char str32[] = "\xdb\xff\xff\xff\xf0xx";
    static const char nested[] = "\x91\x91\x91\x91\xdc\xff\xff";
    const char *in[] = {arr32, map32, str32, nested};
    size_t lens[] = {5, 7, 7, 7};
    for (size_t i = 0; i < 4; i++) {
        msgpack_unpacked u;
        char err[128] = "";
        msgpack_unpacked_init(&u);
        cr_assert_eq(cm_msgpack_unpack_one(in[i], lens[i], &u, err, sizeof(err)), -1, "case %zu", i);
        msgpack_unpacked_destroy(&u);
    }
    /* deep nesting beyond msgpack-c's stack is refused, not overflowed */
    char deep[200];
    memset(deep, '\x91', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = '\xc0';
    msgpack_unpacked u;
    char err[128];
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_msgpack_unpack_one(deep, sizeof(deep), &u, err, sizeof(err)), -1);
    msgpack_unpacked_destroy(&u);
}

Test(envelope, delivery_roundtrip)
{
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    struct cm_delivery d;
    char err[128] = "";
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(cm_delivery_pack(&sb, "sess-1", 6, "\x81\xa2op\xa3" "ack", 8), 0);
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_delivery_unpack(sb.data, sb.size, &u, &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.session_len, 6);
    cr_assert_eq(memcmp(d.session, "sess-1", 6), 0);
    cr_assert_eq(d.msg_len, 8);
    cr_assert_eq(memcmp(d.msg, "\x81\xa2op\xa3" "ack", 8), 0);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_clear(&sb);

    cr_assert_eq(cm_delivery_pack(&sb, NULL, 0, "\x80", 1), 0);
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_delivery_unpack(sb.data, sb.size, &u, &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_null(d.session);
    cr_assert_eq(d.msg_len, 1);
    msgpack_unpacked_destroy(&u);

    for (size_t n = 0; n < sb.size; n++) {
        msgpack_unpacked_init(&u);
        cr_assert_eq(cm_delivery_unpack(sb.data, n, &u, &d, err, sizeof(err)), -1, "length %zu", n);
        msgpack_unpacked_destroy(&u);
    }
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, delivery_rejects)
{
    struct {
        const char *data;
        size_t len;
    } bad[] = {
        {"\x92\xc0", 2},                 /* one element */
        {"\x93\xc0\xc4\x01x\xc0", 6},    /* three, the third not a membership */
        {"\x94\xc0\xc4\x01x\xc0\xc0", 7}, /* four */
        {"\x92\x01\xc4\x01x", 5},        /* session an int */
        {"\x92\xa0\xc4\x01x", 5},        /* empty session */
        {"\x92\xc0\x01", 3},             /* message an int */
        {"\x92\xc0\xc4\x00", 4},         /* empty message */
        {"\x82\xc0\xc0\xc0\xc0", 5},     /* a map */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msgpack_unpacked u;
        struct cm_delivery d;
        char err[128] = "";
        msgpack_unpacked_init(&u);
        cr_assert_eq(cm_delivery_unpack(bad[i].data, bad[i].len, &u, &d, err, sizeof(err)), -1, "case %zu", i);
        cr_assert_neq(err[0], '\0');
        msgpack_unpacked_destroy(&u);
    }
}

Test(envelope, delivery_membership_roundtrip)
{
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    struct cm_delivery d;
    char err[128] = "";
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(cm_delivery_pack_member(&sb, "s1", 2, "\x80", 1, CM_MEMBER_JOINED, "room:lobby", 10, 41), 0);
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_delivery_unpack(sb.data, sb.size, &u, &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.change, CM_MEMBER_JOINED);
    cr_assert_eq(d.conv_len, 10);
    cr_assert_eq(memcmp(d.conv, "room:lobby", 10), 0);
    cr_assert_eq(d.seq, 41);
    cr_assert_eq(d.session_len, 2);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_clear(&sb);
    cr_assert_eq(cm_delivery_pack_member(&sb, NULL, 0, "\x80", 1, CM_MEMBER_LEFT, "room:a", 6, 0), 0);
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_delivery_unpack(sb.data, sb.size, &u, &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.change, CM_MEMBER_LEFT);
    cr_assert_null(d.session);
    msgpack_unpacked_destroy(&u);
    /* a plain delivery has no change */
    msgpack_sbuffer_clear(&sb);
    cr_assert_eq(cm_delivery_pack(&sb, NULL, 0, "\x80", 1), 0);
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_delivery_unpack(sb.data, sb.size, &u, &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(d.change, CM_MEMBER_NONE);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, delivery_membership_rejects)
{
    struct {
        const char *data;
        size_t len;
    } bad[] = {
        {"\x93\xc0\xc4\x01x\x92\xa1+\xa6room:a", 14},           /* two elements */
        {"\x93\xc0\xc4\x01x\x93\xa1*\xa6room:a\x01", 15},       /* kind not + or - */
        {"\x93\xc0\xc4\x01x\x93\xa1+\xa7" "dm:a:bb\x01", 16},      /* not a room */
        {"\x93\xc0\xc4\x01x\x93\xa1+\xa6room:!\x01", 15},       /* bad room name */
        {"\x93\xc0\xc4\x01x\x93\xa1+\xa5room:\x01", 14},        /* empty room name */
        {"\x93\xc0\xc4\x01x\x93\xa1+\xa6room:a\xff", 15},       /* negative seq */
        {"\x93\xc0\xc4\x01x\x93\xa1+\xa6room:a\xa1" "1", 16},   /* seq a string */
        {"\x93\xc0\xc4\x01x\x93\x01\xa6room:a\x01", 14},        /* kind an int */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msgpack_unpacked u;
        struct cm_delivery d;
        char err[128] = "";
        msgpack_unpacked_init(&u);
        cr_assert_eq(cm_delivery_unpack(bad[i].data, bad[i].len, &u, &d, err, sizeof(err)), -1, "case %zu", i);
        cr_assert_neq(err[0], '\0');
        msgpack_unpacked_destroy(&u);
    }
}

Test(envelope, fanout_roundtrip)
{
    const char *r[] = {"alice", "bob", "carol"};
    size_t rl[] = {5, 3, 5};
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    struct cm_fanout_job j;
    char err[128] = "";
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(cm_fanout_job_pack(&sb, "room:general", 12, r, rl, 3, "\x80", 1), 0);
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_fanout_job_unpack(sb.data, sb.size, &u, &j, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(j.conv_len, 12);
    cr_assert_eq(memcmp(j.conv, "room:general", 12), 0);
    cr_assert_eq(j.nrecipients, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(j.recipients[i].type, MSGPACK_OBJECT_STR);
        cr_assert_eq(j.recipients[i].via.str.size, rl[i]);
        cr_assert_eq(memcmp(j.recipients[i].via.str.ptr, r[i], rl[i]), 0);
    }
    cr_assert_eq(j.msg_len, 1);
    msgpack_unpacked_destroy(&u);
    for (size_t n = 0; n < sb.size; n++) {
        msgpack_unpacked_init(&u);
        cr_assert_eq(cm_fanout_job_unpack(sb.data, n, &u, &j, err, sizeof(err)), -1, "length %zu", n);
        msgpack_unpacked_destroy(&u);
    }
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, fanout_ack_roundtrip)
{
    msgpack_sbuffer sb;
    msgpack_unpacked u;
    struct cm_fanout_job j;
    char err[128] = "";
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(cm_fanout_job_pack_ack(&sb, "room:general", 12, NULL, NULL, 0, "\x80", 1, "alice", 5,
                                        "\x92\xc0\xc4\x01\x80", 5),
                 0);
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_fanout_job_unpack(sb.data, sb.size, &u, &j, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(j.nrecipients, 0);
    cr_assert_eq(j.ack_user_len, 5);
    cr_assert_eq(memcmp(j.ack_user, "alice", 5), 0);
    cr_assert_eq(j.ack_len, 5);
    msgpack_unpacked_destroy(&u);
    /* without an ack: none decoded */
    msgpack_sbuffer_clear(&sb);
    cr_assert_eq(cm_fanout_job_pack(&sb, "room:general", 12, NULL, NULL, 0, "\x80", 1), 0);
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_fanout_job_unpack(sb.data, sb.size, &u, &j, err, sizeof(err)), 0, "%s", err);
    cr_assert_null(j.ack_user);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, fanout_rejects_bad_ack)
{
    struct {
        const char *user;
        const char *ack;
        size_t ack_len;
    } cases[] = {
        {"b b", "\x80", 1}, /* not a user id */
        {"", "\x80", 1},    /* empty user */
        {"alice", "", 0},   /* empty ack */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msgpack_sbuffer sb;
        msgpack_unpacked u;
        struct cm_fanout_job j;
        char err[128] = "";
        msgpack_sbuffer_init(&sb);
        cr_assert_eq(cm_fanout_job_pack_ack(&sb, "room:general", 12, NULL, NULL, 0, "\x80", 1, cases[i].user,
                                            strlen(cases[i].user), cases[i].ack, cases[i].ack_len),
                     0);
        msgpack_unpacked_init(&u);
        cr_assert_eq(cm_fanout_job_unpack(sb.data, sb.size, &u, &j, err, sizeof(err)), -1, "case %zu", i);
        cr_assert_str_eq(err, "fan-out job: bad ack");
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
    }
    /* "a" that is not a 2-element array */
    const char bad[] = "\x85\xa1v\x01\xa1" "c\xa6room:a\xa1r\x90\xa1m\xc4\x01\x80\xa1" "a\x91\xa5" "alice";
    msgpack_unpacked u;
    struct cm_fanout_job j;
    char err[128] = "";
    msgpack_unpacked_init(&u);
    cr_assert_eq(cm_fanout_job_unpack(bad, sizeof(bad) - 1, &u, &j, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "fan-out job: bad ack");
    msgpack_unpacked_destroy(&u);
}

Test(envelope, fanout_rejects_bad_conv_and_recipients)
{
    const char *good[] = {"alice"};
    const char *badr[] = {"alice", "b b"};
    size_t gl[] = {5}, bl[] = {5, 3};
    struct {
        const char *conv;
        const char *const *r;
        const size_t *rl;
        size_t n;
    } cases[] = {
        {"room:", good, gl, 1},
        {"dm:bob:alice", good, gl, 1}, /* not canonical */
        {"general", good, gl, 1},
        {"room:general", badr, bl, 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msgpack_sbuffer sb;
        msgpack_unpacked u;
        struct cm_fanout_job j;
        char err[128] = "";
        msgpack_sbuffer_init(&sb);
        cr_assert_eq(cm_fanout_job_pack(&sb, cases[i].conv, strlen(cases[i].conv), cases[i].r, cases[i].rl,
                                        cases[i].n, "\x80", 1),
                     0);
        msgpack_unpacked_init(&u);
        cr_assert_eq(cm_fanout_job_unpack(sb.data, sb.size, &u, &j, err, sizeof(err)), -1, "case %zu", i);
        msgpack_unpacked_destroy(&u);
        msgpack_sbuffer_destroy(&sb);
    }
}

Test(envelope, random_bytes_never_crash)
{
    unsigned int seed = 12345;
    msgpack_sbuffer sb;
    pack_sample(&sb);
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(rand_r(&seed) % 96);
        char *buf = malloc(n ? n : 1);
        if (round % 2 == 0) {
            for (size_t i = 0; i < n; i++)
                buf[i] = (char)rand_r(&seed);
        } else {
            /* mutate a valid envelope: flips keep most of the structure */
            n = sb.size;
            buf = realloc(buf, n);
            memcpy(buf, sb.data, n);
            for (int k = 0; k < 3; k++)
                buf[rand_r(&seed) % n] = (char)rand_r(&seed);
        }
        msgpack_unpacked u;
        struct cm_envelope e;
        struct cm_delivery d;
        struct cm_fanout_job j;
        char err[128];
        msgpack_unpacked_init(&u);
        if (cm_envelope_unpack(buf, n, &u, &e, err, sizeof(err)) == 0) {
            cr_assert_leq(e.user_len, 64);
            cr_assert(e.payload + e.payload_len <= buf + n);
        }
        (void)cm_delivery_unpack(buf, n, &u, &d, err, sizeof(err));
        (void)cm_fanout_job_unpack(buf, n, &u, &j, err, sizeof(err));
        msgpack_unpacked_destroy(&u);
        free(buf);
    }
    msgpack_sbuffer_destroy(&sb);
}

Test(envelope, message_seq)
{
    /* {"op":"message","seq":17} */
    cr_assert_eq(cm_message_seq("\x82\xa2op\xa7message\xa3seq\x11", 17), 17);
    /* no seq, a negative seq, a string seq, not a map, truncated */
    cr_assert_eq(cm_message_seq("\x81\xa2op\xa3" "ack", 8), -1);
    cr_assert_eq(cm_message_seq("\x81\xa3seq\xff", 6), -1);
    cr_assert_eq(cm_message_seq("\x81\xa3seq\xa1" "1", 7), -1);
    cr_assert_eq(cm_message_seq("\x91\x11", 2), -1);
    cr_assert_eq(cm_message_seq("\x82\xa2op", 4), -1);
}
